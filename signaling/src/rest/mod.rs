//! The JSON REST API of `msrp-signal` (`--http`): axum routes over the
//! application layer (`crate::app`), the UAC and UAS of `crate::serve`,
//! and the engine's control client. Routes and JSON live here; sessions
//! and events live in `app`, so a second dialect (XMS's XML) can sit
//! beside this one on the same layer.
//!
//! Every route is declared once, with its OpenAPI description
//! (`utoipa`), so `/openapi.json` cannot drift from the router.

mod auth;
mod coalesce;
mod error;
mod events;
mod files;
#[doc(hidden)]
pub mod fuzzing;
mod messages;
mod metrics;
mod sessions;
mod tls;
mod transfers;
pub mod types;
pub mod webhooks;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::auth::Tokens;
use crate::app::SharedApp;
use crate::serve::Signal;
pub use error::{ApiError, ErrorBody};
use webhooks::{WebhookConfig, Webhooks};

/// `--http` and its bounds.
#[derive(Clone, Debug)]
pub struct RestSettings {
    pub listen: SocketAddr,
    /// None configured: a loopback listener serves every request as
    /// application `default`; any other listener refuses to start.
    pub tokens: Tokens,
    /// A JSON request body, in octets (413 beyond).
    pub body_max: usize,
    /// An uploaded file, in octets (413 beyond; the partial file is removed).
    pub upload_max: u64,
    /// Where uploads are written before they are sent (and removed once
    /// delivered).
    pub upload_dir: PathBuf,
    /// Where server-side `path`s of `POST .../files` may be; empty: any
    /// readable file, and only while no tokens are configured.
    pub files_dirs: Vec<PathBuf>,
    /// Items in one `POST /v1/messages:batch`.
    pub batch_max: usize,
    /// Sessions in one page of `GET /v1/sessions`.
    pub page_max: usize,
    /// SSE comment lines keep idle streams open through proxies.
    pub sse_keepalive: Duration,
    pub webhooks: WebhookConfig,
    /// HTTPS: a PEM certificate chain and its private key; `None` serves
    /// plain HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
}

impl Default for RestSettings {
    fn default() -> Self {
        RestSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tokens: Tokens::default(),
            body_max: 1 << 20,
            upload_max: 1 << 30,
            upload_dir: std::env::temp_dir().join("msrp-signal-uploads"),
            files_dirs: Vec::new(),
            batch_max: 1000,
            page_max: 1000,
            sse_keepalive: Duration::from_secs(15),
            webhooks: WebhookConfig::default(),
            tls: None,
        }
    }
}

/// A running REST listener.
pub struct Rest {
    pub local: SocketAddr,
}

pub(crate) struct Shared {
    pub app: SharedApp,
    pub signal: Signal,
    pub tokens: Tokens,
    pub webhooks: Webhooks,
    /// Single-message sends, grouped into engine batches.
    pub sends: coalesce::Coalescer,
    pub settings: RestSettings,
    /// SSE streams open now, and the times one fell behind the log.
    pub sse_streams: AtomicU64,
    pub sse_gaps: AtomicU64,
    pub tls: Arc<tls::TlsCounters>,
    /// File transfers (`/v1/transfers`, shared with MSML).
    pub transfers: Option<crate::transfer::Transfers>,
}

pub(crate) type RestState = Arc<Shared>;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "msrp-signal REST API",
        description = "MSRP sessions (1PCC over SIP, or 3PCC with the SDP only), messages and files, events by SSE and webhooks."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "sessions", description = "1PCC and 3PCC sessions"),
        (name = "messages", description = "messages and files"),
        (name = "events", description = "server-sent events and webhooks"),
        (name = "operations", description = "health and metrics"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every route, each declared once with its OpenAPI description.
fn api_router() -> OpenApiRouter<RestState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(sessions::create_session, sessions::list_sessions))
        .routes(routes!(sessions::get_session, sessions::delete_session))
        .routes(routes!(sessions::answer_session))
        .routes(routes!(sessions::reject_session))
        .routes(routes!(sessions::put_remote_sdp))
        .routes(routes!(messages::post_message))
        .routes(routes!(messages::post_batch))
        .routes(routes!(files::post_file))
        .routes(routes!(transfers::post_transfer))
        .routes(routes!(transfers::get_transfer, transfers::delete_transfer))
        .routes(routes!(events::get_events))
        .routes(routes!(events::post_webhook, events::list_webhooks))
        .routes(routes!(events::get_webhook, events::delete_webhook))
        .routes(routes!(metrics::healthz))
        .routes(routes!(metrics::get_metrics))
}

/// The router, with `/openapi.json` serving the document of its routes.
fn router(state: RestState) -> Router {
    let body_max = state.settings.body_max;
    let (router, api) = api_router().split_for_parts();
    let doc = Arc::new(api);
    router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "no such route (see /openapi.json)",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "the route does not take this method (see /openapi.json)",
            )
        })
        .layer(DefaultBodyLimit::max(body_max))
        .with_state(state)
}

/// The OpenAPI 3.1 document of every route (`/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().into_openapi()
}

/// Binds `--http` and serves it on the current runtime.
pub async fn start(
    settings: RestSettings,
    signal: Signal,
    app: SharedApp,
    transfers: Option<crate::transfer::Transfers>,
) -> anyhow::Result<Rest> {
    if settings.tokens.is_empty() && !settings.listen.ip().is_loopback() {
        anyhow::bail!(
            "--http {}: a listener off loopback needs --tokens (no application may use it unauthenticated)",
            settings.listen
        );
    }
    std::fs::create_dir_all(&settings.upload_dir)
        .map_err(|e| anyhow::anyhow!("upload directory {}: {e}", settings.upload_dir.display()))?;
    let tls_config = match &settings.tls {
        Some((cert, key)) => Some(tls::server_config(cert, key)?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| anyhow::anyhow!("--http {}: {e}", settings.listen))?;
    let local = listener.local_addr()?;
    let webhooks = Webhooks::new(settings.webhooks.clone());
    let sends = coalesce::Coalescer::start(signal.clone());
    let state = Arc::new(Shared {
        app: app.clone(),
        signal,
        tokens: settings.tokens.clone(),
        webhooks: webhooks.clone(),
        sends,
        settings,
        sse_streams: AtomicU64::new(0),
        sse_gaps: AtomicU64::new(0),
        tls: Arc::default(),
        transfers,
    });
    tokio::spawn(events::feed_webhooks(app, webhooks));
    let counters = state.tls.clone();
    let router = router(state);
    match tls_config {
        Some(config) => {
            tracing::info!(%local, "REST API listening (HTTPS)");
            let listener = tls::TlsListener::start(listener, config, counters)?;
            tokio::spawn(async move {
                if let Err(error) = axum::serve(listener, router).await {
                    tracing::error!(%error, "the REST listener stopped");
                }
            });
        }
        None => {
            tracing::info!(%local, "REST API listening");
            tokio::spawn(async move {
                if let Err(error) = axum::serve(listener, router).await {
                    tracing::error!(%error, "the REST listener stopped");
                }
            });
        }
    }
    Ok(Rest { local })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route the README lists, with its methods: the document
    /// generated from the router's declarations holds exactly these.
    const ROUTES: &[(&str, &[&str])] = &[
        ("/v1/sessions", &["get", "post"]),
        ("/v1/sessions/{id}", &["delete", "get"]),
        ("/v1/sessions/{id}/answer", &["post"]),
        ("/v1/sessions/{id}/reject", &["post"]),
        ("/v1/sessions/{id}/remote_sdp", &["put"]),
        ("/v1/sessions/{id}/messages", &["post"]),
        ("/v1/messages:batch", &["post"]),
        ("/v1/sessions/{id}/files", &["post"]),
        ("/v1/transfers", &["post"]),
        ("/v1/transfers/{id}", &["delete", "get"]),
        ("/v1/events", &["get"]),
        ("/v1/webhooks", &["get", "post"]),
        ("/v1/webhooks/{id}", &["delete", "get"]),
        ("/healthz", &["get"]),
        ("/metrics", &["get"]),
    ];

    #[test]
    fn the_openapi_document_lists_every_route_and_nothing_else() {
        let doc = serde_json::to_value(openapi()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let paths = doc["paths"].as_object().unwrap();
        let mut listed: Vec<(String, Vec<String>)> = paths
            .iter()
            .map(|(path, item)| {
                let mut methods: Vec<String> = item.as_object().unwrap().keys().cloned().collect();
                methods.sort();
                (path.clone(), methods)
            })
            .collect();
        listed.sort();
        let mut expected: Vec<(String, Vec<String>)> = ROUTES
            .iter()
            .map(|(path, methods)| (path.to_string(), methods.iter().map(|m| m.to_string()).collect()))
            .collect();
        expected.sort();
        assert_eq!(listed, expected);
        for schema in [
            "SessionView",
            "CreateSession",
            "MessageRequest",
            "ErrorBody",
            "WebhookInfo",
            "BatchResponse",
        ] {
            assert!(
                doc["components"]["schemas"][schema].is_object(),
                "{schema} is described"
            );
        }
    }
}
