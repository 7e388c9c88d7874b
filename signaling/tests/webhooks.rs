//! Webhooks over real HTTP on loopback: an axum receiver (or a socket that
//! accepts and never answers) on one side, `Webhooks` on the other.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use msrp_signaling::app::events::{AppEvent, EventFilter, EventLog, EventType};
use msrp_signaling::rest::webhooks::{
    WebhookConfig, WebhookError, WebhookInfo, WebhookSpec, WebhookState, WebhookStats, Webhooks,
};
use serde_json::Map;
use sha2::Sha256;
use tokio::net::TcpListener;

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    peer: SocketAddr,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or("", |value| value.to_str().unwrap_or("(not text)"))
    }

    fn seq(&self) -> u64 {
        self.header("x-msrp-event-id").parse().unwrap()
    }
}

/// An axum server that records every request and answers the scripted
/// statuses in turn, then 200.
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
    statuses: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    async fn start(statuses: &[u16]) -> (Receiver, SocketAddr) {
        let receiver = Receiver::default();
        receiver.statuses.lock().unwrap().extend(statuses);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let router = axum::Router::new().fallback(answer).with_state(receiver.clone());
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        (receiver, address)
    }

    fn received(&self, path: &str) -> Vec<Received> {
        let received = self.received.lock().unwrap();
        received.iter().filter(|r| r.path == path).cloned().collect()
    }

    fn seqs(&self, path: &str) -> Vec<u64> {
        self.received(path).iter().map(Received::seq).collect()
    }
}

async fn answer(
    State(receiver): State<Receiver>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    receiver.received.lock().unwrap().push(Received {
        path: uri.to_string(),
        peer,
        headers,
        body,
    });
    let status = receiver.statuses.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

/// A listener that accepts connections, reads nothing and never answers;
/// the number of connections it accepted.
async fn silent() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    (address, accepted)
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn fast() -> WebhookConfig {
    WebhookConfig {
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(40),
        timeout: Duration::from_secs(2),
        ..WebhookConfig::default()
    }
}

fn spec(url: String) -> WebhookSpec {
    WebhookSpec {
        url,
        filter: EventFilter::default(),
        secret: None,
    }
}

fn event(log: &mut EventLog, app: &Arc<str>, session: &str, kind: EventType) -> Arc<AppEvent> {
    log.push(app, session, Some("tag"), kind, 1_700_000_000_000, &Map::new())
}

fn info(webhooks: &Webhooks, app: &str, id: &str) -> WebhookInfo {
    webhooks.get(app, id).unwrap()
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test]
async fn events_arrive_in_order_with_the_headers_and_a_signature_that_verifies() {
    let (receiver, address) = Receiver::start(&[]).await;
    let webhooks = Webhooks::new(fast());
    let app: Arc<str> = Arc::from("a");
    let signed = WebhookSpec {
        secret: Some("s3cret".into()),
        ..spec(format!("http://{address}/signed"))
    };
    let signed = webhooks.add(app.clone(), signed).unwrap();
    // A name, resolved at delivery time (localhost may give ::1 first, which refuses).
    let by_name = format!("localhost:{}", address.port());
    let plain = webhooks
        .add(app.clone(), spec(format!("http://{by_name}/plain?x=1")))
        .unwrap();
    assert_eq!(signed.state, WebhookState::Active);

    let mut log = EventLog::new(64);
    let kinds = [
        EventType::Incoming,
        EventType::Connected,
        EventType::Message,
        EventType::Hangup,
    ];
    let events: Vec<_> = (0..20)
        .map(|i| event(&mut log, &app, "s1", kinds[i % kinds.len()]))
        .collect();
    for event in &events {
        webhooks.publish(event);
    }
    until("40 requests", || receiver.received.lock().unwrap().len() == 40).await;

    let received = receiver.received("/signed");
    assert_eq!(
        received.iter().map(Received::seq).collect::<Vec<_>>(),
        (1..=20).collect::<Vec<_>>()
    );
    for (request, event) in received.iter().zip(&events) {
        assert_eq!(request.header("content-type"), "application/json");
        assert_eq!(request.header("user-agent"), "msrp-signal");
        assert_eq!(request.header("host"), address.to_string());
        assert_eq!(request.header("x-msrp-event-type"), event.kind.name());
        assert_eq!(request.body, event.json);
        let hex = request
            .header("x-msrp-signature")
            .strip_prefix("sha256=")
            .unwrap();
        assert_eq!(hex.len(), 64);
        assert_eq!(hex, hex.to_ascii_lowercase());
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(&request.body);
        mac.verify_slice(&hex_decode(hex))
            .expect("the signature verifies");
    }
    // One keep-alive connection carried them all.
    assert!(received.iter().all(|r| r.peer == received[0].peer));

    let plain_received = receiver.received("/plain?x=1");
    assert_eq!(plain_received.len(), 20);
    assert!(plain_received
        .iter()
        .all(|r| r.header("x-msrp-signature").is_empty()));
    assert!(plain_received.iter().all(|r| r.header("host") == by_name));

    until("the counts", || webhooks.stats().delivered == 40).await;
    for id in [&signed.id, &plain.id] {
        let info = info(&webhooks, "a", id);
        assert_eq!(
            (info.delivered, info.attempts, info.failed, info.backlog),
            (20, 20, 0, 0)
        );
        assert_eq!(info.last_error, None);
    }
    let stats = webhooks.stats();
    assert_eq!(
        (stats.webhooks, stats.attempts, stats.retries, stats.backlog),
        (2, 40, 0, 0)
    );
}

#[tokio::test]
async fn a_receiver_that_answers_500_twice_gets_the_event_on_the_third_attempt() {
    let (receiver, address) = Receiver::start(&[500, 500]).await;
    let webhooks = Webhooks::new(fast());
    let app: Arc<str> = Arc::from("a");
    let hook = webhooks
        .add(app.clone(), spec(format!("http://{address}/")))
        .unwrap();
    let mut log = EventLog::new(8);
    webhooks.publish(&event(&mut log, &app, "s1", EventType::Message));

    until("the delivery", || info(&webhooks, "a", &hook.id).delivered == 1).await;
    let info = info(&webhooks, "a", &hook.id);
    assert_eq!((info.attempts, info.failed, info.backlog), (3, 0, 0));
    assert_eq!(info.last_error.as_deref(), Some("HTTP 500 Internal Server Error"));
    let stats = webhooks.stats();
    assert_eq!(
        (stats.delivered, stats.attempts, stats.retries, stats.failed),
        (1, 3, 2, 0)
    );

    let received = receiver.received("/");
    assert_eq!(received.iter().map(Received::seq).collect::<Vec<_>>(), [1, 1, 1]);
    // A 500 with its body read leaves the connection usable.
    assert!(received.iter().all(|r| r.peer == received[0].peer));
}

#[tokio::test]
async fn a_dead_webhook_is_dropped_and_never_delays_a_healthy_one() {
    let config = WebhookConfig {
        attempts_max: 2,
        failures_max: 2,
        timeout: Duration::from_millis(200),
        ..fast()
    };
    let (dead_address, accepted) = silent().await;
    let (receiver, address) = Receiver::start(&[]).await;
    let webhooks = Webhooks::new(config);
    let app: Arc<str> = Arc::from("a");
    let dead = webhooks
        .add(app.clone(), spec(format!("http://{dead_address}/")))
        .unwrap();
    let healthy = webhooks
        .add(app.clone(), spec(format!("http://{address}/")))
        .unwrap();

    let mut log = EventLog::new(64);
    let started = Instant::now();
    for _ in 0..10 {
        webhooks.publish(&event(&mut log, &app, "s1", EventType::Message));
    }
    until("the healthy webhook's 10 events", || {
        receiver.seqs("/").len() == 10
    })
    .await;
    let healthy_done = started.elapsed();
    assert_eq!(receiver.seqs("/"), (1..=10).collect::<Vec<_>>());
    assert_eq!(
        info(&webhooks, "a", &dead.id).state,
        WebhookState::Active,
        "after {healthy_done:?}"
    );

    until("the dead webhook's drop", || {
        info(&webhooks, "a", &dead.id).state == WebhookState::Dropped
    })
    .await;
    let dropped_after = started.elapsed();
    assert!(healthy_done < dropped_after);
    let info = info(&webhooks, "a", &dead.id);
    assert_eq!(
        (info.attempts, info.failed, info.dropped, info.backlog),
        (4, 2, 8, 0)
    );
    assert_eq!(info.last_error.as_deref(), Some("no response within 200ms"));
    // Each timed-out attempt gave its connection up and made a new one.
    assert_eq!(accepted.load(Ordering::SeqCst), 4);
    let stats = webhooks.stats();
    assert_eq!((stats.webhooks, stats.webhooks_dropped, stats.failed), (1, 1, 2));
    assert_eq!(stats.dropped_full, 0);

    // A dropped webhook gets nothing more; the healthy one goes on.
    webhooks.publish(&event(&mut log, &app, "s1", EventType::Message));
    until("event 11", || receiver.seqs("/").len() == 11).await;
    assert_eq!(webhooks.get("a", &dead.id).unwrap().dropped, 8);
    let states: Vec<_> = webhooks
        .list("a")
        .iter()
        .map(|w| (w.id.clone(), w.state))
        .collect();
    assert_eq!(
        states,
        [
            (dead.id.clone(), WebhookState::Dropped),
            (healthy.id.clone(), WebhookState::Active)
        ]
    );
    assert!(webhooks.remove("a", &dead.id));
    assert_eq!(webhooks.list("a").len(), 1);
    eprintln!("healthy done after {healthy_done:?}, dead dropped after {dropped_after:?}");
}

#[tokio::test]
async fn a_full_queue_drops_new_events_and_publish_never_waits() {
    let config = WebhookConfig {
        queue_max: 4,
        timeout: Duration::from_secs(30),
        ..fast()
    };
    let (stalled, accepted) = silent().await;
    let webhooks = Webhooks::new(config);
    let app: Arc<str> = Arc::from("a");
    let hook = webhooks
        .add(app.clone(), spec(format!("http://{stalled}/")))
        .unwrap();
    let mut log = EventLog::new(256);
    let events: Vec<_> = (0..100)
        .map(|_| event(&mut log, &app, "s1", EventType::Progress))
        .collect();

    let started = Instant::now();
    for event in &events {
        webhooks.publish(event);
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(50),
        "publishing 100 events took {took:?}"
    );
    // The current-thread runtime ran no delivery meanwhile: 4 queued, 96 lost.
    let info = info(&webhooks, "a", &hook.id);
    assert_eq!((info.backlog, info.dropped), (4, 96));
    assert_eq!(webhooks.stats().dropped_full, 96);

    // The task takes one into flight (which stays in the backlog): room for one more.
    until("the stalled attempt", || accepted.load(Ordering::SeqCst) == 1).await;
    webhooks.publish(&event(&mut log, &app, "s1", EventType::Progress));
    webhooks.publish(&event(&mut log, &app, "s1", EventType::Progress));
    let info = webhooks.get("a", &hook.id).unwrap();
    assert_eq!((info.backlog, info.dropped, info.attempts), (5, 97, 0));

    assert!(webhooks.remove("a", &hook.id));
    let stats = webhooks.stats();
    assert_eq!((stats.webhooks, stats.backlog, stats.dropped_full), (0, 0, 97));
}

#[tokio::test]
async fn filters_pick_types_and_sessions_and_applications_are_isolated() {
    let (receiver, address) = Receiver::start(&[]).await;
    let webhooks = Webhooks::new(fast());
    let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
    let by_type = WebhookSpec {
        filter: EventFilter {
            types: vec![EventType::Message, EventType::Hangup],
            ..EventFilter::default()
        },
        ..spec(format!("http://{address}/types"))
    };
    let by_session = WebhookSpec {
        filter: EventFilter {
            sessions: vec!["s2".into()],
            ..EventFilter::default()
        },
        ..spec(format!("http://{address}/sessions"))
    };
    let by_type = webhooks.add(a.clone(), by_type).unwrap();
    let by_session = webhooks.add(a.clone(), by_session).unwrap();
    let of_b = webhooks
        .add(b.clone(), spec(format!("http://{address}/b")))
        .unwrap();

    let mut log = EventLog::new(64);
    for (session, kind) in [
        ("s1", EventType::Message),
        ("s1", EventType::Connected),
        ("s2", EventType::Connected),
        ("s2", EventType::Message),
        ("s3", EventType::Hangup),
        // Last, matching both: each queue is in order, so once it arrives
        // nothing that was wrongly let through can still be on its way.
        ("s2", EventType::Hangup),
    ] {
        webhooks.publish(&event(&mut log, &a, session, kind));
    }
    webhooks.publish(&event(&mut log, &b, "s9", EventType::Message));
    until("the last events", || {
        receiver.seqs("/types").last() == Some(&6)
            && receiver.seqs("/sessions").last() == Some(&6)
            && receiver.seqs("/b").last() == Some(&7)
    })
    .await;
    assert_eq!(receiver.seqs("/types"), [1, 4, 5, 6]);
    assert_eq!(receiver.seqs("/sessions"), [3, 4, 6]);
    assert_eq!(receiver.seqs("/b"), [7]);

    let ids = |app: &str| webhooks.list(app).into_iter().map(|w| w.id).collect::<Vec<_>>();
    assert_eq!(ids("a"), [by_type.id.clone(), by_session.id.clone()]);
    assert_eq!(ids("b"), [of_b.id.as_str()]);
    assert!(ids("c").is_empty());
    assert!(webhooks.get("b", &by_type.id).is_none());
    assert!(webhooks.get("a", &of_b.id).is_none());
    assert!(!webhooks.remove("b", &by_type.id));
    assert!(!webhooks.remove("a", "wh-nonexistent"));
    assert!(webhooks.get("a", &by_type.id).is_some());
    assert_eq!(
        info(&webhooks, "a", &by_type.id).filter.types,
        [EventType::Message, EventType::Hangup]
    );
    assert!(webhooks.remove("b", &of_b.id));
    assert!(webhooks.get("b", &of_b.id).is_none());
}

#[tokio::test]
async fn urls_are_validated_and_webhooks_max_is_enforced() {
    let webhooks = Webhooks::new(WebhookConfig {
        webhooks_max: 2,
        ..fast()
    });
    let app: Arc<str> = Arc::from("a");
    let refused = |url: &str| match webhooks.add(app.clone(), spec(url.into())) {
        Err(error @ WebhookError::Url(_)) => error.to_string(),
        other => panic!("{url}: {other:?}"),
    };
    assert_eq!(
        refused("https://example.com/hook"),
        "url: https webhooks need TLS, which msrp-signal does not have yet; use http://"
    );
    assert_eq!(
        refused("ftp://example.com/"),
        "url: the scheme \"ftp\" is not supported; use http://"
    );
    assert_eq!(refused("http:///hook"), "url: the url has no host");
    assert_eq!(refused("http://"), "url: the url has no host");
    assert_eq!(
        refused("garbage"),
        "url: \"garbage\" is not of the form http://HOST[:PORT][/PATH]"
    );
    assert!(refused("http://ex ample.com/").contains("neither an IP address nor a DNS name"));
    assert!(refused("http://example.com:http/").contains("the port \"http\""));
    assert!(webhooks.list("a").is_empty(), "a refused url registers nothing");

    webhooks
        .add(app.clone(), spec("http://127.0.0.1:9/".into()))
        .unwrap();
    let second = webhooks
        .add(app.clone(), spec("http://[::1]:9/x".into()))
        .unwrap();
    let third = webhooks.add(app.clone(), spec("http://localhost/x".into()));
    assert_eq!(third.unwrap_err(), WebhookError::Full(2));
    assert_eq!(
        WebhookError::Full(2).to_string(),
        "2 webhooks are registered, the configured maximum"
    );
    // The bound is per application, and a removal frees a place.
    webhooks
        .add(Arc::from("b"), spec("http://localhost/x".into()))
        .unwrap();
    assert!(webhooks.remove("a", &second.id));
    webhooks
        .add(app.clone(), spec("http://localhost/x".into()))
        .unwrap();
    assert_eq!(
        webhooks.stats(),
        WebhookStats {
            webhooks: 3,
            ..WebhookStats::default()
        }
    );
}

#[tokio::test]
async fn the_spec_and_info_as_json() {
    let spec: WebhookSpec = serde_json::from_str(
        r#"{"url": "http://127.0.0.1:9/", "filter": {"types": ["message"]}, "secret": "k"}"#,
    )
    .unwrap();
    assert_eq!(spec.filter.types, [EventType::Message]);
    assert!(serde_json::from_str::<WebhookSpec>(r#"{"url": "http://h/", "sign": true}"#).is_err());
    let minimal: WebhookSpec = serde_json::from_str(r#"{"url": "http://h/"}"#).unwrap();
    assert_eq!((minimal.filter, minimal.secret), (EventFilter::default(), None));

    let webhooks = Webhooks::new(fast());
    let info = webhooks.add(Arc::from("a"), spec).unwrap();
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["state"], "active");
    assert_eq!(json["url"], "http://127.0.0.1:9/");
    assert!(json.get("secret").is_none(), "the secret is never shown: {json}");
    assert_eq!(json["last_error"], serde_json::Value::Null);
}
