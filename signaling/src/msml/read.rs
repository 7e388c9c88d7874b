//! The MSML request reader: bytes to a [`Document`], or the RFC 5707
//! section 11 error to answer with.
//!
//! A pull reader (quick-xml) walks the document once; each element has one
//! function that reads its attributes and children. Nothing is skipped:
//! an element or attribute that is not read is an error naming it —
//! 401 (unknown element), 402 (an MSML or MOML element we do not execute),
//! 404 (a known element in the wrong place, or one too many), 406 (unknown
//! attribute), 407 (an attribute we do not execute). `xmlns` / `xmlns:*`
//! declarations and Dialogic's `dlgc:target_display` are the only
//! attributes passed over. No DTD, no entities beyond XML's five.

use std::path::PathBuf;

use quick_xml::events::BytesStart;

pub use super::cursor::DEPTH_MAX;
use super::cursor::{bad_request, element_name, Attrs, Cursor};
use super::model::{
    response, Content, DialogStart, Document, FileObj, Hook, HookEnd, Initial, MessageObj, MsmlError,
    Request, SendAction, Transfer, TransferObject,
};
use super::xmsrp::{parse_dest, parse_src};

/// MSML elements (RFC 5707 7 to 10) that we recognise but do not execute.
const MSML_ELEMENTS: &[&str] = &[
    "createconference",
    "modifyconference",
    "destroyconference",
    "join",
    "modifystream",
    "unjoin",
    "monitor",
    "send",
    "audit",
    "event",
    "result",
    "reserve",
    "resource",
    "audiomix",
    "videolayout",
    "stream",
];

/// MOML primitives and controls (RFC 5707 9.7 to 9.12, Dialogic's MOML
/// modules) other than `transfer`.
const MOML_ELEMENTS: &[&str] = &[
    "play",
    "record",
    "collect",
    "dtmf",
    "dtmfgen",
    "tonegen",
    "group",
    "speech",
    "faxdetect",
    "faxsend",
    "faxrcv",
    "fileop",
    "vad",
    "gain",
    "agc",
    "gate",
    "clamp",
    "relay",
    "moml",
    "send",
    "exit",
    "disconnect",
];

/// The elements inside `<transfer>`.
const TRANSFER_ELEMENTS: &[&str] = &[
    "transfer",
    "fileobj",
    "messageobj",
    "content",
    "transferstart",
    "transferobjstart",
    "transferobjdone",
    "transferexit",
    "msml",
    "dialogstart",
    "dialogend",
];

/// Reads an MSML request document. The size bound is the caller's.
pub fn parse(bytes: &[u8]) -> Result<Document, MsmlError> {
    let text =
        std::str::from_utf8(bytes).map_err(|e| bad_request(format!("the document is not UTF-8: {e}")))?;
    let mut cursor = Cursor::new(text);
    let root = cursor.root()?;
    let document = read_msml(&mut cursor, &root)?;
    cursor.epilog()?;
    Ok(document)
}

/// The error for `child` found in `parent` where it has no place.
pub(super) fn unexpected_child(parent: &str, child: &str) -> MsmlError {
    let known = [MSML_ELEMENTS, MOML_ELEMENTS, TRANSFER_ELEMENTS]
        .iter()
        .any(|list| list.contains(&child));
    if known {
        MsmlError::new(
            response::FORBIDDEN_ELEMENT_CONTENT,
            format!("element <{child}> is not allowed in <{parent}>"),
        )
    } else {
        MsmlError::new(
            response::UNKNOWN_ELEMENT,
            format!("unknown element <{child}> in <{parent}>"),
        )
    }
}

fn one_too_many(parent: &str, child: &str) -> MsmlError {
    MsmlError::new(
        response::FORBIDDEN_ELEMENT_CONTENT,
        format!("a second <{child}> in <{parent}>"),
    )
}

/// RFC 5707 16.1.2 `msmlInstanceID.datatype` and `mark.datatype`.
fn is_instance_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'-' | b'_'))
}

/// RFC 5707 16.3.2 `momlID`, `momlEvent` and `momlTarget`.
fn is_moml_id(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `conn:ID` or `conf:ID` (RFC 5707 6.2). ID: the schema's characters plus
/// those of a SIP tag (RFC 3261 25.1 token), as `conn:` names the dialog tag;
/// not `*`, since a dialog target has no wildcard (9.6.1).
fn is_independent_id(s: &str) -> bool {
    let id = s.strip_prefix("conn:").or_else(|| s.strip_prefix("conf:"));
    id.is_some_and(|id| {
        !id.is_empty()
            && id.bytes().all(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(
                        b,
                        b'.' | b':' | b'-' | b'_' | b'!' | b'%' | b'+' | b'\'' | b'~' | b'`'
                    )
            })
    })
}

/// `conn:…/dialog:NAME` or `conf:…/dialog:NAME` (RFC 5707 16.1.2
/// `dialogID.datatype`).
fn is_dialog_id(s: &str) -> bool {
    s.split_once("/dialog:")
        .is_some_and(|(target, name)| is_independent_id(target) && is_instance_id(name))
}

/// `type/subtype[;params]`, RFC 6838 4.2 names.
fn is_media_type(s: &str) -> bool {
    let name = |n: &str| {
        !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    let essence = s.split(';').next().unwrap_or_default().trim();
    essence
        .split_once('/')
        .is_some_and(|(t, sub)| name(t) && name(sub))
}

fn read_msml(cursor: &mut Cursor<'_>, root: &BytesStart<'_>) -> Result<Document, MsmlError> {
    let root_name = element_name(root);
    if root_name != "msml" {
        return Err(bad_request(format!(
            "the root element is <{root_name}>, not <msml>"
        )));
    }
    let mut attrs = Attrs::of(root, "msml")?;
    let version = attrs.required("version")?;
    if version != "1.1" && version != "1.0" {
        return Err(attrs.invalid("version", &version, "MSML 1.1 or 1.0 only"));
    }
    attrs.finish()?;
    let mut requests = Vec::new();
    while let Some(child) = cursor.next_child("msml")? {
        match element_name(&child).as_str() {
            "dialogstart" => requests.push(Request::DialogStart(Box::new(read_dialogstart(cursor, &child)?))),
            "dialogend" => requests.push(read_dialogend(cursor, &child)?),
            name if MSML_ELEMENTS.contains(&name) => {
                return Err(MsmlError::new(
                    response::UNSUPPORTED_ELEMENT,
                    format!(
                        "unsupported element <{name}> (only <dialogstart> and <dialogend> are supported)"
                    ),
                ))
            }
            name => return Err(unexpected_child("msml", name)),
        }
    }
    Ok(Document { version, requests })
}

/// RFC 5707 9.6.1.
fn read_dialogstart(cursor: &mut Cursor<'_>, e: &BytesStart<'_>) -> Result<DialogStart, MsmlError> {
    let mut attrs = Attrs::of(e, "dialogstart")?;
    let target = attrs.required("target")?;
    if !is_independent_id(&target) {
        return Err(attrs.invalid("target", &target, "not conn:ID or conf:ID"));
    }
    match attrs.take("type").as_deref() {
        None | Some("application/moml+xml") => {}
        Some(t @ ("application/vxml+xml" | "application/voicexml+xml")) => {
            return Err(MsmlError::new(
                response::UNSUPPORTED_MEDIA_DESCRIPTION_LANGUAGE,
                format!("dialog type '{t}' is not supported (only application/moml+xml)"),
            ))
        }
        Some(t) => {
            return Err(MsmlError::new(
                response::UNKNOWN_MEDIA_DESCRIPTION_LANGUAGE,
                format!("dialog type '{t}' is unknown (only application/moml+xml)"),
            ))
        }
    }
    let name = attrs.checked("name", is_instance_id, "not [a-zA-Z0-9.:_-]+")?;
    let mark = attrs.checked("mark", is_instance_id, "not [a-zA-Z0-9.:_-]+")?;
    let src = attrs.take("src");
    // Dialogic's display hint for the target; nothing to execute.
    let _ = attrs.take("dlgc:target_display");
    attrs.finish()?;
    let mut transfer = None;
    while let Some(child) = cursor.next_child("dialogstart")? {
        if src.is_some() {
            return Err(MsmlError::new(
                response::AMBIGUOUS_REQUEST,
                "<dialogstart> has both src and an inline dialog",
            ));
        }
        match element_name(&child).as_str() {
            "transfer" if transfer.is_some() => {
                return Err(MsmlError::new(
                    response::UNSUPPORTED_ELEMENT,
                    "a second primitive in <dialogstart> is not supported (one <transfer> only)",
                ))
            }
            "transfer" => transfer = Some(read_transfer(cursor, &child)?),
            name if MOML_ELEMENTS.contains(&name) => {
                return Err(MsmlError::new(
                    response::UNSUPPORTED_ELEMENT,
                    format!("unsupported element <{name}> (only <transfer> is supported)"),
                ))
            }
            name => return Err(unexpected_child("dialogstart", name)),
        }
    }
    if src.is_some() {
        return Err(MsmlError::new(
            response::ATTRIBUTE_NOT_SUPPORTED,
            "attribute 'src' on <dialogstart> is not supported (no external dialog scripts; put the <transfer> inline)",
        ));
    }
    let transfer = transfer.ok_or_else(|| {
        MsmlError::new(
            response::MISSING_MANDATORY_ELEMENT_CONTENT,
            "<dialogstart> needs an inline <transfer>",
        )
    })?;
    Ok(DialogStart {
        target,
        name,
        mark,
        transfer,
    })
}

/// RFC 5707 9.6.2.
fn read_dialogend(cursor: &mut Cursor<'_>, e: &BytesStart<'_>) -> Result<Request, MsmlError> {
    let mut attrs = Attrs::of(e, "dialogend")?;
    let id = attrs.required("id")?;
    if !is_dialog_id(&id) {
        return Err(attrs.invalid("id", &id, "not conn:ID/dialog:NAME or conf:ID/dialog:NAME"));
    }
    let mark = attrs.checked("mark", is_instance_id, "not [a-zA-Z0-9.:_-]+")?;
    attrs.finish()?;
    cursor.end_empty("dialogend")?;
    Ok(Request::DialogEnd { id, mark })
}

/// Dialogic's `<transfer>` (CONTROL-SURFACES.md 2.3). Children in any order.
fn read_transfer(cursor: &mut Cursor<'_>, e: &BytesStart<'_>) -> Result<Transfer, MsmlError> {
    let mut attrs = Attrs::of(e, "transfer")?;
    let id = attrs.checked("id", is_moml_id, "not a MOML id")?;
    let initial = match attrs.take("initial") {
        None => Initial::Transmit,
        Some(v) if v == "transmit" => Initial::Transmit,
        Some(v) if v == "suspend" => Initial::Suspend,
        Some(v) => return Err(attrs.invalid("initial", &v, "not transmit or suspend")),
    };
    let iterate = attrs.iterate()?;
    let retry = attrs.retry()?;
    let delay = attrs.duration("delay")?;
    let starttimer = attrs.boolean("starttimer", false)?;
    let ftt = attrs.duration("ftt")?;
    let itt = attrs.duration("itt")?;
    let maxtime = attrs.duration("maxtime")?;
    attrs.finish()?;

    let mut objects = Vec::new();
    let (mut objdone, mut exit) = (None, None);
    let (mut start_marker, mut objstart_marker) = (false, false);
    while let Some(child) = cursor.next_child("transfer")? {
        let name = element_name(&child);
        match name.as_str() {
            "fileobj" => objects.push(TransferObject::File(read_fileobj(cursor, &child)?)),
            "messageobj" => objects.push(TransferObject::Message(read_messageobj(cursor, &child)?)),
            "transferstart" | "transferobjstart" => {
                let seen = if name == "transferstart" {
                    &mut start_marker
                } else {
                    &mut objstart_marker
                };
                if *seen {
                    return Err(one_too_many("transfer", &name));
                }
                *seen = true;
                Attrs::of(&child, &name)?.finish()?;
                cursor.end_empty(&name)?;
            }
            "transferobjdone" | "transferexit" => {
                let slot = if name == "transferobjdone" {
                    &mut objdone
                } else {
                    &mut exit
                };
                if slot.is_some() {
                    return Err(one_too_many("transfer", &name));
                }
                *slot = Some(read_hook(cursor, &child, &name)?);
            }
            _ => return Err(unexpected_child("transfer", &name)),
        }
    }
    if objects.is_empty() {
        return Err(MsmlError::new(
            response::MISSING_MANDATORY_ELEMENT_CONTENT,
            "<transfer> needs at least one <fileobj> or <messageobj>",
        ));
    }
    Ok(Transfer {
        id,
        objects,
        initial,
        iterate,
        retry,
        delay,
        starttimer,
        ftt,
        itt,
        maxtime,
        objdone: objdone.unwrap_or_default(),
        exit: exit.unwrap_or_default(),
        start_marker,
        objstart_marker,
    })
}

/// The MOML `sendType` group (RFC 5707 16.3.2): `<send>`*, then at most one
/// `<exit>` or `<disconnect>`.
fn read_hook(cursor: &mut Cursor<'_>, e: &BytesStart<'_>, name: &str) -> Result<Hook, MsmlError> {
    Attrs::of(e, name)?.finish()?;
    let mut hook = Hook::default();
    while let Some(child) = cursor.next_child(name)? {
        let child_name = element_name(&child);
        if !matches!(child_name.as_str(), "send" | "exit" | "disconnect") {
            return Err(unexpected_child(name, &child_name));
        }
        if hook.end.is_some() {
            return Err(MsmlError::new(
                response::FORBIDDEN_ELEMENT_CONTENT,
                format!("<{child_name}> after <exit> or <disconnect> in <{name}>"),
            ));
        }
        let mut attrs = Attrs::of(&child, &child_name)?;
        match child_name.as_str() {
            // RFC 5707 9.6.3.
            "send" => {
                let event = attrs.required("event")?;
                if !is_moml_id(&event) {
                    return Err(attrs.invalid("event", &event, "not a MOML event name"));
                }
                let target = attrs.required("target")?;
                if !is_moml_id(&target) {
                    return Err(attrs.invalid("target", &target, "not a MOML target"));
                }
                let namelist = attrs.namelist();
                hook.sends.push(SendAction {
                    event,
                    target,
                    namelist,
                });
            }
            // RFC 5707 9.6.4, 9.6.5.
            "exit" => {
                hook.end = Some(HookEnd::Exit {
                    namelist: attrs.namelist(),
                })
            }
            _ => {
                hook.end = Some(HookEnd::Disconnect {
                    namelist: attrs.namelist(),
                })
            }
        }
        attrs.finish()?;
        cursor.end_empty(&child_name)?;
    }
    Ok(hook)
}

fn read_fileobj(cursor: &mut Cursor<'_>, e: &BytesStart<'_>) -> Result<FileObj, MsmlError> {
    let mut attrs = Attrs::of(e, "fileobj")?;
    let objid = attrs.take("objid");
    let iterate = attrs.iterate()?;
    let retry = attrs.retry()?;
    let src = parse_src(&attrs.required("src")?).map_err(|e| e.on("fileobj"))?;
    let Some(dest) = attrs.take("dest") else {
        return Err(MsmlError::new(
            response::MISSING_MANDATORY_ATTRIBUTE,
            "missing mandatory attribute 'dest' on <fileobj> (fileobj needs dest)",
        ));
    };
    let dest = parse_dest(&dest, Some(&src)).map_err(|e| e.on("fileobj"))?;
    let wait = attrs.boolean("wait", false)?;
    let contenttype = attrs.checked("contenttype", is_media_type, "not a media type")?;
    let delete = attrs.boolean("delete", false)?;
    let overwrite = attrs.boolean("overwrite", true)?;
    let append = attrs.boolean("append", false)?;
    let lang = attrs.take("xml:lang");
    attrs.finish()?;
    cursor.end_empty("fileobj")?;
    Ok(FileObj {
        objid,
        src,
        dest,
        contenttype,
        delete,
        overwrite,
        append,
        iterate,
        retry,
        wait,
        lang,
    })
}

fn read_messageobj(cursor: &mut Cursor<'_>, e: &BytesStart<'_>) -> Result<MessageObj, MsmlError> {
    let mut attrs = Attrs::of(e, "messageobj")?;
    let objid = attrs.take("objid");
    let iterate = attrs.iterate()?;
    let retry = attrs.retry()?;
    let src: Option<PathBuf> = match attrs.take("src") {
        Some(v) => Some(parse_src(&v).map_err(|e| e.on("messageobj"))?),
        None => None,
    };
    let dest = attrs.required("dest")?;
    let dest = parse_dest(&dest, src.as_deref()).map_err(|e| e.on("messageobj"))?;
    let wait = attrs.boolean("wait", false)?;
    let contenttype = attrs
        .checked("contenttype", is_media_type, "not a media type")?
        .unwrap_or_else(|| "text/plain".to_owned());
    attrs.finish()?;
    let mut contents = Vec::new();
    while let Some(child) = cursor.next_child("messageobj")? {
        match element_name(&child).as_str() {
            "content" => contents.push(read_content(cursor, &child)?),
            name => return Err(unexpected_child("messageobj", name)),
        }
    }
    match (&src, contents.is_empty()) {
        (Some(_), false) => Err(MsmlError::new(
            response::AMBIGUOUS_REQUEST,
            "<messageobj> has both src and <content>",
        )),
        (None, true) => Err(MsmlError::new(
            response::MISSING_MANDATORY_ELEMENT_CONTENT,
            "<messageobj> needs src or a <content>",
        )),
        _ => Ok(MessageObj {
            objid,
            src,
            dest,
            contenttype,
            contents,
            iterate,
            retry,
            wait,
        }),
    }
}

fn read_content(cursor: &mut Cursor<'_>, e: &BytesStart<'_>) -> Result<Content, MsmlError> {
    let mut attrs = Attrs::of(e, "content")?;
    let contentid = attrs.take("contentid");
    let contenttype = attrs
        .checked("contenttype", is_media_type, "not a media type")?
        .unwrap_or_else(|| "text/plain".to_owned());
    let disposition = attrs.take("contentdisposition");
    attrs.finish()?;
    let text = cursor.text("content")?;
    Ok(Content {
        text,
        contenttype,
        contentid,
        disposition,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(is_independent_id("conn:f18ae5d8-77c9892-13c4"));
        assert!(is_independent_id("conf:room.1"));
        assert!(!is_independent_id("conn:*"));
        assert!(!is_independent_id("conn:"));
        assert!(!is_independent_id("call:x"));
        assert!(is_dialog_id("conn:a/dialog:b"));
        assert!(!is_dialog_id("conn:a/dialog:"));
        assert!(!is_dialog_id("conn:a"));
        assert!(is_moml_id("transfer.objectdone"));
        assert!(!is_moml_id(".x"));
        assert!(is_media_type("audio/amr"));
        assert!(is_media_type("text/plain; charset=utf-8"));
        assert!(!is_media_type("audio"));
        assert!(!is_media_type("audio/"));
    }

    #[test]
    fn entities_and_prolog() {
        let doc = br#"<?xml version="1.0" encoding="utf-8"?><!-- c --><msml version="1.1"><dialogend id="conn:a&#45;b/dialog:x"/></msml><!-- t -->"#;
        let d = parse(doc).unwrap();
        assert_eq!(
            d.requests,
            vec![Request::DialogEnd {
                id: "conn:a-b/dialog:x".into(),
                mark: None
            }]
        );
        let e = parse(br#"<!DOCTYPE msml [<!ENTITY x "y">]><msml version="1.1"/>"#).unwrap_err();
        assert_eq!(
            (e.response, e.description.as_str()),
            (400, "a DOCTYPE is not allowed")
        );
        let e = parse(br#"<?xml version="1.0" encoding="ISO-8859-1"?><msml version="1.1"/>"#).unwrap_err();
        assert_eq!(e.response, 400);
        let e = parse(br#"<msml version="1.1"/><msml version="1.1"/>"#).unwrap_err();
        assert_eq!(e.description, "content after the root element");
        let e = parse(b"").unwrap_err();
        assert_eq!(e.description, "the document has no root element");
        let e = parse(b"\xff<msml/>").unwrap_err();
        assert!(e.description.starts_with("the document is not UTF-8"));
    }
}
