//! Starting the prediction-logging service (`vigil collector`, and half of `vigil up`):
//! open the store (migrations applied), probe it, bind, serve.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use vigil_collector::{CollectorConfig, CollectorState};
use vigil_store::Store;

use super::{LIFECYCLE, Running, bind};
use crate::config::{Config, Mode};

/// A started collector.
pub(super) struct Collector {
    pub state: CollectorState,
    pub address: SocketAddr,
    /// Keeps `logging_db_initialized` current.
    probe: tokio::task::JoinHandle<()>,
}

impl Collector {
    /// After the service has drained: stop probing, close the pool.
    pub async fn close(self) {
        self.probe.abort();
        self.state.store.close().await;
    }
}

pub(super) async fn start(
    config: &Config,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(Collector, Running)> {
    let store = Store::open(config.database_url.as_deref(), &config.data_dir)
        .await
        .context("cannot open the prediction database")?;
    let state = CollectorState::new(
        store,
        CollectorConfig {
            slow_request: config.router.slow_request,
            request_timeout: config.router.request_timeout,
            feedback: config.feedback.clone(),
            ..CollectorConfig::default()
        },
    );
    if !state.probe_database().await {
        tracing::warn!(target: LIFECYCLE, backend = state.store.backend(), "database_unreachable_at_start");
    }
    // Cards, pending labels and the quality window, before the first request; the
    // probe retries while the database is away.
    if let Err(e) = state.load_feedback().await {
        tracing::warn!(target: LIFECYCLE, error = %e, "feedback_load_failed");
    }
    let probe = state.spawn_probe(Duration::from_secs(5));
    let port = if config.mode == Mode::Up {
        config.collector_port
    } else {
        config.port
    };
    let listener = bind("collector", config.host, port).await?;
    let address = listener.local_addr()?;
    let done = tokio::spawn(vigil_listener::serve(
        listener,
        vigil_collector::app(state.clone()),
        config.listener,
        // On the shared runtime: the collector's handlers open database connections,
        // which belong to the runtime that opened them and would end with a
        // connection thread (vigil_listener::Placement).
        vigil_listener::Placement::Runtime,
        state.http.connections.clone(),
        vigil_telemetry::malformed::Malformed::new("collector"),
        stop,
    ));
    Ok((
        Collector {
            state,
            address,
            probe,
        },
        Running {
            service: "collector",
            done,
        },
    ))
}
