//! message/cpim (RFC 3862), IMDN (RFC 5438) and is-composing (RFC 3994)
//! through `msrp_signaling::app::cpim`: the writer's refusals, the RFC
//! examples read back, and properties over arbitrary input.

use msrp_signaling::app::cpim::{
    build, classify, parse, parse_imdn, parse_is_composing, rfc3339, Cpim, CpimError, CpimWrap, Imdn,
    ImdnRequest, IsComposing, MessageClass,
};
use proptest::prelude::*;

/// 2026-12-01T15:31:13.123Z
const NOW_MS: u64 = 1_796_139_073_123;

fn crlf(text: &str) -> Vec<u8> {
    text.replace('\n', "\r\n").into_bytes()
}

fn wrap() -> CpimWrap {
    CpimWrap {
        from: "Alice <im:alice@example.com>".into(),
        to: "sip:bob@example.com".into(),
        datetime: None,
        imdn: None,
    }
}

fn body_of<'a>(bytes: &'a [u8], cpim: &Cpim) -> &'a [u8] {
    &bytes[cpim.body_offset..]
}

fn refused_field(result: Result<Vec<u8>, CpimError>) -> &'static str {
    match result {
        Err(CpimError::Field(field, _)) => field,
        other => panic!("expected a refused field, got {other:?}"),
    }
}

#[test]
fn build_writes_rfc3862_layout_with_imdn_headers() {
    let wrap = CpimWrap {
        imdn: Some(ImdnRequest {
            message_id: None,
            disposition: vec!["positive-delivery".into(), "Display".into()],
        }),
        ..wrap()
    };
    let built = build(
        &wrap,
        "text/plain; charset=utf-8",
        b"Hello World",
        NOW_MS,
        "34jk324j",
    )
    .unwrap();
    let expected = "From: Alice <im:alice@example.com>\r\n\
                    To: <sip:bob@example.com>\r\n\
                    DateTime: 2026-12-01T15:31:13.123Z\r\n\
                    NS: imdn <urn:ietf:params:imdn>\r\n\
                    imdn.Message-ID: 34jk324j\r\n\
                    imdn.Disposition-Notification: positive-delivery, display\r\n\
                    \r\n\
                    Content-Type: text/plain; charset=utf-8\r\n\
                    Content-Length: 11\r\n\
                    \r\n\
                    Hello World";
    assert_eq!(String::from_utf8(built).unwrap(), expected);
}

#[test]
fn build_then_parse_round_trips_headers_imdn_and_body() {
    let wrap = CpimWrap {
        datetime: Some("2006-04-04T12:16:49-05:00".into()),
        imdn: Some(ImdnRequest {
            message_id: Some("given-id.1".into()),
            disposition: vec!["negative-delivery".into(), "processing".into(), "display".into()],
        }),
        ..wrap()
    };
    let body = b"\x00binary\r\n\r\nwith a blank line inside";
    let built = build(&wrap, "application/octet-stream", body, NOW_MS, "unused").unwrap();
    let cpim = parse(&built).unwrap();
    assert_eq!(cpim.from.as_deref(), Some("Alice <im:alice@example.com>"));
    assert_eq!(cpim.to, ["<sip:bob@example.com>"]);
    assert_eq!(cpim.datetime.as_deref(), Some("2006-04-04T12:16:49-05:00"));
    assert_eq!(cpim.imdn_message_id.as_deref(), Some("given-id.1"));
    assert_eq!(
        cpim.disposition_notification,
        ["negative-delivery", "processing", "display"]
    );
    assert_eq!(
        cpim.other_headers,
        [("NS".to_owned(), "imdn <urn:ietf:params:imdn>".to_owned())]
    );
    assert_eq!(cpim.content_type.as_deref(), Some("application/octet-stream"));
    assert_eq!(body_of(&built, &cpim), body);
}

#[test]
fn without_imdn_there_is_no_ns_and_an_empty_disposition_list_writes_no_header() {
    let plain = build(&wrap(), "text/plain", b"hi", NOW_MS, "id").unwrap();
    assert!(!String::from_utf8_lossy(&plain).contains("imdn"));
    let wrap = CpimWrap {
        imdn: Some(ImdnRequest::default()),
        ..wrap()
    };
    let cpim = parse(&build(&wrap, "text/plain", b"hi", NOW_MS, "generated").unwrap()).unwrap();
    assert_eq!(cpim.imdn_message_id.as_deref(), Some("generated"));
    assert!(cpim.disposition_notification.is_empty());
}

#[test]
fn escaped_characters_in_a_formal_name_round_trip() {
    // RFC 3862 2.3.1: backslash, tab and the other CTLs are written escaped.
    let name = "Back\\slash\tTab\u{1}\u{7f}\"q\"";
    let wrap = CpimWrap {
        from: format!("{name} <im:a@example.com>"),
        ..wrap()
    };
    let built = build(&wrap, "text/plain", b"", NOW_MS, "id").unwrap();
    let written = "From: Back\\\\slash\\tTab\\u0001\\u007f\"q\" <im:a@example.com>\r\n";
    assert!(String::from_utf8_lossy(&built).starts_with(written));
    assert_eq!(
        parse(&built).unwrap().from,
        Some(format!("{name} <im:a@example.com>"))
    );
    // RFC 3862 2.3: an unknown escape is the character after the backslash, an
    // isolated final backslash is dropped.
    let odd = parse(b"Subject: \\q\\u00e9\\u00E9\\uzz\\u12\\\r\n\r\n").unwrap();
    assert_eq!(odd.subject.as_deref(), Some("q\u{e9}\u{e9}uzzu12"));
}

#[test]
fn cpim_wrap_reads_the_rest_shape() {
    let wrap: CpimWrap = serde_json::from_str(r#"{"from": "sip:a@x", "to": "sip:b@x"}"#).unwrap();
    assert_eq!(
        wrap,
        CpimWrap {
            from: "sip:a@x".into(),
            to: "sip:b@x".into(),
            datetime: None,
            imdn: None
        }
    );
    let wrap: CpimWrap =
        serde_json::from_str(r#"{"from": "sip:a@x", "to": "sip:b@x", "imdn": {"disposition": ["display"]}}"#)
            .unwrap();
    assert_eq!(
        wrap.imdn,
        Some(ImdnRequest {
            message_id: None,
            disposition: vec!["display".into()]
        })
    );
}

/// RFC 3862 5.1, the h: and e: lines.
#[test]
fn rfc3862_section_5_1_example_parses() {
    let text = "\
From: MR SANDERS <im:piglet@100akerwood.com>
To: Depressed Donkey <im:eeyore@100akerwood.com>
DateTime: 2000-12-13T13:40:00-08:00
Subject: the weather will be fine today
Subject:;lang=fr beau temps prevu pour aujourd'hui
NS: MyFeatures <mid:MessageFeatures@id.foo.com>
Require: MyFeatures.VitalMessageOption
MyFeatures.VitalMessageOption: Confirmation-requested
MyFeatures.WackyMessageOption: Use-silly-font

Content-type: text/xml; charset=utf-8
Content-ID: <1234567890@foo.com>

<body>
Here is the text of my message.
</body>
";
    let bytes = crlf(text);
    let cpim = parse(&bytes).unwrap();
    let owned = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        cpim,
        Cpim {
            from: Some("MR SANDERS <im:piglet@100akerwood.com>".into()),
            to: vec!["Depressed Donkey <im:eeyore@100akerwood.com>".into()],
            cc: vec![],
            datetime: Some("2000-12-13T13:40:00-08:00".into()),
            subject: Some("the weather will be fine today".into()),
            imdn_message_id: None,
            disposition_notification: vec![],
            other_headers: owned(&[
                ("Subject;lang=fr", "beau temps prevu pour aujourd'hui"),
                ("NS", "MyFeatures <mid:MessageFeatures@id.foo.com>"),
                ("Require", "MyFeatures.VitalMessageOption"),
                ("MyFeatures.VitalMessageOption", "Confirmation-requested"),
                ("MyFeatures.WackyMessageOption", "Use-silly-font"),
            ]),
            content_type: Some("text/xml; charset=utf-8".into()),
            body_offset: cpim.body_offset,
        }
    );
    assert_eq!(
        body_of(&bytes, &cpim),
        b"<body>\r\nHere is the text of my message.\r\n</body>\r\n"
    );
    assert_eq!(
        classify("Message/CPIM", cpim.content_type.as_deref()),
        MessageClass::Content
    );
}

/// RFC 3862 2.2's and 4.3's header examples; cc may repeat.
#[test]
fn rfc3862_header_examples_and_repeated_recipients() {
    let text = "To: Pooh Bear <im:pooh@100akerwood.com>\n\
                To: <im:tigger@100akerwood.com>\n\
                From: <im:piglet@100akerwood.com>\n\
                cc: Winnie the Pooh <im:pooh@100akerwood.com>\n\
                cc: <im:tigger@100akerwood.com>\n\
                DateTime: 2001-02-02T10:48:54-05:00\n\n\
                Content-Type: text/plain\n\nhi";
    let cpim = parse(text.as_bytes()).unwrap();
    assert_eq!(
        cpim.to,
        [
            "Pooh Bear <im:pooh@100akerwood.com>",
            "<im:tigger@100akerwood.com>"
        ]
    );
    assert_eq!(
        cpim.cc,
        [
            "Winnie the Pooh <im:pooh@100akerwood.com>",
            "<im:tigger@100akerwood.com>"
        ]
    );
    assert_eq!(cpim.from.as_deref(), Some("<im:piglet@100akerwood.com>"));
    assert_eq!(cpim.datetime.as_deref(), Some("2001-02-02T10:48:54-05:00"));
    assert_eq!(body_of(text.as_bytes(), &cpim), b"hi");
}

/// RFC 5438 7.1.1.3 as printed: its MIME headers follow the message headers with
/// no blank line between them.
const RFC5438_IM: &str = "\
From: Alice <im:alice@example.com>
To: Bob <im:bob@example.com>
NS: imdn <urn:ietf:params:imdn>
imdn.Message-ID: 34jk324j
DateTime: 2006-04-04T12:16:49-05:00
imdn.Disposition-Notification: positive-delivery, negative-delivery
Content-type: text/plain
Content-length: 12

Hello World
";

#[test]
fn rfc5438_im_example_parses_as_printed_and_with_its_blank_line() {
    let corrected = RFC5438_IM.replace("negative-delivery\n", "negative-delivery\n\n");
    for text in [RFC5438_IM.to_owned(), corrected] {
        for bytes in [text.clone().into_bytes(), crlf(&text)] {
            let cpim = parse(&bytes).unwrap();
            assert_eq!(cpim.from.as_deref(), Some("Alice <im:alice@example.com>"));
            assert_eq!(cpim.to, ["Bob <im:bob@example.com>"]);
            assert_eq!(cpim.imdn_message_id.as_deref(), Some("34jk324j"));
            assert_eq!(cpim.datetime.as_deref(), Some("2006-04-04T12:16:49-05:00"));
            assert_eq!(
                cpim.disposition_notification,
                ["positive-delivery", "negative-delivery"]
            );
            assert_eq!(cpim.content_type.as_deref(), Some("text/plain"));
            assert_eq!(
                String::from_utf8_lossy(body_of(&bytes, &cpim)).trim_end(),
                "Hello World"
            );
        }
    }
}

/// RFC 5438 7.2.1.1, 7.2.1.2 and 8.1: the CPIM bodies of a delivery, a display
/// and a processing notification, and their XML.
#[test]
fn rfc5438_notification_examples_parse_to_their_kind_and_status() {
    let delivery = "\
From: Bob <im:bob@example.com>
To: Alice <im:alice@example.com>
NS: imdn <urn:ietf:params:imdn>
imdn.Message-ID: d834jied93rf
Content-type: message/imdn+xml
Content-Disposition: notification
Content-length: ...

<?xml version=\"1.0\" encoding=\"UTF-8\"?>
<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\">
      <message-id>34jk324j</message-id>
      <datetime>2008-04-04T12:16:49-05:00</datetime>
     <recipient-uri>im:bob@example.com</recipient-uri>

      <original-recipient-uri
        >im:bob@example.com</original-recipient-uri>
      <delivery-notification>
         <status>
            <delivered/>
         </status>
      </delivery-notification>
    </imdn>
";
    let display = delivery
        .replace("d834jied93rf", "dfjkleriou432333")
        .replace("delivery-notification", "display-notification")
        .replace("<delivered/>", "<displayed/>");
    let processing = delivery
        .replace(
            "NS: imdn <urn:ietf:params:imdn>\nimdn.Message-ID: d834jied93rf\n",
            "",
        )
        .replace("delivery-notification", "processing-notification")
        .replace("<delivered/>", "<processed/>");
    let cases = [
        (
            delivery.to_owned(),
            Some("d834jied93rf"),
            "delivery-notification",
            "delivered",
        ),
        (
            display,
            Some("dfjkleriou432333"),
            "display-notification",
            "displayed",
        ),
        (processing, None, "processing-notification", "processed"),
    ];
    for (text, message_id, kind, status) in cases {
        let bytes = crlf(&text);
        let cpim = parse(&bytes).unwrap();
        assert_eq!(cpim.imdn_message_id.as_deref(), message_id);
        assert_eq!(cpim.content_type.as_deref(), Some("message/imdn+xml"));
        assert_eq!(
            classify("message/cpim", cpim.content_type.as_deref()),
            MessageClass::Imdn
        );
        let imdn = parse_imdn(body_of(&bytes, &cpim));
        assert_eq!(
            imdn,
            Imdn {
                message_id: Some("34jk324j".into()),
                datetime: Some("2008-04-04T12:16:49-05:00".into()),
                kind: Some(kind.into()),
                status: Some(status.into()),
            }
        );
    }
}

#[test]
fn namespace_prefixes_are_whatever_ns_declares() {
    let text = "from: <im:a@example.com>\n\
                TO: <im:b@example.com>\n\
                NS: foo <urn:ietf:params:imdn>\n\
                foo.message-id: via-foo\n\
                FOO.Disposition-Notification: Display;extension=1 , ,Processing\n\
                NS: imdn <urn:example:not-imdn>\n\
                imdn.Message-ID: not-this-one\n\
                bar.Message-ID: undeclared\n\n\
                content-TYPE: text/plain\n\n";
    let cpim = parse(text.as_bytes()).unwrap();
    assert_eq!(cpim.from.as_deref(), Some("<im:a@example.com>"));
    assert_eq!(cpim.to, ["<im:b@example.com>"]);
    assert_eq!(cpim.imdn_message_id.as_deref(), Some("via-foo"));
    assert_eq!(cpim.disposition_notification, ["display", "processing"]);
    let names: Vec<&str> = cpim.other_headers.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["NS", "NS", "imdn.Message-ID", "bar.Message-ID"]);
    assert_eq!(cpim.content_type.as_deref(), Some("text/plain"));
    assert_eq!(cpim.body_offset, text.len());
}

#[test]
fn an_undeclared_imdn_prefix_and_a_default_namespace_are_read_liberally() {
    let undeclared = parse(b"imdn.Message-ID: m1\r\n\r\nContent-Type: text/plain\r\n\r\n").unwrap();
    assert_eq!(undeclared.imdn_message_id.as_deref(), Some("m1"));
    let default = parse(b"NS: <urn:ietf:params:imdn>\nMessage-ID: m2\nFrom: <im:a@x>\n\n").unwrap();
    assert_eq!(default.imdn_message_id.as_deref(), Some("m2"));
    assert_eq!(default.from.as_deref(), Some("<im:a@x>"));
}

#[test]
fn mime_part_headers_may_fold_and_may_be_missing() {
    let folded =
        b"From: <im:a@x>\r\n\r\nContent-Type: text/plain;\r\n charset=utf-8\r\nX-Other: 1\r\n\r\nbody";
    let cpim = parse(folded).unwrap();
    assert_eq!(cpim.content_type.as_deref(), Some("text/plain; charset=utf-8"));
    assert_eq!(body_of(folded, &cpim), b"body");
    let no_mime = parse(b"From: <im:a@x>\r\n\r\n").unwrap();
    assert_eq!((no_mime.content_type, no_mime.body_offset), (None, 18));
    let no_body = parse(b"From: <im:a@x>\r\n\r\nContent-Type: text/plain\r\n").unwrap();
    assert_eq!(no_body.content_type.as_deref(), Some("text/plain"));
    assert_eq!(no_body.body_offset, 44);
}

#[test]
fn parse_refuses_a_missing_blank_line_and_a_line_without_colon() {
    let malformed = |bytes: &[u8]| matches!(parse(bytes), Err(CpimError::Malformed(_)));
    assert!(malformed(b""));
    assert!(malformed(b"From: <im:a@x>\r\nTo: <im:b@x>\r\n"));
    assert!(malformed(b"From: <im:a@x>\r\nno colon here\r\n\r\n"));
    assert!(malformed(b": empty name\r\n\r\n"));
    assert!(malformed(
        b"From: <im:a@x>\r\n\r\nContent-Type: text/plain\r\nnot a header\r\n\r\n"
    ));
    let many = "X-H: v\r\n".repeat(257) + "\r\n";
    assert!(malformed(many.as_bytes()));
    assert!(parse(("X-H: v\r\n".repeat(256) + "\r\n").as_bytes()).is_ok());
    let error = parse(b"oops\r\n\r\n").unwrap_err();
    assert!(error.to_string().contains("without ':'"), "{error}");
}

fn imdn(message_id: Option<&str>, disposition: &[&str]) -> Option<ImdnRequest> {
    Some(ImdnRequest {
        message_id: message_id.map(str::to_owned),
        disposition: disposition.iter().map(|d| d.to_string()).collect(),
    })
}

#[test]
fn every_refused_value_names_its_field() {
    let with = |edit: fn(&mut CpimWrap)| {
        let mut wrap = CpimWrap {
            imdn: Some(ImdnRequest::default()),
            ..wrap()
        };
        edit(&mut wrap);
        wrap
    };
    let cases: Vec<(CpimWrap, &str)> = vec![
        (with(|w| w.from = String::new()), "cpim.from"),
        (with(|w| w.from = "   ".into()), "cpim.from"),
        (
            with(|w| w.from = "Alice <im:alice@example.com".into()),
            "cpim.from",
        ),
        (with(|w| w.from = "Alice".into()), "cpim.from"),
        (with(|w| w.from = "Alice <>".into()), "cpim.from"),
        (with(|w| w.from = "im:a b@example.com".into()), "cpim.from"),
        (with(|w| w.to = String::new()), "cpim.to"),
        (with(|w| w.to = "Bob <bob>".into()), "cpim.to"),
        (with(|w| w.datetime = Some("yesterday".into())), "cpim.datetime"),
        (with(|w| w.imdn = imdn(Some(""), &[])), "cpim.imdn.message_id"),
        (
            with(|w| w.imdn = imdn(Some("has space"), &[])),
            "cpim.imdn.message_id",
        ),
        (
            with(|w| w.imdn = imdn(Some("semi;colon"), &[])),
            "cpim.imdn.message_id",
        ),
        (
            with(|w| w.imdn = imdn(None, &["display", "read"])),
            "cpim.imdn.disposition",
        ),
        (with(|w| w.imdn = imdn(None, &[""])), "cpim.imdn.disposition"),
    ];
    for (wrap, field) in cases {
        let result = build(&wrap, "text/plain", b"x", NOW_MS, "generated");
        let shown = format!("{:?}", result.as_ref().err());
        assert_eq!(refused_field(result), field, "{wrap:?}: {shown}");
    }
    // The generated message id is checked as well, and the inner type.
    let no_id = with(|w| w.imdn = Some(ImdnRequest::default()));
    assert_eq!(
        refused_field(build(&no_id, "text/plain", b"", NOW_MS, "")),
        "cpim.imdn.message_id"
    );
    assert_eq!(
        refused_field(build(&wrap(), " ", b"", NOW_MS, "id")),
        "content_type"
    );
    let error = build(&wrap(), "", b"", NOW_MS, "id").unwrap_err();
    assert!(error.to_string().starts_with("content_type: "), "{error}");
}

#[test]
fn cr_or_lf_in_any_value_is_refused() {
    for eol in ["\r\n", "\n", "\r"] {
        let smuggled = format!("{eol}To: <im:eve@example.com>");
        let mut from = wrap();
        from.from = format!("Alice <im:alice@example.com>{smuggled}");
        assert_eq!(
            refused_field(build(&from, "text/plain", b"", NOW_MS, "id")),
            "cpim.from"
        );
        let mut to = wrap();
        to.to = format!("<im:bob@example.com>{smuggled}");
        assert_eq!(
            refused_field(build(&to, "text/plain", b"", NOW_MS, "id")),
            "cpim.to"
        );
        let mut datetime = wrap();
        datetime.datetime = Some(format!("2024-01-01T00:00:00Z{smuggled}"));
        assert_eq!(
            refused_field(build(&datetime, "text/plain", b"", NOW_MS, "id")),
            "cpim.datetime"
        );
        let mut id = wrap();
        id.imdn = Some(ImdnRequest {
            message_id: Some(format!("id{smuggled}")),
            disposition: vec![],
        });
        assert_eq!(
            refused_field(build(&id, "text/plain", b"", NOW_MS, "id")),
            "cpim.imdn.message_id"
        );
        let mut disposition = wrap();
        disposition.imdn = Some(ImdnRequest {
            message_id: None,
            disposition: vec![format!("display{smuggled}")],
        });
        let refused = build(&disposition, "text/plain", b"", NOW_MS, "id");
        assert_eq!(refused_field(refused), "cpim.imdn.disposition");
        let inner = format!("text/plain{smuggled}");
        assert_eq!(
            refused_field(build(&wrap(), &inner, b"", NOW_MS, "id")),
            "content_type"
        );
    }
}

#[test]
fn datetime_must_be_rfc3339() {
    let accepted = [
        "2006-04-04T12:16:49-05:00",
        "2000-12-13T13:40:00+08:00",
        "2024-02-29T23:59:59Z",
        "2016-12-31T23:59:60Z",
        "2026-12-01T15:31:13.123456789Z",
        "2026-12-01t15:31:13z",
    ];
    let refused = [
        "",
        "2006-04-04",
        "2006-04-04 12:16:49Z",
        "2006-04-04T12:16:49",
        "2006-04-04T12:16Z",
        "2006-4-04T12:16:49Z",
        "2023-02-29T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-00-01T00:00:00Z",
        "2024-01-00T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T00:60:00Z",
        "2024-01-01T00:00:61Z",
        "2024-01-01T00:00:00.Z",
        "2024-01-01T00:00:00+24:00",
        "2024-01-01T00:00:00+05:60",
        "2024-01-01T00:00:00+0500",
        "2024-01-01T00:00:00+1:00",
        "+024-01-01T00:00:00Z",
        "2024-01-01T00:00:00Zjunk",
        "２024-01-01T00:00:00Z",
    ];
    for datetime in accepted {
        let wrap = CpimWrap {
            datetime: Some(datetime.into()),
            ..wrap()
        };
        let cpim = parse(&build(&wrap, "text/plain", b"", NOW_MS, "id").unwrap()).unwrap();
        assert_eq!(cpim.datetime.as_deref(), Some(datetime));
    }
    for datetime in refused {
        let wrap = CpimWrap {
            datetime: Some(datetime.into()),
            ..wrap()
        };
        assert_eq!(
            refused_field(build(&wrap, "text/plain", b"", NOW_MS, "id")),
            "cpim.datetime",
            "{datetime}"
        );
    }
}

#[test]
fn rfc3339_formats_known_instants() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(rfc3339(951_868_799_999), "2000-02-29T23:59:59.999Z");
    assert_eq!(rfc3339(1_709_208_000_000), "2024-02-29T12:00:00.000Z");
    assert_eq!(rfc3339(1_709_251_200_000), "2024-03-01T00:00:00.000Z");
    assert_eq!(rfc3339(NOW_MS), "2026-12-01T15:31:13.123Z");
    assert_eq!(rfc3339(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
    assert_eq!(rfc3339(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
    assert_eq!(rfc3339(u64::MAX), "9999-12-31T23:59:59.999Z");
}

#[test]
fn classify_each_class_with_parameters_and_odd_case() {
    use MessageClass::*;
    let cases = [
        ("text/plain", None, Content),
        ("message/imdn+xml", None, Imdn),
        ("Message/IMDN+XML; charset=utf-8", None, Imdn),
        ("application/im-iscomposing+xml", None, IsComposing),
        (
            " APPLICATION/Im-IsComposing+Xml ;charset=UTF-8",
            None,
            IsComposing,
        ),
        ("message/cpim", None, Content),
        ("message/cpim", Some("text/plain"), Content),
        ("Message/CPIM", Some("message/imdn+xml"), Imdn),
        (
            "message/cpim; x=y",
            Some("application/im-iscomposing+xml; charset=utf-8"),
            IsComposing,
        ),
        ("message/cpim", Some("message/cpim"), Content),
        ("text/plain", Some("message/imdn+xml"), Content),
        ("", None, Content),
    ];
    for (content_type, inner, class) in cases {
        assert_eq!(classify(content_type, inner), class, "{content_type} / {inner:?}");
    }
    assert_eq!(serde_json::to_string(&IsComposing).unwrap(), "\"is_composing\"");
}

#[test]
fn parse_imdn_is_forgiving() {
    let prefixed = br#"<?xml version="1.0"?>
        <!-- <message-id>comment</message-id> -->
        <n:imdn xmlns:n="urn:ietf:params:xml:ns:imdn" a='x>y'>
          <n:message-id> a&amp;b&lt;c </n:message-id>
          <n:delivery-notification><n:status><n:failed/></n:status></n:delivery-notification>
        </n:imdn>"#;
    let imdn = parse_imdn(prefixed);
    assert_eq!(imdn.message_id.as_deref(), Some("a&b<c"));
    assert_eq!(imdn.datetime, None);
    assert_eq!(imdn.kind.as_deref(), Some("delivery-notification"));
    assert_eq!(imdn.status.as_deref(), Some("failed"));
    let extension =
        parse_imdn(b"<imdn><display-notification><status><x:Custom/></status></display-notification>");
    assert_eq!(extension.status.as_deref(), Some("custom"));
    assert_eq!(parse_imdn(b"not xml at all <"), Imdn::default());
    assert_eq!(
        parse_imdn(b"<imdn><message-id></message-id><status/><error/>"),
        Imdn::default()
    );
}

#[test]
fn parse_is_composing_reads_the_rfc3994_example() {
    let example = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<isComposing xmlns=\"urn:ietf:params:xml:ns:im-iscomposing\"><state>active</state><contenttype>text/plain</contenttype><refresh>90</refresh></isComposing>";
    let expected = IsComposing {
        state: Some("active".into()),
        content_type: Some("text/plain".into()),
        refresh: Some(90),
    };
    assert_eq!(parse_is_composing(example), expected);
    let idle = parse_is_composing(
        b"<ic:isComposing xmlns:ic='x'>\n <ic:state> IDLE </ic:state>\n <ic:refresh>soon</ic:refresh>",
    );
    assert_eq!(
        idle,
        IsComposing {
            state: Some("idle".into()),
            content_type: None,
            refresh: None
        }
    );
    assert_eq!(parse_is_composing(b""), IsComposing::default());
}

fn structural_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        Just(b'\r'),
        Just(b'\n'),
        Just(b':'),
        Just(b';'),
        Just(b'.'),
        Just(b' '),
        Just(b'<'),
        Just(b'>'),
        Just(b'/'),
        Just(b'\\'),
        Just(b'&'),
        any::<u8>(),
    ];
    proptest::collection::vec(byte, 0..400)
}

proptest! {
    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400), structured in structural_bytes()) {
        for input in [bytes.clone(), structured.clone(), [b"NS: x <urn:ietf:params:imdn>\r\nx.".to_vec(), structured].concat()] {
            if let Ok(cpim) = parse(&input) {
                prop_assert!(cpim.body_offset <= input.len());
            }
            let _ = parse_imdn(&input);
            let _ = parse_is_composing(&input);
            let text = String::from_utf8_lossy(&input);
            let _ = classify(&text, Some(&text));
        }
    }

    #[test]
    fn build_then_parse_round_trips_printable_values(
        from_name in "[ -~é漢\t]{0,16}",
        from_uri in "[a-z]{1,8}:[!-;=?-~]{1,20}",
        to_name in "[ -~é漢]{0,16}",
        to_uri in "[a-z]{1,8}:[!-;=?-~]{1,20}",
        message_id in "[A-Za-z0-9._~-]{1,24}",
        dispositions in proptest::sample::subsequence(
            vec!["positive-delivery", "negative-delivery", "processing", "display"], 0..=4),
        body in proptest::collection::vec(any::<u8>(), 0..300),
        now_ms in 0u64..=253_402_300_799_999,
    ) {
        let name_addr = |name: &str, uri: &str| match name.trim() {
            "" => (uri.to_owned(), format!("<{uri}>")),
            trimmed => (format!("{name} <{uri}>"), format!("{trimmed} <{uri}>")),
        };
        let (from, from_written) = name_addr(&from_name, &from_uri);
        let (to, to_written) = name_addr(&to_name, &to_uri);
        let wrap = CpimWrap {
            from,
            to,
            datetime: None,
            imdn: Some(ImdnRequest {
                message_id: None,
                disposition: dispositions.iter().map(|d| d.to_string()).collect(),
            }),
        };
        let built = build(&wrap, "text/plain; charset=utf-8", &body, now_ms, &message_id).unwrap();
        let cpim = parse(&built).unwrap();
        prop_assert_eq!(cpim.from, Some(from_written));
        prop_assert_eq!(cpim.to, vec![to_written]);
        prop_assert_eq!(cpim.datetime, Some(rfc3339(now_ms)));
        prop_assert_eq!(cpim.imdn_message_id, Some(message_id));
        prop_assert_eq!(cpim.disposition_notification, dispositions);
        prop_assert_eq!(cpim.content_type.as_deref(), Some("text/plain; charset=utf-8"));
        prop_assert_eq!(&built[cpim.body_offset..], &body[..]);
    }
}
