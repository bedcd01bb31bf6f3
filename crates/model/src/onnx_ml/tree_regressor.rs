//! `TreeEnsembleRegressor` (random forests, gradient boosting and decision trees for
//! regression): tract evaluates tree ensembles (its classifier's core op) but has no
//! parser for the regressor. This builds tract's ensemble tables from the node's
//! attributes and adds `base_values`; `aggregate_function` is tract's (sum, average,
//! min, max).

use std::collections::HashMap;

use tract_hir::internal::*;
use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx_opl::ml::tree_ensemble_classifier::{
    Aggregate, Cmp, TreeEnsemble, TreeEnsembleClassifier as EnsembleOp, TreeEnsembleData,
    parse_aggregate,
};

/// The parser tract calls for a `TreeEnsembleRegressor` node.
pub fn parse(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let n_targets: usize = node.get_attr_opt("n_targets")?.unwrap_or(1);
    let post: &str = node.get_attr_opt("post_transform")?.unwrap_or("NONE");
    if post != "NONE" {
        bail!("TreeEnsembleRegressor with post_transform {post} is not supported");
    }
    let aggregate = parse_aggregate(node.get_attr_opt("aggregate_function")?.unwrap_or("SUM"))?;
    let base_values: Option<Vec<f32>> = node.get_attr_opt_vec("base_values")?;
    if let Some(b) = &base_values {
        node.expect_attr("base_values", b.len() == n_targets, "one value per target")?;
    }
    let ensemble = ensemble(node, n_targets, aggregate)?;
    let base_values = base_values
        .map(|b| tensor1(&b).into_shape(&[1, n_targets]))
        .transpose()?
        .map(Tensor::into_arc_tensor);
    Ok((
        expand(TreeRegressor {
            ensemble,
            base_values,
        }),
        vec![],
    ))
}

#[derive(Debug, Clone)]
struct TreeRegressor {
    ensemble: TreeEnsemble,
    /// `[1, n_targets]`, added to the trees' sum.
    base_values: Option<Arc<Tensor>>,
}

impl Expansion for TreeRegressor {
    fn name(&self) -> StaticName {
        "TreeEnsembleRegressor".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        s.equals(&outputs[0].datum_type, DatumType::F32)?;
        s.equals(&outputs[0].rank, 2)?;
        s.equals(&outputs[0].shape[0], &inputs[0].shape[0])?;
        s.equals(&outputs[0].shape[1], self.ensemble.n_classes().to_dim())?;
        Ok(())
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        let mut out = model.wire_node(
            format!("{prefix}.trees"),
            EnsembleOp {
                ensemble: self.ensemble.clone(),
            },
            inputs,
        )?;
        if let Some(base) = &self.base_values {
            let base = model.add_const(format!("{prefix}.base_values"), base.clone())?;
            out = model.wire_node(
                format!("{prefix}.base"),
                tract_hir::tract_core::ops::math::add(),
                &[out[0], base],
            )?;
        }
        Ok(out)
    }
}

/// A branch's comparison as tract stores it. tract decodes comparison codes 1 to 5
/// only, so `>=` is stored as `<` with its children (and its missing-value side)
/// swapped, which decides every value, NaN included, the same way.
fn comparison(mode: &str) -> TractResult<Option<(Cmp, bool)>> {
    Ok(Some(match mode {
        "BRANCH_LEQ" => (Cmp::LessEqual, false),
        "BRANCH_LT" => (Cmp::Less, false),
        "BRANCH_GTE" => (Cmp::Less, true),
        "BRANCH_GT" => (Cmp::Greater, false),
        "BRANCH_EQ" => (Cmp::Equal, false),
        "BRANCH_NEQ" => (Cmp::NotEqual, false),
        "LEAF" => return Ok(None),
        other => bail!("unknown tree node mode {other}"),
    }))
}

/// tract's tables: one row of five u32 per node (branches: feature, true row, false
/// row, threshold bits, comparison | NaN-goes-true << 8; leaves: first and end row in
/// the leaf table, then zeros) and one row of (target, weight bits) per leaf weight.
fn ensemble(node: &NodeProto, n_targets: usize, aggregate: Aggregate) -> TractResult<TreeEnsemble> {
    let tree_ids: Vec<i64> = node.get_attr_vec("nodes_treeids")?;
    let n = tree_ids.len();
    node.expect_attr("nodes_treeids", n > 0, "at least one node")?;
    let get = |name: &str| -> TractResult<Vec<i64>> {
        let v: Vec<i64> = node.get_attr_vec(name)?;
        node.expect_attr(name, v.len() == n, "one value per node")?;
        Ok(v)
    };
    let node_ids = get("nodes_nodeids")?;
    let features = get("nodes_featureids")?;
    let true_ids = get("nodes_truenodeids")?;
    let false_ids = get("nodes_falsenodeids")?;
    let values: Vec<f32> = node.get_attr_vec("nodes_values")?;
    node.expect_attr("nodes_values", values.len() == n, "one value per node")?;
    let modes: Vec<&str> = node.get_attr_vec("nodes_modes")?;
    node.expect_attr("nodes_modes", modes.len() == n, "one value per node")?;
    let nan_true: Vec<i64> = node
        .get_attr_opt_vec("nodes_missing_value_tracks_true")?
        .unwrap_or_else(|| vec![0; n]);
    node.expect_attr(
        "nodes_missing_value_tracks_true",
        nan_true.len() == n,
        "one value per node",
    )?;

    let leaf_trees: Vec<i64> = node.get_attr_vec("target_treeids")?;
    let leaf_nodes: Vec<i64> = node.get_attr_vec("target_nodeids")?;
    let leaf_targets: Vec<i64> = node.get_attr_vec("target_ids")?;
    let leaf_weights: Vec<f32> = node.get_attr_vec("target_weights")?;
    let l = leaf_trees.len();
    node.expect_attr(
        "target_weights",
        leaf_nodes.len() == l && leaf_targets.len() == l && leaf_weights.len() == l,
        "target_treeids, target_nodeids, target_ids and target_weights of one length",
    )?;
    node.expect_attr(
        "target_ids",
        leaf_targets
            .iter()
            .all(|&t| (0..n_targets as i64).contains(&t)),
        "targets below n_targets",
    )?;
    let mut weights: HashMap<(i64, i64), Vec<(u32, f32)>> = HashMap::new();
    for i in 0..l {
        weights
            .entry((leaf_trees[i], leaf_nodes[i]))
            .or_default()
            .push((leaf_targets[i] as u32, leaf_weights[i]));
    }

    // Rows ordered by (tree, node id); children are found through this map.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (tree_ids[i], node_ids[i]));
    let row_of: HashMap<(i64, i64), u32> = order
        .iter()
        .enumerate()
        .map(|(row, &i)| ((tree_ids[i], node_ids[i]), row as u32))
        .collect();
    let child = |tree: i64, id: i64| -> TractResult<u32> {
        row_of
            .get(&(tree, id))
            .copied()
            .ok_or_else(|| format_err!("tree {tree} has no node {id}"))
    };
    let mut trees = Vec::new();
    let mut nodes = Vec::with_capacity(n * 5);
    let mut leaves = Vec::with_capacity(l * 2);
    let mut current = None;
    for &i in &order {
        let tree = tree_ids[i];
        if current != Some(tree) {
            current = Some(tree);
            trees.push((nodes.len() / 5) as u32);
        }
        match comparison(modes[i])? {
            Some((cmp, swapped)) => {
                let (t, f) = (child(tree, true_ids[i])?, child(tree, false_ids[i])?);
                let (t, f, nan) = if swapped {
                    (f, t, nan_true[i] == 0)
                } else {
                    (t, f, nan_true[i] != 0)
                };
                let feature = u32::try_from(features[i])
                    .map_err(|_| format_err!("negative feature id {}", features[i]))?;
                nodes.extend([
                    feature,
                    t,
                    f,
                    values[i].to_bits(),
                    cmp as u32 | (u32::from(nan) << 8),
                ]);
            }
            None => {
                let start = (leaves.len() / 2) as u32;
                for (target, weight) in weights.get(&(tree, node_ids[i])).into_iter().flatten() {
                    leaves.extend([*target, weight.to_bits()]);
                }
                nodes.extend([start, (leaves.len() / 2) as u32, 0, 0, 0]);
            }
        }
    }
    let max_feature = features.iter().copied().max().unwrap_or(0).max(0) as usize;
    let data = TreeEnsembleData {
        trees: rctensor1(&trees),
        nodes: tensor1(&nodes)
            .into_shape(&[nodes.len() / 5, 5])?
            .into_arc_tensor(),
        leaves: tensor1(&leaves)
            .into_shape(&[leaves.len() / 2, 2])?
            .into_arc_tensor(),
    };
    TreeEnsemble::build(data, max_feature, n_targets, aggregate)
}
