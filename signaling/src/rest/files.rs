//! `POST /v1/sessions/{id}/files`: a file on this server (JSON `path`), or
//! the request body itself, streamed to the upload directory and never
//! held whole in memory; the engine sends it in chunks, with `progress`
//! events, and removes it once delivered when asked (`delete_after`; an
//! upload always). The RFC 5547 file-selector values (name, type, size,
//! sha-1) are computed here and checked against any the application gave.

use std::path::{Path as FsPath, PathBuf};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::auth::{ApiQuery, Caller};
use super::error::{ApiError, ErrorBody};
use super::messages::connected_leg;
use super::types::{Accepted, FileRequest, FileSelectorView, UploadParams};
use super::RestState;
use crate::app::{self, cpim::MessageClass};
use crate::sdp::FileHash;
use msrp_engine::control::{FailureReportName, SendRequest};

/// Hex digits of a given hash, colons and `sha-1:` dropped, upper-cased.
fn normalise_hash(hash: &str) -> String {
    let hash = hash.trim();
    let hash = hash
        .strip_prefix("sha-1:")
        .or_else(|| hash.strip_prefix("SHA-1:"))
        .unwrap_or(hash);
    hash.chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_uppercase()
}

/// The file's size and sha-1, read off the disk in a blocking task.
async fn digest(path: PathBuf) -> Result<(u64, [u8; 20]), ApiError> {
    crate::digest::sha1_of_file_async(path)
        .await
        .map_err(|e| ApiError::field("path", e))
}

/// Sends a file: JSON `{path, ...}` names one on this server; any other
/// Content-Type makes the body the file (query: `content_type`, `name`,
/// `report`).
#[utoipa::path(post, path = "/v1/sessions/{id}/files", tag = "messages",
    request_body(content(
        (FileRequest = "application/json"),
        (Vec<u8> = "application/octet-stream"),
    )),
    params(("id" = String, Path, description = "session id"), UploadParams),
    responses(
        (status = 202, description = "the engine is sending it", body = Accepted),
        (status = 400, description = "the path or a selector value is wrong", body = ErrorBody),
        (status = 404, description = "no such session", body = ErrorBody),
        (status = 409, description = "the session is not connected", body = ErrorBody),
        (status = 413, description = "the upload is over the bound", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn post_file(
    State(state): State<RestState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<UploadParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let request_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    let engine_session = connected_leg(&app::lock(&state.app), &caller, &id)?;
    // An upload is measured as it streams; a server-side file is read.
    let (path, name, content_type, delete_after, report, expected, measured) =
        if app::media_type(&request_type) == "application/json" {
            let bytes = axum::body::to_bytes(body, state.settings.body_max)
                .await
                .map_err(|e| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()))?;
            let request: FileRequest = serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::bad_request(format!("the body: {e}")))?;
            let path = std::fs::canonicalize(&request.path)
                .map_err(|e| ApiError::field("path", format!("{}: {e}", request.path)))?;
            if !path.is_file() {
                return Err(ApiError::field(
                    "path",
                    format!("{} is not a file", path.display()),
                ));
            }
            may_send(&state, &path)?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let content_type = request
                .content_type
                .unwrap_or_else(|| "application/octet-stream".into());
            (
                path,
                name,
                content_type,
                request.delete_after,
                request.report.unwrap_or_default(),
                request.file_selector,
                None,
            )
        } else {
            let (path, measured) = upload(&state, body).await?;
            let content_type = params.content_type.unwrap_or(request_type);
            let name = params.name.unwrap_or_else(|| "upload".into());
            (
                path,
                name,
                content_type,
                true,
                params.report.unwrap_or_default(),
                None,
                Some(measured),
            )
        };
    let cleanup = |path: &FsPath| {
        if delete_after && path.starts_with(&state.settings.upload_dir) {
            let _ = std::fs::remove_file(path);
        }
    };
    let (size, sha1) = match measured {
        Some(measured) => measured,
        None => digest(path.clone()).await?,
    };
    let selector = FileSelectorView {
        name: expected.as_ref().and_then(|e| e.name.clone()).unwrap_or(name),
        content_type: content_type.clone(),
        size,
        hash: {
            let hash = FileHash::sha1_digest(sha1);
            format!("{}:{}", hash.algorithm, hash.value)
        },
    };
    if let Some(expected) = &expected {
        if expected.size.is_some_and(|want| want != size) {
            return Err(ApiError::field(
                "file_selector.size",
                format!("the file has {size} octets"),
            ));
        }
        if expected
            .hash
            .as_deref()
            .is_some_and(|want| normalise_hash(want) != normalise_hash(&selector.hash))
        {
            return Err(ApiError::field(
                "file_selector.hash",
                format!("the file's hash is {}", selector.hash),
            ));
        }
    }
    let mut request = SendRequest::new(&engine_session, &content_type);
    request.file = Some(path.to_string_lossy().into_owned());
    request.delete_after = delete_after;
    request.success_report = Some(report.success());
    request.failure_report = Some(match report.failure() {
        true => FailureReportName::Yes,
        false => FailureReportName::No,
    });
    let Some(engine) = state.signal.engine() else {
        cleanup(&path);
        return Err(ApiError::unavailable("no connection to msrpd"));
    };
    let number = match engine.send(request, &[]).await {
        Ok(number) => number,
        Err(error) => {
            cleanup(&path);
            return Err(ApiError::engine(&error));
        }
    };
    app::lock(&state.app).sent(&id, number, size, MessageClass::Content, report.success());
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            id: number.to_string(),
            session: id,
            size,
            imdn_message_id: None,
            file_selector: Some(selector),
        }),
    ))
}

/// A server-side path is sent only from `--files-dir` (the canonical
/// path under one of them: no `..` or link leads out); with none
/// configured, only when no tokens are (one trusted application on
/// loopback) — another application must not read or, with
/// `delete_after`, remove whatever msrp-signal can.
fn may_send(state: &RestState, path: &FsPath) -> Result<(), ApiError> {
    let dirs = &state.settings.files_dirs;
    if dirs.is_empty() {
        return match state.tokens.is_empty() {
            true => Ok(()),
            false => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "server-side paths are refused with tokens configured until --files-dir names where they may be",
            )),
        };
    }
    let inside = dirs
        .iter()
        .filter_map(|dir| std::fs::canonicalize(dir).ok())
        .any(|dir| path.starts_with(dir));
    match inside {
        true => Ok(()),
        false => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("{} is not under a --files-dir", path.display()),
        )),
    }
}

/// Streams the body to a new file of the upload directory, its size and
/// sha-1 taken on the way; over `upload_max` is 413 and the partial file
/// is removed.
async fn upload(state: &RestState, body: Body) -> Result<(PathBuf, (u64, [u8; 20])), ApiError> {
    let path = state
        .settings
        .upload_dir
        .join(format!("upload-{:016x}", fastrand::u64(..)));
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| ApiError::internal(format!("upload file {}: {e}", path.display())))?;
    let mut stream = body.into_data_stream();
    let mut written = 0u64;
    let mut hasher = sha1_smol::Sha1::new();
    let result = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ApiError::bad_request(format!("the upload broke off: {e}")))?;
            written += chunk.len() as u64;
            if written > state.settings.upload_max {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("an upload is at most {} octets", state.settings.upload_max),
                ));
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| ApiError::unavailable(format!("writing the upload: {e}")))?;
        }
        file.flush()
            .await
            .map_err(|e| ApiError::unavailable(format!("writing the upload: {e}")))
    }
    .await;
    if let Err(error) = result {
        drop(file);
        let _ = tokio::fs::remove_file(&path).await;
        return Err(error);
    }
    Ok((path, (written, hasher.digest().bytes())))
}
