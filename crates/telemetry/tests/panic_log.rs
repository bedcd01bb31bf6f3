//! A panic inside a request is logged as one JSON line carrying the request id (the
//! panic hook is process-wide, so this test has a process of its own).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use tower::ServiceExt;
use vigil_telemetry::{HttpMetrics, Metrics, TelemetryConfig, TelemetryLayer};

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn explode() -> &'static str {
    panic!("boom\r\n{{\"level\":\"forged\"}}")
}

#[tokio::test]
async fn panics_are_logged_as_json_with_the_request_id() {
    let sink = Sink::default();
    let guard = vigil_telemetry::logging::init_with_writer(
        &vigil_telemetry::LogConfig::default(),
        Box::new(sink.clone()),
    )
    .unwrap();
    let mut registry = Metrics::base_registry("test", "0");
    let http = HttpMetrics::register(&mut registry);
    let layer = TelemetryLayer::new(
        TelemetryConfig {
            service: "test",
            slow_request: std::time::Duration::from_secs(1),
            request_timeout: None,
        },
        http,
    );
    let app: Router = Router::new().route("/panic", get(explode)).layer(layer);
    let resp = app
        .oneshot(
            Request::get("/panic")
                .header("x-request-id", "req-panic-1")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    drop(guard); // flushes the queue
    let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect(l))
        .collect();
    let panic = lines
        .iter()
        .find(|l| l["message"] == "panic")
        .expect("a panic line");
    assert_eq!(panic["level"], "ERROR");
    assert_eq!(panic["request_id"], "req-panic-1");
    assert!(panic["panic"].as_str().unwrap().starts_with("boom\r\n"));
    assert!(panic["location"].as_str().unwrap().contains("panic_log.rs"));
    let access = lines
        .iter()
        .find(|l| l["message"] == "request_completed")
        .expect("an access line");
    assert_eq!(access["status"], 500);
    assert_eq!(access["request_id"], "req-panic-1");
    assert!(lines.iter().all(|l| l["level"] != "forged"));
}
