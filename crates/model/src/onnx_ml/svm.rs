//! `SVMClassifier` and `SVMRegressor` (scikit-learn's `SVC`, `NuSVC`, `SVR`,
//! `NuSVR`, `OneClassSVM` as skl2onnx exports them), which tract lacks. The
//! arithmetic follows onnxruntime's kernels, the reference implementation the zoo
//! test compares against: f32 kernels, one-vs-one pair sums in f64, Platt scaling
//! and the Wu-Lin-Weng pairwise coupling for probabilities, in the same order.

use tract_hir::internal::*;
use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;

/// The parser tract calls for an `SVMClassifier` node.
pub fn parse_classifier(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let svc = Svc::parse(node)?;
    Ok((expand(ClassifierExpansion(Arc::new(svc))), vec![]))
}

/// The parser tract calls for an `SVMRegressor` node.
pub fn parse_regressor(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let svr = Svr::parse(node)?;
    Ok((expand(RegressorExpansion(Arc::new(svr))), vec![]))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum KernelKind {
    Linear,
    Poly,
    Rbf,
    Sigmoid,
}

/// `kernel_type` and `kernel_params` (gamma, coef0, degree).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Kernel {
    kind: KernelKind,
    gamma: f32,
    coef0: f32,
    degree: f32,
}

impl Kernel {
    fn parse(node: &NodeProto) -> TractResult<Kernel> {
        let kind = match node.get_attr_opt("kernel_type")?.unwrap_or("LINEAR") {
            "LINEAR" => KernelKind::Linear,
            "POLY" => KernelKind::Poly,
            "RBF" => KernelKind::Rbf,
            "SIGMOID" => KernelKind::Sigmoid,
            other => bail!("unknown SVM kernel_type {other}"),
        };
        let params: Vec<f32> = node.get_attr_opt_vec("kernel_params")?.unwrap_or_default();
        let param = |i: usize| params.get(i).copied().unwrap_or(0.0);
        Ok(Kernel {
            kind,
            gamma: param(0),
            coef0: param(1),
            degree: param(2),
        })
    }

    /// The kernel of `x` with each row of `vectors` (row-major, `x.len()` wide).
    fn apply(&self, x: &[f32], vectors: &[f32], out: &mut Vec<f32>) {
        out.clear();
        for v in vectors.chunks_exact(x.len()) {
            out.push(match self.kind {
                KernelKind::Rbf => {
                    let d: f32 = x.iter().zip(v).map(|(a, b)| (a - b) * (a - b)).sum();
                    (-self.gamma * d).exp()
                }
                KernelKind::Linear => dot(x, v),
                KernelKind::Poly => (self.gamma * dot(x, v) + self.coef0).powf(self.degree),
                KernelKind::Sigmoid => (self.gamma * dot(x, v) + self.coef0).tanh(),
            });
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `post_transform`, as onnxruntime applies it to a row of scores.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Post {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
    Probit,
}

impl Post {
    fn parse(node: &NodeProto) -> TractResult<Post> {
        Ok(
            match node.get_attr_opt("post_transform")?.unwrap_or("NONE") {
                "NONE" => Post::None,
                "LOGISTIC" => Post::Logistic,
                "SOFTMAX" => Post::Softmax,
                "SOFTMAX_ZERO" => Post::SoftmaxZero,
                "PROBIT" => Post::Probit,
                other => bail!("unknown post_transform {other}"),
            },
        )
    }

    fn apply(self, row: &mut [f32]) {
        match self {
            Post::None => {}
            Post::Logistic => row.iter_mut().for_each(|v| *v = logistic(*v)),
            Post::Probit => row.iter_mut().for_each(|v| *v = probit(*v)),
            Post::Softmax | Post::SoftmaxZero => {
                let zero = self == Post::SoftmaxZero;
                let max = row.iter().copied().fold(-f32::MAX, f32::max);
                let mut sum = 0.0;
                for v in row.iter_mut() {
                    if zero && v.abs() <= 1e-7 {
                        *v *= (-max).exp();
                    } else {
                        *v = (*v - max).exp();
                        sum += *v;
                    }
                }
                row.iter_mut().for_each(|v| *v /= sum);
            }
        }
    }
}

fn logistic(v: f32) -> f32 {
    let p = 1.0 / (1.0 + (-v.abs()).exp());
    if v < 0.0 { 1.0 - p } else { p }
}

/// onnxruntime's probit: an approximation of `sqrt(2) * erfinv(2v - 1)`.
fn probit(v: f32) -> f32 {
    let x = 2.0 * v - 1.0;
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let ln = ((1.0 - x) * (1.0 + x)).ln();
    let a = 2.0 / (std::f32::consts::PI * 0.147) + 0.5 * ln;
    let b = 1.0 / 0.147 * ln;
    std::f32::consts::SQRT_2 * sign * (-a + (a * a - b).sqrt()).sqrt()
}

/// The class labels: integers or strings.
#[derive(Debug, Clone, PartialEq)]
enum Labels {
    Ints(Vec<i64>),
    Strings(Vec<String>),
}

impl Labels {
    fn len(&self) -> usize {
        match self {
            Labels::Ints(l) => l.len(),
            Labels::Strings(l) => l.len(),
        }
    }

    fn datum_type(&self) -> DatumType {
        match self {
            Labels::Ints(_) => DatumType::I64,
            Labels::Strings(_) => DatumType::String,
        }
    }

    fn tensor(&self, picks: &[usize]) -> TractResult<Tensor> {
        Ok(match self {
            Labels::Ints(l) => tensor1(&picks.iter().map(|&i| l[i]).collect::<Vec<_>>()),
            Labels::Strings(l) => tensor1(&picks.iter().map(|&i| l[i].clone()).collect::<Vec<_>>()),
        })
    }
}

/// An `SVMClassifier`.
#[derive(Debug, Clone, PartialEq)]
struct Svc {
    kernel: Kernel,
    features: usize,
    /// `[vectors, features]`; empty for a linear (liblinear) model.
    support: Vec<f32>,
    vectors_per_class: Vec<usize>,
    /// Where each class's support vectors start.
    starts: Vec<usize>,
    /// SVC: `[classes - 1, vectors]`; linear: `[classes, features]`.
    coefficients: Vec<f32>,
    rho: Vec<f32>,
    prob_a: Vec<f32>,
    prob_b: Vec<f32>,
    labels: Labels,
    post: Post,
}

// Ops are compared to merge equal nodes; a NaN in a weight only makes two equal ops
// look different, which costs nothing.
impl Eq for Svc {}

impl Svc {
    fn parse(node: &NodeProto) -> TractResult<Svc> {
        let ints: Option<Vec<i64>> = node.get_attr_opt_vec("classlabels_ints")?;
        let strings: Option<Vec<String>> = node.get_attr_opt_vec("classlabels_strings")?;
        let labels = match (ints, strings) {
            (Some(i), _) if !i.is_empty() => Labels::Ints(i),
            (_, Some(s)) if !s.is_empty() => Labels::Strings(s),
            _ => bail!("SVMClassifier needs classlabels_ints or classlabels_strings"),
        };
        let classes = labels.len();
        let vectors_per_class: Vec<usize> = node
            .get_attr_opt_vec("vectors_per_class")?
            .unwrap_or_default();
        let support: Vec<f32> = node
            .get_attr_opt_vec("support_vectors")?
            .unwrap_or_default();
        let coefficients: Vec<f32> = node.get_attr_vec("coefficients")?;
        let rho: Vec<f32> = node.get_attr_vec("rho")?;
        let prob_a: Vec<f32> = node.get_attr_opt_vec("prob_a")?.unwrap_or_default();
        let prob_b: Vec<f32> = node.get_attr_opt_vec("prob_b")?.unwrap_or_default();
        let vectors: usize = vectors_per_class.iter().sum();
        let pairs = classes * classes.saturating_sub(1) / 2;
        node.expect(
            prob_a.len() == prob_b.len(),
            "prob_a and prob_b of one length",
        )?;
        let mut kernel = Kernel::parse(node)?;
        let features = if vectors > 0 {
            node.expect(
                vectors_per_class.len() == classes,
                "vectors_per_class per class",
            )?;
            node.expect(
                support.len().is_multiple_of(vectors),
                "support vectors of equal length",
            )?;
            node.expect(
                coefficients.len() >= (classes - 1) * vectors,
                "coefficients for every class pair",
            )?;
            node.expect(rho.len() >= pairs, "one rho per class pair")?;
            if !prob_a.is_empty() {
                node.expect(prob_a.len() >= pairs, "one prob_a per class pair")?;
            }
            support.len() / vectors
        } else {
            kernel.kind = KernelKind::Linear;
            node.expect(!rho.is_empty(), "a rho")?;
            node.expect(
                coefficients.len().is_multiple_of(classes),
                "coefficients per class",
            )?;
            coefficients.len() / classes
        };
        node.expect(
            classes >= 2 && features > 0,
            "two classes and a feature at least",
        )?;
        let starts = vectors_per_class
            .iter()
            .scan(0, |at, n| {
                let start = *at;
                *at += n;
                Some(start)
            })
            .collect();
        Ok(Svc {
            kernel,
            features,
            support,
            vectors_per_class,
            starts,
            coefficients,
            rho,
            prob_a,
            prob_b,
            labels,
            post: Post::parse(node)?,
        })
    }

    fn classes(&self) -> usize {
        self.labels.len()
    }

    fn linear(&self) -> bool {
        self.support.is_empty()
    }

    /// Columns of the score output: a probability per class, a score per class
    /// (linear), or a decision value per class pair (two for a binary model).
    fn columns(&self) -> usize {
        let c = self.classes();
        if self.linear() || !self.prob_a.is_empty() {
            c
        } else if c > 2 {
            c * (c - 1) / 2
        } else {
            2
        }
    }

    /// One row: its scores into `out` (`columns()` long) and the winning class.
    fn row(&self, x: &[f32], kernels: &mut Vec<f32>, out: &mut [f32]) -> usize {
        let c = self.classes();
        if self.linear() {
            for (class, w) in self.coefficients.chunks_exact(self.features).enumerate() {
                out[class] = dot(x, w) + self.rho[0];
            }
            let best = argmax(out);
            self.post.apply(out);
            return best;
        }
        self.kernel.apply(x, &self.support, kernels);
        let v = kernels.len();
        let mut votes = vec![0u32; c];
        let mut scores = Vec::with_capacity(c * (c - 1) / 2);
        for i in 0..c - 1 {
            for j in i + 1..c {
                let side = |class: usize, row: usize| -> f64 {
                    let (start, n) = (self.starts[class], self.vectors_per_class[class]);
                    let coef = &self.coefficients[row * v + start..][..n];
                    coef.iter()
                        .zip(&kernels[start..start + n])
                        .map(|(a, b)| f64::from(a * b))
                        .sum()
                };
                let sum = side(i, j - 1) + side(j, i) + f64::from(self.rho[scores.len()]);
                votes[if sum > 0.0 { i } else { j }] += 1;
                scores.push(sum as f32);
            }
        }
        // The first class with the most votes, as onnxruntime picks it.
        let best = votes
            .iter()
            .enumerate()
            .fold(0, |b, (k, &n)| if n > votes[b] { k } else { b });
        if !self.prob_a.is_empty() {
            let mut r = vec![0f32; c * c];
            let mut k = 0;
            for i in 0..c - 1 {
                for j in i + 1..c {
                    let p = 1.0 - logistic(scores[k] * self.prob_a[k] + self.prob_b[k]);
                    let p = p.clamp(1e-7, 1.0 - 1e-7);
                    r[i * c + j] = p;
                    r[j * c + i] = 1.0 - p;
                    k += 1;
                }
            }
            pairwise_coupling(c, &r, out);
            self.post.apply(out);
        } else if c > 2 {
            out.copy_from_slice(&scores);
            self.post.apply(out);
        } else if self.post == Post::None {
            out.copy_from_slice(&[-scores[0], scores[0]]);
        } else if self.post == Post::Probit {
            out.copy_from_slice(&[probit(scores[0]), 0.0]);
        } else {
            out.copy_from_slice(&[1.0 - scores[0], scores[0]]);
        }
        best
    }
}

fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold(0, |b, (k, &v)| if v > row[b] { k } else { b })
}

/// Class probabilities from pairwise ones (`r[i*k + j]`: class i over j), method 2 of
/// Wu, Lin and Weng (2004), in f32 and in onnxruntime's order of operations.
fn pairwise_coupling(k: usize, r: &[f32], p: &mut [f32]) {
    let mut q = vec![0f32; k * k];
    let mut qp = vec![0f32; k];
    let eps = 0.005 / k as f32;
    for i in 0..k {
        p[i] = 1.0 / k as f32;
        for j in 0..i {
            q[i * k + i] += r[j * k + i] * r[j * k + i];
            q[i * k + j] = q[j * k + i];
        }
        for j in i + 1..k {
            q[i * k + i] += r[j * k + i] * r[j * k + i];
            q[i * k + j] = -r[j * k + i] * r[i * k + j];
        }
    }
    for _ in 0..100 {
        let mut pqp = 0.0;
        for i in 0..k {
            qp[i] = (0..k).map(|j| q[i * k + j] * p[j]).fold(0.0, |a, b| a + b);
            pqp += p[i] * qp[i];
        }
        let max_error = qp.iter().map(|v| (v - pqp).abs()).fold(0.0, f32::max);
        if max_error < eps {
            break;
        }
        for i in 0..k {
            let diff = (-qp[i] + pqp) / q[i * k + i];
            p[i] += diff;
            pqp = (pqp + diff * (diff * q[i * k + i] + 2.0 * qp[i])) / (1.0 + diff) / (1.0 + diff);
            for j in 0..k {
                qp[j] = (qp[j] + diff * q[i * k + j]) / (1.0 + diff);
                p[j] /= 1.0 + diff;
            }
        }
    }
}

/// An `SVMRegressor`.
#[derive(Debug, Clone, PartialEq)]
struct Svr {
    kernel: Kernel,
    features: usize,
    /// `[vectors, features]`; empty for a linear model.
    support: Vec<f32>,
    /// SVR: one per support vector; linear: one per feature.
    coefficients: Vec<f32>,
    rho: f32,
    one_class: bool,
    post: Post,
}

// See `Svc`: equality only merges equal nodes.
impl Eq for Svr {}

impl Svr {
    fn parse(node: &NodeProto) -> TractResult<Svr> {
        let vectors: usize = node.get_attr_opt("n_supports")?.unwrap_or(0);
        let support: Vec<f32> = node
            .get_attr_opt_vec("support_vectors")?
            .unwrap_or_default();
        let coefficients: Vec<f32> = node.get_attr_vec("coefficients")?;
        let rho: Vec<f32> = node.get_attr_vec("rho")?;
        node.expect(!rho.is_empty(), "a rho")?;
        let mut kernel = Kernel::parse(node)?;
        let features = if vectors > 0 {
            node.expect(
                support.len().is_multiple_of(vectors),
                "support vectors of equal length",
            )?;
            node.expect(
                coefficients.len() >= vectors,
                "a coefficient per support vector",
            )?;
            support.len() / vectors
        } else {
            kernel.kind = KernelKind::Linear;
            coefficients.len()
        };
        node.expect(features > 0, "a feature at least")?;
        let post = Post::parse(node)?;
        node.expect(
            matches!(post, Post::None | Post::Probit),
            "post_transform NONE or PROBIT",
        )?;
        Ok(Svr {
            kernel,
            features,
            support: if vectors > 0 { support } else { Vec::new() },
            coefficients,
            rho: rho[0],
            one_class: node.get_attr_opt::<i64>("one_class")?.unwrap_or(0) != 0,
            post,
        })
    }

    fn row(&self, x: &[f32], kernels: &mut Vec<f32>) -> f32 {
        let sum = if self.support.is_empty() {
            dot(x, &self.coefficients) + self.rho
        } else {
            self.kernel.apply(x, &self.support, kernels);
            dot(kernels, &self.coefficients) + self.rho
        };
        let value = if self.one_class {
            if sum > 0.0 { 1.0 } else { -1.0 }
        } else {
            sum
        };
        if self.post == Post::Probit {
            probit(value)
        } else {
            value
        }
    }
}

/// The input as `[N, features]` f32 rows.
fn rows(input: &Tensor, features: usize) -> TractResult<(usize, &[f32])> {
    let shape = input.shape();
    ensure!(
        shape.len() == 2 && shape[1] == features,
        "SVM input of shape {shape:?}, expected [N, {features}]"
    );
    Ok((shape[0], input.try_as_plain_ram()?.as_slice::<f32>()?))
}

/// Shape rules shared by both expansions: `[N, features]` in.
fn input_rules<'r, 'p: 'r>(
    s: &mut Solver<'r>,
    inputs: &'p [TensorProxy],
    features: usize,
) -> InferenceResult {
    check_input_arity(inputs, 1)?;
    s.equals(&inputs[0].rank, 2)?;
    s.equals(&inputs[0].shape[1], features.to_dim())?;
    Ok(())
}

/// Wires `op` behind a cast of the input to f32, the type both SVM ops compute in
/// (onnxruntime casts double and integer inputs the same way).
fn wire_on_f32(
    prefix: &str,
    model: &mut TypedModel,
    inputs: &[OutletId],
    op: impl TypedOp,
) -> TractResult<TVec<OutletId>> {
    let x = model.wire_node(
        format!("{prefix}.cast"),
        tract_hir::tract_core::ops::cast::cast(f32::datum_type()),
        inputs,
    )?;
    model.wire_node(prefix, op, &x)
}

#[derive(Debug, Clone)]
struct ClassifierExpansion(Arc<Svc>);

impl Expansion for ClassifierExpansion {
    fn name(&self) -> StaticName {
        "SVMClassifier".into()
    }

    fn nboutputs(&self) -> TractResult<usize> {
        Ok(2)
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        input_rules(s, inputs, self.0.features)?;
        check_output_arity(outputs, 2)?;
        s.equals(&outputs[0].datum_type, self.0.labels.datum_type())?;
        s.equals(&outputs[0].rank, 1)?;
        s.equals(&outputs[0].shape[0], &inputs[0].shape[0])?;
        s.equals(&outputs[1].datum_type, DatumType::F32)?;
        s.equals(&outputs[1].rank, 2)?;
        s.equals(&outputs[1].shape[0], &inputs[0].shape[0])?;
        s.equals(&outputs[1].shape[1], self.0.columns().to_dim())?;
        Ok(())
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        wire_on_f32(prefix, model, inputs, SvmClassifier(self.0.clone()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SvmClassifier(Arc<Svc>);

impl Op for SvmClassifier {
    fn name(&self) -> StaticName {
        "SVMClassifier".into()
    }

    op_as_typed_op!();
}

impl EvalOp for SvmClassifier {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let svc = &self.0;
        let (n, x) = rows(&input, svc.features)?;
        let cols = svc.columns();
        let mut scores = vec![0f32; n * cols];
        let mut picks = Vec::with_capacity(n);
        let mut kernels = Vec::new();
        for (row, out) in x
            .chunks_exact(svc.features)
            .zip(scores.chunks_exact_mut(cols))
        {
            picks.push(svc.row(row, &mut kernels, out));
        }
        let labels = svc.labels.tensor(&picks)?;
        let scores = Tensor::from_shape(&[n, cols], &scores)?;
        Ok(tvec!(labels.into_tvalue(), scores.into_tvalue()))
    }
}

impl TypedOp for SvmClassifier {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let n = inputs[0].shape[0].clone();
        Ok(tvec!(
            self.0.labels.datum_type().fact([n.clone()]),
            f32::fact([n, self.0.columns().to_dim()])
        ))
    }

    as_op!();
}

#[derive(Debug, Clone)]
struct RegressorExpansion(Arc<Svr>);

impl Expansion for RegressorExpansion {
    fn name(&self) -> StaticName {
        "SVMRegressor".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        input_rules(s, inputs, self.0.features)?;
        check_output_arity(outputs, 1)?;
        s.equals(&outputs[0].datum_type, DatumType::F32)?;
        s.equals(&outputs[0].rank, 2)?;
        s.equals(&outputs[0].shape[0], &inputs[0].shape[0])?;
        s.equals(&outputs[0].shape[1], 1.to_dim())?;
        Ok(())
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        wire_on_f32(prefix, model, inputs, SvmRegressor(self.0.clone()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SvmRegressor(Arc<Svr>);

impl Op for SvmRegressor {
    fn name(&self) -> StaticName {
        "SVMRegressor".into()
    }

    op_as_typed_op!();
}

impl EvalOp for SvmRegressor {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let svr = &self.0;
        let (n, x) = rows(&input, svr.features)?;
        let mut kernels = Vec::new();
        let values: Vec<f32> = x
            .chunks_exact(svr.features)
            .map(|row| svr.row(row, &mut kernels))
            .collect();
        Ok(tvec!(Tensor::from_shape(&[n, 1], &values)?.into_tvalue()))
    }
}

impl TypedOp for SvmRegressor {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact([inputs[0].shape[0].clone(), 1.to_dim()])))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coupling_of_consistent_pairs_gives_back_the_classes() {
        // Pairwise probabilities made from p = (0.5, 0.3, 0.2).
        let p = [0.5f32, 0.3, 0.2];
        let mut r = vec![0f32; 9];
        for i in 0..3 {
            for j in 0..3 {
                if i != j {
                    r[i * 3 + j] = p[i] / (p[i] + p[j]);
                }
            }
        }
        let mut out = [0f32; 3];
        pairwise_coupling(3, &r, &mut out);
        for (a, b) in out.iter().zip(p) {
            assert!((a - b).abs() < 1e-3, "{out:?}");
        }
    }

    #[test]
    fn post_transforms() {
        let mut row = [1.0f32, 2.0, 3.0];
        Post::Softmax.apply(&mut row);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(row[2] > row[1] && row[1] > row[0]);
        assert!((logistic(0.0) - 0.5).abs() < 1e-7);
        assert!(probit(0.5).abs() < 1e-6);
    }
}
