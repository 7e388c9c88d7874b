//! What a connection tells the application: one event per outcome.

use std::time::Instant;

use bytes::Bytes;

use crate::proto::MessageId;

/// A session on one [`Connection`](crate::Connection). The generation keeps a
/// key of a closed session from naming a later session in the same slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionKey {
    pub(crate) slot: u32,
    pub(crate) generation: u32,
}

/// An outgoing message, as returned by [`Connection::send`](crate::Connection::send);
/// unique per connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageRef(pub u64);

/// A received chunk whose bytes went to the application's sink
/// ([`Event::Data`]): the chunk is answered only once the application calls
/// [`Connection::committed`](crate::Connection::committed) (or
/// [`Connection::commit_failed`](crate::Connection::commit_failed)) with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CommitTicket(pub(crate) u64);

/// The body of a received message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReceivedBody {
    /// Small messages, whole, in memory (a slice of the read buffer when the
    /// message came in one piece).
    Inline(Bytes),
    /// Large messages went to the sink as [`Event::Data`]; this many octets.
    Streamed { len: u64 },
}

/// Everything a connection reports, in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A request claimed a passive session that waited in the shell's
    /// directory onto this connection: the session lives here from now on
    /// (its [`Event::SessionReady`] follows).
    SessionClaimed { session: SessionKey },
    /// The directory handed this connection a pending session that it could
    /// not take (it carries its maximum of sessions): the session is gone,
    /// and the request that named it got 481.
    ClaimRefused { session_id: String, reason: String },
    /// The session is bound to this connection (RFC 4975 5.4): the active side
    /// got its binding SEND answered, the passive side saw the first request.
    SessionReady { session: SessionKey },
    /// A whole incoming message. `report_held`: it asked for a success
    /// REPORT and the session holds reports
    /// ([`SessionSettings::hold_reports`](crate::SessionSettings::hold_reports)),
    /// so none was written: [`Connection::report`](crate::Connection::report)
    /// decides it.
    MessageReceived {
        session: SessionKey,
        message_id: MessageId,
        content_type: String,
        body: ReceivedBody,
        report_held: bool,
    },
    /// Octets of a large incoming message for the sink, at 0-based `offset`.
    /// Later data for the same offsets replaces earlier data (RFC 4975 7.3.1).
    Data {
        session: SessionKey,
        message_id: MessageId,
        offset: u64,
        data: Bytes,
    },
    /// The chunk that carried the preceding [`Event::Data`] has ended: write
    /// them (and fsync, for durability), then commit the ticket so the chunk
    /// can be answered.
    Commit {
        session: SessionKey,
        message_id: MessageId,
        ticket: CommitTicket,
    },
    /// An incoming message that started will not complete (the sender
    /// aborted it, it was refused or expired, the sink failed, the session
    /// or connection ended): drop what the sink holds, if anything. Every
    /// message that started ends in this or [`Event::MessageReceived`].
    MessageAborted {
        session: SessionKey,
        message_id: MessageId,
        reason: String,
    },
    /// An outgoing message was accepted: every chunk got its 200 (when
    /// Failure-Report asked for responses) and, with `Success-Report: yes`,
    /// success REPORTs covered every octet.
    Delivered {
        session: SessionKey,
        message: MessageRef,
        message_id: MessageId,
    },
    /// An outgoing message did not make it. `status` is the MSRP code that
    /// said so (a response, a REPORT, or 408 for a local timeout), `None` when
    /// the cause was local (connection lost, session closed, content source
    /// failed).
    Failed {
        session: SessionKey,
        message: MessageRef,
        message_id: MessageId,
        status: Option<u16>,
        reason: String,
        /// Octets of the message that got a 200.
        bytes_acked: u64,
    },
    /// A chunk of an outgoing message got its response, `sent` being when
    /// it went to transmit. Only with
    /// [`ConnectionConfig::chunk_events`](crate::ConnectionConfig::chunk_events).
    ChunkAnswered {
        session: SessionKey,
        message: MessageRef,
        bytes: u64,
        status: u16,
        sent: Instant,
    },
    /// The session's send queue has room again after [`SendError::Full`](crate::SendError::Full).
    SendReady { session: SessionKey },
    /// The session ended; every message on it has had its outcome already.
    SessionClosed { session: SessionKey, reason: String },
    /// The connection cannot be used any more; its sessions are closed.
    ConnectionClosed { reason: String },
}
