//! docs/own-model.md, run as written: its Python blocks are saved under their titles,
//! its shell commands run in order in a fresh directory (with the model zoo's venv
//! providing scikit-learn and skl2onnx, and the `vigil` under test on `PATH`), and
//! every line of each output block must appear in what the commands before it
//! printed. `vigil up` is started on port 0 by the test (and the guide's
//! `localhost:8000` pointed at it), so the guide keeps the ports a reader uses.

use std::path::Path;
use std::process::Command;

use vigil_test_support::{TempDir, Vigil, vigil_binary};

struct Block {
    lang: String,
    title: Option<String>,
    body: String,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for line in markdown.lines() {
        if let Some(info) = line.strip_prefix("```") {
            match open.take() {
                Some(b) => out.push(b),
                None => {
                    let mut words = info.split_whitespace();
                    let lang = words.next().unwrap_or_default().to_owned();
                    let title = words
                        .find_map(|w| w.strip_prefix("title="))
                        .map(|t| t.trim_matches('"').to_owned());
                    open = Some(Block {
                        lang,
                        title,
                        body: String::new(),
                    });
                }
            }
        } else if let Some(b) = open.as_mut() {
            b.body.push_str(line);
            b.body.push('\n');
        }
    }
    assert!(open.is_none(), "an unclosed code block");
    out
}

#[test]
fn the_own_model_guide_runs_as_written() {
    let guide = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/own-model.md"),
    )
    .unwrap();
    let work = TempDir::new("own-model-guide");
    let binary = vigil_binary();
    let path = format!(
        "{}:{}:{}",
        vigil_test_support::zoo_python_bin().display(),
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut server: Option<Vigil> = None;
    let mut address: Option<String> = None;
    let mut last_output = String::new();
    let mut commands = 0;
    let mut checked = 0;
    for block in blocks(&guide) {
        match block.lang.as_str() {
            "python" => {
                let title = block.title.expect("a python block has a title=\"file\"");
                std::fs::write(work.path().join(title), &block.body).unwrap();
            }
            "sh" => {
                last_output.clear();
                for command in block.body.lines().filter(|l| !l.trim().is_empty()) {
                    commands += 1;
                    if let Some(args) = command.strip_prefix("vigil up") {
                        // Relative paths are the reader's working directory: ours.
                        let args: Vec<String> = args
                            .split_whitespace()
                            .map(|a| {
                                let p = work.path().join(a);
                                if p.exists() {
                                    p.display().to_string()
                                } else {
                                    a.to_owned()
                                }
                            })
                            .collect();
                        let args: Vec<&str> = args.iter().map(String::as_str).collect();
                        let started = Vigil::start_command("up", &args, &[]);
                        address = Some(started.address_of("inference").to_string());
                        server = Some(started);
                        continue;
                    }
                    let command = match &address {
                        Some(a) => command.replace("localhost:8000", a),
                        None => command.to_owned(),
                    };
                    let out = Command::new("bash")
                        .args(["-euo", "pipefail", "-c", &command])
                        .current_dir(work.path())
                        .env("PATH", &path)
                        .output()
                        .unwrap();
                    let text = format!(
                        "{}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                    assert!(out.status.success(), "`{command}` failed:\n{text}");
                    last_output.push_str(&text);
                }
            }
            "text" => {
                for line in block.body.lines() {
                    if line.trim().is_empty() || line.trim() == "…" {
                        continue;
                    }
                    checked += 1;
                    assert!(
                        last_output.contains(line),
                        "the guide shows {line:?}, the command printed:\n{last_output}"
                    );
                }
            }
            other => panic!("a code block of kind {other:?}: the runner does not know it"),
        }
    }
    assert!(server.is_some(), "the guide never started vigil");
    assert!(
        commands >= 8 && checked >= 8,
        "{commands} commands, {checked} lines checked"
    );
}
