//! `http_connections_open` and `http_connections_closed_total{reason}`: how many
//! connections a service holds, and why each one ended. Timeouts and refusals are the
//! signs of clients holding connections hostage, so each has its own reason; the label
//! has a fixed set of values, all present from registration.

use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Why a connection ended: the closed set behind the `reason` label (variants are
/// named as the label values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum CloseReason {
    /// HTTP ended it without error: the client closed between requests, sent
    /// `Connection: close`, or shutdown closed it after its last response.
    normal,
    /// A protocol or socket error: a malformed request, a reset, a client that left
    /// in the middle of a request.
    error,
    /// A request head was not complete in time (new connections, and keep-alive
    /// connections once part of the next head has arrived).
    header_timeout,
    /// A keep-alive connection had no request in progress for the idle timeout.
    idle_timeout,
    /// A handler waited the body timeout for the next chunk of a request body.
    body_timeout,
    /// A response write stalled for the body timeout (the client stopped reading).
    send_timeout,
    /// Refused on arrival: `max_connections` were open.
    limit,
}

impl CloseReason {
    pub const ALL: [Self; 7] = [
        Self::normal,
        Self::error,
        Self::header_timeout,
        Self::idle_timeout,
        Self::body_timeout,
        Self::send_timeout,
        Self::limit,
    ];
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CloseLabels {
    reason: CloseReason,
}

/// The connection metrics of one listener; cheap to clone (one shared allocation).
#[derive(Debug, Clone)]
pub struct ConnectionMetrics(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    open: Gauge,
    /// One counter per reason, indexed by the variant, taken from the family once so
    /// that closing a connection never looks a label set up.
    closed: [Counter; CloseReason::ALL.len()],
}

impl ConnectionMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let family: Family<CloseLabels, Counter> = Family::default();
        let closed =
            CloseReason::ALL.map(|reason| family.get_or_create(&CloseLabels { reason }).clone());
        let open = Gauge::default();
        registry.register(
            "http_connections_open",
            "HTTP connections open now",
            open.clone(),
        );
        registry.register(
            "http_connections_closed",
            "HTTP connections closed, by reason (timeouts and refusals at the connection limit included)",
            family,
        );
        Self(Arc::new(Inner { open, closed }))
    }

    /// Connections open now.
    pub fn open(&self) -> i64 {
        self.0.open.get()
    }

    /// Connections closed for `reason` so far.
    pub fn closed(&self, reason: CloseReason) -> u64 {
        self.0.closed[reason as usize].get()
    }

    pub(crate) fn connection_opened(&self) {
        self.0.open.inc();
    }

    pub(crate) fn connection_closed(&self, reason: CloseReason) {
        self.0.open.dec();
        self.0.closed[reason as usize].inc();
    }

    /// A connection closed on arrival: it was never counted as open.
    pub(crate) fn refused(&self) {
        self.0.closed[CloseReason::limit as usize].inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_exposed_from_the_start_and_counts_apart() {
        let mut registry = Registry::default();
        let m = ConnectionMetrics::register(&mut registry);
        m.connection_opened();
        m.connection_opened();
        m.connection_closed(CloseReason::header_timeout);
        m.refused();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("# TYPE http_connections_open gauge\n"),
            "{text}"
        );
        assert!(text.contains("http_connections_open 1\n"), "{text}");
        assert!(
            text.contains("# TYPE http_connections_closed counter\n"),
            "{text}"
        );
        for reason in CloseReason::ALL {
            let want = match reason {
                CloseReason::header_timeout | CloseReason::limit => 1,
                _ => 0,
            };
            let series = format!("http_connections_closed_total{{reason=\"{reason:?}\"}} {want}\n");
            assert!(text.contains(&series), "{series}: {text}");
            assert_eq!(m.closed(reason), want);
        }
        assert_eq!(m.open(), 1);
    }
}
