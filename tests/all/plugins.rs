//! The plugin runtime against every fixture: worlds, init, limits, traps,
//! the sandbox and guest output. No Kafka needed.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use weir::cli::jsonl;
use weir::config::Limits;
use weir::plugin::{AbortKind, Instance, LoadError, LogTags, Outcome, Plugin, Runtime, World};

use crate::fixtures;

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| Runtime::new().expect("engine"))
}

fn load(path: &str) -> Arc<Plugin> {
    runtime()
        .load(Path::new(path))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn instance(path: &str, config: &[(&str, &str)]) -> Instance {
    let config: Vec<(String, String)> = config
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    load(path)
        .instantiate(&config, &Limits::default(), LogTags::default())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn call(instance: &mut Instance, line: &str) -> Outcome {
    let record = jsonl::parse_line(line).unwrap();
    instance.call(&record.to_message("t", 7))
}

const SCHEMA: &str = r#"{"type":"object","properties":{"id":{"type":"integer"},"text":{"type":"string"}},"required":["id","text"]}"#;

#[test]
fn every_fixture_is_covered_here() {
    // A new fixture must get a test; this list is the place to say which.
    let covered = [
        "REJECT",
        "FAIL",
        "TRAP",
        "TRAP_ON_BOOM",
        "INIT_ERROR",
        "INFINITE_LOOP",
        "MEMORY_HOG",
        "NOISY",
        "WRONG_WORLD",
        "SLOW",
        // lanes.rs, stalls.rs
        "SLOW_KEY",
        "FAN_OUT",
        "ECHO",
        "ENV_AND_FILES",
        "FLAKY",
        "MISSING_IMPORT",
        "NOOP",
        "JSON_SCHEMA",
        "ROUTER",
    ];
    for (name, _) in fixtures::ALL {
        let constant = name.to_uppercase().replace('-', "_");
        assert!(
            covered.contains(&constant.as_str()),
            "fixture {name} has no test"
        );
    }
}

#[test]
fn worlds_are_found_and_a_wrong_world_is_named() {
    assert_eq!(load(fixtures::JSON_SCHEMA).world(), World::Validator);
    assert_eq!(load(fixtures::ROUTER).world(), World::Transformer);
    let err = runtime()
        .load(Path::new(fixtures::WRONG_WORLD))
        .unwrap_err();
    assert!(matches!(err, LoadError::WrongWorld { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("weir:plugin/validator@0.1.0") && text.contains("greet"),
        "{text}"
    );
}

#[test]
fn not_a_component_is_a_clear_error() {
    let err = runtime()
        .load_bytes(Path::new("junk.wasm"), b"not wasm at all")
        .unwrap_err();
    assert!(matches!(err, LoadError::Compile { .. }), "{err}");
    assert!(err.to_string().contains("junk.wasm"));
}

#[test]
fn init_errors_fail_at_start_up() {
    let plugin = load(fixtures::INIT_ERROR);
    let err = plugin
        .instantiate(&[], &Limits::default(), LogTags::default())
        .unwrap_err();
    assert!(
        err.to_string().contains("fixture refuses its config"),
        "{err}"
    );
    let schema = load(fixtures::JSON_SCHEMA);
    let err = schema
        .instantiate(&[], &Limits::default(), LogTags::default())
        .unwrap_err();
    assert!(err.to_string().contains("schema"), "{err}");
}

#[test]
fn the_noop_validator_accepts_anything_on_one_instance() {
    // The benchmark's baseline plugin: every call must succeed on the same
    // instance, whatever the record holds, or the numbers measure restarts.
    let mut v = instance(fixtures::NOOP, &[]);
    for line in [
        r#"{"value":{"id":1,"text":"Hello 1"}}"#,
        r#"{"value":null,"key":null}"#,
        r#"{"value":"not json","headers":{"h":"v"}}"#,
    ] {
        for _ in 0..100 {
            assert_eq!(call(&mut v, line), Outcome::Accepted, "{line}");
        }
    }
    assert_eq!(v.replacements(), 0);
}

#[test]
fn the_json_schema_validator_accepts_and_rejects_with_reasons() {
    let mut v = instance(fixtures::JSON_SCHEMA, &[("schema", SCHEMA)]);
    assert_eq!(
        call(&mut v, r#"{"value":{"id":1,"text":"Hello 1"}}"#),
        Outcome::Accepted
    );
    let Outcome::Invalid(reason) = call(&mut v, r#"{"value":{"id":"x","text":"t"}}"#) else {
        panic!()
    };
    assert!(reason.contains("/id"), "{reason}");
    assert!(
        matches!(call(&mut v, r#"{"value":{"id":1}}"#), Outcome::Invalid(r) if r.contains("text"))
    );
    assert!(matches!(
        call(&mut v, r#"{"value":null}"#),
        Outcome::Invalid(_)
    ));
    assert!(matches!(
        call(&mut v, r#"{"value":{"$base64":"/w=="}}"#),
        Outcome::Invalid(_)
    ));
    assert!(matches!(
        call(&mut v, r#"{"value":"{not json"}"#),
        Outcome::Invalid(_)
    ));
}

#[test]
fn rejections_and_failures_come_back_typed() {
    let mut r = instance(fixtures::REJECT, &[]);
    assert_eq!(
        call(&mut r, r#"{"value":"x"}"#),
        Outcome::Invalid("rejected by fixture".into())
    );
    let mut f = instance(fixtures::FAIL, &[]);
    assert_eq!(
        call(&mut f, r#"{"value":"x"}"#),
        Outcome::Failed("fixture failure".into())
    );
}

#[test]
fn a_trap_replaces_the_instance_and_the_next_message_goes_through() {
    let mut v = instance(fixtures::TRAP_ON_BOOM, &[]);
    assert_eq!(call(&mut v, r#"{"value":"fine"}"#), Outcome::Accepted);
    let Outcome::Aborted(abort) = call(&mut v, r#"{"value":"boom"}"#) else {
        panic!("expected a trap")
    };
    assert_eq!(abort.kind, AbortKind::Trap);
    assert_eq!(v.replacements(), 1);
    assert_eq!(call(&mut v, r#"{"value":"fine again"}"#), Outcome::Accepted);
    let mut always = instance(fixtures::TRAP, &[]);
    assert!(
        matches!(call(&mut always, r#"{"value":"x"}"#), Outcome::Aborted(a) if a.kind == AbortKind::Trap)
    );
}

#[test]
fn an_infinite_loop_hits_the_deadline() {
    let plugin = load(fixtures::INFINITE_LOOP);
    let limits = Limits {
        timeout: Duration::from_millis(50),
        ..Limits::default()
    };
    let mut v = plugin
        .instantiate(&[], &limits, LogTags::default())
        .unwrap();
    let started = std::time::Instant::now();
    let outcome = call(&mut v, r#"{"value":"x"}"#);
    assert!(
        matches!(&outcome, Outcome::Aborted(a) if a.kind == AbortKind::Timeout),
        "{outcome:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the deadline bounds the call"
    );
}

#[test]
fn a_fuel_limit_on_an_engine_without_metering_is_refused_naming_the_key() {
    // The shared runtime meters no fuel, as `weir run` when no pipeline
    // set `limits.fuel` at start: the limit would silently bound nothing.
    let plugin = load(fixtures::INFINITE_LOOP);
    let limits = Limits {
        fuel: Some(10_000_000),
        timeout: Duration::from_secs(30),
        ..Limits::default()
    };
    let err = plugin
        .instantiate(&[], &limits, LogTags::default())
        .unwrap_err();
    assert!(matches!(err, LoadError::FuelNotMetered { .. }), "{err}");
    assert!(err.to_string().contains("limits.fuel"), "{err}");
    // With metering the same limit stops the loop.
    let metered = Runtime::with_fuel().unwrap();
    let mut v = metered
        .load(Path::new(fixtures::INFINITE_LOOP))
        .unwrap()
        .instantiate(&[], &limits, LogTags::default())
        .unwrap();
    let outcome = call(&mut v, r#"{"value":"x"}"#);
    assert!(
        matches!(&outcome, Outcome::Aborted(a) if a.kind == AbortKind::Fuel),
        "{outcome:?}"
    );
}

#[test]
fn a_slow_plugin_within_its_deadline_is_fine() {
    let mut v = instance(fixtures::SLOW, &[]);
    assert_eq!(call(&mut v, r#"{"value":"x"}"#), Outcome::Accepted);
}

#[test]
fn a_memory_hog_hits_the_memory_limit_with_numbers() {
    let plugin = load(fixtures::MEMORY_HOG);
    let limits = Limits {
        memory: 8 << 20,
        ..Limits::default()
    };
    let mut v = plugin
        .instantiate(&[], &limits, LogTags::default())
        .unwrap();
    let outcome = call(&mut v, r#"{"value":"x"}"#);
    let Outcome::Aborted(a) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(a.kind, AbortKind::Memory, "{}", a.reason);
    assert!(a.reason.contains(&(8u64 << 20).to_string()), "{}", a.reason);
}

#[test]
fn the_sandbox_has_no_environment_files_or_network() {
    let mut v = instance(fixtures::ENV_AND_FILES, &[]);
    let outcome = call(&mut v, r#"{"value":"x"}"#);
    assert!(
        matches!(&outcome, Outcome::Invalid(r) if r.starts_with("sandboxed")),
        "{outcome:?}"
    );
}

#[test]
fn guest_stdout_stderr_and_log_lines_reach_the_host_tagged() {
    let capture = Arc::new(Mutex::new(Vec::new()));
    let tags = LogTags {
        pipeline: "p".into(),
        plugin: "noisy".into(),
        capture: Some(Arc::clone(&capture)),
    };
    let mut v = load(fixtures::NOISY)
        .instantiate(&[], &Limits::default(), tags)
        .unwrap();
    capture.lock().unwrap().clear();
    assert_eq!(call(&mut v, r#"{"value":"x"}"#), Outcome::Accepted);
    let lines = capture.lock().unwrap().clone();
    let sources: Vec<&str> = lines.iter().map(|l| l.source).collect();
    assert!(
        sources.contains(&"stdout") && sources.contains(&"stderr") && sources.contains(&"info"),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.source == "info" && l.line.contains('7')),
        "the log line names offset 7: {lines:?}"
    );
}

#[test]
fn transformers_fan_out_and_echo() {
    let mut f = instance(fixtures::FAN_OUT, &[]);
    assert!(matches!(call(&mut f, r#"{"value":"3"}"#), Outcome::Outputs(o) if o.len() == 3));
    assert!(matches!(call(&mut f, r#"{"value":"0"}"#), Outcome::Outputs(o) if o.is_empty()));
    let mut e = instance(fixtures::ECHO, &[]);
    let Outcome::Outputs(o) = call(&mut e, r#"{"key":"k","value":"v","headers":{"h":null}}"#)
    else {
        panic!()
    };
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].key.as_deref(), Some(b"k".as_slice()));
    assert_eq!(o[0].headers[0].value, None);
}

#[test]
fn the_router_drops_splits_and_routes() {
    let mut r = instance(fixtures::ROUTER, &[("route.eu", "orders.eu")]);
    assert_eq!(
        call(&mut r, r#"{"value":{"drop":true}}"#),
        Outcome::Outputs(vec![])
    );
    let Outcome::Outputs(o) = call(
        &mut r,
        r#"{"value":{"items":[{"region":"eu"},{"region":"us"}]}}"#,
    ) else {
        panic!()
    };
    assert_eq!(
        o.iter().map(|o| o.topic.as_deref()).collect::<Vec<_>>(),
        vec![Some("orders.eu"), None]
    );
    assert!(matches!(
        call(&mut r, r#"{"value":"[1]"}"#),
        Outcome::Invalid(_)
    ));
}

#[test]
fn a_flaky_plugin_fails_twice_then_accepts() {
    let mut v = instance(fixtures::FLAKY, &[]);
    assert!(matches!(
        call(&mut v, r#"{"value":"x"}"#),
        Outcome::Failed(_)
    ));
    assert!(matches!(
        call(&mut v, r#"{"value":"x"}"#),
        Outcome::Failed(_)
    ));
    assert_eq!(call(&mut v, r#"{"value":"x"}"#), Outcome::Accepted);
}

#[test]
fn a_plugin_importing_what_the_host_lacks_is_refused_naming_the_import() {
    let err = runtime()
        .load(Path::new(fixtures::MISSING_IMPORT))
        .unwrap_err();
    assert!(matches!(err, LoadError::Link { .. }), "{err}");
    assert!(err.to_string().contains("fixture:missing/secrets"), "{err}");
}

/// The JavaScript example grows about a kilobyte a call (componentize-js
/// 0.23; see the soak test). Under a 16 MiB limit it would fail a valid
/// message with `memory` within a few thousand calls; weir replaces the
/// instance between two calls half-way to the limit instead, so none fails.
#[test]
fn a_leaking_guest_is_recycled_between_calls_before_it_fails_a_message() {
    let path = crate::conformance::component("js", "json_schema").unwrap_or_else(|e| panic!("{e}"));
    let plugin = runtime().load(&path).unwrap_or_else(|e| panic!("{e}"));
    let limits = Limits {
        memory: 16 << 20,
        timeout: Duration::from_secs(10),
        ..Limits::default()
    };
    let config = vec![("schema".to_string(), SCHEMA.to_string())];
    let mut v = plugin
        .instantiate(&config, &limits, LogTags::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let started = v.memory();
    let text = "x".repeat(1000);
    for i in 0..8000 {
        let line = format!(r#"{{"value":{{"id":{i},"text":"{text}"}}}}"#);
        let outcome = call(&mut v, &line);
        assert!(
            matches!(outcome, Outcome::Accepted),
            "call {i}: {outcome:?}"
        );
    }
    assert!(
        v.replacements() >= 1,
        "8000 calls grew the instance from {} KiB to {} KiB without a recycle",
        started >> 10,
        v.memory() >> 10
    );
    assert!(v.memory() <= 16 << 20);
}
