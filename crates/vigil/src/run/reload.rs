//! SIGHUP: rescan `--models-dir` and take in what changed, the way an upload does
//! (each model loaded and probed before anything changes; one catalog swap; requests
//! in flight finish on the version they started with). A directory that does not
//! load is logged and changes nothing. Without `--models-dir` there is nothing to
//! rescan. Every rescan is an audit event (`reload`).

use anyhow::Context;
use tokio::signal::unix::{Signal, SignalKind, signal};
use vigil_auth::{AuditAction, AuditEvent, Outcome};
use vigil_model::ModelRegistry;
use vigil_server::AppState;
use vigil_telemetry::logging::JsonList;

use super::LIFECYCLE;
use crate::config::Config;

/// Installs the SIGHUP handler (before any port is bound: SIGHUP's default action
/// would end the process).
pub(super) fn install() -> anyhow::Result<Signal> {
    signal(SignalKind::hangup()).context("cannot handle SIGHUP")
}

/// Rescans on every SIGHUP until the process ends.
pub(super) fn watch(mut hangup: Signal, config: &Config, state: AppState) {
    let dir = config.models_dir.clone();
    let default = config.default_model.clone();
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            let Some(dir) = dir.clone() else {
                tracing::info!(
                    target: LIFECYCLE,
                    reason = "no --models-dir: the bundled models do not change",
                    "models_rescan_skipped"
                );
                continue;
            };
            let default = default.clone();
            let loaded = tokio::task::spawn_blocking(move || {
                let fresh = ModelRegistry::from_dir(&dir, default.as_deref())?;
                for m in fresh.iter() {
                    vigil_model::probe(m)
                        .with_context(|| format!("model {} ({})", m.card.name, m.source))?;
                }
                anyhow::Ok(fresh)
            })
            .await;
            let fresh = match loaded {
                Ok(Ok(fresh)) => fresh,
                Ok(Err(e)) => {
                    failed(&state, DIR_UNUSABLE, &crate::error_text::one_line(&e));
                    continue;
                }
                Err(e) => {
                    failed(&state, DIR_UNUSABLE, &e.to_string());
                    continue;
                }
            };
            let Some(lifecycle) = state.lifecycle.get() else {
                continue;
            };
            match lifecycle
                .rescan(&state.models, &state.model_metrics, fresh)
                .await
            {
                Ok(report) => {
                    // One event a model whose serving version changed, with the
                    // versions, as for the other lifecycle actions; one without a
                    // model when the rescan changed none.
                    let reload = AuditEvent::new(AuditAction::Reload, Outcome::Success);
                    for swap in &report.swaps {
                        state.auth.audit(
                            reload
                                .model(&swap.model)
                                .versions(swap.from_version.as_deref(), swap.to_version.as_deref()),
                        );
                    }
                    if report.swaps.is_empty() {
                        state.auth.audit(reload);
                    }
                    tracing::info!(
                        target: LIFECYCLE,
                        loaded = ?JsonList::of(&report.loaded),
                        unloaded = ?JsonList::of(&report.unloaded),
                        kept = ?JsonList::of(&report.kept),
                        "models_rescanned"
                    );
                }
                Err(e) => failed(&state, e.code(), &e.to_string()),
            }
        }
    });
}

/// Without an inference service (`vigil collector`) a SIGHUP has nothing to rescan,
/// but must still not end the process (`ExecReload=kill -HUP` is common).
pub(super) fn ignore(mut hangup: Signal) {
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            tracing::info!(
                target: LIFECYCLE,
                reason = "the collector serves no models",
                "models_rescan_skipped"
            );
        }
    });
}

/// The audit reason of a rescan whose directory did not load or probe.
const DIR_UNUSABLE: &str = "models_dir_unusable";

/// A refused rescan: audited with `reason` (the lifecycle's error code, or
/// [`DIR_UNUSABLE`]) and logged with the error.
fn failed(state: &AppState, reason: &str, error: &str) {
    state
        .auth
        .audit(AuditEvent::new(AuditAction::Reload, Outcome::Failure).reason(reason));
    tracing::error!(target: LIFECYCLE, error, "models_rescan_failed");
}
