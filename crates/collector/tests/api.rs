//! The collector's API through its real router (`oneshot`), on SQLite and on a
//! throwaway PostgreSQL: exactly-once storage, whole-batch rejection, reads, stats,
//! Alertmanager webhooks, bad input, and a database outage.

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use vigil_collector::{CollectorConfig, CollectorState, app};
use vigil_records::{RecordRef, WireRecord, packed};
use vigil_store::Store;
use vigil_store::testing::{Postgres, TempDir};
use vigil_test_support::{eventually, sample};

struct Reply {
    status: StatusCode,
    body: Value,
    text: String,
}

async fn send(app: &Router, req: Request<Body>) -> Reply {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let rid = resp
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    // Error answers have the contract's shape; health answers have their own.
    if (status.is_client_error() || status.is_server_error())
        && body.get("checks").is_none()
        && body.get("status").is_none()
    {
        assert_eq!(
            body["request_id"].as_str(),
            rid.as_deref(),
            "error shape: {text}"
        );
        assert!(body["error"]["code"].is_string(), "error shape: {text}");
    }
    Reply { status, body, text }
}

fn post(uri: &str, body: impl Into<String>) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.into()))
        .unwrap()
}

/// `POST /log` with a binary batch of `records`, as vigil's forwarder sends it.
fn post_binary(records: &[Value]) -> Request<Body> {
    let mut body = packed::MAGIC.to_vec();
    for r in records {
        let wire: WireRecord = serde_json::from_value(r.clone()).unwrap();
        packed::write(&mut body, &RecordRef::from(&wire));
    }
    post_bytes(body)
}

fn post_bytes(body: Vec<u8>) -> Request<Body> {
    Request::post("/log")
        .header(header::CONTENT_TYPE, packed::CONTENT_TYPE)
        .body(Body::from(body))
        .unwrap()
}

/// `POST /log` of `records` as JSON, which the collector must take whole.
async fn log_records(app: &Router, records: &[Value]) {
    let r = send(app, post("/log", json!({ "records": records }).to_string())).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn record(id: &str, defect: bool) -> Value {
    json!({
        "prediction_id": id, "model": "defect-detector", "model_version": "1.0.0",
        "timestamp": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap(),
        "label": if defect { "defect" } else { "ok" }, "confidence": 0.9, "is_defect": defect,
        "latency_ms": 1.2, "request_id": format!("req-{id}"), "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "status": "success", "features": [70.0, 250.0, 2.5, 45.0, 1500.0, 12.0]
    })
}

async fn collector(store: Store) -> Router {
    let state = CollectorState::new(
        store,
        CollectorConfig {
            body_limit: 256 * 1024,
            max_records: 500,
            ..CollectorConfig::default()
        },
    );
    state.probe_database().await;
    app(state)
}

/// A collector on a fresh database of `pg`.
async fn postgres_collector(pg: &Postgres) -> Router {
    collector(
        Store::open(Some(&pg.database()), std::path::Path::new("/x"))
            .await
            .unwrap(),
    )
    .await
}

async fn contract(app: &Router) {
    // One record, then a batch that repeats it: stored once, duplicate counted.
    let r = send(app, post("/log", record("p-0", false).to_string())).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body, json!({"accepted": 1, "duplicates": 0}));
    let batch: Vec<Value> = (0..10)
        .map(|i| record(&format!("p-{i}"), i % 2 == 1))
        .collect();
    let r = send(app, post("/log", json!({ "records": batch }).to_string())).await;
    assert_eq!(r.body, json!({"accepted": 9, "duplicates": 1}));
    // The same batch again (a retry after a lost acknowledgement): nothing new.
    let r = send(app, post("/log", json!({ "records": batch }).to_string())).await;
    assert_eq!(r.body, json!({"accepted": 0, "duplicates": 10}));
    // An invalid batch is rejected whole, naming each bad record.
    let mut bad = record("p-100", false);
    bad["confidence"] = json!(7);
    let r = send(
        app,
        post(
            "/log",
            json!({"records": [record("p-99", false), bad, {"x": 1}]}).to_string(),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "invalid_records");
    let errors = r.body["error"]["details"]["errors"].as_array().unwrap();
    assert_eq!(
        errors
            .iter()
            .map(|e| e["index"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(errors[0]["field"], "confidence");

    // Reads: filters and cursor paging.
    let page = send(
        app,
        get("/predictions?model=defect-detector&defect=true&limit=3"),
    )
    .await
    .body;
    assert_eq!(page["predictions"].as_array().unwrap().len(), 3);
    assert!(
        page["predictions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["is_defect"] == true)
    );
    let next = page["next_cursor"].as_str().unwrap().to_owned();
    let rest = send(
        app,
        get(&format!(
            "/predictions?model=defect-detector&defect=true&limit=3&cursor={next}"
        )),
    )
    .await
    .body;
    assert_eq!(rest["predictions"].as_array().unwrap().len(), 2);
    assert!(rest["next_cursor"].is_null());
    let all = send(app, get("/predictions?limit=1000")).await.body;
    assert_eq!(
        all["predictions"].as_array().unwrap().len(),
        10,
        "p-99 of the rejected batch was not stored"
    );
    assert_eq!(
        all["predictions"][0]["features"],
        json!([70.0, 250.0, 2.5, 45.0, 1500.0, 12.0])
    );

    // Windows read as the inference service's analytics windows do.
    for (window, seconds) in [
        ("1h%2030m", 5400),
        ("90s", 90),
        ("1500ms", 2),
        ("7d", 604_800),
    ] {
        let reply = send(app, get(&format!("/stats?window={window}"))).await;
        assert_eq!(
            reply.body["window_seconds"], seconds,
            "{window}: {}",
            reply.text
        );
    }
    for window in ["0s", "367d", "-5m", "5"] {
        let reply = send(app, get(&format!("/stats?window={window}"))).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{window}: {}",
            reply.text
        );
    }
    let stats = send(app, get("/stats?window=1h")).await.body;
    let dd = &stats["models"][0];
    assert_eq!(
        (
            dd["model"].as_str(),
            dd["count"].as_u64(),
            dd["defects"].as_u64()
        ),
        (Some("defect-detector"), Some(10), Some(5))
    );
    assert_eq!(dd["defect_rate"], 0.5);
    assert_eq!(dd["labels"], json!({"defect": 5, "ok": 5}));

    // The same rules over vigil's binary encoding, which every 202 advertises.
    let binary = [
        record("p-9", true),
        record("b-0", true),
        record("b-1", false),
    ];
    let resp = app.clone().oneshot(post_binary(&binary)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(
        resp.headers()["accept-post"],
        "application/json, application/vnd.vigil.records"
    );
    let r = send(app, post_binary(&binary)).await;
    assert_eq!(
        r.body,
        json!({"accepted": 0, "duplicates": 3}),
        "{}",
        r.text
    );
    let stored = send(app, get("/predictions?limit=1000")).await.body;
    let b0 = stored["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["prediction_id"] == "b-0")
        .unwrap();
    assert_eq!(b0["request_id"], "req-b-0");
    assert_eq!(b0["features"], record("b-0", true)["features"]);

    // Alertmanager webhook v4: firing opens, repeated firing does not, resolved closes.
    let hook = |status: &str| {
        json!({
            "version": "4", "groupKey": "{}:{alertname=\"HighErrorRate\"}", "truncatedAlerts": 0, "status": status,
            "receiver": "vigil-collector", "groupLabels": {"alertname": "HighErrorRate"},
            "commonLabels": {"alertname": "HighErrorRate", "severity": "critical"},
            "commonAnnotations": {"summary": "High error rate"}, "externalURL": "http://alertmanager:9093",
            "alerts": [{
                "status": status, "labels": {"alertname": "HighErrorRate", "severity": "critical", "model": "defect-detector"},
                "annotations": {"summary": "High error rate on defect-detector"},
                "startsAt": "2026-11-22T21:00:00Z", "endsAt": if status == "resolved" { "2026-11-22T21:05:00Z" } else { "0001-01-01T00:00:00Z" },
                "generatorURL": "http://prometheus:9090/graph", "fingerprint": "a1b2c3d4e5f60718"
            }]
        })
        .to_string()
    };
    assert_eq!(
        send(app, post("/alerts", hook("firing"))).await.body["opened"],
        1
    );
    assert_eq!(
        send(app, post("/alerts", hook("firing"))).await.body["opened"],
        0
    );
    let open = send(app, get("/incidents?status=open")).await.body;
    assert_eq!(open["incidents"][0]["alertname"], "HighErrorRate");
    assert_eq!(open["incidents"][0]["severity"], "critical");
    assert_eq!(
        send(app, post("/alerts", hook("resolved"))).await.body["resolved"],
        1
    );
    assert_eq!(
        send(app, get("/incidents?status=open")).await.body["incidents"],
        json!([])
    );
    let resolved = send(app, get("/incidents?status=resolved")).await.body;
    assert_eq!(
        resolved["incidents"][0]["resolved_at"],
        "2026-11-22T21:05:00.000Z"
    );

    // Ten JSON records and two binary ones; the binary posts repeated 1 and 3 ids.
    let m = send(app, get("/metrics")).await.text;
    assert_eq!(
        sample(&m, "logging_predictions_total{model=\"defect-detector\"}"),
        12.0
    );
    assert_eq!(
        sample(&m, "logging_defects_total{model=\"defect-detector\"}"),
        6.0
    );
    // A model's defect count exists from its first record, at 0 until a defect.
    let mut calm = record("calm-1", false);
    calm["model"] = json!("calm");
    assert_eq!(
        send(app, post("/log", calm.to_string())).await.status,
        StatusCode::ACCEPTED
    );
    let m2 = send(app, get("/metrics")).await.text;
    assert_eq!(sample(&m2, "logging_defects_total{model=\"calm\"}"), 0.0);
    assert_eq!(sample(&m, "logging_duplicate_records_total"), 15.0);
    assert_eq!(sample(&m, "logging_db_initialized"), 1.0);
    assert_eq!(sample(&m, "logging_db_write_duration_seconds_count"), 5.0);
    assert_eq!(
        sample(
            &m,
            "incidents_total{alertname=\"HighErrorRate\",severity=\"critical\"}"
        ),
        1.0
    );
    assert_eq!(sample(&m, "incidents_open"), 0.0);
    assert!(m.contains("service_info{service=\"collector\""));
    assert!(m.contains("http_requests_total{method=\"POST\",route=\"/log\",status=\"202\"}"));
}

#[tokio::test]
async fn sqlite_collector_stores_each_record_once_and_answers_reads_and_alerts() {
    let dir = TempDir::new("collector");
    let app = collector(Store::open(None, &dir.0).await.unwrap()).await;
    contract(&app).await;
}

#[tokio::test]
async fn postgres_collector_meets_the_same_contract() {
    let pg = Postgres::start();
    let app = postgres_collector(&pg).await;
    contract(&app).await;
}

/// A cursor goes into a URL as it is: pasted raw it pages on as when encoded, whatever
/// the ids hold (`+` is a space in a query; `&`, `#` and `%` cut or change it). Before,
/// the page after `x+3`'s cursor came back empty.
#[tokio::test]
async fn cursors_page_on_when_pasted_into_a_url_whatever_the_ids_hold() {
    let dir = TempDir::new("collector-cursor");
    let app = collector(Store::open(None, &dir.0).await.unwrap()).await;
    let ids = [
        "x+1", "x+3", "x&y", "x#1", "x%41", "a=b", "/?;", "t~2", "plain",
    ];
    let records: Vec<Value> = ids
        .iter()
        .map(|id| {
            let mut r = record(id, false);
            // One time for all: the cursor's id decides where the next page starts.
            r["timestamp"] = json!("2026-12-05T07:00:00Z");
            r
        })
        .collect();
    log_records(&app, &records).await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let uri = match &cursor {
            Some(c) => format!("/predictions?limit=1&cursor={c}"),
            None => "/predictions?limit=1".to_owned(),
        };
        let page = send(&app, get(&uri)).await;
        assert_eq!(page.status, StatusCode::OK, "{uri}: {}", page.text);
        for p in page.body["predictions"].as_array().unwrap() {
            seen.push(p["prediction_id"].as_str().unwrap().to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(seen.len() <= ids.len(), "{seen:?}");
    }
    let mut expected: Vec<String> = ids.iter().map(|&id| id.to_owned()).collect();
    expected.sort();
    expected.reverse();
    assert_eq!(seen, expected, "newest first, ties by id, each once");
    // A cursor of an earlier version (plain `<ts_ms>~<id>`) still pages on.
    let ts_ms = time::macros::datetime!(2026-12-05 07:00 UTC).unix_timestamp() * 1000;
    let page = send(&app, get(&format!("/predictions?cursor={ts_ms}~plain"))).await;
    let ids: Vec<&str> = page.body["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["prediction_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a=b", "/?;"], "{}", page.text);
}

/// Records of 4,096 features weigh ~40 KB each as text: a page of 1,000 of them would
/// be 40 MB in the collector's memory, twice. Pages end near `MAX_PAGE_BYTES` instead,
/// and paging on reaches every record once.
#[tokio::test]
async fn pages_of_large_records_end_at_a_byte_bound_and_page_on() {
    let dir = TempDir::new("collector-page-bytes");
    let state = CollectorState::new(
        Store::open(None, &dir.0).await.unwrap(),
        CollectorConfig::default(),
    );
    state.probe_database().await;
    let app = app(state);
    let features: Vec<f64> = (0..vigil_records::MAX_FEATURES)
        .map(|i| 1000.0 + i as f64 + 0.123_456)
        .collect();
    for batch in 0..2 {
        let records: Vec<Value> = (0..100)
            .map(|i| {
                let mut r = record(&format!("big-{batch}-{i:03}"), false);
                r["features"] = json!(features);
                r
            })
            .collect();
        log_records(&app, &records).await;
    }
    let (mut seen, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let uri = match &cursor {
            Some(c) => format!("/predictions?limit=1000&cursor={c}"),
            None => "/predictions?limit=1000".to_owned(),
        };
        let page = send(&app, get(&uri)).await;
        assert_eq!(page.status, StatusCode::OK, "{uri}");
        let bound = vigil_collector::handlers::MAX_PAGE_BYTES;
        assert!(
            page.text.len() < bound + bound / 4,
            "a page of {} bytes",
            page.text.len()
        );
        let records = page.body["predictions"].as_array().unwrap();
        assert!(records.len() < 200, "{} records in one page", records.len());
        assert_eq!(records[0]["features"], json!(features));
        seen.extend(
            records
                .iter()
                .map(|p| p["prediction_id"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert!(pages >= 2, "{pages} pages");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (200, 200));
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_stores_nothing() {
    let dir = TempDir::new("collector-bad");
    bad_input(&collector(Store::open(None, &dir.0).await.unwrap()).await).await;
}

/// A body that is JSON but not an object is told so on every route that reads one:
/// not serde's message, which named the struct it expected (`expected struct
/// Webhook`) or an element of an array it was reading field by field.
#[tokio::test]
async fn a_body_that_is_not_an_object_is_told_so() {
    let dir = TempDir::new("collector-not-object");
    let app = collector(Store::open(None, &dir.0).await.unwrap()).await;
    for body in [r#""x""#, "[1, 2]", "[[1]]", "7", "null", "[]"] {
        for (method, uri) in [
            ("POST", "/alerts"),
            ("POST", "/feedback"),
            ("PUT", "/models/some-model"),
        ] {
            let req = Request::builder()
                .method(method)
                .uri(uri)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .unwrap();
            let reply = send(&app, req).await;
            assert_eq!(
                reply.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{uri} {body}"
            );
            assert_eq!(reply.body["error"]["code"], "invalid_body", "{uri} {body}");
            assert_eq!(
                reply.body["error"]["message"], "invalid request: the body must be a JSON object",
                "{uri} {body}"
            );
        }
    }
}

/// The same on PostgreSQL, which refuses some text SQLite takes (a NUL character).
#[tokio::test]
async fn bad_input_gets_the_same_4xx_on_postgres() {
    let pg = Postgres::start();
    bad_input(&postgres_collector(&pg).await).await;
}

async fn bad_input(app: &Router) {
    let app = app.clone();
    let big = json!({"records": vec![record("x", false); 600]}).to_string();
    let binary_body =
        http_body_util::BodyExt::collect(post_binary(&[record("z", false)]).into_body())
            .await
            .unwrap()
            .to_bytes();
    let mut bad_binary = record("w", false);
    bad_binary["latency_ms"] = json!(-1.0);
    let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
        (
            post("/log", "{not json"),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            Request::post("/log").body(Body::from("{}")).unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            Request::post("/log")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONTENT_ENCODING, "gzip")
                .body(Body::from(record("g", false).to_string()))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            post("/log", "x".repeat(300 * 1024)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            post("/log", "[1, 2]"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            post("/log", "{\"records\": []}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            post("/log", big),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            post("/log", "{\"prediction_id\": \"a\"}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_records",
        ),
        // A record is an object, not its fields in a row.
        (
            post(
                "/log",
                json!({"records": [record("v", false), ["v2", "defect-detector", "1.0.0"]]})
                    .to_string(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_records",
        ),
        // In UTC these are the years 10000 and -1, which RFC 3339 cannot write back.
        (
            post("/log", {
                let mut r = record("u", false);
                r["timestamp"] = json!("9999-12-31T23:59:59-23:59");
                r.to_string()
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_records",
        ),
        (
            post("/log", {
                let mut r = record("t", false);
                r["timestamp"] = json!("0000-01-01T00:00:00+23:59");
                r.to_string()
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_records",
        ),
        (
            get("/predictions?until=9999-12-31T23:59:59-23:59"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            post("/alerts", "[\"4\", []]"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        // Broken after a field of the wrong type: reported as broken JSON.
        (
            post("/alerts", "{\"version\": 4,,}"),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        // Nor is a struct inside one: an alert, a card's baseline.
        (
            post(
                "/alerts",
                json!({"version": "4", "alerts": [["firing", {"alertname": "X"}, {}, null, null, "f1"]]})
                    .to_string(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            Request::put("/models/arrbase")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    json!({"name": "arrbase", "version": "1", "task": "classification",
                           "labels": ["a", "b"], "baseline": [0.9]})
                    .to_string(),
                ))
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            Request::put("/models/%ff")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{}"))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_path",
        ),
        (
            Request::put("/models/arrcard")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    "[\"arrcard\", \"1\", \"classification\", [\"a\", \"b\"]]",
                ))
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            post_bytes(b"VGL2".to_vec()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            post_bytes(binary_body[..binary_body.len() - 3].to_vec()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            post_bytes(vec![0; 300 * 1024]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            post_binary(&[record("y", false), bad_binary]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_records",
        ),
        (
            get("/predictions?limit=0"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            get("/predictions?since=yesterday"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            get("/predictions?defect=maybe"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            get("/predictions?cursor=garbage"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        // A NUL is in no model, label or cursor (and PostgreSQL cannot compare with it).
        (
            get("/predictions?model=%00"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            get("/predictions?label=a%00b"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            get("/predictions?cursor=1~%00"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        // A NUL once the cursor's base64 is undone (`1~\0`), bytes that are not UTF-8.
        (
            get("/predictions?cursor=MX4A"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            get("/predictions?cursor=MX7_"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        // Not UTF-8 once decoded: not read as a model named U+FFFD.
        (
            get("/predictions?model=%ff"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            get("/quality?model=a%C3"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            get("/quality?model=%00"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        // ... nor in an alert; a good alert before it is not stored either.
        (
            post(
                "/alerts",
                json!({"version": "4", "alerts": [
                    {"status": "firing", "fingerprint": "good", "labels": {"alertname": "A"}},
                    {"status": "firing", "fingerprint": "nul", "labels": {"alertname": "A"},
                     "annotations": {"summary": "a\u{0}b"}},
                ]})
                .to_string(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            post(
                "/alerts",
                json!({"version": "4", "alerts": [
                    {"status": "firing", "fingerprint": "f\u{0}p", "labels": {"alertname": "A"}},
                ]})
                .to_string(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            post(
                "/alerts",
                json!({"version": "4", "alerts": [
                    {"status": "firing", "fingerprint": "e", "labels": {"alertname": ""}},
                ]})
                .to_string(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            get("/predictions?bogus=1"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            get("/stats?window=forever"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        // `GET /models` filters nothing: a parameter is refused, not ignored.
        (
            get("/models?model=defect-detector"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            get("/incidents?status=maybe"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            post("/alerts", "{\"version\": \"3\", \"alerts\": []}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            post(
                "/alerts",
                "{\"version\": \"4\", \"alerts\": [{\"status\": \"firing\", \"fingerprint\": \"\"}]}",
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            post("/alerts", "nope"),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (get("/nowhere"), StatusCode::NOT_FOUND, "not_found"),
        (
            Request::delete("/log").body(Body::empty()).unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ];
    for (req, status, code) in cases {
        let what = format!("{} {}", req.method(), req.uri());
        let r = send(&app, req).await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (status, Some(code)),
            "{what}: {}",
            r.text
        );
    }
    let all = send(&app, get("/predictions")).await.body;
    assert_eq!(all["predictions"], json!([]));
    assert_eq!(send(&app, get("/models")).await.body["models"], json!([]));
    let incidents = send(&app, get("/incidents")).await.body;
    assert_eq!(incidents["incidents"], json!([]));
    // The same codes carry the same details as on the inference service.
    let unknown = send(&app, get("/quality?model=nope")).await;
    assert_eq!(unknown.body["error"]["details"], json!({"model": "nope"}));
    let mut gzipped = post("/log", record("g", false).to_string());
    gzipped
        .headers_mut()
        .insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
    let gzipped = send(&app, gzipped).await;
    assert_eq!(
        gzipped.body["error"]["details"],
        json!({"content_encoding": "gzip"})
    );
    let text = send(
        &app,
        Request::post("/log")
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from("x"))
            .unwrap(),
    )
    .await;
    assert_eq!(
        text.body["error"]["details"],
        json!({"content_type": "text/plain"})
    );
    let m = send(&app, get("/metrics")).await.text;
    assert!(!m.contains("status=\"5"), "{m}");
}

/// A database that answers reads but takes no write (another process holds its
/// write lock; a full disk or a read-only volume look the same) is down: not ready and
/// `logging_db_initialized` 0, from the background probe's own write, with no record
/// sent. Before, `SELECT 1` kept both up while every write failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_takes_no_write_is_down_until_it_does() {
    let dir = TempDir::new("collector-locked");
    let state = CollectorState::new(
        Store::open(None, &dir.0).await.unwrap(),
        CollectorConfig::default(),
    );
    let probe = state.spawn_probe(std::time::Duration::from_millis(100));
    let app = app(state);
    let until = |want: StatusCode, gauge: f64| {
        let app = app.clone();
        async move {
            eventually(std::time::Duration::from_secs(30), async || {
                let ready = send(&app, get("/health/ready")).await.status;
                let metrics = send(&app, get("/metrics")).await.text;
                if ready == want && sample(&metrics, "logging_db_initialized") == gauge {
                    Ok(())
                } else {
                    Err(format!("{ready}\n{metrics}"))
                }
            })
            .await
        }
    };
    until(StatusCode::OK, 1.0).await;
    let other = rusqlite::Connection::open(dir.0.join("vigil.db")).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    until(StatusCode::SERVICE_UNAVAILABLE, 0.0).await;
    let health = send(&app, get("/health")).await;
    assert_eq!(health.body["checks"]["database"]["status"], "fail");
    other.execute_batch("ROLLBACK").unwrap();
    until(StatusCode::OK, 1.0).await;
    probe.abort();
}

#[tokio::test]
async fn a_postgres_outage_is_a_503_and_recovers() {
    let pg = Postgres::start();
    let app = postgres_collector(&pg).await;
    assert_eq!(send(&app, get("/health")).await.status, StatusCode::OK);
    pg.stop();
    let health = send(&app, get("/health")).await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health.body["checks"]["database"]["status"], "fail");
    assert_eq!(
        send(&app, get("/health/ready")).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let r = send(
        &app,
        post("/log", record("during-outage", false).to_string()),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("database_unavailable")
        )
    );
    assert!(
        !r.text.contains("connection"),
        "no internals in the body: {}",
        r.text
    );
    assert_eq!(
        sample(
            &send(&app, get("/metrics")).await.text,
            "logging_db_initialized"
        ),
        0.0
    );
    pg.restart();
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..100 {
        status = send(
            &app,
            post("/log", record("during-outage", false).to_string()),
        )
        .await
        .status;
        if status == StatusCode::ACCEPTED {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(send(&app, get("/health")).await.status, StatusCode::OK);
    assert_eq!(
        sample(
            &send(&app, get("/metrics")).await.text,
            "logging_db_initialized"
        ),
        1.0
    );
}
