//! Success REPORTs held for the application (RFC 4975 7.1.2,
//! [`SessionSettings::hold_reports`](crate::SessionSettings::hold_reports)),
//! the connection's side: holding one when its message completes, the
//! application's decision ([`Connection::report`]), and the 408 that makes
//! room in the bound.

use crate::proto::{status_comment, FailureReport, MessageId};
use crate::session::{HeldReport, SessionKey};

use super::config::{ReportError, ReportSent};
use super::Connection;

/// A Status comment longer than this is refused: the peer's parser bounds a
/// header line (`proto::Limits`, 8 KiB), and a comment is a phrase.
pub const REPORT_COMMENT_BYTES_MAX: usize = 1024;

/// Whether `code` may be a REPORT's status: 200 for success, an error class
/// for failure (RFC 4975 7.1.4: "any error response code").
fn report_code(code: u16) -> bool {
    code == 200 || (300..=999).contains(&code)
}

impl Connection {
    /// A message asking for a success REPORT is complete: the REPORT is
    /// written now, or held when the session holds reports. True when held.
    pub(super) fn report_received(
        &mut self,
        slot: usize,
        message_id: MessageId,
        total: u64,
        to_path: &str,
        failure_report: FailureReport,
    ) -> bool {
        let session = &mut self.sessions[slot];
        if !session.holds_reports() {
            self.write_report(slot, message_id, total, to_path, 200, "OK");
            return false;
        }
        let held = HeldReport {
            message_id,
            total,
            to_path: to_path.to_owned(),
            failure_report,
        };
        if let Some(oldest) = session.hold_report(held) {
            // Its sender waits for this REPORT (RFC 4975 7.1.1: a timer of
            // its own): answered now, as the timeout it would come to.
            self.stats.reports_held_expired += 1;
            if oldest.may_send(408) {
                let comment = "the application did not decide the report in time (held-reports-max)";
                self.write_report(
                    slot,
                    oldest.message_id,
                    oldest.total,
                    &oldest.to_path,
                    408,
                    comment,
                );
            }
        }
        true
    }

    /// The application's decision on a held report: `status` 200 writes the
    /// success REPORT (RFC 4975 7.1.3), an error code a failure REPORT
    /// (RFC 4975 7.1.4) with `comment` or the code's usual phrase, both
    /// covering the whole message. The report is no longer held either way,
    /// even when RFC 4975 7.1.4 forbids the failure REPORT
    /// ([`ReportSent::Forbidden`]); a refused call changes nothing.
    pub fn report(
        &mut self,
        key: SessionKey,
        message_id: &str,
        status: u16,
        comment: Option<&str>,
    ) -> Result<ReportSent, ReportError> {
        if !report_code(status) {
            return Err(ReportError::Status(status));
        }
        let comment = match comment {
            Some(c) if c.len() > REPORT_COMMENT_BYTES_MAX => {
                return Err(ReportError::CommentTooLong(c.len()));
            }
            Some(c) if c.is_empty() || c.chars().any(char::is_control) => {
                return Err(ReportError::BadComment);
            }
            Some(c) => c,
            None => status_comment(status),
        };
        let slot = key.slot as usize;
        let Some(session) = self.sessions.get_mut(slot).filter(|s| s.key() == key) else {
            return Err(ReportError::UnknownSession);
        };
        let held = MessageId::new(message_id.as_bytes()).and_then(|id| session.take_held_report(&id));
        let Some(held) = held else {
            return Err(ReportError::NotHeld(message_id.to_owned()));
        };
        if !held.may_send(status) {
            return Ok(ReportSent::Forbidden);
        }
        self.write_report(slot, held.message_id, held.total, &held.to_path, status, comment);
        Ok(ReportSent::Sent)
    }

    /// Reports held now by a session.
    pub fn session_held_reports(&self, key: SessionKey) -> Option<usize> {
        self.session(key).map(|s| s.held_reports())
    }
}
