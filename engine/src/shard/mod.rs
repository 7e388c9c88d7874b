//! The shell: one pinned OS thread per shard, each running its own
//! `tokio_uring` loop over its listeners, connections, sessions and timers
//! (ARCHITECTURE "Shards"). A shard's state lives in one `Rc<RefCell<..>>`
//! shared by its tasks, borrowed only between awaits; other threads reach it
//! only through its bounded command channel, and it reports through the
//! engine's event channel. This is the only module that touches io_uring.

mod commands;
mod config;
mod directory;
mod drain;
pub mod driver;
mod file;
mod interest;
mod io;
mod log_rate;
mod outbox;
mod spool;
pub(crate) mod spool_name;
mod stats;
mod tls_io;
mod translate;

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use slab::Slab;
use tokio::sync::{mpsc, Notify};

pub(crate) use commands::{OutgoingSpec, ShardCommand, ShardError};
pub(crate) use config::ShardConfig;
pub(crate) use directory::{Directory, DirectoryError, Route};
pub(crate) use interest::{EventTap, ShardEvent, Watch};
pub(crate) use outbox::EventBatch;

use crate::conn::Slots;
use crate::control::ShardStats;
use crate::id_hash::IdMap;
use crate::tls::TlsConfigs;
use crate::{Connection, MessageId, MessageRef, SessionKey};

/// What a shard thread starts with.
pub(crate) struct ShardInit {
    pub index: usize,
    pub config: Arc<ShardConfig>,
    pub directory: Arc<Directory>,
    pub listeners: Vec<TcpListener>,
    /// `--tls-listen` sockets: what they accept speaks TLS (RFC 4975 14).
    pub tls_listeners: Vec<TcpListener>,
    pub tls: Option<TlsConfigs>,
    pub commands: mpsc::Receiver<ShardCommand>,
    pub events: mpsc::Sender<EventBatch>,
    pub tap: Arc<EventTap>,
    pub core: Option<core_affinity::CoreId>,
}

/// Starts the shard thread.
pub(crate) fn spawn(init: ShardInit) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("msrpd-shard-{}", init.index))
        .spawn(move || {
            if let Some(core) = init.core {
                if !core_affinity::set_for_current(core) {
                    tracing::warn!(
                        shard = init.index,
                        core = core.id,
                        "could not pin the shard thread"
                    );
                }
            }
            tokio_uring::start(run(init));
        })
}

type ShardRef = Rc<RefCell<Shard>>;

/// An outgoing message until its outcome.
struct OutInfo {
    number: u64,
    session: usize,
    /// A file to remove once the message is delivered.
    delete_after: Option<PathBuf>,
}

/// One MSRP connection of this shard.
struct ConnEntry {
    conn: Connection,
    /// Distinguishes this entry from a later one in the same slab slot, for
    /// tasks that outlive it.
    serial: u64,
    /// Wakes the writer task: output, a timer, or closing.
    writer: Rc<Notify>,
    /// The peer we connected to, for connection reuse (active side).
    peer: Option<SocketAddr>,
    /// Carried over TLS: only `msrps:` sessions run on it, and only `msrp:`
    /// ones on a connection that is not (RFC 4975 14).
    secure: bool,
    /// Active TLS: what the peer's certificate was verified for; a session
    /// reuses the connection only when it expects the same.
    tls_peer: Option<TlsPeer>,
    /// Passive TLS: the certificate (DER) the client presented, for the
    /// fingerprint of a session it claims (RFC 8122 5).
    peer_certificate: Option<Box<[u8]>>,
    sessions: ConnSessions,
    messages: IdMap<MessageRef, OutInfo>,
    spools: HashMap<(SessionKey, MessageId), Rc<spool::Spool>>,
    /// Received octets handed to spool tasks and not yet written.
    spool_backlog_bytes: u64,
    /// Wakes the reader when the spool backlog shrank or a write finished.
    reader: Rc<Notify>,
    /// A write is in flight: while it is and more output waits behind it,
    /// the reader pauses, so a peer that does not read cannot make us queue
    /// responses without bound.
    writing: bool,
    /// When the connection last carried a session (idle timeout).
    idle_since: Option<Instant>,
}

impl ConnEntry {
    /// Outgoing messages without an outcome, or incoming ones being spooled.
    fn has_transfers(&self) -> bool {
        !self.messages.is_empty() || !self.spools.is_empty()
    }
}

/// The shard's slot of each session of one connection, by the connection's
/// slot for it: the connection reuses its slots, so this is dense, eight
/// octets a session where a map entry took about thirty.
#[derive(Default)]
struct ConnSessions {
    /// (generation, shard slot + 1) by the connection's slot; 0: none.
    by_slot: Vec<(u32, u32)>,
    /// Sessions whose connection slot was taken again before the shard saw
    /// them close (events are handled in order, so this stays empty).
    displaced: Vec<(SessionKey, usize)>,
    len: usize,
}

impl ConnSessions {
    fn insert(&mut self, key: SessionKey, s: usize) {
        let at = key.slot as usize;
        if self.by_slot.len() <= at {
            self.by_slot.resize(at + 1, (0, 0));
        }
        let (generation, held) = self.by_slot[at];
        if held != 0 {
            let old = SessionKey {
                slot: key.slot,
                generation,
            };
            self.displaced.push((old, held as usize - 1));
            self.len -= 1;
        }
        let s_plus = u32::try_from(s + 1).unwrap_or_else(|_| unreachable!("shard slots fit u32"));
        self.by_slot[at] = (key.generation, s_plus);
        self.len += 1;
    }

    fn get(&self, key: SessionKey) -> Option<usize> {
        match self.by_slot.get(key.slot as usize) {
            Some(&(generation, s_plus)) if s_plus != 0 && generation == key.generation => {
                Some(s_plus as usize - 1)
            }
            _ => self.displaced.iter().find(|(k, _)| *k == key).map(|&(_, s)| s),
        }
    }

    fn remove(&mut self, key: SessionKey) {
        match self.by_slot.get_mut(key.slot as usize) {
            Some(entry) if entry.1 != 0 && entry.0 == key.generation => {
                *entry = (0, 0);
                self.len -= 1;
            }
            _ => self.displaced.retain(|(k, _)| *k != key),
        }
    }

    fn is_empty(&self) -> bool {
        self.len == 0 && self.displaced.is_empty()
    }
}

/// What an active TLS connection's peer certificate must be: the one whose
/// fingerprint the signaling gave, else one `--tls-ca` vouches for `name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TlsPeer {
    /// The peer URI's host: SNI, and the name checked by CA.
    pub name: String,
    pub fingerprint: Option<crate::tls::Fingerprint>,
}

/// One session of this shard.
struct SessionEntry {
    /// Shared with `by_session_id`'s key: one copy per session.
    session_id: Rc<str>,
    conn: usize,
    key: SessionKey,
    /// The application's label, for subscriptions by tag.
    tag: Option<Arc<str>>,
}

struct Shard {
    index: usize,
    config: Arc<ShardConfig>,
    directory: Arc<Directory>,
    conns: Slab<ConnEntry>,
    /// By page, as a connection's sessions: a doubling slab of a million
    /// entries wastes up to half.
    sessions: Slots<SessionEntry>,
    /// Keyed by the application's session-ids (a peer names sessions only
    /// through the directory), so a fast hash.
    by_session_id: IdMap<Rc<str>, usize>,
    peers: HashMap<SocketAddr, Vec<usize>>,
    next_serial: u64,
    next_message: u64,
    /// Counters of connections that are gone, and of this shard.
    totals: ShardStats,
    /// Events of this loop turn, then those the control thread had no room for.
    events: EventBatch,
    backlog: VecDeque<EventBatch>,
    /// Events in `backlog`.
    backlog_events: usize,
    events_tx: mpsc::Sender<EventBatch>,
    tap: Arc<EventTap>,
    watch: interest::WatchCache,
    /// Wakes the event flusher when the backlog is not empty.
    flusher: Rc<Notify>,
    /// Stops the accept loops.
    stop_accepting: Rc<Notify>,
    draining: Option<Instant>,
    logs: log_rate::ShardLogs,
    /// What new TLS handshakes use; replaced whole on reload, so
    /// connections already up keep theirs.
    tls: Option<TlsConfigs>,
}

async fn run(init: ShardInit) {
    let ShardInit {
        index,
        config,
        directory,
        listeners,
        tls_listeners,
        tls,
        mut commands,
        events,
        tap,
        ..
    } = init;
    let shard: ShardRef = Rc::new(RefCell::new(Shard {
        index,
        config,
        directory,
        conns: Slab::new(),
        sessions: Slots::new(),
        by_session_id: IdMap::default(),
        peers: HashMap::new(),
        next_serial: 0,
        next_message: 0,
        totals: ShardStats {
            shard: index,
            ..ShardStats::default()
        },
        events: Vec::new(),
        backlog: VecDeque::new(),
        backlog_events: 0,
        events_tx: events,
        tap,
        watch: interest::WatchCache::default(),
        flusher: Rc::new(Notify::new()),
        stop_accepting: Rc::new(Notify::new()),
        draining: None,
        logs: log_rate::ShardLogs::default(),
        tls,
    }));
    for listener in listeners {
        let listener = tokio_uring::net::TcpListener::from_std(listener);
        tokio_uring::spawn(io::accept_loop(shard.clone(), listener, false));
    }
    for listener in tls_listeners {
        let listener = tokio_uring::net::TcpListener::from_std(listener);
        tokio_uring::spawn(io::accept_loop(shard.clone(), listener, true));
    }
    tokio_uring::spawn(outbox::flush_events(shard.clone()));
    while let Some(command) = commands.recv().await {
        if let ShardCommand::Drain { deadline } = command {
            drain::drain(&shard, deadline).await;
            return;
        }
        commands::handle_command(&shard, command);
    }
    // The control thread is gone without a drain: fail what is left.
    drain::drain(&shard, Instant::now()).await;
}

impl Shard {
    fn new_conn(&mut self, peer: Option<SocketAddr>, secure: bool, tls_peer: Option<TlsPeer>) -> usize {
        self.next_serial += 1;
        let entry = ConnEntry {
            conn: Connection::new(self.config.connection),
            serial: self.next_serial,
            writer: Rc::new(Notify::new()),
            peer,
            secure,
            tls_peer,
            peer_certificate: None,
            sessions: ConnSessions::default(),
            messages: IdMap::default(),
            spools: HashMap::new(),
            spool_backlog_bytes: 0,
            reader: Rc::new(Notify::new()),
            writing: false,
            idle_since: Some(Instant::now()),
        };
        let ci = self.conns.insert(entry);
        if let Some(peer) = peer {
            self.peers.entry(peer).or_default().push(ci);
        }
        ci
    }

    /// The connection to use towards `peer`: the least loaded of those open,
    /// or a new one while there are fewer than `conns_per_peer`. Over TLS
    /// (`tls`: the peer URI's host and fingerprint) only a connection whose
    /// certificate was verified for the same expectation is shared.
    fn conn_towards(
        &mut self,
        this: &ShardRef,
        peer: SocketAddr,
        tls: Option<TlsPeer>,
    ) -> Result<usize, ShardError> {
        let existing: Vec<usize> = self
            .peers
            .get(&peer)
            .map(|list| {
                list.iter()
                    .copied()
                    .filter(|&ci| {
                        let entry = &self.conns[ci];
                        !entry.conn.is_closed() && entry.tls_peer == tls
                    })
                    .collect()
            })
            .unwrap_or_default();
        if existing.len() < self.config.conns_per_peer {
            if self.conns.len() >= self.config.connections_max {
                return Err(ShardError::ConnectionsMax {
                    shard: self.index,
                    max: self.config.connections_max,
                });
            }
            if tls.is_some() && self.tls.is_none() {
                return Err(ShardError::NoTls);
            }
            let ci = self.new_conn(Some(peer), tls.is_some(), tls);
            self.totals.connections_opened += 1;
            let serial = self.conns[ci].serial;
            tokio_uring::spawn(io::connect(this.clone(), ci, serial, peer));
            return Ok(ci);
        }
        existing
            .into_iter()
            .min_by_key(|&ci| self.conns[ci].conn.session_count())
            .ok_or(ShardError::ConnectionsMax {
                shard: self.index,
                max: self.config.connections_max,
            })
    }

    /// The entry `ci` if it is still the connection a task was started for.
    fn conn_mut(&mut self, ci: usize, serial: u64) -> Option<&mut ConnEntry> {
        self.conns.get_mut(ci).filter(|c| c.serial == serial)
    }

    /// Forgets a connection whose writer has flushed its last bytes.
    fn remove_conn(&mut self, ci: usize) {
        let entry = self.conns.remove(ci);
        // A reader paused for backpressure must see that the entry is gone.
        entry.reader.notify_one();
        stats::add_conn_stats(&mut self.totals, entry.conn.stats());
        if let Some(peer) = entry.peer {
            if let Some(list) = self.peers.get_mut(&peer) {
                list.retain(|&c| c != ci);
                if list.is_empty() {
                    self.peers.remove(&peer);
                }
            }
        }
        for (_, spool) in entry.spools {
            spool.push(spool::SpoolOp::Abort);
        }
    }
}
