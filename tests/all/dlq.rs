//! `weir dlq show`, `weir dlq replay` and `weir test --from-topic --record`
//! on Apache Kafka: dead letters written by a real pipeline (or, for the
//! replay under SIGKILL, by the independent client), read back and checked
//! by the independent aiokafka client.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fixtures;
use crate::kafka::{ORDER_SCHEMA, Setup, order, setup_with};
use crate::support::{TempDir, WEIR, WeirProcess, header, unique};

/// Orders must carry an email too: what the "broken" plugin config asks.
const STRICT_SCHEMA: &str = r#"{"type":"object","properties":{"id":{"type":"integer"},"text":{"type":"string"},"email":{"type":"string"}},"required":["id","text","email"]}"#;

const LONG: Duration = Duration::from_secs(120);
const IDLE: Duration = Duration::from_secs(3);

fn weir(args: &[&str]) -> Output {
    Command::new(WEIR)
        .args(args)
        .env("WEIR_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("weir runs")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs weir, asserts it succeeded; its stdout and stderr.
fn ok(args: &[&str]) -> (String, String) {
    let out = weir(args);
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "weir {args:?} failed ({:?}):\n{stdout}\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

fn strict(partitions: u32) -> Setup {
    setup_with(
        partitions,
        0,
        fixtures::JSON_SCHEMA,
        &|_| vec![("schema".into(), STRICT_SCHEMA.into())],
        "",
    )
}

/// The pipeline's plugin config "fixed": email no longer required.
fn fix(config: &Path) {
    let text = std::fs::read_to_string(config).unwrap();
    let strict = format!("{STRICT_SCHEMA:?}");
    assert!(text.contains(&strict), "{text}");
    std::fs::write(config, text.replace(&strict, &format!("{ORDER_SCHEMA:?}"))).unwrap();
}

fn with_email(i: usize) -> Value {
    json!({"key": format!("k{i}"), "value": {"id": i, "text": format!("Hello {i}"), "email": "a@b"}})
}

/// Runs the pipeline until its output holds `out` records and its
/// dead-letter topic `dead`, counted by Kafka's own GetOffsetShell (the
/// independent aiokafka client cannot read a header name that is not UTF-8).
fn run_pipeline(s: &Setup, out: usize, dead: usize) {
    let weir = WeirProcess::start(&s.config);
    let deadline = Instant::now() + LONG;
    while end_offsets(s, &s.t.output) < out || end_offsets(s, &s.t.dead) < dead {
        assert!(Instant::now() < deadline, "{}", weir.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    weir.signal("TERM");
    let log = weir.log.clone();
    assert!(
        weir.wait(LONG).success(),
        "{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// How many records `topic` holds (no transactions on it): the sum of its
/// partitions' end offsets.
fn end_offsets(s: &Setup, topic: &str) -> usize {
    let out = s
        .kafka
        .tool(
            "org.apache.kafka.tools.GetOffsetShell",
            &["--bootstrap-server", &s.kafka.bootstrap, "--topic", topic],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    out.lines()
        .filter_map(|l| l.rsplit(':').next()?.trim().parse::<usize>().ok())
        .sum()
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Records of any bytes, written with weir's library client (the
/// independent one takes header names as text only).
fn seed(bootstrap: &str, topic: &str, lines: &[Value]) {
    let records: Vec<weir::cli::jsonl::Record> = lines
        .iter()
        .map(|l| weir::cli::jsonl::parse_line(&l.to_string()).unwrap())
        .collect();
    let kafka = weir::config::Kafka {
        brokers: bootstrap.to_string(),
        ..Default::default()
    };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(weir::client::seed(&kafka, bootstrap, topic, &records))
        .unwrap();
}

#[test]
fn dlq_show_counts_what_was_dead_lettered_and_filters_by_kind_and_time() {
    let s = strict(2);
    let config = s.config.to_str().unwrap();
    let mut first: Vec<Value> = (0..6).map(with_email).collect();
    // Four without an email, two with an id of the wrong type.
    first.extend((10..14).map(order));
    first.push(json!({"key": "t1", "value": {"id": "ten", "text": "x", "email": "e"}}));
    first.push(json!({"key": "t2", "value": {"id": "two", "text": "y", "email": "e"}}));
    s.kafka.produce(&s.t.input, &first);
    std::thread::sleep(Duration::from_millis(1500));
    let between = now_ms();
    std::thread::sleep(Duration::from_millis(1500));
    // Later: three more without email, a null key, one with a header name
    // that is not UTF-8, a large binary value.
    let mut second: Vec<Value> = (20..23).map(order).collect();
    second.push(json!({"key": null, "value": {"id": 30}}));
    second.push(json!({"key": "big", "value": {"$base64": "AP8A".repeat(100_000)}}));
    s.kafka.produce(&s.t.input, &second);
    run_pipeline(&s, 6, 11);

    // What the independent client finds in the dead-letter topic (before
    // the record it cannot read is there).
    let dead = s.kafka.consume(&[&s.t.dead], 11, LONG, Some(IDLE));
    assert_eq!(dead.len(), 11);
    for d in &dead {
        assert_eq!(header(d, "weir.error.kind"), Some(&json!("invalid")), "{d}");
    }
    seed(
        &s.kafka.bootstrap,
        &s.t.input,
        &[
            json!({"key": "hostile", "value": {"id": 40, "text": "z", "email": "e"},
                 "headers": [[{"$base64": "wyg="}, "v"], ["ok", "1"]]}),
        ],
    );
    run_pipeline(&s, 6, 12);
    assert_eq!(end_offsets(&s, &s.t.dead), 12, "Kafka's own count");

    let (stdout, stderr) = ok(&[
        "dlq",
        "show",
        "--config",
        config,
        "--pipeline",
        "e2e",
        "--format",
        "json",
    ]);
    let shown = json_lines(&stdout);
    assert_eq!(shown.len(), dead.len() + 1, "{stderr}");
    let shown_keys: BTreeSet<String> = shown.iter().map(|l| l["key"].to_string()).collect();
    let mut dead_keys: BTreeSet<String> = dead.iter().map(|d| d["key"].to_string()).collect();
    dead_keys.insert("\"hostile\"".into());
    assert_eq!(shown_keys, dead_keys);
    for l in &shown {
        assert_eq!(l["topic"], json!(s.t.input), "{l}");
        let names: Vec<&Value> = l["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| &h[0])
            .collect();
        assert!(
            names
                .iter()
                .all(|n| !n.as_str().is_some_and(|n| n.starts_with("weir."))),
            "weir's headers are not the message's: {l}"
        );
    }
    let hostile = shown.iter().find(|l| l["key"] == "hostile").unwrap();
    assert_eq!(hostile["headers"][0][0], json!({"$base64": "wyg="}));
    assert_eq!(hostile["dead_letter"]["kind"], "header-not-utf8");
    assert!(
        stderr.contains("12 dead letters of pipeline e2e")
            && stderr.contains("header-not-utf8 1, invalid 11"),
        "{stderr}"
    );
    // Reasons differing only in quoted values are one group of two.
    assert!(
        stderr
            .lines()
            .any(|l| l.trim_start().starts_with("2  invalid") && l.contains("/id")),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("{}[0]", s.t.input)), "{stderr}");

    // The pretty form: the summary, then each dead letter, cut.
    let (pretty, _) = ok(&["dlq", "show", "--config", config, "--pipeline", "e2e"]);
    assert!(
        pretty.starts_with("12 dead letters of pipeline e2e"),
        "{pretty}"
    );
    assert!(
        pretty.contains("time:") && pretty.contains("from:"),
        "{pretty}"
    );
    assert!(pretty.contains("not UTF-8"), "{pretty}");
    assert!(
        pretty.len() < 20_000,
        "values are cut: {} bytes",
        pretty.len()
    );

    // Filters: by kind, and by time on either side of `between`.
    let count = |extra: &[&str]| {
        let mut args = vec![
            "dlq",
            "show",
            "--config",
            config,
            "--pipeline",
            "e2e",
            "--format",
            "json",
        ];
        args.extend(extra);
        json_lines(&ok(&args).0).len()
    };
    assert_eq!(count(&["--kind", "header-not-utf8"]), 1);
    assert_eq!(count(&["--kind", "invalid"]), 11);
    assert_eq!(count(&["--kind", "trap"]), 0);
    let between = between.to_string();
    assert_eq!(
        count(&["--until", &between]),
        6,
        "the first batch's dead letters"
    );
    assert_eq!(count(&["--since", &between]), 6, "the second batch's");
    assert_eq!(count(&["--since", &between, "--kind", "invalid"]), 5);
    assert_eq!(count(&["--since", "1h"]), 12);
    assert_eq!(count(&["--limit", "3"]), 3);

    let bad = weir(&[
        "dlq",
        "show",
        "--config",
        config,
        "--pipeline",
        "e2e",
        "--since",
        "yesterday",
    ]);
    assert!(!bad.status.success());
    assert!(text(&bad).1.contains("RFC 3339"), "{}", text(&bad).1);
    let missing = weir(&["dlq", "show", "--config", config, "--pipeline", "nope"]);
    assert!(
        text(&missing).1.contains("no pipeline \"nope\""),
        "{}",
        text(&missing).1
    );
}

#[test]
fn a_replay_after_fixing_the_plugin_moves_every_dead_letter_to_the_output_once() {
    let s = strict(1);
    let config = s.config.to_str().unwrap();
    let mut inputs: Vec<Value> = (0..5).map(with_email).collect();
    let mut without: Vec<Value> = (10..17).map(order).collect();
    without[2]["headers"] = json!({"trace": "abc"});
    inputs.extend(without.iter().cloned());
    // Still wrong after the fix: it comes back, replay headers and all.
    inputs.push(json!({"key": "still-bad", "value": {"id": "x", "text": "t", "email": "e"}}));
    s.kafka.produce(&s.t.input, &inputs);
    run_pipeline(&s, 5, 8);
    fix(&s.config);

    let (shown, _) = ok(&[
        "dlq",
        "show",
        "--config",
        config,
        "--pipeline",
        "e2e",
        "--limit",
        "2",
    ]);
    assert!(
        shown.starts_with("8 dead letters of pipeline e2e"),
        "{shown}"
    );
    eprintln!("$ weir dlq show --pipeline e2e --limit 2\n{shown}");

    // The dry run says what would pass now, and changes no topic.
    let before: Vec<usize> = [&s.t.input, &s.t.output, &s.t.dead]
        .iter()
        .map(|t| s.kafka.consume(&[t], 0, LONG, Some(IDLE)).len())
        .collect();
    let (dry, _) = ok(&[
        "dlq",
        "replay",
        "--config",
        config,
        "--pipeline",
        "e2e",
        "--dry-run",
    ]);
    assert!(
        dry.contains("8 read, 7 would pass, 1 would still fail (invalid 1)"),
        "{dry}"
    );
    assert_eq!(dry.matches("would pass  ").count(), 7, "{dry}");
    eprintln!("$ weir dlq replay --pipeline e2e --dry-run\n{dry}");
    assert!(dry.contains("still fails") && dry.contains("/id"), "{dry}");
    let after: Vec<usize> = [&s.t.input, &s.t.output, &s.t.dead]
        .iter()
        .map(|t| s.kafka.consume(&[t], 0, LONG, Some(IDLE)).len())
        .collect();
    assert_eq!(
        before, after,
        "input, output, dead letters: a dry run writes nothing"
    );
    assert_eq!(before, vec![13, 5, 8]);

    let (summary, stderr) = ok(&["dlq", "replay", "--config", config, "--pipeline", "e2e"]);
    assert!(
        summary.contains("(exactly once, group weir-replay-e2e-")
            && summary.contains("8 read, 8 replayed"),
        "{summary}{stderr}"
    );
    eprintln!("$ weir dlq replay --pipeline e2e\n{summary}");
    let (again, _) = ok(&["dlq", "replay", "--config", config, "--pipeline", "e2e"]);
    assert!(again.contains("0 read, 0 replayed"), "once: {again}");

    // The fixed pipeline takes them to the output.
    run_pipeline(&s, 12, 9);
    let out = s.kafka.consume(&[&s.t.output], 12, LONG, Some(IDLE));
    assert_eq!(out.len(), 12, "5 valid at first, 7 replayed");
    let replayed: Vec<&Value> = out
        .iter()
        .filter(|r| header(r, "weir.replay.source").is_some())
        .collect();
    assert_eq!(replayed.len(), 7);
    let sources: BTreeSet<&str> = replayed
        .iter()
        .map(|r| header(r, "weir.replay.source").unwrap().as_str().unwrap())
        .collect();
    assert_eq!(sources.len(), 7, "each from its own dead letter");
    for r in &replayed {
        let source = header(r, "weir.replay.source").unwrap().as_str().unwrap();
        assert!(source.starts_with(&format!("{}[0]@", s.t.dead)), "{source}");
        assert!(header(r, "weir.replay.at").is_some());
        assert!(header(r, "weir.error.kind").is_none() && header(r, "weir.source.topic").is_none());
        let sent = without
            .iter()
            .find(|w| w["key"] == r["key"])
            .expect("a replayed order");
        assert_eq!(r["value"], json!(sent["value"].to_string()));
    }
    let traced = out.iter().find(|r| r["key"] == without[2]["key"]).unwrap();
    assert_eq!(
        header(traced, "trace"),
        Some(&json!("abc")),
        "the input's headers kept"
    );

    // The one still failing is dead-lettered again, its replay visible.
    let dead = s.kafka.consume(&[&s.t.dead], 9, LONG, Some(IDLE));
    let again = &dead[8];
    assert_eq!(again["key"], "still-bad");
    assert!(header(again, "weir.replay.source").is_some(), "{again}");
    let (shown, _) = ok(&["dlq", "show", "--config", config, "--pipeline", "e2e"]);
    assert!(shown.contains("replayed 1 times before"), "{shown}");
    let (refused, _) = ok(&[
        "dlq",
        "replay",
        "--config",
        config,
        "--pipeline",
        "e2e",
        "--max-replays",
        "1",
    ]);
    assert!(
        refused.contains("0 replayed, 1 refused (--max-replays)"),
        "{refused}"
    );
}

/// `n` dead letters as weir writes them, written straight to `topic` by
/// the independent client.
fn fake_dead_letters(n: usize, source: &str) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({"key": format!("k{i}"), "value": {"id": i}, "headers": [
                ["trace", format!("t{i}")],
                ["weir.error.kind", "invalid"],
                ["weir.error.reason", format!("/id: {i} is wrong")],
                ["weir.source.topic", source],
                ["weir.source.partition", "0"],
                ["weir.source.offset", i.to_string()],
                ["weir.pipeline", "e2e"],
                ["weir.plugin", "json_schema.wasm"],
            ]})
        })
        .collect()
}

/// A replay SIGKILLed after a few committed batches, then run again to
/// the end; every dead letter's republished copies, by `weir.replay.source`.
fn replay_killed_halfway(delivery: &str) -> (BTreeMap<String, usize>, usize) {
    const N: usize = 4000;
    let s = strict(2);
    let target = unique("replayed");
    s.kafka.create_topics(1, &[&target]);
    for chunk in fake_dead_letters(N, &s.t.input).chunks(2000) {
        s.kafka.produce(&s.t.dead, chunk);
    }
    let config = s.config.to_str().unwrap();
    let args = [
        "dlq",
        "replay",
        "--config",
        config,
        "--pipeline",
        "e2e",
        "--to",
        &target,
        "--batch",
        "20",
        "--delivery",
        delivery,
    ];
    let log = s.config.with_extension("replay.log");
    let mut first = Command::new(WEIR)
        .args(args)
        .env("WEIR_LOG", "weir=debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + LONG;
    while std::fs::read_to_string(&log)
        .unwrap_or_default()
        .matches("replay batch committed")
        .count()
        < 10
    {
        assert!(
            Instant::now() < deadline,
            "no progress: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        assert!(
            first.try_wait().unwrap().is_none(),
            "the replay ended before it was killed: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let (summary, _) = ok(&args);
    let rest: usize = summary
        .split(" read, ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(rest < N, "the second run resumed: {summary}");
    let copies = if delivery == "exactly-once" {
        s.kafka.consume_committed(&[&target], N, LONG, IDLE)
    } else {
        s.kafka.consume(&[&target], N, LONG, Some(IDLE))
    };
    let mut by_source: BTreeMap<String, usize> = BTreeMap::new();
    for c in &copies {
        let source = header(c, "weir.replay.source").unwrap().as_str().unwrap();
        *by_source.entry(source.to_string()).or_default() += 1;
        assert!(header(c, "weir.error.kind").is_none());
        assert!(header(c, "trace").is_some());
    }
    assert_eq!(by_source.len(), N, "every dead letter republished");
    let expected: BTreeSet<String> = (0..2)
        .flat_map(|p| (0..N).map(move |o| (p, o)))
        .map(|(p, o)| format!("{}[{p}]@{o}", s.t.dead))
        .collect();
    assert!(
        by_source.keys().all(|k| expected.contains(k)),
        "{:?}",
        by_source.keys().next()
    );
    (by_source, rest)
}

#[test]
fn a_replay_killed_halfway_and_run_again_republishes_each_dead_letter_once() {
    let (by_source, rest) = replay_killed_halfway("exactly-once");
    let twice: Vec<_> = by_source.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "republished twice: {twice:?}");
    eprintln!("exactly once: SIGKILLed, then {rest} left to replay; 0 duplicates");
}

#[test]
fn a_replay_at_least_once_killed_halfway_and_run_again_republishes_each_at_least_once() {
    let (by_source, rest) = replay_killed_halfway("at-least-once");
    let duplicates: usize = by_source.values().map(|n| n - 1).sum();
    eprintln!("at least once: SIGKILLed, then {rest} left to replay; {duplicates} duplicates");
}

#[test]
fn recorded_fixtures_from_a_topic_and_its_dead_letters_pass_weir_test_expect() {
    let s = strict(1);
    let config = s.config.to_str().unwrap();
    let mut inputs: Vec<Value> = (0..3).map(with_email).collect();
    inputs.extend((10..13).map(order));
    inputs.push(json!({"key": {"$base64": "AP8="}, "value": {"$base64": "gICA/w=="}}));
    inputs.push(json!({"key": "no-value", "value": null, "headers": {"h": null}}));
    s.kafka.produce(&s.t.input, &inputs);
    seed(
        &s.kafka.bootstrap,
        &s.t.input,
        &[json!({"key": "hostile", "value": "{}", "headers": [[{"$base64": "/w=="}, "x"]]})],
    );
    run_pipeline(&s, 3, 6);

    let dir = TempDir::new();
    let from_input = dir.0.join("input-topic");
    let rec = from_input.to_str().unwrap();
    let (_, stderr) = ok(&[
        "test",
        "--from-topic",
        &s.t.input,
        "--config",
        config,
        "--record",
        rec,
    ]);
    assert!(stderr.contains("read 9 messages"), "{stderr}");
    let input = json_lines(&std::fs::read_to_string(from_input.join("input.jsonl")).unwrap());
    let expected = json_lines(&std::fs::read_to_string(from_input.join("expected.jsonl")).unwrap());
    assert_eq!((input.len(), expected.len()), (9, 9));
    assert_eq!(input[6]["key"], json!({"$base64": "AP8="}));
    assert_eq!(input[6]["value"], json!({"$base64": "gICA/w=="}));
    assert_eq!(input[8]["headers"][0][0], json!({"$base64": "/w=="}));
    let results: Vec<&str> = expected
        .iter()
        .map(|e| e["result"].as_str().unwrap())
        .collect();
    assert_eq!(
        results,
        [
            "accepted",
            "accepted",
            "accepted",
            "invalid",
            "invalid",
            "invalid",
            "invalid",
            "invalid",
            "header-not-utf8"
        ]
    );
    // The command it names, and the plugin file with its config, pass.
    assert!(stderr.contains("--pipeline e2e --input"), "{stderr}");
    let (_, checked) = ok(&[
        "test",
        "--config",
        config,
        "--pipeline",
        "e2e",
        "--input",
        &format!("{rec}/input.jsonl"),
        "--expect",
        &format!("{rec}/expected.jsonl"),
    ]);
    assert!(
        checked.trim_end().ends_with("9 passed, 0 failed"),
        "{checked}"
    );
    let (_, checked) = ok(&[
        "test",
        fixtures::JSON_SCHEMA,
        "--config",
        &format!("schema={STRICT_SCHEMA}"),
        "--input",
        &format!("{rec}/input.jsonl"),
        "--expect",
        &format!("{rec}/expected.jsonl"),
    ]);
    assert!(
        checked.trim_end().ends_with("9 passed, 0 failed"),
        "{checked}"
    );
    // After the fix the fixture catches the change of verdict.
    fix(&s.config);
    let changed = weir(&[
        "test",
        "--config",
        config,
        "--pipeline",
        "e2e",
        "--input",
        &format!("{rec}/input.jsonl"),
        "--expect",
        &format!("{rec}/expected.jsonl"),
    ]);
    assert_eq!(changed.status.code(), Some(1), "{}", text(&changed).1);
    assert!(
        text(&changed).1.contains("3 failed"),
        "{}",
        text(&changed).1
    );

    // On the dead-letter topic: the messages as they were, which the
    // fixed plugin now accepts, but for the ones it still cannot take.
    let from_dead = dir.0.join("dead-topic");
    let rec = from_dead.to_str().unwrap();
    ok(&[
        "test",
        "--from-topic",
        &s.t.dead,
        "--config",
        config,
        "--record",
        rec,
        "--limit",
        "5",
    ]);
    let input = json_lines(&std::fs::read_to_string(from_dead.join("input.jsonl")).unwrap());
    assert_eq!(input.len(), 5);
    for l in &input {
        assert_eq!(l["topic"], json!(s.t.input));
        assert!(l["dead_letter"]["kind"].is_string(), "{l}");
        let names: Vec<String> = l["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h[0].to_string())
            .collect();
        assert!(names.iter().all(|n| !n.contains("weir.")), "{names:?}");
    }
    let (_, checked) = ok(&[
        "test",
        "--config",
        config,
        "--pipeline",
        "e2e",
        "--input",
        &format!("{rec}/input.jsonl"),
        "--expect",
        &format!("{rec}/expected.jsonl"),
    ]);
    assert!(
        checked.trim_end().ends_with("5 passed, 0 failed"),
        "{checked}"
    );
}
