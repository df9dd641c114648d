//! The choice between a generated kernel's portable build and its AVX2 + FMA build.
//!
//! Rust compiles for the baseline of the target unless told otherwise (`x86-64`: SSE2,
//! 4 `f32` lanes), so the loops of a generated kernel vectorise for 4 lanes. `#[loss]`
//! also emits each kernel method a second time, marked `#[target_feature(enable =
//! "avx2,fma")]` (closures inside inherit it), so its loops vectorise for 8 lanes; the
//! kernel calls that build when the CPU has both features. Both builds compute the same
//! operations in the same order (the compiler does not fuse a multiplication and an
//! addition into an FMA unless asked), so they give the same bits.
//!
//! Setting the environment variable `LOSSKIT_PORTABLE` (to anything) before the first
//! loss call keeps the portable build, for comparison.
//!
//! A loss defined outside this crate gets the AVX2 build only where `debug_assertions`
//! are off (release builds): a second build of every kernel more than doubled the debug
//! compile time of a `#[loss]`, for speed a debug build does not need. The shipped
//! losses have both builds in every profile, so the test below compares them.

use std::sync::atomic::{AtomicU8, Ordering};

use crate::core::kernel::{Batch, Workspace};

/// 0: not decided yet, 1: portable, 2: wide.
static CHOICE: AtomicU8 = AtomicU8::new(0);

/// Whether kernels run their AVX2 + FMA build: the CPU has both features and
/// `LOSSKIT_PORTABLE` is not set (decided on the first call).
pub fn wide() -> bool {
    match CHOICE.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let wide = detect() && std::env::var_os("LOSSKIT_PORTABLE").is_none();
            CHOICE.store(if wide { 2 } else { 1 }, Ordering::Relaxed);
            wide
        }
    }
}

/// Makes kernels run their portable build (`false`) or, where the CPU allows, their
/// wide one (`true`) from now on, in every thread (for tests that compare the two).
pub fn set_wide(wide: bool) {
    let wide = wide && detect();
    CHOICE.store(if wide { 2 } else { 1 }, Ordering::Relaxed);
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn detect() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
fn detect() -> bool {
    false
}

/// Runs a kernel's forward pass through `f`, its AVX2 + FMA build.
///
/// For generated code only: `f` must be the `#[target_feature(enable = "avx2,fma")]`
/// build that `#[loss]` emits, and the caller must have checked [`wide`].
pub fn forward<K, R>(
    f: unsafe fn(&K, &Batch<'_, R>, &mut Workspace<R>) -> R,
    kernel: &K,
    batch: &Batch<'_, R>,
    ws: &mut Workspace<R>,
) -> R {
    debug_assert!(wide());
    // SAFETY: `f`'s only requirement is the CPU features, present when `wide()` holds
    // (the caller checks it; `set_wide` and the first call never claim them without
    // `detect()`)
    #[allow(unsafe_code)]
    unsafe {
        f(kernel, batch, ws)
    }
}

/// The AVX2 + FMA build of a kernel's backward pass, as [`backward`] takes it.
pub type WideBackward<K, R> = unsafe fn(&K, &Batch<'_, R>, &Workspace<R>, R, &mut [&mut [R]]);

/// Runs a kernel's backward pass through `f`, its AVX2 + FMA build (see [`forward`]).
pub fn backward<K, R>(
    f: WideBackward<K, R>,
    kernel: &K,
    batch: &Batch<'_, R>,
    ws: &Workspace<R>,
    seed: R,
    grads: &mut [&mut [R]],
) {
    debug_assert!(wide());
    // SAFETY: as in `forward`
    #[allow(unsafe_code)]
    unsafe {
        f(kernel, batch, ws, seed, grads)
    }
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;

    use crate::testing::Rng;
    use crate::{Loss, MultiSimilarity, SoftmaxCrossEntropy};

    /// Loss value and gradient bits of cross-entropy and Multi-Similarity on one batch.
    fn bits() -> Vec<u32> {
        let dev: Cpu = Default::default();
        let mut rng = Rng::new(7);
        let (n, c) = (37, 29);
        let z: Vec<f32> = (0..n * c)
            .map(|_| 4.0 * rng.range(-3.0, 3.0) as f32)
            .collect();
        let y: Vec<usize> = (0..n).map(|i| (i * 5) % c).collect();
        let zt = dev.tensor_from_vec(z, (n, c));
        let out = SoftmaxCrossEntropy::default().forward(zt.leaky_trace(), &y);
        let mut all = vec![out.array().to_bits()];
        all.extend(out.backward().get(&zt).as_vec().iter().map(|g| g.to_bits()));
        let e: Vec<f32> = (0..n * 8).map(|_| rng.range(-2.0, 2.0) as f32).collect();
        let labels: Vec<usize> = (0..n).map(|i| i / 3).collect();
        let et = dev.tensor_from_vec(e, (n, 8));
        let out = MultiSimilarity::default().forward(et.leaky_trace(), &labels);
        all.push(out.array().to_bits());
        all.extend(out.backward().get(&et).as_vec().iter().map(|g| g.to_bits()));
        all
    }

    #[test]
    fn wide_and_portable_builds_give_the_same_bits() {
        super::set_wide(false);
        let portable = bits();
        super::set_wide(true);
        let wide = bits();
        assert_eq!(portable, wide);
    }
}
