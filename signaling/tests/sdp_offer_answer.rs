//! Our answers to the SDP of the SIP vectors, checked against
//! `vectors/sip/manifest.json` (`expect.response`, `expect.session`), an
//! offer/answer round trip between two of our endpoints, and a property:
//! any `MsrpMedia` we write reads back equal.

use std::path::PathBuf;

use msrp_engine::control::{SessionDirection, SessionRole};
use msrp_signaling::sdp::{
    answer, complete, offer, reanswer, Answer, Direction, FileAttributes, FileHash, FileSelector, FileType,
    LocalEndpoint, MsrpMedia, MsrpTransport, OfferOptions, Policy, Rejection, Setup,
};
use proptest::prelude::*;
use serde_json::Value;

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vectors/sip")
}

fn manifest_entry(id: &str) -> Value {
    let text = std::fs::read_to_string(vectors().join("manifest.json")).unwrap();
    let manifest: Vec<Value> = serde_json::from_str(&text).unwrap();
    manifest.into_iter().find(|e| e["id"] == id).unwrap()
}

/// A crude SIP split: headers up to the blank line, the body cut to
/// Content-Length (`l:` compact form too).
fn sip_body(id: &str) -> (String, Vec<u8>) {
    let entry = manifest_entry(id);
    let bytes = std::fs::read(vectors().join(entry["file"].as_str().unwrap())).unwrap();
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(bytes[..split].to_vec()).unwrap();
    let mut content_type = String::new();
    let mut length = 0usize;
    for line in head.split("\r\n") {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "content-type" | "c" => content_type = value.trim().to_owned(),
            "content-length" | "l" => length = value.trim().parse().unwrap(),
            _ => {}
        }
    }
    let body = &bytes[split + 4..];
    (content_type, body[..length.min(body.len())].to_vec())
}

fn policy() -> Policy {
    Policy {
        accept_types: vec!["text/plain".into(), "message/cpim".into(), "*".into()],
        accept_wrapped_types: vec!["*".into()],
        max_size: Some(10_485_760),
        sessions_per_dialog_max: 4,
        allow_tls: false,
        ..Policy::default()
    }
}

/// The UAS of the SIP vectors: ms.example.net, MSRP on 2855.
fn local() -> LocalEndpoint {
    LocalEndpoint {
        host: "198.51.100.20".into(),
        port: 2855,
    }
}

fn counter(prefix: &'static str) -> impl FnMut() -> String {
    let mut n = 0;
    move || {
        n += 1;
        format!("{prefix}{n:04}")
    }
}

fn answer_vector(id: &str, local: &LocalEndpoint) -> Result<Answer, Rejection> {
    let (content_type, body) = sip_body(id);
    answer(&body, &content_type, &policy(), local, &mut counter("s"))
}

fn first_media(sdp: &[u8]) -> (sdp_types::Session, MsrpMedia) {
    let session = sdp_types::Session::parse(sdp).unwrap();
    let media = MsrpMedia::from_sdp(&session.medias[0], &session.attributes).unwrap();
    (session, media)
}

/// `expect.response.answer` (or `answer_in_200`) against our answer.
fn check_answer(id: &str, ours: &Answer) {
    let entry = manifest_entry(id);
    let response = &entry["expect"]["response"];
    let want = response
        .get("answer")
        .or_else(|| response.get("answer_in_200"))
        .unwrap();
    let (_, m) = first_media(&ours.sdp);
    let text = std::str::from_utf8(&ours.sdp).unwrap();
    assert!(
        text.split_inclusive('\n').all(|l| l.ends_with("\r\n")),
        "{id}: CRLF line ends"
    );
    assert!(
        text.starts_with("v=0\r\no=- ") && text.contains("\r\ns=-\r\n") && text.contains("\r\nt=0 0\r\n")
    );
    if let Some(setup) = want.get("setup").and_then(Value::as_str) {
        assert_eq!(m.setup.map(Setup::name), Some(setup), "{id}");
    }
    if let Some(direction) = want.get("direction").and_then(Value::as_str) {
        assert_eq!(m.direction.name(), direction, "{id}");
    }
    if let Some(port) = want.get("m_port").and_then(Value::as_u64) {
        assert_eq!(u64::from(m.port), port, "{id}");
    }
    if let Some(m_line) = want.get("m").and_then(Value::as_str) {
        let proto = m_line.split(' ').nth(2).unwrap();
        assert_eq!(m.transport.proto(), proto, "{id}");
    }
    if let Some(path) = want
        .get("path")
        .and_then(Value::as_str)
        .filter(|p| p.contains("<session-id>"))
    {
        let expected = path
            .replace("<port>", "2855")
            .replace("<session-id>", &ours.media[0].local_session_id);
        assert_eq!(m.path, [expected], "{id}");
    }
    if let Some(c) = want.get("c").and_then(Value::as_str) {
        assert!(text.contains(&format!("\r\nc={c}\r\n")), "{id}: {text}");
    }
    assert!(!m.accept_types.is_empty(), "{id}");
    if let Some(who) = response.get("who_connects").and_then(Value::as_str) {
        let we_connect = who.starts_with("answerer");
        assert_eq!(ours.media[0].we_connect, we_connect, "{id}: {who}");
        let role = if we_connect {
            SessionRole::Active
        } else {
            SessionRole::Passive
        };
        assert_eq!(ours.media[0].descriptor().role, role, "{id}");
    }
}

/// `expect.session` against the descriptor the engine gets.
fn check_session(id: &str, ours: &Answer) {
    let entry = manifest_entry(id);
    let session = &entry["expect"]["session"];
    if session.is_null() {
        return;
    }
    let negotiated = &ours.media[0];
    let d = negotiated.descriptor();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    if let Some(path) = session.get("peer_path") {
        assert_eq!(d.remote_path, strings(path), "{id}");
    }
    assert_eq!(
        d.session_id.as_deref(),
        Some(negotiated.local_session_id.as_str())
    );
    assert_eq!(d.local_uri.as_deref(), negotiated.local.session_uri());
    assert_eq!(d.accept_types, negotiated.local.accept_types);
    assert_eq!(d.max_size, Some(10_485_760));
    if let Some(types) = session.get("peer_accept_types") {
        assert_eq!(d.remote_accept_types, strings(types), "{id}");
    }
    if let Some(types) = session.get("peer_accept_wrapped_types") {
        assert_eq!(negotiated.remote.accept_wrapped_types, strings(types), "{id}");
    }
    if let Some(size) = session.get("peer_max_size") {
        assert_eq!(d.remote_max_size, size.as_u64(), "{id}");
    }
    if let Some(fingerprint) = session.get("peer_fingerprint").and_then(Value::as_str) {
        assert_eq!(
            negotiated.remote.fingerprint.as_deref(),
            Some(fingerprint),
            "{id}"
        );
    }
    if let Some(file) = session.get("file") {
        let selector = negotiated
            .remote
            .file
            .as_ref()
            .and_then(|f| f.selector.as_ref())
            .unwrap();
        assert_eq!(selector.name.as_deref(), file["name"].as_str(), "{id}");
        assert_eq!(
            selector.file_type.as_ref().map(|t| t.mime.as_str()),
            file["type"].as_str(),
            "{id}"
        );
        assert_eq!(selector.size, file["size"].as_u64(), "{id}");
        assert_eq!(selector.hashes[0].value, file["sha1"].as_str().unwrap(), "{id}");
    }
}

#[test]
fn new_invites_are_answered_as_the_manifest_says() {
    for id in ["SIP01", "SIP02", "SIP03", "SIP06", "SIP16", "SIP17", "SIP22"] {
        let ours = answer_vector(id, &local()).unwrap_or_else(|r| panic!("{id}: {r}"));
        check_answer(id, &ours);
        check_session(id, &ours);
    }
}

#[test]
fn sip06_voicemail_push_answer_copies_and_omits_as_rfc5547_says() {
    let ours = answer_vector("SIP06", &local()).unwrap();
    let (_, m) = first_media(&ours.sdp);
    assert!(m.accept_types.contains(&"audio/amr".to_owned()));
    let file = m.file.unwrap();
    assert_eq!(
        file.transfer_id.as_deref(),
        Some("Vq3ZpX8mW2nRt6Ly0KfB9sHd4GjC1aEu")
    );
    let selector = file.selector.unwrap();
    assert_eq!(selector.name.as_deref(), Some("RECORD_VMD4_1.amr"));
    assert_eq!(selector.size, Some(6406));
    let text = std::str::from_utf8(&ours.sdp).unwrap();
    for forbidden in ["file-disposition", "file-date", "file-icon"] {
        assert!(!text.contains(forbidden), "{forbidden} in {text}");
    }
    assert_eq!(ours.media[0].descriptor().direction, SessionDirection::Recvonly);
}

#[test]
fn sip07_ipv6_answer() {
    let v6 = LocalEndpoint {
        host: "2001:db8:0:2::20".into(),
        port: 2855,
    };
    let ours = answer_vector("SIP07", &v6).unwrap();
    check_answer("SIP07", &ours);
    check_session("SIP07", &ours);
    assert!(std::str::from_utf8(&ours.sdp).unwrap().contains("o=- "));
}

#[test]
fn tls_offers_are_refused_with_the_reason_while_tls_is_off() {
    for id in ["SIP05", "SIP15"] {
        let rejection = answer_vector(id, &local()).unwrap_err();
        assert_eq!(rejection.status, 488, "{id}");
        assert_eq!(
            rejection.warning,
            "TCP/TLS/MSRP needs MSRP over TLS, and the msrpd of this server has no --tls-listen",
            "{id}"
        );
    }
    // With TLS on, SIP05 gets an msrps answer and the peer's fingerprint reaches us.
    let (content_type, body) = sip_body("SIP05");
    let tls = Policy {
        allow_tls: true,
        ..policy()
    };
    let ours = answer(&body, &content_type, &tls, &local(), &mut counter("t")).unwrap();
    check_answer("SIP05", &ours);
    check_session("SIP05", &ours);
    assert_eq!(ours.media[0].local.transport, MsrpTransport::Tls);
}

#[test]
fn sip13_an_offer_without_media_gets_an_answer_without_media() {
    let ours = answer_vector("SIP13", &local()).unwrap();
    assert!(ours.media.is_empty());
    assert!(!std::str::from_utf8(&ours.sdp).unwrap().contains("m="));
}

#[test]
fn reoffers_keep_our_path_and_take_the_peers_changes() {
    // SIP08: the SIP01 caller moved; our path stays, theirs changes.
    let first = answer_vector("SIP01", &local()).unwrap();
    let (content_type, body) = sip_body("SIP08");
    let again = reanswer(
        &first,
        &body,
        &content_type,
        &policy(),
        &local(),
        &mut counter("x"),
    )
    .unwrap();
    check_answer("SIP08", &again);
    check_session("SIP08", &again);
    assert_eq!(again.media[0].local.path, first.media[0].local.path);
    assert_eq!(again.origin_session_id, first.origin_session_id);
    // Our side did not change: RFC 3264 8 keeps the version (and the bytes).
    assert_eq!(again.session_version, first.session_version);
    assert_eq!(again.sdp, first.sdp);

    // SIP09: UPDATE in the SIP02 dialog with new accept-types and max-size.
    let first = answer_vector("SIP02", &local()).unwrap();
    let (content_type, body) = sip_body("SIP09");
    let again = reanswer(
        &first,
        &body,
        &content_type,
        &policy(),
        &local(),
        &mut counter("y"),
    )
    .unwrap();
    check_answer("SIP09", &again);
    check_session("SIP09", &again);
    assert_eq!(
        again.media[0].local.path, first.media[0].local.path,
        "path unchanged"
    );
    assert_eq!(
        again.media[0].descriptor().role,
        first.media[0].descriptor().role,
        "same roles"
    );
    // Our accept-types follow the peer's new list: the answer changed.
    assert_eq!(again.session_version, first.session_version + 1);
}

#[test]
fn sip04_offer_in_200_completed_by_the_sip24_ack() {
    let ours = offer(&policy(), &local(), &OfferOptions::default(), &mut counter("o"));
    let entry = manifest_entry("SIP04");
    let want = &entry["expect"]["response"]["offer_in_200"];
    let (_, m) = first_media(&ours.sdp);
    assert_eq!(m.setup.map(Setup::name), want["setup"].as_str());
    let path = want["path"]
        .as_str()
        .unwrap()
        .replace("<port>", "2855")
        .replace("<session-id>", &ours.local_session_ids[0]);
    assert_eq!(m.path, [path]);
    assert!(!m.accept_types.is_empty());

    let (content_type, body) = sip_body("SIP24");
    let media = complete(&ours, &body, &content_type).unwrap();
    // SIP24's answer is setup:active: the peer connects to us.
    assert!(!media[0].we_connect);
    let d = media[0].descriptor();
    assert_eq!(d.role, SessionRole::Passive);
    assert_eq!(d.remote_path, ["msrp://192.0.2.50:9/q0w9e8r7t6y5;tcp"]);
    assert_eq!(d.local_uri.as_deref(), Some(m.path[0].as_str()));
}

#[test]
fn rejections_name_why() {
    let strict = Policy {
        accept_types: vec!["text/plain".into()],
        ..policy()
    };
    let offer_html = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
        m=message 2855 TCP/MSRP *\r\na=accept-types:text/html\r\na=path:msrp://192.0.2.1:2855/a;tcp\r\n";
    let r = answer(
        offer_html,
        "application/sdp",
        &strict,
        &local(),
        &mut counter("r"),
    )
    .unwrap_err();
    assert_eq!(
        (r.status, r.warning.as_str()),
        (488, "accept-types text/html not supported")
    );

    let audio = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    let r = answer(audio, "application/sdp", &policy(), &local(), &mut counter("r")).unwrap_err();
    assert_eq!(
        (r.status, r.warning.as_str()),
        (488, "no m=message TCP/MSRP media")
    );

    let one = Policy {
        sessions_per_dialog_max: 1,
        ..policy()
    };
    let two =
        b"v=0\r\ns=-\r\nt=0 0\r\nm=message 1 TCP/MSRP *\r\na=accept-types:*\r\na=path:msrp://h:1/a;tcp\r\n\
        m=message 1 TCP/MSRP *\r\na=accept-types:*\r\na=path:msrp://h:1/b;tcp\r\n";
    let r = answer(two, "application/sdp", &one, &local(), &mut counter("r")).unwrap_err();
    assert_eq!(r.status, 488);
    assert!(
        r.warning
            .contains("more MSRP media lines than sessions_per_dialog_max"),
        "{}",
        r.warning
    );

    let r = answer(
        b"v=0\r\nthis is not sdp\r\n",
        "application/sdp",
        &policy(),
        &local(),
        &mut counter("r"),
    )
    .unwrap_err();
    assert_eq!(r.status, 400);
    assert!(r.warning.contains("line 2"), "{}", r.warning);

    // sdp-types alone panics on this one (a bad line inside a media description).
    let bad_media = b"v=0\r\ns=-\r\nm=message 1 TCP/MSRP *\r\nbogus\r\na=path:x\r\n";
    let r = answer(
        bad_media,
        "application/sdp",
        &policy(),
        &local(),
        &mut counter("r"),
    )
    .unwrap_err();
    assert_eq!(r.status, 400);
    assert!(r.warning.contains("line 4"), "{}", r.warning);

    let r = answer(b"hello", "text/plain", &policy(), &local(), &mut counter("r")).unwrap_err();
    assert_eq!(r.status, 415);
}

#[test]
fn non_msrp_lines_are_declined_with_port_zero_and_msrp_is_answered() {
    let mixed = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n\
        m=message 2855 TCP/MSRP *\r\na=accept-types:text/plain\r\na=path:msrp://192.0.2.1:2855/a;tcp\r\n";
    let ours = answer(mixed, "application/sdp", &policy(), &local(), &mut counter("m")).unwrap();
    let session = sdp_types::Session::parse(&ours.sdp).unwrap();
    assert_eq!(
        session.medias.len(),
        2,
        "RFC 3264 6: one answer line per offer line"
    );
    assert_eq!(
        (session.medias[0].port, session.medias[0].proto.as_str()),
        (0, "RTP/AVP")
    );
    assert_eq!(session.medias[1].port, 2855);
    assert_eq!(ours.media[0].index, 1);
}

#[test]
fn two_endpoints_negotiate_crossing_paths() {
    let alice_local = LocalEndpoint {
        host: "192.0.2.10".into(),
        port: 2855,
    };
    let alice_policy = Policy {
        max_size: Some(262_144),
        ..policy()
    };
    let bob_policy = Policy {
        accept_types: vec!["message/cpim".into(), "text/plain".into()],
        ..policy()
    };
    let offered = offer(
        &alice_policy,
        &alice_local,
        &OfferOptions::default(),
        &mut counter("alice"),
    );
    let bob = answer(
        &offered.sdp,
        "application/sdp",
        &bob_policy,
        &local(),
        &mut counter("bob"),
    )
    .unwrap();
    let alice = complete(&offered, &bob.sdp, "application/sdp").unwrap();

    let (a, b) = (alice[0].descriptor(), bob.media[0].descriptor());
    assert_eq!((a.role, b.role), (SessionRole::Active, SessionRole::Passive));
    assert_eq!(a.remote_path, [b.local_uri.clone().unwrap()]);
    assert_eq!(b.remote_path, [a.local_uri.clone().unwrap()]);
    assert_eq!(a.remote_accept_types, b.accept_types);
    assert_eq!(b.remote_accept_types, a.accept_types);
    assert_eq!(b.remote_max_size, Some(262_144));
    assert_eq!(a.remote_max_size, b.max_size);
}

#[test]
fn file_push_round_trip() {
    let amr = std::fs::read(vectors().join("files/RECORD_VMD4_1.amr")).unwrap();
    let file = FileAttributes {
        selector: Some(FileSelector {
            name: Some("RECORD_VMD4_1.amr".into()),
            file_type: Some(FileType {
                mime: "audio/amr".into(),
                params: vec![],
            }),
            size: Some(amr.len() as u64),
            hashes: vec![FileHash::sha1_of(&amr)],
            extensions: vec![],
        }),
        transfer_id: Some("Vq3ZpX8mW2nRt6Ly0KfB9sHd4GjC1aEu".into()),
        ..FileAttributes::default()
    };
    let options = OfferOptions {
        direction: Direction::SendOnly,
        file: Some(file.clone()),
        accept_types: Some(vec!["message/cpim".into()]),
        ..OfferOptions::default()
    };
    let offered = offer(&policy(), &local(), &options, &mut counter("f"));
    let peer = LocalEndpoint {
        host: "192.0.2.7".into(),
        port: 2855,
    };
    let answered = answer(
        &offered.sdp,
        "application/sdp",
        &policy(),
        &peer,
        &mut counter("g"),
    )
    .unwrap();
    assert_eq!(answered.media[0].local.direction, Direction::RecvOnly);
    assert_eq!(answered.media[0].local.file, Some(file.clone()));
    let ours = complete(&offered, &answered.sdp, "application/sdp").unwrap();
    assert_eq!(ours[0].descriptor().direction, SessionDirection::Sendonly);
    assert_eq!(ours[0].remote.file.as_ref().unwrap().selector, file.selector);
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9._-]{0,12}"
}

fn mime() -> impl Strategy<Value = String> {
    prop_oneof![Just("*".to_owned()), "[a-z]{1,8}/[a-z0-9.+-]{1,10}"]
}

fn file_attrs() -> impl Strategy<Value = Option<FileAttributes>> {
    let selector = (
        proptest::option::of("[^\r\n\0]{1,20}"),
        proptest::option::of("[a-z]{1,6}/[a-z]{1,6}"),
        proptest::option::of(any::<u64>()),
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..21), 0..2),
    )
        .prop_map(|(name, mime, size, hashes)| FileSelector {
            name,
            file_type: mime.map(|mime| FileType { mime, params: vec![] }),
            size,
            hashes: hashes
                .iter()
                .map(|h| FileHash {
                    algorithm: "sha-1".into(),
                    value: h.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":"),
                })
                .collect(),
            extensions: vec![],
        });
    proptest::option::of(
        (proptest::option::of(selector), proptest::option::of(token())).prop_map(
            |(selector, transfer_id)| FileAttributes {
                selector,
                transfer_id,
                ..FileAttributes::default()
            },
        ),
    )
    .prop_map(|f| f.filter(|f| !f.is_empty()))
}

fn msrp_media() -> impl Strategy<Value = MsrpMedia> {
    let setup = prop_oneof![
        Just(Setup::Active),
        Just(Setup::Passive),
        Just(Setup::ActPass),
        Just(Setup::HoldConn)
    ];
    let direction = prop_oneof![
        Just(Direction::SendRecv),
        Just(Direction::SendOnly),
        Just(Direction::RecvOnly),
        Just(Direction::Inactive)
    ];
    let uri = token().prop_map(|t| format!("msrp://192.0.2.1:2855/{t};tcp"));
    (
        (any::<u16>(), any::<bool>(), proptest::collection::vec(uri, 0..3)),
        (
            proptest::collection::vec(mime(), 0..4),
            proptest::collection::vec(mime(), 0..3),
        ),
        (
            proptest::option::of(any::<u64>()),
            direction,
            proptest::option::of(setup),
        ),
        (
            proptest::option::of(any::<bool>()),
            proptest::option::of("SHA-256 [0-9A-F]{2}(:[0-9A-F]{2}){3}"),
        ),
        file_attrs(),
        proptest::collection::vec(("x-[a-z]{1,8}", proptest::option::of("[!-~]{1,10}")), 0..3),
    )
        .prop_map(
            |(
                (port, tls, path),
                (accept_types, accept_wrapped_types),
                (max_size, direction, setup),
                (connection_new, fingerprint),
                file,
                other,
            )| {
                MsrpMedia {
                    port,
                    transport: if tls {
                        MsrpTransport::Tls
                    } else {
                        MsrpTransport::Tcp
                    },
                    path,
                    accept_types,
                    accept_wrapped_types,
                    max_size,
                    direction,
                    setup,
                    connection_new,
                    fingerprint,
                    file,
                    other,
                }
            },
        )
}

proptest! {
    #[test]
    fn any_media_we_write_reads_back_equal(media in msrp_media()) {
        let mut session = sdp_types::Session::parse(b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\n").unwrap();
        session.medias.push(media.to_sdp());
        let mut text = Vec::new();
        session.write(&mut text).unwrap();
        let again = sdp_types::Session::parse(&text).unwrap();
        prop_assert_eq!(MsrpMedia::from_sdp(&again.medias[0], &again.attributes).unwrap(), media);
    }
}

/// A REST session may ask for its own `a=setup` and `a=max-size` in our
/// offer (RFC 6135 4.2.2 lets an offerer be active or passive).
#[test]
fn an_offer_takes_the_setup_and_max_size_it_is_given() {
    let options = OfferOptions {
        setup: Some(Setup::Active),
        max_size: Some(4096),
        ..OfferOptions::default()
    };
    let offered = offer(&policy(), &local(), &options, &mut counter("o"));
    let text = String::from_utf8_lossy(&offered.sdp).into_owned();
    assert!(text.contains("a=setup:active\r\n"), "{text}");
    assert!(text.contains("a=max-size:4096\r\n"), "{text}");
    let plain = offer(&policy(), &local(), &OfferOptions::default(), &mut counter("p"));
    assert!(String::from_utf8_lossy(&plain.sdp).contains("a=setup:actpass\r\n"));
}

/// Lines sdp-types 0.1.8 cannot survive are refused 400 before it sees
/// them, each naming the line (RFC 4566 5); both once panicked it under the
/// `sdp` fuzz target, where a panic is fatal whatever catches it later.
#[test]
fn sdp_lines_that_broke_the_parser_are_refused_400_naming_the_line() {
    for (sdp, says) in [
        (
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n== \r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=message 9 TCP/MSRP *\r\n",
            "line 3 \"== \" is not <type>=<value>",
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nt=0 0\r\nm=message 9 TCP/MSRP *\r\ns=late\r\n",
            "line 5 \"s=late\" is a session-level line after an m= line",
        ),
    ] {
        match msrp_signaling::sdp::parse_sdp(sdp.as_bytes()) {
            Err(rejection) => {
                assert_eq!(rejection.status, 400, "{sdp:?}");
                assert!(rejection.warning.contains(says), "{}", rejection.warning);
            }
            Ok(_) => panic!("accepted {sdp:?}"),
        }
    }
}
