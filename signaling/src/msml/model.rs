//! The typed MSML request document: what [`crate::msml::read::parse`] gives
//! back, and the error it refuses a document with.
//!
//! Only what msrp-signal executes is modelled: `<dialogstart>` holding one
//! Dialogic `<transfer>` primitive (MOML-TRANSFER-MODULE, CONTROL-SURFACES.md
//! 2.3) and `<dialogend>` (RFC 5707 9.6.1, 9.6.2). Defaults of the schema are
//! applied by the reader, so every field holds the value that is in force.

use std::path::PathBuf;
use std::time::Duration;

/// The RFC 5707 section 11 response codes this module and its callers use,
/// as the `response` attribute of `<result>` (RFC 5707 7.3).
pub mod response {
    pub const OK: u16 = 200;
    pub const BAD_REQUEST: u16 = 400;
    pub const UNKNOWN_ELEMENT: u16 = 401;
    pub const UNSUPPORTED_ELEMENT: u16 = 402;
    pub const MISSING_MANDATORY_ELEMENT_CONTENT: u16 = 403;
    pub const FORBIDDEN_ELEMENT_CONTENT: u16 = 404;
    pub const INVALID_ELEMENT_CONTENT: u16 = 405;
    pub const UNKNOWN_ATTRIBUTE: u16 = 406;
    pub const ATTRIBUTE_NOT_SUPPORTED: u16 = 407;
    pub const MISSING_MANDATORY_ATTRIBUTE: u16 = 408;
    pub const FORBIDDEN_ATTRIBUTE: u16 = 409;
    pub const INVALID_ATTRIBUTE_VALUE: u16 = 410;
    pub const UNSUPPORTED_MEDIA_DESCRIPTION_LANGUAGE: u16 = 420;
    pub const UNKNOWN_MEDIA_DESCRIPTION_LANGUAGE: u16 = 421;
    /// Both a `src` URI and an inline description (RFC 5707 9.6.1).
    pub const AMBIGUOUS_REQUEST: u16 = 422;
    pub const EXTERNAL_DOCUMENT_FETCH_ERROR: u16 = 423;
    pub const OBJECT_DOES_NOT_EXIST: u16 = 430;
    pub const OBJECT_INSTANCE_NAME_ALREADY_USED: u16 = 431;
    pub const INTERNAL_MEDIA_SERVER_ERROR: u16 = 500;
    pub const SERVICE_UNAVAILABLE: u16 = 503;
    pub const NO_RESOURCE: u16 = 520;
    pub const INTERNAL_LIMIT_EXCEEDED: u16 = 521;
}

/// A refused MSML document: the RFC 5707 section 11 code for
/// `<result response="…">` and the text for its `<description>` (7.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("MSML {response}: {description}")]
pub struct MsmlError {
    pub response: u16,
    pub description: String,
}

impl MsmlError {
    pub fn new(response: u16, description: impl Into<String>) -> Self {
        MsmlError {
            response,
            description: description.into(),
        }
    }

    /// The same error with `<element> ` put in front of its description.
    pub(crate) fn on(mut self, element: &str) -> Self {
        self.description = format!("<{element}> {}", self.description);
        self
    }
}

/// An `<msml>` request document (RFC 5707 7.1): its requests, to be
/// executed in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// `1.1` or `1.0`.
    pub version: String,
    pub requests: Vec<Request>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Boxed: a request is one of a few per document, and a `DialogStart`
    /// is six times a `DialogEnd`.
    DialogStart(Box<DialogStart>),
    /// RFC 5707 9.6.2: `id` is a dialog id, `conn:…/dialog:…` or
    /// `conf:…/dialog:…`.
    DialogEnd { id: String, mark: Option<String> },
}

/// RFC 5707 9.6.1 `<dialogstart>` with an inline MOML dialog of exactly one
/// `<transfer>`. `type` is not kept: the reader accepts only
/// `application/moml+xml` (or its absence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogStart {
    /// `conn:…` or `conf:…`; whether it exists is the caller's question
    /// (430 when it does not).
    pub target: String,
    /// The instance name; [`crate::msml::write::dialog_id`] makes the
    /// dialog id from it. `None`: the media server assigns one.
    pub name: Option<String>,
    pub mark: Option<String>,
    pub transfer: Transfer,
}

/// Dialogic's `<transfer>` primitive (CONTROL-SURFACES.md 2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub id: Option<String>,
    /// The `<fileobj>` and `<messageobj>` children, in document order.
    pub objects: Vec<TransferObject>,
    pub initial: Initial,
    /// How many times the objects are sent; at least 1.
    pub iterate: u32,
    pub retry: Retry,
    pub delay: Option<Duration>,
    pub starttimer: bool,
    /// First-transfer timeout.
    pub ftt: Option<Duration>,
    /// Inter-transfer timeout.
    pub itt: Option<Duration>,
    pub maxtime: Option<Duration>,
    /// `<transferobjdone>`: run after each object.
    pub objdone: Hook,
    /// `<transferexit>`: run when the primitive ends.
    pub exit: Hook,
    /// `<transferstart/>` was present.
    pub start_marker: bool,
    /// `<transferobjstart/>` was present.
    pub objstart_marker: bool,
}

/// `initial`: whether the transfer starts at once or waits to be resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Initial {
    #[default]
    Transmit,
    Suspend,
}

/// `retry`: a count, or `-1` / `forever`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    Count(u32),
    Forever,
}

impl Default for Retry {
    fn default() -> Self {
        Retry::Count(0)
    }
}

/// An exit hook's content (the MOML `sendType` group, RFC 5707 16.3.2):
/// `<send>` elements, then at most one `<exit>` or `<disconnect>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hook {
    pub sends: Vec<SendAction>,
    pub end: Option<HookEnd>,
}

/// RFC 5707 9.6.4 `<exit>` and 9.6.5 `<disconnect>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookEnd {
    Exit { namelist: Vec<String> },
    Disconnect { namelist: Vec<String> },
}

/// RFC 5707 9.6.3 `<send>`: `target="source"` is the MSML client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendAction {
    pub event: String,
    pub target: String,
    /// Shadow variable names, e.g. `transfer.objid transfer.duration`.
    pub namelist: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferObject {
    File(FileObj),
    Message(MessageObj),
}

/// `<fileobj>`: a local file to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileObj {
    pub objid: Option<String>,
    /// An absolute local path; its existence is not checked here.
    pub src: PathBuf,
    pub dest: Dest,
    pub contenttype: Option<String>,
    /// Delete `src` after a successful transfer.
    pub delete: bool,
    pub overwrite: bool,
    pub append: bool,
    pub iterate: u32,
    pub retry: Retry,
    pub wait: bool,
    /// `xml:lang`.
    pub lang: Option<String>,
}

/// `<messageobj>`: a message from a file (`src`) or inline `<content>`.
/// Exactly one of the two is present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageObj {
    pub objid: Option<String>,
    pub src: Option<PathBuf>,
    pub dest: Dest,
    /// Default `text/plain`.
    pub contenttype: String,
    pub contents: Vec<Content>,
    pub iterate: u32,
    pub retry: Retry,
    pub wait: bool,
}

/// A `<content>` of a `<messageobj>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub text: String,
    /// Default `text/plain`.
    pub contenttype: String,
    pub contentid: Option<String>,
    /// `contentdisposition`.
    pub disposition: Option<String>,
}

/// Where an object goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    /// Over a new SIP + MSRP session ([`crate::msml::xmsrp`]).
    Xmsrp(XmsrpDest),
    /// A local absolute path (`file://`).
    File(PathBuf),
}

/// `xmsrp://?offerer=URI;answerer=URI;file=NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmsrpDest {
    /// Our side: the SDP offerer and UAC, a `sip:`/`sips:` URI.
    pub offerer: String,
    /// The receiving UAS, a `sip:`/`sips:` URI.
    pub answerer: String,
    /// The announced name; when the URI has no `file=`, the object's `src`
    /// path (see [`crate::msml::xmsrp::parse_dest`]).
    pub file: String,
}
