//! One MSRP media description, read from and written into `sdp_types::Media`.
//!
//! RFC 4975 8.1 / 8.2 / 8.6 and 15.6 / 15.7:
//! ```text
//! m=message <port> TCP/MSRP *          ; or TCP/TLS/MSRP
//! path                 = "path" ":" MSRP-URI *(SP MSRP-URI)
//! accept-types         = "accept-types" ":" format-list
//! accept-wrapped-types = "accept-wrapped-types" ":" format-list
//! max-size             = "max-size" ":" max-size-value
//! ```
//! plus `a=setup` / `a=connection` (RFC 4145 4, 5; RFC 6135 4.2, 4.4), the
//! direction attributes (RFC 3264 5.1, RFC 4975 8.9), `a=fingerprint`
//! (RFC 4975 14.4, RFC 8122) and the RFC 5547 file attributes. Every other
//! attribute (`a=msrp-cema`, `a=hlang-send`, ...) is kept, in order, in `other`.

use sdp_types::{Attribute, Media};
use thiserror::Error;

use super::file_attrs::{FileAttrError, FileAttributes};

/// Why a media description is not a usable MSRP one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MediaError {
    #[error("m={media} is not m=message")]
    NotMessage { media: String },
    #[error("m=message proto {proto} is neither TCP/MSRP nor TCP/TLS/MSRP")]
    Proto { proto: String },
    #[error("a=max-size:{value} is not a number of octets")]
    MaxSize { value: String },
    #[error("a=setup:{value} is not active, passive, actpass or holdconn")]
    Setup { value: String },
    #[error("a={name} has no value")]
    MissingValue { name: String },
    #[error(transparent)]
    File(#[from] FileAttrError),
}

/// The `m=message` proto (RFC 4975 8.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MsrpTransport {
    #[default]
    Tcp,
    Tls,
}

impl MsrpTransport {
    pub fn proto(self) -> &'static str {
        match self {
            MsrpTransport::Tcp => "TCP/MSRP",
            MsrpTransport::Tls => "TCP/TLS/MSRP",
        }
    }

    /// The URI scheme that goes with the proto (RFC 4975 6).
    pub fn scheme(self) -> &'static str {
        match self {
            MsrpTransport::Tcp => "msrp",
            MsrpTransport::Tls => "msrps",
        }
    }

    pub fn from_proto(proto: &str) -> Option<MsrpTransport> {
        if proto.eq_ignore_ascii_case("TCP/MSRP") {
            Some(MsrpTransport::Tcp)
        } else if proto.eq_ignore_ascii_case("TCP/TLS/MSRP") {
            Some(MsrpTransport::Tls)
        } else {
            None
        }
    }
}

/// The direction attribute (RFC 3264 5.1; RFC 4975 8.9: it restricts only
/// SENDs that carry message content).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    pub fn from_name(name: &str) -> Option<Direction> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// RFC 3264 6.1: sendonly is answered recvonly, recvonly sendonly,
    /// inactive inactive, and sendrecv (our choice among all four) sendrecv.
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }
}

/// `a=setup` (RFC 4145 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    Active,
    Passive,
    ActPass,
    HoldConn,
}

impl Setup {
    pub fn name(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
            Setup::HoldConn => "holdconn",
        }
    }

    pub fn from_name(name: &str) -> Option<Setup> {
        match name.to_ascii_lowercase().as_str() {
            "active" => Some(Setup::Active),
            "passive" => Some(Setup::Passive),
            "actpass" => Some(Setup::ActPass),
            "holdconn" => Some(Setup::HoldConn),
            _ => None,
        }
    }
}

/// One `m=message` media description as MSRP reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MsrpMedia {
    /// The m= port; 0 rejects the stream (RFC 3264 6). MSRP connects to the
    /// `a=path` URI, never to c=/m= (RFC 4975 8.1).
    pub port: u16,
    pub transport: MsrpTransport,
    /// `a=path` URIs in order: relays first, the session's own URI last
    /// (RFC 4975 8.2). Several `a=path` lines are concatenated.
    pub path: Vec<String>,
    pub accept_types: Vec<String>,
    pub accept_wrapped_types: Vec<String>,
    pub max_size: Option<u64>,
    pub direction: Direction,
    pub setup: Option<Setup>,
    /// `a=connection:new` is `Some(true)`; MSRP never sends it and ignores it
    /// (RFC 6135 4.4): it is kept only to write back what was read.
    pub connection_new: Option<bool>,
    /// `a=fingerprint` value, e.g. `SHA-256 34:6A:...` (RFC 8122 5).
    pub fingerprint: Option<String>,
    pub file: Option<FileAttributes>,
    /// Attributes none of the above owns, in SDP order.
    pub other: Vec<(String, Option<String>)>,
}

/// The format list of `accept-types` (RFC 4975 8.6): SP-separated entries.
/// A SP after the colon (RFC 4976 11's example) is trimmed.
fn format_list(value: &str) -> Vec<String> {
    value.split_ascii_whitespace().map(str::to_owned).collect()
}

impl MsrpMedia {
    /// Reads `media`; `session_attributes` supply the session-level direction
    /// and `a=setup` when the media level has none (RFC 4566 6, RFC 4145 4).
    pub fn from_sdp(media: &Media, session_attributes: &[Attribute]) -> Result<MsrpMedia, MediaError> {
        if media.media != "message" {
            return Err(MediaError::NotMessage {
                media: media.media.clone(),
            });
        }
        let transport = MsrpTransport::from_proto(&media.proto).ok_or_else(|| MediaError::Proto {
            proto: media.proto.clone(),
        })?;
        let mut out = MsrpMedia {
            port: media.port,
            transport,
            ..MsrpMedia::default()
        };
        let mut direction = None;
        let mut file = FileAttributes::default();
        for attribute in &media.attributes {
            let name = attribute.attribute.as_str();
            let value = attribute.value.as_deref();
            let text = || {
                value.map(str::trim).ok_or_else(|| MediaError::MissingValue {
                    name: name.to_owned(),
                })
            };
            match name {
                "path" => out.path.extend(format_list(text()?)),
                "accept-types" => out.accept_types = format_list(text()?),
                "accept-wrapped-types" => out.accept_wrapped_types = format_list(text()?),
                "max-size" => {
                    let value = text()?;
                    let size = value.parse().map_err(|_| MediaError::MaxSize {
                        value: value.to_owned(),
                    })?;
                    out.max_size = Some(size);
                }
                "setup" => out.setup = Some(parse_setup(value)?),
                "connection" => out.connection_new = Some(text()?.eq_ignore_ascii_case("new")),
                "fingerprint" => out.fingerprint = Some(text()?.to_owned()),
                _ if Direction::from_name(name).is_some() && value.is_none() => {
                    direction = direction.or(Direction::from_name(name));
                }
                _ => {
                    if !file.read_attribute(name, value)? {
                        out.other.push((name.to_owned(), value.map(str::to_owned)));
                    }
                }
            }
        }
        out.direction = direction
            .or_else(|| {
                session_attributes.iter().find_map(|a| {
                    a.value
                        .is_none()
                        .then(|| Direction::from_name(&a.attribute))
                        .flatten()
                })
            })
            .unwrap_or_default();
        if out.setup.is_none() {
            if let Some(attribute) = session_attributes.iter().find(|a| a.attribute == "setup") {
                out.setup = Some(parse_setup(attribute.value.as_deref())?);
            }
        }
        if out.fingerprint.is_none() {
            // RFC 4572 5: a session-level fingerprint applies to every
            // media line that has none of its own.
            out.fingerprint = session_attributes
                .iter()
                .find(|a| a.attribute == "fingerprint")
                .and_then(|a| a.value.as_deref())
                .map(|v| v.trim().to_owned());
        }
        out.file = (!file.is_empty()).then_some(file);
        Ok(out)
    }

    /// The session's own URI: the last `a=path` entry (RFC 4975 8.2).
    pub fn session_uri(&self) -> Option<&str> {
        self.path.last().map(String::as_str)
    }

    /// The attributes in the order RFC 4975 examples use.
    pub fn attributes(&self) -> Vec<Attribute> {
        let mut out = Vec::new();
        let mut push = |name: &str, value: Option<String>| {
            out.push(Attribute {
                attribute: name.to_owned(),
                value,
            });
        };
        if !self.accept_types.is_empty() {
            push("accept-types", Some(self.accept_types.join(" ")));
        }
        if !self.accept_wrapped_types.is_empty() {
            push("accept-wrapped-types", Some(self.accept_wrapped_types.join(" ")));
        }
        if let Some(size) = self.max_size {
            push("max-size", Some(size.to_string()));
        }
        if !self.path.is_empty() {
            push("path", Some(self.path.join(" ")));
        }
        if let Some(setup) = self.setup {
            push("setup", Some(setup.name().to_owned()));
        }
        if let Some(new) = self.connection_new {
            push(
                "connection",
                Some(if new { "new" } else { "existing" }.to_owned()),
            );
        }
        if let Some(fingerprint) = &self.fingerprint {
            push("fingerprint", Some(fingerprint.clone()));
        }
        // RFC 3264 5.1: sendrecv is the default, but RFC 4975 examples and
        // strict peers read it best when explicit.
        push(self.direction.name(), None);
        if let Some(file) = &self.file {
            for (name, value) in file.attributes() {
                push(&name, value);
            }
        }
        for (name, value) in &self.other {
            push(name, value.clone());
        }
        out
    }

    /// Writes the m= line and the attributes into `media`, keeping its
    /// `i=`, `c=`, `b=` and `k=` lines.
    pub fn write_into(&self, media: &mut Media) {
        media.media = "message".to_owned();
        media.port = self.port;
        media.num_ports = None;
        media.proto = self.transport.proto().to_owned();
        // RFC 4975 8.1: the format list is exactly "*".
        media.fmt = "*".to_owned();
        media.attributes = self.attributes();
    }

    pub fn to_sdp(&self) -> Media {
        let mut media = Media {
            media: String::new(),
            port: 0,
            num_ports: None,
            proto: String::new(),
            fmt: String::new(),
            media_title: None,
            connections: Vec::new(),
            bandwidths: Vec::new(),
            key: None,
            attributes: Vec::new(),
        };
        self.write_into(&mut media);
        media
    }
}

fn parse_setup(value: Option<&str>) -> Result<Setup, MediaError> {
    let value = value.map(str::trim).ok_or_else(|| MediaError::MissingValue {
        name: "setup".to_owned(),
    })?;
    Setup::from_name(value).ok_or_else(|| MediaError::Setup {
        value: value.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media(lines: &str) -> MsrpMedia {
        let text = format!("v=0\r\ns=-\r\nt=0 0\r\n{lines}");
        let session = sdp_types::Session::parse(text.as_bytes()).unwrap();
        MsrpMedia::from_sdp(&session.medias[0], &session.attributes).unwrap()
    }

    #[test]
    fn reads_the_digest_chat_offer() {
        let m = media(
            "m=message 2855 TCP/MSRP *\r\na=accept-types:text/plain message/cpim\r\n\
             a=accept-wrapped-types:text/plain text/html\r\na=max-size:1048576\r\n\
             a=path:msrp://192.0.2.10:2855/3GEoWeUeCAF4sXNosViq;tcp\r\na=setup:actpass\r\na=sendrecv\r\na=msrp-cema\r\n",
        );
        assert_eq!(m.port, 2855);
        assert_eq!(m.accept_types, ["text/plain", "message/cpim"]);
        assert_eq!(m.max_size, Some(1048576));
        assert_eq!(m.setup, Some(Setup::ActPass));
        assert_eq!(
            m.session_uri(),
            Some("msrp://192.0.2.10:2855/3GEoWeUeCAF4sXNosViq;tcp")
        );
        assert_eq!(m.other, vec![("msrp-cema".to_owned(), None)]);
        assert_eq!(MsrpMedia::from_sdp(&m.to_sdp(), &[]).unwrap(), m);
    }

    #[test]
    fn session_level_direction_and_setup_apply() {
        let text = "v=0\r\ns=-\r\nt=0 0\r\na=recvonly\r\na=setup:active\r\nm=message 9 TCP/MSRP *\r\n\
                    a=path:msrp://h:9/x;tcp\r\na=accept-types:*\r\n";
        let session = sdp_types::Session::parse(text.as_bytes()).unwrap();
        let m = MsrpMedia::from_sdp(&session.medias[0], &session.attributes).unwrap();
        assert_eq!(m.direction, Direction::RecvOnly);
        assert_eq!(m.setup, Some(Setup::Active));
    }

    #[test]
    fn bad_values_are_errors() {
        let text = "v=0\r\nm=message 1 TCP/MSRP *\r\na=max-size:lots\r\n";
        let session = sdp_types::Session::parse(text.as_bytes()).unwrap();
        assert!(matches!(
            MsrpMedia::from_sdp(&session.medias[0], &[]),
            Err(MediaError::MaxSize { .. })
        ));
        let text = "v=0\r\nm=audio 1 RTP/AVP 0\r\n";
        let session = sdp_types::Session::parse(text.as_bytes()).unwrap();
        assert!(matches!(
            MsrpMedia::from_sdp(&session.medias[0], &[]),
            Err(MediaError::NotMessage { .. })
        ));
        let text = "v=0\r\nm=message 1 UDP/MSRP *\r\n";
        let session = sdp_types::Session::parse(text.as_bytes()).unwrap();
        assert!(matches!(
            MsrpMedia::from_sdp(&session.medias[0], &[]),
            Err(MediaError::Proto { .. })
        ));
    }

    #[test]
    fn direction_answers_follow_rfc3264() {
        assert_eq!(Direction::SendOnly.answer(), Direction::RecvOnly);
        assert_eq!(Direction::RecvOnly.answer(), Direction::SendOnly);
        assert_eq!(Direction::Inactive.answer(), Direction::Inactive);
        assert_eq!(Direction::SendRecv.answer(), Direction::SendRecv);
    }
}
