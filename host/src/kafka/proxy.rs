//! Lazy connection proxies, one per entity, as in weir's Python origin: a
//! proxy holds the settings, connects on first use, keeps the connection
//! for later uses and drops it on [`disconnect`](ProducerProxy::disconnect).
//!
//! Invariants: at most one live client per proxy; `connect` after
//! `disconnect` builds a new one; a consumer proxy's `disconnect` commits
//! the offsets stored so far before it lets go, a producer proxy's flushes.
//!
//! Commit on revoke: a consumer's [`RevokeHandoff`], once its pipeline turns
//! it on, keeps a revocation from taking effect inside the poll: rdkafka
//! calls the rebalance callback from inside `recv()`, on the pipeline's own
//! task, where the in-flight window cannot make progress. The callback
//! parks the revoked partitions and wakes the pipeline, which finishes what
//! is in flight, commits synchronously and only then unassigns (librdkafka
//! holds the group's rebalance until it does).
//!
//! A pipeline's own producer is no proxy: [`pipeline_producer`] connects at
//! once and hands its delivery reports to the pipeline's loop as
//! [`Report`]s on a channel, a ticket each, instead of a future per record.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, RebalanceProtocol,
    StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::producer::{
    DeliveryResult, FutureProducer, Producer as _, ProducerContext, ThreadedProducer,
};
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, Offset};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::config::Kafka;

/// The producers' `message.max.bytes` unless `[kafka.properties]` sets it.
pub const PRODUCER_MESSAGE_MAX_BYTES: &str = "67108864";

/// How long `disconnect` (or a pipeline's final flush) waits for queued
/// messages.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// Logs rebalances, commits and client errors, tagged with the owner's
/// name; an error repeated within [`REPEAT_QUIET`] is logged once.
#[derive(Default)]
pub struct LoggingContext {
    pub owner: String,
    last_error: Mutex<Option<(String, Instant)>>,
    handoff: Arc<RevokeHandoff>,
}

/// Revoked partitions waiting for their pipeline to finish with them.
#[derive(Default)]
pub struct RevokeHandoff {
    /// Off: a revocation unassigns at once, as rdkafka does by default.
    defer: AtomicBool,
    pending: Mutex<Option<TopicPartitionList>>,
    wake: tokio::sync::Notify,
}

impl RevokeHandoff {
    /// Parks revocations for [`RevokeHandoff::take`] from now on (`true`),
    /// or lets them unassign at once (`false`, before the consumer closes:
    /// its close serves the last revocation itself).
    pub fn defer(&self, on: bool) {
        self.defer.store(on, Ordering::SeqCst);
    }

    /// The parked revocation, if any; the taker must unassign it
    /// ([`finish_revoke`]) once it has committed.
    pub fn take(&self) -> Option<TopicPartitionList> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// A revocation is parked and not yet taken.
    pub fn is_parked(&self) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Resolves when a revocation was parked since the last call.
    pub async fn parked(&self) {
        self.wake.notified().await
    }
}

/// Lets revoked partitions go, the way rdkafka's default rebalance does.
pub fn finish_revoke<C: rdkafka::consumer::Consumer<LoggingContext>>(
    consumer: &C,
    revoked: &TopicPartitionList,
) -> KafkaResult<()> {
    match consumer.rebalance_protocol() {
        RebalanceProtocol::Cooperative => consumer.incremental_unassign(revoked),
        _ => consumer.unassign(),
    }
}

impl LoggingContext {
    pub fn new(owner: &str) -> Self {
        LoggingContext {
            owner: owner.to_string(),
            last_error: Mutex::new(None),
            handoff: Arc::default(),
        }
    }

    /// Where this consumer parks revocations for its pipeline.
    pub fn handoff(&self) -> &Arc<RevokeHandoff> {
        &self.handoff
    }
}

/// How long an identical client error stays quiet.
const REPEAT_QUIET: Duration = Duration::from_secs(10);

impl ClientContext for LoggingContext {
    /// Consumers report every `statistics.interval.ms` while metrics are
    /// served: consumer lag and group state for `/metrics` and `/health`.
    fn stats(&self, statistics: rdkafka::Statistics) {
        crate::ops::metrics::registry().statistics(&self.owner, &statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let text = format!("{error}: {reason}");
        let mut last = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((previous, at)) = last.as_ref()
            && *previous == text
            && at.elapsed() < REPEAT_QUIET
        {
            return;
        }
        tracing::warn!(pipeline = %self.owner, "kafka: {text}");
        *last = Some((text, Instant::now()));
    }
}

/// For a producer used only for metadata (topic set-up's probe): polling it
/// serves the main queue, so error events reach [`LoggingContext::error`].
impl rdkafka::producer::ProducerContext for LoggingContext {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &rdkafka::producer::DeliveryResult<'_>, _: ()) {}
}

impl ConsumerContext for LoggingContext {
    fn rebalance(
        &self,
        base: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let revoke = err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS;
        if !(revoke && self.handoff.defer.load(Ordering::SeqCst)) {
            return default_rebalance(self, base, err, tpl);
        }
        tracing::info!(
            pipeline = %self.owner,
            "rebalance: revoking {}: finishing what is in flight, then committing",
            describe_tpl(tpl)
        );
        *self
            .handoff
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(tpl.clone());
        self.handoff.wake.notify_one();
    }

    fn pre_rebalance(&self, _: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        tracing::info!(pipeline = %self.owner, "rebalance: {}", describe(rebalance));
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => {
                tracing::debug!(pipeline = %self.owner, "committed {}", describe_tpl(offsets))
            }
            Err(e) => tracing::warn!(pipeline = %self.owner, "commit failed: {e}"),
        }
    }
}

/// rdkafka's own rebalance (log, then assign or unassign), for everything
/// the handoff does not park.
fn default_rebalance(
    cx: &LoggingContext,
    base: &BaseConsumer<LoggingContext>,
    err: RDKafkaRespErr,
    tpl: &mut TopicPartitionList,
) {
    let cooperative = matches!(base.rebalance_protocol(), RebalanceProtocol::Cooperative);
    let (rebalance, result) = match err {
        RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
            let result = if cooperative {
                base.incremental_assign(tpl)
            } else {
                base.assign(tpl)
            };
            (Rebalance::Assign(tpl), result)
        }
        RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
            let result = if cooperative {
                base.incremental_unassign(tpl)
            } else {
                base.unassign()
            };
            (Rebalance::Revoke(tpl), result)
        }
        other => {
            let code: rdkafka::types::RDKafkaErrorCode = other.into();
            (
                Rebalance::Error(KafkaError::Rebalance(code)),
                base.unassign(),
            )
        }
    };
    cx.pre_rebalance(base, &rebalance);
    if let Err(e) = result {
        tracing::warn!(pipeline = %cx.owner, "rebalance: {} failed: {e}", describe(&rebalance));
    }
}

fn describe(r: &Rebalance<'_>) -> String {
    match r {
        Rebalance::Assign(tpl) => format!("assigned {}", describe_tpl(tpl)),
        Rebalance::Revoke(tpl) => format!("revoked {}", describe_tpl(tpl)),
        Rebalance::Error(e) => format!("error {e}"),
    }
}

/// `orders[0]@5, orders[1], orders[2]@beginning`: a partition without an
/// offset (an assignment before its first fetch) shows none.
fn describe_tpl(tpl: &TopicPartitionList) -> String {
    let elements = tpl.elements();
    if elements.is_empty() {
        return "nothing".into();
    }
    elements
        .iter()
        .map(|e| {
            let place = format!("{}[{}]", e.topic(), e.partition());
            match e.offset() {
                Offset::Offset(n) => format!("{place}@{n}"),
                Offset::Invalid => place,
                Offset::Beginning => format!("{place}@beginning"),
                Offset::End => format!("{place}@end"),
                Offset::Stored => format!("{place}@stored"),
                Offset::OffsetTail(n) => format!("{place}@end-{n}"),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The consumer type every weir consumer is.
pub type WeirConsumer = StreamConsumer<LoggingContext>;

/// The producer type every weir producer is.
pub type WeirProducer = FutureProducer<LoggingContext>;

/// Settings every client shares: brokers, then `[kafka.properties]`. What
/// an admin client gets; a consumer takes [`consumer_config`], a producer
/// [`producer_config`].
pub fn base_config(kafka: &Kafka, bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    for (k, v) in &kafka.properties {
        c.set(k, v);
    }
    c
}

/// A consumer's settings: [`base_config`], then `[kafka.consumer]`, which
/// wins; the producers never see it.
pub fn consumer_config(kafka: &Kafka, bootstrap: &str) -> ClientConfig {
    let mut c = base_config(kafka, bootstrap);
    for (k, v) in &kafka.consumer {
        c.set(k, v);
    }
    c
}

/// A producer's settings: [`base_config`], then `[kafka.producer]`, which
/// wins; the consumers never see it.
pub fn producer_config(kafka: &Kafka, bootstrap: &str) -> ClientConfig {
    let mut c = base_config(kafka, bootstrap);
    for (k, v) in &kafka.producer {
        c.set(k, v);
    }
    c
}

fn set_default(c: &mut ClientConfig, key: &str, value: &str) {
    if c.get(key).is_none() {
        c.set(key, value);
    }
}

/// The broker's answer for one record a pipeline sent: the ticket it was
/// sent with, and whether the broker took it.
#[derive(Debug)]
pub struct Report {
    pub ticket: usize,
    pub result: Result<(), KafkaError>,
}

/// A pipeline producer's context: logs as [`LoggingContext`] does, and
/// hands each delivery report to the pipeline's loop.
pub struct ReportingContext {
    logging: LoggingContext,
    reports: UnboundedSender<Report>,
}

impl ClientContext for ReportingContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        self.logging.stats(statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.logging.error(error, reason);
    }
}

impl ProducerContext for ReportingContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, ticket: usize) {
        let result = match result {
            Ok(_) => Ok(()),
            Err((e, _)) => Err(e.clone()),
        };
        // Refused only once the loop is gone, when nothing waits for it.
        let _ = self.reports.send(Report { ticket, result });
    }
}

/// The producer a pipeline's delivery loop sends with, one per pipeline.
pub type PipelineProducer = ThreadedProducer<ReportingContext>;

/// A pipeline's producer, connected now, with the same defaults as a
/// [`ProducerProxy`]'s, and the delivery reports of what it sends.
pub fn pipeline_producer(
    mut config: ClientConfig,
    owner: &str,
) -> KafkaResult<(PipelineProducer, UnboundedReceiver<Report>)> {
    producer_defaults(&mut config);
    let (reports, received) = unbounded_channel();
    let producer = config.create_with_context(ReportingContext {
        logging: LoggingContext::new(owner),
        reports,
    })?;
    Ok((producer, received))
}

/// acks=all and the broker's size limit, unless the config says otherwise.
fn producer_defaults(config: &mut ClientConfig) {
    set_default(config, "acks", "all");
    // librdkafka refuses records over 1,000,000 bytes by itself; the
    // broker's limit (the topic's `max.message.bytes`) is the one that
    // counts, so a record any input holds, or its dead-letter copy, is
    // judged by the broker. Under the broker's 100 MiB request limit.
    set_default(config, "message.max.bytes", PRODUCER_MESSAGE_MAX_BYTES);
}

/// A producer that connects on first use.
pub struct ProducerProxy {
    config: ClientConfig,
    owner: String,
    producer: Mutex<Option<WeirProducer>>,
}

impl ProducerProxy {
    /// `config` as from [`producer_config`]; acks default to all.
    pub fn new(config: ClientConfig) -> Self {
        ProducerProxy::named(config, "weir")
    }

    /// As [`ProducerProxy::new`]; `owner` tags its log lines.
    pub fn named(mut config: ClientConfig, owner: &str) -> Self {
        producer_defaults(&mut config);
        ProducerProxy {
            config,
            owner: owner.to_string(),
            producer: Mutex::new(None),
        }
    }

    /// The producer, created on the first call and kept.
    pub fn connect(&self) -> KafkaResult<WeirProducer> {
        let mut slot = self.producer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = slot.as_ref() {
            return Ok(p.clone());
        }
        let producer: WeirProducer = self
            .config
            .create_with_context(LoggingContext::new(&self.owner))?;
        *slot = Some(producer.clone());
        Ok(producer)
    }

    pub fn is_connected(&self) -> bool {
        self.producer.lock().map(|s| s.is_some()).unwrap_or(false)
    }

    /// Flushes what is queued and drops the connection.
    pub fn disconnect(&self) -> KafkaResult<()> {
        let taken = self
            .producer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match taken {
            Some(p) => p.flush(FLUSH_TIMEOUT),
            None => Ok(()),
        }
    }
}

/// A consumer in a group, subscribed on first use.
pub struct ConsumerProxy {
    config: ClientConfig,
    topics: Vec<String>,
    owner: String,
    consumer: Mutex<Option<Arc<WeirConsumer>>>,
}

impl ConsumerProxy {
    /// `config` as from [`consumer_config`], with at-least-once defaults:
    /// offsets are stored by weir after delivery and committed in the
    /// background and on disconnect.
    pub fn new(mut config: ClientConfig, group: &str, topics: Vec<String>, owner: &str) -> Self {
        config.set("group.id", group);
        config.set("enable.auto.offset.store", "false");
        set_default(&mut config, "enable.auto.commit", "true");
        set_default(&mut config, "auto.offset.reset", "earliest");
        // Stored offsets reach the broker within a second: fewer repeats after a crash.
        set_default(&mut config, "auto.commit.interval.ms", "1000");
        if crate::ops::metrics::registry().is_serving() {
            set_default(
                &mut config,
                "statistics.interval.ms",
                crate::ops::metrics::STATISTICS_INTERVAL_MS,
            );
        }
        ConsumerProxy {
            config,
            topics,
            owner: owner.to_string(),
            consumer: Mutex::new(None),
        }
    }

    /// The subscribed consumer, created on the first call and kept.
    pub fn connect(&self) -> KafkaResult<Arc<WeirConsumer>> {
        let mut slot = self.consumer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = slot.as_ref() {
            return Ok(Arc::clone(c));
        }
        let consumer: WeirConsumer = self
            .config
            .create_with_context(LoggingContext::new(&self.owner))?;
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        let consumer = Arc::new(consumer);
        *slot = Some(Arc::clone(&consumer));
        Ok(consumer)
    }

    pub fn is_connected(&self) -> bool {
        self.consumer.lock().map(|s| s.is_some()).unwrap_or(false)
    }

    /// Commits the stored offsets synchronously, leaves the group and drops
    /// the connection.
    pub fn disconnect(&self) -> KafkaResult<()> {
        let taken = self
            .consumer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(consumer) = taken else { return Ok(()) };
        let committed = match consumer.commit_consumer_state(CommitMode::Sync) {
            // Nothing stored since the last commit is not a failure.
            Err(rdkafka::error::KafkaError::ConsumerCommit(
                rdkafka::types::RDKafkaErrorCode::NoOffset,
            )) => Ok(()),
            other => other,
        };
        consumer.unsubscribe();
        committed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_show_their_offset_as_a_number_or_a_word() {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition("orders", 0);
        for (partition, offset) in [
            (1, Offset::Offset(5)),
            (2, Offset::Beginning),
            (3, Offset::End),
            (4, Offset::Stored),
            (5, Offset::OffsetTail(3)),
        ] {
            tpl.add_partition_offset("orders", partition, offset)
                .unwrap();
        }
        assert_eq!(
            describe_tpl(&tpl),
            "orders[0], orders[1]@5, orders[2]@beginning, orders[3]@end, orders[4]@stored, orders[5]@end-3"
        );
        assert_eq!(describe_tpl(&TopicPartitionList::new()), "nothing");
    }

    #[test]
    fn each_side_gets_its_own_table_after_the_shared_one() {
        let table = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let kafka = Kafka {
            brokers: "127.0.0.1:9092".into(),
            properties: table(&[("client.id", "weir"), ("socket.timeout.ms", "10000")]),
            consumer: table(&[("fetch.wait.max.ms", "50"), ("client.id", "weir-in")]),
            producer: table(&[("linger.ms", "20")]),
        };
        let consumer = consumer_config(&kafka, "b:1");
        let producer = producer_config(&kafka, "b:1");
        for c in [&consumer, &producer] {
            assert_eq!(c.get("bootstrap.servers"), Some("b:1"));
            assert_eq!(c.get("socket.timeout.ms"), Some("10000"));
        }
        assert_eq!(consumer.get("fetch.wait.max.ms"), Some("50"));
        assert_eq!(consumer.get("client.id"), Some("weir-in"), "the side wins");
        assert_eq!(consumer.get("linger.ms"), None);
        assert_eq!(producer.get("linger.ms"), Some("20"));
        assert_eq!(producer.get("client.id"), Some("weir"));
        assert_eq!(producer.get("fetch.wait.max.ms"), None);
        let base = base_config(&kafka, "b:1");
        assert_eq!(base.get("fetch.wait.max.ms"), None);
        assert_eq!(base.get("linger.ms"), None);
    }
}
