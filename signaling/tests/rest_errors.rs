//! The REST API's refusals end to end: tokens and applications kept
//! apart, every error status with its JSON body, and what the engine's
//! restart and bad INVITE headers do (real processes, as in `rest.rs`).

mod support;
use support::{common, http, processes, sse, stack, webhook_receiver};

use std::time::{Duration, Instant};

use serde_json::json;

use sse::Sse;
use stack::{run_to_exit, Pair};
use webhook_receiver::{Answer, WebhookReceiver};

use common::*;

/// Bearer tokens: none or a wrong one is 401; an application never sees
/// another's sessions (404) or events. Off loopback, no --tokens is
/// refused at start.
#[test]
fn tokens_keep_applications_apart() {
    let started = Instant::now();
    let dir = processes::test_dir("rest-auth-tokens");
    let tokens = dir.join("tokens");
    std::fs::write(
        &tokens,
        "# two applications\nalpha-token-0001 app1\nbeta-token-0002 app2\n",
    )
    .unwrap();
    let pair = Pair::start("auth", &["--tokens", tokens.to_str().unwrap()]);
    let anonymous = &pair.api;
    let app1 = pair.api.with_token("alpha-token-0001");
    let app2 = pair.api.with_token("beta-token-0002");

    anonymous
        .get("/v1/sessions")
        .expect_error(401, "unauthorized", "Authorization");
    pair.api
        .with_token("gamma-token-0003")
        .get("/v1/sessions")
        .expect_error(401, "unauthorized", "not valid");
    anonymous
        .request("GET", "/v1/sessions", &[("Authorization", "Basic YTpi")], b"")
        .expect_error(401, "unauthorized", "Bearer");
    anonymous
        .post("/v1/sessions", &json!({"mode": "3pcc"}))
        .expect_error(401, "unauthorized", "Authorization");
    anonymous
        .get("/metrics")
        .expect_error(401, "unauthorized", "Authorization");
    // Health stays open to probes.
    anonymous.get("/healthz").expect(200);

    let mut app1_events = Sse::open(&app1, "/v1/events", None);
    let mut app2_hooks = WebhookReceiver::start(Answer::Ok);
    app2.post("/v1/webhooks", &json!({"url": app2_hooks.url}))
        .expect(201);
    assert_eq!(
        app1.get("/v1/webhooks").expect(200).json(),
        json!([]),
        "app2's webhook is app2's"
    );
    let mut app2_events = Sse::open(&app2, "/v1/events", None);
    let offered = id_of(
        &app1
            .post("/v1/sessions", &json!({"mode": "3pcc"}))
            .expect(201)
            .json(),
    );
    app1.get(&format!("/v1/sessions/{offered}")).expect(200);
    app2.get(&format!("/v1/sessions/{offered}"))
        .expect_error(404, "not_found", &offered);
    app2.delete(&format!("/v1/sessions/{offered}"))
        .expect_error(404, "not_found", &offered);
    app2.post(&format!("/v1/sessions/{offered}/answer"), &json!({}))
        .expect_error(404, "not_found", &offered);
    let (connected, _, _) = connected_3pcc(&app1, "one");
    let connected = id_of(&connected);
    app2.post(
        &format!("/v1/sessions/{connected}/messages"),
        &json!({"text": "not yours"}),
    )
    .expect_error(404, "not_found", &connected);
    let batch = app2
        .post(
            "/v1/messages:batch",
            &json!({"messages": [{"session": connected, "text": "not yours either"}]}),
        )
        .expect(207)
        .json();
    assert_eq!(batch["results"][0]["status"], 404, "{batch}");
    let listed = app2.get("/v1/sessions").expect(200).json();
    assert_eq!(listed["sessions"], json!([]), "{listed}");
    assert_eq!(
        app1.get("/v1/sessions").expect(200).json()["sessions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    app1.delete(&format!("/v1/sessions/{connected}")).expect(200);

    // app1's events are app1's; app2's first event is its own.
    app1_events.expect("connected", &connected);
    app1_events.expect("hangup", &connected);
    let (own, _, _) = connected_3pcc(&app2, "two");
    let own = id_of(&own);
    let first = app2_events.next(WAIT).expect("app2's own event");
    assert_eq!(
        (first.event.as_str(), first.session()),
        ("connected", own.clone()),
        "{first:?}"
    );
    app2_events.expect_nothing(Duration::from_millis(200));
    app1_events.expect_nothing(Duration::from_millis(200));
    // Webhooks are delivered in order: app1's events would come first.
    let hooked = app2_hooks.wait_for(1, WAIT)[0].clone();
    assert_eq!(
        hooked.header("x-msrp-event-id"),
        Some(first.seq().to_string().as_str()),
        "{hooked:?}"
    );
    assert!(
        app2_hooks.quiet(Duration::from_millis(200)),
        "{:#?}",
        app2_hooks.log
    );
    // Resuming from the start replays only the application's own.
    let mut replay = Sse::open(&app2, "/v1/events", Some(0));
    let replayed = replay.next(WAIT).expect("a replayed event");
    assert_eq!(replayed.session(), own, "{replayed:?}");
    replay.expect_nothing(Duration::from_millis(200));

    // Off loopback without tokens: refused at start, naming --tokens.
    let port = processes::free_port().to_string();
    let listen = format!("0.0.0.0:{port}");
    let (status, stderr) = run_to_exit(&pair.dir, pair.engine(), &["--http", &listen], WAIT);
    assert!(
        !status.success(),
        "msrp-signal --http {listen} without --tokens exited {status}"
    );
    assert!(
        stderr.contains("--tokens"),
        "the refusal names --tokens: {stderr}"
    );
    eprintln!("auth: {:?}", started.elapsed());
}

/// Every refusal has its status and a JSON `{error, detail}` that names
/// what is wrong.
#[test]
fn refusals_are_json_with_their_status() {
    let started = Instant::now();
    let mut pair = Pair::start("errors", &["--body-max", "4096", "--upload-max", "1000"]);
    let api = pair.api.clone();
    let mut events = Sse::open(&api, "/v1/events", None);

    // 404.
    api.get("/v1/sessions/s-nobody")
        .expect_error(404, "not_found", "s-nobody");
    api.delete("/v1/sessions/s-nobody")
        .expect_error(404, "not_found", "s-nobody");
    api.post("/v1/sessions/s-nobody/messages", &json!({"text": "x"}))
        .expect_error(404, "not_found", "s-nobody");
    api.get("/v1/webhooks/wh-nobody")
        .expect_error(404, "not_found", "wh-nobody");
    api.get("/v2/nothing")
        .expect_error(404, "not_found", "no such route");
    api.post("/v1/sessions/s-nobody/teleport", &json!({}))
        .expect_error(404, "not_found", "no such route");

    // 409.
    let offered = id_of(
        &api.post("/v1/sessions", &json!({"mode": "3pcc"}))
            .expect(201)
            .json(),
    );
    api.post(
        &format!("/v1/sessions/{offered}/messages"),
        &json!({"text": "too early"}),
    )
    .expect_error(409, "conflict", "offered, not connected");
    api.post(&format!("/v1/sessions/{offered}/answer"), &json!({}))
        .expect_error(409, "conflict", "not incoming");
    api.post(&format!("/v1/sessions/{offered}/reject"), &json!({}))
        .expect_error(409, "conflict", "not incoming");
    api.post(
        &format!("/v1/sessions/{offered}/files"),
        &json!({"path": "/etc/hostname"}),
    )
    .expect_error(409, "conflict", "not connected");
    let (connected, _, _) = connected_3pcc(&api, "errors");
    let connected = id_of(&connected);
    let messages = format!("/v1/sessions/{connected}/messages");

    // 400, naming the field.
    let detail = api
        .post("/v1/sessions", &json!({"to": "not a uri"}))
        .expect_error(400, "bad_request", "to");
    assert!(detail.starts_with("to:"), "{detail}");
    api.post("/v1/sessions", &json!({}))
        .expect_error(400, "bad_request", "to: required");
    api.post(
        "/v1/sessions",
        &json!({"to": "sip:x@127.0.0.1:5060", "setup": "sideways"}),
    )
    .expect_error(400, "bad_request", "setup: `sideways`");
    api.post("/v1/sessions", &json!({"mode": "3pcc", "accept_types": ["text"]}))
        .expect_error(400, "bad_request", "accept_types");
    api.post("/v1/sessions", &json!({"mode": "4pcc"}))
        .expect_error(400, "bad_request", "4pcc");
    api.post(&messages, &json!({"text": "a", "body": "Yg=="}))
        .expect_error(400, "bad_request", "text: give text or body, not both");
    api.post(&messages, &json!({}))
        .expect_error(400, "bad_request", "text:");
    api.post(&messages, &json!({"body": "not base64!"}))
        .expect_error(400, "bad_request", "body: not base64");
    api.post(&messages, &json!({"text": "x", "colour": "red"}))
        .expect_error(400, "bad_request", "colour");
    api.post(&messages, &json!({"text": "x", "content_type": "plain"}))
        .expect_error(400, "bad_request", "content_type");
    api.post(&messages, &json!({"text": "x", "report": "sometimes"}))
        .expect_error(400, "bad_request", "sometimes");
    api.post(
        &messages,
        &json!({"text": "x", "cpim": {"from": "alice", "to": "sip:b@example.com"}}),
    )
    .expect_error(400, "bad_request", "cpim.from");
    api.request(
        "POST",
        &messages,
        &[("Content-Type", "application/json")],
        b"{\"text\":",
    )
    .expect_error(400, "bad_request", "");
    api.post(
        &format!("/v1/sessions/{connected}/reject"),
        &json!({"status": 200}),
    )
    .expect_error(400, "bad_request", "status");
    api.post("/v1/messages:batch", &json!({"messages": []}))
        .expect_error(400, "bad_request", "messages");
    api.post(
        &format!("/v1/sessions/{connected}/files"),
        &json!({"path": "/no/such/file"}),
    )
    .expect_error(400, "bad_request", "path");
    api.post("/v1/webhooks", &json!({"url": "ftp://example.com/"}))
        .expect_error(400, "bad_request", "url");
    api.get("/v1/sessions?state=sleeping")
        .expect_error(400, "bad_request", "state");
    api.request("GET", "/v1/events?type=everything", &[], b"")
        .expect_error(400, "bad_request", "type");
    api.request("GET", "/v1/events", &[("Last-Event-ID", "yesterday")], b"")
        .expect_error(400, "bad_request", "Last-Event-ID");

    // 413: a JSON body over --body-max, an upload over --upload-max.
    let long = "x".repeat(5000);
    api.post(&messages, &json!({"text": long}))
        .expect_error(413, "too_large", "");
    api.request(
        "POST",
        &format!("/v1/sessions/{connected}/files?content_type=application/octet-stream&name=big.bin"),
        &[("Content-Type", "application/octet-stream")],
        &[7u8; 2000],
    )
    .expect_error(413, "too_large", "1000");
    let uploads: Vec<_> = std::fs::read_dir(pair.dir.join("uploads")).unwrap().collect();
    assert!(uploads.is_empty(), "the partial upload is removed: {uploads:?}");

    // 415: a JSON route without a JSON body.
    api.request(
        "POST",
        "/v1/sessions",
        &[("Content-Type", "text/plain")],
        b"{\"mode\":\"3pcc\"}",
    )
    .expect_error(415, "unsupported_media_type", "application/json");
    api.request("POST", &messages, &[], b"{\"text\":\"x\"}")
        .expect_error(415, "unsupported_media_type", "application/json");

    // 503 with Retry-After: msrpd is gone. Its sessions went with it, so
    // the 3PCC session ends (`app::App::engine_gone`) and a message to it
    // is 409; what needs the engine itself is 503.
    let health = api.get("/healthz").expect(200).json();
    assert_eq!(health["status"], "ok", "{health}");
    pair.kill_engine();
    wait_until("/healthz 503 once msrpd is gone", WAIT, || {
        api.get("/healthz").status == 503
    });
    let health = api.get("/healthz").expect(503).json();
    assert_eq!(health["engine"], false, "{health}");
    assert_eq!(health["status"], "degraded");
    let hangup = events.expect("hangup", &connected).json();
    assert_eq!(hangup["by"], "system", "{hangup}");
    api.post(&messages, &json!({"text": "into the void"}))
        .expect_error(409, "conflict", "closed");
    let unavailable = |response: http::Response| {
        assert_eq!(
            response.header("retry-after"),
            Some("1"),
            "503 carries Retry-After: {response:?}"
        );
        response.expect_error(503, "unavailable", "msrpd");
    };
    unavailable(api.post(
        "/v1/messages:batch",
        &json!({"messages": [{"session": connected, "text": "into the void"}]}),
    ));
    unavailable(api.post("/v1/sessions", &json!({"to": "sip:x@127.0.0.1:5060"})));
    eprintln!("errors: {:?}", started.elapsed());
}

/// msrpd restarts (here on another port, as `--listen 127.0.0.1:0` does):
/// msrp-signal reconnects (`/healthz` is 200 again) and a new session's SDP
/// names the new msrpd, so a peer reaches it.
#[test]
fn a_restarted_msrpd_serves_new_sessions() {
    let mut pair = Pair::start("restart", &[]);
    let api = pair.api.clone();
    pair.kill_engine();
    wait_until("/healthz 503 once msrpd is gone", WAIT, || {
        api.get("/healthz").status == 503
    });
    pair.engine = Some(processes::Msrpd::start(&pair.dir));
    wait_until("/healthz 200 once msrpd is back", WAIT, || {
        api.get("/healthz").status == 200
    });
    let mut events = Sse::open(&api, "/v1/events", None);
    let (view, ours, theirs) = connected_3pcc(&api, "again");
    let id = id_of(&view);
    let _peer = peer_sends(&ours, &theirs, "again-m1", b"to the new msrpd");
    assert_eq!(events.expect("message", &id).json()["text"], "to the new msrpd");
}

/// Extra INVITE headers may not repeat the ones we write: 400 naming the
/// field, not a 503 that invites a retry, and no second Max-Forwards on the
/// wire (RFC 3261 7.3.1: it is single-valued).
#[test]
fn extra_invite_headers_may_not_repeat_ours() {
    let pair = Pair::start("headers", &[]);
    for name in ["Call-ID", "CSeq", "Max-Forwards", "Via", "From", "To"] {
        pair.api
            .post(
                "/v1/sessions",
                &json!({"to": "sip:x@127.0.0.1:9", "headers": {name: "1"}}),
            )
            .expect_error(400, "bad_request", &format!("headers.{name}"));
    }
}

/// A method the route does not have: 405, in the same JSON shape as every
/// other refusal (`error: method_not_allowed`).
#[test]
fn a_method_a_route_lacks_is_405_json() {
    let pair = Pair::start("405", &[]);
    let response = pair.api.request("PATCH", "/v1/sessions", &[], b"");
    assert_eq!(response.status, 405, "{response:?}");
    response.expect_error(405, "method_not_allowed", "");
}

/// A server-side file is sent only from a `--files-dir` once tokens are
/// configured: another application must not read, or with `delete_after`
/// remove, whatever msrp-signal can. Uploads are not affected.
#[test]
fn server_side_paths_stay_inside_the_files_dirs() {
    let dir = processes::test_dir("rest-files-dirs");
    let shared = dir.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let inside = shared.join("inside.txt");
    std::fs::write(&inside, b"inside").unwrap();
    let outside = dir.join("outside.txt");
    std::fs::write(&outside, b"outside").unwrap();
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, "files-token-0001 app1\n").unwrap();

    let open = Pair::start("files-open", &["--tokens", tokens.to_str().unwrap()]);
    let api = open.api.with_token("files-token-0001");
    let (view, ours, theirs) = connected_3pcc(&api, "files");
    let _peer = peer_sends(&ours, &theirs, "file0001", b"hello");
    let files = format!("/v1/sessions/{}/files", id_of(&view));
    api.post(&files, &json!({"path": inside.to_str().unwrap()}))
        .expect_error(403, "forbidden", "--files-dir");

    let confined = Pair::start(
        "files-confined",
        &[
            "--tokens",
            tokens.to_str().unwrap(),
            "--files-dir",
            shared.to_str().unwrap(),
        ],
    );
    let api = confined.api.with_token("files-token-0001");
    let (view, ours, theirs) = connected_3pcc(&api, "files");
    let _peer = peer_sends(&ours, &theirs, "file0002", b"hello");
    let files = format!("/v1/sessions/{}/files", id_of(&view));
    api.post(&files, &json!({"path": outside.to_str().unwrap()}))
        .expect_error(403, "forbidden", "not under a --files-dir");
    // `..` does not lead out: the canonical path is what is checked.
    let sneaky = shared.join("..").join("outside.txt");
    api.post(&files, &json!({"path": sneaky.to_str().unwrap()}))
        .expect_error(403, "forbidden", "not under a --files-dir");
    let accepted = api
        .post(
            &files,
            &json!({"path": inside.to_str().unwrap(), "content_type": "text/plain"}),
        )
        .expect(202)
        .json();
    assert_eq!(accepted["file_selector"]["size"], 6, "{accepted}");
    assert!(inside.exists(), "without delete_after the file stays");
}
