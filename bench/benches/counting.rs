//! What counting one message for `/metrics` costs on the message path,
//! through weir's own API (`weir::ops::metrics`), without Kafka or a plugin:
//!
//! - `count/accepted`: what the delivery loop counts for a message the
//!   plugin accepts: `consumed`, `call`, `produced` to the output topic;
//! - `count/routed`: the same, produced to the second of two routes;
//! - `count/dead-lettered`: `consumed`, `call`, `dead_lettered("invalid")`;
//! - `render/<n>-pipelines`: one scrape of `/metrics` (not on the message
//!   path; for scale).
//!
//! Run: `cargo bench -p weir-bench --bench counting` (filter by name after
//! `--`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir::config::{Config, Pipeline};
use weir::ops::metrics;

/// Pipelines named `bench-<i>`, each writing to its output and two routes.
fn pipelines(n: usize) -> Vec<Pipeline> {
    let dir = std::env::temp_dir().join(format!("weir-bench-counting-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    std::fs::write(dir.join("p.wasm"), b"").expect("a plugin file to name");
    let mut text = String::from("[kafka]\nbrokers = \"127.0.0.1:9092\"\n");
    for i in 0..n {
        text.push_str(&format!(
            "[[pipeline]]\nname = \"bench-{i}\"\ninput = \"in-{i}\"\noutput = \"out-{i}\"\n\
             dead_letter = \"dead-{i}\"\nroutes = [\"eu-{i}\", \"us-{i}\"]\nplugin = \"p.wasm\"\n"
        ));
    }
    let config = Config::parse(&dir.join("weir.toml"), &text, &|_| None).expect("a valid config");
    config.pipelines
}

fn count(c: &mut Criterion) {
    let specs = pipelines(1);
    let spec = &specs[0];
    let handle = metrics::registry().start(spec);
    let took = Duration::from_micros(42);
    let mut group = c.benchmark_group("count");
    group.throughput(Throughput::Elements(1));
    group.bench_function("accepted", |b| {
        b.iter(|| {
            handle.consumed();
            handle.call(black_box(took));
            handle.produced(black_box(&spec.output));
        })
    });
    group.bench_function("routed", |b| {
        b.iter(|| {
            handle.consumed();
            handle.call(black_box(took));
            handle.produced(black_box(&spec.routes[1]));
        })
    });
    group.bench_function("dead-lettered", |b| {
        b.iter(|| {
            handle.consumed();
            handle.call(black_box(took));
            handle.dead_lettered(black_box("invalid"));
        })
    });
    group.finish();
}

fn render(c: &mut Criterion) {
    let specs = pipelines(10);
    let _handles: Vec<_> = specs.iter().map(|s| metrics::registry().start(s)).collect();
    c.bench_function("render/10-pipelines", |b| {
        b.iter(|| black_box(metrics::registry().render()))
    });
}

criterion_group!(benches, count, render);
criterion_main!(benches);
