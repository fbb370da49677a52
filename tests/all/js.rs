//! The JavaScript example plugins (`plugins/js`, built by `plugins/build.sh`
//! into `plugins/dist/js_*.wasm`) in a real pipeline on tansu: the router
//! and the JSON-schema validator side by side on one input topic. Their
//! results message by message are the conformance suite's business; this
//! checks that a componentize-js component (SpiderMonkey inside, ~12 MB)
//! loads, runs and produces through weir like the Rust ones.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::kafka::{Setup, setup_with};
use crate::support::{WeirProcess, header, unique};

/// A missing component fails the test: it is never skipped.
fn dist(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/dist")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run `bash plugins/js/setup.sh && bash plugins/build.sh`",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

/// key → (topic it landed in, values in order) for every record read.
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

// Cold start compiles two ~12 MB components (about 25 s each on a busy machine).
const LONG: Duration = Duration::from_secs(300);
const IDLE: Duration = Duration::from_secs(3);

#[test]
fn js_router_and_validator_route_fan_out_drop_and_dead_letter_on_tansu() {
    let valid = unique("valid");
    let dead_validator = unique("dlq-validator");
    let group = unique("group");
    let schema = r#"{"type":"object","properties":{"id":{"type":"integer"},"text":{"type":"string"}},"required":["id","text"]}"#;
    let Setup {
        tansu,
        t,
        config,
        _dir,
    } = setup_with(
        1,
        2,
        &dist("js_router.wasm"),
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
         output = \"{valid}\"\ndead_letter = \"{dead_validator}\"\nplugin = \"{}\"\n\
         [pipeline.config]\nschema = {schema:?}\n",
        t.input,
        dist("js_json_schema.wasm"),
    ));
    std::fs::write(&config, text).unwrap();
    tansu.create_topics(1, &[&valid, &dead_validator]);

    let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
    tansu.produce(
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
    let eu = tansu.consume(&[&t.routes[0]], 2, LONG, Some(IDLE));
    let us = tansu.consume(&[&t.routes[1]], 1, LONG, Some(IDLE));
    let out = tansu.consume(&[&t.output], 2, LONG, Some(IDLE));
    let dead = tansu.consume(&[&t.dead], 3, LONG, Some(IDLE));
    let ok = tansu.consume(&[&valid], 3, LONG, Some(IDLE));
    let rejected = tansu.consume(&[&dead_validator], 5, LONG, Some(IDLE));
    weir.signal("TERM");
    let log = weir.log_text();
    assert!(weir.wait(LONG).success(), "{log}");

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
    assert_eq!(topics("eu"), ["eu"], "{router:#?}");
    assert_eq!(topics("us"), ["us"]);
    assert_eq!(topics("gone"), Vec::<&str>::new(), "dropped");
    assert_eq!(topics("bool-id"), ["out"], "passed on unchanged");
    assert_eq!(topics("nan"), ["dead"]);
    assert_eq!(
        topics("huge"),
        ["dead"],
        "1e400 is out of range, as in serde_json"
    );
    assert_eq!(topics("deep"), ["dead"], "refused, not a trap");
    let mut split = router["split"].clone();
    split.sort_by_key(|(_, r)| {
        header(r, "weir.split.index")
            .cloned()
            .map(|v| v.to_string())
    });
    assert_eq!(split.len(), 2, "{split:?}");
    assert_eq!(split[0].0, "eu", "the item is routed by its own region");
    assert_eq!(
        split[0].1["value"],
        json!(r#"{"n":1,"region":"eu","t":"é 日本"}"#)
    );
    assert_eq!(header(&split[0].1, "weir.split.index"), Some(&json!("0")));
    assert_eq!(header(&split[0].1, "h"), Some(&json!("v")));
    assert_eq!(
        (split[1].0.as_str(), &split[1].1["value"]),
        ("out", &json!(r#"{"b":2,"7":1.0}"#)),
        "key order and number spelling as in the source, like serde_json"
    );
    for (_, r) in router["nan"]
        .iter()
        .chain(&router["huge"])
        .chain(&router["deep"])
    {
        assert_eq!(header(r, "weir.error.kind"), Some(&json!("invalid")));
        assert_eq!(header(r, "weir.plugin"), Some(&json!("js_router.wasm")));
    }

    let keys = |rs: &[Value]| {
        let mut keys: Vec<String> = rs
            .iter()
            .map(|r| r["key"].as_str().unwrap().to_string())
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&ok), ["eu", "gone", "us"]);
    assert_eq!(keys(&rejected), ["bool-id", "deep", "huge", "nan", "split"]);
    for r in &rejected {
        assert_eq!(header(r, "weir.error.kind"), Some(&json!("invalid")), "{r}");
        assert_eq!(
            header(r, "weir.plugin"),
            Some(&json!("js_json_schema.wasm"))
        );
    }
}

/// The result lines of `weir test` without `reason` and `logs` (whose
/// wording is free).
fn results(wasm: &str, input: &str, config: &[&str]) -> Vec<Value> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cmd = std::process::Command::new(crate::support::WEIR);
    cmd.current_dir(&repo)
        .args(["test", wasm, "--format", "json", "--input", input]);
    for c in config {
        cmd.args(["--config", c]);
    }
    let out = cmd.output().expect("weir runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "weir test {wasm} {input}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).expect("a JSON result line");
            let o = v.as_object_mut().expect("a result object");
            o.remove("reason");
            o.remove("logs");
            v
        })
        .collect()
}

/// The JavaScript-specific probes of `plugins/js/tests/` (what `JSON.parse`
/// alone gets wrong: 1e400, lone surrogates, a BOM, 128 levels, repeated
/// and integer-like keys, float spelling; a 2020-12 schema with `$ref`,
/// `format`, `prefixItems`) give the Rust plugins' results line for line.
#[test]
fn js_plugins_match_rust_on_the_js_probes() {
    let routes = [
        "route_field=region",
        "route.eu=orders.eu",
        "route.us=orders.us",
        "route.__proto__=orders.proto",
        "route.constructor=orders.c",
    ];
    let order = ["schema=@quickstart/schemas/order.json"];
    let rich = ["schema=@plugins/js/tests/rich-schema.json"];
    let cases: [(&str, &str, &[&str]); 4] = [
        (
            "json_schema",
            "plugins/js/tests/probe-validator.jsonl",
            &order,
        ),
        ("json_schema", "plugins/js/tests/rich.jsonl", &rich),
        ("router", "plugins/js/tests/probe-router.jsonl", &routes),
        ("router", "plugins/js/tests/numbers.jsonl", &routes),
    ];
    for (plugin, input, config) in cases {
        let rust = results(&dist(&format!("{plugin}.wasm")), input, config);
        let js = results(&dist(&format!("js_{plugin}.wasm")), input, config);
        let lines = std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(input),
        )
        .expect("the probe file")
        .lines()
        .count();
        assert_eq!(
            rust.len(),
            lines,
            "{plugin} on {input}: one result per line"
        );
        for (i, (r, j)) in rust.iter().zip(&js).enumerate() {
            assert_eq!(j, r, "{plugin} on {input}, line {}: js vs rust", i + 1);
        }
        assert_eq!(js.len(), rust.len(), "{plugin} on {input}");
    }
}
