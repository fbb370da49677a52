//! What a plugin call and a plugin start cost, through weir's own API
//! (`weir::plugin::{Runtime, Plugin, Instance}`), without Kafka:
//!
//! - `call/<plugin>/<size>`: one `Instance::call` on a reused instance, for
//!   the no-op validator and every JSON-schema validator in `plugins/dist`
//!   (Rust, and Python, JavaScript and C when built), at 100 B, 1 KB and
//!   10 KB JSON values that the schema accepts;
//! - `call-in-pipeline/noop/1KB/{worker-thread,own-thread}`: the same call
//!   wrapped as the pipeline wraps it, in `block_in_place`, from a task on a
//!   tokio worker thread and from a future on a thread of its own, in CPU
//!   time of the whole process (the handing over happens on other threads);
//! - `start/<plugin>/{cold,cached,instance}`: load (compile without a
//!   cache, or read from the precompiled cache) then instantiate and `init`;
//!   `instance` is instantiate + `init` alone, what replacing a trapped
//!   instance costs.
//!
//! Run: `cargo bench -p weir-bench --bench plugin_call` (filter by name
//! after `--`). `WEIR_BENCH_EXTRA=label=file.wasm,…` adds other validators
//! (a language's no-op, to see what its bindings cost).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

#[path = "subjects.rs"]
mod subjects;
use subjects::{instantiate, message, subjects};
use weir::plugin::{Outcome, Plugin, Runtime};

/// Components larger than this compile too slowly for criterion's sampling:
/// their cold start is timed once.
const ONE_COLD_START_ABOVE: usize = 4 << 20;

const SIZES: &[(&str, usize)] = &[("100B", 100), ("1KB", 1_000), ("10KB", 10_000)];

fn calls(c: &mut Criterion) {
    let runtime = Runtime::new().expect("engine");
    let mut group = c.benchmark_group("call");
    for subject in subjects() {
        let plugin = runtime
            .load(&subject.path)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut instance = instantiate(&plugin, &subject);
        for &(size_label, size) in SIZES {
            let msg = message(size);
            // A benchmark of rejections would measure the wrong path.
            assert_eq!(instance.call(&msg), Outcome::Accepted, "{}", subject.label);
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_with_input(
                BenchmarkId::new(&subject.label, size_label),
                &msg,
                |b, msg| b.iter(|| instance.call(msg)),
            );
        }
    }
    group.finish();
}

fn call_in_pipeline(c: &mut Criterion) {
    let runtime = Runtime::new().expect("engine");
    let subject = &subjects()[0];
    let plugin = runtime.load(&subject.path).expect("noop loads");
    let instance = Arc::new(std::sync::Mutex::new(instantiate(&plugin, subject)));
    let msg = Arc::new(message(1_000));
    let tokio = tokio::runtime::Runtime::new().expect("tokio runtime");
    // Both measure CPU time of the process, not wall time.
    // A task on a worker thread: block_in_place hands the worker's core to
    // another thread on every call.
    c.bench_function("call-in-pipeline/noop/1KB/worker-thread", |b| {
        b.iter_custom(|iters| {
            let (instance, msg) = (Arc::clone(&instance), Arc::clone(&msg));
            tokio
                .block_on(tokio.spawn(async move {
                    let mut instance = instance.lock().expect("not poisoned");
                    let started = process_cpu();
                    for _ in 0..iters {
                        tokio::task::block_in_place(|| instance.call(&msg));
                    }
                    process_cpu() - started
                }))
                .expect("the task ran")
        })
    });
    // A future driven by `Handle::block_on` on a thread of its own:
    // block_in_place only marks the thread as outside the runtime.
    c.bench_function("call-in-pipeline/noop/1KB/own-thread", |b| {
        b.iter_custom(|iters| {
            let mut instance = instance.lock().expect("not poisoned");
            tokio.block_on(async {
                let started = process_cpu();
                for _ in 0..iters {
                    tokio::task::block_in_place(|| instance.call(&msg));
                }
                process_cpu() - started
            })
        })
    });
}

/// CPU time of the whole process (every thread): what a call costs the
/// machine, including work it wakes other threads for.
fn process_cpu() -> Duration {
    // SAFETY: clock_gettime writes the timespec it is given.
    let mut t: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn starts(c: &mut Criterion) {
    let cached = Runtime::new().expect("engine");
    let cold = Runtime::without_cache().expect("engine");
    let mut group = c.benchmark_group("start");
    group.sample_size(10);
    for subject in subjects() {
        // Fills the cache, so the `cached` case reads it.
        let plugin = load(&cached, &subject.path);
        if plugin.size <= ONE_COLD_START_ABOVE {
            group.bench_function(BenchmarkId::new(&subject.label, "cold"), |b| {
                b.iter(|| instantiate(&load(&cold, &subject.path), &subject))
            });
        } else {
            // Criterion's ten samples at least would take minutes here.
            let started = Instant::now();
            instantiate(&load(&cold, &subject.path), &subject);
            println!(
                "start/{}/cold: {:.3} s (one run: a {} byte component)",
                subject.label,
                started.elapsed().as_secs_f64(),
                plugin.size
            );
        }
        group.bench_function(BenchmarkId::new(&subject.label, "cached"), |b| {
            b.iter(|| instantiate(&load(&cached, &subject.path), &subject))
        });
        group.bench_function(BenchmarkId::new(&subject.label, "instance"), |b| {
            b.iter(|| instantiate(&plugin, &subject))
        });
    }
    group.finish();
}

fn load(runtime: &Runtime, path: &Path) -> Arc<Plugin> {
    runtime.load(path).unwrap_or_else(|e| panic!("{e}"))
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = calls, call_in_pipeline, starts
}
criterion_main!(benches);
