//! Counting frames in a TCP byte stream by a fixed marker, whatever the read
//! boundaries: every MSRP frame ends with `CRLF "-------" tid flag CRLF`
//! (RFC 4975 7.1), so counting `"\r\n-------"` counts frames as long as no
//! body carries that sequence (ours never do).

use memchr::memmem::Finder;

/// The start of every end-line (RFC 4975 7.1: `end-line = "-------"
/// transact-id continuation-flag CRLF`, preceded by the CRLF that ends the
/// headers or the body).
pub const END_LINE: &[u8] = b"\r\n-------";

/// The start line of a 200 response as the engine writes it (RFC 4975 7.2,
/// with the comment of RFC 4975 10).
pub const OK_STATUS: &[u8] = b" 200 OK\r\n";

/// Counts a marker in a stream fed in pieces of any size, including matches
/// split across pieces, without allocating per piece.
pub struct StreamCounter {
    finder: Finder<'static>,
    /// The last `needle.len() - 1` octets fed: where a split match can begin.
    tail: Vec<u8>,
    /// `tail` followed by the head of the next piece.
    seam: Vec<u8>,
}

impl StreamCounter {
    pub fn new(needle: &'static [u8]) -> StreamCounter {
        assert!(needle.len() >= 2, "a one-octet marker cannot be split");
        let keep = needle.len() - 1;
        StreamCounter {
            finder: Finder::new(needle),
            tail: Vec::with_capacity(keep),
            seam: Vec::with_capacity(2 * keep),
        }
    }

    fn keep(&self) -> usize {
        self.finder.needle().len() - 1
    }

    /// Matches that end in `piece`.
    pub fn feed(&mut self, piece: &[u8]) -> u64 {
        let keep = self.keep();
        // The seam is shorter than two needles and neither of its halves can
        // hold a whole one, so what it finds straddles the boundary and was
        // counted by neither search of a piece.
        self.seam.clear();
        self.seam.extend_from_slice(&self.tail);
        self.seam.extend_from_slice(&piece[..piece.len().min(keep)]);
        let mut found = self.finder.find_iter(&self.seam).count() as u64;
        found += self.finder.find_iter(piece).count() as u64;

        if piece.len() >= keep {
            self.tail.clear();
            self.tail.extend_from_slice(&piece[piece.len() - keep..]);
        } else {
            // The seam holds all of a piece shorter than the tail.
            let start = self.seam.len().saturating_sub(keep);
            self.tail.clear();
            self.tail.extend_from_slice(&self.seam[start..]);
        }
        debug_assert!(self.tail.len() <= keep);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..200 {
            out.extend_from_slice(
                format!("MSRP t{i} 200 OK\r\nTo-Path: x\r\nFrom-Path: y\r\n-------t{i}$\r\n").as_bytes(),
            );
            // Near misses: a CRLF and fewer than seven hyphens.
            out.extend_from_slice(b"\r\n------\r\n-");
        }
        out
    }

    #[test]
    fn any_split_counts_every_marker_once() {
        let stream = stream();
        let whole = StreamCounter::new(END_LINE).feed(&stream);
        assert_eq!(whole, 200);
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..500 {
            let mut counter = StreamCounter::new(END_LINE);
            let mut ok = StreamCounter::new(OK_STATUS);
            let (mut found, mut oks, mut at) = (0, 0, 0);
            while at < stream.len() {
                // Mostly tiny pieces, so that matches span three or more.
                let len = if rng.bool() {
                    rng.usize(0..4)
                } else {
                    rng.usize(0..64)
                };
                let end = (at + len).min(stream.len());
                found += counter.feed(&stream[at..end]);
                oks += ok.feed(&stream[at..end]);
                at = end;
            }
            assert_eq!((found, oks), (200, 200));
        }
    }
}
