//! Success REPORTs the application decides
//! ([`SessionSettings::hold_reports`](super::SessionSettings::hold_reports)):
//! a received message that asked for one (RFC 4975 7.1.2) is held here, not
//! reported, until the application answers it with a success REPORT or a
//! failure REPORT (RFC 4975 7.1.4), until the bound makes room for a newer
//! one (408), or until the session ends, when nothing is sent (RFC 4975
//! 7.1.2: no REPORT "for a session that is no longer valid").

use super::Session;
use crate::proto::{FailureReport, MessageId};

/// What the REPORT of a message received whole needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HeldReport {
    pub message_id: MessageId,
    /// Octets of the message: the REPORT covers 1-total/total.
    pub total: u64,
    /// The From-Path of its latest chunk, the REPORT's To-Path (RFC 4975
    /// 7.1.3).
    pub to_path: String,
    /// Its Failure-Report, which says whether a failure REPORT may go.
    pub failure_report: FailureReport,
}

impl HeldReport {
    /// Whether a REPORT with status `code` may be sent for the message.
    /// RFC 4975 7.1.4: for a SEND with Failure-Report `no` an endpoint "MUST
    /// NOT send a failure REPORT request"; `yes` and `partial` allow one.
    pub fn may_send(&self, code: u16) -> bool {
        code == 200 || self.failure_report != FailureReport::No
    }
}

impl Session {
    /// Whether the application decides this session's success REPORTs.
    pub fn holds_reports(&self) -> bool {
        self.settings.hold_reports
    }

    /// Holds a report until the application decides it; the oldest one
    /// held comes back when the bound had to make room for this one.
    pub fn hold_report(&mut self, held: HeldReport) -> Option<HeldReport> {
        let max = self.settings.held_reports_max;
        let queue = &mut self.active_mut().held_reports;
        let evicted = match queue.len() >= max {
            true => queue.pop_front(),
            false => None,
        };
        queue.push_back(held);
        debug_assert!(queue.len() <= max, "held reports over held_reports_max");
        evicted
    }

    /// The report held for `message_id` (the oldest, should a peer have
    /// reused a Message-ID), no longer held.
    pub fn take_held_report(&mut self, message_id: &MessageId) -> Option<HeldReport> {
        let active = self.active.as_mut()?;
        let at = active
            .held_reports
            .iter()
            .position(|h| h.message_id == *message_id)?;
        let held = active.held_reports.remove(at);
        self.settle();
        held
    }

    /// Reports held now.
    pub fn held_reports(&self) -> usize {
        self.active.as_ref().map_or(0, |a| a.held_reports.len())
    }
}
