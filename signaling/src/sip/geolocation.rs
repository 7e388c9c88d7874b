//! Geolocation and Geolocation-Routing (RFC 6442 4.1, 4.2).
//!
//! ```text
//! Geolocation-header = "Geolocation" HCOLON locationValue *( COMMA locationValue )
//! locationValue      = LAQUOT locationURI RAQUOT *(SEMI geoloc-param)
//! locationURI        = sip-URI / sips-URI / pres-URI / http-URI / https-URI / cid-url / absoluteURI
//! Geolocation-Routing = "Geolocation-Routing" HCOLON ( routing-allowed-yes / routing-allowed-no / generic-value )
//! ```

use super::name_addr::bracketed_uri_list;
use super::params::{write_params, Params};
use super::uri::Uri;
use super::via::HeaderError;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationValue {
    /// `cid:` = location by value in the body (RFC 6442 4.1), otherwise by reference.
    pub uri: Uri,
    pub params: Params,
}

impl LocationValue {
    pub fn parse_list(s: &str) -> Result<Vec<LocationValue>, HeaderError> {
        Ok(bracketed_uri_list(s)?
            .into_iter()
            .map(|(uri, params)| LocationValue { uri, params })
            .collect())
    }

    /// RFC 6442 4.1: a cid: URI points at a body part of this message.
    pub fn is_by_value(&self) -> bool {
        matches!(&self.uri, Uri::Other { scheme, .. } if scheme.eq_ignore_ascii_case("cid"))
    }
}

impl fmt::Display for LocationValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.uri)?;
        write_params(f, &self.params)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GeolocationRouting {
    Yes,
    No,
    /// generic-value, kept for future extensions (RFC 6442 4.2).
    Other(String),
}

impl GeolocationRouting {
    pub fn parse(s: &str) -> Result<GeolocationRouting, HeaderError> {
        let v = s.trim_matches([' ', '\t']);
        if v.eq_ignore_ascii_case("yes") {
            Ok(GeolocationRouting::Yes)
        } else if v.eq_ignore_ascii_case("no") {
            Ok(GeolocationRouting::No)
        } else if !v.is_empty() && !v.contains([' ', '\t', ',', ';']) {
            Ok(GeolocationRouting::Other(v.to_string()))
        } else {
            Err(HeaderError::Trailing(v.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_value_and_reference() {
        let v = LocationValue::parse_list(
            "<cid:loc-8f2e1c@carrier.example.com>, <https://lis.example.com/deref/8f2e1c9a>",
        )
        .unwrap();
        assert_eq!(v.len(), 2);
        assert!(v[0].is_by_value());
        assert!(!v[1].is_by_value());
        assert_eq!(v[1].to_string(), "<https://lis.example.com/deref/8f2e1c9a>");
        assert_eq!(GeolocationRouting::parse(" yes"), Ok(GeolocationRouting::Yes));
        assert_eq!(GeolocationRouting::parse("No"), Ok(GeolocationRouting::No));
        assert!(GeolocationRouting::parse("").is_err());
    }
}
