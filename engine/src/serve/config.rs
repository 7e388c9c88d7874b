//! Every setting of `msrpd serve`, as flags; the TOML config file uses the
//! same names (`engine/CONTROL.md` and README list them).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::recovery::PartialFiles;
use super::units::{parse_cpu_list, parse_duration, parse_size, CpuList};
use crate::proto::{ParserConfig, Strictness};
use crate::shard::ShardConfig;
use crate::tls::TlsFiles;
use crate::{ConnectionConfig, SessionSettings};

#[derive(Clone, Debug, clap::Args)]
pub struct ServeConfig {
    /// Shards (pinned threads, one io_uring loop each); default: one per core.
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
    /// MSRP address to listen on; repeat for several. Port 0 picks one.
    /// Loopback unless told otherwise (`--listen 0.0.0.0:2855` serves every
    /// interface).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:2855")]
    pub listen: Vec<SocketAddr>,
    /// host:port put in our MSRP URIs (default: the first listen address,
    /// 127.0.0.1 for a wildcard one).
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: Option<String>,
    /// MSRP over TLS (`msrps:`, RFC 4975 14) address to listen on; repeat
    /// for several. Needs --tls-cert and --tls-key.
    #[arg(long, value_name = "ADDR")]
    pub tls_listen: Vec<SocketAddr>,
    /// host:port put in our msrps URIs (default: the first --tls-listen
    /// address, 127.0.0.1 for a wildcard one).
    #[arg(long, value_name = "HOST:PORT")]
    pub tls_advertise: Option<String>,
    /// Our certificate chain (PEM), presented on --tls-listen and to msrps
    /// peers we connect to; re-read on SIGHUP.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM); re-read on SIGHUP.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Require a client certificate on --tls-listen, verified against this
    /// CA bundle (PEM).
    #[arg(long, value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,
    /// Roots (PEM) that verify an msrps peer we connect to, by the host of
    /// its URI.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// TLS sessions kept for resumption (RFC 8446 2.2): on --tls-listen,
    /// one store all shards share (a returning peer lands on any shard);
    /// towards msrps peers, the servers we may resume with. 0: none.
    #[arg(long, value_name = "N", default_value_t = crate::tls::SESSION_CACHE_DEFAULT)]
    pub tls_session_cache: usize,
    /// The control socket (Unix domain, mode 0600); default
    /// `$MSRPD_CONTROL`, else `$XDG_RUNTIME_DIR/msrpd.sock`, else
    /// `/run/msrpd.sock`. The engine
    /// refuses to start while another engine answers on it.
    #[arg(long, value_name = "PATH", default_value_os_t = default_control_path())]
    pub control: PathBuf,
    /// Where large received bodies are written.
    #[arg(long, value_name = "DIR", default_value = "/tmp/msrpd-spool")]
    pub spool: PathBuf,
    /// Every acknowledged octet is on disk: every received message is
    /// spooled (none is delivered inline), and a chunk's 200 waits until its
    /// octets, the file's name and the spool directory are fsynced.
    #[arg(long)]
    pub durable: bool,
    /// What becomes of partial spool files (`.*.part`) a crashed engine
    /// left: `keep` moves them to `SPOOL/recovered/`, `remove` deletes them;
    /// each is logged and counted either way.
    #[arg(long, value_name = "WHAT", value_enum, default_value_t = PartialFiles::Keep)]
    pub partial_files: PartialFiles,
    /// What a SEND gets while no application is subscribed to events:
    /// `accept` answers 200 as usual (the message is counted in
    /// `messages_unclaimed` and logged), `refuse` answers 403.
    #[arg(long, value_name = "WHAT", value_enum, default_value_t = Unclaimed::Accept)]
    pub unclaimed: Unclaimed,
    /// Do not pin shard threads to cores.
    #[arg(long)]
    pub no_pin: bool,
    /// CPUs to pin shards to, in order (`2-15`, `1,3,5`); default: all.
    /// Leave the others to a load generator, signaling or IRQs.
    #[arg(long, value_name = "LIST", value_parser = parse_cpu_list)]
    pub cpus: Option<CpuList>,
    /// MSRP connections opened towards one peer address; sessions spread
    /// over them.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub conns_per_peer: usize,
    /// Connections per shard; beyond it accepted connections are closed.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub connections_max: usize,
    /// Sessions per connection: one more is refused (create_session fails,
    /// or the request that would claim it gets 481 and the session closes).
    #[arg(long, value_name = "N", default_value_t = 16_384)]
    pub sessions_per_connection_max: usize,
    /// Unanswered chunk octets per connection.
    #[arg(long = "connection-inflight-max", value_name = "SIZE", default_value = "16MiB", value_parser = parse_size)]
    pub connection_inflight_bytes_max: u64,
    /// Unanswered chunk octets per session.
    #[arg(long = "session-inflight-max", value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub session_inflight_bytes_max: u64,
    /// Body octets per outgoing chunk (at least 2KiB).
    #[arg(long = "chunk-size", value_name = "SIZE", default_value = "64KiB", value_parser = parse_size)]
    pub chunk_bytes: u64,
    /// Received messages up to this size are delivered inline in the event;
    /// larger ones go to the spool.
    #[arg(long = "inline-max", value_name = "SIZE", default_value = "256KiB", value_parser = parse_size)]
    pub inline_bytes_max: u64,
    /// The largest incoming message, even where SDP set no max-size (413).
    #[arg(long = "message-max", value_name = "SIZE", default_value = "16GiB", value_parser = parse_size)]
    pub message_bytes_max: u64,
    /// Received octets per connection waiting for the spool disk; the
    /// connection is not read further until they are written.
    #[arg(long = "spool-backlog-max", value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    pub spool_backlog_bytes_max: u64,
    /// Passive sessions waiting for their connection.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub pending_sessions_max: usize,
    /// How long a passive session waits for its connection.
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = parse_duration)]
    pub pending_expiry: Duration,
    /// A connection that carries no session for this long is closed.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// A frame begun on a connection whose next octet does not come within
    /// this closes the connection (a peer cannot hold half a frame, and the
    /// memory under it, for ever).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub frame_timeout: Duration,
    /// How long an active connection keeps retrying to connect.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// On SIGTERM: how long transfers in flight may finish.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// RFC 4975 7.1.1: an unanswered chunk fails with 408 after this.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub transaction_timeout: Duration,
    /// A received message that sees no chunk for this long is dropped
    /// (its spool file removed).
    #[arg(long, value_name = "DURATION", default_value = "300s", value_parser = parse_duration)]
    pub incoming_expiry: Duration,
    /// How long a message sent with Success-Report waits for its REPORTs
    /// after its last chunk was answered.
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = parse_duration)]
    pub report_timeout: Duration,
    /// Success REPORTs a `hold_reports` session holds for the application's
    /// `report`; one more answers the oldest with a failure REPORT 408
    /// (counted in `reports_held_expired`).
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub held_reports_max: usize,
    /// Events queued for one subscriber; a subscriber that falls this far
    /// behind is dropped.
    #[arg(long, value_name = "N", default_value_t = 65_536)]
    pub subscriber_queue_depth: usize,
    /// Commands queued for one shard, and unanswered commands read from
    /// one control client.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub command_queue_depth: usize,
    /// Operations in one control `batch`; a larger batch is refused whole.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub batch_ops_max: usize,
    /// Payload octets (the bodies) of one control `batch`; a larger batch is
    /// refused whole.
    #[arg(long = "batch-payload-max", value_name = "SIZE", default_value = "16MiB", value_parser = parse_size)]
    pub batch_payload_bytes_max: u64,
    /// At most one progress event per large message per interval.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub progress_interval: Duration,
    /// Octets read from a connection at once.
    #[arg(long = "read-buffer", value_name = "SIZE", default_value = "256KiB", value_parser = parse_size)]
    pub read_buffer_bytes: u64,
    /// How literally MSRP from peers is read: `lenient` (the default, a
    /// server facing many stacks) also takes To-Path/From-Path in any order,
    /// Content-Type not last, extra spaces in the start line, no space after
    /// a header colon and a bodiless SEND without Message-ID; `strict` is the
    /// RFC 4975 9 grammar exactly. What the engine sends is always strict.
    #[arg(long, value_name = "PROFILE", value_enum, default_value_t = Wire::Lenient)]
    pub wire: Wire,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub log: String,
}

/// The wire profile of `--wire`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Wire {
    Strict,
    #[default]
    Lenient,
}

/// What a SEND gets while no application is subscribed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Unclaimed {
    /// 200, as when an application listens.
    #[default]
    Accept,
    /// 403: nothing the peer sends is acknowledged and then dropped.
    Refuse,
}

/// `$MSRPD_CONTROL` when set (as `msrpd ctl` reads it, so the two agree),
/// else `$XDG_RUNTIME_DIR/msrpd.sock` (a directory only its user may write),
/// else `/run/msrpd.sock`: never a world-writable directory such as `/tmp`.
pub fn default_control_path() -> PathBuf {
    if let Some(path) = std::env::var_os("MSRPD_CONTROL").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("msrpd.sock"),
        _ => PathBuf::from("/run/msrpd.sock"),
    }
}

#[derive(clap::Parser)]
struct Defaults {
    #[command(flatten)]
    config: ServeConfig,
}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        <Defaults as clap::Parser>::parse_from(["msrpd"]).config
    }
}

impl ServeConfig {
    /// Checks what clap cannot: bounds between settings.
    pub fn validate(&self) -> Result<(), String> {
        if self.shards == Some(0) {
            return Err("--shards must be at least 1".into());
        }
        if !SessionSettings::chunk_bytes_allowed(self.chunk_bytes) {
            return Err("--chunk-size must be between 2KiB and 16MiB".into());
        }
        if self.session_inflight_bytes_max < self.chunk_bytes {
            return Err("--session-inflight-max must hold at least one chunk".into());
        }
        if self.conns_per_peer == 0 || self.connections_max == 0 || self.sessions_per_connection_max == 0 {
            return Err(
                "--conns-per-peer, --connections-max and --sessions-per-connection-max must be at least 1"
                    .into(),
            );
        }
        if self.subscriber_queue_depth == 0 || self.command_queue_depth == 0 {
            return Err("queue depths must be at least 1".into());
        }
        if self.batch_ops_max == 0 || self.batch_payload_bytes_max == 0 {
            return Err("--batch-ops-max and --batch-payload-max must be more than 0".into());
        }
        if self.held_reports_max == 0 {
            return Err("--held-reports-max must be at least 1".into());
        }
        if self.frame_timeout.is_zero() {
            return Err("--frame-timeout must be more than 0".into());
        }
        if self.read_buffer_bytes < 4096 {
            return Err("--read-buffer must be at least 4KiB".into());
        }
        if self.no_pin && self.cpus.is_some() {
            return Err("--cpus and --no-pin contradict each other".into());
        }
        if !self.tls_listen.is_empty() && (self.tls_cert.is_none() || self.tls_key.is_none()) {
            return Err("--tls-listen needs --tls-cert and --tls-key".into());
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("--tls-cert and --tls-key go together".into());
        }
        if self.listen.is_empty() {
            return Err("at least one --listen address is needed".into());
        }
        Ok(())
    }

    /// The TLS files, when a certificate is configured.
    pub fn tls_files(&self) -> Option<TlsFiles> {
        Some(TlsFiles {
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
            client_ca: self.tls_client_ca.clone(),
            ca: self.tls_ca.clone(),
            session_cache: self.tls_session_cache,
        })
    }

    fn connection_config(&self) -> ConnectionConfig {
        ConnectionConfig {
            inflight_bytes_max: self.connection_inflight_bytes_max,
            sessions_max: self.sessions_per_connection_max,
            transaction_timeout: self.transaction_timeout,
            incoming_expiry: self.incoming_expiry,
            report_timeout: self.report_timeout,
            frame_timeout: self.frame_timeout,
            parser: ParserConfig {
                strictness: match self.wire {
                    Wire::Strict => Strictness::Strict,
                    Wire::Lenient => Strictness::Lenient,
                },
                ..ParserConfig::default()
            },
            ..ConnectionConfig::default()
        }
    }

    pub(crate) fn shard_config(&self) -> ShardConfig {
        ShardConfig {
            connection: self.connection_config(),
            connections_max: self.connections_max,
            conns_per_peer: self.conns_per_peer,
            idle_timeout: self.idle_timeout,
            connect_timeout: self.connect_timeout,
            read_buffer_bytes: self.read_buffer_bytes as usize,
            spool_dir: self.spool.clone(),
            spool_backlog_bytes_max: self.spool_backlog_bytes_max,
            durable: self.durable,
            progress_interval: self.progress_interval,
            refuse_unclaimed: self.unclaimed == Unclaimed::Refuse,
        }
    }

    pub(crate) fn session_settings(&self) -> SessionSettings {
        SessionSettings {
            chunk_bytes: self.chunk_bytes as usize,
            inflight_bytes_max: self.session_inflight_bytes_max,
            // --durable: a message delivered inline lives only in memory
            // until an application reads it, so none is.
            inline_bytes_max: if self.durable { 0 } else { self.inline_bytes_max },
            incoming_message_bytes_max: self.message_bytes_max,
            held_reports_max: self.held_reports_max,
            ..SessionSettings::default()
        }
    }
}
