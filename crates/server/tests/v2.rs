//! The Open Inference Protocol routes through the real router with `oneshot`: metadata
//! and health, infer in JSON and with binary tensors (answers equal to `/predict`'s),
//! and every kind of hostile body answered 4xx in the protocol's error shape without
//! a new metric series. `tests/tritonclient.rs` in the `vigil` crate drives the same
//! routes with the real `tritonclient`.

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode, header};
use serde_json::{Value, json};
use vigil_auth::{KeyHash, KeySpec, Keyring, Role};
use vigil_model::ModelRegistry;
use vigil_server::router::RouterConfig;
use vigil_server::{AppState, Limits, app};
use vigil_test_support::oneshot::{Reply, get, post, send, with_method};
use vigil_test_support::prometheus::series;
use vigil_test_support::sample;

const GOOD: [f32; 6] = [70.0, 250.0, 2.5, 45.0, 1500.0, 12.0];
const HOT: [f32; 6] = [95.0, 250.0, 6.0, 70.0, 1500.0, 18.0];
const INFER: &str = "/v2/models/defect-detector/infer";

fn router() -> Router {
    service().1
}

fn service() -> (AppState, Router) {
    let state = AppState::new(
        ModelRegistry::bundled().unwrap(),
        Limits {
            body_limit: 64 * 1024,
            max_batch: 8,
            ..Limits::default()
        },
    );
    (state.clone(), app(state, RouterConfig::default()))
}

fn fp32(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A request as `tritonclient` frames it (no content type), binary data after JSON.
fn framed(uri: &str, header: &Value, binary: &[u8]) -> Request<Body> {
    let json = header.to_string();
    let mut body = json.clone().into_bytes();
    body.extend_from_slice(binary);
    Request::post(uri)
        .header("inference-header-content-length", json.len())
        .body(Body::from(body))
        .unwrap()
}

/// A JSON request without a content type, as `tritonclient` sends it.
fn bare(uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri).body(body.into()).unwrap()
}

fn binary_input(rows: &[[f32; 6]]) -> (Value, Vec<u8>) {
    let data = fp32(&rows.concat());
    let header = json!({"inputs": [{"name": "input", "shape": [rows.len(), 6], "datatype": "FP32",
        "parameters": {"binary_data_size": data.len()}}], "parameters": {"binary_data_output": true}});
    (header, data)
}

/// An answer's JSON header and each output's data, decoding binary outputs.
fn decode(reply: &Reply) -> (Value, Vec<(String, Value)>) {
    let raw = &reply.raw;
    let length = reply
        .headers
        .get("inference-header-content-length")
        .map(|v| v.to_str().unwrap().parse::<usize>().unwrap());
    let json_end = length.unwrap_or(raw.len());
    let header: Value = serde_json::from_slice(&raw[..json_end]).unwrap();
    let mut at = json_end;
    let mut outputs = Vec::new();
    for o in header["outputs"].as_array().unwrap() {
        let name = o["name"].as_str().unwrap().to_owned();
        let data = match o["parameters"]["binary_data_size"].as_u64() {
            None => o["data"].clone(),
            Some(n) => {
                let bytes = &raw[at..at + n as usize];
                at += n as usize;
                match o["datatype"].as_str().unwrap() {
                    "FP32" => json!(
                        bytes
                            .chunks_exact(4)
                            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                            .collect::<Vec<_>>()
                    ),
                    "BYTES" => {
                        let mut items = Vec::new();
                        let mut i = 0;
                        while i < bytes.len() {
                            let len =
                                u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap()) as usize;
                            items.push(
                                String::from_utf8(bytes[i + 4..i + 4 + len].to_vec()).unwrap(),
                            );
                            i += 4 + len;
                        }
                        json!(items)
                    }
                    other => panic!("datatype {other}"),
                }
            }
        };
        outputs.push((name, data));
    }
    assert_eq!(at, raw.len(), "bytes left after the outputs");
    (header, outputs)
}

/// The protocol's error shape: `{"error": "<message>"}` (and the request id), returns
/// the message.
fn assert_v2_error(reply: &Reply, status: StatusCode) -> String {
    assert_eq!(reply.status, status, "{}", reply.text);
    let message = reply.body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error string in {}", reply.text));
    assert_eq!(
        reply.body["request_id"],
        reply.headers["x-request-id"].to_str().unwrap()
    );
    message.to_owned()
}

#[tokio::test]
async fn health_and_metadata_answer_as_the_protocol_says() {
    let app = router();
    for path in ["/v2", "/v2/"] {
        let r = send(&app, get(path)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["name"], "vigil");
        assert_eq!(r.body["extensions"], json!(["binary_tensor_data"]));
    }
    assert_eq!(
        send(&app, get("/v2/health/live")).await.body,
        json!({"live": true})
    );
    assert_eq!(
        send(&app, get("/v2/health/ready")).await.body,
        json!({"ready": true})
    );
    for path in ["/v2/models/digits", "/v2/models/digits/versions/1.0.0"] {
        let r = send(&app, get(path)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(
            r.body,
            json!({"name": "digits", "versions": ["1.0.0"], "platform": "onnx_tract",
                "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 64]}],
                "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
                            {"name": "label", "datatype": "BYTES", "shape": [-1]}]})
        );
    }
    for path in [
        "/v2/models/digits/ready",
        "/v2/models/digits/versions/1.0.0/ready",
    ] {
        let r = send(&app, get(path)).await;
        assert_eq!(
            (r.status, &r.body),
            (StatusCode::OK, &json!({"name": "digits", "ready": true}))
        );
    }
    for path in [
        "/v2/models/nope",
        "/v2/models/nope/ready",
        "/v2/models/digits/versions/9/ready",
        "/v2/models/digits/versions/9",
    ] {
        let message = assert_v2_error(&send(&app, get(path)).await, StatusCode::NOT_FOUND);
        assert!(message.contains("not loaded"), "{message}");
        if path.contains("versions/9") {
            // The name quoted alone, then the version asked and the one served.
            assert_eq!(
                message,
                "model \"digits\" version \"9\" is not loaded (version \"1.0.0\" is served)"
            );
        }
    }
    // Unknown routes and methods under /v2 answer in the protocol's shape too.
    assert_v2_error(
        &send(&app, get("/v2/repository/index")).await,
        StatusCode::NOT_FOUND,
    );
    assert_v2_error(
        &send(&app, with_method("DELETE", "/v2/health/live")).await,
        StatusCode::METHOD_NOT_ALLOWED,
    );
    assert_v2_error(
        &send(&app, get(INFER)).await,
        StatusCode::METHOD_NOT_ALLOWED,
    );
}

#[tokio::test]
async fn not_ready_answers_503_with_retry_after_as_every_503() {
    let (state, app) = service();
    state.set_ready(false);
    for (path, body) in [
        ("/v2/health/ready", json!({"ready": false})),
        (
            "/v2/models/defect-detector/ready",
            json!({"name": "defect-detector", "ready": false}),
        ),
        (
            "/v2/models/defect-detector/versions/1.0.0/ready",
            json!({"name": "defect-detector", "ready": false}),
        ),
    ] {
        let r = send(&app, get(path)).await;
        assert_eq!(
            (r.status, &r.body),
            (StatusCode::SERVICE_UNAVAILABLE, &body)
        );
        assert_eq!(r.headers[header::RETRY_AFTER], "1", "{path}");
    }
}

#[tokio::test]
async fn json_and_binary_infer_answer_what_predict_answers() {
    let app = router();
    let rows = [GOOD, HOT, GOOD];
    let predicted = send(
        &app,
        post("/predict", json!({"instances": rows}).to_string()),
    )
    .await;
    assert_eq!(predicted.status, StatusCode::OK, "{}", predicted.text);
    let want_probs: Vec<f64> = predicted.body["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            p["probabilities"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
        })
        .collect();
    let want_labels: Vec<&str> = predicted.body["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["label"].as_str().unwrap())
        .collect();
    assert_eq!(want_labels, ["ok", "defect", "ok"]);

    // JSON in, JSON out (no content type, nested data, an id to echo).
    let body = json!({"id": "req-7", "inputs": [{"name": "input", "shape": [3, 6], "datatype": "FP32", "data": rows}]});
    let r = send(&app, bare(INFER, body.to_string())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.headers["content-type"], "application/json");
    assert!(r.headers.get("inference-header-content-length").is_none());
    let (header, outputs) = decode(&r);
    assert_eq!(header["id"], "req-7");
    assert_eq!(
        (
            header["model_name"].as_str(),
            header["model_version"].as_str()
        ),
        (Some("defect-detector"), Some("1.0.0"))
    );
    assert!(uuid::Uuid::parse_str(header["parameters"]["prediction_id"].as_str().unwrap()).is_ok());
    assert_eq!(outputs[0].0, "probabilities");
    assert_eq!(header["outputs"][0]["shape"], json!([3, 2]));
    let probs: Vec<f64> = outputs[0]
        .1
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(probs, want_probs);
    assert_eq!(outputs[1], ("label".to_owned(), json!(want_labels)));

    // Binary in, binary out: tritonclient's default.
    let (header, data) = binary_input(&rows);
    let r = send(&app, framed(INFER, &header, &data)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.headers["content-type"], "application/octet-stream");
    let (header, outputs) = decode(&r);
    assert!(header.get("id").is_none());
    // The answer's JSON prints each FP32 shortest; as FP32 they are the same.
    let probs: Vec<f32> = outputs[0]
        .1
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let want: Vec<f32> = want_probs.iter().map(|v| *v as f32).collect();
    assert_eq!(probs, want, "binary FP32 is the same FP32");
    assert_eq!(outputs[1].1, json!(want_labels));

    // Outputs asked for one by one, in their order and format; FP64 and integers
    // that are exactly FP32.
    let fp64: Vec<u8> = GOOD
        .iter()
        .flat_map(|v| f64::from(*v).to_le_bytes())
        .collect();
    let header = json!({"inputs": [{"name": "input", "shape": [1, 6], "datatype": "FP64",
            "parameters": {"binary_data_size": fp64.len()}}],
        "outputs": [{"name": "label", "parameters": {"binary_data": true}},
                    {"name": "probabilities", "parameters": {"binary_data": false}}]});
    let r = send(
        &app,
        framed(
            "/v2/models/defect-detector/versions/1.0.0/infer",
            &header,
            &fp64,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let (header, outputs) = decode(&r);
    assert_eq!(outputs[0], ("label".to_owned(), json!(["ok"])));
    assert!(header["outputs"][1]["data"].is_array());
    let ints = json!({"inputs": [{"name": "input", "shape": [1, 6], "datatype": "INT64", "data": [70, 250, 3, 45, 1500, 12]}],
        "outputs": [{"name": "label"}]});
    let r = send(&app, bare(INFER, ints.to_string())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["outputs"],
        json!([{"name": "label", "datatype": "BYTES", "shape": [1], "data": ["ok"]}])
    );

    // The request's binary_data_output is the default of each output asked for that
    // does not say (Triton's rule): `label` in binary, `probabilities` in JSON.
    let both = json!({"inputs": [{"name": "input", "shape": [1, 6], "datatype": "FP32", "data": GOOD}],
        "parameters": {"binary_data_output": true},
        "outputs": [{"name": "label"}, {"name": "probabilities", "parameters": {"binary_data": false}}]});
    let r = send(&app, bare(INFER, both.to_string())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let (header, outputs) = decode(&r);
    assert_eq!(outputs[0], ("label".to_owned(), json!(["ok"])));
    assert!(header["outputs"][0]["parameters"]["binary_data_size"].is_u64());
    assert!(header["outputs"][1]["data"].is_array(), "{header}");

    // Every prediction counted like /predict's, under the route template.
    let metrics = send(&app, get("/metrics")).await.text;
    assert_eq!(
        sample(
            &metrics,
            r#"predictions_total{model="defect-detector",version="1.0.0",status="success"}"#
        ),
        3.0 + 3.0 + 3.0 + 1.0 + 1.0 + 1.0
    );
    assert_eq!(
        sample(
            &metrics,
            r#"http_requests_total{method="POST",route="/v2/models/{name}/infer",status="200"}"#
        ),
        4.0
    );
}

#[tokio::test]
async fn an_output_the_model_lacks_is_refused_naming_its_own() {
    // (A regressor's `value` is answered in the vigil crate's models_cli test, on the
    // zoo's regressors.)
    let app = router();
    let body = json!({"inputs": [{"name": "input", "shape": [1, 6], "datatype": "FP32", "data": GOOD}],
        "outputs": [{"name": "value"}]});
    let message = assert_v2_error(
        &send(&app, bare(INFER, body.to_string())).await,
        StatusCode::BAD_REQUEST,
    );
    assert!(
        message.contains("no output `value`") && message.contains("probabilities, label"),
        "{message}"
    );
}

#[tokio::test]
async fn hostile_bodies_get_a_400_and_add_no_series() {
    let app = router();
    // Warm every route once, so their series exist before the comparison.
    send(&app, bare(INFER, json!({"inputs": [{"name": "input", "shape": [1, 6], "datatype": "FP32", "data": GOOD}]}).to_string())).await;
    let before = series(&send(&app, get("/metrics")).await.text);
    let input = |shape: Value, rest: Value| {
        let mut i = json!({"name": "input", "shape": shape, "datatype": "FP32"});
        i.as_object_mut()
            .unwrap()
            .extend(rest.as_object().unwrap().clone());
        json!({"inputs": [i]})
    };
    let data = |n: usize| json!({"data": vec![1.0; n]});
    let nan = fp32(&[f32::NAN, 250.0, 2.5, 45.0, 1500.0, 12.0]);
    let big = {
        let mut b = GOOD;
        b[0] = 1e9;
        fp32(&b)
    };
    let bin = |n: usize| json!({"parameters": {"binary_data_size": n}});
    let cases: Vec<(&str, Request<Body>, StatusCode, &str)> = vec![
        ("header length past the body", {
            let mut r = framed(INFER, &input(json!([1, 6]), bin(24)), &fp32(&GOOD));
            r.headers_mut().insert("inference-header-content-length", "99999".parse().unwrap());
            r
        }, StatusCode::BAD_REQUEST, "only"),
        ("negative shape", bare(INFER, input(json!([-1, 6]), data(6)).to_string()), StatusCode::BAD_REQUEST, "negative"),
        ("huge shape", bare(INFER, input(json!([4_000_000_000u64, 4_000_000_000u64]), data(6)).to_string()), StatusCode::BAD_REQUEST, "elements"),
        ("data count against shape", bare(INFER, input(json!([1, 6]), data(5)).to_string()), StatusCode::BAD_REQUEST, "has 5 values"),
        ("binary size against shape", framed(INFER, &input(json!([1, 6]), bin(20)), &fp32(&GOOD[..5])), StatusCode::BAD_REQUEST, "need 24"),
        ("trailing bytes", framed(INFER, &input(json!([1, 6]), bin(24)), &fp32(&[GOOD.as_slice(), &[1.0]].concat())), StatusCode::BAD_REQUEST, "follow"),
        ("NaN in binary data", framed(INFER, &input(json!([1, 6]), bin(24)), &nan), StatusCode::BAD_REQUEST, "not finite"),
        ("out of range", framed(INFER, &input(json!([1, 6]), bin(24)), &big), StatusCode::BAD_REQUEST, "outside"),
        ("wrong feature count", bare(INFER, input(json!([1, 5]), data(5)).to_string()), StatusCode::BAD_REQUEST, "expects 6"),
        ("one-dimensional", bare(INFER, input(json!([6]), data(6)).to_string()), StatusCode::BAD_REQUEST, "[rows, 6]"),
        ("too many rows", bare(INFER, input(json!([9, 6]), data(54)).to_string()), StatusCode::BAD_REQUEST, "elements"),
        ("no rows", bare(INFER, input(json!([0, 6]), data(0)).to_string()), StatusCode::BAD_REQUEST, "no instances"),
        ("wrong input name", bare(INFER, json!({"inputs": [{"name": "x", "shape": [1, 6], "datatype": "FP32", "data": GOOD}]}).to_string()), StatusCode::BAD_REQUEST, "`input`"),
        ("two inputs", bare(INFER, json!({"inputs": [
            {"name": "input", "shape": [1, 6], "datatype": "FP32", "data": GOOD},
            {"name": "input", "shape": [1, 6], "datatype": "FP32", "data": GOOD}]}).to_string()), StatusCode::BAD_REQUEST, "one input"),
        ("BYTES input", bare(INFER, json!({"inputs": [{"name": "input", "shape": [1], "datatype": "BYTES", "data": ["x"]}]}).to_string()), StatusCode::BAD_REQUEST, "BYTES"),
        ("inexact FP64", bare(INFER, json!({"inputs": [{"name": "input", "shape": [1, 6], "datatype": "FP64", "data": [70.1, 250, 2.5, 45, 1500, 12]}]}).to_string()), StatusCode::BAD_REQUEST, "exactly an FP32"),
        ("malformed JSON", bare(INFER, "{\"inputs\": ["), StatusCode::BAD_REQUEST, "JSON"),
        ("malformed after an unknown field", bare(INFER, "{\"x\": 1,,}"), StatusCode::BAD_REQUEST, "JSON"),
        ("header as an array", bare(INFER, json!([null, null, [{"name": "input", "shape": [1, 6], "datatype": "FP32", "data": GOOD}]]).to_string()), StatusCode::BAD_REQUEST, "expected an object"),
        ("input as an array", bare(INFER, json!({"inputs": [["input", [1, 6], "FP32", null, GOOD]]}).to_string()), StatusCode::BAD_REQUEST, "expected an object"),
        ("unknown output", bare(INFER, json!({"inputs": [{"name": "input", "shape": [1, 6], "datatype": "FP32", "data": GOOD}], "outputs": [{"name": "../etc"}]}).to_string()), StatusCode::BAD_REQUEST, "no output"),
        // An answer holds an output once per time it is named: 37,000 names in a 1 MB
        // request built 836 MB.
        ("an output named twice", bare(INFER, json!({"inputs": [{"name": "input", "shape": [1, 6], "datatype": "FP32", "data": GOOD}], "outputs": [{"name": "label"}, {"name": "probabilities"}, {"name": "label"}]}).to_string()), StatusCode::BAD_REQUEST, "`label` is asked for more than once"),
        ("compressed body", {
            let mut r = bare(INFER, "x");
            r.headers_mut().insert("content-encoding", "gzip".parse().unwrap());
            r
        }, StatusCode::BAD_REQUEST, "Content-Encoding"),
        // A message quoting 70,000 bytes of header: cut, still the protocol's JSON.
        ("huge framing header", {
            let mut r = bare(INFER, "{}");
            r.headers_mut().insert("inference-header-content-length", "9".repeat(70_000).parse().unwrap());
            r
        }, StatusCode::BAD_REQUEST, "byte count"),
        ("too large", bare(INFER, vec![b' '; 65 * 1024]), StatusCode::PAYLOAD_TOO_LARGE, "larger than"),
        ("unknown model", bare("/v2/models/nope/infer", "{}"), StatusCode::NOT_FOUND, "not loaded"),
        ("unknown version", bare("/v2/models/defect-detector/versions/7/infer", "{}"), StatusCode::NOT_FOUND, "version \"7\" is not loaded"),
    ];
    for (what, req, status, needle) in cases {
        let message = assert_v2_error(&send(&app, req).await, status);
        assert!(
            message.contains(needle),
            "{what}: {message:?} should say {needle:?}"
        );
        assert!(
            message.len() <= 1024 + '…'.len_utf8(),
            "{what}: {} bytes",
            message.len()
        );
    }
    let metrics = send(&app, get("/metrics")).await.text;
    let after = series(&metrics);
    let added: Vec<_> = after
        .difference(&before)
        .filter(|s| !s.starts_with("http_") && !s.starts_with("log_"))
        .collect();
    assert!(added.is_empty(), "bad input added series: {added:?}");
    // Counted as /predict's refusals are, against the model.
    assert!(
        sample(
            &metrics,
            r#"input_validation_errors_total{model="defect-detector",reason="invalid_body"}"#
        ) >= 10.0
    );
    assert_eq!(
        sample(
            &metrics,
            r#"input_validation_errors_total{model="defect-detector",reason="non_finite"}"#
        ),
        1.0
    );
    // Too many rows (or a shape too large to count) as /predict counts them.
    assert_eq!(
        sample(
            &metrics,
            r#"input_validation_errors_total{model="defect-detector",reason="batch_too_large"}"#
        ),
        2.0
    );
    // Broken JSON is counted as such even where a field error comes first.
    assert_eq!(
        sample(
            &metrics,
            r#"input_validation_errors_total{model="defect-detector",reason="malformed_json"}"#
        ),
        2.0
    );
    assert_eq!(
        sample(
            &metrics,
            r#"input_validation_errors_total{model="unknown",reason="model_not_found"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn answers_from_outside_the_route_are_in_the_protocols_shape_and_others_are_not() {
    // The telemetry layer answers a timeout outside the route; the protocol's error
    // layer, which wraps the /v2 routes only, must still see it. With the only
    // inference thread held the handler surely waits when the zero timeout fires.
    let state = AppState::new(
        ModelRegistry::bundled().unwrap(),
        Limits {
            concurrency: 1,
            ..Limits::default()
        },
    );
    let slot = state.scheduler.occupy();
    let app = app(
        state,
        RouterConfig {
            request_timeout: Some(std::time::Duration::ZERO),
            ..RouterConfig::default()
        },
    );
    let body =
        json!({"inputs": [{"name": "input", "shape": [1, 6], "datatype": "FP32", "data": [GOOD]}]});
    let r = send(&app, bare(INFER, body.to_string())).await;
    let message = assert_v2_error(&r, StatusCode::SERVICE_UNAVAILABLE);
    assert!(message.contains("did not complete"), "{message}");
    assert_eq!(r.headers[header::RETRY_AFTER], "1");
    // Measured as sent: the answer written in the protocol's shape, not vigil's body
    // that was rewritten after the layer measured it.
    assert_eq!(sent_bytes(&app).await, r.raw.len() as f64);
    // The same timeout on vigil's own route keeps vigil's shape.
    let r = send(
        &app,
        post("/predict", json!({"instances": [GOOD]}).to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "timeout", "{}", r.text);
    drop(slot);
}

/// `http_response_size_bytes_sum` of the `/v2` infer route.
async fn sent_bytes(app: &Router) -> f64 {
    let metrics = send(app, get("/metrics")).await.text;
    sample(
        &metrics,
        r#"http_response_size_bytes_sum{method="POST",route="/v2/models/{name}/infer"}"#,
    )
}

#[tokio::test]
async fn a_refused_key_is_answered_in_the_protocols_shape_and_measured_as_sent() {
    let spec = KeySpec {
        name: "ci".into(),
        role: Role::Predict,
        sha256: KeyHash::of(b"vgl_v2-key").to_hex(),
        created_at: None,
    };
    let state = AppState::with_keys(
        ModelRegistry::bundled().unwrap(),
        Limits::default(),
        Keyring::new([&spec]).unwrap(),
    );
    let app = app(state, RouterConfig::default());
    let body =
        json!({"inputs": [{"name": "input", "shape": [1, 6], "datatype": "FP32", "data": [GOOD]}]});
    let r = send(&app, bare(INFER, body.to_string())).await;
    assert_v2_error(&r, StatusCode::UNAUTHORIZED);
    assert_eq!(sent_bytes(&app).await, r.raw.len() as f64);
}
