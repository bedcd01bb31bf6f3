//! Starting the inference service (`vigil serve`, and half of `vigil up`): load the
//! models, bind, start the prediction forwarder (in process to `up`'s collector, or
//! over HTTP to `--collector-url`), serve.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use vigil_forwarder::{Forwarder, ForwarderConfig, ForwarderTask, HttpDelivery};
use vigil_model::{ModelRegistry, VersionStore};
use vigil_server::dashboard::source::CollectorSource;
use vigil_server::lifecycle::Lifecycle;
use vigil_server::{AppState, app};
use vigil_telemetry::redact::{redact_url, redact_url_userinfo};

use super::collector::Collector;
use super::local_delivery::{self, LocalDelivery};
use super::{LIFECYCLE, Running, bind};
use crate::config::Config;

/// Model loads slower than this log a warning (start-up time is a deployment SLO).
const SLOW_MODEL_LOAD: Duration = Duration::from_secs(5);

/// A started inference service.
pub(super) struct Inference {
    pub state: AppState,
    pub address: SocketAddr,
    /// Where prediction records go, when they go anywhere.
    pub forwarder: Option<ForwarderTask>,
    /// The admin key `vigil up` made on this start, to show once.
    pub created_admin_key: Option<super::keys::CreatedKey>,
}

pub(super) async fn start(
    config: &Config,
    collector: Option<&Collector>,
    hangup: tokio::signal::unix::Signal,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(Inference, Running)> {
    let base = load_models(config)?;
    // Uploaded versions, rollbacks and unloads kept under the data dir apply on top.
    let lifecycle = Lifecycle::new(VersionStore::in_data_dir(&config.data_dir), &base);
    let models = lifecycle.overlay(base);
    let listener = bind("inference", config.host, config.port).await?;
    let address = listener.local_addr()?;
    // After the bind: an admin key made now is sure to be shown (a start that fails
    // earlier, on a busy port say, must not keep a key nobody saw).
    let keys = super::keys::load(config)?;
    let state = AppState::with_keys(models, config.limits.clone(), keys.keyring);
    let _ = state.lifecycle.set(lifecycle);
    super::reload::watch(hangup, config, state.clone());
    super::keys::watch(state.auth.clone(), config);
    let forwarder = start_forwarder(config, &state, collector)?;
    // The collector checks ground truth against the served cards.
    match (collector, &config.collector_url) {
        (Some(c), _) => super::cards::spawn(
            state.models.clone(),
            super::cards::CardSink::InProcess(c.state.clone()),
        ),
        (None, Some(url)) => super::cards::spawn(
            state.models.clone(),
            super::cards::CardSink::remote(url)
                .with_context(|| format!("invalid collector url {:?}", redact_url(url)))?,
        ),
        (None, None) => {}
    }
    let view: Option<Arc<dyn CollectorSource>> = match (collector, &config.collector_url) {
        (Some(c), _) => Some(Arc::new(super::collector_view::InProcess(c.state.clone()))),
        (None, Some(url)) => Some(Arc::new(super::collector_view::Remote::new(url)?)),
        (None, None) => None,
    };
    vigil_server::dashboard::spawn_sampler(state.clone(), view);
    let done = tokio::spawn(vigil_listener::serve(
        listener,
        app(state.clone(), config.router.clone()),
        config.listener,
        vigil_listener::Placement::Threads { name: "vigil-http" },
        state.http.connections.clone(),
        vigil_telemetry::malformed::Malformed::new("inference"),
        stop,
    ));
    Ok((
        Inference {
            state,
            address,
            forwarder,
            created_admin_key: keys.created_admin_key,
        },
        Running {
            service: "inference",
            done,
        },
    ))
}

/// `up` stores records in process; `serve` posts them to `--collector-url`; without
/// either, records go nowhere.
fn start_forwarder(
    config: &Config,
    state: &AppState,
    collector: Option<&Collector>,
) -> anyhow::Result<Option<ForwarderTask>> {
    let spool = config.data_dir.join("spool");
    let mut settings = ForwarderConfig::new(&spool);
    if collector.is_some() {
        settings.batch_size = local_delivery::BATCH_SIZE;
    }
    let batch_size = settings.batch_size;
    let metrics = state.forwarder_metrics.clone();
    let (to, started) = match (collector, &config.collector_url) {
        (Some(collector), _) => {
            let delivery = LocalDelivery::new(collector.state.clone());
            (
                "in process".to_owned(),
                Forwarder::start(settings, metrics, delivery),
            )
        }
        (None, Some(url)) => {
            let delivery = HttpDelivery::new(url).map_err(|e| {
                let url = redact_url(url);
                anyhow::anyhow!("invalid collector url {url:?}: {}", redact_url_userinfo(&e))
            })?;
            // Logged: its credentials, if any, are not (whatever characters they hold).
            (
                redact_url(url),
                Forwarder::start(settings, metrics, delivery),
            )
        }
        (None, None) => return Ok(None),
    };
    let (handle, task) = started.with_context(|| {
        format!(
            "cannot start the prediction forwarder (spool {})",
            spool.display()
        )
    })?;
    let _ = state.forwarder.set(handle);
    tracing::info!(target: LIFECYCLE, collector = %to, spool = %spool.display(), batch_size, "forwarding_predictions");
    Ok(Some(task))
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
        // The same check an upload passes: the model must answer probabilities.
        vigil_model::probe(m).with_context(|| format!("model {} ({})", m.card.name, m.source))?;
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
