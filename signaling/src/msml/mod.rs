//! MSML (RFC 5707): the media-server control language an application server
//! sends in SIP INFO (`application/msml+xml`, or `application/xml` from
//! Dialogic's JAIN sample — the content type is the caller's business).
//!
//! msrp-signal executes `<dialogstart>` with Dialogic's `<transfer>`
//! primitive (CONTROL-SURFACES.md 2.3: deliver a file over a new SIP + MSRP
//! session) and `<dialogend>`; everything else is refused by name with an
//! RFC 5707 section 11 code, never passed over.
//!
//! - [`read`]: [`parse`] bytes into a [`Document`], or an [`MsmlError`].
//! - [`model`]: the typed document, with every schema default applied.
//! - [`xmsrp`]: the `src` (`file://`) and `dest` (`xmsrp://`, `file://`)
//!   URIs, read at parse time so that a bad one fails the document.
//! - [`write`](mod@write): the `<result>` and `<event>` documents sent back.
//! - [`duration`]: MSML time values (`1.5s`, `300ms`).
//!
//! Sans-IO: no file is opened or checked; the caller resolves the target
//! (430 when it does not exist), the files and the sessions.

mod cursor;
pub mod duration;
pub mod model;
pub mod read;
pub mod write;
pub mod xmsrp;

pub use model::{
    response, Content, Dest, DialogStart, Document, FileObj, Hook, HookEnd, Initial, MessageObj, MsmlError,
    Request, Retry, SendAction, Transfer, TransferObject, XmsrpDest,
};
pub use read::{parse, DEPTH_MAX};
pub use write::{dialog_id, event, result, token};
