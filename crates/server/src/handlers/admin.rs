//! `/admin/models/...`: upload a version, list versions, roll back, unload. The key
//! guard has already let only admin keys through; each action, done or refused, is
//! an audit event with the model and the versions involved.

use axum::Json;
use axum::extract::State;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;
use vigil_auth::{AuditAction, AuditEvent, Outcome};

use crate::error::ApiError;
use crate::extract::PathName;
use crate::lifecycle::{Changed, Lifecycle, LifecycleError, Uploaded, Versions};
use crate::state::AppState;

fn lifecycle(state: &AppState) -> Result<&Lifecycle, LifecycleError> {
    state.lifecycle.get().ok_or(LifecycleError::NoStore)
}

/// Audits the outcome of `action` on `model` (with the versions `versions` reads from
/// a success), then answers.
fn audited<T: serde::Serialize>(
    state: &AppState,
    action: AuditAction,
    model: &str,
    result: Result<T, LifecycleError>,
    versions: fn(&T) -> (Option<&str>, Option<&str>),
    status: StatusCode,
) -> Response {
    match result {
        Ok(body) => {
            let (from, to) = versions(&body);
            state.auth.audit(
                AuditEvent::new(action, Outcome::Success)
                    .model(model)
                    .versions(from, to),
            );
            (status, Json(body)).into_response()
        }
        Err(e) => {
            state.auth.audit(
                AuditEvent::new(action, Outcome::Failure)
                    .model(model)
                    .reason(e.code()),
            );
            e.into_response()
        }
    }
}

/// Reads the `onnx` and `card` parts; anything else is refused.
async fn parts(
    multipart: Result<Multipart, MultipartRejection>,
    limit: usize,
) -> Result<(Bytes, String), LifecycleError> {
    let mut multipart = multipart.map_err(|_| LifecycleError::NotMultipart)?;
    let (mut onnx, mut card) = (None, None);
    let read_error = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            LifecycleError::TooLarge { limit }
        } else {
            LifecycleError::Multipart(e.body_text())
        }
    };
    while let Some(field) = multipart.next_field().await.map_err(read_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        let slot = match name.as_str() {
            "onnx" => &mut onnx,
            "card" => &mut card,
            other => {
                return Err(LifecycleError::UnexpectedPart(
                    other.chars().take(64).collect(),
                ));
            }
        };
        if slot.is_some() {
            return Err(LifecycleError::UnexpectedPart(format!("{name} (twice)")));
        }
        *slot = Some(field.bytes().await.map_err(read_error)?);
    }
    let onnx = onnx.ok_or(LifecycleError::MissingPart("onnx"))?;
    let card = card.ok_or(LifecycleError::MissingPart("card"))?;
    let card = String::from_utf8(card.to_vec())
        .map_err(|_| LifecycleError::InvalidCard("the card is not UTF-8 text".into()))?;
    // The model as it arrived, not copied: up to max_upload_bytes, on the request's
    // connection thread.
    Ok((onnx, card))
}

/// Upload a model version (`multipart/form-data`: `onnx`, `card`); checked, kept, and
/// put in force with no failed request.
#[utoipa::path(post, path = "/admin/models/{name}", tag = "admin",
    params(("name" = String, Path, description = "Model name")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 201, body = Uploaded), (status = 401, body = vigil_telemetry::ErrorBody),
        (status = 403, body = vigil_telemetry::ErrorBody), (status = 409, body = vigil_telemetry::ErrorBody),
        (status = 413, body = vigil_telemetry::ErrorBody), (status = 415, body = vigil_telemetry::ErrorBody),
        (status = 422, body = vigil_telemetry::ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    name: Result<PathName, ApiError>,
    headers: http::HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let name = name?.0;
    let result = async {
        let lifecycle = lifecycle(&state)?;
        if let Some(got) = vigil_telemetry::body::unsupported_encoding(&headers) {
            return Err(LifecycleError::UnsupportedEncoding { got });
        }
        let limit = state.limits.upload_limit;
        if vigil_telemetry::body::declared_over(&headers, limit) {
            return Err(LifecycleError::TooLarge { limit });
        }
        let (onnx, card) = parts(multipart, limit).await?;
        lifecycle
            .upload(&state.models, &state.model_metrics, &name, onnx, card)
            .await
    }
    .await;
    Ok(audited(
        &state,
        AuditAction::Upload,
        &name,
        result,
        |u| (u.previous_version.as_deref(), Some(u.version.as_str())),
        StatusCode::CREATED,
    ))
}

/// The versions kept for a model, the active one and the rollback history.
#[utoipa::path(get, path = "/admin/models/{name}/versions", tag = "admin",
    params(("name" = String, Path, description = "Model name")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = Versions), (status = 401, body = vigil_telemetry::ErrorBody),
        (status = 403, body = vigil_telemetry::ErrorBody), (status = 404, body = vigil_telemetry::ErrorBody)))]
pub async fn versions(
    State(state): State<AppState>,
    name: Result<PathName, ApiError>,
) -> Result<Response, ApiError> {
    let name = name?.0;
    let result = async { lifecycle(&state)?.versions(&state.models, &name).await }.await;
    Ok(match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    })
}

/// Back to the version that served before.
#[utoipa::path(post, path = "/admin/models/{name}/rollback", tag = "admin",
    params(("name" = String, Path, description = "Model name")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = Changed), (status = 401, body = vigil_telemetry::ErrorBody),
        (status = 403, body = vigil_telemetry::ErrorBody), (status = 404, body = vigil_telemetry::ErrorBody),
        (status = 409, body = vigil_telemetry::ErrorBody)))]
pub async fn rollback(
    State(state): State<AppState>,
    name: Result<PathName, ApiError>,
) -> Result<Response, ApiError> {
    let name = name?.0;
    let result = async {
        lifecycle(&state)?
            .rollback(&state.models, &state.model_metrics, &name)
            .await
    }
    .await;
    Ok(changed(&state, AuditAction::Rollback, &name, result))
}

/// Unload a model (not the default, not the last); it stays unloaded across restarts
/// until a new version is uploaded.
#[utoipa::path(delete, path = "/admin/models/{name}", tag = "admin",
    params(("name" = String, Path, description = "Model name")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = Changed), (status = 401, body = vigil_telemetry::ErrorBody),
        (status = 403, body = vigil_telemetry::ErrorBody), (status = 404, body = vigil_telemetry::ErrorBody),
        (status = 409, body = vigil_telemetry::ErrorBody)))]
pub async fn unload(
    State(state): State<AppState>,
    name: Result<PathName, ApiError>,
) -> Result<Response, ApiError> {
    let name = name?.0;
    let result = async { lifecycle(&state)?.unload(&state.models, &name).await }.await;
    Ok(changed(&state, AuditAction::Delete, &name, result))
}

fn changed(
    state: &AppState,
    action: AuditAction,
    name: &str,
    result: Result<Changed, LifecycleError>,
) -> Response {
    audited(
        state,
        action,
        name,
        result,
        |c| (Some(c.from_version.as_str()), c.to_version.as_deref()),
        StatusCode::OK,
    )
}
