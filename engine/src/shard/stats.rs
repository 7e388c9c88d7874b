//! A shard's counters: those of connections that are gone, of this shard,
//! and of every open connection.

use super::Shard;
use crate::control::ShardStats;
use crate::ConnectionStats;

pub(super) fn add_conn_stats(stats: &mut ShardStats, conn: &ConnectionStats) {
    stats.frames_in += conn.requests_in + conn.responses_in;
    stats.frames_out += conn.chunks_out + conn.responses_out.iter().map(|(_, n)| n).sum::<u64>();
    stats.bytes_in += conn.bytes_in;
    stats.bytes_out += conn.bytes_out;
    stats.messages_received += conn.messages_received;
    stats.messages_delivered += conn.messages_delivered;
    stats.messages_failed += conn.messages_failed;
    stats.frames_malformed += conn.frames_malformed;
    stats.connections_framing_lost += conn.framing_lost;
    stats.connections_frame_timeout += conn.frame_timeouts;
    stats.reports_held_expired += conn.reports_held_expired;
    for &(status, n) in &conn.responses_out {
        *stats.responses_out.entry(status.to_string()).or_default() += n;
    }
}

impl Shard {
    pub(super) fn stats(&self) -> ShardStats {
        let mut stats = self.totals.clone();
        stats.connections = self.conns.len() as u64;
        stats.sessions = self.sessions.len() as u64;
        for (_, entry) in self.conns.iter() {
            add_conn_stats(&mut stats, entry.conn.stats());
        }
        stats
    }
}
