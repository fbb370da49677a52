//! The conformance suite (`tests/conformance/`) against every language's
//! example plugins: each must pass `weir test --expect`, and the
//! languages' full result lines (all but `reason` and `logs`, whose wording
//! is free) must be identical to each other. A language whose component is
//! missing fails; it is never skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::WEIR;

const LANGUAGES: [&str; 5] = ["rust", "python", "js", "c", "go"];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
}

/// `plugins/dist/<language>_<plugin>.wasm` (Rust's have no prefix).
pub(crate) fn component(language: &str, plugin: &str) -> Result<PathBuf, String> {
    let name = if language == "rust" {
        format!("{plugin}.wasm")
    } else {
        format!("{language}_{plugin}.wasm")
    };
    let path = repo().join("plugins/dist").join(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{language}: {} is missing: run `bash plugins/{language}/setup.sh` (or `bash tests/setup.sh`) and `bash plugins/build.sh`",
            path.display()
        ))
    }
}

/// Runs `weir test --expect` on one suite; the result lines without
/// `reason` and `logs`, or what went wrong.
fn run_suite(
    language: &str,
    plugin: &str,
    suite: &str,
    config: &[String],
) -> Result<Vec<Value>, String> {
    let wasm = component(language, plugin)?;
    let dir = repo().join("tests/conformance");
    let mut args: Vec<String> = vec![
        "test".into(),
        wasm.display().to_string(),
        "--format".into(),
        "json".into(),
        "--input".into(),
        dir.join(format!("{suite}.jsonl")).display().to_string(),
        "--expect".into(),
        dir.join(format!("{suite}.expected.jsonl"))
            .display()
            .to_string(),
    ];
    for c in config {
        args.push("--config".into());
        args.push(c.clone());
    }
    let out = Command::new(WEIR)
        .args(&args)
        .current_dir(repo())
        .output()
        .map_err(|e| format!("{language}: cannot run {WEIR}: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "{language} {plugin}: weir test --expect failed ({}):\n{stderr}",
            out.status
        ));
    }
    let summary = stderr.lines().last().unwrap_or_default();
    if !summary.ends_with("passed, 0 failed") {
        return Err(format!("{language} {plugin}: summary {summary:?}"));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l)
                .map_err(|e| format!("{language} {plugin}: result line not JSON: {e}: {l}"))?;
            if let Some(o) = v.as_object_mut() {
                o.remove("reason");
                o.remove("logs");
            }
            Ok(v)
        })
        .collect()
}

/// Every language passes the suite and gives Rust's result lines.
fn conform(plugin: &str, suite: &str, config: &[String]) {
    let mut problems = Vec::new();
    let mut reference: Option<Vec<Value>> = None;
    for language in LANGUAGES {
        let lines = match run_suite(language, plugin, suite, config) {
            Ok(lines) => lines,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        match &reference {
            None => reference = Some(lines),
            Some(rust) => {
                if lines.len() != rust.len() {
                    problems.push(format!(
                        "{language} {plugin}: {} result lines, rust {}",
                        lines.len(),
                        rust.len()
                    ));
                }
                for (i, (mine, theirs)) in lines.iter().zip(rust).enumerate() {
                    if mine != theirs {
                        problems.push(format!(
                            "{language} {plugin}: result {} differs from rust's:\n  {language}: {}\n  rust: {}",
                            i + 1,
                            cut(&mine.to_string()),
                            cut(&theirs.to_string())
                        ));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn cut(s: &str) -> String {
    s.chars().take(400).collect()
}

#[test]
fn conformance_json_schema_validators_agree_in_every_language() {
    let schema = repo().join("quickstart/schemas/order.json");
    conform(
        "json_schema",
        "validator",
        &[format!("schema=@{}", schema.display())],
    );
}

#[test]
fn conformance_routers_agree_in_every_language() {
    conform(
        "router",
        "router",
        &[
            "route_field=region".into(),
            "route.eu=orders.eu".into(),
            "route.us=orders.us".into(),
        ],
    );
}

/// The suite itself: one expected line per input line, and the cases it
/// promises are there (a case dropped by an edit would go unnoticed).
#[test]
fn conformance_suite_covers_its_cases() {
    let dir = repo().join("tests/conformance");
    for suite in ["validator", "router"] {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .lines()
                .map(|l| {
                    serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}"))
                })
                .collect::<Vec<_>>()
        };
        let inputs = read(&format!("{suite}.jsonl"));
        let expected = read(&format!("{suite}.expected.jsonl"));
        assert_eq!(inputs.len(), expected.len(), "{suite}");
        for e in &expected {
            assert!(e.get("reason").is_none() && e.get("logs").is_none(), "{e}");
        }
        let keys: Vec<String> = inputs.iter().map(|l| l["key"].to_string()).collect();
        let wanted: &[&str] = if suite == "validator" {
            &[
                "missing-id",
                "missing-text",
                "id-a-string",
                "id-a-float-with-fraction",
                "id-a-bool",
                "id-null",
                "text-a-number",
                "value-an-array",
                "value-a-json-string",
                "value-a-number",
                "not-json",
                "not-utf8",
                "empty-value",
                "null-value",
                "headers",
                "large-valid",
                "valid-unicode",
                "valid-extra-fields",
            ]
        } else {
            &[
                "drop",
                "fan-out-objects-routed-per-item",
                "fan-out-scalars",
                "fan-out-nested-key-order-kept",
                "route-eu",
                "route-us",
                "route-unknown",
                "route-missing",
                "route-not-a-string-number",
                "items-a-string",
                "large-pass-through",
            ]
        };
        for w in wanted {
            assert!(keys.contains(&format!("{w:?}")), "{suite}: no case {w}");
        }
        assert!(keys.contains(&"null".to_string()), "{suite}: no null key");
        assert!(
            keys.iter().any(|k| k.contains("$base64")),
            "{suite}: no binary key"
        );
        let large = inputs
            .iter()
            .map(|l| l["value"].to_string().len())
            .max()
            .unwrap_or(0);
        assert!(large > 300_000, "{suite}: largest value {large} bytes");
    }
}

/// `weir check` and the start-up log say what each example was made with:
/// every language's components carry a producers section naming it.
#[test]
fn every_language_s_components_name_their_toolchain() {
    use weir::plugin::producers::Producers;
    let expected: [(&str, &str, &str); 4] = [
        ("rust", "Rust", "rustc "),
        ("python", "Python", "componentize-py "),
        ("js", "JavaScript", "ComponentizeJS "),
        ("c", "C11", "wit-bindgen-c "),
    ];
    let mut problems = Vec::new();
    for (language, named, tool) in expected {
        for plugin in ["json_schema", "router"] {
            let path = match component(language, plugin) {
                Ok(p) => p,
                Err(e) => {
                    problems.push(e);
                    continue;
                }
            };
            let p = Producers::read(&std::fs::read(&path).unwrap());
            let tools: Vec<&String> = p.get("processed-by").iter().chain(p.get("sdk")).collect();
            if !p.get("language").iter().any(|l| l == named)
                || !tools.iter().any(|t| t.starts_with(tool))
            {
                problems.push(format!(
                    "{}: expected language {named} and a {tool:?}: {p}",
                    path.display()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
