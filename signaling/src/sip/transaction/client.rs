//! Client transactions, INVITE and non-INVITE (RFC 3261 17.1, as updated
//! by RFC 6026). The endpoint sends the request once when it creates the
//! transaction; the transaction retransmits it over an unreliable
//! transport, times it out, and tells which responses reach the TU.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::timers::TimerSettings;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    Invite,
    NonInvite,
}

/// RFC 3261 figures 5 and 6, with RFC 6026's Accepted state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientState {
    /// INVITE: sent, nothing heard (Calling); non-INVITE: Trying.
    Calling,
    Proceeding,
    /// A final response arrived (300-699 for an INVITE).
    Completed,
    /// RFC 6026 7.2: an INVITE's 2xx arrived; further 2xx pass to the TU
    /// until timer M.
    Accepted,
    Terminated,
}

/// What became of a response handed to the transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseOutcome {
    /// The TU sees this response.
    pub to_tu: bool,
    /// Send this (the ACK of a non-2xx final response, RFC 3261 17.1.1.3).
    pub send: Option<Bytes>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientAction {
    /// Retransmit the request (timers A and E).
    Send(Bytes),
    /// Timer B or F fired: the TU treats it as a 408 (RFC 3261 8.1.3.1).
    Timeout,
}

#[derive(Debug)]
pub struct ClientTransaction {
    kind: ClientKind,
    state: ClientState,
    reliable: bool,
    timers: TimerSettings,
    request: Bytes,
    ack: Option<Bytes>,
    retransmit_at: Option<Instant>,
    retransmit_interval: Duration,
    /// Timers B and F while waiting; D, K and M after.
    state_ends_at: Option<Instant>,
}

impl ClientTransaction {
    /// A transaction for `request`, which the endpoint has just sent.
    pub fn new(
        kind: ClientKind,
        reliable: bool,
        timers: TimerSettings,
        now: Instant,
        request: Bytes,
    ) -> ClientTransaction {
        ClientTransaction {
            kind,
            state: ClientState::Calling,
            reliable,
            timers,
            request,
            ack: None,
            retransmit_at: (!reliable).then(|| now + timers.t1),
            retransmit_interval: timers.t1,
            state_ends_at: Some(now + timers.transaction_timeout()),
        }
    }

    pub fn kind(&self) -> ClientKind {
        self.kind
    }

    pub fn state(&self) -> ClientState {
        self.state
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ClientState::Terminated
    }

    /// A response matched this transaction (RFC 3261 17.1.3). For an
    /// INVITE's non-2xx final response, `ack` builds the ACK the
    /// transaction sends (17.1.1.3) and repeats for each retransmission.
    pub fn handle_response(
        &mut self,
        now: Instant,
        status: u16,
        ack: impl FnOnce() -> Bytes,
    ) -> ResponseOutcome {
        use ClientState::*;
        let pass = ResponseOutcome {
            to_tu: true,
            send: None,
        };
        let absorb = ResponseOutcome {
            to_tu: false,
            send: None,
        };
        match (self.kind, self.state) {
            (_, Calling | Proceeding) if status < 200 => {
                self.state = Proceeding;
                match self.kind {
                    // Timer A stops once the INVITE is known to have arrived.
                    ClientKind::Invite => self.retransmit_at = None,
                    // Timer E continues, every T2 (17.1.2.2).
                    ClientKind::NonInvite => {
                        if self.retransmit_at.is_some() {
                            self.retransmit_interval = self.timers.t2;
                        }
                    }
                }
                pass
            }
            (ClientKind::Invite, Calling | Proceeding) if status < 300 => {
                self.state = Accepted;
                self.retransmit_at = None;
                self.state_ends_at = Some(now + self.timers.transaction_timeout());
                pass
            }
            (ClientKind::Invite, Calling | Proceeding) => {
                let ack = ack();
                self.ack = Some(ack.clone());
                self.state = Completed;
                self.retransmit_at = None;
                self.state_ends_at = Some(now + self.timers.timer_d(self.reliable));
                ResponseOutcome {
                    to_tu: true,
                    send: Some(ack),
                }
            }
            (ClientKind::Invite, Accepted) if (200..300).contains(&status) => pass,
            (ClientKind::Invite, Completed) if status >= 300 => ResponseOutcome {
                to_tu: false,
                send: self.ack.clone(),
            },
            (ClientKind::NonInvite, Calling | Proceeding) => {
                self.state = Completed;
                self.retransmit_at = None;
                self.state_ends_at = Some(now + self.timers.timer_t4(self.reliable));
                pass
            }
            _ => absorb,
        }
    }

    /// The transport could not send the request (RFC 3261 17.1.4): the TU
    /// treats it as a 503.
    pub fn handle_transport_error(&mut self) {
        self.state = ClientState::Terminated;
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.retransmit_at, self.state_ends_at]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn handle_timeout(&mut self, now: Instant, actions: &mut Vec<ClientAction>) {
        if self.state_ends_at.is_some_and(|at| at <= now) {
            if matches!(self.state, ClientState::Calling | ClientState::Proceeding) {
                actions.push(ClientAction::Timeout);
            }
            self.state = ClientState::Terminated;
            self.retransmit_at = None;
            self.state_ends_at = None;
            return;
        }
        if self.retransmit_at.is_some_and(|at| at <= now) {
            actions.push(ClientAction::Send(self.request.clone()));
            let capped = self.kind == ClientKind::NonInvite;
            self.retransmit_interval = match self.state {
                ClientState::Proceeding => self.timers.t2,
                _ => self.timers.backoff(self.retransmit_interval, capped),
            };
            self.retransmit_at = Some(now + self.retransmit_interval);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(txn: &mut ClientTransaction, t0: Instant) -> (Vec<u128>, bool, Instant) {
        let mut sent = Vec::new();
        let mut timed_out = false;
        let mut now = t0;
        while let Some(at) = txn.poll_timeout() {
            now = at;
            let mut actions = Vec::new();
            txn.handle_timeout(at, &mut actions);
            for action in actions {
                match action {
                    ClientAction::Send(_) => sent.push((at - t0).as_millis()),
                    ClientAction::Timeout => timed_out = true,
                }
            }
        }
        (sent, timed_out, now)
    }

    #[test]
    fn timer_a_doubles_without_cap_until_timer_b() {
        let t0 = Instant::now();
        let mut txn = ClientTransaction::new(
            ClientKind::Invite,
            false,
            TimerSettings::default(),
            t0,
            Bytes::from_static(b"INVITE"),
        );
        let (sent, timed_out, end) = run(&mut txn, t0);
        assert_eq!(sent, vec![500, 1500, 3500, 7500, 15500, 31500]);
        assert!(timed_out);
        assert_eq!(end - t0, Duration::from_secs(32));
    }

    #[test]
    fn timer_e_is_capped_at_t2_and_every_t2_once_proceeding() {
        let t0 = Instant::now();
        let mut txn = ClientTransaction::new(
            ClientKind::NonInvite,
            false,
            TimerSettings::default(),
            t0,
            Bytes::from_static(b"BYE"),
        );
        let mut actions = Vec::new();
        for at in [500u64, 1500, 3500] {
            txn.handle_timeout(t0 + Duration::from_millis(at), &mut actions);
        }
        assert_eq!(txn.poll_timeout(), Some(t0 + Duration::from_millis(7500)));
        txn.handle_timeout(t0 + Duration::from_millis(7500), &mut actions);
        assert_eq!(txn.poll_timeout(), Some(t0 + Duration::from_millis(11500)));
        let outcome = txn.handle_response(t0 + Duration::from_secs(8), 100, || unreachable!());
        assert!(outcome.to_tu);
        assert_eq!(txn.state(), ClientState::Proceeding);
        let outcome = txn.handle_response(t0 + Duration::from_secs(9), 200, || unreachable!());
        assert!(outcome.to_tu);
        assert_eq!(
            txn.poll_timeout(),
            Some(t0 + Duration::from_secs(14)),
            "timer K = T4"
        );
    }

    #[test]
    fn a_non_2xx_final_is_acked_here_and_its_retransmissions_absorbed() {
        let t0 = Instant::now();
        let mut txn = ClientTransaction::new(
            ClientKind::Invite,
            false,
            TimerSettings::default(),
            t0,
            Bytes::from_static(b"INVITE"),
        );
        let first = txn.handle_response(t0, 486, || Bytes::from_static(b"ACK"));
        assert_eq!(
            first,
            ResponseOutcome {
                to_tu: true,
                send: Some(Bytes::from_static(b"ACK"))
            }
        );
        let again = txn.handle_response(t0, 486, || unreachable!("the ACK is built once"));
        assert_eq!(
            again,
            ResponseOutcome {
                to_tu: false,
                send: Some(Bytes::from_static(b"ACK"))
            }
        );
        let (sent, timed_out, end) = run(&mut txn, t0);
        assert!(sent.is_empty() && !timed_out);
        assert_eq!(end - t0, Duration::from_secs(32), "timer D");
    }

    #[test]
    fn every_2xx_reaches_the_tu_until_timer_m() {
        let t0 = Instant::now();
        let mut txn = ClientTransaction::new(
            ClientKind::Invite,
            true,
            TimerSettings::default(),
            t0,
            Bytes::from_static(b"INVITE"),
        );
        assert!(txn.handle_response(t0, 180, || unreachable!()).to_tu);
        assert!(txn.handle_response(t0, 200, || unreachable!()).to_tu);
        assert_eq!(txn.state(), ClientState::Accepted);
        assert!(
            txn.handle_response(t0, 200, || unreachable!()).to_tu,
            "RFC 6026 7.2"
        );
        assert!(!txn.handle_response(t0, 180, || unreachable!()).to_tu);
        let (_, timed_out, end) = run(&mut txn, t0);
        assert!(!timed_out);
        assert_eq!(end - t0, Duration::from_secs(32));
    }

    #[test]
    fn over_a_reliable_transport_nothing_is_retransmitted() {
        let t0 = Instant::now();
        let mut txn = ClientTransaction::new(
            ClientKind::NonInvite,
            true,
            TimerSettings::default(),
            t0,
            Bytes::from_static(b"OPTIONS"),
        );
        let (sent, timed_out, _) = run(&mut txn, t0);
        assert!(sent.is_empty());
        assert!(timed_out, "timer F still applies");
    }
}
