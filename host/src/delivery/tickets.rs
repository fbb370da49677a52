//! Which record a delivery report is about: each record a loop sends gets
//! a ticket, which the producer hands back with the broker's answer.
//!
//! Invariants: tickets are issued in increasing order and never reused, so
//! a report for a record the loop no longer waits for (one of an aborted
//! transaction, cleared) finds nothing; each ticket is redeemed at most
//! once. Reports come back roughly in the order records were sent, so the
//! tickets waiting are a queue with gaps, and a slot costs no allocation
//! once the queue has grown to the window's size.

use std::collections::VecDeque;

use crate::delivery::window::Seq;

/// A record: its message's place in the window, and its index among the
/// message's records.
pub type Sent = (Seq, usize);

#[derive(Debug, Default)]
pub struct Tickets {
    /// The ticket of `slots[0]`.
    first: usize,
    /// `None` where the report already came.
    slots: VecDeque<Option<Sent>>,
    outstanding: usize,
}

impl Tickets {
    /// A ticket for record `idx` of message `seq`.
    pub fn issue(&mut self, seq: Seq, idx: usize) -> usize {
        self.slots.push_back(Some((seq, idx)));
        self.outstanding += 1;
        self.first + self.slots.len() - 1
    }

    /// The record `ticket` was issued for, if it still waits for its report.
    pub fn redeem(&mut self, ticket: usize) -> Option<Sent> {
        let i = ticket.checked_sub(self.first)?;
        let sent = self.slots.get_mut(i)?.take()?;
        self.outstanding -= 1;
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.first += 1;
        }
        Some(sent)
    }

    /// Waits for no report any more: what comes for the tickets issued so
    /// far finds nothing.
    pub fn clear(&mut self) {
        self.first += self.slots.len();
        self.slots.clear();
        self.outstanding = 0;
    }

    /// Records whose report has not come.
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_in_any_order_find_their_record_once() {
        let mut t = Tickets::default();
        let a = t.issue(0, 0);
        let b = t.issue(0, 1);
        let c = t.issue(1, 0);
        assert_eq!(t.outstanding(), 3);
        assert_eq!(t.redeem(b), Some((0, 1)));
        assert_eq!(t.redeem(b), None);
        assert_eq!(t.redeem(c), Some((1, 0)));
        assert_eq!(t.outstanding(), 1);
        assert_eq!(t.redeem(a), Some((0, 0)));
        assert_eq!(t.outstanding(), 0);
        assert!(t.slots.is_empty(), "redeemed slots are let go");
        let d = t.issue(2, 0);
        assert!(d > c, "tickets are never reused");
        assert_eq!(t.redeem(d), Some((2, 0)));
    }

    #[test]
    fn a_cleared_ticket_finds_nothing() {
        let mut t = Tickets::default();
        let a = t.issue(5, 0);
        let b = t.issue(6, 0);
        t.clear();
        assert_eq!(t.outstanding(), 0);
        let c = t.issue(7, 0);
        assert_eq!(t.redeem(a), None);
        assert_eq!(t.redeem(b), None);
        assert_eq!(t.redeem(c + 1), None, "a ticket not issued yet");
        assert_eq!(t.redeem(c), Some((7, 0)));
    }
}
