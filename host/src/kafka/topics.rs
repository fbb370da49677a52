//! Topic set-up at start: every pipeline's input, output, routes and
//! dead-letter topic must exist before it runs. With `[pipeline.topics]
//! create = true` the missing ones are created through the admin API;
//! otherwise a missing one stops the start with an error naming the
//! pipeline, the key and the topic.
//!
//! Invariants: existence is read from the cluster's metadata for all topics
//! (never a metadata request naming the topic, which a broker with
//! `auto.create.topics.enable` would answer by creating it). A topic that
//! already exists is left as it is, whatever its partitions or configs. A
//! broker that does not answer within [`PROBE_TIMEOUT`] is not waited for
//! when nothing is to be created: the check is skipped with a warning and
//! the pipelines wait for the broker as they always do; when something may
//! have to be created, weir waits for the broker first.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::producer::{BaseProducer, Producer as _};
use rdkafka::types::RDKafkaErrorCode;

use crate::config::{Kafka, Pipeline};
use crate::kafka::proxy::{LoggingContext, base_config};

/// `max.message.bytes` of a dead-letter topic weir creates, unless
/// `[pipeline.topics.config]` sets it: the dead-letter copy of any input
/// up to the broker's default limit (1 MiB), and far beyond, fits.
pub const DEAD_LETTER_MAX_MESSAGE_BYTES: &str = "8388608";

/// How long one metadata request may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a broker that does not answer is reported while waited for.
const WAIT_WARNING_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error(
        "{file}: pipeline {pipeline:?}: `{key}`: topic {topic:?} does not exist on {bootstrap}; \
         create it, or set `create = true` under [pipeline.topics]"
    )]
    Missing {
        file: String,
        pipeline: String,
        key: String,
        topic: String,
        bootstrap: String,
    },
    #[error("pipeline {pipeline:?}: cannot create topic {topic:?} (`{key}`): {reason}")]
    Create {
        pipeline: String,
        key: String,
        topic: String,
        reason: String,
    },
    #[error("cannot reach Kafka at {bootstrap} for topic set-up: {reason}")]
    Client { bootstrap: String, reason: String },
}

/// What a failed metadata request may mean with security on. Kafka answers
/// a refused SASL login with an authentication error, the same for an
/// unknown user as for a wrong password; a failed TLS handshake (a CA that
/// did not sign the broker's certificate, a certificate for another name,
/// no client certificate where the listener requires one, TLS to a
/// plaintext listener) ends the connection. librdkafka reports either as an
/// error event, which this admin client does not log: its request sees a
/// transport failure only, while the pipelines' clients log Kafka's reason
/// (`SASL authentication error: …`, `SSL handshake failed: …`). The probe
/// below polls a client of its own so that Kafka's reason is logged here
/// too, and the hint names every key that could be wrong, never a value.
fn security_hint(kafka: &Kafka) -> &'static str {
    match kafka
        .properties
        .get("security.protocol")
        .map(String::as_str)
    {
        Some("sasl_ssl") => {
            " (SASL and TLS are on: a refused login or a failed TLS handshake can look like this; \
             check kafka.security.username, kafka.security.password, kafka.security.mechanism \
             and kafka.security.ca, and that the broker's certificate names the address in brokers)"
        }
        Some("sasl_plaintext") => {
            " (SASL is on: a refused login can look like this; check kafka.security.username, \
             kafka.security.password and kafka.security.mechanism)"
        }
        Some("ssl") => {
            " (TLS is on: a failed handshake can look like this; check kafka.security.ca, \
             kafka.security.cert and kafka.security.key (a listener may require a client \
             certificate) and that the broker's certificate names the address in brokers; \
             kafka.security.protocol must match the listener's)"
        }
        _ => "",
    }
}

/// One topic a pipeline needs, with the config key that names it.
struct Need<'a> {
    pipeline: &'a Pipeline,
    key: String,
    topic: &'a str,
}

fn needs(pipelines: &[Pipeline]) -> Vec<Need<'_>> {
    let mut out = Vec::new();
    for (i, p) in pipelines.iter().enumerate() {
        out.push(Need {
            pipeline: p,
            key: format!("pipeline[{i}].input"),
            topic: &p.input,
        });
        out.push(Need {
            pipeline: p,
            key: format!("pipeline[{i}].output"),
            topic: &p.output,
        });
        for (j, r) in p.routes.iter().enumerate() {
            out.push(Need {
                pipeline: p,
                key: format!("pipeline[{i}].routes[{j}]"),
                topic: r,
            });
        }
        out.push(Need {
            pipeline: p,
            key: format!("pipeline[{i}].dead_letter"),
            topic: &p.dead_letter,
        });
    }
    out
}

/// Checks (and with `create`, makes) every pipeline's topics. `stop`
/// resolves when the user gives up waiting (a signal).
pub async fn ensure(
    file: &Path,
    kafka: &Kafka,
    bootstrap: &str,
    pipelines: &[Pipeline],
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), TopicError> {
    let client_error = |e: rdkafka::error::KafkaError| TopicError::Client {
        bootstrap: bootstrap.to_string(),
        reason: format!("{e}{}", security_hint(kafka)),
    };
    let admin: AdminClient<LoggingContext> = base_config(kafka, bootstrap)
        .create_with_context(LoggingContext::new("weir"))
        .map_err(client_error)?;
    // The admin client never serves its main queue, where librdkafka puts
    // error events (a refused login, a failed handshake): a producer used
    // only for metadata is polled, so LoggingContext logs Kafka's reason.
    let probe: BaseProducer<LoggingContext> = base_config(kafka, bootstrap)
        .create_with_context(LoggingContext::new("weir"))
        .map_err(client_error)?;
    let may_create = pipelines.iter().any(|p| p.topics.create);
    let mut stop = std::pin::pin!(stop);
    let started = Instant::now();
    let mut warned = None::<Instant>;
    let existing: BTreeSet<String> = loop {
        let probed = tokio::task::block_in_place(|| {
            let md = probe.client().fetch_metadata(None, PROBE_TIMEOUT);
            probe.poll(Duration::ZERO);
            md
        });
        match probed {
            Ok(md) => break md.topics().iter().map(|t| t.name().to_string()).collect(),
            Err(e) if !may_create => {
                tracing::warn!(
                    %bootstrap,
                    "topics not checked: Kafka did not answer within {PROBE_TIMEOUT:?} ({e}){}; \
                     the pipelines wait for it",
                    security_hint(kafka)
                );
                return Ok(());
            }
            Err(e) => {
                if warned.is_none_or(|at: Instant| at.elapsed() >= WAIT_WARNING_EVERY) {
                    tracing::warn!(
                        %bootstrap,
                        "waiting for Kafka to create the pipelines' topics ({e}; {}s so far){}",
                        started.elapsed().as_secs(),
                        security_hint(kafka)
                    );
                    warned = Some(Instant::now());
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(200)) => {}
                    () = &mut stop => return Err(client_error(e)),
                }
            }
        }
    };

    let mut to_create: Vec<&Need> = Vec::new();
    let needs = needs(pipelines);
    for need in &needs {
        if existing.contains(need.topic) || to_create.iter().any(|n| n.topic == need.topic) {
            continue;
        }
        if !need.pipeline.topics.create {
            return Err(TopicError::Missing {
                file: file.display().to_string(),
                pipeline: need.pipeline.name.clone(),
                key: need.key.clone(),
                topic: need.topic.to_string(),
                bootstrap: bootstrap.to_string(),
            });
        }
        to_create.push(need);
    }
    if to_create.is_empty() {
        return Ok(());
    }
    let new_topics: Vec<NewTopic> = to_create
        .iter()
        .map(|n| {
            let setup = &n.pipeline.topics;
            let mut t = NewTopic::new(
                n.topic,
                setup.partitions,
                TopicReplication::Fixed(setup.replication),
            );
            for (k, v) in &setup.config {
                t = t.set(k, v);
            }
            // A dead letter is its input plus weir's headers: room for them.
            if n.key.ends_with(".dead_letter") && !setup.config.contains_key("max.message.bytes") {
                t = t.set("max.message.bytes", DEAD_LETTER_MAX_MESSAGE_BYTES);
            }
            t
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(&new_topics, &options)
        .await
        .map_err(client_error)?;
    for (need, result) in to_create.iter().zip(results) {
        match result {
            Ok(_) => tracing::info!(
                pipeline = %need.pipeline.name,
                topic = need.topic,
                partitions = need.pipeline.topics.partitions,
                replication = need.pipeline.topics.replication,
                "topic created"
            ),
            // Another weir of the same group got there first.
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => {
                return Err(TopicError::Create {
                    pipeline: need.pipeline.name.clone(),
                    key: need.key.clone(),
                    topic: need.topic.to_string(),
                    reason: code.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// librdkafka's default `batch.size`.
const DEFAULT_BATCH_SIZE: usize = 1_000_000;

/// Keeps the producer's batches within the smallest `max.message.bytes`
/// of the pipeline's output topics: the broker checks that limit against
/// a whole batch, and librdkafka does not split a refused batch, so small
/// records batched past a small topic limit would all be refused as too
/// large. A `batch.size` the user set is left alone; a broker that does not
/// answer within [`PROBE_TIMEOUT`] leaves the default (and a refusal then
/// shows at once, named).
pub async fn fit_batches(
    config: &mut ClientConfig,
    kafka: &Kafka,
    bootstrap: &str,
    spec: &Pipeline,
) {
    if config.get("batch.size").is_some() {
        return;
    }
    let Some(smallest) = smallest_max_message_bytes(kafka, bootstrap, spec).await else {
        return;
    };
    if smallest < DEFAULT_BATCH_SIZE {
        tracing::info!(pipeline = %spec.name, "an output topic takes at most {smallest} bytes a batch: batch.size = {smallest}");
        config.set("batch.size", smallest.to_string());
    }
}

/// The smallest `max.message.bytes` of `spec`'s output topics, when the
/// broker tells.
async fn smallest_max_message_bytes(
    kafka: &Kafka,
    bootstrap: &str,
    spec: &Pipeline,
) -> Option<usize> {
    let admin: AdminClient<LoggingContext> = base_config(kafka, bootstrap)
        .create_with_context(LoggingContext::new("weir"))
        .ok()?;
    let topics: BTreeSet<&str> = spec.output_topics().collect();
    let resources: Vec<ResourceSpecifier<'_>> =
        topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
    // A broker that is down delays the start by at most this much.
    let options = AdminOptions::new().request_timeout(Some(PROBE_TIMEOUT));
    let described = match admin.describe_configs(&resources, &options).await {
        Ok(d) => d,
        Err(e) => {
            tracing::debug!(pipeline = %spec.name, "output topics' max.message.bytes not read: {e}");
            return None;
        }
    };
    described
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|r| {
            r.get("max.message.bytes")
                .and_then(|e| e.value.as_deref())
                .and_then(|v| v.parse::<usize>().ok())
        })
        .min()
}
