//! SIP request methods (RFC 3261 7.1, 25.1).
//!
//! ```text
//! Method           =  INVITEm / ACKm / OPTIONSm / BYEm / CANCELm / REGISTERm / extension-method
//! extension-method =  token
//! token            =  1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" )
//! ```

use std::fmt;

/// A request method. RFC 3261 7.1: the method is case-sensitive, so `invite`
/// is an extension method, not INVITE.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Update,
    Info,
    Message,
    Prack,
    Subscribe,
    Notify,
    Refer,
    Publish,
    /// Any other token (RFC 3261 25.1 extension-method).
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MethodError {
    #[error("empty method")]
    Empty,
    #[error("method {0:?} is not a token")]
    NotToken(String),
}

/// RFC 3261 25.1 token characters.
pub(crate) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

impl Method {
    pub fn parse(s: &str) -> Result<Method, MethodError> {
        if s.is_empty() {
            return Err(MethodError::Empty);
        }
        if !s.bytes().all(is_token_char) {
            return Err(MethodError::NotToken(s.to_string()));
        }
        Ok(match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "UPDATE" => Method::Update,
            "INFO" => Method::Info,
            "MESSAGE" => Method::Message,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "PUBLISH" => Method::Publish,
            other => Method::Other(other.to_string()),
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Update => "UPDATE",
            Method::Info => "INFO",
            Method::Message => "MESSAGE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_sensitive_and_extension() {
        assert_eq!(Method::parse("INVITE"), Ok(Method::Invite));
        assert_eq!(Method::parse("invite"), Ok(Method::Other("invite".into())));
        assert_eq!(Method::parse("FOO").map(|m| m.to_string()), Ok("FOO".into()));
        assert!(Method::parse("IN VITE").is_err());
        assert!(Method::parse("").is_err());
        // RFC 4475 3.1.1.2: every non-alphanumeric token character.
        assert!(Method::parse("!interesting-Method0123456789_*+`.%indeed'~").is_ok());
    }
}
