//! Where every session of the engine lives (ARCHITECTURE "Who owns a
//! session"): passive sessions wait here until a connection presents their
//! session-id; then, like active sessions, they are owned by one shard, and
//! commands are routed there. It is consulted only when a session is
//! created, claimed, routed or closed, never per frame.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::{Lookup, MsrpUri, SessionConfig, SessionDirectory};

enum Entry {
    Pending {
        config: Box<SessionConfig>,
        expires: Instant,
        tag: Option<Arc<str>>,
    },
    Owned {
        shard: usize,
        tag: Option<Arc<str>>,
        /// The session's own URI: a request naming its session-id under
        /// another URI names no session (481), not this one (506). Its text,
        /// copied: a parsed URI from a request would be a slice of a read
        /// buffer and keep the whole buffer alive as long as the session.
        uri: Box<str>,
    },
}

/// Where a command for a session goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Pending,
    Shard(usize),
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum DirectoryError {
    #[error("session-id {0} is already in use")]
    Duplicate(String),
    #[error("{0} passive sessions are already waiting for their connection (pending-sessions-max)")]
    TooManyPending(usize),
}

#[derive(Default)]
struct Entries {
    map: HashMap<String, Entry>,
    pending: usize,
}

impl Entries {
    fn remove(&mut self, session_id: &str) -> Option<Entry> {
        let entry = self.map.remove(session_id);
        if let Some(Entry::Pending { .. }) = entry {
            self.pending -= 1;
        }
        entry
    }
}

pub(crate) struct Directory {
    entries: Mutex<Entries>,
    pending_max: usize,
    pending_expiry: Duration,
}

impl Directory {
    pub fn new(pending_max: usize, pending_expiry: Duration) -> Directory {
        Directory {
            entries: Mutex::new(Entries::default()),
            pending_max,
            pending_expiry,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // A shard that panicked holding the lock left the map consistent:
        // every update is a single insert or remove.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn insert_pending(
        &self,
        session_id: &str,
        config: SessionConfig,
        tag: Option<Arc<str>>,
        now: Instant,
    ) -> Result<(), DirectoryError> {
        let mut entries = self.lock();
        if entries.map.contains_key(session_id) {
            return Err(DirectoryError::Duplicate(session_id.into()));
        }
        if entries.pending >= self.pending_max {
            return Err(DirectoryError::TooManyPending(self.pending_max));
        }
        entries.pending += 1;
        entries.map.insert(
            session_id.into(),
            Entry::Pending {
                config: Box::new(config),
                expires: now + self.pending_expiry,
                tag,
            },
        );
        Ok(())
    }

    pub fn insert_owned(
        &self,
        session_id: &str,
        shard: usize,
        uri: MsrpUri,
        tag: Option<Arc<str>>,
    ) -> Result<(), DirectoryError> {
        let mut entries = self.lock();
        if entries.map.contains_key(session_id) {
            return Err(DirectoryError::Duplicate(session_id.into()));
        }
        let uri = uri.as_str().into();
        entries
            .map
            .insert(session_id.into(), Entry::Owned { shard, uri, tag });
        Ok(())
    }

    /// The application's tag of a session, as given at its creation.
    pub fn tag(&self, session_id: &str) -> Option<Arc<str>> {
        match self.lock().map.get(session_id)? {
            Entry::Pending { tag, .. } | Entry::Owned { tag, .. } => tag.clone(),
        }
    }

    pub fn route(&self, session_id: &str) -> Option<Route> {
        self.router().route(session_id)
    }

    /// Routes many sessions under one lock (a batch's sends); shards
    /// claiming sessions wait meanwhile, so hold it only between awaits.
    pub fn router(&self) -> Router<'_> {
        Router { entries: self.lock() }
    }

    /// Forgets a session; true when it was there.
    pub fn remove(&self, session_id: &str) -> bool {
        self.lock().remove(session_id).is_some()
    }

    /// Removes the pending sessions whose peer did not connect in time;
    /// each with its tag.
    pub fn expire(&self, now: Instant) -> Vec<(String, Option<Arc<str>>)> {
        let mut entries = self.lock();
        let expired: Vec<(String, Option<Arc<str>>)> = entries
            .map
            .iter()
            .filter_map(|(id, e)| match e {
                Entry::Pending { expires, tag, .. } if *expires <= now => Some((id.clone(), tag.clone())),
                _ => None,
            })
            .collect();
        for (id, _) in &expired {
            entries.remove(id);
        }
        expired
    }

    pub fn pending_count(&self) -> usize {
        self.lock().pending
    }

    pub fn pending_expiry(&self) -> Duration {
        self.pending_expiry
    }
}

pub(crate) struct Router<'a> {
    entries: MutexGuard<'a, Entries>,
}

impl Router<'_> {
    pub fn route(&self, session_id: &str) -> Option<Route> {
        self.entries.map.get(session_id).map(|entry| match entry {
            Entry::Pending { .. } => Route::Pending,
            Entry::Owned { shard, .. } => Route::Shard(*shard),
        })
    }
}

/// One shard's view, handed to [`Connection::handle_input_with`](crate::Connection::handle_input_with):
/// a pending session named by its peer is claimed for this shard; the
/// connection then reports it ([`Event::SessionClaimed`](crate::Event::SessionClaimed),
/// or [`Event::ClaimRefused`](crate::Event::ClaimRefused)), and the shard adopts it.
pub(crate) struct Claims<'a> {
    pub directory: &'a Directory,
    pub shard: usize,
}

impl SessionDirectory for Claims<'_> {
    fn lookup(&mut self, uri: &MsrpUri, from_peer: &dyn Fn(&SessionConfig) -> bool) -> Lookup {
        let Some(session_id) = uri.session_id() else {
            return Lookup::Unknown;
        };
        let mut entries = self.directory.lock();
        let entries = &mut *entries;
        match entries.map.get_mut(session_id) {
            None => Lookup::Unknown,
            // Rare (a second connection naming a bound session): parse then.
            Some(Entry::Owned { uri: own, .. }) if own.parse::<MsrpUri>().is_ok_and(|own| own == *uri) => {
                Lookup::BoundElsewhere
            }
            Some(Entry::Owned { .. }) => Lookup::Unknown,
            Some(Entry::Pending { config, .. }) if config.local_uri != *uri => Lookup::Unknown,
            // Someone who knows the URI but is not the peer must not bind the
            // session for their connection, nor change it in any way.
            Some(Entry::Pending { config, .. }) if !from_peer(config) => Lookup::Forbidden,
            Some(entry @ Entry::Pending { .. }) => {
                let owned = Entry::Owned {
                    shard: self.shard,
                    uri: uri.as_str().into(),
                    tag: None,
                };
                let Entry::Pending { config, tag, .. } = std::mem::replace(entry, owned) else {
                    unreachable!("matched Pending above")
                };
                if let Entry::Owned { tag: owned_tag, .. } = entry {
                    *owned_tag = tag;
                }
                entries.pending -= 1;
                Lookup::Claim(config)
            }
        }
    }
}
