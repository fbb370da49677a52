//! What weir counts for `/metrics` and knows for `/health`: one process-wide
//! [`Registry`] of per-pipeline counters, rendered in Prometheus' text format.
//!
//! Invariants: the per-message path only touches atomics (relaxed adds and
//! stores, a fixed-bucket histogram): no lock, no allocation, no formatting.
//! The registry's lock is taken when a pipeline starts or stops, once per
//! librdkafka statistics report and once per scrape. A pipeline's counters
//! outlive its runs (a restart under the same name keeps counting), so every
//! counter only goes up. Consumer lag and group state come from librdkafka's
//! statistics (`statistics.interval.ms`, set on consumers while metrics are
//! served), so they are as fresh as the last report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use rdkafka::statistics::Statistics;

use crate::config::Pipeline;

/// The `Content-Type` of [`Registry::render`]: Prometheus' text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How often consumers report statistics while metrics are served, unless
/// `statistics.interval.ms` is set in `[kafka.properties]`.
pub const STATISTICS_INTERVAL_MS: &str = "1000";

/// Every `weir.error.kind` a dead letter can carry.
pub const DEAD_LETTER_KINDS: [&str; 8] = [
    "invalid",
    "failed",
    "route",
    "trap",
    "timeout",
    "memory",
    "fuel",
    "output-limit",
];

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
/// the last slot is `+Inf`.
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

/// One pipeline's counters, kept for the life of the process.
pub struct PipelineMetrics {
    pub name: String,
    pub consumed: AtomicU64,
    /// Outputs produced, per topic; a topic first seen by a later run is
    /// added when that run starts.
    produced: Mutex<Vec<(String, Arc<AtomicU64>)>>,
    pub dead_lettered: [AtomicU64; DEAD_LETTER_KINDS.len()],
    pub skipped: AtomicU64,
    pub retries: AtomicU64,
    pub calls: Histogram,
    pub in_flight: AtomicI64,
    pub replacements: AtomicU64,
    pub reloads: AtomicU64,
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
            dead_lettered: Default::default(),
            skipped: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            calls: Histogram::default(),
            in_flight: AtomicI64::new(0),
            replacements: AtomicU64::new(0),
            reloads: AtomicU64::new(0),
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
/// strings and an atomic add. Dropping it marks the run as gone.
pub struct PipelineHandle {
    metrics: Arc<PipelineMetrics>,
    /// The output topic first, then the routes.
    produced: Vec<(String, Arc<AtomicU64>)>,
}

impl PipelineHandle {
    pub fn metrics(&self) -> &PipelineMetrics {
        &self.metrics
    }

    pub fn consumed(&self) {
        self.metrics.consumed.fetch_add(1, Relaxed);
    }

    /// An output to `topic` (one of the pipeline's output or routes).
    pub fn produced(&self, topic: &str) {
        if let Some((_, c)) = self.produced.iter().find(|(t, _)| t == topic) {
            c.fetch_add(1, Relaxed);
        }
    }

    pub fn dead_lettered(&self, kind: &str) {
        if let Some(i) = DEAD_LETTER_KINDS.iter().position(|k| *k == kind) {
            self.metrics.dead_lettered[i].fetch_add(1, Relaxed);
        }
    }

    pub fn skipped(&self) {
        self.metrics.skipped.fetch_add(1, Relaxed);
    }

    pub fn retried(&self) {
        self.metrics.retries.fetch_add(1, Relaxed);
    }

    pub fn call(&self, took: Duration) {
        self.metrics.calls.observe(took);
    }

    pub fn in_flight(&self, n: usize) {
        self.metrics
            .in_flight
            .store(i64::try_from(n).unwrap_or(i64::MAX), Relaxed);
    }

    pub fn replaced(&self, times: u64) {
        if times > 0 {
            self.metrics.replacements.fetch_add(times, Relaxed);
        }
    }
}

impl Drop for PipelineHandle {
    fn drop(&mut self) {
        self.metrics.in_flight.store(0, Relaxed);
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

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Registry {
    pipelines: Mutex::new(BTreeMap::new()),
    serving: AtomicBool::new(false),
    config_reloads: AtomicU64::new(0),
    config_reloads_rejected: AtomicU64::new(0),
});

/// The process's registry.
pub fn registry() -> &'static Registry {
    &REGISTRY
}

impl Registry {
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
        let metrics = self.entry(&spec.name);
        metrics.expected.store(false, Relaxed);
        metrics.live.fetch_add(1, Relaxed);
        let produced = std::iter::once(&spec.output)
            .chain(&spec.routes)
            .map(|t| (t.clone(), metrics.produced_counter(t)))
            .collect();
        PipelineHandle { metrics, produced }
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
        let pipelines = self.all();
        let mut out = String::with_capacity(4096);
        family(
            &mut out,
            "weir_build_info",
            "gauge",
            "Always 1; the labels say which weir this is.",
        );
        let _ = writeln!(
            out,
            "weir_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        family(
            &mut out,
            "weir_config_reloads_total",
            "counter",
            "Edits of the config file applied while running.",
        );
        let _ = writeln!(
            out,
            "weir_config_reloads_total {}",
            self.config_reloads.load(Relaxed)
        );
        family(
            &mut out,
            "weir_config_reloads_rejected_total",
            "counter",
            "Edits of the config file refused (the running pipelines stayed as they were).",
        );
        let _ = writeln!(
            out,
            "weir_config_reloads_rejected_total {}",
            self.config_reloads_rejected.load(Relaxed)
        );

        let simple: [Simple; 7] = [
            (
                "weir_messages_consumed_total",
                "counter",
                "Messages consumed from the pipeline's input topic.",
                |p| p.consumed.load(Relaxed) as i64,
            ),
            (
                "weir_messages_skipped_total",
                "counter",
                "Failed messages dropped by `on_failure.then = \"skip\"`.",
                |p| p.skipped.load(Relaxed) as i64,
            ),
            (
                "weir_plugin_retries_total",
                "counter",
                "Plugin calls made again after a failure.",
                |p| p.retries.load(Relaxed) as i64,
            ),
            (
                "weir_in_flight",
                "gauge",
                "Messages consumed whose outputs await the broker's acknowledgement.",
                |p| p.in_flight.load(Relaxed),
            ),
            (
                "weir_instance_replacements_total",
                "counter",
                "Plugin instances replaced after a trap or a limit.",
                |p| p.replacements.load(Relaxed) as i64,
            ),
            (
                "weir_plugin_reloads_total",
                "counter",
                "Changed plugin files swapped in while running.",
                |p| p.reloads.load(Relaxed) as i64,
            ),
            (
                "weir_pipeline_ready",
                "gauge",
                "1 when the pipeline's consumer has joined its group and holds its assignment.",
                |p| i64::from(p.is_ready()),
            ),
        ];
        for (name, kind, help, value) in simple {
            family(&mut out, name, kind, help);
            for p in &pipelines {
                let _ = writeln!(
                    out,
                    "{name}{{pipeline=\"{}\"}} {}",
                    Escaped(&p.name),
                    value(p)
                );
            }
        }

        family(
            &mut out,
            "weir_messages_produced_total",
            "counter",
            "Records produced to the output topic and routes (dead letters are counted apart).",
        );
        for p in &pipelines {
            let produced = p.produced.lock().unwrap_or_else(|e| e.into_inner());
            for (topic, c) in produced.iter() {
                let _ = writeln!(
                    out,
                    "weir_messages_produced_total{{pipeline=\"{}\",topic=\"{}\"}} {}",
                    Escaped(&p.name),
                    Escaped(topic),
                    c.load(Relaxed)
                );
            }
        }

        family(
            &mut out,
            "weir_messages_dead_lettered_total",
            "counter",
            "Messages sent to the dead-letter topic, by their weir.error.kind header.",
        );
        for p in &pipelines {
            for (kind, c) in DEAD_LETTER_KINDS.iter().zip(&p.dead_lettered) {
                let _ = writeln!(
                    out,
                    "weir_messages_dead_lettered_total{{pipeline=\"{}\",kind=\"{kind}\"}} {}",
                    Escaped(&p.name),
                    c.load(Relaxed)
                );
            }
        }

        family(
            &mut out,
            "weir_plugin_call_duration_seconds",
            "histogram",
            "Time of one plugin call (validate or transform), retries included as calls of their own.",
        );
        for p in &pipelines {
            let name = Escaped(&p.name);
            let mut cumulative = 0;
            for (i, c) in p.calls.counts.iter().enumerate() {
                cumulative += c.load(Relaxed);
                let le = match BUCKETS_NS.get(i) {
                    Some(ns) => format!("{}", *ns as f64 / 1e9),
                    None => "+Inf".to_string(),
                };
                let _ = writeln!(
                    out,
                    "weir_plugin_call_duration_seconds_bucket{{pipeline=\"{name}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "weir_plugin_call_duration_seconds_sum{{pipeline=\"{name}\"}} {}",
                p.calls.sum_ns.load(Relaxed) as f64 / 1e9
            );
            let _ = writeln!(
                out,
                "weir_plugin_call_duration_seconds_count{{pipeline=\"{name}\"}} {cumulative}"
            );
        }

        family(
            &mut out,
            "weir_consumer_lag",
            "gauge",
            "Messages between the pipeline's position and the partition's end, per assigned partition (librdkafka statistics).",
        );
        for p in &pipelines {
            let lag = p.lag.lock().unwrap_or_else(|e| e.into_inner());
            for ((topic, partition), n) in lag.iter() {
                let _ = writeln!(
                    out,
                    "weir_consumer_lag{{pipeline=\"{}\",topic=\"{}\",partition=\"{partition}\"}} {n}",
                    Escaped(&p.name),
                    Escaped(topic)
                );
            }
        }
        out
    }
}

/// A one-sample-per-pipeline family: name, type, help, value.
type Simple = (
    &'static str,
    &'static str,
    &'static str,
    fn(&PipelineMetrics) -> i64,
);

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value with `\`, `"` and newlines escaped.
struct Escaped<'a>(&'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn label_values_are_escaped() {
        assert_eq!(Escaped("a\"b\\c\nd").to_string(), "a\\\"b\\\\c\\nd");
    }
}
