//! Request scope: the request id, the W3C trace context and the service name, carried
//! in a task-local so every log line and error body of a request can name it without
//! threading it through every function.

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use http::HeaderMap;

/// Longest `X-Request-ID` kept as given; longer ones are replaced.
pub const MAX_REQUEST_ID_LEN: usize = vigil_records::id::MAX_ID_LEN;
pub const REQUEST_ID_HEADER: &str = "x-request-id";
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// A request id: the caller's if it is printable ASCII of at most 128 chars, else a
/// fresh UUID. Printable ASCII cannot carry CR/LF or escape sequences into a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(Arc<str>);

impl RequestId {
    pub fn generate() -> Self {
        // Encoded into a stack buffer: `to_string` would run the formatting machinery.
        let mut buf = uuid::Uuid::encode_buffer();
        Self(Arc::from(
            &*uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf),
        ))
    }

    /// The caller's id if it is acceptable.
    pub fn parse(value: &[u8]) -> Option<Self> {
        // Checked: all bytes are printable ASCII, hence valid UTF-8.
        Self::is_acceptable(value)
            .then(|| Self(std::str::from_utf8(value).unwrap_or_default().into()))
    }

    /// Whether `value` is kept as a request id (`vigil_records::id::is_request_id`:
    /// the collector accepts exactly these in a record, so no id kept here can get a
    /// record refused).
    pub fn is_acceptable(value: &[u8]) -> bool {
        vigil_records::id::is_request_id(value)
    }

    pub fn from_headers(headers: &HeaderMap) -> Self {
        headers
            .get(REQUEST_ID_HEADER)
            .and_then(|v| Self::parse(v.as_bytes()))
            .unwrap_or_else(Self::generate)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// W3C trace context of this request: the trace it belongs to, and our own span id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: u128,
    pub span_id: u64,
    /// The caller's span, when the request came with a valid `traceparent`.
    pub parent_span_id: Option<u64>,
    pub sampled: bool,
}

impl TraceContext {
    /// Joins the caller's trace if `traceparent` is valid, else starts a new one.
    /// Invalid headers are ignored, as the W3C spec asks, never an error.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let parent = headers
            .get(TRACEPARENT_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_traceparent);
        let span_id = random_nonzero_u64();
        match parent {
            Some((trace_id, parent_span, sampled)) => Self {
                trace_id,
                span_id,
                parent_span_id: Some(parent_span),
                sampled,
            },
            None => Self {
                trace_id: random_nonzero_u128(),
                span_id,
                parent_span_id: None,
                sampled: true,
            },
        }
    }

    pub fn trace_id_hex(&self) -> TraceIdHex {
        TraceIdHex::new(self.trace_id)
    }

    /// The `traceparent` to send downstream (and back): same trace, our span.
    pub fn traceparent(&self) -> String {
        self.traceparent_with(self.trace_id_hex())
    }

    /// [`Self::traceparent`] with the trace id's hex already written (a request's
    /// [`RequestContext`] keeps it), so it is not encoded twice.
    fn traceparent_with(&self, trace_id: TraceIdHex) -> String {
        let mut span = [0; 16];
        hex_into(&self.span_id.to_be_bytes(), &mut span);
        let mut out = String::with_capacity(55);
        out.push_str("00-");
        out.push_str(trace_id.as_str());
        out.push('-');
        out.push_str(std::str::from_utf8(&span).expect("hex digits are ASCII"));
        out.push_str(if self.sampled { "-01" } else { "-00" });
        out
    }
}

/// A trace id as the 32 lowercase hex digits logs, exemplars and records carry.
/// Formatted once a request and `Copy`: an exemplar or a record takes it without an
/// allocation, and the hex is written without the formatting machinery.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceIdHex([u8; 32]);

impl TraceIdHex {
    pub fn new(trace_id: u128) -> Self {
        let mut digits = [0; 32];
        hex_into(&trace_id.to_be_bytes(), &mut digits);
        Self(digits)
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex digits are ASCII")
    }
}

impl fmt::Display for TraceIdHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for TraceIdHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Lowercase hex of `bytes` into `out`, which holds exactly two digits a byte.
fn hex_into(bytes: &[u8], out: &mut [u8]) {
    hex::encode_to_slice(bytes, out).expect("two hex digits a byte");
}

fn random_nonzero_u128() -> u128 {
    uuid::Uuid::new_v4().as_u128().max(1)
}

fn random_nonzero_u64() -> u64 {
    (uuid::Uuid::new_v4().as_u128() as u64).max(1)
}

/// Parses `version-traceid-spanid-flags` per W3C Trace Context level 1.
pub fn parse_traceparent(value: &str) -> Option<(u128, u64, bool)> {
    let value = value.trim();
    let mut parts = value.split('-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let span = parts.next()?;
    let flags = parts.next()?;
    let lower_hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !lower_hex(version, 2)
        || version == "ff"
        || !lower_hex(trace, 32)
        || !lower_hex(span, 16)
        || !lower_hex(flags, 2)
    {
        return None;
    }
    // Version 00 has exactly four fields; later versions may append more.
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let trace_id = u128::from_str_radix(trace, 16).ok().filter(|t| *t != 0)?;
    let span_id = u64::from_str_radix(span, 16).ok().filter(|s| *s != 0)?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some((trace_id, span_id, flags & 1 == 1))
}

/// Everything a request's log lines and error bodies need to know about it.
#[derive(Debug)]
pub struct RequestContext {
    pub request_id: RequestId,
    pub trace: TraceContext,
    /// `trace_id` as 32 hex chars, formatted once.
    pub trace_id: TraceIdHex,
    pub service: &'static str,
    /// The authenticated caller, once auth has run.
    pub user: OnceLock<Arc<str>>,
    /// Set when the request timeout fired (before the handler is dropped).
    pub timed_out: AtomicBool,
    /// Set by a handler that has its answer and has counted it, and is only writing it
    /// down: the request timeout no longer cuts it off (its answer would then say
    /// `timeout` while the metrics and the record said what it was). See [`settle`].
    pub settled: AtomicBool,
}

impl RequestContext {
    pub fn new(request_id: RequestId, trace: TraceContext, service: &'static str) -> Self {
        Self {
            request_id,
            trace_id: trace.trace_id_hex(),
            trace,
            service,
            user: OnceLock::new(),
            timed_out: AtomicBool::new(false),
            settled: AtomicBool::new(false),
        }
    }

    /// This request's `traceparent`, from the trace id formatted once.
    pub fn traceparent(&self) -> String {
        self.trace.traceparent_with(self.trace_id)
    }
}

tokio::task_local! {
    static CURRENT: Arc<RequestContext>;
}

/// Runs `fut` with `ctx` as the current request.
pub async fn scope<F: Future>(ctx: Arc<RequestContext>, fut: F) -> F::Output {
    CURRENT.scope(ctx, fut).await
}

/// Runs `f` synchronously with `ctx` as the current request (for code that runs
/// outside the request's future, such as a drop guard).
pub fn sync_scope<R>(ctx: Arc<RequestContext>, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(ctx, f)
}

/// `fut` in the current request's scope, wherever it is polled: for work a handler
/// spawns as a task of its own (so a client that hangs up cannot cut it off), whose
/// log lines would otherwise carry neither the request's ids nor its service.
pub fn in_current_scope<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    let ctx = current();
    async move {
        match ctx {
            Some(ctx) => scope(ctx, fut).await,
            None => fut.await,
        }
    }
}

/// `f`, to be run on another thread (a blocking task), in the current request's scope:
/// its log lines, and a panic's line, carry the request's ids and service there too.
pub fn carry_scope<R>(f: impl FnOnce() -> R) -> impl FnOnce() -> R {
    let ctx = current();
    move || match ctx {
        Some(ctx) => sync_scope(ctx, f),
        None => f(),
    }
}

/// Marks the current request settled: its outcome is decided and counted, and what is
/// left before the answer is short and bounded (writing its record down), so the
/// request timeout lets it finish instead of answering `timeout` over it.
pub fn settle() {
    with_current(|c| {
        if let Some(c) = c {
            c.settled.store(true, std::sync::atomic::Ordering::Release);
        }
    });
}

/// The request being served by this task, if any.
pub fn current() -> Option<Arc<RequestContext>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Calls `f` with the current request without cloning it.
pub fn with_current<R>(f: impl FnOnce(Option<&RequestContext>) -> R) -> R {
    let mut f = Some(f);
    match CURRENT.try_with(|ctx| (f.take().expect("called once"))(Some(ctx))) {
        Ok(r) => r,
        Err(_) => (f.take().expect("not called yet"))(None),
    }
}

/// The current request id, or an empty string outside a request.
pub fn current_request_id() -> String {
    with_current(|c| c.map(|c| c.request_id.to_string()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_carried_scope_is_the_request_on_another_thread() {
        let ctx = Arc::new(RequestContext::new(
            RequestId::parse(b"req-carried").unwrap(),
            TraceContext::from_headers(&HeaderMap::new()),
            "inference",
        ));
        let work = sync_scope(ctx, || carry_scope(current_request_id));
        let seen = std::thread::spawn(work).join().unwrap();
        assert_eq!(seen, "req-carried");
        // Outside any request it runs as it is.
        let bare = std::thread::spawn(carry_scope(current_request_id));
        assert_eq!(bare.join().unwrap(), "");
    }

    #[test]
    fn keeps_printable_ids_and_replaces_the_rest() {
        assert_eq!(RequestId::parse(b"abc-123").unwrap().as_str(), "abc-123");
        assert!(RequestId::parse(&[b'a'; 128]).is_some());
        assert!(RequestId::parse(&[b'a'; 129]).is_none());
        assert!(RequestId::parse(b"evil\r\nlevel=ERROR").is_none());
        assert!(RequestId::parse(b"\x1b[31mred").is_none());
        assert!(RequestId::parse("caf\u{e9}".as_bytes()).is_none());
        assert!(RequestId::parse(b"").is_none());
    }

    #[test]
    fn parses_valid_traceparent_and_ignores_invalid() {
        let (t, s, sampled) =
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(t, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(s, 0x00f067aa0ba902b7);
        assert!(sampled);
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "garbage",
            "",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn ids_are_written_as_zero_padded_lowercase_hex() {
        let ctx = TraceContext {
            trace_id: 0xab,
            span_id: 0x0c,
            parent_span_id: None,
            sampled: false,
        };
        assert_eq!(
            ctx.trace_id_hex().as_str(),
            "000000000000000000000000000000ab"
        );
        assert_eq!(
            ctx.traceparent(),
            "00-000000000000000000000000000000ab-000000000000000c-00"
        );
        let id = RequestId::generate();
        assert!(uuid::Uuid::try_parse(id.as_str()).is_ok(), "{id}");
        assert_eq!(id.as_str(), id.as_str().to_lowercase());
    }

    #[test]
    fn joins_the_callers_trace_with_a_new_span() {
        let mut headers = HeaderMap::new();
        headers.insert(
            TRACEPARENT_HEADER,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let ctx = TraceContext::from_headers(&headers);
        assert_eq!(
            ctx.trace_id_hex().as_str(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(ctx.parent_span_id, Some(0x00f067aa0ba902b7));
        assert_ne!(ctx.span_id, 0x00f067aa0ba902b7);
        assert_eq!(
            ctx.traceparent(),
            format!(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-{:016x}-01",
                ctx.span_id
            )
        );
        headers.insert(TRACEPARENT_HEADER, "nonsense".parse().unwrap());
        let fresh = TraceContext::from_headers(&headers);
        assert_eq!(fresh.parent_span_id, None);
        assert_ne!(fresh.trace_id, 0);
    }
}
