//! Why `vigil models init` could not write a model directory: each message says what
//! is wrong and what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Csv { path: PathBuf, message: String },
    #[error(
        "{path}: the file is empty; it needs a header line of feature names and rows of numbers"
    )]
    EmptyCsv { path: PathBuf },
    #[error("{path}: no column is named {column:?} (the columns are {columns})")]
    NoLabelColumn {
        path: PathBuf,
        column: String,
        columns: String,
    },
    #[error(
        "{path}: the header's column {column} has no name; every column needs one (the card's features are these names)"
    )]
    UnnamedColumn { path: PathBuf, column: usize },
    #[error("{path}: the header names {name:?} twice; each feature needs a name of its own")]
    DuplicateColumn { path: PathBuf, name: String },
    #[error(
        "{path}, line {line}, column {column:?}: {value:?} is not a number (features must be numeric; encode categories before training)"
    )]
    NotANumber {
        path: PathBuf,
        line: u64,
        column: String,
        value: String,
    },
    #[error(
        "{path}, line {line}, column {column:?}: {value:?} is not a finite 32-bit number (features are within ±3.4e38; leave a missing value's cell empty)"
    )]
    NotFinite {
        path: PathBuf,
        line: u64,
        column: String,
        value: String,
    },
    #[error(
        "{path} has {rows} data rows; a drift reference needs at least {needed} (ten per decile bin)"
    )]
    TooFewRows {
        path: PathBuf,
        rows: usize,
        needed: usize,
    },
    #[error("the ONNX model: {0}")]
    Onnx(String),
    #[error("{0}")]
    Mismatch(String),
    #[error("{out} already exists and is not empty: choose another --out or remove it")]
    OutExists { out: PathBuf },
    #[error("the model directory would not load: {0}")]
    Check(String),
    #[error(
        "--version {0:?}: a version is 1-64 characters of [A-Za-z0-9._-], not starting with '.', and not `state.toml` (the upload endpoint keeps it under that name)"
    )]
    BadVersion(String),
}
