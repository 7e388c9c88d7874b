//! RFC 3261 section 17 transactions (with RFC 6026): four state machines,
//! and the keys that match messages to them.

mod client;
mod key;
mod server;
mod timers;

pub use client::{ClientAction, ClientKind, ClientState, ClientTransaction, ResponseOutcome};
pub use key::{ClientKey, ServerKey, MAGIC_COOKIE};
pub use server::{ServerAction, ServerKind, ServerState, ServerTransaction};
pub use timers::TimerSettings;
