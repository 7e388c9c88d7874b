//! The thread an embedded `msrp-signal` runs on: a current-thread tokio
//! runtime of its own, named `msrp-signal`, so that /proc tells its CPU
//! time apart, as the `msrp-signal serve` binary runs it. Shared by
//! `--mode sip` (`sip/signal.rs`) and `--mode rest` (`rest/signal.rs`).

use std::future::Future;
use std::net::SocketAddr;
use std::thread::JoinHandle;

use anyhow::{anyhow, Context, Result};
use tokio::sync::oneshot;

/// A running embedded msrp-signal; dropping it stops the runtime and
/// joins the thread.
pub struct SignalThread {
    /// The address `serve` reported (its SIP or REST listener).
    pub addr: SocketAddr,
    /// The thread's kernel id, for its CPU time.
    pub tid: i32,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl SignalThread {
    /// Runs `serve` on the thread; it returns the address to report and
    /// whatever must live until the thread stops (the `Signal` handle).
    /// `what` names it in errors.
    pub fn start<F, Fut, K>(what: &'static str, serve: F) -> Result<SignalThread>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(SocketAddr, K)>>,
    {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(SocketAddr, i32), String>>();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("msrp-signal".into())
            .spawn(move || {
                // SAFETY: gettid has no preconditions.
                let tid = unsafe { libc::gettid() };
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("a tokio runtime: {e}")));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match serve().await {
                        Ok((addr, _alive)) => {
                            let _ = ready_tx.send(Ok((addr, tid)));
                            let _ = stopped.await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("{e:#}")));
                        }
                    }
                });
            })
            .context("starting the msrp-signal thread")?;
        let (addr, tid) = ready_rx
            .recv()
            .map_err(|_| anyhow!("the msrp-signal thread ended before it was ready"))?
            .map_err(|e| anyhow!("starting {what}: {e}"))?;
        Ok(SignalThread {
            addr,
            tid,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for SignalThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
