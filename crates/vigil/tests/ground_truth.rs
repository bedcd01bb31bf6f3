//! Ground truth through the real binary: `vigil up` announces its cards to its own
//! collector, and labels sent for its answers (some before their records are stored)
//! grade the model; `vigil serve --collector-url` announces its cards over HTTP to a
//! collector that starts after it.

use std::time::Duration;

use serde_json::{Value, json};
use vigil_test_support::{
    Vigil, eventually, free_port, get_json, get_text, post_json, try_sample, wait_for_metric_within,
};

const GOOD: [f64; 6] = [70.0, 250.0, 2.5, 45.0, 1500.0, 12.0];
const PATIENCE: Duration = Duration::from_secs(60);

/// Polls the collector's `/models` until it knows `n` cards.
async fn wait_for_cards(client: &reqwest::Client, collector: &str, n: usize) -> Value {
    eventually(PATIENCE, async || {
        let cards: Value = get_json(client, format!("{collector}/models")).await;
        if cards["models"].as_array().is_some_and(|m| m.len() >= n) {
            Ok(cards)
        } else {
            Err(format!("cards never arrived: {cards}"))
        }
    })
    .await
}

#[tokio::test]
async fn up_grades_its_answers_by_the_labels_sent_for_them() {
    // Gauges over five minutes of label time; `GET /quality` takes its own window.
    let up = Vigil::start_command("up", &["--quality-window-s", "300"], &[]);
    let collector = format!("http://{}", up.address_of("collector"));
    let inference = format!("http://{}", up.address_of("inference"));
    let client = reqwest::Client::new();
    let cards = wait_for_cards(&client, &collector, 2).await;
    let detector = cards["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["model"] == "defect-detector")
        .unwrap();
    assert_eq!(detector["labels"], json!(["ok", "defect"]));
    assert_eq!(detector["task"], "classification");

    // 50 answers; the labels go out at once, so some reach the collector before
    // their record does and wait for it.
    let mut labels = Vec::new();
    let mut old = Vec::new();
    for i in 0..55 {
        let answer = post_json(
            &client,
            format!("{inference}/predict"),
            &json!({"features": GOOD}),
        )
        .await;
        let said = answer["predictions"][0]["label"]
            .as_str()
            .unwrap_or_else(|| panic!("{answer}"))
            .to_owned();
        // Every fifth label says the model was wrong.
        let truth = match (i % 5 == 0, said.as_str()) {
            (false, _) => said.clone(),
            (true, "ok") => "defect".to_owned(),
            (true, _) => "ok".to_owned(),
        };
        if i >= 50 {
            // Five labels that became known twenty minutes ago: outside the gauges'
            // window, inside an hour's.
            let at = time::OffsetDateTime::now_utc() - time::Duration::minutes(20);
            let at = at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap();
            old.push(
                json!({"prediction_id": answer["prediction_id"], "label": said, "timestamp": at}),
            );
            continue;
        }
        labels.push(json!({"prediction_id": answer["prediction_id"], "label": truth}));
    }
    labels.extend(old);
    let r = client
        .post(format!("{collector}/feedback"))
        .json(&json!({ "feedback": labels }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let counts: Value = r.json().await.unwrap();
    assert_eq!(counts["accepted"], 55, "{counts}");
    assert_eq!(counts["duplicates"], 0, "{counts}");

    // Every label graded, early ones included, and none left waiting for its record:
    // the five old labels are outside the gauges' window, so the graded count can
    // reach 50 while one of them still waits for its prediction to be stored.
    let series = "model_quality_labels{model=\"defect-detector\"}";
    eventually(PATIENCE, async || {
        let metrics = get_text(format!("{collector}/metrics")).await;
        if try_sample(&metrics, series) == Some(50.0)
            && try_sample(&metrics, "feedback_pending_labels") == Some(0.0)
        {
            Ok(())
        } else {
            Err(format!("labels never all graded: {metrics}"))
        }
    })
    .await;
    let metrics = get_text(format!("{collector}/metrics")).await;
    assert_eq!(
        try_sample(&metrics, "model_accuracy{model=\"defect-detector\"}"),
        Some(0.8)
    );
    assert_eq!(try_sample(&metrics, "feedback_pending_labels"), Some(0.0));
    let quality: Value = get_json(
        &client,
        format!("{collector}/quality?model=defect-detector"),
    )
    .await;
    let m = &quality["models"][0];
    assert_eq!(m["labels"], 55, "{quality}");
    assert_eq!(m["accuracy"], 45.0 / 55.0, "{quality}");
    assert_eq!(m["coverage"]["labelled"], 55);
    assert_eq!(m["coverage"]["predicted"], 55);
    let recent: Value = get_json(
        &client,
        format!("{collector}/quality?model=defect-detector&window=5m"),
    )
    .await;
    assert_eq!(recent["models"][0]["accuracy"], 0.8, "{recent}");
    assert_eq!(
        try_sample(
            &metrics,
            "model_feedback_total{model=\"defect-detector\",outcome=\"correct\"}"
        ),
        Some(45.0)
    );
}

#[tokio::test]
async fn serve_announces_its_cards_to_a_collector_that_comes_later() {
    let port = free_port();
    let collector_url = format!("http://127.0.0.1:{port}");
    let serve = Vigil::start(&["--collector-url", &collector_url], &[]);
    // The collector is not there yet: the announcement is retried.
    serve.wait_for_log("model_card_announce_failed");
    let collector = Vigil::start_command("collector", &["--port", &port.to_string()], &[]);
    let client = reqwest::Client::new();
    let cards = wait_for_cards(&client, &collector.url(""), 2).await;
    let names: Vec<&str> = cards["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["model"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["defect-detector", "digits"]);
    serve.wait_for_log("model_card_announced");
}

/// The collector's lines about a request's work carry that request's ids and service,
/// though the work runs in a task of its own (so a client that hangs up cannot cut it
/// off): `vigil logs --request-id` finds them.
#[tokio::test]
async fn the_collectors_lines_about_a_request_carry_its_ids() {
    let up = Vigil::start_command("up", &[], &[]);
    let collector = format!("http://{}", up.address_of("collector"));
    let client = reqwest::Client::new();
    wait_for_cards(&client, &collector, 2).await;
    // A label before its record: it waits, and joins when the record comes.
    let r = client
        .post(format!("{collector}/feedback"))
        .header("x-request-id", "rid-feedback")
        .json(&json!({"prediction_id": "p-early", "label": "ok"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let r = client
        .post(format!("{collector}/log"))
        .header("x-request-id", "rid-log")
        .json(
            &json!({"prediction_id": "p-early", "model": "defect-detector",
            "model_version": "1.0.0", "timestamp": now, "latency_ms": 1.0,
            "request_id": "rid-inner", "status": "success", "label": "ok",
            "confidence": 0.9}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let series = "model_quality_labels{model=\"defect-detector\"}";
    wait_for_metric_within(&format!("{collector}/metrics"), series, 1.0, PATIENCE).await;
    let lines: Vec<Value> = up
        .stdout_after_stop()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let line = |message: &str, rid: &str| {
        lines
            .iter()
            .find(|l| l["message"] == message && l["request_id"] == rid)
            .unwrap_or_else(|| panic!("no {message} line with request_id {rid}"))
    };
    for (message, rid) in [
        ("feedback_stored", "rid-feedback"),
        ("records_stored", "rid-log"),
        ("pending_labels_joined", "rid-log"),
    ] {
        let l = line(message, rid);
        assert_eq!(l["service"], "collector", "{l}");
        assert!(l["trace_id"].as_str().is_some_and(|t| t.len() == 32), "{l}");
    }
    // A write's duration to the microsecond, not whole milliseconds (mostly 0).
    let stored = line("records_stored", "rid-log");
    assert!(stored["duration_ms"].is_f64(), "{stored}");
}
