//! The telemetry layer on a plain axum router: panics become JSON 500s and the router
//! keeps serving, timeouts become 503s (408s while the body is still coming), abandoned requests bring the in-flight gauge
//! back down, and every response is counted under its route template.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use futures_util::StreamExt;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use vigil_telemetry::{HttpMetrics, Metrics, TelemetryConfig, TelemetryLayer};

async fn explode() -> &'static str {
    panic!("handler exploded")
}

fn router(timeout: Option<Duration>) -> (Router, Metrics, HttpMetrics) {
    let mut registry = Metrics::base_registry("test", "0");
    let http = HttpMetrics::register(&mut registry);
    let layer = TelemetryLayer::new(
        TelemetryConfig {
            service: "test",
            slow_request: Duration::from_secs(1),
            request_timeout: timeout,
        },
        http.clone(),
    );
    let app = Router::new()
        .route("/ok/{id}", get(|| async { "fine" }))
        .route("/panic", get(explode))
        .route(
            "/slow",
            get(|| async { tokio::time::sleep(Duration::from_secs(3600)).await }),
        )
        .route(
            "/upload",
            axum::routing::post(|body: axum::body::Bytes| async move { body.len().to_string() }),
        )
        .layer(layer);
    (app, Metrics::new(registry), http)
}

async fn call(app: &Router, uri: &str) -> (StatusCode, serde_json::Value, http::HeaderMap) {
    let resp = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        parts.headers,
    )
}

#[tokio::test]
async fn a_panicking_handler_gets_a_json_500_and_the_router_keeps_serving() {
    let (app, metrics, http) = router(None);
    let (status, body, headers) = call(&app, "/panic").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"]["code"], "internal");
    assert_eq!(
        body["request_id"],
        headers["x-request-id"].to_str().unwrap()
    );
    assert!(
        !body.to_string().contains("exploded"),
        "panic message must not leak: {body}"
    );
    let (status, ..) = call(&app, "/ok/1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(http.in_flight.get(), 0);
    let text = metrics.render_text();
    assert!(
        text.contains("http_requests_total{method=\"GET\",route=\"/panic\",status=\"500\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("http_requests_total{method=\"GET\",route=\"/ok/{id}\",status=\"200\"} 1"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn requests_over_the_timeout_get_a_503_with_retry_after() {
    let (app, metrics, http) = router(Some(Duration::from_millis(50)));
    let (status, body, headers) = call(&app, "/slow").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "timeout");
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(http.in_flight.get(), 0);
    assert!(
        metrics
            .render_text()
            .contains("route=\"/slow\",status=\"503\"} 1")
    );
}

/// A body that sends `first` and then nothing more, ever.
fn stalled_body(first: &'static [u8]) -> Body {
    let chunks = futures_util::stream::once(async move {
        Ok::<_, std::io::Error>(bytes::Bytes::from_static(first))
    })
    .chain(futures_util::stream::pending());
    Body::from_stream(chunks)
}

#[tokio::test(start_paused = true)]
async fn a_body_still_coming_at_the_timeout_is_the_clients_408_not_a_503() {
    let (app, metrics, http) = router(Some(Duration::from_millis(50)));
    for declared in [Some("100"), None] {
        let mut req = Request::post("/upload");
        if let Some(n) = declared {
            req = req.header(http::header::CONTENT_LENGTH, n);
        }
        let resp = app
            .clone()
            .oneshot(req.body(stalled_body(b"half")).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT, "{declared:?}");
        assert_eq!(resp.headers()["connection"], "close");
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"]["code"], "request_timeout");
    }
    // A whole body answered slowly is still the service's 503 (here: none is slow).
    let resp = app
        .clone()
        .oneshot(
            Request::post("/upload")
                .header(http::header::CONTENT_LENGTH, "4")
                .body(Body::from("full"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(http.in_flight.get(), 0);
    let text = metrics.render_text();
    assert!(
        text.contains("route=\"/upload\",status=\"408\"} 2"),
        "{text}"
    );
    assert!(!text.contains("status=\"503\""), "{text}");
}

#[tokio::test]
async fn an_abandoned_request_is_recorded_as_499_and_leaves_in_flight_at_zero() {
    let (app, metrics, http) = router(None);
    let fut = app
        .clone()
        .oneshot(Request::get("/slow").body(Body::empty()).unwrap());
    // Let it start, then drop it as a disconnecting client would.
    let abandoned = tokio::time::timeout(Duration::from_millis(50), fut).await;
    assert!(abandoned.is_err(), "the slow handler cannot have finished");
    assert_eq!(http.in_flight.get(), 0);
    assert!(
        metrics
            .render_text()
            .contains("http_requests_total{method=\"GET\",route=\"/slow\",status=\"499\"} 1")
    );
}

/// A route that waits until `gate` opens, then (if `settle`) marks its outcome counted,
/// then waits once more, as a prediction writing its record does (or, if `hang`, for
/// good).
fn gated_route(
    settle: bool,
    hang: bool,
) -> (
    axum::routing::MethodRouter,
    tokio::sync::oneshot::Sender<()>,
) {
    let (open, gate) = tokio::sync::oneshot::channel::<()>();
    let gate = std::sync::Arc::new(std::sync::Mutex::new(Some(gate)));
    let route = get(move || {
        let gate = gate.lock().unwrap().take();
        async move {
            if let Some(gate) = gate {
                let _ = gate.await;
            }
            if settle {
                vigil_telemetry::context::settle();
            }
            tokio::task::yield_now().await;
            if hang {
                std::future::pending::<()>().await;
            }
            "counted"
        }
    });
    (route, open)
}

/// The answer is the outcome the handler counted, even when the timer ran out while the
/// handler waited: the request timeout answered 503 over a counted success (metrics and
/// record said success; from a probe). Polled by hand, so that the timer fires while the
/// handler is not polled and both are ready at its next poll; a handler that has not
/// settled is still cut off there, and one that hangs after settling is cut off a
/// second limit later.
#[tokio::test(start_paused = true)]
async fn a_settled_handler_is_answered_with_its_outcome_after_the_timer_ran_out() {
    use futures_util::FutureExt;
    let limit = Duration::from_millis(20);
    for (settle, hang, status) in [
        (true, false, StatusCode::OK),
        (false, false, StatusCode::SERVICE_UNAVAILABLE),
        (true, true, StatusCode::SERVICE_UNAVAILABLE),
    ] {
        let mut registry = Metrics::base_registry("test", "0");
        let layer = TelemetryLayer::new(
            TelemetryConfig {
                service: "test",
                slow_request: Duration::from_secs(1),
                request_timeout: Some(limit),
            },
            HttpMetrics::register(&mut registry),
        );
        let (route, open) = gated_route(settle, hang);
        let app = Router::new().route("/gated", route).layer(layer);
        let request = Request::get("/gated").body(Body::empty()).unwrap();
        let mut answer = std::pin::pin!(app.oneshot(request));
        // The handler now waits at the gate, and the timer is set.
        assert!(answer.as_mut().now_or_never().is_none());
        open.send(()).unwrap();
        // The timer runs out; the request is not polled meanwhile.
        tokio::time::sleep(2 * limit).await;
        assert_eq!(
            answer.await.unwrap().status(),
            status,
            "settled: {settle}, hangs: {hang}"
        );
    }
}
