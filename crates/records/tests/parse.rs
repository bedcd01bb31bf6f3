//! The collector's checks on both encodings: what a JSON batch and the same batch in
//! the binary encoding store, and how each kind of damage is reported.

use serde_json::json;
use vigil_records::{
    BodyError, Record, RecordError, RecordRef, Status, WireRecord, json, packed, rfc3339_ms,
};

fn good(id: &str) -> serde_json::Value {
    json!({
        "prediction_id": id, "model": "defect-detector", "model_version": "1.0.0",
        "timestamp": "2026-11-22T21:00:00.123Z", "label": "ok", "confidence": 0.9,
        "is_defect": false, "latency_ms": 1.2, "request_id": "r1",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "status": "success"
    })
}

/// What the inference service sends (borrowed, nulls left out) reads back as the
/// same record, for a success and an error record.
#[test]
fn borrowed_records_are_the_same_wire_format() {
    let success: WireRecord = serde_json::from_value(good("p1")).unwrap();
    let mut error = success.clone();
    error.status = Status::Error;
    error.error_type = Some("timeout".into());
    error.label = None;
    error.confidence = None;
    error.trace_id = None;
    error.features = Some(vec![1.5, -2.0]);
    for record in [success, error] {
        let text = serde_json::to_string(&RecordRef::from(&record)).unwrap();
        assert!(!text.contains("null"), "{text}");
        let back: WireRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, record);
        assert_eq!(json::parse_body(text.as_bytes(), 10).unwrap().len(), 1);
    }
}

#[test]
fn single_records_and_batches_parse() {
    let one = json::parse_body(good("p1").to_string().as_bytes(), 10).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].ts_ms, 1_795_381_200_123);
    let batch = json::parse_body(
        json!({"records": [good("a"), good("b")]})
            .to_string()
            .as_bytes(),
        10,
    )
    .unwrap();
    assert_eq!(batch.len(), 2);
    assert_eq!(rfc3339_ms(one[0].ts_ms), "2026-11-22T21:00:00.123Z");
}

#[test]
fn every_bad_record_is_reported_with_index_and_field() {
    let mut no_error_type = good("c");
    no_error_type["status"] = json!("error");
    let mut bad_conf = good("d");
    bad_conf["confidence"] = json!(1.5);
    let mut bad_ts = good("e");
    bad_ts["timestamp"] = json!("yesterday");
    // Finite, but beyond what a model answers: its error would overflow the sums.
    let mut huge_value = good("f");
    huge_value["value"] = json!(1e300);
    // f32::MAX as a model's answer prints it is a value.
    assert!(vigil_records::is_value(3.4028235e38) && !vigil_records::is_value(3.41e38));
    let body = json!({"records": [good("a"), no_error_type, bad_conf, bad_ts, {"nope": 1},
        good("a"), huge_value]});
    assert_eq!(
        fields(&refused(json::parse_body(body.to_string().as_bytes(), 10))),
        [
            (1, Some("error_type")),
            (2, Some("confidence")),
            (3, Some("timestamp")),
            (4, None),
            (5, Some("prediction_id")),
            (6, Some("value"))
        ]
    );
}

/// Every later copy of an id in one batch is refused (the first stands), and the
/// repeats are reported in batch order among the other errors, in both encodings.
#[test]
fn repeated_ids_are_reported_in_batch_order_in_both_encodings() {
    let mut bad_conf = good("d");
    bad_conf["confidence"] = json!(1.5);
    let batch = [
        good("a"),
        good("b"),
        good("a"),
        bad_conf,
        good("a"),
        good("b"),
    ];
    let expected = [
        (2, Some("prediction_id")),
        (3, Some("confidence")),
        (4, Some("prediction_id")),
        (5, Some("prediction_id")),
    ];
    let body = json!({ "records": batch }).to_string();
    assert_eq!(
        fields(&refused(json::parse_body(body.as_bytes(), 10))),
        expected
    );
    let records: Vec<WireRecord> = batch.into_iter().map(wire).collect();
    assert_eq!(
        fields(&refused(packed::parse_body(&binary(&records), 10))),
        expected
    );
}

/// The per-record errors of a refused batch.
fn refused(parsed: Result<Vec<Record>, BodyError>) -> Vec<RecordError> {
    match parsed {
        Err(BodyError::Records(errors)) => errors,
        other => panic!("not refused record by record: {other:?}"),
    }
}

fn fields(errors: &[RecordError]) -> Vec<(usize, Option<&'static str>)> {
    errors.iter().map(|e| (e.index, e.field)).collect()
}

/// `request_id` takes what the inference service keeps from `X-Request-ID`.
#[test]
fn request_ids_follow_the_inference_services_rule() {
    let mut spaced = good("a");
    spaced["request_id"] = json!("order 42 / line 7");
    assert_eq!(
        json::parse_body(spaced.to_string().as_bytes(), 10).unwrap()[0].request_id,
        "order 42 / line 7"
    );
    for bad in [
        json!(""),
        json!("tab\there"),
        json!("é"),
        json!("x".repeat(129)),
    ] {
        let mut r = good("b");
        r["request_id"] = bad;
        let errors = refused(json::parse_body(r.to_string().as_bytes(), 10));
        assert_eq!(errors[0].field, Some("request_id"));
    }
}

#[test]
fn shapes_and_limits() {
    assert!(matches!(
        json::parse_body(b"[1,2]", 10),
        Err(BodyError::Shape(_))
    ));
    assert!(matches!(
        json::parse_body(b"{\"records\": []}", 10),
        Err(BodyError::Shape(_))
    ));
    assert!(matches!(
        json::parse_body(b"{", 10),
        Err(BodyError::Json(_))
    ));
    let three = json!({"records": [good("a"), good("b"), good("c")]}).to_string();
    assert!(matches!(
        json::parse_body(three.as_bytes(), 2),
        Err(BodyError::Shape(_))
    ));
}

/// A binary batch of `records` as vigil's forwarder sends it.
fn binary(records: &[WireRecord]) -> Vec<u8> {
    let mut body = packed::MAGIC.to_vec();
    for r in records {
        packed::write(&mut body, &RecordRef::from(r));
    }
    body
}

fn wire(value: serde_json::Value) -> WireRecord {
    serde_json::from_value(value).unwrap()
}

#[test]
fn a_binary_batch_stores_what_the_same_json_batch_stores() {
    let mut error = wire(good("b"));
    error.status = Status::Error;
    error.error_type = Some("timeout".into());
    error.label = None;
    error.confidence = None;
    error.features = Some(vec![1.5, -2.0]);
    let records = [wire(good("a")), error];
    let json = serde_json::to_vec(&json!({"records": records})).unwrap();
    assert_eq!(
        packed::parse_body(&binary(&records), 10).unwrap(),
        json::parse_body(&json, 10).unwrap()
    );
}

#[test]
fn binary_records_are_checked_like_json_ones_and_damage_is_a_clear_error() {
    let mut bad_trace = wire(good("c"));
    bad_trace.trace_id = Some("not-hex".into());
    let mut nan = wire(good("d"));
    nan.features = Some(vec![f64::NAN]);
    let mut inf = wire(good("e"));
    inf.latency_ms = f64::INFINITY;
    let body = binary(&[wire(good("a")), bad_trace, nan, inf, wire(good("a"))]);
    assert_eq!(
        fields(&refused(packed::parse_body(&body, 10))),
        [
            (1, Some("trace_id")),
            (2, Some("features")),
            (3, Some("latency_ms")),
            (4, Some("prediction_id"))
        ]
    );
    // A record whose fields do not decode (a status byte of 7, invalid UTF-8) is
    // reported by index; the framing around it still holds.
    let mut body = binary(&[wire(good("a")), wire(good("b"))]);
    let mut one = Vec::new();
    packed::write(&mut one, &RecordRef::from(&wire(good("c"))));
    let status_at = one.len() - 4 - 4 - 1; // before error_type (absent) and features (absent)
    one[status_at] = 7;
    body.extend_from_slice(&one);
    let mut bad_utf8 = Vec::new();
    packed::write(&mut bad_utf8, &RecordRef::from(&wire(good("d"))));
    bad_utf8[8] = 0xff; // inside prediction_id
    body.extend_from_slice(&bad_utf8);
    let errors = refused(packed::parse_body(&body, 10));
    assert_eq!(fields(&errors), [(2, None), (3, None)]);
    assert!(errors[0].reason.contains("damaged"), "{}", errors[0].reason);
    // Framing, emptiness and the record limit refuse the whole body.
    let two = binary(&[wire(good("a")), wire(good("b"))]);
    for refused in [&two[..two.len() - 1], packed::MAGIC.as_slice()] {
        assert!(
            matches!(packed::parse_body(refused, 10), Err(BodyError::Shape(_))),
            "{refused:?}"
        );
    }
    // Without this version's header it is another encoding, not a bad batch.
    for other in [
        &two[1..],
        b"VGL2".as_slice(),
        b"".as_slice(),
        b"{\"records\": []}".as_slice(),
    ] {
        assert!(
            matches!(packed::parse_body(other, 10), Err(BodyError::Version(_))),
            "{other:?}"
        );
    }
    assert!(matches!(
        packed::parse_body(&two, 1),
        Err(BodyError::Shape(_))
    ));
    // A length prefix claiming 4 GiB is refused without reading (or allocating) it.
    let mut huge = packed::MAGIC.to_vec();
    huge.extend_from_slice(&(u32::MAX - 1).to_le_bytes());
    assert!(matches!(
        packed::parse_body(&huge, 10),
        Err(BodyError::Shape(_))
    ));
}
