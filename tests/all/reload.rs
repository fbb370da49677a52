//! Hot reload under load on Apache Kafka: a plugin file replaced while messages
//! flow is swapped in between two messages; a broken one is rejected and
//! the running plugin goes on; nothing is lost or doubled.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fixtures;
use crate::kafka::{Setup, setup_with};
use crate::metrics::{free_port, get};
use crate::support::{TempDir, WeirProcess};

const LONG: Duration = Duration::from_secs(120);
const IDLE: Duration = Duration::from_secs(3);

/// Replaces `live` with `source` the way deployments do: a copy, then a rename.
fn deploy(source: &str, live: &Path, n: usize) {
    let staged = live.with_extension(format!("staged{n}"));
    std::fs::copy(source, &staged).unwrap();
    std::fs::rename(&staged, live).unwrap();
}

fn wait_for_log(weir: &WeirProcess, needle: &str, count: usize) {
    let deadline = Instant::now() + LONG;
    while weir.log_text().matches(needle).count() < count {
        assert!(
            Instant::now() < deadline,
            "waited for {count} × {needle:?}:\n{}",
            weir.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn messages(ids: std::ops::Range<usize>, value: &str) -> Vec<Value> {
    ids.map(|i| json!({"key": format!("k{i}"), "value": value}))
        .collect()
}

#[test]
fn plugins_swapped_under_load_lose_nothing_and_a_broken_one_is_rejected() {
    let plugins = TempDir::new();
    let live = plugins.0.join("live.wasm");
    std::fs::copy(fixtures::ECHO, &live).unwrap();
    let Setup {
        kafka,
        t,
        config,
        _dir,
    } = setup_with(2, 0, live.to_str().unwrap(), &|_| vec![], "");
    let weir = WeirProcess::start(&config);

    // Echo: one output per message.
    kafka.produce(&t.input, &messages(0..100, "2"));
    kafka.consume(&[&t.output], 100, LONG, None);

    // The same bytes written again (a build refreshing its output) reload nothing.
    deploy(fixtures::ECHO, &live, 99);
    std::thread::sleep(IDLE);
    assert_eq!(
        weir.log_text().matches("plugin reloaded").count(),
        0,
        "{}",
        weir.log_text()
    );

    // Fan-out: the value "2" now makes two outputs.
    deploy(fixtures::FAN_OUT, &live, 0);
    wait_for_log(&weir, "plugin reloaded", 1);
    kafka.produce(&t.input, &messages(100..200, "2"));
    kafka.consume(&[&t.output], 300, LONG, None);

    // A wrong world and garbage are refused; fan-out keeps running.
    deploy(fixtures::WRONG_WORLD, &live, 1);
    wait_for_log(&weir, "reload rejected", 1);
    std::fs::write(&live, b"not wasm").unwrap();
    wait_for_log(&weir, "reload rejected", 2);
    kafka.produce(&t.input, &messages(200..250, "2"));
    kafka.consume(&[&t.output], 400, LONG, None);

    // Ten swaps while 10,000 messages flow; "1" is one output for both plugins.
    kafka.produce(&t.input, &messages(1000..11_000, "1"));
    for n in 0..10 {
        deploy(
            if n % 2 == 0 {
                fixtures::ECHO
            } else {
                fixtures::FAN_OUT
            },
            &live,
            n + 2,
        );
        wait_for_log(&weir, "plugin reloaded", n + 2);
    }
    let out = kafka.consume(&[&t.output], 10_400, LONG, Some(IDLE));
    weir.signal("TERM");
    assert!(weir.wait(LONG).success());

    let mut per_key: BTreeMap<String, usize> = BTreeMap::new();
    for r in &out {
        *per_key
            .entry(r["key"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    for i in 0..250 {
        let expected = if i < 100 { 1 } else { 2 };
        assert_eq!(per_key.get(&format!("k{i}")), Some(&expected), "k{i}");
    }
    for i in 1000..11_000 {
        assert_eq!(
            per_key.get(&format!("k{i}")),
            Some(&1),
            "k{i} once, across ten swaps"
        );
    }
    assert_eq!(out.len(), 10_400);
}

/// Writes a new config the way an editor or a deploy does: a rename.
fn edit(config: &Path, text: &str, n: usize) {
    let staged = config.with_extension(format!("edit{n}"));
    std::fs::write(&staged, text).unwrap();
    std::fs::rename(&staged, config).unwrap();
}

#[test]
fn config_edits_add_remove_and_restart_only_the_pipelines_that_changed() {
    let Setup {
        kafka,
        t: a,
        config,
        _dir,
    } = setup_with(2, 0, fixtures::ECHO, &|_| vec![], "");
    let b = crate::kafka::Topics::new(0);
    b.create(&kafka, 1);
    let original = std::fs::read_to_string(&config).unwrap();
    let pipeline_b = format!(
        "\n[[pipeline]]\nname = \"b\"\ninput = \"{}\"\noutput = \"{}\"\ndead_letter = \"{}\"\nplugin = \"{}\"\n",
        b.input,
        b.output,
        b.dead,
        fixtures::FAN_OUT
    );
    let weir = WeirProcess::start(&config);
    kafka.produce(&a.input, &messages(0..100, "1"));
    kafka.consume(&[&a.output], 100, LONG, None);

    // Added: b starts; a is left alone.
    edit(&config, &(original.clone() + &pipeline_b), 0);
    wait_for_log(&weir, "pipeline added to the config", 1);
    kafka.produce(&b.input, &messages(0..10, "2"));
    kafka.consume(&[&b.output], 20, LONG, None);
    assert_eq!(
        weir.log_text().matches("pipeline settings changed").count(),
        0
    );

    // Changed while messages flow: a restarts with fan-out, nothing lost or doubled.
    kafka.produce(&a.input, &messages(1000..4000, "1"));
    let changed = original.replace(fixtures::ECHO, fixtures::FAN_OUT) + &pipeline_b;
    edit(&config, &changed, 1);
    wait_for_log(&weir, "restarted with its new settings", 1);

    // A broken edit changes nothing.
    edit(&config, "[kafka]\nbrokers = 1\n", 2);
    wait_for_log(&weir, "config reload rejected", 1);
    kafka.produce(&b.input, &messages(10..20, "2"));
    kafka.consume(&[&b.output], 40, LONG, None);

    // Removed: b stops; what reaches its input stays there.
    edit(
        &config,
        &original.replace(fixtures::ECHO, fixtures::FAN_OUT),
        3,
    );
    wait_for_log(&weir, "pipeline removed from the config", 1);
    std::thread::sleep(Duration::from_secs(1));
    kafka.produce(&b.input, &messages(20..30, "2"));

    let out_a = kafka.consume(&[&a.output], 3100, LONG, Some(IDLE));
    let out_b = kafka.consume(&[&b.output], 40, LONG, Some(IDLE));
    weir.signal("TERM");
    assert!(weir.wait(LONG).success());
    assert_eq!(out_b.len(), 40, "b handled nothing after it was removed");
    let mut per_key: BTreeMap<String, usize> = BTreeMap::new();
    for r in &out_a {
        *per_key
            .entry(r["key"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let wrong: Vec<_> = per_key.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        wrong.is_empty(),
        "every message of a once across its restart: {wrong:?}"
    );
    assert_eq!(per_key.len(), 3100);
}

#[test]
fn a_fuel_limit_added_while_running_is_rejected_naming_the_pipeline_and_the_key() {
    let Setup {
        kafka,
        t,
        config,
        _dir,
    } = setup_with(1, 0, fixtures::ECHO, &|_| vec![], "");
    let original = std::fs::read_to_string(&config).unwrap();
    let weir = WeirProcess::start(&config);
    kafka.produce(&t.input, &messages(0..10, "1"));
    kafka.consume(&[&t.output], 10, LONG, None);

    // Started without any fuel limit, the engine meters none: the edit
    // could only be accepted as a limit that bounds nothing.
    edit(
        &config,
        &(original + "[pipeline.limits]\nfuel = 1000000\n"),
        0,
    );
    wait_for_log(&weir, "config reload rejected", 1);
    let log = weir.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("config reload rejected"))
        .unwrap();
    assert!(
        line.contains("pipeline \"e2e\"") && line.contains("`limits.fuel`"),
        "{line}"
    );
    assert!(
        line.contains("the running pipelines stay as they are"),
        "{line}"
    );

    // The pipeline runs on as it was.
    kafka.produce(&t.input, &messages(10..20, "1"));
    let out = kafka.consume(&[&t.output], 20, LONG, Some(IDLE));
    weir.signal("TERM");
    assert!(weir.wait(LONG).success());
    assert_eq!(out.len(), 20);
    assert!(!log.contains("pipeline settings changed"), "{log}");
}

#[test]
fn an_edit_reverted_before_its_restart_happened_restarts_with_the_reverted_settings() {
    let Setup {
        kafka,
        t,
        config,
        _dir,
    } = setup_with(1, 0, fixtures::ECHO, &|_| vec![], "");
    // Outputs linger 10 s in the producer, so a pipeline told to stop waits
    // about that long for its in-flight acknowledgement: the time its
    // restart is pending.
    let http = free_port();
    let original = std::fs::read_to_string(&config)
        .unwrap()
        .replace(
            "[kafka.properties]\n",
            "[kafka.properties]\n\"linger.ms\" = 10000\n",
        )
        .replace(
            "\n[[pipeline]]",
            &format!("[http]\nlisten = \"127.0.0.1:{http}\"\n\n[[pipeline]]"),
        );
    std::fs::write(&config, &original).unwrap();
    kafka.produce(&t.input, &messages(0..1, "2"));
    let weir = WeirProcess::start(&config);
    // k0 is consumed and its output lingers.
    let deadline = Instant::now() + LONG;
    while !get(http, "/metrics")
        .is_some_and(|(_, _, body)| body.contains("weir_in_flight{pipeline=\"e2e\"} 1\n"))
    {
        assert!(
            Instant::now() < deadline,
            "k0 never in flight:\n{}",
            weir.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    edit(
        &config,
        &original.replace(fixtures::ECHO, fixtures::FAN_OUT),
        0,
    );
    wait_for_log(&weir, "pipeline settings changed: restarting it", 1);
    edit(&config, &original, 1);
    wait_for_log(&weir, "restarted with its new settings", 1);
    let log = weir.log_text();
    assert!(
        log.contains("changed while it was stopping"),
        "the revert came while the restart was pending:\n{log}"
    );
    let restarted = log
        .lines()
        .find(|l| l.contains("restarted with its new settings"))
        .unwrap();
    assert!(restarted.contains("echo.wasm"), "{restarted}");

    kafka.produce(&t.input, &messages(1..2, "2"));
    let out = kafka.consume(&[&t.output], 2, LONG, Some(IDLE));
    weir.signal("TERM");
    assert!(weir.wait(LONG).success());
    assert_eq!(
        out.len(),
        2,
        "echo makes one output of each; fan-out would make two of k1"
    );
}
