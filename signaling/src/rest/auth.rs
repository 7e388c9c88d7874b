//! Who is asking: the bearer token's application, or `default` when no
//! token is configured (loopback only, `rest::start` makes sure).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};

use super::error::ApiError;
use super::RestState;

/// The application a request comes from.
pub struct Caller(pub Arc<str>);

impl FromRequestParts<RestState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &RestState) -> Result<Caller, ApiError> {
        if state.tokens.is_empty() {
            return Ok(Caller(Arc::from("default")));
        }
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "Authorization: Bearer TOKEN is required",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "Authorization must be `Bearer TOKEN`"))?;
        match state.tokens.app(token) {
            Some(app) => Ok(Caller(app.clone())),
            None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "the token is not valid")),
        }
    }
}

/// An `ApiJson<T>` body: JSON under `DefaultBodyLimit` (413 beyond), of
/// Content-Type application/json (415 otherwise). It is parsed straight
/// into `T`; only a body that does not parse is read again to name the
/// path of the bad field (`messages[2].text: ...`), so the common case
/// pays for no path tracking.
pub struct ApiJson<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| crate::app::is_media(v, "application/json"));
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected a body of Content-Type: application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))?;
        read_json(&bytes).map(ApiJson)
    }
}

/// An `ApiJson` body's bytes as `T`, or the 400 naming the bad field.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match serde_json::from_slice(bytes) {
        Ok(value) => Ok(value),
        Err(error) => {
            let mut reader = serde_json::Deserializer::from_slice(bytes);
            let detail = match serde_path_to_error::deserialize::<_, T>(&mut reader) {
                Err(located)
                    if !located.path().to_string().is_empty() && located.path().to_string() != "." =>
                {
                    format!("the body: {}: {}", located.path(), located.inner())
                }
                _ => format!("the body: {error}"),
            };
            Err(ApiError::bad_request(detail))
        }
    }
}

/// A query string, refused in our error shape.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(rejection.into()),
        }
    }
}
