//! SIP messages, transactions and dialogs (RFC 3261).
//!
//! The message layer runs in this order, sans-IO:
//! - [`frame`]: one message out of a stream (Content-Length) or a datagram;
//! - [`normalize`]: start line and unfolded, canonically named header fields;
//! - [`message`]: the parsed [`Message`] (raw bytes kept) and the writer,
//!   [`MessageBuilder`];
//! - typed header values of our own: [`uri`], [`via`], [`name_addr`],
//!   [`call_info`], [`geolocation`];
//! - [`rsip_bridge`]: the same message as an `rsip::SipMessage`.

pub mod call_info;
pub mod counts;
pub mod frame;
pub mod geolocation;
pub mod message;
pub mod method;
pub mod name_addr;
pub mod normalize;
pub mod params;
pub mod rsip_bridge;
pub mod uri;
pub mod via;

pub use call_info::CallInfo;
pub use frame::{frame_datagram, FrameError, Limits, StreamFramer};
pub use geolocation::{GeolocationRouting, LocationValue};
pub use message::{
    response_to, response_to_fields, CSeq, Disposition, Message, MessageBuilder, MessageError,
    MessageErrorKind,
};
pub use method::Method;
pub use name_addr::NameAddr;
pub use normalize::{parse_head, Head, HeadError, HeaderField, HeaderName, StartLine};
pub use rsip_bridge::{to_rsip, BridgeError};
pub use sources::SourceLimits;
pub use uri::{Host, SipUri, TelUri, Uri, UriError, UrnUri};
pub use via::{HeaderError, Via};

// Transactions, dialogs and the user agent (RFC 3261 12-17).
pub mod dialog;
pub mod endpoint;
pub mod rate;
pub mod sources;
pub mod transaction;
pub mod ua;
pub mod wire;

pub use dialog::{Dialog, DialogId};
pub use endpoint::{
    ClientTxnId, ConnId, Endpoint, EndpointConfig, EndpointEvent, EndpointStats, Flow, ServerTxnId, Transmit,
    Transport,
};
pub use ua::{
    Body, CallId, EndReason, InfoRequest, InviteError, InviteRequest, ReofferId, UaConfig, UaEvent, UaStats,
    UserAgent,
};
