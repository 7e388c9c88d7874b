//! The dialogs `msrp-signal` holds, kept in a file so that a restart can end
//! them: a line per dialog made or ended (JSON), compacted when it grows.
//! At start the dialogs a previous process left are each ended with a BYE
//! (Reason: the restart) and their engine sessions closed, one log line
//! each. Nothing is fsynced: after a machine crash the peers' own timers
//! and the engine's session expiry do the rest.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::sip::{ConnId, Dialog, DialogId, Flow, NameAddr, Transport, Uri};

/// Lines beyond this many per live dialog (and at least `COMPACT_MIN`)
/// make the file be rewritten with the live ones only.
const COMPACT_FACTOR: usize = 4;
const COMPACT_MIN: usize = 4096;

/// One dialog as the file keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialogRecord {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    pub local: String,
    pub remote: String,
    pub remote_target: String,
    pub route_set: Vec<String>,
    pub transport: String,
    pub remote_addr: SocketAddr,
    pub local_seq: u32,
    pub sessions: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Line {
    Up(Box<DialogRecord>),
    Down { call_id: String, local_tag: String },
}

impl DialogRecord {
    pub fn of(dialog: &Dialog, sessions: &[String]) -> DialogRecord {
        DialogRecord {
            call_id: dialog.id.call_id.clone(),
            local_tag: dialog.id.local_tag.clone(),
            remote_tag: dialog.id.remote_tag.clone(),
            local: dialog.local.to_string(),
            remote: dialog.remote.to_string(),
            remote_target: dialog.remote_target.to_string(),
            route_set: dialog.route_set.clone(),
            transport: dialog.flow.transport.via_name().into(),
            remote_addr: dialog.flow.remote,
            local_seq: dialog.local_seq,
            sessions: sessions.to_vec(),
        }
    }

    /// The dialog again, to send its BYE; `None` when a value no longer
    /// parses (the line is logged and dropped).
    pub fn dialog(&self) -> Option<Dialog> {
        let transport = Transport::from_param(&self.transport).unwrap_or(Transport::Udp);
        Some(Dialog {
            id: DialogId {
                call_id: self.call_id.clone(),
                local_tag: self.local_tag.clone(),
                remote_tag: self.remote_tag.clone(),
            },
            local_seq: self.local_seq,
            remote_seq: None,
            local: NameAddr::parse(&self.local).ok()?,
            remote: NameAddr::parse(&self.remote).ok()?,
            remote_target: Uri::parse(&self.remote_target).ok()?,
            route_set: self.route_set.clone(),
            flow: Flow {
                transport,
                remote: self.remote_addr,
                conn: None::<ConnId>,
            },
        })
    }

    fn key(&self) -> (String, String) {
        (self.call_id.clone(), self.local_tag.clone())
    }
}

pub struct Journal {
    path: PathBuf,
    out: BufWriter<File>,
    live: HashMap<(String, String), DialogRecord>,
    lines: usize,
}

impl Journal {
    /// Opens the file, returning the dialogs a previous process left, and
    /// starts it afresh.
    pub fn open(path: &Path) -> std::io::Result<(Journal, Vec<DialogRecord>)> {
        let mut left: HashMap<(String, String), DialogRecord> = HashMap::new();
        match File::open(path) {
            Ok(file) => {
                for line in BufReader::new(file).lines() {
                    match serde_json::from_str::<Line>(&line?) {
                        Ok(Line::Up(record)) => {
                            left.insert(record.key(), *record);
                        }
                        Ok(Line::Down { call_id, local_tag }) => {
                            left.remove(&(call_id, local_tag));
                        }
                        // A line cut short by a crash.
                        Err(error) => {
                            tracing::warn!(path = %path.display(), %error, "dialog journal: unreadable line skipped")
                        }
                    }
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)?;
        let journal = Journal {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            live: HashMap::new(),
            lines: 0,
        };
        Ok((journal, left.into_values().collect()))
    }

    pub fn up(&mut self, record: DialogRecord) {
        self.write(&Line::Up(Box::new(record.clone())));
        self.live.insert(record.key(), record);
    }

    pub fn down(&mut self, call_id: &str, local_tag: &str) {
        if self
            .live
            .remove(&(call_id.to_string(), local_tag.to_string()))
            .is_some()
        {
            self.write(&Line::Down {
                call_id: call_id.into(),
                local_tag: local_tag.into(),
            });
        }
    }

    /// Writes what is buffered (once per turn of the core task), and
    /// rewrites the file when ended dialogs dominate it.
    pub fn flush(&mut self) {
        if self.lines > COMPACT_MIN.max(self.live.len() * COMPACT_FACTOR) {
            if let Err(error) = self.compact() {
                tracing::warn!(path = %self.path.display(), %error, "dialog journal: compaction failed");
            }
        }
        if let Err(error) = self.out.flush() {
            tracing::warn!(path = %self.path.display(), %error, "dialog journal: write failed");
        }
    }

    fn compact(&mut self) -> std::io::Result<()> {
        let fresh = self.path.with_extension("compacting");
        let mut out = BufWriter::new(File::create(&fresh)?);
        for record in self.live.values() {
            serde_json::to_writer(&mut out, &Line::Up(Box::new(record.clone())))?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        std::fs::rename(&fresh, &self.path)?;
        self.out = BufWriter::new(OpenOptions::new().append(true).open(&self.path)?);
        self.lines = self.live.len();
        Ok(())
    }

    fn write(&mut self, line: &Line) {
        let result = serde_json::to_writer(&mut self.out, line)
            .map_err(std::io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"));
        if let Err(error) = result {
            tracing::warn!(path = %self.path.display(), %error, "dialog journal: write failed");
        }
        self.lines += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(call_id: &str) -> DialogRecord {
        DialogRecord {
            call_id: call_id.into(),
            local_tag: "l".into(),
            remote_tag: "r".into(),
            local: "<sip:ms@192.0.2.1>;tag=l".into(),
            remote: "<sip:a@192.0.2.2>;tag=r".into(),
            remote_target: "sip:a@192.0.2.2:5062".into(),
            route_set: vec![],
            transport: "UDP".into(),
            remote_addr: "192.0.2.2:5062".parse().unwrap(),
            local_seq: 0,
            sessions: vec!["s1".into()],
        }
    }

    #[test]
    fn the_dialogs_left_open_are_found_again_and_the_file_starts_afresh() {
        let dir = std::env::temp_dir().join(format!("journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dialogs");
        let (mut journal, left) = Journal::open(&path).unwrap();
        assert!(left.is_empty());
        journal.up(record("a"));
        journal.up(record("b"));
        journal.down("a", "l");
        journal.flush();
        drop(journal);
        let (journal, left) = Journal::open(&path).unwrap();
        assert_eq!(left, vec![record("b")]);
        let dialog = left[0].dialog().unwrap();
        assert_eq!(dialog.remote_target.to_string(), "sip:a@192.0.2.2:5062");
        drop(journal);
        let (_, left) = Journal::open(&path).unwrap();
        assert!(left.is_empty(), "each start takes over what it found");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ended_dialogs_are_compacted_away() {
        let dir = std::env::temp_dir().join(format!("journal-c-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dialogs");
        let (mut journal, _) = Journal::open(&path).unwrap();
        for i in 0..3000 {
            journal.up(record(&i.to_string()));
            journal.down(&i.to_string(), "l");
        }
        journal.up(record("kept"));
        journal.flush();
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert_eq!(lines, 1, "only the live dialog is left");
        drop(journal);
        let (_, left) = Journal::open(&path).unwrap();
        assert_eq!(left.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
