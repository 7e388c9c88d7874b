//! What a shard is configured with, built by `serve` from its settings: the
//! shard knows nothing of flags or config files, and `shard/` never imports
//! `serve/`.

use std::path::PathBuf;
use std::time::Duration;

use crate::ConnectionConfig;

#[derive(Clone, Debug)]
pub(crate) struct ShardConfig {
    /// Every connection's bounds and timers.
    pub connection: ConnectionConfig,
    /// Connections per shard; beyond it accepted connections are closed.
    pub connections_max: usize,
    /// Connections opened towards one peer address.
    pub conns_per_peer: usize,
    /// A connection that carries no session for this long is closed.
    pub idle_timeout: Duration,
    /// How long an active connection keeps retrying to connect.
    pub connect_timeout: Duration,
    /// Octets read from a connection at once.
    pub read_buffer_bytes: usize,
    /// Where received bodies are spooled.
    pub spool_dir: PathBuf,
    /// Received octets per connection waiting for the spool disk before the
    /// connection is not read further.
    pub spool_backlog_bytes_max: u64,
    /// fsync spooled octets (and the spool directory) before their 200.
    pub durable: bool,
    /// At most one progress event per message per interval.
    pub progress_interval: Duration,
    /// Answer SENDs 403 while no application is subscribed.
    pub refuse_unclaimed: bool,
}
