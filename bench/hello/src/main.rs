//! Bare axum: no logs, no metrics, no ids. `POST /predict` answers a fixed JSON body,
//! so the benchmark compares vigil against the cheapest server the same stack allows;
//! `POST /log` accepts and discards record batches (a collector sink).
//!
//!     vigil-bench-hello 127.0.0.1:9000

use std::pin::Pin;

use axum::Router;
use axum::body::HttpBody;
use axum::routing::{get, post};

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9000".into());
    let app = Router::new()
        .route("/", get(|| async { "hello" }))
        .route(
            "/predict",
            post(|| async { ([("content-type", "application/json")], r#"{"label":"ok"}"#) }),
        )
        // A collector that stores nothing: bench/forwarding*.sh use it to measure what
        // forwarding costs the inference process alone. It reads the whole body, frame
        // by frame, without gathering it (a stand-in for a collector on another host
        // should take as little of this machine as it can), and offers the binary
        // encoding as `vigil collector` does, so the forwarder sends what it would send
        // a real collector.
        .route(
            "/log",
            post(|body: axum::body::Body| async move {
                drain(body).await;
                (
                    axum::http::StatusCode::ACCEPTED,
                    [
                        ("content-type", "application/json"),
                        (
                            "accept-post",
                            "application/json, application/vnd.vigil.records",
                        ),
                    ],
                    r#"{"accepted":0,"duplicates":0}"#,
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    println!("listening on {}", listener.local_addr().expect("addr"));
    axum::serve(listener, app).await.expect("serve");
}

/// Reads a request body to its end and drops it.
async fn drain(mut body: axum::body::Body) {
    while let Some(Ok(_frame)) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
    {
    }
}
