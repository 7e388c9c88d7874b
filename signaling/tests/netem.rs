//! Network faults between two real stacks: each of A and B is an `msrpd`
//! and the `msrp-signal --http` that feeds it, in a network namespace of
//! its own; the namespaces are joined by a veth pair shaped with tc netem
//! (`netem/link.rs`). A calls B over SIP through the two msrp-signals
//! (REST on each, reached from inside its namespace), then texts and a
//! 100 MiB file cross the faulted link. Whatever the fault, every message
//! ends in exactly one `delivered` or `failed` (with its reason), and
//! nothing is reported delivered that B did not receive.
//!
//! Feature `faults`: root and iproute2 are required, and the tests fail
//! saying so without them. Run:
//! `cargo test -p msrp-signaling --features faults --test netem`.

mod support;
use support::{common, sse, stack};
#[path = "netem/link.rs"]
mod link;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::id_of;
use link::{rss_kib, Link, Side};
use sse::Sse;
use stack::Pair;

/// Both engines: a session window for the bandwidth-delay product of a
/// 200 ms round trip (the default 1 MiB would make the file crawl), and a
/// transaction timeout well inside the partition, so that what the
/// partition holds up fails within the test.
const ENGINE_ARGS: &[&str] = &["--session-inflight-max", "8MiB", "--transaction-timeout", "10s"];

/// A's and B's stacks on a link; A has called B and both are connected.
struct Call {
    // Dropped first: the processes end before their namespaces go.
    a: Pair,
    b: Pair,
    a_events: Sse,
    b_events: Sse,
    a_id: String,
    link: Link,
}

fn stack(name: &str, side: &Side) -> Pair {
    let pair = Pair::start_in(name, Some(&side.netns), &side.addr, ENGINE_ARGS, &[]);
    let pid = pair.engine().pid();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(
        comm.trim(),
        "msrpd",
        "ip netns exec runs msrpd as itself (pid {pid})"
    );
    pair
}

impl Call {
    fn start(name: &str) -> Call {
        let link = Link::new();
        let a = stack(&format!("{name}-a"), &link.a);
        let b = stack(&format!("{name}-b"), &link.b);
        let mut a_events = Sse::open(&a.api, "/v1/events", None);
        let mut b_events = Sse::open(&b.api, "/v1/events", None);
        let created = a
            .api
            .post("/v1/sessions", &json!({"to": b.sip_uri("b"), "tag": name}))
            .expect(201)
            .json();
        let a_id = id_of(&created);
        let connected = Duration::from_secs(20);
        a_events.wait("A connected", connected, |e| {
            e.event == "connected" && e.session() == a_id
        });
        b_events.wait("B connected", connected, |e| e.event == "connected");
        Call {
            a,
            b,
            a_events,
            b_events,
            a_id,
            link,
        }
    }

    fn text(&self, text: &str) -> String {
        let sent = self
            .a
            .api
            .post(
                &format!("/v1/sessions/{}/messages", self.a_id),
                &json!({"text": text, "report": "both"}),
            )
            .expect(202)
            .json();
        id_of(&sent)
    }

    fn file(&self, path: &Path) -> String {
        let sent = self
            .a
            .api
            .post(
                &format!("/v1/sessions/{}/files", self.a_id),
                &json!({"path": path.to_str().unwrap(), "content_type": "application/octet-stream"}),
            )
            .expect(202)
            .json();
        id_of(&sent)
    }

    fn logs(&self) -> String {
        format!("=== A\n{}\n=== B\n{}", self.a.logs(), self.b.logs())
    }
}

/// What each side said: A's outcomes by message id, B's messages.
#[derive(Default)]
struct Ledger {
    delivered: BTreeSet<String>,
    /// Message id -> the `failed` event.
    failed: BTreeMap<String, Value>,
    /// Texts B received (with repeats, to see duplicates).
    texts: Vec<String>,
    /// Spool paths of the files B received.
    files: Vec<String>,
    a_hangups: Vec<Value>,
}

impl Ledger {
    /// Reads both streams until every one of `sent` has an outcome, or
    /// `timeout`; then a short quiet time for late repeats.
    fn settle(&mut self, call: &mut Call, sent: &[String], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let done = sent
                .iter()
                .all(|id| self.delivered.contains(id) || self.failed.contains_key(id));
            let now = Instant::now();
            if done || now >= deadline {
                break;
            }
            self.read(call, Duration::from_millis(200));
        }
        self.read(call, Duration::from_millis(500));
    }

    /// Reads both streams for `wait`.
    fn read(&mut self, call: &mut Call, wait: Duration) {
        let until = Instant::now() + wait;
        while let Some(event) = call.a_events.next(
            until
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        ) {
            let data = event.json();
            let message = data["message"].as_str().unwrap_or_default().to_string();
            match event.event.as_str() {
                "delivered" => assert!(
                    self.delivered.insert(message.clone()) && !self.failed.contains_key(&message),
                    "a second outcome for {message}: {data}"
                ),
                "failed" => assert!(
                    self.failed.insert(message.clone(), data.clone()).is_none()
                        && !self.delivered.contains(&message),
                    "a second outcome for {message}: {data}"
                ),
                "hangup" => self.a_hangups.push(data),
                _ => {}
            }
            if Instant::now() >= until {
                break;
            }
        }
        while let Some(event) = call.b_events.next(Duration::from_millis(1)) {
            if event.event != "message" {
                continue;
            }
            let data = event.json();
            if let Some(path) = data["path"].as_str() {
                self.files.push(path.to_string());
            } else if let Some(text) = data["text"].as_str() {
                self.texts.push(text.to_string());
            }
        }
    }

    /// Nothing reported delivered that B did not get; each text at most
    /// once at B; every failure has a reason.
    #[track_caller]
    fn check(&self, texts: &BTreeMap<String, String>, logs: &str) {
        let received: BTreeSet<&String> = self.texts.iter().collect();
        assert_eq!(
            received.len(),
            self.texts.len(),
            "B received a text twice: {:?}\n{logs}",
            self.texts
        );
        for (id, text) in texts {
            if self.delivered.contains(id) {
                assert!(
                    received.contains(text),
                    "{id} ({text}) reported delivered, B never received it\n{logs}"
                );
            }
        }
        for (id, failed) in &self.failed {
            assert!(
                failed["reason"].as_str().is_some_and(|r| !r.is_empty()),
                "{id} failed without a reason: {failed}"
            );
        }
    }
}

/// A file of `len` octets, not all alike; its sha-1 (as the REST API and
/// RFC 5547 hash it).
fn pattern_file(path: &Path, len: usize) -> String {
    use std::io::Write as _;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut hasher = sha1_smol::Sha1::new();
    let mut piece = vec![0u8; 1 << 20];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..len / piece.len() {
        for octet in piece.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *octet = state as u8;
        }
        hasher.update(&piece);
        file.write_all(&piece).unwrap();
    }
    file.flush().unwrap();
    hasher.digest().to_string()
}

fn sha1_of(path: &str) -> String {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut hasher = sha1_smol::Sha1::new();
    let mut piece = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut piece).unwrap();
        if n == 0 {
            return hasher.digest().to_string();
        }
        hasher.update(&piece[..n]);
    }
}

/// 1 % loss and reordering each way (reordering needs a delay for netem
/// to reorder against): 300 texts, each delivered exactly once and
/// reported so; TCP hides the loss from MSRP, and the test shows it does.
#[test]
fn texts_under_loss_and_reordering_arrive_once_each_and_are_reported() {
    let started = Instant::now();
    let mut call = Call::start("netem-loss");
    call.link.netem("delay 10ms 5ms loss 1% reorder 25% 50%");
    let mut texts = BTreeMap::new();
    for n in 0..300 {
        let text = format!("text {n} under loss");
        texts.insert(call.text(&text), text);
    }
    let sent: Vec<String> = texts.keys().cloned().collect();
    let mut ledger = Ledger::default();
    ledger.settle(&mut call, &sent, Duration::from_secs(60));
    let logs = call.logs();
    ledger.check(&texts, &logs);
    assert_eq!(
        ledger.delivered.len(),
        texts.len(),
        "every text delivered over a lossy link (TCP retransmits): failed {:?}\n{logs}",
        ledger.failed
    );
    assert_eq!(ledger.texts.len(), texts.len(), "B received every text once");
    eprintln!(
        "loss and reordering: {} texts in {:?}",
        texts.len(),
        started.elapsed()
    );
}

/// 100 ms each way (200 ms round trip): a 100 MiB file crosses whole, is
/// reported delivered once, and B's spool file is the file sent.
#[test]
fn a_100_mib_file_crosses_a_200_ms_round_trip_whole() {
    let started = Instant::now();
    let mut call = Call::start("netem-delay");
    call.link.netem("delay 100ms");
    let big = call.a.dir.join("big.bin");
    let big_sha1 = pattern_file(&big, 100 << 20);
    let file_id = call.file(&big);
    let mut ledger = Ledger::default();
    ledger.settle(&mut call, std::slice::from_ref(&file_id), Duration::from_secs(90));
    let logs = call.logs();
    assert!(
        ledger.delivered.contains(&file_id),
        "the 100 MiB file under 200 ms RTT: {:?}\n{logs}",
        ledger.failed.get(&file_id)
    );
    assert_eq!(
        ledger.files.len(),
        1,
        "B received the file once: {:?}",
        ledger.files
    );
    assert_eq!(
        sha1_of(&ledger.files[0]),
        big_sha1,
        "B's spool file is the file sent"
    );
    eprintln!("delay: 100 MiB in {:?}", started.elapsed());
}

/// The partition's length.
const PARTITION: Duration = Duration::from_secs(30);

/// A 30 s partition (the veth down, so nothing crosses; an htb rate of
/// 40 Mbit/s keeps the 100 MiB file in flight when it starts), with texts
/// sent into it: both engines' memory stays bounded while partitioned,
/// every message ends in one outcome with a reason, nothing unreceived is
/// called delivered, and once the link is back a new call carries a text.
#[test]
fn a_30_s_partition_with_a_file_in_flight() {
    let started = Instant::now();
    let mut call = Call::start("netem-part");
    call.link.a.rate(40);
    let big = call.a.dir.join("big.bin");
    let big_sha1 = pattern_file(&big, 100 << 20);
    let sent_at = Instant::now();
    let file_id = call.file(&big);
    let mut ledger = Ledger::default();
    // Let the file get going (about 5 MiB/s), then cut the link.
    ledger.read(&mut call, Duration::from_secs(3));
    assert!(
        !ledger.delivered.contains(&file_id),
        "the file was done {:?} after it was sent, before the partition: the rate did not hold; {}",
        sent_at.elapsed(),
        call.link.a.stats()
    );
    call.link.a.set_up(false);
    let partitioned = Instant::now();
    let mut texts = BTreeMap::new();
    for n in 0..20 {
        let text = format!("text {n} into the partition");
        texts.insert(call.text(&text), text);
    }
    // Generous: neither engine may hold the file (or a large part of it).
    let bound_kib = 128 * 1024;
    let mut peaks = [(0u64, 0u64); 2];
    while partitioned.elapsed() < PARTITION {
        for (peak, pid) in peaks
            .iter_mut()
            .zip([call.a.engine().pid(), call.b.engine().pid()])
        {
            let (rss, hwm) = rss_kib(pid);
            *peak = (peak.0.max(rss), hwm);
        }
        ledger.read(&mut call, Duration::from_millis(500));
    }
    call.link.a.set_up(true);
    for (who, (rss, hwm)) in ["A's msrpd", "B's msrpd"].iter().zip(peaks) {
        eprintln!("partitioned {PARTITION:?}: {who} VmRSS at most {rss} KiB, VmHWM {hwm} KiB");
        assert!(
            rss < bound_kib,
            "{who} held {rss} KiB while partitioned with a 100 MiB file in flight (bound {bound_kib} KiB)"
        );
    }

    let mut sent: Vec<String> = texts.keys().cloned().collect();
    sent.push(file_id.clone());
    ledger.settle(&mut call, &sent, Duration::from_secs(60));
    let logs = call.logs();
    for id in &sent {
        assert!(
            ledger.delivered.contains(id) || ledger.failed.contains_key(id),
            "{id} has no outcome a minute after the partition\n{logs}"
        );
    }
    ledger.check(&texts, &logs);
    if ledger.delivered.contains(&file_id) {
        assert_eq!(
            ledger.files.len(),
            1,
            "the file reported delivered, B has {:?}",
            ledger.files
        );
        assert_eq!(sha1_of(&ledger.files[0]), big_sha1);
    }
    let failed: Vec<String> = ledger
        .failed
        .values()
        .map(|f| format!("{}/{}", f["status"], f["reason"]))
        .collect();
    eprintln!(
        "after the partition: {} delivered, failed {failed:?}, A's hangups {:?}",
        ledger.delivered.len(),
        ledger.a_hangups
    );

    // The link is back: a new call and a text.
    let created = call
        .a
        .api
        .post(
            "/v1/sessions",
            &json!({"to": call.b.sip_uri("b"), "tag": "after"}),
        )
        .expect(201)
        .json();
    let again = id_of(&created);
    call.a_events
        .wait("the new call connected", Duration::from_secs(20), |e| {
            e.event == "connected" && e.session() == again
        });
    let sent = call
        .a
        .api
        .post(
            &format!("/v1/sessions/{again}/messages"),
            &json!({"text": "after the partition", "report": "both"}),
        )
        .expect(202)
        .json();
    call.a_events.wait(
        "the text after the partition delivered",
        Duration::from_secs(20),
        |e| e.event == "delivered" && e.json()["message"] == sent["id"],
    );
    eprintln!("partition: {:?} in all", started.elapsed());
}
