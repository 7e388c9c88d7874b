//! Direction `engine` (or `both`) with `--mode rest`: the engine's sends
//! asked through msrp-signal's REST API instead of the control socket,
//! as an HTTP application asks them: `POST /v1/messages:batch` with up to
//! `--rest-batch` messages (`batch`), or `POST /v1/sessions/{id}/messages`
//! per message (`single`), one request in flight on each of
//! `--rest-connections` keep-alive connections.
//!
//! One thread, a current-thread tokio loop with a task per connection.
//! The window is kept as [`crate::commander`] keeps it, closed loop on
//! what the load received: messages accepted (202) or in a request not
//! yet answered, less those that arrived. Each body starts with a
//! [`Stamp`] written as its request is built, so the load measures REST
//! request to MSRP arrival.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use super::api;
use super::http::{HttpConn, HttpError, Response, RestBase};
use super::RestForm;
use crate::commander::Stamp;
use crate::load::{LoadSettings, Recorded, PHASE_MEASURE, PHASE_RAMP, PHASE_SETUP, PHASE_STOP};
use crate::procfs;

/// Latency kind of the REST requests: written to response read.
pub const LATENCY_REST_RESPONSE: &str = "rest_response";
/// Messages outstanding at most, single: each connection has one in a
/// request; more only queue in the engine.
const OUTSTANDING_SINGLE_MAX: u64 = 4096;
/// The same, batched (as the control commander's batched bound).
const OUTSTANDING_BATCH_MAX: u64 = 16_384;
/// A batch request's JSON body, at most: under msrp-signal's default
/// 1 MiB `body_max`, so a batch of large messages is cut, not refused.
const REQUEST_BYTES_MAX: usize = 768 << 10;
/// How long a connection waits when the window is full, or after an
/// error before it tries again (tokio's timer granularity).
const WAIT: Duration = Duration::from_millis(1);

/// What the REST commander is asked to do.
pub struct CommanderPlan {
    pub base: RestBase,
    pub form: RestForm,
    /// Messages per batch request, at most.
    pub batch: usize,
    pub connections: usize,
    /// The REST ids of the bound sessions.
    pub sessions: Vec<String>,
    /// msrp-signal's thread, when embedded, for its CPU time.
    /// msrp-signal's threads (its core and, with REST, its events thread).
    pub signal_tids: Vec<i32>,
    pub cpu: Option<usize>,
    /// Where the figures go when the thread ends.
    pub figures: Arc<Mutex<SendFigures>>,
}

/// What the sends found.
#[derive(Clone, Debug, Default)]
pub struct SendFigures {
    /// Requests answered in the measured interval.
    pub requests: u64,
    /// Messages accepted (202) in the measured interval.
    pub messages: u64,
    /// Messages refused while sending (ramp-up and measured interval), by
    /// HTTP status (a single POST's, a batch item's, or a whole batch's
    /// when it was not 207), `io` or `http`.
    pub refused: BTreeMap<String, u64>,
    pub first_error: Option<String>,
    /// Cores busy over the measured interval: msrp-signal's thread (when
    /// embedded) and this commander's.
    pub signal_cores: Option<f64>,
    pub client_cores: Option<f64>,
}

/// Starts the commander's thread; it sends from the ramp-up to the stop.
pub fn spawn(plan: CommanderPlan, settings: Arc<LoadSettings>) -> Result<JoinHandle<Result<Recorded>>> {
    std::thread::Builder::new()
        .name("rest-sends".into())
        .spawn(move || {
            if let Some(id) = plan.cpu {
                core_affinity::set_for_current(core_affinity::CoreId { id });
            }
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() };
            settings.shared.commander_tid.store(tid, Ordering::Relaxed);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("a tokio runtime for the REST commander")?;
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, drive(plan, settings, tid))
        })
        .map_err(|e| anyhow!("cannot start the REST commander thread: {e}"))
}

/// The state the connections' tasks share (one thread).
struct Drive {
    settings: Arc<LoadSettings>,
    form: RestForm,
    batch: u64,
    window: u64,
    /// The sessions as JSON strings (batch items) and as message paths
    /// (single).
    quoted: Vec<String>,
    paths: Vec<String>,
    next_session: Cell<usize>,
    accepted: Cell<u64>,
    unanswered: Cell<u64>,
    recorded: RefCell<Recorded>,
    figures: RefCell<SendFigures>,
}

async fn drive(plan: CommanderPlan, settings: Arc<LoadSettings>, tid: i32) -> Result<Recorded> {
    let shared = settings.shared.clone();
    while shared.phase() == PHASE_SETUP {
        tokio::time::sleep(WAIT).await;
    }
    if plan.sessions.is_empty() {
        return Ok(Recorded::new());
    }
    let outstanding_max = match plan.form {
        RestForm::Batch => OUTSTANDING_BATCH_MAX,
        RestForm::Single => OUTSTANDING_SINGLE_MAX,
    };
    let window = (plan.sessions.len() as u64 * settings.profile.window.max(1) as u64).min(outstanding_max);
    let drive = Rc::new(Drive {
        settings: settings.clone(),
        form: plan.form,
        batch: plan.batch.max(1) as u64,
        window,
        quoted: plan.sessions.iter().map(|s| api::quoted(s)).collect(),
        paths: plan.sessions.iter().map(|s| api::messages_path(s)).collect(),
        next_session: Cell::new(0),
        accepted: Cell::new(0),
        unanswered: Cell::new(0),
        recorded: RefCell::new(Recorded::new()),
        figures: RefCell::new(SendFigures::default()),
    });
    let senders: Vec<_> = (0..plan.connections.max(1))
        .map(|index| tokio::task::spawn_local(sender(drive.clone(), HttpConn::new(plan.base.clone()), index)))
        .collect();
    let cores = tokio::task::spawn_local(measure_cores(shared.clone(), plan.signal_tids.clone(), tid));
    for sender in senders {
        let _ = sender.await;
    }
    let (signal_cores, client_cores) = cores.await.unwrap_or((None, None));
    let drive = Rc::try_unwrap(drive).map_err(|_| anyhow!("a REST sender outlived the run"))?;
    let mut figures = drive.figures.into_inner();
    figures.signal_cores = signal_cores;
    figures.client_cores = client_cores;
    *plan.figures.lock().unwrap_or_else(|p| p.into_inner()) = figures;
    Ok(drive.recorded.into_inner())
}

/// One connection's requests, one at a time, while the run sends.
async fn sender(drive: Rc<Drive>, mut conn: HttpConn, index: usize) {
    let settings = drive.settings.clone();
    let shared = &settings.shared;
    let profile = &settings.profile;
    let mut rng = fastrand::Rng::with_seed(7 + index as u64);
    let mut body = vec![b'y'; profile.sizes.largest().min(1 << 20) as usize];
    let mut json = String::with_capacity(64 << 10);
    let mut next_body = |json: &mut String, quoted: Option<&str>| -> usize {
        let size = profile
            .sizes
            .pick(rng.u32(..profile.sizes.total_weight()))
            .min(body.len() as u64) as usize;
        Stamp::write(&mut body[..size], settings.epoch);
        match quoted {
            Some(session) => api::batch_item(json, session, &body[..size]),
            None => api::message(json, &body[..size]),
        }
        size
    };
    loop {
        let phase = shared.phase();
        if phase == PHASE_STOP {
            return;
        }
        if !matches!(phase, PHASE_RAMP | PHASE_MEASURE) {
            tokio::time::sleep(WAIT).await;
            continue;
        }
        let in_flight = (drive.accepted.get() + drive.unanswered.get())
            .saturating_sub(shared.received.load(Ordering::Relaxed));
        let room = drive.window.saturating_sub(in_flight);
        if room == 0 {
            tokio::time::sleep(WAIT).await;
            continue;
        }
        json.clear();
        let (path, messages) = match drive.form {
            RestForm::Single => {
                let session = drive.take_session();
                next_body(&mut json, None);
                (drive.paths[session].as_str(), 1)
            }
            RestForm::Batch => {
                let wanted = room.min(drive.batch);
                let mut messages = 0;
                json.push_str("{\"messages\":[");
                while messages < wanted && json.len() < REQUEST_BYTES_MAX {
                    if messages > 0 {
                        json.push(',');
                    }
                    let session = drive.take_session();
                    next_body(&mut json, Some(&drive.quoted[session]));
                    messages += 1;
                }
                json.push_str("]}");
                (api::BATCH, messages)
            }
        };
        drive.unanswered.set(drive.unanswered.get() + messages);
        let sent = Instant::now();
        let result = conn.call("POST", path, json.as_bytes()).await;
        let answered = Instant::now();
        drive.unanswered.set(drive.unanswered.get() - messages);
        let failed = drive.outcome(result, messages);
        if shared.phase() == PHASE_MEASURE {
            let micros = answered.saturating_duration_since(sent).as_micros() as u64;
            drive
                .recorded
                .borrow_mut()
                .record(LATENCY_REST_RESPONSE, micros.max(1));
            drive.figures.borrow_mut().requests += 1;
        }
        if failed {
            // A refusal repeats until its cause passes.
            tokio::time::sleep(WAIT).await;
        }
    }
}

impl Drive {
    fn take_session(&self) -> usize {
        let session = self.next_session.get();
        self.next_session.set((session + 1) % self.quoted.len());
        session
    }

    /// Counts a request's outcome for its `messages`; true when some
    /// were refused.
    fn outcome(&self, result: Result<Response, HttpError>, messages: u64) -> bool {
        let mut refused: Vec<(String, u64, String)> = Vec::new();
        let mut accepted = 0;
        match (self.form, result) {
            (_, Err(error)) => refused.push((error.cause().into(), messages, error.to_string())),
            (RestForm::Single, Ok(response)) => match response.status {
                202 => accepted = 1,
                status => refused.push((status.to_string(), 1, format!("{status} {}", response.detail()))),
            },
            (RestForm::Batch, Ok(response)) if response.status == 207 => {
                match serde_json::from_slice::<api::BatchResults>(&response.body) {
                    Ok(results) => {
                        for result in &results.results {
                            match result.status {
                                202 => accepted += 1,
                                status => refused.push((status.to_string(), 1, result.describe())),
                            }
                        }
                        let missing = messages.saturating_sub(results.results.len() as u64);
                        if missing > 0 {
                            refused.push((
                                "http".into(),
                                missing,
                                format!(
                                    "a 207 with {} results for {messages} items",
                                    results.results.len()
                                ),
                            ));
                        }
                    }
                    Err(e) => refused.push(("http".into(), messages, format!("the 207's JSON: {e}"))),
                }
            }
            (RestForm::Batch, Ok(response)) => refused.push((
                response.status.to_string(),
                messages,
                format!("{} {}", response.status, response.detail()),
            )),
        }
        self.accepted.set(self.accepted.get() + accepted);
        let shared = &self.settings.shared;
        let measuring = shared.phase() == PHASE_MEASURE;
        let mut figures = self.figures.borrow_mut();
        if measuring {
            figures.messages += accepted;
        }
        let failed = !refused.is_empty();
        for (cause, n, why) in refused {
            shared.failed.fetch_add(n, Ordering::Relaxed);
            if measuring {
                *self
                    .recorded
                    .borrow_mut()
                    .errors
                    .entry(format!("rest_{cause}"))
                    .or_default() += n;
            }
            *figures.refused.entry(cause).or_default() += n;
            if figures.first_error.is_none() {
                shared.note_closed(&format!("msrp-signal refused a send: {why}"));
                figures.first_error = Some(why);
            }
        }
        failed
    }
}

/// Cores busy over the measured interval: msrp-signal's threads and the
/// commander's own.
async fn measure_cores(
    shared: Arc<crate::load::Shared>,
    signal: Vec<i32>,
    own: i32,
) -> (Option<f64>, Option<f64>) {
    while shared.phase() < PHASE_MEASURE {
        tokio::time::sleep(WAIT).await;
    }
    let signal_cpu = || match signal.is_empty() {
        true => None,
        false => signal
            .iter()
            .map(|&tid| procfs::thread_cpu(tid))
            .sum::<Option<Duration>>(),
    };
    let read = || (signal_cpu(), procfs::thread_cpu(own), Instant::now());
    let (signal_0, own_0, at_0) = read();
    while shared.phase() == PHASE_MEASURE {
        tokio::time::sleep(WAIT).await;
    }
    let (signal_1, own_1, at_1) = read();
    let seconds = at_1.saturating_duration_since(at_0).as_secs_f64().max(1e-9);
    let cores = |then: Option<Duration>, now: Option<Duration>| match (then, now) {
        (Some(then), Some(now)) => Some(now.saturating_sub(then).as_secs_f64() / seconds),
        _ => None,
    };
    (cores(signal_0, signal_1), cores(own_0, own_1))
}
