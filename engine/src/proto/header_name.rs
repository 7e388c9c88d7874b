//! The eight header names with meaning to an endpoint (RFC 4975 7.1, 9),
//! recognised at the start of a header line without scanning the name.
//!
//! Header names compare case-insensitively (RFC 4975 9 inherits it from the
//! RFC 5234 literal strings). A line starts with a known name and its colon
//! when its first 16 octets, with the case bit folded on the letters of that
//! name only, equal the name in lower case and a colon: one masked 128-bit
//! compare per candidate, candidates picked by the first letter.

/// A header with meaning to an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Known {
    ToPath,
    FromPath,
    MessageId,
    ByteRange,
    SuccessReport,
    FailureReport,
    Status,
    ContentType,
}

/// A name and its colon as a masked 128-bit pattern (the longest,
/// `Success-Report:`, has 15 octets).
struct Pattern {
    /// 0xFF over the name and its colon.
    mask: u128,
    /// 0x20 over the letters: setting it folds upper to lower case, and only
    /// an upper- or lower-case form of that letter folds to it.
    fold: u128,
    /// The name in lower case, then the colon.
    want: u128,
}

const fn pattern(name: &str) -> Pattern {
    let name = name.as_bytes();
    assert!(name.len() < 16, "the name and its colon fit in 16 octets");
    let (mut mask, mut fold, mut want) = (0u128, 0u128, 0u128);
    let mut i = 0;
    while i <= name.len() {
        let b = if i == name.len() { b':' } else { name[i] };
        mask |= 0xff << (8 * i);
        if b.is_ascii_alphabetic() {
            fold |= 0x20 << (8 * i);
            want |= ((b | 0x20) as u128) << (8 * i);
        } else {
            want |= (b as u128) << (8 * i);
        }
        i += 1;
    }
    Pattern { mask, fold, want }
}

const TO_PATH: Pattern = pattern("To-Path");
const FROM_PATH: Pattern = pattern("From-Path");
const MESSAGE_ID: Pattern = pattern("Message-ID");
const BYTE_RANGE: Pattern = pattern("Byte-Range");
const SUCCESS_REPORT: Pattern = pattern("Success-Report");
const FAILURE_REPORT: Pattern = pattern("Failure-Report");
const STATUS: Pattern = pattern("Status");
const CONTENT_TYPE: Pattern = pattern("Content-Type");

impl Known {
    /// The known header whose name and colon begin `line`, if any. Such a
    /// name is a valid `hname` (RFC 4975 9) and that colon is the line's
    /// first.
    #[inline]
    pub(crate) fn at_start(line: &[u8]) -> Option<Known> {
        let word = match line.get(..16) {
            Some(first) => u128::from_le_bytes(first.try_into().ok()?),
            None => {
                let mut padded = [0u8; 16];
                padded[..line.len()].copy_from_slice(line);
                u128::from_le_bytes(padded)
            }
        };
        let is = |p: &Pattern| (word & p.mask) | p.fold == p.want;
        let first = *line.first()?;
        match first | 0x20 {
            b't' if is(&TO_PATH) => Some(Known::ToPath),
            b'f' if is(&FROM_PATH) => Some(Known::FromPath),
            b'f' if is(&FAILURE_REPORT) => Some(Known::FailureReport),
            b'm' if is(&MESSAGE_ID) => Some(Known::MessageId),
            b'b' if is(&BYTE_RANGE) => Some(Known::ByteRange),
            b's' if is(&SUCCESS_REPORT) => Some(Known::SuccessReport),
            b's' if is(&STATUS) => Some(Known::Status),
            b'c' if is(&CONTENT_TYPE) => Some(Known::ContentType),
            _ => None,
        }
    }

    /// The name as RFC 4975 writes it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Known::ToPath => "To-Path",
            Known::FromPath => "From-Path",
            Known::MessageId => "Message-ID",
            Known::ByteRange => "Byte-Range",
            Known::SuccessReport => "Success-Report",
            Known::FailureReport => "Failure-Report",
            Known::Status => "Status",
            Known::ContentType => "Content-Type",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Known; 8] = [
        Known::ToPath,
        Known::FromPath,
        Known::MessageId,
        Known::ByteRange,
        Known::SuccessReport,
        Known::FailureReport,
        Known::Status,
        Known::ContentType,
    ];

    #[test]
    fn matches_names_in_any_case_and_only_them() {
        for known in ALL {
            let name = known.name();
            for spelled in [
                name.to_owned(),
                name.to_ascii_lowercase(),
                name.to_ascii_uppercase(),
            ] {
                for rest in ["", " x", ": value of some length"] {
                    let line = format!("{spelled}:{rest}");
                    assert_eq!(Known::at_start(line.as_bytes()), Some(known), "{line}");
                }
                // Without its colon right after, the name is another one.
                for other in [
                    spelled.clone(),
                    format!("{spelled}x: v"),
                    format!("{spelled} : v"),
                ] {
                    assert_eq!(Known::at_start(other.as_bytes()), None, "{other}");
                }
            }
            // Octets that differ from a letter only in the case bit are no letters.
            let mut odd = format!("{name}: v").into_bytes();
            odd[1] ^= 0x40;
            assert_eq!(Known::at_start(&odd), None, "{odd:?}");
        }
        for other in ["", "T", "To_Path: x", "To-Pat: x", "Status-X: y", "X-To-Path: x"] {
            assert_eq!(Known::at_start(other.as_bytes()), None, "{other}");
        }
    }

    #[test]
    fn agrees_with_a_case_insensitive_compare() {
        // Every octet in every position of a name: a match only for its two cases.
        for known in ALL {
            let line = format!("{}: v", known.name()).into_bytes();
            for at in 0..known.name().len() + 1 {
                for b in 0..=255u8 {
                    let mut l = line.clone();
                    l[at] = b;
                    let name_ok = at < known.name().len()
                        && l[..known.name().len()].eq_ignore_ascii_case(known.name().as_bytes());
                    let want = (name_ok || l == line).then_some(known);
                    assert_eq!(Known::at_start(&l), want, "{known:?} octet {b:#x} at {at}");
                }
            }
        }
    }
}
