//! The shared vectors through a real [`Connection`]: every vector whose
//! manifest entry gives a receiver context (`expect.ctx`) is fed to a
//! connection holding that context's sessions, and the responses it writes
//! must be the manifest's `expect.response` (200, 400, 413, 415, 481, 501,
//! 506 or nothing), whole and one octet at a time.

mod support;

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use msrp_engine::proto::{Event as WireEvent, FrameKind, Method, Parser, ParserConfig};
use msrp_engine::{
    Connection, ConnectionConfig, Event, Lookup, MsrpUri, ReceivedBody, Role, SessionConfig, SessionDirectory,
};
use serde_json::Value;

/// The peer every crafted vector comes from, for vectors whose From-Path
/// cannot be read.
const DEFAULT_PEER: &str = "msrp://192.0.2.10:2855/3GEoWeUeCAF4sXNosViq;tcp";

/// The context's sessions, claimed when a request first names them.
struct VectorDirectory {
    ctx: Value,
    peer: MsrpUri,
}

impl SessionDirectory for VectorDirectory {
    fn lookup(&mut self, uri: &MsrpUri, from_peer: &dyn Fn(&SessionConfig) -> bool) -> Lookup {
        let known = self.ctx["local_uris"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u.as_str()?.parse::<MsrpUri>().ok())
            .any(|local| &local == uri);
        if !known {
            return Lookup::Unknown;
        }
        if self.ctx["bound_elsewhere"].as_bool() == Some(true) {
            return Lookup::BoundElsewhere;
        }
        let mut config = SessionConfig::new(uri.clone(), vec![self.peer.clone()], Role::Passive);
        if let Some(types) = self.ctx["accept_types"].as_array() {
            config.accept_types = types
                .iter()
                .filter_map(|t| Some(t.as_str()?.to_owned()))
                .collect();
        }
        config.max_size = self.ctx["max_size"].as_u64();
        if !from_peer(&config) {
            return Lookup::Forbidden;
        }
        Lookup::Claim(Box::new(config))
    }
}

/// The From-Path of the first request in the vector: the negotiated peer.
fn peer_of(bytes: &[u8]) -> MsrpUri {
    let mut parser = Parser::new(ParserConfig::default());
    parser.feed(bytes);
    while let Ok(Some(event)) = parser.poll() {
        let from = match &event {
            WireEvent::Head(head) => head.from_path().as_str().to_owned(),
            WireEvent::Malformed(bad) => match bad.header("From-Path") {
                Some(v) => String::from_utf8_lossy(v).into_owned(),
                None => continue,
            },
            _ => continue,
        };
        if let Some(uri) = from.split(' ').next_back().and_then(|u| u.parse().ok()) {
            return uri;
        }
    }
    DEFAULT_PEER.parse().expect("default peer URI")
}

/// What the connection did with a vector.
struct Outcome {
    /// (transaction id, status) of every response written, in order.
    responses: Vec<(String, u16)>,
    /// REPORTs written: (Message-ID, Byte-Range, status code).
    reports: Vec<(String, String, u16)>,
    events: Vec<Event>,
    /// Why the connection ended when the peer closed after the vector.
    eof_reason: String,
}

fn run(bytes: &[u8], ctx: &Value, split: usize) -> Outcome {
    let now = Instant::now();
    let mut conn = Connection::new(ConnectionConfig::default());
    let mut directory = VectorDirectory {
        ctx: ctx.clone(),
        peer: peer_of(bytes),
    };
    let mut events = Vec::new();
    for piece in bytes.chunks(split) {
        conn.input_buffer().extend_from_slice(piece);
        conn.handle_input_with(now, &mut directory);
        while let Some(event) = conn.poll_event() {
            if let Event::Commit { ticket, .. } = event {
                conn.committed(ticket);
            }
            events.push(event);
        }
    }
    let mut batch = Vec::new();
    conn.poll_transmit(now, &mut batch);
    conn.handle_eof();
    let eof_reason = std::iter::from_fn(|| conn.poll_event())
        .find_map(|e| match e {
            Event::ConnectionClosed { reason } => Some(reason),
            _ => None,
        })
        .unwrap_or_default();
    let mut written = BytesMut::new();
    for piece in &batch {
        written.extend_from_slice(piece);
    }
    let mut parser = Parser::new(ParserConfig::default());
    parser.feed(&written);
    let (mut responses, mut reports) = (Vec::new(), Vec::new());
    while let Some(event) = parser.poll().expect("the connection writes delimitable frames") {
        let head = match event {
            WireEvent::Head(head) => head,
            // A 400 echoes a transaction id that breaks the ident rule (N03).
            WireEvent::Malformed(bad) => {
                let line = String::from_utf8_lossy(bad.start_line()).into_owned();
                let mut words = line.split(' ').skip(1);
                let tid = words.next().unwrap_or_default().to_owned();
                let status = words
                    .next()
                    .and_then(|w| w.parse().ok())
                    .expect("a response start line");
                responses.push((tid, status));
                continue;
            }
            _ => continue,
        };
        match head.kind() {
            FrameKind::Response { status } => responses.push((head.transaction_id().to_string(), *status)),
            FrameKind::Request(Method::Report) => reports.push((
                head.message_id().map(|m| m.to_string()).unwrap_or_default(),
                head.byte_range().map(|r| r.to_string()).unwrap_or_default(),
                head.report_status().map_or(0, |s| s.code),
            )),
            FrameKind::Request(method) => panic!("unexpected {} written", method.as_str()),
        }
    }
    parser
        .finish()
        .expect("the connection's output ends at a frame boundary");
    Outcome {
        responses,
        reports,
        events,
        eof_reason,
    }
}

fn check_vector(entry: &Value, split: usize) {
    let id = entry["id"].as_str().unwrap_or("?");
    let expect = &entry["expect"];
    let bytes = support::vector_bytes(entry);
    let outcome = run(&bytes, &expect["ctx"], split);
    let response = expect["response"].as_u64().map(|s| s as u16);
    let closed = outcome
        .events
        .iter()
        .any(|e| matches!(e, Event::ConnectionClosed { .. }));
    if !expect["error"].is_null() {
        let delimitable = expect["error"]["delimitable"].as_bool() == Some(true);
        let statuses: Vec<u16> = outcome.responses.iter().map(|r| r.1).collect();
        match response {
            Some(status) => assert_eq!(statuses.last(), Some(&status), "{id}: responses {statuses:?}"),
            None => assert!(
                !statuses.contains(&400),
                "{id}: 400 written for a frame that gets none"
            ),
        }
        // An unterminated frame is only known as one when the input ends.
        let cut_short = outcome.eof_reason.contains("inside a frame");
        assert_eq!(
            closed || cut_short,
            !delimitable,
            "{id}: closed {closed}, delimitable {delimitable}"
        );
        return;
    }
    assert!(!closed, "{id}: a valid vector closed the connection");
    assert_eq!(outcome.eof_reason, "the peer closed the connection", "{id}");
    let requests: Vec<&str> = expect["frames"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["type"] == "request" && f["method"] != "REPORT")
        .map(|f| f["tid"].as_str().unwrap_or_default())
        .collect();
    match response {
        None => assert!(
            outcome.responses.is_empty(),
            "{id}: expected no response, wrote {:?}",
            outcome.responses
        ),
        Some(status) => {
            let expected: Vec<(String, u16)> = requests.iter().map(|t| (t.to_string(), status)).collect();
            assert_eq!(outcome.responses, expected, "{id}");
        }
    }
}

fn vectors_with_context() -> Vec<Value> {
    let entries: Vec<Value> = support::manifest()
        .into_iter()
        .filter(|e| e["kind"] == "msrp" && e["expect"]["ctx"].is_object())
        .collect();
    assert!(
        entries.len() >= 80,
        "only {} vectors with a receiver context",
        entries.len()
    );
    entries
}

#[test]
fn every_vector_gets_the_manifest_response() {
    for entry in vectors_with_context() {
        check_vector(&entry, usize::MAX);
    }
}

#[test]
fn every_vector_gets_the_manifest_response_one_octet_at_a_time() {
    for entry in vectors_with_context() {
        check_vector(&entry, 1);
    }
}

fn entry(id: &str) -> Value {
    support::manifest()
        .into_iter()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("vector {id} missing"))
}

fn received(outcome: &Outcome) -> Vec<Bytes> {
    outcome
        .events
        .iter()
        .filter_map(|e| match e {
            Event::MessageReceived {
                body: ReceivedBody::Inline(body),
                ..
            } => Some(body.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn out_of_order_chunks_complete_when_the_last_gap_closes() {
    let c05 = entry("C05");
    let outcome = run(&support::vector_bytes(&c05), &c05["expect"]["ctx"], usize::MAX);
    assert_eq!(received(&outcome), [b"HelloWorld!".to_vec()]);
}

#[test]
fn overlapping_chunks_keep_the_octets_received_last() {
    let c06 = entry("C06");
    let outcome = run(&support::vector_bytes(&c06), &c06["expect"]["ctx"], usize::MAX);
    assert_eq!(received(&outcome), [b"AAAAABBBBBBBBBBCCCCC".to_vec()]);
}

#[test]
fn an_aborted_message_is_dropped_without_a_report() {
    let c04 = entry("C04");
    let outcome = run(&support::vector_bytes(&c04), &c04["expect"]["ctx"], usize::MAX);
    assert!(received(&outcome).is_empty());
    assert!(outcome.reports.is_empty(), "{:?}", outcome.reports);
}

/// The file-transfer flow: three chunks reassemble beach.jpg.bin, and the
/// success REPORT it asked for covers all 5000 octets, as F07 does.
#[test]
fn file_transfer_flow_reassembles_the_file_and_reports_success() {
    let (f01, f03, f05, f07) = (entry("F01"), entry("F03"), entry("F05"), entry("F07"));
    let mut stream = Vec::new();
    for e in [&f01, &f03, &f05] {
        stream.extend(support::vector_bytes(e));
    }
    for split in [usize::MAX, 7, 1] {
        let outcome = run(&stream, &f01["expect"]["ctx"], split);
        let file = std::fs::read(support::vectors_dir().join("flows/beach.jpg.bin")).expect("beach.jpg.bin");
        assert_eq!(received(&outcome), [file]);
        let statuses: Vec<u16> = outcome.responses.iter().map(|r| r.1).collect();
        assert_eq!(statuses, [200, 200, 200]);
        let report = &f07["expect"]["frames"][0]["headers"];
        assert_eq!(outcome.reports.len(), 1);
        assert_eq!(
            outcome.reports[0].1,
            report["Byte-Range"].as_str().unwrap_or_default()
        );
        assert_eq!(outcome.reports[0].2, 200);
    }
}
