//! Hot reload under load on tansu: a plugin file replaced while messages
//! flow is swapped in between two messages; a broken one is rejected and
//! the running plugin goes on; nothing is lost or doubled.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fixtures;
use crate::kafka::{Setup, setup_with};
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
        tansu,
        t,
        config,
        _dir,
    } = setup_with(2, 0, live.to_str().unwrap(), &|_| vec![], "");
    let weir = WeirProcess::start(&config);

    // Echo: one output per message.
    tansu.produce(&t.input, &messages(0..100, "2"));
    tansu.consume(&[&t.output], 100, LONG, None);

    // Fan-out: the value "2" now makes two outputs.
    deploy(fixtures::FAN_OUT, &live, 0);
    wait_for_log(&weir, "plugin reloaded", 1);
    tansu.produce(&t.input, &messages(100..200, "2"));
    tansu.consume(&[&t.output], 300, LONG, None);

    // A wrong world and garbage are refused; fan-out keeps running.
    deploy(fixtures::WRONG_WORLD, &live, 1);
    wait_for_log(&weir, "reload rejected", 1);
    std::fs::write(&live, b"not wasm").unwrap();
    wait_for_log(&weir, "reload rejected", 2);
    tansu.produce(&t.input, &messages(200..250, "2"));
    tansu.consume(&[&t.output], 400, LONG, None);

    // Ten swaps while 10,000 messages flow; "1" is one output for both plugins.
    tansu.produce(&t.input, &messages(1000..11_000, "1"));
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
    let out = tansu.consume(&[&t.output], 10_400, LONG, Some(IDLE));
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
