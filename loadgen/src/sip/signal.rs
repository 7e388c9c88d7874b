//! The embedded `msrp-signal`: the signaling library's core
//! ([`Signal::start`]) on a tokio runtime of its own thread, SIP on
//! loopback, feeding the engine under test through its control socket.
//! One thread, so that /proc tells its CPU time apart.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use msrp_signaling::serve::{CallPolicy, ServeSettings, Signal, SipListen};
use msrp_signaling::sip::{EndpointConfig, SourceLimits, Transport};

use crate::signal_thread::SignalThread;

/// A running embedded `msrp-signal`.
pub struct EmbeddedSignal {
    /// Where its SIP listener for the run's transport is.
    pub sip: SocketAddr,
    /// Its thread's kernel id, for its CPU time.
    pub tid: i32,
    _thread: SignalThread,
}

impl EmbeddedSignal {
    /// Starts it against the engine at `control`, listening on
    /// 127.0.0.1:0 for `transport`; `calls` sizes its call and
    /// transaction tables (a completed INVITE transaction lingers 32 s,
    /// RFC 6026 timer L, so a run's every call may be in them at once).
    pub fn start(control: &Path, transport: Transport, calls: usize) -> Result<EmbeddedSignal> {
        let control: PathBuf = control.to_path_buf();
        let thread = SignalThread::start("the embedded msrp-signal", move || async move {
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
                    // Every call comes from the load's one address.
                    sources: SourceLimits::off(),
                    ..EndpointConfig::default()
                },
                calls_max: bounds,
                state: None,
            };
            let signal = Signal::start(settings).await?;
            let sip = signal
                .local()
                .first()
                .map(|l| l.addr)
                .ok_or_else(|| anyhow!("no SIP listener"))?;
            Ok((sip, signal))
        })?;
        Ok(EmbeddedSignal {
            sip: thread.addr,
            tid: thread.tid,
            _thread: thread,
        })
    }
}
