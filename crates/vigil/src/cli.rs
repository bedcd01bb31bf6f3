//! The command line. Every option also reads a `VIGIL_*` environment variable (names in
//! [`crate::config::env`]); flags win over the environment, which wins over the file.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::env;

#[derive(Debug, Parser)]
#[command(
    name = "vigil",
    version,
    about = "An ONNX model server with production-grade monitoring built in."
)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = env::CONFIG)]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Everything on embedded defaults: bundled models, data under ./data, 127.0.0.1:8000.
    Up(ServeArgs),
    /// The inference service alone (0.0.0.0:8000 by default).
    Serve(ServeArgs),
    /// The prediction-logging service alone (0.0.0.0:8001 by default).
    Collector(ServeArgs),
    /// Traffic generator: good, invalid and drifted prediction requests at a set rate.
    /// Prints a JSON report; exits 1 if any answer broke the API contract.
    Load(LoadArgs),
    /// API keys: create (printed once), list (names and roles, never keys), revoke.
    Keys(KeysArgs),
    /// Model directories: write one from an ONNX file and its training data (`init`),
    /// or check one exactly as start-up and uploads load it (`check`).
    Models(ModelsArgs),
    /// Reads vigil's JSON logs (files, globs, rotated .gz files, or stdin) in time order:
    /// filters, readable or JSON output, aggregates, --follow.
    Logs(vigil_logs::LogsArgs),
}

/// `vigil models`.
#[derive(Debug, Args, Clone)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub action: ModelsAction,
}

#[derive(Debug, Subcommand, Clone)]
pub enum ModelsAction {
    /// Write a model directory (the ONNX file and a complete model.toml) from an ONNX
    /// file and its training CSV: feature names and ranges, the drift reference, the
    /// expected prediction mix, and with --label-column the baseline accuracy.
    Init(InitArgs),
    /// Load and validate a model directory exactly as start-up and the upload endpoint
    /// do; print what it holds, or each problem with its fix (exit status 1).
    Check {
        /// The directory holding model.onnx and model.toml.
        dir: PathBuf,
    },
}

/// Options of `vigil models init`.
#[derive(Debug, Args, Clone)]
pub struct InitArgs {
    /// The exported model.
    #[arg(long)]
    pub onnx: PathBuf,
    /// Training data: a CSV with a header of feature names (the model's input order).
    #[arg(long)]
    pub data: PathBuf,
    /// The CSV column holding the true labels, or a regressor's true values (left out
    /// of the features).
    #[arg(long)]
    pub label_column: Option<String>,
    /// The model's name (default: the ONNX file's name).
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, default_value = "1")]
    pub version: String,
    /// classification or regression (default: classification when the model names
    /// its classes).
    #[arg(long)]
    pub task: Option<vigil_model::Task>,
    /// The class labels in the model's order (default: those the ONNX file stores).
    #[arg(long, value_delimiter = ',')]
    pub labels: Option<Vec<String>>,
    /// Where to write the directory (default: ./NAME); must not exist or be empty.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Options of `vigil keys`.
#[derive(Debug, Args, Clone)]
pub struct KeysArgs {
    /// The data dir whose `keys.toml` holds the keys (as for `vigil up`; default ./data).
    #[arg(long, global = true, env = env::DATA_DIR)]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub action: KeysAction,
}

#[derive(Debug, Subcommand, Clone)]
pub enum KeysAction {
    /// Make a key: prints it once, stores its hash in the data dir's `keys.toml`, and
    /// prints the `[[keys]]` entry for a config file.
    Create {
        /// The caller's identity in logs, usage stats and audit events.
        #[arg(long)]
        name: String,
        /// `admin` (everything) or `predict` (prediction endpoints only).
        #[arg(long)]
        role: vigil_auth::Role,
        /// Print the key and its config entry without storing anything.
        #[arg(long)]
        print_only: bool,
    },
    /// The keys a service on this config and data dir accepts: names, roles, where
    /// each is defined. Never the keys.
    List {
        /// One JSON object per key instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a key from the data dir's `keys.toml`; running services stop accepting
    /// it within seconds.
    Revoke {
        #[arg(long)]
        name: String,
    },
}

/// Options of `vigil load`.
#[derive(Debug, Args, Clone)]
pub struct LoadArgs {
    /// Inference service to drive.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub target: String,
    /// Model to send to (`/models/{name}/predict`); the default model via `/predict` otherwise.
    #[arg(long)]
    pub model: Option<String>,
    /// Requests per second.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// How long to run: 30s, 5m, 500ms, … (neither this nor --requests: until Ctrl-C)
    #[arg(long, value_parser = vigil_load::parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Stop after this many requests (with --duration: whichever comes first).
    #[arg(long)]
    pub requests: Option<u64>,
    /// Share of invalid requests (0–1): wrong feature count, NaN, strings, bad JSON, …
    #[arg(long, default_value_t = 0.0)]
    pub invalid: f64,
    /// Share of drifted requests (0–1): inputs above the training distribution.
    #[arg(long, default_value_t = 0.0)]
    pub drifted: f64,
    /// Rows per request.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Seed of the input generator (same seed, same requests).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Share of answered rows (0–1) that get a ground-truth label at the collector's
    /// `POST /feedback`; the answer is taken as the truth (see --label-noise).
    #[arg(long)]
    pub feedback: Option<f64>,
    /// Share of those labels (0–1) that are wrong, to simulate a decaying model:
    /// measured accuracy becomes 1 − P.
    #[arg(long, default_value_t = 0.0, requires = "feedback")]
    pub label_noise: f64,
    /// How long after its answer each label is sent: 30s, 5m, … (the run waits for the last).
    #[arg(long, value_parser = vigil_load::parse_duration, default_value = "0s", requires = "feedback")]
    pub feedback_delay: std::time::Duration,
    /// Collector that takes the labels [default: the target's host, the port after
    /// the target's: `vigil up`'s collector].
    #[arg(long)]
    pub collector: Option<String>,
    /// API key sent as `Authorization: Bearer` with every prediction (needed once the
    /// service has a `predict` key); read from VIGIL_API_KEY when not given.
    #[arg(long, env = "VIGIL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

/// Options of the services. `None` means "not given here": the file or default decides.
#[derive(Debug, Args, Clone, Default)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = env::HOST)]
    pub host: Option<String>,
    /// Port of the service (0 picks a free one; the bound address is logged).
    #[arg(long, env = env::PORT)]
    pub port: Option<u16>,
    /// Port of the collector under `vigil up`.
    #[arg(long, env = env::COLLECTOR_PORT)]
    pub collector_port: Option<u16>,
    /// Collector to send prediction records to (`serve`); `up` uses its own.
    // `--help` would print the environment's value, password and all.
    #[arg(long, env = env::COLLECTOR_URL, hide_env_values = true)]
    pub collector_url: Option<String>,
    /// PostgreSQL for the collector (`postgres://…`); SQLite under the data dir otherwise.
    #[arg(long, env = env::DATABASE_URL, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory for data (databases, spool, generated keys).
    #[arg(long, env = env::DATA_DIR)]
    pub data_dir: Option<PathBuf>,
    /// Directory of models (`<name>/model.onnx` + `model.toml`); the bundled models otherwise.
    #[arg(long, env = env::MODELS_DIR)]
    pub models_dir: Option<PathBuf>,
    /// Model answering `/predict` when the request names none.
    #[arg(long, env = env::DEFAULT_MODEL)]
    pub default_model: Option<String>,
    /// Log filter: `info`, `warn`, `info,vigil::access=warn`, …
    #[arg(long, env = env::LOG_LEVEL)]
    pub log_level: Option<String>,
    /// Also write JSON log files here (`vigil.log`, rotated files gzipped beside it).
    #[arg(long, env = env::LOG_DIR)]
    pub log_dir: Option<PathBuf>,
    /// Rotate log files by time: `hourly`, `daily` (UTC; the default) or `never`.
    #[arg(long, env = env::LOG_ROTATE)]
    pub log_rotate: Option<String>,
    /// Also rotate a log file before it would pass this many bytes.
    #[arg(long, env = env::LOG_MAX_BYTES)]
    pub log_max_bytes: Option<u64>,
    /// Rotated log files kept (default 7); older ones are deleted.
    #[arg(long, env = env::LOG_KEEP)]
    pub log_keep: Option<usize>,
    /// Log request bodies (secrets redacted).
    #[arg(long, env = env::LOG_PAYLOADS)]
    pub log_payloads: Option<bool>,
    /// Largest request body in bytes.
    #[arg(long, env = env::BODY_LIMIT)]
    pub body_limit_bytes: Option<usize>,
    /// Most instances in one prediction request.
    #[arg(long, env = env::MAX_BATCH)]
    pub max_batch_size: Option<usize>,
    /// Inference slots (models running at once).
    #[arg(long, env = env::MAX_CONCURRENCY)]
    pub max_concurrency: Option<usize>,
    /// Requests that may wait for an inference slot before 503.
    #[arg(long, env = env::MAX_QUEUE)]
    pub max_queue: Option<usize>,
    /// Largest model upload (`POST /admin/models/{name}`) in bytes.
    #[arg(long, env = env::MAX_UPLOAD_BYTES)]
    pub max_upload_bytes: Option<usize>,
    /// Keep request analytics for `/admin/performance` and `/admin/usage`.
    #[arg(long, env = env::ANALYTICS)]
    pub analytics: Option<bool>,
    /// Requests running longer are answered 503 (0 disables).
    #[arg(long, env = env::REQUEST_TIMEOUT_MS)]
    pub request_timeout_ms: Option<u64>,
    /// A connection whose request head is not complete this long after it opened (or
    /// after its first byte, on a keep-alive connection) is closed.
    #[arg(long, env = env::HEADER_TIMEOUT_MS)]
    pub header_timeout_ms: Option<u64>,
    /// A keep-alive connection with no request in progress is closed after this.
    #[arg(long, env = env::IDLE_TIMEOUT_MS)]
    pub idle_timeout_ms: Option<u64>,
    /// A connection whose request body stops coming (or that stops reading the
    /// response) for this long is closed.
    #[arg(long, env = env::BODY_TIMEOUT_MS)]
    pub body_timeout_ms: Option<u64>,
    /// Open connections per service at most; more are closed on arrival.
    #[arg(long, env = env::MAX_CONNECTIONS)]
    pub max_connections: Option<usize>,
    /// Threads serving the inference service's connections (default: one per CPU this
    /// process may use); a connection stays on one of them from accept to close.
    #[arg(long, env = env::HTTP_THREADS)]
    pub http_threads: Option<usize>,
    /// Requests slower than this log a `slow_request` warning.
    #[arg(long, env = env::SLOW_REQUEST_MS)]
    pub slow_request_ms: Option<u64>,
    /// How long shutdown waits for in-flight requests.
    #[arg(long, env = env::SHUTDOWN_GRACE_MS)]
    pub shutdown_grace_ms: Option<u64>,
    /// On SIGTERM, report not-ready for this long before closing the listener (give
    /// Kubernetes time to stop routing here).
    #[arg(long, env = env::SHUTDOWN_DELAY_MS)]
    pub shutdown_delay_ms: Option<u64>,
    /// The collector's quality gauges cover the ground-truth labels of this many
    /// seconds (by label time).
    #[arg(long, env = env::QUALITY_WINDOW_S)]
    pub quality_window_s: Option<u64>,
    /// Most labels the collector keeps waiting for their prediction; past it the
    /// oldest are dropped (counted).
    #[arg(long, env = env::FEEDBACK_PENDING_MAX)]
    pub feedback_pending_max: Option<u64>,
    /// How long a label waits for its prediction before it is dropped (counted).
    #[arg(long, env = env::FEEDBACK_PENDING_TTL_S)]
    pub feedback_pending_ttl_s: Option<u64>,
}
