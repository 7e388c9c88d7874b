//! The transport and transaction layers of one SIP endpoint, sans-IO
//! (RFC 3261 17, 18): octets in with the time, octets out with where they
//! go, requests and responses up to the transaction user.
//!
//! Driven as quinn-proto's endpoint is: `handle_datagram` /
//! `handle_stream_bytes` / `handle_timeout`, drained with `poll_transmit`,
//! `poll_event` and `poll_timeout`. Addresses are plain values here; the
//! shell owns the sockets.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::counts::{MessageCounts, Way};
use super::frame::{frame_datagram, FrameError, Limits, StreamFramer};
use super::message::{Disposition, Message, MessageError};
use super::method::Method;
use super::normalize::{parse_section, HeaderField};
use super::rate::{RateSettings, SourceRate};
use super::sources::SourceLimits;
use super::transaction::{
    ClientAction, ClientKey, ClientKind, ClientTransaction, ServerAction, ServerKey, ServerKind,
    ServerTransaction, TimerSettings,
};
use super::wire;

/// A stream connection the shell owns (TCP or TLS).
pub type ConnId = u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    /// TLS over TCP (RFC 3261 26.2.1): framed as TCP is (18.3).
    Tls,
}

impl Transport {
    pub fn is_reliable(self) -> bool {
        self != Transport::Udp
    }

    /// A stream transport: messages are cut by Content-Length (RFC 3261 18.3).
    pub fn is_stream(self) -> bool {
        self != Transport::Udp
    }

    /// The Via transport token (RFC 3261 20.42).
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// The `transport` URI parameter (RFC 3261 19.1.1), case-insensitive.
    pub fn from_param(value: &str) -> Option<Transport> {
        [Transport::Udp, Transport::Tcp, Transport::Tls]
            .into_iter()
            .find(|t| t.via_name().eq_ignore_ascii_case(value))
    }
}

/// Where a message came from, or where one goes: the remote address, and
/// for a stream the connection it arrived on (the shell opens a new one
/// to `remote` when that one is gone, RFC 3261 18.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flow {
    pub transport: Transport,
    pub remote: SocketAddr,
    pub conn: Option<ConnId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub flow: Flow,
    pub bytes: Bytes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerTxnId(pub u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientTxnId(pub u64);

/// What the endpoint tells its transaction user.
#[derive(Debug)]
pub enum EndpointEvent {
    /// A new request, with the server transaction that answers it; an ACK
    /// (of a 2xx, RFC 3261 17.1.1.3: it is its own transaction) has none.
    Request {
        txn: Option<ServerTxnId>,
        flow: Flow,
        message: Arc<Message>,
    },
    /// A CANCEL matched a pending INVITE: the endpoint answered the CANCEL
    /// 200 (RFC 3261 9.2); the TU answers the INVITE 487.
    Cancelled {
        invite: ServerTxnId,
    },
    Response {
        txn: ClientTxnId,
        message: Box<Message>,
    },
    /// Timer B or F: the request got no final response (treated as 408).
    Timeout {
        txn: ClientTxnId,
    },
    /// The request could not be sent: its connection was refused or its
    /// TLS handshake failed (RFC 3261 8.1.3.1: treated as 503).
    TransportFailed {
        txn: ClientTxnId,
        reason: String,
    },
    /// Timer H: our non-2xx final response was never acknowledged.
    AckTimeout {
        txn: ServerTxnId,
    },
    /// A stream was unusable (framing lost, too large): the shell closes it.
    CloseStream {
        conn: ConnId,
        reason: String,
    },
}

#[derive(Clone, Debug)]
pub struct EndpointConfig {
    pub timers: TimerSettings,
    pub limits: Limits,
    /// Live server and client transactions; over it a new request gets 503
    /// and a new request of ours is refused.
    pub server_transactions_max: usize,
    pub client_transactions_max: usize,
    /// Our host in Warning headers (RFC 3261 20.43).
    pub warn_agent: String,
    /// New requests per source address.
    pub rate: RateSettings,
    /// Dialogs and new INVITEs per source address, and the trusted
    /// sources exempt from every per-source bound (`rate` included).
    pub sources: SourceLimits,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            timers: TimerSettings::default(),
            limits: Limits::default(),
            // An answered INVITE's transaction stays 32 s (RFC 6026 timer
            // L), a BYE's too over UDP (timer J): 1 M holds 15,000 calls/s
            // over UDP, at about 1 KiB each.
            server_transactions_max: 1_000_000,
            client_transactions_max: 1_000_000,
            warn_agent: "msrp-signal".into(),
            rate: RateSettings::default(),
            sources: SourceLimits::default(),
        }
    }
}

/// What the endpoint counts (every bound hit, every drop).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    pub messages_received: u64,
    pub messages_malformed: u64,
    pub messages_dropped: u64,
    pub retransmissions_absorbed: u64,
    pub server_transactions_refused: u64,
    /// New requests refused 503 because their source was over its rate.
    pub requests_rate_limited: u64,
    /// New INVITEs refused 503 because their source was over its INVITE
    /// rate.
    pub invites_rate_limited: u64,
    pub stray_responses: u64,
    pub server_transactions: usize,
    pub client_transactions: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SendError {
    #[error("{0} client transactions are live, the configured maximum")]
    TooManyTransactions(usize),
    #[error("the request we built does not parse: {0}")]
    Unparseable(String),
}

struct ServerEntry {
    txn: ServerTransaction,
    key: ServerKey,
    flow: Flow,
    /// An INVITE's request, shared with the TU, until its final response:
    /// a CANCEL, a slow TU's 100 Trying and the TU's answer need it.
    request: Option<Arc<Message>>,
}

struct ClientEntry {
    txn: ClientTransaction,
    key: ClientKey,
    flow: Flow,
    request: Arc<Message>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TxnRef {
    Server(ServerTxnId),
    Client(ClientTxnId),
}

pub struct Endpoint {
    config: EndpointConfig,
    servers: HashMap<ServerTxnId, ServerEntry>,
    server_keys: HashMap<ServerKey, ServerTxnId>,
    clients: HashMap<ClientTxnId, ClientEntry>,
    client_keys: HashMap<ClientKey, ClientTxnId>,
    streams: HashMap<ConnId, StreamFramer>,
    /// Deadlines, lazily invalidated: an entry whose transaction's
    /// `poll_timeout` is no longer its instant is skipped.
    timers: BinaryHeap<Reverse<(Instant, TxnRef)>>,
    next_id: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<EndpointEvent>,
    stats: EndpointStats,
    counts: MessageCounts,
    rate: SourceRate,
    invite_rate: SourceRate,
}

impl Endpoint {
    pub fn new(config: EndpointConfig) -> Endpoint {
        Endpoint {
            rate: SourceRate::new(config.rate),
            invite_rate: SourceRate::new(config.sources.invites),
            config,
            servers: HashMap::new(),
            server_keys: HashMap::new(),
            clients: HashMap::new(),
            client_keys: HashMap::new(),
            streams: HashMap::new(),
            timers: BinaryHeap::new(),
            next_id: 1,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: EndpointStats::default(),
            counts: MessageCounts::default(),
        }
    }

    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    pub fn stats(&self) -> EndpointStats {
        EndpointStats {
            server_transactions: self.servers.len(),
            client_transactions: self.clients.len(),
            ..self.stats.clone()
        }
    }

    /// One UDP datagram: one message (RFC 3261 18.3).
    pub fn handle_datagram(&mut self, now: Instant, remote: SocketAddr, datagram: Bytes) {
        let flow = Flow {
            transport: Transport::Udp,
            remote,
            conn: None,
        };
        match frame_datagram(datagram.clone(), &self.config.limits) {
            Ok(raw) => self.handle_message(now, flow, raw),
            Err(error) => self.refuse_unframed(flow, &datagram, &error),
        }
    }

    /// Octets read from a TCP connection; messages are cut by
    /// Content-Length (RFC 3261 18.3).
    pub fn handle_stream_bytes(&mut self, now: Instant, conn: ConnId, remote: SocketAddr, bytes: &[u8]) {
        self.handle_stream_bytes_on(now, Transport::Tcp, conn, remote, bytes);
    }

    /// Octets read from a stream connection of `transport` (TCP, or the
    /// plaintext of a TLS connection: framed the same, RFC 3261 18.3).
    pub fn handle_stream_bytes_on(
        &mut self,
        now: Instant,
        transport: Transport,
        conn: ConnId,
        remote: SocketAddr,
        bytes: &[u8],
    ) {
        debug_assert!(transport.is_stream());
        let flow = Flow {
            transport,
            remote,
            conn: Some(conn),
        };
        let limits = self.config.limits;
        let framer = self
            .streams
            .entry(conn)
            .or_insert_with(|| StreamFramer::new(limits));
        framer.push(bytes);
        loop {
            let Some(framer) = self.streams.get_mut(&conn) else {
                return;
            };
            match framer.next_message() {
                Ok(Some(raw)) => self.handle_message(now, flow, raw),
                Ok(None) => return,
                Err(error) => {
                    // RFC 3261 18.3: without a usable Content-Length the
                    // stream cannot be delimited; it is closed, never merged.
                    self.stats.messages_malformed += 1;
                    self.streams.remove(&conn);
                    self.events.push_back(EndpointEvent::CloseStream {
                        conn,
                        reason: error.to_string(),
                    });
                    return;
                }
            }
        }
    }

    /// The shell closed (or lost) a stream.
    pub fn handle_stream_closed(&mut self, conn: ConnId) {
        self.streams.remove(&conn);
    }

    fn handle_message(&mut self, now: Instant, flow: Flow, raw: Bytes) {
        self.stats.messages_received += 1;
        let message = match Message::parse(raw.clone(), &self.config.limits) {
            Ok(message) => message,
            Err(error) => return self.refuse_malformed(flow, &error),
        };
        self.counts.count_parsed(Way::In, &message);
        if message.is_request() {
            self.handle_request(now, flow, message);
        } else {
            self.handle_response(now, message);
        }
    }

    fn handle_request(&mut self, now: Instant, flow: Flow, message: Message) {
        let message = Arc::new(message);
        let Some(key) = ServerKey::of_request(&message) else {
            self.stats.messages_dropped += 1;
            return;
        };
        let method = message.method().cloned();
        if let Some(&id) = self.server_keys.get(&key) {
            let Some(entry) = self.servers.get_mut(&id) else {
                return;
            };
            if method == Some(Method::Ack) {
                if entry.txn.handle_ack(now) {
                    self.stats.retransmissions_absorbed += 1;
                    self.rearm(TxnRef::Server(id));
                    return;
                }
                // The ACK of a 2xx carries the INVITE's branch only when
                // the UAC reused it; it is the TU's either way.
                self.events.push_back(EndpointEvent::Request {
                    txn: None,
                    flow,
                    message,
                });
                return;
            }
            self.stats.retransmissions_absorbed += 1;
            if let Some(bytes) = entry.txn.handle_retransmission() {
                let flow = entry.flow;
                self.transmits.push_back(Transmit { flow, bytes });
            }
            return;
        }
        match method {
            Some(Method::Ack) => {
                self.events.push_back(EndpointEvent::Request {
                    txn: None,
                    flow,
                    message,
                });
            }
            Some(Method::Cancel) => self.handle_cancel(now, flow, key, message),
            _ => {
                let over_rate = self.over_rate(now, flow, &message);
                if over_rate || self.servers.len() >= self.config.server_transactions_max {
                    if !over_rate {
                        // (`over_rate` counted the bound it hit.)
                        self.stats.server_transactions_refused += 1;
                    }
                    let bytes = wire::response(&message, &flow, 503, "Service Unavailable")
                        .header("Retry-After", "5")
                        .build();
                    self.transmits.push_back(Transmit {
                        flow: response_flow(&message, flow),
                        bytes,
                    });
                    return;
                }
                let id = self.create_server(now, flow, key, &message);
                self.events.push_back(EndpointEvent::Request {
                    txn: Some(id),
                    flow,
                    message,
                });
            }
        }
    }

    /// Whether a new request's source is over its request rate or, for an
    /// INVITE that starts a dialog (no To tag), its INVITE rate; trusted
    /// sources never are. Counts the bound that was hit.
    fn over_rate(&mut self, now: Instant, flow: Flow, message: &Message) -> bool {
        let source = flow.remote.ip();
        if self.config.sources.is_trusted(source) {
            return false;
        }
        if !self.rate.admit(now, source) {
            self.stats.requests_rate_limited += 1;
            return true;
        }
        let starts_dialog = message.method() == Some(&Method::Invite) && message.to().tag().is_none();
        if starts_dialog && !self.invite_rate.admit(now, source) {
            self.stats.invites_rate_limited += 1;
            return true;
        }
        false
    }

    fn create_server(
        &mut self,
        now: Instant,
        flow: Flow,
        key: ServerKey,
        request: &Arc<Message>,
    ) -> ServerTxnId {
        let kind = if request.method() == Some(&Method::Invite) {
            ServerKind::Invite
        } else {
            ServerKind::NonInvite
        };
        let txn = ServerTransaction::new(kind, flow.transport.is_reliable(), self.config.timers, now);
        let id = ServerTxnId(self.next_id());
        let flow = response_flow(request, flow);
        self.server_keys.insert(key.clone(), id);
        self.servers.insert(
            id,
            ServerEntry {
                txn,
                key,
                flow,
                request: (kind == ServerKind::Invite).then(|| request.clone()),
            },
        );
        self.rearm(TxnRef::Server(id));
        id
    }

    /// RFC 3261 9.2: a CANCEL is answered by the UAS at once, 200 when it
    /// matches a transaction still pending, else 481; the INVITE gets 487
    /// from the TU.
    fn handle_cancel(&mut self, now: Instant, flow: Flow, key: ServerKey, message: Arc<Message>) {
        let invite = self
            .server_keys
            .get(&key.cancelled_invite())
            .copied()
            .filter(|id| {
                self.servers
                    .get(id)
                    .is_some_and(|e| e.txn.kind() == ServerKind::Invite)
            });
        // Only an INVITE not yet answered finally is cancelled; a CANCEL
        // that matches a transaction is answered 200 either way.
        let pending = invite.filter(|id| {
            self.servers
                .get(id)
                .is_some_and(|e| e.txn.state() == super::transaction::ServerState::Proceeding)
        });
        let id = self.create_server(now, flow, key, &message);
        let (status, reason) = match invite {
            Some(_) => (200, "OK"),
            None => (481, "Call/Transaction Does Not Exist"),
        };
        let bytes = wire::response(&message, &flow, status, reason).build();
        self.respond(now, id, status, bytes);
        if let Some(invite) = pending {
            self.events.push_back(EndpointEvent::Cancelled { invite });
        }
    }

    fn handle_response(&mut self, now: Instant, message: Message) {
        let Some(key) = ClientKey::of_response(&message) else {
            self.stats.stray_responses += 1;
            return;
        };
        let Some(&id) = self.client_keys.get(&key) else {
            // RFC 3261 17.1.3 / 18.1.2: a response matching no transaction
            // is dropped (a 2xx retransmission after timer M is the TU's
            // business only in a proxy).
            self.stats.stray_responses += 1;
            return;
        };
        let Some(entry) = self.clients.get_mut(&id) else {
            return;
        };
        let status = message.status().unwrap_or(0);
        let request = &entry.request;
        let outcome = entry
            .txn
            .handle_response(now, status, || wire::ack_for_failure(request, &message));
        if let Some(bytes) = outcome.send {
            let flow = entry.flow;
            self.transmits.push_back(Transmit { flow, bytes });
        }
        self.rearm(TxnRef::Client(id));
        if outcome.to_tu {
            self.events.push_back(EndpointEvent::Response {
                txn: id,
                message: Box::new(message),
            });
        } else {
            self.stats.retransmissions_absorbed += 1;
        }
    }

    /// The TU answers a request. Returns false when the transaction is gone
    /// or no longer sends responses.
    pub fn respond(&mut self, now: Instant, txn: ServerTxnId, status: u16, bytes: Bytes) -> bool {
        let Some(entry) = self.servers.get_mut(&txn) else {
            return false;
        };
        let Some(bytes) = entry.txn.respond(now, status, bytes) else {
            return false;
        };
        if status >= 200 {
            entry.request = None;
        }
        let flow = entry.flow;
        self.transmits.push_back(Transmit { flow, bytes });
        self.rearm(TxnRef::Server(txn));
        true
    }

    /// The INVITE a server transaction answers, until its final response.
    pub fn server_request(&self, txn: ServerTxnId) -> Option<Arc<Message>> {
        self.servers.get(&txn)?.request.clone()
    }

    /// Where the responses of a server transaction go.
    pub fn server_flow(&self, txn: ServerTxnId) -> Option<Flow> {
        self.servers.get(&txn).map(|entry| entry.flow)
    }

    /// Where a client transaction's request went.
    pub fn client_flow(&self, txn: ClientTxnId) -> Option<Flow> {
        self.clients.get(&txn).map(|entry| entry.flow)
    }

    /// Sends a request in a new client transaction. `request` is the whole
    /// message, its top Via carrying a fresh branch (`wire::branch`).
    pub fn send_request(
        &mut self,
        now: Instant,
        flow: Flow,
        request: Bytes,
    ) -> Result<ClientTxnId, SendError> {
        let message = Message::parse(request.clone(), &self.config.limits)
            .map_err(|error| SendError::Unparseable(error.to_string()))?;
        self.send_parsed(now, flow, request, Arc::new(message))
    }

    /// `send_request` for a request its caller has parsed already (and
    /// keeps: the transaction shares it, to build the ACK of a failure).
    pub fn send_parsed(
        &mut self,
        now: Instant,
        flow: Flow,
        request: Bytes,
        message: Arc<Message>,
    ) -> Result<ClientTxnId, SendError> {
        if self.clients.len() >= self.config.client_transactions_max {
            return Err(SendError::TooManyTransactions(
                self.config.client_transactions_max,
            ));
        }
        let branch = message
            .top_via()
            .and_then(|via| via.branch())
            .ok_or_else(|| SendError::Unparseable("no Via branch".into()))?
            .to_string();
        let kind = if message.method() == Some(&Method::Invite) {
            ClientKind::Invite
        } else {
            ClientKind::NonInvite
        };
        let key = ClientKey {
            branch,
            method: message.cseq().method.clone(),
        };
        let txn = ClientTransaction::new(
            kind,
            flow.transport.is_reliable(),
            self.config.timers,
            now,
            request.clone(),
        );
        let id = ClientTxnId(self.next_id());
        self.client_keys.insert(key.clone(), id);
        self.clients.insert(
            id,
            ClientEntry {
                txn,
                key,
                flow,
                request: message,
            },
        );
        self.transmits.push_back(Transmit { flow, bytes: request });
        self.rearm(TxnRef::Client(id));
        Ok(id)
    }

    /// Sends outside any transaction: the ACK of a 2xx, a 2xx
    /// retransmitted by the UAS core (RFC 3261 13.3.1.4, 17.1.1.3).
    pub fn send_stateless(&mut self, flow: Flow, bytes: Bytes) {
        self.transmits.push_back(Transmit { flow, bytes });
    }

    /// The shell could not deliver on `flow`'s connection (RFC 3261
    /// 17.1.4, 17.2.4): the transactions using it end, the client ones
    /// telling the TU as a timeout would.
    pub fn handle_transport_error(&mut self, conn: ConnId) {
        let clients: Vec<ClientTxnId> = self
            .clients
            .iter()
            .filter(|(_, e)| e.flow.conn == Some(conn))
            .map(|(id, _)| *id)
            .collect();
        for id in clients {
            if let Some(entry) = self.clients.get_mut(&id) {
                entry.txn.handle_transport_error();
            }
            self.events.push_back(EndpointEvent::Timeout { txn: id });
            self.reap(TxnRef::Client(id));
        }
        self.streams.remove(&conn);
    }

    /// The shell could not open a connection of `transport` to `remote`
    /// (refused, or a TLS handshake that failed): RFC 3261 8.1.3.1 and
    /// 18.4, the requests waiting for it fail at once as if answered 503,
    /// with `reason` for the TU.
    pub fn handle_connect_failed(&mut self, transport: Transport, remote: SocketAddr, reason: &str) {
        let clients: Vec<ClientTxnId> = self
            .clients
            .iter()
            .filter(|(_, e)| e.flow.transport == transport && e.flow.remote == remote)
            .map(|(id, _)| *id)
            .collect();
        for id in clients {
            if let Some(entry) = self.clients.get_mut(&id) {
                entry.txn.handle_transport_error();
            }
            self.events.push_back(EndpointEvent::TransportFailed {
                txn: id,
                reason: reason.to_string(),
            });
            self.reap(TxnRef::Client(id));
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let transmit = self.transmits.pop_front()?;
        self.counts.count_raw(Way::Out, &transmit.bytes);
        Some(transmit)
    }

    /// Messages parsed and sent, by method and status.
    pub fn counts(&self) -> &MessageCounts {
        &self.counts
    }

    pub fn poll_event(&mut self) -> Option<EndpointEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, txn))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if self.deadline(txn) != Some(at) {
                continue;
            }
            match txn {
                TxnRef::Server(id) => {
                    let mut actions = Vec::new();
                    let Some(entry) = self.servers.get_mut(&id) else {
                        continue;
                    };
                    entry.txn.handle_timeout(now, &mut actions);
                    let flow = entry.flow;
                    for action in actions {
                        match action {
                            ServerAction::Send(bytes) => self.transmits.push_back(Transmit { flow, bytes }),
                            ServerAction::SendTrying => {
                                let Some(request) = entry.request.as_ref() else {
                                    continue;
                                };
                                let trying = wire::response(request, &flow, 100, "Trying").build();
                                entry.txn.trying_sent(trying.clone());
                                self.transmits.push_back(Transmit { flow, bytes: trying });
                            }
                            ServerAction::AckTimeout => {
                                self.events.push_back(EndpointEvent::AckTimeout { txn: id })
                            }
                        }
                    }
                }
                TxnRef::Client(id) => {
                    let mut actions = Vec::new();
                    let Some(entry) = self.clients.get_mut(&id) else {
                        continue;
                    };
                    entry.txn.handle_timeout(now, &mut actions);
                    let flow = entry.flow;
                    for action in actions {
                        match action {
                            ClientAction::Send(bytes) => self.transmits.push_back(Transmit { flow, bytes }),
                            ClientAction::Timeout => {
                                self.events.push_back(EndpointEvent::Timeout { txn: id })
                            }
                        }
                    }
                }
            }
            self.rearm(txn);
        }
    }

    fn deadline(&self, txn: TxnRef) -> Option<Instant> {
        match txn {
            TxnRef::Server(id) => self.servers.get(&id)?.txn.poll_timeout(),
            TxnRef::Client(id) => self.clients.get(&id)?.txn.poll_timeout(),
        }
    }

    /// After any change to a transaction: drop it when terminated, else
    /// push its next deadline.
    fn rearm(&mut self, txn: TxnRef) {
        let terminated = match txn {
            TxnRef::Server(id) => self.servers.get(&id).is_none_or(|e| e.txn.is_terminated()),
            TxnRef::Client(id) => self.clients.get(&id).is_none_or(|e| e.txn.is_terminated()),
        };
        if terminated {
            self.reap(txn);
        } else if let Some(at) = self.deadline(txn) {
            self.timers.push(Reverse((at, txn)));
        }
    }

    fn reap(&mut self, txn: TxnRef) {
        match txn {
            TxnRef::Server(id) => {
                if let Some(entry) = self.servers.remove(&id) {
                    self.server_keys.remove(&entry.key);
                }
            }
            TxnRef::Client(id) => {
                if let Some(entry) = self.clients.remove(&id) {
                    self.client_keys.remove(&entry.key);
                }
            }
        }
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// A datagram whose framing failed (SIP21: a body shorter than its
    /// Content-Length): a request whose head we can read gets 400 with the
    /// reason (RFC 3261 18.3, 8.2.1); anything else is dropped.
    fn refuse_unframed(&mut self, flow: Flow, raw: &[u8], error: &FrameError) {
        self.stats.messages_malformed += 1;
        let fields = match parse_section(raw, &self.config.limits) {
            Ok(section) if error.head_readable() && !section.start_line.starts_with("SIP/") => {
                section.headers
            }
            _ => {
                self.stats.messages_dropped += 1;
                return;
            }
        };
        self.answer_refusal(flow, &fields, 400, &error.to_string());
    }

    fn refuse_malformed(&mut self, flow: Flow, error: &MessageError) {
        self.stats.messages_malformed += 1;
        match error.disposition() {
            Disposition::Reply { status, warning } => {
                self.answer_refusal(flow, &error.headers, status, &warning)
            }
            Disposition::Drop => self.stats.messages_dropped += 1,
        }
    }

    fn answer_refusal(&mut self, flow: Flow, fields: &[HeaderField], status: u16, reason: &str) {
        match wire::refusal(fields, &flow, status, &self.config.warn_agent, reason) {
            Some((flow, bytes)) => self.transmits.push_back(Transmit { flow, bytes }),
            None => self.stats.messages_dropped += 1,
        }
    }
}

/// RFC 3261 18.2.2 and RFC 3581 4: over UDP a response goes to the
/// source address when the Via asks for rport, else to the source IP at
/// the Via's port (5060 by default); over a stream, back on the
/// connection the request came on.
pub fn response_flow(request: &Message, flow: Flow) -> Flow {
    if flow.transport != Transport::Udp {
        return flow;
    }
    let Some(via) = request.top_via() else { return flow };
    if via.rport().is_some() {
        return flow;
    }
    let port = via.port.unwrap_or(5060);
    Flow {
        remote: SocketAddr::new(flow.remote.ip(), port),
        ..flow
    }
}
