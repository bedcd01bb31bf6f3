//! The real `vigil` binary on port 0: start-up and shutdown, logs as the contract names
//! them, secrets and hostile text, config errors, metrics under load, and a live
//! `/metrics` checked by `promtool`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};
use vigil_test_support::{
    Vigil, eventually, get_json, get_text, histogram_invariants, post_json, sample,
};

const GOOD: [f64; 6] = [70.0, 250.0, 2.5, 45.0, 1500.0, 12.0];

#[tokio::test]
async fn starts_on_port_zero_logs_startup_and_exits_zero_on_sigterm() {
    let vigil = Vigil::start(&[], &[]);
    let addr = vigil.addr;
    vigil.assert_predicts().await;
    let (code, lines) = vigil.stop();
    assert_eq!(code, Some(0));
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    let starting = lines.iter().find(|l| l["message"] == "starting").unwrap();
    assert_eq!(starting["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(starting["body_limit_bytes"], 1_048_576);
    let loaded: Vec<_> = lines
        .iter()
        .filter(|l| l["message"] == "model_loaded")
        .collect();
    assert_eq!(loaded.len(), 2);
    assert!(
        loaded
            .iter()
            .all(|l| l["load_ms"].as_f64().is_some() && l["version"] == "1.0.0")
    );
    let listening = lines.iter().find(|l| l["message"] == "listening").unwrap();
    assert_eq!(listening["address"], addr.to_string());
    assert_eq!(listening["service"], "inference");
    let stop = lines
        .iter()
        .find(|l| l["message"] == "shutdown_started")
        .unwrap();
    assert_eq!(stop["reason"], "SIGTERM");
    assert!(messages.contains(&"shutdown_complete"));
    for l in &lines {
        for key in ["timestamp", "level", "target", "message", "service"] {
            assert!(l.get(key).is_some(), "{key} missing in {l}");
        }
    }
}

#[tokio::test]
async fn one_access_line_per_request_carrying_its_ids() {
    let vigil = Vigil::start(&["--slow-request-ms", "0"], &[]);
    let client = reqwest::Client::new();
    for i in 0..5 {
        let r = client
            .post(vigil.url("/predict"))
            .header("x-request-id", format!("req-{i}"))
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .json(&json!({"features": GOOD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["x-request-id"], format!("req-{i}").as_str());
    }
    let r = client
        .post(vigil.url("/predict"))
        .header("x-request-id", "bad-1")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let (_, lines) = vigil.stop();
    for i in 0..5 {
        let id = format!("req-{i}");
        let access: Vec<_> = lines
            .iter()
            .filter(|l| l["message"] == "request_completed" && l["request_id"] == id.as_str())
            .collect();
        assert_eq!(access.len(), 1, "{id}");
        let a = access[0];
        assert_eq!(a["level"], "INFO");
        assert_eq!(a["service"], "inference");
        assert_eq!(a["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(a["method"], "POST");
        assert_eq!(a["path"], "/predict");
        assert_eq!(a["route"], "/predict");
        assert_eq!(a["status"], 200);
        assert_eq!(a["client_ip"], "127.0.0.1");
        assert_eq!(a["user"], "anonymous");
        assert!(a["duration_ms"].as_f64().is_some());
        assert!(a["request_bytes"].as_u64().unwrap() > 0);
        assert!(a["response_bytes"].as_u64().unwrap() > 0);
        let slow = lines
            .iter()
            .filter(|l| l["message"] == "slow_request" && l["request_id"] == id.as_str())
            .count();
        assert_eq!(slow, 1, "threshold 0 makes every request slow");
    }
    let bad = lines
        .iter()
        .find(|l| l["message"] == "request_completed" && l["request_id"] == "bad-1")
        .unwrap();
    assert_eq!(bad["status"], 415);
    assert_eq!(bad["error_code"], "unsupported_media_type");
}

#[tokio::test]
async fn secrets_never_reach_a_log_line() {
    let vigil = Vigil::start(&["--log-payloads", "true"], &[]);
    let client = reqwest::Client::new();
    let canaries = [
        "CANARY-AUTH-7f3a",
        "CANARY-COOKIE-91bd",
        "CANARY-APIKEY-c0de",
        "CANARY-QUERY-5e5e",
        "CANARY-BODY-beef",
        "CANARY-SIGNIN-a11",
        "CANARY-SIGNIN-b22",
        "CANARY-SIGNIN-c33",
        "CANARY-SIGNIN-d44",
    ];
    let r = client
        .post(vigil.url(&format!("/predict?token={}&x=1", canaries[3])))
        .header("authorization", format!("Bearer {}", canaries[0]))
        .header("cookie", format!("session={}", canaries[1]))
        .header("x-api-key", canaries[2])
        .json(&json!({"features": GOOD, "password": canaries[4]}))
        .send()
        .await
        .unwrap();
    // The extra field is refused, but the body was logged (redacted) first.
    assert_eq!(r.status(), 422);
    // A sign-in's body is never a payload line, whatever shape the key comes in (an
    // array's is refused as the wrong shape, not taken field by field).
    for (body, status) in [
        (json!({ "api_key": canaries[5] }), 401),
        (json!([canaries[6]]), 422),
        (json!(canaries[7]), 422),
        (json!({ "key": canaries[8] }), 422),
    ] {
        let r = client
            .post(vigil.url("/dashboard/session"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{body}");
    }
    // A body of ~150 KB is logged cut at 64 KiB, and says so.
    let big: Vec<f64> = (0..20_000).map(|i| f64::from(i) + 0.5).collect();
    let r = client
        .post(vigil.url("/predict"))
        .header("x-request-id", "big-body")
        .json(&json!({ "features": big }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = client
        .get(vigil.url(&format!("/nope?api_key={}", canaries[3])))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let all = vigil.stdout_after_stop();
    let lines: Vec<Value> = all
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for c in canaries {
        assert!(!all.contains(c), "{c} leaked:\n{all}");
    }
    let payload = lines
        .iter()
        .find(|l| l["message"] == "request_payload")
        .expect("payload logged");
    assert!(payload["payload"].as_str().unwrap().contains("[REDACTED]"));
    assert_eq!(payload.get("payload_truncated"), None);
    let big = lines
        .iter()
        .find(|l| l["message"] == "request_payload" && l["request_id"] == "big-body")
        .expect("the big payload logged");
    assert_eq!(big["payload_truncated"], true);
    assert!(
        big["payload_bytes"].as_u64().unwrap() > 100_000,
        "{}",
        big["payload_bytes"]
    );
    let cut = big["payload"].as_str().unwrap();
    assert!(
        cut.len() <= 64 * 1024 && cut.len() > 60_000,
        "{}",
        cut.len()
    );
    assert!(cut.starts_with("{\"features\":[0.5,1.5,"), "{}", &cut[..40]);
    let access = lines
        .iter()
        .find(|l| l["message"] == "request_completed" && l["path"] == "/predict")
        .unwrap();
    assert_eq!(access["query"], "token=[REDACTED]&x=1");
}

/// Raw bytes on a socket: what a hostile client can put on the wire.
fn raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn hostile_text_cannot_forge_or_break_log_lines() {
    let vigil = Vigil::start(&[], &[]);
    let addr = vigil.addr;
    let attacks: Vec<Vec<u8>> = vec![
        b"GET /a%0d%0a%7B%22level%22:%22ERROR%22%7D%1b[31m HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET /ok HTTP/1.1\r\nHost: x\r\nX-Request-ID: id\x1b[2J\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET /ok HTTP/1.1\r\nHost: x\r\nX-Request-ID: a\rb\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET /\xc3\xa9\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET /ok?q=\"}\n{\"forged\":1} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        b"BREW /predict\"\x1b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        {
            let body = br#"{"features": "\u001b\n"}"#;
            let mut req = format!(
                "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Request-ID: \"quoted\\\"id\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            req.extend_from_slice(body);
            req
        },
        // A path and a query of 20 KB each: the access line keeps 1,024 bytes of each.
        format!(
            "GET /long-{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            format_args!("{}?q={}", "p".repeat(20_000), "v".repeat(20_000))
        )
        .into_bytes(),
    ];
    for a in &attacks {
        let reply = raw(addr, a);
        assert!(
            reply.starts_with("HTTP/1.1 4"),
            "4xx expected for {:?}: {reply}",
            String::from_utf8_lossy(a)
        );
    }
    vigil.assert_predicts().await;
    let (code, lines) = vigil.stop();
    assert_eq!(code, Some(0));
    // Every stdout line parsed as one JSON object (Vigil::stop asserts it); none forged.
    assert!(
        lines
            .iter()
            .all(|l| l.get("forged").is_none() && l["level"] != "forged")
    );
    let forged_errors = lines.iter().filter(|l| l["level"] == "ERROR").count();
    assert_eq!(forged_errors, 0, "no request here is an error");
    let quoted = lines
        .iter()
        .find(|l| l["request_id"] == "\"quoted\\\"id")
        .expect("printable ids are kept verbatim");
    assert_eq!(quoted["status"], 422);
    let long = lines
        .iter()
        .find(|l| l["path"].as_str().is_some_and(|p| p.starts_with("/long-")))
        .expect("the long request's access line");
    assert_eq!(long["path"].as_str().unwrap().len(), 1024);
    assert_eq!(long["query"].as_str().unwrap().len(), 1024);
    assert_eq!(long["status"], 404);
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests() {
    let vigil = Vigil::start(&[], &[]);
    let body = json!({"features": GOOD}).to_string();
    let head = format!(
        "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut s = TcpStream::connect(vigil.addr).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body.as_bytes()[..5]).unwrap();
    // Readiness: the request is being served when the gauge counts it (plus the scrape).
    vigil.wait_for_metric("http_requests_in_flight", 2.0).await;
    vigil.signal("TERM");
    vigil.wait_for_log("shutdown_started");
    s.write_all(&body.as_bytes()[5..]).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("\"label\":\"ok\""), "{reply}");
    let (code, lines) = vigil.stop();
    assert_eq!(code, Some(0));
    let started = lines
        .iter()
        .find(|l| l["message"] == "shutdown_started")
        .unwrap();
    assert_eq!(started["in_flight"], 1);
    let done = lines
        .iter()
        .find(|l| l["message"] == "shutdown_complete")
        .unwrap();
    assert_eq!(done["drained_requests"], 1);
}

#[tokio::test]
async fn clients_that_vanish_leave_the_in_flight_gauge_at_its_floor() {
    let vigil = Vigil::start(&[], &[]);
    for _ in 0..10 {
        let mut s = TcpStream::connect(vigil.addr).unwrap();
        s.write_all(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"feat").unwrap();
        drop(s);
    }
    // Readiness: all ten requests have been seen through to their end (the body read
    // fails when the client goes away, or the request is dropped as 499).
    let text = eventually(Duration::from_secs(30), async || {
        let text = vigil.metrics().await;
        let finished: f64 = text
            .lines()
            .filter(|l| l.starts_with("http_requests_total{method=\"POST\",route=\"/predict\""))
            .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
            .sum();
        if finished >= 10.0 {
            Ok(text)
        } else {
            Err(format!("requests never finished:\n{text}"))
        }
    })
    .await;
    // The scrape itself is the one request left in flight.
    assert_eq!(sample(&text, "http_requests_in_flight"), 1.0);
    assert!(!text.contains("route=\"/predict\",status=\"5"), "{text}");
    let _ = vigil.stop();
}

#[tokio::test]
async fn histograms_stay_consistent_under_200_concurrent_predictions() {
    let vigil = Vigil::start(&[], &[]);
    let client = reqwest::Client::new();
    let url = vigil.url("/predict");
    let predictions: Vec<_> = (0..200)
        .map(|i| {
            let client = client.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let body = if i % 10 == 0 {
                    json!({"features": [1, 2]})
                } else {
                    json!({"features": GOOD})
                };
                client
                    .post(url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut scrapes = 0;
    while !predictions.iter().all(|p| p.is_finished()) || scrapes < 3 {
        histogram_invariants(&vigil.metrics().await);
        scrapes += 1;
    }
    let mut statuses = Vec::new();
    for p in predictions {
        statuses.push(p.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 180);
    assert_eq!(statuses.iter().filter(|s| **s == 422).count(), 20);
    let text = vigil.metrics().await;
    histogram_invariants(&text);
    assert_eq!(
        sample(
            &text,
            "http_requests_total{method=\"POST\",route=\"/predict\",status=\"200\"}"
        ),
        180.0
    );
    assert_eq!(
        sample(
            &text,
            "predictions_total{model=\"defect-detector\",version=\"1.0.0\",status=\"success\"}"
        ),
        180.0
    );
    assert_eq!(
        sample(
            &text,
            "prediction_confidence_count{model=\"defect-detector\"}"
        ),
        180.0
    );
    let _ = vigil.stop();
}

#[tokio::test]
async fn promtool_finds_nothing_wrong_with_a_live_scrape() {
    let vigil = Vigil::start(&[], &[]);
    let client = reqwest::Client::new();
    client
        .post(vigil.url("/predict"))
        .json(&json!({"features": GOOD}))
        .send()
        .await
        .unwrap();
    client
        .post(vigil.url("/predict"))
        .json(&json!({"features": [1]}))
        .send()
        .await
        .unwrap();
    client.get(vigil.url("/nowhere")).send().await.unwrap();
    let text = vigil.metrics().await;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool must be installed (scripts/test installs Debian's prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool: {report}"
    );
    let _ = vigil.stop();
}

#[tokio::test]
async fn config_file_and_environment_apply_in_order() {
    let dir = tempdir();
    let file = dir.path().join("vigil.toml");
    std::fs::write(
        &file,
        "max_batch_size = 2\nlog_level = \"info\"\nport = 1\n",
    )
    .unwrap();
    // The file says port 1 and info; the environment overrides both.
    let vigil = Vigil::start(
        &["--config", file.to_str().unwrap()],
        &[("VIGIL_PORT", "0"), ("VIGIL_LOG_LEVEL", "warn")],
    );
    let client = reqwest::Client::new();
    let r = client
        .post(vigil.url("/predict"))
        .json(&json!({"instances": [GOOD, GOOD, GOOD]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "batch_too_large");
    let (_, lines) = vigil.stop();
    // At warn, the access lines are filtered out (the listening line is found anyway).
    assert!(!lines.iter().any(|l| l["message"] == "request_completed"));
}

#[test]
fn bad_configuration_exits_64_before_binding() {
    let dir = tempdir();
    let unknown = dir.path().join("bad.toml");
    std::fs::write(&unknown, "prot = 8000\n").unwrap();
    // toml's own message quotes the line: here a database URL with its password.
    let secret = dir.path().join("secret.toml");
    std::fs::write(
        &secret,
        "port = 1\ndatabase_url = [\"postgres://u:hunter2secret@127.0.0.1:1/db\"]\n",
    )
    .unwrap();
    let unclosed = dir.path().join("unclosed.toml");
    std::fs::write(
        &unclosed,
        "database_url = \"postgres://u:hunter2secret@127.0.0.1:1/db\n",
    )
    .unwrap();
    for (args, why) in [
        (
            vec!["serve", "--config", secret.to_str().unwrap()],
            "line 2",
        ),
        (
            vec!["serve", "--config", unclosed.to_str().unwrap()],
            "line 1",
        ),
        // URLs that do not parse are refused before binding, without their password.
        (
            vec!["serve", "--collector-url", "http://u:hunter2secret@"],
            "collector_url is not a usable URL",
        ),
        (
            vec![
                "collector",
                "--database-url",
                "postgres://u:hunter2secret@127.0.0.1:99999/db",
            ],
            "database_url is not a usable URL",
        ),
        // Records would go to `…?token=x/log`; the token is not echoed.
        (
            vec![
                "serve",
                "--collector-url",
                "http://127.0.0.1:1/base?token=hunter2secret",
            ],
            "collector_url must not hold a query",
        ),
        (vec!["serve", "--log-level", ""], "log level"),
        // A URL that parses with options PostgreSQL's client does not know.
        (
            vec![
                "collector",
                "--database-url",
                "postgres://u:hunter2secret@127.0.0.1:1/db?sslmode=bogus",
            ],
            "database_url: invalid database url",
        ),
        (vec!["serve", "--body-limit-bytes", "0"], "body_limit_bytes"),
        (vec!["serve", "--config", unknown.to_str().unwrap()], "prot"),
        (
            vec!["serve", "--models-dir", "/no/such/models"],
            "models_dir",
        ),
        (vec!["serve", "--host", "not-an-ip"], "host"),
        (vec!["serve", "--log-level", "info,[[["], "log level"),
        (vec!["serve", "--port", "70000"], "70000"),
        (
            vec!["collector", "--quality-window-s", "0"],
            "quality_window_s",
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(if why == "70000" { 2 } else { 64 }),
            "{args:?}"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(why), "{args:?}: {stderr}");
        assert!(!stderr.contains("hunter2secret"), "{args:?}: {stderr}");
        if why != "70000" {
            // (clap's own refusals, exit 2, end with a hint line.)
            assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        }
        assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
    }
    // `--help` shows which variables are set, never their values: the URLs may carry
    // passwords.
    for command in ["serve", "collector"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args([command, "--help"])
            .env("VIGIL_DATABASE_URL", "postgres://u:hunter2secret@db/vigil")
            .env("VIGIL_COLLECTOR_URL", "http://u:hunter2secret@c:8001")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("VIGIL_DATABASE_URL"), "{help}");
        assert!(!help.contains("hunter2secret"), "{help}");
    }
    // `vigil keys` reads the same file: the same refusal and exit code.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["keys", "--config", secret.to_str().unwrap(), "list"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(!stderr.contains("hunter2secret"), "{stderr}");
}

#[test]
fn a_busy_port_is_a_clear_startup_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["serve", "--host", "127.0.0.1", "--port", &port])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot listen"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A default model that is not in `--models-dir` names the setting, not a model card
/// (the bundled models say so in their own words).
#[test]
fn an_unknown_default_model_names_the_setting() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args([
            "serve",
            "--port",
            "0",
            "--default-model",
            "nope",
            "--models-dir",
        ])
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("default_model \"nope\" is not among the models loaded"),
        "{stderr}"
    );
    assert!(!stderr.contains("model card"), "{stderr}");
}

/// A database that cannot be opened says why, each cause once: a data directory that is
/// a file is not an "invalid database url", and a refused PostgreSQL connection is not
/// a pool timeout five seconds later.
#[test]
fn an_unusable_database_says_why_once() {
    let dir = tempdir();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let refused = format!("postgres://vigil:s3cret-pw@127.0.0.1:{port}/vigil");
    let cases: [(&[&str], &str); 2] = [
        (
            &["--data-dir", file.to_str().unwrap()],
            "cannot create the data directory",
        ),
        (&["--database-url", &refused], "Connection refused"),
    ];
    for (args, why) in cases {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["collector", "--host", "127.0.0.1", "--port", "0"])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or_default();
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            last.starts_with("vigil: cannot open the prediction database: ") && last.contains(why),
            "{args:?}: {last}"
        );
        assert!(
            !last.contains("invalid database url") && !last.contains("pool timed out"),
            "{last}"
        );
        assert!(!stderr.contains("s3cret-pw"), "{stderr}");
        // Each cause once: no part of the line between ": " repeats.
        let parts: Vec<&str> = last.split(": ").collect();
        for (i, p) in parts.iter().enumerate() {
            assert!(!parts[i + 1..].contains(p), "{p:?} repeats in {last}");
        }
    }
}
/// A directory of the test's own, removed when the test ends (pass or fail).
fn tempdir() -> vigil_test_support::TempDir {
    vigil_test_support::TempDir::new("test")
}

#[tokio::test]
async fn up_runs_inference_and_collector_in_one_process() {
    let vigil = Vigil::start_command("up", &[], &[]);
    let inference = vigil.address_of("inference");
    let collector = vigil.address_of("collector");
    assert_ne!(inference, collector);
    let client = reqwest::Client::new();
    let r = client
        .post(format!("http://{inference}/predict"))
        .json(&json!({"features": GOOD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let health: Value = get_json(&client, format!("http://{collector}/health")).await;
    assert_eq!(health["checks"]["database"]["backend"], "sqlite");
    let record = json!({
        "prediction_id": "up-1", "model": "defect-detector", "model_version": "1.0.0",
        "timestamp": "2026-11-22T21:00:00Z", "latency_ms": 1.0, "request_id": "r-1", "status": "success"
    });
    let r = client
        .post(format!("http://{collector}/log"))
        .json(&record)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let metrics = get_text(format!("http://{collector}/metrics")).await;
    assert!(
        metrics.contains("service_info{service=\"collector\""),
        "{metrics}"
    );
    // The record posted here and the one forwarded for the prediction above (within
    // the forwarder's 200 ms flush): two rows, whichever landed first.
    vigil_test_support::wait_for_metric_at(
        &format!("http://{collector}/metrics"),
        "logging_predictions_total{model=\"defect-detector\"}",
        2.0,
    )
    .await;
    assert!(
        vigil.data_dir().join("vigil.db").exists(),
        "SQLite lives under the data dir"
    );
    let (code, lines) = vigil.stop();
    assert_eq!(code, Some(0));
    assert_eq!(
        lines.iter().filter(|l| l["message"] == "listening").count(),
        2
    );
}

#[tokio::test]
async fn the_collector_runs_alone_and_keeps_its_data_across_restarts() {
    let dir = tempdir();
    let data = ["--data-dir", dir.path().to_str().unwrap()];
    let record = json!({
        "prediction_id": "keep-1", "model": "digits", "model_version": "1.0.0",
        "timestamp": "2026-11-22T21:00:00Z", "latency_ms": 1.0, "request_id": "r-1", "status": "error",
        "error_type": "non_finite_output"
    });
    let client = reqwest::Client::new();
    let first = Vigil::start_command("collector", &data, &[]);
    let url = format!("http://{}/log", first.address_of("collector"));
    assert_eq!(
        client
            .post(&url)
            .json(&record)
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    assert_eq!(first.stop().0, Some(0));
    let second = Vigil::start_command("collector", &data, &[]);
    let base = format!("http://{}", second.address_of("collector"));
    let again = post_json(&client, format!("{base}/log"), &record).await;
    assert_eq!(again, json!({"accepted": 0, "duplicates": 1}));
    let page: Value = get_json(&client, format!("{base}/predictions")).await;
    assert_eq!(page["predictions"][0]["error_type"], "non_finite_output");
    let _ = second.stop();
}

/// A big batch of long request ids is told in `records_stored` lines that each fit in
/// the 16 KiB a container log driver passes whole, list every request once and add up
/// to the batch, first stored, then sent again (all duplicates).
#[tokio::test]
async fn records_stored_lines_of_a_big_batch_fit_a_container_log_line() {
    let collector = Vigil::start_command("collector", &[], &[]);
    let url = format!("http://{}/log", collector.address_of("collector"));
    let ids: Vec<String> = (0..600).map(|i| format!("{i:-<128}")).collect();
    let records: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            json!({
                "prediction_id": format!("big-{i}"), "model": "defect-detector",
                "model_version": "1.0.0", "timestamp": "2026-12-02T19:00:00Z",
                "latency_ms": 1.0, "request_id": id, "status": "success",
                "label": "ok", "confidence": 0.9, "is_defect": false
            })
        })
        .collect();
    let client = reqwest::Client::new();
    for expected in [
        json!({"accepted": 600, "duplicates": 0}),
        json!({"accepted": 0, "duplicates": 600}),
    ] {
        let answer = post_json(&client, &url, &json!({ "records": records })).await;
        assert_eq!(answer, expected);
    }
    let stdout = collector.stdout_after_stop();
    let stored: Vec<(usize, Value)> = stdout
        .lines()
        .filter_map(|l| Some((l.len(), serde_json::from_str::<Value>(l).ok()?)))
        .filter(|(_, v)| v["message"] == "records_stored")
        .collect();
    assert!(stored.len() > 2, "{stored:?}");
    for (len, line) in &stored {
        assert!(*len < 16 * 1024, "a {len}-byte line: {line}");
    }
    let sum = |field: &str| -> u64 { stored.iter().map(|(_, l)| l[field].as_u64().unwrap()).sum() };
    assert_eq!(
        (sum("records"), sum("new"), sum("duplicates")),
        (1200, 600, 600)
    );
    let listed: Vec<&str> = stored
        .iter()
        .flat_map(|(_, l)| l["request_ids"].as_array().unwrap())
        .map(|id| id.as_str().unwrap())
        .collect();
    let twice: Vec<&str> = ids.iter().chain(&ids).map(String::as_str).collect();
    assert_eq!(listed, twice);
    // Each batch's lines say which of how many they are.
    let parts = stored[0].1["parts"].as_u64().unwrap();
    let numbers: Vec<u64> = stored
        .iter()
        .map(|(_, l)| l["part"].as_u64().unwrap())
        .collect();
    let one_batch: Vec<u64> = (1..=parts).collect();
    assert_eq!(numbers, [one_batch.clone(), one_batch].concat());
}

/// Regression: the signal handlers were installed only after the services started, so
/// a SIGTERM right after the `listening` line could kill the process outright.
#[test]
fn sigterm_right_after_listening_is_still_a_graceful_shutdown() {
    for _ in 0..5 {
        let vigil = Vigil::start(&[], &[]);
        let (code, lines) = vigil.stop();
        assert_eq!(code, Some(0));
        assert!(lines.iter().any(|l| l["message"] == "shutdown_complete"));
    }
}

/// A request hyper cannot parse gets vigil's error shape, not hyper's empty answer: a
/// JSON body whose request id is the `X-Request-ID` header, an access line with that
/// id, and the connection closed.
#[tokio::test]
async fn requests_that_do_not_parse_get_the_error_shape_and_an_access_line() {
    let vigil = Vigil::start(&[], &[]);
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}".to_vec(),
            400,
            "malformed_request",
        ),
        (
            b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Foo: a\x01b\r\n\r\n".to_vec(),
            400,
            "malformed_request",
        ),
        (
            b"GET /health/live HTTP/1.2\r\nHost: x\r\n\r\n".to_vec(),
            400,
            "malformed_request",
        ),
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
            400,
            "malformed_request",
        ),
        (
            format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000)).into_bytes(),
            414,
            "uri_too_long",
        ),
        (
            format!(
                "GET /health/live HTTP/1.1\r\nHost: x\r\n{}\r\n",
                "X-A: b\r\n".repeat(500)
            )
            .into_bytes(),
            431,
            "headers_too_large",
        ),
    ];
    let mut ids = Vec::new();
    for (request, status, code) in &cases {
        let reply = raw(vigil.addr, request);
        let (head, body) = reply.split_once("\r\n\r\n").expect("a whole response");
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status} ")),
            "{status} expected: {reply}"
        );
        let id = head
            .lines()
            .find_map(|l| l.strip_prefix("x-request-id: "))
            .unwrap_or_else(|| panic!("no request id: {reply}"))
            .to_owned();
        let body: Value = serde_json::from_str(body).expect("a JSON body");
        assert_eq!(body["error"]["code"], *code, "{body}");
        assert_eq!(body["error"]["details"], json!({}), "{body}");
        assert_eq!(body["request_id"], id.as_str(), "{body}");
        ids.push((id, *status, *code));
    }
    vigil.assert_predicts().await;
    let metrics = vigil.metrics().await;
    assert!(
        !metrics.contains("status=\"5"),
        "no 5xx anywhere:\n{metrics}"
    );
    let (code, lines) = vigil.stop();
    assert_eq!(code, Some(0));
    for (id, status, error_code) in ids {
        let access = lines
            .iter()
            .find(|l| l["message"] == "request_completed" && l["request_id"] == id.as_str())
            .unwrap_or_else(|| panic!("no access line for {id}"));
        assert_eq!(access["status"], status);
        assert_eq!(access["error_code"], error_code);
        assert_eq!(access["route"], "unmatched");
        assert_eq!(access["service"], "inference");
    }
}
