//! The tensors a served model shows the protocol: one FP32 input `input` of shape
//! `[-1, features]`, and its outputs by task. Written once for the metadata and the
//! infer answers.

use vigil_model::{LoadedModel, Task};

/// The name of every model's one input tensor.
pub const INPUT: &str = "input";

/// An output tensor vigil answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// A classifier's probabilities, FP32 `[N, labels]`.
    Probabilities,
    /// A classifier's predicted label, BYTES `[N]`.
    Label,
    /// A regressor's value, FP32 `[N]`.
    Value,
}

impl Output {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Probabilities => "probabilities",
            Self::Label => "label",
            Self::Value => "value",
        }
    }

    /// The outputs of a model of `task`, in the order answered when none are asked for.
    pub fn of(task: Task) -> &'static [Self] {
        match task {
            Task::Classification => &[Self::Probabilities, Self::Label],
            Task::Regression => &[Self::Value],
        }
    }

    pub fn datatype(self) -> vigil_oip::DataType {
        match self {
            Self::Probabilities | Self::Value => vigil_oip::DataType::Fp32,
            Self::Label => vigil_oip::DataType::Bytes,
        }
    }

    /// The shape with `-1` for the batch dimension, as metadata shows it.
    pub fn shape(self, model: &LoadedModel) -> Vec<i64> {
        match self {
            Self::Probabilities => vec![-1, model.card.labels.len() as i64],
            Self::Label | Self::Value => vec![-1],
        }
    }
}
