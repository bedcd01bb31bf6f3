//! The closed label sets of the model metrics, each written once as an enum: every
//! series they name is created at start-up, so no request can add one.

use vigil_model::{InputErrorReason, ModelError};

/// Why a prediction request was refused before it ran: the `reason` label of
/// `input_validation_errors_total` and, for these errors, the body's `error.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValidationReason {
    MalformedJson,
    UnsupportedMediaType,
    PayloadTooLarge,
    BodyRead,
    InvalidBody,
    ModelNotFound,
    /// Well-formed, but the features are unusable.
    Input(InputErrorReason),
}

impl ValidationReason {
    /// Every reason, in a stable order.
    pub fn all() -> impl Iterator<Item = Self> {
        [
            Self::MalformedJson,
            Self::UnsupportedMediaType,
            Self::PayloadTooLarge,
            Self::BodyRead,
            Self::InvalidBody,
            Self::ModelNotFound,
        ]
        .into_iter()
        .chain(InputErrorReason::ALL.into_iter().map(Self::Input))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MalformedJson => "malformed_json",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge => "payload_too_large",
            Self::BodyRead => "body_read_error",
            Self::InvalidBody => "invalid_body",
            Self::ModelNotFound => "model_not_found",
            Self::Input(reason) => reason.as_str(),
        }
    }
}

/// Why a prediction that ran (or waited to run) failed: the `error_type` label of
/// `prediction_errors_total` and of the forwarded error record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    InferenceFailed,
    NonFiniteOutput,
    BadOutputShape,
    /// The inference queue was full.
    Overloaded,
    /// The request timeout cut it off while it waited or ran.
    Timeout,
}

impl ErrorType {
    pub const ALL: [Self; 5] = [
        Self::InferenceFailed,
        Self::NonFiniteOutput,
        Self::BadOutputShape,
        Self::Overloaded,
        Self::Timeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InferenceFailed => "inference_failed",
            Self::NonFiniteOutput => "non_finite_output",
            Self::BadOutputShape => "bad_output_shape",
            Self::Overloaded => "overloaded",
            Self::Timeout => "timeout",
        }
    }
}

impl From<&ModelError> for ErrorType {
    fn from(e: &ModelError) -> Self {
        match e {
            ModelError::Inference(_) | ModelError::NotAProbability { .. } => Self::InferenceFailed,
            ModelError::NonFiniteOutput { .. } => Self::NonFiniteOutput,
            ModelError::OutputShape { .. } => Self::BadOutputShape,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_distinct() {
        let reasons: std::collections::HashSet<_> = ValidationReason::all()
            .map(ValidationReason::as_str)
            .collect();
        assert_eq!(reasons.len(), ValidationReason::all().count());
        assert_eq!(reasons.len(), 12);
        let types: std::collections::HashSet<_> = ErrorType::ALL.map(ErrorType::as_str).into();
        assert_eq!(types.len(), ErrorType::ALL.len());
    }
}
