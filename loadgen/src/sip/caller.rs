//! The load's SIP caller: msrp-signaling's sans-IO [`UserAgent`] as UAC on
//! one thread (a tokio current-thread loop over one UDP socket or TCP
//! connection), sending INVITEs with an MSRP offer, at most
//! `outstanding_max` unanswered at once. Each answered call's `a=path` is
//! the engine session the load binds; the sessions go to the load
//! threads a turn's batch at a time, as the injector's do.
//!
//! The thread lives through the run (a 2xx retransmitted over UDP still
//! needs its ACK, a BYE from msrp-signal its 200), then ends every call
//! with a BYE when told to and counts the answers.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use hdrhistogram::Histogram;
use msrp_engine::MsrpUri;
use msrp_signaling::sdp::{self, MsrpMedia, MsrpTransport, Offer, Setup};
use msrp_signaling::sip::{
    Body, CallId, EndpointConfig, InviteRequest, Limits, Message, Method, StreamFramer, Transport, UaConfig,
    UaEvent, Uri, UserAgent,
};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

use super::link::{read_buffer, Link, Received, CONN};
use crate::load::{SessionBatch, SessionPlan, Shared};

/// The nominal MSRP port of the load's URIs: the load never listens (it
/// connects, `a=setup:active`), as in inject mode.
const LOAD_MSRP_PORT: u16 = 2855;
/// How long the loop sleeps with nothing to do and no timer set.
const IDLE_WAKE: Duration = Duration::from_millis(50);
/// How soon it looks again while more INVITEs are due or the load
/// threads catch up on binding.
const SOON_WAKE: Duration = Duration::from_micros(500);
/// INVITEs sent per loop turn, at most: a whole window at once would
/// overflow msrp-signal's UDP receive buffer (the kernel's default, about
/// 200 KiB: some 90 INVITEs) and cost a 500 ms retransmission each.
const INVITES_PER_TURN_MAX: usize = 32;
/// How long the BYEs get to be answered (well under timer F's 32 s, so a
/// call gone by then was answered).
const BYE_WAIT: Duration = Duration::from_secs(10);

/// What the caller is asked to do.
pub struct CallerPlan {
    /// msrp-signal's SIP address and the transport to it.
    pub signal: SocketAddr,
    pub transport: Transport,
    /// INVITEs sent and not yet finally answered, at most.
    pub outstanding_max: usize,
    /// Where each call's session goes in the load.
    pub load: LoadSessions,
    /// The whole setup phase may take this long.
    pub setup_timeout: Duration,
}

/// The load's side of the calls' sessions: which connection and session
/// each call is, the load's addresses, and the load threads it hands the
/// bound sessions to.
pub struct LoadSessions {
    /// `(connection, session)` per call, in order.
    pub calls: Vec<(usize, usize)>,
    /// The loopback address each connection leaves from (our `a=path`
    /// host).
    pub sources: Vec<IpAddr>,
    /// In the load's URIs, so runs do not collide.
    pub run: u32,
    /// The load threads' session channels (connection `ci` goes to
    /// thread `ci % threads`).
    pub waves: Vec<UnboundedSender<SessionBatch>>,
    pub shared: Arc<Shared>,
    /// Sessions handed to the load threads and not yet bound, at most.
    pub pending_max: usize,
    /// Keep the engine's session-ids (for its own sends).
    pub engine_sends: bool,
}

/// The setup phase, as the caller saw it.
pub struct SetupOutcome {
    pub attempted: u64,
    pub answered: u64,
    /// Calls that failed, by final status (`"503"`, `"408"` for timer B),
    /// `"local"` (refused by our own user agent), `"answer"` (an answer
    /// the load cannot use) or `"unanswered"` (the phase timed out).
    pub failed: BTreeMap<String, u64>,
    pub first_failure: Option<String>,
    /// INVITE sent to 2xx received, microseconds.
    pub invite_200_us: Histogram<u64>,
    /// First INVITE to the last final response.
    pub took: Duration,
    pub engine_session_ids: Vec<String>,
}

/// The end of the calls.
#[derive(Default)]
pub struct HangupOutcome {
    pub byes_sent: u64,
    /// Final responses to our BYEs, by status.
    pub bye_statuses: BTreeMap<String, u64>,
    /// Calls msrp-signal ended with a BYE of its own.
    pub ended_by_peer: u64,
    /// Calls still live when the wait for the BYEs ended.
    pub calls_left: usize,
}

/// The caller thread.
pub struct Caller {
    /// Its kernel thread id, for its CPU time.
    pub tid: i32,
    setup: std::sync::mpsc::Receiver<Result<SetupOutcome, String>>,
    hangup: Option<oneshot::Sender<bool>>,
    thread: Option<JoinHandle<Result<HangupOutcome>>>,
}

impl Caller {
    /// Starts the thread; it begins calling at once.
    pub fn start(plan: CallerPlan) -> Result<Caller> {
        let (setup_tx, setup) = std::sync::mpsc::channel();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (hangup, hangup_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("sip-caller".into())
            .spawn(move || {
                // SAFETY: gettid has no preconditions.
                let _ = tid_tx.send(unsafe { libc::gettid() });
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("a tokio runtime for the SIP caller")?;
                runtime.block_on(run(plan, setup_tx, hangup_rx))
            })
            .context("starting the SIP caller")?;
        let tid = tid_rx.recv().unwrap_or(0);
        Ok(Caller {
            tid,
            setup,
            hangup: Some(hangup),
            thread: Some(thread),
        })
    }

    /// Waits for the setup phase to end, calling `tick` now and then.
    pub fn wait_setup(&mut self, mut tick: impl FnMut()) -> Result<SetupOutcome> {
        loop {
            match self.setup.recv_timeout(Duration::from_millis(100)) {
                Ok(Ok(outcome)) => return Ok(outcome),
                Ok(Err(why)) => bail!("the SIP caller: {why}"),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => tick(),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(self
                        .join()
                        .err()
                        .unwrap_or_else(|| anyhow!("the SIP caller ended early")))
                }
            }
        }
    }

    /// Ends every call (with a BYE when `bye`) and the thread.
    pub fn hang_up(mut self, bye: bool) -> Result<HangupOutcome> {
        if let Some(hangup) = self.hangup.take() {
            let _ = hangup.send(bye);
        }
        self.join()
    }

    fn join(&mut self) -> Result<HangupOutcome> {
        let Some(thread) = self.thread.take() else {
            bail!("the SIP caller was already joined");
        };
        thread.join().map_err(|_| anyhow!("the SIP caller panicked"))?
    }
}

impl Drop for Caller {
    fn drop(&mut self) {
        if let Some(hangup) = self.hangup.take() {
            let _ = hangup.send(false);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A call whose INVITE is out.
struct Pending {
    ci: usize,
    offer: Offer,
    sent: Instant,
}

#[derive(PartialEq, Eq)]
enum Phase {
    Setup,
    Hold,
    Hangup { until: Instant },
}

struct State {
    plan: CallerPlan,
    ua: UserAgent,
    to: Uri,
    pending: HashMap<CallId, Pending>,
    next_call: usize,
    handed_out: usize,
    /// This turn's sessions, per load thread.
    batches: Vec<SessionBatch>,
    setup: SetupOutcome,
    first_invite: Option<Instant>,
    last_final: Option<Instant>,
    hangup: HangupOutcome,
    /// Calls to end by BYE, paced as the INVITEs were.
    to_hang_up: Vec<CallId>,
    /// Reads the responses to our BYEs beside the user agent (which does
    /// not report them), in the hang-up phase only.
    bye_framer: StreamFramer,
    limits: Limits,
}

async fn run(
    plan: CallerPlan,
    setup_tx: std::sync::mpsc::Sender<Result<SetupOutcome, String>>,
    mut hangup_rx: oneshot::Receiver<bool>,
) -> Result<HangupOutcome> {
    let mut link = match Link::open(plan.transport, plan.signal).await {
        Ok(link) => link,
        Err(e) => {
            let why = format!("connecting to msrp-signal at {}: {e}", plan.signal);
            let _ = setup_tx.send(Err(why.clone()));
            bail!(why);
        }
    };
    let local = link.local_addr()?;
    let bounds = (plan.load.calls.len() * 2).max(100_000);
    let (udp_port, tcp_port) = match link.transport() {
        Transport::Udp => (Some(local.port()), None),
        Transport::Tcp | Transport::Tls => (None, Some(local.port())),
    };
    let ua = UserAgent::new(UaConfig {
        host: local.ip().to_string(),
        udp_port,
        tcp_port,
        user_agent: concat!("msrp-loadgen/", env!("CARGO_PKG_VERSION")).into(),
        calls_max: bounds,
        endpoint: EndpointConfig {
            client_transactions_max: bounds,
            server_transactions_max: bounds,
            ..EndpointConfig::default()
        },
        ..UaConfig::default()
    });
    let to = Uri::parse(&format!("sip:msrp@{}", plan.signal)).map_err(|e| anyhow!("our Request-URI: {e}"))?;
    let limits = Limits::default();
    let mut state = State {
        batches: (0..plan.load.waves.len()).map(|_| Vec::new()).collect(),
        setup: SetupOutcome {
            attempted: 0,
            answered: 0,
            failed: BTreeMap::new(),
            first_failure: None,
            invite_200_us: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
            took: Duration::ZERO,
            engine_session_ids: Vec::new(),
        },
        plan,
        ua,
        to,
        pending: HashMap::new(),
        next_call: 0,
        handed_out: 0,
        first_invite: None,
        last_final: None,
        hangup: HangupOutcome::default(),
        to_hang_up: Vec::new(),
        bye_framer: StreamFramer::new(limits),
        limits,
    };
    let setup_deadline = Instant::now() + state.plan.setup_timeout;
    let mut phase = Phase::Setup;
    let mut buf = read_buffer();
    let mut received = Vec::new();
    let mut setup_tx = Some(setup_tx);
    loop {
        let now = Instant::now();
        let mut soon = false;
        match phase {
            Phase::Setup => {
                soon = state.top_up(now);
                let done = state.next_call == state.plan.load.calls.len() && state.pending.is_empty();
                if done || now > setup_deadline {
                    let unanswered = state.pending.len() as u64;
                    if unanswered > 0 {
                        state.fail("unanswered", "the setup phase timed out".into(), unanswered);
                    }
                    state.pending.clear();
                    state.flush_batches();
                    state.setup.took = match (state.first_invite, state.last_final) {
                        (Some(first), Some(last)) => last.saturating_duration_since(first),
                        _ => Duration::ZERO,
                    };
                    let outcome = std::mem::replace(
                        &mut state.setup,
                        SetupOutcome {
                            attempted: 0,
                            answered: 0,
                            failed: BTreeMap::new(),
                            first_failure: None,
                            invite_200_us: Histogram::new(1).expect("valid"),
                            took: Duration::ZERO,
                            engine_session_ids: Vec::new(),
                        },
                    );
                    if let Some(tx) = setup_tx.take() {
                        let _ = tx.send(Ok(outcome));
                    }
                    phase = Phase::Hold;
                }
            }
            Phase::Hold => {}
            Phase::Hangup { until } => {
                if state.ua.stats().calls == 0 || now > until {
                    break;
                }
                soon = state.hang_up_some(now);
            }
        }
        while let Some(transmit) = state.ua.poll_transmit() {
            link.send(transmit).await?;
        }
        link.flush().await?;

        let mut wake = state
            .ua
            .poll_timeout()
            .unwrap_or(now + IDLE_WAKE)
            .min(now + IDLE_WAKE);
        if soon {
            wake = wake.min(now + SOON_WAKE);
        }
        let hold = phase == Phase::Hold;
        tokio::select! {
            readable = link.readable() => readable?,
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
            bye = &mut hangup_rx, if hold => {
                let bye = bye.unwrap_or(false);
                if !bye {
                    break;
                }
                state.to_hang_up = state.ua.calls().collect();
                phase = Phase::Hangup { until: Instant::now() + BYE_WAIT };
            }
        }
        let now = Instant::now();
        link.read_ready(&mut buf, &mut received)?;
        let hanging_up = matches!(phase, Phase::Hangup { .. });
        for input in received.drain(..) {
            match input {
                Received::Datagram(from, bytes) => {
                    if hanging_up {
                        state.count_bye_response(bytes.clone());
                    }
                    state.ua.handle_datagram(now, from, bytes);
                }
                Received::Stream(bytes) => {
                    if hanging_up {
                        state.bye_framer.push(&bytes);
                        while let Ok(Some(message)) = state.bye_framer.next_message() {
                            state.count_bye_response(message);
                        }
                    }
                    state.ua.handle_stream_bytes(now, CONN, state.plan.signal, &bytes);
                }
            }
        }
        if state.ua.poll_timeout().is_some_and(|at| at <= now) {
            state.ua.handle_timeout(now);
        }
        state.drain_events(now);
        state.flush_batches();
    }
    while let Some(transmit) = state.ua.poll_transmit() {
        link.send(transmit).await?;
    }
    link.flush().await?;
    state.hangup.calls_left = state.ua.stats().calls;
    Ok(state.hangup)
}

impl State {
    /// Sends INVITEs up to the outstanding bound, a turn's share; true
    /// when the loop should come back soon: more are due, or the load
    /// threads have too many sessions still to bind.
    fn top_up(&mut self, now: Instant) -> bool {
        let established = self.plan.load.shared.established.load(Ordering::Relaxed);
        if self.handed_out.saturating_sub(established) > self.plan.load.pending_max {
            return true;
        }
        for _ in 0..INVITES_PER_TURN_MAX {
            if self.pending.len() >= self.plan.outstanding_max || self.next_call >= self.plan.load.calls.len()
            {
                return false;
            }
            let (ci, si) = self.plan.load.calls[self.next_call];
            self.next_call += 1;
            self.invite(now, ci, si);
        }
        self.pending.len() < self.plan.outstanding_max && self.next_call < self.plan.load.calls.len()
    }

    /// Sends a turn's share of the BYEs, at most `outstanding_max`
    /// unanswered; true while some are still to send.
    fn hang_up_some(&mut self, now: Instant) -> bool {
        for _ in 0..INVITES_PER_TURN_MAX {
            let answered: u64 = self.hangup.bye_statuses.values().sum();
            if self.hangup.byes_sent - answered.min(self.hangup.byes_sent) >= self.plan.outstanding_max as u64
            {
                break;
            }
            let Some(call) = self.to_hang_up.pop() else { break };
            if self.ua.hangup(now, call, "the benchmark ended") {
                self.hangup.byes_sent += 1;
            }
        }
        !self.to_hang_up.is_empty()
    }

    fn invite(&mut self, now: Instant, ci: usize, si: usize) {
        let source = self.plan.load.sources[ci % self.plan.load.sources.len()];
        let session_id = format!("lg{:x}c{ci}s{si}", self.plan.load.run);
        let offer = offer(source, &session_id);
        let request = InviteRequest {
            to: self.to.clone(),
            from: None,
            flow: link_flow(&self.plan),
            offer: Some(Body::sdp(offer.sdp.clone())),
            headers: Vec::new(),
        };
        self.setup.attempted += 1;
        self.first_invite.get_or_insert(now);
        match self.ua.invite(now, request) {
            Ok(call) => {
                self.pending.insert(call, Pending { ci, offer, sent: now });
            }
            Err(error) => self.fail("local", error.to_string(), 1),
        }
    }

    fn fail(&mut self, cause: &str, why: String, n: u64) {
        *self.setup.failed.entry(cause.to_string()).or_default() += n;
        self.setup.first_failure.get_or_insert(why);
    }

    fn drain_events(&mut self, now: Instant) {
        while let Some(event) = self.ua.poll_event() {
            match event {
                UaEvent::Established { call, answer } => {
                    let Some(pending) = self.pending.remove(&call) else {
                        continue;
                    };
                    self.last_final = Some(now);
                    let micros = now.saturating_duration_since(pending.sent).as_micros() as u64;
                    self.setup.invite_200_us.saturating_record(micros.max(1));
                    match self.session(&pending, answer) {
                        Ok(session) => {
                            self.setup.answered += 1;
                            let threads = self.batches.len();
                            self.batches[pending.ci % threads].push((pending.ci / threads, session));
                            self.handed_out += 1;
                        }
                        Err(why) => self.fail("answer", why, 1),
                    }
                }
                UaEvent::Failed { call, status, reason } => {
                    if self.pending.remove(&call).is_some() {
                        self.last_final = Some(now);
                        self.fail(&status.to_string(), format!("{status} {reason}"), 1);
                    }
                }
                UaEvent::Ended { reason, .. } if reason.by_peer => self.hangup.ended_by_peer += 1,
                UaEvent::IncomingCall { call, .. } => {
                    self.ua.reject(now, call, 603, "Decline", &[]);
                }
                UaEvent::Reoffer { call, reoffer, .. } => {
                    self.ua.answer_reoffer(
                        now,
                        call,
                        reoffer,
                        Err((488, "the load's sessions do not move".into())),
                    );
                }
                UaEvent::Ended { .. }
                | UaEvent::Ringing { .. }
                | UaEvent::Cancelled { .. }
                | UaEvent::Info(_)
                | UaEvent::InfoAnswered { .. } => {}
            }
        }
    }

    /// The load's session from msrp-signal's answer: the engine's URI is
    /// the answer's `a=path` (RFC 4975 8.2, no relays here).
    fn session(&mut self, pending: &Pending, answer: Option<Body>) -> Result<SessionPlan, String> {
        let answer = answer.ok_or("the 200 had no SDP answer")?;
        let media =
            sdp::complete(&pending.offer, &answer.bytes, &answer.content_type).map_err(|r| r.to_string())?;
        let media = media.first().ok_or("the answer accepted no media")?;
        if !media.we_connect {
            return Err("the answer is not a=setup:passive: the load cannot connect".into());
        }
        let remote = media.remote.session_uri().ok_or("the answer has no a=path")?;
        let remote_uri = remote
            .parse::<MsrpUri>()
            .map_err(|e| format!("the answer's a=path {remote:?}: {e}"))?;
        let local = pending.offer.media[0].session_uri().unwrap_or_default();
        let local_uri = local
            .parse::<MsrpUri>()
            .map_err(|e| format!("our a=path {local:?}: {e}"))?;
        if self.plan.load.engine_sends {
            let id = remote_uri.session_id().unwrap_or_default().to_string();
            self.setup.engine_session_ids.push(id);
        }
        Ok(SessionPlan {
            local_uri,
            remote_uri,
            created: pending.sent,
        })
    }

    fn flush_batches(&mut self) {
        for (wave, batch) in self.plan.load.waves.iter().zip(self.batches.iter_mut()) {
            if !batch.is_empty() {
                let _ = wave.send(std::mem::take(batch));
            }
        }
    }

    fn count_bye_response(&mut self, bytes: Bytes) {
        let Ok(message) = Message::parse(bytes, &self.limits) else {
            return;
        };
        if let Some(status) = message.status() {
            if status >= 200 && message.cseq().method == Method::Bye {
                *self.hangup.bye_statuses.entry(status.to_string()).or_default() += 1;
            }
        }
    }
}

fn link_flow(plan: &CallerPlan) -> msrp_signaling::sip::Flow {
    msrp_signaling::sip::Flow {
        transport: plan.transport,
        remote: plan.signal,
        conn: (plan.transport == Transport::Tcp).then_some(CONN),
    }
}

/// Our offer (RFC 4975 8, RFC 6135 4.2): one `m=message` line whose
/// `a=path` is the load's session URI, `a=setup:active` because the load
/// connects to the answerer.
fn offer(source: IpAddr, session_id: &str) -> Offer {
    let path = format!("msrp://{source}:{LOAD_MSRP_PORT}/{session_id};tcp");
    let family = if source.is_ipv4() { "IP4" } else { "IP6" };
    let sdp = format!(
        "v=0\r\no=- 1 1 IN {family} {source}\r\ns=-\r\nc=IN {family} {source}\r\nt=0 0\r\n\
         m=message {LOAD_MSRP_PORT} TCP/MSRP *\r\na=path:{path}\r\na=accept-types:*\r\na=setup:active\r\n"
    );
    Offer {
        sdp: Bytes::from(sdp),
        media: vec![MsrpMedia {
            port: LOAD_MSRP_PORT,
            transport: MsrpTransport::Tcp,
            path: vec![path],
            accept_types: vec!["*".into()],
            setup: Some(Setup::Active),
            ..MsrpMedia::default()
        }],
        local_session_ids: vec![session_id.to_string()],
        origin_session_id: "1".into(),
        session_version: 1,
    }
}
