//! The OpenAPI 3 document served at `/openapi.json`, generated from the handlers'
//! annotations. A test checks that every route of the router is documented.

use utoipa::OpenApi;

use crate::handlers::{health, meta, models, predict};

#[derive(OpenApi)]
#[openapi(
    info(title = "vigil inference API", description = "ONNX model serving with monitoring built in."),
    paths(
        predict::predict,
        predict::predict_model,
        models::list,
        models::get,
        health::health,
        health::live,
        health::ready,
        meta::metrics,
        meta::openapi,
    ),
    components(schemas(vigil_telemetry::ErrorBody, vigil_telemetry::error::ErrorDetail)),
    tags((name = "inference"), (name = "models"), (name = "health"), (name = "observability"))
)]
pub struct ApiDoc;
