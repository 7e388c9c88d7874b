//! `--subscribe`: an application reading every event the engine publishes
//! (one per message received and delivered), or with `--subscribe-events`
//! only those kinds, as a real deployment would. Every event is parsed, as
//! an application must. The engine builds events only while someone
//! subscribes, so this measures that cost too; a subscriber slower than the
//! engine is dropped by it.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{anyhow, Context, Result};
use msrp_engine::control::{Client, EventKind, Subscription, PROTOCOL_VERSION};

use crate::profile::ControlForm;

pub struct Subscriber {
    /// The kinds subscribed to, by name (empty: all).
    pub subscribed_to: Vec<String>,
    events: Arc<AtomicU64>,
    stopping: Arc<AtomicBool>,
    reader: JoinHandle<()>,
}

impl Subscriber {
    /// Subscribes on its own control connection to `events` (empty: all)
    /// and reads on its own thread; batched, events come many per frame.
    pub fn start(control: &Path, events: Vec<EventKind>, form: ControlForm) -> Result<Subscriber> {
        let mut client = Client::connect(control)
            .with_context(|| format!("connecting to the control socket {}", control.display()))?;
        if form == ControlForm::Batched {
            client
                .hello(PROTOCOL_VERSION)
                .context("asking for control protocol 2")?;
        }
        let subscribed_to = events.iter().map(|k| k.name().to_owned()).collect();
        let subscription = Subscription {
            events,
            ..Subscription::default()
        };
        client.subscribe_to(subscription).context("subscribing")?;
        let events = Arc::new(AtomicU64::new(0));
        let stopping = Arc::new(AtomicBool::new(false));
        let counter = events.clone();
        let reader = std::thread::Builder::new()
            .name("subscriber".into())
            .spawn(move || {
                // Ends when the engine drops this subscriber or goes away.
                while client.next_event().is_ok() {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
            .map_err(|e| anyhow!("cannot start the subscriber thread: {e}"))?;
        Ok(Subscriber {
            subscribed_to,
            events,
            stopping,
            reader,
        })
    }

    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    /// The engine closed the subscription before the run ended: it fell
    /// more than `--subscriber-queue-depth` events behind.
    pub fn dropped(&self) -> bool {
        self.reader.is_finished() && !self.stopping.load(Ordering::Relaxed)
    }

    /// Called before the engine stops, so its going away is not a drop.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }
}
