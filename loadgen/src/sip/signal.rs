//! The embedded `msrp-signal`: the signaling library's core
//! ([`Signal::start`]) on a tokio runtime of its own thread, SIP on
//! loopback, feeding the engine under test through its control socket.
//! One thread, so that /proc tells its CPU time apart.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use anyhow::{anyhow, Context, Result};
use msrp_signaling::serve::{CallPolicy, ServeSettings, Signal, SipListen};
use msrp_signaling::sip::{EndpointConfig, Transport};
use tokio::sync::oneshot;

/// A running embedded `msrp-signal`.
pub struct EmbeddedSignal {
    /// Where its SIP listener for the run's transport is.
    pub sip: SocketAddr,
    /// Its thread's kernel id, for its CPU time.
    pub tid: i32,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedSignal {
    /// Starts it against the engine at `control`, listening on
    /// 127.0.0.1:0 for `transport`; `calls` sizes its call and
    /// transaction tables (a completed INVITE transaction lingers 32 s,
    /// RFC 6026 timer L, so a run's every call may be in them at once).
    pub fn start(control: &Path, transport: Transport, calls: usize) -> Result<EmbeddedSignal> {
        let control: PathBuf = control.to_path_buf();
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
                    let bounds = (calls * 2).max(100_000);
                    let settings = ServeSettings {
                        app: None,
                        sip: vec![SipListen {
                            transport,
                            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                        }],
                        engine: control,
                        host: None,
                        policy: CallPolicy::default(),
                        endpoint: EndpointConfig {
                            server_transactions_max: bounds,
                            client_transactions_max: bounds,
                            ..EndpointConfig::default()
                        },
                        calls_max: bounds,
                        state: None,
                    };
                    let signal = match Signal::start(settings).await {
                        Ok(signal) => signal,
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("{e:#}")));
                            return;
                        }
                    };
                    let sip = signal.local().first().map(|l| l.addr);
                    let _ = ready_tx.send(sip.map(|a| (a, tid)).ok_or_else(|| "no SIP listener".into()));
                    let _ = stopped.await;
                });
            })
            .context("starting the msrp-signal thread")?;
        let (sip, tid) = ready_rx
            .recv()
            .map_err(|_| anyhow!("the msrp-signal thread ended before it was ready"))?
            .map_err(|e| anyhow!("starting the embedded msrp-signal: {e}"))?;
        Ok(EmbeddedSignal {
            sip,
            tid,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for EmbeddedSignal {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
