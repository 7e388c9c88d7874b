//! msrp-engine's multi-node shape behind a real SIP balancer: Kamailio's
//! `dispatcher` (the media resource broker, `deploy/kamailio/`) on
//! 127.0.0.1 spreads a sipp load over node A (msrpd + msrp-signal on
//! 127.0.0.2) and node B (127.0.0.3). Node A is killed (SIGKILL) under
//! load, then started again:
//!
//! - both nodes take calls, and each SDP answer names the node's own
//!   msrpd, where an MSRP SEND gets its 200 (MSRP never crosses the broker);
//! - the calls in progress on A fail, each counted by sipp with its reason
//!   (their BYE answered 408 by the broker), and no other call fails;
//! - once the broker has taken A out, no new INVITE goes to A, and those
//!   sent before were failed over to B and answered;
//! - the restarted A is probed back in and takes calls again.
//!
//! And with no node up at all, every caller gets the broker's 503 with
//! Retry-After: after each node's INVITE timed out while the broker still
//! believed in them, at once when its probes have taken them all out.
//!
//! `cargo test -p msrp-signaling --features kamailio --test kamailio`;
//! without kamailio or sipp on PATH it fails and says what to install.
//! Every wait is for a condition with a generous deadline, never a sleep.

#[path = "kamailio/cluster.rs"]
mod cluster;
mod support;
use support::{msrp_peer, processes};

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cluster::{free_udp_port, require_kamailio, Broker, Load, Node, Stats};
use msrp_peer::{authority, Peer};
use processes::{free_port, require_sipp, test_dir, Sipp};

/// The broker's probe and transaction timers in this test (seconds, ms).
const PROBE_INTERVAL_S: u64 = 1;
const FR_TIMER_MS: u64 = 2000;
/// The broker's `-A` defines in these tests: probes every second, a node
/// out after two unanswered probes and back after one answered, an INVITE
/// branch given up after FR_TIMER.
fn broker_settings() -> [(&'static str, String); 6] {
    [
        ("PROBE_INTERVAL", PROBE_INTERVAL_S.to_string()),
        ("PROBE_FAILS", "2".into()),
        ("PROBE_OKS", "1".into()),
        ("FR_TIMER", FR_TIMER_MS.to_string()),
        ("FR_INV_TIMER", "5000".into()),
        ("CHILDREN", "2".into()),
    ]
}

/// How long any one condition may take to come true on a slow machine.
const WAIT_MAX: Duration = Duration::from_secs(90);

/// What the scenario's callfile says of each call so far.
#[derive(Default)]
struct Calls {
    /// call number -> the host of the answered MSRP path.
    answered: BTreeMap<u64, IpAddr>,
    /// call number -> (offered, answered) MSRP paths.
    answered_path: BTreeMap<u64, (String, String)>,
    ended: BTreeSet<u64>,
}

fn read_calls(path: &std::path::Path) -> Calls {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut calls = Calls::default();
    for line in text.lines() {
        let word = |key: &str| {
            line.split(' ')
                .find_map(|w| w.strip_prefix(key))
                .unwrap_or_else(|| panic!("no {key} in the call line {line:?}"))
        };
        let call: u64 = word("call=").parse().unwrap();
        if line.starts_with("answered ") {
            let path = word("answered=");
            calls.answered.insert(call, authority(path).ip());
            calls
                .answered_path
                .insert(call, (word("offered=").to_string(), path.to_string()));
        } else if line.starts_with("ended ") {
            calls.ended.insert(call);
        } else {
            panic!("an unknown call line {line:?}");
        }
    }
    calls
}

/// One `dispatch` line of the broker's log: which node an INVITE went to.
struct Dispatch {
    call: u64,
    node: SocketAddr,
    at_s: f64,
    first: bool,
}

fn dispatches(log: &str) -> Vec<Dispatch> {
    log.lines()
        .filter_map(|line| line.split_once("msrp-broker: dispatch ").map(|(_, rest)| rest))
        .map(|rest| {
            let word = |key: &str| {
                rest.split(' ')
                    .find_map(|w| w.strip_prefix(key))
                    .unwrap_or_else(|| panic!("no {key} in the broker's line {rest:?}"))
            };
            Dispatch {
                // sipp's Call-ID is CALLNUMBER-PID@HOST.
                call: word("ci=").split('-').next().unwrap().parse().unwrap(),
                node: word("du=sip:").parse().unwrap(),
                at_s: word("at=").parse().unwrap(),
                first: word("attempt=") == "first",
            }
        })
        .collect()
}

/// The time of the broker's first line saying `node` was taken out: a
/// timed-out INVITE (`ds_mark_dst`) or failed probes (`dst-down`).
fn taken_out_at(log: &str, node: SocketAddr) -> Option<f64> {
    let named = format!("=sip:{node} ");
    log.lines()
        .filter(|l| {
            (l.contains("msrp-broker: node down") || l.contains("msrp-broker: node timed out"))
                && l.contains(&named)
        })
        .find_map(|l| l.split("at=").nth(1)?.trim().parse().ok())
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn wait_for<T>(what: &str, context: impl Fn() -> String, mut done: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT_MAX;
    loop {
        if let Some(value) = done() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {WAIT_MAX:?}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn count_on(calls: &Calls, ip: IpAddr, after: u64) -> usize {
    calls
        .answered
        .iter()
        .filter(|(&n, &host)| n > after && host == ip)
        .count()
}

#[test]
fn kamailio_spreads_calls_fails_over_from_a_killed_node_and_takes_it_back() {
    require_sipp();
    require_kamailio();
    let started = Instant::now();
    let dir = test_dir("kamailio");
    let mut a = Node::start("node-a", IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), &dir);
    let b = Node::start("node-b", IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)), &dir);
    for node in [&a, &b] {
        assert!(
            node.advertise.starts_with(&format!("{}:", node.ip)),
            "{}'s msrpd advertises {}, not its own address",
            node.name,
            node.advertise
        );
    }
    let list = Broker::write_list(&dir, &[a.sip, b.sip]);
    let broker_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), free_port());
    let broker = Broker::start(&dir, broker_addr, &list, &broker_settings());
    let callfile = dir.join("calls.txt");
    let args: Vec<String> = ["-key", "msrpport", "9", "-key", "callfile"]
        .iter()
        .map(|s| s.to_string())
        .chain([callfile.display().to_string()])
        .chain(
            // 4 calls a second held 3 s; a call waiting longer than 30 s for
            // an answer fails (counted as a receive timeout).
            [
                "-r",
                "4",
                "-d",
                "3000",
                "-l",
                "60",
                "-m",
                "100000",
                "-recv_timeout",
                "30000",
            ]
            .map(String::from),
        )
        .collect();
    let mut load = Load::start(&dir, broker_addr, &args);
    let context = |load: &Load, nodes: &[&Node]| {
        let mut out = load.logs();
        for node in nodes {
            out.push_str(&node.logs());
        }
        out.push_str(&format!("\n--- kamailio\n{}", cluster::tail(&broker.log, 40)));
        out
    };

    // 1. Both nodes take calls; MSRP goes to the answering node directly.
    let mut peers = Vec::new();
    let mut sent_to = BTreeSet::new();
    wait_for(
        "both nodes answering calls",
        || context(&load, &[&a, &b]),
        || {
            let calls = read_calls(&callfile);
            for (&call, (offered, path)) in &calls.answered_path {
                let host = calls.answered[&call];
                assert!(
                    host == a.ip || host == b.ip,
                    "call {call} was answered with {path}: not a node's own msrpd"
                );
                // One SEND to each node, to a call still held open by sipp.
                if sent_to.insert(host) {
                    let mut peer = Peer::connect(authority(path));
                    let tid = format!("tid{call:0>5}");
                    peer.send(
                        &tid,
                        path,
                        offered,
                        &format!("msg{call:0>5}"),
                        b"through the broker",
                    );
                    let response = peer.read();
                    assert_eq!(response.status, Some(200), "SEND on {path}: {response:?}");
                    peers.push(peer);
                }
            }
            (count_on(&calls, a.ip, 0) >= 5 && count_on(&calls, b.ip, 0) >= 5).then_some(())
        },
    );
    load.assert_running();

    // 2. kill -9 node A mid-run.
    let before = read_calls(&callfile);
    let killed_at = now_s();
    a.kill();
    let doomed: BTreeSet<u64> = before
        .answered
        .iter()
        .filter(|(n, &host)| host == a.ip && !before.ended.contains(n))
        .map(|(&n, _)| n)
        .collect();
    let last_before_kill = before.answered.keys().max().copied().unwrap_or(0);
    eprintln!(
        "kill: {} calls answered by A, {} by B; {} in progress on A",
        count_on(&before, a.ip, 0),
        count_on(&before, b.ip, 0),
        doomed.len()
    );

    // The broker takes A out (a timed-out INVITE or failed probes), and
    // calls keep being answered, by B only.
    let out_at = wait_for(
        "the broker taking node A out",
        || context(&load, &[&b]),
        || taken_out_at(&broker.log_text(), a.sip),
    );
    wait_for(
        "15 calls answered after A was taken out",
        || context(&load, &[&b]),
        || {
            let calls = read_calls(&callfile);
            (count_on(&calls, b.ip, last_before_kill) >= 15).then_some(())
        },
    );
    load.assert_running();
    let after = read_calls(&callfile);
    assert_eq!(
        count_on(&after, a.ip, last_before_kill),
        0,
        "a call answered by the killed node"
    );
    let routed = dispatches(&broker.log_text());
    let late_to_a: Vec<u64> = routed
        .iter()
        .filter(|d| d.node == a.sip && d.first && d.at_s > out_at)
        .map(|d| d.call)
        .collect();
    assert!(
        late_to_a.is_empty(),
        "calls {late_to_a:?} sent to node A after the broker took it out at {out_at}"
    );
    // INVITEs that reached the dead A before that went on to B.
    let to_dead_a: Vec<u64> = routed
        .iter()
        .filter(|d| d.node == a.sip && d.first && d.at_s > killed_at)
        .map(|d| d.call)
        .collect();
    for call in &to_dead_a {
        assert!(
            routed
                .iter()
                .any(|d| d.call == *call && !d.first && d.node == b.sip),
            "call {call} went to the dead node A and was not failed over to B"
        );
    }
    eprintln!(
        "failover: A taken out {:.2} s after the kill; {} INVITEs went to the dead A first and were failed over",
        out_at - killed_at,
        to_dead_a.len()
    );

    // 3. A comes back on the same address; probes take it back in.
    let last_before_restart = read_calls(&callfile).answered.keys().max().copied().unwrap_or(0);
    a.restart();
    wait_for(
        "node A taking calls again",
        || context(&load, &[&a, &b]),
        || {
            let calls = read_calls(&callfile);
            (count_on(&calls, a.ip, last_before_restart) >= 3).then_some(())
        },
    );
    load.assert_running();

    // 4. Every call is accounted for.
    load.stop(WAIT_MAX);
    drop(peers);
    let calls = read_calls(&callfile);
    let stats = Stats::read(&load.stats).expect("sipp's statistics file");
    let (created, succeeded, failed) = (
        stats.total("TotalCallCreated"),
        stats.total("SuccessfulCall(C)"),
        stats.total("FailedCall(C)"),
    );
    let reasons = stats.failure_reasons();
    let counted: u64 = reasons.iter().map(|(_, n)| n).sum();
    let shown = context(&load, &[&a, &b]);
    assert_eq!(
        created,
        succeeded + failed,
        "calls neither succeeded nor failed\n{shown}"
    );
    assert_eq!(
        counted, failed,
        "failed calls without a reason: {reasons:?}\n{shown}"
    );
    assert_eq!(
        succeeded,
        calls.ended.len() as u64,
        "sipp's successes against our lines"
    );
    // The failed calls are the ones in progress on A when it died (their
    // BYE answered 408 by the broker), and only those.
    let unfinished: BTreeSet<u64> = calls
        .answered
        .keys()
        .filter(|n| !calls.ended.contains(n))
        .copied()
        .collect();
    assert!(
        unfinished.is_subset(&doomed),
        "calls {:?} did not end but were not in progress on A at the kill\n{shown}",
        unfinished.difference(&doomed).collect::<Vec<_>>()
    );
    assert_eq!(
        failed,
        doomed.len() as u64,
        "failures {reasons:?} against the calls on A at the kill {doomed:?}\n{shown}"
    );
    assert_eq!(
        created,
        calls.answered.len() as u64,
        "a call was never answered\n{shown}"
    );
    eprintln!(
        "calls: {created} created, {succeeded} succeeded, {failed} failed ({:?}); \
         by node: A {} B {}; test took {:.1?}",
        reasons.iter().filter(|(_, n)| *n > 0).collect::<Vec<_>>(),
        count_on(&calls, a.ip, 0),
        count_on(&calls, b.ip, 0),
        started.elapsed()
    );
}

/// The dispatcher list names two addresses where nothing answers SIP: the
/// first caller gets 503 (after its INVITE timed out on each node, or at
/// once if the probes were quicker); once both nodes are out, every call
/// gets 503 at once from the dispatch route. Never silence.
#[test]
fn kamailio_answers_503_with_retry_after_when_no_node_is_up() {
    require_sipp();
    require_kamailio();
    let dir = test_dir("kamailio-no-node");
    let silent: Vec<SocketAddr> = [2, 3]
        .map(|last| {
            let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, last));
            SocketAddr::new(ip, free_udp_port(ip))
        })
        .to_vec();
    let list = Broker::write_list(&dir, &silent);
    let broker_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), free_port());
    let broker = Broker::start(&dir, broker_addr, &list, &broker_settings());
    let callfile = dir.join("calls.txt");
    let run = |calls: u32| {
        let args: Vec<String> = ["-key", "callfile"]
            .iter()
            .map(|s| s.to_string())
            .chain([callfile.display().to_string(), broker_addr.to_string()])
            .collect();
        let mut sipp = Sipp::start(&dir, "uac_no_node.xml", calls, &args);
        sipp.wait_success()
    };
    let first = run(1);
    let context = || cluster::tail(&broker.log, 40);
    // Whether the first INVITE timed out on the nodes or the probes had
    // already taken them out depends on timing; either way both end out,
    // and from then on the dispatch route itself refuses.
    wait_for("both nodes down", context, || {
        let log = broker.log_text();
        silent
            .iter()
            .all(|node| taken_out_at(&log, *node).is_some())
            .then_some(())
    });
    let later = run(3);
    let refused_at_once = broker.log_text().matches("msrp-broker: no node up for ").count();
    assert!(refused_at_once >= 3, "{}", context());
    let lines = std::fs::read_to_string(&callfile).unwrap();
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    for line in &lines {
        assert!(line.ends_with("status=503 retry_after=5"), "{line}");
    }
    eprintln!("no node up: the first 503 after {first:?}, three more in {later:?}");
}
