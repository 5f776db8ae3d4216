//! Threads edgetap starts itself (the proxy's output writer, the terminal line
//! writer, replay's file readers, capture block readers and JSON writers): a
//! hook run first on each, which the binary sets to tune its allocator per
//! thread, as tokio's `on_thread_start` does for the runtime's.

use std::sync::OnceLock;

/// Set once by the binary, before any thread is started; unset, nothing runs.
pub static ON_THREAD_START: OnceLock<fn()> = OnceLock::new();

/// Run the hook on the calling thread (first thing in a thread edgetap starts).
pub fn started() {
    if let Some(start) = ON_THREAD_START.get() {
        start();
    }
}

/// Items per thread below which [`map_in_parallel`] starts no thread: a
/// thread costs tens of microseconds to start, more than a few items take.
const MIN_PER_THREAD: usize = 32;

/// `f` of each item, in order, on the calling thread and up to one scoped
/// thread more per core (each started with [`started`]). Written here rather
/// than taking rayon for the two places that need it (judging a capture's
/// thousands of handshakes, printing their JSON): a split into one chunk per
/// core is all they need. A panic in `f` goes on in the caller.
pub fn map_in_parallel<T: Send, U: Send>(items: Vec<T>, f: impl Fn(T) -> U + Sync) -> Vec<U> {
    // Asked only when there is enough to share (the proxy judges one
    // handshake at a time): the standard library reads the cgroup's CPU
    // quota from files each time, a dozen system calls.
    let threads = if items.len() < 2 * MIN_PER_THREAD {
        1
    } else {
        cores().min(items.len() / MIN_PER_THREAD)
    };
    if threads <= 1 {
        return items.into_iter().map(f).collect();
    }
    let per = items.len().div_ceil(threads);
    let mut chunks: Vec<Vec<T>> = Vec::with_capacity(threads);
    let mut items = items.into_iter();
    loop {
        let chunk: Vec<T> = items.by_ref().take(per).collect();
        if chunk.is_empty() {
            break;
        }
        chunks.push(chunk);
    }
    let f = &f;
    std::thread::scope(|scope| {
        let mut chunks = chunks.into_iter();
        let first = chunks.next().unwrap_or_default();
        let running: Vec<_> = chunks
            .map(|chunk| {
                scope.spawn(move || {
                    started();
                    chunk.into_iter().map(f).collect::<Vec<U>>()
                })
            })
            .collect();
        let mut out: Vec<U> = first.into_iter().map(f).collect();
        for thread in running {
            match thread.join() {
                Ok(part) => out.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

/// The cores this process may use, asked once.
pub fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
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
