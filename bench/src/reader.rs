//! Reads a contender's output topics from the beginning on a thread of its
//! own: counts records (it reads each one anyway to time it, and unlike
//! the topics' watermarks the count leaves out its own markers), notes when
//! the first and the latest arrived, and turns latency probes into samples.
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

use crate::cluster::{self, now_micros};

/// The key of the records that show the reader is reading.
const MARKER: &[u8] = b"weir-bench:marker";

/// What the reader has seen so far.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Records other than markers.
    pub count: u64,
    /// Markers: written by the benchmark itself, see [`Reader::wait_live`].
    pub markers: usize,
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

    /// Writes a marker into every partition of `topics` and waits until
    /// the reader has read them all: from then on it reads records as they
    /// arrive, so the time of the first one is the contender's, not the
    /// reader's start-up.
    pub async fn wait_live(&self, bootstrap: &str, topics: &[(String, i32)]) -> anyhow::Result<()> {
        let producer = cluster::producer(bootstrap, "0")?;
        let mut sent = 0;
        for (topic, partitions) in topics {
            for p in 0..*partitions {
                let record: rdkafka::producer::FutureRecord<'_, [u8], [u8]> =
                    rdkafka::producer::FutureRecord::to(topic)
                        .key(MARKER)
                        .payload(&b""[..])
                        .partition(p);
                match producer.send(record, Duration::from_secs(10)).await {
                    Ok(_) => sent += 1,
                    Err((e, _)) => anyhow::bail!("marker to {topic}[{p}]: {e}"),
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let markers = self.seen.lock().unwrap_or_else(|p| p.into_inner()).markers;
            if markers >= sent {
                return Ok(());
            }
            if Instant::now() > deadline {
                anyhow::bail!("the reader saw {markers} of {sent} markers in 30 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
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
            Ok(m) if m.key() == Some(MARKER) => s.markers += 1,
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
