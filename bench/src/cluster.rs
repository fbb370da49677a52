//! The broker the benchmark runs against: one Apache Kafka node started by
//! the tests' harness (`tests/all/broker.rs`, configured from
//! `docker-compose.yml`, with the benchmark JVM), its topics, and the input
//! records produced into them.
//!
//! Invariant: the benchmark knows how many records each input topic holds
//! because it produced every one of them and counted the acknowledgements
//! (probes included). Kafka's watermarks would agree; the count needs no
//! round trip and no care for the reader's markers in output topics.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::broker::{self, Kafka, Options};
use crate::child;

/// A running Kafka node; killed (and its folder removed) on drop.
pub struct Cluster {
    kafka: Kafka,
    pub bootstrap: String,
    /// "Apache Kafka 4.1.2", from the jar the broker runs.
    pub version: String,
    admin: AdminClient<DefaultClientContext>,
    /// Records produced (and acknowledged) per topic.
    counts: Mutex<HashMap<String, u64>>,
}

impl Cluster {
    /// Starts the broker and waits until it logs that it has started.
    pub async fn start() -> anyhow::Result<Cluster> {
        // The harness blocks (and panics where no jars are found).
        let kafka = tokio::task::spawn_blocking(|| {
            let dir = std::env::temp_dir().join(broker::unique("weir-bench-kafka"));
            Kafka::launch(
                dir,
                &Options {
                    benchmark: true,
                    ..Options::default()
                },
            )
        })
        .await
        .map_err(|_| anyhow!("starting Kafka failed (the reason is above)"))?
        .map_err(|e| anyhow!("{e}"))?;
        let bootstrap = kafka.bootstrap.clone();
        let admin = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()
            .context("admin client")?;
        Ok(Cluster {
            version: version(),
            kafka,
            bootstrap,
            admin,
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// How long the broker took from `java` to ready.
    pub fn start_up(&self) -> Duration {
        self.kafka.start_up()
    }

    /// The broker's CPU seconds so far (all threads) and its peak resident
    /// memory in bytes.
    pub fn usage(&self) -> (Option<f64>, Option<u64>) {
        match self.kafka.pid() {
            Some(pid) => {
                let pid = pid as libc::pid_t;
                (child::cpu_of(pid), child::peak_rss_of(pid))
            }
            None => (None, None),
        }
    }

    /// Creates `topics` with `partitions` partitions each.
    pub async fn create_topics(&self, partitions: i32, topics: &[String]) -> anyhow::Result<()> {
        let new: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        for result in self.admin.create_topics(&new, &options).await? {
            if let Err((topic, code)) = result {
                bail!("creating topic {topic}: {code}");
            }
        }
        Ok(())
    }

    /// Deletes `topics` (their log segments go a minute later, as the
    /// broker's `file.delete.delay.ms` says).
    pub async fn delete_topics(&self, topics: &[String]) -> anyhow::Result<()> {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        for result in self.admin.delete_topics(&names, &options).await? {
            if let Err((topic, code)) = result {
                bail!("deleting topic {topic}: {code}");
            }
        }
        Ok(())
    }

    /// Records in `topic` as produced by the benchmark.
    pub fn count(&self, topic: &str) -> u64 {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.get(topic).copied().unwrap_or(0)
    }

    pub fn add_count(&self, topic: &str, n: u64) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *counts.entry(topic.to_string()).or_default() += n;
    }

    /// Produces `n` JSON orders of `size` bytes to `topic` and waits for
    /// every acknowledgement.
    pub async fn fill(&self, topic: &str, n: u64, size: usize) -> anyhow::Result<()> {
        let producer = producer(&self.bootstrap, "5")?;
        let mut pending: Vec<DeliveryFuture> = Vec::new();
        for id in 0..n {
            let value = order_value(id, size);
            let fut = send(&producer, topic, None, &value).await;
            pending.push(fut);
            if pending.len() >= 20_000 {
                settle(&mut pending).await?;
            }
        }
        settle(&mut pending).await?;
        self.add_count(topic, n);
        Ok(())
    }
}

/// The broker's name and version, from its jar's name (`kafka_2.13-4.1.2.jar`).
fn version() -> String {
    let jar = std::fs::read_dir(broker::kafka_libs())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .find_map(|name| {
            name.strip_prefix("kafka_2.13-")?
                .strip_suffix(".jar")
                .filter(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
                .map(String::from)
        });
    let version = jar.as_deref().unwrap_or("(version unknown)");
    format!("Apache Kafka {version}")
}

/// A producer with acks=all, as weir's; `linger` in ms.
pub fn producer(bootstrap: &str, linger: &str) -> anyhow::Result<FutureProducer> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("linger.ms", linger)
        .set("queue.buffering.max.messages", "200000")
        .create()
        .context("producer")
}

/// Enqueues one record, waiting while the local queue is full.
pub async fn send(
    producer: &FutureProducer,
    topic: &str,
    key: Option<&[u8]>,
    value: &[u8],
) -> DeliveryFuture {
    loop {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).payload(value);
        record.key = key;
        match producer.send_result(record) {
            Ok(fut) => return fut,
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

async fn settle(pending: &mut Vec<DeliveryFuture>) -> anyhow::Result<()> {
    for fut in pending.drain(..) {
        match fut.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => bail!("the broker refused an input record: {e}"),
            Err(_) => bail!("a delivery report was lost"),
        }
    }
    Ok(())
}

/// A JSON value of exactly `size` bytes (at least the smallest one) that the
/// order schema and the Python model accept: `{"id": n, "text": "xx…"}`.
pub fn order_value(id: u64, size: usize) -> Vec<u8> {
    let head = format!("{{\"id\":{id},\"text\":\"");
    let pad = size.saturating_sub(head.len() + 2);
    let mut value = head.into_bytes();
    value.extend(std::iter::repeat_n(b'x', pad));
    value.extend_from_slice(b"\"}");
    value
}

/// Microseconds since the Unix epoch: latency probes carry it in their key,
/// read back by another process's output.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_values_have_the_asked_size_and_parse() {
        for size in [100, 1_000, 10_000] {
            let v = order_value(123_456, size);
            assert_eq!(v.len(), size);
            let text = std::str::from_utf8(&v).unwrap();
            assert!(text.starts_with("{\"id\":123456,\"text\":\"xx"), "{text}");
            assert!(text.ends_with("x\"}"), "{text}");
        }
        // Smaller than the smallest value: the smallest value.
        assert_eq!(order_value(1, 3), b"{\"id\":1,\"text\":\"\"}");
    }
}
