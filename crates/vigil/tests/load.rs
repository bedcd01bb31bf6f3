//! `vigil load` against a real server: the mix arrives as asked, every invalid request
//! is answered 4xx and counted, drifted traffic moves the drift gauges, and bad
//! settings or an unreachable target fail clearly.

use std::time::{Duration, Instant};

use serde_json::Value;
use vigil_test_support::{Vigil, eventually, free_port, get_text, sample};

async fn load(args: &[&str]) -> (Option<i32>, Value, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("load")
        .args(args)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), report, stderr)
}

/// Sum of every series of a counter family.
fn family_total(text: &str, family: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

fn count(report: &Value, kind: &str, pred: impl Fn(u16) -> bool) -> u64 {
    report["statuses"][kind]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(status, _)| pred(status.parse().unwrap()))
                .map(|(_, n)| n.as_u64().unwrap())
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn mixed_traffic_is_answered_by_contract_and_drift_shows_in_the_gauges() {
    let vigil = Vigil::start(&[], &[]);
    let target = vigil.url("");

    let (code, report, stderr) = load(&[
        "--target",
        &target,
        "--requests",
        "400",
        "--rate",
        "2000",
        "--invalid",
        "0.3",
        "--seed",
        "3",
    ])
    .await;
    assert_eq!(code, Some(0), "{stderr}\n{report}");
    assert_eq!(report["sent"], 400);
    assert_eq!(report["model"], "defect-detector");
    assert_eq!(report["unexpected"], 0, "{report}");
    let invalid = count(&report, "invalid", |s| (400..500).contains(&s));
    let good = count(&report, "good", |s| s == 200);
    assert!(invalid > 60, "{report}");
    assert_eq!(invalid + good, 400, "{report}");
    assert_eq!(count(&report, "invalid", |s| !(400..500).contains(&s)), 0);
    // Several kinds of rejection, not one repeated.
    assert!(
        report["statuses"]["invalid"].as_object().unwrap().len() >= 3,
        "{report}"
    );

    let metrics = get_text(vigil.url("/metrics")).await;
    assert_eq!(
        family_total(&metrics, "input_validation_errors_total"),
        invalid as f64
    );
    let psi = r#"model_feature_drift_psi{model="defect-detector",feature="temperature_c"}"#;
    // Rows drawn from the training distribution do not look drifted.
    assert!(sample(&metrics, psi) < 0.25, "{}", sample(&metrics, psi));

    let (code, report, stderr) = load(&[
        "--target",
        &target,
        "--model",
        "defect-detector",
        "--requests",
        "1000",
        "--rate",
        "5000",
        "--drifted",
        "1",
        "--batch",
        "2",
    ])
    .await;
    assert_eq!(code, Some(0), "{stderr}\n{report}");
    assert_eq!(count(&report, "drifted", |s| s == 200), 1000, "{report}");
    let metrics = get_text(vigil.url("/metrics")).await;
    for feature in ["temperature_c", "pressure_kpa", "current_a"] {
        let series =
            format!(r#"model_feature_drift_psi{{model="defect-detector",feature="{feature}"}}"#);
        assert!(
            sample(&metrics, &series) > 1.0,
            "{feature}: {}",
            sample(&metrics, &series)
        );
    }
    assert!(
        metrics.contains(
            r#"http_requests_total{method="POST",route="/models/{name}/predict",status="200"} 1000"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn bad_settings_exit_64_and_an_unreachable_target_exits_1() {
    // Zero, and values too extreme to run (each used to panic), are refused.
    for (flag, value) in [
        ("--rate", "0"),
        ("--rate", "1e-300"),
        ("--rate", "1e12"),
        ("--batch", "18446744073709551615"),
        ("--concurrency", "18446744073709551615"),
    ] {
        let (code, _, stderr) = load(&[flag, value, "--requests", "1"]).await;
        assert_eq!(code, Some(64), "{flag} {value}: {stderr}");
        assert!(stderr.contains(flag), "{stderr}");
    }
    let (code, _, stderr) = load(&["--duration", "18446744073709551615", "--requests", "1"]).await;
    assert_eq!(code, Some(2), "clap refuses it: {stderr}");
    let (code, _, stderr) =
        load(&["--invalid", "0.8", "--drifted", "0.5", "--requests", "1"]).await;
    assert_eq!(code, Some(64), "{stderr}");
    let (code, _, stderr) = load(&["--requests", "1", "--duration", "soon"]).await;
    assert_eq!(code, Some(2), "clap rejects the value: {stderr}");

    let port = free_port();
    let (code, _, stderr) = load(&[
        "--target",
        &format!("http://127.0.0.1:{port}"),
        "--requests",
        "1",
    ])
    .await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("cannot read the model schema"), "{stderr}");
}

#[tokio::test]
async fn without_a_limit_it_runs_until_interrupted_and_still_reports() {
    let vigil = Vigil::start(&[], &[]);
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["load", "--target", &vigil.url(""), "--rate", "200"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Readiness signal: the server has answered some of its requests.
    let series = r#"predictions_total{model="defect-detector",version="1.0.0",status="success"}"#;
    eventually(Duration::from_secs(30), async || {
        let answered = sample(&vigil.metrics().await, series);
        if answered >= 20.0 {
            Ok(())
        } else {
            Err(format!("vigil load sent {answered} requests"))
        }
    })
    .await;
    kill("INT", child.id().unwrap());
    // Every request answers in milliseconds: far inside the 2 s grace.
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("vigil load did not stop at Ctrl-C")
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let sent = report["sent"].as_u64().unwrap();
    assert!(sent >= 20, "{report}");
    // Every request sent before the interrupt was answered and counted.
    assert_eq!(count(&report, "good", |s| s == 200), sent, "{report}");
}

#[tokio::test]
async fn a_live_line_on_a_terminal_and_nothing_extra_when_piped() {
    let vigil = Vigil::start(&[], &[]);
    let target = vigil.url("");
    // Long enough for two progress ticks (one a second).
    let args = ["--target", &target, "--duration", "2500ms", "--rate", "100"];
    let (code, report, stderr) = load(&args).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(report["sent"].as_u64().unwrap() > 100);
    assert!(stderr.is_empty(), "piped stderr got {stderr:?}");

    // Under a pseudo-terminal (util-linux `script`), the line updates in place.
    let command = format!("{} load {}", env!("CARGO_BIN_EXE_vigil"), args.join(" "));
    let out = tokio::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let terminal = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = terminal
        .split("\r\x1b[2K")
        .filter(|l| l.contains("req/s"))
        .collect();
    assert!(lines.len() >= 2, "{terminal:?}");
    assert!(
        lines[0].contains("sent ")
            && lines[0].contains("p99 ")
            && lines[0].contains("unexpected 0")
    );
}

/// `--feedback 1 --label-noise 0.3` against `vigil up`: every answered row (batches
/// included) gets a label after the delay, 30 % of them wrong, and the collector's
/// measured accuracy is exactly the share the report says is right.
#[tokio::test]
async fn feedback_with_label_noise_moves_measured_accuracy_to_match() {
    let up = Vigil::start_command("up", &[], &[]);
    let target = format!("http://{}", up.address_of("inference"));
    let collector = format!("http://{}", up.address_of("collector"));
    let (code, report, stderr) = load(&[
        "--target",
        &target,
        "--collector",
        &collector,
        "--requests",
        "100",
        "--batch",
        "3",
        "--rate",
        "500",
        "--feedback",
        "1",
        "--label-noise",
        "0.3",
        "--feedback-delay",
        "200ms",
    ])
    .await;
    assert_eq!(code, Some(0), "{stderr}\n{report}");
    let f = &report["feedback"];
    assert_eq!(f["labels"], 300, "{report}");
    assert_eq!(f["failed"], 0, "{report}");
    assert_eq!(f["accepted"], 300, "{report}");
    let wrong = f["wrong"].as_u64().unwrap();
    assert!((60..=120).contains(&wrong), "{report}");
    // Labels sent before their record arrived wait, then join: all 300 are graded.
    let series = "model_quality_labels{model=\"defect-detector\"}";
    let text = eventually(Duration::from_secs(60), async || {
        let text = get_text(format!("{collector}/metrics")).await;
        if vigil_test_support::try_sample(&text, series) == Some(300.0) {
            Ok(text)
        } else {
            Err(format!("labels never all graded: {report}"))
        }
    })
    .await;
    let accuracy = sample(&text, "model_accuracy{model=\"defect-detector\"}");
    assert_eq!(accuracy, (300 - wrong) as f64 / 300.0, "{report}");
}

/// `--duration` ends the run on time even when the next tick lies past it: at half a
/// request a second, the next one is due at 2 s.
#[tokio::test]
async fn a_duration_shorter_than_a_tick_ends_the_run_on_time() {
    let vigil = Vigil::start(&[], &[]);
    let target = vigil.url("");
    let args = ["--target", &target, "--rate", "0.5", "--duration", "500ms"];
    let (code, report, stderr) = load(&args).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(report["sent"], 1, "{report}");
    let elapsed = report["elapsed_s"].as_f64().unwrap();
    assert!((0.5..1.9).contains(&elapsed), "{report}");
    // A report that cannot be written whole (a full disk behind `>`) fails the run;
    // it exited 0 with the report cut off.
    // (std's `output` keeps the stdout given; tokio's replaces it with a pipe.)
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("load")
        .args(args)
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot write the report"), "{stderr}");
}

/// An interrupt while the last labels wait out `--feedback-delay` sends them at once
/// (counted as `early`) and ends the run with its report, instead of waiting an hour.
#[tokio::test]
async fn an_interrupt_during_the_feedback_delay_sends_the_labels_now() {
    let up = Vigil::start_command("up", &[], &[]);
    let target = format!("http://{}", up.address_of("inference"));
    let collector = format!("http://{}", up.address_of("collector"));
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["load", "--target", &target, "--collector", &collector])
        .args(["--requests", "20", "--rate", "200", "--feedback", "1"])
        .args(["--feedback-delay", "1h"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Readiness signal: the server has answered all twenty.
    let series = r#"predictions_total{model="defect-detector",version="1.0.0",status="success"}"#;
    let metrics = format!("{target}/metrics");
    eventually(Duration::from_secs(30), async || {
        let text = get_text(&metrics).await;
        let answered = vigil_test_support::try_sample(&text, series).unwrap_or(0.0);
        if answered >= 20.0 {
            Ok(())
        } else {
            Err(format!("vigil load sent {answered} requests"))
        }
    })
    .await;
    let pid = child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    // Far inside the hour the labels would otherwise wait.
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("vigil load still waits out the delay after SIGTERM")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = &report["feedback"];
    assert_eq!(f["labels"], 20, "{report}");
    assert_eq!(f["early"], 20, "{report}");
    assert_eq!(f["failed"], 0, "{report}");
    // `accepted` counts the labels that wait for their record (`pending`) as well.
    assert_eq!(f["accepted"], 20, "{report}");
}

/// Once the service has a `predict` key, the run needs one: `--api-key` or
/// `VIGIL_API_KEY`; without, every answer is a 401 the report counts as unexpected.
#[tokio::test]
async fn an_api_key_opens_a_service_that_needs_one() {
    let dir = vigil_test_support::TempDir::new("load-key");
    let data = dir.path().to_str().unwrap();
    let vigil = Vigil::start(&["--data-dir", data], &[]);
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["keys", "create", "--name", "load", "--role", "predict"])
        .args(["--data-dir", data])
        .output()
        .unwrap();
    assert!(made.status.success());
    let key = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    let target = vigil.url("");
    // The service re-reads its key file within seconds: wait for the 401.
    eventually(Duration::from_secs(30), async || {
        let status = reqwest::Client::new()
            .post(vigil.url("/predict"))
            .json(&serde_json::json!({"features": [70.0, 250.0, 2.5, 45.0, 1500.0, 12.0]}))
            .send()
            .await
            .unwrap()
            .status();
        if status == 401 {
            Ok(())
        } else {
            Err(format!("the key never applied: {status}"))
        }
    })
    .await;
    let args = ["--target", &target, "--requests", "10", "--rate", "100"];
    let (code, report, _) = load(&args).await;
    assert_eq!(code, Some(1));
    assert_eq!(count(&report, "good", |s| s == 401), 10, "{report}");

    let mut with_flag = args.to_vec();
    with_flag.extend(["--api-key", &key]);
    let (code, report, stderr) = load(&with_flag).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(count(&report, "good", |s| s == 200), 10, "{report}");

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("load")
        .args(args)
        .env("VIGIL_API_KEY", &key)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = vigil.stdout_after_stop();
    assert!(!stdout.contains(&key), "the key reached a log line");
}

/// Labels the collector does not take are an error, with why: exit 1 and a line on
/// stderr, and the report's `feedback.failure`.
#[tokio::test]
async fn labels_that_do_not_reach_the_collector_fail_the_run() {
    let vigil = Vigil::start(&[], &[]);
    let target = vigil.url("");
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let args = ["--target", &target, "--collector", &nowhere];
    let (code, report, stderr) = load(
        &[
            &args[..],
            &["--requests", "5", "--rate", "100", "--feedback", "1"],
        ]
        .concat(),
    )
    .await;
    assert_eq!(code, Some(1), "{report}");
    let f = &report["feedback"];
    assert_eq!(f["failed"], 5, "{report}");
    assert!(
        f["failure"].as_str().is_some_and(|w| w.contains(&nowhere)),
        "{report}"
    );
    assert!(
        stderr.contains("the collector did not take 5 of 5 labels"),
        "{stderr}"
    );
}

/// `kill -{signal} {pid}`: a signal as a person (`INT`, Ctrl-C) or a supervisor
/// (`TERM`) sends it.
fn kill(signal: &str, pid: u32) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// A service whose model is stuck: it answers every `GET` as `real` does (the schema
/// `vigil load` reads first is a real one), and takes every other request without
/// ever answering it, as a model that hangs would.
struct Stuck {
    url: String,
    /// Requests taken and left unanswered so far: the readiness signal.
    held: tokio::sync::watch::Receiver<u64>,
}

impl Stuck {
    async fn start(real: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (count, held) = tokio::sync::watch::channel(0);
        let count = std::sync::Arc::new(count);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(Self::connection(stream, real.clone(), count.clone()));
            }
        });
        Self { url, held }
    }

    /// Serves one connection's requests until one is held.
    async fn connection(
        stream: tokio::net::TcpStream,
        real: String,
        count: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    ) {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let mut stream = tokio::io::BufReader::new(stream);
        loop {
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                if line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let mut words = head.split_whitespace();
            let (method, path) = (words.next().unwrap(), words.next().unwrap());
            if method != "GET" {
                count.send_modify(|n| *n += 1);
                // Read on, answer never: the connection stays open until the client
                // gives up on it.
                let _ = tokio::io::copy(&mut stream, &mut tokio::io::sink()).await;
                return;
            }
            // A GET has no body: the head was the whole request.
            let answer = reqwest::get(format!("{real}{path}")).await.unwrap();
            let status = answer.status();
            let body = answer.text().await.unwrap();
            let reply = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            stream.get_mut().write_all(reply.as_bytes()).await.unwrap();
        }
    }

    /// Until `n` requests are held.
    async fn holds(&self, n: u64) {
        let mut held = self.held.clone();
        tokio::time::timeout(Duration::from_secs(30), held.wait_for(|h| *h >= n))
            .await
            .expect("vigil load sent no prediction")
            .unwrap();
    }
}

/// Reads what a program under `script` writes to its terminal until it contains
/// `text`; `seen` keeps all of it, for the next wait and for failure messages.
async fn read_until(out: &mut tokio::process::ChildStdout, seen: &mut String, text: &str) {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !seen.contains(text) {
        let mut buf = [0; 4096];
        let n = tokio::time::timeout_at(deadline, out.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {text:?} on the terminal: {seen:?}"))
            .unwrap();
        assert!(n > 0, "the terminal closed without {text:?}: {seen:?}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

/// A target that accepts the connection and never answers holds `vigil load` at its
/// first step, reading the model schema. Ctrl-C there ends it at once (exit 1, no
/// report: nothing was sent), not at the 30 s request timeout.
#[tokio::test]
async fn ctrl_c_while_the_target_keeps_the_schema_ends_at_once() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("http://{}", listener.local_addr().unwrap());
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["load", "--target", &target, "--rate", "5"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Readiness: the schema request's connection (the signal handlers are in place
    // before it), held open and unanswered to the end of the test.
    let (_held, _) = tokio::time::timeout(Duration::from_secs(30), listener.accept())
        .await
        .expect("vigil load never connected")
        .unwrap();
    kill("INT", child.id().unwrap());
    let out = tokio::time::timeout(Duration::from_secs(5), child.wait_with_output())
        .await
        .expect("Ctrl-C waited for the schema's request timeout")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("interrupted before it answered"),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "a report for a run that sent nothing"
    );
}

/// A second Ctrl-C ends the run at once, while the requests in flight still have
/// most of their grace: the report comes, with every one of them cut off and why,
/// and the run fails (exit 1), as requests without an answer fail it.
#[tokio::test]
async fn a_second_ctrl_c_ends_the_run_without_waiting_for_the_grace() {
    let vigil = Vigil::start(&[], &[]);
    let stuck = Stuck::start(vigil.url("")).await;
    let dir = vigil_test_support::TempDir::new("load-force");
    let report = dir.path().join("report.json");
    // Under a pseudo-terminal (util-linux `script`), where the first Ctrl-C says on
    // stderr that the run stops: the readiness signal for the second (two signals
    // close together can arrive as one). The shell prints its pid and becomes
    // `vigil load`; the report goes to a file, stderr stays on the terminal.
    let command = format!(
        "echo $$; exec '{}' load --target {} --rate 50 > '{}'",
        env!("CARGO_BIN_EXE_vigil"),
        stuck.url,
        report.display()
    );
    let mut child = tokio::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("SHELL", "/bin/sh")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut terminal = child.stdout.take().unwrap();
    let mut seen = String::new();
    read_until(&mut terminal, &mut seen, "\n").await;
    let pid: u32 = seen.lines().next().unwrap().trim().parse().unwrap();

    stuck.holds(1).await;
    kill("INT", pid);
    read_until(&mut terminal, &mut seen, "vigil load: stopping").await;
    kill("INT", pid);
    let forced = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("vigil load did not end after the second Ctrl-C")
        .unwrap();
    let after = forced.elapsed();
    // The grace is 2 s: a run that waited it out ends well past a second.
    assert!(
        after < Duration::from_secs(1),
        "ended {after:?} after the second Ctrl-C: {seen:?}"
    );
    assert_eq!(status.code(), Some(1), "{seen:?}");
    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let sent = report["sent"].as_u64().unwrap();
    assert!(sent >= 1, "{report}");
    assert_eq!(report["cut_off"], sent, "{report}");
    assert!(
        report["examples"][0]
            .as_str()
            .unwrap()
            .ends_with("still waiting when a second interrupt ended the run"),
        "{report}"
    );
}
