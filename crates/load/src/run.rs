//! Sends the generated requests at a fixed rate with bounded concurrency and tallies
//! the answers: per kind and status, latency percentiles, and anything unexpected.
//!
//! A run ends in steps. Sending stops: the request count is reached, the duration is
//! over, or the stop signal came. The requests still in flight get their answers —
//! for at most [`LoadConfig::grace`] after a stop or the duration's end — and what is
//! still unanswered then counts as no answer. With `--feedback`, the last labels go
//! to the collector. A second signal (`force`) ends whichever step is running at
//! once; the report covers what happened until then.

use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use crate::config::{LoadConfig, LoadError, REQUEST_TIMEOUT, check_settings, check_url};
use crate::failure::why;
use crate::feedback::Labeller;
use crate::generate::{Generator, Request};
use crate::progress::{Progress, p99_ms};
use crate::report::{Latency, Outcome, Report, Tally};
use crate::schema::fetch_schema;
use crate::signals::{Signal, Signals, until};

/// Why sending stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The last of `--requests` went out.
    Count,
    /// `--duration` is over.
    Duration,
    /// The stop (or force) signal came.
    Signal,
}

/// Runs the load until the duration or request count is reached.
pub async fn run(config: LoadConfig) -> Result<Report, LoadError> {
    run_until(config, std::future::pending()).await
}

/// Like [`run`], but also stops sending when `stop` completes (Ctrl-C in `vigil
/// load`); without a duration or request count it runs until then. The requests in
/// flight get [`LoadConfig::grace`] to be answered and reported.
pub async fn run_until(
    config: LoadConfig,
    stop: impl Future<Output = ()>,
) -> Result<Report, LoadError> {
    run_watched(config, stop, std::future::pending(), |_| {}).await
}

/// Like [`run_until`], calling `on_progress` once a second with the run so far.
/// When `force` completes (a second Ctrl-C), the run ends at once: what is in
/// flight counts as no answer, labels not sent yet as cut off.
pub async fn run_watched(
    config: LoadConfig,
    stop: impl Future<Output = ()>,
    force: impl Future<Output = ()>,
    mut on_progress: impl FnMut(&Progress),
) -> Result<Report, LoadError> {
    check_settings(&config)?;
    // Both addresses before any traffic: a collector that cannot be used would
    // otherwise show only after the whole run.
    let target = check_url("--target", &config.target)?;
    let collector = config
        .feedback
        .as_ref()
        .map(|f| check_url("--collector", &f.collector))
        .transpose()?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(config.concurrency)
        .timeout(REQUEST_TIMEOUT)
        // A redirect is an answer the contract does not have: counted as what it
        // is, not followed to whatever answers at the other end.
        .redirect(reqwest::redirect::Policy::none())
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
    let mut signals = Signals {
        stop: pin!(stop),
        force: pin!(force),
        stopped: false,
        forced: false,
    };
    // A target that accepts and never answers must not hold an interrupt for the
    // request timeout; nothing is sent yet, so there is no report to give.
    let schema = tokio::select! {
        schema = fetch_schema(&client, &target, config.model.as_deref()) => schema?,
        _ = signals.next() => {
            return Err(LoadError::Schema {
                url: target.shown().to_owned(),
                reason: "interrupted before it answered".into(),
            });
        }
    };
    let model = schema.name.clone();
    let labeller = config
        .feedback
        .clone()
        .zip(collector)
        .map(|(f, collector)| {
            Arc::new(Labeller::new(
                f,
                collector,
                schema.labels.clone(),
                config.seed,
            ))
        });
    let labels_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut labelling = labeller.clone().map(|l| {
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
    let permits = Arc::new(Semaphore::new(config.concurrency));
    let interval = Duration::from_secs_f64(1.0 / config.rate);
    let mut ticker = tokio::time::interval(interval);
    // Behind schedule (server slower than the rate), do not burst to catch up.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut sent = 0u64;
    let mut last_sent = started;
    let mut every_second = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    every_second.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (mut last_done, mut last_answered, mut last_at) = (0u64, 0usize, Instant::now());
    let mut progress = |sent: u64| {
        let t = tally.lock();
        let interval = last_at.elapsed().as_secs_f64().max(1e-9);
        let progress = Progress {
            elapsed: started.elapsed(),
            sent,
            done: t.done,
            rate: (t.done - last_done) as f64 / interval,
            p99_ms: p99_ms(&t.latencies_us[last_answered..]),
            unexpected: t.unexpected,
            transport_errors: t.transport_errors,
        };
        (last_done, last_answered, last_at) = (t.done, t.latencies_us.len(), Instant::now());
        drop(t);
        on_progress(&progress);
    };
    // The end of `--duration` is a wake-up of its own: at a low rate the next tick may
    // lie well past it (`--rate 0.5 --duration 500ms` ran 2 s).
    let duration_end = config.duration.map(|d| tokio::time::Instant::now() + d);
    let mut deadline = pin!(until(duration_end));
    let mut tasks = JoinSet::new();
    let end = 'send: loop {
        // Checked before waiting for the next tick: the run is over once the last
        // request is out (it waited one more interval for nothing).
        if config.requests.is_some_and(|n| sent >= n) {
            break End::Count;
        }
        tokio::select! {
            _ = ticker.tick() => {}
            () = &mut deadline => break End::Duration,
            _ = every_second.tick() => {
                progress(sent);
                continue;
            }
            _ = signals.next() => break End::Signal,
        }
        if duration_end.is_some_and(|at| tokio::time::Instant::now() >= at) {
            break End::Duration;
        }
        // With every permit out (a slow server), the end of the run and an interrupt
        // still count while this waits for one, and the live line goes on.
        let permit = loop {
            tokio::select! {
                permit = permits.clone().acquire_owned() => break permit.expect("never closed"),
                () = &mut deadline => break 'send End::Duration,
                _ = signals.next() => break 'send End::Signal,
                _ = every_second.tick() => progress(sent),
            }
        };
        // Finished requests leave the set, which stays the size of what is in flight.
        while tasks.try_join_next().is_some() {}
        let request = generator.next_request();
        tally.lock().in_flight.insert(sent, request.kind);
        tasks.spawn(send(
            client.clone(),
            target.join(&request.path),
            request,
            authorization.clone(),
            Sending {
                id: sent,
                tally: tally.clone(),
                labeller: labeller.clone(),
                _permit: permit,
            },
        ));
        sent += 1;
        last_sent = Instant::now();
    };
    let sending = match end {
        // The last request opens the last of `sent` intervals.
        End::Count => last_sent - started + interval,
        End::Duration | End::Signal => started.elapsed(),
    };

    // The stragglers. After a stop or the duration's end they get the grace; after the
    // last of `--requests` they get their answers, within the duration if there is one.
    let grace = config.grace;
    let mut cutoff = match end {
        End::Count => duration_end.map(|at| at + grace),
        End::Duration | End::Signal => Some(tokio::time::Instant::now() + grace),
    };
    while !signals.forced {
        tokio::select! {
            joined = tasks.join_next() => if joined.is_none() {
                break;
            },
            () = until(cutoff) => break,
            signal = signals.next() => if signal == Signal::Stop {
                let at = tokio::time::Instant::now() + grace;
                cutoff = Some(cutoff.map_or(at, |c| c.min(at)));
            },
            _ = every_second.tick() => progress(sent),
        }
    }
    // Aborted and awaited, so no answer is tallied after the cut-off below.
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed().as_secs_f64();
    let why = if signals.forced {
        "still waiting when a second interrupt ended the run".to_owned()
    } else {
        // The wait that ran out was the grace after a stop or after `--duration`'s
        // end (which, after the last of `--requests`, comes later than sending's).
        format!(
            "still waiting when the run ended ({} s after a stop or the end of --duration)",
            grace.as_secs_f64()
        )
    };
    tally.lock().cut_off(&why);

    // The last labels wait out their delay, then go; an interrupt, before or during
    // that wait, sends them at once, within the grace; a second one ends it.
    labels_done.store(true, std::sync::atomic::Ordering::Release);
    if let (Some(task), Some(labeller)) = (&mut labelling, &labeller) {
        let mut cutoff = None;
        if signals.stopped {
            labeller.hurry();
            cutoff = Some(tokio::time::Instant::now() + grace);
        }
        let finished = !signals.forced
            && loop {
                tokio::select! {
                    _ = &mut *task => break true,
                    () = until(cutoff) => break false,
                    signal = signals.next() => match signal {
                        Signal::Stop => {
                            labeller.hurry();
                            cutoff = Some(tokio::time::Instant::now() + grace);
                        }
                        Signal::Force => break false,
                    },
                }
            };
        if !finished {
            task.abort();
            let _ = task.await;
            labeller.cut_off();
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
    let send_rate = if sent == 0 {
        0.0
    } else {
        sent as f64 / sending.as_secs_f64().max(1e-9)
    };
    Ok(Report {
        model,
        sent,
        elapsed_s: (elapsed * 1e3).round() / 1e3,
        rate: ((sent as f64 / elapsed.max(1e-9)) * 10.0).round() / 10.0,
        target_rate: config.rate,
        // Three decimals: `--rate` goes down to 0.001.
        send_rate: (send_rate * 1e3).round() / 1e3,
        latency_ms: Latency {
            p50: pick(0.50),
            p90: pick(0.90),
            p99: pick(0.99),
            max: pick(1.0),
        },
        statuses: t.statuses,
        unexpected: t.unexpected,
        transport_errors: t.transport_errors,
        cut_off: t.cut_off,
        examples: t.examples,
        feedback: labeller.map(|l| l.report()),
    })
}

/// What a request's task shares with the run.
struct Sending {
    /// The request's number, its key in the tally's `in_flight`.
    id: u64,
    tally: Arc<Mutex<Tally>>,
    labeller: Option<Arc<Labeller>>,
    /// Its concurrency slot, given back when the task ends (or is aborted).
    _permit: OwnedSemaphorePermit,
}

/// Sends one request and tallies what came back.
async fn send(
    client: reqwest::Client,
    url: String,
    request: Request,
    authorization: Option<reqwest::header::HeaderValue>,
    sending: Sending,
) {
    let begin = Instant::now();
    let mut post = client
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, request.content_type);
    if let Some(value) = authorization {
        post = post.header(reqwest::header::AUTHORIZATION, value);
    }
    let outcome = match post.body(request.body).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let location = response
                .status()
                .is_redirection()
                .then(|| response.headers().get(reqwest::header::LOCATION).cloned())
                .flatten();
            let text = response.text().await.unwrap_or_default();
            let latency_us = u32::try_from(begin.elapsed().as_micros()).unwrap_or(u32::MAX);
            let text = match location {
                Some(to) => format!("redirect to {}, not followed", to.to_str().unwrap_or("?")),
                None => text,
            };
            Outcome::Answer {
                status,
                text,
                latency_us,
            }
        }
        Err(e) => Outcome::NoAnswer(why(&e, REQUEST_TIMEOUT)),
    };
    if let (
        Some(l),
        Outcome::Answer {
            status: 200, text, ..
        },
    ) = (&sending.labeller, &outcome)
    {
        l.observe(text);
    }
    sending.tally.lock().record(sending.id, outcome);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::UrlFault;
    use crate::feedback::FeedbackConfig;
    use crate::testing::{Answer, Server, prediction, serve, serve_all};

    /// Runs against `target`: one request a millisecond until a limit or a signal.
    fn config(target: &str) -> LoadConfig {
        LoadConfig {
            target: target.to_owned(),
            model: None,
            rate: 1000.0,
            duration: None,
            requests: None,
            concurrency: 4,
            invalid: 0.0,
            drifted: 0.0,
            batch: 1,
            seed: 1,
            feedback: None,
            api_key: None,
            grace: Duration::from_millis(200),
        }
    }

    /// A run that must end well inside `within` (the 30 s request timeout is what a
    /// run that does not end on time runs into).
    async fn within(
        within: Duration,
        run: impl Future<Output = Result<Report, LoadError>>,
    ) -> Report {
        tokio::time::timeout(within, run)
            .await
            .expect("the run did not end in time")
            .expect("the run failed")
    }

    /// A server whose model never answers a prediction.
    async fn silent() -> Server {
        serve(|_, _| Answer::Never).await
    }

    #[tokio::test]
    async fn a_stop_gives_requests_in_flight_the_grace_then_counts_them_as_no_answer() {
        let server = silent().await;
        // Readiness: the schema's two reads and a prediction on every slot.
        let stop = server.received(2 + 4);
        let report = within(Duration::from_secs(5), run_until(config(&server.url), stop)).await;
        assert_eq!(report.sent, 4, "{report:?}");
        assert_eq!(report.cut_off, 4, "{report:?}");
        assert_eq!(report.transport_errors, 4, "{report:?}");
        assert_eq!(report.unexpected, 4, "{report:?}");
        assert_eq!(report.statuses["good"][&0], 4, "{report:?}");
        assert!(report.elapsed_s < 2.0, "{report:?}");
        assert_eq!(
            report.examples[0],
            "good request got no answer: still waiting when the run ended (0.2 s after a stop or the end of --duration)"
        );
    }

    #[tokio::test]
    async fn the_duration_bounds_the_run_when_no_answer_comes() {
        let server = silent().await;
        let report = within(
            Duration::from_secs(5),
            run(LoadConfig {
                duration: Some(Duration::from_millis(300)),
                ..config(&server.url)
            }),
        )
        .await;
        // 300 ms of sending, then 200 ms of grace.
        assert!((0.45..2.0).contains(&report.elapsed_s), "{report:?}");
        assert_eq!(report.cut_off, report.sent, "{report:?}");
        assert!(report.sent >= 1, "{report:?}");
    }

    #[tokio::test]
    async fn a_second_signal_ends_the_run_without_waiting_for_the_grace() {
        let server = silent().await;
        let report = within(
            Duration::from_secs(5),
            run_watched(
                LoadConfig {
                    grace: Duration::from_secs(60),
                    ..config(&server.url)
                },
                server.received(3),
                server.received(3),
                |_| {},
            ),
        )
        .await;
        assert!(report.sent >= 1, "{report:?}");
        assert_eq!(report.cut_off, report.sent, "{report:?}");
        assert!(
            report.examples[0].ends_with("still waiting when a second interrupt ended the run"),
            "{report:?}"
        );
    }

    #[tokio::test]
    async fn an_interrupt_while_the_target_keeps_the_schema_ends_the_run() {
        let server = serve_all(|_, _| Answer::Never).await;
        let stop = server.received(1);
        let outcome =
            tokio::time::timeout(Duration::from_secs(5), run_until(config(&server.url), stop))
                .await
                .expect("the interrupt waited for the request timeout");
        let Err(LoadError::Schema { reason, .. }) = outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!(reason, "interrupted before it answered");
    }

    #[tokio::test]
    async fn the_run_ends_once_the_last_request_is_answered() {
        let server = serve(|_, _| prediction()).await;
        // One request every 5 s: the run must not wait for the second tick.
        let report = within(
            Duration::from_secs(3),
            run(LoadConfig {
                rate: 0.2,
                requests: Some(1),
                ..config(&server.url)
            }),
        )
        .await;
        assert_eq!(report.sent, 1);
        assert_eq!(report.statuses["good"][&200], 1, "{report:?}");
        assert_eq!(report.unexpected, 0);
    }

    #[tokio::test]
    async fn no_answer_gives_its_cause_and_no_latency() {
        let server = serve(|_, _| Answer::Close).await;
        let report = within(
            Duration::from_secs(10),
            run(LoadConfig {
                requests: Some(3),
                ..config(&server.url)
            }),
        )
        .await;
        assert_eq!(report.transport_errors, 3, "{report:?}");
        assert_eq!(report.cut_off, 0, "{report:?}");
        assert_eq!(report.broken_answers(), 0, "{report:?}");
        assert_eq!(report.latency_ms.max, 0.0, "{report:?}");
        assert_eq!(report.latency_ms.p50, 0.0, "{report:?}");
        assert_eq!(
            report.examples[0],
            "good request got no answer: connection closed before message completed"
        );
    }

    #[tokio::test]
    async fn a_redirect_is_an_answer_the_contract_does_not_expect() {
        let server = serve(|_, path| match path {
            "/predict" => Answer::Redirect("/elsewhere".into()),
            _ => prediction(),
        })
        .await;
        let report = within(
            Duration::from_secs(10),
            run(LoadConfig {
                requests: Some(2),
                ..config(&server.url)
            }),
        )
        .await;
        assert_eq!(report.statuses["good"][&302], 2, "{report:?}");
        assert_eq!(report.broken_answers(), 2, "{report:?}");
        assert_eq!(
            report.examples[0],
            "good request answered 302: redirect to /elsewhere, not followed"
        );
        // Not followed: the server saw the schema's two reads and the two requests.
        assert_eq!(*server.requests.borrow(), 4);
    }

    #[tokio::test]
    async fn examples_say_in_words_what_was_sent_and_what_came_back() {
        let server = serve(|_, _| Answer::Json(200, "{}".into())).await;
        let report = within(
            Duration::from_secs(10),
            run(LoadConfig {
                requests: Some(2),
                invalid: 1.0,
                // One at a time: the examples come in the order sent.
                concurrency: 1,
                ..config(&server.url)
            }),
        )
        .await;
        assert_eq!(
            report.examples,
            [
                "invalid request (wrong feature count) answered 200: {}",
                "invalid request (a null feature) answered 200: {}"
            ]
        );
    }

    #[tokio::test]
    async fn bad_addresses_are_refused_before_any_traffic() {
        let server = serve(|_, _| prediction()).await;
        for (target, collector, option, fault) in [
            (
                format!("{}/?x=1", server.url),
                None,
                "--target",
                UrlFault::Query,
            ),
            (
                format!("{}/#frag", server.url),
                None,
                "--target",
                UrlFault::Fragment,
            ),
            (
                server.url.clone(),
                Some("foo"),
                "--collector",
                UrlFault::Unparsable("relative URL without a base".into()),
            ),
            (
                server.url.clone(),
                Some("ftp://127.0.0.1:8001"),
                "--collector",
                UrlFault::Scheme,
            ),
        ] {
            let outcome = run(LoadConfig {
                requests: Some(1),
                feedback: collector.map(|c| FeedbackConfig {
                    collector: c.into(),
                    ratio: 1.0,
                    label_noise: 0.0,
                    delay: Duration::ZERO,
                }),
                ..config(&target)
            })
            .await;
            match outcome {
                Err(LoadError::Url {
                    option: o,
                    fault: f,
                }) => {
                    assert_eq!((o, f), (option, fault), "{target} {collector:?}");
                }
                other => panic!("{target} {collector:?}: {other:?}"),
            }
        }
        assert_eq!(*server.requests.borrow(), 0, "traffic went out");
    }

    #[tokio::test]
    async fn the_report_holds_the_rate_sent_against_the_rate_asked() {
        let server = serve(|_, _| prediction()).await;
        let report = within(
            Duration::from_secs(10),
            run(LoadConfig {
                rate: 10.0,
                requests: Some(3),
                ..config(&server.url)
            }),
        )
        .await;
        // Three requests are three intervals, the last one's included: 0.3 s.
        assert_eq!(report.target_rate, 10.0);
        assert!((9.0..=10.5).contains(&report.send_rate), "{report:?}");
        assert!(!report.short_of_target(), "{report:?}");

        // One slot, held by a request never answered: one request in 300 ms.
        let server = silent().await;
        let report = within(
            Duration::from_secs(5),
            run(LoadConfig {
                rate: 100.0,
                concurrency: 1,
                duration: Some(Duration::from_millis(300)),
                ..config(&server.url)
            }),
        )
        .await;
        assert_eq!(report.sent, 1, "{report:?}");
        assert_eq!(report.target_rate, 100.0);
        assert!(report.send_rate < 10.0, "{report:?}");
        assert!(report.short_of_target(), "{report:?}");
    }

    #[tokio::test]
    async fn an_interrupt_gives_the_last_labels_the_grace_then_counts_them_cut_off() {
        let server = serve(|_, _| prediction()).await;
        let collector = serve_all(|_, _| Answer::Never).await;
        let report = within(
            Duration::from_secs(5),
            run_until(
                LoadConfig {
                    requests: Some(3),
                    feedback: Some(FeedbackConfig {
                        collector: collector.url.clone(),
                        ratio: 1.0,
                        label_noise: 0.0,
                        delay: Duration::from_secs(3600),
                    }),
                    ..config(&server.url)
                },
                // Readiness: the schema's two reads and the three predictions.
                server.received(2 + 3),
            ),
        )
        .await;
        assert_eq!(report.statuses["good"][&200], 3, "{report:?}");
        let feedback = report.feedback.unwrap();
        assert_eq!(
            (
                feedback.labels,
                feedback.cut_off,
                feedback.early,
                feedback.wrong
            ),
            (0, 3, 0, 0),
            "{feedback:?}"
        );
        assert_eq!(
            *collector.requests.borrow(),
            1,
            "the labels went, in one batch"
        );
    }
}
