//! Broken and hostile model directories (tests/hostile, see its README) are refused
//! with an error when they load or when the probe runs, never with a panic and never
//! served; a model file that is not a regular file is refused before it is read; a
//! panic of the runtime on some rows is a model error for their batch.

use std::path::{Path, PathBuf};

use vigil_model::{LoadError, LoadedModel, ModelError, ProbeError, probe};
use vigil_test_support::TempDir;

fn hostile(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/hostile")
        .join(name)
}

#[test]
fn a_value_written_by_two_nodes_is_refused() {
    let e = LoadedModel::from_dir(&hostile("dup_out")).err().unwrap();
    assert!(e.to_string().contains("two nodes write `A`"), "{e}");
}

#[test]
fn graphs_the_runtime_panics_on_are_refused_as_errors() {
    for name in ["string_raw_init", "cos_8g"] {
        let loaded = std::panic::catch_unwind(|| LoadedModel::from_dir(&hostile(name)));
        match loaded {
            Ok(Err(LoadError::Onnx { message, .. })) => {
                assert!(message.contains("runtime failed"), "{name}: {message}");
            }
            Ok(other) => panic!("{name}: {:?}", other.map(|m| m.card.name.clone())),
            Err(_) => panic!("{name}: loading panicked"),
        }
    }
}

/// tract panics on some inputs at run time (here a `Gather` past its end): that batch
/// is a model error, and the same model answers the next batch.
#[test]
fn a_panic_while_running_is_that_batch_s_model_error() {
    let model = LoadedModel::from_dir(&hostile("gather_oob")).unwrap();
    probe(&model).unwrap();
    // Without the guard the panic would reach this test and fail it.
    match model.runtime.infer(&[5.0, 0.0, 1.0, 0.0], 2) {
        Err(ModelError::Inference(message)) => {
            assert!(message.contains("the runtime panicked"), "{message}");
            assert!(message.contains("index out of bounds"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let outputs = model.runtime.infer(&[1.0, 0.0, 0.0, 1.0], 2).unwrap();
    assert_eq!(outputs.len(), 2);
}

#[test]
fn an_output_of_one_row_whatever_the_batch_fails_the_probe() {
    let model = LoadedModel::from_dir(&hostile("out_rows1")).unwrap();
    let e = probe(&model).unwrap_err();
    assert!(matches!(e, ProbeError::Model(_)), "{e}");
}

#[test]
fn rows_that_answer_each_other_fail_the_probe() {
    let model = LoadedModel::from_dir(&hostile("batch_dep")).unwrap();
    let e = probe(&model).unwrap_err();
    assert!(matches!(e, ProbeError::RowsInteract { .. }), "{e}");
}

#[test]
fn a_fifo_or_a_device_as_model_file_is_refused_unread() {
    let dir = TempDir::new("model-fifo");
    std::fs::copy(
        hostile("batch_dep").join("model.toml"),
        dir.path().join("model.toml"),
    )
    .unwrap();
    // A FIFO: reading it would wait for a writer for ever.
    let status = std::process::Command::new("mkfifo")
        .arg(dir.path().join("model.onnx"))
        .status()
        .unwrap();
    assert!(status.success());
    let e = within_10s(dir.path()).err().unwrap();
    assert!(e.to_string().contains("not a regular file"), "{e}");
    // A link to an endless device: reading it would take every byte of memory.
    std::fs::remove_file(dir.path().join("model.onnx")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("model.onnx")).unwrap();
    let e = within_10s(dir.path()).err().unwrap();
    assert!(e.to_string().contains("not a regular file"), "{e}");
}

/// Loads `dir` on a thread of its own, so that a read that never ends fails the test
/// instead of hanging it.
fn within_10s(dir: &Path) -> Result<LoadedModel, LoadError> {
    let (done, result) = std::sync::mpsc::channel();
    let dir = dir.to_owned();
    std::thread::spawn(move || {
        let _ = done.send(LoadedModel::from_dir(&dir));
    });
    result
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the load did not end within 10 s")
}

/// An ONNX file of 100,000 empty nodes (2 bytes each on the wire, ~170 decoded; at
/// 16 million, a 32 MiB upload, decoding aborted the whole service) is refused before
/// it is decoded.
#[test]
fn a_graph_of_countless_tiny_nodes_is_refused_before_it_is_decoded() {
    let nodes = [0x0a_u8, 0x00].repeat(100_000); // GraphProto.node (1), empty
    let mut onnx = vec![0x3a_u8]; // ModelProto.graph (7), length-delimited
    let mut len = nodes.len();
    while len >= 0x80 {
        onnx.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    onnx.push(len as u8);
    onnx.extend_from_slice(&nodes);
    let card = std::fs::read_to_string(hostile("batch_dep").join("model.toml")).unwrap();
    let e = LoadedModel::from_parts(&onnx, &card, "test".into())
        .err()
        .unwrap();
    assert!(e.to_string().contains("over 50000 nodes"), "{e}");
}
