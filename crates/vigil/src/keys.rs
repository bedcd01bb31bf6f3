//! `vigil keys`: make, list and revoke API keys in the data dir's `keys.toml` (hashes
//! only). A new key goes to stdout alone, so `KEY=$(vigil keys create …)` works; what
//! it is and the config-file entry go to stderr.

use std::process::ExitCode;

use anyhow::{Context, bail};
use vigil_auth::keyring::is_valid_name;
use vigil_auth::{KeyFile, KeySpec, Role, StoredKeys};

use crate::cli::{Cli, KeysAction, KeysArgs};

pub fn run(cli: &Cli, args: &KeysArgs) -> ExitCode {
    let sources = match crate::config::key_sources(cli, args.data_dir.as_deref()) {
        Ok(sources) => sources,
        Err(e) => {
            say!(
                "vigil keys: configuration error: {}",
                crate::error_text::one_line(&e)
            );
            return ExitCode::from(crate::EXIT_CONFIG);
        }
    };
    match run_action(cli, sources, args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say!("vigil keys: {}", crate::error_text::one_line(&e));
            ExitCode::FAILURE
        }
    }
}

fn run_action(
    cli: &Cli,
    (data_dir, config_keys): (std::path::PathBuf, Vec<KeySpec>),
    args: &KeysArgs,
) -> anyhow::Result<()> {
    let file = KeyFile::in_dir(&data_dir);
    // Held from reading the file to replacing it, so a `create` or `revoke` run at
    // the same time cannot write back a copy without this one's change.
    let _lock = match args.action {
        KeysAction::Create {
            print_only: false, ..
        }
        | KeysAction::Revoke { .. } => Some(file.lock()?),
        KeysAction::Create { .. } | KeysAction::List { .. } => None,
    };
    let stored = file.load()?;
    match &args.action {
        KeysAction::Create {
            name,
            role,
            print_only,
        } => create(&file, stored, &config_keys, name, *role, *print_only),
        KeysAction::List { json } => match list(&file, &stored.keys, &config_keys, cli, *json) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(anyhow::anyhow!("cannot write the list: {e}"))
            }
            _ => Ok(()),
        },
        KeysAction::Revoke { name } => revoke(&file, stored, &config_keys, cli, name),
    }
}

fn create(
    file: &KeyFile,
    mut stored: StoredKeys,
    config_keys: &[KeySpec],
    name: &str,
    role: Role,
    print_only: bool,
) -> anyhow::Result<()> {
    if !is_valid_name(name) {
        bail!("key name {name:?} must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' or '-'");
    }
    if stored
        .keys
        .iter()
        .chain(config_keys)
        .any(|k| k.name == name)
    {
        bail!("a key named {name:?} exists already; revoke it first or pick another name");
    }
    let (key, spec) = KeySpec::generate(name, role, Some(now_rfc3339()))?;
    if !print_only {
        stored.keys.push(spec.clone());
        // The same checks the services make, before anything is written.
        stored.keyring(config_keys)?;
    }
    // Shown before it is stored: a key stored but never shown (stdout closed, a full
    // disk behind `>`) would work for nobody and hold its name.
    if !crate::console::reaches_someone(1) {
        bail!(
            "stdout is /dev/null (or was closed): the key would be shown to nobody; nothing was stored"
        );
    }
    put!("{key}")
        .and_then(|()| std::io::Write::flush(&mut std::io::stdout()))
        .map_err(|e| {
            anyhow::anyhow!("cannot write the new key to stdout ({e}); nothing was stored")
        })?;
    if !print_only {
        file.save(&stored)
            .context("the key above was not stored; it will not work")?;
    }
    let entry = toml::to_string(&spec).context("cannot format the key entry")?;
    let where_ = if print_only {
        "Not stored anywhere (--print-only).".to_owned()
    } else {
        format!(
            "Its hash is stored in {}; running services accept it within seconds.",
            file.path().display()
        )
    };
    say!(
        "\nAbove: the {role} key {name:?}. It is shown only this once; keep it in a secret store.\n\
         Send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`.\n{where_}\n\
         To put it in a config file instead, add:\n\n[[keys]]\n{entry}"
    );
    Ok(())
}

/// Writes the keys' names, roles and sources to stdout. A reader that stops early
/// (`| head -1`) ends the listing, not an error.
fn list(
    file: &KeyFile,
    stored: &[KeySpec],
    config_keys: &[KeySpec],
    cli: &Cli,
    json: bool,
) -> std::io::Result<()> {
    let config_source = cli
        .config
        .as_ref()
        .map_or_else(String::new, |p| p.display().to_string());
    let file_source = file.path().display().to_string();
    let rows = config_keys
        .iter()
        .map(|k| (k, config_source.as_str()))
        .chain(stored.iter().map(|k| (k, file_source.as_str())));
    if json {
        for (k, source) in rows {
            put!(
                "{}",
                serde_json::json!({
                    "name": k.name, "role": k.role.as_str(),
                    "created_at": k.created_at, "source": source,
                })
            )?;
        }
        return Ok(());
    }
    put!("{:<24} {:<8} {:<21} SOURCE", "NAME", "ROLE", "CREATED")?;
    for (k, source) in rows {
        put!(
            "{:<24} {:<8} {:<21} {source}",
            k.name,
            k.role.as_str(),
            k.created_at.as_deref().unwrap_or("-"),
        )?;
    }
    Ok(())
}

fn revoke(
    file: &KeyFile,
    mut stored: StoredKeys,
    config_keys: &[KeySpec],
    cli: &Cli,
    name: &str,
) -> anyhow::Result<()> {
    let had_predict = stored.keys.iter().any(|k| k.role == Role::Predict);
    let before = stored.keys.len();
    stored.keys.retain(|k| k.name != name);
    // Revoking the last predict key must not open prediction. The flag is written only
    // then (it changes nothing while a predict key exists), so a running vigil from
    // before it, which refuses unknown keys in the file, keeps taking other revokes.
    stored.predict_requires_key |=
        had_predict && !stored.keys.iter().any(|k| k.role == Role::Predict);
    if stored.keys.len() == before {
        if config_keys.iter().any(|k| k.name == name) {
            let path = cli.config.as_ref().map(|p| p.display().to_string());
            bail!(
                "key {name:?} is defined in the config file {}: delete its [[keys]] entry there",
                path.unwrap_or_default()
            );
        }
        bail!("no key named {name:?} in {}", file.path().display());
    }
    // Running services only take a key file whose keys all check out: if the rest of
    // the file does not, they would keep the revoked key, so say so instead.
    let keyring = stored.keyring(config_keys).with_context(|| {
        format!(
            "not revoked: the other keys in {} do not check out, so running services would ignore the change; fix the file first",
            file.path().display()
        )
    })?;
    file.save(&stored)?;
    say!("Revoked {name:?}; running services stop accepting it within seconds.");
    if stored.predict_requires_key && !keyring.iter().any(|k| k.role == Role::Predict) {
        let who = if keyring.has_admin() {
            "an admin key works"
        } else {
            "no key is left that can: every prediction is refused"
        };
        say!(
            "No predict key is left: prediction still needs a key ({who}). To open \
             prediction to everyone again, delete `predict_requires_key` from {}.",
            file.path().display()
        );
    }
    Ok(())
}

/// Now, to the second, as the key file's `created_at`.
pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
