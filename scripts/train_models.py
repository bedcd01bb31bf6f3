#!/usr/bin/env python3
"""Train and export vigil's bundled models (and the test-only fixture models).

Re-runnable and deterministic: every random draw is seeded, so running it again gives
the same data and the same model cards. The weights can differ in their last digits
between numerical library builds (BLAS summation order); the cards' figures, held-out
accuracy included, do not.

    pip install -r scripts/requirements-train.txt
    python3 scripts/train_models.py            # writes models/ and testdata/models/

Why it looks the way it does:
- tract (vigil's pure-Rust ONNX runtime) has no `Scaler` op, so the StandardScaler is
  folded into the first layer's weights instead of being exported as a pipeline step.
- Classifiers are exported with `zipmap=False` (tract cannot load ZipMap) and with
  opset 18 / ai.onnx.ml 3, the newest opsets tract is tested on.
- Classes are the integers 0..K-1; their names live in model.toml, so the ONNX label
  output never carries strings.
- The drift reference (decile bin edges and expected proportions per feature, and the
  expected class mix) is computed from the training data and written to model.toml.
"""

from __future__ import annotations

import pathlib

import numpy as np
import onnx
from onnx import TensorProto, helper
from skl2onnx import to_onnx
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

ROOT = pathlib.Path(__file__).resolve().parent.parent
OPSET = {"": 18, "ai.onnx.ml": 3}

DEFECT_FEATURES = [
    # name, mean, std, physical min, physical max
    ("temperature_c", 70.0, 5.0, -50.0, 250.0),
    ("pressure_kpa", 250.0, 15.0, 0.0, 1000.0),
    ("vibration_mm_s", 2.5, 0.8, 0.0, 100.0),
    ("humidity_pct", 45.0, 8.0, 0.0, 100.0),
    ("speed_rpm", 1500.0, 100.0, 0.0, 10000.0),
    ("current_a", 12.0, 1.5, 0.0, 200.0),
]


def defect_data(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic sensor readings; defects come from heat, vibration and current drift."""
    cols = []
    for name, mean, std, lo, hi in DEFECT_FEATURES:
        if name == "vibration_mm_s":
            col = rng.gamma(shape=(mean / std) ** 2, scale=std**2 / mean, size=n)
        else:
            col = rng.normal(mean, std, size=n)
        cols.append(np.clip(col, lo, hi))
    x = np.stack(cols, axis=1)
    z = (x - np.array([f[1] for f in DEFECT_FEATURES])) / np.array([f[2] for f in DEFECT_FEATURES])
    logit = (
        -5.3
        + 1.4 * np.maximum(z[:, 0], 0)  # running hot
        + 1.6 * np.maximum(z[:, 2], 0)  # shaking
        + 0.9 * np.abs(z[:, 5])  # current off nominal either way
        + 0.6 * np.maximum(z[:, 3], 0)  # damp
        - 0.3 * z[:, 1]
    )
    p = 1.0 / (1.0 + np.exp(-logit))
    y = (rng.random(n) < p).astype(np.int64)
    return x.astype(np.float32), y


def fold_standardisation(clf: MLPClassifier, mean: np.ndarray, scale: np.ndarray) -> None:
    """Make a model trained on (x - mean) / scale accept raw x: W' = W / s, b' = b - (m/s) W."""
    w = clf.coefs_[0]
    clf.intercepts_[0] = clf.intercepts_[0] - (mean / scale) @ w
    clf.coefs_[0] = w / scale[:, None]


def drift_reference(x: np.ndarray, names: list[str]) -> dict[str, tuple[list[float], list[float]]]:
    """Per feature: interior decile edges (deduplicated) and the training share of each bin."""
    ref = {}
    for i, name in enumerate(names):
        col = x[:, i].astype(np.float64)
        edges = np.unique(np.round(np.quantile(col, np.linspace(0.1, 0.9, 9)), 6))
        # Bins are (-inf, e0), [e0, e1), ..., [e_last, inf): searchsorted(side="right").
        idx = np.searchsorted(edges, col, side="right")
        counts = np.bincount(idx, minlength=len(edges) + 1)
        ref[name] = ([float(e) for e in edges], [round(float(c) / len(col), 6) for c in counts])
    return ref


def toml_floats(values: list[float]) -> str:
    return "[" + ", ".join(repr(float(v)) for v in values) + "]"


def write_model(
    out: pathlib.Path,
    *,
    name: str,
    version: str,
    description: str,
    clf: MLPClassifier,
    features: list[tuple[str, float | None, float | None]],
    labels: list[str],
    defect_labels: list[str],
    x_train: np.ndarray,
    test: tuple[np.ndarray, np.ndarray],
    data: str,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    onx = to_onnx(
        clf,
        x_train[:1].astype(np.float32),
        options={id(clf): {"zipmap": False}},
        target_opset=OPSET,
    )
    onx.doc_string = f"vigil bundled model {name} {version}"
    (out / "model.onnx").write_bytes(onx.SerializeToString())

    names = [f[0] for f in features]
    ref = drift_reference(x_train, names)
    predicted = clf.predict(x_train.astype(np.float32))
    mix = np.bincount(predicted, minlength=len(labels)) / len(predicted)

    lines = [
        "# Written by scripts/train_models.py; re-run it instead of editing by hand.",
        f'name = "{name}"',
        f'version = "{version}"',
        'task = "classification"',
        f'description = "{description}"',
        "labels = [" + ", ".join(f'"{label}"' for label in labels) + "]",
        "defect_labels = [" + ", ".join(f'"{label}"' for label in defect_labels) + "]",
        "",
    ]
    for fname, lo, hi in features:
        lines.append("[[features]]")
        lines.append(f'name = "{fname}"')
        if lo is not None:
            lines.append(f"min = {float(lo)!r}")
        if hi is not None:
            lines.append(f"max = {float(hi)!r}")
        lines.append("")
    # The held-out accuracy: what ModelAccuracyDrop compares ground truth with.
    x_te, y_te = test
    accuracy = float((clf.predict(x_te.astype(np.float32)) == y_te).mean())
    lines.append("[baseline]")
    lines.append(f"accuracy = {round(accuracy, 4)!r}")
    lines.append(f"rows = {len(y_te)}")
    lines.append(f'data = "{data}"')
    lines.append("")
    lines.append("[drift]")
    lines.append(f"prediction_expected = {toml_floats([round(float(m), 6) for m in mix])}")
    lines.append("")
    for fname in names:
        edges, expected = ref[fname]
        lines.append("[[drift.features]]")
        lines.append(f'name = "{fname}"')
        lines.append(f"edges = {toml_floats(edges)}")
        lines.append(f"expected = {toml_floats(expected)}")
        lines.append("")
    (out / "model.toml").write_text("\n".join(lines))


def train_defect_detector() -> None:
    rng = np.random.default_rng(20261122)
    x, y = defect_data(20_000, rng)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    mean, scale = x_tr.mean(axis=0), x_tr.std(axis=0)
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=400, random_state=0)
    clf.fit((x_tr - mean) / scale, y_tr)
    fold_standardisation(clf, mean.astype(np.float64), scale.astype(np.float64))
    acc = (clf.predict(x_te) == y_te).mean()
    print(f"defect-detector: test accuracy {acc:.3f}, defect rate {y.mean():.3f}")
    write_model(
        ROOT / "models" / "defect-detector",
        name="defect-detector",
        version="1.0.0",
        description="Manufacturing quality: flags defective parts from six line sensors.",
        clf=clf,
        features=[(f[0], f[3], f[4]) for f in DEFECT_FEATURES],
        labels=["ok", "defect"],
        defect_labels=["defect"],
        x_train=x_tr,
        test=(x_te, y_te),
        data="held-out 20 % of the synthetic line data (scripts/train_models.py)",
    )


def train_digits() -> None:
    digits = load_digits()
    x = digits.data.astype(np.float32)
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=600, random_state=0)
    clf.fit(x_tr / 16.0, y_tr)
    fold_standardisation(clf, np.zeros(64), np.full(64, 16.0))
    acc = (clf.predict(x_te) == y_te).mean()
    print(f"digits: test accuracy {acc:.3f}")
    write_model(
        ROOT / "models" / "digits",
        name="digits",
        version="1.0.0",
        description="8x8 grey-scale handwritten digits (pixel intensities 0-16), the image classifier stand-in.",
        clf=clf,
        features=[(f"pixel_{r}_{c}", 0.0, 16.0) for r in range(8) for c in range(8)],
        labels=[str(d) for d in range(10)],
        defect_labels=[],
        x_train=x_tr,
        test=(x_te, y_te),
        data="held-out 20 % of scikit-learn's digits",
    )


def write_fixture(out: pathlib.Path, name: str, graph_name: str, nodes: list,
                  constant: tuple[str, float], comment: str, description: str,
                  ranges: bool) -> None:
    """A test-only two-feature, two-label model from a hand-built graph."""
    out.mkdir(parents=True, exist_ok=True)
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 2])
    probs = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2])
    init = helper.make_tensor(constant[0], TensorProto.FLOAT, [], [constant[1]])
    graph = helper.make_graph(nodes, graph_name, [x], [probs], initializer=[init])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    (out / "model.onnx").write_bytes(model.SerializeToString())
    card = [
        f"# Test fixture written by scripts/train_models.py: {comment}",
        f'name = "{name}"',
        'version = "0.0.1"',
        'task = "classification"',
        f'description = "{description}"',
        'labels = ["a", "b"]',
        "defect_labels = []",
        "",
    ]
    for feature in ("x0", "x1"):
        card += ["[[features]]", f'name = "{feature}"']
        card += ["min = 0.0", "max = 10.0"] if ranges else []
        card += [""]
    (out / "model.toml").write_text("\n".join(card))


def write_nan_fixture() -> None:
    """A test-only model whose probabilities are NaN for every input: (x - x) / 0."""
    write_fixture(
        ROOT / "testdata" / "models" / "nan-model", "nan-model", "nan",
        [helper.make_node("Sub", ["input", "input"], ["diff"]),
         helper.make_node("Div", ["diff", "zero"], ["probabilities"])],
        ("zero", 0.0), "always outputs NaN.", "Broken on purpose, for tests.", ranges=False)


def write_scores_fixture() -> None:
    """A test-only model that answers scores, not probabilities: input * 5. It loads
    and runs, so only the probe (outputs must be probabilities) can refuse it."""
    write_fixture(
        ROOT / "testdata" / "uploads" / "scores-model", "scores-model", "scores",
        [helper.make_node("Mul", ["input", "five"], ["probabilities"])],
        ("five", 5.0), "answers input * 5.", "Scores instead of probabilities, for tests.",
        ranges=True)


if __name__ == "__main__":
    train_defect_detector()
    train_digits()
    write_nan_fixture()
    write_scores_fixture()
