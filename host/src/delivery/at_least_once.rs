//! The pipeline runner: consume one message, hand it to the plugin, produce
//! what it accepts, dead-letter what it rejects, store the offset.
//!
//! At-least-once: a message's offset is stored only once every record it
//! caused (outputs, or its dead-letter copy) is acknowledged by the broker.
//! Messages wait in one FIFO window of at most `max_in_flight`; only its head
//! may store an offset, so offsets are stored in consumption order, hence in
//! order per partition. A record the broker refuses is sent again (with
//! backoff) until it is acknowledged or the process ends uncommitted.
//! Stored offsets are committed in the background by librdkafka and
//! synchronously on shutdown.
//!
//! Commit on revoke: when a rebalance takes partitions away, the consumer's
//! [`RevokeHandoff`](crate::kafka::proxy::RevokeHandoff) parks the revocation; the loop then consumes nothing
//! more, settles the whole window (storing each offset in order), commits
//! synchronously and only then unassigns, so the partitions' next owner
//! starts exactly after the last message this one finished.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::Message as _;
use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers as _};
use rdkafka::producer::DeliveryFuture;
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;

use crate::config::{self, Breaker, BreakerAction, FailureAction, Kafka, OnFailure, Pipeline};
use crate::kafka::proxy::{
    ConsumerProxy, ProducerProxy, WeirConsumer, WeirProducer, base_config, finish_revoke,
    future_record,
};
use crate::plugin::{Abort, Header, Instance, Message, Outcome};

/// The wait after a failed consume (an unreachable broker), and how often
/// a lasting failure is logged.
pub(crate) const CONSUME_BACKOFF: Duration = Duration::from_millis(100);
pub(crate) const CONSUME_WARNING_EVERY: Duration = Duration::from_secs(5);

/// How long to wait before sending a refused record again.
const RESEND_BACKOFF: Duration = Duration::from_millis(500);

pub use crate::ops::metrics::Stats;

/// A record to produce, owned so it can be sent again.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    topic: String,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    timestamp: Option<i64>,
}

impl Record {
    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }

    pub(crate) fn send(
        &self,
        producer: &WeirProducer,
    ) -> Result<DeliveryFuture, rdkafka::error::KafkaError> {
        let mut record = future_record(
            &self.topic,
            self.key.as_deref(),
            self.value.as_deref(),
            &self.headers,
        );
        record.timestamp = self.timestamp;
        producer.send_result(record).map_err(|(e, _)| e)
    }
}

/// One consumed message whose records await acknowledgement.
struct InFlight {
    partition: i32,
    offset: i64,
    records: Vec<Record>,
    deliveries: Vec<Delivery>,
}

/// Where one record stands. `settle` may be dropped at any await (the
/// select loop polls it beside `recv`), so the state lives here, not in it.
enum Delivery {
    Waiting(DeliveryFuture),
    Resend,
    Done,
}

impl InFlight {
    /// Returns once every record is acknowledged, sending refused ones again.
    async fn settle(&mut self, producer: &WeirProducer, pipeline: &str) {
        for (record, delivery) in self.records.iter().zip(self.deliveries.iter_mut()) {
            loop {
                let outcome = match delivery {
                    Delivery::Done => break,
                    Delivery::Resend => {
                        *delivery = Delivery::Waiting(send_until_queued(record, producer).await);
                        continue;
                    }
                    Delivery::Waiting(fut) => fut.await,
                };
                if let Ok(Ok(_)) = outcome {
                    *delivery = Delivery::Done;
                    break;
                }
                *delivery = Delivery::Resend;
                match outcome {
                    Ok(Err((e, _))) => tracing::warn!(
                        pipeline,
                        topic = %record.topic,
                        source.partition = self.partition,
                        source.offset = self.offset,
                        "the broker refused a record ({e}); sending it again"
                    ),
                    _ => tracing::warn!(pipeline, "a delivery report was lost; sending again"),
                }
                tokio::time::sleep(RESEND_BACKOFF).await;
            }
        }
    }
}

/// Enqueues a record, waiting while the producer's local queue is full;
/// any other refusal is returned (a transactional producer in an error
/// state refuses every record until the transaction is aborted).
pub(crate) async fn enqueue(
    record: &Record,
    producer: &WeirProducer,
) -> Result<DeliveryFuture, KafkaError> {
    loop {
        match record.send(producer) {
            Ok(fut) => return Ok(fut),
            Err(KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull)) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Enqueues a record, retrying a refusal too, with a warning every
/// [`CONSUME_WARNING_EVERY`] so a record that keeps being refused shows.
pub(crate) async fn send_until_queued(record: &Record, producer: &WeirProducer) -> DeliveryFuture {
    let mut warned: Option<std::time::Instant> = None;
    loop {
        match enqueue(record, producer).await {
            Ok(fut) => return fut,
            Err(e) => {
                if warned.is_none_or(|at| at.elapsed() >= CONSUME_WARNING_EVERY) {
                    tracing::warn!(topic = %record.topic, "the producer refuses a record ({e}); retrying");
                    warned = Some(std::time::Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Where the pipeline stops by itself: the last offset to process per
/// partition of its input (used by `weir run --drain`).
pub type StopAt = HashMap<i32, i64>;

/// Runs one pipeline until `shutdown` turns true (or `stop_at` is reached),
/// then finishes what is in flight, commits and disconnects.
pub async fn run(
    spec: Pipeline,
    kafka: Kafka,
    bootstrap: String,
    mut instance: Instance,
    mut shutdown: watch::Receiver<bool>,
    stop_at: Option<StopAt>,
    mut swaps: Option<UnboundedReceiver<Instance>>,
) -> anyhow::Result<Stats> {
    if spec.delivery == config::Delivery::ExactlyOnce {
        return crate::delivery::exactly_once::run(
            spec, kafka, bootstrap, instance, shutdown, stop_at, swaps,
        )
        .await;
    }
    let name = spec.name.clone();
    let plugin = Arc::clone(instance.plugin());

    let base = base_config(&kafka, &bootstrap);
    let consumer_proxy =
        ConsumerProxy::new(base.clone(), &spec.group, vec![spec.input.clone()], &name);
    let producer_proxy = ProducerProxy::named(base, &name);
    let consumer = consumer_proxy
        .connect()
        .with_context(|| format!("pipeline {name:?}: cannot create the consumer"))?;
    let producer = producer_proxy
        .connect()
        .with_context(|| format!("pipeline {name:?}: cannot create the producer"))?;
    tracing::info!(
        pipeline = %name,
        input = %spec.input,
        group = %spec.group,
        plugin = %plugin.name,
        world = %plugin.world(),
        "pipeline started"
    );

    let mut stats = Stats::default();
    let mut window: VecDeque<InFlight> = VecDeque::new();
    let drain = stop_at.is_some();
    let mut remaining = stop_at.unwrap_or_default();
    let mut stopping = *shutdown.borrow();
    let mut policy = Policy::new(&spec);
    let mut policy_stop = None;
    let mut consume_errors: u32 = 0;
    let mut last_offsets: HashMap<i32, i64> = HashMap::new();
    let mut last_consume_warning = std::time::Instant::now();
    // Messages consumed per input partition: logged at the end, so an
    // operator sees which share of the input this process handled.
    let mut per_partition: BTreeMap<i32, u64> = BTreeMap::new();
    let handoff = Arc::clone(consumer.context().handoff());
    handoff.defer(true);

    loop {
        if let Some(revoked) = handoff.take() {
            while let Some(mut done) = window.pop_front() {
                done.settle(&producer, &name).await;
                store_done(&consumer, &spec.input, &name, &done, &mut remaining);
            }
            commit_and_release(&consumer, &revoked, &name);
        }
        if drain && remaining.is_empty() && window.is_empty() {
            break;
        }
        if stopping && window.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            // A revocation parked by the consumer's callback: handled above.
            () = handoff.parked() => {}
            changed = shutdown.changed(), if !stopping => {
                if changed.is_err() || *shutdown.borrow() {
                    tracing::info!(pipeline = %name, in_flight = window.len(), "stopping: finishing what is in flight");
                    stopping = true;
                }
            }
            () = async { window.front_mut().expect("guarded").settle(&producer, &name).await },
                if !window.is_empty() =>
            {
                let done = window.pop_front().expect("guarded");
                policy.metrics.in_flight(window.len());
                store_done(&consumer, &spec.input, &name, &done, &mut remaining);
            }
            received = consumer.recv(), if !stopping && window.len() < spec.max_in_flight && !(drain && remaining.is_empty()) => {
                let msg = match received {
                    Ok(m) => {
                        if consume_errors > 0 {
                            tracing::info!(pipeline = %name, "consuming again after {consume_errors} failed attempts");
                            consume_errors = 0;
                        }
                        m
                    }
                    Err(e) => {
                        // librdkafka reconnects with its own backoff; polling
                        // on keeps the group protocol moving, so wait briefly
                        // and only throttle what is logged.
                        consume_errors += 1;
                        if consume_errors == 1 || last_consume_warning.elapsed() >= CONSUME_WARNING_EVERY {
                            tracing::warn!(
                                pipeline = %name,
                                %bootstrap,
                                "cannot consume {} ({e}); still trying ({consume_errors} failed attempts)",
                                spec.input
                            );
                            last_consume_warning = std::time::Instant::now();
                        }
                        if sleep_or_shutdown(CONSUME_BACKOFF, &mut shutdown).await {
                            stopping = true;
                        }
                        continue;
                    }
                };
                stats.consumed += 1;
                *per_partition.entry(msg.partition()).or_default() += 1;
                let message = to_message(&msg);
                drop(msg);
                if let Some(last) = last_offsets.insert(message.partition, message.offset)
                    && message.offset > last + 1 {
                        // Compaction and transaction markers leave gaps too; a broker fault would.
                        tracing::warn!(
                            pipeline = %name,
                            "{}[{}] jumped from offset {last} to {}: the broker delivered nothing in between",
                            message.topic, message.partition, message.offset
                        );
                    }
                let (partition, offset) = (message.partition, message.offset);
                let records = match policy.handle(&spec, &mut instance, &mut swaps, message, &mut shutdown, &mut stats).await {
                    Handled::Records(records) => records,
                    Handled::Stop(reason) => {
                        tracing::error!(pipeline = %name, "stopping the pipeline: {reason}");
                        policy_stop = Some(reason);
                        stopping = true;
                        continue;
                    }
                    Handled::Interrupted => {
                        stopping = true;
                        continue;
                    }
                };
                let mut in_flight = InFlight { partition, offset, records, deliveries: Vec::new() };
                for record in &in_flight.records {
                    in_flight.deliveries.push(Delivery::Waiting(send_until_queued(record, &producer).await));
                }
                window.push_back(in_flight);
                policy.metrics.in_flight(window.len());
            }
        }
    }

    tracing::info!(pipeline = %name, ?stats, consumed_per_partition = ?per_partition, "pipeline stopping: committing");
    // The close that follows serves the last revocation itself.
    handoff.defer(false);
    if let Some(revoked) = handoff.take() {
        commit_and_release(&consumer, &revoked, &name);
    }
    let committed = consumer_proxy.disconnect();
    drop(consumer);
    let flushed = producer_proxy.disconnect();
    committed.with_context(|| format!("pipeline {name:?}: final commit failed"))?;
    flushed.with_context(|| format!("pipeline {name:?}: final flush failed"))?;
    if let Some(reason) = policy_stop {
        anyhow::bail!("pipeline {name:?} stopped: {reason}");
    }
    tracing::info!(pipeline = %name, replacements = instance.replacements(), "pipeline stopped");
    Ok(stats)
}

/// Stores a settled message's offset; notes a `--drain` partition done.
fn store_done(
    consumer: &WeirConsumer,
    input: &str,
    name: &str,
    done: &InFlight,
    remaining: &mut StopAt,
) {
    if let Err(e) = consumer.store_offset(input, done.partition, done.offset) {
        // The partition was revoked: its new owner starts from the last commit.
        tracing::debug!(pipeline = %name, partition = done.partition, "offset not stored: {e}");
    }
    if remaining
        .get(&done.partition)
        .is_some_and(|last| done.offset >= *last)
    {
        remaining.remove(&done.partition);
    }
}

/// Commits what is stored, synchronously, then lets the revoked partitions
/// go. A failed commit is logged: the partitions' next owner then repeats
/// from the last commit (at-least-once), which is all that is left to do.
fn commit_and_release(consumer: &WeirConsumer, revoked: &TopicPartitionList, name: &str) {
    let committed =
        tokio::task::block_in_place(|| consumer.commit_consumer_state(CommitMode::Sync));
    match committed {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {
            tracing::info!(pipeline = %name, "rebalance: committed before revoking; releasing the partitions")
        }
        Err(e) => tracing::warn!(
            pipeline = %name,
            "rebalance: the commit before revoking failed ({e}); the next owner repeats from the last commit"
        ),
    }
    if let Err(e) = finish_revoke(consumer, revoked) {
        tracing::warn!(pipeline = %name, "rebalance: releasing the revoked partitions failed: {e}");
    }
}

/// What to do with a message once the failure policy has had its say.
pub(crate) enum Decision {
    /// Produce or dead-letter what this outcome says.
    Handle(Outcome),
    /// Store the offset, produce nothing.
    Skip,
    /// Stop the pipeline without storing this message's offset.
    Stop(String),
    /// Shutdown came during a backoff or pause: leave the message unstored.
    Interrupted,
}

/// What a consumed message comes to, in either delivery loop.
pub(crate) enum Handled {
    /// Produce these (none: dropped or skipped); then its offset may go.
    Records(Vec<Record>),
    /// The policy stops the pipeline; the message stays uncommitted.
    Stop(String),
    /// Shutdown came during a backoff or pause: leave the message unstored.
    Interrupted,
}

/// The failure policy's state: retries with backoff per message, and the
/// breaker's memory of the last messages.
pub(crate) struct Policy {
    on_failure: OnFailure,
    breaker: Breaker,
    /// true for a message that failed (after its retries).
    recent: VecDeque<bool>,
    /// Consecutive pauses, to double the next one.
    trips: u32,
    /// This run's counters for `/metrics`.
    pub(crate) metrics: crate::ops::metrics::PipelineHandle,
}

impl Policy {
    pub(crate) fn new(spec: &Pipeline) -> Policy {
        Policy {
            on_failure: spec.on_failure.clone(),
            breaker: spec.breaker.clone(),
            recent: VecDeque::with_capacity(spec.breaker.window),
            trips: 0,
            metrics: crate::ops::metrics::registry().start(spec),
        }
    }

    fn record(&mut self, failed: bool) {
        if self.recent.len() == self.breaker.window {
            self.recent.pop_front();
        }
        self.recent.push_back(failed);
    }

    fn is_open(&self) -> bool {
        self.recent.iter().filter(|f| **f).count() > self.breaker.failures
    }

    /// Swaps in a reloaded plugin (between two messages), decides the
    /// message's fate and turns it into the records to produce.
    pub(crate) async fn handle(
        &mut self,
        spec: &Pipeline,
        instance: &mut Instance,
        swaps: &mut Option<UnboundedReceiver<Instance>>,
        message: Message,
        shutdown: &mut watch::Receiver<bool>,
        stats: &mut Stats,
    ) -> Handled {
        while let Some(fresh) = swaps.as_mut().and_then(|rx| rx.try_recv().ok()) {
            *instance = fresh;
            stats.reloads += 1;
            self.metrics.reloaded();
        }
        match self.decide(spec, instance, &message, shutdown, stats).await {
            Decision::Handle(outcome) => Handled::Records(outcome_records(
                spec,
                &instance.plugin().name,
                message,
                outcome,
                stats,
            )),
            Decision::Skip => {
                stats.skipped += 1;
                Handled::Records(Vec::new())
            }
            Decision::Stop(reason) => Handled::Stop(reason),
            Decision::Interrupted => Handled::Interrupted,
        }
    }

    /// Calls the plugin, retrying failures with backoff; applies the breaker,
    /// then `on_failure.then` to a message that still fails. Counts the
    /// message and what becomes of it for `/metrics`.
    pub(crate) async fn decide(
        &mut self,
        spec: &Pipeline,
        instance: &mut Instance,
        message: &Message,
        shutdown: &mut watch::Receiver<bool>,
        stats: &mut Stats,
    ) -> Decision {
        self.metrics.consumed();
        let decision = self.choose(spec, instance, message, shutdown, stats).await;
        let m = &self.metrics;
        match &decision {
            Decision::Handle(Outcome::Accepted) => m.produced(&spec.output),
            Decision::Handle(Outcome::Outputs(outputs)) => {
                if undeclared_route(spec, outputs).is_some() {
                    m.dead_lettered("route");
                } else {
                    for o in outputs {
                        m.produced(o.topic.as_deref().unwrap_or(&spec.output));
                    }
                }
            }
            Decision::Handle(Outcome::Invalid(_)) => m.dead_lettered("invalid"),
            Decision::Handle(Outcome::Failed(_)) => m.dead_lettered("failed"),
            Decision::Handle(Outcome::Aborted(a)) => m.dead_lettered(a.kind.as_str()),
            Decision::Skip => m.skipped(),
            Decision::Stop(_) | Decision::Interrupted => {}
        }
        decision
    }

    async fn choose(
        &mut self,
        spec: &Pipeline,
        instance: &mut Instance,
        message: &Message,
        shutdown: &mut watch::Receiver<bool>,
        stats: &mut Stats,
    ) -> Decision {
        let span = tracing::debug_span!(
            "message",
            pipeline = %spec.name,
            topic = %message.topic,
            partition = message.partition,
            offset = message.offset,
            plugin = %instance.plugin().name,
        );
        // Only formatted when something is logged: this is the per-message path.
        let place = Place(message);
        loop {
            let mut attempt = 0;
            let outcome = loop {
                // WASI's sync host calls (a guest's stdout) block on tokio: leave
                // the async context for the call.
                let replaced = instance.replacements();
                let started = std::time::Instant::now();
                let outcome =
                    tokio::task::block_in_place(|| span.in_scope(|| instance.call(message)));
                self.metrics.call(started.elapsed());
                self.metrics
                    .replaced(instance.replacements().saturating_sub(replaced));
                let Some(reason) = failure(&outcome) else {
                    break outcome;
                };
                if attempt >= self.on_failure.retries {
                    break outcome;
                }
                attempt += 1;
                stats.retries += 1;
                self.metrics.retried();
                let delay = doubled(
                    self.on_failure.backoff,
                    attempt - 1,
                    self.on_failure.max_backoff,
                );
                tracing::warn!(pipeline = %spec.name, topic = %message.topic, partition = message.partition, offset = message.offset, "{place}: {reason}; retry {attempt} of {} in {delay:?}", self.on_failure.retries);
                if sleep_or_shutdown(delay, shutdown).await {
                    return Decision::Interrupted;
                }
            };
            let Some(reason) = failure(&outcome) else {
                if self.trips > 0 {
                    tracing::info!(pipeline = %spec.name, topic = %message.topic, partition = message.partition, offset = message.offset, "breaker closed: {place} went through");
                    self.recent.clear();
                    self.trips = 0;
                }
                self.record(false);
                return Decision::Handle(outcome);
            };
            self.record(true);
            if self.is_open() {
                let summary = format!(
                    "breaker open: {} of the last {} messages failed (limit {}); the last, {place}: {reason}",
                    self.recent.iter().filter(|f| **f).count(),
                    self.recent.len(),
                    self.breaker.failures
                );
                match self.breaker.action {
                    BreakerAction::Stop => return Decision::Stop(summary),
                    BreakerAction::Pause => {
                        let pause = doubled(self.breaker.pause, self.trips, self.breaker.max_pause);
                        self.trips += 1;
                        stats.pauses += 1;
                        tracing::error!(pipeline = %spec.name, topic = %message.topic, partition = message.partition, offset = message.offset, "{summary}; pausing {pause:?}, then trying {place} again");
                        if sleep_or_shutdown(pause, shutdown).await {
                            return Decision::Interrupted;
                        }
                        continue;
                    }
                }
            }
            return match self.on_failure.then {
                FailureAction::DeadLetter => Decision::Handle(outcome),
                FailureAction::Skip => {
                    tracing::warn!(pipeline = %spec.name, topic = %message.topic, partition = message.partition, offset = message.offset, "{place}: {reason}; skipped by policy");
                    Decision::Skip
                }
                FailureAction::Stop => Decision::Stop(format!("{place}: {reason}")),
            };
        }
    }
}

/// Names a message as `topic[partition]@offset` in log lines.
struct Place<'a>(&'a Message);

impl std::fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}[{}]@{}",
            self.0.topic, self.0.partition, self.0.offset
        )
    }
}

/// The reason, when the outcome is one the failure policy handles.
fn failure(outcome: &Outcome) -> Option<String> {
    match outcome {
        Outcome::Failed(reason) => Some(format!("failed: {reason}")),
        Outcome::Aborted(a) => Some(format!("{}: {}", a.kind.as_str(), a.reason)),
        _ => None,
    }
}

/// `first` doubled `times` times, at most `max`.
fn doubled(first: Duration, times: u32, max: Duration) -> Duration {
    first
        .saturating_mul(1u32.checked_shl(times).unwrap_or(u32::MAX))
        .min(max)
}

/// Sleeps `d`; true if shutdown came first.
pub(crate) async fn sleep_or_shutdown(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => false,
        _ = shutdown.wait_for(|stop| *stop) => true,
    }
}

/// The records `outcome` asks for; `message` is consumed so an accepted
/// one is produced from its own buffers, not from a copy.
pub(crate) fn outcome_records(
    spec: &Pipeline,
    plugin: &str,
    message: Message,
    outcome: Outcome,
    stats: &mut Stats,
) -> Vec<Record> {
    let dead = |kind: &str, reason: String, stats: &mut Stats| {
        tracing::debug!(
            pipeline = %spec.name,
            topic = %message.topic,
            partition = message.partition,
            offset = message.offset,
            kind,
            reason = %reason,
            "dead-lettered"
        );
        *stats.dead_lettered.entry(kind.to_string()).or_default() += 1;
        vec![dead_letter(spec, plugin, &message, kind, &reason)]
    };
    match outcome {
        Outcome::Accepted => {
            stats.produced += 1;
            vec![Record {
                topic: spec.output.clone(),
                key: message.key,
                value: message.value,
                headers: message
                    .headers
                    .into_iter()
                    .map(|h| (h.key, h.value))
                    .collect(),
                timestamp: message.timestamp,
            }]
        }
        Outcome::Outputs(outputs) => {
            if let Some(bad) = undeclared_route(spec, &outputs) {
                let reason = format!(
                    "the plugin sent an output to {bad:?}, which is not a declared route of this pipeline (routes: {:?})",
                    spec.routes
                );
                return dead("route", reason, stats);
            }
            if outputs.is_empty() {
                stats.dropped += 1;
            }
            stats.produced += outputs.len() as u64;
            outputs
                .into_iter()
                .map(|o| Record {
                    topic: o.topic.unwrap_or_else(|| spec.output.clone()),
                    key: o.key,
                    value: o.value,
                    headers: o.headers.into_iter().map(|h| (h.key, h.value)).collect(),
                    timestamp: message.timestamp,
                })
                .collect()
        }
        Outcome::Invalid(reason) => dead("invalid", reason, stats),
        Outcome::Failed(reason) => dead("failed", reason, stats),
        Outcome::Aborted(Abort { kind, reason }) => dead(kind.as_str(), reason, stats),
    }
}

/// The first output topic that is neither the output nor a route.
fn undeclared_route<'a>(spec: &Pipeline, outputs: &'a [crate::plugin::Output]) -> Option<&'a str> {
    outputs
        .iter()
        .filter_map(|o| o.topic.as_deref())
        .find(|t| *t != spec.output && !spec.routes.iter().any(|r| r == t))
}

/// The original record plus headers saying what happened to it and where it came from.
fn dead_letter(spec: &Pipeline, plugin: &str, m: &Message, kind: &str, reason: &str) -> Record {
    let mut headers: Vec<(String, Option<Vec<u8>>)> = m
        .headers
        .iter()
        .map(|h| (h.key.clone(), h.value.clone()))
        .collect();
    for (k, v) in [
        ("weir.error.kind", kind.to_string()),
        ("weir.error.reason", reason.to_string()),
        ("weir.source.topic", m.topic.clone()),
        ("weir.source.partition", m.partition.to_string()),
        ("weir.source.offset", m.offset.to_string()),
        ("weir.pipeline", spec.name.clone()),
        ("weir.plugin", plugin.to_string()),
    ] {
        headers.push((k.to_string(), Some(v.into_bytes())));
    }
    Record {
        topic: spec.dead_letter.clone(),
        key: m.key.clone(),
        value: m.value.clone(),
        headers,
        timestamp: m.timestamp,
    }
}

/// The plugin's view of a consumed record.
pub fn to_message(msg: &BorrowedMessage<'_>) -> Message {
    Message {
        topic: msg.topic().to_string(),
        partition: msg.partition(),
        offset: msg.offset(),
        timestamp: msg.timestamp().to_millis(),
        key: msg.key().map(<[u8]>::to_vec),
        value: msg.payload().map(<[u8]>::to_vec),
        headers: msg
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| Header {
                        key: h.key.to_string(),
                        value: h.value.map(<[u8]>::to_vec),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}
