//! The one way edgetap runs work in parallel: rayon's global pool (whose
//! threads run the binary's allocator hook, see `src/threads.rs`), used
//! only when there is enough work to share.

use rayon::prelude::*;

/// Items per thread below which [`map_in_parallel`] stays on the calling
/// thread: handing work to the pool costs tens of microseconds, more than a
/// few items take, and the proxy judges one handshake at a time.
const MIN_PER_THREAD: usize = 32;

/// `f` of each item, in order: on the calling thread for a few items, on
/// rayon's pool (every core) for many (a capture's thousands of handshakes
/// judged, their observations built). A panic in `f` goes on in the caller.
pub fn map_in_parallel<T: Send, U: Send>(
    items: Vec<T>,
    f: impl Fn(T) -> U + Sync + Send,
) -> Vec<U> {
    if items.len() < 2 * MIN_PER_THREAD {
        return items.into_iter().map(f).collect();
    }
    items
        .into_par_iter()
        .with_min_len(MIN_PER_THREAD)
        .map(f)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_in_parallel_keeps_the_order() {
        for n in [0, 1, 31, 64, 65, 1000] {
            let items: Vec<usize> = (0..n).collect();
            let expected: Vec<usize> = items.iter().map(|i| i * 3).collect();
            assert_eq!(map_in_parallel(items, |i| i * 3), expected, "{n} items");
        }
    }
}
