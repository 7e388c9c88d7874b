//! Fuzz target for `MsrpUri` parsing and its RFC 4975 6.1 comparison.
//!
//! The input is read as UTF-8 (other inputs are skipped); the whole string is
//! parsed, and so is each of its `\n`-separated lines. On success:
//! `as_str()` and `Display` give back the exact input, parsing that again
//! gives an equal URI, equality is reflexive, symmetric and transitive over
//! the parsed lines, and the URI rebuilt from its accessors (scheme and
//! authority upper-cased, userinfo and parameters dropped, transport
//! upper-cased: none of which 6.1 compares) parses and compares equal. A
//! non-bracketed host counts as an IP address exactly when
//! `std::net::Ipv4Addr` parses it.

use std::net::{IpAddr, Ipv4Addr};

use crate::proto::MsrpUri;

// Reflexivity and symmetry of the RFC 4975 6.1 comparison are the
// properties these check: comparing a value with itself is the point.
#[allow(clippy::eq_op)]
fn check_one(s: &str) -> Option<MsrpUri> {
    let u: MsrpUri = s.parse().ok()?;
    assert_eq!(u.as_str(), s);
    assert_eq!(u.to_string(), s);
    assert_eq!(u, u);
    let again: MsrpUri = u.as_str().parse().expect("as_str() does not parse again");
    assert_eq!(u, again);
    assert_eq!(again, u);

    let (host, port, session_id, transport) = (u.host(), u.port(), u.session_id(), u.transport());
    let _ = (u.userinfo(), u.params().count(), u.is_secure());
    assert!(!host.is_empty() && !transport.is_empty());
    if u.ip().is_some() {
        assert!(port.is_some(), "an IP host without a port was accepted");
    }
    assert!(s.contains(host) && s.contains(transport));
    // A host that is not an IPv6 reference is an IPv4 address exactly when
    // the standard library reads it as one (RFC 3986 dec-octets).
    if !host.starts_with('[') {
        let std_ip = host.parse::<Ipv4Addr>().ok().map(IpAddr::V4);
        assert_eq!(u.ip(), std_ip, "host {host:?}");
    }

    let mut rebuilt = String::from(if u.is_secure() { "MSRPS://" } else { "MSRP://" });
    rebuilt.push_str(&host.to_ascii_uppercase());
    if let Some(port) = port {
        rebuilt.push_str(&format!(":{port}"));
    }
    if let Some(id) = session_id {
        rebuilt.push('/');
        rebuilt.push_str(id);
    }
    rebuilt.push(';');
    rebuilt.push_str(&transport.to_ascii_uppercase());
    let r: MsrpUri = rebuilt
        .parse()
        .unwrap_or_else(|e| panic!("rebuilt {rebuilt:?} from {s:?} does not parse: {e}"));
    assert_eq!(u, r, "rebuilt {rebuilt:?} differs from {s:?}");
    assert_eq!(r, u);
    Some(u)
}

#[allow(clippy::eq_op)]
pub fn uri(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    check_one(s);
    let uris: Vec<MsrpUri> = s.split('\n').take(8).filter_map(check_one).collect();
    for a in &uris {
        for b in &uris {
            assert_eq!(a == b, b == a, "equality is not symmetric: {a:?} {b:?}");
            if a == b {
                for c in &uris {
                    if b == c {
                        assert_eq!(a, c, "equality is not transitive: {a:?} {b:?} {c:?}");
                    }
                }
            }
        }
    }
}
