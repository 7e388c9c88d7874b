//! What the REST tests share: waiting, SDP for a test MSRP peer, a
//! connected 3PCC session, hashes and metric lookups.

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use super::http::Http;
use super::msrp_peer::{authority, Peer};

pub const WAIT: Duration = Duration::from_secs(10);

pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn id_of(view: &Value) -> String {
    view["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {view}"))
        .to_string()
}

/// Polls `done` every 20 ms until it holds; panics naming `what` after `timeout`.
#[track_caller]
pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An SDP of a test peer for one `m=message` line (RFC 4975 8): its path,
/// `a=setup` (RFC 6135) and accept-types.
pub fn peer_sdp(path: &str, setup: &str) -> String {
    [
        "v=0",
        "o=peer 2890844526 1 IN IP4 127.0.0.1",
        "s=-",
        "c=IN IP4 127.0.0.1",
        "t=0 0",
        "m=message 9 TCP/MSRP *",
        &format!("a=path:{path}"),
        "a=accept-types:text/plain application/octet-stream",
        &format!("a=setup:{setup}"),
        "",
    ]
    .join("\r\n")
}

/// The value of `a=NAME:` in an SDP.
#[track_caller]
pub fn attribute(sdp: &str, name: &str) -> String {
    let prefix = format!("a={name}:");
    sdp.lines()
        .find_map(|line| line.trim_end().strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in {sdp:?}"))
        .to_string()
}

/// A fresh peer path: its session-id is unique in the process.
pub fn peer_path(label: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("msrp://127.0.0.1:9/{label}{n}x{};tcp", std::process::id())
}

/// A 3PCC session answering a test peer's actpass offer: `connected` at
/// once, the peer connects (we answered passive). Returns the view, our
/// path and the peer's.
pub fn connected_3pcc(api: &Http, tag: &str) -> (Value, String, String) {
    let theirs = peer_path(tag);
    let view = api
        .post(
            "/v1/sessions",
            &json!({"mode": "3pcc", "remote_sdp": peer_sdp(&theirs, "actpass"), "tag": tag}),
        )
        .expect(201)
        .json();
    assert_eq!(view["state"], "connected", "{view}");
    let ours = attribute(view["local_sdp"].as_str().unwrap(), "path");
    (view, ours, theirs)
}

/// The peer of a 3PCC session connects to our path and sends one SEND
/// (RFC 4975 7.1), which the engine must answer 200.
pub fn peer_sends(ours: &str, theirs: &str, message_id: &str, body: &[u8]) -> Peer {
    let mut peer = Peer::connect(authority(ours));
    peer.send(&format!("t{message_id}"), ours, theirs, message_id, body);
    let response = peer.read();
    assert_eq!(response.status, Some(200), "{response:?}");
    peer
}

pub fn sha1_hex(bytes: &[u8]) -> String {
    sha1_smol::Sha1::from(bytes).digest().to_string()
}

/// The value of one sample of `/metrics`: the line of `name` whose labels
/// include every one of `labels`.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, series_labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            if series_name != name {
                return None;
            }
            let have: Vec<(String, String)> = series_labels
                .split(',')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
                .collect();
            let all = labels
                .iter()
                .all(|(k, v)| have.iter().any(|(hk, hv)| hk == k && hv == v));
            all.then(|| value.parse().ok()).flatten()
        })
}
