//! The XML walk under the MSML reader: a quick-xml pull reader that gives
//! an element's children one at a time (refusing stray text, DTDs and
//! entities), and its attributes taken one by one as MSML's datatypes, so
//! that whatever is not taken is an error.

use std::time::Duration;

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::Reader;

use super::duration::parse_pos_duration;
use super::model::{response, MsmlError, Retry};
use super::read::unexpected_child;

/// The deepest element nesting read. The schema needs 6 (`msml`,
/// `dialogstart`, `transfer`, `messageobj`, `content`, or a hook's `send`),
/// and an unexpected element is refused where it first appears, so this only
/// backs that up.
pub const DEPTH_MAX: usize = 32;

pub(super) fn bad_request(description: String) -> MsmlError {
    MsmlError::new(response::BAD_REQUEST, description)
}

pub(super) fn element_name(e: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.name().as_ref()).into_owned()
}

/// The pull reader, with the nesting depth it is at.
pub(super) struct Cursor<'a> {
    reader: Reader<&'a [u8]>,
    depth: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        let mut reader = Reader::from_str(text);
        let config = reader.config_mut();
        config.expand_empty_elements = true;
        config.check_end_names = true;
        config.check_comments = true;
        config.trim_text(false);
        Cursor { reader, depth: 0 }
    }

    pub(super) fn event(&mut self) -> Result<Event<'a>, MsmlError> {
        let event = self.reader.read_event().map_err(|e| {
            let at = self.reader.error_position();
            bad_request(format!("malformed XML at byte {at}: {e}"))
        })?;
        match &event {
            Event::Start(_) => {
                self.depth += 1;
                if self.depth > DEPTH_MAX {
                    return Err(bad_request(format!("elements nest deeper than {DEPTH_MAX}")));
                }
            }
            Event::End(_) => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
        Ok(event)
    }

    /// Passes the prolog (XML declaration, comments, white space) and gives
    /// the root element.
    pub(super) fn root(&mut self) -> Result<BytesStart<'a>, MsmlError> {
        let mut first = true;
        loop {
            match self.event()? {
                Event::Decl(decl) if first => {
                    if let Some(Ok(encoding)) = decl.encoding() {
                        let encoding = String::from_utf8_lossy(&encoding).into_owned();
                        if !["utf-8", "utf8", "us-ascii"]
                            .iter()
                            .any(|e| encoding.eq_ignore_ascii_case(e))
                        {
                            return Err(bad_request(format!(
                                "encoding '{encoding}' is not supported (UTF-8 only)"
                            )));
                        }
                    }
                }
                Event::Start(e) => return Ok(e),
                Event::Comment(_) => {}
                Event::Text(t) if t.iter().all(|b| b" \t\r\n".contains(b)) => {}
                Event::DocType(_) => return Err(bad_request("a DOCTYPE is not allowed".into())),
                Event::Eof => return Err(bad_request("the document has no root element".into())),
                _ => return Err(bad_request("content before the root element".into())),
            }
            first = false;
        }
    }

    /// After the root: only comments and white space.
    pub(super) fn epilog(&mut self) -> Result<(), MsmlError> {
        loop {
            match self.event()? {
                Event::Eof => return Ok(()),
                Event::Comment(_) => {}
                Event::Text(t) if t.iter().all(|b| b" \t\r\n".contains(b)) => {}
                _ => return Err(bad_request("content after the root element".into())),
            }
        }
    }

    /// The next child element of `parent`, or `None` at its end tag. Text
    /// other than white space is refused (405).
    pub(super) fn next_child(&mut self, parent: &str) -> Result<Option<BytesStart<'a>>, MsmlError> {
        loop {
            let text = match self.event()? {
                Event::Start(e) => return Ok(Some(e)),
                Event::End(_) => return Ok(None),
                Event::Comment(_) => continue,
                Event::Text(t) => String::from_utf8_lossy(&t).into_owned(),
                Event::CData(c) => String::from_utf8_lossy(&c).into_owned(),
                Event::GeneralRef(r) => resolve_reference(&r)?,
                Event::Eof => return Err(bad_request(format!("the document ends inside <{parent}>"))),
                _ => return Err(bad_request(format!("markup not allowed in <{parent}>"))),
            };
            // XML 1.0 2.3 `S`: only these four are white space.
            let text = text.trim_matches([' ', '\t', '\r', '\n']);
            if !text.is_empty() {
                let shown: String = text.chars().take(40).collect();
                return Err(MsmlError::new(
                    response::INVALID_ELEMENT_CONTENT,
                    format!("text '{shown}' is not allowed in <{parent}>"),
                ));
            }
        }
    }

    /// The end of an element that has no content.
    pub(super) fn end_empty(&mut self, element: &str) -> Result<(), MsmlError> {
        match self.next_child(element)? {
            None => Ok(()),
            Some(child) => Err(unexpected_child(element, &element_name(&child))),
        }
    }

    /// The character data of `element` up to its end tag.
    pub(super) fn text(&mut self, element: &str) -> Result<String, MsmlError> {
        let mut out = String::new();
        loop {
            match self.event()? {
                Event::End(_) => return Ok(out),
                Event::Text(t) => match t.xml10_content() {
                    Ok(s) => out.push_str(&s),
                    Err(e) => return Err(bad_request(format!("text in <{element}>: {e}"))),
                },
                Event::CData(c) => out.push_str(&String::from_utf8_lossy(&c)),
                Event::GeneralRef(r) => out.push_str(&resolve_reference(&r)?),
                Event::Comment(_) => {}
                Event::Start(child) => return Err(unexpected_child(element, &element_name(&child))),
                Event::Eof => return Err(bad_request(format!("the document ends inside <{element}>"))),
                _ => return Err(bad_request(format!("markup not allowed in <{element}>"))),
            }
        }
    }
}

/// `&#NN;`, `&#xNN;` and XML's five predefined entities; no others.
fn resolve_reference(r: &BytesRef<'_>) -> Result<String, MsmlError> {
    match r.resolve_char_ref() {
        Ok(Some(c)) => return Ok(c.to_string()),
        Ok(None) => {}
        Err(e) => return Err(bad_request(format!("bad character reference: {e}"))),
    }
    let name = String::from_utf8_lossy(r).into_owned();
    resolve_predefined_entity(&name)
        .map(str::to_owned)
        .ok_or_else(|| bad_request(format!("unknown entity '&{name};'")))
}

/// The attributes of one element, taken one by one; what is left at
/// [`Attrs::finish`] is unknown.
pub(super) struct Attrs {
    element: String,
    list: Vec<(String, String)>,
}

impl Attrs {
    pub(super) fn of(e: &BytesStart<'_>, element: &str) -> Result<Self, MsmlError> {
        let mut list = Vec::new();
        for attr in e.attributes() {
            let attr =
                attr.map_err(|err| bad_request(format!("malformed attribute in <{element}>: {err}")))?;
            let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
            if key == "xmlns" || key.starts_with("xmlns:") {
                continue;
            }
            // XML 1.0 3.3.3: literal white space in a value reads as a space.
            let raw: String = String::from_utf8_lossy(&attr.value)
                .chars()
                .map(|c| if matches!(c, '\t' | '\r' | '\n') { ' ' } else { c })
                .collect();
            let value = quick_xml::escape::unescape(&raw)
                .map_err(|err| bad_request(format!("attribute '{key}' on <{element}>: {err}")))?
                .into_owned();
            if value.chars().any(char::is_control) {
                return Err(MsmlError::new(
                    response::INVALID_ATTRIBUTE_VALUE,
                    format!("attribute '{key}' on <{element}> holds a control character"),
                ));
            }
            list.push((key, value));
        }
        Ok(Attrs {
            element: element.to_owned(),
            list,
        })
    }

    pub(super) fn take(&mut self, name: &str) -> Option<String> {
        let i = self.list.iter().position(|(k, _)| k == name)?;
        Some(self.list.remove(i).1)
    }

    pub(super) fn required(&mut self, name: &str) -> Result<String, MsmlError> {
        self.take(name).ok_or_else(|| {
            MsmlError::new(
                response::MISSING_MANDATORY_ATTRIBUTE,
                format!("missing mandatory attribute '{name}' on <{}>", self.element),
            )
        })
    }

    pub(super) fn invalid(&self, name: &str, value: &str, why: &str) -> MsmlError {
        MsmlError::new(
            response::INVALID_ATTRIBUTE_VALUE,
            format!(
                "invalid value '{value}' for attribute '{name}' on <{}>: {why}",
                self.element
            ),
        )
    }

    /// An optional value that must match `valid`.
    pub(super) fn checked(
        &mut self,
        name: &str,
        valid: fn(&str) -> bool,
        why: &str,
    ) -> Result<Option<String>, MsmlError> {
        match self.take(name) {
            Some(v) if !valid(&v) => Err(self.invalid(name, &v, why)),
            v => Ok(v),
        }
    }

    pub(super) fn boolean(&mut self, name: &str, default: bool) -> Result<bool, MsmlError> {
        let Some(v) = self.take(name) else {
            return Ok(default);
        };
        match v.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(true),
            "false" | "no" | "0" => Ok(false),
            _ => Err(self.invalid(name, &v, "not a boolean (true, false, yes, no, 1, 0)")),
        }
    }

    pub(super) fn duration(&mut self, name: &str) -> Result<Option<Duration>, MsmlError> {
        let Some(v) = self.take(name) else {
            return Ok(None);
        };
        parse_pos_duration(&v)
            .map(Some)
            .map_err(|why| self.invalid(name, &v, &why))
    }

    /// `iterate`: a positive integer, default 1.
    pub(super) fn iterate(&mut self) -> Result<u32, MsmlError> {
        let Some(v) = self.take("iterate") else {
            return Ok(1);
        };
        match v.parse::<u32>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(self.invalid("iterate", &v, "not a positive integer")),
        }
    }

    /// `retry`: a count, default 0, or `-1` / `forever`.
    pub(super) fn retry(&mut self) -> Result<Retry, MsmlError> {
        let Some(v) = self.take("retry") else {
            return Ok(Retry::default());
        };
        if v == "-1" || v.eq_ignore_ascii_case("forever") {
            return Ok(Retry::Forever);
        }
        v.parse::<u32>()
            .map(Retry::Count)
            .map_err(|_| self.invalid("retry", &v, "not a count, -1 or forever"))
    }

    pub(super) fn namelist(&mut self) -> Vec<String> {
        self.take("namelist")
            .map(|v| v.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    pub(super) fn finish(self) -> Result<(), MsmlError> {
        match self.list.first() {
            None => Ok(()),
            Some((key, _)) => Err(MsmlError::new(
                response::UNKNOWN_ATTRIBUTE,
                format!("unknown attribute '{key}' on <{}>", self.element),
            )),
        }
    }
}
