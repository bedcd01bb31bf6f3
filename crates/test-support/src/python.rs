//! Python venvs for test tooling, made by `scripts/py-venv` from pinned requirements
//! under `target/`, once: parallel tests wait for each other on the venv's lock.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root")
}

/// `target/<name>` made from `requirements` (relative to the workspace root); returns
/// its `python`.
pub fn venv(name: &str, requirements: &str) -> PathBuf {
    let root = root();
    let dir = root.join("target").join(name);
    let status = Command::new(root.join("scripts/py-venv"))
        .arg(&dir)
        .arg(root.join(requirements))
        .status()
        .expect("scripts/py-venv runs");
    assert!(status.success(), "scripts/py-venv {name} failed");
    dir.join("bin/python")
}

/// A python with the real `tritonclient[http]` (scripts/requirements-tritonclient.txt).
pub fn tritonclient_python() -> PathBuf {
    venv("tritonclient-venv", "scripts/requirements-tritonclient.txt")
}
