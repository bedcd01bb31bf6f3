//! The command-line flags of `vigil logs` (clap derive), to be flattened into the
//! binary's subcommand.

use crate::level::Level;

/// What `--count-by` groups lines by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CountBy {
    Level,
    Route,
    Status,
    Minute,
    User,
}

/// Query vigil's JSON log files: filter, merge in time order, print or aggregate.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LogsArgs {
    /// Log files (plain or gzip) or glob patterns; none or `-` reads stdin.
    pub files: Vec<String>,

    /// Minimum level: `warn` keeps WARN and ERROR.
    #[arg(long, value_enum, ignore_case = true)]
    pub level: Option<Level>,
    /// Only lines of this service (`inference`, `collector`, `vigil`).
    #[arg(long)]
    pub service: Option<String>,
    #[arg(long)]
    pub request_id: Option<String>,
    #[arg(long)]
    pub trace_id: Option<String>,
    #[arg(long)]
    pub user: Option<String>,
    /// Route template, exactly (`/predict`, `/models/{name}`).
    #[arg(long)]
    pub route: Option<String>,
    /// Status or class; repeatable or comma-separated: `500`, `5xx`, `4xx`.
    #[arg(long, value_delimiter = ',')]
    pub status: Vec<String>,
    /// HTTP method (any case).
    #[arg(long)]
    pub method: Option<String>,
    /// A duration back from now (`15m`, `2h`) or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// An RFC 3339 time (exclusive).
    #[arg(long)]
    pub until: Option<String>,
    /// Minimum `duration_ms`.
    #[arg(long, value_name = "MS", value_parser = milliseconds)]
    pub min_duration: Option<f64>,
    /// The exact `message` (event name), e.g. `request_completed`.
    #[arg(long)]
    pub message: Option<String>,
    /// `key=value` on any top-level field, compared as text; repeatable (all must hold).
    #[arg(long = "where", value_name = "KEY=VALUE")]
    pub where_: Vec<String>,

    /// A readable one-line form: `TIME LEVEL service message key=value ...`.
    #[arg(long, conflicts_with = "json")]
    pub pretty: bool,
    /// One normalised JSON object per line (also the form of aggregates).
    #[arg(long)]
    pub json: bool,

    /// Count matching lines by a key.
    #[arg(long, value_enum)]
    pub count_by: Option<CountBy>,
    /// p50/p95/p99 of `duration_ms` of access lines, by route.
    #[arg(long)]
    pub latency: bool,
    /// The N slowest access lines.
    #[arg(long, value_name = "N")]
    pub slowest: Option<usize>,
    /// Lines with level ERROR or status >= 500, per minute.
    #[arg(long)]
    pub errors_per_minute: bool,
    /// The N most frequent error codes (`error_code`, else `error`, else the message of
    /// ERROR lines).
    #[arg(long, value_name = "N")]
    pub top_errors: Option<usize>,

    /// Keep reading the last file as it grows, across rotations, until interrupted.
    #[arg(long, short = 'f')]
    pub follow: bool,
}

impl LogsArgs {
    /// True when an aggregate is asked for: lines are then counted, not printed.
    pub fn aggregating(&self) -> bool {
        self.count_by.is_some()
            || self.latency
            || self.slowest.is_some()
            || self.errors_per_minute
            || self.top_errors.is_some()
    }
}

/// A duration in milliseconds a filter can compare with: a finite number, not negative
/// (`NaN` would match no line, and say nothing of why).
fn milliseconds(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(ms) if ms.is_finite() && ms >= 0.0 => Ok(ms),
        _ => Err("expected milliseconds, a number of 0 or more such as 250".into()),
    }
}
