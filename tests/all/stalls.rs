//! Nothing waits forever without saying so, and no wait pushes weir out of
//! its group, on Apache Kafka: a record the broker refuses for good goes to
//! the policy at once, and a retry backoff longer than the group's
//! `max.poll.interval.ms` keeps the consumer in the group.

use std::time::Duration;

use serde_json::{Value, json};

use crate::fixtures;
use crate::kafka::{ORDER_SCHEMA, Setup, order, setup_with};
use crate::support::{WeirProcess, header};

const LONG: Duration = Duration::from_secs(120);
const IDLE: Duration = Duration::from_secs(3);

/// At-least-once: a valid 2 MiB order that the input and dead-letter topics
/// take but the output (at Kafka's default 1 MiB) refuses becomes a
/// `too-large` dead letter, logged at error; the messages behind it go on.
/// (Before: librdkafka's own 1,000,000-byte limit refused it, and weir
/// retried it forever, logging at debug.)
#[test]
fn a_record_refused_for_good_is_dead_lettered_as_too_large_and_the_rest_go_on() {
    let Setup {
        kafka,
        t,
        config,
        _dir,
    } = setup_with(
        1,
        0,
        fixtures::JSON_SCHEMA,
        &|_| vec![("schema".into(), ORDER_SCHEMA.into())],
        "",
    );
    for topic in [&t.input, &t.dead] {
        kafka.alter_topic(topic, &["--add-config", "max.message.bytes=4194304"]);
    }
    let mut inputs: Vec<Value> = (0..20).map(order).collect();
    inputs[7] = json!({"key": "big", "value": {"id": 7, "text": "x".repeat(2 << 20)}});
    kafka.produce(&t.input, &inputs);
    let weir = WeirProcess::start(&config);
    let out = kafka.consume(&[&t.output], 19, LONG, Some(IDLE));
    let dead = kafka.consume(&[&t.dead], 1, LONG, Some(IDLE));
    weir.signal("TERM");
    let log = weir.log_text();
    assert!(weir.wait(LONG).success(), "{log}");
    assert_eq!(out.len(), 19, "every other order went through");
    assert_eq!(dead.len(), 1);
    assert_eq!(
        header(&dead[0], "weir.error.kind"),
        Some(&json!("too-large"))
    );
    assert_eq!(header(&dead[0], "weir.source.offset"), Some(&json!("7")));
    let reason = header(&dead[0], "weir.error.reason")
        .and_then(Value::as_str)
        .unwrap_or("");
    assert!(
        reason.contains(&t.output) && reason.contains("too large"),
        "{reason}"
    );
    let refusal = log
        .lines()
        .find(|l| l.contains("the producer refused a record for good"))
        .unwrap_or_else(|| panic!("no refusal logged:\n{log}"));
    assert!(
        refusal.contains("ERROR") && refusal.contains("offset"),
        "{refusal}"
    );
    assert_eq!(kafka.committed(&t.group, &t.input), json!({"0": 20}));
}

/// A retry backoff of 9 s under `max.poll.interval.ms = 7000`: the consumer
/// keeps being polled (its partition paused) while weir waits, so it stays
/// in its group and commits the message once it goes through. (Before: the
/// loop slept unpolled, librdkafka left the group after 7 s, and the
/// commit was lost.)
#[test]
fn a_backoff_longer_than_the_poll_interval_keeps_the_consumer_in_its_group() {
    let extra = "[pipeline.on_failure]\nretries = 2\nbackoff = \"9s\"\nmax_backoff = \"9s\"\n";
    let Setup {
        kafka,
        t,
        config,
        _dir,
    } = setup_with(1, 0, fixtures::FLAKY, &|_| Vec::new(), extra);
    let text = std::fs::read_to_string(&config).expect("the config");
    let text = text.replace(
        "\"session.timeout.ms\" = 6000\n",
        "\"session.timeout.ms\" = 6000\n\"max.poll.interval.ms\" = 7000\n",
    );
    std::fs::write(&config, text).expect("the config written");
    kafka.produce(&t.input, &[json!({"key": "k", "value": "m"})]);
    let weir = WeirProcess::start(&config);
    let out = kafka.consume(&[&t.output], 1, LONG, Some(IDLE));
    weir.signal("TERM");
    let log = weir.log_text();
    assert!(weir.wait(LONG).success(), "{log}");
    assert_eq!(out.len(), 1, "{log}");
    assert_eq!(
        log.matches("retry ").count(),
        2,
        "two retries, 9 s apart:\n{log}"
    );
    assert!(
        !log.contains("maximum poll interval"),
        "the consumer left its group:\n{log}"
    );
    assert!(
        !log.contains("revoking"),
        "no rebalance took the partition away:\n{log}"
    );
    assert_eq!(kafka.committed(&t.group, &t.input), json!({"0": 1}));
}

/// A full window for 9 s under `max.poll.interval.ms = 7000`: one key's
/// call takes 9 s on its lane while the window (5 messages) fills behind
/// it. After a second without taking anything, the loop pauses its input
/// and keeps polling, so it stays in its group. (Before: a full window
/// stopped polling until it had room.)
#[test]
fn a_full_window_longer_than_the_poll_interval_keeps_the_consumer_in_its_group() {
    let Setup {
        kafka,
        t,
        config,
        _dir,
    } = setup_with(
        1,
        0,
        fixtures::SLOW_KEY,
        &|_| vec![("ms".into(), "9000".into())],
        "[pipeline.limits]\ntimeout = \"20s\"\n",
    );
    let text = std::fs::read_to_string(&config).expect("the config");
    let text = text
        .replace(
            "\"session.timeout.ms\" = 6000\n",
            "\"session.timeout.ms\" = 6000\n\"max.poll.interval.ms\" = 7000\n",
        )
        .replacen(
            "\n[pipeline.config]\n",
            "\nlanes = 2\norder = \"key\"\nmax_in_flight = 5\n[pipeline.config]\n",
            1,
        );
    std::fs::write(&config, text).expect("the config written");
    let mut inputs = vec![json!({"key": "slow", "value": "s"})];
    inputs.extend((0..20).map(|i| json!({"key": format!("k{i}"), "value": "m"})));
    kafka.produce(&t.input, &inputs);
    let weir = WeirProcess::start(&config);
    let out = kafka.consume(&[&t.output], 21, LONG, Some(IDLE));
    weir.signal("TERM");
    let log = weir.log_text();
    assert!(weir.wait(LONG).success(), "{log}");
    assert_eq!(out.len(), 21, "{log}");
    assert!(
        !log.contains("maximum poll interval"),
        "the consumer left its group:\n{log}"
    );
    assert!(
        !log.contains("revoking"),
        "no rebalance took the partition away:\n{log}"
    );
    assert_eq!(kafka.committed(&t.group, &t.input), json!({"0": 21}));
}

/// An output topic that takes at most 20,000 bytes a batch, and 3,000
/// small orders at once: weir keeps its producer's batches within the
/// limit, so every order goes through and none is dead-lettered. (Before:
/// librdkafka batched up to 1,000,000 bytes, the broker refused whole
/// batches, and small records became `too-large` dead letters.)
#[test]
fn small_records_fit_an_output_topic_with_a_small_max_message_bytes() {
    const N: usize = 3000;
    let Setup {
        kafka,
        t,
        config,
        _dir,
    } = setup_with(
        1,
        0,
        fixtures::JSON_SCHEMA,
        &|_| vec![("schema".into(), ORDER_SCHEMA.into())],
        "",
    );
    kafka.alter_topic(&t.output, &["--add-config", "max.message.bytes=20000"]);
    kafka.produce(&t.input, &(0..N).map(order).collect::<Vec<_>>());
    let weir = WeirProcess::start(&config);
    let out = kafka.consume(&[&t.output], N, LONG, Some(IDLE));
    weir.signal("TERM");
    let log = weir.log_text();
    assert!(weir.wait(LONG).success(), "{log}");
    assert_eq!(out.len(), N, "{log}");
    let dead = kafka.consume(&[&t.dead], 0, Duration::from_secs(10), Some(IDLE));
    assert!(
        dead.is_empty(),
        "{} dead letters: {:?}",
        dead.len(),
        dead.first()
    );
    assert!(log.contains("batch.size = 20000"), "{log}");
}

/// An input written in transactions (Kafka's own `ProducerPerformance`,
/// a transaction every 100 ms) holds a commit marker after each one: an
/// offset with no record. weir counts such offsets (`skipped_offsets`, in
/// `/metrics` as `weir_offsets_skipped_total`) and does not warn about
/// them. (Before: a "jumped from offset" warning per transaction.)
#[test]
fn offsets_held_by_transaction_markers_are_counted_not_warned_about() {
    let Setup {
        kafka,
        t,
        config,
        _dir,
    } = setup_with(1, 0, fixtures::NOOP, &|_| Vec::new(), "");
    let bootstrap = format!("bootstrap.servers={}", kafka.bootstrap);
    let txn_id = crate::support::unique("perf");
    kafka
        .tool(
            "org.apache.kafka.tools.ProducerPerformance",
            &[
                "--topic",
                &t.input,
                "--num-records",
                "100",
                "--record-size",
                "20",
                "--throughput",
                "200",
                "--producer-props",
                &bootstrap,
                "--transactional-id",
                &txn_id,
                "--transaction-duration-ms",
                "100",
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let weir = WeirProcess::start(&config);
    let out = kafka.consume(&[&t.output], 100, LONG, Some(IDLE));
    weir.signal("TERM");
    let log_file = weir.log.clone();
    let status = weir.wait(LONG);
    let log = std::fs::read_to_string(log_file).unwrap_or_default();
    assert!(status.success(), "{log}");
    assert_eq!(out.len(), 100);
    assert!(!log.contains("jumped"), "{log}");
    let skipped: u64 = log
        .split("skipped_offsets: ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no skipped_offsets in the stop summary:\n{log}"));
    assert!(
        skipped >= 1,
        "the markers between transactions were counted:\n{log}"
    );
}

/// Commit on revoke has a deadline: a lane stuck in a 60 s call when a
/// second process joins the group holds the rebalance for 30 s, not for
/// the call. The first process then gives the unfinished message up
/// uncommitted (logged with its count), and the partitions move on.
#[test]
fn a_rebalance_waits_at_most_30_s_for_a_stuck_lane_then_gives_it_up_uncommitted() {
    let Setup {
        kafka,
        t,
        config,
        _dir,
    } = setup_with(
        2,
        0,
        fixtures::SLOW_KEY,
        &|_| vec![("ms".into(), "60000".into())],
        "[pipeline.limits]\ntimeout = \"90s\"\n",
    );
    let text = std::fs::read_to_string(&config).expect("the config");
    let text = text.replacen(
        "\n[pipeline.config]\n",
        "\nlanes = 2\norder = \"key\"\n[pipeline.config]\n",
        1,
    );
    std::fs::write(&config, text).expect("the config written");
    let mut inputs: Vec<Value> = vec![json!({"key": "slow", "value": "s", "partition": 0})];
    inputs
        .extend((0..20).map(|i| json!({"key": format!("k{i}"), "value": "m", "partition": i % 2})));
    kafka.produce(&t.input, &inputs);
    let first = WeirProcess::start(&config);
    // Keys on the other lane come through; the slow lane's stay behind.
    kafka.consume(&[&t.output], 5, LONG, None);
    let joined = std::time::Instant::now();
    let second = WeirProcess::start(&config);
    first.wait_for_log("did not finish within 30s", Duration::from_secs(60));
    let held = joined.elapsed();
    second.wait_for_log("rebalance: assigned", Duration::from_secs(30));
    let log = first.log_text();
    first.signal("KILL");
    second.signal("KILL");
    assert!(
        held >= Duration::from_secs(25) && held < Duration::from_secs(55),
        "the revocation gave up after {held:?}:\n{log}"
    );
    assert!(
        log.contains("messages of the revoked partitions did not finish within 30s"),
        "{log}"
    );
    assert!(log.contains("releasing the partitions"), "{log}");
}
