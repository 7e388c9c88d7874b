//! The embedded `msrp-signal` with its REST API: the signaling library's
//! core ([`Signal::start`]) and [`msrp_signaling::rest::start`] on a
//! current-thread tokio runtime of their own thread (`signal_thread`), as
//! the `msrp-signal serve --http` binary runs them, feeding the engine
//! under test through its control socket. The application layer's engine
//! events run on a second thread of msrp-signal's own; both count as its
//! CPU (`EmbeddedRest::tids`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use msrp_signaling::app::{App, AppConfig};
use msrp_signaling::rest::RestSettings;
use msrp_signaling::serve::{CallPolicy, ServeSettings, Signal, SipListen};
use msrp_signaling::sip::{EndpointConfig, Transport};

use crate::signal_thread::SignalThread;

/// A running embedded `msrp-signal` serving REST.
pub struct EmbeddedRest {
    /// Where its REST listener is.
    pub http: SocketAddr,
    /// Its thread's kernel id, for its CPU time.
    pub tid: i32,
    _thread: SignalThread,
}

impl EmbeddedRest {
    /// Starts it against the engine at `control`, REST on 127.0.0.1:0 (no
    /// tokens: every request is application `default`); `sessions` sizes
    /// the application layer's session table.
    pub fn start(control: &Path, sessions: usize) -> Result<EmbeddedRest> {
        let control: PathBuf = control.to_path_buf();
        let thread = SignalThread::start("the embedded msrp-signal with REST", move || {
            serve(control, sessions)
        })?;
        Ok(EmbeddedRest {
            http: thread.addr,
            tid: thread.tid,
            _thread: thread,
        })
    }

    /// Its threads: the core's and the application events' own
    /// (`msrp-signal-events`), both counted as msrp-signal's CPU.
    pub fn tids(&self) -> Vec<i32> {
        let mut tids = crate::procfs::threads_named("msrp-signal-eve");
        tids.push(self.tid);
        tids
    }
}

/// The core and the REST listener on the current runtime; returns the
/// listener's address once both are up.
async fn serve(control: PathBuf, sessions: usize) -> Result<(SocketAddr, Signal)> {
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
    let served = msrp_signaling::rest::start(rest, signal.clone(), app, None).await?;
    Ok((served.local, signal))
}
