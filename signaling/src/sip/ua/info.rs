//! INFO in a dialog, both ways (RFC 6086), and MESSAGE answered (RFC 3428).
//!
//! A legacy INFO (no `Info-Package`, RFC 6086 2) whose body type the
//! application takes (`UaConfig::info_types`, e.g. MSML's
//! `application/msml+xml`) is the application's to answer: it comes as
//! [`UaEvent::Info`] and is answered with [`UserAgent::answer_info`]. INFOs
//! we send ([`UserAgent::send_info`]) end in [`UaEvent::InfoAnswered`].

use std::sync::Arc;
use std::time::Instant;

use super::super::endpoint::{ClientTxnId, Flow, ServerTxnId};
use super::super::message::Message;
use super::super::method::Method;
use super::{Body, CallId, UaEvent, UserAgent};

/// An INFO the application answers (exactly once; unanswered, the
/// transaction times out on the peer's side).
#[derive(Debug)]
pub struct InfoRequest {
    pub call: CallId,
    pub request: Arc<Message>,
    txn: ServerTxnId,
    flow: Flow,
}

impl UserAgent {
    /// RFC 6086 4.2: a named package is 469 with the packages we take in
    /// Recv-Info (none: empty, 4.2.2); a legacy INFO's body of a type the
    /// application did not ask for is 415 (4.2.1); one without a body is
    /// 200.
    pub(super) fn handle_info(&mut self, now: Instant, txn: ServerTxnId, flow: Flow, request: Arc<Message>) {
        let Some(call) = self.dialog_call(now, txn, flow, &request) else {
            return;
        };
        self.stats.infos_in += 1;
        if request.header("Info-Package").is_some() {
            let response = self
                .response(&request, &flow, 469, "Bad Info Package", None)
                .header("Recv-Info", "")
                .build();
            self.endpoint.respond(now, txn, 469, response);
            return;
        }
        if request.body().is_empty() {
            let response = self.response(&request, &flow, 200, "OK", None).build();
            self.endpoint.respond(now, txn, 200, response);
            return;
        }
        let content_type = request.content_type().unwrap_or_default();
        let base = content_type.split(';').next().unwrap_or_default().trim();
        if self
            .config
            .info_types
            .iter()
            .any(|t| t.eq_ignore_ascii_case(base))
        {
            self.events.push_back(UaEvent::Info(InfoRequest {
                call,
                request,
                txn,
                flow,
            }));
            return;
        }
        let accept = match self.config.info_types.is_empty() {
            true => "application/sdp".to_string(),
            false => self.config.info_types.join(", "),
        };
        let response = self
            .response(&request, &flow, 415, "Unsupported Media Type", None)
            .header("Accept", &accept)
            .build();
        self.endpoint.respond(now, txn, 415, response);
    }

    /// Answers an INFO the application was given.
    pub fn answer_info(
        &mut self,
        now: Instant,
        info: &InfoRequest,
        status: u16,
        reason: &str,
        body: Option<Body>,
    ) {
        let mut builder = self.response(&info.request, &info.flow, status, reason, None);
        if let Some(body) = body {
            builder = builder.body(&body.content_type, body.bytes);
        }
        let response = builder.build();
        self.endpoint.respond(now, info.txn, status, response);
    }

    /// Sends an INFO in the call's dialog (RFC 6086 4.1: legacy, no
    /// Info-Package); its final response comes as `InfoAnswered` (408 when
    /// none came, RFC 3261 17.1.2.2). Retransmitted over UDP by its
    /// transaction until answered.
    pub fn send_info(&mut self, now: Instant, call: CallId, body: Body) -> Result<ClientTxnId, String> {
        let entry = self.calls.get(&call).ok_or("no such call")?;
        let dialog = entry.dialog.as_ref().ok_or("the call has no dialog yet")?;
        let hop = dialog.next_hop();
        let via = self.via(hop.transport);
        let dialog = self
            .calls
            .get_mut(&call)
            .and_then(|entry| entry.dialog.as_mut())
            .ok_or("the call has no dialog yet")?;
        let info = dialog
            .request(Method::Info, &via, None)
            .header("User-Agent", &self.config.user_agent)
            .body(&body.content_type, body.bytes)
            .build();
        let txn = self
            .endpoint
            .send_request(now, hop, info)
            .map_err(|e| e.to_string())?;
        self.stats.infos_out += 1;
        self.info_txns.insert(txn, call);
        Ok(txn)
    }

    /// A response to an INFO of ours; `false` when `txn` is not one.
    pub(super) fn info_response(&mut self, txn: ClientTxnId, status: u16) -> bool {
        let Some(&call) = self.info_txns.get(&txn) else {
            return false;
        };
        if status >= 200 {
            self.info_txns.remove(&txn);
            self.events.push_back(UaEvent::InfoAnswered { call, txn, status });
        }
        true
    }

    /// An INFO of ours got no final response (Timer F).
    pub(super) fn info_timeout(&mut self, txn: ClientTxnId) -> bool {
        let Some(call) = self.info_txns.remove(&txn) else {
            return false;
        };
        self.events.push_back(UaEvent::InfoAnswered {
            call,
            txn,
            status: 408,
        });
        true
    }

    /// RFC 3428 7: a MESSAGE is answered 200 once taken; we take them so
    /// that a peer's IMDN (RFC 5438) arriving after the session's BYE is
    /// not refused. Its body is counted, not kept.
    pub(super) fn handle_message(&mut self, now: Instant, txn: ServerTxnId, flow: Flow, request: &Message) {
        self.stats.sip_messages_in += 1;
        self.respond_simple(now, txn, flow, request, 200, "OK");
    }
}
