//! The dashboard's open incidents under `vigil serve --collector-url`: read over HTTP
//! from the collector (a separate `vigil collector` process here), and reported as
//! unreadable, not as "none", once that collector is gone. (`vigil up`, which reads
//! its own store, is covered by the browser test.)

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vigil_test_support::{TempDir, Vigil, vigil_binary};

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

/// Polls the overview until `done` holds for its `incidents` (the sampler reads them
/// every 5 s); returns them.
async fn incidents_until(url: &str, key: &str, done: impl Fn(&Value) -> bool) -> Value {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let overview: Value = http
            .get(url)
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let incidents = overview["incidents"].clone();
        if done(&incidents) {
            return incidents;
        }
        assert!(Instant::now() < deadline, "incidents stayed {incidents}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn serve_shows_the_remote_collectors_open_incidents_and_says_when_it_is_gone() {
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
    let incidents = incidents_until(&overview, &key, |i| {
        i["open"].as_array().is_some_and(|o| !o.is_empty())
    })
    .await;
    assert_eq!(incidents["source"], "collector");
    assert_eq!(incidents["error"], Value::Null);
    assert_eq!(incidents["open"][0]["alertname"], "FeatureDrift");
    assert_eq!(incidents["open"][0]["summary"], "Drift on temperature_c");

    collector.stop();
    let incidents = incidents_until(&overview, &key, |i| !i["error"].is_null()).await;
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
