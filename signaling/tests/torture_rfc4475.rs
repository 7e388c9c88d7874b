//! RFC 4475 (SIP torture tests) section 3.1 messages, byte for byte, from
//! `vectors/sip/rfc4475/` (see its README), each framed as one UDP
//! datagram and parsed: the valid ones parse, the invalid ones give the
//! reply (or the drop) RFC 4475 names.

use bytes::Bytes;
use msrp_signaling::sip::{
    frame_datagram, Disposition, FrameError, Limits, Message, Method, StreamFramer, Uri,
};
use std::path::PathBuf;

fn load(name: &str) -> Bytes {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../vectors/sip/rfc4475")
        .join(format!("{name}.sip"));
    Bytes::from(std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Parsed,
    Reply(u16),
    Drop,
    Frame(FrameError),
}

fn outcome(name: &str) -> (Outcome, Option<Message>) {
    let l = Limits::default();
    let framed = match frame_datagram(load(name), &l) {
        Ok(f) => f,
        Err(e) if e.head_readable() => {
            // A delimitable head: the message layer decides between 400 and drop.
            return match Message::parse(load(name), &l) {
                Err(me) => match me.disposition() {
                    Disposition::Reply { status, .. } => (Outcome::Reply(status), None),
                    Disposition::Drop => (Outcome::Drop, None),
                },
                Ok(_) => (Outcome::Frame(e), None),
            };
        }
        Err(e) => return (Outcome::Frame(e), None),
    };
    match Message::parse(framed, &l) {
        Ok(m) => (Outcome::Parsed, Some(m)),
        Err(e) => match e.disposition() {
            Disposition::Reply { status, .. } => (Outcome::Reply(status), None),
            Disposition::Drop => (Outcome::Drop, None),
        },
    }
}

fn parsed(name: &str) -> Message {
    match outcome(name) {
        (Outcome::Parsed, Some(m)) => m,
        (o, _) => panic!("{name}: {o:?}"),
    }
}

/// RFC 4475 3.1.1: valid messages; all elements treat them as well-formed.
#[test]
fn valid_messages_parse() {
    for name in [
        "wsinv",
        "intmeth",
        "esc01",
        "escnull",
        "esc02",
        "lwsdisp",
        "longreq",
        "dblreq",
        "semiuri",
        "transports",
        "mpart01",
        "unreason",
        "noreason",
    ] {
        assert_eq!(outcome(name).0, Outcome::Parsed, "{name}");
    }
}

#[test]
fn wsinv_short_tortuous_invite() {
    let m = parsed("wsinv");
    assert_eq!(m.to().tag(), Some("1918181833n"));
    assert_eq!(m.from().display.as_deref(), Some("J Rosenberg \\\""));
    assert_eq!(m.from().tag(), Some("98asjd8"));
    assert_eq!(m.max_forwards(), Some(68));
    assert_eq!(m.cseq().seq, 9);
    assert_eq!(m.vias().len(), 3);
    assert_eq!(m.vias()[1].branch(), Some("z9hG4bK9ikj8"));
    assert_eq!(m.header("Subject"), Some(""));
    assert_eq!(
        m.header("NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(m.header("UnknownHeaderWithUnusualValue"), Some(";;,,;;,;"));
    let c = &m.contacts()[0];
    assert_eq!(c.display.as_deref(), Some("Quoted string \"\""));
    assert_eq!(c.param("newparam"), Some(&Some("newvalue".into())));
    assert_eq!(c.param("secondparam"), Some(&None));
    assert_eq!(c.param("q"), Some(&Some("0.33".into())));
    assert_eq!(m.body().len(), 150);
}

#[test]
fn intmeth_and_escapes() {
    let m = parsed("intmeth");
    assert_eq!(
        m.method(),
        Some(&Method::Other(
            "!interesting-Method0123456789_*+`.%indeed'~".into()
        ))
    );
    assert_eq!(m.max_forwards(), Some(255));
    assert_eq!(
        m.from().display.as_deref(),
        Some("token1~` token2'+_ token3*%!.-")
    );
    // RFC 4475 3.1.1.5: % is not an escape in a method; RE%47IST%45R is not REGISTER.
    assert_eq!(
        parsed("esc02").method(),
        Some(&Method::Other("RE%47IST%45R".into()))
    );
    let esc01 = parsed("esc01");
    let want = Uri::parse("sip:user@example.com").unwrap();
    assert!(
        esc01.to().uri.equivalent(&want),
        "RFC 3261 19.1.4: %75se%72 is user"
    );
    let semi = parsed("semiuri");
    assert_eq!(
        semi.request_uri().unwrap().as_sip().unwrap().user.as_deref(),
        Some("user;par=u%40example.net")
    );
    assert_eq!(parsed("escnull").contacts().len(), 2);
}

#[test]
fn dblreq_trailing_octets_discarded() {
    let m = parsed("dblreq");
    assert_eq!(m.method(), Some(&Method::Register));
    assert!(m.body().is_empty());
    assert!(m.raw().len() < load("dblreq").len());
}

#[test]
fn long_values_and_reasons() {
    let m = parsed("longreq");
    assert_eq!(m.vias().len(), 34);
    assert_eq!(parsed("unreason").status(), Some(200));
    assert_eq!(parsed("noreason").reason(), Some(""));
    assert_eq!(parsed("transports").vias().len(), 5);
}

/// RFC 4475 3.1.2: invalid messages and the reply each calls for.
#[test]
fn invalid_messages_rejected() {
    let cases: &[(&str, Outcome)] = &[
        ("badinv01", Outcome::Reply(400)), // 3.1.2.1 extraneous ;,, in Via and Contact
        ("clerr", Outcome::Reply(400)),    // 3.1.2.2 Content-Length larger than the datagram
        ("scalar02", Outcome::Reply(400)), // 3.1.2.4 CSeq and Max-Forwards out of range
        ("scalarlg", Outcome::Drop),       // 3.1.2.3 a response with a huge CSeq: responses are not answered
        ("quotbal", Outcome::Reply(400)),  // 3.1.2.5 unterminated quoted string in To
        ("ltgtruri", Outcome::Reply(400)), // 3.1.2.6 <> around the Request-URI
        ("lwsruri", Outcome::Reply(400)),  // 3.1.2.7 LWS inside the Request-URI
        ("lwsstart", Outcome::Reply(400)), // 3.1.2.8 several SP between start-line elements
        ("trws", Outcome::Reply(400)),     // 3.1.2.9 SP after the SIP-Version
        ("escruri", Outcome::Reply(400)),  // 3.1.2.10 escaped headers in the Request-URI
        ("baddate", Outcome::Reply(400)),  // 3.1.2.11 non-GMT Date
        ("regbadct", Outcome::Reply(400)), // 3.1.2.12 ? in an addr-spec Contact
        ("badaspec", Outcome::Reply(400)), // 3.1.2.13 LWS inside <>
        ("badvers", Outcome::Reply(505)),  // 3.1.2.15 SIP/7.0
        ("mismatch01", Outcome::Reply(400)), // 3.1.2.16 CSeq method differs
        ("mismatch02", Outcome::Reply(400)), // 3.1.2.17 unknown method, CSeq INVITE
        ("bigcode", Outcome::Drop),        // 3.1.2.18 status code of 4294967301
        ("ncl", Outcome::Reply(400)),      // 3.1.2.2-style negative Content-Length
        ("mcl01", Outcome::Reply(400)),    // multiple conflicting Content-Length values
        ("multi01", Outcome::Reply(400)),  // single-valued headers given more than once
    ];
    for (name, want) in cases {
        assert_eq!(&outcome(name).0, want, "{name}");
    }
}

/// RFC 4475 3.1.2.14 (baddn): the file as the RFC's tarball holds it ends
/// without the blank line, so on UDP it is not even a message; completed,
/// the unquoted display name with a comma is a 400.
#[test]
fn baddn_unquoted_display_name() {
    assert_eq!(outcome("baddn").0, Outcome::Frame(FrameError::HeadUnterminated));
    let mut raw = load("baddn").to_vec();
    raw.extend_from_slice(b"\r\n");
    let e = Message::parse(Bytes::from(raw), &Limits::default()).unwrap_err();
    assert!(
        matches!(e.disposition(), Disposition::Reply { status: 400, .. }),
        "{e}"
    );
}

/// RFC 4475 3.1.2.19 (insuf): To, From, Call-ID missing. RFC 4475 asks for
/// a 400; we cannot copy what is missing (RFC 3261 8.2.6.2), so we drop.
#[test]
fn insuf_is_dropped_not_answered() {
    assert_eq!(outcome("insuf").0, Outcome::Drop);
}

/// Messages that are well-formed at this layer; the transaction user
/// rejects them (420, 416, 483, ...), not the parser.
#[test]
fn semantic_errors_parse() {
    assert_eq!(outcome("bext01").0, Outcome::Parsed); // 420 Bad Extension is the TU's
    assert!(matches!(parsed("unkscm").request_uri(), Some(Uri::Other { .. }))); // 416
    assert!(matches!(parsed("novelsc").request_uri(), Some(Uri::Other { .. })));
    assert_eq!(parsed("zeromf").max_forwards(), Some(0)); // 483 is the TU's
    assert_eq!(parsed("bcast").vias().len(), 2); // a proxy must not send to 255.255.255.255
    assert_eq!(outcome("badbranch").0, Outcome::Parsed);
    assert_eq!(outcome("inv2543").0, Outcome::Parsed); // RFC 2543 client: no branch, no Max-Forwards
}

/// On a stream, clerr's Content-Length just means "wait for more".
#[test]
fn clerr_on_a_stream_waits() {
    let mut f = StreamFramer::new(Limits::default());
    f.push(&load("clerr"));
    assert_eq!(f.next_message(), Ok(None));
}

#[test]
fn all_49_present() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vectors/sip/rfc4475");
    let n = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sip"))
        })
        .count();
    assert_eq!(n, 49);
}
