//! Typed errors of the model crate: loading (card or ONNX), bad input, bad output.

use std::path::PathBuf;

/// A `model.toml` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    #[error("cannot parse model card: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("invalid model card: {0}")]
    Invalid(String),
}

/// Why a model directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("model card {path}: {source}")]
    Card {
        path: PathBuf,
        #[source]
        source: CardError,
    },
    #[error("ONNX model for {model}: {message}")]
    Onnx { model: String, message: String },
    #[error("no models found in {0}")]
    Empty(PathBuf),
    #[error("two models are named {0:?}")]
    Duplicate(String),
    /// `--default-model` (or `default_model`) names no model that loaded: a setting,
    /// not a card, is wrong.
    #[error("default_model {name:?} is not among the models loaded from {origin}")]
    UnknownDefault { name: String, origin: PathBuf },
}

/// The reasons a well-formed request can still carry unusable features. The names are
/// the `reason` label of `input_validation_errors_total`, so the set is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputErrorReason {
    WrongFeatureCount,
    NonFinite,
    OutOfRange,
    InvalidType,
    EmptyBatch,
    BatchTooLarge,
}

impl InputErrorReason {
    pub const ALL: [InputErrorReason; 6] = [
        Self::WrongFeatureCount,
        Self::NonFinite,
        Self::OutOfRange,
        Self::InvalidType,
        Self::EmptyBatch,
        Self::BatchTooLarge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::WrongFeatureCount => "wrong_feature_count",
            Self::NonFinite => "non_finite",
            Self::OutOfRange => "out_of_range",
            Self::InvalidType => "invalid_type",
            Self::EmptyBatch => "empty_batch",
            Self::BatchTooLarge => "batch_too_large",
        }
    }
}

/// Features that do not fit the model: which row (instance) and feature, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct InputError {
    pub reason: InputErrorReason,
    /// Index of the offending instance in the batch (0 for a single `features` row).
    pub instance: Option<usize>,
    /// Index of the offending feature within the instance.
    pub feature: Option<usize>,
    pub message: String,
}

impl InputError {
    pub fn new(reason: InputErrorReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            instance: None,
            feature: None,
            message: message.into(),
        }
    }

    pub fn at(mut self, instance: usize, feature: Option<usize>) -> Self {
        self.instance = Some(instance);
        self.feature = feature;
        self
    }
}

/// A failure while running a loaded model on valid input.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("model produced a non-finite probability for instance {instance}")]
    NonFiniteOutput { instance: usize },
    /// Further outside [0, 1] than float error explains: scores or logits, not
    /// probabilities (the probe refuses such a model before it serves).
    #[error("model produced {value} as a probability for instance {instance}, outside [0, 1]")]
    NotAProbability { instance: usize, value: f32 },
    #[error("model output has shape {got:?}, expected [{rows}, {classes}]")]
    OutputShape {
        got: Vec<usize>,
        rows: usize,
        classes: usize,
    },
}
