//! What rsip 0.4.0 alone gets wrong, one test per deficiency: each asserts
//! rsip's actual behaviour (so it fails the day rsip is fixed and the
//! workaround can go) and that our layer, and `to_rsip`, get it right.

use bytes::Bytes;
use msrp_signaling::sip::{frame_datagram, to_rsip, Host, Limits, Message, StreamFramer, Uri};
use rsip::prelude::*;
use std::convert::TryFrom;

const HEADERS: &str = "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n";

fn invite(ruri: &str, extra: &str) -> String {
    format!("INVITE {ruri} SIP/2.0\r\n{HEADERS}{extra}Content-Length: 0\r\n\r\n")
}

fn ours(text: &str) -> Message {
    Message::parse(Bytes::from(text.to_string()), &Limits::default()).unwrap()
}

fn rsip_request(m: &Message) -> rsip::Request {
    match to_rsip(m).unwrap() {
        rsip::SipMessage::Request(r) => r,
        rsip::SipMessage::Response(_) => panic!("expected a request"),
    }
}

#[test]
fn folded_header_rejected() {
    let text = invite("sip:b@example.com", "Subject: a\r\n b\r\n");
    assert!(matches!(
        rsip::SipMessage::try_from(text.as_str()),
        Err(rsip::Error::TokenizeError(_))
    ));
    let m = ours(&text);
    assert_eq!(m.header("Subject"), Some("a b"));
    assert!(to_rsip(&m).is_ok());
}

#[test]
fn compact_forms_not_recognised() {
    let text = "INVITE sip:b@example.com SIP/2.0\r\nv: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nf: <sip:a@example.com>;tag=1\r\nt: <sip:b@example.com>\r\ni: c1\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n";
    let rs = rsip::SipMessage::try_from(text).unwrap();
    assert!(rs.via_header().is_err(), "rsip keeps v: as an unknown header");
    assert!(rs
        .headers()
        .iter()
        .any(|h| matches!(h, rsip::Header::Other(n, _) if n == "v")));
    let m = ours(text);
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK1"));
    assert_eq!(m.call_id(), "c1");
    let r = rsip_request(&m);
    assert_eq!(r.call_id_header().unwrap().to_string(), "Call-ID: c1");
    assert!(r.via_header().is_ok());
}

#[test]
fn space_before_colon_rejected() {
    let text = "INVITE sip:b@example.com SIP/2.0\r\nVia  : SIP / 2.0 / UDP 192.0.2.1 ; branch = z9hG4bK1\r\nFrom : <sip:a@example.com> ; tag = 1\r\nTo: <sip:b@example.com>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    assert!(matches!(
        rsip::SipMessage::try_from(text),
        Err(rsip::Error::TokenizeError(_))
    ));
    let m = ours(text);
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK1"));
    assert_eq!(m.from().tag(), Some("1"));
    let r = rsip_request(&m);
    assert!(r.via_header().unwrap().typed().is_ok());
}

#[test]
fn urn_request_uri_rejected() {
    let text = invite("urn:service:sos", "");
    assert!(matches!(
        rsip::SipMessage::try_from(text.as_str()),
        Err(rsip::Error::ParseError(_))
    ));
    let m = ours(&text);
    assert_eq!(m.request_uri().unwrap().to_string(), "urn:service:sos");
    assert_eq!(
        rsip_request(&m).uri.to_string(),
        msrp_signaling::sip::rsip_bridge::SUBSTITUTE_URI
    );
}

#[test]
fn tel_request_uri_rejected() {
    let text = invite("tel:+1-201-555-0123;phone-context=example.com", "");
    assert!(rsip::SipMessage::try_from(text.as_str()).is_err());
    let m = ours(&text);
    assert!(matches!(m.request_uri(), Some(Uri::Tel(t)) if t.number == "+1-201-555-0123"));
    assert!(to_rsip(&m).is_ok());
}

#[test]
fn ipv6_request_uri_rejected() {
    let text = invite("sip:b@[2001:db8::1]:5060", "");
    assert!(rsip::SipMessage::try_from(text.as_str()).is_err());
    let m = ours(&text);
    let sip = m.request_uri().unwrap().as_sip().unwrap();
    assert_eq!(sip.host, Host::V6("2001:db8::1".parse().unwrap()));
    assert!(to_rsip(&m).is_ok());
}

#[test]
fn ipv6_via_and_route_not_typed() {
    let text = "INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/TCP [2001:db8::1]:5060;branch=z9hG4bK1\r\nRoute: <sip:[2001:db8::2]:5060;lr>\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let rs = rsip::SipMessage::try_from(text).unwrap();
    assert!(rs.via_header().unwrap().typed().is_err());
    let route = rs.headers().iter().find_map(|h| match h {
        rsip::Header::Route(r) => Some(r.clone()),
        _ => None,
    });
    assert!(route.unwrap().typed().is_err());
    let m = ours(text);
    assert_eq!(
        m.top_via().unwrap().host,
        Host::V6("2001:db8::1".parse().unwrap())
    );
    assert_eq!(m.top_via().unwrap().port, Some(5060));
    assert_eq!(
        m.routes().unwrap()[0].uri.to_string(),
        "sip:[2001:db8::2]:5060;lr"
    );
}

#[test]
fn unknown_method_rejected() {
    let text = format!(
        "FOO sip:b@example.com SIP/2.0\r\n{}Content-Length: 0\r\n\r\n",
        HEADERS.replace("1 INVITE", "1 FOO")
    );
    assert!(matches!(
        rsip::SipMessage::try_from(text.as_str()),
        Err(rsip::Error::ParseError(_))
    ));
    let m = ours(&text);
    assert_eq!(m.method().unwrap().as_str(), "FOO");
    // rsip's Method is closed: the bridge says so instead of guessing.
    assert!(matches!(
        to_rsip(&m),
        Err(msrp_signaling::sip::BridgeError::Method(_))
    ));
}

#[test]
fn content_length_ignored() {
    let one = invite("sip:b@example.com", "")
        .replace("INVITE sip", "OPTIONS sip")
        .replace("1 INVITE", "1 OPTIONS");
    let two = format!("{one}{one}");
    let rs = rsip::SipMessage::try_from(two.as_str()).unwrap();
    assert_eq!(
        rs.body().len(),
        one.len(),
        "rsip swallows the second message as the first one's body"
    );
    let mut f = StreamFramer::new(Limits::default());
    f.push(two.as_bytes());
    let a = f.next_message().unwrap().unwrap();
    let b = f.next_message().unwrap().unwrap();
    assert_eq!((a.len(), b.len()), (one.len(), one.len()));
    let m = Message::parse(a, &Limits::default()).unwrap();
    assert!(to_rsip(&m).unwrap().body().is_empty());
}

#[test]
fn body_longer_than_content_length_kept() {
    let text = invite("sip:b@example.com", "").replace("Content-Length: 0", "Content-Length: 2") + "hello";
    let rs = rsip::SipMessage::try_from(text.as_str()).unwrap();
    assert_eq!(rs.body(), b"hello");
    let m = Message::parse(
        frame_datagram(Bytes::from(text), &Limits::default()).unwrap(),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(&m.body()[..], b"he");
    assert_eq!(to_rsip(&m).unwrap().body(), b"he");
}

#[test]
fn quoted_display_names_with_commas() {
    let text = invite(
        "sip:b@example.com",
        "Contact: \"Doe, John\" <sip:a@192.0.2.1>, <sip:x@example.org>\r\n",
    )
    .replace("From: <sip:a", "From: \"Doe, John\" <sip:a");
    let rs = rsip::SipMessage::try_from(text.as_str()).unwrap();
    assert!(
        rs.contact_header().unwrap().typed().is_err(),
        "rsip cannot type a Contact list"
    );
    let from = rs.from_header().unwrap().typed().unwrap();
    assert_eq!(
        from.display_name.as_deref(),
        Some("\"Doe, John\""),
        "rsip keeps the quotes"
    );
    let m = ours(&text);
    assert_eq!(m.from().display.as_deref(), Some("Doe, John"));
    assert_eq!(m.contacts().len(), 2);
    // One Contact per field line: rsip can type each.
    let r = rsip_request(&m);
    assert!(r.contact_header().unwrap().typed().is_ok());
}

#[test]
fn cseq_method_mismatch_accepted() {
    let text = invite("sip:b@example.com", "").replace("CSeq: 1 INVITE", "CSeq: 1 BYE");
    assert!(rsip::SipMessage::try_from(text.as_str()).is_ok());
    assert!(Message::parse(Bytes::from(text), &Limits::default()).is_err());
}
