//! The Via header field (RFC 3261 20.42, 18.2.1; RFC 3581 rport).
//!
//! ```text
//! Via            =  ( "Via" / "v" ) HCOLON via-parm *(COMMA via-parm)
//! via-parm       =  sent-protocol LWS sent-by *( SEMI via-params )
//! sent-protocol  =  protocol-name SLASH protocol-version SLASH transport
//! sent-by        =  host [ COLON port ]
//! via-params     =  via-ttl / via-maddr / via-received / via-branch / via-extension
//! SLASH = SWS "/" SWS   COLON = SWS ":" SWS
//! ```

use super::method::is_token_char;
use super::params::{find, parse_params, split_top_level, write_params, ParamError, Params};
use super::uri::{Host, UriError};
use std::fmt;

/// An error in a typed header field value; it makes the request a 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("empty header field value")]
    Empty,
    #[error("bad sent-protocol {0:?}")]
    SentProtocol(String),
    #[error("bad sent-by: {0}")]
    SentBy(UriError),
    #[error("bad parameter: {0}")]
    Param(#[from] ParamError),
    #[error("bad URI: {0}")]
    Uri(UriError),
    #[error("bad display name")]
    DisplayName,
    #[error("unterminated <...>")]
    Angle,
    #[error("bad rport value")]
    Rport,
    #[error("unexpected text {0:?}")]
    Trailing(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Uppercase (`UDP`, `TCP`, `TLS`, `SCTP`, `WS`...).
    pub transport: String,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Params,
}

fn is_lws(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn token(s: &str) -> Option<&str> {
    let t = s.trim_matches(is_lws);
    (!t.is_empty() && t.bytes().all(is_token_char)).then_some(t)
}

impl Via {
    /// One via-parm.
    pub fn parse(s: &str) -> Result<Via, HeaderError> {
        Via::parse_version(s, true)
    }

    fn parse_version(s: &str, strict_version: bool) -> Result<Via, HeaderError> {
        let s = s.trim_matches(is_lws);
        if s.is_empty() {
            return Err(HeaderError::Empty);
        }
        let bad = || HeaderError::SentProtocol(s.to_string());
        let (name, rest) = s.split_once('/').ok_or_else(bad)?;
        let (version, rest) = rest.split_once('/').ok_or_else(bad)?;
        let rest = rest.trim_start_matches(is_lws);
        let t_end = rest.find(|c: char| is_lws(c) || c == ';').unwrap_or(rest.len());
        let transport = token(&rest[..t_end]).ok_or_else(bad)?;
        let (name, version) = (token(name).ok_or_else(bad)?, token(version).ok_or_else(bad)?);
        if !name.eq_ignore_ascii_case("SIP") || (strict_version && version != "2.0") {
            return Err(bad());
        }
        let rest = rest[t_end..].trim_start_matches(is_lws);
        let sb_end = rest.find(';').unwrap_or(rest.len());
        // COLON = SWS ":" SWS: drop whitespace inside sent-by.
        let sent_by: String = rest[..sb_end].chars().filter(|c| !is_lws(*c)).collect();
        let (host, port) = Host::parse_with_port(&sent_by).map_err(HeaderError::SentBy)?;
        let params = parse_params(&rest[sb_end..])?;
        // RFC 3581 3: rport is empty in a request, a port number once filled in.
        if let Some(Some(v)) = find(&params, "rport") {
            if v.parse::<u16>().is_err() {
                return Err(HeaderError::Rport);
            }
        }
        Ok(Via {
            transport: transport.to_ascii_uppercase(),
            host,
            port,
            params,
        })
    }

    /// A Via field value, comma-joined via-parms in order (RFC 3261 7.3.1).
    pub fn parse_list(s: &str) -> Result<Vec<Via>, HeaderError> {
        split_top_level(s, ',')?.into_iter().map(Via::parse).collect()
    }

    pub fn param(&self, name: &str) -> Option<&Option<String>> {
        find(&self.params, name)
    }

    pub fn branch(&self) -> Option<&str> {
        self.param("branch").and_then(|v| v.as_deref())
    }

    pub fn received(&self) -> Option<&str> {
        self.param("received").and_then(|v| v.as_deref())
    }

    /// `None`: no rport; `Some(None)`: rport asked for (RFC 3581 4);
    /// `Some(Some(port))`: filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.param("rport")
            .map(|v| v.as_deref().and_then(|p| p.parse().ok()))
    }

    /// RFC 3261 18.2.1: the server transport adds received= (here replacing any).
    pub fn set_received(&mut self, addr: &str) {
        self.set_param("received", Some(addr.to_string()));
    }

    /// RFC 3581 4: fill rport in with the source port.
    pub fn set_rport(&mut self, port: u16) {
        self.set_param("rport", Some(port.to_string()));
    }

    fn set_param(&mut self, name: &str, value: Option<String>) {
        match self.params.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some(p) => p.1 = value,
            None => self.params.push((name.to_string(), value)),
        }
    }

    /// Checks only `sent-protocol LWS sent-by` of the first via-parm: enough
    /// to address a 400 even when the parameters are malformed (RFC 4475
    /// 3.1.2.1), or a 505 to another version (3.1.2.15).
    pub fn sent_by_readable(s: &str) -> bool {
        let first = s.split(',').next().unwrap_or("");
        let head = first.split(';').next().unwrap_or("");
        Via::parse_version(head, false).is_ok()
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write_params(f, &self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tortuous_whitespace_rfc4475_wsinv() {
        let v = Via::parse_list("SIP  / 2.0  / TCP     spindle.example.com   ;\t  branch  =   z9hG4bK9ikj8  , SIP  /    2.0   / UDP  192.168.255.111   ; branch= z9hG4bK30239").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].transport, "TCP");
        assert_eq!(v[0].host, Host::Name("spindle.example.com".into()));
        assert_eq!(v[0].branch(), Some("z9hG4bK9ikj8"));
        assert_eq!(v[1].branch(), Some("z9hG4bK30239"));
    }

    #[test]
    fn ipv6_rport_received() {
        let mut v = Via::parse("SIP/2.0/tcp [2001:db8:0:1::10]:49152;received=2001:db8:0:1::10;rport=49152;branch=z9hG4bK-ue-07c").unwrap();
        assert_eq!(v.transport, "TCP");
        assert_eq!(v.port, Some(49152));
        assert_eq!(v.rport(), Some(Some(49152)));
        assert_eq!(v.received(), Some("2001:db8:0:1::10"));
        v.set_received("192.0.2.1");
        assert_eq!(
            v.to_string(),
            "SIP/2.0/TCP [2001:db8:0:1::10]:49152;received=192.0.2.1;rport=49152;branch=z9hG4bK-ue-07c"
        );
        let r = Via::parse("SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK1;rport").unwrap();
        assert_eq!(r.rport(), Some(None));
    }

    #[test]
    fn malformed() {
        assert!(Via::parse_list("SIP/2.0/UDP 192.0.2.15;;,;,,").is_err());
        assert!(Via::sent_by_readable("SIP/2.0/UDP 192.0.2.15;;,;,,"));
        assert!(Via::parse("SIP/7.0/UDP c.example.com").is_err());
        assert!(Via::parse("SIP/2.0/UDP").is_err());
    }
}
