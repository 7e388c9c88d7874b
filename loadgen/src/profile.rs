//! The load shape: a scenario's defaults, then a TOML profile file, then
//! flags, each overriding the one before.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use msrp_engine::serve::{parse_duration, parse_size};
use serde::{Deserialize, Serialize};

/// Who sends the messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The load sends, the engine receives (and answers 200).
    Load,
    /// The engine sends (`send` commands on its control socket), the load
    /// receives.
    Engine,
    Both,
}

impl Direction {
    pub fn load_sends(self) -> bool {
        matches!(self, Direction::Load | Direction::Both)
    }

    pub fn engine_sends(self) -> bool {
        matches!(self, Direction::Engine | Direction::Both)
    }
}

/// How the load's application side talks to the engine's control socket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlForm {
    /// Protocol version 2: `send`s in `batch` frames, events in `events`
    /// frames (what the engine's own clients do).
    #[default]
    Batched,
    /// Version 1: a `send` command per message, a frame per event (an
    /// application that does not batch).
    OneByOne,
}

/// Ready-made load shapes (`--scenario`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Many sessions, 160-octet texts, closed loop at maximum.
    Sms,
    /// Few sessions, 10 MiB files in 64 KiB chunks: the engine spools
    /// them to disk.
    Files,
    /// One session streaming 64 KiB messages of one chunk each, window 64:
    /// the wire and the parser at full size, bodies delivered in memory
    /// (compare with the calibration's raw bulk).
    Bulk,
    /// Texts at a fixed rate, alone and then beside a 1 GiB file on the same
    /// connections (`--file-session same`: on a session of texts too): the
    /// texts' p99 with and without the file.
    Mixed,
    /// As many idle sessions as asked for: setup rate and engine memory per
    /// session.
    Sessions,
}

/// `mixed`: which session the file goes on (`--file-session`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FileSession {
    /// A session of its own that sends no texts, as a file transfer has its
    /// own m-line; the texts share its connection.
    #[default]
    Other,
    /// The first session of the first connection, which sends texts too
    /// (one in [`FILE_SESSION_TEXT_SHARE`] of its thread's), so texts queue
    /// behind the file in that session's own send queue.
    Same,
}

/// `--file-session same`: one text in this many of the file's thread goes
/// to the file's session, so its p99 has samples enough (about 1,000/s at
/// the default rate on one load thread) beside a file that takes a second.
pub const FILE_SESSION_TEXT_SHARE: u64 = 20;

/// Message sizes with weights: `160:90,4096:9,10MiB:1`.
#[derive(Clone, Debug, PartialEq)]
pub struct SizeMix(pub Vec<(u64, u32)>);

impl SizeMix {
    /// A size drawn by weight; `roll` is uniform in `0..self.total_weight()`.
    pub fn pick(&self, mut roll: u32) -> u64 {
        for &(size, weight) in &self.0 {
            if roll < weight {
                return size;
            }
            roll -= weight;
        }
        self.0.last().map_or(0, |&(size, _)| size)
    }

    pub fn total_weight(&self) -> u32 {
        self.0.iter().map(|&(_, w)| w).sum()
    }

    pub fn largest(&self) -> u64 {
        self.0.iter().map(|&(s, _)| s).max().unwrap_or(0)
    }
}

impl FromStr for SizeMix {
    type Err = String;

    fn from_str(text: &str) -> Result<SizeMix, String> {
        let mut mix = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (size, weight) = part.split_once(':').unwrap_or((part, "1"));
            let size = parse_size(size.trim())?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| format!("weight {weight:?} in {part:?} is not a whole number"))?;
            if size == 0 {
                return Err(format!("{part:?}: a message needs at least one octet"));
            }
            if weight > 0 {
                mix.push((size, weight));
            }
        }
        if mix.is_empty() {
            return Err(format!("{text:?} names no size with a weight above 0"));
        }
        Ok(SizeMix(mix))
    }
}

impl fmt::Display for SizeMix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (size, weight)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}:{weight}", crate::units::size(*size))?;
        }
        Ok(())
    }
}

impl Serialize for SizeMix {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SizeMix {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SizeMix, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Seconds, written `30s`, `500ms` or a number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Seconds(pub f64);

impl FromStr for Seconds {
    type Err = String;

    fn from_str(text: &str) -> Result<Seconds, String> {
        match text.trim().parse::<f64>() {
            Ok(s) if s >= 0.0 && s.is_finite() => Ok(Seconds(s)),
            Ok(_) => Err(format!("{text:?} is not a duration")),
            Err(_) => parse_duration(text).map(|d| Seconds(d.as_secs_f64())),
        }
    }
}

impl Serialize for Seconds {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Seconds, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) if n >= 0.0 && n.is_finite() => Ok(Seconds(n)),
            Raw::Number(n) => Err(serde::de::Error::custom(format!("{n} is not a duration"))),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// Everything that shapes a run; written into the report as run.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub scenario: Scenario,
    /// TCP connections from the load to the engine.
    pub connections: usize,
    pub sessions_per_connection: usize,
    pub sizes: SizeMix,
    /// Body octets per chunk of the messages the load sends.
    pub chunk_bytes: u64,
    pub success_report: bool,
    pub direction: Direction,
    /// Open loop: messages per second in all, each latency measured from
    /// its scheduled send time. Absent: closed loop at maximum.
    pub rate: Option<f64>,
    /// Closed loop: messages outstanding per session.
    pub window: usize,
    pub ramp_up: Seconds,
    pub duration: Seconds,
    /// Load threads (0: one per core not given to the engine).
    pub load_threads: usize,
    /// Engine shards for the embedded engine (0: chosen from the cores).
    pub engine_shards: usize,
    /// Loopback source addresses (127.0.0.2, ...) to spread connections
    /// over (0: one per 20,000 connections).
    pub sources: usize,
    /// Measure the raw loopback limits first.
    pub calibrate: bool,
    /// Seconds per calibration phase.
    pub calibrate_seconds: Seconds,
    /// `mixed`: the size of the file sent beside the texts.
    pub file_bytes: u64,
    /// Direction `engine` and `--subscribe`: batched or one by one.
    #[serde(default)]
    pub control: ControlForm,
    /// `mixed`: the file on a session of its own, or on one that sends
    /// texts too.
    #[serde(default)]
    pub file_session: FileSession,
    /// `mixed`: each time the file is through, the next one starts, until
    /// the measured interval ends (a soak: the second half is texts beside
    /// files, not beside one).
    #[serde(default)]
    pub file_repeat: bool,
    /// The load's sessions: one-chunk messages that may go between two
    /// chunks of a larger one (`SessionSettings::interleave_messages_max`;
    /// 0 sends each message whole before the next, as before interleaving).
    #[serde(default = "default_interleave_messages_max")]
    pub interleave_messages_max: u32,
    /// The sessions are `msrps:`, carried over TLS to the engine's
    /// `--tls-listen` (`bench --tls` runs a plaintext profile and this one).
    #[serde(default)]
    pub tls: bool,
}

fn default_interleave_messages_max() -> u32 {
    msrp_engine::SessionSettings::default().interleave_messages_max
}

impl Profile {
    pub fn scenario(scenario: Scenario) -> Profile {
        let base = Profile {
            scenario,
            connections: 16,
            sessions_per_connection: 64,
            sizes: SizeMix(vec![(160, 1)]),
            chunk_bytes: 64 * 1024,
            success_report: false,
            direction: Direction::Load,
            rate: None,
            window: 4,
            ramp_up: Seconds(2.0),
            duration: Seconds(20.0),
            load_threads: 0,
            engine_shards: 0,
            sources: 0,
            calibrate: true,
            calibrate_seconds: Seconds(2.0),
            file_bytes: 0,
            control: ControlForm::Batched,
            file_session: FileSession::Other,
            file_repeat: false,
            interleave_messages_max: default_interleave_messages_max(),
            tls: false,
        };
        match scenario {
            Scenario::Sms => base,
            Scenario::Files => Profile {
                connections: 2,
                sessions_per_connection: 2,
                sizes: SizeMix(vec![(10 << 20, 1)]),
                window: 2,
                ..base
            },
            Scenario::Bulk => Profile {
                connections: 1,
                sessions_per_connection: 1,
                sizes: SizeMix(vec![(64 << 10, 1)]),
                window: 64,
                ..base
            },
            Scenario::Mixed => Profile {
                connections: 4,
                sessions_per_connection: 250,
                rate: Some(20_000.0),
                file_bytes: 1 << 30,
                ..base
            },
            Scenario::Sessions => Profile {
                connections: 100,
                sessions_per_connection: 10_000,
                window: 0,
                calibrate: false,
                ramp_up: Seconds(0.0),
                duration: Seconds(5.0),
                ..base
            },
        }
    }

    /// A 3-second run that proves the whole path works (CI).
    pub fn smoke(mut self) -> Profile {
        self.connections = self.connections.min(4);
        self.sessions_per_connection = self.sessions_per_connection.min(8);
        self.ramp_up = Seconds(0.5);
        self.duration = Seconds(2.0);
        self.calibrate_seconds = Seconds(0.25);
        self.file_bytes = self.file_bytes.min(64 << 20);
        if self.sizes.largest() > 1 << 20 {
            self.sizes = SizeMix(vec![(1 << 20, 1)]);
        }
        self
    }

    /// Reads a TOML profile over `self`: its keys are this struct's fields.
    pub fn merge_file(self, path: &Path) -> Result<Profile> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let overrides: toml::Table =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let mut merged = serde_json::to_value(&self)?;
        let fields = merged.as_object_mut().context("a profile is a table")?;
        for (key, value) in overrides {
            if !fields.contains_key(&key) {
                bail!(
                    "{}: unknown key {key:?}; the keys are {}",
                    path.display(),
                    fields.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
            fields.insert(
                key.clone(),
                toml_to_json(value).with_context(|| format!("{}: {key}", path.display()))?,
            );
        }
        serde_json::from_value(merged)
            .with_context(|| format!("{}: a value has the wrong type", path.display()))
    }

    pub fn total_sessions(&self) -> usize {
        self.connections * self.sessions_per_connection
    }

    pub fn validate(&self) -> Result<()> {
        if self.connections == 0 || self.sessions_per_connection == 0 {
            bail!("connections and sessions per connection must be at least 1");
        }
        if self.chunk_bytes < 2048 {
            bail!("the chunk size must be at least 2KiB (RFC 4975 5.1)");
        }
        if let Some(rate) = self.rate {
            if !(rate > 0.0 && rate.is_finite()) {
                bail!("--rate must be a positive number of messages per second");
            }
        }
        if self.scenario != Scenario::Sessions && self.rate.is_none() && self.window == 0 {
            bail!("a closed-loop run needs --window of at least 1");
        }
        if self.duration.0 <= 0.0 {
            bail!("--duration must be positive");
        }
        if self.file_session == FileSession::Same && self.scenario != Scenario::Mixed {
            bail!("--file-session same is for the mixed scenario, the one that sends a file beside texts");
        }
        if self.file_repeat && self.scenario != Scenario::Mixed {
            bail!("--file-repeat is for the mixed scenario, the one that sends a file beside texts");
        }
        Ok(())
    }
}

fn toml_to_json(value: toml::Value) -> Result<serde_json::Value> {
    Ok(match value {
        toml::Value::String(s) => serde_json::Value::String(s),
        toml::Value::Integer(i) => serde_json::Value::from(i),
        toml::Value::Float(f) => serde_json::Value::from(f),
        toml::Value::Boolean(b) => serde_json::Value::Bool(b),
        other => bail!("{other:?} is not a plain value"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_mixes() {
        let mix: SizeMix = "160:90,4096:9,10MiB:1".parse().unwrap();
        assert_eq!(mix.0, vec![(160, 90), (4096, 9), (10 << 20, 1)]);
        assert_eq!(mix.total_weight(), 100);
        assert_eq!(mix.pick(0), 160);
        assert_eq!(mix.pick(89), 160);
        assert_eq!(mix.pick(90), 4096);
        assert_eq!(mix.pick(99), 10 << 20);
        assert_eq!(mix.to_string().parse::<SizeMix>().unwrap(), mix);
        assert_eq!("2048".parse::<SizeMix>().unwrap().0, vec![(2048, 1)]);
        assert!("0:1".parse::<SizeMix>().is_err());
        assert!("160:x".parse::<SizeMix>().is_err());
        assert!("160:0".parse::<SizeMix>().is_err());
    }

    #[test]
    fn profile_files_override_the_scenario() {
        let dir = std::env::temp_dir().join(format!("loadgen-profile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.toml");
        std::fs::write(
            &path,
            "connections = 3\nsizes = \"1KiB:1\"\nduration = \"1500ms\"\nrate = 1000.0\n",
        )
        .unwrap();
        let p = Profile::scenario(Scenario::Sms).merge_file(&path).unwrap();
        assert_eq!(p.connections, 3);
        assert_eq!(p.sizes.0, vec![(1024, 1)]);
        assert_eq!(p.duration, Seconds(1.5));
        assert_eq!(p.rate, Some(1000.0));
        assert_eq!(
            p.sessions_per_connection, 64,
            "untouched keys keep the scenario's"
        );
        std::fs::write(&path, "conections = 3\n").unwrap();
        let error = Profile::scenario(Scenario::Sms).merge_file(&path).unwrap_err();
        assert!(
            format!("{error:#}").contains("unknown key \"conections\""),
            "{error:#}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
