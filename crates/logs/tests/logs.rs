//! Integration tests of `vigil-logs` on a rotated fixture set: a gzip file (made at
//! test time from `fixtures/vigil.2026-12-01T20-00-00.000Z.log.txt`), a plain rotated file
//! and the current `vigil.log`, with interleaved times, one request's story across
//! both services, and malformed and hostile lines. Hostile bytes that a text file
//! should not hold (invalid UTF-8, a 1.5 MiB line, a raw C1 character) are appended
//! to `vigil.log` at test time.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use serde_json::Value;
use time::macros::datetime;
use vigil_logs::{LogsArgs, Malformed, RunOptions, Summary, run, run_with};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: LogsArgs,
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
const GZ: &str = "vigil.2026-12-01T20-00-00.000Z.log.gz";
const ROTATED: &str = "vigil.2026-12-01T21-00-00.000Z.log";
const CURRENT: &str = "vigil.log";
/// A valid line whose field holds a raw C1 control (CSI, U+009B): JSON allows it.
const C1_LINE: &str = "{\"timestamp\":\"2026-12-01T21:46:00.000000Z\",\"level\":\"INFO\",\"target\":\"vigil::audit\",\"message\":\"c1_test\",\"note\":\"a\u{9b}31mb\",\"service\":\"inference\"}";

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// The rotated set in a fresh directory.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let plain =
        fs::read(Path::new(FIXTURES).join("vigil.2026-12-01T20-00-00.000Z.log.txt")).unwrap();
    fs::write(dir.path().join(GZ), gzip(&plain)).unwrap();
    fs::copy(Path::new(FIXTURES).join(ROTATED), dir.path().join(ROTATED)).unwrap();
    let mut current = fs::read(Path::new(FIXTURES).join(CURRENT)).unwrap();
    current
        .extend_from_slice(b"{\"timestamp\":\"2026-12-01T21:45:30Z\",\"message\":\"\xff\xfe\"}\n");
    current.extend_from_slice(&vec![b'x'; 1536 * 1024]);
    current.push(b'\n');
    current.extend_from_slice(C1_LINE.as_bytes());
    current.push(b'\n');
    fs::write(dir.path().join(CURRENT), current).unwrap();
    dir
}

fn parse(argv: &[String]) -> LogsArgs {
    let mut full = vec!["vigil-logs".to_owned()];
    full.extend(argv.iter().cloned());
    Cli::try_parse_from(full).unwrap().args
}

struct Out {
    stdout: String,
    stderr: String,
    summary: Summary,
}

fn run_args(args: &LogsArgs, tty: bool) -> Out {
    let opts = RunOptions {
        now: datetime!(2026-12-01 21:46 UTC),
        stop: None,
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let summary = run_with(args, &mut out, &mut err, tty, opts).unwrap();
    Out {
        stdout: String::from_utf8(out).unwrap(),
        stderr: String::from_utf8(err).unwrap(),
        summary,
    }
}

/// Runs with `flags` on the whole set, named by a glob the tool expands itself.
fn logs(dir: &Path, flags: &[&str]) -> Out {
    let mut argv: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
    argv.push(format!("{}/vigil*.log*", dir.display()));
    run_args(&parse(&argv), false)
}

/// The time part (`HH:MM:SS.ffffff`) of each JSON output line.
fn times(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let ts = v["timestamp"].as_str().unwrap();
            ts[11..ts.len() - 1].to_owned()
        })
        .collect()
}

const ORDER: [&str; 42] = [
    "20:00:00.000001",
    "20:00:00.100000",
    "20:00:00.100500",
    "20:05:10.000000",
    "20:05:10.002000",
    "20:12:00.500000",
    "20:30:00.000000",
    "20:40:00.000000",
    "20:58:00.000000",
    "20:59:00.000000",
    "20:59:00.000000",
    "21:01:00.000000",
    "21:02:00.000100",
    "21:02:00.250000",
    "21:02:00.260000",
    "21:02:00.260100",
    "21:02:00.261000",
    "21:02:00.299000",
    "21:02:00.300000",
    "21:02:01.500000",
    "21:10:00.000000",
    "21:10:00.500000",
    "21:10:00.600000",
    "21:15:00.000000",
    "21:20:00.000000",
    "21:20:30.000000",
    "21:21:00.000000",
    "21:22:00.000000",
    "21:25:00.000000",
    "21:30:00.000000",
    "21:30:01.000000",
    "21:30:02.000000",
    "21:30:03.000000",
    "21:30:03.100000",
    "21:31:00.000000",
    "21:31:00.010000",
    "21:40:00.000000",
    "21:41:00.000000",
    "21:41:00.010000",
    "21:44:00.000000",
    "21:45:00.000000",
    "21:46:00.000000",
];

#[test]
fn lines_from_all_files_merge_in_time_order() {
    let dir = fixture();
    let out = logs(dir.path(), &[]);
    assert_eq!(times(&out.stdout), ORDER);
    assert_eq!(out.summary.matched, 42);
}

#[test]
fn files_are_ordered_by_their_first_line_not_by_argument_order() {
    let dir = fixture();
    let d = dir.path();
    let forward = logs(d, &[]).stdout;
    let argv: Vec<String> = [CURRENT, ROTATED, GZ]
        .iter()
        .map(|f| d.join(f).display().to_string())
        .collect();
    let reversed = run_args(&parse(&argv), false).stdout;
    assert_eq!(forward, reversed);
}

#[test]
fn equal_times_keep_input_order() {
    let dir = fixture();
    let out = logs(
        dir.path(),
        &[
            "--json",
            "--since",
            "2026-12-01T20:59:00Z",
            "--until",
            "2026-12-01T21:00:00Z",
        ],
    );
    let routes: Vec<String> = out
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["route"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    // The gzip file starts first, so its line comes before the rotated file's.
    assert_eq!(routes, ["/health", "/predictions"]);
}

#[test]
fn malformed_lines_are_counted_by_kind_and_reported() {
    let dir = fixture();
    let out = logs(dir.path(), &[]);
    let s = out.summary.skipped;
    assert_eq!(s.get(Malformed::NotJson), 2);
    assert_eq!(s.get(Malformed::Truncated), 1);
    assert_eq!(s.get(Malformed::TooLong), 1);
    assert_eq!(s.get(Malformed::InvalidUtf8), 1);
    assert_eq!(s.get(Malformed::NotObject), 1);
    assert_eq!(s.total(), 6);
    assert_eq!(out.summary.read, 48);
    assert_eq!(
        out.stderr,
        "skipped 6 lines: 2 not JSON, 1 truncated JSON, 1 over 1 MiB, 1 invalid UTF-8, 1 not a JSON object\n"
    );
}

#[test]
fn every_filter_selects_the_expected_lines() {
    let dir = fixture();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--level", "warn"],
            &[
                "20:30:00.000000",
                "21:02:00.250000",
                "21:02:00.260100",
                "21:02:00.261000",
                "21:02:01.500000",
                "21:10:00.600000",
                "21:20:00.000000",
                "21:21:00.000000",
                "21:30:03.100000",
                "21:41:00.000000",
                "21:44:00.000000",
            ],
        ),
        (
            &["--level", "ERROR", "--service", "inference"],
            &[
                "21:02:00.250000",
                "21:02:00.260100",
                "21:10:00.600000",
                "21:30:03.100000",
            ],
        ),
        (
            &["--service", "collector"],
            &[
                "20:00:00.100500",
                "20:05:10.002000",
                "20:58:00.000000",
                "20:59:00.000000",
                "21:01:00.000000",
                "21:02:00.299000",
                "21:02:00.300000",
                "21:02:01.500000",
                "21:22:00.000000",
                "21:40:00.000000",
            ],
        ),
        // One request's story, across both services: the inference service's lines,
        // the collector's batch that stored its record, and that batch's later lines.
        (
            &["--request-id", "r-story"],
            &[
                "21:02:00.000100",
                "21:02:00.250000",
                "21:02:00.260000",
                "21:02:00.260100",
                "21:02:00.261000",
                "21:02:00.299000",
                "21:02:00.300000",
                "21:02:01.500000",
            ],
        ),
        (
            &["--trace-id", "t-b4"],
            &["21:10:00.500000", "21:10:00.600000"],
        ),
        (
            &["--user", "bob"],
            &[
                "20:40:00.000000",
                "21:10:00.000000",
                "21:10:00.500000",
                "21:25:00.000000",
                "21:30:02.000000",
            ],
        ),
        (
            &["--route", "/admin/keys"],
            &[
                "21:31:00.000000",
                "21:31:00.010000",
                "21:41:00.000000",
                "21:41:00.010000",
            ],
        ),
        (
            &["--status", "5xx,404"],
            &[
                "21:02:00.260000",
                "21:02:00.260100",
                "21:02:00.261000",
                "21:10:00.500000",
                "21:10:00.600000",
                "21:15:00.000000",
                "21:30:03.000000",
                "21:30:03.100000",
            ],
        ),
        (
            &["--status", "5xx", "--status", "404"],
            &[
                "21:02:00.260000",
                "21:02:00.260100",
                "21:02:00.261000",
                "21:10:00.500000",
                "21:10:00.600000",
                "21:15:00.000000",
                "21:30:03.000000",
                "21:30:03.100000",
            ],
        ),
        (&["--method", "delete"], &["21:25:00.000000"]),
        (
            &[
                "--since",
                "2026-12-01T21:30:00Z",
                "--until",
                "2026-12-01T21:41:00Z",
            ],
            &[
                "21:30:00.000000",
                "21:30:01.000000",
                "21:30:02.000000",
                "21:30:03.000000",
                "21:30:03.100000",
                "21:31:00.000000",
                "21:31:00.010000",
                "21:40:00.000000",
            ],
        ),
        // 15 minutes back from the test's "now", 21:46.
        (
            &["--since", "15m"],
            &[
                "21:31:00.000000",
                "21:31:00.010000",
                "21:40:00.000000",
                "21:41:00.000000",
                "21:41:00.010000",
                "21:44:00.000000",
                "21:45:00.000000",
                "21:46:00.000000",
            ],
        ),
        (
            &["--min-duration", "10"],
            &[
                "21:02:00.260000",
                "21:02:00.261000",
                "21:02:01.500000",
                "21:10:00.000000",
                "21:10:00.500000",
                "21:30:03.000000",
            ],
        ),
        (
            &["--message", "request_failed"],
            &["21:02:00.260100", "21:10:00.600000", "21:30:03.100000"],
        ),
        (&["--where", "records=3"], &["20:30:00.000000"]),
        (
            &[
                "--where",
                "status=200",
                "--where",
                "method=POST",
                "--where",
                "service=inference",
            ],
            &[
                "20:05:10.000000",
                "21:10:00.000000",
                "21:20:30.000000",
                "21:30:00.000000",
                "21:30:01.000000",
                "21:30:02.000000",
            ],
        ),
    ];
    for (flags, want) in cases {
        let mut f = vec!["--json"];
        f.extend_from_slice(flags);
        let out = logs(dir.path(), &f);
        assert_eq!(times(&out.stdout), *want, "flags {flags:?}");
        assert_eq!(out.summary.matched, want.len() as u64, "flags {flags:?}");
    }
}

#[test]
fn bad_flags_say_how_to_fix_them() {
    let dir = fixture();
    let try_run = |flags: &[&str]| {
        let mut argv: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
        argv.push(dir.path().join(CURRENT).display().to_string());
        let (mut o, mut e) = (Vec::new(), Vec::new());
        run(&parse(&argv), &mut o, &mut e, false)
            .unwrap_err()
            .to_string()
    };
    assert!(try_run(&["--since", "last tuesday"]).contains("such as 15m or 2h"));
    assert!(try_run(&["--until", "21:00"]).contains("RFC 3339"));
    assert!(try_run(&["--where", "status"]).contains("expected key=value"));
    assert!(try_run(&["--status", "5x"]).contains("class such as 5xx"));
    // An empty item filtered nothing: `--status ,` matched every line.
    for status in [",", "500,"] {
        assert!(
            try_run(&["--status", status]).contains("class such as 5xx"),
            "{status}"
        );
    }
    // A duration a filter cannot compare with is the command line's error.
    for ms in ["NaN", "inf", "-1"] {
        let flag = format!("--min-duration={ms}");
        let full = ["vigil-logs", flag.as_str(), "x.log"];
        let e = Cli::try_parse_from(full).err().unwrap().to_string();
        assert!(e.contains("expected milliseconds"), "{ms}: {e}");
    }
    assert_eq!(
        parse(&["--min-duration".into(), "250".into(), "x".into()]).min_duration,
        Some(250.0)
    );
    let missing = dir.path().join("nope.log").display().to_string();
    let e = try_run(&[missing.as_str()]);
    assert!(e.contains("cannot read") && e.contains("nope.log"), "{e}");
    let e = try_run(&[&format!("{}/none*.log", dir.path().display())]);
    assert!(e.contains("no file matches"), "{e}");
}

#[test]
fn gzip_is_detected_by_content_not_name() {
    let dir = fixture();
    let d = dir.path();
    fs::rename(d.join(GZ), d.join("compressed.log")).unwrap();
    fs::rename(d.join(ROTATED), d.join("plain.log.gz")).unwrap();
    let argv = vec![
        d.join("compressed.log").display().to_string(),
        d.join("plain.log.gz").display().to_string(),
    ];
    let out = run_args(&parse(&argv), false);
    assert_eq!(out.summary.matched, 10 + 16);
}

fn table(dir: &Path, flags: &[&str]) -> String {
    logs(dir, flags).stdout
}

fn json_rows(dir: &Path, flags: &[&str]) -> Vec<Value> {
    let mut f = vec!["--json"];
    f.extend_from_slice(flags);
    let out = logs(dir, &f).stdout;
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    v["rows"].as_array().unwrap().clone()
}

fn pairs(rows: &[Value], key: &str, count: &str) -> Vec<(String, u64)> {
    rows.iter()
        .map(|r| {
            (
                r[key].as_str().unwrap().to_owned(),
                r[count].as_u64().unwrap(),
            )
        })
        .collect()
}

fn owned(v: &[(&str, u64)]) -> Vec<(String, u64)> {
    v.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

#[test]
fn count_by_level_route_status_user_minute() {
    let dir = fixture();
    let d = dir.path();
    assert_eq!(
        table(d, &["--count-by", "level"]),
        "level  count\nERROR      6\nWARN       5\nINFO      30\nDEBUG      1\n"
    );
    let rows = json_rows(d, &["--count-by", "route"]);
    assert_eq!(
        pairs(&rows, "route", "count"),
        owned(&[
            ("/predict", 11),
            ("/admin/keys", 4),
            ("/log", 4),
            ("/admin/models/{name}", 1),
            ("/health", 1),
            ("/models", 1),
            ("/predictions", 1),
            ("/stats", 1),
            ("unmatched", 1)
        ])
    );
    let rows = json_rows(d, &["--count-by", "status"]);
    assert_eq!(
        pairs(&rows, "status", "count"),
        owned(&[
            ("200", 15),
            ("500", 5),
            ("503", 2),
            ("401", 1),
            ("403", 1),
            ("404", 1),
            ("422", 1)
        ])
    );
    let rows = json_rows(d, &["--count-by", "user"]);
    assert_eq!(
        pairs(&rows, "user", "count"),
        owned(&[
            ("anonymous", 8),
            ("bob", 5),
            ("alice", 4),
            ("carol", 4),
            ("admin", 2)
        ])
    );
    let rows = json_rows(
        d,
        &[
            "--count-by",
            "minute",
            "--since",
            "2026-12-01T21:00:00Z",
            "--until",
            "2026-12-01T21:16:00Z",
        ],
    );
    assert_eq!(
        pairs(&rows, "minute", "count"),
        owned(&[
            ("2026-12-01T21:01Z", 1),
            ("2026-12-01T21:02Z", 8),
            ("2026-12-01T21:10Z", 3),
            ("2026-12-01T21:15Z", 1)
        ])
    );
}

#[test]
fn latency_quantiles_by_route() {
    let dir = fixture();
    let d = dir.path();
    let rows = json_rows(d, &["--latency"]);
    let got: Vec<(String, u64, f64, f64, f64)> = rows
        .iter()
        .map(|r| {
            (
                r["route"].as_str().unwrap().to_owned(),
                r["count"].as_u64().unwrap(),
                r["p50_ms"].as_f64().unwrap(),
                r["p95_ms"].as_f64().unwrap(),
                r["p99_ms"].as_f64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, u64, f64, f64, f64)> = [
        ("/admin/keys", 2, 0.2, 1.1, 1.1),
        ("/admin/models/{name}", 1, 0.3, 0.3, 0.3),
        ("/health", 1, 0.1, 0.1, 0.1),
        ("/log", 4, 1.2, 2.0, 2.0),
        ("/models", 1, 0.4, 0.4, 0.4),
        ("/predict", 10, 7.0, 30000.0, 30000.0),
        ("/predictions", 1, 5.0, 5.0, 5.0),
        ("/stats", 1, 8.0, 8.0, 8.0),
        ("unmatched", 1, 0.1, 0.1, 0.1),
    ]
    .iter()
    .map(|(r, n, a, b, c)| (r.to_string(), *n, *a, *b, *c))
    .collect();
    assert_eq!(got, want);
    let t = table(d, &["--latency", "--route", "/log"]);
    assert_eq!(
        t,
        "route  count  p50_ms  p95_ms  p99_ms\n/log       4   1.200   2.000   2.000\n"
    );
}

#[test]
fn slowest_requests() {
    let dir = fixture();
    let rows = json_rows(dir.path(), &["--slowest", "3"]);
    let got: Vec<(f64, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["duration_ms"].as_f64().unwrap(),
                r["request_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, [(30000.0, "r-b4"), (260.5, "r-story"), (15.0, "r-c6")]);
}

#[test]
fn errors_per_minute() {
    let dir = fixture();
    let rows = json_rows(dir.path(), &["--errors-per-minute"]);
    assert_eq!(
        pairs(&rows, "minute", "errors"),
        owned(&[
            ("2026-12-01T21:02Z", 4),
            ("2026-12-01T21:10Z", 2),
            ("2026-12-01T21:20Z", 1),
            ("2026-12-01T21:21Z", 1),
            ("2026-12-01T21:30Z", 2)
        ])
    );
}

#[test]
fn top_errors() {
    let dir = fixture();
    let rows = json_rows(dir.path(), &["--top-errors", "5"]);
    assert_eq!(
        pairs(&rows, "error", "count"),
        owned(&[
            ("internal", 2),
            ("model_error", 2),
            ("timeout", 2),
            ("bad toml", 1),
            ("disk full", 1)
        ])
    );
    let rows = json_rows(dir.path(), &["--top-errors", "20"]);
    assert_eq!(rows.len(), 10);
    assert!(pairs(&rows, "error", "count").contains(&("panic".to_owned(), 1)));
}

fn hostile(dir: &Path, flags: &[&str], tty: bool) -> String {
    let mut argv: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
    argv.extend(["--since".into(), "2026-12-01T21:44:00Z".into()]);
    argv.push(dir.join(CURRENT).display().to_string());
    run_args(&parse(&argv), tty).stdout
}

#[test]
fn control_characters_never_reach_a_terminal() {
    let dir = fixture();
    let d = dir.path();
    let no_controls = |s: &str| s.chars().all(|c| !c.is_control() || c == '\n' || c == '\t');

    // Raw on a terminal: the C1 character is made visible; piped, lines are as read.
    let raw_tty = hostile(d, &["--message", "c1_test"], true);
    assert!(raw_tty.contains("a\\u{9b}31mb"), "{raw_tty}");
    assert!(no_controls(&raw_tty));
    let raw_pipe = hostile(d, &["--message", "c1_test"], false);
    assert_eq!(raw_pipe, format!("{C1_LINE}\n"));

    // Pretty: ESC from a JSON-escaped field is shown as an escape, tty or not.
    for tty in [false, true] {
        let pretty = hostile(d, &["--pretty", "--level", "warn"], tty);
        assert!(
            pretty.contains("\\u{1b}[31mred alert\\u{1b}[0m"),
            "{pretty}"
        );
        assert!(pretty.contains("\\u{1b}[2J\\u{1b}[Hcleared"), "{pretty}");
        if !tty {
            assert!(no_controls(&pretty), "{pretty}");
        }
    }
    let pretty = hostile(d, &["--pretty", "--level", "warn"], false);
    assert_eq!(
        pretty,
        "2026-12-01T21:44:00.000000Z WARN  inference \\u{1b}[31mred alert\\u{1b}[0m reason=\\u{1b}[2J\\u{1b}[Hcleared request_id=r-c10 trace_id=t-c10\n"
    );
    // On a terminal the level is coloured: the only ESC bytes are ours.
    let coloured = hostile(d, &["--pretty", "--level", "warn"], true);
    assert!(coloured.contains("\x1b[33mWARN \x1b[0m"), "{coloured:?}");

    // JSON output stays valid JSON and carries no raw control character.
    let json = hostile(d, &["--json"], true);
    assert!(no_controls(&json), "{json}");
    for l in json.lines() {
        serde_json::from_str::<Value>(l).unwrap();
    }
    assert!(json.contains("a\\u009b31mb"));
}

/// A `Write` shared with the test thread, to watch `--follow` output as it comes.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

fn line(n: u32) -> String {
    format!(
        "{{\"timestamp\":\"2026-12-01T22:00:{n:02}Z\",\"level\":\"INFO\",\"target\":\"t\",\"message\":\"m{n}\",\"service\":\"vigil\"}}\n"
    )
}

fn append(path: &PathBuf, text: &str) {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn wait_for(out: &Shared, n: usize) {
    vigil_test_support::eventually_blocking(Duration::from_secs(10), || {
        let lines = out.lines();
        if lines.len() >= n {
            Ok(())
        } else {
            Err(format!("only got {lines:?}"))
        }
    })
}

/// Runs `args` (with `--follow`) on a thread until `stop` is set.
fn spawn_follow(args: LogsArgs) -> (Arc<AtomicBool>, Shared, std::thread::JoinHandle<Summary>) {
    let stop = Arc::new(AtomicBool::new(false));
    let out = Shared::default();
    let handle = {
        let (stop, mut out) = (stop.clone(), out.clone());
        std::thread::spawn(move || {
            let opts = RunOptions {
                now: datetime!(2026-12-01 22:00 UTC),
                stop: Some(&stop),
            };
            run_with(&args, &mut out, &mut Vec::new(), false, opts).unwrap()
        })
    };
    (stop, out, handle)
}

#[test]
fn follow_reads_across_a_rename_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(CURRENT);
    append(&path, &(line(0) + &line(1)));
    let argv = vec!["--follow".to_owned(), path.display().to_string()];
    let args = parse(&argv);
    let (stop, out, handle) = spawn_follow(args);
    wait_for(&out, 2);
    append(&path, &line(2));
    wait_for(&out, 3);
    // A line written just before the rotation, a partial line finished after the
    // rename (by the writer still holding the old file), then the new file.
    append(&path, &line(3));
    let rotated = dir.path().join("vigil.2026-12-01T22-00-00.000Z.log");
    fs::rename(&path, &rotated).unwrap();
    let l4 = line(4);
    let (l4a, l4b) = l4.split_at(20);
    append(&rotated, l4a);
    append(&rotated, l4b);
    append(&path, &(line(5) + "not json\n" + &line(6)));
    wait_for(&out, 7);
    stop.store(true, Ordering::Relaxed);
    let summary = handle.join().unwrap();
    let messages: Vec<String> = out
        .lines()
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["message"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(messages, ["m0", "m1", "m2", "m3", "m4", "m5", "m6"]);
    assert_eq!(summary.matched, 7);
    assert_eq!(summary.skipped.get(Malformed::NotJson), 1);
}

#[test]
fn follow_starts_over_when_the_file_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(CURRENT);
    append(&path, &(line(0) + &line(1) + &line(2)));
    let args = parse(&["--follow".to_owned(), path.display().to_string()]);
    let (stop, out, handle) = spawn_follow(args);
    wait_for(&out, 3);
    // copytruncate-style rotation: same inode, now shorter than what was read.
    fs::write(&path, line(7)).unwrap();
    wait_for(&out, 4);
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
    assert!(out.lines()[3].contains("\"m7\""), "{:?}", out.lines());
}

/// A FIFO cannot be followed (its re-open waits for a writer, deaf to Ctrl-C): refused
/// at once, before anything waits on it.
#[test]
fn follow_refuses_a_fifo() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let argv = vec!["--follow".to_owned(), fifo.display().to_string()];
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let _ = tx.send(
            run(&parse(&argv), &mut o, &mut e, false)
                .map(|_| ())
                .map_err(|e| e.to_string()),
        );
    });
    let err = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("vigil logs --follow on a FIFO answered within 20 s")
        .unwrap_err();
    assert!(
        err.contains("--follow needs") && err.contains("not a regular file"),
        "{err}"
    );
}

#[test]
fn follow_needs_a_plain_file_last() {
    let dir = fixture();
    let argv = vec![
        "--follow".to_owned(),
        dir.path().join(GZ).display().to_string(),
    ];
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let err = run(&parse(&argv), &mut o, &mut e, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--follow needs"), "{err}");
}
