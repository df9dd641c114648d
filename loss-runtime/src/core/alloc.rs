//! Fallible allocation of the buffers that grow with a batch: a batch too large for
//! memory is refused with [`LossError::OutOfMemory`], naming the buffer and its size,
//! instead of aborting the process.

use crate::error::LossError;

/// The bytes `len` elements of `T` take (saturating: an absurd size still reads as one).
fn bytes<T>(len: usize) -> usize {
    len.saturating_mul(std::mem::size_of::<T>())
}

/// Makes every page of `buf` writable, keeping its contents, before anything reads it.
///
/// dfdx allocates a gradient zeroed, and a large zeroed allocation is fresh memory that
/// the kernel maps on first touch. A backward pass adds into it (`g += ..`): the load
/// maps the shared zero page, then the store faults again to copy it, and that second
/// fault flushes the page from every thread's TLB (an interrupt to each CPU). Touching
/// each page first with a write (an atomic `xor` and its inverse, one instruction each
/// that the CPU runs as a write) takes one fault per page instead, without the flush.
/// Buffers under 1 MiB are left alone (they come from the allocator's heap, mapped
/// already).
pub fn touch_for_writing<T>(buf: &mut [T]) {
    use std::sync::atomic::{AtomicU8, Ordering};
    const PAGE: usize = 4096;
    let bytes = std::mem::size_of_val(buf);
    if bytes < 1 << 20 {
        return;
    }
    let base = buf.as_mut_ptr().cast::<u8>();
    for off in (0..bytes).step_by(PAGE) {
        // SAFETY: `off < bytes` keeps the byte inside `buf`, which is borrowed
        // exclusively, so nothing else reads or writes it meanwhile; a `u8` is always
        // aligned; the second `xor` restores the first's change
        #[allow(unsafe_code)]
        let byte = unsafe { AtomicU8::from_ptr(base.add(off)) };
        byte.fetch_xor(0xff, Ordering::Relaxed);
        byte.fetch_xor(0xff, Ordering::Relaxed);
    }
}

/// An empty vector with room for exactly `len` elements, or
/// [`LossError::OutOfMemory`] naming `what`.
pub fn try_with_capacity<T>(what: &'static str, len: usize) -> Result<Vec<T>, LossError> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| LossError::OutOfMemory {
            what,
            bytes: bytes::<T>(len),
        })?;
    Ok(v)
}

/// `len` copies of `value`, or [`LossError::OutOfMemory`] naming `what`.
pub fn try_filled<T: Clone>(what: &'static str, len: usize, value: T) -> Result<Vec<T>, LossError> {
    let mut v = try_with_capacity(what, len)?;
    v.resize(len, value);
    Ok(v)
}

/// The elements of `xs` mapped through `f`, collected into a buffer allocated fallibly.
pub fn try_map<A, B>(
    what: &'static str,
    xs: &[A],
    f: impl FnMut(&A) -> B,
) -> Result<Vec<B>, LossError> {
    let mut v = try_with_capacity(what, xs.len())?;
    v.extend(xs.iter().map(f));
    Ok(v)
}

/// Checks that `len` elements of `T` can be allocated now, and releases them.
///
/// For the buffers dfdx allocates itself, infallibly (a matrix product's output, a
/// gradient, a tensor's copy): reserving their size first turns a batch too large for
/// memory into an error before the work starts. Buffers that live at the same time
/// are checked together, as one sum.
pub fn ensure_room<T>(what: &'static str, len: usize) -> Result<(), LossError> {
    try_with_capacity::<T>(what, len).map(drop)
}

#[cfg(test)]
mod tests {
    #[test]
    fn touching_for_writing_keeps_the_contents() {
        let mut v: Vec<f32> = (0..1 << 19).map(|k| k as f32 * 0.5 - 3.0).collect();
        let want = v.clone();
        super::touch_for_writing(&mut v);
        assert_eq!(v, want);
    }

    use super::*;

    #[test]
    fn an_absurd_size_is_an_error_naming_the_buffer_and_its_bytes() {
        let len = usize::MAX / 8;
        let err = try_filled::<f64>("the similarity matrix", len, 0.0).unwrap_err();
        assert_eq!(
            err,
            LossError::OutOfMemory {
                what: "the similarity matrix",
                bytes: usize::MAX / 8 * 8,
            }
        );
        let message = err.to_string();
        assert!(message.starts_with("out of memory: the similarity matrix needs "));
        assert!(message.contains(&format!("({} bytes)", usize::MAX / 8 * 8)));
        assert!(ensure_room::<f32>("scratch", len).is_err());
        assert!(try_with_capacity::<u8>("scratch", usize::MAX).is_err());
    }

    #[test]
    fn a_small_size_is_allocated_as_asked() {
        let v = try_filled("ones", 5, 1.0f32).unwrap();
        assert_eq!(v, vec![1.0; 5]);
        let w = try_map("doubles", &v, |x| f64::from(*x) * 2.0).unwrap();
        assert_eq!(w, vec![2.0; 5]);
        assert_eq!(try_with_capacity::<f64>("room", 7).unwrap().capacity(), 7);
        assert!(ensure_room::<f64>("room", 1 << 10).is_ok());
    }
}
