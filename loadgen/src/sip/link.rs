//! The caller's one SIP transport towards msrp-signal: a UDP socket, or
//! one TCP connection carrying every call (as sipp's `-t u1` / `-t t1`).
//! It frames nothing: the user agent's endpoint does.

use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use msrp_signaling::sip::{ConnId, Flow, Transmit, Transport};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

/// The largest datagram read (RFC 3261 18.1.1 allows 64 KiB).
const DATAGRAM_MAX: usize = 65_535;
/// The UDP socket's kernel buffers (capped by net.core.rmem_max).
const DATAGRAM_BUFFER_BYTES: usize = 4 << 20;
/// Reads per wake-up before the loop turns: one batch, then the timers.
const READS_PER_TURN_MAX: usize = 256;
/// The one stream's connection id in the user agent.
pub const CONN: ConnId = 1;

/// What a read brought: datagrams, or stream octets.
pub enum Received {
    Datagram(SocketAddr, Bytes),
    Stream(Bytes),
}

pub enum Link {
    Udp {
        socket: UdpSocket,
        remote: SocketAddr,
    },
    Tcp {
        stream: TcpStream,
        remote: SocketAddr,
        /// Transmits of one turn, written in one go.
        out: Vec<u8>,
    },
}

impl Link {
    pub async fn open(transport: Transport, remote: SocketAddr) -> io::Result<Link> {
        let local = SocketAddr::new(remote.ip(), 0);
        Ok(match transport {
            Transport::Udp => {
                let socket = socket2::Socket::new(
                    socket2::Domain::for_address(local),
                    socket2::Type::DGRAM,
                    Some(socket2::Protocol::UDP),
                )?;
                // The 2xx and 100 of a window of INVITEs arrive together;
                // a default buffer (about 200 KiB) drops some.
                let _ = socket.set_recv_buffer_size(DATAGRAM_BUFFER_BYTES);
                let _ = socket.set_send_buffer_size(DATAGRAM_BUFFER_BYTES);
                socket.set_nonblocking(true)?;
                socket.bind(&local.into())?;
                Link::Udp {
                    socket: UdpSocket::from_std(socket.into())?,
                    remote,
                }
            }
            Transport::Tls => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "msrp-loadgen speaks SIP over UDP or TCP, not TLS",
                ))
            }
            Transport::Tcp => {
                let stream = TcpStream::connect(remote).await?;
                stream.set_nodelay(true)?;
                Link::Tcp {
                    stream,
                    remote,
                    out: Vec::with_capacity(64 << 10),
                }
            }
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Link::Udp { socket, .. } => socket.local_addr(),
            Link::Tcp { stream, .. } => stream.local_addr(),
        }
    }

    pub fn transport(&self) -> Transport {
        match self {
            Link::Udp { .. } => Transport::Udp,
            Link::Tcp { .. } => Transport::Tcp,
        }
    }

    /// Where requests to msrp-signal go.
    pub fn flow(&self) -> Flow {
        match self {
            Link::Udp { remote, .. } => Flow {
                transport: Transport::Udp,
                remote: *remote,
                conn: None,
            },
            Link::Tcp { remote, .. } => Flow {
                transport: Transport::Tcp,
                remote: *remote,
                conn: Some(CONN),
            },
        }
    }

    /// Queues (TCP) or sends (UDP) one message; everything goes to
    /// msrp-signal, whatever the flow says (it is the only peer).
    pub async fn send(&mut self, transmit: Transmit) -> io::Result<()> {
        match self {
            Link::Udp { socket, remote } => {
                // Loopback UDP: a full socket buffer drops; the transaction
                // layer retransmits, as on any network.
                let _ = socket.send_to(&transmit.bytes, *remote).await;
                Ok(())
            }
            Link::Tcp { out, .. } => {
                out.extend_from_slice(&transmit.bytes);
                Ok(())
            }
        }
    }

    /// Writes what the turn queued.
    pub async fn flush(&mut self) -> io::Result<()> {
        if let Link::Tcp { stream, out, .. } = self {
            if !out.is_empty() {
                stream.write_all(out).await?;
                out.clear();
            }
        }
        Ok(())
    }

    pub async fn readable(&self) -> io::Result<()> {
        match self {
            Link::Udp { socket, .. } => socket.readable().await,
            Link::Tcp { stream, .. } => stream.readable().await,
        }
    }

    /// What is there to read now, without waiting; an error when the
    /// stream closed.
    pub fn read_ready(&mut self, buf: &mut [u8], into: &mut Vec<Received>) -> io::Result<()> {
        debug_assert!(buf.len() >= DATAGRAM_MAX);
        for _ in 0..READS_PER_TURN_MAX {
            match self {
                Link::Udp { socket, .. } => match socket.try_recv_from(buf) {
                    Ok((len, from)) => {
                        into.push(Received::Datagram(from, Bytes::copy_from_slice(&buf[..len])))
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    // ICMP port unreachable from an earlier send.
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                    Err(e) => return Err(e),
                },
                Link::Tcp { stream, .. } => match stream.try_read(buf) {
                    Ok(0) => {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "msrp-signal closed the SIP connection",
                        ))
                    }
                    Ok(len) => into.push(Received::Stream(Bytes::copy_from_slice(&buf[..len]))),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) => return Err(e),
                },
            }
        }
        Ok(())
    }
}

/// A read buffer large enough for any datagram.
pub fn read_buffer() -> Vec<u8> {
    vec![0u8; DATAGRAM_MAX]
}
