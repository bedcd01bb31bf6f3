//! `/admin/performance` and `/admin/usage` through the real router: what traffic they
//! count per route and per caller, their window parameter, and their key.

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode, header};
use serde_json::{Value, json};
use vigil_auth::{KeyHash, KeySpec, Keyring, Role};
use vigil_model::ModelRegistry;
use vigil_server::router::RouterConfig;
use vigil_server::{AppState, Limits, app};
use vigil_test_support::oneshot::{assert_error, send};

const ADMIN: &str = "vgl_analytics-admin";
const CI: &str = "vgl_analytics-ci";

fn router(config: RouterConfig) -> Router {
    let spec = |name: &str, role, key: &str| KeySpec {
        name: name.into(),
        role,
        sha256: KeyHash::of(key.as_bytes()).to_hex(),
        created_at: None,
    };
    let keys = Keyring::new(&[
        spec("ops", Role::Admin, ADMIN),
        spec("ci", Role::Predict, CI),
    ])
    .unwrap();
    let state = AppState::with_keys(ModelRegistry::bundled().unwrap(), Limits::default(), keys);
    app(state, config)
}

fn predict(key: Option<&str>, features: Value) -> Request<Body> {
    let mut req = Request::post("/predict").header(header::CONTENT_TYPE, "application/json");
    if let Some(key) = key {
        req = req.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    req.body(Body::from(json!({"features": features}).to_string()))
        .unwrap()
}

fn admin(path: &str, key: Option<&str>) -> Request<Body> {
    let mut req = Request::get(path);
    if let Some(key) = key {
        req = req.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    req.body(Body::empty()).unwrap()
}

fn row<'a>(rows: &'a Value, key: &str, value: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r[key] == value)
        .unwrap_or_else(|| panic!("no {key} = {value} in {rows}"))
}

async fn traffic(app: &Router) {
    let good = json!([70, 250, 2.5, 45, 1500, 12]);
    for _ in 0..5 {
        assert_eq!(
            send(app, predict(Some(CI), good.clone())).await.status,
            StatusCode::OK
        );
    }
    assert_eq!(
        send(app, predict(Some(ADMIN), good.clone())).await.status,
        StatusCode::OK
    );
    // A refused row and a missing key: client errors, by caller.
    let bad = send(app, predict(Some(CI), json!([1, 2]))).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        send(app, predict(None, good)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn performance_and_usage_count_routes_and_callers() {
    let app = router(RouterConfig::default());
    traffic(&app).await;
    let perf = send(&app, admin("/admin/performance", Some(ADMIN))).await;
    assert_eq!(perf.status, StatusCode::OK, "{}", perf.text);
    assert_eq!(perf.body["window_seconds"], 300);
    let predict = row(&perf.body["routes"], "route", "/predict");
    assert_eq!(predict["method"], "POST");
    assert_eq!(predict["count"], 8);
    assert_eq!(predict["client_errors"], 2);
    assert_eq!(predict["errors"], 0);
    assert_eq!(predict["error_rate"], 0.0);
    for field in ["min_ms", "avg_ms", "max_ms", "p50_ms", "p95_ms", "p99_ms"] {
        assert!(predict[field].as_f64().unwrap() >= 0.0, "{field}");
    }
    assert!(predict["min_ms"].as_f64() <= predict["p50_ms"].as_f64());
    assert!(predict["p50_ms"].as_f64() <= predict["p99_ms"].as_f64());
    assert!(predict["p99_ms"].as_f64().unwrap() <= predict["max_ms"].as_f64().unwrap() * 1.02);

    let usage = send(&app, admin("/admin/usage?window=1m&top=5", Some(ADMIN))).await;
    assert_eq!(usage.status, StatusCode::OK, "{}", usage.text);
    assert_eq!(usage.body["window_seconds"], 60);
    let ci = row(&usage.body["callers"], "user", "ci");
    assert_eq!(
        (ci["count"].as_u64(), ci["client_errors"].as_u64()),
        (Some(6), Some(1))
    );
    assert_eq!(
        row(&usage.body["callers"], "user", "ops")["count"],
        2,
        "one predict, one performance read"
    );
    assert_eq!(
        row(&usage.body["callers"], "user", "anonymous")["client_errors"],
        1
    );
    assert_eq!(usage.body["routes"][0]["route"], "/predict");
}

#[tokio::test]
async fn bad_windows_are_422_and_a_key_is_needed() {
    let app = router(RouterConfig::default());
    for (query, code) in [
        ("?window=2h", "invalid_window"),
        ("?window=1s", "invalid_window"),
        ("?window=soon", "invalid_window"),
        ("?top=0", "invalid_query"),
        ("?top=many", "invalid_query"),
        ("?windw=1h", "invalid_query"),
    ] {
        for path in ["/admin/performance", "/admin/usage"] {
            let reply = send(&app, admin(&format!("{path}{query}"), Some(ADMIN))).await;
            assert_eq!(
                assert_error(&reply, StatusCode::UNPROCESSABLE_ENTITY),
                code,
                "{path}{query}"
            );
        }
    }
    // `top` is a parameter of the usage lists only.
    let reply = send(&app, admin("/admin/performance?top=5", Some(ADMIN))).await;
    assert_eq!(
        assert_error(&reply, StatusCode::UNPROCESSABLE_ENTITY),
        "invalid_query"
    );
    let reply = send(&app, admin("/admin/usage?top=5", Some(ADMIN))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    for path in ["/admin/performance", "/admin/usage"] {
        assert_eq!(
            send(&app, admin(path, None)).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            send(&app, admin(path, Some(CI))).await.status,
            StatusCode::FORBIDDEN
        );
    }
}

#[tokio::test]
async fn odd_methods_share_one_row() {
    let app = router(RouterConfig::default());
    for i in 0..20 {
        let req = Request::builder()
            .method(format!("M{i}").as_str())
            .uri("/health")
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(&app, req).await.status, StatusCode::METHOD_NOT_ALLOWED);
    }
    let perf = send(&app, admin("/admin/performance", Some(ADMIN))).await;
    let odd: Vec<&Value> = perf.body["routes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["route"] == "/health")
        .collect();
    assert_eq!(odd.len(), 1, "{}", perf.text);
    assert_eq!(odd[0]["method"], "OTHER");
    assert_eq!(odd[0]["count"], 20);
}

#[tokio::test]
async fn switched_off_they_see_nothing() {
    let app = router(RouterConfig {
        analytics: false,
        ..RouterConfig::default()
    });
    traffic(&app).await;
    let perf = send(&app, admin("/admin/performance", Some(ADMIN))).await;
    assert_eq!(perf.body["routes"], json!([]));
}
