//! Structural checks of the Grafana provisioning and dashboards under `deploy/grafana/`.
//!
//! There is no Grafana here, so these tests read the JSON and YAML and check what a
//! broken dashboard would get wrong silently: a typo in a metric name, a quantile
//! that does not aggregate by `le`, a bucket selected as `le="1"` while vigil prints
//! `le="1.0"`, a ratio of unaggregated rates, a panel that ignores the `$model`
//! picker. Whether each expression runs is checked against a real Prometheus by the
//! end-to-end test (scripts/dashboard_exprs.py lists the expressions).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use vigil_stack::{deploy, json, yaml};

/// Dashboard file and the uid it must carry.
const DASHBOARDS: [(&str, &str); 2] = [
    ("vigil-overview.json", "vigil-overview"),
    ("vigil-models.json", "vigil-models"),
];

/// Where the provisioning file provider reads dashboards (docker-compose mounts
/// `deploy/grafana/dashboards` there).
const DASHBOARDS_PATH: &str = "/var/lib/grafana/dashboards";

const LATENCY_BUCKETS: &[&str] = &[
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0",
    "2.5", "5.0", "10.0",
];
const SIZE_BUCKETS: &[&str] = &[
    "64.0",
    "256.0",
    "1024.0",
    "4096.0",
    "16384.0",
    "65536.0",
    "262144.0",
    "1048576.0",
    "4194304.0",
    "16777216.0",
];

/// Histogram families vigil exposes (docs/reference.md §4) and their bucket bounds exactly as
/// printed (`le="1.0"`, never `le="1"`).
const HISTOGRAMS: &[(&str, &[&str])] = &[
    ("http_request_duration_seconds", LATENCY_BUCKETS),
    ("http_request_size_bytes", SIZE_BUCKETS),
    ("http_response_size_bytes", SIZE_BUCKETS),
    ("prediction_latency_seconds", LATENCY_BUCKETS),
    ("prediction_queue_seconds", LATENCY_BUCKETS),
    // Buckets from each model card's value bins: no fixed bounds to check.
    ("prediction_value", &[]),
    (
        "prediction_batch_size",
        &[
            "1.0", "2.0", "4.0", "8.0", "16.0", "32.0", "64.0", "128.0", "256.0", "512.0", "1024.0",
        ],
    ),
    (
        "prediction_confidence",
        &[
            "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1.0",
        ],
    ),
    (
        "model_load_time_seconds",
        &["0.01", "0.05", "0.1", "0.5", "1.0", "5.0", "10.0", "30.0"],
    ),
    (
        "model_feedback_lag_seconds",
        &[
            "1.0",
            "10.0",
            "60.0",
            "300.0",
            "900.0",
            "3600.0",
            "14400.0",
            "43200.0",
            "86400.0",
            "259200.0",
            "604800.0",
            "2592000.0",
        ],
    ),
    (
        "logging_db_write_duration_seconds",
        &[
            "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
            "1.0", "5.0",
        ],
    ),
];

/// Counter and gauge series vigil exposes (docs/reference.md §4), plus Prometheus's own `up`.
const SERIES: &[&str] = &[
    "up",
    "http_requests_total",
    "http_requests_in_flight",
    "http_connections_open",
    "http_connections_closed_total",
    "service_info",
    "app_health_status",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_threads",
    "process_start_time_seconds",
    "log_messages_total",
    "log_messages_dropped_total",
    "predictions_total",
    "inference_queue_depth",
    "predictions_by_class_total",
    "prediction_errors_total",
    "input_validation_errors_total",
    "model_loaded",
    "model_feature_drift_psi",
    "model_prediction_drift_psi",
    "model_feature_bin_total",
    "model_feature_reference_ratio",
    "model_estimated_accuracy",
    "prediction_log_records_total",
    "prediction_log_spool_records",
    "logging_predictions_total",
    "logging_defects_total",
    "logging_db_initialized",
    "logging_duplicate_records_total",
    "incidents_total",
    "incidents_open",
    "feedback_pending_labels",
    "feedback_pending_dropped_total",
];

/// The collector's ground-truth series with a `model` label (and the lag histogram's
/// family): from the collector's job, filtered by model only.
const QUALITY: &[&str] = &[
    "model_feedback_total",
    "model_accuracy",
    "model_quality_labels",
    "model_class_precision",
    "model_class_recall",
    "model_calibration_error",
    "model_mean_absolute_error",
    "model_root_mean_squared_error",
    "model_baseline_accuracy",
    "model_baseline_mean_absolute_error",
    "model_feedback_lag_seconds",
];

/// Metric families (series names, or histogram family names) with a `model` label.
const MODEL_LABELLED: &[&str] = &[
    "predictions_total",
    "prediction_latency_seconds",
    "prediction_queue_seconds",
    "inference_queue_depth",
    "prediction_batch_size",
    "prediction_confidence",
    "predictions_by_class_total",
    "prediction_errors_total",
    "input_validation_errors_total",
    "model_loaded",
    "model_load_time_seconds",
    "model_feature_drift_psi",
    "model_prediction_drift_psi",
    "model_feature_bin_total",
    "model_feature_reference_ratio",
    "model_estimated_accuracy",
    "logging_predictions_total",
    "logging_defects_total",
];

/// Collector series: they come from the collector's job and instances, so the models
/// dashboard (whose `$job`/`$instance` pick inference services) filters them by model
/// only.
/// The fleet recording rules (deploy/prometheus/alert_rules.yml): known series with a
/// `model` label, summed over every replica, so with no `job` or `instance`.
const FLEET: &[&str] = &[
    "model_feature:model_feature_psi:1h",
    "model_feature:model_feature_bin_total:increase1h",
    "model_feature_bin:model_feature_bin_share:ratio1h",
    "model_class:predictions_by_class:ratio1h",
];

const COLLECTOR_ONLY: &[&str] = &[
    "logging_predictions_total",
    "logging_defects_total",
    "logging_db_initialized",
    "logging_db_write_duration_seconds",
    "logging_duplicate_records_total",
    "incidents_total",
    "incidents_open",
    "feedback_pending_labels",
    "feedback_pending_dropped_total",
];

/// Grafana's built-in variables that may appear in an expression.
const GRAFANA_BUILTINS: &[&str] = &[
    "__rate_interval",
    "__interval",
    "__interval_ms",
    "__range",
    "__range_s",
    "__range_ms",
];

/// The datasource every Prometheus panel and target must use.
fn prometheus_ds() -> Value {
    serde_json::json!({"type": "prometheus", "uid": "${datasource}"})
}

/// The provisioned Loki datasource.
fn loki_ds() -> Value {
    serde_json::json!({"type": "loki", "uid": "loki"})
}

// ---------------------------------------------------------------------------
// Reading dashboards
// ---------------------------------------------------------------------------

fn dashboard(file: &str) -> Value {
    json(&deploy("grafana/dashboards").join(file))
}

fn dashboards() -> Vec<(&'static str, Value)> {
    DASHBOARDS.iter().map(|(f, _)| (*f, dashboard(f))).collect()
}

/// Every panel, including those nested in (collapsed) rows.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().into_iter().flatten() {
            out.push(p);
            if let Some(nested) = p.get("panels") {
                walk(nested, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

fn is_loki(target: &Value, panel: &Value) -> bool {
    let ds = target.get("datasource").unwrap_or(&panel["datasource"]);
    ds["type"] == "loki"
}

/// (panel title, expr) of every Prometheus target.
fn prometheus_exprs(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in panels(dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if is_loki(target, panel) {
                continue;
            }
            let title = panel["title"].as_str().unwrap_or("").to_string();
            let expr = target["expr"].as_str().unwrap_or("").to_string();
            out.push((title, expr));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// A small PromQL lexer: enough to find selectors, matchers and range windows
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
struct Matcher {
    label: String,
    op: String,
    value: String,
}

#[derive(Debug, Clone, PartialEq)]
struct Selector {
    /// Empty for a bare `{…}` selector.
    metric: String,
    matchers: Vec<Matcher>,
}

impl Selector {
    fn matcher(&self, label: &str) -> Option<&Matcher> {
        self.matchers.iter().find(|m| m.label == label)
    }

    /// The family a series belongs to: `x_bucket`/`x_sum`/`x_count` of a known
    /// histogram map to `x`.
    fn family(&self) -> &str {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = self.metric.strip_suffix(suffix)
                && HISTOGRAMS.iter().any(|(h, _)| *h == base)
            {
                return base;
            }
        }
        &self.metric
    }
}

#[derive(Debug, Default)]
struct Lexed {
    selectors: Vec<Selector>,
    /// Contents of every `[…]` (range or subquery).
    ranges: Vec<String>,
    /// Grafana variables (`$x`, `${x}`) found anywhere, strings included.
    variables: Vec<String>,
}

const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];
const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
const KEYWORDS: &[&str] = &["bool", "and", "or", "unless", "offset", "inf", "nan"];

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Reads a quoted string starting at `chars[i]` (the quote); returns its content and
/// the index after the closing quote.
fn read_string(chars: &[char], mut i: usize, expr: &str) -> (String, usize) {
    let quote = chars[i];
    i += 1;
    let mut out = String::new();
    while i < chars.len() && chars[i] != quote {
        if chars[i] == '\\' && quote != '`' && i + 1 < chars.len() {
            out.push(chars[i]);
            i += 1;
        }
        out.push(chars[i]);
        i += 1;
    }
    assert!(i < chars.len(), "unterminated string in {expr}");
    (out, i + 1)
}

fn skip_ws(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    i
}

/// Index after the `)` matching the `(` at `chars[i]`.
fn skip_parens(chars: &[char], mut i: usize, expr: &str) -> usize {
    let mut depth = 0;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => {
                i = read_string(chars, i, expr).1;
                continue;
            }
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    panic!("unbalanced parentheses in {expr}");
}

/// Parses the matchers of `{…}` starting at `chars[i]` (the brace).
fn read_matchers(chars: &[char], mut i: usize, expr: &str) -> (Vec<Matcher>, usize) {
    i += 1;
    let mut out = Vec::new();
    loop {
        i = skip_ws(chars, i);
        while i < chars.len() && (chars[i] == ',' || chars[i].is_whitespace()) {
            i += 1;
        }
        assert!(i < chars.len(), "unterminated selector in {expr}");
        if chars[i] == '}' {
            return (out, i + 1);
        }
        let start = i;
        while i < chars.len() && is_ident(chars[i]) {
            i += 1;
        }
        let label: String = chars[start..i].iter().collect();
        assert!(!label.is_empty(), "bad matcher at {i} in {expr}");
        i = skip_ws(chars, i);
        let op = ["=~", "!~", "!=", "="]
            .into_iter()
            .find(|op| chars[i..].starts_with(&op.chars().collect::<Vec<_>>()))
            .unwrap_or_else(|| panic!("no matcher operator after {label} in {expr}"));
        i = skip_ws(chars, i + op.len());
        assert!(
            matches!(chars.get(i), Some('"' | '\'' | '`')),
            "matcher {label} without a quoted value in {expr}"
        );
        let (value, next) = read_string(chars, i, expr);
        i = next;
        out.push(Matcher {
            label,
            op: op.to_string(),
            value,
        });
    }
}

fn lex(expr: &str) -> Lexed {
    let chars: Vec<char> = expr.chars().collect();
    let mut lexed = Lexed::default();
    // Variables first, over the raw text: they hide in strings and ranges.
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '$' {
            let mut j = i + 1;
            let braced = chars.get(j) == Some(&'{');
            if braced {
                j += 1;
            }
            let start = j;
            while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            let name: String = chars[start..j].iter().collect();
            // `$1` is label_replace's capture group, not a variable.
            if name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
                lexed.variables.push(name);
            }
            i = j;
        } else {
            i += 1;
        }
    }

    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if matches!(c, '"' | '\'' | '`') {
            i = read_string(&chars, i, expr).1;
        } else if c == '[' {
            let end = chars[i..]
                .iter()
                .position(|&c| c == ']')
                .unwrap_or_else(|| panic!("unterminated range in {expr}"));
            lexed
                .ranges
                .push(chars[i + 1..i + end].iter().collect::<String>());
            i += end + 1;
        } else if c == '{' {
            let (matchers, next) = read_matchers(&chars, i, expr);
            lexed.selectors.push(Selector {
                metric: String::new(),
                matchers,
            });
            i = next;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c == '$' {
            i += 1;
            while i < chars.len() && (is_ident(chars[i]) || chars[i] == '{' || chars[i] == '}') {
                i += 1;
            }
        } else if is_ident_start(c) {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = skip_ws(&chars, i);
            let lower = word.to_ascii_lowercase();
            if GROUPING.contains(&lower.as_str()) {
                if chars.get(next) == Some(&'(') {
                    i = skip_parens(&chars, next, expr);
                }
            } else if AGGREGATIONS.contains(&lower.as_str()) || KEYWORDS.contains(&lower.as_str()) {
                // An operator keyword, not a series.
            } else if chars.get(next) == Some(&'(') {
                // A function call.
            } else if chars.get(next) == Some(&'{') {
                let (matchers, after) = read_matchers(&chars, next, expr);
                lexed.selectors.push(Selector {
                    metric: word,
                    matchers,
                });
                i = after;
            } else {
                lexed.selectors.push(Selector {
                    metric: word,
                    matchers: Vec::new(),
                });
            }
        } else {
            i += 1;
        }
    }
    lexed
}

/// Splits `expr` at the `/` operators outside parentheses, brackets, braces and
/// strings (one level of surrounding parentheses is looked through).
fn top_level_divisions(expr: &str) -> Vec<String> {
    let mut e = expr.trim();
    let chars: Vec<char> = e.chars().collect();
    if chars.first() == Some(&'(') && skip_parens(&chars, 0, expr) == chars.len() {
        e = &e[1..e.len() - 1];
    }
    let chars: Vec<char> = e.chars().collect();
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => {
                i = read_string(&chars, i, expr).1;
                continue;
            }
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            '/' if depth == 0 => {
                parts.push(chars[start..i].iter().collect::<String>());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(chars[start..].iter().collect());
    parts
}

// ---------------------------------------------------------------------------
// Checks of one expression; each returns the problems it finds
// ---------------------------------------------------------------------------

/// Every `histogram_quantile(q, …)` aggregates buckets with `sum by (le, …)`.
fn quantile_problems(expr: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let chars: Vec<char> = expr.chars().collect();
    let mut from = 0;
    while let Some(pos) = expr[from..].find("histogram_quantile") {
        let at = from + pos;
        let open = expr[at..].find('(').map(|p| at + p).expect("call");
        let char_open = expr[..open].chars().count();
        let char_end = skip_parens(&chars, char_open, expr);
        let call: String = chars[char_open..char_end].iter().collect();
        let compact = call
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace("by(", "by (");
        let by_le = sum_by_lists(&compact)
            .iter()
            .any(|list| list.iter().any(|l| l == "le"));
        if !by_le {
            problems.push(format!(
                "histogram_quantile without `sum by (le, …)`: {expr}"
            ));
        }
        let lexed = lex(&call);
        if !lexed
            .selectors
            .iter()
            .any(|s| s.metric.ends_with("_bucket"))
        {
            problems.push(format!("histogram_quantile over no _bucket series: {expr}"));
        }
        from = open + 1;
    }
    problems
}

/// The label lists of every `sum by (…)` in `text` (whitespace normalised).
fn sum_by_lists(text: &str) -> Vec<Vec<String>> {
    text.match_indices("sum by (")
        .map(|(i, m)| {
            let rest = &text[i + m.len()..];
            rest[..rest.find(')').unwrap_or(rest.len())]
                .split(',')
                .map(|l| l.trim().to_string())
                .collect()
        })
        .collect()
}

/// Selected buckets use a bound as vigil prints it.
fn bucket_problems(expr: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for s in lex(expr).selectors {
        let Some(le) = s.matcher("le") else { continue };
        let family = s.family();
        let bounds = HISTOGRAMS
            .iter()
            .find(|(h, _)| *h == family && s.metric.ends_with("_bucket"))
            .map(|(_, b)| *b);
        match bounds {
            None => problems.push(format!(
                "le matcher on a non-bucket series {}: {expr}",
                s.metric
            )),
            Some(bounds) => {
                if le.op != "=" {
                    problems.push(format!("le must be selected with `=`: {expr}"));
                }
                if le.value != "+Inf" && !bounds.contains(&le.value.as_str()) {
                    problems.push(format!(
                        "le=\"{}\" is not a bucket of {family} as printed ({bounds:?}): {expr}",
                        le.value
                    ));
                }
            }
        }
    }
    problems
}

/// Every series is one vigil exposes.
fn metric_problems(expr: &str) -> Vec<String> {
    lex(expr)
        .selectors
        .iter()
        .filter(|s| {
            let known_histogram = HISTOGRAMS.iter().any(|(h, _)| {
                ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|suffix| s.metric == format!("{h}{suffix}"))
            });
            !(known_histogram
                || SERIES.contains(&s.metric.as_str())
                || QUALITY.contains(&s.metric.as_str())
                || FLEET.contains(&s.metric.as_str()))
        })
        .map(|s| format!("unknown metric `{}`: {expr}", s.metric))
        .collect()
}

/// Range windows follow the time picker: Grafana interval variables only.
fn range_problems(expr: &str) -> Vec<String> {
    lex(expr)
        .ranges
        .iter()
        .filter(|r| !matches!(r.trim(), "$__rate_interval" | "$__range" | "$__interval"))
        .map(|r| format!("hard-coded or odd range [{r}]: {expr}"))
        .collect()
}

/// A ratio of rates divides aggregated rates: each side of a top-level `/` that
/// takes a rate starts with an aggregation.
fn ratio_problems(expr: &str) -> Vec<String> {
    let parts = top_level_divisions(expr);
    if parts.len() < 2 {
        return Vec::new();
    }
    let mut problems = Vec::new();
    for part in &parts {
        if !(part.contains("rate(") || part.contains("increase(")) {
            continue;
        }
        // Skip vector-matching modifiers: `/ ignoring (class) group_left sum …`.
        let mut rest = part.trim();
        loop {
            let word: String = rest.chars().take_while(|&c| is_ident(c)).collect();
            if word.is_empty() || !(GROUPING.contains(&word.as_str()) || word == "bool") {
                break;
            }
            rest = rest[word.len()..].trim_start();
            if rest.starts_with('(') {
                let chars: Vec<char> = rest.chars().collect();
                let end = skip_parens(&chars, 0, expr);
                rest = rest[chars[..end].iter().collect::<String>().len()..].trim_start();
            }
        }
        let head: String = rest.chars().take_while(|&c| is_ident(c)).collect();
        if !AGGREGATIONS.contains(&head.as_str()) {
            problems.push(format!(
                "ratio of unaggregated rates (divide `sum by (…) (rate(…))`): {expr}"
            ));
        }
    }
    problems
}

/// Gauges every collector replica reports for the whole database (each the same
/// number): a sum over replicas counts it once per replica.
const DATABASE_WIDE: &[&str] = &["incidents_open"];

/// Gauges a replica exports as NaN until it has data (drift below 100 inputs, the
/// estimated accuracy before its first prediction): `sum` or `avg` over replicas is NaN
/// while one of them is idle; `max` and `min` skip NaN.
const NAN_UNTIL_DATA: &[&str] = &[
    "model_feature_drift_psi",
    "model_prediction_drift_psi",
    "model_estimated_accuracy",
];

/// Aggregations across replicas that suit what each gauge means.
fn fleet_gauge_problems(expr: &str) -> Vec<String> {
    let selected = lex(expr).selectors;
    let selects = |metric: &&&str| selected.iter().any(|s| s.metric == **metric);
    let head: String = expr
        .trim_start()
        .chars()
        .take_while(|&c| is_ident(c))
        .collect();
    let mut problems = Vec::new();
    for metric in DATABASE_WIDE.iter().filter(selects) {
        if matches!(head.as_str(), "sum" | "count") {
            problems.push(format!(
                "`{metric}` is the whole database's on every replica: take `max`, not `{head}`: {expr}"
            ));
        }
    }
    for metric in NAN_UNTIL_DATA.iter().filter(selects) {
        if matches!(head.as_str(), "sum" | "avg") && !expr.contains("==") {
            problems.push(format!(
                "`{metric}` is NaN on an idle replica: `{head}` needs its NaN left out (`x == x`): {expr}"
            ));
        }
    }
    problems
}

/// Every problem the expression-level checks find.
fn expr_problems(expr: &str) -> Vec<String> {
    [
        quantile_problems(expr),
        bucket_problems(expr),
        metric_problems(expr),
        range_problems(expr),
        ratio_problems(expr),
        fleet_gauge_problems(expr),
    ]
    .concat()
}

fn assert_no_problems(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn dashboards_parse_with_uid_title_schema_and_defaults() {
    for (file, uid) in DASHBOARDS {
        let d = dashboard(file);
        assert_eq!(d["uid"], uid, "{file}: uid");
        assert!(
            d["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{file}: title"
        );
        assert_eq!(d["schemaVersion"], 39, "{file}: schemaVersion");
        assert_eq!(d["refresh"], "10s", "{file}: refresh");
        assert_eq!(d["time"]["from"], "now-1h", "{file}: time.from");
        assert!(
            d["tags"]
                .as_array()
                .is_some_and(|t| t.contains(&"vigil".into())),
            "{file}: tags must include vigil"
        );
        assert!(
            !prometheus_exprs(&d).is_empty(),
            "{file}: no Prometheus targets"
        );
    }
}

#[test]
fn no_dashboard_file_escapes_these_checks() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(deploy("grafana/dashboards"))
        .expect("deploy/grafana/dashboards")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let checked: BTreeSet<String> = DASHBOARDS.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(on_disk, checked, "add new dashboards to DASHBOARDS");
}

#[test]
fn panel_ids_are_unique() {
    for (file, d) in dashboards() {
        let mut seen = BTreeSet::new();
        for p in panels(&d) {
            let id = p["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("{file}: panel {} without numeric id", p["title"]));
            assert!(seen.insert(id), "{file}: duplicate panel id {id}");
        }
    }
}

#[test]
fn every_panel_has_grid_position_title_description_and_unit() {
    let mut problems = Vec::new();
    for (file, d) in dashboards() {
        for p in panels(&d) {
            let title = p["title"].as_str().unwrap_or("");
            if title.trim().is_empty() {
                problems.push(format!("{file}: panel {} has no title", p["id"]));
            }
            if p["description"]
                .as_str()
                .is_none_or(|s| s.trim().is_empty())
            {
                problems.push(format!("{file}: `{title}` has no description"));
            }
            let g = &p["gridPos"];
            let [h, w, x, y] = ["h", "w", "x", "y"].map(|k| g[k].as_u64());
            match (h, w, x, y) {
                (Some(h), Some(w), Some(x), Some(_)) if h > 0 && w > 0 && x + w <= 24 => {}
                _ => problems.push(format!("{file}: `{title}` has a bad gridPos {g}")),
            }
            let kind = p["type"].as_str().unwrap_or("");
            let unit = p["fieldConfig"]["defaults"]["unit"].as_str();
            if !matches!(kind, "row" | "logs") && unit.is_none_or(str::is_empty) {
                problems.push(format!("{file}: `{title}` has no unit"));
            }
        }
    }
    assert_no_problems(&problems);
}

#[test]
fn panels_do_not_overlap() {
    for (file, d) in dashboards() {
        let boxes: Vec<(String, [u64; 4])> = panels(&d)
            .iter()
            .map(|p| {
                let g = &p["gridPos"];
                let v = ["x", "y", "w", "h"].map(|k| g[k].as_u64().unwrap_or(0));
                (p["title"].as_str().unwrap_or("").to_string(), v)
            })
            .collect();
        for (i, (a, [ax, ay, aw, ah])) in boxes.iter().enumerate() {
            for (b, [bx, by, bw, bh]) in &boxes[i + 1..] {
                let overlap =
                    ax < &(bx + bw) && bx < &(ax + aw) && ay < &(by + bh) && by < &(ay + ah);
                assert!(!overlap, "{file}: `{a}` overlaps `{b}`");
            }
        }
    }
}

#[test]
fn prometheus_targets_use_the_datasource_variable() {
    let mut problems = Vec::new();
    for (file, d) in dashboards() {
        for p in panels(&d) {
            let title = p["title"].as_str().unwrap_or("");
            let Some(targets) = p["targets"].as_array() else {
                if p["type"] != "row" {
                    problems.push(format!("{file}: `{title}` has no targets"));
                }
                continue;
            };
            let mut ref_ids = BTreeSet::new();
            for t in targets {
                if !ref_ids.insert(t["refId"].as_str().unwrap_or("").to_string()) {
                    problems.push(format!("{file}: `{title}` repeats refId {}", t["refId"]));
                }
                if t["expr"].as_str().is_none_or(|e| e.trim().is_empty()) {
                    problems.push(format!("{file}: `{title}` has a target without expr"));
                }
                let ds = t.get("datasource").unwrap_or(&p["datasource"]);
                if *ds != prometheus_ds() && *ds != loki_ds() {
                    problems.push(format!("{file}: `{title}` target datasource is {ds}"));
                }
                if *ds != p["datasource"] {
                    problems.push(format!(
                        "{file}: `{title}` panel datasource {} differs from its target's {ds}",
                        p["datasource"]
                    ));
                }
            }
        }
    }
    assert_no_problems(&problems);
}

/// The template variable named `name`.
fn variable<'a>(d: &'a Value, name: &str) -> Option<&'a Value> {
    d["templating"]["list"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == name)
}

fn variable_query(v: &Value) -> String {
    let q = &v["query"];
    q.as_str()
        .or_else(|| q["query"].as_str())
        .unwrap_or("")
        .to_string()
}

#[test]
fn templating_has_datasource_and_filter_variables() {
    let wanted: BTreeMap<&str, &[(&str, &str)]> = BTreeMap::from([
        (
            "vigil-overview.json",
            &[
                ("job", "label_values(service_info"),
                ("instance", "label_values(up{"),
            ][..],
        ),
        (
            "vigil-models.json",
            &[
                ("job", "label_values(model_loaded"),
                ("instance", "label_values(up{"),
                ("model", "label_values(model_loaded"),
            ][..],
        ),
    ]);
    for (file, d) in dashboards() {
        let ds =
            variable(&d, "datasource").unwrap_or_else(|| panic!("{file}: no datasource variable"));
        assert_eq!(ds["type"], "datasource", "{file}: datasource variable type");
        assert_eq!(
            ds["query"], "prometheus",
            "{file}: datasource variable query"
        );
        for (name, query) in wanted[file] {
            let v = variable(&d, name).unwrap_or_else(|| panic!("{file}: no `{name}` variable"));
            assert_eq!(v["type"], "query", "{file}: `{name}` type");
            assert_eq!(
                v["datasource"],
                prometheus_ds(),
                "{file}: `{name}` datasource"
            );
            assert!(
                variable_query(v).starts_with(query),
                "{file}: `{name}` query {} should start with {query}",
                variable_query(v)
            );
            assert_eq!(v["multi"], true, "{file}: `{name}` multi");
            assert_eq!(v["includeAll"], true, "{file}: `{name}` includeAll");
            // "All" of job and instance is the list the variable's query found, not
            // `.*`, which would match every job Prometheus scrapes (its own, a
            // cluster's kubelets) in the panels that read `up` and process metrics.
            // A model label is only on vigil's series: `.*` is safe there.
            let all = if *name == "model" {
                Value::from(".*")
            } else {
                Value::Null
            };
            assert_eq!(v["allValue"], all, "{file}: `{name}` allValue");
        }
        if file == "vigil-models.json" {
            assert!(
                variable_query(variable(&d, "model").expect("model")).ends_with(", model)"),
                "{file}: `model` lists the model label"
            );
        }
    }
}

#[test]
fn expressions_use_only_defined_variables() {
    let mut problems = Vec::new();
    for (file, d) in dashboards() {
        let defined: BTreeSet<String> = d["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["name"].as_str().map(str::to_string))
            .collect();
        for (title, expr) in prometheus_exprs(&d) {
            for var in lex(&expr).variables {
                if !defined.contains(&var) && !GRAFANA_BUILTINS.contains(&var.as_str()) {
                    problems.push(format!("{file}: `{title}` uses undefined ${var}"));
                }
            }
        }
    }
    assert_no_problems(&problems);
}

/// Runs `check` on every query of every dashboard; fails naming each problem with its
/// file and panel.
fn every_expr_passes(check: fn(&str) -> Vec<String>) {
    let mut problems = Vec::new();
    for (file, d) in dashboards() {
        for (title, expr) in prometheus_exprs(&d) {
            problems.extend(
                check(&expr)
                    .into_iter()
                    .map(|p| format!("{file}: `{title}`: {p}")),
            );
        }
    }
    assert_no_problems(&problems);
}

#[test]
fn histogram_quantiles_aggregate_by_le() {
    let mut problems = Vec::new();
    let mut quantiles = 0;
    for (file, d) in dashboards() {
        for (title, expr) in prometheus_exprs(&d) {
            quantiles += expr.matches("histogram_quantile").count();
            problems.extend(
                quantile_problems(&expr)
                    .into_iter()
                    .map(|p| format!("{file}: `{title}`: {p}")),
            );
        }
    }
    assert!(
        quantiles > 0,
        "no histogram_quantile found: is the check reading the right files?"
    );
    assert_no_problems(&problems);
}

#[test]
fn bucket_selectors_use_bounds_as_printed() {
    every_expr_passes(bucket_problems);
}

#[test]
fn selectors_use_known_metrics() {
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    for (file, d) in dashboards() {
        for (title, expr) in prometheus_exprs(&d) {
            let lexed = lex(&expr);
            if lexed.selectors.is_empty() {
                problems.push(format!("{file}: `{title}` selects no series: {expr}"));
            }
            used.extend(lexed.selectors.iter().map(|s| s.family().to_string()));
            problems.extend(
                metric_problems(&expr)
                    .into_iter()
                    .map(|p| format!("{file}: `{title}`: {p}")),
            );
        }
    }
    assert_no_problems(&problems);
    // The metrics (docs/reference.md §4) that the brief of these dashboards names must all be shown.
    for required in [
        "http_requests_total",
        "http_request_duration_seconds",
        "http_requests_in_flight",
        "inference_queue_depth",
        "predictions_total",
        "prediction_latency_seconds",
        "prediction_queue_seconds",
        "prediction_confidence",
        "predictions_by_class_total",
        "model_feature_drift_psi",
        "model_prediction_drift_psi",
        "model_loaded",
        "logging_defects_total",
        "prediction_log_spool_records",
        "log_messages_dropped_total",
        "incidents_open",
        "up",
    ] {
        assert!(used.contains(required), "no panel shows {required}");
    }
}

#[test]
fn ranges_follow_the_time_picker() {
    every_expr_passes(range_problems);
}

#[test]
fn ratios_divide_aggregated_rates() {
    every_expr_passes(ratio_problems);
}

#[test]
fn gauges_are_aggregated_over_replicas_as_they_mean() {
    every_expr_passes(fleet_gauge_problems);
}

#[test]
fn models_dashboard_filters_by_model_and_instance() {
    let d = dashboard("vigil-models.json");
    let mut problems = Vec::new();
    for (title, expr) in prometheus_exprs(&d) {
        for s in lex(&expr).selectors {
            let family = s.family();
            let has = |label: &str, var: &str| {
                s.matcher(label)
                    .is_some_and(|m| m.op == "=~" && m.value == format!("${var}"))
            };
            if (MODEL_LABELLED.contains(&family)
                || QUALITY.contains(&family)
                || FLEET.contains(&family))
                && !has("model", "model")
            {
                problems.push(format!("`{title}`: {} ignores $model: {expr}", s.metric));
            }
            // Collector series come from the collector's job: $job/$instance (the
            // inference services) would hide them.
            let scoped = COLLECTOR_ONLY.contains(&family)
                || QUALITY.contains(&family)
                || FLEET.contains(&family)
                || (has("job", "job") && has("instance", "instance"));
            if !scoped {
                problems.push(format!(
                    "`{title}`: {} ignores $job/$instance: {expr}",
                    s.metric
                ));
            }
        }
    }
    assert_no_problems(&problems);
}

#[test]
fn overview_filters_by_job_and_instance() {
    let d = dashboard("vigil-overview.json");
    let mut problems = Vec::new();
    for (title, expr) in prometheus_exprs(&d) {
        for s in lex(&expr).selectors {
            for (label, var) in [("job", "$job"), ("instance", "$instance")] {
                if !s
                    .matcher(label)
                    .is_some_and(|m| m.op == "=~" && m.value == var)
                {
                    problems.push(format!("`{title}`: {} ignores {var}: {expr}", s.metric));
                }
            }
        }
    }
    assert_no_problems(&problems);
}

#[test]
fn provisioning_points_at_the_dashboards_and_datasources() {
    let ds = yaml(&deploy("grafana/provisioning/datasources/datasources.yml"));
    assert_eq!(ds["apiVersion"], 1);
    let list = ds["datasources"].as_sequence().expect("datasources list");
    let find = |uid: &str| {
        list.iter()
            .find(|d| d["uid"].as_str() == Some(uid))
            .unwrap_or_else(|| panic!("no datasource with uid {uid}"))
    };
    let prom = find("prometheus");
    assert_eq!(prom["type"].as_str(), Some("prometheus"));
    assert_eq!(prom["url"].as_str(), Some("http://prometheus:9090"));
    assert_eq!(prom["isDefault"].as_bool(), Some(true));
    let loki = find("loki");
    assert_eq!(loki["type"].as_str(), Some("loki"));
    assert_eq!(loki["url"].as_str(), Some("http://loki:3100"));
    let defaults = list
        .iter()
        .filter(|d| d["isDefault"].as_bool() == Some(true))
        .count();
    assert_eq!(defaults, 1, "exactly one default datasource");

    let providers = yaml(&deploy("grafana/provisioning/dashboards/dashboards.yml"));
    assert_eq!(providers["apiVersion"], 1);
    let list = providers["providers"]
        .as_sequence()
        .expect("providers list");
    assert_eq!(list.len(), 1, "one dashboard provider");
    let p = &list[0];
    assert_eq!(p["type"].as_str(), Some("file"));
    assert_eq!(p["folder"].as_str(), Some("vigil"));
    assert_eq!(p["options"]["path"].as_str(), Some(DASHBOARDS_PATH));

    // Every uid the dashboards name directly is provisioned (the rest go through
    // the `datasource` variable, whose query is the provisioned Prometheus type).
    for (_, d) in dashboards() {
        for p in panels(&d) {
            for t in p["targets"].as_array().into_iter().flatten() {
                if is_loki(t, p) {
                    let ds = t.get("datasource").unwrap_or(&p["datasource"]);
                    find(ds["uid"].as_str().unwrap_or(""));
                }
            }
        }
    }
}

/// The checks above would pass vacuously if they could not see a mistake: feed them
/// the mistakes they exist for.
#[test]
fn checks_catch_the_mistakes_they_exist_for() {
    let bad = [
        // Quantile over unaggregated buckets.
        r#"histogram_quantile(0.95, rate(http_request_duration_seconds_bucket{job=~"$job"}[$__rate_interval]))"#,
        // Aggregated, but the le label is lost.
        r#"histogram_quantile(0.95, sum by (job) (rate(http_request_duration_seconds_bucket[$__rate_interval])))"#,
        // Integer bucket label: vigil prints 1.0.
        r#"sum(rate(http_request_duration_seconds_bucket{le="1"}[$__rate_interval]))"#,
        // Typo in a metric name.
        r#"sum(rate(http_request_total{job=~"$job"}[$__rate_interval]))"#,
        // Hard-coded window.
        r#"sum(rate(http_requests_total[5m]))"#,
        // Ratio of raw rates.
        r#"rate(predictions_total{status="error"}[$__rate_interval]) / rate(predictions_total[$__rate_interval])"#,
        // The database's count once per collector replica.
        r#"sum(incidents_open{job=~"$job"})"#,
        // NaN as soon as one replica has not served the model.
        r#"avg by (model) (model_estimated_accuracy{model=~"$model"})"#,
    ];
    for expr in bad {
        assert!(!expr_problems(expr).is_empty(), "not caught: {expr}");
    }
    let good = [
        r#"histogram_quantile(0.99, sum by (le, job, route) (rate(http_request_duration_seconds_bucket{job=~"$job"}[$__rate_interval])))"#,
        r#"histogram_quantile(0.5, sum by(job, le) (rate(prediction_queue_seconds_bucket[$__rate_interval])))"#,
        r#"sum by (model) (rate(prediction_confidence_bucket{le="0.6"}[$__rate_interval])) / sum by (model) (rate(prediction_confidence_count[$__rate_interval]))"#,
        r#"sum by (model, class) (rate(predictions_by_class_total[$__rate_interval])) / ignoring (class) group_left sum by (model) (rate(predictions_by_class_total[$__rate_interval]))"#,
        r#"count(model_loaded{model=~"$model"} == 0) or vector(0)"#,
        r#"time() - process_start_time_seconds{job=~"$job"}"#,
        r#"max(incidents_open{job=~"$job"})"#,
        r#"avg by (model) (model_estimated_accuracy{model=~"$model"} == model_estimated_accuracy{model=~"$model"})"#,
    ];
    for expr in good {
        assert_no_problems(&expr_problems(expr));
    }
    let lexed =
        lex(r#"sum by (le) (rate(x_bucket{le="+Inf", model=~"$model"}[$__rate_interval]))"#);
    assert_eq!(lexed.selectors.len(), 1);
    assert_eq!(lexed.selectors[0].metric, "x_bucket");
    assert_eq!(lexed.ranges, ["$__rate_interval"]);
    assert_eq!(lexed.variables, ["model", "__rate_interval"]);
}
