//! Which ids a record may carry, and how vigil makes prediction ids.
//!
//! The request-id rule is shared with the HTTP edge: the inference service keeps a
//! caller's `X-Request-ID` exactly when [`is_request_id`] accepts it, and the collector
//! accepts exactly those in a record, so no id the service keeps can get a record
//! refused.

/// Longest id (prediction, request) accepted.
pub const MAX_ID_LEN: usize = 128;

/// Whether `value` is kept as a request id: 1-128 printable ASCII characters, spaces
/// included. Printable ASCII cannot carry CR/LF or escape sequences into a log line.
pub fn is_request_id(value: &[u8]) -> bool {
    !value.is_empty() && value.len() <= MAX_ID_LEN && value.iter().all(|b| (0x20..0x7f).contains(b))
}

/// Whether `value` is a valid prediction id (the idempotency key): 1-128 printable
/// ASCII characters without spaces.
pub fn is_prediction_id(value: &[u8]) -> bool {
    !value.is_empty() && value.len() <= MAX_ID_LEN && value.iter().all(|b| (0x21..0x7f).contains(b))
}

/// Whether `value` is a W3C trace id as records carry it: 32 hex digits.
pub fn is_trace_id(value: &[u8]) -> bool {
    value.len() == 32 && value.iter().all(u8::is_ascii_hexdigit)
}

/// A new prediction id: a UUIDv7, so ids made later sort later. Stores index records
/// by this id; time-ordered ids land at the end of the index instead of at a random
/// page of it, which is most of what an insert costs once the table outgrows memory.
pub fn new_prediction_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_allow_spaces_prediction_ids_do_not() {
        assert!(is_request_id(b"order 42 / line 7"));
        assert!(!is_prediction_id(b"order 42"));
        for bad in [&b""[..], b"tab\there", "é".as_bytes(), &[b'x'; 129]] {
            assert!(!is_request_id(bad), "{bad:?}");
            assert!(!is_prediction_id(bad), "{bad:?}");
        }
        assert!(is_prediction_id(&[b'x'; 128]));
    }

    #[test]
    fn prediction_ids_made_later_sort_later() {
        let ids: Vec<String> = (0..1000).map(|_| new_prediction_id().to_string()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        assert!(ids.iter().all(|id| is_prediction_id(id.as_bytes())));
    }
}
