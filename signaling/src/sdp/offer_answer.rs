//! SDP offer/answer for `m=message` (RFC 3264, RFC 4975 8, RFC 6135, RFC 5547).
//!
//! Sans-IO: the session ids we put in our `a=path` come from the caller's
//! `session_ids` function ([`new_session_id`] in production, a counter in
//! tests); nothing here reads a clock or a socket.
//!
//! Who connects (RFC 6135 4.2, RFC 4145 4, MSRP-DIGEST 6.2):
//!
//! | offer `a=setup`            | our answer | who connects |
//! |----------------------------|------------|--------------|
//! | absent / holdconn (ignored, RFC 6135 4.2.1) | passive | offerer (RFC 4975 5.4 default, RFC 4145 4 "active" default for offers) |
//! | actpass                    | passive    | offerer (RFC 6135 4.2.2: SHOULD pick passive when not behind NAT) |
//! | active                     | passive    | offerer (RFC 4145 4.1) |
//! | passive (forbidden by RFC 6135 4.2.2, legal in RFC 4145) | active, m= port 9 | we do |

use bytes::Bytes;
use sdp_types::{Connection, Media, Origin, Session, Time};
use thiserror::Error;

use super::file_attrs::FileAttributes;
use super::media::{Direction, MediaError, MsrpMedia, MsrpTransport, Setup};
use super::multipart::{find_sdp, MultipartError};

/// The engine's advertised MSRP listening address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalEndpoint {
    /// An IPv4 address, an IPv6 address (brackets optional) or a host name.
    pub host: String,
    pub port: u16,
}

/// The engine's MSRP-over-TLS side (`msrpd --tls-listen`): the authority
/// of its msrps URIs (`--tls-advertise`) and its certificate's fingerprint
/// for our `a=fingerprint` (RFC 4572 5, RFC 8122 5: `sha-256 AB:CD:...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsEndpoint {
    pub host: String,
    pub port: u16,
    pub fingerprint: String,
}

impl TlsEndpoint {
    fn authority(&self) -> LocalEndpoint {
        LocalEndpoint {
            host: self.host.clone(),
            port: self.port,
        }
    }
}

/// What we accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// What we take as the root body, e.g. `["text/plain", "message/cpim", "*"]`.
    pub accept_types: Vec<String>,
    pub accept_wrapped_types: Vec<String>,
    /// Our `a=max-size` (RFC 4975 8.6).
    pub max_size: Option<u64>,
    /// More MSRP m= lines than this in one offer is a 488.
    pub sessions_per_dialog_max: usize,
    /// `TCP/TLS/MSRP` is refused while false.
    pub allow_tls: bool,
    /// Where our msrps paths point and our fingerprint; `None` puts them
    /// on the plain endpoint without `a=fingerprint`.
    pub tls: Option<TlsEndpoint>,
    /// The dialog is secure (sips:, or over TLS): RFC 4975 14, its MSRP
    /// is `TCP/TLS/MSRP` only, and our offers are.
    pub secure: bool,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            accept_types: vec!["text/plain".into(), "message/cpim".into(), "*".into()],
            accept_wrapped_types: vec!["*".into()],
            max_size: None,
            sessions_per_dialog_max: 4,
            allow_tls: false,
            tls: None,
            secure: false,
        }
    }
}

impl Policy {
    /// The proto, endpoint and `a=fingerprint` of an m= line of ours.
    fn media_endpoint(
        &self,
        transport: MsrpTransport,
        local: &LocalEndpoint,
    ) -> (LocalEndpoint, Option<String>) {
        match (transport, &self.tls) {
            (MsrpTransport::Tls, Some(tls)) => (tls.authority(), Some(tls.fingerprint.clone())),
            _ => (local.clone(), None),
        }
    }

    /// Why an offered proto is refused, if it is.
    fn refuses(&self, transport: MsrpTransport) -> Option<&'static str> {
        match transport {
            MsrpTransport::Tls if !self.allow_tls => {
                Some("TCP/TLS/MSRP needs MSRP over TLS, and the msrpd of this server has no --tls-listen")
            }
            MsrpTransport::Tcp if self.secure => Some(
                "TCP/MSRP in a secure (sips: or TLS) dialog: its MSRP must be TCP/TLS/MSRP (RFC 4975 14)",
            ),
            _ => None,
        }
    }
}

/// The refusal of a whole offer (or answer): a SIP status and the text of
/// its Warning header.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{status} {warning}")]
pub struct Rejection {
    pub status: u16,
    pub warning: String,
}

impl Rejection {
    fn new(status: u16, warning: impl Into<String>) -> Rejection {
        Rejection {
            status,
            warning: warning.into(),
        }
    }

    fn from_multipart(error: MultipartError) -> Rejection {
        match error {
            // RFC 3261 21.4.13: a body type we cannot read.
            MultipartError::NotSdp(_) => Rejection::new(415, error.to_string()),
            _ => Rejection::new(400, error.to_string()),
        }
    }
}

/// One MSRP media line both sides agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedMedia {
    /// The m= line index in the SDP.
    pub index: usize,
    pub local: MsrpMedia,
    pub remote: MsrpMedia,
    /// The session-id in our `a=path` URI.
    pub local_session_id: String,
    /// We open the connection (the active side, RFC 6135 4.2).
    pub we_connect: bool,
}

/// Our answer to an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The SDP text we send.
    pub sdp: Bytes,
    /// The accepted MSRP media; rejected lines (port 0) have no entry.
    pub media: Vec<NegotiatedMedia>,
    /// Our o= sess-id, kept across re-answers (RFC 3264 8).
    pub origin_session_id: String,
    /// Our o= sess-version, bumped when a re-answer changes (RFC 3264 8).
    pub session_version: u64,
}

/// Options of an offer we make.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfferOptions {
    pub direction: Direction,
    /// RFC 5547 push: `sendonly` plus a selector (name/type/size/hash) and a
    /// unique `file-transfer-id`.
    pub file: Option<FileAttributes>,
    /// Overrides `Policy::accept_types` for this offer.
    pub accept_types: Option<Vec<String>>,
    /// Overrides `Policy::max_size` for this offer.
    pub max_size: Option<u64>,
    /// Our `a=setup` (RFC 6135 4.2.2); `actpass` when absent.
    pub setup: Option<Setup>,
}

/// An offer we made (offer-less INVITE, or an outbound INVITE as UAC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub sdp: Bytes,
    /// Our m= lines, in order.
    pub media: Vec<MsrpMedia>,
    /// The session-id in each m= line's `a=path`.
    pub local_session_ids: Vec<String>,
    pub origin_session_id: String,
    pub session_version: u64,
}

/// A session-id for our `a=path`: 128 random bits (RFC 4975 14.1 asks for at
/// least 80, unguessable) as 22 URL-safe base62 characters.
pub fn try_new_session_id() -> Result<String, getrandom::Error> {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random)?;
    Ok(base62(u128::from_be_bytes(random)))
}

/// [`try_new_session_id`]; the OS random source failing is an environment
/// failure, not bad input.
pub fn new_session_id() -> String {
    #[allow(clippy::expect_used)]
    try_new_session_id().expect("the OS random source failed")
}

fn base62(mut value: u128) -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = [b'0'; 22];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    out.iter().map(|b| *b as char).collect()
}

/// An o= sess-id is digits (RFC 4566 5.2): 63 bits of a drawn session id.
fn origin_id(draw: &str) -> String {
    let digest = sha1_smol::Sha1::from(draw.as_bytes()).digest().bytes();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) >> 1).to_string()
}

fn bare_host(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

fn addr_type(host: &str) -> &'static str {
    if bare_host(host).contains(':') {
        "IP6"
    } else {
        "IP4"
    }
}

/// RFC 4975 9: `msrp://host:port/session-id;tcp`, IPv6 in brackets (RFC 3986 3.2.2).
fn path_uri(transport: MsrpTransport, local: &LocalEndpoint, session_id: &str) -> String {
    let host = bare_host(&local.host);
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    format!("{}://{host}:{}/{session_id};tcp", transport.scheme(), local.port)
}

/// The MIME type of a format-list entry, without parameters (RFC 4975 8.6:
/// parameters are ignored when matching).
fn base_type(entry: &str) -> String {
    entry
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Whether `list` signals `entry`, explicitly, by `type/*` or by `*`.
fn admits(list: &[String], entry: &str) -> bool {
    let wanted = base_type(entry);
    let major = wanted.split('/').next().unwrap_or_default();
    list.iter().any(|e| {
        let e = base_type(e);
        e == "*" || e == wanted || e.strip_suffix("/*").is_some_and(|m| m == major)
    })
}

/// RFC 4975 8.6: the types both sides take. Theirs in their order, then
/// ours they admit; if they take `*`, ours as they are.
fn negotiate_types(ours: &[String], theirs: &[String]) -> Vec<String> {
    if theirs.iter().any(|t| t.trim() == "*") {
        return ours.to_vec();
    }
    let mut out: Vec<String> = theirs.iter().filter(|t| admits(ours, t)).cloned().collect();
    for t in ours.iter().filter(|t| t.trim() != "*") {
        if admits(theirs, t) && !out.iter().any(|o| base_type(o) == base_type(t)) {
            out.push(t.clone());
        }
    }
    out
}

/// Parses SDP text with sdp-types, after checking every line is `X=...`
/// (RFC 4566 5: `<type>=<value>`, the type one letter).
///
/// sdp-types 0.1.8 does not survive a malformed line on its own: in the
/// session part it stops reading and returns the session so far (every
/// m= line after it silently lost); inside a media description it panics
/// (`assert_eq!(line.key, b'm')` in `Media::parse`). Lines that pass this
/// check never reach either path.
pub fn parse_sdp(sdp: &[u8]) -> Result<Session, Rejection> {
    let mut in_media = false;
    for (index, line) in sdp.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let shown = || String::from_utf8_lossy(&line[..line.len().min(40)]).into_owned();
        // The type is one letter (RFC 4566 5, 9): sdp-types reads `==...`
        // as a line with no key, skips it while peeking and then hands the
        // next line to `Media::parse`, which panics (found by the `sdp`
        // fuzz target).
        if line.get(1) != Some(&b'=') || !line[0].is_ascii_alphabetic() {
            return Err(Rejection::new(
                400,
                format!(
                    "unparseable SDP: line {} {:?} is not <type>=<value> (RFC 4566 5)",
                    index + 1,
                    shown()
                ),
            ));
        }
        // RFC 4566 5: a media description holds only i= c= b= k= a= lines
        // until the next m=; sdp-types panics on any other (found by the
        // `sdp` fuzz target).
        in_media |= line[0] == b'm';
        if in_media && !b"icbkam".contains(&line[0]) {
            return Err(Rejection::new(
                400,
                format!(
                    "unparseable SDP: line {} {:?} is a session-level line after an m= line (RFC 4566 5)",
                    index + 1,
                    shown()
                ),
            ));
        }
    }
    // sdp-types is not ours: should another input make it panic, that is
    // one refused offer, never a lost process.
    match std::panic::catch_unwind(|| Session::parse(sdp)) {
        Ok(parsed) => parsed.map_err(|e| Rejection::new(400, format!("unparseable SDP: {e}"))),
        Err(_) => Err(Rejection::new(
            400,
            "unparseable SDP: the SDP parser gave up on it".to_string(),
        )),
    }
}

fn parse_body(body: &[u8], content_type: &str) -> Result<Session, Rejection> {
    parse_sdp(find_sdp(body, content_type).map_err(Rejection::from_multipart)?)
}

/// `m=<media> 0 <proto> <fmt>`: a declined stream (RFC 3264 6).
fn declined(offered: &Media) -> Media {
    Media {
        port: 0,
        attributes: Vec::new(),
        media_title: None,
        connections: Vec::new(),
        ..offered.clone()
    }
}

fn write_session(
    local: &LocalEndpoint,
    origin: &str,
    version: u64,
    times: &[Time],
    medias: Vec<Media>,
) -> Bytes {
    let host = bare_host(&local.host).to_owned();
    let session = Session {
        origin: Origin {
            username: None,
            sess_id: origin.to_owned(),
            sess_version: version,
            nettype: "IN".into(),
            addrtype: addr_type(&host).into(),
            unicast_address: host.clone(),
        },
        // RFC 4566 5.3: s= is never empty.
        session_name: "-".into(),
        session_description: None,
        uri: None,
        emails: Vec::new(),
        phones: Vec::new(),
        connection: Some(Connection {
            nettype: "IN".into(),
            addrtype: addr_type(&host).into(),
            connection_address: host,
        }),
        bandwidths: Vec::new(),
        // RFC 3264 6: the answer's t= equals the offer's.
        times: if times.is_empty() {
            vec![Time {
                start_time: 0,
                stop_time: 0,
                repeats: Vec::new(),
            }]
        } else {
            times.to_vec()
        },
        time_zones: Vec::new(),
        key: None,
        attributes: Vec::new(),
        medias,
    };
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = session.write(&mut out);
    Bytes::from(out)
}

/// Answers `offer` (an INVITE, UPDATE or PRACK body) under `policy`.
pub fn answer(
    offer: &[u8],
    content_type: &str,
    policy: &Policy,
    local: &LocalEndpoint,
    session_ids: &mut dyn FnMut() -> String,
) -> Result<Answer, Rejection> {
    let session = parse_body(offer, content_type)?;
    let origin = origin_id(&session_ids());
    negotiate(&session, policy, local, None, session_ids, origin, 1)
}

/// Answers a re-offer in the dialog `previous` was answered in (RFC 4975
/// 8.4, RFC 3264 8): a media line that is still the same MSRP session keeps
/// our path and session id and takes the peer's new path, types and size;
/// the o= sess-id stays, its version goes up when the answer changed.
pub fn reanswer(
    previous: &Answer,
    offer: &[u8],
    content_type: &str,
    policy: &Policy,
    local: &LocalEndpoint,
    session_ids: &mut dyn FnMut() -> String,
) -> Result<Answer, Rejection> {
    let session = parse_body(offer, content_type)?;
    let origin = previous.origin_session_id.clone();
    let same = negotiate(
        &session,
        policy,
        local,
        Some(previous),
        session_ids,
        origin.clone(),
        previous.session_version,
    )?;
    if same.sdp == previous.sdp {
        return Ok(same);
    }
    let version = previous.session_version.saturating_add(1);
    let media = same.media;
    let medias = answer_medias(&session, &media);
    let sdp = write_session(local, &origin, version, &session.times, medias);
    Ok(Answer {
        sdp,
        media,
        origin_session_id: origin,
        session_version: version,
    })
}

/// Rebuilds the m= lines of an answer from its negotiated media.
fn answer_medias(offer: &Session, media: &[NegotiatedMedia]) -> Vec<Media> {
    offer
        .medias
        .iter()
        .enumerate()
        .map(|(index, offered)| match media.iter().find(|m| m.index == index) {
            Some(m) => m.local.to_sdp(),
            None => declined(offered),
        })
        .collect()
}

/// What one offered m= line gets: our media, or why it is declined.
type LineOutcome = Result<(MsrpMedia, MsrpMedia, String, bool), String>;

fn negotiate(
    session: &Session,
    policy: &Policy,
    local: &LocalEndpoint,
    previous: Option<&Answer>,
    session_ids: &mut dyn FnMut() -> String,
    origin: String,
    version: u64,
) -> Result<Answer, Rejection> {
    let msrp_lines = session.medias.iter().filter(|m| m.media == "message").count();
    if msrp_lines > policy.sessions_per_dialog_max {
        return Err(Rejection::new(
            488,
            format!(
                "{msrp_lines} MSRP media lines: more MSRP media lines than sessions_per_dialog_max ({})",
                policy.sessions_per_dialog_max
            ),
        ));
    }
    let mut media = Vec::new();
    let mut reasons: Vec<String> = Vec::new();
    for (index, offered) in session.medias.iter().enumerate() {
        let earlier = previous.and_then(|p| p.media.iter().find(|m| m.index == index));
        match answer_line(offered, &session.attributes, policy, local, earlier, session_ids) {
            Ok((ours, theirs, local_session_id, we_connect)) => media.push(NegotiatedMedia {
                index,
                local: ours,
                remote: theirs,
                local_session_id,
                we_connect,
            }),
            Err(reason) => {
                if !reasons.contains(&reason) {
                    reasons.push(reason);
                }
            }
        }
    }
    // RFC 4975 8.6 / RFC 3264 6: an offer of streams none of which we can
    // take gets 488. An offer with no m= line at all (an MSML control
    // dialog) gets an answer with none.
    if media.is_empty() && !session.medias.is_empty() {
        let warning = if msrp_lines == 0 {
            "no m=message TCP/MSRP media".to_owned()
        } else {
            reasons.join("; ")
        };
        return Err(Rejection::new(488, warning));
    }
    let sdp = write_session(
        local,
        &origin,
        version,
        &session.times,
        answer_medias(session, &media),
    );
    Ok(Answer {
        sdp,
        media,
        origin_session_id: origin,
        session_version: version,
    })
}

fn answer_line(
    offered: &Media,
    session_attributes: &[sdp_types::Attribute],
    policy: &Policy,
    local: &LocalEndpoint,
    earlier: Option<&NegotiatedMedia>,
    session_ids: &mut dyn FnMut() -> String,
) -> LineOutcome {
    if offered.media != "message" {
        return Err(format!("m={} is not MSRP", offered.media));
    }
    let theirs = MsrpMedia::from_sdp(offered, session_attributes).map_err(|e: MediaError| e.to_string())?;
    if theirs.port == 0 {
        // RFC 3264 8.2 / RFC 5547 8.1: a stream (or a finished transfer) the
        // offerer removes.
        return Err("m=message with port 0 (stream removed)".to_owned());
    }
    if let Some(reason) = policy.refuses(theirs.transport) {
        return Err(reason.to_owned());
    }
    if theirs.path.is_empty() {
        return Err("m=message without a=path (RFC 4975 8.2)".to_owned());
    }
    if theirs.accept_types.is_empty() {
        return Err("m=message without a=accept-types (RFC 4975 8.2)".to_owned());
    }
    let ours = if policy.accept_types.is_empty() {
        vec!["*".to_owned()]
    } else {
        policy.accept_types.clone()
    };
    let accept_types = negotiate_types(&ours, &theirs.accept_types);
    if accept_types.is_empty() {
        return Err(format!(
            "accept-types {} not supported",
            theirs.accept_types.join(" ")
        ));
    }
    let file = match &theirs.file {
        // RFC 5547 8.2.2: a pull asks us for a file; we hold none to serve.
        Some(file) if theirs.direction == Direction::RecvOnly && file.selector.is_some() => {
            return Err("file pull (RFC 5547 recvonly file-selector) is not supported".to_owned());
        }
        // RFC 5547 8.3.1: the push answer copies selector and transfer id.
        Some(file) => Some(file.for_answer()),
        None => None,
    };
    // RFC 6135 4.2.1: holdconn is ignored as if absent; RFC 4145 4: an offer
    // without a=setup is "active". Only a passive offer makes us active.
    let (setup, we_connect) = match theirs.setup {
        Some(Setup::Passive) => (Setup::Active, true),
        _ => (Setup::Passive, false),
    };
    // RFC 4975 8.4: the answerer returns a path valid now; we keep ours while
    // the line describes the same session. RFC 5547 8.1: a new
    // file-transfer-id is a new transfer, so a new session.
    let kept = earlier.filter(|e| {
        e.remote.transport == theirs.transport
            && e.remote.file.as_ref().and_then(|f| f.transfer_id.as_ref())
                == theirs.file.as_ref().and_then(|f| f.transfer_id.as_ref())
    });
    let session_id = match kept {
        Some(e) => e.local_session_id.clone(),
        None => session_ids(),
    };
    // RFC 4975 14 / RFC 4572 5: an msrps line names the engine's TLS
    // authority and carries our certificate's fingerprint.
    let (endpoint, fingerprint) = policy.media_endpoint(theirs.transport, local);
    let local_media = MsrpMedia {
        // RFC 4145 4.1 / RFC 6135 4.2.2: an active side's port is 9.
        port: if we_connect { 9 } else { endpoint.port },
        transport: theirs.transport,
        path: vec![path_uri(theirs.transport, &endpoint, &session_id)],
        accept_types,
        accept_wrapped_types: policy.accept_wrapped_types.clone(),
        max_size: policy.max_size,
        direction: theirs.direction.answer(),
        // RFC 6135 4.2.1: always explicit.
        setup: Some(setup),
        connection_new: None,
        fingerprint,
        file,
        other: Vec::new(),
    };
    Ok((local_media, theirs, session_id, we_connect))
}

/// Our offer: one `m=message` line with `a=setup:actpass` (RFC 6135 4.2.2: a
/// reachable UA MUST offer actpass); `TCP/TLS/MSRP` with our fingerprint
/// in a secure dialog (RFC 4975 14, RFC 4572 5).
pub fn offer(
    policy: &Policy,
    local: &LocalEndpoint,
    options: &OfferOptions,
    session_ids: &mut dyn FnMut() -> String,
) -> Offer {
    let origin = origin_id(&session_ids());
    let session_id = session_ids();
    let transport = if policy.secure {
        MsrpTransport::Tls
    } else {
        MsrpTransport::Tcp
    };
    let (endpoint, fingerprint) = policy.media_endpoint(transport, local);
    let media = MsrpMedia {
        port: endpoint.port,
        transport,
        path: vec![path_uri(transport, &endpoint, &session_id)],
        accept_types: options
            .accept_types
            .clone()
            .unwrap_or_else(|| policy.accept_types.clone()),
        accept_wrapped_types: policy.accept_wrapped_types.clone(),
        max_size: options.max_size.or(policy.max_size),
        direction: options.direction,
        setup: Some(options.setup.unwrap_or(Setup::ActPass)),
        connection_new: None,
        fingerprint,
        file: options.file.clone(),
        other: Vec::new(),
    };
    let sdp = write_session(local, &origin, 1, &[], vec![media.to_sdp()]);
    Offer {
        sdp,
        media: vec![media],
        local_session_ids: vec![session_id],
        origin_session_id: origin,
        session_version: 1,
    }
}

/// Completes our `offer` with the peer's answer (from a 200, or the ACK of
/// an offer-less INVITE).
pub fn complete(offer: &Offer, answer: &[u8], content_type: &str) -> Result<Vec<NegotiatedMedia>, Rejection> {
    let session = parse_body(answer, content_type)?;
    // RFC 3264 6: the answer has exactly the offer's m= lines.
    if session.medias.len() != offer.media.len() {
        return Err(Rejection::new(
            488,
            format!(
                "the answer has {} m= lines, the offer {}",
                session.medias.len(),
                offer.media.len()
            ),
        ));
    }
    let mut out = Vec::new();
    let mut reasons = Vec::new();
    for (index, (answered, ours)) in session.medias.iter().zip(&offer.media).enumerate() {
        let theirs = match MsrpMedia::from_sdp(answered, &session.attributes) {
            Ok(theirs) => theirs,
            Err(e) => {
                reasons.push(e.to_string());
                continue;
            }
        };
        if theirs.port == 0 {
            reasons.push("the answer declined the m=message line (port 0)".to_owned());
            continue;
        }
        if theirs.transport != ours.transport {
            reasons.push(format!(
                "the answer's proto {} is not the offer's",
                theirs.transport.proto()
            ));
            continue;
        }
        if theirs.path.is_empty() || theirs.accept_types.is_empty() {
            reasons.push("the answer lacks a=path or a=accept-types (RFC 4975 8.2)".to_owned());
            continue;
        }
        // RFC 6135 4.2: an answerer that is active connects; passive, absent
        // (a legacy answerer, RFC 4975 5.4) or holdconn (ignored, 6135 4.2.1)
        // leave it to us. actpass is not a legal answer (RFC 4145 4.1); we
        // read it as passive rather than fail the call.
        let we_connect = theirs.setup != Some(Setup::Active);
        let local_session_id = offer.local_session_ids.get(index).cloned().unwrap_or_default();
        out.push(NegotiatedMedia {
            index,
            local: ours.clone(),
            remote: theirs,
            local_session_id,
            we_connect,
        });
    }
    if out.is_empty() {
        return Err(Rejection::new(488, reasons.join("; ")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn session_ids_are_22_base62_characters() {
        let id = new_session_id();
        assert_eq!(id.len(), 22);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(id, new_session_id());
        assert_eq!(base62(0), "0".repeat(22));
        assert_eq!(base62(u128::MAX).len(), 22);
    }

    #[test]
    fn type_negotiation_follows_rfc4975_8_6() {
        let ours = list(&["text/plain", "message/cpim", "*"]);
        assert_eq!(
            negotiate_types(&ours, &list(&["message/cpim", "text/plain"])),
            ["message/cpim", "text/plain"]
        );
        assert_eq!(negotiate_types(&ours, &list(&["audio/amr"])), ["audio/amr"]);
        assert_eq!(negotiate_types(&ours, &list(&["*"])), ours);
        let strict = list(&["text/plain"]);
        assert_eq!(negotiate_types(&strict, &list(&["text/*"])), ["text/plain"]);
        assert!(negotiate_types(&strict, &list(&["text/html"])).is_empty());
        assert_eq!(
            negotiate_types(&list(&["text/*"]), &list(&["text/plain;charset=utf-8"])),
            ["text/plain;charset=utf-8"]
        );
    }

    #[test]
    fn ipv6_hosts_are_bracketed_in_uris_only() {
        let local = LocalEndpoint {
            host: "2001:db8:0:2::20".into(),
            port: 2855,
        };
        assert_eq!(
            path_uri(MsrpTransport::Tcp, &local, "abc"),
            "msrp://[2001:db8:0:2::20]:2855/abc;tcp"
        );
        assert_eq!(addr_type("[2001:db8::1]"), "IP6");
        assert_eq!(addr_type("ms.example.net"), "IP4");
    }
}
