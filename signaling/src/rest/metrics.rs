//! `GET /healthz` and `GET /metrics` (OpenMetrics text, by
//! `prometheus-client`): SIP messages by method and status, dialogs,
//! sessions by state, messages by class, bytes, event and webhook
//! backlogs and drops, and the engine's own counters. Read at scrape time
//! from the counters each part keeps; nothing is counted twice.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::error::ErrorBody;
use super::types::Health;
use super::RestState;
use crate::app;

type Labels = Vec<(&'static str, String)>;

/// A registry built for one scrape: each value set once.
struct Scrape {
    registry: Registry,
}

impl Scrape {
    fn counter(&mut self, name: &str, help: &str, values: &[(Labels, u64)]) {
        let family = Family::<Labels, Counter>::default();
        for (labels, value) in values {
            family.get_or_create(labels).inc_by(*value);
        }
        self.registry.register(name, help, family);
    }

    fn gauge(&mut self, name: &str, help: &str, values: &[(Labels, u64)]) {
        let family = Family::<Labels, Gauge>::default();
        for (labels, value) in values {
            family
                .get_or_create(labels)
                .set(i64::try_from(*value).unwrap_or(i64::MAX));
        }
        self.registry.register(name, help, family);
    }
}

fn one(value: u64) -> [(Labels, u64); 1] {
    [(Vec::new(), value)]
}

fn label(name: &'static str, value: &str) -> Labels {
    vec![(name, value.to_string())]
}

/// Is the engine link up?
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "the engine link is up", body = Health), (status = 503, description = "no engine link", body = Health)))]
pub(super) async fn healthz(State(state): State<RestState>) -> (StatusCode, Json<Health>) {
    let engine = state.signal.engine().is_some();
    let sessions = app::lock(&state.app).sessions.open() as u64;
    let status = if engine {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let health = Health {
        status: if engine { "ok" } else { "degraded" },
        engine,
        sessions,
    };
    (status, Json(health))
}

/// Prometheus / OpenMetrics text.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String),
        (status = 401, description = "no valid token", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn get_metrics(State(state): State<RestState>, _caller: super::auth::Caller) -> Response {
    let mut scrape = Scrape {
        registry: Registry::with_prefix("msrp_signal"),
    };
    if let Ok(sip) = state.signal.sip_stats().await {
        let messages: Vec<(Labels, u64)> = sip
            .messages
            .iter()
            .map(|&(direction, method, status, n)| {
                let status = if status == 0 {
                    "request".to_string()
                } else {
                    status.to_string()
                };
                (
                    vec![
                        ("direction", direction.to_string()),
                        ("method", method.to_string()),
                        ("status", status),
                    ],
                    n,
                )
            })
            .collect();
        scrape.counter(
            "sip_messages",
            "SIP messages by direction, CSeq method and status (request for requests)",
            &messages,
        );
        scrape.gauge("dialogs", "calls the user agent holds", &one(sip.ua.calls as u64));
        scrape.counter(
            "calls",
            "calls by direction",
            &[
                (label("direction", "incoming"), sip.ua.incoming_calls),
                (label("direction", "outgoing"), sip.ua.outgoing_calls),
            ],
        );
        scrape.counter(
            "calls_refused",
            "calls refused at the call limit",
            &one(sip.ua.calls_refused),
        );
        scrape.gauge(
            "sip_transactions",
            "live SIP transactions",
            &[
                (label("kind", "server"), sip.endpoint.server_transactions as u64),
                (label("kind", "client"), sip.endpoint.client_transactions as u64),
            ],
        );
        scrape.counter(
            "sip_malformed",
            "SIP messages that did not parse",
            &one(sip.endpoint.messages_malformed),
        );
        scrape.counter(
            "sip_rate_limited",
            "requests refused 503 for their source's rate",
            &one(sip.endpoint.requests_rate_limited),
        );
        scrape.counter(
            "sip_invites_rate_limited",
            "new INVITEs refused 503 for their source's INVITE rate",
            &one(sip.endpoint.invites_rate_limited),
        );
        scrape.counter(
            "calls_refused_per_source",
            "INVITEs refused 503 because their source held dialogs-per-source-max",
            &one(sip.ua.calls_refused_per_source),
        );
        scrape.counter(
            "sip_retransmissions_absorbed",
            "retransmissions a transaction absorbed",
            &one(sip.endpoint.retransmissions_absorbed),
        );
        scrape.counter(
            "sip_tls_handshakes",
            "SIP over TLS handshakes completed (accepted and ours)",
            &one(sip.tls_handshakes),
        );
        scrape.counter(
            "sip_tls_handshake_failures",
            "SIP over TLS handshakes that failed or timed out (a refused certificate, not TLS)",
            &one(sip.tls_handshake_failures),
        );
        scrape.counter(
            "udp_send_dropped",
            "datagrams lost to a full UDP send queue",
            &one(sip.udp_send_queue_full),
        );
    }
    {
        let app = app::lock(&state.app);
        let by_state: Vec<(Labels, u64)> = app
            .sessions
            .by_state()
            .iter()
            .map(|&(s, n)| (label("state", s.name()), n))
            .collect();
        scrape.gauge(
            "sessions",
            "application sessions by state (closed: those still kept)",
            &by_state,
        );
        let c = app.counters;
        let class = |direction: &str, name: &str, n: u64| {
            (
                vec![("direction", direction.to_string()), ("class", name.to_string())],
                n,
            )
        };
        scrape.counter(
            "messages",
            "MSRP messages by direction and class",
            &[
                class("in", "content", c.messages_in.content),
                class("in", "imdn", c.messages_in.imdn),
                class("in", "is_composing", c.messages_in.is_composing),
                class("in", "report", c.reports_in),
                class("out", "content", c.messages_out.content),
                class("out", "imdn", c.messages_out.imdn),
                class("out", "is_composing", c.messages_out.is_composing),
            ],
        );
        scrape.counter(
            "message_bytes",
            "message octets by direction",
            &[
                (label("direction", "in"), c.bytes_in),
                (label("direction", "out"), c.bytes_out),
            ],
        );
        scrape.counter(
            "message_outcomes",
            "outcomes of messages we sent",
            &[
                (label("outcome", "delivered"), c.delivered),
                (label("outcome", "failed"), c.failed),
            ],
        );
        scrape.counter(
            "events",
            "application events recorded",
            &one(app.events.next_seq() - 1),
        );
        scrape.gauge(
            "event_log",
            "events kept for resumption",
            &one(app.events.len() as u64),
        );
        scrape.counter(
            "event_log_evicted",
            "events that fell off the log",
            &one(app.events.evicted),
        );
        scrape.counter(
            "engine_event_streams_lost",
            "times msrpd dropped our event subscription (events lost until it was made again)",
            &one(c.event_streams_lost),
        );
        scrape.counter(
            "engine_events_unowned",
            "engine events about sessions no application has any more",
            &one(c.events_unowned),
        );
    }
    scrape.gauge(
        "sse_streams",
        "open SSE streams",
        &one(state.sse_streams.load(Ordering::Relaxed)),
    );
    scrape.counter(
        "sse_gaps",
        "SSE streams that fell behind the log (a gap event)",
        &one(state.sse_gaps.load(Ordering::Relaxed)),
    );
    scrape.counter(
        "https_handshakes",
        "TLS handshakes the HTTPS listener completed",
        &one(state.tls.handshakes.load(Ordering::Relaxed)),
    );
    scrape.counter(
        "https_handshake_failures",
        "TLS handshakes that failed or timed out",
        &one(state.tls.handshake_failures.load(Ordering::Relaxed)),
    );
    let hooks = state.webhooks.stats();
    scrape.gauge("webhooks", "registered webhooks", &one(hooks.webhooks));
    scrape.gauge(
        "webhook_backlog",
        "events waiting for webhooks",
        &one(hooks.backlog),
    );
    scrape.counter(
        "webhook_events",
        "webhook events by outcome",
        &[
            (label("outcome", "delivered"), hooks.delivered),
            (label("outcome", "failed"), hooks.failed),
            (label("outcome", "dropped_full"), hooks.dropped_full),
        ],
    );
    scrape.counter("webhook_attempts", "webhook POSTs", &one(hooks.attempts));
    scrape.counter(
        "webhook_retries",
        "webhook POSTs that were retries",
        &one(hooks.retries),
    );
    scrape.counter(
        "webhooks_dropped",
        "webhooks dropped after their failure bound",
        &one(hooks.webhooks_dropped),
    );
    if let Some(engine) = state.signal.engine() {
        if let Ok(stats) = engine.stats().await {
            let sum =
                |f: fn(&msrp_engine::control::ShardStats) -> u64| stats.shards.iter().map(f).sum::<u64>();
            scrape.gauge("engine_sessions", "msrpd sessions", &one(sum(|s| s.sessions)));
            scrape.gauge(
                "engine_sessions_pending",
                "msrpd sessions waiting for their peer",
                &one(stats.sessions_pending),
            );
            scrape.gauge(
                "engine_connections",
                "msrpd connections",
                &one(sum(|s| s.connections)),
            );
            scrape.counter(
                "engine_messages_received",
                "msrpd messages received",
                &one(sum(|s| s.messages_received)),
            );
            scrape.counter(
                "engine_messages_delivered",
                "msrpd messages delivered",
                &one(sum(|s| s.messages_delivered)),
            );
            scrape.counter(
                "engine_messages_failed",
                "msrpd messages failed",
                &one(sum(|s| s.messages_failed)),
            );
            scrape.counter(
                "engine_bytes",
                "msrpd octets",
                &[
                    (label("direction", "in"), sum(|s| s.bytes_in)),
                    (label("direction", "out"), sum(|s| s.bytes_out)),
                ],
            );
            scrape.counter(
                "engine_frames_malformed",
                "msrpd malformed frames",
                &one(sum(|s| s.frames_malformed)),
            );
            scrape.counter(
                "engine_events_dropped",
                "msrpd events dropped",
                &one(stats.events_dropped),
            );
        }
    }
    let mut text = String::new();
    if let Err(error) = encode(&mut text, &scrape.registry) {
        return (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
