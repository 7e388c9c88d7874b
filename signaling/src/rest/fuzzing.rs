//! The JSON request bodies of the REST API, read as the handlers read them
//! (`auth::read_json`, `ApiJson`'s parser) and then checked with the
//! functions the handlers call before they touch any state: `check_types`
//! and `setup` (`POST /v1/sessions`), `check_content_type`, base64 and
//! `cpim::build` (`POST .../messages`, `.../messages/batch`),
//! `transfers::spec` (`POST /v1/transfers`), the webhook URL's
//! `target::parse` (`POST /v1/webhooks`), and the SIP readers the 1pcc path
//! gives `to` and `from`. The XMS XML bodies do not exist yet.
//!
//! Input: byte 0 picks the body type (modulo their number), the rest is
//! the JSON.
//!
//! Checks: nothing panics; a refusal is a 400 with a detail.

use base64::Engine;

use super::auth::read_json;
use super::error::ApiError;
use super::messages::check_content_type;
use super::sessions::{check_types, setup};
use super::transfers::{spec, TransferRequest};
use super::types::{
    AnswerRequest, BatchRequest, CreateSession, FileRequest, MessageRequest, RejectRequest, RemoteSdp,
};
use super::webhooks::{target, WebhookSpec};
use crate::app::cpim;
use crate::sip::{NameAddr, Uri};

fn refused(error: ApiError) {
    assert_eq!(error.status.as_u16(), 400, "{}", error.detail);
    assert!(!error.detail.is_empty());
}

fn message(message: MessageRequest) -> Result<(), ApiError> {
    let content_type = message.content_type.unwrap_or_else(|| "text/plain".into());
    check_content_type(&content_type).map_err(ApiError::bad_request)?;
    let body = match (message.text, message.body) {
        (Some(text), None) => text.into_bytes(),
        (None, Some(body)) => base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|e| ApiError::field("body", e))?,
        _ => return Ok(()),
    };
    if let Some(wrap) = message.cpim {
        let wrapped = cpim::build(&wrap, &content_type, &body, 1_700_000_000_000, "fuzz0000")
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        assert!(wrapped.len() >= body.len());
    }
    Ok(())
}

fn create(request: CreateSession) -> Result<(), ApiError> {
    check_types(&request.accept_types)?;
    setup(request.setup.as_deref())?;
    if let Some(to) = &request.to {
        let _ = Uri::parse(to);
    }
    if let Some(from) = &request.from {
        let _ = NameAddr::parse(from);
    }
    Ok(())
}

fn check<T: serde::de::DeserializeOwned>(json: &[u8], then: impl FnOnce(T) -> Result<(), ApiError>) {
    match read_json::<T>(json) {
        Ok(value) => {
            if let Err(e) = then(value) {
                refused(e);
            }
        }
        Err(e) => refused(e),
    }
}

/// The `rest` fuzz target.
pub fn rest(input: &[u8]) {
    let Some((&which, json)) = input.split_first() else {
        return;
    };
    match which % 9 {
        0 => check::<CreateSession>(json, create),
        1 => check::<MessageRequest>(json, message),
        2 => check::<BatchRequest>(json, |batch| {
            for item in batch.messages {
                let (_, m) = item.split();
                message(m)?;
            }
            Ok(())
        }),
        3 => check::<TransferRequest>(json, |request| spec(request).map(|_| ())),
        4 => check::<WebhookSpec>(json, |webhook| {
            if let Err(e) = target::parse(&webhook.url) {
                assert!(!e.to_string().is_empty());
            }
            Ok(())
        }),
        5 => check::<RejectRequest>(json, |_| Ok(())),
        6 => check::<RemoteSdp>(json, |_| Ok(())),
        7 => check::<FileRequest>(json, |request| {
            if let Some(content_type) = &request.content_type {
                check_content_type(content_type).map_err(ApiError::bad_request)?;
            }
            Ok(())
        }),
        _ => check::<AnswerRequest>(json, |request| check_types(&request.accept_types)),
    }
}
