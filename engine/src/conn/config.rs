//! What a connection is configured with, what it counts, and why it refuses
//! a session or a message.

use std::time::Duration;

use crate::proto::ParserConfig;
use crate::session::OutgoingMessage;

/// Bounds and timers of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionConfig {
    pub parser: ParserConfig,
    /// Unanswered chunk octets over all sessions: the scheduler stops when
    /// it is reached.
    pub inflight_bytes_max: u64,
    /// Chunk body octets per
    /// [`Connection::poll_transmit`](super::Connection::poll_transmit) batch
    /// (at least one chunk goes out). Batches about a socket buffer in size keep the
    /// frames in cache between writing and sending: a batch of 10,000 texts
    /// ran 20% slower than batches of 400 in the session bench.
    pub transmit_bytes_max: u64,
    /// Bodies up to this size are copied into the batch; larger ones are
    /// handed out as they are, for a vectored write.
    pub copy_body_bytes_max: usize,
    pub sessions_max: usize,
    /// RFC 4975 7.1.1: a chunk sent with Failure-Report `yes` and not
    /// answered in this time fails with a local 408.
    pub transaction_timeout: Duration,
    /// How long a message with `Success-Report: yes` waits for REPORTs
    /// covering it after its last chunk was answered (RFC 4975 7.1.1 leaves
    /// it to the application).
    pub report_timeout: Duration,
    /// An incoming message that sees no chunk for this long is dropped
    /// (RFC 4975 7.3.1: a final `$` may never come).
    pub incoming_expiry: Duration,
    /// Seeds the transaction-id and Message-ID generator, for reproducible
    /// simulations; `None` seeds from the process's random state.
    pub seed: Option<u64>,
    /// A frame begun whose next octet does not come within this closes the
    /// connection: a peer cannot hold half a frame (and the buffer under
    /// it) for ever, where no other timer runs.
    pub frame_timeout: Duration,
    /// Report every answered chunk
    /// ([`Event::ChunkAnswered`](crate::Event::ChunkAnswered)), for a load
    /// generator's per-chunk latency; off in the engine, which has no use
    /// for an event per chunk.
    pub chunk_events: bool,
}

impl Default for ConnectionConfig {
    fn default() -> ConnectionConfig {
        ConnectionConfig {
            parser: ParserConfig::default(),
            inflight_bytes_max: 16 * 1024 * 1024,
            transmit_bytes_max: 256 * 1024,
            copy_body_bytes_max: 4096,
            sessions_max: 16 * 1024,
            transaction_timeout: Duration::from_secs(30),
            report_timeout: Duration::from_secs(120),
            incoming_expiry: Duration::from_secs(300),
            frame_timeout: Duration::from_secs(30),
            seed: None,
            chunk_events: false,
        }
    }
}

/// Why [`Connection::add_session`](super::Connection::add_session) refused a session.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddSessionError {
    #[error("the connection already carries its maximum of {0} sessions")]
    TooManySessions(usize),
    #[error("the local URI {0} has no session-id")]
    NoSessionId(String),
    #[error("session-id {0} is already on this connection")]
    DuplicateSessionId(String),
    #[error("the remote path is empty")]
    EmptyRemotePath,
    #[error("the connection is closed")]
    Closed,
}

/// Why [`Connection::send`](super::Connection::send) refused a message.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("no such session on this connection")]
    UnknownSession,
    #[error("the session's direction does not allow sending (RFC 4975 8.9)")]
    Direction,
    #[error("{0:?} is not a media type")]
    InvalidContentType(String),
    /// RFC 4975 8.6: the peer's accept-types do not include it, or it refused
    /// it with 415 earlier in this session.
    #[error("the peer does not accept {0}")]
    TypeNotAccepted(String),
    #[error("the message of {size} octets is over the peer's max-size of {max}")]
    TooLarge { size: u64, max: u64 },
    /// The send queue is at its bound: the message is handed back; an
    /// [`Event::SendReady`](crate::Event::SendReady) follows when there is
    /// room.
    #[error("the session's send queue is full")]
    Full(OutgoingMessage),
}

/// Why [`Connection::report`](super::Connection::report) did nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("no such session on this connection")]
    UnknownSession,
    /// No report is held for that Message-ID: never held (the session does
    /// not hold reports, or the message asked for none), decided already,
    /// answered 408 for the bound, or never received.
    #[error("no held report for message {0}")]
    NotHeld(String),
    #[error("status {0} is not a REPORT status: 200 for success, or an error code from 300 to 999")]
    Status(u16),
    #[error("the comment of {0} octets is over the {max} a Status comment may have", max = super::held::REPORT_COMMENT_BYTES_MAX)]
    CommentTooLong(usize),
    #[error("the comment is empty or holds a control character")]
    BadComment,
}

/// What [`Connection::report`](super::Connection::report) did with the
/// report it no longer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportSent {
    /// The REPORT is queued for the peer.
    Sent,
    /// A failure REPORT for a message sent with Failure-Report `no`: RFC
    /// 4975 7.1.4 forbids it, so nothing was written.
    Forbidden,
}

/// Counters of one connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Octets handed to `handle_input` (while the connection was open).
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub requests_in: u64,
    pub responses_in: u64,
    pub chunks_out: u64,
    pub messages_received: u64,
    pub messages_delivered: u64,
    pub messages_failed: u64,
    /// Responses that matched no transaction (late, or after a timeout).
    pub responses_unmatched: u64,
    /// REPORTs for unknown messages or with ranges outside the message.
    pub reports_ignored: u64,
    /// Malformed frames discarded or answered 400.
    pub frames_malformed: u64,
    /// Streams that stopped being MSRP (RFC 4975 9: octets at a frame
    /// boundary that are not "MSRP "), such as a TLS ClientHello on a
    /// plain listener; each closed the connection.
    pub framing_lost: u64,
    /// 1 when the connection was closed for `frame_timeout`.
    pub frame_timeouts: u64,
    /// Held success REPORTs answered with a failure REPORT 408 to make room
    /// for a newer one (`held_reports_max`).
    pub reports_held_expired: u64,
    /// Responses sent, by status code.
    pub responses_out: Vec<(u16, u64)>,
}

impl ConnectionStats {
    pub(super) fn count_response(&mut self, status: u16) {
        match self.responses_out.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => self.responses_out.push((status, 1)),
        }
    }
}
