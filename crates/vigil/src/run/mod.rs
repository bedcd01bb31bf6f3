//! Start-up and shutdown: logging first, then the services the mode asks for (`up`:
//! collector and inference service in one process; `serve`; `collector`), each bound
//! and logged with its real address; on SIGTERM/SIGINT report not-ready, stop
//! accepting, drain in-flight requests within the grace period, log the outcome and
//! flush the logs.

use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::{Config, Mode};

mod cards;
mod collector;
mod collector_view;
mod inference;
mod keys;
mod local_delivery;
mod reload;
mod signals;

use signals::ShutdownSignals;

/// The forwarder's last round at shutdown gets at least this long, even when the grace
/// period is used up.
const FLUSH_AT_LEAST: Duration = Duration::from_secs(5);

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
        tracing::error!(target: LIFECYCLE, error = %crate::error_text::one_line(e), "fatal");
    }
    // Give tasks still running a moment, then flush the log queue.
    runtime.shutdown_timeout(Duration::from_millis(500));
    drop(guard);
    result
}

/// A running HTTP service: its name, and the future that ends when it has drained.
struct Running {
    service: &'static str,
    done: tokio::task::JoinHandle<()>,
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
        header_timeout_ms = config.listener.header_timeout.as_millis() as u64,
        idle_timeout_ms = config.listener.idle_timeout.as_millis() as u64,
        body_timeout_ms = config.listener.body_timeout.as_millis() as u64,
        max_connections = config.listener.max_connections,
        http_threads = config.listener.threads,
        log_level = %config.log.level,
        log_payloads = config.limits.log_payloads,
        quality_window_s = config.feedback.quality_window.as_secs(),
        "starting"
    );
    let mut signals = ShutdownSignals::install()?;
    // Also before any port is bound: SIGHUP's default action would end the process.
    let hangup = reload::install()?;
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

    // The collector first, so `up`'s inference service has somewhere to store records.
    let mut running = Vec::new();
    let mut collector = None;
    if matches!(config.mode, Mode::Up | Mode::Collector) {
        let (started, service) = collector::start(&config, until(&collector_stop)).await?;
        running.push(service);
        collector = Some(started);
    }
    let mut inference = None;
    if matches!(config.mode, Mode::Up | Mode::Serve) {
        let (started, service) =
            inference::start(&config, collector.as_ref(), hangup, until(&inference_stop)).await?;
        running.push(service);
        inference = Some(started);
    } else {
        reload::ignore(hangup);
    }
    if let (Some(inference), Some(collector)) = (&inference, &collector) {
        let created = inference.created_admin_key.as_ref();
        let shown = where_to_look(
            inference.address,
            collector.address,
            created.map(|c| c.key.as_str()),
        );
        if let Some(created) = created {
            // Stored only once shown: stop rather than run with an admin key nobody has.
            if let Err(e) = shown {
                tracing::error!(target: LIFECYCLE, name = created.name, error = %e, "admin_key_not_shown");
                anyhow::bail!(
                    "cannot show the admin key made on this first start ({e}); it was not stored, the next start makes another"
                );
            }
            keys::keep(&config, created).context("the admin key above was not stored")?;
        }
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
    let in_flight: i64 = inference
        .as_ref()
        .map_or(0, |i| i.state.http.in_flight.get())
        + collector
            .as_ref()
            .map_or(0, |c| c.state.http.in_flight.get());
    // Both services stop advertising readiness before the line says so.
    if let Some(inference) = &inference {
        inference.state.set_ready(false);
    }
    if let Some(collector) = &collector {
        collector.state.set_ready(false);
    }
    tracing::info!(target: LIFECYCLE, reason, in_flight, grace_ms = config.shutdown_grace.as_millis() as u64, "shutdown_started");
    // Records the forwarder holds in memory (the spool could not take them): lost if
    // the shutdown stops waiting for it, and then said so.
    let held = inference
        .as_ref()
        .and_then(|i| i.forwarder.as_ref())
        .map(vigil_forwarder::ForwarderTask::held);
    let report_held = |why: &str| {
        if let Some(records) = held.as_ref().map(|h| h.get()).filter(|n| *n > 0) {
            tracing::error!(target: LIFECYCLE, records, reason = why, "prediction_records_lost");
        }
    };
    let graceful = async {
        if !config.shutdown_delay.is_zero() {
            // Keep serving while load balancers notice the failing readiness probe
            // (Kubernetes removes the endpoint asynchronously), then stop accepting.
            tokio::time::sleep(config.shutdown_delay).await;
        }
        if let Some(inference) = &inference {
            inference.state.model_metrics.health.set(0);
        }
        let deadline = tokio::time::Instant::now() + config.shutdown_grace;
        let (inference_runs, collector_runs): (Vec<_>, Vec<_>) =
            running.into_iter().partition(|r| r.service == "inference");
        let _ = stop_inference.send(true);
        drain(inference_runs, deadline).await;
        let mut flushed_records = 0;
        if let Some(task) = inference.and_then(|i| i.forwarder) {
            // Everything queued is delivered, or left on disk for the next start. A
            // store that does not answer does not hold the exit up for long: what was
            // not delivered by then is on disk too.
            let until = deadline.max(tokio::time::Instant::now() + FLUSH_AT_LEAST);
            match tokio::time::timeout_at(until, task.finish()).await {
                Ok(n) => flushed_records = n,
                Err(_) => {
                    tracing::warn!(target: LIFECYCLE, "forwarder_flush_expired");
                    report_held("held in memory when the forwarder's flush ran out of time");
                }
            }
        }
        let _ = stop_collector.send(true);
        drain(collector_runs, deadline).await;
        if let Some(collector) = collector {
            collector.close().await;
        }
        flushed_records
    };
    // A second Ctrl-C ends the wait (a delay or a drain that takes too long for the
    // person at the terminal): what was answered is on disk, in the spool or stored.
    let flushed_records = tokio::select! {
        flushed = graceful => flushed,
        () = signals.interrupt() => {
            tracing::warn!(target: LIFECYCLE, reason, "shutdown_forced");
            report_held("held in memory when a second SIGINT forced the exit");
            anyhow::bail!("stopped by a second SIGINT before the graceful shutdown ended");
        }
    };
    tracing::info!(target: LIFECYCLE, reason, drained_requests = in_flight, flushed_records, "shutdown_complete");
    Ok(())
}

/// Waits for services to finish their in-flight requests, until `deadline`.
async fn drain(services: Vec<Running>, deadline: tokio::time::Instant) {
    for r in services {
        match tokio::time::timeout_at(deadline, r.done).await {
            Ok(Ok(())) => {}
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
        Ok(()) => "it returned".to_owned(),
        Err(e) => e.to_string(),
    };
    (running[index].service, outcome)
}

/// `vigil up`'s note on stderr: where to look first. `Err` when the admin key made on
/// this start could not be written; the rest is a courtesy.
fn where_to_look(
    address: std::net::SocketAddr,
    collector: std::net::SocketAddr,
    created_admin_key: Option<&str>,
) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(key) = created_admin_key {
        let mut stderr = std::io::stderr();
        writeln!(
            stderr,
            "admin key (shown once; only its hash is kept, in the data dir's keys.toml):\n  {key}\n  sign in to the dashboard with it, or send it as `Authorization: Bearer <key>` to /admin; more keys: `vigil keys create`"
        )?;
        stderr.flush()?;
    }
    say!(
        "vigil is up: http://{address}\n  dashboard: http://{address}/dashboard (sign in with the admin key)\n  predict:   curl -s -XPOST http://{address}/predict -H 'content-type: application/json' -d '{{\"features\": [70, 250, 2.5, 45, 1500, 12]}}'\n  models:    http://{address}/models\n  health:    http://{address}/health\n  metrics:   http://{address}/metrics\n  api:       http://{address}/openapi.json\n  collector: http://{collector}/predictions  /stats  /incidents  /metrics"
    );
    Ok(())
}
