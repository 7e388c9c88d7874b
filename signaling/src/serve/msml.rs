//! MSML control dialogs (RFC 5707 3.1, 9.6): an application server's
//! INVITE to `sip:msml@HOST` (the `--msml-user`) is answered as a control
//! association, with or without media (its m= lines are declined, RFC
//! 3264 6); its INFOs carry MSML (`application/msml+xml`, also
//! `application/xml`, RFC 6086 legacy usage) and are answered with the
//! MSML `<result>` in the 200 (RFC 5707 7.3); a `dialogstart` with a
//! `transfer` runs on [`Transfers`], whose events go back as INFOs on the
//! same dialog, one at a time and in order (RFC 5707 7.4, 9.3).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::core_task::{CallRecord, Core};
use super::Input;
use crate::msml::{self, model, write, MsmlError};
use crate::sip::{Body, CallId, ClientTxnId, InfoRequest, Message};
use crate::transfer::{
    self, Dest, End, Failure, Note, Noted, ObjectSpec, Retry, Sink, TransferSpec, Transfers,
};

/// The body type of what we send (RFC 5707 3.1).
const MSML_TYPE: &str = "application/msml+xml";

/// The shadow variables a `send`'s namelist may name (Dialogic's MOML
/// transfer module).
const NAMES: &[&str] = &["transfer.objid", "transfer.duration", "transfer.end"];

/// What MSML control needs.
#[derive(Clone)]
pub struct MsmlSettings {
    /// The Request-URI user of a control INVITE.
    pub user: String,
    pub transfers: Transfers,
    /// The application that owns MSML's transfers and their sessions.
    pub owner: Arc<str>,
    /// Event INFOs waiting per dialog; over it the oldest is dropped.
    pub events_queued_max: usize,
}

pub(super) struct Msml {
    settings: MsmlSettings,
    controls: HashMap<CallId, Control>,
    next_name: u64,
}

impl Msml {
    pub(super) fn new(settings: MsmlSettings) -> Msml {
        Msml {
            settings,
            controls: HashMap::new(),
            next_name: 1,
        }
    }
}

/// One control dialog.
#[derive(Default)]
struct Control {
    outbox: VecDeque<Bytes>,
    in_flight: Option<ClientTxnId>,
    /// Running MSML dialogs: dialog id -> transfer id.
    dialogs: HashMap<String, String>,
    events_dropped: u64,
}

/// A transfer's events as MSML events to the control dialog.
struct MsmlSink {
    inputs: mpsc::Sender<Input>,
    call: CallId,
    dialog: String,
    objdone: Vec<model::SendAction>,
    exit: Vec<model::SendAction>,
}

impl MsmlSink {
    async fn send(&self, body: String, last: bool) {
        let _ = self
            .inputs
            .send(Input::MsmlEvent {
                call: self.call,
                dialog: self.dialog.clone(),
                body,
                last,
            })
            .await;
    }
}

impl Sink for MsmlSink {
    fn note<'a>(&'a mut self, _id: &'a str, note: Note) -> Noted<'a> {
        Box::pin(async move {
            match note {
                Note::ObjectDone { objid, duration } => {
                    let values = |name: &str| match name {
                        "transfer.objid" => Some(write::token(&objid)),
                        "transfer.duration" => Some(transfer::millis(duration).to_string()),
                        _ => None,
                    };
                    for action in &self.objdone {
                        let body = event_of(&self.dialog, action, &values, &[]);
                        self.send(body, false).await;
                    }
                }
                Note::Finished {
                    end,
                    duration,
                    objid,
                    failure,
                } => {
                    let values = |name: &str| match name {
                        "transfer.objid" => Some(write::token(objid.as_deref().unwrap_or("none"))),
                        "transfer.duration" => Some(transfer::millis(duration).to_string()),
                        "transfer.end" => Some(end.name().to_string()),
                        _ => None,
                    };
                    let extra = failure_pairs(failure.as_ref());
                    for action in &self.exit {
                        let body = event_of(&self.dialog, action, &values, &extra);
                        self.send(body, false).await;
                    }
                    let status = exit_status(end, failure.as_ref()).to_string();
                    let mut pairs = vec![("dialog.exit.status".to_string(), status)];
                    if end != End::Complete {
                        pairs.push(("dialog.exit.description".to_string(), end.name().to_string()));
                    }
                    let pairs: Vec<(&str, &str)> =
                        pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                    self.send(write::event("msml.dialog.exit", &self.dialog, &pairs), true)
                        .await;
                }
            }
        })
    }
}

/// One `<send>` of an exit hook as an event document: its namelist's
/// values, then `extra`.
fn event_of(
    dialog: &str,
    action: &model::SendAction,
    values: &dyn Fn(&str) -> Option<String>,
    extra: &[(String, String)],
) -> String {
    let mut pairs: Vec<(String, String)> = action
        .namelist
        .iter()
        .filter_map(|name| values(name).map(|v| (name.clone(), v)))
        .collect();
    pairs.extend(extra.iter().cloned());
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    write::event(&action.event, dialog, &pairs)
}

/// A failure's SIP or MSRP status as name/value pairs of their own.
fn failure_pairs(failure: Option<&Failure>) -> Vec<(String, String)> {
    let Some(failure) = failure else {
        return Vec::new();
    };
    let mut pairs = Vec::new();
    if let Some(status) = failure.sip_status {
        pairs.push(("transfer.sip.status".into(), status.to_string()));
    }
    if let Some(status) = failure.msrp_status {
        pairs.push(("transfer.msrp.status".into(), status.to_string()));
    }
    pairs
}

/// `dialog.exit.status`: 200 when the dialog did what it was asked (or
/// was stopped as asked); a failure's status otherwise (a status starting
/// with 4 or 5 is an error to Dialogic's clients).
fn exit_status(end: End, failure: Option<&Failure>) -> u16 {
    match end {
        End::Complete | End::Terminate => 200,
        End::Maxtime => 408,
        End::Failed => failure
            .and_then(|f| f.sip_status.or(f.msrp_status))
            .filter(|s| *s >= 400)
            .unwrap_or(500),
    }
}

/// Our answer to a control INVITE's offer: the same m= lines, each
/// declined with port 0 (RFC 3264 6); none for an offer with none (RFC
/// 3264 5), or as our offer to an offer-less INVITE.
fn control_sdp(host: &str, offer: Option<&Body>) -> Bytes {
    let kind = if host.contains(':') { "IP6" } else { "IP4" };
    let id = fastrand::u64(1..u64::MAX >> 1);
    let mut sdp = format!(
        "v=0\r\no=msrp-signal {id} 1 IN {kind} {host}\r\ns=MSML control\r\nc=IN {kind} {host}\r\nt=0 0\r\n"
    );
    let lines = offer
        .map(|b| String::from_utf8_lossy(&b.bytes).into_owned())
        .unwrap_or_default();
    for line in lines.lines().filter_map(|l| l.trim_end().strip_prefix("m=")) {
        let mut fields = line.split(' ');
        let media = fields.next().unwrap_or("message");
        let _port = fields.next();
        let rest: Vec<&str> = fields.collect();
        sdp.push_str(&format!("m={media} 0 {}\r\n", rest.join(" ")));
    }
    Bytes::from(sdp)
}

impl Core {
    /// An INVITE to the MSML user becomes a control dialog, answered at
    /// once; `false` for any other INVITE.
    pub(super) fn msml_incoming(
        &mut self,
        now: Instant,
        call: CallId,
        request: &Message,
        offer: Option<&Body>,
    ) -> bool {
        let Some(msml) = self.msml.as_mut() else {
            return false;
        };
        let user = request
            .request_uri()
            .and_then(|uri| uri.as_sip())
            .and_then(|sip| sip.user.as_deref());
        if user != Some(msml.settings.user.as_str()) {
            return false;
        }
        let sdp = control_sdp(&self.ua.config().host, offer);
        if self.ua.accept(now, call, Body::sdp(sdp)) {
            tracing::info!(?call, from = %request.from(), "MSML control dialog opened");
            msml.controls.insert(call, Control::default());
            self.calls.insert(call, CallRecord::new(None));
        }
        true
    }

    /// The control dialog ended: its running dialogs stop.
    pub(super) fn msml_call_ended(&mut self, call: CallId) {
        let Some(msml) = self.msml.as_mut() else {
            return;
        };
        if let Some(control) = msml.controls.remove(&call) {
            for transfer in control.dialogs.values() {
                msml.settings.transfers.terminate(&msml.settings.owner, transfer);
            }
            if control.events_dropped > 0 {
                tracing::warn!(
                    ?call,
                    dropped = control.events_dropped,
                    "MSML events dropped: the application server did not answer in time"
                );
            }
        }
    }

    /// An INFO with MSML: the result in the 200 (or 403 on a dialog that is
    /// not a control dialog).
    pub(super) fn msml_info(&mut self, now: Instant, info: InfoRequest) {
        let is_control = self
            .msml
            .as_ref()
            .is_some_and(|m| m.controls.contains_key(&info.call));
        if !is_control {
            self.ua.answer_info(now, &info, 403, "Forbidden", None);
            return;
        }
        let result = match msml::read::parse(info.request.body()) {
            Ok(document) => self.msml_execute(info.call, document),
            Err(error) => write::result(error.response, Some(&error.description), None),
        };
        let body = Body {
            content_type: MSML_TYPE.into(),
            bytes: Bytes::from(result),
        };
        self.ua.answer_info(now, &info, 200, "OK", Some(body));
    }

    /// Runs a document's requests in order (RFC 5707 7.1): the first that
    /// fails stops the rest and is the result.
    fn msml_execute(&mut self, call: CallId, document: model::Document) -> String {
        let mut dialogs = Vec::new();
        for request in document.requests {
            let done = match request {
                model::Request::DialogStart(start) => self.dialog_start(call, *start).map(Some),
                model::Request::DialogEnd { id, .. } => self.dialog_end(call, &id).map(|()| None),
            };
            match done {
                Ok(Some(dialog)) => dialogs.push(dialog),
                Ok(None) => {}
                Err(error) => return write::result(error.response, Some(&error.description), None),
            }
        }
        write::result(200, None, dialogs.first().map(String::as_str))
    }

    fn dialog_start(&mut self, call: CallId, start: model::DialogStart) -> Result<String, MsmlError> {
        let error = |response: u16, description: String| MsmlError {
            response,
            description,
        };
        // RFC 5707 6.2: `conn:` names a connection: the local tag of one of
        // our dialogs (Dialogic's clients use the remote tag they see).
        let conn = start.target.strip_prefix("conn:").ok_or_else(|| {
            error(
                430,
                format!("target {} is not a connection (conn:...)", start.target),
            )
        })?;
        let known = self
            .calls
            .keys()
            .any(|c| self.ua.dialog(*c).is_some_and(|d| d.id.local_tag == conn));
        if !known {
            return Err(error(430, format!("no connection {}", start.target)));
        }
        let transfer = start.transfer;
        if transfer.initial == model::Initial::Suspend {
            return Err(error(
                407,
                "initial=\"suspend\" is not supported: nothing here resumes a suspended transfer".into(),
            ));
        }
        for (name, set) in [
            ("ftt", transfer.ftt.is_some()),
            ("itt", transfer.itt.is_some()),
            ("starttimer", transfer.starttimer),
        ] {
            if set {
                return Err(error(
                    407,
                    format!("attribute {name} on <transfer> is not supported"),
                ));
            }
        }
        for action in transfer.objdone.sends.iter().chain(&transfer.exit.sends) {
            if action.target != "source" {
                return Err(error(
                    410,
                    format!("send target {} is not supported (only \"source\")", action.target),
                ));
            }
            if let Some(name) = action.namelist.iter().find(|n| !NAMES.contains(&n.as_str())) {
                return Err(error(
                    410,
                    format!("namelist names {name}, which a transfer does not set"),
                ));
            }
        }
        let Some(msml) = self.msml.as_mut() else {
            return Err(error(500, "MSML is off".into()));
        };
        let name = match start.name {
            Some(name) => name,
            None => {
                msml.next_name += 1;
                format!("d{}", msml.next_name)
            }
        };
        let dialog = write::dialog_id(&start.target, &name);
        let control = msml
            .controls
            .get(&call)
            .ok_or_else(|| error(500, "the control dialog is gone".into()))?;
        if control.dialogs.contains_key(&dialog) {
            return Err(error(431, format!("dialog {dialog} is running")));
        }
        let spec = transfer_spec(&transfer)?;
        let sink = MsmlSink {
            inputs: self.inputs.clone(),
            call,
            dialog: dialog.clone(),
            objdone: transfer.objdone.sends.clone(),
            exit: transfer.exit.sends.clone(),
        };
        let id = msml
            .settings
            .transfers
            .start(msml.settings.owner.clone(), spec, Box::new(sink), false)
            .map_err(|e| match e {
                transfer::TransferError::Full(_) => error(520, e.to_string()),
                other => error(410, format!("src: {other}")),
            })?;
        tracing::info!(?call, %dialog, transfer = %id, "MSML transfer started");
        if let Some(control) = msml.controls.get_mut(&call) {
            control.dialogs.insert(dialog.clone(), id);
        }
        Ok(dialog)
    }

    /// RFC 5707 9.6.2: ends a running dialog (its transfer stops, its
    /// events still come).
    fn dialog_end(&mut self, call: CallId, id: &str) -> Result<(), MsmlError> {
        let msml = self.msml.as_mut().ok_or(MsmlError {
            response: 500,
            description: "MSML is off".into(),
        })?;
        let transfer = msml.controls.get(&call).and_then(|c| c.dialogs.get(id));
        match transfer {
            Some(transfer) if msml.settings.transfers.terminate(&msml.settings.owner, transfer) => Ok(()),
            _ => Err(MsmlError {
                response: 430,
                description: format!("no running dialog {id}"),
            }),
        }
    }

    /// A transfer's event for the control dialog: queued, and sent when
    /// the INFO before it was answered.
    pub(super) fn msml_event(&mut self, now: Instant, call: CallId, dialog: &str, body: String, last: bool) {
        let Some(msml) = self.msml.as_mut() else {
            return;
        };
        let max = msml.settings.events_queued_max.max(1);
        let Some(control) = msml.controls.get_mut(&call) else {
            tracing::info!(?call, %dialog, "an MSML event for a control dialog that ended");
            return;
        };
        if last {
            control.dialogs.remove(dialog);
        }
        if control.outbox.len() >= max {
            control.outbox.pop_front();
            control.events_dropped += 1;
        }
        control.outbox.push_back(Bytes::from(body));
        self.msml_pump(now, call);
    }

    /// The final response to one of our event INFOs: the next goes.
    pub(super) fn msml_info_answered(&mut self, now: Instant, call: CallId, txn: ClientTxnId, status: u16) {
        let Some(control) = self.msml.as_mut().and_then(|m| m.controls.get_mut(&call)) else {
            return;
        };
        if control.in_flight != Some(txn) {
            return;
        }
        control.in_flight = None;
        if !(200..300).contains(&status) {
            // RFC 6086 4.2.2 / RFC 5057: a refused INFO leaves the dialog.
            tracing::warn!(?call, status, "the application server refused an MSML event INFO");
        }
        self.msml_pump(now, call);
    }

    fn msml_pump(&mut self, now: Instant, call: CallId) {
        let Some(control) = self.msml.as_mut().and_then(|m| m.controls.get_mut(&call)) else {
            return;
        };
        if control.in_flight.is_some() {
            return;
        }
        let Some(body) = control.outbox.pop_front() else {
            return;
        };
        let body = Body {
            content_type: MSML_TYPE.into(),
            bytes: body,
        };
        match self.ua.send_info(now, call, body) {
            Ok(txn) => {
                if let Some(control) = self.msml.as_mut().and_then(|m| m.controls.get_mut(&call)) {
                    control.in_flight = Some(txn);
                }
            }
            Err(error) => tracing::warn!(?call, %error, "MSML event INFO not sent"),
        }
    }
}

fn retry(retry: model::Retry) -> Retry {
    match retry {
        model::Retry::Count(n) => Retry::Count(n),
        model::Retry::Forever => Retry::Forever,
    }
}

/// The larger of an object's own retry and its transfer's.
fn either(own: model::Retry, all: model::Retry) -> Retry {
    match (retry(own), retry(all)) {
        (Retry::Forever, _) | (_, Retry::Forever) => Retry::Forever,
        (Retry::Count(a), Retry::Count(b)) => Retry::Count(a.max(b)),
    }
}

/// The MSML transfer as the transfer layer's spec; what an `xmsrp` dest
/// cannot mean is refused here (407).
fn transfer_spec(transfer: &model::Transfer) -> Result<TransferSpec, MsmlError> {
    let refuse = |description: String| MsmlError {
        response: 407,
        description,
    };
    let mut objects = Vec::new();
    for (index, object) in transfer.objects.iter().enumerate() {
        let spec = match object {
            model::TransferObject::File(file) => {
                let dest = match &file.dest {
                    model::Dest::Xmsrp(_) => {
                        if file.append {
                            return Err(refuse("append=\"true\" has no meaning for an xmsrp dest".into()));
                        }
                        if !file.overwrite {
                            return Err(refuse(
                                "overwrite=\"false\" has no meaning for an xmsrp dest".into(),
                            ));
                        }
                        Dest::from_msml(&file.dest)
                    }
                    model::Dest::File(path) => Dest::File(path.clone()),
                };
                ObjectSpec {
                    objid: file
                        .objid
                        .clone()
                        .unwrap_or_else(|| format!("object{}", index + 1)),
                    src: file.src.clone(),
                    body: None,
                    dest,
                    content_type: file
                        .contenttype
                        .clone()
                        .unwrap_or_else(|| "application/octet-stream".into()),
                    iterate: file.iterate,
                    retry: either(file.retry, transfer.retry),
                    wait: file.wait,
                    delete: file.delete,
                    overwrite: file.overwrite,
                    append: file.append,
                }
            }
            model::TransferObject::Message(message) => {
                let model::Dest::Xmsrp(_) = &message.dest else {
                    return Err(refuse("a messageobj goes to an xmsrp dest".into()));
                };
                if message.src.is_some() {
                    return Err(refuse(
                        "messageobj src is not supported: give the text as <content>".into(),
                    ));
                }
                let text: String = message.contents.iter().map(|c| c.text.as_str()).collect();
                ObjectSpec {
                    objid: message
                        .objid
                        .clone()
                        .unwrap_or_else(|| format!("object{}", index + 1)),
                    src: Default::default(),
                    body: Some(Bytes::from(text)),
                    dest: Dest::from_msml(&message.dest),
                    content_type: message.contenttype.clone(),
                    iterate: message.iterate,
                    retry: either(message.retry, transfer.retry),
                    wait: message.wait,
                    delete: false,
                    overwrite: true,
                    append: false,
                }
            }
        };
        objects.push(spec);
    }
    Ok(TransferSpec {
        objects,
        iterate: transfer.iterate,
        maxtime: transfer.maxtime,
        delay: transfer.delay,
        tag: Some("msml".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer_of(document: &str) -> model::Transfer {
        let parsed = msml::parse(document.as_bytes()).expect("the document reads");
        match parsed.requests.into_iter().next() {
            Some(model::Request::DialogStart(start)) => start.transfer,
            other => panic!("{other:?}"),
        }
    }

    fn doc(fileobj: &str) -> String {
        format!("<msml version=\"1.1\"><dialogstart target=\"conn:x\"><transfer retry=\"1\">{fileobj}</transfer></dialogstart></msml>")
    }

    const XMSRP: &str = "xmsrp://?offerer=sip:a@127.0.0.1&amp;answerer=sip:b@127.0.0.1&amp;file=/r/vm.amr";

    #[test]
    fn append_and_overwrite_false_mean_nothing_for_an_xmsrp_dest() {
        for attribute in ["append=\"true\"", "overwrite=\"false\""] {
            let fileobj = format!("<fileobj src=\"file:///tmp/vm.amr\" {attribute} dest=\"{XMSRP}\"/>");
            let error = transfer_spec(&transfer_of(&doc(&fileobj))).unwrap_err();
            assert_eq!(error.response, 407, "{attribute}: {error}");
            assert!(
                error.description.contains(attribute.split('=').next().unwrap()),
                "{error}"
            );
        }
    }

    #[test]
    fn a_fileobj_becomes_an_object_announcing_its_last_segment() {
        let fileobj = format!(
            "<fileobj src=\"file:///tmp/vm.amr\" dest=\"{XMSRP}\" contenttype=\"audio/amr\" retry=\"-1\" delete=\"true\"/>"
        );
        let spec = transfer_spec(&transfer_of(&doc(&fileobj))).unwrap();
        let object = &spec.objects[0];
        assert_eq!(object.objid, "object1");
        assert_eq!(object.retry, Retry::Forever);
        assert!(object.delete);
        assert_eq!(
            object.dest,
            Dest::Msrp {
                offerer: "sip:a@127.0.0.1".into(),
                answerer: "sip:b@127.0.0.1".into(),
                file_name: "vm.amr".into(),
            }
        );
        // The transfer's retry when the object's own is smaller.
        let plain = transfer_spec(&transfer_of(&doc(&format!(
            "<fileobj src=\"/tmp/vm.amr\" dest=\"{XMSRP}\"/>"
        ))))
        .unwrap();
        assert_eq!(plain.objects[0].retry, Retry::Count(1));
        assert_eq!(plain.objects[0].content_type, "application/octet-stream");
    }

    #[test]
    fn a_messageobj_is_inline_text_to_an_xmsrp_dest_only() {
        let message = format!("<messageobj dest=\"{XMSRP}\"><content>hello</content></messageobj>");
        let spec = transfer_spec(&transfer_of(&doc(&message))).unwrap();
        assert_eq!(spec.objects[0].body.as_deref(), Some(&b"hello"[..]));
        assert_eq!(spec.objects[0].content_type, "text/plain");
        let to_file = "<messageobj dest=\"file:///tmp/m.txt\"><content>hello</content></messageobj>";
        assert_eq!(
            transfer_spec(&transfer_of(&doc(to_file))).unwrap_err().response,
            407
        );
    }

    #[test]
    fn a_control_answer_declines_every_offered_line() {
        let offer = Body::sdp(Bytes::from_static(
            b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8\r\nm=message 2855 TCP/MSRP *\r\n",
        ));
        let answer = String::from_utf8(control_sdp("198.51.100.20", Some(&offer)).to_vec()).unwrap();
        assert!(answer.contains("m=audio 0 RTP/AVP 0 8\r\n"), "{answer}");
        assert!(answer.contains("m=message 0 TCP/MSRP *\r\n"), "{answer}");
        let none = String::from_utf8(control_sdp("198.51.100.20", None).to_vec()).unwrap();
        assert!(!none.contains("m="), "{none}");
        assert!(none.contains("c=IN IP4 198.51.100.20"));
    }

    #[test]
    fn exit_status_says_200_unless_the_transfer_failed_or_ran_out_of_time() {
        let refused = Failure {
            sip_status: Some(486),
            ..Failure::default()
        };
        assert_eq!(exit_status(End::Complete, None), 200);
        assert_eq!(exit_status(End::Terminate, None), 200);
        assert_eq!(exit_status(End::Maxtime, None), 408);
        assert_eq!(exit_status(End::Failed, Some(&refused)), 486);
        assert_eq!(exit_status(End::Failed, Some(&Failure::local("gone"))), 500);
        assert_eq!(
            failure_pairs(Some(&refused)),
            vec![("transfer.sip.status".to_string(), "486".to_string())]
        );
    }
}
