//! The application layer every REST dialect sits on: the sessions each
//! application owns, what happens to them as events, and the counters.
//! Sans-IO: the shell passes the time in and holds an [`App`] behind one
//! lock that no one keeps across an await.
//!
//! The JSON routes (`crate::rest`) and, later, the XMS XML dialect are
//! views of this; neither owns a session.

pub mod auth;
pub mod cpim;
pub mod events;
pub mod received;
pub mod sessions;

use std::sync::Arc;

use base64::Engine as _;
use msrp_engine::control::{EngineEvent, TransferDirection};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::sip::CallId;
use cpim::MessageClass;
pub use events::{AppEvent, EventFilter, EventLog, EventType};
pub use sessions::{
    AppSession, Counters, Direction, EndedBy, Leg, ListQuery, Mode, Sessions, SessionsFull, State,
};

/// The application layer's bounds and choices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppConfig {
    /// Events kept for SSE resumption (and a live listener's lag bound).
    pub events_kept: usize,
    /// Open sessions, all applications together.
    pub sessions_max: usize,
    /// Closed sessions kept readable.
    pub closed_kept: usize,
    /// The application inbound calls belong to.
    pub incoming_app: String,
    /// Where checked pushed files are stored (`--store-dir`).
    pub store_dir: Option<std::path::PathBuf>,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            events_kept: 65_536,
            sessions_max: 100_000,
            closed_kept: 10_000,
            incoming_app: "default".into(),
            store_dir: None,
        }
    }
}

/// Messages by class, in or out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ByClass {
    pub content: u64,
    pub imdn: u64,
    pub is_composing: u64,
}

impl ByClass {
    pub fn add(&mut self, class: MessageClass) {
        match class {
            MessageClass::Content => self.content += 1,
            MessageClass::Imdn => self.imdn += 1,
            MessageClass::IsComposing => self.is_composing += 1,
        }
    }
}

/// Everything counted here, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppCounters {
    pub messages_in: ByClass,
    pub messages_out: ByClass,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub delivered: u64,
    /// Deliveries a success REPORT confirmed (RFC 4975 7.1.2).
    pub reports_in: u64,
    pub failed: u64,
    pub progress: u64,
    /// Engine events about sessions no application owns (already closed).
    pub events_unowned: u64,
    /// Times the engine dropped our event subscription (it fell behind)
    /// or its connection closed: the events meanwhile are lost.
    pub event_streams_lost: u64,
    /// Events a watching task (a transfer) did not take in time.
    pub watch_events_lost: u64,
}

/// The events a watcher of one session may leave unread.
pub const WATCH_DEPTH: usize = 64;

pub struct App {
    pub sessions: Sessions,
    pub events: EventLog,
    pub counters: AppCounters,
    incoming_app: Arc<str>,
    /// Our messages that asked for a success REPORT, until their outcome.
    reports_asked: std::collections::HashSet<u64>,
    /// Sessions an in-process task follows (a transfer), with the channel
    /// their events go to besides the log.
    watchers: std::collections::HashMap<String, tokio::sync::mpsc::Sender<Arc<AppEvent>>>,
    /// Where checked pushed files are stored (`None`: where they were
    /// spooled).
    pub store_dir: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("sessions_open", &self.sessions.open())
            .field("events", &self.events.next_seq())
            .finish()
    }
}

impl App {
    pub fn new(config: &AppConfig, salt: u32) -> App {
        App {
            sessions: Sessions::new(config.sessions_max, config.closed_kept, salt),
            events: EventLog::new(config.events_kept),
            counters: AppCounters::default(),
            incoming_app: Arc::from(config.incoming_app.as_str()),
            reports_asked: std::collections::HashSet::new(),
            watchers: std::collections::HashMap::new(),
            store_dir: config.store_dir.clone(),
        }
    }

    pub fn incoming_app(&self) -> &Arc<str> {
        &self.incoming_app
    }

    /// Records an event of session `id` (its application and tag);
    /// `fields` is a struct or map of the type's own fields.
    pub fn emit(&mut self, id: &str, kind: EventType, now_ms: u64, fields: &impl Serialize) {
        let Some(session) = self.sessions.by_id(id) else {
            return;
        };
        let event = self
            .events
            .push(&session.app, id, session.tag.as_deref(), kind, now_ms, fields);
        if kind == EventType::Progress || self.watchers.is_empty() {
            return;
        }
        if let Some(watcher) = self.watchers.get(id) {
            // A watcher gets a session's turns and outcomes: a handful per
            // session, never near the bound unless it stopped reading.
            if watcher.try_send(event).is_err() {
                self.counters.watch_events_lost += 1;
            }
            if kind == EventType::Hangup {
                self.watchers.remove(id);
            }
        }
    }

    /// A new outbound 1PCC session of `owner` (state `calling`): its id.
    pub fn new_outbound(
        &mut self,
        owner: Arc<str>,
        tag: Option<String>,
        to: String,
        from: Option<String>,
        now_ms: u64,
    ) -> Result<String, SessionsFull> {
        let id = self.sessions.new_id();
        let mut session = AppSession::new(
            id.clone(),
            owner,
            Mode::FirstParty,
            Direction::Outbound,
            State::Calling,
            now_ms,
        );
        session.tag = tag;
        session.to = Some(to);
        session.from = from;
        self.sessions.insert(session)?;
        Ok(id)
    }

    /// The events of session `id` from now on (not `progress`), until its
    /// `hangup`, which is the last. At most `WATCH_DEPTH` wait unread.
    pub fn watch(&mut self, id: &str) -> tokio::sync::mpsc::Receiver<Arc<AppEvent>> {
        let (tx, rx) = tokio::sync::mpsc::channel(WATCH_DEPTH);
        self.watchers.insert(id.to_string(), tx);
        rx
    }

    /// Stops `watch`ing `id` (a watcher ends by itself at the hangup).
    pub fn unwatch(&mut self, id: &str) {
        self.watchers.remove(id);
    }

    /// Events of a session that is no table's: a transfer's (`transfer`).
    pub fn emit_other(
        &mut self,
        owner: &Arc<str>,
        id: &str,
        tag: Option<&str>,
        kind: EventType,
        now_ms: u64,
        fields: &impl Serialize,
    ) {
        self.events.push(owner, id, tag, kind, now_ms, fields);
    }

    /// The session is up: `connected`, with its paths.
    pub fn connected(&mut self, id: &str, legs: Vec<sessions::Leg>, now_ms: u64) {
        self.sessions.add_legs(id, legs);
        let Some(session) = self.sessions.by_id_mut(id) else {
            return;
        };
        session.state = State::Connected;
        let fields = object(json!({
            "local_path": session.first_leg().map(|l| l.local_path.clone()),
            "remote_path": session.first_leg().map(|l| l.remote_path.clone()),
        }));
        self.emit(id, EventType::Connected, now_ms, &fields);
    }

    /// The session ended: `hangup` (once), with who and why.
    pub fn ended(&mut self, id: &str, by: EndedBy, reason: &str, status: Option<u16>, now_ms: u64) {
        if !self.sessions.close(id, by, reason) {
            return;
        }
        let mut fields = object(json!({ "by": by.name(), "reason": reason }));
        if let Some(status) = status {
            fields.insert("status".into(), Value::from(status));
        }
        self.emit(id, EventType::Hangup, now_ms, &fields);
    }

    /// The call of session... ended (the user agent's view of a 1PCC call).
    pub fn call_ended(&mut self, call: CallId, by: EndedBy, reason: &str, status: Option<u16>, now_ms: u64) {
        if let Some(id) = self.sessions.id_of_call(call).map(str::to_string) {
            self.ended(&id, by, reason, status, now_ms);
        }
    }

    /// msrpd went away: its sessions are gone, so every 3PCC session ends
    /// (1PCC ones end with their calls).
    pub fn engine_gone(&mut self, now_ms: u64) {
        for id in self.sessions.open_ids(Mode::ThirdParty) {
            self.ended(&id, EndedBy::System, "the media engine went away", None, now_ms);
        }
    }

    /// A message we handed to the engine (its number `message`).
    pub fn sent(&mut self, id: &str, message: u64, bytes: u64, class: MessageClass, success_report: bool) {
        self.counters.messages_out.add(class);
        self.counters.bytes_out += bytes;
        if success_report {
            self.reports_asked.insert(message);
        }
        if let Some(session) = self.sessions.by_id_mut(id) {
            session.counters.messages_out += 1;
            session.counters.bytes_out += bytes;
        }
    }

    /// What the engine reported about one of our sessions, as the
    /// application's event. `payload` is a small message's body.
    pub fn engine_event(&mut self, event: &EngineEvent, payload: &[u8], now_ms: u64) {
        let Some(id) = self.sessions.id_of_engine(event.session_id()).map(str::to_string) else {
            if let EngineEvent::Delivered { message, .. } | EngineEvent::Failed { message, .. } = event {
                self.reports_asked.remove(message);
            }
            self.counters.events_unowned += 1;
            return;
        };
        match event {
            EngineEvent::MessageReceived {
                message_id,
                content_type,
                size,
                path,
                ..
            } => {
                let (fields, class) =
                    message_fields(message_id, content_type, *size, path.as_deref(), payload);
                self.counters.messages_in.add(class);
                self.counters.bytes_in += size;
                if let Some(session) = self.sessions.by_id_mut(&id) {
                    session.counters.messages_in += 1;
                    session.counters.bytes_in += size;
                }
                self.emit(&id, EventType::Message, now_ms, &fields);
            }
            EngineEvent::Delivered {
                message, message_id, ..
            } => {
                self.counters.delivered += 1;
                if self.reports_asked.remove(message) {
                    self.counters.reports_in += 1;
                }
                if let Some(session) = self.sessions.by_id_mut(&id) {
                    session.counters.delivered += 1;
                }
                let fields = Outcome {
                    message: Number(*message),
                    message_id,
                    status: None,
                    reason: None,
                    bytes_acked: None,
                };
                self.emit(&id, EventType::Delivered, now_ms, &fields);
            }
            EngineEvent::Failed {
                message,
                message_id,
                status,
                reason,
                bytes_acked,
                ..
            } => {
                self.counters.failed += 1;
                self.reports_asked.remove(message);
                if let Some(session) = self.sessions.by_id_mut(&id) {
                    session.counters.failed += 1;
                }
                let fields = Outcome {
                    message: Number(*message),
                    message_id,
                    status: Some(*status),
                    reason: Some(reason),
                    bytes_acked: Some(*bytes_acked),
                };
                self.emit(&id, EventType::Failed, now_ms, &fields);
            }
            EngineEvent::Progress {
                direction,
                message,
                message_id,
                bytes,
                total,
                ..
            } => {
                self.counters.progress += 1;
                let direction = match direction {
                    TransferDirection::Outgoing => "outgoing",
                    TransferDirection::Incoming => "incoming",
                };
                let fields = ProgressFields {
                    direction,
                    message: message.map(Number),
                    message_id: message_id.as_deref(),
                    bytes: *bytes,
                    total: *total,
                };
                self.emit(&id, EventType::Progress, now_ms, &fields);
            }
            EngineEvent::MessageAborted {
                message_id, reason, ..
            } => {
                let fields = object(json!({
                    "message_id": message_id,
                    "direction": "incoming",
                    "reason": reason,
                }));
                self.emit(&id, EventType::Failed, now_ms, &fields);
            }
            EngineEvent::SessionClosed { reason, .. } => {
                // A 1PCC call's BYE is the shell's: it ends the dialog and
                // then the session. A 3PCC session just ends.
                let third_party = self
                    .sessions
                    .by_id_mut(&id)
                    .is_some_and(|s| s.mode == Mode::ThirdParty);
                if third_party {
                    self.ended(
                        &id,
                        EndedBy::Remote,
                        &format!("MSRP session closed: {reason}"),
                        None,
                        now_ms,
                    );
                }
            }
            EngineEvent::SessionReady { .. } => {}
        }
    }
}

/// Our message number as applications see it: a string (JSON numbers
/// past 2^53 lose digits in JavaScript).
struct Number(u64);

impl Serialize for Number {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// `delivered` and `failed`.
#[derive(Serialize)]
struct Outcome<'a> {
    message: Number,
    message_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Option<u16>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes_acked: Option<u64>,
}

#[derive(Serialize)]
struct ProgressFields<'a> {
    direction: &'static str,
    message: Option<Number>,
    message_id: Option<&'a str>,
    bytes: u64,
    total: Option<u64>,
}

/// `message`.
#[derive(Default, Serialize)]
struct MessageFields<'a> {
    message_id: &'a str,
    content_type: &'a str,
    size: u64,
    class: Option<MessageClass>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpim: Option<cpim::Cpim>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    imdn: Option<cpim::Imdn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_composing: Option<cpim::IsComposing>,
}

fn base64_of(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The `message` event's fields: the body inline (text when it is UTF-8
/// text, else base64) or the spool path of a large one; for
/// message/cpim, the CPIM headers and the inner content (RFC 3862) beside
/// the raw body.
fn message_fields<'a>(
    message_id: &'a str,
    content_type: &'a str,
    size: u64,
    path: Option<&'a str>,
    payload: &'a [u8],
) -> (MessageFields<'a>, MessageClass) {
    let mut fields = MessageFields {
        message_id,
        content_type,
        size,
        ..MessageFields::default()
    };
    if path.is_some() {
        let class = cpim::classify(content_type, None);
        fields.path = path;
        fields.class = Some(class);
        return (fields, class);
    }
    let mut inner_type = None;
    let mut body = payload;
    if is_media(content_type, "message/cpim") {
        match cpim::parse(payload) {
            Ok(parsed) => {
                body = &payload[parsed.body_offset.min(payload.len())..];
                match std::str::from_utf8(payload) {
                    Ok(text) => fields.raw = Some(text),
                    Err(_) => fields.raw_body = Some(base64_of(payload)),
                }
                inner_type = parsed.content_type.clone();
                fields.cpim = Some(parsed);
            }
            Err(error) => fields.warning = Some(format!("message/cpim did not parse: {error}")),
        }
    }
    let class = cpim::classify(content_type, inner_type.as_deref());
    fields.class = Some(class);
    match class {
        MessageClass::Imdn => fields.imdn = Some(cpim::parse_imdn(body)),
        MessageClass::IsComposing => fields.is_composing = Some(cpim::parse_is_composing(body)),
        MessageClass::Content => {}
    }
    let textual = inner_type
        .as_deref()
        .map_or_else(|| is_textual(content_type), is_textual);
    match std::str::from_utf8(body) {
        Ok(text) if textual => fields.text = Some(text),
        _ => fields.body = Some(base64_of(body)),
    }
    (fields, class)
}

/// `content_type` names `media` (`type/subtype`), parameters and case
/// aside.
pub fn is_media(content_type: &str, media: &str) -> bool {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .eq_ignore_ascii_case(media)
}

/// `type/subtype`, lower-cased, without parameters.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn is_textual(content_type: &str) -> bool {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .as_bytes();
    let ends = |suffix: &[u8]| {
        media.len() >= suffix.len() && media[media.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
    };
    (media.len() > 5 && media[..5].eq_ignore_ascii_case(b"text/"))
        || ends(b"+xml")
        || ends(b"/xml")
        || ends(b"json")
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Milliseconds since the Unix epoch, for the shell to pass in.
pub fn unix_ms(now: std::time::SystemTime) -> u64 {
    now.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The application layer as the shell shares it: one lock, held only for
/// a table update or an event push, never across an await.
pub type SharedApp = Arc<std::sync::Mutex<App>>;

/// Locks `app`; a panic elsewhere never makes the layer unusable.
pub fn lock(app: &SharedApp) -> std::sync::MutexGuard<'_, App> {
    app.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connected_app() -> (App, String) {
        let mut app = App::new(&AppConfig::default(), 1);
        let id = app.sessions.new_id();
        let mut session = AppSession::new(
            id.clone(),
            Arc::from("a"),
            Mode::ThirdParty,
            Direction::Inbound,
            State::Offered,
            0,
        );
        session.tag = Some("t".into());
        app.sessions.insert(session).unwrap();
        let leg = Leg {
            engine_session: "e1".into(),
            local_path: vec!["msrp://l/e1;tcp".into()],
            remote_path: vec!["msrp://r/x;tcp".into()],
            remote_accept_types: vec!["*".into()],
            remote_max_size: None,
            accept_types: vec!["*".into()],
            we_connect: false,
            pushed: None,
        };
        app.connected(&id, vec![leg], 5);
        (app, id)
    }

    fn last_event(app: &App) -> Value {
        let (events, _) = app.events.since(app.events.next_seq() - 2, 1, |_| true);
        serde_json::from_slice(&events[0].json).unwrap()
    }

    #[test]
    fn engine_events_become_the_sessions_events_with_counters() {
        let (mut app, id) = connected_app();
        assert_eq!(last_event(&app)["type"], "connected");
        let received = EngineEvent::MessageReceived {
            session_id: "e1".into(),
            message_id: "m1".into(),
            content_type: "text/plain".into(),
            size: 5,
            path: None,
            report_held: false,
        };
        app.engine_event(&received, b"hello", 6);
        let event = last_event(&app);
        assert_eq!(
            (event["type"].as_str(), event["text"].as_str()),
            (Some("message"), Some("hello"))
        );
        assert_eq!(
            (event["session"].as_str(), event["tag"].as_str()),
            (Some(id.as_str()), Some("t"))
        );
        app.sent(&id, 7, 3, MessageClass::Content, true);
        app.engine_event(
            &EngineEvent::Delivered {
                session_id: "e1".into(),
                message: 7,
                message_id: "m2".into(),
            },
            b"",
            7,
        );
        assert_eq!(last_event(&app)["message"], "7");
        let counters = app.sessions.get("a", &id).unwrap().counters;
        assert_eq!(
            (
                counters.messages_in,
                counters.bytes_in,
                counters.messages_out,
                counters.delivered
            ),
            (1, 5, 1, 1)
        );
        assert_eq!(app.counters.reports_in, 1);
        app.engine_event(
            &EngineEvent::SessionClosed {
                session_id: "e1".into(),
                reason: "peer went".into(),
            },
            b"",
            8,
        );
        assert_eq!(last_event(&app)["type"], "hangup");
        assert_eq!(app.sessions.get("a", &id).unwrap().state, State::Closed);
        // The engine's last words on a closed session (outcomes, aborted
        // messages) still reach its application.
        let late = EngineEvent::MessageAborted {
            session_id: "e1".into(),
            message_id: "m2".into(),
            reason: "the session closed".into(),
        };
        app.engine_event(&late, b"", 9);
        assert_eq!(app.counters.events_unowned, 0);
        let event = last_event(&app);
        assert_eq!(
            (event["type"].as_str(), event["session"].as_str()),
            (Some("failed"), Some(id.as_str()))
        );
    }

    #[test]
    fn a_watcher_gets_its_sessions_turns_but_not_progress_until_unwatched() {
        let (mut app, id) = connected_app();
        let mut watch = app.watch(&id);
        let delivered = EngineEvent::Delivered {
            session_id: "e1".into(),
            message: 7,
            message_id: "m7".into(),
        };
        let progress = EngineEvent::Progress {
            session_id: "e1".into(),
            direction: TransferDirection::Outgoing,
            message: Some(7),
            message_id: None,
            bytes: 1,
            total: Some(2),
        };
        app.engine_event(&progress, b"", 1);
        app.engine_event(&delivered, b"", 2);
        let event = watch.try_recv().expect("the delivered event");
        assert_eq!(event.kind, EventType::Delivered);
        assert!(watch.try_recv().is_err(), "progress is not a watcher's");
        app.unwatch(&id);
        app.engine_event(&delivered, b"", 3);
        assert!(watch.try_recv().is_err(), "nothing after unwatch");
        assert_eq!(app.counters.watch_events_lost, 0);
    }

    #[test]
    fn a_cpim_message_is_unwrapped_and_classified() {
        let (mut app, _) = connected_app();
        let body = b"From: <im:alice@example.com>\r\nTo: <im:bob@example.com>\r\nNS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: 34jk324j\r\nimdn.Disposition-Notification: positive-delivery\r\n\r\nContent-Type: text/plain\r\n\r\nhi there";
        let received = EngineEvent::MessageReceived {
            session_id: "e1".into(),
            message_id: "m1".into(),
            content_type: "message/cpim".into(),
            size: body.len() as u64,
            path: None,
            report_held: false,
        };
        app.engine_event(&received, body, 6);
        let event = last_event(&app);
        assert_eq!(event["text"], "hi there");
        assert_eq!(event["class"], "content");
        assert_eq!(event["cpim"]["imdn_message_id"], "34jk324j");
        assert_eq!(event["cpim"]["content_type"], "text/plain");
        assert!(event["raw"]
            .as_str()
            .unwrap()
            .starts_with("From: <im:alice@example.com>"));
        let binary = EngineEvent::MessageReceived {
            session_id: "e1".into(),
            message_id: "m2".into(),
            content_type: "application/octet-stream".into(),
            size: 2,
            path: None,
            report_held: false,
        };
        app.engine_event(&binary, &[0, 255], 7);
        assert_eq!(last_event(&app)["body"], "AP8=");
        let composing = EngineEvent::MessageReceived {
            session_id: "e1".into(),
            message_id: "m3".into(),
            content_type: "application/im-iscomposing+xml".into(),
            size: 0,
            path: None,
            report_held: false,
        };
        app.engine_event(&composing, b"<isComposing><state>active</state></isComposing>", 8);
        let event = last_event(&app);
        assert_eq!(event["class"], "is_composing");
        assert_eq!(event["is_composing"]["state"], "active");
        assert_eq!(app.counters.messages_in.is_composing, 1);
    }
}
