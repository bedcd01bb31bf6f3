//! `vigil models init`: a model directory from an ONNX file and its training CSV.
//! Everything the card holds is computed here and the result is loaded and probed by
//! the code start-up and the upload endpoint use before anything is written; the
//! directory appears whole (written beside it, then renamed) or not at all.

use std::path::{Path, PathBuf};

use vigil_model::card::{Baseline, DriftReference, ModelCard, Task};
use vigil_model::onnx_ml::{Port, Summary, describe};
use vigil_model::{Head, LoadedModel, OnnxModel, Output, probe};

use crate::data::{self, TrainingData};
use crate::error::InitError;
use crate::reference::{self, MIN_ROWS};

/// What to make.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub onnx: PathBuf,
    pub data: PathBuf,
    /// The CSV column of true labels: measured accuracy becomes the card's baseline.
    pub label_column: Option<String>,
    /// Default: the ONNX file's name (its directory's, for a `model.onnx`).
    pub name: Option<String>,
    pub version: String,
    /// Default: classification when the model (or `labels`) names classes.
    pub task: Option<Task>,
    /// The class labels in the model's order; default: those the ONNX file stores.
    pub labels: Option<Vec<String>>,
    /// Default: `./<name>`.
    pub out: Option<PathBuf>,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct InitReport {
    pub out: PathBuf,
    pub card: ModelCard,
    /// Rows of the probe batch the written directory answered.
    pub probe_rows: usize,
}

/// Rows run through the model per call while measuring the training data.
const CHUNK: usize = 512;

pub fn init(opts: &InitOptions) -> Result<InitReport, InitError> {
    // Start-up would serve any version, but an upload keeps it under its name: refuse
    // here what `vigil models check` would flag, before any work.
    if !vigil_model::versions::is_version_name(&opts.version) {
        return Err(InitError::BadVersion(opts.version.clone()));
    }
    let onnx = vigil_model::read_model_file(&opts.onnx, vigil_model::MAX_ONNX_BYTES).map_err(
        |source| InitError::Read {
            path: opts.onnx.clone(),
            source,
        },
    )?;
    let summary = describe(&onnx).map_err(InitError::Onnx)?;
    let input = single_float_input(&summary)?;
    let labels = opts.labels.clone().or_else(|| summary.labels.clone());
    let task = opts.task.unwrap_or(if labels.is_some() {
        Task::Classification
    } else {
        Task::Regression
    });
    if let (Some(given), Some(stored)) = (&opts.labels, &summary.labels)
        && is_reordering(given, stored)
    {
        return Err(InitError::Mismatch(format!(
            "--labels {} are the class labels the ONNX file stores in another order ({}): labels go in the model's class order; pass them in that order, or leave --labels out",
            given.join(","),
            stored.join(",")
        )));
    }
    let labels = match task {
        Task::Classification => labels.ok_or_else(|| {
            InitError::Mismatch(
                "the model does not name its classes: pass --labels a,b,… in the model's class order \
                 (or --task regression for a model that predicts a value)"
                    .into(),
            )
        })?,
        Task::Regression => match labels {
            Some(labels) => {
                return Err(InitError::Mismatch(format!(
                    "--task regression, but {} names classes ({}): a classifier's card is made \
                     with --task classification",
                    if opts.labels.is_some() { "--labels" } else { "the model" },
                    labels.join(", ")
                )));
            }
            None => Vec::new(),
        },
    };
    let data = data::read(&opts.data, opts.label_column.as_deref())?;
    if let Some(width) = input.dim(1)
        && width != data.features.len()
    {
        return Err(InitError::Mismatch(format!(
            "{} has {} feature columns ({}), but the model's input `{}` takes {width}{}",
            data.path.display(),
            data.features.len(),
            data.features.join(", "),
            input.name,
            if opts.label_column.is_none() {
                " (is one of them the label? name it with --label-column)"
            } else {
                ""
            }
        )));
    }
    if data.rows < MIN_ROWS {
        return Err(InitError::TooFewRows {
            path: data.path.clone(),
            rows: data.rows,
            needed: MIN_ROWS,
        });
    }
    let runtime = match task {
        Task::Classification => OnnxModel::load(&onnx, data.features.len(), labels.len()),
        Task::Regression => OnnxModel::load_regressor(&onnx, data.features.len()),
    }
    .map_err(|e| {
        if opts.task.is_none() && task == Task::Regression && e.contains("no output of shape") {
            // Taken for a regressor only because the file names no classes: a
            // classifier exported without its labels (PyTorch, skl2onnx without
            // ZipMap) lands here, and "no value output" alone would mislead.
            InitError::Mismatch(format!(
                "the model names no classes, so it was read as a regressor, and as one it does not load ({e}): \
                 for a classifier pass --labels a,b,… in the model's class order"
            ))
        } else if input.dim(1).is_none() {
            InitError::Onnx(format!(
                "its input `{}` leaves the number of features open, and with the {} columns of {} it does not load: {e}",
                input.name,
                data.features.len(),
                data.path.display()
            ))
        } else {
            InitError::Onnx(e)
        }
    })?;
    let predicted = predict_all(&runtime, &data)?;
    let baseline = data
        .targets
        .as_ref()
        .map(|targets| baseline(targets, &predicted, &labels, &data, opts))
        .transpose()?;
    let (prediction_edges, prediction_expected) = match &predicted {
        Predicted::Classes(classes) => {
            (Vec::new(), reference::prediction_mix(classes, labels.len()))
        }
        Predicted::Values(values) => reference::value_bins(values),
    };
    let name = opts
        .name
        .clone()
        .unwrap_or_else(|| default_name(&opts.onnx));
    let card = ModelCard {
        name,
        version: opts.version.clone(),
        task,
        description: String::new(),
        drift: DriftReference {
            prediction_expected,
            prediction_edges,
            features: reference::drift_references(&data),
        },
        labels,
        defect_labels: Vec::new(),
        features: reference::features(&data),
        baseline,
    };
    let text = card_text(&card, &data)?;
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(&card.name));
    // The checks start-up and an upload run, on exactly what is about to be written
    // (their messages name `<out>/model.toml`, the card's place once written).
    let loaded = LoadedModel::from_parts(&onnx, &text, out.display().to_string())
        .map_err(|e| InitError::Check(e.to_string()))?;
    let probe_rows = probe(&loaded)
        .map_err(|e| InitError::Check(e.to_string()))?
        .rows;
    write_dir(&out, &onnx, &text)?;
    Ok(InitReport {
        out,
        card,
        probe_rows,
    })
}

/// The one input vigil feeds: `[N, F]` float.
fn single_float_input(summary: &Summary) -> Result<&Port, InitError> {
    let input = match summary.inputs.as_slice() {
        [one] => one,
        [] => return Err(InitError::Onnx("the model has no input".into())),
        many => {
            let names: Vec<&str> = many.iter().map(|p| p.name.as_str()).collect();
            return Err(InitError::Onnx(format!(
                "the model has {} inputs ({}); vigil feeds one [N, features] float tensor: export with a single input (skl2onnx: to_onnx(model, X[:1].astype(numpy.float32)))",
                many.len(),
                names.join(", ")
            )));
        }
    };
    if input.datum != "float" {
        return Err(InitError::Onnx(format!(
            "the model's input `{}` is {}; vigil feeds float (32-bit) features: export with float32 data",
            input.name, input.datum
        )));
    }
    if input.shape.as_ref().is_some_and(|s| s.len() != 2) {
        return Err(InitError::Onnx(format!(
            "the model's input `{}` has shape [{}]; vigil feeds [N, features]",
            input.name,
            input.shape.as_deref().unwrap_or_default().join(", ")
        )));
    }
    Ok(input)
}

/// What the model answered for every training row.
enum Predicted {
    Classes(Vec<usize>),
    Values(Vec<f64>),
}

/// Runs the model on every row of the training data.
fn predict_all(runtime: &OnnxModel, data: &TrainingData) -> Result<Predicted, InitError> {
    let width = data.features.len();
    let mut outputs = Vec::with_capacity(data.rows);
    for (chunk, values) in data.values.chunks(CHUNK * width).enumerate() {
        let rows = values.len() / width;
        let out = runtime.infer(values, rows).map_err(|e| {
            InitError::Mismatch(format!(
                "the model cannot run on the rows {}–{} of {}: {e}{}",
                chunk * CHUNK + 1,
                chunk * CHUNK + rows,
                data.path.display(),
                if values.iter().any(|v| v.is_nan()) {
                    " (the data has missing cells: does the model impute them?)"
                } else {
                    ""
                }
            ))
        })?;
        outputs.extend(out);
    }
    Ok(match runtime.head() {
        Head::Probabilities { .. } => Predicted::Classes(
            outputs
                .iter()
                .filter_map(|o| match o {
                    Output::Class(p) => Some(p.class_index),
                    Output::Value(_) => None,
                })
                .collect(),
        ),
        Head::Value => Predicted::Values(
            outputs
                .iter()
                .filter_map(|o| match o {
                    Output::Value(v) => Some(f64::from(*v)),
                    Output::Class(_) => None,
                })
                .collect(),
        ),
    })
}

/// The model's quality on the labelled rows: a classifier's accuracy (a target matches
/// a label as text, or as the same number: `1.0` is label `1`), a regressor's mean
/// absolute and root mean squared error.
fn baseline(
    targets: &[String],
    predicted: &Predicted,
    labels: &[String],
    data: &TrainingData,
    opts: &InitOptions,
) -> Result<Baseline, InitError> {
    let column = opts.label_column.as_deref().unwrap_or_default();
    let rows = targets.len() as u64;
    let round = |x: f64| (x * 1e6).round() / 1e6;
    let (accuracy, mae, rmse) = match predicted {
        Predicted::Classes(predicted) => {
            let same = |t: &str, l: &str| {
                t == l || matches!((t.parse::<f64>(), l.parse::<f64>()), (Ok(a), Ok(b)) if a == b)
            };
            let mut correct = 0u64;
            for (row, (t, &p)) in targets.iter().zip(predicted).enumerate() {
                let truth = labels.iter().position(|l| same(t, l)).ok_or_else(|| {
                    InitError::Mismatch(format!(
                        "{}, data row {}: the label {t:?} in column {column:?} is not one of the model's labels ({})",
                        data.path.display(),
                        row + 1,
                        labels.join(", ")
                    ))
                })?;
                correct += u64::from(truth == p);
            }
            (Some(round(correct as f64 / rows as f64)), None, None)
        }
        Predicted::Values(predicted) => {
            let (mut abs, mut squared) = (0.0, 0.0);
            for (row, (t, &p)) in targets.iter().zip(predicted).enumerate() {
                let truth = t.trim().parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| {
                    InitError::Mismatch(format!(
                        "{}, data row {}: the target {t:?} in column {column:?} is not a number (a regressor's targets are)",
                        data.path.display(),
                        row + 1
                    ))
                })?;
                abs += (p - truth).abs();
                squared += (p - truth) * (p - truth);
            }
            let n = rows as f64;
            (
                None,
                Some(round(abs / n)),
                Some(round((squared / n).sqrt())),
            )
        }
    };
    Ok(Baseline {
        accuracy,
        mae,
        rmse,
        rows,
        data: data
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    })
}

/// A model name from the file: its stem, or its directory's name for `model.onnx`,
/// with anything a name cannot hold replaced by `-`.
fn default_name(onnx: &Path) -> String {
    let stem = onnx.file_stem().map(|s| s.to_string_lossy().into_owned());
    let raw = match stem.as_deref() {
        Some("model") | None => onnx
            .canonicalize()
            .ok()
            .and_then(|p| {
                p.parent()?
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "model".into()),
        Some(s) => s.to_owned(),
    };
    let name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if name.is_empty() {
        "model".into()
    } else {
        name
    }
}

fn card_text(card: &ModelCard, data: &TrainingData) -> Result<String, InitError> {
    let body = toml::to_string(card).map_err(|e| InitError::Check(e.to_string()))?;
    Ok(format!(
        "# Written by `vigil models init` from {} ({} rows).\n\
         # Feature ranges: the training range with a {}% margin on each side (not\n\
         # below 0 for a feature never negative). Drift reference: the training\n\
         # deciles. prediction_expected: the model's label mix on that data (a\n\
         # regressor's: the share of its predictions in each prediction_edges bin,\n\
         # the deciles of what it predicted).\n\
         # Edit freely: `vigil models check DIR` checks the result.\n\n{body}",
        data.path.display(),
        data.rows,
        (reference::RANGE_MARGIN * 100.0) as u32
    ))
}

/// Writes the directory beside `out`, then renames it into place.
fn write_dir(out: &Path, onnx: &[u8], card: &str) -> Result<(), InitError> {
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| InitError::Write { path, source }
    };
    let exists = out.exists();
    if exists
        && std::fs::read_dir(out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(InitError::OutExists {
            out: out.to_owned(),
        });
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(write_err(parent))?;
    let file_name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let partial = parent.join(format!(".{file_name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    let result = (|| {
        std::fs::create_dir(&partial).map_err(write_err(&partial))?;
        std::fs::write(partial.join("model.onnx"), onnx).map_err(write_err(&partial))?;
        std::fs::write(partial.join("model.toml"), card).map_err(write_err(&partial))?;
        if exists {
            std::fs::remove_dir(out).map_err(write_err(out))?;
        }
        std::fs::rename(&partial, out).map_err(write_err(out))
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    result
}

/// Whether `given` holds exactly `stored`'s labels, in another order: every answer
/// would carry another class's name. (Other names for the classes, such as `ok,defect`
/// for a model that stores `0,1`, are the point of `--labels` and pass.)
pub(crate) fn is_reordering(given: &[String], stored: &[String]) -> bool {
    if given == stored || given.len() != stored.len() {
        return false;
    }
    let (mut a, mut b) = (given.to_vec(), stored.to_vec());
    a.sort();
    b.sort();
    a == b
}
