//! A webhook's address: `http://HOST[:PORT][/PATH]`, the part of URL syntax
//! (RFC 3986 3) a plain-HTTP client needs, and nothing else. Every refusal
//! names what is wrong, for the application that registered it.

use std::net::Ipv6Addr;

use hyper::http::uri::PathAndQuery;

use super::WebhookError;

/// Longer urls are refused.
pub(super) const URL_BYTES_MAX: usize = 2048;

const HTTPS: &str = "https webhooks need TLS, which msrp-signal does not have yet; use http://";

/// Where a webhook's requests go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    /// A DNS name, resolved at every connect, or an IP literal (no brackets); lower case.
    pub host: String,
    pub port: u16,
    /// The request target in origin form (RFC 9112 3.2.1): `/path?query`.
    pub path: PathAndQuery,
    /// The `Host` header (RFC 9110 7.2): the authority, without the port when it is 80.
    pub authority: String,
}

fn bad(why: impl Into<String>) -> WebhookError {
    WebhookError::Url(why.into())
}

pub(crate) fn parse(url: &str) -> Result<Target, WebhookError> {
    if url.len() > URL_BYTES_MAX {
        return Err(bad(format!(
            "{} bytes, more than the {URL_BYTES_MAX} allowed",
            url.len()
        )));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad(format!(
            "{url:?} is not of the form http://HOST[:PORT][/PATH]"
        )));
    };
    if scheme.eq_ignore_ascii_case("https") {
        return Err(bad(HTTPS));
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(bad(format!(
            "the scheme {scheme:?} is not supported; use http://"
        )));
    }
    let (authority, target) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    if authority.contains('@') {
        return Err(bad(
            "user information (USER@HOST) is not supported; give the webhook a secret instead",
        ));
    }
    let (host, port, literal_v6) = host_port(authority)?;
    if target.contains('#') {
        return Err(bad("a fragment (#...) is never sent to the server; leave it out"));
    }
    let target = match target {
        "" => "/".to_string(),
        query if query.starts_with('?') => format!("/{query}"),
        path => path.to_string(),
    };
    let path = PathAndQuery::try_from(target.as_str())
        .map_err(|_| bad(format!("the path {target:?} is not a valid request target")))?;
    let mut authority = if literal_v6 {
        format!("[{host}]")
    } else {
        host.clone()
    };
    if port != 80 {
        authority = format!("{authority}:{port}");
    }
    Ok(Target {
        host,
        port,
        path,
        authority,
    })
}

/// The host (lower case, unbracketed), the port, and whether the host is an IPv6 literal.
fn host_port(authority: &str) -> Result<(String, u16, bool), WebhookError> {
    let (host, port, literal_v6) = if let Some(rest) = authority.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return Err(bad("an IPv6 address opened with [ is not closed with ]"));
        };
        let address: Ipv6Addr = v6
            .parse()
            .map_err(|_| bad(format!("{v6:?} is not an IPv6 address")))?;
        let port = match after {
            "" => None,
            after => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| bad(format!("{after:?} after the IPv6 address is not :PORT")))?,
            ),
        };
        (address.to_string(), port, true)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if port.is_some_and(|port| port.contains(':')) {
            return Err(bad("an IPv6 address needs brackets: http://[ADDRESS]:PORT/"));
        }
        if host.is_empty() {
            return Err(bad("the url has no host"));
        }
        if !is_name(host) {
            return Err(bad(format!(
                "the host {host:?} is neither an IP address nor a DNS name (letters, digits, '-', '_', '.')"
            )));
        }
        (host.to_ascii_lowercase(), port, false)
    };
    let port = match port {
        None => 80,
        Some(digits) => match digits.parse::<u16>() {
            Ok(port) if port > 0 && digits.bytes().all(|b| b.is_ascii_digit()) => port,
            _ => {
                return Err(bad(format!(
                    "the port {digits:?} is not a number from 1 to 65535"
                )))
            }
        },
    };
    Ok((host, port, literal_v6))
}

/// RFC 1123 2.1 host names (IPv4 literals are such names too), with the `_`
/// that container and service-discovery names carry.
fn is_name(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> (String, u16, String, String) {
        let target = parse(url).unwrap();
        (
            target.host,
            target.port,
            target.path.to_string(),
            target.authority,
        )
    }

    fn refusal(url: &str) -> String {
        match parse(url) {
            Err(WebhookError::Url(why)) => why,
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn a_url_gives_host_port_path_and_host_header() {
        let own = |h: &str, p, path: &str, a: &str| (h.to_string(), p, path.to_string(), a.to_string());
        assert_eq!(
            target("http://127.0.0.1:8080/hook"),
            own("127.0.0.1", 8080, "/hook", "127.0.0.1:8080")
        );
        assert_eq!(
            target("HTTP://Example.COM"),
            own("example.com", 80, "/", "example.com")
        );
        assert_eq!(target("http://app_1:80?k=v"), own("app_1", 80, "/?k=v", "app_1"));
        assert_eq!(target("http://[::1]:9/a/b?c"), own("::1", 9, "/a/b?c", "[::1]:9"));
        assert_eq!(target("http://[0:0::1]/"), own("::1", 80, "/", "[::1]"));
    }

    #[test]
    fn a_refusal_names_the_problem() {
        assert_eq!(refusal("https://example.com/"), HTTPS);
        assert_eq!(
            refusal("ftp://example.com/"),
            "the scheme \"ftp\" is not supported; use http://"
        );
        assert_eq!(refusal("http:///hook"), "the url has no host");
        assert_eq!(refusal("http://:80/"), "the url has no host");
        assert!(refusal("example.com/hook").contains("not of the form http://HOST[:PORT][/PATH]"));
        assert!(refusal("http://u:p@h/").contains("user information"));
        assert!(refusal("http://h:0/").contains("the port \"0\""));
        assert!(refusal("http://h:65536/").contains("from 1 to 65535"));
        assert!(refusal("http://h:+80/").contains("from 1 to 65535"));
        assert!(refusal("http://h:/").contains("the port \"\""));
        assert!(refusal("http://::1/").contains("needs brackets"));
        assert!(refusal("http://[::1/").contains("not closed"));
        assert!(refusal("http://[::g]/").contains("not an IPv6 address"));
        assert!(refusal("http://[::1]x/").contains("is not :PORT"));
        assert!(refusal("http://exa mple/").contains("neither an IP address nor a DNS name"));
        assert!(refusal("http://a..b/").contains("neither"));
        assert!(refusal("http://h/a b").contains("not a valid request target"));
        assert!(refusal("http://h/#top").contains("fragment"));
        let long = format!("http://h/{}", "a".repeat(URL_BYTES_MAX));
        assert!(refusal(&long).contains("more than the 2048 allowed"));
    }
}
