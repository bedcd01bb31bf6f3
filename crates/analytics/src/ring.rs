//! The ring of slots and the observer that fills it. One short lock per request, on
//! its slot only: the lookups borrow the route and caller names (no allocation once a
//! route or caller has been seen in a slot), and a slot's maps keep their capacity
//! when it is reused. A report locks one slot at a time while it merges it, so a
//! dashboard polling the reports holds up a request only while it reads the slot that
//! request writes to.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use vigil_telemetry::{Completed, RequestObserver};

use crate::report::{Performance, Timeline, TimelinePoint, Usage};
use crate::stats::{Counts, RouteStats};
use crate::window::{MAX_WINDOW, SLOT};

const SLOTS: usize = (MAX_WINDOW.as_secs() / SLOT.as_secs()) as usize;
/// The caller of requests no key was accepted for.
pub const ANONYMOUS: &str = "anonymous";

/// The maps a request looks itself up in, three times. Their keys are route
/// templates, methods and caller names: short, from bounded sets the server defines
/// (not from what a client sends), so a fast hash instead of SipHash's flooding
/// resistance (docs/BENCHMARKS.md, "Instructions a request").
pub(crate) type Map<K, V> = foldhash::HashMap<K, V>;

/// Route template → method → stats.
pub(crate) type Routes = Map<Box<str>, Map<Box<str>, RouteStats>>;

#[derive(Debug, Default)]
pub(crate) struct Slot {
    /// Which 10-second period since start this slot holds; `None` if never used.
    pub epoch: Option<u64>,
    pub routes: Routes,
    pub callers: Map<Arc<str>, Counts>,
}

/// Request analytics over the last hour.
#[derive(Debug)]
pub struct Analytics {
    started: Instant,
    /// Wall-clock time of `started`, to date the slots.
    started_wall: SystemTime,
    anonymous: Arc<str>,
    slots: Vec<Mutex<Slot>>,
}

impl Default for Analytics {
    fn default() -> Self {
        Self::new()
    }
}

impl Analytics {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            started_wall: SystemTime::now(),
            anonymous: ANONYMOUS.into(),
            slots: (0..SLOTS).map(|_| Mutex::new(Slot::default())).collect(),
        }
    }

    fn epoch(&self, at: Instant) -> u64 {
        at.duration_since(self.started).as_secs() / SLOT.as_secs()
    }

    /// Counts one finished request.
    pub fn record(
        &self,
        method: &str,
        route: &str,
        status: u16,
        duration: Duration,
        user: Option<&Arc<str>>,
    ) {
        self.record_at(Instant::now(), method, route, status, duration, user);
    }

    fn record_at(
        &self,
        at: Instant,
        method: &str,
        route: &str,
        status: u16,
        duration: Duration,
        user: Option<&Arc<str>>,
    ) {
        let epoch = self.epoch(at);
        let ms = duration.as_secs_f64() * 1e3;
        let user = user.unwrap_or(&self.anonymous);
        let mut slot = self.slots[(epoch % SLOTS as u64) as usize].lock();
        if slot.epoch != Some(epoch) {
            slot.epoch = Some(epoch);
            slot.routes.values_mut().for_each(Map::clear);
            slot.callers.clear();
        }
        let methods = match slot.routes.get_mut(route) {
            Some(m) => m,
            None => slot.routes.entry(route.into()).or_default(),
        };
        match methods.get_mut(method) {
            Some(stats) => stats.add(status, ms),
            None => methods.entry(method.into()).or_default().add(status, ms),
        }
        match slot.callers.get_mut(&**user) {
            Some(counts) => counts.add(status),
            None => slot.callers.entry(user.clone()).or_default().add(status),
        }
    }

    /// The slots inside the last `window`, merged, and how many seconds they cover.
    fn merged(&self, window: Duration) -> (Routes, Map<Arc<str>, Counts>) {
        self.merged_at(Instant::now(), window)
    }

    fn merged_at(&self, at: Instant, window: Duration) -> (Routes, Map<Arc<str>, Counts>) {
        let now = self.epoch(at);
        let wanted = window.as_secs().div_ceil(SLOT.as_secs()).max(1);
        let oldest = now.saturating_sub(wanted - 1);
        let mut routes = Routes::default();
        let mut callers: Map<Arc<str>, Counts> = Map::default();
        for slot in &self.slots {
            let slot = slot.lock();
            if !slot.epoch.is_some_and(|e| e >= oldest && e <= now) {
                continue;
            }
            for (route, methods) in &slot.routes {
                for (method, stats) in methods {
                    routes
                        .entry(route.clone())
                        .or_default()
                        .entry(method.clone())
                        .or_default()
                        .merge(stats);
                }
            }
            for (user, counts) in &slot.callers {
                callers.entry(user.clone()).or_default().merge(counts);
            }
        }
        (routes, callers)
    }

    /// Per route and method over the last `window`.
    pub fn performance(&self, window: Duration) -> Performance {
        let (routes, _) = self.merged(window);
        Performance::from_routes(window, &routes)
    }

    /// Top routes and callers over the last `window`.
    pub fn usage(&self, window: Duration, top: usize) -> Usage {
        let (routes, callers) = self.merged(window);
        Usage::new(window, &routes, &callers, top)
    }
}

impl Analytics {
    /// Every slot of the last `span` (at most the hour kept), oldest first, each with
    /// its requests over all routes: the dashboard's request rate, error rate and
    /// latency charts. Slots without requests are there with zeros, so a chart shows a
    /// quiet period as quiet rather than skipping it.
    pub fn timeline(&self, span: Duration) -> Timeline {
        self.timeline_at(Instant::now(), span)
    }

    fn timeline_at(&self, at: Instant, span: Duration) -> Timeline {
        let now = self.epoch(at);
        let wanted = span
            .min(MAX_WINDOW)
            .as_secs()
            .div_ceil(SLOT.as_secs())
            .max(1);
        let oldest = now.saturating_sub(wanted - 1);
        let elapsed = at.duration_since(self.started);
        let points = (oldest..=now)
            .map(|epoch| {
                let mut all = RouteStats::default();
                {
                    let slot = self.slots[(epoch % SLOTS as u64) as usize].lock();
                    if slot.epoch == Some(epoch) {
                        slot.routes
                            .values()
                            .flat_map(Map::values)
                            .for_each(|stats| all.merge(stats));
                    }
                }
                let start = SLOT * epoch as u32;
                // The current slot is still filling: its rate is over the part elapsed.
                let seconds = (elapsed.saturating_sub(start))
                    .min(SLOT)
                    .as_secs_f64()
                    .max(1e-3);
                TimelinePoint::new(self.started_wall + start, seconds, &all)
            })
            .collect();
        Timeline {
            slot_seconds: SLOT.as_secs(),
            points,
        }
    }
}

impl RequestObserver for Analytics {
    fn completed(&self, r: &Completed<'_>) {
        self.record(r.method, r.route, r.status, r.duration, r.user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_slots_leave_the_window_and_reused_slots_start_empty() {
        let a = Analytics::new();
        let t0 = a.started;
        let minute = |m: u64| t0 + Duration::from_secs(60 * m);
        a.record_at(
            minute(0),
            "GET",
            "/models",
            200,
            Duration::from_millis(1),
            None,
        );
        a.record_at(
            minute(3),
            "GET",
            "/models",
            200,
            Duration::from_millis(1),
            None,
        );
        let count = |at, window| {
            let (routes, _) = a.merged_at(at, window);
            routes
                .get("/models")
                .and_then(|m| m.get("GET"))
                .map_or(0, |s| s.counts.count)
        };
        assert_eq!(count(minute(3), Duration::from_secs(300)), 2);
        assert_eq!(count(minute(3), Duration::from_secs(60)), 1);
        assert_eq!(count(minute(10), Duration::from_secs(300)), 0);
        // An hour later minute 0's slot is reused: its request is gone (minute 3's is
        // still inside the hour), so 2 and not 3.
        a.record_at(
            minute(60),
            "GET",
            "/models",
            200,
            Duration::from_millis(1),
            None,
        );
        assert_eq!(count(minute(60), Duration::from_secs(3600)), 2);
    }

    #[test]
    fn the_timeline_has_every_slot_of_its_span_with_all_routes_merged() {
        let a = Analytics::new();
        let t0 = a.started;
        let at = |s: u64| t0 + Duration::from_secs(s);
        let ok = |s, ms| {
            a.record_at(
                at(s),
                "POST",
                "/predict",
                200,
                Duration::from_millis(ms),
                None,
            )
        };
        ok(1, 10);
        ok(2, 30);
        a.record_at(
            at(3),
            "GET",
            "/models",
            503,
            Duration::from_millis(20),
            None,
        );
        ok(25, 5);
        // 35 s after start, a 30 s span: slots 1, 2 and 3 (10-20 s has none).
        let timeline = a.timeline_at(at(35), Duration::from_secs(30));
        assert_eq!(timeline.slot_seconds, 10);
        let counts: Vec<u64> = timeline.points.iter().map(|p| p.requests).collect();
        assert_eq!(counts, [0, 1, 0]);
        let timeline = a.timeline_at(at(35), Duration::from_secs(40));
        let first = &timeline.points[0];
        assert_eq!((first.requests, first.errors), (3, 1));
        assert!(
            (first.rate_per_s - 0.3).abs() < 1e-9,
            "{}",
            first.rate_per_s
        );
        // The three latencies (10, 30 and 20 ms) of both routes are in one sketch.
        assert!((first.p50_ms - 20.0).abs() < 0.5, "{}", first.p50_ms);
        assert!(first.p99_ms >= first.p50_ms);
        // The current slot (30-35 s) has no requests: a rate of 0 over its 5 s so far.
        assert_eq!(timeline.points[3].rate_per_s, 0.0);
        assert!(timeline.points[0].t_ms < timeline.points[1].t_ms);
    }

    #[test]
    fn reports_merge_routes_methods_and_callers() {
        let a = Analytics::new();
        let ci: Arc<str> = "ci".into();
        for i in 0..100 {
            a.record("POST", "/predict", 200, Duration::from_millis(i), Some(&ci));
        }
        a.record("POST", "/predict", 422, Duration::from_millis(1), None);
        a.record("POST", "/predict", 503, Duration::from_millis(1), None);
        a.record("GET", "/metrics", 200, Duration::from_millis(2), None);
        let perf = a.performance(Duration::from_secs(60));
        let predict = perf.routes.iter().find(|r| r.route == "/predict").unwrap();
        assert_eq!(predict.count, 102);
        assert_eq!(predict.errors, 1);
        assert_eq!(predict.client_errors, 1);
        assert!((predict.error_rate - 1.0 / 102.0).abs() < 1e-9);
        assert_eq!(predict.max_ms, 99.0);
        assert!(
            predict.p99_ms > 90.0 && predict.p99_ms < 100.0,
            "{}",
            predict.p99_ms
        );
        let usage = a.usage(Duration::from_secs(60), 10);
        assert_eq!(usage.routes[0].route, "/predict");
        assert_eq!(usage.callers[0].user, "ci");
        assert_eq!(usage.callers[0].count, 100);
        assert_eq!(usage.callers[1].user, ANONYMOUS);
        assert_eq!(usage.callers[1].count, 3);
        assert_eq!(usage.callers[1].errors, 1);
    }
}
