//! The order of a transfer's work, sans-IO: which object is sent when, how
//! often (`iterate`), how often again after a failure (`retry`), when the
//! whole gives up (`maxtime`) or is told to stop (MSML `dialogend`), and
//! the events that say so. Time is an argument; the shell (`run.rs`) does
//! the INVITEs, the sends and the deletions the actions ask for, and
//! reports each attempt's outcome back.
//!
//! The attributes are Dialogic's MOML transfer module's (see
//! `msml::model`): objects go in document order; an object whose `wait` is
//! false lets the next one start beside it, one whose `wait` is true is
//! finished before the next starts; the object list is gone through
//! `iterate` times.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How often a failed object is tried again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    Count(u32),
    /// MOML `retry="-1"`: until it succeeds or the transfer stops.
    Forever,
}

impl Retry {
    fn allows(self, failures: u32) -> bool {
        match self {
            Retry::Count(n) => failures <= n,
            Retry::Forever => true,
        }
    }
}

/// One object's part of the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectPlan {
    /// `transfer.objid` in its events.
    pub objid: String,
    /// Successful sends of it per pass over the list (at least 1).
    pub iterate: u32,
    pub retry: Retry,
    /// The next object waits until this one is done.
    pub wait: bool,
    /// Its source is deleted once every send of it succeeded (never on a
    /// failure).
    pub delete: bool,
}

/// What the transfer does, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub objects: Vec<ObjectPlan>,
    /// Passes over the object list (at least 1).
    pub iterate: u32,
    /// The whole transfer's cap, from its start.
    pub maxtime: Option<Duration>,
    /// Nothing starts before it passed.
    pub delay: Option<Duration>,
    /// The source is deleted before the object's `ObjectDone` event (else
    /// after it).
    pub delete_before_event: bool,
}

/// How a transfer ended: MOML's `transfer.end` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Complete,
    Failed,
    /// Stopped by the application (MSML `dialogend`, REST `DELETE`).
    Terminate,
    Maxtime,
}

impl End {
    pub fn name(self) -> &'static str {
        match self {
            End::Complete => "transfer.complete",
            End::Failed => "transfer.failed",
            End::Terminate => "transfer.terminate",
            End::Maxtime => "transfer.maxtime",
        }
    }
}

/// Why one attempt failed: the SIP final status of a refused INVITE, the
/// MSRP status of a refused message, and the words.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Failure {
    pub sip_status: Option<u16>,
    pub msrp_status: Option<u16>,
    pub reason: String,
}

impl Failure {
    pub fn local(reason: impl Into<String>) -> Failure {
        Failure {
            reason: reason.into(),
            ..Failure::default()
        }
    }
}

/// What the shell does next, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send object `object` once (`attempt` counts this object's tries,
    /// from 1); report with `attempt_done`.
    Start { object: usize, attempt: u32 },
    /// Stop object `object`'s running attempt (its message is interrupted,
    /// its session ended); its outcome is no longer wanted.
    Abort { object: usize },
    /// Every send of `object` in this pass succeeded.
    ObjectDone { object: usize, duration: Duration },
    /// Delete `object`'s source.
    Delete { object: usize },
    /// The transfer is over; nothing comes after this.
    Finished {
        end: End,
        duration: Duration,
        /// The object that ended it, when one did.
        object: Option<usize>,
        failure: Option<Failure>,
    },
}

#[derive(Clone, Debug, Default)]
struct ObjectState {
    running: bool,
    done: bool,
    /// Successful sends in this pass.
    sent: u32,
    /// Failures since the last success.
    failures: u32,
    attempts: u32,
    started: Option<Instant>,
}

#[derive(Debug)]
pub struct Machine {
    plan: Plan,
    created: Instant,
    start_at: Instant,
    deadline: Option<Instant>,
    started: bool,
    pass: u32,
    /// The next object of this pass not yet started.
    next: usize,
    objects: Vec<ObjectState>,
    actions: VecDeque<Action>,
    finished: bool,
    last_object: Option<usize>,
}

impl Machine {
    pub fn new(plan: Plan, now: Instant) -> Machine {
        let start_at = now + plan.delay.unwrap_or_default();
        let deadline = plan.maxtime.map(|max| now + max);
        let objects = vec![ObjectState::default(); plan.objects.len()];
        Machine {
            plan,
            created: now,
            start_at,
            deadline,
            started: false,
            pass: 0,
            next: 0,
            objects,
            actions: VecDeque::new(),
            finished: false,
            last_object: None,
        }
        .kicked(now)
    }

    fn kicked(mut self, now: Instant) -> Machine {
        self.handle_timeout(now);
        self
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The object whose events come last (the one that ended the transfer,
    /// or the last done).
    pub fn last_object(&self) -> Option<usize> {
        self.last_object
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.finished {
            return None;
        }
        let start = (!self.started).then_some(self.start_at);
        [start, self.deadline].into_iter().flatten().min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.finished {
            return;
        }
        if self.deadline.is_some_and(|at| now >= at) {
            self.stop(now, End::Maxtime, None, None);
            return;
        }
        if !self.started && now >= self.start_at {
            self.started = true;
            if self.plan.objects.is_empty() {
                self.finish(now, End::Complete, None, None);
            } else {
                self.start_more(now);
            }
        }
    }

    /// The application stopped the transfer.
    pub fn terminate(&mut self, now: Instant) {
        if !self.finished {
            self.stop(now, End::Terminate, None, None);
        }
    }

    /// The outcome of object `object`'s running attempt. Outcomes of
    /// aborted attempts (or after the end) change nothing.
    pub fn attempt_done(&mut self, now: Instant, object: usize, outcome: Result<(), Failure>) {
        if self.finished || !self.objects.get(object).is_some_and(|o| o.running) {
            return;
        }
        let plan = self.plan.objects[object].clone();
        let state = &mut self.objects[object];
        state.running = false;
        match outcome {
            Ok(()) => {
                state.sent += 1;
                state.failures = 0;
                if state.sent < plan.iterate.max(1) {
                    self.start(now, object);
                    return;
                }
                state.done = true;
                let duration = state.started.map(|s| now - s).unwrap_or_default();
                self.last_object = Some(object);
                let last_pass = self.pass + 1 >= self.plan.iterate.max(1);
                let delete = plan.delete && last_pass;
                if delete && self.plan.delete_before_event {
                    self.actions.push_back(Action::Delete { object });
                }
                self.actions.push_back(Action::ObjectDone { object, duration });
                if delete && !self.plan.delete_before_event {
                    self.actions.push_back(Action::Delete { object });
                }
                self.start_more(now);
            }
            Err(failure) => {
                state.failures += 1;
                if plan.retry.allows(state.failures) {
                    self.start(now, object);
                } else {
                    self.stop(now, End::Failed, Some(object), Some(failure));
                }
            }
        }
    }

    /// Starts what may run now: objects in order up to the first that
    /// waits; a new pass once every object of this one is done.
    fn start_more(&mut self, now: Instant) {
        loop {
            let count = self.plan.objects.len();
            if self.next == count {
                if self.objects.iter().any(|o| !o.done) {
                    return;
                }
                self.pass += 1;
                if self.pass >= self.plan.iterate.max(1) {
                    self.finish(now, End::Complete, None, None);
                    return;
                }
                self.next = 0;
                for state in &mut self.objects {
                    *state = ObjectState {
                        attempts: state.attempts,
                        ..ObjectState::default()
                    };
                }
            }
            // A waiting object before `next` that is not done holds the rest.
            if (0..self.next).any(|i| self.plan.objects[i].wait && !self.objects[i].done) {
                return;
            }
            let object = self.next;
            self.next += 1;
            self.objects[object].started = Some(now);
            self.start(now, object);
        }
    }

    fn start(&mut self, _now: Instant, object: usize) {
        let state = &mut self.objects[object];
        state.running = true;
        state.attempts += 1;
        self.actions.push_back(Action::Start {
            object,
            attempt: state.attempts,
        });
    }

    /// Ends early: what runs is aborted; the object named is the one that
    /// failed, else the first that was running.
    fn stop(&mut self, now: Instant, end: End, object: Option<usize>, failure: Option<Failure>) {
        let mut first_running = None;
        for (index, state) in self.objects.iter_mut().enumerate() {
            if state.running {
                state.running = false;
                first_running.get_or_insert(index);
                self.actions.push_back(Action::Abort { object: index });
            }
        }
        self.finish(now, end, object.or(first_running), failure);
    }

    fn finish(&mut self, now: Instant, end: End, object: Option<usize>, failure: Option<Failure>) {
        self.finished = true;
        if object.is_some() {
            self.last_object = object;
        }
        self.actions.push_back(Action::Finished {
            end,
            duration: now - self.created,
            object,
            failure,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(objid: &str, wait: bool) -> ObjectPlan {
        ObjectPlan {
            objid: objid.into(),
            iterate: 1,
            retry: Retry::Count(0),
            wait,
            delete: false,
        }
    }

    fn plan(objects: Vec<ObjectPlan>) -> Plan {
        Plan {
            objects,
            iterate: 1,
            maxtime: None,
            delay: None,
            delete_before_event: false,
        }
    }

    fn drain(m: &mut Machine) -> Vec<Action> {
        std::iter::from_fn(|| m.poll_action()).collect()
    }

    #[test]
    fn one_object_with_delete_is_sent_then_done_then_deleted_then_finished() {
        let now = Instant::now();
        let mut p = plan(vec![ObjectPlan {
            delete: true,
            ..object("a", false)
        }]);
        p.delete_before_event = false;
        let mut m = Machine::new(p, now);
        assert_eq!(
            drain(&mut m),
            vec![Action::Start {
                object: 0,
                attempt: 1
            }]
        );
        let later = now + Duration::from_millis(250);
        m.attempt_done(later, 0, Ok(()));
        let actions = drain(&mut m);
        assert_eq!(
            actions,
            vec![
                Action::ObjectDone {
                    object: 0,
                    duration: Duration::from_millis(250)
                },
                Action::Delete { object: 0 },
                Action::Finished {
                    end: End::Complete,
                    duration: Duration::from_millis(250),
                    object: None,
                    failure: None
                },
            ]
        );
        assert!(m.is_finished());
    }

    #[test]
    fn delete_can_come_before_the_event() {
        let now = Instant::now();
        let mut p = plan(vec![ObjectPlan {
            delete: true,
            ..object("a", false)
        }]);
        p.delete_before_event = true;
        let mut m = Machine::new(p, now);
        drain(&mut m);
        m.attempt_done(now, 0, Ok(()));
        let actions = drain(&mut m);
        assert_eq!(actions[0], Action::Delete { object: 0 });
        assert!(matches!(actions[1], Action::ObjectDone { object: 0, .. }));
    }

    #[test]
    fn a_failure_is_retried_its_count_then_fails_the_transfer_and_keeps_the_source() {
        let now = Instant::now();
        let mut m = Machine::new(
            plan(vec![ObjectPlan {
                retry: Retry::Count(2),
                delete: true,
                ..object("a", false)
            }]),
            now,
        );
        let refused = Failure {
            sip_status: Some(486),
            ..Failure::default()
        };
        assert_eq!(
            drain(&mut m),
            vec![Action::Start {
                object: 0,
                attempt: 1
            }]
        );
        m.attempt_done(now, 0, Err(refused.clone()));
        assert_eq!(
            drain(&mut m),
            vec![Action::Start {
                object: 0,
                attempt: 2
            }]
        );
        m.attempt_done(now, 0, Err(refused.clone()));
        assert_eq!(
            drain(&mut m),
            vec![Action::Start {
                object: 0,
                attempt: 3
            }]
        );
        m.attempt_done(now, 0, Err(refused.clone()));
        let actions = drain(&mut m);
        assert_eq!(
            actions,
            vec![Action::Finished {
                end: End::Failed,
                duration: Duration::ZERO,
                object: Some(0),
                failure: Some(refused)
            }]
        );
    }

    #[test]
    fn retry_forever_keeps_trying_until_maxtime() {
        let now = Instant::now();
        let mut p = plan(vec![ObjectPlan {
            retry: Retry::Forever,
            ..object("a", false)
        }]);
        p.maxtime = Some(Duration::from_secs(10));
        let mut m = Machine::new(p, now);
        drain(&mut m);
        for attempt in 2..50 {
            m.attempt_done(now, 0, Err(Failure::local("refused")));
            assert_eq!(drain(&mut m), vec![Action::Start { object: 0, attempt }]);
        }
        assert_eq!(m.poll_timeout(), Some(now + Duration::from_secs(10)));
        m.handle_timeout(now + Duration::from_secs(10));
        let actions = drain(&mut m);
        assert_eq!(actions[0], Action::Abort { object: 0 });
        assert!(matches!(
            actions[1],
            Action::Finished {
                end: End::Maxtime,
                ..
            }
        ));
        // A late outcome of the aborted attempt changes nothing.
        m.attempt_done(now + Duration::from_secs(11), 0, Ok(()));
        assert!(drain(&mut m).is_empty());
    }

    #[test]
    fn iterate_sends_an_object_that_many_times_and_deletes_only_after_the_last() {
        let now = Instant::now();
        let mut m = Machine::new(
            plan(vec![ObjectPlan {
                iterate: 3,
                delete: true,
                ..object("a", false)
            }]),
            now,
        );
        assert_eq!(
            drain(&mut m),
            vec![Action::Start {
                object: 0,
                attempt: 1
            }]
        );
        m.attempt_done(now, 0, Ok(()));
        assert_eq!(
            drain(&mut m),
            vec![Action::Start {
                object: 0,
                attempt: 2
            }]
        );
        m.attempt_done(now, 0, Ok(()));
        assert_eq!(
            drain(&mut m),
            vec![Action::Start {
                object: 0,
                attempt: 3
            }]
        );
        m.attempt_done(now, 0, Ok(()));
        let actions = drain(&mut m);
        assert!(matches!(actions[0], Action::ObjectDone { .. }));
        assert_eq!(actions[1], Action::Delete { object: 0 });
    }

    #[test]
    fn transfer_iterate_repeats_the_list_and_deletes_in_the_last_pass_only() {
        let now = Instant::now();
        let mut p = plan(vec![ObjectPlan {
            delete: true,
            ..object("a", true)
        }]);
        p.iterate = 2;
        let mut m = Machine::new(p, now);
        drain(&mut m);
        m.attempt_done(now, 0, Ok(()));
        let first = drain(&mut m);
        assert!(matches!(first[0], Action::ObjectDone { .. }));
        assert_eq!(
            first[1],
            Action::Start {
                object: 0,
                attempt: 2
            }
        );
        m.attempt_done(now, 0, Ok(()));
        let second = drain(&mut m);
        assert!(matches!(second[0], Action::ObjectDone { .. }));
        assert_eq!(second[1], Action::Delete { object: 0 });
        assert!(matches!(
            second[2],
            Action::Finished {
                end: End::Complete,
                ..
            }
        ));
    }

    #[test]
    fn wait_false_overlaps_and_wait_true_serialises() {
        let now = Instant::now();
        let mut m = Machine::new(
            plan(vec![object("a", false), object("b", true), object("c", false)]),
            now,
        );
        // a does not wait: b starts beside it; b waits: c holds.
        assert_eq!(
            drain(&mut m),
            vec![
                Action::Start {
                    object: 0,
                    attempt: 1
                },
                Action::Start {
                    object: 1,
                    attempt: 1
                }
            ]
        );
        m.attempt_done(now, 0, Ok(()));
        assert!(matches!(
            drain(&mut m)[..],
            [Action::ObjectDone { object: 0, .. }]
        ));
        m.attempt_done(now, 1, Ok(()));
        let actions = drain(&mut m);
        assert!(matches!(actions[0], Action::ObjectDone { object: 1, .. }));
        assert_eq!(
            actions[1],
            Action::Start {
                object: 2,
                attempt: 1
            }
        );
        m.attempt_done(now, 2, Ok(()));
        let actions = drain(&mut m);
        assert!(matches!(
            actions[1],
            Action::Finished {
                end: End::Complete,
                ..
            }
        ));
    }

    #[test]
    fn terminate_aborts_what_runs_and_ends_terminated() {
        let now = Instant::now();
        let mut m = Machine::new(
            plan(vec![ObjectPlan {
                delete: true,
                ..object("a", false)
            }]),
            now,
        );
        drain(&mut m);
        m.terminate(now + Duration::from_millis(5));
        let actions = drain(&mut m);
        assert_eq!(actions[0], Action::Abort { object: 0 });
        assert!(matches!(
            actions[1],
            Action::Finished {
                end: End::Terminate,
                object: Some(0),
                ..
            }
        ));
        assert!(!actions.iter().any(|a| matches!(a, Action::Delete { .. })));
        m.terminate(now);
        assert!(drain(&mut m).is_empty());
    }

    #[test]
    fn delay_holds_the_start() {
        let now = Instant::now();
        let mut p = plan(vec![object("a", false)]);
        p.delay = Some(Duration::from_secs(2));
        let mut m = Machine::new(p, now);
        assert!(drain(&mut m).is_empty());
        assert_eq!(m.poll_timeout(), Some(now + Duration::from_secs(2)));
        m.handle_timeout(now + Duration::from_secs(1));
        assert!(drain(&mut m).is_empty());
        m.handle_timeout(now + Duration::from_secs(2));
        assert_eq!(
            drain(&mut m),
            vec![Action::Start {
                object: 0,
                attempt: 1
            }]
        );
    }
}
