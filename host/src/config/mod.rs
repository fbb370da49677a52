//! The config file: parsing, `${VAR}` expansion, `@file` values, validation.
//!
//! [`Config::load`] is the only way in. It returns a [`Config`] whose paths
//! are absolute (resolved against the config file's folder), whose
//! environment variables are expanded and whose `@file` plugin values are
//! read, or a [`ConfigError`] that names the file, the line and the key.
//! Nothing here talks to Kafka or loads a plugin.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

/// What `brokers` is set to for the in-process broker.
pub const EMBEDDED: &str = "embedded";

/// A config error, located in its file.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; none when the error is not tied to a place in the file.
    pub line: Option<usize>,
    /// The dotted key, e.g. `pipeline[0].plugin`; empty for the whole file.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The whole file, as the host uses it.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    /// How long a graceful stop may wait for in-flight messages.
    pub shutdown_timeout: Duration,
    pub kafka: Kafka,
    pub pipelines: Vec<Pipeline>,
    /// Where `/metrics` and `/health` are served; none: not served.
    pub http: Option<Http>,
}

/// The operations endpoint (`[http]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Http {
    pub listen: std::net::SocketAddr,
}

/// Creating a pipeline's topics at start (`[pipeline.topics]`).
#[derive(Debug, Clone, PartialEq)]
pub struct TopicSetup {
    /// Create the input, output, routes and dead-letter topics that do not
    /// exist; off: a missing topic stops the start.
    pub create: bool,
    /// Partitions of a created topic; -1: the broker's default.
    pub partitions: i32,
    /// Replicas of a created topic; -1: the broker's default.
    pub replication: i32,
    /// Topic configs of a created topic, e.g. `retention.ms`.
    pub config: BTreeMap<String, String>,
}

impl Default for TopicSetup {
    fn default() -> Self {
        TopicSetup {
            create: false,
            partitions: -1,
            replication: -1,
            config: BTreeMap::new(),
        }
    }
}

/// Where Kafka is and how to talk to it. Its `Debug` hides secrets.
///
/// Every client gets `properties`; consumers then get `consumer` and
/// producers `producer`, which win over `properties` (`kafka::proxy`'s
/// `consumer_config` and `producer_config` apply them).
#[derive(Clone, PartialEq, Default)]
pub struct Kafka {
    /// `host:port,…`, or [`EMBEDDED`].
    pub brokers: String,
    /// librdkafka properties passed through untouched, to every client.
    pub properties: BTreeMap<String, String>,
    /// librdkafka properties for the consumers only (`[kafka.consumer]`).
    pub consumer: BTreeMap<String, String>,
    /// librdkafka properties for the producers only (`[kafka.producer]`).
    pub producer: BTreeMap<String, String>,
}

impl Kafka {
    pub fn is_embedded(&self) -> bool {
        self.brokers == EMBEDDED
    }

    /// The properties as they may be shown: secrets replaced by `<redacted>`.
    pub fn shown_properties(&self) -> BTreeMap<&str, &str> {
        shown(&self.properties)
    }

    /// `[kafka.consumer]` as it may be shown.
    pub fn shown_consumer_properties(&self) -> BTreeMap<&str, &str> {
        shown(&self.consumer)
    }

    /// `[kafka.producer]` as it may be shown.
    pub fn shown_producer_properties(&self) -> BTreeMap<&str, &str> {
        shown(&self.producer)
    }
}

fn shown(properties: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
    properties
        .iter()
        .map(|(k, v)| {
            (
                k.as_str(),
                if is_secret(k) {
                    "<redacted>"
                } else {
                    v.as_str()
                },
            )
        })
        .collect()
}

impl fmt::Debug for Kafka {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kafka")
            .field("brokers", &self.brokers)
            .field("properties", &self.shown_properties())
            .field("consumer", &self.shown_consumer_properties())
            .field("producer", &self.shown_producer_properties())
            .finish()
    }
}

/// librdkafka properties whose values are never printed.
pub fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "jaas",
        "token",
        "ssl.key.pem",
        "ssl_key",
        "private",
    ]
    .iter()
    .any(|s| key.contains(s))
}

/// One pipeline: input topic → plugin → output, routes and dead-letter topics.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub name: String,
    pub input: String,
    pub group: String,
    pub output: String,
    pub dead_letter: String,
    pub routes: Vec<String>,
    pub plugin: PathBuf,
    /// Handed to the plugin's `init`, `@file` values already read.
    pub plugin_config: Vec<(String, String)>,
    pub limits: Limits,
    pub on_failure: OnFailure,
    pub breaker: Breaker,
    /// How many messages may wait for their acknowledgements at once.
    pub max_in_flight: usize,
    /// How many bytes of records may wait for their acknowledgements at once.
    pub max_in_flight_bytes: usize,
    /// How many plugin instances, each on a thread of its own, share the work.
    pub lanes: usize,
    /// What the lanes keep in order.
    pub order: Order,
    pub topics: TopicSetup,
    /// At-least-once (the default), or exactly-once through Kafka transactions.
    pub delivery: Delivery,
    /// How exactly-once groups messages into transactions.
    pub transaction: Transaction,
}

impl Pipeline {
    /// Every topic this pipeline writes to.
    pub fn output_topics(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.output.as_str())
            .chain(self.routes.iter().map(String::as_str))
            .chain(std::iter::once(self.dead_letter.as_str()))
    }
}

/// Hard bounds on one plugin call; `plugin::limits` enforces them.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Wall-clock deadline for one `validate`/`transform` call.
    pub timeout: Duration,
    /// Deadline for `init`, which may compile a schema.
    pub init_timeout: Duration,
    /// Linear memory a plugin instance may grow to.
    pub memory: u64,
    /// Wasm fuel one call may burn; none: no fuel metering.
    pub fuel: Option<u64>,
    /// How many outputs one `transform` call may return.
    pub max_outputs: usize,
    /// How many key, value and header bytes one call's outputs may hold.
    pub max_output_bytes: u64,
}

/// The sandbox's own defaults (`plugin::limits::defaults`).
impl Default for Limits {
    fn default() -> Self {
        use crate::plugin::limits::defaults;
        Limits {
            timeout: defaults::TIMEOUT,
            init_timeout: defaults::INIT_TIMEOUT,
            memory: defaults::MEMORY,
            fuel: defaults::FUEL,
            max_outputs: defaults::MAX_OUTPUTS,
            max_output_bytes: defaults::MAX_OUTPUT_BYTES,
        }
    }
}

/// What happens to a message the plugin could not process (`failed`, a
/// trap or a limit); `invalid` is never retried.
#[derive(Debug, Clone, PartialEq)]
pub struct OnFailure {
    /// Calls after the first, each after a backoff that doubles.
    pub retries: u32,
    /// The first backoff.
    pub backoff: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
    /// Once the retries are spent.
    pub then: FailureAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureAction {
    /// To the dead-letter topic, with the error's kind.
    DeadLetter,
    /// Dropped: the offset is stored, nothing is produced.
    Skip,
    /// The pipeline stops (and weir exits non-zero) without storing the
    /// message's offset: it is processed again on the next start.
    Stop,
}

impl Default for OnFailure {
    fn default() -> Self {
        OnFailure {
            retries: 2,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            then: FailureAction::DeadLetter,
        }
    }
}

/// Stops dead-lettering a whole topic when a dependency is down: when more
/// than `failures` of the last `window` messages failed, the pipeline
/// pauses (or stops) instead of applying `then` to the next failure.
#[derive(Debug, Clone, PartialEq)]
pub struct Breaker {
    pub window: usize,
    pub failures: usize,
    /// The first pause; it doubles while failures go on, up to `max_pause`.
    pub pause: Duration,
    pub max_pause: Duration,
    pub action: BreakerAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerAction {
    Pause,
    Stop,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            window: 50,
            failures: 25,
            pause: Duration::from_secs(1),
            max_pause: Duration::from_secs(60),
            action: BreakerAction::Pause,
        }
    }
}

/// The in-flight window's bounds: librdkafka's own producer queue limit in
/// messages (`queue.buffering.max.messages`), and its consumer's prefetch
/// bound in bytes (`queued.max.messages.kbytes`). Large enough that the
/// window is not what limits throughput, on a local broker or one 20 ms
/// away (the window divided by the acknowledgement latency).
const DEFAULT_MAX_IN_FLIGHT: usize = 100_000;
const DEFAULT_MAX_IN_FLIGHT_BYTES: usize = 64 << 20;

/// At most this many lanes by default, however many cores there are.
const MAX_DEFAULT_LANES: usize = 8;

/// More lanes than this is a typo, not a plan.
const MAX_LANES: usize = 256;

/// The default `lanes`: one per core (at most [`MAX_DEFAULT_LANES`]).
pub fn default_lanes() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(MAX_DEFAULT_LANES)
}

/// What stays in order when a pipeline has several lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Each partition's messages go through one lane, in order.
    #[default]
    Partition,
    /// Messages with the same key (a null key is one key) go through one
    /// lane, in order: one partition can use every lane.
    Key,
}

/// What a pipeline promises about each input message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delivery {
    /// Its outputs are produced at least once: an offset is committed only
    /// after the broker acknowledged the outputs.
    #[default]
    AtLeastOnce,
    /// Its outputs and its offset commit go in one Kafka transaction:
    /// `read_committed` readers see them exactly once.
    ExactlyOnce,
}

/// Bounds of one exactly-once transaction: it commits when either is reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    /// Input messages per transaction.
    pub max_messages: usize,
    /// How long a transaction collects messages before it commits.
    pub max_time: Duration,
    /// The producer's `transactional.id`; when absent weir derives one from
    /// the group, the pipeline and the host name.
    pub id: Option<String>,
}

impl Default for Transaction {
    fn default() -> Self {
        Transaction {
            // A commit costs a few round trips (about 30 ms on one local
            // broker), so 500 messages a transaction capped a pipeline at
            // about 16,000 a second: time bounds a transaction first, as
            // Kafka Streams' 100 ms commit.interval.ms does.
            max_messages: 10_000,
            max_time: Duration::from_millis(100),
            id: None,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTransaction {
    max_messages: Option<Spanned<usize>>,
    /// e.g. "100ms".
    max_time: Option<Spanned<String>>,
    id: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    /// How long SIGTERM may take to finish what is in flight, e.g. "30s".
    shutdown_timeout: Option<Spanned<String>>,
    kafka: RawKafka,
    http: Option<RawHttp>,
    #[serde(default, rename = "pipeline")]
    pipelines: Vec<RawPipeline>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKafka {
    /// Comma-separated `host:port` list, or "embedded".
    brokers: Spanned<String>,
    /// Any librdkafka property, for every client.
    #[serde(default)]
    properties: BTreeMap<String, Spanned<toml::Value>>,
    /// librdkafka properties for the consumers only, after `properties`.
    #[serde(default)]
    consumer: BTreeMap<String, Spanned<toml::Value>>,
    /// librdkafka properties for the producers only, after `properties`.
    #[serde(default)]
    producer: BTreeMap<String, Spanned<toml::Value>>,
    /// TLS and SASL, mapped onto librdkafka's properties.
    security: Option<RawSecurity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    /// `host:port` for `/metrics` and `/health`.
    listen: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecurity {
    /// "plaintext", "ssl", "sasl_plaintext" or "sasl_ssl".
    protocol: Spanned<String>,
    /// "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512".
    mechanism: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    /// Usually `${VAR}`: never shown.
    password: Option<Spanned<String>>,
    /// CA certificate(s), PEM, relative to the config file.
    ca: Option<Spanned<String>>,
    /// Client certificate and key for mutual TLS, PEM.
    cert: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    key_password: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTopics {
    create: Option<bool>,
    partitions: Option<Spanned<i32>>,
    replication: Option<Spanned<i32>>,
    #[serde(default)]
    config: BTreeMap<String, Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    /// Unique among the file's pipelines; tags logs and dead letters.
    name: Spanned<String>,
    /// The topic consumed.
    input: Spanned<String>,
    /// The consumer group; defaults to `weir-<name>`.
    group: Option<Spanned<String>>,
    /// Where accepted messages and a transformer's default outputs go.
    output: Spanned<String>,
    /// Where rejected, failed and trapped messages go.
    dead_letter: Spanned<String>,
    /// Extra topics a transformer may send to.
    #[serde(default)]
    routes: Vec<Spanned<String>>,
    /// The plugin's `.wasm`, relative to the config file.
    plugin: Spanned<String>,
    /// Handed to the plugin's `init`; a value starting with `@` names a file to read.
    #[serde(default)]
    config: BTreeMap<String, Spanned<toml::Value>>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    on_failure: RawOnFailure,
    #[serde(default)]
    breaker: RawBreaker,
    /// How many messages may wait for their acknowledgements at once.
    max_in_flight: Option<Spanned<usize>>,
    /// How many bytes of records may wait for their acknowledgements, e.g. "64MiB".
    max_in_flight_bytes: Option<Spanned<String>>,
    /// Plugin instances on threads of their own (default: one per core).
    lanes: Option<Spanned<usize>>,
    /// "partition" (default) or "key": what several lanes keep in order.
    order: Option<Spanned<String>>,
    #[serde(default)]
    topics: RawTopics,
    /// "at-least-once" (default) or "exactly-once".
    delivery: Option<Spanned<String>>,
    #[serde(default)]
    transaction: RawTransaction,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    /// e.g. "100ms", "2s".
    timeout: Option<Spanned<String>>,
    init_timeout: Option<Spanned<String>>,
    /// e.g. "64MiB".
    memory: Option<Spanned<String>>,
    /// Wasm fuel per call; absent: not metered.
    fuel: Option<Spanned<u64>>,
    max_outputs: Option<Spanned<usize>>,
    /// e.g. "16MiB".
    max_output_bytes: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOnFailure {
    retries: Option<u32>,
    /// e.g. "100ms".
    backoff: Option<Spanned<String>>,
    max_backoff: Option<Spanned<String>>,
    /// "dead-letter", "skip" or "stop".
    then: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBreaker {
    window: Option<Spanned<usize>>,
    failures: Option<Spanned<usize>>,
    pause: Option<Spanned<String>>,
    max_pause: Option<Spanned<String>>,
    /// "pause" or "stop".
    action: Option<Spanned<String>>,
}

impl Config {
    /// Reads, expands and checks the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: None,
            key: String::new(),
            message: format!("cannot read the config file: {e}"),
        })?;
        Config::parse(path, &text, &|name| std::env::var(name).ok())
    }

    /// Parses `text` as if read from `path`; `env` looks up variables.
    pub fn parse(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let cx = Cx { path, text, env };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| cx.line_of(&s));
            ConfigError {
                file: path.to_path_buf(),
                line,
                key: String::new(),
                message: e.message().trim().to_string(),
            }
        })?;
        cx.build(raw)
    }
}

struct Cx<'a> {
    path: &'a Path,
    text: &'a str,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Cx<'_> {
    fn line_of(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text[..end].matches('\n').count() + 1
    }

    fn err(
        &self,
        span: &Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            file: self.path.to_path_buf(),
            line: Some(self.line_of(span)),
            key: key.into(),
            message: message.into(),
        }
    }

    fn base_dir(&self) -> PathBuf {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
    }

    /// A non-empty string with `${VAR}` and `${VAR:-default}` expanded.
    fn string(&self, value: &Spanned<String>, key: &str) -> Result<String, ConfigError> {
        let expanded =
            expand(value.get_ref(), self.env).map_err(|m| self.err(&value.span(), key, m))?;
        if expanded.trim().is_empty() {
            return Err(self.err(&value.span(), key, "must not be empty"));
        }
        Ok(expanded)
    }

    /// A scalar TOML value as text; tables and arrays are refused.
    fn scalar(&self, value: &Spanned<toml::Value>, key: &str) -> Result<String, ConfigError> {
        let text = match value.get_ref() {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(self.err(
                    &value.span(),
                    key,
                    format!(
                        "expected a string, number or boolean, found {}",
                        other.type_str()
                    ),
                ));
            }
        };
        expand(&text, self.env).map_err(|m| self.err(&value.span(), key, m))
    }

    fn build(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let brokers = self.string(&raw.kafka.brokers, "kafka.brokers")?;
        let properties = self.properties(&raw.kafka.properties, "kafka.properties")?;
        let consumer = self.properties(&raw.kafka.consumer, "kafka.consumer")?;
        let producer = self.properties(&raw.kafka.producer, "kafka.producer")?;
        let mut kafka = Kafka {
            brokers,
            properties,
            consumer,
            producer,
        };
        if let Some(security) = &raw.kafka.security {
            self.security(security, &mut kafka)?;
        }
        let http = match &raw.http {
            Some(h) => {
                let text = self.string(&h.listen, "http.listen")?;
                let listen = text.parse().map_err(|_| {
                    self.err(
                        &h.listen.span(),
                        "http.listen",
                        format!("{text:?} is not an address (try \"127.0.0.1:9464\")"),
                    )
                })?;
                Some(Http { listen })
            }
            None => None,
        };
        if raw.pipelines.is_empty() {
            return Err(ConfigError {
                file: self.path.to_path_buf(),
                line: None,
                key: "pipeline".into(),
                message: "no pipeline is declared: add at least one [[pipeline]]".into(),
            });
        }
        let mut names = BTreeSet::new();
        let mut pipelines = Vec::new();
        for (i, p) in raw.pipelines.iter().enumerate() {
            let pipeline = self.pipeline(i, p)?;
            if !names.insert(pipeline.name.clone()) {
                return Err(self.err(
                    &p.name.span(),
                    format!("pipeline[{i}].name"),
                    format!("a pipeline named {:?} is already declared", pipeline.name),
                ));
            }
            pipelines.push(pipeline);
        }
        let shutdown_timeout = match &raw.shutdown_timeout {
            Some(d) => self.duration(d, "shutdown_timeout")?,
            None => Duration::from_secs(30),
        };
        Ok(Config {
            path: self.path.to_path_buf(),
            shutdown_timeout,
            kafka,
            pipelines,
            http,
        })
    }

    /// A table of raw librdkafka properties, its values as text.
    fn properties(
        &self,
        raw: &BTreeMap<String, Spanned<toml::Value>>,
        table: &str,
    ) -> Result<BTreeMap<String, String>, ConfigError> {
        let mut properties = BTreeMap::new();
        for (name, value) in raw {
            let key = format!("{table}.\"{name}\"");
            properties.insert(name.clone(), self.scalar(value, &key)?);
        }
        Ok(properties)
    }

    fn pipeline(&self, i: usize, p: &RawPipeline) -> Result<Pipeline, ConfigError> {
        let key = |field: &str| format!("pipeline[{i}].{field}");
        let name = self.string(&p.name, &key("name"))?;
        let input = self.string(&p.input, &key("input"))?;
        let group = match &p.group {
            Some(g) => self.string(g, &key("group"))?,
            None => format!("weir-{name}"),
        };
        let output = self.string(&p.output, &key("output"))?;
        let dead_letter = self.string(&p.dead_letter, &key("dead_letter"))?;
        let mut routes = Vec::new();
        for (j, r) in p.routes.iter().enumerate() {
            routes.push(self.string(r, &key(&format!("routes[{j}]")))?);
        }
        for (topic, field, span) in std::iter::once((&output, "output", p.output.span()))
            .chain(std::iter::once((
                &dead_letter,
                "dead_letter",
                p.dead_letter.span(),
            )))
            .chain(
                routes
                    .iter()
                    .zip(&p.routes)
                    .map(|(t, r)| (t, "routes", r.span())),
            )
        {
            if *topic == input {
                return Err(self.err(
                    &span,
                    key(field),
                    format!("{topic:?} is also the input topic: the pipeline would consume its own output"),
                ));
            }
        }
        if dead_letter == output || routes.contains(&dead_letter) {
            return Err(self.err(
                &p.dead_letter.span(),
                key("dead_letter"),
                "the dead-letter topic must differ from the output topic and the routes",
            ));
        }

        let plugin = self
            .base_dir()
            .join(self.string(&p.plugin, &key("plugin"))?);
        if !plugin.is_file() {
            return Err(self.err(
                &p.plugin.span(),
                key("plugin"),
                format!("no plugin file at {}", plugin.display()),
            ));
        }
        let mut plugin_config = Vec::new();
        for (name, value) in &p.config {
            let k = key(&format!("config.{name}"));
            let text = self.scalar(value, &k)?;
            let text = match text.strip_prefix('@') {
                Some(file) => {
                    let file = self.base_dir().join(file);
                    std::fs::read_to_string(&file).map_err(|e| {
                        self.err(
                            &value.span(),
                            &k,
                            format!("cannot read {}: {e}", file.display()),
                        )
                    })?
                }
                None => text,
            };
            plugin_config.push((name.clone(), text));
        }

        let mut limits = Limits::default();
        if let Some(t) = &p.limits.timeout {
            limits.timeout = self.duration(t, &key("limits.timeout"))?;
        }
        if let Some(t) = &p.limits.init_timeout {
            limits.init_timeout = self.duration(t, &key("limits.init_timeout"))?;
        }
        if let Some(m) = &p.limits.memory {
            limits.memory = parse_size(m.get_ref())
                .map_err(|e| self.err(&m.span(), key("limits.memory"), e))?;
        }
        if let Some(f) = &p.limits.fuel {
            if *f.get_ref() == 0 {
                return Err(self.err(&f.span(), key("limits.fuel"), "must be at least 1"));
            }
            limits.fuel = Some(*f.get_ref());
        }
        if let Some(n) = &p.limits.max_outputs {
            if *n.get_ref() == 0 {
                return Err(self.err(
                    &n.span(),
                    key("limits.max_outputs"),
                    "must be at least 1 (0 would refuse every output)",
                ));
            }
            limits.max_outputs = *n.get_ref();
        }
        if let Some(m) = &p.limits.max_output_bytes {
            limits.max_output_bytes = parse_size(m.get_ref())
                .map_err(|e| self.err(&m.span(), key("limits.max_output_bytes"), e))?;
        }

        let mut on_failure = OnFailure::default();
        let f = &p.on_failure;
        if let Some(r) = f.retries {
            on_failure.retries = r;
        }
        if let Some(b) = &f.backoff {
            on_failure.backoff = self.duration(b, &key("on_failure.backoff"))?;
        }
        if let Some(b) = &f.max_backoff {
            on_failure.max_backoff = self.duration(b, &key("on_failure.max_backoff"))?;
        }
        if let Some(t) = &f.then {
            on_failure.then = match t.get_ref().as_str() {
                "dead-letter" => FailureAction::DeadLetter,
                "skip" => FailureAction::Skip,
                "stop" => FailureAction::Stop,
                other => {
                    return Err(self.err(
                        &t.span(),
                        key("on_failure.then"),
                        format!("{other:?} is not one of \"dead-letter\", \"skip\", \"stop\""),
                    ));
                }
            };
        }

        let mut breaker = Breaker::default();
        let b = &p.breaker;
        if let Some(w) = &b.window {
            breaker.window = *w.get_ref();
        }
        if let Some(n) = &b.failures {
            breaker.failures = *n.get_ref();
        }
        if breaker.window == 0 || breaker.failures >= breaker.window {
            let span = b
                .failures
                .as_ref()
                .or(b.window.as_ref())
                .map(|s| s.span())
                .unwrap_or(p.name.span());
            return Err(self.err(
                &span,
                key("breaker.failures"),
                format!(
                    "must be less than breaker.window ({} of {} can never be exceeded)",
                    breaker.failures, breaker.window
                ),
            ));
        }
        if let Some(d) = &b.pause {
            breaker.pause = self.duration(d, &key("breaker.pause"))?;
        }
        if let Some(d) = &b.max_pause {
            breaker.max_pause = self.duration(d, &key("breaker.max_pause"))?;
        }
        if let Some(a) = &b.action {
            breaker.action = match a.get_ref().as_str() {
                "pause" => BreakerAction::Pause,
                "stop" => BreakerAction::Stop,
                other => {
                    return Err(self.err(
                        &a.span(),
                        key("breaker.action"),
                        format!("{other:?} is not one of \"pause\", \"stop\""),
                    ));
                }
            };
        }

        let max_in_flight = match &p.max_in_flight {
            Some(n) if *n.get_ref() == 0 => {
                return Err(self.err(&n.span(), key("max_in_flight"), "must be at least 1"));
            }
            Some(n) => *n.get_ref(),
            None => DEFAULT_MAX_IN_FLIGHT,
        };
        let max_in_flight_bytes = match &p.max_in_flight_bytes {
            Some(m) => {
                // parse_size refuses 0 ("out of range").
                let n = parse_size(m.get_ref())
                    .map_err(|e| self.err(&m.span(), key("max_in_flight_bytes"), e))?;
                usize::try_from(n).unwrap_or(usize::MAX)
            }
            None => DEFAULT_MAX_IN_FLIGHT_BYTES,
        };
        let lanes = match &p.lanes {
            Some(n) if *n.get_ref() == 0 || *n.get_ref() > MAX_LANES => {
                return Err(self.err(
                    &n.span(),
                    key("lanes"),
                    format!("must be from 1 to {MAX_LANES}"),
                ));
            }
            Some(n) => *n.get_ref(),
            None => default_lanes(),
        };
        let order = match &p.order {
            None => Order::default(),
            Some(o) => match o.get_ref().as_str() {
                "partition" => Order::Partition,
                "key" => Order::Key,
                other => {
                    return Err(self.err(
                        &o.span(),
                        key("order"),
                        format!("{other:?} is not one of \"partition\", \"key\""),
                    ));
                }
            },
        };

        let mut topics = TopicSetup::default();
        let t = &p.topics;
        if let Some(c) = t.create {
            topics.create = c;
        }
        for (value, field, slot) in [
            (&t.partitions, "topics.partitions", &mut topics.partitions),
            (
                &t.replication,
                "topics.replication",
                &mut topics.replication,
            ),
        ] {
            if let Some(n) = value {
                if *n.get_ref() == 0 || *n.get_ref() < -1 {
                    return Err(self.err(
                        &n.span(),
                        key(field),
                        "must be at least 1 (or -1: the broker's default)",
                    ));
                }
                *slot = *n.get_ref();
            }
        }
        for (name, value) in &t.config {
            let k = key(&format!("topics.config.\"{name}\""));
            topics.config.insert(name.clone(), self.scalar(value, &k)?);
        }

        let (delivery, transaction) = self.delivery(i, p)?;

        Ok(Pipeline {
            name,
            input,
            group,
            output,
            dead_letter,
            routes,
            plugin,
            plugin_config,
            limits,
            on_failure,
            breaker,
            max_in_flight,
            max_in_flight_bytes,
            lanes,
            order,
            topics,
            delivery,
            transaction,
        })
    }

    fn delivery(&self, i: usize, p: &RawPipeline) -> Result<(Delivery, Transaction), ConfigError> {
        let key = |field: &str| format!("pipeline[{i}].{field}");
        let delivery = match &p.delivery {
            None => Delivery::AtLeastOnce,
            Some(d) => match d.get_ref().as_str() {
                "at-least-once" => Delivery::AtLeastOnce,
                "exactly-once" => Delivery::ExactlyOnce,
                other => {
                    return Err(self.err(
                        &d.span(),
                        key("delivery"),
                        format!("{other:?} is not one of \"at-least-once\", \"exactly-once\""),
                    ));
                }
            },
        };
        let mut transaction = Transaction::default();
        let t = &p.transaction;
        if let Some(n) = &t.max_messages {
            if *n.get_ref() == 0 {
                return Err(self.err(
                    &n.span(),
                    key("transaction.max_messages"),
                    "must be at least 1",
                ));
            }
            transaction.max_messages = *n.get_ref();
        }
        if let Some(d) = &t.max_time {
            transaction.max_time = self.duration(d, &key("transaction.max_time"))?;
        }
        if let Some(id) = &t.id {
            transaction.id = Some(self.string(id, &key("transaction.id"))?);
        }
        Ok((delivery, transaction))
    }

    /// Maps `[kafka.security]` onto librdkafka's properties; a property also
    /// set by hand (in any of the property tables) to something else is
    /// refused rather than silently won.
    fn security(&self, s: &RawSecurity, kafka: &mut Kafka) -> Result<(), ConfigError> {
        let protocol = self.string(&s.protocol, "kafka.security.protocol")?;
        let (sasl, tls) = match protocol.as_str() {
            "plaintext" => (false, false),
            "ssl" => (false, true),
            "sasl_plaintext" => (true, false),
            "sasl_ssl" => (true, true),
            other => {
                return Err(self.err(
                    &s.protocol.span(),
                    "kafka.security.protocol",
                    format!(
                        "{other:?} is not one of \"plaintext\", \"ssl\", \"sasl_plaintext\", \"sasl_ssl\""
                    ),
                ));
            }
        };
        let mut mapped: Vec<(&str, &Spanned<String>, String, String)> = Vec::new();
        // (field, value, librdkafka property, allowed, required, a path)
        let fields = [
            (
                "mechanism",
                &s.mechanism,
                "sasl.mechanisms",
                sasl,
                sasl,
                false,
            ),
            ("username", &s.username, "sasl.username", sasl, sasl, false),
            ("password", &s.password, "sasl.password", sasl, sasl, false),
            ("ca", &s.ca, "ssl.ca.location", tls, false, true),
            (
                "cert",
                &s.cert,
                "ssl.certificate.location",
                tls,
                false,
                true,
            ),
            ("key", &s.key, "ssl.key.location", tls, false, true),
            (
                "key_password",
                &s.key_password,
                "ssl.key.password",
                tls,
                false,
                false,
            ),
        ];
        for (field, value, property, allowed, needed, path) in fields {
            let key = format!("kafka.security.{field}");
            let Some(v) = value else {
                if needed {
                    return Err(self.err(
                        &s.protocol.span(),
                        key,
                        format!("is required with protocol {protocol:?}"),
                    ));
                }
                continue;
            };
            if !allowed {
                return Err(self.err(
                    &v.span(),
                    key,
                    format!("does not apply to protocol {protocol:?}"),
                ));
            }
            let mut text = self.string(v, &key)?;
            if path {
                let file = self.base_dir().join(&text);
                if !file.is_file() {
                    return Err(self.err(&v.span(), key, format!("no file at {}", file.display())));
                }
                text = file.display().to_string();
            }
            mapped.push((property, v, key, text));
        }
        if let Some((_, v, key, mechanism)) = mapped.iter().find(|m| m.0 == "sasl.mechanisms")
            && !["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"].contains(&mechanism.as_str())
        {
            return Err(self.err(
                &v.span(),
                key.clone(),
                format!(
                    "{mechanism:?} is not one of \"PLAIN\", \"SCRAM-SHA-256\", \"SCRAM-SHA-512\""
                ),
            ));
        }
        if let (Some(v), None) | (None, Some(v)) = (s.cert.as_ref(), s.key.as_ref()) {
            return Err(self.err(
                &v.span(),
                "kafka.security.cert",
                "mutual TLS needs both cert and key",
            ));
        }
        mapped.push((
            "security.protocol",
            &s.protocol,
            "kafka.security.protocol".into(),
            protocol.clone(),
        ));
        for (property, v, key, text) in mapped {
            for (table, set) in [
                ("kafka.properties", &kafka.properties),
                ("kafka.consumer", &kafka.consumer),
                ("kafka.producer", &kafka.producer),
            ] {
                if let Some(set) = set.get(property)
                    && *set != text
                {
                    let shown = if is_secret(property) {
                        "<redacted>"
                    } else {
                        set
                    };
                    return Err(self.err(
                        &v.span(),
                        key,
                        format!(
                            "{table}.\"{property}\" is also set (to {shown:?}): set it in one place"
                        ),
                    ));
                }
            }
            kafka.properties.insert(property.to_string(), text);
        }
        Ok(())
    }

    fn duration(&self, value: &Spanned<String>, key: &str) -> Result<Duration, ConfigError> {
        parse_duration(value.get_ref()).map_err(|e| self.err(&value.span(), key, e))
    }
}

/// Expands `${VAR}` and `${VAR:-default}`; `$$` is a literal `$`.
pub fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(body) = rest.strip_prefix("${") {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in {text:?}"))?;
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("`${{{inner}}}` is not a variable reference"));
            }
            match (env(name).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(format!(
                        "environment variable {name} is not set (give a default with ${{{name}:-value}})"
                    ));
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// "250ms", "2s", "1m", "1.5s".
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (try \"100ms\", \"2s\", \"1m\")"))?;
    let seconds = match unit.trim() {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "us" | "µs" => n / 1e6,
        _ => return Err(format!("{text:?} has no known unit (ms, s, m)")),
    };
    if seconds <= 0.0 {
        return Err(format!("{text:?} must be longer than zero"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is too long"))
}

/// "64MiB", "512KiB", "1GiB", "1000000" (bytes).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (try \"64MiB\")"))?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => {
            return Err(format!(
                "{text:?} has no known unit (B, KiB, MiB, GiB, KB, MB, GB)"
            ));
        }
    };
    n.checked_mul(scale)
        .filter(|&b| b > 0)
        .ok_or_else(|| format!("{text:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        // A folder per call: tests run in parallel and rewrite these files.
        static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("weir-config-test-{}-{call}", std::process::id()));
        std::fs::create_dir_all(dir.join("schemas")).unwrap();
        std::fs::write(dir.join("p.wasm"), b"").unwrap();
        std::fs::write(dir.join("schemas/order.json"), b"{\"type\":\"object\"}").unwrap();
        let env = |name: &str| (name == "SET").then(|| "from-env".to_string());
        Config::parse(&dir.join("weir.toml"), text, &env)
    }

    const GOOD: &str = r#"
[kafka]
brokers = "${KAFKA_BROKERS:-127.0.0.1:9092}"
[kafka.properties]
"client.id" = "${SET}"
"linger.ms" = 5

[[pipeline]]
name = "orders"
input = "orders.raw"
output = "orders.valid"
dead_letter = "orders.invalid"
routes = ["orders.eu"]
plugin = "p.wasm"
[pipeline.config]
schema = "@schemas/order.json"
plain = "x"
[pipeline.limits]
timeout = "250ms"
memory = "16MiB"
"#;

    #[test]
    fn a_full_config_resolves_paths_env_and_files() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.kafka.brokers, "127.0.0.1:9092");
        assert_eq!(c.kafka.properties["client.id"], "from-env");
        assert_eq!(c.kafka.properties["linger.ms"], "5");
        let p = &c.pipelines[0];
        assert_eq!(p.group, "weir-orders");
        assert!(p.plugin.is_absolute());
        assert_eq!(
            p.plugin_config,
            vec![
                ("plain".into(), "x".into()),
                ("schema".into(), "{\"type\":\"object\"}".into())
            ]
        );
        assert_eq!(p.limits.timeout, Duration::from_millis(250));
        assert_eq!(p.limits.memory, 16 << 20);
    }

    #[test]
    fn delivery_defaults_to_at_least_once_and_exactly_once_takes_its_transaction_bounds() {
        let p = &parse(GOOD).unwrap().pipelines[0];
        assert_eq!(p.delivery, Delivery::AtLeastOnce);
        assert_eq!(p.transaction, Transaction::default());
        let text = GOOD.replace(
            "plugin = \"p.wasm\"\n",
            "plugin = \"p.wasm\"\ndelivery = \"exactly-once\"\n[pipeline.transaction]\nmax_messages = 50\nmax_time = \"1s\"\nid = \"weir-${SET}\"\n",
        );
        let p = &parse(&text).unwrap().pipelines[0];
        assert_eq!(p.delivery, Delivery::ExactlyOnce);
        assert_eq!(p.transaction.max_messages, 50);
        assert_eq!(p.transaction.max_time, Duration::from_secs(1));
        assert_eq!(p.transaction.id.as_deref(), Some("weir-from-env"));
    }

    #[test]
    fn an_unknown_delivery_is_named_with_its_line_and_the_choices() {
        let text = GOOD.replace(
            "plugin = \"p.wasm\"\n",
            "plugin = \"p.wasm\"\ndelivery = \"exactly_once\"\n",
        );
        let e = parse(&text).unwrap_err();
        assert_eq!(e.key, "pipeline[0].delivery");
        assert_eq!(e.line, Some(15), "{e}");
        assert!(e.message.contains("\"exactly-once\""), "{e}");
        let text = GOOD.replace(
            "plugin = \"p.wasm\"\n",
            "plugin = \"p.wasm\"\n[pipeline.transaction]\nmax_messages = 0\n",
        );
        let e = parse(&text).unwrap_err();
        assert_eq!(e.key, "pipeline[0].transaction.max_messages");
    }

    #[test]
    fn an_unknown_key_names_its_line() {
        let text = GOOD.replace("routes = [", "rotes = [");
        let e = parse(&text).unwrap_err();
        assert_eq!(e.line, Some(13), "{e}");
        assert!(e.to_string().contains("rotes"), "{e}");
    }

    #[test]
    fn a_missing_variable_names_key_and_line() {
        let text = GOOD.replace("${SET}", "${UNSET}");
        let e = parse(&text).unwrap_err();
        assert_eq!(e.line, Some(5));
        assert_eq!(e.key, "kafka.properties.\"client.id\"");
        assert!(e.message.contains("UNSET"), "{e}");
    }

    #[test]
    fn output_equal_to_input_is_refused() {
        let e = parse(&GOOD.replace("\"orders.valid\"", "\"orders.raw\"")).unwrap_err();
        assert_eq!(e.key, "pipeline[0].output");
        assert_eq!(e.line, Some(11));
    }

    #[test]
    fn a_missing_plugin_and_a_missing_at_file_are_named() {
        let e = parse(&GOOD.replace("p.wasm", "nope.wasm")).unwrap_err();
        assert_eq!(e.key, "pipeline[0].plugin");
        assert!(e.message.contains("nope.wasm"));
        let e = parse(&GOOD.replace("order.json", "gone.json")).unwrap_err();
        assert_eq!(e.key, "pipeline[0].config.schema");
        assert_eq!(e.line, Some(16));
    }

    #[test]
    fn duplicate_names_are_refused() {
        let second = &GOOD[GOOD.find("[[pipeline]]").unwrap()..];
        let e = parse(&format!("{GOOD}{second}")).unwrap_err();
        assert!(e.message.contains("already declared"), "{e}");
    }

    #[test]
    fn policies_parse_and_bad_ones_are_named() {
        let text = format!(
            "{GOOD}[pipeline.on_failure]\nretries = 5\nbackoff = \"1s\"\nthen = \"skip\"\n\
             [pipeline.breaker]\nwindow = 10\nfailures = 3\naction = \"stop\"\n"
        );
        let p = &parse(&text).unwrap().pipelines[0];
        assert_eq!(p.on_failure.retries, 5);
        assert_eq!(p.on_failure.then, FailureAction::Skip);
        assert_eq!(p.breaker.action, BreakerAction::Stop);
        let e = parse(&text.replace("\"skip\"", "\"ignore\"")).unwrap_err();
        assert_eq!(e.key, "pipeline[0].on_failure.then");
        assert!(e.message.contains("ignore"), "{e}");
        let e = parse(&text.replace("failures = 3", "failures = 10")).unwrap_err();
        assert_eq!(e.key, "pipeline[0].breaker.failures");
    }

    #[test]
    fn secrets_are_never_shown() {
        let text = GOOD.replace(
            "\"linger.ms\" = 5",
            "\"sasl.password\" = \"hunter2\"\n\"sasl.oauthbearer.client.secret\" = \"s3\"",
        );
        let c = parse(&text).unwrap();
        assert_eq!(
            c.kafka.properties["sasl.password"], "hunter2",
            "still passed to librdkafka"
        );
        let shown = format!("{:?} {:?}", c.kafka, c);
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3\""),
            "{shown}"
        );
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn consumer_and_producer_tables_reach_their_side_only_and_hide_secrets() {
        let tables = "\"linger.ms\" = 5\n[kafka.consumer]\n\"fetch.wait.max.ms\" = 50\n\
                      \"client.id\" = \"weir-in\"\n[kafka.producer]\n\"compression.type\" = \"lz4\"\n\
                      \"sasl.password\" = \"hunter2\"";
        let text = GOOD.replace("\"linger.ms\" = 5", tables);
        let k = parse(&text).unwrap().kafka;
        assert_eq!(k.consumer["fetch.wait.max.ms"], "50");
        assert_eq!(k.consumer["client.id"], "weir-in");
        assert_eq!(k.properties["client.id"], "from-env");
        assert_eq!(k.producer["compression.type"], "lz4");
        assert!(!k.properties.contains_key("fetch.wait.max.ms"));
        assert!(!k.producer.contains_key("fetch.wait.max.ms"));
        assert_eq!(k.producer["sasl.password"], "hunter2", "passed through");
        let shown = format!("{k:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("<redacted>"),
            "{shown}"
        );
        assert_eq!(k.shown_producer_properties()["sasl.password"], "<redacted>");

        let e = parse(&text.replace("[kafka.producer]", "[kafka.producers]")).unwrap_err();
        assert!(e.to_string().contains("producers"), "{e}");
        let e = parse(&text.replace("= 50", "= { ms = 50 }")).unwrap_err();
        assert_eq!(e.key, "kafka.consumer.\"fetch.wait.max.ms\"");
        assert_eq!(e.line, Some(8), "{e}");
        let e = parse(&text.replace("\"lz4\"", "\"${UNSET}\"")).unwrap_err();
        assert_eq!(e.key, "kafka.producer.\"compression.type\"");
        assert_eq!(e.line, Some(11), "{e}");
    }

    #[test]
    fn security_set_again_in_a_side_table_is_refused() {
        let text = GOOD.replace(
            "\"linger.ms\" = 5",
            "\"linger.ms\" = 5\n[kafka.security]\nprotocol = \"plaintext\"\n\
             [kafka.consumer]\n\"security.protocol\" = \"ssl\"",
        );
        let e = parse(&text).unwrap_err();
        assert_eq!(e.key, "kafka.security.protocol");
        assert!(
            e.message.contains("kafka.consumer.\"security.protocol\""),
            "{e}"
        );
    }

    #[test]
    fn a_missing_dead_letter_topic_and_wrong_types_are_named() {
        let e = parse(&GOOD.replace("dead_letter = \"orders.invalid\"\n", "")).unwrap_err();
        assert!(e.message.contains("dead_letter"), "{e}");
        assert!(e.line.is_some(), "{e}");
        let e = parse(&GOOD.replace("timeout = \"250ms\"", "timeout = 250")).unwrap_err();
        assert_eq!(e.line, Some(19), "{e}");
        assert!(e.message.contains("string"), "{e}");
        let e = parse("[kafka\nbrokers = 1").unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");
    }

    #[test]
    fn max_outputs_of_zero_is_refused_with_file_line_and_key() {
        let text = GOOD.replace("memory = \"16MiB\"", "memory = \"16MiB\"\nmax_outputs = 0");
        let e = parse(&text).unwrap_err();
        assert_eq!(e.key, "pipeline[0].limits.max_outputs");
        assert_eq!(e.line, Some(21), "{e}");
        assert!(e.file.ends_with("weir.toml"), "{e}");
        assert!(e.message.contains("at least 1"), "{e}");
        let text = GOOD.replace("memory = \"16MiB\"", "memory = \"16MiB\"\nmax_outputs = 1");
        assert_eq!(parse(&text).unwrap().pipelines[0].limits.max_outputs, 1);
    }

    #[test]
    fn lanes_order_and_the_windows_byte_bound_are_read_and_checked() {
        let p = &parse(GOOD).unwrap().pipelines[0];
        assert_eq!(p.lanes, default_lanes());
        assert!((1..=MAX_DEFAULT_LANES).contains(&p.lanes));
        assert_eq!(p.order, Order::Partition);
        assert_eq!(p.max_in_flight, DEFAULT_MAX_IN_FLIGHT);
        assert_eq!(p.max_in_flight_bytes, DEFAULT_MAX_IN_FLIGHT_BYTES);
        let with = |keys: &str| {
            GOOD.replace(
                "plugin = \"p.wasm\"\n",
                &format!("plugin = \"p.wasm\"\n{keys}\n"),
            )
        };
        let p = &parse(&with(
            "lanes = 4\norder = \"key\"\nmax_in_flight_bytes = \"8MiB\"",
        ))
        .unwrap()
        .pipelines[0];
        assert_eq!(
            (p.lanes, p.order, p.max_in_flight_bytes),
            (4, Order::Key, 8 << 20)
        );
        for (keys, key, says) in [
            ("lanes = 0", "pipeline[0].lanes", "from 1 to 256"),
            ("lanes = 1000", "pipeline[0].lanes", "from 1 to 256"),
            (
                "order = \"random\"",
                "pipeline[0].order",
                "\"partition\", \"key\"",
            ),
            (
                "max_in_flight_bytes = \"0\"",
                "pipeline[0].max_in_flight_bytes",
                "out of range",
            ),
            (
                "max_in_flight_bytes = \"lots\"",
                "pipeline[0].max_in_flight_bytes",
                "not a size",
            ),
        ] {
            let e = parse(&with(keys)).unwrap_err();
            assert_eq!(e.key, key, "{keys}: {e}");
            assert_eq!(e.line, Some(15), "{keys}: {e}");
            assert!(e.message.contains(says), "{keys}: {e}");
        }
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert!(parse_size("64 parsecs").is_err());
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0ms").is_err());
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("99999999999999999999999s").is_err());
        assert!(parse_duration("1.2.3s").is_err());
    }

    #[test]
    fn expansion() {
        let env = |n: &str| (n == "A").then(|| "a".to_string());
        assert_eq!(expand("x${A}y${B:-b}$$", &env).unwrap(), "xayb$");
        assert!(expand("${B}", &env).unwrap_err().contains("B is not set"));
        assert!(expand("${A", &env).is_err());
    }
}
