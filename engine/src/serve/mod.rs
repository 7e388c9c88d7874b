//! `msrpd serve`: binds the listeners, starts one shard thread per core and
//! runs the control thread until SIGTERM or SIGINT, then drains.

mod batch;
mod config;
mod control_server;
mod control_socket;
mod descriptor;
mod recovery;
mod subscribers;
mod units;

pub use config::{default_control_path, ServeConfig, Unclaimed, Wire};
pub use recovery::{recover_partial_files, PartialFiles, RECOVERED_DIR};
pub use units::{parse_cpu_list, parse_duration, parse_size, CpuList};

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::shard::{self, Directory, ShardInit};
use crate::tls::{TlsConfigs, TlsError};
use control_server::{ControlServer, TlsFace};

/// What a started engine tells its caller.
#[derive(Clone, Debug)]
pub struct Ready {
    /// The MSRP addresses, with the ports port 0 resolved to.
    pub listen: Vec<SocketAddr>,
    pub control: PathBuf,
    /// host:port in our MSRP URIs.
    pub advertise: String,
    /// The MSRP-over-TLS addresses, and the host:port in our msrps URIs.
    pub tls_listen: Vec<SocketAddr>,
    pub tls_advertise: Option<String>,
    /// Our certificate's sha-256 fingerprint (RFC 8122 5).
    pub local_fingerprint: Option<String>,
    pub shards: usize,
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {error}")]
    Listen { addr: SocketAddr, error: io::Error },
    #[error("cannot create the control socket {path}: {error}")]
    Control { path: PathBuf, error: io::Error },
    #[error("cannot create the spool directory {path}: {error}")]
    Spool { path: PathBuf, error: io::Error },
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("cannot start a thread: {0}")]
    Thread(io::Error),
}

/// One listening socket with SO_REUSEPORT, so every shard can have its own
/// on the same address and the kernel spreads connections over them.
fn reuseport_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// Every shard's listener on each of `addrs`, and the addresses bound. Port
/// 0 resolves once, on the first shard's socket; the others bind the port
/// it got.
fn bind_all(
    addrs: &[SocketAddr],
    shard_count: usize,
) -> Result<(Vec<Vec<TcpListener>>, Vec<SocketAddr>), ServeError> {
    let mut listeners: Vec<Vec<TcpListener>> = (0..shard_count).map(|_| Vec::new()).collect();
    let mut bound = Vec::new();
    for &addr in addrs {
        let first = reuseport_listener(addr).map_err(|error| ServeError::Listen { addr, error })?;
        let actual = first
            .local_addr()
            .map_err(|error| ServeError::Listen { addr, error })?;
        listeners[0].push(first);
        for list in listeners.iter_mut().skip(1) {
            let listener =
                reuseport_listener(actual).map_err(|error| ServeError::Listen { addr: actual, error })?;
            list.push(listener);
        }
        bound.push(actual);
    }
    Ok((listeners, bound))
}

/// The host:port our URIs carry: as `flag` set it, else the first address
/// bound (127.0.0.1 for a wildcard one); none without addresses.
fn advertised(given: Option<&str>, bound: &[SocketAddr], flag: &str) -> Option<String> {
    if let Some(given) = given {
        return Some(given.to_owned());
    }
    let first = bound.first()?;
    Some(match first.ip().is_unspecified() {
        true => {
            tracing::warn!("listening on a wildcard address; URIs advertise 127.0.0.1 (set {flag})");
            format!("127.0.0.1:{}", first.port())
        }
        false => first.to_string(),
    })
}

/// Read buffers are hundreds of KiB and, while their slices wait for the
/// spool or an event, each read takes a fresh one. glibc would serve those
/// from mmap and trim freed heap back to the kernel, so every read paid page
/// faults on new pages; keeping freed memory in the heap lets reads reuse it.
fn keep_freed_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets allocator tunables, and glibc serialises it
    // against allocation.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

/// Removes the control socket when the engine stops, or fails to start
/// after binding it.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs the engine until SIGTERM or SIGINT; `ready` is called once it
/// listens and the control socket accepts.
pub fn run(config: ServeConfig, ready: impl FnOnce(&Ready)) -> Result<(), ServeError> {
    config.validate().map_err(ServeError::Config)?;
    keep_freed_memory();
    let shard_count = config
        .shards
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    std::fs::create_dir_all(&config.spool).map_err(|error| ServeError::Spool {
        path: config.spool.clone(),
        error,
    })?;

    // Before binding anything: a bad certificate or key stops the start.
    let tls = config
        .tls_files()
        .map(|files| TlsConfigs::load(&files))
        .transpose()?;
    let (listeners, bound) = bind_all(&config.listen, shard_count)?;
    let (mut tls_listeners, tls_bound) = bind_all(&config.tls_listen, shard_count)?;
    let advertise = advertised(config.advertise.as_deref(), &bound, "--advertise").unwrap_or_default();
    let tls_advertise = advertised(config.tls_advertise.as_deref(), &tls_bound, "--tls-advertise");
    let tls_face = match (&tls, &tls_advertise) {
        (Some(tls), Some(authority)) => Some(TlsFace {
            listen: tls_bound.iter().map(ToString::to_string).collect(),
            authority: authority.clone(),
            local_fingerprint: std::cell::RefCell::new(tls.local_fingerprint.to_string()),
        }),
        _ => None,
    };
    let local_fingerprint = tls.as_ref().map(|tls| tls.local_fingerprint.to_string());

    // Before any shard thread exists (the umask around bind is process-wide).
    let control_path = config.control.clone();
    let control_listener = control_socket::bind(&control_path).map_err(|error| ServeError::Control {
        path: control_path.clone(),
        error,
    })?;
    // From here on the socket is ours, and removed however the start ends.
    let _remove_socket = RemoveOnDrop(control_path.clone());
    let partial_files =
        recover_partial_files(&config.spool, config.partial_files, config.durable).map_err(|error| {
            ServeError::Spool {
                path: config.spool.clone(),
                error,
            }
        })?;

    let config = Arc::new(config);
    let directory = Arc::new(Directory::new(config.pending_sessions_max, config.pending_expiry));
    let tap = Arc::new(shard::EventTap::default());
    let (events_tx, events_rx) = mpsc::channel(4096);
    let cores = match (config.no_pin, &config.cpus) {
        (true, _) => Vec::new(),
        (false, Some(list)) => list.0.iter().map(|&id| core_affinity::CoreId { id }).collect(),
        (false, None) => core_affinity::get_core_ids().unwrap_or_default(),
    };
    let shard_config = Arc::new(config.shard_config());
    let mut commands = Vec::new();
    let mut threads = Vec::new();
    for (index, listeners) in listeners.into_iter().enumerate() {
        let tls_listeners = std::mem::take(&mut tls_listeners[index]);
        let (tx, rx) = mpsc::channel(config.command_queue_depth);
        commands.push(tx);
        let init = ShardInit {
            index,
            config: shard_config.clone(),
            directory: directory.clone(),
            listeners,
            tls_listeners,
            tls: tls.clone(),
            commands: rx,
            events: events_tx.clone(),
            tap: tap.clone(),
            core: (!cores.is_empty()).then(|| cores[index % cores.len()]),
        };
        threads.push(shard::spawn(init).map_err(ServeError::Thread)?);
    }
    drop(events_tx);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Thread)?;
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&runtime, async {
        let listener = control_listener
            .set_nonblocking(true)
            .and_then(|()| tokio::net::UnixListener::from_std(control_listener))
            .map_err(|error| ServeError::Control {
                path: control_path.clone(),
                error,
            })?;
        let mut server = ControlServer::new(
            config.clone(),
            directory,
            commands,
            advertise.clone(),
            bound.iter().map(ToString::to_string).collect(),
            tap,
            partial_files,
        );
        server.tls = tls_face;
        let server = Rc::new(server);
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(ServeError::Thread)?;
        let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .map_err(ServeError::Thread)?;
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(ServeError::Thread)?;
        let accept = tokio::task::spawn_local(server.clone().accept_loop(listener));
        let expire = tokio::task::spawn_local(server.clone().expire_pending());
        let hub = tokio::task::spawn_local(server.clone().event_hub(events_rx));
        ready(&Ready {
            listen: bound.clone(),
            control: control_path.clone(),
            advertise,
            tls_listen: tls_bound.clone(),
            tls_advertise,
            local_fingerprint,
            shards: shard_count,
        });
        tracing::info!(shards = shard_count, listen = ?bound, control = %control_path.display(), "msrpd ready");
        loop {
            tokio::select! {
                _ = terminate.recv() => tracing::info!("SIGTERM: draining"),
                _ = interrupt.recv() => tracing::info!("SIGINT: draining"),
                _ = hangup.recv() => {
                    server.reload_tls().await;
                    continue;
                }
            }
            break;
        }
        server.drain().await;
        // The hub ends when every shard has stopped and dropped its sender.
        let _ = hub.await;
        server.finish().await;
        accept.abort();
        expire.abort();
        Ok(())
    });
    for thread in threads {
        if thread.join().is_err() {
            tracing::error!("a shard thread panicked");
        }
    }
    result
}
