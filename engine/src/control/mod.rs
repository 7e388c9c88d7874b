//! The control socket between the engine and its applications (signaling,
//! the load generator, operators): a Unix domain socket carrying frames of
//! `u32 header_len | u32 payload_len | header JSON | payload`, big-endian.
//!
//! - [`message`]: commands, replies and events, as their JSON headers.
//! - [`frame`]: the framing, for either end.
//! - [`events`]: events on the wire, read fast, written once per batch.
//! - [`Client`]: a blocking, pipelining client (tests, `msrpd ctl`, the
//!   load generator).
//! - [`AsyncClient`] (feature `control-async`): a tokio client that many
//!   tasks share (signaling, REST).
//!
//! The engine's end of the socket (the control thread that routes commands
//! to shards and fans events out) is part of `msrpd serve`, in
//! `serve/control_server.rs`: this module knows nothing of the engine.
//!
//! The wire format, with a worked example, is in `engine/CONTROL.md`.

#[cfg(feature = "control-async")]
mod async_client;
pub(crate) mod client;
pub mod events;
pub mod fast;
pub mod frame;
pub mod message;

/// The newest control protocol version this engine speaks; a client that
/// says no `hello` speaks version 1.
pub const PROTOCOL_VERSION: u32 = 2;

#[cfg(feature = "control-async")]
pub use async_client::{AsyncClient, EventStream};
pub use client::{Client, ClientError, CreatedSession, Incoming};
pub use events::{EncodedEvents, EventEntry, EventsFrame, SealedEvents};
pub use frame::{Frame, FrameError, FrameReader};
pub use message::{
    BatchOp, CloseRequest, Command, EngineEvent, EngineStats, EventKind, EventKinds, FailureReportName,
    OpResult, Reply, ReportRequest, Request, SendRequest, ServerMessage, SessionDescriptor, SessionDirection,
    SessionRole, ShardStats, Subscription, TlsStats, TransferDirection, UnknownEventKind, UpdateRequest,
};
