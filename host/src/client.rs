//! The library API of weir's Python origin, built on the proxies: a
//! [`Producer`] that validates each message with a plugin before sending it,
//! a [`Consumer`] whose [`retrieve`](Consumer::retrieve) returns one message,
//! and a [`Container`] that builds proxy then client from the config.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use weir::client::{Container, OutMessage};
//! use weir::kafka::embedded::EmbeddedBroker;
//!
//! let broker = EmbeddedBroker::start(&["greetings"], 1).unwrap();
//! let container = Container::new(weir::config::Kafka {
//!     brokers: broker.bootstrap(),
//!     ..Default::default()
//! });
//! let mut producer = container.producer("greetings", None).unwrap();
//! producer.produce(OutMessage::value(r#"{"id": 1, "text": "Hello 1"}"#)).await.unwrap();
//!
//! let consumer = container.consumer("greetings", "example-group");
//! let message = consumer.retrieve().await.unwrap();
//! assert_eq!(message.value.as_deref(), Some(br#"{"id": 1, "text": "Hello 1"}"#.as_slice()));
//! consumer.disconnect().unwrap();
//! producer.disconnect().unwrap();
//! # });
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use crate::cli::jsonl;
use crate::config::Kafka;
use crate::delivery::records::to_message;
use crate::kafka::proxy::{ConsumerProxy, ProducerProxy, consumer_config, producer_config};
use crate::kafka::record::future_record;
use crate::plugin::{Instance, Message, Outcome, World};

/// How long a send may wait for its acknowledgement.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// A record to produce.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutMessage {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl OutMessage {
    /// A record with a value and nothing else.
    pub fn value(value: impl Into<Vec<u8>>) -> Self {
        OutMessage {
            value: Some(value.into()),
            ..Default::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("the validator rejected the message ({kind}): {reason}")]
    Rejected { kind: &'static str, reason: String },
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("the producer's plugin must implement the validator world, not {0}")]
    NotAValidator(World),
}

/// Sends one message at a time to one topic, validating each first.
///
/// The validator is shared with the blocking thread that calls it, never
/// taken out: a send dropped while it validates (a timeout, a `select!`)
/// leaves it in place, and the next send waits for that call to finish.
pub struct Producer {
    proxy: ProducerProxy,
    topic: String,
    validator: Option<Arc<Mutex<Instance>>>,
}

impl Producer {
    /// `validator`, if given, must be an instance of a validator plugin.
    pub fn new(
        proxy: ProducerProxy,
        topic: impl Into<String>,
        validator: Option<Instance>,
    ) -> Result<Self, ProduceError> {
        if let Some(world) = validator.as_ref().map(|v| v.plugin().world())
            && world != World::Validator
        {
            return Err(ProduceError::NotAValidator(world));
        }
        Ok(Producer {
            proxy,
            topic: topic.into(),
            validator: validator.map(|v| Arc::new(Mutex::new(v))),
        })
    }

    /// Validates `message`, then sends it and waits for the broker's
    /// acknowledgement; returns its partition and offset.
    pub async fn produce(&mut self, message: OutMessage) -> Result<(i32, i64), ProduceError> {
        if let Some(validator) = &self.validator {
            let as_consumed = Message {
                topic: self.topic.clone(),
                partition: -1,
                offset: -1,
                timestamp: None,
                key: message.key.clone(),
                value: message.value.clone(),
                headers: message
                    .headers
                    .iter()
                    .map(|(k, v)| crate::plugin::Header {
                        key: k.clone(),
                        value: v.clone(),
                    })
                    .collect(),
            };
            // WASI's sync host calls block on tokio, which an async context
            // forbids: call from a blocking thread (any runtime flavour).
            let validator = Arc::clone(validator);
            let called = tokio::task::spawn_blocking(move || {
                // Poisoned: an earlier call panicked inside the instance;
                // refuse rather than trust it or skip validation.
                let mut validator = validator.lock().ok()?;
                Some(validator.call(&as_consumed))
            })
            .await
            .map_err(|e| ProduceError::Rejected {
                kind: "trap",
                reason: e.to_string(),
            })?;
            let outcome = called.ok_or_else(|| ProduceError::Rejected {
                kind: "trap",
                reason: "an earlier validation panicked: the validator is unusable".into(),
            })?;
            match outcome {
                Outcome::Accepted | Outcome::Outputs(_) => {}
                Outcome::Invalid(reason) => {
                    return Err(ProduceError::Rejected {
                        kind: "invalid",
                        reason,
                    });
                }
                Outcome::Failed(reason) => {
                    return Err(ProduceError::Rejected {
                        kind: "failed",
                        reason,
                    });
                }
                Outcome::Aborted(a) => {
                    return Err(ProduceError::Rejected {
                        kind: a.kind.as_str(),
                        reason: a.reason,
                    });
                }
            }
        }
        let producer = self.proxy.connect()?;
        let record = future_record(
            &self.topic,
            message.key.as_deref(),
            message.value.as_deref(),
            &message.headers,
        );
        match producer.send(record, SEND_TIMEOUT).await {
            Ok(d) => Ok((d.partition, d.offset)),
            Err((e, _)) => Err(e.into()),
        }
    }

    pub fn disconnect(&self) -> Result<(), KafkaError> {
        self.proxy.disconnect()
    }
}

/// Retrieves one message at a time from one topic in a consumer group.
pub struct Consumer {
    proxy: ConsumerProxy,
}

impl Consumer {
    pub fn new(proxy: ConsumerProxy) -> Self {
        Consumer { proxy }
    }

    /// The next message; its offset is stored for the next commit.
    pub async fn retrieve(&self) -> Result<Message, KafkaError> {
        let consumer = self.proxy.connect()?;
        let msg = consumer.recv().await?;
        let message = to_message(&msg);
        consumer.store_offset_from_message(&msg)?;
        Ok(message)
    }

    /// Commits what was retrieved and drops the connection.
    pub fn disconnect(&self) -> Result<(), KafkaError> {
        self.proxy.disconnect()
    }
}

/// Builds proxies, then the clients on them, from the `[kafka]` settings.
pub struct Container {
    kafka: Kafka,
}

impl Container {
    pub fn new(kafka: Kafka) -> Self {
        Container { kafka }
    }

    pub fn producer_proxy(&self) -> ProducerProxy {
        ProducerProxy::new(producer_config(&self.kafka, &self.kafka.brokers))
    }

    pub fn consumer_proxy(&self, topic: &str, group: &str) -> ConsumerProxy {
        ConsumerProxy::new(
            consumer_config(&self.kafka, &self.kafka.brokers),
            group,
            vec![topic.to_string()],
            group,
        )
    }

    pub fn producer(
        &self,
        topic: &str,
        validator: Option<Instance>,
    ) -> Result<Producer, ProduceError> {
        Producer::new(self.producer_proxy(), topic, validator)
    }

    pub fn consumer(&self, topic: &str, group: &str) -> Consumer {
        Consumer::new(self.consumer_proxy(topic, group))
    }
}

/// Produces `records` (a record's own `topic` wins over `default_topic`)
/// and returns the last offset written per topic and partition.
pub async fn seed(
    kafka: &Kafka,
    bootstrap: &str,
    default_topic: &str,
    records: &[jsonl::Record],
) -> anyhow::Result<HashMap<(String, i32), i64>> {
    let proxy = ProducerProxy::new(producer_config(kafka, bootstrap));
    let producer = proxy.connect()?;
    let mut last = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        let topic = r.topic.as_deref().unwrap_or(default_topic);
        let mut record = future_record(topic, r.key.as_deref(), r.value.as_deref(), &r.headers);
        if let Some(p) = r.partition {
            record = record.partition(p);
        }
        let delivery = producer
            .send(record, SEND_TIMEOUT)
            .await
            .map_err(|(e, _)| anyhow::anyhow!("seed record {} to {topic}: {e}", i + 1))?;
        let slot = last
            .entry((topic.to_string(), delivery.partition))
            .or_insert(delivery.offset);
        *slot = (*slot).max(delivery.offset);
    }
    proxy.disconnect()?;
    Ok(last)
}

/// Every record now in `topics`, read from the start to the high watermark
/// (on a transactional topic the watermark counts the commit markers too).
pub fn read_all(
    kafka: &Kafka,
    bootstrap: &str,
    topics: &[&str],
) -> anyhow::Result<BTreeMap<String, Vec<Message>>> {
    let mut config = consumer_config(kafka, bootstrap);
    config
        .set("group.id", "weir-read-all")
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = config.create()?;
    let mut assignment = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        for t in metadata.topics() {
            for p in t.partitions() {
                let (low, high) =
                    consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10))?;
                if high > low {
                    assignment.add_partition_offset(topic, p.id(), Offset::Beginning)?;
                    ends.insert((topic.to_string(), p.id()), high);
                }
            }
        }
    }
    let mut out: BTreeMap<String, Vec<Message>> =
        topics.iter().map(|t| (t.to_string(), Vec::new())).collect();
    if ends.is_empty() {
        return Ok(out);
    }
    consumer.assign(&assignment)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !ends.is_empty() && std::time::Instant::now() < deadline {
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let msg = msg?;
        let key = (msg.topic().to_string(), msg.partition());
        if ends.get(&key).is_some_and(|&high| msg.offset() + 1 >= high) {
            ends.remove(&key);
        }
        out.entry(key.0).or_default().push(to_message(&msg));
    }
    if !ends.is_empty() {
        anyhow::bail!(
            "timed out reading back {:?}",
            ends.keys().collect::<Vec<_>>()
        );
    }
    Ok(out)
}

/// A header's value as text, for printing.
pub fn header_text<'a>(m: &'a Message, key: &str) -> Option<std::borrow::Cow<'a, str>> {
    m.headers
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value.as_deref())
        .map(String::from_utf8_lossy)
}
