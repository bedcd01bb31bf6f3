//! Reading predictions back: `GET /predictions` (filtered, paged by cursor) and
//! `GET /stats` (per-model figures over a window).

use axum::Json;
use axum::extract::State;
use http::Uri;
use serde::{Deserialize, Serialize};
use vigil_records::{Record, WireRecord, rfc3339_ms};
use vigil_store::{Cursor, Filter, ModelStats, PageSize};

use super::{now_ms, parse_time, parse_window, query};
use crate::CollectorState;
use crate::error::CollectorError;

/// Most rows one `GET /predictions` page returns.
pub const MAX_PAGE: u32 = 1000;

/// About how much record text one `GET /predictions` page holds: it ends with the
/// record that reaches this. 1,000 plain records weigh ~400 KB and come whole; records
/// with thousands of features (~100 KB each) come a few dozen a page, so that a page is
/// never tens of megabytes in the collector's memory (then again as its JSON).
pub const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictionsQuery {
    model: Option<String>,
    label: Option<String>,
    defect: Option<bool>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PredictionsPage {
    pub predictions: Vec<WireRecord>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A cursor is `<ts_ms>~<prediction id>` in base64url without padding: opaque, and
/// made only of characters a URL keeps as they are, so one pasted into a query string
/// raw means what it means encoded. Written plain, an id with `+` (a space in a query),
/// `&`, `#` or `%` lost its place, and the next page came back empty.
fn encode_cursor(r: &Record) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{}~{}", r.ts_ms, r.prediction_id))
}

/// A cursor as [`encode_cursor`] writes it, or plain `<ts_ms>~<id>` as earlier versions
/// did (base64url has no `~`), so a listing paged across an upgrade goes on.
fn decode_cursor(s: &str) -> Result<Cursor, CollectorError> {
    use base64::Engine;
    let malformed = || CollectorError::InvalidQuery("malformed cursor".into());
    let decoded;
    let plain = if s.contains('~') {
        s
    } else {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| malformed())?;
        decoded = String::from_utf8(bytes).map_err(|_| malformed())?;
        decoded.as_str()
    };
    let (ts, id) = plain.split_once('~').ok_or_else(malformed)?;
    let ts_ms = ts.parse().map_err(|_| malformed())?;
    // As in every other query value (and PostgreSQL cannot compare with a NUL).
    if id.chars().any(char::is_control) {
        return Err(malformed());
    }
    Ok(Cursor {
        ts_ms,
        prediction_id: id.to_owned(),
    })
}

/// `GET /predictions`: newest first, filtered, paged by cursor.
pub async fn predictions(
    State(state): State<CollectorState>,
    uri: Uri,
) -> Result<Json<PredictionsPage>, CollectorError> {
    let q: PredictionsQuery = query(&uri)?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE {
        return Err(CollectorError::InvalidQuery(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let filter = Filter {
        model: q.model,
        label: q.label,
        defect: q.defect,
        since_ms: q
            .since
            .as_deref()
            .map(|s| parse_time("since", s))
            .transpose()?,
        until_ms: q
            .until
            .as_deref()
            .map(|s| parse_time("until", s))
            .transpose()?,
    };
    let cursor = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let size = PageSize {
        rows: limit,
        bytes: MAX_PAGE_BYTES,
    };
    let page = state
        .store
        .predictions(&filter, cursor.as_ref(), size)
        .await
        .map_err(CollectorError::Unavailable)?;
    let next_cursor = page
        .full
        .then(|| page.records.last().map(encode_cursor))
        .flatten();
    Ok(Json(PredictionsPage {
        predictions: page
            .records
            .into_iter()
            .map(WireRecord::from_stored)
            .collect(),
        next_cursor,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsQuery {
    /// `30s`, `15m`, `1h`, `7d`; default 1h.
    window: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StatsBody {
    pub window_seconds: u64,
    pub since: String,
    pub until: String,
    pub models: Vec<serde_json::Value>,
}

/// `GET /stats?window=1h`: per model count, defects, defect rate, mean confidence, label mix.
pub async fn stats(
    State(state): State<CollectorState>,
    uri: Uri,
) -> Result<Json<StatsBody>, CollectorError> {
    let q: StatsQuery = query(&uri)?;
    let window = parse_window(q.window.as_deref().unwrap_or("1h"))?;
    let until = now_ms();
    let since = until - (window as i64) * 1000;
    let stats: Vec<ModelStats> = state
        .store
        .stats(since, until + 1)
        .await
        .map_err(CollectorError::Unavailable)?;
    Ok(Json(StatsBody {
        window_seconds: window,
        since: rfc3339_ms(since),
        until: rfc3339_ms(until),
        models: stats
            .into_iter()
            .map(|s| serde_json::to_value(s).unwrap_or_default())
            .collect(),
    }))
}
