//! Sessions are created in the engine through its control socket
//! ("inject" mode: the descriptors SDP offer/answer would give), as passive
//! sessions that the load's connections then bind with their first SEND.
//!
//! They are set up in waves, as calls arrive in life: a batch is created,
//! handed to the load threads to bind, and the next waits while too many are
//! still pending. A million pending descriptors at once would measure the
//! pending directory, not the sessions.

use std::net::IpAddr;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use msrp_engine::control::{Client, ClientError, Command, SessionDescriptor, SessionRole};
use msrp_engine::MsrpUri;

use crate::load::SessionPlan;
use crate::profile::Profile;

/// Create commands in flight at once: enough to keep the control thread
/// busy, few enough to bound what waits in the socket.
pub const PIPELINE: usize = 1024;

/// Creates sessions in the engine, a batch at a time.
pub struct Injector<'a> {
    client: Client,
    profile: &'a Profile,
    run: u32,
    sources: Vec<IpAddr>,
    /// The engine's session-ids, for the sends it makes (direction engine).
    pub engine_session_ids: Vec<String>,
    /// The first refusal, for the report.
    pub first_error: Option<String>,
}

impl<'a> Injector<'a> {
    /// `sources`: the loopback addresses connections leave from, in turn.
    pub fn connect(
        control: &Path,
        profile: &'a Profile,
        run: u32,
        sources: Vec<IpAddr>,
    ) -> Result<Injector<'a>> {
        let client = Client::connect(control)
            .with_context(|| format!("connecting to the control socket {}", control.display()))?;
        Ok(Injector {
            client,
            profile,
            run,
            sources,
            engine_session_ids: Vec::new(),
            first_error: None,
        })
    }

    /// The loopback address connection `ci` leaves from.
    pub fn source(&self, ci: usize) -> IpAddr {
        self.sources[ci % self.sources.len()]
    }

    /// Creates the sessions `(connection, index)` of `batch`, pipelined;
    /// returns those the engine accepted, with their connection.
    pub fn create(&mut self, batch: &[(usize, usize)]) -> Result<Vec<(usize, SessionPlan)>> {
        let run = self.run;
        let mut waiting = Vec::with_capacity(batch.len());
        for &(ci, si) in batch {
            // The engine checks that requests come From-Path our URI
            // (RFC 4975 7.3); the load never listens, so the port is nominal.
            // `msrps:` (--tls): the engine's session is msrps too, and is
            // served on its TLS listener only (RFC 4975 14).
            let scheme = match self.profile.tls {
                true => "msrps",
                false => "msrp",
            };
            let local = format!("{scheme}://{}:2855/lg{run:x}c{ci}s{si};tcp", self.source(ci));
            let descriptor = SessionDescriptor {
                session_id: Some(format!("en{run:x}c{ci}s{si}")),
                remote_path: vec![local.clone()],
                role: SessionRole::Passive,
                chunk_bytes: Some(self.profile.chunk_bytes as usize),
                success_report: Some(self.profile.success_report),
                ..SessionDescriptor::default()
            };
            let id = self.client.submit(Command::CreateSession(descriptor), &[])?;
            waiting.push((id, ci, local, Instant::now()));
        }
        self.client.flush()?;
        let mut created = Vec::with_capacity(batch.len());
        for (id, ci, local, started) in waiting {
            match self.client.wait_reply(id) {
                Ok(reply) => {
                    let remote = reply.local_uri.unwrap_or_default();
                    let (Ok(local_uri), Ok(remote_uri)) =
                        (local.parse::<MsrpUri>(), remote.parse::<MsrpUri>())
                    else {
                        self.refused(format!("the engine's URI {remote:?} does not parse"));
                        continue;
                    };
                    if self.profile.direction.engine_sends() {
                        self.engine_session_ids.push(reply.session_id.unwrap_or_default());
                    }
                    created.push((
                        ci,
                        SessionPlan {
                            local_uri,
                            remote_uri,
                            created: started,
                        },
                    ));
                }
                Err(ClientError::Refused(reason)) => self.refused(reason),
                Err(other) => return Err(other).context("creating sessions"),
            }
        }
        Ok(created)
    }

    fn refused(&mut self, reason: String) {
        self.first_error.get_or_insert(reason);
    }
}

/// Every `(connection, session)` of the profile, session-major so that a
/// batch spreads over all connections.
pub fn all_sessions(profile: &Profile) -> impl Iterator<Item = (usize, usize)> {
    let connections = profile.connections;
    (0..profile.sessions_per_connection).flat_map(move |si| (0..connections).map(move |ci| (ci, si)))
}
