//! The JSON REST API of `msrp-signal serve --http`, end to end: real
//! `msrpd` and `msrp-signal` processes on loopback, a hand-written HTTP/1.1
//! client and SSE reader (`support/http.rs`, `support/sse.rs`), a webhook
//! receiver on a std listener (`support/webhook_receiver.rs`) and, for 3PCC, a
//! hand-written MSRP peer (`support/msrp_peer.rs`, RFC 4975 7.1).
//!
//! Each test starts its own processes (ports from the system) and kills
//! them when it ends. `msrpd` is built into the same target directory on
//! first use (`support/processes.rs`, `msrpd_binary`).

mod support;
use support::{common, sse, stack, webhook_receiver};

use std::time::{Duration, Instant};

use serde_json::json;

use sse::Sse;
use stack::Pair;
use webhook_receiver::{hex, hmac_sha256, signature, Answer, WebhookReceiver};

use common::*;

#[test]
fn hmac_sha256_of_the_tests_matches_rfc_4231() {
    // RFC 4231 4.3 (test case 2) and 4.7 (test case 6, a key longer than the block).
    assert_eq!(
        hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_eq!(
        hex(&hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First"
        )),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}

/// Pair A (auto-answer) calls pair B (the application answers) over SIP;
/// messages go both ways (text, base64, CPIM with IMDN, an IMDN back), a
/// 300 KiB file goes by path and is removed once delivered, a batch gets a
/// result per item, B hangs up. A's webhook gets exactly A's SSE events,
/// signed.
#[test]
fn an_applications_whole_day_across_two_pairs() {
    let started = Instant::now();
    let a = Pair::start("day-a", &[]);
    // B's JSON bodies are small; its upload below is not (uploads stream).
    let b = Pair::start("day-b", &["--no-auto-answer", "--body-max", "65536"]);
    let mut a_events = Sse::open(&a.api, "/v1/events", None);
    let mut b_events = Sse::open(&b.api, "/v1/events", None);
    let mut hooks = WebhookReceiver::start(Answer::Ok);
    let secret = "the webhook secret of A";
    let hook = a
        .api
        .post("/v1/webhooks", &json!({"url": hooks.url, "secret": secret}))
        .expect(201)
        .json();
    assert_eq!(hook["state"], "active", "{hook}");
    assert_eq!(hook["url"], hooks.url.as_str());
    assert!(
        hook.get("secret").is_none(),
        "the secret is never shown back: {hook}"
    );

    // A calls B; B's application answers.
    let created = a
        .api
        .post("/v1/sessions", &json!({"to": b.sip_uri("b"), "tag": "day"}))
        .expect(201)
        .json();
    assert_eq!(created["state"], "calling", "{created}");
    assert_eq!(created["mode"], "1pcc");
    assert_eq!(created["direction"], "outbound");
    assert_eq!(created["tag"], "day");
    let a_id = id_of(&created);
    a_events.expect("calling", &a_id);
    let incoming = b_events.wait("incoming", WAIT, |e| e.event == "incoming");
    let b_id = incoming.session();
    let offer = incoming.json();
    assert_eq!(offer["auto_answer"], false, "{offer}");
    assert!(offer["offer"].as_str().unwrap().contains("m=message"), "{offer}");
    assert!(offer["call_id"].is_string(), "{offer}");
    let waiting = b.api.get(&format!("/v1/sessions/{b_id}")).expect(200).json();
    assert_eq!(waiting["state"], "incoming", "{waiting}");
    assert_eq!(waiting["direction"], "inbound");
    assert_eq!(waiting["call_id"], offer["call_id"]);
    let answered = b
        .api
        .post(&format!("/v1/sessions/{b_id}/answer"), &json!({}))
        .expect(200)
        .json();
    assert_eq!(answered["state"], "connected", "{answered}");
    let b_up = b_events.expect("connected", &b_id).json();
    let a_up = a_events.expect("connected", &a_id).json();
    assert_eq!(
        a_up["remote_path"], b_up["local_path"],
        "A's peer path is B's own"
    );
    assert_eq!(a_up["local_path"], b_up["remote_path"]);
    let a_view = a.api.get(&format!("/v1/sessions/{a_id}")).expect(200).json();
    assert_eq!(a_view["state"], "connected", "{a_view}");
    assert_eq!(
        a_view["msrp"][0]["setup"], "active",
        "A offered actpass, B answered passive: {a_view}"
    );
    eprintln!("day: connected after {:?}", started.elapsed());

    // A -> B: text, both reports.
    let sent = a
        .api
        .post(
            &format!("/v1/sessions/{a_id}/messages"),
            &json!({"text": "hello B", "report": "both"}),
        )
        .expect(202)
        .json();
    assert_eq!(sent["session"], a_id.as_str());
    assert_eq!(sent["size"], 7);
    let got = b_events.expect("message", &b_id).json();
    assert_eq!(got["text"], "hello B", "{got}");
    assert_eq!(got["class"], "content");
    assert_eq!(got["content_type"], "text/plain");
    assert_eq!(got["size"], 7);
    let delivered = a_events.expect("delivered", &a_id).json();
    assert_eq!(delivered["message"], sent["id"], "{delivered}");

    // B -> A: octets as base64.
    let octets = [0u8, 1, 2, 0x7f, 0x80, 0xfe, 0xff, b'\n'];
    let sent = b
        .api
        .post(
            &format!("/v1/sessions/{b_id}/messages"),
            &json!({"body": base64(&octets), "content_type": "application/octet-stream", "report": "both"}),
        )
        .expect(202)
        .json();
    let got = a_events.expect("message", &a_id).json();
    assert_eq!(got["body"], base64(&octets), "{got}");
    assert!(got.get("text").is_none(), "octets are not text: {got}");
    assert_eq!(got["content_type"], "application/octet-stream");
    assert_eq!(got["class"], "content");
    let delivered = b_events.expect("delivered", &b_id).json();
    assert_eq!(delivered["message"], sent["id"]);

    // A -> B: wrapped in message/cpim, asking for IMDN (RFC 3862, RFC 5438).
    let sent = a
        .api
        .post(
            &format!("/v1/sessions/{a_id}/messages"),
            &json!({
                "text": "hello in cpim",
                "report": "both",
                "cpim": {
                    "from": "Alice <sip:alice@example.com>",
                    "to": "sip:bob@example.com",
                    "imdn": {"disposition": ["positive-delivery", "display"]}
                }
            }),
        )
        .expect(202)
        .json();
    let imdn_id = sent["imdn_message_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{sent}"))
        .to_string();
    let got = b_events.expect("message", &b_id).json();
    assert_eq!(got["content_type"], "message/cpim", "{got}");
    assert_eq!(got["text"], "hello in cpim");
    assert_eq!(got["class"], "content");
    let cpim = &got["cpim"];
    assert_eq!(cpim["from"], "Alice <sip:alice@example.com>", "{cpim}");
    assert_eq!(cpim["to"], json!(["<sip:bob@example.com>"]));
    assert_eq!(cpim["imdn_message_id"], imdn_id.as_str());
    assert_eq!(
        cpim["disposition_notification"],
        json!(["positive-delivery", "display"])
    );
    assert_eq!(cpim["content_type"], "text/plain");
    assert!(cpim["datetime"].is_string(), "{cpim}");
    a_events.expect("delivered", &a_id);

    // B -> A: the delivery notification, in CPIM (RFC 5438 7.2.1.1): class imdn.
    let notification = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
         <imdn xmlns=\"urn:ietf:params:xml:ns:imdn\">\r\n\
         <message-id>{imdn_id}</message-id>\r\n\
         <datetime>2026-01-02T03:04:05Z</datetime>\r\n\
         <delivery-notification><status><delivered/></status></delivery-notification>\r\n\
         </imdn>"
    );
    b.api
        .post(
            &format!("/v1/sessions/{b_id}/messages"),
            &json!({
                "text": notification,
                "content_type": "message/imdn+xml",
                "cpim": {"from": "sip:bob@example.com", "to": "sip:alice@example.com"}
            }),
        )
        .expect(202);
    let got = a_events.expect("message", &a_id).json();
    assert_eq!(got["class"], "imdn", "{got}");
    assert_eq!(got["imdn"]["message_id"], imdn_id.as_str(), "{got}");
    assert_eq!(got["imdn"]["kind"], "delivery-notification");
    assert_eq!(got["imdn"]["status"], "delivered");
    b_events.expect("delivered", &b_id);

    // A -> B: a 300 KiB file by path, removed once delivered; B spools it.
    let file = a.dir.join("outbox.bin");
    let content: Vec<u8> = (0..300 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&file, &content).unwrap();
    let file_sha1 = sha1_hex(&content);
    let sent = a
        .api
        .post(
            &format!("/v1/sessions/{a_id}/files"),
            &json!({"path": file.to_str().unwrap(), "delete_after": true, "content_type": "application/octet-stream"}),
        )
        .expect(202)
        .json();
    let selector = &sent["file_selector"];
    assert_eq!(selector["name"], "outbox.bin", "{sent}");
    assert_eq!(selector["size"], content.len());
    assert_eq!(selector["type"], "application/octet-stream");
    let colons: Vec<String> = file_sha1
        .as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).to_ascii_uppercase())
        .collect();
    assert_eq!(
        selector["hash"],
        format!("sha-1:{}", colons.join(":")),
        "RFC 5547 5's hash: {sent}"
    );
    let got = b_events
        .wait("the file's message", Duration::from_secs(20), |e| {
            e.event == "message" && e.session() == b_id && e.json().get("path").is_some()
        })
        .json();
    assert_eq!(got["size"], content.len(), "{got}");
    let spooled = std::fs::read(got["path"].as_str().unwrap()).unwrap_or_else(|e| panic!("{got}: {e}"));
    assert_eq!(sha1_hex(&spooled), file_sha1, "the spool file is the file sent");
    let delivered = a_events
        .wait("the file's delivered", Duration::from_secs(20), |e| {
            e.event == "delivered" && e.json()["message"] == sent["id"]
        })
        .json();
    assert_eq!(delivered["session"], a_id.as_str());
    wait_until("the delivered file removed (delete_after)", WAIT, || {
        !file.exists()
    });
    eprintln!("day: file delivered after {:?}", started.elapsed());

    // B -> A: a raw upload, past B's --body-max, removed once delivered.
    let picture: Vec<u8> = (0..100 * 1024u32).map(|i| (i % 251) as u8).collect();
    let sent = b
        .api
        .request(
            "POST",
            &format!("/v1/sessions/{b_id}/files?content_type=image/png&name=pic.png"),
            &[("Content-Type", "application/octet-stream")],
            &picture,
        )
        .expect(202)
        .json();
    assert_eq!(sent["file_selector"]["name"], "pic.png", "{sent}");
    assert_eq!(sent["file_selector"]["type"], "image/png");
    assert_eq!(sent["file_selector"]["size"], picture.len());
    let got = a_events
        .wait("the upload's message", WAIT, |e| {
            e.event == "message" && e.json()["content_type"] == "image/png"
        })
        .json();
    assert_eq!(got["body"], base64(&picture), "inline below msrpd's --inline-max");
    b_events.wait("the upload's delivered", WAIT, |e| {
        e.event == "delivered" && e.json()["message"] == sent["id"]
    });
    wait_until("the delivered upload removed", WAIT, || {
        std::fs::read_dir(b.dir.join("uploads")).unwrap().next().is_none()
    });

    // The batch: one good item, one of nobody's session, one without text.
    let batch = a
        .api
        .post(
            "/v1/messages:batch",
            &json!({"messages": [
                {"session": a_id, "text": "batch one", "report": "both"},
                {"session": "s-of-nobody", "text": "lost"},
                {"session": a_id},
            ]}),
        )
        .expect(207)
        .json();
    let results = batch["results"].as_array().unwrap_or_else(|| panic!("{batch}"));
    assert_eq!(results.len(), 3, "{batch}");
    assert_eq!(results[0]["status"], 202, "{batch}");
    assert!(results[0]["id"].is_string(), "{batch}");
    assert_eq!(results[1]["status"], 404, "{batch}");
    assert_eq!(results[1]["error"], "not_found");
    assert!(
        results[1]["detail"].as_str().unwrap().contains("s-of-nobody"),
        "{batch}"
    );
    assert_eq!(results[2]["status"], 400, "{batch}");
    assert_eq!(results[2]["error"], "bad_request");
    assert!(
        results[2]["detail"]
            .as_str()
            .unwrap()
            .starts_with("messages[2].text"),
        "{batch}"
    );
    let got = b_events.expect("message", &b_id).json();
    assert_eq!(got["text"], "batch one");
    let delivered = a_events
        .wait("the batch's delivered", WAIT, |e| {
            e.event == "delivered" && e.json()["message"] == results[0]["id"]
        })
        .json();
    assert_eq!(delivered["session"], a_id.as_str());

    // A's webhook: A's SSE events, the same bytes in the same order, signed.
    let seen = a_events.log.clone();
    // calling, connected, 4 delivered, 3 messages: at least.
    assert!(seen.len() >= 9, "{seen:#?}");
    let requests = hooks.wait_for(seen.len(), WAIT).to_vec();
    for (event, request) in seen.iter().zip(&requests) {
        assert_eq!(request.request_line, "POST /hook HTTP/1.1");
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(
            request.header("x-msrp-event-id"),
            Some(event.seq().to_string().as_str())
        );
        assert_eq!(request.header("x-msrp-event-type"), Some(event.event.as_str()));
        assert_eq!(
            String::from_utf8_lossy(&request.body),
            event.data,
            "event {}",
            event.seq()
        );
        assert_eq!(
            request.header("x-msrp-signature"),
            Some(signature(secret, &request.body).as_str()),
            "HMAC-SHA256(secret, body) of event {}",
            event.seq()
        );
    }
    let counted = a
        .api
        .get(&format!("/v1/webhooks/{}", id_of(&hook)))
        .expect(200)
        .json();
    assert!(
        counted["delivered"].as_u64().unwrap() >= seen.len() as u64,
        "{counted}"
    );
    assert_eq!(counted["failed"], 0, "{counted}");

    // B hangs up: A sees the remote end.
    let closed = b.api.delete(&format!("/v1/sessions/{b_id}")).expect(200).json();
    assert_eq!(closed["state"], "closed", "{closed}");
    assert_eq!(closed["ended"]["by"], "local");
    let hangup = b_events.expect("hangup", &b_id).json();
    assert_eq!(hangup["by"], "local", "{hangup}");
    let hangup = a_events.expect("hangup", &a_id).json();
    assert_eq!(hangup["by"], "remote", "{hangup}");
    let b_view = b.api.get(&format!("/v1/sessions/{b_id}")).expect(200).json();
    assert_eq!(b_view["state"], "closed", "{b_view}");
    let a_view = a.api.get(&format!("/v1/sessions/{a_id}")).expect(200).json();
    assert_eq!(a_view["state"], "closed", "{a_view}");
    assert_eq!(a_view["ended"]["by"], "remote");
    // text, cpim, file, batch out; octets, the IMDN and the upload in.
    assert_eq!(a_view["counters"]["messages_out"], 4, "{a_view}");
    assert_eq!(a_view["counters"]["messages_in"], 3, "{a_view}");
    b.api
        .delete(&format!("/v1/sessions/{b_id}"))
        .expect_error(409, "conflict", "closed");
    wait_until("msrpd A holds no session", WAIT, || a.engine().sessions() == 0);
    wait_until("msrpd B holds no session", WAIT, || b.engine().sessions() == 0);
    eprintln!("day: {:?}", started.elapsed());
}

/// --no-auto-answer --incoming-timeout 1: the application rejects one call
/// (the caller's session ends with 486) and leaves the next unanswered
/// (480 after about a second, RFC 3261 21.4.18).
#[test]
fn an_inbound_call_is_rejected_486_or_times_out_480() {
    let started = Instant::now();
    let a = Pair::start("refuse-a", &[]);
    let b = Pair::start("refuse-b", &["--no-auto-answer", "--incoming-timeout", "1"]);
    let mut a_events = Sse::open(&a.api, "/v1/events", None);
    let mut b_events = Sse::open(&b.api, "/v1/events", None);

    let first = id_of(
        &a.api
            .post("/v1/sessions", &json!({"to": b.sip_uri("busy")}))
            .expect(201)
            .json(),
    );
    let incoming = b_events.wait("the first incoming", WAIT, |e| e.event == "incoming");
    let b_first = incoming.session();
    let rejected = b
        .api
        .post(&format!("/v1/sessions/{b_first}/reject"), &json!({"status": 486}))
        .expect(200)
        .json();
    assert_eq!(rejected["state"], "closed", "{rejected}");
    assert_eq!(rejected["ended"]["by"], "local");
    let hangup = b_events.expect("hangup", &b_first).json();
    assert_eq!(hangup["status"], 486, "{hangup}");
    let hangup = a_events.expect("hangup", &first).json();
    assert_eq!(hangup["status"], 486, "{hangup}");
    assert_eq!(hangup["by"], "remote");
    assert_eq!(
        a.api.get(&format!("/v1/sessions/{first}")).expect(200).json()["state"],
        "closed"
    );

    let second = id_of(
        &a.api
            .post("/v1/sessions", &json!({"to": b.sip_uri("away")}))
            .expect(201)
            .json(),
    );
    let incoming = b_events.wait("the second incoming", WAIT, |e| e.event == "incoming");
    let rang = Instant::now();
    let b_second = incoming.session();
    let hangup = a_events.expect("hangup", &second).json();
    let waited = rang.elapsed();
    assert_eq!(hangup["status"], 480, "{hangup}");
    assert_eq!(hangup["by"], "remote");
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(4),
        "--incoming-timeout 1 refused after {waited:?}"
    );
    let hangup = b_events.expect("hangup", &b_second).json();
    assert_eq!(hangup["status"], 480, "{hangup}");
    assert_eq!(hangup["by"], "system");
    b.api
        .post(&format!("/v1/sessions/{b_second}/answer"), &json!({}))
        .expect_error(409, "conflict", "not incoming");

    // The caller gives up while it rings: CANCEL (RFC 3261 9).
    let third = id_of(
        &a.api
            .post("/v1/sessions", &json!({"to": b.sip_uri("gone")}))
            .expect(201)
            .json(),
    );
    let incoming = b_events.wait("the third incoming", WAIT, |e| e.event == "incoming");
    let b_third = incoming.session();
    let ended = a.api.delete(&format!("/v1/sessions/{third}")).expect(200).json();
    assert_eq!(ended["state"], "closed", "{ended}");
    assert_eq!(a_events.expect("hangup", &third).json()["by"], "local");
    let hangup = b_events.expect("hangup", &b_third).json();
    assert_eq!(hangup["by"], "remote", "{hangup}");
    assert!(hangup["reason"].as_str().unwrap().contains("cancel"), "{hangup}");

    // The called application hangs up before answering: 480.
    let fourth = id_of(
        &a.api
            .post("/v1/sessions", &json!({"to": b.sip_uri("later")}))
            .expect(201)
            .json(),
    );
    let incoming = b_events.wait("the fourth incoming", WAIT, |e| e.event == "incoming");
    let b_fourth = incoming.session();
    b.api.delete(&format!("/v1/sessions/{b_fourth}")).expect(200);
    assert_eq!(b_events.expect("hangup", &b_fourth).json()["by"], "local");
    let hangup = a_events.expect("hangup", &fourth).json();
    assert_eq!(hangup["status"], 480, "{hangup}");
    assert_eq!(hangup["by"], "remote");
    wait_until("msrpd B holds no session", WAIT, || b.engine().sessions() == 0);
    eprintln!("refuse: {:?}", started.elapsed());
}

/// 3PCC: our offer (`a=setup:actpass`, our path) is answered by the
/// application with a peer that connects (`a=setup:active`); the peer's
/// SEND is a `message` event and a REST message reaches the peer. And the
/// other way: the application's offer gets our answer, connected at once.
#[test]
fn third_party_sessions_offer_and_answer_for_a_raw_msrp_peer() {
    let started = Instant::now();
    let pair = Pair::start("3pcc", &[]);
    let api = &pair.api;
    let mut events = Sse::open(api, "/v1/events", None);

    // We offer.
    let offered = api
        .post("/v1/sessions", &json!({"mode": "3pcc", "tag": "offer"}))
        .expect(201)
        .json();
    let id = id_of(&offered);
    assert_eq!(offered["state"], "offered", "{offered}");
    assert_eq!(offered["mode"], "3pcc");
    let local_sdp = offered["local_sdp"]
        .as_str()
        .unwrap_or_else(|| panic!("{offered}"))
        .to_string();
    assert_eq!(attribute(&local_sdp, "setup"), "actpass", "{local_sdp}");
    assert!(local_sdp.contains("m=message "), "{local_sdp}");
    let ours = attribute(&local_sdp, "path");
    assert!(ours.starts_with("msrp://") && ours.ends_with(";tcp"), "{ours}");
    let theirs = "msrp://127.0.0.1:9/xyz;tcp";
    let answer = peer_sdp(theirs, "active");
    let connected = api
        .put(&format!("/v1/sessions/{id}/remote_sdp"), &json!({"sdp": answer}))
        .expect(200)
        .json();
    assert_eq!(connected["state"], "connected", "{connected}");
    assert_eq!(connected["remote_sdp"], answer.as_str());
    assert_eq!(
        connected["msrp"][0]["setup"], "passive",
        "the peer is active: {connected}"
    );
    assert_eq!(connected["msrp"][0]["remote_path"], json!([theirs]));
    assert_eq!(connected["msrp"][0]["local_path"], json!([ours]));
    let up = events.expect("connected", &id).json();
    assert_eq!(up["tag"], "offer");
    // A second answer finds no offer.
    api.put(&format!("/v1/sessions/{id}/remote_sdp"), &json!({"sdp": answer}))
        .expect_error(409, "conflict", "connected");

    let mut peer = peer_sends(&ours, theirs, "peer-m1", b"hello from the raw peer");
    let got = events.expect("message", &id).json();
    assert_eq!(got["text"], "hello from the raw peer", "{got}");
    assert_eq!(got["message_id"], "peer-m1");
    let sent = api
        .post(
            &format!("/v1/sessions/{id}/messages"),
            &json!({"text": "hello raw peer"}),
        )
        .expect(202)
        .json();
    let frame = peer.read();
    assert_eq!(frame.method, "SEND", "{frame:?}");
    assert_eq!(frame.header("To-Path"), theirs);
    assert_eq!(frame.header("From-Path"), ours);
    assert_eq!(frame.body, b"hello raw peer");
    peer.answer_200(&frame);
    let delivered = events.expect("delivered", &id).json();
    assert_eq!(delivered["message"], sent["id"], "{delivered}");

    // The application offers; we answer.
    let theirs = peer_path("offerer");
    let answered = api
        .post(
            "/v1/sessions",
            &json!({"mode": "3pcc", "remote_sdp": peer_sdp(&theirs, "actpass")}),
        )
        .expect(201)
        .json();
    let second = id_of(&answered);
    assert_eq!(answered["state"], "connected", "{answered}");
    assert_eq!(answered["direction"], "inbound", "{answered}");
    let our_answer = answered["local_sdp"].as_str().unwrap();
    assert_eq!(
        attribute(our_answer, "setup"),
        "passive",
        "RFC 6135 4.2.2: {our_answer}"
    );
    let ours_too = attribute(our_answer, "path");
    events.expect("connected", &second);
    let second_peer = peer_sends(&ours_too, &theirs, "peer-m2", b"the offerer speaks");
    assert_eq!(
        events.expect("message", &second).json()["text"],
        "the offerer speaks"
    );
    assert_eq!(pair.engine().sessions(), 2);

    // The application ends the first; the peer of the second goes away.
    let ended = api.delete(&format!("/v1/sessions/{id}")).expect(200).json();
    assert_eq!(ended["state"], "closed", "{ended}");
    assert_eq!(ended["ended"]["by"], "local");
    assert_eq!(events.expect("hangup", &id).json()["by"], "local");
    drop(second_peer);
    let hangup = events.expect("hangup", &second).json();
    assert_eq!(hangup["by"], "remote", "{hangup}");
    assert!(
        hangup["reason"].as_str().unwrap().contains("MSRP session closed"),
        "{hangup}"
    );
    api.delete(&format!("/v1/sessions/{second}"))
        .expect_error(409, "conflict", "closed");
    wait_until("msrpd holds no session", WAIT, || pair.engine().sessions() == 0);
    eprintln!("3pcc: {:?}", started.elapsed());
}
