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
//! cutting), `held` (the success REPORTs the application decides), `active`
//! (the state of both that exists only while messages are in flight), and
//! `event`.

mod active;
mod admit;
mod config;
mod event;
mod held;
mod outgoing;
mod ranges;
mod reassembly;
mod receive;
mod send;

use std::rc::Rc;

pub(crate) use admit::{Admission, Refusal};
pub(crate) use config::SettingsCache;
pub use config::{type_accepted, Direction, Role, SessionConfig, SessionSettings};
pub use event::{CommitTicket, Event, MessageRef, ReceivedBody, SessionKey};
pub(crate) use held::HeldReport;
pub use outgoing::{ContentSource, OutgoingMessage, Payload, SourceChunk};
pub(crate) use outgoing::{Cut, CutChunk, OutMessage, Progress};
pub(crate) use receive::ChunkEnd;
pub(crate) use send::{ChunkAnswer, ReportVerdict, SendRefusal};

use crate::proto::MsrpUri;
use active::Active;
use config::ContentLimits;

/// Binding progress of a session on its connection (RFC 4975 5.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BindState {
    /// Active: the binding SEND is out, its 200 not yet in.
    Binding,
    /// Passive: no request has named the session yet.
    Unbound,
    Bound,
}

/// A session as its connection holds it. Sessions are many and mostly idle
/// (ARCHITECTURE: a million sessions per engine), so an idle one holds what
/// was negotiated and nothing else: the rare content limits and the state of
/// messages in flight are boxed and absent, the settings shared, and
/// nothing is stored twice.
pub(crate) struct Session {
    key: SessionKey,
    /// Our URI (our `a=path`): incoming To-Path must name it.
    local_uri: MsrpUri,
    /// The peer's `a=path`, in SDP order: our To-Path; its last URI is the
    /// peer itself, which incoming From-Paths must end in.
    remote_path: Box<[MsrpUri]>,
    /// `remote_path` joined, our To-Path, when it has several URIs (a
    /// relay path); with one it is that URI's text.
    to_path_joined: Option<Box<str>>,
    /// Floored to what the engine can honour; shared by the sessions of a
    /// connection that have the same.
    settings: Rc<SessionSettings>,
    /// `None`: any type, any size, both ways.
    limits: Option<Box<ContentLimits>>,
    /// `None` while the session has no traffic.
    active: Option<Box<Active>>,
    direction: Direction,
    binding: BindState,
    /// In the connection scheduler's ring.
    scheduled: bool,
}

impl Session {
    /// A new offer/answer changed what the peer takes (RFC 4975 8.6: its
    /// `accept-types` and `max-size`): messages sent from now on are held
    /// to these; those already queued were admitted under the old ones.
    pub fn set_peer_limits(&mut self, accept_types: Vec<String>, max_size: Option<u64>) {
        let mut limits = self.limits.take().map(|b| *b).unwrap_or_default();
        limits.remote_accept_types = accept_types;
        limits.remote_max_size = max_size;
        let none = limits.accept_types.is_empty()
            && limits.max_size.is_none()
            && limits.remote_accept_types.is_empty()
            && limits.remote_max_size.is_none();
        self.limits = (!none).then(|| Box::new(limits));
    }

    pub fn new(key: SessionKey, mut config: SessionConfig, settings: &mut SettingsCache) -> Session {
        let limits = ContentLimits::of(&mut config);
        let SessionConfig {
            local_uri,
            remote_path,
            role,
            direction,
            settings: wanted,
            ..
        } = config;
        let to_path_joined = (remote_path.len() > 1).then(|| {
            remote_path
                .iter()
                .map(MsrpUri::as_str)
                .collect::<Vec<_>>()
                .join(" ")
                .into_boxed_str()
        });
        let binding = match role {
            Role::Active => BindState::Binding,
            Role::Passive => BindState::Unbound,
        };
        Session {
            key,
            local_uri,
            remote_path: remote_path.into_boxed_slice(),
            to_path_joined,
            settings: settings.share(wanted),
            limits,
            active: None,
            direction,
            binding,
            scheduled: false,
        }
    }

    pub fn key(&self) -> SessionKey {
        self.key
    }

    /// Our URI: incoming To-Paths must name it (RFC 4975 7.3).
    pub fn local_uri(&self) -> &MsrpUri {
        &self.local_uri
    }

    /// Our session-id, from our URI (RFC 4975 6).
    pub fn session_id(&self) -> Option<&str> {
        self.local_uri.session_id()
    }

    /// The settings, floored to what the engine can honour.
    pub fn settings(&self) -> &SessionSettings {
        &self.settings
    }

    /// Our own path, the From-Path of what we send: `local_uri` as written.
    pub fn own_path(&self) -> &str {
        self.local_uri.as_str()
    }

    /// Our To-Path: `remote_path`, space-separated.
    pub fn to_path(&self) -> &str {
        match (&self.to_path_joined, self.remote_path.first()) {
            (Some(joined), _) => joined,
            (None, Some(uri)) => uri.as_str(),
            (None, None) => "",
        }
    }

    /// The peer: the last URI of its path (RFC 4975 8.2).
    pub fn peer(&self) -> Option<&MsrpUri> {
        self.remote_path.last()
    }

    /// The traffic state, created when the first message needs it.
    fn active_mut(&mut self) -> &mut Active {
        self.active.get_or_insert_with(Box::default)
    }

    /// Drops the traffic state when nothing is left in it (an idle session
    /// holds none).
    fn settle(&mut self) {
        if self.active.as_ref().is_some_and(|a| a.is_idle()) {
            self.active = None;
        }
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
        let Some(active) = &self.active else {
            return false;
        };
        let (out, settings) = (&active.outgoing, &*self.settings);
        out.has_work(settings.interleaves()) && out.inflight_bytes < settings.inflight_bytes_max
    }
}
