//! `/dashboard` through the real router: the page and its assets, signing in and out,
//! what the data route accepts and refuses, and what it answers. The browser test
//! (`crates/vigil/tests/dashboard_browser.rs`) drives the page itself.

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode, header};
use serde_json::{Value, json};
use vigil_auth::{KeyHash, KeySpec, Keyring, Role};
use vigil_model::ModelRegistry;
use vigil_server::router::RouterConfig;
use vigil_server::{AppState, Limits, app};
use vigil_test_support::oneshot::{Reply, assert_error, get, post, send};

const ADMIN: &str = "vgl_dashboard-admin";
const CI: &str = "vgl_dashboard-ci";

fn keyring(with_admin: bool) -> Keyring {
    let spec = |name: &str, role, key: &str| KeySpec {
        name: name.into(),
        role,
        sha256: KeyHash::of(key.as_bytes()).to_hex(),
        created_at: None,
    };
    let mut specs = vec![spec("ci", Role::Predict, CI)];
    if with_admin {
        specs.push(spec("ops", Role::Admin, ADMIN));
    }
    Keyring::new(&specs).unwrap()
}

fn service() -> (AppState, Router) {
    let state = AppState::with_keys(
        ModelRegistry::bundled().unwrap(),
        Limits::default(),
        keyring(true),
    );
    let router = app(state.clone(), RouterConfig::default());
    (state, router)
}

async fn sign_in(app: &Router, key: &str) -> Reply {
    send(
        app,
        post("/dashboard/session", json!({"api_key": key}).to_string()),
    )
    .await
}

/// The `name=value` of a reply's session cookie.
fn cookie_of(reply: &Reply) -> String {
    let set = reply.headers[header::SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

fn with_cookie(uri: &str, cookie: &str) -> Request<Body> {
    Request::get(uri)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn the_root_redirects_and_the_page_is_locked_down() {
    let (_, app) = service();
    let root = send(&app, get("/")).await;
    assert_eq!(root.status, StatusCode::SEE_OTHER);
    assert_eq!(root.headers[header::LOCATION], "/dashboard");
    let page = send(&app, get("/dashboard")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("id=\"sign-in-form\""));
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"));
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
    let script = send(&app, get("/dashboard/assets/dashboard.js")).await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(
        script.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    let missing = send(&app, get("/dashboard/assets/..%2Fsecret")).await;
    assert_error(&missing, StatusCode::NOT_FOUND);
    // A name that is not UTF-8 gets the error shape too, not axum's plain text.
    let garbled = send(&app, get("/dashboard/assets/%ff")).await;
    assert_eq!(
        assert_error(&garbled, StatusCode::BAD_REQUEST),
        "invalid_path"
    );
}

#[tokio::test]
async fn a_session_opens_with_an_admin_key_only_and_ends_at_sign_out() {
    let (state, app) = service();
    // Wrong key, a predict key, no key: refused, with a message, and no session.
    for (key, status) in [
        ("vgl_wrong", StatusCode::UNAUTHORIZED),
        (CI, StatusCode::FORBIDDEN),
        ("", StatusCode::UNAUTHORIZED),
    ] {
        let reply = sign_in(&app, key).await;
        assert_error(&reply, status);
        assert!(reply.headers.get(header::SET_COOKIE).is_none());
    }
    assert!(state.auth.sessions().is_empty());

    let reply = sign_in(&app, ADMIN).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    let set = reply.headers[header::SET_COOKIE].to_str().unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/dashboard"] {
        assert!(set.contains(part), "{set}");
    }
    assert!(
        !set.contains(ADMIN),
        "the cookie is a session token, not the key"
    );
    let cookie = cookie_of(&reply);

    let status = send(&app, with_cookie("/dashboard/session", &cookie)).await;
    assert_eq!(status.body, json!({"signed_in": true, "user": "ops"}));
    let overview = send(&app, with_cookie("/dashboard/api/overview", &cookie)).await;
    assert_eq!(overview.status, StatusCode::OK, "{}", overview.text);

    let out = send(
        &app,
        Request::delete("/dashboard/session")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(
        out.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = send(&app, with_cookie("/dashboard/api/overview", &cookie)).await;
    assert_error(&after, StatusCode::UNAUTHORIZED);
    let status = send(&app, with_cookie("/dashboard/session", &cookie)).await;
    assert_eq!(status.body["signed_in"], false);
}

#[tokio::test]
async fn the_cookie_is_secure_when_a_proxy_received_the_request_over_https() {
    let (_, app) = service();
    let sign_in_with = |name: &'static str, value: &'static str| {
        let app = app.clone();
        async move {
            let request = Request::post("/dashboard/session")
                .header(header::CONTENT_TYPE, "application/json")
                .header(name, value)
                .body(Body::from(json!({"api_key": ADMIN}).to_string()))
                .unwrap();
            let reply = send(&app, request).await;
            assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
            reply.headers[header::SET_COOKIE]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    for (name, value, secure) in [
        ("x-forwarded-proto", "https", true),
        ("forwarded", "for=192.0.2.60;proto=https", true),
        ("x-forwarded-proto", "http", false),
        ("x-request-id", "plain", false),
    ] {
        let set = sign_in_with(name, value).await;
        assert_eq!(set.contains("; Secure"), secure, "{name}: {value} -> {set}");
    }
    // Signing out behind the same proxy clears the cookie with the same attribute (a
    // browser keeps a Secure cookie that a plain Set-Cookie tries to drop).
    let set = sign_in_with("x-forwarded-proto", "https").await;
    let cookie = set.split(';').next().unwrap().to_owned();
    let out = send(
        &app,
        Request::delete("/dashboard/session")
            .header(header::COOKIE, &cookie)
            .header("x-forwarded-proto", "https")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let cleared = out.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cleared.contains("Max-Age=0") && cleared.contains("; Secure"),
        "{cleared}"
    );
}

#[tokio::test]
async fn the_data_route_refuses_missing_forged_and_revoked_credentials() {
    let (state, app) = service();
    let missing = send(&app, get("/dashboard/api/overview")).await;
    assert_eq!(
        assert_error(&missing, StatusCode::UNAUTHORIZED),
        "unauthorized"
    );
    let forged = send(
        &app,
        with_cookie("/dashboard/api/overview", "vigil_session=Zm9yZ2Vk"),
    )
    .await;
    assert_error(&forged, StatusCode::UNAUTHORIZED);
    assert!(
        forged.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sign in again")
    );
    let predict_key = send(
        &app,
        Request::get("/dashboard/api/overview")
            .header(header::AUTHORIZATION, format!("Bearer {CI}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_error(&predict_key, StatusCode::FORBIDDEN);

    // A session outlives nothing its key does not: revoking the key ends it.
    let cookie = cookie_of(&sign_in(&app, ADMIN).await);
    state.auth.replace(keyring(false));
    let revoked = send(&app, with_cookie("/dashboard/api/overview", &cookie)).await;
    assert_error(&revoked, StatusCode::UNAUTHORIZED);
    assert!(
        revoked.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
}

#[tokio::test]
async fn bad_sign_in_bodies_and_queries_get_the_contract_errors() {
    let (_, app) = service();
    let series = async || {
        let text = send(&app, get("/metrics")).await.text;
        text.lines().filter(|l| !l.starts_with('#')).count()
    };
    // Two passes: the first gives each route and status its (bounded) series; the
    // second must add none.
    let mut before = 0;
    for _ in 0..2 {
        // Read in both passes: `/metrics` gets its own series on the first read.
        before = series().await;
        let cases: [(Request<Body>, StatusCode); 7] = [
            (post("/dashboard/session", "{"), StatusCode::BAD_REQUEST),
            (
                post("/dashboard/session", json!({"key": ADMIN}).to_string()),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            // The key in the wrong shape: the refusal must not quote it back.
            (
                post("/dashboard/session", json!(ADMIN).to_string()),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                post(
                    "/dashboard/session",
                    json!({"api_key": [ADMIN]}).to_string(),
                ),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            // Broken JSON after the key: reported as broken, not as the wrong shape.
            (
                post(
                    "/dashboard/session",
                    format!("{{\"api_key\": \"{ADMIN}\", \"x\": 1,,}}"),
                ),
                StatusCode::BAD_REQUEST,
            ),
            (
                Request::post("/dashboard/session")
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(format!("api_key={ADMIN}")))
                    .unwrap(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                post("/dashboard/session", vec![b'x'; 2 * 1024 * 1024]),
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
        ];
        for (request, status) in cases {
            let reply = send(&app, request).await;
            assert_error(&reply, status);
            assert!(reply.headers.get(header::SET_COOKIE).is_none());
            assert!(!reply.text.contains(ADMIN), "{}", reply.text);
        }
        let key = |uri: &str| {
            Request::get(uri)
                .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
                .body(Body::empty())
                .unwrap()
        };
        for uri in [
            "/dashboard/api/overview?window=2h",
            "/dashboard/api/overview?window=1s",
            "/dashboard/api/overview?window=soon",
            "/dashboard/api/overview?since=-1",
            "/dashboard/api/overview?bogus=1",
        ] {
            let reply = send(&app, key(uri)).await;
            assert_error(&reply, StatusCode::UNPROCESSABLE_ENTITY);
        }
    }
    // None of it made a series.
    assert_eq!(before, series().await);
}

#[tokio::test]
async fn the_overview_has_every_panel_the_page_draws() {
    let (state, app) = service();
    let req = |uri: &str| {
        Request::get(uri)
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
            .body(Body::empty())
            .unwrap()
    };
    for _ in 0..5 {
        let predict = Request::post("/predict")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {CI}"))
            .body(Body::from(
                json!({"features": [70.0, 250.0, 2.5, 45.0, 1500.0, 12.0]}).to_string(),
            ))
            .unwrap();
        assert_eq!(send(&app, predict).await.status, StatusCode::OK);
    }
    let o: Value = send(&app, req("/dashboard/api/overview?window=1m"))
        .await
        .body;
    assert_eq!(o["window_seconds"], 60);
    assert_eq!(o["sample_seconds"], 5);
    assert_eq!(o["default_model"], "defect-detector");
    let points = o["http"]["points"].as_array().unwrap();
    let requests: u64 = points.iter().map(|p| p["requests"].as_u64().unwrap()).sum();
    assert!(requests >= 5, "{points:?}");
    assert!(
        o["routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["route"] == "/predict")
    );
    let models = o["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    let detector = models
        .iter()
        .find(|m| m["name"] == "defect-detector")
        .unwrap();
    assert_eq!(detector["status"], "loaded");
    assert_eq!(detector["defect_labels"], json!(["defect"]));
    assert_eq!(detector["drift_features"].as_array().unwrap().len(), 6);
    assert_eq!(o["incidents"]["source"], "none");
    assert_eq!(o["quality"]["source"], "none");
    assert_eq!(o["quality"]["models"], json!([]));
    assert!(o["events"].is_array());
    // No sampler runs in this test: no samples, and `since` filters what there is.
    assert_eq!(o["samples"], json!([]));
    assert!(state.dashboard.history.since(0).is_empty());
}
