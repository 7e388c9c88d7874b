//! `ident` values: transaction ids and Message-IDs (RFC 4975 9).
//!
//! ```text
//! ident      = ALPHANUM 3*31ident-char
//! ident-char = ALPHANUM / "." / "-" / "+" / "%" / "="
//! ```
//! At most 32 octets, so both are stored inline and copied for free.

use core::fmt;

use super::chars;

/// The 62 characters of minted ids (transaction ids, Message-IDs,
/// session-ids): letters and digits, idents in every RFC 4975 9 rule.
pub(crate) const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The longest ident the grammar allows.
pub const IDENT_LEN_MAX: usize = 32;
/// The shortest ident the grammar allows.
pub const IDENT_LEN_MIN: usize = 4;

/// Checks the `ident` rule.
pub fn is_ident(s: &[u8]) -> bool {
    (IDENT_LEN_MIN..=IDENT_LEN_MAX).contains(&s.len())
        && chars::is(s[0], chars::ALPHANUM)
        && chars::all(s, chars::IDENT)
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Ident {
    len: u8,
    bytes: [u8; IDENT_LEN_MAX],
}

impl Ident {
    fn new(s: &[u8]) -> Option<Ident> {
        is_ident(s).then(|| Ident::copy_of(s))
    }

    /// `s`, which the caller checked against the `ident` rule.
    fn copy_of(s: &[u8]) -> Ident {
        debug_assert!(is_ident(s), "an ident checked before");
        let mut bytes = [0u8; IDENT_LEN_MAX];
        // Two overlapping fixed-size copies instead of a call to copy
        // 4 to 32 octets (`is_ident` bounded the length).
        fn copy<const W: usize>(bytes: &mut [u8; IDENT_LEN_MAX], s: &[u8]) {
            let n = s.len();
            bytes[..W].copy_from_slice(&s[..W]);
            bytes[n - W..n].copy_from_slice(&s[n - W..]);
        }
        match s.len() {
            16.. => copy::<16>(&mut bytes, s),
            8.. => copy::<8>(&mut bytes, s),
            _ => copy::<4>(&mut bytes, s),
        }
        Ident {
            len: s.len() as u8,
            bytes,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    fn as_str(&self) -> &str {
        // `is_ident` admitted ASCII only.
        core::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

macro_rules! ident_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(Ident);

        impl $name {
            /// Accepts `s` when it matches the `ident` rule.
            pub fn new(s: &[u8]) -> Option<$name> {
                Ident::new(s).map($name)
            }

            /// The id's octets.
            pub fn as_bytes(&self) -> &[u8] {
                self.0.as_bytes()
            }

            /// The id as text (always ASCII).
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.as_str())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

ident_type!(
    /// A transaction id: names one request and its response, and delimits the
    /// frame through the end-line (RFC 4975 7.1).
    TransactionId
);

impl TransactionId {
    /// The transaction id of a start line that checked it already
    /// (`parse_start_line`), without checking it again.
    pub(crate) fn from_checked(s: &[u8]) -> TransactionId {
        TransactionId(Ident::copy_of(s))
    }
}

ident_type!(
    /// A Message-ID: names one whole message across all of its chunks
    /// (RFC 4975 7.1.1).
    MessageId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ident_rule() {
        assert!(is_ident(b"a786hjs2"));
        assert!(is_ident(b"abcd"));
        assert!(is_ident(b"a.-+%=bcd"));
        assert!(!is_ident(b"abc"));
        assert!(!is_ident(&[b'a'; 33]));
        assert!(is_ident(&[b'a'; 32]));
        assert!(!is_ident(b".abc"));
        assert!(!is_ident(b"ab_cd"));
        assert_eq!(
            TransactionId::new(b"a786hjs2").map(|t| t.to_string()),
            Some("a786hjs2".into())
        );
    }
}
