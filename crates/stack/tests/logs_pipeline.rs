//! Checks of the log pipeline: Promtail turns vigil's JSON lines into Loki streams
//! labelled only by bounded values, carries request and trace ids as structured
//! metadata, keeps the event time and lets non-JSON lines through; Loki accepts
//! structured metadata (schema v13) and deletes old logs.

mod common;

use std::collections::BTreeSet;

use serde_norway::Value;
use vigil_stack::{deploy, repo_root, yaml};

/// The only stream labels allowed: each has a small, fixed set of values.
const LABEL_ALLOWLIST: [&str; 5] = ["level", "service", "container", "compose_service", "job"];

/// One value per request: a label with these would make one stream per request.
const PER_REQUEST: [&str; 2] = ["request_id", "trace_id"];

/// Fields of vigil's log lines the pipeline must extract (docs/reference.md §6).
const EXTRACTED: [&str; 8] = [
    "timestamp",
    "level",
    "service",
    "message",
    "request_id",
    "trace_id",
    "route",
    "status",
];

fn promtail() -> Value {
    yaml(&deploy("promtail/promtail-config.yml"))
}

fn loki() -> Value {
    yaml(&deploy("loki/loki-config.yml"))
}

fn scrape_configs(promtail: &Value) -> &[Value] {
    let configs = promtail["scrape_configs"]
        .as_sequence()
        .expect("scrape_configs");
    assert!(!configs.is_empty());
    configs
}

/// The pipeline stages of a scrape config as (stage type, stage body).
fn stages(scrape: &Value) -> Vec<(String, Value)> {
    scrape["pipeline_stages"]
        .as_sequence()
        .expect("pipeline_stages")
        .iter()
        .map(|stage| {
            let m = stage.as_mapping().expect("a stage is a one-key mapping");
            assert_eq!(m.len(), 1, "a stage is a one-key mapping: {stage:?}");
            let (k, v) = m.iter().next().unwrap();
            (k.as_str().unwrap().to_string(), v.clone())
        })
        .collect()
}

fn keys(v: &Value) -> BTreeSet<String> {
    match v {
        Value::Mapping(m) => m.keys().map(|k| k.as_str().unwrap().to_string()).collect(),
        Value::Sequence(s) => s.iter().map(|k| k.as_str().unwrap().to_string()).collect(),
        Value::Null => BTreeSet::new(),
        other => panic!("expected a mapping or a list: {other:?}"),
    }
}

/// Every label name a scrape config can put on a stream: `labels` stages, relabel
/// targets and static labels.
fn label_names(scrape: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (kind, body) in stages(scrape) {
        if kind == "labels" {
            names.extend(keys(&body));
        }
    }
    for rule in scrape["relabel_configs"]
        .as_sequence()
        .into_iter()
        .flatten()
    {
        if let Some(target) = rule["target_label"].as_str() {
            // `__`-prefixed labels are internal and dropped before sending.
            if !target.starts_with("__") {
                names.insert(target.to_string());
            }
        }
    }
    for sc in scrape["static_configs"].as_sequence().into_iter().flatten() {
        names.extend(keys(&sc["labels"]));
    }
    names
}

#[test]
fn promtail_extracts_the_vigil_json_fields() {
    for scrape in scrape_configs(&promtail()) {
        let stages = stages(scrape);
        let json: Vec<&Value> = stages
            .iter()
            .filter(|(k, _)| k == "json")
            .map(|(_, v)| v)
            .collect();
        assert_eq!(json.len(), 1, "one json stage");
        let expressions = json[0]["expressions"].as_mapping().expect("expressions");
        for field in EXTRACTED {
            // `name:` alone means "the JSON field of the same name".
            let source = expressions
                .get(field)
                .unwrap_or_else(|| panic!("the json stage does not extract {field}"));
            assert!(
                source.is_null() || source.as_str() == Some(field),
                "{field} is extracted from {source:?}"
            );
        }
    }
}

#[test]
fn stages_that_read_extracted_fields_come_after_the_json_stage() {
    for scrape in scrape_configs(&promtail()) {
        let kinds: Vec<String> = stages(scrape).into_iter().map(|(k, _)| k).collect();
        let json = kinds.iter().position(|k| k == "json").unwrap();
        for (i, kind) in kinds.iter().enumerate() {
            if ["labels", "structured_metadata", "timestamp"].contains(&kind.as_str()) {
                assert!(
                    i > json,
                    "{kind} stage before the json stage: it would see nothing"
                );
            }
        }
    }
}

#[test]
fn stream_labels_are_bounded() {
    let allowed: BTreeSet<String> = LABEL_ALLOWLIST.iter().map(|s| s.to_string()).collect();
    for scrape in scrape_configs(&promtail()) {
        let names = label_names(scrape);
        assert!(
            names.is_subset(&allowed),
            "labels outside the allowlist: {:?}",
            names.difference(&allowed).collect::<Vec<_>>()
        );
        for needed in ["level", "service"] {
            assert!(names.contains(needed), "{needed} is not a label");
        }
        for (kind, body) in stages(scrape) {
            if kind == "labelallow" {
                assert!(
                    keys(&body).is_subset(&allowed),
                    "labelallow lets through {body:?}"
                );
            }
        }
    }
}

#[test]
fn request_and_trace_ids_are_structured_metadata_never_labels() {
    for scrape in scrape_configs(&promtail()) {
        let names = label_names(scrape);
        let mut metadata = BTreeSet::new();
        for (kind, body) in stages(scrape) {
            match kind.as_str() {
                "structured_metadata" => metadata.extend(keys(&body)),
                "labelallow" => {
                    for id in PER_REQUEST {
                        assert!(!keys(&body).contains(id), "labelallow keeps {id}");
                    }
                }
                _ => {}
            }
        }
        for id in PER_REQUEST {
            assert!(!names.contains(id), "{id} is a stream label");
            assert!(metadata.contains(id), "{id} is not structured metadata");
        }
        let both: Vec<_> = metadata.intersection(&names).collect();
        assert!(
            both.is_empty(),
            "both label and structured metadata: {both:?}"
        );
    }
}

#[test]
fn the_event_time_comes_from_the_log_line() {
    for scrape in scrape_configs(&promtail()) {
        let stages = stages(scrape);
        let (_, ts) = stages
            .iter()
            .find(|(k, _)| k == "timestamp")
            .expect("a timestamp stage");
        // vigil writes RFC 3339 UTC with microseconds: 2026-11-22T21:12:40.123456Z.
        assert_eq!(ts["source"].as_str(), Some("timestamp"));
        assert!(
            matches!(ts["format"].as_str(), Some("RFC3339Nano" | "RFC3339")),
            "timestamp format {:?}",
            ts["format"]
        );
    }
}

#[test]
fn non_json_lines_pass_through() {
    for scrape in scrape_configs(&promtail()) {
        for (kind, body) in stages(scrape) {
            match kind.as_str() {
                "json" => assert_ne!(
                    body["drop_malformed"].as_bool(),
                    Some(true),
                    "drop_malformed discards every non-JSON line"
                ),
                // `output` replaces the line, `drop` and `limit` discard lines.
                "output" | "drop" | "limit" | "sampling" => {
                    panic!("a {kind} stage changes or discards lines: {body:?}")
                }
                "match" => assert_ne!(
                    body["action"].as_str(),
                    Some("drop"),
                    "a match stage drops lines"
                ),
                _ => {}
            }
        }
    }
}

#[test]
fn promtail_reads_the_vigil_containers_of_the_compose_file() {
    let promtail = promtail();
    let compose = yaml(&repo_root().join("docker-compose.yml"));
    let services = compose["services"].as_mapping().unwrap();
    for scrape in scrape_configs(&promtail) {
        let sd = scrape["docker_sd_configs"]
            .as_sequence()
            .expect("docker_sd_configs");
        for docker in sd {
            assert_eq!(docker["host"].as_str(), Some("unix:///var/run/docker.sock"));
            for filter in docker["filters"].as_sequence().into_iter().flatten() {
                assert_eq!(filter["name"].as_str(), Some("label"));
                for value in filter["values"].as_sequence().unwrap() {
                    let (key, value) = value.as_str().unwrap().split_once('=').unwrap();
                    let matching: BTreeSet<&str> = services
                        .iter()
                        .filter(|(_, s)| s["labels"][key].as_str() == Some(value))
                        .map(|(n, _)| n.as_str().unwrap())
                        .collect();
                    assert_eq!(
                        matching,
                        BTreeSet::from(["collector", "inference"]),
                        "containers labelled {key}={value}"
                    );
                }
            }
        }
    }
    // Promtail has the Docker socket it discovers containers through.
    let promtail_service = &services["promtail"];
    let socket = promtail_service["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .any(|v| v.starts_with("/var/run/docker.sock:/var/run/docker.sock"));
    assert!(socket, "promtail does not mount the Docker socket");
}

#[test]
fn promtail_pushes_to_loki() {
    let port = loki()["server"]["http_listen_port"].as_u64().unwrap();
    let clients = promtail()["clients"].as_sequence().unwrap().clone();
    assert_eq!(clients.len(), 1);
    let url = common::str_at(&clients[0], "url", "promtail client");
    assert_eq!(url, format!("http://loki:{port}/loki/api/v1/push"));
}

#[test]
fn loki_accepts_structured_metadata_on_schema_v13() {
    let loki = loki();
    assert_eq!(
        loki["limits_config"]["allow_structured_metadata"].as_bool(),
        Some(true)
    );
    let configs = loki["schema_config"]["configs"].as_sequence().unwrap();
    // Structured metadata needs the current (last) period to be tsdb + v13.
    let current = configs.last().expect("a schema period");
    assert_eq!(current["schema"].as_str(), Some("v13"));
    assert_eq!(current["store"].as_str(), Some("tsdb"));
    assert_eq!(current["object_store"].as_str(), Some("filesystem"));
    // Few labels per stream: the pipeline sets at most LABEL_ALLOWLIST.len(), and
    // Loki adds service_name; the limit must leave room for those.
    let max = loki["limits_config"]["max_label_names_per_series"]
        .as_u64()
        .unwrap_or(15) as usize;
    assert!(
        max > LABEL_ALLOWLIST.len(),
        "max_label_names_per_series {max}"
    );
}

#[test]
fn loki_deletes_old_logs() {
    let loki = loki();
    let retention = loki["limits_config"]["retention_period"]
        .as_str()
        .expect("limits_config.retention_period");
    assert!(retention != "0s" && retention != "0", "retention disabled");
    let compactor = &loki["compactor"];
    assert_eq!(compactor["retention_enabled"].as_bool(), Some(true));
    // Loki 3 refuses to start with retention but no delete request store.
    assert!(compactor["delete_request_store"].as_str().is_some());
}
