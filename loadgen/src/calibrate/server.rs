//! The raw loopback server: an echo for the small phase, a sink for the
//! bulk phase, with no parsing at all.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::{TcpListener, TcpStream};

use super::phase::{Phase, Shared};
use super::READ_BYTES;

/// Accepts connections until told to stop (the wake-up connection that
/// follows `stop` is dropped unserved), then waits for those it serves to
/// end, which they do when the client closes its side.
pub(super) async fn serve_all(
    listener: std::net::TcpListener,
    phase: Phase,
    shared: Arc<Shared>,
) -> Result<()> {
    let listener = TcpListener::from_std(listener);
    let mut tasks = Vec::new();
    let mut failed = None;
    loop {
        match listener.accept().await {
            Ok(_) if shared.stopping() => break,
            Ok((stream, peer)) => {
                let shared = shared.clone();
                tasks.push(tokio_uring::spawn(async move {
                    let result = serve(stream, phase, &shared)
                        .await
                        .with_context(|| format!("serving {peer}"));
                    if result.is_err() {
                        shared.stop();
                    }
                    result
                }));
            }
            Err(e) => {
                shared.stop();
                failed = Some(anyhow::Error::new(e).context("accepting"));
                break;
            }
        }
    }
    drop(listener);
    for task in tasks {
        let result = task.await.map_err(|e| anyhow!("a connection's task failed: {e}"));
        if let Err(e) = result.and_then(|r| r) {
            failed.get_or_insert(e);
        }
    }
    failed.map_or(Ok(()), Err)
}

/// The raw server: echo exactly what was read (small), or drop it
/// and count the octets (bulk); no parsing at all, the least work a server
/// on one io_uring thread can do with these bytes.
async fn serve(stream: TcpStream, phase: Phase, shared: &Shared) -> Result<()> {
    stream.set_nodelay(true).context("setting TCP_NODELAY")?;
    let mut buf = vec![0u8; READ_BYTES];
    loop {
        let (result, returned) = stream.read(buf).await;
        let n = result.context("reading")?;
        if n == 0 {
            return Ok(());
        }
        buf = match phase {
            Phase::Bulk => {
                shared.progress.fetch_add(n as u64, Ordering::Relaxed);
                returned
            }
            Phase::Small => {
                let (result, slice) = stream.write_all(returned.slice(..n)).await;
                result.context("echoing")?;
                slice.into_inner()
            }
        };
    }
}
