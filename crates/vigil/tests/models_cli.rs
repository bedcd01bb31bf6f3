//! `vigil models init` and `vigil models check` through the binary, on the model zoo
//! (scripts/zoo: scikit-learn pipelines exported with skl2onnx's defaults): every
//! classifier becomes a directory that checks clean and that a running vigil serves
//! with onnxruntime's answers; bad data and bad models are refused with a clear
//! message, exit status 64 and nothing written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use vigil_test_support::{TempDir, Vigil, vigil_binary, zoo};

fn vigil(args: &[&str]) -> Output {
    Command::new(vigil_binary()).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The zoo's classifiers: (name, its directory, expected.json).
fn classifiers(zoo: &Path) -> Vec<(String, PathBuf, Value)> {
    let mut out: Vec<_> = std::fs::read_dir(zoo)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let expected: Value =
                serde_json::from_slice(&std::fs::read(e.path().join("expected.json")).ok()?)
                    .ok()?;
            (expected["task"] == "classification").then(|| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.path(),
                    expected,
                )
            })
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[tokio::test]
async fn every_zoo_classifier_is_initialised_checked_and_served_as_onnxruntime_answers() {
    let zoo = zoo();
    let models = TempDir::new("models-init");
    let cases = classifiers(&zoo);
    assert!(cases.len() >= 10, "{} classifiers", cases.len());
    for (name, dir, _) in &cases {
        let out = models.path().join(name);
        let run = vigil(&[
            "models",
            "init",
            "--onnx",
            dir.join("model.onnx").to_str().unwrap(),
            "--data",
            dir.join("train.csv").to_str().unwrap(),
            "--label-column",
            "target",
            "--name",
            name,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(run.status.success(), "{name}: {}", text(&run.stderr));
        let card = std::fs::read_to_string(out.join("model.toml")).unwrap();
        assert!(
            card.contains("[baseline]") && card.contains("[[drift.features]]"),
            "{card}"
        );
        let check = vigil(&["models", "check", out.to_str().unwrap()]);
        let report = text(&check.stdout);
        assert!(check.status.success(), "{name}: {report}");
        assert!(report.contains("ok: start-up"), "{report}");
    }

    let server = Vigil::start(&["--models-dir", models.path().to_str().unwrap()], &[]);
    let http = reqwest::Client::new();
    for (name, _, expected) in &cases {
        // Rows with a missing cell cannot be sent: JSON has no NaN, and vigil refuses
        // non-finite features.
        let (rows, want): (Vec<&Value>, Vec<&Value>) = expected["rows"]
            .as_array()
            .unwrap()
            .iter()
            .zip(expected["probabilities"].as_array().unwrap())
            .filter(|(r, _)| r.as_array().unwrap().iter().all(Value::is_number))
            .unzip();
        assert!(rows.len() >= 10, "{name}: {} complete rows", rows.len());
        let answer = http
            .post(server.url(&format!("/models/{name}/predict")))
            .json(&json!({ "instances": rows }))
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let body: Value = answer.json().await.unwrap();
        assert_eq!(status, 200, "{name}: {body}");
        for (i, (got, want)) in body["predictions"]
            .as_array()
            .unwrap()
            .iter()
            .zip(&want)
            .enumerate()
        {
            let got = got["probabilities"].as_array().unwrap();
            for (a, b) in got.iter().zip(want.as_array().unwrap()) {
                let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
                assert!(
                    (a - b).abs() <= 1e-5,
                    "{name} row {i}: {got:?} against {want}"
                );
            }
        }
    }
}

/// A CSV made from a zoo model's training data, changed by `edit`.
fn csv_from(zoo: &Path, model: &str, dir: &Path, edit: impl Fn(&str) -> String) -> PathBuf {
    let text = std::fs::read_to_string(zoo.join(model).join("train.csv")).unwrap();
    let path = dir.join(format!("{model}-{}.csv", vigil_test_support::unique()));
    std::fs::write(&path, edit(&text)).unwrap();
    path
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
    let cases: Vec<(&str, PathBuf, PathBuf, &[&str])> = vec![
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
        let mut args = vec![
            "models",
            "init",
            "--onnx",
            onnx.to_str().unwrap(),
            "--data",
            csv.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        if onnx.starts_with(zoo.join("bad")) {
            args.extend(["--labels", "no,yes", "--label-column", "target"]);
        } else {
            args.extend(["--label-column", "target"]);
        }
        let run = vigil(&args);
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
    let run = vigil(&[
        "models",
        "init",
        "--onnx",
        zoo.join("decision_tree/model.onnx").to_str().unwrap(),
        "--data",
        zoo.join("decision_tree/train.csv").to_str().unwrap(),
        "--label-column",
        "target",
        "--out",
        dir.to_str().unwrap(),
    ]);
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

    // One label too many: the card and the model disagree.
    let card = std::fs::read_to_string(dir.join("model.toml")).unwrap();
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
