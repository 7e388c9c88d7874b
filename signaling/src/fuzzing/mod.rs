//! The bodies of the cargo-fuzz targets in `signaling/fuzz`, here so that
//! the fuzzer and the stable replay test (`tests/fuzz_corpora.rs`, every
//! committed corpus and regression input) run the same code. Each function
//! takes any bytes and panics only on a broken invariant.
//!
//! Not an API: hidden from the docs, may change with any commit.

mod msml;
mod sdp;
mod sip;

pub use crate::rest::fuzzing::rest;
pub use msml::msml;
pub use sdp::sdp;
pub use sip::{sip_datagram, sip_stream};
