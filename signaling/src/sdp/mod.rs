//! SDP offer/answer for MSRP media (RFC 4975 8, RFC 3264, RFC 6135, RFC 5547).
//!
//! `sdp-types` parses and writes the SDP text; this module reads MSRP's
//! meaning out of it and back:
//!
//! - [`media`]: one `m=message` media description ([`MsrpMedia`]), unknown
//!   attributes kept.
//! - [`file_attrs`]: the RFC 5547 `a=file-*` attributes.
//! - [`multipart`]: the SDP part of a multipart/mixed or multipart/related body.
//! - [`offer_answer`]: [`answer`], [`reanswer`], [`offer`], [`complete`].
//! - [`descriptor`]: [`NegotiatedMedia::descriptor`], the engine's
//!   `SessionDescriptor`.
//!
//! Sans-IO: no sockets, no clock; the session ids come from a caller's
//! function ([`new_session_id`] in production).

pub mod descriptor;
pub mod file_attrs;
pub mod media;
pub mod multipart;
pub mod offer_answer;

pub use file_attrs::{FileAttrError, FileAttributes, FileDate, FileHash, FileRange, FileSelector, FileType};
pub use media::{Direction, MediaError, MsrpMedia, MsrpTransport, Setup};
pub use multipart::{find_sdp, ContentType, MultipartError};
pub use offer_answer::{
    answer, complete, new_session_id, offer, parse_sdp, reanswer, try_new_session_id, Answer, LocalEndpoint,
    NegotiatedMedia, Offer, OfferOptions, Policy, Rejection, TlsEndpoint,
};
