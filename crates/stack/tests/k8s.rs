//! Checks of the Kubernetes manifests under `deploy/k8s/`: they parse, Deployments
//! have the right probes, resources and security context, Services and the
//! ServiceMonitor select what they mean to, the Prometheus job names match the alert
//! rules, and the generated PrometheusRule is in sync with
//! `deploy/prometheus/alert_rules.yml`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_norway::Value;
use vigil_stack::{deploy, yaml, yaml_documents};

/// Manifest files (everything but the kustomization), sorted.
fn manifest_files() -> Vec<PathBuf> {
    let dir = deploy("k8s");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .filter(|p| p.file_name().unwrap() != "kustomization.yaml")
        .collect();
    files.sort();
    files
}

/// Every object of every manifest.
fn objects() -> Vec<Value> {
    manifest_files()
        .iter()
        .flat_map(|f| yaml_documents(f))
        .collect()
}

fn of_kind(kind: &str) -> Vec<Value> {
    objects()
        .into_iter()
        .filter(|o| o["kind"].as_str() == Some(kind))
        .collect()
}

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().expect("metadata.name")
}

fn by_name(kind: &str, wanted: &str) -> Value {
    of_kind(kind)
        .into_iter()
        .find(|o| name(o) == wanted)
        .unwrap_or_else(|| panic!("no {kind} {wanted}"))
}

fn labels(v: &Value) -> BTreeMap<String, String> {
    v.as_mapping()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str().unwrap().into(), v.as_str().unwrap().into()))
        .collect()
}

fn is_subset(small: &BTreeMap<String, String>, big: &BTreeMap<String, String>) -> bool {
    small.iter().all(|(k, v)| big.get(k) == Some(v))
}

fn seq(v: &Value) -> &[Value] {
    v.as_sequence().map(Vec::as_slice).unwrap_or_default()
}

fn containers(deployment: &Value) -> &[Value] {
    seq(&deployment["spec"]["template"]["spec"]["containers"])
}

fn env(container: &Value, key: &str) -> Option<String> {
    seq(&container["env"])
        .iter()
        .find(|e| e["name"].as_str() == Some(key))
        .and_then(|e| e["value"].as_str().map(String::from))
}

fn millis(container: &Value, key: &str, default: u64) -> u64 {
    env(container, key).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{key}={v} is not a number"))
    })
}

/// The container port a probe or Service `targetPort` names (by name or number).
fn resolve_port(container: &Value, port: &Value) -> Option<u64> {
    seq(&container["ports"]).iter().find_map(|p| {
        let number = p["containerPort"].as_u64()?;
        let matches = match port {
            Value::String(s) => p["name"].as_str() == Some(s),
            Value::Number(n) => n.as_u64() == Some(number),
            _ => false,
        };
        matches.then_some(number)
    })
}

/// The port vigil listens on in this container: `VIGIL_PORT`, else the default of the
/// subcommand (`serve` 8000, `collector` 8001).
fn vigil_port(container: &Value) -> u64 {
    if let Some(p) = env(container, "VIGIL_PORT") {
        return p.parse().unwrap();
    }
    match seq(&container["args"]).first().and_then(Value::as_str) {
        Some("collector") => 8001,
        _ => 8000,
    }
}

/// The Deployment whose pods a Service selects (exactly one).
fn selected_deployment(service: &Value) -> Value {
    let selector = labels(&service["spec"]["selector"]);
    assert!(
        !selector.is_empty(),
        "Service {} selects nothing",
        name(service)
    );
    let matching: Vec<Value> = of_kind("Deployment")
        .into_iter()
        .filter(|d| {
            is_subset(
                &selector,
                &labels(&d["spec"]["template"]["metadata"]["labels"]),
            )
        })
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "Service {} selects {} Deployments",
        name(service),
        matching.len()
    );
    matching.into_iter().next().unwrap()
}

#[test]
fn every_manifest_parses_and_sits_in_the_vigil_namespace() {
    let files = manifest_files();
    assert!(files.len() >= 5, "manifests: {files:?}");
    let namespaces = of_kind("Namespace");
    assert_eq!(namespaces.len(), 1, "one Namespace");
    let namespace = name(&namespaces[0]);
    for file in files {
        let docs = yaml_documents(&file);
        assert!(!docs.is_empty(), "{} is empty", file.display());
        for o in docs {
            let what = format!("{}: {:?}", file.display(), o["kind"]);
            common::str_at(&o, "apiVersion", &what);
            common::str_at(&o, "kind", &what);
            assert!(!name(&o).is_empty(), "{what}: no name");
            if o["kind"].as_str() != Some("Namespace") {
                assert_eq!(
                    o["metadata"]["namespace"].as_str(),
                    Some(namespace),
                    "{what} {} is not in namespace {namespace}",
                    name(&o)
                );
            }
        }
    }
}

#[test]
fn kustomization_lists_every_manifest() {
    let kustomization = yaml(&deploy("k8s/kustomization.yaml"));
    let listed: BTreeSet<String> = seq(&kustomization["resources"])
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    let present: BTreeSet<String> = manifest_files()
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, present);
}

#[test]
fn deployments_probe_live_and_ready_on_the_vigil_port() {
    let deployments = of_kind("Deployment");
    assert_eq!(deployments.len(), 2, "inference and collector");
    for d in &deployments {
        for c in containers(d) {
            let what = format!("{}/{}", name(d), c["name"].as_str().unwrap_or("?"));
            let port = vigil_port(c);
            for (probe, path) in [
                ("livenessProbe", "/health/live"),
                ("readinessProbe", "/health/ready"),
            ] {
                let get = &c[probe]["httpGet"];
                assert_eq!(get["path"].as_str(), Some(path), "{what}: {probe} path");
                assert_eq!(
                    resolve_port(c, &get["port"]),
                    Some(port),
                    "{what}: {probe} port {:?} is not the port vigil listens on ({port})",
                    get["port"]
                );
            }
            if !c["startupProbe"].is_null() {
                // A startup probe on readiness would let a half-loaded pod be killed.
                assert_eq!(
                    c["startupProbe"]["httpGet"]["path"].as_str(),
                    Some("/health/live")
                );
            }
        }
    }
}

#[test]
fn deployments_set_requests_and_limits() {
    for d in of_kind("Deployment") {
        for c in containers(&d) {
            for kind in ["requests", "limits"] {
                for resource in ["cpu", "memory"] {
                    assert!(
                        !c["resources"][kind][resource].is_null(),
                        "{}: no {resource} {kind}",
                        name(&d)
                    );
                }
            }
        }
    }
}

#[test]
fn pods_run_as_non_root_on_a_read_only_root_with_writable_data() {
    for d in of_kind("Deployment") {
        let pod = &d["spec"]["template"]["spec"];
        for c in containers(&d) {
            let what = name(&d);
            let sc = &c["securityContext"];
            let psc = &pod["securityContext"];
            let non_root = sc["runAsNonRoot"]
                .as_bool()
                .or(psc["runAsNonRoot"].as_bool());
            assert_eq!(non_root, Some(true), "{what}: runAsNonRoot");
            let uid = sc["runAsUser"].as_u64().or(psc["runAsUser"].as_u64());
            assert_ne!(uid, Some(0), "{what}: runs as uid 0");
            assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true), "{what}");
            assert_eq!(
                sc["allowPrivilegeEscalation"].as_bool(),
                Some(false),
                "{what}"
            );
            // The data dir must be a volume, or the read-only root breaks SQLite/spool.
            let data =
                env(c, "VIGIL_DATA_DIR").unwrap_or_else(|| panic!("{what}: no VIGIL_DATA_DIR"));
            let mount = seq(&c["volumeMounts"])
                .iter()
                .find(|m| m["mountPath"].as_str() == Some(data.as_str()))
                .unwrap_or_else(|| panic!("{what}: nothing mounted at {data}"));
            assert_ne!(
                mount["readOnly"].as_bool(),
                Some(true),
                "{what}: {data} read-only"
            );
            let volume = seq(&pod["volumes"])
                .iter()
                .find(|v| v["name"] == mount["name"])
                .unwrap_or_else(|| panic!("{what}: volume {:?} not defined", mount["name"]));
            assert!(
                !volume["emptyDir"].is_null() || !volume["persistentVolumeClaim"].is_null(),
                "{what}: {data} is neither an emptyDir nor a PVC"
            );
        }
    }
}

#[test]
fn graceful_shutdown_fits_in_the_termination_grace_period() {
    for d in of_kind("Deployment") {
        let pod = &d["spec"]["template"]["spec"];
        // Kubernetes' default when unset.
        let period_ms = pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30) * 1000;
        for c in containers(&d) {
            let delay = millis(c, "VIGIL_SHUTDOWN_DELAY_MS", 0);
            let grace = millis(c, "VIGIL_SHUTDOWN_GRACE_MS", 10_000);
            assert!(
                delay >= 2000,
                "{}: VIGIL_SHUTDOWN_DELAY_MS={delay}: too short for endpoints to drop the pod",
                name(&d)
            );
            assert!(
                delay + grace < period_ms,
                "{}: delay {delay} ms + grace {grace} ms leaves no time before SIGKILL at {period_ms} ms",
                name(&d)
            );
        }
    }
}

#[test]
fn images_are_the_workspace_version() {
    let version = common::workspace_version();
    for d in of_kind("Deployment") {
        for c in containers(&d) {
            let image = common::str_at(c, "image", name(&d));
            if let Some(why) = common::unpinned(image) {
                panic!("{}: {why}", name(&d));
            }
            assert_eq!(
                common::split_image(image).1,
                Some(version.as_str()),
                "{image}"
            );
        }
    }
}

#[test]
fn services_select_the_deployment_pods_and_ports() {
    let services = of_kind("Service");
    assert_eq!(services.len(), 2);
    for s in &services {
        let d = selected_deployment(s);
        let c = &containers(&d)[0];
        for p in seq(&s["spec"]["ports"]) {
            let target = if p["targetPort"].is_null() {
                &p["port"]
            } else {
                &p["targetPort"]
            };
            assert_eq!(
                resolve_port(c, target),
                Some(vigil_port(c)),
                "Service {} port {:?} does not reach vigil in {}",
                name(s),
                p["name"],
                name(&d)
            );
            assert!(
                p["name"].as_str().is_some(),
                "Service {}: unnamed port",
                name(s)
            );
        }
    }
}

#[test]
fn collector_with_sqlite_is_one_replica_on_a_claim() {
    let service = by_name("Service", "vigil-collector");
    let d = selected_deployment(&service);
    assert_eq!(d["spec"]["replicas"].as_u64(), Some(1));
    // RollingUpdate would run two pods on one SQLite file (and one RWO volume).
    assert_eq!(d["spec"]["strategy"]["type"].as_str(), Some("Recreate"));
    let c = &containers(&d)[0];
    assert_eq!(
        seq(&c["args"]).first().and_then(Value::as_str),
        Some("collector")
    );
    let data = env(c, "VIGIL_DATA_DIR").unwrap();
    let mount = seq(&c["volumeMounts"])
        .iter()
        .find(|m| m["mountPath"].as_str() == Some(data.as_str()))
        .unwrap();
    let volume = seq(&d["spec"]["template"]["spec"]["volumes"])
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    let claim = volume["persistentVolumeClaim"]["claimName"]
        .as_str()
        .expect("the collector's data dir is a PersistentVolumeClaim");
    by_name("PersistentVolumeClaim", claim);
}

#[test]
fn inference_sends_records_to_the_collector_service() {
    let d = by_name("Deployment", "vigil-inference");
    let c = &containers(&d)[0];
    assert_eq!(
        seq(&c["args"]).first().and_then(Value::as_str),
        Some("serve")
    );
    let collector = by_name("Service", "vigil-collector");
    let port = collector["spec"]["ports"][0]["port"].as_u64().unwrap();
    assert_eq!(
        env(c, "VIGIL_COLLECTOR_URL"),
        Some(format!("http://{}:{port}", name(&collector)))
    );
}

/// Whether a label selector (`matchLabels` + `matchExpressions`) selects `labels`.
fn selects(selector: &Value, labels_of: &BTreeMap<String, String>) -> bool {
    if !is_subset(&labels(&selector["matchLabels"]), labels_of) {
        return false;
    }
    seq(&selector["matchExpressions"]).iter().all(|e| {
        let key = e["key"].as_str().unwrap();
        let values: Vec<&str> = seq(&e["values"]).iter().filter_map(Value::as_str).collect();
        let value = labels_of.get(key).map(String::as_str);
        match e["operator"].as_str().unwrap() {
            "In" => value.is_some_and(|v| values.contains(&v)),
            "NotIn" => value.is_none_or(|v| !values.contains(&v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            other => panic!("operator {other}"),
        }
    })
}

#[test]
fn servicemonitor_selects_both_services_by_label_and_port_name() {
    let monitors = of_kind("ServiceMonitor");
    assert_eq!(monitors.len(), 1);
    let m = &monitors[0];
    assert_eq!(m["apiVersion"].as_str(), Some("monitoring.coreos.com/v1"));
    let spec = &m["spec"];
    let namespaces: Vec<&str> = seq(&spec["namespaceSelector"]["matchNames"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let selected: Vec<Value> = of_kind("Service")
        .into_iter()
        .filter(|s| selects(&spec["selector"], &labels(&s["metadata"]["labels"])))
        .collect();
    let names: BTreeSet<&str> = selected.iter().map(name).collect();
    assert_eq!(
        names,
        BTreeSet::from(["vigil-collector", "vigil-inference"])
    );
    let endpoints = seq(&spec["endpoints"]);
    assert!(!endpoints.is_empty());
    for s in &selected {
        let ns = s["metadata"]["namespace"].as_str().unwrap();
        assert!(
            namespaces.contains(&ns) || m["metadata"]["namespace"].as_str() == Some(ns),
            "the ServiceMonitor does not look in namespace {ns}"
        );
        for e in endpoints {
            let port = e["port"].as_str().expect("endpoints name their port");
            assert!(
                seq(&s["spec"]["ports"])
                    .iter()
                    .any(|p| p["name"].as_str() == Some(port)),
                "Service {} has no port named {port}",
                name(s)
            );
        }
    }
    for e in endpoints {
        assert_eq!(e["path"].as_str(), Some("/metrics"));
        assert_eq!(e["interval"].as_str(), Some("15s"));
    }
}

#[test]
fn prometheus_job_names_are_the_service_names() {
    // Without spec.jobLabel the operator sets job = the Service name, and the alert
    // rules select job="vigil-inference" / "vigil-collector", the jobs of
    // deploy/prometheus/prometheus.yml. Renaming a Service would silence the alerts.
    let monitor = &of_kind("ServiceMonitor")[0];
    assert!(
        monitor["spec"]["jobLabel"].is_null(),
        "jobLabel changes the job names"
    );
    let prometheus = yaml(&deploy("prometheus/prometheus.yml"));
    let jobs: BTreeSet<String> = seq(&prometheus["scrape_configs"])
        .iter()
        .filter_map(|j| j["job_name"].as_str())
        .filter(|j| j.starts_with("vigil-"))
        .map(String::from)
        .collect();
    let services: BTreeSet<String> = of_kind("Service")
        .iter()
        .map(|s| name(s).to_string())
        .collect();
    assert_eq!(jobs, services);
}

#[test]
fn prometheusrule_is_in_sync_with_the_rule_file() {
    let path = deploy("k8s/prometheusrule.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with(
            "# generated by scripts/gen-prometheusrule from deploy/prometheus/alert_rules.yml; do not edit"
        ),
        "prometheusrule.yaml lost its generated-file header"
    );
    let rules = by_name("PrometheusRule", "vigil");
    assert_eq!(
        rules["apiVersion"].as_str(),
        Some("monitoring.coreos.com/v1")
    );
    let source = yaml(&deploy("prometheus/alert_rules.yml"));
    assert!(
        source["groups"]
            .as_sequence()
            .is_some_and(|g| !g.is_empty())
    );
    assert!(
        rules["spec"]["groups"] == source["groups"],
        "deploy/k8s/prometheusrule.yaml is out of date with deploy/prometheus/alert_rules.yml: \
         run scripts/gen-prometheusrule"
    );
}
