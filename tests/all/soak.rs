//! The soak test: every example plugin in `plugins/dist` and every project
//! `weir new` writes (each language and world under `host/templates`) runs
//! 100,000 messages through `weir test`. None may end in `memory`, `trap`
//! or `timeout`, and the instance's memory, as `weir test` reports it, may
//! not grow after the first 10,000 messages: a leak of a few hundred bytes
//! a call fails here long before it fills the 64 MiB limit in production.
//! A component that grew between 10,000 and 100,000 runs again over
//! 1,000,000 messages and must hold level from 100,000 on: a heap whose
//! collector takes its time to settle (Go's) passes, a leak does not.
//! New plugins and languages are picked up from the folders; a component
//! that is missing fails (conformance.rs names the setup), never skips.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::json;

use crate::support::{TempDir, WEIR};

const MESSAGES: usize = 100_000;
/// Memory may grow until this many messages have run, not after.
const WARM_UP: usize = 10_000;
/// The second run's length, for a component that grew after `WARM_UP`.
const LONG: usize = 1_000_000;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
}

/// The input, written once for every test: mostly orders the quickstart
/// schema accepts (`{"id": i, "text": "Hello i"}`), and among them orders
/// it rejects, values that are not JSON, fan-outs, routed and dropped
/// messages, headers and 1 KB values, so each plugin's every path runs.
/// It lives in cargo's temporary folder for tests, renamed into place
/// whole, as the same bytes every time.
fn input() -> &'static Path {
    static INPUT: OnceLock<PathBuf> = OnceLock::new();
    INPUT.get_or_init(|| write_input("soak.jsonl", MESSAGES))
}

/// The input of the second run: the same lines, `LONG / MESSAGES` times.
fn long_input() -> &'static Path {
    static INPUT: OnceLock<PathBuf> = OnceLock::new();
    INPUT.get_or_init(|| write_input("soak-long.jsonl", LONG))
}

fn write_input(name: &str, messages: usize) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(name);
    let text: String = (0..messages).map(|i| input_line(i % MESSAGES)).collect();
    let partial = dir.join(format!("{name}.{}", std::process::id()));
    std::fs::write(&partial, text).expect("write the soak input");
    std::fs::rename(&partial, &path).expect("move the soak input into place");
    path
}

/// Input line `i`, with its newline.
fn input_line(i: usize) -> String {
    let value = match i % 100 {
        7 => json!({"id": format!("{i}"), "text": "wrong id type"}),
        13 => json!(format!("not json {i}")),
        21 => json!({"id": i, "items": [{"region": "eu", "n": 1}, {"n": i}]}),
        34 => json!({"id": i, "text": "routed", "region": "us"}),
        55 => json!({"drop": true}),
        89 => json!({"id": i, "text": "x".repeat(1000)}),
        _ => json!({"id": i, "text": format!("Hello {i}")}),
    };
    // A JSON string stays the value's text; anything else is its JSON.
    let value = match value {
        serde_json::Value::String(text) => text,
        other => other.to_string(),
    };
    let line = if i % 100 == 42 {
        json!({"key": format!("k{i}"), "value": value, "headers": {"trace": "t"}})
    } else {
        json!({ "value": value })
    };
    format!("{line}\n")
}

/// Runs `wasm` over the input; a description of each way it failed the soak.
fn soak(label: &str, wasm: &Path, config: &[String], dir: &Path) -> Vec<String> {
    let mut first = run(label, wasm, config, dir, input(), MESSAGES);
    let mut problems = std::mem::take(&mut first.problems);
    let known = KNOWN_LEAKS
        .iter()
        .find(|(prefix, _)| label.starts_with(prefix));
    if let Some((_, why)) = known {
        eprintln!(
            "{label}: a known leak ({why}); weir replaced the instance {} time(s)",
            replacements(&first.stderr).unwrap_or(0)
        );
        return problems;
    }
    problems.extend(recycled(label, &first));
    let (warm, end) = match memory_between(&first.stderr, WARM_UP, MESSAGES) {
        Ok(kib) => kib,
        Err(e) => {
            problems.push(format!("{label}: {e}"));
            return problems;
        }
    };
    if end <= warm {
        eprintln!(
            "{label}: instance memory {warm} KiB after {WARM_UP} messages, {end} KiB after {MESSAGES}"
        );
        return problems;
    }
    // Grown after the warm-up: a leak goes on growing at its rate, a heap
    // whose collector was still settling its goal holds level.
    let long = run(label, wasm, config, dir, long_input(), LONG);
    problems.extend(recycled(label, &long));
    problems.extend(long.problems);
    match memory_between(&long.stderr, MESSAGES, LONG) {
        Ok((settled, last)) if last > settled => problems.push(format!(
            "{label}: instance memory grew after warm-up: {warm} KiB after {WARM_UP} messages, \
             {settled} KiB after {MESSAGES}, {last} KiB after {LONG}"
        )),
        Ok((settled, last)) => eprintln!(
            "{label}: instance memory {warm} KiB after {WARM_UP} messages, {settled} KiB after \
             {MESSAGES}, {last} KiB after {LONG}: level from {MESSAGES} on"
        ),
        Err(e) => problems.push(format!("{label}: {e}")),
    }
    problems
}

/// One `weir test` over `input`.
struct Run {
    /// Each way it failed: its exit, its count of results, aborted calls.
    problems: Vec<String>,
    aborts: usize,
    stderr: String,
}

fn run(
    label: &str,
    wasm: &Path,
    config: &[String],
    dir: &Path,
    input: &Path,
    messages: usize,
) -> Run {
    let mut args = vec![
        "test".to_string(),
        wasm.display().to_string(),
        "--format".into(),
        "json".into(),
        "--input".into(),
        input.display().to_string(),
        // The test measures leaks, not speed: a call that waited for a
        // core on a loaded machine is no failure.
        "--timeout".into(),
        "10s".into(),
    ];
    for c in config {
        args.push("--config".into());
        args.push(c.clone());
    }
    let out = match Command::new(WEIR).args(&args).current_dir(dir).output() {
        Ok(out) => out,
        Err(e) => {
            return Run {
                problems: vec![format!("{label}: cannot run {WEIR}: {e}")],
                aborts: 0,
                stderr: String::new(),
            };
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut problems = Vec::new();
    if !out.status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        problems.push(format!(
            "{label}: weir test exited {}: {tail:?}",
            out.status
        ));
    }
    let mut results = 0;
    let mut aborted = Vec::new();
    let mut aborts = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        results += 1;
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        let kind = v["result"].as_str().unwrap_or("?");
        if matches!(kind, "memory" | "trap" | "timeout" | "?") {
            aborts += 1;
            if aborted.len() < 3 {
                aborted.push(format!("line {}: {kind}: {}", v["line"], v["reason"]));
            }
        }
    }
    if results != messages {
        problems.push(format!(
            "{label}: {results} results for {messages} messages"
        ));
    }
    if !aborted.is_empty() {
        problems.push(format!(
            "{label}: {aborts} aborted calls, first: {aborted:?}"
        ));
    }
    Run {
        problems,
        aborts,
        stderr,
    }
}

/// A run without aborted calls in which weir replaced the instance: each
/// replacement was weir recycling it on its way to the memory limit.
fn recycled(label: &str, run: &Run) -> Option<String> {
    let n = replacements(&run.stderr)?;
    (run.aborts == 0).then(|| {
        format!("{label}: the instance leaked: weir replaced it {n} time(s) on its way to the memory limit")
    })
}

/// The instance's memory after `from` and after `to` messages, in KiB.
fn memory_between(stderr: &str, from: usize, to: usize) -> Result<(u64, u64), String> {
    let points = memory(stderr)
        .ok_or_else(|| format!("weir test reported no instance memory:\n{stderr}"))?;
    let at = |n: usize| points.iter().find(|&&(m, _)| m == n).map(|&(_, kib)| kib);
    match (at(from), at(to)) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(format!(
            "no memory after {from} and {to} messages in {points:?}"
        )),
    }
}

/// Components whose instance grows with every call for reasons outside
/// weir, by label prefix, with what was found. weir recycles them before
/// the memory limit (no message fails, which is still asserted); growth is
/// not asserted for them, and the issue tracking each stays open.
const KNOWN_LEAKS: &[(&str, &str)] = &[
    (
        "js_",
        "componentize-js 0.23 (SpiderMonkey): a no-op validator's instance grows by about 600 B plus the message's bytes a call, which the engine collects only tens of MiB later, if at all (under a 512 MiB limit: level at 68 MiB from 10,000 to 20,000 10 KB messages; still growing at 75 MiB after 100,000 of 100 B); weir recycles it half-way to the 64 MiB limit first",
    ),
    ("weir new js", "as the JavaScript examples"),
    (
        "python_router",
        "componentize-py 0.25.1 does not free the bytes of the outputs a transform returns: about 50 B a 36-byte output, 390 B a 360-byte one, and 27 B a call that returns none; gc.collect() changes nothing",
    ),
    (
        "weir new python --world transformer",
        "as the Python router: 12.3 MiB after 10,000 messages, 19.9 MiB after 100,000",
    ),
];

/// How many times `weir test` says it replaced the instance.
fn replacements(stderr: &str) -> Option<u64> {
    let (_, rest) = stderr.split_once("(the instance was replaced ")?;
    rest.split(' ').next()?.parse().ok()
}

/// `instance memory: 1216 KiB after 1 message, 1280 KiB after 10, …` as
/// (messages, KiB) pairs.
fn memory(stderr: &str) -> Option<Vec<(usize, u64)>> {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("instance memory: "))?;
    let line = line.split(" (").next().unwrap_or(line);
    line.split(", ")
        .map(|part| {
            let (kib, after) = part.split_once(" KiB after ")?;
            let n = after.trim_end_matches(" message");
            Some((n.parse().ok()?, kib.parse().ok()?))
        })
        .collect()
}

/// The config an example plugin takes, by its name.
fn example_config(name: &str) -> Vec<String> {
    if name.contains("json_schema") {
        vec!["schema=@quickstart/schemas/order.json".into()]
    } else if name.contains("router") {
        [
            "route_field=region",
            "route.eu=orders.eu",
            "route.us=orders.us",
        ]
        .map(String::from)
        .to_vec()
    } else {
        Vec::new()
    }
}

#[test]
fn every_example_plugin_runs_100k_messages_without_aborts_or_growth() {
    let mut examples: Vec<PathBuf> = std::fs::read_dir(repo().join("plugins/dist"))
        .expect("plugins/dist exists: run `bash plugins/build.sh`")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    examples.sort();
    // Every language the conformance suite knows has its examples built.
    for language in ["rust", "python", "js", "c", "go"] {
        for plugin in ["json_schema", "router"] {
            if let Err(e) = crate::conformance::component(language, plugin) {
                panic!("{e}");
            }
        }
    }
    // One at a time: on a loaded machine, parallel runs would starve each
    // other past the 100 ms call deadline.
    let mut problems = Vec::new();
    for wasm in &examples {
        let name = wasm.file_stem().unwrap_or_default().to_string_lossy();
        problems.extend(soak(&name, wasm, &example_config(&name), repo()));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Where generated Rust projects build: shared with scaffold.rs.
fn rust_target_dir() -> PathBuf {
    match std::env::var_os("WEIR_GUEST_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("scaffold"),
        None => repo().join("target/scaffold"),
    }
}

/// Every (language, world) that `weir new` has a template for.
fn templates() -> Vec<(String, String)> {
    let mut found = Vec::new();
    let names = |dir: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "common")
            .collect();
        v.sort();
        v
    };
    let root = repo().join("host/templates");
    for language in names(&root) {
        for world in names(&root.join(&language)) {
            found.push((language.clone(), world));
        }
    }
    found
}

#[test]
fn every_weir_new_project_runs_100k_messages_without_aborts_or_growth() {
    let templates = templates();
    assert!(templates.len() >= 8, "templates found: {templates:?}");
    let tmp = TempDir::new();
    let mut problems = Vec::new();
    for (language, world) in &templates {
        problems.extend(soak_new_project(&tmp, language, world));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `weir new`, `build.sh`, then the soak.
fn soak_new_project(tmp: &TempDir, language: &str, world: &str) -> Vec<String> {
    let label = format!("weir new {language} --world {world}");
    let name = format!("soak-{language}-{world}");
    let dir = tmp.0.join(&name);
    let new = Command::new(WEIR)
        .args(["new", language, &name, "--world", world, "--dir"])
        .arg(&dir)
        .output()
        .expect("run weir new");
    if !new.status.success() {
        return vec![format!("{label}: {}", String::from_utf8_lossy(&new.stderr))];
    }
    let build = Command::new(dir.join("build.sh"))
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", rust_target_dir())
        .output()
        .expect("run build.sh");
    if !build.status.success() {
        return vec![format!(
            "{label}: build.sh failed (`bash plugins/{language}/setup.sh`?): {}",
            String::from_utf8_lossy(&build.stderr)
        )];
    }
    let wasm = dir.join(format!("{}.wasm", name.replace('-', "_")));
    soak(&label, &wasm, &[], &dir)
}
