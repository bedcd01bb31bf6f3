//! The bundled models, compiled into the binary so `vigil up` works from any directory
//! with no files beside it. `scripts/train_models.py` regenerates `models/`.

/// `(name, model.onnx bytes, model.toml text)` of each bundled model.
pub const MODELS: [(&str, &[u8], &str); 2] = [
    (
        "defect-detector",
        include_bytes!("../../../models/defect-detector/model.onnx"),
        include_str!("../../../models/defect-detector/model.toml"),
    ),
    (
        "digits",
        include_bytes!("../../../models/digits/model.onnx"),
        include_str!("../../../models/digits/model.toml"),
    ),
];

/// The model `/predict` uses when the request names none.
pub const DEFAULT_MODEL: &str = "defect-detector";
