//! The dashboard's views of the collector under `vigil serve --collector-url`: open
//! incidents and accuracy measured from ground truth, read over HTTP from the
//! collector (a separate `vigil collector` process here), and reported as unreadable,
//! not as "none", once that collector is gone. (`vigil up`, which reads its own
//! collector in process, is covered by the browser test.)

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use vigil_test_support::{TempDir, Vigil, eventually, get_json_with_key, post_json, vigil_binary};

const PATIENCE: Duration = Duration::from_secs(30);

fn create_admin_key(data_dir: &std::path::Path) -> String {
    let out = Command::new(vigil_binary())
        .args(["keys", "create", "--name", "ops", "--role", "admin"])
        .args(["--data-dir", data_dir.to_str().unwrap()])
        .env_remove("VIGIL_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Polls the overview until `done` holds for its `part` (`incidents` or `quality`; the
/// sampler reads them every 5 s); returns that part.
async fn overview_until(url: &str, key: &str, part: &str, done: impl Fn(&Value) -> bool) -> Value {
    let http = reqwest::Client::new();
    eventually(PATIENCE, async || {
        let overview = get_json_with_key(&http, url, key).await;
        let view = overview[part].clone();
        if done(&view) {
            Ok(view)
        } else {
            Err(format!("{part} stayed {view}"))
        }
    })
    .await
}

#[tokio::test]
async fn serve_shows_the_remote_collectors_incidents_and_quality_and_says_when_it_is_gone() {
    let collector = Vigil::start_command("collector", &[], &[]);
    let collector_url = format!("http://{}", collector.address_of("collector"));
    let alert = json!({
        "version": "4", "groupKey": "{}:{alertname=\"FeatureDrift\"}", "truncatedAlerts": 0, "status": "firing",
        "receiver": "vigil-collector", "groupLabels": {"alertname": "FeatureDrift"},
        "commonLabels": {"alertname": "FeatureDrift", "severity": "warning"},
        "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": "firing", "labels": {"alertname": "FeatureDrift", "severity": "warning"},
            "annotations": {"summary": "Drift on temperature_c"},
            "startsAt": "2026-12-01T21:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph", "fingerprint": "0f1e2d3c4b5a6978"
        }]
    });
    let opened = reqwest::Client::new()
        .post(format!("{collector_url}/alerts"))
        .json(&alert)
        .send()
        .await
        .unwrap();
    assert!(opened.status().is_success());

    let dir = TempDir::new("dashboard-incidents");
    let key = create_admin_key(dir.path());
    let serve = Vigil::start(
        &[
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--collector-url",
            &collector_url,
        ],
        &[],
    );
    let overview = serve.url("/dashboard/api/overview");
    let incidents = overview_until(&overview, &key, "incidents", |i| {
        i["open"].as_array().is_some_and(|o| !o.is_empty())
    })
    .await;
    assert_eq!(incidents["source"], "collector");
    assert_eq!(incidents["error"], Value::Null);
    assert_eq!(incidents["open"][0]["alertname"], "FeatureDrift");
    assert_eq!(incidents["open"][0]["summary"], "Drift on temperature_c");

    // Ten answers, labelled at the collector, two of the labels wrong: the dashboard
    // shows the measured accuracy beside the card's.
    let http = reqwest::Client::new();
    let mut labels = Vec::new();
    for i in 0..10 {
        let answer = post_json(
            &http,
            serve.url("/predict"),
            &json!({"features": [70, 250, 2.5, 45, 1500, 12]}),
        )
        .await;
        let said = answer["predictions"][0]["label"].as_str().unwrap();
        let truth = if i < 2 {
            if said == "ok" { "defect" } else { "ok" }
        } else {
            said
        };
        labels.push(json!({"prediction_id": answer["prediction_id"], "label": truth}));
    }
    let sent = http
        .post(format!("{collector_url}/feedback"))
        .json(&json!({ "feedback": labels }))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 202);
    let quality = overview_until(&overview, &key, "quality", |q| {
        q["models"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["labels"] == 10))
    })
    .await;
    assert_eq!(quality["source"], "collector");
    let detector = &quality["models"][0];
    assert_eq!(detector["model"], "defect-detector");
    assert_eq!(detector["accuracy"], 0.8);
    assert_eq!(detector["baseline_accuracy"], 0.9205);

    collector.stop();
    let quality = overview_until(&overview, &key, "quality", |q| !q["error"].is_null()).await;
    assert_eq!(quality["models"], json!([]));
    let incidents = overview_until(&overview, &key, "incidents", |i| !i["error"].is_null()).await;
    assert_eq!(incidents["open"], json!([]));
    assert!(
        incidents["error"]
            .as_str()
            .unwrap()
            .contains("did not answer"),
        "{incidents}"
    );
    serve.stop();
}
