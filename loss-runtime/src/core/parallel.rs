//! Row-parallel loops for the generated kernels.
//!
//! A generated loop nest whose outer index `i` only writes row `i` of its output (a
//! slot's buffer, or an input's gradient) runs its rows on rayon's thread pool. The
//! kernel hands over the output split into disjoint rows, so no two threads write the
//! same element and no `unsafe` is needed; small loops stay on the calling thread, where
//! spawning would cost more than it saves.

use rayon::prelude::*;

/// Below this many elementary steps a loop runs sequentially.
const MIN_PARALLEL_WORK: usize = 1 << 15;

/// Calls `f(i, row_i)` for every row of `out` (rows of `row_len` elements), in parallel
/// when `rows × work_per_row` is large enough.
pub fn rows<R, F>(out: &mut [R], row_len: usize, work_per_row: usize, f: F)
where
    R: Send,
    F: Fn(usize, &mut [R]) + Sync + Send,
{
    let row_len = row_len.max(1);
    let n = out.len() / row_len;
    if n.saturating_mul(work_per_row) < MIN_PARALLEL_WORK || rayon::current_num_threads() < 2 {
        out.chunks_mut(row_len)
            .enumerate()
            .for_each(|(i, row)| f(i, row));
    } else {
        let min_rows = (MIN_PARALLEL_WORK / work_per_row.max(1)).max(1);
        out.par_chunks_mut(row_len)
            .enumerate()
            .with_min_len(min_rows)
            .for_each(|(i, row)| f(i, row));
    }
}

/// [`rows`] over two outputs with the same number of rows (a `mean`'s values and counts).
pub fn rows2<R, F>(a: &mut [R], b: &mut [R], row_len: usize, work_per_row: usize, f: F)
where
    R: Send,
    F: Fn(usize, &mut [R], &mut [R]) + Sync + Send,
{
    let row_len = row_len.max(1);
    let n = a.len() / row_len;
    if n.saturating_mul(work_per_row) < MIN_PARALLEL_WORK || rayon::current_num_threads() < 2 {
        a.chunks_mut(row_len)
            .zip(b.chunks_mut(row_len))
            .enumerate()
            .for_each(|(i, (ra, rb))| f(i, ra, rb));
    } else {
        let min_rows = (MIN_PARALLEL_WORK / work_per_row.max(1)).max(1);
        a.par_chunks_mut(row_len)
            .zip(b.par_chunks_mut(row_len))
            .enumerate()
            .with_min_len(min_rows)
            .for_each(|(i, (ra, rb))| f(i, ra, rb));
    }
}

/// Items per partial sum in [`sum`]: fixed, so the summation order (and the rounding)
/// does not depend on the number of threads.
const SUM_CHUNK: usize = 64;

/// `Σᵢ f(i)` over the `i < n` where `f` gives a value, how many did, and the first `i`
/// whose value is NaN or infinite: the outer sum or mean of a loss over its samples.
/// Items are added in fixed chunks whose partial sums are then added in order, so the
/// result is the same on any number of threads.
pub fn sum<R, F>(n: usize, work_per_item: usize, f: F) -> (R, usize, Option<usize>)
where
    R: crate::core::real::Real,
    F: Fn(usize) -> Option<R> + Sync + Send,
{
    let chunk = |c: usize| {
        let mut total = R::zero();
        let mut count = 0usize;
        let mut first_nonfinite = None;
        for i in c * SUM_CHUNK..((c + 1) * SUM_CHUNK).min(n) {
            if let Some(x) = f(i) {
                total += x;
                count += 1;
                if first_nonfinite.is_none() && !x.is_finite() {
                    first_nonfinite = Some(i);
                }
            }
        }
        (total, count, first_nonfinite)
    };
    let chunks = n.div_ceil(SUM_CHUNK);
    let partials: Vec<(R, usize, Option<usize>)> = if n.saturating_mul(work_per_item)
        < MIN_PARALLEL_WORK
        || rayon::current_num_threads() < 2
    {
        (0..chunks).map(chunk).collect()
    } else {
        (0..chunks).into_par_iter().map(chunk).collect()
    };
    partials
        .into_iter()
        .fold((R::zero(), 0, None), |(t, c, bad), (x, k, b)| {
            (t + x, c + k, bad.or(b))
        })
}

/// Elements per block of [`first_nonfinite`].
const FINITE_BLOCK: usize = 1024;

/// The position of the first NaN or infinite element of `xs`, if any.
///
/// Blocks of elements are tested whole (a test without an early exit, which the compiler
/// turns into vector instructions), on rayon's threads when `xs` is large; only a block
/// that fails is searched element by element.
pub fn first_nonfinite<R: crate::core::real::Real>(xs: &[R]) -> Option<usize> {
    let all_finite = |b: &[R]| b.iter().fold(true, |ok, x| ok & x.is_finite());
    let bad_block =
        |k: &usize| !all_finite(&xs[k * FINITE_BLOCK..((k + 1) * FINITE_BLOCK).min(xs.len())]);
    let blocks = xs.len().div_ceil(FINITE_BLOCK);
    let block = if xs.len() < MIN_PARALLEL_WORK * 8 || rayon::current_num_threads() < 2 {
        (0..blocks).find(bad_block)
    } else {
        (0..blocks)
            .into_par_iter()
            .with_min_len(16)
            .find_first(bad_block)
    }?;
    let start = block * FINITE_BLOCK;
    xs[start..]
        .iter()
        .position(|x| !x.is_finite())
        .map(|k| start + k)
}

/// [`sum`], where item `i` also writes `width` values to keep, `out[i·width..(i+1)·width]`,
/// handed to `f` as its second argument (values the backward pass reads back instead of
/// computing them again). The sum is the same as [`sum`]'s, on any number of threads.
pub fn sum_stored<R, F>(
    n: usize,
    work_per_item: usize,
    out: &mut [R],
    width: usize,
    f: F,
) -> (R, usize, Option<usize>)
where
    R: crate::core::real::Real,
    F: Fn(usize, &mut [R]) -> Option<R> + Sync + Send,
{
    if width == 0 {
        return sum(n, work_per_item, |i| f(i, &mut []));
    }
    let out = &mut out[..n * width];
    let chunk = |(c, kept): (usize, &mut [R])| {
        let mut total = R::zero();
        let mut count = 0usize;
        let mut first_nonfinite = None;
        for (k, st) in kept.chunks_mut(width).enumerate() {
            let i = c * SUM_CHUNK + k;
            if let Some(x) = f(i, st) {
                total += x;
                count += 1;
                if first_nonfinite.is_none() && !x.is_finite() {
                    first_nonfinite = Some(i);
                }
            }
        }
        (total, count, first_nonfinite)
    };
    let partials: Vec<(R, usize, Option<usize>)> = if n.saturating_mul(work_per_item)
        < MIN_PARALLEL_WORK
        || rayon::current_num_threads() < 2
    {
        out.chunks_mut(SUM_CHUNK * width)
            .enumerate()
            .map(chunk)
            .collect()
    } else {
        out.par_chunks_mut(SUM_CHUNK * width)
            .enumerate()
            .map(chunk)
            .collect()
    };
    partials
        .into_iter()
        .fold((R::zero(), 0, None), |(t, c, bad), (x, k, b)| {
            (t + x, c + k, bad.or(b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_are_the_same_on_any_number_of_threads() {
        let f = |i: usize| {
            if i % 3 == 0 {
                None
            } else {
                Some((i as f32).sin() * 1e3)
            }
        };
        let (a, ca, _) = sum(100_000, 1, f);
        let (b, cb, _) = sum(100_000, 1 << 20, f);
        let single = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let (c, cc, _) = single.install(|| sum(100_000, 1 << 20, f));
        assert_eq!((a.to_bits(), ca), (b.to_bits(), cb));
        assert_eq!((a.to_bits(), ca), (c.to_bits(), cc));
        assert_eq!(ca, 100_000 - 33_334);
    }

    #[test]
    fn stored_sums_keep_each_items_values_and_match_plain_sums() {
        let f = |i: usize| Some((i as f64).sqrt());
        for work in [1, 1 << 20] {
            let mut kept = vec![0.0; 1000 * 2];
            let got = sum_stored(1000, work, &mut kept, 2, |i, st| {
                st[0] = i as f64;
                st[1] = -(i as f64);
                f(i)
            });
            assert_eq!(got.0.to_bits(), sum(1000, work, f).0.to_bits());
            assert_eq!((got.1, got.2), (1000, None));
            assert!((0..1000).all(|i| kept[2 * i] == i as f64 && kept[2 * i + 1] == -(i as f64)));
            let none = sum_stored(10, work, &mut [], 0, |i, _| Some(i as f64));
            assert_eq!(none, (45.0, 10, None));
        }
    }

    #[test]
    fn sums_report_the_first_non_finite_item() {
        for work in [1, 1 << 20] {
            let f = |i: usize| match i {
                7 => None,
                300 | 9000 => Some(f64::NAN),
                _ => Some(1.0),
            };
            let (total, count, bad) = sum(10_000, work, f);
            assert!(total.is_nan());
            assert_eq!((count, bad), (9_999, Some(300)));
            let (_, _, none) = sum(10_000, work, |i| Some(i as f64));
            assert_eq!(none, None);
        }
    }

    #[test]
    fn the_first_non_finite_element_is_found_in_any_block() {
        for n in [0usize, 1, 1000, 1024, 5000, 1 << 20] {
            let mut xs = vec![0.5f32; n];
            assert_eq!(first_nonfinite(&xs), None);
            for at in [n / 2, n.saturating_sub(1), 0] {
                if at < n {
                    let mut ys = xs.clone();
                    ys[at] = f32::NAN;
                    assert_eq!(first_nonfinite(&ys), Some(at), "n = {n}");
                }
            }
            if n > 3000 {
                xs.iter_mut().for_each(|x| *x = 1.0);
                xs[3000] = f32::NEG_INFINITY;
                xs[n - 1] = f32::INFINITY;
                assert_eq!(first_nonfinite(&xs), Some(3000));
            }
        }
    }

    #[test]
    fn every_row_is_visited_once_with_its_index() {
        for (n, work) in [(3usize, 1usize), (1000, 1000)] {
            let mut out = vec![0usize; n * 4];
            rows(&mut out, 4, work, |i, row| {
                row.iter_mut()
                    .enumerate()
                    .for_each(|(j, x)| *x += i * 10 + j)
            });
            for i in 0..n {
                for j in 0..4 {
                    assert_eq!(out[i * 4 + j], i * 10 + j);
                }
            }
            let (mut a, mut b) = (vec![0usize; n], vec![0usize; n]);
            rows2(&mut a, &mut b, 1, work, |i, ra, rb| {
                ra[0] += i;
                rb[0] += 2 * i;
            });
            assert!((0..n).all(|i| a[i] == i && b[i] == 2 * i));
        }
    }
}
