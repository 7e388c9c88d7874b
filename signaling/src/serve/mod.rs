//! `msrp-signal serve`: the thin tokio shell around the sans-IO
//! [`UserAgent`]. One core task owns the user agent and the call table;
//! transport tasks (`net`) and call tasks (`calls`, which talk to the
//! engine) report to it over one bounded channel, so nothing here waits
//! on the network or the engine while holding the SIP state.

mod calls;
pub mod config;
mod core_task;
mod journal;
mod net;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use msrp_engine::control::{AsyncClient, EngineEvent, EventKind, EventStream, Subscription};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::sdp::{LocalEndpoint, OfferOptions};
use crate::sip::{CallId, EndpointConfig, NameAddr, Transport, UaConfig, Uri, UserAgent};
use calls::Decision;
pub use config::{CallPolicy, SipListen};
use core_task::Core;
use net::NetInput;

/// Inputs queued for the core task; senders wait beyond it.
const CORE_QUEUE_DEPTH: usize = 8192;

/// Everything `serve` needs.
#[derive(Clone, Debug)]
pub struct ServeSettings {
    pub sip: Vec<SipListen>,
    /// msrpd's control socket.
    pub engine: PathBuf,
    /// Our host in Via and Contact (default: the first listener's IP, or
    /// 127.0.0.1 for a wildcard).
    pub host: Option<String>,
    pub policy: CallPolicy,
    pub endpoint: EndpointConfig,
    pub calls_max: usize,
    /// The dialog journal (`journal.rs`): the dialogs a restart must end.
    /// `None` keeps none (a library user that ends its own calls).
    pub state: Option<PathBuf>,
}

/// An outbound call for the library's UAC (`msrp-loadgen --mode sip`,
/// tests; REST later).
#[derive(Clone, Debug)]
pub struct OutboundCall {
    pub to: Uri,
    pub from: Option<NameAddr>,
    /// The next hop and transport.
    pub target: SocketAddr,
    pub transport: Transport,
    pub options: OfferOptions,
}

/// A call of ours that was answered and whose engine sessions exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Established {
    pub call: CallId,
    /// The engine session-ids, one per MSRP media line.
    pub sessions: Vec<String>,
    /// How long INVITE -> 200 took.
    pub setup: Duration,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CallError {
    #[error("the call failed: {status} {reason}")]
    Failed { status: u16, reason: String },
    #[error("{0}")]
    Local(String),
    #[error("msrp-signal is shutting down")]
    Gone,
}

enum Input {
    Net(NetInput),
    Decision(Decision),
    Engine(EngineEvent),
    EngineGone(String),
    EngineBack(AsyncClient, EventStream),
    Invite(Box<OutboundCall>, oneshot::Sender<Result<Established, CallError>>),
    Hangup(CallId, String),
    Shutdown(oneshot::Sender<()>),
}

/// A running `msrp-signal`: where it listens, and the library's UAC.
#[derive(Clone)]
pub struct Signal {
    inputs: mpsc::Sender<Input>,
    local: Vec<SipListen>,
}

impl Signal {
    /// Binds the SIP listeners, connects to msrpd and starts the core task
    /// on the current tokio runtime.
    pub async fn start(settings: ServeSettings) -> anyhow::Result<Signal> {
        let (client, events) = AsyncClient::connect(&settings.engine)
            .await
            .map_err(|e| anyhow::anyhow!("msrpd at {}: {e}", settings.engine.display()))?;
        let (advertise, local) = engine_endpoint(&client).await?;
        subscribe(&client, &settings.policy.tag).await?;
        let (inputs, rx) = mpsc::channel(CORE_QUEUE_DEPTH);
        let conn_ids = Arc::new(AtomicU64::new(1));
        let mut udp = None;
        let mut bound = Vec::new();
        for listen in &settings.sip {
            match listen.transport {
                Transport::Udp => {
                    let socket = Arc::new(net::bind_udp(listen.addr)?);
                    let addr = socket.local_addr()?;
                    bound.push(SipListen {
                        transport: Transport::Udp,
                        addr,
                    });
                    let reader = socket.clone();
                    tokio::spawn(net::udp_reader(reader, inputs.clone()));
                    let (queue, rx) = mpsc::channel(net::UDP_SEND_QUEUE_MAX);
                    tokio::spawn(net::udp_writer(socket.clone(), rx));
                    udp = Some(net::UdpOut { socket, queue });
                }
                Transport::Tcp => {
                    let listener = TcpListener::bind(listen.addr).await?;
                    let addr = listener.local_addr()?;
                    bound.push(SipListen {
                        transport: Transport::Tcp,
                        addr,
                    });
                    let ids = conn_ids.clone();
                    tokio::spawn(net::tcp_acceptor(listener, inputs.clone(), ids));
                }
            }
        }
        if settings.host.is_none() && bound.iter().any(|l| l.addr.ip().is_unspecified()) {
            tracing::warn!("listening on a wildcard address; Via and Contact name 127.0.0.1 (set --host)");
        }
        let host = settings.host.clone().unwrap_or_else(|| match bound.first() {
            Some(listen) if !listen.addr.ip().is_unspecified() => listen.addr.ip().to_string(),
            _ => "127.0.0.1".into(),
        });
        let port_of = |t: Transport| bound.iter().find(|l| l.transport == t).map(|l| l.addr.port());
        let ua = UserAgent::new(UaConfig {
            host,
            udp_port: port_of(Transport::Udp),
            tcp_port: port_of(Transport::Tcp),
            calls_max: settings.calls_max,
            endpoint: settings.endpoint.clone(),
            ..UaConfig::default()
        });
        tracing::info!(engine = %settings.engine.display(), %advertise, "msrp-signal connected to msrpd");
        let core = Core {
            ua,
            policy: settings.policy.clone(),
            local,
            engine: Some(client),
            engine_path: settings.engine.clone(),
            inputs: inputs.clone(),
            udp,
            streams: HashMap::new(),
            stream_by_addr: HashMap::new(),
            connecting: HashMap::new(),
            conn_ids,
            calls: HashMap::new(),
            by_session: HashMap::new(),
            journal: None,
            udp_send_queue_full: 0,
        };
        let mut core = core;
        if let Some(path) = &settings.state {
            let (journal, left) = journal::Journal::open(path)
                .map_err(|e| anyhow::anyhow!("dialog journal {}: {e}", path.display()))?;
            core.journal = Some(journal);
            if !left.is_empty() {
                tracing::warn!(dialogs = left.len(), path = %path.display(), "an earlier msrp-signal left dialogs open: ending them");
            }
            core.end_leftovers(left);
        }
        tokio::spawn(engine_events(events, inputs.clone()));
        tokio::spawn(core.run(rx));
        Ok(Signal { inputs, local: bound })
    }

    /// The addresses the SIP listeners got (port 0 picks one).
    pub fn local(&self) -> &[SipListen] {
        &self.local
    }

    /// Calls out: INVITE with an MSRP offer, and once answered, the engine
    /// sessions from the negotiated SDP.
    pub async fn invite(&self, call: OutboundCall) -> Result<Established, CallError> {
        let (tx, rx) = oneshot::channel();
        self.inputs
            .send(Input::Invite(Box::new(call), tx))
            .await
            .map_err(|_| CallError::Gone)?;
        rx.await.map_err(|_| CallError::Gone)?
    }

    /// Ends a call (BYE with a Reason, or CANCEL while it rings).
    pub async fn hangup(&self, call: CallId, reason: &str) {
        let _ = self.inputs.send(Input::Hangup(call, reason.into())).await;
    }

    /// Ends every call with a BYE (or CANCEL, or 480) and waits until
    /// those are on the wire.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.inputs.send(Input::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// The engine's MSRP address, as its URIs carry it.
async fn engine_endpoint(client: &AsyncClient) -> anyhow::Result<(String, LocalEndpoint)> {
    let stats = client
        .stats()
        .await
        .map_err(|e| anyhow::anyhow!("msrpd stats: {e}"))?;
    let advertise = stats.advertise.clone();
    let (host, port) = advertise
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("msrpd advertises `{advertise}`, not host:port"))?;
    let port = port
        .parse()
        .map_err(|_| anyhow::anyhow!("msrpd advertises `{advertise}`, not host:port"))?;
    let host = host.trim_matches(['[', ']']).to_string();
    Ok((advertise, LocalEndpoint { host, port }))
}

/// The engine tells us when a session of ours closes (the peer's MSRP
/// side went, or the engine ended it).
async fn subscribe(client: &AsyncClient, tag: &str) -> anyhow::Result<()> {
    client
        .subscribe(Subscription {
            events: vec![EventKind::SessionClosed],
            sessions: Vec::new(),
            tags: vec![tag.to_string()],
        })
        .await
        .map_err(|e| anyhow::anyhow!("msrpd subscribe: {e}"))
}

async fn engine_events(mut events: EventStream, inputs: mpsc::Sender<Input>) {
    while let Some((event, _)) = events.next().await {
        if inputs.send(Input::Engine(event)).await.is_err() {
            return;
        }
    }
    let _ = inputs
        .send(Input::EngineGone("the control socket closed".into()))
        .await;
}
