//! Certificate fingerprints as SDP carries them (RFC 8122 5, from RFC 4572):
//! `a=fingerprint:sha-256 AB:CD:...`, a hash function's name and the
//! digest of the DER certificate in upper-case hex pairs joined by colons.

use std::fmt;

/// The hash functions RFC 8122 5 lets an endpoint use (and sha-1, which
/// RFC 4572 endpoints still send).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FingerprintHash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl FingerprintHash {
    /// The name in SDP's hash-func token (RFC 8122 5, case-insensitive).
    pub fn name(self) -> &'static str {
        match self {
            FingerprintHash::Sha1 => "sha-1",
            FingerprintHash::Sha256 => "sha-256",
            FingerprintHash::Sha384 => "sha-384",
            FingerprintHash::Sha512 => "sha-512",
        }
    }

    fn algorithm(self) -> &'static ring::digest::Algorithm {
        match self {
            FingerprintHash::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            FingerprintHash::Sha256 => &ring::digest::SHA256,
            FingerprintHash::Sha384 => &ring::digest::SHA384,
            FingerprintHash::Sha512 => &ring::digest::SHA512,
        }
    }

    fn from_name(name: &str) -> Option<FingerprintHash> {
        [
            FingerprintHash::Sha1,
            FingerprintHash::Sha256,
            FingerprintHash::Sha384,
            FingerprintHash::Sha512,
        ]
        .into_iter()
        .find(|hash| hash.name().eq_ignore_ascii_case(name))
    }
}

/// A certificate's fingerprint: which hash, and the digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    pub hash: FingerprintHash,
    pub digest: Vec<u8>,
}

/// Why a fingerprint does not parse.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FingerprintError {
    #[error("fingerprint {0:?} is not \"hash-func HEX:HEX:...\"")]
    Shape(String),
    #[error("fingerprint hash function {0:?} is not sha-1, sha-256, sha-384 or sha-512")]
    UnknownHash(String),
    #[error("fingerprint {0:?}: the digest is not colon-separated hex pairs")]
    BadHex(String),
    #[error("fingerprint {text:?}: a {hash} digest is {want} octets, this one {got}")]
    Length {
        text: String,
        hash: &'static str,
        want: usize,
        got: usize,
    },
}

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of(hash: FingerprintHash, der: &[u8]) -> Fingerprint {
        Fingerprint {
            hash,
            digest: ring::digest::digest(hash.algorithm(), der).as_ref().to_vec(),
        }
    }

    /// This fingerprint's hash over another certificate: does it match?
    pub fn matches(&self, der: &[u8]) -> bool {
        Fingerprint::of(self.hash, der) == *self
    }

    /// RFC 8122 5: `hash-func SP fingerprint`, where fingerprint is
    /// `2UHEX *(":" 2UHEX)`; hex is taken in either case (RFC 8122 5:
    /// "case-insensitive").
    pub fn parse(text: &str) -> Result<Fingerprint, FingerprintError> {
        let shape = || FingerprintError::Shape(text.to_string());
        let (name, hex) = text.trim().split_once(' ').ok_or_else(shape)?;
        let hash = FingerprintHash::from_name(name)
            .ok_or_else(|| FingerprintError::UnknownHash(name.to_string()))?;
        let hex = hex.trim();
        let mut digest = Vec::with_capacity(64);
        for pair in hex.split(':') {
            let bad = || FingerprintError::BadHex(text.to_string());
            if pair.len() != 2 || !pair.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            digest.push(u8::from_str_radix(pair, 16).map_err(|_| bad())?);
        }
        let want = hash.algorithm().output_len();
        if digest.len() != want {
            return Err(FingerprintError::Length {
                text: text.to_string(),
                hash: hash.name(),
                want,
                got: digest.len(),
            });
        }
        Ok(Fingerprint { hash, digest })
    }
}

impl fmt::Display for Fingerprint {
    /// As SDP writes it: upper-case hex (RFC 8122 5, "UHEX").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hash.name())?;
        for (i, b) in self.digest.iter().enumerate() {
            let sep = if i == 0 { ' ' } else { ':' };
            write!(f, "{sep}{b:02X}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_back() {
        let fp = Fingerprint::of(FingerprintHash::Sha256, b"certificate");
        let text = fp.to_string();
        assert!(text.starts_with("sha-256 "));
        assert_eq!(text.len(), "sha-256 ".len() + 32 * 3 - 1);
        assert_eq!(Fingerprint::parse(&text), Ok(fp.clone()));
        assert!(fp.matches(b"certificate"));
        assert!(!fp.matches(b"another"));
    }

    #[test]
    fn case_insensitive_hash_and_hex() {
        let fp = Fingerprint::of(FingerprintHash::Sha1, b"x");
        let lower = fp.to_string().to_lowercase().replace("sha-1", "SHA-1");
        assert_eq!(Fingerprint::parse(&lower), Ok(fp));
    }

    #[test]
    fn every_hash_has_its_length() {
        for (hash, len) in [
            (FingerprintHash::Sha1, 20),
            (FingerprintHash::Sha256, 32),
            (FingerprintHash::Sha384, 48),
            (FingerprintHash::Sha512, 64),
        ] {
            let fp = Fingerprint::of(hash, b"der");
            assert_eq!(fp.digest.len(), len);
            assert_eq!(Fingerprint::parse(&fp.to_string()), Ok(fp));
        }
    }

    #[test]
    fn refuses_bad_input() {
        assert!(matches!(
            Fingerprint::parse("sha-256"),
            Err(FingerprintError::Shape(_))
        ));
        assert!(matches!(
            Fingerprint::parse("md5 AB:CD"),
            Err(FingerprintError::UnknownHash(_))
        ));
        assert!(matches!(
            Fingerprint::parse("sha-1 AB:C"),
            Err(FingerprintError::BadHex(_))
        ));
        assert!(matches!(
            Fingerprint::parse("sha-1 AB::CD"),
            Err(FingerprintError::BadHex(_))
        ));
        assert!(matches!(
            Fingerprint::parse("sha-1 +B:CD"),
            Err(FingerprintError::BadHex(_))
        ));
        assert!(matches!(
            Fingerprint::parse("sha-1 AB:CD"),
            Err(FingerprintError::Length { want: 20, got: 2, .. })
        ));
        assert!(matches!(
            Fingerprint::parse("sha-1 é"),
            Err(FingerprintError::BadHex(_))
        ));
    }
}
