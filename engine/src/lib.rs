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
//! - [`session`]: one negotiated session ([`SessionConfig`]): outgoing
//!   messages cut into chunks, transactions, Success/Failure REPORTs,
//!   reassembly of incoming messages, and the [`Event`]s they end in.
//! - [`Connection`] (`conn`): one byte stream carrying many sessions; it
//!   routes frames, answers what must be answered, and hands out every ready
//!   frame as one batch in the order of the fair [`Scheduler`] (`sched`).
//!
//! Time is always an argument (`now: Instant`); bytes go in through
//! [`Connection::input_buffer`] and out through [`Connection::poll_transmit`].
//!
//! The binary `msrpd` exposes `msrpd decode`, which turns a captured MSRP byte
//! stream into one JSON object per frame.

mod conn;
#[cfg(feature = "control")]
pub mod control;
#[doc(hidden)]
pub mod fuzzing;
mod id_hash;
pub mod proto;
mod sched;
#[cfg(feature = "server")]
pub mod serve;
pub mod session;
#[cfg(feature = "server")]
mod shard;
#[cfg(feature = "server")]
pub mod tls;

pub use conn::{
    AddSessionError, Connection, ConnectionConfig, ConnectionStats, Lookup, ReportError, ReportSent,
    SendError, SessionDirectory, REPORT_COMMENT_BYTES_MAX,
};
pub use proto::{
    ByteRange, Continuation, Error, Event as FrameEvent, FailureReport, FrameHead, FrameKind, Limits,
    Malformed, MessageId, Method, MsrpUri, Parser, ParserConfig, Reaction, Request, Strictness,
    SuccessReport, TransactionId, Writer,
};
pub use sched::{Scheduler, Turn};
pub use session::{
    CommitTicket, ContentSource, Direction, Event, MessageRef, OutgoingMessage, Payload, ReceivedBody, Role,
    SessionConfig, SessionKey, SessionSettings, SourceChunk,
};
#[cfg(feature = "server")]
pub use shard::driver;
