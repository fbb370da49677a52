//! Lanes: `lanes = N` plugin instances, each on a thread of its own, that
//! share one pipeline's messages while its loop keeps consuming, producing
//! and committing.
//!
//! Invariants: every message of one partition (`order = "partition"`) or
//! of one key (`order = "key"`; a null key is one key) goes to the same
//! lane, and a lane answers in the order it was given, so what one
//! partition or key causes is produced in input order. The loop reserves a
//! message's place in its window before handing it over, so offsets are
//! still stored in consumption order, whatever lane finishes first. Each
//! lane runs the shared [step](super::step) with a policy and a breaker of
//! its own: its waits (retry backoff, breaker pause) hold up its own keys
//! only, while the loop keeps the consumer in its group. A wait ends early
//! when shutdown comes or its partition is revoked or rewound
//! ([`Lanes::interrupt`]); a message handed over before that is answered
//! [`Step::Interrupted`] without a call.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::watch;

use crate::config::{Order, Pipeline};
use crate::delivery::records::Input;
use crate::delivery::step::{Remembered, Step, Stepper, Waited, Waiter};
use crate::delivery::window::Seq;
use crate::ops::metrics::PipelineHandle;
use crate::plugin::{Instance, LogTags};

/// How often a lane's wait looks for an interruption.
const INTERRUPT_CHECK: Duration = Duration::from_millis(50);

/// A message for a lane.
struct Job {
    seq: Seq,
    input: Input,
    /// What it becomes instead of a call (exactly-once, after an abort).
    remembered: Option<Remembered>,
    /// [`Interrupts::now`] when it was handed over.
    generation: u64,
}

/// A lane's answer for the message at `seq`.
#[derive(Debug)]
pub struct Done {
    pub seq: Seq,
    pub step: Step,
    lane: usize,
}

/// Partitions revoked or rewound, and when, so that a lane drops what it
/// was handed of them before.
#[derive(Debug, Default)]
struct Interrupts {
    generation: AtomicU64,
    at: Mutex<HashMap<i32, u64>>,
}

impl Interrupts {
    fn now(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn interrupt(&self, partitions: impl IntoIterator<Item = i32>) {
        let mut at = self.at.lock().unwrap_or_else(PoisonError::into_inner);
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        for p in partitions {
            at.insert(p, generation);
        }
    }

    /// Revoked or rewound since `generation`.
    fn since(&self, partition: i32, generation: u64) -> bool {
        let at = self.at.lock().unwrap_or_else(PoisonError::into_inner);
        at.get(&partition).is_some_and(|g| *g > generation)
    }
}

struct Lane {
    jobs: UnboundedSender<Job>,
    /// Handed over and not answered (`weir_lane_queued`).
    queued: Arc<AtomicI64>,
    swaps: UnboundedSender<Instance>,
    thread: JoinHandle<()>,
}

pub struct Lanes {
    spec: Pipeline,
    order: Order,
    lanes: Vec<Lane>,
    done: UnboundedReceiver<Done>,
    /// Answers handed over and not yet received.
    outstanding: usize,
    interrupts: Arc<Interrupts>,
}

impl Lanes {
    /// Starts `spec.lanes` lanes: `instance` on the first, fresh ones of
    /// its plugin on the others.
    pub fn start(
        spec: &Pipeline,
        instance: Instance,
        metrics: &Arc<PipelineHandle>,
        shutdown: &watch::Receiver<bool>,
    ) -> anyhow::Result<Lanes> {
        let plugin = Arc::clone(instance.plugin());
        let mut instances = vec![instance];
        for _ in 1..spec.lanes {
            instances.push(
                tokio::task::block_in_place(|| {
                    plugin.instantiate(&spec.plugin_config, &spec.limits, tags(spec, &plugin.name))
                })
                .with_context(|| format!("pipeline {:?}: cannot start its lanes", spec.name))?,
            );
        }
        let (done_tx, done) = unbounded_channel();
        let interrupts = Arc::new(Interrupts::default());
        let mut lanes = Vec::with_capacity(spec.lanes);
        let gauges = metrics.lanes(spec.lanes);
        for ((index, instance), queued) in instances.into_iter().enumerate().zip(gauges) {
            let (jobs, jobs_rx) = unbounded_channel();
            let (swaps, swaps_rx) = unbounded_channel();
            let worker = Worker {
                spec: spec.clone(),
                metrics: Arc::clone(metrics),
                shutdown: shutdown.clone(),
                interrupts: Arc::clone(&interrupts),
                done: done_tx.clone(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("weir-lane-{index}"))
                .spawn(move || worker.run(index, instance, swaps_rx, jobs_rx))
                .with_context(|| format!("pipeline {:?}: cannot start lane {index}", spec.name))?;
            lanes.push(Lane {
                jobs,
                queued,
                swaps,
                thread,
            });
        }
        Ok(Lanes {
            spec: spec.clone(),
            order: spec.order,
            lanes,
            done,
            outstanding: 0,
            interrupts,
        })
    }

    /// The lane that keeps `input` in order with its partition or key.
    fn lane_of(&self, input: &Input) -> usize {
        let n = self.lanes.len();
        match self.order {
            Order::Partition => usize::try_from(input.partition.unsigned_abs()).unwrap_or(0) % n,
            Order::Key => {
                let mut h = DefaultHasher::new();
                input.key.hash(&mut h);
                usize::try_from(h.finish() % n as u64).unwrap_or(0)
            }
        }
    }

    /// Hands `input` (whose window place is `seq`) to its lane.
    pub fn dispatch(&mut self, seq: Seq, input: Input, remembered: Option<Remembered>) {
        let lane = self.lane_of(&input);
        let job = Job {
            seq,
            input,
            remembered,
            generation: self.interrupts.now(),
        };
        if let Some(l) = self.lanes.get(lane)
            && l.jobs.send(job).is_ok()
        {
            l.queued.fetch_add(1, Ordering::Relaxed);
            self.outstanding += 1;
        } else {
            tracing::error!(pipeline = %self.spec.name, lane, "a lane has stopped; its message stays unstored");
        }
    }

    /// The next answer; pending forever when none is outstanding.
    pub async fn next(&mut self) -> Done {
        if self.outstanding == 0 {
            return std::future::pending().await;
        }
        match self.done.recv().await {
            Some(done) => {
                self.outstanding -= 1;
                if let Some(l) = self.lanes.get(done.lane) {
                    l.queued.fetch_sub(1, Ordering::Relaxed);
                }
                done
            }
            // Every lane is gone (they hold the sender until they stop).
            None => {
                self.outstanding = 0;
                std::future::pending().await
            }
        }
    }

    /// Answers handed over and not yet received.
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// The partitions were revoked or rewound: a lane's wait for one of
    /// them ends ([`Waited::Redo`]), and what it was handed of them before
    /// is answered [`Step::Interrupted`].
    pub fn interrupt(&self, partitions: impl IntoIterator<Item = i32>) {
        self.interrupts.interrupt(partitions);
    }

    /// A reloaded plugin: `fresh` to the first lane and a fresh instance
    /// of its plugin to each other one, or (one refused) none at all. Each
    /// lane swaps between two of its messages.
    pub fn swap(&self, fresh: Instance, metrics: &PipelineHandle) {
        let plugin = Arc::clone(fresh.plugin());
        let mut ready = vec![fresh];
        for _ in 1..self.lanes.len() {
            match tokio::task::block_in_place(|| {
                plugin.instantiate(
                    &self.spec.plugin_config,
                    &self.spec.limits,
                    tags(&self.spec, &plugin.name),
                )
            }) {
                Ok(i) => ready.push(i),
                Err(e) => {
                    tracing::error!(pipeline = %self.spec.name, "reload rejected: a lane's instance: {e}; the running plugin stays");
                    return;
                }
            }
        }
        for (lane, instance) in self.lanes.iter().zip(ready) {
            // A lane gone has stopped its pipeline already.
            let _ = lane.swaps.send(instance);
        }
        metrics.reloaded();
    }

    /// Lets the lanes finish what they were handed, and joins them.
    pub fn close(self) {
        let threads: Vec<_> = self.lanes.into_iter().map(|l| l.thread).collect();
        for t in threads {
            if t.join().is_err() {
                tracing::error!(pipeline = %self.spec.name, "a lane panicked");
            }
        }
    }
}

/// The lanes' next answer; pending without lanes.
pub async fn next_done(lanes: &mut Option<Lanes>) -> Done {
    match lanes {
        Some(lanes) => lanes.next().await,
        None => std::future::pending().await,
    }
}

fn tags(spec: &Pipeline, plugin: &str) -> LogTags {
    LogTags {
        pipeline: spec.name.clone(),
        plugin: plugin.to_string(),
        capture: None,
    }
}

/// What a lane's thread owns besides its instance.
struct Worker {
    spec: Pipeline,
    metrics: Arc<PipelineHandle>,
    shutdown: watch::Receiver<bool>,
    interrupts: Arc<Interrupts>,
    done: UnboundedSender<Done>,
}

impl Worker {
    /// The lane's thread: no async runtime of its own, so a plugin's
    /// synchronous WASI calls (a guest's stdout) may block on wasmtime's,
    /// and the step, whose only waits are this lane's own, runs to its end
    /// at each poll.
    fn run(
        self,
        index: usize,
        instance: Instance,
        swaps: UnboundedReceiver<Instance>,
        mut jobs: UnboundedReceiver<Job>,
    ) {
        let mut stepper = Stepper::on_lane(&self.spec, instance, Some(swaps));
        while let Some(job) = jobs.blocking_recv() {
            let (partition, seq) = (job.input.partition, job.seq);
            let step = if self.interrupts.since(partition, job.generation) {
                Step::Interrupted
            } else {
                let mut waiter = LaneWaiter {
                    shutdown: &self.shutdown,
                    interrupts: &self.interrupts,
                    generation: job.generation,
                    remembered: job.remembered,
                };
                futures_executor::block_on(stepper.step(job.input, &mut waiter, &self.metrics))
            };
            if self
                .done
                .send(Done {
                    seq,
                    step,
                    lane: index,
                })
                .is_err()
            {
                break;
            }
        }
        tracing::debug!(pipeline = %self.spec.name, lane = index, replacements = stepper.instance().replacements(), "lane stopped");
    }
}

/// A lane waits on its own thread, which nothing else needs meanwhile;
/// the loop keeps the group.
struct LaneWaiter<'a> {
    shutdown: &'a watch::Receiver<bool>,
    interrupts: &'a Interrupts,
    generation: u64,
    remembered: Option<Remembered>,
}

impl Waiter for LaneWaiter<'_> {
    async fn wait(&mut self, d: Duration, partition: i32) -> Waited {
        let until = Instant::now() + d;
        loop {
            if *self.shutdown.borrow() {
                return Waited::Shutdown;
            }
            if self.interrupts.since(partition, self.generation) {
                return Waited::Redo;
            }
            let now = Instant::now();
            if now >= until {
                return Waited::Elapsed;
            }
            std::thread::sleep((until - now).min(INTERRUPT_CHECK));
        }
    }

    fn take_remembered(&mut self, _partition: i32, _offset: i64) -> Option<Remembered> {
        self.remembered.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interruption_reaches_what_was_handed_over_before_it_only() {
        let i = Interrupts::default();
        let before = i.now();
        i.interrupt([3]);
        assert!(i.since(3, before));
        assert!(!i.since(4, before), "another partition");
        assert!(!i.since(3, i.now()), "handed over after it");
    }
}
