//! Where every session of the engine lives (ARCHITECTURE "Who owns a
//! session"): passive sessions wait here until a connection presents their
//! session-id; then, like active sessions, they are owned by one shard, and
//! commands are routed there. It is consulted only when a session is
//! created, claimed, routed or closed, never per frame.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::tls::{check_client, Fingerprint};
use crate::{Lookup, MsrpUri, SessionConfig, SessionDirectory};

/// A session-id as the map's key, kept inside its session's URI: one
/// allocation holds both, as the engine holds a million of them. The text
/// is copied: a parsed URI from a request would be a slice of a read buffer
/// and keep the whole buffer alive as long as the session.
struct IdKey {
    /// The URI, the session-id a part of it (`id_start > 0`); or, should
    /// the URI not carry that session-id, the session-id then the URI.
    text: Box<str>,
    id_start: u32,
    id_end: u32,
}

impl IdKey {
    fn new(session_id: &str, uri: &MsrpUri) -> IdKey {
        let text = uri.as_str();
        let within = uri.session_id().filter(|id| *id == session_id && !id.is_empty());
        match within {
            Some(id) => {
                // A slice of `text`: its offset in it.
                let start = id.as_ptr() as usize - text.as_ptr() as usize;
                IdKey {
                    text: text.into(),
                    id_start: start as u32,
                    id_end: (start + id.len()) as u32,
                }
            }
            None => IdKey {
                text: format!("{session_id}{text}").into_boxed_str(),
                id_start: 0,
                id_end: session_id.len() as u32,
            },
        }
    }

    fn session_id(&self) -> &str {
        &self.text[self.id_start as usize..self.id_end as usize]
    }

    /// The session's own URI, as written.
    fn uri(&self) -> &str {
        match self.id_start {
            0 => &self.text[self.id_end as usize..],
            _ => &self.text,
        }
    }
}

impl Borrow<str> for IdKey {
    fn borrow(&self) -> &str {
        self.session_id()
    }
}

impl Hash for IdKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.session_id().hash(state);
    }
}

impl PartialEq for IdKey {
    fn eq(&self, other: &IdKey) -> bool {
        self.session_id() == other.session_id()
    }
}

impl Eq for IdKey {}

/// A passive session waiting for its connection (boxed: few at a time).
struct Pending {
    config: Box<SessionConfig>,
    expires: Instant,
    tag: Option<Arc<str>>,
    /// msrps: the peer's certificate as its SDP named it (RFC 8122 5); the
    /// connection that claims the session must have presented it.
    fingerprint: Option<Fingerprint>,
}

enum Entry {
    Pending(Box<Pending>),
    /// The key's URI is the session's own: a request naming its session-id
    /// under another URI names no session (481), not this one (506).
    Owned {
        shard: u32,
        tag: Option<Arc<str>>,
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
    map: HashMap<IdKey, Entry>,
    pending: usize,
}

impl Entries {
    fn remove(&mut self, session_id: &str) -> Option<Entry> {
        let entry = self.map.remove(session_id);
        if let Some(Entry::Pending(_)) = entry {
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
        (tag, fingerprint): (Option<Arc<str>>, Option<Fingerprint>),
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
        let key = IdKey::new(session_id, &config.local_uri);
        let pending = Pending {
            config: Box::new(config),
            expires: now + self.pending_expiry,
            tag,
            fingerprint,
        };
        entries.map.insert(key, Entry::Pending(Box::new(pending)));
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
        let owned = Entry::Owned {
            shard: shard as u32,
            tag,
        };
        entries.map.insert(IdKey::new(session_id, &uri), owned);
        Ok(())
    }

    /// The application's tag of a session, as given at its creation.
    pub fn tag(&self, session_id: &str) -> Option<Arc<str>> {
        match self.lock().map.get(session_id)? {
            Entry::Pending(pending) => pending.tag.clone(),
            Entry::Owned { tag, .. } => tag.clone(),
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

    /// Changes a pending session's peer accept-types and max-size; false
    /// when it is not pending (owned by a shard, or unknown).
    pub fn update_pending_peer(
        &self,
        session_id: &str,
        accept_types: Vec<String>,
        max_size: Option<u64>,
    ) -> bool {
        match self.lock().map.get_mut(session_id) {
            Some(Entry::Pending(pending)) => {
                pending.config.remote_accept_types = accept_types;
                pending.config.remote_max_size = max_size;
                true
            }
            _ => false,
        }
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
                Entry::Pending(p) if p.expires <= now => Some((id.session_id().to_owned(), p.tag.clone())),
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
            Entry::Pending(_) => Route::Pending,
            Entry::Owned { shard, .. } => Route::Shard(*shard as usize),
        })
    }
}

/// A pending session a connection claimed without the certificate its
/// peer's SDP named: the directory forgot it; the shard fails it and closes
/// the connection.
pub(crate) struct Untrusted {
    pub session_id: String,
    pub tag: Option<Arc<str>>,
    pub reason: String,
}

/// One shard's view, handed to [`Connection::handle_input_with`](crate::Connection::handle_input_with):
/// a pending session named by its peer is claimed for this shard; the
/// connection then reports it ([`Event::SessionClaimed`](crate::Event::SessionClaimed),
/// or [`Event::ClaimRefused`](crate::Event::ClaimRefused)), and the shard adopts it.
pub(crate) struct Claims<'a> {
    pub directory: &'a Directory,
    pub shard: usize,
    /// The connection is carried over TLS.
    pub secure: bool,
    /// The certificate (DER) the connection's TLS peer presented.
    pub peer_certificate: Option<&'a [u8]>,
    /// Requests that named a session of the other transport.
    pub wrong_transport: &'a mut u64,
    /// Sessions this connection claimed without their certificate.
    pub untrusted: &'a mut Vec<Untrusted>,
}

impl SessionDirectory for Claims<'_> {
    fn lookup(&mut self, uri: &MsrpUri, from_peer: &dyn Fn(&SessionConfig) -> bool) -> Lookup {
        let Some(session_id) = uri.session_id() else {
            return Lookup::Unknown;
        };
        let mut entries = self.directory.lock();
        let entries = &mut *entries;
        let Some((key, entry)) = entries.map.get_key_value(session_id) else {
            return Lookup::Unknown;
        };
        let checked = match entry {
            // Rare (a second connection naming a bound session): parse then.
            Entry::Owned { .. } => {
                return match key.uri().parse::<MsrpUri>().is_ok_and(|own| own == *uri) {
                    true => Lookup::BoundElsewhere,
                    false => Lookup::Unknown,
                };
            }
            Entry::Pending(p) if p.config.local_uri != *uri => return Lookup::Unknown,
            // RFC 4975 14: an msrps session is never carried in the clear,
            // and an msrp one never over TLS; to the wrong connection the
            // session does not exist (481).
            Entry::Pending(p) if p.config.local_uri.is_secure() != self.secure => {
                *self.wrong_transport += 1;
                return Lookup::Unknown;
            }
            // Someone who knows the URI but is not the peer must not bind the
            // session for their connection, nor change it in any way.
            Entry::Pending(p) if !from_peer(&p.config) => return Lookup::Forbidden,
            Entry::Pending(p) => match &p.fingerprint {
                Some(expected) => {
                    check_client(expected, self.peer_certificate).map_err(|reason| (reason, p.tag.clone()))
                }
                None => Ok(()),
            },
        };
        // RFC 4975 14.4: the negotiated peer but not the certificate its SDP
        // named; the session is torn down (403 to the request), as a
        // client's check tears it down.
        if let Err((reason, tag)) = checked {
            entries.remove(session_id);
            self.untrusted.push(Untrusted {
                session_id: session_id.to_owned(),
                tag,
                reason,
            });
            return Lookup::Forbidden;
        }
        let Some(entry) = entries.map.get_mut(session_id) else {
            unreachable!("found above, under the same lock")
        };
        let owned = Entry::Owned {
            shard: self.shard as u32,
            tag: None,
        };
        let Entry::Pending(pending) = std::mem::replace(entry, owned) else {
            unreachable!("matched Pending above")
        };
        let Pending { config, tag, .. } = *pending;
        if let Entry::Owned { tag: owned_tag, .. } = entry {
            *owned_tag = tag;
        }
        entries.pending -= 1;
        Lookup::Claim(config)
    }
}
