//! `bench --mode rest`: an application on msrp-signal's REST API. The
//! sessions are set up by 3PCC calls (`POST /v1/sessions` with the load's
//! SDP offer) and bound by the load threads as `--mode sip` binds
//! answered calls; the engine's sends (direction `engine` or `both`) are
//! asked by REST instead of the control socket; every session is deleted
//! at the end.
//!
//! - [`signal`]: the embedded msrp-signal serving REST (unless `--rest`
//!   names a running one).
//! - [`http`]: a keep-alive HTTP/1.1 client with a sans-IO response
//!   reader, one request in flight per connection.
//! - [`api`]: the JSON of the routes the load uses.
//! - [`setup`]: the 3PCC session setup.
//! - [`commander`]: the engine's sends by REST, `batch` or `single`.
//!
//! The report's `rest` section ([`RestReport`]) has the form, the
//! connections, requests and messages per second, refusals by status,
//! and REST-request-to-arrival latency beside the request's own.

pub mod api;
pub mod commander;
pub mod http;
pub mod setup;
pub mod signal;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::load::{LoadSettings, Recorded, Shared};
use crate::report::{Latency, RestReport};
use crate::sip::LoadSessions;
pub use commander::{SendFigures, LATENCY_REST_RESPONSE};
use http::{HttpConn, RestBase};
pub use signal::EmbeddedRest;

/// Messages in one `POST /v1/messages:batch`, at most (msrp-signal's
/// `batch_max`).
pub const BATCH_MAX: usize = 1000;
/// How long the DELETEs get at the end.
const DELETE_WAIT: Duration = Duration::from_secs(10);

/// How the engine's sends are asked (`--rest-form`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RestForm {
    /// `POST /v1/messages:batch`, up to `--rest-batch` messages each.
    #[default]
    Batch,
    /// `POST /v1/sessions/{id}/messages`, a request per message.
    Single,
}

impl RestForm {
    pub fn name(self) -> &'static str {
        match self {
            RestForm::Batch => "batch",
            RestForm::Single => "single",
        }
    }

    /// Keep-alive connections when `--rest-connections` is not given.
    /// `batch`: 4, one request being built or read while others are
    /// served; more only lengthen each response (on 2 cores, 2, 4 and 8
    /// connections of 256 gave 88k, 94k and 95k messages/s, response p50
    /// 5, 10 and 20 ms). `single`: a request per message, each a round
    /// trip through msrp-signal and the engine's control socket, so many
    /// must be in flight to keep msrp-signal's one thread fed: 64 (32,
    /// 64 and 128 gave medians of 20k, 25k and 22k messages/s).
    pub fn default_connections(self) -> usize {
        match self {
            RestForm::Batch => 4,
            RestForm::Single => 64,
        }
    }
}

/// How a REST run is set up.
pub struct RestPlan<'a> {
    /// A running msrp-signal's REST base; `None`: the embedded one.
    pub base: Option<RestBase>,
    pub form: RestForm,
    pub batch: usize,
    pub connections: usize,
    /// The engine's control socket, for the embedded msrp-signal.
    pub control: &'a Path,
    pub load: LoadSessions,
}

/// The REST side once its sessions are set up, held through the run and
/// ended by [`RestRun::finish`].
pub struct RestRun {
    runtime: tokio::runtime::Runtime,
    conns: Vec<HttpConn>,
    /// Dropped after the DELETEs, before the engine stops.
    signal: Option<EmbeddedRest>,
    base: RestBase,
    form: RestForm,
    batch: usize,
    connections: usize,
    shared: Arc<Shared>,
    pub setup: setup::SetupOutcome,
    figures: Arc<Mutex<SendFigures>>,
}

/// Starts the embedded msrp-signal (unless `--rest` names one) and creates
/// every session, `connections` POSTs in flight.
pub fn set_up(plan: RestPlan, mut tick: impl FnMut()) -> Result<RestRun> {
    let calls = plan.load.calls.len();
    let signal = match plan.base {
        Some(_) => None,
        None => Some(EmbeddedRest::start(plan.control, calls)?),
    };
    let base = match (&signal, plan.base) {
        (Some(embedded), _) => RestBase::local(embedded.http),
        (None, Some(base)) => base,
        (None, None) => unreachable!("an embedded msrp-signal was started"),
    };
    let shared = plan.load.shared.clone();
    // The sessions stay up until their DELETE is answered, so that each
    // ends by it, not by its MSRP connection closing.
    shared.hold_open.store(true, Ordering::Relaxed);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("a tokio runtime for the REST setup")?;
    let conns: Vec<HttpConn> = (0..plan.connections.max(1))
        .map(|_| HttpConn::new(base.clone()))
        .collect();
    let timeout = Duration::from_secs(60) + Duration::from_millis(calls as u64);
    let local = tokio::task::LocalSet::new();
    let (conns, setup) = local.block_on(&runtime, async {
        setup::create_sessions(conns, plan.load, timeout, &mut tick).await
    });
    Ok(RestRun {
        runtime,
        conns,
        signal,
        base,
        form: plan.form,
        batch: plan.batch,
        connections: plan.connections.max(1),
        shared,
        setup,
        figures: Arc::new(Mutex::new(SendFigures::default())),
    })
}

impl RestRun {
    /// The engine's sends by REST, on a thread of their own (pinned to
    /// `cpu`), from the ramp-up to the stop.
    pub fn spawn_commander(
        &self,
        settings: Arc<LoadSettings>,
        cpu: Option<usize>,
    ) -> Result<JoinHandle<Result<Recorded>>> {
        commander::spawn(
            commander::CommanderPlan {
                base: self.base.clone(),
                form: self.form,
                batch: self.batch,
                connections: self.connections,
                sessions: self.setup.bound.clone(),
                signal_tids: self.signal.as_ref().map(|s| s.tids()).unwrap_or_default(),
                cpu,
                figures: self.figures.clone(),
            },
            settings,
        )
    }

    /// Deletes every session (after the commander ended), lets the
    /// load's connections go, stops the embedded msrp-signal, and
    /// reports; `direction` is the one that ran, `measured` the measured
    /// interval. The latencies are the caller's to fill from the load's
    /// records.
    pub fn finish(self, direction: &str, measured: Duration) -> RestReport {
        let RestRun {
            runtime,
            conns,
            signal,
            base,
            form,
            batch,
            connections,
            shared,
            setup,
            figures,
        } = self;
        let signal_name = match &signal {
            Some(_) => "embedded".to_string(),
            None => base.url(),
        };
        let local = tokio::task::LocalSet::new();
        let deleted = local.block_on(&runtime, delete_all(conns, setup.created_ids.clone()));
        shared.hold_open.store(false, Ordering::Relaxed);
        drop(signal);
        let figures = figures.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let seconds = measured.as_secs_f64().max(1e-9);
        let setup_s = setup.took.as_secs_f64();
        let failed: u64 = setup.failed.values().sum();
        RestReport {
            signal: signal_name,
            form: form.name().into(),
            batch_max: batch,
            connections,
            direction: direction.into(),
            sessions_attempted: setup.attempted,
            sessions_created: setup.created,
            sessions_failed: failed,
            setup_failed_by_status: setup.failed,
            first_setup_failure: setup.first_failure,
            setup_s,
            sessions_per_s: match setup_s > 0.0 {
                true => setup.created as f64 / setup_s,
                false => 0.0,
            },
            create_us: Latency::of(&setup.create_us),
            requests: figures.requests,
            requests_per_s: figures.requests as f64 / seconds,
            messages: figures.messages,
            messages_per_s: figures.messages as f64 / seconds,
            messages_per_request: match figures.requests {
                0 => 0.0,
                n => figures.messages as f64 / n as f64,
            },
            errors_by_status: figures.refused,
            first_error: figures.first_error,
            response_us: None,
            arrival_us: None,
            signal_cores: figures.signal_cores,
            client_cores: figures.client_cores,
            deletes_sent: deleted.sent,
            delete_statuses: deleted.statuses,
            first_delete_error: deleted.error,
        }
    }
}

struct Deleted {
    sent: u64,
    statuses: std::collections::BTreeMap<String, u64>,
    error: Option<String>,
}

/// `DELETE /v1/sessions/{id}` for each id, one in flight per connection,
/// within [`DELETE_WAIT`].
async fn delete_all(conns: Vec<HttpConn>, ids: Vec<String>) -> Deleted {
    use std::cell::RefCell;
    use std::rc::Rc;
    let ids = Rc::new(RefCell::new(ids));
    let deleted = Rc::new(RefCell::new(Deleted {
        sent: 0,
        statuses: Default::default(),
        error: None,
    }));
    let deadline = Instant::now() + DELETE_WAIT;
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            let (ids, deleted) = (ids.clone(), deleted.clone());
            tokio::task::spawn_local(async move {
                while Instant::now() < deadline {
                    let Some(id) = ids.borrow_mut().pop() else { break };
                    deleted.borrow_mut().sent += 1;
                    let result = conn.call("DELETE", &api::session_path(&id), b"").await;
                    let mut d = deleted.borrow_mut();
                    match result {
                        Ok(response) => {
                            *d.statuses.entry(response.status.to_string()).or_default() += 1;
                            if response.status != 200 && d.error.is_none() {
                                d.error = Some(format!("{} {}", response.status, response.detail()));
                            }
                        }
                        Err(e) => {
                            *d.statuses.entry(e.cause().to_string()).or_default() += 1;
                            d.error.get_or_insert(e.to_string());
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    match Rc::try_unwrap(deleted) {
        Ok(deleted) => deleted.into_inner(),
        Err(_) => unreachable!("every DELETE task has ended"),
    }
}
