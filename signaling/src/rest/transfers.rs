//! `POST /v1/transfers`: MSML's `transfer` over REST, with the same
//! fields (`src`, `dest` as `xmsrp://?offerer=..;answerer=..;file=..` or
//! `file://`, `contenttype`, `delete`, `objid`, `iterate`, `retry`, `wait`,
//! `maxtime`, ...); its `transfer` events come on `/v1/events`.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::auth::{ApiJson, Caller};
use super::error::{ApiError, ErrorBody};
use super::sessions::now_ms;
use super::RestState;
use crate::app::{self, EventType, SharedApp};
use crate::msml;
use crate::transfer::{
    self, Dest, Note, Noted, ObjectSpec, Retry, Sink, TransferError, TransferSpec, TransferStatus,
};

/// `retry`: a count, or `-1` / `"forever"`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum RetryValue {
    Count(i64),
    Word(String),
}

impl RetryValue {
    fn retry(&self, field: &str) -> Result<Retry, ApiError> {
        match self {
            RetryValue::Count(-1) => Ok(Retry::Forever),
            RetryValue::Count(n) if *n >= 0 => Ok(Retry::Count((*n).min(i64::from(u32::MAX)) as u32)),
            RetryValue::Word(w) if w.eq_ignore_ascii_case("forever") || w == "-1" => Ok(Retry::Forever),
            RetryValue::Word(w) => w
                .parse::<u32>()
                .map(Retry::Count)
                .map_err(|_| ApiError::field(field, "a count, -1 or \"forever\"")),
            RetryValue::Count(_) => Err(ApiError::field(field, "a count, -1 or \"forever\"")),
        }
    }
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

/// One object of a transfer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferObjectRequest {
    /// A file on this server (`file:///path` or `/path`), under a
    /// `--files-dir` when one is configured.
    pub src: Option<String>,
    /// Inline text instead of a file (MSML `messageobj`).
    pub text: Option<String>,
    /// `xmsrp://?offerer=sip:us@host;answerer=sip:them@host;file=NAME`,
    /// or `file:///path` for a local copy.
    pub dest: String,
    pub contenttype: Option<String>,
    pub objid: Option<String>,
    /// Delete `src` once every send of it succeeded (never on failure).
    #[serde(default)]
    pub delete: bool,
    #[serde(default = "one")]
    pub iterate: u32,
    pub retry: Option<RetryValue>,
    /// The next object waits for this one.
    #[serde(default)]
    pub wait: bool,
    /// For a `file://` dest.
    #[serde(default = "yes")]
    pub overwrite: bool,
    #[serde(default)]
    pub append: bool,
}

/// `POST /v1/transfers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    pub objects: Vec<TransferObjectRequest>,
    /// Passes over the object list.
    #[serde(default = "one")]
    pub iterate: u32,
    /// Retries of a failed object (each object's own, when larger, wins).
    pub retry: Option<RetryValue>,
    /// The cap on the whole transfer, MSML style: `30s`, `1500ms`.
    pub maxtime: Option<String>,
    /// Wait this long before starting.
    pub delay: Option<String>,
    /// The tag of the sessions it makes.
    pub tag: Option<String>,
}

fn duration(field: &str, text: &Option<String>) -> Result<Option<std::time::Duration>, ApiError> {
    text.as_deref()
        .map(msml::duration::parse_pos_duration)
        .transpose()
        .map_err(|e| ApiError::field(field, e))
}

pub(crate) fn spec(request: TransferRequest) -> Result<TransferSpec, ApiError> {
    let all = match &request.retry {
        Some(retry) => retry.retry("retry")?,
        None => Retry::Count(0),
    };
    let mut objects = Vec::new();
    for (index, object) in request.objects.into_iter().enumerate() {
        let at = |name: &str| format!("objects[{index}].{name}");
        let src = match (&object.src, &object.text) {
            (Some(src), None) => {
                msml::xmsrp::parse_src(src).map_err(|e| ApiError::field(&at("src"), e.description))?
            }
            (None, Some(_)) => PathBuf::new(),
            _ => return Err(ApiError::field(&at("src"), "give src or text, not both")),
        };
        let src_ref = object.src.as_ref().map(|_| src.as_path());
        let dest = msml::xmsrp::parse_dest(&object.dest, src_ref)
            .map_err(|e| ApiError::field(&at("dest"), e.description))?;
        if matches!(dest, msml::Dest::Xmsrp(_)) && (object.append || !object.overwrite) {
            return Err(ApiError::field(
                &at("append"),
                "append and overwrite have no meaning for an xmsrp dest",
            ));
        }
        let own = match &object.retry {
            Some(retry) => retry.retry(&at("retry"))?,
            None => Retry::Count(0),
        };
        let retry = match (own, all) {
            (Retry::Forever, _) | (_, Retry::Forever) => Retry::Forever,
            (Retry::Count(a), Retry::Count(b)) => Retry::Count(a.max(b)),
        };
        objects.push(ObjectSpec {
            objid: object.objid.unwrap_or_else(|| format!("object{}", index + 1)),
            src,
            body: object.text.map(Bytes::from),
            dest: Dest::from_msml(&dest),
            content_type: object.contenttype.unwrap_or_else(|| match object.src {
                Some(_) => "application/octet-stream".into(),
                None => "text/plain".into(),
            }),
            iterate: object.iterate,
            retry,
            wait: object.wait,
            delete: object.delete,
            overwrite: object.overwrite,
            append: object.append,
        });
    }
    Ok(TransferSpec {
        objects,
        iterate: request.iterate,
        maxtime: duration("maxtime", &request.maxtime)?,
        delay: duration("delay", &request.delay)?,
        tag: request.tag,
    })
}

/// A transfer's notes as `transfer` events of its owner.
struct RestSink {
    app: SharedApp,
    owner: Arc<str>,
    tag: Option<String>,
}

#[derive(Serialize)]
struct TransferEvent<'a> {
    event: &'static str,
    objid: Option<&'a str>,
    duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sip_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    msrp_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

impl Sink for RestSink {
    fn note<'a>(&'a mut self, id: &'a str, note: Note) -> Noted<'a> {
        let fields = match &note {
            Note::ObjectDone { objid, duration } => TransferEvent {
                event: "objectdone",
                objid: Some(objid),
                duration_ms: transfer::millis(*duration),
                end: None,
                sip_status: None,
                msrp_status: None,
                reason: None,
            },
            Note::Finished {
                end,
                duration,
                objid,
                failure,
            } => TransferEvent {
                event: "end",
                objid: objid.as_deref(),
                duration_ms: transfer::millis(*duration),
                end: Some(end.name()),
                sip_status: failure.as_ref().and_then(|f| f.sip_status),
                msrp_status: failure.as_ref().and_then(|f| f.msrp_status),
                reason: failure.as_ref().map(|f| f.reason.as_str()),
            },
        };
        app::lock(&self.app).emit_other(
            &self.owner,
            id,
            self.tag.as_deref(),
            EventType::Transfer,
            now_ms(),
            &fields,
        );
        Box::pin(async {})
    }
}

fn refused(error: TransferError) -> ApiError {
    match error {
        TransferError::Source(e) => ApiError::field("src", e),
        TransferError::Forbidden(e) => ApiError::new(StatusCode::FORBIDDEN, e),
        TransferError::Invalid(e) => ApiError::bad_request(e),
        full @ TransferError::Full(_) => ApiError::unavailable(full.to_string()),
    }
}

/// Starts a transfer: every source is checked before anything is sent.
#[utoipa::path(post, path = "/v1/transfers", tag = "messages",
    request_body = TransferRequest,
    responses(
        (status = 201, description = "the transfer runs; its `transfer` events follow", body = TransferStatus),
        (status = 400, description = "a field is wrong, or a source is missing or unreadable", body = ErrorBody),
        (status = 403, description = "a source is not under a --files-dir", body = ErrorBody),
        (status = 503, description = "too many transfers run", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn post_transfer(
    State(state): State<RestState>,
    caller: Caller,
    ApiJson(request): ApiJson<TransferRequest>,
) -> Result<(StatusCode, Json<TransferStatus>), ApiError> {
    let transfers = state
        .transfers
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("transfers are off"))?;
    let tag = request.tag.clone();
    let spec = spec(request)?;
    let sink = RestSink {
        app: state.app.clone(),
        owner: caller.0.clone(),
        tag,
    };
    let trusted = state.tokens.is_empty();
    let id = transfers
        .start(caller.0.clone(), spec, Box::new(sink), trusted)
        .map_err(refused)?;
    let status = transfers
        .status(&caller.0, &id)
        .ok_or_else(|| ApiError::internal("the transfer vanished"))?;
    Ok((StatusCode::CREATED, Json(status)))
}

/// A transfer: running, or how it ended.
#[utoipa::path(get, path = "/v1/transfers/{id}", tag = "messages",
    params(("id" = String, Path, description = "transfer id")),
    responses(
        (status = 200, description = "the transfer", body = TransferStatus),
        (status = 404, description = "no such transfer", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn get_transfer(
    State(state): State<RestState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TransferStatus>, ApiError> {
    state
        .transfers
        .as_ref()
        .and_then(|t| t.status(&caller.0, &id))
        .map(Json)
        .ok_or_else(|| ApiError::not_found("transfer", &id))
}

/// Stops a running transfer (`transfer.terminate`): its message is
/// interrupted, its session ended, its sources kept.
#[utoipa::path(delete, path = "/v1/transfers/{id}", tag = "messages",
    params(("id" = String, Path, description = "transfer id")),
    responses(
        (status = 202, description = "stopping; the `end` event follows", body = Value),
        (status = 404, description = "no running transfer by that id", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn delete_transfer(
    State(state): State<RestState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    match state
        .transfers
        .as_ref()
        .is_some_and(|t| t.terminate(&caller.0, &id))
    {
        true => Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "id": id, "state": "stopping" })),
        )),
        false => Err(ApiError::not_found("transfer", &id)),
    }
}
