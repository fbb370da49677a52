//! `weir test`: the plugin author's test runner. Runs a plugin offline over
//! JSON-lines messages, prints one result per message and, with `--expect`,
//! compares each result with the expected one.
//!
//! Invariants:
//! - Results are numbered by input message: the n-th non-blank input line
//!   that parses is compared with the n-th non-blank line of the expected
//!   file. A malformed input line yields no result (and exit status 3).
//! - Only the fields an expected object has are compared, each with plain
//!   JSON equality (`outputs` as a whole, numbers as written). A field the
//!   expected object leaves out (typically `reason`, `logs`, `line`) is not
//!   looked at, so a plugin may word its reasons as it likes.
//! - stdout carries the results only (JSON lines or pretty text); diffs,
//!   init logs, the instance's memory and the summary line go to stderr, so
//!   `--format json` output stays machine-readable. The summary is the last
//!   line.
//! - Exit status: 0 all good, 1 a difference (or a different number of
//!   results), 2 the plugin does not load or `init` fails, 3 a malformed
//!   input or expected line.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal as _, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::{Parser, ValueEnum};
use serde_json::{Value, json};

use crate::cli::jsonl;
use crate::config::Limits;
use crate::plugin::{GuestLine, LogTags, Outcome, Runtime};

/// Runs a plugin offline over JSON-lines messages and prints one result per
/// message; with --expect, compares each result with the expected one.
/// With --from-topic and --record, reads real messages from Kafka and
/// records them with the plugin's current verdicts as a test.
#[derive(Parser)]
pub struct Test {
    /// The plugin's `.wasm` component; absent, the plugin (with its config
    /// and limits) of --pipeline, or of the pipeline --from-topic reads.
    plugin: Option<PathBuf>,
    /// JSON lines `{"key":…, "value":…, "headers":{…}, "topic":…}`; stdin if absent.
    #[arg(long, short, conflicts_with = "from_topic")]
    input: Option<PathBuf>,
    /// A `key=value` for the plugin's init (repeatable); `key=@file` reads
    /// a file. A value without `=` names the weir config file instead
    /// (default weir.toml), which --pipeline and --from-topic read.
    #[arg(long = "config", short = 'c', value_name = "KEY=VALUE|weir.toml")]
    config: Vec<String>,
    /// Take the plugin, its config and limits from this pipeline of the
    /// weir config.
    #[arg(long)]
    pipeline: Option<String>,
    /// The deadline of one call, instead of the limits' (default 100ms),
    /// e.g. "10s" on a machine too loaded for the real one.
    #[arg(long, value_parser = crate::config::parse_duration)]
    timeout: Option<std::time::Duration>,
    /// The topic messages seem to come from when a line names none
    /// (default: the pipeline's input, else `test`).
    #[arg(long)]
    topic: Option<String>,
    /// Expected results, one JSON object per input message (line n for
    /// message n). Only the fields an expected object has are compared;
    /// any difference exits 1 with a diff on stderr.
    #[arg(
        long,
        short = 'e',
        value_name = "FILE.jsonl",
        conflicts_with = "record"
    )]
    expect: Option<PathBuf>,
    /// `json`: one JSON line per message; `pretty`: one readable line per
    /// message, outputs and logs indented below it. Default: pretty on a
    /// terminal, json otherwise.
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Read the messages from this Kafka topic (brokers from the weir
    /// config; no group joined, nothing committed), from its start up to
    /// its end as it is now. On a pipeline's dead-letter topic each dead
    /// letter is read back as the message it was (its source topic, its
    /// own headers). Without a plugin: the pipeline whose input, else whose
    /// dead-letter topic, this is.
    #[arg(long, value_name = "TOPIC", requires = "record")]
    from_topic: Option<String>,
    /// With --from-topic: only messages at or after this time (RFC 3339,
    /// milliseconds since the epoch, or a time ago: 15m, 2h, 3d).
    #[arg(long, requires = "from_topic", value_parser = crate::cli::dlq::parse_time)]
    since: Option<i64>,
    /// With --from-topic: at most this many messages.
    #[arg(long, requires = "from_topic")]
    limit: Option<usize>,
    /// With --from-topic: write the messages to DIR/input.jsonl (bytes that
    /// are not UTF-8 as `{"$base64": …}`) and the plugin's verdicts on them
    /// to DIR/expected.jsonl, so that `weir test --input DIR/input.jsonl
    /// --expect DIR/expected.jsonl` guards that behaviour from then on.
    #[arg(long, value_name = "DIR", requires = "from_topic")]
    record: Option<PathBuf>,
}

/// What runs the messages: a plugin file and its init config, the limits
/// and the default topic.
struct Subject {
    plugin: PathBuf,
    config: Vec<(String, String)>,
    limits: Limits,
    topic: String,
    /// How to run the recorded fixture again.
    command: String,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Json,
    Pretty,
}

/// Differences shown per message; a fan-out can differ in hundreds of places.
const MAX_DIFFS: usize = 10;

/// Values and reasons longer than this are cut in pretty output.
const PRETTY_WIDTH: usize = 72;

impl Test {
    pub fn execute(mut self) -> anyhow::Result<ExitCode> {
        let mut subject = self.subject()?;
        if let Some(timeout) = self.timeout {
            subject.limits.timeout = timeout;
        }
        let config = subject.config.clone();
        let mut recording = match (&self.from_topic, &self.record) {
            (Some(topic), Some(dir)) => {
                let input = self.record_input(topic, dir)?;
                self.input = Some(input);
                let path = dir.join("expected.jsonl");
                let file = std::fs::File::create(&path)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                Some((std::io::BufWriter::new(file), path))
            }
            _ => None,
        };
        let expected = match &self.expect {
            Some(path) => match read_expected(path)? {
                Ok(lines) => Some(lines),
                Err(message) => {
                    eprintln!("error: {message}");
                    return Ok(ExitCode::from(3));
                }
            },
            None => None,
        };
        let format = self.format.unwrap_or(if std::io::stdout().is_terminal() {
            Format::Pretty
        } else {
            Format::Json
        });

        let runtime = if subject.limits.fuel.is_some() {
            Runtime::with_fuel()?
        } else {
            Runtime::new()?
        };
        let plugin = match runtime.load(&subject.plugin) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(2));
            }
        };
        let capture = Arc::new(Mutex::new(Vec::new()));
        let tags = LogTags {
            pipeline: "test".into(),
            plugin: plugin.name.clone(),
            capture: Some(Arc::clone(&capture)),
        };
        let mut instance = match plugin.instantiate(&config, &subject.limits, tags) {
            Ok(i) => i,
            Err(e) => {
                for l in take_lines(&capture) {
                    eprintln!("init [{}] {}", l.source, l.line);
                }
                eprintln!("error: {e}");
                return Ok(ExitCode::from(2));
            }
        };
        for l in take_lines(&capture) {
            eprintln!("init [{}] {}", l.source, l.line);
        }

        let input: Box<dyn BufRead> = match &self.input {
            Some(path) => Box::new(std::io::BufReader::new(
                std::fs::File::open(path)
                    .with_context(|| format!("cannot open {}", path.display()))?,
            )),
            None => Box::new(std::io::stdin().lock()),
        };
        let source = self
            .input
            .as_ref()
            .map_or("stdin".to_string(), |p| p.display().to_string());
        let expect_name = display(self.expect.as_deref());
        let mut out = std::io::stdout().lock();
        let mut tally = Tally::default();
        let mut memory = MemoryTrace::default();
        for (i, line) in input.lines().enumerate() {
            let line_no = i + 1;
            let line = line.with_context(|| format!("{source}:{line_no}"))?;
            if line.trim().is_empty() {
                continue;
            }
            let record = match jsonl::parse_line(&line) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {source}:{line_no}: {e}");
                    tally.malformed += 1;
                    continue;
                }
            };
            // As a pipeline would: a record whose header names are not all
            // UTF-8 never reaches the plugin.
            let mut result = match record.to_input(&subject.topic, i as i64).into_message() {
                Ok(message) => outcome_json(instance.call(&message)),
                Err(unfit) => json!({"result": unfit.kind, "reason": unfit.reason}),
            };
            let logs = take_lines(&capture);
            result["line"] = json!(line_no);
            if !logs.is_empty() {
                result["logs"] = serde_json::to_value(&logs)?;
            }
            tally.count(&result);
            if let Some((file, path)) = &mut recording {
                writeln!(file, "{}", verdict(&result))
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            memory.record(tally.messages, instance.memory());

            let key = jsonl::encode_bytes(record.key.as_deref());
            let verdict = expected.as_ref().map(|expected| {
                let place = format!("{source}:{line_no} (key {key})");
                check(expected, tally.messages - 1, &result, &place, &expect_name)
            });
            match verdict {
                Some(true) => tally.passed += 1,
                Some(false) => tally.failed += 1,
                None => {}
            }
            let written = match format {
                Format::Json => writeln!(out, "{result}"),
                Format::Pretty => write_pretty(&mut out, line_no, &key, &result, &logs, verdict),
            };
            match written {
                Ok(()) => {}
                // `weir test … | head`: the reader has all it wants.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
                Err(e) => return Err(e.into()),
            }
        }
        drop(out);
        if let Some((mut file, path)) = recording {
            file.flush()
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "recorded {} messages and their verdicts in {}; check them with:\n  {}",
                tally.messages,
                path.display(),
                subject.command
            );
        }
        if let Some(line) = memory.describe(instance.replacements()) {
            eprintln!("{line}");
        }

        let mut summary = String::new();
        if let Some(expected) = &expected {
            let missing = expected.len().saturating_sub(tally.messages);
            if missing > 0 {
                eprintln!(
                    "FAIL {expect_name} has {} expected lines but the input gave {} messages: the last {missing} were not compared",
                    expected.len(),
                    tally.messages
                );
                tally.failed += missing;
            }
            summary.push_str(&format!("{} passed, {} failed", tally.passed, tally.failed));
        } else {
            summary.push_str(&tally.describe());
        }
        if tally.malformed > 0 {
            summary.push_str(&format!(", {} malformed input lines", tally.malformed));
        }
        eprintln!("{summary}");
        Ok(if tally.malformed > 0 {
            ExitCode::from(3)
        } else if tally.failed > 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    }

    /// The weir config file named by a `--config` value without `=`.
    fn weir_config(&self) -> anyhow::Result<Option<PathBuf>> {
        let files: Vec<&String> = self.config.iter().filter(|c| !c.contains('=')).collect();
        match files.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(PathBuf::from(one))),
            more => anyhow::bail!("--config names more than one weir config file: {more:?}"),
        }
    }

    /// The plugin, config and limits to run: the plugin file given, or a
    /// pipeline's.
    fn subject(&self) -> anyhow::Result<Subject> {
        let file = self.weir_config()?;
        let wants_config = self.pipeline.is_some() || self.from_topic.is_some();
        if let (Some(plugin), None) = (&self.plugin, &self.pipeline) {
            let topic = self.topic.clone().unwrap_or_else(|| "test".into());
            let mut command = format!("weir test {}", plugin.display());
            for c in self.config.iter().filter(|c| c.contains('=')) {
                command.push_str(&format!(" --config {c}"));
            }
            return Ok(Subject {
                plugin: plugin.clone(),
                config: self.plugin_config()?,
                limits: Limits::default(),
                topic,
                command: self.rerun(command),
            });
        }
        if !wants_config {
            anyhow::bail!("name the plugin's .wasm file, or a pipeline with --pipeline");
        }
        let path = file.unwrap_or_else(|| PathBuf::from("weir.toml"));
        let config = crate::config::Config::load(&path)?;
        let names = || {
            config
                .pipelines
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
        };
        let spec = match (&self.pipeline, &self.from_topic) {
            (Some(name), _) => config.pipelines.iter().find(|p| &p.name == name).with_context(|| {
                format!("{}: no pipeline {name:?} (pipelines: {:?})", path.display(), names())
            })?,
            (None, Some(topic)) => config
                .pipelines
                .iter()
                .find(|p| &p.input == topic)
                .or_else(|| config.pipelines.iter().find(|p| &p.dead_letter == topic))
                .with_context(|| {
                    format!(
                        "{}: no pipeline reads or dead-letters {topic:?}: name one with --pipeline, or give the plugin's .wasm file",
                        path.display()
                    )
                })?,
            (None, None) => anyhow::bail!("name the plugin's .wasm file, or a pipeline with --pipeline"),
        };
        if self.config.iter().any(|c| c.contains('=')) {
            anyhow::bail!(
                "pipeline {:?} takes its plugin's config from {}: KEY=VALUE --config pairs apply only to a plugin file given",
                spec.name,
                path.display()
            );
        }
        let plugin = match &self.plugin {
            Some(p) => p.clone(),
            None => spec.plugin.clone(),
        };
        let command = format!(
            "weir test --config {} --pipeline {}",
            path.display(),
            spec.name
        );
        Ok(Subject {
            plugin,
            config: spec.plugin_config.clone(),
            limits: spec.limits.clone(),
            topic: self.topic.clone().unwrap_or_else(|| spec.input.clone()),
            command: self.rerun(command),
        })
    }

    fn rerun(&self, command: String) -> String {
        match &self.record {
            Some(dir) => format!(
                "{command} --input {} --expect {}",
                dir.join("input.jsonl").display(),
                dir.join("expected.jsonl").display()
            ),
            None => command,
        }
    }

    /// Reads `topic` into `dir/input.jsonl`; returns that path.
    fn record_input(&self, topic: &str, dir: &Path) -> anyhow::Result<PathBuf> {
        let path = self
            .weir_config()?
            .unwrap_or_else(|| PathBuf::from("weir.toml"));
        let config = crate::config::Config::load(&path)?;
        if config.kafka.is_embedded() {
            anyhow::bail!(
                "{}: brokers = \"embedded\" keeps nothing once `weir run` exits: there is no topic to read",
                path.display()
            );
        }
        let dead_letters = config.pipelines.iter().any(|p| p.dead_letter == topic);
        let consumer =
            crate::kafka::scan::consumer(&config.kafka, &config.kafka.brokers, None, "weir test")?;
        let start = match self.since {
            Some(ms) => crate::kafka::scan::Start::Time(ms),
            None => crate::kafka::scan::Start::Beginning,
        };
        let mut scan =
            crate::kafka::scan::Scan::open(consumer, topic, &start, &Default::default())?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let input = dir.join("input.jsonl");
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(&input)
                .with_context(|| format!("cannot write {}", input.display()))?,
        );
        let limit = self.limit.unwrap_or(usize::MAX);
        let mut n = 0;
        while n < limit {
            let Some(record) = scan.next_record()? else {
                break;
            };
            if self
                .since
                .is_some_and(|s| record.timestamp.is_none_or(|t| t < s))
            {
                continue;
            }
            let line = if dead_letters {
                crate::cli::dlq::DeadLetter::read(record).to_jsonl()
            } else {
                json!({
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "timestamp": record.timestamp,
                    "key": jsonl::encode_bytes(record.key.as_deref()),
                    "value": jsonl::encode_bytes(record.value.as_deref()),
                    "headers": jsonl::encode_raw_headers(&record.headers),
                })
            };
            writeln!(out, "{line}").with_context(|| format!("cannot write {}", input.display()))?;
            n += 1;
        }
        out.flush()
            .with_context(|| format!("cannot write {}", input.display()))?;
        eprintln!("read {n} messages from {topic} into {}", input.display());
        Ok(input)
    }

    /// The `--config` pairs, `@file` values read.
    fn plugin_config(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut config = Vec::new();
        for pair in self.config.iter().filter(|c| c.contains('=')) {
            let (k, v) = pair
                .split_once('=')
                .with_context(|| format!("--config {pair:?}: expected KEY=VALUE"))?;
            let v = match v.strip_prefix('@') {
                Some(file) => std::fs::read_to_string(file)
                    .with_context(|| format!("--config {k}: cannot read {file}"))?,
                None => v.to_string(),
            };
            config.push((k.to_string(), v));
        }
        Ok(config)
    }
}

/// Compares result number `index` (from 0) with its expected line; prints
/// the differences as `FAIL <place> against <file>:<line>` and one line per
/// differing field. True when it matches.
fn check(
    expected: &[(usize, Value)],
    index: usize,
    result: &Value,
    place: &str,
    expect_name: &str,
) -> bool {
    let Some((expected_line, e)) = expected.get(index) else {
        eprintln!(
            "FAIL {place}: no expected line for message {} in {expect_name}",
            index + 1
        );
        return false;
    };
    let diffs = differences(e, result);
    if diffs.is_empty() {
        return true;
    }
    eprintln!("FAIL {place} against {expect_name}:{expected_line}");
    if e.get("result") != result.get("result")
        && let Some(reason) = result.get("reason").and_then(Value::as_str)
    {
        eprintln!("  (actual reason: {reason})");
    }
    for d in diffs.iter().take(MAX_DIFFS) {
        eprintln!("  {d}");
    }
    if diffs.len() > MAX_DIFFS {
        eprintln!("  … and {} more differences", diffs.len() - MAX_DIFFS);
    }
    false
}

fn display(path: Option<&Path>) -> String {
    path.map_or_else(String::new, |p| p.display().to_string())
}

fn take_lines(capture: &Mutex<Vec<GuestLine>>) -> Vec<GuestLine> {
    std::mem::take(&mut *capture.lock().unwrap_or_else(|p| p.into_inner()))
}

/// The expected file's objects with their line numbers; `Err` names the
/// first malformed line.
fn read_expected(path: &Path) -> anyhow::Result<Result<Vec<(usize, Value)>, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(v @ Value::Object(_)) => lines.push((i + 1, v)),
            Ok(_) => {
                return Ok(Err(format!(
                    "{}:{}: expected a JSON object like {{\"result\":\"accepted\"}}",
                    path.display(),
                    i + 1
                )));
            }
            Err(e) => return Ok(Err(format!("{}:{}: not JSON: {e}", path.display(), i + 1))),
        }
    }
    Ok(Ok(lines))
}

/// How each field the expected object names differs in `actual`, one
/// readable line per differing leaf (`outputs[1].topic: expected …, actual …`).
pub fn differences(expected: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Value::Object(fields) = expected {
        for (name, e) in fields {
            match actual.get(name) {
                Some(a) => diff_value(name, e, a, &mut out),
                None => out.push(format!("{name}: expected {}, actual absent", short(e))),
            }
        }
    }
    out
}

fn diff_value(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    if expected == actual {
        return;
    }
    match (expected, actual) {
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                out.push(format!(
                    "{path}: expected {} items, actual {}",
                    e.len(),
                    a.len()
                ));
            }
            for (i, (e, a)) in e.iter().zip(a).enumerate() {
                diff_value(&format!("{path}[{i}]"), e, a, out);
            }
        }
        (Value::Object(e), Value::Object(a)) => {
            let names: std::collections::BTreeSet<&String> = e.keys().chain(a.keys()).collect();
            for name in names {
                let sub = format!("{path}.{name}");
                match (e.get(name), a.get(name)) {
                    (Some(e), Some(a)) => diff_value(&sub, e, a, out),
                    (Some(e), None) => {
                        out.push(format!("{sub}: expected {}, actual absent", short(e)))
                    }
                    (None, Some(a)) => {
                        out.push(format!("{sub}: not expected, actual {}", short(a)))
                    }
                    (None, None) => {}
                }
            }
        }
        _ => out.push(format!(
            "{path}: expected {}, actual {}",
            short(expected),
            short(actual)
        )),
    }
}

/// A JSON value cut to a readable length, saying how long it was.
fn short(v: &Value) -> String {
    cut(&v.to_string())
}

fn cut(text: &str) -> String {
    if text.chars().count() <= PRETTY_WIDTH {
        return text.to_string();
    }
    let head: String = text.chars().take(PRETTY_WIDTH).collect();
    format!("{head}… ({} bytes)", text.len())
}

/// Counts of results, for the summary line.
#[derive(Default)]
struct Tally {
    messages: usize,
    /// Per result kind, and how many records the `outputs` ones produced.
    kinds: BTreeMap<String, usize>,
    records: usize,
    passed: usize,
    failed: usize,
    malformed: usize,
}

impl Tally {
    fn count(&mut self, result: &Value) {
        self.messages += 1;
        let kind = result["result"].as_str().unwrap_or("?").to_string();
        *self.kinds.entry(kind).or_default() += 1;
        self.records += result["outputs"].as_array().map_or(0, Vec::len);
    }

    /// `N messages: N accepted, N invalid, …` (kinds that occurred, plus
    /// accepted and invalid always).
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        for kind in ["accepted", "outputs", "invalid", "failed"] {
            let n = self.kinds.get(kind).copied().unwrap_or(0);
            match kind {
                "outputs" if n > 0 => {
                    parts.push(format!("{n} transformed into {} records", self.records))
                }
                "outputs" | "failed" if n == 0 => {}
                _ => parts.push(format!("{n} {kind}")),
            }
        }
        for (kind, n) in &self.kinds {
            if !matches!(kind.as_str(), "accepted" | "outputs" | "invalid" | "failed") {
                parts.push(format!("{n} {kind}"));
            }
        }
        format!("{} messages: {}", self.messages, parts.join(", "))
    }
}

/// The instance's linear memory after message 1, 10, 100, … and after the
/// last: a plugin that leaks shows as memory that keeps growing.
#[derive(Default)]
struct MemoryTrace {
    /// (messages, bytes) at each power of ten.
    checkpoints: Vec<(usize, usize)>,
    last: (usize, usize),
}

impl MemoryTrace {
    fn record(&mut self, messages: usize, bytes: usize) {
        let next = self.checkpoints.last().map_or(1, |&(n, _)| n * 10);
        if messages == next {
            self.checkpoints.push((messages, bytes));
        }
        self.last = (messages, bytes);
    }

    /// `instance memory: 1216 KiB after 1 message, 1280 KiB after 10, …`;
    /// None before any message.
    fn describe(&self, replacements: u64) -> Option<String> {
        if self.last.0 == 0 {
            return None;
        }
        let mut points = self.checkpoints.clone();
        if points.last() != Some(&self.last) {
            points.push(self.last);
        }
        let parts: Vec<String> = points
            .iter()
            .map(|&(n, bytes)| {
                let unit = if n == 1 { " message" } else { "" };
                format!("{} KiB after {n}{unit}", bytes / 1024)
            })
            .collect();
        let mut line = format!("instance memory: {}", parts.join(", "));
        if replacements > 0 {
            line.push_str(&format!(
                " (the instance was replaced {replacements} time(s); each new one starts afresh)"
            ));
        }
        Some(line)
    }
}

/// One message as a person reads it: the verdict on its line, each output
/// and each log line indented below.
fn write_pretty(
    out: &mut impl Write,
    line_no: usize,
    key: &Value,
    result: &Value,
    logs: &[GuestLine],
    verdict: Option<bool>,
) -> std::io::Result<()> {
    let mark = match verdict {
        Some(true) => "ok   ",
        Some(false) => "FAIL ",
        None => "",
    };
    let kind = result["result"].as_str().unwrap_or("?");
    let what = match (kind, result.get("outputs").and_then(Value::as_array)) {
        ("outputs", Some(outputs)) if outputs.is_empty() => "dropped (0 outputs)".to_string(),
        ("outputs", Some(outputs)) => format!("{} output(s)", outputs.len()),
        _ => match result.get("reason").and_then(Value::as_str) {
            Some(reason) => format!("{kind}: {}", cut(reason)),
            None => kind.to_string(),
        },
    };
    writeln!(
        out,
        "{mark}line {line_no}  key {}  {what}",
        cut(&key.to_string())
    )?;
    for o in result["outputs"].as_array().into_iter().flatten() {
        let topic = o["topic"].as_str().unwrap_or("(output topic)");
        let headers: Vec<String> = o["headers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| format!("{}={}", h[0].as_str().unwrap_or("?"), h[1]))
            .collect();
        writeln!(
            out,
            "    → {topic}  key {}  value {}{}",
            cut(&o["key"].to_string()),
            summarise_bytes(&o["value"]),
            if headers.is_empty() {
                String::new()
            } else {
                format!("  headers {}", cut(&headers.join(", ")))
            }
        )?;
    }
    for l in logs {
        writeln!(out, "    [{}] {}", l.source, l.line)?;
    }
    Ok(())
}

/// A byte field's JSON form, cut: text as itself, binary as its length.
fn summarise_bytes(v: &Value) -> String {
    match v {
        Value::String(s) => cut(s),
        Value::Null => "null".into(),
        other => match other.get("$base64").and_then(Value::as_str) {
            Some(b64) => match BASE64.decode(b64) {
                Ok(bytes) => format!("<{} bytes, not UTF-8>", bytes.len()),
                Err(_) => cut(b64),
            },
            None => cut(&other.to_string()),
        },
    }
}

/// What `--record` expects of a result from now on: its verdict and
/// outputs, not its wording (`reason`), logs or line.
fn verdict(result: &Value) -> Value {
    let mut v = serde_json::Map::new();
    for field in ["result", "outputs"] {
        if let Some(x) = result.get(field) {
            v.insert(field.into(), x.clone());
        }
    }
    Value::Object(v)
}

/// One result line of `weir test`.
pub fn outcome_json(outcome: Outcome) -> Value {
    match outcome {
        Outcome::Accepted => json!({"result": "accepted"}),
        Outcome::Outputs(outputs) => {
            json!({"result": "outputs", "outputs": outputs.iter().map(jsonl::encode_output).collect::<Vec<_>>()})
        }
        Outcome::Invalid(reason) => json!({"result": "invalid", "reason": reason}),
        Outcome::Failed(reason) => json!({"result": "failed", "reason": reason}),
        Outcome::Aborted(a) => json!({"result": a.kind.as_str(), "reason": a.reason}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_expected_fields_are_compared() {
        let actual = json!({"result": "invalid", "reason": "anything", "line": 3});
        assert!(differences(&json!({"result": "invalid"}), &actual).is_empty());
        let d = differences(&json!({"result": "accepted"}), &actual);
        assert_eq!(d, vec![r#"result: expected "accepted", actual "invalid""#]);
        let d = differences(&json!({"logs": []}), &actual);
        assert_eq!(d, vec!["logs: expected [], actual absent"]);
    }

    #[test]
    fn output_differences_name_the_output_and_field() {
        let expected = json!({"result": "outputs", "outputs": [
            {"topic": null, "key": "k", "value": "a", "headers": []},
            {"topic": "eu", "key": "k", "value": "b", "headers": [["i", "1"]]},
        ]});
        let actual = json!({"result": "outputs", "outputs": [
            {"topic": null, "key": "k", "value": "a", "headers": []},
            {"topic": "us", "key": "k", "value": "b", "headers": [["i", "2"]]},
            {"topic": null, "key": "k", "value": "c", "headers": []},
        ]});
        let d = differences(&expected, &actual);
        assert_eq!(
            d,
            vec![
                "outputs: expected 2 items, actual 3",
                r#"outputs[1].headers[0][1]: expected "1", actual "2""#,
                r#"outputs[1].topic: expected "eu", actual "us""#,
            ]
        );
    }

    #[test]
    fn long_values_are_cut_with_their_length() {
        let long = "x".repeat(1000);
        let s = cut(&long);
        assert!(s.ends_with("… (1000 bytes)"), "{s}");
        assert!(s.len() < 100);
        assert_eq!(
            summarise_bytes(&json!({"$base64": "AP8A"})),
            "<3 bytes, not UTF-8>"
        );
    }

    #[test]
    fn memory_is_shown_at_each_power_of_ten_and_at_the_end() {
        let mut m = MemoryTrace::default();
        assert_eq!(m.describe(0), None);
        for n in 1..=1234 {
            m.record(n, if n < 100 { 1 << 20 } else { 2 << 20 });
        }
        assert_eq!(
            m.describe(0).unwrap(),
            "instance memory: 1024 KiB after 1 message, 1024 KiB after 10, \
             2048 KiB after 100, 2048 KiB after 1000, 2048 KiB after 1234"
        );
        m.record(1235, 2 << 20);
        assert!(m.describe(3).unwrap().ends_with(
            "2048 KiB after 1235 (the instance was replaced 3 time(s); each new one starts afresh)"
        ));
    }

    #[test]
    fn the_summary_names_each_kind() {
        let mut t = Tally::default();
        for r in [
            json!({"result": "accepted"}),
            json!({"result": "invalid"}),
            json!({"result": "outputs", "outputs": [{}, {}]}),
            json!({"result": "trap"}),
        ] {
            t.count(&r);
        }
        assert_eq!(
            t.describe(),
            "4 messages: 1 accepted, 1 transformed into 2 records, 1 invalid, 1 trap"
        );
    }
}
