//! The threads edgetap starts: one allocator hook, chosen once per command by
//! the binary, run first on every thread. The runtimes that start threads
//! (tokio's builder, rayon's global pool) run it from their start handlers;
//! the few dedicated threads (terminal writer, live view, recorder, capture
//! reader) are started through [`spawn`] or [`spawn_scoped`], which run it too.
//! Parallel work itself goes through `core::parallel` (rayon).

use std::sync::OnceLock;

/// Set once by the binary, before any thread is started; unset, nothing runs.
static ON_THREAD_START: OnceLock<fn()> = OnceLock::new();

/// Choose the hook every thread runs first (the binary does, once; a second
/// call is ignored) and run it on the calling thread too.
pub fn set_start_hook(hook: fn()) {
    let _ = ON_THREAD_START.set(hook);
    started();
}

/// Run the hook on the calling thread: what tokio's `on_thread_start` and
/// rayon's `start_handler` are given.
pub fn started() {
    if let Some(start) = ON_THREAD_START.get() {
        start();
    }
}

/// A named thread of edgetap's own that runs the hook first.
pub fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<T>> {
    std::thread::Builder::new()
        .name(format!("edgetap-{name}"))
        .spawn(move || {
            started();
            f()
        })
}

/// [`spawn`] inside a `std::thread::scope`.
pub fn spawn_scoped<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    f: impl FnOnce() -> T + Send + 'scope,
) -> std::thread::ScopedJoinHandle<'scope, T> {
    scope.spawn(move || {
        started();
        f()
    })
}
