//! Sessions set up by 3PCC REST calls: for each, the load's SDP offer
//! (`a=setup:active`: the load connects, as in `--mode sip`) goes in a
//! `POST /v1/sessions {"mode":"3pcc","remote_sdp":..}`; the 201's
//! `local_sdp` is msrp-signal's answer, whose `a=path` is the engine
//! session the load threads bind. Several POSTs are in flight, one per
//! keep-alive connection; the sessions created and not yet bound stay
//! within the load's pending bound, as the SIP caller keeps them.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use msrp_engine::MsrpUri;
use msrp_signaling::sdp::{self, LocalEndpoint, Offer, OfferOptions, Policy, Setup};

use super::api;
use super::http::{HttpConn, HttpError, Response};
use crate::load::SessionPlan;
use crate::sip::LoadSessions;

/// The nominal MSRP port of the load's URIs: the load never listens (it
/// connects), as in inject and sip modes.
const LOAD_MSRP_PORT: u16 = 2855;
/// How soon a creator looks again while the load threads catch up on
/// binding.
const PENDING_WAKE: Duration = Duration::from_millis(1);
/// How often the setup's progress is shown.
const TICK: Duration = Duration::from_millis(100);

/// What the setup phase found.
pub struct SetupOutcome {
    /// POSTs sent.
    pub attempted: u64,
    /// Sessions created and handed to the load threads.
    pub created: u64,
    /// Sessions not set up, by HTTP status, `io`, `http` (a response we
    /// could not read), `answer` (a 201 the load cannot use) or
    /// `unattempted` (the phase timed out first).
    pub failed: BTreeMap<String, u64>,
    pub first_failure: Option<String>,
    /// POST sent to 201 read, microseconds.
    pub create_us: Histogram<u64>,
    /// First POST to the last response.
    pub took: Duration,
    /// REST ids of the sessions handed to the load, which the engine's
    /// sends go to.
    pub bound: Vec<String>,
    /// REST ids of every session msrp-signal created (bound or not), to
    /// delete at the end.
    pub created_ids: Vec<String>,
}

struct State {
    load: LoadSessions,
    next_call: usize,
    handed_out: usize,
    deadline: Instant,
    first_post: Option<Instant>,
    last_response: Option<Instant>,
    outcome: SetupOutcome,
}

/// Creates every session of `load` over `conns` (one POST in flight on
/// each), calling `tick` now and then; gives the connections back.
pub async fn create_sessions(
    conns: Vec<HttpConn>,
    load: LoadSessions,
    timeout: Duration,
    tick: &mut dyn FnMut(),
) -> (Vec<HttpConn>, SetupOutcome) {
    let calls = load.calls.len();
    let state = Rc::new(RefCell::new(State {
        load,
        next_call: 0,
        handed_out: 0,
        deadline: Instant::now() + timeout,
        first_post: None,
        last_response: None,
        outcome: SetupOutcome {
            attempted: 0,
            created: 0,
            failed: BTreeMap::new(),
            first_failure: None,
            create_us: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
            took: Duration::ZERO,
            bound: Vec::with_capacity(calls),
            created_ids: Vec::with_capacity(calls),
        },
    }));
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|conn| tokio::task::spawn_local(creator(state.clone(), conn)))
        .collect();
    let mut conns = Vec::with_capacity(tasks.len());
    for mut task in tasks {
        loop {
            tokio::select! {
                joined = &mut task => {
                    if let Ok(conn) = joined {
                        conns.push(conn);
                    }
                    break;
                }
                _ = tokio::time::sleep(TICK) => tick(),
            }
        }
    }
    let mut state = match Rc::try_unwrap(state) {
        Ok(state) => state.into_inner(),
        Err(_) => unreachable!("every creator task has ended"),
    };
    let unattempted = calls - state.next_call;
    if unattempted > 0 {
        *state.outcome.failed.entry("unattempted".into()).or_default() += unattempted as u64;
        state
            .outcome
            .first_failure
            .get_or_insert(format!("{unattempted} sessions not attempted within {timeout:?}"));
    }
    if let (Some(first), Some(last)) = (state.first_post, state.last_response) {
        state.outcome.took = last.saturating_duration_since(first);
    }
    (conns, state.outcome)
}

/// One connection's POSTs, one at a time, until every session is tried.
async fn creator(state: Rc<RefCell<State>>, mut conn: HttpConn) -> HttpConn {
    loop {
        let next = state.borrow_mut().next();
        let (ci, source, session_id) = match next {
            Next::Done => break,
            Next::Wait => {
                tokio::time::sleep(PENDING_WAKE).await;
                continue;
            }
            Next::Call(ci, source, session_id) => (ci, source, session_id),
        };
        let offer = offer(source, &session_id);
        let json = api::create_3pcc(&String::from_utf8_lossy(&offer.sdp));
        let sent = Instant::now();
        state.borrow_mut().first_post.get_or_insert(sent);
        let result = conn.call("POST", api::SESSIONS, &json).await;
        let now = Instant::now();
        state.borrow_mut().answered(ci, &offer, sent, now, result);
    }
    conn
}

/// What a creator does next.
enum Next {
    /// Every session is tried, or the phase timed out.
    Done,
    /// The load threads have too many sessions still to bind.
    Wait,
    /// Create this one: its connection, source address and session-id.
    Call(usize, IpAddr, String),
}

impl State {
    fn next(&mut self) -> Next {
        if self.next_call >= self.load.calls.len() || Instant::now() > self.deadline {
            return Next::Done;
        }
        let established = self.load.shared.established.load(Ordering::Relaxed);
        if self.handed_out.saturating_sub(established) > self.load.pending_max {
            return Next::Wait;
        }
        let (ci, si) = self.load.calls[self.next_call];
        self.next_call += 1;
        self.outcome.attempted += 1;
        let source = self.load.sources[ci % self.load.sources.len()];
        Next::Call(ci, source, format!("lg{:x}c{ci}s{si}", self.load.run))
    }

    fn fail(&mut self, cause: &str, why: String) {
        *self.outcome.failed.entry(cause.to_string()).or_default() += 1;
        self.outcome.first_failure.get_or_insert(why);
    }

    fn answered(
        &mut self,
        ci: usize,
        offer: &Offer,
        sent: Instant,
        now: Instant,
        result: Result<Response, HttpError>,
    ) {
        self.last_response = Some(now);
        let response = match result {
            Ok(response) => response,
            Err(error) => return self.fail(error.cause(), format!("POST {}: {error}", api::SESSIONS)),
        };
        if response.status != 201 {
            return self.fail(
                &response.status.to_string(),
                format!(
                    "POST {}: {} {}",
                    api::SESSIONS,
                    response.status,
                    response.detail()
                ),
            );
        }
        let created: api::Created = match serde_json::from_slice(&response.body) {
            Ok(created) => created,
            Err(e) => return self.fail("http", format!("POST {}: the 201's JSON: {e}", api::SESSIONS)),
        };
        self.outcome.created_ids.push(created.id.clone());
        let micros = now.saturating_duration_since(sent).as_micros() as u64;
        self.outcome.create_us.saturating_record(micros.max(1));
        match session(offer, &created, sent) {
            Ok(plan) => {
                let threads = self.load.waves.len();
                let _ = self.load.waves[ci % threads].send(vec![(ci / threads, plan)]);
                self.handed_out += 1;
                self.outcome.created += 1;
                self.outcome.bound.push(created.id);
            }
            Err(why) => self.fail("answer", format!("session {}: {why}", created.id)),
        }
    }
}

/// The load's session from msrp-signal's answer: the engine's URI is the
/// answer's `a=path` (RFC 4975 8.2, no relays here).
fn session(offer: &Offer, created: &api::Created, sent: Instant) -> Result<SessionPlan, String> {
    if created.state != "connected" {
        return Err(format!("the session is {}, not connected", created.state));
    }
    let answer = created.local_sdp.as_deref().ok_or("the 201 has no local_sdp")?;
    let media = sdp::complete(offer, answer.as_bytes(), "application/sdp").map_err(|r| r.to_string())?;
    let media = media.first().ok_or("the answer accepted no media")?;
    // RFC 6135 4.2: we offered active, so the answerer must be passive.
    if !media.we_connect {
        return Err("the answer is not a=setup:passive: the load cannot connect".into());
    }
    let remote = media.remote.session_uri().ok_or("the answer has no a=path")?;
    let remote_uri = remote
        .parse::<MsrpUri>()
        .map_err(|e| format!("the answer's a=path {remote:?}: {e}"))?;
    let local = offer.media[0].session_uri().unwrap_or_default();
    let local_uri = local
        .parse::<MsrpUri>()
        .map_err(|e| format!("our a=path {local:?}: {e}"))?;
    Ok(SessionPlan {
        local_uri,
        remote_uri,
        created: sent,
    })
}

/// Our offer (RFC 4975 8, RFC 6135 4.2): one `m=message` line whose
/// `a=path` is the load's session URI, `a=setup:active` because the load
/// connects to the answerer.
pub fn offer(source: IpAddr, session_id: &str) -> Offer {
    let local = LocalEndpoint {
        host: source.to_string(),
        port: LOAD_MSRP_PORT,
    };
    let options = OfferOptions {
        accept_types: Some(vec!["*".into()]),
        setup: Some(Setup::Active),
        ..OfferOptions::default()
    };
    let mut ids = || session_id.to_string();
    sdp::offer(&Policy::default(), &local, &options, &mut ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offer_is_active_and_names_the_load_session() {
        let offer = offer(IpAddr::from([127, 0, 0, 3]), "lg1c2s3");
        let text = String::from_utf8_lossy(&offer.sdp);
        assert!(text.contains("a=setup:active"), "{text}");
        assert!(
            text.contains("a=path:msrp://127.0.0.3:2855/lg1c2s3;tcp"),
            "{text}"
        );
        assert_eq!(offer.local_session_ids, vec!["lg1c2s3".to_string()]);
    }
}
