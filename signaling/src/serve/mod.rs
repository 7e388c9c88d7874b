//! `msrp-signal serve`: the thin tokio shell around the sans-IO
//! [`UserAgent`]. One core task owns the user agent and the call table;
//! transport tasks (`net`) and call tasks (`calls`, which talk to the
//! engine) report to it over one bounded channel, so nothing here waits
//! on the network or the engine while holding the SIP state.

mod app_calls;
mod app_events;
pub mod calls;
pub mod config;
mod core_task;
mod journal;
mod msml;
mod net;
mod net_tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use msrp_engine::control::{AsyncClient, EngineEvent, EventKind, EventStream, Subscription};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::app::SharedApp;
use crate::sdp::{LocalEndpoint, OfferOptions, TlsEndpoint};
use crate::sip::{CallId, EndpointConfig, NameAddr, Transport, UaConfig, Uri, UserAgent};
use app_calls::AppCommand;
pub use app_calls::SipStats;
use calls::Decision;
pub use config::{CallPolicy, SipListen};
use core_task::Core;
pub use msml::MsmlSettings;
use net::NetInput;
pub use net_tls::{SipTlsCounters, SipTlsFiles};

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
    /// The application layer (REST): calls become its sessions and the
    /// engine's events its events. `None`: calls are only answered by
    /// policy (and `--no-auto-answer` refuses them 480).
    pub app: Option<SharedApp>,
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
    EngineBack(AsyncClient, EventStream, EngineMsrp),
    Invite(Box<OutboundCall>, oneshot::Sender<Result<Established, CallError>>),
    Hangup(CallId, String),
    Shutdown(oneshot::Sender<()>),
    /// What an application asked (REST).
    App(AppCommand),
    /// An incoming call no application answered in time: 480.
    IncomingTimeout(CallId),
    /// MSML control dialogs are served from now on.
    MsmlEnable(Box<MsmlSettings>),
    /// A transfer's event for an MSML control dialog (`last`: its dialog
    /// ended).
    MsmlEvent {
        call: CallId,
        dialog: String,
        body: String,
        last: bool,
    },
}

/// Where the engine takes MSRP: its plain advertised address and, with
/// `--tls-listen`, its msrps authority and certificate fingerprint (from
/// its `stats`, read again at each reconnection).
#[derive(Clone, Debug)]
pub struct EngineMsrp {
    pub plain: LocalEndpoint,
    pub tls: Option<TlsEndpoint>,
}

/// The engine connection of the moment, for those outside the core task
/// (REST sends messages on it; `None` while msrpd is away), and the MSRP
/// addresses that engine advertises (read again at each reconnection: a
/// restarted msrpd may listen elsewhere).
#[derive(Clone)]
pub struct EngineLink(Arc<Mutex<(Option<AsyncClient>, EngineMsrp)>>);

impl EngineLink {
    fn new(client: AsyncClient, msrp: EngineMsrp) -> EngineLink {
        EngineLink(Arc::new(Mutex::new((Some(client), msrp))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Option<AsyncClient>, EngineMsrp)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self) -> Option<AsyncClient> {
        self.lock().0.clone()
    }

    pub fn msrp(&self) -> LocalEndpoint {
        self.lock().1.plain.clone()
    }

    pub fn msrp_tls(&self) -> Option<TlsEndpoint> {
        self.lock().1.tls.clone()
    }

    fn set(&self, client: Option<AsyncClient>) {
        self.lock().0 = client;
    }

    fn set_msrp(&self, msrp: EngineMsrp) {
        self.lock().1 = msrp;
    }
}

/// A running `msrp-signal`: where it listens, and the library's UAC.
#[derive(Clone)]
pub struct Signal {
    inputs: mpsc::Sender<Input>,
    local: Vec<SipListen>,
    engine: EngineLink,
    policy: CallPolicy,
    tls_counters: Arc<SipTlsCounters>,
}

impl Signal {
    /// Binds the SIP listeners, connects to msrpd and starts the core task
    /// on the current tokio runtime (without SIP over TLS files).
    pub async fn start(settings: ServeSettings) -> anyhow::Result<Signal> {
        Signal::start_with_tls(settings, &SipTlsFiles::default()).await
    }

    /// `start` with the files of SIP over TLS: a `tls:` listener needs
    /// `cert` and `key`; outbound TLS (sips:) needs `ca`.
    pub async fn start_with_tls(
        mut settings: ServeSettings,
        tls_files: &SipTlsFiles,
    ) -> anyhow::Result<Signal> {
        let listens_tls = settings.sip.iter().any(|l| l.transport == Transport::Tls);
        let tls = net_tls::SipTls::load(tls_files, listens_tls)?;
        // The application layer checks pushed files: the engine holds their
        // success REPORTs for it.
        settings.policy.check_pushed_files = settings.app.is_some();
        let (client, events) = AsyncClient::connect(&settings.engine)
            .await
            .map_err(|e| anyhow::anyhow!("msrpd at {}: {e}", settings.engine.display()))?;
        let (advertise, msrp) = engine_endpoint(&client).await?;
        let local = msrp.plain.clone();
        subscribe(&client, &settings.policy.tag).await?;
        if let Some(app) = &settings.app {
            app_events::start(settings.engine.clone(), settings.policy.tag.clone(), app.clone()).await?;
        }
        let link = EngineLink::new(client.clone(), msrp.clone());
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
                Transport::Tls => {
                    let listener = TcpListener::bind(listen.addr).await?;
                    let addr = listener.local_addr()?;
                    bound.push(SipListen {
                        transport: Transport::Tls,
                        addr,
                    });
                    let ids = conn_ids.clone();
                    tokio::spawn(net_tls::tls_acceptor(listener, tls.clone(), inputs.clone(), ids));
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
            tls_port: port_of(Transport::Tls),
            calls_max: settings.calls_max,
            endpoint: settings.endpoint.clone(),
            ..UaConfig::default()
        });
        tracing::info!(engine = %settings.engine.display(), %advertise, "msrp-signal connected to msrpd");
        let core = Core {
            ua,
            policy: settings.policy.clone(),
            local,
            msrp_tls: msrp.tls.clone(),
            tls: tls.clone(),
            tls_names: HashMap::new(),
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
            app: settings.app.clone(),
            link: link.clone(),
            msml: None,
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
        Ok(Signal {
            inputs,
            local: bound,
            engine: link,
            policy: settings.policy.clone(),
            tls_counters: tls.counters.clone(),
        })
    }

    /// The engine connection of the moment.
    pub fn engine(&self) -> Option<AsyncClient> {
        self.engine.get()
    }

    /// The engine's MSRP address, as our SDP names it.
    pub fn msrp_endpoint(&self) -> LocalEndpoint {
        self.engine.msrp()
    }

    /// The engine's MSRP-over-TLS side, when it has `--tls-listen`.
    pub fn msrp_tls(&self) -> Option<TlsEndpoint> {
        self.engine.msrp_tls()
    }

    /// SIP over TLS handshakes: (completed, failed), listener and ours.
    pub fn sip_tls_handshakes(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let counters = &self.tls_counters;
        (
            counters.handshakes.load(Relaxed),
            counters.handshake_failures.load(Relaxed),
        )
    }

    pub fn policy(&self) -> &CallPolicy {
        &self.policy
    }

    /// Calls out for the application session `session` (already in the
    /// application layer, state `calling`); returns once the INVITE is
    /// sent. What follows arrives as the session's events.
    pub async fn app_invite(
        &self,
        session: &str,
        call: OutboundCall,
        headers: Vec<(String, String)>,
    ) -> Result<(), CallError> {
        let (reply, rx) = oneshot::channel();
        let command = AppCommand::Invite {
            session: session.to_string(),
            call: Box::new(call),
            headers,
            reply,
        };
        self.app_command(command, rx).await
    }

    /// Where an INVITE to `to` goes: the URI's host and port (RFC 3263's
    /// DNS lookups are not done: an address, or a name the system
    /// resolves), by its `transport` parameter or the first listener we
    /// have. A sips: URI goes over TLS only (RFC 3261 26.2.2), never
    /// downgraded, on port 5061 by default (19.1.2).
    pub async fn next_hop(&self, to: &Uri) -> Result<(SocketAddr, Transport), String> {
        let sip = to.as_sip().ok_or("a call goes to a sip: or sips: URI")?;
        let have = |t: Transport| self.local.iter().any(|l| l.transport == t);
        let param = sip.param("transport").and_then(|v| v.as_deref());
        let transport = match param {
            Some(t) if sip.secure && !t.eq_ignore_ascii_case("tcp") && !t.eq_ignore_ascii_case("tls") => {
                return Err(format!(
                    "a sips: URI goes over TLS only (RFC 3261 26.2.2), not transport={t}"
                ))
            }
            _ if sip.secure => Transport::Tls,
            Some(t) => {
                Transport::from_param(t).ok_or_else(|| format!("transport={t} is not udp, tcp or tls"))?
            }
            None if have(Transport::Udp) => Transport::Udp,
            None => Transport::Tcp,
        };
        if !have(transport) {
            return Err(format!(
                "msrp-signal has no {} listener (--sip {}:ADDR)",
                transport.via_name(),
                transport.via_name().to_ascii_lowercase()
            ));
        }
        let host = sip.host.to_string();
        let default_port = if transport == Transport::Tls { 5061 } else { 5060 };
        let port = sip.port.unwrap_or(default_port);
        tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
            .await
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| format!("`{host}` does not resolve"))
            .map(|target| (target, transport))
    }

    /// Serves MSML control dialogs (INVITEs to `settings.user`) from now on.
    pub async fn enable_msml(&self, settings: MsmlSettings) -> Result<(), CallError> {
        self.inputs
            .send(Input::MsmlEnable(Box::new(settings)))
            .await
            .map_err(|_| CallError::Gone)
    }

    /// Answers an incoming session; returns once the 200 is sent (the
    /// engine sessions exist) or the call was refused.
    pub async fn app_answer(
        &self,
        session: &str,
        accept_types: Option<Vec<String>>,
    ) -> Result<(), CallError> {
        let (reply, rx) = oneshot::channel();
        let command = AppCommand::Answer {
            session: session.to_string(),
            accept_types,
            reply,
        };
        self.app_command(command, rx).await
    }

    pub async fn app_reject(&self, session: &str, status: u16, reason: &str) -> Result<(), CallError> {
        let (reply, rx) = oneshot::channel();
        let command = AppCommand::Reject {
            session: session.to_string(),
            status,
            reason: reason.to_string(),
            reply,
        };
        self.app_command(command, rx).await
    }

    /// Ends a 1PCC session's call (BYE, CANCEL or 480).
    pub async fn app_hangup(&self, session: &str, reason: &str) -> Result<(), CallError> {
        let (reply, rx) = oneshot::channel();
        let command = AppCommand::Hangup {
            session: session.to_string(),
            reason: reason.to_string(),
            reply,
        };
        self.app_command(command, rx).await
    }

    /// Closes the MSRP legs of 1PCC session `session` and keeps its dialog
    /// up until `app_hangup`: a message half sent ends with `#` (RFC 4975
    /// 7.1), which a BYE on its heels would overtake.
    pub async fn app_close_media(&self, session: &str, reason: &str) -> Result<(), CallError> {
        let (reply, rx) = oneshot::channel();
        let command = AppCommand::CloseMedia {
            session: session.to_string(),
            reason: reason.to_string(),
            reply,
        };
        self.app_command(command, rx).await
    }

    /// The SIP counters (`/metrics`).
    pub async fn sip_stats(&self) -> Result<SipStats, CallError> {
        let (reply, rx) = oneshot::channel();
        self.inputs
            .send(Input::App(AppCommand::SipStats(reply)))
            .await
            .map_err(|_| CallError::Gone)?;
        rx.await.map_err(|_| CallError::Gone)
    }

    async fn app_command(
        &self,
        command: AppCommand,
        rx: oneshot::Receiver<Result<(), CallError>>,
    ) -> Result<(), CallError> {
        self.inputs
            .send(Input::App(command))
            .await
            .map_err(|_| CallError::Gone)?;
        rx.await.map_err(|_| CallError::Gone)?
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

/// The engine's MSRP addresses, as its URIs carry them.
async fn engine_endpoint(client: &AsyncClient) -> anyhow::Result<(String, EngineMsrp)> {
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
    let tls = match &stats.tls {
        None => None,
        Some(tls) => {
            let (host, port) = tls
                .advertise
                .rsplit_once(':')
                .and_then(|(host, port)| Some((host, port.parse().ok()?)))
                .ok_or_else(|| {
                    anyhow::anyhow!("msrpd advertises msrps at `{}`, not host:port", tls.advertise)
                })?;
            Some(TlsEndpoint {
                host: host.trim_matches(['[', ']']).to_string(),
                port,
                fingerprint: tls.local_fingerprint.clone(),
            })
        }
    };
    Ok((
        advertise,
        EngineMsrp {
            plain: LocalEndpoint { host, port },
            tls,
        },
    ))
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

/// The engine's `session_closed` events for the core task (the call
/// ends); the application layer has its own connection (`app_events`).
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
