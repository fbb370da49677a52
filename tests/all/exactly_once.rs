//! `delivery = "exactly-once"`: Kafka transactions around each batch of
//! inputs, their outputs, dead letters and offsets. On librdkafka's mock
//! cluster (an abort injected), and on Apache Kafka: SIGKILLs mid-run, a
//! process killed during a rebalance, a transaction aborted by a record the
//! broker refuses; a `read_committed` reader (aiokafka, and Kafka's console
//! consumer) must see every input's result exactly once.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaApiKey;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, Message as _};
use serde_json::{Value, json};
use tokio::sync::watch;
use weir::config::Config;
use weir::plugin::{LogTags, Runtime};

use crate::broker::{Kafka, Options};
use crate::fixtures;
use crate::kafka::Topics;
use crate::scaling::Producer;
use crate::support::{TempDir, WeirProcess, header, unique, value_json};

const SCHEMA: &str = r#"{"type":"object","properties":{"id":{"type":"integer"},"text":{"type":"string"}},"required":["id","text"]}"#;
const LONG: Duration = Duration::from_secs(120);

/// Every tenth order lacks its text: the validator dead-letters it.
fn order(i: usize) -> Value {
    if i % 10 == 9 {
        json!({"id": i})
    } else {
        json!({"id": i, "text": format!("Hello {i}")})
    }
}

/// A config for the JSON-schema validator, exactly-once.
fn write_config(dir: &TempDir, bootstrap: &str, t: &Topics, extra: &str) -> std::path::PathBuf {
    let text = format!(
        "[kafka]\nbrokers = \"{bootstrap}\"\n[kafka.properties]\n\"session.timeout.ms\" = 6000\n\n\
         [[pipeline]]\nname = \"eos\"\ninput = \"{}\"\ngroup = \"{}\"\noutput = \"{}\"\ndead_letter = \"{}\"\n\
         plugin = \"{}\"\ndelivery = \"exactly-once\"\n{extra}\n[pipeline.config]\nschema = {SCHEMA:?}\n",
        t.input,
        t.group,
        t.output,
        t.dead,
        fixtures::JSON_SCHEMA,
    );
    dir.write("weir.toml", &text)
}

/// How many input records carry each id (the test's producer may write a
/// batch twice when the broker is slow to answer: each copy is an input).
type Inputs = BTreeMap<u64, usize>;

/// Ids 0..n, each once.
fn ids_once(n: usize) -> Inputs {
    (0..n as u64).map(|i| (i, 1)).collect()
}

/// The ids of every record of `input`, as a reader of the topic sees them.
fn inputs_of(kafka: &Kafka, input: &str, n: usize) -> Inputs {
    let mut inputs = Inputs::new();
    for r in kafka.consume(&[input], n, LONG, Some(Duration::from_secs(2))) {
        *inputs
            .entry(value_json(&r)["id"].as_u64().expect("an id"))
            .or_default() += 1;
    }
    inputs
}

/// Each input record's result at least once, valid ones in `out`, invalid
/// in `dead`; how many results came more often than their inputs.
fn every_input_at_least_once(out: &[Value], dead: &[Value], inputs: &Inputs) -> usize {
    let mut seen: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for (records, place) in [(out, "output"), (dead, "dead-letter")] {
        for r in records {
            let id = value_json(r)["id"].as_u64().expect("an id");
            seen.entry(id).or_default().push(place);
        }
    }
    let got = |id: &u64| seen.get(id).map_or(0, Vec::len);
    let missing: Vec<_> = inputs
        .iter()
        .filter(|(id, want)| got(id) < **want)
        .collect();
    let repeated: Vec<_> = seen
        .iter()
        .filter(|(id, p)| p.len() > inputs.get(id).copied().unwrap_or(0))
        .collect();
    let misplaced: Vec<_> = seen
        .iter()
        .filter(|(id, p)| {
            let want = if **id % 10 == 9 {
                "dead-letter"
            } else {
                "output"
            };
            p.iter().any(|p| *p != want)
        })
        .collect();
    assert!(
        missing.is_empty() && misplaced.is_empty(),
        "of {} inputs: {} missing (id, input copies) {missing:?}; misplaced {misplaced:?}",
        inputs.values().sum::<usize>(),
        missing.len(),
    );
    if !repeated.is_empty() {
        eprintln!("{} repeated: {repeated:?}", repeated.len());
    }
    repeated
        .iter()
        .map(|(id, p)| p.len() - inputs.get(id).copied().unwrap_or(0))
        .sum()
}

/// Reads every partition of `topic` from the start, `read_committed`,
/// until nothing new came for two seconds; (id, partition) of each record.
fn read_committed(bootstrap: &str, topic: &str, partitions: i32) -> Vec<Value> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("group.id", unique("reader"))
        .create()
        .expect("a reader");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut records = Vec::new();
    let mut idle = std::time::Instant::now();
    while idle.elapsed() < Duration::from_secs(2) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            records.push(json!({"value": value, "partition": m.partition()}));
            idle = std::time::Instant::now();
        }
    }
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_on_the_mock_cluster_survives_an_aborted_transaction() {
    const N: usize = 300;
    let cluster = MockCluster::new(1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    let t = Topics::new(0);
    for topic in [&t.input, &t.output, &t.dead] {
        cluster.create_topic(topic, 2, 1).unwrap();
    }
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    for i in 0..N {
        let value = order(i).to_string();
        let record = FutureRecord::<(), str>::to(&t.input)
            .payload(&value)
            .partition((i % 2) as i32);
        producer
            .send(record, Duration::from_secs(5))
            .await
            .expect("input produced");
    }

    let dir = TempDir::new();
    let config = write_config(
        &dir,
        &bootstrap,
        &t,
        "[pipeline.transaction]\nmax_messages = 40\n",
    );
    let config = Config::load(&config).expect("the config parses");
    let spec = config.pipelines[0].clone();
    let plugin = Runtime::new().unwrap().load(&spec.plugin).unwrap();
    let instance = plugin
        .instantiate(
            &spec.plugin_config,
            &spec.limits,
            LogTags {
                pipeline: spec.name.clone(),
                plugin: plugin.name.clone(),
                capture: None,
            },
        )
        .unwrap();
    // The first offsets sent to a transaction are refused: that transaction
    // must abort, and its messages be consumed again.
    cluster.request_errors(
        RDKafkaApiKey::AddOffsetsToTxn,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED],
    );
    let (_stop, stop_rx) = watch::channel(false);
    let last = (N / 2 - 1) as i64;
    let stop_at = [(0, last), (1, last)].into_iter().collect();
    let stats = tokio::time::timeout(
        LONG,
        weir::delivery::run(
            spec.clone(),
            config.kafka.clone(),
            bootstrap.clone(),
            instance,
            stop_rx,
            Some(stop_at),
            None,
        ),
    )
    .await
    .expect("the pipeline drains the input in time")
    .expect("the pipeline ends cleanly");
    assert!(
        stats.aborted_transactions >= 1,
        "the injected error aborted a transaction: {stats:?}"
    );
    assert!(
        stats.consumed > N as u64,
        "the aborted batch was consumed again: {stats:?}"
    );

    // The mock cluster keeps an aborted transaction's records visible to
    // read_committed readers (it writes no abort markers), so here the
    // aborted batch shows twice; the tests on Kafka below check the filtering.
    let out = read_committed(&bootstrap, &t.output, 2);
    let dead = read_committed(&bootstrap, &t.dead, 2);
    let repeated = every_input_at_least_once(&out, &dead, &ids_once(N));
    assert!(
        repeated <= 40,
        "only the aborted batch (at most max_messages = 40) came twice: {repeated}"
    );
    // The mock acknowledges TxnOffsetCommit without keeping the offsets, so
    // the group's committed offsets are checked on Kafka, not here.
}

/// Waits until `weir` exits; its exit status and log.
fn exit_of(weir: WeirProcess) -> (std::process::ExitStatus, String) {
    let log = weir.log.clone();
    let status = weir.wait(LONG);
    (status, std::fs::read_to_string(log).unwrap_or_default())
}

/// A broker of the test's own with fresh topics, `partitions` each, and an
/// exactly-once config whose transactions stay open `open_for`, so kills
/// land inside one.
fn eos_setup(partitions: u32, open_for: &str) -> (Kafka, Topics, TempDir, std::path::PathBuf) {
    let kafka = Kafka::start();
    let t = Topics::new(0);
    t.create(&kafka, partitions);
    let dir = TempDir::new();
    let config = write_config(
        &dir,
        &kafka.bootstrap,
        &t,
        &format!("[pipeline.transaction]\nmax_messages = 100000\nmax_time = \"{open_for}\"\n"),
    );
    (kafka, t, dir, config)
}

/// Reads everything `read_committed` once the last run stopped, checks each
/// input's result came exactly once (0 lost, 0 duplicates), and returns
/// (inputs, outputs, dead letters) for the report.
fn exactly_once_results(kafka: &Kafka, t: &Topics, n: usize) -> (usize, usize, usize) {
    let inputs = inputs_of(kafka, &t.input, n);
    let total: usize = inputs.values().sum();
    let valid: usize = inputs
        .iter()
        .filter(|(id, _)| *id % 10 != 9)
        .map(|(_, c)| c)
        .sum();
    let out = kafka.consume_committed(&[&t.output], valid, LONG, Duration::from_secs(3));
    let dead = kafka.consume_committed(&[&t.dead], total - valid, LONG, Duration::from_secs(3));
    for r in &dead {
        assert_eq!(
            header(r, "weir.error.kind").and_then(Value::as_str),
            Some("invalid"),
            "{r}"
        );
    }
    let repeated = every_input_at_least_once(&out, &dead, &inputs);
    assert_eq!(
        repeated, 0,
        "a read_committed reader saw {repeated} results twice"
    );
    (total, out.len(), dead.len())
}

/// Kafka's own console consumer (`--isolation-level read_committed`) sees
/// as many records as aiokafka's read_committed reader did.
fn java_reader_agrees(kafka: &Kafka, topic: &str, expected: usize) {
    let values = kafka.console_consume_committed(topic, Duration::from_secs(8));
    assert_eq!(
        values.len(),
        expected,
        "kafka-console-consumer (read_committed) read {} records of {topic}",
        values.len()
    );
}

#[test]
fn exactly_once_through_sigkills_loses_nothing_and_repeats_nothing() {
    const KILLS: usize = 5;
    let (kafka, t, _dir, config) = eos_setup(4, "2s");
    // Inputs keep coming while runs are killed, so each run is killed with
    // work in flight and, as transactions stay open 2 s, inside one.
    let producer = Producer::start_with(
        &kafka.bootstrap,
        &t.input,
        |i| json!({"key": format!("k{i}"), "value": order(i)}),
    );
    let mut seed: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut open_at_kills = 0;
    let mut committed = 0;
    let topics = [t.output.as_str(), t.dead.as_str()];
    for round in 0..KILLS {
        let weir = WeirProcess::start(&config);
        // Each run commits something of its own before it is killed, at a
        // random moment after.
        let _ =
            kafka.consume_committed(&[&t.output], committed + 1, LONG, Duration::from_millis(1));
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = Duration::from_millis(100 + (seed >> 33) % 1900);
        std::thread::sleep(delay);
        weir.signal("KILL");
        let (_, log) = exit_of(weir);
        assert!(log.contains("exactly-once pipeline started"), "{log}");
        let visible = kafka
            .consume_committed(&topics, 1, LONG, Duration::from_secs(1))
            .len();
        let written = kafka
            .consume(&topics, 1, LONG, Some(Duration::from_secs(1)))
            .len();
        // Records of the killed run's open transaction: written, not
        // visible to read_committed, aborted by the next run's fencing.
        open_at_kills += written.saturating_sub(visible);
        committed = kafka
            .consume_committed(&[&t.output], 1, LONG, Duration::from_secs(1))
            .len();
        eprintln!(
            "SIGKILL {} after {delay:?}: {visible} records committed, {written} written",
            round + 1
        );
    }
    let n = producer.finish();
    let last = WeirProcess::start(&config);
    let (total, out, dead) = exactly_once_results(&kafka, &t, n);
    last.signal("TERM");
    let (status, log) = exit_of(last);
    assert!(status.success(), "SIGTERM exits 0: {log}");
    java_reader_agrees(&kafka, &t.output, out);
    eprintln!(
        "exactly-once on Apache Kafka: {total} inputs through {KILLS} SIGKILLs: {out} outputs, \
         {dead} dead letters, 0 lost, 0 duplicates; {open_at_kills} records were in open \
         transactions at the kills (aborted)"
    );
    assert!(
        open_at_kills > 0,
        "no kill landed inside an open transaction"
    );
}

/// Two processes share the input. A second one joins, and the first is
/// SIGKILLed while the group rebalances: the survivor takes its partitions
/// from the last committed transaction (KIP-447: the group's generation
/// fences the dead member's offsets), and the first, restarted, fences its
/// own open transaction. A read_committed reader sees each input once.
#[test]
fn exactly_once_with_a_process_killed_during_a_rebalance_repeats_nothing() {
    let (kafka, t, _dir, config) = eos_setup(4, "1s");
    let producer = Producer::start_with(
        &kafka.bootstrap,
        &t.input,
        |i| json!({"key": format!("k{i}"), "value": order(i)}),
    );
    let first = WeirProcess::start(&config);
    let _ = kafka.consume_committed(&[&t.output], 50, LONG, Duration::from_millis(1));
    let second = WeirProcess::start(&config);
    // The join starts a rebalance: kill the first while it goes on.
    second.wait_for_log("exactly-once pipeline started", LONG);
    std::thread::sleep(Duration::from_millis(300));
    first.signal("KILL");
    let (_, first_log) = exit_of(first);
    let revoking = first_log.contains("rebalance");
    // The survivor owns every partition once the dead member's session
    // (6 s) ends; then the first comes back.
    std::thread::sleep(Duration::from_secs(10));
    let again = WeirProcess::start(&config);
    std::thread::sleep(Duration::from_secs(5));
    let n = producer.finish();
    let (total, out, dead) = exactly_once_results(&kafka, &t, n);
    for weir in [second, again] {
        weir.signal("TERM");
        let (status, log) = exit_of(weir);
        assert!(status.success(), "SIGTERM exits 0: {log}");
        assert!(!log.contains("fenced"), "a live process was fenced: {log}");
    }
    java_reader_agrees(&kafka, &t.dead, dead);
    eprintln!(
        "exactly-once, two processes, one SIGKILLed during a rebalance (it had logged a \
         rebalance: {revoking}): {total} inputs, {out} outputs, {dead} dead letters, 0 lost, \
         0 duplicates"
    );
}

/// A record the broker refuses for good (2 MiB: the input and dead-letter
/// topics take it, the output topic, at Kafka's default 1 MiB limit, does
/// not) aborts its transaction; the batch is consumed again, and that
/// record, done again, becomes a `too-large` dead letter, once, instead of
/// being retried forever.
#[test]
fn exactly_once_dead_letters_a_record_the_broker_refuses_for_good_once() {
    const N: usize = 200;
    // A valid order, but too large for the output; its id ends in 9, where
    // the checks below expect a dead letter.
    const BIG: usize = 109;
    let (kafka, t, _dir, config) = eos_setup(1, "500ms");
    for topic in [&t.input, &t.dead] {
        kafka.alter_topic(topic, &["--add-config", "max.message.bytes=4194304"]);
    }
    let big = |i: usize| json!({"id": i, "text": "x".repeat(2 << 20)});
    let lines: Vec<Value> = (0..N)
        .map(|i| json!({"value": if i == BIG { big(i) } else { order(i) }}))
        .collect();
    kafka.produce(&t.input, &lines);
    let weir = WeirProcess::start(&config);
    let inputs = inputs_of(&kafka, &t.input, N);
    let invalid = inputs.keys().filter(|id| *id % 10 == 9).count() - 1;
    let out = kafka.consume_committed(&[&t.output], N - invalid - 1, LONG, Duration::from_secs(3));
    let dead = kafka.consume_committed(&[&t.dead], invalid + 1, LONG, Duration::from_secs(3));
    weir.signal("TERM");
    let (status, log) = exit_of(weir);
    assert!(status.success(), "{log}");
    let kinds: Vec<(&str, &str)> = dead
        .iter()
        .map(|r| {
            let kind = header(r, "weir.error.kind")
                .and_then(Value::as_str)
                .unwrap_or("?");
            (
                kind,
                header(r, "weir.source.offset")
                    .and_then(Value::as_str)
                    .unwrap_or("?"),
            )
        })
        .collect();
    let too_large: Vec<_> = kinds.iter().filter(|(k, _)| *k == "too-large").collect();
    let big_offset = BIG.to_string();
    assert_eq!(
        too_large,
        vec![&("too-large", big_offset.as_str())],
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|(k, _)| *k == "invalid").count(),
        invalid,
        "{kinds:?}"
    );
    assert_eq!(
        every_input_at_least_once(&out, &dead, &inputs),
        0,
        "nothing repeated"
    );
    assert!(
        log.contains("the producer refused a record for good"),
        "{log}"
    );
    let aborts = log.matches("transaction aborted").count();
    assert!(aborts >= 1, "{log}");
    eprintln!(
        "exactly-once refusal: {N} inputs; {aborts} transactions aborted; then {} outputs, {} dead letters (1 too-large): 0 lost, 0 duplicates",
        out.len(),
        dead.len()
    );
}

/// A broker that cannot run transactions (its transaction log needs three
/// replicas, and it is one broker): weir stops with an error that says what
/// exactly-once needs, instead of hanging.
#[test]
fn exactly_once_on_a_broker_that_cannot_run_transactions_fails_with_a_clear_error() {
    let kafka = Kafka::start_with(&Options {
        properties: vec![(
            "transaction.state.log.replication.factor".into(),
            "3".into(),
        )],
        ..Options::default()
    });
    let t = Topics::new(0);
    t.create(&kafka, 1);
    let dir = TempDir::new();
    let config = write_config(&dir, &kafka.bootstrap, &t, "");
    kafka.produce(&t.input, &[json!({"value": order(0)})]);
    let started = std::time::Instant::now();
    let (status, log) = exit_of(WeirProcess::start(&config));
    assert!(!status.success(), "weir must not run on: {log}");
    let reason = log
        .lines()
        .rev()
        .find(|l| l.contains("exactly-once"))
        .unwrap_or_else(|| panic!("no line names exactly-once: {log}"));
    assert!(
        reason.contains("needs Kafka transactions") && reason.contains(&kafka.bootstrap),
        "the error names what is missing and where: {reason}"
    );
    eprintln!("refused after {:?}: {reason}", started.elapsed());
}
