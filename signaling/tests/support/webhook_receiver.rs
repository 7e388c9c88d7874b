//! A webhook endpoint on a std `TcpListener`: it records each POST's
//! headers and body and answers `200` with no body, or, as a dead receiver,
//! takes the connection and the request and never answers. And the
//! signature check a receiver makes: HMAC-SHA256 (RFC 2104) written here
//! over the `sha2` hash, so that it cannot share a mistake with the
//! server's `hmac` crate.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// One request as the receiver got it.
#[derive(Clone, Debug)]
pub struct Hooked {
    pub request_line: String,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Hooked {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Ok,
    /// Accept, read, never answer (the connection stays open).
    Never,
}

pub struct WebhookReceiver {
    pub url: String,
    requests: Receiver<Hooked>,
    pub connections: Arc<AtomicU64>,
    /// Every request, in arrival order.
    pub log: Vec<Hooked>,
}

impl WebhookReceiver {
    pub fn start(answer: Answer) -> WebhookReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (sender, requests) = mpsc::channel();
        let connections = Arc::new(AtomicU64::new(0));
        let counted = connections.clone();
        // Connections held open by a dead receiver live here until the process ends.
        let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                counted.fetch_add(1, Ordering::Relaxed);
                let sender = sender.clone();
                let held = held.clone();
                std::thread::spawn(move || serve(stream, answer, sender, held));
            }
        });
        WebhookReceiver {
            url,
            requests,
            connections,
            log: Vec::new(),
        }
    }

    /// Waits until `count` requests came in all; panics after `timeout`.
    #[track_caller]
    pub fn wait_for(&mut self, count: usize, timeout: Duration) -> &[Hooked] {
        let deadline = Instant::now() + timeout;
        while self.log.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.requests.recv_timeout(left) {
                Ok(request) => self.log.push(request),
                Err(_) => panic!(
                    "{} of {count} webhook requests within {timeout:?}: {:#?}",
                    self.log.len(),
                    self.log
                ),
            }
        }
        &self.log
    }

    /// Nothing more comes within `quiet`.
    pub fn quiet(&mut self, quiet: Duration) -> bool {
        match self.requests.recv_timeout(quiet) {
            Ok(request) => {
                self.log.push(request);
                false
            }
            Err(_) => true,
        }
    }
}

fn serve(stream: TcpStream, answer: Answer, sender: Sender<Hooked>, held: Arc<Mutex<Vec<TcpStream>>>) {
    let mut writer = stream.try_clone().unwrap();
    if answer == Answer::Never {
        held.lock().unwrap().push(stream.try_clone().unwrap());
    }
    let mut reader = BufReader::new(stream);
    // Keep-alive (RFC 9112 9.3): requests follow one another on the connection.
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let _ = sender.send(Hooked {
            request_line: request_line.trim_end().to_string(),
            headers,
            body,
        });
        if answer == Answer::Ok
            && writer
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .is_err()
        {
            return;
        }
    }
}

/// HMAC-SHA256 (RFC 2104 2): H(K ^ opad, H(K ^ ipad, text)), the key
/// hashed first when longer than the 64-octet block.
pub fn hmac_sha256(key: &[u8], text: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new().chain_update(&ipad).chain_update(text).finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `X-Msrp-Signature`'s value for `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex(&hmac_sha256(secret.as_bytes(), body)))
}
