//! The UAC side of a call and ending calls (RFC 3261 8.1, 13.2, 15.1.1,
//! 9.1).

use std::sync::Arc;
use std::time::Instant;

use super::super::dialog::Dialog;
use super::super::endpoint::{ClientTxnId, Flow, SendError};
use super::super::message::{Message, MessageBuilder};
use super::super::method::Method;
use super::super::name_addr::NameAddr;
use super::super::uri::Uri;
use super::super::wire;
use super::{Body, Call, CallId, CallState, EndReason, UaEvent, UserAgent, ALLOW};

/// An INVITE to send (RFC 3261 8.1.1).
#[derive(Clone, Debug)]
pub struct InviteRequest {
    /// The Request-URI and To.
    pub to: Uri,
    /// From (our tag is added); our Contact's URI when absent.
    pub from: Option<NameAddr>,
    /// Where the INVITE goes (the next hop; DNS is the caller's).
    pub flow: Flow,
    /// The offer (none: the peer offers in its 2xx, we answer in the ACK).
    pub offer: Option<Body>,
    /// Extra headers, in order (e.g. Subject, Accept-Contact).
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InviteError {
    #[error("{0} calls are live, the configured maximum")]
    TooManyCalls(usize),
    #[error(transparent)]
    Send(#[from] SendError),
}

impl UserAgent {
    /// Sends an INVITE; the call's progress comes as `Ringing`,
    /// `Established` (the 2xx was acknowledged) or `Failed`.
    pub fn invite(&mut self, now: Instant, request: InviteRequest) -> Result<CallId, InviteError> {
        if self.calls.len() >= self.config.calls_max {
            return Err(InviteError::TooManyCalls(self.config.calls_max));
        }
        let local_tag = wire::tag();
        let contact = self.contact(request.flow.transport);
        let mut from = match request.from {
            Some(from) => from,
            None => NameAddr::parse(&contact).map_err(|e| SendError::Unparseable(e.to_string()))?,
        };
        super::super::dialog::set_tag(&mut from, &local_tag);
        let to = NameAddr {
            display: None,
            uri: request.to.clone(),
            params: Vec::new(),
        };
        let mut builder = MessageBuilder::request(Method::Invite, &request.to)
            .header("Via", &self.via(request.flow.transport))
            .header("Max-Forwards", "70")
            .header("From", &from.to_string())
            .header("To", &to.to_string())
            .header("Call-ID", &wire::call_id())
            .header("CSeq", "1 INVITE")
            .header("Contact", &contact)
            .header("Allow", ALLOW)
            .header("User-Agent", &self.config.user_agent);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some(offer) = &request.offer {
            builder = builder.body(&offer.content_type, offer.bytes.clone());
        }
        let bytes = builder.build();
        let message = Arc::new(
            Message::parse(bytes.clone(), &self.config.endpoint.limits)
                .map_err(|e| SendError::Unparseable(e.to_string()))?,
        );
        let txn = self
            .endpoint
            .send_parsed(now, request.flow, bytes, message.clone())?;
        self.stats.outgoing_calls += 1;
        let call = self.new_call(Call {
            state: CallState::Calling {
                txn,
                request: message,
                provisional: false,
                cancel: None,
            },
            dialog: None,
            local_tag,
            offered_in_200: false,
            ack: None,
            invite_txn: None,
            reoffer: None,
            source: None,
        });
        self.by_client_txn.insert(txn, call);
        Ok(call)
    }

    pub(super) fn handle_response(&mut self, now: Instant, txn: ClientTxnId, response: Message) {
        let Some(&call) = self.by_client_txn.get(&txn) else {
            return;
        };
        let status = response.status().unwrap_or(0);
        let Some(entry) = self.calls.get_mut(&call) else {
            return;
        };
        match &mut entry.state {
            CallState::Calling {
                txn: invite_txn,
                request,
                provisional,
                cancel,
            } => {
                let invite_txn = *invite_txn;
                if status < 200 {
                    let first = !*provisional;
                    *provisional = true;
                    let cancel = cancel.take();
                    let request = request.clone();
                    if status > 100 {
                        self.events.push_back(UaEvent::Ringing { call, status });
                    }
                    if let (true, Some(reason)) = (first, cancel) {
                        self.send_cancel(now, invite_txn, &request, &reason);
                    }
                } else if status < 300 {
                    let request = request.clone();
                    let cancel = cancel.take();
                    self.established_as_uac(now, call, txn, &request, &response);
                    if let Some(reason) = cancel {
                        // RFC 3261 9.1: a CANCEL that lost the race to the
                        // 2xx: the call is ended with a BYE instead.
                        self.hangup(now, call, &reason);
                    }
                } else {
                    let reason = response.reason().unwrap_or("").to_string();
                    self.remove_call(call);
                    self.events.push_back(UaEvent::Failed { call, status, reason });
                }
            }
            CallState::Ending { txn: bye } if *bye == txn && status >= 200 => self.remove_call(call),
            CallState::Ending { txn: bye } if *bye == txn => {}
            // RFC 3261 13.2.2.4: a retransmitted 2xx gets the same ACK.
            CallState::Confirmed | CallState::Ending { .. }
                if entry.invite_txn == Some(txn) && (200..300).contains(&status) =>
            {
                if let Some((flow, ack)) = entry.ack.clone() {
                    self.endpoint.send_stateless(flow, ack);
                }
            }
            _ => {}
        }
    }

    fn established_as_uac(
        &mut self,
        _now: Instant,
        call: CallId,
        txn: ClientTxnId,
        request: &Message,
        response: &Message,
    ) {
        let Some(entry) = self.calls.get(&call) else {
            return;
        };
        let flow = match self.endpoint.client_flow(txn) {
            Some(flow) => flow,
            None => return,
        };
        let Some(mut dialog) = Dialog::as_uac(request, response, flow) else {
            // A 2xx without Contact cannot be acknowledged (RFC 3261
            // 13.2.2.4 needs the remote target).
            self.remove_call(call);
            self.events.push_back(UaEvent::Failed {
                call,
                status: 502,
                reason: "2xx without a Contact".into(),
            });
            return;
        };
        let _ = entry;
        let via = self.via(dialog.next_hop().transport);
        let ack = dialog
            .request(Method::Ack, &via, Some(request.cseq().seq))
            .build();
        let hop = dialog.next_hop();
        self.endpoint.send_stateless(hop, ack.clone());
        let answer = Body::of(response);
        self.by_dialog.insert(dialog.id.clone(), call);
        if let Some(entry) = self.calls.get_mut(&call) {
            entry.invite_txn = Some(txn);
            entry.state = CallState::Confirmed;
            entry.ack = Some((hop, ack));
            entry.dialog = Some(dialog);
        }
        self.events.push_back(UaEvent::Established { call, answer });
    }

    pub(super) fn handle_client_timeout(&mut self, now: Instant, txn: ClientTxnId) {
        self.handle_client_failure(now, txn, 408, "Request Timeout");
    }

    /// Our request got no final response: a timeout (408), or a transport
    /// that could not carry it (503, RFC 3261 8.1.3.1), with `reason`.
    pub(super) fn handle_client_failure(
        &mut self,
        _now: Instant,
        txn: ClientTxnId,
        status: u16,
        reason: &str,
    ) {
        let Some(&call) = self.by_client_txn.get(&txn) else {
            return;
        };
        let Some(entry) = self.calls.get(&call) else {
            return;
        };
        match entry.state {
            CallState::Calling { .. } => {
                self.remove_call(call);
                self.events.push_back(UaEvent::Failed {
                    call,
                    status,
                    reason: reason.into(),
                });
            }
            CallState::Ending { .. } => self.remove_call(call),
            _ => {}
        }
    }

    /// Ends a call: BYE with a Reason header (RFC 3326) when established
    /// or answered, CANCEL while our INVITE is pending (sent once a
    /// provisional response came, RFC 3261 9.1), 480 to an incoming call
    /// not yet answered. The call's end is reported as `Ended` (or
    /// `Failed` for a cancelled INVITE of ours).
    pub fn hangup(&mut self, now: Instant, call: CallId, reason: &str) -> bool {
        let Some(entry) = self.calls.get_mut(&call) else {
            return false;
        };
        match &mut entry.state {
            CallState::Incoming { .. } => {
                let reason_header = reason_header(reason);
                return self.reject(
                    now,
                    call,
                    480,
                    "Temporarily Unavailable",
                    &[("Reason", &reason_header)],
                );
            }
            CallState::Calling {
                txn,
                request,
                provisional,
                cancel,
            } => {
                if *provisional {
                    let (txn, request) = (*txn, request.clone());
                    self.send_cancel(now, txn, &request, reason);
                } else {
                    *cancel = Some(reason.to_string());
                }
                return true;
            }
            CallState::Ending { .. } => return true,
            CallState::Answered { .. } | CallState::Confirmed => {}
        }
        let Some(dialog) = entry.dialog.as_mut() else {
            return false;
        };
        let hop = dialog.next_hop();
        let via = self.via(hop.transport);
        let Some(dialog) = self.calls.get_mut(&call).and_then(|e| e.dialog.as_mut()) else {
            return false;
        };
        let bye = dialog
            .request(Method::Bye, &via, None)
            .header("Reason", &reason_header(reason))
            .build();
        let txn = match self.endpoint.send_request(now, hop, bye) {
            Ok(txn) => txn,
            Err(error) => {
                tracing::warn!(%error, "BYE not sent");
                self.remove_call(call);
                self.events.push_back(UaEvent::Ended {
                    call,
                    reason: EndReason {
                        by_peer: false,
                        text: reason.into(),
                    },
                });
                return false;
            }
        };
        if let Some(entry) = self.calls.get_mut(&call) {
            entry.state = CallState::Ending { txn };
        }
        self.by_client_txn.insert(txn, call);
        self.events.push_back(UaEvent::Ended {
            call,
            reason: EndReason {
                by_peer: false,
                text: reason.into(),
            },
        });
        true
    }

    /// RFC 3261 9.1: the CANCEL copies the INVITE's Request-URI, Call-ID,
    /// To, From, CSeq number, Route and its top Via (so its branch).
    fn send_cancel(&mut self, now: Instant, txn: ClientTxnId, invite: &Message, reason: &str) {
        let Some(uri) = invite.request_uri() else { return };
        let Some(via) = invite.top_via() else { return };
        let mut builder = MessageBuilder::request(Method::Cancel, uri)
            .header("Via", &via.to_string())
            .header("Max-Forwards", "70")
            .header("From", &invite.from().to_string())
            .header("To", &invite.to().to_string())
            .header("Call-ID", invite.call_id())
            .header("CSeq", &format!("{} CANCEL", invite.cseq().seq));
        for route in invite.header_values("Route") {
            builder = builder.header("Route", route);
        }
        let cancel = builder.header("Reason", &reason_header(reason)).build();
        let Some(flow) = self.endpoint.client_flow(txn) else {
            return;
        };
        if let Err(error) = self.endpoint.send_request(now, flow, cancel) {
            tracing::warn!(%error, "CANCEL not sent");
        }
    }
}

/// RFC 3326: our own ends are Q.850 cause 16, normal call clearing, with
/// the words.
pub(super) fn reason_header(text: &str) -> String {
    format!("Q.850;cause=16;text=\"{}\"", text.replace(['"', '\\'], "'"))
}
