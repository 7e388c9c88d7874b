//! Every `vectors/sdp/*.sdp` read with the expectations of
//! `vectors/manifest.json`; our answers to the RFC offers compared with the
//! RFC answers; write(parse(x)) keeps every attribute.

use std::path::PathBuf;

use msrp_signaling::sdp::{
    answer, Direction, FileSelector, LocalEndpoint, MsrpMedia, MsrpTransport, Policy, Setup,
};
use serde_json::Value;

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vectors")
}

/// The `kind: sdp` entries of the manifest.
fn sdp_entries() -> Vec<Value> {
    let text = std::fs::read_to_string(vectors().join("manifest.json")).unwrap();
    let manifest: Vec<Value> = serde_json::from_str(&text).unwrap();
    manifest
        .into_iter()
        .filter(|e| e["kind"] == "sdp" && e["file"].as_str().is_some_and(|f| f.starts_with("sdp/")))
        .collect()
}

/// sdp-types requires `v=` first; the RFC fragments (S01, S02, S08...) omit
/// v=/o=/s=/t=, so the test supplies the version line.
fn sdp_text(entry: &Value) -> Vec<u8> {
    let bytes = std::fs::read(vectors().join(entry["file"].as_str().unwrap())).unwrap();
    if bytes.starts_with(b"v=") {
        bytes
    } else {
        [b"v=0\r\n".as_slice(), &bytes].concat()
    }
}

fn session(entry: &Value) -> sdp_types::Session {
    sdp_types::Session::parse(&sdp_text(entry)).unwrap()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
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

fn local() -> LocalEndpoint {
    LocalEndpoint {
        host: "198.51.100.20".into(),
        port: 2855,
    }
}

fn counter() -> impl FnMut() -> String {
    let mut n = 0;
    move || {
        n += 1;
        format!("sid{n:04}")
    }
}

#[test]
fn every_vector_reads_as_the_manifest_says() {
    let entries = sdp_entries();
    assert_eq!(entries.len(), 19);
    for entry in &entries {
        let id = entry["id"].as_str().unwrap();
        let session = session(entry);
        let expected = entry["expect"]["media"].as_array().unwrap();
        assert_eq!(session.medias.len(), expected.len(), "{id}");
        for (media, want) in session.medias.iter().zip(expected) {
            let m = MsrpMedia::from_sdp(media, &session.attributes).unwrap_or_else(|e| panic!("{id}: {e}"));
            let m_line = format!("message {} {} *", m.port, m.transport.proto());
            assert_eq!(m_line, want["m-line"].as_str().unwrap(), "{id}");
            if let Some(path) = want.get("path") {
                assert_eq!(m.path, strings(path), "{id}");
            } else {
                assert!(m.path.is_empty(), "{id}");
            }
            assert_eq!(m.accept_types, strings(&want["accept-types"]), "{id}");
            let wrapped = want.get("accept-wrapped-types").map(strings).unwrap_or_default();
            assert_eq!(m.accept_wrapped_types, wrapped, "{id}");
            let direction = want
                .get("direction")
                .and_then(Value::as_str)
                .unwrap_or("sendrecv");
            assert_eq!(m.direction.name(), direction, "{id}");
            let max_size = want
                .get("max-size")
                .map(|v| v.as_str().unwrap().parse::<u64>().unwrap());
            assert_eq!(m.max_size, max_size, "{id}");
            assert_eq!(
                m.fingerprint.as_deref(),
                want.get("fingerprint").and_then(Value::as_str),
                "{id}"
            );
            check_file(id, &m, want);
        }
    }
}

fn check_file(id: &str, m: &MsrpMedia, want: &Value) {
    let Some(selector) = want.get("file-selector").and_then(Value::as_str) else {
        assert!(m.file.as_ref().is_none_or(|f| f.selector.is_none()), "{id}");
        return;
    };
    let file = m
        .file
        .as_ref()
        .unwrap_or_else(|| panic!("{id}: no file attributes"));
    let read = file.selector.as_ref().unwrap();
    assert_eq!(read, &FileSelector::parse(selector).unwrap(), "{id}");
    assert_eq!(
        read.to_string(),
        selector,
        "{id}: the selector is written back as it came"
    );
    // The manifest lists some attributes only (S12 leaves out its icon and
    // date): compare those it names.
    let range = file.range.map(|r| r.to_string());
    let dates: Vec<String> = file
        .dates
        .iter()
        .map(|d| format!("{}:\"{}\"", d.kind, d.value))
        .collect();
    let date = (!dates.is_empty()).then(|| dates.join(" "));
    for (key, read) in [
        ("file-transfer-id", file.transfer_id.as_deref()),
        ("file-disposition", file.disposition.as_deref()),
        ("file-icon", file.icon.as_deref()),
        ("file-range", range.as_deref()),
        ("file-date", date.as_deref()),
    ] {
        if let Some(expected) = want.get(key).and_then(Value::as_str) {
            assert_eq!(read, Some(expected), "{id}: {key}");
        }
    }
}

#[test]
fn write_parse_keeps_every_attribute() {
    for entry in &sdp_entries() {
        let id = entry["id"].as_str().unwrap();
        let mut session = session(entry);
        let read: Vec<MsrpMedia> = session
            .medias
            .iter()
            .map(|m| MsrpMedia::from_sdp(m, &session.attributes).unwrap())
            .collect();
        let names_before: Vec<Vec<String>> = session
            .medias
            .iter()
            .map(|m| m.attributes.iter().map(|a| a.attribute.clone()).collect())
            .collect();
        for (media, m) in session.medias.iter_mut().zip(&read) {
            m.write_into(media);
        }
        let mut written = Vec::new();
        session.write(&mut written).unwrap();
        let again = sdp_types::Session::parse(&written).unwrap();
        for ((media, m), names) in again.medias.iter().zip(&read).zip(&names_before) {
            assert_eq!(&MsrpMedia::from_sdp(media, &again.attributes).unwrap(), m, "{id}");
            let mut after: Vec<&str> = media.attributes.iter().map(|a| a.attribute.as_str()).collect();
            for name in names {
                let at = after
                    .iter()
                    .position(|a| a == name)
                    .unwrap_or_else(|| panic!("{id}: lost a={name}"));
                after.remove(at);
            }
            // Only an explicit direction may be added (RFC 3264 5.1 default).
            assert!(
                after.iter().all(|a| Direction::from_name(a).is_some()),
                "{id}: added {after:?}"
            );
        }
        // i= survives write_into.
        assert_eq!(session.medias[0].media_title, again.medias[0].media_title, "{id}");
    }
}

fn entry(id: &str) -> Value {
    sdp_entries().into_iter().find(|e| e["id"] == id).unwrap()
}

fn our_answer(
    id: &str,
    policy: &Policy,
) -> Result<msrp_signaling::sdp::Answer, msrp_signaling::sdp::Rejection> {
    answer(
        &sdp_text(&entry(id)),
        "application/sdp",
        policy,
        &local(),
        &mut counter(),
    )
}

fn answer_media(sdp: &[u8]) -> MsrpMedia {
    let session = sdp_types::Session::parse(sdp).unwrap();
    MsrpMedia::from_sdp(&session.medias[0], &session.attributes).unwrap()
}

#[test]
fn chat_offers_get_an_answer_like_the_rfc_answer() {
    // Offer -> the RFC's answer to it.
    for (offer, rfc_answer) in [
        ("S01", "S02"),
        ("S03", "S02"),
        ("S04", "S05"),
        ("S06", "S07"),
        ("S09", "S05"),
    ] {
        let ours = our_answer(offer, &policy()).unwrap_or_else(|r| panic!("{offer}: {r}"));
        let m = answer_media(&ours.sdp);
        let rfc = MsrpMedia::from_sdp(&session(&entry(rfc_answer)).medias[0], &[]).unwrap();
        assert_eq!(m.path, ["msrp://198.51.100.20:2855/sid0002;tcp"], "{offer}");
        assert_eq!(m.transport, rfc.transport, "{offer}");
        assert!(!m.accept_types.is_empty(), "{offer}");
        // RFC 6135 4.2.1: explicit; absent offer setup means an active offerer.
        assert_eq!(m.setup, Some(Setup::Passive), "{offer}");
        assert!(
            !ours.media[0].we_connect,
            "{offer}: RFC 4975 5.4, the offerer connects"
        );
    }
    // RFC 4975 8.7 Figure 10: an answerer taking cpim and plain text drops text/html.
    let strict = Policy {
        accept_types: vec!["message/cpim".into(), "text/plain".into()],
        ..policy()
    };
    let ours = our_answer("S04", &strict).unwrap();
    let rfc = MsrpMedia::from_sdp(&session(&entry("S05")).medias[0], &[]).unwrap();
    assert_eq!(answer_media(&ours.sdp).accept_types, rfc.accept_types);
}

#[test]
fn file_push_offers_get_the_rfc5547_answer() {
    for (offer, rfc_answer) in [("S12", "S13"), ("S11", "S13"), ("S16", "S17")] {
        let ours = our_answer(offer, &policy()).unwrap_or_else(|r| panic!("{offer}: {r}"));
        let m = answer_media(&ours.sdp);
        let rfc = MsrpMedia::from_sdp(&session(&entry(rfc_answer)).medias[0], &[]).unwrap();
        assert_eq!(m.direction, rfc.direction, "{offer}");
        assert_eq!(m.direction, Direction::RecvOnly, "{offer}");
        let offered = MsrpMedia::from_sdp(&session(&entry(offer)).medias[0], &[]).unwrap();
        let file = m.file.as_ref().unwrap();
        let offered_file = offered.file.as_ref().unwrap();
        assert_eq!(file.selector, offered_file.selector, "{offer}");
        assert_eq!(file.transfer_id, offered_file.transfer_id, "{offer}");
        // RFC 5547 8.3.1: never icon, disposition or date in the answer
        // (S17 has a disposition: tolerated, not emulated).
        assert!(
            file.icon.is_none() && file.disposition.is_none() && file.dates.is_empty(),
            "{offer}"
        );
        assert!(m.accept_types.contains(&"message/cpim".to_owned()), "{offer}");
    }
}

#[test]
fn tls_and_pull_offers_are_refused_with_the_reason() {
    for id in ["S08", "S19"] {
        let rejection = our_answer(id, &policy()).unwrap_err();
        assert_eq!(rejection.status, 488, "{id}");
        assert_eq!(
            rejection.warning,
            "TCP/TLS/MSRP needs MSRP over TLS, and the msrpd of this server has no --tls-listen",
            "{id}"
        );
    }
    let tls = Policy {
        allow_tls: true,
        ..policy()
    };
    let ours = our_answer("S19", &tls).unwrap();
    let m = answer_media(&ours.sdp);
    assert_eq!(m.transport, MsrpTransport::Tls);
    assert_eq!(m.path, ["msrps://198.51.100.20:2855/sid0002;tcp"]);
    // RFC 7977 5.2.2: the peer is the last URI; the first is where we would connect.
    assert_eq!(
        ours.media[0].remote.session_uri(),
        Some("msrps://df7jal23ls0d.invalid:2855/98cjs;ws")
    );
    let rejection = our_answer("S14", &policy()).unwrap_err();
    assert_eq!(rejection.status, 488);
    assert!(rejection.warning.contains("pull"), "{}", rejection.warning);
}

#[test]
fn the_capability_description_is_declined_not_failed() {
    // S18 is an OPTIONS capability (port 0, no path): as an offer it has no
    // stream to take.
    let rejection = our_answer("S18", &policy()).unwrap_err();
    assert_eq!(rejection.status, 488);
    assert!(rejection.warning.contains("port 0"), "{}", rejection.warning);
}
