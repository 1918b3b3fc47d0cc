"""Our own Spark ML -> ONNX converters, one per stage type the pipeline builds.

Each fitted stage is read (parameters, or the saved node data of trees) and written as ONNX operators
in double precision, so the graph computes what Spark's ``transform`` computes. A stage with no
converter raises ``Unsupported`` with the reason; the parity gate then keeps the Spark scorer.
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scoring import NULL_STRING, PREDICTION, PROBABILITY, InputField

_OPSET = 18
_ML_OPSET = 3


class Unsupported(Exception):
    """A stage (or a setting of one) the exporter cannot write as ONNX; the message says which."""


class _Graph:
    """A small ONNX graph builder: column names map to tensors of shape [rows, width]."""

    def __init__(self) -> None:
        from onnx import helper

        self.helper = helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.inputs: list[Any] = []
        self.outputs: list[Any] = []
        self.columns: dict[str, str] = {}  # Spark column -> tensor (double [N, w], or string [N, 1])
        self.widths: dict[str, int] = {}
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"__{re.sub(r'[^A-Za-z0-9_]', '_', hint)}_{self._count}"  # "__": kept apart from column names

    def const(self, value: Any, dtype: Any = np.float64) -> str:
        from onnx import numpy_helper

        name = self.name("c")
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], domain: str = "", **attrs: Any) -> str:
        out = self.name(op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], domain=domain, **attrs))
        return out

    def column(self, name: str) -> str:
        if name not in self.columns:
            raise Unsupported(f"column {name!r} is read before any stage writes it")
        return self.columns[name]

    def set_column(self, name: str, tensor: str, width: int) -> None:
        self.columns[name], self.widths[name] = tensor, width

    def to_double(self, tensor: str) -> str:
        from onnx import TensorProto

        return self.op("Cast", [tensor], to=TensorProto.DOUBLE)

    def model_bytes(self) -> bytes:
        graph = self.helper.make_graph(self.nodes, "spark_pipeline", self.inputs, self.outputs, self.initializers)
        model = self.helper.make_model(
            graph,
            opset_imports=[
                self.helper.make_opsetid("", _OPSET),
                self.helper.make_opsetid("ai.onnx.ml", _ML_OPSET),
            ],
            producer_name="ray-mllib-pipeline",
        )
        model.ir_version = 9  # onnxruntime 1.32 reads up to 10; 9 keeps older runtimes able to load it
        import onnx

        onnx.checker.check_model(model)
        return bytes(model.SerializeToString())


def export_onnx(model: Any, inputs: Sequence[InputField], integer_columns: set[str], task: str) -> bytes:
    """The fitted PipelineModel as ONNX bytes with outputs ``prediction`` (and ``probability``)."""
    from onnx import TensorProto

    graph = _Graph()
    for field in inputs:
        if field.kind == "string":
            info = graph.helper.make_tensor_value_info(field.name, TensorProto.STRING, [None, 1])
        else:
            width = field.size if field.kind == "vector" else 1
            info = graph.helper.make_tensor_value_info(field.name, TensorProto.DOUBLE, [None, width])
        graph.inputs.append(info)
        graph.set_column(field.name, field.name, field.size or 1)
    stages = list(model.stages)
    if not stages:
        raise Unsupported("the pipeline has no stages")
    for stage in stages[:-1]:
        _convert_feature_stage(graph, stage, integer_columns)
    prediction, probability = _convert_estimator(graph, stages[-1], task)
    graph.nodes.append(graph.helper.make_node("Identity", [prediction], [PREDICTION]))
    graph.outputs.append(graph.helper.make_tensor_value_info(PREDICTION, TensorProto.DOUBLE, [None]))
    if probability is not None:
        graph.nodes.append(graph.helper.make_node("Identity", [probability], [PROBABILITY]))
        graph.outputs.append(graph.helper.make_tensor_value_info(PROBABILITY, TensorProto.DOUBLE, [None, None]))
    return graph.model_bytes()


# --- feature stages ---------------------------------------------------------------------------------

_CAST_DOUBLE = re.compile(r"^CAST\(`([^`]+)` AS DOUBLE\) AS `([^`]+)`$")
_CAST_STRING = re.compile(r"^CAST\(`([^`]+)` AS STRING\) AS `([^`]+)`$")
_FILL = re.compile(r"^COALESCE\(CAST\(`([^`]+)` AS DOUBLE\), ([-+0-9.eE]+|nan|inf)\) AS `([^`]+)`$")


def _convert_feature_stage(graph: _Graph, stage: Any, integer_columns: set[str]) -> None:
    kind = type(stage).__name__
    converter = _FEATURE_CONVERTERS.get(kind)
    if converter is None:
        raise Unsupported(f"no ONNX converter for the {kind} stage")
    converter(graph, stage, integer_columns)


def _sql(graph: _Graph, stage: Any, _integers: set[str]) -> None:
    """Only the statements the feature builder writes: boolean casts and constant fills."""
    statement = stage.getStatement()
    match = re.fullmatch(r"SELECT \*, (.*) FROM __THIS__", statement)
    if match is None:
        raise Unsupported(f"SQLTransformer statement {statement!r}")
    for item in match.group(1).split(", "):
        if found := _CAST_DOUBLE.match(item):
            graph.set_column(found.group(2), graph.column(found.group(1)), 1)
        elif found := _CAST_STRING.match(item):
            value = graph.column(found.group(1))
            text = graph.op(
                "Where",
                [
                    graph.op("Equal", [value, graph.const(1.0)]),
                    graph.const(["true"], object),
                    graph.const(["false"], object),
                ],
            )
            missing = graph.op("IsNaN", [value])
            graph.set_column(
                found.group(2), graph.op("Where", [missing, graph.const([NULL_STRING], object), text]), 1
            )
        elif found := _FILL.match(item):
            value = graph.column(found.group(1))
            filled = graph.op("Where", [graph.op("IsNaN", [value]), graph.const(float(found.group(2))), value])
            graph.set_column(found.group(3), filled, 1)
        else:
            raise Unsupported(f"SQLTransformer expression {item!r}")


def _in_out(stage: Any) -> list[tuple[str, str]]:
    if stage.isSet("inputCols"):
        return list(zip(stage.getInputCols(), stage.getOutputCols(), strict=True))
    return [(stage.getInputCol(), stage.getOutputCol())]


def _imputer(graph: _Graph, stage: Any, integers: set[str]) -> None:
    surrogates = stage.surrogateDF.first().asDict()
    missing_value = stage.getMissingValue()
    for source, out in _in_out(stage):
        value = graph.column(source)
        surrogate = float(surrogates[source])
        if source in integers:
            surrogate = float(math.trunc(surrogate))  # Spark casts the filled column back to its integer type
        missing = graph.op("IsNaN", [value])
        if not math.isnan(missing_value):
            missing = graph.op("Or", [missing, graph.op("Equal", [value, graph.const(missing_value)])])
        graph.set_column(out, graph.op("Where", [missing, graph.const(surrogate), value]), 1)


def _bucketizer(graph: _Graph, stage: Any, _integers: set[str]) -> None:
    if stage.getHandleInvalid() != "keep":
        raise Unsupported(f"Bucketizer handleInvalid={stage.getHandleInvalid()!r}")
    splits = list(stage.getSplits())
    if not (math.isinf(splits[0]) and math.isinf(splits[-1])):
        raise Unsupported("Bucketizer splits without infinite ends")
    value = graph.column(stage.getInputCol())
    inner = graph.const(np.array(splits[1:-1]).reshape(1, -1))
    above = graph.to_double(graph.op("GreaterOrEqual", [value, inner]))
    index = graph.op("ReduceSum", [above, graph.const([1], np.int64)], keepdims=1)
    bucket = graph.op("Where", [graph.op("IsNaN", [value]), graph.const(float(len(splits) - 1)), index])
    graph.set_column(stage.getOutputCol(), bucket, 1)


def _one_hot(graph: _Graph, stage: Any, _integers: set[str]) -> None:
    keep = stage.getHandleInvalid() == "keep"
    drop_last = stage.getDropLast()
    for (source, out), size in zip(_in_out(stage), stage.categorySizes, strict=True):
        index = graph.column(source)
        if keep:
            invalid = graph.op(
                "Or",
                [
                    graph.op("Less", [index, graph.const(0.0)]),
                    graph.op("GreaterOrEqual", [index, graph.const(float(size))]),
                ],
            )
            index = graph.op("Where", [invalid, graph.const(float(size)), index])
        width = size + (1 if keep else 0) - (1 if drop_last else 0)
        slots = graph.const(np.arange(width, dtype=np.float64).reshape(1, -1))
        graph.set_column(out, graph.to_double(graph.op("Equal", [index, slots])), width)


def _string_indexer(graph: _Graph, stage: Any, _integers: set[str]) -> None:
    if stage.getHandleInvalid() != "keep":
        raise Unsupported(f"StringIndexer handleInvalid={stage.getHandleInvalid()!r}")
    for (source, out), labels in zip(_in_out(stage), stage.labelsArray, strict=True):
        encoded = graph.op(
            "LabelEncoder",
            [graph.column(source)],
            domain="ai.onnx.ml",
            keys_strings=list(labels),
            values_floats=[float(i) for i in range(len(labels))],
            default_float=float(len(labels)),
        )
        graph.set_column(out, graph.to_double(encoded), 1)


def _assembler(graph: _Graph, stage: Any, _integers: set[str]) -> None:
    sources = stage.getInputCols()
    tensors = [graph.column(name) for name in sources]
    width = sum(graph.widths[name] for name in sources)
    merged = tensors[0] if len(tensors) == 1 else graph.op("Concat", tensors, axis=1)
    graph.set_column(stage.getOutputCol(), merged, width)


def _standard_scaler(graph: _Graph, stage: Any, _integers: set[str]) -> None:
    value = graph.column(stage.getInputCol())
    if stage.getWithMean():
        value = graph.op("Sub", [value, graph.const(stage.mean.toArray().reshape(1, -1))])
    if stage.getWithStd():
        std = stage.std.toArray()
        factor = np.divide(1.0, std, out=np.zeros_like(std), where=std != 0)
        value = graph.op("Mul", [value, graph.const(factor.reshape(1, -1))])
    graph.set_column(stage.getOutputCol(), value, graph.widths[stage.getInputCol()])


def _min_max_scaler(graph: _Graph, stage: Any, _integers: set[str]) -> None:
    low, high = stage.originalMin.toArray(), stage.originalMax.toArray()
    span = high - low
    scale = stage.getMax() - stage.getMin()
    # Spark maps a constant column to the middle of the output range.
    factor = np.divide(scale, span, out=np.zeros_like(span), where=span != 0)
    offset = np.where(span != 0, stage.getMin() - low * factor, 0.5 * scale + stage.getMin())
    value = graph.column(stage.getInputCol())
    scaled = graph.op(
        "Add", [graph.op("Mul", [value, graph.const(factor.reshape(1, -1))]), graph.const(offset.reshape(1, -1))]
    )
    graph.set_column(stage.getOutputCol(), scaled, graph.widths[stage.getInputCol()])


def _size_hint(graph: _Graph, stage: Any, _integers: set[str]) -> None:
    graph.set_column(stage.getInputCol(), graph.column(stage.getInputCol()), stage.getSize())


def _selector(graph: _Graph, stage: Any, _integers: set[str]) -> None:
    selected = sorted(int(i) for i in stage.selectedFeatures)
    value = graph.column(stage.getFeaturesCol())
    picked = graph.op("Gather", [value, graph.const(selected, np.int64)], axis=1)
    graph.set_column(stage.getOutputCol(), picked, len(selected))


_FEATURE_CONVERTERS = {
    "SQLTransformer": _sql,
    "ImputerModel": _imputer,
    "Bucketizer": _bucketizer,
    "OneHotEncoderModel": _one_hot,
    "StringIndexerModel": _string_indexer,
    "VectorAssembler": _assembler,
    "StandardScalerModel": _standard_scaler,
    "MinMaxScalerModel": _min_max_scaler,
    "VectorSizeHint": _size_hint,
    "VarianceThresholdSelectorModel": _selector,
    "UnivariateFeatureSelectorModel": _selector,
}


# --- estimators -------------------------------------------------------------------------------------


def _convert_estimator(graph: _Graph, stage: Any, task: str) -> tuple[str, str | None]:
    kind = type(stage).__name__
    if kind == "ALSModel":
        return _als(graph, stage), None
    features = graph.column(stage.getFeaturesCol())
    if kind == "LogisticRegressionModel":
        return _logistic(graph, stage, features)
    if kind == "LinearRegressionModel":
        return _linear(graph, stage.coefficients.toArray(), stage.intercept, features), None
    if kind == "GeneralizedLinearRegressionModel":
        return _glm(graph, stage, features), None
    if kind == "NaiveBayesModel":
        return _naive_bayes(graph, stage, features)
    if kind == "KMeansModel":
        return _kmeans(graph, stage, features), None
    if kind == "BisectingKMeansModel":
        return _bisecting_kmeans(graph, stage, features), None
    if kind == "GaussianMixtureModel":
        return _gaussian_mixture(graph, stage, features)
    if kind in _TREE_MODELS:
        return _trees(graph, stage, kind, features)
    raise Unsupported(f"no ONNX converter for the {kind} estimator")


def _als(graph: _Graph, stage: Any) -> str:
    """A user/item pair's rating: the dot product of their factors; an unknown id gives NaN (cold start)."""
    from onnx import TensorProto

    def factors(frame: Any, column: str) -> str:
        rows = frame.collect()
        table = np.array([row["features"] for row in rows] + [[math.nan] * stage.rank], dtype=np.float64)
        ids = graph.op("Cast", [graph.column(column)], to=TensorProto.INT64)
        # An unknown id maps to -1, which Gather reads as the last row: the NaN row appended above.
        index = graph.op(
            "LabelEncoder",
            [ids],
            domain="ai.onnx.ml",
            keys_int64s=[int(row["id"]) for row in rows],
            values_int64s=list(range(len(rows))),
            default_int64=-1,
        )
        return graph.op("Gather", [graph.const(table), index], axis=0)

    users = factors(stage.userFactors, stage.getUserCol())
    items = factors(stage.itemFactors, stage.getItemCol())
    rating = graph.op("ReduceSum", [graph.op("Mul", [users, items]), graph.const([-1], np.int64)], keepdims=0)
    return graph.op("Reshape", [rating, graph.const([-1], np.int64)])


def _linear(graph: _Graph, weights: np.ndarray, intercept: float, features: str) -> str:
    product = graph.op("MatMul", [features, graph.const(weights.reshape(-1, 1))])
    return graph.op("Reshape", [graph.op("Add", [product, graph.const(intercept)]), graph.const([-1], np.int64)])


def _binary_probability(graph: _Graph, positive: str) -> str:
    """[1 - p, p] as a [rows, 2] tensor from the positive class's probability p of shape [rows]."""
    axis = graph.const([1], np.int64)
    negative = graph.op("Sub", [graph.const(1.0), positive])
    return graph.op(
        "Concat", [graph.op("Unsqueeze", [negative, axis]), graph.op("Unsqueeze", [positive, axis])], axis=1
    )


def _softmax_and_argmax(graph: _Graph, raw: str) -> tuple[str, str]:
    probability = graph.op("Softmax", [raw], axis=1)
    label = graph.op("ArgMax", [raw], axis=1, keepdims=0)
    return graph.to_double(label), probability


def _logistic(graph: _Graph, stage: Any, features: str) -> tuple[str, str]:
    if stage.numClasses == 2:
        margin = _linear(graph, stage.coefficients.toArray(), stage.intercept, features)
        threshold = stage.getThreshold()
        cut = (
            math.log(threshold / (1 - threshold))
            if 0 < threshold < 1
            else (-math.inf if threshold == 0 else math.inf)
        )
        probability = _binary_probability(graph, graph.op("Sigmoid", [margin]))
        return graph.to_double(graph.op("Greater", [margin, graph.const(cut)])), probability
    weights = stage.coefficientMatrix.toArray()
    raw = graph.op(
        "Add",
        [
            graph.op("MatMul", [features, graph.const(weights.T)]),
            graph.const(stage.interceptVector.toArray().reshape(1, -1)),
        ],
    )
    return _softmax_and_argmax(graph, raw)


def _glm(graph: _Graph, stage: Any, features: str) -> str:
    if stage.isSet("offsetCol"):
        raise Unsupported("GLM with an offset column")
    eta = _linear(graph, stage.coefficients.toArray(), stage.intercept, features)
    family = stage.getFamily()
    if family == "tweedie":
        power = stage.getLinkPower() if stage.isSet("linkPower") else 1 - stage.getVariancePower()
        if power == 0:
            return graph.op("Exp", [eta])
        return graph.op("Pow", [eta, graph.const(1.0 / power)])
    default_links = {"gaussian": "identity", "binomial": "logit", "poisson": "log", "gamma": "inverse"}
    link = stage.getLink() if stage.isSet("link") else default_links[family]
    if link == "identity":
        return eta
    if link == "log":
        return graph.op("Exp", [eta])
    if link == "logit":
        return graph.op("Sigmoid", [eta])
    if link == "inverse":
        return graph.op("Reciprocal", [eta])
    if link == "sqrt":
        return graph.op("Mul", [eta, eta])
    if link == "probit":
        erf = graph.op("Erf", [graph.op("Mul", [eta, graph.const(1 / math.sqrt(2))])])
        return graph.op("Mul", [graph.op("Add", [erf, graph.const(1.0)]), graph.const(0.5)])
    if link == "cloglog":
        return graph.op("Sub", [graph.const(1.0), graph.op("Exp", [graph.op("Neg", [graph.op("Exp", [eta])])])])
    raise Unsupported(f"GLM link {link!r}")


def _naive_bayes(graph: _Graph, stage: Any, features: str) -> tuple[str, str]:
    model_type = stage.getModelType()
    theta, prior = stage.theta.toArray(), stage.pi.toArray()
    if model_type == "multinomial":
        raw = graph.op(
            "Add", [graph.op("MatMul", [features, graph.const(theta.T)]), graph.const(prior.reshape(1, -1))]
        )
    elif model_type == "complement":
        raw = graph.op("MatMul", [features, graph.const(theta.T)])
    elif model_type == "bernoulli":
        negative = np.log1p(-np.exp(theta))
        weights = graph.const((theta - negative).T)
        raw = graph.op(
            "Add",
            [graph.op("MatMul", [features, weights]), graph.const((prior + negative.sum(axis=1)).reshape(1, -1))],
        )
    elif model_type == "gaussian":
        variance = stage.sigma.toArray()
        # log N(x | theta_c, var_c) summed over features = const_c + x.a_c + x^2.b_c
        squared = graph.op("Mul", [features, features])
        linear = graph.op("MatMul", [features, graph.const((theta / variance).T)])
        quadratic = graph.op("MatMul", [squared, graph.const((-0.5 / variance).T)])
        constant = prior - 0.5 * np.log(2 * np.pi * variance).sum(axis=1) - 0.5 * (theta**2 / variance).sum(axis=1)
        raw = graph.op("Add", [graph.op("Add", [linear, quadratic]), graph.const(constant.reshape(1, -1))])
    else:
        raise Unsupported(f"naive Bayes modelType {model_type!r}")
    return _softmax_and_argmax(graph, raw)


def _kmeans(graph: _Graph, stage: Any, features: str) -> str:
    centers = np.array([center for center in stage.clusterCenters()], dtype=np.float64)
    score = _center_scores(graph, centers, stage.getDistanceMeasure(), features)
    return graph.to_double(graph.op("ArgMin", [score], axis=1, keepdims=0))


def _center_scores(graph: _Graph, centers: np.ndarray, measure: str, features: str) -> str:
    """[rows, centers]: a score per center that orders them as Spark's distance measure does."""
    if measure == "euclidean":
        # |x - c|^2 = |x|^2 + (|c|^2 - 2 x.c); |x|^2 is the same for every center, so it is left out.
        cross = graph.op("MatMul", [features, graph.const(-2.0 * centers.T)])
        return graph.op("Add", [cross, graph.const((centers**2).sum(axis=1).reshape(1, -1))])
    if measure == "cosine":
        unit = centers / np.linalg.norm(centers, axis=1, keepdims=True)
        return graph.op("Neg", [graph.op("MatMul", [features, graph.const(unit.T)])])
    raise Unsupported(f"distanceMeasure {measure!r}")


def _vector(value: dict[str, Any]) -> np.ndarray:
    """A Spark ML vector as Parquet stores it (type 1 dense; 0 sparse, with size and indices)."""
    if value["type"] == 1:
        return np.asarray(value["values"], dtype=np.float64)
    dense = np.zeros(value["size"], dtype=np.float64)
    dense[np.asarray(value["indices"], dtype=np.int64)] = value["values"]
    return dense


def _bisecting_kmeans(graph: _Graph, stage: Any, features: str) -> str:
    """Spark's walk down the cluster tree: at each split, the child whose center costs less (the left one
    on a tie) until a leaf, whose index is the cluster. Unrolled to the tree's depth; leaves loop on
    themselves, so rows that reach a leaf early stay there."""
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix="pipeline-bisecting-") as folder:
        stage.write().overwrite().save(folder)
        nodes = pq.read_table(Path(folder) / "data" / "data").to_pylist()
    position = {node["index"]: at for at, node in enumerate(nodes)}
    children = {child for node in nodes for child in node["children"]}
    (root,) = [position[node["index"]] for node in nodes if node["index"] not in children]
    left, right, label = [], [], []
    for at, node in enumerate(nodes):
        if len(node["children"]) > 2:
            raise Unsupported(f"a bisecting k-means node with {len(node['children'])} children")
        # A leaf points at itself; a node with one child (a split that found nothing) at it twice.
        pair = [position[child] for child in node["children"]] or [at]
        left.append(pair[0])
        right.append(pair[-1])
        label.append(max(node["index"], 0))  # leaves are numbered 0..k-1; inner nodes are negative

    def depth(at: int) -> int:
        return 0 if left[at] == at else 1 + max(depth(left[at]), depth(right[at]))

    centers = np.array([_vector(node["center"]) for node in nodes])
    scores = _center_scores(graph, centers, stage.getDistanceMeasure(), features)
    lefts, rights = graph.const(left, np.int64), graph.const(right, np.int64)
    rows = graph.op("Slice", [graph.op("Shape", [scores]), graph.const([0], np.int64), graph.const([1], np.int64)])
    column = graph.op("Concat", [rows, graph.const([1], np.int64)], axis=0)
    current = graph.op("Expand", [graph.const([[root]], np.int64), column])  # [rows, 1]: every row at the root
    for _ in range(depth(root)):
        go_left = graph.op("Gather", [lefts, current], axis=0)
        go_right = graph.op("Gather", [rights, current], axis=0)
        cost_left = graph.op("GatherElements", [scores, go_left], axis=1)
        cost_right = graph.op("GatherElements", [scores, go_right], axis=1)
        current = graph.op("Where", [graph.op("Less", [cost_right, cost_left]), go_right, go_left])
    cluster = graph.op("Gather", [graph.const(label, np.int64), current], axis=0)
    return graph.to_double(graph.op("Reshape", [cluster, graph.const([-1], np.int64)]))


def _gaussian_mixture(graph: _Graph, stage: Any, features: str) -> tuple[str, str]:
    components = stage.gaussiansDF.collect()
    log_densities = []
    for row in components:
        mean = row["mean"].toArray()
        covariance = row["cov"].toArray()
        sign, log_det = np.linalg.slogdet(covariance)
        if sign <= 0:
            raise Unsupported("a Gaussian mixture component with a singular covariance")
        precision = np.linalg.inv(covariance)
        centred = graph.op("Sub", [features, graph.const(mean.reshape(1, -1))])
        mahalanobis = graph.op(
            "ReduceSum",
            [
                graph.op("Mul", [graph.op("MatMul", [centred, graph.const(precision)]), centred]),
                graph.const([1], np.int64),
            ],
            keepdims=1,
        )
        constant = -0.5 * (len(mean) * math.log(2 * math.pi) + log_det)
        log_densities.append(
            graph.op("Add", [graph.op("Mul", [mahalanobis, graph.const(-0.5)]), graph.const(constant)])
        )
    stacked = graph.op("Concat", log_densities, axis=1)
    raw = graph.op("Add", [stacked, graph.const(np.log(np.array(stage.weights)).reshape(1, -1))])
    return _softmax_and_argmax(graph, raw)


# --- trees ------------------------------------------------------------------------------------------

_TREE_MODELS = {
    "DecisionTreeClassificationModel": ("classifier", "single"),
    "RandomForestClassificationModel": ("classifier", "forest"),
    "GBTClassificationModel": ("classifier", "boosted"),
    "DecisionTreeRegressionModel": ("regressor", "single"),
    "RandomForestRegressionModel": ("regressor", "forest"),
    "GBTRegressionModel": ("regressor", "boosted"),
}


def _tree_tables(stage: Any, ensemble: bool) -> tuple[list[dict[str, Any]], list[float]]:
    """Every tree's nodes (from the saved model's Parquet data) and the trees' weights."""
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix="pipeline-trees-") as folder:
        stage.write().overwrite().save(folder)
        nodes = pq.read_table(Path(folder) / "data").to_pylist()
        if not ensemble:
            return [{**node, "treeID": 0} for node in nodes], [1.0]
        meta = pq.read_table(Path(folder) / "treesMetadata").to_pylist()
    weights = [row["weights"] for row in sorted(meta, key=lambda row: row["treeID"])]
    return [{**row["nodeData"], "treeID": row["treeID"]} for row in nodes], weights


# ONNX's tree-ensemble operator takes each node and each leaf target as parallel lists, one per attribute.
_TREE_NODE_ATTRIBUTES = (
    "nodes_treeids",
    "nodes_nodeids",
    "nodes_featureids",
    "nodes_modes",
    "nodes_truenodeids",
    "nodes_falsenodeids",
    "target_treeids",
    "target_nodeids",
    "target_ids",
)


def _trees(graph: _Graph, stage: Any, kind: str, features: str) -> tuple[str, str | None]:
    role, shape = _TREE_MODELS[kind]
    nodes, tree_weights = _tree_tables(stage, ensemble=shape != "single")
    classes = stage.numClasses if role == "classifier" and shape != "boosted" else None
    targets = classes or 1
    attrs: dict[str, list[Any]] = {key: [] for key in _TREE_NODE_ATTRIBUTES}
    thresholds: list[float] = []
    leaf_weights: list[float] = []
    trees = len(tree_weights)
    for node in sorted(nodes, key=lambda n: (n["treeID"], n["id"])):
        tree, node_id = node["treeID"], node["id"]
        attrs["nodes_treeids"].append(tree)
        attrs["nodes_nodeids"].append(node_id)
        if node["leftChild"] < 0:  # a leaf
            attrs["nodes_featureids"].append(0)
            attrs["nodes_modes"].append("LEAF")
            attrs["nodes_truenodeids"].append(0)
            attrs["nodes_falsenodeids"].append(0)
            thresholds.append(0.0)
            if classes:
                stats = np.array(node["impurityStats"], dtype=np.float64)
                total = stats.sum()
                values = stats / total if total > 0 else np.full(classes, 1.0 / classes)
                values = values / trees if shape == "forest" else values
            else:
                scale = tree_weights[tree] if shape == "boosted" else (1.0 / trees if shape == "forest" else 1.0)
                values = np.array([node["prediction"] * scale])
            for target, value in enumerate(values):
                attrs["target_treeids"].append(tree)
                attrs["target_nodeids"].append(node_id)
                attrs["target_ids"].append(target)
                leaf_weights.append(float(value))
            continue
        split = node["split"]
        attrs["nodes_featureids"].append(split["featureIndex"])
        attrs["nodes_truenodeids"].append(node["leftChild"])
        attrs["nodes_falsenodeids"].append(node["rightChild"])
        if split["numCategories"] < 0:
            attrs["nodes_modes"].append("BRANCH_LEQ")
            thresholds.append(float(split["leftCategoriesOrThreshold"][0]))
        else:
            left = [float(c) for c in split["leftCategoriesOrThreshold"]]
            if len(left) != 1:
                raise Unsupported(f"a categorical tree split with {len(left)} left categories")
            attrs["nodes_modes"].append("BRANCH_EQ")
            thresholds.append(left[0])
    from onnx import numpy_helper

    scores = graph.op(
        "TreeEnsembleRegressor",
        [features],
        domain="ai.onnx.ml",
        n_targets=targets,
        aggregate_function="SUM",
        nodes_values_as_tensor=numpy_helper.from_array(np.array(thresholds, dtype=np.float64)),
        target_weights_as_tensor=numpy_helper.from_array(np.array(leaf_weights, dtype=np.float64)),
        nodes_missing_value_tracks_true=[0] * len(thresholds),
        **attrs,
    )
    scores = graph.to_double(scores)  # the operator sums in float32; probabilities stay well within 1e-5
    if classes:
        label = graph.to_double(graph.op("ArgMax", [scores], axis=1, keepdims=0))
        return label, scores
    value = graph.op("Reshape", [scores, graph.const([-1], np.int64)])
    if role == "regressor":
        return value, None
    # Spark's GBT classifier: rawPrediction = [-m, m], probability = sigmoid(2m), label = m > 0.
    probability = _binary_probability(graph, graph.op("Sigmoid", [graph.op("Mul", [value, graph.const(2.0)])]))
    return graph.to_double(graph.op("Greater", [value, graph.const(0.0)])), probability
