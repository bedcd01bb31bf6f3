//! Ground truth through the collector's real router, on SQLite and on a throwaway
//! PostgreSQL: 400 labelled predictions with exactly 20 % wrong give accuracy 0.8 and
//! exact per-class figures; early labels wait and join, late ones count their lag,
//! duplicates are counted; bad labels are refused whole and add no series; a restart
//! refills the quality window; pending labels are bounded and expire.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode, header};
use serde_json::{Value, json};
use vigil_collector::feedback::FeedbackConfig;
use vigil_collector::{CollectorConfig, CollectorState, app};
use vigil_store::Store;
use vigil_store::testing::{Postgres, TempDir};
use vigil_test_support::oneshot::{assert_error, get, post, send};
use vigil_test_support::prometheus::series;
use vigil_test_support::sample;

const MODEL: &str = "defect-detector";

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn put(uri: &str, body: Value) -> Request<Body> {
    Request::put(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn record(id: &str, label: &str, ts_ms: i64) -> Value {
    json!({
        "prediction_id": id, "model": MODEL, "model_version": "1.0.0",
        "timestamp": rfc3339(ts_ms), "label": label, "confidence": 0.9,
        "is_defect": label == "defect", "latency_ms": 1.0, "request_id": format!("req-{id}"),
        "status": "success",
    })
}

fn card() -> Value {
    json!({"model": MODEL, "version": "1.0.0", "task": "classification",
           "labels": ["ok", "defect"], "baseline": {"accuracy": 0.95}})
}

fn collector_state(store: Store, feedback: FeedbackConfig) -> CollectorState {
    CollectorState::new(
        store,
        CollectorConfig {
            max_records: 500,
            feedback,
            ..CollectorConfig::default()
        },
    )
}

/// The collector's router on a SQLite store in a new temporary directory (kept alive by
/// the first value).
async fn sqlite_app(name: &str) -> (TempDir, Router) {
    let dir = TempDir::new(name);
    let app = app(collector_state(
        Store::sqlite(dir.path()).await.unwrap(),
        FeedbackConfig::default(),
    ));
    (dir, app)
}

async fn metrics(app: &Router) -> String {
    send(app, get("/metrics")).await.text
}

/// Prediction i is `ok` for even i, `defect` for odd; the 80 wrong labels are those
/// of the first 80 `ok` predictions, whose truth is `defect`. So: truth ok → ok 120;
/// truth defect → ok 80, → defect 200.
fn truth(i: usize) -> &'static str {
    if i.is_multiple_of(2) && i < 160 {
        "defect"
    } else if i.is_multiple_of(2) {
        "ok"
    } else {
        "defect"
    }
}

fn predicted(i: usize) -> &'static str {
    if i.is_multiple_of(2) { "ok" } else { "defect" }
}

fn label(i: usize, at_ms: Option<i64>) -> Value {
    let mut l = json!({"prediction_id": format!("f-{i}"), "label": truth(i)});
    if let Some(at) = at_ms {
        l["timestamp"] = json!(rfc3339(at));
    }
    l
}

async fn grades_400_predictions(store: Store) {
    let state = collector_state(store.clone(), FeedbackConfig::default());
    let app = app(state.clone());
    let r = send(&app, put(&format!("/models/{MODEL}"), card())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let now = now_ms();
    let two_days = 2 * 86_400_000;

    // Early: labels for predictions 0..40 before their records exist.
    let early: Vec<Value> = (0..40).map(|i| label(i, None)).collect();
    let r = send(
        &app,
        post("/feedback", json!({ "feedback": early }).to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"accepted": 40, "pending": 40, "duplicates": 0})
    );
    assert_eq!(
        sample(&metrics(&app).await, "feedback_pending_labels"),
        40.0
    );

    // The records: 300..400 were made two days ago (their labels are late), the
    // rest now; 100 more recent predictions never get a label.
    let records: Vec<Value> = (0..400)
        .map(|i| {
            record(
                &format!("f-{i}"),
                predicted(i),
                if i >= 300 { now - two_days } else { now },
            )
        })
        .chain((0..100).map(|i| record(&format!("u-{i}"), "ok", now)))
        .collect();
    for chunk in records.chunks(250) {
        let r = send(&app, post("/log", json!({ "records": chunk }).to_string())).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    }
    // The early labels joined when their records came.
    assert_eq!(sample(&metrics(&app).await, "feedback_pending_labels"), 0.0);

    // The rest, in batches, with ten early ones sent again.
    let rest: Vec<Value> = (30..400).map(|i| label(i, Some(now_ms()))).collect();
    let mut accepted = 0;
    let mut duplicates = 0;
    for chunk in rest.chunks(100) {
        let r = send(
            &app,
            post("/feedback", json!({ "feedback": chunk }).to_string()),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        assert_eq!(r.body["pending"], 0);
        accepted += r.body["accepted"].as_u64().unwrap();
        duplicates += r.body["duplicates"].as_u64().unwrap();
    }
    assert_eq!((accepted, duplicates), (360, 10));
    // One label alone (not a batch), already given: a duplicate.
    let r = send(&app, post("/feedback", label(5, None).to_string())).await;
    assert_eq!(
        r.body,
        json!({"accepted": 0, "pending": 0, "duplicates": 1})
    );

    let q = send(&app, get(&format!("/quality?model={MODEL}"))).await;
    assert_eq!(q.status, StatusCode::OK, "{}", q.text);
    let m = &q.body["models"][0];
    assert_eq!(m["labels"], 400, "{}", q.text);
    assert_eq!(m["accuracy"], 0.8);
    assert_eq!(m["baseline"]["accuracy"], 0.95);
    assert_eq!(
        m["confusion"],
        json!({"classes": ["ok", "defect"], "matrix": [[120, 0], [80, 200]]})
    );
    assert_eq!(
        m["classes"][0],
        json!({"class": "ok", "precision": 0.6, "recall": 1.0, "f1": 0.75, "support": 120})
    );
    assert_eq!(m["classes"][1]["precision"], 1.0);
    assert_eq!(m["classes"][1]["recall"], 200.0 / 280.0);
    assert_eq!(m["classes"][1]["support"], 280);
    // Every confidence is 0.9 and 80 % are right.
    assert!(
        (m["calibration_error"].as_f64().unwrap() - 0.1).abs() < 1e-9,
        "{}",
        q.text
    );
    // 300 labelled among the 400 predictions made in the last hour.
    assert_eq!(
        m["coverage"],
        json!({"labelled": 300, "predicted": 400, "ratio": 0.75})
    );
    // Every model at once (the window's predictions counted for all in one read):
    // each gets its own count, a model with none 0.
    for (name, n) in [("line-speed", 3), ("idle-model", 0)] {
        let card = json!({"model": name, "version": "2", "task": "classification",
                          "labels": ["ok", "defect"]});
        let r = send(&app, put(&format!("/models/{name}"), card)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let records: Vec<Value> = (0..n)
            .map(|i| {
                let mut r = record(&format!("{name}-{i}"), "ok", now);
                r["model"] = json!(name);
                r["model_version"] = json!("2");
                r
            })
            .collect();
        if !records.is_empty() {
            let r = send(
                &app,
                post("/log", json!({ "records": records }).to_string()),
            )
            .await;
            assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        }
    }
    let all = send(&app, get("/quality")).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    let coverage: std::collections::BTreeMap<String, Value> = all.body["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["model"].as_str().unwrap().to_owned(),
                m["coverage"].clone(),
            )
        })
        .collect();
    assert_eq!(coverage[MODEL], m["coverage"], "{}", all.text);
    assert_eq!(coverage["line-speed"]["predicted"], 3, "{}", all.text);
    assert_eq!(coverage["idle-model"]["predicted"], 0, "{}", all.text);
    // 100 of 400 labels came two days after their prediction: p95 is one of them.
    let (p50, p95) = (
        m["lag_seconds"]["p50"].as_f64().unwrap(),
        m["lag_seconds"]["p95"].as_f64().unwrap(),
    );
    assert!(p50 < 60.0, "{}", q.text);
    assert!((p95 - 172_800.0).abs() < 60.0, "{}", q.text);

    let text = metrics(&app).await;
    assert_eq!(
        sample(
            &text,
            &format!("model_feedback_total{{model=\"{MODEL}\",outcome=\"correct\"}}")
        ),
        320.0
    );
    assert_eq!(
        sample(
            &text,
            &format!("model_feedback_total{{model=\"{MODEL}\",outcome=\"incorrect\"}}")
        ),
        80.0
    );
    assert_eq!(
        sample(&text, &format!("model_accuracy{{model=\"{MODEL}\"}}")),
        0.8
    );
    assert_eq!(
        sample(&text, &format!("model_quality_labels{{model=\"{MODEL}\"}}")),
        400.0
    );
    assert_eq!(
        sample(
            &text,
            &format!("model_class_precision{{model=\"{MODEL}\",class=\"ok\"}}")
        ),
        0.6
    );
    assert_eq!(
        sample(
            &text,
            &format!("model_class_recall{{model=\"{MODEL}\",class=\"defect\"}}")
        ),
        200.0 / 280.0
    );
    assert!(
        (sample(
            &text,
            &format!("model_calibration_error{{model=\"{MODEL}\"}}")
        ) - 0.1)
            .abs()
            < 1e-9
    );
    assert_eq!(
        sample(
            &text,
            &format!("model_baseline_accuracy{{model=\"{MODEL}\"}}")
        ),
        0.95
    );
    assert_eq!(
        sample(
            &text,
            &format!("model_feedback_lag_seconds_count{{model=\"{MODEL}\"}}")
        ),
        400.0
    );
    assert_eq!(
        sample(
            &text,
            &format!("model_feedback_lag_seconds_bucket{{le=\"60.0\",model=\"{MODEL}\"}}")
        ),
        300.0
    );

    // Bad labels: each refused with its index and field, nothing stored, no series
    // (but the bounded per-status HTTP ones).
    let model_series = |text: &str| {
        series(text)
            .into_iter()
            .filter(|s| !s.starts_with("http_"))
            .collect::<std::collections::BTreeSet<_>>()
    };
    let before = model_series(&text);
    let bad_batches = [
        (
            json!({"feedback": [label(1000, None), {"prediction_id": "u-1", "label": "meh"}]}),
            "label",
        ),
        (
            json!({"feedback": [{"prediction_id": "never-1", "label": "meh"}]}),
            "label",
        ),
        (
            json!({"feedback": [{"prediction_id": "u-2", "value": 3.5}]}),
            "value",
        ),
        (
            json!({"feedback": [{"prediction_id": "u-2", "label": "ok", "value": 1}]}),
            "label",
        ),
        (
            json!({"feedback": [{"prediction_id": "bad id", "label": "ok"}]}),
            "prediction_id",
        ),
        (json!({"feedback": [{"label": "ok"}]}), "prediction_id"),
        (
            json!({"feedback": [{"prediction_id": "x-1", "label": "ok\u{0}"}]}),
            "label",
        ),
        (
            json!({"feedback": [{"prediction_id": "x-1", "label": "ok", "timestamp": rfc3339(now_ms() + 3_600_000)}]}),
            "timestamp",
        ),
        (
            json!({"feedback": [{"prediction_id": "x-1", "label": "ok", "timestamp": "yesterday"}]}),
            "timestamp",
        ),
    ];
    for (body, field) in bad_batches {
        let r = send(&app, post("/feedback", body.to_string())).await;
        assert_eq!(
            assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY),
            "invalid_records",
            "{body}"
        );
        let errors = r.body["error"]["details"]["errors"].as_array().unwrap();
        assert_eq!(errors.last().unwrap()["field"], field, "{}", r.text);
    }
    // A true value beyond a model's f32 range: its error would overflow the sums.
    let r = send(
        &app,
        post(
            "/feedback",
            json!({"feedback": [{"prediction_id": "x-3", "value": 1e300}]}).to_string(),
        ),
    )
    .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY);
    let reason = &r.body["error"]["details"]["errors"][0]["reason"];
    assert!(reason.as_str().unwrap().contains("3.4e38"), "{}", r.text);
    for (body, status) in [
        ("{", StatusCode::BAD_REQUEST),
        ("[1]", StatusCode::UNPROCESSABLE_ENTITY),
        (r#"{"feedback": []}"#, StatusCode::UNPROCESSABLE_ENTITY),
        (r#"{"feedback": 3}"#, StatusCode::UNPROCESSABLE_ENTITY),
        (
            r#"{"feedback": [], "extra": 1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"prediction_id": "x-1", "label": "ok", "extra": 1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        // Broken JSON after a repeated key is broken JSON.
        (
            r#"{"label": "ok", "label": "ok",,}"#,
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let r = send(&app, post("/feedback", body)).await;
        assert_error(&r, status);
    }
    // A repeated key is refused, as `/log` refuses it, not read as its last value.
    for body in [
        r#"{"prediction_id": "x-1", "label": "ok", "label": "defect"}"#,
        r#"{"feedback": [{"prediction_id": "x-1", "label": "ok"}], "feedback": []}"#,
        r#"{"feedback": [{"prediction_id": "x-1", "prediction_id": "x-2", "label": "ok"}]}"#,
    ] {
        let r = send(&app, post("/feedback", body)).await;
        assert_eq!(
            assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY),
            "invalid_body",
            "{body}"
        );
        assert!(r.text.contains("duplicate field"), "{body}: {}", r.text);
    }
    let too_many: Vec<Value> = (0..501)
        .map(|i| json!({"prediction_id": format!("z-{i}"), "label": "ok"}))
        .collect();
    let r = send(
        &app,
        post("/feedback", json!({ "feedback": too_many }).to_string()),
    )
    .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY);
    for (uri, status) in [
        ("/quality?model=nope", StatusCode::NOT_FOUND),
        ("/quality?window=forever", StatusCode::BAD_REQUEST),
        ("/quality?colour=red", StatusCode::BAD_REQUEST),
    ] {
        assert_error(&send(&app, get(uri)).await, status);
    }
    for (uri, body) in [
        (
            format!("/models/{MODEL}"),
            json!({"model": "other", "version": "1", "task": "classification", "labels": ["a", "b"]}),
        ),
        (
            "/models/x".to_owned(),
            json!({"model": "x", "version": "1", "task": "classification", "labels": ["a"]}),
        ),
        (
            "/models/x".to_owned(),
            json!({"model": "x", "version": "1", "task": "clustering"}),
        ),
    ] {
        assert_error(
            &send(&app, put(&uri, body)).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let text = metrics(&app).await;
    assert_eq!(model_series(&text), before, "bad input added series");
    assert_eq!(
        sample(&text, &format!("model_quality_labels{{model=\"{MODEL}\"}}")),
        400.0
    );

    // A restarted collector on the same database: the same window, from the table.
    let again = collector_state(store, FeedbackConfig::default());
    again.load_feedback().await.unwrap();
    let text = metrics(&vigil_collector::app(again)).await;
    assert_eq!(
        sample(&text, &format!("model_accuracy{{model=\"{MODEL}\"}}")),
        0.8
    );
    assert_eq!(
        sample(&text, &format!("model_quality_labels{{model=\"{MODEL}\"}}")),
        400.0
    );
    assert_eq!(
        sample(
            &text,
            &format!("model_baseline_accuracy{{model=\"{MODEL}\"}}")
        ),
        0.95
    );
}

#[tokio::test]
async fn sqlite_grades_400_predictions_exactly() {
    let dir = TempDir::new("feedback");
    grades_400_predictions(Store::sqlite(dir.path()).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_grades_400_predictions_exactly() {
    let pg = Postgres::start();
    grades_400_predictions(
        Store::open(Some(&pg.database()), std::path::Path::new("/x"))
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn a_regressor_is_graded_by_its_errors() {
    let (_dir, app) = sqlite_app("feedback-reg").await;
    let card = json!({"model": "price", "version": "2", "task": "regression", "baseline": {"mae": 1.0, "rmse": 1.5}});
    assert_eq!(
        send(&app, put("/models/price", card)).await.status,
        StatusCode::OK
    );
    let now = now_ms();
    let records: Vec<Value> = (0..5)
        .map(|i| json!({"prediction_id": format!("r-{i}"), "model": "price", "model_version": "2",
            "timestamp": rfc3339(now), "value": 10.0 + i as f64, "is_defect": false, "latency_ms": 1.0,
            "request_id": format!("req-{i}"), "status": "success"}))
        .collect();
    let r = send(
        &app,
        post("/log", json!({ "records": records }).to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    // Errors 1, -1, 3, 0: MAE 1.25, RMSE sqrt(11/4).
    let labels: Vec<Value> = [9.0, 12.0, 9.0, 13.0]
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"prediction_id": format!("r-{i}"), "value": v}))
        .collect();
    let r = send(
        &app,
        post("/feedback", json!({ "feedback": labels }).to_string()),
    )
    .await;
    assert_eq!(
        r.body,
        json!({"accepted": 4, "pending": 0, "duplicates": 0}),
        "{}",
        r.text
    );
    // A record without its answer (one an inference service never sends) cannot be
    // graded: its label is refused, not counted and left out of the quality.
    let bare = json!({"prediction_id": "r-bare", "model": "price", "model_version": "2",
        "timestamp": rfc3339(now), "is_defect": false, "latency_ms": 1.0,
        "request_id": "req-bare", "status": "success"});
    let r = send(&app, post("/log", bare.to_string())).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let r = send(
        &app,
        post(
            "/feedback",
            json!({"prediction_id": "r-bare", "value": 3.0}).to_string(),
        ),
    )
    .await;
    assert_eq!(
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY),
        "invalid_records"
    );
    assert!(r.text.contains("no value"), "{}", r.text);
    // A class label for a regressor is refused.
    let r = send(
        &app,
        post(
            "/feedback",
            json!({"prediction_id": "r-4", "label": "high"}).to_string(),
        ),
    )
    .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY);
    let q = send(&app, get("/quality?model=price&window=15m")).await;
    let m = &q.body["models"][0];
    assert_eq!(
        (m["mae"].as_f64(), m["labels"].as_u64()),
        (Some(1.25), Some(4)),
        "{}",
        q.text
    );
    assert_eq!(m["rmse"].as_f64(), Some((11.0f64 / 4.0).sqrt()));
    assert_eq!(m["abs_error"], json!({"p50": 1.0, "p90": 3.0, "p99": 3.0}));
    assert!(
        m.get("accuracy").is_none() && m.get("confusion").is_none(),
        "{}",
        q.text
    );
    let text = metrics(&app).await;
    assert_eq!(
        sample(&text, "model_mean_absolute_error{model=\"price\"}"),
        1.25
    );
    assert_eq!(
        sample(&text, "model_root_mean_squared_error{model=\"price\"}"),
        (11.0f64 / 4.0).sqrt()
    );
    assert_eq!(
        sample(
            &text,
            "model_feedback_total{model=\"price\",outcome=\"scored\"}"
        ),
        4.0
    );
    assert_eq!(
        sample(&text, "model_baseline_mean_absolute_error{model=\"price\"}"),
        1.0
    );
    // A label dated ahead of the collector's clock (within the 5 minutes of skew
    // allowed) is taken as now: in `/quality` at once, as in the gauges, not only
    // once its time comes (when the gauges' window may have let it go).
    let ahead =
        json!({"prediction_id": "r-4", "value": 14.0, "timestamp": rfc3339(now_ms() + 240_000)});
    let r = send(&app, post("/feedback", ahead.to_string())).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let q = send(&app, get("/quality?model=price&window=1m")).await;
    assert_eq!(q.body["models"][0]["labels"], 5, "{}", q.text);
    assert_eq!(
        sample(
            &metrics(&app).await,
            "model_quality_labels{model=\"price\"}"
        ),
        5.0
    );
}

#[tokio::test]
async fn pending_labels_are_bounded_and_expire() {
    let dir = TempDir::new("feedback-pending");
    let store = Store::sqlite(dir.path()).await.unwrap();
    let state = collector_state(
        store,
        FeedbackConfig {
            pending_max: 5,
            pending_ttl: Duration::from_millis(1),
            ..FeedbackConfig::default()
        },
    );
    let app = app(state.clone());
    // Every reason's series exists from start, at 0: a drop adds none.
    let text = metrics(&app).await;
    for reason in ["evicted", "expired", "rejected"] {
        let series = format!("feedback_pending_dropped_total{{reason=\"{reason}\"}}");
        assert_eq!(sample(&text, &series), 0.0);
    }
    send(&app, put(&format!("/models/{MODEL}"), card())).await;
    let labels: Vec<Value> = (0..8).map(|i| label(i, None)).collect();
    let r = send(
        &app,
        post("/feedback", json!({ "feedback": labels }).to_string()),
    )
    .await;
    assert_eq!(r.body["pending"], 8, "{}", r.text);
    let text = metrics(&app).await;
    assert_eq!(
        sample(&text, "feedback_pending_dropped_total{reason=\"evicted\"}"),
        3.0
    );
    assert_eq!(sample(&text, "feedback_pending_labels"), 5.0);
    // Expiry (the probe's minute tick, called here) drops the rest.
    tokio::time::sleep(Duration::from_millis(5)).await;
    state.expire_pending().await;
    let text = metrics(&app).await;
    assert_eq!(
        sample(&text, "feedback_pending_dropped_total{reason=\"expired\"}"),
        5.0
    );
    assert_eq!(sample(&text, "feedback_pending_labels"), 0.0);
    // A label that waited for a prediction that then failed is dropped as rejected.
    let r = send(&app, post("/feedback", label(50, None).to_string())).await;
    assert_eq!(r.body["pending"], 1);
    let mut failed = record("f-50", "ok", now_ms());
    failed["status"] = json!("error");
    failed["error_type"] = json!("inference_failed");
    failed["label"] = Value::Null;
    failed["confidence"] = Value::Null;
    let r = send(&app, post("/log", failed.to_string())).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let text = metrics(&app).await;
    assert_eq!(
        sample(&text, "feedback_pending_dropped_total{reason=\"rejected\"}"),
        1.0
    );
    assert_eq!(sample(&text, "feedback_pending_labels"), 0.0);
}

/// Announced cards alone take none of the 64 model series (announcements are
/// unauthenticated), and labels of predictions stored without a confidence count the
/// same in `GET /quality` as in the gauges.
#[tokio::test]
async fn cards_take_no_series_and_labels_without_confidence_count_alike() {
    let (_dir, app) = sqlite_app("feedback-cards").await;
    for i in 0..70 {
        let card = json!({"model": format!("spam-{i}"), "version": "1", "task": "classification", "labels": ["a", "b"]});
        let r = send(&app, put(&format!("/models/spam-{i}"), card)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    metrics(&app).await;
    send(&app, put(&format!("/models/{MODEL}"), card())).await;
    let records: Vec<Value> = (0..4)
        .map(|i| {
            let mut r = record(&format!("n-{i}"), "ok", now_ms());
            r["confidence"] = Value::Null;
            r
        })
        .collect();
    let r = send(
        &app,
        post("/log", json!({ "records": records }).to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let labels: Vec<Value> = (0..4)
        .map(|i| json!({"prediction_id": format!("n-{i}"), "label": if i == 0 { "defect" } else { "ok" }}))
        .collect();
    let r = send(
        &app,
        post("/feedback", json!({ "feedback": labels }).to_string()),
    )
    .await;
    assert_eq!(r.body["accepted"], 4, "{}", r.text);
    let text = metrics(&app).await;
    assert_eq!(
        sample(&text, &format!("model_accuracy{{model=\"{MODEL}\"}}")),
        0.75
    );
    assert_eq!(
        sample(
            &text,
            &format!("logging_predictions_total{{model=\"{MODEL}\"}}")
        ),
        4.0
    );
    assert!(!text.contains("spam-"), "a card alone took series");
    let q = send(&app, get(&format!("/quality?model={MODEL}"))).await;
    let m = &q.body["models"][0];
    assert_eq!(
        (m["labels"].as_u64(), m["accuracy"].as_f64()),
        (Some(4), Some(0.75)),
        "{}",
        q.text
    );
    // No confidences: no calibration error, and no bin.
    assert!(m.get("calibration_error").is_none(), "{}", q.text);
}

/// A label is checked against the classes of the version that made its prediction: a
/// later version that dropped a class does not make the older predictions' labels of
/// that class unknown, and a restart keeps the versions.
#[tokio::test]
async fn labels_are_checked_against_the_version_that_answered() {
    let dir = TempDir::new("feedback-versions");
    let store = Store::sqlite(dir.path()).await.unwrap();
    let app = app(collector_state(store.clone(), FeedbackConfig::default()));
    let v1 = json!({"model": MODEL, "version": "1.0.0", "task": "classification", "labels": ["ok", "defect", "scratch"]});
    let v2 = json!({"model": MODEL, "version": "2.0.0", "task": "classification", "labels": ["ok", "defect"]});
    assert_eq!(
        send(&app, put(&format!("/models/{MODEL}"), v1))
            .await
            .status,
        StatusCode::OK
    );
    let old = record("v-1", "scratch", now_ms());
    let mut new = record("v-2", "ok", now_ms());
    new["model_version"] = json!("2.0.0");
    let r = send(
        &app,
        post("/log", json!({ "records": [old, new] }).to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(
        send(&app, put(&format!("/models/{MODEL}"), v2))
            .await
            .status,
        StatusCode::OK
    );
    // Version 2 has no `scratch`: its prediction's label of that class is refused.
    let r = send(
        &app,
        post(
            "/feedback",
            json!({"prediction_id": "v-2", "label": "scratch"}).to_string(),
        ),
    )
    .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY);
    // After a restart, version 1's prediction still takes it.
    let again = collector_state(store, FeedbackConfig::default());
    again.load_feedback().await.unwrap();
    let app = vigil_collector::app(again);
    let r = send(
        &app,
        post(
            "/feedback",
            json!({"prediction_id": "v-1", "label": "scratch"}).to_string(),
        ),
    )
    .await;
    assert_eq!(
        r.body,
        json!({"accepted": 1, "pending": 0, "duplicates": 0}),
        "{}",
        r.text
    );
    let cards = send(&app, get("/models")).await;
    assert_eq!(
        cards.body["models"][0]["version"], "2.0.0",
        "{}",
        cards.text
    );
}

/// The models that have quality series in `text`.
fn graded_models(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("model_quality_labels{model=\""))
        .filter_map(|l| l.split_once('"').map(|(m, _)| m.to_owned()))
        .collect()
}

/// Past the bound on model names (64), which models keep their own series depends on
/// the order they came in; a restart refilling the quality window gave the places out
/// in the database's order (classifiers first), so a regressor's series moved to
/// `other` and its alert went blind. Now the window's models take places in the order
/// their cards were announced, which is the order their records came in here.
#[tokio::test]
async fn a_restart_keeps_which_models_have_series_past_the_bound() {
    use vigil_records::{BaselineSummary, CardSummary, Task};
    let dir = TempDir::new("feedback-bound");
    let store = Store::sqlite(dir.path()).await.unwrap();
    // Announced one a millisecond apart: the regressor, then classifiers whose names
    // run against the order they came in (a tie-break by name would reorder them).
    let mut models = vec!["house".to_owned()];
    models.extend((0..69).rev().map(|i| format!("n-{i:02}")));
    for (i, model) in models.iter().enumerate() {
        let card = CardSummary {
            model: model.clone(),
            version: "1".into(),
            task: if i == 0 {
                Task::Regression
            } else {
                Task::Classification
            },
            labels: if i == 0 {
                vec![]
            } else {
                vec!["a".into(), "b".into()]
            },
            baseline: (i == 0).then_some(BaselineSummary {
                accuracy: None,
                mae: Some(5.0),
                rmse: None,
            }),
        };
        store.put_card(&card, 1_000 + i as i64).await.unwrap();
    }
    let state = collector_state(store.clone(), FeedbackConfig::default());
    state.load_feedback().await.unwrap();
    let app = app(state);
    let now = now_ms();
    for (i, model) in models.iter().enumerate() {
        let mut record = json!({"prediction_id": format!("b-{i}"), "model": model,
            "model_version": "1", "timestamp": rfc3339(now), "is_defect": false,
            "latency_ms": 1.0, "request_id": format!("req-{i}"), "status": "success"});
        let mut label = json!({"prediction_id": format!("b-{i}")});
        if i == 0 {
            record["value"] = json!(100.0);
            label["value"] = json!(150.0);
        } else {
            record["label"] = json!("a");
            record["confidence"] = json!(0.9);
            label["label"] = json!("a");
        }
        let r = send(&app, post("/log", record.to_string())).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        let r = send(&app, post("/feedback", label.to_string())).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    }
    let before = graded_models(&metrics(&app).await);
    assert!(before.contains(&"house".to_owned()), "{before:?}");
    assert!(before.contains(&"other".to_owned()), "{before:?}");
    assert!(!before.contains(&"n-00".to_owned()), "{before:?}");

    let again = collector_state(store, FeedbackConfig::default());
    again.load_feedback().await.unwrap();
    let text = metrics(&vigil_collector::app(again)).await;
    assert_eq!(graded_models(&text), before);
    assert_eq!(
        sample(&text, "model_mean_absolute_error{model=\"house\"}"),
        50.0
    );
}

/// A null is a field left out, as in a record (a client serialising every field of its
/// label type sends `"value": null` beside a label; it was refused as both given).
#[tokio::test]
async fn a_null_field_is_one_left_out() {
    let (_dir, app) = sqlite_app("feedback-null").await;
    let r = send(&app, put(&format!("/models/{MODEL}"), card())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let label = json!({"prediction_id": "p-1", "label": "ok", "value": null, "timestamp": null});
    let r = send(&app, post("/feedback", label.to_string())).await;
    assert_eq!(
        r.body,
        json!({"accepted": 1, "pending": 1, "duplicates": 0}),
        "{}",
        r.text
    );
    let neither = json!({"prediction_id": "p-2", "label": null, "value": null});
    let r = send(&app, post("/feedback", neither.to_string())).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY);
    let errors = r.body["error"]["details"]["errors"].as_array().unwrap();
    assert_eq!(errors[0]["field"], "label", "{}", r.text);
}
