//! Apache Kafka for the end-to-end tests: a single KRaft node
//! (broker+controller) started from the jars `tests/setup.sh` fetched from
//! Maven Central, with the machine's Java.
//!
//! Its `server.properties` is built from the very `KAFKA_CFG_*` variables
//! and `KAFKA_KRAFT_CLUSTER_ID` that `docker-compose.yml` gives its `kafka`
//! service, mapped as the bitnami image maps them (`KAFKA_CFG_FOO_BAR=v` is
//! `foo.bar=v`, over the distribution's own `server.properties`), with the
//! Docker host name and ports rewritten to free 127.0.0.1 ports. A variable
//! that maps to no broker setting fails the start: the broker lists every
//! setting it knows in its "KafkaConfig values" block.
//!
//! One broker serves the whole test binary ([`Kafka::shared`]); tests use
//! unique topics and groups. A test that stops, restarts or reconfigures its
//! broker starts its own ([`Kafka::start`]), stopped on drop. A broker is
//! ready when it logs "Kafka Server started", not when its port opens. Its
//! folder (log, data) stays when the test using it failed, and the shared
//! broker's stays until the next test binary starts.
//!
//! This file stands alone (std, serde_json, serde_norway, libc): `bench/`
//! includes it too. The tests' aiokafka helpers are in `support.rs`.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The base file bitnami starts from: the distribution's
/// `config/server.properties` (Kafka 4.1), its settings only. The quorum and
/// listener lines come from the compose file's variables.
const DISTRIBUTION_PROPERTIES: &str = "\
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
";

/// What a test broker changes for speed on two cores; none of it changes a
/// guarantee. bitnami keeps Kafka's 3 s initial rebalance delay; tests
/// would spend it on every group's first join.
const TEST_PROPERTIES: &[(&str, &str)] = &[
    ("group.initial.rebalance.delay.ms", "0"),
    ("offsets.topic.num.partitions", "1"),
    ("transaction.state.log.num.partitions", "1"),
    ("share.coordinator.state.topic.num.partitions", "1"),
    ("num.network.threads", "2"),
    ("num.io.threads", "2"),
    ("log.cleaner.dedupe.buffer.size", "33554432"),
];

/// The JVM of a test broker.
const JVM_OPTIONS: &[&str] = &[
    "-Xms256m",
    "-Xmx768m",
    "-XX:+UseSerialGC",
    // C1 only: a faster start on two cores, slower peak (never for bench/).
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-Djava.awt.headless=true",
];

/// The JVM of a benchmark's broker: what bitnami's image and
/// kafka-server-start.sh run (1 GiB heap, G1, both JIT tiers).
const BENCHMARK_JVM_OPTIONS: &[&str] = &[
    "-Xms1g",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
];

const BROKER_LOG4J: &str = "Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: \"[%d] %p %m (%c)%n\"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.request.logger
        level: WARN
      - name: state.change.logger
        level: WARN
";

/// Kafka's tools log warnings only, to stderr: stdout stays theirs.
const TOOLS_LOG4J: &str = "Configuration:
  Appenders:
    Console:
      name: STDERR
      target: SYSTEM_ERR
      PatternLayout:
        pattern: \"[%d] %p %m (%c)%n\"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDERR
";

const READY_LINE: &str = "Kafka Server started";

/// Asks `java` for the benchmark JVM options.
const BENCHMARK: &str = "<benchmark>";

pub fn cache_dir() -> PathBuf {
    match std::env::var_os("WEIR_CACHE") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/weir"),
    }
}

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A name no other broker or consumer of this machine uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The folder of Kafka's jars: `$WEIR_KAFKA_LIBS`, or what setup.sh left in
/// the cache.
pub fn kafka_libs() -> PathBuf {
    if let Some(dir) = std::env::var_os("WEIR_KAFKA_LIBS") {
        return PathBuf::from(dir);
    }
    let found = std::fs::read_dir(cache_dir())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("libs"))
        .filter(|libs| libs.join(".complete").exists())
        .max_by_key(|libs| std::fs::metadata(libs).and_then(|m| m.modified()).ok());
    found.unwrap_or_else(|| {
        panic!(
            "Apache Kafka's jars not found under {} (set WEIR_KAFKA_LIBS, or run `bash tests/setup.sh`)",
            cache_dir().display()
        )
    })
}

fn classpath() -> String {
    format!("{}/*", kafka_libs().display())
}

/// The `kafka` service's environment in `docker-compose.yml`, in file order.
pub fn compose_environment() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join("docker-compose.yml")).unwrap();
    let compose: Value = serde_norway::from_str(&text).expect("docker-compose.yml is YAML");
    let env = compose["services"]["kafka"]["environment"]
        .as_object()
        .expect("the kafka service has an environment mapping");
    env.iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), v)
        })
        .collect()
}

/// bitnami's `libkafka.sh`: `KAFKA_CFG_FOO_BAR` is `foo.bar`.
pub fn bitnami_key(var: &str) -> Option<String> {
    let rest = var.strip_prefix("KAFKA_CFG_")?;
    Some(
        rest.replace('_', ".")
            .to_lowercase()
            .replace("sasl.ssl", "sasl_ssl")
            .replace("sasl.plaintext", "sasl_plaintext"),
    )
}

/// The address of the EXTERNAL listener in `advertised`: the compose file's
/// door for clients on the host (9094), which the tests use too.
fn host_address(advertised: &str) -> Option<&str> {
    advertised
        .split(',')
        .find_map(|l| l.strip_prefix("EXTERNAL://"))
}

const NO_EXTERNAL: &str = "docker-compose.yml advertises no EXTERNAL listener for the host";

/// Variables of the image that are not settings, and what they mean here.
const NOT_SETTINGS: &[&str] = &[
    // Read by no 3.x/4.x libkafka.sh (a warning about plaintext only).
    "ALLOW_PLAINTEXT_LISTENER",
    // The storage format's --cluster-id.
    "KAFKA_KRAFT_CLUSTER_ID",
];

/// `NAME://host:port` or `id@host:port`, one per comma, with each port
/// looked up in `ports` (Docker's port, the loopback one) and each host
/// 127.0.0.1: the Docker network's `kafka`, and an empty host (every
/// interface), exist only inside Docker.
fn to_loopback(value: &str, ports: &mut BTreeMap<u16, u16>) -> Result<String, String> {
    let mut out = Vec::new();
    for item in value.split(',') {
        let (head, address) = match item.find("://") {
            Some(i) => item.split_at(i + 3),
            None => match item.find('@') {
                Some(i) => item.split_at(i + 1),
                None => {
                    return Err(format!(
                        "{item:?} is neither NAME://host:port nor id@host:port"
                    ));
                }
            },
        };
        let (_, port) = address
            .rsplit_once(':')
            .ok_or_else(|| format!("{item:?} has no port"))?;
        let port: u16 = port.parse().map_err(|_| format!("{item:?}: bad port"))?;
        let local = *ports.entry(port).or_insert_with(free_port);
        out.push(format!("{head}127.0.0.1:{local}"));
    }
    Ok(out.join(","))
}

/// The broker settings `env` makes, as bitnami would, for a broker whose
/// data lives in `data`; (variable, key, value) per setting, so an error
/// can name the variable. Ports are rewritten through `ports`.
pub fn settings_from_environment(
    env: &[(String, String)],
    data: &Path,
    ports: &mut BTreeMap<u16, u16>,
) -> Result<Vec<(String, String, String)>, String> {
    let mut settings = Vec::new();
    for (var, value) in env {
        if NOT_SETTINGS.contains(&var.as_str()) {
            continue;
        }
        let key = bitnami_key(var).ok_or_else(|| {
            format!("{var} is not a KAFKA_CFG_ variable: the image would not read it")
        })?;
        if value.is_empty() {
            continue;
        }
        let value = match key.as_str() {
            "listeners" | "advertised.listeners" | "controller.quorum.voters" => {
                to_loopback(value, ports).map_err(|e| format!("{var}: {e}"))?
            }
            "log.dirs" => data.display().to_string(),
            _ => value.clone(),
        };
        settings.push((var.clone(), key, value));
    }
    Ok(settings)
}

/// What a test asks of its broker beyond the compose file's configuration.
#[derive(Default, Clone)]
pub struct Options {
    /// Listeners added beside the compose file's: (name, security protocol).
    pub listeners: Vec<(String, String)>,
    /// More settings, after everything else.
    pub properties: Vec<(String, String)>,
    /// SCRAM users created when the storage is formatted: (user, password),
    /// for both SCRAM-SHA-256 and SCRAM-SHA-512.
    pub scram_users: Vec<(String, String)>,
    /// More `KAFKA_CFG_*` variables, as if the compose file set them.
    pub environment: Vec<(String, String)>,
    /// The port of the host's listener (EXTERNAL), where a test must know
    /// it before the broker starts; a free one otherwise.
    pub port: Option<u16>,
    /// The broker JVM of a benchmark instead of a quick-starting test one.
    pub benchmark: bool,
}

/// A running (or stopped) single-node Kafka.
pub struct Kafka {
    child: Mutex<Option<Child>>,
    /// The compose file's EXTERNAL listener: what a client on the host uses.
    pub bootstrap: String,
    /// Each added listener's address, by name.
    pub listeners: BTreeMap<String, String>,
    pub dir: PathBuf,
    pub log: PathBuf,
    started: Duration,
    /// The binary's shared broker, which no test may stop.
    shared: bool,
    benchmark: bool,
}

/// Spawns children from one thread that never ends, so PR_SET_PDEATHSIG
/// (which fires when the spawning *thread* exits) kills a broker only when
/// the test binary itself is gone, even by a crash.
fn spawn_orphan_proof(mut command: Command) -> std::io::Result<Child> {
    type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::spawn(move || {
            for (mut command, reply) in rx {
                // SAFETY: prctl is async-signal-safe; nothing else runs
                // between fork and exec.
                unsafe {
                    command.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                        Ok(())
                    });
                }
                let _ = reply.send(command.spawn());
            }
        });
        Mutex::new(tx)
    });
    let (reply, result) = mpsc::channel();
    command.stdin(Stdio::null());
    spawner
        .lock()
        .unwrap()
        .send((command, reply))
        .expect("the spawner thread runs");
    result.recv().expect("the spawner thread answers")
}

fn java(class: &str, log4j: &Path, jvm: &[String]) -> Command {
    let mut command = Command::new("java");
    command
        .args(if jvm.iter().any(|o| o == BENCHMARK) {
            BENCHMARK_JVM_OPTIONS
        } else {
            JVM_OPTIONS
        })
        .args(jvm.iter().filter(|o| *o != BENCHMARK))
        .arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
        .arg("-cp")
        .arg(classpath())
        .arg(class);
    command
}

impl Kafka {
    /// The broker every test of this binary shares. Never stop it.
    pub fn shared() -> &'static Kafka {
        static SHARED: OnceLock<Kafka> = OnceLock::new();
        SHARED.get_or_init(|| {
            remove_stale_folders();
            let dir =
                std::env::temp_dir().join(format!("weir-kafka-shared-{}", std::process::id()));
            let mut kafka =
                Kafka::launch(dir, &Options::default()).unwrap_or_else(|e| panic!("{e}"));
            kafka.shared = true;
            eprintln!(
                "shared Kafka at {} (ready after {:?}), log {}",
                kafka.bootstrap,
                kafka.started,
                kafka.log.display()
            );
            kafka
        })
    }

    /// A broker of the test's own, with the compose file's configuration.
    pub fn start() -> Kafka {
        Kafka::start_with(&Options::default())
    }

    /// A loopback port nothing listens on yet, for a broker started later.
    pub fn reserve_port() -> u16 {
        free_port()
    }

    /// A broker of the test's own whose clients' port is `port`.
    pub fn start_on(port: u16) -> Kafka {
        Kafka::start_with(&Options {
            port: Some(port),
            ..Options::default()
        })
    }

    pub fn start_with(options: &Options) -> Kafka {
        let dir = std::env::temp_dir().join(unique("weir-kafka"));
        Kafka::launch(dir, options).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Writes the configuration, formats the storage and starts the broker;
    /// an error names the variable or shows the broker's log.
    pub fn launch(dir: PathBuf, options: &Options) -> Result<Kafka, String> {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("log4j2.yaml"), BROKER_LOG4J).unwrap();
        std::fs::write(dir.join("tools-log4j2.yaml"), TOOLS_LOG4J).unwrap();
        let mut env = compose_environment();
        env.extend(options.environment.iter().cloned());
        let cluster_id = env
            .iter()
            .find(|(k, _)| k == "KAFKA_KRAFT_CLUSTER_ID")
            .map(|(_, v)| v.clone())
            .ok_or("docker-compose.yml's kafka sets no KAFKA_KRAFT_CLUSTER_ID")?;
        let mut ports = BTreeMap::new();
        if let Some(port) = options.port {
            let docker_port = env
                .iter()
                .find(|(k, _)| k == "KAFKA_CFG_ADVERTISED_LISTENERS")
                .and_then(|(_, v)| host_address(v))
                .and_then(|a| a.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()))
                .ok_or(NO_EXTERNAL)?;
            ports.insert(docker_port, port);
        }
        let mapped = settings_from_environment(&env, &dir.join("data"), &mut ports)?;
        let mut props: Vec<(String, String)> = DISTRIBUTION_PROPERTIES
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let set = |props: &mut Vec<(String, String)>, key: &str, value: String| match props
            .iter_mut()
            .find(|(k, _)| k == key)
        {
            Some(entry) => entry.1 = value,
            None => props.push((key.to_string(), value)),
        };
        for (_, key, value) in &mapped {
            set(&mut props, key, value.clone());
        }
        for (key, value) in TEST_PROPERTIES {
            set(&mut props, key, value.to_string());
        }
        let mut listeners = BTreeMap::new();
        for (name, protocol) in &options.listeners {
            let address = format!("127.0.0.1:{}", free_port());
            for key in ["listeners", "advertised.listeners"] {
                let current = props.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
                let value = format!("{},{name}://{address}", current.unwrap_or_default());
                set(&mut props, key, value.trim_start_matches(',').to_string());
            }
            let map = props
                .iter()
                .find(|(k, _)| k == "listener.security.protocol.map")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            set(
                &mut props,
                "listener.security.protocol.map",
                format!("{map},{name}:{protocol}"),
            );
            listeners.insert(name.clone(), address);
        }
        for (key, value) in &options.properties {
            set(&mut props, key, value.clone());
        }
        let text: String = props.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        let config = dir.join("server.properties");
        std::fs::write(&config, text).unwrap();

        let bootstrap = mapped
            .iter()
            .find(|(_, k, _)| k == "advertised.listeners")
            .and_then(|(_, _, v)| host_address(v))
            .ok_or(NO_EXTERNAL)?
            .to_string();

        let mut format = java(
            "kafka.tools.StorageTool",
            &dir.join("tools-log4j2.yaml"),
            &[],
        );
        format
            .args(["format", "--ignore-formatted", "--config"])
            .arg(&config)
            .arg(format!("--cluster-id={cluster_id}"));
        for (user, password) in &options.scram_users {
            for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
                format
                    .arg("--add-scram")
                    .arg(format!("{mechanism}=[name={user},password={password}]"));
            }
        }
        let out = format
            .output()
            .map_err(|e| format!("java does not run: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "formatting Kafka's storage failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let mut kafka = Kafka {
            child: Mutex::new(None),
            bootstrap,
            listeners,
            log: dir.join("kafka.log"),
            dir,
            started: Duration::ZERO,
            shared: false,
            benchmark: options.benchmark,
        };
        kafka.started = kafka.spawn()?;
        kafka.check_settings(&mapped)?;
        Ok(kafka)
    }

    /// How long the broker took from `java` to its ready line.
    pub fn start_up(&self) -> Duration {
        self.started
    }

    /// The broker's process id, while it runs (for its CPU and memory).
    pub fn pid(&self) -> Option<u32> {
        self.child.lock().unwrap().as_ref().map(Child::id)
    }

    fn spawn(&self) -> Result<Duration, String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let from = std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let mut jvm = vec![format!(
            "-Dkafka.logs.dir={}",
            self.dir.join("logs").display()
        )];
        if self.benchmark {
            jvm.push(BENCHMARK.to_string());
        }
        let mut command = java("kafka.Kafka", &self.dir.join("log4j2.yaml"), &jvm);
        command
            .arg(self.dir.join("server.properties"))
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let started = Instant::now();
        let child = spawn_orphan_proof(command).map_err(|e| format!("java does not run: {e}"))?;
        *self.child.lock().unwrap() = Some(child);
        let deadline = started + Duration::from_secs(120);
        loop {
            let text = std::fs::read(&self.log).unwrap_or_default();
            let text = String::from_utf8_lossy(&text[from as usize..]);
            if text.contains(READY_LINE) {
                return Ok(started.elapsed());
            }
            let exited = self
                .child
                .lock()
                .unwrap()
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                return Err(format!(
                    "Kafka did not log {READY_LINE:?} ({}); the end of {}:\n{}",
                    exited.map_or("in 120 s".into(), |s| format!("it exited: {s}")),
                    self.log.display(),
                    tail(&text, 40)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every setting a compose variable made must be one the broker knows:
    /// it prints each of them, with its value, in "KafkaConfig values".
    fn check_settings(&self, mapped: &[(String, String, String)]) -> Result<(), String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let block: Vec<&str> = text
            .split("KafkaConfig values:")
            .nth(1)
            .ok_or("the broker printed no \"KafkaConfig values\" block")?
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with('\t'))
            .collect();
        let known: BTreeMap<&str, &str> = block
            .iter()
            .filter_map(|l| l.trim().split_once(" = "))
            .collect();
        for (var, key, _) in mapped {
            if !known.contains_key(key.as_str()) {
                return Err(format!(
                    "{var} in docker-compose.yml maps to `{key}`, which is no setting of Apache Kafka"
                ));
            }
        }
        Ok(())
    }

    /// SIGTERM (a controlled shutdown), then waits for the exit.
    pub fn stop(&self) {
        self.end("TERM");
    }

    /// SIGKILL: the broker dies as a crash would leave it.
    pub fn kill(&self) {
        self.end("KILL");
    }

    fn end(&self, signal: &str) {
        assert!(
            !self.shared,
            "a test stopped the shared broker: start one of its own"
        );
        let mut child = self.child.lock().unwrap();
        if let Some(mut c) = child.take() {
            let _ = Command::new("kill")
                .args(["-s", signal, &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(60);
            while c.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Starts a broker that was stopped or killed, on the same ports and
    /// log folders.
    pub fn resume(&self) {
        self.spawn().unwrap_or_else(|e| panic!("{e}"));
    }

    /// Runs one of Kafka's own tools (`org.apache.kafka.tools.…`); its
    /// stdout, or its output as the error.
    pub fn tool(&self, class: &str, args: &[&str]) -> Result<String, String> {
        let out = java(class, &self.dir.join("tools-log4j2.yaml"), &[])
            .args(args)
            .output()
            .map_err(|e| format!("java does not run: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(format!(
                "{class} {args:?} failed: {}\n{stdout}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(stdout)
    }

    /// Kafka's console consumer, `read_committed`, from the start of
    /// `topic`, until `idle` without a record: each record's value.
    pub fn console_consume_committed(&self, topic: &str, idle: Duration) -> Vec<String> {
        let ms = idle.as_millis().to_string();
        let out = self
            .tool(
                "org.apache.kafka.tools.consumer.ConsoleConsumer",
                &[
                    "--bootstrap-server",
                    &self.bootstrap,
                    "--topic",
                    topic,
                    "--from-beginning",
                    "--isolation-level",
                    "read_committed",
                    "--timeout-ms",
                    &ms,
                    "--group",
                    &unique("console"),
                ],
            )
            // It exits 1 on reaching the timeout... unless it read nothing
            // at all; both are the end of the read here.
            .unwrap_or_else(|e| {
                e.split_once('\n')
                    .map(|x| x.1.to_string())
                    .unwrap_or_default()
            });
        out.lines().map(str::to_string).collect()
    }

    /// `kafka-consumer-groups --describe`: the group's committed offset per
    /// partition of `topic` (None where it committed nothing).
    pub fn group_offsets(&self, group: &str, topic: &str) -> BTreeMap<i32, Option<i64>> {
        let out = self
            .tool(
                "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
                &[
                    "--bootstrap-server",
                    &self.bootstrap,
                    "--describe",
                    "--group",
                    group,
                ],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        let mut offsets = BTreeMap::new();
        for line in out.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() >= 4 && f[0] == group && f[1] == topic {
                offsets.insert(f[2].parse().unwrap(), f[3].parse().ok());
            }
        }
        offsets
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("Kafka's folder kept for a look: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Shared brokers' folders of test binaries that are gone.
fn remove_stale_folders() {
    for entry in std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("weir-kafka-shared-") {
            if !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A test's broker: the shared one, or one of its own that it may stop.
pub enum Broker {
    Shared(&'static Kafka),
    Own(Kafka),
}

impl Broker {
    pub fn shared() -> Broker {
        Broker::Shared(Kafka::shared())
    }

    pub fn own() -> Broker {
        Broker::Own(Kafka::start())
    }
}

impl Deref for Broker {
    type Target = Kafka;

    fn deref(&self) -> &Kafka {
        match self {
            Broker::Shared(k) => k,
            Broker::Own(k) => k,
        }
    }
}
