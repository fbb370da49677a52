//! Reading a topic as it is now, outside any pipeline: `weir dlq` and
//! `weir test --from-topic`.
//!
//! Invariants: a scan reads each partition from its start, from a time or
//! from where a group committed, up to the high watermark it found when it
//! opened (records written later are the next scan's), so it ends even on a
//! topic that a replay or a pipeline keeps writing to. It never joins a
//! group (partitions are assigned, not subscribed) and never commits: a
//! caller that keeps progress commits it itself. Records are read
//! `read_committed`, so an aborted transaction's records are never seen;
//! a partition whose last offsets are transaction markers ends at its
//! end-of-partition event instead of at the watermark. Records come as
//! bytes ([`Input`]), headers through [`crate::kafka::record::headers`],
//! so no name or value can make a scan panic.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, ClientContext, Message as _, Offset, TopicPartitionList};

use crate::config::Kafka;
use crate::delivery::records::Input;
use crate::kafka::proxy::consumer_config;

/// A scan's consumer.
pub type ScanConsumer = BaseConsumer<ScanContext>;

/// Logs client errors, but not the end of a partition: librdkafka reports
/// it on the main queue too, and a scan reads every partition to its end.
pub struct ScanContext {
    owner: String,
}

impl ClientContext for ScanContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if !matches!(error, KafkaError::Global(RDKafkaErrorCode::PartitionEOF)) {
            tracing::warn!(owner = %self.owner, "kafka: {error}: {reason}");
        }
    }
}

impl ConsumerContext for ScanContext {}

/// How long one metadata or offsets request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a scan waits for the next record of a partition it has not
/// finished before it gives up.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Where each partition's scan starts.
#[derive(Debug, Clone)]
pub enum Start {
    /// The oldest record still kept.
    Beginning,
    /// The first record whose timestamp is at or after this (ms since the
    /// epoch). Kafka's time index finds it: no earlier offset holds a later
    /// time, so nothing at or after the time is skipped.
    Time(i64),
}

/// A scan of one topic; see the module's invariants.
pub struct Scan {
    consumer: ScanConsumer,
    topic: String,
    /// Per partition still being read, the offset it ends before.
    ends: BTreeMap<i32, i64>,
    last_progress: Instant,
}

/// The consumer of a scan: `group` only names where offsets would be
/// committed (a replay's); no group is joined either way.
pub fn consumer(
    kafka: &Kafka,
    bootstrap: &str,
    group: Option<&str>,
    owner: &str,
) -> anyhow::Result<ScanConsumer> {
    let mut config: ClientConfig = consumer_config(kafka, bootstrap);
    config
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest");
    // librdkafka assigns partitions only to a consumer with a group.id
    // (`Unknown group` otherwise); assigning joins nothing.
    config.set("group.id", group.unwrap_or("weir-scan"));
    config
        .create_with_context(ScanContext {
            owner: owner.to_string(),
        })
        .with_context(|| format!("cannot create a consumer for {bootstrap}"))
}

impl Scan {
    /// Opens a scan of `topic` starting at `start`, except where `resume`
    /// names a partition's next offset (a replay's committed progress).
    pub fn open(
        consumer: ScanConsumer,
        topic: &str,
        start: &Start,
        resume: &BTreeMap<i32, i64>,
    ) -> anyhow::Result<Scan> {
        let metadata = consumer
            .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
            .with_context(|| format!("cannot read the metadata of topic {topic:?}"))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            anyhow::bail!("topic {topic:?} does not exist (or has no partitions)");
        }
        let mut from_time = BTreeMap::new();
        if let Start::Time(ms) = start {
            let mut wanted = TopicPartitionList::new();
            for p in &partitions {
                wanted.add_partition_offset(topic, *p, Offset::Offset(*ms))?;
            }
            let found = consumer
                .offsets_for_times(wanted, REQUEST_TIMEOUT)
                .with_context(|| format!("cannot look up offsets by time in {topic:?}"))?;
            for e in found.elements() {
                from_time.insert(e.partition(), e.offset());
            }
        }
        let mut assignment = TopicPartitionList::new();
        let mut ends = BTreeMap::new();
        for p in partitions {
            let (low, high) = consumer
                .fetch_watermarks(topic, p, REQUEST_TIMEOUT)
                .with_context(|| format!("cannot read the offsets of {topic}[{p}]"))?;
            let offset = match (resume.get(&p), from_time.get(&p)) {
                (Some(next), _) => Offset::Offset((*next).max(low)),
                // No record at or after the time.
                (None, Some(Offset::End)) => continue,
                (None, Some(o)) => *o,
                (None, None) => Offset::Beginning,
            };
            let first = match offset {
                Offset::Offset(o) => o,
                _ => low,
            };
            if first >= high {
                continue;
            }
            assignment.add_partition_offset(topic, p, offset)?;
            ends.insert(p, high);
        }
        if !ends.is_empty() {
            consumer.assign(&assignment)?;
        }
        Ok(Scan {
            consumer,
            topic: topic.to_string(),
            ends,
            last_progress: Instant::now(),
        })
    }

    pub fn consumer(&self) -> &ScanConsumer {
        &self.consumer
    }

    /// The next record, or `None` once every partition reached its end.
    pub fn next_record(&mut self) -> anyhow::Result<Option<Input>> {
        loop {
            if self.ends.is_empty() {
                return Ok(None);
            }
            match self.consumer.poll(Duration::from_millis(200)) {
                None => {
                    if self.last_progress.elapsed() > STALL_TIMEOUT {
                        anyhow::bail!(
                            "reading {}: no record for {STALL_TIMEOUT:?} from partitions {:?} before their end",
                            self.topic,
                            self.ends
                        );
                    }
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    self.ends.remove(&p);
                }
                Some(Err(e)) => {
                    return Err(e).with_context(|| format!("reading {}", self.topic));
                }
                Some(Ok(msg)) => {
                    self.last_progress = Instant::now();
                    let p = msg.partition();
                    let Some(&end) = self.ends.get(&p) else {
                        continue;
                    };
                    let offset = msg.offset();
                    if offset >= end {
                        self.ends.remove(&p);
                        continue;
                    }
                    if offset + 1 >= end {
                        self.ends.remove(&p);
                    }
                    return Ok(Some(Input::read(&msg)));
                }
            }
        }
    }
}
