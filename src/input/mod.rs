//! Where analysed inputs come from (the mirror of `sink/`): certificate files
//! and capture files, read with errors that name the file and the fault. Probe
//! and proxy read the network themselves (`net/`, `proxy/`).

pub mod capture;
pub mod certs;
