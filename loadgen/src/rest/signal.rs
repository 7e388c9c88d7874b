//! The embedded `msrp-signal` with its REST API: the signaling library's
//! core ([`Signal::start`]) and [`msrp_signaling::rest::start`] on a
//! current-thread tokio runtime of their own thread, as the
//! `msrp-signal serve --http` binary runs them, feeding the engine under
//! test through its control socket. One thread, so that /proc tells its
//! CPU time apart.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::{anyhow, Context, Result};
use msrp_signaling::app::{App, AppConfig};
use msrp_signaling::rest::RestSettings;
use msrp_signaling::serve::{CallPolicy, ServeSettings, Signal, SipListen};
use msrp_signaling::sip::{EndpointConfig, Transport};
use tokio::sync::oneshot;

/// A running embedded `msrp-signal` serving REST.
pub struct EmbeddedRest {
    /// Where its REST listener is.
    pub http: SocketAddr,
    /// Its thread's kernel id, for its CPU time.
    pub tid: i32,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedRest {
    /// Starts it against the engine at `control`, REST on 127.0.0.1:0 (no
    /// tokens: every request is application `default`); `sessions` sizes
    /// the application layer's session table.
    pub fn start(control: &Path, sessions: usize) -> Result<EmbeddedRest> {
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
                    match serve(control, sessions).await {
                        Ok(http) => {
                            let _ = ready_tx.send(Ok((http, tid)));
                            let _ = stopped.await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("{e:#}")));
                        }
                    }
                });
            })
            .context("starting the msrp-signal thread")?;
        let (http, tid) = ready_rx
            .recv()
            .map_err(|_| anyhow!("the msrp-signal thread ended before it was ready"))?
            .map_err(|e| anyhow!("starting the embedded msrp-signal with REST: {e}"))?;
        Ok(EmbeddedRest {
            http,
            tid,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// The core and the REST listener on the current runtime; returns the
/// listener's address once both are up.
async fn serve(control: PathBuf, sessions: usize) -> Result<SocketAddr> {
    let defaults = AppConfig::default();
    let config = AppConfig {
        sessions_max: sessions.max(defaults.sessions_max),
        ..defaults
    };
    let app = Arc::new(Mutex::new(App::new(&config, fastrand::u32(..))));
    let settings = ServeSettings {
        app: Some(app.clone()),
        // 3PCC sends no SIP; the core wants a listener all the same.
        sip: vec![SipListen {
            transport: Transport::Udp,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        }],
        engine: control,
        host: None,
        policy: CallPolicy::default(),
        endpoint: EndpointConfig::default(),
        calls_max: sessions.max(1000),
        state: None,
    };
    let signal = Signal::start(settings).await?;
    let rest = RestSettings {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..RestSettings::default()
    };
    let served = msrp_signaling::rest::start(rest, signal.clone(), app).await?;
    Ok(served.local)
}

impl EmbeddedRest {
    /// Its threads: the core's and the application events' own
    /// (`msrp-signal-events`), both counted as msrp-signal's CPU.
    pub fn tids(&self) -> Vec<i32> {
        let mut tids = crate::procfs::threads_named("msrp-signal-eve");
        tids.push(self.tid);
        tids
    }
}

impl Drop for EmbeddedRest {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
