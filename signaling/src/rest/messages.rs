//! `POST /v1/sessions/{id}/messages` and `POST /v1/messages:batch`: text
//! or base64 bodies, optionally wrapped in message/cpim (RFC 3862) with
//! IMDN requests (RFC 5438), handed to the engine on its control socket
//! (one command, or one batch frame for many).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use base64::Engine as _;
use msrp_engine::control::{FailureReportName, SendRequest};

use super::auth::{ApiJson, Caller};
use super::coalesce::send_batch;
use super::error::{ApiError, ErrorBody};
use super::sessions::now_ms;
use super::types::{Accepted, BatchRequest, BatchResponse, BatchResult, MessageRequest, Report};
use super::RestState;
use crate::app::{self, cpim, App, State as SessionState};

/// Engine batches are cut at this many operations (msrpd's
/// `--batch-ops-max` is 1024 by default).
const ENGINE_BATCH_OPS: usize = 512;
/// ... and at this many body octets (`--batch-payload-max`, 16 MiB).
const ENGINE_BATCH_BYTES: usize = 8 << 20;

/// A message ready for the engine.
pub(super) struct Prepared {
    pub engine_session: String,
    pub session: String,
    pub content_type: String,
    pub body: Vec<u8>,
    pub report: Report,
    pub class: cpim::MessageClass,
    pub imdn_message_id: Option<String>,
}

impl Prepared {
    pub fn request(&self) -> SendRequest {
        let mut request = SendRequest::new(&self.engine_session, &self.content_type);
        request.success_report = Some(self.report.success());
        request.failure_report = Some(match self.report.failure() {
            true => FailureReportName::Yes,
            false => FailureReportName::No,
        });
        request
    }
}

pub(crate) fn check_content_type(content_type: &str) -> Result<(), String> {
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let ok = media
        .split_once('/')
        .is_some_and(|(t, s)| !t.is_empty() && !s.is_empty() && !s.contains('/'))
        && !content_type.bytes().any(|b| b < b' ' || b == 0x7f);
    match ok {
        true => Ok(()),
        false => Err(format!("content_type: `{content_type}` is not type/subtype")),
    }
}

/// The engine session messages of the caller's session `session` go to
/// (its first MSRP leg): 404 for no such session, 409 when it is not
/// connected.
pub(super) fn connected_leg(app: &App, caller: &Caller, session: &str) -> Result<String, ApiError> {
    let found = app
        .sessions
        .get(&caller.0, session)
        .ok_or_else(|| ApiError::not_found("session", session))?;
    if found.state != SessionState::Connected {
        return Err(ApiError::conflict(format!(
            "session `{session}` is {}, not connected",
            found.state.name()
        )));
    }
    found
        .first_leg()
        .map(|leg| leg.engine_session.clone())
        .ok_or_else(|| ApiError::conflict("the session has no MSRP leg"))
}

/// How a bad field is named: `text`, or `messages[3].text` in a batch.
fn named(at: Option<usize>, name: &str) -> String {
    match at {
        Some(index) => format!("messages[{index}].{name}"),
        None => name.to_string(),
    }
}

/// Reads the request into the octets to send, on a session of the
/// caller's (`app` is locked by the caller: a batch locks once). `at` is
/// a batch item's index, for the names of bad fields.
pub(super) fn prepare(
    app: &App,
    caller: &Caller,
    session: &str,
    message: MessageRequest,
    at: Option<usize>,
) -> Result<Prepared, ApiError> {
    let content_type = message.content_type.unwrap_or_else(|| "text/plain".into());
    check_content_type(&content_type).map_err(|e| match at {
        Some(index) => ApiError::bad_request(format!("messages[{index}].{e}")),
        None => ApiError::bad_request(e),
    })?;
    let body = match (message.text, message.body) {
        (Some(text), None) => text.into_bytes(),
        (None, Some(body)) => base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|e| ApiError::field(&named(at, "body"), format!("not base64: {e}")))?,
        (None, None) => {
            return Err(ApiError::field(
                &named(at, "text"),
                "one of text or body is required",
            ))
        }
        (Some(_), Some(_)) => return Err(ApiError::field(&named(at, "text"), "give text or body, not both")),
    };
    let engine_session = connected_leg(app, caller, session)?;
    let (content_type, body, class, imdn_message_id) = match message.cpim {
        None => {
            let class = cpim::classify(&content_type, None);
            (content_type, body, class, None)
        }
        Some(wrap) => {
            let generated = format!("{:016x}", fastrand::u64(..));
            let imdn_id = wrap
                .imdn
                .as_ref()
                .map(|imdn| imdn.message_id.clone().unwrap_or_else(|| generated.clone()));
            let wrapped =
                cpim::build(&wrap, &content_type, &body, now_ms(), &generated).map_err(|e| match at {
                    Some(index) => ApiError::bad_request(format!("messages[{index}].{e}")),
                    None => ApiError::bad_request(e.to_string()),
                })?;
            let class = cpim::classify("message/cpim", Some(&content_type));
            ("message/cpim".to_string(), wrapped, class, imdn_id)
        }
    };
    Ok(Prepared {
        engine_session,
        session: session.to_string(),
        content_type,
        body,
        report: message.report,
        class,
        imdn_message_id,
    })
}

/// Sends one message; `delivered` or `failed` follows as an event naming
/// the returned id.
#[utoipa::path(post, path = "/v1/sessions/{id}/messages", tag = "messages", request_body = MessageRequest,
    params(("id" = String, Path, description = "session id")),
    responses(
        (status = 202, description = "the engine took it", body = Accepted),
        (status = 400, description = "a field is malformed", body = ErrorBody),
        (status = 404, description = "no such session", body = ErrorBody),
        (status = 409, description = "the session is not connected", body = ErrorBody),
        (status = 413, description = "the body is over the bound", body = ErrorBody),
        (status = 503, description = "the engine is at a limit (Retry-After)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn post_message(
    State(state): State<RestState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(message): ApiJson<MessageRequest>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let prepared = prepare(&app::lock(&state.app), &caller, &id, message, None)?;
    if state.signal.engine().is_none() {
        return Err(ApiError::unavailable("no connection to msrpd"));
    }
    let size = prepared.body.len() as u64;
    let request = prepared.request();
    // Sends that arrive together leave as one engine batch (`coalesce`).
    let number = state
        .sends
        .send(request, prepared.body)
        .await
        .map_err(|e| ApiError::engine(&e))?;
    app::lock(&state.app).sent(&id, number, size, prepared.class, prepared.report.success());
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            id: number.to_string(),
            session: id,
            size,
            imdn_message_id: prepared.imdn_message_id,
            file_selector: None,
        }),
    ))
}

/// Sends many messages, across sessions, in one request: one result per
/// item, in order (207).
#[utoipa::path(post, path = "/v1/messages:batch", tag = "messages", request_body = BatchRequest,
    responses(
        (status = 207, description = "a result per item", body = BatchResponse),
        (status = 400, description = "the batch is malformed or too long", body = ErrorBody),
        (status = 413, description = "the body is over the bound", body = ErrorBody),
        (status = 503, description = "no engine", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn post_batch(
    State(state): State<RestState>,
    caller: Caller,
    ApiJson(batch): ApiJson<BatchRequest>,
) -> Result<(StatusCode, Json<BatchResponse>), ApiError> {
    if batch.messages.is_empty() || batch.messages.len() > state.settings.batch_max {
        return Err(ApiError::field(
            "messages",
            format!("between 1 and {} items", state.settings.batch_max),
        ));
    }
    let engine = state
        .signal
        .engine()
        .ok_or_else(|| ApiError::unavailable("no connection to msrpd"))?;
    let mut results: Vec<Option<BatchResult>> = Vec::with_capacity(batch.messages.len());
    let mut ready: Vec<(usize, Prepared)> = Vec::with_capacity(batch.messages.len());
    {
        let app = app::lock(&state.app);
        for (index, item) in batch.messages.into_iter().enumerate() {
            let (session, message) = item.split();
            match prepare(&app, &caller, &session, message, Some(index)) {
                Ok(prepared) => {
                    ready.push((index, prepared));
                    results.push(None);
                }
                Err(error) => results.push(Some(failed(&error))),
            }
        }
    }
    let mut start = 0;
    while start < ready.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < ready.len()
            && end - start < ENGINE_BATCH_OPS
            && (end == start || bytes + ready[end].1.body.len() <= ENGINE_BATCH_BYTES)
        {
            bytes += ready[end].1.body.len();
            end += 1;
        }
        let chunk = &ready[start..end];
        let sends = chunk.iter().map(|(_, p)| (p.request(), p.body.as_slice()));
        match send_batch(&engine, sends).await {
            Ok(outcomes) => {
                let mut app = app::lock(&state.app);
                for ((index, prepared), outcome) in chunk.iter().zip(outcomes) {
                    results[*index] = Some(match outcome {
                        Ok(number) => {
                            app.sent(
                                &prepared.session,
                                number,
                                prepared.body.len() as u64,
                                prepared.class,
                                prepared.report.success(),
                            );
                            BatchResult {
                                status: 202,
                                id: Some(number.to_string()),
                                error: None,
                                detail: None,
                            }
                        }
                        Err(error) => failed(&ApiError::engine(&error)),
                    });
                }
            }
            Err(error) => {
                let error = ApiError::engine(&error);
                for (index, _) in chunk {
                    results[*index] = Some(failed(&error));
                }
            }
        }
        start = end;
    }
    let results = results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| failed(&ApiError::internal("the engine gave no result"))))
        .collect();
    Ok((StatusCode::MULTI_STATUS, Json(BatchResponse { results })))
}

fn failed(error: &ApiError) -> BatchResult {
    BatchResult {
        status: error.status.as_u16(),
        id: None,
        error: Some(error.name()),
        detail: Some(error.detail.clone()),
    }
}
