//! Control-socket framing: `u32 header_len | u32 payload_len | header JSON |
//! payload`, lengths big-endian. The payload is never re-encoded.

use bytes::{Buf, Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The largest header a peer may send: a `batch` of a few thousand
/// operations (the engine's `--batch-ops-max` bounds them further).
pub const HEADER_BYTES_MAX: u32 = 1024 * 1024;

/// The default bound on a payload (an inline message body).
pub const PAYLOAD_BYTES_MAX: u32 = 64 * 1024 * 1024;

/// Why a byte stream is not a stream of control frames.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("control frame header of {0} octets is over the limit of {HEADER_BYTES_MAX}")]
    HeaderTooLarge(u32),
    #[error("control frame payload of {len} octets is over the limit of {max}")]
    PayloadTooLarge { len: u64, max: u32 },
    #[error("control frame header is not valid JSON: {0}")]
    Json(serde_json::Error),
    /// Valid JSON, but one field's value is not what the message allows;
    /// serde's text lists the allowed values (`unknown variant `sideways`,
    /// expected `active` or `passive``).
    #[error("field `{field}`: {error}")]
    Field { field: String, error: serde_json::Error },
    /// Valid JSON, but not a message, and no one field is to blame (a
    /// missing field, which serde names, or not an object at all).
    #[error("{0}")]
    Invalid(serde_json::Error),
}

// Not `#[from]`: that would make the JSON error the source too, and error
// chains would print it twice.
impl From<serde_json::Error> for FrameError {
    fn from(error: serde_json::Error) -> FrameError {
        FrameError::Json(error)
    }
}

/// Appends one frame to `out`.
pub fn encode(out: &mut Vec<u8>, header: &impl Serialize, payload: &[u8]) -> Result<(), FrameError> {
    // The other end refuses (and closes on) a larger payload, and one over
    // 4 GiB would not even fit its length field.
    if payload.len() > PAYLOAD_BYTES_MAX as usize {
        return Err(FrameError::PayloadTooLarge {
            len: payload.len() as u64,
            max: PAYLOAD_BYTES_MAX,
        });
    }
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    serde_json::to_writer(&mut *out, header)?;
    let header_len = (out.len() - start - 8) as u32;
    if header_len > HEADER_BYTES_MAX {
        out.truncate(start);
        return Err(FrameError::HeaderTooLarge(header_len));
    }
    out[start..start + 4].copy_from_slice(&header_len.to_be_bytes());
    out[start + 4..start + 8].copy_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// One frame: the header's JSON text and the payload.
#[derive(Debug)]
pub struct Frame {
    pub header: Bytes,
    pub payload: Bytes,
}

/// Fields tried one by one to name the one a header's error is about; a
/// header with more (unknown fields are ignored, so a peer may send
/// thousands) gets serde's message alone, so an error costs at most this
/// many more parses.
const FIELDS_BLAMED_MAX: usize = 32;

/// The fields that say what a message is and which it answers: blamed only
/// when no other field is, since without them every header is wrong.
const ENVELOPE_FIELDS: [&str; 4] = ["id", "cmd", "type", "event"];

impl Frame {
    /// The header as `T`; a header that is JSON but not a `T` gets an error
    /// that names the field at fault where one is.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, FrameError> {
        match serde_json::from_slice(&self.header) {
            Ok(message) => Ok(message),
            Err(error) if error.is_data() => Err(blame_field::<T>(&self.header, error)),
            Err(error) => Err(FrameError::Json(error)),
        }
    }
}

/// The error of a header that is JSON but not a `T`, naming the field it is
/// about. serde says what is wrong but not where: the command enum is
/// flattened into the request, so its fields are buffered and the path is
/// lost (and the position points at the end of the object). The field to
/// blame is the one whose removal changes the error: another wrong field
/// removed leaves the first error as it was.
fn blame_field<T: DeserializeOwned>(header: &[u8], error: serde_json::Error) -> FrameError {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(header) else {
        return FrameError::Invalid(error);
    };
    // Deserialized from the value, the error carries no misleading position.
    let Err(error) = T::deserialize(&value) else {
        return FrameError::Invalid(error);
    };
    let serde_json::Value::Object(mut object) = value else {
        return FrameError::Invalid(error);
    };
    if object.len() > FIELDS_BLAMED_MAX {
        return FrameError::Invalid(error);
    }
    let message = error.to_string();
    // serde's own wording (`de::Error::missing_field`) names the field; and
    // as every removal changes it, no present field could be blamed.
    if message.starts_with("missing field") {
        return FrameError::Invalid(error);
    }
    let (envelope, fields): (Vec<String>, Vec<String>) = object
        .keys()
        .cloned()
        .partition(|k| ENVELOPE_FIELDS.contains(&k.as_str()));
    for field in fields.into_iter().chain(envelope) {
        let Some(removed) = object.remove(&field) else {
            continue;
        };
        let changed = T::deserialize(&object)
            .err()
            .is_none_or(|other| other.to_string() != message);
        if changed {
            return FrameError::Field { field, error };
        }
        object.insert(field, removed);
    }
    FrameError::Invalid(error)
}

/// Splits a byte stream into frames; bytes arrive in any split.
#[derive(Debug)]
pub struct FrameReader {
    buffer: BytesMut,
    payload_bytes_max: u32,
}

impl FrameReader {
    pub fn new(payload_bytes_max: u32) -> FrameReader {
        FrameReader {
            buffer: BytesMut::with_capacity(64 * 1024),
            payload_bytes_max,
        }
    }

    /// Where the next bytes from the stream go.
    pub fn buffer(&mut self) -> &mut BytesMut {
        &mut self.buffer
    }

    /// The next whole frame, `None` until one is there.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if self.buffer.len() < 8 {
            return Ok(None);
        }
        let header_len = u32::from_be_bytes(self.buffer[0..4].try_into().unwrap_or_default());
        let payload_len = u32::from_be_bytes(self.buffer[4..8].try_into().unwrap_or_default());
        if header_len > HEADER_BYTES_MAX {
            return Err(FrameError::HeaderTooLarge(header_len));
        }
        if payload_len > self.payload_bytes_max {
            return Err(FrameError::PayloadTooLarge {
                len: payload_len.into(),
                max: self.payload_bytes_max,
            });
        }
        let total = 8 + header_len as usize + payload_len as usize;
        if self.buffer.len() < total {
            self.buffer.reserve(total - self.buffer.len());
            return Ok(None);
        }
        self.buffer.advance(8);
        let header = self.buffer.split_to(header_len as usize).freeze();
        let payload = self.buffer.split_to(payload_len as usize).freeze();
        Ok(Some(Frame { header, payload }))
    }

    /// Octets of an unfinished frame.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{Command, Request};

    #[test]
    fn frames_survive_any_split() {
        let mut wire = Vec::new();
        for id in 0..3u64 {
            let request = Request {
                id,
                command: Command::Stats,
            };
            encode(&mut wire, &request, &vec![id as u8; id as usize * 1000]).unwrap();
        }
        for split in [1, 7, 8, 9, 100, wire.len()] {
            let mut reader = FrameReader::new(PAYLOAD_BYTES_MAX);
            let mut got = Vec::new();
            for piece in wire.chunks(split) {
                reader.buffer().extend_from_slice(piece);
                while let Some(frame) = reader.next_frame().unwrap() {
                    let request: Request = frame.parse().unwrap();
                    assert_eq!(frame.payload.len(), request.id as usize * 1000);
                    got.push(request.id);
                }
            }
            assert_eq!(got, [0, 1, 2], "split {split}");
            assert_eq!(reader.buffered(), 0);
        }
    }

    #[test]
    fn oversized_lengths_are_refused_before_buffering() {
        let mut reader = FrameReader::new(1024);
        reader.buffer().extend_from_slice(&[0, 0, 0, 2, 0, 0, 4, 1]);
        assert!(matches!(
            reader.next_frame(),
            Err(FrameError::PayloadTooLarge { len: 1025, max: 1024 })
        ));
        let mut reader = FrameReader::new(1024);
        reader.buffer().extend_from_slice(&[0, 0x10, 0, 1, 0, 0, 0, 0]);
        assert!(matches!(
            reader.next_frame(),
            Err(FrameError::HeaderTooLarge(1_048_577))
        ));
    }

    fn parse_error(header: &str) -> String {
        let frame = Frame {
            header: Bytes::copy_from_slice(header.as_bytes()),
            payload: Bytes::new(),
        };
        frame.parse::<Request>().unwrap_err().to_string()
    }

    #[test]
    fn a_wrong_value_names_its_field_and_the_allowed_values() {
        let cases = [
            (
                r#"{"id":1,"cmd":"create_session","role":"sideways","remote_path":["msrp://h/x;tcp"]}"#,
                "field `role`: unknown variant `sideways`, expected `active` or `passive`",
            ),
            (
                r#"{"id":2,"cmd":"send","session_id":"x","content_type":"a/b","failure_report":"maybe"}"#,
                "field `failure_report`: unknown variant `maybe`, expected one of `yes`, `no`, `partial`",
            ),
            (
                r#"{"id":3,"cmd":"send","session_id":"x","success_report":"yes"}"#,
                r#"field `success_report`: invalid type: string "yes", expected a boolean"#,
            ),
            (
                r#"{"id":4,"cmd":"launch","role":"passive"}"#,
                "field `cmd`: unknown variant `launch`, expected one of `hello`, `create_session`, \
                 `send`, `close_session`, `update_session`, `report`, `batch`, `stats`, `subscribe`",
            ),
            (
                r#"{"id":"x","cmd":"stats"}"#,
                r#"field `id`: invalid type: string "x", expected u64"#,
            ),
            (
                r#"{"id":5,"cmd":"close_session","session_id":7}"#,
                "field `session_id`: invalid type: integer `7`, expected a string",
            ),
            // Two wrong fields: the one serde reports is the one named.
            (
                r#"{"id":6,"cmd":"create_session","direction":"up","role":"sideways"}"#,
                "field `direction`: unknown variant `up`, expected one of `sendrecv`, `sendonly`, \
                 `recvonly`, `inactive`",
            ),
            (r#"{"id":7,"cmd":"close_session"}"#, "missing field `session_id`"),
            (r#"[1, 2]"#, "invalid type: sequence, expected struct Request"),
        ];
        for (header, expected) in cases {
            assert_eq!(parse_error(header), expected, "{header}");
        }
        let broken = parse_error(r#"{"id":8,"cmd":"stats""#);
        assert!(
            broken.starts_with("control frame header is not valid JSON: EOF"),
            "{broken}"
        );
    }

    #[test]
    fn a_payload_over_the_limit_is_not_encoded() {
        let mut out = Vec::new();
        let payload = vec![0; PAYLOAD_BYTES_MAX as usize + 1];
        let request = Request {
            id: 1,
            command: Command::Stats,
        };
        assert!(matches!(
            encode(&mut out, &request, &payload),
            Err(FrameError::PayloadTooLarge { len, .. }) if len == u64::from(PAYLOAD_BYTES_MAX) + 1
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn wire_names_are_stable() {
        let request: Request =
            serde_json::from_str(r#"{"id":4,"cmd":"send","session_id":"abc","content_type":"text/plain"}"#)
                .unwrap();
        assert_eq!(request.id, 4);
        assert!(matches!(request.command, Command::Send(ref s) if s.session_id == "abc"));
        let event = crate::control::ServerMessage::Event(crate::control::EngineEvent::SessionReady {
            session_id: "abc".into(),
        });
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"type":"event","event":"session_ready","session_id":"abc"}"#
        );
    }
}
