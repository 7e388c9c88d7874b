//! A `create_session` descriptor (what SDP offer/answer left, RFC 4975 8)
//! turned into the core's [`SessionConfig`], with every refusal typed: our
//! URI and session-id (given, or minted), the peer's path, the settings the
//! descriptor may change, and the URIs the engine cannot serve yet.

use bytes::Bytes;

use crate::control::{FailureReportName, SessionDescriptor, SessionDirection, SessionRole};
use crate::proto::{UriError, BASE62};
use crate::{Direction, FailureReport, MsrpUri, Role, SessionConfig, SessionSettings, SuccessReport};

/// Why a descriptor cannot become a session.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DescriptorError {
    #[error("no randomness for a session-id: {0}")]
    NoRandomness(getrandom::Error),
    #[error("local_uri {uri:?}: {error}")]
    BadLocalUri { uri: String, error: UriError },
    #[error("local_uri {0:?} has no session-id")]
    NoSessionId(String),
    #[error("session_id differs from the session-id of local_uri {0:?}")]
    SessionIdMismatch(String),
    #[error("session-id {session_id:?} does not make a valid MSRP URI ({uri}): {error}")]
    BadSessionId {
        session_id: String,
        uri: String,
        error: UriError,
    },
    #[error("remote_path is empty: it is the peer's a=path")]
    EmptyRemotePath,
    #[error("remote_path {uri:?}: {error}")]
    BadRemotePath { uri: String, error: UriError },
    #[error(
        "chunk_bytes {0} is outside {min}..={max}",
        min = SessionSettings::CHUNK_BYTES_MIN,
        max = SessionSettings::CHUNK_BYTES_MAX
    )]
    ChunkBytes(usize),
    /// RFC 4975 14: an msrps URI is reached over TLS only. Without
    /// `--tls-listen` the engine refuses the session rather than carry it
    /// in the clear.
    #[error("{0} is an msrps: URI, which must be carried over TLS; this engine has no --tls-listen and refuses the session")]
    NeedsTls(String),
    /// RFC 4975 14: one connection carries the session, so its two ends
    /// agree on the scheme.
    #[error("local_uri {local} and the first remote_path URI {remote} differ in scheme (msrp: or msrps:)")]
    SchemeMismatch { local: String, remote: String },
    #[error(transparent)]
    Fingerprint(#[from] crate::tls::FingerprintError),
}

/// 22 base62 characters: about 130 random bits from the OS.
fn mint_session_id() -> Result<String, DescriptorError> {
    let mut random = [0u8; 22];
    getrandom::fill(&mut random).map_err(DescriptorError::NoRandomness)?;
    // 256 = 4 * 62 + 8: rejecting nothing keeps a slight bias towards the
    // first 8 characters, which costs under 0.2 bits of the 130.
    Ok(random
        .iter()
        .map(|b| BASE62[(*b % 62) as usize] as char)
        .collect())
}

/// Our URI and session-id: the descriptor's `local_uri` as it is, or one
/// built from `authority` (`--advertise`) and the session-id (minted if
/// absent).
fn local_uri(
    authority: &str,
    secure: bool,
    d: &SessionDescriptor,
) -> Result<(String, MsrpUri), DescriptorError> {
    if let Some(local) = &d.local_uri {
        let uri =
            MsrpUri::parse(Bytes::from(local.clone())).map_err(|error| DescriptorError::BadLocalUri {
                uri: local.clone(),
                error,
            })?;
        let session_id = uri
            .session_id()
            .ok_or_else(|| DescriptorError::NoSessionId(local.clone()))?
            .to_string();
        if d.session_id.as_ref().is_some_and(|id| *id != session_id) {
            return Err(DescriptorError::SessionIdMismatch(local.clone()));
        }
        return Ok((session_id, uri));
    }
    let session_id = match &d.session_id {
        Some(session_id) => session_id.clone(),
        None => mint_session_id()?,
    };
    let scheme = if secure { "msrps" } else { "msrp" };
    let local = format!("{scheme}://{authority}/{session_id};tcp");
    let uri = MsrpUri::parse(Bytes::from(local.clone())).map_err(|error| DescriptorError::BadSessionId {
        session_id: session_id.clone(),
        uri: local,
        error,
    })?;
    Ok((session_id, uri))
}

/// The session-id and the core's configuration of a descriptor, with the
/// engine's default `settings` where the descriptor sets none. A minted
/// local URI takes the scheme of the peer's (RFC 4975 14: an msrps peer
/// gets an msrps session, on `tls_authority`, `--tls-advertise`).
pub(crate) fn session_config(
    authority: &str,
    tls_authority: Option<&str>,
    mut settings: SessionSettings,
    d: &SessionDescriptor,
) -> Result<(String, SessionConfig), DescriptorError> {
    let Some(first) = d.remote_path.first() else {
        return Err(DescriptorError::EmptyRemotePath);
    };
    let secure = first.get(..6).is_some_and(|s| s.eq_ignore_ascii_case("msrps:"));
    let (session_id, local_uri) = match (secure, tls_authority) {
        (true, Some(tls)) => local_uri(tls, true, d)?,
        (true, None) => return Err(DescriptorError::NeedsTls(first.clone())),
        (false, _) => local_uri(authority, false, d)?,
    };
    let remote_path = d
        .remote_path
        .iter()
        .map(|uri| {
            MsrpUri::parse(Bytes::from(uri.clone())).map_err(|error| DescriptorError::BadRemotePath {
                uri: uri.clone(),
                error,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if local_uri.is_secure() && tls_authority.is_none() {
        return Err(DescriptorError::NeedsTls(local_uri.to_string()));
    }
    if local_uri.is_secure() != remote_path[0].is_secure() {
        return Err(DescriptorError::SchemeMismatch {
            local: local_uri.to_string(),
            remote: remote_path[0].to_string(),
        });
    }
    if let Some(fingerprint) = &d.fingerprint {
        crate::tls::Fingerprint::parse(fingerprint)?;
    }
    if let Some(chunk) = d.chunk_bytes {
        if !SessionSettings::chunk_bytes_allowed(chunk as u64) {
            return Err(DescriptorError::ChunkBytes(chunk));
        }
        settings.chunk_bytes = chunk;
        settings.inflight_bytes_max = settings.inflight_bytes_max.max(chunk as u64);
    }
    if let Some(yes) = d.success_report {
        settings.success_report = success_report(yes);
    }
    if let Some(name) = d.failure_report {
        settings.failure_report = failure_report(name);
    }
    settings.hold_reports = d.hold_reports;
    let config = SessionConfig {
        local_uri,
        remote_path,
        role: match d.role {
            SessionRole::Active => Role::Active,
            SessionRole::Passive => Role::Passive,
        },
        direction: match d.direction {
            SessionDirection::Sendrecv => Direction::SendRecv,
            SessionDirection::Sendonly => Direction::SendOnly,
            SessionDirection::Recvonly => Direction::RecvOnly,
            SessionDirection::Inactive => Direction::Inactive,
        },
        accept_types: d.accept_types.clone(),
        accept_wrapped_types: d.accept_wrapped_types.clone(),
        max_size: d.max_size,
        remote_accept_types: d.remote_accept_types.clone(),
        remote_max_size: d.remote_max_size,
        settings,
    };
    Ok((session_id, config))
}

pub(crate) fn success_report(yes: bool) -> SuccessReport {
    match yes {
        true => SuccessReport::Yes,
        false => SuccessReport::No,
    }
}

pub(crate) fn failure_report(name: FailureReportName) -> FailureReport {
    match name {
        FailureReportName::Yes => FailureReport::Yes,
        FailureReportName::No => FailureReport::No,
        FailureReportName::Partial => FailureReport::Partial,
    }
}
