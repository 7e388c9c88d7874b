//! The SEND requests wirebench writes, as wire bytes built once up front so
//! that the client spends its time on I/O, not on formatting.

use std::fmt::Write as _;
use std::ops::Range;

use bytes::{Bytes, BytesMut};

/// The paths of one session as its SENDs carry them (RFC 4975 6.1: To-Path
/// names the receiver, From-Path the sender).
#[derive(Clone, Debug)]
pub struct SessionPaths {
    pub to_path: String,
    pub from_path: String,
}

/// Body octets: letters and digits, so a body never holds an end-line
/// (RFC 4975 7.1: the receiver looks for `CRLF "-------" tid`).
pub fn pattern_body(len: usize) -> Bytes {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    ALPHABET
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect::<Vec<u8>>()
        .into()
}

/// A window of whole-message SENDs for one session, cut in two halves so the
/// writer can refill one half while the peer works through the other.
#[derive(Clone, Debug)]
pub struct SmallBatch {
    pub bytes: Bytes,
    /// The byte range of each half and how many requests it holds.
    pub halves: [(Range<usize>, u64); 2],
}

/// `window` SENDs, each a whole message of `body_len` octets in one chunk,
/// with distinct transaction ids and Message-IDs. The batch is sent over and
/// over; a transaction id comes back into use only after its response, since
/// the writer never has more than `window` requests outstanding.
pub fn small_batch(paths: &SessionPaths, conn: usize, window: usize, body_len: usize) -> SmallBatch {
    assert!(window >= 2, "a batch is sent in two halves");
    let body = pattern_body(body_len);
    let mut out = BytesMut::new();
    let mut mid = 0;
    for i in 0..window {
        if i == window / 2 {
            mid = out.len();
        }
        // RFC 4975 9.1: an ident is 4 to 32 characters.
        let tid = format!("s{conn:x}t{i:x}");
        let message_id = format!("wbm{conn:x}n{i:x}");
        let _ = write!(
            Fmt(&mut out),
            "MSRP {tid} SEND\r\nTo-Path: {}\r\nFrom-Path: {}\r\nMessage-ID: {message_id}\r\n\
             Byte-Range: 1-{body_len}/{body_len}\r\nContent-Type: text/plain\r\n\r\n",
            paths.to_path,
            paths.from_path,
        );
        out.extend_from_slice(&body);
        let _ = write!(Fmt(&mut out), "\r\n-------{tid}$\r\n");
    }
    let first = (window / 2) as u64;
    SmallBatch {
        halves: [(0..mid, first), (mid..out.len(), window as u64 - first)],
        bytes: out.freeze(),
    }
}

/// One chunk of a bulk message: head, the shared body, end-line, to be
/// written with one `writev` so the body is never copied.
pub struct Chunk {
    pub head: Bytes,
    pub body: Bytes,
    pub end_line: Bytes,
}

/// An endless run of large messages on one session, each cut into chunks of
/// one body size (RFC 4975 5.1), sent with `Byte-Range: start-end/*`.
pub struct BulkStream {
    paths: SessionPaths,
    body: Bytes,
    /// Octets per message: the next chunk after this many starts a new
    /// Message-ID, so the receiver's max-size is never reached.
    message_bytes: u64,
    message: u64,
    /// Octets of the current message already cut.
    offset: u64,
    chunk: u64,
}

impl BulkStream {
    pub fn new(paths: SessionPaths, chunk_bytes: usize, message_bytes: u64) -> BulkStream {
        assert!(chunk_bytes > 0 && message_bytes >= chunk_bytes as u64);
        BulkStream {
            paths,
            body: pattern_body(chunk_bytes),
            message_bytes,
            message: 0,
            offset: 0,
            chunk: 0,
        }
    }

    pub fn chunk_bytes(&self) -> u64 {
        self.body.len() as u64
    }

    pub fn next_chunk(&mut self) -> Chunk {
        let (start, end) = (self.offset + 1, self.offset + self.chunk_bytes());
        // RFC 4975 7.1: '+' while more chunks of the message follow, '$' on
        // the last.
        let last = end + self.chunk_bytes() > self.message_bytes;
        let flag = if last { '$' } else { '+' };
        let tid = format!("b{:x}c{:x}", self.message, self.chunk);
        let head = format!(
            "MSRP {tid} SEND\r\nTo-Path: {}\r\nFrom-Path: {}\r\nMessage-ID: wbm{:x}\r\n\
             Byte-Range: {start}-{end}/*\r\nContent-Type: application/octet-stream\r\n\r\n",
            self.paths.to_path, self.paths.from_path, self.message,
        );
        let end_line = format!("\r\n-------{tid}{flag}\r\n");
        if last {
            self.message += 1;
            self.offset = 0;
        } else {
            self.offset = end;
        }
        self.chunk += 1;
        Chunk {
            head: head.into(),
            body: self.body.clone(),
            end_line: end_line.into(),
        }
    }
}

/// `fmt::Write` into a `BytesMut`.
struct Fmt<'a>(&'a mut BytesMut);

impl std::fmt::Write for Fmt<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use msrp_engine::proto::{Continuation, Event, Parser};

    fn paths() -> SessionPaths {
        SessionPaths {
            to_path: "msrp://127.0.0.1:2855/wb0x1234;tcp".into(),
            from_path: "msrp://127.0.0.1:9/cl0x1234;tcp".into(),
        }
    }

    /// Parses `stream` with the engine's parser: (transaction ids, bodies
    /// octets, flags) of its frames.
    fn parse(stream: &[u8]) -> Vec<(String, String, u64, Continuation)> {
        let mut parser = Parser::new(Default::default());
        parser.feed(stream);
        let mut frames = Vec::new();
        let (mut head, mut body) = (None, 0);
        while let Some(event) = parser.poll().expect("valid stream") {
            match event {
                Event::Head(h) => {
                    let mid = h.message_id().expect("Message-ID").as_str().to_owned();
                    head = Some((h.transaction_id().as_str().to_owned(), mid));
                    body = 0;
                }
                Event::Body(piece) => body += piece.len() as u64,
                Event::End(flag) => {
                    let (tid, mid) = head.take().expect("a head before the end");
                    frames.push((tid, mid, body, flag));
                }
                Event::Malformed(bad) => panic!("malformed: {bad:?}"),
            }
        }
        frames
    }

    #[test]
    fn small_batch_is_whole_distinct_messages_split_in_halves() {
        let batch = small_batch(&paths(), 3, 7, 160);
        let frames = parse(&batch.bytes);
        assert_eq!(frames.len(), 7);
        let mut tids: Vec<_> = frames.iter().map(|f| f.0.clone()).collect();
        tids.sort();
        tids.dedup();
        assert_eq!(tids.len(), 7);
        assert!(frames.iter().all(|f| f.2 == 160 && f.3 == Continuation::Last));
        let [(first, n0), (second, n1)] = batch.halves.clone();
        assert_eq!((n0, n1), (3, 4));
        assert_eq!(parse(&batch.bytes[first]).len(), 3);
        assert_eq!(parse(&batch.bytes[second]).len(), 4);
    }

    #[test]
    fn bulk_stream_starts_a_new_message_before_the_limit() {
        let mut stream = BulkStream::new(paths(), 1000, 2500);
        let mut wire = Vec::new();
        for _ in 0..5 {
            let chunk = stream.next_chunk();
            wire.extend_from_slice(&chunk.head);
            wire.extend_from_slice(&chunk.body);
            wire.extend_from_slice(&chunk.end_line);
        }
        let flags: Vec<_> = parse(&wire).into_iter().map(|f| (f.1, f.3)).collect();
        assert_eq!(
            flags,
            [
                ("wbm0".to_owned(), Continuation::More),
                ("wbm0".to_owned(), Continuation::Last),
                ("wbm1".to_owned(), Continuation::More),
                ("wbm1".to_owned(), Continuation::Last),
                ("wbm2".to_owned(), Continuation::More),
            ]
        );
    }
}
