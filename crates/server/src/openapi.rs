//! The OpenAPI 3 document served at `/openapi.json`, generated from the handlers'
//! annotations. A test checks that every route of the router is documented.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::handlers::{admin, analytics, dashboard, events, health, meta, models, predict, v2};

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
        admin::upload,
        admin::versions,
        admin::rollback,
        admin::unload,
        analytics::performance,
        analytics::usage,
        events::events,
        dashboard::root,
        dashboard::page,
        dashboard::asset,
        dashboard::session,
        dashboard::sign_in,
        dashboard::sign_out,
        dashboard::overview,
        v2::metadata::server,
        v2::metadata::live,
        v2::metadata::ready,
        v2::metadata::model,
        v2::metadata::model_version,
        v2::metadata::ready_model,
        v2::metadata::ready_model_version,
        v2::infer::infer,
        v2::infer::infer_version,
    ),
    components(schemas(vigil_telemetry::ErrorBody, vigil_telemetry::error::ErrorDetail)),
    modifiers(&KeySchemes),
    tags((name = "inference"), (name = "models"), (name = "health"), (name = "observability"), (name = "admin"), (name = "dashboard"), (name = "open inference protocol"))
)]
pub struct ApiDoc;

/// The two ways to send an API key (docs/reference.md §2.10). Prediction routes name
/// them as optional: they need a key only once a `predict` key is configured.
struct KeySchemes;

impl Modify for KeySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}
