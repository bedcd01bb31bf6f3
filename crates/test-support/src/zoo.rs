//! The model zoo: scikit-learn pipelines exported with skl2onnx's default options,
//! each with held-out rows and onnxruntime's answers (`scripts/zoo.py`). `scripts/zoo`
//! makes it once in `target/zoo`, with its venv (pinned scikit-learn, skl2onnx,
//! onnxruntime) in `target/zoo-venv`; parallel tests wait for each other on a lock.

use std::path::PathBuf;
use std::process::Command;

use crate::python::root;

/// The zoo's directory, made first if needed: one folder per model (`model.onnx`,
/// `train.csv`, `expected.json`) and `bad/` (models `vigil models init` refuses).
pub fn zoo() -> PathBuf {
    let root = root();
    let out = root.join("target/zoo");
    let status = Command::new(root.join("scripts/zoo"))
        .arg(&out)
        .status()
        .expect("scripts/zoo runs");
    assert!(status.success(), "scripts/zoo failed");
    out
}

/// The zoo venv's `bin` directory (python with scikit-learn and skl2onnx), made
/// first if needed.
pub fn zoo_python_bin() -> PathBuf {
    zoo();
    root().join("target/zoo-venv/bin")
}
