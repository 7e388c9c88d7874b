//! The MSML reader and writer against vector SIP14 (an INFO carrying the
//! project's seed `<dialogstart>` with `<transfer>`), every refusal with
//! its RFC 5707 section 11 code, and arbitrary input never panicking.

use std::path::PathBuf;
use std::time::Duration;

use msrp_signaling::msml::{
    self, dialog_id, parse, Dest, HookEnd, Initial, MsmlError, Request, Retry, TransferObject,
};
use proptest::prelude::*;
use serde_json::Value;

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vectors/sip")
}

/// The body of SIP14: what follows the blank line.
fn sip14_body() -> Vec<u8> {
    let raw = std::fs::read(vectors().join("SIP14_info_msml_dialogstart_transfer.sip")).unwrap();
    let at = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    raw[at + 4..].to_vec()
}

fn sip14_manifest() -> Value {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(vectors().join("manifest.json")).unwrap()).unwrap();
    manifest
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "SIP14")
        .unwrap()
        .clone()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

#[test]
fn sip14_reads_as_its_manifest_says() {
    let entry = sip14_manifest();
    let expect = &entry["expect"]["msml"];
    let body = sip14_body();
    assert_eq!(body.len() as u64, entry["expect"]["messages"][0]["body_len"]);
    let doc = parse(&body).unwrap();
    assert_eq!(doc.version, "1.1");
    let [Request::DialogStart(start)] = doc.requests.as_slice() else {
        panic!("{:?}", doc.requests);
    };
    let ds = &expect["dialogstart"];
    assert_eq!(start.target, s(&ds["target"]));
    assert_eq!(start.name.as_deref(), Some(s(&ds["name"])));
    assert_eq!(s(&ds["type"]), "application/moml+xml");
    assert_eq!(start.mark, None);

    let t = &start.transfer;
    assert_eq!(t.id.as_deref(), Some("transfer"));
    assert_eq!(t.initial, Initial::Transmit);
    assert_eq!((t.iterate, t.retry), (1, Retry::Count(0)));
    assert_eq!((t.delay, t.ftt, t.itt, t.maxtime), (None, None, None, None));
    assert!(!t.starttimer);
    assert!(t.start_marker);
    assert!(!t.objstart_marker);
    assert_eq!(t.objdone.sends.len(), 1);
    assert_eq!(t.objdone.sends[0].event, "transfer.objectdone");
    assert_eq!(t.objdone.sends[0].target, "source");
    assert_eq!(
        t.objdone.sends[0].namelist,
        ["transfer.objid", "transfer.duration"]
    );
    assert_eq!(t.objdone.end, None);
    assert_eq!(t.exit.sends.len(), 1);
    assert_eq!(t.exit.sends[0].event, "TransferEnd");
    assert_eq!(t.exit.sends[0].target, "source");
    assert_eq!(t.exit.sends[0].namelist, ["transfer.duration", "transfer.end"]);

    let [TransferObject::File(f)] = t.objects.as_slice() else {
        panic!("{:?}", t.objects);
    };
    let fo = &expect["fileobj"];
    let src = s(&fo["src"]).strip_prefix("file://").unwrap();
    assert_eq!(f.src, PathBuf::from(src));
    assert_eq!(f.contenttype.as_deref(), Some(s(&fo["contenttype"])));
    assert_eq!(f.delete.to_string(), s(&fo["delete"]));
    assert_eq!(f.append.to_string(), s(&fo["append"]));
    assert_eq!(f.objid.as_deref(), Some(s(&fo["objid"])));
    assert!(f.overwrite);
    assert!(!f.wait);
    assert_eq!(
        (f.iterate, f.retry, f.lang.as_deref()),
        (1, Retry::Count(0), None)
    );
    let d = &fo["dest"];
    assert_eq!(s(&d["scheme"]), "xmsrp");
    let Dest::Xmsrp(x) = &f.dest else {
        panic!("{:?}", f.dest);
    };
    assert_eq!(x.offerer, s(&d["offerer"]));
    assert_eq!(x.answerer, s(&d["answerer"]));
    assert_eq!(x.file, s(&d["file"]));
    assert_eq!(x.selector_name(), s(&d["file_selector_name"]));

    let id = dialog_id(&start.target, start.name.as_deref().unwrap());
    assert_eq!(
        msml::result(200, None, Some(&id)),
        s(&entry["expect"]["response"]["body"])
    );
}

const HEAD: &str = r#"<msml version="1.1"><dialogstart target="conn:abc" name="d1">"#;
const TAIL: &str = "</dialogstart></msml>";
const FILEOBJ: &str =
    r#"<fileobj src="file:///r/a.amr" dest="xmsrp://?offerer=ms@h;answerer=as@h;file=a.amr"/>"#;

/// `inner` as the content of a `<transfer>` in a `<dialogstart>`.
fn in_transfer(inner: &str) -> String {
    format!("{HEAD}<transfer>{inner}</transfer>{TAIL}")
}

fn fileobj_with(attrs: &str) -> String {
    in_transfer(&format!(
        r#"<fileobj src="/r/a.amr" dest="file:///out/a.amr" {attrs}/>"#
    ))
}

fn refused(doc: &str) -> MsmlError {
    match parse(doc.as_bytes()) {
        Ok(d) => panic!("accepted {doc}: {d:?}"),
        Err(e) => e,
    }
}

#[track_caller]
fn assert_refused(doc: &str, response: u16, description: &str) {
    let e = refused(doc);
    assert_eq!(
        (e.response, e.description.as_str()),
        (response, description),
        "{doc}"
    );
}

#[test]
fn refusals_name_what_is_wrong() {
    let e = refused(r#"<msml version="1.1"><dialogstart target="conn:a"></msml>"#);
    assert_eq!(e.response, 400);
    assert!(
        e.description.starts_with("malformed XML at byte"),
        "{}",
        e.description
    );
    assert_refused(
        r#"<MSML version="1.1"/>"#,
        400,
        "the root element is <MSML>, not <msml>",
    );
    assert_refused("<msml/>", 408, "missing mandatory attribute 'version' on <msml>");
    assert_refused(
        r#"<msml version="2.0"/>"#,
        410,
        "invalid value '2.0' for attribute 'version' on <msml>: MSML 1.1 or 1.0 only",
    );
    assert_refused(
        &format!(r#"<msml version="1.1"><dialogstart name="x"><transfer>{FILEOBJ}</transfer>{TAIL}"#),
        408,
        "missing mandatory attribute 'target' on <dialogstart>",
    );
    assert_refused(
        &in_transfer(&format!("{FILEOBJ}<transferbegin/>")),
        401,
        "unknown element <transferbegin> in <transfer>",
    );
    assert_refused(
        &in_transfer(&format!("{FILEOBJ}<play/>")),
        404,
        "element <play> is not allowed in <transfer>",
    );
    assert_refused(
        &fileobj_with(r#"foo="1""#),
        406,
        "unknown attribute 'foo' on <fileobj>",
    );
    assert_refused(
        &fileobj_with(r#"dlgc:foo="1""#),
        406,
        "unknown attribute 'dlgc:foo' on <fileobj>",
    );
    assert_refused(
        &format!(r#"{HEAD}<play><audio uri="file:///a.wav"/></play>{TAIL}"#),
        402,
        "unsupported element <play> (only <transfer> is supported)",
    );
    assert_refused(
        r#"<msml version="1.1"><join id1="conn:a" id2="conf:b"/></msml>"#,
        402,
        "unsupported element <join> (only <dialogstart> and <dialogend> are supported)",
    );
    assert_refused(
        &in_transfer(r#"<fileobj src="/r/a.amr" dest="http://x/y"/>"#),
        410,
        "<fileobj> dest scheme 'http' is not supported; use xmsrp:// or file://",
    );
    assert_refused(
        &in_transfer(r#"<fileobj dest="file:///x"/>"#),
        408,
        "missing mandatory attribute 'src' on <fileobj>",
    );
    assert_refused(
        &in_transfer(r#"<fileobj src="/r/a.amr"/>"#),
        408,
        "missing mandatory attribute 'dest' on <fileobj> (fileobj needs dest)",
    );
    assert_refused(
        &fileobj_with(r#"delete="maybe""#),
        410,
        "invalid value 'maybe' for attribute 'delete' on <fileobj>: not a boolean (true, false, yes, no, 1, 0)",
    );
    assert_refused(
        &format!(r#"{HEAD}<transfer maxtime="30">{FILEOBJ}</transfer>{TAIL}"#),
        410,
        "invalid value '30' for attribute 'maxtime' on <transfer>: '30' is not a duration (the unit s or ms is missing; e.g. 1.5s or 300ms)",
    );
    assert_refused(
        &fileobj_with(r#"retry="-2""#),
        410,
        "invalid value '-2' for attribute 'retry' on <fileobj>: not a count, -1 or forever",
    );
    assert_refused(
        &fileobj_with(r#"iterate="0""#),
        410,
        "invalid value '0' for attribute 'iterate' on <fileobj>: not a positive integer",
    );
    assert_refused(
        r#"<msml version="1.1"><dialogend/></msml>"#,
        408,
        "missing mandatory attribute 'id' on <dialogend>",
    );
    assert_refused(
        r#"<msml version="1.1"><dialogend id="conn:a"/></msml>"#,
        410,
        "invalid value 'conn:a' for attribute 'id' on <dialogend>: not conn:ID/dialog:NAME or conf:ID/dialog:NAME",
    );
    assert_refused(
        &format!(r#"<msml version="1.1"><dialogstart target="conn:a" type="application/vxml+xml">{TAIL}"#),
        420,
        "dialog type 'application/vxml+xml' is not supported (only application/moml+xml)",
    );
    assert_refused(
        &format!(r#"<msml version="1.1"><dialogstart target="conn:a" type="text/x-foo">{TAIL}"#),
        421,
        "dialog type 'text/x-foo' is unknown (only application/moml+xml)",
    );
    assert_refused(
        &format!(r#"<msml version="1.1"><dialogstart target="conn:a" src="http://h/s.moml">{TAIL}"#),
        407,
        "attribute 'src' on <dialogstart> is not supported (no external dialog scripts; put the <transfer> inline)",
    );
    assert_refused(
        &format!(
            r#"<msml version="1.1"><dialogstart target="conn:a" src="http://h/s.moml"><transfer>{FILEOBJ}</transfer>{TAIL}"#
        ),
        422,
        "<dialogstart> has both src and an inline dialog",
    );
    assert_refused(
        &format!("{HEAD}{TAIL}"),
        403,
        "<dialogstart> needs an inline <transfer>",
    );
    assert_refused(
        &in_transfer("<transferstart/>"),
        403,
        "<transfer> needs at least one <fileobj> or <messageobj>",
    );
    assert_refused(
        &format!("{HEAD}<transfer>{FILEOBJ}</transfer><transfer>{FILEOBJ}</transfer>{TAIL}"),
        402,
        "a second primitive in <dialogstart> is not supported (one <transfer> only)",
    );
    assert_refused(
        &in_transfer(&format!("{FILEOBJ}<transferexit/><transferexit/>")),
        404,
        "a second <transferexit> in <transfer>",
    );
    assert_refused(
        &in_transfer(&format!(
            r#"{FILEOBJ}<transferexit><exit/><send event="e" target="source"/></transferexit>"#
        )),
        404,
        "<send> after <exit> or <disconnect> in <transferexit>",
    );
    assert_refused(
        &in_transfer(&format!(
            r#"{FILEOBJ}<transferexit><send target="source"/></transferexit>"#
        )),
        408,
        "missing mandatory attribute 'event' on <send>",
    );
    assert_refused(
        &in_transfer(&format!("{FILEOBJ} hello ")),
        405,
        "text 'hello' is not allowed in <transfer>",
    );
    assert_refused(
        &in_transfer(&format!("{FILEOBJ}\u{a0}")),
        405,
        "text '\u{a0}' is not allowed in <transfer>",
    );
    assert_refused(
        &in_transfer(r#"<messageobj dest="file:///o/m.txt"/>"#),
        403,
        "<messageobj> needs src or a <content>",
    );
    assert_refused(
        &in_transfer(r#"<messageobj src="/m.txt" dest="file:///o/m.txt"><content>x</content></messageobj>"#),
        422,
        "<messageobj> has both src and <content>",
    );
    assert_refused(
        &fileobj_with(r#"contenttype="audio/amr&#13;&#10;X: y""#),
        410,
        "attribute 'contenttype' on <fileobj> holds a control character",
    );
    assert_refused(
        &in_transfer(r#"<fileobj src="/r/a.amr" dest="xmsrp://?offerer=ms@h"/>"#),
        410,
        "<fileobj> xmsrp dest needs answerer=",
    );
}

#[test]
fn retry_forever_durations_and_booleans() {
    for (retry, want) in [
        ("-1", Retry::Forever),
        ("forever", Retry::Forever),
        ("3", Retry::Count(3)),
    ] {
        let doc = parse(fileobj_with(&format!(r#"retry="{retry}""#)).as_bytes()).unwrap();
        let Request::DialogStart(d) = &doc.requests[0] else {
            panic!()
        };
        let TransferObject::File(f) = &d.transfer.objects[0] else {
            panic!()
        };
        assert_eq!(f.retry, want, "{retry}");
    }
    let doc = format!(
        r#"{HEAD}<transfer initial="suspend" iterate="2" retry="forever" delay="1.5s" starttimer="YES" ftt="300ms" itt="2s" maxtime="+.5s">{}</transfer>{TAIL}"#,
        r#"<fileobj src="/r/a.amr" dest="file:///o/a.amr" wait="1" delete="No" overwrite="false" append="TRUE" xml:lang="en"/>"#
    );
    let doc = parse(doc.as_bytes()).unwrap();
    let Request::DialogStart(d) = &doc.requests[0] else {
        panic!()
    };
    let t = &d.transfer;
    assert_eq!(t.initial, Initial::Suspend);
    assert_eq!((t.iterate, t.retry, t.starttimer), (2, Retry::Forever, true));
    assert_eq!(t.delay, Some(Duration::from_millis(1500)));
    assert_eq!(t.ftt, Some(Duration::from_millis(300)));
    assert_eq!(t.itt, Some(Duration::from_secs(2)));
    assert_eq!(t.maxtime, Some(Duration::from_millis(500)));
    let TransferObject::File(f) = &t.objects[0] else {
        panic!()
    };
    assert_eq!(
        (f.wait, f.delete, f.overwrite, f.append),
        (true, false, false, true)
    );
    assert_eq!(f.lang.as_deref(), Some("en"));
    assert_eq!(f.dest, Dest::File("/o/a.amr".into()));
}

#[test]
fn several_requests_in_order_with_messageobj_and_hooks() {
    let doc = format!(
        r#"<?xml version="1.0"?>
<msml version="1.0" xmlns="http://www.msml.org" xmlns:dlgc="http://www.dialogic.com/DialogicTypes">
  <dialogstart target="conf:room" mark="m1" dlgc:target_display="x">
    <transfer>
      <transferobjstart/>
      <messageobj objid="m" dest="xmsrp://?offerer=sip:ms@h;answerer=sip:as@h;file=note.txt" wait="true">
        <content contentid="c1" contentdisposition="inline">a &lt; b &#233; <![CDATA[<raw>]]></content>
        <content contenttype="text/html">&amp;</content>
      </messageobj>
      {FILEOBJ}
      <transferobjdone><disconnect namelist="transfer.objid"/></transferobjdone>
      <transferexit><send event="done" target="source"/><exit namelist="transfer.end"/></transferexit>
    </transfer>
  </dialogstart>
  <dialogend id="conn:abc/dialog:d1" mark="m2"/>
</msml>"#
    );
    let doc = parse(doc.as_bytes()).unwrap();
    assert_eq!(doc.version, "1.0");
    assert_eq!(doc.requests.len(), 2);
    let Request::DialogStart(d) = &doc.requests[0] else {
        panic!()
    };
    assert_eq!(
        (d.target.as_str(), d.name.as_deref(), d.mark.as_deref()),
        ("conf:room", None, Some("m1"))
    );
    let t = &d.transfer;
    assert!(t.objstart_marker && !t.start_marker);
    let TransferObject::Message(m) = &t.objects[0] else {
        panic!()
    };
    assert!(matches!(t.objects[1], TransferObject::File(_)));
    assert_eq!(
        (m.objid.as_deref(), m.src.as_ref(), m.wait),
        (Some("m"), None, true)
    );
    assert_eq!(m.contenttype, "text/plain");
    assert_eq!(m.contents[0].text, "a < b é <raw>");
    assert_eq!(m.contents[0].contenttype, "text/plain");
    assert_eq!(m.contents[0].contentid.as_deref(), Some("c1"));
    assert_eq!(m.contents[0].disposition.as_deref(), Some("inline"));
    assert_eq!(
        (m.contents[1].text.as_str(), m.contents[1].contenttype.as_str()),
        ("&", "text/html")
    );
    let Dest::Xmsrp(x) = &m.dest else { panic!() };
    assert_eq!(x.selector_name(), "note.txt");
    assert_eq!(
        t.objdone.end,
        Some(HookEnd::Disconnect {
            namelist: vec!["transfer.objid".into()]
        })
    );
    assert_eq!(t.exit.sends[0].event, "done");
    assert_eq!(
        t.exit.end,
        Some(HookEnd::Exit {
            namelist: vec!["transfer.end".into()]
        })
    );
    assert_eq!(
        doc.requests[1],
        Request::DialogEnd {
            id: "conn:abc/dialog:d1".into(),
            mark: Some("m2".into())
        }
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let depth = 200_000;
    let doc = format!(
        "{HEAD}{}{}{TAIL}",
        "<transfer>".repeat(depth),
        "</transfer>".repeat(depth)
    );
    let e = refused(&doc);
    assert_eq!(e.response, 404, "{e}");
    let doc = format!("<msml version=\"1.1\">{}", "<a>".repeat(depth));
    assert_refused(&doc, 401, "unknown element <a> in <msml>");
    let content = format!(
        "{HEAD}<transfer><messageobj dest=\"file:///o\"><content>{}</content></messageobj></transfer>{TAIL}",
        "<b>".repeat(depth)
    );
    assert_refused(&content, 401, "unknown element <b> in <content>");
}

/// A document we wrote is well-formed MSML: read as a request, it is the
/// unsupported `<result>` or `<event>` (402), never malformed (400).
#[track_caller]
fn assert_well_formed(written: &str) {
    let e = parse(written.as_bytes()).unwrap_err();
    assert_eq!(e.response, 402, "{written}: {e}");
}

/// What the fuzz target `msml` checks, without the fuzzer.
fn no_panic(bytes: &[u8]) {
    let doc = match parse(bytes) {
        Ok(doc) => doc,
        Err(e) => {
            assert!((400..500).contains(&e.response), "{e}");
            assert_well_formed(&msml::result(e.response, Some(&e.description), None));
            return;
        }
    };
    for r in &doc.requests {
        if let Request::DialogStart(d) = r {
            let id = dialog_id(&d.target, d.name.as_deref().unwrap_or("x"));
            assert_well_formed(&msml::result(200, None, Some(&id)));
            for s in d.transfer.objdone.sends.iter().chain(&d.transfer.exit.sends) {
                let pairs: Vec<(&str, &str)> = s.namelist.iter().map(|n| (n.as_str(), "1")).collect();
                assert_well_formed(&msml::event(&s.event, &id, &pairs));
            }
        }
    }
}

#[test]
fn written_documents_are_well_formed() {
    no_panic(&sip14_body());
    assert_well_formed(&msml::event(
        "x",
        "conn:a/dialog:b",
        &[("<&>\"'", "\u{0}\t\r\n é")],
    ));
    assert_well_formed(&msml::result(400, Some("]]> <![CDATA[ &#0;"), Some("a&b")));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        no_panic(&bytes);
    }

    #[test]
    fn mutated_sip14_never_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..8)
    ) {
        let mut body = sip14_body();
        for (at, byte, how) in edits {
            if body.is_empty() {
                break;
            }
            let i = at.index(body.len());
            match how {
                0 => body[i] = byte,
                1 => { body.remove(i); }
                2 => body.insert(i, byte),
                _ => body.truncate(i),
            }
        }
        no_panic(&body);
    }
}
