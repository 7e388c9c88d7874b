//! One MSRP session (RFC 4975 5.4, 7, 8): its negotiated description, its
//! outgoing messages cut into chunks, its incoming messages in reassembly, and
//! the events those produce. Sessions live in a [`Connection`](crate::Connection),
//! which routes frames to them, runs the transactions and timers, and asks
//! them what becomes of each chunk.
//!
//! The parts, one file each: `config` (what was negotiated), `admit` (which
//! chunks of a SEND the session takes), `receive` (its messages in
//! reassembly, `reassembly` and `ranges` for one message), `send` (what it
//! sends and what the answers do to it, `outgoing` for the queue and the
//! cutting), and `event`.

mod admit;
mod config;
mod event;
mod outgoing;
mod ranges;
mod reassembly;
mod receive;
mod send;

use std::collections::{HashMap, VecDeque};

pub(crate) use admit::{Admission, Refusal};
pub use config::{type_accepted, Direction, Role, SessionConfig, SessionSettings};
pub use event::{CommitTicket, Event, MessageRef, ReceivedBody, SessionKey};
pub use outgoing::{ContentSource, OutgoingMessage, Payload, SourceChunk};
pub(crate) use outgoing::{Cut, CutChunk, OutMessage, Progress};
pub(crate) use receive::ChunkEnd;
pub(crate) use send::{ChunkAnswer, ReportVerdict, SendRefusal};

use crate::proto::{MessageId, MsrpUri};
use outgoing::Outgoing;
use reassembly::Incoming;

/// Binding progress of a session on its connection (RFC 4975 5.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BindState {
    /// Active: the binding SEND is out, its 200 not yet in.
    Binding,
    /// Passive: no request has named the session yet.
    Unbound,
    Bound,
}

/// A session as its connection holds it.
pub(crate) struct Session {
    key: SessionKey,
    config: SessionConfig,
    /// `remote_path` joined, our To-Path, when it has several URIs (a
    /// relay path); with one it is that URI's text. Sessions are many and
    /// mostly idle, so nothing is stored twice (ARCHITECTURE: a million
    /// sessions per engine).
    to_path_joined: Option<Box<str>>,
    binding: BindState,
    outgoing: Outgoing,
    /// Incoming messages in reassembly, by the peer's Message-ID.
    incoming: HashMap<MessageId, Incoming>,
    /// Recently dropped incoming messages: their late chunks get 413.
    dropped_incoming: VecDeque<MessageId>,
    /// Types the peer refused with 415: not sent again in this session
    /// (RFC 4975 10.6: "should not send any further messages with the same
    /// content-type").
    refused_types: Vec<String>,
    /// In the connection scheduler's ring.
    scheduled: bool,
}

impl Session {
    pub fn new(key: SessionKey, mut config: SessionConfig) -> Session {
        config.settings = config.settings.floored();
        let to_path_joined = (config.remote_path.len() > 1).then(|| {
            config
                .remote_path
                .iter()
                .map(MsrpUri::as_str)
                .collect::<Vec<_>>()
                .join(" ")
                .into_boxed_str()
        });
        let binding = match config.role {
            Role::Active => BindState::Binding,
            Role::Passive => BindState::Unbound,
        };
        Session {
            key,
            config,
            to_path_joined,
            binding,
            outgoing: Outgoing::default(),
            incoming: HashMap::new(),
            dropped_incoming: VecDeque::new(),
            refused_types: Vec::new(),
            scheduled: false,
        }
    }

    pub fn key(&self) -> SessionKey {
        self.key
    }

    /// What was negotiated, with the settings floored to what the engine
    /// can honour.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Our own path, the From-Path of what we send: `local_uri` as written.
    pub fn own_path(&self) -> &str {
        self.config.local_uri.as_str()
    }

    /// Our To-Path: `remote_path`, space-separated.
    pub fn to_path(&self) -> &str {
        match (&self.to_path_joined, self.config.remote_path.first()) {
            (Some(joined), _) => joined,
            (None, Some(uri)) => uri.as_str(),
            (None, None) => "",
        }
    }

    /// The peer: the last URI of its path (RFC 4975 8.2).
    pub fn peer(&self) -> Option<&MsrpUri> {
        self.config.remote_path.last()
    }

    /// RFC 4975 5.4: an active session binds the connection with a SEND of
    /// its own, which is out until its 200 comes.
    pub fn is_binding(&self) -> bool {
        self.binding == BindState::Binding
    }

    /// A request from the peer named the session. RFC 4975 5.4: the first
    /// one binds a passive session; true when it did now.
    pub fn bind_by_request(&mut self) -> bool {
        let binds = self.binding == BindState::Unbound;
        if binds {
            self.binding = BindState::Bound;
        }
        binds
    }

    /// Our binding SEND got its 200; true when that bound the session now.
    pub fn binding_answered(&mut self) -> bool {
        let binds = self.binding == BindState::Binding;
        if binds {
            self.binding = BindState::Bound;
        }
        binds
    }

    /// Takes a place in the scheduler's ring when the session has a chunk
    /// to cut and room to send it, and has no place yet; true when the
    /// scheduler must add it.
    pub fn join_ring(&mut self) -> bool {
        let joins = !self.scheduled && self.is_ready();
        self.scheduled |= joins;
        joins
    }

    /// The scheduler dropped the session from its ring (nothing to cut now).
    pub fn leave_ring(&mut self) {
        self.scheduled = false;
    }

    pub fn in_ring(&self) -> bool {
        self.scheduled
    }

    /// Whether the session has a chunk to cut and room to send it.
    fn is_ready(&self) -> bool {
        let out = &self.outgoing;
        let settings = &self.config.settings;
        out.has_work(settings.interleaves()) && out.inflight_bytes < settings.inflight_bytes_max
    }
}
