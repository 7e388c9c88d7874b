//! The sessions each connection sends on: created in the engine through its
//! control socket for MSRP, made up for the raw server (which never reads
//! them but must receive the same bytes).

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result};
use msrp_engine::control::{Client, SessionDescriptor, SessionRole};

use crate::workload::SessionPaths;

/// Our URI for connection `conn`: the engine only checks that a request's
/// From-Path is the remote path it was given (RFC 4975 7.3), so the authority
/// need not be reachable.
fn client_uri(conn: usize, run: u32) -> String {
    format!("msrp://127.0.0.1:9/cl{conn}x{run:08x};tcp")
}

/// One passive session per connection in the engine behind `control`: the
/// engine binds each to the connection whose first SEND names it.
pub fn create_in_engine(control: &Path, conns: usize, run: u32) -> Result<Vec<SessionPaths>> {
    let mut client = Client::connect(control)
        .with_context(|| format!("connecting to the control socket {}", control.display()))?;
    (0..conns)
        .map(|conn| {
            let from_path = client_uri(conn, run);
            let created = client
                .create_session(SessionDescriptor {
                    session_id: Some(format!("wb{conn}x{run:08x}")),
                    remote_path: vec![from_path.clone()],
                    role: SessionRole::Passive,
                    ..SessionDescriptor::default()
                })
                .with_context(|| format!("creating session {conn}"))?;
            anyhow::ensure!(
                !created.local_uri.is_empty(),
                "the engine gave session {conn} no URI"
            );
            Ok(SessionPaths {
                to_path: created.local_uri,
                from_path,
            })
        })
        .collect()
}

/// Paths shaped like the engine's, so raw requests are as long as MSRP ones.
pub fn made_up(target: SocketAddr, conns: usize, run: u32) -> Vec<SessionPaths> {
    (0..conns)
        .map(|conn| SessionPaths {
            to_path: format!("msrp://{target}/wb{conn}x{run:08x};tcp"),
            from_path: client_uri(conn, run),
        })
        .collect()
}
