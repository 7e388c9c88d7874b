//! Real `msrpd serve` processes on loopback, their control clients, and a
//! raw MSRP peer over a plain TCP socket for what an engine would never send.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use msrp_engine::control::{Client, EngineEvent, EngineStats, SessionDescriptor, SessionRole};

pub struct Daemon {
    child: Child,
    pub dir: PathBuf,
    pub spool: PathBuf,
    pub control: PathBuf,
    pub msrp: SocketAddr,
    pub advertise: String,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Daemon {
    /// Starts `msrpd serve` on 127.0.0.1 (a free port) with its own control
    /// socket and spool, and waits for its ready line.
    pub fn start(name: &str, extra: &[&str]) -> Daemon {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Daemon::start_in(dir, extra)
    }

    /// As [`Daemon::start`], with `prepare` run on the spool directory
    /// (created, empty) before the engine starts: a test mounts a small
    /// file system there.
    pub fn start_with_spool(name: &str, extra: &[&str], prepare: impl FnOnce(&Path)) -> Daemon {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("spool")).unwrap();
        prepare(&dir.join("spool"));
        Daemon::start_in(dir, extra)
    }

    /// A new engine on the same control socket and spool, after this one
    /// was killed: what a supervisor does after a crash.
    pub fn restart(mut self, extra: &[&str]) -> Daemon {
        self.kill();
        let dir = std::mem::take(&mut self.dir);
        Daemon::start_in(dir, extra)
    }

    fn start_in(dir: PathBuf, extra: &[&str]) -> Daemon {
        let spool = dir.join("spool");
        let control = dir.join("control.sock");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("msrpd.log"))
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_msrpd"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--log", "debug"])
            // Unpinned unless the test pins (tests share the machine).
            .args((!extra.contains(&"--cpus")).then_some("--no-pin"))
            .arg("--control")
            .arg(&control)
            .arg("--spool")
            .arg(&spool)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("msrpd starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(key))
                .unwrap_or_else(|| panic!("no {key} in the ready line {line:?}; log: {}", read_log(&dir)))
                .to_string()
        };
        let msrp: SocketAddr = field("msrp=").split(',').next().unwrap().parse().unwrap();
        let advertise = field("advertise=");
        Daemon {
            child,
            dir,
            spool,
            control,
            msrp,
            advertise,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.control).expect("control socket")
    }

    /// A subscribed client.
    pub fn events(&self) -> Client {
        let mut client = self.client();
        client.subscribe().unwrap();
        client
    }

    /// Our URI for `session_id` on this engine.
    pub fn uri(&self, session_id: &str) -> String {
        format!("msrp://{}/{session_id};tcp", self.advertise)
    }

    pub fn stats(&self) -> EngineStats {
        self.client().stats().unwrap()
    }

    /// Waits until the spool holds no file (a removal runs on the shard
    /// after the event that announced it).
    pub fn wait_spool_empty(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_dir(&self.spool).unwrap().count() > 0 {
            assert!(
                Instant::now() < deadline,
                "the partial spool file was not removed"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits up to `timeout` for the exit.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "msrpd did not exit after SIGTERM; log: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        read_log(&self.dir)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

fn read_log(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("msrpd.log")).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(40).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// A passive session waiting for the peer whose `a=path` is `remote`.
pub fn passive(session_id: &str, remote: impl Into<String>) -> SessionDescriptor {
    SessionDescriptor {
        session_id: Some(session_id.into()),
        remote_path: vec![remote.into()],
        role: SessionRole::Passive,
        ..SessionDescriptor::default()
    }
}

/// Reads events until `done` says so, or panics after `timeout`.
pub fn collect_events(
    client: &mut Client,
    timeout: Duration,
    mut on_event: impl FnMut(EngineEvent, Bytes) -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out waiting for events");
        if let Some((event, payload)) = client.next_event_timeout(left).unwrap() {
            if on_event(event, payload) {
                return;
            }
        }
    }
}

/// Deterministic content for a test file or message.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = vec![0u8; len];
    rng.fill(&mut out);
    out
}

/// A frame read by [`RawPeer`].
#[derive(Debug)]
pub struct RawFrame {
    pub tid: String,
    /// `SEND`, `REPORT`, or the status code of a response.
    pub method: String,
    pub status: Option<u16>,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// The end-line's flag: `$`, `+` or `#` (RFC 4975 7.1).
    pub flag: u8,
}

/// What [`RawPeer::read_within`] saw.
#[derive(Debug)]
pub enum Received {
    Frame(RawFrame),
    /// The engine closed the connection (or reset it).
    Closed,
    /// Nothing complete came within the time given.
    Quiet,
}

/// An MSRP peer written by hand over a plain socket: it sends exactly the
/// bytes a test gives it and reads frames back.
pub struct RawPeer {
    pub stream: TcpStream,
    buffer: Vec<u8>,
}

impl RawPeer {
    pub fn connect(addr: SocketAddr) -> RawPeer {
        RawPeer::from_stream(TcpStream::connect(addr).unwrap())
    }

    /// A peer on a connection the engine opened (an active session).
    pub fn from_stream(stream: TcpStream) -> RawPeer {
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        RawPeer {
            stream,
            buffer: Vec::new(),
        }
    }

    pub fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// A whole-message SEND.
    pub fn send(&mut self, tid: &str, to: &str, from: &str, body: &[u8]) {
        let frame = send_frame(tid, to, from, &format!("m{tid}"), "text/plain", body);
        self.write(&frame);
    }

    /// The next frame, or `None` when the engine closed the connection.
    pub fn read_frame(&mut self) -> Option<RawFrame> {
        loop {
            if let Some(frame) = self.take_frame() {
                return Some(frame);
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("reading from msrpd: {e}"),
            }
        }
    }

    fn take_frame(&mut self) -> Option<RawFrame> {
        let text = &self.buffer;
        let line_end = find(text, b"\r\n")?;
        let first = String::from_utf8_lossy(&text[..line_end]).to_string();
        let mut parts = first.split(' ');
        assert_eq!(parts.next(), Some("MSRP"), "not an MSRP frame: {first:?}");
        let tid = parts.next().unwrap().to_string();
        let method = parts.next().unwrap().to_string();
        let end_line = format!("\r\n-------{tid}");
        let end = find(text, end_line.as_bytes())?;
        if text.len() < end + end_line.len() + 3 {
            return None;
        }
        let head_end = find(&text[..end + 2], b"\r\n\r\n");
        let (head, body) = match head_end {
            Some(h) => (&text[line_end + 2..h], text[h + 4..end].to_vec()),
            None => (&text[line_end + 2..end], Vec::new()),
        };
        let headers = String::from_utf8_lossy(head)
            .split("\r\n")
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let flag = text[end + end_line.len()];
        let consumed = end + end_line.len() + 3;
        self.buffer.drain(..consumed);
        Some(RawFrame {
            status: method.parse().ok(),
            tid,
            method,
            headers,
            body,
            flag,
        })
    }

    /// The next frame, the end of the connection, or `Quiet` after
    /// `timeout` without a whole frame (what was read is kept).
    pub fn read_within(&mut self, timeout: Duration) -> Received {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(frame) = self.take_frame() {
                return Received::Frame(frame);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Received::Quiet;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 65536];
            let read = self.stream.read(&mut chunk);
            self.stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            match read {
                Ok(0) => return Received::Closed,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Received::Quiet
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Received::Closed,
                Err(e) => panic!("reading from msrpd: {e}"),
            }
        }
    }

    /// RFC 4975 5.4: binds the passive session `to` to this connection with
    /// a bodiless SEND; returns its status.
    pub fn bind(&mut self, tid: &str, to: &str, from: &str) -> u16 {
        let frame = format!(
            "MSRP {tid} SEND\r\nTo-Path: {to}\r\nFrom-Path: {from}\r\nMessage-ID: bind{tid}\r\n\
             Byte-Range: 1-0/0\r\n-------{tid}$\r\n"
        );
        self.write(frame.as_bytes());
        self.response_to(tid, &mut Vec::new())
    }

    /// Closes with SO_LINGER 0: the kernel sends RST, not FIN, and drops
    /// whatever was not sent yet.
    pub fn reset(self) {
        use std::os::fd::AsRawFd;
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        let rc = unsafe {
            libc::setsockopt(
                self.stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                &linger as *const libc::linger as *const libc::c_void,
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
        drop(self.stream);
    }

    /// Reads frames until the response to `tid`, answering any SEND the
    /// engine sent meanwhile with 200 (collected in `sends`).
    pub fn response_to(&mut self, tid: &str, sends: &mut Vec<RawFrame>) -> u16 {
        loop {
            let frame = self.read_frame().expect("the engine closed the connection");
            if frame.method == "SEND" {
                self.answer(&frame, 200);
                sends.push(frame);
                continue;
            }
            if frame.tid == tid {
                return frame.status.expect("a response");
            }
        }
    }

    /// Answers a request from the engine.
    pub fn answer(&mut self, request: &RawFrame, status: u16) {
        self.answer_with(request, status, "OK");
    }

    /// Answers a request from the engine with `status` and `comment`.
    pub fn answer_with(&mut self, request: &RawFrame, status: u16, comment: &str) {
        let response = format!(
            "MSRP {} {status} {comment}\r\nTo-Path: {}\r\nFrom-Path: {}\r\n-------{}$\r\n",
            request.tid, request.headers["From-Path"], request.headers["To-Path"], request.tid
        );
        self.write(response.as_bytes());
    }
}

pub fn send_frame(
    tid: &str,
    to: &str,
    from: &str,
    message_id: &str,
    content_type: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut frame = format!(
        "MSRP {tid} SEND\r\nTo-Path: {to}\r\nFrom-Path: {from}\r\nMessage-ID: {message_id}\r\n\
         Byte-Range: 1-{n}/{n}\r\nContent-Type: {content_type}\r\n\r\n",
        n = body.len()
    )
    .into_bytes();
    frame.extend_from_slice(body);
    frame.extend_from_slice(format!("\r\n-------{tid}$\r\n").as_bytes());
    frame
}

/// One chunk of a message: octets `start..start+body.len()` of `total`,
/// with the end-line flag `flag` (RFC 4975 7.1).
pub fn chunk_frame(
    tid: &str,
    to: &str,
    from: &str,
    message_id: &str,
    (start, total): (usize, usize),
    body: &[u8],
    flag: char,
) -> Vec<u8> {
    let end = start + body.len() - 1;
    let mut frame = format!(
        "MSRP {tid} SEND\r\nTo-Path: {to}\r\nFrom-Path: {from}\r\nMessage-ID: {message_id}\r\n\
         Byte-Range: {start}-{end}/{total}\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    frame.extend_from_slice(body);
    frame.extend_from_slice(format!("\r\n-------{tid}{flag}\r\n").as_bytes());
    frame
}

/// A REPORT about `message_id` (RFC 4975 7.1.2), with `status` (`000 200
/// OK`, say) and the octets it covers.
pub fn report_frame(tid: &str, to: &str, from: &str, message_id: &str, range: &str, status: &str) -> Vec<u8> {
    format!(
        "MSRP {tid} REPORT\r\nTo-Path: {to}\r\nFrom-Path: {from}\r\nMessage-ID: {message_id}\r\n\
         Byte-Range: {range}\r\nStatus: {status}\r\n-------{tid}$\r\n"
    )
    .into_bytes()
}

/// The resident set of process `pid` in KiB (`VmRSS` in /proc).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}
