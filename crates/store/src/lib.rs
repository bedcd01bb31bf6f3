//! Storage for the collector: prediction records (idempotent on `prediction_id`) and
//! incidents opened and resolved by Alertmanager, on SQLite (the default: one WAL file
//! under the data dir) or PostgreSQL. One schema and one migration set serve both, and
//! every query is written once: the `with_pool!` macro instantiates it per backend.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::ConnectOptions as _;
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
pub use vigil_records::{Record, Status};

/// Most records written by one PostgreSQL INSERT statement (15 binds each stays well
/// under its 65,535 bind limit; SQLite's writer binds one row at a time).
pub const INSERT_CHUNK: usize = 1000;
/// Longest a health check waits for the database.
pub const PING_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a PostgreSQL call waits for a connection from the pool.
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a SQLite writer waits for the lock before failing.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// The page size of a SQLite database vigil creates (SQLite's default is 4 KiB). Each
/// prediction row touches the last page of the table and of three indexes, and a
/// page that fills up splits: with 16 KiB pages a record cost SQLite about a fifth
/// less (fewer splits, fewer WAL frames a commit), and the forwarder's thread under
/// `vigil up`'s load about a tenth less (docs/BENCHMARKS.md, "Bigger pages"); 32 and
/// 64 KiB gained nothing more. A database created with another page size keeps it:
/// SQLite changes it only with a `VACUUM` outside WAL mode.
pub const SQLITE_PAGE_SIZE: u32 = 16_384;
/// How much WAL SQLite lets grow before it checkpoints it into the database file: the
/// same hot pages are copied back once per 40 MiB of log instead of once per 4 MiB
/// (SQLite's default). It counts pages, so this is divided by the file's page size.
pub(crate) const SQLITE_CHECKPOINT_BYTES: u32 = 40 << 20;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid database url: {0}")]
    Url(String),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the store is closed")]
    Closed,
    #[error("the database write did not finish: {0}")]
    Interrupted(String),
}

/// A connection pool to one of the two backends.
#[derive(Debug, Clone)]
pub enum Store {
    /// The pool serves every query but one: prediction inserts go through `writer`.
    Sqlite {
        pool: SqlitePool,
        writer: Arc<SqliteWriter>,
    },
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool, so each query is written
/// once and compiled for both backends.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            Store::Sqlite { pool: $pool, .. } => $body,
            Store::Postgres($pool) => $body,
        }
    };
}

/// Begins a transaction that is going to write. On SQLite it takes the write lock at
/// `BEGIN IMMEDIATE`, waiting up to the busy timeout for it: a deferred transaction
/// that reads first cannot take the lock once another connection (the prediction
/// writer, which commits a batch every few milliseconds under load) has committed
/// since its read, and SQLite fails it at once (`SQLITE_BUSY_SNAPSHOT`) instead of
/// waiting.
trait BeginWrite {
    type Db: sqlx::Database;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>;
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }
}

/// The `prediction_id`s a query returns as its only column (an `INSERT … RETURNING
/// prediction_id`: the rows it stored). Runs the built query `$q` on `$exec`, on
/// either backend's connection (written once, inside `with_pool!` or not).
macro_rules! returned_ids {
    ($q:expr, $exec:expr) => {
        $q.build()
            .fetch_all($exec)
            .await?
            .into_iter()
            .map(|row| sqlx::Row::try_get::<String, _>(&row, 0))
            .collect::<Result<std::collections::HashSet<String>, _>>()?
    };
}

mod cards;
mod feedback;
mod incidents;
mod predictions;
mod quality;
mod rank;
mod sqlite_writer;
mod stats;
#[cfg(feature = "test-util")]
pub mod testing;

pub use feedback::{FeedbackStored, Graded, Label, Predicted, Truth};
pub use incidents::{AlertEffect, Incident};
pub use predictions::{Cursor, Filter, Inserted, Page, PageSize};
pub use quality::{
    CALIBRATION_BINS, ConfusionRow, ErrorSums, QualityRows, Ranked, SlotCell, SlotErrors,
    calibration_bin,
};
pub use rank::Quantile;
pub use sqlite_writer::SqliteWriter;
pub use stats::{ModelStats, ValueStats};

/// The connection settings a `postgres://` URL names, or why it names none (an
/// unknown `sslmode`, say). The message never holds the URL: it may carry a password.
fn postgres_options(url: &str) -> Result<PgConnectOptions, StoreError> {
    PgConnectOptions::from_str(url).map_err(|e| StoreError::Url(e.to_string()))
}

/// Checks a PostgreSQL URL without connecting, so a configuration names a URL vigil
/// cannot use before any port is bound.
pub fn check_postgres_url(url: &str) -> Result<(), StoreError> {
    postgres_options(url).map(drop)
}

impl Store {
    /// SQLite database file `vigil.db` under `data_dir` (created if missing).
    pub async fn sqlite(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let options = SqliteConnectOptions::new()
            .filename(data_dir.join("vigil.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            // Rows of a query cross from SQLite's thread in one go instead of waking
            // the async side every 50 rows (sqlx's default).
            .row_buffer_size(INSERT_CHUNK + 1)
            // The pages inserts touch (the ends of the table and its indexes) stay in
            // SQLite's own cache instead of being read back from the OS per statement.
            .pragma("cache_size", "-32768")
            .page_size(SQLITE_PAGE_SIZE)
            // Pool connections write little (labels, cards, incidents): the prediction
            // writer's commits are the ones that checkpoint, with the file's real page
            // size (see `SqliteWriter::open`).
            .pragma(
                "wal_autocheckpoint",
                (SQLITE_CHECKPOINT_BYTES / SQLITE_PAGE_SIZE).to_string(),
            );
        // WAL allows one writer at a time; readers never block it. A small pool keeps
        // writers queueing in the pool rather than spinning on the lock.
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        let writer = Arc::new(SqliteWriter::open(&data_dir.join("vigil.db"))?);
        Ok(Self::Sqlite { pool, writer })
    }

    /// PostgreSQL at `url` (`postgres://…`). The pool connects lazily and reconnects by
    /// itself, so a database that is down at start or later is an error per call, not
    /// a dead collector.
    pub async fn postgres(url: &str) -> Result<Self, StoreError> {
        let options = postgres_options(url)?;
        // The migrations below need the database; when it cannot be reached the lazy
        // pool only says it timed out. Direct connections first say why (refused,
        // authentication, no such database), retried like the pool retries for its
        // acquire timeout (a database starting beside vigil refuses, or says it is
        // starting up, for a moment); a connection that hangs is left to the pool.
        let deadline = tokio::time::Instant::now() + PG_ACQUIRE_TIMEOUT;
        let mut backoff = Duration::from_millis(50);
        loop {
            match tokio::time::timeout_at(deadline, options.connect()).await {
                Ok(Ok(conn)) => {
                    drop(conn.close().await);
                    break;
                }
                Ok(Err(e)) => {
                    let passing = matches!(e, sqlx::Error::Io(_))
                        || e.as_database_error()
                            .is_some_and(|d| d.is_transient_in_connect_phase());
                    if !passing || tokio::time::Instant::now() + backoff >= deadline {
                        return Err(StoreError::Connect(e));
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(_elapsed) => break,
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(PG_ACQUIRE_TIMEOUT)
            .connect_lazy_with(options);
        let store = Self::Postgres(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// Chooses the backend from a URL: `postgres://`/`postgresql://`, else SQLite
    /// under `data_dir`.
    pub async fn open(database_url: Option<&str>, data_dir: &Path) -> Result<Self, StoreError> {
        match database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Self::postgres(url).await
            }
            Some(url) => Err(StoreError::Url(format!(
                "{url:?}: only postgres:// URLs are supported (SQLite is the default)"
            ))),
            None => Self::sqlite(data_dir).await,
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite { .. } => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Applies pending migrations (idempotent).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        with_pool!(self, pool => MIGRATOR.run(pool).await?);
        Ok(())
    }

    /// Whether the database answers right now.
    /// Answers within [`PING_TIMEOUT`], so health probes never hang on a dead database.
    pub async fn ping(&self) -> bool {
        let ping =
            async { with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.is_ok()) };
        tokio::time::timeout(PING_TIMEOUT, ping)
            .await
            .unwrap_or(false)
    }

    /// Whether a write commits right now: the one row of `heartbeat` rewritten, within
    /// [`PING_TIMEOUT`] (twice that with the connection's set-up). A `SELECT 1` answers
    /// from a database that takes no write (its file locked by another process, a full
    /// disk, a read-only volume). The write goes through a connection of its own: on
    /// SQLite one that waits [`PING_TIMEOUT`] for the lock, not the 30 s writes wait;
    /// on PostgreSQL not one of the pool's, which a busy collector may all be using
    /// (the probe would then time out waiting for a connection, not for the database).
    pub async fn write_probe(&self, now_ms: i64) -> Result<(), StoreError> {
        use sqlx::{ConnectOptions, Connection};
        const UPSERT: &str = "INSERT INTO heartbeat (id, at_ms) VALUES (1, $1) \
                              ON CONFLICT (id) DO UPDATE SET at_ms = excluded.at_ms";
        let write = async {
            match self {
                Self::Sqlite { pool, .. } => {
                    let options = pool
                        .connect_options()
                        .as_ref()
                        .clone()
                        .busy_timeout(PING_TIMEOUT);
                    let mut conn = options.connect().await?;
                    let written = sqlx::query(UPSERT).bind(now_ms).execute(&mut conn).await;
                    drop(conn.close().await);
                    written?;
                }
                Self::Postgres(pool) => {
                    let mut conn = pool.connect_options().connect().await?;
                    let written = sqlx::query(UPSERT).bind(now_ms).execute(&mut conn).await;
                    drop(conn.close().await);
                    written?;
                }
            }
            Ok(())
        };
        tokio::time::timeout(PING_TIMEOUT * 2, write)
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Interrupted(format!(
                    "the write probe did not finish within {:?}",
                    PING_TIMEOUT * 2
                )))
            })
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        if let Self::Sqlite { writer, .. } = self {
            // Waits for a write in progress (the forwarder's last batch, at shutdown):
            // on a blocking thread, not an async worker.
            let writer = writer.clone();
            let _ = tokio::task::spawn_blocking(move || writer.close()).await;
        }
        with_pool!(self, pool => pool.close().await);
    }
}
