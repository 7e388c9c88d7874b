//! The JSON of the routes: what applications send and what they get back.
//! Views of the application layer (`crate::app`); nothing here is state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::cpim::CpimWrap;
use crate::app::{self, AppSession};

/// `POST /v1/sessions`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    /// `1pcc` (we send the INVITE; the default) or `3pcc` (only SDP).
    #[serde(default)]
    pub mode: ModeName,
    /// 1PCC: the Request-URI and To, e.g. `sip:bob@192.0.2.7:5060;transport=tcp`.
    pub to: Option<String>,
    /// 1PCC: From (`sip:us@host` or `"Name" <sip:us@host>`).
    pub from: Option<String>,
    /// Our `a=accept-types` for this session.
    pub accept_types: Option<Vec<String>>,
    /// Our `a=setup` in an offer (RFC 6135): `actpass` (default), `active`, `passive`.
    pub setup: Option<String>,
    /// Extra SIP headers on the INVITE.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Our `a=max-size`.
    pub max_size: Option<u64>,
    /// The application's own label; events and lists filter by it.
    pub tag: Option<String>,
    /// 3PCC: the peer's offer; we answer it. Without it we offer.
    pub remote_sdp: Option<String>,
    /// 3PCC: the session is secure (RFC 4975 14): our offer is
    /// `TCP/TLS/MSRP` with an msrps path and our `a=fingerprint`, and an
    /// offer of plain `TCP/MSRP` is refused. 1PCC: a `sips:` `to` makes
    /// the session secure by itself.
    #[serde(default)]
    pub secure: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ModeName {
    #[default]
    #[serde(rename = "1pcc")]
    FirstParty,
    #[serde(rename = "3pcc")]
    ThirdParty,
}

/// `POST /v1/sessions/{id}/answer`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    pub accept_types: Option<Vec<String>>,
}

/// `POST /v1/sessions/{id}/reject`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    /// A SIP final status, 300..=699 (default 486).
    pub status: Option<u16>,
    pub reason: Option<String>,
}

/// `PUT /v1/sessions/{id}/remote_sdp`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoteSdp {
    pub sdp: String,
}

/// `GET /v1/sessions` filters and page.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// `incoming`, `calling`, `offered`, `connected` or `closed`.
    pub state: Option<String>,
    pub tag: Option<String>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A session as applications see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: String,
    pub mode: ModeName,
    /// `inbound` or `outbound`.
    pub direction: &'static str,
    /// `incoming`, `calling`, `offered`, `connected` or `closed`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The SIP Call-ID (1PCC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// Our SDP (3PCC: give it to the peer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_sdp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_sdp: Option<String>,
    /// One per MSRP media line; messages go to the first.
    pub msrp: Vec<LegView>,
    pub counters: CountersView,
    /// Unix milliseconds.
    pub created: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<EndedView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LegView {
    pub local_path: Vec<String>,
    pub remote_path: Vec<String>,
    /// What the peer takes (its `a=accept-types`).
    pub remote_accept_types: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_max_size: Option<u64>,
    /// What we take.
    pub accept_types: Vec<String>,
    /// `active` (we connect) or `passive`.
    pub setup: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CountersView {
    pub messages_in: u64,
    pub messages_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub delivered: u64,
    pub failed: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndedView {
    /// `local`, `remote` or `system`.
    pub by: &'static str,
    pub reason: String,
}

impl SessionView {
    pub fn of(session: &AppSession) -> SessionView {
        let c = session.counters;
        SessionView {
            id: session.id.clone(),
            mode: match session.mode {
                app::Mode::FirstParty => ModeName::FirstParty,
                app::Mode::ThirdParty => ModeName::ThirdParty,
            },
            direction: match session.direction {
                app::Direction::Inbound => "inbound",
                app::Direction::Outbound => "outbound",
            },
            state: session.state.name(),
            tag: session.tag.clone(),
            from: session.from.clone(),
            to: session.to.clone(),
            call_id: session.sip_call_id.clone(),
            local_sdp: session.local_sdp.clone(),
            remote_sdp: session.remote_sdp.clone(),
            msrp: session
                .legs
                .iter()
                .map(|leg| LegView {
                    local_path: leg.local_path.clone(),
                    remote_path: leg.remote_path.clone(),
                    remote_accept_types: leg.remote_accept_types.clone(),
                    remote_max_size: leg.remote_max_size,
                    accept_types: leg.accept_types.clone(),
                    setup: if leg.we_connect { "active" } else { "passive" },
                })
                .collect(),
            counters: CountersView {
                messages_in: c.messages_in,
                messages_out: c.messages_out,
                bytes_in: c.bytes_in,
                bytes_out: c.bytes_out,
                delivered: c.delivered,
                failed: c.failed,
            },
            created: session.created_ms,
            ended: session.ended.as_ref().map(|(by, reason)| EndedView {
                by: by.name(),
                reason: reason.clone(),
            }),
        }
    }
}

/// Which reports a message asks for (RFC 4975 7.1.2, 7.1.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Report {
    None,
    Success,
    /// The MSRP default: a failure REPORT only.
    #[default]
    Failure,
    Both,
}

impl Report {
    pub fn success(self) -> bool {
        matches!(self, Report::Success | Report::Both)
    }

    pub fn failure(self) -> bool {
        matches!(self, Report::Failure | Report::Both)
    }
}

/// `POST /v1/sessions/{id}/messages`, and an item of the batch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageRequest {
    /// Default `text/plain`; the inner type when `cpim` wraps it.
    pub content_type: Option<String>,
    /// The body as text...
    pub text: Option<String>,
    /// ...or as base64.
    pub body: Option<String>,
    #[serde(default)]
    pub report: Report,
    /// Wrap in message/cpim (RFC 3862), with IMDN fields (RFC 5438).
    #[schema(value_type = Option<Object>)]
    pub cpim: Option<CpimWrap>,
}

/// A batch item: a message and its session (the fields of
/// [`MessageRequest`] beside `session`; spelled out, not flattened, so
/// that a batch parses in one pass).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchItem {
    pub session: String,
    pub content_type: Option<String>,
    pub text: Option<String>,
    pub body: Option<String>,
    #[serde(default)]
    pub report: Report,
    #[schema(value_type = Option<Object>)]
    pub cpim: Option<CpimWrap>,
}

impl BatchItem {
    pub fn split(self) -> (String, MessageRequest) {
        let message = MessageRequest {
            content_type: self.content_type,
            text: self.text,
            body: self.body,
            report: self.report,
            cpim: self.cpim,
        };
        (self.session, message)
    }
}

/// `POST /v1/messages:batch`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub messages: Vec<BatchItem>,
}

/// 202: the engine took the message; `delivered` or `failed` follows.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// Ours: `delivered`/`failed`/`progress` events name it as `message`.
    pub id: String,
    pub session: String,
    /// Octets on the wire (after CPIM wrapping).
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imdn_message_id: Option<String>,
    /// Files: the RFC 5547 file-selector values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_selector: Option<FileSelectorView>,
}

/// One batch result, in request order: 202 with the message, or the error.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResult {
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    pub results: Vec<BatchResult>,
}

/// `POST /v1/sessions/{id}/files` with a JSON body: a file on this server.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileRequest {
    pub path: String,
    pub content_type: Option<String>,
    /// Remove the file once it was delivered (kept on failure).
    #[serde(default)]
    pub delete_after: bool,
    #[serde(default)]
    pub report: Option<Report>,
    /// RFC 5547 file-selector values to check against the file (name,
    /// size and sha-1 are computed when absent).
    pub file_selector: Option<FileSelectorRequest>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSelectorRequest {
    pub name: Option<String>,
    pub size: Option<u64>,
    /// `sha-1:HEX` or bare hex (with or without colons).
    pub hash: Option<String>,
}

/// `POST /v1/sessions/{id}/files` with any other Content-Type: the body is
/// the file, streamed to disk.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UploadParams {
    /// The file's MSRP Content-Type (default: the request's).
    pub content_type: Option<String>,
    pub name: Option<String>,
    pub report: Option<Report>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FileSelectorView {
    pub name: String,
    #[serde(rename = "type")]
    pub content_type: String,
    pub size: u64,
    /// `sha-1:XX:XX:...` (RFC 5547 5).
    pub hash: String,
}

/// `GET /v1/events` filters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventParams {
    /// Comma-separated session ids.
    pub session: Option<String>,
    /// Comma-separated tags.
    pub tag: Option<String>,
    /// Comma-separated event types.
    #[serde(rename = "type")]
    pub types: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` when the engine link is up, else `degraded`.
    pub status: &'static str,
    pub engine: bool,
    pub sessions: u64,
}
