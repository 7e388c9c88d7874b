//! SIGTERM on a shard: stop accepting, let transfers finish until the
//! deadline, then close what is left so that every transfer ends in an
//! event.

use std::time::{Duration, Instant};

use super::ShardRef;

/// SIGTERM: no new connections; transfers in flight may finish until the
/// deadline; then every connection is closed, which fails what is left with
/// events.
pub(super) async fn drain(this: &ShardRef, deadline: Instant) {
    {
        let mut shard = this.borrow_mut();
        shard.draining = Some(deadline);
        shard.stop_accepting.notify_waiters();
        tracing::info!(shard = shard.index, "draining");
    }
    loop {
        let busy = this
            .borrow()
            .conns
            .iter()
            .any(|(_, c)| !c.conn.is_closed() && c.has_transfers());
        if !busy || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    {
        let mut shard = this.borrow_mut();
        let open: Vec<usize> = shard
            .conns
            .iter()
            .filter(|(_, c)| !c.conn.is_closed())
            .map(|(i, _)| i)
            .collect();
        for ci in open {
            let reason = if !shard.conns[ci].has_transfers() {
                "the engine is shutting down"
            } else {
                "the engine shut down before the transfer finished (drain timeout)"
            };
            shard.conns[ci].conn.handle_closed(reason);
            shard.pump(this, ci);
        }
        shard.flush_turn();
    }
    // Let writers flush what closing produced, and the flusher the events.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let done = {
            let shard = this.borrow();
            shard.backlog.is_empty() && shard.conns.is_empty()
        };
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
