//! Call-Info (RFC 3261 20.9), as NG911 uses it (RFC 7852 4.1, purposes
//! `emergency-CallId`, `emergency-IncidentId`, `EmergencyCallData.*`).
//!
//! ```text
//! Call-Info   =  "Call-Info" HCOLON info *(COMMA info)
//! info        =  LAQUOT absoluteURI RAQUOT *( SEMI info-param)
//! info-param  =  ( "purpose" EQUAL ( "icon" / "info" / "card" / token ) ) / generic-param
//! ```

use super::name_addr::bracketed_uri_list;
use super::params::{find, write_params, Params};
use super::uri::Uri;
use super::via::HeaderError;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    pub uri: Uri,
    pub params: Params,
}

impl CallInfo {
    pub fn purpose(&self) -> Option<&str> {
        find(&self.params, "purpose").and_then(|v| v.as_deref())
    }

    /// One Call-Info field value (comma list).
    pub fn parse_list(s: &str) -> Result<Vec<CallInfo>, HeaderError> {
        Ok(bracketed_uri_list(s)?
            .into_iter()
            .map(|(uri, params)| CallInfo { uri, params })
            .collect())
    }
}

impl fmt::Display for CallInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.uri)?;
        write_params(f, &self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ng911_purposes() {
        let v = CallInfo::parse_list(
            "<urn:nena:callid:8f2e1c9a4b7d:bcf.example.com>;purpose=emergency-CallId, <cid:svc-8f2e1c@carrier.example.com>;purpose=EmergencyCallData.ServiceInfo, <https://adr.carrier.example.com/deviceinfo/8f2e1c9a> ; purpose = EmergencyCallData.DeviceInfo",
        )
        .unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(
            v[0].uri.to_string(),
            "urn:nena:callid:8f2e1c9a4b7d:bcf.example.com"
        );
        assert_eq!(v[0].purpose(), Some("emergency-CallId"));
        assert_eq!(v[1].purpose(), Some("EmergencyCallData.ServiceInfo"));
        assert_eq!(
            v[2].to_string(),
            "<https://adr.carrier.example.com/deviceinfo/8f2e1c9a>;purpose=EmergencyCallData.DeviceInfo"
        );
        assert!(CallInfo::parse_list("http://x.example/").is_err());
    }
}
