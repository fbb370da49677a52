//! `[kafka.security]` on Apache Kafka: one broker for this module with a
//! listener per protocol (SASL_PLAINTEXT, one-way TLS, mutual TLS,
//! SASL_SSL) and the mechanisms PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512. A
//! pipeline is seeded and drained through each; a wrong password, an
//! unknown user, a wrong CA and a missing client certificate are reported
//! naming the keys to check and never the secret. Then the mapping onto
//! librdkafka's properties and its errors, which need no broker.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use weir::config::Config;

use crate::broker::{Kafka, Options};
use crate::fixtures;
use crate::support::{TempDir, unique};

/// How long a drained run may take; a refused one is stopped sooner.
const LONG: Duration = Duration::from_secs(120);
/// How long a refused run is watched: the first failed probe and a repeat.
const REFUSED_FOR: Duration = Duration::from_secs(8);

/// The PLAIN user, declared in the listeners' JAAS configuration.
const PLAIN_USER: (&str, &str) = ("alice", "alice-plain-secret");
/// The SCRAM user written into the storage when it is formatted.
const FORMAT_USER: (&str, &str) = ("bob", "bob-scram-secret");
/// The SCRAM-SHA-512 user added through the admin API once the broker runs.
const RUNTIME_USER: (&str, &str) = ("carol", "carol-scram-secret");

struct Secure {
    kafka: Kafka,
    /// ca.pem (which signed the broker's and the client's certificates),
    /// other-ca.pem (which signed nothing here), client.pem, client.key.
    tls: PathBuf,
}

impl Secure {
    fn address(&self, listener: &str) -> &str {
        &self.kafka.listeners[listener]
    }

    fn file(&self, name: &str) -> String {
        self.tls.join(name).display().to_string()
    }
}

/// The module's broker, started by the first test that needs it. Its
/// folder sits inside the binary's shared-broker folder, which the next
/// test binary removes once this one is gone.
fn secure() -> &'static Secure {
    static SECURE: OnceLock<Secure> = OnceLock::new();
    SECURE.get_or_init(|| {
        let dir = std::env::temp_dir()
            .join(format!("weir-kafka-shared-{}", std::process::id()))
            .join("security");
        let tls = dir.join("tls");
        std::fs::create_dir_all(&tls).unwrap();
        certificate_authority(&tls, "ca");
        certificate_authority(&tls, "other-ca");
        signed_cert(&tls, "ca", "broker");
        signed_cert(&tls, "ca", "client");
        // Kafka's PEM keystore: the PKCS#8 key and the chain in one file.
        let keystore: String = ["broker.key", "broker.pem", "ca.pem"]
            .iter()
            .map(|f| std::fs::read_to_string(tls.join(f)).unwrap())
            .collect();
        std::fs::write(tls.join("broker-keystore.pem"), keystore).unwrap();

        let plain_jaas = format!(
            "org.apache.kafka.common.security.plain.PlainLoginModule required user_{}=\"{}\";",
            PLAIN_USER.0, PLAIN_USER.1
        );
        let scram_jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;";
        let mut properties = vec![
            (
                "sasl.enabled.mechanisms".to_string(),
                "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512".to_string(),
            ),
            ("ssl.keystore.type".into(), "PEM".into()),
            (
                "ssl.keystore.location".into(),
                tls.join("broker-keystore.pem").display().to_string(),
            ),
            ("ssl.truststore.type".into(), "PEM".into()),
            (
                "ssl.truststore.location".into(),
                tls.join("ca.pem").display().to_string(),
            ),
            (
                "listener.name.mtls.ssl.client.auth".into(),
                "required".into(),
            ),
        ];
        // One JAAS entry per SASL listener and mechanism, or the broker
        // does not start.
        for listener in ["sasl_plaintext", "sasl_ssl"] {
            properties.push((
                format!("listener.name.{listener}.plain.sasl.jaas.config"),
                plain_jaas.clone(),
            ));
            for mechanism in ["scram-sha-256", "scram-sha-512"] {
                properties.push((
                    format!("listener.name.{listener}.{mechanism}.sasl.jaas.config"),
                    scram_jaas.to_string(),
                ));
            }
        }
        let options = Options {
            listeners: [
                ("SASL_PLAINTEXT", "SASL_PLAINTEXT"),
                ("TLS", "SSL"),
                ("MTLS", "SSL"),
                ("SASL_SSL", "SASL_SSL"),
            ]
            .iter()
            .map(|(name, protocol)| (name.to_string(), protocol.to_string()))
            .collect(),
            properties,
            scram_users: vec![(FORMAT_USER.0.into(), FORMAT_USER.1.into())],
            ..Options::default()
        };
        let kafka = Kafka::launch(dir, &options).unwrap_or_else(|e| panic!("{e}"));

        let (user, password) = RUNTIME_USER;
        kafka
            .tool(
                "kafka.admin.ConfigCommand",
                &[
                    "--bootstrap-server",
                    &kafka.bootstrap,
                    "--alter",
                    "--entity-type",
                    "users",
                    "--entity-name",
                    user,
                    "--add-config",
                    // One mechanism per request: Kafka 4.1 refuses a
                    // user's credentials altered twice in one.
                    &format!("SCRAM-SHA-512=[iterations=8192,password={password}]"),
                ],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        let described = kafka
            .tool(
                "kafka.admin.ConfigCommand",
                &[
                    "--bootstrap-server",
                    &kafka.bootstrap,
                    "--describe",
                    "--entity-type",
                    "users",
                    "--entity-name",
                    user,
                ],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            described.contains("SCRAM-SHA-512"),
            "the run-time user has SCRAM credentials: {described}"
        );
        eprintln!(
            "security Kafka: {:?}, log {}",
            kafka.listeners,
            kafka.log.display()
        );
        Secure { kafka, tls }
    })
}

/// A weir config on `bootstrap` with `security` (TOML lines under
/// `[kafka.security]`) and an echo pipeline, whose topics it creates with
/// `create`; returns the config and the output topic.
fn config(dir: &TempDir, bootstrap: &str, security: &str, create: bool) -> (PathBuf, String) {
    let (input, output, dead) = (unique("in"), unique("out"), unique("dlq"));
    let topics = if create {
        "[pipeline.topics]\ncreate = true\npartitions = 2\nreplication = 1\n"
    } else {
        ""
    };
    let path = dir.write(
        "weir.toml",
        &format!(
            "[kafka]\nbrokers = \"{bootstrap}\"\n[kafka.security]\n{security}\n\
             [[pipeline]]\nname = \"secure\"\ninput = \"{input}\"\noutput = \"{output}\"\n\
             dead_letter = \"{dead}\"\nplugin = \"{}\"\n{topics}",
            fixtures::ECHO
        ),
    );
    (path, output)
}

fn sasl(protocol: &str, mechanism: &str, user: &str) -> String {
    format!(
        "protocol = \"{protocol}\"\nmechanism = \"{mechanism}\"\n\
         username = \"{user}\"\npassword = \"${{KAFKA_PASSWORD}}\"\n"
    )
}

const SEEDED: usize = 5;

/// `weir run --no-reload` with `args` and `KAFKA_PASSWORD=password`,
/// stopped by SIGTERM if it has not ended within `limit`.
fn run_weir(dir: &TempDir, args: &[&OsStr], password: &str, limit: Duration) -> Output {
    let (stdout, stderr) = (dir.0.join("stdout"), dir.0.join("stderr"));
    let mut child = Command::new(crate::support::WEIR)
        .args(["run", "--no-reload"])
        .args(args)
        .env("WEIR_LOG", "info")
        .env("KAFKA_PASSWORD", password)
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("weir starts");
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if child.try_wait().unwrap().is_none() {
        let _ = Command::new("kill")
            .args(["-s", "TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    Output {
        status,
        stdout: std::fs::read(stdout).unwrap(),
        stderr: std::fs::read(stderr).unwrap(),
    }
}

/// Seeds and drains a pipeline on `listener` with `security` (`what`, for
/// the count printed); every seeded record must come out, and `password`
/// must show nowhere.
fn assert_drains(what: &str, listener: &str, security: &str, password: &str) {
    let secure = secure();
    let dir = TempDir::new();
    let (config, output) = config(&dir, secure.address(listener), security, true);
    let seed = dir.write(
        "seed.jsonl",
        &(0..SEEDED)
            .map(|i| format!("{{\"key\": \"k{i}\", \"value\": \"v{i}\"}}\n"))
            .collect::<String>(),
    );
    let args = [
        OsStr::new("--seed"),
        seed.as_os_str(),
        OsStr::new("--drain"),
        OsStr::new("--config"),
        config.as_os_str(),
    ];
    let out = run_weir(&dir, &args, password, LONG);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("seeded {SEEDED} records")),
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(&format!("output in {output}: {SEEDED} records")),
        "{stdout}\n{stderr}"
    );
    let through = (0..SEEDED)
        .filter(|i| stdout.contains(&format!("v{i}")))
        .count();
    assert_eq!(through, SEEDED, "{stdout}\n{stderr}");
    eprintln!("{what} on {listener}: {through} of {SEEDED} records seeded and drained");
    if !password.is_empty() {
        assert!(
            !stdout.contains(password) && !stderr.contains(password),
            "the password is never printed:\n{stdout}\n{stderr}"
        );
    }
}

/// A run that gets nowhere, stopped after [`REFUSED_FOR`]: the topic check
/// is skipped with a warning, since Kafka does not answer it, and the
/// pipeline's consumer keeps trying, as for a broker that is down, logging
/// what Kafka said. Returns the log.
fn refused(listener: &str, security: &str, password: &str) -> String {
    refused_with(listener, security, password, false)
}

/// As [`refused`]; with `create`, weir waits to create the topics instead
/// of skipping the check, and its topic set-up logs Kafka's reason itself.
fn refused_with(listener: &str, security: &str, password: &str, create: bool) -> String {
    let secure = secure();
    let dir = TempDir::new();
    let (config, _) = config(&dir, secure.address(listener), security, create);
    let args = [OsStr::new("--config"), config.as_os_str()];
    let out = run_weir(&dir, &args, password, REFUSED_FOR);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    eprintln!("{listener} refused; weir's log:\n{stderr}");
    let cannot = if create {
        "waiting for Kafka to create the pipelines' topics"
    } else {
        "topics not checked: Kafka did not answer"
    };
    assert!(
        stderr.contains(cannot),
        "weir says what it could not do:\n{stderr}"
    );
    assert!(
        !stderr.contains("rebalance: assigned"),
        "the consumer never joined its group:\n{stderr}"
    );
    if !password.is_empty() {
        assert!(
            !stdout.contains(password) && !stderr.contains(password),
            "the password is never printed:\n{stdout}\n{stderr}"
        );
    }
    stderr.into_owned()
}

#[test]
fn sasl_plain_seeds_and_drains_a_pipeline() {
    let (user, password) = PLAIN_USER;
    assert_drains(
        "PLAIN",
        "SASL_PLAINTEXT",
        &sasl("sasl_plaintext", "PLAIN", user),
        password,
    );
}

#[test]
fn scram_sha_256_with_a_user_made_at_format_time_seeds_and_drains_a_pipeline() {
    let (user, password) = FORMAT_USER;
    assert_drains(
        "SCRAM-SHA-256",
        "SASL_PLAINTEXT",
        &sasl("sasl_plaintext", "SCRAM-SHA-256", user),
        password,
    );
}

#[test]
fn scram_sha_512_with_a_user_made_through_the_admin_api_seeds_and_drains_a_pipeline() {
    let (user, password) = RUNTIME_USER;
    assert_drains(
        "SCRAM-SHA-512",
        "SASL_PLAINTEXT",
        &sasl("sasl_plaintext", "SCRAM-SHA-512", user),
        password,
    );
}

#[test]
fn one_way_tls_seeds_and_drains_a_pipeline() {
    let secure = secure();
    let security = format!("protocol = \"ssl\"\nca = {:?}\n", secure.file("ca.pem"));
    assert_drains("one-way TLS", "TLS", &security, "");
}

#[test]
fn mutual_tls_seeds_and_drains_a_pipeline() {
    let secure = secure();
    let security = format!(
        "protocol = \"ssl\"\nca = {:?}\ncert = {:?}\nkey = {:?}\n",
        secure.file("ca.pem"),
        secure.file("client.pem"),
        secure.file("client.key")
    );
    assert_drains("mutual TLS", "MTLS", &security, "");
}

#[test]
fn scram_over_tls_seeds_and_drains_a_pipeline() {
    let secure = secure();
    let (user, password) = FORMAT_USER;
    let security = format!(
        "{}ca = {:?}\n",
        sasl("sasl_ssl", "SCRAM-SHA-512", user),
        secure.file("ca.pem")
    );
    assert_drains("SCRAM-SHA-512 over TLS", "SASL_SSL", &security, password);
}

#[test]
fn a_wrong_password_is_refused_naming_the_password_key_never_the_password() {
    let (user, _) = FORMAT_USER;
    let wrong = "not-bobs-password";
    let log = refused(
        "SASL_PLAINTEXT",
        &sasl("sasl_plaintext", "SCRAM-SHA-256", user),
        wrong,
    );
    assert!(
        log.contains("SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"),
        "Kafka answers the login with an error:\n{log}"
    );
    assert!(
        log.contains("kafka.security.password"),
        "the key is named:\n{log}"
    );
}

#[test]
fn a_wrong_password_while_weir_waits_to_create_topics_logs_kafkas_reason() {
    let (user, _) = FORMAT_USER;
    let log = refused_with(
        "SASL_PLAINTEXT",
        &sasl("sasl_plaintext", "SCRAM-SHA-256", user),
        "not-bobs-password",
        true,
    );
    let waiting = log
        .lines()
        .take_while(|l| !l.contains("signal received"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        waiting.contains("SASL authentication error")
            && waiting.contains("kafka.security.password"),
        "the topic set-up names Kafka's reason and the key:\n{log}"
    );
}

#[test]
fn an_unknown_user_is_refused_naming_the_username_key() {
    let log = refused(
        "SASL_PLAINTEXT",
        &sasl("sasl_plaintext", "PLAIN", "mallory"),
        "mallory-secret",
    );
    assert!(
        log.contains(
            "SASL authentication error: Authentication failed: Invalid username or password"
        ),
        "Kafka answers the login with an error:\n{log}"
    );
    assert!(
        log.contains("kafka.security.username"),
        "the key is named:\n{log}"
    );
}

#[test]
fn a_ca_that_did_not_sign_the_broker_is_refused_naming_the_ca_key() {
    let secure = secure();
    let security = format!(
        "protocol = \"ssl\"\nca = {:?}\n",
        secure.file("other-ca.pem")
    );
    let log = refused("TLS", &security, "");
    assert!(
        log.contains("certificate verify failed"),
        "the handshake failure is named:\n{log}"
    );
    assert!(
        log.contains("kafka.security.ca"),
        "the key is named:\n{log}"
    );
}

#[test]
fn mutual_tls_without_a_client_certificate_is_refused_naming_cert_and_key() {
    let secure = secure();
    let security = format!("protocol = \"ssl\"\nca = {:?}\n", secure.file("ca.pem"));
    let log = refused("MTLS", &security, "");
    assert!(
        log.contains("alert bad certificate"),
        "the broker's refusal is named:\n{log}"
    );
    assert!(
        log.contains("kafka.security.cert") && log.contains("kafka.security.key"),
        "the keys are named:\n{log}"
    );
}

#[test]
fn tls_to_a_plaintext_listener_is_reported_as_a_failed_handshake() {
    let secure = secure();
    let dir = TempDir::new();
    let security = format!("protocol = \"ssl\"\nca = {:?}\n", secure.file("ca.pem"));
    let (config, _) = config(&dir, &secure.kafka.bootstrap, &security, false);
    let args = [OsStr::new("--config"), config.as_os_str()];
    let out = run_weir(&dir, &args, "", REFUSED_FOR);
    let log = String::from_utf8_lossy(&out.stderr);
    eprintln!("TLS to PLAINTEXT; weir's log:\n{log}");
    assert!(
        log.contains("SSL handshake failed"),
        "the TLS failure is named:\n{log}"
    );
    assert!(log.contains("kafka.security.protocol"), "{log}");
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
        .stdin(Stdio::null())
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

/// `<name>.key` (PKCS#8, unencrypted) and `<name>.pem`, self-signed.
fn certificate_authority(dir: &Path, name: &str) {
    let (key, pem, subject) = (
        format!("{name}.key"),
        format!("{name}.pem"),
        format!("/CN=weir-test-{name}"),
    );
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", &key, "-out",
            &pem, "-subj", &subject,
        ],
    );
}

/// `<name>.key` (PKCS#8, unencrypted) and `<name>.pem` signed by `<ca>`,
/// valid for 127.0.0.1 (librdkafka checks the broker's name by default).
fn signed_cert(dir: &Path, ca: &str, name: &str) {
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    let (key, csr, pem) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    let subject = format!("/CN=weir-test-{name}");
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
