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
