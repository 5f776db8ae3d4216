//! Replay driver (next).
