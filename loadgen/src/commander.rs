//! Direction `engine` (or `both`): the engine sends, driven by `send`
//! operations on its control socket, as an application drives it: batched
//! (protocol version 2, up to [`BATCH_OPS`] sends per frame and one reply
//! for them), or with `--one-by-one` a command and a reply per message.
//!
//! The latency is from the command to the message's arrival at the load:
//! each body starts with a [`Stamp`] that the load reads back. The window is
//! kept on what the load received, not on `delivered` events: a subscriber
//! gets every event of the engine, a million a second beside a full load
//! sending, and a driver reading them all would measure its own backlog.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use std::collections::VecDeque;

use msrp_engine::control::{BatchOp, Client, Command, Incoming, SendRequest, PROTOCOL_VERSION};

use crate::profile::ControlForm;

use crate::load::{LoadSettings, Recorded, PHASE_MEASURE, PHASE_RAMP, PHASE_SETUP, PHASE_STOP};

/// Latency kind of the engine's sends: command to arrival at the load.
pub const LATENCY_ENGINE_SENT: &str = "engine_sent";
/// Messages outstanding at most, whatever the window, one by one: the
/// control thread answers in order, so more only adds queueing.
const OUTSTANDING_MAX: u64 = 4096;
/// The same, batched: a batch is answered as soon as its shard took it, so
/// a deeper window (`--window 16`) is a deeper pipeline.
const OUTSTANDING_BATCHED_MAX: u64 = 16_384;
/// Commands written and not yet answered, at most. The engine stops reading
/// a client whose replies it cannot write, so a client that writes thousands
/// of commands before reading blocks on its own write while the engine
/// blocks on it: keep what is unanswered within the sockets' buffers.
const UNANSWERED_MAX: usize = 256;
/// Sends per `batch` frame, at most (the engine's `--batch-ops-max` is
/// 1024 by default).
pub const BATCH_OPS: u64 = 512;
/// Batches written and not yet answered, at most: with [`BATCH_OPS`] each,
/// enough to keep the window full while a reply is on its way.
const BATCH_FRAMES_MAX: usize = 8;

/// The first octets of a body the engine sends for the load: a marker and
/// the send time, in nanoseconds since the run's epoch.
pub struct Stamp;

impl Stamp {
    const MARK: &'static [u8; 8] = b"lg-stamp";
    pub const LEN: usize = 16;

    pub fn write(body: &mut [u8], epoch: Instant) {
        if body.len() >= Stamp::LEN {
            body[..8].copy_from_slice(Stamp::MARK);
            body[8..16].copy_from_slice(&(epoch.elapsed().as_nanos() as u64).to_be_bytes());
        }
    }

    /// The send time stamped into `body`, if it has one.
    pub fn read(body: &[u8], epoch: Instant) -> Option<Instant> {
        let nanos = body.get(8..16)?;
        if body.get(..8)? != Stamp::MARK {
            return None;
        }
        let nanos = u64::from_be_bytes(nanos.try_into().ok()?);
        Some(epoch + Duration::from_nanos(nanos))
    }
}

pub fn spawn(
    control: &Path,
    sessions: Vec<String>,
    settings: Arc<LoadSettings>,
    cpu: Option<usize>,
) -> Result<JoinHandle<Result<Recorded>>> {
    let client = Client::connect(control)
        .with_context(|| format!("connecting to the control socket {}", control.display()))?;
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

fn drive(mut client: Client, sessions: Vec<String>, settings: &LoadSettings) -> Result<Recorded> {
    let shared = &settings.shared;
    let profile = &settings.profile;
    let mut recorded = Recorded::new();
    while shared.phase() == PHASE_SETUP {
        std::thread::sleep(Duration::from_millis(1));
    }
    if sessions.is_empty() {
        return Ok(recorded);
    }
    let batched = profile.control == ControlForm::Batched;
    if batched {
        client
            .hello(PROTOCOL_VERSION)
            .context("asking the engine for control protocol 2 (batches)")?;
    }
    let frames_max = match batched {
        true => BATCH_FRAMES_MAX,
        false => UNANSWERED_MAX,
    };
    let mut body = vec![b'y'; profile.sizes.largest().min(1 << 20) as usize];
    let mut payload = Vec::new();
    let mut rng = fastrand::Rng::with_seed(7);
    let outstanding_max = match batched {
        true => OUTSTANDING_BATCHED_MAX,
        false => OUTSTANDING_MAX,
    };
    let window = (sessions.len() as u64 * profile.window.max(1) as u64).min(outstanding_max);
    // Messages the engine accepted; the load's received count is what
    // arrived (it counts only what the engine sends).
    let mut accepted: u64 = 0;
    // Replies come in the order of the commands (CONTROL.md), and this
    // client sends nothing else: the messages each unanswered command
    // carries are all it needs.
    let mut unanswered: VecDeque<u64> = VecDeque::new();
    let mut unanswered_messages: u64 = 0;
    let mut next_session = 0;
    let mut next_message = |body: &mut Vec<u8>, rng: &mut fastrand::Rng| {
        let size = profile
            .sizes
            .pick(rng.u32(..profile.sizes.total_weight()))
            .min(body.len() as u64) as usize;
        Stamp::write(&mut body[..size], settings.epoch);
        let request = SendRequest {
            session_id: sessions[next_session].clone(),
            content_type: "text/plain".into(),
            payload_len: batched.then_some(size as u64),
            ..SendRequest::default()
        };
        next_session = (next_session + 1) % sessions.len();
        (request, size)
    };
    loop {
        let phase = shared.phase();
        if phase == PHASE_STOP {
            return Ok(recorded);
        }
        let sending = matches!(phase, PHASE_RAMP | PHASE_MEASURE);
        let in_flight =
            (accepted + unanswered_messages).saturating_sub(shared.received.load(Ordering::Relaxed));
        let mut room = window.saturating_sub(in_flight);
        if sending && room > 0 && unanswered.len() < frames_max {
            while room > 0 && unanswered.len() < frames_max {
                let messages = match batched {
                    true => room.min(BATCH_OPS),
                    false => 1,
                };
                if batched {
                    payload.clear();
                    let ops = (0..messages)
                        .map(|_| {
                            let (request, size) = next_message(&mut body, &mut rng);
                            payload.extend_from_slice(&body[..size]);
                            BatchOp::Send(request)
                        })
                        .collect();
                    client.submit_batch(ops, &payload)?;
                } else {
                    let (request, size) = next_message(&mut body, &mut rng);
                    client.submit(Command::Send(request), &body[..size])?;
                }
                unanswered.push_back(messages);
                unanswered_messages += messages;
                room -= messages;
            }
            client.flush()?;
        }
        let Some(&messages) = unanswered.front() else {
            // The window is full: wait for the load to receive.
            std::thread::sleep(Duration::from_micros(50));
            continue;
        };
        let Incoming::Reply(reply, _) = client.read()? else {
            continue;
        };
        unanswered.pop_front();
        unanswered_messages -= messages;
        let outcomes: Vec<(bool, Option<String>)> = match reply.results {
            Some(results) => results.into_iter().map(|r| (r.ok, r.error)).collect(),
            // One by one, or a batch refused whole.
            None => (0..messages).map(|_| (reply.ok, reply.error.clone())).collect(),
        };
        let mut refused = None;
        for (ok, error) in outcomes {
            match ok {
                true => accepted += 1,
                false => {
                    if shared.phase() == PHASE_MEASURE {
                        *recorded.errors.entry("refused".into()).or_default() += 1;
                    }
                    shared.failed.fetch_add(1, Ordering::Relaxed);
                    refused = error.or(refused);
                }
            }
        }
        if let Some(reason) = refused {
            shared.note_closed(&format!("the engine refused a send: {reason}"));
            // A refusal repeats until its cause passes.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_read_back_and_other_bodies_have_none() {
        let epoch = Instant::now();
        let mut body = vec![b'y'; 160];
        Stamp::write(&mut body, epoch);
        let sent = Stamp::read(&body, epoch).expect("stamped");
        assert!(sent >= epoch && sent <= Instant::now());
        assert_eq!(Stamp::read(&[b'y'; 160], epoch), None);
        assert_eq!(Stamp::read(b"lg-stamp", epoch), None, "too short");
        let mut short = vec![b'y'; 10];
        Stamp::write(&mut short, epoch);
        assert_eq!(short, vec![b'y'; 10], "too short to stamp: left alone");
    }
}
