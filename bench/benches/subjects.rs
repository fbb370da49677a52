//! The plugins both plugin benchmarks measure, and their input: shared by
//! `plugin_call.rs` and `lanes.rs` (each includes this file as a module).

// Each bench uses what it needs.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use weir::config::Limits;
use weir::plugin::{Instance, LogTags, Message, Plugin};

/// A plugin to measure: its label, file and init config.
pub struct Subject {
    pub label: String,
    pub path: PathBuf,
    pub config: Vec<(String, String)>,
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("WEIR_BENCH_ROOT"))
}

/// The no-op validator, then each JSON-schema validator that is built.
pub fn subjects() -> Vec<Subject> {
    let schema = std::fs::read_to_string(root().join("quickstart/schemas/order.json"))
        .expect("quickstart/schemas/order.json is readable");
    let mut subjects = vec![Subject {
        label: "noop".into(),
        path: PathBuf::from(env!("WEIR_BENCH_NOOP")),
        config: Vec::new(),
    }];
    for (label, file) in [
        ("json-schema-rust", "json_schema.wasm"),
        ("json-schema-c", "c_json_schema.wasm"),
        ("json-schema-js", "js_json_schema.wasm"),
        ("json-schema-python", "python_json_schema.wasm"),
        ("json-schema-go", "go_json_schema.wasm"),
    ] {
        let path = root().join("plugins/dist").join(file);
        if path.is_file() {
            subjects.push(Subject {
                label: label.into(),
                path,
                config: vec![("schema".into(), schema.clone())],
            });
        } else {
            eprintln!("skipping {label}: {} is not built", path.display());
        }
    }
    // Any other component, to measure beside these: `label=path,…` (each
    // given the same `schema` config).
    let extras = std::env::var("WEIR_BENCH_EXTRA").unwrap_or_default();
    for extra in extras.split(',').filter(|e| !e.is_empty()) {
        let Some((label, path)) = extra.split_once('=') else {
            panic!("WEIR_BENCH_EXTRA: {extra:?} is not label=file.wasm");
        };
        subjects.push(Subject {
            label: label.into(),
            path: PathBuf::from(path),
            config: vec![("schema".into(), schema.clone())],
        });
    }
    subjects
}

/// A JSON value of exactly `size` bytes that the order schema accepts.
pub fn order_value(id: u64, size: usize) -> Vec<u8> {
    let head = format!("{{\"id\":{id},\"text\":\"");
    let pad = size.saturating_sub(head.len() + 2);
    let mut value = head.into_bytes();
    value.extend(std::iter::repeat_n(b'x', pad));
    value.extend_from_slice(b"\"}");
    value
}

pub fn message(size: usize) -> Message {
    Message {
        topic: "orders.raw".into(),
        partition: 0,
        offset: 42,
        timestamp: Some(1_700_000_000_000),
        key: Some(b"42".to_vec()),
        value: Some(order_value(42, size)),
        headers: Vec::new(),
    }
}

pub fn instantiate(plugin: &Arc<Plugin>, subject: &Subject) -> Instance {
    plugin
        .instantiate(&subject.config, &Limits::default(), LogTags::default())
        .unwrap_or_else(|e| panic!("{}: {e}", subject.label))
}
