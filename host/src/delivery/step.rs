//! The per-message step both delivery loops share: swap in a reloaded
//! plugin, call it under the failure policy, turn the verdict into the
//! records to produce, and count what became of the message once its loop
//! says it is done.
//!
//! Invariants: every consumed record leaves the step as records to produce
//! (outputs, or its dead-letter copy), as a skip, or as a reason to stop;
//! none is lost. A wait (retry backoff, breaker pause) goes through the
//! loop's [`Waiter`], which keeps the consumer in its group. Outcomes are
//! counted when the loop finishes a message (acknowledged, or committed),
//! never when the plugin returns, so an aborted transaction counts nothing.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::KafkaError;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::config::Pipeline;
use crate::delivery::policy::{Policy, Verdict};
use crate::delivery::records::{
    self, Cause, HEADER_NOT_UTF8, Input, Record, dead_letter_of, dead_letter_unfit,
    undeclared_route,
};
use crate::kafka::record::permanent_refusal;
use crate::ops::metrics::PipelineHandle;
use crate::plugin::{Abort, Instance, Message, Outcome, Plugin};

/// How a wait asked for by the policy ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    Elapsed,
    /// Shutdown came: leave the message unstored.
    Shutdown,
    /// The message will be consumed again (its partition was revoked, or
    /// rewound by an abort): drop it unstored.
    Redo,
}

/// A delivery loop's way of waiting without leaving its group.
pub trait Waiter {
    /// Waits `d` while the consumer keeps being polled (its partitions
    /// paused), acknowledgements and revocations keep being served.
    fn wait(&mut self, d: Duration, partition: i32) -> impl Future<Output = Waited>;

    /// What a message refused for good in an aborted transaction becomes
    /// when it comes again (exactly-once only; see [`remember`]).
    fn take_remembered(&mut self, _partition: i32, _offset: i64) -> Option<Remembered> {
        None
    }
}

/// What became of a message, counted once it is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Its records are outputs, each counted by topic.
    Produced,
    /// Its one record is its dead letter of this kind.
    DeadLettered(String),
    /// A transformer returned nothing for it.
    Dropped,
    /// The policy skipped it after its retries.
    Skipped,
}

/// A message the step has handled, waiting for its records.
#[derive(Debug)]
pub struct Handled {
    pub partition: i32,
    pub offset: i64,
    pub records: Vec<Record>,
    pub fate: Fate,
    pub plugin: Arc<Plugin>,
    /// The input, kept (moved, not copied) where the records are not it: a
    /// transformer's outputs, whose refusal makes the input a dead letter.
    pub input: Option<Message>,
}

impl Handled {
    /// The place of a message handed to a lane, until its lane answers.
    pub fn waiting(partition: i32, offset: i64, plugin: &Arc<Plugin>) -> Handled {
        Handled {
            partition,
            offset,
            records: Vec::new(),
            fate: Fate::Skipped,
            plugin: Arc::clone(plugin),
            input: None,
        }
    }
}

/// The step's answer for one message.
#[derive(Debug)]
pub enum Step {
    Handled(Handled),
    /// The policy stops the pipeline; the message stays unstored.
    Stop(String),
    /// Shutdown or a revocation came during a wait: leave it unstored.
    Interrupted,
}

/// What a loop does with a record the producer refused for good.
#[derive(Debug)]
pub enum Refused {
    /// Send this dead letter (of `kind`, for `reason`) in its place.
    Replace {
        record: Record,
        kind: String,
        reason: String,
    },
    /// The policy skips the message.
    Skip,
    /// Nothing can carry it: stop the pipeline.
    Stop(String),
}

pub struct Stepper {
    spec: Pipeline,
    instance: Instance,
    swaps: Option<UnboundedReceiver<Instance>>,
    policy: Policy,
    /// On the loop's (multi-threaded) runtime, a call leaves the async
    /// context; a lane's thread is its own.
    in_place: bool,
    /// A lane's swaps are counted once for all lanes, by the loop.
    counts_reloads: bool,
}

impl Stepper {
    pub fn new(
        spec: &Pipeline,
        instance: Instance,
        swaps: Option<UnboundedReceiver<Instance>>,
    ) -> Stepper {
        Stepper {
            policy: Policy::new(&spec.on_failure, &spec.breaker),
            spec: spec.clone(),
            instance,
            swaps,
            in_place: true,
            counts_reloads: true,
        }
    }

    /// A stepper for a lane's thread (see [`lanes`](super::lanes)).
    pub fn on_lane(
        spec: &Pipeline,
        instance: Instance,
        swaps: Option<UnboundedReceiver<Instance>>,
    ) -> Stepper {
        Stepper {
            in_place: false,
            counts_reloads: false,
            ..Stepper::new(spec, instance, swaps)
        }
    }

    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// Handles one consumed record.
    pub async fn step(
        &mut self,
        input: Input,
        waiter: &mut impl Waiter,
        metrics: &PipelineHandle,
    ) -> Step {
        while let Some(fresh) = self.swaps.as_mut().and_then(|rx| rx.try_recv().ok()) {
            self.instance = fresh;
            if self.counts_reloads {
                metrics.reloaded();
            }
        }
        metrics.consumed();
        let (partition, offset) = (input.partition, input.offset);
        let plugin = Arc::clone(self.instance.plugin());
        let handled = |records: Vec<Record>, fate: Fate, input: Option<Message>| {
            Step::Handled(Handled {
                partition,
                offset,
                records,
                fate,
                plugin: Arc::clone(&plugin),
                input,
            })
        };
        let dead = |records: Vec<Record>, kind: &str| {
            handled(records, Fate::DeadLettered(kind.to_string()), None)
        };
        match waiter.take_remembered(partition, offset) {
            Some(Remembered::DeadLetter { kind, reason }) => {
                let cause = Cause {
                    kind: &kind,
                    reason: &reason,
                    plugin: &plugin.name,
                    topic: &self.spec.input,
                    partition,
                    offset,
                };
                let i = input;
                let record = records::dead_letter(
                    &self.spec,
                    &cause,
                    i.key,
                    i.value,
                    i.headers,
                    i.timestamp,
                );
                return dead(vec![record], &kind);
            }
            Some(Remembered::Skip) => {
                return handled(Vec::new(), Fate::Skipped, None);
            }
            None => {}
        }
        let message = match input.into_message() {
            Ok(m) => m,
            Err(unfit) => {
                tracing::warn!(
                    pipeline = %self.spec.name, topic = %self.spec.input, partition, offset,
                    "{}; dead-lettered as {HEADER_NOT_UTF8}", unfit.reason
                );
                let record = dead_letter_unfit(&self.spec, &plugin.name, unfit);
                return dead(vec![record], HEADER_NOT_UTF8);
            }
        };
        let (outcome, settled) = match self.call(&message, waiter, metrics).await {
            Ok(done) => done,
            Err(step) => return step,
        };
        let dead_letter = |kind: &str, reason: &str| {
            tracing::debug!(pipeline = %self.spec.name, topic = %self.spec.input, partition, offset, kind, reason, "dead-lettered");
            dead(
                vec![dead_letter_of(
                    &self.spec,
                    &plugin.name,
                    &message,
                    kind,
                    reason,
                )],
                kind,
            )
        };
        match settled {
            Settled::Skip => {
                tracing::warn!(pipeline = %self.spec.name, "{}: {}; skipped by policy", Place(&message), failure(&outcome).unwrap_or_default());
                return handled(Vec::new(), Fate::Skipped, None);
            }
            Settled::Stop(reason) => return Step::Stop(reason),
            Settled::Stands => {}
        }
        match outcome {
            Outcome::Accepted => handled(
                vec![records::accepted(&self.spec, message)],
                Fate::Produced,
                None,
            ),
            Outcome::Outputs(outputs) => {
                if let Some(bad) = undeclared_route(&self.spec, &outputs) {
                    let reason = format!(
                        "the plugin sent an output to {bad:?}, which is not a declared route of this pipeline (routes: {:?})",
                        self.spec.routes
                    );
                    return dead_letter("route", &reason);
                }
                let fate = if outputs.is_empty() {
                    Fate::Dropped
                } else {
                    Fate::Produced
                };
                let records = records::outputs(&self.spec, outputs, message.timestamp);
                handled(records, fate, Some(message))
            }
            Outcome::Invalid(reason) => dead_letter("invalid", &reason),
            Outcome::Failed(reason) => dead_letter("failed", &reason),
            Outcome::Aborted(Abort { kind, reason }) => dead_letter(kind.as_str(), &reason),
        }
    }

    /// Calls the plugin until the policy settles the message: the outcome
    /// stands (a pass, or a dead letter of it), a skip or a stop; waits
    /// through `waiter`.
    async fn call(
        &mut self,
        message: &Message,
        waiter: &mut impl Waiter,
        metrics: &PipelineHandle,
    ) -> Result<(Outcome, Settled), Step> {
        let span = tracing::debug_span!(
            "message",
            pipeline = %self.spec.name,
            topic = %message.topic,
            partition = message.partition,
            offset = message.offset,
            plugin = %self.instance.plugin().name,
        );
        let mut attempt = 0;
        loop {
            let replaced = self.instance.replacements();
            let started = std::time::Instant::now();
            // WASI's sync host calls (a guest's stdout) block on tokio:
            // leave the async context for the call.
            let instance = &mut self.instance;
            let outcome = if self.in_place {
                tokio::task::block_in_place(|| span.in_scope(|| instance.call(message)))
            } else {
                span.in_scope(|| instance.call(message))
            };
            metrics.call(started.elapsed());
            metrics.replaced(self.instance.replacements().saturating_sub(replaced));
            let reason = failure(&outcome);
            // Formatted only when something is logged: this is the per-message path.
            let place = Place(message);
            let (wait, next_attempt) = match self.policy.judge(reason.as_deref(), attempt, &place) {
                Verdict::Retry {
                    attempt: next,
                    after,
                } => {
                    metrics.retried();
                    tracing::warn!(
                        pipeline = %self.spec.name, topic = %message.topic, partition = message.partition, offset = message.offset,
                        "{place}: {}; retry {next} of {} in {after:?}", reason.as_deref().unwrap_or_default(), self.spec.on_failure.retries
                    );
                    (after, next)
                }
                Verdict::Pause { after, summary } => {
                    metrics.paused();
                    tracing::error!(
                        pipeline = %self.spec.name, topic = %message.topic, partition = message.partition, offset = message.offset,
                        "{summary}; pausing {after:?}, then trying {place} again"
                    );
                    (after, 0)
                }
                Verdict::Pass { closed } => {
                    if closed {
                        tracing::info!(pipeline = %self.spec.name, "breaker closed: {place} went through");
                    }
                    return Ok((outcome, Settled::Stands));
                }
                Verdict::DeadLetter => return Ok((outcome, Settled::Stands)),
                Verdict::Skip => return Ok((outcome, Settled::Skip)),
                Verdict::Stop(reason) => return Ok((outcome, Settled::Stop(reason))),
            };
            match waiter.wait(wait, message.partition).await {
                Waited::Elapsed => attempt = next_attempt,
                Waited::Shutdown | Waited::Redo => return Err(Step::Interrupted),
            }
        }
    }
}

/// What the policy settled for a message once no more waiting is due.
enum Settled {
    /// The outcome stands: produced, or dead-lettered as it says.
    Stands,
    Skip,
    Stop(String),
}

/// Names a message as `topic[partition]@offset` in log lines and reasons.
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

/// What an aborted transaction's refused message becomes when done again.
#[derive(Debug)]
pub enum Remembered {
    DeadLetter { kind: String, reason: String },
    Skip,
}

/// The reason, when the outcome is one the failure policy handles.
fn failure(outcome: &Outcome) -> Option<String> {
    match outcome {
        Outcome::Failed(reason) => Some(format!("failed: {reason}")),
        Outcome::Aborted(a) => Some(format!("{}: {}", a.kind.as_str(), a.reason)),
        _ => None,
    }
}

/// A record of `handled` the producer refused for good (`e`): logs and
/// counts it, then says what takes its place.
pub fn refused(
    spec: &Pipeline,
    metrics: &PipelineHandle,
    handled: &Handled,
    record: &Record,
    e: &KafkaError,
) -> Refused {
    let why = permanent_refusal(e).unwrap_or("other");
    metrics.refused(why);
    let (pipeline, partition, offset) = (&spec.name, handled.partition, handled.offset);
    tracing::error!(
        %pipeline, topic = %spec.input, partition, offset, output = %record.topic, bytes = record.size(),
        "the producer refused a record for good ({e})"
    );
    if let Fate::DeadLettered(_) = handled.fate {
        return Refused::Stop(format!(
            "the dead-letter copy of {}[{partition}]@{offset} ({} bytes) was refused by {} ({e}); it stays uncommitted",
            spec.input,
            record.size(),
            record.topic
        ));
    }
    let kind = if why == "too-large" {
        "too-large"
    } else {
        "refused"
    };
    let reason = format!(
        "the output to {} ({} bytes) was refused: {e}",
        record.topic,
        record.size()
    );
    match spec.on_failure.then {
        crate::config::FailureAction::Skip => Refused::Skip,
        crate::config::FailureAction::Stop => {
            Refused::Stop(format!("{}[{partition}]@{offset}: {reason}", spec.input))
        }
        crate::config::FailureAction::DeadLetter => {
            let plugin = &handled.plugin.name;
            let dead = match &handled.input {
                Some(message) => dead_letter_of(spec, plugin, message, kind, &reason),
                // A validator's one record is the input itself.
                None => {
                    let cause = Cause {
                        kind,
                        reason: &reason,
                        plugin,
                        topic: &spec.input,
                        partition,
                        offset,
                    };
                    records::dead_letter(
                        spec,
                        &cause,
                        record.key.clone(),
                        record.value.clone(),
                        record.headers.clone(),
                        record.timestamp,
                    )
                }
            };
            Refused::Replace {
                record: dead,
                kind: kind.to_string(),
                reason,
            }
        }
    }
}

/// For exactly-once: a record of `handled` was refused for good in a
/// transaction now aborted; when the message comes again, `refused`
/// (from [`refused`]) is what it becomes.
pub fn remember(handled: &Handled, refused: &Refused) -> Option<((i32, i64), Remembered)> {
    let remembered = match refused {
        Refused::Replace { kind, reason, .. } => Remembered::DeadLetter {
            kind: kind.clone(),
            reason: reason.clone(),
        },
        Refused::Skip => Remembered::Skip,
        Refused::Stop(_) => return None,
    };
    Some(((handled.partition, handled.offset), remembered))
}

/// Counts a message its loop has finished.
pub fn finished(m: &PipelineHandle, handled: &Handled) {
    match &handled.fate {
        Fate::Produced => handled.records.iter().for_each(|r| m.produced(&r.topic)),
        Fate::DeadLettered(kind) => m.dead_lettered(kind),
        Fate::Dropped => m.dropped(),
        Fate::Skipped => m.skipped(),
    }
}
