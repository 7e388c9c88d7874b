//! Typed header values of RFC 4975 9: Byte-Range, Success-Report,
//! Failure-Report, Status and the Content-Type media type.

use core::fmt;

use super::chars;
use super::uri::is_token_char;

/// `Byte-Range: range-start "-" range-end "/" total` (RFC 4975 7.1.1, 9).
///
/// Positions are 1-based and inclusive; `end` and `total` are `None` for `*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// First octet of this chunk in the message, counting from 1.
    pub start: u64,
    /// Last octet of this chunk, or `None` for an interruptible chunk (`*`).
    pub end: Option<u64>,
    /// Size of the whole message, or `None` when not known yet (`*`).
    pub total: Option<u64>,
}

fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

impl ByteRange {
    /// Parses and checks the range (RFC 4975 7.1.1): start >= 1, end >= start - 1
    /// (an empty chunk reads `1-0/0`), end <= total. Values beyond u64 are
    /// refused before anything is allocated for them (RFC 4975 14.5).
    #[inline]
    pub fn parse(s: &[u8]) -> Result<ByteRange, &'static str> {
        match Self::parse_plain(s) {
            Some(range) if range.check().is_ok() => Ok(range),
            // Whatever is wrong, the field by field reading names it.
            _ => Self::parse_fields(s),
        }
    }

    /// One pass over `digits "-" (digits / "*") "/" (digits / "*")`, the
    /// shape every sender writes; `None` for anything else, including
    /// values beyond u64.
    #[inline]
    fn parse_plain(s: &[u8]) -> Option<ByteRange> {
        /// Digits from `at` up to the next non-digit: (value, end).
        #[inline]
        fn number(s: &[u8], at: usize) -> Option<(u64, usize)> {
            let (mut value, mut end) = (0u64, at);
            while let Some(d) = s.get(end).and_then(|b| b.checked_sub(b'0')).filter(|d| *d <= 9) {
                value = value.checked_mul(10)?.checked_add(u64::from(d))?;
                end += 1;
            }
            (end > at).then_some((value, end))
        }
        /// Digits or `*` from `at`: (value, end).
        #[inline]
        fn bound(s: &[u8], at: usize) -> Option<(Option<u64>, usize)> {
            if s.get(at) == Some(&b'*') {
                return Some((None, at + 1));
            }
            number(s, at).map(|(value, end)| (Some(value), end))
        }
        let (start, at) = number(s, 0)?;
        if s.get(at) != Some(&b'-') {
            return None;
        }
        let (end, at) = bound(s, at + 1)?;
        if s.get(at) != Some(&b'/') {
            return None;
        }
        let (total, at) = bound(s, at + 1)?;
        (at == s.len()).then_some(ByteRange { start, end, total })
    }

    #[cold]
    fn parse_fields(s: &[u8]) -> Result<ByteRange, &'static str> {
        let dash = memchr::memchr(b'-', s).ok_or("no \"-\" between start and end")?;
        let slash = memchr::memchr(b'/', s).ok_or("no \"/\" before the total")?;
        if slash < dash {
            return Err("\"/\" before \"-\"");
        }
        let start = parse_u64(&s[..dash]).ok_or("range-start is not a number")?;
        let end = match &s[dash + 1..slash] {
            b"*" => None,
            digits => Some(parse_u64(digits).ok_or("range-end is not a number or \"*\"")?),
        };
        let total = match &s[slash + 1..] {
            b"*" => None,
            digits => Some(parse_u64(digits).ok_or("total is not a number or \"*\"")?),
        };
        let range = ByteRange { start, end, total };
        range.check()?;
        Ok(range)
    }

    fn check(&self) -> Result<(), &'static str> {
        if self.start == 0 {
            return Err("range-start is 0 (octets count from 1)");
        }
        if let Some(end) = self.end {
            if end < self.start - 1 {
                return Err("range-end is before range-start");
            }
            if self.total.is_some_and(|total| end > total) {
                return Err("range-end is beyond the total");
            }
        }
        if self.total.is_some_and(|total| self.start - 1 > total) {
            return Err("range-start is beyond the total");
        }
        Ok(())
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-", self.start)?;
        match self.end {
            Some(end) => write!(f, "{end}/")?,
            None => f.write_str("*/")?,
        }
        match self.total {
            Some(total) => write!(f, "{total}"),
            None => f.write_str("*"),
        }
    }
}

/// `Success-Report` (RFC 4975 7.1.1); absent means `No`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SuccessReport {
    Yes,
    #[default]
    No,
}

impl SuccessReport {
    /// Values compare case-insensitively (RFC 4975 9, quoted strings).
    pub fn parse(s: &[u8]) -> Option<SuccessReport> {
        if s.eq_ignore_ascii_case(b"yes") {
            Some(SuccessReport::Yes)
        } else if s.eq_ignore_ascii_case(b"no") {
            Some(SuccessReport::No)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SuccessReport::Yes => "yes",
            SuccessReport::No => "no",
        }
    }
}

/// `Failure-Report` (RFC 4975 7.1.1, 7.2); absent means `Yes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FailureReport {
    #[default]
    Yes,
    No,
    Partial,
}

impl FailureReport {
    /// Values compare case-insensitively (RFC 4975 9, quoted strings).
    pub fn parse(s: &[u8]) -> Option<FailureReport> {
        if s.eq_ignore_ascii_case(b"yes") {
            Some(FailureReport::Yes)
        } else if s.eq_ignore_ascii_case(b"no") {
            Some(FailureReport::No)
        } else if s.eq_ignore_ascii_case(b"partial") {
            Some(FailureReport::Partial)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FailureReport::Yes => "yes",
            FailureReport::No => "no",
            FailureReport::Partial => "partial",
        }
    }
}

/// The code part of `Status: namespace SP status-code [SP comment]` (RFC 4975 7.1.2);
/// the comment stays in the frame head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportStatus {
    /// `000` is the only namespace defined: MSRP response codes.
    pub namespace: u16,
    pub code: u16,
}

/// Reads exactly three digits.
pub(crate) fn three_digits(s: &[u8]) -> Option<u16> {
    match s {
        [a, b, c] if s.iter().all(u8::is_ascii_digit) => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

impl ReportStatus {
    /// Returns the status and the byte offset of its comment, if any.
    pub(crate) fn parse(s: &[u8]) -> Option<(ReportStatus, Option<usize>)> {
        let namespace = three_digits(s.get(..3)?)?;
        if s.get(3) != Some(&b' ') {
            return None;
        }
        let code = three_digits(s.get(4..7)?)?;
        let comment = match s.get(7) {
            None => None,
            Some(b' ') => Some(8),
            Some(_) => return None,
        };
        Some((ReportStatus { namespace, code }, comment))
    }
}

/// Checks `media-type = type "/" subtype *( ";" gen-param )` with
/// `gen-param = pname [ "=" pval ]`, `pval = token / quoted-string` (RFC 4975
/// 9), with the whitespace MIME stacks put around `;` (`text/plain;
/// charset=utf-8`: RFC 2045 5.1 parameters, whose header grammar allows it):
/// the meaning is clear, so both wire profiles take it.
#[inline]
pub(crate) fn is_media_type(s: &[u8]) -> bool {
    // The common case, `type "/" subtype` without parameters: "/", ";" and
    // "=" are no token octets, so the first non-token octet is the slash.
    let slash = s.iter().position(|&b| !is_token_char(b)).unwrap_or(s.len());
    if slash > 0
        && s.get(slash) == Some(&b'/')
        && slash + 1 < s.len()
        && chars::all(&s[slash + 1..], chars::TOKEN)
    {
        return true;
    }
    is_media_type_with_params(s)
}

/// [`is_media_type`] for any value, parameters included.
#[cold]
fn is_media_type_with_params(s: &[u8]) -> bool {
    fn skip_space(s: &[u8]) -> &[u8] {
        let n = s.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
        &s[n..]
    }
    let token_end = |s: &[u8]| {
        s.iter()
            .position(|&b| !is_token_char(b) || b == b'/' || b == b';' || b == b'=')
            .unwrap_or(s.len())
    };
    let ty = token_end(s);
    if ty == 0 || s.get(ty) != Some(&b'/') {
        return false;
    }
    let rest = &s[ty + 1..];
    let sub = token_end(rest);
    if sub == 0 {
        return false;
    }
    let mut rest = &rest[sub..];
    while let Some((&b';', after)) = skip_space(rest).split_first() {
        let after = skip_space(after);
        let name = token_end(after);
        if name == 0 {
            return false;
        }
        rest = &after[name..];
        if let Some((&b'=', value)) = rest.split_first() {
            if value.first() == Some(&b'"') {
                let Some(close) = quoted_string_len(value) else {
                    return false;
                };
                rest = &value[close..];
            } else {
                let v = token_end(value);
                if v == 0 {
                    return false;
                }
                rest = &value[v..];
            }
        }
    }
    rest.is_empty()
}

/// Length of a quoted-string at the start of `s` (opening quote included), with
/// backslash escapes.
fn quoted_string_len(s: &[u8]) -> Option<usize> {
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges() {
        let r = ByteRange::parse(b"1-*/8").unwrap();
        assert_eq!((r.start, r.end, r.total), (1, None, Some(8)));
        assert_eq!(ByteRange::parse(b"1-0/0").map(|r| r.end), Ok(Some(0)));
        assert!(ByteRange::parse(b"1-*/*").is_ok());
        for bad in [
            "a-5/5",
            "0-4/5",
            "10-5/20",
            "1-30/25",
            "*-5/5",
            "1-5",
            "1-5/",
            "99999999999999999999-1/*",
            "7-5/5",
        ] {
            assert!(ByteRange::parse(bad.as_bytes()).is_err(), "{bad}");
        }
        assert_eq!(
            ByteRange::parse(b"2049-4096/5000").unwrap().to_string(),
            "2049-4096/5000"
        );
        assert_eq!(ByteRange::parse(b"1-*/*").unwrap().to_string(), "1-*/*");
    }

    #[test]
    fn one_pass_reading_agrees_with_the_field_by_field_one() {
        const ALPHABET: &[u8] = b"019-/*x";
        let mut s = Vec::new();
        for len in 0..=7u32 {
            for mut n in 0..ALPHABET.len().pow(len) {
                s.clear();
                for _ in 0..len {
                    s.push(ALPHABET[n % ALPHABET.len()]);
                    n /= ALPHABET.len();
                }
                assert_eq!(ByteRange::parse(&s), ByteRange::parse_fields(&s), "{s:?}");
            }
        }
        for edge in [
            "18446744073709551615-1/*",
            "18446744073709551616-1/*",
            "1-18446744073709551616/*",
        ] {
            let s = edge.as_bytes();
            assert_eq!(ByteRange::parse(s), ByteRange::parse_fields(s), "{edge}");
        }
    }

    #[test]
    fn media_types() {
        for ok in [
            "text/plain",
            "message/cpim",
            "application/xhtml+xml",
            "text/plain;charset=UTF-8",
            "text/plain; charset=utf-8",
            "text/plain ;\tcharset=utf-8; format=flowed",
            "a/b;x;y=\"q;\\\"r\"",
        ] {
            assert!(is_media_type(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "text",
            "text/",
            "/plain",
            "text/plain;",
            "text/plain; ",
            "text/plain charset=x",
            "text/plain; charset =x",
            "text/plain;a=",
            "text/pl ain",
            "a/b;c=\"open",
        ] {
            assert!(!is_media_type(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn media_type_shortcut_agrees_with_the_full_reading() {
        const ALPHABET: &[u8] = b"a/;= \"\\\x01";
        let mut s = Vec::new();
        for len in 0..=6u32 {
            for mut n in 0..ALPHABET.len().pow(len) {
                s.clear();
                for _ in 0..len {
                    s.push(ALPHABET[n % ALPHABET.len()]);
                    n /= ALPHABET.len();
                }
                assert_eq!(is_media_type(&s), is_media_type_with_params(&s), "{s:?}");
            }
        }
    }

    #[test]
    fn status_header() {
        assert_eq!(
            ReportStatus::parse(b"000 200 OK"),
            Some((
                ReportStatus {
                    namespace: 0,
                    code: 200
                },
                Some(8)
            ))
        );
        assert_eq!(ReportStatus::parse(b"000 413").map(|s| s.1), Some(None));
        assert!(ReportStatus::parse(b"200 OK").is_none());
        assert!(ReportStatus::parse(b"000 20").is_none());
        assert!(ReportStatus::parse(b"000 200x").is_none());
    }
}
