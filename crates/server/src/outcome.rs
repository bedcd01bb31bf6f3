//! A prediction's outcome, recorded in one place for every endpoint that predicts:
//! the model metrics, the forwarded record (one per instance on success, one per
//! request on failure) and the error's log fields. Success, a model error, overload
//! and the request timeout all end here; an endpoint parses its own request format,
//! calls [`predict`], and formats its own answer.

use std::sync::Arc;
use std::time::Instant;

use vigil_model::{Batch, LoadedModel, Output};
use vigil_telemetry::context::TraceIdHex;

use crate::catalog::Served;
use vigil_forwarder::Ticket;
use vigil_records::{RecordRef, Status};

use crate::error::ApiError;
use crate::labels::ErrorType;
use crate::metrics::ModelHandles;
use crate::state::AppState;

/// What a successful prediction answered.
#[derive(Debug)]
pub struct Predicted {
    /// One per instance: classes from a classifier, values from a regressor.
    pub predictions: Vec<Output>,
    /// The request's prediction id; instance `i` of a batch is stored as `{id}-{i}`.
    pub prediction_id: String,
    pub request_id: String,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// Time in the server since the request arrived, in milliseconds (µs precision).
    pub latency_ms: f64,
}

/// Runs `batch` on `model` and records the outcome, whatever it is.
pub async fn predict(
    state: &AppState,
    served: &Arc<Served>,
    batch: Batch,
    started: Instant,
) -> Result<Predicted, ApiError> {
    let (model, handles) = (&served.model, &served.handles);
    let attempt = Attempt {
        state,
        model,
        handles,
        rows: batch.rows as u64,
        started,
        armed: true,
    };
    handles.batch_size.observe(batch.rows as f64);
    match state
        .scheduler
        .run(model.clone(), batch, &handles.queue_depth)
        .await
    {
        Ok(scheduled) => {
            let trace_id = current_trace_id();
            handles.queue.observe(scheduled.queue.as_secs_f64());
            let tally = &handles.tally;
            tally.requests.inc();
            tally.queue_seconds.inc_by(scheduled.queue.as_secs_f64());
            tally
                .compute_seconds
                .inc_by(scheduled.compute.as_secs_f64());
            handles.latency.observe(
                scheduled.compute.as_secs_f64(),
                trace_id.map(|trace_id| vigil_telemetry::metrics::TraceExemplar { trace_id }),
                None,
            );
            let (predicted, written) = attempt.succeeded(
                scheduled.predictions,
                trace_id.as_ref().map(TraceIdHex::as_str),
            );
            persist(state, written).await;
            Ok(predicted)
        }
        Err(e) => {
            let error_type = match &e {
                ApiError::Overloaded => ErrorType::Overloaded,
                ApiError::Model(m) => ErrorType::from(m),
                _ => ErrorType::InferenceFailed,
            };
            let written = attempt.failed(error_type);
            persist(state, written).await;
            Err(e)
        }
    }
}

/// Counts a request refused before it could run, against its model when it named one
/// that is loaded (else `unknown`: labels stay bounded).
pub fn rejected(state: &AppState, model: Option<&Served>, error: &ApiError) {
    if let Some(reason) = error.validation_reason() {
        state.model_metrics.count_validation(model, reason);
    }
}

/// The records are in the spool before the request is answered. The attempt is
/// counted by then, so the request is marked settled: the request timeout lets this
/// short wait finish (a yield, then one write) and the answer says what the metrics,
/// the log and the record say (it answered `timeout` over a counted success or
/// overload).
async fn persist(state: &AppState, ticket: Option<Ticket>) {
    vigil_telemetry::context::settle();
    if let (Some(forwarder), Some(ticket)) = (state.forwarder.get(), ticket) {
        forwarder.persist(ticket).await;
    }
}

fn current_trace_id() -> Option<TraceIdHex> {
    vigil_telemetry::context::with_current(|c| c.map(|c| c.trace_id))
}

/// A new prediction id as text, encoded without the formatting machinery.
fn new_prediction_id() -> String {
    let mut buf = uuid::Uuid::encode_buffer();
    vigil_records::id::new_prediction_id()
        .hyphenated()
        .encode_lower(&mut buf)
        .to_owned()
}

fn latency_ms(started: Instant) -> f64 {
    (started.elapsed().as_secs_f64() * 1e6).round() / 1e3
}

/// A prediction under way. Dropped without an outcome (the request timeout dropped
/// the handler while it waited or ran), it records the timeout.
struct Attempt<'a> {
    state: &'a AppState,
    model: &'a LoadedModel,
    handles: &'a ModelHandles,
    rows: u64,
    started: Instant,
    armed: bool,
}

impl Attempt<'_> {
    /// Records the success; the ticket is the last record's, which covers all of them.
    fn succeeded(
        mut self,
        predictions: Vec<Output>,
        trace_id: Option<&str>,
    ) -> (Predicted, Option<Ticket>) {
        self.armed = false;
        let (card, handles) = (&self.model.card, self.handles);
        handles.success.inc_by(self.rows);
        let prediction_id = new_prediction_id();
        let created_at = crate::handlers::meta::now_rfc3339();
        let latency_ms = latency_ms(self.started);
        let request_id = vigil_telemetry::context::current_request_id();
        let forwarder = self.state.forwarder.get();
        let single = predictions.len() == 1;
        let mut numbered = String::new();
        let mut written = None;
        let (mut confidence_sum, mut value_sum) = (0.0, 0.0);
        for (i, p) in predictions.iter().enumerate() {
            // What the record says of this instance: (label, confidence, is_defect, value).
            let said = match p {
                Output::Class(p) => {
                    let confidence = f64::from(p.confidence);
                    if let Some(h) = &handles.confidence {
                        h.observe(confidence);
                    }
                    confidence_sum += confidence;
                    if let Some(c) = handles.by_class.get(p.class_index) {
                        c.inc();
                    }
                    (
                        card.labels.get(p.class_index).map(String::as_str),
                        Some(confidence),
                        card.is_defect(p.class_index),
                        None,
                    )
                }
                Output::Value(v) => {
                    let value = f64::from(*v);
                    if let Some(h) = &handles.value {
                        h.observe(value);
                    }
                    value_sum += value;
                    (None, None, false, Some(value))
                }
            };
            let Some(forwarder) = forwarder else { continue };
            // One record per instance; a batch's instances share the request's id.
            let id = if single {
                prediction_id.as_str()
            } else {
                numbered.clear();
                numbered.push_str(&prediction_id);
                numbered.push('-');
                numbered.push_str(itoa::Buffer::new().format(i));
                numbered.as_str()
            };
            written = Some(forwarder.submit(&RecordRef {
                prediction_id: id,
                model: &card.name,
                model_version: &card.version,
                timestamp: &created_at,
                label: said.0,
                confidence: said.1,
                is_defect: said.2,
                latency_ms,
                request_id: &request_id,
                trace_id,
                status: Status::Success,
                error_type: None,
                features: None,
                value: said.3,
            }));
        }
        handles.tally.confidence_sum.inc_by(confidence_sum);
        handles.tally.value_sum.inc_by(value_sum);
        let predicted = Predicted {
            predictions,
            prediction_id,
            request_id,
            created_at,
            latency_ms,
        };
        (predicted, written)
    }

    fn failed(mut self, error_type: ErrorType) -> Option<Ticket> {
        self.armed = false;
        self.record_failure(error_type)
    }

    /// Counts the failure and forwards one error record for the request.
    fn record_failure(&self, error_type: ErrorType) -> Option<Ticket> {
        if let Some(c) = self.handles.error(error_type) {
            c.inc();
        }
        self.handles.error.inc_by(self.rows);
        let forwarder = self.state.forwarder.get()?;
        let card = &self.model.card;
        Some(forwarder.submit(&RecordRef {
            prediction_id: &new_prediction_id(),
            model: &card.name,
            model_version: &card.version,
            timestamp: &crate::handlers::meta::now_rfc3339(),
            label: None,
            confidence: None,
            is_defect: false,
            latency_ms: latency_ms(self.started),
            request_id: &vigil_telemetry::context::current_request_id(),
            trace_id: current_trace_id().as_ref().map(TraceIdHex::as_str),
            status: Status::Error,
            error_type: Some(error_type.as_str()),
            features: None,
            value: None,
        }))
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let timed_out = vigil_telemetry::context::with_current(|c| {
            c.is_some_and(|c| c.timed_out.load(std::sync::atomic::Ordering::Acquire))
        });
        // The timeout answers the request as this handler goes: nothing to wait on.
        if timed_out
            && let (Some(ticket), Some(forwarder)) = (
                self.record_failure(ErrorType::Timeout),
                self.state.forwarder.get(),
            )
        {
            forwarder.persist_now(ticket);
        }
    }
}
