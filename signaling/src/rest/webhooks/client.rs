//! One webhook's HTTP/1.1 client: the request an event becomes, and one
//! keep-alive connection (RFC 9112 9.3) that is made again when it fails.

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use tokio::net::TcpStream;
use tokio::task::AbortHandle;

use super::target::Target;
use crate::app::events::AppEvent;

/// A response body is read (so the connection can carry the next request)
/// up to this; a longer one is cut off with its connection.
const RESPONSE_BYTES_MAX: usize = 64 * 1024;

/// `sha256={lower-hex HMAC-SHA256(secret, body)}`.
pub(super) fn signature(secret: &[u8], body: &[u8]) -> String {
    // RFC 2104 2: a key of any length is valid (a long one is hashed first).
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        unreachable!("HMAC takes a key of any length")
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut text = String::with_capacity("sha256=".len() + 2 * digest.len());
    text.push_str("sha256=");
    for byte in digest {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        text.push(char::from(HEX[usize::from(byte >> 4)]));
        text.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    text
}

pub(super) struct Client {
    target: Target,
    connection: Option<Connection>,
}

struct Connection {
    sender: SendRequest<Full<Bytes>>,
    /// The task that drives the connection: it ends with this handle, so a
    /// connection given up on (timed out, say) is closed, not left behind.
    driver: AbortHandle,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Client {
    pub fn new(target: Target) -> Client {
        Client {
            target,
            connection: None,
        }
    }

    /// POSTs `event`; the status, or why there is none. The caller bounds it
    /// in time: dropped half-way, it takes its connection down with it.
    pub async fn post(&mut self, event: &AppEvent, signature: Option<&str>) -> Result<StatusCode, String> {
        let request = self.request(event, signature)?;
        let (mut connection, mut fresh) = match self.connection.take() {
            Some(kept) if !kept.sender.is_closed() => (kept, false),
            _ => (self.connect().await?, true),
        };
        if !fresh && connection.sender.ready().await.is_err() {
            // The server closed the kept-alive connection meanwhile.
            (connection, fresh) = (self.connect().await?, true);
        }
        let response = match connection.sender.try_send_request(request).await {
            Ok(response) => response,
            Err(mut error) => match error.take_message() {
                // Not written: the kept-alive connection closed just now, so
                // this is no attempt of the server's; a new connection takes it.
                Some(request) if !fresh => {
                    connection = self.connect().await?;
                    connection
                        .sender
                        .send_request(request)
                        .await
                        .map_err(|error| format!("{}: {error}", self.target.authority))?
                }
                _ => return Err(format!("{}: {}", self.target.authority, error.into_error())),
            },
        };
        let status = response.status();
        if Limited::new(response.into_body(), RESPONSE_BYTES_MAX)
            .collect()
            .await
            .is_ok()
        {
            self.connection = Some(connection);
        }
        Ok(status)
    }

    fn request(&self, event: &AppEvent, signature: Option<&str>) -> Result<Request<Full<Bytes>>, String> {
        let mut request = Request::post(Uri::from(self.target.path.clone()))
            .header(HOST, &self.target.authority)
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, "msrp-signal")
            .header("x-msrp-event-id", event.seq)
            .header("x-msrp-event-type", event.kind.name());
        if let Some(signature) = signature {
            request = request.header("x-msrp-signature", signature);
        }
        request
            .body(Full::new(event.json.clone()))
            .map_err(|error| format!("request: {error}"))
    }

    /// A connection to the first of the host's addresses that takes one; a
    /// name is resolved again each time, so a moved receiver is followed.
    async fn connect(&self) -> Result<Connection, String> {
        let target = &self.target;
        let addresses = tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|error| format!("resolving {}: {error}", target.host))?;
        let mut last_error = format!("{} resolves to no address", target.host);
        for address in addresses {
            let stream = match TcpStream::connect(address).await {
                Ok(stream) => stream,
                Err(error) => {
                    last_error = format!("connecting to {address}: {error}");
                    continue;
                }
            };
            // One small request at a time: no reason to wait for Nagle's algorithm.
            let _ = stream.set_nodelay(true);
            let (sender, connection) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|error| format!("{address}: {error}"))?;
            let driver = tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "webhook connection ended");
                }
            })
            .abort_handle();
            return Ok(Connection { sender, driver });
        }
        Err(last_error)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_signature_is_rfc_4231_hmac_sha256_in_lower_hex() {
        // RFC 4231 4.3, test case 2.
        assert_eq!(
            super::signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
