//! The sink's commits: a streamed chunk is answered 200 only once the sink
//! holds its bytes, so the 200 waits here under a [`CommitTicket`].

use slab::Slab;

use crate::proto::{FailureReport, FrameHead, MessageId, TransactionId};
use crate::session::{CommitTicket, Event, SessionKey};

use super::replies::Reply;
use super::Connection;

/// A response to write once the application committed a chunk.
pub(super) struct Deferred {
    /// The whole ticket, so a stale ticket cannot commit a reused slot.
    ticket: u64,
    /// The reassembly entry the chunk went into (a dropped message's id can
    /// start a new entry).
    epoch: u64,
    pub(super) session: SessionKey,
    message_id: MessageId,
    pub(super) tid: TransactionId,
    pub(super) reply_to: String,
    pub(super) failure_report: FailureReport,
}

/// The slot of `deferred` a ticket names: its low half; the high half
/// counts the tickets issued.
fn ticket_index(ticket: u64) -> usize {
    (ticket & u64::from(u32::MAX)) as usize
}

/// The tickets still outstanding for one reassembly entry.
fn tickets_outstanding(deferred: &Slab<Deferred>, session: SessionKey, epoch: u64) -> usize {
    deferred
        .iter()
        .filter(|(_, d)| d.session == session && d.epoch == epoch)
        .count()
}

impl Connection {
    /// Holds the 200 of a streamed chunk, counted in the entry's
    /// `uncommitted`, until the sink commits the ticket it is given in an
    /// [`Event::Commit`].
    pub(super) fn defer_reply(&mut self, head: &FrameHead, slot: usize, message_id: MessageId, epoch: u64) {
        let key = self.sessions[slot].key();
        let reply = self.reply_for(head, 200, Some(slot));
        self.tickets_issued = self.tickets_issued.wrapping_add(1);
        let entry = self.deferred.vacant_entry();
        let index = entry.key();
        let ticket = u64::from(self.tickets_issued) << 32 | index as u64;
        debug_assert_eq!(ticket_index(ticket), index, "a commit ticket names its slot");
        entry.insert(Deferred {
            ticket,
            epoch,
            session: key,
            message_id,
            tid: reply.tid,
            reply_to: reply.to_path,
            failure_report: reply.failure_report,
        });
        debug_assert_eq!(
            self.sessions[slot]
                .uncommitted_chunks(&message_id)
                .map(|n| n as usize),
            Some(tickets_outstanding(&self.deferred, key, epoch)),
            "an entry's uncommitted chunks are its outstanding commit tickets"
        );
        self.events.push_back(Event::Commit {
            session: key,
            message_id,
            ticket: CommitTicket(ticket),
        });
    }

    /// The sink holds (and, if asked, has synced) the bytes of the chunk.
    pub fn committed(&mut self, ticket: CommitTicket) {
        self.finish_commit(ticket, None);
    }

    /// The sink could not take the bytes: the chunk is answered `status`
    /// (413 asks the sender to stop the message, RFC 4975 10.5) and the
    /// message is dropped.
    pub fn commit_failed(&mut self, ticket: CommitTicket, status: u16, reason: &str) {
        self.finish_commit(ticket, Some((status, reason)));
    }

    fn finish_commit(&mut self, ticket: CommitTicket, failure: Option<(u16, &str)>) {
        let index = ticket_index(ticket.0);
        if self.deferred.get(index).is_none_or(|d| d.ticket != ticket.0) {
            return;
        }
        let deferred = self.deferred.remove(index);
        let slot = deferred.session.slot as usize;
        let Some(session) = self
            .sessions
            .get_mut(slot)
            .filter(|s| s.key() == deferred.session)
        else {
            // `close_session` answers a session's tickets before it goes.
            debug_assert!(false, "a commit ticket outlived its session");
            return;
        };
        let status = failure.map_or(200, |(status, _)| status);
        let reply = Reply {
            tid: deferred.tid,
            status,
            failure_report: deferred.failure_report,
            to_path: deferred.reply_to,
            from_path: session.own_path().to_owned(),
        };
        match failure {
            None => {
                let left = session.chunk_committed(&deferred.message_id, deferred.epoch);
                debug_assert!(
                    left.is_none_or(|n| n as usize
                        == tickets_outstanding(&self.deferred, deferred.session, deferred.epoch)),
                    "an entry's uncommitted chunks are its outstanding commit tickets"
                );
                self.send_reply(reply);
                self.try_complete(slot, deferred.message_id);
            }
            Some((_, reason)) => {
                self.drop_incoming(slot, deferred.message_id, reason);
                self.send_reply(reply);
            }
        }
        if self.deferred.is_empty() {
            if let Some(reason) = self.eof.take() {
                self.close_after_eof(&reason);
            }
        }
    }
}
