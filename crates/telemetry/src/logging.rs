//! JSON log lines: one object per line, written by a background thread from a
//! bounded buffer (see [`crate::writer`]) so a slow stdout never slows a request;
//! lines that do not fit are dropped and counted (`log_messages_dropped_total`). Every line carries `timestamp`,
//! `level`, `target`, `message`, `service` and, inside a request, `request_id` and
//! `trace_id`. Values are JSON-escaped, so user text cannot break a line or forge a
//! field, and fields named like secrets are written as `[REDACTED]`.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::context;
use crate::field_secrets::SecretFields;
use crate::redact::REDACTED;
use crate::writer::{self, LineWriter, WriterGuard};

/// Target of start-up and shutdown lines, which stay on at every log level.
pub const LIFECYCLE_TARGET: &str = "vigil::lifecycle";

/// Bytes of lines held in memory per output before new ones are dropped (about 16k
/// typical lines).
pub const DEFAULT_QUEUE_BYTES: usize = 8 << 20;

/// How to log.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// An `EnvFilter` directive: `info`, `warn,vigil=debug`, …
    pub level: String,
    /// `service` of lines outside any request.
    pub service: &'static str,
    /// Also write log files here (`vigil.log`, rotated and gzipped: `vigil_logfile`).
    pub dir: Option<PathBuf>,
    /// When the file rotates by time.
    pub rotation: vigil_logfile::Rotation,
    /// When it rotates by size.
    pub max_bytes: Option<u64>,
    /// Rotated files to keep in `dir`.
    pub keep: usize,
    pub queue_bytes: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            service: "vigil",
            dir: None,
            rotation: vigil_logfile::Rotation::Daily,
            max_bytes: None,
            keep: 7,
            queue_bytes: DEFAULT_QUEUE_BYTES,
        }
    }
}

/// Errors setting up logging.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("invalid log level {level:?}: {message}")]
    Level { level: String, message: String },
    #[error("cannot open log directory {path}: {message}")]
    Dir { path: PathBuf, message: String },
    #[error("logging is already initialised in this process")]
    AlreadyInitialised,
}

/// Parses a level directive the way [`init`] will, so config can be checked early.
pub fn parse_level(level: &str) -> Result<EnvFilter, LogError> {
    // An empty filter parses, and logs nothing but the lifecycle lines: an unset
    // variable (`VIGIL_LOG_LEVEL=`) silenced the service without a word.
    if level.trim().is_empty() {
        return Err(LogError::Level {
            level: level.to_owned(),
            message: "empty (use e.g. info or warn,vigil=debug)".into(),
        });
    }
    // Lifecycle lines (start-up, bound addresses, shutdown) are what operators and
    // tests rely on to find the service: keep them at any level unless told otherwise.
    let full = if level.contains(LIFECYCLE_TARGET) {
        level.to_owned()
    } else {
        format!("{level},{LIFECYCLE_TARGET}=info")
    };
    EnvFilter::builder()
        .parse(&full)
        .map_err(|e| LogError::Level {
            level: level.to_owned(),
            message: e.to_string(),
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum LevelValue {
    error,
    warn,
    info,
    debug,
    trace,
}

impl LevelValue {
    const ALL: [LevelValue; 5] = [
        LevelValue::error,
        LevelValue::warn,
        LevelValue::info,
        LevelValue::debug,
        LevelValue::trace,
    ];

    fn of(level: &Level) -> Self {
        match *level {
            Level::ERROR => LevelValue::error,
            Level::WARN => LevelValue::warn,
            Level::INFO => LevelValue::info,
            Level::DEBUG => LevelValue::debug,
            Level::TRACE => LevelValue::trace,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LevelLabels {
    level: LevelValue,
}

/// Process-wide log counters: every service in the process exposes the same ones.
#[derive(Debug)]
pub struct LogCounters {
    messages: Family<LevelLabels, Counter>,
    /// Each level's series of `messages`, in [`LevelValue::ALL`]'s order, looked up
    /// once: every line counts itself, and a family lookup hashes the labels under a
    /// lock.
    by_level: [Counter; 5],
    dropped: OnceLock<Vec<LineWriter>>,
}

impl LogCounters {
    /// The counters of this process (logging is process-wide, like stdout).
    pub fn global() -> &'static LogCounters {
        static COUNTERS: OnceLock<LogCounters> = OnceLock::new();
        COUNTERS.get_or_init(|| {
            let messages = Family::<LevelLabels, Counter>::default();
            let by_level =
                LevelValue::ALL.map(|level| messages.get_or_create(&LevelLabels { level }).clone());
            LogCounters {
                messages,
                by_level,
                dropped: OnceLock::new(),
            }
        })
    }

    fn count(&self, level: &Level) {
        self.by_level[LevelValue::of(level) as usize].inc();
    }

    /// Lines dropped because an output queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
            .get()
            .map_or(0, |c| c.iter().map(LineWriter::dropped).sum())
    }

    /// Registers `log_messages_total{level}` and `log_messages_dropped_total`.
    pub fn register(&'static self, registry: &mut Registry) {
        registry.register(
            "log_messages",
            "Log lines written, by level",
            self.messages.clone(),
        );
        registry.register_collector(Box::new(DroppedCollector(self)));
        registry.register_collector(Box::new(FileFaultCollector));
    }
}

#[derive(Debug)]
struct DroppedCollector(&'static LogCounters);

impl Collector for DroppedCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counter = ConstCounter::new(self.0.dropped());
        let metric = encoder.encode_descriptor(
            "log_messages_dropped",
            "Log lines dropped because the output queue was full",
            None,
            counter.metric_type(),
        )?;
        counter.encode(metric)
    }
}

/// `log_file_errors_total{operation}`: faults of the log files, every operation's
/// series present from the start.
#[derive(Debug)]
struct FileFaultCollector;

impl Collector for FileFaultCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let faults = vigil_logfile::FileFaults::global();
        let mut family = encoder.encode_descriptor(
            "log_file_errors",
            "Log file faults by operation (a failed write loses the lines it carried; the file is reopened)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for op in vigil_logfile::Operation::ALL {
            let labels = [("operation", op.as_str())];
            let counter = ConstCounter::new(faults.count(op));
            counter.encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// Keeps the writer threads alive; dropping it flushes every queued line, waiting for
/// all outputs together at most [`writer::FINAL_WRITE_LIMIT`]. Hold it for the life of
/// `main`.
#[must_use = "dropping the guard stops logging"]
pub struct LogGuard {
    guards: Vec<WriterGuard>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        // Every output's last write at once, under one deadline: one after the other,
        // a stuck stdout and a slow file would add up.
        self.guards.iter().for_each(WriterGuard::stop);
        let deadline = WriterGuard::deadline();
        for guard in &mut self.guards {
            guard.wait(deadline);
        }
    }
}

impl std::fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogGuard")
    }
}

/// Installs the JSON logger (and a panic hook that logs panics as JSON) for this
/// process. Call once, before anything logs.
pub fn init(config: &LogConfig) -> Result<LogGuard, LogError> {
    init_with_writer(config, Box::new(std::io::stdout()))
}

/// [`init`] with another primary output than stdout (tests capture lines this way).
pub fn init_with_writer(
    config: &LogConfig,
    primary: Box<dyn std::io::Write + Send>,
) -> Result<LogGuard, LogError> {
    let filter = parse_level(&config.level)?;
    let mut writers = Vec::new();
    let mut guards = Vec::new();
    let mut add = |name: &str, sink: Box<dyn std::io::Write + Send>| -> Result<(), LogError> {
        let (writer, guard) =
            writer::spawn(name, config.queue_bytes, sink).map_err(|e| LogError::Dir {
                path: name.into(),
                message: e.to_string(),
            })?;
        writers.push(writer);
        guards.push(guard);
        Ok(())
    };
    add("vigil-log-stdout", primary)?;
    if let Some(dir) = &config.dir {
        let file = vigil_logfile::RotatingFile::open(vigil_logfile::FileConfig {
            dir: dir.clone(),
            rotation: config.rotation,
            max_bytes: config.max_bytes,
            keep: config.keep,
        })
        .map_err(|e| LogError::Dir {
            path: dir.clone(),
            message: e.to_string(),
        })?;
        add("vigil-log-file", Box::new(file))?;
    }
    let log_counters = LogCounters::global();
    log_counters
        .dropped
        .set(writers.clone())
        .map_err(|_| LogError::AlreadyInitialised)?;
    let layer = JsonLayer {
        writers,
        service: config.service,
        counters: log_counters,
    };
    tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init()
        .map_err(|_| LogError::AlreadyInitialised)?;
    install_panic_hook();
    Ok(LogGuard { guards })
}

/// Panics become one ERROR line (with the request id when inside a request) instead of
/// free text on stderr. The middleware turns the panic itself into a 500.
fn install_panic_hook() {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".into());
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_owned();
        tracing::error!(target: "vigil::panic", panic = %payload, location = %location, thread = %thread, "panic");
    }));
}

struct JsonLayer {
    writers: Vec<LineWriter>,
    service: &'static str,
    counters: &'static LogCounters,
}

thread_local! {
    static LINE: RefCell<String> = RefCell::new(String::with_capacity(512));
}

impl<S: Subscriber> Layer<S> for JsonLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        self.counters.count(meta.level());
        LINE.with(|cell| {
            // A re-entrant event (logging while formatting) gets a fresh buffer.
            let mut fresh = String::new();
            let mut borrowed = cell.try_borrow_mut();
            let line = match borrowed.as_mut() {
                Ok(line) => &mut **line,
                Err(_) => &mut fresh,
            };
            line.clear();
            format_line(line, event, self.service);
            for writer in &self.writers {
                // A full buffer drops the line and counts it; nothing here blocks.
                writer.write_line(line.as_bytes());
            }
            if *meta.level() <= Level::WARN {
                crate::recent::RecentEvents::global().push(line);
            }
        });
    }
}

/// Formats one event as a JSON line, ending in `\n`. Fields are written straight into
/// the line (no per-field allocation); `message` is one of them.
fn format_line(line: &mut String, event: &Event<'_>, default_service: &'static str) {
    let meta = event.metadata();
    line.push_str("{\"timestamp\":\"");
    write_timestamp(line);
    line.push_str("\",\"level\":\"");
    line.push_str(meta.level().as_str());
    line.push_str("\",\"target\":");
    push_json_str(line, meta.target());
    let own_service = meta.fields().field("service").is_some();
    let mut visitor = FieldVisitor {
        line: &mut *line,
        has_message: false,
        secrets: SecretFields::of(meta),
    };
    event.record(&mut visitor);
    if !visitor.has_message {
        line.push_str(",\"message\":\"\"");
    }
    context::with_current(|ctx| {
        if !own_service {
            line.push_str(",\"service\":");
            push_json_str(line, ctx.map_or(default_service, |c| c.service));
        }
        if let Some(ctx) = ctx {
            line.push_str(",\"request_id\":");
            push_json_str(line, ctx.request_id.as_str());
            line.push_str(",\"trace_id\":\"");
            line.push_str(ctx.trace_id.as_str());
            line.push('"');
        }
    });
    line.push_str("}\n");
}

/// RFC 3339 UTC with microseconds, e.g. `2026-11-22T21:12:40.123456Z`.
fn write_timestamp(out: &mut String) {
    let now = time::OffsetDateTime::now_utc();
    // Digits by hand: `write!` with padding runs the formatting machinery seven
    // times per line, a visible share of the access line's cost.
    let mut buf = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut value: u32| {
        for i in (at..at + width).rev() {
            buf[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, now.year().clamp(0, 9999) as u32);
    put(5, 2, u32::from(u8::from(now.month())));
    put(8, 2, u32::from(now.day()));
    put(11, 2, u32::from(now.hour()));
    put(14, 2, u32::from(now.minute()));
    put(17, 2, u32::from(now.second()));
    put(20, 6, now.microsecond());
    out.push_str(std::str::from_utf8(&buf).expect("ASCII digits"));
}

/// Appends `s` as a JSON string literal; control characters (CR, LF, ESC…) are escaped.
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    push_escaped(out, s);
    out.push('"');
}

/// Appends `s` JSON-escaped, without quotes.
fn push_escaped(out: &mut String, s: &str) {
    // Nearly every value needs no escape. This whole-string check has no early exit,
    // so the compiler vectorizes it; the byte-by-byte loop below was the largest
    // single cost of the access line (docs/BENCHMARKS.md, "Instructions a request").
    let needs_escape = s.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\') | (b == 0x7f)
    });
    if !needs_escape {
        out.push_str(s);
        return;
    }
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f | 0x7f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// A `fmt::Write` that JSON-escapes into the line, so `Display`/`Debug` values are
/// formatted in place.
struct Escaping<'a>(&'a mut String);

impl std::fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        push_escaped(self.0, s);
        Ok(())
    }
}

/// Names the line itself owns; an event field with one of these names is renamed so
/// it can never overwrite them (`message` and `service` are the event's to set).
const RESERVED: [&str; 5] = ["timestamp", "level", "target", "request_id", "trace_id"];

/// Fields written as a JSON array of strings rather than as one string, so `jq`
/// and `vigil logs` can look for one item: the request ids of a stored batch, the
/// models a rescan loaded, unloaded and kept.
/// The value's `Debug` output must be that array; it is checked and written
/// compactly, so it can never break the line. Anything else is written as a string.
pub const JSON_LIST_FIELDS: [&str; 4] = ["request_ids", "loaded", "unloaded", "kept"];

/// Strings to log as a JSON array, in a field named in [`JSON_LIST_FIELDS`]:
/// `tracing::info!(request_ids = ?JsonList(ids), "records_stored")`.
pub struct JsonList<'a>(pub Vec<&'a str>);

impl<'a> JsonList<'a> {
    /// A list of owned strings, borrowed.
    pub fn of(items: &'a [String]) -> Self {
        Self(items.iter().map(String::as_str).collect())
    }
}

impl std::fmt::Debug for JsonList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&serde_json::to_string(&self.0).map_err(|_| std::fmt::Error)?)
    }
}

fn push_json_list(line: &mut String, value: &dyn std::fmt::Debug) {
    let text = format!("{value:?}");
    match serde_json::from_str::<Vec<String>>(&text) {
        // Re-serialised: compact, one line, escapes as serde_json writes them.
        Ok(items) => line.push_str(&serde_json::to_string(&items).unwrap_or_default()),
        Err(_) => push_json_str(line, &text),
    }
}

struct FieldVisitor<'a> {
    line: &'a mut String,
    has_message: bool,
    secrets: SecretFields,
}

impl FieldVisitor<'_> {
    /// Writes `,"name":` and says whether the value may follow (or was redacted).
    fn key(&mut self, field: &Field) -> bool {
        let name = field.name();
        if name == "message" {
            self.has_message = true;
        }
        self.line.push(',');
        if RESERVED.contains(&name) {
            self.line.push_str("\"field_");
            push_escaped(self.line, name);
            self.line.push('"');
        } else {
            push_json_str(self.line, name);
        }
        self.line.push(':');
        if self.secrets.contains(field) {
            push_json_str(self.line, REDACTED);
            return false;
        }
        true
    }
}

impl Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.key(field) {
            push_json_str(self.line, value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if self.key(field) {
            if JSON_LIST_FIELDS.contains(&field.name()) {
                push_json_list(self.line, value);
                return;
            }
            self.line.push('"');
            let _ = write!(Escaping(self.line), "{value:?}");
            self.line.push('"');
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // The whole chain, outermost first: `a: b: c`.
        if self.key(field) {
            self.line.push('"');
            let mut out = Escaping(self.line);
            let _ = write!(out, "{value}");
            let mut source = value.source();
            while let Some(s) = source {
                let _ = write!(out, ": {s}");
                source = s.source();
            }
            self.line.push('"');
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.key(field) {
            self.line.push_str(itoa::Buffer::new().format(value));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.key(field) {
            self.line.push_str(itoa::Buffer::new().format(value));
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if self.key(field) {
            if value.is_finite() {
                self.line.push_str(ryu::Buffer::new().format_finite(value));
            } else {
                // JSON has no NaN or Infinity: write them as strings.
                push_json_str(self.line, &value.to_string());
            }
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.key(field) {
            self.line.push_str(if value { "true" } else { "false" });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn a_counted_line_moves_its_levels_exported_series() {
        // The per-level counters must be the family's own series, not copies.
        let counters = LogCounters::global();
        let exported = |level| {
            counters
                .messages
                .get_or_create(&LevelLabels { level })
                .get()
        };
        let before = exported(LevelValue::debug);
        counters.count(&Level::DEBUG);
        assert!(exported(LevelValue::debug) > before);
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let before = time::OffsetDateTime::now_utc();
        let mut out = String::new();
        write_timestamp(&mut out);
        assert_eq!(out.len(), "2026-11-22T21:12:40.123456Z".len(), "{out}");
        let parsed =
            time::OffsetDateTime::parse(&out, &time::format_description::well_known::Rfc3339)
                .unwrap();
        let after = time::OffsetDateTime::now_utc();
        // Microseconds: the written instant lies within the interval, truncated.
        assert!(
            parsed >= before - time::Duration::microseconds(1) && parsed <= after,
            "{out}"
        );
        assert!(out.ends_with('Z'));
    }

    /// Captures lines formatted by the real formatter, without the global subscriber.
    struct Capture(Arc<Mutex<Vec<String>>>);

    impl<S: Subscriber> Layer<S> for Capture {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            let mut line = String::new();
            format_line(&mut line, event, "test");
            self.0.lock().unwrap().push(line);
        }
    }

    fn capture(f: impl FnOnce()) -> Vec<serde_json::Value> {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Capture(lines.clone()));
        tracing::subscriber::with_default(subscriber, f);
        let lines = lines.lock().unwrap();
        lines
            .iter()
            .map(|l| {
                assert!(
                    l.ends_with('\n') && l.matches('\n').count() == 1,
                    "one line: {l:?}"
                );
                serde_json::from_str(l).unwrap()
            })
            .collect()
    }

    #[test]
    fn lines_are_flat_json_with_the_contract_fields() {
        let lines = capture(
            || tracing::info!(target: "t", count = 3u64, ratio = 0.5, ok = true, "hello {}", "world"),
        );
        let l = &lines[0];
        assert_eq!(l["message"], "hello world");
        assert_eq!(l["level"], "INFO");
        assert_eq!(l["target"], "t");
        assert_eq!(l["service"], "test");
        assert_eq!(l["count"], 3);
        assert_eq!(l["ratio"], 0.5);
        assert_eq!(l["ok"], true);
        let ts = l["timestamp"].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.len() == 27, "{ts}");
    }

    #[test]
    fn user_text_cannot_break_lines_or_forge_fields() {
        let evil = "x\r\n{\"level\":\"ERROR\"}\u{1b}[31m\"";
        let lines = capture(|| tracing::info!(path = evil, level_x = 1u64, "m"));
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["path"], evil);
        assert_eq!(lines[0]["level"], "INFO");
    }

    #[test]
    fn every_byte_that_needs_an_escape_is_escaped() {
        for (raw, escaped) in [
            ("plain text, ünïcode", "plain text, ünïcode"),
            ("a\"b", "a\\\"b"),
            ("a\\b", "a\\\\b"),
            ("a\tb\n", "a\\tb\\n"),
            ("\u{1}a", "\\u0001a"),
            ("a\u{7f}", "a\\u007f"),
            ("é\u{1f}é", "é\\u001fé"),
        ] {
            let mut out = String::new();
            push_escaped(&mut out, raw);
            assert_eq!(out, escaped, "{raw:?}");
        }
    }

    #[test]
    fn list_fields_are_json_arrays_and_stay_one_line() {
        let ids = vec!["a b", "x\"y", "\r\n{\"level\":\"ERROR\"}\u{1b}"];
        let lines = capture(
            || tracing::info!(request_ids = ?JsonList(ids.clone()), other = ?vec!["a"], "m"),
        );
        assert_eq!(lines[0]["request_ids"], serde_json::json!(ids));
        assert_eq!(lines[0]["level"], "INFO");
        // Only the named fields: any other Debug value is one string.
        assert_eq!(lines[0]["other"], "[\"a\"]");
        // Debug output that is not an array of strings is written as a string.
        let lines = capture(|| tracing::info!(request_ids = ?[1, 2], "m"));
        assert_eq!(lines[0]["request_ids"], "[1, 2]");
    }

    #[test]
    fn reserved_names_are_renamed_and_secrets_redacted() {
        let lines = capture(|| {
            tracing::warn!(timestamp = "fake", password = "hunter2", api_key = "k", "m")
        });
        let l = &lines[0];
        assert_ne!(l["timestamp"], "fake");
        assert_eq!(l["field_timestamp"], "fake");
        assert_eq!(l["password"], REDACTED);
        assert_eq!(l["api_key"], REDACTED);
        assert!(!serde_json::to_string(l).unwrap().contains("hunter2"));
    }

    #[tokio::test]
    async fn request_scope_adds_request_and_trace_ids() {
        let ctx = Arc::new(context::RequestContext::new(
            context::RequestId::parse(b"req-1").unwrap(),
            context::TraceContext::from_headers(&http::HeaderMap::new()),
            "inference",
        ));
        let trace = ctx.trace_id;
        let lines = context::scope(ctx, async { capture(|| tracing::info!("inside")) }).await;
        assert_eq!(lines[0]["request_id"], "req-1");
        assert_eq!(lines[0]["trace_id"], trace.as_str());
        assert_eq!(lines[0]["service"], "inference");
    }

    #[test]
    fn non_finite_floats_stay_valid_json() {
        let lines = capture(|| tracing::info!(v = f64::NAN, "m"));
        assert_eq!(lines[0]["v"], "NaN");
    }
}
