//! Models for vigil: model cards (`model.toml`), the tract ONNX runtime, input
//! validation and data drift. Nothing here knows about HTTP; the server crate turns
//! these types into endpoints and metrics.

pub mod bundled;
pub mod card;
pub mod cost;
pub mod drift;
pub mod error;
pub mod input;
pub mod onnx_ml;
pub mod probe;
pub mod registry;
pub mod runtime;
pub mod versions;

pub use card::{ModelCard, Task};
pub use cost::BatchCost;
pub use drift::{DriftMonitor, DriftSnapshot};
pub use error::{CardError, InputError, InputErrorReason, LoadError, ModelError};
pub use input::Batch;
pub use probe::{ProbeError, ProbeReport, probe};
pub use registry::{LoadedModel, MAX_CARD_BYTES, MAX_ONNX_BYTES, ModelRegistry, read_model_file};
pub use runtime::{Head, OnnxModel, Output, RowPrediction};
pub use versions::{ModelState, StoreError, StoredVersion, VersionStore, is_version_name};
