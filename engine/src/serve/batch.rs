//! A control `batch` (protocol version 2): many operations in one frame,
//! their bodies slices of its payload (never copied), one reply with a
//! result per operation in order. Consecutive sends go to their shards as
//! one command per shard; a create, close or report between them first lets the
//! sends before it go, so every operation sees the ones before it done.

use bytes::Bytes;
use tokio::sync::oneshot;

use super::control_server::{CommandError, ControlServer, PendingReply};
use crate::control::{BatchOp, CloseRequest, OpResult, Reply};
use crate::shard::{OutgoingSpec, ShardCommand, ShardError};

/// Where an operation's result will come from.
enum Slot {
    Done(OpResult),
    /// A create, close or report, answered as a lone command is.
    Reply(PendingReply),
    /// The `index`th result of the `group`th shard command.
    Grouped {
        group: usize,
        index: usize,
    },
}

/// The sends for one shard gathered since the last flush.
#[derive(Default)]
struct Gathering {
    sends: Vec<(String, OutgoingSpec)>,
    slots: Vec<usize>,
}

type GroupAnswer = oneshot::Receiver<Vec<Result<u64, ShardError>>>;

impl ControlServer {
    pub(super) async fn batch(
        &self,
        id: u64,
        ops: Vec<BatchOp>,
        payload: Bytes,
    ) -> Result<PendingReply, CommandError> {
        if ops.len() > self.config.batch_ops_max {
            return Err(CommandError::BatchOps {
                ops: ops.len(),
                max: self.config.batch_ops_max,
            });
        }
        if payload.len() as u64 > self.config.batch_payload_bytes_max {
            return Err(CommandError::BatchPayload {
                len: payload.len() as u64,
                max: self.config.batch_payload_bytes_max,
            });
        }
        let claimed: u64 = ops
            .iter()
            .map(|op| match op {
                BatchOp::Send(send) => send.payload_len.unwrap_or(0),
                _ => 0,
            })
            .fold(0u64, u64::saturating_add);
        if claimed != payload.len() as u64 {
            return Err(CommandError::BatchPayloadLens {
                claimed,
                len: payload.len() as u64,
            });
        }
        let mut slots = Vec::with_capacity(ops.len());
        let mut gathering: Vec<Gathering> = (0..self.shards.len()).map(|_| Gathering::default()).collect();
        let mut groups: Vec<GroupAnswer> = Vec::new();
        let mut offset = 0;
        // Consecutive sends are routed under one lock of the directory,
        // let go before anything that awaits.
        let mut router = None;
        for op in ops {
            match op {
                BatchOp::Send(send) => {
                    let len = send.payload_len.unwrap_or(0) as usize;
                    let body = payload.slice(offset..offset + len);
                    offset += len;
                    let route = router
                        .get_or_insert_with(|| self.directory.router())
                        .route(&send.session_id);
                    match self.prepare_send(send, route, body) {
                        Ok((shard, session_id, spec)) => {
                            let g = &mut gathering[shard];
                            g.slots.push(slots.len());
                            g.sends.push((session_id, spec));
                            // Filled in when the group is dispatched.
                            slots.push(Slot::Done(OpResult::default()));
                        }
                        Err(error) => slots.push(Slot::Done(failed(error.to_string()))),
                    }
                }
                BatchOp::CreateSession(descriptor) => {
                    router = None;
                    self.dispatch(&mut gathering, &mut groups, &mut slots).await?;
                    let reply = self.create_session(id, descriptor).await;
                    slots.push(settled(id, reply));
                }
                BatchOp::CloseSession(CloseRequest { session_id, reason }) => {
                    router = None;
                    self.dispatch(&mut gathering, &mut groups, &mut slots).await?;
                    let reason = reason.unwrap_or_else(|| "closed by the application".into());
                    let reply = self.close_session(id, session_id, reason).await;
                    slots.push(settled(id, reply));
                }
                BatchOp::Report(report) => {
                    router = None;
                    self.dispatch(&mut gathering, &mut groups, &mut slots).await?;
                    let reply = self.report(id, report).await;
                    slots.push(settled(id, reply));
                }
            }
        }
        drop(router);
        self.dispatch(&mut gathering, &mut groups, &mut slots).await?;
        Ok(Box::pin(async move {
            let mut answers = Vec::with_capacity(groups.len());
            for answer in groups {
                answers.push(answer.await.ok());
            }
            let mut results = Vec::with_capacity(slots.len());
            for slot in slots {
                results.push(match slot {
                    Slot::Done(result) => result,
                    Slot::Reply(reply) => reply.await.into(),
                    Slot::Grouped { group, index } => match answers[group].as_mut().map(|a| &mut a[index]) {
                        Some(Ok(message)) => OpResult {
                            ok: true,
                            message: Some(*message),
                            ..OpResult::default()
                        },
                        Some(Err(error)) => failed(error.to_string()),
                        None => failed(ShardError::Stopped.to_string()),
                    },
                });
            }
            Reply {
                results: Some(results),
                ..Reply::ok(id)
            }
        }))
    }

    /// Hands each shard the sends gathered for it, as one command.
    async fn dispatch(
        &self,
        gathering: &mut [Gathering],
        groups: &mut Vec<GroupAnswer>,
        slots: &mut [Slot],
    ) -> Result<(), CommandError> {
        for (shard, g) in gathering.iter_mut().enumerate() {
            if g.sends.is_empty() {
                continue;
            }
            let sends = std::mem::take(&mut g.sends);
            let members = std::mem::take(&mut g.slots);
            let (reply, answer) = oneshot::channel();
            self.shards[shard]
                .send(ShardCommand::SendMany { sends, reply })
                .await
                .map_err(|_| ShardError::Stopped)?;
            let group = groups.len();
            for (index, &slot) in members.iter().enumerate() {
                slots[slot] = Slot::Grouped { group, index };
            }
            groups.push(answer);
        }
        Ok(())
    }
}

fn failed(error: String) -> OpResult {
    OpResult {
        ok: false,
        error: Some(error),
        ..OpResult::default()
    }
}

fn settled(id: u64, reply: Result<PendingReply, CommandError>) -> Slot {
    match reply {
        Ok(reply) => Slot::Reply(reply),
        Err(error) => Slot::Done(OpResult::from(Reply::error(id, error.to_string()))),
    }
}
