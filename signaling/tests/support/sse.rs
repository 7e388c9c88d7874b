//! A reader of `GET /v1/events` (server-sent events, WHATWG HTML 9.2): the
//! chunked stream is read on a thread of its own and each record (`id:`,
//! `event:`, `data:`, ended by a blank line) goes into a channel, so that a
//! test waits for the event it wants with a deadline.

use std::collections::VecDeque;
use std::io::{BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::http::{is_chunked, read_chunk, read_head, Http};

/// One record of the stream.
#[derive(Clone, Debug, PartialEq)]
pub struct SseEvent {
    pub id: Option<u64>,
    pub event: String,
    /// The `data:` lines joined, as sent.
    pub data: String,
}

impl SseEvent {
    /// `data` as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("event data is not JSON ({e}): {self:?}"))
    }

    pub fn session(&self) -> String {
        self.json()["session"].as_str().unwrap_or_default().to_string()
    }

    pub fn seq(&self) -> u64 {
        self.id
            .unwrap_or_else(|| panic!("an event without an id: {self:?}"))
    }
}

pub struct Sse {
    events: Receiver<SseEvent>,
    stream: TcpStream,
    /// Received and not yet taken by `wait` (those it skipped).
    kept: VecDeque<SseEvent>,
    /// Everything received, in order.
    pub log: Vec<SseEvent>,
}

impl Sse {
    /// `GET path` (e.g. `/v1/events?type=message`), resuming after
    /// `last_event_id` when given. Returns once the 200's head is read: the
    /// server listens from then on.
    pub fn open(api: &Http, path: &str, last_event_id: Option<u64>) -> Sse {
        let mut stream = api.connect();
        let last = last_event_id.map(|id| id.to_string());
        let mut headers = vec![("Accept", "text/event-stream")];
        if let Some(last) = &last {
            headers.push(("Last-Event-ID", last.as_str()));
        }
        stream
            .write_all(api.head("GET", path, &headers, None).as_bytes())
            .unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let (status, head) = read_head(&mut reader).unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(status, 200, "GET {path}: {head:?}");
        assert!(
            head.iter()
                .any(|(n, v)| n == "content-type" && v.starts_with("text/event-stream")),
            "GET {path} is not text/event-stream: {head:?}"
        );
        assert!(is_chunked(&head), "an SSE stream is chunked: {head:?}");
        // The server is silent between events: the reader blocks until one
        // comes or the stream is shut down (`Drop`).
        stream.set_read_timeout(None).unwrap();
        let (sender, events) = mpsc::channel();
        std::thread::spawn(move || {
            let mut record = Record::default();
            let mut pending = Vec::<u8>::new();
            while let Ok(Some(chunk)) = read_chunk(&mut reader) {
                pending.extend_from_slice(&chunk);
                while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    let line = String::from_utf8_lossy(&line[..end]);
                    let line = line.strip_suffix('\r').unwrap_or(&line);
                    if let Some(event) = record.line(line) {
                        if sender.send(event).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Sse {
            events,
            stream,
            kept: VecDeque::new(),
            log: Vec::new(),
        }
    }

    fn receive(&mut self, timeout: Duration) -> Option<SseEvent> {
        match self.events.recv_timeout(timeout) {
            Ok(event) => {
                self.log.push(event.clone());
                Some(event)
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                std::thread::sleep(timeout);
                None
            }
        }
    }

    /// The next event in order (kept ones first), or `None` after `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Option<SseEvent> {
        if let Some(event) = self.kept.pop_front() {
            return Some(event);
        }
        self.receive(timeout)
    }

    /// The first event `wanted` picks within `timeout`; the others stay for
    /// later waits. Panics naming `what` and listing what came instead.
    #[track_caller]
    pub fn wait(&mut self, what: &str, timeout: Duration, wanted: impl Fn(&SseEvent) -> bool) -> SseEvent {
        if let Some(at) = self.kept.iter().position(&wanted) {
            return self.kept.remove(at).unwrap();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!("no {what} event within {timeout:?}; received: {:#?}", self.log);
            }
            if let Some(event) = self.receive(left) {
                if wanted(&event) {
                    return event;
                }
                self.kept.push_back(event);
            }
        }
    }

    /// The first `kind` event of `session` within 10 s.
    #[track_caller]
    pub fn expect(&mut self, kind: &str, session: &str) -> SseEvent {
        self.wait(&format!("{kind} of {session}"), Duration::from_secs(10), |e| {
            e.event == kind && e.session() == session
        })
    }

    /// Nothing at all arrives within `quiet`.
    #[track_caller]
    pub fn expect_nothing(&mut self, quiet: Duration) {
        if let Some(event) = self.next(quiet) {
            panic!("expected no event, got {event:?}");
        }
    }
}

impl Drop for Sse {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// The fields of the record being read.
#[derive(Default)]
struct Record {
    id: Option<u64>,
    event: Option<String>,
    data: Option<String>,
}

impl Record {
    /// Takes one line; a blank line ends a record and dispatches it.
    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let record = std::mem::take(self);
            if record.data.is_none() && record.event.is_none() {
                return None;
            }
            return Some(SseEvent {
                id: record.id,
                event: record.event.unwrap_or_else(|| "message".into()),
                data: record.data.unwrap_or_default(),
            });
        }
        if line.starts_with(':') {
            // A comment: the server's keep-alive.
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => self.id = Some(value.parse().unwrap_or_else(|e| panic!("id {value:?}: {e}"))),
            "event" => self.event = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            _ => {}
        }
        None
    }
}
