//! The MSRP wire format, sans-IO: no sockets, no clocks, no runtime.
//!
//! - [`Parser`]: incremental, zero-copy stream parser yielding [`Event`]s.
//! - [`Writer`], [`write_response`]: frame builders.
//! - [`MsrpUri`]: URIs and their RFC 4975 6.1 comparison.
//! - [`Error`]: every wire error, with its [`Reaction`] (RFC 4975 7.1, 7.3: what the peer is owed).

mod chars;
mod error;
mod frame;
mod head;
mod header;
mod header_name;
mod ident;
mod limits;
mod parse;
mod span;
mod uri;
mod write;

pub use error::{Error, Limit, Reaction};
pub use frame::{Continuation, FrameHead, FrameKind, Method, Path};
pub(crate) use header::is_media_type;
pub use header::{ByteRange, FailureReport, ReportStatus, SuccessReport};
pub(crate) use ident::BASE62;
pub use ident::{is_ident, MessageId, TransactionId, IDENT_LEN_MAX, IDENT_LEN_MIN};
pub use limits::{Limits, ParserConfig, Strictness};
pub use parse::{Event, Malformed, Parser};
pub(crate) use uri::session_id_of;
pub use uri::{MsrpUri, UriError};
pub use write::{
    status_comment, write_response, write_response_echo, Content, EncodedRequest, Request, WriteError,
    Writer, GENERATED_TID_LEN,
};
