//! What one connection is doing, as the pieces hyper drives see it: the socket wrapper
//! sees bytes arrive and writes stall, the service sees a request head complete, the
//! request body sees the handler wait for a chunk, the response body's drop marks the
//! response as produced. From that, [`Activity::deadline`] says which timeout applies
//! and when it runs out; the connection task keeps one timer armed for it.
//!
//! Why not hyper's `header_read_timeout`: hyper (1.12) starts it when the connection
//! opens and restarts it as soon as a response has been written (`State::idle` sets
//! `notify_read`, the next `poll_read_head` arms the timer), so on a keep-alive
//! connection it is also the idle timeout, with the same value. vigil needs a short
//! header timeout (slow heads are attacks) and a long idle one (keep-alive saves
//! clients a handshake per request), so the timing is done here and hyper's is off.
//!
//! Everything here is touched from inside one connection's task (hyper polls the
//! service future and, through the handler, the request body within the connection
//! future). The atomics make the state `Send + Sync`, not shared between threads at
//! the same time, so `Relaxed` is enough, and an uncontended relaxed load or store
//! costs the same as a plain one: per request this is a few stores and two
//! `Instant::now()` calls, with no lock and no allocation.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64};
use std::time::{Duration, Instant};

use crate::config::{ListenerConfig, MAX_TIMEOUT};
use crate::metrics::CloseReason;

/// Waiting for the first request head.
const FIRST: u8 = 0;
/// Between requests, nothing of the next one read yet.
const IDLE: u8 = 1;
/// Between requests, part of the next head read.
const NEXT: u8 = 2;
/// A request head is complete and its response not yet produced.
const BUSY: u8 = 3;

#[derive(Debug)]
pub(crate) struct Activity {
    opened: Instant,
    phase: AtomicU8,
    /// Timestamps are [`Activity::stamp`]s: nanoseconds after `opened`, plus one, so
    /// that 0 can mean "not waiting".
    idle_since: AtomicU64,
    head_since: AtomicU64,
    body_wait: AtomicU64,
    write_wait: AtomicU64,
    /// Set when a wait began that may need an earlier deadline than the armed one.
    /// Changes that only move the deadline later leave it unset: the timer fires at
    /// the old deadline, finds time left, and is re-armed, so a request costs no
    /// timer operation.
    dirty: AtomicBool,
}

impl Activity {
    pub(crate) fn new(opened: Instant) -> Self {
        Self {
            opened,
            phase: AtomicU8::new(FIRST),
            idle_since: AtomicU64::new(0),
            head_since: AtomicU64::new(0),
            body_wait: AtomicU64::new(0),
            write_wait: AtomicU64::new(0),
            dirty: AtomicBool::new(false),
        }
    }

    fn stamp(&self) -> u64 {
        let nanos = Instant::now()
            .saturating_duration_since(self.opened)
            .as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX - 1) + 1
    }

    fn at(&self, stamp: u64) -> Instant {
        self.opened + Duration::from_nanos(stamp.saturating_sub(1))
    }

    /// Bytes arrived from the client. Between requests they are the start of the next
    /// head, which ends the idle wait and starts the header timeout.
    pub(crate) fn bytes_read(&self) {
        if self.phase.load(Relaxed) == IDLE {
            self.head_since.store(self.stamp(), Relaxed);
            self.phase.store(NEXT, Relaxed);
        }
    }

    /// Whether the connection waits for a request head: no request has gone to the
    /// router since the last response was produced, and either none was produced yet
    /// or bytes of the next head have arrived. hyper writes nothing of its own then,
    /// except its answer to a head it could not parse.
    pub(crate) fn awaiting_head(&self) -> bool {
        matches!(self.phase.load(Relaxed), FIRST | NEXT)
    }

    /// A request head is complete and the request goes to the router.
    pub(crate) fn request_started(&self) {
        self.phase.store(BUSY, Relaxed);
    }

    /// The response body has been handed to hyper in full (or dropped): the connection
    /// is idle until the next request.
    pub(crate) fn response_finished(&self) {
        self.idle_since.store(self.stamp(), Relaxed);
        self.phase.store(IDLE, Relaxed);
    }

    /// The handler polled the request body and nothing was there.
    pub(crate) fn body_waiting(&self) {
        self.body_wait.store(self.stamp(), Relaxed);
        self.dirty.store(true, Relaxed);
    }

    /// The handler got a chunk (or the end, or dropped the body).
    pub(crate) fn body_progress(&self) {
        self.body_wait.store(0, Relaxed);
    }

    /// The socket would not take a write.
    pub(crate) fn write_blocked(&self) {
        if self.write_wait.load(Relaxed) == 0 {
            self.write_wait.store(self.stamp(), Relaxed);
            self.dirty.store(true, Relaxed);
        }
    }

    /// A write went through (checked first, so the common case does not store).
    pub(crate) fn write_progress(&self) {
        if self.write_wait.load(Relaxed) != 0 {
            self.write_wait.store(0, Relaxed);
        }
    }

    /// Whether a wait began since the last call (see `dirty`).
    pub(crate) fn take_dirty(&self) -> bool {
        if self.dirty.load(Relaxed) {
            self.dirty.store(false, Relaxed);
            true
        } else {
            false
        }
    }

    /// The earliest deadline that applies now and the reason the connection closes if
    /// it passes; `None` while a request is being handled with nothing to wait for (the
    /// handler's own time is bounded by the request timeout, not here).
    pub(crate) fn deadline(&self, config: &ListenerConfig) -> Option<(Instant, CloseReason)> {
        let head = match self.phase.load(Relaxed) {
            FIRST => Some((
                after(self.opened, config.header_timeout),
                CloseReason::header_timeout,
            )),
            IDLE => Some((
                after(self.at(self.idle_since.load(Relaxed)), config.idle_timeout),
                CloseReason::idle_timeout,
            )),
            NEXT => {
                let idle_ends = after(self.at(self.idle_since.load(Relaxed)), config.idle_timeout);
                let head_ends = after(
                    self.at(self.head_since.load(Relaxed)),
                    config.header_timeout,
                );
                Some((idle_ends.max(head_ends), CloseReason::header_timeout))
            }
            _ => None,
        };
        let waiting = |stamp: u64, reason| {
            (stamp != 0).then(|| (after(self.at(stamp), config.body_timeout), reason))
        };
        let body = waiting(self.body_wait.load(Relaxed), CloseReason::body_timeout);
        let write = waiting(self.write_wait.load(Relaxed), CloseReason::send_timeout);
        [head, body, write]
            .into_iter()
            .flatten()
            .min_by_key(|(at, _)| *at)
    }
}

/// `t + d`, for a `d` that validation may not have bounded (a library caller can build
/// any `ListenerConfig`).
pub(crate) fn after(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).unwrap_or_else(|| t + MAX_TIMEOUT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ListenerConfig {
        ListenerConfig {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            body_timeout: Duration::from_secs(60),
            max_connections: 1,
            threads: 1,
        }
    }

    #[test]
    fn each_stage_has_its_timeout() {
        let c = config();
        let opened = Instant::now();
        let a = Activity::new(opened);
        // A new connection: the header timeout from open, bytes or not.
        assert_eq!(
            a.deadline(&c),
            Some((opened + c.header_timeout, CloseReason::header_timeout))
        );
        a.bytes_read();
        assert_eq!(a.deadline(&c).unwrap().1, CloseReason::header_timeout);
        // Handling a request: nothing, until the handler waits for the body.
        a.request_started();
        assert_eq!(a.deadline(&c), None);
        a.body_waiting();
        assert!(a.take_dirty());
        assert!(!a.take_dirty());
        let (at, reason) = a.deadline(&c).unwrap();
        assert_eq!(reason, CloseReason::body_timeout);
        assert!(at >= opened + c.body_timeout);
        a.body_progress();
        assert_eq!(a.deadline(&c), None);
        // Between requests: the idle timeout from the end of the response.
        a.response_finished();
        let (idle_at, reason) = a.deadline(&c).unwrap();
        assert_eq!(reason, CloseReason::idle_timeout);
        assert!(idle_at >= opened + c.idle_timeout);
        // The next head started: header timeout, but never before the idle one.
        a.bytes_read();
        let (at, reason) = a.deadline(&c).unwrap();
        assert_eq!(reason, CloseReason::header_timeout);
        assert_eq!(at, idle_at);
        // A stalled write is bounded in every phase.
        a.write_blocked();
        assert!(a.take_dirty());
        let (_, reason) = a.deadline(&c).unwrap();
        assert_eq!(reason, CloseReason::send_timeout);
        a.write_progress();
        assert_eq!(a.deadline(&c).unwrap().1, CloseReason::header_timeout);
    }

    #[test]
    fn a_late_head_gets_the_full_header_timeout() {
        let c = ListenerConfig {
            idle_timeout: Duration::from_millis(1),
            ..config()
        };
        let a = Activity::new(Instant::now());
        a.request_started();
        a.response_finished();
        std::thread::sleep(Duration::from_millis(2));
        let before = Instant::now();
        a.bytes_read();
        let (at, reason) = a.deadline(&c).unwrap();
        assert_eq!(reason, CloseReason::header_timeout);
        assert!(at >= before + c.header_timeout);
    }
}
