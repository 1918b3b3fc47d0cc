"""Feature roles: inference rules (pure) and on a real Spark frame; unseen categories at scoring."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.config import ColumnFeature, FeaturesConfig
from pipeline.errors import DataError
from pipeline.features import ColumnProfile, build_feature_stages, infer_feature_spec, profile_columns, value_kind


def profile(name: str, kind: Any, distinct: int, nulls: int = 0, tokens: float | None = None) -> ColumnProfile:
    return ColumnProfile(name=name, kind=kind, rows=1000, nulls=nulls, distinct=distinct, mean_tokens=tokens)


PROFILES = [
    profile("amount", "float", 990),
    profile("age", "integer", 70, nulls=30),
    profile("city", "string", 12, tokens=1.0),
    profile("merchant", "string", 400, tokens=1.0),
    profile("review", "string", 990, tokens=12.5),
    profile("order_ref", "string", 1000, tokens=1.0),
    profile("customer_id", "integer", 300),
    profile("currency", "string", 1, tokens=1.0),
    profile("created", "temporal", 1000),
    profile("label", "integer", 2),
]


def test_inferred_roles_follow_the_documented_rules() -> None:
    spec = infer_feature_spec(PROFILES, FeaturesConfig(), exclude={"label"})
    roles = {name: feature.type for name, feature in spec.columns.items()}
    assert roles == {
        "amount": "numeric",
        "age": "numeric",
        "city": "categorical",
        "merchant": "hashed",
        "review": "text",
    }
    assert spec.dropped == {
        "order_ref": "id-like (100% of values unique)",
        "customer_id": "id-like name",
        "currency": "constant",
        "created": "date/time column (derive numeric parts in the data to use it)",
    }
    assert "label" not in spec.columns and "label" not in spec.dropped
    pinned = spec.as_config()
    assert pinned["infer"] is False and pinned["columns"]["merchant"] == {"type": "hashed"}


def test_declared_columns_win_and_infer_false_keeps_only_them() -> None:
    config = FeaturesConfig(
        columns={"age": ColumnFeature(type="categorical"), "city": ColumnFeature(type="drop")},
        infer=False,
    )
    spec = infer_feature_spec(PROFILES, config, exclude={"label"})
    assert list(spec.columns) == ["age"]
    assert spec.dropped["city"] == "declared drop"
    assert spec.dropped["amount"] == "not declared (features.infer is false)"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            FeaturesConfig(columns={"city": ColumnFeature(type="numeric")}),
            "declared numeric but column 'city' holds string",
        ),
        (FeaturesConfig(columns={"nope": ColumnFeature(type="numeric")}), r"\['nope'\] are not in the data"),
    ],
)
def test_declared_mismatches_are_errors(config: FeaturesConfig, message: str) -> None:
    with pytest.raises(DataError, match=message):
        infer_feature_spec(PROFILES, config, exclude={"label"})


def test_all_null_column_is_an_error_naming_it() -> None:
    with pytest.raises(DataError, match="column 'empty': every value is null"):
        infer_feature_spec([*PROFILES, profile("empty", "float", 0, nulls=1000)], FeaturesConfig(), exclude=set())


def test_profiles_and_stages_on_a_real_frame(spark: Any) -> None:
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression

    rows = [
        (
            i,
            float(i % 17) if i % 10 else None,
            ["red", "green", "blue"][i % 3],
            f"the quick brown fox {i % 5} jumps",
            "EUR",
            i % 2,
        )
        for i in range(400)
    ]
    frame = spark.createDataFrame(
        rows, "order_id long, amount double, colour string, note string, currency string, label int"
    )
    profiles = {p.name: p for p in profile_columns(frame, frame.columns, sample_rows=1000)}
    assert profiles["amount"].nulls == 40
    assert profiles["colour"].distinct == 3
    assert profiles["note"].mean_tokens == pytest.approx(6.0)
    spec = infer_feature_spec(profiles.values(), FeaturesConfig(), exclude={"label"})
    assert {n: f.type for n, f in spec.columns.items()} == {
        "amount": "numeric",
        "colour": "categorical",
        "note": "text",
    }
    assert set(spec.dropped) == {"order_id", "currency"}

    kinds = {name: value_kind(frame.schema[name].dataType) for name in spec.columns}
    stages = build_feature_stages(spec, kinds).stages
    model = Pipeline(stages=[*stages, LogisticRegression(labelCol="label")]).fit(frame)
    unseen = spark.createDataFrame(
        [(999, None, "purple", None, "EUR", 0)],
        "order_id long, amount double, colour string, note string, currency string, label int",
    )
    scored = model.transform(unseen).select("prediction", "features").first()
    assert scored["prediction"] in (0.0, 1.0)  # an unseen category and nulls score, they do not crash


def test_declared_buckets_constant_fill_minmax_and_vector_pass_through(spark: Any) -> None:
    from pyspark.ml import Pipeline
    from pyspark.ml.linalg import Vectors, VectorUDT
    from pyspark.sql.types import DoubleType, IntegerType, StructField, StructType

    schema = StructType(
        [
            StructField("amount", DoubleType()),
            StructField("score", DoubleType()),
            StructField("embedding", VectorUDT()),
            StructField("label", IntegerType()),
        ]
    )
    frame = spark.createDataFrame(
        [(float(i) if i % 7 else None, float(i % 13), Vectors.dense([i, -i]), i % 2) for i in range(200)], schema
    )
    spec = infer_feature_spec(
        profile_columns(frame, ["amount", "score", "embedding"], sample_rows=1000),
        FeaturesConfig(
            columns={
                "amount": ColumnFeature(type="numeric", impute="constant", fill_value=-1.0, scale="minmax"),
                "score": ColumnFeature(type="numeric", buckets=4),
                "embedding": ColumnFeature(type="vector"),
            },
            infer=False,
        ),
        exclude={"label"},
    )
    kinds = {name: value_kind(frame.schema[name].dataType) for name in spec.columns}
    model = Pipeline(stages=build_feature_stages(spec, kinds).stages).fit(frame)
    vectors = [row["features"].toArray() for row in model.transform(frame).select("features").collect()]
    assert {v.size for v in vectors} == {1 + 2 + 4}  # amount, embedding, 4 buckets (3 + the "keep" slot)
    # Slots: the embedding as given, the 4 score buckets one-hot, then amount min-max scaled (nulls -> -1 -> 0).
    assert [tuple(v[:2]) for v in vectors[:3]] == [(0.0, -0.0), (1.0, -1.0), (2.0, -2.0)]
    assert all(sum(v[2:6]) <= 1.0 for v in vectors)
    assert min(v[6] for v in vectors) == 0.0 and max(v[6] for v in vectors) == 1.0
    assert vectors[0][6] == 0.0  # row 0's amount is null: filled with -1, the minimum
