//! The consuming side both loops share: one pipeline's consumer, what it
//! received, gaps in its offsets, pausing while the loop waits, and where
//! `weir run --drain` stops.
//!
//! Invariants: a failed consume is logged at once and then at most every
//! [`CONSUME_WARNING_EVERY`]; the loop waits [`CONSUME_BACKOFF`] before the
//! next (librdkafka reconnects by itself). While paused, a record that
//! still arrives (prefetched, or of a partition assigned during the pause,
//! which is then paused too) is held, in order, and handed out before
//! anything received later. Nothing is sought back: librdkafka resumes each
//! partition after the last record it handed over, so a held record is
//! neither skipped nor, as a seek that fails while the broker is away
//! would allow, lost. Held records of a partition revoked or rewound are
//! dropped: they come again.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::Message as _;
use rdkafka::consumer::Consumer as _;
use rdkafka::error::KafkaResult;
use rdkafka::message::BorrowedMessage;
use rdkafka::topic_partition_list::TopicPartitionList;

use crate::delivery::records::Input;
use crate::kafka::proxy::{RevokeHandoff, WeirConsumer};
use crate::ops::metrics::PipelineHandle;

/// The wait after a failed consume (an unreachable broker), and how often
/// a lasting failure is logged.
pub const CONSUME_BACKOFF: Duration = Duration::from_millis(100);
pub const CONSUME_WARNING_EVERY: Duration = Duration::from_secs(5);

/// Where the pipeline stops by itself: the last offset to process per
/// partition of its input (used by `weir run --drain`).
pub type StopAt = HashMap<i32, i64>;

pub struct Intake {
    pub consumer: Arc<WeirConsumer>,
    pub handoff: Arc<RevokeHandoff>,
    pipeline: String,
    input: String,
    bootstrap: String,
    failures: u32,
    last_warning: Instant,
    /// The last offset received per partition, for gaps.
    last: HashMap<i32, i64>,
    /// Messages handed to the loop per partition, logged at the end so an
    /// operator sees which share of the input this process handled. A held
    /// record dropped on revoke or rewind is not counted: it comes again.
    pub per_partition: BTreeMap<i32, u64>,
    paused: bool,
    /// Partitions paused by this pause (those assigned during it join
    /// when their first record arrives).
    paused_partitions: HashSet<i32>,
    /// Records that arrived while paused, in order.
    held: VecDeque<Input>,
}

impl Intake {
    /// Takes over `consumer`'s revocations (see [`RevokeHandoff`]).
    pub fn new(
        consumer: Arc<WeirConsumer>,
        pipeline: &str,
        input: &str,
        bootstrap: &str,
    ) -> Intake {
        let handoff = Arc::clone(consumer.context().handoff());
        handoff.defer(true);
        Intake {
            consumer,
            handoff,
            pipeline: pipeline.to_string(),
            input: input.to_string(),
            bootstrap: bootstrap.to_string(),
            failures: 0,
            last_warning: Instant::now(),
            last: HashMap::new(),
            per_partition: BTreeMap::new(),
            paused: false,
            paused_partitions: HashSet::new(),
            held: VecDeque::new(),
        }
    }

    /// What `recv` gave: the record, or none after a failure (logged; wait
    /// [`CONSUME_BACKOFF`]) or while paused (held for [`Intake::take_held`]).
    pub fn received(
        &mut self,
        r: KafkaResult<BorrowedMessage<'_>>,
        metrics: &PipelineHandle,
    ) -> Option<Input> {
        let msg = match r {
            Ok(m) => m,
            Err(e) => {
                self.failures += 1;
                if self.failures == 1 || self.last_warning.elapsed() >= CONSUME_WARNING_EVERY {
                    tracing::warn!(
                        pipeline = %self.pipeline,
                        bootstrap = %self.bootstrap,
                        "cannot consume {} ({e}); still trying ({} failed attempts)",
                        self.input,
                        self.failures
                    );
                    self.last_warning = Instant::now();
                }
                return None;
            }
        };
        if self.failures > 0 {
            tracing::info!(pipeline = %self.pipeline, "consuming again after {} failed attempts", self.failures);
            self.failures = 0;
        }
        let (partition, offset) = (msg.partition(), msg.offset());
        if self.paused && self.paused_partitions.insert(partition) {
            // Assigned during the pause: pause it too.
            self.pause_partition(partition);
        }
        if let Some(last) = self.last.insert(partition, offset)
            && offset > last + 1
        {
            // Compaction, transaction markers and aborted transactions
            // leave gaps: counted, not warned about.
            let skipped = u64::try_from(offset - last - 1).unwrap_or(0);
            metrics.skipped_offsets(skipped);
            tracing::debug!(pipeline = %self.pipeline, partition, "offsets {}..{offset} held nothing to consume", last + 1);
        }
        let input = Input::read(&msg);
        if self.paused || !self.held.is_empty() {
            self.held.push_back(input);
            return None;
        }
        *self.per_partition.entry(partition).or_default() += 1;
        Some(input)
    }

    /// The oldest record held during a pause, once the pause is over.
    pub fn take_held(&mut self) -> Option<Input> {
        if self.paused {
            return None;
        }
        let input = self.held.pop_front()?;
        *self.per_partition.entry(input.partition).or_default() += 1;
        Some(input)
    }

    /// The partition's next record is `offset` again (after an abort):
    /// what was held of it comes again too.
    pub fn rewound(&mut self, partition: i32) {
        self.last.remove(&partition);
        self.held.retain(|i| i.partition != partition);
    }

    /// The partitions `gone` names were revoked: what was held of them is
    /// their next owner's.
    pub fn revoked(&mut self, gone: impl Fn(i32) -> bool) {
        self.held.retain(|i| !gone(i.partition));
        self.last.retain(|p, _| !gone(*p));
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Pauses every assigned partition; `recv` keeps the group alive.
    pub fn pause(&mut self) {
        if self.paused {
            return;
        }
        match self.consumer.assignment() {
            Ok(tpl) => {
                self.paused_partitions = tpl
                    .elements()
                    .iter()
                    .filter(|e| e.topic() == self.input)
                    .map(|e| e.partition())
                    .collect();
                if let Err(e) = self.consumer.pause(&tpl) {
                    tracing::warn!(pipeline = %self.pipeline, "cannot pause the input: {e}");
                }
            }
            Err(e) => {
                tracing::warn!(pipeline = %self.pipeline, "cannot read the assignment to pause it: {e}")
            }
        }
        self.paused = true;
    }

    pub fn resume(&mut self) {
        if !self.paused {
            return;
        }
        self.paused = false;
        self.paused_partitions.clear();
        match self.consumer.assignment() {
            Ok(tpl) => {
                if let Err(e) = self.consumer.resume(&tpl) {
                    tracing::warn!(pipeline = %self.pipeline, "cannot resume the input: {e}");
                }
            }
            Err(e) => {
                tracing::warn!(pipeline = %self.pipeline, "cannot read the assignment to resume it: {e}")
            }
        }
    }

    fn pause_partition(&self, partition: i32) {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.input, partition);
        if let Err(e) = self.consumer.pause(&tpl) {
            tracing::warn!(pipeline = %self.pipeline, partition, "cannot pause a partition assigned during a pause: {e}");
        }
    }
}

/// Sleeps `d`; true if shutdown came first.
pub async fn sleep_or_shutdown(
    d: Duration,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => false,
        _ = shutdown.wait_for(|stop| *stop) => true,
    }
}

/// `--drain`'s bookkeeping: which partitions still have records to read,
/// and which still have records to finish.
#[derive(Debug, Default)]
pub struct Drain {
    stop_at: Option<StopAt>,
    /// Partitions whose last record is not read yet.
    unread: StopAt,
    /// Partitions whose last record is not finished yet.
    unfinished: StopAt,
}

impl Drain {
    pub fn new(stop_at: Option<StopAt>) -> Drain {
        let all = stop_at.clone().unwrap_or_default();
        Drain {
            stop_at,
            unread: all.clone(),
            unfinished: all,
        }
    }

    pub fn read(&mut self, partition: i32, offset: i64) {
        if self
            .unread
            .get(&partition)
            .is_some_and(|last| offset >= *last)
        {
            self.unread.remove(&partition);
        }
    }

    pub fn finished(&mut self, partition: i32, offset: i64) {
        if self
            .unfinished
            .get(&partition)
            .is_some_and(|last| offset >= *last)
        {
            self.unfinished.remove(&partition);
        }
    }

    /// The partition is read again from before its last record (an abort).
    pub fn rewound(&mut self, partition: i32) {
        if let Some(last) = self.unfinished.get(&partition) {
            self.unread.insert(partition, *last);
        }
    }

    /// Draining, and every last record read: consume no more.
    pub fn all_read(&self) -> bool {
        self.stop_at.is_some() && self.unread.is_empty()
    }

    /// Draining, and every last record finished: the run is over.
    pub fn all_finished(&self) -> bool {
        self.stop_at.is_some() && self.unfinished.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drain_ends_when_the_last_records_are_finished_not_read() {
        let mut d = Drain::new(Some(StopAt::from([(0, 5), (1, 2)])));
        d.read(0, 5);
        d.read(1, 2);
        assert!(d.all_read());
        assert!(!d.all_finished());
        d.finished(0, 5);
        d.rewound(1);
        assert!(!d.all_read(), "an aborted last record is read again");
        d.read(1, 2);
        d.finished(1, 2);
        assert!(d.all_finished());
    }

    #[test]
    fn without_a_drain_nothing_ends() {
        let d = Drain::new(None);
        assert!(!d.all_read() && !d.all_finished());
    }
}
