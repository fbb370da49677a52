//! docker-compose.yml can't run here (no Docker engine): parse it and check
//! that its services, variables and ports agree with weir's config; and run
//! its Kafka configuration on a real broker (every end-to-end test's broker
//! is made from it, see `broker.rs`).

use std::path::Path;

use std::time::Duration;

use serde_json::{Value, json};

use crate::broker::{Kafka, Options, bitnami_key, compose_environment, settings_from_environment};
use crate::support::{repo, unique};

fn compose() -> Value {
    let text = std::fs::read_to_string(repo().join("docker-compose.yml")).unwrap();
    serde_norway::from_str(&text).expect("docker-compose.yml is YAML")
}

#[test]
fn kafka_is_a_single_kraft_node_configured_by_the_origins_variables() {
    let c = compose();
    let env = &c["services"]["kafka"]["environment"];
    for var in [
        "ALLOW_PLAINTEXT_LISTENER",
        "KAFKA_CFG_NODE_ID",
        "KAFKA_CFG_CONTROLLER_QUORUM_VOTERS",
        "KAFKA_CFG_LISTENER_SECURITY_PROTOCOL_MAP",
        "KAFKA_CFG_CONTROLLER_LISTENER_NAMES",
        "KAFKA_CFG_LOG_DIRS",
        "KAFKA_CFG_PROCESS_ROLES",
        "KAFKA_CFG_LISTENERS",
        "KAFKA_CFG_ADVERTISED_LISTENERS",
        "KAFKA_KRAFT_CLUSTER_ID",
    ] {
        assert!(env[var].is_string(), "kafka sets {var}");
    }
    let node = env["KAFKA_CFG_NODE_ID"].as_str().unwrap();
    let voters = env["KAFKA_CFG_CONTROLLER_QUORUM_VOTERS"].as_str().unwrap();
    assert!(
        voters.starts_with(&format!("{node}@kafka:")),
        "the node votes for itself: {voters}"
    );
    let roles = env["KAFKA_CFG_PROCESS_ROLES"].as_str().unwrap();
    assert!(roles.contains("controller") && roles.contains("broker"));
    // Every listener named has a protocol, and the controller's is one of them.
    let map = env["KAFKA_CFG_LISTENER_SECURITY_PROTOCOL_MAP"]
        .as_str()
        .unwrap();
    for listener in env["KAFKA_CFG_LISTENERS"].as_str().unwrap().split(',') {
        let name = listener.split("://").next().unwrap();
        assert!(
            map.contains(&format!("{name}:")),
            "{name} has a protocol in {map}"
        );
    }
    let controller = env["KAFKA_CFG_CONTROLLER_LISTENER_NAMES"].as_str().unwrap();
    assert!(
        env["KAFKA_CFG_LISTENERS"]
            .as_str()
            .unwrap()
            .contains(&format!("{controller}://"))
    );
}

#[test]
fn weir_and_the_ui_reach_kafka_where_it_advertises_itself() {
    let c = compose();
    let s = &c["services"];
    let advertised = s["kafka"]["environment"]["KAFKA_CFG_ADVERTISED_LISTENERS"]
        .as_str()
        .unwrap();
    let weir_brokers = s["weir"]["environment"]["KAFKA_BROKERS"].as_str().unwrap();
    let ui_brokers = s["kafka-ui"]["environment"]["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"]
        .as_str()
        .unwrap();
    assert!(
        advertised.contains(&format!("://{weir_brokers}")),
        "{weir_brokers} in {advertised}"
    );
    assert!(
        advertised.contains(&format!("://{ui_brokers}")),
        "{ui_brokers} in {advertised}"
    );
    for service in ["weir", "kafka-ui"] {
        assert_eq!(
            s[service]["depends_on"]["kafka"]["condition"], "service_healthy",
            "{service} waits for kafka"
        );
    }
    assert!(s["kafka"]["healthcheck"]["test"].is_array());
    assert!(
        s["kafka-ui"]["ports"][0]
            .as_str()
            .unwrap()
            .ends_with(":8080")
    );
}

#[test]
fn weir_runs_the_quickstart_pipeline_which_reads_the_brokers_from_kafka_brokers() {
    let c = compose();
    let command: Vec<&str> = c["services"]["weir"]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(command, ["run", "--config", "/app/quickstart/compose.toml"]);
    let compose = quickstart("compose.toml");
    assert_eq!(compose.kafka.brokers, "kafka:9092");
    // The same pipeline as the quickstart run without Docker.
    let plain = quickstart("weir.toml");
    assert_eq!(compose.pipelines.len(), plain.pipelines.len());
    for (a, b) in compose.pipelines.iter().zip(&plain.pipelines) {
        assert_eq!(
            (
                &a.name,
                &a.input,
                &a.group,
                &a.output,
                &a.dead_letter,
                &a.routes
            ),
            (
                &b.name,
                &b.input,
                &b.group,
                &b.output,
                &b.dead_letter,
                &b.routes
            )
        );
        assert_eq!((&a.plugin, &a.plugin_config), (&b.plugin, &b.plugin_config));
        // A fresh Kafka has no topics: weir makes them.
        assert!(a.topics.create, "{} creates its topics", a.name);
    }
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("plugins/build.sh") && dockerfile.contains("/app/plugins/dist/"));
}

/// A quickstart config as the weir container reads it.
fn quickstart(name: &str) -> weir::config::Config {
    let env = |name: &str| (name == "KAFKA_BROKERS").then(|| "kafka:9092".to_string());
    let path = repo().join("quickstart").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    weir::config::Config::parse(&path, &text, &env)
        .unwrap_or_else(|e| panic!("quickstart/{name} parses: {e}"))
}

#[test]
fn weir_publishes_its_metrics_port_and_is_health_checked_on_it() {
    let c = compose();
    let weir = &c["services"]["weir"];
    let listen = quickstart("compose.toml")
        .http
        .expect("the compose config serves /metrics and /health")
        .listen;
    assert!(
        listen.ip().is_unspecified(),
        "{listen}: reachable from outside the container"
    );
    let port = listen.port();
    let published: Vec<&str> = weir["ports"]
        .as_array()
        .expect("weir publishes ports")
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        published
            .iter()
            .any(|p| p.ends_with(&format!(":{port}")) && p.starts_with("127.0.0.1:")),
        "port {port} published on loopback: {published:?}"
    );
    let test: Vec<&str> = weir["healthcheck"]["test"]
        .as_array()
        .expect("weir has a health check")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let url = format!("http://127.0.0.1:{port}/health");
    assert!(test.contains(&url.as_str()), "{test:?} probes {url}");
    // The probe's tool is in the image.
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let runtime = &dockerfile[dockerfile.rfind("FROM ").unwrap()..];
    assert!(
        runtime.contains(test[1]),
        "{} installed in the runtime stage",
        test[1]
    );
    assert!(
        runtime.contains("libssl3"),
        "librdkafka's OpenSSL at run time"
    );
    assert_eq!(
        weir["depends_on"]["kafka"]["condition"], "service_healthy",
        "weir starts once Kafka is healthy"
    );
}

#[test]
fn the_readme_documents_every_kafka_variable_the_compose_file_sets() {
    let c = compose();
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let env = c["services"]["kafka"]["environment"].as_object().unwrap();
    assert!(env.len() >= 10);
    for var in env.keys() {
        assert!(
            readme.contains(&format!("| `{var}` |")),
            "README's Docker table documents {var}"
        );
    }
}

/// The compose file's Kafka configuration, run for real: a broker made from
/// its `KAFKA_CFG_*` variables (as bitnami maps them) starts, holds the
/// settings they name and serves a client on its host listener.
#[test]
fn the_compose_files_kafka_variables_configure_a_real_broker() {
    let kafka = Kafka::start();
    let properties = std::fs::read_to_string(kafka.dir.join("server.properties")).unwrap();
    let mut ports = std::collections::BTreeMap::new();
    let mapped =
        settings_from_environment(&compose_environment(), &kafka.dir.join("data"), &mut ports)
            .unwrap();
    assert!(mapped.len() >= 8, "{mapped:?}");
    for (var, key, _) in &mapped {
        assert!(
            properties
                .lines()
                .any(|l| l.starts_with(&format!("{key}="))),
            "{var} set no `{key}` in server.properties:\n{properties}"
        );
    }
    for line in [
        "process.roles=controller,broker",
        "node.id=0",
        "controller.listener.names=CONTROLLER",
    ] {
        assert!(
            properties.lines().any(|l| l == line),
            "{line} in:\n{properties}"
        );
    }
    assert!(
        !properties.contains("kafka:") && !properties.contains("/bitnami"),
        "Docker's host name and paths are rewritten: {properties}"
    );
    let topic = unique("compose");
    kafka.create_topics(3, &[&topic]);
    kafka.produce(
        &topic,
        &[json!({"value": "through the compose file's broker"})],
    );
    assert_eq!(
        kafka
            .consume(&[&topic], 1, Duration::from_secs(60), None)
            .len(),
        1
    );
    let pid = kafka.pid().expect("the broker runs");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let peak = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .map(|l| l.trim_start_matches("VmHWM:").trim().to_string())
        .unwrap_or_default();
    eprintln!(
        "Apache Kafka from docker-compose.yml's variables: ready after {:?}, peak memory {peak}",
        kafka.start_up()
    );
}

/// A variable that maps to no broker setting fails the run, naming it: the
/// broker lists every setting it knows, and the name is not among them.
#[test]
fn a_kafka_variable_that_is_no_broker_setting_fails_the_start_naming_it() {
    let dir = std::env::temp_dir().join(unique("weir-kafka-bad"));
    let options = Options {
        environment: vec![("KAFKA_CFG_LOG_RETENTION_HOURZ".into(), "1".into())],
        ..Options::default()
    };
    let error = match Kafka::launch(dir.clone(), &options) {
        Ok(_) => panic!("a broker started with KAFKA_CFG_LOG_RETENTION_HOURZ"),
        Err(e) => e,
    };
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        error.contains("KAFKA_CFG_LOG_RETENTION_HOURZ") && error.contains("log.retention.hourz"),
        "{error}"
    );
    // A variable the image would not read at all is refused before a start.
    let mut ports = std::collections::BTreeMap::new();
    let error =
        settings_from_environment(&[("KAFKA_LOG_DIRS".into(), "/x".into())], &dir, &mut ports)
            .unwrap_err();
    assert!(error.contains("KAFKA_LOG_DIRS"), "{error}");
}

#[test]
fn bitnami_names_map_to_broker_settings_and_docker_addresses_to_loopback() {
    assert_eq!(bitnami_key("KAFKA_CFG_NODE_ID").as_deref(), Some("node.id"));
    assert_eq!(
        bitnami_key("KAFKA_CFG_LISTENER_NAME_SASL_SSL_PLAIN_SASL_JAAS_CONFIG").as_deref(),
        Some("listener.name.sasl_ssl.plain.sasl.jaas.config")
    );
    assert_eq!(bitnami_key("ALLOW_PLAINTEXT_LISTENER"), None);
    let mut ports = std::collections::BTreeMap::new();
    let env = [
        (
            "KAFKA_CFG_CONTROLLER_QUORUM_VOTERS".to_string(),
            "0@kafka:9093".to_string(),
        ),
        (
            "KAFKA_CFG_LISTENERS".to_string(),
            "PLAINTEXT://:9092,CONTROLLER://:9093".to_string(),
        ),
    ];
    let mapped = settings_from_environment(&env, Path::new("/d"), &mut ports).unwrap();
    let controller = ports[&9093];
    assert_eq!(mapped[0].2, format!("0@127.0.0.1:{controller}"));
    assert_eq!(
        mapped[1].2,
        format!(
            "PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{controller}",
            ports[&9092]
        )
    );
}
