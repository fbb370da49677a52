//! The broker the benchmark runs against: a tansu process on 127.0.0.1 with
//! in-memory storage, its topics, and the input records produced into them.
//!
//! Invariant: the benchmark knows how many records each input topic holds
//! because it produced every one of them and counted the acknowledgements;
//! tansu's high watermarks are not trusted.

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

/// A running tansu broker; killed on drop.
pub struct Tansu {
    child: Child,
    pub bootstrap: String,
    admin: AdminClient<DefaultClientContext>,
    /// Records produced (and acknowledged) per topic.
    counts: Mutex<HashMap<String, u64>>,
}

impl Tansu {
    pub fn start(binary: &Path) -> anyhow::Result<Tansu> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(binary)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start tansu ({})", binary.display()))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("tansu did not listen on 127.0.0.1:{port} within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let bootstrap = format!("127.0.0.1:{port}");
        let admin = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()
            .context("admin client")?;
        Ok(Tansu {
            child,
            bootstrap,
            admin,
            counts: Mutex::new(HashMap::new()),
        })
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

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
