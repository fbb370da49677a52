//! The ordered window of in-flight messages, in consumption order.
//!
//! Invariants: a message leaves the window only from its head, and only
//! once every record it caused is acknowledged; acknowledgements may come
//! in any order. So offsets are released in consumption order, hence in
//! order per partition, and a message is never counted done before the
//! ones consumed ahead of it. A message of a partition given up (revoked
//! before it finished) is forgotten: it still leaves in order, marked, and
//! its offset must not be stored (its next owner does it again).

use std::collections::VecDeque;

/// A message's place in the window, unique for the window's life.
pub type Seq = u64;

/// One consumed message and what it waits for.
#[derive(Debug)]
pub struct Entry<T> {
    pub partition: i32,
    pub offset: i64,
    /// Records not yet acknowledged.
    pending: usize,
    /// Bytes of the records it caused, counted against the window's bound.
    bytes: usize,
    /// Given up with its partition: leaves without storing its offset.
    pub forgotten: bool,
    pub item: T,
}

impl<T> Entry<T> {
    pub fn is_done(&self) -> bool {
        self.pending == 0
    }
}

#[derive(Debug)]
pub struct Window<T> {
    entries: VecDeque<Entry<T>>,
    /// The `Seq` of `entries[0]`.
    head: Seq,
    bytes: usize,
}

impl<T> Default for Window<T> {
    fn default() -> Self {
        Window {
            entries: VecDeque::new(),
            head: 0,
            bytes: 0,
        }
    }
}

impl<T> Window<T> {
    /// Adds a consumed message whose `pending` records (of `bytes` bytes)
    /// are on their way.
    pub fn push(
        &mut self,
        partition: i32,
        offset: i64,
        pending: usize,
        bytes: usize,
        item: T,
    ) -> Seq {
        self.entries.push_back(Entry {
            partition,
            offset,
            pending,
            bytes,
            forgotten: false,
            item,
        });
        self.bytes += bytes;
        self.head + self.entries.len() as Seq - 1
    }

    /// A window whose first message gets `head`: a new transaction's
    /// window carries on the numbering of the last, so a late answer for a
    /// message of an aborted batch finds nothing.
    pub fn starting_at(head: Seq) -> Window<T> {
        Window {
            entries: VecDeque::new(),
            head,
            bytes: 0,
        }
    }

    /// The `Seq` the next pushed message gets.
    pub fn next_seq(&self) -> Seq {
        self.head + self.entries.len() as Seq
    }

    /// Adds a consumed message handed to a lane: it waits for its lane's
    /// answer ([`Window::fill`]), and `bytes` (its input's) count meanwhile.
    pub fn reserve(&mut self, partition: i32, offset: i64, bytes: usize, item: T) -> Seq {
        self.push(partition, offset, 1, bytes, item)
    }

    /// The lane's answer for a reserved message: `item`, now waiting for
    /// `pending` records of `bytes`. False (and `item` unused) for a
    /// message forgotten or gone meanwhile.
    pub fn fill(&mut self, seq: Seq, pending: usize, bytes: usize, item: T) -> bool {
        let Some(e) = self.get_mut(seq) else {
            return false;
        };
        if e.forgotten || e.pending == 0 {
            return false;
        }
        let before = e.bytes;
        e.pending = e.pending - 1 + pending;
        e.bytes = bytes;
        e.item = item;
        self.bytes = self.bytes - before + bytes;
        true
    }

    pub fn get_mut(&mut self, seq: Seq) -> Option<&mut Entry<T>> {
        let index = usize::try_from(seq.checked_sub(self.head)?).ok()?;
        self.entries.get_mut(index)
    }

    /// One of the message's records is acknowledged. False for a message
    /// the window no longer holds or has forgotten (a late report).
    pub fn ack(&mut self, seq: Seq) -> bool {
        match self.get_mut(seq) {
            Some(e) if !e.forgotten && e.pending > 0 => {
                e.pending -= 1;
                true
            }
            _ => false,
        }
    }

    /// The message now waits for `more` records besides (a refused record
    /// replaced by a dead letter).
    pub fn expect_more(&mut self, seq: Seq, more: usize) {
        if let Some(e) = self.get_mut(seq) {
            e.pending += more;
        }
    }

    /// The head, once it is done (or forgotten).
    pub fn pop_done(&mut self) -> Option<Entry<T>> {
        if !self
            .entries
            .front()
            .is_some_and(|e| e.is_done() || e.forgotten)
        {
            return None;
        }
        let e = self.entries.pop_front()?;
        self.head += 1;
        self.bytes -= e.bytes;
        Some(e)
    }

    /// Gives up every message from `from` on (done or not) of the
    /// partitions `gone` names: they leave unstored. Returns how many.
    pub fn forget_from(&mut self, from: Seq, gone: impl Fn(i32) -> bool) -> usize {
        let skip = usize::try_from(from.saturating_sub(self.head)).unwrap_or(usize::MAX);
        let mut n = 0;
        for e in self.entries.iter_mut().skip(skip) {
            if !e.forgotten && gone(e.partition) {
                e.forgotten = true;
                n += 1;
            }
        }
        n
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Takes every message out, in order, done or not.
    pub fn drain(&mut self) -> impl Iterator<Item = Entry<T>> + '_ {
        self.head += self.entries.len() as Seq;
        self.bytes = 0;
        self.entries.drain(..)
    }

    /// Bytes of the records in flight.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Every message done: nothing waits for an acknowledgement.
    pub fn all_done(&self) -> bool {
        self.entries.iter().all(|e| e.is_done() || e.forgotten)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Entry<T>> {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(w: &mut Window<()>) -> Vec<(i32, i64, bool)> {
        std::iter::from_fn(|| w.pop_done())
            .map(|e| (e.partition, e.offset, e.forgotten))
            .collect()
    }

    #[test]
    fn acknowledgements_out_of_order_release_offsets_in_order() {
        let mut w = Window::default();
        let a = w.push(0, 10, 1, 5, ());
        let b = w.push(1, 3, 2, 5, ());
        let c = w.push(0, 11, 1, 5, ());
        assert_eq!(w.bytes(), 15);
        assert!(w.ack(c));
        assert!(w.ack(b));
        assert_eq!(offsets(&mut w), vec![], "the head is not done");
        assert!(w.ack(a));
        assert_eq!(
            offsets(&mut w),
            vec![(0, 10, false)],
            "b waits for its second record"
        );
        assert!(w.ack(b));
        assert_eq!(offsets(&mut w), vec![(1, 3, false), (0, 11, false)]);
        assert!(w.is_empty());
        assert_eq!(w.bytes(), 0);
        assert!(!w.ack(a), "a late report for a message gone");
    }

    #[test]
    fn a_message_with_nothing_to_send_is_done_at_once_but_waits_its_turn() {
        let mut w = Window::default();
        let a = w.push(0, 1, 1, 0, ());
        w.push(0, 2, 0, 0, ());
        assert_eq!(offsets(&mut w), vec![]);
        w.ack(a);
        assert_eq!(offsets(&mut w), vec![(0, 1, false), (0, 2, false)]);
    }

    #[test]
    fn forgotten_partitions_leave_in_order_unstored_and_ignore_late_reports() {
        let mut w = Window::default();
        let a = w.push(0, 1, 1, 0, ());
        let b = w.push(1, 1, 1, 0, ());
        let c = w.push(0, 2, 1, 0, ());
        let d = w.push(0, 3, 1, 0, ());
        assert!(w.ack(a));
        assert!(w.ack(c));
        assert_eq!(
            w.forget_from(b, |p| p == 0),
            2,
            "c and d, done or not; a is before b"
        );
        assert!(!w.ack(d), "a late report for a forgotten message");
        assert_eq!(offsets(&mut w), vec![(0, 1, false)]);
        assert!(!w.all_done());
        w.ack(b);
        assert!(w.all_done());
        assert_eq!(
            offsets(&mut w),
            vec![(1, 1, false), (0, 2, true), (0, 3, true)]
        );
    }

    #[test]
    fn a_reserved_message_waits_for_its_lane_then_its_records() {
        let mut w = Window::starting_at(7);
        let a = w.reserve(0, 1, 100, ());
        let b = w.reserve(0, 2, 50, ());
        assert_eq!((a, b), (7, 8));
        assert_eq!(w.bytes(), 150);
        assert!(w.fill(b, 0, 0, ()), "b's lane skipped it");
        assert_eq!(offsets(&mut w), vec![], "a's lane has not answered");
        assert!(w.fill(a, 2, 30, ()));
        assert_eq!(w.bytes(), 30);
        w.ack(a);
        assert_eq!(offsets(&mut w), vec![]);
        w.ack(a);
        assert_eq!(offsets(&mut w), vec![(0, 1, false), (0, 2, false)]);
        assert!(!w.fill(a, 1, 0, ()), "a late answer for a message gone");
        let c = w.reserve(1, 1, 0, ());
        w.forget_from(c, |p| p == 1);
        assert!(!w.fill(c, 1, 0, ()), "an answer for a forgotten message");
        assert_eq!(w.next_seq(), 10);
    }

    #[test]
    fn a_replacement_record_keeps_the_message_waiting() {
        let mut w = Window::default();
        let a = w.push(0, 1, 1, 0, ());
        w.expect_more(a, 1);
        w.ack(a);
        assert_eq!(offsets(&mut w), vec![]);
        w.ack(a);
        assert_eq!(offsets(&mut w), vec![(0, 1, false)]);
    }
}
