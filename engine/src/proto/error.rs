//! Wire errors. Each variant says whether its frame could still be delimited
//! and maps to exactly one reaction (RFC 4975 7.1, 7.3: answer 400,
//! discard, or close when the frame cannot be delimited).

/// What the endpoint does about a wire error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reaction {
    /// Answer the request with `400` (unless it said `Failure-Report: no`, or its
    /// From-Path is unusable so no response can be addressed).
    Respond400,
    /// Drop the frame and log it: responses and REPORTs are never answered
    /// (RFC 4975 7.1.2, 7.2).
    Discard,
    /// Close the connection and fail every session on it (RFC 4975 5.4).
    Close,
}

impl Reaction {
    /// `"400"`, `"discard"` or `"close"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reaction::Respond400 => "400",
            Reaction::Discard => "discard",
            Reaction::Close => "close",
        }
    }
}

/// Which configured limit was hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    StartLine,
    HeaderLine,
    HeaderBlock,
    HeaderCount,
    ChunkBody,
}

impl Limit {
    fn as_str(self) -> &'static str {
        match self {
            Limit::StartLine => "start line",
            Limit::HeaderLine => "header line",
            Limit::HeaderBlock => "header block",
            Limit::HeaderCount => "header count",
            Limit::ChunkBody => "chunk body",
        }
    }
}

/// A malformed MSRP byte stream or frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The bytes at a frame boundary do not start with `MSRP SP <tid>`, so no
    /// end-line can be looked for.
    #[error("framing lost: {0}")]
    FramingLost(&'static str),
    /// The stream ended inside a frame (its end-line never came).
    #[error("stream ended inside a frame: no end-line")]
    Unterminated,
    /// A configured size bound was exceeded before the frame could be delimited.
    #[error("{} longer than the limit of {limit}", what.as_str())]
    LimitExceeded { what: Limit, limit: u64 },
    /// A line in the header block starts with seven hyphens but is not this
    /// frame's end-line.
    #[error("end-line does not match the start line's transaction id")]
    BadEndLine,
    #[error("malformed start line: {0}")]
    BadStartLine(&'static str),
    #[error("transaction id is not an ident of 4 to 32 characters")]
    BadTransactionId,
    #[error("response status is not three digits")]
    BadStatusCode,
    #[error("malformed header line: {0}")]
    BadHeader(&'static str),
    #[error("To-Path must be the first header and From-Path the second")]
    HeaderOrder,
    #[error("header {0} appears twice")]
    DuplicateHeader(&'static str),
    #[error("To-Path header missing")]
    MissingToPath,
    #[error("From-Path header missing")]
    MissingFromPath,
    #[error("SEND without a Message-ID")]
    MissingMessageId,
    #[error("malformed MSRP URI: {0}")]
    BadUri(&'static str),
    #[error("malformed Byte-Range: {0}")]
    BadByteRange(&'static str),
    #[error("malformed {0} value")]
    BadHeaderValue(&'static str),
    #[error("body without a Content-Type")]
    ContentTypeMissing,
    #[error("Content-Type on a bodiless request")]
    ContentTypeWithoutBody,
    #[error("Content-Type is not the last header")]
    ContentTypeNotLast,
    /// A REPORT that breaks the rules of RFC 4975 7.1.2 or is malformed; the
    /// text names the cause.
    #[error("malformed REPORT: {0}")]
    BadReport(&'static str),
    /// A response that breaks the rules of RFC 4975 7.2 or is malformed; the
    /// text names the cause.
    #[error("malformed response: {0}")]
    BadResponse(&'static str),
    #[error("body of a {0} request is longer than the limit for non-SEND requests")]
    NonSendBodyTooLarge(&'static str),
}

impl Error {
    /// The variant's name, as printed by `msrpd decode` and used in the vectors.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::FramingLost(_) => "FramingLost",
            Error::Unterminated => "Unterminated",
            Error::LimitExceeded { .. } => "LimitExceeded",
            Error::BadEndLine => "BadEndLine",
            Error::BadStartLine(_) => "BadStartLine",
            Error::BadTransactionId => "BadTransactionId",
            Error::BadStatusCode => "BadStatusCode",
            Error::BadHeader(_) => "BadHeader",
            Error::HeaderOrder => "HeaderOrder",
            Error::DuplicateHeader(_) => "DuplicateHeader",
            Error::MissingToPath => "MissingToPath",
            Error::MissingFromPath => "MissingFromPath",
            Error::MissingMessageId => "MissingMessageId",
            Error::BadUri(_) => "BadUri",
            Error::BadByteRange(_) => "BadByteRange",
            Error::BadHeaderValue(_) => "BadHeaderValue",
            Error::ContentTypeMissing => "ContentTypeMissing",
            Error::ContentTypeWithoutBody => "ContentTypeWithoutBody",
            Error::ContentTypeNotLast => "ContentTypeNotLast",
            Error::BadReport(_) => "BadReport",
            Error::BadResponse(_) => "BadResponse",
            Error::NonSendBodyTooLarge(_) => "NonSendBodyTooLarge",
        }
    }

    /// Whether the frame's end was still found, so the stream goes on after it.
    pub fn delimitable(&self) -> bool {
        !matches!(
            self,
            Error::FramingLost(_) | Error::Unterminated | Error::LimitExceeded { .. } | Error::BadEndLine
        )
    }

    /// The one thing to do about it (RFC 4975 7.3: a delimitable bad request
    /// gets 400; a stream that cannot be framed is closed).
    pub fn reaction(&self) -> Reaction {
        match self {
            _ if !self.delimitable() => Reaction::Close,
            Error::BadStatusCode
            | Error::BadReport(_)
            | Error::BadResponse(_)
            | Error::NonSendBodyTooLarge(_) => Reaction::Discard,
            _ => Reaction::Respond400,
        }
    }
}
