//! A blocking client of the control socket, for the load generator, tests
//! and `msrpd ctl`. Requests may be pipelined: `submit` many, `flush`, then
//! read their replies in order with `read`. Events come one at a time
//! whichever protocol version brought them.

use std::collections::VecDeque;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;

use super::events::{EventsFrame, EVENTS_FRAME_PREFIX};
use super::frame::{encode, Frame, FrameError, FrameReader, PAYLOAD_BYTES_MAX};
use super::message::{
    BatchOp, CloseRequest, Command, EngineEvent, EngineStats, OpResult, Reply, ReportRequest, Request,
    SendRequest, ServerMessage, SessionDescriptor, Subscription, UpdateRequest,
};

/// Why a control call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("control socket: {0}")]
    Io(io::Error),
    #[error("control socket: {0}")]
    Frame(FrameError),
    #[error("the engine closed the control socket")]
    Closed,
    #[error("the engine refused the command: {0}")]
    Refused(String),
    #[error("reply {got} came where reply {expected} was due")]
    OutOfOrder { expected: u64, got: u64 },
    #[error("an events frame's payload of {payload} octets does not hold the {claimed} its events claim")]
    EventPayloads { payload: usize, claimed: u64 },
}

// Not `#[from]`: the inner error is in the message already, and as a source
// too it would print twice in error chains.
impl From<io::Error> for ClientError {
    fn from(error: io::Error) -> ClientError {
        ClientError::Io(error)
    }
}

impl From<FrameError> for ClientError {
    fn from(error: FrameError) -> ClientError {
        ClientError::Frame(error)
    }
}

/// Something the engine wrote: a reply or an event, with the frame's payload
/// (an inline message body for `message_received`).
#[derive(Debug)]
pub enum Incoming {
    Reply(Reply, Bytes),
    Event(EngineEvent, Bytes),
}

/// A created session: its id and our URI for the SDP `a=path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedSession {
    pub session_id: String,
    pub local_uri: String,
}

pub struct Client {
    reader: UnixStream,
    writer: BufWriter<UnixStream>,
    frames: FrameReader,
    next_id: u64,
    /// Events read while waiting for a reply.
    events: VecDeque<(EngineEvent, Bytes)>,
    scratch: Vec<u8>,
}

impl Client {
    pub fn connect(path: impl AsRef<Path>) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path)?;
        Ok(Client {
            writer: BufWriter::with_capacity(256 * 1024, stream.try_clone()?),
            reader: stream,
            frames: FrameReader::new(PAYLOAD_BYTES_MAX),
            next_id: 1,
            events: VecDeque::new(),
            scratch: Vec::new(),
        })
    }

    /// Queues a request without waiting; returns the id its reply will carry.
    pub fn submit(&mut self, command: Command, payload: &[u8]) -> Result<u64, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        self.scratch.clear();
        encode(&mut self.scratch, &Request { id, command }, payload)?;
        self.writer.write_all(&self.scratch)?;
        Ok(id)
    }

    pub fn flush(&mut self) -> Result<(), ClientError> {
        Ok(self.writer.flush()?)
    }

    /// The next reply or event; events read by [`Client::call`] while it
    /// waited come first.
    pub fn read(&mut self) -> Result<Incoming, ClientError> {
        if let Some((event, payload)) = self.events.pop_front() {
            return Ok(Incoming::Event(event, payload));
        }
        self.read_wire()
    }

    /// Called with no event queued: the next reply or event off the wire.
    fn read_wire(&mut self) -> Result<Incoming, ClientError> {
        loop {
            if let Some(incoming) = self.read_frame()? {
                return Ok(incoming);
            }
            if let Some((event, payload)) = self.events.pop_front() {
                return Ok(Incoming::Event(event, payload));
            }
        }
    }

    /// The next frame: a reply or a version-1 event, or `None` when it was
    /// an `events` frame, whose events went to the back of the queue.
    fn read_frame(&mut self) -> Result<Option<Incoming>, ClientError> {
        loop {
            if let Some(frame) = self.frames.next_frame()? {
                return decode(frame, &mut self.events);
            }
            let buffer = self.frames.buffer();
            buffer.reserve(64 * 1024);
            let start = buffer.len();
            buffer.resize(buffer.capacity(), 0);
            let n = self.reader.read(&mut buffer[start..]);
            buffer.truncate(start + *n.as_ref().unwrap_or(&0));
            match n {
                Ok(0) => return Err(ClientError::Closed),
                Ok(_) => continue,
                // A signal is not the end of the stream.
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Sends one command and waits for its reply; a refusal is an error.
    pub fn call(&mut self, command: Command, payload: &[u8]) -> Result<Reply, ClientError> {
        let id = self.submit(command, payload)?;
        self.flush()?;
        self.wait_reply(id)
    }

    /// Reads until the reply to `id`, keeping events for [`Client::next_event`].
    pub fn wait_reply(&mut self, id: u64) -> Result<Reply, ClientError> {
        loop {
            match self.read_frame()? {
                None => {}
                Some(Incoming::Event(event, payload)) => self.events.push_back((event, payload)),
                Some(Incoming::Reply(reply, _)) if reply.id != id => {
                    return Err(ClientError::OutOfOrder {
                        expected: id,
                        got: reply.id,
                    })
                }
                Some(Incoming::Reply(reply, _)) if reply.ok => return Ok(reply),
                Some(Incoming::Reply(reply, _)) => {
                    return Err(ClientError::Refused(reply.error.unwrap_or_default()))
                }
            }
        }
    }

    pub fn create_session(&mut self, descriptor: SessionDescriptor) -> Result<CreatedSession, ClientError> {
        let reply = self.call(Command::CreateSession(descriptor), &[])?;
        Ok(CreatedSession {
            session_id: reply.session_id.unwrap_or_default(),
            local_uri: reply.local_uri.unwrap_or_default(),
        })
    }

    /// Sends a message as `request` describes it, with `body` inline unless
    /// `request.file` names the body; returns the engine's number for it.
    pub fn send(&mut self, request: SendRequest, body: &[u8]) -> Result<u64, ClientError> {
        let reply = self.call(Command::Send(request), body)?;
        Ok(reply.message.unwrap_or_default())
    }

    /// Sends an in-memory message; returns the engine's number for it.
    pub fn send_message(
        &mut self,
        session_id: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<u64, ClientError> {
        self.send(SendRequest::new(session_id, content_type), body)
    }

    /// Sends a file, read chunk by chunk by the engine.
    pub fn send_file(
        &mut self,
        session_id: &str,
        content_type: &str,
        path: &Path,
        delete_after: bool,
    ) -> Result<u64, ClientError> {
        let request = SendRequest {
            session_id: session_id.into(),
            content_type: content_type.into(),
            file: Some(path.display().to_string()),
            delete_after,
            ..SendRequest::default()
        };
        self.send(request, &[])
    }

    pub fn close_session(&mut self, session_id: &str, reason: Option<&str>) -> Result<(), ClientError> {
        let command = Command::CloseSession(CloseRequest {
            session_id: session_id.into(),
            reason: reason.map(Into::into),
        });
        self.call(command, &[]).map(drop)
    }

    /// The peer's accept-types and max-size after a re-offer or UPDATE.
    /// Decides a success REPORT the session holds (`hold_reports`): 200
    /// sends it, another status a failure REPORT with `comment`. True when
    /// the REPORT went; false when RFC 4975 7.1.4 forbids the failure
    /// REPORT (the sender's Failure-Report was `no`). Either way the report
    /// is no longer held.
    pub fn report(
        &mut self,
        session_id: &str,
        message_id: &str,
        status: u16,
        comment: Option<&str>,
    ) -> Result<bool, ClientError> {
        let command = Command::Report(ReportRequest {
            session_id: session_id.into(),
            message_id: message_id.into(),
            status,
            comment: comment.map(Into::into),
        });
        let reply = self.call(command, &[])?;
        Ok(reply.sent.unwrap_or(false))
    }

    pub fn update_session(&mut self, update: UpdateRequest) -> Result<(), ClientError> {
        self.call(Command::UpdateSession(update), &[]).map(drop)
    }

    pub fn stats(&mut self) -> Result<EngineStats, ClientError> {
        Ok(self.call(Command::Stats, &[])?.stats.unwrap_or_default())
    }

    /// Subscribes to every event.
    pub fn subscribe(&mut self) -> Result<(), ClientError> {
        self.subscribe_to(Subscription::default())
    }

    /// Subscribes to the events `subscription` names.
    pub fn subscribe_to(&mut self, subscription: Subscription) -> Result<(), ClientError> {
        self.call(Command::Subscribe(subscription), &[]).map(drop)
    }

    /// Asks for protocol `version`; returns the one the engine agreed to.
    pub fn hello(&mut self, version: u32) -> Result<u32, ClientError> {
        let reply = self.call(Command::Hello { version }, &[])?;
        Ok(reply.version.unwrap_or(1))
    }

    /// Queues a `batch` without waiting (version 2): `payload` is the
    /// operations' bodies, concatenated in order, each `payload_len` long.
    pub fn submit_batch(&mut self, ops: Vec<BatchOp>, payload: &[u8]) -> Result<u64, ClientError> {
        self.submit(Command::Batch { ops }, payload)
    }

    /// Runs a `batch` and returns a result per operation; the batch as a
    /// whole refused (over the engine's bounds, version 1) is an error.
    pub fn batch(&mut self, ops: Vec<BatchOp>, payload: &[u8]) -> Result<Vec<OpResult>, ClientError> {
        let id = self.submit_batch(ops, payload)?;
        self.flush()?;
        Ok(self.wait_reply(id)?.results.unwrap_or_default())
    }

    /// The next event (after [`Client::subscribe`]); replies to pipelined
    /// requests must be read with [`Client::read`] instead.
    pub fn next_event(&mut self) -> Result<(EngineEvent, Bytes), ClientError> {
        match self.read()? {
            Incoming::Event(event, payload) => Ok((event, payload)),
            Incoming::Reply(reply, _) => Err(ClientError::OutOfOrder {
                expected: 0,
                got: reply.id,
            }),
        }
    }

    /// Like [`Client::next_event`], but gives up after `timeout` with `None`.
    pub fn next_event_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<(EngineEvent, Bytes)>, ClientError> {
        if let Some(event) = self.events.pop_front() {
            return Ok(Some(event));
        }
        self.reader.set_read_timeout(Some(timeout))?;
        let result = self.next_event();
        self.reader.set_read_timeout(None)?;
        match result {
            Err(ClientError::Io(e))
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
            {
                Ok(None)
            }
            other => other.map(Some),
        }
    }
}

/// How the engine begins a reply's header.
const REPLY_FRAME_PREFIX: &[u8] = br#"{"type":"reply","#;

/// A frame as what it brings: a reply or a version-1 event, or `None` for
/// a version-2 `events` frame, whose events are appended to `events`.
pub(crate) fn decode(
    frame: Frame,
    events: &mut VecDeque<(EngineEvent, Bytes)>,
) -> Result<Option<Incoming>, ClientError> {
    // The engine writes replies and events frames with these prefixes:
    // read them as the structs they are, not through the tagged enum,
    // which buffers every field (a batch's reply has thousands).
    let message = if frame.header.starts_with(EVENTS_FRAME_PREFIX) {
        ServerMessage::Events(frame.parse::<EventsFrame>()?)
    } else if frame.header.starts_with(REPLY_FRAME_PREFIX) {
        ServerMessage::Reply(frame.parse::<Reply>()?)
    } else {
        frame.parse::<ServerMessage>()?
    };
    match message {
        ServerMessage::Reply(reply) => Ok(Some(Incoming::Reply(reply, frame.payload))),
        ServerMessage::Event(event) => Ok(Some(Incoming::Event(event, frame.payload))),
        ServerMessage::Events(batch) => {
            let claimed: u64 = batch.events.iter().map(|e| e.payload_len).sum();
            if claimed != frame.payload.len() as u64 {
                return Err(ClientError::EventPayloads {
                    payload: frame.payload.len(),
                    claimed,
                });
            }
            let mut payload = frame.payload;
            for entry in batch.events {
                events.push_back((entry.event, payload.split_to(entry.payload_len as usize)));
            }
            Ok(None)
        }
    }
}
