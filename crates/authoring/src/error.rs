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
        "{path}, line {line}, column {column:?}: {value:?} is not a number (features must be numeric; encode categories before training)"
    )]
    NotANumber {
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
    #[error("the model directory written does not load: {0}")]
    Check(String),
}
