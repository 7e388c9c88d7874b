//! One negotiated MSRP session as the SDP offer/answer left it (RFC 4975 8),
//! and the bounds the engine keeps for it.

use core::fmt;
use std::rc::Rc;

use crate::proto::{FailureReport, MsrpUri, SuccessReport};

/// Who opens the connection and sends the binding SEND (RFC 4975 5.4, RFC 6135).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Active,
    Passive,
}

/// The SDP direction attribute (RFC 4975 8.9): it restricts content SENDs, not
/// the binding SEND.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub(crate) fn may_send(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    pub(crate) fn may_receive(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// A negotiated session.
#[derive(Clone)]
pub struct SessionConfig {
    /// Our URI (our `a=path`): incoming To-Path must name it.
    pub local_uri: MsrpUri,
    /// The peer's `a=path`, in SDP order: our To-Path; its last URI is the
    /// peer itself, which incoming From-Paths must end in (403 otherwise).
    pub remote_path: Vec<MsrpUri>,
    pub role: Role,
    pub direction: Direction,
    /// Our `a=accept-types`: incoming content of other types gets 415. `*`
    /// and `type/*` are wildcards; empty means `*` (no allocation for the
    /// common case, in a million sessions).
    pub accept_types: Vec<String>,
    /// Our `a=accept-wrapped-types` (kept for the application; the engine does
    /// not open message/cpim wrappers).
    pub accept_wrapped_types: Vec<String>,
    /// Our `a=max-size`: larger incoming messages get 413.
    pub max_size: Option<u64>,
    /// The peer's `a=accept-types`: [`Connection::send`](crate::Connection::send)
    /// refuses other types (RFC 4975 8.6). Empty means `*`.
    pub remote_accept_types: Vec<String>,
    /// The peer's `a=max-size`: larger outgoing messages are refused.
    pub remote_max_size: Option<u64>,
    pub settings: SessionSettings,
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("local_uri", &self.local_uri)
            .field("remote_path", &self.remote_path)
            .field("role", &self.role)
            .field("direction", &self.direction)
            .finish_non_exhaustive()
    }
}

impl SessionConfig {
    /// A send-and-receive session accepting any type, with default settings.
    pub fn new(local_uri: MsrpUri, remote_path: Vec<MsrpUri>, role: Role) -> SessionConfig {
        SessionConfig {
            local_uri,
            remote_path,
            role,
            direction: Direction::SendRecv,
            accept_types: Vec::new(),
            accept_wrapped_types: Vec::new(),
            max_size: None,
            remote_accept_types: Vec::new(),
            remote_max_size: None,
            settings: SessionSettings::default(),
        }
    }
}

/// The offer/answer's limits on content (RFC 4975 8.6), as a session keeps
/// them: most sessions negotiate none, and then hold no copy at all.
#[derive(Debug, Default)]
pub(crate) struct ContentLimits {
    pub accept_types: Vec<String>,
    pub max_size: Option<u64>,
    pub remote_accept_types: Vec<String>,
    pub remote_max_size: Option<u64>,
}

impl ContentLimits {
    /// The limits of `config`, `None` when it sets none (every type, any
    /// size, both ways). `accept_wrapped_types` stays with the
    /// application: the engine does not open wrappers.
    pub(crate) fn of(config: &mut SessionConfig) -> Option<Box<ContentLimits>> {
        let limits = ContentLimits {
            accept_types: core::mem::take(&mut config.accept_types),
            max_size: config.max_size,
            remote_accept_types: core::mem::take(&mut config.remote_accept_types),
            remote_max_size: config.remote_max_size,
        };
        let none = limits.accept_types.is_empty()
            && limits.max_size.is_none()
            && limits.remote_accept_types.is_empty()
            && limits.remote_max_size.is_none();
        (!none).then(|| Box::new(limits))
    }
}

/// The settings of the sessions of one connection, shared: they are
/// nearly always the engine's defaults, and a session then holds a pointer,
/// not a copy.
#[derive(Default)]
pub(crate) struct SettingsCache {
    last: Option<Rc<SessionSettings>>,
}

impl SettingsCache {
    /// `settings`, floored, shared with the previous session's when equal.
    pub(crate) fn share(&mut self, settings: SessionSettings) -> Rc<SessionSettings> {
        let settings = settings.floored();
        match &self.last {
            Some(last) if **last == settings => last.clone(),
            _ => self.last.insert(Rc::new(settings)).clone(),
        }
    }
}

/// Per-session behaviour and bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionSettings {
    /// Body octets per outgoing chunk (RFC 4975 5.1: chunks over 2048 octets
    /// are sent interruptible, with range-end `*`).
    pub chunk_bytes: usize,
    /// Body octets sent and not yet answered: further chunks wait.
    pub inflight_bytes_max: u64,
    /// Messages accepted by `send` and not yet fully cut into chunks.
    pub send_queue_messages_max: usize,
    /// In-memory body octets accepted by `send` and not yet cut into chunks.
    pub send_queue_bytes_max: u64,
    /// Defaults for messages that do not set their own.
    pub success_report: SuccessReport,
    pub failure_report: FailureReport,
    /// Incoming messages up to this size are delivered whole in memory;
    /// larger ones stream to the sink ([`Event::Data`](crate::Event::Data)).
    pub inline_bytes_max: u64,
    /// Incoming messages in reassembly at once; a new one beyond gets 413.
    pub incoming_messages_max: usize,
    /// Separate received ranges of one message (out-of-order chunks); a
    /// chunk that would exceed it gets 413.
    pub incoming_ranges_max: usize,
    /// The largest incoming message when the session has no max-size, and a
    /// cap on it when it has one: 413 beyond.
    pub incoming_message_bytes_max: u64,
    /// RFC 4975 7.1 lets chunks of different messages of one session
    /// interleave (the receiver keeps them apart by Message-ID), and 5.1
    /// wants other traffic not to wait behind a large message: a message
    /// that goes in one chunk (in memory, at most `chunk_bytes`) queued
    /// behind a larger one goes between two of its chunks, at most this
    /// many messages per gap, so a text waits for at most one chunk of a
    /// file on its own session and the file still sends at least one chunk
    /// in every `interleave_messages_max + 1`. Messages larger than one
    /// chunk keep their send order among themselves, so the peer holds at
    /// most one partial message of ours per session. 0: every message waits
    /// for the one before it to be cut whole.
    pub interleave_messages_max: u32,
    /// Body octets of those messages per gap: the first always goes, and the
    /// gap closes once they reach this, so under a flood of full-size
    /// one-chunk messages the larger one keeps about half the session's
    /// octets (with the defaults, one 64 KiB chunk per 16 texts or per
    /// 64 KiB of other messages). 0 turns interleaving off, as above.
    pub interleave_bytes_max: u64,
    /// The application decides the success REPORT of each received message
    /// that asked for one (RFC 4975 7.1.2): the engine holds it instead of
    /// writing it when the message completes, until
    /// [`Connection::report`](crate::Connection::report) says 200 or a
    /// failure code (e.g. after checking an RFC 5547 file's hash).
    pub hold_reports: bool,
    /// Reports held at once: one more answers the oldest with a failure
    /// REPORT 408 (its sender's wait would run out anyway).
    pub held_reports_max: usize,
}

impl Default for SessionSettings {
    fn default() -> SessionSettings {
        SessionSettings {
            chunk_bytes: 64 * 1024,
            inflight_bytes_max: 1024 * 1024,
            send_queue_messages_max: 1024,
            send_queue_bytes_max: 16 * 1024 * 1024,
            success_report: SuccessReport::No,
            failure_report: FailureReport::Yes,
            inline_bytes_max: 256 * 1024,
            incoming_messages_max: 64,
            incoming_ranges_max: 256,
            incoming_message_bytes_max: 16 * 1024 * 1024 * 1024,
            interleave_messages_max: 16,
            interleave_bytes_max: 64 * 1024,
            hold_reports: false,
            held_reports_max: 64,
        }
    }
}

impl SessionSettings {
    /// The smallest chunk accepted: RFC 4975 5.1 asks for no chunks under
    /// 2048 octets except the last.
    pub const CHUNK_BYTES_MIN: usize = 2048;
    /// The largest outgoing chunk a setting may ask for: the default limit
    /// on a chunk's body before its end-line (`Limits::chunk_body_bytes_max`),
    /// so an engine's chunks pass another engine's parser.
    pub const CHUNK_BYTES_MAX: usize = 16 * 1024 * 1024;

    /// Whether `chunk_bytes` is a chunk size a setting may ask for.
    pub fn chunk_bytes_allowed(chunk_bytes: u64) -> bool {
        (Self::CHUNK_BYTES_MIN as u64..=Self::CHUNK_BYTES_MAX as u64).contains(&chunk_bytes)
    }

    /// Whether one-chunk messages may go between the chunks of a larger
    /// one (`interleave_messages_max`).
    pub fn interleaves(&self) -> bool {
        self.interleave_messages_max > 0 && self.interleave_bytes_max > 0
    }

    pub(crate) fn floored(self) -> SessionSettings {
        let chunk_bytes = self.chunk_bytes.max(Self::CHUNK_BYTES_MIN);
        SessionSettings {
            chunk_bytes,
            inflight_bytes_max: self.inflight_bytes_max.max(1),
            send_queue_messages_max: self.send_queue_messages_max.max(1),
            incoming_messages_max: self.incoming_messages_max.max(1),
            incoming_ranges_max: self.incoming_ranges_max.max(1),
            held_reports_max: self.held_reports_max.max(1),
            ..self
        }
    }
}

/// Whether `content_type` (parameters ignored) is one of `accepted`, where
/// `*` (or an empty list) accepts everything and `type/*` a whole top-level
/// type (RFC 4975 8.6).
pub fn type_accepted(accepted: &[String], content_type: &str) -> bool {
    if accepted.is_empty() || accepted.iter().any(|a| a.trim() == "*") {
        return true;
    }
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let (top, _) = media.split_once('/').unwrap_or((media, ""));
    accepted.iter().any(|a| {
        let a = a.trim();
        a.eq_ignore_ascii_case(media) || a.strip_suffix("/*").is_some_and(|t| t.eq_ignore_ascii_case(top))
    })
}

#[cfg(test)]
mod tests {
    use super::type_accepted;

    #[test]
    fn accept_types() {
        let list = ["text/plain".to_string(), "image/*".to_string()];
        assert!(type_accepted(&list, "text/plain"));
        assert!(type_accepted(&list, "Text/Plain;charset=utf-8"));
        assert!(type_accepted(&list, "image/jpeg"));
        assert!(!type_accepted(&list, "text/html"));
        assert!(!type_accepted(&list, "imagex/jpeg"));
        assert!(type_accepted(&["*".to_string()], "application/octet-stream"));
        assert!(type_accepted(&[], "application/octet-stream"), "empty is `*`");
    }
}
