//! Hands a parsed [`Message`] to rsip 0.4.0, the message container the
//! design keeps, in a form rsip can take.
//!
//! rsip alone mis-reads real traffic (see `tests/rsip_deficiencies.rs`), so
//! what it gets is our normalised text, with these substitutions:
//! - header fields unfolded, compact names expanded, `Name: value` spacing
//!   (rsip rejects folding and `Via  :`, and keeps `v:` as an unknown header);
//! - Via, Contact, Route and Record-Route written one value per field line
//!   (RFC 3261 7.3.1 makes that equivalent), Via and Contact in our strict
//!   Display form;
//! - a Request-URI rsip rejects (`urn:`, `tel:`, any non-SIP scheme, an IPv6
//!   host) becomes [`SUBSTITUTE_URI`]; the real one stays in
//!   [`Message::request_uri`];
//! - the body is exactly the Content-Length octets our framing cut, with a
//!   matching Content-Length (rsip takes everything after the blank line).
//!
//! An extension method (SIP19 `FOO`) cannot be represented (rsip's `Method`
//! is closed): [`BridgeError::Method`].

use super::message::Message;
use super::params::split_top_level;
use super::uri::{Host, Uri};
use std::convert::TryFrom;

/// RFC 2606 `.invalid`: never resolves, never mistaken for a real target.
pub const SUBSTITUTE_URI: &str = "sip:substituted.invalid";

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("rsip has no variant for method {0}")]
    Method(String),
    #[error("rsip rejected the normalised message: {0}")]
    Rsip(String),
}

fn rsip_takes(uri: &Uri) -> bool {
    matches!(uri, Uri::Sip(s) if !matches!(s.host, Host::V6(_)))
}

/// The normalised text handed to rsip (also useful for logs).
pub fn normalised_text(msg: &Message) -> Vec<u8> {
    let mut out = String::new();
    match (msg.method(), msg.request_uri()) {
        (Some(m), Some(uri)) => {
            let uri = if rsip_takes(uri) {
                uri.to_string()
            } else {
                SUBSTITUTE_URI.to_string()
            };
            out.push_str(&format!("{m} {uri} SIP/2.0\r\n"));
        }
        _ => out.push_str(&format!(
            "SIP/2.0 {} {}\r\n",
            msg.status().unwrap_or(500),
            msg.reason().unwrap_or("")
        )),
    }
    let mut vias_written = false;
    let mut contacts_written = false;
    for f in &msg.head().headers {
        let name = f.name.as_str();
        if f.name.is("Via") {
            if !vias_written {
                for v in msg.vias() {
                    out.push_str(&format!("Via: {v}\r\n"));
                }
                vias_written = true;
            }
        } else if f.name.is("Contact") && f.value != "*" {
            if !contacts_written {
                for c in msg.contacts() {
                    out.push_str(&format!("Contact: {c}\r\n"));
                }
                contacts_written = true;
            }
        } else if f.name.is("Route") || f.name.is("Record-Route") {
            for v in split_top_level(&f.value, ',').unwrap_or_else(|_| vec![f.value.as_str()]) {
                out.push_str(&format!("{name}: {}\r\n", v.trim()));
            }
        } else if !f.name.is("Content-Length") {
            out.push_str(&format!("{name}: {}\r\n", f.value));
        }
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", msg.body().len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(msg.body());
    bytes
}

/// rsip's view of `msg` (see the module doc for what is substituted).
pub fn to_rsip(msg: &Message) -> Result<rsip::SipMessage, BridgeError> {
    for m in msg
        .method()
        .into_iter()
        .chain(std::iter::once(&msg.cseq().method))
    {
        if matches!(m, super::method::Method::Other(_)) {
            return Err(BridgeError::Method(m.to_string()));
        }
    }
    rsip::SipMessage::try_from(normalised_text(msg)).map_err(|e| BridgeError::Rsip(e.to_string()))
}
