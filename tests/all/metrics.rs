//! `/metrics` and `/health` on a running weir, scraped with a plain TCP
//! client: the counts must match what the test sent through Apache Kafka.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::broker::{Broker, Kafka};
use crate::fixtures;
use crate::kafka::Topics;
use crate::support::{TempDir, WeirProcess};

const SCHEMA: &str =
    r#"{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"]}"#;
const LONG: Duration = Duration::from_secs(120);

/// A port nothing listens on (yet).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 GET: status, headers (lower-cased names) and body; none
/// while nothing listens.
pub fn get(port: u16, path: &str) -> Option<(u16, String, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: weir-tests\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, head.to_ascii_lowercase(), body.to_string()))
}

/// Polls `path` until `ok` holds for the response, or panics with the last one.
fn wait_for(
    weir: &WeirProcess,
    port: u16,
    path: &str,
    ok: impl Fn(u16, &str) -> bool,
) -> (u16, String) {
    let deadline = Instant::now() + LONG;
    let mut last = None;
    while Instant::now() < deadline {
        if let Some((status, _, body)) = get(port, path) {
            if ok(status, &body) {
                return (status, body);
            }
            last = Some((status, body));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{path} never became as expected; last response: {last:?}; log:\n{}",
        weir.log_text()
    );
}

/// The value of the sample `name{labels}` (labels exactly as rendered).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn config(dir: &TempDir, bootstrap: &str, t: &Topics, http_port: u16) -> std::path::PathBuf {
    dir.write(
        "weir.toml",
        &format!(
            "[kafka]\nbrokers = \"{bootstrap}\"\n[kafka.properties]\n\"session.timeout.ms\" = 6000\n\n\
             [http]\nlisten = \"127.0.0.1:{http_port}\"\n\n\
             [[pipeline]]\nname = \"e2e\"\ninput = \"{}\"\ngroup = \"{}\"\noutput = \"{}\"\ndead_letter = \"{}\"\n\
             plugin = \"{}\"\n[pipeline.config]\nschema = {:?}\n",
            t.input,
            t.group,
            t.output,
            t.dead,
            fixtures::JSON_SCHEMA,
            SCHEMA
        ),
    )
}

#[test]
fn metrics_count_what_was_sent_and_health_turns_ready_once_assigned() {
    // The broker is down at first: the pipeline cannot join its group.
    let broker_port = Kafka::reserve_port();
    let http_port = free_port();
    let t = Topics::new(0);
    let dir = TempDir::new();
    let config = config(&dir, &format!("127.0.0.1:{broker_port}"), &t, http_port);
    let weir = WeirProcess::start(&config);

    let (status, body) = wait_for(&weir, http_port, "/health", |_, _| true);
    assert_eq!(status, 503, "not ready without a broker: {body}");
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["live"], true);
    assert_eq!(health["ready"], false);
    assert!(health["not_ready"]["e2e"].is_string(), "{health}");
    let (live, _, _) = get(http_port, "/health/live").unwrap();
    assert_eq!(live, 200, "alive while not ready");

    // Once weir has given up checking topics on the absent broker; else it
    // could see the broker before the topics and stop, rightly.
    weir.wait_for_log("pipeline started", LONG);
    let (status, _, _) = get(http_port, "/health").unwrap();
    assert_eq!(status, 503, "running but not assigned: not ready");
    let kafka = Kafka::start_on(broker_port);
    t.create(&kafka, 2);
    let (_, body) = wait_for(&weir, http_port, "/health", |status, _| status == 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"live": true, "ready": true, "not_ready": {}})
    );

    let (valid, invalid) = (30, 20);
    let mut lines: Vec<Value> = (0..valid)
        .map(|i| json!({"key": format!("k{i}"), "value": json!({"id": i}).to_string()}))
        .collect();
    lines.extend(
        (0..invalid).map(|i| json!({"key": format!("bad{i}"), "value": "{\"id\": \"x\"}"})),
    );
    kafka.produce(&t.input, &lines);
    kafka.consume(&[&t.output], valid, LONG, None);
    kafka.consume(&[&t.dead], invalid, LONG, None);

    let consumed = "weir_messages_consumed_total{pipeline=\"e2e\"}".to_string();
    let (_, metrics) = wait_for(&weir, http_port, "/metrics", |_, body| {
        sample(body, &consumed) == Some((valid + invalid) as f64)
            && sample(body, "weir_in_flight{pipeline=\"e2e\"}") == Some(0.0)
    });
    let (_, head, _) = get(http_port, "/metrics").unwrap();
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let expect = [
        (
            format!(
                "weir_messages_produced_total{{pipeline=\"e2e\",topic=\"{}\"}}",
                t.output
            ),
            valid,
        ),
        (
            "weir_messages_dead_lettered_total{pipeline=\"e2e\",kind=\"invalid\"}".into(),
            invalid,
        ),
        (
            "weir_messages_dead_lettered_total{pipeline=\"e2e\",kind=\"trap\"}".into(),
            0,
        ),
        (
            "weir_plugin_call_duration_seconds_count{pipeline=\"e2e\"}".into(),
            valid + invalid,
        ),
        (
            "weir_plugin_call_duration_seconds_bucket{pipeline=\"e2e\",le=\"+Inf\"}".into(),
            valid + invalid,
        ),
        (
            "weir_instance_replacements_total{pipeline=\"e2e\"}".into(),
            0,
        ),
        ("weir_plugin_reloads_total{pipeline=\"e2e\"}".into(), 0),
        ("weir_pipeline_ready{pipeline=\"e2e\"}".into(), 1),
    ];
    for (series, n) in expect {
        assert_eq!(
            sample(&metrics, &series),
            Some(n as f64),
            "{series} in:\n{metrics}"
        );
    }
    assert!(
        sample(
            &metrics,
            "weir_plugin_call_duration_seconds_sum{pipeline=\"e2e\"}"
        )
        .is_some_and(|s| s > 0.0),
        "{metrics}"
    );
    assert!(metrics.contains("weir_build_info{version=\""), "{metrics}");
    assert!(metrics.contains("# TYPE weir_plugin_call_duration_seconds histogram"));

    // Lag per assigned partition, from librdkafka's statistics: once
    // everything sent was consumed and committed, Kafka's high watermarks
    // put every partition's lag at 0.
    let lag_prefix = format!(
        "weir_consumer_lag{{pipeline=\"e2e\",topic=\"{}\",partition=\"",
        t.input
    );
    let lags = |body: &str| -> Vec<(String, String)> {
        body.lines()
            .filter_map(|l| l.strip_prefix(&lag_prefix))
            .filter_map(|p| p.split_once("\"} "))
            .map(|(p, v)| (p.to_string(), v.to_string()))
            .collect()
    };
    let (_, metrics) = wait_for(&weir, http_port, "/metrics", |_, body| {
        let lags = lags(body);
        lags.len() == 2 && lags.iter().all(|(_, v)| v == "0")
    });
    let mut partitions: Vec<String> = lags(&metrics).into_iter().map(|(p, _)| p).collect();
    partitions.sort();
    assert_eq!(partitions, ["0", "1"], "{metrics}");

    weir.signal("TERM");
    assert!(weir.wait(LONG).success());
}

#[test]
fn a_taken_metrics_port_stops_the_start_naming_the_key() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let kafka = Broker::shared();
    let t = Topics::new(0);
    t.create(&kafka, 1);
    let dir = TempDir::new();
    let config = config(&dir, &kafka.bootstrap, &t, port);
    let weir = WeirProcess::start(&config);
    let log = weir.log.clone();
    let status = weir.wait(LONG);
    let log = std::fs::read_to_string(log).unwrap();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("`http.listen`") && log.contains(&format!("127.0.0.1:{port}")),
        "{log}"
    );
    assert!(log.to_lowercase().contains("in use"), "{log}");
}

#[test]
fn a_bad_metrics_address_is_a_config_error_with_its_line() {
    let dir = TempDir::new();
    let text = "[kafka]\nbrokers = \"127.0.0.1:1\"\n[http]\nlisten = \"localhost\"\n";
    let e = weir::config::Config::parse(&dir.0.join("weir.toml"), text, &|_| None).unwrap_err();
    assert_eq!(e.key, "http.listen", "{e}");
    assert_eq!(e.line, Some(4), "{e}");
    assert!(e.message.contains("localhost"), "{e}");
}
