//! wirebench: msrpd over real TCP on loopback against a plain io_uring TCP
//! server on the same machine, so that msrpd's rates read as fractions of
//! what the kernel and io_uring allow (`benches/wire.sh` runs both and
//! prints the ratios).
//!
//! - `raw-server`: the baseline, an echo or sink server with no parsing.
//! - `client --kind msrp|raw --workload small|bulk`: the load, identical bytes
//!   for both kinds; for MSRP it first creates the engine's sessions through
//!   the control socket.

// A crate root's modules live beside it; these live in wirebench/.
#[path = "wirebench/count.rs"]
mod count;
#[path = "wirebench/pipeline.rs"]
mod pipeline;
#[path = "wirebench/raw_server.rs"]
mod raw_server;
#[path = "wirebench/sessions.rs"]
mod sessions;
#[path = "wirebench/workload.rs"]
mod workload;

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use pipeline::{Plan, Replies, Status, Tally, Traffic};
use workload::{BulkStream, SessionPaths};

#[derive(Parser)]
#[command(about = "msrpd against a raw io_uring TCP server, over loopback")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The baseline server: one io_uring thread, echo or sink; prints
    /// `ready ADDR` once listening.
    RawServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        #[arg(long, value_enum)]
        mode: raw_server::Mode,
    },
    /// Loads msrpd or the raw server and prints the rate, as text and JSON.
    Client(ClientArgs),
}

#[derive(clap::Args)]
struct ClientArgs {
    /// The MSRP listener of msrpd, or the raw server.
    #[arg(long)]
    target: String,
    #[arg(long, value_enum)]
    kind: Kind,
    #[arg(long, value_enum)]
    workload: Workload,
    #[arg(long, default_value_t = 1)]
    conns: usize,
    /// msrpd's control socket (`--kind msrp`).
    #[arg(long)]
    control: Option<PathBuf>,
    /// Measured seconds, after one second of warm-up.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Body octets per small message.
    #[arg(long, default_value_t = 160)]
    size: usize,
    /// Requests outstanding per connection [default: 256 small, 64 bulk].
    #[arg(long)]
    window: Option<usize>,
    /// Body octets per bulk chunk.
    #[arg(long, default_value_t = 64 * 1024)]
    chunk_bytes: usize,
    /// Bulk chunks per write (at most half the window for msrp).
    #[arg(long, default_value_t = 16)]
    chunks_per_write: usize,
    /// Body octets per bulk message before a new Message-ID starts; keeps
    /// under the receiver's max-size.
    #[arg(long, default_value_t = 4 << 30)]
    message_bytes: u64,
    /// Also subscribe to msrpd's events with the typed control client and
    /// read every one, as an application would (`--kind msrp`).
    #[arg(long)]
    subscribe: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// msrpd: SENDs answered by 200s.
    Msrp,
    /// The raw server: echo for `small`, sink for `bulk`.
    Raw,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Workload {
    /// Whole 160-octet messages, pipelined.
    Small,
    /// One large message after another, in chunks.
    Bulk,
}

const WARM_UP: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::RawServer { listen, mode } => raw_server::run(listen, mode),
        Command::Client(args) => client(args),
    }
}

fn client(args: ClientArgs) -> Result<()> {
    let target = args
        .target
        .to_socket_addrs()
        .with_context(|| format!("resolving {}", args.target))?
        .next()
        .ok_or_else(|| anyhow!("{} resolves to no address", args.target))?;
    anyhow::ensure!(args.conns > 0, "--conns must be at least 1");
    anyhow::ensure!(args.seconds > 0.0, "--seconds must be positive");
    let window = args.window.unwrap_or(match args.workload {
        Workload::Small => 256,
        Workload::Bulk => 64,
    });
    if args.workload == Workload::Small {
        anyhow::ensure!(
            window >= 2,
            "--window must be at least 2: a batch is written in halves"
        );
    }
    anyhow::ensure!(window >= 1, "--window must be at least 1");
    anyhow::ensure!(
        args.chunks_per_write >= 1,
        "--chunks-per-write must be at least 1"
    );

    // Distinguishes this run's sessions from an earlier run's in the same msrpd.
    let run = fastrand::u32(..);
    let paths = match args.kind {
        Kind::Msrp => {
            let control = args.control.as_deref().context("--kind msrp needs --control")?;
            sessions::create_in_engine(control, args.conns, run)?
        }
        Kind::Raw => sessions::made_up(target, args.conns, run),
    };
    let plans = paths
        .into_iter()
        .enumerate()
        .map(|(conn, paths)| plan(&args, window, conn, paths))
        .collect();

    let subscriber = match (args.subscribe, &args.control) {
        (true, Some(control)) => Some(subscribe(control)?),
        (true, None) => bail!("--subscribe needs --control"),
        (false, _) => None,
    };
    let measured = measure(target, plans, Duration::from_secs_f64(args.seconds))?;
    report(&mut std::io::stdout().lock(), &args, window, &measured).context("writing the report")?;
    if let Some((events, reader)) = subscriber {
        let read = events.load(Ordering::Relaxed);
        // The reader runs until msrpd goes away; a finished one was dropped.
        let dropped = reader.is_finished();
        println!(
            "subscriber: {read} events read ({:.0}/s){}",
            read as f64 / (args.seconds + WARM_UP.as_secs_f64()),
            if dropped {
                ", then dropped by msrpd as too slow"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// A thread that reads every event msrpd writes, counting them.
fn subscribe(
    control: &std::path::Path,
) -> Result<(Arc<std::sync::atomic::AtomicU64>, std::thread::JoinHandle<()>)> {
    let mut client = msrp_engine::control::Client::connect(control).context("subscriber")?;
    client.subscribe().context("subscribe")?;
    let events = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = events.clone();
    let reader = std::thread::spawn(move || {
        while client.next_event().is_ok() {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    Ok((events, reader))
}

fn plan(args: &ClientArgs, window: usize, conn: usize, paths: SessionPaths) -> Plan {
    match args.workload {
        Workload::Small => Plan {
            traffic: Traffic::Small(workload::small_batch(&paths, conn, window, args.size)),
            // The raw echo returns the requests: as many frames as MSRP's 200s.
            replies: Replies::Frames {
                window: window as u64,
                body_bytes_per_frame: args.size as u64,
                expect_ok: args.kind == Kind::Msrp,
            },
        },
        Workload::Bulk => Plan {
            traffic: Traffic::Bulk {
                chunks: BulkStream::new(paths, args.chunk_bytes, args.message_bytes),
                // Whole writes must fit the window, with room for the next.
                chunks_per_write: match args.kind {
                    Kind::Msrp => args.chunks_per_write.min(window / 2).max(1),
                    Kind::Raw => args.chunks_per_write,
                },
            },
            replies: match args.kind {
                Kind::Msrp => Replies::Frames {
                    window: window as u64,
                    body_bytes_per_frame: args.chunk_bytes as u64,
                    expect_ok: true,
                },
                Kind::Raw => Replies::None,
            },
        },
    }
}

struct Measured {
    frames: u64,
    body_bytes: u64,
    elapsed: Duration,
}

impl Measured {
    fn frames_per_s(&self) -> f64 {
        self.frames as f64 / self.elapsed.as_secs_f64()
    }

    fn body_bytes_per_s(&self) -> f64 {
        self.body_bytes as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs the connections on their own io_uring thread; this thread only keeps
/// time, so the I/O thread does nothing but I/O.
fn measure(target: SocketAddr, plans: Vec<Plan>, period: Duration) -> Result<Measured> {
    let tally = Arc::new(Tally::default());
    let (status, statuses) = mpsc::channel();
    let io_tally = tally.clone();
    std::thread::Builder::new()
        .name("wirebench-io".into())
        .spawn(move || match tokio_uring::Runtime::new(&tokio_uring::builder()) {
            Ok(runtime) => runtime.block_on(pipeline::drive(target, plans, io_tally, status)),
            Err(e) => {
                let _ = status.send(Status::Failed(anyhow::Error::new(e).context("starting io_uring")));
            }
        })
        .context("spawning the I/O thread")?;

    match statuses.recv_timeout(CONNECT_TIMEOUT) {
        Ok(Status::Connected) => {}
        Ok(Status::Failed(e)) => return Err(e),
        Err(RecvTimeoutError::Timeout) => bail!("not connected to {target} after {CONNECT_TIMEOUT:?}"),
        Err(RecvTimeoutError::Disconnected) => bail!("the I/O thread ended before connecting"),
    }
    let snapshot = || {
        (
            tally.frames.load(Ordering::Relaxed),
            tally.body_bytes.load(Ordering::Relaxed),
            Instant::now(),
        )
    };
    run_for(&statuses, WARM_UP)?;
    let (frames_before, bytes_before, start) = snapshot();
    run_for(&statuses, period)?;
    let (frames_after, bytes_after, end) = snapshot();
    if frames_after == frames_before {
        bail!("nothing came back in {period:?}: is the peer stuck?");
    }
    // The I/O thread stops with the process: its connections just close.
    Ok(Measured {
        frames: frames_after - frames_before,
        body_bytes: bytes_after - bytes_before,
        elapsed: end - start,
    })
}

/// Lets the load run for `period`, failing at once if a connection fails.
fn run_for(statuses: &Receiver<Status>, period: Duration) -> Result<()> {
    let deadline = Instant::now() + period;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match statuses.recv_timeout(left) {
            Ok(Status::Failed(e)) => return Err(e),
            Ok(Status::Connected) => {}
            Err(RecvTimeoutError::Timeout) => return Ok(()),
            Err(RecvTimeoutError::Disconnected) => bail!("the I/O thread ended"),
        }
    }
}

fn report(
    out: &mut impl Write,
    args: &ClientArgs,
    window: usize,
    measured: &Measured,
) -> std::io::Result<()> {
    let name = |value: Option<clap::builder::PossibleValue>| {
        value.map(|v| v.get_name().to_owned()).unwrap_or_default()
    };
    let (kind, workload) = (
        name(args.kind.to_possible_value()),
        name(args.workload.to_possible_value()),
    );
    let (msgs_per_s, bytes_per_s) = (measured.frames_per_s(), measured.body_bytes_per_s());
    let seconds = measured.elapsed.as_secs_f64();
    // A raw sink answers nothing, so no window paces it.
    let window = (args.kind == Kind::Msrp || args.workload == Workload::Small).then_some(window);
    let size = match args.workload {
        Workload::Small => {
            writeln!(
                out,
                "{kind} small: {} conns, window {}, {} octets: {msgs_per_s:.0} msg/s ({:.1} MB/s of body) over {seconds:.2} s",
                args.conns,
                window.unwrap_or_default(),
                args.size,
                bytes_per_s / 1e6,
            )?;
            args.size
        }
        Workload::Bulk => {
            writeln!(
                out,
                "{kind} bulk: {} conns, window {}, {} octet chunks: {:.3} GB/s ({:.3} GiB/s) of body, {msgs_per_s:.0} chunks/s over {seconds:.2} s",
                args.conns,
                window.map_or_else(|| "-".to_owned(), |w| w.to_string()),
                args.chunk_bytes,
                bytes_per_s / 1e9,
                bytes_per_s / f64::from(1u32 << 30),
            )?;
            args.chunk_bytes
        }
    };
    let json = serde_json::json!({
        "kind": kind,
        "workload": workload,
        "conns": args.conns,
        "window": window,
        "size": size,
        "seconds": seconds,
        "msgs": measured.frames,
        "msgs_per_s": msgs_per_s,
        "bytes_per_s": bytes_per_s,
    });
    writeln!(out, "{json}")?;
    out.flush()
}
