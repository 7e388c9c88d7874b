//! Character classes of the RFC 4975 9 and RFC 3986 grammars as one lookup
//! table, so that validating a header is one table load per octet.

pub(crate) const UNRESERVED: u8 = 1 << 0;
pub(crate) const SUB_DELIM: u8 = 1 << 1;
pub(crate) const TOKEN: u8 = 1 << 2;
/// ASCII octets allowed in `utf8text` (HTAB and %x20-7E).
pub(crate) const TEXT: u8 = 1 << 3;
pub(crate) const IDENT: u8 = 1 << 4;
/// `session-id = 1*( unreserved / "+" / "=" / "/" )`
pub(crate) const SESSION_ID: u8 = 1 << 5;
pub(crate) const ALPHANUM: u8 = 1 << 6;
/// RFC 3986 `reg-name` and `userinfo` octets (unreserved / sub-delims / the
/// "%" of pct-encoded, checked separately).
pub(crate) const REG_NAME: u8 = 1 << 7;

const fn build() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let alnum = b.is_ascii_alphanumeric();
        let mut class = 0;
        if alnum || matches!(b, b'-' | b'.' | b'_' | b'~') {
            class |= UNRESERVED | SESSION_ID;
        }
        if matches!(b, b'+' | b'=' | b'/') {
            class |= SESSION_ID;
        }
        if matches!(
            b,
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
        ) {
            class |= SUB_DELIM;
        }
        // token = 1*(%x21 / %x23-27 / %x2A-2B / %x2D-2E / %x30-39 / %x41-5A / %x5E-7E)
        if matches!(b, 0x21 | 0x23..=0x27 | 0x2A..=0x2B | 0x2D..=0x2E | 0x30..=0x39 | 0x41..=0x5A | 0x5E..=0x7E)
        {
            class |= TOKEN;
        }
        if b == b'\t' || (b >= 0x20 && b <= 0x7e) {
            class |= TEXT;
        }
        // ident-char = ALPHANUM / "." / "-" / "+" / "%" / "="
        if alnum || matches!(b, b'.' | b'-' | b'+' | b'%' | b'=') {
            class |= IDENT;
        }
        if alnum {
            class |= ALPHANUM;
        }
        if class & (UNRESERVED | SUB_DELIM) != 0 || b == b'%' {
            class |= REG_NAME;
        }
        table[i] = class;
        i += 1;
    }
    table
}

static CLASSES: [u8; 256] = build();

/// Whether `b` is in every class of `mask`.
#[inline]
pub(crate) fn is(b: u8, mask: u8) -> bool {
    CLASSES[usize::from(b)] & mask == mask
}

/// Whether every octet of `s` is in `mask`; no early exit, so it vectorises.
#[inline]
pub(crate) fn all(s: &[u8], mask: u8) -> bool {
    s.iter().fold(mask, |acc, &b| acc & CLASSES[usize::from(b)]) == mask
}

/// Whether every octet of `s` is in %x20-7E, eight at a time: the common case
/// of `utf8text` (RFC 4975 9), which also admits HTAB and UTF-8 (the caller
/// checks those when this says no).
#[inline]
pub(crate) fn all_printable_ascii(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = ONES * 0x80;
    // An octet below 0x20 borrows into its high bit; one above 0x7E carries
    // into it (or has it set). Carries and borrows only leave a byte that is
    // itself outside, so a zero result is exact.
    let outside = |w: u64| (w.wrapping_sub(ONES * 0x20) & !w | w.wrapping_add(ONES) | w) & HIGHS;
    let word = |c: &[u8]| u64::from_le_bytes(c.try_into().unwrap_or_default());
    if s.len() < 8 {
        return s.iter().all(|&b| b.wrapping_sub(0x20) < 0x5f);
    }
    let chunks = s.chunks_exact(8);
    // The last eight octets, overlapping the chunks, cover the remainder.
    let last = word(&s[s.len() - 8..]);
    chunks.fold(outside(last), |acc, c| acc | outside(word(c))) == 0
}

/// The positions of the LF octets of `s`, in order, found eight octets at a
/// time without a call per line: the line ends of a head are a few dozen
/// octets apart, where a call to a vector search costs more than the search.
pub(crate) struct LineFeeds<'a> {
    s: &'a [u8],
    /// Start of the word `found` describes.
    word_at: usize,
    /// The high bit of every octet of that word that is an LF not yet
    /// handed out.
    found: u64,
}

impl<'a> LineFeeds<'a> {
    pub(crate) fn new(s: &'a [u8]) -> LineFeeds<'a> {
        let mut feeds = LineFeeds {
            s,
            word_at: 0,
            found: 0,
        };
        feeds.found = feeds.lf_bits(0);
        feeds
    }

    /// The LFs of the (up to) eight octets from `at`.
    #[inline]
    fn lf_bits(&self, at: usize) -> u64 {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const LOWS: u64 = ONES * 0x7f;
        let word = match self.s.get(at..at + 8) {
            Some(w) => u64::from_le_bytes(w.try_into().unwrap_or_default()),
            None => {
                // The tail, padded with octets that are no LF.
                let mut padded = [0u8; 8];
                let tail = self.s.get(at..).unwrap_or_default();
                padded[..tail.len()].copy_from_slice(tail);
                u64::from_le_bytes(padded)
            }
        };
        // Exact per octet (no carry crosses octets): the high bit is set
        // where `word ^ LF` is zero.
        let t = word ^ (ONES * u64::from(b'\n'));
        !(((t & LOWS) + LOWS) | t | LOWS)
    }
}

impl Iterator for LineFeeds<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.found == 0 {
            self.word_at += 8;
            if self.word_at >= self.s.len() {
                return None;
            }
            self.found = self.lf_bits(self.word_at);
        }
        let at = self.word_at + self.found.trailing_zeros() as usize / 8;
        self.found &= self.found - 1;
        Some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_feeds_are_the_lf_octets() {
        for len in 0..40 {
            for pattern in 0..64u64 {
                // LFs at the positions a few patterns pick, plus near misses.
                let s: Vec<u8> = (0..len)
                    .map(|i| match (i as u64 * 7 + pattern) % 5 {
                        0 => b'\n',
                        1 => b'\n' ^ 0x80,
                        2 => b'\r',
                        3 => 0x0b,
                        _ => b'a',
                    })
                    .collect();
                let want: Vec<usize> = (0..len).filter(|&i| s[i] == b'\n').collect();
                assert_eq!(LineFeeds::new(&s).collect::<Vec<_>>(), want, "{s:?}");
            }
        }
        let mut all = vec![b'\n'; 21];
        all[3] = b'x';
        let want: Vec<usize> = (0..21).filter(|&i| i != 3).collect();
        assert_eq!(LineFeeds::new(&all).collect::<Vec<_>>(), want);
    }

    #[test]
    fn printable_ascii_agrees_with_octet_by_octet() {
        for len in 0..40 {
            let base = vec![b'a'; len];
            assert!(all_printable_ascii(&base));
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut s = base.clone();
                    s[at] = b;
                    let want = (0x20..=0x7e).contains(&b);
                    assert_eq!(all_printable_ascii(&s), want, "{b:#x} at {at} of {len}");
                }
            }
        }
    }
}
