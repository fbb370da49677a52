//! Hostile records on Apache Kafka. An independent client in Go (franz-go,
//! `tests/e2e/hostile`, built by `tests/setup.sh`, found through
//! `WEIR_HOSTILE_CLIENT`) writes ~3000 arbitrary records from a seed: random
//! bytes in keys, values, header keys and header values, null beside empty,
//! up to ~1200 headers, some records within 64 bytes of the input topic's
//! `max.message.bytes`, old, zero and future timestamps, header keys that
//! are not UTF-8 (never a NUL: librdkafka reads header names as C strings),
//! and valid orders among them. weir runs them through the JSON-schema
//! validator; then the same client reads the output and dead-letter topics
//! and matches every input, byte for byte, to the one place it belongs.
//!
//! The seed is printed; `WEIR_HOSTILE_SEED` runs the same records again.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::broker::{Broker, Kafka};
use crate::fixtures;
use crate::kafka::Topics;
use crate::support::{TempDir, WeirProcess, unique};

const ORDER_SCHEMA: &str = r#"{"type":"object","properties":{"id":{"type":"integer"},"text":{"type":"string"}},"required":["id","text"]}"#;
const RECORDS: usize = 3000;
const PARTITIONS: &str = "4";
/// Records of years ago would be deleted under the test: Kafka rolls a
/// segment whose first record is older than `segment.ms` (7 days) and drops
/// it at the next retention check (`retention.ms`, 7 days, by timestamp).
const KEEP: &str = "retention.ms=-1";
/// The output and dead-letter topics take 4 MiB, so a dead letter (an input
/// near the broker's default 1048588 bytes plus weir's headers) fits.
const OUT_MAX_BYTES: &str = "max.message.bytes=4194304";
const LONG: Duration = Duration::from_secs(300);

fn client() -> PathBuf {
    let path = std::env::var_os("WEIR_HOSTILE_CLIENT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "WEIR_HOSTILE_CLIENT is not set: `bash tests/setup.sh` builds the hostile-record \
                 client (tests/e2e/hostile, Go) into the cache and exports its path in \
                 $WEIR_CACHE/env.sh; source that file"
            )
        });
    assert!(
        path.is_file(),
        "WEIR_HOSTILE_CLIENT={} is no file: run `bash tests/setup.sh` and source $WEIR_CACHE/env.sh",
        path.display()
    );
    path
}

/// Runs the Go client: whether it succeeded, and its stdout and stderr.
fn hostile(args: &[&str]) -> (bool, String) {
    let out = Command::new(client())
        .args(args)
        .output()
        .expect("the hostile client runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn hostile_ok(args: &[&str]) -> String {
    let (ok, text) = hostile(args);
    assert!(ok, "hostile {args:?} failed:\n{text}");
    text
}

fn seed() -> String {
    std::env::var("WEIR_HOSTILE_SEED").unwrap_or_else(|_| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        (nanos as u64).to_string()
    })
}

fn write_config(dir: &TempDir, bootstrap: &str, t: &Topics, delivery: &str) -> PathBuf {
    dir.write(
        "weir.toml",
        &format!(
            "[kafka]\nbrokers = \"{bootstrap}\"\n[kafka.properties]\n\"session.timeout.ms\" = 6000\n\n\
             [[pipeline]]\nname = \"hostile\"\ninput = \"{}\"\ngroup = \"{}\"\noutput = \"{}\"\n\
             dead_letter = \"{}\"\nplugin = \"{}\"\ndelivery = \"{delivery}\"\n\
             [pipeline.config]\nschema = {ORDER_SCHEMA:?}\n",
            t.input,
            t.group,
            t.output,
            t.dead,
            fixtures::JSON_SCHEMA,
        ),
    )
}

/// Waits until the group has committed every input (`ends`: the offset after
/// each partition's last record), weir exits, or its log shows a panic;
/// says how far it got.
fn wait_until_handled(kafka: &Kafka, weir: &mut WeirProcess, t: &Topics, ends: &Value) -> String {
    let deadline = Instant::now() + LONG;
    loop {
        // A poll can meet the group coordinator moving (a transient
        // error of aiokafka's): that poll counts as no progress.
        let committed = crate::support::client_result(
            &[
                "committed",
                "--bootstrap",
                &kafka.bootstrap,
                "--group",
                &t.group,
                "--topic",
                &t.input,
            ],
            None,
        )
        .ok()
        .and_then(|out| serde_json::from_str::<Value>(out.trim()).ok())
        .unwrap_or(Value::Null);
        let behind: Vec<String> = ends
            .as_object()
            .expect("ends is an object")
            .iter()
            .filter_map(|(p, end)| {
                let at = committed[p].as_i64().unwrap_or(0);
                let end = end.as_i64().unwrap();
                (at < end).then(|| format!("partition {p} at {at} of {end}"))
            })
            .collect();
        let progress = format!("committed {committed}, inputs end at {ends}");
        if behind.is_empty() {
            return format!("every input committed ({progress})");
        }
        let stopped = if let Some(status) = weir.child.try_wait().unwrap() {
            Some(format!("weir exited ({status})"))
        } else if weir.log_text().contains("panicked") {
            Some("weir's log shows a panic".to_string())
        } else if Instant::now() > deadline {
            Some(format!("not handled within {LONG:?}"))
        } else {
            None
        };
        if let Some(why) = stopped {
            return format!("{why}: {} ({progress})", behind.join(", "));
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Each panic in the log with the two lines after it (the message).
fn panics(log: &str) -> Vec<String> {
    let lines: Vec<&str> = log.lines().collect();
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("panicked"))
        .map(|(i, _)| lines[i..(i + 3).min(lines.len())].join("\n"))
        .collect()
}

/// Copies weir's log and the inputs where a failed run leaves them.
fn keep(log: &Path, inputs: &Path) -> PathBuf {
    let kept = std::env::temp_dir().join(unique("weir-hostile"));
    std::fs::create_dir_all(&kept).unwrap();
    let _ = std::fs::copy(log, kept.join("weir.log"));
    let _ = std::fs::copy(inputs, kept.join("inputs.jsonl"));
    kept
}

/// Produces the hostile records, runs weir on them with `delivery` until
/// every input is committed, stops it with SIGTERM, and checks the outputs;
/// `once`: no input may come out twice.
fn hostile_records_through(delivery: &str, once: bool) {
    let kafka = Broker::shared();
    let t = Topics::new(0);
    let b = kafka.bootstrap.as_str();
    hostile_ok(&[
        "create",
        "--brokers",
        b,
        "--partitions",
        PARTITIONS,
        "--config",
        KEEP,
        &t.input,
    ]);
    hostile_ok(&[
        "create",
        "--brokers",
        b,
        "--partitions",
        PARTITIONS,
        "--config",
        KEEP,
        "--config",
        OUT_MAX_BYTES,
        &t.output,
        &t.dead,
    ]);
    let dir = TempDir::new();
    let inputs = dir.0.join("inputs.jsonl");
    let inputs_arg = inputs.to_str().unwrap();
    let seed = seed();
    eprintln!("hostile records from seed {seed} (WEIR_HOSTILE_SEED={seed} runs them again)");
    let count = RECORDS.to_string();
    let produced = hostile_ok(&[
        "produce",
        "--brokers",
        b,
        "--topic",
        &t.input,
        "--partitions",
        PARTITIONS,
        "--seed",
        &seed,
        "--count",
        &count,
        "--inputs",
        inputs_arg,
    ]);
    let produced: Value = serde_json::from_str(produced.trim()).expect("produce prints JSON");
    assert_eq!(produced["produced"], RECORDS, "{produced}");

    let config = write_config(&dir, b, &t, delivery);
    let mut weir = WeirProcess::start(&config);
    let progress = wait_until_handled(&kafka, &mut weir, &t, &produced["ends"]);
    eprintln!("{progress}");
    if weir.child.try_wait().unwrap().is_none() {
        weir.signal("TERM");
    }
    let log_path = weir.log.clone();
    let status = weir.wait(LONG);
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();

    let mut check = vec![
        "check",
        "--brokers",
        b,
        "--input",
        &t.input,
        "--output",
        &t.output,
        "--dead-letter",
        &t.dead,
        "--inputs",
        inputs_arg,
    ];
    if once {
        check.push("--once");
    }
    let (checked, report) = hostile(&check);
    eprintln!("{report}");

    let mut failures = Vec::new();
    if !status.success() {
        failures.push(format!("weir exited with {status}, not 0"));
    }
    let panics = panics(&log);
    if !panics.is_empty() {
        failures.push(format!(
            "weir's log shows {} panics; the first:\n{}",
            panics.len(),
            panics[0]
        ));
    }
    if !checked {
        failures.push(format!("the check failed:\n{report}"));
    }
    if !failures.is_empty() {
        let kept = keep(&log_path, &inputs);
        panic!(
            "{delivery}, seed {seed}: {progress}\n{}\nweir's log and the inputs kept in {}",
            failures.join("\n"),
            kept.display()
        );
    }
}

#[test]
fn hostile_records_at_least_once_each_reach_the_output_or_dead_letter_topic_unchanged() {
    hostile_records_through("at-least-once", false);
}

#[test]
fn hostile_records_exactly_once_each_reach_the_output_or_dead_letter_topic_once_unchanged() {
    hostile_records_through("exactly-once", true);
}
