//! docker-compose.yml can't run here (no Docker engine): parse it and check
//! that its services, variables and ports agree with weir's config.

use std::path::Path;

use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

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
fn weir_runs_the_quickstart_config_which_reads_the_brokers_from_kafka_brokers() {
    let c = compose();
    let command: Vec<&str> = c["services"]["weir"]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(command, ["run", "--config", "/app/quickstart/weir.toml"]);
    let env = |name: &str| (name == "KAFKA_BROKERS").then(|| "kafka:9092".to_string());
    let path = repo().join("quickstart/weir.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let config =
        weir::config::Config::parse(&path, &text, &env).expect("the quickstart config parses");
    assert_eq!(config.kafka.brokers, "kafka:9092");
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("plugins/build.sh") && dockerfile.contains("/app/plugins/dist/"));
}
