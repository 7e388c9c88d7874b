//! Control protocol version 2 through the real socket of real engines
//! (issue 12): batches of operations with a result each, their bounds,
//! filtered subscriptions in both event encodings, a subscriber that stops
//! reading, and the tokio client shared by many tasks.

mod daemon;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use daemon::{collect_events, passive, Daemon};
use msrp_engine::control::{
    AsyncClient, BatchOp, Client, CloseRequest, EngineEvent, EventKind, OpResult, SendRequest,
    SessionDescriptor, SessionRole, Subscription, PROTOCOL_VERSION,
};

fn v2(daemon: &Daemon) -> Client {
    let mut client = daemon.client();
    assert_eq!(client.hello(PROTOCOL_VERSION).unwrap(), 2);
    client
}

fn active(session_id: &str, remote: String) -> SessionDescriptor {
    SessionDescriptor {
        role: SessionRole::Active,
        ..passive(session_id, remote)
    }
}

fn tagged(mut descriptor: SessionDescriptor, tag: &str) -> SessionDescriptor {
    descriptor.tag = Some(tag.into());
    descriptor
}

fn send_op(session_id: &str, content_type: &str, body: &[u8]) -> BatchOp {
    BatchOp::Send(SendRequest {
        session_id: session_id.into(),
        content_type: content_type.into(),
        payload_len: Some(body.len() as u64),
        ..SendRequest::default()
    })
}

/// Creates passive sessions on `a` and their active peers on `b`, each
/// side in one batch, and waits until `b` has them all ready.
fn pairs(a: &Daemon, b: &Daemon, ids: &[&str], tags: &[Option<&str>]) {
    let mut a_ctl = v2(a);
    let ops = ids
        .iter()
        .zip(tags)
        .map(|(id, tag)| {
            let descriptor = passive(&format!("a{id}"), b.uri(&format!("b{id}")));
            BatchOp::CreateSession(match tag {
                Some(tag) => tagged(descriptor, tag),
                None => descriptor,
            })
        })
        .collect();
    let results = a_ctl.batch(ops, &[]).unwrap();
    assert!(results.iter().all(|r| r.ok), "{results:?}");
    assert_eq!(results[0].session_id.as_deref(), Some(&*format!("a{}", ids[0])));
    let mut b_events = b.client();
    b_events
        .subscribe_to(Subscription {
            events: vec![EventKind::SessionReady],
            ..Subscription::default()
        })
        .unwrap();
    let mut b_ctl = v2(b);
    let ops = ids
        .iter()
        .map(|id| BatchOp::CreateSession(active(&format!("b{id}"), a.uri(&format!("a{id}")))))
        .collect();
    let results = b_ctl.batch(ops, &[]).unwrap();
    assert!(results.iter().all(|r| r.ok), "{results:?}");
    let mut ready = 0;
    collect_events(&mut b_events, Duration::from_secs(30), |event, _| {
        assert!(matches!(event, EngineEvent::SessionReady { .. }), "{event:?}");
        ready += 1;
        ready == ids.len()
    });
}

fn error_of(result: &OpResult) -> &str {
    assert!(!result.ok, "{result:?}");
    result.error.as_deref().unwrap_or_default()
}

#[test]
fn a_batch_answers_every_operation_in_order_and_one_failure_spoils_none_of_the_others() {
    let a = Daemon::start("batch-a", &["--shards", "2"]);
    let b = Daemon::start("batch-b", &["--shards", "2"]);
    pairs(&a, &b, &["1", "2", "3"], &[None, None, None]);
    let mut received = a.events();
    let mut ctl = v2(&b);
    let bodies: [&[u8]; 3] = [b"one", b"two, longer", b"three"];
    let ops = vec![
        send_op("b1", "text/plain", bodies[0]),
        send_op("nobody", "text/plain", b"lost"),
        send_op("b2", "text/plain", bodies[1]),
        send_op("b2", "", b"no type"),
        BatchOp::CloseSession(CloseRequest {
            session_id: "b3".into(),
            reason: Some("done".into()),
        }),
        send_op("b3", "text/plain", b"after the close"),
        send_op("b1", "text/plain", bodies[2]),
    ];
    let payload: Vec<u8> = [
        bodies[0],
        b"lost",
        bodies[1],
        b"no type",
        b"after the close",
        bodies[2],
    ]
    .concat();
    let results = ctl.batch(ops, &payload).unwrap();
    assert_eq!(results.len(), 7, "{results:?}");
    assert!(results[0].ok && results[0].message.is_some(), "{:?}", results[0]);
    assert!(
        error_of(&results[1]).contains("no session nobody"),
        "{:?}",
        results[1]
    );
    assert!(results[2].ok, "{:?}", results[2]);
    assert!(
        error_of(&results[3]).contains("content_type is required"),
        "{:?}",
        results[3]
    );
    assert!(results[4].ok, "{:?}", results[4]);
    // The close before it took effect first.
    assert!(
        error_of(&results[5]).contains("no session b3"),
        "{:?}",
        results[5]
    );
    assert!(results[6].ok, "{:?}", results[6]);
    let numbers: Vec<u64> = [0, 2, 6].iter().map(|&i| results[i].message.unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[0] != w[1]), "{numbers:?}");

    // Exactly the three good bodies arrive, each whole, in order per session.
    let mut got: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    let mut count = 0;
    collect_events(&mut received, Duration::from_secs(30), |event, payload| {
        if let EngineEvent::MessageReceived { session_id, .. } = event {
            got.entry(session_id).or_default().push(payload.to_vec());
            count += 1;
        }
        count == 3
    });
    assert_eq!(got["a1"], vec![bodies[0].to_vec(), bodies[2].to_vec()]);
    assert_eq!(got["a2"], vec![bodies[1].to_vec()]);
    assert!(!got.contains_key("a3"));
}

#[test]
fn a_batch_over_its_bounds_or_without_version_2_is_refused_whole_and_the_stream_goes_on() {
    let a = Daemon::start(
        "batch-bounds",
        &[
            "--shards",
            "1",
            "--batch-ops-max",
            "4",
            "--batch-payload-max",
            "1KiB",
        ],
    );
    let b = Daemon::start("batch-bounds-b", &["--shards", "1"]);
    pairs(&a, &b, &["1"], &[None]);
    let mut received = b.events();

    let mut v1 = a.client();
    let refused = v1
        .batch(vec![send_op("a1", "text/plain", b"x")], b"x")
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("batch needs control protocol version 2"),
        "{refused}"
    );
    let refused = v1.hello(3).unwrap_err();
    assert!(
        refused.to_string().contains("versions 1 to 2, not 3"),
        "{refused}"
    );

    let mut ctl = v2(&a);
    let five = (0..5).map(|_| send_op("a1", "text/plain", b"x")).collect();
    let refused = ctl.batch(five, b"xxxxx").unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("5 operations is over the limit of 4 (batch-ops-max)"),
        "{refused}"
    );
    let big = vec![b'y'; 2048];
    let refused = ctl
        .batch(vec![send_op("a1", "text/plain", &big)], &big)
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("2048 octets is over the limit of 1024 (batch-payload-max)"),
        "{refused}"
    );
    let refused = ctl
        .batch(vec![send_op("a1", "text/plain", b"abc")], b"ab")
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("add up to 3 octets, but its payload has 2"),
        "{refused}"
    );

    // Nothing of the refused batches was sent; the connection still works.
    let results = ctl
        .batch(vec![send_op("a1", "text/plain", b"only this")], b"only this")
        .unwrap();
    assert!(results[0].ok, "{results:?}");
    collect_events(
        &mut received,
        Duration::from_secs(30),
        |event, payload| match event {
            EngineEvent::MessageReceived { .. } => {
                assert_eq!(&payload[..], b"only this");
                true
            }
            _ => false,
        },
    );
    assert!(received
        .next_event_timeout(Duration::from_millis(300))
        .unwrap()
        .is_none());
    assert_eq!(b.stats().shards[0].messages_received, 1);
}

/// Every event `client` gets until `quiet` passes without one.
fn drain(client: &mut Client, quiet: Duration) -> Vec<EngineEvent> {
    let mut events = Vec::new();
    while let Some((event, _)) = client.next_event_timeout(quiet).unwrap() {
        events.push(event);
    }
    events
}

#[test]
fn filtered_subscribers_get_only_what_they_asked_for_in_either_version() {
    let a = Daemon::start("filter-a", &["--shards", "2"]);
    let b = Daemon::start("filter-b", &["--shards", "1"]);
    // Subscribed before the sessions exist: session_ready is theirs too.
    let subscribe = |version: u32, subscription: Subscription| {
        let mut client = a.client();
        if version == 2 {
            client.hello(2).unwrap();
        }
        client.subscribe_to(subscription).unwrap();
        client
    };
    let mut by_tag = subscribe(
        2,
        Subscription {
            events: vec![EventKind::MessageReceived, EventKind::SessionClosed],
            tags: vec!["app-x".into()],
            ..Subscription::default()
        },
    );
    let mut by_session = subscribe(
        1,
        Subscription {
            sessions: vec!["a3".into()],
            ..Subscription::default()
        },
    );
    let mut by_kind = subscribe(
        2,
        Subscription {
            events: vec![EventKind::SessionReady],
            ..Subscription::default()
        },
    );
    let mut everything = subscribe(2, Subscription::default());
    pairs(&a, &b, &["1", "2", "3"], &[Some("app-x"), Some("app-y"), None]);
    let mut ctl = v2(&b);
    let mut ops = Vec::new();
    let mut payload = Vec::new();
    for round in 0..10 {
        for id in ["1", "2", "3"] {
            let body = format!("round {round} to a{id}");
            ops.push(send_op(&format!("b{id}"), "text/plain", body.as_bytes()));
            payload.extend_from_slice(body.as_bytes());
        }
    }
    assert!(ctl.batch(ops, &payload).unwrap().iter().all(|r| r.ok));
    let mut everything_got = 0;
    collect_events(&mut everything, Duration::from_secs(30), |event, _| {
        everything_got += usize::from(matches!(event, EngineEvent::MessageReceived { .. }));
        everything_got == 30
    });
    v2(&a).close_session("a1", Some("finished")).unwrap();

    let quiet = Duration::from_millis(500);
    let tag_events = drain(&mut by_tag, quiet);
    assert_eq!(tag_events.len(), 11, "{tag_events:?}");
    for (i, event) in tag_events.iter().enumerate() {
        match (i, event) {
            (0..=9, EngineEvent::MessageReceived { session_id, .. }) => assert_eq!(session_id, "a1"),
            (10, EngineEvent::SessionClosed { session_id, reason }) => {
                assert_eq!((session_id.as_str(), reason.as_str()), ("a1", "finished"))
            }
            _ => panic!("the app-x subscriber got {event:?}"),
        }
    }
    let session_events = drain(&mut by_session, quiet);
    assert!(
        session_events.iter().all(|e| e.session_id() == "a3"),
        "{session_events:?}"
    );
    let kinds: HashMap<EventKind, usize> = session_events.iter().fold(HashMap::new(), |mut m, e| {
        *m.entry(e.kind()).or_default() += 1;
        m
    });
    assert_eq!(
        kinds.get(&EventKind::SessionReady),
        Some(&1),
        "{session_events:?}"
    );
    assert_eq!(
        kinds.get(&EventKind::MessageReceived),
        Some(&10),
        "{session_events:?}"
    );
    let kind_events = drain(&mut by_kind, quiet);
    assert_eq!(kind_events.len(), 3, "{kind_events:?}");
    assert!(kind_events.iter().all(|e| e.kind() == EventKind::SessionReady));
}

#[test]
fn a_subscriber_that_stops_reading_is_dropped_and_the_data_path_goes_on() {
    let a = Daemon::start("slow-sub-a", &["--shards", "1", "--subscriber-queue-depth", "64"]);
    let b = Daemon::start("slow-sub-b", &["--shards", "1"]);
    pairs(&a, &b, &["1"], &[None]);
    // Reads nothing from here on, in version 2 (many events per frame).
    let mut stalled = v2(&a);
    stalled.subscribe().unwrap();
    let mut delivered = b.client();
    delivered
        .subscribe_to(Subscription {
            events: vec![EventKind::Delivered, EventKind::Failed],
            ..Subscription::default()
        })
        .unwrap();
    let mut ctl = v2(&b);
    let body = vec![b'z'; 400];
    let total = 8_000;
    for _ in 0..total / 500 {
        // Within the session's send queue (1,024 messages): each round is
        // delivered before the next.
        let ops = (0..500).map(|_| send_op("b1", "text/plain", &body)).collect();
        let results = ctl.batch(ops, &body.repeat(500)).unwrap();
        assert!(
            results.iter().all(|r| r.ok),
            "{:?}",
            results.iter().find(|r| !r.ok)
        );
        let mut outcomes = 0;
        collect_events(&mut delivered, Duration::from_secs(60), |event, _| {
            assert!(matches!(event, EngineEvent::Delivered { .. }), "{event:?}");
            outcomes += 1;
            outcomes == 500
        });
    }
    let stats = a.stats();
    assert_eq!(stats.subscribers_dropped, 1, "{stats:?}");
    assert_eq!(stats.shards[0].messages_received, total as u64);
    // What was written before the drop is still there to read; then the
    // engine's end is closed.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match stalled.next_event_timeout(Duration::from_secs(5)) {
            Ok(Some(_)) => assert!(Instant::now() < deadline, "the stalled subscriber was not closed"),
            Ok(None) => panic!("the dropped subscriber's socket stayed open"),
            Err(_) => break,
        }
    }
    assert!(a.log().contains("subscriber-queue-depth"), "{}", a.log());
}

#[test]
fn the_async_client_is_shared_by_many_tasks_and_its_events_come_in_order() {
    let a = Daemon::start("async-a", &["--shards", "2"]);
    let b = Daemon::start("async-b", &["--shards", "2"]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (a_ctl, mut a_events) = AsyncClient::connect(&a.control).await.unwrap();
        let (b_ctl, mut b_events) = AsyncClient::connect(&b.control).await.unwrap();
        a_ctl
            .subscribe(Subscription {
                events: vec![EventKind::MessageReceived],
                ..Subscription::default()
            })
            .await
            .unwrap();
        b_ctl
            .subscribe(Subscription {
                events: vec![EventKind::SessionReady, EventKind::Delivered, EventKind::Failed],
                ..Subscription::default()
            })
            .await
            .unwrap();
        let sessions = 8;
        for i in 0..sessions {
            a_ctl
                .create_session(passive(&format!("a{i}"), b.uri(&format!("b{i}"))))
                .await
                .unwrap();
            let created = b_ctl
                .create_session(active(&format!("b{i}"), a.uri(&format!("a{i}"))))
                .await
                .unwrap();
            assert_eq!(created.local_uri, b.uri(&format!("b{i}")));
        }
        for _ in 0..sessions {
            let (event, _) = b_events.next().await.unwrap();
            assert!(matches!(event, EngineEvent::SessionReady { .. }), "{event:?}");
        }
        // Each task sends its own session's numbered texts, concurrently on
        // the one connection; each waits for its own replies.
        let per_session = 25;
        let tasks: Vec<_> = (0..sessions)
            .map(|i| {
                let client = b_ctl.clone();
                tokio::spawn(async move {
                    let mut numbers = Vec::new();
                    for n in 0..per_session {
                        let text = format!("b{i} #{n}");
                        numbers.push(
                            client
                                .send_message(&format!("b{i}"), "text/plain", text.as_bytes())
                                .await
                                .unwrap(),
                        );
                    }
                    numbers
                })
            })
            .collect();
        let mut numbers = Vec::new();
        for task in tasks {
            numbers.extend(task.await.unwrap());
        }
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), sessions * per_session);
        let refused = b_ctl
            .send_message("b-none", "text/plain", b"x")
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("no session b-none"), "{refused}");

        let mut next: HashMap<String, usize> = HashMap::new();
        for _ in 0..sessions * per_session {
            let (event, payload) = a_events.next().await.unwrap();
            let EngineEvent::MessageReceived { session_id, .. } = event else {
                panic!("not asked for: {event:?}");
            };
            let n = next.entry(session_id.clone()).or_default();
            let expected = format!("b{} #{n}", &session_id[1..]);
            assert_eq!(std::str::from_utf8(&payload).unwrap(), expected);
            *n += 1;
        }
        let mut delivered = 0;
        while delivered < sessions * per_session {
            match b_events.next().await.unwrap().0 {
                EngineEvent::Delivered { message, .. } => {
                    assert!(numbers.binary_search(&message).is_ok());
                    delivered += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        let stats = a_ctl.stats().await.unwrap();
        assert_eq!(stats.shards.iter().map(|s| s.messages_received).sum::<u64>(), 200);
        a_ctl.close_session("a0", None).await.unwrap();
    });
}
