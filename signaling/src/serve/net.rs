//! The SIP transports of `msrp-signal serve`: UDP sockets and TCP
//! connections as tokio tasks, each reporting to the core loop over one
//! bounded channel. They frame nothing; the sans-IO endpoint does. TLS
//! (`net_tls`) runs its streams through the same `run_stream`.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

use super::Input;
use crate::sip::{ConnId, Transport};

/// Octets queued towards one TCP connection; beyond it the connection is
/// closed as too slow (a peer that does not read cannot hold our memory).
pub const STREAM_WRITE_QUEUE_MAX: usize = 1024;
/// Datagrams queued for the UDP writer; beyond it they are lost (and
/// retransmitted by their transactions).
pub const UDP_SEND_QUEUE_MAX: usize = 16_384;
/// The largest UDP datagram we read (RFC 3261 18.1.1 allows 64 KiB).
const DATAGRAM_MAX: usize = 65_535;
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// At most this many queued octets are gathered into one write.
const WRITE_BATCH_BYTES: usize = 64 * 1024;

/// What the transports tell the core loop.
#[derive(Debug)]
pub enum NetInput {
    Datagram {
        from: SocketAddr,
        bytes: Bytes,
    },
    StreamOpened {
        conn: ConnId,
        transport: Transport,
        remote: SocketAddr,
        writer: mpsc::Sender<Bytes>,
    },
    StreamBytes {
        conn: ConnId,
        remote: SocketAddr,
        bytes: Bytes,
    },
    StreamClosed {
        conn: ConnId,
    },
    ConnectFailed {
        transport: Transport,
        remote: SocketAddr,
        error: String,
    },
}

/// What we ask of the kernel for a UDP socket's buffers: a burst of
/// INVITEs (about 2 KiB each) must not overflow the default ~208 KiB, which
/// costs each lost one a 500 ms retransmission. Linux caps the value at
/// `net.core.rmem_max` / `wmem_max` (see tuning/).
pub const UDP_SOCKET_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// A UDP socket bound to `addr`, with `UDP_SOCKET_BUFFER_BYTES` asked for
/// both ways.
pub fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    for (what, result) in [
        ("receive", socket.set_recv_buffer_size(UDP_SOCKET_BUFFER_BYTES)),
        ("send", socket.set_send_buffer_size(UDP_SOCKET_BUFFER_BYTES)),
    ] {
        if let Err(error) = result {
            tracing::warn!(%error, "SIP UDP {what} buffer left at the system default");
        }
    }
    if let Ok(got) = socket.recv_buffer_size() {
        // Linux reports twice what it grants (its bookkeeping).
        if got / 2 < UDP_SOCKET_BUFFER_BYTES {
            tracing::info!(
                granted = got / 2,
                asked = UDP_SOCKET_BUFFER_BYTES,
                "SIP UDP receive buffer capped by net.core.rmem_max"
            );
        }
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Reads datagrams until the socket fails.
pub async fn udp_reader(socket: Arc<UdpSocket>, inputs: mpsc::Sender<Input>) {
    let mut buf = vec![0u8; DATAGRAM_MAX];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((len, from)) => {
                let bytes = Bytes::copy_from_slice(&buf[..len]);
                if inputs
                    .send(Input::Net(NetInput::Datagram { from, bytes }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            // ICMP port unreachable from an earlier send shows up here on
            // Linux; the socket itself is fine.
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => continue,
            Err(error) => {
                tracing::error!(%error, "SIP UDP socket failed");
                return;
            }
        }
    }
}

/// The sending side of the UDP socket: straight to the socket while it
/// takes datagrams, through the writer task (which waits for the socket)
/// once it would block.
pub struct UdpOut {
    pub socket: Arc<UdpSocket>,
    pub queue: mpsc::Sender<(Bytes, SocketAddr)>,
}

impl UdpOut {
    /// Sends or queues; false when the queue is full (the datagram lost).
    pub fn send(&self, bytes: Bytes, remote: SocketAddr) -> bool {
        if self.queue.capacity() == self.queue.max_capacity() {
            match self.socket.try_send_to(&bytes, remote) {
                Ok(_) => return true,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(error) => {
                    tracing::debug!(%remote, %error, "SIP UDP send");
                    return true;
                }
            }
        }
        self.queue.try_send((bytes, remote)).is_ok()
    }
}

/// Sends datagrams as the socket becomes writable: `send_to` awaits
/// readiness, so a datagram queued before the runtime saw the socket
/// writable is not lost (a `try_send_to` there lost the first INVITE).
pub async fn udp_writer(socket: Arc<UdpSocket>, mut queue: mpsc::Receiver<(Bytes, SocketAddr)>) {
    while let Some((bytes, remote)) = queue.recv().await {
        if let Err(error) = socket.send_to(&bytes, remote).await {
            tracing::debug!(%remote, %error, "SIP UDP send");
        }
    }
}

/// Accepts TCP connections; each gets a connection id and its tasks.
pub async fn tcp_acceptor(
    listener: TcpListener,
    inputs: mpsc::Sender<Input>,
    ids: Arc<std::sync::atomic::AtomicU64>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                let conn = ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let _ = stream.set_nodelay(true);
                tokio::spawn(run_stream(stream, Transport::Tcp, conn, remote, inputs.clone()));
            }
            Err(error) => {
                tracing::warn!(%error, "SIP TCP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Opens a TCP connection for a request of ours (RFC 3261 18.1.1).
pub async fn tcp_connect(remote: SocketAddr, conn: ConnId, inputs: mpsc::Sender<Input>) {
    match TcpStream::connect(remote).await {
        Ok(stream) => {
            let _ = stream.set_nodelay(true);
            run_stream(stream, Transport::Tcp, conn, remote, inputs).await
        }
        Err(error) => connect_failed(&inputs, Transport::Tcp, remote, error.to_string()).await,
    }
}

pub(super) async fn connect_failed(
    inputs: &mpsc::Sender<Input>,
    transport: Transport,
    remote: SocketAddr,
    error: String,
) {
    let _ = inputs
        .send(Input::Net(NetInput::ConnectFailed {
            transport,
            remote,
            error,
        }))
        .await;
}

/// One stream connection (TCP, or TLS whose handshake is done) until it
/// closes: its octets to the core, the core's queue to it.
pub(super) async fn run_stream<S>(
    stream: S,
    transport: Transport,
    conn: ConnId,
    remote: SocketAddr,
    inputs: mpsc::Sender<Input>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut read, mut write) = tokio::io::split(stream);
    let (writer, mut queue) = mpsc::channel::<Bytes>(STREAM_WRITE_QUEUE_MAX);
    if inputs
        .send(Input::Net(NetInput::StreamOpened {
            conn,
            transport,
            remote,
            writer,
        }))
        .await
        .is_err()
    {
        return;
    }
    let writer_task = tokio::spawn(async move {
        // Everything queued goes out in one write: a write per message is
        // what made SIP over TCP slower than over UDP here.
        let mut out = Vec::with_capacity(WRITE_BATCH_BYTES);
        while let Some(bytes) = queue.recv().await {
            out.extend_from_slice(&bytes);
            while out.len() < WRITE_BATCH_BYTES {
                match queue.try_recv() {
                    Ok(more) => out.extend_from_slice(&more),
                    Err(_) => break,
                }
            }
            // (A TLS stream holds records until flushed; TCP's flush is free.)
            if write.write_all(&out).await.is_err() || write.flush().await.is_err() {
                return;
            }
            out.clear();
        }
        let _ = write.shutdown().await;
    });
    let mut buf = vec![0u8; READ_BUFFER_BYTES];
    loop {
        match read.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(len) => {
                let bytes = Bytes::copy_from_slice(&buf[..len]);
                if inputs
                    .send(Input::Net(NetInput::StreamBytes { conn, remote, bytes }))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    writer_task.abort();
    let _ = inputs.send(Input::Net(NetInput::StreamClosed { conn })).await;
}
