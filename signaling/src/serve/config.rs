//! `msrp-signal serve` settings: command line and the same names in a TOML
//! config file (`--config`), the command line winning.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;

use crate::sip::Transport;

/// One `--sip` listener: `udp:ADDR`, `tcp:ADDR` or `tls:ADDR` (RFC 3261
/// 26.2.1; TLS needs `--sip-cert` and `--sip-key`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SipListen {
    pub transport: Transport,
    pub addr: SocketAddr,
}

impl FromStr for SipListen {
    type Err = String;

    fn from_str(text: &str) -> Result<SipListen, String> {
        let (scheme, addr) = text
            .split_once(':')
            .ok_or_else(|| format!("`{text}`: expected udp:ADDR, tcp:ADDR or tls:ADDR"))?;
        let transport = Transport::from_param(scheme)
            .ok_or_else(|| format!("`{scheme}`: the SIP transport is udp, tcp or tls"))?;
        let addr = addr.parse().map_err(|e| format!("`{addr}`: {e}"))?;
        Ok(SipListen { transport, addr })
    }
}

/// How incoming calls are answered (until applications decide, in the
/// REST issue).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallPolicy {
    /// Our `a=accept-types` (`*` takes anything the peer sends).
    pub accept_types: Vec<String>,
    pub accept_wrapped_types: Vec<String>,
    /// Our `a=max-size`.
    pub max_size: Option<u64>,
    /// MSRP media lines one dialog may open.
    pub sessions_per_dialog_max: usize,
    /// Answer every acceptable offer at once; when false, incoming calls
    /// are refused 480 (no application can answer them yet).
    pub auto_answer: bool,
    /// The engine tag our sessions carry (a subscription by tag sees them).
    pub tag: String,
    /// How long an incoming call waits for an application's answer before
    /// it is refused 480 (when not auto-answered, with REST on).
    pub incoming_timeout: std::time::Duration,
    /// Pushed files (RFC 5547) are checked against their offer before the
    /// success REPORT (the engine holds it): set when the application
    /// layer, which checks them, runs.
    pub check_pushed_files: bool,
}

impl Default for CallPolicy {
    fn default() -> Self {
        CallPolicy {
            accept_types: vec!["text/plain".into(), "message/cpim".into(), "*".into()],
            accept_wrapped_types: vec!["*".into()],
            max_size: None,
            sessions_per_dialog_max: 4,
            auto_answer: true,
            tag: "msrp-signal".into(),
            incoming_timeout: std::time::Duration::from_secs(30),
            check_pushed_files: false,
        }
    }
}

/// The `[sip]`, `[engine]` and `[calls]` tables of a config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub sip: FileSip,
    #[serde(default)]
    pub engine: FileEngine,
    #[serde(default)]
    pub calls: FileCalls,
    #[serde(default)]
    pub rest: FileRest,
}

/// The `[rest]` table: the HTTP API.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRest {
    pub listen: Option<std::net::SocketAddr>,
    /// HTTPS: a PEM certificate chain and its key.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// A tokens file (`TOKEN APPID` lines).
    pub tokens_file: Option<PathBuf>,
    /// Tokens inline: `{ "TOKEN" = "APPID" }`.
    pub tokens: Option<std::collections::BTreeMap<String, String>>,
    pub incoming_app: Option<String>,
    pub body_max: Option<usize>,
    pub upload_max: Option<u64>,
    pub upload_dir: Option<PathBuf>,
    pub files_dirs: Option<Vec<PathBuf>>,
    pub events_kept: Option<usize>,
    pub sessions_max: Option<usize>,
    pub webhooks_max: Option<usize>,
    pub webhook_queue_max: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSip {
    pub listen: Option<Vec<String>>,
    pub host: Option<String>,
    pub message_bytes_max: Option<usize>,
    pub transactions_max: Option<usize>,
    pub calls_max: Option<usize>,
    pub dialogs_per_source_max: Option<usize>,
    pub invite_rate_per_source: Option<u32>,
    pub request_rate_per_source: Option<u32>,
    pub trusted_sources: Option<Vec<std::net::IpAddr>>,
    /// SIP over TLS: our PEM certificate chain and key (`--sip-cert`,
    /// `--sip-key`), the CA bundle servers are verified against
    /// (`--sip-ca`), and the one clients must be signed by
    /// (`--sip-client-ca`).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub ca: Option<PathBuf>,
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEngine {
    pub socket: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCalls {
    pub accept_types: Option<Vec<String>>,
    pub accept_wrapped_types: Option<Vec<String>>,
    pub max_size: Option<u64>,
    pub sessions_per_dialog_max: Option<usize>,
    pub auto_answer: Option<bool>,
    pub tag: Option<String>,
    /// Seconds an incoming call waits for an application.
    pub incoming_timeout_s: Option<u64>,
}

impl FileConfig {
    pub fn read(path: &Path) -> Result<FileConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}
