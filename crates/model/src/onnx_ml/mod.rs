//! ONNX-ML: the operators scikit-learn pipelines are exported with (skl2onnx's
//! defaults) that tract does not load by itself, so users never re-export with
//! special options.
//!
//! - `ZipMap`, `Scaler`, `Imputer` and `Binarizer` are rewritten into standard ONNX
//!   operators before the graph is parsed ([`rewrite`]).
//! - `TreeEnsembleRegressor` ([`tree_regressor`]), `SVMClassifier` and `SVMRegressor`
//!   ([`svm`]) are operators of vigil's own, registered with tract's parser.
//! - `Normalizer`, `LinearClassifier`, `LinearRegressor`, `TreeEnsembleClassifier`,
//!   `ArrayFeatureExtractor` and `Cast` are tract's; tree ensembles are evaluated by
//!   vigil ([`trees`]: tract's evaluator slows down with the forest's size).
//!
//! A model with an operator nobody provides is refused at load, naming it.

mod budget;
mod describe;
mod rewrite;
mod svm;
mod tree_regressor;
mod trees;

use std::collections::{BTreeSet, HashSet};

pub use budget::MAX_NODES;
pub use describe::{Port, Summary, describe};

/// A parsed model, typed, with vigil's faster evaluators swapped in ([`trees`]):
/// what every caller optimises and runs.
pub fn into_typed(model: InferenceModel) -> Result<TypedModel, String> {
    let mut typed = model.into_typed().map_err(|e| format!("{e:#}"))?;
    trees::accelerate(&mut typed).map_err(|e| format!("{e:#}"))?;
    Ok(typed)
}

use tract_onnx::pb::{GraphProto, ModelProto};
use tract_onnx::prelude::*;

/// tract's ONNX parser with vigil's operators registered.
fn framework() -> tract_onnx::Onnx {
    let mut onnx = tract_onnx::onnx();
    onnx.op_register
        .insert("TreeEnsembleRegressor", tree_regressor::parse);
    onnx.op_register
        .insert("SVMClassifier", svm::parse_classifier);
    onnx.op_register
        .insert("SVMRegressor", svm::parse_regressor);
    onnx
}

/// Parses ONNX bytes into an inference model, with the ONNX-ML operators rewritten or
/// provided. Errors are one line for a person: what is wrong and, where it helps, why.
pub fn load(bytes: &[u8]) -> Result<InferenceModel, String> {
    budget::check(bytes)?;
    let onnx = framework();
    let mut reader = bytes;
    let mut proto: ModelProto = onnx
        .proto_model_for_read(&mut reader)
        .map_err(|e| format!("not an ONNX model: {e:#}"))?;
    let graph = proto.graph.as_mut().ok_or("the ONNX model has no graph")?;
    rewrite::apply(graph)?;
    let unsupported = unsupported_ops(graph, &onnx);
    if !unsupported.is_empty() {
        let names: Vec<String> = unsupported.iter().map(|op| format!("`{op}`")).collect();
        return Err(format!(
            "unsupported ONNX operator{} {}: neither vigil nor tract can run {}",
            if names.len() == 1 { "" } else { "s" },
            names.join(", "),
            if names.len() == 1 { "it" } else { "them" }
        ));
    }
    if let Some(name) = written_twice(graph) {
        return Err(format!(
            "two nodes write `{name}`: a value has one producer in ONNX (onnxruntime refuses \
             such a graph, and which one tract kept would decide the answer)"
        ));
    }
    onnx.model_for_proto_model(&proto)
        .map_err(|e| format!("{e:#}"))
}

/// A value that a node of `graph`, or of a graph its nodes hold (an `If`'s branches, a
/// `Loop`'s body), writes although something else already did: ONNX graphs are in
/// single-assignment form, and a subgraph sees (so may not write) its outer graphs'
/// values, as `onnx.checker` has it.
fn written_twice(graph: &GraphProto) -> Option<&str> {
    written_twice_in(graph, &mut Vec::new())
}

/// [`written_twice`] for a graph whose outer graphs have written `outer` so far (one
/// set a level: the depth is bounded by the wire-format check).
fn written_twice_in<'g>(
    graph: &'g GraphProto,
    outer: &mut Vec<HashSet<&'g str>>,
) -> Option<&'g str> {
    let scope: HashSet<&str> = graph
        .initializer
        .iter()
        .map(|t| t.name.as_str())
        .chain(graph.input.iter().map(|i| i.name.as_str()))
        .collect();
    outer.push(scope);
    let found = graph.node.iter().find_map(|node| {
        for attr in &node.attribute {
            for g in attr.g.iter().chain(&attr.graphs) {
                if let Some(name) = written_twice_in(g, outer) {
                    return Some(name);
                }
            }
        }
        node.output
            .iter()
            .map(String::as_str)
            // An empty name is an optional output left out.
            .filter(|name| !name.is_empty())
            .find(|name| {
                let seen = outer.iter().any(|scope| scope.contains(name));
                let written = outer.last_mut().is_some_and(|scope| scope.insert(name));
                seen || !written
            })
    });
    outer.pop();
    found
}

/// The operators of `graph` (and of the graphs its nodes hold, like `Scan`'s body)
/// that no parser is registered for.
fn unsupported_ops(graph: &GraphProto, onnx: &tract_onnx::Onnx) -> BTreeSet<String> {
    let mut missing = BTreeSet::new();
    for node in &graph.node {
        if !onnx.op_register.0.contains_key(&node.op_type) {
            missing.insert(node.op_type.clone());
        }
        for attr in &node.attribute {
            for g in attr.g.iter().chain(&attr.graphs) {
                missing.extend(unsupported_ops(g, onnx));
            }
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use tract_onnx::pb::{AttributeProto, NodeProto};

    use super::*;

    fn node(op: &str) -> NodeProto {
        NodeProto {
            op_type: op.to_owned(),
            ..NodeProto::default()
        }
    }

    #[test]
    fn unknown_operators_are_named_also_inside_subgraphs() {
        let body = GraphProto {
            node: vec![node("Relu"), node("InnerMystery")],
            ..GraphProto::default()
        };
        let mut scan = node("Scan");
        scan.attribute.push(AttributeProto {
            name: "body".to_owned(),
            g: Some(body),
            ..AttributeProto::default()
        });
        let graph = GraphProto {
            node: vec![node("MatMul"), node("FancyOp"), scan, node("SVMClassifier")],
            ..GraphProto::default()
        };
        let missing: Vec<String> = unsupported_ops(&graph, &framework()).into_iter().collect();
        assert_eq!(missing, ["FancyOp", "InnerMystery"]);
    }

    /// A node of `op` reading `inputs` and writing `outputs`.
    fn wired(op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
        NodeProto {
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: outputs.iter().map(|s| (*s).to_owned()).collect(),
            ..node(op)
        }
    }

    /// An `If` whose then-branch is `branch`.
    fn if_node(branch: GraphProto, outputs: &[&str]) -> NodeProto {
        let mut node = wired("If", &["cond"], outputs);
        node.attribute.push(AttributeProto {
            name: "then_branch".to_owned(),
            g: Some(branch),
            ..AttributeProto::default()
        });
        node
    }

    #[test]
    fn a_value_written_twice_is_found_in_subgraphs_and_against_outer_graphs() {
        let graph = |nodes| GraphProto {
            node: nodes,
            ..GraphProto::default()
        };
        // Twice inside a branch.
        let branch = graph(vec![
            wired("Relu", &["x"], &["b"]),
            wired("Neg", &["x"], &["b"]),
        ]);
        let outer = graph(vec![if_node(branch, &["y"])]);
        assert_eq!(written_twice(&outer), Some("b"));
        // A branch writing a value of the graph around it.
        let branch = graph(vec![wired("Relu", &["x"], &["a"])]);
        let outer = graph(vec![wired("Neg", &["x"], &["a"]), if_node(branch, &["y"])]);
        assert_eq!(written_twice(&outer), Some("a"));
        // Optional outputs left out (empty names) repeat; two branches may each write
        // a value of the same name (neither sees the other).
        let branch = || {
            graph(vec![
                wired("Dropout", &["x"], &["d", ""]),
                wired("Relu", &["d"], &["r", ""]),
            ])
        };
        let outer = graph(vec![if_node(branch(), &["y"]), if_node(branch(), &["z"])]);
        assert_eq!(written_twice(&outer), None);
    }

    #[test]
    fn garbage_is_not_onnx() {
        let err = load(b"\x01\x02 not a protobuf").unwrap_err();
        assert!(err.starts_with("not an ONNX model"), "{err}");
    }
}
