//! `weir dlq show` and `weir dlq replay`: a pipeline's dead letters read
//! back, summed up, run through the current plugin and sent through again.
//!
//! A dead letter is the input's key, value and headers followed by the
//! headers `delivery::records::dead_letter` adds (`weir.error.*`,
//! `weir.source.*`, `weir.pipeline`, `weir.plugin`); [`DeadLetter`] parts
//! them again. Replaying removes weir's headers and adds
//! `weir.replay.source` and `weir.replay.at`; the replay headers of earlier
//! replays stay, so a message that keeps failing carries one
//! `weir.replay.source` per replay, which `--max-replays` counts.
//!
//! Invariants:
//! - `show` and `--dry-run` join no group, commit nothing and produce
//!   nothing. A replay reads the dead-letter topic up to where it ended
//!   when the replay started (so a replayed message dead-lettered again is
//!   not replayed again by the same run) and commits its progress in a
//!   consumer group of its own, never joined, only committed to.
//! - Under transactions each batch's republished records and the group's
//!   next offsets commit together: a replay stopped at any point (SIGKILL
//!   included) and started again republishes each dead letter once. Without
//!   them the records are acknowledged before the offsets are committed:
//!   at least once.
//! - Nothing a record holds (names and values of any bytes, any size, null
//!   keys) makes a command panic: it is shown escaped and cut.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::producer::Producer as _;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};

use crate::cli::jsonl;
use crate::config::{Config, Pipeline};
use crate::delivery::records::{Input, undeclared_route};
use crate::kafka::proxy::{ProducerProxy, WeirProducer, producer_config};
use crate::kafka::record::{RawHeader, future_record};
use crate::kafka::scan::{self, Scan, ScanConsumer, Start};
use crate::plugin::{LogTags, Outcome, Runtime};

/// Headers `delivery::records::dead_letter` adds, by name or prefix.
const ERROR_PREFIX: &[u8] = b"weir.error.";
const SOURCE_PREFIX: &[u8] = b"weir.source.";
const KIND: &[u8] = b"weir.error.kind";
const REASON: &[u8] = b"weir.error.reason";
const SOURCE_TOPIC: &[u8] = b"weir.source.topic";
const SOURCE_PARTITION: &[u8] = b"weir.source.partition";
const SOURCE_OFFSET: &[u8] = b"weir.source.offset";
const PIPELINE: &[u8] = b"weir.pipeline";
const PLUGIN: &[u8] = b"weir.plugin";

/// Where a replayed record came from: `topic[partition]@offset`.
pub const REPLAY_SOURCE: &str = "weir.replay.source";
/// When it was replayed, RFC 3339 in UTC.
pub const REPLAY_AT: &str = "weir.replay.at";

/// How long one transaction call may block.
const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a record may wait for its acknowledgement.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Values, keys and reasons longer than this are cut when shown.
const WIDTH: usize = 96;

/// Dead letters: see what went wrong, and send them through again.
#[derive(Parser)]
pub struct Dlq {
    #[command(subcommand)]
    command: DlqCommand,
}

#[derive(Subcommand)]
enum DlqCommand {
    Show(Show),
    Replay(Replay),
}

/// Which dead letters a command reads.
#[derive(Args)]
struct Select {
    /// The config file.
    #[arg(long, short, default_value = "weir.toml")]
    config: PathBuf,
    /// The pipeline whose dead-letter topic is read; a dead letter another
    /// pipeline wrote to a shared topic is left alone.
    #[arg(long)]
    pipeline: String,
    /// Only dead letters of this `weir.error.kind` (invalid, failed, trap,
    /// timeout, memory, fuel, output-limit, route, header-not-utf8,
    /// too-large, refused); repeatable.
    #[arg(long)]
    kind: Vec<String>,
    /// Only dead letters at or after this time: RFC 3339
    /// (`2026-12-01T14:00:00Z`), milliseconds since the epoch, or a time
    /// ago (`90s`, `15m`, `2h`, `3d`). The time is the record's timestamp,
    /// which a dead letter keeps from its input.
    #[arg(long, value_parser = parse_time)]
    since: Option<i64>,
    /// Only dead letters before this time (same forms as --since).
    #[arg(long, value_parser = parse_time)]
    until: Option<i64>,
}

/// Sums up a pipeline's dead letters (by kind, by reason, times, where they
/// came from), then prints them; reads the topic without joining a group
/// and commits nothing.
#[derive(Parser)]
struct Show {
    #[command(flatten)]
    select: Select,
    /// Print at most this many dead letters (the summary counts them all).
    /// Default: 20 in pretty form, all in JSON.
    #[arg(long)]
    limit: Option<usize>,
    /// `pretty`: the summary, then each dead letter, cut where long.
    /// `json`: one line per dead letter on stdout, in the form `weir test
    /// --input` reads (the original message, with a `dead_letter` object
    /// `weir test` ignores), and the summary on stderr.
    #[arg(long, value_enum, default_value_t = Format::Pretty)]
    format: Format,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Pretty,
    Json,
}

/// Republishes a pipeline's dead letters, to its input or --to, without
/// weir's `weir.error.*`, `weir.source.*`, `weir.pipeline` and
/// `weir.plugin` headers and with `weir.replay.source` and `weir.replay.at`
/// added. Resumable: progress is committed in a group of the replay's own,
/// so a replay run again (or after SIGTERM or SIGKILL) goes on where it
/// stopped; each dead letter is republished once under Kafka transactions,
/// at least once without them.
#[derive(Parser)]
struct Replay {
    #[command(flatten)]
    select: Select,
    /// Publish here instead of the pipeline's input.
    #[arg(long, value_name = "TOPIC")]
    to: Option<String>,
    /// Publish nothing and commit nothing: run the dead letters through the
    /// pipeline's current plugin and config, offline like `weir test`, and
    /// print which would pass now and which would still fail, and why.
    #[arg(long)]
    dry_run: bool,
    /// Refuse (leave in the dead-letter topic) a dead letter that was
    /// already replayed this many times: a message failing in a loop.
    #[arg(long, value_name = "N")]
    max_replays: Option<usize>,
    /// The consumer group that keeps this replay's progress. Default:
    /// `weir-replay-<pipeline>-<hash of the target and the filters>`, so
    /// the same replay run again resumes and a different one starts afresh.
    /// A dead letter read and left out (filtered, refused) counts as done.
    #[arg(long)]
    group: Option<String>,
    /// Dead letters read per transaction (per commit at least once).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    batch: u64,
    /// `auto`: exactly once where the broker runs transactions, at least
    /// once (said on stderr and in the summary) where it does not.
    #[arg(long, value_enum, default_value_t = Guarantee::Auto)]
    delivery: Guarantee,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Guarantee {
    Auto,
    ExactlyOnce,
    AtLeastOnce,
}

impl Dlq {
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        match self.command {
            DlqCommand::Show(c) => c.execute(),
            DlqCommand::Replay(c) => c.execute(),
        }
    }
}

/// `--since`/`--until`: RFC 3339, milliseconds since the epoch, or a
/// duration ago; in milliseconds since the epoch.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<i64>()
            .map_err(|_| format!("{text:?} is out of range"));
    }
    if let Ok(ts) = t.parse::<jiff::Timestamp>() {
        return Ok(ts.as_millisecond());
    }
    match t.parse::<jiff::Span>() {
        Ok(span) => {
            let ago = span
                .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
                .map_err(|e| format!("{text:?}: {e}"))?;
            jiff::Timestamp::now()
                .checked_sub(ago)
                .map(|ts| ts.as_millisecond())
                .map_err(|e| format!("{text:?}: {e}"))
        }
        Err(_) => Err(format!(
            "{text:?} is not a time: give RFC 3339 (2026-12-01T14:00:00Z), milliseconds since the epoch, or a time ago (15m, 2h, 3d)"
        )),
    }
}

/// A time as RFC 3339 in UTC, to the millisecond.
fn show_time(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => format!("{ts:.3}"),
        Err(_) => format!("{ms} ms"),
    }
}

/// A dead letter read back: where it is, what it was, what weir said.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// The input's own headers: every header but weir's dead-letter ones,
    /// earlier replays' `weir.replay.*` kept.
    pub headers: Vec<RawHeader>,
    /// `weir.error.kind`; empty on a record weir did not dead-letter.
    pub kind: String,
    pub reason: String,
    pub pipeline: Option<String>,
    pub plugin: Option<String>,
    /// `weir.source.topic`, `.partition`, `.offset`, where all three parse.
    pub source: Option<(String, i32, i64)>,
    /// How many times it was replayed before.
    pub replays: usize,
}

fn is_weir_header(name: &[u8]) -> bool {
    name.starts_with(ERROR_PREFIX)
        || name.starts_with(SOURCE_PREFIX)
        || name == PIPELINE
        || name == PLUGIN
}

impl DeadLetter {
    pub fn read(input: Input) -> DeadLetter {
        // weir adds its headers last: where a name repeats, the last one is weir's.
        let last = |name: &[u8]| -> Option<String> {
            input
                .headers
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.as_deref())
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let source = match (
            last(SOURCE_TOPIC),
            last(SOURCE_PARTITION).and_then(|p| p.parse().ok()),
            last(SOURCE_OFFSET).and_then(|o| o.parse().ok()),
        ) {
            (Some(t), Some(p), Some(o)) => Some((t, p, o)),
            _ => None,
        };
        let (kind, reason, pipeline, plugin) = (
            last(KIND).unwrap_or_default(),
            last(REASON).unwrap_or_default(),
            last(PIPELINE),
            last(PLUGIN),
        );
        let headers: Vec<RawHeader> = input
            .headers
            .into_iter()
            .filter(|(k, _)| !is_weir_header(k))
            .collect();
        let replays = headers
            .iter()
            .filter(|(k, _)| k == REPLAY_SOURCE.as_bytes())
            .count();
        DeadLetter {
            topic: input.topic,
            partition: input.partition,
            offset: input.offset,
            timestamp: input.timestamp,
            key: input.key,
            value: input.value,
            headers,
            kind,
            reason,
            pipeline,
            plugin,
            source,
            replays,
        }
    }

    /// `orders.invalid[0]@17`.
    pub fn place(&self) -> String {
        format!("{}[{}]@{}", self.topic, self.partition, self.offset)
    }

    /// The original message as `weir test --input` reads it: its source
    /// topic, partition and offset, its own headers; what weir said of it
    /// in `dead_letter`, which `weir test` ignores.
    pub fn to_jsonl(&self) -> Value {
        let (topic, partition, offset) = match &self.source {
            Some((t, p, o)) => (json!(t), json!(p), json!(o)),
            None => (Value::Null, Value::Null, Value::Null),
        };
        json!({
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "timestamp": self.timestamp,
            "key": jsonl::encode_bytes(self.key.as_deref()),
            "value": jsonl::encode_bytes(self.value.as_deref()),
            "headers": jsonl::encode_raw_headers(&self.headers),
            "dead_letter": {
                "topic": self.topic,
                "partition": self.partition,
                "offset": self.offset,
                "kind": self.kind,
                "reason": self.reason,
                "pipeline": self.pipeline,
                "plugin": self.plugin,
                "replays": self.replays,
            },
        })
    }

    /// The record to republish to `topic`, replayed at `at`.
    fn republished(&self, at: &str) -> (Vec<RawHeader>, String) {
        let mut headers = self.headers.clone();
        headers.push((
            REPLAY_SOURCE.as_bytes().to_vec(),
            Some(self.place().into_bytes()),
        ));
        headers.push((REPLAY_AT.as_bytes().to_vec(), Some(at.as_bytes().to_vec())));
        (headers, self.place())
    }
}

/// The filters of a [`Select`], resolved against the config.
struct Filter {
    pipeline: String,
    kinds: Vec<String>,
    since: Option<i64>,
    until: Option<i64>,
}

/// Why a dead letter was left out.
enum Miss {
    OtherPipeline,
    Filtered,
}

impl Filter {
    fn judge(&self, d: &DeadLetter) -> Result<(), Miss> {
        if d.pipeline.as_deref().is_some_and(|p| p != self.pipeline) {
            return Err(Miss::OtherPipeline);
        }
        if !self.kinds.is_empty() && !self.kinds.contains(&d.kind) {
            return Err(Miss::Filtered);
        }
        let ts = d.timestamp;
        if self.since.is_some_and(|s| ts.is_none_or(|t| t < s))
            || self.until.is_some_and(|u| ts.is_none_or(|t| t >= u))
        {
            return Err(Miss::Filtered);
        }
        Ok(())
    }

    fn start(&self) -> Start {
        match self.since {
            Some(ms) => Start::Time(ms),
            None => Start::Beginning,
        }
    }
}

impl Select {
    fn resolve(&self) -> anyhow::Result<(Config, Pipeline, Filter)> {
        if let (Some(s), Some(u)) = (self.since, self.until)
            && s >= u
        {
            anyhow::bail!(
                "--since ({}) is not before --until ({})",
                show_time(s),
                show_time(u)
            );
        }
        let config = Config::load(&self.config)?;
        let spec = config
            .pipelines
            .iter()
            .find(|p| p.name == self.pipeline)
            .cloned()
            .with_context(|| {
                format!(
                    "{}: no pipeline {:?} (pipelines: {:?})",
                    config.path.display(),
                    self.pipeline,
                    config
                        .pipelines
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                )
            })?;
        if config.kafka.is_embedded() {
            anyhow::bail!(
                "{}: brokers = \"embedded\" keeps nothing once `weir run` exits: there are no dead letters to read",
                config.path.display()
            );
        }
        let filter = Filter {
            pipeline: spec.name.clone(),
            kinds: self.kind.clone(),
            since: self.since,
            until: self.until,
        };
        Ok((config, spec, filter))
    }
}

/// Counts for the summary; every matching dead letter goes through it.
#[derive(Default)]
struct Summary {
    read: usize,
    matched: usize,
    other_pipelines: usize,
    filtered: usize,
    kinds: BTreeMap<String, usize>,
    /// By (kind, reason pattern): how many, and the first reason seen.
    reasons: BTreeMap<(String, String), (usize, String)>,
    first: Option<i64>,
    last: Option<i64>,
    /// By source topic and partition: lowest and highest offset, count.
    sources: BTreeMap<(String, i32), (i64, i64, usize)>,
    unknown_source: usize,
    /// Where in the dead-letter topic, by partition: lowest, highest offset.
    places: BTreeMap<i32, (i64, i64)>,
}

impl Summary {
    fn add(&mut self, d: &DeadLetter) {
        self.matched += 1;
        let kind = if d.kind.is_empty() {
            "(no weir.error.kind)".to_string()
        } else {
            d.kind.clone()
        };
        *self.kinds.entry(kind.clone()).or_default() += 1;
        let entry = self
            .reasons
            .entry((kind, reason_pattern(&d.reason)))
            .or_insert_with(|| (0, d.reason.clone()));
        entry.0 += 1;
        if let Some(t) = d.timestamp {
            self.first = Some(self.first.map_or(t, |f| f.min(t)));
            self.last = Some(self.last.map_or(t, |l| l.max(t)));
        }
        match &d.source {
            Some((topic, p, o)) => {
                let e = self
                    .sources
                    .entry((topic.clone(), *p))
                    .or_insert((*o, *o, 0));
                e.0 = e.0.min(*o);
                e.1 = e.1.max(*o);
                e.2 += 1;
            }
            None => self.unknown_source += 1,
        }
        let e = self
            .places
            .entry(d.partition)
            .or_insert((d.offset, d.offset));
        e.0 = e.0.min(d.offset);
        e.1 = e.1.max(d.offset);
    }

    fn miss(&mut self, m: Miss) {
        match m {
            Miss::OtherPipeline => self.other_pipelines += 1,
            Miss::Filtered => self.filtered += 1,
        }
    }

    fn write(&self, out: &mut impl std::io::Write, spec: &Pipeline) -> std::io::Result<()> {
        let mut left_out = Vec::new();
        if self.filtered > 0 {
            left_out.push(format!("{} filtered out", self.filtered));
        }
        if self.other_pipelines > 0 {
            left_out.push(format!("{} of other pipelines", self.other_pipelines));
        }
        writeln!(
            out,
            "{} dead letters of pipeline {} in {} ({} read{}{})",
            self.matched,
            spec.name,
            spec.dead_letter,
            self.read,
            if left_out.is_empty() { "" } else { ", " },
            left_out.join(", ")
        )?;
        if self.matched == 0 {
            return Ok(());
        }
        let kinds: Vec<String> = self.kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        writeln!(out, "  by kind:    {}", kinds.join(", "))?;
        writeln!(out, "  by reason:")?;
        let mut reasons: Vec<_> = self.reasons.iter().collect();
        reasons.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(b.0)));
        for ((kind, pattern), (n, example)) in reasons {
            let example = if example == pattern {
                String::new()
            } else {
                format!("\n                       e.g. {}", cut(example))
            };
            writeln!(out, "    {n:>6}  {kind:<12} {}{example}", cut(pattern))?;
        }
        if let (Some(f), Some(l)) = (self.first, self.last) {
            writeln!(out, "  time:       {} … {}", show_time(f), show_time(l))?;
        }
        let from: Vec<String> = self
            .sources
            .iter()
            .map(|((t, p), (lo, hi, n))| format!("{t}[{p}] offsets {lo}..{hi} ({n})"))
            .collect();
        if !from.is_empty() {
            writeln!(out, "  from:       {}", from.join(", "))?;
        }
        if self.unknown_source > 0 {
            writeln!(
                out,
                "  from:       {} without weir.source.* headers",
                self.unknown_source
            )?;
        }
        let at: Vec<String> = self
            .places
            .iter()
            .map(|(p, (lo, hi))| format!("{}[{p}] offsets {lo}..{hi}", spec.dead_letter))
            .collect();
        writeln!(out, "  stored in:  {}", at.join(", "))
    }
}

/// A reason with its numbers and quoted values blanked, so reasons that
/// differ only there group together: `/id: "ten" is not of type "integer"`
/// is `/id: "…" is not of type "…"`.
pub fn reason_pattern(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut chars = reason.chars().peekable();
    let mut prev_alnum = false;
    while let Some(c) = chars.next() {
        match c {
            // An apostrophe (`header 0's`) follows a letter or digit; a quote does not.
            '"' | '`' | '\'' if !(c == '\'' && prev_alnum) => {
                let close = c;
                let mut quoted = String::new();
                let mut closed = false;
                while let Some(&n) = chars.peek() {
                    chars.next();
                    if n == '\\' {
                        if let Some(&esc) = chars.peek() {
                            chars.next();
                            quoted.push(esc);
                        }
                        continue;
                    }
                    if n == close {
                        closed = true;
                        break;
                    }
                    quoted.push(n);
                }
                if closed {
                    out.push(close);
                    out.push('…');
                    out.push(close);
                } else {
                    // An apostrophe, not a quote: keep the text.
                    out.push(close);
                    out.push_str(&quoted);
                }
                prev_alnum = false;
            }
            d if d.is_ascii_digit() && !prev_alnum => {
                while chars
                    .peek()
                    .is_some_and(|n| n.is_ascii_digit() || *n == '.')
                {
                    chars.next();
                }
                out.push('N');
                prev_alnum = true;
            }
            other => {
                // `UTF-8`, `id-12`: a hyphen inside a word keeps it a word.
                prev_alnum =
                    other.is_alphanumeric() || other == '_' || (other == '-' && prev_alnum);
                out.push(other);
            }
        }
    }
    out
}

/// Text cut to [`WIDTH`] characters, saying how long it was.
fn cut(text: &str) -> String {
    if text.chars().count() <= WIDTH {
        return text.to_string();
    }
    let head: String = text.chars().take(WIDTH).collect();
    format!("{head}… ({} bytes)", text.len())
}

/// A byte field for a person: `(null)`, text as it is (JSON-escaped if it
/// holds control characters), anything else escaped; cut.
fn shown_bytes(bytes: Option<&[u8]>) -> String {
    match bytes {
        None => "(null)".into(),
        Some([]) => "(empty)".into(),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) if !s.chars().any(char::is_control) => cut(s),
            Ok(s) => cut(&Value::String(s.to_string()).to_string()),
            Err(_) => {
                let head = &b[..b.len().min(WIDTH / 2)];
                let more = if head.len() < b.len() { "…" } else { "" };
                format!(
                    "b\"{}{more}\" ({} bytes, not UTF-8)",
                    head.escape_ascii(),
                    b.len()
                )
            }
        },
    }
}

fn shown_name(name: &[u8]) -> String {
    match std::str::from_utf8(name) {
        Ok(s) => s.to_string(),
        Err(_) => format!("b\"{}\"", name.escape_ascii()),
    }
}

/// One dead letter as a person reads it.
fn pretty(d: &DeadLetter) -> String {
    let mut s = format!(
        "{}  {}  {}",
        d.place(),
        d.timestamp.map_or("(no time)".into(), show_time),
        if d.kind.is_empty() { "?" } else { &d.kind }
    );
    if let Some((t, p, o)) = &d.source {
        s.push_str(&format!("  from {t}[{p}]@{o}"));
    }
    if d.replays > 0 {
        s.push_str(&format!("  replayed {} times before", d.replays));
    }
    s.push_str(&format!("\n    reason   {}", cut(&d.reason)));
    s.push_str(&format!("\n    key      {}", shown_bytes(d.key.as_deref())));
    s.push_str(&format!(
        "\n    value    {}",
        shown_bytes(d.value.as_deref())
    ));
    if !d.headers.is_empty() {
        let shown: Vec<String> = d
            .headers
            .iter()
            .take(8)
            .map(|(k, v)| format!("{}={}", cut(&shown_name(k)), shown_bytes(v.as_deref())))
            .collect();
        let more = d.headers.len().saturating_sub(shown.len());
        s.push_str(&format!("\n    headers  {}", shown.join(", ")));
        if more > 0 {
            s.push_str(&format!(" … and {more} more"));
        }
    }
    s
}

/// A scan of the pipeline's dead-letter topic (no group, no commit).
fn open_scan(
    config: &Config,
    spec: &Pipeline,
    filter: &Filter,
    group: Option<&str>,
    resume: &BTreeMap<i32, i64>,
) -> anyhow::Result<Scan> {
    let consumer = scan::consumer(&config.kafka, &config.kafka.brokers, group, &spec.name)?;
    Scan::open(consumer, &spec.dead_letter, &filter.start(), resume)
        .with_context(|| format!("pipeline {:?}'s dead letters", spec.name))
}

impl Show {
    fn execute(self) -> anyhow::Result<ExitCode> {
        let (config, spec, filter) = self.select.resolve()?;
        let limit = self.limit.unwrap_or(match self.format {
            Format::Pretty => 20,
            Format::Json => usize::MAX,
        });
        let mut scan = open_scan(&config, &spec, &filter, None, &BTreeMap::new())?;
        let mut summary = Summary::default();
        let mut shown: Vec<String> = Vec::new();
        let mut out = std::io::stdout().lock();
        while let Some(input) = scan.next_record()? {
            summary.read += 1;
            let d = DeadLetter::read(input);
            if let Err(m) = filter.judge(&d) {
                summary.miss(m);
                continue;
            }
            summary.add(&d);
            if summary.matched > limit {
                continue;
            }
            match self.format {
                Format::Json => match writeln!(out, "{}", d.to_jsonl()) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                        return Ok(ExitCode::SUCCESS);
                    }
                    Err(e) => return Err(e.into()),
                },
                Format::Pretty => shown.push(pretty(&d)),
            }
        }
        let not_shown = summary.matched.saturating_sub(limit);
        match self.format {
            Format::Json => {
                out.flush()?;
                summary.write(&mut std::io::stderr().lock(), &spec)?;
                if not_shown > 0 {
                    eprintln!("{not_shown} more not printed (--limit {limit})");
                }
            }
            Format::Pretty => {
                let written = (|| -> std::io::Result<()> {
                    summary.write(&mut out, &spec)?;
                    for s in &shown {
                        writeln!(out, "\n{s}")?;
                    }
                    if not_shown > 0 {
                        writeln!(out, "\n… {not_shown} more not shown (--limit N shows more)")?;
                    }
                    Ok(())
                })();
                match written {
                    Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
                    _ => {}
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// FNV-1a, 64 bits: a group name that is the same on every build.
fn fnv1a(text: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// What a replay counted, for its summary line.
#[derive(Default)]
struct Counts {
    read: usize,
    replayed: usize,
    refused: usize,
    filtered: usize,
    other_pipelines: usize,
    /// Dry run: what would pass, and what would still fail, by kind.
    would_pass: usize,
    would_fail: BTreeMap<String, usize>,
}

impl Counts {
    fn skipped(&self) -> String {
        let mut parts = Vec::new();
        if self.refused > 0 {
            parts.push(format!("{} refused (--max-replays)", self.refused));
        }
        if self.filtered > 0 {
            parts.push(format!("{} filtered out", self.filtered));
        }
        if self.other_pipelines > 0 {
            parts.push(format!("{} of other pipelines", self.other_pipelines));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(", {}", parts.join(", "))
        }
    }
}

impl Replay {
    fn execute(self) -> anyhow::Result<ExitCode> {
        let (config, spec, filter) = self.select.resolve()?;
        let target = self.to.clone().unwrap_or_else(|| spec.input.clone());
        if target == spec.dead_letter {
            anyhow::bail!(
                "--to {target:?} is the pipeline's dead-letter topic: a replay there would read its own records"
            );
        }
        let group = self.group.clone().unwrap_or_else(|| {
            // Not --max-replays: run again with one, a replay goes on
            // where it stopped and refuses the loops it finds.
            let identity = format!(
                "{}|{}|{}|{:?}|{:?}|{:?}",
                spec.dead_letter, target, spec.name, filter.kinds, filter.since, filter.until,
            );
            format!("weir-replay-{}-{:016x}", spec.name, fnv1a(&identity))
        });
        if self.dry_run {
            return self.dry_run(&config, &spec, &filter, &group, &target);
        }
        let tokio = tokio::runtime::Runtime::new()?;
        tokio.block_on(self.replay(config, spec, filter, group, target))
    }

    /// The group's committed offsets on the dead-letter topic.
    fn committed(
        consumer: &ScanConsumer,
        topic: &str,
        group: &str,
    ) -> anyhow::Result<BTreeMap<i32, i64>> {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(15))
            .with_context(|| format!("cannot read the metadata of {topic:?}"))?;
        let mut wanted = TopicPartitionList::new();
        for t in metadata.topics().iter().filter(|t| t.name() == topic) {
            for p in t.partitions() {
                wanted.add_partition(topic, p.id());
            }
        }
        let committed = consumer
            .committed_offsets(wanted, Duration::from_secs(15))
            .with_context(|| format!("cannot read group {group:?}'s committed offsets"))?;
        Ok(committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect())
    }

    fn dry_run(
        &self,
        config: &Config,
        spec: &Pipeline,
        filter: &Filter,
        group: &str,
        target: &str,
    ) -> anyhow::Result<ExitCode> {
        let runtime = if spec.limits.fuel.is_some() {
            Runtime::with_fuel()?
        } else {
            Runtime::new()?
        };
        let plugin = runtime
            .load(&spec.plugin)
            .with_context(|| format!("pipeline {:?}", spec.name))?;
        let tags = LogTags {
            pipeline: spec.name.clone(),
            plugin: plugin.name.clone(),
            capture: None,
        };
        let mut instance = plugin
            .instantiate(&spec.plugin_config, &spec.limits, tags)
            .with_context(|| format!("pipeline {:?}", spec.name))?;
        // What a replay run now would read: from where its group stopped.
        let probe = scan::consumer(&config.kafka, &config.kafka.brokers, Some(group), "dry-run")?;
        let resume = Self::committed(&probe, &spec.dead_letter, group)?;
        drop(probe);
        let mut scan = open_scan(config, spec, filter, None, &resume)?;
        let mut counts = Counts::default();
        let at = format!("{:.3}", jiff::Timestamp::now());
        let mut out = std::io::stdout().lock();
        while let Some(input) = scan.next_record()? {
            counts.read += 1;
            let d = DeadLetter::read(input);
            match filter.judge(&d) {
                Err(Miss::OtherPipeline) => {
                    counts.other_pipelines += 1;
                    continue;
                }
                Err(Miss::Filtered) => {
                    counts.filtered += 1;
                    continue;
                }
                Ok(()) => {}
            }
            if self.max_replays.is_some_and(|max| d.replays >= max) {
                counts.refused += 1;
                writeln!(
                    out,
                    "refused      {}  key {}  replayed {} times already (--max-replays)",
                    d.place(),
                    shown_bytes(d.key.as_deref()),
                    d.replays
                )?;
                continue;
            }
            let (headers, _) = d.republished(&at);
            let (partition, offset) = d.source.as_ref().map_or((0, 0), |(_, p, o)| (*p, *o));
            let input = Input {
                topic: target.to_string(),
                partition,
                offset,
                timestamp: d.timestamp,
                key: d.key.clone(),
                value: d.value.clone(),
                headers,
            };
            let verdict: Result<String, (String, String)> = match input.into_message() {
                Err(unfit) => Err((unfit.kind.to_string(), unfit.reason)),
                Ok(message) => match instance.call(&message) {
                    Outcome::Accepted => Ok("accepted".into()),
                    Outcome::Outputs(outputs) => match undeclared_route(spec, &outputs) {
                        Some(bad) => Err((
                            "route".into(),
                            format!("an output to {bad:?}, which is not a declared route"),
                        )),
                        None if outputs.is_empty() => Ok("dropped (0 outputs)".into()),
                        None => Ok(format!("{} output(s)", outputs.len())),
                    },
                    Outcome::Invalid(r) => Err(("invalid".into(), r)),
                    Outcome::Failed(r) => Err(("failed".into(), r)),
                    Outcome::Aborted(a) => Err((a.kind.as_str().into(), a.reason)),
                },
            };
            let key = shown_bytes(d.key.as_deref());
            match verdict {
                Ok(what) => {
                    counts.would_pass += 1;
                    writeln!(
                        out,
                        "would pass   {}  key {key}  {what} (was {})",
                        d.place(),
                        d.kind
                    )?;
                }
                Err((kind, reason)) => {
                    *counts.would_fail.entry(kind.clone()).or_default() += 1;
                    writeln!(
                        out,
                        "still fails  {}  key {key}  {kind}: {}",
                        d.place(),
                        cut(&reason)
                    )?;
                }
            }
        }
        let failing: usize = counts.would_fail.values().sum();
        let by_kind: Vec<String> = counts
            .would_fail
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        writeln!(
            out,
            "dry run of pipeline {} ({}) on {}: {} read, {} would pass, {} would still fail{}{}; nothing published or committed",
            spec.name,
            plugin.name,
            spec.dead_letter,
            counts.read,
            counts.would_pass,
            failing,
            if by_kind.is_empty() {
                String::new()
            } else {
                format!(" ({})", by_kind.join(", "))
            },
            counts.skipped()
        )?;
        Ok(ExitCode::SUCCESS)
    }

    async fn replay(
        self,
        config: Config,
        spec: Pipeline,
        filter: Filter,
        group: String,
        target: String,
    ) -> anyhow::Result<ExitCode> {
        let bootstrap = config.kafka.brokers.clone();
        let stop = Arc::new(AtomicBool::new(false));
        {
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                wait_for_signal().await;
                tracing::info!(
                    "signal received: committing what was republished, then stopping (a second signal exits at once)"
                );
                stop.store(true, Ordering::SeqCst);
                wait_for_signal().await;
                std::process::exit(130);
            });
        }
        let consumer = scan::consumer(&config.kafka, &bootstrap, Some(&group), "replay")?;
        let resume =
            tokio::task::block_in_place(|| Self::committed(&consumer, &spec.dead_letter, &group))?;
        let mut scan = tokio::task::block_in_place(|| {
            Scan::open(consumer, &spec.dead_letter, &filter.start(), &resume)
        })
        .with_context(|| format!("pipeline {:?}'s dead letters", spec.name))?;

        let (producer, proxy, transactional) = self.producer(&config, &bootstrap, &group).await?;
        let guarantee = if transactional {
            "exactly once"
        } else {
            "at least once"
        };
        tracing::info!(
            pipeline = %spec.name, from = %spec.dead_letter, to = %target, %group,
            resumed = ?resume, "replay started ({guarantee})"
        );

        let mut counts = Counts::default();
        let mut progress = Progress::default();
        let mut report = Instant::now();
        let at = format!("{:.3}", jiff::Timestamp::now());
        let mut ended = false;
        while !ended {
            let mut batch = Batch::default();
            while batch.read < self.batch {
                if stop.load(Ordering::SeqCst) {
                    ended = true;
                    break;
                }
                let Some(input) = tokio::task::block_in_place(|| scan.next_record())? else {
                    ended = true;
                    break;
                };
                counts.read += 1;
                batch.read += 1;
                progress.next.insert(input.partition, input.offset + 1);
                let d = DeadLetter::read(input);
                match filter.judge(&d) {
                    Err(Miss::OtherPipeline) => {
                        counts.other_pipelines += 1;
                        continue;
                    }
                    Err(Miss::Filtered) => {
                        counts.filtered += 1;
                        continue;
                    }
                    Ok(()) => {}
                }
                if self.max_replays.is_some_and(|max| d.replays >= max) {
                    tracing::warn!(
                        "{} left in {}: replayed {} times already (--max-replays)",
                        d.place(),
                        spec.dead_letter,
                        d.replays
                    );
                    counts.refused += 1;
                    continue;
                }
                if transactional && !batch.open {
                    tokio::task::block_in_place(|| producer.begin_transaction())
                        .context("begin_transaction")?;
                    batch.open = true;
                }
                let (headers, place) = d.republished(&at);
                let mut record =
                    future_record(&target, d.key.as_deref(), d.value.as_deref(), &headers);
                record.timestamp = d.timestamp;
                batch
                    .deliveries
                    .push((place, send(&producer, record).await?));
                batch.replayed += 1;
            }
            if batch.read == 0 {
                break;
            }
            let replayed = batch.replayed;
            if let Err(e) = self
                .commit(
                    &producer,
                    scan.consumer(),
                    &spec,
                    &progress,
                    batch,
                    transactional,
                )
                .await
            {
                let _ = proxy.disconnect();
                return Err(e.context(format!(
                    "replay of pipeline {:?} stopped after {} republished (committed); run it again to go on",
                    spec.name, counts.replayed
                )));
            }
            counts.replayed += replayed;
            if report.elapsed() > Duration::from_secs(5) {
                tracing::info!("replayed {} of {} read", counts.replayed, counts.read);
                report = Instant::now();
            }
        }
        proxy.disconnect().context("final flush")?;
        let stopped = if stop.load(Ordering::SeqCst) {
            "stopped by a signal (run it again to go on): "
        } else {
            ""
        };
        println!(
            "replay of pipeline {} from {} to {} ({guarantee}, group {group}): {stopped}{} read, {} replayed{}",
            spec.name,
            spec.dead_letter,
            target,
            counts.read,
            counts.replayed,
            counts.skipped()
        );
        Ok(ExitCode::SUCCESS)
    }

    /// The producer, transactional where asked and the broker allows it.
    async fn producer(
        &self,
        config: &Config,
        bootstrap: &str,
        group: &str,
    ) -> anyhow::Result<(WeirProducer, ProducerProxy, bool)> {
        let plain = || {
            let proxy = ProducerProxy::named(producer_config(&config.kafka, bootstrap), "replay");
            let producer = proxy.connect()?;
            anyhow::Ok((producer, proxy, false))
        };
        if self.delivery == Guarantee::AtLeastOnce {
            return plain();
        }
        let mut c = producer_config(&config.kafka, bootstrap);
        // The same id for the same replay: a restart fences the killed one
        // and aborts what it left open.
        c.set("transactional.id", group);
        let proxy = ProducerProxy::named(c, "replay");
        let producer = proxy.connect()?;
        match tokio::task::block_in_place(|| producer.init_transactions(TXN_TIMEOUT)) {
            Ok(()) => Ok((producer, proxy, true)),
            Err(e) if self.delivery == Guarantee::Auto => {
                tracing::warn!(
                    "Kafka transactions could not be started ({e}): replaying at least once (a replay stopped and run again may republish what it sent last)"
                );
                drop(producer);
                drop(proxy);
                plain()
            }
            Err(e) => Err(anyhow::anyhow!(
                "--delivery exactly-once needs Kafka transactions, and they could not be started with transactional.id {group:?} on {bootstrap}: {e}"
            )),
        }
    }

    /// Waits for the batch's acknowledgements, then commits its offsets:
    /// in its transaction, or after the acknowledgements.
    async fn commit(
        &self,
        producer: &WeirProducer,
        consumer: &ScanConsumer,
        spec: &Pipeline,
        progress: &Progress,
        batch: Batch,
        transactional: bool,
    ) -> anyhow::Result<()> {
        let abort = |e: anyhow::Error| {
            if transactional && batch.open {
                let _ = tokio::task::block_in_place(|| producer.abort_transaction(TXN_TIMEOUT));
            }
            e
        };
        for (place, delivery) in batch.deliveries {
            match tokio::time::timeout(DELIVERY_TIMEOUT, delivery).await {
                Ok(Ok(Ok(_))) => {}
                Ok(Ok(Err((e, _)))) => {
                    return Err(abort(anyhow::anyhow!("republishing {place}: {e}")));
                }
                Ok(Err(_)) => {
                    return Err(abort(anyhow::anyhow!(
                        "republishing {place}: the delivery report was lost"
                    )));
                }
                Err(_) => {
                    return Err(abort(anyhow::anyhow!(
                        "republishing {place}: no acknowledgement within {DELIVERY_TIMEOUT:?}"
                    )));
                }
            }
        }
        let mut offsets = TopicPartitionList::new();
        for (p, next) in &progress.next {
            offsets.add_partition_offset(&spec.dead_letter, *p, Offset::Offset(*next))?;
        }
        if transactional {
            if !batch.open {
                tokio::task::block_in_place(|| producer.begin_transaction())
                    .context("begin_transaction")?;
            }
            let metadata = consumer
                .group_metadata()
                .context("the replay's consumer has no group metadata")?;
            tokio::task::block_in_place(|| {
                producer.send_offsets_to_transaction(&offsets, &metadata, TXN_TIMEOUT)
            })
            .map_err(|e| abort(anyhow::anyhow!("send_offsets_to_transaction: {e}")))?;
            tokio::task::block_in_place(|| producer.commit_transaction(TXN_TIMEOUT))
                .map_err(|e| abort(anyhow::anyhow!("commit_transaction: {e}")))?;
        } else {
            tokio::task::block_in_place(|| consumer.commit(&offsets, CommitMode::Sync))
                .context("committing the replay's progress")?;
        }
        tracing::debug!(replayed = batch.replayed, "replay batch committed");
        Ok(())
    }
}

/// The replay's next offset per partition of the dead-letter topic.
#[derive(Default)]
struct Progress {
    next: BTreeMap<i32, i64>,
}

/// One batch: records sent and waiting for their acknowledgement.
#[derive(Default)]
struct Batch {
    read: u64,
    replayed: usize,
    open: bool,
    deliveries: Vec<(String, rdkafka::producer::DeliveryFuture)>,
}

/// SIGINT or SIGTERM (never, where they cannot be listened to).
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => std::future::pending::<()>().await,
    }
}

/// Hands a record to the producer, waiting while its queue is full.
async fn send(
    producer: &WeirProducer,
    mut record: rdkafka::producer::FutureRecord<'_, [u8], [u8]>,
) -> anyhow::Result<rdkafka::producer::DeliveryFuture> {
    loop {
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                back,
            )) => {
                record = back;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err((e, back)) => {
                return Err(anyhow::anyhow!(
                    "the producer refused a record for {}: {e}",
                    back.topic
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::records::{Cause, dead_letter};

    #[test]
    fn reasons_that_differ_in_numbers_or_quoted_values_group_together() {
        assert_eq!(
            reason_pattern(r#"/id: "ten" is not of type "integer""#),
            r#"/id: "…" is not of type "…""#
        );
        assert_eq!(
            reason_pattern("value 12.5 at offset 1044 too large"),
            "value N at offset N too large"
        );
        assert_eq!(reason_pattern("k12 isn't here"), "k12 isn't here");
        assert_eq!(
            reason_pattern(r#"header 0's name is not UTF-8 (b"\xc3("), and a plugin's key"#),
            r#"header N's name is not UTF-8 (b"…"), and a plugin's key"#
        );
        assert_eq!(
            reason_pattern(r#"bad "a\"b" then 'x'"#),
            r#"bad "…" then '…'"#
        );
    }

    #[test]
    fn a_dead_letter_parts_into_the_original_and_what_weir_said() {
        let spec = crate::config::Pipeline {
            name: "orders".into(),
            input: "orders.raw".into(),
            group: "g".into(),
            output: "orders.valid".into(),
            dead_letter: "orders.invalid".into(),
            routes: vec![],
            plugin: "p.wasm".into(),
            plugin_config: vec![],
            limits: Default::default(),
            on_failure: Default::default(),
            breaker: Default::default(),
            max_in_flight: 1,
            max_in_flight_bytes: 1 << 20,
            lanes: 1,
            order: Default::default(),
            topics: Default::default(),
            delivery: Default::default(),
            transaction: Default::default(),
        };
        let original: Vec<RawHeader> = vec![
            (b"trace".to_vec(), Some(b"t1".to_vec())),
            (vec![0xc3, 0x28], None),
            (REPLAY_SOURCE.as_bytes().to_vec(), Some(b"x[0]@1".to_vec())),
        ];
        let cause = Cause {
            kind: "invalid",
            reason: "/id: bad",
            plugin: "json_schema.wasm",
            topic: "orders.raw",
            partition: 3,
            offset: 42,
        };
        let r = dead_letter(
            &spec,
            &cause,
            None,
            Some(vec![0xff; 10_000]),
            original.clone(),
            Some(5),
        );
        let d = DeadLetter::read(Input {
            topic: r.topic,
            partition: 1,
            offset: 9,
            timestamp: r.timestamp,
            key: r.key,
            value: r.value,
            headers: r.headers,
        });
        assert_eq!(d.headers, original, "weir's headers gone, the rest kept");
        assert_eq!(d.kind, "invalid");
        assert_eq!(d.reason, "/id: bad");
        assert_eq!(d.source, Some(("orders.raw".into(), 3, 42)));
        assert_eq!(d.pipeline.as_deref(), Some("orders"));
        assert_eq!(d.plugin.as_deref(), Some("json_schema.wasm"));
        assert_eq!(d.replays, 1);
        assert_eq!(d.place(), "orders.invalid[1]@9");
        let (headers, _) = d.republished("2026-12-01T00:00:00.000Z");
        assert_eq!(headers.len(), original.len() + 2);
        let shown = pretty(&d);
        assert!(shown.contains("10000 bytes, not UTF-8"), "{shown}");
        assert!(shown.contains(r#"b"\xc3(""#), "{shown}");
        assert!(shown.len() < 1000, "cut: {shown}");
        let line = d.to_jsonl();
        assert_eq!(line["topic"], "orders.raw");
        assert_eq!(line["dead_letter"]["kind"], "invalid");
        let back = jsonl::parse_line(&line.to_string()).unwrap();
        assert_eq!(back.headers, original);
        assert_eq!(back.value, d.value);
        assert_eq!(back.key, None);
    }

    #[test]
    fn times_are_rfc3339_milliseconds_or_a_time_ago() {
        assert_eq!(parse_time("2026-12-01T00:00:00Z"), Ok(1_796_083_200_000));
        assert_eq!(
            parse_time("2026-12-01T01:00:00+01:00"),
            Ok(1_796_083_200_000)
        );
        assert_eq!(parse_time("1796083200000"), Ok(1_796_083_200_000));
        let now = jiff::Timestamp::now().as_millisecond();
        let ago = parse_time("2h").unwrap();
        assert!((now - ago - 7_200_000).abs() < 5_000, "{}", now - ago);
        assert!(parse_time("3d").is_ok());
        let e = parse_time("yesterday").unwrap_err();
        assert!(e.contains("RFC 3339"), "{e}");
        assert_eq!(show_time(1_796_083_200_000), "2026-12-01T00:00:00.000Z");
    }
}
