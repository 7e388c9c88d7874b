//! `msrpd decode` through its real interface: the binary, files, stdin, exit
//! codes, JSON lines.

mod support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use serde_json::Value;
use sha2::{Digest, Sha256};

fn msrpd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_msrpd"))
}

fn vector(name_prefix: &str) -> Vec<u8> {
    let entry = support::manifest()
        .into_iter()
        .find(|v| v["id"] == name_prefix)
        .unwrap_or_else(|| panic!("vector {name_prefix} missing"));
    support::vector_bytes(&entry)
}

fn lines(stdout: &[u8]) -> Vec<Value> {
    std::str::from_utf8(stdout)
        .expect("decode prints UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// Runs `msrpd decode ARGS` with `input` on stdin; returns (exit code, lines).
fn decode_stdin(args: &[&str], input: &[u8]) -> (i32, Vec<Value>) {
    let mut child = msrpd()
        .arg("decode")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start msrpd");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("msrpd output");
    writer.join().expect("writer").expect("write stdin");
    (out.status.code().expect("exit code"), lines(&out.stdout))
}

const FLOWS: [&str; 12] = [
    "M01", "M02", "M03", "M04", "M05", "F01", "F02", "F03", "F04", "F05", "F06", "F07",
];

#[test]
fn decodes_a_file_and_stdin_alike() {
    let stream: Vec<u8> = FLOWS.iter().flat_map(|id| vector(id)).collect();
    let dir = std::env::temp_dir().join(format!("msrpd-decode-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("flows.msrp");
    std::fs::write(&path, &stream).expect("write capture");

    let out = msrpd().arg("decode").arg(&path).output().expect("run msrpd");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_file = lines(&out.stdout);
    let (code, from_stdin) = decode_stdin(&[], &stream);
    assert_eq!(code, 0);
    assert_eq!(from_file, from_stdin);
    std::fs::remove_dir_all(&dir).ok();

    assert_eq!(from_file.len(), 12);
    let send = &from_file[0];
    assert_eq!(send["kind"], "request");
    assert_eq!(send["method"], "SEND");
    assert_eq!(send["tid"], "tpKnDu4Ft4jkCRhQ");
    assert_eq!(
        send["to_path"][0],
        "msrp://198.51.100.20:2855/yLj7wU8m3WNYnErIrgGr;tcp"
    );
    assert_eq!(send["byte_range"], serde_json::json!([1, 160, 160]));
    assert_eq!(send["success_report"], "yes");
    assert_eq!(send["body_len"], 160);
    assert_eq!(send["flag"], "$");
    assert_eq!(send["offset"], 0);
    let ok = &from_file[1];
    assert_eq!(
        (ok["kind"].as_str(), ok["status"].as_u64(), ok["comment"].as_str()),
        (Some("response"), Some(200), Some("OK"))
    );
    assert_eq!(ok["body_len"], Value::Null);
    assert_eq!(ok["offset"].as_u64(), Some(vector("M01").len() as u64));
    let report = &from_file[2];
    assert_eq!(
        report["status_header"],
        serde_json::json!({"namespace": 0, "code": 200, "comment": "OK"})
    );

    // The three file chunks hash to what the flow carries.
    let beach = std::fs::read(support::vectors_dir().join("flows/beach.jpg.bin")).expect("beach");
    let chunks: Vec<&Value> = from_file
        .iter()
        .filter(|l| l["content_type"] == "image/jpeg")
        .collect();
    let expected = [&beach[..2048], &beach[2048..4096], &beach[4096..]];
    assert_eq!(chunks.len(), 3);
    for (line, part) in chunks.iter().zip(expected) {
        let digest: String = Sha256::digest(part).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(line["body_sha256"].as_str(), Some(digest.as_str()));
        assert_eq!(line["body_len"].as_u64(), Some(part.len() as u64));
    }
}

#[test]
fn resumes_after_a_delimitable_error_and_stops_at_lost_framing() {
    let mut stream = vector("M01");
    stream.extend(vector("N36")); // duplicate Message-ID: 400, delimitable
    stream.extend(vector("N20")); // response ending in '+': discard
    stream.extend(vector("M02"));
    stream.extend(vector("N01")); // garbage: framing lost
    stream.extend(vector("M04")); // never reached
    let (code, out) = decode_stdin(&[], &stream);
    assert_eq!(code, 1);
    let summary: Vec<String> = out
        .iter()
        .map(|l| match l["error"].as_str() {
            Some(kind) => format!(
                "{kind}/{}/{}",
                l["reaction"].as_str().unwrap_or("?"),
                l["delimitable"]
            ),
            None => l["kind"].as_str().unwrap_or("?").to_owned(),
        })
        .collect();
    assert_eq!(
        summary,
        [
            "request",
            "DuplicateHeader/400/true",
            "BadResponse/discard/true",
            "response",
            "FramingLost/close/false"
        ]
    );
    let dup = &out[1];
    assert_eq!(dup["tid"], "a786hjs2");
    assert_eq!(dup["offset"].as_u64(), Some(vector("M01").len() as u64));
}

#[test]
fn strictness_and_chunk_limit_flags() {
    let n31 = vector("N31");
    assert_eq!(decode_stdin(&[], &n31).0, 1);
    let (code, out) = decode_stdin(&["--lenient"], &n31);
    assert_eq!(code, 0);
    assert_eq!(out[0]["tid"], "a786hjs2");

    let c04 = vector("C04"); // a 3200-octet chunk
    let (code, out) = decode_stdin(&["--max-chunk", "3KiB"], &c04);
    assert_eq!(code, 1);
    assert_eq!(out[0]["error"], "LimitExceeded");
    assert_eq!(out[0]["reaction"], "close");
    assert_eq!(decode_stdin(&["--max-chunk", "4KiB"], &c04).0, 0);

    let bad = msrpd()
        .args(["decode", "--max-chunk", "lots"])
        .output()
        .expect("run");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a size"));
    let missing = msrpd()
        .args(["decode", "/nonexistent/capture.msrp"])
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot open"));
}

/// Writes one SEND whose single chunk carries `len` generated octets, and
/// returns the body's SHA-256.
fn write_big_send(out: &mut impl Write, len: u64) -> std::io::Result<String> {
    let head = format!(
        "MSRP bigchunk1 SEND\r\nTo-Path: msrp://198.51.100.20:2855/yLj7wU8m3WNYnErIrgGr;tcp\r\n\
         From-Path: msrp://192.0.2.10:2855/3GEoWeUeCAF4sXNosViq;tcp\r\nMessage-ID: big00001\r\n\
         Byte-Range: 1-{len}/{len}\r\nContent-Type: application/octet-stream\r\n\r\n"
    );
    out.write_all(head.as_bytes())?;
    let mut block = vec![0u8; 1 << 20];
    let mut sha = Sha256::new();
    let mut left = len;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    while left > 0 {
        for word in block.chunks_mut(8) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            word.copy_from_slice(&seed.to_le_bytes());
        }
        let n = left.min(block.len() as u64) as usize;
        sha.update(&block[..n]);
        out.write_all(&block[..n])?;
        left -= n as u64;
    }
    out.write_all(b"\r\n-------bigchunk1$\r\n")?;
    Ok(sha.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[test]
// The child is reaped with wait4 below, to read its peak RSS.
#[allow(clippy::zombie_processes)]
fn a_one_gib_chunk_streams_through_in_bounded_memory() {
    const LEN: u64 = 1 << 30;
    let mut child = msrpd()
        .args(["decode", "--max-chunk", "2GiB"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start msrpd");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || write_big_send(&mut stdin, LEN));
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut stdout)
        .expect("read");
    let digest = writer.join().expect("writer").expect("write");

    // Reap the child with wait4 to read its peak resident set size.
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    let peak_rss_kib = usage.ru_maxrss as u64;
    assert!(
        peak_rss_kib < 64 * 1024,
        "msrpd decode peaked at {peak_rss_kib} KiB for a 1 GiB chunk"
    );

    let out = lines(&stdout);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["body_len"].as_u64(), Some(LEN));
    assert_eq!(out[0]["body_sha256"].as_str(), Some(digest.as_str()));
}

#[test]
fn the_readme_sample_decodes_cleanly() {
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/chat-and-file.msrp");
    let input = std::fs::read(&sample).expect("engine/samples/chat-and-file.msrp");
    let (code, out) = decode_stdin(&[], &input);
    assert_eq!(code, 0);
    assert_eq!(out.len(), 12);
    assert!(out.iter().all(|l| l.get("error").is_none()));
}
