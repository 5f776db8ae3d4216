//! Export: what edgetap relayed or probed, as captures Wireshark reads.

pub mod comment;
pub mod dns;
pub mod flow;
pub mod stream;
pub mod writer;

pub use flow::{FlowLog, FlowSynth, Frame};
pub use writer::{CaptureWriter, Format, WriteError};
