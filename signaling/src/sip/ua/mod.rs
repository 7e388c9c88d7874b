//! The user agent core (RFC 3261 8, 12-15): the transaction user that
//! turns INVITE dialogs into calls, for the UAS and the UAC side, and
//! answers every other request as RFC 3261 says. Sans-IO, on top of the
//! [`Endpoint`]: the shell feeds it octets and the time, and an
//! application decides the calls it is told of (`poll_event`) by calling
//! `accept`, `reject`, `hangup`, `answer_reoffer`.

mod incoming;
mod info;
mod outgoing;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::dialog::{Dialog, DialogId};
use super::endpoint::{
    ClientTxnId, ConnId, Endpoint, EndpointConfig, EndpointEvent, Flow, ServerTxnId, Transmit, Transport,
};
use super::message::Message;
use super::sources::DialogCounts;

pub use info::InfoRequest;
pub use outgoing::{InviteError, InviteRequest};

/// The methods we implement (RFC 3261 20.5).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, MESSAGE";
/// The bodies we take (RFC 3261 20.1).
pub const ACCEPT: &str = "application/sdp, multipart/mixed, multipart/related";

#[derive(Clone, Debug)]
pub struct UaConfig {
    /// Our address in Via sent-by and Contact.
    pub host: String,
    pub udp_port: Option<u16>,
    pub tcp_port: Option<u16>,
    /// Our SIP-over-TLS port (RFC 3261 26.2.1), when we listen on one.
    pub tls_port: Option<u16>,
    /// Server and User-Agent header value.
    pub user_agent: String,
    /// Calls live at once; over it an INVITE gets 503 with Retry-After.
    pub calls_max: usize,
    /// The body types of a legacy INFO (RFC 6086 2) the application answers
    /// (`UaEvent::Info`); any other body is 415.
    pub info_types: Vec<String>,
    pub endpoint: EndpointConfig,
}

impl Default for UaConfig {
    fn default() -> Self {
        UaConfig {
            host: "127.0.0.1".into(),
            udp_port: Some(5060),
            tcp_port: Some(5060),
            tls_port: None,
            user_agent: concat!("msrp-signal/", env!("CARGO_PKG_VERSION")).into(),
            calls_max: 100_000,
            info_types: Vec::new(),
            endpoint: EndpointConfig::default(),
        }
    }
}

/// A call: one INVITE dialog, ours or the peer's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

/// A message body with its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Body {
    pub content_type: String,
    pub bytes: Bytes,
}

impl Body {
    pub fn sdp(bytes: Bytes) -> Body {
        Body {
            content_type: "application/sdp".into(),
            bytes,
        }
    }

    fn of(message: &Message) -> Option<Body> {
        if message.body().is_empty() {
            return None;
        }
        Some(Body {
            content_type: message.content_type().unwrap_or("application/sdp").to_string(),
            bytes: message.body().clone(),
        })
    }
}

/// Why a call ended, for the application and the logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndReason {
    /// The peer ended it (BYE, CANCEL); else we did or it failed.
    pub by_peer: bool,
    /// The Reason header (RFC 3326) or our own words.
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReofferId(pub ServerTxnId);

/// What the user agent tells the application.
#[derive(Debug)]
pub enum UaEvent {
    /// A new INVITE: answer it with `accept` (an SDP answer, or our offer
    /// when `offer` is `None`) or `reject`.
    IncomingCall {
        call: CallId,
        request: Arc<Message>,
        offer: Option<Body>,
        flow: Flow,
    },
    /// The peer cancelled the INVITE before we answered (487 sent).
    Cancelled { call: CallId },
    /// UAS: the ACK came (with the answer when we offered in the 200).
    /// UAC: a 2xx came and was acknowledged, with the peer's answer.
    Established { call: CallId, answer: Option<Body> },
    /// A provisional response to our INVITE.
    Ringing { call: CallId, status: u16 },
    /// The call never got established: the final status (408 on a
    /// timeout) and reason.
    Failed {
        call: CallId,
        status: u16,
        reason: String,
    },
    /// An established call ended.
    Ended { call: CallId, reason: EndReason },
    /// An INFO in a call's dialog with a body of `UaConfig::info_types`:
    /// answer it with `answer_info`.
    Info(InfoRequest),
    /// The final response to our INFO `txn` (408: none came).
    InfoAnswered {
        call: CallId,
        txn: ClientTxnId,
        status: u16,
    },
    /// A re-INVITE or UPDATE with an offer in an established call: answer
    /// with `answer_reoffer`.
    Reoffer {
        call: CallId,
        reoffer: ReofferId,
        offer: Body,
    },
}

#[derive(Debug)]
enum CallState {
    /// UAS: told the application, waiting for it.
    Incoming {
        txn: ServerTxnId,
    },
    /// UAS: our 2xx is out; retransmitted until the ACK (RFC 3261 13.3.1.4).
    Answered {
        response: Bytes,
        interval: Duration,
        retransmit_at: Instant,
        gives_up_at: Instant,
    },
    /// UAC: our INVITE is out.
    Calling {
        txn: ClientTxnId,
        request: Arc<Message>,
        provisional: bool,
        cancel: Option<String>,
    },
    Confirmed,
    /// Our BYE is out.
    Ending {
        txn: ClientTxnId,
    },
}

#[derive(Debug)]
struct Call {
    state: CallState,
    dialog: Option<Dialog>,
    /// UAS: our To tag; UAC: our From tag.
    local_tag: String,
    /// UAS: we offered in the 200 and expect the answer in the ACK.
    offered_in_200: bool,
    /// UAC: the ACK of the 2xx, sent again for each 2xx retransmission,
    /// and the INVITE transaction those arrive on (RFC 6026 7.2).
    ack: Option<(Flow, Bytes)>,
    invite_txn: Option<ClientTxnId>,
    /// A re-INVITE or UPDATE waiting for the application's answer.
    reoffer: Option<(ServerTxnId, Arc<Message>)>,
    /// UAS: the address the INVITE came from, whose dialogs are counted.
    source: Option<IpAddr>,
}

/// What the user agent counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UaStats {
    pub calls: usize,
    pub calls_refused: u64,
    pub incoming_calls: u64,
    pub outgoing_calls: u64,
    pub acks_missing: u64,
    pub requests_out_of_dialog: u64,
    pub infos_in: u64,
    pub infos_out: u64,
    /// MESSAGE requests answered 200 (RFC 3428).
    pub sip_messages_in: u64,
    /// INVITEs refused 503 because their source held its dialogs-max.
    pub calls_refused_per_source: u64,
}

pub struct UserAgent {
    config: UaConfig,
    endpoint: Endpoint,
    calls: HashMap<CallId, Call>,
    by_dialog: HashMap<DialogId, CallId>,
    by_server_txn: HashMap<ServerTxnId, CallId>,
    by_client_txn: HashMap<ClientTxnId, CallId>,
    /// Our INFOs waiting for their final response.
    info_txns: HashMap<ClientTxnId, CallId>,
    /// 2xx retransmission deadlines, lazily invalidated.
    timers: BinaryHeap<Reverse<(Instant, CallId)>>,
    events: VecDeque<UaEvent>,
    closes: VecDeque<(ConnId, String)>,
    next_call: u64,
    stats: UaStats,
    dialogs: DialogCounts,
}

impl UserAgent {
    pub fn new(config: UaConfig) -> UserAgent {
        let endpoint = Endpoint::new(config.endpoint.clone());
        UserAgent {
            config,
            endpoint,
            calls: HashMap::new(),
            by_dialog: HashMap::new(),
            by_server_txn: HashMap::new(),
            by_client_txn: HashMap::new(),
            info_txns: HashMap::new(),
            timers: BinaryHeap::new(),
            events: VecDeque::new(),
            closes: VecDeque::new(),
            next_call: 1,
            dialogs: DialogCounts::default(),
            stats: UaStats::default(),
        }
    }

    pub fn config(&self) -> &UaConfig {
        &self.config
    }

    /// The INFO body types the application answers from now on.
    pub fn set_info_types(&mut self, types: Vec<String>) {
        self.config.info_types = types;
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn stats(&self) -> UaStats {
        UaStats {
            calls: self.calls.len(),
            ..self.stats.clone()
        }
    }

    pub fn handle_datagram(&mut self, now: Instant, remote: SocketAddr, datagram: Bytes) {
        self.endpoint.handle_datagram(now, remote, datagram);
        self.drain_endpoint(now);
    }

    pub fn handle_stream_bytes(&mut self, now: Instant, conn: ConnId, remote: SocketAddr, bytes: &[u8]) {
        self.endpoint.handle_stream_bytes(now, conn, remote, bytes);
        self.drain_endpoint(now);
    }

    /// Octets of a stream of `transport` (TCP, or a TLS connection's
    /// plaintext).
    pub fn handle_stream_bytes_on(
        &mut self,
        now: Instant,
        transport: Transport,
        conn: ConnId,
        remote: SocketAddr,
        bytes: &[u8],
    ) {
        self.endpoint
            .handle_stream_bytes_on(now, transport, conn, remote, bytes);
        self.drain_endpoint(now);
    }

    /// The shell could not open a `transport` connection to `remote`
    /// (refused, or its TLS handshake failed, `reason` says which): the
    /// requests waiting for it fail as 503 (RFC 3261 8.1.3.1).
    pub fn handle_connect_failed(
        &mut self,
        now: Instant,
        transport: Transport,
        remote: SocketAddr,
        reason: &str,
    ) {
        self.endpoint.handle_connect_failed(transport, remote, reason);
        self.drain_endpoint(now);
    }

    pub fn handle_stream_closed(&mut self, conn: ConnId) {
        self.endpoint.handle_stream_closed(conn);
    }

    /// The shell could not send on a stream (RFC 3261 18.4).
    pub fn handle_transport_error(&mut self, now: Instant, conn: ConnId) {
        self.endpoint.handle_transport_error(conn);
        self.drain_endpoint(now);
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.endpoint.poll_transmit()
    }

    pub fn poll_event(&mut self) -> Option<UaEvent> {
        self.events.pop_front()
    }

    /// A stream the shell must close, and why (its framing was lost).
    pub fn poll_close(&mut self) -> Option<(ConnId, String)> {
        self.closes.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let ours = self.timers.peek().map(|Reverse((at, _))| *at);
        [ours, self.endpoint.poll_timeout()].into_iter().flatten().min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.endpoint.handle_timeout(now);
        self.drain_endpoint(now);
        while let Some(Reverse((at, call))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            self.answered_timer(now, at, call);
        }
    }

    /// The dialog of an established (or answered) call.
    pub fn dialog(&self, call: CallId) -> Option<&Dialog> {
        self.calls.get(&call)?.dialog.as_ref()
    }

    /// Ends a dialog that no call of ours holds any more, as after a
    /// restart: a BYE with `reason` (RFC 3326) in a transaction of its own,
    /// whose response is dropped.
    pub fn bye_orphan(
        &mut self,
        now: Instant,
        dialog: &mut Dialog,
        reason: &str,
    ) -> Result<ClientTxnId, super::endpoint::SendError> {
        let hop = dialog.next_hop();
        let via = self.via(hop.transport);
        let bye = dialog
            .request(super::method::Method::Bye, &via, None)
            .header("Reason", &outgoing::reason_header(reason))
            .build();
        self.endpoint.send_request(now, hop, bye)
    }

    /// The calls that exist now.
    pub fn calls(&self) -> impl Iterator<Item = CallId> + '_ {
        self.calls.keys().copied()
    }

    fn drain_endpoint(&mut self, now: Instant) {
        while let Some(event) = self.endpoint.poll_event() {
            match event {
                EndpointEvent::Request { txn, flow, message } => self.handle_request(now, txn, flow, message),
                EndpointEvent::Cancelled { invite } => self.handle_cancelled(now, invite),
                EndpointEvent::Response { txn, message } => {
                    if !self.info_response(txn, message.status().unwrap_or(0)) {
                        self.handle_response(now, txn, *message)
                    }
                }
                EndpointEvent::Timeout { txn } => {
                    if !self.info_timeout(txn) {
                        self.handle_client_timeout(now, txn)
                    }
                }
                EndpointEvent::TransportFailed { txn, reason } => {
                    if !self.info_timeout(txn) {
                        self.handle_client_failure(now, txn, 503, &reason)
                    }
                }
                EndpointEvent::AckTimeout { .. } => {}
                EndpointEvent::CloseStream { conn, reason } => {
                    tracing::info!(conn, %reason, "SIP stream closed: framing lost");
                    self.closes.push_back((conn, reason));
                }
            }
        }
    }

    fn new_call(&mut self, call: Call) -> CallId {
        let id = CallId(self.next_call);
        self.next_call += 1;
        if let Some(source) = call.source {
            self.dialogs.opened(source);
        }
        self.calls.insert(id, call);
        id
    }

    fn remove_call(&mut self, id: CallId) {
        if let Some(call) = self.calls.remove(&id) {
            if let Some(source) = call.source {
                self.dialogs.closed(source);
            }
            if let Some(txn) = call.invite_txn {
                self.by_client_txn.remove(&txn);
            }
            if let Some(dialog) = call.dialog {
                self.by_dialog.remove(&dialog.id);
            }
            match call.state {
                CallState::Incoming { txn } => {
                    self.by_server_txn.remove(&txn);
                }
                CallState::Calling { txn, .. } | CallState::Ending { txn } => {
                    self.by_client_txn.remove(&txn);
                }
                _ => {}
            }
        }
    }

    /// Our Via for a new request on `transport`, with a fresh branch.
    fn via(&self, transport: Transport) -> String {
        let port = match transport {
            Transport::Udp => self.config.udp_port,
            Transport::Tcp => self.config.tcp_port,
            Transport::Tls => self.config.tls_port,
        };
        let host = bracketed(&self.config.host);
        let sent_by = match port {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        };
        format!(
            "SIP/2.0/{} {sent_by};branch={};rport",
            transport.via_name(),
            super::wire::branch()
        )
    }

    /// Our Contact for `transport` (RFC 3261 8.1.1.8). Over TLS it is a
    /// sips: URI (8.1.1.8 and 12.1.1: a sips: Request-URI asks for a sips:
    /// Contact; we give one on every TLS flow so that the peer's requests
    /// in the dialog come back over TLS too, 26.2.2).
    fn contact(&self, transport: Transport) -> String {
        let host = bracketed(&self.config.host);
        let (scheme, port, param) = match transport {
            Transport::Udp => ("sip", self.config.udp_port, ""),
            Transport::Tcp => ("sip", self.config.tcp_port, ";transport=tcp"),
            Transport::Tls => ("sips", self.config.tls_port, ""),
        };
        match port {
            Some(port) => format!("<{scheme}:msrp-signal@{host}:{port}{param}>"),
            None => format!("<{scheme}:msrp-signal@{host}{param}>"),
        }
    }
}

/// An IPv6 literal in brackets, as a host in a URI or Via sent-by
/// (RFC 3261 25.1).
fn bracketed(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}
