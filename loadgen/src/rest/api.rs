//! The JSON the load speaks with msrp-signal's REST API
//! (`signaling/src/rest/types.rs`): the requests it writes, by hand into
//! reused buffers on the hot path, and the parts of the responses it
//! reads.

use std::fmt::Write as _;

use base64::Engine as _;
use serde::Deserialize;

/// `POST /v1/sessions`.
pub const SESSIONS: &str = "/v1/sessions";
/// `POST /v1/messages:batch`.
pub const BATCH: &str = "/v1/messages:batch";
/// The content type of the engine's sends, as the control commander's.
pub const CONTENT_TYPE: &str = "text/plain";

/// `{"mode":"3pcc","remote_sdp":OFFER}`: the peer's offer; the 201 has
/// our answer with the engine session made.
pub fn create_3pcc(offer_sdp: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "mode": "3pcc", "remote_sdp": offer_sdp }))
        .expect("a JSON value serialises")
}

/// `POST /v1/sessions/{id}/messages`.
pub fn messages_path(session: &str) -> String {
    format!("{SESSIONS}/{}/messages", super::http::path_segment(session))
}

pub fn session_path(session: &str) -> String {
    format!("{SESSIONS}/{}", super::http::path_segment(session))
}

/// A session id as a JSON string, quotes included, made once per session.
pub fn quoted(session: &str) -> String {
    serde_json::to_string(session).expect("a string serialises")
}

/// Appends `{"content_type":..,"body":BASE64}` (a single message).
pub fn message(out: &mut String, body: &[u8]) {
    out.push_str("{\"content_type\":\"");
    out.push_str(CONTENT_TYPE);
    out.push_str("\",\"body\":\"");
    base64::engine::general_purpose::STANDARD.encode_string(body, out);
    out.push_str("\"}");
}

/// Appends one batch item, `{"session":ID,"content_type":..,"body":..}`;
/// `quoted_session` from [`quoted`].
pub fn batch_item(out: &mut String, quoted_session: &str, body: &[u8]) {
    let _ = write!(
        out,
        "{{\"session\":{quoted_session},\"content_type\":\"{CONTENT_TYPE}\",\"body\":\""
    );
    base64::engine::general_purpose::STANDARD.encode_string(body, out);
    out.push_str("\"}");
}

/// The parts of a 201 `SessionView` the load uses.
#[derive(Debug, Deserialize)]
pub struct Created {
    pub id: String,
    pub state: String,
    /// Our answer's SDP, as msrp-signal wrote it.
    pub local_sdp: Option<String>,
}

/// A 207's results, in the order of the items.
#[derive(Debug, Deserialize)]
pub struct BatchResults {
    pub results: Vec<ItemResult>,
}

#[derive(Debug, Deserialize)]
pub struct ItemResult {
    pub status: u16,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
}

impl ItemResult {
    pub fn describe(&self) -> String {
        format!(
            "{} {}: {}",
            self.status,
            self.error.as_deref().unwrap_or("-"),
            self.detail.as_deref().unwrap_or("")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_written_requests_are_the_json_the_api_reads() {
        let body = [0u8, 159, 146, 150, b'y'];
        let mut single = String::new();
        message(&mut single, &body);
        let value: serde_json::Value = serde_json::from_str(&single).unwrap();
        assert_eq!(value["content_type"], "text/plain");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value["body"].as_str().unwrap())
            .unwrap();
        assert_eq!(decoded, body);

        let mut batch = String::from("{\"messages\":[");
        batch_item(&mut batch, &quoted("s\"1"), &body);
        batch.push(',');
        batch_item(&mut batch, &quoted("s2"), b"");
        batch.push_str("]}");
        let value: serde_json::Value = serde_json::from_str(&batch).unwrap();
        assert_eq!(value["messages"][0]["session"], "s\"1");
        assert_eq!(value["messages"][1]["body"], "");

        let create: serde_json::Value = serde_json::from_slice(&create_3pcc("v=0\r\n")).unwrap();
        assert_eq!(create["mode"], "3pcc");
        assert_eq!(create["remote_sdp"], "v=0\r\n");
        assert_eq!(messages_path("s 1"), "/v1/sessions/s%201/messages");
    }

    #[test]
    fn batch_results_read_both_shapes() {
        let text =
            r#"{"results":[{"status":202,"id":"7"},{"status":409,"error":"conflict","detail":"closed"}]}"#;
        let results: BatchResults = serde_json::from_str(text).unwrap();
        assert_eq!(results.results[0].status, 202);
        assert_eq!(results.results[1].describe(), "409 conflict: closed");
    }
}
