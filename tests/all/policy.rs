//! Failure policies, the breaker and per-call limits in a running pipeline
//! on Apache Kafka: where each message ends, and what is committed.

use std::time::Duration;

use serde_json::{Value, json};

use crate::fixtures;
use crate::kafka::{Setup, setup_with};
use crate::support::{WeirProcess, header};

const LONG: Duration = Duration::from_secs(60);
const IDLE: Duration = Duration::from_secs(2);

fn values(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"key": format!("k{i}"), "value": format!("m{i}")}))
        .collect()
}

fn kinds(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            header(r, "weir.error.kind")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string()
        })
        .collect()
}

fn no_config(_: &crate::kafka::Topics) -> Vec<(String, String)> {
    Vec::new()
}

#[test]
fn a_failed_message_is_retried_with_backoff_until_it_goes_through() {
    let extra = "[pipeline.on_failure]\nretries = 2\nbackoff = \"10ms\"\n";
    let Setup {
        kafka,
        t,
        config,
        _dir,
    } = setup_with(1, 0, fixtures::FLAKY, &no_config, extra);
    kafka.produce(&t.input, &values(5));
    let weir = WeirProcess::start(&config);
    let out = kafka.consume(&[&t.output], 5, LONG, Some(IDLE));
    let dead = kafka.consume(&[&t.dead], 0, LONG, Some(IDLE));
    weir.signal("TERM");
    assert!(weir.wait(LONG).success());
    assert_eq!(out.len(), 5, "each went through on its third attempt");
    assert!(dead.is_empty(), "{dead:?}");
}

#[test]
fn a_message_still_failing_after_its_retries_is_dead_lettered() {
    let extra = "[pipeline.on_failure]\nretries = 1\nbackoff = \"10ms\"\n";
    let Setup {
        kafka,
        t,
        config,
        _dir,
    } = setup_with(1, 0, fixtures::FLAKY, &no_config, extra);
    kafka.produce(&t.input, &values(5));
    let weir = WeirProcess::start(&config);
    let dead = kafka.consume(&[&t.dead], 5, LONG, Some(IDLE));
    weir.signal("TERM");
    assert!(weir.wait(LONG).success());
    assert_eq!(kinds(&dead), vec!["failed"; 5]);
}

#[test]
fn skip_stores_the_offset_and_produces_nothing() {
    let extra = "[pipeline.on_failure]\nretries = 0\nthen = \"skip\"\n";
    let Setup {
        kafka,
        t,
        config,
        _dir,
    } = setup_with(1, 0, fixtures::FAIL, &no_config, extra);
    kafka.produce(&t.input, &values(5));
    let weir = WeirProcess::start(&config);
    let wait = std::time::Instant::now() + LONG;
    // Nothing is produced, so watch the log for the fifth skip.
    while weir.log_text().matches("skipped by policy").count() < 5 {
        assert!(std::time::Instant::now() < wait, "{}", weir.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    weir.signal("TERM");
    assert!(weir.wait(LONG).success());
    assert!(
        kafka
            .consume(&[&t.output, &t.dead], 0, LONG, Some(IDLE))
            .is_empty()
    );
    assert_eq!(kafka.committed(&t.group, &t.input), json!({"0": 5}));
}

#[test]
fn stop_ends_weir_non_zero_without_committing_the_message() {
    let extra = "[pipeline.on_failure]\nretries = 0\nthen = \"stop\"\n";
    let Setup {
        kafka,
        t,
        config,
        _dir,
    } = setup_with(1, 0, fixtures::FAIL, &no_config, extra);
    kafka.produce(&t.input, &values(3));
    let weir = WeirProcess::start(&config);
    let log = weir.log.clone();
    let status = weir.wait(LONG);
    let text = std::fs::read_to_string(log).unwrap();
    assert!(!status.success(), "{text}");
    assert!(
        text.contains("stopped") && text.contains("fixture failure"),
        "{text}"
    );
    assert!(
        kafka
            .consume(&[&t.output, &t.dead], 0, LONG, Some(IDLE))
            .is_empty()
    );
    assert_eq!(
        kafka.committed(&t.group, &t.input),
        json!({"0": null}),
        "processed again on the next start"
    );
}

const BREAKER: &str = "[pipeline.on_failure]\nretries = 0\n[pipeline.breaker]\nwindow = 4\nfailures = 2\npause = \"100ms\"\nmax_pause = \"200ms\"\n";

#[test]
fn the_breaker_pauses_instead_of_dead_lettering_the_whole_topic() {
    let Setup {
        kafka,
        t,
        config,
        _dir,
    } = setup_with(1, 0, fixtures::FAIL, &no_config, BREAKER);
    kafka.produce(&t.input, &values(20));
    let mut weir = WeirProcess::start(&config);
    let dead = kafka.consume(&[&t.dead], 2, LONG, Some(IDLE));
    let wait = std::time::Instant::now() + LONG;
    while weir.log_text().matches("breaker open").count() < 3 {
        assert!(std::time::Instant::now() < wait, "{}", weir.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(weir.child.try_wait().unwrap().is_none(), "paused, not dead");
    weir.signal("TERM");
    assert!(weir.wait(LONG).success());
    assert_eq!(
        kinds(&dead),
        vec!["failed"; 2],
        "only the failures before the breaker opened"
    );
    assert_eq!(kafka.committed(&t.group, &t.input), json!({"0": 2}));
}

#[test]
fn the_breaker_can_stop_the_pipeline_instead() {
    let extra = BREAKER.replace(
        "max_pause = \"200ms\"\n",
        "max_pause = \"200ms\"\naction = \"stop\"\n",
    );
    let Setup {
        kafka,
        t,
        config,
        _dir,
    } = setup_with(1, 0, fixtures::FAIL, &no_config, &extra);
    kafka.produce(&t.input, &values(20));
    let weir = WeirProcess::start(&config);
    let log = weir.log.clone();
    assert!(!weir.wait(LONG).success());
    assert!(
        std::fs::read_to_string(log)
            .unwrap()
            .contains("breaker open: 3 of the last 3")
    );
    assert_eq!(kafka.consume(&[&t.dead], 2, LONG, Some(IDLE)).len(), 2);
}

#[test]
fn traps_and_limits_are_dead_lettered_with_their_kind_and_the_pipeline_goes_on() {
    let cases: [(&str, &str, Vec<Value>, Vec<&str>); 4] = [
        (
            fixtures::TRAP_ON_BOOM,
            "",
            vec![json!({"value": "boom"}), json!({"value": "fine"})],
            vec!["trap"],
        ),
        (
            fixtures::INFINITE_LOOP,
            "fuel = 10000000\ntimeout = \"30s\"\n",
            vec![json!({"value": "x"})],
            vec!["fuel"],
        ),
        (
            fixtures::MEMORY_HOG,
            "memory = \"8MiB\"\n",
            vec![json!({"value": "x"})],
            vec!["memory"],
        ),
        (
            fixtures::FAN_OUT,
            "max_outputs = 5\n",
            vec![json!({"value": "10"}), json!({"value": "3"})],
            vec!["output-limit"],
        ),
    ];
    for (plugin, limits, inputs, expected) in cases {
        let extra = format!("[pipeline.limits]\n{limits}[pipeline.on_failure]\nretries = 0\n");
        let Setup {
            kafka,
            t,
            config,
            _dir,
        } = setup_with(1, 0, plugin, &no_config, &extra);
        kafka.produce(&t.input, &inputs);
        let weir = WeirProcess::start(&config);
        let dead = kafka.consume(&[&t.dead], expected.len(), LONG, Some(IDLE));
        let out = kafka.consume(&[&t.output], 0, LONG, Some(IDLE));
        weir.signal("TERM");
        assert!(weir.wait(LONG).success(), "{plugin}");
        assert_eq!(kinds(&dead), expected, "{plugin}");
        let reason = header(&dead[0], "weir.error.reason")
            .unwrap()
            .as_str()
            .unwrap()
            .to_string();
        assert!(!reason.is_empty());
        if plugin == fixtures::TRAP_ON_BOOM {
            assert_eq!(out.len(), 1, "the replaced instance takes the next message");
        }
        if plugin == fixtures::FAN_OUT {
            assert_eq!(out.len(), 3, "within the limit: {reason}");
        }
    }
}

#[test]
fn a_hostile_pipeline_does_not_hold_up_the_others_in_the_same_process() {
    let extra = "[pipeline.limits]\ntimeout = \"20ms\"\n[pipeline.on_failure]\nretries = 0\n";
    let Setup {
        kafka,
        t: bad,
        config,
        _dir,
    } = setup_with(1, 0, fixtures::INFINITE_LOOP, &no_config, extra);
    // A second, healthy pipeline in the same file.
    let good = crate::kafka::Topics::new(0);
    good.create(&kafka, 1);
    let text = std::fs::read_to_string(&config).unwrap();
    let second = format!(
        "\n[[pipeline]]\nname = \"good\"\ninput = \"{}\"\noutput = \"{}\"\ndead_letter = \"{}\"\nplugin = \"{}\"\n",
        good.input,
        good.output,
        good.dead,
        fixtures::ECHO
    );
    std::fs::write(&config, text + &second).unwrap();
    kafka.produce(&bad.input, &values(20));
    kafka.produce(&good.input, &values(20));
    let weir = WeirProcess::start(&config);
    let out = kafka.consume(&[&good.output], 20, LONG, Some(IDLE));
    let dead = kafka.consume(&[&bad.dead], 20, LONG, Some(IDLE));
    weir.signal("TERM");
    assert!(weir.wait(LONG).success());
    assert_eq!(out.len(), 20);
    assert_eq!(kinds(&dead), vec!["timeout"; 20]);
}
