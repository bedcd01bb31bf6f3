//! Every prediction reaches the collector exactly once: with the collector down (disk
//! spool, replayed on recovery), killed mid-stream (retries and idempotent ids), and
//! across a SIGTERM of `vigil up` right after the responses.

use std::time::Duration;

use serde_json::{Value, json};
use vigil_test_support::{Vigil, eventually, free_port, get_json, get_text, sample};

const GOOD: [f64; 6] = [70.0, 250.0, 2.5, 45.0, 1500.0, 12.0];

fn tempdir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("vigil-{tag}-{}", vigil_test_support::unique()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn predict(client: &reqwest::Client, base: &str, n: usize) {
    for _ in 0..n {
        let r = client
            .post(format!("{base}/predict"))
            .json(&json!({"features": GOOD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

/// Rows the collector holds for the default model.
async fn stored(client: &reqwest::Client, collector: &str) -> u64 {
    let stats: Value = get_json(client, format!("{collector}/stats?window=1d")).await;
    stats["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == "defect-detector")
        .map_or(0, |m| m["count"].as_u64().unwrap())
}

/// Waits (the readiness condition, not a fixed sleep) until the collector holds `n` rows.
async fn wait_stored(client: &reqwest::Client, collector: &str, n: u64) {
    let got = eventually(Duration::from_secs(60), async || {
        let got = stored(client, collector).await;
        if got >= n {
            Ok(got)
        } else {
            Err(format!("only {got} of {n} records arrived"))
        }
    })
    .await;
    assert_eq!(
        got, n,
        "more rows than predictions: something was stored twice"
    );
}

/// `vigil up` stores in batches of 10,000 (what a batch costs is per batch, and nothing
/// but memory limits one in process); over HTTP batches stay at 2,000, which suit a
/// collector's body limits. The start-up line says which.
#[test]
fn batches_are_larger_in_process_than_over_http() {
    let up = Vigil::start_command("up", &[], &[]);
    let line = up.wait_for_log("forwarding_predictions");
    assert_eq!(line["collector"], "in process", "{line}");
    assert_eq!(line["batch_size"], 10_000, "{line}");
    let _ = up.stop();
    // The collector's URL is logged without its credentials, whatever they hold (a
    // quote or a space ended the URL for the redaction of free text).
    let port = free_port();
    let url = format!("http://vigil:hunter2secret'x y@127.0.0.1:{port}");
    let serve = Vigil::start(&["--collector-url", &url], &[]);
    let line = serve.wait_for_log("forwarding_predictions");
    assert_eq!(line["batch_size"], 2_000, "{line}");
    assert_eq!(
        line["collector"],
        format!("http://[REDACTED]@127.0.0.1:{port}"),
        "{line}"
    );
    let (_, lines) = serve.stop();
    assert!(
        !lines
            .iter()
            .any(|l| l.to_string().contains("hunter2secret")),
        "a log line holds the password"
    );
}

#[tokio::test]
async fn records_spooled_while_the_collector_is_down_arrive_exactly_once() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let serve = Vigil::start(&["--collector-url", &url], &[]);
    let client = reqwest::Client::new();
    predict(&client, &format!("http://{}", serve.addr), 300).await;
    // All 300 end up on disk (none sent, none dropped).
    let m = eventually(Duration::from_secs(30), async || {
        let m = serve.metrics().await;
        if sample(&m, "prediction_log_spool_records") == 300.0 {
            Ok(m)
        } else {
            Err(format!("records were not spooled:\n{m}"))
        }
    })
    .await;
    assert_eq!(
        sample(&m, "prediction_log_records_total{outcome=\"dropped\"}"),
        0.0
    );
    let data = tempdir("collector-data");
    let collector = Vigil::start_command(
        "collector",
        &[
            "--port",
            &port.to_string(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[],
    );
    wait_stored(&client, &url, 300).await;
    // The collector commits before its answer reaches the forwarder, which only then
    // counts the batches sent and deletes their segments: wait for that.
    serve
        .wait_for_metric("prediction_log_spool_records", 0.0)
        .await;
    assert_outcomes(&serve.metrics().await, 300.0, 0.0);
    // Settled: nothing more arrives.
    assert_eq!(stored(&client, &url).await, 300);
    let _ = serve.stop();
    let _ = collector.stop();
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test]
async fn a_collector_killed_mid_stream_loses_and_duplicates_nothing() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let data = tempdir("collector-kill");
    let port_arg = port.to_string();
    let args = [
        "--port",
        port_arg.as_str(),
        "--data-dir",
        data.to_str().unwrap(),
    ];
    let collector = Vigil::start_command("collector", &args, &[]);
    let serve = Vigil::start(&["--collector-url", &url], &[]);
    let client = reqwest::Client::new();
    let base = format!("http://{}", serve.addr);
    // Traffic keeps flowing while the collector dies in the middle of it.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let traffic = tokio::spawn({
        let (client, base, done) = (client.clone(), base.clone(), done.clone());
        async move {
            for _ in 0..300 {
                predict(&client, &base, 1).await;
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    });
    while done.load(std::sync::atomic::Ordering::SeqCst) < 120 {
        tokio::task::yield_now().await;
    }
    collector.signal("KILL");
    traffic.await.unwrap();
    let _ = collector.stop();
    let collector = Vigil::start_command("collector", &args, &[]);
    wait_stored(&client, &url, 300).await;
    let _ = serve.stop();
    let _ = collector.stop();
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test]
async fn sigterm_right_after_the_responses_keeps_every_record() {
    let data = tempdir("up-sigterm");
    let up = Vigil::start_command("up", &["--data-dir", data.to_str().unwrap()], &[]);
    let client = reqwest::Client::new();
    predict(
        &client,
        &format!("http://{}", up.address_of("inference")),
        200,
    )
    .await;
    let (code, lines) = up.stop();
    assert_eq!(code, Some(0));
    assert!(lines.iter().any(|l| l["message"] == "shutdown_complete"));
    // Read the rows back through a fresh collector on the same data dir.
    let collector = Vigil::start_command("collector", &["--data-dir", data.to_str().unwrap()], &[]);
    let base = format!("http://{}", collector.address_of("collector"));
    assert_eq!(stored(&client, &base).await, 200);
    let _ = collector.stop();
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test]
async fn postgres_going_away_does_not_stop_predictions_and_loses_no_record() {
    let pg = vigil_store::testing::Postgres::start();
    let db = pg.database();
    let up = Vigil::start_command("up", &["--database-url", &db], &[]);
    let client = reqwest::Client::new();
    let inference = format!("http://{}", up.address_of("inference"));
    let collector = format!("http://{}", up.address_of("collector"));
    predict(&client, &inference, 50).await;
    wait_stored(&client, &collector, 50).await;

    pg.stop();
    // The inference service keeps answering while the database is away.
    predict(&client, &inference, 50).await;
    let health = client
        .get(format!("{collector}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    let m = get_text(format!("{collector}/metrics")).await;
    assert_eq!(sample(&m, "logging_db_initialized"), 0.0);
    // Their records wait in the spool, every one of them. That takes a while by
    // design: the first batch gets three tries (each waits out the pool's 5 s
    // acquire timeout, retrying the refused connection) and the first replay of the
    // parked batch another 5 s before the second batch is parked, ~21 s in all,
    // which a loaded machine stretches past the usual 30 s patience.
    vigil_test_support::wait_for_metric_within(
        &format!("{inference}/metrics"),
        "prediction_log_records_total{outcome=\"spooled\"}",
        50.0,
        Duration::from_secs(90),
    )
    .await;

    pg.restart();
    wait_stored(&client, &collector, 100).await;
    vigil_test_support::wait_for_metric_at(
        &format!("{inference}/metrics"),
        "prediction_log_spool_records",
        0.0,
    )
    .await;
    let m = get_text(format!("{inference}/metrics")).await;
    assert_eq!(
        sample(&m, "prediction_log_records_total{outcome=\"dropped\"}"),
        0.0
    );
    let (code, _) = up.stop();
    assert_eq!(code, Some(0));
}

/// Reads one HTTP/1.1 message (headers and a Content-Length body) from `stream`.
async fn read_message(stream: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            while buf.len() < end + 4 + len {
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some(buf);
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn a_lost_acknowledgement_is_retried_without_storing_twice() {
    use tokio::io::AsyncWriteExt;
    let data = tempdir("lost-ack");
    let collector = Vigil::start_command("collector", &["--data-dir", data.to_str().unwrap()], &[]);
    let upstream = collector.address_of("collector");
    // A proxy that delivers the first two record batches to the collector but hangs
    // up before the acknowledgement reaches the sender.
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = proxy.local_addr().unwrap();
    let lost = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let lost_in_proxy = lost.clone();
    tokio::spawn(async move {
        loop {
            let (mut client, _) = proxy.accept().await.unwrap();
            let lost = lost_in_proxy.clone();
            tokio::spawn(async move {
                while let Some(request) = read_message(&mut client).await {
                    let mut server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                    server.write_all(&request).await.unwrap();
                    let Some(response) = read_message(&mut server).await else {
                        return;
                    };
                    // Only record batches: the model cards announced at start also
                    // come this way.
                    if request.starts_with(b"POST /log")
                        && lost.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2
                    {
                        return; // stored upstream, acknowledgement lost
                    }
                    client.write_all(&response).await.unwrap();
                }
            });
        }
    });
    let serve = Vigil::start(&["--collector-url", &format!("http://{proxy_addr}")], &[]);
    let client = reqwest::Client::new();
    predict(&client, &format!("http://{}", serve.addr), 40).await;
    let base = format!("http://{upstream}");
    wait_stored(&client, &base, 40).await;
    // Settle: every record has been acknowledged once.
    let m = eventually(Duration::from_secs(30), async || {
        let m = serve.metrics().await;
        if sample(&m, "prediction_log_records_total{outcome=\"sent\"}") == 40.0 {
            Ok(m)
        } else {
            Err(m)
        }
    })
    .await;
    assert!(
        sample(&m, "prediction_log_records_total{outcome=\"retried\"}") > 0.0,
        "{m}"
    );
    let m = get_text(format!("{base}/metrics")).await;
    assert!(
        sample(&m, "logging_duplicate_records_total") > 0.0,
        "the retry re-sent stored records"
    );
    assert_eq!(stored(&client, &base).await, 40);
    let _ = serve.stop();
    let _ = collector.stop();
    let _ = std::fs::remove_dir_all(&data);
}

/// The `Content-Type` of an HTTP request, lowercased.
fn content_type(request: &[u8]) -> String {
    let end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    String::from_utf8_lossy(&request[..end])
        .to_ascii_lowercase()
        .lines()
        .find_map(|l| l.strip_prefix("content-type:"))
        .map_or_else(String::new, |v| v.trim().to_owned())
}

/// A response without its `Accept-Post` header: what a collector that has not (or
/// no longer has) the binary encoding answers.
fn without_accept_post(response: &[u8]) -> Vec<u8> {
    let end = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&response[..end]);
    let kept: Vec<&str> = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("accept-post:"))
        .collect();
    let mut out = kept.join("\r\n").into_bytes();
    out.extend_from_slice(&response[end..]);
    out
}

/// The forwarder's `sent` and `dropped` record counts.
fn assert_outcomes(metrics: &str, sent: f64, dropped: f64) {
    let outcome = |o: &str| {
        sample(
            metrics,
            &format!("prediction_log_records_total{{outcome=\"{o}\"}}"),
        )
    };
    assert_eq!(
        (outcome("sent"), outcome("dropped")),
        (sent, dropped),
        "{metrics}"
    );
}

/// What the test proxy does with a request.
enum Step {
    /// Answers it itself with this response.
    Answer(Vec<u8>),
    /// Passes it to the collector, and the answer back (without `Accept-Post`).
    Forward { hide_accept_post: bool },
}

fn answer(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A proxy in front of the collector at `upstream` that lets `step` decide the fate of
/// each batch (`POST /log`); anything else (the dashboard's `GET /incidents`) passes
/// through untouched. Returns its address.
async fn proxy(
    upstream: std::net::SocketAddr,
    step: impl Fn(&[u8]) -> Step + Send + Sync + 'static,
) -> std::net::SocketAddr {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let step = std::sync::Arc::new(step);
    tokio::spawn(async move {
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            let step = step.clone();
            tokio::spawn(async move {
                while let Some(request) = read_message(&mut client).await {
                    let decision = if request.starts_with(b"POST /log") {
                        step(&request)
                    } else {
                        Step::Forward {
                            hide_accept_post: false,
                        }
                    };
                    let response = match decision {
                        Step::Answer(response) => response,
                        Step::Forward { hide_accept_post } => {
                            let mut server =
                                tokio::net::TcpStream::connect(upstream).await.unwrap();
                            server.write_all(&request).await.unwrap();
                            let response = read_message(&mut server).await.unwrap();
                            if hide_accept_post {
                                without_accept_post(&response)
                            } else {
                                response
                            }
                        }
                    };
                    client.write_all(&response).await.unwrap();
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn batches_go_binary_once_the_collector_offers_it_and_back_to_json_when_it_stops() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    const BINARY: &str = "application/vnd.vigil.records";
    let data = tempdir("encodings");
    let collector = Vigil::start_command("collector", &["--data-dir", data.to_str().unwrap()], &[]);
    let upstream = collector.address_of("collector");
    // A proxy that notes each batch's encoding. Once `downgraded`, it plays a collector
    // without the binary encoding: 415 for a binary batch, no `Accept-Post`.
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let downgraded = Arc::new(AtomicBool::new(false));
    let (seen_in_proxy, downgraded_in_proxy) = (seen.clone(), downgraded.clone());
    let proxy_addr = proxy(upstream, move |request| {
        let kind = content_type(request);
        seen_in_proxy.lock().unwrap().push(kind.clone());
        match (downgraded_in_proxy.load(Ordering::SeqCst), kind == BINARY) {
            (true, true) => Step::Answer(answer(
                "415 Unsupported Media Type",
                r#"{"error":{"code":"unsupported_media_type","message":"JSON only"}}"#,
            )),
            (true, false) => Step::Forward {
                hide_accept_post: true,
            },
            (false, _) => Step::Forward {
                hide_accept_post: false,
            },
        }
    })
    .await;
    let serve = Vigil::start(&["--collector-url", &format!("http://{proxy_addr}")], &[]);
    let client = reqwest::Client::new();
    let base = format!("http://{}", serve.addr);
    let collector_base = format!("http://{upstream}");
    // The first batch goes as JSON; its 202 advertises the binary encoding.
    predict(&client, &base, 5).await;
    wait_stored(&client, &collector_base, 5).await;
    predict(&client, &base, 5).await;
    wait_stored(&client, &collector_base, 10).await;
    let before: Vec<String> = seen.lock().unwrap().clone();
    assert_eq!(before[0], "application/json", "{before:?}");
    assert_eq!(before.last().unwrap(), BINARY, "{before:?}");
    // The collector loses the encoding: the refused batch goes again as JSON, and the
    // following ones start as JSON.
    downgraded.store(true, Ordering::SeqCst);
    predict(&client, &base, 5).await;
    wait_stored(&client, &collector_base, 15).await;
    predict(&client, &base, 5).await;
    wait_stored(&client, &collector_base, 20).await;
    let after: Vec<String> = seen.lock().unwrap()[before.len()..].to_vec();
    assert_eq!(after[0], BINARY, "{after:?}");
    assert!(after.len() >= 3, "{after:?}");
    assert!(
        after[1..].iter().all(|k| k == "application/json"),
        "{after:?}"
    );
    // The rows are visible before the forwarder has read the collector's receipt.
    serve
        .wait_for_metric("prediction_log_records_total{outcome=\"sent\"}", 20.0)
        .await;
    assert_outcomes(&serve.metrics().await, 20.0, 0.0);
    let collector_metrics = get_text(format!("{collector_base}/metrics")).await;
    assert_eq!(
        sample(&collector_metrics, "logging_duplicate_records_total"),
        0.0
    );
    let _ = serve.stop();
    let _ = collector.stop();
    let _ = std::fs::remove_dir_all(&data);
}

/// A caller's `X-Request-ID` with a space in it is kept (docs/reference.md §2: printable ASCII), so
/// the collector must take it too: otherwise it would refuse the whole batch, and with
/// it every other caller's records.
#[tokio::test]
async fn a_request_id_with_spaces_does_not_cost_its_batch() {
    let data = tempdir("spaced-id");
    let up = Vigil::start_command("up", &["--data-dir", data.to_str().unwrap()], &[]);
    let client = reqwest::Client::new();
    let base = format!("http://{}", up.address_of("inference"));
    let collector = format!("http://{}", up.address_of("collector"));
    predict(&client, &base, 3).await;
    let r = client
        .post(format!("{base}/predict"))
        .header("x-request-id", "order 42 / line 7")
        .json(&json!({"features": GOOD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "order 42 / line 7");
    predict(&client, &base, 3).await;
    wait_stored(&client, &collector, 7).await;
    let page: Value = get_json(&client, format!("{collector}/predictions?limit=10")).await;
    assert!(
        page["predictions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["request_id"] == "order 42 / line 7"),
        "{page}"
    );
    let m = get_text(format!("{base}/metrics")).await;
    assert_eq!(
        sample(&m, "prediction_log_records_total{outcome=\"dropped\"}"),
        0.0
    );
    let _ = up.stop();
    let _ = std::fs::remove_dir_all(&data);
}

/// A collector that refuses some records of a batch (422 `invalid_records`, naming
/// them) costs only those: the forwarder resends the rest, and a spooled batch loses
/// only the named records on replay. Each refused record is counted as dropped.
#[tokio::test]
async fn records_the_collector_refuses_cost_only_themselves() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU8, Ordering};
    const PASS: u8 = 0;
    const DOWN: u8 = 1;
    const REFUSE_ONE: u8 = 2;
    let data = tempdir("refused");
    let collector = Vigil::start_command("collector", &["--data-dir", data.to_str().unwrap()], &[]);
    let upstream = collector.address_of("collector");
    let mode = Arc::new(AtomicU8::new(REFUSE_ONE));
    let mode_in_proxy = mode.clone();
    let proxy_addr = proxy(upstream, move |_| match mode_in_proxy.load(Ordering::SeqCst) {
        // What a proxy says when the collector is not behind it: no verdict on the
        // records, so they wait in the spool.
        DOWN => Step::Answer(answer("404 Not Found", "{}")),
        REFUSE_ONE => {
            mode_in_proxy.store(PASS, Ordering::SeqCst);
            Step::Answer(answer(
                "422 Unprocessable Entity",
                r#"{"error":{"code":"invalid_records","message":"1 invalid record(s); nothing was stored","details":{"errors":[{"index":1,"field":"confidence","reason":"must be between 0 and 1"}]}},"request_id":"r"}"#,
            ))
        }
        _ => Step::Forward {
            hide_accept_post: false,
        },
    })
    .await;
    let serve = Vigil::start(&["--collector-url", &format!("http://{proxy_addr}")], &[]);
    let client = reqwest::Client::new();
    let base = format!("http://{}", serve.addr);
    let collector_base = format!("http://{upstream}");
    // A sent batch: the named record goes, the other four are resent and stored.
    predict(&client, &base, 5).await;
    wait_stored(&client, &collector_base, 4).await;
    // A spooled batch: replayed once the collector answers, which refuses one record.
    mode.store(DOWN, Ordering::SeqCst);
    predict(&client, &base, 5).await;
    serve
        .wait_for_metric("prediction_log_records_total{outcome=\"spooled\"}", 5.0)
        .await;
    mode.store(REFUSE_ONE, Ordering::SeqCst);
    wait_stored(&client, &collector_base, 8).await;
    serve
        .wait_for_metric("prediction_log_spool_records", 0.0)
        .await;
    assert_outcomes(&serve.metrics().await, 8.0, 2.0);
    assert_eq!(stored(&client, &collector_base).await, 8);
    let _ = serve.stop();
    let _ = collector.stop();
    let _ = std::fs::remove_dir_all(&data);
}

/// Only the collector's receipt (202 counting every record) means stored: a misrouted
/// URL's catch-all 200, a 204, or a 202 from something else leaves the batch to be
/// retried. Before, any 2xx counted the batch as sent while nothing was stored.
#[tokio::test]
async fn an_answer_that_is_not_the_collectors_receipt_stores_nothing_and_is_retried() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let data = tempdir("not-a-receipt");
    let collector = Vigil::start_command("collector", &["--data-dir", data.to_str().unwrap()], &[]);
    let upstream = collector.address_of("collector");
    // None of these can pass for the receipt of a batch, whatever its size (a 202
    // counting one record would: it is the receipt of a batch of one).
    let fakes = [
        answer("200 OK", "<html>hello</html>"),
        answer("204 No Content", ""),
        answer("202 Accepted", r#"{"accepted": 0, "duplicates": 0}"#),
        answer("202 Accepted", r#"{"status": "queued"}"#),
    ];
    let met = Arc::new(AtomicUsize::new(0));
    let met_in_proxy = met.clone();
    let proxy_addr = proxy(upstream, move |_| {
        match fakes.get(met_in_proxy.fetch_add(1, Ordering::SeqCst)) {
            Some(fake) => Step::Answer(fake.clone()),
            None => Step::Forward {
                hide_accept_post: false,
            },
        }
    })
    .await;
    let serve = Vigil::start(&["--collector-url", &format!("http://{proxy_addr}")], &[]);
    let client = reqwest::Client::new();
    let collector_base = format!("http://{upstream}");
    predict(&client, &format!("http://{}", serve.addr), 5).await;
    wait_stored(&client, &collector_base, 5).await;
    serve
        .wait_for_metric("prediction_log_records_total{outcome=\"sent\"}", 5.0)
        .await;
    assert!(met.load(Ordering::SeqCst) > 4, "the fakes were all met");
    let m = serve.metrics().await;
    assert_outcomes(&m, 5.0, 0.0);
    assert!(
        sample(&m, "prediction_log_records_total{outcome=\"retried\"}") > 0.0,
        "{m}"
    );
    assert_eq!(stored(&client, &collector_base).await, 5);
    let _ = serve.stop();
    let _ = collector.stop();
    let _ = std::fs::remove_dir_all(&data);
}

/// Every prediction id `vigil up` (or a collector) at `collector` has stored.
async fn stored_ids(client: &reqwest::Client, collector: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{collector}/predictions?limit=1000");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = get_json(client, url).await;
        for p in page["predictions"].as_array().unwrap() {
            ids.push(p["prediction_id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
}

/// SIGKILL gives the process no chance to flush: a record is safe only if it was on
/// disk before its prediction was answered. After a restart on the same data dir,
/// every answered prediction is stored, once.
#[tokio::test]
async fn every_prediction_answered_before_a_sigkill_is_stored_exactly_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let data = tempdir("up-sigkill");
    let args = ["--data-dir", data.to_str().unwrap()];
    let up = Vigil::start_command("up", &args, &[]);
    let inference = format!("http://{}", up.address_of("inference"));
    let answered = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (inference, answered, count) = (inference.clone(), answered.clone(), count.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                // Until the process dies under us.
                while let Ok(r) = client
                    .post(format!("{inference}/predict"))
                    .json(&json!({"features": GOOD}))
                    .send()
                    .await
                {
                    let Ok(body) = r.json::<Value>().await else {
                        break;
                    };
                    answered
                        .lock()
                        .unwrap()
                        .push(body["prediction_id"].as_str().unwrap().to_owned());
                    count.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    while count.load(Ordering::SeqCst) < 3000 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    up.signal("KILL");
    for c in clients {
        c.await.unwrap();
    }
    let _ = up.stop();
    let answered = std::mem::take(&mut *answered.lock().unwrap());
    assert!(answered.len() >= 3000);

    let up = Vigil::start_command("up", &args, &[]);
    let client = reqwest::Client::new();
    let inference_metrics = format!("http://{}/metrics", up.address_of("inference"));
    vigil_test_support::wait_for_metric_at(&inference_metrics, "prediction_log_spool_records", 0.0)
        .await;
    let collector = format!("http://{}", up.address_of("collector"));
    let stored = stored_ids(&client, &collector).await;
    let unique: std::collections::HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "a record was stored twice");
    let missing: Vec<&String> = answered.iter().filter(|id| !unique.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered predictions were not stored, e.g. {:?}",
        missing.len(),
        answered.len(),
        &missing[..missing.len().min(3)]
    );
    let m = get_text(&inference_metrics).await;
    assert_eq!(
        sample(&m, "prediction_log_records_total{outcome=\"dropped\"}"),
        0.0
    );
    let (code, _) = up.stop();
    assert_eq!(code, Some(0));
    let _ = std::fs::remove_dir_all(&data);
}
