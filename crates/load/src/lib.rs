//! `vigil load`: drives a vigil inference service with a mix of good, invalid and
//! drifted prediction requests at a fixed rate, and reports what came back.
//!
//! Inputs are realistic because they are sampled from the model's own training
//! distribution, which `GET /models/{name}` publishes per feature; drifted inputs lie
//! above that distribution, so the model's drift gauges and alerts react. Invalid
//! requests rotate through the ways clients really get it wrong; every one of them
//! must be answered 4xx, which makes the generator a check as well as a load. With
//! `--feedback`, a share of the answers gets a ground-truth label at the collector.

mod address;
mod config;
mod failure;
mod feedback;
mod generate;
mod progress;
mod report;
mod run;
mod schema;
mod signals;
#[cfg(test)]
mod testing;

pub use address::{BaseUrl, UrlFault};
pub use config::{GRACE, LoadConfig, LoadError, check_url};
pub use feedback::{FeedbackConfig, FeedbackReport, collector_beside};
pub use generate::{Generator, Invalid, Kind, ModelSchema, Request};
pub use progress::Progress;
pub use report::Report;
pub use run::{run, run_until, run_watched};

/// Parses `250ms`, `30s`, `5m`, `1h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 30s, 5m or 500ms"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1e3,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (use ms, s, m or h)"
            ));
        }
    };
    // Negative, infinite and too large for a Duration (which would panic) alike.
    std::time::Duration::try_from_secs_f64(seconds)
        .map_err(|_| format!("`{text}` is not a duration"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("18446744073709551615h").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-3s").is_err());
    }
}
