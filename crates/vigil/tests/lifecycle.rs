//! Hot model swap through the real binary: a new version uploaded while clients
//! predict without pause costs not one failed request, answers move to the new
//! version and never back, and a restart on the same data dir serves the uploaded
//! version with the same admin key.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use vigil_model::bundled::MODELS;
use vigil_test_support::{TempDir, Vigil, eventually, eventually_blocking, multipart, post_json};

const CLIENTS: usize = 4;

/// Predicts until `stop`; every answer's status and model version, in order.
async fn client(url: String, stop: Arc<AtomicBool>) -> Vec<(u16, String)> {
    let http = reqwest::Client::new();
    let mut seen = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let reply = http
            .post(&url)
            .json(&json!({"features": [70, 250, 2.5, 45, 1500, 12]}))
            .send()
            .await
            .unwrap();
        let status = reply.status().as_u16();
        let body: Value = reply.json().await.unwrap_or(Value::Null);
        let version = body["model_version"].as_str().unwrap_or("").to_owned();
        seen.push((status, version));
    }
    seen
}

/// Polls until `version` of defect-detector has answered at least `n` predictions.
async fn served_at_least(metrics_url: &str, version: &str, n: f64) {
    let metric = format!(
        "predictions_total{{model=\"defect-detector\",version=\"{version}\",status=\"success\"}}"
    );
    eventually(Duration::from_secs(20), async || {
        let text = vigil_test_support::get_text(metrics_url).await;
        if vigil_test_support::try_sample(&text, &metric).unwrap_or(0.0) >= n {
            Ok(())
        } else {
            Err(format!("{version} never served {n} predictions"))
        }
    })
    .await
}

#[tokio::test]
async fn a_version_swapped_under_load_fails_no_request_and_survives_a_restart() {
    let dir = TempDir::new("swap");
    let data = dir.path().to_str().unwrap();
    let vigil = Vigil::start_command("up", &["--data-dir", data], &[]);
    let key = vigil.admin_key();
    let inference = vigil.address_of("inference");
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(client(format!("http://{inference}/predict"), stop.clone())))
        .collect();
    // Load is flowing before the swap: the counter moves.
    let metrics_url = format!("http://{inference}/metrics");
    served_at_least(&metrics_url, "1.0.0", 200.0).await;

    let (_, onnx, card) = MODELS[0];
    let v2 = card.replacen("version = \"1.0.0\"", "version = \"2.0.0\"", 1);
    let uploaded = reqwest::Client::new()
        .post(format!("http://{inference}/admin/models/defect-detector"))
        .bearer_auth(&key)
        .header("content-type", multipart::content_type())
        .body(multipart::form(&[("onnx", onnx), ("card", v2.as_bytes())]))
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 201);

    // Load keeps flowing after the swap, on the new version.
    served_at_least(&metrics_url, "2.0.0", 200.0).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let seen = c.await.unwrap();
        assert!(seen.len() > 10);
        let failed: Vec<_> = seen.iter().filter(|(s, _)| *s != 200).collect();
        assert!(
            failed.is_empty(),
            "failed requests during the swap: {failed:?}"
        );
        // Each client moves from 1.0.0 to 2.0.0 once and never goes back.
        let first_new = seen
            .iter()
            .position(|(_, v)| v == "2.0.0")
            .expect("saw 2.0.0");
        assert!(seen[..first_new].iter().all(|(_, v)| v == "1.0.0"));
        assert!(seen[first_new..].iter().all(|(_, v)| v == "2.0.0"));
    }
    let lines = {
        let stdout = vigil.stdout_after_stop();
        stdout
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let audit = lines
        .iter()
        .find(|l| l["message"] == "audit" && l["action"] == "upload")
        .expect("an upload audit line");
    assert_eq!(audit["user"], "admin");
    assert_eq!(audit["outcome"], "success");
    assert_eq!(audit["from_version"], "1.0.0");
    assert_eq!(audit["to_version"], "2.0.0");
    assert!(!lines.iter().any(|l| l.to_string().contains(&key)));

    // Same data dir: the uploaded version serves, the same admin key opens /admin.
    let again = Vigil::start_command("up", &["--data-dir", data], &[]);
    let inference = again.address_of("inference");
    let http = reqwest::Client::new();
    let answer = post_json(
        &http,
        format!("http://{inference}/predict"),
        &json!({"features": [70, 250, 2.5, 45, 1500, 12]}),
    )
    .await;
    assert_eq!(answer["model_version"], "2.0.0");
    let versions = http
        .get(format!(
            "http://{inference}/admin/models/defect-detector/versions"
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(versions.status(), 200);
    let versions: Value = versions.json().await.unwrap();
    assert_eq!(versions["active"], "2.0.0");
    again.stop();
}

/// Copies the bundled models' directory into `to`.
fn copy_models(to: &std::path::Path) {
    let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    for model in ["defect-detector", "digits"] {
        std::fs::create_dir_all(to.join(model)).unwrap();
        for file in ["model.onnx", "model.toml"] {
            std::fs::copy(from.join(model).join(file), to.join(model).join(file)).unwrap();
        }
    }
}

/// Waits for the next `models_rescanned` or `models_rescan_failed` line after `seen`.
fn next_rescan(vigil: &Vigil, seen: &mut usize) -> Value {
    let line = eventually_blocking(Duration::from_secs(20), || {
        vigil
            .lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| {
                v["message"] == "models_rescanned" || v["message"] == "models_rescan_failed"
            })
            .nth(*seen)
            .ok_or_else(|| "no rescan line".to_string())
    });
    *seen += 1;
    line
}

async fn version(vigil: &Vigil, model: &str) -> (u16, String) {
    let reply = reqwest::Client::new()
        .post(vigil.url(&format!("/models/{model}/predict")))
        .json(&json!({"features": vec![8.0; 64]}))
        .send()
        .await
        .unwrap();
    let status = reply.status().as_u16();
    let body: Value = reply.json().await.unwrap();
    (
        status,
        body["model_version"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test]
async fn sighup_rescans_the_models_directory() {
    let dir = TempDir::new("rescan");
    let models = dir.path().join("models");
    copy_models(&models);
    let vigil = Vigil::start(&["--models-dir", models.to_str().unwrap()], &[]);
    let mut seen = 0;
    assert_eq!(version(&vigil, "digits").await, (200, "1.0.0".into()));

    // A new version in place, and a new model beside it.
    let card = models.join("digits/model.toml");
    let text = std::fs::read_to_string(&card).unwrap();
    std::fs::write(
        &card,
        text.replacen("version = \"1.0.0\"", "version = \"1.1.0\"", 1),
    )
    .unwrap();
    std::fs::create_dir_all(models.join("digits-b")).unwrap();
    std::fs::copy(
        models.join("digits/model.onnx"),
        models.join("digits-b/model.onnx"),
    )
    .unwrap();
    std::fs::write(
        models.join("digits-b/model.toml"),
        text.replacen("name = \"digits\"", "name = \"digits-b\"", 1),
    )
    .unwrap();
    vigil.signal("HUP");
    let line = next_rescan(&vigil, &mut seen);
    assert_eq!(line["message"], "models_rescanned", "{line}");
    assert_eq!(version(&vigil, "digits").await, (200, "1.1.0".into()));
    assert_eq!(version(&vigil, "digits-b").await, (200, "1.0.0".into()));
    // An audit event a model it changed, with the versions (written before the
    // models_rescanned line).
    let reloads: Vec<(Value, Value, Value)> = vigil
        .lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "audit" && v["action"] == "reload")
        .map(|v| {
            (
                v["model"].clone(),
                v["from_version"].clone(),
                v["to_version"].clone(),
            )
        })
        .collect();
    assert_eq!(
        reloads,
        [
            (json!("digits"), json!("1.0.0"), json!("1.1.0")),
            (json!("digits-b"), Value::Null, json!("1.0.0")),
        ]
    );

    // A directory that does not load changes nothing.
    std::fs::create_dir_all(models.join("broken")).unwrap();
    std::fs::write(models.join("broken/model.onnx"), b"not onnx").unwrap();
    std::fs::copy(
        models.join("digits-b/model.toml"),
        models.join("broken/model.toml"),
    )
    .unwrap();
    vigil.signal("HUP");
    let line = next_rescan(&vigil, &mut seen);
    assert_eq!(line["message"], "models_rescan_failed", "{line}");
    assert_eq!(version(&vigil, "digits").await, (200, "1.1.0".into()));
    std::fs::remove_dir_all(models.join("broken")).unwrap();

    // A model gone from the directory is unloaded.
    std::fs::remove_dir_all(models.join("digits-b")).unwrap();
    vigil.signal("HUP");
    let line = next_rescan(&vigil, &mut seen);
    assert_eq!(line["unloaded"], serde_json::json!(["digits-b"]), "{line}");
    assert_eq!(version(&vigil, "digits-b").await.0, 404);
    let metrics = vigil.metrics().await;
    assert_eq!(
        vigil_test_support::sample(&metrics, "audit_events_total{action=\"reload\"}"),
        // Two models changed by the first rescan, the refused one, the unload.
        4.0
    );
    assert_eq!(
        vigil_test_support::sample(&metrics, "model_loaded{model=\"digits\",version=\"1.0.0\"}"),
        0.0
    );
    vigil.stop();
}

/// The JSON answer of a request.
async fn json_of(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// A rescan while an uploaded version serves: the directory's new version is what a
/// rollback returns to (it stayed out of `history`, so the rollback went to a version
/// no longer in the directory, then nowhere); and the default model, gone from the
/// directory but still serving, lists the version it serves.
#[tokio::test]
async fn a_rescan_under_an_uploaded_version_keeps_the_directorys_for_rollback() {
    let dir = TempDir::new("rescan-rollback");
    let models = dir.path().join("models");
    copy_models(&models);
    let data = dir.path().join("data");
    let vigil = Vigil::start_command(
        "up",
        &[
            "--models-dir",
            models.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[],
    );
    let key = vigil.admin_key();
    let inference = vigil.address_of("inference");
    let http = reqwest::Client::new();
    let admin = |method: reqwest::Method, path: &str| {
        http.request(method, format!("http://{inference}/admin/models/{path}"))
            .bearer_auth(&key)
    };
    let card = models.join("digits/model.toml");
    let text = std::fs::read_to_string(&card).unwrap();
    let onnx = std::fs::read(models.join("digits/model.onnx")).unwrap();
    let u1 = text.replacen("version = \"1.0.0\"", "version = \"u1\"", 1);
    let uploaded = admin(reqwest::Method::POST, "digits")
        .header("content-type", multipart::content_type())
        .body(multipart::form(&[("onnx", &onnx), ("card", u1.as_bytes())]))
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 201);

    std::fs::write(
        &card,
        text.replacen("version = \"1.0.0\"", "version = \"d2\"", 1),
    )
    .unwrap();
    let mut seen = 0;
    vigil.signal("HUP");
    let line = next_rescan(&vigil, &mut seen);
    assert_eq!(line["kept"], json!(["digits"]), "{line}");
    let versions: Value = json_of(admin(reqwest::Method::GET, "digits/versions")).await;
    assert_eq!(versions["history"], json!(["d2"]), "{versions}");
    let rolled: Value = json_of(admin(reqwest::Method::POST, "digits/rollback")).await;
    assert_eq!(rolled["to_version"], "d2", "{rolled}");
    let answer = post_json(
        &http,
        format!("http://{inference}/models/digits/predict"),
        &json!({"features": vec![8.0; 64]}),
    )
    .await;
    assert_eq!(answer["model_version"], "d2", "{answer}");

    // The default model's directory gone: it keeps serving, and says which version.
    std::fs::rename(
        models.join("defect-detector"),
        dir.path().join("defect-detector"),
    )
    .unwrap();
    vigil.signal("HUP");
    let line = next_rescan(&vigil, &mut seen);
    assert_eq!(line["kept"], json!(["defect-detector"]), "{line}");
    let versions: Value = json_of(admin(reqwest::Method::GET, "defect-detector/versions")).await;
    assert_eq!(versions["active"], "1.0.0", "{versions}");
    assert_eq!(versions["versions"][0]["version"], "1.0.0", "{versions}");
    assert_eq!(versions["versions"][0]["active"], true, "{versions}");
    vigil.stop();
}

#[tokio::test]
async fn sighup_does_not_end_a_collector() {
    let vigil = Vigil::start_command("collector", &[], &[]);
    vigil.signal("HUP");
    let line = vigil.wait_for_log("models_rescan_skipped");
    assert_eq!(line["reason"], "the collector serves no models");
    let health = reqwest::get(vigil.url("/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    let (code, _) = vigil.stop();
    assert_eq!(code, Some(0));
}

/// On SIGTERM both services of `vigil up` answer their readiness probe 503 at once and
/// keep serving for the shutdown delay, so load balancers stop routing to them before
/// they stop accepting; then the process exits cleanly.
#[tokio::test]
async fn the_shutdown_delay_keeps_both_services_serving_but_not_ready() {
    let vigil = Vigil::start_command("up", &[], &[("VIGIL_SHUTDOWN_DELAY_MS", "5000")]);
    // `vigil.url` is the first service to listen, `up`'s collector: name both.
    let inference = format!("http://{}", vigil.address_of("inference"));
    let collector = format!("http://{}", vigil.address_of("collector"));
    let client = reqwest::Client::new();
    let status = |url: String| {
        let client = client.clone();
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(format!("{inference}/health/ready")).await, 200);
    assert_eq!(status(format!("{collector}/health/ready")).await, 200);

    vigil.signal("TERM");
    // Logged once both services are not ready; the delay has just begun.
    vigil.wait_for_log("shutdown_started");
    assert_eq!(status(format!("{inference}/health/ready")).await, 503);
    assert_eq!(status(format!("{collector}/health/ready")).await, 503);
    assert_eq!(status(format!("{inference}/health/live")).await, 200);
    assert_eq!(status(format!("{collector}/health/live")).await, 200);
    let predicted = client
        .post(format!("{inference}/predict"))
        .json(&json!({"features": [70, 250, 2.5, 45, 1500, 12]}))
        .send()
        .await
        .unwrap();
    assert_eq!(predicted.status(), 200);

    let (code, lines) = vigil.stop();
    assert_eq!(code, Some(0));
    assert!(lines.iter().any(|l| l["message"] == "shutdown_complete"));
}

/// A second Ctrl-C during a graceful shutdown ends it at once (exit 1,
/// `shutdown_forced`): the person at the terminal had no way out of a long delay or
/// drain. A repeated SIGTERM still waits (the test above stops with one).
#[test]
fn a_second_ctrl_c_ends_a_long_shutdown_at_once() {
    let vigil = Vigil::start_command("up", &[], &[("VIGIL_SHUTDOWN_DELAY_MS", "600000")]);
    vigil.signal("INT");
    vigil.wait_for_log("shutdown_started");
    vigil.signal("INT");
    let (code, lines) = vigil.stop();
    assert_eq!(code, Some(1));
    assert!(lines.iter().any(|l| l["message"] == "shutdown_forced"));
    assert!(!lines.iter().any(|l| l["message"] == "shutdown_complete"));
}
