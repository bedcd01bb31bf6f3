//! `POST /log`: prediction records in, each stored once.

use axum::Json;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde::{Deserialize, Serialize};
use vigil_records::{BodyError, packed};
use vigil_telemetry::body::{read_json, read_limited};
use vigil_telemetry::context::in_current_scope;

use crate::CollectorState;
use crate::error::CollectorError;

/// The `POST /log` encodings, as `Accept-Post` (W3C LDP) lists them.
pub const ACCEPT_POST: &str = "application/json, application/vnd.vigil.records";

/// Answer of `POST /log`.
#[derive(Debug, Serialize, Deserialize)]
pub struct LogAccepted {
    pub accepted: u64,
    pub duplicates: u64,
}

/// `POST /log`: one record or `{"records": [...]}`, or a binary batch
/// ([`vigil_records::packed`]); stored once each, all or nothing.
pub async fn log(
    State(state): State<CollectorState>,
    req: Request,
) -> Result<Response, CollectorError> {
    let binary = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(packed::is_content_type);
    let (limit, max_records) = (state.config.body_limit, state.config.max_records);
    let parsed = if binary {
        packed::parse_body(&read_limited(req, limit).await?, max_records)
    } else {
        vigil_records::json::parse_body(&read_json(req, limit).await?, max_records)
    };
    let records = parsed.map_err(|e| match e {
        BodyError::Json(m) => CollectorError::MalformedJson(m),
        BodyError::Shape(m) => CollectorError::Invalid(m),
        BodyError::Version(m) => CollectorError::UnsupportedVersion(m),
        BodyError::Records(errors) => CollectorError::InvalidRecords(errors),
    })?;
    // Spawned: a client that hangs up (a forwarder that stopped waiting) cannot cut
    // it off between the commit and the counts, the label join and `records_stored`.
    let ingest = tokio::spawn({
        let state = state.clone();
        in_current_scope(async move { state.ingest(&records).await })
    });
    let inserted = match ingest.await {
        Ok(result) => result.map_err(CollectorError::Unavailable)?,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    Ok((
        StatusCode::ACCEPTED,
        // Tells senders (vigil's forwarder) they may switch to the binary encoding.
        [(header::HeaderName::from_static("accept-post"), ACCEPT_POST)],
        Json(LogAccepted {
            accepted: inserted.accepted,
            duplicates: inserted.duplicates,
        }),
    )
        .into_response())
}
