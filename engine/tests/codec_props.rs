//! Property tests of the wire codec: split-invariance of the parser and
//! `parse(write(frame)) == frame`.

mod support;

use bytes::{Bytes, BytesMut};
use msrp_engine::proto::{
    write_response, ByteRange, Content, Continuation, FailureReport, MessageId, Method, ParserConfig,
    ReportStatus, Request, SuccessReport, Writer,
};
use proptest::prelude::*;
use support::{decode, Decoded};

fn all_vectors() -> &'static Vec<Vec<u8>> {
    static VECTORS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    VECTORS.get_or_init(|| {
        support::manifest()
            .iter()
            .filter(|v| v["kind"] == "msrp")
            .map(support::vector_bytes)
            .collect()
    })
}

fn cuts(len: usize, raw: Vec<usize>) -> Vec<usize> {
    let mut cuts: Vec<usize> = raw.into_iter().map(|c| c % (len + 1)).collect();
    cuts.sort_unstable();
    cuts
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any split of any stream of vectors (valid and malformed, back to back)
    /// decodes exactly as the whole stream does.
    #[test]
    fn any_split_decodes_like_the_whole(
        picks in prop::collection::vec(any::<prop::sample::Index>(), 1..6),
        raw_cuts in prop::collection::vec(any::<usize>(), 0..40),
        lenient in any::<bool>(),
    ) {
        let vectors = all_vectors();
        let stream: Vec<u8> = picks.iter().flat_map(|i| i.get(vectors).clone()).collect();
        let mut config = ParserConfig::default();
        if lenient {
            config.strictness = msrp_engine::proto::Strictness::Lenient;
        }
        let whole = decode(&stream, config, &[]);
        let split = decode(&stream, config, &cuts(stream.len(), raw_cuts));
        prop_assert_eq!(whole, split);
    }
}

fn ident() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9.+%=-]{3,31}"
}

fn uri() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("msrp"), Just("msrps"), Just("MSRP")],
        prop_oneof![
            "[a-z]{1,10}(\\.[a-z]{2,6}){0,2}".prop_map(|h| h),
            (any::<[u8; 4]>()).prop_map(|o| format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3])),
            Just("[2001:db8::20]".to_owned()),
        ],
        1u16..,
        proptest::option::weighted(0.9, "[A-Za-z0-9_~.+=-]{1,24}"),
        prop_oneof![Just("tcp"), Just("ws"), Just("TCP")],
    )
        .prop_map(|(scheme, host, port, session, transport)| match session {
            Some(id) => format!("{scheme}://{host}:{port}/{id};{transport}"),
            None => format!("{scheme}://{host}:{port};{transport}"),
        })
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(uri(), 1..4).prop_map(|uris| uris.join(" "))
}

/// Bodies that include near-misses of end-lines: CRLF, hyphens, tids, flags.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        Just(b"\r\n".to_vec()),
        Just(b"-------".to_vec()),
        ident().prop_map(|t| format!("\r\n-------{t}$\r\n").into_bytes()),
        ident().prop_map(|t| format!("-------{t}+").into_bytes()),
        Just(b"\r\nMSRP abcd1234 SEND\r\n".to_vec()),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

#[derive(Clone, Debug)]
struct GenRequest {
    method: Method,
    to_path: String,
    from_path: String,
    message_id: Option<String>,
    byte_range: Option<ByteRange>,
    success_report: Option<SuccessReport>,
    failure_report: Option<FailureReport>,
    status: Option<(ReportStatus, String)>,
    mime_headers: Vec<(String, String)>,
    content: Option<(String, Vec<u8>)>,
    continuation: Continuation,
}

fn byte_range() -> impl Strategy<Value = ByteRange> {
    (
        1u64..1 << 40,
        0u64..1 << 20,
        any::<bool>(),
        any::<bool>(),
        0u64..1 << 20,
    )
        .prop_map(|(start, len, star_end, star_total, extra)| {
            let end = start - 1 + len;
            ByteRange {
                start,
                end: (!star_end).then_some(end),
                total: (!star_total).then_some(end + extra),
            }
        })
}

fn request() -> impl Strategy<Value = GenRequest> {
    let method = prop_oneof![
        4 => Just(Method::Send),
        2 => Just(Method::Report),
        1 => "[A-Z]{1,10}".prop_filter("not a known method", |m| m != "SEND" && m != "REPORT")
            .prop_map(|m| Method::Other(Bytes::from(m))),
    ];
    let reports = (
        proptest::option::of(prop_oneof![Just(SuccessReport::Yes), Just(SuccessReport::No)]),
        proptest::option::of(prop_oneof![
            Just(FailureReport::Yes),
            Just(FailureReport::No),
            Just(FailureReport::Partial)
        ]),
    );
    let content = proptest::option::of((
        prop_oneof![
            Just("text/plain".to_owned()),
            Just("message/cpim".to_owned()),
            Just("text/plain;charset=UTF-8".to_owned()),
            Just("application/octet-stream".to_owned())
        ],
        body(),
    ));
    let mime = prop::collection::vec(
        (
            prop_oneof![
                Just("Content-ID".to_owned()),
                Just("Content-Disposition".to_owned()),
                Just("X-Extra".to_owned())
            ],
            "[ -~]{1,40}".prop_filter("no leading/trailing space", |v| v.trim() == v),
        ),
        0..3,
    );
    (
        method,
        path(),
        path(),
        ident(),
        proptest::option::of(byte_range()),
        reports,
        (
            100u16..1000,
            "[ -~]{0,20}".prop_filter("no edge spaces", |c| c.trim() == c),
        ),
        content,
        mime,
        prop_oneof![
            Just(Continuation::More),
            Just(Continuation::Last),
            Just(Continuation::Abort)
        ],
    )
        .prop_map(
            |(method, to_path, from_path, mid, range, (sr, fr), (code, comment), content, mime, flag)| {
                let is_report = method == Method::Report;
                let is_send = method == Method::Send;
                let content = content.map(|(ty, mut body)| {
                    if !is_send {
                        body.truncate(10240);
                    }
                    (ty, body)
                });
                GenRequest {
                    message_id: (is_send || is_report || mid.len() % 2 == 0).then_some(mid),
                    byte_range: range,
                    success_report: if is_report { None } else { sr },
                    failure_report: if is_report { None } else { fr },
                    status: is_report.then_some((ReportStatus { namespace: 0, code }, comment)),
                    mime_headers: if content.is_some() { mime } else { Vec::new() },
                    content,
                    continuation: flag,
                    method,
                    to_path,
                    from_path,
                }
            },
        )
}

/// The writer's view of a generated request; `mime` holds its MIME headers.
fn as_request<'a>(req: &'a GenRequest, mime: &'a [(&'a str, &'a str)]) -> Request<'a> {
    Request {
        method: &req.method,
        to_path: &req.to_path,
        from_path: &req.from_path,
        message_id: req
            .message_id
            .as_deref()
            .map(|m| MessageId::new(m.as_bytes()).expect("ident")),
        byte_range: req.byte_range,
        success_report: req.success_report,
        failure_report: req.failure_report,
        status: req.status.as_ref().map(|(s, c)| (*s, c.as_str())),
        content: req.content.as_ref().map(|(ty, body)| Content {
            content_type: ty,
            mime_headers: mime,
            body: Bytes::copy_from_slice(body),
        }),
        continuation: req.continuation,
    }
}

fn mime_of(req: &GenRequest) -> Vec<(&str, &str)> {
    req.mime_headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

fn write(writer: &mut Writer, req: &GenRequest, out: &mut BytesMut) -> msrp_engine::proto::TransactionId {
    let mime = mime_of(req);
    writer
        .write_request(&as_request(req, &mime), out)
        .expect("generated requests are valid")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// A written request parses back to the same fields and body, in any split.
    #[test]
    fn written_requests_parse_back(
        reqs in prop::collection::vec(request(), 1..4),
        seed in any::<u64>(),
        raw_cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let mut writer = Writer::with_seed(seed);
        let mut wire = BytesMut::new();
        let tids: Vec<_> = reqs.iter().map(|r| write(&mut writer, r, &mut wire)).collect();
        let got: Decoded = decode(&wire, ParserConfig::default(), &cuts(wire.len(), raw_cuts));
        prop_assert!(got.errors.is_empty(), "{:?}", got.errors);
        prop_assert_eq!(got.frames.len(), reqs.len());
        for ((frame, req), tid) in got.frames.iter().zip(&reqs).zip(&tids) {
            prop_assert_eq!(&frame.tid, tid.as_str());
            prop_assert_eq!(frame.method.as_deref(), Some(req.method.as_str()));
            prop_assert_eq!(frame.flag, req.continuation);
            prop_assert_eq!(frame.header("To-Path"), Some(req.to_path.as_str()));
            prop_assert_eq!(frame.header("From-Path"), Some(req.from_path.as_str()));
            prop_assert_eq!(frame.header("Message-ID"), req.message_id.as_deref());
            prop_assert_eq!(frame.header("Byte-Range").map(str::to_owned), req.byte_range.map(|r| r.to_string()));
            prop_assert_eq!(frame.header("Success-Report"), req.success_report.map(|s| s.as_str()));
            prop_assert_eq!(frame.header("Failure-Report"), req.failure_report.map(|f| f.as_str()));
            let status = req.status.as_ref().map(|(s, c)| {
                let code = format!("{:03} {:03}", s.namespace, s.code);
                if c.is_empty() { code } else { format!("{code} {c}") }
            });
            prop_assert_eq!(frame.header("Status").map(str::to_owned), status);
            for (name, value) in &req.mime_headers {
                prop_assert!(frame.headers.contains(&(name.clone(), value.clone())));
            }
            prop_assert_eq!(frame.header("Content-Type"), req.content.as_ref().map(|(t, _)| t.as_str()));
            prop_assert_eq!(frame.body.as_ref(), req.content.as_ref().map(|(_, b)| b));
        }
    }

    /// The vectored encoding is the same bytes as the single-buffer one.
    #[test]
    fn encoded_requests_match_written_ones(req in request(), seed in any::<u64>()) {
        let mut written = BytesMut::new();
        let tid = write(&mut Writer::with_seed(seed), &req, &mut written);
        let mime = mime_of(&req);
        let request = as_request(&req, &mime);
        let encoded = Writer::with_seed(seed).encode_request(&request, &mut BytesMut::new()).expect("valid");
        prop_assert_eq!(encoded.tid, tid);
        let joined = [encoded.head, encoded.body, encoded.tail].concat();
        prop_assert_eq!(&joined[..], &written[..]);
    }

    /// Responses parse back with their status, comment and paths.
    #[test]
    fn written_responses_parse_back(
        code in 100u16..1000,
        comment in proptest::option::of("[!-~][ -~]{0,30}".prop_filter("no trailing space", |c| c.trim_end() == c)),
        to_path in path(),
        from_path in path(),
        seed in any::<u64>(),
    ) {
        let tid = Writer::with_seed(seed).transaction_id();
        let mut wire = BytesMut::new();
        write_response(&mut wire, &tid, code, comment.as_deref(), &to_path, &from_path).expect("valid response");
        let got = decode(&wire, ParserConfig::default(), &[]);
        prop_assert!(got.errors.is_empty(), "{:?}", got.errors);
        let frame = &got.frames[0];
        prop_assert!(frame.response);
        prop_assert_eq!(frame.status, Some(code));
        prop_assert_eq!(&frame.tid, tid.as_str());
        prop_assert_eq!(frame.header("To-Path"), Some(to_path.as_str()));
        prop_assert_eq!(frame.header("From-Path"), Some(from_path.as_str()));
        prop_assert_eq!(frame.body.as_ref(), None);
    }
}

#[test]
fn writer_avoids_a_tid_whose_end_line_is_in_the_body() {
    let seed = 7;
    let first = Writer::with_seed(seed).transaction_id();
    for flag in ["$", "+", "#"] {
        let body = format!("before\r\n-------{first}{flag}\r\nafter");
        let req = GenRequest {
            method: Method::Send,
            to_path: "msrp://b.example.com:1/s;tcp".into(),
            from_path: "msrp://a.example.com:1/t;tcp".into(),
            message_id: Some("mid00001".into()),
            byte_range: None,
            success_report: None,
            failure_report: None,
            status: None,
            mime_headers: Vec::new(),
            content: Some(("text/plain".into(), body.clone().into_bytes())),
            continuation: Continuation::Last,
        };
        let mut wire = BytesMut::new();
        let tid = write(&mut Writer::with_seed(seed), &req, &mut wire);
        assert_ne!(tid, first, "the writer kept a tid whose end-line is in the body");
        let got = decode(&wire, ParserConfig::default(), &[]);
        assert_eq!(got.frames[0].body.as_deref(), Some(body.as_bytes()));
    }
}

#[test]
fn writer_refuses_frames_it_cannot_write_correctly() {
    use msrp_engine::proto::WriteError;
    let mut writer = Writer::with_seed(1);
    let mut out = BytesMut::new();
    let mut req = Request {
        method: &Method::Send,
        to_path: "msrp://b.example.com:1/s;tcp\r\nX-Injected: 1",
        from_path: "msrp://a.example.com:1/t;tcp",
        message_id: MessageId::new(b"mid00001"),
        byte_range: None,
        success_report: None,
        failure_report: None,
        status: None,
        content: None,
        continuation: Continuation::Last,
    };
    assert_eq!(
        writer.write_request(&req, &mut out),
        Err(WriteError::InvalidHeaderValue("To-Path"))
    );
    req.to_path = "msrp://b.example.com:1/s;tcp";
    let report = Method::Report;
    req.method = &report;
    req.content = Some(Content {
        content_type: "text/plain",
        mime_headers: &[],
        body: Bytes::from(vec![b'x'; 10241]),
    });
    assert_eq!(
        writer.write_request(&req, &mut out),
        Err(WriteError::NonSendBodyTooLarge("REPORT", 10241))
    );
    req.content = Some(Content {
        content_type: "text plain",
        mime_headers: &[],
        body: Bytes::new(),
    });
    assert_eq!(
        writer.write_request(&req, &mut out),
        Err(WriteError::InvalidHeaderValue("Content-Type"))
    );
    assert!(out.is_empty(), "a refused frame wrote nothing");
    let tid = writer.transaction_id();
    assert!(write_response(&mut out, &tid, 2000, None, "msrp://a:1/s;tcp", "msrp://b:1/s;tcp").is_err());
}
