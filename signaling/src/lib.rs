//! msrp-signaling: the SIP/SDP side of msrp-engine (`msrp-signal`).
//!
//! The same shape as the engine: a deterministic sans-IO core (no sockets,
//! no clocks; time is an argument) inside a thin tokio shell.
//!
//! - [`sip`]: SIP messages (framing, normalisation in front of `rsip`, typed
//!   headers of our own), RFC 3261 transactions and dialogs.
//! - [`sdp`]: offer/answer for `m=message` (RFC 4975 8, RFC 6135, RFC 5547),
//!   the one place where SDP becomes an engine session descriptor.
//! - [`msml`]: MSML (RFC 5707) requests in, `<result>` / `<event>` out, for
//!   Dialogic's `<transfer>` primitive.

pub mod app;
pub mod digest;
#[doc(hidden)]
pub mod fuzzing;
pub mod msml;
pub mod rest;
pub mod sdp;
pub mod serve;
pub mod sip;
pub mod transfer;
