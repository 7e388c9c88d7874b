//! The sessions applications see: one per call (1PCC) or per REST-made
//! offer/answer (3PCC), owned by one application, with its MSRP legs in
//! the engine. Closed sessions stay readable until `closed_kept` newer
//! ones push them out.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use crate::sdp::{Answer, NegotiatedMedia, Offer};
use crate::sip::CallId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// We signal (SIP UAS or UAC).
    FirstParty,
    /// The application signals; we only answer or offer SDP.
    ThirdParty,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// An inbound INVITE waits for the application.
    Incoming,
    /// Our INVITE is out.
    Calling,
    /// 3PCC: our offer waits for the application's remote SDP.
    Offered,
    /// The MSRP sessions exist.
    Connected,
    Closed,
}

impl State {
    pub const ALL: [State; 5] = [
        State::Incoming,
        State::Calling,
        State::Offered,
        State::Connected,
        State::Closed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            State::Incoming => "incoming",
            State::Calling => "calling",
            State::Offered => "offered",
            State::Connected => "connected",
            State::Closed => "closed",
        }
    }

    pub fn parse(name: &str) -> Option<State> {
        State::ALL.into_iter().find(|state| state.name() == name)
    }
}

/// Who ended a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndedBy {
    /// The application (DELETE, reject).
    Local,
    /// The peer (BYE, CANCEL, a failure response, its MSRP side).
    Remote,
    /// msrp-signal or the engine (timeout, shutdown, engine gone).
    System,
}

impl EndedBy {
    pub fn name(self) -> &'static str {
        match self {
            EndedBy::Local => "local",
            EndedBy::Remote => "remote",
            EndedBy::System => "system",
        }
    }
}

/// One MSRP session of the engine that belongs to an application session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leg {
    pub engine_session: String,
    pub local_path: Vec<String>,
    pub remote_path: Vec<String>,
    /// What the peer takes (its `a=accept-types`, `a=max-size`).
    pub remote_accept_types: Vec<String>,
    pub remote_max_size: Option<u64>,
    /// What we take.
    pub accept_types: Vec<String>,
    pub we_connect: bool,
    /// What the peer's RFC 5547 push offer announced (name, size, hash):
    /// the file is checked against it when it arrives (`received`).
    pub pushed: Option<crate::sdp::FileSelector>,
}

impl Leg {
    pub fn of(media: &NegotiatedMedia, engine_session: String) -> Leg {
        Leg {
            engine_session,
            local_path: media.local.path.clone(),
            remote_path: media.remote.path.clone(),
            remote_accept_types: media.remote.accept_types.clone(),
            remote_max_size: media.remote.max_size,
            accept_types: media.local.accept_types.clone(),
            we_connect: media.we_connect,
            pushed: super::received::expected_of(media),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub messages_in: u64,
    pub messages_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub delivered: u64,
    pub failed: u64,
}

#[derive(Debug)]
pub struct AppSession {
    pub id: String,
    pub app: Arc<str>,
    pub mode: Mode,
    pub direction: Direction,
    pub state: State,
    pub tag: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// The call in the user agent (1PCC).
    pub call: Option<CallId>,
    /// SIP Call-ID (1PCC).
    pub sip_call_id: Option<String>,
    pub local_sdp: Option<String>,
    pub remote_sdp: Option<String>,
    pub legs: Vec<Leg>,
    pub counters: Counters,
    pub created_ms: u64,
    pub ended: Option<(EndedBy, String)>,
    /// 3PCC: our offer until the application's answer completes it.
    pub offer: Option<Offer>,
    /// 3PCC: our answer (kept for the record).
    pub answer: Option<Answer>,
}

impl AppSession {
    pub fn new(
        id: String,
        app: Arc<str>,
        mode: Mode,
        direction: Direction,
        state: State,
        now_ms: u64,
    ) -> Self {
        AppSession {
            id,
            app,
            mode,
            direction,
            state,
            tag: None,
            from: None,
            to: None,
            call: None,
            sip_call_id: None,
            local_sdp: None,
            remote_sdp: None,
            legs: Vec::new(),
            counters: Counters::default(),
            created_ms: now_ms,
            ended: None,
            offer: None,
            answer: None,
        }
    }

    /// The engine session messages go to: the first MSRP leg.
    pub fn first_leg(&self) -> Option<&Leg> {
        self.legs.first()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0} sessions are open, the configured maximum")]
pub struct SessionsFull(pub usize);

/// What `list` is asked for.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub state: Option<State>,
    pub tag: Option<String>,
    /// Ids after this one (the previous page's `next`).
    pub after: Option<String>,
    pub limit: usize,
}

/// The table: by id (ordered, so pages are stable), by engine session, by
/// call.
pub struct Sessions {
    by_id: BTreeMap<String, AppSession>,
    by_engine: HashMap<String, String>,
    by_call: HashMap<CallId, String>,
    closed: VecDeque<String>,
    open: usize,
    open_max: usize,
    closed_kept: usize,
    next: u64,
    salt: u32,
}

impl Sessions {
    pub fn new(open_max: usize, closed_kept: usize, salt: u32) -> Sessions {
        Sessions {
            by_id: BTreeMap::new(),
            by_engine: HashMap::new(),
            by_call: HashMap::new(),
            closed: VecDeque::new(),
            open: 0,
            open_max,
            closed_kept,
            next: 1,
            salt,
        }
    }

    /// A new id: ordered by creation, not guessable across restarts.
    pub fn new_id(&mut self) -> String {
        let id = format!("s{:010}{:08x}", self.next, self.salt);
        self.next += 1;
        id
    }

    pub fn open(&self) -> usize {
        self.open
    }

    pub fn insert(&mut self, session: AppSession) -> Result<(), SessionsFull> {
        if self.open >= self.open_max {
            return Err(SessionsFull(self.open_max));
        }
        self.open += 1;
        if let Some(call) = session.call {
            self.by_call.insert(call, session.id.clone());
        }
        for leg in &session.legs {
            self.by_engine
                .insert(leg.engine_session.clone(), session.id.clone());
        }
        self.by_id.insert(session.id.clone(), session);
        Ok(())
    }

    /// The application's session `id`; another application's is `None`.
    pub fn get(&self, app: &str, id: &str) -> Option<&AppSession> {
        self.by_id.get(id).filter(|s| &*s.app == app)
    }

    pub fn get_mut(&mut self, app: &str, id: &str) -> Option<&mut AppSession> {
        self.by_id.get_mut(id).filter(|s| &*s.app == app)
    }

    /// Any application's: for the shell, which knows the id it holds.
    pub fn by_id(&self, id: &str) -> Option<&AppSession> {
        self.by_id.get(id)
    }

    pub fn by_id_mut(&mut self, id: &str) -> Option<&mut AppSession> {
        self.by_id.get_mut(id)
    }

    pub fn id_of_call(&self, call: CallId) -> Option<&str> {
        self.by_call.get(&call).map(String::as_str)
    }

    pub fn id_of_engine(&self, engine_session: &str) -> Option<&str> {
        self.by_engine.get(engine_session).map(String::as_str)
    }

    pub fn set_call(&mut self, id: &str, call: CallId) {
        if let Some(session) = self.by_id.get_mut(id) {
            session.call = Some(call);
            self.by_call.insert(call, id.to_string());
        }
    }

    pub fn add_legs(&mut self, id: &str, legs: Vec<Leg>) {
        let Some(session) = self.by_id.get_mut(id) else {
            return;
        };
        for leg in &legs {
            self.by_engine.insert(leg.engine_session.clone(), id.to_string());
        }
        session.legs.extend(legs);
    }

    /// Ends `id`; `false` when it was unknown or already closed.
    pub fn close(&mut self, id: &str, by: EndedBy, reason: &str) -> bool {
        let Some(session) = self.by_id.get_mut(id) else {
            return false;
        };
        if session.state == State::Closed {
            return false;
        }
        session.state = State::Closed;
        session.ended = Some((by, reason.to_string()));
        session.offer = None;
        if let Some(call) = session.call {
            self.by_call.remove(&call);
        }
        // Its legs stay known while it is kept: the engine's last words on
        // them (outcomes, aborted messages) come after the session ended.
        self.open -= 1;
        self.closed.push_back(id.to_string());
        while self.closed.len() > self.closed_kept {
            if let Some(old) = self.closed.pop_front().and_then(|old| self.by_id.remove(&old)) {
                for leg in &old.legs {
                    self.by_engine.remove(&leg.engine_session);
                }
            }
        }
        true
    }

    /// One page of the application's sessions, oldest first, and the
    /// cursor of the next page.
    pub fn list(&self, app: &str, query: &ListQuery) -> (Vec<&AppSession>, Option<String>) {
        use std::ops::Bound;
        let start = match &query.after {
            Some(after) => Bound::Excluded(after.clone()),
            None => Bound::Unbounded,
        };
        let limit = query.limit.max(1);
        let mut page = Vec::new();
        for session in self.by_id.range((start, Bound::Unbounded)).map(|(_, s)| s) {
            if &*session.app != app
                || query.state.is_some_and(|state| state != session.state)
                || query
                    .tag
                    .as_ref()
                    .is_some_and(|tag| session.tag.as_ref() != Some(tag))
            {
                continue;
            }
            if page.len() == limit {
                let next = page.last().map(|s: &&AppSession| s.id.clone());
                return (page, next);
            }
            page.push(session);
        }
        (page, None)
    }

    /// The open sessions of `mode`.
    pub fn open_ids(&self, mode: Mode) -> Vec<String> {
        self.by_id
            .values()
            .filter(|s| s.mode == mode && s.state != State::Closed)
            .map(|s| s.id.clone())
            .collect()
    }

    /// Open sessions per state, for metrics.
    pub fn by_state(&self) -> [(State, u64); 5] {
        let mut counts = State::ALL.map(|state| (state, 0u64));
        for session in self.by_id.values() {
            if let Some(entry) = counts.iter_mut().find(|(state, _)| *state == session.state) {
                entry.1 += 1;
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(table: &mut Sessions, app: &str) -> String {
        let id = table.new_id();
        let s = AppSession::new(
            id.clone(),
            Arc::from(app),
            Mode::ThirdParty,
            Direction::Inbound,
            State::Offered,
            0,
        );
        table.insert(s).unwrap();
        id
    }

    #[test]
    fn an_application_sees_only_its_own_sessions() {
        let mut table = Sessions::new(10, 10, 7);
        let a = session(&mut table, "a");
        let b = session(&mut table, "b");
        assert!(table.get("a", &a).is_some());
        assert!(table.get("a", &b).is_none());
        let (page, next) = table.list(
            "b",
            &ListQuery {
                limit: 10,
                ..ListQuery::default()
            },
        );
        assert_eq!(page.iter().map(|s| &s.id).collect::<Vec<_>>(), [&b]);
        assert!(next.is_none());
    }

    #[test]
    fn pages_follow_creation_order_and_closed_ones_are_bounded() {
        let mut table = Sessions::new(3, 1, 7);
        let ids: Vec<String> = (0..3).map(|_| session(&mut table, "a")).collect();
        assert_eq!(
            table.insert(AppSession::new(
                "x".into(),
                Arc::from("a"),
                Mode::ThirdParty,
                Direction::Inbound,
                State::Offered,
                0
            )),
            Err(SessionsFull(3))
        );
        let query = ListQuery {
            limit: 2,
            ..ListQuery::default()
        };
        let (page, next) = table.list("a", &query);
        assert_eq!(page.len(), 2);
        assert_eq!(next.as_deref(), Some(ids[1].as_str()));
        let (page, next) = table.list(
            "a",
            &ListQuery {
                after: next,
                ..query.clone()
            },
        );
        assert_eq!(page[0].id, ids[2]);
        assert!(next.is_none());
        assert!(table.close(&ids[0], EndedBy::Local, "bye"));
        assert!(!table.close(&ids[0], EndedBy::Local, "bye"));
        assert!(
            table.get("a", &ids[0]).is_some(),
            "a closed session stays readable"
        );
        assert!(table.close(&ids[1], EndedBy::Local, "bye"));
        assert!(
            table.get("a", &ids[0]).is_none(),
            "only closed_kept closed sessions are kept"
        );
        assert_eq!(table.open(), 1);
        let closed = ListQuery {
            state: Some(State::Closed),
            limit: 10,
            ..ListQuery::default()
        };
        assert_eq!(table.list("a", &closed).0.len(), 1);
    }
}
