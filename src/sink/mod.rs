//! Where reports go: the terminal and JSON.

pub mod json;
pub mod out;
pub mod pcap;
pub mod text;
