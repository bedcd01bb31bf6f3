//! Sends the generated requests at a fixed rate with bounded concurrency and tallies
//! the answers: per kind and status, latency percentiles, and anything unexpected.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::time::MissedTickBehavior;

use crate::feedback::{FeedbackConfig, FeedbackReport, Labeller};
use crate::generate::{Generator, Kind, ModelSchema};
use crate::progress::{Progress, p99_ms};

/// What to send, where and how fast.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Base URL of the inference service, e.g. `http://127.0.0.1:8000`.
    pub target: String,
    /// Model to address by name; the server's default model through `/predict` if `None`.
    pub model: Option<String>,
    /// Requests per second.
    pub rate: f64,
    /// Stop after this long …
    pub duration: Option<Duration>,
    /// … or after this many requests, whichever comes first.
    pub requests: Option<u64>,
    /// Requests in flight at most; the rate drops (and the report says so) beyond it.
    pub concurrency: usize,
    /// Share of invalid requests, 0–1.
    pub invalid: f64,
    /// Share of drifted requests, 0–1.
    pub drifted: f64,
    /// Rows per request.
    pub batch: usize,
    pub seed: u64,
    /// Labels for a share of the answers, sent to a collector.
    pub feedback: Option<FeedbackConfig>,
    /// Sent as `Authorization: Bearer` with every prediction (not to the collector):
    /// a service with a `predict` key answers 401 without one.
    pub api_key: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("invalid load settings: {0}")]
    Config(String),
    #[error("cannot read the model schema from {url}: {reason}")]
    Schema { url: String, reason: String },
}

/// The outcome of a run. `unexpected` counts answers that contradict the contract:
/// a good or drifted request not answered 200 (503 overload excepted), an invalid
/// one not answered 4xx, or no answer at all.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub model: String,
    pub sent: u64,
    pub elapsed_s: f64,
    pub rate: f64,
    /// kind (good|drifted|invalid) → status code → count; status 0 = no answer.
    pub statuses: BTreeMap<&'static str, BTreeMap<u16, u64>>,
    pub unexpected: u64,
    pub transport_errors: u64,
    pub latency_ms: Latency,
    /// First few unexpected answers, for the person reading the report.
    pub examples: Vec<String>,
    /// With `--feedback`: the labels sent and what the collector made of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feedback: Option<FeedbackReport>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Default)]
struct Tally {
    statuses: BTreeMap<&'static str, BTreeMap<u16, u64>>,
    latencies_us: Vec<u32>,
    unexpected: u64,
    transport_errors: u64,
    examples: Vec<String>,
}

fn expected(kind: Kind, status: u16) -> bool {
    match kind {
        Kind::Good | Kind::Drifted => status == 200 || status == 503,
        Kind::Invalid(_) => (400..500).contains(&status),
    }
}

/// Slowest and fastest `--rate`, in requests a second.
const MIN_RATE: f64 = 0.001;
const MAX_RATE: f64 = 1_000_000.0;
/// Most rows a request (the server's own cap is lower by default) and most requests
/// in flight.
const MAX_BATCH: usize = 100_000;
const MAX_CONCURRENCY: usize = 10_000;

/// Runs the load until the duration or request count is reached.
pub async fn run(config: LoadConfig) -> Result<Report, LoadError> {
    run_until(config, std::future::pending()).await
}

/// Like [`run`], but also stops sending when `stop` completes (Ctrl-C in `vigil
/// load`); without a duration or request count it runs until then. The requests in
/// flight are still awaited and reported.
pub async fn run_until(
    config: LoadConfig,
    stop: impl Future<Output = ()>,
) -> Result<Report, LoadError> {
    run_watched(config, stop, |_| {}).await
}

/// Like [`run_until`], calling `on_progress` once a second with the run so far.
pub async fn run_watched(
    config: LoadConfig,
    stop: impl Future<Output = ()>,
    mut on_progress: impl FnMut(&Progress),
) -> Result<Report, LoadError> {
    // Bounds that keep the run's arithmetic whole: a tick period of at least 1 µs and
    // at most ~17 minutes, batches and permits a client can hold.
    if !(MIN_RATE..=MAX_RATE).contains(&config.rate) {
        return Err(LoadError::Config(format!(
            "--rate must be between {MIN_RATE} and {MAX_RATE} requests a second"
        )));
    }
    if !(1..=MAX_BATCH).contains(&config.batch) {
        return Err(LoadError::Config(format!(
            "--batch must be between 1 and {MAX_BATCH}"
        )));
    }
    if !(1..=MAX_CONCURRENCY).contains(&config.concurrency) {
        return Err(LoadError::Config(format!(
            "--concurrency must be between 1 and {MAX_CONCURRENCY}"
        )));
    }
    let shares_ok = |s: f64| (0.0..=1.0).contains(&s);
    if !shares_ok(config.invalid)
        || !shares_ok(config.drifted)
        || config.invalid + config.drifted > 1.0
    {
        return Err(LoadError::Config(
            "--invalid and --drifted are shares between 0 and 1 that add up to at most 1".into(),
        ));
    }
    if let Some(f) = &config.feedback
        && !(shares_ok(f.ratio) && shares_ok(f.label_noise))
    {
        return Err(LoadError::Config(
            "--feedback and --label-noise are shares between 0 and 1".into(),
        ));
    }
    let target = config.target.trim_end_matches('/').to_owned();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(config.concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| LoadError::Config(e.to_string()))?;
    let authorization = match &config.api_key {
        Some(key) => {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
                .map_err(|_| LoadError::Config("--api-key must be printable ASCII".into()))?;
            value.set_sensitive(true);
            Some(value)
        }
        None => None,
    };
    let schema = fetch_schema(&client, &target, config.model.as_deref()).await?;
    let model = schema.name.clone();
    let labeller = config
        .feedback
        .clone()
        .map(|f| Arc::new(Labeller::new(f, schema.labels.clone(), config.seed)));
    let labels_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let labelling = labeller.clone().map(|l| {
        let (client, done) = (client.clone(), labels_done.clone());
        tokio::spawn(async move { l.run(client, &done).await })
    });
    let mut generator = Generator::new(
        schema,
        config.model.is_some(),
        config.invalid,
        config.drifted,
        config.batch,
        config.seed,
    );

    let tally = Arc::new(Mutex::new(Tally::default()));
    let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / config.rate));
    // Behind schedule (server slower than the rate), do not burst to catch up.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut sent = 0u64;
    let mut stop = std::pin::pin!(stop);
    let mut every_second = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    every_second.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (mut last_done, mut last_at) = (0usize, Instant::now());
    // The end of `--duration` is a wake-up of its own: at a low rate the next tick may
    // lie well past it (`--rate 0.5 --duration 500ms` ran 2 s).
    let mut deadline = std::pin::pin!(async {
        match config.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    });
    let mut interrupted = false;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = &mut deadline => break,
            _ = every_second.tick() => {
                let t = tally.lock();
                let done = t.latencies_us.len();
                let interval = last_at.elapsed().as_secs_f64().max(1e-9);
                let progress = Progress {
                    elapsed: started.elapsed(),
                    sent,
                    done: done as u64,
                    rate: (done - last_done) as f64 / interval,
                    p99_ms: p99_ms(&t.latencies_us[last_done..]),
                    unexpected: t.unexpected,
                    transport_errors: t.transport_errors,
                };
                drop(t);
                (last_done, last_at) = (done, Instant::now());
                on_progress(&progress);
                continue;
            }
            () = &mut stop => {
                interrupted = true;
                break;
            }
        }
        if config.requests.is_some_and(|n| sent >= n)
            || config.duration.is_some_and(|d| started.elapsed() >= d)
        {
            break;
        }
        // With every permit out (a slow server), the end of the run and an interrupt
        // still count while this waits for one.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("never closed"),
            () = &mut deadline => break,
            () = &mut stop => {
                interrupted = true;
                break;
            }
        };
        let request = generator.next_request();
        let (client, tally, url, labeller, authorization) = (
            client.clone(),
            tally.clone(),
            format!("{target}{}", request.path),
            labeller.clone(),
            authorization.clone(),
        );
        sent += 1;
        tokio::spawn(async move {
            let begin = Instant::now();
            let mut post = client
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, request.content_type);
            if let Some(value) = authorization {
                post = post.header(reqwest::header::AUTHORIZATION, value);
            }
            let answer = post.body(request.body).send().await;
            let (status, text) = match answer {
                Ok(response) => {
                    let status = response.status().as_u16();
                    (status, response.text().await.unwrap_or_default())
                }
                Err(e) => (0, e.to_string()),
            };
            let micros = u32::try_from(begin.elapsed().as_micros()).unwrap_or(u32::MAX);
            if let Some(l) = &labeller
                && status == 200
            {
                l.observe(&text);
            }
            let mut t = tally.lock();
            *t.statuses
                .entry(request.kind.name())
                .or_default()
                .entry(status)
                .or_default() += 1;
            t.latencies_us.push(micros);
            if status == 0 {
                t.transport_errors += 1;
            }
            if !expected(request.kind, status) {
                t.unexpected += 1;
                if t.examples.len() < 5 {
                    let text: String = text.chars().take(300).collect();
                    t.examples
                        .push(format!("{:?} → {status}: {text}", request.kind));
                }
            }
            drop(permit);
        });
    }
    // Wait for the stragglers: every permit back means every request answered.
    let _all = permits
        .acquire_many(u32::try_from(config.concurrency.max(1)).unwrap_or(u32::MAX))
        .await
        .expect("never closed");
    let elapsed = started.elapsed().as_secs_f64();
    // The last labels wait out their delay, then go; an interrupt, before or during
    // that wait, sends them at once.
    labels_done.store(true, std::sync::atomic::Ordering::Release);
    if let (Some(mut task), Some(labeller)) = (labelling, &labeller) {
        let finished = !interrupted
            && tokio::select! {
                _ = &mut task => true,
                () = &mut stop => false,
            };
        if !finished {
            labeller.hurry();
            let _ = task.await;
        }
    }

    let mut t = std::mem::take(&mut *tally.lock());
    t.latencies_us.sort_unstable();
    let pick = |q: f64| {
        let n = t.latencies_us.len();
        if n == 0 {
            return 0.0;
        }
        let i = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
        f64::from(t.latencies_us[i]) / 1e3
    };
    Ok(Report {
        model,
        sent,
        elapsed_s: (elapsed * 1e3).round() / 1e3,
        rate: ((sent as f64 / elapsed.max(1e-9)) * 10.0).round() / 10.0,
        latency_ms: Latency {
            p50: pick(0.50),
            p90: pick(0.90),
            p99: pick(0.99),
            max: pick(1.0),
        },
        statuses: t.statuses,
        unexpected: t.unexpected,
        transport_errors: t.transport_errors,
        examples: t.examples,
        feedback: labeller.map(|l| l.report()),
    })
}

async fn fetch_schema(
    client: &reqwest::Client,
    target: &str,
    model: Option<&str>,
) -> Result<ModelSchema, LoadError> {
    let get = |url: String| async move {
        let failed = |reason: String| LoadError::Schema {
            url: url.clone(),
            reason,
        };
        let response = client
            .get(&url)
            .send()
            .await
            .map_err(|e| failed(e.to_string()))?;
        if !response.status().is_success() {
            return Err(failed(format!("answered {}", response.status())));
        }
        response
            .json::<serde_json::Value>()
            .await
            .map_err(|e| failed(e.to_string()))
    };
    let name = match model {
        Some(name) => name.to_owned(),
        None => {
            let list = get(format!("{target}/models")).await?;
            list["default_model"]
                .as_str()
                .ok_or_else(|| LoadError::Schema {
                    url: format!("{target}/models"),
                    reason: "no default_model".into(),
                })?
                .to_owned()
        }
    };
    let url = format!("{target}/models/{name}");
    let info = get(url.clone()).await?;
    serde_json::from_value(info).map_err(|e| LoadError::Schema {
        url,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::Invalid;

    #[test]
    fn the_contract_each_kind_is_held_to() {
        assert!(expected(Kind::Good, 200));
        assert!(expected(Kind::Drifted, 503), "overload is allowed");
        assert!(!expected(Kind::Good, 422));
        assert!(!expected(Kind::Good, 500));
        assert!(!expected(Kind::Good, 0), "no answer is never expected");
        assert!(expected(Kind::Invalid(Invalid::NanToken), 422));
        assert!(expected(Kind::Invalid(Invalid::WrongContentType), 415));
        assert!(!expected(Kind::Invalid(Invalid::NanToken), 200));
        assert!(!expected(Kind::Invalid(Invalid::MalformedJson), 500));
    }
}
