//! Tree-ensemble evaluation for every tree-ensemble node of a loaded model (tract's
//! `TreeEnsembleClassifier` and vigil's `TreeEnsembleRegressor` both build tract's
//! tables): the same tables, walked with direct indexing.
//!
//! Why: tract's evaluator finds a leaf's weights with `outer_iter().skip(start)`,
//! which steps through every leaf row before it, so a row costs more the bigger the
//! forest, twice over. `bench/zoo.sh` measured a 25-tree random forest at 260 µs per
//! row against onnxruntime's 12 µs; see docs/BENCHMARKS.md for the numbers with this.

use tract_hir::internal::*;
use tract_onnx_opl::ml::tree_ensemble_classifier::{
    Aggregate, TreeEnsemble, TreeEnsembleClassifier as TractTrees,
};

/// Replaces tract's tree-ensemble evaluator with [`Trees`] in `model`.
pub fn accelerate(model: &mut TypedModel) -> TractResult<()> {
    for node in &mut model.nodes {
        if let Some(op) = node.op_as::<TractTrees>() {
            node.op = Box::new(Trees::from_ensemble(&op.ensemble)?);
        }
    }
    Ok(())
}

/// A tree ensemble's tables, flat: per tree its root row; per node row five u32
/// (branch: feature, true row, false row, threshold bits, comparison | NaN-goes-true
/// << 8; leaf: first and end row in `leaves`, then zeros, comparison 0); per leaf row
/// (class, weight bits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trees {
    roots: Vec<u32>,
    nodes: Vec<u32>,
    leaves: Vec<u32>,
    max_feature: usize,
    classes: usize,
    aggregate: Aggregate,
}

impl Trees {
    fn from_ensemble(e: &TreeEnsemble) -> TractResult<Trees> {
        let flat = |t: &Tensor| -> TractResult<Vec<u32>> {
            Ok(t.try_as_plain_ram()?.as_slice::<u32>()?.to_vec())
        };
        let trees = Trees {
            roots: flat(&e.data.trees)?,
            nodes: flat(&e.data.nodes)?,
            leaves: flat(&e.data.leaves)?,
            max_feature: e.max_used_feature,
            classes: e.n_classes,
            aggregate: e.aggregate_fn,
        };
        trees.validate()?;
        Ok(trees)
    }

    /// Every row a walk can reach is inside the tables, every class below `classes`:
    /// the walk then indexes without surprises.
    fn validate(&self) -> TractResult<()> {
        let rows = self.nodes.len() / 5;
        ensure!(self.nodes.len().is_multiple_of(5) && self.leaves.len().is_multiple_of(2));
        ensure!(self.roots.iter().all(|&r| (r as usize) < rows));
        for row in self.nodes.chunks_exact(5) {
            if is_branch(row[4]) {
                ensure!((row[1] as usize) < rows && (row[2] as usize) < rows);
            } else {
                ensure!(row[0] <= row[1] && row[1] as usize <= self.leaves.len() / 2);
            }
        }
        ensure!(
            self.leaves
                .chunks_exact(2)
                .all(|l| (l[0] as usize) < self.classes)
        );
        Ok(())
    }

    /// One row's scores into `out` (`classes` long, zeroed).
    fn row(&self, x: &[f32], out: &mut [f32], counts: &mut [u32]) {
        counts.iter_mut().for_each(|c| *c = 0);
        for &root in &self.roots {
            let mut r = root as usize;
            // A malformed table could cycle; no tree is deeper than its node count.
            for _ in 0..self.nodes.len() / 5 {
                let row = &self.nodes[r * 5..r * 5 + 5];
                if !is_branch(row[4]) {
                    break;
                }
                let v = x[row[0] as usize];
                let t = f32::from_bits(row[3]);
                let yes = if v.is_nan() {
                    row[4] & 0x100 != 0
                } else {
                    match row[4] & 0xFF {
                        1 => v == t,
                        2 => v != t,
                        3 => v < t,
                        4 => v > t,
                        5 => v <= t,
                        _ => v >= t,
                    }
                };
                r = if yes { row[1] } else { row[2] } as usize;
            }
            let row = &self.nodes[r * 5..r * 5 + 5];
            for leaf in self.leaves[row[0] as usize * 2..row[1] as usize * 2].chunks_exact(2) {
                let (class, w) = (leaf[0] as usize, f32::from_bits(leaf[1]));
                let total = &mut out[class];
                match self.aggregate {
                    Aggregate::Sum => *total += w,
                    Aggregate::Avg => {
                        *total += w;
                        counts[class] += 1;
                    }
                    Aggregate::Max => *total = total.max(w),
                    Aggregate::Min => *total = total.min(w),
                }
            }
        }
        if self.aggregate == Aggregate::Avg {
            for (total, &n) in out.iter_mut().zip(counts.iter()) {
                if n > 1 {
                    *total /= n as f32;
                }
            }
        }
    }
}

/// Comparison codes 1 to 6 are branches (tract's own decoder stops at 5); 0 is a leaf.
fn is_branch(flags: u32) -> bool {
    (1..=6).contains(&(flags & 0xFF))
}

impl Op for Trees {
    fn name(&self) -> StaticName {
        "vigil.TreeEnsemble".into()
    }

    op_as_typed_op!();
}

impl EvalOp for Trees {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let input = input.cast_to::<f32>()?;
        let shape = input.shape();
        ensure!(
            shape.len() == 2 && shape[1] > self.max_feature,
            "tree ensemble input of shape {shape:?} (it reads feature #{})",
            self.max_feature
        );
        let (n, width) = (shape[0], shape[1]);
        let x = input.try_as_plain_ram()?.as_slice::<f32>()?;
        let mut out = vec![0f32; n * self.classes];
        let mut counts = vec![0u32; self.classes];
        for (row, scores) in x
            .chunks_exact(width)
            .zip(out.chunks_exact_mut(self.classes))
        {
            self.row(row, scores, &mut counts);
        }
        Ok(tvec!(
            Tensor::from_shape(&[n, self.classes], &out)?.into_tvalue()
        ))
    }
}

impl TypedOp for Trees {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact([
            inputs[0].shape[0].clone(),
            self.classes.to_dim()
        ])))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tree 0: `x0 >= 1` (NaN goes true) → class 1 weight 2, else class 0 weight 3.
    /// Tree 1: a single leaf, class 1 weight 1.
    fn forest(aggregate: Aggregate) -> Trees {
        let trees = Trees {
            roots: vec![0, 3],
            nodes: vec![
                0,
                1,
                2,
                1f32.to_bits(),
                6 | 0x100, // branch
                0,
                1,
                0,
                0,
                0, // leaf: leaves[0..1]
                1,
                2,
                0,
                0,
                0, // leaf: leaves[1..2]
                2,
                3,
                0,
                0,
                0, // tree 1's leaf: leaves[2..3]
            ],
            leaves: vec![1, 2f32.to_bits(), 0, 3f32.to_bits(), 1, 1f32.to_bits()],
            max_feature: 0,
            classes: 2,
            aggregate,
        };
        trees.validate().unwrap();
        trees
    }

    fn scores(t: &Trees, x: f32) -> Vec<f32> {
        let mut out = vec![0.0; 2];
        t.row(&[x], &mut out, &mut [0; 2]);
        out
    }

    #[test]
    fn greater_or_equal_nan_and_aggregates() {
        let sum = forest(Aggregate::Sum);
        assert_eq!(
            scores(&sum, 1.0),
            [0.0, 3.0],
            ">= takes the true branch at equality"
        );
        assert_eq!(scores(&sum, 0.5), [3.0, 1.0]);
        assert_eq!(
            scores(&sum, f32::NAN),
            [0.0, 3.0],
            "NaN goes where the flag says"
        );
        let avg = forest(Aggregate::Avg);
        assert_eq!(scores(&avg, 1.0), [0.0, 1.5]);
        assert_eq!(
            scores(&avg, 0.5),
            [3.0, 1.0],
            "one contribution is not divided"
        );
    }

    #[test]
    fn tables_pointing_outside_are_refused() {
        let mut t = forest(Aggregate::Sum);
        t.nodes[1] = 99;
        assert!(t.validate().is_err());
        let mut t = forest(Aggregate::Sum);
        t.leaves[0] = 5;
        assert!(t.validate().is_err());
    }
}
