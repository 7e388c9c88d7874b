//! A dialog (RFC 3261 12): the identifiers, sequence numbers, route set
//! and remote target shared by the requests of one call.

use std::net::{IpAddr, SocketAddr};

use super::endpoint::{Flow, Transport};
use super::message::{Message, MessageBuilder};
use super::method::Method;
use super::name_addr::NameAddr;
use super::uri::{Host, Uri};

/// Call-ID and the two tags (RFC 3261 12: the dialog ID).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DialogId {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
}

impl DialogId {
    /// The dialog an in-dialog request names: our tag is in its To
    /// (RFC 3261 12.2.2).
    pub fn of_request(request: &Message) -> Option<DialogId> {
        Some(DialogId {
            call_id: request.call_id().to_string(),
            local_tag: request.to().tag()?.to_string(),
            remote_tag: request.from().tag().unwrap_or_default().to_string(),
        })
    }
}

#[derive(Clone, Debug)]
pub struct Dialog {
    pub id: DialogId,
    /// The CSeq of our last request in the dialog (RFC 3261 12.2.1.1).
    pub local_seq: u32,
    /// The CSeq of the peer's last request (12.2.2); `None` until one came.
    pub remote_seq: Option<u32>,
    /// From as we send it (our tag in it) and To (the peer's tag).
    pub local: NameAddr,
    pub remote: NameAddr,
    /// The peer's Contact, where in-dialog requests go (12.1.1, 12.2.1.1).
    pub remote_target: Uri,
    /// Record-Route values, in the order our requests must carry them.
    pub route_set: Vec<String>,
    /// The flow the dialog was made on: in-dialog requests use it when
    /// the target is not an address we can reach by ourselves.
    pub flow: Flow,
}

impl Dialog {
    /// The UAS side, made by our 2xx (or 1xx with a tag) to `request`
    /// (RFC 3261 12.1.1): the route set is the Record-Route in order.
    pub fn as_uas(request: &Message, local_tag: &str, flow: Flow) -> Option<Dialog> {
        let remote_target = request.contacts().first()?.uri.clone();
        let mut local = request.to().clone();
        set_tag(&mut local, local_tag);
        Some(Dialog {
            id: DialogId {
                call_id: request.call_id().to_string(),
                local_tag: local_tag.to_string(),
                remote_tag: request.from().tag().unwrap_or_default().to_string(),
            },
            local_seq: 0,
            remote_seq: Some(request.cseq().seq),
            local,
            remote: request.from().clone(),
            remote_target,
            route_set: request
                .header_values("Record-Route")
                .map(str::to_string)
                .collect(),
            flow,
        })
    }

    /// The UAC side, made by a 2xx to our INVITE (RFC 3261 12.1.2): the
    /// route set is the response's Record-Route reversed.
    pub fn as_uac(request: &Message, response: &Message, flow: Flow) -> Option<Dialog> {
        let remote_target = response.contacts().first()?.uri.clone();
        let mut route_set: Vec<String> = response
            .header_values("Record-Route")
            .map(str::to_string)
            .collect();
        route_set.reverse();
        Some(Dialog {
            id: DialogId {
                call_id: request.call_id().to_string(),
                local_tag: request.from().tag()?.to_string(),
                remote_tag: response.to().tag().unwrap_or_default().to_string(),
            },
            local_seq: request.cseq().seq,
            remote_seq: None,
            local: request.from().clone(),
            remote: response.to().clone(),
            remote_target,
            route_set,
            flow,
        })
    }

    /// RFC 3261 12.2.2: a request whose CSeq is lower than the last one is
    /// out of order (answered 500); otherwise it becomes the last.
    pub fn accept_remote_cseq(&mut self, seq: u32) -> bool {
        if self.remote_seq.is_some_and(|last| seq < last) {
            return false;
        }
        self.remote_seq = Some(seq);
        true
    }

    /// A target refresh (re-INVITE, UPDATE) replaces the remote target
    /// with its Contact (RFC 3261 12.2.2, RFC 3311 5.2).
    pub fn refresh_target(&mut self, request: &Message) {
        if let Some(contact) = request.contacts().first() {
            self.remote_target = contact.uri.clone();
        }
    }

    /// A request in the dialog (RFC 3261 12.2.1.1): the Request-URI is the
    /// remote target (a loose route set goes in Route headers); CSeq is
    /// the next, except for ACK, which reuses `ack_seq`.
    pub fn request(&mut self, method: Method, via: &str, ack_seq: Option<u32>) -> MessageBuilder {
        let seq = match ack_seq {
            Some(seq) => seq,
            None => {
                self.local_seq += 1;
                self.local_seq
            }
        };
        let mut builder = MessageBuilder::request(method.clone(), &self.remote_target)
            .header("Via", via)
            .header("Max-Forwards", "70")
            .header("From", &self.local.to_string())
            .header("To", &self.remote.to_string())
            .header("Call-ID", &self.id.call_id)
            .header("CSeq", &format!("{seq} {method}"));
        for route in &self.route_set {
            builder = builder.header("Route", route);
        }
        builder
    }

    /// Where the next in-dialog request goes: the first route or else the
    /// remote target when it names an IP address, else the dialog's flow
    /// (a name would need DNS, RFC 3263, which this endpoint leaves to a
    /// proxy in front of it).
    pub fn next_hop(&self) -> Flow {
        let target = self
            .route_set
            .first()
            .and_then(|route| NameAddr::parse(route).ok().map(|n| n.uri))
            .unwrap_or_else(|| self.remote_target.clone());
        let Uri::Sip(sip) = &target else { return self.flow };
        let ip: IpAddr = match &sip.host {
            Host::V4(ip) => (*ip).into(),
            Host::V6(ip) => (*ip).into(),
            Host::Name(_) => return self.flow,
        };
        // RFC 3261 26.2.2: a sips: target is reached over TLS only, never
        // downgraded by a transport parameter.
        let transport = match sip.param("transport").cloned().flatten().as_deref() {
            _ if sip.secure => Transport::Tls,
            Some(t) => Transport::from_param(t).unwrap_or(self.flow.transport),
            None => self.flow.transport,
        };
        // RFC 3261 19.1.2: 5061 is the default port of sips: and of TLS.
        let default_port = if transport == Transport::Tls { 5061 } else { 5060 };
        let remote = SocketAddr::new(ip, sip.port.unwrap_or(default_port));
        let conn = (transport == self.flow.transport && remote == self.flow.remote)
            .then_some(self.flow.conn)
            .flatten();
        Flow {
            transport,
            remote,
            conn,
        }
    }
}

/// Sets (or replaces) the `tag` parameter of a From or To value.
pub fn set_tag(name_addr: &mut NameAddr, tag: &str) {
    name_addr
        .params
        .retain(|(name, _)| !name.eq_ignore_ascii_case("tag"));
    name_addr.params.push(("tag".into(), Some(tag.into())));
}
