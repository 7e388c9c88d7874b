//! Byte spans into a frame's head, so parsed fields point into the bytes that
//! arrived instead of copying them.

/// A half-open byte range `start..end` into a buffer that is kept alongside.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    /// Heads are bounded by `Limits::header_block_bytes_max` (a `u32`), so offsets fit.
    pub fn new(start: usize, end: usize) -> Span {
        debug_assert!(start <= end && end <= u32::MAX as usize);
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    pub fn of(self, buf: &[u8]) -> &[u8] {
        &buf[self.start as usize..self.end as usize]
    }

    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }
}
