//! The real `vigil` binary against clients that hold connections hostage: requests
//! whose head never finishes are closed at the header timeout and counted in
//! `/metrics`, while `/predict` keeps answering everyone else; a body that stops
//! coming is the client's 408 at the request timeout.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vigil_test_support::{Vigil, sample};

const GOOD: [f64; 6] = [70.0, 250.0, 2.5, 45.0, 1500.0, 12.0];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_are_closed_at_the_header_timeout_while_predict_answers() {
    const HELD: usize = 200;
    let header_timeout = Duration::from_millis(300);
    let vigil = Vigil::start(&["--header-timeout-ms", "300"], &[]);
    assert_eq!(vigil.wait_for_log("starting")["header_timeout_ms"], 300);
    let addr = vigil.addr;

    // A client predicting on keep-alive connections for as long as the heads are held.
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let url = vigil.url("/predict");
    let predicting = tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut answered = 0;
        while stopped.try_recv().is_err() {
            let r = client
                .post(&url)
                .json(&json!({"features": GOOD}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            answered += 1;
        }
        answered
    });

    let mut held = Vec::with_capacity(HELD);
    for _ in 0..HELD {
        // Taken before connecting: the server may start timing before `connect`
        // returns here.
        let opened = Instant::now();
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
            .await
            .unwrap();
        held.push(tokio::spawn(async move {
            let mut byte = [0u8; 1];
            match tokio::time::timeout(Duration::from_secs(30), s.read(&mut byte)).await {
                // EOF or a reset: closed by the server, with nothing sent first.
                Ok(Ok(0)) | Ok(Err(_)) => opened.elapsed(),
                Ok(Ok(_)) => panic!("the server answered a request whose head never ended"),
                Err(_) => panic!("a half-sent request was still open after 30 s"),
            }
        }));
    }
    for h in held {
        let lasted = h.await.unwrap();
        assert!(lasted >= header_timeout, "closed after {lasted:?}");
    }
    let _ = stop.send(());
    assert!(predicting.await.unwrap() > 0);

    vigil
        .wait_for_metric(
            "http_connections_closed_total{reason=\"header_timeout\"}",
            HELD as f64,
        )
        .await;
    // Only the scrape's own connection is left open once the predicting client's
    // pooled connections have been closed (by the client dropping them).
    vigil.wait_for_metric("http_connections_open", 1.0).await;
    let text = vigil.metrics().await;
    assert_eq!(
        sample(&text, "http_connections_closed_total{reason=\"limit\"}"),
        0.0
    );
    let (code, _) = vigil.stop();
    assert_eq!(code, Some(0));
}

/// A body that stops coming before the request timeout is the client's slowness: a
/// 408 in the error shape with the request id, the connection closed, and no 5xx or
/// ERROR line; a whole body is answered as usual meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_unfinished_at_the_request_timeout_is_a_408_not_a_503() {
    let vigil = Vigil::start(&["--request-timeout-ms", "300"], &[]);
    let mut s = TcpStream::connect(vigil.addr).await.unwrap();
    s.write_all(
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"features\": [70,",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection after its answer")
        .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"]["code"], "request_timeout", "{body}");
    let id = body["request_id"].as_str().unwrap();
    assert!(head.contains(id), "{head}");

    vigil.assert_predicts().await;
    let text = vigil.metrics().await;
    assert_eq!(
        sample(
            &text,
            "http_requests_total{method=\"POST\",route=\"/predict\",status=\"408\"}"
        ),
        1.0
    );
    assert!(!text.contains("status=\"503\""), "{text}");
    let (code, logs) = vigil.stop();
    assert_eq!(code, Some(0));
    let errors: Vec<_> = logs.iter().filter(|l| l["level"] == "ERROR").collect();
    assert!(errors.is_empty(), "{errors:?}");
    let line = logs
        .iter()
        .find(|l| l["request_id"] == id && l["message"] == "request_completed")
        .expect("an access line for the 408");
    assert_eq!(line["status"], 408, "{line}");
}

/// `--http-threads` reaches the inference service's listener: that many connection
/// threads, named for it, and requests are answered on them.
#[tokio::test]
async fn http_threads_sets_how_many_connection_threads_serve_the_inference_service() {
    let vigil = Vigil::start(&["--http-threads", "3"], &[]);
    assert_eq!(vigil.wait_for_log("starting")["http_threads"], 3);
    let r = reqwest::get(vigil.url("/health/live")).await.unwrap();
    assert_eq!(r.status(), 200);
    let mut threads: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", vigil.pid()))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| {
            name.strip_prefix("vigil-http-")
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    threads.sort();
    assert_eq!(threads, ["vigil-http-0", "vigil-http-1", "vigil-http-2"]);
}
