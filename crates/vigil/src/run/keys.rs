//! The inference service's API keys at start-up and while it runs: the config file's
//! `[[keys]]` plus the data dir's `keys.toml`; under `vigil up` with no admin key
//! anywhere, an admin key made on first start (hash stored, key shown once); and a
//! watch on `keys.toml` so `vigil keys create|revoke` take effect without a restart.

use std::time::Duration;

use anyhow::Context;

use vigil_auth::{Auth, KeyFile, KeySpec, Keyring, Role};

use super::LIFECYCLE;
use crate::config::{Config, Mode};

/// How often `keys.toml` is checked for changes (one `stat`).
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// The keys in force at start-up, and the admin key made just now, if one was.
pub(super) struct StartKeys {
    pub keyring: Keyring,
    pub created_admin_key: Option<CreatedKey>,
}

/// An admin key made on this start: in force at once, stored only once it has been
/// shown ([`keep`]).
pub(super) struct CreatedKey {
    pub name: &'static str,
    pub key: String,
    spec: KeySpec,
}

pub(super) fn load(config: &Config) -> anyhow::Result<StartKeys> {
    let file = KeyFile::in_dir(&config.data_dir);
    let mut stored = file.load()?;
    // A name in both (a `vigil keys create` run without the config file) says where.
    let sources = || {
        format!(
            "the keys of the config file's [[keys]] and of {}",
            file.path().display()
        )
    };
    let mut keyring = stored.keyring(&config.keys).with_context(sources)?;
    let mut created_admin_key = None;
    // A key written to /dev/null (`2>/dev/null`, a closed stderr) is seen by nobody:
    // none is made; the next start with a visible stderr makes one.
    let seen = crate::console::reaches_someone(2);
    if config.mode == Mode::Up && !keyring.has_admin() && !seen {
        tracing::warn!(
            target: LIFECYCLE,
            hint = "stderr is /dev/null: start once with stderr visible, or make one with `vigil keys create --name admin --role admin`",
            "admin_key_not_created"
        );
    }
    if config.mode == Mode::Up && !keyring.has_admin() && seen {
        let name = ["admin", "vigil-admin"]
            .into_iter()
            .find(|n| !keyring.iter().any(|k| &*k.name == *n))
            .unwrap_or("vigil-admin-1");
        let (key, spec) = KeySpec::generate(name, Role::Admin, Some(crate::keys::now_rfc3339()))?;
        // In force now; written to the file only once it has been shown (`keep`), so
        // a start that fails, or a key that cannot be shown, leaves no key nobody has.
        stored.keys.push(spec.clone());
        keyring = stored.keyring(&config.keys).with_context(sources)?;
        created_admin_key = Some(CreatedKey { name, key, spec });
    }
    let count = |role| keyring.iter().filter(|k| k.role == role).count();
    tracing::info!(
        target: LIFECYCLE,
        admin_keys = count(Role::Admin),
        predict_keys = count(Role::Predict),
        prediction = if keyring.predict_gated() { "needs a key" } else { "open" },
        "api_keys"
    );
    if !keyring.has_admin() {
        tracing::warn!(
            target: LIFECYCLE,
            hint = "/admin answers 401 to everyone; make one with `vigil keys create --name admin --role admin`",
            "no_admin_key"
        );
    }
    Ok(StartKeys {
        keyring,
        created_admin_key,
    })
}

/// Stores the admin key made on this start, now that it has been shown: added to
/// `keys.toml` as it is now, under its lock (a `vigil keys create` may have changed it
/// since the start read it).
pub(super) fn keep(config: &Config, created: &CreatedKey) -> anyhow::Result<()> {
    let file = KeyFile::in_dir(&config.data_dir);
    let _lock = file.lock()?;
    let mut stored = file.load()?;
    if !stored.keys.iter().any(|k| k.name == created.spec.name) {
        stored.keys.push(created.spec.clone());
    }
    file.save(&stored)?;
    tracing::info!(target: LIFECYCLE, name = created.name, file = %file.path().display(), "admin_key_created");
    Ok(())
}

/// Reloads the keys whenever `keys.toml` changes. A file that does not check out is
/// logged and the keys in force stay.
pub(super) fn watch(auth: Auth, config: &Config) -> tokio::task::JoinHandle<()> {
    let file = KeyFile::in_dir(&config.data_dir);
    let config_keys = config.keys.clone();
    tokio::spawn(async move {
        let mut seen = file.modified();
        let mut tick = tokio::time::interval(WATCH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = file.modified();
            if now == seen {
                continue;
            }
            seen = now;
            // Gone (deleted, or renamed away by an editor mid-save): read as "no keys",
            // that dropped every key and opened prediction to everyone. The keys in
            // force stay until the file is back; `vigil keys revoke` removes keys.
            if now.is_none() {
                tracing::error!(target: LIFECYCLE, file = %file.path().display(), "api_keys_file_missing");
                continue;
            }
            let reloaded = file.load().and_then(|stored| stored.keyring(&config_keys));
            match reloaded {
                Ok(keyring) => {
                    let keys = keyring.len();
                    auth.replace(keyring);
                    tracing::info!(target: LIFECYCLE, keys, file = %file.path().display(), "api_keys_reloaded");
                }
                Err(e) => {
                    tracing::error!(target: LIFECYCLE, error = %e, "api_keys_reload_failed")
                }
            }
        }
    })
}
