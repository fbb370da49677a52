//! End-to-end on a real broker: Apache Kafka on loopback, inputs produced and
//! outputs read by the independent aiokafka client, weir as a child process.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};

use crate::broker::{Broker, Kafka};
use crate::fixtures;
use crate::support::{TempDir, WeirProcess, header, unique, value_json};

pub const ORDER_SCHEMA: &str = r#"{"type":"object","properties":{"id":{"type":"integer"},"text":{"type":"string"}},"required":["id","text"]}"#;

pub struct Topics {
    pub input: String,
    pub output: String,
    pub dead: String,
    pub routes: Vec<String>,
    pub group: String,
}

impl Topics {
    pub fn new(routes: usize) -> Topics {
        Topics {
            group: unique("group"),
            input: unique("in"),
            output: unique("out"),
            dead: unique("dlq"),
            routes: (0..routes).map(|_| unique("route")).collect(),
        }
    }

    pub fn create(&self, kafka: &Kafka, partitions: u32) {
        let mut all = vec![self.input.as_str(), &self.output, &self.dead];
        all.extend(self.routes.iter().map(String::as_str));
        kafka.create_topics(partitions, &all);
    }
}

/// A config with one pipeline; `plugin_config` lines go under
/// [pipeline.config], `extra` (more [pipeline.*] tables) after it.
fn write_config(
    dir: &TempDir,
    bootstrap: &str,
    t: &Topics,
    plugin: &str,
    plugin_config: &[(&str, &str)],
    extra: &str,
) -> std::path::PathBuf {
    let mut text = format!(
        "[kafka]\nbrokers = \"{}\"\n[kafka.properties]\n\"client.id\" = \"weir-e2e\"\n\"session.timeout.ms\" = 6000\n\n\
         [[pipeline]]\nname = \"e2e\"\ninput = \"{}\"\ngroup = \"{}\"\noutput = \"{}\"\ndead_letter = \"{}\"\n\
         routes = {:?}\nplugin = \"{}\"\n[pipeline.config]\n",
        bootstrap, t.input, t.group, t.output, t.dead, t.routes, plugin,
    );
    for (k, v) in plugin_config {
        text.push_str(&format!("{k:?} = {v:?}\n"));
    }
    text.push_str(extra);
    dir.write("weir.toml", &text)
}

/// A broker with fresh topics and a config for `plugin` on them.
pub struct Setup {
    pub kafka: Broker,
    pub t: Topics,
    pub config: std::path::PathBuf,
    pub _dir: TempDir,
}

fn setup(
    partitions: u32,
    routes: usize,
    plugin: &str,
    plugin_config: &dyn Fn(&Topics) -> Vec<(String, String)>,
) -> Setup {
    setup_with(partitions, routes, plugin, plugin_config, "")
}

/// As `setup`, with more of the pipeline's tables (`[pipeline.limits]` …).
pub fn setup_with(
    partitions: u32,
    routes: usize,
    plugin: &str,
    plugin_config: &dyn Fn(&Topics) -> Vec<(String, String)>,
    extra: &str,
) -> Setup {
    setup_on(
        Broker::shared(),
        partitions,
        routes,
        plugin,
        plugin_config,
        extra,
    )
}

/// As `setup_with`, on `kafka`.
pub fn setup_on(
    kafka: Broker,
    partitions: u32,
    routes: usize,
    plugin: &str,
    plugin_config: &dyn Fn(&Topics) -> Vec<(String, String)>,
    extra: &str,
) -> Setup {
    let t = Topics::new(routes);
    t.create(&kafka, partitions);
    let dir = TempDir::new();
    let pairs = plugin_config(&t);
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let config = write_config(&dir, &kafka.bootstrap, &t, plugin, &pairs, extra);
    Setup {
        kafka,
        t,
        config,
        _dir: dir,
    }
}

/// The JSON-schema validator with the origin's model.
fn orders(partitions: u32) -> Setup {
    setup(partitions, 0, fixtures::JSON_SCHEMA, &|_| {
        vec![("schema".into(), ORDER_SCHEMA.into())]
    })
}

/// Every id in 0..n exactly `once`, or at least once; returns the duplicates.
pub fn check_ids(records: &[Value], n: u64, once: bool) -> usize {
    let got = ids(records);
    let seen: BTreeSet<u64> = got.iter().copied().collect();
    let missing: Vec<u64> = (0..n).filter(|i| !seen.contains(i)).collect();
    assert!(
        missing.is_empty(),
        "lost {} of {n}: {missing:?}",
        missing.len()
    );
    let duplicates = got.len() - seen.len();
    if once {
        assert_eq!(duplicates, 0, "{duplicates} records came out twice");
    }
    duplicates
}

/// If ids are missing from `out`, panics naming where each was in the
/// input and what the group committed: loss must be explainable.
fn explain_missing(kafka: &Kafka, t: &Topics, out: &[Value], n: u64) {
    let seen: BTreeSet<u64> = ids(out).into_iter().collect();
    if (0..n).all(|i| seen.contains(&i)) {
        return;
    }
    let inputs = kafka.consume(&[&t.input], n as usize, LONG, Some(IDLE));
    let places: Vec<String> = inputs
        .iter()
        .filter(|r| !seen.contains(&value_json(r)["id"].as_u64().unwrap()))
        .map(|r| format!("{}@{}", r["partition"], r["offset"]))
        .collect();
    let per_partition: BTreeMap<String, usize> = out.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r["partition"].to_string()).or_default() += 1;
        m
    });
    panic!(
        "lost {} of {n}: input partition@offset {places:?}; committed {}; output records per partition {per_partition:?}; inputs read back {}",
        places.len(),
        kafka.committed(&t.group, &t.input),
        inputs.len()
    );
}

/// At-least-once, checked from outside: every input below the group's
/// committed offset has its output. On failure, keeps weir's log.
fn committed_means_produced(kafka: &Kafka, t: &Topics, log: &std::path::Path) {
    let committed = kafka.committed(&t.group, &t.input);
    let inputs = kafka.consume(&[&t.input], 1, LONG, Some(IDLE));
    let outputs: BTreeSet<u64> = ids(&kafka.consume(&[&t.output], 1, LONG, Some(IDLE)))
        .into_iter()
        .collect();
    let unproduced: Vec<String> = inputs
        .iter()
        .filter(|r| {
            let limit = committed[r["partition"].to_string()].as_i64().unwrap_or(0);
            r["offset"].as_i64().unwrap() < limit
                && !outputs.contains(&value_json(r)["id"].as_u64().unwrap())
        })
        .map(|r| format!("{}@{}", r["partition"], r["offset"]))
        .collect();
    if !unproduced.is_empty() {
        let kept = std::env::temp_dir().join(format!("weir-failed-{}.log", std::process::id()));
        let _ = std::fs::copy(log, &kept);
        panic!(
            "{} inputs committed without their output ({unproduced:?}); committed {committed}; {} outputs; weir's log kept at {}",
            unproduced.len(),
            outputs.len(),
            kept.display()
        );
    }
}

pub fn order(i: usize) -> Value {
    json!({"key": format!("k{i}"), "value": {"id": i, "text": format!("Hello {i}")}})
}

fn ids(records: &[Value]) -> Vec<u64> {
    records
        .iter()
        .map(|r| value_json(r)["id"].as_u64().expect("an id"))
        .collect()
}

const LONG: Duration = Duration::from_secs(120);
const IDLE: Duration = Duration::from_secs(3);

#[test]
fn valid_messages_reach_the_output_and_invalid_ones_the_dead_letter_topic_with_every_header() {
    let Setup {
        kafka,
        t,
        config,
        _dir,
    } = orders(2);
    let mut inputs: Vec<Value> = (0..10).map(order).collect();
    inputs[3]["headers"] = json!({"trace": "abc", "empty": null});
    inputs.push(
        json!({"key": "bad-type", "value": {"id": "ten", "text": "x"}, "headers": {"trace": "t1"}}),
    );
    inputs.push(json!({"key": "missing", "value": {"id": 11}}));
    inputs.push(json!({"key": "not-json", "value": "plain text"}));
    inputs.push(json!({"key": null, "value": {"id": 13}}));
    inputs.push(json!({"key": "null-value", "value": null}));
    inputs.push(json!({"key": "binary", "value": {"$base64": "AP8A/w=="}}));
    kafka.produce(&t.input, &inputs);

    let weir = WeirProcess::start(&config);
    let valid = kafka.consume(&[&t.output], 10, LONG, Some(IDLE));
    let dead = kafka.consume(&[&t.dead], 6, LONG, Some(IDLE));
    weir.signal("TERM");
    assert!(weir.wait(LONG).success());

    let mut got = ids(&valid);
    got.sort();
    assert_eq!(
        got,
        (0..10).collect::<Vec<u64>>(),
        "exactly the valid ones, once each"
    );
    let with_headers = valid.iter().find(|r| r["key"] == "k3").expect("k3 arrived");
    assert_eq!(header(with_headers, "trace"), Some(&json!("abc")));
    assert_eq!(header(with_headers, "empty"), Some(&Value::Null));

    let by_key: BTreeMap<String, &Value> = dead
        .iter()
        .map(|r| (r["key"].as_str().unwrap_or("<null>").to_string(), r))
        .collect();
    assert_eq!(by_key.len(), 6, "{dead:?}");
    for (key, r) in &by_key {
        assert_eq!(
            header(r, "weir.error.kind"),
            Some(&json!("invalid")),
            "{key}"
        );
        assert!(
            header(r, "weir.error.reason")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        );
        assert_eq!(header(r, "weir.source.topic"), Some(&json!(t.input)));
        let partition: i64 = header(r, "weir.source.partition")
            .unwrap()
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((0..2).contains(&partition));
        assert!(
            header(r, "weir.source.offset")
                .unwrap()
                .as_str()
                .unwrap()
                .parse::<i64>()
                .is_ok()
        );
        assert_eq!(header(r, "weir.pipeline"), Some(&json!("e2e")));
        assert_eq!(header(r, "weir.plugin"), Some(&json!("json_schema.wasm")));
    }
    let bad_type = by_key["bad-type"];
    assert_eq!(
        header(bad_type, "trace"),
        Some(&json!("t1")),
        "original headers kept"
    );
    assert!(
        header(bad_type, "weir.error.reason")
            .unwrap()
            .as_str()
            .unwrap()
            .contains("/id")
    );
    assert_eq!(
        bad_type["value"],
        json!(r#"{"id":"ten","text":"x"}"#),
        "original value kept"
    );
    assert_eq!(by_key["binary"]["value"], json!({"$base64": "AP8A/w=="}));
    assert_eq!(by_key["<null>"]["value"], json!(r#"{"id":13}"#));
    assert_eq!(by_key["null-value"]["value"], Value::Null);
}

#[test]
fn a_transformer_fans_out_drops_and_routes_and_an_undeclared_route_is_dead_lettered() {
    let Setup {
        kafka,
        t,
        config,
        _dir,
    } = setup(1, 2, fixtures::ROUTER, &|t| {
        vec![
            ("route.eu".into(), t.routes[0].clone()),
            ("route.us".into(), t.routes[1].clone()),
            ("route.mars".into(), "not-a-declared-route".into()),
        ]
    });
    kafka.produce(
        &t.input,
        &[
            json!({"key": "plain", "value": {"n": 1}}),
            json!({"key": "eu", "value": {"n": 2, "region": "eu"}}),
            json!({"key": "us", "value": {"n": 3, "region": "us"}}),
            json!({"key": "gone", "value": {"n": 4, "drop": true}}),
            json!({"key": "split", "value": {"items": [{"n": 5}, {"n": 6, "region": "eu"}, {"n": 7}]}, "headers": {"h": "v"}}),
            json!({"key": "mars", "value": {"n": 8, "region": "mars"}}),
            json!({"key": "junk", "value": "not an object"}),
        ],
    );
    let weir = WeirProcess::start(&config);
    let out = kafka.consume(&[&t.output], 3, LONG, Some(IDLE));
    let eu = kafka.consume(&[&t.routes[0]], 2, LONG, Some(IDLE));
    let us = kafka.consume(&[&t.routes[1]], 1, LONG, Some(IDLE));
    let dead = kafka.consume(&[&t.dead], 2, LONG, Some(IDLE));
    weir.signal("TERM");
    assert!(weir.wait(LONG).success());

    let ns = |rs: &[Value]| {
        rs.iter()
            .map(|r| value_json(r)["n"].as_u64().unwrap())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(ns(&out), BTreeSet::from([1, 5, 7]));
    assert_eq!(ns(&eu), BTreeSet::from([2, 6]));
    assert_eq!(ns(&us), BTreeSet::from([3]));
    let split: Vec<&Value> = out
        .iter()
        .chain(&eu)
        .filter(|r| r["key"] == "split")
        .collect();
    assert_eq!(split.len(), 3, "fan-out keeps the key");
    for r in split {
        assert_eq!(header(r, "h"), Some(&json!("v")));
        assert!(header(r, "weir.split.index").is_some());
    }
    let kinds: BTreeMap<&str, &str> = dead
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap(),
                header(r, "weir.error.kind").unwrap().as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        BTreeMap::from([("mars", "route"), ("junk", "invalid")])
    );
}

#[test]
fn null_empty_binary_unicode_and_large_keys_values_and_headers_round_trip() {
    let Setup {
        kafka,
        t,
        config,
        _dir,
    } = setup(1, 0, fixtures::ECHO, &|_| vec![]);
    let inputs = vec![
        json!({"key": null, "value": "v1"}),
        json!({"key": "k2", "value": null}),
        json!({"key": {"$base64": "AAEC/w=="}, "value": {"$base64": "gICA/w=="}}),
        json!({"key": "k4", "value": "ünïcödé ✓", "headers": [["dup", "1"], ["dup", "2"], ["none", null], ["bin", {"$base64": "/w=="}]]}),
        json!({"key": "", "value": "", "headers": [["", ""]]}),
        json!({"key": "big", "value": "x".repeat(512 * 1024)}),
    ];
    kafka.produce(&t.input, &inputs);
    let weir = WeirProcess::start(&config);
    let out = kafka.consume(&[&t.output], inputs.len(), LONG, Some(IDLE));
    weir.signal("TERM");
    assert!(weir.wait(LONG).success());
    assert_eq!(out.len(), inputs.len());
    for (sent, got) in inputs.iter().zip(&out) {
        assert_eq!(got["key"], sent["key"]);
        assert_eq!(got["value"], sent["value"]);
        let headers = sent.get("headers").cloned().unwrap_or(json!([]));
        assert_eq!(got["headers"], headers);
    }
}

#[test]
fn ten_thousand_messages_on_a_clean_run_come_out_exactly_once() {
    let Setup {
        kafka,
        t,
        config,
        _dir,
    } = orders(4);
    kafka.produce(&t.input, &(0..10_000).map(order).collect::<Vec<_>>());
    let weir = WeirProcess::start(&config);
    let out = kafka.consume(&[&t.output], 10_000, Duration::from_secs(300), Some(IDLE));
    weir.signal("TERM");
    assert!(weir.wait(LONG).success());
    check_ids(&out, 10_000, true);
}

#[test]
fn a_run_stopped_with_sigterm_and_restarted_reprocesses_nothing() {
    let Setup {
        kafka,
        t,
        config,
        _dir,
    } = orders(4);
    kafka.produce(&t.input, &(0..3000).map(order).collect::<Vec<_>>());

    let first = WeirProcess::start(&config);
    // Stop it mid-stream: as soon as some output exists.
    kafka.consume(&[&t.output], 1, LONG, None);
    first.signal("TERM");
    let first_log = first.log.clone();
    let status = first.wait(LONG);
    assert!(status.success(), "SIGTERM exits 0, got {status:?}");
    committed_means_produced(&kafka, &t, &first_log);

    let second = WeirProcess::start(&config);
    kafka.produce(&t.input, &(3000..4000).map(order).collect::<Vec<_>>());
    let out = kafka.consume(&[&t.output], 4000, Duration::from_secs(120), Some(IDLE));
    second.signal("TERM");
    assert!(second.wait(LONG).success());
    explain_missing(&kafka, &t, &out, 4000);
    check_ids(&out, 4000, true);
    // Kafka's own kafka-consumer-groups agrees with aiokafka: the group
    // committed every input.
    let offsets = kafka.group_offsets(&t.group, &t.input);
    let committed: i64 = offsets
        .values()
        .map(|o| o.expect("each partition committed"))
        .sum();
    assert_eq!(offsets.len(), 4, "{offsets:?}");
    assert_eq!(committed, 4000, "kafka-consumer-groups: {offsets:?}");
}

#[test]
fn a_run_killed_with_sigkill_and_restarted_loses_nothing() {
    let Setup {
        kafka,
        t,
        config,
        _dir,
    } = orders(4);
    kafka.produce(&t.input, &(0..5000).map(order).collect::<Vec<_>>());

    let first = WeirProcess::start(&config);
    kafka.consume(&[&t.output], 500, LONG, None);
    first.signal("KILL");
    first.wait(LONG);

    let second = WeirProcess::start(&config);
    let out = kafka.consume(&[&t.output], 5000, Duration::from_secs(120), Some(IDLE));
    second.signal("TERM");
    assert!(second.wait(LONG).success());
    let duplicates = check_ids(&out, 5000, false);
    eprintln!("SIGKILL: {duplicates} duplicates of 5000");
}

#[test]
fn fifty_thousand_messages_survive_five_sigkills_at_random_moments() {
    let Setup {
        kafka,
        t,
        config,
        _dir,
    } = orders(4);
    const N: usize = 50_000;
    for chunk in (0..N).collect::<Vec<_>>().chunks(10_000) {
        kafka.produce(
            &t.input,
            &chunk.iter().copied().map(order).collect::<Vec<_>>(),
        );
    }
    // Pseudo-random but repeatable kill moments, from 0.3 s to 2.5 s into each run.
    let mut seed: u64 = 0x5eed;
    for round in 0..5 {
        let weir = WeirProcess::start(&config);
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = Duration::from_millis(300 + (seed >> 33) % 2200);
        std::thread::sleep(delay);
        weir.signal("KILL");
        weir.wait(LONG);
        eprintln!("SIGKILL {} after {delay:?}", round + 1);
    }
    let last = WeirProcess::start(&config);
    let out = kafka.consume(&[&t.output], N, Duration::from_secs(600), Some(IDLE));
    last.signal("TERM");
    assert!(last.wait(LONG).success());
    let duplicates = check_ids(&out, N as u64, false);
    eprintln!("50000 messages, 5 SIGKILLs: 0 lost, {duplicates} duplicates");
}

/// A pipeline whose broker died under it: its in-flight records can't be
/// acknowledged, so a graceful stop can't finish. `top` goes before the
/// config's tables.
fn stuck(top: &str) -> (WeirProcess, Setup) {
    let s = setup_on(Broker::own(), 1, 0, fixtures::SLOW, &|_| vec![], "");
    let text = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(&s.config, format!("{top}{text}")).unwrap();
    s.kafka
        .produce(&s.t.input, &(0..200).map(order).collect::<Vec<_>>());
    let weir = WeirProcess::start(&s.config);
    s.kafka.consume(&[&s.t.output], 1, LONG, None);
    s.kafka.stop();
    std::thread::sleep(Duration::from_millis(500));
    (weir, s)
}

#[test]
fn a_second_sigterm_exits_at_once_without_committing() {
    let (mut weir, _s) = stuck("");
    weir.signal("TERM");
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        weir.child.try_wait().unwrap().is_none(),
        "the first signal waits for acknowledgements"
    );
    weir.signal("TERM");
    let started = std::time::Instant::now();
    let status = weir.wait(LONG);
    assert_eq!(status.code(), Some(130));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_graceful_stop_is_bounded_by_shutdown_timeout() {
    let (weir, _s) = stuck("shutdown_timeout = \"2s\"\n");
    weir.signal("TERM");
    let started = std::time::Instant::now();
    let log = weir.log.clone();
    let status = weir.wait(LONG);
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(75), "{text}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(text.contains("shutdown_timeout"), "{text}");
}

#[test]
fn a_broker_down_at_start_is_waited_for_and_logged_then_nothing_is_lost() {
    let port = Kafka::reserve_port();
    let t = Topics::new(0);
    let dir = TempDir::new();
    let config = write_config(
        &dir,
        &format!("127.0.0.1:{port}"),
        &t,
        fixtures::ECHO,
        &[],
        "",
    );
    let weir = WeirProcess::start(&config);
    std::thread::sleep(Duration::from_secs(3));
    let log = weir.log_text();
    assert!(
        log.contains("cannot consume") && log.contains(&format!("127.0.0.1:{port}")),
        "{log}"
    );
    assert!(
        log.matches("cannot consume").count() <= 2,
        "throttled, not a line per attempt:\n{log}"
    );

    let kafka = Kafka::start_on(port);
    t.create(&kafka, 2);
    kafka.produce(&t.input, &(0..500).map(order).collect::<Vec<_>>());
    let out = kafka.consume(&[&t.output], 500, LONG, Some(IDLE));
    weir.signal("TERM");
    assert!(weir.wait(LONG).success());
    check_ids(&out, 500, true);
}

/// The broker stopped by `signal` under a running pipeline and started
/// again on the same log folders: nothing is lost; under exactly-once a
/// `read_committed` reader sees nothing twice either.
fn broker_restart_mid_run(signal: &str, delivery: &str) {
    let dir = TempDir::new();
    let kafka = Kafka::start();
    let t = Topics::new(0);
    t.create(&kafka, 2);
    let config = write_config(
        &dir,
        &kafka.bootstrap,
        &t,
        fixtures::JSON_SCHEMA,
        &[("schema", ORDER_SCHEMA)],
        "",
    );
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace(
        "[pipeline.config]",
        &format!("delivery = \"{delivery}\"\n[pipeline.config]"),
    );
    std::fs::write(&config, text).unwrap();
    kafka.produce(&t.input, &(0..3000).map(order).collect::<Vec<_>>());
    let weir = WeirProcess::start(&config);
    kafka.consume(&[&t.output], 100, LONG, None);
    match signal {
        "TERM" => kafka.stop(),
        _ => kafka.kill(),
    }
    std::thread::sleep(Duration::from_secs(3));
    kafka.resume();
    kafka.produce(&t.input, &(3000..4000).map(order).collect::<Vec<_>>());
    let exactly_once = delivery == "exactly-once";
    let read = std::panic::catch_unwind(|| {
        if exactly_once {
            kafka.consume_committed(&[&t.output], 4000, Duration::from_secs(180), IDLE)
        } else {
            kafka.consume(&[&t.output], 4000, Duration::from_secs(180), Some(IDLE))
        }
    });
    let out = read.unwrap_or_else(|e| {
        eprintln!("weir's log:\n{}", weir.log_text());
        std::panic::resume_unwind(e)
    });
    weir.signal("TERM");
    let log = weir.log.clone();
    assert!(
        weir.wait(LONG).success(),
        "{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    let duplicates = check_ids(&out, 4000, exactly_once);
    eprintln!(
        "broker SIG{signal} and restart, {delivery}: 4000 inputs, 0 lost, {duplicates} duplicates"
    );
}

#[test]
fn a_broker_stopped_and_restarted_mid_run_loses_nothing() {
    broker_restart_mid_run("TERM", "at-least-once");
}

#[test]
fn a_broker_killed_and_restarted_mid_run_loses_nothing() {
    broker_restart_mid_run("KILL", "at-least-once");
}

#[test]
fn exactly_once_through_a_broker_stop_and_restart_repeats_nothing() {
    broker_restart_mid_run("TERM", "exactly-once");
}

#[test]
fn exactly_once_through_a_broker_kill_and_restart_repeats_nothing() {
    broker_restart_mid_run("KILL", "exactly-once");
}
