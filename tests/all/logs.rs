//! `--log-format json`: every line about a message carries the pipeline,
//! topic, partition and offset, guest lines and failure-policy lines
//! included, at the default level (the per-message span is debug-only).

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::broker::Broker;
use crate::fixtures;
use crate::kafka::Topics;
use crate::support::{TempDir, WEIR, unique};

const LONG: Duration = Duration::from_secs(120);

#[test]
fn json_lines_about_a_message_name_pipeline_topic_partition_and_offset() {
    let kafka = Broker::shared();
    let (noisy, failing) = (Topics::new(0), Topics::new(0));
    noisy.create(&kafka, 2);
    failing.create(&kafka, 1);
    let dir = TempDir::new();
    let pipeline = |name: &str, t: &Topics, plugin: &str, extra: &str| {
        format!(
            "[[pipeline]]\nname = \"{name}\"\ninput = \"{}\"\ngroup = \"{}\"\noutput = \"{}\"\n\
             dead_letter = \"{}\"\nplugin = \"{plugin}\"\n{extra}\n",
            t.input, t.group, t.output, t.dead
        )
    };
    let config = dir.write(
        "weir.toml",
        &format!(
            "[kafka]\nbrokers = \"{}\"\n[kafka.properties]\n\"session.timeout.ms\" = 6000\n\n{}{}",
            kafka.bootstrap,
            pipeline("noisy", &noisy, fixtures::NOISY, ""),
            pipeline(
                "failing",
                &failing,
                fixtures::FAIL,
                "[pipeline.on_failure]\nretries = 1\nbackoff = \"10ms\"\n"
            ),
        ),
    );
    let log = dir.0.join(format!("{}.log", unique("json")));
    let mut weir = Command::new(WEIR)
        .args(["--log-format", "json", "run", "--no-reload", "--config"])
        .arg(&config)
        .env("WEIR_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();

    let n = 6;
    let lines: Vec<Value> = (0..n)
        .map(|i| json!({"key": format!("k{i}"), "value": format!("v{i}")}))
        .collect();
    kafka.produce(&noisy.input, &lines);
    kafka.produce(&failing.input, &lines[..2]);
    kafka.consume(&[&noisy.output], n, LONG, None);
    kafka.consume(&[&failing.dead], 2, LONG, None);
    let _ = Command::new("kill")
        .args(["-s", "TERM", &weir.id().to_string()])
        .status();
    let deadline = Instant::now() + LONG;
    while weir.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "weir did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }

    let text = std::fs::read_to_string(&log).unwrap();
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let about_a_message = |r: &Value| {
        let message = r["fields"]["message"].as_str().unwrap_or_default();
        // The noisy guest's lines in `validate` name the offset; its `init`
        // lines do not concern a message. Retries concern one.
        message.contains("offset ") || message.contains("retry ")
    };
    let mut guest_offsets = BTreeSet::new();
    let mut retries = 0;
    for r in records.iter().filter(|r| about_a_message(r)) {
        let f = &r["fields"];
        let pipeline = f["pipeline"]
            .as_str()
            .unwrap_or_else(|| panic!("pipeline in {r}"));
        let t = if pipeline == "noisy" {
            &noisy
        } else {
            &failing
        };
        assert_eq!(f["topic"], t.input.as_str(), "{r}");
        assert!(f["partition"].is_i64(), "{r}");
        let offset = f["offset"]
            .as_i64()
            .unwrap_or_else(|| panic!("offset in {r}"));
        if r["target"] == "weir::guest" {
            let said = f["message"].as_str().unwrap();
            assert!(
                said.ends_with(&format!("offset {offset}")),
                "the guest's own offset: {r}"
            );
            guest_offsets.insert((f["partition"].as_i64().unwrap(), offset, said.to_string()));
        } else {
            retries += 1;
        }
    }
    // Three channels (stdout, stderr, log) per message.
    assert_eq!(guest_offsets.len(), 3 * n, "{text}");
    assert_eq!(retries, 2, "one retry line per failing message:\n{text}");
    // Pipeline-level lines name their pipeline.
    for r in &records {
        let message = r["fields"]["message"].as_str().unwrap_or_default();
        if message.starts_with("pipeline ") {
            assert!(r["fields"]["pipeline"].is_string(), "{r}");
        }
    }
}
