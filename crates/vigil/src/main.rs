//! `vigil`: parse the command line, resolve the configuration, run, map the outcome to
//! an exit code. Everything else lives in the library crates.

#[macro_use]
mod console;

mod cli;
mod config;
mod error_text;
mod keys;
mod load;
mod logs;
mod models;
mod run;

use std::process::ExitCode;

use clap::Parser;

/// A server allocates small, short-lived buffers on every request from several
/// threads; mimalloc handles that pattern markedly better than glibc's malloc
/// (see docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for a bad configuration or command line (BSD `EX_USAGE`).
const EXIT_CONFIG: u8 = 64;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match &cli.command {
        cli::Command::Load(args) => return load::run(args.clone()),
        cli::Command::Keys(args) => return keys::run(&cli, args),
        cli::Command::Logs(args) => return logs::run(args),
        cli::Command::Models(args) => return models::run(args),
        _ => {}
    }
    let config = match config::Config::resolve(&cli) {
        Ok(c) => c,
        Err(e) => {
            say!("vigil: configuration error: {}", error_text::one_line(&e));
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match run::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say!("vigil: {}", error_text::one_line(&e));
            ExitCode::FAILURE
        }
    }
}
