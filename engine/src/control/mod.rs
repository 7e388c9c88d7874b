//! The control socket between the engine and its applications (signaling,
//! the load generator, operators): a Unix domain socket carrying frames of
//! `u32 header_len | u32 payload_len | header JSON | payload`, big-endian.
//!
//! - [`message`]: commands, replies and events, as their JSON headers.
//! - [`frame`]: the framing, for either end.
//! - [`Client`]: a blocking, pipelining client.
//!
//! The engine's end of the socket (the control thread that routes commands
//! to shards and fans events out) is part of `msrpd serve`, in
//! `serve/control_server.rs`: this module knows nothing of the engine.
//!
//! The wire format, with a worked example, is in `engine/CONTROL.md`.

mod client;
pub mod frame;
pub mod message;

pub use client::{Client, ClientError, CreatedSession, Incoming};
pub use frame::{Frame, FrameError, FrameReader};
pub use message::{
    Command, EngineEvent, EngineStats, FailureReportName, Reply, Request, SendRequest, ServerMessage,
    SessionDescriptor, SessionDirection, SessionRole, ShardStats, TransferDirection,
};
