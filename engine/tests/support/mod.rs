//! Test support: where the vectors live, and a parser driver that
//! records everything a stream decodes to.
#![allow(dead_code)]

pub mod pipe;

use std::path::PathBuf;

use msrp_engine::proto::{Continuation, Event, FrameKind, Parser, ParserConfig};

/// The project's own `vectors/` at the workspace root. Panics when it is
/// missing: these tests must not pass vacuously.
pub fn vectors_dir() -> PathBuf {
    let vectors = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vectors");
    assert!(
        vectors.join("manifest.json").is_file(),
        "test vectors not found at {}",
        vectors.display()
    );
    vectors
}

pub fn manifest() -> Vec<serde_json::Value> {
    let path = vectors_dir().join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn vector_bytes(entry: &serde_json::Value) -> Vec<u8> {
    let path = vectors_dir().join(entry["file"].as_str().expect("vector without file"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One frame as decoded: framing fields, headers in order, the body gathered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedFrame {
    pub response: bool,
    pub tid: String,
    /// Method name of a request.
    pub method: Option<String>,
    /// Status code of a response.
    pub status: Option<u16>,
    pub flag: Continuation,
    /// `None` for a bodiless frame.
    pub body: Option<Vec<u8>>,
    pub headers: Vec<(String, String)>,
}

impl DecodedFrame {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An error and where in the stream it came.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedError {
    pub kind: &'static str,
    /// The whole error value (which limit, which header, ...).
    pub detail: String,
    pub delimitable: bool,
    pub reaction: &'static str,
    pub offset: u64,
    /// Good frames decoded before it.
    pub after_frames: usize,
    /// What the parser could still tell of a delimited bad frame.
    pub frame: Option<DecodedFrame>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    pub frames: Vec<DecodedFrame>,
    pub errors: Vec<DecodedError>,
}

/// Feeds `bytes` cut at `cuts` (sorted offsets), polling after every piece,
/// then finishes the stream.
pub fn decode(bytes: &[u8], config: ParserConfig, cuts: &[usize]) -> Decoded {
    let mut parser = Parser::new(config);
    let mut out = Decoded::default();
    let mut current: Option<DecodedFrame> = None;
    let mut at = 0;
    let mut failed = false;
    for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
        let cut = cut.clamp(at, bytes.len());
        parser.feed(&bytes[at..cut]);
        at = cut;
        if !failed {
            failed = drain(&mut parser, &mut out, &mut current);
        }
    }
    if !failed {
        if let Err(error) = parser.finish() {
            out.errors.push(DecodedError {
                kind: error.kind(),
                detail: format!("{error:?}"),
                delimitable: error.delimitable(),
                reaction: error.reaction().as_str(),
                offset: parser.frame_offset(),
                after_frames: out.frames.len(),
                frame: None,
            });
        }
    }
    out
}

/// Polls until more input is needed; `true` when the stream failed.
fn drain(parser: &mut Parser, out: &mut Decoded, current: &mut Option<DecodedFrame>) -> bool {
    loop {
        match parser.poll() {
            Ok(None) => return false,
            Ok(Some(Event::Head(head))) => {
                assert!(current.is_none(), "Head inside a frame");
                let (response, method, status) = match head.kind() {
                    FrameKind::Request(m) => (false, Some(m.as_str().to_owned()), None),
                    FrameKind::Response { status } => (true, None, Some(*status)),
                };
                *current = Some(DecodedFrame {
                    response,
                    tid: head.transaction_id().to_string(),
                    method,
                    status,
                    flag: Continuation::Last,
                    body: head.has_body().then(Vec::new),
                    headers: head
                        .headers()
                        .map(|(n, v)| (n.to_owned(), v.to_owned()))
                        .collect(),
                });
            }
            Ok(Some(Event::Body(piece))) => {
                let frame = current.as_mut().expect("Body outside a frame");
                frame
                    .body
                    .as_mut()
                    .expect("Body in a bodiless frame")
                    .extend_from_slice(&piece);
            }
            Ok(Some(Event::End(flag))) => {
                let mut frame = current.take().expect("End outside a frame");
                frame.flag = flag;
                out.frames.push(frame);
            }
            Ok(Some(Event::Malformed(bad))) => {
                current.take();
                let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                let start_line = text(bad.start_line());
                let third = start_line
                    .split(' ')
                    .filter(|t| !t.is_empty())
                    .nth(2)
                    .map(str::to_owned);
                let status = third.as_deref().and_then(|t| t.parse().ok());
                out.errors.push(DecodedError {
                    kind: bad.error.kind(),
                    detail: format!("{:?}", bad.error),
                    delimitable: bad.error.delimitable(),
                    reaction: bad.error.reaction().as_str(),
                    offset: bad.offset,
                    after_frames: out.frames.len(),
                    frame: Some(DecodedFrame {
                        response: status.is_some(),
                        tid: text(bad.transaction_id()),
                        method: if status.is_some() { None } else { third },
                        status,
                        flag: bad.flag,
                        body: bad.body_len.map(|n| vec![0; n as usize]),
                        headers: bad.headers().map(|(n, v)| (text(n), text(v))).collect(),
                    }),
                });
            }
            Err(error) => {
                out.errors.push(DecodedError {
                    kind: error.kind(),
                    detail: format!("{error:?}"),
                    delimitable: error.delimitable(),
                    reaction: error.reaction().as_str(),
                    offset: parser.frame_offset(),
                    after_frames: out.frames.len(),
                    frame: None,
                });
                return true;
            }
        }
    }
}
