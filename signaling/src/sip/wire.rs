//! The messages the endpoint and the user agent write themselves: responses
//! (RFC 3261 8.2.6), the ACK of a failure (17.1.1.3), a stateless 400, and
//! the random tokens (branch, tag, Call-ID).

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

use super::endpoint::{Flow, Transport};
use super::frame::Limits;
use super::message::{response_to_fields, Message, MessageBuilder};
use super::method::Method;
use super::normalize::HeaderField;
use super::transaction::MAGIC_COOKIE;
use super::uri::Host;
use super::via::Via;

/// A response to `request` (RFC 3261 8.2.6.2): its Vias in order, the top
/// one with `received` (18.2.1) and `rport` (RFC 3581 4) filled in from
/// where it came, From, To (with `to_tag` added when the request's To has
/// none, and never to a 100), Call-ID and CSeq.
pub fn response_tagged(
    request: &Message,
    flow: &Flow,
    status: u16,
    reason: &str,
    to_tag: Option<&str>,
) -> MessageBuilder {
    let mut builder = MessageBuilder::response(status, reason);
    for (index, via) in request.vias().iter().enumerate() {
        if index == 0 {
            builder = builder.header("Via", &stamped_via(via, flow.remote));
        } else {
            builder = builder.header("Via", &via.to_string());
        }
    }
    builder = builder.header("From", &request.from().to_string());
    let to = request.to();
    let to_text = match (to.tag(), to_tag) {
        (None, Some(tag)) if status > 100 => format!("{to};tag={tag}"),
        _ => to.to_string(),
    };
    builder
        .header("To", &to_text)
        .header("Call-ID", request.call_id())
        .header(
            "CSeq",
            &format!("{} {}", request.cseq().seq, request.cseq().method),
        )
}

/// A response without a To tag of ours (100 Trying, or a request whose To
/// already has one).
pub fn response(request: &Message, flow: &Flow, status: u16, reason: &str) -> MessageBuilder {
    response_tagged(request, flow, status, reason, None)
}

fn stamped_via(via: &Via, source: SocketAddr) -> String {
    let mut via = via.clone();
    let source_ip = source.ip();
    let host_is_source = match &via.host {
        Host::V4(ip) => IpAddr::from(*ip) == source_ip,
        Host::V6(ip) => IpAddr::from(*ip) == source_ip,
        Host::Name(_) => false,
    };
    if via.rport().is_some() {
        via.set_rport(source.port());
        via.set_received(&source_ip.to_string());
    } else if !host_is_source {
        via.set_received(&source_ip.to_string());
    }
    via.to_string()
}

/// The ACK a client INVITE transaction sends for a 300-699 response
/// (RFC 3261 17.1.1.3): the request's Request-URI, top Via, From, Call-ID,
/// CSeq number and Route, the response's To.
pub fn ack_for_failure(request: &Message, response: &Message) -> Bytes {
    let Some(uri) = request.request_uri() else {
        return Bytes::new();
    };
    let mut builder = MessageBuilder::request(Method::Ack, uri);
    if let Some(via) = request.top_via() {
        builder = builder.header("Via", &via.to_string());
    }
    builder = builder
        .header("Max-Forwards", "70")
        .header("From", &request.from().to_string())
        .header("To", &response.to().to_string())
        .header("Call-ID", request.call_id())
        .header("CSeq", &format!("{} ACK", request.cseq().seq));
    for route in request.header_values("Route") {
        builder = builder.header("Route", route);
    }
    builder.build()
}

/// A refusal of a message that did not parse or frame, built from its
/// header fields (RFC 3261 8.2.1: respond when possible): `status` with a
/// Warning naming the reason (20.43), a To tag added. `None` when the
/// fields lack what a response must copy.
pub fn refusal(
    fields: &[HeaderField],
    flow: &Flow,
    status: u16,
    warn_agent: &str,
    reason: &str,
) -> Option<(Flow, Bytes)> {
    let has = |name: &str| fields.iter().any(|f| f.name.is(name));
    if !["Via", "From", "To", "Call-ID", "CSeq"].iter().all(|n| has(n)) {
        return None;
    }
    let mut fields = fields.to_vec();
    if let Some(to) = fields.iter_mut().find(|f| f.name.is("To")) {
        if !to.value.to_ascii_lowercase().contains(";tag=") {
            to.value = format!("{};tag={}", to.value, tag());
        }
    }
    let warning = format!("399 {} \"{}\"", warn_agent, reason.replace(['"', '\\'], "'"));
    let phrase = if status == 400 { "Bad Request" } else { "Refused" };
    let bytes = response_to_fields(&fields, status, phrase)
        .header("Warning", &warning)
        .build();
    // The fields are copied as they came: when the broken one is among
    // them, our response would not read either. Strict in what we send,
    // such a request is dropped (RFC 3261 8.2.6 leaves no way to answer).
    Message::parse(bytes.clone(), &Limits::default()).ok()?;
    let top_via = fields
        .iter()
        .find(|f| f.name.is("Via"))
        .and_then(|f| Via::parse_list(&f.value).ok()?.into_iter().next());
    let flow = match (flow.transport, top_via) {
        (Transport::Udp, Some(via)) if via.rport().is_none() => Flow {
            remote: SocketAddr::new(flow.remote.ip(), via.port.unwrap_or(5060)),
            ..*flow
        },
        _ => *flow,
    };
    Some((flow, bytes))
}

/// A Via branch: the magic cookie and 96 random bits (RFC 3261 8.1.1.7).
pub fn branch() -> String {
    format!("{MAGIC_COOKIE}{}", token(16))
}

/// A From or To tag: at least 32 random bits (RFC 3261 19.3); we use 64.
pub fn tag() -> String {
    token(11)
}

/// A Call-ID: globally unique, 128 random bits (RFC 3261 8.1.1.4).
pub fn call_id() -> String {
    token(22)
}

/// `len` characters of [0-9A-Za-z], about 5.95 bits each.
fn token(len: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut random = vec![0u8; len];
    if getrandom::fill(&mut random).is_err() {
        random.iter_mut().for_each(|b| *b = fastrand::u8(..));
    }
    random
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}
