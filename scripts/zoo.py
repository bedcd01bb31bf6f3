"""The model zoo: common scikit-learn pipelines exported to ONNX with skl2onnx's
*default* options (ZipMap, Scaler, Imputer... as a user gets them), each with held-out
rows and what onnxruntime answers for them. crates/model/tests/zoo.rs serves every
model through vigil and checks its answers against onnxruntime's.

    scripts/zoo OUT_DIR          # makes the venv (scripts/requirements-zoo.txt), then this
    python scripts/zoo.py OUT_DIR

Also writes OUT_DIR/bad/*.onnx: models `vigil models init` must refuse (two inputs, a
string input, an unknown operator, an input width only some data fits).

Writes OUT_DIR/<name>/model.onnx, train.csv (features and a `target` column, for
`vigil models init`) and expected.json:
    {"task": "classification"|"regression", "features": [...], "labels": [...],
     "rows": [[...], ...], "probabilities": [[...], ...] | "values": [...],
     "ort_seconds_per_row": float}
Everything is seeded: the same versions give the same files.
"""

import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort
from skl2onnx import to_onnx
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import BernoulliNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Binarizer, MinMaxScaler, Normalizer, StandardScaler
from sklearn.svm import SVC, SVR
from sklearn.tree import DecisionTreeClassifier

HELD_OUT = 40


def dataset(name):
    if name == "iris_named":
        x, y, names = dataset("iris")
        return x, np.array(load_iris().target_names)[y], names
    loader = {
        "breast_cancer": load_breast_cancer,
        "iris": load_iris,
        "wine": load_wine,
        "diabetes": load_diabetes,
    }[name]
    d = loader()
    names = [f.replace(" ", "_") for f in d.feature_names]
    return d.data.astype(np.float32), d.target, names


def with_gaps(x, seed):
    """Some missing cells, as real training data has."""
    rng = np.random.default_rng(seed)
    x = x.copy()
    x[rng.random(x.shape) < 0.05] = np.nan
    return x


ZOO = [
    # name, dataset, task, pipeline factory, add missing values
    ("logistic_standard_scaler", "breast_cancer", "classification",
     lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)), False),
    ("random_forest", "iris", "classification",
     lambda: RandomForestClassifier(n_estimators=25, max_depth=6, random_state=0), False),
    ("gradient_boosting", "wine", "classification",
     lambda: GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=0), False),
    ("hist_gradient_boosting", "breast_cancer", "classification",
     lambda: HistGradientBoostingClassifier(max_iter=30, random_state=0), False),
    ("decision_tree", "iris", "classification",
     lambda: DecisionTreeClassifier(max_depth=5, random_state=0), False),
    ("svc_probabilities", "wine", "classification",
     lambda: make_pipeline(StandardScaler(), SVC(probability=True, random_state=0)), False),
    ("k_nearest_neighbours", "iris", "classification",
     lambda: KNeighborsClassifier(n_neighbors=5), False),
    ("mlp", "wine", "classification",
     lambda: make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,), max_iter=1000, random_state=0)), False),
    ("linear_regression", "diabetes", "regression",
     lambda: LinearRegression(), False),
    ("random_forest_regressor", "diabetes", "regression",
     lambda: RandomForestRegressor(n_estimators=20, max_depth=6, random_state=0), False),
    ("imputer_min_max_scaler", "breast_cancer", "classification",
     lambda: make_pipeline(SimpleImputer(), MinMaxScaler(), LogisticRegression(max_iter=500)), True),
    ("svr", "diabetes", "regression",
     lambda: make_pipeline(StandardScaler(), SVR()), False),
    ("normalizer_binarizer_bernoulli_nb", "iris", "classification",
     lambda: make_pipeline(Normalizer(), Binarizer(threshold=0.3), BernoulliNB()), False),
    # Labels as words, as most real data has them.
    ("random_forest_named_labels", "iris_named", "classification",
     lambda: RandomForestClassifier(n_estimators=25, max_depth=6, random_state=0), False),
    ("logistic_named_labels", "iris_named", "classification",
     lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)), False),
    ("svc_named_labels", "iris_named", "classification",
     lambda: SVC(probability=True, random_state=0), False),
]


def ort_outputs(sess, rows, task, labels):
    outs = sess.run(None, {sess.get_inputs()[0].name: rows})
    if task == "regression":
        return {"values": [float(v) for v in np.asarray(outs[0]).reshape(-1)]}
    # Default export: output 0 the label, output 1 a ZipMap (a list of {label: p}).
    probs = outs[1]
    if isinstance(probs, list):
        probs = [[float(p[label]) for label in labels] for p in probs]
    else:
        probs = np.asarray(probs).tolist()
    return {"probabilities": probs}


def export(out_dir, name, data, task, factory, gaps):
    x, y, features = dataset(data)
    if gaps:
        x = with_gaps(x, 1)
    x_train, x_test, y_train, _ = train_test_split(x, y, test_size=HELD_OUT, random_state=0)
    model = factory().fit(x_train, y_train)
    onx = to_onnx(model, x_train[:1])
    path = os.path.join(out_dir, name)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "model.onnx"), "wb") as f:
        f.write(onx.SerializeToString())
    with open(os.path.join(path, "train.csv"), "w") as f:
        f.write(",".join(features + ["target"]) + "\n")
        for row, target in zip(x_train, y_train):
            cells = ["" if np.isnan(v) else repr(float(v)) for v in row]
            f.write(",".join(cells + [str(target)]) + "\n")
    labels = [c.item() if hasattr(c, "item") else c for c in model.classes_] \
        if task == "classification" else []
    sess = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = ort_outputs(sess, x_test, task, labels)
    # onnxruntime's own single-row time, for the latency bench.
    one = x_test[:1]
    runs = 2000
    start = time.perf_counter()
    for _ in range(runs):
        sess.run(None, {sess.get_inputs()[0].name: one})
    per_row = (time.perf_counter() - start) / runs
    expected.update({
        "task": task,
        "features": features,
        "labels": labels,
        "rows": [[None if np.isnan(v) else float(v) for v in r] for r in x_test],
        "ort_seconds_per_row": per_row,
        "ops": sorted({n.op_type for n in onx.graph.node}),
    })
    with open(os.path.join(path, "expected.json"), "w") as f:
        json.dump(expected, f)
    print(f"{name:36} {', '.join(expected['ops'])}")


def bad_models(out_dir):
    """Models `vigil models init` must refuse with a clear message (OUT_DIR/bad)."""
    from onnx import TensorProto, helper

    def save(name, nodes, inputs, outputs, initializers=(), domains=()):
        graph = helper.make_graph(nodes, name, inputs, outputs, list(initializers))
        opsets = [helper.make_opsetid("", 17)] + [helper.make_opsetid(d, 1) for d in domains]
        model = helper.make_model(graph, opset_imports=opsets)
        with open(os.path.join(out_dir, "bad", f"{name}.onnx"), "wb") as f:
            f.write(model.SerializeToString())

    os.makedirs(os.path.join(out_dir, "bad"), exist_ok=True)
    f32 = TensorProto.FLOAT
    save("two_inputs", [helper.make_node("Add", ["a", "b"], ["y"])],
         [helper.make_tensor_value_info("a", f32, ["N", 2]),
          helper.make_tensor_value_info("b", f32, ["N", 2])],
         [helper.make_tensor_value_info("y", f32, ["N", 2])])
    save("string_input", [helper.make_node("Identity", ["s"], ["y"])],
         [helper.make_tensor_value_info("s", TensorProto.STRING, ["N", 1])],
         [helper.make_tensor_value_info("y", TensorProto.STRING, ["N", 1])])
    save("unsupported_op",
         [helper.make_node("FancyOp", ["x"], ["probabilities"], domain="example.custom")],
         [helper.make_tensor_value_info("x", f32, ["N", 4])],
         [helper.make_tensor_value_info("probabilities", f32, ["N", 2])],
         domains=["example.custom"])
    # A width the file leaves open, which only 4 features can fill.
    w = helper.make_tensor("w", f32, [4, 2], [0.1] * 8)
    save("open_width",
         [helper.make_node("MatMul", ["x", "w"], ["logits"]),
          helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)],
         [helper.make_tensor_value_info("x", f32, ["N", "F"])],
         [helper.make_tensor_value_info("probabilities", f32, ["N", 2])],
         initializers=[w])


def main():
    out_dir = sys.argv[1]
    only = set(sys.argv[2:])
    for name, data, task, factory, gaps in ZOO:
        if not only or name in only:
            export(out_dir, name, data, task, factory, gaps)
    bad_models(out_dir)


if __name__ == "__main__":
    main()
