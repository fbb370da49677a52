//! The at-least-once loop: consume one message, run the [step](super::step),
//! produce its records, store its offset once they are acknowledged.
//!
//! Invariants: a message's offset is stored only once every record it
//! caused (outputs, or its dead-letter copy) is acknowledged, through the
//! ordered [`Window`] of at most `max_in_flight` messages, so offsets are
//! stored in order per partition. A record the broker refuses for a while
//! is sent again (with backoff, logged); one refused for good goes to the
//! policy ([`refused`]). Stored offsets are committed in the background by
//! librdkafka and synchronously on shutdown.
//!
//! The window is bounded by `max_in_flight` messages and
//! `max_in_flight_bytes`. With `lanes` > 1 the plugin calls run on the
//! [lanes](super::lanes), and each message's place in the window is
//! reserved when it is handed over. What is ready at a wake (records,
//! acknowledgements, lane answers) is taken in a burst without a select.
//!
//! The consumer keeps being polled while the step waits (retry backoff,
//! breaker pause): its partitions are paused and `recv` keeps the group
//! alive. So it is when the loop has taken nothing for [`STALL_PAUSE`] (a
//! full window, a lane's long wait): a shorter stall is not paused, since
//! a pause drops librdkafka's prefetched records. What arrives while paused
//! is held by the [`Intake`], in order.
//!
//! Commit on revoke: a revocation parked by the consumer (see
//! [`RevokeHandoff`](crate::kafka::proxy::RevokeHandoff)) stops consuming,
//! settles the window (storing each offset in order) for at most
//! [`REVOKE_DEADLINE`], commits synchronously and only then unassigns. What
//! did not finish by then is given up uncommitted, and its next owner does
//! it again.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt as _, StreamExt as _};
use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::producer::Producer as _;
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::BorrowedMessage;
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::{Kafka, Pipeline};
use crate::delivery::intake::{CONSUME_BACKOFF, Drain, Intake, StopAt, sleep_or_shutdown};
use crate::delivery::lanes::{Done, Lanes, next_done};
use crate::delivery::records::Input;
use crate::delivery::step::{self, Fate, Handled, Refused, Step, Stepper, Waited, Waiter, refused};
use crate::delivery::tickets::Tickets;
use crate::delivery::window::{Seq, Window};
use crate::kafka::proxy::{
    ConsumerProxy, FLUSH_TIMEOUT, PipelineProducer, Report, WeirConsumer, consumer_config,
    finish_revoke, pipeline_producer, producer_config,
};
use crate::kafka::record::permanent_refusal;
use crate::ops::metrics::{PipelineHandle, Stats};
use crate::plugin::{Instance, Plugin};

/// How long to wait before sending a refused record again.
const RESEND_BACKOFF: Duration = Duration::from_millis(500);

/// How long a revocation waits for the window to settle.
pub const REVOKE_DEADLINE: Duration = Duration::from_secs(30);

/// How long the loop takes nothing before it pauses its input and keeps
/// polling.
pub const STALL_PAUSE: Duration = Duration::from_secs(1);

/// At most how many ready acknowledgements (or lane answers) one wake
/// takes before the loop looks at everything else again.
const BURST: usize = 256;

/// At most how long the loop takes ready records without a select (for a
/// slow plugin called inline).
const TAKE_BUDGET: Duration = Duration::from_millis(2);

/// What became of one record on its way, when not a delivery report.
enum Event {
    /// The producer would not take it.
    Failed(Seq, usize, KafkaError),
    /// Its backoff is over: send it again.
    Resend(Seq, usize),
}

/// What woke a loop's `select!`; acted on once its futures are dropped.
enum Wake<'c> {
    Parked,
    Shutdown(bool),
    Event(Event),
    Report(Report),
    Landed(Done),
    Stalled,
    Received(KafkaResult<BorrowedMessage<'c>>),
}

type Sending = FuturesUnordered<Pin<Box<dyn Future<Output = Event> + Send>>>;

struct Loop<'a> {
    spec: &'a Pipeline,
    metrics: &'a PipelineHandle,
    intake: Intake,
    consumer: Arc<WeirConsumer>,
    producer: PipelineProducer,
    /// The producer's delivery reports, and the records they are about.
    reports: UnboundedReceiver<Report>,
    tickets: Tickets,
    window: Window<Handled>,
    /// Refusals and resend backoffs on their way back to the loop.
    sending: Sending,
    shutdown: watch::Receiver<bool>,
    stopping: bool,
    drain: Drain,
    /// Why the pipeline stops by itself (the policy, a refusal).
    failure: Option<String>,
    /// With `lanes` > 1: the lanes, and the reloads they swap in.
    lanes: Option<Lanes>,
    swaps: Option<UnboundedReceiver<Instance>>,
    /// The plugin a reserved place names until its lane answers.
    plugin: Arc<Plugin>,
    /// Since when the loop has taken nothing though it would.
    stalled_since: Option<Instant>,
}

/// Runs one pipeline until `shutdown` turns true (or `stop_at` is reached),
/// then finishes what is in flight, commits and disconnects.
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
    let plugin = Arc::clone(instance.plugin());
    let consumer_proxy = ConsumerProxy::new(
        consumer_config(&kafka, &bootstrap),
        &spec.group,
        vec![spec.input.clone()],
        &name,
    );
    let mut producer_config = producer_config(&kafka, &bootstrap);
    crate::kafka::topics::fit_batches(&mut producer_config, &kafka, &bootstrap, &spec).await;
    let consumer = consumer_proxy
        .connect()
        .with_context(|| format!("pipeline {name:?}: cannot create the consumer"))?;
    let (producer, reports) = pipeline_producer(producer_config, &name)
        .with_context(|| format!("pipeline {name:?}: cannot create the producer"))?;
    tracing::info!(
        pipeline = %name,
        input = %spec.input,
        group = %spec.group,
        plugin = %plugin.name,
        world = %plugin.world(),
        "pipeline started"
    );
    let metrics = Arc::new(crate::ops::metrics::registry().start(&spec));
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
        window: Window::default(),
        sending: FuturesUnordered::new(),
        stopping,
        shutdown,
        drain: Drain::new(stop_at),
        failure: None,
        lanes,
        swaps,
        plugin,
        stalled_since: None,
    };
    lp.run(&mut stepper).await;
    if let Some(lanes) = lp.lanes.take() {
        lanes.close();
    }

    let stats = metrics.stats();
    tracing::info!(pipeline = %name, ?stats, consumed_per_partition = ?lp.intake.per_partition, "pipeline stopping: committing");
    // The close that follows serves the last revocation itself.
    lp.intake.handoff.defer(false);
    if let Some(revoked) = lp.intake.handoff.take() {
        commit_and_release(&lp.consumer, &revoked, &name);
    }
    let failure = lp.failure.take();
    let flushed = lp.producer.flush(FLUSH_TIMEOUT);
    drop(lp);
    let committed = consumer_proxy.disconnect();
    committed.with_context(|| format!("pipeline {name:?}: final commit failed"))?;
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
            if let Some(revoked) = self.intake.handoff.take() {
                self.revoke(revoked).await;
            }
            self.release();
            if self.window.is_empty() && (self.stopping || self.drain.all_finished()) {
                return;
            }
            let can_take = self.can_take();
            if can_take && let Some(input) = self.intake.take_held() {
                self.take(input, stepper).await;
                continue;
            }
            self.stall(can_take);
            let stall_over = self.stalled_since.map(|t| t + STALL_PAUSE);
            let polling = can_take || self.intake.is_paused();
            let consumer = Arc::clone(&self.consumer);
            let wake = tokio::select! {
                biased;
                // A revocation parked by the consumer's callback: handled above.
                () = self.intake.handoff.parked() => Wake::Parked,
                changed = self.shutdown.changed(), if !self.stopping => {
                    Wake::Shutdown(changed.is_err() || *self.shutdown.borrow())
                }
                Some(report) = self.reports.recv() => Wake::Report(report),
                Some(event) = self.sending.next(), if !self.sending.is_empty() => Wake::Event(event),
                done = next_done(&mut self.lanes) => Wake::Landed(done),
                () = sleep_until_some(stall_over), if !self.intake.is_paused() => Wake::Stalled,
                received = consumer.recv(), if polling => Wake::Received(received),
            };
            match wake {
                Wake::Parked => {}
                Wake::Shutdown(stop) => {
                    if stop {
                        tracing::info!(pipeline = %self.spec.name, in_flight = self.window.len(), "stopping: finishing what is in flight");
                        self.stopping = true;
                    }
                }
                Wake::Report(report) => {
                    self.on_report(report).await;
                    // Acknowledgements come in bursts: what is ready now is
                    // taken without a select (and its offsets stored once).
                    for _ in 0..BURST {
                        let Ok(report) = self.reports.try_recv() else {
                            break;
                        };
                        self.on_report(report).await;
                    }
                }
                Wake::Event(event) => self.on_event(event).await,
                Wake::Landed(done) => {
                    self.landed(done).await;
                    for _ in 0..BURST {
                        let Some(done) = next_done(&mut self.lanes).now_or_never() else {
                            break;
                        };
                        self.landed(done).await;
                    }
                }
                Wake::Stalled => {
                    tracing::debug!(pipeline = %self.spec.name, in_flight = self.window.len(), "nothing taken for {STALL_PAUSE:?}: pausing the input, still polling");
                    self.intake.pause();
                }
                Wake::Received(received) => {
                    if self.received(received, stepper).await {
                        self.take_ready(&consumer, stepper).await;
                    }
                }
            }
        }
    }

    /// Room in the window, and more to read.
    fn can_take(&self) -> bool {
        !self.stopping
            && self.window.len() < self.spec.max_in_flight
            && self.window.bytes() < self.spec.max_in_flight_bytes
            && !self.drain.all_read()
    }

    /// What `recv` gave, taken; false after a failure (once its backoff is
    /// over) or while paused (held).
    async fn received(
        &mut self,
        received: KafkaResult<BorrowedMessage<'_>>,
        stepper: &mut Option<Stepper>,
    ) -> bool {
        match self.intake.received(received, self.metrics) {
            Some(input) => {
                self.take(input, stepper).await;
                true
            }
            None => {
                if !self.intake.is_paused()
                    && sleep_or_shutdown(CONSUME_BACKOFF, &mut self.shutdown).await
                {
                    self.stopping = true;
                }
                false
            }
        }
    }

    /// Records come in bursts too: what librdkafka has ready now is taken
    /// without a select, for at most [`BURST`] records or [`TAKE_BUDGET`],
    /// while nothing the select would see first (a revocation, shutdown)
    /// waits. Lanes are then handed several messages per wake, but no more
    /// than [`BURST`] each waiting: a deeper queue only holds memory.
    async fn take_ready(&mut self, consumer: &WeirConsumer, stepper: &mut Option<Stepper>) {
        let start = Instant::now();
        let queue_limit = BURST * self.spec.lanes;
        let mut ready = consumer.stream();
        for _ in 0..BURST {
            if !self.can_take()
                || self.lanes.as_ref().is_some_and(|l| l.outstanding() >= queue_limit)
                || self.intake.is_paused()
                || self.intake.handoff.is_parked()
                || self.shutdown.has_changed().unwrap_or(true)
                || start.elapsed() >= TAKE_BUDGET
            {
                return;
            }
            let Some(Some(received)) = ready.next().now_or_never() else {
                return;
            };
            if !self.received(received, stepper).await {
                return;
            }
        }
    }

    /// Keeps the stall clock: paused once the loop has taken nothing for
    /// [`STALL_PAUSE`], resumed once it takes again.
    fn stall(&mut self, can_take: bool) {
        if can_take {
            self.stalled_since = None;
            self.intake.resume();
        } else if self.stalled_since.is_none() {
            self.stalled_since = Some(Instant::now());
        }
    }

    /// A consumed message: through the step here, or handed to its lane.
    async fn take(&mut self, input: Input, stepper: &mut Option<Stepper>) {
        self.drain.read(input.partition, input.offset);
        let metrics = self.metrics;
        if let Some(lanes) = self.lanes.as_mut() {
            while let Some(fresh) = self.swaps.as_mut().and_then(|rx| rx.try_recv().ok()) {
                lanes.swap(fresh, metrics);
            }
            let place = Handled::waiting(input.partition, input.offset, &self.plugin);
            let seq = self
                .window
                .reserve(input.partition, input.offset, input.size(), place);
            lanes.dispatch(seq, input, None);
            metrics.in_flight(self.window.len());
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

    /// A lane's answer: its place in the window filled and its records
    /// sent, or its partition given up from there on.
    async fn landed(&mut self, done: Done) {
        let seq = done.seq;
        match done.step {
            Step::Handled(handled) => {
                let n = handled.records.len();
                let bytes = handled.records.iter().map(|r| r.size()).sum();
                if self.window.fill(seq, n, bytes, handled) {
                    for idx in 0..n {
                        self.send(seq, idx).await;
                    }
                }
            }
            Step::Stop(reason) => {
                self.forget_partition_from(seq);
                self.stop(reason);
            }
            Step::Interrupted => {
                self.forget_partition_from(seq);
                self.stopping |= *self.shutdown.borrow();
            }
        }
    }

    /// Nothing of `seq`'s partition from `seq` on may be stored.
    fn forget_partition_from(&mut self, seq: Seq) {
        if let Some(partition) = self.window.get_mut(seq).map(|e| e.partition) {
            self.window.forget_from(seq, |p| p == partition);
        }
    }

    fn stop(&mut self, reason: String) {
        tracing::error!(pipeline = %self.spec.name, "stopping the pipeline: {reason}");
        self.failure.get_or_insert(reason);
        self.stopping = true;
    }

    /// Puts a handled message in the window and sends its records.
    async fn push(&mut self, handled: Handled) {
        let bytes = handled.records.iter().map(|r| r.size()).sum();
        let n = handled.records.len();
        let seq = self
            .window
            .push(handled.partition, handled.offset, n, bytes, handled);
        for idx in 0..n {
            self.send(seq, idx).await;
        }
        self.metrics.in_flight(self.window.len());
    }

    /// Sends record `idx` of message `seq`.
    async fn send(&mut self, seq: Seq, idx: usize) {
        let Some(record) = self
            .window
            .get_mut(seq)
            .and_then(|e| e.item.records.get(idx))
        else {
            return;
        };
        let ticket = self.tickets.issue(seq, idx);
        if let Err(e) = record.enqueue(&self.producer, ticket).await {
            self.tickets.redeem(ticket);
            // Handled with the delivery reports, not here: no recursion.
            self.sending
                .push(Box::pin(async move { Event::Failed(seq, idx, e) }));
        }
    }

    async fn on_report(&mut self, report: Report) {
        let Some((seq, idx)) = self.tickets.redeem(report.ticket) else {
            return;
        };
        match report.result {
            Ok(()) => {
                self.window.ack(seq);
            }
            Err(e) => self.failed(seq, idx, e).await,
        }
    }

    async fn on_event(&mut self, event: Event) {
        match event {
            Event::Failed(seq, idx, e) => self.failed(seq, idx, e).await,
            Event::Resend(seq, idx) => self.send(seq, idx).await,
        }
    }

    fn resend_later(&mut self, seq: Seq, idx: usize) {
        self.sending.push(Box::pin(async move {
            tokio::time::sleep(RESEND_BACKOFF).await;
            Event::Resend(seq, idx)
        }));
    }

    /// A record was refused: sent again later, or, refused for good,
    /// handed to the policy.
    async fn failed(&mut self, seq: Seq, idx: usize, e: KafkaError) {
        let Some(entry) = self.window.get_mut(seq) else {
            return;
        };
        if entry.forgotten {
            return;
        }
        let Some(record) = entry.item.records.get(idx) else {
            return;
        };
        if permanent_refusal(&e).is_none() {
            tracing::warn!(
                pipeline = %self.spec.name, topic = %record.topic, source.partition = entry.partition, source.offset = entry.offset,
                "the broker refused a record ({e}); sending it again in {RESEND_BACKOFF:?}"
            );
            self.resend_later(seq, idx);
            return;
        }
        match refused(self.spec, self.metrics, &entry.item, record, &e) {
            Refused::Replace { record, kind, .. } => {
                entry.item.fate = Fate::DeadLettered(kind);
                entry.item.records.push(record);
                let idx = entry.item.records.len() - 1;
                self.window.expect_more(seq, 1);
                self.window.ack(seq);
                self.send(seq, idx).await;
            }
            Refused::Skip => {
                entry.item.fate = Fate::Skipped;
                self.window.ack(seq);
            }
            Refused::Stop(reason) => {
                let partition = entry.partition;
                // Nothing of this partition from here on may be stored.
                self.window.forget_from(seq, |p| p == partition);
                self.stop(reason);
            }
        }
    }

    /// Stores the offsets of the finished head of the window and counts
    /// those messages.
    fn release(&mut self) {
        let mut released = false;
        // Each partition's last finished offset, stored once: a later store
        // replaces an earlier one, so this is what storing each would leave.
        let mut last: Vec<(i32, i64)> = Vec::new();
        while let Some(done) = self.window.pop_done() {
            released = true;
            if done.forgotten {
                continue;
            }
            step::finished(self.metrics, &done.item);
            match last.iter_mut().find(|(p, _)| *p == done.partition) {
                Some(entry) => entry.1 = done.offset,
                None => last.push((done.partition, done.offset)),
            }
            self.drain.finished(done.partition, done.offset);
        }
        for (partition, offset) in last {
            if let Err(e) = self
                .consumer
                .store_offset(&self.spec.input, partition, offset)
            {
                // The partition was revoked: its new owner starts from the last commit.
                tracing::debug!(pipeline = %self.spec.name, partition, "offset not stored: {e}");
            }
        }
        if released {
            self.metrics.in_flight(self.window.len());
        }
    }

    /// Settles the window (for at most [`REVOKE_DEADLINE`]), commits, then
    /// lets the revoked partitions go.
    async fn revoke(&mut self, revoked: TopicPartitionList) {
        let deadline = Instant::now() + REVOKE_DEADLINE;
        let input = self.spec.input.clone();
        let gone = |p: i32| {
            revoked
                .elements()
                .iter()
                .any(|e| e.topic() == input && e.partition() == p)
        };
        if let Some(lanes) = &self.lanes {
            // What the lanes have not started of these partitions is the
            // next owner's; what they are doing finishes.
            lanes.interrupt(
                revoked
                    .elements()
                    .iter()
                    .filter(|e| e.topic() == input)
                    .map(|e| e.partition()),
            );
        }
        self.intake.revoked(gone);
        loop {
            self.release();
            if self.window.all_done() {
                break;
            }
            tokio::select! {
                Some(report) = self.reports.recv() => self.on_report(report).await,
                Some(event) = self.sending.next(), if !self.sending.is_empty() => self.on_event(event).await,
                done = next_done(&mut self.lanes) => self.landed(done).await,
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        self.release();
        let unfinished = self
            .window
            .iter()
            .filter(|e| !e.is_done() && gone(e.partition))
            .count();
        if unfinished > 0 {
            tracing::warn!(
                pipeline = %self.spec.name,
                "rebalance: {unfinished} messages of the revoked partitions did not finish within {REVOKE_DEADLINE:?}; giving them up uncommitted (their next owner does them again)"
            );
        }
        commit_and_release(&self.consumer, &revoked, &self.spec.name);
        self.window.forget_from(0, gone);
        self.release();
    }
}

/// Sleeps until `at`; pending forever without one.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Waiter for Loop<'_> {
    async fn wait(&mut self, d: Duration, partition: i32) -> Waited {
        let until = Instant::now() + d;
        self.intake.pause();
        let consumer = Arc::clone(&self.consumer);
        let waited = loop {
            if let Some(revoked) = self.intake.handoff.take() {
                let mine = revoked
                    .elements()
                    .iter()
                    .any(|e| e.topic() == self.spec.input && e.partition() == partition);
                self.revoke(revoked).await;
                if mine {
                    break Waited::Redo;
                }
            }
            self.release();
            let wake = tokio::select! {
                biased;
                () = self.intake.handoff.parked() => Wake::Parked,
                _ = self.shutdown.wait_for(|stop| *stop) => Wake::Shutdown(true),
                () = tokio::time::sleep_until(until) => break Waited::Elapsed,
                Some(report) = self.reports.recv() => Wake::Report(report),
                Some(event) = self.sending.next(), if !self.sending.is_empty() => Wake::Event(event),
                received = consumer.recv() => Wake::Received(received),
            };
            match wake {
                Wake::Shutdown(_) => {
                    self.stopping = true;
                    break Waited::Shutdown;
                }
                Wake::Event(event) => self.on_event(event).await,
                Wake::Report(report) => self.on_report(report).await,
                // Paused: what still arrives is held for after the wait.
                Wake::Received(received) => drop(self.intake.received(received, self.metrics)),
                // Without lanes (the loop waits only then), nothing lands.
                Wake::Parked | Wake::Landed(_) | Wake::Stalled => {}
            }
        };
        self.intake.resume();
        waited
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
