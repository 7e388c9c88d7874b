//! The baseline: a plain TCP server on one io_uring thread that echoes or
//! discards what it reads, with no parsing at all: the least work a
//! one-thread io_uring server can do with the same bytes, so msrpd's rates
//! read as fractions of it.

use std::io::Write;
use std::net::SocketAddr;

use anyhow::{Context, Result};
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::{TcpListener, TcpStream};

/// Read buffer per connection, as large as msrpd's, so both see the same
/// batches.
const READ_BYTES: usize = 256 * 1024;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Mode {
    /// Write back exactly what was read.
    Echo,
    /// Read and drop.
    Sink,
}

pub fn run(listen: SocketAddr, mode: Mode) -> Result<()> {
    let runtime = tokio_uring::Runtime::new(&tokio_uring::builder()).context("starting io_uring")?;
    runtime.block_on(async {
        let listener = TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
        let bound = listener.local_addr().context("reading the bound address")?;
        // The script waits for this line to learn the port.
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "ready {bound}")
            .and_then(|()| stdout.flush())
            .context("writing to stdout")?;
        drop(stdout);
        loop {
            let (stream, peer) = listener.accept().await.context("accepting")?;
            tokio_uring::spawn(async move {
                if let Err(e) = serve(stream, mode).await {
                    // The client ends a run by exiting: resets are expected.
                    if e.kind() != std::io::ErrorKind::ConnectionReset {
                        eprintln!("raw-server: {peer}: {e}");
                    }
                }
            });
        }
    })
}

async fn serve(stream: TcpStream, mode: Mode) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; READ_BYTES];
    loop {
        let (result, returned) = stream.read(buf).await;
        let n = result?;
        if n == 0 {
            return Ok(());
        }
        buf = match mode {
            Mode::Sink => returned,
            Mode::Echo => {
                let (result, slice) = stream.write_all(returned.slice(..n)).await;
                result?;
                slice.into_inner()
            }
        };
    }
}
