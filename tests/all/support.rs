//! What the end-to-end tests share besides the broker (`broker.rs`): the
//! independent aiokafka client (`tests/e2e/kafka_client.py`), and `weir`
//! run as a child process on a config written for the test.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::broker::Kafka;
pub use crate::broker::{cache_dir, repo, unique};

pub const WEIR: &str = env!("CARGO_BIN_EXE_weir-host");

fn tool(var: &str, default: PathBuf) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or(default);
    assert!(
        path.exists(),
        "{} not found at {} (set {var}, or run `bash tests/setup.sh` which installs it)",
        path.file_name().unwrap_or_default().to_string_lossy(),
        path.display()
    );
    path
}

pub fn python() -> PathBuf {
    tool("WEIR_PYTHON", cache_dir().join("venv/bin/python"))
}

fn client_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/kafka_client.py")
}

/// The independent client (aiokafka) on a test broker.
impl Kafka {
    /// Runs `kafka-configs --alter` on the topic with `change`.
    pub fn alter_topic(&self, topic: &str, change: &[&str]) {
        let mut args = vec![
            "--bootstrap-server",
            &self.bootstrap,
            "--alter",
            "--entity-type",
            "topics",
            "--entity-name",
            topic,
        ];
        args.extend(change);
        self.tool("kafka.admin.ConfigCommand", &args)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Creates topics through the admin API (aiokafka).
    pub fn create_topics(&self, partitions: u32, topics: &[&str]) {
        let mut args = vec!["create-topics", "--bootstrap", &self.bootstrap];
        let p = partitions.to_string();
        args.extend(["--partitions", &p]);
        args.extend(topics);
        client(&args, None);
    }

    /// Produces JSON-lines records with the independent client.
    pub fn produce(&self, topic: &str, lines: &[Value]) {
        let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let out = client(
            &["produce", "--bootstrap", &self.bootstrap, "--topic", topic],
            Some(&input),
        );
        let produced: Value =
            serde_json::from_str(out.trim()).expect("produce prints {\"produced\": N}");
        assert_eq!(produced["produced"], lines.len(), "all records produced");
    }

    /// Reads `count` records from the start of `topics` (fails if fewer
    /// arrive in `timeout`); with `idle`, reads again until nothing new came
    /// for that long, so records beyond `count` (duplicates) show up too.
    pub fn consume(
        &self,
        topics: &[&str],
        count: usize,
        timeout: Duration,
        idle: Option<Duration>,
    ) -> Vec<Value> {
        match idle {
            None => self
                .read(topics, count, timeout, None, false)
                .expect("all records arrived"),
            Some(idle) => {
                // Wait for `count`; whether they all came is the caller's
                // assertion, made on the full read that follows.
                if let Err(e) = self.read(topics, count, timeout, None, false) {
                    eprintln!("{e}");
                }
                self.read(topics, count, timeout, Some(idle), false)
                    .expect("the topics can be read")
            }
        }
    }

    /// As `consume` with `idle`, as a `read_committed` reader: records of
    /// aborted or still open transactions are not seen.
    pub fn consume_committed(
        &self,
        topics: &[&str],
        count: usize,
        timeout: Duration,
        idle: Duration,
    ) -> Vec<Value> {
        if let Err(e) = self.read(topics, count, timeout, None, true) {
            eprintln!("{e}");
        }
        self.read(topics, count, timeout, Some(idle), true)
            .expect("the topics can be read")
    }

    /// The group's committed offset per partition (`null` for none).
    pub fn committed(&self, group: &str, topic: &str) -> Value {
        let out = client(
            &[
                "committed",
                "--bootstrap",
                &self.bootstrap,
                "--group",
                group,
                "--topic",
                topic,
            ],
            None,
        );
        serde_json::from_str(out.trim()).expect("committed prints a JSON object")
    }

    fn read(
        &self,
        topics: &[&str],
        count: usize,
        timeout: Duration,
        idle: Option<Duration>,
        committed: bool,
    ) -> Result<Vec<Value>, String> {
        let c = count.to_string();
        let t = timeout.as_secs().max(1).to_string();
        let mut args = vec!["consume", "--bootstrap", &self.bootstrap, "--timeout", &t];
        for topic in topics {
            args.extend(["--topic", topic]);
        }
        if committed {
            args.push("--isolation=read_committed");
        }
        let i;
        match idle {
            Some(idle) => {
                i = format!("{}", idle.as_secs_f64());
                args.extend(["--idle", &i]);
            }
            None => args.extend(["--count", &c]),
        }
        Ok(client_result(&args, None)?
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect())
    }
}

/// Runs the independent client; panics with its stderr if it fails.
pub fn client(args: &[&str], stdin: Option<&str>) -> String {
    client_result(args, stdin).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs the independent client; its stderr if it fails.
pub fn client_result(args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let mut child = Command::new(python())
        .arg(client_script())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(pipe);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    if !out.status.success() {
        return Err(format!(
            "kafka_client.py {args:?} failed: {}\nstdout: {stdout}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(stdout)
}

/// A temporary folder for one test's config, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let dir = std::env::temp_dir().join(unique("weir-test"));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `weir run` as a child process, its log in a file of the test's folder.
pub struct WeirProcess {
    pub child: Child,
    pub log: PathBuf,
}

impl WeirProcess {
    pub fn start(config: &Path) -> WeirProcess {
        let log = config.with_extension(format!("{}.log", unique("run")));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(WEIR)
            .args(["run", "--config"])
            .arg(config)
            .env("WEIR_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("weir starts");
        WeirProcess { child, log }
    }

    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits for exit; panics (with the log) if it takes longer than `limit`.
    pub fn wait(mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "weir did not exit within {limit:?}; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the log contains `text`; panics (with the log) after `limit`.
    pub fn wait_for_log(&self, text: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.log_text().contains(text) {
            assert!(
                Instant::now() < deadline,
                "no {text:?} in weir's log within {limit:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for WeirProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A value field of a consumed record, parsed as JSON.
pub fn value_json(record: &Value) -> Value {
    serde_json::from_str(record["value"].as_str().expect("a text value")).expect("a JSON value")
}

/// The header `name` of a consumed record (the client prints pairs).
pub fn header<'a>(record: &'a Value, name: &str) -> Option<&'a Value> {
    record["headers"]
        .as_array()?
        .iter()
        .find(|pair| pair[0] == name)
        .map(|pair| &pair[1])
}
