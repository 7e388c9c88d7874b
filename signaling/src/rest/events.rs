//! `GET /v1/events` (server-sent events, resumable by `Last-Event-ID`
//! from the bounded log) and `/v1/webhooks` (the same events POSTed).
//! A listener that falls behind the live broadcast is caught up from the
//! log; one that falls behind the log is told with a `gap` event.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures_util::Stream;
use tokio::sync::broadcast::{self, error::RecvError};

use super::auth::{ApiJson, ApiQuery, Caller};
use super::error::{ApiError, ErrorBody};
use super::types::EventParams;
use super::webhooks::{WebhookInfo, WebhookSpec, Webhooks};
use super::RestState;
use crate::app::{self, AppEvent, EventFilter, EventType, SharedApp};

/// Events taken from the log per catch-up step.
const CATCH_UP: usize = 1024;

fn list(value: Option<String>) -> Vec<String> {
    value
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn filter_of(params: EventParams) -> Result<EventFilter, ApiError> {
    let types = list(params.types)
        .iter()
        .map(|name| {
            EventType::parse(name)
                .ok_or_else(|| ApiError::field("type", format!("`{name}` is not an event type")))
        })
        .collect::<Result<_, _>>()?;
    Ok(EventFilter {
        sessions: list(params.session),
        tags: list(params.tag),
        types,
    })
}

struct Listener {
    state: RestState,
    app: Arc<str>,
    filter: EventFilter,
    live: broadcast::Receiver<Arc<AppEvent>>,
    pending: VecDeque<Arc<AppEvent>>,
    /// The last event seen (sent or filtered out).
    last: u64,
    /// Catching up from the log before reading live again.
    behind: bool,
}

impl Listener {
    fn wants(&self, event: &AppEvent) -> bool {
        *event.app == *self.app && self.filter.matches(event)
    }

    /// Takes the next logged events after `last`; a `gap` event when some
    /// were already evicted.
    fn catch_up(&mut self) -> Option<Event> {
        let app = app::lock(&self.state.app);
        let (events, gap) = app.events.since(self.last, CATCH_UP, |e| *e.app == *self.app);
        let first_kept = events.first().map(|e| e.seq);
        let next_seq = app.events.next_seq();
        drop(app);
        self.behind = events.len() == CATCH_UP;
        let gap_event = gap.then(|| {
            self.state.sse_gaps.fetch_add(1, Ordering::Relaxed);
            let to = first_kept.unwrap_or(next_seq);
            Event::default()
                .event("gap")
                .data(format!("{{\"after\":{},\"resumed_at\":{to}}}", self.last))
        });
        for event in events {
            self.last = event.seq;
            if self.filter.matches(&event) {
                self.pending.push_back(event);
            }
        }
        if !self.behind {
            self.last = self.last.max(next_seq - 1);
        }
        gap_event
    }

    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(sse(&event));
            }
            if self.behind {
                if let Some(gap) = self.catch_up() {
                    return Some(gap);
                }
                continue;
            }
            match self.live.recv().await {
                Ok(event) if event.seq <= self.last => {}
                Ok(event) => {
                    self.last = event.seq;
                    if self.wants(&event) {
                        return Some(sse(&event));
                    }
                }
                Err(RecvError::Lagged(_)) => self.behind = true,
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.state.sse_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

fn sse(event: &AppEvent) -> Event {
    Event::default()
        .id(event.seq.to_string())
        .event(event.kind.name())
        .data(String::from_utf8_lossy(&event.json))
}

/// The application's events as they happen: `id` is the event number
/// (send it back as `Last-Event-ID` to resume), `event` its type, `data`
/// its JSON.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventParams,
        ("Last-Event-ID" = Option<u64>, Header, description = "resume after this event")),
    responses(
        (status = 200, description = "text/event-stream", content_type = "text/event-stream", body = String),
        (status = 400, description = "a filter is malformed", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn get_events(
    State(state): State<RestState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<EventParams>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let filter = filter_of(params)?;
    let resume = match headers.get("last-event-id") {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| ApiError::bad_request("Last-Event-ID: an event number"))?,
        ),
        None => None,
    };
    let (live, next_seq) = {
        let app = app::lock(&state.app);
        (app.events.listen(), app.events.next_seq())
    };
    state.sse_streams.fetch_add(1, Ordering::Relaxed);
    let keepalive = state.settings.sse_keepalive;
    let mut listener = Listener {
        state,
        app: caller.0,
        filter,
        live,
        pending: VecDeque::new(),
        last: next_seq - 1,
        behind: false,
    };
    if let Some(after) = resume {
        listener.last = after.min(next_seq - 1);
        listener.behind = true;
    }
    let stream = futures_util::stream::unfold(listener, |mut listener| async move {
        let event = listener.next().await?;
        Some((Ok(event), listener))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(keepalive)))
}

/// Hands every event to the webhooks, catching up from the log when the
/// broadcast ran ahead; never waits on a webhook (`Webhooks::publish`).
pub(super) async fn feed_webhooks(app: SharedApp, webhooks: Webhooks) {
    let (mut live, mut last) = {
        let app = app::lock(&app);
        (app.events.listen(), app.events.next_seq() - 1)
    };
    loop {
        match live.recv().await {
            Ok(event) if event.seq <= last => {}
            Ok(event) => {
                last = event.seq;
                webhooks.publish(&event);
            }
            Err(RecvError::Lagged(_)) => loop {
                let (events, _) = app::lock(&app).events.since(last, CATCH_UP, |_| true);
                let done = events.len() < CATCH_UP;
                for event in events {
                    last = event.seq;
                    webhooks.publish(&event);
                }
                if done {
                    break;
                }
            },
            Err(RecvError::Closed) => return,
        }
    }
}

/// Registers a webhook: the application's events matching `filter` are
/// POSTed to `url`, signed with `secret` (HMAC-SHA256 in
/// `X-Msrp-Signature`).
#[utoipa::path(post, path = "/v1/webhooks", tag = "events", request_body = WebhookSpec,
    responses(
        (status = 201, description = "registered", body = WebhookInfo),
        (status = 400, description = "the url is not usable", body = ErrorBody),
        (status = 503, description = "too many webhooks", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn post_webhook(
    State(state): State<RestState>,
    caller: Caller,
    ApiJson(spec): ApiJson<WebhookSpec>,
) -> Result<(StatusCode, Json<WebhookInfo>), ApiError> {
    use super::webhooks::WebhookError;
    match state.webhooks.add(caller.0.clone(), spec) {
        Ok(info) => Ok((StatusCode::CREATED, Json(info))),
        Err(WebhookError::Url(why)) => Err(ApiError::field("url", why)),
        Err(full @ WebhookError::Full(_)) => Err(ApiError::unavailable(full.to_string())),
    }
}

#[utoipa::path(get, path = "/v1/webhooks", tag = "events",
    responses((status = 200, description = "the application's webhooks", body = Vec<WebhookInfo>)),
    security(("bearer" = [])))]
pub(super) async fn list_webhooks(State(state): State<RestState>, caller: Caller) -> Json<Vec<WebhookInfo>> {
    Json(state.webhooks.list(&caller.0))
}

#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "events",
    params(("id" = String, Path, description = "webhook id")),
    responses((status = 200, description = "the webhook and its counters", body = WebhookInfo), (status = 404, description = "no such webhook", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn get_webhook(
    State(state): State<RestState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookInfo>, ApiError> {
    state
        .webhooks
        .get(&caller.0, &id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("webhook", &id))
}

#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "events",
    params(("id" = String, Path, description = "webhook id")),
    responses((status = 204, description = "removed"), (status = 404, description = "no such webhook", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn delete_webhook(
    State(state): State<RestState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    match state.webhooks.remove(&caller.0, &id) {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found("webhook", &id)),
    }
}
