//! The failure policy (`on_failure`) and its breaker (`breaker`), as a
//! state machine: told how each call went, it says what comes next. It
//! neither sleeps nor logs; the step does both.
//!
//! Invariants: a failing message is retried `on_failure.retries` times with
//! doubling backoff (at most `max_backoff`) before it counts as failed; the
//! breaker remembers the last `breaker.window` messages (not calls) and
//! opens when more than `breaker.failures` of them failed; each pause in a
//! row doubles (at most `max_pause`); the first message through closes it.

use std::collections::VecDeque;
use std::time::Duration;

use crate::config::{Breaker, BreakerAction, FailureAction, OnFailure};

/// What to do after a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The outcome stands. `closed`: it closed the breaker.
    Pass { closed: bool },
    /// Call again with the same message after `after` (retry `attempt`).
    Retry { attempt: u32, after: Duration },
    /// The breaker opened: wait `after`, then call with the same message again.
    Pause { after: Duration, summary: String },
    /// The message failed: dead-letter it.
    DeadLetter,
    /// The message failed: store its offset, produce nothing.
    Skip,
    /// Stop the pipeline, this message's offset unstored.
    Stop(String),
}

#[derive(Debug)]
pub struct Policy {
    on_failure: OnFailure,
    breaker: Breaker,
    /// true for a message that failed (after its retries).
    recent: VecDeque<bool>,
    /// Consecutive pauses, to double the next one.
    trips: u32,
}

impl Policy {
    pub fn new(on_failure: &OnFailure, breaker: &Breaker) -> Policy {
        Policy {
            on_failure: on_failure.clone(),
            breaker: breaker.clone(),
            recent: VecDeque::with_capacity(breaker.window),
            trips: 0,
        }
    }

    /// After a call of the message: `failure` says why it failed (none: it
    /// went through), `attempt` is how many retries it had so far, `place`
    /// names it in a reason.
    pub fn judge(
        &mut self,
        failure: Option<&str>,
        attempt: u32,
        place: impl std::fmt::Display,
    ) -> Verdict {
        let Some(reason) = failure else {
            let closed = self.trips > 0;
            if closed {
                self.recent.clear();
                self.trips = 0;
            }
            self.remember(false);
            return Verdict::Pass { closed };
        };
        if attempt < self.on_failure.retries {
            let after = doubled(
                self.on_failure.backoff,
                attempt,
                self.on_failure.max_backoff,
            );
            return Verdict::Retry {
                attempt: attempt + 1,
                after,
            };
        }
        self.remember(true);
        let failed = self.recent.iter().filter(|f| **f).count();
        if failed > self.breaker.failures {
            let summary = format!(
                "breaker open: {failed} of the last {} messages failed (limit {}); the last, {place}: {reason}",
                self.recent.len(),
                self.breaker.failures
            );
            return match self.breaker.action {
                BreakerAction::Stop => Verdict::Stop(summary),
                BreakerAction::Pause => {
                    let after = doubled(self.breaker.pause, self.trips, self.breaker.max_pause);
                    self.trips = self.trips.saturating_add(1);
                    Verdict::Pause { after, summary }
                }
            };
        }
        match self.on_failure.then {
            FailureAction::DeadLetter => Verdict::DeadLetter,
            FailureAction::Skip => Verdict::Skip,
            FailureAction::Stop => Verdict::Stop(format!("{place}: {reason}")),
        }
    }

    fn remember(&mut self, failed: bool) {
        if self.breaker.window == 0 {
            return;
        }
        if self.recent.len() == self.breaker.window {
            self.recent.pop_front();
        }
        self.recent.push_back(failed);
    }
}

/// `first` doubled `times` times, at most `max`.
pub fn doubled(first: Duration, times: u32, max: Duration) -> Duration {
    first
        .saturating_mul(1u32.checked_shl(times).unwrap_or(u32::MAX))
        .min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(
        retries: u32,
        then: FailureAction,
        failures: usize,
        window: usize,
        action: BreakerAction,
    ) -> Policy {
        let on_failure = OnFailure {
            retries,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(250),
            then,
        };
        let breaker = Breaker {
            failures,
            window,
            action,
            pause: Duration::from_secs(1),
            max_pause: Duration::from_secs(3),
        };
        Policy::new(&on_failure, &breaker)
    }

    #[test]
    fn retries_double_their_backoff_up_to_the_cap_then_the_action_applies() {
        let mut p = policy(3, FailureAction::DeadLetter, 10, 10, BreakerAction::Stop);
        let retries: Vec<Verdict> = (0..3).map(|a| p.judge(Some("trap"), a, "t[0]@1")).collect();
        let ms = |m| Duration::from_millis(m);
        assert_eq!(
            retries,
            vec![
                Verdict::Retry {
                    attempt: 1,
                    after: ms(100)
                },
                Verdict::Retry {
                    attempt: 2,
                    after: ms(200)
                },
                Verdict::Retry {
                    attempt: 3,
                    after: ms(250)
                },
            ]
        );
        assert_eq!(p.judge(Some("trap"), 3, "t[0]@1"), Verdict::DeadLetter);
        assert_eq!(p.judge(None, 0, "t[0]@2"), Verdict::Pass { closed: false });
    }

    #[test]
    fn skip_and_stop_name_the_message() {
        let mut p = policy(0, FailureAction::Skip, 10, 10, BreakerAction::Stop);
        assert_eq!(p.judge(Some("x"), 0, "t[0]@1"), Verdict::Skip);
        let mut p = policy(0, FailureAction::Stop, 10, 10, BreakerAction::Stop);
        assert_eq!(
            p.judge(Some("failed: x"), 0, "t[0]@1"),
            Verdict::Stop("t[0]@1: failed: x".into())
        );
    }

    #[test]
    fn the_breaker_opens_past_its_limit_pauses_doubling_and_closes_on_a_pass() {
        let mut p = policy(0, FailureAction::DeadLetter, 2, 4, BreakerAction::Pause);
        assert_eq!(p.judge(Some("x"), 0, "a"), Verdict::DeadLetter);
        assert_eq!(p.judge(None, 0, "b"), Verdict::Pass { closed: false });
        assert_eq!(p.judge(Some("x"), 0, "c"), Verdict::DeadLetter);
        // Each pause ends in another call of the same message: a failure
        // that counts in the window again.
        let pauses: Vec<(Duration, String)> = (0..3)
            .map(|_| match p.judge(Some("x"), 0, "d") {
                Verdict::Pause { after, summary } => (after, summary),
                other => panic!("{other:?}"),
            })
            .collect();
        let first = "breaker open: 3 of the last 4 messages failed (limit 2); the last, d: x";
        assert_eq!(pauses[0].1, first);
        assert!(
            pauses[2].1.starts_with("breaker open: 4 of the last 4"),
            "{}",
            pauses[2].1
        );
        let pauses: Vec<Duration> = pauses.into_iter().map(|(d, _)| d).collect();
        assert_eq!(pauses, [1, 2, 3].map(Duration::from_secs));
        assert_eq!(p.judge(None, 0, "d"), Verdict::Pass { closed: true });
        assert_eq!(
            p.judge(Some("x"), 0, "e"),
            Verdict::DeadLetter,
            "the window starts afresh"
        );
    }

    #[test]
    fn a_stopping_breaker_stops() {
        let mut p = policy(0, FailureAction::DeadLetter, 0, 3, BreakerAction::Stop);
        assert!(
            matches!(p.judge(Some("x"), 0, "a"), Verdict::Stop(s) if s.contains("breaker open"))
        );
    }

    #[test]
    fn doubling_saturates() {
        let max = Duration::from_secs(60);
        assert_eq!(doubled(Duration::from_secs(1), 200, max), max);
        assert_eq!(doubled(Duration::MAX, 3, Duration::MAX), Duration::MAX);
    }
}
