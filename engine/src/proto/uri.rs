//! MSRP URIs (RFC 4975 6, 9) and their comparison rules (RFC 4975 6.1).
//!
//! ```text
//! MSRP-URI   = msrp-scheme "://" authority ["/" session-id] ";" transport *( ";" URI-parameter )
//! authority  = [userinfo "@"] host [":" port]
//! ```
//!
//! Parsing validates in place and records spans, so a path header is checked
//! without allocating; [`MsrpUri`] owns its bytes as a cheap [`Bytes`] slice.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::Bytes;

use super::chars;
use super::span::Span;

/// Why a URI was rejected; every reason maps to `400` in a request.
pub type UriError = &'static str;

/// What the host part of an authority is; numeric hosts compare as addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HostKind {
    Name,
    Ip(IpAddr),
}

/// The parsed layout of one URI: spans relative to the URI's first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UriParts {
    secure: bool,
    userinfo: Option<Span>,
    host: Span,
    host_kind: HostKind,
    port: Option<u16>,
    session_id: Option<Span>,
    transport: Span,
    params: Span,
}

/// RFC 3986 unreserved.
fn is_unreserved(b: u8) -> bool {
    chars::is(b, chars::UNRESERVED)
}

/// RFC 4975 9 (token, as used by URI-parameter).
pub(crate) fn is_token_char(b: u8) -> bool {
    chars::is(b, chars::TOKEN)
}

/// Checks `*( unreserved / pct-encoded / sub-delims )` (RFC 3986 reg-name,
/// and userinfo without the ":" that would introduce a password).
fn is_reg_name(s: &[u8]) -> bool {
    if !chars::all(s, chars::REG_NAME) {
        return false;
    }
    // pct-encoded = "%" HEXDIG HEXDIG
    let mut rest = s;
    while let Some(at) = rest.iter().position(|&b| b == b'%') {
        match rest.get(at + 1..at + 3) {
            Some([h, l]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => rest = &rest[at + 3..],
            _ => return false,
        }
    }
    true
}

fn parse_port(s: &[u8]) -> Result<u16, UriError> {
    if s.is_empty() || s.len() > 5 || !s.iter().all(u8::is_ascii_digit) {
        return Err("port is not a number");
    }
    let port = s.iter().fold(0u32, |acc, &d| acc * 10 + u32::from(d - b'0'));
    u16::try_from(port).map_err(|_| "port is out of range")
}

/// RFC 3986 IPv4address (dec-octets without leading zeros); anything else is a
/// reg-name.
fn parse_ipv4(s: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = s.split(|&b| b == b'.');
    for octet in &mut octets {
        let part = parts.next()?;
        let leading_zero = part.len() > 1 && part[0] == b'0';
        if part.is_empty() || part.len() > 3 || leading_zero || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let value = part.iter().fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
        *octet = u8::try_from(value).ok()?;
    }
    parts.next().is_none().then(|| Ipv4Addr::from(octets))
}

/// The authority ends at the first "/" (session-id) or ";" (transport).
fn authority_end(s: &[u8], from: usize) -> Option<usize> {
    s[from..]
        .iter()
        .position(|&b| b == b'/' || b == b';')
        .map(|p| from + p)
}

/// The session-id of a URI that already validated, found without parsing
/// the rest: what routing a frame to its session needs (RFC 4975 7.3).
pub(crate) fn session_id_of(uri: &str) -> Option<&str> {
    let bytes = uri.as_bytes();
    let auth_end = authority_end(bytes, memchr::memmem::find(bytes, b"://")? + 3)?;
    if bytes[auth_end] != b'/' {
        return None;
    }
    let path = auth_end + 1;
    let end = memchr::memchr(b';', &bytes[path..]).map_or(bytes.len(), |at| path + at);
    uri.get(path..end)
}

impl UriParts {
    /// Parses one URI; `s` holds exactly the URI (no surrounding spaces).
    pub(crate) fn parse(s: &[u8]) -> Result<UriParts, UriError> {
        let (secure, rest_at) = if s.len() >= 7 && s[..7].eq_ignore_ascii_case(b"msrp://") {
            (false, 7)
        } else if s.len() >= 8 && s[..8].eq_ignore_ascii_case(b"msrps://") {
            (true, 8)
        } else {
            return Err("scheme is not msrp:// or msrps://");
        };
        let auth_end = authority_end(s, rest_at).ok_or("transport is missing (\";tcp\")")?;
        let auth = &s[rest_at..auth_end];
        let (userinfo, host_at) = match auth.iter().position(|&b| b == b'@') {
            Some(at) => {
                let info = &auth[..at];
                // RFC 4975 6: userinfo MUST NOT contain a password.
                if info.is_empty() || !is_reg_name(info) {
                    return Err("userinfo is malformed or carries a password");
                }
                (Some(Span::new(rest_at, rest_at + at)), rest_at + at + 1)
            }
            None => (None, rest_at),
        };
        let hostport = &s[host_at..auth_end];
        let (host, host_kind, port_text) = if hostport.first() == Some(&b'[') {
            let close = memchr::memchr(b']', hostport).ok_or("IPv6 reference is not closed")?;
            let literal = &hostport[1..close];
            let ip = core::str::from_utf8(literal)
                .ok()
                .and_then(|t| t.parse::<Ipv6Addr>().ok())
                .ok_or("IPv6 reference is malformed")?;
            let after = &hostport[close + 1..];
            let port_text = match after.split_first() {
                None => None,
                Some((b':', port)) => Some(port),
                Some(_) => return Err("text after the IPv6 reference"),
            };
            (
                Span::new(host_at, host_at + close + 1),
                HostKind::Ip(IpAddr::V6(ip)),
                port_text,
            )
        } else {
            let (name, port_text) = match hostport.iter().position(|&b| b == b':') {
                Some(colon) => (&hostport[..colon], Some(&hostport[colon + 1..])),
                None => (hostport, None),
            };
            if name.is_empty() || !is_reg_name(name) {
                return Err("host is empty or malformed");
            }
            let ip = if name[0].is_ascii_digit() {
                parse_ipv4(name)
            } else {
                None
            };
            let kind = ip.map_or(HostKind::Name, |ip| HostKind::Ip(IpAddr::V4(ip)));
            (Span::new(host_at, host_at + name.len()), kind, port_text)
        };
        let port = port_text.map(parse_port).transpose()?;
        // RFC 4975 6: a numeric IP address MUST come with a port.
        if port.is_none() && matches!(host_kind, HostKind::Ip(_)) {
            return Err("an IP address host needs a port");
        }

        let mut at = auth_end;
        let session_id = if s[at] == b'/' {
            let start = at + 1;
            let end = s[start..]
                .iter()
                .position(|&b| b == b';')
                .map(|p| start + p)
                .ok_or("transport is missing (\";tcp\")")?;
            let id = &s[start..end];
            // session-id = 1*( unreserved / "+" / "=" / "/" )
            if id.is_empty() || !chars::all(id, chars::SESSION_ID) {
                return Err("session-id is empty or has an illegal character");
            }
            at = end;
            Some(Span::new(start, end))
        } else {
            None
        };
        // s[at] == b';'
        let transport_start = at + 1;
        let transport_end = s[transport_start..]
            .iter()
            .position(|&b| b == b';')
            .map_or(s.len(), |p| transport_start + p);
        let transport = &s[transport_start..transport_end];
        if transport.is_empty() || !chars::all(transport, chars::ALPHANUM) {
            return Err("transport is empty or not alphanumeric");
        }
        // *( ";" URI-parameter ), URI-parameter = token ["=" token]
        let params = Span::new(transport_end, s.len());
        for param in s[transport_end..].split(|&b| b == b';').skip(1) {
            let (name, value) = match memchr::memchr(b'=', param) {
                Some(eq) => (&param[..eq], Some(&param[eq + 1..])),
                None => (param, None),
            };
            let token_ok = |t: &[u8]| !t.is_empty() && t.iter().all(|&b| is_token_char(b) && b != b'=');
            if !token_ok(name) || !value.is_none_or(token_ok) {
                return Err("URI parameter is not token[=token]");
            }
        }
        Ok(UriParts {
            secure,
            userinfo,
            host,
            host_kind,
            port,
            session_id,
            transport: Span::new(transport_start, transport_end),
            params,
        })
    }
}

/// Iterates the URIs of a To-Path or From-Path value (RFC 4975 9: `MSRP-URI *( SP MSRP-URI )`).
pub(crate) fn split_path(value: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut at = 0usize;
    value.split(|&b| b == b' ').map(move |uri| {
        let start = at;
        at += uri.len() + 1;
        (start, uri)
    })
}

/// Validates every URI of a path value; an empty element (double space) is an error.
pub(crate) fn validate_path(value: &[u8]) -> Result<(), UriError> {
    if value.is_empty() {
        return Err("path is empty");
    }
    for (_, uri) in split_path(value) {
        UriParts::parse(uri)?;
    }
    Ok(())
}

/// The last few path values that validated, so the paths that every frame of a
/// session repeats are checked once per burst instead of once per frame.
/// Bounded: [`PathMemo::ENTRIES`] values of at most [`PathMemo::VALUE_BYTES_MAX`].
#[derive(Debug, Default)]
pub(crate) struct PathMemo {
    /// At most [`PathMemo::ENTRIES`] values, each one that passed [`validate_path`].
    entries: Vec<Vec<u8>>,
    next: usize,
}

impl PathMemo {
    /// Covers both directions of two sessions (To-Path and From-Path swap in
    /// responses).
    const ENTRIES: usize = 4;
    const VALUE_BYTES_MAX: usize = 512;

    /// [`validate_path`], remembering values that passed.
    pub(crate) fn validate(&mut self, value: &[u8]) -> Result<(), UriError> {
        if self.entries.iter().any(|known| known.as_slice() == value) {
            return Ok(());
        }
        validate_path(value)?;
        if value.len() <= Self::VALUE_BYTES_MAX {
            if self.entries.len() < Self::ENTRIES {
                self.entries.push(value.to_vec());
            } else {
                let slot = &mut self.entries[self.next];
                slot.clear();
                slot.extend_from_slice(value);
                self.next = (self.next + 1) % Self::ENTRIES;
            }
        }
        Ok(())
    }
}

/// One MSRP URI, owning its text as a [`Bytes`] slice.
///
/// Equality follows RFC 4975 6.1: scheme, host (case-insensitive, percent-decoded,
/// IP addresses as addresses), port (explicit never equals absent), session-id
/// (case-sensitive) and transport (case-insensitive); userinfo and URI
/// parameters are not compared.
#[derive(Clone)]
pub struct MsrpUri {
    raw: Bytes,
    parts: UriParts,
}

impl MsrpUri {
    /// Parses a URI from its text.
    pub fn parse(raw: Bytes) -> Result<MsrpUri, UriError> {
        let parts = UriParts::parse(&raw)?;
        Ok(MsrpUri { raw, parts })
    }

    fn text(&self, span: Span) -> &str {
        // Parsing admitted only ASCII, so every span is valid UTF-8.
        core::str::from_utf8(span.of(&self.raw)).unwrap_or_default()
    }

    /// The URI exactly as it was written.
    pub fn as_str(&self) -> &str {
        self.text(Span::new(0, self.raw.len()))
    }

    /// `true` for `msrps`: the next hop must be reached over TLS (RFC 4975 6).
    pub fn is_secure(&self) -> bool {
        self.parts.secure
    }

    /// The userinfo before `@`, if any.
    pub fn userinfo(&self) -> Option<&str> {
        self.parts.userinfo.map(|s| self.text(s))
    }

    /// The host as written (an IPv6 host keeps its brackets).
    pub fn host(&self) -> &str {
        self.text(self.parts.host)
    }

    /// The host as an address when it is numeric.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.parts.host_kind {
            HostKind::Ip(ip) => Some(ip),
            HostKind::Name => None,
        }
    }

    /// The explicit port, if any (RFC 4975 6: there is no default port).
    pub fn port(&self) -> Option<u16> {
        self.parts.port
    }

    /// The session-id; `None` names a device such as a relay.
    pub fn session_id(&self) -> Option<&str> {
        self.parts.session_id.map(|s| self.text(s))
    }

    /// The transport token (`tcp`, `ws`, ...), as written.
    pub fn transport(&self) -> &str {
        self.text(self.parts.transport)
    }

    /// The URI parameters after the transport, without the leading `;`.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.text(self.parts.params).split(';').skip(1)
    }

    /// Host bytes percent-decoded (unreserved characters only) and lower-cased.
    fn normalised_host(&self) -> impl Iterator<Item = u8> + '_ {
        let host = self.parts.host.of(&self.raw);
        let mut i = 0;
        core::iter::from_fn(move || {
            let b = *host.get(i)?;
            if b == b'%' && i + 2 < host.len() {
                let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
                let decoded = hex(host[i + 1]) << 4 | hex(host[i + 2]);
                if is_unreserved(decoded) {
                    i += 3;
                    return Some(decoded.to_ascii_lowercase());
                }
            }
            i += 1;
            Some(b.to_ascii_lowercase())
        })
    }
}

impl PartialEq for MsrpUri {
    fn eq(&self, other: &MsrpUri) -> bool {
        let (a, b) = (&self.parts, &other.parts);
        let host_equal = match (a.host_kind, b.host_kind) {
            (HostKind::Ip(x), HostKind::Ip(y)) => x == y,
            (HostKind::Name, HostKind::Name) => self.normalised_host().eq(other.normalised_host()),
            _ => false,
        };
        a.secure == b.secure
            && host_equal
            && a.port == b.port
            && self.session_id() == other.session_id()
            && self.transport().eq_ignore_ascii_case(other.transport())
    }
}

impl Eq for MsrpUri {}

impl fmt::Debug for MsrpUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MsrpUri({})", self.as_str())
    }
}

impl fmt::Display for MsrpUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for MsrpUri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<MsrpUri, UriError> {
        MsrpUri::parse(Bytes::copy_from_slice(s.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> MsrpUri {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn session_id_of_agrees_with_the_parser() {
        for s in [
            "msrps://alice@192.0.2.10:12855/YzqGzfNnUadpmyb6MuHA;tcp;x-param=1",
            "msrp://[2001:db8::20]:2855/TxB2VR7WnUWBrXt03wqF;tcp",
            "msrp://relay.example.com:2855;tcp",
            "MSRP://h.example/s;TCP",
        ] {
            assert_eq!(session_id_of(s), uri(s).session_id(), "{s}");
        }
    }

    #[test]
    fn parses_the_parts() {
        let u = uri("msrps://alice@192.0.2.10:12855/YzqGzfNnUadpmyb6MuHA;tcp;x-param=1");
        assert!(u.is_secure());
        assert_eq!(u.userinfo(), Some("alice"));
        assert_eq!(u.host(), "192.0.2.10");
        assert_eq!(u.port(), Some(12855));
        assert_eq!(u.session_id(), Some("YzqGzfNnUadpmyb6MuHA"));
        assert_eq!(u.transport(), "tcp");
        assert_eq!(u.params().collect::<Vec<_>>(), ["x-param=1"]);
        let v6 = uri("msrp://[2001:db8::20]:2855/TxB2VR7WnUWBrXt03wqF;tcp");
        assert_eq!(v6.ip(), "2001:db8::20".parse().ok());
        let relay = uri("msrps://relay.example.com:2855;tcp");
        assert_eq!(relay.session_id(), None);
        assert_eq!(uri("msrp://example.com/abc;tcp").port(), None);
    }

    #[test]
    fn rejects_what_rfc_4975_forbids() {
        for bad in [
            "msrp://198.51.100.20:2855/yLj7wU8m3WNYnErIrgGr",
            "msrp://198.51.100.20/abc123;tcp",
            "sip://example.com:5060/abc;tcp",
            "msrp://alice:secret@example.com:1/abc;tcp",
            "msrp://example.com:99999/abc;tcp",
            "msrp://example.com:1/a b;tcp",
            "msrp://example.com:1/;tcp",
            "msrp://example.com:1/abc;",
            "msrp://example.com:1/abc;tcp;",
            "msrp://[2001:db8::20/abc;tcp",
            "msrp://[2001:db8::20]/abc;tcp",
            "msrp://:1/abc;tcp",
            "msrp://example.com:1/abc;tcp;a=b=c",
        ] {
            assert!(bad.parse::<MsrpUri>().is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn compares_per_rfc_4975_6_1() {
        let base = uri("msrp://198.51.100.20:2855/yLj7wU8m3WNYnErIrgGr;tcp");
        assert_eq!(base, uri("MSRP://198.51.100.20:2855/yLj7wU8m3WNYnErIrgGr;TCP"));
        assert_ne!(base, uri("msrp://198.51.100.20:2855/yLj7wU8m3WNYnErIrgGR;tcp"));
        assert_ne!(base, uri("msrps://198.51.100.20:2855/yLj7wU8m3WNYnErIrgGr;tcp"));
        assert_ne!(base, uri("msrp://198.51.100.20:2856/yLj7wU8m3WNYnErIrgGr;tcp"));
        assert_ne!(base, uri("msrp://198.51.100.20:2855;tcp"));
        assert_eq!(
            uri("msrp://Bob.Example.COM:1/s;tcp"),
            uri("msrp://u@bob.example.com:1/s;tcp;p=1")
        );
        assert_eq!(
            uri("msrp://b%6Fb.example.com:1/s;tcp"),
            uri("msrp://bob.example.com:1/s;tcp")
        );
        assert_ne!(
            uri("msrp://bob.example.com/s;tcp"),
            uri("msrp://bob.example.com:2855/s;tcp")
        );
        assert_eq!(
            uri("msrp://[2001:db8::20]:1/s;tcp"),
            uri("msrp://[2001:DB8:0::20]:1/s;tcp")
        );
    }

    #[test]
    fn path_memo_admits_only_what_validated() {
        let mut memo = PathMemo::default();
        // A fresh memo must not take an empty value for a remembered one.
        assert!(memo.validate(b"").is_err());
        let good: Vec<String> = (0..6)
            .map(|i| format!("msrp://h{i}.example.com:1/s{i};tcp"))
            .collect();
        for round in 0..2 {
            for path in &good {
                assert_eq!(memo.validate(path.as_bytes()), Ok(()), "round {round}");
            }
        }
        let bad = "msrp://198.51.100.20:2855/yLj7wU8m3WNYnErIrgGr";
        for _ in 0..3 {
            assert!(memo.validate(bad.as_bytes()).is_err());
        }
        let two = format!("{} {}", good[0], good[1]);
        assert_eq!(memo.validate(two.as_bytes()), Ok(()));
        assert!(
            memo.validate(format!("{two} ").as_bytes()).is_err(),
            "an empty URI after a space"
        );
    }
}
