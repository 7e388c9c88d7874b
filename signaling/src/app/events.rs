//! The events applications watch: one bounded, numbered log shared by
//! every listener (SSE streams resume from it by `Last-Event-ID`), and a
//! broadcast of each new event to the live ones. An event is serialised
//! once, when it happens; every SSE stream and webhook sends those bytes.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// What happened, as applications name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// An inbound INVITE waits for an answer (or was auto-answered).
    Incoming,
    /// Our INVITE is on its way.
    Calling,
    /// The session's MSRP side exists (1PCC: the dialog is up).
    Connected,
    /// A message was received.
    Message,
    /// Octets of a large message moved.
    Progress,
    /// A message we sent was accepted by the peer.
    Delivered,
    /// A message we sent did not make it.
    Failed,
    /// The session ended.
    Hangup,
    /// A file transfer (`POST /v1/transfers`, MSML `transfer`) finished an
    /// object or ended; its `session` is the transfer's id.
    Transfer,
}

impl EventType {
    pub const ALL: [EventType; 9] = [
        EventType::Incoming,
        EventType::Calling,
        EventType::Connected,
        EventType::Message,
        EventType::Progress,
        EventType::Delivered,
        EventType::Failed,
        EventType::Hangup,
        EventType::Transfer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EventType::Incoming => "incoming",
            EventType::Calling => "calling",
            EventType::Connected => "connected",
            EventType::Message => "message",
            EventType::Progress => "progress",
            EventType::Delivered => "delivered",
            EventType::Failed => "failed",
            EventType::Hangup => "hangup",
            EventType::Transfer => "transfer",
        }
    }

    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// One event, as every listener gets it.
#[derive(Debug)]
pub struct AppEvent {
    /// Its number in the log: SSE's `id`, the webhook's `X-Msrp-Event-Id`.
    pub seq: u64,
    pub app: Arc<str>,
    pub session: String,
    pub tag: Option<String>,
    pub kind: EventType,
    /// The JSON document (`{"id", "type", "session", "tag", "time", ...}`).
    pub json: Bytes,
}

/// Which events a listener wants; an empty list matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventFilter {
    #[serde(default)]
    pub sessions: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub types: Vec<EventType>,
}

impl EventFilter {
    pub fn matches(&self, event: &AppEvent) -> bool {
        (self.types.is_empty() || self.types.contains(&event.kind))
            && (self.sessions.is_empty() || self.sessions.contains(&event.session))
            && (self.tags.is_empty()
                || event
                    .tag
                    .as_ref()
                    .is_some_and(|tag| self.tags.iter().any(|t| t == tag)))
    }
}

/// The bounded log and the broadcast of new events.
pub struct EventLog {
    capacity: usize,
    ring: VecDeque<Arc<AppEvent>>,
    next_seq: u64,
    live: broadcast::Sender<Arc<AppEvent>>,
    /// Events that fell off the log's end.
    pub evicted: u64,
}

impl EventLog {
    /// `capacity` events are kept for resumption; a live listener that
    /// falls `capacity` behind is told so and resumes from the log.
    pub fn new(capacity: usize) -> EventLog {
        let capacity = capacity.max(1);
        let (live, _) = broadcast::channel(capacity);
        EventLog {
            capacity,
            ring: VecDeque::with_capacity(capacity.min(4096)),
            next_seq: 1,
            live,
            evicted: 0,
        }
    }

    /// Records an event; `fields` (a struct or map: a JSON object) are the
    /// type's own, written after the common ones. The document is written
    /// once, straight from the typed fields: events come at the engine's
    /// message rate.
    pub fn push(
        &mut self,
        app: &Arc<str>,
        session: &str,
        tag: Option<&str>,
        kind: EventType,
        time_ms: u64,
        fields: &impl Serialize,
    ) -> Arc<AppEvent> {
        use std::io::Write as _;
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut json = Vec::with_capacity(192);
        // Writing to a Vec cannot fail; a string is escaped by serde_json.
        let _ = write!(json, "{{\"id\":{seq},\"type\":\"{}\",\"session\":", kind.name());
        let _ = serde_json::to_writer(&mut json, session);
        if let Some(tag) = tag {
            json.extend_from_slice(b",\"tag\":");
            let _ = serde_json::to_writer(&mut json, tag);
        }
        let _ = write!(json, ",\"time\":{time_ms}");
        let start = json.len();
        match serde_json::to_writer(&mut json, fields) {
            // `{...}` becomes `,...}`; `{}` leaves only its `}`.
            Ok(()) if json.len() - start > 2 && json[start] == b'{' => json[start] = b',',
            _ => {
                json.truncate(start);
                json.push(b'}');
            }
        }
        let event = Arc::new(AppEvent {
            seq,
            app: app.clone(),
            session: session.to_string(),
            tag: tag.map(str::to_string),
            kind,
            json: Bytes::from(json),
        });
        if self.ring.len() == self.capacity {
            self.ring.pop_front();
            self.evicted += 1;
        }
        self.ring.push_back(event.clone());
        // No receiver is not an error: nobody listens live.
        let _ = self.live.send(event.clone());
        event
    }

    /// A receiver of every event from now on.
    pub fn listen(&self) -> broadcast::Receiver<Arc<AppEvent>> {
        self.live.subscribe()
    }

    /// The logged events after `seq` that `keep` wants, at most `limit`;
    /// `true` when some after `seq` were already evicted (a gap).
    pub fn since(
        &self,
        seq: u64,
        limit: usize,
        keep: impl Fn(&AppEvent) -> bool,
    ) -> (Vec<Arc<AppEvent>>, bool) {
        let first = self.ring.front().map_or(self.next_seq, |event| event.seq);
        let gap = seq + 1 < first;
        let start = (seq + 1).saturating_sub(first) as usize;
        let events = self
            .ring
            .iter()
            .skip(start)
            .filter(|event| keep(event))
            .take(limit)
            .cloned()
            .collect();
        (events, gap)
    }

    /// The number the next event gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn len(&self) -> usize {
        self.ring.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::{Map, Value};

    fn push(log: &mut EventLog, session: &str, kind: EventType) -> Arc<AppEvent> {
        log.push(&Arc::from("a"), session, Some("t"), kind, 0, &Map::new())
    }

    #[test]
    fn the_document_holds_the_common_fields_then_the_types_own() {
        let mut log = EventLog::new(4);
        let event = log.push(
            &Arc::from("a"),
            "s\"1",
            None,
            EventType::Failed,
            9,
            &serde_json::json!({"reason": "x", "status": 408}),
        );
        let doc: Value = serde_json::from_slice(&event.json).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({"id": 1, "type": "failed", "session": "s\"1", "time": 9, "reason": "x", "status": 408})
        );
        let empty = push(&mut log, "s", EventType::Incoming);
        let doc: Value = serde_json::from_slice(&empty.json).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({"id": 2, "type": "incoming", "session": "s", "tag": "t", "time": 0})
        );
    }

    #[test]
    fn the_log_keeps_its_capacity_and_reports_a_gap() {
        let mut log = EventLog::new(3);
        for _ in 0..5 {
            push(&mut log, "s", EventType::Message);
        }
        assert_eq!(log.len(), 3);
        assert_eq!(log.evicted, 2);
        let (events, gap) = log.since(0, 10, |_| true);
        assert!(gap);
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4, 5]);
        let (events, gap) = log.since(3, 10, |_| true);
        assert!(!gap);
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5]);
        assert!(log.since(5, 10, |_| true).0.is_empty());
    }

    #[test]
    fn a_filter_matches_types_sessions_and_tags() {
        let mut log = EventLog::new(8);
        let event = push(&mut log, "s1", EventType::Delivered);
        let json: Value = serde_json::from_slice(&event.json).unwrap();
        assert_eq!(json["type"], "delivered");
        assert_eq!(json["session"], "s1");
        assert!(EventFilter::default().matches(&event));
        let only = |types: Vec<EventType>| EventFilter {
            types,
            ..EventFilter::default()
        };
        assert!(only(vec![EventType::Delivered, EventType::Failed]).matches(&event));
        assert!(!only(vec![EventType::Message]).matches(&event));
        let tagged = EventFilter {
            tags: vec!["other".into()],
            ..EventFilter::default()
        };
        assert!(!tagged.matches(&event));
        let session = EventFilter {
            sessions: vec!["s1".into()],
            ..EventFilter::default()
        };
        assert!(session.matches(&event));
    }
}
