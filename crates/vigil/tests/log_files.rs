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
    let vigil = Vigil::start(&["--log-dir", dir, "--log-max-bytes", "2048"], &[]);
    let http = reqwest::Client::new();
    for i in 0..20 {
        let id = format!("story-{i}");
        let body = if i == 7 {
            json!({"features": [1.0]})
        } else {
            json!({"features": GOOD})
        };
        http.post(vigil.url("/predict"))
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
    let story = vigil_logs(&["--request-id", "story-7", &glob], None);
    let lines: Vec<Value> = story
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty(), "{story}");
    assert!(lines.iter().all(|l| l["request_id"] == "story-7"));
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "request_completed" && l["status"] == 422)
    );
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
