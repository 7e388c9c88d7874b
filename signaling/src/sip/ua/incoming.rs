//! Requests we receive and the UAS side of a call (RFC 3261 8.2, 12.2.2,
//! 13.3, 15.1.2; RFC 3311 for UPDATE; RFC 6086 for INFO).

use std::cmp::Reverse;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::super::dialog::{Dialog, DialogId};
use super::super::endpoint::{Flow, ServerTxnId, Transport};
use super::super::message::{Message, MessageBuilder};
use super::super::method::Method;
use super::super::wire;
use super::{Body, Call, CallId, CallState, EndReason, ReofferId, UaEvent, UserAgent, ACCEPT, ALLOW};

/// The extensions we support (RFC 3261 8.2.2.3): none needed by a request
/// may be required of us.
const SUPPORTED: &[&str] = &[];

impl UserAgent {
    pub(super) fn handle_request(
        &mut self,
        now: Instant,
        txn: Option<ServerTxnId>,
        flow: Flow,
        request: Arc<Message>,
    ) {
        let Some(method) = request.method().cloned() else {
            return;
        };
        let Some(txn) = txn else {
            if method == Method::Ack {
                self.handle_ack(now, &request);
            }
            return;
        };
        // RFC 3261 8.2.2.3: an extension we do not know is refused 420.
        let unsupported: Vec<String> = request
            .header_values("Require")
            .flat_map(|value| value.split(','))
            .map(|option| option.trim().to_string())
            .filter(|option| !option.is_empty() && !SUPPORTED.contains(&option.as_str()))
            .collect();
        if !unsupported.is_empty() && method != Method::Cancel {
            let response = self
                .response(&request, &flow, 420, "Bad Extension", None)
                .header("Unsupported", &unsupported.join(", "))
                .build();
            self.endpoint.respond(now, txn, 420, response);
            return;
        }
        let in_dialog = request.to().tag().is_some();
        match method {
            Method::Invite if !in_dialog => self.handle_invite(now, txn, flow, request),
            Method::Invite | Method::Update => self.handle_reoffer(now, txn, flow, request),
            Method::Bye => self.handle_bye(now, txn, flow, &request),
            Method::Options => {
                // RFC 3261 11.2: what we would answer an INVITE with.
                let response = self
                    .response(&request, &flow, 200, "OK", Some(&wire::tag()))
                    .header("Allow", ALLOW)
                    .header("Accept", ACCEPT)
                    .header("Supported", &SUPPORTED.join(", "))
                    .build();
                self.endpoint.respond(now, txn, 200, response);
            }
            Method::Info => self.handle_info(now, txn, flow, request),
            Method::Message => self.handle_message(now, txn, flow, &request),
            // RFC 3261 8.2.1: a method we know but do not serve here.
            Method::Register
            | Method::Subscribe
            | Method::Notify
            | Method::Refer
            | Method::Publish
            | Method::Prack => {
                let response = self
                    .response(&request, &flow, 405, "Method Not Allowed", Some(&wire::tag()))
                    .header("Allow", ALLOW)
                    .build();
                self.endpoint.respond(now, txn, 405, response);
            }
            // The endpoint answers CANCEL itself (RFC 3261 9.2).
            Method::Cancel | Method::Ack => {}
            Method::Other(_) => {
                let response = self
                    .response(&request, &flow, 501, "Not Implemented", Some(&wire::tag()))
                    .header("Allow", ALLOW)
                    .build();
                self.endpoint.respond(now, txn, 501, response);
            }
        }
    }

    /// A response of ours, with Server (RFC 3261 20.35).
    pub(super) fn response(
        &self,
        request: &Message,
        flow: &Flow,
        status: u16,
        reason: &str,
        to_tag: Option<&str>,
    ) -> MessageBuilder {
        wire::response_tagged(request, flow, status, reason, to_tag).header("Server", &self.config.user_agent)
    }

    pub(super) fn respond_simple(
        &mut self,
        now: Instant,
        txn: ServerTxnId,
        flow: Flow,
        request: &Message,
        status: u16,
        reason: &str,
    ) {
        let response = self
            .response(request, &flow, status, reason, Some(&wire::tag()))
            .build();
        self.endpoint.respond(now, txn, status, response);
    }

    fn handle_invite(&mut self, now: Instant, txn: ServerTxnId, flow: Flow, request: Arc<Message>) {
        if self.calls.len() >= self.config.calls_max {
            self.stats.calls_refused += 1;
            let response = self
                .response(&request, &flow, 503, "Service Unavailable", Some(&wire::tag()))
                .header("Retry-After", "5")
                .build();
            self.endpoint.respond(now, txn, 503, response);
            return;
        }
        let (source, sources) = (flow.remote.ip(), &self.config.endpoint.sources);
        if !sources.is_trusted(source) && !self.dialogs.admits(source, sources.dialogs_max) {
            // RFC 3261 21.5.4: the source, not the server, is at its bound.
            self.stats.calls_refused_per_source += 1;
            let warning = format!(
                "399 {} \"{source} holds {} dialogs, the most one source may (dialogs-per-source-max)\"",
                self.config.endpoint.warn_agent, sources.dialogs_max
            );
            let response = self
                .response(&request, &flow, 503, "Service Unavailable", Some(&wire::tag()))
                .header("Retry-After", "5")
                .header("Warning", &warning)
                .build();
            self.endpoint.respond(now, txn, 503, response);
            return;
        }
        let sips = request
            .request_uri()
            .and_then(|uri| uri.as_sip())
            .is_some_and(|sip| sip.secure);
        if sips && flow.transport != Transport::Tls {
            // RFC 3261 26.2.2: a sips: Request-URI means every hop is TLS;
            // one that came in the clear is refused. 8.2.2.1: a scheme the
            // UAS does not serve (here: sips: off TLS) gets 416. We chose
            // 416 over 480: 480 says "try again later", and the same
            // request over the same hop never succeeds. (RFC 5630, which
            // refines SIPS use, is not in spec/rfc; this follows 3261.)
            let warning = format!(
                "399 {} \"a sips: Request-URI must arrive over TLS (RFC 3261 26.2.2)\"",
                self.config.endpoint.warn_agent
            );
            let response = self
                .response(&request, &flow, 416, "Unsupported URI Scheme", Some(&wire::tag()))
                .header("Warning", &warning)
                .build();
            self.endpoint.respond(now, txn, 416, response);
            return;
        }
        if request.contacts().is_empty() {
            // RFC 3261 8.1.1.8: an INVITE must carry one Contact.
            let response = self
                .response(&request, &flow, 400, "Bad Request", Some(&wire::tag()))
                .header(
                    "Warning",
                    &format!(
                        "399 {} \"INVITE without a Contact\"",
                        self.config.endpoint.warn_agent
                    ),
                )
                .build();
            self.endpoint.respond(now, txn, 400, response);
            return;
        }
        let offer = Body::of(&request);
        if let Some(body) = &offer {
            let media_type = body
                .content_type
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if media_type != "application/sdp" && !media_type.starts_with("multipart/") {
                // RFC 3261 21.4.13.
                let response = self
                    .response(&request, &flow, 415, "Unsupported Media Type", Some(&wire::tag()))
                    .header("Accept", ACCEPT)
                    .build();
                self.endpoint.respond(now, txn, 415, response);
                return;
            }
        }
        self.stats.incoming_calls += 1;
        let call = self.new_call(Call {
            state: CallState::Incoming { txn },
            dialog: None,
            local_tag: wire::tag(),
            offered_in_200: offer.is_none(),
            ack: None,
            invite_txn: None,
            reoffer: None,
            source: Some(flow.remote.ip()),
        });
        self.by_server_txn.insert(txn, call);
        self.events.push_back(UaEvent::IncomingCall {
            call,
            request,
            offer,
            flow,
        });
    }

    /// The application answers an incoming call with `body` (our answer,
    /// or our offer when the INVITE had none): 200 with Contact, and the
    /// 2xx retransmitted until the ACK (RFC 3261 13.3.1.4).
    pub fn accept(&mut self, now: Instant, call: CallId, body: Body) -> bool {
        let Some(entry) = self.calls.get(&call) else {
            return false;
        };
        let CallState::Incoming { txn } = entry.state else {
            return false;
        };
        let Some(flow) = self.endpoint.server_flow(txn) else {
            return false;
        };
        let Some(request) = self.pending_invite(txn) else {
            return false;
        };
        let local_tag = entry.local_tag.clone();
        let mut builder = self
            .response(&request, &flow, 200, "OK", Some(&local_tag))
            .header("Contact", &self.contact(flow.transport))
            .header("Allow", ALLOW);
        for record_route in request.header_values("Record-Route") {
            builder = builder.header("Record-Route", record_route);
        }
        let response = builder.body(&body.content_type, body.bytes).build();
        if !self.endpoint.respond(now, txn, 200, response.clone()) {
            return false;
        }
        let dialog = Dialog::as_uas(&request, &local_tag, flow);
        let timers = self.config.endpoint.timers;
        let retransmit_at = now + timers.t1;
        if let Some(entry) = self.calls.get_mut(&call) {
            entry.state = CallState::Answered {
                response,
                interval: timers.t1,
                retransmit_at,
                gives_up_at: now + timers.transaction_timeout(),
            };
            if let Some(dialog) = &dialog {
                self.by_dialog.insert(dialog.id.clone(), call);
            }
            entry.dialog = dialog;
        }
        self.by_server_txn.remove(&txn);
        self.timers.push(Reverse((retransmit_at, call)));
        true
    }

    /// The application refuses an incoming call (e.g. 488 with a Warning
    /// naming why, 500, or 503 with Retry-After).
    pub fn reject(
        &mut self,
        now: Instant,
        call: CallId,
        status: u16,
        reason: &str,
        headers: &[(&str, &str)],
    ) -> bool {
        let Some(entry) = self.calls.get(&call) else {
            return false;
        };
        let CallState::Incoming { txn } = entry.state else {
            return false;
        };
        let Some(flow) = self.endpoint.server_flow(txn) else {
            return false;
        };
        let Some(request) = self.pending_invite(txn) else {
            return false;
        };
        let mut builder = self.response(&request, &flow, status, reason, Some(&entry.local_tag));
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let response = builder.build();
        self.endpoint.respond(now, txn, status, response);
        self.remove_call(call);
        true
    }

    fn pending_invite(&self, txn: ServerTxnId) -> Option<Arc<Message>> {
        self.endpoint.server_request(txn)
    }

    fn handle_ack(&mut self, _now: Instant, ack: &Message) {
        let Some(id) = DialogId::of_request(ack) else {
            return;
        };
        let Some(&call) = self.by_dialog.get(&id) else {
            return;
        };
        let Some(entry) = self.calls.get_mut(&call) else {
            return;
        };
        if let CallState::Answered { .. } = entry.state {
            entry.state = CallState::Confirmed;
            let answer = entry.offered_in_200.then(|| Body::of(ack)).flatten();
            self.events.push_back(UaEvent::Established { call, answer });
        }
    }

    /// RFC 3261 9.2: the INVITE gets 487 once its CANCEL was answered.
    pub(super) fn handle_cancelled(&mut self, now: Instant, invite: ServerTxnId) {
        let Some(&call) = self.by_server_txn.get(&invite) else {
            return;
        };
        let Some(flow) = self.endpoint.server_flow(invite) else {
            return;
        };
        let Some(request) = self.pending_invite(invite) else {
            return;
        };
        let tag = self.calls.get(&call).map(|c| c.local_tag.clone());
        let response = self
            .response(&request, &flow, 487, "Request Terminated", tag.as_deref())
            .build();
        self.endpoint.respond(now, invite, 487, response);
        self.remove_call(call);
        self.events.push_back(UaEvent::Cancelled { call });
    }

    /// Finds the call of an in-dialog request, answering 481 (RFC 3261
    /// 12.2.2) or 500 for an out-of-order CSeq.
    pub(super) fn dialog_call(
        &mut self,
        now: Instant,
        txn: ServerTxnId,
        flow: Flow,
        request: &Message,
    ) -> Option<CallId> {
        let call = DialogId::of_request(request).and_then(|id| self.by_dialog.get(&id).copied());
        let Some(call) = call else {
            self.stats.requests_out_of_dialog += 1;
            self.respond_simple(now, txn, flow, request, 481, "Call/Transaction Does Not Exist");
            return None;
        };
        let in_order = self
            .calls
            .get_mut(&call)
            .and_then(|entry| entry.dialog.as_mut())
            .is_some_and(|dialog| dialog.accept_remote_cseq(request.cseq().seq));
        if !in_order {
            self.respond_simple(now, txn, flow, request, 500, "Server Internal Error");
            return None;
        }
        Some(call)
    }

    fn handle_bye(&mut self, now: Instant, txn: ServerTxnId, flow: Flow, request: &Message) {
        let Some(call) = self.dialog_call(now, txn, flow, request) else {
            return;
        };
        self.respond_simple(now, txn, flow, request, 200, "OK");
        let text = request.header("Reason").unwrap_or("BYE").to_string();
        self.remove_call(call);
        self.events.push_back(UaEvent::Ended {
            call,
            reason: EndReason { by_peer: true, text },
        });
    }

    /// A re-INVITE or UPDATE (RFC 3261 14.2, RFC 3311 5.2): with an offer
    /// the application answers it; without one, we answer with the
    /// session as it is.
    fn handle_reoffer(&mut self, now: Instant, txn: ServerTxnId, flow: Flow, request: Arc<Message>) {
        let Some(call) = self.dialog_call(now, txn, flow, &request) else {
            return;
        };
        let Some(entry) = self.calls.get_mut(&call) else {
            return;
        };
        if entry.reoffer.is_some() {
            // RFC 3261 14.2: 500 with Retry-After while one is pending.
            let response = self
                .response(&request, &flow, 500, "Server Internal Error", None)
                .header("Retry-After", "1")
                .build();
            self.endpoint.respond(now, txn, 500, response);
            return;
        }
        if let Some(dialog) = entry.dialog.as_mut() {
            dialog.refresh_target(&request);
        }
        match Body::of(&request) {
            Some(offer) => {
                entry.reoffer = Some((txn, request));
                self.events.push_back(UaEvent::Reoffer {
                    call,
                    reoffer: ReofferId(txn),
                    offer,
                });
            }
            None => {
                let response = self
                    .response(&request, &flow, 200, "OK", None)
                    .header("Contact", &self.contact(flow.transport))
                    .build();
                self.endpoint.respond(now, txn, 200, response);
            }
        }
    }

    /// The application's answer to a re-offer: `Ok(answer)` is a 200 with
    /// it, `Err((status, warning))` a refusal (488 with a Warning, RFC 3261
    /// 14.2) that leaves the session as it was.
    pub fn answer_reoffer(
        &mut self,
        now: Instant,
        call: CallId,
        reoffer: ReofferId,
        answer: Result<Body, (u16, String)>,
    ) -> bool {
        let Some(entry) = self.calls.get_mut(&call) else {
            return false;
        };
        let Some((txn, request)) = entry.reoffer.take() else {
            return false;
        };
        if txn != reoffer.0 {
            entry.reoffer = Some((txn, request));
            return false;
        }
        let Some(flow) = self.endpoint.server_flow(txn) else {
            return false;
        };
        let (status, response) = match answer {
            Ok(body) => (
                200,
                self.response(&request, &flow, 200, "OK", None)
                    .header("Contact", &self.contact(flow.transport))
                    .body(&body.content_type, body.bytes)
                    .build(),
            ),
            Err((status, warning)) => (
                status,
                self.response(&request, &flow, status, reason_phrase(status), None)
                    .header(
                        "Warning",
                        &format!(
                            "399 {} \"{}\"",
                            self.config.endpoint.warn_agent,
                            warning.replace('"', "'")
                        ),
                    )
                    .build(),
            ),
        };
        self.endpoint.respond(now, txn, status, response)
    }

    /// A 2xx retransmission timer (RFC 3261 13.3.1.4): send again, double
    /// up to T2, and after 64*T1 without ACK end the call with a BYE.
    pub(super) fn answered_timer(&mut self, now: Instant, at: Instant, call: CallId) {
        let timers = self.config.endpoint.timers;
        let Some(entry) = self.calls.get_mut(&call) else {
            return;
        };
        let CallState::Answered {
            response,
            interval,
            retransmit_at,
            gives_up_at,
        } = &mut entry.state
        else {
            return;
        };
        if *retransmit_at != at {
            return;
        }
        if now >= *gives_up_at {
            self.stats.acks_missing += 1;
            self.hangup(now, call, "no ACK for the 200 within 64*T1");
            return;
        }
        let response: Bytes = response.clone();
        *interval = timers.backoff(*interval, true);
        *retransmit_at = (now + *interval).min(*gives_up_at);
        let next = *retransmit_at;
        if let Some(flow) = entry.dialog.as_ref().map(|d| d.flow) {
            self.endpoint.send_stateless(flow, response);
        }
        self.timers.push(Reverse((next, call)));
    }
}

/// The reason phrases of the refusals we send (RFC 3261 21).
fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        415 => "Unsupported Media Type",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        _ => "Refused",
    }
}
