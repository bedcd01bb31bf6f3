//! `vigil models init` and `vigil models check` (the `vigil-authoring` crate).

use std::process::ExitCode;

use vigil_authoring::{InitOptions, check, init};
use vigil_model::Task;

use crate::EXIT_CONFIG;
use crate::cli::{ModelsAction, ModelsArgs};

pub fn run(args: &ModelsArgs) -> ExitCode {
    match &args.action {
        ModelsAction::Check { dir } => {
            let report = check(dir);
            // The report is the output: one that cannot be written whole fails.
            if let Err(e) = put_raw!("{report}")
                && e.kind() != std::io::ErrorKind::BrokenPipe
            {
                say!("vigil models check: cannot write the report: {e}");
                return ExitCode::FAILURE;
            }
            if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        ModelsAction::Init(a) => {
            let opts = InitOptions {
                onnx: a.onnx.clone(),
                data: a.data.clone(),
                label_column: a.label_column.clone(),
                name: a.name.clone(),
                version: a.version.clone(),
                task: a.task,
                labels: a.labels.clone(),
                out: a.out.clone(),
            };
            match init(&opts) {
                Ok(r) => {
                    let c = &r.card;
                    let _ = put!("wrote {}: model.onnx and model.toml", r.out.display());
                    let kind = match c.task {
                        Task::Classification => format!("labels {}", c.labels.join(", ")),
                        Task::Regression => "a regressor".to_owned(),
                    };
                    let _ = put!(
                        "  {} version {}: {} features, {kind}",
                        c.name,
                        c.version,
                        c.features.len(),
                    );
                    if let Some(b) = &c.baseline {
                        let _ = put!("  baseline {b} on {} rows of {}", b.rows, b.data);
                    }
                    let _ = put!("  the probe batch answered {} rows", r.probe_rows);
                    let parent = r
                        .out
                        .parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .map_or_else(|| ".".to_owned(), |p| p.display().to_string());
                    let _ = put!("serve it: vigil up --models-dir {parent}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    say!("vigil models init: {e}");
                    ExitCode::from(EXIT_CONFIG)
                }
            }
        }
    }
}
