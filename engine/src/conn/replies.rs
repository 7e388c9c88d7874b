//! What we write in answer: responses to the peer's requests (RFC 4975 7.2),
//! 400s for malformed frames, and REPORTs on messages received (RFC 4975
//! 7.1.2).

use crate::proto::{
    status_comment, write_response, write_response_echo, FailureReport, FrameHead, Malformed, MessageId,
    Method, Reaction, TransactionId,
};

use super::receive::Inbound;
use super::Connection;

/// A response to write at the end of the frame.
pub(super) struct Reply {
    pub(super) tid: TransactionId,
    pub(super) status: u16,
    pub(super) failure_report: FailureReport,
    pub(super) to_path: String,
    pub(super) from_path: String,
}

/// Stands in for a path a malformed request did not carry.
const UNKNOWN_PATH: &str = "msrp://unknown.invalid;tcp";

/// Whether a request with this Failure-Report gets a response with this
/// status (RFC 4975 7.2): `no` never, `partial` only errors.
fn answers(failure_report: FailureReport, status: u16) -> bool {
    match failure_report {
        FailureReport::Yes => true,
        FailureReport::Partial => status != 200,
        FailureReport::No => false,
    }
}

/// The leftmost URI of a path.
fn leftmost(path: &str) -> &str {
    memchr::memchr(b' ', path.as_bytes()).map_or(path, |at| &path[..at])
}

/// RFC 4975 7.2: a SEND's response goes to the leftmost URI of its
/// From-Path (the previous hop), any other request's to the whole path.
fn response_to_path(head: &FrameHead) -> &str {
    let from = head.from_path().as_str();
    match head.method() {
        Some(Method::Send) => leftmost(from),
        _ => from,
    }
}

impl Connection {
    pub(super) fn on_malformed(&mut self, bad: Malformed) {
        self.stats.frames_malformed += 1;
        // A non-SEND body over its limit abandons a frame already begun.
        self.inbound = Inbound::Idle;
        self.pieces.clear();
        match bad.error.reaction() {
            Reaction::Close => {
                self.close(&format!("malformed frame: {}", bad.error));
            }
            Reaction::Discard => {}
            Reaction::Respond400 => {
                if bad.header("Failure-Report") == Some(b"no") {
                    return;
                }
                // A path the request lacks (N10, N11), or one that cannot be
                // echoed (a control octet), is written as a placeholder: the
                // sender matches the 400 by its tid.
                fn text(v: Option<&[u8]>) -> &str {
                    let echoable = |v: &&[u8]| v.iter().all(|&b| b >= 0x20 && b != 0x7f);
                    match v.filter(echoable).and_then(|v| core::str::from_utf8(v).ok()) {
                        Some(path) if !path.trim().is_empty() => path,
                        _ => UNKNOWN_PATH,
                    }
                }
                let to_path = leftmost(text(bad.header("From-Path"))).to_owned();
                let from_path = leftmost(text(bad.header("To-Path"))).to_owned();
                let comment = bad.error.to_string();
                let comment: String = comment.chars().filter(|c| !c.is_control()).take(120).collect();
                match write_response_echo(
                    &mut self.control,
                    bad.transaction_id(),
                    400,
                    Some(&comment),
                    &to_path,
                    &from_path,
                ) {
                    Ok(()) => self.stats.count_response(400),
                    // Never silence: a sender would wait for its timeout.
                    Err(error) => self.close(&format!(
                        "malformed frame ({}) that no valid 400 can answer: {error}",
                        bad.error
                    )),
                }
            }
        }
    }

    /// Answers a request of a session at once, without copying its paths.
    pub(super) fn reply_now(&mut self, head: &FrameHead, status: u16, slot: usize) {
        if !answers(head.failure_report().unwrap_or_default(), status) {
            return;
        }
        let written = write_response(
            &mut self.control,
            head.transaction_id(),
            status,
            Some(status_comment(status)),
            response_to_path(head),
            self.sessions[slot].own_path(),
        );
        if written.is_ok() {
            self.stats.count_response(status);
        }
    }

    pub(super) fn reply_for(&self, head: &FrameHead, status: u16, slot: Option<usize>) -> Reply {
        let from_path = match slot {
            Some(slot) => self.sessions[slot].own_path().to_owned(),
            None => head.to_path().as_str().to_owned(),
        };
        Reply {
            tid: *head.transaction_id(),
            status,
            failure_report: head.failure_report().unwrap_or_default(),
            to_path: response_to_path(head).to_owned(),
            from_path,
        }
    }

    /// Writes a response as the request's Failure-Report allows (RFC 4975
    /// 7.2): `no` never, `partial` only for errors.
    pub(super) fn send_reply(&mut self, reply: Reply) {
        if !answers(reply.failure_report, reply.status) {
            return;
        }
        let written = write_response(
            &mut self.control,
            &reply.tid,
            reply.status,
            Some(status_comment(reply.status)),
            &reply.to_path,
            &reply.from_path,
        );
        if written.is_ok() {
            self.stats.count_response(reply.status);
        }
    }

    /// RFC 4975 7.1.3, 7.1.4: the session's REPORT on a message received,
    /// `code` 200 for success.
    pub(super) fn write_report(
        &mut self,
        slot: usize,
        message_id: MessageId,
        total: u64,
        to_path: &str,
        code: u16,
        comment: &str,
    ) {
        let req = self.sessions[slot].report(message_id, total, to_path, code, comment);
        // The paths were validated when the SEND was parsed, the code and
        // comment by the caller.
        let written = self.writer.write_request(&req, &mut self.control);
        debug_assert!(written.is_ok());
    }
}
