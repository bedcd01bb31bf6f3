//! `vigil load`: runs the traffic generator of `vigil-load` and prints its report.

use std::io::IsTerminal;
use std::process::ExitCode;

use tokio::sync::{mpsc, oneshot};
use vigil_load::Report;

use crate::EXIT_CONFIG;
use crate::cli::LoadArgs;

pub fn run(args: LoadArgs) -> ExitCode {
    // Both addresses before anything else: the collector's default comes from the
    // target, and a bad collector would otherwise show only after all the traffic.
    let given = [
        ("--target", Some(&args.target)),
        ("--collector", args.collector.as_ref()),
    ];
    for (option, url) in given {
        if let Some(url) = url
            && let Err(e) = vigil_load::check_url(option, url)
        {
            say!("vigil load: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    }
    let collector = match (&args.collector, args.feedback) {
        (Some(url), _) => url.clone(),
        (None, Some(_)) => match vigil_load::collector_beside(&args.target) {
            Some(url) => url,
            None => {
                say!(
                    "vigil load: no collector beside --target (its port is the last one): name it with --collector"
                );
                return ExitCode::from(EXIT_CONFIG);
            }
        },
        (None, None) => String::new(),
    };
    let concurrency = args.concurrency;
    let config = vigil_load::LoadConfig {
        target: args.target,
        model: args.model,
        rate: args.rate,
        duration: args.duration,
        requests: args.requests,
        concurrency: args.concurrency,
        invalid: args.invalid,
        drifted: args.drifted,
        batch: args.batch,
        seed: args.seed,
        api_key: args.api_key,
        feedback: args.feedback.map(|ratio| vigil_load::FeedbackConfig {
            collector,
            ratio,
            label_noise: args.label_noise,
            delay: args.feedback_delay,
        }),
        grace: vigil_load::GRACE,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            say!("vigil load: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A live line on a terminal only: piped or redirected, stderr stays quiet.
    let live = std::io::stderr().is_terminal();
    let progress = |p: &vigil_load::Progress| {
        if live {
            // Back to the line's start and clear it, so the line updates in place.
            say_raw!("\r\x1b[2K{}", p.line());
        }
    };
    let outcome = runtime.block_on(async {
        let (stop, force) = signals(live)?;
        std::io::Result::Ok(vigil_load::run_watched(config, stop, force, progress).await)
    });
    // A blocking task still running (a DNS lookup that hangs) would hold the exit
    // after the report: the run is over, so the runtime does not wait for it.
    runtime.shutdown_background();
    if live {
        say_raw!("\r\x1b[2K");
    }
    match outcome {
        Ok(Ok(report)) => {
            // The report is the output: one that could not be written whole (a full
            // disk behind `>`) fails the run; a reader gone before it (`| head`)
            // does not change its outcome.
            let written = put!(
                "{}",
                serde_json::to_string_pretty(&report).expect("report serializes")
            );
            let mut failed = false;
            if let Err(e) = written
                && e.kind() != std::io::ErrorKind::BrokenPipe
            {
                say!("vigil load: cannot write the report: {e}");
                failed = true;
            }
            let (lines, fails) = verdict(&report, concurrency);
            for line in lines {
                say!("vigil load: {line}");
            }
            if failed || fails {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Ok(Err(e)) => {
            say!("vigil load: {e}");
            if e.is_usage() {
                ExitCode::from(EXIT_CONFIG)
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            say!("vigil load: cannot listen for Ctrl-C and SIGTERM: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `n` and `noun`, the noun plural unless `n` is 1 (`1 request`, `3 requests`).
fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// What the report means for the person reading stderr, and whether the run failed:
/// answers that broke the contract, requests without an answer and labels the
/// collector did not take fail it; a rate short of the one asked is only a warning.
fn verdict(report: &Report, concurrency: usize) -> (Vec<String>, bool) {
    let mut lines = Vec::new();
    let mut failed = false;
    let broken = report.broken_answers();
    if broken > 0 {
        lines.push(format!(
            "{} broke the API contract (see `examples`)",
            count(broken, "answer")
        ));
        failed = true;
    }
    if report.transport_errors > 0 {
        let cut_off = match report.cut_off {
            0 => String::new(),
            n => format!(", {n} of them cut off when the run ended"),
        };
        lines.push(format!(
            "{} got no answer{cut_off} (see `examples`)",
            count(report.transport_errors, "request")
        ));
        failed = true;
    }
    if let Some(f) = &report.feedback {
        if f.failed > 0 {
            lines.push(format!(
                "the collector did not take {} of {} labels: {}",
                f.failed,
                f.labels,
                f.failure.as_deref().unwrap_or("(no reason)")
            ));
            failed = true;
        }
        if f.cut_off > 0 {
            lines.push(format!(
                "{} never reached the collector: the run ended first",
                count(f.cut_off, "label")
            ));
            failed = true;
        }
    }
    if report.short_of_target() {
        lines.push(format!(
            "sent {} requests a second, under 90 % of --rate {}: answers too slow for \
             --concurrency {concurrency} at that rate, or this machine could not keep up",
            report.send_rate, report.target_rate
        ));
    }
    (lines, failed)
}

/// The signals that end a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

/// The run's stop and force: the first Ctrl-C or SIGTERM stops it (requests in
/// flight get the grace), a Ctrl-C after that ends it at once. Both handlers are in
/// place before the run starts, so no signal falls through to the default action.
fn signals(live: bool) -> std::io::Result<(impl Future<Output = ()>, impl Future<Output = ()>)> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let (sender, received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let signal = tokio::select! {
                Some(()) = interrupt.recv() => Signal::Interrupt,
                Some(()) = terminate.recv() => Signal::Terminate,
                else => return,
            };
            if sender.send(signal).is_err() {
                return;
            }
        }
    });
    let (stop, stopped) = oneshot::channel();
    let (force, forced) = oneshot::channel();
    tokio::spawn(escalate(received, stop, force, move || {
        // On a terminal someone pressed the key and waits: say what happens now.
        if live {
            say_raw!("\r\x1b[2K");
            say!(
                "vigil load: stopping; requests in flight get up to {} s (Ctrl-C again ends the run now)",
                vigil_load::GRACE.as_secs()
            );
        }
    }));
    Ok((fired(stopped), fired(forced)))
}

/// Fires `stop` on the first signal and `force` on a Ctrl-C after it. A repeated
/// SIGTERM changes nothing, as for the services (reference §1.4): a supervisor may
/// send it again while it waits.
async fn escalate(
    mut signals: mpsc::UnboundedReceiver<Signal>,
    stop: oneshot::Sender<()>,
    force: oneshot::Sender<()>,
    on_stop: impl FnOnce(),
) {
    if signals.recv().await.is_none() {
        return;
    }
    let _ = stop.send(());
    on_stop();
    while let Some(signal) = signals.recv().await {
        if signal == Signal::Interrupt {
            let _ = force.send(());
            return;
        }
    }
}

/// Completes when `signal` is sent; never when its sender is gone without sending.
async fn fired(signal: oneshot::Receiver<()>) {
    if signal.await.is_err() {
        std::future::pending().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which of stop and force fire after `sent`.
    async fn escalated(sent: &[Signal]) -> (bool, bool) {
        let (sender, received) = mpsc::unbounded_channel();
        for signal in sent {
            sender.send(*signal).unwrap();
        }
        drop(sender);
        let (stop, mut stopped) = oneshot::channel();
        let (force, mut forced) = oneshot::channel();
        escalate(received, stop, force, || {}).await;
        (stopped.try_recv().is_ok(), forced.try_recv().is_ok())
    }

    #[tokio::test]
    async fn the_first_signal_stops_and_a_ctrl_c_after_it_forces() {
        use Signal::{Interrupt, Terminate};
        assert_eq!(escalated(&[]).await, (false, false));
        assert_eq!(escalated(&[Interrupt]).await, (true, false));
        assert_eq!(escalated(&[Terminate]).await, (true, false));
        assert_eq!(escalated(&[Interrupt, Interrupt]).await, (true, true));
        assert_eq!(escalated(&[Terminate, Interrupt]).await, (true, true));
        assert_eq!(escalated(&[Terminate, Terminate]).await, (true, false));
        assert_eq!(escalated(&[Interrupt, Terminate]).await, (true, false));
    }

    #[test]
    fn no_answer_is_not_called_a_broken_contract() {
        let report = Report {
            sent: 248,
            unexpected: 248,
            transport_errors: 248,
            cut_off: 16,
            ..Report::default()
        };
        assert_eq!(
            verdict(&report, 16),
            (
                vec![
                    "248 requests got no answer, 16 of them cut off when the run ended (see `examples`)"
                        .to_owned()
                ],
                true
            )
        );
        let report = Report {
            sent: 10,
            unexpected: 4,
            transport_errors: 1,
            ..Report::default()
        };
        assert_eq!(
            verdict(&report, 16).0,
            [
                "3 answers broke the API contract (see `examples`)",
                "1 request got no answer (see `examples`)"
            ]
        );
    }

    #[test]
    fn a_rate_short_of_the_target_is_a_warning_not_a_failure() {
        let report = Report {
            sent: 16,
            target_rate: 20.0,
            send_rate: 1.6,
            ..Report::default()
        };
        let (lines, failed) = verdict(&report, 16);
        assert_eq!(
            lines,
            [
                "sent 1.6 requests a second, under 90 % of --rate 20: answers too slow for \
              --concurrency 16 at that rate, or this machine could not keep up"
            ]
        );
        assert!(!failed);
        let on_target = Report {
            send_rate: 19.0,
            ..report
        };
        assert_eq!(verdict(&on_target, 16), (vec![], false));
    }

    #[test]
    fn labels_cut_off_fail_the_run() {
        let report = Report {
            sent: 3,
            target_rate: 1.0,
            send_rate: 1.0,
            feedback: Some(vigil_load::FeedbackReport {
                cut_off: 3,
                ..Default::default()
            }),
            ..Report::default()
        };
        assert_eq!(
            verdict(&report, 16),
            (
                vec!["3 labels never reached the collector: the run ended first".to_owned()],
                true
            )
        );
    }
}
