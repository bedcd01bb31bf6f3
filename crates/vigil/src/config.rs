//! One configuration, resolved and checked before any port is bound: defaults, then
//! the TOML file, then `VIGIL_*` variables and flags (clap merges those two).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use vigil_auth::{KeySpec, Keyring};
use vigil_collector::feedback::FeedbackConfig;
use vigil_listener::ListenerConfig;
use vigil_server::Limits;
use vigil_server::router::RouterConfig;
use vigil_telemetry::LogConfig;

use crate::cli::{Cli, Command, ServeArgs};

/// Environment variable names, in one place.
pub mod env {
    pub const CONFIG: &str = "VIGIL_CONFIG";
    pub const HOST: &str = "VIGIL_HOST";
    pub const PORT: &str = "VIGIL_PORT";
    pub const COLLECTOR_PORT: &str = "VIGIL_COLLECTOR_PORT";
    pub const DATABASE_URL: &str = "VIGIL_DATABASE_URL";
    pub const COLLECTOR_URL: &str = "VIGIL_COLLECTOR_URL";
    pub const DATA_DIR: &str = "VIGIL_DATA_DIR";
    pub const MODELS_DIR: &str = "VIGIL_MODELS_DIR";
    pub const DEFAULT_MODEL: &str = "VIGIL_DEFAULT_MODEL";
    pub const LOG_LEVEL: &str = "VIGIL_LOG_LEVEL";
    pub const LOG_DIR: &str = "VIGIL_LOG_DIR";
    pub const LOG_ROTATE: &str = "VIGIL_LOG_ROTATE";
    pub const LOG_MAX_BYTES: &str = "VIGIL_LOG_MAX_BYTES";
    pub const LOG_KEEP: &str = "VIGIL_LOG_KEEP";
    pub const LOG_PAYLOADS: &str = "VIGIL_LOG_PAYLOADS";
    pub const BODY_LIMIT: &str = "VIGIL_BODY_LIMIT_BYTES";
    pub const MAX_BATCH: &str = "VIGIL_MAX_BATCH_SIZE";
    pub const MAX_CONCURRENCY: &str = "VIGIL_MAX_CONCURRENCY";
    pub const MAX_QUEUE: &str = "VIGIL_MAX_QUEUE";
    pub const MAX_UPLOAD_BYTES: &str = "VIGIL_MAX_UPLOAD_BYTES";
    pub const ANALYTICS: &str = "VIGIL_ANALYTICS";
    pub const REQUEST_TIMEOUT_MS: &str = "VIGIL_REQUEST_TIMEOUT_MS";
    pub const HEADER_TIMEOUT_MS: &str = "VIGIL_HEADER_TIMEOUT_MS";
    pub const IDLE_TIMEOUT_MS: &str = "VIGIL_IDLE_TIMEOUT_MS";
    pub const BODY_TIMEOUT_MS: &str = "VIGIL_BODY_TIMEOUT_MS";
    pub const MAX_CONNECTIONS: &str = "VIGIL_MAX_CONNECTIONS";
    pub const HTTP_THREADS: &str = "VIGIL_HTTP_THREADS";
    pub const SLOW_REQUEST_MS: &str = "VIGIL_SLOW_REQUEST_MS";
    pub const SHUTDOWN_GRACE_MS: &str = "VIGIL_SHUTDOWN_GRACE_MS";
    pub const SHUTDOWN_DELAY_MS: &str = "VIGIL_SHUTDOWN_DELAY_MS";
    pub const QUALITY_WINDOW_S: &str = "VIGIL_QUALITY_WINDOW_S";
    pub const FEEDBACK_PENDING_MAX: &str = "VIGIL_FEEDBACK_PENDING_MAX";
    pub const FEEDBACK_PENDING_TTL_S: &str = "VIGIL_FEEDBACK_PENDING_TTL_S";
}

/// The TOML file: the same keys as the flags, with underscores.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    host: Option<String>,
    port: Option<u16>,
    collector_port: Option<u16>,
    collector_url: Option<String>,
    database_url: Option<String>,
    data_dir: Option<PathBuf>,
    models_dir: Option<PathBuf>,
    default_model: Option<String>,
    log_level: Option<String>,
    log_dir: Option<PathBuf>,
    log_rotate: Option<String>,
    log_max_bytes: Option<u64>,
    log_keep: Option<usize>,
    log_payloads: Option<bool>,
    body_limit_bytes: Option<usize>,
    max_batch_size: Option<usize>,
    max_concurrency: Option<usize>,
    max_queue: Option<usize>,
    max_upload_bytes: Option<usize>,
    analytics: Option<bool>,
    request_timeout_ms: Option<u64>,
    header_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    body_timeout_ms: Option<u64>,
    max_connections: Option<usize>,
    http_threads: Option<usize>,
    slow_request_ms: Option<u64>,
    shutdown_grace_ms: Option<u64>,
    shutdown_delay_ms: Option<u64>,
    quality_window_s: Option<u64>,
    feedback_pending_max: Option<u64>,
    feedback_pending_ttl_s: Option<u64>,
    /// API keys (hashes only), beside the data dir's `keys.toml`.
    #[serde(default)]
    keys: Vec<KeySpec>,
}

/// Which services to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Up,
    Serve,
    Collector,
}

/// Everything the process needs, checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    pub host: IpAddr,
    pub port: u16,
    /// The collector's port under `up`.
    pub collector_port: u16,
    /// Where `serve` sends prediction records (none: not forwarded).
    pub collector_url: Option<String>,
    /// PostgreSQL URL; SQLite under `data_dir` when absent.
    pub database_url: Option<String>,
    pub data_dir: PathBuf,
    pub models_dir: Option<PathBuf>,
    pub default_model: Option<String>,
    pub log: LogConfig,
    pub limits: Limits,
    pub router: RouterConfig,
    /// Connection timeouts and cap, the same for every service of the process.
    pub listener: ListenerConfig,
    pub shutdown_grace: Duration,
    /// Time between reporting not-ready and closing the listener.
    pub shutdown_delay: Duration,
    /// The config file's `[[keys]]` (checked); the data dir's key file adds to them.
    pub keys: Vec<KeySpec>,
    /// The collector's ground-truth window and pending-label bounds.
    pub feedback: FeedbackConfig,
}

const MAX_BODY_LIMIT: usize = 1 << 30;
/// Uploads are held in memory while they are checked.
const MAX_UPLOAD_LIMIT: usize = 4 << 30;

impl Config {
    pub fn resolve(cli: &Cli) -> anyhow::Result<Self> {
        let file = match &cli.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let (mode, args) = match &cli.command {
            Command::Up(a) => (Mode::Up, a),
            Command::Serve(a) => (Mode::Serve, a),
            Command::Collector(a) => (Mode::Collector, a),
            Command::Load(_) | Command::Keys(_) | Command::Logs(_) | Command::Models(_) => {
                anyhow::bail!("only the services take a service configuration")
            }
        };
        Self::merge(mode, args, file)
    }

    fn merge(mode: Mode, a: &ServeArgs, f: FileConfig) -> anyhow::Result<Self> {
        let default_host = if mode == Mode::Up {
            "127.0.0.1"
        } else {
            "0.0.0.0"
        };
        let host_text = a
            .host
            .clone()
            .or(f.host)
            .unwrap_or_else(|| default_host.into());
        let host = match host_text.as_str() {
            "localhost" => IpAddr::from([127, 0, 0, 1]),
            other => other
                .parse()
                .with_context(|| format!("host {other:?} is not an IP address"))?,
        };
        let defaults = Limits::default();
        let limits = Limits {
            body_limit: a
                .body_limit_bytes
                .or(f.body_limit_bytes)
                .unwrap_or(defaults.body_limit),
            max_batch: a
                .max_batch_size
                .or(f.max_batch_size)
                .unwrap_or(defaults.max_batch),
            concurrency: a
                .max_concurrency
                .or(f.max_concurrency)
                .unwrap_or(defaults.concurrency),
            max_queue: a.max_queue.or(f.max_queue).unwrap_or(defaults.max_queue),
            log_payloads: a.log_payloads.or(f.log_payloads).unwrap_or(false),
            upload_limit: a
                .max_upload_bytes
                .or(f.max_upload_bytes)
                .unwrap_or(defaults.upload_limit),
        };
        if limits.upload_limit == 0 || limits.upload_limit > MAX_UPLOAD_LIMIT {
            bail!("max_upload_bytes must be between 1 and {MAX_UPLOAD_LIMIT}");
        }
        if limits.body_limit == 0 || limits.body_limit > MAX_BODY_LIMIT {
            bail!("body_limit_bytes must be between 1 and {MAX_BODY_LIMIT}");
        }
        if limits.max_batch == 0 {
            bail!("max_batch_size must be at least 1");
        }
        if limits.concurrency == 0 || limits.concurrency > 1024 {
            bail!("max_concurrency must be between 1 and 1024");
        }
        let timeout_ms = a
            .request_timeout_ms
            .or(f.request_timeout_ms)
            .unwrap_or(30_000);
        let slow_ms = a.slow_request_ms.or(f.slow_request_ms).unwrap_or(500);
        let router = RouterConfig {
            slow_request: Duration::from_millis(slow_ms),
            request_timeout: (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms)),
            analytics: a.analytics.or(f.analytics).unwrap_or(true),
        };
        let listener_defaults = ListenerConfig::default();
        let ms = |flag: Option<u64>, file: Option<u64>, default: Duration| {
            flag.or(file).map_or(default, Duration::from_millis)
        };
        let listener = ListenerConfig {
            header_timeout: ms(
                a.header_timeout_ms,
                f.header_timeout_ms,
                listener_defaults.header_timeout,
            ),
            idle_timeout: ms(
                a.idle_timeout_ms,
                f.idle_timeout_ms,
                listener_defaults.idle_timeout,
            ),
            body_timeout: ms(
                a.body_timeout_ms,
                f.body_timeout_ms,
                listener_defaults.body_timeout,
            ),
            max_connections: a
                .max_connections
                .or(f.max_connections)
                .unwrap_or(listener_defaults.max_connections),
            threads: a
                .http_threads
                .or(f.http_threads)
                .unwrap_or(listener_defaults.threads),
        };
        listener.validate().context(
            "listener settings (header_timeout_ms, idle_timeout_ms, body_timeout_ms, max_connections, http_threads)",
        )?;
        let level = a
            .log_level
            .clone()
            .or(f.log_level)
            .unwrap_or_else(|| "info".into());
        vigil_telemetry::logging::parse_level(&level)?;
        let database_url = a.database_url.clone().or(f.database_url);
        if let Some(url) = &database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            // Never echo the URL: it may carry a password.
            bail!("database_url must be a postgres:// URL (SQLite under data_dir is the default)");
        }
        if let Some(url) = &database_url {
            usable_url("database_url", url)?;
            // Its options too (`sslmode=bogus`): a setting, not a failed start.
            vigil_store::check_postgres_url(url)
                .map_err(|e| anyhow::anyhow!("database_url: {e}"))?;
        }
        let collector_url = a.collector_url.clone().or(f.collector_url);
        if let Some(url) = &collector_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("collector_url must be an http:// or https:// URL");
            }
            usable_url("collector_url", url)?;
            // Records go to `<collector_url>/log`: after a query (`…?token=x/log`) that
            // is another address, and a query's token was logged with the URL.
            if reqwest::Url::parse(url).is_ok_and(|u| u.query().is_some() || u.fragment().is_some())
            {
                bail!(
                    "collector_url must not hold a query or a fragment (records go to <collector_url>/log)"
                );
            }
        }
        // Checked here so a bad entry stops start-up with the config error exit code.
        Keyring::new(&f.keys).context("keys in the config file")?;
        let models_dir = a.models_dir.clone().or(f.models_dir);
        if let Some(dir) = &models_dir
            && !dir.is_dir()
        {
            bail!("models_dir {} is not a directory", dir.display());
        }
        Ok(Self {
            mode,
            host,
            port: a
                .port
                .or(f.port)
                .unwrap_or(if mode == Mode::Collector { 8001 } else { 8000 }),
            collector_port: a.collector_port.or(f.collector_port).unwrap_or(8001),
            database_url,
            collector_url,
            data_dir: a
                .data_dir
                .clone()
                .or(f.data_dir)
                .unwrap_or_else(|| PathBuf::from("data")),
            models_dir,
            default_model: a.default_model.clone().or(f.default_model),
            log: LogConfig {
                level,
                service: "vigil",
                dir: a.log_dir.clone().or(f.log_dir),
                rotation: match a.log_rotate.clone().or(f.log_rotate) {
                    Some(r) => r.parse().map_err(|e| anyhow::anyhow!("{e}"))?,
                    None => LogConfig::default().rotation,
                },
                max_bytes: match a.log_max_bytes.or(f.log_max_bytes) {
                    Some(0) => bail!("log_max_bytes must be at least 1"),
                    other => other,
                },
                keep: a
                    .log_keep
                    .or(f.log_keep)
                    .unwrap_or(LogConfig::default().keep),
                ..LogConfig::default()
            },
            limits,
            router,
            listener,
            shutdown_grace: Duration::from_millis(
                a.shutdown_grace_ms
                    .or(f.shutdown_grace_ms)
                    .unwrap_or(10_000),
            ),
            shutdown_delay: Duration::from_millis(
                a.shutdown_delay_ms.or(f.shutdown_delay_ms).unwrap_or(0),
            ),
            feedback: {
                let default = FeedbackConfig::default();
                let window = a.quality_window_s.or(f.quality_window_s);
                let ttl = a.feedback_pending_ttl_s.or(f.feedback_pending_ttl_s);
                let pending_max = a.feedback_pending_max.or(f.feedback_pending_max);
                if window == Some(0) || ttl == Some(0) || pending_max == Some(0) {
                    bail!(
                        "quality_window_s, feedback_pending_max and feedback_pending_ttl_s must be at least 1"
                    );
                }
                if window.is_some_and(|w| w > 366 * 86_400) {
                    bail!("quality_window_s is at most a year (31622400)");
                }
                FeedbackConfig {
                    quality_window: window.map_or(default.quality_window, Duration::from_secs),
                    pending_max: pending_max.unwrap_or(default.pending_max),
                    pending_ttl: ttl.map_or(default.pending_ttl, Duration::from_secs),
                }
            },
            keys: f.keys,
        })
    }
}

/// What `vigil keys` needs: the data dir (flag or variable, then the file, then
/// `./data`) and the config file's keys.
pub fn key_sources(cli: &Cli, data_dir: Option<&Path>) -> anyhow::Result<(PathBuf, Vec<KeySpec>)> {
    let file = match &cli.config {
        Some(path) => load_file(path)?,
        None => FileConfig::default(),
    };
    Keyring::new(&file.keys).context("keys in the config file")?;
    let dir = data_dir
        .map(Path::to_owned)
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from("data"));
    Ok((dir, file.keys))
}

/// Refuses a URL that does not parse (`http://` with no host, a port over 65535)
/// before any port is bound. The message names the setting and the fault, never the
/// URL: it may carry a password.
fn usable_url(setting: &str, url: &str) -> anyhow::Result<()> {
    match reqwest::Url::parse(url) {
        Ok(_) => Ok(()),
        Err(e) => bail!("{setting} is not a usable URL: {e}"),
    }
}

fn load_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        // toml's own Display quotes the offending line, which may be a database URL
        // with its password: one line with where and what, URL credentials masked.
        let line = e.span().map_or(1, |at| {
            text[..at.start.min(text.len())].matches('\n').count() + 1
        });
        let what = vigil_telemetry::redact::redact_url_userinfo(e.message().trim());
        anyhow::anyhow!("config file {}: line {line}: {what}", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> FileConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn flags_beat_file_beats_defaults() {
        let args = ServeArgs {
            port: Some(9000),
            ..ServeArgs::default()
        };
        let c = Config::merge(Mode::Serve, &args, file("port = 7000\nmax_queue = 3")).unwrap();
        assert_eq!(c.port, 9000);
        assert_eq!(c.limits.max_queue, 3);
        assert_eq!(c.host.to_string(), "0.0.0.0");
        let up = Config::merge(Mode::Up, &ServeArgs::default(), FileConfig::default()).unwrap();
        assert_eq!(up.host.to_string(), "127.0.0.1");
        assert_eq!(up.port, 8000);
    }

    #[test]
    fn bad_values_are_rejected_with_a_reason() {
        for (text, why) in [
            ("host = \"not an ip\"", "host"),
            ("body_limit_bytes = 0", "body_limit_bytes"),
            ("max_batch_size = 0", "max_batch_size"),
            ("log_level = \"info,[[[\"", "log level"),
            ("models_dir = \"/no/such/dir\"", "models_dir"),
        ] {
            let err = Config::merge(Mode::Serve, &ServeArgs::default(), file(text)).unwrap_err();
            assert!(format!("{err:#}").contains(why), "{text}: {err:#}");
        }
    }

    #[test]
    fn unknown_file_keys_are_errors() {
        assert!(toml::from_str::<FileConfig>("prot = 1").is_err());
    }

    #[test]
    fn listener_settings_come_from_flags_then_file_then_defaults() {
        let args = ServeArgs {
            header_timeout_ms: Some(300),
            ..ServeArgs::default()
        };
        let f = file(
            "header_timeout_ms = 5000\nidle_timeout_ms = 1000\nmax_connections = 50\nhttp_threads = 3",
        );
        let c = Config::merge(Mode::Serve, &args, f).unwrap();
        assert_eq!(c.listener.header_timeout, Duration::from_millis(300));
        assert_eq!(c.listener.idle_timeout, Duration::from_secs(1));
        assert_eq!(
            c.listener.body_timeout,
            ListenerConfig::default().body_timeout
        );
        assert_eq!(c.listener.max_connections, 50);
        assert_eq!(c.listener.threads, 3);
        for (text, why) in [
            ("header_timeout_ms = 0", "header_timeout"),
            ("body_timeout_ms = 86400001", "body_timeout"),
            ("max_connections = 0", "max_connections"),
            ("http_threads = 0", "http_threads must be between"),
        ] {
            let err = Config::merge(Mode::Serve, &ServeArgs::default(), file(text)).unwrap_err();
            assert!(format!("{err:#}").contains(why), "{text}: {err:#}");
        }
    }
}
