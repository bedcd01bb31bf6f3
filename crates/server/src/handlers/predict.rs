//! `POST /predict` and `POST /models/{name}/predict`: parse, validate, schedule, answer,
//! and record the model metrics. Feature values are read as raw JSON tokens, so a
//! string, `null`, `1e400` or Python's `NaN` is reported at its exact position with a
//! 422 instead of a generic parse error.

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;
use vigil_collector::record::RecordRef;
use vigil_model::input::{BatchBuilder, Cell};
use vigil_model::{InputError, InputErrorReason};

use crate::error::ApiError;
use crate::extract::{JsonBytes, PathName, json_error};
use crate::state::AppState;

/// A prediction request: one row in `features`, or several in `instances`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictRequest<'a> {
    /// One instance: the model's features, in order.
    #[serde(borrow, default)]
    #[schema(value_type = Option<Vec<f64>>)]
    pub features: Option<Vec<&'a RawValue>>,
    /// Several instances, each a list of features.
    #[serde(borrow, default)]
    #[schema(value_type = Option<Vec<Vec<f64>>>)]
    pub instances: Option<Vec<&'a RawValue>>,
    /// Model name (`POST /predict` only); the default model otherwise.
    #[serde(default)]
    pub model: Option<String>,
}

/// One instance's prediction.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Prediction {
    pub label: String,
    pub class_index: usize,
    /// Probability of the predicted class.
    pub confidence: f32,
    /// One probability per label, in the model's label order.
    pub probabilities: Vec<f32>,
}

/// The answer to a prediction request.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PredictResponse {
    pub prediction_id: String,
    pub request_id: String,
    pub model: String,
    pub model_version: String,
    pub predictions: Vec<Prediction>,
    /// Time spent in the server on this prediction, in milliseconds.
    pub latency_ms: f64,
    /// RFC 3339 UTC.
    pub created_at: String,
}

/// Python's `json.dumps` writes `NaN` and `Infinity`, which are not JSON. On a syntax
/// error the body is re-read with those tokens replaced by this string, so the client
/// learns which feature was non-finite instead of "malformed JSON".
const NON_FINITE_MARK: &[u8] = b"\"\\u0000non-finite\"";

/// Predicts with the default model or the one named in the body.
#[utoipa::path(post, path = "/predict", tag = "inference", request_body = PredictRequest,
    responses((status = 200, body = PredictResponse), (status = 400, body = vigil_telemetry::ErrorBody),
        (status = 404, body = vigil_telemetry::ErrorBody), (status = 413, body = vigil_telemetry::ErrorBody),
        (status = 415, body = vigil_telemetry::ErrorBody), (status = 422, body = vigil_telemetry::ErrorBody),
        (status = 503, body = vigil_telemetry::ErrorBody)))]
pub async fn predict(
    State(state): State<AppState>,
    body: Result<JsonBytes, ApiError>,
) -> Result<Json<PredictResponse>, ApiError> {
    run(&state, None, body).await
}

/// Predicts with the model named in the path.
#[utoipa::path(post, path = "/models/{name}/predict", tag = "inference", request_body = PredictRequest,
    params(("name" = String, Path, description = "Model name")),
    responses((status = 200, body = PredictResponse), (status = 400, body = vigil_telemetry::ErrorBody),
        (status = 404, body = vigil_telemetry::ErrorBody), (status = 413, body = vigil_telemetry::ErrorBody),
        (status = 415, body = vigil_telemetry::ErrorBody), (status = 422, body = vigil_telemetry::ErrorBody),
        (status = 503, body = vigil_telemetry::ErrorBody)))]
pub async fn predict_model(
    State(state): State<AppState>,
    name: Result<PathName, ApiError>,
    body: Result<JsonBytes, ApiError>,
) -> Result<Json<PredictResponse>, ApiError> {
    let name = name?.0;
    run(&state, Some(name), body).await
}

async fn run(
    state: &AppState,
    path_model: Option<String>,
    body: Result<JsonBytes, ApiError>,
) -> Result<Json<PredictResponse>, ApiError> {
    let started = Instant::now();
    // Attribute failures to a model only when it is one we serve (bounded labels).
    let mut model_name = path_model.clone().filter(|m| state.models.get(m).is_some());
    let result = predict_inner(state, path_model, body, started, &mut model_name).await;
    if let Err(e) = &result
        && let Some(reason) = e.validation_reason()
    {
        state
            .model_metrics
            .count_validation(model_name.as_deref(), reason);
    }
    result.map(Json)
}

async fn predict_inner(
    state: &AppState,
    path_model: Option<String>,
    body: Result<JsonBytes, ApiError>,
    started: Instant,
    model_name: &mut Option<String>,
) -> Result<PredictResponse, ApiError> {
    if let Some(name) = &path_model
        && state.models.get(name).is_none()
    {
        return Err(ApiError::UnknownModel(name.clone()));
    }
    let JsonBytes(bytes) = body?;
    let lenient;
    let request: PredictRequest<'_> = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => match mark_non_finite(&bytes) {
            Some(marked) => {
                lenient = marked;
                serde_json::from_slice(&lenient).map_err(|_| json_error(&e))?
            }
            None => return Err(json_error(&e)),
        },
    };
    let model = match (path_model, &request.model) {
        (Some(path), Some(body)) if &path != body => {
            return Err(ApiError::InvalidBody(format!(
                "the body names model {body:?} but the path names {path:?}"
            )));
        }
        (Some(path), _) => state.models.get(&path),
        (None, Some(name)) => {
            let found = state.models.get(name);
            if found.is_none() {
                return Err(ApiError::UnknownModel(name.clone()));
            }
            found
        }
        (None, None) => Some(state.models.default_model()),
    }
    .cloned()
    .ok_or_else(|| ApiError::Internal("model vanished".into()))?;
    *model_name = Some(model.card.name.clone());
    let handles = state
        .model_metrics
        .model(&model.card.name)
        .ok_or_else(|| ApiError::Internal("model has no metrics".into()))?;

    let rows: Vec<&RawValue> = match (request.features, request.instances) {
        (Some(features), None) => {
            let mut builder = BatchBuilder::new(&model.card, 1, state.limits.max_batch)?;
            builder.push_row(features.iter().map(|raw| cell(raw)))?;
            return finish(state, model.clone(), handles, builder, started).await;
        }
        (None, Some(instances)) => instances,
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidBody(
                "give either `features` or `instances`, not both".into(),
            ));
        }
        (None, None) => {
            return Err(ApiError::InvalidBody(
                "the body needs `features` (one instance) or `instances`".into(),
            ));
        }
    };
    let mut builder = BatchBuilder::new(&model.card, rows.len(), state.limits.max_batch)?;
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<&RawValue> = serde_json::from_str(row.get()).map_err(|_| {
            InputError::new(
                InputErrorReason::InvalidType,
                format!("instance {i} is not a list of features"),
            )
            .at(i, None)
        })?;
        builder.push_row(cells.iter().map(|raw| cell(raw)))?;
    }
    finish(state, model.clone(), handles, builder, started).await
}

async fn finish(
    state: &AppState,
    model: std::sync::Arc<vigil_model::LoadedModel>,
    handles: &crate::metrics::ModelHandles,
    builder: BatchBuilder<'_>,
    started: Instant,
) -> Result<PredictResponse, ApiError> {
    let batch = builder.finish();
    let rows = batch.rows as u64;
    handles.batch_size.observe(rows as f64);
    let pending = TimeoutGuard {
        state,
        model: &model,
        handles,
        rows,
        started,
        armed: true,
    };
    let outcome = state
        .scheduler
        .run(model.clone(), batch, &handles.queue_depth)
        .await;
    pending.disarm();
    let scheduled = match outcome {
        Ok(s) => s,
        Err(e) => {
            let error_type = match &e {
                ApiError::Overloaded => "overloaded",
                ApiError::Model(m) => m.kind(),
                _ => "inference_failed",
            };
            if let Some(c) = handles.error(error_type) {
                c.inc();
            }
            handles.error.inc_by(rows);
            forward_failure(state, &model, error_type, started);
            return Err(e);
        }
    };
    handles.queue.observe(scheduled.queue.as_secs_f64());
    let trace_id = vigil_telemetry::context::with_current(|c| c.map(|c| c.trace_id.clone()));
    handles.latency.observe(
        scheduled.compute.as_secs_f64(),
        trace_id
            .clone()
            .map(|trace_id| vigil_telemetry::metrics::TraceExemplar { trace_id }),
        None,
    );
    handles.success.inc_by(rows);
    let prediction_id = uuid::Uuid::new_v4().to_string();
    let created_at = crate::handlers::meta::now_rfc3339();
    let latency_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
    let request_id = vigil_telemetry::context::current_request_id();
    if let Some(forwarder) = state.forwarder.get() {
        let single = scheduled.predictions.len() == 1;
        for (i, p) in scheduled.predictions.iter().enumerate() {
            // One record per instance; a batch's instances share the request's id.
            let numbered;
            let id = if single {
                prediction_id.as_str()
            } else {
                numbered = format!("{prediction_id}-{i}");
                numbered.as_str()
            };
            forwarder.submit(&RecordRef {
                prediction_id: id,
                model: &model.card.name,
                model_version: &model.card.version,
                timestamp: &created_at,
                label: model.card.labels.get(p.class_index).map(String::as_str),
                confidence: Some(f64::from(p.confidence)),
                is_defect: model.card.is_defect(p.class_index),
                latency_ms,
                request_id: &request_id,
                trace_id: trace_id.as_deref(),
                status: vigil_store::Status::Success,
                error_type: None,
                features: None,
            });
        }
    }
    let predictions = scheduled
        .predictions
        .into_iter()
        .map(|p| {
            handles.confidence.observe(f64::from(p.confidence));
            if let Some(c) = handles.by_class.get(p.class_index) {
                c.inc();
            }
            Prediction {
                label: model
                    .card
                    .labels
                    .get(p.class_index)
                    .cloned()
                    .unwrap_or_default(),
                class_index: p.class_index,
                confidence: p.confidence,
                probabilities: p.probabilities,
            }
        })
        .collect();
    Ok(PredictResponse {
        prediction_id,
        request_id,
        model: model.card.name.clone(),
        model_version: model.card.version.clone(),
        predictions,
        latency_ms,
        created_at,
    })
}

/// A failed prediction is logged too: one error record for the request.
fn forward_failure(
    state: &AppState,
    model: &vigil_model::LoadedModel,
    error_type: &str,
    started: Instant,
) {
    if let Some(forwarder) = state.forwarder.get() {
        let trace_id = vigil_telemetry::context::with_current(|c| c.map(|c| c.trace_id.clone()));
        forwarder.submit(&RecordRef {
            prediction_id: &uuid::Uuid::new_v4().to_string(),
            model: &model.card.name,
            model_version: &model.card.version,
            timestamp: &crate::handlers::meta::now_rfc3339(),
            label: None,
            confidence: None,
            is_defect: false,
            latency_ms: (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
            request_id: &vigil_telemetry::context::current_request_id(),
            trace_id: trace_id.as_deref(),
            status: vigil_store::Status::Error,
            error_type: Some(error_type),
            features: None,
        });
    }
}

/// Counts (and forwards as an error record) a prediction that the request timeout cut
/// off while it waited or ran: the handler is dropped mid-way, so only a drop guard
/// sees it.
struct TimeoutGuard<'a> {
    state: &'a AppState,
    model: &'a vigil_model::LoadedModel,
    handles: &'a crate::metrics::ModelHandles,
    rows: u64,
    started: Instant,
    armed: bool,
}

impl TimeoutGuard<'_> {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for TimeoutGuard<'_> {
    fn drop(&mut self) {
        let timed_out = vigil_telemetry::context::with_current(|c| {
            c.is_some_and(|c| c.timed_out.load(std::sync::atomic::Ordering::Acquire))
        });
        if self.armed && timed_out {
            if let Some(c) = self.handles.error("timeout") {
                c.inc();
            }
            self.handles.error.inc_by(self.rows);
            forward_failure(self.state, self.model, "timeout", self.started);
        }
    }
}

/// Classifies one raw JSON token.
fn cell(raw: &RawValue) -> Cell {
    let text = raw.get().trim();
    match text.as_bytes().first() {
        Some(b'-' | b'0'..=b'9') => text.parse::<f64>().map_or(Cell::NotANumber, Cell::Number),
        _ if text.as_bytes() == NON_FINITE_MARK => Cell::NonFinite,
        _ => Cell::NotANumber,
    }
}

/// Replaces bare `NaN`, `Infinity` and `-Infinity` tokens outside strings with
/// [`NON_FINITE_MARK`]; `None` when there were none.
fn mark_non_finite(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() + 32);
    let (mut in_string, mut escaped, mut changed) = (false, false, false);
    let mut i = 0;
    'scan: while i < text.len() {
        let b = text[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else {
            for token in [
                &b"-Infinity"[..],
                b"+Infinity",
                b"Infinity",
                b"NaN",
                b"-NaN",
            ] {
                if text[i..].starts_with(token) {
                    out.extend_from_slice(NON_FINITE_MARK);
                    i += token.len();
                    changed = true;
                    continue 'scan;
                }
            }
        }
        out.push(b);
        i += 1;
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_classify_tokens() {
        let parse = |s: &str| cell(serde_json::from_str::<&RawValue>(s).unwrap());
        assert_eq!(parse("1.5"), Cell::Number(1.5));
        assert_eq!(parse("-2e3"), Cell::Number(-2000.0));
        assert_eq!(parse("1e400"), Cell::Number(f64::INFINITY));
        assert_eq!(parse("\"1\""), Cell::NotANumber);
        assert_eq!(parse("null"), Cell::NotANumber);
        assert_eq!(parse("true"), Cell::NotANumber);
        assert_eq!(parse("[1]"), Cell::NotANumber);
    }

    #[test]
    fn non_finite_tokens_are_marked_outside_strings_only() {
        let marked =
            mark_non_finite(br#"{"features": [1, NaN, -Infinity], "model": "NaN"}"#).unwrap();
        let text = String::from_utf8(marked).unwrap();
        assert_eq!(text.matches("non-finite").count(), 2, "{text}");
        assert!(text.contains(r#""model": "NaN""#), "{text}");
        assert!(mark_non_finite(br#"{"features": [1, 2]}"#).is_none());
        let marked = mark_non_finite(br#"{"features": [NaN]}"#).unwrap();
        let req: PredictRequest<'_> = serde_json::from_slice(&marked).unwrap();
        assert_eq!(cell(req.features.unwrap()[0]), Cell::NonFinite);
    }
}
