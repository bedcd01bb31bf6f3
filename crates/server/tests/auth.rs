//! API keys on the inference service, through the real router: which routes need
//! which role, 401 and 403 in the error shape, the caller's name, the counters, and
//! keys that change while the service runs.

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode, header};
use vigil_auth::{KeyHash, KeySpec, Keyring, Role};
use vigil_model::ModelRegistry;
use vigil_server::router::RouterConfig;
use vigil_server::{AppState, Limits, app};
use vigil_test_support::oneshot::{assert_error, get, send};
use vigil_test_support::sample;

const ADMIN_KEY: &str = "vgl_admin-key-for-tests";
const PREDICT_KEY: &str = "vgl_predict-key-for-tests";

fn spec(name: &str, role: Role, key: &str) -> KeySpec {
    KeySpec {
        name: name.into(),
        role,
        sha256: KeyHash::of(key.as_bytes()).to_hex(),
        created_at: None,
    }
}

fn router(keys: &[KeySpec]) -> (Router, AppState) {
    let state = AppState::with_keys(
        ModelRegistry::bundled().unwrap(),
        Limits::default(),
        Keyring::new(keys).unwrap(),
    );
    (app(state.clone(), RouterConfig::default()), state)
}

fn predict(auth: Option<(&str, &str)>) -> Request<Body> {
    let mut req = Request::post("/predict").header(header::CONTENT_TYPE, "application/json");
    if let Some((name, value)) = auth {
        req = req.header(name, value);
    }
    req.body(Body::from(r#"{"features": [70, 250, 2.5, 45, 1500, 12]}"#))
        .unwrap()
}

fn admin(auth: Option<(&str, &str)>) -> Request<Body> {
    let mut req = Request::get("/admin/nothing-here");
    if let Some((name, value)) = auth {
        req = req.header(name, value);
    }
    req.body(Body::empty()).unwrap()
}

fn bearer(key: &str) -> Option<(&'static str, String)> {
    Some(("authorization", format!("Bearer {key}")))
}

async fn failures(app: &Router, reason: &str) -> f64 {
    let text = send(app, get("/metrics")).await.text;
    sample(
        &text,
        &format!("auth_failures_total{{reason=\"{reason}\"}}"),
    )
}

#[tokio::test]
async fn prediction_is_open_until_a_predict_key_exists() {
    let (app, _) = router(&[spec("ops", Role::Admin, ADMIN_KEY)]);
    assert_eq!(send(&app, predict(None)).await.status, StatusCode::OK);
    // Open does not mean anything goes: a wrong key is still just ignored, not trusted.
    let reply = send(&app, predict(Some(("x-api-key", "vgl_wrong")))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(failures(&app, "invalid").await, 0.0);
}

#[tokio::test]
async fn predict_keys_gate_prediction_and_admin_keys_may_predict() {
    let (app, _) = router(&[
        spec("ops", Role::Admin, ADMIN_KEY),
        spec("ci", Role::Predict, PREDICT_KEY),
    ]);
    let missing = send(&app, predict(None)).await;
    assert_eq!(
        assert_error(&missing, StatusCode::UNAUTHORIZED),
        "unauthorized"
    );
    assert_eq!(
        missing.headers[header::WWW_AUTHENTICATE],
        "Bearer realm=\"vigil\""
    );
    let wrong = send(&app, predict(Some(("x-api-key", "vgl_wrong")))).await;
    assert_eq!(
        assert_error(&wrong, StatusCode::UNAUTHORIZED),
        "unauthorized"
    );
    // Not a bearer token: treated as no key at all.
    let basic = send(&app, predict(Some(("authorization", "Basic dXNlcjpwYXNz")))).await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);

    let (name, value) = bearer(PREDICT_KEY).unwrap();
    assert_eq!(
        send(&app, predict(Some((name, &value)))).await.status,
        StatusCode::OK
    );
    let lower = format!("bearer {PREDICT_KEY}");
    assert_eq!(
        send(&app, predict(Some(("authorization", &lower))))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, predict(Some(("x-api-key", ADMIN_KEY))))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(failures(&app, "missing").await, 2.0);
    assert_eq!(failures(&app, "invalid").await, 1.0);
    // Probes, metrics and model listings stay open for orchestrators and scrapers.
    for path in [
        "/health",
        "/health/live",
        "/health/ready",
        "/models",
        "/openapi.json",
    ] {
        assert_eq!(send(&app, get(path)).await.status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn admin_routes_need_an_admin_key() {
    let (app, _) = router(&[
        spec("ops", Role::Admin, ADMIN_KEY),
        spec("ci", Role::Predict, PREDICT_KEY),
    ]);
    let missing = send(&app, admin(None)).await;
    assert_eq!(
        assert_error(&missing, StatusCode::UNAUTHORIZED),
        "unauthorized"
    );
    let wrong = send(&app, admin(Some(("x-api-key", "vgl_wrong")))).await;
    assert_eq!(
        assert_error(&wrong, StatusCode::UNAUTHORIZED),
        "unauthorized"
    );
    let (name, value) = bearer(PREDICT_KEY).unwrap();
    let forbidden = send(&app, admin(Some((name, &value)))).await;
    assert_eq!(assert_error(&forbidden, StatusCode::FORBIDDEN), "forbidden");
    assert_eq!(forbidden.body["error"]["details"]["required_role"], "admin");
    // With the admin key the request gets through the guard (and finds nothing here).
    let (name, value) = bearer(ADMIN_KEY).unwrap();
    let found = send(&app, admin(Some((name, &value)))).await;
    assert_eq!(assert_error(&found, StatusCode::NOT_FOUND), "not_found");
    let text = send(&app, get("/metrics")).await.text;
    assert_eq!(
        sample(&text, "auth_failures_total{reason=\"forbidden\"}"),
        1.0
    );
    assert_eq!(sample(&text, "audit_events_total{action=\"denied\"}"), 3.0);
    assert_eq!(sample(&text, "audit_events_total{action=\"access\"}"), 1.0);
    // Every audit action's series exists from the start.
    assert_eq!(sample(&text, "audit_events_total{action=\"upload\"}"), 0.0);
    // 401s are counted by route template like any answer; the key is no label.
    assert!(!text.contains(ADMIN_KEY) && !text.contains(PREDICT_KEY));
}

#[tokio::test]
async fn wrong_methods_and_odd_paths_under_admin_are_refused_before_anything_else() {
    let (app, _) = router(&[spec("ops", Role::Admin, ADMIN_KEY)]);
    for (method, path) in [
        ("GET", "/admin/models/x"),
        ("POST", "/admin/performance"),
        ("OPTIONS", "/admin/usage"),
        ("GET", "/admin/"),
        ("GET", "/admin"),
    ] {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let reply = send(&app, req).await;
        // Refused by the guard (counted, audited). axum may still add an `Allow` header
        // naming the path's methods; the OpenAPI document lists them anyway.
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path}: {}",
            reply.text
        );
    }
    // With the key, a wrong method is what it is.
    let req = Request::get("/admin/models/x")
        .header("x-api-key", ADMIN_KEY)
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, req).await.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn without_any_key_admin_is_closed_to_everyone() {
    let (app, _) = router(&[]);
    assert_eq!(
        send(&app, admin(None)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let (name, value) = bearer(ADMIN_KEY).unwrap();
    assert_eq!(
        send(&app, admin(Some((name, &value)))).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn replaced_keys_apply_to_the_next_request() {
    let (app, state) = router(&[spec("ci", Role::Predict, PREDICT_KEY)]);
    let (name, value) = bearer(PREDICT_KEY).unwrap();
    assert_eq!(
        send(&app, predict(Some((name, &value)))).await.status,
        StatusCode::OK
    );
    // Revoked: the same key is refused at once.
    state
        .auth
        .replace(Keyring::new(&[spec("ci2", Role::Predict, "vgl_other")]).unwrap());
    assert_eq!(
        send(&app, predict(Some((name, &value)))).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// The Open Inference Protocol's infer needs a `predict` key like `/predict`, and its
/// refusals from the key guard answer in the protocol's shape, which `tritonclient`
/// reads; its metadata stays open.
#[tokio::test]
async fn v2_infer_needs_a_predict_key_and_refuses_in_the_protocols_shape() {
    let (app, _) = router(&[spec("ci", Role::Predict, PREDICT_KEY)]);
    let body = r#"{"inputs": [{"name": "input", "shape": [1, 6], "datatype": "FP32", "data": [70, 250, 2.5, 45, 1500, 12]}]}"#;
    let infer = |key: Option<&str>| {
        let mut req = Request::post("/v2/models/defect-detector/infer");
        if let Some(key) = key {
            req = req.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        req.body(Body::from(body)).unwrap()
    };
    for (key, status) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some("vgl_wrong"), StatusCode::UNAUTHORIZED),
    ] {
        let r = send(&app, infer(key)).await;
        assert_eq!(r.status, status, "{}", r.text);
        let message = r.body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("not the protocol's shape: {}", r.text));
        assert!(!message.is_empty());
        assert_eq!(
            r.body["request_id"],
            r.headers["x-request-id"].to_str().unwrap()
        );
        assert!(r.headers.contains_key(header::WWW_AUTHENTICATE));
    }
    let r = send(&app, infer(Some(PREDICT_KEY))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        send(&app, get("/v2/models/defect-detector")).await.status,
        StatusCode::OK
    );
    // Other routes keep vigil's shape.
    let r = send(&app, predict(None)).await;
    assert_error(&r, StatusCode::UNAUTHORIZED);
}
