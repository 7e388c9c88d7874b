//! Every MSRP vector of `vectors/manifest.json` against the parser:
//! frames, fields, errors and the count of good frames before an error, in
//! strict mode; the four documented exceptions in lenient mode.

mod support;

use msrp_engine::proto::{Continuation, ParserConfig, Strictness};
use serde_json::Value;
use sha2::{Digest, Sha256};
use support::{decode, manifest, vector_bytes, Decoded, DecodedFrame};

/// The negative vectors that lenient mode accepts (vectors/README.md).
const LENIENT_ACCEPTS: [&str; 4] = ["N12", "N24", "N31", "N38"];

fn strict() -> ParserConfig {
    ParserConfig::default()
}

fn lenient() -> ParserConfig {
    ParserConfig {
        strictness: Strictness::Lenient,
        ..ParserConfig::default()
    }
}

fn msrp_vectors() -> Vec<Value> {
    let all = manifest();
    let msrp: Vec<Value> = all.into_iter().filter(|v| v["kind"] == "msrp").collect();
    assert!(
        msrp.len() >= 100,
        "only {} MSRP vectors in the manifest",
        msrp.len()
    );
    msrp
}

fn flag_of(text: &str) -> Continuation {
    Continuation::from_byte(text.as_bytes()[0]).unwrap_or_else(|| panic!("bad flag {text}"))
}

/// Compares one decoded frame with a manifest frame; returns the mismatches.
fn frame_mismatches(id: &str, got: &DecodedFrame, want: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let mut check = |what: &str, ok: bool, detail: String| {
        if !ok {
            bad.push(format!("{id}: {what}: {detail}"));
        }
    };
    let want_response = want["type"] == "response";
    check(
        "type",
        got.response == want_response,
        format!("response={} want {}", got.response, want["type"]),
    );
    check(
        "tid",
        got.tid == want["tid"].as_str().unwrap_or_default(),
        format!("{} want {}", got.tid, want["tid"]),
    );
    if want_response {
        check(
            "status",
            Some(want["status"].as_u64()) == Some(got.status.map(u64::from)),
            format!("{:?}", got.status),
        );
    } else {
        check(
            "method",
            got.method.as_deref() == want["method"].as_str(),
            format!("{:?} want {}", got.method, want["method"]),
        );
    }
    check(
        "flag",
        got.flag == flag_of(want["flag"].as_str().unwrap_or("?")),
        format!("{:?}", got.flag),
    );
    let body_len = got.body.as_ref().map(|b| b.len() as u64);
    check(
        "body_len",
        body_len == want["body_len"].as_u64(),
        format!("{body_len:?} want {}", want["body_len"]),
    );
    for (name, value) in want["headers"].as_object().into_iter().flatten() {
        let value = value.as_str().unwrap_or_default();
        check(
            name,
            got.header(name) == Some(value),
            format!("{:?} want {value:?}", got.header(name)),
        );
    }
    bad
}

/// Checks a decode against the manifest entry; returns the mismatches.
fn mismatches(v: &Value, got: &Decoded) -> Vec<String> {
    let id = v["id"].as_str().unwrap_or("?");
    let expect = &v["expect"];
    let want_frames = expect["frames"].as_array().cloned().unwrap_or_default();
    let mut bad = Vec::new();
    match expect.get("error") {
        None => {
            if !got.errors.is_empty() {
                bad.push(format!("{id}: unexpected error {:?}", got.errors[0]));
            }
            if got.frames.len() != want_frames.len() {
                bad.push(format!(
                    "{id}: {} frames, want {}",
                    got.frames.len(),
                    want_frames.len()
                ));
            }
            for (g, w) in got.frames.iter().zip(&want_frames) {
                bad.extend(frame_mismatches(id, g, w));
            }
            // The manifest's endpoint verdict for a well-formed frame is never a 400.
            if expect["response"] == 400 {
                bad.push(format!("{id}: manifest expects 400 but no error"));
            }
        }
        Some(want) => {
            let after = want["after_frames"].as_u64().unwrap_or(u64::MAX) as usize;
            let Some(err) = got.errors.first() else {
                bad.push(format!("{id}: no error, want {}", want["kind"]));
                return bad;
            };
            if err.kind != want["kind"].as_str().unwrap_or_default() {
                bad.push(format!("{id}: error {} want {}", err.kind, want["kind"]));
            }
            if Some(err.delimitable) != want["delimitable"].as_bool() {
                bad.push(format!(
                    "{id}: delimitable {} want {}",
                    err.delimitable, want["delimitable"]
                ));
            }
            if err.after_frames != after {
                bad.push(format!(
                    "{id}: error after {} frames, want {after}",
                    err.after_frames
                ));
            }
            for (g, w) in got.frames.iter().zip(&want_frames) {
                bad.extend(frame_mismatches(id, g, w));
            }
            // Frames listed past `after_frames` describe the bad frame itself
            // (R03/R04: framing is fine, validation is not).
            if let Some(w) = want_frames.get(after) {
                match &err.frame {
                    Some(g) => bad.extend(frame_mismatches(id, g, w)),
                    None => bad.push(format!("{id}: the bad frame was not delimited")),
                }
            }
            // The reaction agrees with the endpoint's expected answer to the
            // first frame, where the error concerns that frame.
            if after == 0 {
                let says_400 = err.reaction == "400";
                if says_400 != (expect["response"] == 400) {
                    bad.push(format!(
                        "{id}: reaction {} but expected response {}",
                        err.reaction, expect["response"]
                    ));
                }
            }
        }
    }
    bad
}

#[test]
fn vector_files_are_intact() {
    for v in msrp_vectors() {
        let bytes = vector_bytes(&v);
        assert_eq!(Some(bytes.len() as u64), v["bytes"].as_u64(), "{}", v["id"]);
        let digest: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(Some(digest.as_str()), v["sha256"].as_str(), "{}", v["id"]);
    }
}

#[test]
fn every_vector_in_strict_mode() {
    let vectors = msrp_vectors();
    let mut bad = Vec::new();
    for v in &vectors {
        bad.extend(mismatches(v, &decode(&vector_bytes(v), strict(), &[])));
    }
    assert!(bad.is_empty(), "{} mismatches:\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn every_vector_one_byte_at_a_time() {
    let mut bad = Vec::new();
    for v in msrp_vectors() {
        let bytes = vector_bytes(&v);
        let cuts: Vec<usize> = (1..bytes.len()).collect();
        let whole = decode(&bytes, strict(), &[]);
        let split = decode(&bytes, strict(), &cuts);
        if whole != split {
            bad.push(format!("{}: byte-at-a-time decode differs", v["id"]));
        }
        bad.extend(mismatches(&v, &split));
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn lenient_mode_accepts_only_the_documented_exceptions() {
    let mut bad = Vec::new();
    for v in msrp_vectors() {
        let id = v["id"].as_str().unwrap_or("?");
        let got = decode(&vector_bytes(&v), lenient(), &[]);
        if LENIENT_ACCEPTS.contains(&id) {
            if !got.errors.is_empty() || got.frames.len() != 1 {
                bad.push(format!("{id}: lenient mode should accept it: {got:?}"));
            } else if got.frames[0].header("To-Path").is_none() || got.frames[0].body.is_none() {
                bad.push(format!("{id}: lenient decode lost fields: {:?}", got.frames[0]));
            }
        } else {
            bad.extend(mismatches(&v, &got).into_iter().map(|m| format!("lenient {m}")));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn the_four_exceptions_fail_in_strict_mode() {
    let vectors = msrp_vectors();
    for id in LENIENT_ACCEPTS {
        let v = vectors
            .iter()
            .find(|v| v["id"] == id)
            .unwrap_or_else(|| panic!("{id} missing"));
        let got = decode(&vector_bytes(v), strict(), &[]);
        assert_eq!(
            got.errors.first().map(|e| e.reaction),
            Some("400"),
            "{id}: {got:?}"
        );
    }
}

#[test]
fn flows_decode_as_one_stream() {
    // The chat and file-transfer flows back to back on one connection.
    let vectors = msrp_vectors();
    let flows: Vec<&Value> = vectors
        .iter()
        .filter(|v| v["file"].as_str().is_some_and(|f| f.starts_with("flows/")))
        .collect();
    assert_eq!(flows.len(), 12);
    let stream: Vec<u8> = flows.iter().flat_map(|v| vector_bytes(v)).collect();
    let got = decode(&stream, strict(), &[]);
    assert!(got.errors.is_empty(), "{:?}", got.errors);
    assert_eq!(got.frames.len(), 12);
    // F01, F03, F05 reassemble to the 5000-octet file they carry.
    let file: Vec<u8> = got
        .frames
        .iter()
        .filter(|f| f.header("Content-Type") == Some("image/jpeg"))
        .flat_map(|f| f.body.clone().unwrap_or_default())
        .collect();
    let beach = std::fs::read(support::vectors_dir().join("flows/beach.jpg.bin")).expect("beach.jpg.bin");
    assert_eq!(file, beach);
}

/// Every malformed request that the manifest answers with 400 can be
/// answered: the response echoes the tid that delimited it (even one that
/// breaks the ident rule, N03-N05) and goes to the leftmost From-Path URI.
#[test]
fn every_400_can_be_written_back() {
    use bytes::BytesMut;
    use msrp_engine::proto::{write_response_echo, Event, Parser};

    let mut answered = 0;
    for v in msrp_vectors() {
        if v["expect"]["response"] != 400 {
            continue;
        }
        let id = v["id"].as_str().unwrap_or("?");
        let mut parser = Parser::new(strict());
        parser.feed(&vector_bytes(&v));
        let bad = loop {
            match parser.poll() {
                Ok(Some(Event::Malformed(bad))) => break bad,
                Ok(Some(_)) => continue,
                other => panic!("{id}: no Malformed: {other:?}"),
            }
        };
        assert_eq!(bad.error.reaction(), msrp_engine::Reaction::Respond400, "{id}");
        // Digest 2.8: without a usable From-Path no response can be addressed.
        let Some(from) = bad.header("From-Path").and_then(|p| std::str::from_utf8(p).ok()) else {
            assert!(
                matches!(bad.error.kind(), "MissingFromPath" | "MissingToPath"),
                "{id}"
            );
            continue;
        };
        let to_us = bad
            .header("To-Path")
            .and_then(|p| std::str::from_utf8(p).ok())
            .unwrap_or(from);
        let leftmost = from.split(' ').next().unwrap_or(from);
        let mut out = BytesMut::new();
        write_response_echo(
            &mut out,
            bad.transaction_id(),
            400,
            Some("Bad Request"),
            leftmost,
            to_us,
        )
        .unwrap_or_else(|e| panic!("{id}: {e}"));
        let tid = String::from_utf8_lossy(bad.transaction_id()).into_owned();
        assert!(
            out.starts_with(format!("MSRP {tid} 400 Bad Request\r\n").as_bytes()),
            "{id}"
        );
        assert!(out.ends_with(format!("-------{tid}$\r\n").as_bytes()), "{id}");
        let back = support::decode(&out, lenient(), &[]);
        let echoed = back
            .frames
            .first()
            .or(back.errors.first().and_then(|e| e.frame.as_ref()));
        assert_eq!(
            echoed.map(|f| f.tid.as_str()),
            Some(tid.as_str()),
            "{id}: {back:?}"
        );
        answered += 1;
    }
    assert!(answered >= 20, "only {answered} vectors answered");
}
