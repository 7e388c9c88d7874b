//! Message framing (RFC 3261 18.3): on a stream the Content-Length header
//! delimits each message; on a datagram the datagram is the message and
//! Content-Length only trims it.
//!
//! The framer reads just enough of the head to find Content-Length (long or
//! compact `l`, possibly folded); everything else is `normalize`'s job.

use bytes::{Buf, Bytes, BytesMut};
use memchr::memmem;

/// Every bound of the message layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Whole message, head and body.
    pub message_bytes_max: usize,
    /// Start line and header fields up to and including the blank line.
    pub head_bytes_max: usize,
    /// Header fields (after unfolding).
    pub headers_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            message_bytes_max: 65536,
            head_bytes_max: 16384,
            headers_max: 256,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// RFC 3261 18.3: on a stream Content-Length MUST be present.
    #[error("no Content-Length on a stream transport")]
    MissingContentLength,
    #[error("unparseable Content-Length {value:?}")]
    InvalidContentLength { value: String },
    #[error("Content-Length given twice with different values")]
    ConflictingContentLength,
    /// Head not complete within the limit, or a datagram over the limit.
    #[error("message exceeds the {limit}-octet limit")]
    TooLarge { limit: usize },
    /// The head was read but the declared body would pass the limit.
    #[error("declared body of {declared} octets passes the {limit}-octet message limit")]
    BodyTooLarge { declared: usize, limit: usize },
    /// RFC 3261 18.3: a datagram body shorter than Content-Length.
    #[error("body is {got} octets, Content-Length says {declared}")]
    BodyTruncated { declared: usize, got: usize },
    #[error("no blank line ends the header section")]
    HeadUnterminated,
    #[error("datagram holds no message")]
    Empty,
}

impl FrameError {
    /// Whether the head could be read, so that a 400 (or 413) can be
    /// addressed from it; otherwise the shell can only close or drop.
    pub fn head_readable(&self) -> bool {
        matches!(
            self,
            FrameError::MissingContentLength
                | FrameError::InvalidContentLength { .. }
                | FrameError::ConflictingContentLength
                | FrameError::BodyTooLarge { .. }
                | FrameError::BodyTruncated { .. }
        )
    }
}

const CRLF2: &[u8] = b"\r\n\r\n";

/// Content-Length of a head (`head` ends with the blank line), `None` when
/// absent. RFC 3261 7.3.1: names are case-insensitive, `l` is the compact
/// form, a value may be folded onto the next line.
pub fn content_length(head: &[u8]) -> Result<Option<usize>, FrameError> {
    let mut found: Option<usize> = None;
    let mut lines = head.split(|b| *b == b'\n').skip(1).peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let mut value = line[colon + 1..].to_vec();
        while let Some(next) = lines.peek() {
            if next.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                value.push(b' ');
                value.extend_from_slice(next.strip_suffix(b"\r").unwrap_or(next));
                lines.next();
            } else {
                break;
            }
        }
        let v = value.trim_ascii();
        // Content-Length = 1*DIGIT (RFC 3261 20.14); ten digits pass any limit.
        if v.is_empty() || v.len() > 10 || !v.iter().all(u8::is_ascii_digit) {
            return Err(FrameError::InvalidContentLength {
                value: String::from_utf8_lossy(v).into_owned(),
            });
        }
        let n = v.iter().fold(0usize, |acc, d| acc * 10 + usize::from(d - b'0'));
        match found {
            Some(prev) if prev != n => return Err(FrameError::ConflictingContentLength),
            _ => found = Some(n),
        }
    }
    Ok(found)
}

/// RFC 5626 3.5.1: CRLF keep-alives may precede a message.
fn skip_crlf(buf: &[u8]) -> usize {
    let mut i = 0;
    while buf[i..].starts_with(b"\r\n") {
        i += 2;
    }
    i
}

/// Frames one stream (TCP, TLS). Push what was read, then take messages
/// until `Ok(None)`. After an error the stream is out of sync for good.
#[derive(Debug)]
pub struct StreamFramer {
    limits: Limits,
    buf: BytesMut,
    failed: Option<FrameError>,
}

impl StreamFramer {
    pub fn new(limits: Limits) -> StreamFramer {
        StreamFramer {
            limits,
            buf: BytesMut::new(),
            failed: None,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Octets held that are not yet a whole message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub fn next_message(&mut self) -> Result<Option<Bytes>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.frame();
        if let Err(e) = &r {
            self.failed = Some(e.clone());
            self.buf.clear();
        }
        r
    }

    fn frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        let skip = skip_crlf(&self.buf);
        self.buf.advance(skip);
        // A lone CR may be the start of a keep-alive: wait.
        if self.buf.is_empty() || &self.buf[..] == b"\r" {
            return Ok(None);
        }
        let window = &self.buf[..self.buf.len().min(self.limits.head_bytes_max)];
        let Some(end) = memmem::find(window, CRLF2) else {
            if self.buf.len() >= self.limits.head_bytes_max {
                return Err(FrameError::TooLarge {
                    limit: self.limits.head_bytes_max,
                });
            }
            return Ok(None);
        };
        let head_len = end + CRLF2.len();
        let declared = content_length(&self.buf[..head_len])?.ok_or(FrameError::MissingContentLength)?;
        let total = head_len.saturating_add(declared);
        if total > self.limits.message_bytes_max {
            return Err(FrameError::BodyTooLarge {
                declared,
                limit: self.limits.message_bytes_max,
            });
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        Ok(Some(self.buf.split_to(total).freeze()))
    }
}

/// Frames one UDP datagram (RFC 3261 18.3): octets past Content-Length are
/// discarded; no Content-Length means the body is the rest of the datagram.
pub fn frame_datagram(bytes: Bytes, limits: &Limits) -> Result<Bytes, FrameError> {
    if bytes.len() > limits.message_bytes_max {
        return Err(FrameError::TooLarge {
            limit: limits.message_bytes_max,
        });
    }
    let start = skip_crlf(&bytes);
    let msg = &bytes[start..];
    if msg.is_empty() {
        return Err(FrameError::Empty);
    }
    let window = &msg[..msg.len().min(limits.head_bytes_max)];
    let end = memmem::find(window, CRLF2).ok_or(if msg.len() > limits.head_bytes_max {
        FrameError::TooLarge {
            limit: limits.head_bytes_max,
        }
    } else {
        FrameError::HeadUnterminated
    })?;
    let head_len = end + CRLF2.len();
    let body_avail = msg.len() - head_len;
    let body_len = match content_length(&msg[..head_len])? {
        Some(declared) if declared > body_avail => {
            return Err(FrameError::BodyTruncated {
                declared,
                got: body_avail,
            });
        }
        Some(declared) => declared,
        None => body_avail,
    };
    Ok(bytes.slice(start..start + head_len + body_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nl: 3\r\n\r\nabc";
    const B: &[u8] = b"OPTIONS sip:c@d SIP/2.0\r\nContent-Length:\r\n 0\r\n\r\n";

    #[test]
    fn stream_pipelined_keepalive_and_short_reads() {
        let mut f = StreamFramer::new(Limits::default());
        f.push(b"\r\n\r\n");
        assert_eq!(f.next_message(), Ok(None));
        let both = [A, B].concat();
        f.push(&both[..10]);
        assert_eq!(f.next_message(), Ok(None));
        f.push(&both[10..]);
        assert_eq!(f.next_message().unwrap().as_deref(), Some(A));
        assert_eq!(f.next_message().unwrap().as_deref(), Some(B));
        assert_eq!(f.next_message(), Ok(None));
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn stream_errors_poison() {
        let mut f = StreamFramer::new(Limits::default());
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n");
        assert_eq!(f.next_message(), Err(FrameError::MissingContentLength));
        assert!(FrameError::MissingContentLength.head_readable());
        f.push(A);
        assert_eq!(f.next_message(), Err(FrameError::MissingContentLength));
        let mut f = StreamFramer::new(Limits {
            head_bytes_max: 16,
            ..Limits::default()
        });
        f.push(&[b'x'; 20]);
        assert_eq!(f.next_message(), Err(FrameError::TooLarge { limit: 16 }));
        let mut f = StreamFramer::new(Limits::default());
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -999\r\n\r\n");
        assert!(matches!(
            f.next_message(),
            Err(FrameError::InvalidContentLength { .. })
        ));
    }

    #[test]
    fn datagram() {
        let l = Limits::default();
        let d = frame_datagram(Bytes::from([A, b"trailing"].concat()), &l).unwrap();
        assert_eq!(&d[..], A);
        let nocl = Bytes::from_static(b"OPTIONS sip:a@b SIP/2.0\r\n\r\nrest");
        assert_eq!(frame_datagram(nocl.clone(), &l).unwrap(), nocl);
        let short = Bytes::from_static(b"OPTIONS sip:a@b SIP/2.0\r\nl: 9\r\n\r\nabc");
        assert_eq!(
            frame_datagram(short, &l),
            Err(FrameError::BodyTruncated { declared: 9, got: 3 })
        );
        let two = Bytes::from_static(b"OPTIONS sip:a@b SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nab");
        assert_eq!(frame_datagram(two, &l), Err(FrameError::ConflictingContentLength));
    }
}
