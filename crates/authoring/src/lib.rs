//! `vigil-authoring`: model directories made and checked from the command line.
//!
//! - [`init`] writes a directory (the ONNX file and a complete `model.toml`) from an
//!   ONNX file and its training data: feature names and ranges, the drift reference,
//!   the expected prediction mix and, with a label column, the baseline accuracy.
//! - [`check`] loads a directory exactly as start-up and the upload endpoint do and
//!   reports what it found, or each problem with its fix.
//!
//! [`data`] reads the CSV, [`reference`] computes ranges and reference bins.

pub mod check;
pub mod data;
pub mod error;
pub mod init;
pub mod reference;

pub use check::{CheckReport, check};
pub use error::InitError;
pub use init::{InitOptions, InitReport, init};
