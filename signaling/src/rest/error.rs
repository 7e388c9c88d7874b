//! Every refusal is JSON `{error, detail}` with its status: 400 naming the
//! field, 401/403 for credentials, 404 for what this application cannot
//! see, 409 for the wrong state, 413 for a body over its bound, 503 with
//! Retry-After when the engine or a table is at its limit.

use axum::extract::rejection::QueryRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A short, stable name: `not_found`, `conflict`, `bad_request`,
    /// `unauthorized`, `forbidden`, `too_large`, `unavailable`, `internal`.
    pub error: &'static str,
    /// What exactly, in words.
    pub detail: String,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            detail: detail.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 400 naming the field.
    pub fn field(field: &str, problem: impl std::fmt::Display) -> ApiError {
        ApiError::bad_request(format!("{field}: {problem}"))
    }

    pub fn not_found(what: &str, id: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, format!("no {what} `{id}`"))
    }

    pub fn conflict(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, detail)
    }

    /// 503 with Retry-After: the engine, or one of our tables, is full.
    pub fn unavailable(detail: impl Into<String>) -> ApiError {
        ApiError {
            retry_after: Some(1),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, detail)
        }
    }

    pub fn internal(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, detail)
    }

    pub fn name(&self) -> &'static str {
        match self.status {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::CONFLICT => "conflict",
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            StatusCode::BAD_GATEWAY => "bad_gateway",
            _ if self.status.is_client_error() => "bad_request",
            _ => "internal",
        }
    }

    /// The engine refused or is gone: at a limit (or away) is 503, else
    /// the engine's words as a 400 (it refused what it was asked).
    pub fn engine(error: &msrp_engine::control::ClientError) -> ApiError {
        use msrp_engine::control::ClientError;
        let text = error.to_string();
        let lower = text.to_ascii_lowercase();
        match error {
            ClientError::Closed | ClientError::Io(_) => ApiError::unavailable(format!("msrpd: {text}")),
            _ if lower.contains("max")
                || lower.contains("limit")
                || lower.contains("full")
                || lower.contains("busy") =>
            {
                ApiError::unavailable(format!("msrpd is at a limit: {text}"))
            }
            _ if lower.contains("unknown session") || lower.contains("no session") => {
                ApiError::conflict(format!("msrpd no longer has the session: {text}"))
            }
            _ => ApiError::new(StatusCode::BAD_GATEWAY, format!("msrpd refused: {text}")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.name(),
            detail: self.detail,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::bad_request(rejection.body_text())
    }
}
