//! What decoding an ONNX file would cost, measured on its wire format before anything
//! is decoded. Protobuf packs small messages tightly: an empty `NodeProto` is 2 bytes
//! in the file and ~170 once decoded, so a 32 MiB upload of nothing but empty nodes
//! asked for 2.8 GB while decoding and aborted the whole service (an allocation failure
//! is not a panic: nothing catches it). The walk below follows the fields that nest
//! messages (graphs, nodes, attributes, subgraphs, functions), adds up what each entry
//! becomes in memory, and counts the nodes, whose number also sets how long tract takes
//! to load the graph (growing with its square: 100,000 nodes took 22 s).

use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};
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

/// How deep messages may nest: protobuf's decoder (prost) refuses deeper ones, and the
/// walk, which recurses once a level, must not run out of stack before it (a file of
/// 20,000 nested subgraphs is ~150 KB).
const MAX_DEPTH: usize = 100;

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
    /// A `StringStringEntryProto` (metadata, a tensor's external data, a training
    /// binding): two strings.
    Entry,
    /// A message not walked into (value infos, types, sparse tensors, operator sets):
    /// its decoded size is assumed at the worst, as if made of 2-byte entries.
    Opaque,
}

/// How the bytes of a length-delimited field that is not a message are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bytes {
    /// A string, bytes, or packed fixed-width numbers: their own size.
    Plain,
    /// Packed varints (`dims`, `int64_data`, an attribute's `ints`; `int32_data` of 4
    /// bytes): `width` bytes an element however few it takes in the file (a zero takes
    /// one).
    Varints { width: usize },
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
            (Model, 14)
            | (Training, 3 | 4)
            | (Graph, 16)
            | (Node, 9)
            | (Function, 14)
            | (Tensor, 13 | 16) => Entry,
            (Model, 8) => Opaque,
            (Training, 1 | 2) => Graph,
            (Graph, 1) => Node,
            (Graph, 5) => Tensor,
            (Graph, 11..=15) => Opaque,
            (Node, 5) => Attribute,
            (Attribute, 5 | 10) => Tensor,
            (Attribute, 6 | 11) => Graph,
            (Attribute, 14 | 15 | 22 | 23) => Opaque,
            (Function, 7) => Node,
            (Function, 11) => Attribute,
            (Function, 9 | 12) => Opaque,
            _ => return None,
        })
    }

    /// How a length-delimited field `tag` of `self` that is not a message decodes.
    fn bytes(self, tag: u32) -> Bytes {
        match (self, tag) {
            (Kind::Tensor, 5) => Bytes::Varints { width: 4 },
            (Kind::Tensor, 1 | 7 | 11) | (Kind::Attribute, 8) => Bytes::Varints { width: 8 },
            _ => Bytes::Plain,
        }
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
            Kind::Entry => 2 * size_of::<String>(),
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

/// Why the walk ended before the end of the bytes, past a bound aside.
#[derive(Debug)]
enum Stop {
    /// Not well-formed protobuf: the decoder says what is wrong.
    NotProtobuf,
    /// Messages nested over [`MAX_DEPTH`] levels.
    TooDeep,
}

/// Refuses `bytes` if decoding them would take more memory than their size explains,
/// load more nodes than [`MAX_NODES`], or nest messages deeper than protobuf decodes.
/// Bytes that are not protobuf pass: the decoder says what is wrong with them.
pub fn check(bytes: &[u8]) -> Result<(), String> {
    let budget = bytes.len().saturating_mul(MAX_GROWTH).max(MIN_BUDGET);
    let mut tally = Tally {
        bytes: Kind::Model.size(),
        nodes: 0,
    };
    match walk(bytes, Kind::Model, 0, &mut tally, budget) {
        Ok(()) => {}
        Err(Stop::NotProtobuf) => return Ok(()),
        Err(Stop::TooDeep) => {
            return Err(format!(
                "the model nests messages (graphs in attributes of nodes) over {MAX_DEPTH} levels deep, more than protobuf decodes"
            ));
        }
    }
    if tally.nodes > MAX_NODES {
        // The walk stops at the first node past the bound: "over", not a count.
        return Err(format!(
            "the model has over {MAX_NODES} nodes, more than vigil loads (tabular models have a few hundred at most)"
        ));
    }
    if tally.bytes > budget {
        return Err(format!(
            "decoding the model would take over {} MiB of memory for a file of {} KiB: it is made of many tiny messages or small numbers, not of weights",
            budget >> 20,
            bytes.len() >> 10
        ));
    }
    Ok(())
}

/// Adds up the message of `kind` in `buf`, `depth` levels below the model; stops early
/// (with `Ok`) once over a bound.
fn walk(
    mut buf: &[u8],
    kind: Kind,
    depth: usize,
    tally: &mut Tally,
    budget: usize,
) -> Result<(), Stop> {
    if depth > MAX_DEPTH {
        return Err(Stop::TooDeep);
    }
    let malformed = |_| Stop::NotProtobuf;
    while !buf.is_empty() {
        if tally.bytes > budget || tally.nodes > MAX_NODES {
            return Ok(());
        }
        let (tag, wire) = decode_key(&mut buf).map_err(malformed)?;
        match wire {
            WireType::Varint => {
                decode_varint(&mut buf).map_err(malformed)?;
                tally.bytes += 8;
            }
            WireType::SixtyFourBit => {
                buf = buf.get(8..).ok_or(Stop::NotProtobuf)?;
                tally.bytes += 8;
            }
            WireType::ThirtyTwoBit => {
                buf = buf.get(4..).ok_or(Stop::NotProtobuf)?;
                tally.bytes += 8;
            }
            WireType::LengthDelimited => {
                let len = decode_varint(&mut buf).map_err(malformed)?;
                let len = usize::try_from(len).map_err(|_| Stop::NotProtobuf)?;
                let inner = buf.get(..len).ok_or(Stop::NotProtobuf)?;
                buf = &buf[len..];
                match kind.child(tag) {
                    Some(Kind::Opaque) => tally.bytes += Kind::Opaque.size() + 32 * len,
                    Some(child) => {
                        tally.bytes += child.size();
                        tally.nodes += usize::from(child == Kind::Node);
                        walk(inner, child, depth + 1, tally, budget)?;
                    }
                    // A vector and its contents.
                    None => {
                        tally.bytes += 24
                            + match kind.bytes(tag) {
                                Bytes::Plain => len,
                                // A varint's last byte is the one below 0x80.
                                Bytes::Varints { width } => {
                                    width * inner.iter().filter(|b| **b < 0x80).count()
                                }
                            }
                    }
                }
            }
            // A group (an unknown field: the decoder skips it, keeping nothing) is
            // skipped as the decoder does; an end of group alone is malformed.
            WireType::StartGroup | WireType::EndGroup => {
                skip_field(wire, tag, &mut buf, DecodeContext::default()).map_err(malformed)?;
            }
        }
    }
    Ok(())
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

    /// A graph of one node whose attribute holds `graph`.
    fn graph_in_a_node(graph: &[u8]) -> Vec<u8> {
        field(1, &field(5, &field(6, graph)))
    }

    #[test]
    fn subgraphs_nested_deeper_than_protobuf_decodes_are_refused_without_running_out_of_stack() {
        // The walk recursed once a level: 20,000 levels (~150 KB) ran past its stack.
        // Refused from level 101 on, whatever the depth.
        let mut graph = Vec::new();
        for _ in 0..1_000 {
            graph = graph_in_a_node(&graph);
        }
        let e = check(&model_of_graph(&graph)).unwrap_err();
        assert!(e.contains("levels deep"), "{e}");
        // Some levels, as an `If` in a `Loop` has, pass.
        let mut graph = Vec::new();
        for _ in 0..10 {
            graph = graph_in_a_node(&graph);
        }
        check(&model_of_graph(&graph)).unwrap();
    }

    #[test]
    fn a_group_does_not_stop_the_check() {
        // An empty group at an unused field (the decoder skips it), then the tiny nodes.
        let graph: Vec<u8> = (0..100_000).flat_map(|_| field(1, &[])).collect();
        let mut model = vec![0x7b, 0x7c];
        model.extend(model_of_graph(&graph));
        let e = check(&model).unwrap_err();
        assert!(e.contains("nodes"), "{e}");
    }

    #[test]
    fn packed_small_numbers_count_eight_bytes_each() {
        // 9 MiB of zeros in an attribute's `ints`: 72 MiB and more decoded.
        let node = field(5, &field(8, &vec![0u8; 9 << 20]));
        let e = check(&model_of_graph(&field(1, &node))).unwrap_err();
        assert!(e.contains("small numbers"), "{e}");
        // The same bytes as a tensor's raw data decode to their own size, as its
        // `int32_data` to 4 times it (small integer weights, within the bound).
        let tensor = field(9, &vec![0u8; 9 << 20]);
        check(&model_of_graph(&field(5, &tensor))).unwrap();
        let tensor = field(5, &vec![0u8; 9 << 20]);
        check(&model_of_graph(&field(5, &tensor))).unwrap();
    }

    #[test]
    fn metadata_counts_its_own_size() {
        // A 1 MB model with a 3 MiB description in its metadata: ~3 MiB decoded (it was
        // counted as 32 times its size and refused).
        let entry = [field(1, b"description"), field(2, &vec![b'x'; 3 << 20])].concat();
        let weights = field(5, &field(9, &vec![0u8; 1 << 20]));
        let model = [model_of_graph(&weights), field(14, &entry)].concat();
        check(&model).unwrap();
    }

    #[test]
    fn bytes_that_are_not_protobuf_are_left_to_the_decoder() {
        check(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff").unwrap();
        check(&[0x3a, 0x10, 0x00]).unwrap();
    }
}
