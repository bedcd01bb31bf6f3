//! The inference API contract, exercised through the real router with `oneshot` (no
//! socket): happy paths, every kind of bad input, the error shape, and the metric
//! series that bad input must not create.

use std::collections::BTreeSet;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode, header};
use serde_json::{Value, json};
use vigil_model::ModelRegistry;
use vigil_server::router::RouterConfig;
use vigil_server::{AppState, Limits, app};
use vigil_test_support::oneshot::{assert_error, get, post, send, with_method};
use vigil_test_support::prometheus::series;
use vigil_test_support::sample;

const GOOD: [f64; 6] = [70.0, 250.0, 2.5, 45.0, 1500.0, 12.0];

fn state_with(limits: Limits) -> AppState {
    AppState::new(ModelRegistry::bundled().unwrap(), limits)
}

fn router() -> (Router, AppState) {
    let state = state_with(Limits {
        body_limit: 64 * 1024,
        max_batch: 8,
        ..Limits::default()
    });
    (app(state.clone(), RouterConfig::default()), state)
}

async fn metrics_text(app: &Router) -> String {
    send(app, get("/metrics")).await.text
}

#[tokio::test]
async fn predicts_one_instance_with_the_default_model() {
    let (app, _) = router();
    let reply = send(
        &app,
        post("/predict", json!({"features": GOOD}).to_string()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let b = &reply.body;
    assert_eq!(b["model"], "defect-detector");
    assert_eq!(b["model_version"], "1.0.0");
    assert_eq!(
        b["request_id"],
        reply.headers["x-request-id"].to_str().unwrap()
    );
    assert!(uuid::Uuid::parse_str(b["prediction_id"].as_str().unwrap()).is_ok());
    assert!(
        time::OffsetDateTime::parse(
            b["created_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok()
    );
    assert!(b["latency_ms"].as_f64().unwrap() >= 0.0);
    let p = &b["predictions"][0];
    assert_eq!(p["label"], "ok");
    assert_eq!(p["class_index"], 0);
    assert_eq!(p["probabilities"].as_array().unwrap().len(), 2);
    assert_eq!(p["confidence"], p["probabilities"][0]);
}

#[tokio::test]
async fn predicts_batches_and_named_models() {
    let (app, _) = router();
    let hot = [95.0, 250.0, 6.0, 70.0, 1500.0, 18.0];
    let reply = send(
        &app,
        post("/predict", json!({"instances": [GOOD, hot]}).to_string()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let labels: Vec<_> = reply.body["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["label"].clone())
        .collect();
    assert_eq!(labels, [json!("ok"), json!("defect")]);

    let digit = vec![8.0; 64];
    for req in [
        post(
            "/models/digits/predict",
            json!({"features": digit}).to_string(),
        ),
        post(
            "/predict",
            json!({"model": "digits", "features": digit}).to_string(),
        ),
        post(
            "/models/digits/predict",
            json!({"model": "digits", "instances": [digit]}).to_string(),
        ),
    ] {
        let reply = send(&app, req).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_eq!(reply.body["model"], "digits");
        assert_eq!(
            reply.body["predictions"][0]["probabilities"]
                .as_array()
                .unwrap()
                .len(),
            10
        );
    }
}

#[tokio::test]
async fn bad_input_gets_the_right_4xx_and_is_counted() {
    let (app, _) = router();
    // First pass: every status and route the cases reach gets its (bounded) series.
    for (req, ..) in bad_cases() {
        send(&app, req).await;
    }
    metrics_text(&app).await;
    let before = metrics_text(&app).await;
    let cases = bad_cases();
    let total = cases.len();
    for (req, status, code, position) in cases {
        let what = format!("{} {}", req.method(), req.uri());
        let reply = send(&app, req).await;
        assert_eq!(assert_error(&reply, status), code, "{what}: {}", reply.text);
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(message.len() <= 1024, "{what}: {message}");
        // So are the details' quotes (the model name of the 60,000-byte case).
        let details = reply.body["error"]["details"].to_string();
        assert!(details.len() <= 1100, "{what}: {details}");
        if let Some((instance, feature)) = position {
            assert_eq!(
                reply.body["error"]["details"]["instance"], instance,
                "{what}: {}",
                reply.text
            );
            assert_eq!(
                reply.body["error"]["details"]["feature"],
                json!(feature),
                "{what}: {}",
                reply.text
            );
        }
    }
    let after = metrics_text(&app).await;
    let (b, a) = (series(&before), series(&after));
    assert_eq!(
        a.symmetric_difference(&b).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "bad input must not add series"
    );
    let counted: f64 = after
        .lines()
        .filter(|l| l.starts_with("input_validation_errors_total{"))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum();
    // Both passes count; every case but the GET /models/nope lookup is a rejected prediction.
    assert_eq!(counted as usize, 2 * (total - 1), "{after}");
    assert_eq!(
        sample(
            &after,
            "input_validation_errors_total{model=\"defect-detector\",reason=\"non_finite\"}"
        ),
        4.0
    );
    assert_eq!(
        sample(
            &after,
            "input_validation_errors_total{model=\"unknown\",reason=\"unsupported_media_type\"}"
        ),
        6.0
    );
    assert_eq!(
        sample(
            &after,
            "input_validation_errors_total{model=\"digits\",reason=\"invalid_body\"}"
        ),
        2.0
    );
    assert!(!after.contains("status=\"5"), "no 5xx: {after}");
}

type Case = (
    Request<Body>,
    StatusCode,
    &'static str,
    Option<(u64, Option<u64>)>,
);

fn bad_cases() -> Vec<Case> {
    let mut nine = vec![GOOD.to_vec(); 9];
    nine[0][0] = 70.5;
    vec![
        (
            post("/predict", "{\"features\": [1, 2"),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
        ),
        (
            post("/predict", "not json"),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
        ),
        // Broken after a field a typed parse refuses first: still broken JSON.
        (
            post("/predict", "{\"x\": 1,,}"),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
        ),
        (
            post("/predict", ""),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
        ),
        (
            Request::post("/predict")
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from("{}"))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            None,
        ),
        (
            Request::post("/predict").body(Body::from("{}")).unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            None,
        ),
        // A compressed body is not read as if it were plain.
        (
            Request::post("/predict")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONTENT_ENCODING, "gzip")
                .body(Body::from(json!({"features": GOOD}).to_string()))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            None,
        ),
        (
            post("/predict", json!({"features": [1, 2, 3]}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong_feature_count",
            Some((0, None)),
        ),
        (
            post("/predict", "{\"features\": [70, 250, NaN, 45, 1500, 12]}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "non_finite",
            Some((0, Some(2))),
        ),
        (
            post(
                "/predict",
                "{\"features\": [70, 250, 2.5, -Infinity, 1500, 12]}",
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "non_finite",
            Some((0, Some(3))),
        ),
        (
            post("/predict", "{\"features\": [70, 250, 2.5, 45, 1e400, 12]}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "out_of_range",
            Some((0, Some(4))),
        ),
        (
            post("/predict", "{\"features\": [70, 250, 2.5, 150, 1500, 12]}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "out_of_range",
            Some((0, Some(3))),
        ),
        (
            post("/predict", "{\"features\": [70, 250, 2.5, 45, 1500, null]}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_type",
            Some((0, Some(5))),
        ),
        (
            post(
                "/predict",
                "{\"features\": [\"70\", 250, 2.5, 45, 1500, 12]}",
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_type",
            Some((0, Some(0))),
        ),
        (
            post("/predict", json!({"instances": [GOOD, [1, 2]]}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong_feature_count",
            Some((1, None)),
        ),
        (
            post("/predict", json!({"instances": [GOOD, 5]}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_type",
            Some((1, None)),
        ),
        (
            post("/predict", json!({"instances": []}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty_batch",
            None,
        ),
        (
            post("/predict", json!({"instances": nine}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "batch_too_large",
            None,
        ),
        (
            post("/predict", json!({}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            None,
        ),
        (
            post(
                "/predict",
                json!({"features": GOOD, "instances": [GOOD]}).to_string(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            None,
        ),
        (
            post("/predict", json!({"feature": GOOD}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            None,
        ),
        (
            post("/predict", json!([1, 2]).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            None,
        ),
        // A struct would take an array field by field (`features` first): a body is
        // an object.
        (
            post("/predict", json!([GOOD]).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            None,
        ),
        // Python's NaN as the model's name: not a string.
        (
            post(
                "/predict",
                format!("{{\"model\": NaN, \"features\": {}}}", json!(GOOD)),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            None,
        ),
        // A bare NaN beside a wrong shape: the shape's 422, not a syntax error at the
        // NaN (which was what the body's first parse met).
        (
            post(
                "/predict",
                "{\"features\": [70, 250, 2.5, 45, 1500, NaN], \"extra\": 1}",
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            None,
        ),
        (
            post("/predict", "{\"features\": NaN}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            None,
        ),
        // Broken syntax elsewhere is still a syntax error.
        (
            post(
                "/predict",
                "{\"features\": [70, 250, 2.5, 45, 1500, NaN],,}",
            ),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
        ),
        // The mark NaN is read as, sent as a string: a string.
        (
            post(
                "/predict",
                json!({"features": ["\u{0}non-finite", 250, 2.5, 45, 1500, 12]}).to_string(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_type",
            Some((0, Some(0))),
        ),
        (
            post(
                "/models/digits/predict",
                json!({"model": "defect-detector", "features": GOOD}).to_string(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            None,
        ),
        (
            post(
                "/predict",
                json!({"model": "nope", "features": GOOD}).to_string(),
            ),
            StatusCode::NOT_FOUND,
            "model_not_found",
            None,
        ),
        // Its message and details quote the name: cut, not 60,000 bytes long.
        (
            post(
                "/predict",
                json!({"model": "n".repeat(60_000), "features": GOOD}).to_string(),
            ),
            StatusCode::NOT_FOUND,
            "model_not_found",
            None,
        ),
        (
            post(
                "/models/nope/predict",
                json!({"features": GOOD}).to_string(),
            ),
            StatusCode::NOT_FOUND,
            "model_not_found",
            None,
        ),
        (
            get("/models/nope"),
            StatusCode::NOT_FOUND,
            "model_not_found",
            None,
        ),
    ]
}

/// A bare NaN where a list belongs: the message names it as the client wrote it, not
/// as the mark it is read as, and gives no position in the re-read text.
#[tokio::test]
async fn a_bare_nan_in_the_wrong_place_is_named_as_sent() {
    let (app, _) = router();
    let reply = send(&app, post("/predict", "{\"features\": NaN}")).await;
    assert_eq!(
        assert_error(&reply, StatusCode::UNPROCESSABLE_ENTITY),
        "invalid_body"
    );
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("a bare NaN or Infinity"), "{message}");
    assert!(
        !message.contains('\0') && !message.contains("\\0") && !message.contains("column"),
        "{message}"
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let (app, _) = router();
    // Declared too large: refused before reading.
    let req = Request::post("/predict")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, (10 * 1024 * 1024).to_string())
        .body(Body::from("{}"))
        .unwrap();
    let reply = send(&app, req).await;
    assert_eq!(
        assert_error(&reply, StatusCode::PAYLOAD_TOO_LARGE),
        "payload_too_large"
    );
    assert_eq!(reply.body["error"]["details"]["limit_bytes"], 64 * 1024);

    // Chunked (no length): cut off once the limit is crossed. The stream would go on
    // for a gigabyte; the answer must come after about the first 64 KiB.
    let produced = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = produced.clone();
    let chunks = futures_util::stream::iter((0..16 * 1024).map(move |i| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let chunk = if i == 0 {
            "{\"features\": [".to_owned()
        } else {
            "1,".repeat(32 * 1024)
        };
        Ok::<_, std::io::Error>(bytes::Bytes::from(chunk))
    }));
    let req = Request::post("/predict")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(chunks))
        .unwrap();
    let reply = send(&app, req).await;
    assert_eq!(
        assert_error(&reply, StatusCode::PAYLOAD_TOO_LARGE),
        "payload_too_large"
    );
    assert!(
        produced.load(std::sync::atomic::Ordering::SeqCst) < 10,
        "read far past the limit"
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json_and_add_no_series() {
    let (app, _) = router();
    // Warm up: one of each kind, so the only series are the collapsed ones.
    send(&app, get("/warm-up")).await;
    send(&app, with_method("BREW", "/warm")).await;
    send(&app, with_method("BREW", "/predict")).await;
    send(&app, with_method("DELETE", "/predict")).await;
    metrics_text(&app).await;
    let before = metrics_text(&app).await;
    for i in 0..2000u32 {
        let path = format!(
            "/{}/{:x}/{}",
            i % 7,
            i.wrapping_mul(2_654_435_761),
            "x".repeat((i % 50) as usize)
        );
        let reply = send(&app, get(&path)).await;
        assert_eq!(assert_error(&reply, StatusCode::NOT_FOUND), "not_found");
    }
    let odd = [
        "BREW",
        "PROPFIND",
        "MKCOL",
        "COPY",
        "MOVE",
        "LOCK",
        "UNLOCK",
        "PURGE",
        "LINK",
        "UNLINK",
        "SEARCH",
        "REPORT",
        "MKCALENDAR",
        "ACL",
        "BIND",
        "REBIND",
        "UNBIND",
        "CHECKOUT",
        "MERGE",
        "X-CUSTOM-METHOD",
    ];
    for method in odd {
        let reply = send(&app, with_method(method, "/predict")).await;
        assert_eq!(
            assert_error(&reply, StatusCode::METHOD_NOT_ALLOWED),
            "method_not_allowed"
        );
        let reply = send(&app, with_method(method, format!("/odd/{method}"))).await;
        assert_eq!(assert_error(&reply, StatusCode::NOT_FOUND), "not_found");
    }
    let after = metrics_text(&app).await;
    assert_eq!(series(&before), series(&after));
    assert!(
        after
            .contains("http_requests_total{method=\"OTHER\",route=\"/predict\",status=\"405\"} 21"),
        "{after}"
    );
    assert!(
        after.contains(
            "http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 2001"
        ),
        "{after}"
    );
}

#[tokio::test]
async fn request_ids_are_kept_only_when_safe() {
    let (app, _) = router();
    let with_id = |id: &[u8]| {
        Request::get("/health/live")
            .header("x-request-id", http::HeaderValue::from_bytes(id).unwrap())
            .body(Body::empty())
            .unwrap()
    };
    let reply = send(&app, with_id(b"order-42")).await;
    assert_eq!(reply.headers["x-request-id"], "order-42");
    // (Other control characters cannot even be sent: the HTTP parser refuses them.)
    for bad in [
        vec![b'a'; 129],
        b"tab\there".to_vec(),
        "caf\u{e9}".as_bytes().to_vec(),
    ] {
        let reply = send(&app, with_id(&bad)).await;
        let got = reply.headers["x-request-id"].to_str().unwrap();
        assert!(
            uuid::Uuid::parse_str(got).is_ok(),
            "{bad:?} should be replaced, got {got}"
        );
    }
    // The id in an error body is the same one.
    let req = Request::post("/predict")
        .header("x-request-id", "mine-1")
        .body(Body::empty())
        .unwrap();
    let reply = send(&app, req).await;
    assert_eq!(reply.body["request_id"], "mine-1");
}

#[tokio::test]
async fn traceparent_is_joined_or_ignored() {
    let (app, _) = router();
    let req = Request::get("/health/live")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(Body::empty())
        .unwrap();
    let reply = send(&app, req).await;
    let tp = reply.headers["traceparent"].to_str().unwrap();
    assert!(
        tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{tp}"
    );
    assert!(!tp.contains("00f067aa0ba902b7"), "our own span id: {tp}");
    let req = Request::get("/health/live")
        .header("traceparent", "00-zz-yy-01")
        .body(Body::empty())
        .unwrap();
    let reply = send(&app, req).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        !reply.headers["traceparent"]
            .to_str()
            .unwrap()
            .contains("zz")
    );
}

#[tokio::test]
async fn models_health_and_openapi() {
    let (app, state) = router();
    let reply = send(&app, get("/models")).await;
    assert_eq!(reply.body["default_model"], "defect-detector");
    let names: Vec<_> = reply.body["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["defect-detector", "digits"]);
    let reply = send(&app, get("/models/defect-detector")).await;
    assert_eq!(reply.body["features"][0]["name"], "temperature_c");
    // The training distribution is published so clients can sample realistic inputs.
    let reference = &reply.body["features"][0]["reference"];
    assert_eq!(
        reference["edges"].as_array().unwrap().len() + 1,
        reference["expected"].as_array().unwrap().len()
    );
    assert_eq!(reply.body["labels"], json!(["ok", "defect"]));
    assert_eq!(reply.body["defect_labels"], json!(["defect"]));
    assert_eq!(reply.body["status"], "loaded");
    // No traffic yet: no drift to report, and the document says so (a fuzzer found
    // `null` where it promised a number).
    assert_eq!(reply.body["drift"]["window_rows"], 0);
    assert_eq!(
        reply.body["drift"]["features"]["temperature_c"],
        Value::Null
    );

    let reply = send(&app, get("/health")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["status"], "healthy");
    assert_eq!(reply.body["checks"]["models"]["status"], "pass");
    assert!(reply.body["uptime_seconds"].as_f64().is_some());
    assert_eq!(send(&app, get("/health/live")).await.status, StatusCode::OK);
    assert_eq!(
        send(&app, get("/health/ready")).await.status,
        StatusCode::OK
    );
    state.set_ready(false);
    let reply = send(&app, get("/health/ready")).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.body["status"], "not_ready");

    let doc = send(&app, get("/openapi.json")).await.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths: BTreeSet<_> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let routes: BTreeSet<_> = [
        "/predict",
        "/models",
        "/models/{name}",
        "/models/{name}/predict",
        "/health",
        "/health/live",
        "/health/ready",
        "/metrics",
        "/openapi.json",
        "/admin/models/{name}",
        "/admin/models/{name}/versions",
        "/admin/models/{name}/rollback",
        "/admin/performance",
        "/admin/usage",
        "/admin/events",
        "/",
        "/dashboard",
        "/dashboard/assets/{file}",
        "/dashboard/session",
        "/dashboard/api/overview",
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/{name}",
        "/v2/models/{name}/versions/{version}",
        "/v2/models/{name}/ready",
        "/v2/models/{name}/versions/{version}/ready",
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/infer",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(paths, routes);
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    let psi = &doc["components"]["schemas"]["DriftInfo"]["properties"]["features"]["additionalProperties"]
        ["type"];
    assert!(
        psi.as_array().is_some_and(|t| t.contains(&json!("null"))),
        "PSI values may be null: {psi}"
    );
    let details = &doc["components"]["schemas"]["ErrorDetail"]["required"];
    assert!(
        details.as_array().unwrap().contains(&json!("details")),
        "{details}"
    );
}

#[tokio::test]
async fn metrics_in_both_formats_with_exemplars_and_model_series() {
    let (app, _) = router();
    let req = Request::post("/predict")
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .body(Body::from(json!({"features": GOOD}).to_string()))
        .unwrap();
    assert_eq!(send(&app, req).await.status, StatusCode::OK);

    let text = send(&app, get("/metrics")).await;
    assert_eq!(
        text.headers[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let t = &text.text;
    for needle in [
        "# TYPE http_requests_total counter",
        "http_requests_total{method=\"POST\",route=\"/predict\",status=\"200\"} 1",
        "# TYPE http_request_duration_seconds histogram",
        "http_requests_in_flight 1",
        "predictions_total{model=\"defect-detector\",version=\"1.0.0\",status=\"success\"} 1",
        "predictions_total{model=\"digits\",version=\"1.0.0\",status=\"error\"} 0",
        "prediction_latency_seconds_count{model=\"defect-detector\",version=\"1.0.0\"} 1",
        "prediction_queue_seconds_count{model=\"defect-detector\"} 1",
        "inference_queue_depth{model=\"defect-detector\"} 0",
        "prediction_batch_size_count{model=\"defect-detector\"} 1",
        "prediction_confidence_bucket{le=\"1.0\",model=\"defect-detector\"} 1",
        "predictions_by_class_total{model=\"defect-detector\",class=\"ok\"} 1",
        "predictions_by_class_total{model=\"defect-detector\",class=\"defect\"} 0",
        "prediction_errors_total{model=\"defect-detector\",error_type=\"non_finite_output\"} 0",
        "model_loaded{model=\"digits\",version=\"1.0.0\"} 1",
        "model_load_time_seconds_count{model=\"digits\"} 1",
        "model_feature_drift_psi{model=\"defect-detector\",feature=\"temperature_c\"}",
        "model_prediction_drift_psi{model=\"defect-detector\"}",
        "app_health_status 1",
        "service_info{service=\"inference\",version=\"",
        "http_request_size_bytes_bucket{le=\"64.0\",method=\"POST\",route=\"/predict\"} 1",
        "http_response_size_bytes_count{method=\"POST\",route=\"/predict\"} 1",
    ] {
        assert!(t.contains(needle), "missing {needle}\n{t}");
    }
    assert!(!t.contains(" # {"), "no exemplars in 0.0.4");

    let req = Request::get("/metrics")
        .header(
            header::ACCEPT,
            "application/openmetrics-text; version=1.0.0",
        )
        .body(Body::empty())
        .unwrap();
    let om = send(&app, req).await;
    assert!(
        om.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(om.text.ends_with("# EOF\n"));
    let exemplar = "# {trace_id=\"0af7651916cd43dd8448eb211c80319c\"}";
    let with_exemplar: Vec<_> = om.text.lines().filter(|l| l.contains(exemplar)).collect();
    assert!(
        with_exemplar
            .iter()
            .any(|l| l.starts_with("http_request_duration_seconds_bucket")),
        "{}",
        om.text
    );
    assert!(
        with_exemplar
            .iter()
            .any(|l| l.starts_with("prediction_latency_seconds_bucket")),
        "{}",
        om.text
    );
}

#[tokio::test]
async fn a_model_emitting_nan_gets_a_json_500_and_an_error_count() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/models");
    let state = AppState::new(
        ModelRegistry::from_dir(&dir, None).unwrap(),
        Limits::default(),
    );
    let app = app(state, RouterConfig::default());
    let reply = send(
        &app,
        post("/predict", json!({"features": [1.0, 2.0]}).to_string()),
    )
    .await;
    assert_eq!(
        assert_error(&reply, StatusCode::INTERNAL_SERVER_ERROR),
        "model_error"
    );
    assert!(
        !reply.text.contains("NaN") && !reply.text.contains("instance 0"),
        "no internals: {}",
        reply.text
    );
    let m = metrics_text(&app).await;
    assert_eq!(
        sample(
            &m,
            "prediction_errors_total{model=\"nan-model\",error_type=\"non_finite_output\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            "predictions_total{model=\"nan-model\",version=\"0.0.1\",status=\"error\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            "predictions_total{model=\"nan-model\",version=\"0.0.1\",status=\"success\"}"
        ),
        0.0
    );
}

/// tract panics on some rows of a broken model (crates/model/tests/hostile/gather_oob:
/// a `Gather` past its end): those requests are 500 `model_error`, counted, and the
/// model goes on answering the others (in a batch with a bad job, on either place a
/// batch runs: the scheduler's own tests).
#[tokio::test]
async fn a_runtime_panic_on_some_rows_costs_only_their_requests() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/hostile/gather_oob");
    let model = vigil_model::LoadedModel::from_dir(&dir).unwrap();
    let state = AppState::new(
        ModelRegistry::from_models(vec![model], None, &dir).unwrap(),
        Limits::default(),
    );
    let app = app(state, RouterConfig::default());
    for (features, status) in [
        ([5.0, 0.0], StatusCode::INTERNAL_SERVER_ERROR),
        ([1.0, 0.0], StatusCode::OK),
        ([0.0, 7.0], StatusCode::INTERNAL_SERVER_ERROR),
        ([0.0, 1.0], StatusCode::OK),
    ] {
        let reply = send(
            &app,
            post("/predict", json!({ "features": features }).to_string()),
        )
        .await;
        if status == StatusCode::OK {
            assert_eq!(reply.status, status, "{features:?}: {}", reply.text);
        } else {
            assert_eq!(assert_error(&reply, status), "model_error", "{features:?}");
        }
    }
    let m = metrics_text(&app).await;
    assert_eq!(
        sample(
            &m,
            "prediction_errors_total{model=\"gather_oob\",error_type=\"inference_failed\"}"
        ),
        2.0
    );
    assert_eq!(
        sample(
            &m,
            "predictions_total{model=\"gather_oob\",version=\"1\",status=\"success\"}"
        ),
        2.0
    );
}

/// A body that is JSON but not an object is told so: not serde's message, which named
/// the struct it expected (`expected struct PredictRequest`) or an element of an array
/// it was reading field by field (`[1, 2]`). With a bare `NaN` it is no JSON at all.
#[tokio::test]
async fn a_body_that_is_not_an_object_is_told_so() {
    let (app, _) = router();
    for uri in ["/predict", "/models/defect-detector/predict"] {
        for body in [
            r#""x""#,
            "[1, 2]",
            "[[1, 2]]",
            "7",
            "null",
            "[]",
            "[1, NaN]",
            "[[1, NaN]]",
            "NaN",
        ] {
            let reply = send(&app, post(uri, body)).await;
            if body.contains("NaN") {
                assert_eq!(
                    assert_error(&reply, StatusCode::BAD_REQUEST),
                    "malformed_json",
                    "{uri} {body}"
                );
                continue;
            }
            assert_eq!(
                assert_error(&reply, StatusCode::UNPROCESSABLE_ENTITY),
                "invalid_body",
                "{uri} {body}"
            );
            assert_eq!(
                reply.body["error"]["message"],
                "invalid request body: the body must be a JSON object",
                "{uri} {body}"
            );
        }
    }
}

#[tokio::test]
async fn a_full_inference_queue_answers_503_with_retry_after() {
    let state = state_with(Limits {
        concurrency: 1,
        max_queue: 1,
        ..Limits::default()
    });
    let app = app(state.clone(), RouterConfig::default());
    let slot = state.scheduler.occupy();
    let body = json!({"features": GOOD}).to_string();
    // One request may wait for the slot; the next finds the queue full.
    let waiting = tokio::spawn({
        let app = app.clone();
        let body = body.clone();
        async move { send(&app, post("/predict", body)).await }
    });
    while state.scheduler.waiting() == 0 {
        tokio::task::yield_now().await;
    }
    let refused = send(&app, post("/predict", body)).await;
    assert_eq!(
        assert_error(&refused, StatusCode::SERVICE_UNAVAILABLE),
        "overloaded"
    );
    assert_eq!(refused.headers[header::RETRY_AFTER], "1");
    let m = metrics_text(&app).await;
    assert_eq!(
        sample(
            &m,
            "prediction_errors_total{model=\"defect-detector\",error_type=\"overloaded\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(&m, "inference_queue_depth{model=\"defect-detector\"}"),
        1.0
    );
    // Freeing the slot lets the waiting request through.
    drop(slot);
    assert_eq!(waiting.await.unwrap().status, StatusCode::OK);
    assert_eq!(
        sample(
            &metrics_text(&app).await,
            "inference_queue_depth{model=\"defect-detector\"}"
        ),
        0.0
    );
}

#[tokio::test]
async fn a_timed_out_prediction_is_counted_as_an_error() {
    // With the only inference thread held, the job waits in the queue, so the handler
    // is surely waiting when the timer fires (a free thread could finish the job
    // before the handler first polls for it, if the handler were preempted between).
    let state = state_with(Limits {
        concurrency: 1,
        ..Limits::default()
    });
    let slot = state.scheduler.occupy();
    // Forward to a collector that is not there: the error record lands in the spool.
    let spool = std::env::temp_dir().join(format!("vigil-timeout-spool-{}", uuid::Uuid::new_v4()));
    let mut config = vigil_forwarder::ForwarderConfig::new(&spool);
    config.attempts = 1;
    let (forwarder, task) = vigil_forwarder::Forwarder::start(
        config,
        state.forwarder_metrics.clone(),
        vigil_forwarder::HttpDelivery::new("http://127.0.0.1:9").unwrap(),
    )
    .unwrap();
    state.forwarder.set(forwarder).unwrap();
    // A zero timeout fires as soon as the handler first waits, which is on inference.
    let app = app(
        state,
        RouterConfig {
            request_timeout: Some(std::time::Duration::ZERO),
            ..RouterConfig::default()
        },
    );
    let big = json!({"model": "digits", "instances": vec![vec![8.0; 64]; 1024]}).to_string();
    let reply = send(&app, post("/predict", big)).await;
    assert_eq!(
        assert_error(&reply, StatusCode::SERVICE_UNAVAILABLE),
        "timeout"
    );
    let m = metrics_text(&app).await;
    assert_eq!(
        sample(
            &m,
            "prediction_errors_total{model=\"digits\",error_type=\"timeout\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            "predictions_total{model=\"digits\",version=\"1.0.0\",status=\"error\"}"
        ),
        1024.0
    );
    drop(slot);
    // Flushing the forwarder leaves the one error record for the request in the spool.
    assert_eq!(task.finish().await, 1);
    let records: Vec<vigil_records::Record> = std::fs::read_dir(&spool)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| std::fs::read(e.path()).unwrap())
        // The segment opened for the next batch holds only the format's header.
        .filter(|segment| segment.len() > vigil_records::packed::MAGIC.len())
        .flat_map(|segment| vigil_records::packed::parse_body(&segment, 10).unwrap())
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        (records[0].status, records[0].error_type.as_deref()),
        (vigil_records::Status::Error, Some("timeout"))
    );
    assert_eq!(records[0].model, "digits");
    let _ = std::fs::remove_dir_all(&spool);
}
