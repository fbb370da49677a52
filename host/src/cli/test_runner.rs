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
//!   init logs and the summary line go to stderr, so `--format json` output
//!   stays machine-readable.
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
#[derive(Parser)]
pub struct Test {
    /// The plugin's `.wasm` component.
    plugin: PathBuf,
    /// JSON lines `{"key":…, "value":…, "headers":{…}, "topic":…}`; stdin if absent.
    #[arg(long, short)]
    input: Option<PathBuf>,
    /// A `key=value` for the plugin's init (repeatable); `key=@file` reads a file.
    #[arg(long = "config", short = 'c', value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// The topic messages seem to come from when a line names none.
    #[arg(long, default_value = "test")]
    topic: String,
    /// Expected results, one JSON object per input message (line n for
    /// message n). Only the fields an expected object has are compared;
    /// any difference exits 1 with a diff on stderr.
    #[arg(long, short = 'e', value_name = "FILE.jsonl")]
    expect: Option<PathBuf>,
    /// `json`: one JSON line per message; `pretty`: one readable line per
    /// message, outputs and logs indented below it. Default: pretty on a
    /// terminal, json otherwise.
    #[arg(long, value_enum)]
    format: Option<Format>,
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
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let config = self.plugin_config()?;
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

        let runtime = Runtime::new()?;
        let plugin = match runtime.load(&self.plugin) {
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
        let mut instance = match plugin.instantiate(&config, &Limits::default(), tags) {
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
            let message = record.to_message(&self.topic, i as i64);
            let mut result = outcome_json(instance.call(&message));
            let logs = take_lines(&capture);
            result["line"] = json!(line_no);
            if !logs.is_empty() {
                result["logs"] = serde_json::to_value(&logs)?;
            }
            tally.count(&result);

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

    /// The `--config` pairs, `@file` values read.
    fn plugin_config(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut config = Vec::new();
        for pair in &self.config {
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
