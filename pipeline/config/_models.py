"""Typed configuration: the single shape every YAML file is validated against.

Pure: no engine imports. Relative paths resolve against the project root passed in the
validation context (see :func:`pipeline.config.load_config`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    PlainValidator,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import core_schema

from pipeline.storage.locations import LocationError, is_object_store, parse_location

ROOT_CONTEXT_KEY = "root"


def _resolve_against_root(value: Path, info: ValidationInfo) -> Path:
    root = (info.context or {}).get(ROOT_CONTEXT_KEY)
    if value.is_absolute() or root is None:
        return value
    return (Path(root) / value).resolve()


ProjectPath = Annotated[Path, AfterValidator(_resolve_against_root)]
"""A path that, when relative, resolves against the project root."""


class StoreURI(str):
    """An object-store location as a URI (``s3://bucket/key``), checked and normalised: no trailing slash,
    no empty, '.' or '..' segments (:func:`pipeline.storage.parse_location`)."""

    __slots__ = ()

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(cls, core_schema.str_schema())


def data_location(value: str | Path, field: str, base_dir: Path | None = None) -> Path | StoreURI:
    """A location as a user gives it (a config field, a command-line flag): an object-store URI checked and
    normalised, a local path resolved against ``base_dir`` (kept relative without one). ``LocationError``,
    one line naming ``field``, the value and the rule, otherwise."""
    if is_object_store(value):
        return StoreURI(parse_location(value, field).uri)
    path = Path(value)
    if path.is_absolute() or base_dir is None:
        return path
    return (base_dir / path).resolve()


def _data_location(value: Any, info: ValidationInfo) -> Path | StoreURI:
    if isinstance(value, StoreURI):
        return value
    if not isinstance(value, str | Path) or not str(value) or "\x00" in str(value):
        raise ValueError("must be a local path or an object-store URI (s3://bucket/key)")
    root = (info.context or {}).get(ROOT_CONTEXT_KEY)
    try:
        return data_location(value, "path", Path(root) if root is not None else None)
    except LocationError as error:  # the loader names the field and the value: the rule alone here
        raise ValueError(str(error).removeprefix(f"path = {str(value)!r}: ")) from None


DataLocation = Annotated[Path | StoreURI, PlainValidator(_data_location)]
"""Where data lives: a local path (relative ones resolve against the project root) or an object-store URI."""

_MEMORY = re.compile(r"^[1-9][0-9]*[kmgt]?$", re.IGNORECASE)
_RAY_ADDRESS = re.compile(r"^(auto|ray://[^\s:/]+:\d+|[^\s:/]+:\d+)$")
_SQLITE_PREFIX = "sqlite:///"

GeneratorName = Literal["classification", "regression", "clustering", "recommendation", "breast_cancer", "wine"]
TableFormat = Literal["delta", "parquet", "csv"]
WriteMode = Literal["append", "overwrite"]


def _defaults() -> Any:
    """A sub-section's default: an empty mapping validated in context, so its paths resolve too."""
    return Field(default={})


class _Section(BaseModel):
    # validate_default: defaults go through the validators too, so default paths resolve against root.
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class RayConfig(_Section):
    """Where Ray runs: a local cluster started for the job (``address: null``) or an existing one."""

    address: str | None = Field(
        default=None, description="null starts a local Ray; 'auto', 'host:port' or 'ray://host:port' joins one"
    )
    namespace: str = Field(default="ml-pipeline", min_length=1)
    dashboard: bool = True
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = Field(default=8265, ge=1, le=65535)
    num_cpus: int | None = Field(default=None, gt=0, description="CPUs of a local Ray (default: all)")
    connect_timeout_s: float = Field(
        default=30, gt=0, le=3600, description="how long joining the Ray head at `address` waits for an answer"
    )

    @field_validator("address")
    @classmethod
    def _address_form(cls, value: str | None) -> str | None:
        if value is not None and not _RAY_ADDRESS.match(value):
            raise ValueError(f"{value!r} is not null, 'auto', 'host:port' or 'ray://host:port'")
        return value


class SparkConfig(_Section):
    """The Spark application RayDP starts inside Ray."""

    app_name: str = Field(default="ml-pipeline", min_length=1)
    num_executors: int = Field(default=1, gt=0, le=1024)
    executor_cores: int = Field(default=1, gt=0, le=256)
    executor_memory: str = Field(default="2g", description="JVM size such as 512m or 2g")
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] | None = Field(
        default=None,
        description="a Ray placement group for the executors (RayDP): SPREAD puts them on different nodes "
        "when it can, STRICT_SPREAD must; null: none",
    )
    start_timeout_s: float = Field(
        default=300,
        gt=0,
        le=86_400,
        description="how long starting Spark may wait for its executors' placement group, then again for "
        "the executors to register",
    )
    configs: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @field_validator("executor_memory")
    @classmethod
    def _memory_form(cls, value: str) -> str:
        if not _MEMORY.match(value):
            raise ValueError(f"{value!r} is not a JVM memory size such as 512m, 2g or 1t")
        return value.lower()

    @field_validator("configs")
    @classmethod
    def _spark_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        bad = [key for key in value if not key.startswith("spark.")]
        if bad:
            raise ValueError(f"keys must start with 'spark.', got {bad}")
        return value


class TableSource(_Section):
    """A table on disk or in an object store: Delta (with optional time travel), Parquet or CSV."""

    format: TableFormat = "delta"
    path: DataLocation
    version: int | None = Field(default=None, ge=0, description="Delta version to read; null = latest")
    options: dict[str, str] = Field(
        default_factory=dict, description="reader options, e.g. {header: 'true'} for CSV"
    )

    @model_validator(mode="after")
    def _version_needs_delta(self) -> TableSource:
        if self.version is not None and self.format != "delta":
            raise ValueError(f"version={self.version} needs format 'delta', not {self.format!r}")
        return self


class GeneratedData(_Section):
    """A deterministic demo data set produced in Spark (or a real one shipped by scikit-learn)."""

    generator: GeneratorName = "classification"
    rows: int = Field(default=100_000, gt=0, le=10_000_000_000)
    seed: int = 42


class IngestConfig(_Section):
    """What `ingest` writes into ``data.source``: generated rows or another table's rows."""

    generate: GeneratedData | None = None
    input: TableSource | None = None
    mode: WriteMode = "overwrite"
    partition_by: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _generate_by_default(cls, value: Any) -> Any:
        if isinstance(value, dict) and value.get("generate") is None and value.get("input") is None:
            return {**value, "generate": {}}
        return value

    @model_validator(mode="after")
    def _one_origin(self) -> IngestConfig:
        if self.generate is not None and self.input is not None:
            raise ValueError("give either 'generate' or 'input', not both")
        return self


class SplitConfig(_Section):
    test_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    seed: int = 42


class DataConfig(_Section):
    source: TableSource
    label: str | None = Field(default="label", min_length=1)
    split: SplitConfig = _defaults()
    ingest: IngestConfig = _defaults()


FeatureKind = Literal["numeric", "categorical", "hashed", "text", "vector", "drop"]


class ColumnFeature(_Section):
    """How one input column becomes features."""

    type: FeatureKind
    impute: Literal["mean", "median", "mode", "constant"] = Field(
        default="mean", description="numeric: how nulls are filled"
    )
    fill_value: float | None = Field(default=None, description="numeric: the value for impute: constant")
    scale: Literal["standard", "minmax", "none"] = Field(default="standard", description="numeric scaling")
    buckets: int | None = Field(default=None, ge=2, le=10_000, description="numeric: quantile buckets instead")
    num_features: int = Field(default=1024, ge=2, le=1 << 24, description="hashed/text: hash space size")
    min_doc_freq: int = Field(default=0, ge=0, description="text: IDF minimum document frequency")
    size: int | None = Field(default=None, ge=1, description="vector: its length (measured when not given)")

    @model_validator(mode="after")
    def _fill_value_with_constant(self) -> ColumnFeature:
        if self.impute == "constant" and self.fill_value is None:
            raise ValueError("impute 'constant' needs a fill_value")
        return self


class AutoFeatures(_Section):
    """Rules for inferring the role of every column that is not declared."""

    max_categories: int = Field(default=50, ge=2, description="more distinct strings than this are hashed")
    hashed_features: int = Field(default=1024, ge=2, le=1 << 24)
    id_fraction: float = Field(default=0.9, gt=0.0, le=1.0, description="distinct/rows above this: id-like")
    text_min_tokens: float = Field(default=3.0, gt=0.0, description="mean words per value above this: text")
    numeric_as_categorical: int = Field(
        default=0, ge=0, description="integer columns with at most this many distinct values are categorical"
    )
    sample_rows: int = Field(default=100_000, ge=100)


class UnivariateSelection(_Section):
    mode: Literal["numTopFeatures", "percentile", "fpr", "fdr", "fwe"] = "numTopFeatures"
    threshold: float = Field(default=50, gt=0)


class SelectionConfig(_Section):
    variance_threshold: float | None = Field(default=None, ge=0.0)
    univariate: UnivariateSelection | None = None


class FeaturesConfig(_Section):
    """Declared columns, plus inference for the rest (``infer``), plus optional selection."""

    columns: dict[str, ColumnFeature] = Field(default_factory=dict)
    infer: bool = Field(default=True, description="infer the role of columns not declared or dropped")
    drop: list[str] = Field(default_factory=list)
    auto: AutoFeatures = _defaults()
    selection: SelectionConfig | None = None


class ModelConfig(_Section):
    algorithm: str = Field(default="random_forest", min_length=1)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    user_column: str = Field(default="user_id", min_length=1, description="als: the user id column")
    item_column: str = Field(default="item_id", min_length=1, description="als: the item id column")


class EvaluationConfig(_Section):
    cv_folds: int | None = Field(default=None, ge=2, le=20, description="k-fold CV on the training split")
    ranking_k: int = Field(default=10, ge=1, le=1000, description="als: k of precision@k and NDCG@k")
    relevant_rating: float = Field(default=4.0, description="als: a test rating at least this is relevant")


RungBudget = Literal["data", "iterations"]


class EarlyStopping(_Section):
    """ASHA: at each rung the trailing trials stop and the rest go on with a bigger budget. The budget is
    the fraction of the training frame fitted on (``data``: every algorithm) or the algorithm's own
    trees / iterations (``iterations``: where it has them)."""

    rungs: int = Field(default=3, ge=2, le=10, description="budget levels: max/(factor^(rungs-1)) .. max")
    reduction_factor: int = Field(default=2, ge=2, le=10)
    budget: RungBudget = Field(default="data", description="what grows from rung to rung")
    algorithm_budgets: dict[str, RungBudget] = Field(
        default_factory=dict, description="per algorithm, instead of `budget`"
    )

    def budget_of(self, algorithm: str) -> RungBudget:
        """The rung budget of ``algorithm``'s trials."""
        return self.algorithm_budgets.get(algorithm, self.budget)


class TuningConfig(_Section):
    """A Ray Tune sweep. ``space`` maps hyperparameters to a list (grid) or one of
    ``{uniform: [lo, hi]}``, ``{loguniform: [lo, hi]}``, ``{randint: [lo, hi]}``, ``{choice: [...]}``;
    ``algorithms`` maps several algorithms to their own spaces (model selection)."""

    search: Literal["grid", "random", "optuna"] = "grid"
    space: dict[str, Any] = Field(default_factory=dict)
    algorithms: dict[str, dict[str, Any]] | None = None
    num_samples: int = Field(default=1, ge=1, le=100_000, description="random/optuna: trials; grid: repeats")
    max_concurrent_trials: int | None = Field(
        default=None, ge=1, le=1024, description="default: the executor cores Spark really has"
    )
    metric: str | None = Field(default=None, description="default: the task's primary metric")
    mode: Literal["max", "min"] | None = Field(default=None, description="default: the metric's direction")
    time_budget_s: float | None = Field(default=None, gt=0)
    max_failures: int = Field(
        default=3,
        ge=0,
        le=100,
        description="retries of a trial whose worker, node or Spark actor was lost; an MLlib error is never "
        "retried (it would fail the same way): the trial fails with it at once",
    )
    validation_fraction: float = Field(default=0.2, gt=0.0, lt=1.0, description="of the training split")
    early_stopping: EarlyStopping | None = None
    trial_cpus: float = Field(default=0.5, gt=0.0, le=64, description="Ray CPUs reserved per trial")
    storage: DataLocation = Field(
        default=Path("ray_results"),
        description="where Tune keeps each sweep's state: a folder or s3://bucket/prefix",
    )
    name: str | None = Field(
        default=None, min_length=1, description="default: a new <experiment>-sweep-<UTC time> per run"
    )


class TrackingConfig(_Section):
    """MLflow: a sqlite store under the project by default; any tracking URI works."""

    uri: str = "sqlite:///mlruns/mlflow.db"
    artifact_location: DataLocation = Field(
        default=Path("mlruns/artifacts"),
        description="where a new experiment keeps its runs' artifacts (models, plots): a folder or s3://bucket/prefix",
    )
    experiment: str = Field(default="demo", min_length=1)
    registered_model: str = Field(default="demo-classifier", min_length=1)
    alias: Literal["auto", "champion", "challenger", "none"] = Field(
        default="auto", description="auto: champion for the first version, challenger after"
    )

    @field_validator("uri")
    @classmethod
    def _absolute_sqlite(cls, value: str, info: ValidationInfo) -> str:
        if not value.startswith(_SQLITE_PREFIX):
            return value
        db_path = _resolve_against_root(Path(value[len(_SQLITE_PREFIX) :]), info)
        return f"{_SQLITE_PREFIX}{db_path}"


_VARIANT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,30}$")
_HOST = re.compile(r"^[A-Za-z0-9.:-]+$")


class AutoscalingConfig(_Section):
    """Ray Serve autoscaling for one variant (replaces a fixed replica count)."""

    min_replicas: int = Field(default=1, ge=0, le=64)
    max_replicas: int = Field(default=2, ge=1, le=64)
    target_ongoing_requests: float = Field(default=2.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> AutoscalingConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) is above max_replicas ({self.max_replicas})")
        return self


# The smallest routing weight above 0 (one request in a million beside a weight of 1): a share such as
# 5e-324 routes nothing, and as the only weight above 0 it would leave every request unrouted.
MIN_WEIGHT = 1e-6


class VariantConfig(_Section):
    """One served model: a registry alias (default: the variant's name) or a pinned version."""

    alias: str | None = Field(default=None, min_length=1)
    version: int | None = Field(default=None, ge=1)
    weight: float = Field(default=0.0, ge=0.0, le=1.0, description="share of routed traffic")
    # A variant scored by Spark runs as a deployment of its own: these three size it. ONNX-scored variants
    # live inside the ingress replicas (serving.ingress_replicas / ingress_autoscaling).
    replicas: int = Field(default=1, ge=1, le=64, description="replicas of a Spark-scored variant")
    autoscaling: AutoscalingConfig | None = None
    cpus: float = Field(default=0.0, ge=0.0, le=64, description="Ray CPUs reserved per Spark-variant replica")

    @field_validator("weight")
    @classmethod
    def _routable_weight(cls, value: float) -> float:
        if 0 < value < MIN_WEIGHT:
            raise ValueError(f"must be 0 or at least {MIN_WEIGHT:g} (a smaller share cannot route a request)")
        return value

    @model_validator(mode="after")
    def _one_reference(self) -> VariantConfig:
        if self.alias is not None and self.version is not None:
            raise ValueError(f"give alias ({self.alias!r}) or version ({self.version}), not both")
        return self


class PredictionLogConfig(_Section):
    """Every answered prediction appended to a Delta table: written ahead to a file of its replica before
    the answer goes out (so it outlives a killed replica), committed in batches off the request path."""

    enabled: bool = True
    path: DataLocation = Field(
        default=Path("prediction_log"), description="the Delta table: a folder or s3://bucket/prefix"
    )
    write_ahead_path: ProjectPath | None = Field(
        default=None,
        description="a local folder for the replicas' write-ahead files (default: <path>/_wal for a local "
        "log, .pipeline/prediction_log_wal under the root for a log in a bucket)",
    )
    flush_seconds: float = Field(default=5.0, gt=0, le=3600, description="how often each replica commits")
    max_buffer_rows: int = Field(
        default=100_000,
        ge=1,
        le=10_000_000,
        description="rows a replica holds written ahead but not committed; beyond it rows are dropped "
        "(counted in /metrics)",
    )
    wait_for_disk: bool = Field(
        default=False,
        description="an answer waits for the fdatasync of its log rows, which then outlive a power cut too "
        "(off: they outlive the replica; fdatasync follows within about 50 ms)",
    )


class FeedbackConfig(_Section):
    """Outcomes of logged predictions (``POST /feedback``, ``python -m pipeline feedback``): a Delta table."""

    path: DataLocation = Field(
        default=Path("feedback"), description="the Delta table: a folder or s3://bucket/prefix"
    )
    lookback_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="an outcome must be for a prediction logged in the last this many days (else: unknown)",
    )


class ExperimentConfig(_Section):
    """How `compare --online` judges a champion/challenger experiment from the prediction log and feedback."""

    metric: Literal["accuracy", "absolute_error", "squared_error", "outcome"] = Field(
        default="accuracy",
        description="per answered row: a correct label, the absolute or squared error, or the outcome itself",
    )
    alpha: float = Field(default=0.05, gt=0, lt=1, description="significance level of the sequential test")
    mde: float = Field(default=0.02, gt=0, description="minimum detectable effect, in the metric's units")
    min_samples: int = Field(default=100, ge=30, le=100_000_000, description="rows with outcomes per version")
    max_error_rate: float = Field(default=0.01, ge=0, le=1, description="guardrail: failed rows per version")
    max_p99_ms: float = Field(default=250.0, gt=0, description="guardrail: 99th percentile latency per version")
    lookback_days: int = Field(default=30, ge=1, le=3650, description="log days read")
    auto_promote: bool = Field(default=False, description="the serving app promotes @challenger on `b better`")
    auto_rollback: bool = Field(
        default=False, description="the serving app rolls @champion back to @previous on a guardrail breach"
    )
    check_seconds: float = Field(default=60.0, ge=0.5, le=86_400, description="how often the app looks (auto_*)")


def _default_variants() -> dict[str, VariantConfig]:
    return {"champion": VariantConfig(weight=0.9), "challenger": VariantConfig(weight=0.1)}


class ServingConfig(_Section):
    """The Ray Serve app: variants behind one HTTP endpoint with weighted, sticky or shadow routing."""

    host: str = Field(default="127.0.0.1", description="bind address; 0.0.0.0 exposes it beyond this machine")
    port: int = Field(default=8000, ge=1, le=65535)
    app_name: str = Field(default="pipeline", pattern=r"^[A-Za-z0-9_-]{1,40}$")
    variants: dict[str, VariantConfig] = Field(default_factory=_default_variants)
    sticky_key: str | None = Field(default=None, min_length=1, description="request field routed by hash")
    shadow: str | None = Field(default=None, description="a variant that also scores every request, unseen")
    token_env: str = Field(
        default="PIPELINE_SERVE_TOKEN",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="env var holding the bearer token of the admin and train routes; unset: no such routes",
    )
    proxy_location: Literal["EveryNode", "HeadOnly"] = Field(
        default="EveryNode",
        description="which Ray nodes run Serve's HTTP ingress: every node (behind a load balancer), or the "
        "head only (several nodes on one machine would otherwise all bind host:port)",
    )
    max_replicas_per_node: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="at most this many replicas of a deployment on one Ray node (1 spreads the ingress over "
        "the nodes, so that losing one keeps the others answering); null: Serve's best effort",
    )
    max_batch_rows: int = Field(default=10_000, ge=1, le=1_000_000)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    high_throughput: bool = Field(
        default=True,
        description="Ray Serve's high-throughput mode (HAProxy ingress, gRPC between replicas) on the local "
        "Ray head that serve/serve --detach start; false: Serve's default Python proxy",
    )
    ingress_replicas: int = Field(default=2, ge=1, le=64, description="HTTP replicas; each scores ONNX variants")
    ingress_autoscaling: AutoscalingConfig | None = Field(
        default=None, description="Serve autoscaling of the ingress replicas (replaces ingress_replicas)"
    )
    scorer_threads: int = Field(
        default=0,
        ge=0,
        le=256,
        description="onnxruntime threads per scorer for large batches; 0: the machine's cores",
    )
    max_ongoing_requests: int = Field(default=64, ge=1, le=10_000, description="per replica, before queueing")
    refresh_seconds: float = Field(default=1.0, gt=0, le=300, description="how often replicas pick up changes")
    variant_timeout_s: float = Field(
        default=30,
        gt=0,
        le=3600,
        description="how long a request waits for a Spark-scored variant (its replica lost and being replaced: "
        "about 20 s for its JVM); then 503. Such a variant gets no routed traffic while no replica answers",
    )
    ready_timeout_s: float = Field(
        default=180,
        gt=0,
        le=86_400,
        description="how long deploying waits for every replica to be placed and started and every variant's "
        "model to load; then it ends naming what is missing, what it asks and what the cluster has free",
    )
    prediction_log: PredictionLogConfig = _defaults()
    feedback: FeedbackConfig = _defaults()
    data_roots: list[DataLocation] = Field(
        # A string, not a Path: defaults are validated, and JSON validation (config sent to Ray actors) takes str.
        default_factory=lambda: ["data"],  # type: ignore[arg-type]
        description="POST /train may only read data under these folders or bucket prefixes (s3://bucket/prefix)",
    )

    @property
    def local_host(self) -> str:
        """Where a client on this machine reaches the app: the bind address, or loopback for a wildcard one."""
        return self.host if self.host not in ("0.0.0.0", "::") else "127.0.0.1"

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not _HOST.match(value):
            raise ValueError(f"{value!r} is not a host name or IP address")
        return value

    @field_validator("variants")
    @classmethod
    def _variants(cls, value: dict[str, VariantConfig]) -> dict[str, VariantConfig]:
        if not value:
            raise ValueError("at least one variant is needed")
        for name in value:
            if not _VARIANT_NAME.match(name):
                raise ValueError(f"variant name {name!r}: lower-case letters, digits, '-' or '_', at most 31")
        if sum(variant.weight for variant in value.values()) <= 0:
            raise ValueError("the variants' weights are all 0; at least one must be above 0")
        return value

    @model_validator(mode="after")
    def _shadow_known(self) -> ServingConfig:
        if self.shadow is not None and self.shadow not in self.variants:
            raise ValueError(f"shadow = {self.shadow!r} is not a variant; variants: {sorted(self.variants)}")
        return self


class PipelineConfig(_Section):
    """The whole job. ``root`` is the project root every relative path resolves against."""

    root: Path = Path(".")
    ray: RayConfig = _defaults()
    spark: SparkConfig = _defaults()
    data: DataConfig
    features: FeaturesConfig = _defaults()
    model: ModelConfig = _defaults()
    evaluation: EvaluationConfig = _defaults()
    tuning: TuningConfig | None = None
    tracking: TrackingConfig = _defaults()
    serving: ServingConfig = _defaults()
    experiment: ExperimentConfig = _defaults()
