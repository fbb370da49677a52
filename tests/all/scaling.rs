//! Scaling out: several `weir run` processes with one config share a
//! 4-partition input through the consumer group. Inputs are produced all
//! the while; processes join and leave (SIGTERM) mid-stream, and the output
//! must hold every input exactly once: offsets are committed on revoke.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fixtures;
use crate::kafka::{Setup, setup_with};
use crate::support::{WeirProcess, client, value_json};

const LONG: Duration = Duration::from_secs(120);
const BATCH: usize = 200;

/// Produces batches of records `line(0)`, `line(1)`… in the background
/// until finished; `produced` counts what the broker acknowledged.
pub struct Producer {
    stop: Arc<AtomicBool>,
    produced: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Producer {
    /// Records `{"key": "k<i>", "value": {"id": i}}`.
    fn start(bootstrap: &str, topic: &str) -> Producer {
        Producer::start_with(
            bootstrap,
            topic,
            |i| json!({"key": format!("k{i}"), "value": {"id": i}}),
        )
    }

    /// Records `line(i)` (JSON lines for `kafka_client.py produce`).
    pub fn start_with(bootstrap: &str, topic: &str, line: fn(usize) -> Value) -> Producer {
        let stop = Arc::new(AtomicBool::new(false));
        let produced = Arc::new(AtomicUsize::new(0));
        let (s, p) = (Arc::clone(&stop), Arc::clone(&produced));
        let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let first = p.load(Ordering::SeqCst);
                let batch: String = (first..first + BATCH)
                    .map(|i| format!("{}\n", line(i)))
                    .collect();
                client(
                    &["produce", "--bootstrap", &bootstrap, "--topic", &topic],
                    Some(&batch),
                );
                p.fetch_add(BATCH, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Producer {
            stop,
            produced,
            thread: Some(thread),
        }
    }

    /// Stops producing; how many were produced.
    pub fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("the producer thread ends cleanly");
        }
        self.produced.load(Ordering::SeqCst)
    }
}

/// The partitions of `topic` in each "rebalance: assigned" line of a log.
fn assignments(log: &str, topic: &str) -> Vec<usize> {
    log.lines()
        .filter(|l| l.contains("rebalance: assigned"))
        .map(|l| l.matches(&format!("{topic}[")).count())
        .collect()
}

/// Waits until the log shows an assignment with at least one partition.
fn wait_assigned(weir: &WeirProcess, topic: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !assignments(&weir.log_text(), topic).iter().any(|n| *n > 0) {
        assert!(
            Instant::now() < deadline,
            "no partition assigned within 60 s; log:\n{}",
            weir.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `consumed_per_partition` a stopped process logged, summed.
fn consumed(log: &str) -> u64 {
    let line = log
        .lines()
        .find(|l| l.contains("consumed_per_partition"))
        .unwrap_or_else(|| panic!("no per-partition count in the log:\n{log}"));
    // `consumed_per_partition={0: 12, 3: 40}`, maybe with colour codes around `=`.
    let map = line
        .split("consumed_per_partition")
        .nth(1)
        .and_then(|rest| rest.split('{').nth(1))
        .and_then(|rest| rest.split('}').next())
        .unwrap_or_default();
    map.split(',')
        .filter_map(|pair| pair.split(':').nth(1))
        .map(|n| n.trim().parse::<u64>().expect("a count"))
        .sum()
}

/// How many records carry each id in `records`.
fn id_counts(records: &[Value]) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for r in records {
        *counts
            .entry(value_json(r)["id"].as_u64().expect("an id"))
            .or_default() += 1;
    }
    counts
}

/// Each input record's output once: as many outputs per id as input
/// records carry it (the producer may write a batch twice when the broker
/// is slow to answer: each copy is an input). Panics naming the missing
/// and the repeated.
fn exactly_once(inputs: &[Value], outputs: &[Value]) {
    let (want, got) = (id_counts(inputs), id_counts(outputs));
    let missing: Vec<_> = want
        .iter()
        .filter(|(id, n)| got.get(id).copied().unwrap_or(0) < **n)
        .collect();
    let twice: Vec<_> = got
        .iter()
        .filter(|(id, n)| **n > want.get(id).copied().unwrap_or(0))
        .collect();
    assert!(
        missing.is_empty() && twice.is_empty(),
        "of {} inputs: {} missing (id, copies) {missing:?}, {} repeated {twice:?}",
        inputs.len(),
        missing.len(),
        twice.len()
    );
}

#[test]
fn processes_joining_and_leaving_share_the_input_and_process_each_message_once() {
    let Setup {
        kafka,
        t,
        config,
        _dir,
    } = setup_with(4, 0, fixtures::ECHO, &|_| vec![], "");
    let producer = Producer::start(&kafka.bootstrap, &t.input);

    let a = WeirProcess::start(&config);
    wait_assigned(&a, &t.input);
    std::thread::sleep(Duration::from_secs(2));
    let b = WeirProcess::start(&config);
    wait_assigned(&b, &t.input);
    std::thread::sleep(Duration::from_secs(3));

    // A leaves mid-stream: B takes all four partitions.
    a.signal("TERM");
    let a_log = a.log.clone();
    assert!(a.wait(LONG).success(), "SIGTERM exits 0");
    let a_log = std::fs::read_to_string(a_log).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while assignments(&b.log_text(), &t.input).last() != Some(&4) {
        assert!(
            Instant::now() < deadline,
            "B did not take all 4 partitions after A left; B's log:\n{}",
            b.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));

    // A third joins: B gives some partitions up.
    let c = WeirProcess::start(&config);
    wait_assigned(&c, &t.input);
    std::thread::sleep(Duration::from_secs(3));
    let n = producer.finish();

    let out = kafka.consume(&[&t.output], n, LONG, Some(Duration::from_secs(3)));
    let (b_log, c_log) = (b.log.clone(), c.log.clone());
    b.signal("TERM");
    c.signal("TERM");
    assert!(b.wait(LONG).success());
    assert!(c.wait(LONG).success());
    let (b_log, c_log) = (
        std::fs::read_to_string(b_log).unwrap(),
        std::fs::read_to_string(c_log).unwrap(),
    );
    let b_after_c = assignments(&b_log, &t.input);
    assert!(
        b_after_c.last().is_some_and(|n| *n < 4),
        "B kept all partitions after C joined: {b_after_c:?}"
    );
    let counts = [consumed(&a_log), consumed(&b_log), consumed(&c_log)];
    eprintln!("{n} inputs produced; consumed by A, B, C: {counts:?}");
    assert!(
        counts.iter().all(|c| *c > 0),
        "each process consumed: {counts:?}"
    );
    // Kept for a look when an assertion below fails.
    for (name, text) in [("a", &a_log), ("b", &b_log), ("c", &c_log)] {
        let kept =
            std::env::temp_dir().join(format!("weir-scaling-{}-{name}.log", std::process::id()));
        let _ = std::fs::write(kept, text);
    }
    let inputs = kafka.consume(&[&t.input], n, LONG, Some(Duration::from_secs(2)));
    exactly_once(&inputs, &out);
    assert_eq!(
        counts.iter().sum::<u64>(),
        inputs.len() as u64,
        "nothing was consumed twice across the processes"
    );
}
