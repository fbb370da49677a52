//! Topic set-up at start, on Apache Kafka: created when `[pipeline.topics] create`
//! is on, a clear error naming pipeline, key and topic when it is off.

use std::time::Duration;

use serde_json::{Value, json};

use crate::broker::Broker;
use crate::fixtures;
use crate::kafka::Topics;
use crate::support::{TempDir, WeirProcess};

const LONG: Duration = Duration::from_secs(120);

fn config(dir: &TempDir, bootstrap: &str, t: &Topics, topics_table: &str) -> std::path::PathBuf {
    dir.write(
        "weir.toml",
        &format!(
            "[kafka]\nbrokers = \"{bootstrap}\"\n[kafka.properties]\n\"session.timeout.ms\" = 6000\n\n\
             [[pipeline]]\nname = \"made\"\ninput = \"{}\"\ngroup = \"{}\"\noutput = \"{}\"\ndead_letter = \"{}\"\n\
             routes = {:?}\nplugin = \"{}\"\n{topics_table}",
            t.input,
            t.group,
            t.output,
            t.dead,
            t.routes,
            fixtures::ECHO,
        ),
    )
}

#[test]
fn a_missing_topic_stops_the_start_naming_pipeline_key_and_topic() {
    let kafka = Broker::shared();
    let t = Topics::new(1);
    // Everything but the route.
    kafka.create_topics(1, &[&t.input, &t.output, &t.dead]);
    let dir = TempDir::new();
    let config = config(&dir, &kafka.bootstrap, &t, "");
    let weir = WeirProcess::start(&config);
    let log_path = weir.log.clone();
    let status = weir.wait(LONG);
    let log = std::fs::read_to_string(log_path).unwrap();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("pipeline \"made\"")
            && log.contains("`pipeline[0].routes[0]`")
            && log.contains(&format!("topic {:?} does not exist", t.routes[0]))
            && log.contains("create = true"),
        "{log}"
    );
    assert!(
        !log.contains("pipeline started"),
        "nothing runs on a half-made set of topics:\n{log}"
    );
}

#[test]
fn topics_are_created_with_their_partitions_and_an_existing_one_is_kept() {
    let kafka = Broker::shared();
    let t = Topics::new(1);
    // The output exists already (one partition): left as it is.
    kafka.create_topics(1, &[&t.output]);
    let dir = TempDir::new();
    let table = "[pipeline.topics]\ncreate = true\npartitions = 3\nreplication = 1\n\
                 [pipeline.topics.config]\n\"retention.ms\" = 3600000\n";
    let config = config(&dir, &kafka.bootstrap, &t, table);
    let weir = WeirProcess::start(&config);

    let lines: Vec<Value> = (0..20)
        .map(|i| json!({"key": format!("k{i}"), "value": format!("v{i}")}))
        .collect();
    // Produced once weir has made the input: the client's produce does not
    // create topics.
    weir.wait_for_log("pipeline started", LONG);
    kafka.produce(&t.input, &lines);
    let out = kafka.consume(&[&t.output], 20, LONG, None);
    assert_eq!(out.len(), 20);

    let log = weir.log_text();
    for topic in [&t.input, &t.dead, &t.routes[0]] {
        assert!(
            log.contains("topic created") && log.contains(topic.as_str()),
            "{topic} created:\n{log}"
        );
        let partitions = kafka.committed(&t.group, topic);
        assert_eq!(
            partitions.as_object().map(|o| o.len()),
            Some(3),
            "{topic}: {partitions}"
        );
    }
    let output = kafka.committed(&t.group, &t.output);
    assert_eq!(
        output.as_object().map(|o| o.len()),
        Some(1),
        "kept: {output}"
    );
    weir.signal("TERM");
    assert!(weir.wait(LONG).success());
}

#[test]
fn topic_settings_are_checked_when_the_config_is_read() {
    let dir = TempDir::new();
    std::fs::write(dir.0.join("p.wasm"), b"").unwrap();
    let parse = |topics: &str| {
        let text = format!(
            "[kafka]\nbrokers = \"b:9092\"\n[[pipeline]]\nname = \"p\"\ninput = \"i\"\noutput = \"o\"\n\
             dead_letter = \"d\"\nplugin = \"p.wasm\"\n[pipeline.topics]\n{topics}"
        );
        weir::config::Config::parse(&dir.0.join("weir.toml"), &text, &|_| None)
    };
    let c = parse(
        "create = true\npartitions = 4\n[pipeline.topics.config]\n\"retention.ms\" = 60000\n",
    )
    .unwrap();
    let t = &c.pipelines[0].topics;
    assert!(t.create);
    assert_eq!(
        (t.partitions, t.replication),
        (4, -1),
        "replication: the broker's default"
    );
    assert_eq!(t.config["retention.ms"], "60000");
    for (bad, key) in [
        ("partitions = 0", "pipeline[0].topics.partitions"),
        ("replication = -2", "pipeline[0].topics.replication"),
    ] {
        let e = parse(bad).unwrap_err();
        assert_eq!(e.key, key, "{e}");
        assert_eq!(e.line, Some(10), "{e}");
    }
    let e = parse("create = \"yes\"").unwrap_err();
    assert!(
        e.to_string().contains("create") || e.line == Some(10),
        "{e}"
    );
}
