//! Who an application is: bearer tokens, one `TOKEN APPID` per line
//! (`--tokens FILE`, or `[rest] tokens` in the config file).

use std::collections::HashMap;
use std::sync::Arc;

/// The configured tokens; empty means none is required (loopback only).
/// Kept by their SHA-256, so a lookup's time tells nothing about how much
/// of a guessed token matched.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    by_token: HashMap<[u8; 32], Arc<str>>,
}

fn digest(token: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    /// Reads `TOKEN APPID` lines; `#` starts a comment; blank lines are
    /// skipped. A line with one field, or a token given twice, is an error
    /// naming its line.
    pub fn parse(text: &str) -> Result<Tokens, String> {
        let mut tokens = Tokens::default();
        for (number, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let mut fields = line.split_ascii_whitespace();
            match (fields.next(), fields.next(), fields.next()) {
                (Some(token), Some(app), None) => tokens
                    .add(token, app)
                    .map_err(|e| format!("line {}: {e}", number + 1))?,
                _ => return Err(format!("line {}: expected `TOKEN APPID`", number + 1)),
            }
        }
        Ok(tokens)
    }

    pub fn add(&mut self, token: &str, app: &str) -> Result<(), String> {
        if token.len() < 8 {
            return Err("a token must be at least 8 characters".into());
        }
        if self.by_token.insert(digest(token), Arc::from(app)).is_some() {
            return Err("the token is given twice".into());
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    /// The application whose token `token` is.
    pub fn app(&self, token: &str) -> Option<&Arc<str>> {
        self.by_token.get(&digest(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_read_and_refuse_what_is_malformed() {
        let tokens = Tokens::parse("# apps\nsecret-one-123 alpha\n\n  secret-two-456   beta # b\n").unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens.app("secret-one-123").map(|a| &**a), Some("alpha"));
        assert_eq!(tokens.app("nope"), None);
        assert!(Tokens::parse("lonely-token\n").unwrap_err().contains("line 1"));
        assert!(Tokens::parse("a b c d\n").is_err());
        assert!(Tokens::parse("short a\n").unwrap_err().contains("8 characters"));
        assert!(Tokens::parse("same-token-1 a\nsame-token-1 b\n")
            .unwrap_err()
            .contains("line 2"));
    }
}
