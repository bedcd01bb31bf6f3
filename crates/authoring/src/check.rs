//! `vigil models check DIR`: loads a model directory with the code start-up and the
//! upload endpoint use (card parse, ONNX load and optimisation, the probe batch) and
//! says what it found, or each problem with its fix.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use vigil_model::card::ModelCard;
use vigil_model::onnx_ml::{Port, Summary, describe};
use vigil_model::{
    LoadedModel, MAX_CARD_BYTES, MAX_ONNX_BYTES, Output, ProbeReport, probe, read_model_file,
};

/// One thing wrong, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub what: String,
    pub fix: String,
}

/// What [`check`] found.
#[derive(Debug)]
pub struct CheckReport {
    pub dir: PathBuf,
    pub summary: Option<Summary>,
    pub card: Option<ModelCard>,
    pub probe: Option<ProbeReport>,
    pub problems: Vec<Problem>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

const CARD_HELP: &str = "`vigil models init --onnx FILE --data TRAIN.csv` writes a complete card";

/// Checks `dir` (holding `model.onnx` and `model.toml`).
pub fn check(dir: &Path) -> CheckReport {
    let mut report = CheckReport {
        dir: dir.to_owned(),
        summary: None,
        card: None,
        probe: None,
        problems: Vec::new(),
    };
    let mut problem = |what: String, fix: &str| {
        report.problems.push(Problem {
            what,
            fix: fix.to_owned(),
        });
    };
    // As start-up reads them: regular files, bounded.
    let onnx = read_model_file(&dir.join("model.onnx"), MAX_ONNX_BYTES);
    let card_text = read_model_file(&dir.join("model.toml"), MAX_CARD_BYTES).and_then(|b| {
        String::from_utf8(b).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    });
    if let Err(e) = &onnx {
        problem(
            format!("cannot read {}: {e}", dir.join("model.onnx").display()),
            "put the exported model there as model.onnx",
        );
    }
    if let Err(e) = &card_text {
        problem(
            format!("cannot read {}: {e}", dir.join("model.toml").display()),
            CARD_HELP,
        );
    }
    let summary = onnx.as_ref().ok().map(|b| describe(b));
    if let Some(Err(e)) = &summary {
        problem(
            e.clone(),
            "export the model to ONNX again (scikit-learn: skl2onnx.to_onnx; PyTorch: torch.onnx.export)",
        );
    }
    let card = card_text.as_ref().ok().map(|t| ModelCard::from_toml(t));
    if let Some(Err(e)) = &card {
        problem(
            format!("model.toml: {e}"),
            &format!(
                "correct the card (every key is described in the reference, §3.2), or {CARD_HELP}"
            ),
        );
    }
    // Start-up serves any card version; an upload keeps the version under its name,
    // so it must also be a safe file name (the check speaks for both).
    if let Some(Ok(c)) = &card
        && !vigil_model::versions::is_version_name(&c.version)
    {
        problem(
            format!(
                "model.toml: version {:?} cannot be uploaded: a kept version is 1-64 characters of [A-Za-z0-9._-], not starting with '.', and not `state.toml`",
                c.version
            ),
            "choose another version in model.toml",
        );
    }
    if let (Some(Ok(summary)), Some(Ok(card))) = (&summary, &card)
        && let Some(stored) = &summary.labels
        && crate::init::is_reordering(&card.labels, stored)
    {
        problem(
            format!(
                "model.toml: labels {} are the class labels the ONNX file stores in another order ({}): every answer would name another class",
                card.labels.join(", "),
                stored.join(", ")
            ),
            "list the labels in the model's class order (as the ONNX file stores them), or write the card again with `vigil models init`",
        );
    }
    let both_read = matches!((&summary, &card), (Some(Ok(_)), Some(Ok(_))));
    if let (Ok(onnx), Ok(text), true) = (&onnx, &card_text, both_read) {
        match LoadedModel::from_parts(onnx, text, dir.display().to_string()) {
            Err(e) => {
                let message = e.to_string();
                let fix = fix_for_load(&message);
                problem(message, fix);
            }
            Ok(model) => match probe(&model) {
                Ok(p) => report.probe = Some(p),
                Err(e) => problem(
                    e.to_string(),
                    "the probability output must be one probability per label for each row",
                ),
            },
        }
    }
    report.summary = summary.and_then(Result::ok);
    report.card = card.and_then(Result::ok);
    report
}

fn fix_for_load(message: &str) -> &'static str {
    if message.contains("unsupported ONNX operator") {
        "vigil cannot run this operator: export the model without it (or with a different converter option), or ask for it to be supported"
    } else if message.contains("no output of shape") {
        "the card's labels must match the model's classes: one label per probability column, in the model's order"
    } else if message.contains("input is not") || message.contains("one input") {
        "the card's features must match the model's input: one feature per input column, in order"
    } else {
        "the ONNX file and the card must describe the same model; `vigil models init` writes a card that does"
    }
}

fn port(p: &Port) -> String {
    match &p.shape {
        Some(s) => format!("{} {} [{}]", p.name, p.datum, s.join(", ")),
        None => format!("{} {}", p.name, p.datum),
    }
}

impl std::fmt::Display for CheckReport {
    /// What was found, then each problem with its fix, then the verdict.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "model directory {}", self.dir.display())?;
        if let Some(c) = &self.card {
            let mut line = format!(
                "  card: {} version {}, {}, {} features",
                c.name,
                c.version,
                c.task.as_str(),
                c.features.len(),
            );
            if !c.labels.is_empty() {
                let _ = write!(
                    line,
                    ", {} labels ({})",
                    c.labels.len(),
                    c.labels.join(", ")
                );
            }
            if let Some(b) = &c.baseline {
                let _ = write!(line, "; baseline {b} on {} rows", b.rows);
            }
            writeln!(f, "{line}")?;
        }
        if let Some(s) = &self.summary {
            for i in &s.inputs {
                writeln!(f, "  input:  {}", port(i))?;
            }
            for o in &s.outputs {
                writeln!(f, "  output: {}", port(o))?;
            }
            let ops: Vec<String> = s.ops.iter().map(|(op, n)| format!("{op} ×{n}")).collect();
            writeln!(f, "  operators: {}", ops.join(", "))?;
            if let Some(l) = &s.labels {
                writeln!(f, "  class labels in the ONNX file: {}", l.join(", "))?;
            }
        }
        if let (Some(p), Some(c)) = (&self.probe, &self.card) {
            writeln!(f, "  probe: {} rows answered; the first:", p.rows)?;
            for out in p.outputs.iter().take(3) {
                match out {
                    Output::Class(out) => {
                        let probs: Vec<String> = out
                            .probabilities
                            .iter()
                            .map(|v| format!("{v:.4}"))
                            .collect();
                        writeln!(
                            f,
                            "    {} ({:.4}) from [{}]",
                            c.labels[out.class_index],
                            out.confidence,
                            probs.join(", ")
                        )?;
                    }
                    Output::Value(v) => writeln!(f, "    {v}")?,
                }
            }
        }
        for p in &self.problems {
            writeln!(f, "problem: {}", p.what)?;
            writeln!(f, "  fix: {}", p.fix)?;
        }
        if self.ok() {
            writeln!(
                f,
                "ok: start-up and the upload endpoint accept this directory"
            )
        } else {
            // Not "would not load": a version an upload cannot keep, or labels in
            // another order than the model's, load and serve.
            writeln!(
                f,
                "{} problem(s): this directory is not ready to serve",
                self.problems.len()
            )
        }
    }
}
