//! What weir counts, for `/metrics`, for the [`Stats`] a pipeline run
//! returns and for its log lines, and what it knows for `/health`: one
//! process-wide [`Registry`] of per-pipeline counters. Count once: all
//! three read the same counters.
//!
//! Invariants: the per-message path only touches atomics (relaxed adds and
//! stores, a fixed-bucket histogram): no lock, no allocation, no formatting,
//! no hash lookup; a run resolves its label sets (its produced topics) once,
//! when it starts. The registry's lock is taken when a pipeline starts or
//! stops, once per librdkafka statistics report and once per scrape. A
//! pipeline's counters outlive its runs (a restart under the same name keeps
//! counting), so every counter only goes up; a run's [`Stats`] are the
//! counters' growth since it started. Consumer lag and group state come from
//! librdkafka's statistics (`statistics.interval.ms`, set on consumers while
//! metrics are served), so they are as fresh as the last report.
//!
//! The counters are weir's own atomics; a scrape reads them into a
//! [`prometheus_client`] registry through a [`Collector`] and encodes that
//! in Prometheus' text format (version 0.0.4). Counter families are named
//! here without `_total`, which the encoder appends.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet, prometheus_text,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Unit;
use rdkafka::statistics::Statistics;

use crate::config::Pipeline;

/// The `Content-Type` of [`Registry::render`]: Prometheus' text format.
pub use prometheus_text::CONTENT_TYPE;

/// How often consumers report statistics while metrics are served, unless
/// `statistics.interval.ms` is set in `[kafka.properties]`.
pub const STATISTICS_INTERVAL_MS: &str = "1000";

/// Every `weir.error.kind` a dead letter can carry. The last, `other`,
/// counts a kind missing from this list, so that it shows rather than
/// vanishes; add the kind here.
pub const DEAD_LETTER_KINDS: [&str; 12] = [
    "invalid",
    "failed",
    "route",
    "trap",
    "timeout",
    "memory",
    "fuel",
    "output-limit",
    "header-not-utf8",
    "too-large",
    "refused",
    "other",
];

/// Why the producer refused a record for good. The last, `other`, counts
/// every reason not listed.
pub const REFUSAL_REASONS: [&str; 5] = [
    "too-large",
    "unknown-topic",
    "authorization",
    "invalid-record",
    "other",
];

/// `name`'s place in `list`, or the last place (`other`).
fn slot(list: &[&str], name: &str) -> usize {
    list.iter()
        .position(|k| *k == name)
        .unwrap_or(list.len() - 1)
}

/// What one pipeline run did: its counters' growth since it started
/// ([`PipelineHandle::stats`]), the numbers `/metrics` adds to its totals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub consumed: u64,
    /// Records produced to the output topic and routes (dead letters apart).
    pub produced: u64,
    /// Messages the transformer returned no output for.
    pub dropped: u64,
    /// Messages the policy skipped after their retries.
    pub skipped: u64,
    /// Calls made again after a failure.
    pub retries: u64,
    /// Times the breaker paused the pipeline.
    pub pauses: u64,
    /// Plugins swapped in by hot reload.
    pub reloads: u64,
    /// Dead-lettered messages by `weir.error.kind`; kinds with none left out.
    pub dead_lettered: BTreeMap<String, u64>,
    /// Exactly-once transactions aborted; their messages were consumed again.
    pub aborted_transactions: u64,
    /// Records the producer refused for good, by reason; reasons with none
    /// left out.
    pub refused: BTreeMap<String, u64>,
    /// Offsets of input partitions the broker delivered no message for
    /// (compacted away, transaction markers, aborted transactions).
    pub skipped_offsets: u64,
}

impl Stats {
    /// What was counted between `earlier` and `self`, two readings of the
    /// same counters.
    fn since(self, earlier: &Stats) -> Stats {
        let minus = |now: BTreeMap<String, u64>, then: &BTreeMap<String, u64>| {
            now.into_iter()
                .map(|(k, n)| {
                    let n = n.saturating_sub(then.get(&k).copied().unwrap_or(0));
                    (k, n)
                })
                .filter(|(_, n)| *n > 0)
                .collect()
        };
        Stats {
            consumed: self.consumed.saturating_sub(earlier.consumed),
            produced: self.produced.saturating_sub(earlier.produced),
            dropped: self.dropped.saturating_sub(earlier.dropped),
            skipped: self.skipped.saturating_sub(earlier.skipped),
            retries: self.retries.saturating_sub(earlier.retries),
            pauses: self.pauses.saturating_sub(earlier.pauses),
            reloads: self.reloads.saturating_sub(earlier.reloads),
            dead_lettered: minus(self.dead_lettered, &earlier.dead_lettered),
            aborted_transactions: self
                .aborted_transactions
                .saturating_sub(earlier.aborted_transactions),
            refused: minus(self.refused, &earlier.refused),
            skipped_offsets: self.skipped_offsets.saturating_sub(earlier.skipped_offsets),
        }
    }
}

/// Upper bounds of the plugin call histogram, in nanoseconds (10 µs … 1 s).
const BUCKETS_NS: [u64; 16] = [
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
];

/// A latency histogram with fixed buckets; `counts[i]` is not cumulative,
/// the last slot is `+Inf`. prometheus-client's own histogram takes a lock
/// per observation, this one does not.
#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS_NS.len() + 1],
    sum_ns: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let slot = BUCKETS_NS.partition_point(|&bound| bound < ns);
        self.counts[slot].fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Relaxed)).sum()
    }
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = self
            .counts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let bound = BUCKETS_NS
                    .get(i)
                    .map_or(f64::INFINITY, |ns| *ns as f64 / 1e9);
                (bound, c.load(Relaxed))
            })
            .collect();
        // The count read with the buckets, so that `+Inf` equals it.
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.sum_ns.load(Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// One pipeline's counters, kept for the life of the process.
pub struct PipelineMetrics {
    pub name: String,
    consumed: AtomicU64,
    /// Outputs produced, per topic; a topic first seen by a later run is
    /// added when that run starts.
    produced: Mutex<Vec<(String, Arc<AtomicU64>)>>,
    dropped: AtomicU64,
    dead_lettered: [AtomicU64; DEAD_LETTER_KINDS.len()],
    refused: [AtomicU64; REFUSAL_REASONS.len()],
    skipped: AtomicU64,
    retries: AtomicU64,
    pauses: AtomicU64,
    reloads: AtomicU64,
    aborted_transactions: AtomicU64,
    skipped_offsets: AtomicU64,
    calls: Histogram,
    in_flight: AtomicI64,
    /// Per lane, the messages handed to it and not answered yet (empty
    /// without lanes).
    lanes: Mutex<Vec<Arc<AtomicI64>>>,
    replacements: AtomicU64,
    /// Runs of this pipeline now going (0 or 1; 2 for a moment while a
    /// restarted one takes over).
    live: AtomicU64,
    /// Declared in the config but not started yet: not ready.
    expected: AtomicBool,
    /// The consumer has joined its group and holds its assignment.
    assigned: AtomicBool,
    /// `(topic, partition) → lag` from the last statistics report.
    lag: Mutex<BTreeMap<(String, i32), i64>>,
}

impl PipelineMetrics {
    fn new(name: &str) -> PipelineMetrics {
        PipelineMetrics {
            name: name.to_string(),
            consumed: AtomicU64::new(0),
            produced: Mutex::new(Vec::new()),
            dropped: AtomicU64::new(0),
            dead_lettered: Default::default(),
            refused: Default::default(),
            skipped: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            pauses: AtomicU64::new(0),
            reloads: AtomicU64::new(0),
            aborted_transactions: AtomicU64::new(0),
            skipped_offsets: AtomicU64::new(0),
            calls: Histogram::default(),
            in_flight: AtomicI64::new(0),
            lanes: Mutex::new(Vec::new()),
            replacements: AtomicU64::new(0),
            live: AtomicU64::new(0),
            expected: AtomicBool::new(false),
            assigned: AtomicBool::new(false),
            lag: Mutex::new(BTreeMap::new()),
        }
    }

    fn produced_counter(&self, topic: &str) -> Arc<AtomicU64> {
        let mut produced = self.produced.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, c)) = produced.iter().find(|(t, _)| t == topic) {
            return Arc::clone(c);
        }
        let c = Arc::new(AtomicU64::new(0));
        produced.push((topic.to_string(), Arc::clone(&c)));
        c
    }

    /// Ready: not waiting to start, and every running consumer assigned.
    pub fn is_ready(&self) -> bool {
        if self.live.load(Relaxed) > 0 {
            self.assigned.load(Relaxed)
        } else {
            !self.expected.load(Relaxed)
        }
    }
}

/// One run's view of its pipeline's counters: the produced counters of its
/// own topics resolved once, so counting an output is a scan of a few
/// strings and an atomic add, and the counters' values when it started, so
/// [`PipelineHandle::stats`] is this run's alone. Dropping it marks the run
/// as gone.
pub struct PipelineHandle {
    metrics: Arc<PipelineMetrics>,
    /// The output topic first, then the routes, each once.
    produced: Vec<(String, Arc<AtomicU64>)>,
    /// The counters when this run started.
    at_start: Stats,
}

impl PipelineHandle {
    pub fn metrics(&self) -> &PipelineMetrics {
        &self.metrics
    }

    /// What this run counted so far: every counter's growth since
    /// [`Registry::start`]. (A run of the same name overlapping this one,
    /// for a moment during a restart, counts into the same counters.)
    pub fn stats(&self) -> Stats {
        self.totals().since(&self.at_start)
    }

    /// The counters' values now, every kind and reason included.
    fn totals(&self) -> Stats {
        let m = &*self.metrics;
        let by_name = |names: &[&str], counters: &[AtomicU64]| {
            names
                .iter()
                .zip(counters)
                .map(|(name, c)| (name.to_string(), c.load(Relaxed)))
                .collect()
        };
        Stats {
            consumed: m.consumed.load(Relaxed),
            produced: self.produced.iter().map(|(_, c)| c.load(Relaxed)).sum(),
            dropped: m.dropped.load(Relaxed),
            skipped: m.skipped.load(Relaxed),
            retries: m.retries.load(Relaxed),
            pauses: m.pauses.load(Relaxed),
            reloads: m.reloads.load(Relaxed),
            dead_lettered: by_name(&DEAD_LETTER_KINDS, &m.dead_lettered),
            aborted_transactions: m.aborted_transactions.load(Relaxed),
            refused: by_name(&REFUSAL_REASONS, &m.refused),
            skipped_offsets: m.skipped_offsets.load(Relaxed),
        }
    }

    /// A message consumed from the input topic.
    pub fn consumed(&self) {
        self.metrics.consumed.fetch_add(1, Relaxed);
    }

    /// An output to `topic` (one of the pipeline's output or routes).
    pub fn produced(&self, topic: &str) {
        if let Some((_, c)) = self.produced.iter().find(|(t, _)| t == topic) {
            c.fetch_add(1, Relaxed);
        }
    }

    /// A transformer returned no output for a message.
    pub fn dropped(&self) {
        self.metrics.dropped.fetch_add(1, Relaxed);
    }

    /// A message sent to the dead-letter topic with `weir.error.kind` =
    /// `kind`, one of [`DEAD_LETTER_KINDS`] (any other counts as `other`).
    pub fn dead_lettered(&self, kind: &str) {
        self.metrics.dead_lettered[slot(&DEAD_LETTER_KINDS, kind)].fetch_add(1, Relaxed);
    }

    /// A record the producer refused for good, for `reason`, one of
    /// [`REFUSAL_REASONS`] (any other counts as `other`).
    pub fn refused(&self, reason: &str) {
        self.metrics.refused[slot(&REFUSAL_REASONS, reason)].fetch_add(1, Relaxed);
    }

    /// A failed message dropped by `on_failure.then = "skip"`.
    pub fn skipped(&self) {
        self.metrics.skipped.fetch_add(1, Relaxed);
    }

    /// `n` offsets of an input partition the broker delivered nothing for
    /// (compaction, transaction markers, aborted transactions).
    pub fn skipped_offsets(&self, n: u64) {
        if n > 0 {
            self.metrics.skipped_offsets.fetch_add(n, Relaxed);
        }
    }

    /// A plugin call made again after a failure.
    pub fn retried(&self) {
        self.metrics.retries.fetch_add(1, Relaxed);
    }

    /// The failure breaker paused the pipeline.
    pub fn paused(&self) {
        self.metrics.pauses.fetch_add(1, Relaxed);
    }

    /// A plugin swapped in by hot reload.
    pub fn reloaded(&self) {
        self.metrics.reloads.fetch_add(1, Relaxed);
    }

    /// An exactly-once transaction aborted.
    pub fn aborted_transaction(&self) {
        self.metrics.aborted_transactions.fetch_add(1, Relaxed);
    }

    /// One plugin call (validate or transform) and how long it took.
    pub fn call(&self, took: Duration) {
        self.metrics.calls.observe(took);
    }

    /// The messages now awaiting their acknowledgements.
    pub fn in_flight(&self, n: usize) {
        self.metrics
            .in_flight
            .store(i64::try_from(n).unwrap_or(i64::MAX), Relaxed);
    }

    /// This run's `n` lanes' queue gauges (see [`PipelineMetrics`]'s `lanes`).
    pub fn lanes(&self, n: usize) -> Vec<Arc<AtomicI64>> {
        let gauges: Vec<Arc<AtomicI64>> = (0..n).map(|_| Arc::new(AtomicI64::new(0))).collect();
        *self.metrics.lanes.lock().unwrap_or_else(|e| e.into_inner()) = gauges.clone();
        gauges
    }

    /// Plugin instances replaced (after a trap or a limit) `times` times.
    pub fn replaced(&self, times: u64) {
        if times > 0 {
            self.metrics.replacements.fetch_add(times, Relaxed);
        }
    }
}

impl Drop for PipelineHandle {
    fn drop(&mut self) {
        self.metrics.in_flight.store(0, Relaxed);
        self.metrics
            .lanes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        if self.metrics.live.fetch_sub(1, Relaxed) == 1 {
            self.metrics.assigned.store(false, Relaxed);
            self.metrics
                .lag
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        }
    }
}

/// Every pipeline's counters, and process-wide ones.
pub struct Registry {
    pipelines: Mutex<BTreeMap<String, Arc<PipelineMetrics>>>,
    /// Whether `/metrics` is served: consumers report statistics only then.
    serving: AtomicBool,
    pub config_reloads: AtomicU64,
    pub config_reloads_rejected: AtomicU64,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

/// The process's registry.
pub fn registry() -> &'static Registry {
    &REGISTRY
}

impl Registry {
    fn new() -> Registry {
        Registry {
            pipelines: Mutex::new(BTreeMap::new()),
            serving: AtomicBool::new(false),
            config_reloads: AtomicU64::new(0),
            config_reloads_rejected: AtomicU64::new(0),
        }
    }

    fn entry(&self, name: &str) -> Arc<PipelineMetrics> {
        let mut pipelines = self.pipelines.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(
            pipelines
                .entry(name.to_string())
                .or_insert_with(|| Arc::new(PipelineMetrics::new(name))),
        )
    }

    /// A pipeline run begins: its handle counts until dropped.
    pub fn start(&self, spec: &Pipeline) -> PipelineHandle {
        let outputs = std::iter::once(&spec.output).chain(&spec.routes);
        self.begin(&spec.name, outputs.map(String::as_str))
    }

    /// A run of `name` producing to `outputs` begins.
    fn begin<'a>(&self, name: &str, outputs: impl Iterator<Item = &'a str>) -> PipelineHandle {
        let metrics = self.entry(name);
        metrics.expected.store(false, Relaxed);
        metrics.live.fetch_add(1, Relaxed);
        let mut produced: Vec<(String, Arc<AtomicU64>)> = Vec::new();
        for topic in outputs {
            if !produced.iter().any(|(t, _)| t == topic) {
                produced.push((topic.to_string(), metrics.produced_counter(topic)));
            }
        }
        let mut handle = PipelineHandle {
            metrics,
            produced,
            at_start: Stats::default(),
        };
        handle.at_start = handle.totals();
        handle
    }

    /// Pipelines about to start: not ready until they run and are assigned.
    pub fn expect<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        for name in names {
            self.entry(name).expected.store(true, Relaxed);
        }
    }

    /// Called by the HTTP server before it accepts its first request.
    pub fn set_serving(&self) {
        self.serving.store(true, Relaxed);
    }

    pub fn is_serving(&self) -> bool {
        self.serving.load(Relaxed)
    }

    /// The pipeline's counters, if it ever ran or was expected.
    pub fn pipeline(&self, name: &str) -> Option<Arc<PipelineMetrics>> {
        self.pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    fn all(&self) -> Vec<Arc<PipelineMetrics>> {
        self.pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The pipelines not ready yet, by name; empty: ready.
    pub fn not_ready(&self) -> Vec<String> {
        self.all()
            .iter()
            .filter(|p| !p.is_ready())
            .map(|p| p.name.clone())
            .collect()
    }

    /// A librdkafka statistics report from a client owned by `owner` (a
    /// pipeline's name). Producers' reports carry no group: ignored.
    pub fn statistics(&self, owner: &str, stats: &Statistics) {
        let Some(cgrp) = &stats.cgrp else { return };
        let Some(metrics) = self.pipeline(owner) else {
            return;
        };
        // "up" and "steady": joined, and the assignment (maybe empty, for
        // a member beyond the partition count) is in place.
        let assigned = cgrp.state == "up" && cgrp.join_state == "steady";
        if metrics.live.load(Relaxed) > 0 {
            metrics.assigned.store(assigned, Relaxed);
        }
        let mut lag = BTreeMap::new();
        for (topic, t) in &stats.topics {
            for (partition, p) in &t.partitions {
                // -1 is librdkafka's internal unassigned partition; a lag
                // of -1 means not known yet.
                if *partition >= 0 && p.desired && p.consumer_lag >= 0 {
                    lag.insert((topic.clone(), *partition), p.consumer_lag);
                }
            }
        }
        *metrics.lag.lock().unwrap_or_else(|p| p.into_inner()) = lag;
    }

    /// Everything, in Prometheus' text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(Scrape {
            pipelines: self.all(),
            config_reloads: self.config_reloads.load(Relaxed),
            config_reloads_rejected: self.config_reloads_rejected.load(Relaxed),
        }));
        let mut out = String::with_capacity(8192);
        if prometheus_text::encode(&mut out, &registry).is_err() {
            // Writing to a String does not fail; an encoder's refusal would
            // be a bug here, and a scraper is better served a partial page.
            tracing::error!("/metrics: cannot encode the metrics");
        }
        out
    }
}

/// The families with one sample per pipeline: name, help, value.
type PerPipeline<T> = (&'static str, &'static str, fn(&PipelineMetrics) -> T);

const COUNTERS: [PerPipeline<u64>; 9] = [
    (
        "weir_messages_consumed",
        "Messages consumed from the pipeline's input topic.",
        |p| p.consumed.load(Relaxed),
    ),
    (
        "weir_messages_dropped",
        "Messages the transformer returned no output for.",
        |p| p.dropped.load(Relaxed),
    ),
    (
        "weir_messages_skipped",
        "Failed messages dropped by `on_failure.then = \"skip\"`.",
        |p| p.skipped.load(Relaxed),
    ),
    (
        "weir_offsets_skipped",
        "Offsets of the input partitions the broker delivered no message for (compacted away, transaction markers, aborted transactions).",
        |p| p.skipped_offsets.load(Relaxed),
    ),
    (
        "weir_plugin_retries",
        "Plugin calls made again after a failure.",
        |p| p.retries.load(Relaxed),
    ),
    (
        "weir_pipeline_pauses",
        "Times the failure breaker paused the pipeline.",
        |p| p.pauses.load(Relaxed),
    ),
    (
        "weir_instance_replacements",
        "Plugin instances replaced after a trap or a limit.",
        |p| p.replacements.load(Relaxed),
    ),
    (
        "weir_plugin_reloads",
        "Changed plugin files swapped in while running.",
        |p| p.reloads.load(Relaxed),
    ),
    (
        "weir_transactions_aborted",
        "Exactly-once transactions aborted; their messages are consumed again.",
        |p| p.aborted_transactions.load(Relaxed),
    ),
];

const GAUGES: [PerPipeline<i64>; 2] = [
    (
        "weir_in_flight",
        "Messages consumed whose outputs await the broker's acknowledgement.",
        |p| p.in_flight.load(Relaxed),
    ),
    (
        "weir_pipeline_ready",
        "1 when the pipeline's consumer has joined its group and holds its assignment.",
        |p| i64::from(p.is_ready()),
    ),
];

/// One scrape's reading of the registry, encoded by prometheus-client.
struct Scrape {
    pipelines: Vec<Arc<PipelineMetrics>>,
    config_reloads: u64,
    config_reloads_rejected: u64,
}

impl std::fmt::Debug for Scrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrape")
            .field("pipelines", &self.pipelines.len())
            .finish_non_exhaustive()
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        Info::new([("version", env!("CARGO_PKG_VERSION"))]).encode(encoder.encode_descriptor(
            "weir_build",
            "Always 1; the labels say which weir this is.",
            None,
            MetricType::Info,
        )?)?;
        for (name, help, value) in [
            (
                "weir_config_reloads",
                "Edits of the config file applied while running.",
                self.config_reloads,
            ),
            (
                "weir_config_reloads_rejected",
                "Edits of the config file refused (the running pipelines stayed as they were).",
                self.config_reloads_rejected,
            ),
        ] {
            let family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(value).encode(family)?;
        }

        for (name, help, value) in COUNTERS {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for p in &self.pipelines {
                let labels = [("pipeline", p.name.as_str())];
                ConstCounter::new(value(p)).encode(family.encode_family(&labels)?)?;
            }
        }
        for (name, help, value) in GAUGES {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for p in &self.pipelines {
                let labels = [("pipeline", p.name.as_str())];
                ConstGauge::new(value(p)).encode(family.encode_family(&labels)?)?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "weir_messages_produced",
            "Records produced to the output topic and routes (dead letters are counted apart).",
            None,
            MetricType::Counter,
        )?;
        for p in &self.pipelines {
            let produced = p.produced.lock().unwrap_or_else(|e| e.into_inner());
            for (topic, c) in produced.iter() {
                let labels = [("pipeline", p.name.as_str()), ("topic", topic.as_str())];
                ConstCounter::new(c.load(Relaxed)).encode(family.encode_family(&labels)?)?;
            }
        }

        for (name, help, label, names, counters) in [
            (
                "weir_messages_dead_lettered",
                "Messages sent to the dead-letter topic, by their weir.error.kind header.",
                "kind",
                &DEAD_LETTER_KINDS[..],
                (|p| &p.dead_lettered[..]) as fn(&PipelineMetrics) -> &[AtomicU64],
            ),
            (
                "weir_messages_refused",
                "Records the producer refused for good (not sent again), by reason.",
                "reason",
                &REFUSAL_REASONS[..],
                |p| &p.refused[..],
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for p in &self.pipelines {
                for (value, c) in names.iter().zip(counters(p)) {
                    let labels = [("pipeline", p.name.as_str()), (label, *value)];
                    ConstCounter::new(c.load(Relaxed)).encode(family.encode_family(&labels)?)?;
                }
            }
        }

        let mut family = encoder.encode_descriptor(
            "weir_plugin_call_duration",
            "Time of one plugin call (validate or transform), retries included as calls of their own.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for p in &self.pipelines {
            let labels = [("pipeline", p.name.as_str())];
            p.calls.encode(family.encode_family(&labels)?)?;
        }

        let mut family = encoder.encode_descriptor(
            "weir_lane_queued",
            "Messages handed to a lane (a plugin instance on its own thread) and not answered yet; one lane far above the others holds a slow key or partition.",
            None,
            MetricType::Gauge,
        )?;
        for p in &self.pipelines {
            let lanes = p.lanes.lock().unwrap_or_else(|e| e.into_inner());
            for (lane, n) in lanes.iter().enumerate() {
                let labels = ([("pipeline", p.name.as_str())], [("lane", lane)]);
                ConstGauge::new(n.load(Relaxed)).encode(family.encode_family(&labels)?)?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "weir_consumer_lag",
            "Messages between the pipeline's position and the partition's end, per assigned partition (librdkafka statistics).",
            None,
            MetricType::Gauge,
        )?;
        for p in &self.pipelines {
            let lag = p.lag.lock().unwrap_or_else(|e| e.into_inner());
            for ((topic, partition), n) in lag.iter() {
                let labels = (
                    [("pipeline", p.name.as_str()), ("topic", topic.as_str())],
                    [("partition", *partition)],
                );
                ConstGauge::new(*n).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The samples of a rendering, `series → value`, after checking that
    /// every sample's family has a HELP and a TYPE line before it.
    fn samples(text: &str) -> BTreeMap<String, f64> {
        let mut described = Vec::new();
        let mut samples = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                described.push(rest.split(' ').next().unwrap().to_string());
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert_eq!(described.last().map(String::as_str), Some(name), "{text}");
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let name = series.split('{').next().unwrap();
            let family = described.last().expect("a HELP line first");
            assert!(
                name == family
                    || ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|suffix| name == format!("{family}{suffix}")),
                "{line} under {family}"
            );
            let previous = samples.insert(series.to_string(), value.parse().unwrap());
            assert!(previous.is_none(), "{series} twice");
        }
        samples
    }

    #[test]
    fn histogram_buckets_are_upper_bounds() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(10));
        h.observe(Duration::from_micros(11));
        h.observe(Duration::from_secs(5));
        assert_eq!(h.counts[0].load(Relaxed), 1, "10 µs is in le=10µs");
        assert_eq!(h.counts[1].load(Relaxed), 1);
        assert_eq!(h.counts[BUCKETS_NS.len()].load(Relaxed), 1, "+Inf");
        assert_eq!(h.count(), 3);
    }

    #[test]
    fn a_run_counts_into_the_rendering_with_a_help_line_per_family() {
        let registry = Registry::new();
        let run = registry.begin("orders", ["out", "eu", "out"].into_iter());
        run.consumed();
        run.consumed();
        run.call(Duration::from_micros(30));
        run.call(Duration::from_millis(2));
        run.produced("out");
        run.produced("eu");
        run.produced("eu");
        run.produced("not-a-route");
        run.dropped();
        run.dead_lettered("invalid");
        run.dead_lettered("header-not-utf8");
        run.dead_lettered("no-such-kind");
        run.refused("too-large");
        run.refused("no-such-reason");
        run.skipped();
        run.skipped_offsets(3);
        run.retried();
        run.paused();
        run.reloaded();
        run.aborted_transaction();
        run.in_flight(4);
        run.lanes(2)[1].store(7, Relaxed);
        run.replaced(2);
        registry.config_reloads.fetch_add(1, Relaxed);

        let text = registry.render();
        let samples = samples(&text);
        let expect = [
            ("weir_config_reloads_total", 1.0),
            ("weir_config_reloads_rejected_total", 0.0),
            ("weir_messages_consumed_total{pipeline=\"orders\"}", 2.0),
            (
                "weir_messages_produced_total{pipeline=\"orders\",topic=\"out\"}",
                1.0,
            ),
            (
                "weir_messages_produced_total{pipeline=\"orders\",topic=\"eu\"}",
                2.0,
            ),
            ("weir_messages_dropped_total{pipeline=\"orders\"}", 1.0),
            (
                "weir_messages_dead_lettered_total{pipeline=\"orders\",kind=\"invalid\"}",
                1.0,
            ),
            (
                "weir_messages_dead_lettered_total{pipeline=\"orders\",kind=\"header-not-utf8\"}",
                1.0,
            ),
            (
                "weir_messages_dead_lettered_total{pipeline=\"orders\",kind=\"other\"}",
                1.0,
            ),
            (
                "weir_messages_dead_lettered_total{pipeline=\"orders\",kind=\"trap\"}",
                0.0,
            ),
            (
                "weir_messages_refused_total{pipeline=\"orders\",reason=\"too-large\"}",
                1.0,
            ),
            (
                "weir_messages_refused_total{pipeline=\"orders\",reason=\"other\"}",
                1.0,
            ),
            (
                "weir_messages_refused_total{pipeline=\"orders\",reason=\"authorization\"}",
                0.0,
            ),
            ("weir_messages_skipped_total{pipeline=\"orders\"}", 1.0),
            ("weir_offsets_skipped_total{pipeline=\"orders\"}", 3.0),
            ("weir_plugin_retries_total{pipeline=\"orders\"}", 1.0),
            ("weir_pipeline_pauses_total{pipeline=\"orders\"}", 1.0),
            ("weir_plugin_reloads_total{pipeline=\"orders\"}", 1.0),
            ("weir_transactions_aborted_total{pipeline=\"orders\"}", 1.0),
            ("weir_instance_replacements_total{pipeline=\"orders\"}", 2.0),
            ("weir_in_flight{pipeline=\"orders\"}", 4.0),
            ("weir_lane_queued{pipeline=\"orders\",lane=\"0\"}", 0.0),
            ("weir_lane_queued{pipeline=\"orders\",lane=\"1\"}", 7.0),
            ("weir_pipeline_ready{pipeline=\"orders\"}", 0.0),
            (
                "weir_plugin_call_duration_seconds_bucket{pipeline=\"orders\",le=\"1e-05\"}",
                0.0,
            ),
            (
                "weir_plugin_call_duration_seconds_bucket{pipeline=\"orders\",le=\"5e-05\"}",
                1.0,
            ),
            (
                "weir_plugin_call_duration_seconds_bucket{pipeline=\"orders\",le=\"0.0025\"}",
                2.0,
            ),
            (
                "weir_plugin_call_duration_seconds_bucket{pipeline=\"orders\",le=\"+Inf\"}",
                2.0,
            ),
            (
                "weir_plugin_call_duration_seconds_count{pipeline=\"orders\"}",
                2.0,
            ),
        ];
        for (series, value) in expect {
            assert_eq!(samples.get(series), Some(&value), "{series} in:\n{text}");
        }
        let sum = samples["weir_plugin_call_duration_seconds_sum{pipeline=\"orders\"}"];
        assert!((sum - 0.00203).abs() < 1e-12, "{sum}");
        assert_eq!(
            samples
                .keys()
                .filter(|s| s.starts_with("weir_messages_produced_total"))
                .count(),
            2,
            "one series per declared topic, none for an undeclared one:\n{text}"
        );
        for line in [
            format!(
                "weir_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            ),
            "# TYPE weir_messages_consumed_total counter".to_string(),
            "# HELP weir_messages_dropped_total Messages the transformer returned no output for."
                .to_string(),
            "# TYPE weir_plugin_call_duration_seconds histogram".to_string(),
            "# TYPE weir_in_flight gauge".to_string(),
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
    }

    #[test]
    fn a_second_run_starts_its_stats_from_zero_while_metrics_keep_the_totals() {
        let registry = Registry::new();
        let first = registry.begin("orders", ["out"].into_iter());
        for _ in 0..3 {
            first.consumed();
            first.produced("out");
        }
        first.dead_lettered("trap");
        first.refused("unknown-topic");
        first.skipped_offsets(5);
        let stats = first.stats();
        assert_eq!(
            stats,
            Stats {
                consumed: 3,
                produced: 3,
                dead_lettered: BTreeMap::from([("trap".to_string(), 1)]),
                refused: BTreeMap::from([("unknown-topic".to_string(), 1)]),
                skipped_offsets: 5,
                ..Stats::default()
            }
        );
        drop(first);

        let second = registry.begin("orders", ["out", "eu"].into_iter());
        assert_eq!(second.stats(), Stats::default(), "nothing yet in this run");
        second.consumed();
        second.produced("eu");
        second.dead_lettered("trap");
        second.dead_lettered("invalid");
        second.reloaded();
        assert_eq!(
            second.stats(),
            Stats {
                consumed: 1,
                produced: 1,
                reloads: 1,
                dead_lettered: BTreeMap::from([
                    ("invalid".to_string(), 1),
                    ("trap".to_string(), 1)
                ]),
                ..Stats::default()
            }
        );

        let samples = samples(&registry.render());
        for (series, value) in [
            ("weir_messages_consumed_total{pipeline=\"orders\"}", 4.0),
            (
                "weir_messages_produced_total{pipeline=\"orders\",topic=\"out\"}",
                3.0,
            ),
            (
                "weir_messages_produced_total{pipeline=\"orders\",topic=\"eu\"}",
                1.0,
            ),
            (
                "weir_messages_dead_lettered_total{pipeline=\"orders\",kind=\"trap\"}",
                2.0,
            ),
            (
                "weir_messages_refused_total{pipeline=\"orders\",reason=\"unknown-topic\"}",
                1.0,
            ),
            ("weir_offsets_skipped_total{pipeline=\"orders\"}", 5.0),
            ("weir_plugin_reloads_total{pipeline=\"orders\"}", 1.0),
        ] {
            assert_eq!(samples.get(series), Some(&value), "{series}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let registry = Registry::new();
        registry.expect(["a\"b\\c\nd"]);
        let text = registry.render();
        assert!(
            text.lines()
                .any(|l| l == r#"weir_messages_consumed_total{pipeline="a\"b\\c\nd"} 0"#),
            "{text}"
        );
    }

    #[test]
    fn an_expected_pipeline_is_not_ready_until_it_runs_and_is_assigned() {
        let registry = Registry::new();
        registry.expect(["orders"]);
        assert_eq!(registry.not_ready(), ["orders"]);
        let run = registry.begin("orders", std::iter::empty());
        assert_eq!(registry.not_ready(), ["orders"], "running, not assigned");
        registry
            .pipeline("orders")
            .unwrap()
            .assigned
            .store(true, Relaxed);
        assert!(registry.not_ready().is_empty());
        drop(run);
        assert!(
            registry.not_ready().is_empty(),
            "stopped, not expected: ready"
        );
    }
}
