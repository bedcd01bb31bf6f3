//! Request analytics for `/admin/performance` and `/admin/usage`: every finished
//! request (seen through the telemetry layer's observer hook) lands in a ring of
//! 10-second slots covering the last hour. A slot keeps, per route and method, counts,
//! min/max/sum and a DDSketch of latencies (relative error 1 %, bounded memory), and
//! per caller, counts. A report merges the slots of its window.

mod report;
mod ring;
mod stats;
mod window;

pub use report::{
    CallerUsage, Performance, RoutePerformance, RouteUsage, Timeline, TimelinePoint, Usage,
};
pub use ring::Analytics;
pub use window::{WindowError, parse_window};
