//! Start-up and shutdown: logging first, then the services the mode asks for (`up`:
//! collector and inference service in one process; `serve`; `collector`), each bound
//! and logged with its real address; on SIGTERM/SIGINT report not-ready, stop
//! accepting, drain in-flight requests within the grace period, log the outcome and
//! flush the logs.

use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use vigil_collector::{CollectorConfig, CollectorState};
use vigil_forwarder::{Forwarder, ForwarderConfig, HttpDelivery};
use vigil_model::ModelRegistry;
use vigil_server::{AppState, app, serve};
use vigil_store::Store;

use crate::config::{Config, Mode};

mod local_delivery;

/// Model loads slower than this log a warning (start-up time is a deployment SLO).
const SLOW_MODEL_LOAD: Duration = Duration::from_secs(5);

/// Start-up and shutdown lines: logged at every level (see `vigil_telemetry::logging`).
const LIFECYCLE: &str = vigil_telemetry::logging::LIFECYCLE_TARGET;

pub fn run(config: Config) -> anyhow::Result<()> {
    let guard = vigil_telemetry::logging::init(&config.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("vigil-worker")
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(run_services(config));
    if let Err(e) = &result {
        tracing::error!(target: LIFECYCLE, error = %format!("{e:#}"), "fatal");
    }
    // Let blocking inference tasks finish, then flush the log queue.
    runtime.shutdown_timeout(Duration::from_millis(500));
    drop(guard);
    result
}

/// A running HTTP service: its name, and the future that ends when it has drained.
struct Running {
    service: &'static str,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Binds `host:port` and logs the real address (port 0 picks a free one).
async fn bind(
    service: &'static str,
    host: std::net::IpAddr,
    port: u16,
) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind((host, port))
        .await
        .with_context(|| format!("cannot listen on {host}:{port} ({service})"))?;
    let address = listener.local_addr()?;
    tracing::info!(target: LIFECYCLE, service, address = %address, "listening");
    Ok(listener)
}

async fn run_services(config: Config) -> anyhow::Result<()> {
    tracing::info!(
        target: LIFECYCLE,
        version = vigil_server::VERSION,
        mode = ?config.mode,
        host = %config.host,
        port = config.port,
        collector_port = config.collector_port,
        data_dir = %config.data_dir.display(),
        models_dir = %config.models_dir.as_ref().map_or("bundled".into(), |d| d.display().to_string()),
        database = if config.database_url.is_some() { "postgres" } else { "sqlite" },
        body_limit_bytes = config.limits.body_limit,
        max_batch_size = config.limits.max_batch,
        max_concurrency = config.limits.concurrency,
        max_queue = config.limits.max_queue,
        request_timeout_ms = config.router.request_timeout.map_or(0, |d| d.as_millis() as u64),
        slow_request_ms = config.router.slow_request.as_millis() as u64,
        log_level = %config.log.level,
        log_payloads = config.limits.log_payloads,
        "starting"
    );
    let mut signals = ShutdownSignals::install()?;
    // Two stop signals: the inference service drains first, then its forwarder
    // flushes to the collector, and only then does the collector stop.
    let (stop_inference, inference_stop) = tokio::sync::watch::channel(false);
    let (stop_collector, collector_stop) = tokio::sync::watch::channel(false);
    let until = |rx: &tokio::sync::watch::Receiver<bool>| {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let mut running = Vec::new();

    // The collector first, so `up`'s inference service has somewhere to send records.
    let mut collector = None;
    if matches!(config.mode, Mode::Up | Mode::Collector) {
        let store = Store::open(config.database_url.as_deref(), &config.data_dir)
            .await
            .context("cannot open the prediction database")?;
        let state = CollectorState::new(
            store,
            CollectorConfig {
                slow_request: config.router.slow_request,
                request_timeout: config.router.request_timeout,
                ..CollectorConfig::default()
            },
        );
        if !state.probe_database().await {
            tracing::warn!(target: LIFECYCLE, backend = state.store.backend(), "database_unreachable_at_start");
        }
        let probe = state.spawn_probe(Duration::from_secs(5));
        let port = if config.mode == Mode::Up {
            config.collector_port
        } else {
            config.port
        };
        let listener = bind("collector", config.host, port).await?;
        let address = listener.local_addr()?;
        let done = tokio::spawn(serve(
            listener,
            vigil_collector::app(state.clone()),
            until(&collector_stop),
        ));
        running.push(Running {
            service: "collector",
            done,
        });
        collector = Some((state, probe, address));
    }

    let mut inference = None;
    let mut forwarder = None;
    if matches!(config.mode, Mode::Up | Mode::Serve) {
        let models = load_models(&config)?;
        let state = AppState::new(models, config.limits.clone());
        let listener = bind("inference", config.host, config.port).await?;
        let address = listener.local_addr()?;
        // `up` stores records in process; `serve` posts them to `--collector-url`.
        let spool = config.data_dir.join("spool");
        let forwarder_config = ForwarderConfig::new(&spool);
        let started = match (&collector, &config.collector_url) {
            (Some((collector, ..)), _) => {
                let delivery = local_delivery::LocalDelivery::new(
                    collector.clone(),
                    tokio::runtime::Handle::current(),
                );
                Some((
                    "in process".to_owned(),
                    Forwarder::start(forwarder_config, state.forwarder_metrics.clone(), delivery),
                ))
            }
            (None, Some(url)) => {
                let delivery = HttpDelivery::new(url)
                    .map_err(|e| anyhow::anyhow!("invalid collector url {url:?}: {e}"))?;
                Some((
                    url.clone(),
                    Forwarder::start(forwarder_config, state.forwarder_metrics.clone(), delivery),
                ))
            }
            (None, None) => None,
        };
        if let Some((to, result)) = started {
            let (handle, task) = result.with_context(|| {
                format!(
                    "cannot start the prediction forwarder (spool {})",
                    spool.display()
                )
            })?;
            let _ = state.forwarder.set(handle);
            tracing::info!(target: LIFECYCLE, collector = %to, spool = %spool.display(), "forwarding_predictions");
            forwarder = Some(task);
        }
        let done = tokio::spawn(serve(
            listener,
            app(state.clone(), config.router.clone()),
            until(&inference_stop),
        ));
        running.push(Running {
            service: "inference",
            done,
        });
        if config.mode == Mode::Up {
            let collector_address = collector
                .as_ref()
                .map(|(_, _, a)| a.to_string())
                .unwrap_or_default();
            eprintln!(
                "vigil is up: http://{address}\n  predict:   curl -s -XPOST http://{address}/predict -H 'content-type: application/json' -d '{{\"features\": [70, 250, 2.5, 45, 1500, 12]}}'\n  models:    http://{address}/models\n  health:    http://{address}/health\n  metrics:   http://{address}/metrics\n  api:       http://{address}/openapi.json\n  collector: http://{collector_address}/predictions  /stats  /incidents  /metrics"
            );
        }
        inference = Some(state);
    }

    // Run until a signal, or until a service fails on its own.
    let reason = {
        let watch_all = futures_first_exit(&mut running);
        tokio::select! {
            failed = watch_all => {
                let (service, result) = failed;
                return Err(anyhow::anyhow!("the {service} service stopped unexpectedly: {result}"));
            }
            reason = signals.recv() => reason,
        }
    };
    let in_flight: i64 = inference.as_ref().map_or(0, |s| s.http.in_flight.get())
        + collector
            .as_ref()
            .map_or(0, |(s, ..)| s.http.in_flight.get());
    tracing::info!(target: LIFECYCLE, reason, in_flight, grace_ms = config.shutdown_grace.as_millis() as u64, "shutdown_started");
    if let Some(state) = &inference {
        state.set_ready(false);
    }
    if !config.shutdown_delay.is_zero() {
        // Keep serving while load balancers notice the failing readiness probe
        // (Kubernetes removes the endpoint asynchronously), then stop accepting.
        tokio::time::sleep(config.shutdown_delay).await;
    }
    if let Some(state) = &inference {
        state.model_metrics.health.set(0);
    }
    let deadline = tokio::time::Instant::now() + config.shutdown_grace;
    let (inference_runs, collector_runs): (Vec<_>, Vec<_>) =
        running.into_iter().partition(|r| r.service == "inference");
    let _ = stop_inference.send(true);
    drain(inference_runs, deadline).await;
    let mut flushed_records = 0;
    if let Some(task) = forwarder {
        // Everything queued is sent, or spooled to disk for the next start.
        flushed_records = task.finish().await;
    }
    let _ = stop_collector.send(true);
    drain(collector_runs, deadline).await;
    if let Some((state, probe, _)) = collector {
        probe.abort();
        state.store.close().await;
    }
    tracing::info!(target: LIFECYCLE, reason, drained_requests = in_flight, flushed_records, "shutdown_complete");
    Ok(())
}

/// Waits for services to finish their in-flight requests, until `deadline`.
async fn drain(services: Vec<Running>, deadline: tokio::time::Instant) {
    for r in services {
        match tokio::time::timeout_at(deadline, r.done).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => {
                tracing::error!(target: LIFECYCLE, service = r.service, error = %e, "drain_failed")
            }
            Ok(Err(e)) => {
                tracing::error!(target: LIFECYCLE, service = r.service, error = %e, "drain_failed")
            }
            Err(_) => {
                tracing::warn!(target: LIFECYCLE, service = r.service, "shutdown_grace_expired")
            }
        }
    }
}

/// Resolves when the first service's server future ends (which, before shutdown, is
/// always a failure): its name and what it returned.
async fn futures_first_exit(running: &mut [Running]) -> (&'static str, String) {
    if running.is_empty() {
        return std::future::pending().await;
    }
    let (result, index, _) =
        futures_util::future::select_all(running.iter_mut().map(|r| &mut r.done)).await;
    let outcome = match result {
        Ok(Ok(())) => "it returned".to_owned(),
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    };
    (running[index].service, outcome)
}

fn load_models(config: &Config) -> anyhow::Result<ModelRegistry> {
    let models = match &config.models_dir {
        Some(dir) => ModelRegistry::from_dir(dir, config.default_model.as_deref()),
        None => match &config.default_model {
            Some(default) => {
                let bundled = ModelRegistry::bundled()?;
                let models = bundled
                    .iter()
                    .map(|m| m.card.name.clone())
                    .collect::<Vec<_>>();
                if !models.contains(default) {
                    anyhow::bail!(
                        "default model {default:?} is not bundled (bundled: {})",
                        models.join(", ")
                    );
                }
                Ok(bundled.with_default(default))
            }
            None => ModelRegistry::bundled(),
        },
    }
    .context("cannot load models")?;
    for m in models.iter() {
        if m.load_duration > SLOW_MODEL_LOAD {
            tracing::warn!(
                target: LIFECYCLE,
                model = %m.card.name,
                load_ms = m.load_duration.as_millis() as u64,
                threshold_ms = SLOW_MODEL_LOAD.as_millis() as u64,
                "slow_model_load"
            );
        }
        tracing::info!(
            target: LIFECYCLE,
            model = %m.card.name,
            version = %m.card.version,
            source = %m.source,
            features = m.card.features.len(),
            labels = m.card.labels.len(),
            load_ms = (m.load_duration.as_secs_f64() * 1e6).round() / 1e3,
            default = m.card.name == models.default_name(),
            "model_loaded"
        );
    }
    Ok(models)
}

/// SIGTERM and SIGINT handlers, installed before any port is bound: a signal that
/// arrives right after the `listening` line must start a graceful shutdown, not kill
/// the process with the default action.
struct ShutdownSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
        })
    }

    /// Resolves with the name of the signal that asked us to stop.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
