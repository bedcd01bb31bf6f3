//! The real Python `tritonclient[http]` (pinned, in a venv `scripts/py-venv` makes)
//! against a running `vigil serve`: health, readiness, metadata, infer with binary and
//! JSON tensors (answers equal to `/predict`'s for the same rows), FP64 input, errors
//! as the client reports them, and the README's example run as written.

use std::process::Command;

use serde_json::{Value, json};
use vigil_test_support::{TempDir, Vigil, get_text, post_json, sample, tritonclient_python};

const ROWS: [[f32; 6]; 3] = [
    [70.0, 250.0, 2.5, 45.0, 1500.0, 12.0],
    [95.0, 250.0, 6.0, 70.0, 1500.0, 18.0],
    [68.5, 240.0, 3.0, 50.0, 1450.0, 11.5],
];

fn run_python(args: &[&str]) -> String {
    let out = Command::new(tritonclient_python())
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python {args:?} failed:\n{stderr}");
    String::from_utf8(out.stdout).unwrap()
}

fn as_f32(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|row| match row.as_array() {
            Some(items) => items.iter().map(|x| x.as_f64().unwrap() as f32).collect(),
            None => vec![row.as_f64().unwrap() as f32],
        })
        .collect()
}

#[tokio::test]
async fn tritonclient_talks_to_vigil_and_gets_predicts_answers() {
    let vigil = Vigil::start(&[], &[]);
    let predicted = post_json(
        &reqwest::Client::new(),
        vigil.url("/predict"),
        &json!({ "instances": ROWS }),
    )
    .await;
    let predictions = predicted["predictions"].as_array().unwrap();
    let want_labels: Vec<&str> = predictions
        .iter()
        .map(|p| p["label"].as_str().unwrap())
        .collect();
    let want_probs: Vec<f32> = predictions
        .iter()
        .flat_map(|p| as_f32(&p["probabilities"]))
        .collect();
    assert_eq!(want_labels, ["ok", "defect", "ok"]);

    let host = vigil.url("").trim_start_matches("http://").to_owned();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tritonclient/drive.py");
    let seen: Value = serde_json::from_str(&run_python(&[
        script,
        &host,
        &serde_json::to_string(&ROWS).unwrap(),
    ]))
    .unwrap();

    for key in ["live", "ready", "model_ready", "model_version_ready"] {
        assert_eq!(seen[key], true, "{key}");
    }
    assert_eq!(seen["unknown_model_ready"], false);
    assert_eq!(seen["server"]["extensions"], json!(["binary_tensor_data"]));
    assert_eq!(seen["metadata"], seen["metadata_version"]);
    assert_eq!(
        seen["metadata"]["inputs"],
        json!([{"name": "input", "datatype": "FP32", "shape": [-1, 6]}])
    );
    for case in ["binary", "json", "versioned", "fp64"] {
        let got = &seen[case];
        assert_eq!(got["label"], json!(want_labels), "{case}");
        assert_eq!(as_f32(&got["probabilities"]), want_probs, "{case}");
    }
    assert_eq!(seen["json"]["response"]["id"], "req-7");
    // The binary answer really was binary: no inline data.
    assert!(
        seen["binary"]["response"]["outputs"][0]
            .get("data")
            .is_none()
    );
    assert!(
        seen["binary"]["response"]["outputs"][0]["parameters"]["binary_data_size"].as_u64()
            == Some(24)
    );

    let refused = |key: &str, status: &str, needle: &str| {
        let r = &seen[key];
        assert_eq!(r["status"], status, "{key}: {r}");
        let message = r["message"].as_str().unwrap();
        assert!(message.contains(needle), "{key}: {message}");
    };
    refused("unknown_model", "404", "not loaded");
    refused("wrong_shape", "400", "expects 6");
    refused("non_finite", "400", "not finite");

    // Measured as /predict's are: 3 rows per call, 4 successful calls, under the
    // route template.
    let metrics = get_text(vigil.url("/metrics")).await;
    assert_eq!(
        sample(
            &metrics,
            r#"predictions_total{model="defect-detector",version="1.0.0",status="success"}"#
        ),
        3.0 + 4.0 * 3.0
    );
    assert_eq!(
        sample(
            &metrics,
            r#"http_requests_total{method="POST",route="/v2/models/{name}/infer",status="200"}"#
        ),
        3.0
    );
}

/// The README's tritonclient example, run as written against a running vigil.
#[test]
fn the_readmes_tritonclient_example_runs() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section = readme
        .split("## Open Inference Protocol")
        .nth(1)
        .expect("the README's Open Inference Protocol section");
    let code = section
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a python block in the section");
    let vigil = Vigil::start(&[], &[]);
    let host = vigil.url("").trim_start_matches("http://").to_owned();
    let dir = TempDir::new("readme-tritonclient");
    let path = dir.path().join("example.py");
    std::fs::write(&path, code.replace("localhost:8000", &host)).unwrap();
    let out = run_python(&[path.to_str().unwrap()]);
    // What the README shows it prints.
    let shown = section
        .split("```text\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the example's output in the section");
    assert_eq!(out, shown);
}
