//! One phase of the calibration: the vocabulary its threads share (which
//! phase, which thread, what they tell the measuring thread), and the
//! driver that binds the listener, starts the server and the client,
//! measures and winds both down.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::measure::{measure, Abort, Measured};
use super::server::serve_all;
use super::worker::Worker;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// The server writes back exactly what it reads; the client counts.
    Small,
    /// The server reads and drops, counting octets.
    Bulk,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Pins {
    pub(super) server: Option<usize>,
    pub(super) client: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    Server,
    Client,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Server => "server",
            Role::Client => "client",
        })
    }
}

/// What the phase's threads tell the measuring thread.
pub(super) enum Note {
    /// Every client connection is up and its traffic started.
    Connected,
    /// A thread ended (sent as it exits, panicking or not): before the
    /// phase is over, that is a failure.
    Ended(Role),
}

/// Shared by the measuring thread and the phase's two threads.
#[derive(Default)]
pub(super) struct Shared {
    /// Set by the measuring thread to end the phase, or by any task that
    /// failed, so that everything winds down.
    stop: AtomicBool,
    /// Small: messages echoed back whole; bulk: octets the sink read.
    pub(super) progress: AtomicU64,
}

impl Shared {
    pub(super) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Runs one phase: binds the server's listener here (so that a bind error
/// comes back directly and the port is known at once), starts the server
/// and the client, measures, then winds down: the client first, so the
/// server's connections end with a clean end-of-file, then the server, whose
/// accept is woken by a throwaway connection.
pub(super) fn run_phase<C, F>(phase: Phase, pins: Pins, period: Duration, client: C) -> Result<Measured>
where
    C: FnOnce(SocketAddr, Arc<Shared>, Sender<Note>) -> F + Send + 'static,
    F: Future<Output = Result<()>> + 'static,
{
    let listener = listen().context("listening on 127.0.0.1")?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let shared = Arc::new(Shared::default());
    let (notes, noted) = mpsc::channel();

    let server = Worker::spawn(Role::Server, pins.server, notes.clone(), {
        let shared = shared.clone();
        move || serve_all(listener, phase, shared)
    })?;
    let client = Worker::spawn(Role::Client, pins.client, notes.clone(), {
        let (shared, notes) = (shared.clone(), notes.clone());
        move || client(addr, shared, notes)
    });
    drop(notes);
    let client = match client {
        Ok(client) => client,
        Err(e) => {
            shared.stop();
            wake(addr);
            // The server's own result matters less than why there is no
            // client, and `join` already gave it a deadline.
            let _ = server.join();
            return Err(e);
        }
    };

    let measured = measure(&noted, &shared, period);
    shared.stop();
    let client_result = client.join();
    wake(addr);
    let server_result = server.join();

    match measured {
        Ok(measured) => {
            client_result?;
            server_result?;
            Ok(measured)
        }
        // The thread that ended first tells what went wrong; the other
        // most likely only saw its peer go.
        Err(Abort::Ended(Role::Server)) => {
            server_result?;
            client_result?;
            bail!("the server thread ended before the phase was over")
        }
        Err(Abort::Ended(Role::Client)) => {
            client_result?;
            server_result?;
            bail!("the client thread ended before the phase was over")
        }
        Err(Abort::Error(e)) => {
            client_result?;
            server_result?;
            Err(e)
        }
    }
}

fn listen() -> Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).context("creating a socket")?;
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .context("binding")?;
    // Room for many connections arriving at once, as the engine's listener.
    socket.listen(1024).context("listening")?;
    Ok(socket.into())
}

/// Wakes the server's pending accept so that it sees `stop`. The server may
/// already be gone, so failing to connect is no error.
fn wake(addr: SocketAddr) {
    let _ = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1));
}
