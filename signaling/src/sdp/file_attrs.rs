//! RFC 5547 file-transfer attributes of one `m=message` media description.
//!
//! RFC 5547 6 (the ABNF, quoted in MSRP-DIGEST 7.8):
//! ```text
//! file-selector-attr = "file-selector" [":" selector *(SP selector)]
//! selector           = filename-selector / filesize-selector / filetype-selector / hash-selector
//! filename-selector  = "name:" DQUOTE filename-string DQUOTE
//! filetype-selector  = "type:" type "/" subtype *(";" attribute "=" DQUOTE value-string DQUOTE)
//! filesize-selector  = "size:" integer
//! hash-selector      = "hash:" hash-algorithm ":" 2HEXDIG *(":" 2HEXDIG)
//! file-tr-id-attr    = "file-transfer-id:" token
//! file-disp-attr     = "file-disposition:" token
//! file-date-attr     = "file-date:" date-param *(SP date-param)
//! date-param         = c-p-time / m-p-time / r-p-time       ; "creation:" DQUOTE date-time DQUOTE ...
//! file-icon-attr     = "file-icon:" cid-url
//! file-range-attr    = "file-range:" start-offset "-" (stop-offset / "*")
//! ```
//! Values are kept as the peer wrote them where RFC 5547 gives us nothing to
//! act on (dates stay RFC 5322 text, dispositions stay tokens).

use thiserror::Error;

/// A file attribute the grammar above does not admit.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FileAttrError {
    #[error("a=file-selector: {0}")]
    Selector(String),
    #[error("a=file-date: {0}")]
    Date(String),
    #[error("a=file-range: {0:?} is not START-STOP or START-*")]
    Range(String),
    #[error("a={name}: a value is required")]
    MissingValue { name: &'static str },
}

/// The `a=file-*` attributes of one media description (RFC 5547 6).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileAttributes {
    /// `Some(FileSelector::default())` is the empty `a=file-selector` of a
    /// capability description (RFC 5547 8.5).
    pub selector: Option<FileSelector>,
    pub transfer_id: Option<String>,
    /// `render` when absent (RFC 5547 7).
    pub disposition: Option<String>,
    pub dates: Vec<FileDate>,
    /// A `cid:` URL naming a body part of a multipart/related body (RFC 5547 8.8).
    pub icon: Option<String>,
    pub range: Option<FileRange>,
}

/// `a=file-selector` (RFC 5547 6): every selector is optional, several
/// hashes may appear.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSelector {
    /// Decoded (percent-escapes undone). Sanitise before any file-system call
    /// (RFC 5547 6).
    pub name: Option<String>,
    pub file_type: Option<FileType>,
    /// Octets of the file, not of a wrapper (RFC 5547 6).
    pub size: Option<u64>,
    pub hashes: Vec<FileHash>,
    /// Selectors of a later extension, kept verbatim.
    pub extensions: Vec<String>,
}

/// `type:` selector: a MIME type and its parameters (values unquoted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileType {
    pub mime: String,
    pub params: Vec<(String, String)>,
}

/// `hash:` selector; `value` is the colon-separated upper-case hex (`72:24:...`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileHash {
    pub algorithm: String,
    pub value: String,
}

/// One `date-param`: `kind` is `creation`, `modification` or `read`; `value`
/// the RFC 5322 date-time text without its quotes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileDate {
    pub kind: String,
    pub value: String,
}

/// `a=file-range`: 1-based, inclusive; `stop: None` is `*` (RFC 5547 6).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileRange {
    pub start: u64,
    pub stop: Option<u64>,
}

/// The attribute names this module owns.
pub const FILE_ATTRIBUTE_NAMES: [&str; 6] = [
    "file-selector",
    "file-transfer-id",
    "file-disposition",
    "file-date",
    "file-icon",
    "file-range",
];

impl FileAttributes {
    /// True when no file attribute was present.
    pub fn is_empty(&self) -> bool {
        *self == FileAttributes::default()
    }

    /// Takes one attribute into `self`; `Ok(false)` when it is not a file attribute.
    pub fn read_attribute(&mut self, name: &str, value: Option<&str>) -> Result<bool, FileAttrError> {
        let value = value.map(str::trim);
        match name {
            "file-selector" => self.selector = Some(FileSelector::parse(value.unwrap_or(""))?),
            "file-transfer-id" => self.transfer_id = Some(required(value, "file-transfer-id")?.to_owned()),
            "file-disposition" => self.disposition = Some(required(value, "file-disposition")?.to_owned()),
            "file-date" => self.dates = parse_dates(required(value, "file-date")?)?,
            "file-icon" => self.icon = Some(required(value, "file-icon")?.to_owned()),
            "file-range" => self.range = Some(FileRange::parse(required(value, "file-range")?)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The attributes in RFC 5547 Figure 2 order, as `(name, value)`.
    pub fn attributes(&self) -> Vec<(String, Option<String>)> {
        let mut out = Vec::new();
        if let Some(selector) = &self.selector {
            let text = selector.to_string();
            // RFC 5547 8.5: the capability form has no value at all.
            out.push(("file-selector".to_owned(), (!text.is_empty()).then_some(text)));
        }
        if let Some(id) = &self.transfer_id {
            out.push(("file-transfer-id".to_owned(), Some(id.clone())));
        }
        if let Some(disposition) = &self.disposition {
            out.push(("file-disposition".to_owned(), Some(disposition.clone())));
        }
        if !self.dates.is_empty() {
            let text: Vec<String> = self
                .dates
                .iter()
                .map(|d| format!("{}:\"{}\"", d.kind, d.value))
                .collect();
            out.push(("file-date".to_owned(), Some(text.join(" "))));
        }
        if let Some(icon) = &self.icon {
            out.push(("file-icon".to_owned(), Some(icon.clone())));
        }
        if let Some(range) = &self.range {
            out.push(("file-range".to_owned(), Some(range.to_string())));
        }
        out
    }

    /// What a push answerer echoes (RFC 5547 8.3.1): the selector and the
    /// transfer id, and a range it accepts; never icon, disposition or date.
    pub fn for_answer(&self) -> FileAttributes {
        FileAttributes {
            selector: self.selector.clone(),
            transfer_id: self.transfer_id.clone(),
            range: self.range,
            ..FileAttributes::default()
        }
    }
}

fn required<'a>(value: Option<&'a str>, name: &'static str) -> Result<&'a str, FileAttrError> {
    match value {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(FileAttrError::MissingValue { name }),
    }
}

/// Splits on SP outside double quotes (a quoted name may hold spaces).
fn split_outside_quotes(text: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => {
                if i > start {
                    parts.push(&text[start..i]);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return Err("unterminated quoted string".to_owned());
    }
    if start < text.len() {
        parts.push(&text[start..]);
    }
    Ok(parts)
}

fn unquote(text: &str) -> Option<&str> {
    text.strip_prefix('"')?.strip_suffix('"')
}

/// RFC 5547 6 filename-string: `%` HEXDIG HEXDIG stands for one octet; the
/// octets are UTF-8.
fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-escape in name {text:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("name {text:?} is not UTF-8"))
}

/// RFC 5547 6: `"`, `%`, CR, LF and NUL are not filename-char. `/` and `\`
/// are escaped too so that no name we write forms a directory path.
fn percent_encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '"' | '%' | '\r' | '\n' | '\0' | '/' | '\\' => out.push_str(&format!("%{:02X}", c as u32)),
            _ => out.push(c),
        }
    }
    out
}

impl FileSelector {
    /// True for the capability form: no selector at all (RFC 5547 8.5).
    pub fn is_empty(&self) -> bool {
        *self == FileSelector::default()
    }

    pub fn parse(text: &str) -> Result<FileSelector, FileAttrError> {
        let mut selector = FileSelector::default();
        for part in split_outside_quotes(text).map_err(FileAttrError::Selector)? {
            if let Some(name) = part.strip_prefix("name:") {
                let inner = unquote(name)
                    .ok_or_else(|| FileAttrError::Selector(format!("name {name} is not quoted")))?;
                selector.name = Some(percent_decode(inner).map_err(FileAttrError::Selector)?);
            } else if let Some(size) = part.strip_prefix("size:") {
                let size = size
                    .parse::<u64>()
                    .map_err(|_| FileAttrError::Selector(format!("size {size:?} is not an integer")))?;
                selector.size = Some(size);
            } else if let Some(file_type) = part.strip_prefix("type:") {
                selector.file_type = Some(FileType::parse(file_type)?);
            } else if let Some(hash) = part.strip_prefix("hash:") {
                selector.hashes.push(FileHash::parse(hash)?);
            } else {
                selector.extensions.push(part.to_owned());
            }
        }
        Ok(selector)
    }
}

impl std::fmt::Display for FileSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(name) = &self.name {
            parts.push(format!("name:\"{}\"", percent_encode(name)));
        }
        if let Some(file_type) = &self.file_type {
            parts.push(format!("type:{file_type}"));
        }
        if let Some(size) = self.size {
            parts.push(format!("size:{size}"));
        }
        for hash in &self.hashes {
            parts.push(format!("hash:{}:{}", hash.algorithm, hash.value));
        }
        parts.extend(self.extensions.iter().cloned());
        f.write_str(&parts.join(" "))
    }
}

impl FileType {
    pub fn parse(text: &str) -> Result<FileType, FileAttrError> {
        let mut pieces = text.split(';');
        let mime = pieces.next().unwrap_or_default();
        if !mime.contains('/') {
            return Err(FileAttrError::Selector(format!(
                "type {mime:?} is not type/subtype"
            )));
        }
        let mut params = Vec::new();
        for param in pieces {
            let (name, value) = param
                .split_once('=')
                .ok_or_else(|| FileAttrError::Selector(format!("type parameter {param:?} has no '='")))?;
            // The ABNF quotes values; a bare token is read leniently.
            let value = unquote(value).unwrap_or(value);
            params.push((name.to_owned(), value.to_owned()));
        }
        Ok(FileType {
            mime: mime.to_owned(),
            params,
        })
    }
}

impl std::fmt::Display for FileType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.mime)?;
        for (name, value) in &self.params {
            write!(f, ";{name}=\"{value}\"")?;
        }
        Ok(())
    }
}

impl FileHash {
    fn parse(text: &str) -> Result<FileHash, FileAttrError> {
        let (algorithm, value) = text
            .split_once(':')
            .ok_or_else(|| FileAttrError::Selector(format!("hash {text:?} has no algorithm")))?;
        let pairs_ok = !value.is_empty()
            && value
                .split(':')
                .all(|pair| pair.len() == 2 && pair.bytes().all(|b| b.is_ascii_hexdigit()));
        if algorithm.is_empty() || !pairs_ok {
            return Err(FileAttrError::Selector(format!(
                "hash {text:?} is not ALG:HH:HH..."
            )));
        }
        Ok(FileHash {
            algorithm: algorithm.to_owned(),
            value: value.to_owned(),
        })
    }

    /// The RFC 5547 6 `sha-1` selector of `file`: upper-case hex pairs.
    pub fn sha1_of(file: &[u8]) -> FileHash {
        FileHash::sha1_digest(sha1_smol::Sha1::from(file).digest().bytes())
    }

    /// The same from a digest computed elsewhere (a file read in pieces).
    pub fn sha1_digest(digest: [u8; 20]) -> FileHash {
        let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
        FileHash {
            algorithm: "sha-1".to_owned(),
            value: hex.join(":"),
        }
    }
}

fn parse_dates(text: &str) -> Result<Vec<FileDate>, FileAttrError> {
    let mut dates = Vec::new();
    for part in split_outside_quotes(text).map_err(FileAttrError::Date)? {
        let (kind, value) = part
            .split_once(':')
            .ok_or_else(|| FileAttrError::Date(format!("{part:?} is not KIND:\"DATE\"")))?;
        let value = unquote(value).ok_or_else(|| FileAttrError::Date(format!("{value} is not quoted")))?;
        dates.push(FileDate {
            kind: kind.to_owned(),
            value: value.to_owned(),
        });
    }
    Ok(dates)
}

impl FileRange {
    fn parse(text: &str) -> Result<FileRange, FileAttrError> {
        let bad = || FileAttrError::Range(text.to_owned());
        let (start, stop) = text.split_once('-').ok_or_else(bad)?;
        let start = start.parse::<u64>().map_err(|_| bad())?;
        let stop = if stop == "*" {
            None
        } else {
            Some(stop.parse::<u64>().map_err(|_| bad())?)
        };
        // RFC 5547 6: offsets are 1-based and the range is not empty.
        if start == 0 || stop.is_some_and(|stop| stop < start) {
            return Err(bad());
        }
        Ok(FileRange { start, stop })
    }
}

impl std::fmt::Display for FileRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.stop {
            Some(stop) => write!(f, "{}-{stop}", self.start),
            None => write!(f, "{}-*", self.start),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(attrs: &[(&str, Option<&str>)]) -> FileAttributes {
        let mut file = FileAttributes::default();
        for (name, value) in attrs {
            assert!(file.read_attribute(name, *value).unwrap());
        }
        file
    }

    const S11_SELECTOR: &str = "name:\"My cool picture.jpg\" type:image/jpeg size:32349 \
        hash:sha-1:72:24:5F:E8:65:3D:DA:F3:71:36:2F:86:D4:71:91:3E:E4:A2:CE:2E";

    #[test]
    fn s11_all_attributes() {
        let file = read(&[
            ("file-selector", Some(S11_SELECTOR)),
            ("file-transfer-id", Some("vBnG916bdberum2fFEABR1FR3ExZMUrd")),
            ("file-disposition", Some("attachment")),
            ("file-date", Some("creation:\"Mon, 15 May 2006 15:01:31 +0300\"")),
            ("file-icon", Some("cid:id2@alicepc.example.com")),
            ("file-range", Some("1-32349")),
        ]);
        let selector = file.selector.as_ref().unwrap();
        assert_eq!(selector.name.as_deref(), Some("My cool picture.jpg"));
        assert_eq!(selector.file_type.as_ref().unwrap().mime, "image/jpeg");
        assert_eq!(selector.size, Some(32349));
        assert_eq!(selector.hashes[0].algorithm, "sha-1");
        assert_eq!(
            selector.hashes[0].value,
            "72:24:5F:E8:65:3D:DA:F3:71:36:2F:86:D4:71:91:3E:E4:A2:CE:2E"
        );
        assert_eq!(
            file.dates,
            vec![FileDate {
                kind: "creation".into(),
                value: "Mon, 15 May 2006 15:01:31 +0300".into()
            }]
        );
        assert_eq!(
            file.range,
            Some(FileRange {
                start: 1,
                stop: Some(32349)
            })
        );
        // The written form is the vector's, attribute for attribute.
        let written = file.attributes();
        assert_eq!(written[0].1.as_deref(), Some(S11_SELECTOR));
        assert_eq!(
            written[3].1.as_deref(),
            Some("creation:\"Mon, 15 May 2006 15:01:31 +0300\"")
        );
        assert_eq!(written[5].1.as_deref(), Some("1-32349"));
        assert_eq!(written.len(), 6);
    }

    #[test]
    fn s14_hash_only_pull_and_s15_type_plus_hash() {
        let pull =
            FileSelector::parse("hash:sha-1:72:24:5F:E8:65:3D:DA:F3:71:36:2F:86:D4:71:91:3E:E4:A2:CE:2E")
                .unwrap();
        assert!(pull.name.is_none() && pull.size.is_none() && pull.hashes.len() == 1);
        let answer = FileSelector::parse(
            "type:image/jpeg hash:sha-1:72:24:5F:E8:65:3D:DA:F3:71:36:2F:86:D4:71:91:3E:E4:A2:CE:2E",
        )
        .unwrap();
        assert_eq!(answer.file_type.unwrap().mime, "image/jpeg");
    }

    #[test]
    fn s18_empty_selector_is_the_capability_form() {
        let file = read(&[("file-selector", None)]);
        assert!(file.selector.as_ref().unwrap().is_empty());
        assert_eq!(file.attributes(), vec![("file-selector".to_owned(), None)]);
    }

    #[test]
    fn sip06_voicemail_push_and_its_answer() {
        let file = read(&[
            ("file-selector", Some("name:\"RECORD_VMD4_1.amr\" type:audio/amr size:6406 hash:sha-1:8A:38:4D:EA:02:E7:DD:AB:F1:74:76:5F:5C:20:B6:C8:30:42:E8:EF")),
            ("file-transfer-id", Some("Vq3ZpX8mW2nRt6Ly0KfB9sHd4GjC1aEu")),
            ("file-disposition", Some("attachment")),
            ("file-date", Some("creation:\"Mon, 30 Nov 2026 16:40:12 +0000\"")),
        ]);
        let answer = file.for_answer();
        let names: Vec<String> = answer.attributes().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["file-selector", "file-transfer-id"]);
        assert_eq!(
            answer.transfer_id.as_deref(),
            Some("Vq3ZpX8mW2nRt6Ly0KfB9sHd4GjC1aEu")
        );
    }

    #[test]
    fn sip06_hash_matches_the_file() {
        let amr = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../vectors/sip/files/RECORD_VMD4_1.amr"
        ))
        .unwrap();
        assert_eq!(
            FileHash::sha1_of(&amr).value,
            "8A:38:4D:EA:02:E7:DD:AB:F1:74:76:5F:5C:20:B6:C8:30:42:E8:EF"
        );
    }

    #[test]
    fn escaped_names_and_type_parameters_round_trip() {
        let selector =
            FileSelector::parse("name:\"a%22b%25c d.txt\" type:text/plain;charset=\"utf-8\"").unwrap();
        assert_eq!(selector.name.as_deref(), Some("a\"b%c d.txt"));
        assert_eq!(
            selector.file_type.as_ref().unwrap().params,
            vec![("charset".into(), "utf-8".into())]
        );
        assert_eq!(FileSelector::parse(&selector.to_string()).unwrap(), selector);
        let path = FileSelector {
            name: Some("../etc/passwd".into()),
            ..Default::default()
        };
        assert_eq!(path.to_string(), "name:\"..%2Fetc%2Fpasswd\"");
    }

    #[test]
    fn malformed_values_are_errors() {
        assert!(FileSelector::parse("name:\"open").is_err());
        assert!(FileSelector::parse("size:big").is_err());
        assert!(FileSelector::parse("hash:sha-1:XYZ").is_err());
        assert!(FileSelector::parse("name:\"%zz\"").is_err());
        assert!(FileRange::parse("0-5").is_err());
        assert!(FileRange::parse("9-5").is_err());
        assert_eq!(
            FileRange::parse("10-*").unwrap(),
            FileRange {
                start: 10,
                stop: None
            }
        );
        let mut file = FileAttributes::default();
        assert!(file.read_attribute("file-transfer-id", None).is_err());
        assert!(!file.read_attribute("path", Some("msrp://x")).unwrap());
    }
}
