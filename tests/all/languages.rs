//! Every language's example plugins (`plugins/<language>`, built by
//! `plugins/build.sh` into `plugins/dist/`) beyond the conformance suite:
//! - in a real pipeline on Apache Kafka, the router and the JSON-schema validator
//!   side by side on one input topic: a component of each toolchain
//!   (rustc, componentize-py with CPython inside, componentize-js with
//!   SpiderMonkey inside, clang with the WASI preview1 adapter, mainline Go
//!   with the same adapter) loads, runs and produces through weir;
//! - on the probe files the language engineers wrote against their own
//!   runtime's pitfalls (number spelling, lone surrogates, repeated keys,
//!   nesting depth, a BOM), every language gives Rust's results line for
//!   line, and on the schemas that use each subset's keywords, its own.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::conformance::component;
use crate::kafka::{Setup, setup_with};
use crate::support::{WEIR, WeirProcess, header, unique};

// Cold start compiles two components of up to ~19 MB (15-30 s each on a busy machine).
const LONG: Duration = Duration::from_secs(300);
const IDLE: Duration = Duration::from_secs(3);

/// A missing component fails the test: it is never skipped.
fn dist(language: &str, plugin: &str) -> String {
    component(language, plugin)
        .unwrap_or_else(|e| panic!("{e}"))
        .display()
        .to_string()
}

/// key → (topic it landed in, record) for every record read.
fn by_key(records: &[(&str, &[Value])]) -> BTreeMap<String, Vec<(String, Value)>> {
    let mut map: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
    for (topic, rs) in records {
        for r in *rs {
            let key = r["key"].as_str().unwrap_or("<null>").to_string();
            map.entry(key)
                .or_default()
                .push((topic.to_string(), r.clone()));
        }
    }
    map
}

fn router_and_validator_on_kafka(language: &str) {
    let router_wasm = dist(language, "router");
    let validator_wasm = dist(language, "json_schema");
    let file_name = |path: &str| {
        Path::new(path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
    };
    let valid = unique("valid");
    let dead_validator = unique("dlq-validator");
    let group = unique("group");
    let schema = r#"{"type":"object","properties":{"id":{"type":"integer"},"text":{"type":"string"}},"required":["id","text"]}"#;
    let Setup {
        kafka,
        t,
        config,
        _dir,
    } = setup_with(
        1,
        2,
        &router_wasm,
        &|t| {
            vec![
                ("route.eu".into(), t.routes[0].clone()),
                ("route.us".into(), t.routes[1].clone()),
            ]
        },
        "",
    );
    // The validator reads the same input in a pipeline of its own.
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[[pipeline]]\nname = \"e2e-validator\"\ninput = \"{}\"\ngroup = \"{group}\"\n\
         output = \"{valid}\"\ndead_letter = \"{dead_validator}\"\nplugin = \"{validator_wasm}\"\n\
         [pipeline.config]\nschema = {schema:?}\n",
        t.input,
    ));
    std::fs::write(&config, text).unwrap();
    kafka.create_topics(1, &[&valid, &dead_validator]);

    let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
    kafka.produce(
        &t.input,
        &[
            json!({"key": "eu", "value": {"id": 1, "region": "eu", "text": "a"}}),
            json!({"key": "us", "value": {"id": 2, "region": "us", "text": "b"}}),
            json!({"key": "split", "value": r#"{"items": [{"n": 1, "region": "eu", "t": "é 日本"}, {"b": 2, "7": 1.0}]}"#, "headers": {"h": "v"}}),
            json!({"key": "gone", "value": {"drop": true, "id": 3, "text": "c"}}),
            json!({"key": "bool-id", "value": {"id": true, "text": "x"}}),
            json!({"key": "nan", "value": "{\"id\": NaN, \"text\": \"x\"}"}),
            json!({"key": "huge", "value": "{\"id\": 1e400, \"text\": \"x\"}"}),
            json!({"key": "deep", "value": deep}),
        ],
    );

    let weir = WeirProcess::start(&config);
    let eu = kafka.consume(&[&t.routes[0]], 2, LONG, Some(IDLE));
    let us = kafka.consume(&[&t.routes[1]], 1, LONG, Some(IDLE));
    let out = kafka.consume(&[&t.output], 2, LONG, Some(IDLE));
    let dead = kafka.consume(&[&t.dead], 3, LONG, Some(IDLE));
    let ok = kafka.consume(&[&valid], 3, LONG, Some(IDLE));
    let rejected = kafka.consume(&[&dead_validator], 5, LONG, Some(IDLE));
    weir.signal("TERM");
    let log = weir.log_text();
    assert!(weir.wait(LONG).success(), "{language}: {log}");

    let router = by_key(&[
        ("eu", &eu[..]),
        ("us", &us[..]),
        ("out", &out[..]),
        ("dead", &dead[..]),
    ]);
    let topics = |key: &str| -> Vec<&str> {
        router
            .get(key)
            .map_or(vec![], |rs| rs.iter().map(|(t, _)| t.as_str()).collect())
    };
    assert_eq!(topics("eu"), ["eu"], "{language}: {router:#?}");
    assert_eq!(topics("us"), ["us"], "{language}");
    assert_eq!(topics("gone"), Vec::<&str>::new(), "{language}: dropped");
    assert_eq!(
        topics("bool-id"),
        ["out"],
        "{language}: passed on unchanged"
    );
    assert_eq!(topics("nan"), ["dead"], "{language}");
    assert_eq!(
        topics("huge"),
        ["dead"],
        "{language}: 1e400 is out of range"
    );
    assert_eq!(topics("deep"), ["dead"], "{language}: refused, not a trap");
    let mut split = router["split"].clone();
    split.sort_by_key(|(_, r)| {
        header(r, "weir.split.index")
            .cloned()
            .map(|v| v.to_string())
    });
    assert_eq!(split.len(), 2, "{language}: {split:?}");
    assert_eq!(
        split[0].0, "eu",
        "{language}: the item is routed by its own region"
    );
    assert_eq!(
        split[0].1["value"],
        json!(r#"{"n":1,"region":"eu","t":"é 日本"}"#),
        "{language}"
    );
    assert_eq!(header(&split[0].1, "weir.split.index"), Some(&json!("0")));
    assert_eq!(header(&split[0].1, "h"), Some(&json!("v")));
    assert_eq!(
        (split[1].0.as_str(), &split[1].1["value"]),
        ("out", &json!(r#"{"b":2,"7":1.0}"#)),
        "{language}: key order and number spelling as in the source, like serde_json"
    );
    for (_, r) in router["nan"]
        .iter()
        .chain(&router["huge"])
        .chain(&router["deep"])
    {
        assert_eq!(header(r, "weir.error.kind"), Some(&json!("invalid")));
        assert_eq!(
            header(r, "weir.plugin"),
            file_name(&router_wasm).map(Value::from).as_ref()
        );
    }

    let keys = |rs: &[Value]| {
        let mut keys: Vec<String> = rs
            .iter()
            .map(|r| r["key"].as_str().unwrap().to_string())
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&ok), ["eu", "gone", "us"], "{language}");
    assert_eq!(
        keys(&rejected),
        ["bool-id", "deep", "huge", "nan", "split"],
        "{language}"
    );
    for r in &rejected {
        assert_eq!(header(r, "weir.error.kind"), Some(&json!("invalid")), "{r}");
        assert_eq!(
            header(r, "weir.plugin"),
            file_name(&validator_wasm).map(Value::from).as_ref()
        );
    }
}

#[test]
fn rust_router_and_validator_route_fan_out_drop_and_dead_letter_on_kafka() {
    router_and_validator_on_kafka("rust");
}

#[test]
fn python_router_and_validator_route_fan_out_drop_and_dead_letter_on_kafka() {
    router_and_validator_on_kafka("python");
}

#[test]
fn js_router_and_validator_route_fan_out_drop_and_dead_letter_on_kafka() {
    router_and_validator_on_kafka("js");
}

#[test]
fn c_router_and_validator_route_fan_out_drop_and_dead_letter_on_kafka() {
    router_and_validator_on_kafka("c");
}

#[test]
fn go_router_and_validator_route_fan_out_drop_and_dead_letter_on_kafka() {
    router_and_validator_on_kafka("go");
}

/// The result lines of `weir test` without `reason` and `logs` (whose
/// wording is free), run from the repository root.
fn results(wasm: &str, input: &str, config: &[&str]) -> Vec<Value> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cmd = Command::new(WEIR);
    cmd.current_dir(&repo)
        .args(["test", wasm, "--format", "json", "--input", input]);
    for c in config {
        cmd.args(["--config", c]);
    }
    let out = cmd.output().expect("weir runs");
    assert!(
        out.status.success(),
        "weir test {wasm} {input}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = std::fs::read_to_string(repo.join(input))
        .expect("the probe file")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    let results: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).expect("a JSON result line");
            let o = v.as_object_mut().expect("a result object");
            o.remove("reason");
            o.remove("logs");
            v
        })
        .collect();
    assert_eq!(
        results.len(),
        lines,
        "{wasm} on {input}: one result per line"
    );
    results
}

/// Asserts `language`'s `plugin` gives Rust's results on `input`.
fn same_as_rust(language: &str, plugin: &str, input: &str, config: &[&str]) {
    let rust = results(&dist("rust", plugin), input, config);
    let other = results(&dist(language, plugin), input, config);
    for (i, (r, o)) in rust.iter().zip(&other).enumerate() {
        assert_eq!(
            o,
            r,
            "{plugin} on {input}, line {}: {language} vs rust",
            i + 1
        );
    }
}

const ORDER: &[&str] = &["schema=@quickstart/schemas/order.json"];
const ROUTES: &[&str] = &[
    "route_field=region",
    "route.eu=orders.eu",
    "route.us=orders.us",
    "route.__proto__=orders.proto",
    "route.constructor=orders.c",
];
const PROBES: &[&str] = &[
    "plugins/python/edge-cases.jsonl",
    "plugins/js/tests/probe-validator.jsonl",
    "plugins/js/tests/probe-router.jsonl",
    "plugins/js/tests/numbers.jsonl",
    "plugins/c/tests/probe.jsonl",
];

#[test]
fn every_language_gives_rust_s_results_on_every_language_s_probes() {
    for language in ["python", "js", "c", "go"] {
        for input in PROBES {
            same_as_rust(language, "json_schema", input, ORDER);
            same_as_rust(language, "router", input, ROUTES);
        }
    }
}

/// The schema subsets differ (C's is a checked subset, JS's draft support
/// is its library's), so each language's rich schema is checked by itself;
/// Go's library implements the full drafts, so it must pass both.
#[test]
fn each_language_s_rich_schema_gives_rust_s_results() {
    for (language, rich) in [("js", "js"), ("c", "c"), ("go", "js"), ("go", "c")] {
        let schema = format!("schema=@plugins/{rich}/tests/rich-schema.json");
        let input = format!("plugins/{rich}/tests/rich.jsonl");
        same_as_rust(language, "json_schema", &input, &[&schema]);
    }
}
