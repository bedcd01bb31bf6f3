//! The Prometheus and Alertmanager configuration under `deploy/`, checked by the real
//! tools (`promtool`, `amtool` from Debian, installed by scripts/install-test-deps)
//! and for the conventions the team relies on: every alert has a severity, a summary,
//! a description, a runbook section (whose PromQL parses), and unit tests that make it
//! fire and stay quiet.

use std::collections::BTreeSet;
use std::process::Command;

use serde_norway::Value;
use vigil_stack::{deploy, repo_root, yaml};

const REQUIRED_ALERTS: [&str; 11] = [
    "HighErrorRate",
    "ModelNotLoaded",
    "SlowPredictions",
    "DatabaseNotAccessible",
    "HighDefectRate",
    "ServiceDown",
    "HighHTTPErrorRate",
    "FeatureDrift",
    "PredictionLogBacklog",
    "LogsDropped",
    "ModelAccuracyDrop",
];

fn run(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool)
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("{tool} not runnable ({e}): run scripts/install-test-deps"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{tool} {args:?} failed:\n{text}");
    text
}

fn rules() -> Vec<Value> {
    let file = yaml(&deploy("prometheus/alert_rules.yml"));
    file["groups"]
        .as_sequence()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_sequence().expect("rules").clone())
        .collect()
}

fn alert_names() -> Vec<String> {
    rules()
        .iter()
        .filter_map(|r| r["alert"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn promtool_accepts_the_config_and_rules() {
    let out = run(
        "promtool",
        &["check", "config", "deploy/prometheus/prometheus.yml"],
    );
    assert!(out.contains("SUCCESS: 1 rule files found"), "{out}");
    let out = run(
        "promtool",
        &["check", "rules", "deploy/prometheus/alert_rules.yml"],
    );
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", rules().len())),
        "{out}"
    );
}

#[test]
fn promtool_rule_unit_tests_pass() {
    let out = run(
        "promtool",
        &[
            "test",
            "rules",
            "deploy/prometheus/tests/alert_rules_test.yml",
        ],
    );
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn amtool_accepts_the_alertmanager_config() {
    let out = run(
        "amtool",
        &["check-config", "deploy/alertmanager/alertmanager.yml"],
    );
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn every_required_alert_exists_once() {
    let names = alert_names();
    for required in REQUIRED_ALERTS {
        assert_eq!(
            names.iter().filter(|n| *n == required).count(),
            1,
            "{required} in {names:?}"
        );
    }
}

#[test]
fn every_alert_has_severity_summary_description_and_a_runbook_section() {
    let runbooks = std::fs::read_to_string(repo_root().join("docs/runbooks.md")).unwrap();
    let headings: BTreeSet<String> = runbooks
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(|h| h.trim().to_owned())
        .collect();
    for rule in rules() {
        let Some(name) = rule["alert"].as_str() else {
            continue;
        };
        let severity = rule["labels"]["severity"].as_str().unwrap_or_default();
        assert!(
            ["critical", "warning", "info"].contains(&severity),
            "{name}: severity {severity:?}"
        );
        for field in ["summary", "description"] {
            let text = rule["annotations"][field].as_str().unwrap_or_default();
            assert!(text.len() > 20, "{name}: {field} {text:?}");
        }
        let url = rule["annotations"]["runbook_url"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(
            url,
            format!(
                "https://github.com/vigil-ml/vigil/blob/main/docs/runbooks.md#{}",
                name.to_lowercase()
            ),
            "{name}: runbook_url"
        );
        assert!(
            headings.contains(name),
            "docs/runbooks.md has no `## {name}` section"
        );
    }
}

/// The runbooks promise their PromQL "runs as written": every inline expression in
/// docs/runbooks.md parses (checked by promtool as a recording rule; `…`, a
/// placeholder for a model or feature name, stands for one). `log_file_errors_total{operation}`,
/// a label name where a matcher goes, did not.
#[test]
fn the_runbooks_promql_parses() {
    let runbooks = std::fs::read_to_string(repo_root().join("docs/runbooks.md")).unwrap();
    let expressions: Vec<String> = runbooks
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| looks_like_promql(span))
        .map(|span| span.replace('…', "x"))
        .collect();
    assert!(
        expressions.len() >= 12,
        "too few expressions found: {expressions:?}"
    );
    let file = std::env::temp_dir().join(format!("runbook-promql-{}.yml", std::process::id()));
    for expr in &expressions {
        let mut rule = serde_norway::Mapping::new();
        rule.insert("record".into(), "runbook:expression".into());
        rule.insert("expr".into(), expr.as_str().into());
        let mut group = serde_norway::Mapping::new();
        group.insert("name".into(), "runbook".into());
        group.insert("rules".into(), Value::Sequence(vec![Value::Mapping(rule)]));
        let mut root = serde_norway::Mapping::new();
        root.insert(
            "groups".into(),
            Value::Sequence(vec![Value::Mapping(group)]),
        );
        std::fs::write(&file, serde_norway::to_string(&root).unwrap()).unwrap();
        let out = Command::new("promtool")
            .args(["check", "rules"])
            .arg(&file)
            .output()
            .expect("promtool not runnable: run scripts/install-test-deps");
        assert!(
            out.status.success(),
            "docs/runbooks.md: `{expr}` does not parse:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_file(&file);
}

/// An inline code span that is PromQL: a metric or function name followed by a
/// selector, a call, a comparison or an aggregation's `by`. Commands (`curl …`, `jq …`),
/// paths, flags, log fields and LogQL (`{…}` first) are not.
fn looks_like_promql(span: &str) -> bool {
    let name_end = span
        .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == ':'))
        .unwrap_or(span.len());
    if name_end == 0 || !span.starts_with(|c: char| c.is_ascii_lowercase()) {
        return false;
    }
    let rest = &span[name_end..];
    rest.starts_with('(')
        || rest.starts_with('{')
        || [" by (", " without (", " == ", " != ", " > ", " < ", " / "]
            .iter()
            .any(|op| rest.starts_with(op))
}

#[test]
fn every_alert_is_unit_tested_firing_and_quiet() {
    let tests = yaml(&deploy("prometheus/tests/alert_rules_test.yml"));
    let mut fires = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for case in tests["tests"].as_sequence().expect("tests") {
        for check in case["alert_rule_test"].as_sequence().into_iter().flatten() {
            let name = check["alertname"].as_str().unwrap().to_owned();
            let expected = check["exp_alerts"].as_sequence().map_or(0, Vec::len);
            if expected == 0 {
                quiet.insert(name);
            } else {
                fires.insert(name);
            }
        }
    }
    for name in alert_names() {
        assert!(fires.contains(&name), "no promtool test makes {name} fire");
        assert!(quiet.contains(&name), "no promtool test keeps {name} quiet");
    }
}

/// vigil prints bucket bounds as floats (`le="1.0"`): a selector on `le="1"` would
/// silently match nothing.
#[test]
fn no_rule_selects_an_integer_bucket_bound() {
    for rule in rules() {
        let expr = rule["expr"].as_str().unwrap();
        for (i, _) in expr.match_indices("le=\"") {
            let bound: String = expr[i + 4..].chars().take_while(|c| *c != '"').collect();
            assert!(
                bound == "+Inf" || bound.contains('.'),
                "{expr}: le=\"{bound}\" is not how vigil prints bucket bounds"
            );
        }
    }
}

#[test]
fn ratios_and_quantiles_aggregate_before_dividing() {
    for rule in rules() {
        let expr = rule["expr"].as_str().unwrap();
        if expr.contains("histogram_quantile") {
            assert!(
                expr.contains("by (") && (expr.contains("le)") || expr.contains("le,")),
                "{expr}: histogram_quantile needs sum by (…, le)"
            );
        }
        if expr.contains(" / ") || expr.contains("\n/") || expr.contains("/\n") {
            let sums = expr.matches("sum by").count();
            assert!(sums >= 2, "{expr}: a ratio of unaggregated rates");
        }
    }
}

#[test]
fn prometheus_scrapes_both_services_alertmanager_and_itself_and_alerts_to_alertmanager() {
    let config = yaml(&deploy("prometheus/prometheus.yml"));
    let jobs: BTreeSet<&str> = config["scrape_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|j| j["job_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        jobs,
        BTreeSet::from([
            "vigil-inference",
            "vigil-collector",
            "alertmanager",
            "prometheus"
        ])
    );
    let targets = &config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"];
    assert_eq!(targets[0].as_str(), Some("alertmanager:9093"));
    assert_eq!(config["rule_files"][0].as_str(), Some("alert_rules.yml"));
}

#[test]
fn alertmanager_sends_everything_to_the_collector_including_resolutions() {
    let config = yaml(&deploy("alertmanager/alertmanager.yml"));
    let receiver = config["route"]["receiver"].as_str().unwrap();
    let hooks: Vec<&Value> = config["receivers"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|r| r["name"].as_str() == Some(receiver))
        .flat_map(|r| r["webhook_configs"].as_sequence().unwrap())
        .collect();
    assert_eq!(hooks.len(), 1);
    assert_eq!(
        hooks[0]["url"].as_str(),
        Some("http://collector:8001/alerts")
    );
    assert_eq!(hooks[0]["send_resolved"].as_bool(), Some(true));
    // The commented examples for Slack and e-mail are part of the contract with users.
    let text = std::fs::read_to_string(deploy("alertmanager/alertmanager.yml")).unwrap();
    assert!(text.contains("#   slack_configs:") && text.contains("#   email_configs:"));
}
