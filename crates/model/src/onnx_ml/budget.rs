//! What decoding an ONNX file would cost, measured on its wire format before anything
//! is decoded. Protobuf packs small messages tightly: an empty `NodeProto` is 2 bytes
//! in the file and ~170 once decoded, so a 32 MiB upload of nothing but empty nodes
//! asked for 2.8 GB while decoding and aborted the whole service (an allocation failure
//! is not a panic: nothing catches it). The walk below follows the fields that nest
//! messages (graphs, nodes, attributes, subgraphs, functions), adds up what each entry
//! becomes in memory, and counts the nodes, whose number also sets how long tract takes
//! to load the graph (growing with its square: 100,000 nodes took 22 s).

use prost::encoding::{WireType, decode_key, decode_varint};
use tract_onnx::pb::{
    AttributeProto, FunctionProto, GraphProto, ModelProto, NodeProto, TensorProto,
    TrainingInfoProto,
};

/// Most nodes, in every graph, subgraph and function together. Tabular models have a
/// few to a few hundred (a forest of any size is one tree-ensemble node).
pub const MAX_NODES: usize = 50_000;

/// Decoding may take this many times the file's size...
const MAX_GROWTH: usize = 8;
/// ...or this much, whichever is more. A model's bulk is weights (`raw_data`, packed
/// arrays: their own size once decoded) or a forest's per-node strings (~3 times
/// theirs); only many tiny messages come near `MAX_GROWTH`.
const MIN_BUDGET: usize = 64 << 20;

/// What a field leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Model,
    Training,
    Graph,
    Function,
    Node,
    Attribute,
    Tensor,
    /// A message not walked into (value infos, types, sparse tensors, metadata): its
    /// decoded size is assumed at the worst, as if made of 2-byte entries.
    Opaque,
}

impl Kind {
    /// The message a length-delimited field `tag` of `self` holds, if it is one
    /// (field numbers from onnx.proto).
    fn child(self, tag: u32) -> Option<Kind> {
        use Kind::*;
        Some(match (self, tag) {
            (Model, 7) => Graph,
            (Model, 20) => Training,
            (Model, 25) => Function,
            (Model, 8 | 14) => Opaque,
            (Training, 1 | 2) => Graph,
            (Training, 3 | 4) => Opaque,
            (Graph, 1) => Node,
            (Graph, 5) => Tensor,
            (Graph, 11..=16) => Opaque,
            (Node, 5) => Attribute,
            (Node, 9) => Opaque,
            (Attribute, 5 | 10) => Tensor,
            (Attribute, 6 | 11) => Graph,
            (Attribute, 14 | 15 | 22 | 23) => Opaque,
            (Function, 7) => Node,
            (Function, 11) => Attribute,
            (Function, 9 | 12 | 13 | 14) => Opaque,
            _ => return None,
        })
    }

    /// What one such message takes decoded, before what it holds.
    fn size(self) -> usize {
        use std::mem::size_of;
        match self {
            Kind::Model => size_of::<ModelProto>(),
            Kind::Training => size_of::<TrainingInfoProto>(),
            Kind::Graph => size_of::<GraphProto>(),
            Kind::Function => size_of::<FunctionProto>(),
            Kind::Node => size_of::<NodeProto>(),
            Kind::Attribute => size_of::<AttributeProto>(),
            Kind::Tensor => size_of::<TensorProto>(),
            Kind::Opaque => 128,
        }
    }
}

/// What the walk found.
#[derive(Debug, Default)]
struct Tally {
    bytes: usize,
    nodes: usize,
}

/// Refuses `bytes` if decoding them would take more memory than their size explains,
/// or load more nodes than [`MAX_NODES`]. Bytes that are not protobuf pass: the
/// decoder says what is wrong with them.
pub fn check(bytes: &[u8]) -> Result<(), String> {
    let budget = bytes.len().saturating_mul(MAX_GROWTH).max(MIN_BUDGET);
    let mut tally = Tally {
        bytes: Kind::Model.size(),
        nodes: 0,
    };
    if walk(bytes, Kind::Model, &mut tally, budget).is_none() {
        return Ok(());
    }
    if tally.nodes > MAX_NODES {
        // The walk stops at the first node past the bound: "over", not a count.
        return Err(format!(
            "the model has over {MAX_NODES} nodes, more than vigil loads (tabular models have a few hundred at most)"
        ));
    }
    if tally.bytes > budget {
        return Err(format!(
            "decoding the model would take over {} MiB of memory for a file of {} KiB: it is made of many tiny messages, not of weights",
            budget >> 20,
            bytes.len() >> 10
        ));
    }
    Ok(())
}

/// Adds up the message in `buf`; stops early (returning `Some`) once over a bound, and
/// gives `None` for bytes that are not well-formed protobuf.
fn walk(mut buf: &[u8], kind: Kind, tally: &mut Tally, budget: usize) -> Option<()> {
    while !buf.is_empty() {
        if tally.bytes > budget || tally.nodes > MAX_NODES {
            return Some(());
        }
        let (tag, wire) = decode_key(&mut buf).ok()?;
        match wire {
            WireType::Varint => {
                decode_varint(&mut buf).ok()?;
                tally.bytes += 8;
            }
            WireType::SixtyFourBit => {
                buf = buf.get(8..)?;
                tally.bytes += 8;
            }
            WireType::ThirtyTwoBit => {
                buf = buf.get(4..)?;
                tally.bytes += 8;
            }
            WireType::LengthDelimited => {
                let len = usize::try_from(decode_varint(&mut buf).ok()?).ok()?;
                let inner = buf.get(..len)?;
                buf = &buf[len..];
                match kind.child(tag) {
                    Some(Kind::Opaque) => tally.bytes += Kind::Opaque.size() + 32 * len,
                    Some(child) => {
                        tally.bytes += child.size();
                        tally.nodes += usize::from(child == Kind::Node);
                        walk(inner, child, tally, budget)?;
                    }
                    // A string, bytes or a packed array: a vector and its contents.
                    None => tally.bytes += 24 + len,
                }
            }
            WireType::StartGroup | WireType::EndGroup => return None,
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A length-delimited field `tag` holding `body`.
    fn field(tag: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        prost::encoding::encode_key(tag, WireType::LengthDelimited, &mut out);
        prost::encoding::encode_varint(body.len() as u64, &mut out);
        out.extend_from_slice(body);
        out
    }

    fn model_of_graph(graph: &[u8]) -> Vec<u8> {
        field(7, graph)
    }

    #[test]
    fn empty_nodes_by_the_hundred_thousand_are_refused_by_count() {
        let graph: Vec<u8> = (0..100_000).flat_map(|_| field(1, &[])).collect();
        let e = check(&model_of_graph(&graph)).unwrap_err();
        assert!(e.contains("nodes"), "{e}");
    }

    #[test]
    fn empty_attributes_that_would_take_far_more_memory_than_their_size_are_refused() {
        // One node of 400,000 empty attributes: 800 KB in the file.
        let node: Vec<u8> = (0..400_000).flat_map(|_| field(5, &[])).collect();
        let e = check(&model_of_graph(&field(1, &node))).unwrap_err();
        assert!(e.contains("tiny messages"), "{e}");
    }

    #[test]
    fn weights_and_the_bundled_models_pass() {
        // 80 MB of raw weights in one initializer: their own size decoded.
        let tensor = field(9, &vec![0u8; 80 << 20]);
        check(&model_of_graph(&field(5, &tensor))).unwrap();
        for (name, onnx, _) in crate::bundled::MODELS {
            check(onnx).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn bytes_that_are_not_protobuf_are_left_to_the_decoder() {
        check(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff").unwrap();
        check(&[0x3a, 0x10, 0x00]).unwrap();
    }
}
