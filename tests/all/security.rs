//! `[kafka.security]`: SCRAM against a tansu that requires authentication,
//! mutual TLS through a TLS terminator in front of tansu (tansu 0.6 does not
//! serve TLS: its `--cert`/`--key` build an acceptor that is never used),
//! TLS against a plaintext port, and the mapping onto librdkafka's
//! properties with its errors.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use weir::config::Config;

use crate::fixtures;
use crate::support::{Tansu, TempDir, tansu_binary, unique};

const LONG: Duration = Duration::from_secs(60);

fn free_port() -> u16 {
    crate::metrics::free_port()
}

/// A tansu on `port` whose records and users live in `dir/users.db`.
fn tansu(dir: &Path, port: u16, authentication: bool) -> Child {
    let url = format!("tcp://127.0.0.1:{port}");
    let mut cmd = Command::new(tansu_binary());
    cmd.current_dir(dir)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "sqlite://users.db"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if authentication {
        cmd.arg("--authentication");
    }
    let child = cmd.spawn().expect("tansu starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "tansu did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// `weir run` with `KAFKA_PASSWORD` set; returns its log once it has run
/// for `run_for` and stopped on SIGTERM.
fn run_weir(config: &Path, password: &str, run_for: Duration) -> String {
    let log = config.with_extension(format!("{}.log", unique("run")));
    let mut child = Command::new(crate::support::WEIR)
        .args(["run", "--no-reload", "--config"])
        .arg(config)
        .env("WEIR_LOG", "info")
        .env("KAFKA_PASSWORD", password)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("weir starts");
    std::thread::sleep(run_for);
    let _ = Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + LONG;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::read_to_string(log).unwrap()
}

fn config(dir: &TempDir, bootstrap: &str, security: &str, topics: bool) -> PathBuf {
    let (input, output, dead) = (unique("in"), unique("out"), unique("dlq"));
    let create = if topics {
        "[pipeline.topics]\ncreate = true\npartitions = 2\nreplication = 1\n"
    } else {
        ""
    };
    dir.write(
        "weir.toml",
        &format!(
            "[kafka]\nbrokers = \"{bootstrap}\"\n[kafka.security]\n{security}\n\
             [[pipeline]]\nname = \"secure\"\ninput = \"{input}\"\noutput = \"{output}\"\n\
             dead_letter = \"{dead}\"\nplugin = \"{}\"\n{create}",
            fixtures::ECHO
        ),
    )
}

const SCRAM: &str = "protocol = \"sasl_plaintext\"\nmechanism = \"SCRAM-SHA-512\"\n\
                     username = \"alice\"\npassword = \"${KAFKA_PASSWORD}\"\n";

#[test]
fn scram_sha_512_authenticates_to_tansu_and_a_wrong_password_gets_nowhere() {
    let dir = TempDir::new();
    let port = free_port();
    // Users are created on an open broker, then it restarts requiring them.
    let mut open = tansu(&dir.0, port, false);
    let created = Command::new(tansu_binary())
        .args([
            "user",
            "create",
            "--broker",
            &format!("tcp://127.0.0.1:{port}"),
        ])
        .args(["--mechanism", "scram512", "alice", "s3cret"])
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let _ = open.kill();
    let _ = open.wait();
    let mut broker = tansu(&dir.0, port, true);

    let config = config(&dir, &format!("127.0.0.1:{port}"), SCRAM, true);
    let log = run_weir(&config, "s3cret", Duration::from_secs(6));
    // Authenticated: the admin client created the topics and the consumer
    // joined its group.
    assert_eq!(log.matches("topic created").count(), 3, "{log}");
    assert!(log.contains("rebalance: assigned"), "{log}");
    assert!(
        !log.contains("s3cret"),
        "the password is never logged:\n{log}"
    );

    let config = config_again(&dir, port);
    let log = run_weir(&config, "wrong", Duration::from_secs(4));
    assert!(!log.contains("topic created"), "{log}");
    assert!(
        log.contains("waiting for Kafka") && log.contains("SASL"),
        "a rejected login is reported with a hint at the credentials:\n{log}"
    );
    assert!(!log.contains("wrong"), "{log}");
    let _ = broker.kill();
    let _ = broker.wait();
}

/// A fresh config (new topics) on the same broker.
fn config_again(dir: &TempDir, port: u16) -> PathBuf {
    config(dir, &format!("127.0.0.1:{port}"), SCRAM, true)
}

#[test]
fn tls_to_a_plaintext_port_is_reported_as_a_failed_handshake() {
    let tansu = Tansu::start();
    let dir = TempDir::new();
    let made = Command::new("openssl")
        .current_dir(&dir.0)
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=weir-test-ca",
        ])
        .output()
        .expect("openssl runs");
    assert!(made.status.success(), "{made:?}");
    let config = config(
        &dir,
        &tansu.bootstrap,
        // tansu waits for the rest of what it takes for a request: the
        // handshake stalls until librdkafka's connection set-up timeout.
        "protocol = \"ssl\"\nca = \"ca.pem\"\n\
         [kafka.properties]\n\"socket.connection.setup.timeout.ms\" = 2000\n",
        false,
    );
    let log = run_weir(&config, "", Duration::from_secs(8));
    assert!(log.contains("ssl://127.0.0.1"), "{log}");
    assert!(
        log.to_lowercase().contains("handshake"),
        "the TLS failure is named:\n{log}"
    );
    assert!(!log.contains("pipeline stopped with"), "{log}");
}

fn parse(dir: &TempDir, security: &str) -> Result<Config, weir::config::ConfigError> {
    std::fs::write(dir.0.join("p.wasm"), b"").unwrap();
    std::fs::write(dir.0.join("ca.pem"), b"").unwrap();
    std::fs::write(dir.0.join("client.pem"), b"").unwrap();
    std::fs::write(dir.0.join("client.key"), b"").unwrap();
    let text = format!(
        "[kafka]\nbrokers = \"b:9093\"\n[kafka.security]\n{security}\n\
         [[pipeline]]\nname = \"p\"\ninput = \"i\"\noutput = \"o\"\ndead_letter = \"d\"\nplugin = \"p.wasm\"\n"
    );
    let env = |name: &str| (name == "KAFKA_PASSWORD").then(|| "hunter2".to_string());
    Config::parse(&dir.0.join("weir.toml"), &text, &env)
}

#[test]
fn security_maps_onto_librdkafka_properties_and_hides_the_password() {
    let dir = TempDir::new();
    let c = parse(
        &dir,
        "protocol = \"sasl_ssl\"\nmechanism = \"SCRAM-SHA-256\"\nusername = \"bob\"\n\
         password = \"${KAFKA_PASSWORD}\"\nca = \"ca.pem\"\ncert = \"client.pem\"\nkey = \"client.key\"\n\
         key_password = \"${KAFKA_PASSWORD}\"",
    )
    .unwrap();
    let p = &c.kafka.properties;
    assert_eq!(p["security.protocol"], "sasl_ssl");
    assert_eq!(p["sasl.mechanisms"], "SCRAM-SHA-256");
    assert_eq!(p["sasl.username"], "bob");
    assert_eq!(p["sasl.password"], "hunter2");
    assert_eq!(p["ssl.key.password"], "hunter2");
    assert_eq!(
        Path::new(&p["ssl.ca.location"]),
        std::path::absolute(dir.0.join("ca.pem")).unwrap()
    );
    assert!(p["ssl.certificate.location"].ends_with("client.pem"));
    assert!(p["ssl.key.location"].ends_with("client.key"));
    let shown = format!("{c:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[test]
fn bad_security_settings_name_their_key() {
    let dir = TempDir::new();
    let cases = [
        ("protocol = \"tls\"", "kafka.security.protocol", "tls"),
        (
            "protocol = \"sasl_ssl\"\nmechanism = \"GSSAPI\"\nusername = \"u\"\npassword = \"p\"",
            "kafka.security.mechanism",
            "GSSAPI",
        ),
        (
            "protocol = \"sasl_plaintext\"\nmechanism = \"PLAIN\"\npassword = \"p\"",
            "kafka.security.username",
            "required",
        ),
        (
            "protocol = \"sasl_plaintext\"\nmechanism = \"PLAIN\"\nusername = \"u\"\npassword = \"p\"\nca = \"ca.pem\"",
            "kafka.security.ca",
            "does not apply",
        ),
        (
            "protocol = \"ssl\"\nca = \"missing.pem\"",
            "kafka.security.ca",
            "missing.pem",
        ),
        (
            "protocol = \"ssl\"\ncert = \"client.pem\"",
            "kafka.security.cert",
            "both",
        ),
        (
            "protocol = \"sasl_plaintext\"\nmechanism = \"PLAIN\"\nusername = \"u\"\npassword = \"${NOT_SET_ANYWHERE}\"",
            "kafka.security.password",
            "NOT_SET_ANYWHERE",
        ),
    ];
    for (security, key, says) in cases {
        let e = parse(&dir, security).unwrap_err();
        assert_eq!(e.key, key, "{security}: {e}");
        assert!(e.to_string().contains(says), "{security}: {e}");
        assert!(e.line.is_some(), "{e}");
    }
    // The same property set by hand to something else: refused, not overridden.
    let e = parse(
        &dir,
        "protocol = \"ssl\"\n[kafka.properties]\n\"security.protocol\" = \"plaintext\"",
    )
    .unwrap_err();
    assert_eq!(e.key, "kafka.security.protocol", "{e}");
    assert!(e.message.contains("set it in one place"), "{e}");
}

/// Runs `openssl` in `dir`; panics with its output if it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

/// `<name>.key` and `<name>.pem` signed by `<ca>`, valid for 127.0.0.1.
fn signed_cert(dir: &Path, ca: &str, name: &str) {
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    let (key, csr, pem) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    let subject = format!("/CN={name}");
    openssl(
        dir,
        &[
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj",
            &subject,
        ],
    );
    let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "san.ext",
            "-out",
            &pem,
        ],
    );
}

fn certificate_authority(dir: &Path, name: &str) {
    let (key, pem, subject) = (
        format!("{name}.key"),
        format!("{name}.pem"),
        format!("/CN={name}"),
    );
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", &key, "-out",
            &pem, "-subj", &subject,
        ],
    );
}

/// Mutual TLS to a real broker: tansu behind a TLS terminator
/// (`tests/e2e/tls_proxy.py`, which requires a client certificate) and
/// advertising the terminator's port, so every connection weir makes, the
/// admin client's, the producer's and the consumer's, is TLS. A CA that did
/// not sign the broker's certificate gets nowhere, and the log says TLS is
/// the likely cause (librdkafka reports it as a transport failure).
#[test]
fn mutual_tls_through_a_terminator_runs_a_pipeline_and_a_wrong_ca_gets_nowhere() {
    let dir = TempDir::new();
    certificate_authority(&dir.0, "ca");
    certificate_authority(&dir.0, "other-ca");
    signed_cert(&dir.0, "ca", "broker");
    signed_cert(&dir.0, "ca", "client");

    let (plain, tls) = (free_port(), free_port());
    let mut broker = Command::new(tansu_binary())
        .current_dir(&dir.0)
        .args([
            "broker",
            "--listener-url",
            &format!("tcp://127.0.0.1:{plain}"),
        ])
        .args([
            "--advertised-listener-url",
            &format!("tcp://127.0.0.1:{tls}"),
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tansu starts");
    let proxy_script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/tls_proxy.py");
    let mut proxy = Command::new(crate::support::python())
        .current_dir(&dir.0)
        .arg(&proxy_script)
        .args([
            &tls.to_string(),
            &plain.to_string(),
            "broker.pem",
            "broker.key",
            "ca.pem",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the TLS terminator starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    for port in [plain, tls] {
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nothing listens on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    let seed = dir.write(
        "seed.jsonl",
        &(0..5)
            .map(|i| format!("{{\"key\": \"k{i}\", \"value\": \"v{i}\"}}\n"))
            .collect::<String>(),
    );
    let drain = |ca: &str, limit: Duration| {
        let config = config(
            &dir,
            &format!("127.0.0.1:{tls}"),
            &format!(
                "protocol = \"ssl\"\nca = \"{ca}.pem\"\ncert = \"client.pem\"\nkey = \"client.key\"\n"
            ),
            true,
        );
        let mut child = Command::new(crate::support::WEIR)
            .args(["run", "--no-reload", "--seed"])
            .arg(&seed)
            .arg("--drain")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("weir starts");
        let deadline = Instant::now() + limit;
        while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        child.wait_with_output().unwrap()
    };

    let good = drain("ca", LONG);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&good.stdout),
        String::from_utf8_lossy(&good.stderr),
    );
    assert!(good.status.success(), "{stdout}\n{stderr}");
    for i in 0..5 {
        assert!(
            stdout.contains(&format!("v{i}")),
            "record {i} came through:\n{stdout}\n{stderr}"
        );
    }

    // It keeps trying, as for a broker that is down, and says why.
    let bad = drain("other-ca", Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success(), "{stderr}");
    assert!(
        stderr.contains("TLS is on: a failed handshake can look like this"),
        "the probable cause is named:\n{stderr}"
    );
    let _ = proxy.kill();
    let _ = broker.kill();
    let _ = proxy.wait();
    let _ = broker.wait();
}
