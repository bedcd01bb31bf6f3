//! The `http_*` series a request lands in, with the handles of one route kept.
//! `Router::layer` wraps each route, and each method of it, in a middleware service
//! of its own, so nearly every request one service sees has the method and route of
//! the first one it answered. Keeping that request's four series handles spares each
//! later request four label-set hashes (SipHash over the route) and four read locks
//! on families every worker shares (2 % of a `/predict`'s instructions:
//! docs/BENCHMARKS.md, "Instructions a request"). Any other request (another method
//! on a 405 fallback, another status) is looked up in the families as before: the
//! cache only decides where a value is added, never whether.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::histogram::Histogram;

use crate::context::TraceIdHex;
use crate::metrics::{
    HttpMetrics, MethodLabel, RequestLabels, RouteLabel, RouteLabels, StatusLabel, TraceExemplar,
};

/// One finished request, as the `http_*` metrics count it.
#[derive(Debug)]
pub(crate) struct Observation<'a> {
    pub method: MethodLabel,
    pub route: &'a RouteLabel,
    pub status: u16,
    pub duration: Duration,
    pub trace_id: TraceIdHex,
    pub request_bytes: u64,
    pub response_bytes: u64,
}

/// The series of the first successful request one middleware service answered.
#[derive(Debug, Default)]
pub(crate) struct RouteSeries {
    kept: OnceLock<Kept>,
}

#[derive(Debug)]
struct Kept {
    method: MethodLabel,
    route: RouteLabel,
    status: u16,
    requests: Counter,
    duration: HistogramWithExemplars<TraceExemplar>,
    request_size: Histogram,
    response_size: Histogram,
}

impl RouteSeries {
    /// Adds `o` to its series in `metrics`.
    pub(crate) fn observe(&self, metrics: &HttpMetrics, o: &Observation<'_>) {
        if let Some(kept) = self.kept.get()
            && kept.method == o.method
            && kept.route == *o.route
        {
            if kept.status == o.status {
                kept.requests.inc();
            } else {
                metrics.requests.get_or_create(&request_labels(o)).inc();
            }
            observe_into(&kept.duration, &kept.request_size, &kept.response_size, o);
            return;
        }
        let route_labels = RouteLabels {
            method: o.method,
            route: o.route.clone(),
        };
        // Only a success is worth keeping: it is what the route answers most.
        if (200..300).contains(&o.status) && self.kept.get().is_none() {
            let kept = Kept {
                method: o.method,
                route: o.route.clone(),
                status: o.status,
                requests: metrics.requests.get_or_create_owned(&request_labels(o)),
                duration: metrics.duration.get_or_create_owned(&route_labels),
                request_size: metrics.request_size.get_or_create_owned(&route_labels),
                response_size: metrics.response_size.get_or_create_owned(&route_labels),
            };
            kept.requests.inc();
            observe_into(&kept.duration, &kept.request_size, &kept.response_size, o);
            // Two first requests at once: one keeps its handles, both counted once.
            let _ = self.kept.set(kept);
            return;
        }
        metrics.requests.get_or_create(&request_labels(o)).inc();
        observe_into(
            &metrics.duration.get_or_create(&route_labels),
            &metrics.request_size.get_or_create(&route_labels),
            &metrics.response_size.get_or_create(&route_labels),
            o,
        );
    }
}

fn request_labels(o: &Observation<'_>) -> RequestLabels {
    RequestLabels {
        method: o.method,
        route: o.route.clone(),
        status: StatusLabel(o.status),
    }
}

fn observe_into(
    duration: &HistogramWithExemplars<TraceExemplar>,
    request_size: &Histogram,
    response_size: &Histogram,
    o: &Observation<'_>,
) {
    duration.observe(
        o.duration.as_secs_f64(),
        Some(TraceExemplar {
            trace_id: o.trace_id,
        }),
        None,
    );
    request_size.observe(o.request_bytes as f64);
    response_size.observe(o.response_bytes as f64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    fn observation(method: MethodLabel, route: &RouteLabel, status: u16) -> Observation<'_> {
        Observation {
            method,
            route,
            status,
            duration: Duration::from_millis(2),
            trace_id: TraceIdHex::new(7),
            request_bytes: 100,
            response_bytes: 300,
        }
    }

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    #[test]
    fn every_request_lands_in_its_own_series_whether_kept_or_looked_up() {
        let mut registry = Metrics::base_registry("test", "0");
        let http = HttpMetrics::register(&mut registry);
        let metrics = Metrics::new(registry);
        let series = RouteSeries::default();
        let route = RouteLabel::Unmatched;
        // A 404 first: not kept; then the success that is; then a 404 and a POST again.
        series.observe(&http, &observation(MethodLabel::GET, &route, 404));
        series.observe(&http, &observation(MethodLabel::GET, &route, 200));
        series.observe(&http, &observation(MethodLabel::GET, &route, 200));
        series.observe(&http, &observation(MethodLabel::GET, &route, 404));
        series.observe(&http, &observation(MethodLabel::POST, &route, 200));
        assert_eq!(series.kept.get().map(|k| k.status), Some(200));

        let text = metrics.render_text();
        let total = |method: &str, status: u16| {
            let prefix = format!(
                "http_requests_total{{method=\"{method}\",route=\"unmatched\",status=\"{status}\"}} "
            );
            line(&text, &prefix).map(|l| l[prefix.len()..].to_owned())
        };
        assert_eq!(total("GET", 404).as_deref(), Some("2"), "{text}");
        assert_eq!(total("GET", 200).as_deref(), Some("2"), "{text}");
        assert_eq!(total("POST", 200).as_deref(), Some("1"), "{text}");
        for (family, method, count) in [
            ("http_request_duration_seconds", "GET", 4),
            ("http_request_duration_seconds", "POST", 1),
            ("http_request_size_bytes", "GET", 4),
            ("http_response_size_bytes", "GET", 4),
            ("http_response_size_bytes", "POST", 1),
        ] {
            let prefix = format!("{family}_count{{method=\"{method}\",route=\"unmatched\"}} ");
            assert_eq!(
                line(&text, &prefix).map(|l| &l[prefix.len()..]),
                Some(count.to_string().as_str()),
                "{text}"
            );
        }
        let prefix = "http_response_size_bytes_sum{method=\"GET\",route=\"unmatched\"} ";
        assert_eq!(
            line(&text, prefix).map(|l| &l[prefix.len()..]),
            Some("1200.0"),
            "{text}"
        );
    }
}
