//! Every SIP vector through the user agent, as the UAS the manifest
//! describes (`vectors/sip/README.md`): the status it answers, and the
//! dialog chains (SIP01 -> SIP08 -> SIP10, SIP02 -> SIP09, SIP03 -> SIP11,
//! SIP04 -> SIP24, SIP13 -> SIP14 -> SIP23) run in order, with our own To
//! tags substituted for the ones the vectors assume (the manifest's `ctx`
//! allows it). Where this build answers otherwise than the manifest, the
//! table below says so and why; the test fails if either changes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use msrp_signaling::msml;
use msrp_signaling::sdp::{self, LocalEndpoint, Policy};
use msrp_signaling::sip::{Body, CallId, Message, Transport, UaConfig, UaEvent, UserAgent};

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vectors/sip")
}

/// What this build answers where it departs from the manifest, and why.
const DEPARTURES: &[(&str, u16, &str)] = &[
    (
        "SIP05",
        488,
        "this application has no engine TLS (Policy::default): TCP/TLS/MSRP is refused with a Warning",
    ),
    (
        "SIP08",
        488,
        "msrpd cannot move a live session to a new peer path yet: refused, the session stays",
    ),
    (
        "SIP15",
        488,
        "this application has no engine TLS (Policy::default): TCP/TLS/MSRP is refused with a Warning",
    ),
];

struct Uas {
    ua: UserAgent,
    now: Instant,
    peer: SocketAddr,
    /// Our To tag per Call-ID, from the responses we sent.
    tags: HashMap<String, String>,
    /// Calls waiting for an answer, by Call-ID (SIP03 stays pending for
    /// the CANCEL of SIP11).
    pending: HashMap<String, CallId>,
    established: Vec<(CallId, Option<Body>)>,
    answers: HashMap<CallId, sdp::Answer>,
}

impl Uas {
    fn new() -> Uas {
        Uas {
            ua: UserAgent::new(UaConfig {
                host: "198.51.100.20".into(),
                // As `msrp-signal serve --msml` configures it.
                info_types: vec!["application/msml+xml".into(), "application/xml".into()],
                ..UaConfig::default()
            }),
            now: Instant::now(),
            peer: "192.0.2.10:5060".parse().unwrap(),
            tags: HashMap::new(),
            pending: HashMap::new(),
            established: Vec::new(),
            answers: HashMap::new(),
        }
    }

    /// Feeds one vector's octets and returns the responses sent.
    fn feed(&mut self, bytes: Bytes, transport: &str, hold: bool) -> Vec<Message> {
        match transport {
            "udp" => self.ua.handle_datagram(self.now, self.peer, bytes),
            // A TLS vector is the decrypted stream.
            "tls" => self
                .ua
                .handle_stream_bytes_on(self.now, Transport::Tls, 7, self.peer, &bytes),
            _ => self.ua.handle_stream_bytes(self.now, 7, self.peer, &bytes),
        }
        self.answer_calls(hold);
        let mut sent = Vec::new();
        while let Some(t) = self.ua.poll_transmit() {
            assert_eq!(t.flow.transport == Transport::Udp, transport == "udp");
            let message = Message::parse(t.bytes, &Default::default()).expect("what we send parses");
            if let (Some(tag), false) = (message.to().tag(), message.is_request()) {
                self.tags
                    .entry(message.call_id().to_string())
                    .or_insert_with(|| tag.to_string());
            }
            sent.push(message);
        }
        sent
    }

    /// The application: answers each offer with `sdp::answer` (an offer
    /// with no media at all, an MSML control dialog, is accepted as the
    /// MSML issue will), offers in the 200 to an offer-less INVITE.
    fn answer_calls(&mut self, hold: bool) {
        while let Some(event) = self.ua.poll_event() {
            match event {
                UaEvent::IncomingCall {
                    call, offer, request, ..
                } => {
                    if hold {
                        self.pending.insert(request.call_id().to_string(), call);
                        continue;
                    }
                    let local = LocalEndpoint {
                        host: "198.51.100.20".into(),
                        port: 2855,
                    };
                    let policy = Policy::default();
                    let body = match offer {
                        None => sdp::offer(&policy, &local, &Default::default(), &mut sdp::new_session_id).sdp,
                        Some(offer) if !contains(&offer.bytes, b"m=") => Bytes::from_static(
                            b"v=0\r\no=- 1 1 IN IP4 198.51.100.20\r\ns=-\r\nc=IN IP4 198.51.100.20\r\nt=0 0\r\n",
                        ),
                        Some(offer) => match sdp::answer(&offer.bytes, &offer.content_type, &policy, &local, &mut sdp::new_session_id) {
                            Ok(answer) => {
                                let sdp = answer.sdp.clone();
                                self.answers.insert(call, answer);
                                sdp
                            }
                            Err(rejection) => {
                                let warning = format!("399 ms.example.net \"{}\"", rejection.warning);
                                self.ua.reject(self.now, call, rejection.status, "Not Acceptable Here", &[("Warning", &warning)]);
                                continue;
                            }
                        },
                    };
                    assert!(self.ua.accept(self.now, call, Body::sdp(body)));
                }
                UaEvent::Established { call, answer } => self.established.push((call, answer)),
                UaEvent::Reoffer { call, reoffer, offer } => {
                    // As msrp-signal serve answers: the same sessions with
                    // new limits get 200, a moved peer path 488.
                    let local = LocalEndpoint {
                        host: "198.51.100.20".into(),
                        port: 2855,
                    };
                    let previous = self.answers.get(&call).expect("we answered this call");
                    let answer = sdp::reanswer(
                        previous,
                        &offer.bytes,
                        &offer.content_type,
                        &Policy::default(),
                        &local,
                        &mut sdp::new_session_id,
                    )
                    .expect("the re-offer is answerable");
                    let moved = answer
                        .media
                        .iter()
                        .zip(&previous.media)
                        .any(|(new, old)| new.remote.path != old.remote.path);
                    let result = match moved {
                        true => Err((488, "msrpd cannot move a live MSRP session to a new path".into())),
                        false => Ok(Body::sdp(answer.sdp.clone())),
                    };
                    if !moved {
                        self.answers.insert(call, answer);
                    }
                    self.ua.answer_reoffer(self.now, call, reoffer, result);
                }
                // The application's MSML answer (serve/msml.rs checks the
                // connection too; tests/msml_sipp.rs runs it on the wire):
                // the result travels in the INFO's 200.
                UaEvent::Info(info) => {
                    let document = msml::parse(info.request.body()).expect("the vector's MSML reads");
                    let msml::Request::DialogStart(start) = &document.requests[0] else {
                        panic!("SIP14 is a dialogstart");
                    };
                    let name = start.name.as_deref().unwrap_or_default();
                    let result = msml::result(200, None, Some(&msml::dialog_id(&start.target, name)));
                    let body = Body {
                        content_type: "application/msml+xml".into(),
                        bytes: Bytes::from(result),
                    };
                    self.ua.answer_info(self.now, &info, 200, "OK", Some(body));
                }
                _ => {}
            }
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

struct Vector {
    id: String,
    bytes: Vec<u8>,
    transport: String,
    expected: Option<u16>,
    /// The response body the manifest gives, when it gives one.
    body: Option<String>,
    local_tag: Option<String>,
}

fn manifest() -> Vec<Vector> {
    let text = std::fs::read_to_string(vectors().join("manifest.json")).unwrap();
    let entries: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    entries
        .into_iter()
        .map(|v| {
            let response = &v["expect"]["response"];
            let expected = response["status"].as_u64().map(|s| s as u16);
            Vector {
                id: v["id"].as_str().unwrap().to_string(),
                bytes: std::fs::read(vectors().join(v["file"].as_str().unwrap())).unwrap(),
                transport: v["transport"].as_str().unwrap().to_string(),
                expected,
                body: response["body"].as_str().map(str::to_string),
                local_tag: v["ctx"]["local_tag"].as_str().map(str::to_string),
            }
        })
        .collect()
}

/// The vector with the tag it assumes replaced by the one we chose.
fn substituted(vector: &Vector, uas: &Uas) -> Bytes {
    let mut text = vector.bytes.clone();
    if let Some(assumed) = &vector.local_tag {
        let call_id = Message::parse(Bytes::from(vector.bytes.clone()), &Default::default())
            .map(|m| m.call_id().to_string())
            .unwrap();
        if let Some(ours) = uas.tags.get(&call_id) {
            let replaced = String::from_utf8_lossy(&text).replace(assumed, ours);
            text = replaced.into_bytes();
        }
    }
    Bytes::from(text)
}

fn final_status(sent: &[Message], method: &str) -> Option<u16> {
    sent.iter()
        .filter(|m| !m.is_request() && m.cseq().method.as_str() == method)
        .filter_map(|m| m.status())
        .find(|s| *s >= 200)
}

#[test]
fn every_vector_gets_the_answer_the_manifest_or_the_departure_table_gives() {
    let vectors = manifest();
    let by_id: HashMap<&str, &Vector> = vectors.iter().map(|v| (v.id.as_str(), v)).collect();
    let mut uas = Uas::new();
    let mut checked = 0;
    for id in [
        "SIP01", "SIP08", "SIP10", "SIP02", "SIP09", "SIP03", "SIP11", "SIP04", "SIP24", "SIP05", "SIP06",
        "SIP07", "SIP12", "SIP13", "SIP14", "SIP23", "SIP15", "SIP16", "SIP17", "SIP18", "SIP19", "SIP20",
        "SIP21", "SIP22",
    ] {
        let vector = by_id[id];
        let bytes = substituted(vector, &uas);
        let method = Message::parse(bytes.clone(), &Default::default())
            .ok()
            .map(|m| m.cseq().method.as_str().to_string());
        // SIP03 stays unanswered so that SIP11 can cancel it.
        let sent = uas.feed(bytes, &vector.transport, id == "SIP03");
        let departure = DEPARTURES.iter().find(|(d, _, _)| *d == id);
        let want = departure.map(|(_, status, _)| *status).or(vector.expected);
        match id {
            "SIP03" => assert!(sent.iter().all(|m| m.status() < Some(200)), "{id}: held"),
            "SIP11" => {
                assert_eq!(final_status(&sent, "CANCEL"), Some(200), "{id}: CANCEL");
                assert_eq!(final_status(&sent, "INVITE"), Some(487), "{id}: the INVITE");
            }
            "SIP18" => {
                assert_eq!(
                    final_status(&sent, "MESSAGE"),
                    Some(200),
                    "{id}: MESSAGE (RFC 3428 7)"
                );
                assert_eq!(
                    final_status(&sent, "OPTIONS"),
                    Some(200),
                    "{id}: OPTIONS, the second message of the read"
                );
            }
            "SIP20" => assert!(
                sent.is_empty(),
                "{id}: no Via, dropped (RFC 3261 8.2.6): {sent:?}"
            ),
            "SIP24" => {
                assert!(sent.is_empty(), "{id}: an ACK is never answered");
                let answer = uas.established.last().and_then(|(_, answer)| answer.clone());
                assert!(
                    answer.is_some_and(|a| contains(&a.bytes, b"a=setup:")),
                    "{id}: the ACK's answer reached the application"
                );
            }
            _ => {
                let method = method.unwrap_or_else(|| "INVITE".into());
                assert_eq!(
                    final_status(&sent, &method),
                    want,
                    "{id}: {method} answered {:?}",
                    sent.iter().map(|m| m.status()).collect::<Vec<_>>()
                );
            }
        }
        if matches!(id, "SIP05" | "SIP15") {
            let warning = sent.iter().find_map(|m| m.header("Warning")).unwrap_or_default();
            assert!(warning.contains("TLS"), "{id}: the Warning names why: {warning}");
        }
        if id == "SIP14" {
            let ok = sent
                .iter()
                .find(|m| m.status() == Some(200))
                .expect("SIP14: a 200");
            assert_eq!(ok.content_type(), Some("application/msml+xml"), "{id}");
            assert_eq!(
                std::str::from_utf8(ok.body()).ok(),
                vector.body.as_deref(),
                "{id}: the MSML result in the 200"
            );
        }
        if id == "SIP19" {
            assert!(sent[0].header("Allow").is_some(), "{id}: 501 with Allow");
        }
        if id == "SIP23" {
            assert_eq!(
                sent[0].header("Recv-Info"),
                Some(""),
                "{id}: an empty Recv-Info (RFC 6086 4.2.2)"
            );
        }
        checked += 1;
        uas.now += Duration::from_millis(10);
    }
    assert_eq!(checked, vectors.len(), "every vector is in the sequence");
}
