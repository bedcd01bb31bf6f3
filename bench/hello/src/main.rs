//! Bare axum: no logs, no metrics, no ids. `POST /predict` answers a fixed JSON body,
//! so the benchmark compares vigil against the cheapest server the same stack allows;
//! `POST /log` accepts and discards record batches (a collector sink).
//!
//!     vigil-bench-hello 127.0.0.1:9000

use axum::Router;
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
        // A collector that stores nothing: bench/forwarding.sh uses it to measure what
        // forwarding costs the inference process alone.
        .route(
            "/log",
            post(|_body: axum::body::Bytes| async {
                (
                    axum::http::StatusCode::ACCEPTED,
                    [("content-type", "application/json")],
                    r#"{"accepted":0,"duplicates":0}"#,
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    println!("listening on {}", listener.local_addr().expect("addr"));
    axum::serve(listener, app).await.expect("serve");
}
