//! The core task of `msrp-signal serve`: it owns the user agent and the
//! call table, turns what the transports and the engine tasks report into
//! calls on the sans-IO core, and sends what the core queued.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use msrp_engine::control::{AsyncClient, EngineEvent, UpdateRequest};
use tokio::sync::{mpsc, oneshot};

use super::calls::{self, Decision};

/// The INFO bodies MSML takes (RFC 5707 3.1; Dialogic's own samples send
/// `application/xml`).
const MSML_INFO_TYPES: [&str; 2] = ["application/msml+xml", "application/xml"];

/// How often the counters are logged (when they changed).
const STATS_INTERVAL: Duration = Duration::from_secs(60);
use super::journal::{DialogRecord, Journal};
use super::net::{self, NetInput};
use super::net_tls::{self, SipTls};
use super::{
    engine_endpoint, engine_events, subscribe, CallError, CallPolicy, EngineLink, Established, Input,
    OutboundCall,
};
use crate::app::{EndedBy, SharedApp};
use crate::sdp::{self, Answer, LocalEndpoint, Offer, TlsEndpoint};
use crate::sip::{
    Body, CallId, ConnId, Flow, InviteRequest, ReofferId, Transmit, Transport, UaEvent, UserAgent,
};

/// A call as the shell knows it.
pub(super) struct CallRecord {
    /// Engine sessions of the call.
    pub(super) sessions: Vec<String>,
    /// Our offer, when we made one (outbound, or an offer-less INVITE).
    pub(super) offer: Option<Offer>,
    /// Our answer, when we answered (a re-offer is answered from it).
    pub(super) answer: Option<Answer>,
    /// The library caller waiting for an outbound call.
    pub(super) waiter: Option<(oneshot::Sender<Result<Established, CallError>>, Instant)>,
    pub(super) setup: Option<Duration>,
    /// The dialog's key in the journal, once written there.
    pub(super) journaled: Option<(String, String)>,
    /// The application session of the call (REST).
    pub(super) app_session: Option<String>,
    /// An incoming call's offer, until an application answers it.
    pub(super) pending_offer: Option<Option<Body>>,
    /// The application waiting for its answer to be sent.
    pub(super) answer_waiter: Option<oneshot::Sender<Result<(), CallError>>>,
    /// The dialog is secure (sips:, or over TLS): its MSRP is msrps only
    /// (RFC 4975 14).
    pub(super) secure: bool,
}

impl CallRecord {
    pub(super) fn new(offer: Option<Offer>) -> CallRecord {
        CallRecord {
            sessions: Vec::new(),
            offer,
            answer: None,
            waiter: None,
            setup: None,
            journaled: None,
            app_session: None,
            pending_offer: None,
            answer_waiter: None,
            secure: false,
        }
    }
}

/// A stream connection (TCP or TLS) the core writes to.
pub(super) struct Stream {
    remote: SocketAddr,
    transport: Transport,
    writer: mpsc::Sender<Bytes>,
}

pub(super) struct Core {
    pub(super) ua: UserAgent,
    pub(super) policy: CallPolicy,
    pub(super) local: LocalEndpoint,
    /// The engine's MSRP-over-TLS side, when it has one.
    pub(super) msrp_tls: Option<TlsEndpoint>,
    /// SIP over TLS: the listener's and our client configuration.
    pub(super) tls: SipTls,
    /// The name a TLS connection being opened verifies its server as (the
    /// URI's host, RFC 5922 7.1); without an entry, the address.
    pub(super) tls_names: HashMap<SocketAddr, String>,
    pub(super) engine: Option<AsyncClient>,
    pub(super) engine_path: PathBuf,
    pub(super) inputs: mpsc::Sender<Input>,
    /// Datagrams to send, for the UDP writer task (`net::udp_writer`).
    pub(super) udp: Option<net::UdpOut>,
    pub(super) streams: HashMap<ConnId, Stream>,
    pub(super) stream_by_addr: HashMap<(Transport, SocketAddr), ConnId>,
    /// Requests waiting for a TCP or TLS connection we are opening.
    pub(super) connecting: HashMap<(Transport, SocketAddr), Vec<Bytes>>,
    pub(super) conn_ids: Arc<AtomicU64>,
    pub(super) calls: HashMap<CallId, CallRecord>,
    pub(super) by_session: HashMap<String, CallId>,
    pub(super) journal: Option<Journal>,
    /// Datagrams lost because the UDP writer was behind.
    pub(super) udp_send_queue_full: u64,
    /// The application layer, when REST is on.
    pub(super) app: Option<SharedApp>,
    /// Where others find the engine connection of the moment.
    pub(super) link: EngineLink,
    /// MSML control dialogs, once enabled.
    pub(super) msml: Option<super::msml::Msml>,
}

impl Core {
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Input>) {
        let mut next_stats = Instant::now() + STATS_INTERVAL;
        let mut last_stats = String::new();
        loop {
            let deadline = self.ua.poll_timeout().map_or(next_stats, |at| at.min(next_stats));
            let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline));
            let input = tokio::select! {
                input = rx.recv() => input,
                () = sleep => {
                    let now = Instant::now();
                    self.ua.handle_timeout(now);
                    self.flush();
                    if now >= next_stats {
                        next_stats = now + STATS_INTERVAL;
                        self.log_stats(&mut last_stats);
                    }
                    continue;
                }
            };
            let Some(input) = input else { return };
            self.handle(input);
            // Take whatever else is queued before flushing: one turn, one
            // batch (TigerBeetle's rule, as in the engine's shards).
            for _ in 0..256 {
                match rx.try_recv() {
                    Ok(input) => self.handle(input),
                    Err(_) => break,
                }
            }
            self.flush();
        }
    }

    /// The counters, every `STATS_INTERVAL` while they change: every bound
    /// hit and every drop is in them.
    fn log_stats(&self, last: &mut String) {
        let (ua, endpoint) = (self.ua.stats(), self.ua.endpoint().stats());
        let line = format!("{ua:?} {endpoint:?}");
        if line != *last {
            tracing::info!(
                calls = ua.calls,
                incoming = ua.incoming_calls,
                outgoing = ua.outgoing_calls,
                refused = ua.calls_refused,
                acks_missing = ua.acks_missing,
                received = endpoint.messages_received,
                malformed = endpoint.messages_malformed,
                dropped = endpoint.messages_dropped,
                retransmissions_absorbed = endpoint.retransmissions_absorbed,
                transactions_refused = endpoint.server_transactions_refused,
                rate_limited = endpoint.requests_rate_limited,
                invites_rate_limited = endpoint.invites_rate_limited,
                refused_per_source = ua.calls_refused_per_source,
                udp_send_queue_full = self.udp_send_queue_full,
                "msrp-signal counters"
            );
            *last = line;
        }
    }

    /// Ends every call (BYE, CANCEL or 480, each with the reason) before
    /// the process stops.
    fn shut_down(&mut self, now: Instant, reason: &str) {
        let calls: Vec<CallId> = self.ua.calls().collect();
        tracing::info!(calls = calls.len(), "msrp-signal stopping: ending every call");
        for call in calls {
            self.ua.hangup(now, call, reason);
        }
    }

    fn handle(&mut self, input: Input) {
        let now = Instant::now();
        match input {
            Input::Net(net) => self.handle_net(now, net),
            Input::Decision(decision) => self.handle_decision(now, decision),
            Input::Engine(EngineEvent::SessionClosed { session_id, reason }) => {
                if let Some(call) = self.by_session.remove(&session_id) {
                    tracing::info!(?call, %session_id, %reason, "MSRP session closed: ending its call");
                    let reason = format!("MSRP session closed: {reason}");
                    self.app_call_ended(call, EndedBy::Remote, &reason, None);
                    self.ua.hangup(now, call, &reason);
                }
            }
            Input::Engine(_) => {}
            Input::EngineGone(why) => self.engine_gone(now, &why),
            Input::EngineBack(client, events, msrp) => {
                let local = msrp.plain.clone();
                tracing::info!(msrp = %format!("{}:{}", local.host, local.port), tls = msrp.tls.is_some(), "msrpd is back");
                self.link.set(Some(client.clone()));
                self.link.set_msrp(msrp.clone());
                self.local = local;
                self.msrp_tls = msrp.tls;
                self.engine = Some(client);
                tokio::spawn(engine_events(events, self.inputs.clone()));
            }
            Input::Invite(call, reply) => self.start_invite(now, *call, reply),
            Input::Hangup(call, reason) => {
                self.ua.hangup(now, call, &reason);
            }
            Input::App(command) => self.handle_app(now, command),
            Input::IncomingTimeout(call) => self.incoming_timeout(now, call),
            Input::MsmlEnable(settings) => {
                self.ua
                    .set_info_types(vec![MSML_INFO_TYPES[0].into(), MSML_INFO_TYPES[1].into()]);
                self.msml = Some(super::msml::Msml::new(*settings));
            }
            Input::MsmlEvent {
                call,
                dialog,
                body,
                last,
            } => self.msml_event(now, call, &dialog, body, last),
            Input::Shutdown(done) => {
                self.shut_down(now, "msrp-signal is stopping");
                self.flush();
                let _ = done.send(());
            }
        }
    }

    fn handle_net(&mut self, now: Instant, input: NetInput) {
        match input {
            NetInput::Datagram { from, bytes } => self.ua.handle_datagram(now, from, bytes),
            NetInput::StreamOpened {
                conn,
                transport,
                remote,
                writer,
            } => {
                if transport == Transport::Tls {
                    self.tls_names.remove(&remote);
                }
                for bytes in self.connecting.remove(&(transport, remote)).unwrap_or_default() {
                    let _ = writer.try_send(bytes);
                }
                self.streams.insert(
                    conn,
                    Stream {
                        remote,
                        transport,
                        writer,
                    },
                );
                self.stream_by_addr.insert((transport, remote), conn);
            }
            NetInput::StreamBytes { conn, remote, bytes } => {
                // (StreamOpened always comes first on the same channel.)
                let transport = self.streams.get(&conn).map_or(Transport::Tcp, |s| s.transport);
                self.ua
                    .handle_stream_bytes_on(now, transport, conn, remote, &bytes)
            }
            NetInput::StreamClosed { conn } => {
                if let Some(stream) = self.streams.remove(&conn) {
                    let key = (stream.transport, stream.remote);
                    if self.stream_by_addr.get(&key) == Some(&conn) {
                        self.stream_by_addr.remove(&key);
                    }
                }
                self.ua.handle_stream_closed(conn);
            }
            NetInput::ConnectFailed {
                transport,
                remote,
                error,
            } => {
                tracing::warn!(%remote, %error, "SIP {} connect failed", transport.via_name());
                self.connecting.remove(&(transport, remote));
                if transport == Transport::Tls {
                    self.tls_names.remove(&remote);
                }
                let reason = format!("SIP over {} to {remote} failed: {error}", transport.via_name());
                self.ua.handle_connect_failed(now, transport, remote, &reason);
            }
        }
        self.drain_events(now);
    }

    /// Sends what the user agent queued and acts on what it told.
    fn flush(&mut self) {
        let now = Instant::now();
        self.drain_events(now);
        if let Some(journal) = self.journal.as_mut() {
            journal.flush();
        }
        while let Some((conn, reason)) = self.ua.poll_close() {
            tracing::info!(conn, %reason, "closing a SIP stream");
            if let Some(stream) = self.streams.remove(&conn) {
                self.stream_by_addr.remove(&(stream.transport, stream.remote));
            }
        }
        while let Some(transmit) = self.ua.poll_transmit() {
            self.send(transmit);
        }
    }

    fn send(&mut self, Transmit { flow, bytes }: Transmit) {
        match flow.transport {
            Transport::Udp => {
                // A full queue loses the datagram, as the network may:
                // the transactions retransmit (RFC 3261 17.1.1.2).
                if let Some(udp) = &self.udp {
                    if !udp.send(bytes, flow.remote) {
                        self.udp_send_queue_full += 1;
                    }
                }
            }
            Transport::Tcp | Transport::Tls => {
                let key = (flow.transport, flow.remote);
                // A stream of another transport never carries it: a sips:
                // request is never downgraded (RFC 3261 26.2.2).
                let conn = flow
                    .conn
                    .filter(|c| self.streams.get(c).is_some_and(|s| s.transport == flow.transport))
                    .or_else(|| self.stream_by_addr.get(&key).copied());
                if let Some(conn) = conn {
                    if let Some(stream) = self.streams.get(&conn) {
                        if stream.writer.try_send(bytes).is_err() {
                            tracing::warn!(conn, "SIP stream peer does not read: closing");
                            if let Some(stream) = self.streams.remove(&conn) {
                                self.stream_by_addr.remove(&(stream.transport, stream.remote));
                            }
                        }
                    }
                    return;
                }
                // RFC 3261 18.2.2: the connection is gone; open a new one
                // to the same address.
                let queued = self.connecting.entry(key).or_default();
                queued.push(bytes);
                if queued.len() == 1 {
                    let id = self.conn_ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let inputs = self.inputs.clone();
                    if flow.transport == Transport::Tls {
                        let name = self
                            .tls_names
                            .get(&flow.remote)
                            .cloned()
                            .unwrap_or_else(|| flow.remote.ip().to_string());
                        tokio::spawn(net_tls::tls_connect(
                            self.tls.clone(),
                            flow.remote,
                            name,
                            id,
                            inputs,
                        ));
                    } else {
                        tokio::spawn(net::tcp_connect(flow.remote, id, inputs));
                    }
                }
            }
        }
    }

    fn drain_events(&mut self, now: Instant) {
        while let Some(event) = self.ua.poll_event() {
            self.handle_ua_event(now, event);
        }
    }

    fn handle_ua_event(&mut self, now: Instant, event: UaEvent) {
        match event {
            UaEvent::IncomingCall {
                call,
                offer,
                request,
                flow,
            } => {
                tracing::debug!(?call, from = %request.from(), "incoming call");
                if self.msml_incoming(now, call, &request, offer.as_ref()) {
                    return;
                }
                let mut record = CallRecord::new(None);
                // RFC 3261 12.1.1: over TLS (a sips: Request-URI off TLS
                // was refused 416 by the user agent).
                record.secure = flow.transport == Transport::Tls;
                self.calls.insert(call, record);
                if self.app_incoming(call, &request, offer.as_ref()) && !self.policy.auto_answer {
                    // An application answers (or the timeout refuses it).
                    if let Some(record) = self.calls.get_mut(&call) {
                        record.pending_offer = Some(offer);
                    }
                    return;
                }
                if !self.policy.auto_answer {
                    self.ua.reject(now, call, 480, "Temporarily Unavailable", &[]);
                    self.calls.remove(&call);
                    return;
                }
                self.answer_incoming(now, call, offer, None);
            }
            UaEvent::Established { call, answer } => {
                let Some(record) = self.calls.get_mut(&call) else {
                    return;
                };
                if let Some((_, started)) = &record.waiter {
                    record.setup = Some(now - *started);
                }
                let Some(offer) = record.offer.clone() else { return };
                let Some(answer) = answer else {
                    self.ua.hangup(now, call, "the answer to our offer had no SDP");
                    return;
                };
                let engine = self.engine.clone();
                let policy = self.policy.clone();
                self.spawn_decision(async move {
                    let media = match sdp::complete(&offer, &answer.bytes, &answer.content_type) {
                        Ok(media) => media,
                        Err(rejection) => {
                            return Decision::Completed {
                                call,
                                result: Err(rejection.warning),
                            }
                        }
                    };
                    let result = calls::create_sessions(engine.as_ref(), &policy, &media)
                        .await
                        .map(|sessions| (media, sessions))
                        .map_err(|r| r.reason);
                    Decision::Completed { call, result }
                });
            }
            UaEvent::Ringing { .. } => {}
            UaEvent::Info(info) => self.msml_info(now, info),
            UaEvent::InfoAnswered { call, txn, status } => self.msml_info_answered(now, call, txn, status),
            UaEvent::Failed { call, status, reason } => {
                self.app_call_ended(call, EndedBy::Remote, &reason, Some(status));
                self.end_call(call, &reason);
                if let Some(record) = self.calls.remove(&call) {
                    if let Some((waiter, _)) = record.waiter {
                        let _ = waiter.send(Err(CallError::Failed { status, reason }));
                    }
                }
            }
            UaEvent::Cancelled { call } => {
                self.app_call_ended(call, EndedBy::Remote, "the caller cancelled", None);
                self.end_call(call, "the caller cancelled");
            }
            UaEvent::Ended { call, reason } => {
                let by = if reason.by_peer {
                    EndedBy::Remote
                } else {
                    EndedBy::Local
                };
                self.app_call_ended(call, by, &reason.text, None);
                self.end_call(call, &reason.text);
            }
            UaEvent::Reoffer { call, reoffer, offer } => match self.reanswer(call, &offer) {
                Err(refusal) => {
                    self.ua.answer_reoffer(now, call, reoffer, Err(refusal));
                }
                Ok((answer, updates)) if updates.is_empty() => self.reanswered(now, call, reoffer, answer),
                Ok((answer, updates)) => {
                    // The peer takes other types or sizes now: the engine
                    // holds our sends to them before we say yes.
                    let engine = self.engine.clone();
                    self.spawn_decision(async move {
                        let result = calls::update_sessions(engine.as_ref(), updates).await;
                        Decision::Reanswered {
                            call,
                            reoffer,
                            result: result.map(|()| Box::new(answer)),
                        }
                    });
                }
            },
        }
    }

    fn reanswered(&mut self, now: Instant, call: CallId, reoffer: ReofferId, answer: Answer) {
        let body = Body::sdp(answer.sdp.clone());
        if let Some(record) = self.calls.get_mut(&call) {
            record.answer = Some(answer);
        }
        self.ua.answer_reoffer(now, call, reoffer, Ok(body));
    }

    /// A re-INVITE or UPDATE offer (RFC 3264 8, RFC 3311): the same MSRP
    /// sessions get our answer again, with the engine told of the peer's
    /// new accept-types or max-size (`update_session`); a changed peer path
    /// (a move) is refused 488, since msrpd cannot rebind a live session,
    /// and the session stays as it was (RFC 3261 14.2).
    fn reanswer(&self, call: CallId, offer: &Body) -> Result<(Answer, Vec<UpdateRequest>), (u16, String)> {
        let previous = self
            .calls
            .get(&call)
            .and_then(|record| record.answer.as_ref())
            .ok_or((
                488,
                "this call's SDP cannot be renegotiated (we were not the answerer)".to_string(),
            ))?;
        let secure = self.calls.get(&call).is_some_and(|record| record.secure);
        let answer = sdp::reanswer(
            previous,
            &offer.bytes,
            &offer.content_type,
            &calls::sdp_policy(&self.policy, self.msrp_tls.as_ref(), secure),
            &self.local,
            &mut sdp::new_session_id,
        )
        .map_err(|rejection| (rejection.status, rejection.warning))?;
        let same_sessions = answer.media.len() == previous.media.len()
            && answer.media.iter().zip(&previous.media).all(|(new, old)| {
                new.local_session_id == old.local_session_id && new.remote.path == old.remote.path
            });
        if !same_sessions {
            return Err((
                488,
                "msrpd cannot move a live MSRP session to a new path; the session continues unchanged".into(),
            ));
        }
        let updates = answer
            .media
            .iter()
            .zip(&previous.media)
            .filter(|(new, old)| {
                new.remote.accept_types != old.remote.accept_types
                    || new.remote.max_size != old.remote.max_size
            })
            .map(|(new, _)| {
                let descriptor = new.descriptor();
                UpdateRequest {
                    session_id: new.local_session_id.clone(),
                    remote_accept_types: descriptor.remote_accept_types,
                    remote_max_size: descriptor.remote_max_size,
                }
            })
            .collect();
        Ok((answer, updates))
    }

    pub(super) fn spawn_decision(&self, task: impl std::future::Future<Output = Decision> + Send + 'static) {
        let inputs = self.inputs.clone();
        tokio::spawn(async move {
            let decision = task.await;
            let _ = inputs.send(Input::Decision(decision)).await;
        });
    }

    fn handle_decision(&mut self, now: Instant, decision: Decision) {
        match decision {
            Decision::Accept {
                call,
                answer,
                sessions,
            } => {
                let body = Body::sdp(answer.sdp.clone());
                if self.calls.contains_key(&call) && self.ua.accept(now, call, body) {
                    self.app_connected(call, &answer.media, &sessions, Some(&answer.sdp));
                    self.bind_sessions(call, sessions);
                    if let Some(record) = self.calls.get_mut(&call) {
                        record.answer = Some(*answer);
                        if let Some(waiter) = record.answer_waiter.take() {
                            let _ = waiter.send(Ok(()));
                        }
                    }
                } else {
                    // Cancelled while the engine worked.
                    if let Some(waiter) = self.calls.get_mut(&call).and_then(|r| r.answer_waiter.take()) {
                        let _ = waiter.send(Err(CallError::Local(
                            "the call ended before it was answered".into(),
                        )));
                    }
                    self.close_in_engine(sessions, "the call ended before it was answered");
                }
            }
            Decision::Reject {
                call,
                status,
                reason,
                warning,
                retry_after,
            } => {
                tracing::info!(?call, status, %warning, "refusing a call");
                let warning = format!(
                    "399 {} \"{}\"",
                    self.ua.config().endpoint.warn_agent,
                    warning.replace('"', "'")
                );
                let retry = retry_after.map(|s| s.to_string());
                let mut headers = vec![("Warning", warning.as_str())];
                if let Some(retry) = &retry {
                    headers.push(("Retry-After", retry.as_str()));
                }
                self.ua.reject(now, call, status, &reason, &headers);
                self.app_call_ended(call, EndedBy::System, &warning, Some(status));
                if let Some(waiter) = self.calls.remove(&call).and_then(|r| r.answer_waiter) {
                    let _ = waiter.send(Err(CallError::Failed {
                        status,
                        reason: warning,
                    }));
                }
            }
            Decision::Reanswered {
                call,
                reoffer,
                result,
            } => match result {
                Ok(answer) => self.reanswered(now, call, reoffer, *answer),
                Err(reason) => {
                    let warning = format!("the media engine did not take the new limits: {reason}");
                    self.ua.answer_reoffer(now, call, reoffer, Err((500, warning)));
                }
            },
            Decision::Completed { call, result } => match result {
                Ok((media, sessions)) => {
                    if !self.calls.contains_key(&call) {
                        self.close_in_engine(sessions, "the call ended before its sessions were made");
                        return;
                    }
                    self.app_connected(call, &media, &sessions, None);
                    self.bind_sessions(call, sessions.clone());
                    if let Some(record) = self.calls.get_mut(&call) {
                        if let Some((waiter, _)) = record.waiter.take() {
                            let setup = record.setup.unwrap_or_default();
                            let _ = waiter.send(Ok(Established {
                                call,
                                sessions,
                                setup,
                            }));
                        }
                    }
                }
                Err(reason) => {
                    tracing::info!(?call, %reason, "ending a call whose answer we cannot use");
                    self.app_call_ended(call, EndedBy::System, &reason, None);
                    if let Some(record) = self.calls.get_mut(&call) {
                        if let Some((waiter, _)) = record.waiter.take() {
                            let _ = waiter.send(Err(CallError::Local(reason.clone())));
                        }
                    }
                    self.ua.hangup(now, call, &reason);
                }
            },
        }
    }

    fn bind_sessions(&mut self, call: CallId, sessions: Vec<String>) {
        for session in &sessions {
            self.by_session.insert(session.clone(), call);
        }
        let Some(record) = self.calls.get_mut(&call) else {
            return;
        };
        record.sessions.extend(sessions);
        if let (Some(journal), Some(dialog)) = (self.journal.as_mut(), self.ua.dialog(call)) {
            journal.up(DialogRecord::of(dialog, &record.sessions));
            record.journaled = Some((dialog.id.call_id.clone(), dialog.id.local_tag.clone()));
        }
    }

    fn forget(&mut self, record: &CallRecord) {
        for session in &record.sessions {
            self.by_session.remove(session);
        }
        if let (Some(journal), Some((call_id, tag))) = (self.journal.as_mut(), &record.journaled) {
            journal.down(call_id, tag);
        }
    }

    /// The dialogs a previous process left (`Journal::open`): each ends
    /// with a BYE and its sessions are closed, one log line each.
    pub(super) fn end_leftovers(&mut self, left: Vec<DialogRecord>) {
        let now = Instant::now();
        for record in left {
            tracing::info!(call_id = %record.call_id, peer = %record.remote, sessions = record.sessions.len(), "ending a dialog left by an earlier msrp-signal");
            match record.dialog() {
                Some(mut dialog) => {
                    if let Err(error) = self.ua.bye_orphan(now, &mut dialog, "msrp-signal restarted") {
                        tracing::warn!(call_id = %record.call_id, %error, "BYE not sent");
                    }
                }
                None => {
                    tracing::warn!(call_id = %record.call_id, "dialog journal: the dialog no longer reads; only its sessions are closed")
                }
            }
            self.close_in_engine(record.sessions, "msrp-signal restarted");
        }
        self.flush();
    }

    /// The dialog is over: its MSRP sessions end with it.
    fn end_call(&mut self, call: CallId, reason: &str) {
        self.msml_call_ended(call);
        let Some(record) = self.calls.remove(&call) else {
            return;
        };
        self.forget(&record);
        if let Some((waiter, _)) = record.waiter {
            let _ = waiter.send(Err(CallError::Local(reason.to_string())));
        }
        self.close_in_engine(record.sessions, reason);
    }

    fn close_in_engine(&self, sessions: Vec<String>, reason: &str) {
        if sessions.is_empty() {
            return;
        }
        let engine = self.engine.clone();
        let reason = reason.to_string();
        tokio::spawn(async move { calls::close_sessions(engine.as_ref(), &sessions, &reason).await });
    }

    fn start_invite(
        &mut self,
        now: Instant,
        call: OutboundCall,
        reply: oneshot::Sender<Result<Established, CallError>>,
    ) {
        match self.place_call(now, call, Vec::new()) {
            Ok(id) => {
                if let Some(record) = self.calls.get_mut(&id) {
                    record.waiter = Some((reply, now));
                }
            }
            Err(error) => {
                let _ = reply.send(Err(CallError::Local(error)));
            }
        }
    }

    /// Sends an INVITE with our offer; the call is in the table once sent.
    pub(super) fn place_call(
        &mut self,
        now: Instant,
        call: OutboundCall,
        headers: Vec<(String, String)>,
    ) -> Result<CallId, String> {
        if self.engine.is_none() {
            return Err("no connection to msrpd".into());
        }
        let sips = call.to.as_sip().is_some_and(|sip| sip.secure);
        if sips && call.transport != Transport::Tls {
            return Err("a sips: URI goes over TLS only (RFC 3261 26.2.2)".into());
        }
        let secure = sips || call.transport == Transport::Tls;
        if secure && self.msrp_tls.is_none() {
            return Err(calls::NO_ENGINE_TLS.into());
        }
        let offer = sdp::offer(
            &calls::sdp_policy(&self.policy, self.msrp_tls.as_ref(), secure),
            &self.local,
            &call.options,
            &mut sdp::new_session_id,
        );
        let flow = Flow {
            transport: call.transport,
            remote: call.target,
            conn: self.stream_by_addr.get(&(call.transport, call.target)).copied(),
        };
        if call.transport == Transport::Tls && flow.conn.is_none() {
            // RFC 5922 7.1: the server is verified for the URI's host.
            if let Some(sip) = call.to.as_sip() {
                self.tls_names.insert(call.target, sip.host.to_string());
            }
        }
        let request = InviteRequest {
            to: call.to,
            from: call.from,
            flow,
            offer: Some(Body::sdp(offer.sdp.clone())),
            headers,
        };
        let id = self.ua.invite(now, request).map_err(|error| error.to_string())?;
        let mut record = CallRecord::new(Some(offer));
        record.secure = secure;
        self.calls.insert(id, record);
        Ok(id)
    }

    /// msrpd went away: every call ends (its MSRP sessions are gone with
    /// the engine), and we reconnect in the background.
    fn engine_gone(&mut self, now: Instant, why: &str) {
        tracing::warn!(%why, "lost msrpd: ending every call");
        self.engine = None;
        self.link.set(None);
        if let Some(app) = &self.app {
            crate::app::lock(app).engine_gone(crate::app::unix_ms(std::time::SystemTime::now()));
        }
        let calls: Vec<CallId> = self.calls.keys().copied().collect();
        for call in calls {
            tracing::info!(?call, "ending call: msrpd went away");
            self.app_call_ended(call, EndedBy::System, "the media engine went away", None);
            self.ua.hangup(now, call, "the media engine restarted");
            if let Some(record) = self.calls.remove(&call) {
                self.forget(&record);
                if let Some((waiter, _)) = record.waiter {
                    let _ = waiter.send(Err(CallError::Local("msrpd went away".into())));
                }
            }
        }
        let path = self.engine_path.clone();
        let inputs = self.inputs.clone();
        let tag = self.policy.tag.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let Ok((client, events)) = AsyncClient::connect(&path).await else {
                    continue;
                };
                let Ok((_, msrp)) = engine_endpoint(&client).await else {
                    continue;
                };
                if subscribe(&client, &tag).await.is_ok() {
                    let _ = inputs.send(Input::EngineBack(client, events, msrp)).await;
                    return;
                }
            }
        });
    }
}
