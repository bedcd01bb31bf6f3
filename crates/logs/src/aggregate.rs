//! Aggregates over the matching lines: counts by a key, latency quantiles by route,
//! the slowest requests, errors per minute and the top error codes. Each prints a
//! small table, or one JSON object with `--json`.
//!
//! Latency quantiles are exact (nearest rank over the sorted durations) while a route
//! has at most [`EXACT_LIMIT`] samples; past that the route switches to a DDSketch
//! with 1 % relative error, so memory stays bounded on large files.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

use serde_json::{Value, json};
use sketches_ddsketch::{Config, DDSketch};

use crate::args::{CountBy, LogsArgs};
use crate::level::Level;
use crate::line::LogLine;
use crate::output::{escape_controls, safe_json};

/// Routes with up to this many samples get exact quantiles.
pub const EXACT_LIMIT: usize = 10_000;

const ACCESS: &str = "request_completed";

/// Durations of one route: exact samples, or a sketch once there are many.
enum Durations {
    Exact(Vec<f64>),
    Sketch(Box<DDSketch>),
}

impl Durations {
    fn add(&mut self, d: f64) {
        match self {
            Durations::Exact(v) if v.len() < EXACT_LIMIT => v.push(d),
            Durations::Exact(v) => {
                let mut sketch = DDSketch::new(Config::defaults());
                for x in v.iter().chain([&d]) {
                    sketch.add(*x);
                }
                *self = Durations::Sketch(Box::new(sketch));
            }
            Durations::Sketch(s) => s.add(d),
        }
    }

    fn count(&self) -> usize {
        match self {
            Durations::Exact(v) => v.len(),
            Durations::Sketch(s) => s.count(),
        }
    }

    /// Nearest-rank quantiles for `qs`.
    fn quantiles(&mut self, qs: &[f64]) -> Vec<f64> {
        match self {
            Durations::Exact(v) => {
                v.sort_by(f64::total_cmp);
                qs.iter()
                    .map(|q| {
                        let rank = (q * v.len() as f64).ceil() as usize;
                        v[rank.clamp(1, v.len()) - 1]
                    })
                    .collect()
            }
            Durations::Sketch(s) => qs
                .iter()
                .map(|q| s.quantile(*q).ok().flatten().unwrap_or(f64::NAN))
                .collect(),
        }
    }
}

/// One running aggregate.
enum Aggregate {
    CountBy(CountBy, HashMap<String, u64>),
    Latency(BTreeMap<String, Durations>),
    Slowest(usize, Vec<(f64, u64, LogLine)>),
    ErrorsPerMinute(BTreeMap<String, u64>),
    TopErrors(usize, HashMap<String, u64>),
}

/// All aggregates asked for, fed every matching line, printed at the end.
pub struct Aggregates {
    list: Vec<Aggregate>,
    seq: u64,
}

impl Aggregates {
    pub fn new(args: &LogsArgs) -> Aggregates {
        let mut list = Vec::new();
        if let Some(by) = args.count_by {
            list.push(Aggregate::CountBy(by, HashMap::new()));
        }
        if args.latency {
            list.push(Aggregate::Latency(BTreeMap::new()));
        }
        if let Some(n) = args.slowest {
            list.push(Aggregate::Slowest(n, Vec::new()));
        }
        if args.errors_per_minute {
            list.push(Aggregate::ErrorsPerMinute(BTreeMap::new()));
        }
        if let Some(n) = args.top_errors {
            list.push(Aggregate::TopErrors(n, HashMap::new()));
        }
        Aggregates { list, seq: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn add(&mut self, line: &LogLine) {
        self.seq += 1;
        for agg in &mut self.list {
            match agg {
                Aggregate::CountBy(by, counts) => {
                    let key = match by {
                        CountBy::Level => line.str_field("level").map(Cow::into_owned),
                        CountBy::Route => line.str_field("route").map(Cow::into_owned),
                        CountBy::Status => line.status().map(|s| s.to_string()),
                        CountBy::User => line.str_field("user").map(Cow::into_owned),
                        CountBy::Minute => Some(line.minute()),
                    };
                    if let Some(key) = key {
                        *counts.entry(key).or_default() += 1;
                    }
                }
                Aggregate::Latency(routes) => {
                    if line.str_field("message").as_deref() == Some(ACCESS)
                        && let (Some(route), Some(d)) =
                            (line.str_field("route"), line.num_field("duration_ms"))
                    {
                        routes
                            .entry(route.into_owned())
                            .or_insert_with(|| Durations::Exact(Vec::new()))
                            .add(d);
                    }
                }
                Aggregate::Slowest(n, top) => {
                    if line.str_field("message").as_deref() == Some(ACCESS)
                        && let Some(d) = line.num_field("duration_ms")
                    {
                        top.push((d, self.seq, line.detached()));
                        if top.len() > *n * 2 + 16 {
                            sort_slowest(top);
                            top.truncate(*n);
                        }
                    }
                }
                Aggregate::ErrorsPerMinute(minutes) => {
                    if line.level() == Some(Level::Error) || line.status().is_some_and(|s| s >= 500)
                    {
                        *minutes.entry(line.minute()).or_default() += 1;
                    }
                }
                Aggregate::TopErrors(_, counts) => {
                    let key = line
                        .field_text("error_code")
                        .or_else(|| line.field_text("error"))
                        .map(Cow::into_owned)
                        .or_else(|| {
                            (line.level() == Some(Level::Error)).then(|| {
                                line.str_field("message")
                                    .map(Cow::into_owned)
                                    .unwrap_or_default()
                            })
                        });
                    if let Some(key) = key {
                        *counts.entry(key).or_default() += 1;
                    }
                }
            }
        }
    }

    /// Prints every aggregate (in the order count-by, latency, slowest,
    /// errors-per-minute, top-errors): tables separated by a blank line, or one JSON
    /// object per aggregate.
    pub fn finish(self, json: bool, out: &mut dyn Write) -> io::Result<()> {
        for (i, agg) in self.list.into_iter().enumerate() {
            let (name, header, rows) = agg.rows();
            if json {
                writeln!(out, "{}", safe_json(&to_json(&name, &header, &rows)))?;
            } else {
                if i > 0 {
                    writeln!(out)?;
                }
                write_table(&header, &rows, out)?;
            }
        }
        Ok(())
    }
}

fn sort_slowest(top: &mut [(f64, u64, LogLine)]) {
    top.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
}

/// Counts sorted by count, highest first, then key.
fn by_count(counts: HashMap<String, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<_> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

fn count_rows(v: Vec<(String, u64)>) -> Vec<Vec<Value>> {
    v.into_iter()
        .map(|(k, n)| vec![json!(k), json!(n)])
        .collect()
}

impl Aggregate {
    /// The aggregate's name, column names and rows.
    fn rows(self) -> (String, Vec<&'static str>, Vec<Vec<Value>>) {
        match self {
            Aggregate::CountBy(by, counts) => {
                let (name, rows) = match by {
                    CountBy::Minute => {
                        let mut v: Vec<_> = counts.into_iter().collect();
                        v.sort();
                        ("minute", v)
                    }
                    CountBy::Level => {
                        let mut v: Vec<_> = counts.into_iter().collect();
                        // Most severe first; unknown levels last.
                        v.sort_by_key(|(k, _)| (std::cmp::Reverse(Level::parse(k)), k.clone()));
                        ("level", v)
                    }
                    CountBy::Route => ("route", by_count(counts)),
                    CountBy::Status => ("status", by_count(counts)),
                    CountBy::User => ("user", by_count(counts)),
                };
                (
                    format!("count_by_{name}"),
                    vec![name, "count"],
                    count_rows(rows),
                )
            }
            Aggregate::Latency(routes) => {
                let rows = routes
                    .into_iter()
                    .map(|(route, mut d)| {
                        let q = d.quantiles(&[0.5, 0.95, 0.99]);
                        vec![
                            json!(route),
                            json!(d.count()),
                            json!(q[0]),
                            json!(q[1]),
                            json!(q[2]),
                        ]
                    })
                    .collect();
                (
                    "latency".into(),
                    vec!["route", "count", "p50_ms", "p95_ms", "p99_ms"],
                    rows,
                )
            }
            Aggregate::Slowest(n, mut top) => {
                sort_slowest(&mut top);
                top.truncate(n);
                let rows = top
                    .into_iter()
                    .map(|(d, _, l)| {
                        let f = |k: &str| {
                            l.raw_field(k)
                                .and_then(|v| serde_json::from_str(v).ok())
                                .unwrap_or(Value::Null)
                        };
                        vec![
                            f("timestamp"),
                            json!(d),
                            f("status"),
                            f("method"),
                            f("route"),
                            f("service"),
                            f("request_id"),
                        ]
                    })
                    .collect();
                (
                    "slowest".into(),
                    vec![
                        "timestamp",
                        "duration_ms",
                        "status",
                        "method",
                        "route",
                        "service",
                        "request_id",
                    ],
                    rows,
                )
            }
            Aggregate::ErrorsPerMinute(minutes) => (
                "errors_per_minute".into(),
                vec!["minute", "errors"],
                count_rows(minutes.into_iter().collect()),
            ),
            Aggregate::TopErrors(n, counts) => {
                let mut v = by_count(counts);
                v.truncate(n);
                ("top_errors".into(), vec!["error", "count"], count_rows(v))
            }
        }
    }
}

/// `{"aggregate": name, "rows": [{column: value, ...}, ...]}`
fn to_json(name: &str, header: &[&str], rows: &[Vec<Value>]) -> Value {
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            Value::Object(
                header
                    .iter()
                    .zip(r)
                    .map(|(h, v)| ((*h).to_owned(), v.clone()))
                    .collect(),
            )
        })
        .collect();
    json!({ "aggregate": name, "rows": rows })
}

fn cell(v: &Value) -> String {
    let s = match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() => format!("{f:.3}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    };
    escape_controls(&s).into_owned()
}

/// A left-aligned table with a header row; numbers are right-aligned.
fn write_table(header: &[&str], rows: &[Vec<Value>], out: &mut dyn Write) -> io::Result<()> {
    let cells: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(cell).collect()).collect();
    let widths: Vec<usize> = header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |out: &mut dyn Write, values: Vec<(&str, bool)>| -> io::Result<()> {
        let mut s = String::new();
        for (i, (v, numeric)) in values.into_iter().enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            let pad = widths[i].saturating_sub(v.chars().count());
            if numeric {
                s.push_str(&" ".repeat(pad));
                s.push_str(v);
            } else {
                s.push_str(v);
                s.push_str(&" ".repeat(pad));
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    let numeric: Vec<bool> = (0..header.len())
        .map(|i| !rows.is_empty() && rows.iter().all(|r| r[i].is_number()))
        .collect();
    line(
        out,
        header.iter().zip(&numeric).map(|(h, n)| (*h, *n)).collect(),
    )?;
    for r in &cells {
        line(
            out,
            r.iter()
                .zip(&numeric)
                .map(|(c, n)| (c.as_str(), *n))
                .collect(),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_exact_then_within_one_percent() {
        let mut d = Durations::Exact(Vec::new());
        for i in 1..=100 {
            d.add(f64::from(i));
        }
        assert_eq!(d.quantiles(&[0.5, 0.95, 0.99]), [50.0, 95.0, 99.0]);

        let mut d = Durations::Exact(Vec::new());
        for i in 1..=(EXACT_LIMIT as u32 * 2) {
            d.add(f64::from(i));
        }
        assert!(matches!(d, Durations::Sketch(_)));
        assert_eq!(d.count(), EXACT_LIMIT * 2);
        let exact = [10_000.0, 19_000.0, 19_800.0];
        for (got, want) in d.quantiles(&[0.5, 0.95, 0.99]).into_iter().zip(exact) {
            assert!((got - want).abs() <= want * 0.01, "{got} vs {want}");
        }
    }
}
