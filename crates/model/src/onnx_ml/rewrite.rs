//! ONNX-ML preprocessing operators rewritten into standard ONNX operators before the
//! graph is parsed, so tract runs them with its own optimised kernels:
//!
//! - `ZipMap` (a sequence of `{label: probability}` maps, skl2onnx's default
//!   classifier output) is dropped: the model's output becomes the `[N, C]`
//!   probability tensor it was made from, which is what the map holds.
//! - `Scaler`: `(Cast(X) - offset) * scale`.
//! - `Imputer`: `Where(IsNaN(X), imputed, X)` (or `Equal(X, replaced)` when the value
//!   to replace is a number).
//! - `Binarizer`: `Cast(Greater(X, threshold))`.
//! - `TreeEnsembleClassifier` and `LinearClassifier`: string labels as their indices
//!   (tract makes only numeric labels); a binary tree model's one base value padded
//!   to two.

use std::collections::HashSet;

use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::{AttributeProto, GraphProto, NodeProto, TensorProto, ValueInfoProto};

/// Rewrites every supported ONNX-ML preprocessing node of `graph` in place.
pub fn apply(graph: &mut GraphProto) -> Result<(), String> {
    let mut names = Names::of(graph);
    let nodes = std::mem::take(&mut graph.node);
    let mut out = Vec::with_capacity(nodes.len());
    let mut zipmaps = Vec::new();
    for node in nodes {
        match node.op_type.as_str() {
            "ZipMap" => zipmaps.push(node),
            "Scaler" => scaler(&node, &mut names, &mut out)?,
            "Imputer" => imputer(&node, &mut names, &mut out)?,
            "Binarizer" => binarizer(&node, &mut names, &mut out)?,
            "TreeEnsembleClassifier" => out.push(tree_classifier(node)),
            "LinearClassifier" => out.push(labels_as_indices(node, "classlabels_ints")),
            _ => out.push(node),
        }
    }
    graph.node = out;
    graph.initializer.append(&mut names.initializers);
    for node in &zipmaps {
        drop_zipmap(graph, node)?;
    }
    Ok(())
}

/// Unique names for the tensors a rewrite adds, and the constants it needs.
struct Names {
    taken: HashSet<String>,
    initializers: Vec<TensorProto>,
}

impl Names {
    fn of(graph: &GraphProto) -> Names {
        let mut taken = HashSet::new();
        for node in &graph.node {
            taken.extend(node.input.iter().chain(&node.output).cloned());
            taken.insert(node.name.clone());
        }
        taken.extend(graph.initializer.iter().map(|t| t.name.clone()));
        taken.extend(graph.input.iter().map(|v| v.name.clone()));
        Names {
            taken,
            initializers: Vec::new(),
        }
    }

    fn fresh(&mut self, base: &str) -> String {
        let mut name = format!("vigil.{base}");
        let mut i = 1;
        while self.taken.contains(&name) {
            name = format!("vigil.{base}.{i}");
            i += 1;
        }
        self.taken.insert(name.clone());
        name
    }

    /// A 1-D float constant (it broadcasts over the feature axis of `[N, F]`).
    fn floats(&mut self, base: &str, values: Vec<f32>) -> String {
        let name = self.fresh(base);
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims: vec![values.len() as i64],
            data_type: DataType::Float as i32,
            float_data: values,
            ..TensorProto::default()
        });
        name
    }
}

fn node(op: &str, name: String, inputs: &[&str], output: &str) -> NodeProto {
    NodeProto {
        op_type: op.to_owned(),
        name,
        input: inputs.iter().map(|s| (*s).to_owned()).collect(),
        output: vec![output.to_owned()],
        ..NodeProto::default()
    }
}

fn cast_to_float(name: String, input: &str, output: &str) -> NodeProto {
    let mut cast = node("Cast", name, &[input], output);
    cast.attribute.push(AttributeProto {
        name: "to".to_owned(),
        r#type: AttributeType::Int as i32,
        i: DataType::Float as i64,
        ..AttributeProto::default()
    });
    cast
}

fn attr<'n>(node: &'n NodeProto, name: &str) -> Option<&'n AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

/// The single input and output of a one-to-one operator.
fn io(node: &NodeProto) -> Result<(&str, &str), String> {
    match (node.input.as_slice(), node.output.as_slice()) {
        ([i], [o]) => Ok((i, o)),
        _ => Err(format!(
            "{} node `{}` must have one input and one output",
            node.op_type, node.name
        )),
    }
}

fn scaler(n: &NodeProto, names: &mut Names, out: &mut Vec<NodeProto>) -> Result<(), String> {
    let (x, y) = io(n)?;
    let offset = attr(n, "offset").map_or_else(|| vec![0.0], |a| a.floats.clone());
    let scale = attr(n, "scale").map_or_else(|| vec![1.0], |a| a.floats.clone());
    let offset = names.floats("scaler.offset", offset);
    let scale = names.floats("scaler.scale", scale);
    let cast = names.fresh("scaler.cast");
    let shifted = names.fresh("scaler.shifted");
    out.push(cast_to_float(names.fresh("scaler.cast"), x, &cast));
    out.push(node(
        "Sub",
        names.fresh("scaler.sub"),
        &[&cast, &offset],
        &shifted,
    ));
    out.push(node(
        "Mul",
        names.fresh("scaler.mul"),
        &[&shifted, &scale],
        y,
    ));
    Ok(())
}

fn imputer(n: &NodeProto, names: &mut Names, out: &mut Vec<NodeProto>) -> Result<(), String> {
    let (x, y) = io(n)?;
    let imputed = attr(n, "imputed_value_floats")
        .map(|a| a.floats.clone())
        .filter(|f| !f.is_empty())
        .ok_or_else(|| {
            format!(
                "Imputer node `{}` has no imputed_value_floats (integer imputers are not supported)",
                n.name
            )
        })?;
    // The ONNX-ML default for the value to replace is 0; skl2onnx writes NaN.
    let replaced = attr(n, "replaced_value_float").map_or(0.0, |a| a.f);
    let imputed = names.floats("imputer.imputed", imputed);
    let mask = names.fresh("imputer.mask");
    if replaced.is_nan() {
        out.push(node("IsNaN", names.fresh("imputer.isnan"), &[x], &mask));
    } else {
        let value = names.floats("imputer.replaced", vec![replaced]);
        out.push(node(
            "Equal",
            names.fresh("imputer.equal"),
            &[x, &value],
            &mask,
        ));
    }
    out.push(node(
        "Where",
        names.fresh("imputer.where"),
        &[&mask, &imputed, x],
        y,
    ));
    Ok(())
}

fn binarizer(n: &NodeProto, names: &mut Names, out: &mut Vec<NodeProto>) -> Result<(), String> {
    let (x, y) = io(n)?;
    let threshold = attr(n, "threshold").map_or(0.0, |a| a.f);
    let threshold = names.floats("binarizer.threshold", vec![threshold]);
    let above = names.fresh("binarizer.above");
    out.push(node(
        "Greater",
        names.fresh("binarizer.greater"),
        &[x, &threshold],
        &above,
    ));
    out.push(cast_to_float(names.fresh("binarizer.cast"), &above, y));
    Ok(())
}

/// Two fixes to a tree classifier so tract loads it: string labels as indices, and
/// a binary classifier scores one class and skl2onnx (like the ONNX-ML spec) gives
///   it one base value, where tract wants one per label. The second label's score is
///   always 0 in that layout, so its base value is 0 too.
fn tree_classifier(node: NodeProto) -> NodeProto {
    let mut node = labels_as_indices(node, "classlabels_int64s");
    let labels = attr(&node, "classlabels_int64s").map_or(0, |a| a.ints.len());
    if labels == 2
        && let Some(base) = node.attribute.iter_mut().find(|a| a.name == "base_values")
        && base.floats.len() == 1
    {
        base.floats.push(0.0);
    }
    node
}

/// A classifier's string labels (`classlabels_strings`) replaced by their indices in
/// the integer attribute `ints`: tract's classifiers cannot make string labels. The
/// label output then holds indices; vigil reads the probabilities, and the labels
/// come from the card.
fn labels_as_indices(mut node: NodeProto, ints: &str) -> NodeProto {
    if let Some(at) = node
        .attribute
        .iter()
        .position(|a| a.name == "classlabels_strings")
    {
        let count = node.attribute[at].strings.len() as i64;
        node.attribute[at] = AttributeProto {
            name: ints.to_owned(),
            r#type: AttributeType::Ints as i32,
            ints: (0..count).collect(),
            ..AttributeProto::default()
        };
    }
    node
}

/// Makes the probability tensor a `ZipMap` was built from the graph's output in its
/// place.
fn drop_zipmap(graph: &mut GraphProto, zipmap: &NodeProto) -> Result<(), String> {
    let (probabilities, map) = io(zipmap)?;
    if graph.node.iter().any(|n| n.input.iter().any(|i| i == map)) {
        return Err(format!(
            "the ZipMap output `{map}` is used inside the graph; only a ZipMap that ends the graph can be read as its probability tensor"
        ));
    }
    let already = graph.output.iter().any(|o| o.name == probabilities);
    let mut outputs = Vec::with_capacity(graph.output.len());
    for output in std::mem::take(&mut graph.output) {
        if output.name != map {
            outputs.push(output);
        } else if !already {
            outputs.push(ValueInfoProto {
                name: probabilities.to_owned(),
                ..ValueInfoProto::default()
            });
        }
    }
    graph.output = outputs;
    Ok(())
}
