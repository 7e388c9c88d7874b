//! The names of spool files. Session-ids may hold `-`, `/` and `_` (RFC 4975
//! 9: `session-id = 1*( unreserved / "+" / "=" / "/" )`) and Message-IDs `-`
//! (`ident`), so joining them as they are lets two sessions' messages name
//! the same file. Each part is escaped so that it holds only letters, digits
//! and `_XX` escapes, never `-`: `ESCAPED-SESSION-ID-ESCAPED-MESSAGE-ID` is
//! one name for one pair, and the pair can be read back from it.

/// The final name of a complete message's file.
pub(crate) fn spool_name(session_id: &str, message_id: &str) -> String {
    let mut name = String::with_capacity(session_id.len() + message_id.len() + 8);
    escape_into(&mut name, session_id);
    name.push('-');
    escape_into(&mut name, message_id);
    name
}

/// The temporary name while the message is being written: hidden, and
/// never a final name (those start with a letter, a digit or `_`).
pub(crate) fn part_name(session_id: &str, message_id: &str) -> String {
    format!(".{}.part", spool_name(session_id, message_id))
}

/// The session-id and Message-ID of a temporary name.
pub(crate) fn parse_part_name(name: &str) -> Option<(String, String)> {
    let name = name.strip_prefix('.')?.strip_suffix(".part")?;
    let (session, message) = name.split_once('-')?;
    Some((unescape(session)?, unescape(message)?))
}

fn escape_into(out: &mut String, part: &str) {
    for byte in part.bytes() {
        if byte.is_ascii_alphanumeric() {
            out.push(byte as char);
        } else {
            out.push('_');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn unescape(part: &str) -> Option<String> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'_' => {
                let hex = part.get(at + 1..at + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                at += 3;
            }
            b if b.is_ascii_alphanumeric() => {
                out.push(b);
                at += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_once_collided_differ() {
        assert_ne!(spool_name("v-w", "m1234567"), spool_name("v", "w-m1234567"));
        assert_ne!(spool_name("a/b", "m1"), spool_name("a_b", "m1"));
    }

    #[test]
    fn a_part_name_reads_back() {
        for (s, m) in [("v-w", "m1234567"), ("a/b_c+=", "x.y-z%2=+"), ("S", "M")] {
            let name = part_name(s, m);
            assert!(!name[1..].contains('/'), "{name}");
            assert_eq!(parse_part_name(&name), Some((s.to_string(), m.to_string())));
        }
        assert_eq!(parse_part_name(".x.part"), None);
        assert_eq!(parse_part_name(".a-b_zz.part"), None);
    }
}
