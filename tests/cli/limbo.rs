//! x509-limbo agreement (filled in below).
