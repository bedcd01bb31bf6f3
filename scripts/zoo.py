"""The model zoo: common scikit-learn pipelines exported to ONNX with skl2onnx's
*default* options (ZipMap, Scaler, Imputer... as a user gets them), each with held-out
rows and what onnxruntime answers for them. crates/model/tests/zoo.rs serves every
model through vigil and checks its answers against onnxruntime's.

    scripts/zoo OUT_DIR          # makes the venv (scripts/requirements-zoo.txt), then this
    python scripts/zoo.py OUT_DIR

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
    labels = [int(c) for c in model.classes_] if task == "classification" else []
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


def main():
    out_dir = sys.argv[1]
    only = set(sys.argv[2:])
    for name, data, task, factory, gaps in ZOO:
        if not only or name in only:
            export(out_dir, name, data, task, factory, gaps)


if __name__ == "__main__":
    main()
