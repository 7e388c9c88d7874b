//! Server transactions, INVITE and non-INVITE (RFC 3261 17.2, as updated
//! by RFC 6026). Sans-IO: the endpoint hands in what arrived and the time,
//! and sends the octets the transaction gives back to the request's source.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::timers::TimerSettings;

/// Which state machine: INVITE (17.2.1) or non-INVITE (17.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    Invite,
    NonInvite,
}

/// RFC 3261 figures 7 and 8, with RFC 6026's Accepted state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerState {
    /// Non-INVITE only: nothing answered yet.
    Trying,
    /// A provisional response sent (an INVITE starts here).
    Proceeding,
    /// A final response sent; 300-699 for an INVITE.
    Completed,
    /// RFC 6026 7.1: an INVITE answered 2xx, absorbing retransmissions of
    /// the INVITE until timer L.
    Accepted,
    /// INVITE only: the ACK for a non-2xx final response arrived.
    Confirmed,
    Terminated,
}

/// What the transaction asks the endpoint to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerAction {
    /// Send these octets to the request's source.
    Send(Bytes),
    /// The TU is slow: send 100 Trying (RFC 3261 17.2.1), built by the
    /// endpoint only now, and hand it back with `trying_sent`.
    SendTrying,
    /// Timer H fired: no ACK came for our non-2xx final response
    /// (RFC 3261 17.2.1); the TU is told.
    AckTimeout,
}

#[derive(Debug)]
pub struct ServerTransaction {
    kind: ServerKind,
    state: ServerState,
    reliable: bool,
    timers: TimerSettings,
    /// When the transaction sends 100 Trying itself, if its TU is slow.
    trying_at: Option<Instant>,
    last_response: Option<Bytes>,
    /// Timer G: the next retransmission of a non-2xx final response.
    retransmit_at: Option<Instant>,
    retransmit_interval: Duration,
    /// Timers H, I, J, L: when the state ends.
    state_ends_at: Option<Instant>,
}

impl ServerTransaction {
    /// A transaction for a request that just arrived. An INVITE's asks for
    /// a 100 Trying (`ServerAction::SendTrying`) if the TU has not answered
    /// within `TimerSettings::trying_delay` (RFC 3261 17.2.1).
    pub fn new(kind: ServerKind, reliable: bool, timers: TimerSettings, now: Instant) -> ServerTransaction {
        let (state, trying_at) = match kind {
            ServerKind::Invite => (ServerState::Proceeding, Some(now + timers.trying_delay)),
            ServerKind::NonInvite => (ServerState::Trying, None),
        };
        ServerTransaction {
            kind,
            state,
            reliable,
            timers,
            trying_at,
            last_response: None,
            retransmit_at: None,
            retransmit_interval: timers.t1,
            state_ends_at: None,
        }
    }

    pub fn kind(&self) -> ServerKind {
        self.kind
    }

    pub fn state(&self) -> ServerState {
        self.state
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ServerState::Terminated
    }

    /// The TU answers. Returns the octets to send, or `None` when the state
    /// machine no longer sends responses (a late TU, RFC 3261 17.2.2).
    pub fn respond(&mut self, now: Instant, status: u16, bytes: Bytes) -> Option<Bytes> {
        use ServerState::*;
        let provisional = status < 200;
        match (self.kind, self.state) {
            (_, Trying | Proceeding) => {
                self.trying_at = None;
                self.last_response = Some(bytes.clone());
                if provisional {
                    self.state = Proceeding;
                } else if self.kind == ServerKind::Invite && status < 300 {
                    // RFC 6026 8.5: 2xx moves to Accepted; the TU, not the
                    // transaction, retransmits it (RFC 3261 13.3.1.4).
                    self.state = Accepted;
                    self.state_ends_at = Some(now + self.timers.transaction_timeout());
                    // Nothing is resent from Accepted: only the key stays,
                    // to absorb retransmitted INVITEs until timer L.
                    self.last_response = None;
                } else if self.kind == ServerKind::Invite {
                    self.state = Completed;
                    self.state_ends_at = Some(now + self.timers.transaction_timeout());
                    if !self.reliable {
                        self.retransmit_interval = self.timers.t1;
                        self.retransmit_at = Some(now + self.retransmit_interval);
                    }
                } else {
                    self.state = Completed;
                    self.state_ends_at = Some(now + self.timers.timer_j(self.reliable));
                }
                Some(bytes)
            }
            // RFC 6026 8.6: retransmissions of the 2xx pass through.
            (ServerKind::Invite, Accepted) if (200..300).contains(&status) => Some(bytes),
            _ => None,
        }
    }

    /// The same request arrived again: the last response is sent again
    /// (RFC 3261 17.2.1, 17.2.2), or it is absorbed (RFC 6026 8.5 in
    /// Accepted, where the TU's 2xx retransmissions cover it).
    pub fn handle_retransmission(&mut self) -> Option<Bytes> {
        match self.state {
            ServerState::Proceeding | ServerState::Completed => self.last_response.clone(),
            _ => None,
        }
    }

    /// An ACK matched this transaction (a non-2xx final response's ACK
    /// carries the INVITE's branch, RFC 3261 17.1.1.3). Returns true when
    /// it was absorbed here; an ACK in any other state is the TU's.
    pub fn handle_ack(&mut self, now: Instant) -> bool {
        match (self.kind, self.state) {
            (ServerKind::Invite, ServerState::Completed) => {
                self.state = ServerState::Confirmed;
                self.retransmit_at = None;
                self.state_ends_at = Some(now + self.timers.timer_t4(self.reliable));
                true
            }
            (ServerKind::Invite, ServerState::Confirmed) => true,
            _ => false,
        }
    }

    /// The 100 Trying asked for by `SendTrying`, sent: a retransmitted
    /// request gets it again.
    pub fn trying_sent(&mut self, trying: Bytes) {
        if self.last_response.is_none() {
            self.last_response = Some(trying);
        }
    }

    /// The transport reported the response could not be sent (RFC 3261
    /// 17.2.4): the transaction ends.
    pub fn handle_transport_error(&mut self) {
        self.state = ServerState::Terminated;
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.trying_at, self.retransmit_at, self.state_ends_at]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn handle_timeout(&mut self, now: Instant, actions: &mut Vec<ServerAction>) {
        if self.trying_at.is_some_and(|at| at <= now) {
            self.trying_at = None;
            if self.state == ServerState::Proceeding && self.last_response.is_none() {
                actions.push(ServerAction::SendTrying);
            }
        }
        if self.retransmit_at.is_some_and(|at| at <= now) {
            // Timer G (RFC 3261 17.2.1).
            if let Some(response) = self.last_response.clone() {
                actions.push(ServerAction::Send(response));
            }
            self.retransmit_interval = self.timers.backoff(self.retransmit_interval, true);
            self.retransmit_at = Some(now + self.retransmit_interval);
        }
        if self.state_ends_at.is_some_and(|at| at <= now) {
            if self.state == ServerState::Completed && self.kind == ServerKind::Invite {
                // Timer H.
                actions.push(ServerAction::AckTimeout);
            }
            self.state = ServerState::Terminated;
            self.retransmit_at = None;
            self.state_ends_at = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> Instant {
        Instant::now()
    }

    fn drive(txn: &mut ServerTransaction, until: Instant) -> Vec<(Duration, ServerAction)> {
        let t0 = until - Duration::from_secs(3600);
        let mut out = Vec::new();
        while let Some(at) = txn.poll_timeout() {
            if at > until {
                break;
            }
            let mut actions = Vec::new();
            txn.handle_timeout(at, &mut actions);
            out.extend(actions.into_iter().map(|a| (at - t0, a)));
        }
        out
    }

    #[test]
    fn a_slow_tu_gets_100_trying_sent_for_it_after_200_ms() {
        let t0 = start();
        let mut txn = ServerTransaction::new(ServerKind::Invite, false, TimerSettings::default(), t0);
        assert_eq!(txn.poll_timeout(), Some(t0 + Duration::from_millis(200)));
        let mut actions = Vec::new();
        txn.handle_timeout(t0 + Duration::from_millis(200), &mut actions);
        assert_eq!(actions, vec![ServerAction::SendTrying]);
        txn.trying_sent(Bytes::from_static(b"100"));
        assert_eq!(txn.handle_retransmission(), Some(Bytes::from_static(b"100")));
    }

    #[test]
    fn a_quick_tu_sends_no_100_trying() {
        let t0 = start();
        let mut txn = ServerTransaction::new(ServerKind::Invite, true, TimerSettings::default(), t0);
        txn.respond(t0, 180, Bytes::from_static(b"180"));
        let mut actions = Vec::new();
        txn.handle_timeout(t0 + Duration::from_secs(1), &mut actions);
        assert!(actions.is_empty());
    }

    #[test]
    fn a_non_2xx_final_response_is_retransmitted_by_timer_g_until_timer_h() {
        let t0 = start();
        let timers = TimerSettings::default();
        let mut txn = ServerTransaction::new(ServerKind::Invite, false, timers, t0);
        assert!(txn.respond(t0, 486, Bytes::from_static(b"486")).is_some());
        let mut sent = Vec::new();
        let mut now = t0;
        let mut ack_timeout = false;
        while let Some(at) = txn.poll_timeout() {
            now = at;
            let mut actions = Vec::new();
            txn.handle_timeout(at, &mut actions);
            for action in actions {
                match action {
                    ServerAction::Send(_) => sent.push(at - t0),
                    ServerAction::AckTimeout => ack_timeout = true,
                    ServerAction::SendTrying => unreachable!("answered at once"),
                }
            }
        }
        // G: 0.5, 1.5, 3.5, 7.5, then every T2 = 4 s until H at 32 s.
        let ms: Vec<u128> = sent.iter().map(|d| d.as_millis()).collect();
        assert_eq!(&ms[..5], &[500, 1500, 3500, 7500, 11500]);
        assert!(ack_timeout);
        assert_eq!(now - t0, Duration::from_secs(32));
        assert!(txn.is_terminated());
    }

    #[test]
    fn an_ack_stops_timer_g_and_timer_i_ends_the_transaction() {
        let t0 = start();
        let mut txn = ServerTransaction::new(ServerKind::Invite, false, TimerSettings::default(), t0);
        txn.respond(t0, 603, Bytes::from_static(b"603"));
        assert!(txn.handle_ack(t0 + Duration::from_millis(100)));
        assert_eq!(txn.state(), ServerState::Confirmed);
        assert!(
            txn.handle_ack(t0 + Duration::from_millis(200)),
            "a repeated ACK is absorbed"
        );
        let events = drive(&mut txn, t0 + Duration::from_secs(60));
        assert!(events.iter().all(|(_, a)| *a != ServerAction::AckTimeout));
        assert!(txn.is_terminated());
    }

    #[test]
    fn a_2xx_moves_to_accepted_where_invite_retransmissions_are_absorbed() {
        let t0 = start();
        let mut txn = ServerTransaction::new(ServerKind::Invite, false, TimerSettings::default(), t0);
        txn.respond(t0, 200, Bytes::from_static(b"200"));
        assert_eq!(txn.state(), ServerState::Accepted);
        assert_eq!(txn.handle_retransmission(), None);
        assert!(txn.respond(t0, 200, Bytes::from_static(b"200")).is_some());
        assert!(!txn.handle_ack(t0), "the 2xx's ACK is the TU's");
        drive(&mut txn, t0 + Duration::from_secs(32));
        assert!(txn.is_terminated(), "timer L");
    }

    #[test]
    fn a_non_invite_transaction_resends_its_final_response_until_timer_j() {
        let t0 = start();
        let mut txn = ServerTransaction::new(ServerKind::NonInvite, false, TimerSettings::default(), t0);
        assert_eq!(txn.handle_retransmission(), None, "nothing sent yet in Trying");
        txn.respond(t0, 200, Bytes::from_static(b"200"));
        assert_eq!(txn.handle_retransmission(), Some(Bytes::from_static(b"200")));
        assert!(txn.respond(t0, 500, Bytes::from_static(b"500")).is_none());
        drive(&mut txn, t0 + Duration::from_secs(31));
        assert!(!txn.is_terminated());
        drive(&mut txn, t0 + Duration::from_secs(32));
        assert!(txn.is_terminated());
    }

    #[test]
    fn over_a_reliable_transport_completed_ends_at_once() {
        let t0 = start();
        let mut txn = ServerTransaction::new(ServerKind::NonInvite, true, TimerSettings::default(), t0);
        txn.respond(t0, 200, Bytes::from_static(b"200"));
        drive(&mut txn, t0);
        assert!(txn.is_terminated());
    }
}
