//! The core task's side of the application layer (REST): inbound calls
//! become sessions an application answers or rejects, outbound calls are
//! placed for a session, and every turn of a call is the session's event.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Map, Value};
use tokio::sync::oneshot;

use super::calls;
use super::core_task::Core;
use super::{CallError, Input, OutboundCall};
use crate::app::{self, AppSession, Direction, EndedBy, EventType, Leg, Mode, State};
use crate::sdp::{self, NegotiatedMedia, OfferOptions};
use crate::sip::{Body, CallId, EndpointStats, Message, UaStats};

/// What an application asks of a 1PCC call.
pub enum AppCommand {
    Invite {
        session: String,
        call: Box<OutboundCall>,
        headers: Vec<(String, String)>,
        reply: oneshot::Sender<Result<(), CallError>>,
    },
    Answer {
        session: String,
        accept_types: Option<Vec<String>>,
        reply: oneshot::Sender<Result<(), CallError>>,
    },
    Reject {
        session: String,
        status: u16,
        reason: String,
        reply: oneshot::Sender<Result<(), CallError>>,
    },
    Hangup {
        session: String,
        reason: String,
        reply: oneshot::Sender<Result<(), CallError>>,
    },
    /// Close the session's MSRP legs now (a message half sent ends with
    /// `#`) and leave the dialog to a later `Hangup`.
    CloseMedia {
        session: String,
        reason: String,
        reply: oneshot::Sender<Result<(), CallError>>,
    },
    SipStats(oneshot::Sender<SipStats>),
}

/// The SIP side's counters, for `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct SipStats {
    pub ua: UaStats,
    pub endpoint: EndpointStats,
    /// (direction, method, status or 0 for requests, count).
    pub messages: Vec<(&'static str, &'static str, u16, u64)>,
    pub udp_send_queue_full: u64,
    /// SIP over TLS handshakes completed and failed (ours and the
    /// listener's).
    pub tls_handshakes: u64,
    pub tls_handshake_failures: u64,
}

fn now_ms() -> u64 {
    app::unix_ms(std::time::SystemTime::now())
}

fn fields(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

impl Core {
    /// An inbound INVITE becomes a session of the incoming application;
    /// `false` without an application layer (or with its table full).
    pub(super) fn app_incoming(
        &mut self,
        call: CallId,
        request: &Arc<Message>,
        offer: Option<&Body>,
    ) -> bool {
        let Some(shared) = self.app.clone() else {
            return false;
        };
        let mut app = app::lock(&shared);
        let id = app.sessions.new_id();
        let owner = app.incoming_app().clone();
        let mut session = AppSession::new(
            id.clone(),
            owner,
            Mode::FirstParty,
            Direction::Inbound,
            State::Incoming,
            now_ms(),
        );
        session.from = Some(request.from().to_string());
        session.to = Some(request.to().to_string());
        session.sip_call_id = Some(request.call_id().to_string());
        session.call = Some(call);
        session.remote_sdp = offer.map(|body| String::from_utf8_lossy(&body.bytes).into_owned());
        if let Err(full) = app.sessions.insert(session) {
            tracing::warn!(%full, "an incoming call gets no application session");
            return false;
        }
        let event = fields(json!({
            "from": request.from().to_string(),
            "to": request.to().to_string(),
            "request_uri": request.request_uri().map(|uri| uri.to_string()),
            "call_id": request.call_id(),
            "offer": offer.map(|body| String::from_utf8_lossy(&body.bytes).into_owned()),
            "auto_answer": self.policy.auto_answer,
        }));
        app.emit(&id, EventType::Incoming, now_ms(), &event);
        drop(app);
        if let Some(record) = self.calls.get_mut(&call) {
            record.app_session = Some(id);
        }
        if !self.policy.auto_answer {
            let inputs = self.inputs.clone();
            let wait = self.policy.incoming_timeout;
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                let _ = inputs.send(Input::IncomingTimeout(call)).await;
            });
        }
        true
    }

    /// Answers an incoming call: our SDP answer and its engine sessions
    /// (a task), or, for an offer-less INVITE, our offer in the 200
    /// (RFC 3261 13.3.1.1; the ACK answers).
    pub(super) fn answer_incoming(
        &mut self,
        now: Instant,
        call: CallId,
        offer: Option<Body>,
        accept_types: Option<Vec<String>>,
    ) {
        let mut policy = self.policy.clone();
        if let Some(types) = accept_types.clone() {
            policy.accept_types = types;
        }
        let secure = self.calls.get(&call).is_some_and(|record| record.secure);
        match offer {
            Some(offer) => {
                let tls = (self.msrp_tls.clone(), secure);
                let task =
                    calls::answer_offer(self.engine.clone(), policy, self.local.clone(), tls, call, offer);
                self.spawn_decision(task);
            }
            None if secure && self.msrp_tls.is_none() => {
                // RFC 4975 14: nothing but TCP/TLS/MSRP may be offered.
                self.spawn_decision(async move {
                    calls::Decision::Reject {
                        call,
                        status: 488,
                        reason: calls::reason_phrase(488).into(),
                        warning: calls::NO_ENGINE_TLS.into(),
                        retry_after: None,
                    }
                });
            }
            None => {
                let options = OfferOptions {
                    accept_types,
                    ..OfferOptions::default()
                };
                let offer = sdp::offer(
                    &calls::sdp_policy(&policy, self.msrp_tls.as_ref(), secure),
                    &self.local,
                    &options,
                    &mut sdp::new_session_id,
                );
                let body = Body::sdp(offer.sdp.clone());
                let sent = self.ua.accept(now, call, body);
                if let Some(record) = self.calls.get_mut(&call) {
                    record.offer = Some(offer);
                    if let Some(waiter) = record.answer_waiter.take() {
                        let _ = waiter.send(match sent {
                            true => Ok(()),
                            false => Err(CallError::Local("the call ended before it was answered".into())),
                        });
                    }
                }
            }
        }
    }

    /// The call's engine sessions exist: the application session is
    /// `connected`.
    pub(super) fn app_connected(
        &mut self,
        call: CallId,
        media: &[NegotiatedMedia],
        sessions: &[String],
        local_sdp: Option<&bytes::Bytes>,
    ) {
        let (Some(shared), Some(id)) = (self.app.clone(), self.app_session(call)) else {
            return;
        };
        let legs = media
            .iter()
            .zip(sessions)
            .map(|(media, engine)| Leg::of(media, engine.clone()))
            .collect();
        let sip_call_id = self.ua.dialog(call).map(|dialog| dialog.id.call_id.clone());
        let mut app = app::lock(&shared);
        if let Some(session) = app.sessions.by_id_mut(&id) {
            if let Some(sdp) = local_sdp {
                session.local_sdp = Some(String::from_utf8_lossy(sdp).into_owned());
            }
            if session.sip_call_id.is_none() {
                session.sip_call_id = sip_call_id;
            }
        }
        app.connected(&id, legs, now_ms());
    }

    /// The call ended: its session's `hangup`.
    pub(super) fn app_call_ended(&mut self, call: CallId, by: EndedBy, reason: &str, status: Option<u16>) {
        let (Some(shared), Some(id)) = (self.app.clone(), self.app_session(call)) else {
            return;
        };
        app::lock(&shared).ended(&id, by, reason, status, now_ms());
    }

    fn app_session(&self, call: CallId) -> Option<String> {
        self.calls.get(&call)?.app_session.clone()
    }

    /// The call of application session `session`, when it has one.
    fn call_of(&self, session: &str) -> Option<CallId> {
        let shared = self.app.as_ref()?;
        app::lock(shared).sessions.by_id_mut(session)?.call
    }

    pub(super) fn handle_app(&mut self, now: Instant, command: AppCommand) {
        match command {
            AppCommand::Invite {
                session,
                call,
                headers,
                reply,
            } => {
                let (to, from) = (call.to.to_string(), call.from.as_ref().map(|f| f.to_string()));
                let result = self.place_call(now, *call, headers);
                let Some(shared) = self.app.clone() else { return };
                let mut app = app::lock(&shared);
                match result {
                    Ok(id) => {
                        app.sessions.set_call(&session, id);
                        app.emit(
                            &session,
                            EventType::Calling,
                            now_ms(),
                            &json!({ "to": to, "from": from }),
                        );
                        drop(app);
                        if let Some(record) = self.calls.get_mut(&id) {
                            record.app_session = Some(session);
                        }
                        let _ = reply.send(Ok(()));
                    }
                    Err(error) => {
                        app.ended(&session, EndedBy::System, &error, None, now_ms());
                        let _ = reply.send(Err(CallError::Local(error)));
                    }
                }
            }
            AppCommand::Answer {
                session,
                accept_types,
                reply,
            } => {
                let Some(call) = self.call_of(&session) else {
                    let _ = reply.send(Err(CallError::Local("the session has no call to answer".into())));
                    return;
                };
                let Some(record) = self.calls.get_mut(&call) else {
                    let _ = reply.send(Err(CallError::Local("the call is over".into())));
                    return;
                };
                let Some(offer) = record.pending_offer.take() else {
                    let _ = reply.send(Err(CallError::Local(
                        "the call is not waiting for an answer".into(),
                    )));
                    return;
                };
                record.answer_waiter = Some(reply);
                self.answer_incoming(now, call, offer, accept_types);
            }
            AppCommand::Reject {
                session,
                status,
                reason,
                reply,
            } => {
                let pending = self
                    .call_of(&session)
                    .filter(|call| self.calls.get(call).is_some_and(|r| r.pending_offer.is_some()));
                let Some(call) = pending else {
                    let _ = reply.send(Err(CallError::Local(
                        "the call is not waiting for an answer".into(),
                    )));
                    return;
                };
                self.ua.reject(now, call, status, &reason, &[]);
                self.app_call_ended(call, EndedBy::Local, &reason, Some(status));
                self.calls.remove(&call);
                let _ = reply.send(Ok(()));
            }
            AppCommand::Hangup {
                session,
                reason,
                reply,
            } => {
                if let Some(call) = self.call_of(&session) {
                    let pending = self.calls.get(&call).is_some_and(|r| r.pending_offer.is_some());
                    self.app_call_ended(call, EndedBy::Local, &reason, None);
                    if pending {
                        self.ua.reject(now, call, 480, "Temporarily Unavailable", &[]);
                        self.calls.remove(&call);
                    } else {
                        self.ua.hangup(now, call, &reason);
                    }
                }
                let _ = reply.send(Ok(()));
            }
            AppCommand::CloseMedia {
                session,
                reason,
                reply,
            } => {
                if let Some(call) = self.call_of(&session) {
                    let legs = self
                        .calls
                        .get_mut(&call)
                        .map(|record| std::mem::take(&mut record.sessions))
                        .unwrap_or_default();
                    // No longer the call's: their `session_closed` sends no BYE.
                    for leg in &legs {
                        self.by_session.remove(leg);
                    }
                    let engine = self.engine.clone();
                    tokio::spawn(async move {
                        calls::close_sessions(engine.as_ref(), &legs, &reason).await;
                        let _ = reply.send(Ok(()));
                    });
                } else {
                    let _ = reply.send(Ok(()));
                }
            }
            AppCommand::SipStats(reply) => {
                let endpoint = self.ua.endpoint();
                let stats = SipStats {
                    ua: self.ua.stats(),
                    endpoint: endpoint.stats(),
                    messages: endpoint
                        .counts()
                        .iter()
                        .map(|(way, method, status, n)| (way.name(), method, status, n))
                        .collect(),
                    udp_send_queue_full: self.udp_send_queue_full,
                    tls_handshakes: self
                        .tls
                        .counters
                        .handshakes
                        .load(std::sync::atomic::Ordering::Relaxed),
                    tls_handshake_failures: self
                        .tls
                        .counters
                        .handshake_failures
                        .load(std::sync::atomic::Ordering::Relaxed),
                };
                let _ = reply.send(stats);
            }
        }
    }

    /// No application answered in time: 480 (RFC 3261 21.4.18).
    pub(super) fn incoming_timeout(&mut self, now: Instant, call: CallId) {
        if self.calls.get(&call).is_none_or(|r| r.pending_offer.is_none()) {
            return;
        }
        tracing::info!(?call, "no application answered: 480");
        self.ua.reject(now, call, 480, "Temporarily Unavailable", &[]);
        self.app_call_ended(
            call,
            EndedBy::System,
            "no application answered in time",
            Some(480),
        );
        self.calls.remove(&call);
    }
}
