//! name-addr / addr-spec header values: From, To, Contact, Route,
//! Record-Route, P-Asserted-Identity (RFC 3261 20.10, 20.20, 20.39, 25.1).
//!
//! ```text
//! name-addr    =  [ display-name ] LAQUOT addr-spec RAQUOT
//! addr-spec    =  SIP-URI / SIPS-URI / absoluteURI
//! display-name =  *(token LWS) / quoted-string
//! LAQUOT = SWS "<"    RAQUOT = ">" SWS
//! from-spec    =  ( name-addr / addr-spec ) *( SEMI from-param )
//! ```
//! RFC 3261 20.10: in the addr-spec form a URI containing `,`, `?` or `;`
//! is ambiguous; its `;` parameters are header parameters.

use super::method::is_token_char;
use super::params::{find, parse_params, read_quoted, split_top_level, write_params, write_quoted, Params};
use super::uri::Uri;
use super::via::HeaderError;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Unquoted and unescaped; token display names joined by one space.
    pub display: Option<String>,
    pub uri: Uri,
    pub params: Params,
}

fn is_lws(c: char) -> bool {
    c == ' ' || c == '\t'
}

impl NameAddr {
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr {
            display: None,
            uri,
            params: Vec::new(),
        }
    }

    pub fn parse(s: &str) -> Result<NameAddr, HeaderError> {
        let s = s.trim_matches(is_lws);
        if s.is_empty() {
            return Err(HeaderError::Empty);
        }
        let (display, after_display) = if s.starts_with('"') {
            let (d, rest) = read_quoted(s)?;
            let rest = rest.trim_start_matches(is_lws);
            if !rest.starts_with('<') {
                return Err(HeaderError::DisplayName);
            }
            (Some(d), rest)
        } else if let Some(lt) = s.find('<') {
            let words: Vec<&str> = s[..lt].split(is_lws).filter(|w| !w.is_empty()).collect();
            if !words.iter().all(|w| w.bytes().all(is_token_char)) {
                return Err(HeaderError::DisplayName);
            }
            ((!words.is_empty()).then(|| words.join(" ")), &s[lt..])
        } else {
            // addr-spec form: the URI ends at the first ';'.
            let end = s.find(|c: char| c == ';' || is_lws(c)).unwrap_or(s.len());
            let uri_text = &s[..end];
            if uri_text.contains(['?', ',']) {
                return Err(HeaderError::Uri(super::uri::UriError::BadChar));
            }
            let uri = Uri::parse(uri_text).map_err(HeaderError::Uri)?;
            let params = parse_params(&s[end..])?;
            return Ok(NameAddr {
                display: None,
                uri,
                params,
            });
        };
        let inner = &after_display[1..];
        let gt = inner.find('>').ok_or(HeaderError::Angle)?;
        // No LWS inside the angle brackets (RFC 4475 3.1.2.13 badaspec).
        let uri = Uri::parse(&inner[..gt]).map_err(HeaderError::Uri)?;
        let params = parse_params(&inner[gt + 1..])?;
        Ok(NameAddr { display, uri, params })
    }

    /// A comma-joined field value (Contact, Route, Record-Route, P-Asserted-Identity).
    pub fn parse_list(s: &str) -> Result<Vec<NameAddr>, HeaderError> {
        split_top_level(s, ',')?
            .into_iter()
            .map(NameAddr::parse)
            .collect()
    }

    pub fn param(&self, name: &str) -> Option<&Option<String>> {
        find(&self.params, name)
    }

    pub fn tag(&self) -> Option<&str> {
        self.param("tag").and_then(|v| v.as_deref())
    }
}

/// A comma list of `<URI>;params` with no display names, the shape of
/// Call-Info (RFC 3261 20.9) and Geolocation (RFC 6442 4.1).
pub fn bracketed_uri_list(s: &str) -> Result<Vec<(Uri, Params)>, HeaderError> {
    split_top_level(s, ',')?
        .into_iter()
        .map(|item| {
            if !item.trim_start().starts_with('<') {
                return Err(HeaderError::Angle);
            }
            let n = NameAddr::parse(item)?;
            Ok((n.uri, n.params))
        })
        .collect()
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write_quoted(f, d)?;
            f.write_str(" ")?;
        }
        write!(f, "<{}>", self.uri)?;
        write_params(f, &self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let n =
            NameAddr::parse("\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\t ;\t tag = 98asjd8")
                .unwrap();
        assert_eq!(n.display.as_deref(), Some("J Rosenberg \\\""));
        assert_eq!(n.tag(), Some("98asjd8"));
        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display.as_deref(), Some("caller"));
        let n = NameAddr::parse("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(n.tag(), Some("1918181833n"));
        assert_eq!(
            n.to_string(),
            "<sip:vivekg@chair-dnrc.example.com>;tag=1918181833n"
        );
    }

    #[test]
    fn lists_and_errors() {
        let l =
            NameAddr::parse_list("\"Doe, John\" <sip:a@192.0.2.1>;+sip.instance=\"<urn:x:y>\", <tel:+1555>")
                .unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].display.as_deref(), Some("Doe, John"));
        assert_eq!(
            l[0].to_string(),
            "\"Doe, John\" <sip:a@192.0.2.1>;+sip.instance=\"<urn:x:y>\""
        );
        assert!(NameAddr::parse("\"Mr. J. User <sip:j.user@example.com>").is_err());
        assert!(NameAddr::parse("Bell, Alexander <sip:a.g.bell@example.com>;tag=43").is_err());
        assert!(NameAddr::parse("\"Watson, Thomas\" < sip:t.watson@example.org >").is_err());
        assert!(NameAddr::parse("sip:user@example.com?Route=%3Csip:sip.example.com%3E").is_err());
        assert!(NameAddr::parse_list("\"Joe\" <sip:joe@example.org>;;;;").is_err());
    }
}
