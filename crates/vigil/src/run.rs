//! Start-up and shutdown: logging first, then models (timed and logged), then the
//! listener; on SIGTERM/SIGINT stop accepting, report not-ready, drain in-flight
//! requests within the grace period, log the outcome and flush the logs.

use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use vigil_model::ModelRegistry;
use vigil_server::{AppState, app, serve};

use crate::config::{Config, Mode};

/// Start-up and shutdown lines: logged at every level (see `vigil_telemetry::logging`).
/// Model loads slower than this log a warning (start-up time is a deployment SLO).
const SLOW_MODEL_LOAD: Duration = Duration::from_secs(5);

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

async fn run_services(config: Config) -> anyhow::Result<()> {
    tracing::info!(
        target: LIFECYCLE,
        version = vigil_server::VERSION,
        mode = ?config.mode,
        host = %config.host,
        port = config.port,
        data_dir = %config.data_dir.display(),
        models_dir = %config.models_dir.as_ref().map_or("bundled".into(), |d| d.display().to_string()),
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
    let models = load_models(&config)?;
    let state = AppState::new(models, config.limits.clone());
    let listener = TcpListener::bind((config.host, config.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", config.host, config.port))?;
    let address = listener.local_addr()?;
    tracing::info!(target: LIFECYCLE, service = "inference", address = %address, "listening");
    if config.mode == Mode::Up {
        eprintln!(
            "vigil is up: http://{address}\n  predict:  curl -s -XPOST http://{address}/predict -H 'content-type: application/json' -d '{{\"features\": [70, 250, 2.5, 45, 1500, 12]}}'\n  models:   http://{address}/models\n  health:   http://{address}/health\n  metrics:  http://{address}/metrics\n  api:      http://{address}/openapi.json"
        );
    }

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = serve(
        listener,
        app(state.clone(), config.router.clone()),
        async move {
            let _ = stop_rx.await;
        },
    );
    tokio::pin!(server);
    let reason = tokio::select! {
        result = &mut server => return result.context("the server stopped unexpectedly"),
        reason = shutdown_signal() => reason,
    };
    let in_flight = state.http.in_flight.get();
    tracing::info!(
        reason,
        in_flight,
        grace_ms = config.shutdown_grace.as_millis() as u64,
        "shutdown_started"
    );
    state.set_ready(false);
    if !config.shutdown_delay.is_zero() {
        // Keep serving while load balancers notice the failing readiness probe
        // (Kubernetes removes the endpoint asynchronously), then stop accepting.
        tokio::select! {
            result = &mut server => return result.context("the server stopped unexpectedly"),
            _ = tokio::time::sleep(config.shutdown_delay) => {}
        }
    }
    state.model_metrics.health.set(0);
    let _ = stop_tx.send(());
    match tokio::time::timeout(config.shutdown_grace, &mut server).await {
        Ok(result) => result.context("error while draining")?,
        Err(_) => tracing::warn!(
            abandoned = state.http.in_flight.get(),
            "shutdown_grace_expired"
        ),
    }
    tracing::info!(target: LIFECYCLE, reason, drained_requests = in_flight, "shutdown_complete");
    Ok(())
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

/// Resolves with the name of the signal that asked us to stop.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
