//! Parser limits and strictness: every bound is configuration, enforced with a
//! typed error (RFC 4975 itself sets only the 10240-octet bound, 7.1).

/// How literally the parser reads the RFC 4975 9 grammar.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Strictness {
    /// The grammar exactly (the default).
    #[default]
    Strict,
    /// For interop with stacks that bend the grammar, also accept: To-Path and
    /// From-Path in any position (vector N12), Content-Type not last (N24), runs
    /// of spaces in the start line (N31) and no or extra whitespace after a
    /// header colon (N38), and a bodiless SEND without Message-ID (a bind or
    /// keep-alive). Nothing else differs.
    Lenient,
}

/// Size bounds of one frame, all in octets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Start line without its CRLF.
    pub start_line_bytes_max: usize,
    /// One header line without its CRLF.
    pub header_line_bytes_max: usize,
    /// Start line and all header lines together.
    pub header_block_bytes_max: usize,
    /// Number of header lines in one frame.
    pub header_count_max: usize,
    /// Body of a request other than SEND (RFC 4975 7.1: 10240).
    pub non_send_body_bytes_max: u64,
    /// Body of one chunk before its end-line must appear; past it the
    /// connection is closed because the frame cannot be delimited.
    pub chunk_body_bytes_max: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            start_line_bytes_max: 1024,
            header_line_bytes_max: 8 * 1024,
            header_block_bytes_max: 64 * 1024,
            header_count_max: 128,
            non_send_body_bytes_max: 10240,
            chunk_body_bytes_max: 16 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// The smallest start line that still holds `MSRP`, a tid and a method.
    pub const START_LINE_BYTES_MIN: usize = 16;
    pub const HEADER_LINE_BYTES_MIN: usize = 16;
    pub const HEADER_BLOCK_BYTES_MIN: usize = 64;
    /// Offsets into a head are 32-bit.
    pub const HEADER_BLOCK_BYTES_CEILING: usize = u32::MAX as usize / 2;
    /// To-Path and From-Path.
    pub const HEADER_COUNT_MIN: usize = 2;

    /// These limits with each one raised to its floor (and the header block
    /// capped at its ceiling): below the floors no valid frame fits, and the
    /// "MSRP " check at a frame boundary would race the limits.
    pub fn floored(self) -> Limits {
        Limits {
            start_line_bytes_max: self.start_line_bytes_max.max(Self::START_LINE_BYTES_MIN),
            header_line_bytes_max: self.header_line_bytes_max.max(Self::HEADER_LINE_BYTES_MIN),
            header_block_bytes_max: self
                .header_block_bytes_max
                .clamp(Self::HEADER_BLOCK_BYTES_MIN, Self::HEADER_BLOCK_BYTES_CEILING),
            header_count_max: self.header_count_max.max(Self::HEADER_COUNT_MIN),
            ..self
        }
    }
}

/// Everything the parser is configured with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParserConfig {
    pub limits: Limits,
    pub strictness: Strictness,
}
