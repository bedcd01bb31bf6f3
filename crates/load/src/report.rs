//! The report of a run and the tally it is made from: each request counted once, by
//! kind and status, when it is answered, fails or is cut off, and held to the
//! contract its kind must meet.
//!
//! The request tasks and the run loop share the tally (under a lock). It keeps the
//! requests still in flight, so that a run cut short counts each one it gave up on
//! as no answer exactly once, and an answer to a request already cut off is not
//! counted again. The [`Report`] is what is left of it: the output of `vigil load`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::feedback::FeedbackReport;
use crate::generate::Kind;

/// Under this share of the requested rate actually sent, the run fell short of it.
const SHORT_OF_TARGET: f64 = 0.9;

/// Unexpected answers quoted in the report.
const EXAMPLES: usize = 5;

/// The outcome of a run. `unexpected` counts answers that contradict the contract:
/// a good or drifted request not answered 200 (503 overload excepted), an invalid
/// one not answered 4xx, or no answer at all.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub model: String,
    pub sent: u64,
    pub elapsed_s: f64,
    /// `sent` over `elapsed_s`: the whole run, the wait for the last answers included.
    pub rate: f64,
    /// The rate asked for (`--rate`).
    pub target_rate: f64,
    /// `sent` over the time spent sending, the figure to hold against `target_rate`:
    /// below it when every `--concurrency` slot waited for a slow answer, or the
    /// machine could not keep up.
    pub send_rate: f64,
    /// kind (good|drifted|invalid) → status code → count; status 0 = no answer.
    pub statuses: BTreeMap<&'static str, BTreeMap<u16, u64>>,
    pub unexpected: u64,
    /// Requests that got no answer (part of `unexpected`).
    pub transport_errors: u64,
    /// Of `transport_errors`, requests still waiting for their answer when the run
    /// ended: the grace after a stop or the duration's end ran out, or a second
    /// interrupt came.
    pub cut_off: u64,
    /// Of the answers; a request without one has no latency.
    pub latency_ms: Latency,
    /// First few unexpected answers, for the person reading the report.
    pub examples: Vec<String>,
    /// With `--feedback`: the labels sent and what the collector made of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feedback: Option<FeedbackReport>,
}

impl Report {
    /// Answers that came and broke the contract (`unexpected` without the requests
    /// that got no answer).
    pub fn broken_answers(&self) -> u64 {
        self.unexpected.saturating_sub(self.transport_errors)
    }

    /// Whether the requests went out markedly slower than asked.
    pub fn short_of_target(&self) -> bool {
        self.sent > 0 && self.send_rate < SHORT_OF_TARGET * self.target_rate
    }
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// What became of one request.
pub(crate) enum Outcome {
    Answer {
        status: u16,
        /// The body (or for a redirect, where it pointed).
        text: String,
        latency_us: u32,
    },
    /// Why there was none.
    NoAnswer(String),
}

#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) statuses: BTreeMap<&'static str, BTreeMap<u16, u64>>,
    /// Of the answers only.
    pub(crate) latencies_us: Vec<u32>,
    /// Requests answered or failed so far.
    pub(crate) done: u64,
    pub(crate) unexpected: u64,
    pub(crate) transport_errors: u64,
    pub(crate) cut_off: u64,
    pub(crate) examples: Vec<String>,
    /// Requests sent and not tallied yet, by number: what a cut-off counts.
    pub(crate) in_flight: BTreeMap<u64, Kind>,
}

impl Tally {
    /// Counts request `id` once; a request already cut off is not counted again.
    pub(crate) fn record(&mut self, id: u64, outcome: Outcome) {
        let Some(kind) = self.in_flight.remove(&id) else {
            return;
        };
        self.done += 1;
        let status = match &outcome {
            Outcome::Answer {
                status, latency_us, ..
            } => {
                self.latencies_us.push(*latency_us);
                *status
            }
            Outcome::NoAnswer(_) => {
                self.transport_errors += 1;
                0
            }
        };
        *self
            .statuses
            .entry(kind.name())
            .or_default()
            .entry(status)
            .or_default() += 1;
        if !expected(kind, status) {
            self.unexpected += 1;
            if self.examples.len() < EXAMPLES {
                self.examples.push(example(kind, &outcome));
            }
        }
    }

    /// Counts every request still in flight as no answer, for `why`.
    pub(crate) fn cut_off(&mut self, why: &str) {
        let ids: Vec<u64> = self.in_flight.keys().copied().collect();
        self.cut_off += ids.len() as u64;
        for id in ids {
            self.record(id, Outcome::NoAnswer(why.to_owned()));
        }
    }
}

/// One line of the report's `examples`: `invalid request (a NaN token) answered 200: …`.
fn example(kind: Kind, outcome: &Outcome) -> String {
    match outcome {
        Outcome::Answer { status, text, .. } if text.is_empty() => {
            format!("{kind} answered {status}")
        }
        Outcome::Answer { status, text, .. } => {
            let text: String = text.chars().take(300).collect();
            format!("{kind} answered {status}: {text}")
        }
        Outcome::NoAnswer(why) => format!("{kind} got no answer: {why}"),
    }
}

fn expected(kind: Kind, status: u16) -> bool {
    match kind {
        Kind::Good | Kind::Drifted => status == 200 || status == 503,
        Kind::Invalid(_) => (400..500).contains(&status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::Invalid;

    #[test]
    fn a_run_that_sent_nothing_is_not_short_of_its_target() {
        let report = Report {
            target_rate: 20.0,
            ..Report::default()
        };
        assert!(!report.short_of_target());
    }

    #[test]
    fn the_contract_each_kind_is_held_to() {
        assert!(expected(Kind::Good, 200));
        assert!(expected(Kind::Drifted, 503), "overload is allowed");
        assert!(!expected(Kind::Good, 422));
        assert!(!expected(Kind::Good, 500));
        assert!(!expected(Kind::Good, 0), "no answer is never expected");
        assert!(!expected(Kind::Good, 302), "nor is a redirect");
        assert!(expected(Kind::Invalid(Invalid::NanToken), 422));
        assert!(expected(Kind::Invalid(Invalid::WrongContentType), 415));
        assert!(!expected(Kind::Invalid(Invalid::NanToken), 200));
        assert!(!expected(Kind::Invalid(Invalid::MalformedJson), 500));
    }
}
