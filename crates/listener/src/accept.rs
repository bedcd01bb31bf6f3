//! The accept loop: one task per connection, a cap on how many are open, accept errors
//! that neither stop the service nor spin it, and graceful shutdown (stop accepting,
//! let every connection finish its current response, return when the last one has
//! closed; the caller bounds how long it waits).

use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::ListenerConfig;
use crate::malformed::MalformedAnswer;
use crate::metrics::{CloseReason, ConnectionMetrics};
use crate::threads::{ConnectionThreads, FDS_PER_THREAD, Placement, Shared};

/// After an accept error that is not about one connection (out of file descriptors or
/// memory), wait this long before trying again: retrying at once would spin on the
/// same error while the pending connection stays in the backlog.
const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// At most one `connection_limit_reached` line per this, so a flood of refusals
/// cannot flood the log too.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// The target of vigil's lifecycle lines (`vigil_telemetry::logging::LIFECYCLE_TARGET`;
/// telemetry depends on this crate, not the other way round). Whether a service can
/// take connections belongs there: those lines are kept at every log level, and each
/// of these is one-off or rate-limited.
pub(crate) const LIFECYCLE: &str = "vigil::lifecycle";

/// File descriptors kept for everything but client connections (listeners, database
/// pool, spool, log files, the runtime's own) when checking `max_connections`
/// against the process limit.
const RESERVED_FDS: u64 = 64;

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting, lets
/// every open connection finish the request it is serving (idle keep-alive connections
/// close at once, busy ones after their response) and returns when all are closed.
/// Accept errors are logged and retried, never returned. A request hyper cannot parse
/// is answered with `malformed`'s answer instead of hyper's own. `placement` says where
/// connections run (see [`Placement`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: ListenerConfig,
    placement: Placement,
    metrics: ConnectionMetrics,
    malformed: Arc<dyn MalformedAnswer>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let reserved = match placement {
        Placement::Threads { .. } => RESERVED_FDS + FDS_PER_THREAD * config.threads as u64,
        Placement::Runtime => RESERVED_FDS,
    };
    check_fd_limit(config.max_connections, reserved);
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a receiver: the count is the number of open
    // connections, and `closed()` resolves when the last one ends.
    let (open, _) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    let mut refusals = Refusals::default();
    let shared = Shared {
        router,
        config,
        malformed,
        stop: stop_rx,
    };
    let threads = match placement {
        Placement::Threads { name } => {
            match ConnectionThreads::start(config.threads, name, shared.clone()) {
                Ok(threads) => Some(threads),
                Err(e) => {
                    // Connections are then served on the caller's runtime.
                    tracing::error!(target: LIFECYCLE, error = %e, "connection_threads_failed");
                    None
                }
            }
        }
        Placement::Runtime => None,
    };
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_about_one_connection(&e) => continue,
            Err(e) => {
                tracing::error!(target: LIFECYCLE, error = %e, backoff_ms = ACCEPT_BACKOFF.as_millis() as u64, "accept_failed");
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        if open.receiver_count() >= config.max_connections {
            // Closed on arrival: cheaper for both sides than leaving it in the backlog,
            // and the client learns at once.
            drop(stream);
            metrics.refused();
            refusals.note(config.max_connections);
            continue;
        }
        let guard = OpenConnection {
            metrics: metrics.clone(),
            reason: CloseReason::error,
            _open: open.subscribe(),
        };
        guard.metrics.connection_opened();
        match &threads {
            Some(threads) => threads.dispatch(stream, remote, guard),
            None => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let mut guard = guard;
                    guard.reason = shared.run(stream, remote).await;
                });
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    open.closed().await;
    // Stops and joins the connection threads: at once, every connection has closed.
    drop(threads);
}

/// Counts a connection as open until its task ends, however it ends: a panic is
/// counted as `error`.
pub(crate) struct OpenConnection {
    metrics: ConnectionMetrics,
    pub(crate) reason: CloseReason,
    _open: watch::Receiver<()>,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.metrics.connection_closed(self.reason);
    }
}

/// Errors that concern the connection being accepted, not the listener: go on at once.
fn is_about_one_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

#[derive(Default)]
struct Refusals {
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl Refusals {
    fn note(&mut self, max_connections: usize) {
        self.unlogged += 1;
        let now = Instant::now();
        if self
            .last_logged
            .is_none_or(|t| now.duration_since(t) >= REFUSAL_LOG_EVERY)
        {
            tracing::warn!(
                target: LIFECYCLE,
                max_connections,
                refused = self.unlogged,
                "connection_limit_reached"
            );
            self.last_logged = Some(now);
            self.unlogged = 0;
        }
    }
}

/// Warns when `max_connections` cannot be reached before the process runs out of file
/// descriptors: then the cap does not protect anything, and accept (and every file
/// open) fails with EMFILE first.
fn check_fd_limit(max_connections: usize, reserved: u64) {
    let Some(limit) = open_files_limit() else {
        return;
    };
    if (max_connections as u64).saturating_add(reserved) > limit {
        tracing::warn!(
            target: LIFECYCLE,
            max_connections,
            fd_limit = limit,
            reserved_fds = reserved,
            "max_connections_above_fd_limit"
        );
    }
}

/// The soft `RLIMIT_NOFILE`, from `/proc/self/limits` (no `unsafe` getrlimit); `None`
/// where that file does not exist or says `unlimited`.
fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_files_limit(&text)
}

fn parse_open_files_limit(limits: &str) -> Option<u64> {
    const KEY: &str = "Max open files";
    let line = limits.lines().find(|l| l.starts_with(KEY))?;
    line[KEY.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_fd_limit_is_read_from_proc_limits() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max processes             63431                63431                processes \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(parse_open_files_limit(text), Some(1024));
        assert_eq!(
            parse_open_files_limit(
                "Max open files            unlimited            unlimited            files\n"
            ),
            None
        );
        assert_eq!(parse_open_files_limit(""), None);
    }
}
