//! Single-message POSTs that arrive together leave as one engine batch:
//! each handler hands its send to this queue and waits for its own
//! result; a task takes whatever is queued (up to a batch's bounds) and
//! sends it as one `batch` frame, or a lone `send` when only one waits.
//! The engine then pays per frame, not per request, whatever form the
//! application chose; the order of one session's messages is kept (the
//! queue is FIFO and a batch's operations run in order).

use std::sync::Arc;

use msrp_engine::control::{BatchOp, ClientError, SendRequest};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::serve::Signal;
use msrp_engine::control::AsyncClient;

/// Sends waiting for the engine, at most; beyond it a POST waits.
const QUEUE_DEPTH: usize = 4096;
/// Operations and body octets in one frame (msrpd's defaults are 1024
/// and 16 MiB).
const BATCH_OPS: usize = 256;
const BATCH_BYTES: usize = 4 << 20;
/// Frames in flight at once.
const IN_FLIGHT: usize = 4;

struct Pending {
    request: SendRequest,
    body: Vec<u8>,
    reply: oneshot::Sender<Result<u64, ClientError>>,
}

/// The queue's handle (clones share it).
#[derive(Clone)]
pub(crate) struct Coalescer {
    queue: mpsc::Sender<Pending>,
}

impl Coalescer {
    /// Sends go on the engine connection of the moment (`signal`'s).
    pub fn start(signal: Signal) -> Coalescer {
        let (queue, rx) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(run(rx, signal));
        Coalescer { queue }
    }

    /// Sends one message; the engine's number for it.
    pub async fn send(&self, request: SendRequest, body: Vec<u8>) -> Result<u64, ClientError> {
        let (reply, result) = oneshot::channel();
        self.queue
            .send(Pending { request, body, reply })
            .await
            .map_err(|_| ClientError::Closed)?;
        result.await.map_err(|_| ClientError::Closed)?
    }
}

async fn run(mut rx: mpsc::Receiver<Pending>, signal: Signal) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        // Whatever queued meanwhile (behind the frames in flight) joins.
        let mut group = vec![first];
        let mut bytes = group[0].body.len();
        while group.len() < BATCH_OPS && bytes < BATCH_BYTES {
            match rx.try_recv() {
                Ok(pending) => {
                    bytes += pending.body.len();
                    group.push(pending);
                }
                Err(_) => break,
            }
        }
        let Some(engine) = signal.engine() else {
            for pending in group {
                let _ = pending.reply.send(Err(ClientError::Closed));
            }
            continue;
        };
        tokio::spawn(async move {
            match group.len() {
                1 => lone(engine, group.pop().expect("one")).await,
                _ => batch(engine, group).await,
            }
            drop(slot);
        });
    }
}

async fn lone(engine: AsyncClient, pending: Pending) {
    let _ = pending
        .reply
        .send(engine.send(pending.request, &pending.body).await);
}

/// Sends `sends` (each a request and its body) as one engine `batch`
/// frame: the result of each, in order, or the frame's own failure.
pub(super) async fn send_batch<B: AsRef<[u8]>>(
    engine: &AsyncClient,
    sends: impl Iterator<Item = (SendRequest, B)>,
) -> Result<Vec<Result<u64, ClientError>>, ClientError> {
    let mut payload = Vec::new();
    let ops: Vec<BatchOp> = sends
        .map(|(mut request, body)| {
            let body = body.as_ref();
            payload.extend_from_slice(body);
            request.payload_len = Some(body.len() as u64);
            BatchOp::Send(request)
        })
        .collect();
    let count = ops.len();
    let mut outcomes = engine.batch(ops, &payload).await?.into_iter();
    Ok((0..count)
        .map(|_| match outcomes.next() {
            Some(outcome) if outcome.ok => outcome
                .message
                .ok_or_else(|| ClientError::Refused("the engine gave no message number".into())),
            Some(outcome) => Err(ClientError::Refused(outcome.error.unwrap_or_default())),
            None => Err(ClientError::Refused("the engine gave no result".into())),
        })
        .collect())
}

async fn batch(engine: AsyncClient, group: Vec<Pending>) {
    let (sends, replies): (Vec<_>, Vec<_>) = group
        .into_iter()
        .map(|pending| ((pending.request, pending.body), pending.reply))
        .unzip();
    match send_batch(&engine, sends.into_iter()).await {
        Ok(results) => {
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        }
        Err(error) => {
            let text = error.to_string();
            for reply in replies {
                let again = match &error {
                    ClientError::Closed => ClientError::Closed,
                    _ => ClientError::Refused(text.clone()),
                };
                let _ = reply.send(Err(again));
            }
        }
    }
}
