//! The application layer's engine events (messages, outcomes, progress,
//! 3PCC sessions closing) on a control connection and an OS thread of
//! their own. They come at the engine's message rate, so they must not
//! share a thread with SIP and REST, nor a connection with the commands:
//! a subscriber that falls `--subscriber-queue-depth` behind is dropped by
//! msrpd (engine `serve/subscribers.rs`), and on the command connection
//! that would end every call. Here it costs the events meanwhile, counted
//! and logged, and the subscription is made again.

use std::path::PathBuf;
use std::time::Duration;

use msrp_engine::control::{AsyncClient, EventKind, Subscription};
use tokio::sync::oneshot;

use crate::app::{self, SharedApp};

/// How long to wait before connecting again.
const RECONNECT: Duration = Duration::from_millis(200);

fn subscription(tag: &str) -> Subscription {
    Subscription {
        events: vec![
            EventKind::MessageReceived,
            EventKind::Delivered,
            EventKind::Failed,
            EventKind::Progress,
            EventKind::MessageAborted,
            EventKind::SessionClosed,
        ],
        sessions: Vec::new(),
        tags: vec![tag.to_string()],
    }
}

/// Starts the thread; returns once its first subscription is in place
/// (or could not be made).
pub(super) async fn start(engine: PathBuf, tag: String, app: SharedApp) -> anyhow::Result<()> {
    let (ready, subscribed) = oneshot::channel();
    std::thread::Builder::new()
        .name("msrp-signal-events".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = ready.send(Err(anyhow::anyhow!("the events thread's runtime: {error}")));
                    return;
                }
            };
            runtime.block_on(run(engine, tag, app, ready));
        })?;
    subscribed
        .await
        .map_err(|_| anyhow::anyhow!("the events thread stopped"))?
}

async fn run(engine: PathBuf, tag: String, app: SharedApp, ready: oneshot::Sender<anyhow::Result<()>>) {
    let mut ready = Some(ready);
    loop {
        let connected = async {
            let (client, events) = AsyncClient::connect(&engine).await?;
            client.subscribe(subscription(&tag)).await?;
            Ok::<_, msrp_engine::control::ClientError>((client, events))
        }
        .await;
        let (client, mut events) = match connected {
            Ok(connected) => connected,
            Err(error) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(Err(anyhow::anyhow!(
                        "msrpd at {} (events): {error}",
                        engine.display()
                    )));
                    return;
                }
                tokio::time::sleep(RECONNECT).await;
                continue;
            }
        };
        if let Some(ready) = ready.take() {
            let _ = ready.send(Ok(()));
        }
        while let Some((event, payload)) = events.next().await {
            let now = app::unix_ms(std::time::SystemTime::now());
            let mut locked = app::lock(&app);
            // A pushed file is checked before anyone hears of it.
            if let Some(pushed) = locked.pushed(&event, &payload) {
                let store = locked.store_dir.clone();
                drop(locked);
                tokio::spawn(app::received::settle(pushed, store, client.clone(), app.clone()));
                continue;
            }
            locked.engine_event(&event, &payload, now);
        }
        let why = client
            .close_reason()
            .unwrap_or_else(|| "the connection closed".into());
        app::lock(&app).counters.event_streams_lost += 1;
        tracing::warn!(%why, "the application's engine events stopped; subscribing again (the events meanwhile are lost)");
        tokio::time::sleep(RECONNECT).await;
    }
}
