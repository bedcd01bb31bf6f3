//! API keys through the real binary: the admin key `vigil up` makes on first start
//! (shown once, kept across restarts), `vigil keys create|list|revoke` and running
//! services following them without a restart, the caller's name in access lines,
//! and keys never reaching a log line.

use std::process::Command;

use serde_json::{Value, json};
use vigil_test_support::{TempDir, Vigil, eventually, eventually_blocking, vigil_binary};

const GOOD: [f64; 6] = [70.0, 250.0, 2.5, 45.0, 1500.0, 12.0];
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(20);

/// `vigil keys …` on `data_dir`: exit status, stdout, stderr.
fn keys(data_dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(vigil_binary())
        .arg("keys")
        .args(args)
        .args(["--data-dir", data_dir.to_str().unwrap()])
        .env_remove("VIGIL_CONFIG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Asks the inference service (under `up`, the first service to listen is the collector).
async fn status(vigil: &Vigil, method: &str, path: &str, key: Option<&str>) -> u16 {
    let client = reqwest::Client::new();
    let url = format!("http://{}{path}", vigil.address_of("inference"));
    let mut req = match method {
        "POST" => client.post(url).json(&json!({"features": GOOD})),
        _ => client.get(url),
    };
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.send().await.unwrap().status().as_u16()
}

/// Polls until `path` answers `want` (the services pick key changes up within seconds).
async fn wait_for_status(vigil: &Vigil, path: &str, key: Option<&str>, want: u16) {
    eventually(PATIENCE, async || {
        let got = status(vigil, "POST", path, key).await;
        if got == want {
            Ok(())
        } else {
            Err(format!("{path} stayed {got}, not {want}"))
        }
    })
    .await
}

fn access_lines<'a>(lines: &'a [Value], path: &'a str) -> impl Iterator<Item = &'a Value> {
    lines
        .iter()
        .filter(move |l| l["message"] == "request_completed" && l["path"] == path)
}

#[tokio::test]
async fn up_makes_an_admin_key_once_and_keeps_it_across_restarts() {
    let dir = TempDir::new("keys-up");
    let data = dir.path().to_str().unwrap();
    let vigil = Vigil::start_command("up", &["--data-dir", data], &[]);
    let key = vigil.admin_key();
    assert!(key.starts_with("vgl_"), "{key}");
    assert_eq!(status(&vigil, "GET", "/admin/anything", None).await, 401);
    assert_eq!(
        status(&vigil, "GET", "/admin/anything", Some("vgl_nope")).await,
        401
    );
    // Through the guard: nothing is at this admin path yet, so a JSON 404.
    assert_eq!(
        status(&vigil, "GET", "/admin/anything", Some(&key)).await,
        404
    );
    let stored = std::fs::read_to_string(dir.path().join("keys.toml")).unwrap();
    assert!(stored.contains("role = \"admin\"") && !stored.contains(&key));
    // Made now, and says so like a key `vigil keys create` made.
    let (ok, listed, _) = keys(dir.path(), &["list", "--json"]);
    let listed: Value = serde_json::from_str(listed.trim()).unwrap();
    assert!(
        ok && listed["created_at"].as_str().unwrap().starts_with("20"),
        "{listed}"
    );
    let stdout = vigil.stdout_after_stop();
    assert!(!stdout.contains(&key), "the key reached a log line");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let users: Vec<&Value> = access_lines(&lines, "/admin/anything")
        .map(|l| &l["user"])
        .collect();
    assert_eq!(
        users,
        [&json!("anonymous"), &json!("anonymous"), &json!("admin")]
    );
    let audits: Vec<&Value> = lines.iter().filter(|l| l["message"] == "audit").collect();
    assert_eq!(audits.len(), 3, "{audits:?}");
    assert_eq!(audits[0]["action"], "denied");
    assert_eq!(audits[0]["reason"], "missing");
    assert_eq!(audits[2]["action"], "access");
    assert_eq!(audits[2]["user"], "admin");

    // Same data dir: no new key, and the first one still opens /admin.
    let again = Vigil::start_command("up", &["--data-dir", data], &[]);
    let stderr = again.wait_for_stderr("vigil is up");
    assert!(
        !stderr.iter().any(|l| l.starts_with("admin key")),
        "{stderr:?}"
    );
    assert_eq!(
        status(&again, "GET", "/admin/anything", Some(&key)).await,
        404
    );
    again.stop();
}

#[tokio::test]
async fn keys_made_and_revoked_by_the_cli_apply_to_a_running_service() {
    let dir = TempDir::new("keys-cli");
    let vigil = Vigil::start(&["--data-dir", dir.path().to_str().unwrap()], &[]);
    // `serve` makes no key: prediction is open, /admin closed.
    assert_eq!(status(&vigil, "POST", "/predict", None).await, 200);
    assert!(!dir.path().join("keys.toml").exists());

    let (ok, ci_key, note) = keys(dir.path(), &["create", "--name", "ci", "--role", "predict"]);
    assert!(ok, "{note}");
    let ci_key = ci_key.trim().to_owned();
    assert!(ci_key.starts_with("vgl_"));
    assert!(
        note.contains("[[keys]]") && note.contains("name = \"ci\""),
        "{note}"
    );
    assert!(note.contains("sha256 = "), "{note}");
    let (ok, other_key, _) = keys(
        dir.path(),
        &["create", "--name", "batch-jobs", "--role", "predict"],
    );
    assert!(ok);
    let other_key = other_key.trim().to_owned();
    let (ok, _, why) = keys(dir.path(), &["create", "--name", "ci", "--role", "admin"]);
    assert!(!ok && why.contains("exists"), "{why}");
    let (ok, _, why) = keys(
        dir.path(),
        &["create", "--name", "bad name", "--role", "admin"],
    );
    assert!(!ok && why.contains("key name"), "{why}");

    // A predict key exists now: prediction needs one.
    wait_for_status(&vigil, "/predict", None, 401).await;
    assert_eq!(status(&vigil, "POST", "/predict", Some(&ci_key)).await, 200);
    assert_eq!(status(&vigil, "GET", "/admin/x", Some(&ci_key)).await, 403);

    let (ok, listed, _) = keys(dir.path(), &["list"]);
    assert!(ok);
    assert!(listed.contains("ci") && listed.contains("batch-jobs") && listed.contains("predict"));
    assert!(!listed.contains(&ci_key) && !listed.contains(&other_key));

    let (ok, _, note) = keys(dir.path(), &["revoke", "--name", "ci"]);
    assert!(ok, "{note}");
    wait_for_status(&vigil, "/predict", Some(&ci_key), 401).await;
    assert_eq!(
        status(&vigil, "POST", "/predict", Some(&other_key)).await,
        200
    );
    let (ok, _, why) = keys(dir.path(), &["revoke", "--name", "ci"]);
    assert!(!ok && why.contains("no key named"), "{why}");

    // The last predict key revoked: prediction does not open to everyone.
    let (ok, _, note) = keys(dir.path(), &["revoke", "--name", "batch-jobs"]);
    assert!(ok && note.contains("predict_requires_key"), "{note}");
    wait_for_status(&vigil, "/predict", Some(&other_key), 401).await;
    assert_eq!(status(&vigil, "POST", "/predict", None).await, 401);

    // keys.toml gone while the service runs (renamed by an editor mid-save, a slip):
    // the keys in force stay. It was read as "no keys" and opened prediction.
    let file = dir.path().join("keys.toml");
    let aside = dir.path().join("keys.toml.aside");
    std::fs::rename(&file, &aside).unwrap();
    vigil.wait_for_log("api_keys_file_missing");
    assert_eq!(status(&vigil, "POST", "/predict", None).await, 401);
    std::fs::rename(&aside, &file).unwrap();

    let stdout = vigil.stdout_after_stop();
    assert!(!stdout.contains(&ci_key) && !stdout.contains(&other_key));
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(access_lines(&lines, "/predict").any(|l| l["user"] == "ci" && l["status"] == 200));
    assert!(access_lines(&lines, "/predict").any(|l| l["user"] == "batch-jobs"));
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "auth_failed" && l["reason"] == "missing")
    );
    assert!(lines.iter().any(|l| l["message"] == "api_keys_reloaded"));
}

#[test]
fn a_start_that_fails_keeps_no_admin_key_nobody_saw() {
    let dir = TempDir::new("keys-busy");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(vigil_binary())
        .args([
            "up",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--collector-port",
            "0",
        ])
        .args(["--data-dir", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot listen"), "{stderr}");
    assert!(!stderr.contains("admin key"), "{stderr}");
    // No key was kept, so the next good start makes (and shows) one.
    assert!(!dir.path().join("keys.toml").exists());
}

/// A key that cannot be shown is not stored: the first start's admin key with stderr
/// unwritable, `vigil keys create` with stdout unwritable. Both panicked (exit 101)
/// after storing a key nobody had; and `list` with nowhere to write exits 1, not 101.
/// `vigil keys create --name ci --role predict` on `data`, its stdout going to `stdout`.
fn create_ci_key(data: &str, stdout: impl Into<std::process::Stdio>) -> std::process::Output {
    Command::new(vigil_binary())
        .args(["keys", "create", "--name", "ci", "--role", "predict"])
        .args(["--data-dir", data])
        .env_remove("VIGIL_CONFIG")
        .stdout(stdout)
        .output()
        .unwrap()
}

/// `vigil up` on free ports and the data dir `data`, outside any config file.
fn up_on(data: &str) -> Command {
    let mut up = Command::new(vigil_binary());
    up.args([
        "up",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--collector-port",
        "0",
    ])
    .args(["--data-dir", data])
    .env_remove("VIGIL_CONFIG");
    up
}

#[test]
fn a_key_that_cannot_be_shown_is_not_stored() {
    let full = || std::fs::File::create("/dev/full").unwrap();
    let dir = TempDir::new("keys-unshown");
    let data = dir.path().to_str().unwrap();
    let mut up = up_on(data)
        .stdout(std::process::Stdio::null())
        .stderr(full())
        .spawn()
        .unwrap();
    let status = eventually_blocking(PATIENCE, || {
        up.try_wait()
            .unwrap()
            .ok_or_else(|| "vigil up kept running".to_string())
    });
    assert_eq!(status.code(), Some(1));
    let (ok, listed, _) = keys(dir.path(), &["list", "--json"]);
    assert!(ok);
    assert_eq!(listed, "", "no key was stored");

    let out = create_ci_key(data, full());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nothing was stored"), "{stderr}");
    let (_, listed, _) = keys(dir.path(), &["list", "--json"]);
    assert_eq!(listed, "", "no key was stored");

    // To /dev/null (or a closed stdout, which Rust's runtime turns into /dev/null):
    // every write succeeds, and nobody sees the key.
    let out = create_ci_key(data, std::process::Stdio::null());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("shown to nobody"), "{stderr}");
    let (_, listed, _) = keys(dir.path(), &["list", "--json"]);
    assert_eq!(listed, "", "no key was stored");

    // `vigil up 2>/dev/null` makes no admin key on its first start: it says why, on
    // stdout, and runs.
    let mut up = up_on(data)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut said = Vec::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(up.stdout.take().unwrap())) {
        let line: Value = serde_json::from_str(&line.unwrap()).unwrap();
        let message = line["message"].as_str().unwrap_or("").to_owned();
        said.push(message.clone());
        if message == "api_keys" {
            break;
        }
    }
    let _ = up.kill();
    let _ = up.wait();
    assert!(
        said.iter().any(|m| m == "admin_key_not_created"),
        "{said:?}"
    );
    let (_, listed, _) = keys(dir.path(), &["list", "--json"]);
    assert_eq!(listed, "", "no key was stored");

    let (ok, _, _) = keys(dir.path(), &["create", "--name", "ci", "--role", "predict"]);
    assert!(ok);
    let out = Command::new(vigil_binary())
        .args(["keys", "list", "--data-dir", data])
        .env_remove("VIGIL_CONFIG")
        .stdout(full())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot write the list"),
        "{out:?}"
    );
}

#[test]
fn keys_changed_at_the_same_time_lose_no_change() {
    // Each `vigil keys` reads the file, changes it and writes it back: without the
    // lock, the last to write dropped what the others added, and a revoked key came
    // back with an older copy.
    let dir = TempDir::new("keys-at-once");
    let (ok, _, err) = keys(
        dir.path(),
        &["create", "--name", "victim", "--role", "predict"],
    );
    assert!(ok, "{err}");
    let names: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
    let path = dir.path();
    std::thread::scope(|s| {
        let revoke = s.spawn(|| keys(path, &["revoke", "--name", "victim"]));
        let creates: Vec<_> = names
            .iter()
            .map(|n| s.spawn(move || keys(path, &["create", "--name", n, "--role", "predict"])))
            .collect();
        for c in creates {
            let (ok, key, err) = c.join().unwrap();
            assert!(ok && key.starts_with("vgl_"), "{err}");
        }
        let (ok, _, err) = revoke.join().unwrap();
        assert!(ok, "{err}");
    });
    let (ok, out, err) = keys(dir.path(), &["list", "--json"]);
    assert!(ok, "{err}");
    let mut listed: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    listed.sort();
    assert_eq!(listed, names);
}

/// A name in both the config file's `[[keys]]` and `keys.toml` (a `vigil keys create`
/// run without the config file) stops the start, saying where both are.
#[test]
fn a_key_name_in_both_sources_names_them() {
    let dir = TempDir::new("keys-both");
    let (ok, _, _) = keys(dir.path(), &["create", "--name", "ci", "--role", "predict"]);
    assert!(ok);
    let config = dir.path().join("vigil.toml");
    std::fs::write(
        &config,
        format!(
            "[[keys]]\nname = \"ci\"\nrole = \"predict\"\nsha256 = \"{}\"\n",
            "ab".repeat(32)
        ),
    )
    .unwrap();
    let out = Command::new(vigil_binary())
        .args(["serve", "--port", "0", "--config", config.to_str().unwrap()])
        .args(["--data-dir", dir.path().to_str().unwrap()])
        .env_remove("VIGIL_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("two keys are named \"ci\""), "{stderr}");
    assert!(
        stderr.contains("[[keys]]") && stderr.contains("keys.toml"),
        "{stderr}"
    );
}
