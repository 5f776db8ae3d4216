//! The process's open-file limit: every relayed connection holds two
//! descriptors, and a default shell gives 1,024.

/// Raise the soft open-file limit to the hard one (as Go's runtime and nginx
/// do) and return the soft limit now in force (`None`: unlimited). Failing to
/// raise it is not an error: the caller says what the limit means.
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(limit = ?limit.current, error = %e, "could not raise the open-file limit");
        }
    }
    getrlimit(Resource::Nofile).current
}
