//! Between a call and the engine: the SDP offer/answer of each call, the
//! engine sessions it creates, and what the core loop is told back. These
//! run as tasks so that the core loop never waits on the engine.

use std::time::Duration;

use msrp_engine::control::{AsyncClient, ClientError, UpdateRequest};

use super::config::CallPolicy;
use crate::sdp::{self, Answer, LocalEndpoint, NegotiatedMedia, Policy, TlsEndpoint};
use crate::sip::{Body, CallId, ReofferId};

/// How long one engine command may take before the call is refused.
pub const ENGINE_COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// What a call task concluded.
#[derive(Debug)]
pub enum Decision {
    /// Answer the INVITE with `answer`; `sessions` exist in the engine.
    Accept {
        call: CallId,
        answer: Box<Answer>,
        sessions: Vec<String>,
    },
    /// Refuse it: 488 for SDP, 500 or 503 for the engine.
    Reject {
        call: CallId,
        status: u16,
        reason: String,
        warning: String,
        retry_after: Option<u32>,
    },
    /// The engine took (or refused) a re-offer's new peer limits.
    Reanswered {
        call: CallId,
        reoffer: ReofferId,
        result: Result<Box<Answer>, String>,
    },
    /// Our offer was answered (an outbound call, or an offer-less INVITE's
    /// ACK): the engine sessions exist, or the call must end.
    Completed {
        call: CallId,
        result: Result<(Vec<NegotiatedMedia>, Vec<String>), String>,
    },
}

/// The SDP policy of a call: `tls`, the engine's MSRP-over-TLS side
/// (TCP/TLS/MSRP is taken only with it); `secure`, the dialog is sips: or
/// over TLS (RFC 4975 14: its MSRP is TCP/TLS/MSRP only).
pub fn sdp_policy(policy: &CallPolicy, tls: Option<&TlsEndpoint>, secure: bool) -> Policy {
    Policy {
        accept_types: policy.accept_types.clone(),
        accept_wrapped_types: policy.accept_wrapped_types.clone(),
        max_size: policy.max_size,
        sessions_per_dialog_max: policy.sessions_per_dialog_max,
        allow_tls: tls.is_some(),
        tls: tls.cloned(),
        secure,
    }
}

/// Why a secure dialog cannot have its MSRP: the engine has no TLS.
pub const NO_ENGINE_TLS: &str =
    "a secure (sips: or TLS) dialog needs MSRP over TLS (RFC 4975 14), and the msrpd of this server has no --tls-listen";

/// An incoming INVITE with an offer: answer it, create its sessions.
pub async fn answer_offer(
    engine: Option<AsyncClient>,
    policy: CallPolicy,
    local: LocalEndpoint,
    (tls, secure): (Option<TlsEndpoint>, bool),
    call: CallId,
    offer: Body,
) -> Decision {
    let answer = match sdp::answer(
        &offer.bytes,
        &offer.content_type,
        &sdp_policy(&policy, tls.as_ref(), secure),
        &local,
        &mut sdp::new_session_id,
    ) {
        Ok(answer) => answer,
        Err(rejection) => {
            return Decision::Reject {
                call,
                status: rejection.status,
                reason: reason_phrase(rejection.status).into(),
                warning: rejection.warning,
                retry_after: None,
            }
        }
    };
    match create_sessions(engine.as_ref(), &policy, &answer.media).await {
        Ok(sessions) => Decision::Accept {
            call,
            answer: Box::new(answer),
            sessions,
        },
        Err(refusal) => refusal.into_decision(call),
    }
}

/// An engine refusal: 503 with Retry-After when the engine is at a limit
/// or gone, 500 otherwise (the rule for a failed create).
pub struct EngineRefusal {
    pub at_limit: bool,
    pub reason: String,
}

impl EngineRefusal {
    pub fn into_decision(self, call: CallId) -> Decision {
        let (status, retry_after) = if self.at_limit {
            (503, Some(5))
        } else {
            (500, None)
        };
        Decision::Reject {
            call,
            status,
            reason: reason_phrase(status).into(),
            warning: format!("the media engine refused the session: {}", self.reason),
            retry_after,
        }
    }
}

/// Creates one engine session per negotiated MSRP media line; on any
/// failure the ones already made are closed again.
pub async fn create_sessions(
    engine: Option<&AsyncClient>,
    policy: &CallPolicy,
    media: &[NegotiatedMedia],
) -> Result<Vec<String>, EngineRefusal> {
    let Some(engine) = engine else {
        return Err(EngineRefusal {
            at_limit: true,
            reason: "no connection to msrpd".into(),
        });
    };
    let mut created = Vec::new();
    for line in media {
        let mut descriptor = line.descriptor();
        descriptor.tag = Some(policy.tag.clone());
        descriptor.hold_reports =
            policy.check_pushed_files && crate::app::received::expected_of(line).is_some();
        let result = tokio::time::timeout(ENGINE_COMMAND_TIMEOUT, engine.create_session(descriptor)).await;
        match result {
            Ok(Ok(session)) => created.push(session.session_id),
            Ok(Err(error)) => {
                close_sessions(Some(engine), &created, "the call's other session failed").await;
                return Err(refusal(&error));
            }
            Err(_) => {
                close_sessions(Some(engine), &created, "the call's other session failed").await;
                return Err(EngineRefusal {
                    at_limit: true,
                    reason: "msrpd did not answer in time".into(),
                });
            }
        }
    }
    Ok(created)
}

fn refusal(error: &ClientError) -> EngineRefusal {
    let reason = error.to_string();
    // The engine says "... max ..." / "limit" / "full" when a bound is hit.
    let lower = reason.to_ascii_lowercase();
    let at_limit = matches!(error, ClientError::Closed | ClientError::Io(_))
        || lower.contains("max")
        || lower.contains("limit")
        || lower.contains("full");
    EngineRefusal { at_limit, reason }
}

/// Tells the engine what the peer takes after a re-offer, session by
/// session; the first refusal is the error.
pub async fn update_sessions(
    engine: Option<&AsyncClient>,
    updates: Vec<UpdateRequest>,
) -> Result<(), String> {
    let engine = engine.ok_or("no connection to msrpd")?;
    for update in updates {
        match tokio::time::timeout(ENGINE_COMMAND_TIMEOUT, engine.update_session(update)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(error.to_string()),
            Err(_) => return Err("msrpd did not answer in time".into()),
        }
    }
    Ok(())
}

pub async fn close_sessions(engine: Option<&AsyncClient>, sessions: &[String], reason: &str) {
    let Some(engine) = engine else { return };
    for session in sessions {
        match tokio::time::timeout(
            ENGINE_COMMAND_TIMEOUT,
            engine.close_session(session, Some(reason)),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::debug!(%session, %error, "close_session"),
            Err(_) => tracing::warn!(%session, "msrpd did not answer close_session in time"),
        }
    }
}

pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        415 => "Unsupported Media Type",
        480 => "Temporarily Unavailable",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        _ => "Refused",
    }
}
