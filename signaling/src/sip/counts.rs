//! SIP messages counted by direction, method and status: the endpoint
//! counts each message it parsed and each it sends, for `/metrics`
//! ("transactions by method and status").

use std::collections::HashMap;

use super::message::Message;

/// Which way a message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Way {
    In,
    Out,
}

impl Way {
    pub fn name(self) -> &'static str {
        match self {
            Way::In => "in",
            Way::Out => "out",
        }
    }
}

/// The methods counted by name; any other is `OTHER`, so the table stays
/// small whatever a peer sends.
const METHODS: [&str; 14] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "INFO",
    "UPDATE",
    "PRACK",
    "MESSAGE",
    "SUBSCRIBE",
    "NOTIFY",
    "REFER",
    "PUBLISH",
];

fn method_name(method: &[u8]) -> &'static str {
    METHODS
        .iter()
        .find(|known| known.as_bytes().eq_ignore_ascii_case(method))
        .copied()
        .unwrap_or("OTHER")
}

/// Counts by (way, method, status); status 0 is a request.
#[derive(Clone, Debug, Default)]
pub struct MessageCounts {
    counts: HashMap<(Way, &'static str, u16), u64>,
}

impl MessageCounts {
    pub fn count_parsed(&mut self, way: Way, message: &Message) {
        let method = method_name(message.cseq().method.as_str().as_bytes());
        self.add(way, method, message.status().unwrap_or(0));
    }

    /// A message we wrote: its start line and CSeq are read from the
    /// octets (RFC 3261 7.1, 7.2, 20.16).
    pub fn count_raw(&mut self, way: Way, bytes: &[u8]) {
        let mut lines = bytes
            .split(|&b| b == b'\n')
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
        let Some(start) = lines.next() else { return };
        let status = match start.strip_prefix(b"SIP/2.0 ") {
            Some(rest) => std::str::from_utf8(rest.get(..3).unwrap_or_default())
                .ok()
                .and_then(|code| code.parse().ok())
                .unwrap_or(0),
            None => 0,
        };
        let mut method = "OTHER";
        for line in lines.take_while(|line| !line.is_empty()) {
            if line.len() > 5 && line[..5].eq_ignore_ascii_case(b"cseq:") {
                if let Some(name) = line[5..]
                    .split(|b| b.is_ascii_whitespace())
                    .rfind(|t| !t.is_empty())
                {
                    method = method_name(name);
                }
                break;
            }
        }
        self.add(way, method, status);
    }

    fn add(&mut self, way: Way, method: &'static str, status: u16) {
        *self.counts.entry((way, method, status)).or_default() += 1;
    }

    /// (way, method, status or 0 for requests, count).
    pub fn iter(&self) -> impl Iterator<Item = (Way, &'static str, u16, u64)> + '_ {
        self.counts
            .iter()
            .map(|(&(way, method, status), &count)| (way, method, status, count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_messages_are_counted_by_method_and_status() {
        let mut counts = MessageCounts::default();
        counts.count_raw(
            Way::Out,
            b"SIP/2.0 200 OK\r\nVia: x\r\nCSeq: 1 INVITE\r\n\r\nbody CSeq: 2 BYE",
        );
        counts.count_raw(Way::Out, b"BYE sip:a@b SIP/2.0\r\ncseq:   2   bye\r\n\r\n");
        counts.count_raw(Way::Out, b"FOO sip:a@b SIP/2.0\r\nCSeq: 2 FOO\r\n\r\n");
        let mut all: Vec<_> = counts.iter().collect();
        all.sort();
        assert_eq!(
            all,
            [
                (Way::Out, "BYE", 0, 1),
                (Way::Out, "INVITE", 200, 1),
                (Way::Out, "OTHER", 0, 1)
            ]
        );
    }
}
