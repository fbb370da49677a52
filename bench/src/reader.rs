//! Reads a contender's output topics from the beginning on a thread of its
//! own: counts records (the only way to know a contender is done, as
//! tansu's watermarks are wrong), notes when the first and the latest
//! arrived, and turns latency probes into samples.
//!
//! A probe is a record whose key is `<prefix><µs since the epoch>`, the
//! moment its input was produced; the contenders copy keys through, so the
//! sample is the time from producing the input to reading the output.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{ClientConfig, Message as _, Offset, TopicPartitionList};

use crate::broker::now_micros;

/// What the reader has seen so far.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub count: u64,
    pub first: Option<Instant>,
    pub last: Option<Instant>,
    /// Probe latencies in µs, in arrival order.
    pub probes: Vec<u64>,
    pub error: Option<String>,
}

pub struct Reader {
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Reader {
    /// Starts reading every partition of `topics` (name, partition count).
    pub fn start(
        bootstrap: &str,
        topics: &[(String, i32)],
        probe_prefix: &str,
    ) -> anyhow::Result<Reader> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", "weir-bench-reader")
            .set("enable.auto.commit", "false")
            // Probes measure the contender, not how long this reader dozes.
            .set("fetch.wait.max.ms", "5")
            .create()
            .context("reader")?;
        let mut assignment = TopicPartitionList::new();
        for (topic, partitions) in topics {
            for p in 0..*partitions {
                assignment.add_partition_offset(topic, p, Offset::Beginning)?;
            }
        }
        consumer.assign(&assignment)?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let prefix = probe_prefix.as_bytes().to_vec();
        let thread = {
            let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("bench-reader".into())
                .spawn(move || read(consumer, &seen, &stop, &prefix))?
        };
        Ok(Reader {
            seen,
            stop,
            thread: Some(thread),
        })
    }

    pub fn seen(&self) -> Seen {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The count, first and last arrival, without copying the probes.
    pub fn progress(&self) -> (u64, Option<Instant>, Option<Instant>, usize) {
        let s = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        (s.count, s.first, s.last, s.probes.len())
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read(consumer: BaseConsumer, seen: &Mutex<Seen>, stop: &AtomicBool, prefix: &[u8]) {
    while !stop.load(Ordering::Relaxed) {
        let Some(result) = consumer.poll(Duration::from_millis(50)) else {
            continue;
        };
        let now = Instant::now();
        let mut s = seen.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(m) => {
                s.count += 1;
                s.first.get_or_insert(now);
                s.last = Some(now);
                if let Some(sent) = m
                    .key()
                    .and_then(|k| k.strip_prefix(prefix))
                    .and_then(|t| std::str::from_utf8(t).ok())
                    .and_then(|t| t.parse::<u64>().ok())
                {
                    s.probes.push(now_micros().saturating_sub(sent));
                }
            }
            Err(e) => {
                s.error = Some(e.to_string());
            }
        }
    }
}
