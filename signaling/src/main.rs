//! `msrp-signal`: the SIP/SDP signaling process of msrp-engine. It answers
//! SIP INVITEs with MSRP offers, runs the SDP offer/answer and hands each
//! negotiated session to a running `msrpd` over its control socket.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use msrp_signaling::app::auth::Tokens;
use msrp_signaling::app::{App, AppConfig};
use msrp_signaling::rest::RestSettings;
use msrp_signaling::serve::config::FileConfig;
use msrp_signaling::serve::{CallPolicy, MsmlSettings, ServeSettings, Signal, SipListen, SipTlsFiles};
use msrp_signaling::sip::EndpointConfig;
use msrp_signaling::transfer::{FilesPolicy, TransferConfig, Transfers};

const EXAMPLE: &str = "\
Example (three shells):
  msrpd serve --listen 127.0.0.1:2855 --control /tmp/msrpd.sock
  msrp-signal serve --sip udp:127.0.0.1:5060 --sip tcp:127.0.0.1:5060 --engine /tmp/msrpd.sock
  sipp -sn uac -m 1 127.0.0.1:5060     # or any SIP client offering m=message TCP/MSRP

With the REST API (--http), see README.md's REST section and /openapi.json:
  msrp-signal serve --engine /tmp/msrpd.sock --http 127.0.0.1:8080
  curl -N http://127.0.0.1:8080/v1/events";

/// SIP/SDP signaling for msrp-engine.
#[derive(Parser)]
#[command(name = "msrp-signal", version, about, after_help = EXAMPLE)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Answer SIP INVITEs for MSRP sessions and feed them to msrpd.
    #[command(after_help = EXAMPLE)]
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// A SIP listener, udp:ADDR, tcp:ADDR or tls:ADDR; repeat for several
    /// (default udp:127.0.0.1:5060 and tcp:127.0.0.1:5060).
    #[arg(long, value_name = "TRANSPORT:ADDR")]
    sip: Vec<SipListen>,
    /// SIP over TLS: our PEM certificate chain (with --sip-key), for the
    /// tls: listener and as our client certificate.
    #[arg(long, value_name = "FILE", requires = "sip_key")]
    sip_cert: Option<PathBuf>,
    /// The PEM private key of --sip-cert.
    #[arg(long, value_name = "FILE", requires = "sip_cert")]
    sip_key: Option<PathBuf>,
    /// The CA bundle (PEM) the SIP servers we connect to over TLS are
    /// verified against, for the host of the URI (RFC 5922); without it no
    /// outbound SIP over TLS (sips:) is made.
    #[arg(long, value_name = "FILE")]
    sip_ca: Option<PathBuf>,
    /// Require SIP-over-TLS clients to present a certificate signed by
    /// this CA bundle (PEM).
    #[arg(long, value_name = "FILE")]
    sip_client_ca: Option<PathBuf>,
    /// msrpd's control socket.
    #[arg(long, value_name = "PATH")]
    engine: Option<PathBuf>,
    /// A TOML file with `[sip]`, `[engine]` and `[calls]` tables; flags win.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Our host in Via and Contact (default: the first listener's address).
    #[arg(long)]
    host: Option<String>,
    /// Our a=accept-types, comma-separated.
    #[arg(long, value_name = "TYPES", value_delimiter = ',')]
    accept_types: Vec<String>,
    /// Our a=max-size in octets.
    #[arg(long, value_name = "OCTETS")]
    max_size: Option<u64>,
    /// MSRP media lines one dialog may open.
    #[arg(long, value_name = "N")]
    sessions_per_dialog_max: Option<usize>,
    /// Do not answer incoming calls: with --http an application answers
    /// them (480 after --incoming-timeout), without it they get 480.
    #[arg(long)]
    no_auto_answer: bool,
    /// Serve the REST API here (loopback unless --tokens is given).
    #[arg(long, value_name = "ADDR")]
    http: Option<std::net::SocketAddr>,
    /// Serve the REST API over HTTPS with this PEM certificate chain
    /// (with --http-key).
    #[arg(long, value_name = "FILE", requires = "http_key")]
    http_cert: Option<PathBuf>,
    /// The PEM private key of --http-cert.
    #[arg(long, value_name = "FILE", requires = "http_cert")]
    http_key: Option<PathBuf>,
    /// Bearer tokens, one `TOKEN APPID` per line.
    #[arg(long, value_name = "FILE")]
    tokens: Option<PathBuf>,
    /// The application inbound calls belong to (default `default`).
    #[arg(long, value_name = "APPID")]
    incoming_app: Option<String>,
    /// Seconds an incoming call waits for an application's answer.
    #[arg(long, value_name = "SECONDS")]
    incoming_timeout: Option<u64>,
    /// Where REST uploads are written before they are sent.
    #[arg(long, value_name = "DIR")]
    upload_dir: Option<PathBuf>,
    /// A directory whose files REST may send by path; repeat for several
    /// (required for paths once --tokens is given).
    #[arg(long, value_name = "DIR")]
    files_dir: Vec<PathBuf>,
    /// Largest REST JSON body, in octets.
    #[arg(long, value_name = "OCTETS")]
    body_max: Option<usize>,
    /// Largest REST upload, in octets.
    #[arg(long, value_name = "OCTETS")]
    upload_max: Option<u64>,
    /// Largest SIP message in octets.
    #[arg(long, value_name = "OCTETS")]
    message_bytes_max: Option<usize>,
    /// Live SIP transactions of each kind (server, client).
    #[arg(long, value_name = "N")]
    transactions_max: Option<usize>,
    /// Live calls; over it an INVITE gets 503.
    #[arg(long, value_name = "N")]
    calls_max: Option<usize>,
    /// Live incoming dialogs one source address may hold; over it an
    /// INVITE gets 503 (default 10000; 0: no bound).
    #[arg(long, value_name = "N")]
    dialogs_per_source_max: Option<usize>,
    /// New INVITEs per second one source address may send, in bursts of
    /// twice that; over it 503 (default 1000; 0: no bound).
    #[arg(long, value_name = "N")]
    invite_rate_per_source: Option<u32>,
    /// New requests of any method per second per source address, in bursts
    /// of as many (default 20000; 0: no bound).
    #[arg(long, value_name = "N")]
    request_rate_per_source: Option<u32>,
    /// An address exempt from the per-source bounds (a balancer, an SBC or
    /// an ESRP in front, whose callers all share it); repeat for several.
    #[arg(long, value_name = "IP")]
    trusted_source: Vec<std::net::IpAddr>,
    /// The dialog journal: the dialogs a restart ends with a BYE (default:
    /// msrp-signal.dialogs beside the engine's control socket).
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Serve MSML control dialogs (INVITE to sip:msml@HOST, MSML in INFO):
    /// voicemail delivery by `transfer`. Sources must be under a --files-dir.
    #[arg(long)]
    msml: bool,
    /// The Request-URI user of an MSML control INVITE.
    #[arg(long, value_name = "USER", default_value = "msml")]
    msml_user: String,
    /// The application MSML's transfers and their sessions belong to.
    #[arg(long, value_name = "APPID", default_value = "msml")]
    msml_app: String,
    /// Transfers (MSML and REST) running at once.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    transfers_max: usize,
    /// Delete a transfer's source before its objectdone event (default:
    /// after it, before the transfer's end event).
    #[arg(long)]
    delete_before_event: bool,
    /// A header of every transfer's INVITE, `Name: value` (e.g.
    /// P-Preferred-Service); repeat for several.
    #[arg(long, value_name = "HEADER")]
    transfer_header: Vec<String>,
    /// Where pushed files (RFC 5547) are stored once their size and sha-1
    /// are checked (default: the engine's spool, where they arrive).
    #[arg(long, value_name = "DIR")]
    store_dir: Option<PathBuf>,
}

/// What MSML and transfers need from the flags.
struct TransferArgs {
    msml: Option<(String, String)>,
    config: TransferConfig,
    /// REST or MSML: the application layer exists.
    wanted: bool,
    store_dir: Option<PathBuf>,
}

/// A ready line on stdout. A reader that has gone (a supervisor that
/// read what it wanted and closed the pipe) does not stop the server, as
/// `println!` would by panicking.
fn ready(what: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "msrp-signal ready {what}").and_then(|()| out.flush());
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let Command::Serve(args) = Cli::parse().command;
    let mut transfer = transfer_args(&args)?;
    let sip_tls = SipTlsFiles {
        cert: args.sip_cert.clone(),
        key: args.sip_key.clone(),
        ca: args.sip_ca.clone(),
        client_ca: args.sip_client_ca.clone(),
    };
    let (mut settings, rest, file_tls) = settings(args)?;
    let sip_tls = SipTlsFiles {
        cert: sip_tls.cert.or(file_tls.cert),
        key: sip_tls.key.or(file_tls.key),
        ca: sip_tls.ca.or(file_tls.ca),
        client_ca: sip_tls.client_ca.or(file_tls.client_ca),
    };
    if let Some((rest, _)) = &rest {
        // The config file's [rest] files_dirs hold for transfers too.
        transfer.config.files.dirs = rest.files_dirs.clone();
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let app = match (rest.as_ref(), transfer.wanted) {
            (Some((_, config)), _) => Some(config.clone()),
            (None, true) => Some(AppConfig::default()),
            (None, false) => None,
        }
        .map(|config| AppConfig {
            store_dir: transfer.store_dir.clone(),
            ..config
        })
        .map(|config| App::new(&config, fastrand::u32(..)))
        .map(|app| std::sync::Arc::new(std::sync::Mutex::new(app)));
        settings.app = app.clone();
        let signal = Signal::start_with_tls(settings, &sip_tls).await?;
        let transfers = app
            .clone()
            .map(|app| Transfers::new(signal.clone(), app, transfer.config.clone()));
        if let (Some((user, owner)), Some(transfers)) = (transfer.msml, transfers.clone()) {
            signal
                .enable_msml(MsmlSettings {
                    user,
                    transfers,
                    owner: owner.into(),
                    events_queued_max: 1024,
                })
                .await?;
        }
        if let (Some((rest, _)), Some(app)) = (rest, app) {
            let served = msrp_signaling::rest::start(rest, signal.clone(), app, transfers).await?;
            ready(&format!("http={}", served.local));
        }
        for listen in signal.local() {
            let transport = listen.transport.via_name().to_ascii_lowercase();
            ready(&format!("sip={transport}:{}", listen.addr));
        }
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("waiting for Ctrl-C")?,
            _ = terminate.recv() => {}
        }
        signal.shutdown().await;
        // The BYEs are queued on the sockets; give them a moment to leave.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        Ok(())
    })
}

/// What `serve` runs, the REST side, and the `[sip]` TLS files of the
/// config file.
type Settings = (ServeSettings, Option<(RestSettings, AppConfig)>, SipTlsFiles);

fn settings(args: ServeArgs) -> anyhow::Result<Settings> {
    let file = match &args.config {
        Some(path) => FileConfig::read(path).map_err(anyhow::Error::msg)?,
        None => FileConfig::default(),
    };
    let mut sip = args.sip;
    if sip.is_empty() {
        for text in file.sip.listen.clone().unwrap_or_default() {
            sip.push(text.parse().map_err(anyhow::Error::msg)?);
        }
    }
    if sip.is_empty() {
        sip = vec![
            "udp:127.0.0.1:5060".parse().map_err(anyhow::Error::msg)?,
            "tcp:127.0.0.1:5060".parse().map_err(anyhow::Error::msg)?,
        ];
    }
    let engine = args
        .engine
        .or(file.engine.socket)
        .unwrap_or_else(default_engine_socket);
    let defaults = CallPolicy::default();
    let policy = CallPolicy {
        accept_types: if args.accept_types.is_empty() {
            file.calls.accept_types.unwrap_or(defaults.accept_types)
        } else {
            args.accept_types
        },
        accept_wrapped_types: file
            .calls
            .accept_wrapped_types
            .unwrap_or(defaults.accept_wrapped_types),
        max_size: args.max_size.or(file.calls.max_size),
        sessions_per_dialog_max: args
            .sessions_per_dialog_max
            .or(file.calls.sessions_per_dialog_max)
            .unwrap_or(defaults.sessions_per_dialog_max),
        auto_answer: !args.no_auto_answer && file.calls.auto_answer.unwrap_or(true),
        tag: file.calls.tag.unwrap_or(defaults.tag),
        incoming_timeout: args
            .incoming_timeout
            .or(file.calls.incoming_timeout_s)
            .map_or(defaults.incoming_timeout, std::time::Duration::from_secs),
        check_pushed_files: false,
    };
    let rest = match args.http.or(file.rest.listen) {
        None => None,
        Some(listen) => {
            let mut rest = RestSettings {
                listen,
                ..RestSettings::default()
            };
            let tokens_file = args.tokens.or(file.rest.tokens_file);
            if let Some(path) = &tokens_file {
                let text =
                    std::fs::read_to_string(path).with_context(|| format!("--tokens {}", path.display()))?;
                rest.tokens =
                    Tokens::parse(&text).map_err(|e| anyhow::anyhow!("--tokens {}: {e}", path.display()))?;
            }
            for (token, app) in file.rest.tokens.unwrap_or_default() {
                rest.tokens
                    .add(&token, &app)
                    .map_err(|e| anyhow::anyhow!("[rest] tokens: {e}"))?;
            }
            rest.tls = match (args.http_cert.or(file.rest.cert), args.http_key.or(file.rest.key)) {
                (Some(cert), Some(key)) => Some((cert, key)),
                (None, None) => None,
                _ => anyhow::bail!("HTTPS needs both a certificate and its key (--http-cert, --http-key)"),
            };
            if let Some(dir) = args.upload_dir.or(file.rest.upload_dir) {
                rest.upload_dir = dir;
            }
            rest.files_dirs = match args.files_dir.is_empty() {
                true => file.rest.files_dirs.unwrap_or_default(),
                false => args.files_dir,
            };
            if let Some(max) = args.body_max.or(file.rest.body_max) {
                rest.body_max = max;
            }
            if let Some(max) = args.upload_max.or(file.rest.upload_max) {
                rest.upload_max = max;
            }
            if let Some(max) = file.rest.webhooks_max {
                rest.webhooks.webhooks_max = max;
            }
            if let Some(max) = file.rest.webhook_queue_max {
                rest.webhooks.queue_max = max;
            }
            let mut app = AppConfig::default();
            if let Some(name) = args.incoming_app.or(file.rest.incoming_app) {
                app.incoming_app = name;
            }
            if let Some(kept) = file.rest.events_kept {
                app.events_kept = kept;
            }
            if let Some(max) = file.rest.sessions_max {
                app.sessions_max = max;
            }
            Some((rest, app))
        }
    };
    let mut endpoint = EndpointConfig::default();
    if let Some(max) = args.message_bytes_max.or(file.sip.message_bytes_max) {
        endpoint.limits.message_bytes_max = max;
    }
    if let Some(max) = args.transactions_max.or(file.sip.transactions_max) {
        endpoint.server_transactions_max = max;
        endpoint.client_transactions_max = max;
    }
    if let Some(max) = args.dialogs_per_source_max.or(file.sip.dialogs_per_source_max) {
        endpoint.sources.dialogs_max = max;
    }
    if let Some(rate) = args.invite_rate_per_source.or(file.sip.invite_rate_per_source) {
        endpoint.sources.invites.requests_per_s = rate;
        endpoint.sources.invites.burst = rate.saturating_mul(2);
    }
    if let Some(rate) = args.request_rate_per_source.or(file.sip.request_rate_per_source) {
        endpoint.rate.requests_per_s = rate;
        endpoint.rate.burst = rate;
    }
    endpoint.sources.trusted = match args.trusted_source.is_empty() {
        true => file.sip.trusted_sources.unwrap_or_default(),
        false => args.trusted_source,
    };
    let file_tls = SipTlsFiles {
        cert: file.sip.cert.clone(),
        key: file.sip.key.clone(),
        ca: file.sip.ca.clone(),
        client_ca: file.sip.client_ca.clone(),
    };
    let state = args
        .state
        .unwrap_or_else(|| engine.with_file_name("msrp-signal.dialogs"));
    let serve = ServeSettings {
        state: Some(state),
        app: None,
        sip,
        engine,
        host: args.host.or(file.sip.host),
        policy,
        endpoint,
        calls_max: args.calls_max.or(file.sip.calls_max).unwrap_or(100_000),
    };
    Ok((serve, rest, file_tls))
}

fn transfer_args(args: &ServeArgs) -> anyhow::Result<TransferArgs> {
    let mut headers = Vec::new();
    for header in &args.transfer_header {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| anyhow::anyhow!("--transfer-header {header:?}: not `Name: value`"))?;
        let (name, value) = (name.trim(), value.trim());
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b));
        if !token || value.bytes().any(|b| b == b'\r' || b == b'\n') {
            anyhow::bail!("--transfer-header {header:?}: not a header name and a one-line value");
        }
        headers.push((name.to_string(), value.to_string()));
    }
    let config = TransferConfig {
        transfers_max: args.transfers_max,
        files: FilesPolicy {
            dirs: args.files_dir.clone(),
        },
        delete_before_event: args.delete_before_event,
        headers,
    };
    Ok(TransferArgs {
        msml: args.msml.then(|| (args.msml_user.clone(), args.msml_app.clone())),
        config,
        wanted: args.msml || args.store_dir.is_some(),
        store_dir: args.store_dir.clone(),
    })
}

/// msrpd's default: `$XDG_RUNTIME_DIR/msrpd.sock`, else `/run/msrpd.sock`.
fn default_engine_socket() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) => PathBuf::from(dir).join("msrpd.sock"),
        None => PathBuf::from("/run/msrpd.sock"),
    }
}
