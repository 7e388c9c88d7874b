//! `/v1/sessions`: 1PCC (we send or answer the INVITE) and 3PCC (the
//! application signals; we only offer or answer SDP).

use std::net::SocketAddr;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::auth::{ApiJson, ApiQuery, Caller};
use super::error::{ApiError, ErrorBody};
use super::types::{
    AnswerRequest, CreateSession, ListParams, ModeName, RejectRequest, RemoteSdp, SessionList, SessionView,
};
use super::RestState;
use crate::app::{self, AppSession, Direction, EndedBy, Leg, ListQuery, Mode, State as SessionState};
use crate::sdp::{self, OfferOptions, Setup};
use crate::serve::{calls, CallError, OutboundCall};
use crate::sip::{NameAddr, Transport, Uri};

type Result<T> = std::result::Result<T, ApiError>;

/// The headers our INVITE has already (`sip::ua::outgoing`), long and
/// compact forms (RFC 3261 7.3.3): an application may add others, not
/// these.
const OURS: [&str; 20] = [
    "Via",
    "v",
    "Max-Forwards",
    "From",
    "f",
    "To",
    "t",
    "Call-ID",
    "i",
    "CSeq",
    "Contact",
    "m",
    "Allow",
    "User-Agent",
    "Content-Type",
    "c",
    "Content-Length",
    "l",
    "Route",
    "Record-Route",
];

pub(super) fn now_ms() -> u64 {
    app::unix_ms(std::time::SystemTime::now())
}

/// The application's session `id` as a view, or 404.
pub(super) fn view(state: &RestState, caller: &Caller, id: &str) -> Result<SessionView> {
    let app = app::lock(&state.app);
    let session = app
        .sessions
        .get(&caller.0, id)
        .ok_or_else(|| ApiError::not_found("session", id))?;
    Ok(SessionView::of(session))
}

/// The session's state, or 404.
fn state_of(state: &RestState, caller: &Caller, id: &str) -> Result<(SessionState, Mode)> {
    let app = app::lock(&state.app);
    let session = app
        .sessions
        .get(&caller.0, id)
        .ok_or_else(|| ApiError::not_found("session", id))?;
    Ok((session.state, session.mode))
}

fn wrong_state(id: &str, state: SessionState, wanted: &str) -> ApiError {
    ApiError::conflict(format!("session `{id}` is {}, not {wanted}", state.name()))
}

pub(crate) fn setup(name: Option<&str>) -> Result<Option<Setup>> {
    match name {
        None => Ok(None),
        Some("actpass") => Ok(Some(Setup::ActPass)),
        Some("active") => Ok(Some(Setup::Active)),
        Some("passive") => Ok(Some(Setup::Passive)),
        Some(other) => Err(ApiError::field(
            "setup",
            format!("`{other}` is not actpass, active or passive"),
        )),
    }
}

pub(crate) fn check_types(types: &Option<Vec<String>>) -> Result<()> {
    for media in types.iter().flatten() {
        let ok = media == "*"
            || media
                .split_once('/')
                .is_some_and(|(t, s)| !t.is_empty() && !s.is_empty() && !media.bytes().any(|b| b <= b' '));
        if !ok {
            return Err(ApiError::field(
                "accept_types",
                format!("`{media}` is not type/subtype or *"),
            ));
        }
    }
    Ok(())
}

/// Creates a session: 1PCC sends an INVITE (state `calling`); 3PCC
/// returns our offer (`offered`) or, given `remote_sdp`, our answer with
/// the MSRP session made (`connected`).
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", request_body = CreateSession,
    responses(
        (status = 201, description = "created", body = SessionView),
        (status = 400, description = "a field is malformed", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 503, description = "at a limit (Retry-After)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn create_session(
    State(state): State<RestState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateSession>,
) -> Result<(StatusCode, Json<SessionView>)> {
    check_types(&request.accept_types)?;
    let setup = setup(request.setup.as_deref())?;
    let id = match request.mode {
        ModeName::FirstParty => first_party(&state, &caller, request, setup).await?,
        ModeName::ThirdParty => third_party(&state, &caller, request, setup).await?,
    };
    Ok((StatusCode::CREATED, Json(view(&state, &caller, &id)?)))
}

async fn first_party(
    state: &RestState,
    caller: &Caller,
    request: CreateSession,
    setup: Option<Setup>,
) -> Result<String> {
    if request.remote_sdp.is_some() {
        return Err(ApiError::field(
            "remote_sdp",
            "only a 3pcc session takes the peer's SDP",
        ));
    }
    let to_text = request
        .to
        .as_deref()
        .ok_or_else(|| ApiError::field("to", "required for a 1pcc session"))?;
    let to = Uri::parse(to_text).map_err(|e| ApiError::field("to", e))?;
    if request.secure && !to.as_sip().is_some_and(|sip| sip.secure) {
        // RFC 3261 26.2.2: a secure 1PCC session is a sips: call.
        return Err(ApiError::field(
            "secure",
            "a secure 1pcc session calls a sips: URI",
        ));
    }
    let from = request
        .from
        .as_deref()
        .map(NameAddr::parse)
        .transpose()
        .map_err(|e| ApiError::field("from", e))?;
    let mut headers = Vec::new();
    for (name, value) in &request.headers {
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b));
        if !token || value.bytes().any(|b| b == b'\r' || b == b'\n') {
            return Err(ApiError::field(
                &format!("headers.{name}"),
                "not a header name and one-line value",
            ));
        }
        if OURS.iter().any(|ours| ours.eq_ignore_ascii_case(name)) {
            return Err(ApiError::field(
                &format!("headers.{name}"),
                "msrp-signal writes this header itself",
            ));
        }
        headers.push((name.clone(), value.clone()));
    }
    let (target, transport) = next_hop(state, &to).await?;
    let id = app::lock(&state.app)
        .new_outbound(
            caller.0.clone(),
            request.tag.clone(),
            to.to_string(),
            from.as_ref().map(|f| f.to_string()),
            now_ms(),
        )
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let call = OutboundCall {
        to,
        from,
        target,
        transport,
        options: OfferOptions {
            accept_types: request.accept_types,
            max_size: request.max_size,
            setup,
            ..OfferOptions::default()
        },
    };
    match state.signal.app_invite(&id, call, headers).await {
        Ok(()) => Ok(id),
        Err(error) => Err(match error {
            CallError::Gone => ApiError::unavailable("msrp-signal is stopping"),
            other => ApiError::unavailable(other.to_string()),
        }),
    }
}

/// Where the INVITE goes (`Signal::next_hop`), a refusal naming `to`.
async fn next_hop(state: &RestState, to: &Uri) -> Result<(SocketAddr, Transport)> {
    state
        .signal
        .next_hop(to)
        .await
        .map_err(|e| ApiError::field("to", e))
}

async fn third_party(
    state: &RestState,
    caller: &Caller,
    request: CreateSession,
    setup: Option<Setup>,
) -> Result<String> {
    if request.to.is_some() || request.from.is_some() || !request.headers.is_empty() {
        return Err(ApiError::field(
            "to",
            "a 3pcc session sends no SIP: to, from and headers are the application's",
        ));
    }
    let tls = state.signal.msrp_tls();
    if request.secure && tls.is_none() {
        return Err(ApiError::field("secure", calls::NO_ENGINE_TLS));
    }
    let mut policy = calls::sdp_policy(state.signal.policy(), tls.as_ref(), request.secure);
    if let Some(types) = &request.accept_types {
        policy.accept_types = types.clone();
    }
    if request.max_size.is_some() {
        policy.max_size = request.max_size;
    }
    if state.signal.engine().is_none() {
        return Err(ApiError::unavailable("no connection to msrpd"));
    }
    let local = state.signal.msrp_endpoint();
    let id = {
        let mut app = app::lock(&state.app);
        let id = app.sessions.new_id();
        let mut session = AppSession::new(
            id.clone(),
            caller.0.clone(),
            Mode::ThirdParty,
            Direction::Outbound,
            SessionState::Offered,
            now_ms(),
        );
        session.tag = request.tag.clone();
        app.sessions
            .insert(session)
            .map_err(|e| ApiError::unavailable(e.to_string()))?;
        id
    };
    let Some(remote) = request.remote_sdp else {
        let options = OfferOptions {
            setup,
            ..OfferOptions::default()
        };
        let offer = sdp::offer(&policy, &local, &options, &mut sdp::new_session_id);
        let mut app = app::lock(&state.app);
        if let Some(session) = app.sessions.by_id_mut(&id) {
            session.local_sdp = Some(String::from_utf8_lossy(&offer.sdp).into_owned());
            session.offer = Some(offer);
        }
        return Ok(id);
    };
    let answer = match sdp::answer(
        remote.as_bytes(),
        "application/sdp",
        &policy,
        &local,
        &mut sdp::new_session_id,
    ) {
        Ok(answer) => answer,
        Err(rejection) => {
            app::lock(&state.app).ended(&id, EndedBy::Local, &rejection.warning, None, now_ms());
            return Err(ApiError::field("remote_sdp", rejection.warning));
        }
    };
    {
        let mut app = app::lock(&state.app);
        if let Some(session) = app.sessions.by_id_mut(&id) {
            session.direction = Direction::Inbound;
            session.remote_sdp = Some(remote);
            session.local_sdp = Some(String::from_utf8_lossy(&answer.sdp).into_owned());
        }
    }
    let media = answer.media.clone();
    make_legs(state, &id, &media).await?;
    if let Some(session) = app::lock(&state.app).sessions.by_id_mut(&id) {
        session.answer = Some(answer);
    }
    Ok(id)
}

/// The engine sessions of negotiated media; the session is `connected`,
/// or, when the engine refuses, closed with the reason.
async fn make_legs(state: &RestState, id: &str, media: &[sdp::NegotiatedMedia]) -> Result<()> {
    let engine = state.signal.engine();
    match calls::create_sessions(engine.as_ref(), state.signal.policy(), media).await {
        Ok(sessions) => {
            let legs = media.iter().zip(sessions).map(|(m, s)| Leg::of(m, s)).collect();
            app::lock(&state.app).connected(id, legs, now_ms());
            Ok(())
        }
        Err(refusal) => {
            let reason = format!("msrpd refused the session: {}", refusal.reason);
            app::lock(&state.app).ended(id, EndedBy::System, &reason, None, now_ms());
            Err(match refusal.at_limit {
                true => ApiError::unavailable(reason),
                false => ApiError::new(StatusCode::BAD_GATEWAY, reason),
            })
        }
    }
}

/// 3PCC: the peer's answer to our offer; the MSRP session is made.
#[utoipa::path(put, path = "/v1/sessions/{id}/remote_sdp", tag = "sessions", request_body = RemoteSdp,
    params(("id" = String, Path, description = "session id")),
    responses(
        (status = 200, description = "connected", body = SessionView),
        (status = 400, description = "the SDP cannot be used", body = ErrorBody),
        (status = 404, description = "no such session", body = ErrorBody),
        (status = 409, description = "not a 3pcc session waiting for an answer", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn put_remote_sdp(
    State(state): State<RestState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<RemoteSdp>,
) -> Result<Json<SessionView>> {
    let offer = {
        let mut app = app::lock(&state.app);
        let session = app
            .sessions
            .get_mut(&caller.0, &id)
            .ok_or_else(|| ApiError::not_found("session", &id))?;
        if session.mode != Mode::ThirdParty || session.state != SessionState::Offered {
            return Err(wrong_state(
                &id,
                session.state,
                "a 3pcc session waiting for the remote SDP",
            ));
        }
        session.offer.clone()
    };
    let Some(offer) = offer else {
        return Err(ApiError::conflict("the session has no offer"));
    };
    let media = sdp::complete(&offer, request.sdp.as_bytes(), "application/sdp")
        .map_err(|rejection| ApiError::field("sdp", rejection.warning))?;
    {
        let mut app = app::lock(&state.app);
        match app.sessions.get_mut(&caller.0, &id) {
            Some(session) if session.state == SessionState::Offered => {
                session.remote_sdp = Some(request.sdp);
                session.offer = None;
                // Taken: a second PUT now finds no offer (409).
                session.state = SessionState::Calling;
            }
            Some(session) => return Err(wrong_state(&id, session.state, "offered")),
            None => return Err(ApiError::not_found("session", &id)),
        }
    }
    make_legs(&state, &id, &media).await?;
    Ok(Json(view(&state, &caller, &id)?))
}

/// Sessions of the application, oldest first.
#[utoipa::path(get, path = "/v1/sessions", tag = "sessions", params(ListParams),
    responses((status = 200, description = "one page", body = SessionList), (status = 400, description = "a filter is malformed", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn list_sessions(
    State(state): State<RestState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<SessionList>> {
    let filter_state = params
        .state
        .as_deref()
        .map(|name| {
            SessionState::parse(name)
                .ok_or_else(|| ApiError::field("state", format!("`{name}` is not a session state")))
        })
        .transpose()?;
    let limit = params.limit.unwrap_or(100);
    if limit == 0 || limit > state.settings.page_max {
        return Err(ApiError::field(
            "limit",
            format!("between 1 and {}", state.settings.page_max),
        ));
    }
    let query = ListQuery {
        state: filter_state,
        tag: params.tag,
        after: params.after,
        limit,
    };
    let app = app::lock(&state.app);
    let (page, next) = app.sessions.list(&caller.0, &query);
    Ok(Json(SessionList {
        sessions: page.into_iter().map(SessionView::of).collect(),
        next,
    }))
}

/// One session: state, paths, negotiated attributes, counters.
#[utoipa::path(get, path = "/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "session id")),
    responses((status = 200, description = "the session", body = SessionView), (status = 404, description = "no such session", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn get_session(
    State(state): State<RestState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SessionView>> {
    Ok(Json(view(&state, &caller, &id)?))
}

/// Ends a session: BYE (or CANCEL, or 480) in 1PCC; in 3PCC the MSRP
/// session is closed (the application ends its own signaling).
#[utoipa::path(delete, path = "/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "session id")),
    responses((status = 200, description = "ended", body = SessionView), (status = 404, description = "no such session", body = ErrorBody), (status = 409, description = "already closed", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn delete_session(
    State(state): State<RestState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SessionView>> {
    let (current, mode) = state_of(&state, &caller, &id)?;
    if current == SessionState::Closed {
        return Err(wrong_state(&id, current, "open"));
    }
    let reason = "ended by the application";
    match mode {
        Mode::FirstParty => {
            state
                .signal
                .app_hangup(&id, reason)
                .await
                .map_err(|e| ApiError::unavailable(e.to_string()))?;
            // A call not yet placed or already gone has nothing to hang up.
            app::lock(&state.app).ended(&id, EndedBy::Local, reason, None, now_ms());
        }
        Mode::ThirdParty => {
            let legs: Vec<String> = {
                let mut app = app::lock(&state.app);
                let legs = app
                    .sessions
                    .get(&caller.0, &id)
                    .map(|s| s.legs.iter().map(|l| l.engine_session.clone()).collect())
                    .unwrap_or_default();
                app.ended(&id, EndedBy::Local, reason, None, now_ms());
                legs
            };
            calls::close_sessions(state.signal.engine().as_ref(), &legs, reason).await;
        }
    }
    Ok(Json(view(&state, &caller, &id)?))
}

/// Answers an incoming session (1PCC): our SDP answer in a 200.
#[utoipa::path(post, path = "/v1/sessions/{id}/answer", tag = "sessions", request_body = AnswerRequest,
    params(("id" = String, Path, description = "session id")),
    responses(
        (status = 200, description = "answered (200 sent)", body = SessionView),
        (status = 404, description = "no such session", body = ErrorBody),
        (status = 409, description = "not incoming", body = ErrorBody),
        (status = 503, description = "the engine refused (the call was refused too)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn answer_session(
    State(state): State<RestState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<SessionView>> {
    // The body is optional: `{}` or nothing answers with our accept-types.
    let request: AnswerRequest = match body.is_empty() {
        true => AnswerRequest::default(),
        false => {
            let json = headers
                .get(axum::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| app::media_type(v) == "application/json");
            if !json {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "expected a body of Content-Type: application/json",
                ));
            }
            serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("the body: {e}")))?
        }
    };
    check_types(&request.accept_types)?;
    let (current, _) = state_of(&state, &caller, &id)?;
    if current != SessionState::Incoming {
        return Err(wrong_state(&id, current, "incoming"));
    }
    match state.signal.app_answer(&id, request.accept_types).await {
        Ok(()) => Ok(Json(view(&state, &caller, &id)?)),
        Err(CallError::Local(why)) => Err(ApiError::conflict(why)),
        Err(CallError::Failed { status, reason }) => Err(match status {
            503 => ApiError::unavailable(reason),
            488 => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("the offer is not acceptable: {reason}"),
            ),
            _ => ApiError::new(StatusCode::BAD_GATEWAY, reason),
        }),
        Err(CallError::Gone) => Err(ApiError::unavailable("msrp-signal is stopping")),
    }
}

/// Refuses an incoming session (1PCC) with a SIP status.
#[utoipa::path(post, path = "/v1/sessions/{id}/reject", tag = "sessions", request_body = RejectRequest,
    params(("id" = String, Path, description = "session id")),
    responses(
        (status = 200, description = "refused", body = SessionView),
        (status = 400, description = "status is not 300..=699", body = ErrorBody),
        (status = 404, description = "no such session", body = ErrorBody),
        (status = 409, description = "not incoming", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn reject_session(
    State(state): State<RestState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<RejectRequest>,
) -> Result<Json<SessionView>> {
    let status = request.status.unwrap_or(486);
    if !(300..=699).contains(&status) {
        return Err(ApiError::field("status", "a SIP final status is 300..=699"));
    }
    let reason = request
        .reason
        .unwrap_or_else(|| calls::reason_phrase(status).to_string());
    if reason.bytes().any(|b| b == b'\r' || b == b'\n') {
        return Err(ApiError::field("reason", "one line"));
    }
    let (current, _) = state_of(&state, &caller, &id)?;
    if current != SessionState::Incoming {
        return Err(wrong_state(&id, current, "incoming"));
    }
    state
        .signal
        .app_reject(&id, status, &reason)
        .await
        .map_err(|e| ApiError::conflict(e.to_string()))?;
    Ok(Json(view(&state, &caller, &id)?))
}
