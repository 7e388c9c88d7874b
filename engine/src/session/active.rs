//! What a session holds only while it has traffic: its outgoing messages
//! until their outcome (RFC 4975 7.1.2), its incoming messages in
//! reassembly (RFC 4975 7.3.1), the success REPORTs the application
//! decides, and what it remembers of refusals. An idle session holds none
//! of it (a pointer, `None`): sessions are many and mostly idle
//! (ARCHITECTURE "Bounds": a million sessions per engine).

use std::collections::{HashMap, VecDeque};

use super::held::HeldReport;
use super::outgoing::Outgoing;
use super::reassembly::Incoming;
use crate::proto::MessageId;

/// A session's traffic state, created by its first message either way and
/// dropped when nothing is left in it.
#[derive(Default)]
pub(super) struct Active {
    pub outgoing: Outgoing,
    /// Incoming messages in reassembly, by the peer's Message-ID.
    pub incoming: HashMap<MessageId, Incoming>,
    /// Recently dropped incoming messages: their late chunks get 413
    /// (RFC 4975 10.5). Remembered for the session's life, so a session
    /// that dropped one keeps its state.
    pub dropped_incoming: VecDeque<MessageId>,
    /// Types the peer refused with 415: not sent again in this session
    /// (RFC 4975 10.6: "should not send any further messages with the same
    /// content-type"); kept, like `dropped_incoming`, for the session's life.
    pub refused_types: Vec<String>,
    /// Success REPORTs the application decides (`hold_reports`), oldest
    /// first, at most `held_reports_max`.
    pub held_reports: VecDeque<HeldReport>,
}

impl Active {
    /// Nothing in flight, nothing owed, nothing remembered: the state can
    /// go, and a fresh one behaves the same.
    pub fn is_idle(&self) -> bool {
        self.outgoing.is_idle()
            && self.incoming.is_empty()
            && self.dropped_incoming.is_empty()
            && self.refused_types.is_empty()
            && self.held_reports.is_empty()
    }
}
