//! SIGTERM and SIGINT: a graceful shutdown, from the moment start-up begins; a second
//! SIGINT during it forces the exit.

use anyhow::Context;

/// SIGTERM and SIGINT handlers, installed before any port is bound: a signal that
/// arrives right after the `listening` line must start a graceful shutdown, not kill
/// the process with the default action.
pub(super) struct ShutdownSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    pub(super) fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
        })
    }

    /// Resolves at the next SIGINT: during a graceful shutdown, a second Ctrl-C
    /// forces the exit (a repeated SIGTERM does not: orchestrators may send it again
    /// while they wait).
    pub(super) async fn interrupt(&mut self) {
        self.int.recv().await;
    }

    /// Resolves with the name of the signal that asked us to stop.
    pub(super) async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
