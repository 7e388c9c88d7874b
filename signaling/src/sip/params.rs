//! Lexing shared by the typed header parsers: quoted strings, top-level list
//! splitting and `;name=value` parameters.
//!
//! ```text
//! generic-param  =  token [ EQUAL gen-value ]
//! gen-value      =  token / host / quoted-string
//! quoted-string  =  SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
//! quoted-pair    =  "\" (%x00-09 / %x0B-0C / %x0E-7F)
//! SEMI = SWS ";" SWS   EQUAL = SWS "=" SWS   COMMA = SWS "," SWS
//! ```
//! (RFC 3261 25.1)

use super::method::is_token_char;
use std::fmt;

/// A header parameter list, in order; a value of `None` is a parameter
/// present without `=` (e.g. `;lr`, `;rport`).
pub type Params = Vec<(String, Option<String>)>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("empty parameter name")]
    EmptyName,
    #[error("parameter name {0:?} is not a token")]
    BadName(String),
    #[error("bad value for parameter {0:?}")]
    BadValue(String),
    #[error("unterminated quoted string")]
    UnterminatedQuote,
}

fn is_lws(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Splits `s` at `sep` where it is outside quoted strings and `<...>`.
/// RFC 3261 7.3.1: a comma inside a quoted display name or a URI does not
/// separate header field values.
pub fn split_top_level(s: &str, sep: char) -> Result<Vec<&str>, ParamError> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quote = false;
    let mut in_angle = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if in_quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quote = false;
            }
            continue;
        }
        match c {
            '"' if !in_angle => in_quote = true,
            '<' => in_angle = true,
            '>' => in_angle = false,
            c if c == sep && !in_angle => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if in_quote {
        return Err(ParamError::UnterminatedQuote);
    }
    parts.push(&s[start..]);
    Ok(parts)
}

/// Reads a quoted string at the start of `s` (which begins with `"`);
/// returns the unescaped content and the rest after the closing quote.
pub fn read_quoted(s: &str) -> Result<(String, &str), ParamError> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    if !matches!(chars.next(), Some((_, '"'))) {
        return Err(ParamError::UnterminatedQuote);
    }
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                // RFC 3261 25.1: quoted-pair excludes CR and LF.
                Some((_, e)) if e != '\r' && e != '\n' => out.push(e),
                _ => return Err(ParamError::UnterminatedQuote),
            },
            '"' => return Ok((out, &s[i + 1..])),
            c => out.push(c),
        }
    }
    Err(ParamError::UnterminatedQuote)
}

/// Writes `s` as a quoted-string, escaping what qdtext cannot hold.
pub fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' | '\\' => write!(f, "\\{c}")?,
            // A CR or LF cannot appear even as a quoted-pair: strict on output.
            '\r' | '\n' => f.write_str(" ")?,
            c if (c as u32) < 0x20 && c != '\t' || c == '\x7f' => write!(f, "\\{c}")?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

/// A value that can be written bare: token or host (IPv6 references, ports).
fn is_bare_value(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|b| is_token_char(b) || b":[]".contains(&b))
}

/// Parses `*( SEMI generic-param )`. `s` is what follows the element
/// (empty, or starting with optional LWS then `;`).
pub fn parse_params(s: &str) -> Result<Params, ParamError> {
    let mut out = Vec::new();
    let mut rest = s.trim_start_matches(is_lws);
    while !rest.is_empty() {
        rest = match rest.strip_prefix(';') {
            Some(r) => r.trim_start_matches(is_lws),
            None => return Err(ParamError::BadName(rest.to_string())),
        };
        let name_end = rest
            .find(|c: char| !(c.is_ascii() && is_token_char(c as u8)))
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        if name.is_empty() {
            return Err(ParamError::EmptyName);
        }
        rest = rest[name_end..].trim_start_matches(is_lws);
        let value = if let Some(r) = rest.strip_prefix('=') {
            let r = r.trim_start_matches(is_lws);
            if r.starts_with('"') {
                let (v, after) = read_quoted(r)?;
                rest = after;
                Some(v)
            } else {
                let end = r.find(|c: char| c == ';' || is_lws(c)).unwrap_or(r.len());
                let v = &r[..end];
                if !is_bare_value(v) {
                    return Err(ParamError::BadValue(name.to_string()));
                }
                rest = &r[end..];
                Some(v.to_string())
            }
        } else {
            None
        };
        rest = rest.trim_start_matches(is_lws);
        out.push((name.to_string(), value));
    }
    Ok(out)
}

/// Writes `;name[=value]` for each parameter, quoting values that are not a
/// token or host.
pub fn write_params(f: &mut fmt::Formatter<'_>, params: &[(String, Option<String>)]) -> fmt::Result {
    for (name, value) in params {
        write!(f, ";{name}")?;
        if let Some(v) = value {
            f.write_str("=")?;
            if is_bare_value(v) {
                f.write_str(v)?;
            } else {
                write_quoted(f, v)?;
            }
        }
    }
    Ok(())
}

/// The value of the first parameter named `name` (case-insensitive, RFC 3261 7.3.1).
pub fn find<'a>(params: &'a [(String, Option<String>)], name: &str) -> Option<&'a Option<String>> {
    params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_with_lws_and_quotes() {
        let p = parse_params(" ; newparam =\t newvalue ;  secondparam ; q = 0.33;x=\"a;b\"").unwrap();
        assert_eq!(
            p,
            vec![
                ("newparam".into(), Some("newvalue".into())),
                ("secondparam".into(), None),
                ("q".into(), Some("0.33".into())),
                ("x".into(), Some("a;b".into())),
            ]
        );
        assert_eq!(parse_params(";;"), Err(ParamError::EmptyName));
    }

    #[test]
    fn split_respects_quotes_and_angles() {
        let parts = split_top_level("\"Doe, J\" <sip:a@b;x=1,2>, <sip:c@d>", ',').unwrap();
        assert_eq!(parts.len(), 2);
        assert!(split_top_level("\"open", ',').is_err());
    }
}
