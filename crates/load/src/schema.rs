//! The model's schema, read from the target before any traffic: `GET /models` for
//! the default model's name when no `--model` is given, then `GET /models/{name}`.
//!
//! The requests are generated from it (each feature's training distribution for good
//! and drifted rows, the labels for feedback), so a run cannot start without it, and
//! a target that cannot give it fails the run before anything is sent.

use crate::address::BaseUrl;
use crate::config::{LoadError, REQUEST_TIMEOUT};
use crate::failure::why;
use crate::generate::ModelSchema;

/// The schema of `model` at `target`, or of the target's default model.
pub(crate) async fn fetch_schema(
    client: &reqwest::Client,
    target: &BaseUrl,
    model: Option<&str>,
) -> Result<ModelSchema, LoadError> {
    let get = |path: String| async move {
        let failed = |reason: String| LoadError::Schema {
            url: target.shown_join(&path),
            reason,
        };
        let response = client
            .get(target.join(&path))
            .send()
            .await
            .map_err(|e| failed(why(&e, REQUEST_TIMEOUT)))?;
        if !response.status().is_success() {
            return Err(failed(format!("answered {}", response.status())));
        }
        response
            .json::<serde_json::Value>()
            .await
            .map_err(|e| failed(why(&e, REQUEST_TIMEOUT)))
    };
    let name = match model {
        Some(name) => name.to_owned(),
        None => {
            let list = get("/models".into()).await?;
            list["default_model"]
                .as_str()
                .ok_or_else(|| LoadError::Schema {
                    url: target.shown_join("/models"),
                    reason: "no default_model".into(),
                })?
                .to_owned()
        }
    };
    let path = format!("/models/{name}");
    let info = get(path.clone()).await?;
    serde_json::from_value(info).map_err(|e| LoadError::Schema {
        url: target.shown_join(&path),
        reason: e.to_string(),
    })
}
