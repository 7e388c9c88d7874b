//! The shell of a transfer: one tokio task per transfer drives its
//! [`Machine`], and one task per attempt does what an attempt is: for an
//! MSRP destination, an INVITE with an RFC 5547 push offer (RFC 5547 5,
//! 8.2.1: `sendonly`, `a=file-selector` with name, type, size and sha-1,
//! a new `a=file-transfer-id`), the file sent over MSRP with
//! `Success-Report: yes` (RFC 4975 7.1.2), the success REPORT awaited,
//! then BYE; for a `file://` destination, a local copy.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use msrp_engine::control::SendRequest;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::machine::{Action, Failure, Machine};
use super::{Dest, Note, ObjectSpec, Sink, TransferSpec, Transfers};
use crate::app::{self, EventType};
use crate::sdp::{Direction, FileAttributes, FileHash, FileSelector, FileType, OfferOptions};
use crate::serve::{CallError, OutboundCall};
use crate::sip::{NameAddr, Uri};

/// How long the BYE of a stopped send waits after its `#` chunk.
const INTERRUPT_GRACE: Duration = Duration::from_millis(500);

/// What an object's source measured when it was first sent.
#[derive(Clone, Debug)]
struct Facts {
    size: u64,
    sha1: [u8; 20],
}

/// Reads the whole file once, in a blocking thread.
async fn measure(path: PathBuf) -> Result<Facts, Failure> {
    crate::digest::sha1_of_file_async(path.clone())
        .await
        .map(|(size, sha1)| Facts { size, sha1 })
        .map_err(|e| Failure::local(format!("{}: {e}", path.display())))
}

/// Runs one transfer to its end.
pub(super) async fn run(
    transfers: Transfers,
    id: String,
    spec: TransferSpec,
    mut sink: Box<dyn Sink>,
    mut stop: mpsc::Receiver<()>,
) {
    let mut machine = Machine::new(spec.plan(transfers.config.delete_before_event), Instant::now());
    let mut facts: Vec<Option<Facts>> = vec![None; spec.objects.len()];
    let mut aborts: Vec<Option<oneshot::Sender<()>>> = (0..spec.objects.len()).map(|_| None).collect();
    let (done_tx, mut done_rx) =
        mpsc::channel::<(usize, Option<Facts>, Result<(), Failure>)>(spec.objects.len().max(1));
    let mut stop_open = true;
    loop {
        while let Some(action) = machine.poll_action() {
            match action {
                Action::Start { object, attempt } => {
                    let (abort_tx, abort_rx) = oneshot::channel();
                    aborts[object] = Some(abort_tx);
                    let task = Attempt {
                        transfers: transfers.clone(),
                        transfer: id.clone(),
                        tag: spec.tag.clone(),
                        object: spec.objects[object].clone(),
                        attempt,
                        facts: facts[object].clone(),
                    };
                    let done = done_tx.clone();
                    tokio::spawn(async move {
                        let (facts, outcome) = task.run(abort_rx).await;
                        let _ = done.send((object, facts, outcome)).await;
                    });
                }
                Action::Abort { object } => {
                    if let Some(abort) = aborts[object].take() {
                        let _ = abort.send(());
                    }
                }
                Action::ObjectDone { object, duration } => {
                    sink.note(
                        &id,
                        Note::ObjectDone {
                            objid: spec.objects[object].objid.clone(),
                            duration,
                        },
                    )
                    .await
                }
                Action::Delete { object } => {
                    let src = spec.objects[object].src.clone();
                    let removed = tokio::task::spawn_blocking(move || std::fs::remove_file(&src)).await;
                    match removed {
                        Ok(Ok(())) => {
                            tracing::info!(transfer = %id, src = %spec.objects[object].src.display(), "source deleted after its transfer")
                        }
                        Ok(Err(error)) => {
                            tracing::warn!(transfer = %id, src = %spec.objects[object].src.display(), %error, "source not deleted")
                        }
                        Err(error) => tracing::warn!(transfer = %id, %error, "source not deleted"),
                    }
                }
                Action::Finished {
                    end,
                    duration,
                    object,
                    failure,
                } => {
                    let objid = object
                        .or(machine.last_object())
                        .map(|i| spec.objects[i].objid.clone());
                    tracing::info!(transfer = %id, end = end.name(), ms = duration.as_millis() as u64, ?failure, "transfer ended");
                    transfers.finished(&id, end);
                    sink.note(
                        &id,
                        Note::Finished {
                            end,
                            duration,
                            objid,
                            failure,
                        },
                    )
                    .await;
                }
            }
        }
        if machine.is_finished() {
            // The aborted attempts hang up on their own.
            return;
        }
        let timeout = machine.poll_timeout();
        let sleep = async {
            match timeout {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some((object, measured, outcome)) = done_rx.recv() => {
                if measured.is_some() {
                    facts[object] = measured;
                }
                aborts[object] = None;
                machine.attempt_done(Instant::now(), object, outcome);
            }
            stopped = stop.recv(), if stop_open => {
                match stopped {
                    Some(()) => machine.terminate(Instant::now()),
                    None => stop_open = false,
                }
            }
            () = sleep => machine.handle_timeout(Instant::now()),
        }
    }
}

/// One send of one object.
struct Attempt {
    transfers: Transfers,
    transfer: String,
    tag: Option<String>,
    object: ObjectSpec,
    attempt: u32,
    facts: Option<Facts>,
}

impl Attempt {
    async fn run(self, abort: oneshot::Receiver<()>) -> (Option<Facts>, Result<(), Failure>) {
        let facts = match (self.facts.clone(), &self.object.body) {
            (Some(facts), _) => facts,
            (None, Some(body)) => Facts {
                size: body.len() as u64,
                sha1: sha1_smol::Sha1::from(&body[..]).digest().bytes(),
            },
            (None, None) => match measure(self.object.src.clone()).await {
                Ok(facts) => facts,
                Err(failure) => return (None, Err(failure)),
            },
        };
        let outcome = match &self.object.dest {
            Dest::File(path) => copy(&self.object, path.clone()).await,
            Dest::Msrp { .. } => {
                let mut session = None;
                let (result, stopped) = tokio::select! {
                    result = self.over_msrp(&facts, &mut session) => (result, false),
                    _ = abort => (Err(Failure::local("the transfer was stopped")), true),
                };
                if let (true, Some(session)) = (stopped, &session) {
                    self.interrupt(session).await;
                }
                if let Some(session) = session {
                    let reason = match &result {
                        Ok(()) => "the file was delivered".to_string(),
                        Err(failure) => format!("transfer: {}", failure.reason),
                    };
                    let _ = self.transfers.signal.app_hangup(&session, &reason).await;
                    // A call that never got a dialog (the INVITE not sent)
                    // has no hangup of its own: the session ends here, and
                    // its watcher with it.
                    let now = app::unix_ms(std::time::SystemTime::now());
                    let mut app = app::lock(&self.transfers.app);
                    app.ended(&session, app::EndedBy::Local, &reason, None, now);
                    app.unwatch(&session);
                }
                result
            }
        };
        (Some(facts), outcome)
    }

    /// A stopped send: the MSRP session is closed first, so that the
    /// message ends with `#` on the wire (RFC 4975 7.1); the BYE, which
    /// would close the peer's session under it, follows after a grace. The
    /// `#` waits behind whatever chunk octets are already queued on the
    /// connection.
    async fn interrupt(&self, session: &str) {
        if self
            .transfers
            .signal
            .app_close_media(session, "the transfer was stopped")
            .await
            .is_ok()
        {
            tokio::time::sleep(INTERRUPT_GRACE).await;
        }
    }

    async fn over_msrp(&self, facts: &Facts, session: &mut Option<String>) -> Result<(), Failure> {
        let Dest::Msrp {
            offerer,
            answerer,
            file_name,
        } = &self.object.dest
        else {
            return Err(Failure::local("not an MSRP destination"));
        };
        let to = Uri::parse(answerer).map_err(|e| Failure::local(format!("answerer {answerer}: {e}")))?;
        let from = NameAddr::parse(offerer).map_err(|e| Failure::local(format!("offerer {offerer}: {e}")))?;
        let signal = &self.transfers.signal;
        let (target, transport) = signal.next_hop(&to).await.map_err(Failure::local)?;
        let owner = self.transfers.owner_of(&self.transfer);
        let (id, mut watch) = {
            let mut app = app::lock(&self.transfers.app);
            let now = app::unix_ms(std::time::SystemTime::now());
            let id = app
                .new_outbound(
                    owner,
                    self.tag.clone(),
                    to.to_string(),
                    Some(from.to_string()),
                    now,
                )
                .map_err(|e| Failure::local(e.to_string()))?;
            let watch = app.watch(&id);
            (id, watch)
        };
        *session = Some(id.clone());
        let content_type = self.object.content_type.clone();
        // RFC 5547 push for a file; inline content is a plain message.
        let file = self.object.body.is_none().then(|| FileAttributes {
            selector: Some(FileSelector {
                name: Some(file_name.clone()),
                file_type: FileType::parse(&content_type).ok(),
                size: Some(facts.size),
                hashes: vec![FileHash::sha1_digest(facts.sha1)],
                extensions: Vec::new(),
            }),
            transfer_id: Some(format!(
                "{}-{}-{}",
                self.transfer, self.object.objid, self.attempt
            )),
            disposition: Some("attachment".into()),
            ..FileAttributes::default()
        });
        let call = OutboundCall {
            to,
            from: Some(from),
            target,
            transport,
            options: OfferOptions {
                direction: Direction::SendOnly,
                file,
                accept_types: Some(vec![content_type.clone()]),
                ..OfferOptions::default()
            },
        };
        let headers = self.transfers.config.headers.clone();
        signal
            .app_invite(&id, call, headers)
            .await
            .map_err(|error| match error {
                CallError::Failed { status, reason } => Failure {
                    sip_status: Some(status),
                    msrp_status: None,
                    reason,
                },
                other => Failure::local(other.to_string()),
            })?;
        // The call: connected, or refused.
        loop {
            let event = next(&mut watch).await?;
            match event.0 {
                EventType::Connected => break,
                EventType::Hangup => return Err(ended(&event.1)),
                _ => {}
            }
        }
        let leg = {
            let app = app::lock(&self.transfers.app);
            app.sessions
                .by_id(&id)
                .and_then(|s| s.first_leg())
                .map(|leg| leg.engine_session.clone())
                .ok_or_else(|| Failure::local("the session has no MSRP leg"))?
        };
        let engine = signal
            .engine()
            .ok_or_else(|| Failure::local("no connection to msrpd"))?;
        let request = SendRequest {
            file: self
                .object
                .body
                .is_none()
                .then(|| self.object.src.display().to_string()),
            success_report: Some(true),
            ..SendRequest::new(&leg, &content_type)
        };
        let body = self.object.body.as_deref().unwrap_or_default();
        let number = engine
            .send(request, body)
            .await
            .map_err(|e| Failure::local(format!("msrpd refused the send: {e}")))?;
        app::lock(&self.transfers.app).sent(&id, number, facts.size, app::cpim::MessageClass::Content, true);
        let number = number.to_string();
        loop {
            let (kind, fields) = next(&mut watch).await?;
            let ours = fields.get("message").and_then(Value::as_str) == Some(number.as_str());
            match kind {
                EventType::Delivered if ours => return Ok(()),
                EventType::Failed if ours => {
                    return Err(Failure {
                        sip_status: None,
                        msrp_status: fields.get("status").and_then(Value::as_u64).map(|s| s as u16),
                        reason: fields
                            .get("reason")
                            .and_then(Value::as_str)
                            .unwrap_or("the message failed")
                            .to_string(),
                    })
                }
                EventType::Hangup => return Err(ended(&fields)),
                _ => {}
            }
        }
    }
}

/// The next event of the watched session, its type and fields.
async fn next(watch: &mut mpsc::Receiver<Arc<app::AppEvent>>) -> Result<(EventType, Value), Failure> {
    let event = watch
        .recv()
        .await
        .ok_or_else(|| Failure::local("the session ended"))?;
    let fields = serde_json::from_slice(&event.json).unwrap_or(Value::Null);
    Ok((event.kind, fields))
}

/// A `hangup` as the attempt's failure: the SIP status of a refused call.
fn ended(fields: &Value) -> Failure {
    Failure {
        sip_status: fields.get("status").and_then(Value::as_u64).map(|s| s as u16),
        msrp_status: None,
        reason: fields
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("the call ended")
            .to_string(),
    }
}

/// A `file://` destination: the source copied (appended with `append`,
/// refused over an existing file without `overwrite`).
async fn copy(object: &ObjectSpec, dest: PathBuf) -> Result<(), Failure> {
    let (src, append, overwrite) = (object.src.clone(), object.append, object.overwrite);
    tokio::task::spawn_blocking(move || copy_file(&src, &dest, append, overwrite))
        .await
        .map_err(|e| Failure::local(format!("copying: {e}")))?
}

fn copy_file(src: &Path, dest: &Path, append: bool, overwrite: bool) -> Result<(), Failure> {
    let fail = |e: std::io::Error| Failure::local(format!("{} -> {}: {e}", src.display(), dest.display()));
    let mut input = std::fs::File::open(src).map_err(fail)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if append {
        options.append(true).create(true);
    } else if overwrite {
        options.truncate(true).create(true);
    } else {
        options.create_new(true);
    }
    let mut output = options.open(dest).map_err(fail)?;
    std::io::copy(&mut input, &mut output).map_err(fail)?;
    output.sync_all().map_err(fail)?;
    Ok(())
}

/// How long an object has been going, for `transfer.duration`.
pub fn millis(duration: Duration) -> u64 {
    duration.as_millis().min(u128::from(u64::MAX)) as u64
}
