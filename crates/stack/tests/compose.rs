//! Checks of `docker-compose.yml`: the service names other configs address, pinned
//! images, health checks, volumes, mounted files that exist, loopback-only ports, and
//! that the addresses in the Prometheus, Alertmanager and Grafana configs resolve to
//! services of this file.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use serde_norway::Value;
use vigil_stack::{deploy, repo_root, yaml};

/// Service name → the port it serves inside the compose network (`None`: serves none
/// that anyone calls). Other files address these `host:port`s.
const SERVICES: [(&str, Option<u16>); 7] = [
    ("inference", Some(8000)),
    ("collector", Some(8001)),
    ("prometheus", Some(9090)),
    ("alertmanager", Some(9093)),
    ("grafana", Some(3000)),
    ("loki", Some(3100)),
    ("promtail", None),
];

/// Services allowed to run without a health check, and why.
const NO_HEALTHCHECK: [&str; 1] = ["promtail"]; // its image has no HTTP client

fn compose() -> Value {
    yaml(&repo_root().join("docker-compose.yml"))
}

fn services(compose: &Value) -> BTreeMap<String, Value> {
    compose["services"]
        .as_mapping()
        .expect("docker-compose.yml has services")
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_string(), v.clone()))
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| s.iter().map(scalar).collect())
        .unwrap_or_default()
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// An environment variable of a service (mapping or `KEY=value` list form).
fn env(service: &Value, key: &str) -> Option<String> {
    match &service["environment"] {
        Value::Mapping(m) => m.get(key).map(scalar),
        Value::Sequence(s) => s.iter().find_map(|e| {
            let e = e.as_str()?;
            let (k, v) = e.split_once('=')?;
            (k == key).then(|| v.to_string())
        }),
        _ => None,
    }
}

/// A short-syntax volume entry: (source, target).
fn volume(entry: &Value) -> (String, String) {
    let text = entry.as_str().expect("volumes use the short syntax");
    let mut parts = text.split(':');
    let source = parts.next().unwrap().to_string();
    let target = parts
        .next()
        .unwrap_or_else(|| panic!("{text}: no target"))
        .to_string();
    (source, target)
}

fn is_named(source: &str) -> bool {
    !source.starts_with('.') && !source.starts_with('/') && !source.starts_with('~')
}

#[test]
fn services_have_the_names_other_configs_use() {
    let names: BTreeSet<String> = services(&compose()).into_keys().collect();
    let expected: BTreeSet<String> = SERVICES.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(names, expected);
}

#[test]
fn every_image_is_pinned_to_a_version() {
    let version = common::workspace_version();
    for (name, service) in services(&compose()) {
        let image = service["image"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no image (a bare build gets a random name)"));
        if let Some(why) = common::unpinned(image) {
            panic!("{name}: {why}");
        }
        if !service["build"].is_null() {
            // Built from this tree: tagged with the workspace version it was built from.
            let (_, tag) = common::split_image(image);
            assert_eq!(
                tag,
                Some(version.as_str()),
                "{name}: built image {image} is not tagged with the workspace version"
            );
            let context = service["build"]["context"].as_str().unwrap_or(".");
            let dockerfile = service["build"]["dockerfile"]
                .as_str()
                .unwrap_or("Dockerfile");
            assert!(
                repo_root().join(context).join(dockerfile).is_file(),
                "{name}: {context}/{dockerfile} does not exist"
            );
        }
    }
}

#[test]
fn every_service_but_promtail_has_a_healthcheck() {
    for (name, service) in services(&compose()) {
        let check = &service["healthcheck"];
        if NO_HEALTHCHECK.contains(&name.as_str()) {
            continue;
        }
        assert_ne!(check["disable"].as_bool(), Some(true), "{name}: disabled");
        let test = strings(&check["test"]);
        assert!(
            matches!(test.first().map(String::as_str), Some("CMD" | "CMD-SHELL")) && test.len() > 1,
            "{name}: healthcheck.test must be [CMD, …] or [CMD-SHELL, …], got {test:?}"
        );
        for key in ["interval", "timeout", "retries"] {
            assert!(!check[key].is_null(), "{name}: healthcheck.{key} not set");
        }
    }
}

#[test]
fn vigil_health_checks_probe_readiness_on_their_own_port() {
    let services = services(&compose());
    for (name, port) in [("inference", 8000), ("collector", 8001)] {
        let test = strings(&services[name]["healthcheck"]["test"]).join(" ");
        let url = format!("http://127.0.0.1:{port}/health/ready");
        assert!(
            test.contains(&url),
            "{name}: health check {test:?} does not probe {url}"
        );
    }
}

#[test]
fn depends_on_health_only_where_there_is_a_healthcheck() {
    let services = services(&compose());
    let mut gated = 0;
    for (name, service) in &services {
        let Some(deps) = service["depends_on"].as_mapping() else {
            assert!(
                service["depends_on"].is_null(),
                "{name}: use the long depends_on form with a condition"
            );
            continue;
        };
        for (dep, spec) in deps {
            let dep = dep.as_str().unwrap();
            assert!(
                services.contains_key(dep),
                "{name} depends on unknown {dep}"
            );
            if spec["condition"].as_str() == Some("service_healthy") {
                gated += 1;
                assert!(
                    !services[dep]["healthcheck"].is_null(),
                    "{name} waits for {dep} to be healthy, but {dep} has no healthcheck"
                );
            }
        }
    }
    // inference → collector, grafana → prometheus + loki, promtail → loki.
    assert!(gated >= 4, "only {gated} service_healthy conditions");
}

#[test]
fn named_volumes_are_declared_and_bind_mounts_exist() {
    let compose = compose();
    let declared: BTreeSet<String> = compose["volumes"]
        .as_mapping()
        .expect("top-level volumes")
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    let mut used = BTreeSet::new();
    for (name, service) in services(&compose) {
        for entry in service["volumes"].as_sequence().into_iter().flatten() {
            let (source, target) = volume(entry);
            assert!(
                target.starts_with('/'),
                "{name}: target {target} not absolute"
            );
            if is_named(&source) {
                assert!(
                    declared.contains(&source),
                    "{name}: volume {source} not declared"
                );
                used.insert(source);
            } else if let Some(rel) = source.strip_prefix("./") {
                assert!(
                    repo_root().join(rel).exists(),
                    "{name}: mounts {source}, which is not in the repository"
                );
            }
        }
    }
    assert_eq!(used, declared, "declared volumes no service uses");
}

#[test]
fn stack_configs_are_mounted_where_the_images_read_them() {
    let services = services(&compose());
    let mounts = |name: &str| -> BTreeMap<String, String> {
        services[name]["volumes"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(volume)
            .map(|(s, t)| (t, s))
            .collect()
    };
    let expected = [
        (
            "prometheus",
            "/etc/prometheus/prometheus.yml",
            "./deploy/prometheus/prometheus.yml",
        ),
        (
            "prometheus",
            "/etc/prometheus/alert_rules.yml",
            "./deploy/prometheus/alert_rules.yml",
        ),
        (
            "alertmanager",
            "/etc/alertmanager/alertmanager.yml",
            "./deploy/alertmanager/alertmanager.yml",
        ),
        (
            "grafana",
            "/etc/grafana/provisioning",
            "./deploy/grafana/provisioning",
        ),
        (
            "grafana",
            "/var/lib/grafana/dashboards",
            "./deploy/grafana/dashboards",
        ),
        (
            "loki",
            "/etc/loki/loki-config.yml",
            "./deploy/loki/loki-config.yml",
        ),
        (
            "promtail",
            "/etc/promtail/promtail-config.yml",
            "./deploy/promtail/promtail-config.yml",
        ),
    ];
    for (name, target, source) in expected {
        assert_eq!(
            mounts(name).get(target).map(String::as_str),
            Some(source),
            "{name}: {target}"
        );
    }
    // A `-config.file=` flag must name a file that is mounted (or it reads the
    // image's default config and the mounted one is silently ignored).
    for (name, service) in &services {
        let mounted = mounts(name);
        for arg in strings(&service["command"]) {
            let Some((flag, path)) = arg.split_once('=') else {
                continue;
            };
            if flag.trim_start_matches('-') == "config.file" {
                assert!(
                    mounted.contains_key(path),
                    "{name}: {arg} but {path} is not mounted"
                );
            }
        }
    }
    // Grafana's dashboard provider reads the directory the dashboards are mounted at.
    let providers = yaml(&deploy("grafana/provisioning/dashboards/dashboards.yml"));
    for provider in providers["providers"].as_sequence().unwrap() {
        let path = provider["options"]["path"].as_str().unwrap();
        assert!(
            mounts("grafana").contains_key(path),
            "the dashboard provider reads {path}, which is not mounted"
        );
    }
    // Prometheus loads rule files relative to its config file.
    let prometheus = yaml(&deploy("prometheus/prometheus.yml"));
    for rule_file in strings(&prometheus["rule_files"]) {
        let target = format!("/etc/prometheus/{rule_file}");
        assert!(
            mounts("prometheus").contains_key(&target),
            "prometheus.yml loads {rule_file}; {target} is not mounted"
        );
    }
}

#[test]
fn inference_sends_records_to_the_collector() {
    let services = services(&compose());
    let inference = &services["inference"];
    assert_eq!(strings(&inference["command"]), ["serve"]);
    assert_eq!(strings(&services["collector"]["command"]), ["collector"]);
    assert_eq!(
        env(inference, "VIGIL_COLLECTOR_URL").as_deref(),
        Some("http://collector:8001")
    );
    assert_eq!(
        inference["depends_on"]["collector"]["condition"].as_str(),
        Some("service_healthy")
    );
}

#[test]
fn vigil_data_lives_on_named_volumes() {
    let services = services(&compose());
    let mut sources = BTreeSet::new();
    for name in ["inference", "collector"] {
        let service = &services[name];
        let dir = env(service, "VIGIL_DATA_DIR").unwrap_or_else(|| "/data".into());
        let (source, _) = service["volumes"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(volume)
            .find(|(_, t)| *t == dir)
            .unwrap_or_else(|| panic!("{name}: nothing mounted at its data dir {dir}"));
        assert!(is_named(&source), "{name}: {dir} is a bind mount");
        // Two processes must not share one SQLite database or spool.
        assert!(sources.insert(source.clone()), "{name} shares {source}");
    }
}

#[test]
fn ports_are_published_on_loopback_only() {
    let services = services(&compose());
    for (name, port) in SERVICES {
        let published = strings(&services[name]["ports"]);
        match port {
            None => assert!(published.is_empty(), "{name} publishes {published:?}"),
            Some(port) => {
                let expected = format!("127.0.0.1:{port}:{port}");
                assert_eq!(published, [expected], "{name}");
            }
        }
    }
}

/// `host:port` of a URL or target.
fn host_port(address: &str) -> (String, u16) {
    let rest = address.split_once("://").map_or(address, |(_, r)| r);
    let authority = rest.split('/').next().unwrap();
    let (host, port) = authority
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{address}: no port"));
    (host.to_string(), port.parse().unwrap())
}

fn assert_is_service(what: &str, address: &str) {
    let (host, port) = host_port(address);
    let known = SERVICES.iter().find(|(n, _)| *n == host);
    assert_eq!(
        known.and_then(|(_, p)| *p),
        Some(port),
        "{what}: {address} is not a compose service and its port"
    );
}

#[test]
fn prometheus_and_alertmanager_address_compose_services() {
    let prometheus = yaml(&deploy("prometheus/prometheus.yml"));
    let mut targets = 0;
    for job in prometheus["scrape_configs"].as_sequence().unwrap() {
        for sc in job["static_configs"].as_sequence().into_iter().flatten() {
            for target in strings(&sc["targets"]) {
                if target.starts_with("localhost:") {
                    continue; // Prometheus scraping itself
                }
                assert_is_service("prometheus.yml scrape target", &target);
                targets += 1;
            }
        }
    }
    assert!(
        targets >= 2,
        "prometheus.yml scrapes {targets} vigil targets"
    );
    for am in prometheus["alerting"]["alertmanagers"]
        .as_sequence()
        .unwrap()
    {
        for sc in am["static_configs"].as_sequence().into_iter().flatten() {
            for target in strings(&sc["targets"]) {
                assert_is_service("prometheus.yml alertmanager", &target);
            }
        }
    }
    let alertmanager = yaml(&deploy("alertmanager/alertmanager.yml"));
    for receiver in alertmanager["receivers"].as_sequence().unwrap() {
        for hook in receiver["webhook_configs"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            assert_is_service("alertmanager webhook", str_url(hook));
        }
    }
}

fn str_url(v: &Value) -> &str {
    common::str_at(v, "url", "webhook")
}

#[test]
fn grafana_datasources_address_compose_services() {
    let dir = deploy("grafana/provisioning/datasources");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")))
        .collect();
    assert!(
        !files.is_empty(),
        "no datasource files in {}",
        dir.display()
    );
    let mut kinds = BTreeSet::new();
    for file in files {
        let doc = yaml(&file);
        for ds in doc["datasources"].as_sequence().into_iter().flatten() {
            let url = common::str_at(ds, "url", "datasource");
            assert_is_service(&format!("{} datasource", file.display()), url);
            kinds.insert(common::str_at(ds, "type", "datasource").to_string());
        }
    }
    for kind in ["prometheus", "loki"] {
        assert!(kinds.contains(kind), "no {kind} datasource");
    }
}

/// The real loader: Debian's docker-compose validates the file against the Compose
/// spec schema and resolves every reference (`docker-compose config`), no engine needed.
#[test]
fn docker_compose_accepts_the_file() {
    let out = std::process::Command::new("docker-compose")
        .args(["--file", "docker-compose.yml", "config", "--quiet"])
        .current_dir(repo_root())
        .output()
        .expect("docker-compose not runnable: run scripts/install-test-deps");
    assert!(
        out.status.success(),
        "docker-compose config rejected docker-compose.yml:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
