//! The telemetry middleware: for every request, a request id and trace context, the
//! `http_*` metrics, one access line (`request_completed`), a `slow_request` warning
//! over the threshold, a request timeout (503, or 408 when the body was still
//! arriving: the client's slowness), and panic safety — a panicking handler is
//! answered with a JSON 500 and the server keeps serving. Apply it with
//! `Router::layer` so it sees the matched route template and every response,
//! including the fallback's 404s and the method router's 405s.

use std::convert::Infallible;

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath};
use axum::response::Response;
use bytes::Buf;
use futures_util::FutureExt;
use http::{HeaderValue, Request, StatusCode, header};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tower::{Layer, Service};
use vigil_listener::Peer;

use crate::context::{
    self, REQUEST_ID_HEADER, RequestContext, RequestId, TRACEPARENT_HEADER, TraceContext,
};
use crate::error::{ErrorInfo, error_response};
use crate::metrics::{HttpMetrics, MethodLabel, RouteLabel};
use crate::observer::{Completed, RequestObserver};
use crate::redact::redact_query;
use crate::series::{Observation, RouteSeries};

/// Longest path, and longest query, written to the access line; longer ones are cut
/// (the route label is what aggregates, the path is for humans), so that a hostile
/// URL cannot make a line longer than a log driver passes in one piece.
const MAX_LOGGED_PATH: usize = 1024;
/// Status recorded when the client goes away before the response (nginx's convention).
pub const CLIENT_CLOSED_REQUEST: u16 = 499;

/// Settings of the middleware.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// `service` of this service's log lines (`inference`, `collector`).
    pub service: &'static str,
    /// Requests slower than this log a WARN `slow_request`.
    pub slow_request: Duration,
    /// Requests still running after this are answered 503 `timeout`.
    pub request_timeout: Option<Duration>,
}

/// Wraps every route of a router with telemetry.
#[derive(Debug, Clone)]
pub struct TelemetryLayer {
    shared: Arc<Shared>,
}

/// Writes one of the layer's own error answers (a timeout, a panic, a body that did
/// not arrive): status, code and message in, the response out.
pub type ErrorAnswer = fn(StatusCode, &'static str, String) -> Response;

/// vigil's error shape (see [`error_response`]).
fn vigil_shape(status: StatusCode, code: &'static str, message: String) -> Response {
    error_response(status, code, message, serde_json::Value::Null)
}

#[derive(Debug)]
struct Shared {
    config: TelemetryConfig,
    metrics: HttpMetrics,
    observer: Option<Arc<dyn RequestObserver>>,
    error_answer: ErrorAnswer,
}

impl TelemetryLayer {
    pub fn new(config: TelemetryConfig, metrics: HttpMetrics) -> Self {
        Self {
            shared: Arc::new(Shared {
                config,
                metrics,
                observer: None,
                error_answer: vigil_shape,
            }),
        }
    }

    /// The same layer (settings, metrics, observer), writing its own error answers
    /// with `answer`: for routes of a protocol with an error shape of its own, so the
    /// access line and the response-size histogram see the answer as it is sent.
    pub fn answering_errors_with(&self, answer: ErrorAnswer) -> Self {
        Self {
            shared: Arc::new(Shared {
                config: self.shared.config.clone(),
                metrics: self.shared.metrics.clone(),
                observer: self.shared.observer.clone(),
                error_answer: answer,
            }),
        }
    }

    /// The same layer, also telling `observer` about every finished request.
    pub fn with_observer(
        config: TelemetryConfig,
        metrics: HttpMetrics,
        observer: Arc<dyn RequestObserver>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                config,
                metrics,
                observer: Some(observer),
                error_answer: vigil_shape,
            }),
        }
    }
}

impl<S> Layer<S> for TelemetryLayer {
    type Service = Telemetry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Telemetry {
            inner,
            layer: Arc::new(PerRoute {
                shared: self.shared.clone(),
                series: RouteSeries::default(),
            }),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Telemetry<S> {
    inner: S,
    /// One allocation for what a request's record needs: a request clones it once.
    layer: Arc<PerRoute>,
}

/// What one route's layer holds: the layer's settings and metrics, and this route's
/// series (shared by the clones axum makes of the service for each request).
#[derive(Debug)]
struct PerRoute {
    shared: Arc<Shared>,
    series: RouteSeries,
}

impl<S> Service<Request<Body>> for Telemetry<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let started = Instant::now();
        let shared = &self.layer.shared;
        let ctx = Arc::new(RequestContext::new(
            RequestId::from_headers(req.headers()),
            TraceContext::from_headers(req.headers()),
            shared.config.service,
        ));
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .cloned()
            .map_or(RouteLabel::Unmatched, RouteLabel::Matched);
        let declared_len = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let read = Arc::new(BodyProgress {
            // A body that has nothing to read (a GET) is whole from the start.
            ended: AtomicBool::new(req.body().is_end_stream()),
            ..BodyProgress::default()
        });
        let req = req.map(|body| {
            Body::new(CountingBody {
                inner: body,
                read: read.clone(),
            })
        });
        let mut record = Record {
            layer: self.layer.clone(),
            ctx: ctx.clone(),
            started,
            method: req.method().clone(),
            route,
            uri: req.uri().clone(),
            client_ip: req
                .extensions()
                .get::<ConnectInfo<Peer>>()
                .map(|c| c.0.ip.clone()),
            declared_len,
            read,
            done: false,
        };
        shared.metrics.in_flight.inc();

        // Take the clone that was driven to readiness; leave a fresh one behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let timeout = shared.config.request_timeout;
        let answer = shared.error_answer;
        Box::pin(context::scope(ctx.clone(), async move {
            let handled = AssertUnwindSafe(inner.call(req)).catch_unwind();
            let outcome = match timeout {
                Some(limit) => {
                    let mut handled = std::pin::pin!(handled);
                    let done = tokio::select! {
                        // A response that is ready wins over a timer that is too.
                        biased;
                        done = &mut handled => Some(done),
                        () = tokio::time::sleep(limit) => None,
                    };
                    match done {
                        Some(done) => Some(done),
                        // Its answer is decided and counted; what is left is short (a
                        // record's write), and bounded all the same, by a second `limit`.
                        None if ctx.settled.load(Ordering::Acquire) => {
                            tokio::time::timeout(limit, handled).await.ok()
                        }
                        None => {
                            // Mark the request before dropping the handler, so code that
                            // notices its own cancellation can tell a timeout from a
                            // client that went away.
                            ctx.timed_out.store(true, Ordering::Release);
                            None
                        }
                    }
                }
                None => Some(handled.await),
            };
            let mut response = match outcome {
                Some(Ok(Ok(response))) => response,
                Some(Ok(Err(infallible))) => match infallible {},
                // The panic hook has already logged the panic with this request's id.
                Some(Err(_panic)) => answer(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal server error".into(),
                ),
                // The body was still coming: the time went waiting for the client,
                // which is its error (408), not the service's (503).
                None if !record.read.whole(record.declared_len) => {
                    let mut response = answer(
                        StatusCode::REQUEST_TIMEOUT,
                        "request_timeout",
                        format!(
                            "the request body did not arrive within {} ms",
                            timeout.unwrap_or_default().as_millis()
                        ),
                    );
                    // The rest of the body is not read: the connection cannot be reused.
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                    response
                }
                None => answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "timeout",
                    format!(
                        "the request did not complete within {} ms",
                        timeout.unwrap_or_default().as_millis()
                    ),
                ),
            };
            let headers = response.headers_mut();
            if let Ok(v) = HeaderValue::from_str(ctx.request_id.as_str()) {
                headers.insert(REQUEST_ID_HEADER, v);
            }
            // Owned: the header takes the string's bytes without a copy.
            if let Ok(v) = HeaderValue::try_from(ctx.traceparent()) {
                headers.insert(TRACEPARENT_HEADER, v);
            }
            record.complete(&response);
            Ok(response)
        }))
    }
}

/// What the access line and metrics need, recorded once: on completion, or on drop if
/// the client went away first (so the in-flight gauge always comes back down).
struct Record {
    layer: Arc<PerRoute>,
    ctx: Arc<RequestContext>,
    started: Instant,
    method: http::Method,
    route: RouteLabel,
    /// Cloning a `Uri` shares its bytes; the path is cut and the query redacted only
    /// when the line is written.
    uri: http::Uri,
    client_ip: Option<Arc<str>>,
    declared_len: Option<u64>,
    read: Arc<BodyProgress>,
    done: bool,
}

/// How much of the request body the handler has read, and whether all of it.
#[derive(Debug, Default)]
struct BodyProgress {
    bytes: AtomicU64,
    ended: AtomicBool,
}

impl BodyProgress {
    /// Whether the body has arrived whole: as many bytes as `Content-Length` said, or
    /// the end of a chunked body.
    fn whole(&self, declared_len: Option<u64>) -> bool {
        self.ended.load(Ordering::Relaxed)
            || declared_len.is_some_and(|n| self.bytes.load(Ordering::Relaxed) >= n)
    }
}

impl Record {
    fn complete(&mut self, response: &Response) {
        let size = response
            .body()
            .size_hint()
            .exact()
            .or_else(|| {
                response
                    .headers()
                    .get(header::CONTENT_LENGTH)?
                    .to_str()
                    .ok()?
                    .parse()
                    .ok()
            })
            .unwrap_or(0);
        let info = response.extensions().get::<ErrorInfo>();
        self.finish(response.status().as_u16(), size, info);
    }

    fn finish(&mut self, status: u16, response_bytes: u64, info: Option<&ErrorInfo>) {
        self.done = true;
        let elapsed = self.started.elapsed();
        let secs = elapsed.as_secs_f64();
        let request_bytes = self
            .declared_len
            .unwrap_or_else(|| self.read.bytes.load(Ordering::Relaxed));
        let PerRoute { shared, series } = &*self.layer;
        let m = &shared.metrics;
        let method = MethodLabel::from(&self.method);
        m.in_flight.dec();
        series.observe(
            m,
            &Observation {
                method,
                route: &self.route,
                status,
                duration: elapsed,
                trace_id: self.ctx.trace_id,
                request_bytes,
                response_bytes,
            },
        );

        if let Some(observer) = &shared.observer {
            observer.completed(&Completed {
                // The closed set: an odd method must not become a key anywhere.
                method: method.as_str(),
                route: self.route.as_str(),
                status,
                duration: elapsed,
                user: self.ctx.user.get(),
            });
        }
        let duration_ms = (secs * 1e6).round() / 1e3;
        let user = self.ctx.user.get().map_or("anonymous", |u| &**u);
        let path = truncate(self.uri.path(), MAX_LOGGED_PATH);
        // Redacted whole, then cut: a secret is never left half-written.
        let query = self.uri.query().map(redact_query);
        let query = query.as_deref().map(|q| truncate(q, MAX_LOGGED_PATH));
        let error_code = info.map(|i| i.code);
        tracing::info!(
            target: "vigil::access",
            method = self.method.as_str(),
            path,
            query,
            route = self.route.as_str(),
            status,
            duration_ms,
            request_bytes,
            response_bytes,
            client_ip = self.client_ip.as_deref(),
            user,
            error_code,
            "request_completed"
        );
        if elapsed >= shared.config.slow_request {
            tracing::warn!(
                target: "vigil::access",
                method = self.method.as_str(),
                route = self.route.as_str(),
                status,
                duration_ms,
                threshold_ms = shared.config.slow_request.as_millis() as u64,
                "slow_request"
            );
        }
        if status >= 500 {
            let cause = info.and_then(|i| i.cause.as_deref());
            tracing::error!(target: "vigil::access", status, error_code, cause, "request_failed");
        }
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        if !self.done {
            // Dropped before a response: the client closed the connection.
            let ctx = self.ctx.clone();
            context::sync_scope(ctx, || self.finish(CLIENT_CLOSED_REQUEST, 0, None));
        }
    }
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

pin_project_lite::pin_project! {
    /// Counts request body bytes as the handler reads them (chunked bodies have no
    /// Content-Length to report).
    struct CountingBody {
        #[pin]
        inner: Body,
        read: Arc<BodyProgress>,
    }
}

impl HttpBody for CountingBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.read
                        .bytes
                        .fetch_add(data.remaining() as u64, Ordering::Relaxed);
                }
                if this.inner.is_end_stream() {
                    this.read.ended.store(true, Ordering::Relaxed);
                }
            }
            Poll::Ready(None) => this.read.ended.store(true, Ordering::Relaxed),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
