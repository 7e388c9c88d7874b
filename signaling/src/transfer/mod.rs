//! File transfers an application asks for — over MSML (`dialogstart` with
//! a `transfer`, RFC 5707 and Dialogic's MOML transfer module) or over
//! REST (`POST /v1/transfers`) — on the application layer: each send is an
//! outbound 1PCC session of the transfer's owner, so its calls, deliveries
//! and hangups are ordinary session events too.
//!
//! [`machine`] decides the order (sans-IO); `run.rs` is the shell.
//! [`Transfers`] holds the running ones, at most `transfers_max`.

pub mod machine;
mod run;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

pub use machine::{End, Failure, Retry};
use machine::{ObjectPlan, Plan};
pub use run::millis;

use crate::app::SharedApp;
use crate::serve::Signal;

/// Where an object goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dest {
    /// A new SIP+MSRP session from `offerer` to `answerer`, announcing the
    /// file as `file_name` (MSML's `xmsrp://`).
    Msrp {
        offerer: String,
        answerer: String,
        file_name: String,
    },
    /// A local copy.
    File(PathBuf),
}

impl Dest {
    /// MSML's `dest` (also REST's): an `xmsrp://` dest announces the last
    /// segment of its `file` (RFC 5547 6: no directories in a
    /// file-selector name).
    pub fn from_msml(dest: &crate::msml::Dest) -> Dest {
        match dest {
            crate::msml::Dest::Xmsrp(x) => Dest::Msrp {
                offerer: x.offerer.clone(),
                answerer: x.answerer.clone(),
                file_name: x.selector_name(),
            },
            crate::msml::Dest::File(path) => Dest::File(path.clone()),
        }
    }
}

/// One object to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectSpec {
    pub objid: String,
    /// A local file, checked readable when the transfer starts (unused
    /// when `body` is given).
    pub src: PathBuf,
    /// Inline content (MSML `messageobj`), sent as one message instead of
    /// a file.
    pub body: Option<bytes::Bytes>,
    pub dest: Dest,
    pub content_type: String,
    pub iterate: u32,
    pub retry: Retry,
    pub wait: bool,
    pub delete: bool,
    /// For a `file` destination.
    pub overwrite: bool,
    pub append: bool,
}

/// A transfer as asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferSpec {
    pub objects: Vec<ObjectSpec>,
    pub iterate: u32,
    pub maxtime: Option<Duration>,
    pub delay: Option<Duration>,
    /// The tag of the sessions it makes.
    pub tag: Option<String>,
}

impl TransferSpec {
    fn plan(&self, delete_before_event: bool) -> Plan {
        Plan {
            objects: self
                .objects
                .iter()
                .map(|o| ObjectPlan {
                    objid: o.objid.clone(),
                    iterate: o.iterate,
                    retry: o.retry,
                    wait: o.wait,
                    delete: o.delete,
                })
                .collect(),
            iterate: self.iterate,
            maxtime: self.maxtime,
            delay: self.delay,
            delete_before_event,
        }
    }
}

/// What a transfer tells whoever asked for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    ObjectDone {
        objid: String,
        duration: Duration,
    },
    Finished {
        end: End,
        duration: Duration,
        /// The object that ended it, or the last one done.
        objid: Option<String>,
        failure: Option<Failure>,
    },
}

/// A future a [`Sink`] returns.
pub type Noted<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

/// Where a transfer's notes go (MSML INFOs, REST events), in order: the
/// transfer waits for each before the next.
pub trait Sink: Send + 'static {
    /// A note of transfer `id`.
    fn note<'a>(&'a mut self, id: &'a str, note: Note) -> Noted<'a>;
}

/// Which local files a transfer may read (and, with `delete`, remove):
/// those under a `--files-dir`; with none configured, any file, but only
/// for an asker that is trusted (REST without tokens, on loopback).
#[derive(Clone, Debug, Default)]
pub struct FilesPolicy {
    /// The canonical source must be under one of them.
    pub dirs: Vec<PathBuf>,
}

impl FilesPolicy {
    /// The canonical path of a source that exists, is a file, may be
    /// read, and is allowed (`open`: any, when no `dirs` are set).
    pub fn check(&self, src: &Path, open: bool) -> Result<PathBuf, TransferError> {
        let path = std::fs::canonicalize(src)
            .map_err(|e| TransferError::Source(format!("{}: {e}", src.display())))?;
        if !path.is_file() {
            return Err(TransferError::Source(format!("{} is not a file", path.display())));
        }
        std::fs::File::open(&path).map_err(|e| TransferError::Source(format!("{}: {e}", path.display())))?;
        if self.dirs.is_empty() {
            return match open {
                true => Ok(path),
                false => Err(TransferError::Forbidden(
                    "local files are sent only from a --files-dir, and none is configured".into(),
                )),
            };
        }
        let inside = self
            .dirs
            .iter()
            .filter_map(|dir| std::fs::canonicalize(dir).ok())
            .any(|dir| path.starts_with(dir));
        match inside {
            true => Ok(path),
            false => Err(TransferError::Forbidden(format!(
                "{} is not under a --files-dir",
                path.display()
            ))),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TransferError {
    /// The source is missing or unreadable.
    #[error("{0}")]
    Source(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0} transfers run, the configured maximum")]
    Full(usize),
}

#[derive(Clone, Debug)]
pub struct TransferConfig {
    /// Transfers running at once.
    pub transfers_max: usize,
    pub files: FilesPolicy,
    /// Delete a source before its `objectdone` event (else after it).
    pub delete_before_event: bool,
    /// Headers of every outbound INVITE (e.g. IMS `P-Preferred-Service`).
    pub headers: Vec<(String, String)>,
}

impl Default for TransferConfig {
    fn default() -> TransferConfig {
        TransferConfig {
            transfers_max: 1000,
            files: FilesPolicy::default(),
            delete_before_event: false,
            headers: Vec::new(),
        }
    }
}

/// A transfer as `GET /v1/transfers/{id}` shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TransferStatus {
    pub id: String,
    /// `running`, or how it ended (`transfer.complete`, ...).
    pub state: String,
    pub objects: usize,
}

struct Entry {
    owner: Arc<str>,
    stop: mpsc::Sender<()>,
    state: &'static str,
    objects: usize,
}

#[derive(Default)]
struct Registry {
    entries: HashMap<String, Entry>,
    /// Ended ones, oldest first, kept for `status` (bounded like running).
    ended: std::collections::VecDeque<String>,
    running: usize,
    next: u64,
}

/// The running transfers.
#[derive(Clone)]
pub struct Transfers {
    registry: Arc<Mutex<Registry>>,
    signal: Signal,
    app: SharedApp,
    config: Arc<TransferConfig>,
}

impl Transfers {
    pub fn new(signal: Signal, app: SharedApp, config: TransferConfig) -> Transfers {
        Transfers {
            registry: Arc::new(Mutex::new(Registry::default())),
            signal,
            app,
            config: Arc::new(config),
        }
    }

    pub fn config(&self) -> &TransferConfig {
        &self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks every source (before anything is sent) and starts the
    /// transfer for application `owner`; its id. `trusted`: the asker may
    /// name any file while no `--files-dir` is configured.
    pub fn start(
        &self,
        owner: Arc<str>,
        mut spec: TransferSpec,
        sink: Box<dyn Sink>,
        trusted: bool,
    ) -> Result<String, TransferError> {
        if spec.objects.is_empty() {
            return Err(TransferError::Invalid(
                "a transfer needs at least one object".into(),
            ));
        }
        for object in &mut spec.objects {
            if object.body.is_none() {
                object.src = self.config.files.check(&object.src, trusted)?;
            } else if matches!(object.dest, Dest::File(_)) {
                return Err(TransferError::Invalid(
                    "inline content goes to an MSRP destination only".into(),
                ));
            }
            if object.iterate == 0 {
                return Err(TransferError::Invalid("iterate is at least 1".into()));
            }
        }
        if spec.iterate == 0 {
            return Err(TransferError::Invalid("iterate is at least 1".into()));
        }
        let (stop_tx, stop_rx) = mpsc::channel(1);
        let id = {
            let mut registry = self.lock();
            if registry.running >= self.config.transfers_max {
                return Err(TransferError::Full(self.config.transfers_max));
            }
            registry.next += 1;
            let id = format!("t{:010}", registry.next);
            registry.running += 1;
            registry.entries.insert(
                id.clone(),
                Entry {
                    owner,
                    stop: stop_tx,
                    state: "running",
                    objects: spec.objects.len(),
                },
            );
            id
        };
        tokio::spawn(run::run(self.clone(), id.clone(), spec, sink, stop_rx));
        Ok(id)
    }

    /// Stops a running transfer of `owner`'s (`transfer.terminate`);
    /// `false` when there is none by that id.
    pub fn terminate(&self, owner: &str, id: &str) -> bool {
        let registry = self.lock();
        match registry.entries.get(id) {
            Some(entry) if &*entry.owner == owner && entry.state == "running" => {
                let _ = entry.stop.try_send(());
                true
            }
            _ => false,
        }
    }

    pub fn status(&self, owner: &str, id: &str) -> Option<TransferStatus> {
        let registry = self.lock();
        let entry = registry.entries.get(id).filter(|e| &*e.owner == owner)?;
        Some(TransferStatus {
            id: id.to_string(),
            state: entry.state.to_string(),
            objects: entry.objects,
        })
    }

    fn owner_of(&self, id: &str) -> Arc<str> {
        let registry = self.lock();
        registry
            .entries
            .get(id)
            .map(|e| e.owner.clone())
            .unwrap_or_else(|| Arc::from("default"))
    }

    fn finished(&self, id: &str, end: End) {
        let mut registry = self.lock();
        let kept = self.config.transfers_max.max(1);
        if let Some(entry) = registry.entries.get_mut(id) {
            if entry.state == "running" {
                entry.state = end.name();
                registry.running -= 1;
                registry.ended.push_back(id.to_string());
            }
        }
        while registry.ended.len() > kept {
            if let Some(old) = registry.ended.pop_front() {
                registry.entries.remove(&old);
            }
        }
    }
}
