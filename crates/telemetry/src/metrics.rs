//! The metrics registry of one service and the HTTP metrics every service shares.
//! Label values come only from closed sets: method enums, route templates, status
//! codes. A request can never mint a label value of its own.

use std::fmt::Write as _;
use std::hash::{Hash, Hasher};

use axum::extract::MatchedPath;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use vigil_listener::ConnectionMetrics;

use crate::context::TraceIdHex;
use crate::exposition;
use crate::logging::LogCounters;
use crate::process::ProcessCollector;

/// `http_request_duration_seconds` buckets: 0.5 ms … 10 s.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Request and response size buckets: 64 B … 16 MiB.
pub const SIZE_BUCKETS: [f64; 10] = [
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
];

/// HTTP methods as a closed set; anything else is `OTHER`, so odd methods cannot add
/// series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(clippy::upper_case_acronyms)]
pub enum MethodLabel {
    GET,
    HEAD,
    POST,
    PUT,
    DELETE,
    PATCH,
    OPTIONS,
    OTHER,
}

impl MethodLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GET => "GET",
            Self::HEAD => "HEAD",
            Self::POST => "POST",
            Self::PUT => "PUT",
            Self::DELETE => "DELETE",
            Self::PATCH => "PATCH",
            Self::OPTIONS => "OPTIONS",
            Self::OTHER => "OTHER",
        }
    }
}

impl From<&http::Method> for MethodLabel {
    fn from(m: &http::Method) -> Self {
        match *m {
            http::Method::GET => Self::GET,
            http::Method::HEAD => Self::HEAD,
            http::Method::POST => Self::POST,
            http::Method::PUT => Self::PUT,
            http::Method::DELETE => Self::DELETE,
            http::Method::PATCH => Self::PATCH,
            http::Method::OPTIONS => Self::OPTIONS,
            _ => Self::OTHER,
        }
    }
}

/// The matched route template (`/models/{name}/predict`), never the raw path.
#[derive(Debug, Clone)]
pub enum RouteLabel {
    Matched(MatchedPath),
    /// No route matched (a 404 from the fallback).
    Unmatched,
}

impl RouteLabel {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Matched(m) => m.as_str(),
            Self::Unmatched => "unmatched",
        }
    }
}

impl PartialEq for RouteLabel {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}
impl Eq for RouteLabel {}
impl Hash for RouteLabel {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for RouteLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

/// An HTTP status code as a label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusLabel(pub u16);

impl EncodeLabelValue for StatusLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        write!(encoder, "{}", self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: MethodLabel,
    pub route: RouteLabel,
    pub status: StatusLabel,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: MethodLabel,
    pub route: RouteLabel,
}

/// Exemplar labels: the trace that produced an observation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TraceExemplar {
    pub trace_id: TraceIdHex,
}

impl EncodeLabelValue for TraceIdHex {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

type LatencyFamily = Family<
    RouteLabels,
    HistogramWithExemplars<TraceExemplar>,
    fn() -> HistogramWithExemplars<TraceExemplar>,
>;
type SizeFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// The `http_*` metrics. Handles are cheap clones of shared atomics.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    pub requests: Family<RequestLabels, Counter>,
    pub duration: LatencyFamily,
    pub in_flight: Gauge,
    pub request_size: SizeFamily,
    pub response_size: SizeFamily,
    /// `http_connections_*`, kept by the service's listener (`vigil_listener::serve`).
    pub connections: ConnectionMetrics,
}

impl HttpMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(|| {
                HistogramWithExemplars::new(LATENCY_BUCKETS.into_iter())
            }),
            in_flight: Gauge::default(),
            request_size: Family::new_with_constructor(|| Histogram::new(SIZE_BUCKETS)),
            response_size: Family::new_with_constructor(|| Histogram::new(SIZE_BUCKETS)),
            connections: ConnectionMetrics::register(registry),
        };
        registry.register(
            "http_requests",
            "HTTP requests by method, route template and status",
            m.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency in seconds",
            m.duration.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being served",
            m.in_flight.clone(),
        );
        registry.register(
            "http_request_size_bytes",
            "HTTP request body size in bytes",
            m.request_size.clone(),
        );
        registry.register(
            "http_response_size_bytes",
            "HTTP response body size in bytes",
            m.response_size.clone(),
        );
        m
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ServiceInfoLabels {
    service: String,
    version: String,
}

/// One service's registry, rendered on `/metrics`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// A registry with what every vigil service exposes: `service_info`, `process_*`
    /// and the log counters. Register the service's own metrics, then [`Metrics::new`].
    pub fn base_registry(service: &str, version: &str) -> Registry {
        let mut registry = Registry::default();
        let info: Family<ServiceInfoLabels, Gauge> = Family::default();
        info.get_or_create(&ServiceInfoLabels {
            service: service.into(),
            version: version.into(),
        })
        .set(1);
        registry.register("service_info", "Service name and version; always 1", info);
        registry.register_collector(Box::new(ProcessCollector));
        LogCounters::global().register(&mut registry);
        registry
    }

    pub fn new(registry: Registry) -> Self {
        Self { registry }
    }

    /// OpenMetrics 1.0 text, with exemplars.
    pub fn render_openmetrics(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail; an encoder error would be a bug in a
        // collector, and a partial scrape is still better than none.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Prometheus text format 0.0.4.
    pub fn render_text(&self) -> String {
        exposition::openmetrics_to_text(&self.render_openmetrics())
    }

    /// Renders for an `Accept` header: `(body, content type)`.
    pub fn render(&self, accept: Option<&str>) -> (String, &'static str) {
        if exposition::wants_openmetrics(accept) {
            (
                self.render_openmetrics(),
                exposition::OPENMETRICS_CONTENT_TYPE,
            )
        } else {
            (self.render_text(), exposition::TEXT_CONTENT_TYPE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_registry_has_service_info_process_and_log_metrics() {
        let metrics = Metrics::new(Metrics::base_registry("test", "1.2.3"));
        let text = metrics.render_text();
        assert!(
            text.contains("service_info{service=\"test\",version=\"1.2.3\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE log_messages_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("log_messages_total{level=\"error\"} "),
            "{text}"
        );
        assert!(
            text.contains("# TYPE log_messages_dropped_total counter\n"),
            "{text}"
        );
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
        assert!(text.contains("process_cpu_seconds_total "), "{text}");
        assert!(text.contains("process_start_time_seconds "), "{text}");
        assert!(!text.contains("# EOF"));
        assert!(metrics.render_openmetrics().ends_with("# EOF\n"));
    }

    #[test]
    fn odd_methods_collapse() {
        let m = http::Method::from_bytes(b"BREW").unwrap();
        assert_eq!(MethodLabel::from(&m), MethodLabel::OTHER);
        assert_eq!(MethodLabel::from(&http::Method::TRACE), MethodLabel::OTHER);
        assert_eq!(MethodLabel::from(&http::Method::POST), MethodLabel::POST);
    }
}
