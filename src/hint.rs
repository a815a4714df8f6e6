//! Hints to the CPU.

/// Asks the CPU to bring `x`'s cache line closer: a hint that returns at once, where a load
/// would hold its place in the CPU's queue of unfinished instructions until memory answers.
#[inline(always)]
pub(crate) fn prefetch<T: Copy>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    safe_arch::prefetch_t0(x);
    // Elsewhere an unused load, which safe Rust can make, does the same less well.
    #[cfg(not(target_arch = "x86_64"))]
    std::hint::black_box(*x);
}
