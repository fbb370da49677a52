//! The exactly-once runner (`delivery = "exactly-once"`): consume, transform,
//! produce inside Kafka transactions.
//!
//! Invariants: at most one transaction is open per pipeline. It holds a
//! batch of input messages (at most `transaction.max_messages`, open at most
//! `transaction.max_time`), every record they caused (outputs, routes,
//! dead-letter copies) and the batch's next offsets, sent with the
//! consumer's group metadata (KIP-447), so outputs and progress commit or
//! vanish together. The input is read `read_committed` and nothing is
//! committed outside a transaction (no auto-commit, no stored offsets).
//! An abortable error aborts and rewinds the consumer to the group's
//! committed offsets, so the batch is processed again; a fatal one (the
//! producer was fenced) stops the pipeline. A revocation commits the open
//! transaction before the partitions go.
//!
//! librdkafka's transaction calls block (on the broker, up to their
//! timeout): they run in `block_in_place`, off the async scheduler.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::consumer::Consumer as _;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, Producer as _};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Message as _};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::{Kafka, Pipeline};
use crate::delivery::at_least_once::{
    CONSUME_BACKOFF, CONSUME_WARNING_EVERY, Handled, Policy, Record, Stats, StopAt, enqueue,
    sleep_or_shutdown, to_message,
};
use crate::kafka::proxy::{
    ConsumerProxy, ProducerProxy, WeirConsumer, WeirProducer, finish_revoke,
};
use crate::plugin::Instance;

/// How long one blocking transaction call may take.
const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a commit failing with a retriable error is tried again.
const COMMIT_RETRIES: u32 = 10;

/// Why a transaction did not commit.
#[derive(Debug, thiserror::Error)]
pub enum TxnError {
    /// The transaction was aborted; its messages are consumed again.
    #[error("transaction aborted: {0}")]
    Aborted(String),
    /// The producer can no longer be used (fenced, or the broker refuses).
    #[error("{0}")]
    Fatal(String),
}

/// The open transaction.
struct Batch {
    opened: Instant,
    messages: usize,
    /// Per input partition: the first offset of the batch and the next to consume.
    first: BTreeMap<i32, i64>,
    next: BTreeMap<i32, i64>,
    deliveries: Vec<DeliveryFuture>,
    /// Why the producer refused to take one of the batch's records.
    refused: Option<String>,
}

/// The `transactional.id` when the config gives none, with the lock that
/// holds it for this process. Stable across restarts of this pipeline on
/// this host, so a restarted process fences its killed predecessor and
/// aborts what it left open at once; and distinct for processes running the
/// same pipeline side by side on one host (each takes the lowest free slot,
/// held by a file lock the kernel drops when the process dies), which would
/// otherwise fence each other on every start.
pub fn default_transactional_id(spec: &Pipeline) -> (String, Option<std::fs::File>) {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    let base = format!("weir-{}-{}-{host}", spec.group, spec.name);
    let dir = std::env::temp_dir().join("weir-transactional-ids");
    if std::fs::create_dir_all(&dir).is_err() {
        return (base, None);
    }
    // A name fit for a file whatever the group and pipeline are called.
    let file_name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    for slot in 0..1024 {
        let path = dir.join(format!("{file_name}-{slot}.lock"));
        let Ok(file) = std::fs::File::create(&path) else {
            break;
        };
        if file.try_lock().is_ok() {
            let id = if slot == 0 {
                base
            } else {
                format!("{base}-{slot}")
            };
            return (id, Some(file));
        }
    }
    (base, None)
}

/// Runs one exactly-once pipeline until `shutdown` turns true (or `stop_at`
/// is reached), then commits the open transaction and disconnects.
pub async fn run(
    spec: Pipeline,
    kafka: Kafka,
    bootstrap: String,
    mut instance: Instance,
    mut shutdown: watch::Receiver<bool>,
    stop_at: Option<StopAt>,
    mut swaps: Option<UnboundedReceiver<Instance>>,
) -> anyhow::Result<Stats> {
    let name = spec.name.clone();
    let base = crate::kafka::proxy::base_config(&kafka, &bootstrap);
    let mut consumer_config = base.clone();
    // Progress is committed only through transactions.
    consumer_config.set("enable.auto.commit", "false");
    consumer_config.set("isolation.level", "read_committed");
    // `_slot` holds a derived id for as long as this pipeline runs.
    let (txn_id, _slot) = match spec.transaction.id.clone() {
        Some(id) => (id, None),
        None => default_transactional_id(&spec),
    };
    let mut producer_config: ClientConfig = base;
    producer_config.set("transactional.id", &txn_id);
    let consumer_proxy = ConsumerProxy::new(
        consumer_config,
        &spec.group,
        vec![spec.input.clone()],
        &name,
    );
    let producer_proxy = ProducerProxy::named(producer_config, &name);
    let consumer = consumer_proxy
        .connect()
        .with_context(|| format!("pipeline {name:?}: cannot create the consumer"))?;
    let producer = producer_proxy
        .connect()
        .with_context(|| format!("pipeline {name:?}: cannot create the producer"))?;
    tokio::task::block_in_place(|| producer.init_transactions(TXN_TIMEOUT)).map_err(|e| {
        anyhow::anyhow!(
            "pipeline {name:?}: delivery = \"exactly-once\" needs Kafka transactions, and they could not be started with transactional.id {txn_id:?} on {bootstrap}: {e} (does the broker support transactions?)"
        )
    })?;
    tracing::info!(
        pipeline = %name,
        input = %spec.input,
        group = %spec.group,
        transactional_id = %txn_id,
        plugin = %instance.plugin().name,
        "exactly-once pipeline started"
    );

    let mut stats = Stats::default();
    let mut policy = Policy::new(&spec);
    let mut policy_stop = None;
    let drain = stop_at.is_some();
    let mut remaining = stop_at.unwrap_or_default();
    let mut stopping = *shutdown.borrow();
    let mut batch: Option<Batch> = None;
    let mut consume_errors: u32 = 0;
    let mut last_consume_warning = std::time::Instant::now();
    let mut per_partition: BTreeMap<i32, u64> = BTreeMap::new();
    let handoff = Arc::clone(rdkafka::consumer::Consumer::context(consumer.as_ref()).handoff());
    handoff.defer(true);

    let result: Result<(), TxnError> = loop {
        if let Some(revoked) = handoff.take() {
            if let Some(open) = batch.take()
                && let Err(e) = finish(open, &producer, &consumer, &spec, &mut stats).await
            {
                if matches!(e, TxnError::Fatal(_)) {
                    break Err(e);
                }
                tracing::warn!(pipeline = %name, "rebalance: {e}");
            }
            if let Err(e) = finish_revoke(consumer.as_ref(), &revoked) {
                tracing::warn!(pipeline = %name, "rebalance: releasing the revoked partitions failed: {e}");
            }
            tracing::info!(pipeline = %name, "rebalance: the open transaction ended before revoking");
        }
        let done_reading = stopping || (drain && remaining.is_empty());
        let full = batch
            .as_ref()
            .is_some_and(|b| b.messages >= spec.transaction.max_messages);
        if (full || done_reading) && batch.is_some() {
            let open = batch.take().expect("checked");
            if let Err(e) = finish(open, &producer, &consumer, &spec, &mut stats).await {
                if matches!(e, TxnError::Fatal(_)) {
                    break Err(e);
                }
                tracing::warn!(pipeline = %name, "{e}");
            }
            continue;
        }
        if done_reading {
            break Ok(());
        }
        let deadline = batch.as_ref().map(|b| b.opened + spec.transaction.max_time);
        tokio::select! {
            biased;
            () = handoff.parked() => {}
            changed = shutdown.changed(), if !stopping => {
                if changed.is_err() || *shutdown.borrow() {
                    tracing::info!(pipeline = %name, "stopping: committing the open transaction");
                    stopping = true;
                }
            }
            () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                let open = batch.take().expect("guarded");
                if let Err(e) = finish(open, &producer, &consumer, &spec, &mut stats).await {
                    if matches!(e, TxnError::Fatal(_)) {
                        break Err(e);
                    }
                    tracing::warn!(pipeline = %name, "{e}");
                }
            }
            received = consumer.recv() => {
                let msg = match received {
                    Ok(m) => {
                        consume_errors = 0;
                        m
                    }
                    Err(e) => {
                        consume_errors += 1;
                        if consume_errors == 1 || last_consume_warning.elapsed() >= CONSUME_WARNING_EVERY {
                            tracing::warn!(pipeline = %name, %bootstrap, "cannot consume {} ({e}); still trying", spec.input);
                            last_consume_warning = std::time::Instant::now();
                        }
                        if sleep_or_shutdown(CONSUME_BACKOFF, &mut shutdown).await {
                            stopping = true;
                        }
                        continue;
                    }
                };
                let (partition, offset) = (msg.partition(), msg.offset());
                let message = to_message(&msg);
                drop(msg);
                stats.consumed += 1;
                *per_partition.entry(partition).or_default() += 1;
                let records: Vec<Record> = match policy.handle(&spec, &mut instance, &mut swaps, message, &mut shutdown, &mut stats).await {
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
                if batch.is_none() {
                    if let Err(e) = producer.begin_transaction() {
                        break Err(classify(e, "begin"));
                    }
                    batch = Some(Batch {
                        opened: Instant::now(),
                        messages: 0,
                        first: BTreeMap::new(),
                        next: BTreeMap::new(),
                        deliveries: Vec::new(),
                        refused: None,
                    });
                }
                let open = batch.as_mut().expect("just opened");
                open.messages += 1;
                open.first.entry(partition).or_insert(offset);
                open.next.insert(partition, offset + 1);
                for record in &records {
                    if open.refused.is_some() {
                        break;
                    }
                    match enqueue(record, &producer).await {
                        Ok(delivery) => open.deliveries.push(delivery),
                        Err(e) => open.refused = Some(format!("{} refused a record: {e}", record.topic())),
                    }
                }
                if remaining.get(&partition).is_some_and(|last| offset >= *last) {
                    remaining.remove(&partition);
                }
            }
        }
    };

    tracing::info!(pipeline = %name, ?stats, consumed_per_partition = ?per_partition, "pipeline stopping");
    handoff.defer(false);
    if let Some(revoked) = handoff.take() {
        let _ = finish_revoke(consumer.as_ref(), &revoked);
    }
    if result.is_err() && batch.is_some() {
        // Whatever it left open is aborted by the next producer with this id.
        let _ = tokio::task::block_in_place(|| producer.abort_transaction(TXN_TIMEOUT));
    }
    drop(consumer);
    let left = consumer_proxy.disconnect();
    let flushed = producer_proxy.disconnect();
    if let Err(e) = result {
        anyhow::bail!("pipeline {name:?} (exactly-once, transactional.id {txn_id:?}) stopped: {e}");
    }
    left.with_context(|| format!("pipeline {name:?}: leaving the group failed"))?;
    flushed.with_context(|| format!("pipeline {name:?}: final flush failed"))?;
    if let Some(reason) = policy_stop {
        anyhow::bail!("pipeline {name:?} stopped: {reason}");
    }
    tracing::info!(pipeline = %name, replacements = instance.replacements(), "pipeline stopped");
    Ok(stats)
}

/// Commits the batch's transaction; on an abortable error aborts it and
/// rewinds the consumer so the batch is consumed again.
async fn finish(
    batch: Batch,
    producer: &WeirProducer,
    consumer: &WeirConsumer,
    spec: &Pipeline,
    stats: &mut Stats,
) -> Result<(), TxnError> {
    let first = batch.first.clone();
    match commit(batch, producer, consumer, spec).await {
        Ok(()) => Ok(()),
        Err(TxnError::Aborted(reason)) => {
            stats.aborted_transactions += 1;
            tokio::task::block_in_place(|| producer.abort_transaction(TXN_TIMEOUT))
                .map_err(|e| classify(e, "abort"))?;
            rewind(consumer, spec, &first);
            Err(TxnError::Aborted(reason))
        }
        Err(fatal) => Err(fatal),
    }
}

async fn commit(
    batch: Batch,
    producer: &WeirProducer,
    consumer: &WeirConsumer,
    spec: &Pipeline,
) -> Result<(), TxnError> {
    if let Some(refused) = batch.refused {
        return Err(TxnError::Aborted(format!("the producer for {refused}")));
    }
    for delivery in batch.deliveries {
        // A report can fail to come (librdkafka, after an error that needs
        // an epoch bump): the transaction is aborted, not waited on forever.
        let Ok(report) = tokio::time::timeout(TXN_TIMEOUT, delivery).await else {
            return Err(TxnError::Aborted(format!(
                "no delivery report within {TXN_TIMEOUT:?}"
            )));
        };
        match report {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => {
                return Err(TxnError::Aborted(format!(
                    "the broker refused a record: {e}"
                )));
            }
            Err(_) => return Err(TxnError::Aborted("a delivery report was lost".into())),
        }
    }
    let mut offsets = TopicPartitionList::new();
    for (partition, next) in &batch.next {
        offsets
            .add_partition_offset(&spec.input, *partition, Offset::Offset(*next))
            .map_err(|e| TxnError::Fatal(format!("offset list: {e}")))?;
    }
    let metadata = consumer
        .group_metadata()
        .ok_or_else(|| TxnError::Aborted("the consumer has no group metadata yet".to_string()))?;
    tokio::task::block_in_place(|| {
        producer.send_offsets_to_transaction(&offsets, &metadata, TXN_TIMEOUT)
    })
    .map_err(|e| classify(e, "send_offsets_to_transaction"))?;
    let mut attempt = 0;
    loop {
        match tokio::task::block_in_place(|| producer.commit_transaction(TXN_TIMEOUT)) {
            Ok(()) => return Ok(()),
            Err(KafkaError::Transaction(e))
                if e.is_retriable()
                    && !e.txn_requires_abort()
                    && e.code() != RDKafkaErrorCode::UnsupportedFeature
                    && attempt < COMMIT_RETRIES =>
            {
                attempt += 1;
                tracing::warn!(pipeline = %spec.name, "commit_transaction: {e}; trying again ({attempt} of {COMMIT_RETRIES})");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(classify(e, "commit_transaction")),
        }
    }
}

/// Fatal (fenced, unusable producer, a broker without transactions) or abortable.
fn classify(e: KafkaError, call: &str) -> TxnError {
    match &e {
        KafkaError::Transaction(t) if t.code() == RDKafkaErrorCode::UnsupportedFeature => {
            TxnError::Fatal(format!(
                "{call} failed: the broker does not support Kafka transactions ({t}); use delivery = \"at-least-once\" with this broker"
            ))
        }
        KafkaError::Transaction(t) if t.is_fatal() => TxnError::Fatal(format!(
            "{call} failed fatally: {t} (the producer was fenced: another process uses the same transactional.id, or the broker refuses the transaction)"
        )),
        _ => TxnError::Aborted(format!("{call}: {e}")),
    }
}

/// Seeks each partition of an aborted batch back to the group's committed
/// offset (the batch's first offset where the group has none).
fn rewind(consumer: &WeirConsumer, spec: &Pipeline, first: &BTreeMap<i32, i64>) {
    let mut wanted = TopicPartitionList::new();
    for partition in first.keys() {
        wanted.add_partition(&spec.input, *partition);
    }
    let committed: HashMap<i32, i64> =
        tokio::task::block_in_place(|| consumer.committed_offsets(wanted, Duration::from_secs(10)))
            .map(|tpl| {
                tpl.elements()
                    .iter()
                    .filter_map(|e| match e.offset() {
                        Offset::Offset(o) => Some((e.partition(), o)),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
    for (partition, first) in first {
        let to = committed.get(partition).copied().unwrap_or(*first);
        if let Err(e) = tokio::task::block_in_place(|| {
            consumer.seek(
                &spec.input,
                *partition,
                Offset::Offset(to),
                Duration::from_secs(10),
            )
        }) {
            tracing::warn!(pipeline = %spec.name, partition, "cannot rewind to offset {to} after an abort: {e}");
        } else {
            tracing::info!(pipeline = %spec.name, partition, "rewound to offset {to} after an abort");
        }
    }
}
