//! Events on the wire: how a subscriber reads them fast (a flat struct, not
//! serde's buffered internally tagged enum), and how the engine writes a
//! turn's events once for every subscriber, as version-1 frames (one per
//! event) or version-2 `events` frames (many per frame).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::message::{EngineEvent, EventKind, TransferDirection};

/// Every field any event carries; `event` says which are required.
#[derive(Deserialize)]
pub struct WireEvent {
    event: EventKind,
    session_id: String,
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    direction: Option<TransferDirection>,
    #[serde(default)]
    message: Option<u64>,
    #[serde(default)]
    bytes: Option<u64>,
    #[serde(default)]
    total: Option<u64>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    bytes_acked: Option<u64>,
    #[serde(default)]
    report_held: bool,
    /// Version 2: this event's share of the frame's payload.
    #[serde(default)]
    payload_len: u64,
}

fn required<T>(value: Option<T>, field: &str, event: EventKind) -> Result<T, String> {
    value.ok_or_else(|| format!("missing field `{field}` in a \"{event}\" event"))
}

impl TryFrom<WireEvent> for EngineEvent {
    type Error = String;

    fn try_from(w: WireEvent) -> Result<EngineEvent, String> {
        let kind = w.event;
        let session_id = w.session_id;
        Ok(match kind {
            EventKind::SessionReady => EngineEvent::SessionReady { session_id },
            EventKind::MessageReceived => EngineEvent::MessageReceived {
                session_id,
                message_id: required(w.message_id, "message_id", kind)?,
                content_type: required(w.content_type, "content_type", kind)?,
                size: required(w.size, "size", kind)?,
                path: w.path,
                report_held: w.report_held,
            },
            EventKind::Progress => EngineEvent::Progress {
                session_id,
                direction: required(w.direction, "direction", kind)?,
                message: w.message,
                message_id: w.message_id,
                bytes: required(w.bytes, "bytes", kind)?,
                total: w.total,
            },
            EventKind::Delivered => EngineEvent::Delivered {
                session_id,
                message: required(w.message, "message", kind)?,
                message_id: required(w.message_id, "message_id", kind)?,
            },
            EventKind::Failed => EngineEvent::Failed {
                session_id,
                message: required(w.message, "message", kind)?,
                message_id: required(w.message_id, "message_id", kind)?,
                status: w.status,
                reason: required(w.reason, "reason", kind)?,
                bytes_acked: required(w.bytes_acked, "bytes_acked", kind)?,
            },
            EventKind::MessageAborted => EngineEvent::MessageAborted {
                session_id,
                message_id: required(w.message_id, "message_id", kind)?,
                reason: required(w.reason, "reason", kind)?,
            },
            EventKind::SessionClosed => EngineEvent::SessionClosed {
                session_id,
                reason: required(w.reason, "reason", kind)?,
            },
        })
    }
}

/// One event of an `events` frame, and how many octets of the frame's
/// payload are its own (an inline body).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "WireEvent")]
pub struct EventEntry {
    pub event: EngineEvent,
    pub payload_len: u64,
}

impl TryFrom<WireEvent> for EventEntry {
    type Error = String;

    fn try_from(w: WireEvent) -> Result<EventEntry, String> {
        let payload_len = w.payload_len;
        Ok(EventEntry {
            event: w.try_into()?,
            payload_len,
        })
    }
}

impl Serialize for EventEntry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut value = serde_json::to_value(&self.event).map_err(serde::ser::Error::custom)?;
        if let (Some(object), true) = (value.as_object_mut(), self.payload_len > 0) {
            object.insert("payload_len".into(), self.payload_len.into());
        }
        value.serialize(s)
    }
}

/// A version-2 `events` frame's header.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsFrame {
    pub events: Vec<EventEntry>,
}

/// An `events` frame's header is kept within this (a few hundred events),
/// so a subscriber holds little unparsed and sees the first event soon.
pub const EVENTS_HEADER_BYTES_MAX: usize = 64 * 1024;

/// How an engine writes an `events` frame; a client that sees this prefix
/// reads the header as an [`EventsFrame`] directly.
pub const EVENTS_FRAME_PREFIX: &[u8] = br#"{"type":"events","events":["#;

/// A batch of events, each encoded once: as the version-2 `events` frames
/// of every event (what a version-2 subscriber of everything is written,
/// as it is), from which the frames of a version-1 subscriber or of one
/// that wants only some events are cut.
#[derive(Default)]
pub struct EncodedEvents {
    frames: Vec<u8>,
    /// Per event, in `frames`: where its object starts, where its own
    /// fields end (before `,"payload_len":N` and the closing brace), and
    /// where the object ends.
    spans: Vec<(usize, usize, usize)>,
    payloads: Vec<Bytes>,
    /// The frame being written at the end of `frames`, and its first
    /// event's index.
    open: Option<(FrameInProgress, usize)>,
}

impl EncodedEvents {
    pub fn with_capacity(events: usize) -> EncodedEvents {
        EncodedEvents {
            frames: Vec::with_capacity(events * 192),
            spans: Vec::with_capacity(events),
            payloads: Vec::with_capacity(events),
            open: None,
        }
    }

    pub fn push(&mut self, event: &EngineEvent, payload: Bytes) -> Result<(), serde_json::Error> {
        // Closed before it could pass the bound with one more event of
        // usual size; a longer one may pass it by a little.
        let full = self
            .open
            .as_ref()
            .is_some_and(|(frame, _)| frame.header_len(&self.frames) + 512 > EVENTS_HEADER_BYTES_MAX);
        if full {
            self.finish_frame();
        }
        let before = self.frames.len();
        match &self.open {
            Some(_) => self.frames.push(b','),
            None => self.open = Some((FrameInProgress::start(&mut self.frames), self.spans.len())),
        }
        let start = self.frames.len();
        if let Err(error) = serde_json::to_writer(&mut self.frames, event) {
            self.frames.truncate(before);
            if self.open.as_ref().is_some_and(|(frame, _)| frame.start == before) {
                self.open = None;
            }
            return Err(error);
        }
        // serde_json writes an object: its last octet is the closing brace.
        let own_end = self.frames.len() - 1;
        if !payload.is_empty() {
            self.frames.truncate(own_end);
            self.frames.extend_from_slice(br#","payload_len":"#);
            self.frames
                .extend_from_slice(payload.len().to_string().as_bytes());
            self.frames.push(b'}');
        }
        self.spans.push((start, own_end, self.frames.len()));
        self.payloads.push(payload);
        Ok(())
    }

    fn finish_frame(&mut self) {
        if let Some((frame, first)) = self.open.take() {
            frame.finish(&mut self.frames, self.payloads[first..].iter());
        }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Closes the last frame; the batch is then written, not added to.
    pub fn seal(mut self) -> SealedEvents {
        self.finish_frame();
        SealedEvents {
            frames: Bytes::from(self.frames),
            spans: self.spans,
            payloads: self.payloads,
        }
    }
}

/// A batch of encoded events, ready to be written.
pub struct SealedEvents {
    frames: Bytes,
    spans: Vec<(usize, usize, usize)>,
    payloads: Vec<Bytes>,
}

impl SealedEvents {
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Version 2, every event: the frames as they were encoded.
    pub fn all_v2(&self) -> Bytes {
        self.frames.clone()
    }

    /// Version 1: a frame per event, `{"type":"event","event":...}`.
    pub fn write_v1(&self, out: &mut Vec<u8>, events: impl Iterator<Item = usize>) {
        for i in events {
            let (start, own_end, _) = self.spans[i];
            let own = &self.frames[start + 1..own_end];
            let payload = &self.payloads[i];
            let head = br#"{"type":"event","#;
            let header_len = head.len() + own.len() + 1;
            out.extend_from_slice(&(header_len as u32).to_be_bytes());
            out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            out.extend_from_slice(head);
            out.extend_from_slice(own);
            out.push(b'}');
            out.extend_from_slice(payload);
        }
    }

    /// Version 2, some events: `events` frames of those alone.
    pub fn write_v2(&self, out: &mut Vec<u8>, events: impl Iterator<Item = usize>) {
        let mut frame = FrameInProgress::start(out);
        let mut payloads: Vec<&Bytes> = Vec::new();
        for i in events {
            let (start, _, end) = self.spans[i];
            let entry = &self.frames[start..end];
            if frame.entries > 0 && frame.header_len(out) + entry.len() + 3 > EVENTS_HEADER_BYTES_MAX {
                frame.finish(out, payloads.iter().copied());
                payloads.clear();
                frame = FrameInProgress::start(out);
            }
            if frame.entries > 0 {
                out.push(b',');
            }
            out.extend_from_slice(entry);
            let payload = &self.payloads[i];
            if !payload.is_empty() {
                payloads.push(payload);
            }
            frame.entries += 1;
        }
        match frame.entries {
            0 => out.truncate(frame.start),
            _ => frame.finish(out, payloads.iter().copied()),
        }
    }
}

/// An `events` frame being written at `start` of the output.
struct FrameInProgress {
    start: usize,
    entries: usize,
}

impl FrameInProgress {
    fn start(out: &mut Vec<u8>) -> FrameInProgress {
        let start = out.len();
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(EVENTS_FRAME_PREFIX);
        FrameInProgress { start, entries: 0 }
    }

    fn header_len(&self, out: &[u8]) -> usize {
        out.len() - self.start - 8
    }

    /// Closes the header and appends the payloads of its events.
    fn finish<'a>(&self, out: &mut Vec<u8>, payloads: impl Iterator<Item = &'a Bytes> + Clone) {
        out.extend_from_slice(b"]}");
        let header_len = self.header_len(out) as u32;
        let payload_len: usize = payloads.clone().map(|p| p.len()).sum();
        out[self.start..self.start + 4].copy_from_slice(&header_len.to_be_bytes());
        out[self.start + 4..self.start + 8].copy_from_slice(&(payload_len as u32).to_be_bytes());
        for payload in payloads {
            out.extend_from_slice(payload);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::frame::FrameReader;
    use crate::control::ServerMessage;

    fn sample() -> Vec<(EngineEvent, Bytes)> {
        vec![
            (
                EngineEvent::SessionReady {
                    session_id: "a".into(),
                },
                Bytes::new(),
            ),
            (
                EngineEvent::MessageReceived {
                    session_id: "a".into(),
                    message_id: "m1".into(),
                    content_type: "text/plain".into(),
                    size: 5,
                    path: None,
                    report_held: false,
                },
                Bytes::from_static(b"hello"),
            ),
            (
                EngineEvent::Failed {
                    session_id: "b".into(),
                    message: 7,
                    message_id: "m2".into(),
                    status: Some(415),
                    reason: "no".into(),
                    bytes_acked: 0,
                },
                Bytes::new(),
            ),
        ]
    }

    fn encoded() -> SealedEvents {
        let mut encoded = EncodedEvents::default();
        for (event, payload) in sample() {
            encoded.push(&event, payload).unwrap();
        }
        encoded.seal()
    }

    #[test]
    fn version_1_frames_are_what_serde_writes_for_one_event() {
        let mut out = Vec::new();
        encoded().write_v1(&mut out, 0..3);
        let mut expected = Vec::new();
        for (event, payload) in sample() {
            crate::control::frame::encode(&mut expected, &ServerMessage::Event(event), &payload).unwrap();
        }
        assert_eq!(out, expected);
    }

    #[test]
    fn every_event_in_version_2_is_the_frame_as_encoded() {
        let encoded = encoded();
        let mut cut = Vec::new();
        encoded.write_v2(&mut cut, 0..3);
        assert_eq!(cut, encoded.all_v2());
        let mut reader = FrameReader::new(1 << 20);
        reader.buffer().extend_from_slice(&cut);
        let frame = reader.next_frame().unwrap().unwrap();
        let ServerMessage::Events(batch) = frame.parse().unwrap() else {
            panic!("not an events frame")
        };
        let events: Vec<EngineEvent> = batch.events.into_iter().map(|e| e.event).collect();
        let expected: Vec<EngineEvent> = sample().into_iter().map(|(e, _)| e).collect();
        assert_eq!(events, expected);
        assert_eq!(&frame.payload[..], b"hello");
    }

    #[test]
    fn version_2_frames_carry_the_events_and_their_payloads_in_order() {
        let mut out = Vec::new();
        encoded().write_v2(&mut out, [1, 2].into_iter());
        let mut reader = FrameReader::new(1 << 20);
        reader.buffer().extend_from_slice(&out);
        let frame = reader.next_frame().unwrap().unwrap();
        assert!(frame.header.starts_with(EVENTS_FRAME_PREFIX));
        let ServerMessage::Events(batch) = frame.parse().unwrap() else {
            panic!("not an events frame")
        };
        let sample = sample();
        assert_eq!(batch.events.len(), 2);
        assert_eq!(batch.events[0].event, sample[1].0);
        assert_eq!(batch.events[0].payload_len, 5);
        assert_eq!(batch.events[1].event, sample[2].0);
        assert_eq!(&frame.payload[..], b"hello");
        assert!(reader.next_frame().unwrap().is_none());
    }

    #[test]
    fn a_large_batch_splits_into_frames_within_the_header_bound() {
        let mut encoded = EncodedEvents::default();
        let event = EngineEvent::SessionClosed {
            session_id: "x".repeat(200),
            reason: "y".repeat(200),
        };
        for _ in 0..1000 {
            encoded.push(&event, Bytes::from_static(b"z")).unwrap();
        }
        let encoded = encoded.seal();
        let mut out = Vec::new();
        encoded.write_v2(&mut out, 0..1000);
        assert_eq!(out, encoded.all_v2(), "all of them, cut or as encoded");
        let mut reader = FrameReader::new(1 << 20);
        reader.buffer().extend_from_slice(&out);
        let (mut events, mut frames) = (0, 0);
        while let Some(frame) = reader.next_frame().unwrap() {
            assert!(frame.header.len() <= EVENTS_HEADER_BYTES_MAX);
            let ServerMessage::Events(batch) = frame.parse().unwrap() else {
                panic!("not an events frame")
            };
            assert_eq!(frame.payload.len(), batch.events.len());
            events += batch.events.len();
            frames += 1;
        }
        assert_eq!(events, 1000);
        assert!(frames > 1, "400 KiB of events in one 64 KiB header?");
        let mut none = Vec::new();
        encoded.write_v2(&mut none, std::iter::empty());
        assert!(none.is_empty());
    }

    #[test]
    fn an_event_missing_a_field_its_kind_needs_is_refused_by_name() {
        let error =
            serde_json::from_str::<EngineEvent>(r#"{"event":"delivered","session_id":"a","message":1}"#)
                .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("missing field `message_id` in a \"delivered\" event"),
            "{error}"
        );
    }
}
