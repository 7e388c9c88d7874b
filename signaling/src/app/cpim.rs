//! message/cpim (RFC 3862) with the IMDN extension (RFC 5438), and the two
//! small XML bodies a chat carries besides content: IMDN notifications
//! (RFC 5438 7.2.1.1) and is-composing (RFC 3994).
//!
//! Sans-IO: bytes in, fields or bytes out; the clock is an argument of
//! [`build`]. The writer is strict (a value that could inject a header is
//! refused, naming the REST field); the reader is liberal (LF or CRLF, header
//! names in any case, any NS prefix, the RFC 5438 examples' missing blank line).

use memchr::{memchr, memmem};

/// RFC 5438 6.1: the namespace of the IMDN header fields.
const IMDN_NS: &str = "urn:ietf:params:imdn";
/// RFC 3862 4: the namespace of From, To, cc, DateTime, Subject, NS, Require
/// (section 6 spells it "urn:ietf:params-cpim-headers:"; both are accepted).
const CPIM_NS: [&str; 2] = ["urn:ietf:params:cpim-headers:", "urn:ietf:params-cpim-headers:"];
/// RFC 5438 7.1.1.3: the dispositions an IM Sender may request.
const DISPOSITIONS: [&str; 4] = ["positive-delivery", "negative-delivery", "processing", "display"];
/// Message headers plus encapsulated MIME headers one body may carry; past it `parse` refuses.
const HEADERS_MAX: usize = 256;
/// 9999-12-31T23:59:59.999Z: RFC 3339 5.6's date-fullyear has four digits.
const UNIX_MS_MAX: u64 = 253_402_300_799_999;

/// What an application asks to wrap (REST `cpim: {from, to, datetime?, imdn?}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct CpimWrap {
    /// `Formal-name <URI>` or a bare URI, which gets the `<>` added (RFC 3862 4.1).
    pub from: String,
    /// As `from` (RFC 3862 4.2).
    pub to: String,
    /// RFC 3339; when None, [`build`] writes its `now_unix_ms`.
    #[serde(default)]
    pub datetime: Option<String>,
    #[serde(default)]
    pub imdn: Option<ImdnRequest>,
}

/// The IMDN headers asked for (RFC 5438 6.2, 6.3).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct ImdnRequest {
    /// When None, [`build`] writes the `message_id` it is given.
    #[serde(default)]
    pub message_id: Option<String>,
    /// e.g. `["positive-delivery", "negative-delivery", "display"]`.
    #[serde(default)]
    pub disposition: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CpimError {
    /// A value [`build`] was asked to write is refused; the first member is its REST field name.
    #[error("{0}: {1}")]
    Field(&'static str, String),
    /// A received body is not message/cpim.
    #[error("malformed message/cpim: {0}")]
    Malformed(String),
}

/// Builds a message/cpim body (RFC 3862 2): the message headers (From, To,
/// DateTime, and with `imdn` the NS declaration, `imdn.Message-ID` and
/// `imdn.Disposition-Notification` of RFC 5438 6.3, 7.1.1), a blank line, the
/// encapsulated MIME headers (`Content-Type: {inner_type}`, `Content-Length`),
/// a blank line, the body. `message_id` is written when `wrap.imdn.message_id`
/// is None. Every value is checked before anything is written; the error names
/// the field (`cpim.from`, `cpim.to`, `cpim.datetime`, `cpim.imdn.message_id`,
/// `cpim.imdn.disposition`, and `content_type` for `inner_type`).
pub fn build(
    wrap: &CpimWrap,
    inner_type: &str,
    body: &[u8],
    now_unix_ms: u64,
    message_id: &str,
) -> Result<Vec<u8>, CpimError> {
    let from = name_addr("cpim.from", &wrap.from)?;
    let to = name_addr("cpim.to", &wrap.to)?;
    let datetime = match &wrap.datetime {
        Some(datetime) => check_datetime(datetime)?,
        None => rfc3339(now_unix_ms),
    };
    let inner_type = inner_type.trim();
    if inner_type.is_empty() || inner_type.contains(char::is_control) {
        let refusal = format!("{inner_type:?} is not a MIME type");
        return Err(CpimError::Field("content_type", refusal));
    }
    let mut imdn = None;
    if let Some(request) = &wrap.imdn {
        let id = request.message_id.as_deref().unwrap_or(message_id);
        check_token("cpim.imdn.message_id", id)?;
        let dispositions: Result<Vec<_>, _> = request.disposition.iter().map(|d| disposition(d)).collect();
        imdn = Some((id, dispositions?));
    }

    let mut out = Vec::with_capacity(256 + body.len());
    header(&mut out, "From", &from);
    header(&mut out, "To", &to);
    header(&mut out, "DateTime", &datetime);
    if let Some((id, dispositions)) = imdn {
        // RFC 5438 6.1: the prefix is ours to choose; the declaration precedes its use (RFC 3862 3.4).
        header(&mut out, "NS", &format!("imdn <{IMDN_NS}>"));
        header(&mut out, "imdn.Message-ID", id);
        // RFC 5438 7.1.1.3: an absent header requests nothing, as an empty one would.
        if !dispositions.is_empty() {
            let requested = dispositions.join(", ");
            header(&mut out, "imdn.Disposition-Notification", &requested);
        }
    }
    // RFC 3862 2: a blank line between the message headers and the MIME part,
    // 2.4: whose headers include at least a Content-Type.
    out.extend_from_slice(b"\r\n");
    header(&mut out, "Content-Type", inner_type);
    header(&mut out, "Content-Length", &body.len().to_string());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Ok(out)
}

fn header(out: &mut Vec<u8>, name: &str, value: &str) {
    // RFC 3862 2.2: one header a line, a single SP after the colon, CRLF.
    for part in [name, ": ", value, "\r\n"] {
        out.extend_from_slice(part.as_bytes());
    }
}

/// RFC 3862 4.1: `[ Formal-name ] "<" URI ">"`, escaped per 2.3.1.
fn name_addr(field: &'static str, value: &str) -> Result<String, CpimError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(CpimError::Field(field, "empty".into()));
    }
    // RFC 3862 2.2: a header is one line; refusing (not escaping) CR and LF keeps
    // a caller from smuggling a header in, whatever reads the result.
    if value.contains(['\r', '\n']) {
        return Err(CpimError::Field(field, "contains CR or LF".into()));
    }
    let (formal_name, uri) = match value.rfind('<') {
        None => ("", value),
        Some(lt) => {
            let unclosed = || CpimError::Field(field, format!("{value:?}: '<' without a final '>'"));
            (
                value[..lt].trim_end(),
                value[lt + 1..].strip_suffix('>').ok_or_else(unclosed)?,
            )
        }
    };
    // RFC 3862 4.1 wants an absolute URI: a scheme, and nothing that would end the <>.
    let stray = |c: char| c.is_whitespace() || c.is_control() || c == '<' || c == '>';
    if !uri.contains(':') || uri.contains(stray) {
        return Err(CpimError::Field(field, format!("{uri:?} is not an absolute URI")));
    }
    Ok(match formal_name {
        "" => format!("<{}>", escape(uri)),
        formal_name => format!("{} <{}>", escape(formal_name), escape(uri)),
    })
}

/// RFC 3862 2.3.1: the special sequences, else `\uxxxx`, for backslash and CTLs.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_ascii_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// RFC 3862 2.3: every escape is recognised; an unknown one stands for the
/// character after the backslash, an isolated final backslash is dropped.
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(escaped) = chars.next() else { break };
        out.push(match escaped {
            'b' => '\u{8}',
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            'u' => {
                let hex = chars.as_str().get(..4);
                let hex = hex.filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()));
                match hex.and_then(|hex| u32::from_str_radix(hex, 16).ok()) {
                    Some(code) => {
                        chars.nth(3);
                        char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER)
                    }
                    None => 'u',
                }
            }
            other => other,
        });
    }
    out
}

/// RFC 5438 10: `Message-ID = "Message-ID" ": " Token`; RFC 3862 3.6's Token
/// has no CTL, SP or separator.
fn check_token(field: &'static str, value: &str) -> Result<(), CpimError> {
    const SEPARATORS: &str = "()<>@,;:\\\"/[]?={} ";
    if value.is_empty() || value.contains(|c: char| c.is_control() || SEPARATORS.contains(c)) {
        return Err(CpimError::Field(field, format!("{value:?} is not a token")));
    }
    Ok(())
}

fn disposition(value: &str) -> Result<&'static str, CpimError> {
    let wanted = value.trim();
    let known = DISPOSITIONS
        .into_iter()
        .find(|known| known.eq_ignore_ascii_case(wanted));
    let refuse = || format!("{value:?} is not one of {}", DISPOSITIONS.join(", "));
    known.ok_or_else(|| CpimError::Field("cpim.imdn.disposition", refuse()))
}

/// RFC 3339 5.6: `full-date "T" partial-time time-offset` with 5.7's ranges
/// (a leap second allowed; 't' and 'z' too, per the note in 5.6).
fn check_datetime(datetime: &str) -> Result<String, CpimError> {
    let refusal = format!("{datetime:?} is not an RFC 3339 date-time");
    let refuse = || CpimError::Field("cpim.datetime", refusal.clone());
    let number = |text: &str, at: usize| text.get(at..at + 2).and_then(|n| n.parse::<u32>().ok());
    let (rest, offset_ok) = match datetime.strip_suffix(['Z', 'z']) {
        Some(rest) => (rest, true),
        None => {
            let at = datetime.len().saturating_sub(6);
            let (Some(rest), Some(offset)) = (datetime.get(..at), datetime.get(at..)) else {
                return Err(refuse());
            };
            let in_range =
                number(offset, 1).is_some_and(|h| h <= 23) && number(offset, 4).is_some_and(|m| m <= 59);
            (rest, shaped(offset, b"+99:99") && in_range)
        }
    };
    let (whole, fraction) = rest.split_once('.').unwrap_or((rest, "0"));
    let fraction_ok = !fraction.is_empty() && fraction.bytes().all(|b| b.is_ascii_digit());
    if !offset_ok || !fraction_ok || !shaped(whole, b"9999-99-99T99:99:99") {
        return Err(refuse());
    }
    let year = whole[..4].parse::<u32>().unwrap_or_default();
    let field = |at: usize| number(whole, at).unwrap_or(u32::MAX);
    let (month, day) = (field(5), field(8));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        2 => 28 + u32::from(leap),
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let in_range = (1..=12).contains(&month) && (1..=days).contains(&day);
    if !in_range || field(11) > 23 || field(14) > 59 || field(17) > 60 {
        return Err(refuse());
    }
    Ok(datetime.to_owned())
}

/// Whether `text` has `template`'s shape: `9` a digit, `T` either case, `+` a sign.
fn shaped(text: &str, template: &[u8]) -> bool {
    text.len() == template.len()
        && text.bytes().zip(template).all(|(c, &t)| match t {
            b'9' => c.is_ascii_digit(),
            b'T' => c.eq_ignore_ascii_case(&b'T'),
            b'+' => c == b'+' || c == b'-',
            t => c == t,
        })
}

/// Formats unix milliseconds as RFC 3339 UTC, e.g. "2026-12-01T15:31:13.123Z".
/// Past 9999-12-31T23:59:59.999Z it stays there (RFC 3339 5.6: four-digit years).
pub fn rfc3339(unix_ms: u64) -> String {
    const DAY_MS: u64 = 86_400_000;
    let unix_ms = unix_ms.min(UNIX_MS_MAX);
    let (year, month, day) = civil_from_days(unix_ms / DAY_MS);
    let ms = unix_ms % DAY_MS;
    let (hour, minute, second) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60);
    let ms = ms % 1000;
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{ms:03}Z")
}

/// Days since 1970-01-01 to the proleptic Gregorian (year, month, day), after
/// Howard Hinnant's `civil_from_days`: eras of 400 years (146 097 days) whose
/// years start on 1 March, so that the leap day ends the year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days since 0000-03-01
    let (era, day_of_era) = (z / 146_097, z % 146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = (month_from_march + 2) % 12 + 1;
    (era * 400 + year_of_era + u64::from(month <= 2), month, day)
}

/// A parsed message/cpim body. Message header values are unescaped (RFC 3862
/// 2.3) and trimmed; recognised headers fill the named members, the rest go to
/// `other_headers` as (name as written, with any `;param` after it, value).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Cpim {
    pub from: Option<String>,
    /// RFC 3862 4.2: To may repeat.
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub datetime: Option<String>,
    /// The first Subject; a further one (another `;lang=`) is in `other_headers`.
    pub subject: Option<String>,
    pub imdn_message_id: Option<String>,
    /// Lower-cased, parameters dropped, in order, over every such header.
    pub disposition_notification: Vec<String>,
    pub other_headers: Vec<(String, String)>,
    /// Of the encapsulated MIME part; None when it has none.
    pub content_type: Option<String>,
    /// Where the encapsulated body starts in the input; it runs to the input's end.
    #[serde(skip)]
    pub body_offset: usize,
}

/// Reads a message/cpim body. Errors: no blank line ending the message headers,
/// a header line without ':' or with an empty name, more than 256 headers.
/// The MIME part may end early: no blank line after its headers reads as an empty body.
pub fn parse(body: &[u8]) -> Result<Cpim, CpimError> {
    let mut cpim = Cpim {
        body_offset: body.len(),
        ..Cpim::default()
    };
    // RFC 3862 3.4 and 4.6: (prefix, URI) as declared by NS, "" for the default namespace.
    let mut namespaces = Vec::new();
    let (mut pos, mut headers, mut in_mime, mut folds_content_type) = (0, 0, false, false);
    loop {
        let Some((line, next)) = line_at(body, pos) else {
            if in_mime {
                break;
            }
            return Err(CpimError::Malformed(
                "no blank line after the message headers".into(),
            ));
        };
        pos = next;
        if line.iter().all(|b| matches!(b, b' ' | b'\t')) {
            // RFC 3862 2: a blank line ends the message headers, then the MIME headers.
            if in_mime {
                cpim.body_offset = next;
                break;
            }
            in_mime = true;
            continue;
        }
        if in_mime && matches!(line.first(), Some(b' ' | b'\t')) {
            // RFC 2045's MIME headers may be folded; CPIM's may not (RFC 3862 2.2).
            if let Some(content_type) = cpim.content_type.as_mut().filter(|_| folds_content_type) {
                content_type.push(' ');
                content_type.push_str(String::from_utf8_lossy(line).trim());
            }
            continue;
        }
        headers += 1;
        if headers > HEADERS_MAX {
            return Err(CpimError::Malformed(format!("more than {HEADERS_MAX} headers")));
        }
        let (name, params, value) = split_header(line)?;
        // The examples of RFC 5438 7.1.1.3 and 7.2.1.1 run the MIME headers on
        // with no blank line; no CPIM header is named Content-*.
        in_mime |= name
            .get(..8)
            .is_some_and(|start| start.eq_ignore_ascii_case("content-"));
        if in_mime {
            folds_content_type = name.eq_ignore_ascii_case("content-type") && cpim.content_type.is_none();
            if folds_content_type {
                cpim.content_type = Some(value);
            }
        } else {
            cpim.message_header(&mut namespaces, (name, params, value));
        }
    }
    Ok(cpim)
}

impl Cpim {
    fn message_header(&mut self, namespaces: &mut Vec<(String, String)>, header: (String, String, String)) {
        let (name, params, value) = (header.0, header.1, unescape(&header.2));
        // RFC 3862 3.4: `prefix.Name`, the prefix declared by an earlier NS; the
        // latest declaration wins. Liberal: prefixes in any case, and an undeclared
        // `imdn` taken for RFC 5438 6.1's namespace.
        let (prefix, local) = name.split_once('.').unwrap_or(("", &name));
        let declared = namespaces
            .iter()
            .rev()
            .find(|(p, _)| p.eq_ignore_ascii_case(prefix));
        let uri = declared.map(|(_, uri)| uri.as_str());
        let uri = uri.or_else(|| prefix.eq_ignore_ascii_case("imdn").then_some(IMDN_NS));
        let imdn = uri.is_some_and(|uri| uri.eq_ignore_ascii_case(IMDN_NS));
        let core =
            prefix.is_empty() || uri.is_some_and(|uri| CPIM_NS.iter().any(|ns| uri.eq_ignore_ascii_case(ns)));
        match local.to_ascii_lowercase().as_str() {
            "message-id" if imdn && self.imdn_message_id.is_none() => self.imdn_message_id = Some(value),
            // RFC 5438 10: notify-req *(COMMA notify-req), each with optional ;params.
            "disposition-notification" if imdn => {
                for request in value.split(',') {
                    let token = request.split(';').next().unwrap_or_default().trim();
                    if !token.is_empty() {
                        self.disposition_notification.push(token.to_ascii_lowercase());
                    }
                }
            }
            "from" if core && self.from.is_none() => self.from = Some(value),
            "to" if core => self.to.push(value),
            "cc" if core => self.cc.push(value),
            "datetime" if core && self.datetime.is_none() => self.datetime = Some(value),
            "subject" if core && self.subject.is_none() => self.subject = Some(value),
            local => {
                // RFC 3862 4.6: `NS: [ Name-prefix ] "<" URI ">"`.
                let brackets = value.find('<').zip(value.rfind('>')).filter(|(lt, gt)| lt < gt);
                if let Some((lt, gt)) = brackets.filter(|_| local == "ns" && core) {
                    namespaces.push((value[..lt].trim().to_owned(), value[lt + 1..gt].trim().to_owned()));
                }
                let name = if params.is_empty() {
                    name
                } else {
                    format!("{name};{params}")
                };
                self.other_headers.push((name, value));
            }
        }
    }
}

/// RFC 3862 3.6: `Header-name ":" *( ";" Parameter ) SP Header-value`, read
/// liberally: any whitespace around the value. Returns (name, params, raw value).
fn split_header(line: &[u8]) -> Result<(String, String, String), CpimError> {
    let excerpt = || String::from_utf8_lossy(&line[..line.len().min(40)]).into_owned();
    let Some(colon) = memchr(b':', line) else {
        return Err(CpimError::Malformed(format!(
            "header line without ':': {:?}",
            excerpt()
        )));
    };
    let name = String::from_utf8_lossy(&line[..colon]).trim().to_owned();
    if name.is_empty() {
        return Err(CpimError::Malformed(format!(
            "header line with an empty name: {:?}",
            excerpt()
        )));
    }
    let mut rest = &line[colon + 1..];
    let mut params = String::new();
    if rest.first() == Some(&b';') {
        let end = rest
            .iter()
            .position(|b| matches!(b, b' ' | b'\t'))
            .unwrap_or(rest.len());
        params = String::from_utf8_lossy(&rest[1..end]).into_owned();
        rest = &rest[end..];
    }
    let value = String::from_utf8_lossy(rest).trim_matches([' ', '\t']).to_owned();
    Ok((name, params, value))
}

/// The line at `pos` without its LF or CRLF (the last may have neither), and where the next starts.
fn line_at(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(pos..).filter(|rest| !rest.is_empty())?;
    let (line, next) = memchr(b'\n', rest).map_or((rest, buf.len()), |lf| (&rest[..lf], pos + lf + 1));
    Some((line.strip_suffix(b"\r").unwrap_or(line), next))
}

/// How the REST layer classifies a received message (metrics and the `message` event's `class`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageClass {
    Content,
    Imdn,
    IsComposing,
}

/// `content_type` is the MSRP Content-Type (parameters allowed, any case); for
/// message/cpim the class is that of `inner_type`, the encapsulated one.
pub fn classify(content_type: &str, inner_type: Option<&str>) -> MessageClass {
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    let is = |wanted: &str| media_type.eq_ignore_ascii_case(wanted);
    if is("message/cpim") {
        // One level: a CPIM inside a CPIM is content.
        inner_type.map_or(MessageClass::Content, |inner| classify(inner, None))
    } else if is("message/imdn+xml") {
        MessageClass::Imdn // RFC 5438 7.2.1.1
    } else if is("application/im-iscomposing+xml") {
        MessageClass::IsComposing // RFC 3994
    } else {
        MessageClass::Content
    }
}

/// An IMDN notification body (RFC 5438 7.2.1.1, 11.1). The notification and
/// status element names are lower-cased, without a namespace prefix.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Imdn {
    pub message_id: Option<String>,
    pub datetime: Option<String>,
    /// delivery-notification, display-notification or processing-notification (RFC 5438 11.1.6).
    pub kind: Option<String>,
    /// delivered, failed, forbidden, error, displayed, processed, stored, or an extension (11.1.7).
    pub status: Option<String>,
}

/// Reads an IMDN with a forgiving scan of its elements; what it cannot find stays None.
pub fn parse_imdn(xml: &[u8]) -> Imdn {
    const KINDS: [&str; 3] = [
        "delivery-notification",
        "display-notification",
        "processing-notification",
    ];
    let mut imdn = Imdn::default();
    let mut in_status = false;
    for (tag, name, end) in tags(xml) {
        let is = |wanted: &str| name.eq_ignore_ascii_case(wanted.as_bytes());
        let opens = tag != Tag::Close;
        if tag == Tag::Open && is("message-id") && imdn.message_id.is_none() {
            imdn.message_id = text_at(xml, end);
        } else if tag == Tag::Open && is("datetime") && imdn.datetime.is_none() {
            imdn.datetime = text_at(xml, end);
        } else if opens && imdn.kind.is_none() && KINDS.into_iter().any(is) {
            imdn.kind = Some(String::from_utf8_lossy(name).to_ascii_lowercase());
        } else if is("status") {
            in_status = tag == Tag::Open;
        } else if opens && in_status && imdn.status.is_none() {
            // RFC 5438 11.1.7: the status is the name of <status>'s child.
            imdn.status = Some(String::from_utf8_lossy(name).to_ascii_lowercase());
        }
    }
    imdn
}

/// An is-composing body (RFC 3994): `state` (active/idle, lower-cased), `contenttype`, `refresh` seconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct IsComposing {
    pub state: Option<String>,
    pub content_type: Option<String>,
    pub refresh: Option<u32>,
}

/// Reads an is-composing body with the same forgiving scan as [`parse_imdn`].
pub fn parse_is_composing(xml: &[u8]) -> IsComposing {
    let mut composing = IsComposing::default();
    for (_, name, end) in tags(xml).filter(|(tag, _, _)| *tag == Tag::Open) {
        if name.eq_ignore_ascii_case(b"state") && composing.state.is_none() {
            composing.state = text_at(xml, end).map(|state| state.to_ascii_lowercase());
        } else if name.eq_ignore_ascii_case(b"contenttype") && composing.content_type.is_none() {
            composing.content_type = text_at(xml, end);
        } else if name.eq_ignore_ascii_case(b"refresh") && composing.refresh.is_none() {
            composing.refresh = text_at(xml, end).and_then(|refresh| refresh.parse().ok());
        }
    }
    composing
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    Open,
    Empty,
    Close,
}

/// The tags of a small XML document as (kind, local name without prefix, offset
/// after the '>'); comments, CDATA, declarations and processing instructions are
/// stepped over, a '>' inside a quoted attribute value does not end a tag.
fn tags(xml: &[u8]) -> impl Iterator<Item = (Tag, &[u8], usize)> {
    let mut pos = 0;
    std::iter::from_fn(move || loop {
        let lt = pos + memchr(b'<', xml.get(pos..)?)?;
        let rest = &xml[lt..];
        let skip_to = [
            (&b"<!--"[..], &b"-->"[..]),
            (b"<![CDATA[", b"]]>"),
            (b"<!", b">"),
            (b"<?", b">"),
        ]
        .into_iter()
        .find(|(start, _)| rest.starts_with(start));
        if let Some((_, end)) = skip_to {
            pos = memmem::find(rest, end).map_or(xml.len(), |at| lt + at + end.len());
            continue;
        }
        let mut quote = None;
        let gt = rest.iter().position(|&b| match quote {
            Some(q) => {
                quote = quote.filter(|_| b != q);
                false
            }
            None if b == b'"' || b == b'\'' => {
                quote = Some(b);
                false
            }
            None => b == b'>',
        });
        let Some(gt) = gt else {
            pos = xml.len();
            return None;
        };
        pos = lt + gt + 1;
        let (tag, inner) = match rest[1..gt].strip_prefix(b"/") {
            Some(inner) => (Tag::Close, inner),
            None if rest[1..gt].ends_with(b"/") => (Tag::Empty, &rest[1..gt]),
            None => (Tag::Open, &rest[1..gt]),
        };
        let qname = inner
            .split(|b| b.is_ascii_whitespace() || *b == b'/')
            .next()
            .unwrap_or_default();
        let local = qname.rsplit(|&b| b == b':').next().unwrap_or_default();
        if !local.is_empty() {
            return Some((tag, local, pos));
        }
    })
}

/// The character data from `at` to the next tag, trimmed, with XML 1.0 4.6's
/// predefined entities decoded (`&amp;` last); None when empty.
fn text_at(xml: &[u8], at: usize) -> Option<String> {
    let rest = xml.get(at..)?;
    let raw = String::from_utf8_lossy(&rest[..memchr(b'<', rest).unwrap_or(rest.len())]);
    let entities = [
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&quot;", "\""),
        ("&apos;", "'"),
        ("&amp;", "&"),
    ];
    let text = entities
        .into_iter()
        .fold(raw.trim().to_owned(), |text, (entity, c)| text.replace(entity, c));
    (!text.is_empty()).then_some(text)
}
