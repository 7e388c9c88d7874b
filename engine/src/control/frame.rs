//! Control-socket framing: `u32 header_len | u32 payload_len | header JSON |
//! payload`, lengths big-endian. The payload is never re-encoded.

use bytes::{Buf, Bytes, BytesMut};
use serde::Serialize;

/// The largest header a peer may send (a descriptor with long paths fits
/// many times over).
pub const HEADER_BYTES_MAX: u32 = 64 * 1024;

/// The default bound on a payload (an inline message body).
pub const PAYLOAD_BYTES_MAX: u32 = 64 * 1024 * 1024;

/// Why a byte stream is not a stream of control frames.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("control frame header of {0} octets is over the limit of {HEADER_BYTES_MAX}")]
    HeaderTooLarge(u32),
    #[error("control frame payload of {len} octets is over the limit of {max}")]
    PayloadTooLarge { len: u32, max: u32 },
    #[error("control frame header is not valid JSON: {0}")]
    Json(serde_json::Error),
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

impl Frame {
    pub fn parse<'de, T: serde::Deserialize<'de>>(&'de self) -> Result<T, FrameError> {
        Ok(serde_json::from_slice(&self.header)?)
    }
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
                len: payload_len,
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
        reader.buffer().extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 0]);
        assert!(matches!(
            reader.next_frame(),
            Err(FrameError::HeaderTooLarge(65537))
        ));
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
