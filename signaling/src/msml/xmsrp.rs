//! The URIs of a transfer object: `src` (a local file) and `dest`
//! (`xmsrp://` or `file://`).
//!
//! ```text
//! dest  = "xmsrp://?" param *( (";" / "&") param )
//! param = ("offerer" / "answerer" / "file") "=" pct-encoded-value
//! src   = "file://" ["localhost"] abs-path / "file:" abs-path / abs-path
//! ```
//!
//! `xmsrp` is Dialogic's (CONTROL-SURFACES.md 2.3): deliver over a new SIP
//! session with an MSRP media stream, `offerer` our identity as UAC,
//! `answerer` the receiving UAS, `file` the name announced in
//! `a=file-selector` (RFC 5547). Values are percent-decoded, so a SIP URI
//! with parameters writes its `;` as `%3B`. `offerer` and `answerer` are both
//! required. `file` may be left out; the object's `src` path is then used.
//! Whether a file exists is the caller's question.
//!
//! Errors are 410 (RFC 5707 11, invalid attribute value), their descriptions
//! naming the attribute.

use std::path::{Path, PathBuf};

use super::model::{response, Dest, MsmlError, XmsrpDest};

fn invalid(description: String) -> MsmlError {
    MsmlError::new(response::INVALID_ATTRIBUTE_VALUE, description)
}

/// Reads a `dest`. `src` is the object's source, used for the announced name
/// when an `xmsrp` dest has no `file=`.
pub fn parse_dest(value: &str, src: Option<&Path>) -> Result<Dest, MsmlError> {
    match scheme(value) {
        Some((s, _)) if s.eq_ignore_ascii_case("xmsrp") => XmsrpDest::parse(value, src).map(Dest::Xmsrp),
        Some((s, _)) if s.eq_ignore_ascii_case("file") => parse_file_uri(value, "dest").map(Dest::File),
        Some((s, _)) => Err(invalid(format!(
            "dest scheme '{s}' is not supported; use xmsrp:// or file://"
        ))),
        None => Err(invalid(format!(
            "dest '{value}' is not a URI; use xmsrp:// or file://"
        ))),
    }
}

/// Reads a `src`: a `file:` URI or a bare absolute path, both
/// percent-decoded.
pub fn parse_src(value: &str) -> Result<PathBuf, MsmlError> {
    match scheme(value) {
        Some((s, _)) if s.eq_ignore_ascii_case("file") => parse_file_uri(value, "src"),
        Some((s, _)) => Err(invalid(format!(
            "src scheme '{s}' is not supported; use file:// or an absolute path"
        ))),
        None if value.starts_with('/') => decoded_path(value, "src"),
        None => Err(invalid(format!(
            "src '{value}' is not an absolute path or a file:// URI"
        ))),
    }
}

/// A `file:` URI (RFC 8089) naming a path on this machine.
pub fn parse_file_uri(value: &str, attribute: &str) -> Result<PathBuf, MsmlError> {
    let Some(rest) = after_scheme(value, "file") else {
        return Err(invalid(format!("{attribute} '{value}' is not a file: URI")));
    };
    if rest.contains(['?', '#']) {
        return Err(invalid(format!("{attribute} '{value}' has a query or fragment")));
    }
    let path = match rest.strip_prefix("//") {
        Some(after) => {
            let (host, path) = match after.find('/') {
                Some(i) => after.split_at(i),
                None => (after, ""),
            };
            if !host.is_empty() && !host.eq_ignore_ascii_case("localhost") {
                return Err(invalid(format!(
                    "{attribute} host '{host}' is not this machine; use file:///path"
                )));
            }
            path
        }
        None => rest,
    };
    if !path.starts_with('/') {
        return Err(invalid(format!("{attribute} '{value}' is not an absolute path")));
    }
    decoded_path(path, attribute)
}

fn decoded_path(path: &str, attribute: &str) -> Result<PathBuf, MsmlError> {
    let decoded = percent_decode(path).map_err(|why| invalid(format!("{attribute} {why}")))?;
    if decoded.contains('\0') {
        return Err(invalid(format!("{attribute} path holds a NUL")));
    }
    Ok(PathBuf::from(decoded))
}

impl XmsrpDest {
    /// Reads `xmsrp://?offerer=…;answerer=…[;file=…]`.
    pub fn parse(value: &str, src: Option<&Path>) -> Result<XmsrpDest, MsmlError> {
        let Some(after) = after_scheme(value, "xmsrp").and_then(|r| r.strip_prefix("//")) else {
            return Err(invalid(format!("dest '{value}' does not start xmsrp://")));
        };
        let Some((authority, query)) = after.split_once('?') else {
            return Err(invalid(
                "xmsrp dest has no parameters; expected xmsrp://?offerer=…;answerer=…;file=…".to_owned(),
            ));
        };
        if !authority.is_empty() {
            return Err(invalid(format!(
                "xmsrp dest names '{authority}' before '?'; expected xmsrp://?offerer=…"
            )));
        }
        let (mut offerer, mut answerer, mut file) = (None, None, None);
        for param in query.split([';', '&']).filter(|p| !p.is_empty()) {
            let Some((key, raw)) = param.split_once('=') else {
                return Err(invalid(format!("xmsrp dest parameter '{param}' has no value")));
            };
            let slot = match key.to_ascii_lowercase().as_str() {
                "offerer" => &mut offerer,
                "answerer" => &mut answerer,
                "file" => &mut file,
                _ => {
                    return Err(invalid(format!(
                        "xmsrp dest parameter '{key}' is unknown (offerer, answerer, file)"
                    )))
                }
            };
            if slot.is_some() {
                return Err(invalid(format!("xmsrp dest repeats '{key}'")));
            }
            let decoded = percent_decode(raw).map_err(|why| invalid(format!("xmsrp dest {key} {why}")))?;
            *slot = Some(decoded);
        }
        let offerer = sip_uri(offerer, "offerer")?;
        let answerer = sip_uri(answerer, "answerer")?;
        let file = match (file, src) {
            (Some(f), _) => f,
            (None, Some(src)) => src.to_string_lossy().into_owned(),
            (None, None) => {
                return Err(invalid(
                    "xmsrp dest has no file= and there is no src to name it after".to_owned(),
                ))
            }
        };
        if file.rsplit('/').next().is_none_or(str::is_empty) {
            return Err(invalid(format!(
                "xmsrp dest file '{file}' does not end in a file name"
            )));
        }
        if file.chars().any(char::is_control) {
            return Err(invalid("xmsrp dest file holds a control character".to_owned()));
        }
        Ok(XmsrpDest {
            offerer,
            answerer,
            file,
        })
    }

    /// The name for `a=file-selector:name:` — the last path segment of
    /// `file`, as RFC 5547 section 6 puts no directory in a file name.
    pub fn selector_name(&self) -> String {
        self.file.rsplit('/').next().unwrap_or_default().to_owned()
    }
}

/// `offerer` / `answerer`, with or without its `sip:` or `sips:` scheme,
/// as a `sip:` (or `sips:`) URI.
fn sip_uri(value: Option<String>, key: &str) -> Result<String, MsmlError> {
    let Some(value) = value else {
        return Err(invalid(format!("xmsrp dest needs {key}=")));
    };
    if value.is_empty() {
        return Err(invalid(format!("xmsrp dest {key} is empty")));
    }
    if value
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'))
    {
        return Err(invalid(format!("xmsrp dest {key} '{value}' is not a SIP URI")));
    }
    let (scheme, rest) = match scheme(&value) {
        Some((s, rest)) if s.eq_ignore_ascii_case("sip") || s.eq_ignore_ascii_case("sips") => {
            (s.to_ascii_lowercase(), rest)
        }
        // `host:5060` or `user@host:5060` has no scheme.
        Some((s, rest)) if !s.contains('@') && !rest.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(invalid(format!(
                "xmsrp dest {key} scheme '{s}' is not supported; use a sip: URI"
            )))
        }
        _ => ("sip".to_owned(), value.as_str()),
    };
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    if host.is_empty() || host.starts_with([':', ';', '?']) {
        return Err(invalid(format!("xmsrp dest {key} '{value}' has no host")));
    }
    Ok(format!("{scheme}:{rest}"))
}

/// The URI scheme (RFC 3986 3.1) and what follows its `:`, if `value` has
/// one.
fn scheme(value: &str) -> Option<(&str, &str)> {
    let (s, rest) = value.split_once(':')?;
    let mut bytes = s.bytes();
    let first = bytes.next()?;
    let scheme_char = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.');
    (first.is_ascii_alphabetic() && bytes.all(scheme_char)).then_some((s, rest))
}

/// What follows `want:` (compared without case) in `value`.
fn after_scheme<'v>(value: &'v str, want: &str) -> Option<&'v str> {
    scheme(value).and_then(|(s, rest)| s.eq_ignore_ascii_case(want).then_some(rest))
}

/// RFC 3986 2.1 percent-decoding; the result must be UTF-8.
fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| {
                let h = std::str::from_utf8(h).ok()?;
                u8::from_str_radix(h, 16).ok()
            });
            let Some(b) = hex else {
                return Err(format!("'{s}' has a bad percent-escape"));
            };
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("'{s}' does not decode to UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xmsrp(v: &str) -> Result<XmsrpDest, MsmlError> {
        match parse_dest(v, Some(Path::new("/rec/a.amr")))? {
            Dest::Xmsrp(d) => Ok(d),
            Dest::File(p) => panic!("file dest {p:?}"),
        }
    }

    #[test]
    fn xmsrp_params_any_order_and_separator() {
        let d = xmsrp("xmsrp://?file=/x/y/REC%201.amr&answerer=msml@192.0.2.25;offerer=SIPS:ms@h").unwrap();
        assert_eq!(d.offerer, "sips:ms@h");
        assert_eq!(d.answerer, "sip:msml@192.0.2.25");
        assert_eq!(d.file, "/x/y/REC 1.amr");
        assert_eq!(d.selector_name(), "REC 1.amr");
        let d = xmsrp("xmsrp://?offerer=h.example.com:5060;answerer=sip:a@b%3Btransport=tcp").unwrap();
        assert_eq!(d.offerer, "sip:h.example.com:5060");
        assert_eq!(d.answerer, "sip:a@b;transport=tcp");
        assert_eq!(d.file, "/rec/a.amr");
        assert_eq!(d.selector_name(), "a.amr");
    }

    #[test]
    fn xmsrp_refusals() {
        for (bad, needle) in [
            ("xmsrp://?offerer=sip:a@b", "needs answerer="),
            ("xmsrp://?answerer=sip:a@b", "needs offerer="),
            ("xmsrp://host?offerer=a@b;answerer=c@d", "before '?'"),
            ("xmsrp:?offerer=a@b;answerer=c@d", "xmsrp://"),
            ("xmsrp://", "no parameters"),
            ("xmsrp://?offerer=a@b;answerer=c@d;x=1", "'x' is unknown"),
            ("xmsrp://?offerer=a@b;offerer=a@b;answerer=c@d", "repeats"),
            ("xmsrp://?offerer=a@b;answerer", "no value"),
            ("xmsrp://?offerer=a@b;answerer=tel:+123", "scheme 'tel'"),
            ("xmsrp://?offerer=a@b;answerer=sip:", "no host"),
            ("xmsrp://?offerer=a@b;answerer=c@", "no host"),
            ("xmsrp://?offerer=a%zz;answerer=c@d", "percent-escape"),
            ("xmsrp://?offerer=a%ff;answerer=c@d", "UTF-8"),
            ("xmsrp://?offerer=a%20b;answerer=c@d", "not a SIP URI"),
            ("xmsrp://?offerer=a@b;answerer=c@d;file=/dir/", "file name"),
            ("xmsrp://?offerer=a@b;answerer=c@d;file=a%0d%0ab", "control"),
        ] {
            let e = xmsrp(bad).unwrap_err();
            assert_eq!(e.response, 410, "{bad}");
            assert!(e.description.contains(needle), "{bad}: {}", e.description);
        }
        let e = parse_dest("xmsrp://?offerer=a@b;answerer=c@d", None).unwrap_err();
        assert!(e.description.contains("no file="), "{}", e.description);
    }

    #[test]
    fn file_uris() {
        let f = |v| parse_dest(v, None);
        assert_eq!(f("file:///a/b.amr"), Ok(Dest::File("/a/b.amr".into())));
        assert_eq!(f("FILE://localhost/a/b"), Ok(Dest::File("/a/b".into())));
        assert_eq!(f("file:/a/b%20c"), Ok(Dest::File("/a/b c".into())));
        let e = f("http://x/y").unwrap_err();
        assert_eq!(e.response, 410);
        assert_eq!(
            e.description,
            "dest scheme 'http' is not supported; use xmsrp:// or file://"
        );
        for (bad, needle) in [
            ("file://other/a", "not this machine"),
            ("file://", "not an absolute path"),
            ("file:a/b", "not an absolute path"),
            ("file:///a?b", "query"),
            ("file:///a%00", "NUL"),
            ("a/b", "not a URI"),
            ("/a/b", "not a URI"),
        ] {
            let e = f(bad).unwrap_err();
            assert!(e.description.contains(needle), "{bad}: {}", e.description);
        }
    }

    #[test]
    fn src_forms() {
        assert_eq!(parse_src("file:///t/x.amr"), Ok("/t/x.amr".into()));
        assert_eq!(parse_src("/t/x.amr"), Ok("/t/x.amr".into()));
        assert!(parse_src("x.amr").unwrap_err().description.contains("absolute"));
        assert!(parse_src("http://h/x")
            .unwrap_err()
            .description
            .contains("scheme 'http'"));
    }
}
