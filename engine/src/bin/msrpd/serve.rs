//! `msrpd serve`: flags, the TOML config file, logging.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use msrp_engine::serve::{self, ServeConfig};

#[derive(clap::Args)]
pub struct ServeArgs {
    /// A TOML file of settings, keyed by flag name (`shards = 4`,
    /// `listen = ["0.0.0.0:2855"]`, `durable = true`); flags given on the
    /// command line override it (repeatable flags add to it).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: ServeConfig,
}

/// The config file as flags, to be put before the command line's own.
pub fn file_args(path: &Path) -> anyhow::Result<Vec<OsString>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", path.display()))?;
    let mut args = Vec::new();
    for (key, value) in table {
        if key == "config" {
            bail!(
                "{}: a config file cannot name another (key `config`)",
                path.display()
            );
        }
        let flag = OsString::from(format!("--{key}"));
        let values = match value {
            toml::Value::Array(items) => items,
            toml::Value::Boolean(true) => {
                args.push(flag);
                continue;
            }
            toml::Value::Boolean(false) => continue,
            other => vec![other],
        };
        for item in values {
            let text = match item {
                toml::Value::String(s) => s,
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Float(f) => f.to_string(),
                other => bail!(
                    "{}: `{key}` has a value of type {} that no flag takes",
                    path.display(),
                    other.type_str()
                ),
            };
            args.push(flag.clone());
            args.push(OsString::from(text));
        }
    }
    Ok(args)
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let level: tracing::Level = args.settings.log.parse().map_err(|_| {
        anyhow::anyhow!(
            "--log {:?}: use error, warn, info, debug or trace",
            args.settings.log
        )
    })?;
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    serve::run(args.settings, |ready| {
        let listen: Vec<String> = ready.listen.iter().map(ToString::to_string).collect();
        // One line a supervisor or a test can wait for.
        let tls_listen: Vec<String> = ready.tls_listen.iter().map(ToString::to_string).collect();
        let mut tls = String::new();
        if let (Some(advertise), Some(fingerprint)) = (&ready.tls_advertise, &ready.local_fingerprint) {
            // The fingerprint's space would split the field: colons stay.
            tls = format!(
                " msrps={} tls-advertise={advertise} fingerprint={}",
                tls_listen.join(","),
                fingerprint.replace(' ', "/")
            );
        }
        println!(
            "msrpd ready msrp={} control={} advertise={} shards={}{tls}",
            listen.join(","),
            ready.control.display(),
            ready.advertise,
            ready.shards
        );
    })?;
    Ok(ExitCode::SUCCESS)
}
