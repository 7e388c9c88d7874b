//! Held success REPORTs end to end: two `msrpd serve` processes on
//! loopback, a voicemail server's session (`hold_reports`) receiving files
//! sent with Success-Report, and the application deciding each REPORT
//! through the control socket (the client's `report`, and `msrpd ctl
//! report`).

mod daemon;

use std::process::Command;
use std::time::Duration;

use daemon::{collect_events, passive, pattern, Daemon};
use msrp_engine::control::{
    BatchOp, EngineEvent, ReportRequest, SendRequest, SessionDescriptor, SessionRole,
};

/// The sender's outcome of `message`: `Ok(())` delivered, `Err(status)`
/// failed.
fn outcome(events: &mut msrp_engine::control::Client, message: u64) -> Result<(), Option<u16>> {
    let mut outcome = None;
    collect_events(events, Duration::from_secs(30), |event, _| {
        match event {
            EngineEvent::Delivered { message: m, .. } if m == message => outcome = Some(Ok(())),
            EngineEvent::Failed {
                message: m, status, ..
            } if m == message => outcome = Some(Err(status)),
            _ => {}
        }
        outcome.is_some()
    });
    outcome.unwrap()
}

/// The next `message_received` of the receiver: its Message-ID and
/// `report_held`.
fn next_received(events: &mut msrp_engine::control::Client) -> (String, bool) {
    let mut got = None;
    collect_events(events, Duration::from_secs(30), |event, _| {
        if let EngineEvent::MessageReceived {
            message_id,
            report_held,
            ..
        } = event
        {
            got = Some((message_id, report_held));
        }
        got.is_some()
    });
    got.unwrap()
}

fn send_reported(
    ctl: &mut msrp_engine::control::Client,
    session_id: &str,
    file: Option<&str>,
    body: &[u8],
) -> u64 {
    let request = SendRequest {
        session_id: session_id.into(),
        content_type: "audio/wav".into(),
        file: file.map(Into::into),
        success_report: Some(true),
        ..SendRequest::default()
    };
    ctl.send(request, body).unwrap()
}

#[test]
fn the_receiving_application_decides_the_success_report() {
    let rx = Daemon::start("held-rx", &["--shards", "1"]);
    let tx = Daemon::start("held-tx", &["--shards", "1"]);
    let (mut rx_events, mut tx_events) = (rx.events(), tx.events());
    let (mut rx_ctl, mut tx_ctl) = (rx.client(), tx.client());
    rx_ctl
        .create_session(SessionDescriptor {
            hold_reports: true,
            ..passive("vm", tx.uri("caller"))
        })
        .unwrap();
    tx_ctl
        .create_session(SessionDescriptor {
            role: SessionRole::Active,
            ..passive("caller", rx.uri("vm"))
        })
        .unwrap();
    for events in [&mut rx_events, &mut tx_events] {
        collect_events(events, Duration::from_secs(30), |e, _| {
            matches!(e, EngineEvent::SessionReady { .. })
        });
    }

    // A spooled file (1 MiB), its hash checked: 200, and the sender hears
    // `delivered` only then.
    let file = tx.dir.join("greeting.wav");
    std::fs::write(&file, pattern(5, 1 << 20)).unwrap();
    let message = send_reported(&mut tx_ctl, "caller", Some(file.to_str().unwrap()), &[]);
    let (message_id, held) = next_received(&mut rx_events);
    assert!(held, "report_held on the event");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        tx_events
            .next_event_timeout(Duration::from_millis(1))
            .unwrap()
            .is_none(),
        "no outcome before the application decides"
    );
    assert!(rx_ctl.report("vm", &message_id, 200, None).unwrap());
    assert_eq!(outcome(&mut tx_events, message), Ok(()));
    let refused = rx_ctl.report("vm", &message_id, 200, None).unwrap_err();
    assert_eq!(
        refused.to_string(),
        format!("the engine refused the command: no held report for message {message_id} in session vm")
    );

    // An inline one whose hash does not match: 400, through `msrpd ctl`.
    let message = send_reported(&mut tx_ctl, "caller", None, b"RIFF not really a wav");
    let (message_id, held) = next_received(&mut rx_events);
    assert!(held);
    let output = Command::new(env!("CARGO_BIN_EXE_msrpd"))
        .arg("ctl")
        .arg("--control")
        .arg(&rx.control)
        .args([
            "report",
            "vm",
            &message_id,
            "--status",
            "400",
            "--comment",
            "sha-1 mismatch",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "sent");
    assert_eq!(outcome(&mut tx_events, message), Err(Some(400)));

    // A batch op, version 2.
    let message = send_reported(&mut tx_ctl, "caller", None, b"third");
    let (message_id, _) = next_received(&mut rx_events);
    let mut v2 = rx.client();
    assert_eq!(v2.hello(2).unwrap(), 2);
    let results = v2
        .batch(
            vec![
                BatchOp::Report(ReportRequest {
                    session_id: "vm".into(),
                    message_id: "nothing-held".into(),
                    status: 200,
                    comment: None,
                }),
                BatchOp::Report(ReportRequest {
                    session_id: "vm".into(),
                    message_id: message_id.clone(),
                    status: 415,
                    comment: None,
                }),
            ],
            &[],
        )
        .unwrap();
    assert!(!results[0].ok);
    assert_eq!(
        results[0].error.as_deref(),
        Some("no held report for message nothing-held in session vm")
    );
    assert!(results[1].ok && results[1].sent == Some(true), "{results:?}");
    assert_eq!(outcome(&mut tx_events, message), Err(Some(415)));

    let unknown = rx_ctl.report("nobody", "m", 200, None).unwrap_err();
    assert!(unknown.to_string().contains("no session nobody"), "{unknown}");
    let stats = rx.stats();
    assert_eq!(stats.shards[0].reports_held_expired, 0);
}

/// `--held-reports-max 1`: a second held report answers the first with 408,
/// counted in `stats`.
#[test]
fn one_report_over_held_reports_max_answers_the_oldest_with_408() {
    let rx = Daemon::start("held-max-rx", &["--shards", "1", "--held-reports-max", "1"]);
    let tx = Daemon::start("held-max-tx", &["--shards", "1"]);
    let (mut rx_events, mut tx_events) = (rx.events(), tx.events());
    let (mut rx_ctl, mut tx_ctl) = (rx.client(), tx.client());
    rx_ctl
        .create_session(SessionDescriptor {
            hold_reports: true,
            ..passive("vm", tx.uri("caller"))
        })
        .unwrap();
    tx_ctl
        .create_session(SessionDescriptor {
            role: SessionRole::Active,
            ..passive("caller", rx.uri("vm"))
        })
        .unwrap();
    for events in [&mut rx_events, &mut tx_events] {
        collect_events(events, Duration::from_secs(30), |e, _| {
            matches!(e, EngineEvent::SessionReady { .. })
        });
    }
    let first = send_reported(&mut tx_ctl, "caller", None, b"one");
    next_received(&mut rx_events);
    let second = send_reported(&mut tx_ctl, "caller", None, b"two");
    let (second_id, _) = next_received(&mut rx_events);
    assert_eq!(outcome(&mut tx_events, first), Err(Some(408)));
    assert_eq!(rx.stats().shards[0].reports_held_expired, 1);
    assert!(rx_ctl.report("vm", &second_id, 200, None).unwrap());
    assert_eq!(outcome(&mut tx_events, second), Ok(()));
}
