//! The exactly-once runner (`delivery = "exactly-once"`): consume, transform,
//! produce inside Kafka transactions.
//!
//! Invariants: at most one transaction is open per pipeline. It holds a
//! batch of input messages (at most `transaction.max_messages` and
//! `max_in_flight_bytes`, open at most `transaction.max_time`), every
//! record they caused (outputs, routes, dead-letter copies) and the
//! batch's next offsets, sent with the consumer's group metadata
//! (KIP-447), so outputs and progress commit or vanish together. The
//! input is read `read_committed` and nothing is committed outside a
//! transaction (no auto-commit, no stored offsets).
//! An abortable error aborts and rewinds the consumer to the group's
//! committed offsets, so the batch is processed again; a fatal one (the
//! producer was fenced) stops the pipeline. A revocation commits the open
//! transaction before the partitions go.
//!
//! With `lanes` > 1 the plugin calls run on the [lanes](super::lanes): a
//! message's place in the batch is reserved when it is handed over, and a
//! batch commits only once every lane has answered for it. An answer that
//! leaves a message unhandled (a stop, a wait cut short by shutdown), or
//! none within [`TXN_TIMEOUT`] (a lane's long retry or breaker wait),
//! aborts the batch instead, so it is done again.
//!
//! librdkafka's transaction calls block (on the broker, up to their
//! timeout): they run in `block_in_place`, off the async scheduler.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::ClientConfig;
use rdkafka::consumer::Consumer as _;
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer as _;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::{Kafka, Pipeline};
use crate::delivery::intake::{CONSUME_BACKOFF, Drain, Intake, StopAt, sleep_or_shutdown};
use crate::delivery::lanes::{Done, Lanes, next_done};
use crate::delivery::records::Input;
use crate::delivery::step::{
    self, Handled, Refused, Remembered, Step, Stepper, Waited, Waiter, refused, remember,
};
use crate::delivery::tickets::Tickets;
use crate::delivery::window::{Seq, Window};
use crate::kafka::proxy::{
    ConsumerProxy, FLUSH_TIMEOUT, PipelineProducer, Report, WeirConsumer, finish_revoke,
    pipeline_producer,
};
use crate::kafka::record::permanent_refusal;
use crate::ops::metrics::{PipelineHandle, Stats};
use crate::plugin::{Instance, Plugin};

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

/// The open transaction: its messages in a [`Window`] (their records'
/// delivery reports are the loop's [`Tickets`]).
struct Batch {
    opened: Instant,
    window: Window<Handled>,
    /// A record the producer would not take: the transaction must abort.
    refused: Option<(Seq, usize, KafkaError)>,
    /// Messages handed to lanes that have not answered yet.
    waiting: usize,
    /// Why the batch must abort although all went out (a lane's answer).
    spoiled: Option<String>,
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

/// What woke a loop's `select!`; acted on once its futures are dropped.
enum Wake<'c> {
    Parked,
    Shutdown(bool),
    Deadline,
    Landed(Done),
    Received(rdkafka::error::KafkaResult<rdkafka::message::BorrowedMessage<'c>>),
}

struct Loop<'a> {
    spec: &'a Pipeline,
    metrics: &'a PipelineHandle,
    intake: Intake,
    consumer: Arc<WeirConsumer>,
    producer: PipelineProducer,
    /// The producer's delivery reports, and the open batch's records they
    /// are about.
    reports: UnboundedReceiver<Report>,
    tickets: Tickets,
    batch: Option<Batch>,
    shutdown: watch::Receiver<bool>,
    stopping: bool,
    drain: Drain,
    /// Messages refused for good in an aborted transaction, by place.
    remembered: HashMap<(i32, i64), Remembered>,
    /// Why the pipeline stops by itself (the policy, a refusal).
    failure: Option<String>,
    /// A fatal transaction error: stop at once.
    fatal: Option<TxnError>,
    /// With `lanes` > 1: the lanes, and the reloads they swap in.
    lanes: Option<Lanes>,
    swaps: Option<UnboundedReceiver<Instance>>,
    /// The plugin a reserved place names until its lane answers.
    plugin: Arc<Plugin>,
    /// Where the next batch's numbering starts (see [`Window::starting_at`]).
    next_seq: Seq,
}

/// Runs one exactly-once pipeline until `shutdown` turns true (or `stop_at`
/// is reached), then commits the open transaction and disconnects.
pub async fn run(
    spec: Pipeline,
    kafka: Kafka,
    bootstrap: String,
    instance: Instance,
    shutdown: watch::Receiver<bool>,
    stop_at: Option<StopAt>,
    swaps: Option<UnboundedReceiver<Instance>>,
) -> anyhow::Result<Stats> {
    let name = spec.name.clone();
    let mut consumer_config = crate::kafka::proxy::consumer_config(&kafka, &bootstrap);
    // Progress is committed only through transactions.
    consumer_config.set("enable.auto.commit", "false");
    consumer_config.set("isolation.level", "read_committed");
    // `_slot` holds a derived id for as long as this pipeline runs.
    let (txn_id, _slot) = match spec.transaction.id.clone() {
        Some(id) => (id, None),
        None => default_transactional_id(&spec),
    };
    let mut producer_config: ClientConfig =
        crate::kafka::proxy::producer_config(&kafka, &bootstrap);
    producer_config.set("transactional.id", &txn_id);
    crate::kafka::topics::fit_batches(&mut producer_config, &kafka, &bootstrap, &spec).await;
    let consumer_proxy = ConsumerProxy::new(
        consumer_config,
        &spec.group,
        vec![spec.input.clone()],
        &name,
    );
    let consumer = consumer_proxy
        .connect()
        .with_context(|| format!("pipeline {name:?}: cannot create the consumer"))?;
    let (producer, reports) = pipeline_producer(producer_config, &name)
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
    let metrics = Arc::new(crate::ops::metrics::registry().start(&spec));
    let plugin = Arc::clone(instance.plugin());
    let (mut stepper, lanes, swaps) = if spec.lanes > 1 {
        let lanes = Lanes::start(&spec, instance, &metrics, &shutdown)?;
        (None, Some(lanes), swaps)
    } else {
        (Some(Stepper::new(&spec, instance, swaps)), None, None)
    };
    let stopping = *shutdown.borrow();
    let mut lp = Loop {
        spec: &spec,
        metrics: &metrics,
        intake: Intake::new(Arc::clone(&consumer), &name, &spec.input, &bootstrap),
        consumer,
        producer,
        reports,
        tickets: Tickets::default(),
        batch: None,
        stopping,
        shutdown,
        drain: Drain::new(stop_at),
        remembered: HashMap::new(),
        failure: None,
        fatal: None,
        lanes,
        swaps,
        plugin,
        next_seq: 0,
    };
    lp.run(&mut stepper).await;
    if let Some(lanes) = lp.lanes.take() {
        lanes.close();
    }

    let stats = metrics.stats();
    tracing::info!(pipeline = %name, ?stats, consumed_per_partition = ?lp.intake.per_partition, "pipeline stopping");
    lp.intake.handoff.defer(false);
    if let Some(revoked) = lp.intake.handoff.take() {
        let _ = finish_revoke(lp.consumer.as_ref(), &revoked);
    }
    if lp.batch.is_some() {
        // Whatever is left open is aborted now, or by the next producer with this id.
        let _ = tokio::task::block_in_place(|| lp.producer.abort_transaction(TXN_TIMEOUT));
    }
    let (fatal, failure) = (lp.fatal.take(), lp.failure.take());
    let flushed = lp.producer.flush(FLUSH_TIMEOUT);
    drop(lp);
    let left = consumer_proxy.disconnect();
    if let Some(e) = fatal {
        anyhow::bail!("pipeline {name:?} (exactly-once, transactional.id {txn_id:?}) stopped: {e}");
    }
    left.with_context(|| format!("pipeline {name:?}: leaving the group failed"))?;
    flushed.with_context(|| format!("pipeline {name:?}: final flush failed"))?;
    if let Some(reason) = failure {
        anyhow::bail!("pipeline {name:?} stopped: {reason}");
    }
    let replacements = stepper.as_ref().map(|s| s.instance().replacements());
    tracing::info!(pipeline = %name, ?replacements, "pipeline stopped");
    Ok(stats)
}

impl Loop<'_> {
    async fn run(&mut self, stepper: &mut Option<Stepper>) {
        loop {
            if self.fatal.is_some() {
                return;
            }
            if let Some(revoked) = self.intake.handoff.take() {
                if !self.finish("rebalance").await && self.fatal.is_some() {
                    return;
                }
                if let Err(e) = finish_revoke(self.consumer.as_ref(), &revoked) {
                    tracing::warn!(pipeline = %self.spec.name, "rebalance: releasing the revoked partitions failed: {e}");
                }
                tracing::info!(pipeline = %self.spec.name, "rebalance: the open transaction ended before revoking");
                continue;
            }
            let done_reading = self.stopping || self.drain.all_read();
            let full = self.batch.as_ref().is_some_and(|b| {
                b.window.len() >= self.spec.transaction.max_messages
                    || b.window.bytes() >= self.spec.max_in_flight_bytes
            });
            if (full || done_reading) && self.batch.is_some() {
                self.finish("").await;
                continue;
            }
            if self.stopping || self.drain.all_finished() {
                return;
            }
            if done_reading {
                // Draining: an aborted last batch is read again; wait for it.
                self.intake.resume();
            } else if let Some(input) = self.intake.take_held() {
                self.take(input, stepper).await;
                continue;
            }
            let deadline = self
                .batch
                .as_ref()
                .map(|b| b.opened + self.spec.transaction.max_time);
            let consumer = Arc::clone(&self.consumer);
            let wake = tokio::select! {
                biased;
                () = self.intake.handoff.parked() => Wake::Parked,
                changed = self.shutdown.changed(), if !self.stopping => {
                    Wake::Shutdown(changed.is_err() || *self.shutdown.borrow())
                }
                () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => Wake::Deadline,
                done = next_done(&mut self.lanes) => Wake::Landed(done),
                received = consumer.recv() => Wake::Received(received),
            };
            match wake {
                Wake::Parked => {}
                Wake::Shutdown(stop) => {
                    if stop {
                        tracing::info!(pipeline = %self.spec.name, "stopping: committing the open transaction");
                        self.stopping = true;
                    }
                }
                Wake::Deadline => {
                    self.finish("").await;
                }
                Wake::Landed(done) => self.landed(done).await,
                Wake::Received(received) => match self.intake.received(received, self.metrics) {
                    Some(input) => self.take(input, stepper).await,
                    None => {
                        if !self.intake.is_paused()
                            && sleep_or_shutdown(CONSUME_BACKOFF, &mut self.shutdown).await
                        {
                            self.stopping = true;
                        }
                    }
                },
            }
        }
    }

    /// A consumed message: through the step here, or handed to its lane.
    async fn take(&mut self, input: Input, stepper: &mut Option<Stepper>) {
        self.drain.read(input.partition, input.offset);
        let metrics = self.metrics;
        if self.lanes.is_some() {
            while let Some(fresh) = self.swaps.as_mut().and_then(|rx| rx.try_recv().ok()) {
                if let Some(lanes) = &self.lanes {
                    lanes.swap(fresh, metrics);
                }
            }
            let remembered = self.remembered.remove(&(input.partition, input.offset));
            let place = Handled::waiting(input.partition, input.offset, &self.plugin);
            let Some(batch) = self.open() else {
                return;
            };
            let seq = batch
                .window
                .reserve(input.partition, input.offset, input.size(), place);
            batch.waiting += 1;
            metrics.in_flight(batch.window.len());
            self.next_seq = seq + 1;
            if let Some(lanes) = self.lanes.as_mut() {
                lanes.dispatch(seq, input, remembered);
            }
            return;
        }
        let Some(stepper) = stepper.as_mut() else {
            return;
        };
        match stepper.step(input, self, metrics).await {
            Step::Handled(handled) => self.push(handled).await,
            Step::Stop(reason) => self.stop(reason),
            Step::Interrupted => self.stopping |= *self.shutdown.borrow(),
        }
    }

    fn stop(&mut self, reason: String) {
        tracing::error!(pipeline = %self.spec.name, "stopping the pipeline: {reason}");
        self.failure.get_or_insert(reason);
        self.stopping = true;
    }

    /// The open transaction, begun now if none is.
    fn open(&mut self) -> Option<&mut Batch> {
        if self.batch.is_none() {
            if let Err(e) = self.producer.begin_transaction() {
                self.fatal = Some(classify(e, "begin"));
                return None;
            }
            self.batch = Some(Batch {
                opened: Instant::now(),
                window: Window::starting_at(self.next_seq),
                refused: None,
                waiting: 0,
                spoiled: None,
            });
        }
        self.batch.as_mut()
    }

    /// Adds a handled message to the open transaction (opening one) and
    /// hands its records to the producer.
    async fn push(&mut self, handled: Handled) {
        let Some(batch) = self.open() else {
            return;
        };
        let n = handled.records.len();
        let bytes = handled.records.iter().map(|r| r.size()).sum();
        let seq = batch
            .window
            .push(handled.partition, handled.offset, n, bytes, handled);
        self.next_seq = batch.window.next_seq();
        self.enqueue(seq, n).await;
    }

    /// A lane's answer for a message of the open batch (one of an aborted
    /// batch finds nothing).
    async fn landed(&mut self, done: Done) {
        let Some(batch) = self.batch.as_mut() else {
            return;
        };
        let seq = done.seq;
        if batch.window.get_mut(seq).is_none() {
            return;
        }
        batch.waiting = batch.waiting.saturating_sub(1);
        match done.step {
            Step::Handled(handled) => {
                let n = handled.records.len();
                let bytes = handled.records.iter().map(|r| r.size()).sum();
                if batch.window.fill(seq, n, bytes, handled) {
                    self.enqueue(seq, n).await;
                }
            }
            Step::Stop(reason) => {
                batch.spoiled = Some("a lane stopped the pipeline".to_string());
                self.stop(reason);
            }
            Step::Interrupted => {
                batch.spoiled = Some("a lane's wait was cut short".to_string());
                self.stopping |= *self.shutdown.borrow();
            }
        }
    }

    /// Hands the `n` records of message `seq` to the producer.
    async fn enqueue(&mut self, seq: Seq, n: usize) {
        let Some(batch) = self.batch.as_mut() else {
            return;
        };
        self.next_seq = self.next_seq.max(batch.window.next_seq());
        for idx in 0..n {
            if batch.refused.is_some() {
                break;
            }
            let Some(record) = batch
                .window
                .get_mut(seq)
                .and_then(|e| e.item.records.get(idx))
            else {
                break;
            };
            let ticket = self.tickets.issue(seq, idx);
            if let Err(e) = record.enqueue(&self.producer, ticket).await {
                self.tickets.redeem(ticket);
                batch.refused = Some((seq, idx, e));
            }
        }
        self.metrics.in_flight(batch.window.len());
    }

    /// Waits (at most [`TXN_TIMEOUT`]) for the lanes to answer for every
    /// message of the open batch.
    async fn settle(&mut self) {
        let deadline = Instant::now() + TXN_TIMEOUT;
        while self.batch.as_ref().is_some_and(|b| b.waiting > 0) {
            tokio::select! {
                done = next_done(&mut self.lanes) => self.landed(done).await,
                () = tokio::time::sleep_until(deadline) => {
                    if let Some(b) = self.batch.as_mut() {
                        b.spoiled = Some(format!("a lane did not answer within {TXN_TIMEOUT:?}"));
                    }
                    return;
                }
            }
        }
    }

    /// Commits the open transaction, if any; an abortable failure aborts
    /// it and rewinds the input so its messages are done again.
    /// False when it aborted (the input was rewound).
    async fn finish(&mut self, context: &str) -> bool {
        self.settle().await;
        let Some(batch) = self.batch.take() else {
            return true;
        };
        let first = first_offsets(&batch.window);
        let committed = self.commit(batch).await;
        // What is still to come is about records of a transaction that is over.
        self.tickets.clear();
        let committed = match committed {
            Ok(()) => true,
            Err(TxnError::Aborted(reason)) => {
                self.metrics.aborted_transaction();
                let prefix = if context.is_empty() {
                    String::new()
                } else {
                    format!("{context}: ")
                };
                tracing::warn!(pipeline = %self.spec.name, "{prefix}transaction aborted: {reason}");
                if let Err(e) =
                    tokio::task::block_in_place(|| self.producer.abort_transaction(TXN_TIMEOUT))
                {
                    self.fatal = Some(classify(e, "abort"));
                    return false;
                }
                rewind(&self.consumer, self.spec, &first);
                if let Some(lanes) = &self.lanes {
                    lanes.interrupt(first.keys().copied());
                }
                for partition in first.keys() {
                    self.intake.rewound(*partition);
                    self.drain.rewound(*partition);
                }
                false
            }
            Err(fatal) => {
                self.fatal = Some(fatal);
                false
            }
        };
        self.metrics.in_flight(0);
        committed
    }

    async fn commit(&mut self, mut batch: Batch) -> Result<(), TxnError> {
        if let Some(why) = batch.spoiled.take() {
            return Err(TxnError::Aborted(why));
        }
        if let Some((seq, idx, e)) = batch.refused.take() {
            return Err(self.refusal(&mut batch, seq, idx, e, "the producer would not take"));
        }
        // A report can fail to come (librdkafka, after an error that needs
        // an epoch bump): the transaction is aborted, not waited on forever.
        let deadline = Instant::now() + TXN_TIMEOUT;
        while self.tickets.outstanding() > 0 {
            let report = match tokio::time::timeout_at(deadline, self.reports.recv()).await {
                Ok(Some(report)) => report,
                Ok(None) => return Err(TxnError::Aborted("the producer is gone".into())),
                Err(_) => {
                    return Err(TxnError::Aborted(format!(
                        "no delivery report within {TXN_TIMEOUT:?}"
                    )));
                }
            };
            // `None`: a report for a record of an earlier transaction.
            let Some((seq, idx)) = self.tickets.redeem(report.ticket) else {
                continue;
            };
            match report.result {
                Ok(()) => {
                    batch.window.ack(seq);
                }
                Err(e) => return Err(self.refusal(&mut batch, seq, idx, e, "the broker refused")),
            }
        }
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        for e in batch.window.iter() {
            let n = next.entry(e.partition).or_insert(e.offset + 1);
            *n = (*n).max(e.offset + 1);
        }
        let mut offsets = TopicPartitionList::new();
        for (partition, next) in &next {
            offsets
                .add_partition_offset(&self.spec.input, *partition, Offset::Offset(*next))
                .map_err(|e| TxnError::Fatal(format!("offset list: {e}")))?;
        }
        let metadata = self.consumer.group_metadata().ok_or_else(|| {
            TxnError::Aborted("the consumer has no group metadata yet".to_string())
        })?;
        tokio::task::block_in_place(|| {
            self.producer
                .send_offsets_to_transaction(&offsets, &metadata, TXN_TIMEOUT)
        })
        .map_err(|e| classify(e, "send_offsets_to_transaction"))?;
        let mut attempt = 0;
        loop {
            match tokio::task::block_in_place(|| self.producer.commit_transaction(TXN_TIMEOUT)) {
                Ok(()) => break,
                Err(KafkaError::Transaction(e))
                    if e.is_retriable()
                        && !e.txn_requires_abort()
                        && e.code() != RDKafkaErrorCode::UnsupportedFeature
                        && attempt < COMMIT_RETRIES =>
                {
                    attempt += 1;
                    tracing::warn!(pipeline = %self.spec.name, "commit_transaction: {e}; trying again ({attempt} of {COMMIT_RETRIES})");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(classify(e, "commit_transaction")),
            }
        }
        for done in batch.window.drain() {
            step::finished(self.metrics, &done.item);
            self.drain.finished(done.partition, done.offset);
        }
        Ok(())
    }

    /// A record of the batch was refused: the transaction aborts. Refused
    /// for good, the message's fate is decided now and applied when it is
    /// done again.
    fn refusal(
        &mut self,
        batch: &mut Batch,
        seq: Seq,
        idx: usize,
        e: KafkaError,
        what: &str,
    ) -> TxnError {
        let found = batch.window.get_mut(seq).and_then(|entry| {
            let record = entry.item.records.get(idx)?;
            Some((&entry.item, record))
        });
        let Some((handled, record)) = found else {
            return TxnError::Aborted(format!("{what} a record: {e}"));
        };
        let topic = record.topic.clone();
        if permanent_refusal(&e).is_none() {
            return TxnError::Aborted(format!("{what} a record for {topic}: {e}"));
        }
        let decision = refused(self.spec, self.metrics, handled, record, &e);
        if let Some((place, remembered)) = remember(handled, &decision) {
            self.remembered.insert(place, remembered);
        }
        if let Refused::Stop(reason) = decision {
            tracing::error!(pipeline = %self.spec.name, "stopping the pipeline: {reason}");
            self.failure.get_or_insert(reason);
            self.stopping = true;
        }
        TxnError::Aborted(format!(
            "{what} a record for {topic} for good ({e}); the message is done again without it"
        ))
    }
}

impl Waiter for Loop<'_> {
    /// Commits the open transaction first, so no transaction outlives its
    /// timeout while the step waits.
    async fn wait(&mut self, d: Duration, partition: i32) -> Waited {
        if !self.finish("before a wait").await {
            // Rewound: the waiting message comes again after the batch.
            return Waited::Redo;
        }
        let until = Instant::now() + d;
        self.intake.pause();
        let consumer = Arc::clone(&self.consumer);
        let waited = loop {
            if let Some(revoked) = self.intake.handoff.take() {
                // Nothing is open: the batch was committed before the wait.
                if let Err(e) = finish_revoke(self.consumer.as_ref(), &revoked) {
                    tracing::warn!(pipeline = %self.spec.name, "rebalance: releasing the revoked partitions failed: {e}");
                }
                let mine = revoked
                    .elements()
                    .iter()
                    .any(|e| e.topic() == self.spec.input && e.partition() == partition);
                if mine {
                    break Waited::Redo;
                }
            }
            let wake = tokio::select! {
                biased;
                () = self.intake.handoff.parked() => Wake::Parked,
                _ = self.shutdown.wait_for(|stop| *stop) => Wake::Shutdown(true),
                () = tokio::time::sleep_until(until) => break Waited::Elapsed,
                received = consumer.recv() => Wake::Received(received),
            };
            match wake {
                Wake::Shutdown(_) => {
                    self.stopping = true;
                    break Waited::Shutdown;
                }
                // Paused: what still arrives is held for after the wait.
                Wake::Received(received) => drop(self.intake.received(received, self.metrics)),
                // Without lanes (the loop waits only then), nothing lands.
                Wake::Parked | Wake::Deadline | Wake::Landed(_) => {}
            }
        };
        self.intake.resume();
        waited
    }

    fn take_remembered(&mut self, partition: i32, offset: i64) -> Option<Remembered> {
        self.remembered.remove(&(partition, offset))
    }
}

/// Per input partition, the first offset of the batch.
fn first_offsets(window: &Window<Handled>) -> BTreeMap<i32, i64> {
    let mut first = BTreeMap::new();
    for e in window.iter() {
        first.entry(e.partition).or_insert(e.offset);
    }
    first
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
