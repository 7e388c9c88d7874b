//! Reading the engine's busiest command without serde's buffering: a
//! `batch` of sends. `Request` flattens its tagged `Command`, so serde
//! buffers every field of it (and of each tagged operation) before reading
//! it; at a million sends a second that buffering is most of the control
//! thread. A batch of nothing but sends is read here as the plain structs it
//! is; anything else (or anything wrong) goes the general way, which names
//! the field at fault.

use serde::Deserialize;

use super::message::{BatchOp, Command, FailureReportName, Request, SendRequest};

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum BatchName {
    Batch,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum SendName {
    Send,
}

#[derive(Deserialize)]
struct SendBatch {
    id: u64,
    #[allow(dead_code)]
    cmd: BatchName,
    ops: Vec<SendOp>,
}

/// [`SendRequest`]'s fields, and a `cmd` that must be `send`.
#[derive(Deserialize)]
struct SendOp {
    #[allow(dead_code)]
    cmd: SendName,
    session_id: String,
    content_type: String,
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    delete_after: bool,
    #[serde(default)]
    success_report: Option<bool>,
    #[serde(default)]
    failure_report: Option<FailureReportName>,
    #[serde(default)]
    payload_len: Option<u64>,
}

/// The request, when `header` is a well-formed batch of sends only.
pub fn send_batch(header: &[u8]) -> Option<Request> {
    let batch: SendBatch = serde_json::from_slice(header).ok()?;
    let ops = batch
        .ops
        .into_iter()
        .map(|op| {
            BatchOp::Send(SendRequest {
                session_id: op.session_id,
                content_type: op.content_type,
                file: op.file,
                delete_after: op.delete_after,
                success_report: op.success_report,
                failure_report: op.failure_report,
                payload_len: op.payload_len,
            })
        })
        .collect();
    Some(Request {
        id: batch.id,
        command: Command::Batch { ops },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn general(header: &str) -> Request {
        serde_json::from_str(header).unwrap()
    }

    #[test]
    fn a_batch_of_sends_reads_as_the_general_parser_reads_it() {
        let header = r#"{"id":9,"cmd":"batch","ops":[
            {"cmd":"send","session_id":"a","content_type":"text/plain","payload_len":3},
            {"cmd":"send","session_id":"b","content_type":"image/png","file":"/f","delete_after":true,
             "success_report":true,"failure_report":"partial","unknown":1}]}"#;
        assert_eq!(send_batch(header.as_bytes()), Some(general(header)));
    }

    #[test]
    fn anything_else_is_left_to_the_general_parser() {
        for header in [
            r#"{"id":1,"cmd":"send","session_id":"a","content_type":"t/p"}"#,
            r#"{"id":1,"cmd":"batch","ops":[{"cmd":"close_session","session_id":"a"}]}"#,
            r#"{"id":1,"cmd":"batch","ops":[{"cmd":"send","session_id":"a"}]}"#,
            r#"{"id":1,"cmd":"batch","ops":[{"cmd":"send","session_id":"a","content_type":"t/p","failure_report":"maybe"}]}"#,
            r#"{"id":1,"cmd":"batch"}"#,
        ] {
            assert_eq!(send_batch(header.as_bytes()), None, "{header}");
        }
    }
}
