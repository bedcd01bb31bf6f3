//! `vigil models init` and `vigil models check` through the binary, on the model zoo
//! (scripts/zoo: scikit-learn pipelines exported with skl2onnx's defaults): every
//! classifier and regressor becomes a directory that checks clean and that a running
//! `vigil up` serves with onnxruntime's answers, measures and stores; bad data and
//! bad models are refused with a clear message, exit status 64 and nothing written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use vigil_test_support::http::{get_json, get_text, post_json, wait_for_metric_at};
use vigil_test_support::prometheus::sample;
use vigil_test_support::{TempDir, Vigil, eventually, vigil_binary, zoo};

fn vigil(args: &[&str]) -> Output {
    Command::new(vigil_binary()).args(args).output().unwrap()
}

/// `vigil models init` on a zoo model's directory (its `model.onnx` and `train.csv`,
/// label column `target`) into `out`, with `extra` arguments.
fn init_from_zoo(dir: &Path, out: &Path, extra: &[&str]) -> Output {
    init(&dir.join("model.onnx"), &dir.join("train.csv"), out, extra)
}

/// `vigil models init` on `onnx` and `data` (label column `target`) into `out`, with
/// `extra` arguments.
fn init(onnx: &Path, data: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "models",
        "init",
        "--onnx",
        onnx.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--label-column",
        "target",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    vigil(&args)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The zoo's models: (name, its directory, expected.json).
fn zoo_models(zoo: &Path) -> Vec<(String, PathBuf, Value)> {
    let mut out: Vec<_> = std::fs::read_dir(zoo)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let expected: Value =
                serde_json::from_slice(&std::fs::read(e.path().join("expected.json")).ok()?)
                    .ok()?;
            Some((
                e.file_name().to_string_lossy().into_owned(),
                e.path(),
                expected,
            ))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn is_regressor(expected: &Value) -> bool {
    expected["task"] == "regression"
}

#[tokio::test]
async fn every_zoo_model_is_initialised_checked_and_served_as_onnxruntime_answers() {
    let zoo = zoo();
    let models = TempDir::new("models-init");
    let cases = zoo_models(&zoo);
    let regressors = cases.iter().filter(|c| is_regressor(&c.2)).count();
    assert!(
        cases.len() - regressors >= 10 && regressors >= 3,
        "{} models, {regressors} regressors",
        cases.len()
    );
    for (name, dir, expected) in &cases {
        let out = models.path().join(name);
        let run = init_from_zoo(dir, &out, &["--name", name]);
        assert!(run.status.success(), "{name}: {}", text(&run.stderr));
        let card = std::fs::read_to_string(out.join("model.toml")).unwrap();
        assert!(
            card.contains("[baseline]") && card.contains("[[drift.features]]"),
            "{card}"
        );
        if is_regressor(expected) {
            for key in [
                "task = \"regression\"",
                "prediction_edges = [",
                "mae = ",
                "rmse = ",
            ] {
                assert!(card.contains(key), "{name}: no {key} in\n{card}");
            }
            // A regressor has neither labels nor defect labels, not even empty ones.
            assert!(!card.contains("labels ="), "{name}: {card}");
        }
        let check = vigil(&["models", "check", out.to_str().unwrap()]);
        let report = text(&check.stdout);
        assert!(check.status.success(), "{name}: {report}");
        assert!(report.contains("ok: start-up"), "{report}");
    }

    let server = Vigil::start_command(
        "up",
        &["--models-dir", models.path().to_str().unwrap()],
        &[],
    );
    let inference = format!("http://{}", server.address_of("inference"));
    let collector = format!("http://{}", server.address_of("collector"));
    let http = reqwest::Client::new();
    let mut classifiers_sent = Vec::new();
    for (name, _, expected) in &cases {
        let regressor = is_regressor(expected);
        let answers = if regressor { "values" } else { "probabilities" };
        // Rows with a missing cell cannot be sent: JSON has no NaN, and vigil refuses
        // non-finite features.
        let (rows, want): (Vec<&Value>, Vec<&Value>) = expected["rows"]
            .as_array()
            .unwrap()
            .iter()
            .zip(expected[answers].as_array().unwrap())
            .filter(|(r, _)| r.as_array().unwrap().iter().all(Value::is_number))
            .unzip();
        assert!(rows.len() >= 10, "{name}: {} complete rows", rows.len());
        let answer = http
            .post(format!("{inference}/models/{name}/predict"))
            .json(&json!({ "instances": rows }))
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let body: Value = answer.json().await.unwrap();
        assert_eq!(status, 200, "{name}: {body}");
        let predictions = body["predictions"].as_array().unwrap();
        assert_eq!(predictions.len(), rows.len());
        for (i, (got, want)) in predictions.iter().zip(&want).enumerate() {
            if regressor {
                // A regressor answers only its value.
                assert_eq!(got.as_object().unwrap().len(), 1, "{name}: {got}");
                let (a, b) = (got["value"].as_f64().unwrap(), want.as_f64().unwrap());
                assert!(
                    (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                    "{name} row {i}: {a} against {b}"
                );
                continue;
            }
            // Float error in an ensemble (1.0000001) is clamped: a probability never
            // leaves [0, 1], or the collector would refuse the record.
            let confidence = got["confidence"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&confidence), "{name} row {i}: {got}");
            let got = got["probabilities"].as_array().unwrap();
            for (a, b) in got.iter().zip(want.as_array().unwrap()) {
                let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
                assert!(
                    (a - b).abs() <= 1e-5,
                    "{name} row {i}: {got:?} against {want}"
                );
            }
        }
        if !regressor {
            classifiers_sent.push((name, rows.len()));
        }
        if regressor {
            let values: Vec<f64> = predictions
                .iter()
                .map(|p| p["value"].as_f64().unwrap())
                .collect();
            regressor_is_measured_and_stored(&inference, &collector, name, &values).await;
            // The Open Inference Protocol answers the same values, as `value` (asked after
            // the counts above were checked: it predicts again).
            let width = rows[0].as_array().unwrap().len();
            let v2 = post_json(
                &http,
                format!("{inference}/v2/models/{name}/infer"),
                &json!({"inputs": [{"name": "input", "shape": [rows.len(), width],
                    "datatype": "FP32", "data": rows}]}),
            )
            .await;
            assert_eq!(v2["outputs"][0]["name"], "value", "{v2}");
            assert_eq!(v2["outputs"][0]["shape"], json!([rows.len()]), "{v2}");
            assert_eq!(v2["outputs"][0]["data"], json!(values), "{name}: {v2}");
        }
    }
    // Every classifier's answers are stored, one record a row: none refused.
    for (name, rows) in classifiers_sent {
        wait_for_metric_at(
            &format!("{collector}/metrics"),
            &format!("logging_predictions_total{{model=\"{name}\"}}"),
            rows as f64,
        )
        .await;
    }
    let metrics = get_text(format!("{inference}/metrics")).await;
    assert_eq!(
        vigil_test_support::try_sample(
            &metrics,
            "prediction_log_records_total{outcome=\"dropped\"}"
        )
        .unwrap_or(0.0),
        0.0
    );
}

/// A regressor's answers in `prediction_value`, and stored with their values: the
/// collector's `/predictions` gives them back, `/stats` their mean and quantiles.
async fn regressor_is_measured_and_stored(
    inference: &str,
    collector: &str,
    name: &str,
    values: &[f64],
) {
    let http = reqwest::Client::new();
    let n = values.len() as f64;
    let info = get_json(&http, format!("{inference}/models/{name}")).await;
    assert_eq!(info["task"], "regression", "{info}");
    assert_eq!(info["labels"], json!([]), "{info}");
    let metrics = get_text(format!("{inference}/metrics")).await;
    assert_eq!(
        sample(
            &metrics,
            &format!("prediction_value_count{{model=\"{name}\"}}")
        ),
        n
    );
    let sum = sample(
        &metrics,
        &format!("prediction_value_sum{{model=\"{name}\"}}"),
    );
    let mean = values.iter().sum::<f64>() / n;
    assert!(
        (sum / n - mean).abs() <= 1e-3 * mean.abs().max(1.0),
        "{sum} / {n} against {mean}"
    );
    // Buckets from the card's value bins, not a default layout.
    let buckets = metrics
        .lines()
        .filter(|l| {
            l.starts_with("prediction_value_bucket{") && l.contains(&format!("model=\"{name}\""))
        })
        .count();
    assert!(buckets > 2, "{buckets} buckets");
    assert_eq!(
        sample(
            &metrics,
            &format!("prediction_value_bucket{{le=\"+Inf\",model=\"{name}\"}}")
        ),
        n
    );
    assert!(
        metrics.contains(&format!("model_prediction_drift_psi{{model=\"{name}\"}}")),
        "no prediction drift for {name}"
    );
    assert!(
        !metrics.contains(&format!(
            "prediction_confidence_count{{model=\"{name}\"}} {n}"
        )),
        "a regressor has no confidence"
    );

    wait_for_metric_at(
        &format!("{collector}/metrics"),
        &format!("logging_predictions_total{{model=\"{name}\"}}"),
        n,
    )
    .await;
    let page = get_json(
        &http,
        format!("{collector}/predictions?model={name}&limit=1000"),
    )
    .await;
    let stored: Vec<f64> = page["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert!(r["label"].is_null() && r["confidence"].is_null(), "{r}");
            r["value"].as_f64().unwrap()
        })
        .collect();
    // The answer prints the f32 value shortest; the record keeps it exactly, as f64.
    let mut sent: Vec<f32> = values.iter().map(|v| *v as f32).collect();
    let mut stored: Vec<f32> = stored.iter().map(|v| *v as f32).collect();
    stored.sort_by(f32::total_cmp);
    sent.sort_by(f32::total_cmp);
    assert_eq!(
        stored, sent,
        "{name}: the stored values are the answered ones"
    );
    let stats = get_json(&http, format!("{collector}/stats?window=1h")).await;
    let model = stats["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == name)
        .unwrap_or_else(|| panic!("{name} not in {stats}"));
    let v = &model["value"];
    let get = |key: &str| v[key].as_f64().map(|x| x as f32);
    assert!(
        (v["mean"].as_f64().unwrap() - mean).abs() <= 1e-6 * mean.abs().max(1.0),
        "{v}"
    );
    let rank = |q: f64| sent[((q * n).ceil() as usize).clamp(1, sent.len()) - 1];
    assert_eq!(get("min"), Some(sent[0]), "{v}");
    assert_eq!(get("p50"), Some(rank(0.5)), "{v}");
    assert_eq!(get("p90"), Some(rank(0.9)), "{v}");
    assert_eq!(get("max"), Some(sent[sent.len() - 1]), "{v}");
}

/// A CSV made from a zoo model's training data, changed by `edit`.
fn csv_from(zoo: &Path, model: &str, dir: &Path, edit: impl Fn(&str) -> String) -> PathBuf {
    let text = std::fs::read_to_string(zoo.join(model).join("train.csv")).unwrap();
    let path = dir.join(format!("{model}-{}.csv", vigil_test_support::unique()));
    std::fs::write(&path, edit(&text)).unwrap();
    path
}

/// Regression's own refusals: a task the model does not have, targets that are not
/// numbers.
#[test]
fn init_refuses_a_task_the_model_does_not_have_and_targets_that_are_not_values() {
    let zoo = zoo();
    let tmp = TempDir::new("models-init-task");
    let path = |p: PathBuf| p.to_str().unwrap().to_owned();
    let forest = zoo.join("random_forest");
    let linear = zoo.join("linear_regression");
    let word_target = csv_from(&zoo, "linear_regression", tmp.path(), |t| {
        let mut lines: Vec<String> = t.lines().map(str::to_owned).collect();
        let last = lines[3].rfind(',').unwrap();
        lines[3].replace_range(last + 1.., "high");
        lines.join("\n") + "\n"
    });
    let cases: Vec<(&str, Vec<String>, &[&str])> = vec![
        (
            "a classifier as a regressor",
            vec![
                path(forest.join("model.onnx")),
                path(forest.join("train.csv")),
                "--task".into(),
                "regression".into(),
            ],
            &["--task regression, but the model names classes"],
        ),
        (
            "a regressor as a classifier",
            vec![
                path(linear.join("model.onnx")),
                path(linear.join("train.csv")),
                "--task".into(),
                "classification".into(),
            ],
            &["does not name its classes", "--task regression"],
        ),
        (
            "a classifier whose file names no classes, without --labels",
            vec![
                path(zoo.join("bad/open_width.onnx")),
                path(forest.join("train.csv")),
            ],
            &["names no classes", "pass --labels"],
        ),
        (
            "a version an upload could not keep",
            vec![
                path(forest.join("model.onnx")),
                path(forest.join("train.csv")),
                "--version".into(),
                "../x".into(),
            ],
            &["--version \"../x\"", "state.toml"],
        ),
        (
            "a word among a regressor's targets",
            vec![path(linear.join("model.onnx")), path(word_target)],
            &["data row 3", "\"high\"", "is not a number"],
        ),
    ];
    for (what, args, needles) in cases {
        let out = tmp.path().join("out").join("model");
        let mut argv = vec!["models", "init", "--onnx", &args[0], "--data", &args[1]];
        argv.extend(args[2..].iter().map(String::as_str));
        argv.extend(["--label-column", "target", "--out", out.to_str().unwrap()]);
        let run = vigil(&argv);
        let stderr = text(&run.stderr);
        assert_eq!(run.status.code(), Some(64), "{what}: {stderr}");
        for n in needles {
            assert!(stderr.contains(n), "{what}: {stderr:?} should say {n:?}");
        }
        assert!(!out.exists(), "{what}: {} was written", out.display());
    }
}

#[test]
fn init_refuses_bad_data_and_bad_models_clearly_and_writes_nothing() {
    let zoo = zoo();
    let tmp = TempDir::new("models-init-bad");
    let good_onnx = zoo.join("random_forest/model.onnx");
    let good_csv = zoo.join("random_forest/train.csv");
    let drop_first_column = |t: &str| {
        t.lines()
            .map(|l| l.split_once(',').unwrap().1.to_owned() + "\n")
            .collect::<String>()
    };
    let text_cell = |t: &str| {
        t.replacen("\n5.", "\nfive,", 1)
            .replacen("five,", "five", 1)
    };
    let edit_cell = |line: usize, column: usize, to: &'static str| {
        move |t: &str| {
            let mut lines: Vec<String> = t.lines().map(str::to_owned).collect();
            let mut cells: Vec<&str> = lines[line].split(',').collect();
            cells[column] = to;
            lines[line] = cells.join(",");
            lines.join("\n") + "\n"
        }
    };
    let cases: Vec<(&str, PathBuf, PathBuf, &[&str])> = vec![
        (
            "a NaN cell",
            good_onnx.clone(),
            csv_from(&zoo, "random_forest", tmp.path(), edit_cell(2, 1, "NaN")),
            &["line 3", "\"NaN\" is not a finite"],
        ),
        (
            "a cell beyond f32",
            good_onnx.clone(),
            csv_from(&zoo, "random_forest", tmp.path(), edit_cell(5, 0, "1e308")),
            &["line 6", "\"1e308\" is not a finite"],
        ),
        (
            "a column without a name",
            good_onnx.clone(),
            csv_from(&zoo, "random_forest", tmp.path(), edit_cell(0, 1, "")),
            &["column 2 has no name"],
        ),
        (
            "a missing column",
            good_onnx.clone(),
            csv_from(&zoo, "random_forest", tmp.path(), drop_first_column),
            &["feature columns", "takes 4"],
        ),
        (
            "a text cell",
            good_onnx.clone(),
            csv_from(&zoo, "random_forest", tmp.path(), text_cell),
            &["is not a number", "five"],
        ),
        (
            "an empty file",
            good_onnx.clone(),
            csv_from(&zoo, "random_forest", tmp.path(), |_| String::new()),
            &["empty"],
        ),
        (
            "ten rows",
            good_onnx.clone(),
            csv_from(&zoo, "random_forest", tmp.path(), |t| {
                t.lines().take(11).map(|l| format!("{l}\n")).collect()
            }),
            &["10 data rows", "at least 100"],
        ),
        (
            "two inputs",
            zoo.join("bad/two_inputs.onnx"),
            good_csv.clone(),
            &["2 inputs", "a, b"],
        ),
        (
            "a string input",
            zoo.join("bad/string_input.onnx"),
            good_csv.clone(),
            &["`s` is string"],
        ),
        (
            "an unsupported operator",
            zoo.join("bad/unsupported_op.onnx"),
            good_csv.clone(),
            &["unsupported ONNX operator `FancyOp`"],
        ),
        (
            "a width only other data fits",
            zoo.join("bad/open_width.onnx"),
            zoo.join("logistic_standard_scaler/train.csv"),
            &["leaves the number of features open", "30 columns"],
        ),
    ];
    for (what, onnx, csv, needles) in cases {
        let out = tmp.path().join("out").join("model");
        let extra: &[&str] = if onnx.starts_with(zoo.join("bad")) {
            &["--labels", "no,yes"]
        } else {
            &[]
        };
        let run = init(&onnx, &csv, &out, extra);
        let stderr = text(&run.stderr);
        assert_eq!(run.status.code(), Some(64), "{what}: {stderr}");
        assert!(
            stderr.starts_with("vigil models init: "),
            "{what}: {stderr}"
        );
        for n in needles {
            assert!(stderr.contains(n), "{what}: {stderr:?} should say {n:?}");
        }
        assert!(!out.exists(), "{what}: {} was written", out.display());
        let leftovers: Vec<_> = std::fs::read_dir(tmp.path().join("out"))
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(leftovers.is_empty(), "{what}: left {leftovers:?}");
    }
}

#[test]
fn check_names_each_problem_with_its_fix() {
    let zoo = zoo();
    let tmp = TempDir::new("models-check");
    let dir = tmp.path().join("m");
    let run = init_from_zoo(&zoo.join("decision_tree"), &dir, &[]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let report = text(&vigil(&["models", "check", dir.to_str().unwrap()]).stdout);
    for needle in [
        "input:  X float",
        "TreeEnsembleClassifier",
        "ZipMap",
        "probe:",
    ] {
        assert!(report.contains(needle), "{report}");
    }

    // A version start-up serves but an upload cannot keep: named, with its fix.
    let card = std::fs::read_to_string(dir.join("model.toml")).unwrap();
    let version = card.lines().find(|l| l.starts_with("version = ")).unwrap();
    std::fs::write(
        dir.join("model.toml"),
        card.replacen(version, "version = \"state.toml\"", 1),
    )
    .unwrap();
    let run = vigil(&["models", "check", dir.to_str().unwrap()]);
    let report = text(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{report}");
    assert!(report.contains("cannot be uploaded"), "{report}");
    // It would load (start-up serves it): the summary does not say it would not.
    assert!(
        report
            .trim_end()
            .ends_with("1 problem(s): this directory is not ready to serve"),
        "{report}"
    );

    // The model's own labels in another order: every answer would be mislabelled.
    std::fs::write(
        dir.join("model.toml"),
        card.replace(
            "labels = [\"0\", \"1\", \"2\"]",
            "labels = [\"1\", \"0\", \"2\"]",
        ),
    )
    .unwrap();
    let run = vigil(&["models", "check", dir.to_str().unwrap()]);
    let report = text(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{report}");
    assert!(report.contains("in another order"), "{report}");
    let reordered = init_from_zoo(
        &zoo.join("decision_tree"),
        &tmp.path().join("reordered"),
        &["--labels", "2,1,0"],
    );
    assert_eq!(
        reordered.status.code(),
        Some(64),
        "{}",
        text(&reordered.stderr)
    );
    assert!(
        text(&reordered.stderr).contains("in another order"),
        "{}",
        text(&reordered.stderr)
    );
    assert!(!tmp.path().join("reordered").exists());

    // One label too many: the card and the model disagree.
    std::fs::write(
        dir.join("model.toml"),
        card.replace(
            "labels = [\"0\", \"1\", \"2\"]",
            "labels = [\"0\", \"1\", \"2\", \"3\"]",
        )
        .replace("prediction_expected = [", "prediction_expected = [0.0, "),
    )
    .unwrap();
    let run = vigil(&["models", "check", dir.to_str().unwrap()]);
    let report = text(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{report}");
    assert!(
        report.contains("problem: ") && report.contains("[N, 4]"),
        "{report}"
    );
    assert!(
        report.contains("fix: the card's labels must match"),
        "{report}"
    );

    std::fs::remove_file(dir.join("model.toml")).unwrap();
    let run = vigil(&["models", "check", dir.to_str().unwrap()]);
    let report = text(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{report}");
    assert!(
        report.contains("model.toml") && report.contains("fix: `vigil models init"),
        "{report}"
    );
}

/// A report that cannot be written whole (a full disk behind `>`) fails the check: it
/// passed with the report cut off.
#[test]
fn a_check_whose_report_cannot_be_written_fails() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/defect-detector");
    let out = Command::new(vigil_binary())
        .args(["models", "check"])
        .arg(&model)
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot write the report"),
        "{}",
        text(&out.stderr)
    );
}

/// A model whose directory changes task at a SIGHUP rescan (a classifier replaced by a
/// regressor of the same name, then back) keeps only the histogram of the task it has:
/// `prediction_confidence` and the class series go with the classifier,
/// `prediction_value` with the regressor.
#[tokio::test]
async fn a_task_change_at_a_rescan_leaves_the_other_tasks_series_behind() {
    let zoo = zoo();
    let models = TempDir::new("task-change");
    let dir = models.path().join("m");
    let make_m = |from: &str, version: &str| {
        let _ = std::fs::remove_dir_all(&dir);
        let out = init_from_zoo(
            &zoo.join(from),
            &dir,
            &["--name", "m", "--version", version],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
    };
    make_m("logistic_standard_scaler", "1");
    let server = Vigil::start(&["--models-dir", models.path().to_str().unwrap()], &[]);
    let http = reqwest::Client::new();
    let series = |metrics: &str, family: &str| {
        metrics
            .lines()
            .any(|l| l.starts_with(family) && l.contains("model=\"m\""))
    };
    // Waits for `m` to serve `task`, then answers whether each family has series for it.
    let after_rescan = |task: &'static str| {
        let (http, server) = (&http, &server);
        async move {
            server.signal("HUP");
            eventually(std::time::Duration::from_secs(20), async || {
                let info = get_json(http, server.url("/models/m")).await;
                if info["task"] == task {
                    Ok(())
                } else {
                    Err(info.to_string())
                }
            })
            .await;
            get_text(server.url("/metrics")).await
        }
    };
    let m = get_text(server.url("/metrics")).await;
    assert!(series(&m, "prediction_confidence_count") && series(&m, "predictions_by_class_total"));
    assert!(!series(&m, "prediction_value_count"));

    make_m("linear_regression", "2");
    let m = after_rescan("regression").await;
    assert!(series(&m, "prediction_value_count"), "{m}");
    assert!(!series(&m, "prediction_confidence_count"), "{m}");
    assert!(!series(&m, "predictions_by_class_total"), "{m}");

    make_m("logistic_standard_scaler", "3");
    let m = after_rescan("classification").await;
    assert!(series(&m, "prediction_confidence_count"), "{m}");
    assert!(!series(&m, "prediction_value_count"), "{m}");
    server.stop();
}
