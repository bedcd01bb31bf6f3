//! `PUT /models/{name}`: an inference service announces a card it serves (at start
//! and on every change), so feedback can be checked against its labels and quality
//! compared with its baseline. `GET /models` lists the cards this collector knows.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, Uri};
use serde::Deserialize;
use serde_json::json;
use vigil_records::CardSummary;

use super::{json_body, now_ms, query};
use crate::CollectorState;
use crate::cards::CardRefused;
use crate::error::CollectorError;

/// `PUT /models/{name}`: 200 with the card as kept.
pub async fn put_card(
    State(state): State<CollectorState>,
    name: Result<Path<String>, PathRejection>,
    req: Request,
) -> Result<Response, CollectorError> {
    // axum's own rejection is plain text; the contract's is JSON.
    let Path(name) = name.map_err(|e| CollectorError::InvalidPath(e.body_text()))?;
    let card: CardSummary = json_body(req, state.config.body_limit).await?;
    if card.model != name {
        return Err(CollectorError::Invalid(format!(
            "the card is model {:?}, the path names {name:?}",
            card.model
        )));
    }
    state.register_card(card.clone()).await?;
    Ok((StatusCode::OK, Json(card)).into_response())
}

/// `GET /models` takes no query parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CardsQuery {}

/// `GET /models`: the cards this collector knows. A query parameter is refused, as on
/// the collector's other reads: `?model=x` does not filter, and a 200 would say it did.
pub async fn cards(
    State(state): State<CollectorState>,
    uri: Uri,
) -> Result<Response, CollectorError> {
    let CardsQuery {} = query(&uri)?;
    Ok(Json(json!({ "models": state.cards.all() })).into_response())
}

impl CollectorState {
    /// Checks, stores and keeps `card`; a changed card is logged.
    pub async fn register_card(&self, card: CardSummary) -> Result<(), CollectorError> {
        self.cards.admit(&card).map_err(|e| match e {
            CardRefused::Invalid(m) => CollectorError::Invalid(m),
            full @ CardRefused::Full => CollectorError::Invalid(full.to_string()),
        })?;
        if self.cards.get(&card.model).as_ref() == Some(&card) {
            return Ok(());
        }
        self.store
            .put_card(&card, now_ms())
            .await
            .map_err(CollectorError::Unavailable)?;
        tracing::info!(
            target: "vigil_collector::cards",
            model = %card.model,
            version = %card.version,
            task = card.task.as_str(),
            labels = card.labels.len(),
            "model_card_registered"
        );
        self.cards.put(card);
        Ok(())
    }
}
