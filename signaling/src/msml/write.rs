//! The documents msrp-signal sends: `<result>` in the response to a request
//! (RFC 5707 7.3) and `<event>` in an INFO of its own (RFC 5707 7.4).
//!
//! Written compact, without an XML declaration or white space, the shape
//! Dialogic's clients read (CONTROL-SURFACES.md 2.1). Attribute values and
//! text are escaped; a character XML 1.0 cannot carry at all (2.2 `Char`,
//! e.g. NUL) is written as U+FFFD.

/// `<msml version="1.1"><result response="…">[<description>…</description>][<dialogid>…</dialogid>]</result></msml>`.
///
/// RFC 5707 16.1.1 makes `<description>` (for a failure, 7.3) and the ids
/// of created objects a choice, so a caller passes one or the other; given
/// both, both are written, `<description>` first.
pub fn result(response: u16, description: Option<&str>, dialogid: Option<&str>) -> String {
    let mut out = format!(r#"<msml version="1.1"><result response="{response}">"#);
    if let Some(d) = description {
        out.push_str("<description>");
        escape_into(&mut out, d);
        out.push_str("</description>");
    }
    if let Some(id) = dialogid {
        out.push_str("<dialogid>");
        escape_into(&mut out, id);
        out.push_str("</dialogid>");
    }
    out.push_str("</result></msml>");
    out
}

/// `<msml version="1.1"><event name="…" id="…"><name>k</name><value>v</value>…</event></msml>`.
///
/// `id` is the dialog (or conference) that the event comes from. Dialogic's
/// schema wants each value to match `[a-zA-Z0-9.]+`; [`token`] makes one.
pub fn event(name: &str, id: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = String::from(r#"<msml version="1.1"><event name=""#);
    escape_into(&mut out, name);
    out.push_str(r#"" id=""#);
    escape_into(&mut out, id);
    out.push_str(r#"">"#);
    for (k, v) in pairs {
        out.push_str("<name>");
        escape_into(&mut out, k);
        out.push_str("</name><value>");
        escape_into(&mut out, v);
        out.push_str("</value>");
    }
    out.push_str("</event></msml>");
    out
}

/// `s` as an event value fit for Dialogic's `[a-zA-Z0-9.]+`: every other
/// character becomes `.`, and nothing becomes `none`.
pub fn token(s: &str) -> String {
    if s.is_empty() {
        return "none".to_owned();
    }
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '.' })
        .collect()
}

/// The id of dialog `name` on `target` (RFC 5707 6.2):
/// `conn:…/dialog:NAME`.
pub fn dialog_id(target: &str, name: &str) -> String {
    format!("{target}/dialog:{name}")
}

/// XML 1.0 2.2 `Char`.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Escapes for both text and a double-quoted attribute value; white space
/// other than the space is written as a reference so that attribute-value
/// normalisation (XML 1.0 3.3.3) keeps it.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_shapes() {
        assert_eq!(
            result(200, None, Some("conn:a/dialog:b")),
            r#"<msml version="1.1"><result response="200"><dialogid>conn:a/dialog:b</dialogid></result></msml>"#
        );
        assert_eq!(
            result(402, Some("unsupported element <play>"), None),
            r#"<msml version="1.1"><result response="402"><description>unsupported element &lt;play&gt;</description></result></msml>"#
        );
        assert_eq!(
            result(200, None, None),
            r#"<msml version="1.1"><result response="200"></result></msml>"#
        );
    }

    #[test]
    fn event_shape_and_escaping() {
        assert_eq!(
            event("TransferEnd", "conn:a/dialog:b", &[("transfer.end", "transfer.complete"), ("k", "a&\"b\"\n\0")]),
            "<msml version=\"1.1\"><event name=\"TransferEnd\" id=\"conn:a/dialog:b\"><name>transfer.end</name><value>transfer.complete</value><name>k</name><value>a&amp;&quot;b&quot;&#10;\u{FFFD}</value></event></msml>"
        );
    }

    #[test]
    fn tokens() {
        assert_eq!(token("408 Request Timeout"), "408.Request.Timeout");
        assert_eq!(token(""), "none");
        assert_eq!(token("transfer.complete"), "transfer.complete");
        assert_eq!(token("é"), ".");
        assert_eq!(dialog_id("conn:x", "12345"), "conn:x/dialog:12345");
    }
}
