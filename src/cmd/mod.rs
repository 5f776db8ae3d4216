//! Command shells: read inputs, call the core, print. One module per subcommand.

pub mod ca;
pub mod common;
#[cfg(feature = "demo")]
pub mod demo;
pub mod discover;
pub mod inspect;
pub mod live;
pub mod probe;
pub mod proxy;
pub mod regress;
pub mod replay;
pub mod rules;
