//! Drives the message layer with the 24 SIP vectors of `vectors/sip`
//! (`manifest.json` says what each must yield).

use bytes::Bytes;
use msrp_signaling::sip::{
    frame_datagram, CallInfo, FrameError, GeolocationRouting, Host, Limits, LocationValue, Message,
    MessageErrorKind, NameAddr, StreamFramer, Via,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vectors/sip")
}

fn manifest() -> Vec<Value> {
    let text = std::fs::read_to_string(dir().join("manifest.json")).unwrap();
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn host_str(h: &Host) -> String {
    match h {
        Host::Name(n) => n.clone(),
        Host::V4(a) => a.to_string(),
        Host::V6(a) => a.to_string(),
    }
}

fn frame(transport: &str, raw: Bytes) -> Result<Vec<Bytes>, FrameError> {
    let l = Limits::default();
    if transport == "udp" {
        return frame_datagram(raw, &l).map(|m| vec![m]);
    }
    let mut f = StreamFramer::new(l);
    f.push(&raw);
    let mut out = Vec::new();
    while let Some(m) = f.next_message()? {
        out.push(m);
    }
    assert_eq!(f.buffered(), 0, "stream left octets over");
    Ok(out)
}

fn check_name_addr(id: &str, what: &str, n: &NameAddr, e: &Value) {
    assert_eq!(n.uri.to_string(), e["uri"].as_str().unwrap(), "{id} {what} uri");
    assert_eq!(n.tag(), e.get("tag").and_then(Value::as_str), "{id} {what} tag");
    if let Some(d) = e.get("display") {
        assert_eq!(n.display.as_deref(), d.as_str(), "{id} {what} display");
    }
}

fn check_via(id: &str, v: &Via, e: &Value) {
    assert_eq!(
        v.transport,
        e["transport"].as_str().unwrap(),
        "{id} via transport"
    );
    assert_eq!(host_str(&v.host), e["host"].as_str().unwrap(), "{id} via host");
    assert_eq!(v.port.map(u64::from), e["port"].as_u64(), "{id} via port");
    assert_eq!(v.branch(), e["branch"].as_str(), "{id} via branch");
    let params = e["params"].as_object().unwrap();
    assert_eq!(v.params.len(), params.len(), "{id} via params");
    for (k, want) in params {
        let got = v.param(k).unwrap_or_else(|| panic!("{id} via lacks {k}"));
        assert_eq!(got.as_deref(), want.as_str(), "{id} via param {k}");
    }
}

fn uris(list: &[NameAddr]) -> Vec<String> {
    list.iter().map(|n| n.uri.to_string()).collect()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn check_message(id: &str, m: &Message, e: &Value) {
    let sl = e["method"].as_str().unwrap();
    assert_eq!(m.method().map(|m| m.as_str()), Some(sl), "{id} method");
    assert_eq!(
        m.request_uri().unwrap().to_string(),
        e["request_uri"].as_str().unwrap(),
        "{id} R-URI"
    );
    assert_eq!(m.call_id(), e["call_id"].as_str().unwrap(), "{id} Call-ID");
    assert_eq!(
        u64::from(m.cseq().seq),
        e["cseq"]["seq"].as_u64().unwrap(),
        "{id} CSeq"
    );
    assert_eq!(
        m.cseq().method.as_str(),
        e["cseq"]["method"].as_str().unwrap(),
        "{id} CSeq method"
    );
    check_name_addr(id, "From", m.from(), &e["from"]);
    check_name_addr(id, "To", m.to(), &e["to"]);
    let vias = e["via"].as_array().unwrap();
    assert_eq!(m.vias().len(), vias.len(), "{id} via count");
    for (v, ev) in m.vias().iter().zip(vias) {
        check_via(id, v, ev);
    }
    assert_eq!(
        m.max_forwards().map(u64::from),
        e["max_forwards"].as_u64(),
        "{id} Max-Forwards"
    );
    assert_eq!(
        m.content_type(),
        e.get("content_type").and_then(Value::as_str),
        "{id} Content-Type"
    );
    assert_eq!(
        m.content_length().map(|n| n as u64),
        e["content_length"].as_u64(),
        "{id} Content-Length"
    );
    assert_eq!(
        m.body().len() as u64,
        e["body_len"].as_u64().unwrap(),
        "{id} body"
    );
    if let Some(c) = e.get("contact") {
        assert_eq!(uris(m.contacts()), strs(c), "{id} Contact");
    }
    if let Some(r) = e.get("route") {
        assert_eq!(uris(&m.routes().unwrap()), strs(r), "{id} Route");
    }
    if let Some(r) = e.get("record_route") {
        assert_eq!(uris(&m.record_routes().unwrap()), strs(r), "{id} Record-Route");
    }
    if let Some(h) = e.get("headers") {
        check_headers(id, m, h);
    }
    // Every vector's message also goes through rsip (FOO cannot: SIP19).
    let bridged = msrp_signaling::sip::to_rsip(m);
    assert_eq!(bridged.is_ok(), id != "SIP19", "{id} rsip bridge: {bridged:?}");
}

fn check_headers(id: &str, m: &Message, h: &Value) {
    for (name, want) in h.as_object().unwrap() {
        let joined: Vec<&str> = m.header_values(name).collect();
        assert!(!joined.is_empty(), "{id} lacks {name}");
        let all = joined.join(", ");
        match name.as_str() {
            "Call-Info" => {
                let got = CallInfo::parse_list(&all).unwrap();
                let want = want.as_array().unwrap();
                assert_eq!(got.len(), want.len(), "{id} Call-Info");
                for (g, w) in got.iter().zip(want) {
                    assert_eq!(g.uri.to_string(), w["uri"].as_str().unwrap());
                    assert_eq!(g.purpose(), w["purpose"].as_str());
                }
            }
            "Geolocation" => {
                let got: Vec<String> = LocationValue::parse_list(&all)
                    .unwrap()
                    .iter()
                    .map(|l| l.uri.to_string())
                    .collect();
                assert_eq!(got, strs(want), "{id} Geolocation");
            }
            "Geolocation-Routing" => {
                let want = if want == "yes" {
                    GeolocationRouting::Yes
                } else {
                    GeolocationRouting::No
                };
                assert_eq!(GeolocationRouting::parse(&all).unwrap(), want, "{id}");
            }
            "P-Asserted-Identity" => {
                assert_eq!(uris(&NameAddr::parse_list(&all).unwrap()), strs(want), "{id} PAI");
            }
            "Reason" => assert!(all.starts_with("Q.850"), "{id} Reason"),
            _ => match want {
                Value::String(s) => assert_eq!(&all, s, "{id} {name}"),
                Value::Array(items) => {
                    let got: Vec<String> = all.split(',').map(|s| s.trim().to_string()).collect();
                    let want: Vec<String> = items.iter().map(|s| s.as_str().unwrap().to_string()).collect();
                    assert_eq!(got, want, "{id} {name}");
                }
                other => panic!("{id} {name}: unexpected {other}"),
            },
        }
    }
}

#[test]
fn every_vector() {
    let vectors = manifest();
    assert_eq!(vectors.len(), 24);
    for v in &vectors {
        let id = v["id"].as_str().unwrap();
        let raw = std::fs::read(dir().join(v["file"].as_str().unwrap())).unwrap();
        assert_eq!(raw.len() as u64, v["bytes"].as_u64().unwrap(), "{id} size");
        assert_eq!(
            hex(&Sha256::digest(&raw)),
            v["sha256"].as_str().unwrap(),
            "{id} sha256"
        );
        let expect = &v["expect"];
        let transport = v["transport"].as_str().unwrap();
        let framed = frame(transport, Bytes::from(raw.clone()));
        match expect.get("error") {
            Some(err) if err["kind"] == "BodyTruncated" => {
                let e = framed.unwrap_err();
                let declared = err["content_length"].as_u64().unwrap() as usize;
                let got = err["available"].as_u64().unwrap() as usize;
                assert_eq!(e, FrameError::BodyTruncated { declared, got }, "{id}");
                assert_eq!(e.head_readable(), err["delimitable"].as_bool().unwrap(), "{id}");
                // The head stays readable, so a 400 can be addressed.
                let e = Message::parse(Bytes::from(raw), &Limits::default()).unwrap_err();
                assert!(
                    matches!(
                        e.disposition(),
                        msrp_signaling::sip::Disposition::Reply { status: 400, .. }
                    ),
                    "{id}"
                );
            }
            Some(err) => {
                assert_eq!(err["kind"], "MissingVia");
                let msgs = framed.unwrap();
                let e = Message::parse(msgs[0].clone(), &Limits::default()).unwrap_err();
                assert_eq!(e.kind, MessageErrorKind::MissingVia, "{id}");
                assert_eq!(e.disposition(), msrp_signaling::sip::Disposition::Drop, "{id}");
                assert!(err["delimitable"].as_bool().unwrap());
                assert!(!e.headers.is_empty(), "{id}: the head was delimitable");
            }
            None => {
                let msgs = framed.unwrap_or_else(|e| panic!("{id}: {e}"));
                let want = expect["messages"].as_array().unwrap();
                assert_eq!(msgs.len(), want.len(), "{id} message count");
                for (raw_msg, e) in msgs.into_iter().zip(want) {
                    let m =
                        Message::parse(raw_msg, &Limits::default()).unwrap_or_else(|e| panic!("{id}: {e}"));
                    check_message(id, &m, e);
                }
            }
        }
    }
}

#[test]
fn folded_vector_unfolds() {
    let raw = std::fs::read(dir().join("SIP17_invite_folded_headers.sip")).unwrap();
    let m = Message::parse(
        frame_datagram(Bytes::from(raw), &Limits::default()).unwrap(),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(m.header("s"), Some("Folded header continued with a tab"));
    assert_eq!(m.header("CSeq"), Some("17 INVITE"));
}

#[test]
fn any_chunking_of_a_stream_frames_the_same() {
    let raw = std::fs::read(dir().join("SIP18_tcp_pipelined_message_options.sip")).unwrap();
    for step in [1, 7, 64, 500] {
        let mut f = StreamFramer::new(Limits::default());
        let mut got = Vec::new();
        for chunk in raw.chunks(step) {
            f.push(chunk);
            while let Some(m) = f.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got.len(), 2, "step {step}");
        assert_eq!(got.concat(), raw, "step {step}");
    }
}

mod roundtrip {
    use super::*;
    use msrp_signaling::sip::Uri;
    use proptest::prelude::*;

    fn host() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z][a-z0-9-]{0,8}(\\.[a-z][a-z0-9]{0,5}){0,2}",
            any::<[u8; 4]>().prop_map(|b| format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])),
            any::<[u16; 8]>().prop_map(|s| format!("[{}]", std::net::Ipv6Addr::from(s))),
        ]
    }

    fn sip_uri() -> impl Strategy<Value = String> {
        (
            any::<bool>(),
            proptest::option::of("[a-zA-Z0-9+._-]{1,8}(%2[0-9a-f])?"),
            host(),
            proptest::option::of(1u16..),
            proptest::collection::vec(("[a-z]{1,6}", proptest::option::of("[a-z0-9]{1,6}")), 0..3),
        )
            .prop_map(|(secure, user, host, port, params)| {
                let mut s = format!("{}:", if secure { "sips" } else { "sip" });
                if let Some(u) = user {
                    s += &format!("{u}@");
                }
                s += &host;
                if let Some(p) = port {
                    s += &format!(":{p}");
                }
                for (n, v) in params {
                    s += &format!(";{n}");
                    if let Some(v) = v {
                        s += &format!("={v}");
                    }
                }
                s
            })
    }

    fn any_uri() -> impl Strategy<Value = String> {
        prop_oneof![
            sip_uri(),
            "tel:\\+[0-9]{1,4}(-[0-9]{2,4}){0,3}".prop_map(String::from),
            "urn:service:sos(\\.[a-z]{1,8})?".prop_map(String::from),
        ]
    }

    proptest! {
        #[test]
        fn uri_display_parses_back(s in any_uri()) {
            let u = Uri::parse(&s).unwrap();
            prop_assert_eq!(Uri::parse(&u.to_string()).unwrap(), u);
        }

        #[test]
        fn name_addr_display_parses_back(uri in any_uri(), display in proptest::option::of("[ -~]{0,12}"), tag in proptest::option::of("[a-z0-9]{1,8}"), q in proptest::option::of("[ -~]{0,8}")) {
            let mut n = NameAddr::new(Uri::parse(&uri).unwrap());
            n.display = display;
            if let Some(t) = tag { n.params.push(("tag".into(), Some(t))); }
            if let Some(q) = q { n.params.push(("x".into(), Some(q))); }
            let back = NameAddr::parse(&n.to_string()).unwrap();
            prop_assert_eq!(back, n);
        }

        #[test]
        fn via_display_parses_back(host in host(), port in proptest::option::of(1u16..), branch in "z9hG4bK[a-zA-Z0-9.-]{1,10}", rport in proptest::option::of(proptest::option::of(1u16..))) {
            let mut s = format!("SIP/2.0/TCP {host}");
            if let Some(p) = port { s += &format!(":{p}"); }
            s += &format!(";branch={branch}");
            match rport { Some(Some(p)) => s += &format!(";rport={p}"), Some(None) => s += ";rport", None => {} }
            let v = Via::parse(&s).unwrap();
            prop_assert_eq!(Via::parse(&v.to_string()).unwrap(), v);
        }
    }
}
