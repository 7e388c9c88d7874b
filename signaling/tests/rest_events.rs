//! The REST API's events and read routes end to end: SSE resumption,
//! session listing, a webhook that never answers, the OpenAPI document and
//! the metrics (real processes, as in `rest.rs`).

mod support;
use support::{common, sse, stack, webhook_receiver};

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use sse::Sse;
use stack::Pair;
use webhook_receiver::{Answer, WebhookReceiver};

use common::*;

/// SSE resumption: after a disconnect, `Last-Event-ID` brings exactly the
/// events missed, in order, then the live ones, with no duplicate.
#[test]
fn sse_resumes_with_exactly_the_missed_events() {
    let started = Instant::now();
    let pair = Pair::start("resume", &[]);
    let api = &pair.api;
    let mut first = Sse::open(api, "/v1/events", None);
    let (x, _, _) = connected_3pcc(api, "x");
    let (y, _, _) = connected_3pcc(api, "y");
    let (x, y) = (id_of(&x), id_of(&y));
    let read_x = first.expect("connected", &x);
    let read_y = first.expect("connected", &y);
    assert!(read_x.seq() < read_y.seq(), "ids grow: {read_x:?} {read_y:?}");
    drop(first);

    // Missed while away.
    let (z, _, _) = connected_3pcc(api, "z");
    let z = id_of(&z);
    api.delete(&format!("/v1/sessions/{x}")).expect(200);
    api.delete(&format!("/v1/sessions/{y}")).expect(200);

    let mut resumed = Sse::open(api, "/v1/events", Some(read_y.seq()));
    let missed: Vec<(String, String)> = (0..3)
        .map(|_| {
            let event = resumed.next(WAIT).expect("a missed event");
            (event.event.clone(), event.session())
        })
        .collect();
    assert_eq!(
        missed,
        [
            ("connected".to_string(), z.clone()),
            ("hangup".to_string(), x.clone()),
            ("hangup".to_string(), y.clone())
        ]
    );
    let ids: Vec<u64> = resumed.log.iter().map(|e| e.seq()).collect();
    assert_eq!(
        ids,
        [read_y.seq() + 1, read_y.seq() + 2, read_y.seq() + 3],
        "consecutive, after the last read"
    );
    // Then live: the next one, once.
    api.delete(&format!("/v1/sessions/{z}")).expect(200);
    let live = resumed.next(WAIT).expect("the live event");
    assert_eq!(
        (live.event.as_str(), live.session(), live.seq()),
        ("hangup", z.clone(), read_y.seq() + 4)
    );
    resumed.expect_nothing(Duration::from_millis(300));

    // A filtered resume: only hangups, still after the id given.
    let mut filtered = Sse::open(api, "/v1/events?type=hangup", Some(read_y.seq()));
    let sessions: Vec<String> = (0..3)
        .map(|_| filtered.next(WAIT).expect("a hangup").session())
        .collect();
    assert_eq!(sessions, [x, y, z.clone()]);
    assert!(
        filtered.log.iter().all(|e| e.event == "hangup"),
        "{:?}",
        filtered.log
    );
    filtered.expect_nothing(Duration::from_millis(200));
    let mut one = Sse::open(api, &format!("/v1/events?tag=z&session={z}"), Some(0));
    let kinds: Vec<String> = (0..2)
        .map(|_| one.next(WAIT).expect("an event of z").event)
        .collect();
    assert_eq!(kinds, ["connected", "hangup"]);
    one.expect_nothing(Duration::from_millis(200));
    eprintln!("resume: {:?}", started.elapsed());
}

/// `GET /v1/sessions`: oldest first, by pages (`limit`, `after`/`next`),
/// by state and by tag.
#[test]
fn sessions_are_listed_by_page_state_and_tag() {
    let pair = Pair::start("list", &[]);
    let api = &pair.api;
    let (first, _, _) = connected_3pcc(api, "red");
    let (second, _, _) = connected_3pcc(api, "blue");
    let third = api
        .post("/v1/sessions", &json!({"mode": "3pcc", "tag": "red"}))
        .expect(201)
        .json();
    let [first, second, third] = [&first, &second, &third].map(id_of);
    let ids = |page: &Value| -> Vec<String> {
        page["sessions"]
            .as_array()
            .unwrap_or_else(|| panic!("{page}"))
            .iter()
            .map(id_of)
            .collect()
    };
    let page = api.get("/v1/sessions?limit=2").expect(200).json();
    assert_eq!(ids(&page), [first.as_str(), second.as_str()], "{page}");
    let next = page["next"].as_str().unwrap_or_else(|| panic!("no next: {page}"));
    let page = api
        .get(&format!("/v1/sessions?limit=2&after={next}"))
        .expect(200)
        .json();
    assert_eq!(ids(&page), [third.as_str()], "{page}");
    assert!(page.get("next").is_none(), "the last page has no next: {page}");
    let red = api.get("/v1/sessions?tag=red").expect(200).json();
    assert_eq!(ids(&red), [first.as_str(), third.as_str()]);
    let offered = api.get("/v1/sessions?state=offered").expect(200).json();
    assert_eq!(ids(&offered), [third.as_str()]);
    api.delete(&format!("/v1/sessions/{second}")).expect(200);
    let closed = api.get("/v1/sessions?state=closed").expect(200).json();
    assert_eq!(ids(&closed), [second.as_str()]);
    api.get("/v1/sessions?limit=0")
        .expect_error(400, "bad_request", "limit");
    api.get("/v1/sessions?limit=1001")
        .expect_error(400, "bad_request", "limit");
}

/// A webhook receiver that accepts and never answers delays neither SSE nor
/// message delivery; the webhook shows its backlog, and its attempts once
/// the 5 s timeout has passed.
#[test]
fn a_webhook_that_never_answers_delays_nothing_else() {
    let started = Instant::now();
    let pair = Pair::start("dead-hook", &[]);
    let api = &pair.api;
    let mut dead = WebhookReceiver::start(Answer::Never);
    let hook = api
        .post("/v1/webhooks", &json!({"url": dead.url}))
        .expect(201)
        .json();
    let hook_id = id_of(&hook);
    let mut events = Sse::open(api, "/v1/events", None);

    let (view, ours, theirs) = connected_3pcc(api, "dead");
    let id = id_of(&view);
    events.expect("connected", &id);
    // The receiver got the first event and sits on it.
    dead.wait_for(1, WAIT);
    let mut peer = peer_sends(&ours, &theirs, "dead-m0", b"first");
    events.expect("message", &id);
    for n in 0..5 {
        let asked = Instant::now();
        let sent = api
            .post(
                &format!("/v1/sessions/{id}/messages"),
                &json!({"text": format!("message {n}")}),
            )
            .expect(202)
            .json();
        let frame = peer.read();
        assert_eq!(frame.body, format!("message {n}").as_bytes());
        peer.answer_200(&frame);
        let delivered = events.expect("delivered", &id).json();
        assert_eq!(delivered["message"], sent["id"]);
        let took = asked.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "message {n}: REST -> peer -> delivered took {took:?}"
        );
    }
    let info = api.get(&format!("/v1/webhooks/{hook_id}")).expect(200).json();
    assert_eq!(info["state"], "active", "{info}");
    assert!(
        info["backlog"].as_u64().unwrap() >= 7,
        "connected, message, 5 delivered wait: {info}"
    );
    assert_eq!(info["delivered"], 0, "{info}");
    // The first attempt times out after 5 s and is counted.
    wait_until("the hung attempt counted", Duration::from_secs(9), || {
        api.get(&format!("/v1/webhooks/{hook_id}")).json()["attempts"].as_u64() >= Some(1)
    });
    let info = api.get(&format!("/v1/webhooks/{hook_id}")).expect(200).json();
    assert!(
        info["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("no response")),
        "{info}"
    );
    let listed = api.get("/v1/webhooks").expect(200).json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    // Still prompt while the retry hangs too.
    let asked = Instant::now();
    api.delete(&format!("/v1/sessions/{id}")).expect(200);
    events.expect("hangup", &id);
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "hangup took {:?}",
        asked.elapsed()
    );
    api.delete(&format!("/v1/webhooks/{hook_id}")).expect(204);
    api.get(&format!("/v1/webhooks/{hook_id}"))
        .expect_error(404, "not_found", &hook_id);
    eprintln!("dead hook: {:?}", started.elapsed());
}

/// `/openapi.json` is OpenAPI 3.1 and lists every route with its methods,
/// each of which the router serves; `/metrics` counts SIP by method and
/// status, sessions by state, messages by class, webhooks and the engine,
/// and ends with `# EOF` (OpenMetrics).
#[test]
fn openapi_lists_every_route_and_metrics_count_a_call() {
    let started = Instant::now();
    let a = Pair::start("metrics-a", &[]);
    let b = Pair::start("metrics-b", &[]);

    let doc = a.api.get("/openapi.json").expect(200).json();
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    let routes: &[(&str, &[&str])] = &[
        ("/v1/sessions", &["get", "post"]),
        ("/v1/sessions/{id}", &["delete", "get"]),
        ("/v1/sessions/{id}/answer", &["post"]),
        ("/v1/sessions/{id}/reject", &["post"]),
        ("/v1/sessions/{id}/remote_sdp", &["put"]),
        ("/v1/sessions/{id}/messages", &["post"]),
        ("/v1/messages:batch", &["post"]),
        ("/v1/sessions/{id}/files", &["post"]),
        ("/v1/transfers", &["post"]),
        ("/v1/transfers/{id}", &["delete", "get"]),
        ("/v1/events", &["get"]),
        ("/v1/webhooks", &["get", "post"]),
        ("/v1/webhooks/{id}", &["delete", "get"]),
        ("/healthz", &["get"]),
        ("/metrics", &["get"]),
    ];
    let paths = doc["paths"]
        .as_object()
        .unwrap_or_else(|| panic!("no paths in {doc}"));
    let methods = [
        "get", "put", "post", "delete", "patch", "head", "options", "trace",
    ];
    for (path, wanted) in routes {
        let item = paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} is not in /openapi.json: {:?}", paths.keys()));
        let have: BTreeSet<&str> = methods
            .iter()
            .copied()
            .filter(|m| item.get(*m).is_some())
            .collect();
        assert_eq!(have, wanted.iter().copied().collect(), "{path}");
        for method in wanted.iter() {
            assert!(
                item[*method]["responses"].is_object(),
                "{method} {path} has no responses"
            );
        }
    }
    assert_eq!(
        paths.len(),
        routes.len(),
        "no route beyond these: {:?}",
        paths.keys()
    );
    // Each documented operation is served (not the fallback, not 405).
    for (path, wanted) in routes {
        if *path == "/v1/events" {
            continue; // a stream: `Sse::open` below asserts its 200
        }
        let concrete = path.replace("{id}", "nobody");
        for method in *wanted {
            let method = method.to_ascii_uppercase();
            let response = a
                .api
                .request(&method, &concrete, &[("Content-Type", "application/json")], b"{}");
            assert_ne!(response.status, 405, "{method} {concrete}: {}", response.text());
            assert!(
                !response.text().contains("no such route"),
                "{method} {concrete}: {}",
                response.text()
            );
        }
    }

    // A call, a message, a webhook.
    let mut hooks = WebhookReceiver::start(Answer::Ok);
    a.api.post("/v1/webhooks", &json!({"url": hooks.url})).expect(201);
    let mut events = Sse::open(&a.api, "/v1/events", None);
    let id = id_of(
        &a.api
            .post("/v1/sessions", &json!({"to": b.sip_uri("b")}))
            .expect(201)
            .json(),
    );
    events.expect("connected", &id);
    a.api
        .post(
            &format!("/v1/sessions/{id}/messages"),
            &json!({"text": "counted"}),
        )
        .expect(202);
    events.expect("delivered", &id);
    hooks.wait_for(3, WAIT);
    wait_until("the webhook's deliveries counted", WAIT, || {
        a.api.get("/v1/webhooks").json()[0]["delivered"].as_u64() >= Some(3)
    });

    let response = a.api.get("/metrics").expect(200);
    assert!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{:?}",
        response.headers
    );
    let text = response.text();
    assert!(
        text.ends_with("# EOF\n"),
        "OpenMetrics ends with # EOF: {:?}",
        &text[text.len().saturating_sub(200)..]
    );
    let at_least = |name: &str, labels: &[(&str, &str)], min: f64| {
        let value = metric(&text, name, labels).unwrap_or_else(|| panic!("no {name}{labels:?} in\n{text}"));
        assert!(value >= min, "{name}{labels:?} = {value}, want >= {min}\n{text}");
    };
    at_least(
        "msrp_signal_sip_messages_total",
        &[("direction", "out"), ("method", "INVITE"), ("status", "request")],
        1.0,
    );
    at_least(
        "msrp_signal_sip_messages_total",
        &[("direction", "in"), ("method", "INVITE"), ("status", "200")],
        1.0,
    );
    at_least(
        "msrp_signal_sip_messages_total",
        &[("direction", "out"), ("method", "ACK")],
        1.0,
    );
    assert_eq!(
        metric(&text, "msrp_signal_sessions", &[("state", "connected")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "msrp_signal_sessions", &[("state", "incoming")]),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "msrp_signal_messages_total",
            &[("direction", "out"), ("class", "content")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "msrp_signal_messages_total",
            &[("direction", "in"), ("class", "imdn")]
        ),
        Some(0.0),
        "{text}"
    );
    assert_eq!(metric(&text, "msrp_signal_dialogs", &[]), Some(1.0), "{text}");
    assert_eq!(metric(&text, "msrp_signal_webhooks", &[]), Some(1.0), "{text}");
    at_least(
        "msrp_signal_webhook_events_total",
        &[("outcome", "delivered")],
        3.0,
    );
    at_least("msrp_signal_webhook_attempts_total", &[], 3.0);
    assert_eq!(metric(&text, "msrp_signal_sse_streams", &[]), Some(1.0), "{text}");
    at_least("msrp_signal_events_total", &[], 3.0);
    assert_eq!(
        metric(&text, "msrp_signal_engine_sessions", &[]),
        Some(1.0),
        "{text}"
    );
    at_least("msrp_signal_engine_messages_delivered_total", &[], 1.0);
    assert!(text.contains("# TYPE msrp_signal_sip_messages counter"), "{text}");
    assert!(text.contains("# TYPE msrp_signal_sessions gauge"), "{text}");

    // B counts the other side.
    let b_text = b.api.get("/metrics").expect(200).text();
    assert_eq!(
        metric(
            &b_text,
            "msrp_signal_messages_total",
            &[("direction", "in"), ("class", "content")]
        ),
        Some(1.0),
        "{b_text}"
    );
    assert!(
        metric(
            &b_text,
            "msrp_signal_sip_messages_total",
            &[("direction", "out"), ("method", "INVITE"), ("status", "200")]
        )
        .is_some_and(|n| n >= 1.0),
        "{b_text}"
    );
    eprintln!("metrics: {:?}", started.elapsed());
}
