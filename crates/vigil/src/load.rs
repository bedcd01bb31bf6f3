//! `vigil load`: runs the traffic generator of `vigil-load` and prints its report.

use std::io::IsTerminal;
use std::process::ExitCode;

use crate::EXIT_CONFIG;
use crate::cli::LoadArgs;

pub fn run(args: LoadArgs) -> ExitCode {
    let collector = match (&args.collector, args.feedback) {
        (Some(url), _) => url.clone(),
        (None, Some(_)) => match vigil_load::collector_beside(&args.target) {
            Some(url) => url,
            None => {
                say!(
                    "vigil load: no collector beside --target {:?}: name it with --collector",
                    args.target
                );
                return ExitCode::from(EXIT_CONFIG);
            }
        },
        (None, None) => String::new(),
    };
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
    // Ctrl-C or SIGTERM ends the run early; the report still comes out.
    let stop = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
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
    let outcome = runtime.block_on(vigil_load::run_watched(config, stop, progress));
    if live {
        say_raw!("\r\x1b[2K");
    }
    match outcome {
        Ok(report) => {
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
            if report.unexpected > 0 {
                say!(
                    "vigil load: {} answers broke the API contract (see `examples`)",
                    report.unexpected
                );
                failed = true;
            }
            if let Some(f) = report.feedback.as_ref().filter(|f| f.failed > 0) {
                say!(
                    "vigil load: the collector did not take {} of {} labels: {}",
                    f.failed,
                    f.labels,
                    f.failure.as_deref().unwrap_or("(no reason)")
                );
                failed = true;
            }
            if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e @ vigil_load::LoadError::Config(_)) => {
            say!("vigil load: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(e) => {
            say!("vigil load: {e}");
            ExitCode::FAILURE
        }
    }
}
