//! Direction `engine` (or `both`): the engine sends, driven by `send`
//! commands on its control socket, closed loop with a window per session;
//! the latency is from the command to the engine's `delivered` event.
//! Every message costs a command, a reply and an event on the engine's one
//! control thread, so this measures the engine as an application drives it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use msrp_engine::control::{Client, Command, EngineEvent, Incoming, SendRequest};

use crate::load::{LoadSettings, Recorded, PHASE_MEASURE, PHASE_RAMP, PHASE_SETUP, PHASE_STOP};
use crate::profile::Direction;
use crate::report::LATENCY_DELIVERED;

/// Latency kind of the engine's sends when the load sends too.
pub const LATENCY_ENGINE_DELIVERED: &str = "engine_delivered";
/// Commands outstanding at most, whatever the window: the control thread
/// answers in order, so more only adds queueing.
const OUTSTANDING_MAX: usize = 4096;

pub fn spawn(
    control: &Path,
    sessions: Vec<String>,
    settings: Arc<LoadSettings>,
    cpu: Option<usize>,
) -> Result<JoinHandle<Result<Recorded>>> {
    let mut client = Client::connect(control)
        .with_context(|| format!("connecting to the control socket {}", control.display()))?;
    client.subscribe().context("subscribing to the engine's events")?;
    std::thread::Builder::new()
        .name("engine-sends".into())
        .spawn(move || {
            if let Some(id) = cpu {
                core_affinity::set_for_current(core_affinity::CoreId { id });
            }
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() };
            settings.shared.commander_tid.store(tid, Ordering::Relaxed);
            drive(client, sessions, &settings)
        })
        .map_err(|e| anyhow!("cannot start the engine-direction thread: {e}"))
}

struct Pending {
    session: usize,
    sent: Instant,
    bytes: u64,
}

fn drive(mut client: Client, sessions: Vec<String>, settings: &LoadSettings) -> Result<Recorded> {
    let shared = &settings.shared;
    let profile = &settings.profile;
    let kind = match profile.direction {
        Direction::Engine => LATENCY_DELIVERED,
        _ => LATENCY_ENGINE_DELIVERED,
    };
    let mut recorded = Recorded::new();
    while shared.phase() == PHASE_SETUP {
        std::thread::sleep(Duration::from_millis(1));
    }
    if sessions.is_empty() {
        return Ok(recorded);
    }
    let body = vec![b'y'; profile.sizes.largest().min(1 << 20) as usize];
    let mut rng = fastrand::Rng::with_seed(7);
    // Sends wanted, one entry per window slot, and where each stands.
    let window_total = (sessions.len() * profile.window.max(1)).min(OUTSTANDING_MAX);
    let mut ready: Vec<usize> = (0..window_total).map(|i| i % sessions.len()).collect();
    let mut replies: HashMap<u64, Pending> = HashMap::new();
    let mut messages: HashMap<(usize, u64), (Instant, u64)> = HashMap::new();
    let index: HashMap<&str, usize> = sessions
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    loop {
        let phase = shared.phase();
        if phase == PHASE_STOP {
            return Ok(recorded);
        }
        let sending = matches!(phase, PHASE_RAMP | PHASE_MEASURE);
        if sending && !ready.is_empty() {
            for session in ready.drain(..) {
                let size = profile
                    .sizes
                    .pick(rng.u32(..profile.sizes.total_weight()))
                    .min(body.len() as u64);
                let request = SendRequest {
                    session_id: sessions[session].clone(),
                    content_type: "text/plain".into(),
                    ..SendRequest::default()
                };
                let id = client.submit(Command::Send(request), &body[..size as usize])?;
                replies.insert(
                    id,
                    Pending {
                        session,
                        sent: Instant::now(),
                        bytes: size,
                    },
                );
            }
            client.flush()?;
        }
        if replies.is_empty() && messages.is_empty() {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        let measuring = shared.phase() == PHASE_MEASURE;
        match client.read()? {
            Incoming::Reply(reply, _) => {
                let Some(pending) = replies.remove(&reply.id) else {
                    continue;
                };
                match (reply.ok, reply.message) {
                    (true, Some(number)) => {
                        messages.insert((pending.session, number), (pending.sent, pending.bytes));
                    }
                    _ => {
                        if measuring {
                            *recorded.errors.entry("refused".into()).or_default() += 1;
                        }
                        shared.note_closed(&format!(
                            "the engine refused a send: {}",
                            reply.error.unwrap_or_default()
                        ));
                        shared.failed.fetch_add(1, Ordering::Relaxed);
                        // Back off: a refusal repeats until the cause passes.
                        std::thread::sleep(Duration::from_millis(1));
                        ready.push(pending.session);
                    }
                }
            }
            Incoming::Event(
                EngineEvent::Delivered {
                    session_id, message, ..
                },
                _,
            ) => {
                let Some(&session) = index.get(session_id.as_str()) else {
                    continue;
                };
                if let Some((sent, bytes)) = messages.remove(&(session, message)) {
                    if measuring {
                        recorded.record(kind, sent.elapsed().as_micros() as u64);
                    }
                    shared.delivered.fetch_add(1, Ordering::Relaxed);
                    shared.delivered_bytes.fetch_add(bytes, Ordering::Relaxed);
                    ready.push(session);
                }
            }
            Incoming::Event(
                EngineEvent::Failed {
                    session_id,
                    message,
                    status,
                    ..
                },
                _,
            ) => {
                let Some(&session) = index.get(session_id.as_str()) else {
                    continue;
                };
                if messages.remove(&(session, message)).is_some() {
                    if measuring {
                        let cause = status.map_or_else(|| "local".to_string(), |s| s.to_string());
                        *recorded.errors.entry(cause).or_default() += 1;
                    }
                    shared.failed.fetch_add(1, Ordering::Relaxed);
                    ready.push(session);
                }
            }
            Incoming::Event(..) => {}
        }
    }
}
