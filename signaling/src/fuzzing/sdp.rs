//! SDP as it arrives in a SIP body: `find_sdp` (the multipart reader),
//! `parse_sdp`, and the real offer/answer functions (`answer`, `reanswer`).
//!
//! Input: the first line (up to LF) is the body's Content-Type, the rest
//! the body. Byte-exact vectors start with `application/sdp\n`.
//!
//! Checks: nothing panics; the SDP found is a slice of the body; a refusal
//! is a SIP error status; an answer is SDP that `parse_sdp` reads, with the
//! offer's m= lines (RFC 3264 6), each accepted line once and in order;
//! answering the same offer again in the same dialog (`reanswer`) accepts
//! the same lines, keeps the o= sess-id and our session ids (RFC 4975 8.4).

use crate::sdp::multipart::{find_sdp, split_parts, ContentType};
use crate::sdp::offer_answer::{answer, parse_sdp, reanswer, LocalEndpoint, Policy};

/// The `sdp` fuzz target.
pub fn sdp(data: &[u8]) {
    let (content_type, body) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&data[..0], data),
    };
    let Ok(content_type) = std::str::from_utf8(content_type) else {
        return;
    };
    if let Ok(sdp) = find_sdp(body, content_type) {
        let start = sdp.as_ptr() as usize - body.as_ptr() as usize;
        assert!(
            start + sdp.len() <= body.len(),
            "the SDP is not a slice of the body"
        );
    }
    if let Some(boundary) = ContentType::parse(content_type).param("boundary") {
        if let Ok(parts) = split_parts(body, boundary) {
            for part in &parts {
                let _ = part.content_type();
            }
        }
    }

    let policy = Policy {
        allow_tls: data.len() % 2 == 0,
        max_size: Some(1 << 20),
        ..Policy::default()
    };
    let local = LocalEndpoint {
        host: "198.51.100.20".into(),
        port: 2855,
    };
    let mut n = 0u32;
    let mut ids = move || {
        n += 1;
        format!("fuzzSession{n}")
    };
    let first = match answer(body, content_type, &policy, &local, &mut ids) {
        Ok(first) => first,
        Err(rejection) => {
            assert!((400..700).contains(&rejection.status), "{rejection}");
            assert!(!rejection.warning.is_empty());
            return;
        }
    };
    let offered = parse_sdp(find_sdp(body, content_type).expect("an answered body has SDP"))
        .expect("an answered offer parses");
    let ours = parse_sdp(&first.sdp).unwrap_or_else(|e| panic!("our answer does not parse: {e}"));
    assert_eq!(
        ours.medias.len(),
        offered.medias.len(),
        "the answer has other m= lines"
    );
    assert!(first.media.windows(2).all(|w| w[0].index < w[1].index));
    assert!(first.media.iter().all(|m| m.index < offered.medias.len()));
    for m in &first.media {
        assert_ne!(
            ours.medias[m.index].port, 0,
            "an accepted line answered with port 0"
        );
    }
    let second = reanswer(&first, body, content_type, &policy, &local, &mut ids)
        .unwrap_or_else(|e| panic!("the same offer re-offered is refused: {e}"));
    assert_eq!(second.origin_session_id, first.origin_session_id);
    let indices = |a: &crate::sdp::offer_answer::Answer| a.media.iter().map(|m| m.index).collect::<Vec<_>>();
    assert_eq!(
        indices(&second),
        indices(&first),
        "a re-offer accepts other lines"
    );
    for (a, b) in first.media.iter().zip(&second.media) {
        assert_eq!(
            a.local_session_id, b.local_session_id,
            "a re-offer changed our session id"
        );
    }
}
