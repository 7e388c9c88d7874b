//! Webhooks: an application's events, POSTed to HTTP endpoints it registered.
//!
//! Each webhook has a bounded queue and a delivery task of its own, so a slow
//! or dead endpoint delays nobody else: [`Webhooks::publish`] only
//! `try_send`s, and a full queue loses the event for that webhook alone
//! (counted). The task sends one event at a time, in order, on one
//! keep-alive HTTP/1.1 connection, retrying with backoff. A webhook whose
//! events keep failing is dropped: it stops, and stays listed as `dropped`
//! until the application removes it.
//!
//! The request is a `POST` of the event's JSON document with
//! - `Content-Type: application/json`, `User-Agent: msrp-signal`, `Host`;
//! - `X-Msrp-Event-Id: {id}`, the event's number (SSE's `id`), and
//!   `X-Msrp-Event-Type: {type}`;
//! - when the webhook has a secret, `X-Msrp-Signature: sha256={hex}`, the
//!   lower-case hex HMAC-SHA256 (RFC 2104) of the body keyed with the secret.
//!   A receiver verifies it by computing HMAC-SHA256(secret, body) over the
//!   body's bytes exactly as received (before any JSON parsing), hex-encoding
//!   it and comparing it with the header's value after `sha256=` in constant
//!   time (e.g. `hmac::Mac::verify_slice` on the decoded bytes); a mismatch
//!   means the request is not ours or was altered.
//!
//! Any 2xx answer is a delivery. Delivery is at least once: an attempt that
//! timed out may have been processed, so a receiver dedupes on
//! `X-Msrp-Event-Id`.

mod client;
mod retry;
pub(crate) mod target;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::AbortHandle;

use crate::app::events::{AppEvent, EventFilter};
use client::Client;
use retry::{Retries, Verdict};

/// Warnings about one webhook's failed or lost events, at most one per this.
const WARN_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Webhooks per application, dropped ones included until removed.
    pub webhooks_max: usize,
    /// Events waiting per webhook; a full queue drops the new event for that
    /// webhook (counted). Zero means one.
    pub queue_max: usize,
    /// Tries per event. Zero means one.
    pub attempts_max: u32,
    /// The first retry's wait, doubling per retry up to `backoff_max`, jittered.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Per attempt: connecting, sending and the whole response.
    pub timeout: Duration,
    /// Events in a row that exhausted their attempts before the webhook is
    /// dropped. Zero means one.
    pub failures_max: u32,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            webhooks_max: 16,
            queue_max: 1024,
            attempts_max: 5,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
            failures_max: 3,
        }
    }
}

/// A webhook as an application registers it.
#[derive(Clone, Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    /// `http://HOST[:PORT][/PATH]`; HOST is an IP literal or a DNS name,
    /// resolved at each connect.
    pub url: String,
    /// The events wanted; empty lists match everything.
    #[serde(default)]
    pub filter: EventFilter,
    /// Signs each request: `X-Msrp-Signature: sha256={hex}`, the lower-case
    /// hex HMAC-SHA256(secret, body). Verify it over the raw body bytes,
    /// comparing in constant time. Never shown back.
    #[serde(default)]
    pub secret: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookState {
    /// Delivering.
    Active,
    /// Given up after `failures_max` failed events in a row; remove it to
    /// free its place.
    Dropped,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookInfo {
    pub id: String,
    pub url: String,
    pub filter: EventFilter,
    pub state: WebhookState,
    /// Events answered with a 2xx.
    pub delivered: u64,
    /// Requests tried, retries included.
    pub attempts: u64,
    /// Events that used all their attempts.
    pub failed: u64,
    /// Events lost to a full queue, and those queued when the webhook was dropped.
    pub dropped: u64,
    /// Events accepted and not yet delivered or failed (the one in flight included).
    pub backlog: u64,
    /// Why the latest failed attempt failed.
    pub last_error: Option<String>,
}

/// All webhooks together, for `/metrics`. `webhooks` and `backlog` are now;
/// the rest count since start, removed webhooks included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WebhookStats {
    /// Active webhooks.
    pub webhooks: u64,
    pub delivered: u64,
    pub attempts: u64,
    /// Attempts after an event's first.
    pub retries: u64,
    pub failed: u64,
    /// Events lost to a full queue.
    pub dropped_full: u64,
    pub webhooks_dropped: u64,
    pub backlog: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    #[error("url: {0}")]
    Url(String),
    #[error("{0} webhooks are registered, the configured maximum")]
    Full(usize),
}

/// The webhooks of every application: a shared handle whose lock is never
/// held across an await.
#[derive(Clone)]
pub struct Webhooks {
    shared: Arc<Shared>,
}

struct Shared {
    config: WebhookConfig,
    registry: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    /// By application; each list in registration order.
    apps: HashMap<Arc<str>, Vec<Hook>>,
    ids_issued: u64,
    totals: WebhookStats,
}

struct Hook {
    info: WebhookInfo,
    /// `None` once dropped.
    queue: Option<mpsc::Sender<Arc<AppEvent>>>,
    task: AbortHandle,
    lost_warned_at: Option<Instant>,
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhooks")
            .field("config", &self.shared.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        // The registry's counters stay consistent under a panic elsewhere.
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Webhooks {
    pub fn new(config: WebhookConfig) -> Webhooks {
        Webhooks {
            shared: Arc::new(Shared {
                config,
                registry: Mutex::new(Registry::default()),
            }),
        }
    }

    /// Validates and registers `spec` for `app`, and spawns its delivery
    /// task on the current tokio runtime (so it panics outside one).
    pub fn add(&self, app: Arc<str>, spec: WebhookSpec) -> Result<WebhookInfo, WebhookError> {
        let target = target::parse(&spec.url)?;
        let config = &self.shared.config;
        let mut registry = self.shared.lock();
        let registered = registry.apps.get(&app).map_or(0, Vec::len);
        if registered >= config.webhooks_max {
            return Err(WebhookError::Full(config.webhooks_max));
        }
        registry.ids_issued += 1;
        let info = WebhookInfo {
            id: format!("wh-{}", registry.ids_issued),
            url: spec.url,
            filter: spec.filter,
            state: WebhookState::Active,
            delivered: 0,
            attempts: 0,
            failed: 0,
            dropped: 0,
            backlog: 0,
            last_error: None,
        };
        let (queue, events) = mpsc::channel(config.queue_max.max(1));
        let delivery = Delivery {
            shared: Arc::downgrade(&self.shared),
            app: app.clone(),
            id: info.id.clone(),
            url: info.url.clone(),
            config: config.clone(),
        };
        let secret = spec.secret.map(String::into_bytes);
        let task = tokio::spawn(delivery.run(Client::new(target), secret, events)).abort_handle();
        registry.apps.entry(app).or_default().push(Hook {
            info: info.clone(),
            queue: Some(queue),
            task,
            lost_warned_at: None,
        });
        Ok(info)
    }

    /// Stops the webhook's task and discards its queue; `false` if `app` has
    /// no such webhook.
    pub fn remove(&self, app: &str, id: &str) -> bool {
        let mut registry = self.shared.lock();
        let Some(hooks) = registry.apps.get_mut(app) else {
            return false;
        };
        let Some(at) = hooks.iter().position(|hook| hook.info.id == id) else {
            return false;
        };
        hooks.remove(at);
        if hooks.is_empty() {
            registry.apps.remove(app);
        }
        true
    }

    pub fn get(&self, app: &str, id: &str) -> Option<WebhookInfo> {
        let registry = self.shared.lock();
        registry
            .apps
            .get(app)?
            .iter()
            .find(|hook| hook.info.id == id)
            .map(|hook| hook.info.clone())
    }

    /// The application's webhooks, dropped ones included, in registration order.
    pub fn list(&self, app: &str) -> Vec<WebhookInfo> {
        let registry = self.shared.lock();
        registry
            .apps
            .get(app)
            .map(|hooks| hooks.iter().map(|hook| hook.info.clone()).collect())
            .unwrap_or_default()
    }

    /// Queues `event` for every active webhook of its application that wants
    /// it. Never blocks or awaits: a full queue loses the event for that
    /// webhook, counted in its `dropped`.
    pub fn publish(&self, event: &Arc<AppEvent>) {
        let mut registry = self.shared.lock();
        let Registry { apps, totals, .. } = &mut *registry;
        let Some(hooks) = apps.get_mut(&*event.app) else {
            return;
        };
        for hook in hooks {
            let Some(queue) = &hook.queue else { continue };
            if !hook.info.filter.matches(event) {
                continue;
            }
            let why = match queue.try_send(event.clone()) {
                Ok(()) => {
                    hook.info.backlog += 1;
                    continue;
                }
                Err(TrySendError::Full(_)) => {
                    totals.dropped_full += 1;
                    "webhook queue full: events are lost"
                }
                // Only a runtime shut down under it ends a task whose hook still holds its queue.
                Err(TrySendError::Closed(_)) => "webhook delivery task is gone: events are lost",
            };
            hook.info.dropped += 1;
            if warn_due(&mut hook.lost_warned_at) {
                tracing::warn!(
                    app = %event.app, webhook = %hook.info.id, url = %hook.info.url,
                    lost = hook.info.dropped, "{why}"
                );
            }
        }
    }

    pub fn stats(&self) -> WebhookStats {
        let registry = self.shared.lock();
        let mut stats = registry.totals;
        for hook in registry.apps.values().flatten() {
            stats.webhooks += u64::from(hook.info.state == WebhookState::Active);
            stats.backlog += hook.info.backlog;
        }
        stats
    }
}

/// What one webhook's delivery task knows of its webhook. It holds the
/// registry weakly: the last [`Webhooks`] handle gone, its hooks (and their
/// queues) go, and the task ends.
struct Delivery {
    shared: Weak<Shared>,
    app: Arc<str>,
    id: String,
    url: String,
    config: WebhookConfig,
}

impl Delivery {
    async fn run(
        self,
        mut client: Client,
        secret: Option<Vec<u8>>,
        mut events: mpsc::Receiver<Arc<AppEvent>>,
    ) {
        let mut retries = Retries::default();
        let mut failed_warned_at: Option<Instant> = None;
        while let Some(event) = events.recv().await {
            let signature = secret
                .as_deref()
                .map(|secret| client::signature(secret, &event.json));
            loop {
                let outcome =
                    tokio::time::timeout(self.config.timeout, client.post(&event, signature.as_deref()));
                let error = match outcome.await {
                    Ok(Ok(status)) if status.is_success() => None,
                    Ok(Ok(status)) => Some(format!("HTTP {status}")),
                    Ok(Err(error)) => Some(error),
                    Err(_) => Some(format!("no response within {:?}", self.config.timeout)),
                };
                let retry = retries.retrying();
                let verdict = retries.after_attempt(&self.config, error.is_none(), fastrand::f64());
                let Some(lost) = self.record(retry, verdict, error.clone()) else {
                    return;
                };
                match verdict {
                    Verdict::Delivered => break,
                    Verdict::RetryAfter(wait) => tokio::time::sleep(wait).await,
                    Verdict::Failed => {
                        if warn_due(&mut failed_warned_at) {
                            tracing::warn!(
                                app = %self.app, webhook = %self.id, url = %self.url, event = event.seq,
                                error = error.as_deref().unwrap_or_default(),
                                "webhook event failed after {} attempts", self.config.attempts_max.max(1)
                            );
                        }
                        break;
                    }
                    Verdict::Drop => {
                        tracing::warn!(
                            app = %self.app, webhook = %self.id, url = %self.url,
                            error = error.as_deref().unwrap_or_default(), lost,
                            "webhook dropped: {} events in a row failed", self.config.failures_max.max(1)
                        );
                        return;
                    }
                }
            }
        }
    }

    /// Counts an attempt; the events lost with the webhook when it is
    /// dropped, or `None` when the webhook is gone (removed) and the task ends.
    fn record(&self, retry: bool, verdict: Verdict, error: Option<String>) -> Option<u64> {
        let shared = self.shared.upgrade()?;
        let mut registry = shared.lock();
        let Registry { apps, totals, .. } = &mut *registry;
        let hook = apps
            .get_mut(&self.app)?
            .iter_mut()
            .find(|hook| hook.info.id == self.id)?;
        let info = &mut hook.info;
        info.attempts += 1;
        totals.attempts += 1;
        totals.retries += u64::from(retry);
        if error.is_some() {
            info.last_error = error;
        }
        match verdict {
            Verdict::RetryAfter(_) => return Some(0),
            Verdict::Delivered => {
                info.delivered += 1;
                totals.delivered += 1;
            }
            Verdict::Failed | Verdict::Drop => {
                info.failed += 1;
                totals.failed += 1;
            }
        }
        debug_assert!(info.backlog >= 1, "the event in flight is in the backlog");
        info.backlog = info.backlog.saturating_sub(1);
        if verdict != Verdict::Drop {
            return Some(0);
        }
        let lost = info.backlog;
        info.state = WebhookState::Dropped;
        info.dropped += lost;
        info.backlog = 0;
        hook.queue = None;
        totals.webhooks_dropped += 1;
        Some(lost)
    }
}

/// Whether a rate-limited warning is due now, and if so, marks it given.
fn warn_due(last: &mut Option<Instant>) -> bool {
    let now = Instant::now();
    let due = last.is_none_or(|at| now.duration_since(at) >= WARN_INTERVAL);
    if due {
        *last = Some(now);
    }
    due
}
