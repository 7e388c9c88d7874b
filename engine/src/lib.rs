//! # msrp-engine
//!
//! A relay-free MSRP (RFC 4975) endpoint engine. The protocol logic is plain,
//! synchronous, deterministic Rust with no sockets, clocks or threads; the
//! io_uring shell that runs it one thread per core is built around it.
//!
//! - [`proto`]: the wire format. An incremental zero-copy [`Parser`] that takes
//!   bytes in any split and yields frame heads, body slices and end-lines; a
//!   [`Writer`] for requests and responses; MSRP URIs and their comparison
//!   rules; the typed [`Error`] with the reaction each error calls for.
//!
//! The binary `msrpd` exposes `msrpd decode`, which turns a captured MSRP byte
//! stream into one JSON object per frame.

pub mod proto;

pub use proto::{
    ByteRange, Continuation, Error, Event, FailureReport, FrameHead, FrameKind, Limits, Malformed, MessageId,
    Method, MsrpUri, Parser, ParserConfig, Reaction, Request, Strictness, SuccessReport, TransactionId,
    Writer,
};
