//! What the signaling tests share, declared once: the real processes they
//! start (`processes`: msrpd, msrp-signal, sipp runs; `stack`: an msrpd
//! and msrp-signal pair serving REST), the clients they talk through
//! (`http`, `sse`, `msrp_peer`: RFC 4975 7.1 by hand), the webhook
//! receiver, and the REST helpers (`common`). A test crate says
//! `mod support;` and uses what it needs; the rest is dead code to it.
#![allow(dead_code)]

pub mod common;
pub mod http;
pub mod msrp_peer;
pub mod processes;
pub mod sse;
pub mod stack;
pub mod webhook_receiver;
