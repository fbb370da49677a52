//! Lanes on the real broker (Apache Kafka), inputs produced and outputs read
//! by the independent aiokafka client: each key's order with four lanes,
//! SIGKILLs, exactly-once, and a key whose plugin calls are slow.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fixtures;
use crate::kafka::{ORDER_SCHEMA, Setup, check_ids, setup_with};
use crate::support::{WeirProcess, value_json};

const LONG: Duration = Duration::from_secs(120);
const IDLE: Duration = Duration::from_secs(3);

/// Order `i` with one of `keys` keys.
fn keyed(i: usize, keys: usize) -> Value {
    json!({"key": format!("k{}", i % keys), "value": {"id": i, "text": format!("Hello {i}")}})
}

/// Puts `keys` (lines of the `[[pipeline]]` table) into `config`.
fn with_pipeline_keys(config: &Path, keys: &str) {
    let text = std::fs::read_to_string(config).expect("the config");
    let text = text.replacen(
        "\n[pipeline.config]\n",
        &format!("\n{keys}\n[pipeline.config]\n"),
        1,
    );
    std::fs::write(config, text).expect("config written");
}

fn orders_with_lanes(partitions: u32, keys: &str, extra: &str) -> Setup {
    let s = setup_with(
        partitions,
        0,
        fixtures::JSON_SCHEMA,
        &|_| vec![("schema".into(), ORDER_SCHEMA.into())],
        extra,
    );
    with_pipeline_keys(&s.config, keys);
    s
}

/// Each key's ids in the order its output partition holds them.
fn ids_by_key(out: &[Value]) -> BTreeMap<String, Vec<u64>> {
    let mut sorted: Vec<&Value> = out.iter().collect();
    sorted.sort_by_key(|r| (r["partition"].as_i64(), r["offset"].as_i64()));
    let mut by_key: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in sorted {
        let key = r["key"].as_str().expect("a text key").to_string();
        let id = value_json(r)["id"].as_u64().expect("an id");
        by_key.entry(key).or_default().push(id);
    }
    by_key
}

fn assert_each_key_in_order(out: &[Value]) {
    for (key, ids) in ids_by_key(out) {
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "key {key}: out of order: {ids:?}"
        );
    }
}

#[test]
fn four_lanes_keep_each_keys_order_on_one_partition_and_on_four() {
    const N: usize = 4000;
    for partitions in [1, 4] {
        let Setup {
            kafka,
            t,
            config,
            _dir,
        } = orders_with_lanes(partitions, "lanes = 4\norder = \"key\"", "");
        kafka.produce(&t.input, &(0..N).map(|i| keyed(i, 37)).collect::<Vec<_>>());
        let weir = WeirProcess::start(&config);
        let out = kafka.consume(&[&t.output], N, LONG, Some(IDLE));
        weir.signal("TERM");
        assert!(weir.wait(LONG).success());
        check_ids(&out, N as u64, true);
        assert_each_key_in_order(&out);
        assert_eq!(ids_by_key(&out).len(), 37);
    }
}

#[test]
fn sigkills_under_lanes_lose_nothing() {
    const N: usize = 20_000;
    let Setup {
        kafka,
        t,
        config,
        _dir,
    } = orders_with_lanes(4, "lanes = 4\norder = \"key\"", "");
    for chunk in (0..N).collect::<Vec<_>>().chunks(10_000) {
        let lines: Vec<Value> = chunk.iter().map(|i| keyed(*i, 101)).collect();
        kafka.produce(&t.input, &lines);
    }
    let mut seed: u64 = 0x1a9e5;
    for round in 0..3 {
        let weir = WeirProcess::start(&config);
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = Duration::from_millis(500 + (seed >> 33) % 2000);
        std::thread::sleep(delay);
        weir.signal("KILL");
        weir.wait(LONG);
        eprintln!("SIGKILL {} after {delay:?}", round + 1);
    }
    let last = WeirProcess::start(&config);
    let out = kafka.consume(&[&t.output], N, Duration::from_secs(300), Some(IDLE));
    last.signal("TERM");
    assert!(last.wait(LONG).success());
    let duplicates = check_ids(&out, N as u64, false);
    eprintln!("{N} messages, 4 lanes, 3 SIGKILLs: 0 lost, {duplicates} duplicates");
}

#[test]
fn exactly_once_with_lanes_shows_a_read_committed_reader_each_message_once() {
    const N: usize = 6000;
    let Setup {
        kafka,
        t,
        config,
        _dir,
    } = orders_with_lanes(
        1,
        "lanes = 4\norder = \"key\"\ndelivery = \"exactly-once\"",
        "[pipeline.transaction]\nmax_time = \"1s\"\n",
    );
    kafka.produce(&t.input, &(0..N).map(|i| keyed(i, 23)).collect::<Vec<_>>());
    // Killed once something is committed, so a transaction is open at the kill.
    let first = WeirProcess::start(&config);
    kafka.consume_committed(&[&t.output], 1, LONG, Duration::from_millis(1));
    std::thread::sleep(Duration::from_millis(700));
    first.signal("KILL");
    first.wait(LONG);
    let second = WeirProcess::start(&config);
    let out = kafka.consume_committed(&[&t.output], N, Duration::from_secs(180), IDLE);
    second.signal("TERM");
    assert!(second.wait(LONG).success());
    check_ids(&out, N as u64, true);
    assert_each_key_in_order(&out);
}

#[test]
fn a_key_whose_calls_are_slow_does_not_hold_up_the_others() {
    const FAST: usize = 400;
    const SLOW_CALL_MS: u64 = 5000;
    let Setup {
        kafka,
        t,
        config,
        _dir,
    } = setup_with(
        1,
        0,
        fixtures::SLOW_KEY,
        &|_| vec![("ms".into(), SLOW_CALL_MS.to_string())],
        "[pipeline.limits]\ntimeout = \"20s\"\n",
    );
    with_pipeline_keys(&config, "lanes = 4\norder = \"key\"");
    // Three slow calls first, on one partition: 15 s for their lane.
    let mut lines: Vec<Value> = (0..3)
        .map(|i| json!({"key": "slow", "value": {"id": 100_000 + i}}))
        .collect();
    lines.extend((0..FAST).map(|i| json!({"key": format!("k{}", i % 40), "value": {"id": i}})));
    kafka.produce(&t.input, &lines);
    let started = Instant::now();
    let weir = WeirProcess::start(&config);
    // Keys on the other three lanes (about three quarters) come through
    // while the slow lane is still on its first calls.
    let early = kafka.consume(&[&t.output], FAST / 2, Duration::from_secs(10), None);
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(3 * SLOW_CALL_MS),
        "{} records took {took:?}",
        early.len()
    );
    let all = kafka.consume(&[&t.output], FAST + 3, LONG, Some(IDLE));
    weir.signal("TERM");
    assert!(weir.wait(LONG).success());
    assert_eq!(all.len(), FAST + 3);
    assert_each_key_in_order(&all);
    eprintln!("{} of {FAST} fast records out after {took:?}", early.len());
}
