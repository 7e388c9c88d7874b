//! The bodies of the cargo-fuzz targets in `engine/fuzz`, here so that the
//! fuzzer and the stable replay test (`tests/fuzz_corpora.rs`, every
//! committed corpus and regression input) run the same code. Each function
//! takes any bytes and panics only on a broken invariant.
//!
//! Not an API: hidden from the docs, may change with any commit.

mod conn;
#[cfg(feature = "control")]
mod control;
mod parse;
mod replay;
mod uri;

pub use conn::conn;
#[cfg(feature = "control")]
pub use control::control;
pub use parse::parse;
pub use replay::{replay, Target};
pub use uri::uri;
