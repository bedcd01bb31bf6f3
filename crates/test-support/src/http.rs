//! HTTP helpers for tests.

use std::time::Duration;

use serde_json::Value;

use crate::prometheus::{PATIENCE, try_sample};

/// The body of a GET on `client`, as JSON.
pub async fn get_json(client: &reqwest::Client, url: impl reqwest::IntoUrl) -> Value {
    json_answer(client.get(url)).await
}

/// The body of a GET on `client` with `key` as its bearer token, as JSON.
pub async fn get_json_with_key(
    client: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    key: &str,
) -> Value {
    json_answer(client.get(url).bearer_auth(key)).await
}

/// The JSON answer to POSTing `body` as JSON.
pub async fn post_json(
    client: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    body: &Value,
) -> Value {
    json_answer(client.post(url).json(body)).await
}

/// Sends `request`; its answer's body, as JSON.
async fn json_answer(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// The body of a GET, as text.
pub async fn get_text(url: impl reqwest::IntoUrl) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// Polls the metrics page at `url` until `series` has `value`.
pub async fn wait_for_metric_at(url: &str, series: &str, value: f64) {
    wait_for_metric_within(url, series, value, PATIENCE).await;
}

/// [`wait_for_metric_at`] for a wait whose condition takes longer than most, by design.
pub async fn wait_for_metric_within(url: &str, series: &str, value: f64, patience: Duration) {
    crate::eventually(patience, async || {
        let text = get_text(url).await;
        if try_sample(&text, series) == Some(value) {
            Ok(())
        } else {
            Err(format!("{series} is not {value}:\n{text}"))
        }
    })
    .await
}
