//! Files pushed to us (RFC 5547 push: the offer's `a=file-selector` names
//! the file, its size and hash): when one arrives whole, its size and
//! sha-1 are checked against the offer before anything says it was
//! received. A match is stored under a safe name derived from the
//! announced one (RFC 5547 6: a name is never a path here) and the held
//! success REPORT goes out (`report` 200, RFC 4975 7.1.2); a mismatch is
//! removed and answered with a failure REPORT. The `message` event (or
//! `failed`) comes after that, with the stored path.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use msrp_engine::control::EngineEvent;

use super::{App, EventType};
use crate::sdp::{FileHash, FileSelector};

/// A pushed file that arrived whole, to check.
#[derive(Clone, Debug)]
pub struct Pushed {
    /// The application session.
    pub session: String,
    pub engine_session: String,
    pub message_id: String,
    pub content_type: String,
    pub size: u64,
    /// Where the engine spooled it, or its octets when it came inline.
    pub spooled: Option<PathBuf>,
    pub body: Option<Bytes>,
    pub expected: FileSelector,
    /// The engine holds the success REPORT for our word.
    pub report_held: bool,
}

/// The check's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Stored here.
    Stored { path: PathBuf, sha1: String },
    /// It is not the announced file (or could not be stored): the MSRP
    /// status of the failure REPORT and why.
    Refused { status: u16, reason: String },
}

impl Verdict {
    /// The `report` status and comment.
    pub fn report(&self) -> (u16, Option<&str>) {
        match self {
            Verdict::Stored { .. } => (200, None),
            Verdict::Refused { status, reason } => (*status, Some(reason.as_str())),
        }
    }
}

impl App {
    /// A `message_received` of a session that was offered a pushed file.
    pub fn pushed(&self, event: &EngineEvent, payload: &[u8]) -> Option<Pushed> {
        let EngineEvent::MessageReceived {
            session_id,
            message_id,
            content_type,
            size,
            path,
            report_held,
            ..
        } = event
        else {
            return None;
        };
        let id = self.sessions.id_of_engine(session_id)?;
        let leg = self
            .sessions
            .by_id(id)?
            .legs
            .iter()
            .find(|leg| &leg.engine_session == session_id)?;
        let expected = leg.pushed.clone()?;
        Some(Pushed {
            session: id.to_string(),
            engine_session: session_id.clone(),
            message_id: message_id.clone(),
            content_type: content_type.clone(),
            size: *size,
            spooled: path.as_ref().map(PathBuf::from),
            body: path.is_none().then(|| Bytes::copy_from_slice(payload)),
            expected,
            report_held: *report_held,
        })
    }

    /// The check is done: `message` with the stored path, or `failed`.
    pub fn pushed_done(&mut self, pushed: &Pushed, verdict: &Verdict, now_ms: u64) {
        match verdict {
            Verdict::Stored { path, sha1 } => {
                self.counters.messages_in.add(super::cpim::MessageClass::Content);
                self.counters.bytes_in += pushed.size;
                if let Some(session) = self.sessions.by_id_mut(&pushed.session) {
                    session.counters.messages_in += 1;
                    session.counters.bytes_in += pushed.size;
                }
                let fields = serde_json::json!({
                    "message_id": pushed.message_id,
                    "content_type": pushed.content_type,
                    "size": pushed.size,
                    "path": path.display().to_string(),
                    "class": "content",
                    "file": {
                        "name": pushed.expected.name,
                        "sha1": sha1,
                        "verified": true,
                    },
                });
                self.emit(&pushed.session, EventType::Message, now_ms, &fields);
            }
            Verdict::Refused { status, reason } => {
                let fields = serde_json::json!({
                    "message_id": pushed.message_id,
                    "direction": "incoming",
                    "status": status,
                    "reason": reason,
                });
                self.emit(&pushed.session, EventType::Failed, now_ms, &fields);
            }
        }
    }
}

/// The announced name made safe: its last segment of either slash kind,
/// only letters, digits, `.`, `-` and `_` kept (others become `_`), no
/// leading dots (no `..`, no hidden files); `file` when nothing is left.
pub fn safe_name(announced: &str) -> String {
    let last = announced.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' => c,
            _ => '_',
        })
        .collect();
    let trimmed = cleaned.trim_start_matches('.');
    match trimmed.is_empty() {
        true => "file".to_string(),
        false => trimmed.chars().take(200).collect(),
    }
}

/// `name`, or `stem-N.ext` for the first N that is free in `dir`.
fn free_path(dir: &Path, name: &str) -> Option<PathBuf> {
    let first = dir.join(name);
    if !first.exists() {
        return Some(first);
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, format!(".{ext}")),
        _ => (name, String::new()),
    };
    (1..10_000)
        .map(|n| dir.join(format!("{stem}-{n}{ext}")))
        .find(|path| !path.exists())
}

/// Checks and stores a pushed file (blocking: it reads the whole file
/// once, in 1 MiB pieces). `store`: where to keep it (default: where the
/// engine spooled it).
pub fn check_and_store(pushed: &Pushed, store: Option<&Path>) -> Verdict {
    let refuse = |status: u16, reason: String| {
        if let Some(spooled) = &pushed.spooled {
            let _ = std::fs::remove_file(spooled);
        }
        Verdict::Refused { status, reason }
    };
    let (size, digest) = match (&pushed.spooled, &pushed.body) {
        (Some(path), _) => match crate::digest::sha1_of_file(path) {
            Ok(measured) => measured,
            Err(e) => return refuse(400, format!("the received file {}: {e}", path.display())),
        },
        (None, Some(body)) => (
            body.len() as u64,
            sha1_smol::Sha1::from(&body[..]).digest().bytes(),
        ),
        (None, None) => return refuse(400, "the received file has no octets".into()),
    };
    if let Some(announced) = pushed.expected.size {
        if announced != size {
            return refuse(
                400,
                format!("size mismatch: {size} octets, {announced} announced"),
            );
        }
    }
    let sha1 = FileHash::sha1_digest(digest).value;
    let announced = pushed
        .expected
        .hashes
        .iter()
        .find(|h| h.algorithm.eq_ignore_ascii_case("sha-1"));
    if let Some(announced) = announced {
        if !announced.value.eq_ignore_ascii_case(&sha1) {
            return refuse(
                400,
                format!("sha-1 mismatch: {sha1}, {} announced", announced.value),
            );
        }
    }
    let dir = match (store, &pushed.spooled) {
        (Some(dir), _) => dir.to_path_buf(),
        (None, Some(spooled)) => spooled.parent().map(Path::to_path_buf).unwrap_or_default(),
        (None, None) => std::env::temp_dir(),
    };
    let name = safe_name(pushed.expected.name.as_deref().unwrap_or("file"));
    let Some(path) = free_path(&dir, &name) else {
        return refuse(400, format!("no free name for {name} in {}", dir.display()));
    };
    let stored = match (&pushed.spooled, &pushed.body) {
        (Some(spooled), _) => std::fs::rename(spooled, &path).or_else(|_| {
            // Another file system: copy, then remove the spooled one.
            std::fs::copy(spooled, &path).and_then(|_| std::fs::remove_file(spooled))
        }),
        (None, Some(body)) => std::fs::write(&path, body),
        (None, None) => Ok(()),
    };
    match stored {
        Ok(()) => Verdict::Stored { path, sha1 },
        Err(e) => refuse(400, format!("storing {}: {e}", path.display())),
    }
}

/// The events thread's part: check in a blocking thread, tell the engine
/// (when it holds the REPORT), then the application.
pub async fn settle(
    pushed: Pushed,
    store: Option<PathBuf>,
    engine: msrp_engine::control::AsyncClient,
    app: super::SharedApp,
) {
    let job = pushed.clone();
    let verdict = tokio::task::spawn_blocking(move || check_and_store(&job, store.as_deref()))
        .await
        .unwrap_or_else(|e| Verdict::Refused {
            status: 400,
            reason: format!("checking the file: {e}"),
        });
    match &verdict {
        Verdict::Stored { path, .. } => {
            tracing::info!(session = %pushed.session, path = %path.display(), "a pushed file was checked and stored")
        }
        Verdict::Refused { reason, .. } => {
            tracing::warn!(session = %pushed.session, %reason, "a pushed file was refused")
        }
    }
    if pushed.report_held {
        let (status, comment) = verdict.report();
        if let Err(error) = engine
            .report(&pushed.engine_session, &pushed.message_id, status, comment)
            .await
        {
            tracing::warn!(session = %pushed.session, %error, "the REPORT for a pushed file was not sent");
        }
    }
    let now = super::unix_ms(std::time::SystemTime::now());
    super::lock(&app).pushed_done(&pushed, &verdict, now);
}

/// What a pushed file's offer announced, for the leg (`None`: not a push).
pub fn expected_of(media: &crate::sdp::NegotiatedMedia) -> Option<FileSelector> {
    let file = media.remote.file.as_ref()?;
    let pushed = media.remote.direction == crate::sdp::Direction::SendOnly;
    file.selector.clone().filter(|_| pushed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_their_directories_and_dots() {
        assert_eq!(safe_name("RECORD_VMD4_1.amr"), "RECORD_VMD4_1.amr");
        assert_eq!(
            safe_name("/testing/mxm/recordings/RECORD_VMD4_1.amr"),
            "RECORD_VMD4_1.amr"
        );
        assert_eq!(safe_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_name("..\\..\\boot.ini"), "boot.ini");
        assert_eq!(safe_name(".."), "file");
        assert_eq!(safe_name(".hidden"), "hidden");
        assert_eq!(safe_name("a b;c.wav"), "a_b_c.wav");
        assert_eq!(safe_name(""), "file");
    }

    #[test]
    fn a_taken_name_gets_a_number() {
        let dir = std::env::temp_dir().join(format!("msrp-received-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.amr"), b"x").unwrap();
        std::fs::write(dir.join("a-1.amr"), b"x").unwrap();
        assert_eq!(free_path(&dir, "a.amr").unwrap(), dir.join("a-2.amr"));
        assert_eq!(free_path(&dir, "b").unwrap(), dir.join("b"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn pushed(dir: &Path, octets: &[u8], size: u64, sha1: &str) -> Pushed {
        let spooled = dir.join("spooled");
        std::fs::write(&spooled, octets).unwrap();
        Pushed {
            session: "s".into(),
            engine_session: "e".into(),
            message_id: "m".into(),
            content_type: "audio/amr".into(),
            size: octets.len() as u64,
            spooled: Some(spooled),
            body: None,
            expected: FileSelector {
                name: Some("../x/voice.amr".into()),
                size: Some(size),
                hashes: vec![FileHash {
                    algorithm: "sha-1".into(),
                    value: sha1.into(),
                }],
                ..FileSelector::default()
            },
            report_held: true,
        }
    }

    #[test]
    fn the_announced_file_is_stored_and_another_is_refused_and_removed() {
        let dir = std::env::temp_dir().join(format!("msrp-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let octets = b"hello voicemail";
        let sha1 = FileHash::sha1_digest(sha1_smol::Sha1::from(&octets[..]).digest().bytes()).value;
        let good = pushed(&dir, octets, octets.len() as u64, &sha1.to_lowercase());
        match check_and_store(&good, None) {
            Verdict::Stored { path, .. } => {
                assert_eq!(path, dir.join("voice.amr"));
                assert_eq!(std::fs::read(&path).unwrap(), octets);
            }
            other => panic!("{other:?}"),
        }
        let wrong_hash = pushed(&dir, b"hello voicemaiL", octets.len() as u64, &sha1);
        let verdict = check_and_store(&wrong_hash, None);
        assert!(
            matches!(&verdict, Verdict::Refused { status: 400, reason } if reason.contains("sha-1 mismatch")),
            "{verdict:?}"
        );
        assert!(!dir.join("spooled").exists());
        let wrong_size = pushed(&dir, octets, 99, &sha1);
        let verdict = check_and_store(&wrong_size, None);
        assert!(
            matches!(&verdict, Verdict::Refused { reason, .. } if reason.contains("size mismatch")),
            "{verdict:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
