//! URIs as SIP carries them: `sip:`/`sips:` (RFC 3261 19.1), `tel:`
//! (RFC 3966), `urn:` (RFC 8141, e.g. `urn:service:sos` from RFC 5031) and
//! any other absolute URI kept opaque.
//!
//! ```text
//! SIP-URI   =  "sip:" [ userinfo ] hostport uri-parameters [ headers ]
//! userinfo  =  ( user / telephone-subscriber ) [ ":" password ] "@"
//! user      =  1*( unreserved / escaped / user-unreserved )
//! hostport  =  host [ ":" port ]
//! host      =  hostname / IPv4address / IPv6reference
//! uri-parameters = *( ";" uri-parameter )
//! headers   =  "?" header *( "&" header )
//! ```
//! (RFC 3261 25.1)

use super::params::{find, Params};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("URI has no scheme")]
    NoScheme,
    #[error("URI contains whitespace or a delimiter it may not hold")]
    BadChar,
    #[error("bad user part")]
    BadUser,
    #[error("bad host {0:?}")]
    BadHost(String),
    #[error("bad port")]
    BadPort,
    #[error("bad URI parameter")]
    BadParam,
    #[error("bad URI header")]
    BadHeader,
    #[error("bad telephone number")]
    BadTel,
    #[error("bad URN")]
    BadUrn,
    #[error("empty URI")]
    Empty,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Name(String),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    pub secure: bool,
    /// As received, escapes kept (RFC 3261 19.1.2), so Display is exact.
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Params,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelUri {
    /// global-number (`+1-201-555-0123`) or local-number, as received.
    pub number: String,
    pub params: Params,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrnUri {
    /// Namespace identifier, e.g. `service` (RFC 5031) or `nena`.
    pub nid: String,
    /// Namespace-specific string, e.g. `sos.police`.
    pub nss: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    Sip(SipUri),
    Tel(TelUri),
    Urn(UrnUri),
    /// Any other absolute URI (`https:`, `cid:`, `im:`...), kept opaque.
    Other {
        scheme: String,
        rest: String,
    },
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b)
}

/// `%` must start an escape of two hex digits (RFC 3261 25.1 escaped).
fn valid_escapes(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

fn chars_ok(s: &str, extra: &[u8]) -> bool {
    s.bytes()
        .all(|b| is_unreserved(b) || b == b'%' || extra.contains(&b))
        && valid_escapes(s)
}

/// RFC 3261 19.1.4: escaped and unescaped forms compare equal.
pub(crate) fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: Option<&u8>| c.and_then(|c| (*c as char).to_digit(16));
            if let (Some(h), Some(l)) = (hex(b.get(i + 1)), hex(b.get(i + 2))) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

impl Host {
    /// `hostname / IPv4address / IPv6reference` (brackets required for IPv6).
    pub fn parse(s: &str) -> Result<Host, UriError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or_else(|| UriError::BadHost(s.into()))?;
            return inner
                .parse()
                .map(Host::V6)
                .map_err(|_| UriError::BadHost(s.into()));
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return s.parse().map(Host::V4).map_err(|_| UriError::BadHost(s.into()));
        }
        let ok = !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
            && !s.starts_with(['-', '.']);
        if ok {
            Ok(Host::Name(s.to_string()))
        } else {
            Err(UriError::BadHost(s.into()))
        }
    }

    /// Splits `host[:port]`.
    pub fn parse_with_port(s: &str) -> Result<(Host, Option<u16>), UriError> {
        let (host, port) = if s.starts_with('[') {
            match s.find(']') {
                Some(i) => (&s[..=i], s[i + 1..].strip_prefix(':')),
                None => return Err(UriError::BadHost(s.into())),
            }
        } else {
            match s.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            }
        };
        if s.starts_with('[') && port.is_none() && s.len() > host.len() {
            return Err(UriError::BadPort);
        }
        let port = match port {
            Some(p) => {
                if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(UriError::BadPort);
                }
                Some(p.parse().map_err(|_| UriError::BadPort)?)
            }
            None => None,
        };
        Ok((Host::parse(host)?, port))
    }

    fn eq_ignore_case(&self, other: &Host) -> bool {
        match (self, other) {
            (Host::Name(a), Host::Name(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a == b,
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

fn parse_uri_params(s: &str) -> Result<Params, UriError> {
    let mut out = Vec::new();
    for p in s.split(';') {
        if p.is_empty() {
            // `sip:host;;x` carries an empty parameter: RFC 3261 25.1 has none.
            return Err(UriError::BadParam);
        }
        let (n, v) = match p.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (p, None),
        };
        // paramchar = param-unreserved / unreserved / escaped
        if n.is_empty() || !chars_ok(n, b"[]/:&+$") || !v.is_none_or(|v| chars_ok(v, b"[]/:&+$")) {
            return Err(UriError::BadParam);
        }
        out.push((n.to_string(), v.map(str::to_string)));
    }
    Ok(out)
}

impl SipUri {
    fn parse(secure: bool, s: &str) -> Result<SipUri, UriError> {
        // RFC 3261 25.1: '@' cannot appear unescaped outside userinfo.
        let (userinfo, rest) = match s.find('@') {
            Some(i) => (Some(&s[..i]), &s[i + 1..]),
            None => (None, s),
        };
        let (user, password) = match userinfo {
            Some(ui) => {
                let (u, p) = match ui.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (ui, None),
                };
                if u.is_empty() || !chars_ok(u, b"&=+$,;?/") {
                    return Err(UriError::BadUser);
                }
                if let Some(p) = p {
                    if !chars_ok(p, b"&=+$,") {
                        return Err(UriError::BadUser);
                    }
                }
                (Some(u.to_string()), p.map(str::to_string))
            }
            None => (None, None),
        };
        let (rest, headers) = match rest.split_once('?') {
            Some((r, h)) => (r, Some(h)),
            None => (rest, None),
        };
        let (hostport, params) = match rest.split_once(';') {
            Some((h, p)) => (h, parse_uri_params(p)?),
            None => (rest, Vec::new()),
        };
        let (host, port) = Host::parse_with_port(hostport)?;
        let headers = match headers {
            Some(h) => h
                .split('&')
                .map(|kv| {
                    let (k, v) = kv.split_once('=').ok_or(UriError::BadHeader)?;
                    let ok = |x: &str| chars_ok(x, b"[]/?:+$");
                    if k.is_empty() || !ok(k) || !ok(v) {
                        return Err(UriError::BadHeader);
                    }
                    Ok((k.to_string(), v.to_string()))
                })
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        Ok(SipUri {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }

    pub fn param(&self, name: &str) -> Option<&Option<String>> {
        find(&self.params, name)
    }

    /// RFC 3261 19.1.4 URI comparison.
    pub fn equivalent(&self, other: &SipUri) -> bool {
        let opt_eq = |a: &Option<String>, b: &Option<String>| match (a, b) {
            (Some(a), Some(b)) => unescape(a) == unescape(b),
            (None, None) => true,
            _ => false,
        };
        if self.secure != other.secure
            || !opt_eq(&self.user, &other.user)
            || !opt_eq(&self.password, &other.password)
            || !self.host.eq_ignore_case(&other.host)
            || self.port != other.port
        {
            return false;
        }
        let val_eq = |a: &Option<String>, b: &Option<String>| match (a, b) {
            (Some(a), Some(b)) => unescape(&a.to_ascii_lowercase()) == unescape(&b.to_ascii_lowercase()),
            (None, None) => true,
            _ => false,
        };
        // "user", "ttl", "method", "maddr" and "transport" must match when
        // either side has them; other parameters only when both do.
        for (name, v) in &self.params {
            match other.param(name) {
                Some(w) if !val_eq(v, w) => return false,
                None if ["user", "ttl", "method", "maddr", "transport"]
                    .iter()
                    .any(|k| name.eq_ignore_ascii_case(k)) =>
                {
                    return false
                }
                _ => {}
            }
        }
        for (name, _) in &other.params {
            if self.param(name).is_none()
                && ["user", "ttl", "method", "maddr", "transport"]
                    .iter()
                    .any(|k| name.eq_ignore_ascii_case(k))
            {
                return false;
            }
        }
        // Header components must all be present on both sides and match.
        self.headers.len() == other.headers.len()
            && self.headers.iter().all(|(k, v)| {
                other
                    .headers
                    .iter()
                    .any(|(k2, v2)| k.eq_ignore_ascii_case(k2) && unescape(v) == unescape(v2))
            })
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(u) = &self.user {
            f.write_str(u)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        for (n, v) in &self.params {
            write!(f, ";{n}")?;
            if let Some(v) = v {
                write!(f, "={v}")?;
            }
        }
        for (i, (k, v)) in self.headers.iter().enumerate() {
            write!(f, "{}{k}={v}", if i == 0 { '?' } else { '&' })?;
        }
        Ok(())
    }
}

impl Uri {
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        if s.is_empty() {
            return Err(UriError::Empty);
        }
        // No LWS, quotes or angle brackets in any URI we accept (RFC 3261 25.1).
        if s.bytes()
            .any(|b| b <= b' ' || b == b'<' || b == b'>' || b == b'"' || b == 0x7f)
        {
            return Err(UriError::BadChar);
        }
        let (scheme, rest) = s.split_once(':').ok_or(UriError::NoScheme)?;
        let scheme_ok = scheme.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        if !scheme_ok {
            return Err(UriError::NoScheme);
        }
        match scheme.to_ascii_lowercase().as_str() {
            "sip" => SipUri::parse(false, rest).map(Uri::Sip),
            "sips" => SipUri::parse(true, rest).map(Uri::Sip),
            "tel" => {
                let (number, params) = match rest.split_once(';') {
                    Some((n, p)) => (n, parse_uri_params(p).map_err(|_| UriError::BadTel)?),
                    None => (rest, Vec::new()),
                };
                // RFC 3966 3: global-number-digits / local-number-digits with visual separators.
                let ok = !number.is_empty()
                    && number
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() || b"+-.()*#".contains(&b))
                    && number[1..].bytes().all(|b| b != b'+');
                if !ok {
                    return Err(UriError::BadTel);
                }
                Ok(Uri::Tel(TelUri {
                    number: number.to_string(),
                    params,
                }))
            }
            "urn" => {
                // RFC 8141 2: NID is 2..32 of alphanum / "-"; NSS is non-empty.
                let (nid, nss) = rest.split_once(':').ok_or(UriError::BadUrn)?;
                let nid_ok = (1..=32).contains(&nid.len())
                    && nid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
                if !nid_ok || nss.is_empty() {
                    return Err(UriError::BadUrn);
                }
                Ok(Uri::Urn(UrnUri {
                    nid: nid.to_string(),
                    nss: nss.to_string(),
                }))
            }
            _ if rest.is_empty() => Err(UriError::Empty),
            _ => Ok(Uri::Other {
                scheme: scheme.to_string(),
                rest: rest.to_string(),
            }),
        }
    }

    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(s) => Some(s),
            _ => None,
        }
    }

    /// RFC 3261 19.1.4 for SIP URIs; other schemes compare case-insensitively
    /// on the scheme and exactly on the rest.
    pub fn equivalent(&self, other: &Uri) -> bool {
        match (self, other) {
            (Uri::Sip(a), Uri::Sip(b)) => a.equivalent(b),
            (Uri::Urn(a), Uri::Urn(b)) => {
                a.nid.eq_ignore_ascii_case(&b.nid) && a.nss.eq_ignore_ascii_case(&b.nss)
            }
            (a, b) => a.to_string().eq_ignore_ascii_case(&b.to_string()),
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(s) => write!(f, "{s}"),
            Uri::Tel(t) => {
                write!(f, "tel:{}", t.number)?;
                for (n, v) in &t.params {
                    write!(f, ";{n}")?;
                    if let Some(v) = v {
                        write!(f, "={v}")?;
                    }
                }
                Ok(())
            }
            Uri::Urn(u) => write!(f, "urn:{}:{}", u.nid, u.nss),
            Uri::Other { scheme, rest } => write!(f, "{scheme}:{rest}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(s: &str) -> Uri {
        let u = Uri::parse(s).unwrap();
        assert_eq!(u.to_string(), s);
        u
    }

    #[test]
    fn schemes() {
        assert!(matches!(rt("urn:service:sos"), Uri::Urn(UrnUri { ref nss, .. }) if nss == "sos"));
        rt("urn:service:sos.police");
        rt("tel:+1-201-555-0123;phone-context=example.com");
        let u = rt("sip:+15551230001@[2001:db8:0:1::10]:49152;transport=tcp");
        let s = u.as_sip().unwrap();
        assert_eq!(s.host, Host::V6("2001:db8:0:1::10".parse().unwrap()));
        assert_eq!(s.port, Some(49152));
        rt("sips:chat@ms.example.net");
        rt("cid:loc-8f2e1c@carrier.example.com");
        rt("https://lis.example.com/deref/8f2e1c9a");
        let s = rt("sip:user;par=u%40example.net@example.com");
        assert_eq!(
            s.as_sip().unwrap().user.as_deref(),
            Some("user;par=u%40example.net")
        );
    }

    #[test]
    fn rejects() {
        assert!(Uri::parse("<sip:a@b>").is_err());
        assert!(Uri::parse("sip:a@b; lr").is_err());
        assert!(Uri::parse("sip:a@[::1").is_err());
        assert!(Uri::parse("sip:a@b:99999").is_err());
        assert!(Uri::parse("sip:a%zz@b").is_err());
        assert!(Uri::parse("nocolon").is_err());
    }

    #[test]
    fn equivalence_rfc3261_19_1_4() {
        let eq = |a: &str, b: &str| Uri::parse(a).unwrap().equivalent(&Uri::parse(b).unwrap());
        assert!(eq(
            "sip:%61lice@atlanta.com;transport=TCP",
            "sip:alice@AtLanTa.CoM;Transport=tcp"
        ));
        assert!(eq("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"));
        assert!(!eq(
            "SIP:ALICE@AtLanTa.CoM;Transport=udp",
            "sip:alice@AtLanTa.CoM;Transport=UDP"
        ));
        assert!(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
        assert!(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"));
        assert!(!eq(
            "sip:carol@chicago.com?Subject=next%20meeting",
            "sip:carol@chicago.com?Subject=another%20meeting"
        ));
    }
}
