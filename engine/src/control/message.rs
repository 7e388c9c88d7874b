//! The headers of control-socket frames: commands in, replies and events out.
//! Field names are the wire names (`engine/CONTROL.md`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Who opens the MSRP connection (RFC 4975 5.4; `a=setup`, RFC 6135).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionRole {
    /// We connect to the first URI of the remote path and bind with a SEND.
    #[default]
    Active,
    /// The peer connects; the session waits until a request names it.
    Passive,
}

/// The SDP direction attribute (RFC 4975 8.9).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionDirection {
    #[default]
    Sendrecv,
    Sendonly,
    Recvonly,
    Inactive,
}

/// A session as SDP offer/answer left it (RFC 4975 8).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionDescriptor {
    /// Our session-id; the engine mints one of about 130 random bits
    /// (22 base62 characters) when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Our full `a=path` URI, when the engine should not build it from
    /// `--advertise` (e.g. behind NAT, or several advertised addresses); its
    /// session-id is the session's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_uri: Option<String>,
    /// msrps: the peer's certificate fingerprint from its SDP
    /// `a=fingerprint` (RFC 8122 5, "sha-256 AB:CD:..."). Parsed and
    /// checked at create_session; the peer check is not yet enforced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The peer's `a=path`, in SDP order.
    pub remote_path: Vec<String>,
    pub role: SessionRole,
    pub direction: SessionDirection,
    /// Our `a=accept-types`; empty means `*`.
    pub accept_types: Vec<String>,
    pub accept_wrapped_types: Vec<String>,
    /// Our `a=max-size`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    /// The peer's `a=accept-types`; empty means `*`.
    pub remote_accept_types: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_max_size: Option<u64>,
    /// Body octets per outgoing chunk (engine default when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk_bytes: Option<usize>,
    /// Report defaults for messages that do not set their own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_report: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_report: Option<FailureReportName>,
    /// A label the application chooses (e.g. its name): a subscription may
    /// ask for the events of every session with this tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The application decides each success REPORT (RFC 4975 7.1.2): a
    /// received message that asked for one is announced with `report_held`
    /// and reported only when a `report` command says so (after checking an
    /// RFC 5547 file's hash, say).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub hold_reports: bool,
}

/// RFC 4975 7.1.1 Failure-Report values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReportName {
    Yes,
    No,
    Partial,
}

/// A message to send. The body is the frame's payload, or the file at `file`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SendRequest {
    pub session_id: String,
    pub content_type: String,
    /// Send this file, read chunk by chunk, instead of the payload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Remove `file` once the message is delivered (voicemail delivery).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub delete_after: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_report: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_report: Option<FailureReportName>,
    /// In a `batch`: how many octets of the batch's payload are this
    /// message's body (absent: none). Ignored in a lone `send`, whose body is
    /// the whole payload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_len: Option<u64>,
}

impl SendRequest {
    /// A message of `content_type` to `session_id`, with the session's
    /// report settings.
    pub fn new(session_id: &str, content_type: &str) -> SendRequest {
        SendRequest {
            session_id: session_id.into(),
            content_type: content_type.into(),
            ..SendRequest::default()
        }
    }
}

/// What a client asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// Names the protocol version the client speaks (absent: 1). Version 2
    /// adds `batch` and delivers events in `events` frames.
    Hello {
        version: u32,
    },
    CreateSession(SessionDescriptor),
    Send(SendRequest),
    CloseSession(CloseRequest),
    /// A new offer/answer changed what the peer takes (RFC 4975 8.6).
    UpdateSession(UpdateRequest),
    /// The application's decision on a held success REPORT.
    Report(ReportRequest),
    /// Version 2: many operations in one frame, their bodies concatenated
    /// in the payload; one reply with a result per operation, in order.
    Batch {
        ops: Vec<BatchOp>,
    },
    Stats,
    /// From now on, the engine events the subscription names also go to
    /// this client (every event when it names nothing).
    Subscribe(Subscription),
}

/// Which events a subscriber gets: every kind when `events` is empty, of
/// every session when `sessions` and `tags` are both empty, else of the
/// sessions named or tagged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Subscription {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventKind>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// One operation of a `batch`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum BatchOp {
    CreateSession(SessionDescriptor),
    Send(SendRequest),
    CloseSession(CloseRequest),
    Report(ReportRequest),
}

/// The peer's `accept-types` and `max-size` after a re-offer or UPDATE
/// (RFC 4975 8.6, RFC 3311): sends from now on are held to them. The
/// session's paths do not change (a new path is a new session).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UpdateRequest {
    pub session_id: String,
    /// The peer's `a=accept-types`; empty means `*`.
    pub remote_accept_types: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_max_size: Option<u64>,
}

/// The REPORT of a received message held for the application (a
/// `hold_reports` session's): 200 writes the success REPORT (RFC 4975
/// 7.1.3), another MSRP status code (400, 413, 415...) a failure REPORT
/// `Status: 000 code comment` (RFC 4975 7.1.4). Either covers the whole
/// message, and the report is no longer held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRequest {
    pub session_id: String,
    /// The Message-ID of the `message_received` event.
    pub message_id: String,
    pub status: u16,
    /// The Status comment (default: the code's usual phrase, e.g. `Bad
    /// Request`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A session to end (its pending messages fail; `session_closed` follows).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseRequest {
    pub session_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The outcome of one operation of a `batch`: the fields its lone command's
/// reply would carry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OpResult {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<bool>,
}

impl From<Reply> for OpResult {
    fn from(reply: Reply) -> OpResult {
        OpResult {
            ok: reply.ok,
            error: reply.error,
            session_id: reply.session_id,
            local_uri: reply.local_uri,
            message: reply.message,
            sent: reply.sent,
        }
    }
}

/// A command with the number its reply will carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    #[serde(flatten)]
    pub command: Command,
}

/// The answer to one [`Request`], in the order the requests came.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reply {
    pub id: u64,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `create_session`: the session-id and our `a=path` URI for the SDP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_uri: Option<String>,
    /// `create_session` of an msrps session: our certificate's sha-256
    /// fingerprint, for SDP's `a=fingerprint` (RFC 8122 5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_fingerprint: Option<String>,
    /// `send`: the engine's number for the message, named by its events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<EngineStats>,
    /// `hello`: the version this client now speaks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// `batch`: one result per operation, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<OpResult>>,
    /// `report`: whether the REPORT was written; false for a failure REPORT
    /// that the message's Failure-Report `no` forbids (RFC 4975 7.1.4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<bool>,
}

impl Reply {
    pub fn ok(id: u64) -> Reply {
        Reply {
            id,
            ok: true,
            ..Reply::default()
        }
    }

    pub fn error(id: u64, error: impl Into<String>) -> Reply {
        Reply {
            id,
            ok: false,
            error: Some(error.into()),
            ..Reply::default()
        }
    }
}

/// Which way a transfer goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferDirection {
    Outgoing,
    Incoming,
}

/// What the engine reports to subscribers. Read through a flat struct (see
/// `events.rs`): an internally tagged enum would be buffered field by field,
/// and subscribers read a million a second.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "event",
    rename_all = "snake_case",
    try_from = "super::events::WireEvent"
)]
pub enum EngineEvent {
    /// The session is bound to a connection (RFC 4975 5.4).
    SessionReady {
        session_id: String,
    },
    /// A whole incoming message: the body is the frame's payload, or, for a
    /// large body, the spool file at `path`. `report_held`: it asked for a
    /// success REPORT, which its `hold_reports` session holds for a `report`
    /// command.
    MessageReceived {
        session_id: String,
        message_id: String,
        content_type: String,
        size: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        report_held: bool,
    },
    /// Octets of a large message handed to the connection (outgoing, `message`
    /// set) or written to the spool (incoming); at most one per message per
    /// progress interval.
    Progress {
        session_id: String,
        direction: TransferDirection,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
        bytes: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    /// Every chunk was accepted (and reported, with `success_report`).
    Delivered {
        session_id: String,
        message: u64,
        message_id: String,
    },
    /// The message did not make it: `status` is the MSRP code that said so
    /// (408 for a local timeout), absent for a local cause.
    Failed {
        session_id: String,
        message: u64,
        message_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        reason: String,
        bytes_acked: u64,
    },
    /// A large incoming message will not complete; its spool file is removed.
    MessageAborted {
        session_id: String,
        message_id: String,
        reason: String,
    },
    SessionClosed {
        session_id: String,
        reason: String,
    },
}

impl EngineEvent {
    pub fn session_id(&self) -> &str {
        match self {
            EngineEvent::SessionReady { session_id }
            | EngineEvent::MessageReceived { session_id, .. }
            | EngineEvent::Progress { session_id, .. }
            | EngineEvent::Delivered { session_id, .. }
            | EngineEvent::Failed { session_id, .. }
            | EngineEvent::MessageAborted { session_id, .. }
            | EngineEvent::SessionClosed { session_id, .. } => session_id,
        }
    }

    pub fn kind(&self) -> EventKind {
        match self {
            EngineEvent::SessionReady { .. } => EventKind::SessionReady,
            EngineEvent::MessageReceived { .. } => EventKind::MessageReceived,
            EngineEvent::Progress { .. } => EventKind::Progress,
            EngineEvent::Delivered { .. } => EventKind::Delivered,
            EngineEvent::Failed { .. } => EventKind::Failed,
            EngineEvent::MessageAborted { .. } => EventKind::MessageAborted,
            EngineEvent::SessionClosed { .. } => EventKind::SessionClosed,
        }
    }
}

/// The name of an [`EngineEvent`], as subscriptions name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    SessionReady,
    MessageReceived,
    Progress,
    Delivered,
    Failed,
    MessageAborted,
    SessionClosed,
}

impl EventKind {
    pub const ALL: [EventKind; 7] = [
        EventKind::SessionReady,
        EventKind::MessageReceived,
        EventKind::Progress,
        EventKind::Delivered,
        EventKind::Failed,
        EventKind::MessageAborted,
        EventKind::SessionClosed,
    ];

    /// This kind's bit in a [`EventKinds`] set.
    pub const fn bit(self) -> u32 {
        1 << self as u32
    }

    /// The name on the wire (`"event": NAME`), as subscriptions and flags
    /// give it.
    pub const fn name(self) -> &'static str {
        match self {
            EventKind::SessionReady => "session_ready",
            EventKind::MessageReceived => "message_received",
            EventKind::Progress => "progress",
            EventKind::Delivered => "delivered",
            EventKind::Failed => "failed",
            EventKind::MessageAborted => "message_aborted",
            EventKind::SessionClosed => "session_closed",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no [`EventKind`]'s; its text lists the names.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an event kind; one of {names}", names = EventKind::ALL.map(EventKind::name).join(", "))]
pub struct UnknownEventKind(pub String);

impl std::str::FromStr for EventKind {
    type Err = UnknownEventKind;

    fn from_str(name: &str) -> Result<EventKind, UnknownEventKind> {
        let name = name.trim();
        EventKind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| UnknownEventKind(name.into()))
    }
}

/// A set of event kinds, as a bit per [`EventKind`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventKinds(pub u32);

impl EventKinds {
    pub const ALL: EventKinds = EventKinds((1 << EventKind::ALL.len()) - 1);

    /// The kinds named; every kind when none is.
    pub fn named(kinds: &[EventKind]) -> EventKinds {
        match kinds {
            [] => EventKinds::ALL,
            kinds => EventKinds(kinds.iter().fold(0, |set, k| set | k.bit())),
        }
    }

    pub fn contains(self, kind: EventKind) -> bool {
        self.0 & kind.bit() != 0
    }
}

/// What the engine writes to a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Reply(Reply),
    /// Version 1: one event per frame, its payload the frame's.
    Event(EngineEvent),
    /// Version 2: the events of a shard's turn (or part of them), their
    /// payloads concatenated in the frame's payload.
    Events(super::events::EventsFrame),
}

/// Counters of the whole engine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineStats {
    /// The MSRP addresses the shards listen on.
    pub listen: Vec<String>,
    /// The host:port in the URIs the engine builds (`--advertise`): what a
    /// signaling process puts in `a=path` and `c=`/`m=` lines.
    pub advertise: String,
    /// MSRP over TLS, when `--tls-listen` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Box<TlsStats>>,
    /// Passive sessions waiting for their connection.
    pub sessions_pending: u64,
    /// Events dropped because the control thread fell behind.
    pub events_dropped: u64,
    /// Subscribers dropped for not reading their events.
    pub subscribers_dropped: u64,
    /// Partial spool files (`.*.part`) a crashed engine left, found at
    /// start and kept under `recovered/` or removed (`--partial-files`).
    pub partial_files_recovered: u64,
    pub shards: Vec<ShardStats>,
}

/// The engine's TLS face (RFC 4975 14), in `stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsStats {
    /// The MSRP-over-TLS addresses (`--tls-listen`).
    pub listen: Vec<String>,
    /// The host:port in our msrps URIs (`--tls-advertise`).
    pub advertise: String,
    /// Our certificate's sha-256 fingerprint (RFC 8122 5), as now loaded
    /// (SIGHUP may change it).
    pub local_fingerprint: String,
}

/// Counters of one shard; totals include closed connections.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShardStats {
    pub shard: usize,
    pub connections: u64,
    pub connections_accepted: u64,
    pub connections_opened: u64,
    pub connections_refused: u64,
    pub connections_failed: u64,
    pub sessions: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub messages_received: u64,
    pub messages_delivered: u64,
    pub messages_failed: u64,
    pub frames_malformed: u64,
    /// Connections closed for carrying no session for `--idle-timeout`.
    pub connections_idle_closed: u64,
    /// Connections closed because a frame in progress saw no octet for
    /// `--frame-timeout`.
    pub connections_frame_timeout: u64,
    /// Times a connection was not read because the spool disk or the peer
    /// reading our output was behind (backpressure).
    pub read_pauses: u64,
    /// Messages received while no application was subscribed: answered as
    /// `--unclaimed` says, and no event told anyone (an inline body is gone,
    /// a spooled one stays in the spool).
    pub messages_unclaimed: u64,
    /// Spool creates, writes, fsyncs or renames that failed (their chunks
    /// got 413), and of those, how many for a full disk (ENOSPC).
    pub spool_errors: u64,
    pub spool_enospc: u64,
    /// Held success REPORTs answered with a failure REPORT 408 because a
    /// newer one would have passed `--held-reports-max`.
    pub reports_held_expired: u64,
    /// TLS handshakes completed (`msrps:`, RFC 4975 14), and of those how
    /// many resumed an earlier session; handshakes or TLS records that
    /// failed (a bad certificate, non-TLS octets, an alert).
    pub tls_handshakes: u64,
    pub tls_resumed: u64,
    pub tls_failures: u64,
    /// Passive msrps sessions claimed by a connection whose client
    /// certificate was not the one the peer's SDP named (RFC 8122 5): the
    /// session failed, the connection closed.
    pub tls_fingerprint_mismatches: u64,
    /// Requests that named a pending session over the wrong transport (an
    /// msrps session on a plain connection, or the reverse): 481.
    pub sessions_wrong_transport: u64,
    /// Connections closed because their octets stopped being MSRP (a TLS
    /// ClientHello on a plain listener, say).
    pub connections_framing_lost: u64,
    /// Responses this shard sent, by status code (200s and errors); JSON
    /// object keys are strings.
    pub responses_out: BTreeMap<String, u64>,
}
