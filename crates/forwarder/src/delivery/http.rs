//! Delivery to a collector over HTTP: `POST {collector}/log`. Batches go as JSON until
//! the collector lists the binary encoding in `Accept-Post`, then as they were packed;
//! a 415 for a binary batch (a collector replaced by one without it) sends the same
//! batch again as JSON and stays on JSON.

use std::time::Duration;

use vigil_records::packed;

use super::{Delivered, Delivery, json};
use crate::Batch;

const JSON: &str = "application/json";

/// The most of an answer's body read: a collector's own answers are far smaller (a 422
/// naming each of 2,000 refused records is ~300 KB), and a proxy's 1 GB error page
/// read whole would take the inference service's memory with it.
const MAX_ANSWER_BYTES: usize = 4 << 20;

/// Posts batches to one collector.
#[derive(Debug)]
pub struct HttpDelivery {
    /// `{collector_url}/log`.
    url: reqwest::Url,
    client: reqwest::Client,
    /// The collector has advertised the binary encoding.
    binary: bool,
}

impl HttpDelivery {
    /// Delivery to the collector at `collector_url` (e.g. `http://127.0.0.1:8001`).
    pub fn new(collector_url: &str) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            // A redirect would turn the POST into a GET somewhere else: a failure.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let url = reqwest::Url::parse(&format!("{}/log", collector_url.trim_end_matches('/')))
            .map_err(|e| e.to_string())?;
        Ok(Self {
            url,
            client,
            binary: false,
        })
    }

    async fn post(
        &mut self,
        body: bytes::Bytes,
        content_type: &'static str,
        records: usize,
    ) -> Answer {
        // The body is a reference to the batch's buffer: a retry sends it again
        // without a copy.
        let sent = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await;
        let r = match sent {
            Ok(r) => r,
            Err(e) => return Answer::Done(Delivered::Failed(e.to_string())),
        };
        let status = r.status();
        if status.is_success() {
            let binary = accepts_binary(r.headers());
            // Stored means the collector's own receipt: 202 `{"accepted", "duplicates"}`
            // counting every record sent. Any other 2xx (a proxy's or another
            // service's 200 on a misrouted URL) stored nothing, and taking it for
            // stored lost the batch while `sent` counted it.
            let body = at_most(r, MAX_ANSWER_BYTES).await;
            if status != reqwest::StatusCode::ACCEPTED
                || body.as_deref().and_then(receipt) != Some(records as u64)
            {
                return Answer::Done(Delivered::Failed(format!(
                    "status {status} without the collector's receipt for {records} records"
                )));
            }
            if !self.binary && binary {
                tracing::info!(target: "vigil::forwarder", "collector_accepts_binary_batches");
                self.binary = true;
            }
            return Answer::Done(Delivered::Stored);
        }
        if status == reqwest::StatusCode::UNSUPPORTED_MEDIA_TYPE && content_type != JSON {
            return Answer::Unsupported;
        }
        // Only the collector's own verdict on the records (400: not a body it can
        // read, 422: records that break its rules) is final. Anything else (a proxy's
        // 401/403/404/405/413, a redirect, a 5xx) says nothing about the records:
        // the batch waits in the spool until the path to the collector is fixed.
        if status == reqwest::StatusCode::BAD_REQUEST
            || status == reqwest::StatusCode::UNPROCESSABLE_ENTITY
        {
            let body = at_most(r, MAX_ANSWER_BYTES).await.unwrap_or_default();
            let (why, records) = refused_records(&body);
            return Answer::Done(Delivered::Rejected {
                why: format!("status {status}{why}"),
                records,
            });
        }
        Answer::Done(Delivered::Failed(format!("status {status}")))
    }
}

enum Answer {
    Done(Delivered),
    /// 415: the collector does not take this encoding (any more).
    Unsupported,
}

impl Delivery for HttpDelivery {
    async fn deliver(&mut self, batch: &Batch) -> Delivered {
        if self.binary {
            match self
                .post(batch.body().clone(), packed::CONTENT_TYPE, batch.len())
                .await
            {
                Answer::Done(d) => return d,
                Answer::Unsupported => {
                    tracing::warn!(target: "vigil::forwarder", "collector_refused_binary_batches");
                    self.binary = false;
                }
            }
        }
        let (body, encoded) = json::encode(batch);
        if let Err(e) = encoded {
            // Sending the rest would store them while the batch is counted whole:
            // refuse it instead, so the loss is counted, never silent.
            return Delivered::Rejected {
                why: format!("cannot encode a record as JSON: {e}"),
                records: Vec::new(),
            };
        }
        match self.post(body.into(), JSON, batch.len()).await {
            Answer::Done(d) => d,
            Answer::Unsupported => Delivered::Failed("status 415 for JSON".into()),
        }
    }
}

/// The body of `r`, or `None` when it cannot be read whole or passes `max` bytes (read
/// no further than that).
async fn at_most(mut r: reqwest::Response, max: usize) -> Option<Vec<u8>> {
    if r.content_length().is_some_and(|n| n > max as u64) {
        return None;
    }
    let mut body = Vec::new();
    while let Some(chunk) = r.chunk().await.ok()? {
        if body.len() + chunk.len() > max {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

/// How many records a collector's 202 answer acknowledges: `accepted + duplicates`.
fn receipt(body: &[u8]) -> Option<u64> {
    let answer: serde_json::Value = serde_json::from_slice(body).ok()?;
    answer["accepted"]
        .as_u64()?
        .checked_add(answer["duplicates"].as_u64()?)
}

/// Whether a response's `Accept-Post` lists the binary encoding.
fn accepts_binary(headers: &reqwest::header::HeaderMap) -> bool {
    headers
        .get_all("accept-post")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(packed::is_content_type)
}

/// The records a 422 `invalid_records` answer names (`details.errors[]` with `index`,
/// `field`, `reason`), and the first one's reason for the log.
fn refused_records(body: &[u8]) -> (String, Vec<usize>) {
    let Ok(answer) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (String::new(), Vec::new());
    };
    let errors = answer["error"]["details"]["errors"].as_array();
    let indexes: Option<Vec<usize>> = errors.map(|errors| {
        errors
            .iter()
            .filter_map(|e| e["index"].as_u64().and_then(|i| usize::try_from(i).ok()))
            .collect()
    });
    let first = errors
        .and_then(|e| e.first())
        .map_or_else(String::new, |e| {
            format!(
                ": record {}: {} {}",
                e["index"],
                e["field"].as_str().unwrap_or(""),
                e["reason"].as_str().unwrap_or("")
            )
        });
    // Only a complete list can be acted on.
    match indexes {
        Some(i) if i.len() == errors.map_or(0, Vec::len) => (first, i),
        _ => (first, Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_counts_accepted_and_duplicate_records() {
        assert_eq!(receipt(br#"{"accepted": 7, "duplicates": 3}"#), Some(10));
        for other in [
            b"<html>hello</html>".as_slice(),
            b"",
            br#"{"accepted": 7}"#,
            br#"{"accepted": -1, "duplicates": 0}"#,
            br#"{"status": "ok"}"#,
        ] {
            assert_eq!(receipt(other), None);
        }
    }

    #[test]
    fn refusals_name_records_only_when_the_answer_lists_every_one() {
        let named = br#"{"error":{"code":"invalid_records","details":{"errors":[
            {"index":3,"field":"confidence","reason":"must be between 0 and 1"},
            {"index":0,"reason":"missing field `model`"}]}}}"#;
        let (why, records) = refused_records(named);
        assert_eq!(records, [3, 0]);
        assert_eq!(why, ": record 3: confidence must be between 0 and 1");
        // Not JSON, another error, or an index that is not a number: nothing to prune.
        for other in [
            b"<html>".as_slice(),
            br#"{"error":{"code":"invalid_body","details":null}}"#,
            br#"{"error":{"details":{"errors":[{"index":1},{"index":"x"}]}}}"#,
        ] {
            assert!(refused_records(other).1.is_empty());
        }
    }
}
