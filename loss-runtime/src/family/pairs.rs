//! The `pairs` family: losses over the pairs of a batch, written against the similarity
//! matrix `s[i][j]` of anchors `i` and references `j`, with the anchors' and references'
//! labels.
//!
//! A pairs loss accepts, as its input:
//! - embeddings `[N, d]` with labels `[usize]`: the references are the batch itself
//!   (`S = sim(E, E)`, computed by the [similarity op](crate::core::similarity) with the
//!   loss's `metric`), and `pos(i)` leaves out the self-pair `j = i`;
//! - [`WithRefs`]`(embeddings, ref_embeddings)` with [`PairLabels`]: a separate reference
//!   set (a memory bank, class proxies), as pytorch-metric-learning's `ref_emb`;
//! - [`Similarities`]`(s)` with labels or [`PairLabels`]: a similarity matrix computed
//!   elsewhere.
//!
//! The similarity op and the loss head are two tape nodes; between them dfdx keeps only
//! `S` and its gradient `W = ∂L/∂S` (the General Pair Weighting weights, which
//! `pair_weights` returns), and the loss head keeps O(N) row statistics.

use std::cell::Cell;
use std::ops::Range;

use dfdx::prelude::*;

use crate::core::alloc;
use crate::core::info::{Family, InputInfo};
use crate::core::kernel::{Batch, Kernel, RowBlocks, Workspace};
use crate::core::real::Real;
use crate::core::similarity::blocks::{self, block_rows};
use crate::core::similarity::{similarity, similarity_with};
use crate::core::tape;
use crate::error::LossError;
use crate::family::declared::Declared;

/// Marks the input of a pairs loss as a ready similarity matrix `[N, M]`.
#[derive(Clone, Debug)]
pub struct Similarities<T>(pub T);

/// Embeddings `[N, d]` compared with a separate reference set `[M, d]`.
#[derive(Clone, Debug)]
pub struct WithRefs<A, B>(pub A, pub B);

/// Labels of the anchors and of the references, for a separate reference set.
#[derive(Clone, Copy, Debug)]
pub struct PairLabels<'a> {
    /// One label per anchor (row of `S`).
    pub labels: &'a [usize],
    /// One label per reference (column of `S`).
    pub ref_labels: &'a [usize],
}

/// Marks the input of a pairs loss as `V` views of `N` items, a tensor `[V, N, d]`: view
/// `v` of item `n` is row `v·N + n` of the batch, and `v[i]` in a definition reads a row's
/// view. Its target is one label per item (`[usize]` of length `N`, shared by the item's
/// views), or [`SelfSupervised`].
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// // two augmentations of 4 items, 3 features each
/// let z: Tensor<Rank3<2, 4, 3>, f64, _> = dev.sample_normal();
/// let loss = MultiSimilarity::default().forward(Views(z), &SelfSupervised);
/// assert!(loss.array().is_finite());
/// ```
#[derive(Clone, Debug)]
pub struct Views<T>(pub T);

/// The target of a [`Views`] input whose items have no labels: every item is its own
/// class, so the positives of a row are the other views of its item (SimCLR's NT-Xent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SelfSupervised;

/// The label and view of every row of `S` and of every reference, as the kernels read
/// them (`Batch::labels`, in the family's order).
struct RowIds {
    labels: Vec<usize>,
    ref_labels: Vec<usize>,
    views: Vec<usize>,
    ref_views: Vec<usize>,
}

impl RowIds {
    /// `ref_labels = None` means the references are the batch, which then shares the
    /// anchors' `views` (all 0 when `None`); a separate reference set has a single view.
    fn new(
        labels: &[usize],
        ref_labels: Option<&[usize]>,
        views: Option<&[usize]>,
    ) -> Result<Self, LossError> {
        let n = labels.len();
        let copy = |what, x: &[usize]| alloc::try_map(what, x, |&l| l);
        let zeros = |what, len| alloc::try_filled(what, len, 0usize);
        let views = match views {
            Some(v) => copy("the rows' views", v)?,
            None => zeros("the rows' views", n)?,
        };
        let (ref_labels, ref_views) = match ref_labels {
            None => (
                copy("the references' labels", labels)?,
                copy("the references' views", &views)?,
            ),
            Some(r) => (
                copy("the references' labels", r)?,
                zeros("the references' views", r.len())?,
            ),
        };
        Ok(Self {
            labels: copy("the labels", labels)?,
            ref_labels,
            views,
            ref_views,
        })
    }

    /// The ids of the anchors `rows` (with every reference), in the family's order.
    fn rows(&self, rows: Range<usize>) -> [&[usize]; 4] {
        [
            &self.labels[rows.clone()],
            &self.ref_labels,
            &self.views[rows],
            &self.ref_views,
        ]
    }

    /// The four vectors, in the family's order.
    fn into_vecs(self) -> Vec<Vec<usize>> {
        vec![self.labels, self.ref_labels, self.views, self.ref_views]
    }
}

/// The inputs of the pairs family, in call order.
pub const INPUTS: &[InputInfo] = Family::Pairs.inputs();

/// How a pairs loss given embeddings reaches its similarity matrix `S`.
///
/// A loss whose value is a sum or mean of per-anchor terms, each reading only its own row
/// of `S` (the compiler decides it from the definition: [`RowBlocks`]), can run the
/// similarity op and the loss head together a block of rows at a time, so that neither `S`
/// nor its gradient ever exists whole (see [`crate::core::similarity::blocks`]): memory
/// `O(N·d)` instead of `O(N·M)`. Any other loss, and a [`Similarities`] input, always uses
/// the whole matrix. Set it for a scope with [`with_pairs_path`].
///
/// The two paths give the same loss and gradients up to rounding (the mean is taken block
/// by block). The blocks compute the gradient with the value, in the forward pass, and
/// report a non-finite gradient as [`LossError::NonFiniteGradient`] there. A batch with
/// several faults may report another one first: blocks check each block's similarities
/// just before its loss terms, the whole matrix checks all similarities first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PairsPath {
    /// Blocks of rows from [`AUTO_BLOCKED_ENTRIES`] entries of `S` on (where they were
    /// measured to be no slower, see `BENCHMARKS.md`) or when the whole matrix would not
    /// fit in memory; the whole matrix below.
    #[default]
    Auto,
    /// Always the whole matrix.
    Materialised,
    /// Blocks of `rows` anchors (at least 1) whenever the loss splits by anchors.
    RowBlocks {
        /// Anchors per block.
        rows: usize,
    },
}

/// The size of `S` (anchors × references) from which [`PairsPath::Auto`] runs in blocks.
pub const AUTO_BLOCKED_ENTRIES: usize = 4096 * 4096;

thread_local! {
    static PATH: Cell<PairsPath> = const { Cell::new(PairsPath::Auto) };
}

/// Runs `f` with the pairs losses it calls on this thread taking `path`, then restores
/// the path in force before.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::family::pairs::{with_pairs_path, PairsPath};
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let e: Tensor<Rank2<6, 3>, f64, _> = dev.sample_normal();
/// let y = [0, 0, 1, 1, 2, 2];
/// let whole = with_pairs_path(PairsPath::Materialised, || MultiSimilarity::default().forward(e.clone(), &y));
/// let blocks = with_pairs_path(PairsPath::RowBlocks { rows: 4 }, || MultiSimilarity::default().forward(e.clone(), &y));
/// assert!((whole.array() - blocks.array()).abs() < 1e-12);
/// ```
pub fn with_pairs_path<T>(path: PairsPath, f: impl FnOnce() -> T) -> T {
    let before = PATH.with(|p| p.replace(path));
    let out = f();
    PATH.with(|p| p.set(before));
    out
}

/// The anchors per block when `K` runs on an `n × m` batch from embeddings in blocks
/// (see [`PairsPath`]), `None` for the whole matrix.
fn rows_per_block<K: Kernel, E: Dtype, T: Tape<E, Cpu>>(n: usize, m: usize) -> Option<usize> {
    if K::ROW_BLOCKS == RowBlocks::No {
        return None;
    }
    match PATH.with(Cell::get) {
        PairsPath::Materialised => None,
        PairsPath::RowBlocks { rows } => Some(rows.max(1)),
        PairsPath::Auto => {
            let large = n.saturating_mul(m) >= AUTO_BLOCKED_ENTRIES;
            (large || ensure_room_for_similarities::<E, T>(n, m).is_err()).then(|| block_rows(m))
        }
    }
}

/// The loss head of `kernel` on one block of anchors (see [`blocks::Head`]): checks the
/// block's similarities, runs the kernel on it with the anchors' global positions, and
/// adds the block's derived gradient, scaled by its share of the mean, where wanted.
fn block_head<'a, K: Kernel, E: Real>(
    kernel: &'a K,
    (n, m): (usize, usize),
    ids: &'a RowIds,
    exclude_self: bool,
) -> Box<blocks::Head<'a, E>> {
    Box::new(move |rows: Range<usize>, s: &[E], w: Option<&mut [E]>| {
        check_computed_similarities(s, m, rows.start, "embeddings")?;
        let values: [&[E]; 1] = [s];
        let label_sets = ids.rows(rows.clone());
        let batch = Batch {
            first_sample: rows.start,
            ..layout(rows.len(), m, exclude_self).batch(&values, &label_sets)
        };
        let mut ws = Workspace::with_slots(0);
        let value = kernel.kernel_forward(&batch, &mut ws);
        // the kernel numbers the block's anchors from 0
        ws.failed = ws.failed.map(|(id, at)| (id, at.map(|i| rows.start + i)));
        ws.first_nonfinite_sample = ws.first_nonfinite_sample.map(|i| rows.start + i);
        super::check_requirements::<K, E>(&ws)?;
        super::check_loss_value::<K, E>(value, &ws)?;
        let share = match K::ROW_BLOCKS {
            RowBlocks::Mean => E::from_usize(rows.len()) / E::from_usize(n),
            RowBlocks::Sum | RowBlocks::No => E::one(),
        };
        if let Some(w) = w {
            kernel.kernel_backward(&batch, &ws, share, &mut [w]);
        }
        Ok(value * share)
    })
}

/// Where a similarity matrix came from: passed by the user, or computed by the
/// similarity op from the named embeddings input.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Source {
    /// The user passed `similarities`.
    Given,
    /// The similarity op computed it from this embeddings input.
    ComputedFrom(&'static str),
}

/// Checks a similarity matrix against its labels. `ref_labels = None` means the
/// references are the batch.
fn check_inputs<R: Real>(
    (n, m): (usize, usize),
    s: &[R],
    source: Source,
    labels: &[usize],
    ref_labels: Option<&[usize]>,
) -> Result<(), LossError> {
    if n == 0 || m == 0 {
        return Err(LossError::EmptyBatch {
            input: "similarities",
        });
    }
    if labels.len() != n {
        return Err(LossError::BatchSizeMismatch {
            expected_by: "similarities",
            expected: n,
            found_in: "labels",
            found: labels.len(),
        });
    }
    match ref_labels {
        None if m != n => {
            return Err(LossError::BadShape {
                input: "similarities",
                shape: vec![n, m],
                expected: "a square [N, N] matrix when the references are the batch (pass `PairLabels` for a reference set)",
            })
        }
        Some(r) if r.len() != m => {
            return Err(LossError::ReferenceCountMismatch {
                input: "similarities",
                columns: m,
                found_in: "ref_labels",
                found: r.len(),
            })
        }
        _ => {}
    }
    check_similarity_values(s, m, source)
}

/// The first non-finite similarity: a bad input where the user passed the matrix, an
/// overflow of the similarity op where it was computed from embeddings (whose values
/// were checked finite).
pub(crate) fn check_similarity_values<R: Real>(
    s: &[R],
    m: usize,
    source: Source,
) -> Result<(), LossError> {
    match source {
        Source::Given => super::check_finite("similarities", &[s.len() / m.max(1), m], s),
        Source::ComputedFrom(input) => check_computed_similarities(s, m, 0, input),
    }
}

/// The first non-finite entry of rows `first_row..` of a similarity matrix that the
/// similarity op computed from `input` (`m` columns), as an overflow at its place in the
/// whole matrix.
fn check_computed_similarities<R: Real>(
    s: &[R],
    m: usize,
    first_row: usize,
    input: &'static str,
) -> Result<(), LossError> {
    match crate::core::parallel::first_nonfinite(s) {
        Some(k) => Err(LossError::SimilarityOverflow {
            input,
            row: first_row + k / m.max(1),
            col: k % m.max(1),
            value: s[k].to_f64(),
        }),
        None => Ok(()),
    }
}

/// The name of the hyper-parameter by which a pairs loss declares that it costs
/// `O(N·M²)` time (a rank of each pair among the references, counted), and the largest
/// `N·M²` it runs.
pub const MAX_WORK: &str = "max_work";

/// Refuses an `n × m` batch whose `n·m²` exceeds the loss's [`MAX_WORK`], if it has one,
/// so that a batch that would run for hours fails at once.
pub(crate) fn check_work<K: Kernel>(kernel: &K, n: usize, m: usize) -> Result<(), LossError> {
    let Some(limit) = kernel.hyper(MAX_WORK) else {
        return Ok(());
    };
    let work = n as f64 * (m as f64) * (m as f64);
    if work <= limit {
        return Ok(());
    }
    Err(LossError::TooMuchWork {
        loss: K::INFO.name,
        work,
        measure: "N·M² (anchors × references²)",
        limit_name: MAX_WORK,
        limit,
    })
}

/// The layout of an `n × m` similarity matrix.
fn layout(n: usize, m: usize, exclude_self: bool) -> super::Layout {
    super::Layout {
        refs: m,
        exclude_self,
        ..super::Layout::samples(n)
    }
}

/// Runs `kernel` on a similarity matrix and attaches its derived backward.
pub fn try_forward_similarities<K, N, M, E, T>(
    kernel: &K,
    similarities: Tensor<(N, M), E, Cpu, T>,
    labels: &[usize],
    ref_labels: Option<&[usize]>,
    declared: Declared<E>,
) -> Result<Tensor<(), E, Cpu, T>, LossError>
where
    K: Kernel,
    N: Dim,
    M: Dim,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    forward_similarities(
        kernel,
        similarities,
        Source::Given,
        (labels, ref_labels, None),
        declared,
    )
}

/// [`try_forward_similarities`] for a matrix from `source`; `views` are the anchors'
/// views (all 0 when `None`), which a batch against itself shares with its references.
fn forward_similarities<K, N, M, E, T>(
    kernel: &K,
    similarities: Tensor<(N, M), E, Cpu, T>,
    source: Source,
    (labels, ref_labels, views): (&[usize], Option<&[usize]>, Option<&[usize]>),
    declared: Declared<E>,
) -> Result<Tensor<(), E, Cpu, T>, LossError>
where
    K: Kernel,
    N: Dim,
    M: Dim,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    kernel.validate_for::<E>()?;
    let (n, m) = (similarities.shape().0.size(), similarities.shape().1.size());
    check_work(kernel, n, m)?;
    if T::OWNS_TAPE {
        // the gradient of `S`, which dfdx allocates in `backward()`, with the copy below
        alloc::ensure_room::<E>(
            "the copy of the similarity matrix and its gradient",
            n.saturating_mul(m).saturating_mul(2),
        )?;
    }
    let s = tape::try_elements("a copy of the similarity matrix", &similarities)?;
    check_inputs((n, m), &s, source, labels, ref_labels)?;
    let exclude_self = ref_labels.is_none();
    let ids = RowIds::new(labels, ref_labels, views)?;
    super::run(
        kernel,
        (similarities, "similarities"),
        vec![s],
        ids.into_vecs(),
        layout(n, m, exclude_self),
        declared,
    )
}

fn check_embeddings<R: Real>(
    input: &'static str,
    rows: usize,
    dim: usize,
    data: &[R],
) -> Result<(), LossError> {
    if rows == 0 || dim == 0 {
        return Err(LossError::EmptyBatch { input });
    }
    super::check_finite(input, &[rows, dim], data)
}

/// Checks that the `n × m` similarity matrix fits in memory with what the loss head
/// keeps beside it (its copy, and with a tape its gradient): the similarity op's product
/// and the gradient are allocated by dfdx, infallibly, so a batch too large is refused
/// here, before any work.
pub(crate) fn ensure_room_for_similarities<E, T: Tape<E, Cpu>>(
    n: usize,
    m: usize,
) -> Result<(), LossError>
where
    E: Dtype,
{
    let matrices = if T::OWNS_TAPE { 3 } else { 2 };
    alloc::ensure_room::<E>(
        "the similarity matrix (with its copy and gradient)",
        n.saturating_mul(m).saturating_mul(matrices),
    )
}

/// Embeddings against the batch itself: similarity op (with the loss's metric), then the
/// loss head.
pub fn try_forward_embeddings<K, N, D, E, T>(
    kernel: &K,
    embeddings: Tensor<(N, D), E, Cpu, T>,
    labels: &[usize],
    declared: Declared<E>,
) -> Result<Tensor<(), E, Cpu, T>, LossError>
where
    K: Kernel,
    N: Dim,
    D: Dim,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    forward_embeddings(kernel, "embeddings", embeddings, labels, None, declared)
}

/// Views `[V, N, d]` of `N` items against the batch itself: the rows are laid out view
/// by view (row `v·N + n` is view `v` of item `n`), so `v[i]` is the row's view and
/// `pos(i)` the other views of its item. `item_labels` gives each item a class (one per
/// item, `[N]`, shared by its views: supervised contrastive learning); `None` makes
/// every item its own class ([`SelfSupervised`]).
pub fn try_forward_views<K, V, N, D, E, T>(
    kernel: &K,
    views: Tensor<(V, N, D), E, Cpu, T>,
    item_labels: Option<&[usize]>,
    declared: Declared<E>,
) -> Result<Tensor<(), E, Cpu, T>, LossError>
where
    K: Kernel,
    V: Dim,
    N: Dim,
    D: Dim,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    let (v, n, d) = (
        views.shape().0.size(),
        views.shape().1.size(),
        views.shape().2.size(),
    );
    if v == 0 || n == 0 || d == 0 {
        return Err(LossError::EmptyBatch { input: "views" });
    }
    if let Some(labels) = item_labels.filter(|l| l.len() != n) {
        return Err(LossError::BatchSizeMismatch {
            expected_by: "views (one label per item)",
            expected: n,
            found_in: "labels",
            found: labels.len(),
        });
    }
    // the tensor holds `v·n·d` elements, so this does not overflow
    let rows = v * n;
    let labels: Vec<usize> = (0..rows)
        .map(|r| {
            let item = item_of_row(r, n);
            item_labels.map_or(item, |l| l[item])
        })
        .collect();
    let view_ids: Vec<usize> = (0..rows).map(|r| view_of_row(r, n)).collect();
    // dfdx's reshape copies a tensor that is not contiguous
    let flat = views
        .try_reshape_like(&(rows, d))
        .map_err(|_| LossError::OutOfMemory {
            what: "the views laid out as rows",
            bytes: rows
                .saturating_mul(d)
                .saturating_mul(std::mem::size_of::<E>()),
        })?;
    forward_embeddings(kernel, "views", flat, &labels, Some(&view_ids), declared)
}

/// The dataset id of every row of a [`Views`] batch of a loss with state: `ids` names
/// the `N` items, and row `v·N + n` is item `n`'s.
pub fn view_row_ids<V: Dim, N: Dim, D: Dim, E: Dtype, T>(
    views: &Tensor<(V, N, D), E, Cpu, T>,
    ids: &[usize],
) -> Result<Vec<usize>, LossError> {
    let (v, n) = (views.shape().0.size(), views.shape().1.size());
    if ids.len() != n {
        return Err(LossError::BatchSizeMismatch {
            expected_by: "views (one id per item)",
            expected: n,
            found_in: "ids",
            found: ids.len(),
        });
    }
    let mut rows = alloc::try_filled("the rows' dataset ids", v * n, 0)?;
    for (r, id) in rows.iter_mut().enumerate() {
        *id = ids[item_of_row(r, n)];
    }
    Ok(rows)
}

/// The item of row `r` of a [`Views`] batch of `n` items (view-major: row `v·n + i` is
/// view `v` of item `i`).
fn item_of_row(r: usize, n: usize) -> usize {
    r % n
}

/// The view of row `r` of a [`Views`] batch of `n` items.
fn view_of_row(r: usize, n: usize) -> usize {
    r / n
}

/// [`try_forward_embeddings`] with the rows' views (all 0 when `None`).
fn forward_embeddings<K, N, D, E, T>(
    kernel: &K,
    input: &'static str,
    embeddings: Tensor<(N, D), E, Cpu, T>,
    labels: &[usize],
    views: Option<&[usize]>,
    declared: Declared<E>,
) -> Result<Tensor<(), E, Cpu, T>, LossError>
where
    K: Kernel,
    N: Dim,
    D: Dim,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    kernel.validate_for::<E>()?;
    let (n, d) = (embeddings.shape().0.size(), embeddings.shape().1.size());
    check_embeddings(
        input,
        n,
        d,
        &tape::try_elements("a copy of the embeddings", &embeddings)?,
    )?;
    if labels.len() != n {
        return Err(LossError::BatchSizeMismatch {
            expected_by: input,
            expected: n,
            found_in: "labels",
            found: labels.len(),
        });
    }
    check_work(kernel, n, n)?;
    if let Some(rows) = rows_per_block::<K, E, T>(n, n) {
        let ids = RowIds::new(labels, None, views)?;
        let mut head = block_head(kernel, (n, n), &ids, true);
        let out = blocks::blocked(
            embeddings,
            kernel.metric(),
            rows,
            (K::INFO.name, &mut *head),
        )?;
        return super::check_loss_value::<K, E>(out.array(), &Workspace::with_slots(0))
            .map(|()| out);
    }
    ensure_room_for_similarities::<E, T>(n, n)?;
    forward_similarities(
        kernel,
        similarity(embeddings, kernel.metric()),
        Source::ComputedFrom(input),
        (labels, None, views),
        declared,
    )
}

/// Embeddings against a separate reference set.
pub fn try_forward_with_refs<K, N, M, D, E, T, T2>(
    kernel: &K,
    embeddings: Tensor<(N, D), E, Cpu, T>,
    refs: Tensor<(M, D), E, Cpu, T2>,
    labels: &PairLabels<'_>,
    declared: Declared<E>,
) -> Result<Tensor<(), E, Cpu, T>, LossError>
where
    K: Kernel,
    N: Dim,
    M: Dim,
    D: Dim,
    E: Dtype + Real,
    T: Tape<E, Cpu> + Merge<T2>,
    T2: Tape<E, Cpu>,
{
    kernel.validate_for::<E>()?;
    let (n, d) = (embeddings.shape().0.size(), embeddings.shape().1.size());
    let (m, d2) = (refs.shape().0.size(), refs.shape().1.size());
    check_embeddings(
        "embeddings",
        n,
        d,
        &tape::try_elements("a copy of `embeddings`", &embeddings)?,
    )?;
    check_embeddings(
        "ref_embeddings",
        m,
        d2,
        &tape::try_elements("a copy of `ref_embeddings`", &refs)?,
    )?;
    if d2 != d {
        return Err(LossError::BadShape {
            input: "ref_embeddings",
            shape: vec![m, d2],
            expected: "[M, d] with the embeddings' row length d",
        });
    }
    if labels.labels.len() != n {
        return Err(LossError::BatchSizeMismatch {
            expected_by: "embeddings",
            expected: n,
            found_in: "labels",
            found: labels.labels.len(),
        });
    }
    if labels.ref_labels.len() != m {
        return Err(LossError::BatchSizeMismatch {
            expected_by: "ref_embeddings",
            expected: m,
            found_in: "ref_labels",
            found: labels.ref_labels.len(),
        });
    }
    check_work(kernel, n, m)?;
    if let Some(rows) = rows_per_block::<K, E, T>(n, m) {
        let ids = RowIds::new(labels.labels, Some(labels.ref_labels), None)?;
        let mut head = block_head(kernel, (n, m), &ids, false);
        let out = blocks::blocked_with(
            embeddings,
            refs,
            kernel.metric(),
            rows,
            (K::INFO.name, &mut *head),
        )?;
        return super::check_loss_value::<K, E>(out.array(), &Workspace::with_slots(0))
            .map(|()| out);
    }
    ensure_room_for_similarities::<E, T>(n, m)?;
    let s = similarity_with(embeddings, refs, kernel.metric());
    forward_similarities(
        kernel,
        s,
        Source::ComputedFrom("embeddings"),
        (labels.labels, Some(labels.ref_labels), None),
        declared,
    )
}

/// The General Pair Weighting weights `W = ∂L/∂S` for a similarity matrix: the loss
/// head's derived backward, run with seed 1. `ref_labels = None` means the references
/// are the batch.
pub fn pair_weights<K, N, M, E>(
    kernel: &K,
    similarities: &Tensor<(N, M), E, Cpu>,
    labels: &[usize],
    ref_labels: Option<&[usize]>,
) -> Result<Tensor<(N, M), E, Cpu>, LossError>
where
    K: Kernel,
    N: Dim,
    M: Dim,
    E: Dtype + Real,
{
    kernel.validate_for::<E>()?;
    if !K::INFO.declared.is_empty() {
        return Err(LossError::DeclaredInputsMissing {
            loss: K::INFO.name,
            count: K::INFO.declared.len(),
            what: "pair weights",
        });
    }
    let (n, m) = (similarities.shape().0.size(), similarities.shape().1.size());
    check_work(kernel, n, m)?;
    let s = tape::try_read("a copy of the similarity matrix", similarities)?;
    check_inputs((n, m), &s, Source::Given, labels, ref_labels)?;
    let exclude_self = ref_labels.is_none();
    let ids = RowIds::new(labels, ref_labels, None)?;
    let values: [&[E]; 1] = [&s];
    let label_sets = ids.rows(0..n);
    let b = layout(n, m, exclude_self).batch(&values, &label_sets);
    let mut ws = Workspace::default();
    let value = kernel.kernel_forward(&b, &mut ws);
    super::check_requirements::<K, E>(&ws)?;
    super::check_loss_value::<K, E>(value, &ws)?;
    let mut w = alloc::try_filled("the pair weights", n * m, E::zero())?;
    kernel.kernel_backward(&b, &ws, E::one(), &mut [&mut w]);
    LossError::check_gradient(K::INFO.name, "similarities", &w)?;
    Ok(similarities
        .device()
        .tensor_from_vec(w, *similarities.shape()))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod views;
