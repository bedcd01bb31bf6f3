//! `--log-dir` through the real binary: the lines on stdout are in the files too, each
//! once, across size rotations; rotated files are gzipped; exactly `--log-keep` rotated
//! files remain; the fault counter is exported. (Rotation itself, by time and size, on
//! restart and under faults: crates/logfile/tests/rotation.rs.)

use std::io::Read;

use flate2::read::GzDecoder;
use serde_json::{Value, json};
use vigil_test_support::{TempDir, Vigil};

const GOOD: [f64; 6] = [70.0, 250.0, 2.5, 45.0, 1500.0, 12.0];

fn read_lines(dir: &std::path::Path) -> (Vec<Value>, Vec<String>) {
    let mut lines = Vec::new();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // The directory's lock (one process a directory) holds no lines.
        if name == ".vigil.log.lock" {
            continue;
        }
        let bytes = std::fs::read(entry.path()).unwrap();
        let text = if name.ends_with(".gz") {
            let mut s = String::new();
            GzDecoder::new(&bytes[..]).read_to_string(&mut s).unwrap();
            s
        } else {
            String::from_utf8(bytes).unwrap()
        };
        for line in text.lines() {
            lines.push(serde_json::from_str(line).expect("every line in the files is whole JSON"));
        }
        names.push(name);
    }
    names.sort();
    (lines, names)
}

#[tokio::test]
async fn every_line_lands_once_in_rotated_gzipped_files_and_only_the_newest_are_kept() {
    let logs = TempDir::new("log-files");
    let dir = logs.path().to_str().unwrap();
    let vigil = Vigil::start(
        &[
            "--log-dir",
            dir,
            "--log-max-bytes",
            "4096",
            "--log-keep",
            "3",
        ],
        &[],
    );
    let http = reqwest::Client::new();
    for i in 0..60 {
        let answer = http
            .post(vigil.url("/predict"))
            .header("x-request-id", format!("logfile-{i}"))
            .json(&json!({"features": GOOD}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }
    let metrics = vigil.metrics().await;
    for op in ["open", "write", "rotate", "compress", "remove"] {
        assert!(
            metrics.contains(&format!("log_file_errors_total{{operation=\"{op}\"}} 0")),
            "{op}: {metrics}"
        );
    }
    // Stopping flushes the queue and finishes the gzips.
    let (_, stdout) = vigil.stop();
    let (in_files, names) = read_lines(logs.path());
    let rotated: Vec<&String> = names.iter().filter(|n| *n != "vigil.log").collect();
    assert_eq!(rotated.len(), 3, "{names:?}");
    assert!(rotated.iter().all(|n| n.ends_with(".log.gz")), "{names:?}");
    // The newest files hold the last requests: each of those once, in order.
    let ids = |lines: &[Value]| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l["message"] == "request_completed" && l["path"] == "/predict")
            .map(|l| l["request_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let from_files = ids(&in_files);
    let from_stdout = ids(&stdout);
    assert_eq!(from_stdout.len(), 60);
    assert!(!from_files.is_empty());
    let mut unique = from_files.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), from_files.len(), "a line was written twice");
    // What the kept files hold is the tail of what stdout saw, without a gap.
    let tail = &from_stdout[from_stdout.len() - from_files.len()..];
    let mut sorted_tail = tail.to_vec();
    sorted_tail.sort();
    assert_eq!(unique, sorted_tail);
}

/// `vigil logs` on what `--log-dir` wrote (rotated, gzipped and current files, by glob),
/// and on stdin.
#[tokio::test]
async fn vigil_logs_reads_the_rotated_files_and_stdin() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let logs = TempDir::new("log-files-query");
    let dir = logs.path().to_str().unwrap();
    // `up`: the collector's lines about storing the records are in the files too.
    let vigil = Vigil::start_command("up", &["--log-dir", dir, "--log-max-bytes", "2048"], &[]);
    let inference = format!("http://{}", vigil.address_of("inference"));
    let http = reqwest::Client::new();
    for i in 0..20 {
        let id = format!("story-{i}");
        let body = if i == 7 {
            json!({"features": [1.0]})
        } else {
            json!({"features": GOOD})
        };
        http.post(format!("{inference}/predict"))
            .header("x-request-id", &id)
            .json(&body)
            .send()
            .await
            .unwrap();
    }
    let (_, stdout) = vigil.stop();
    let vigil_logs = |args: &[&str], stdin: Option<&str>| {
        let mut child = Command::new(vigil_test_support::vigil_binary())
            .arg("logs")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let input = stdin.unwrap_or("").to_owned();
        let mut pipe = child.stdin.take().unwrap();
        std::thread::spawn(move || pipe.write_all(input.as_bytes()));
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let glob = format!("{dir}/vigil*");
    let story = |id: &str| -> Vec<Value> {
        let text = vigil_logs(&["--request-id", id, &glob], None);
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        // Each line is the request's own, or the collector's batch that stored its
        // record.
        for l in &lines {
            let listed = l["request_ids"]
                .as_array()
                .is_some_and(|ids| ids.iter().any(|i| i == id));
            assert!(l["request_id"] == id || listed, "{l}");
        }
        lines
    };
    let refused = story("story-7");
    assert!(
        refused
            .iter()
            .any(|l| l["message"] == "request_completed" && l["status"] == 422),
        "{refused:?}"
    );
    // A prediction's story runs from the inference service's access line to the
    // collector storing its record.
    let served = story("story-3");
    let has = |service: &str, message: &str| {
        served
            .iter()
            .any(|l| l["service"] == service && l["message"] == message)
    };
    assert!(has("inference", "request_completed"), "{served:?}");
    assert!(has("collector", "records_stored"), "{served:?}");
    // The same question over stdin: the process's stdout lines.
    let text: String = stdout.iter().map(|l| format!("{l}\n")).collect();
    let counts = vigil_logs(
        &["--status", "4xx", "--route", "/predict", "--json"],
        Some(&text),
    );
    let matched: Vec<Value> = counts
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(matched.len(), 1, "{counts}");
    assert_eq!(matched[0]["request_id"], "story-7");
}

/// Ctrl-C ends `vigil logs --follow` cleanly: what was read is printed and the
/// skipped-lines summary is written before it exits.
#[test]
fn ctrl_c_ends_follow_with_the_summary() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let logs = TempDir::new("log-follow-sigint");
    let file = logs.path().join("vigil.log");
    let line = |id: &str| {
        format!(
            "{{\"timestamp\":\"2026-12-01T21:00:00Z\",\"level\":\"INFO\",\"message\":\"m\",\"request_id\":\"{id}\"}}\n"
        )
    };
    std::fs::write(&file, format!("{}not json\n", line("before"))).unwrap();
    let mut child = Command::new(vigil_test_support::vigil_binary())
        .args(["logs", "--follow", file.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("\"before\""), "{first}");
    // A line appended while following comes out too: the follow loop is running.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    f.write_all(line("after").as_bytes()).unwrap();
    let mut second = String::new();
    stdout.read_line(&mut second).unwrap();
    assert!(second.contains("\"after\""), "{second}");

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "skipped 1 line: 1 not JSON\n"
    );
}
