//! The model lifecycle through the real router: upload a version (checked completely
//! before anything changes), versions, rollback, unload, a new model by upload; every
//! bad upload refused with a clear 4xx while the serving version stays untouched; and
//! the metrics and audit counts that follow.

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode, header};
use serde_json::json;
use std::sync::Arc;
use vigil_auth::{KeyHash, KeySpec, Keyring, Role};
use vigil_model::bundled::MODELS;
use vigil_model::{LoadedModel, ModelRegistry, VersionStore};
use vigil_server::lifecycle::{Lifecycle, LifecycleError, Rescanned, Swap};
use vigil_server::router::RouterConfig;
use vigil_server::{AppState, Limits, app};
use vigil_test_support::oneshot::{Reply, assert_error, get, post, send};
use vigil_test_support::{TempDir, multipart, sample};

const ADMIN: &str = "vgl_lifecycle-admin";

fn defect() -> (&'static [u8], &'static str) {
    (MODELS[0].1, MODELS[0].2)
}

fn digits() -> (&'static [u8], &'static str) {
    (MODELS[1].1, MODELS[1].2)
}

/// The bundled card with another version (and name, if given).
fn card(text: &str, version: &str, name: Option<&str>) -> String {
    let mut out = text.replacen(
        "version = \"1.0.0\"",
        &format!("version = \"{version}\""),
        1,
    );
    if let Some(name) = name {
        let old = text
            .lines()
            .find(|l| l.starts_with("name = "))
            .unwrap()
            .to_owned();
        out = out.replacen(&old, &format!("name = \"{name}\""), 1);
    }
    out
}

fn router(data: &TempDir, limits: Limits) -> (Router, AppState) {
    let registry = ModelRegistry::bundled().unwrap();
    let keys = Keyring::new(&[KeySpec {
        name: "ops".into(),
        role: Role::Admin,
        sha256: KeyHash::of(ADMIN.as_bytes()).to_hex(),
        created_at: None,
    }])
    .unwrap();
    let lifecycle = Lifecycle::new(VersionStore::in_data_dir(data.path()), &registry);
    let registry = lifecycle.overlay(registry);
    let state = AppState::with_keys(registry, limits, keys);
    state.lifecycle.set(lifecycle).unwrap();
    (app(state.clone(), RouterConfig::default()), state)
}

fn upload(name: &str, parts: &[(&str, &[u8])]) -> Request<Body> {
    Request::post(format!("/admin/models/{name}"))
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .header(header::CONTENT_TYPE, multipart::content_type())
        .body(Body::from(multipart::form(parts)))
        .unwrap()
}

fn admin(method: &str, path: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .unwrap()
}

/// Uploads `card_text` and `onnx` as a version of `name`, which must be taken (201).
async fn upload_ok(app: &Router, name: &str, onnx: &[u8], card_text: &str) -> Reply {
    let reply = send(
        app,
        upload(name, &[("onnx", onnx), ("card", card_text.as_bytes())]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply
}

/// Rolls `model` back, which must succeed (200).
async fn roll_back(app: &Router, model: &str) -> Reply {
    let reply = send(
        app,
        admin("POST", &format!("/admin/models/{model}/rollback")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply
}

/// A SIGHUP's rescan of a models directory holding the bundled models, `digits` as
/// `onnx` and `card_text` say.
async fn rescan_digits(
    state: &AppState,
    onnx: &[u8],
    card_text: &str,
) -> Result<Rescanned, LifecycleError> {
    let dir = LoadedModel::from_parts(onnx, card_text, "models/digits".into()).unwrap();
    let fresh = ModelRegistry::bundled().unwrap().with_model(Arc::new(dir));
    state
        .lifecycle
        .get()
        .unwrap()
        .rescan(&state.models, &state.model_metrics, fresh)
        .await
}

/// The version `/predict` answers with for `model`.
async fn serving(app: &Router, model: &str) -> Reply {
    send(
        app,
        post(
            &format!("/models/{model}/predict"),
            if model == "defect-detector" {
                json!({"features": [70, 250, 2.5, 45, 1500, 12]})
            } else {
                json!({"features": vec![8.0; 64]})
            }
            .to_string(),
        ),
    )
    .await
}

async fn version_of(app: &Router, model: &str) -> String {
    let reply = serving(app, model).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.body["model_version"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn upload_swaps_versions_rollback_returns_and_state_survives_a_restart() {
    let data = TempDir::new("lifecycle");
    let (app, _) = router(&data, Limits::default());
    assert_eq!(version_of(&app, "defect-detector").await, "1.0.0");
    let (onnx, text) = defect();
    let v2 = card(text, "2.0.0", None);
    let reply = upload_ok(&app, "defect-detector", onnx, &v2).await;
    assert_eq!(reply.body["version"], "2.0.0");
    assert_eq!(reply.body["previous_version"], "1.0.0");
    assert!(reply.body["probe_rows"].as_u64().unwrap() > 1);
    assert_eq!(version_of(&app, "defect-detector").await, "2.0.0");
    let models = send(&app, get("/models/defect-detector")).await;
    assert_eq!(models.body["version"], "2.0.0");

    let text_metrics = send(&app, get("/metrics")).await.text;
    let loaded = |v: &str| format!("model_loaded{{model=\"defect-detector\",version=\"{v}\"}}");
    assert_eq!(sample(&text_metrics, &loaded("1.0.0")), 0.0);
    assert_eq!(sample(&text_metrics, &loaded("2.0.0")), 1.0);
    assert_eq!(
        sample(
            &text_metrics,
            "predictions_total{model=\"defect-detector\",version=\"2.0.0\",status=\"success\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(&text_metrics, "audit_events_total{action=\"upload\"}"),
        1.0
    );

    // The same version twice is a conflict, and changes nothing.
    let again = send(
        &app,
        upload(
            "defect-detector",
            &[("onnx", onnx), ("card", v2.as_bytes())],
        ),
    )
    .await;
    assert_eq!(assert_error(&again, StatusCode::CONFLICT), "version_exists");

    let versions = send(&app, admin("GET", "/admin/models/defect-detector/versions")).await;
    assert_eq!(versions.status, StatusCode::OK, "{}", versions.text);
    assert_eq!(versions.body["active"], "2.0.0");
    assert_eq!(versions.body["history"], json!(["1.0.0"]));
    let listed: Vec<(String, bool)> = versions.body["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_str().unwrap().to_owned(),
                v["active"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, [("1.0.0".into(), false), ("2.0.0".into(), true)]);

    // A restart on the same data dir serves the uploaded version.
    drop(app);
    let (restarted, _) = router(&data, Limits::default());
    assert_eq!(version_of(&restarted, "defect-detector").await, "2.0.0");

    let back = roll_back(&restarted, "defect-detector").await;
    assert_eq!(back.body["from_version"], "2.0.0");
    assert_eq!(back.body["to_version"], "1.0.0");
    assert_eq!(version_of(&restarted, "defect-detector").await, "1.0.0");
    let none_left = send(
        &restarted,
        admin("POST", "/admin/models/defect-detector/rollback"),
    )
    .await;
    assert_eq!(
        assert_error(&none_left, StatusCode::CONFLICT),
        "no_previous_version"
    );
}

/// The versions of defect-detector that have series on a `/metrics` page.
fn versions_with_series(metrics: &str) -> std::collections::BTreeSet<String> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains("model=\"defect-detector\""))
        .filter_map(|l| l.split("version=\"").nth(1)?.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// Only the last replaced version of a model keeps its series (at model_loaded 0: the
/// version a rollback returns to); older ones go, so series do not grow with uploads.
#[tokio::test]
async fn series_are_kept_for_the_serving_and_the_last_replaced_version_only() {
    let data = TempDir::new("retired");
    let (app, _) = router(&data, Limits::default());
    let (onnx, text) = defect();
    let loaded = |v: &str| format!("model_loaded{{model=\"defect-detector\",version=\"{v}\"}}");
    let served = |v: &str| {
        format!("predictions_total{{model=\"defect-detector\",version=\"{v}\",status=\"success\"}}")
    };
    for v in ["2.0.0", "3.0.0", "4.0.0"] {
        let next = card(text, v, None);
        upload_ok(&app, "defect-detector", onnx, &next).await;
        assert_eq!(version_of(&app, "defect-detector").await, v);
    }
    let m = send(&app, get("/metrics")).await.text;
    assert_eq!(
        versions_with_series(&m),
        ["3.0.0".into(), "4.0.0".into()].into()
    );
    assert_eq!(sample(&m, &loaded("3.0.0")), 0.0);
    assert_eq!(sample(&m, &loaded("4.0.0")), 1.0);
    assert_eq!(sample(&m, &served("3.0.0")), 1.0);

    // A rollback serves 3.0.0 again on its kept series; 4.0.0 is the last replaced.
    let back = roll_back(&app, "defect-detector").await;
    assert_eq!(back.body["to_version"], "3.0.0", "{}", back.text);
    assert_eq!(version_of(&app, "defect-detector").await, "3.0.0");
    let m = send(&app, get("/metrics")).await.text;
    assert_eq!(
        versions_with_series(&m),
        ["3.0.0".into(), "4.0.0".into()].into()
    );
    assert_eq!(sample(&m, &loaded("3.0.0")), 1.0);
    assert_eq!(sample(&m, &loaded("4.0.0")), 0.0);
    assert_eq!(sample(&m, &served("3.0.0")), 2.0);

    // Back again, to 2.0.0, whose series went: they start anew; 4.0.0's go.
    let back = roll_back(&app, "defect-detector").await;
    assert_eq!(back.body["to_version"], "2.0.0", "{}", back.text);
    assert_eq!(version_of(&app, "defect-detector").await, "2.0.0");
    let m = send(&app, get("/metrics")).await.text;
    assert_eq!(
        versions_with_series(&m),
        ["2.0.0".into(), "3.0.0".into()].into()
    );
    assert_eq!(sample(&m, &served("2.0.0")), 1.0);
}

/// The metric lines naming `model`, each cut at its value.
fn series_of(metrics: &str, model: &str) -> std::collections::BTreeSet<String> {
    let label = format!("model=\"{model}\"");
    metrics
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains(&label))
        .filter_map(|l| l.rsplit_once(' ').map(|(series, _)| series.to_owned()))
        .collect()
}

/// Series belong to what serves: an upload with other class names takes the old
/// names' series away, an unloaded model keeps only its last version's series.
#[tokio::test]
async fn the_series_of_old_classes_and_of_an_unloaded_model_go() {
    let data = TempDir::new("forget");
    let (app, _) = router(&data, Limits::default());
    let (onnx, text) = defect();
    let renamed = card(text, "2.0.0", None)
        .replace(
            r#"labels = ["ok", "defect"]"#,
            r#"labels = ["good", "bad"]"#,
        )
        .replace(
            r#"defect_labels = ["defect"]"#,
            r#"defect_labels = ["bad"]"#,
        );
    upload_ok(&app, "defect-detector", onnx, &renamed).await;
    assert_eq!(version_of(&app, "defect-detector").await, "2.0.0");
    let m = send(&app, get("/metrics")).await.text;
    let class =
        |c: &str| format!("predictions_by_class_total{{model=\"defect-detector\",class=\"{c}\"}}");
    let series = series_of(&m, "defect-detector");
    for c in ["good", "bad"] {
        assert!(series.contains(&class(c)), "{c} missing: {series:#?}");
    }
    for c in ["ok", "defect"] {
        assert!(!series.contains(&class(c)), "{c} left behind: {series:#?}");
    }

    // Unloaded: only the version series of the version that served stay (model_loaded
    // at 0, the version a rollback or upload returns to).
    assert!(series_of(&m, "digits").len() > 50);
    let gone = send(&app, admin("DELETE", "/admin/models/digits")).await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.text);
    let m = send(&app, get("/metrics")).await.text;
    let left = series_of(&m, "digits");
    assert!(!left.is_empty());
    for series in &left {
        assert!(
            series.contains("version=\"1.0.0\"")
                && [
                    "predictions_total",
                    "prediction_latency_seconds",
                    "model_loaded"
                ]
                .iter()
                .any(|name| series.starts_with(name)),
            "{series} left behind"
        );
    }
    // Served again, it has every series again.
    let (onnx, text) = digits();
    let back = send(
        &app,
        upload(
            "digits",
            &[
                ("onnx", onnx),
                ("card", card(text, "2.0.0", None).as_bytes()),
            ],
        ),
    )
    .await;
    assert_eq!(back.status, StatusCode::CREATED, "{}", back.text);
    let m = send(&app, get("/metrics")).await.text;
    assert!(
        series_of(&m, "digits")
            .contains("predictions_by_class_total{model=\"digits\",class=\"7\"}")
    );
}

/// A rollback to the start-up version (kept in memory, not read from the store) starts
/// its drift state anew as any newly serving version does: `model_feature_bin_total` is
/// a counter since the version loaded, and must not come back at its old count.
#[tokio::test]
async fn a_rollback_to_the_start_up_version_starts_its_drift_counts_anew() {
    let data = TempDir::new("drift-restart");
    let (app, _) = router(&data, Limits::default());
    let bins = |m: &str| -> f64 {
        m.lines()
            .filter(|l| {
                l.starts_with("model_feature_bin_total{")
                    && l.contains("model=\"defect-detector\"")
                    && l.contains("feature=\"temperature_c\"")
            })
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    };
    for _ in 0..5 {
        assert_eq!(version_of(&app, "defect-detector").await, "1.0.0");
    }
    assert_eq!(bins(&send(&app, get("/metrics")).await.text), 5.0);
    let (onnx, text) = defect();
    let next = card(text, "2.0.0", None);
    upload_ok(&app, "defect-detector", onnx, &next).await;
    assert_eq!(version_of(&app, "defect-detector").await, "2.0.0");
    assert_eq!(bins(&send(&app, get("/metrics")).await.text), 1.0);
    let back = roll_back(&app, "defect-detector").await;
    assert_eq!(back.body["to_version"], "1.0.0", "{}", back.text);
    assert_eq!(bins(&send(&app, get("/metrics")).await.text), 0.0);
    let model = send(&app, get("/models/defect-detector")).await;
    assert_eq!(model.status, StatusCode::OK);
    assert_eq!(version_of(&app, "defect-detector").await, "1.0.0");
    assert_eq!(bins(&send(&app, get("/metrics")).await.text), 1.0);
}

/// A rescan changed the directory's version after a rollback to the directory's one;
/// the model is then unloaded and a version uploaded: a rollback returns to the version
/// that served until the unload (the directory's new one), not to the one a stale state
/// named (it answered 409 version_unavailable).
#[tokio::test]
async fn after_a_rescan_an_unload_and_an_upload_roll_back_to_what_served() {
    let data = TempDir::new("rescan-unload");
    let (app, state) = router(&data, Limits::default());
    let (onnx, text) = digits();
    let up = |v: &str| {
        let next = card(text, v, None);
        upload("digits", &[("onnx", onnx), ("card", next.as_bytes())])
    };
    let reply = send(&app, up("u1")).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let back = roll_back(&app, "digits").await;
    assert_eq!(back.body["to_version"], "1.0.0", "{}", back.text);

    // The directory's digits is now 2.0.0 (what SIGHUP's rescan would load).
    let report = rescan_digits(&state, onnx, &card(text, "2.0.0", None))
        .await
        .unwrap();
    assert_eq!(version_of(&app, "digits").await, "2.0.0");
    // What the reload's audit event names.
    assert_eq!(
        report.swaps,
        [Swap {
            model: "digits".into(),
            from_version: Some("1.0.0".into()),
            to_version: Some("2.0.0".into()),
        }]
    );

    let gone = send(&app, admin("DELETE", "/admin/models/digits")).await;
    assert_eq!(gone.body["from_version"], "2.0.0", "{}", gone.text);
    let reply = send(&app, up("u2")).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let versions = send(&app, admin("GET", "/admin/models/digits/versions")).await;
    assert_eq!(
        versions.body["history"].as_array().unwrap().last(),
        Some(&json!("2.0.0")),
        "{}",
        versions.text
    );
    let back = roll_back(&app, "digits").await;
    assert_eq!(back.body["to_version"], "2.0.0");
    assert_eq!(version_of(&app, "digits").await, "2.0.0");
}

/// Unloaded, then the directory's version changed by a rescan, then a version
/// uploaded: a rollback returns to the directory's version as it is now; and a state an
/// older build wrote (`active` naming a directory version the store never held) does
/// not send it to that one.
#[tokio::test]
async fn after_an_unload_and_a_rescan_an_upload_rolls_back_to_the_directorys_version() {
    let data = TempDir::new("unload-rescan");
    let (app, state) = router(&data, Limits::default());
    let (onnx, text) = digits();
    let gone = send(&app, admin("DELETE", "/admin/models/digits")).await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.text);
    let report = rescan_digits(&state, onnx, &card(text, "2.0.0", None))
        .await
        .unwrap();
    assert!(report.swaps.is_empty(), "an unloaded model stays unloaded");
    upload_ok(&app, "digits", onnx, &card(text, "u2", None)).await;
    let back = roll_back(&app, "digits").await;
    assert_eq!(back.body["to_version"], "2.0.0");

    // An older build's state: unloaded, `active` naming a version never uploaded.
    let gone = send(&app, admin("DELETE", "/admin/models/digits")).await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.text);
    let state_file = data.path().join("models/digits/state.toml");
    std::fs::write(&state_file, "active = \"0.9.0\"\nunloaded = true\n").unwrap();
    upload_ok(&app, "digits", onnx, &card(text, "u3", None)).await;
    let back = roll_back(&app, "digits").await;
    assert_eq!(back.body["to_version"], "2.0.0");
}

/// A model may be named `unknown`; unloading it leaves the `model="unknown"` series of
/// requests for no loaded model in place.
#[tokio::test]
async fn unloading_a_model_named_unknown_keeps_the_unknown_models_series() {
    let data = TempDir::new("unknown-name");
    let (app, _) = router(&data, Limits::default());
    let (onnx, text) = digits();
    upload_ok(&app, "unknown", onnx, &card(text, "1.0.0", Some("unknown"))).await;
    let gone = send(&app, admin("DELETE", "/admin/models/unknown")).await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.text);
    let missing = serving(&app, "nope").await;
    assert_eq!(
        assert_error(&missing, StatusCode::NOT_FOUND),
        "model_not_found"
    );
    let m = send(&app, get("/metrics")).await.text;
    assert_eq!(
        sample(
            &m,
            r#"input_validation_errors_total{model="unknown",reason="model_not_found"}"#
        ),
        1.0
    );
}

/// A rescan bringing a directory version named as an upload of the same model is
/// refused whole, as an upload of an existing version is: nothing changes.
#[tokio::test]
async fn a_rescan_naming_an_uploaded_version_changes_nothing() {
    let data = TempDir::new("rescan-clash");
    let (app, state) = router(&data, Limits::default());
    let (onnx, text) = digits();
    let uploaded = card(text, "a10", None);
    upload_ok(&app, "digits", onnx, &uploaded).await;
    let refused = rescan_digits(&state, onnx, &uploaded).await.unwrap_err();
    assert_eq!(refused.code(), "version_exists", "{refused}");
    let versions = send(&app, admin("GET", "/admin/models/digits/versions")).await;
    let names: Vec<&str> = versions.body["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["1.0.0", "a10"], "{}", versions.text);
    assert_eq!(versions.body["history"], json!(["1.0.0"]));
    assert_eq!(version_of(&app, "digits").await, "a10");
}

#[tokio::test]
async fn bad_uploads_are_refused_and_the_old_version_keeps_serving() {
    let data = TempDir::new("lifecycle-bad");
    let (app, _) = router(
        &data,
        Limits {
            upload_limit: 64 * 1024,
            ..Limits::default()
        },
    );
    let (onnx, text) = defect();
    let v2 = card(text, "2.0.0", None);
    let (digits_onnx, digits_text) = digits();
    let scores_dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/uploads/scores-model"
    );
    let scores_onnx = std::fs::read(format!("{scores_dir}/model.onnx")).unwrap();
    let scores_card = std::fs::read(format!("{scores_dir}/model.toml")).unwrap();
    let big = vec![0u8; 100 * 1024];
    let cases: Vec<(&str, Request<Body>, StatusCode, &str)> = vec![
        (
            "corrupt onnx",
            upload(
                "defect-detector",
                &[("onnx", b"not an onnx file"), ("card", v2.as_bytes())],
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_model",
        ),
        (
            "card that does not parse",
            upload("defect-detector", &[("onnx", onnx), ("card", b"name = [")]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_card",
        ),
        (
            "card features do not match the model",
            upload(
                "defect-detector",
                &[("onnx", digits_onnx), ("card", v2.as_bytes())],
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_model",
        ),
        (
            "card for another model",
            upload(
                "defect-detector",
                &[
                    ("onnx", digits_onnx),
                    ("card", card(digits_text, "2.0.0", None).as_bytes()),
                ],
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_card",
        ),
        (
            "outputs are not probabilities",
            upload(
                "scores-model",
                &[("onnx", &scores_onnx), ("card", &scores_card)],
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_model_output",
        ),
        // A valid upload labelled as compressed: refused as every body is, not stored.
        (
            "content encoding",
            {
                let mut req = upload(
                    "defect-detector",
                    &[("onnx", onnx), ("card", v2.as_bytes())],
                );
                req.headers_mut()
                    .insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
                req
            },
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "too large",
            upload(
                "defect-detector",
                &[("onnx", &big), ("card", v2.as_bytes())],
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        // Declared far over the limit and never sent: refused from the header at
        // once (reading would wait for a body that does not come).
        (
            "declared too large",
            Request::post("/admin/models/defect-detector")
                .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
                .header(header::CONTENT_TYPE, multipart::content_type())
                .header(header::CONTENT_LENGTH, "300000000")
                .body(Body::from_stream(futures_util::stream::pending::<
                    Result<bytes::Bytes, std::io::Error>,
                >()))
                .unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "no card part",
            upload("defect-detector", &[("onnx", onnx)]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_part",
        ),
        (
            "no onnx part",
            upload("defect-detector", &[("card", v2.as_bytes())]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_part",
        ),
        (
            "an extra part",
            upload(
                "defect-detector",
                &[("onnx", onnx), ("card", v2.as_bytes()), ("notes", b"hi")],
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unexpected_part",
        ),
        (
            "bad model name",
            upload(".hidden", &[("onnx", onnx), ("card", v2.as_bytes())]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_model_name",
        ),
        (
            "path traversal",
            upload("..%2F..%2Fetc", &[("onnx", onnx), ("card", v2.as_bytes())]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_model_name",
        ),
        (
            "version unusable as a file name",
            upload(
                "defect-detector",
                &[
                    ("onnx", onnx),
                    ("card", card(text, "../2", None).as_bytes()),
                ],
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_card",
        ),
        (
            "version named like the store's state file",
            upload(
                "defect-detector",
                &[
                    ("onnx", onnx),
                    ("card", card(text, "state.toml", None).as_bytes()),
                ],
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_card",
        ),
        (
            "a bound that is not finite",
            upload(
                "defect-detector",
                &[
                    ("onnx", onnx),
                    (
                        "card",
                        v2.replacen("min = -50.0", "min = inf", 1).as_bytes(),
                    ),
                ],
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_card",
        ),
        (
            "not multipart",
            Request::post("/admin/models/defect-detector")
                .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{}"))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
    ];
    let before = send(&app, get("/metrics")).await.text;
    for (what, request, status, code) in cases {
        let reply = send(&app, request).await;
        assert_eq!(reply.status, status, "{what}: {}", reply.text);
        assert_eq!(assert_error(&reply, status), code, "{what}");
        assert_eq!(version_of(&app, "defect-detector").await, "1.0.0", "{what}");
    }
    let after = send(&app, get("/metrics")).await.text;
    assert_eq!(
        sample(
            &after,
            "model_loaded{model=\"defect-detector\",version=\"1.0.0\"}"
        ),
        1.0
    );
    assert!(
        !after.contains("scores-model"),
        "a refused model got series"
    );
    assert!(
        !after.contains("version=\"2.0.0\""),
        "a refused version got series"
    );
    assert_eq!(
        sample(&after, "audit_events_total{action=\"upload\"}"),
        17.0
    );
    assert!(!before.contains("status=\"5"));
    assert!(!after.contains("status=\"5"), "no upload may be a 5xx");
    // Nothing was kept on disk for a refused upload.
    let kept = std::fs::read_dir(data.path().join("models")).map_or(0, |d| d.count());
    assert_eq!(kept, 0);
}

#[tokio::test]
async fn models_are_added_by_upload_and_unloaded_but_never_the_default_or_last() {
    let data = TempDir::new("lifecycle-add");
    let (app, _) = router(&data, Limits::default());
    let (onnx, text) = digits();
    let named = card(text, "1.0.0", Some("digits-small"));
    let added = upload_ok(&app, "digits-small", onnx, &named).await;
    assert_eq!(added.body["previous_version"], json!(null));
    assert_eq!(version_of(&app, "digits-small").await, "1.0.0");
    let list = send(&app, get("/models")).await;
    assert_eq!(list.body["models"].as_array().unwrap().len(), 3);

    let gone = send(&app, admin("DELETE", "/admin/models/digits")).await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.text);
    assert_eq!(gone.body["to_version"], json!(null));
    // An unloaded model neither rolls back nor unloads again; the answer says how back.
    for (method, path) in [
        ("POST", "/admin/models/digits/rollback"),
        ("DELETE", "/admin/models/digits"),
    ] {
        let again = send(&app, admin(method, path)).await;
        assert_eq!(
            assert_error(&again, StatusCode::NOT_FOUND),
            "model_not_found"
        );
        let message = again.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("an upload serves it again"), "{message}");
    }
    let missing = serving(&app, "digits").await;
    assert_eq!(
        assert_error(&missing, StatusCode::NOT_FOUND),
        "model_not_found"
    );
    let metrics = send(&app, get("/metrics")).await.text;
    assert_eq!(
        sample(&metrics, "model_loaded{model=\"digits\",version=\"1.0.0\"}"),
        0.0
    );
    // The refused DELETE above is an audit event too.
    assert_eq!(
        sample(&metrics, "audit_events_total{action=\"delete\"}"),
        2.0
    );

    let default = send(&app, admin("DELETE", "/admin/models/defect-detector")).await;
    assert_eq!(
        assert_error(&default, StatusCode::CONFLICT),
        "cannot_unload"
    );
    let unknown = send(&app, admin("DELETE", "/admin/models/nope")).await;
    assert_eq!(
        assert_error(&unknown, StatusCode::NOT_FOUND),
        "model_not_found"
    );
    assert_eq!(version_of(&app, "defect-detector").await, "1.0.0");

    // Unloaded stays unloaded after a restart.
    drop(app);
    let (restarted, _) = router(&data, Limits::default());
    let still = serving(&restarted, "digits").await;
    assert_eq!(still.status, StatusCode::NOT_FOUND);
    assert_eq!(version_of(&restarted, "digits-small").await, "1.0.0");

    // An upload serves it again; nothing served just before, but a rollback returns
    // to the version that served until the unload.
    let v2 = card(text, "2.0.0", None);
    let back = upload_ok(&restarted, "digits", onnx, &v2).await;
    assert_eq!(back.body["previous_version"], json!(null));
    assert_eq!(version_of(&restarted, "digits").await, "2.0.0");
    let rolled = roll_back(&restarted, "digits").await;
    assert_eq!(rolled.body["to_version"], "1.0.0");
    assert_eq!(version_of(&restarted, "digits").await, "1.0.0");
}

#[tokio::test]
async fn a_rollback_target_that_no_longer_loads_is_a_409_and_leaves_the_history() {
    let data = TempDir::new("lifecycle-gone");
    let (app, _) = router(&data, Limits::default());
    let (onnx, text) = defect();
    for v in ["2.0.0", "3.0.0"] {
        let c = card(text, v, None);
        upload_ok(&app, "defect-detector", onnx, &c).await;
    }
    std::fs::remove_dir_all(data.path().join("models/defect-detector/2.0.0")).unwrap();
    let gone = send(
        &app,
        admin("POST", "/admin/models/defect-detector/rollback"),
    )
    .await;
    assert_eq!(
        assert_error(&gone, StatusCode::CONFLICT),
        "version_unavailable"
    );
    assert_eq!(version_of(&app, "defect-detector").await, "3.0.0");
    // The next rollback goes past it, to the start-up version.
    roll_back(&app, "defect-detector").await;
    assert_eq!(version_of(&app, "defect-detector").await, "1.0.0");
}

#[tokio::test]
async fn lifecycle_routes_need_an_admin_key() {
    let data = TempDir::new("lifecycle-auth");
    let (app, _) = router(&data, Limits::default());
    let (onnx, text) = defect();
    let v2 = card(text, "2.0.0", None);
    let mut no_key = upload(
        "defect-detector",
        &[("onnx", onnx), ("card", v2.as_bytes())],
    );
    no_key.headers_mut().remove(header::AUTHORIZATION);
    assert_eq!(send(&app, no_key).await.status, StatusCode::UNAUTHORIZED);
    for (method, path) in [
        ("GET", "/admin/models/defect-detector/versions"),
        ("POST", "/admin/models/defect-detector/rollback"),
        ("DELETE", "/admin/models/digits"),
    ] {
        let mut req = admin(method, path);
        req.headers_mut().remove(header::AUTHORIZATION);
        assert_eq!(
            send(&app, req).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    assert_eq!(version_of(&app, "defect-detector").await, "1.0.0");
    assert_eq!(version_of(&app, "digits").await, "1.0.0");
}
