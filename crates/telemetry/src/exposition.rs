//! Exposition formats. prometheus-client writes OpenMetrics 1.0 only; Prometheus's
//! default (and `promtool check metrics`) is the text format 0.0.4. The differences that
//! matter for what vigil registers are few and mechanical, so 0.0.4 is derived from the
//! OpenMetrics text: counter families are named with their `_total` suffix, `# UNIT`
//! and `# EOF` lines go, `unknown` becomes `untyped`, and exemplars are cut off.

pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether an `Accept` header asks for OpenMetrics (as Prometheus does when scraping
/// with exemplars or `scrape_protocols` wanting it).
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|part| {
            let mut params = part.split(';');
            let media = params.next().unwrap_or("").trim();
            let q_zero = params.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            media.eq_ignore_ascii_case("application/openmetrics-text") && !q_zero
        })
    })
}

/// Rewrites OpenMetrics text into the Prometheus text format 0.0.4.
pub fn openmetrics_to_text(om: &str) -> String {
    let mut out = String::with_capacity(om.len());
    let mut pending_help: Option<&str> = None;
    for line in om.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            if let Some(h) = pending_help.replace(rest) {
                push_help(&mut out, h, None);
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "unknown" => (name.to_owned(), "untyped"),
                other => (name.to_owned(), other),
            };
            if let Some(h) = pending_help.take() {
                push_help(&mut out, h, Some(&name));
            }
            out.push_str("# TYPE ");
            out.push_str(&name);
            out.push(' ');
            out.push_str(kind);
            out.push('\n');
        } else if line.starts_with("# UNIT ") || line == "# EOF" || line.is_empty() {
        } else if line.starts_with('#') {
            out.push_str(line);
            out.push('\n');
        } else {
            out.push_str(strip_exemplar(line));
            out.push('\n');
        }
    }
    if let Some(h) = pending_help {
        push_help(&mut out, h, None);
    }
    out
}

/// Writes a HELP line, renamed to `name` when the family was renamed.
fn push_help(out: &mut String, rest: &str, name: Option<&str>) {
    out.push_str("# HELP ");
    match (name, rest.split_once(' ')) {
        (Some(name), Some((_, text))) => {
            out.push_str(name);
            out.push(' ');
            out.push_str(text);
        }
        _ => out.push_str(rest),
    }
    out.push('\n');
}

/// `name{labels} value # {exemplar} v ts` → `name{labels} value`. Label values may hold
/// `#` or `}`, so the label block is skipped with quote awareness first.
fn strip_exemplar(line: &str) -> &str {
    let bytes = line.as_bytes();
    let mut i = 0;
    if let Some(open) = line.find('{')
        && !line[..open].contains(' ')
    {
        i = open + 1;
        let mut in_quotes = false;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if in_quotes => i += 1,
                b'"' => in_quotes = !in_quotes,
                b'}' if !in_quotes => break,
                _ => {}
            }
            i += 1;
        }
    }
    match line[i..].find(" # ") {
        Some(pos) => &line[..i + pos],
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OM: &str = "# HELP http_requests Total requests.
# TYPE http_requests counter
http_requests_total{route=\"/a#b}\",status=\"200\"} 3
# HELP latency_seconds Latency.
# TYPE latency_seconds histogram
# UNIT latency_seconds seconds
latency_seconds_sum 0.5
latency_seconds_count 2
latency_seconds_bucket{le=\"0.1\"} 1 # {trace_id=\"abc\"} 0.05 1700000000.0
latency_seconds_bucket{le=\"+Inf\"} 2
# HELP up Up.
# TYPE up gauge
up 1
# EOF
";

    #[test]
    fn converts_counters_units_exemplars_and_eof() {
        let text = openmetrics_to_text(OM);
        assert!(
            text.contains(
                "# HELP http_requests_total Total requests.\n# TYPE http_requests_total counter\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("http_requests_total{route=\"/a#b}\",status=\"200\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("latency_seconds_bucket{le=\"0.1\"} 1\n"),
            "{text}"
        );
        assert!(
            !text.contains("# UNIT") && !text.contains("# EOF") && !text.contains("trace_id"),
            "{text}"
        );
        assert!(text.contains("# TYPE up gauge\nup 1\n"), "{text}");
    }

    #[test]
    fn accept_negotiation() {
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5"
        )));
        assert!(!wants_openmetrics(Some("text/plain")));
        assert!(!wants_openmetrics(Some("application/openmetrics-text;q=0")));
        assert!(!wants_openmetrics(None));
    }
}
