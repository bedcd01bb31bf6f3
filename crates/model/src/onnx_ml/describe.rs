//! What an ONNX file holds, read from its protobuf without running it: inputs and
//! outputs with their types and shapes, the operators it uses, and the class labels a
//! scikit-learn export stores. `vigil models check` prints it; `vigil models init`
//! takes the labels from it.

use std::collections::BTreeMap;

use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::tensor_shape_proto::dimension;
use tract_onnx::pb::type_proto;
use tract_onnx::pb::{GraphProto, ModelProto, NodeProto, ValueInfoProto};
use tract_onnx::prelude::*;

/// One graph input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub name: String,
    /// `float`, `int64`, `string`, … or `not a tensor` (a sequence or map).
    pub datum: String,
    /// Dimensions: a number, a symbol (`N`), or `?`; `None` when the file gives no shape.
    pub shape: Option<Vec<String>>,
}

impl Port {
    /// The fixed size of dimension `i`, if the file gives one.
    pub fn dim(&self, i: usize) -> Option<usize> {
        self.shape.as_ref()?.get(i)?.parse().ok()
    }
}

/// What [`describe`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub inputs: Vec<Port>,
    pub outputs: Vec<Port>,
    /// Each operator (with its domain when not the default) and how many nodes use it.
    pub ops: BTreeMap<String, usize>,
    /// The class labels of the first classifier operator (or `ZipMap`) that names them.
    pub labels: Option<Vec<String>>,
}

/// Reads `bytes` as an ONNX model (not run, not rewritten).
pub fn describe(bytes: &[u8]) -> Result<Summary, String> {
    super::budget::check(bytes)?;
    let mut reader = bytes;
    let proto: ModelProto = tract_onnx::onnx()
        .proto_model_for_read(&mut reader)
        .map_err(|e| format!("not an ONNX model: {e:#}"))?;
    let graph = proto.graph.as_ref().ok_or("the ONNX model has no graph")?;
    // Inputs that an initializer feeds are weights, not inputs.
    let inputs = graph
        .input
        .iter()
        .filter(|i| !graph.initializer.iter().any(|t| t.name == i.name))
        .map(port)
        .collect();
    let mut ops = BTreeMap::new();
    count_ops(graph, &mut ops);
    Ok(Summary {
        inputs,
        outputs: graph.output.iter().map(port).collect(),
        ops,
        labels: graph.node.iter().find_map(labels),
    })
}

fn port(v: &ValueInfoProto) -> Port {
    let tensor = v
        .r#type
        .as_ref()
        .and_then(|t| t.value.as_ref())
        .map(|value| {
            let type_proto::Value::TensorType(t) = value;
            t
        });
    let Some(t) = tensor else {
        return Port {
            name: v.name.clone(),
            datum: "not a tensor".to_owned(),
            shape: None,
        };
    };
    let datum = DataType::try_from(t.elem_type)
        .map(|d| {
            d.as_str_name()
                .trim_start_matches("DATA_TYPE_")
                .to_lowercase()
        })
        .unwrap_or_else(|_| format!("type {}", t.elem_type));
    let shape = t.shape.as_ref().map(|s| {
        s.dim
            .iter()
            .map(|d| match &d.value {
                Some(dimension::Value::DimValue(n)) => n.to_string(),
                Some(dimension::Value::DimParam(p)) if !p.is_empty() => p.clone(),
                _ => "?".to_owned(),
            })
            .collect()
    });
    Port {
        name: v.name.clone(),
        datum,
        shape,
    }
}

fn count_ops(graph: &GraphProto, ops: &mut BTreeMap<String, usize>) {
    for node in &graph.node {
        let name = if node.domain.is_empty() || node.domain == "ai.onnx" {
            node.op_type.clone()
        } else {
            format!("{} ({})", node.op_type, node.domain)
        };
        *ops.entry(name).or_default() += 1;
        for attr in &node.attribute {
            for g in attr.g.iter().chain(&attr.graphs) {
                count_ops(g, ops);
            }
        }
    }
}

/// The class labels an ONNX-ML classifier or `ZipMap` node stores, as text.
fn labels(node: &NodeProto) -> Option<Vec<String>> {
    const INTS: [&str; 3] = [
        "classlabels_int64s",
        "classlabels_ints",
        "classlabels_int64",
    ];
    const STRINGS: [&str; 2] = ["classlabels_strings", "classlabels_string"];
    for attr in &node.attribute {
        if INTS.contains(&attr.name.as_str()) && !attr.ints.is_empty() {
            return Some(attr.ints.iter().map(i64::to_string).collect());
        }
        if STRINGS.contains(&attr.name.as_str()) && !attr.strings.is_empty() {
            return Some(
                attr.strings
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect(),
            );
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_model_inputs_outputs_and_ops() {
        let s = describe(crate::bundled::MODELS[0].1).unwrap();
        assert_eq!(s.inputs.len(), 1);
        assert_eq!(s.inputs[0].datum, "float");
        assert_eq!(s.inputs[0].dim(1), Some(6));
        assert!(!s.ops.is_empty());
        assert!(
            s.outputs.iter().any(|o| o.name.contains("probabilities")),
            "{s:?}"
        );
    }
}
