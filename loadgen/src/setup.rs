//! Sessions are created in the engine through its control socket
//! ("inject" mode: the descriptors SDP offer/answer would give), as passive
//! sessions that the load's connections then bind with their first SEND.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use msrp_engine::control::{Client, Command, SessionDescriptor, SessionRole};
use msrp_engine::MsrpUri;

use crate::load::{ConnPlan, SessionPlan};
use crate::profile::Profile;

/// Create commands in flight at once: enough to keep the control thread
/// busy, few enough to bound what waits in the socket.
const PIPELINE: usize = 1024;

pub struct Created {
    pub conns: Vec<ConnPlan>,
    /// The engine's session-ids, for the sends it makes (direction engine).
    pub engine_session_ids: Vec<String>,
    pub failed: usize,
    /// The first refusal, for the report.
    pub first_error: Option<String>,
    pub elapsed: Duration,
}

/// `sources`: the loopback addresses connections leave from, in turn.
pub fn create_sessions(control: &Path, profile: &Profile, run: u32, sources: &[IpAddr]) -> Result<Created> {
    let mut client = Client::connect(control)
        .with_context(|| format!("connecting to the control socket {}", control.display()))?;
    let started = Instant::now();
    let mut conns: Vec<ConnPlan> = (0..profile.connections)
        .map(|ci| ConnPlan {
            source: sources[ci % sources.len()],
            sessions: Vec::with_capacity(profile.sessions_per_connection),
        })
        .collect();
    let mut engine_session_ids = Vec::new();
    let mut failed = 0;
    let mut first_error = None;
    let all: Vec<(usize, usize)> = (0..profile.connections)
        .flat_map(|ci| (0..profile.sessions_per_connection).map(move |si| (ci, si)))
        .collect();
    for batch in all.chunks(PIPELINE) {
        let mut waiting = Vec::with_capacity(batch.len());
        for &(ci, si) in batch {
            // The engine checks that requests come From-Path our URI
            // (RFC 4975 7.3); the load never listens, so the port is nominal.
            let local = format!("msrp://{}:2855/lg{run:x}c{ci}s{si};tcp", conns[ci].source);
            let descriptor = SessionDescriptor {
                session_id: Some(format!("en{run:x}c{ci}s{si}")),
                remote_path: vec![local.clone()],
                role: SessionRole::Passive,
                chunk_bytes: Some(profile.chunk_bytes as usize),
                success_report: Some(profile.success_report),
                ..SessionDescriptor::default()
            };
            let id = client.submit(Command::CreateSession(descriptor), &[])?;
            waiting.push((id, ci, local, Instant::now()));
        }
        client.flush()?;
        for (id, ci, local, created) in waiting {
            match client.wait_reply(id) {
                Ok(reply) => {
                    let remote = reply.local_uri.unwrap_or_default();
                    let parsed = (local.parse::<MsrpUri>(), remote.parse::<MsrpUri>());
                    let (Ok(local_uri), Ok(remote_uri)) = parsed else {
                        failed += 1;
                        first_error
                            .get_or_insert_with(|| format!("the engine's URI {remote:?} does not parse"));
                        continue;
                    };
                    engine_session_ids.push(reply.session_id.unwrap_or_default());
                    conns[ci].sessions.push(SessionPlan {
                        local_uri,
                        remote_uri,
                        created,
                    });
                }
                Err(msrp_engine::control::ClientError::Refused(reason)) => {
                    failed += 1;
                    first_error.get_or_insert(reason);
                }
                Err(other) => return Err(other).context("creating sessions"),
            }
        }
    }
    conns.retain(|c| !c.sessions.is_empty());
    Ok(Created {
        conns,
        engine_session_ids,
        failed,
        first_error,
        elapsed: started.elapsed(),
    })
}
