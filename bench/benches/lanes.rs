//! Lane scaling without a broker: calls per second with N instances of a
//! plugin on N threads (what `lanes = N` runs), for N = 1, 2 and 4, as a
//! ratio to one lane measured in the same run. Rounds alternate the lane
//! counts and the medians are reported, with the process's CPU time per
//! call beside them, since the machine is shared and noisy.
//!
//! Run: `cargo bench -p weir-bench --bench lanes` (optional arguments: the
//! seconds per measurement, default 1.5, and the rounds, default 3).

#[path = "subjects.rs"]
mod subjects;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use weir::plugin::Runtime;

use subjects::{instantiate, message, subjects};

const LANES: &[usize] = &[1, 2, 4];

/// The process's user + system CPU time.
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// (calls per second, CPU µs per call) with `lanes` instances on as many threads.
fn measure(
    plugin: &Arc<weir::plugin::Plugin>,
    subject: &subjects::Subject,
    lanes: usize,
    run: Duration,
) -> (f64, f64) {
    let mut instances: Vec<_> = (0..lanes).map(|_| instantiate(plugin, subject)).collect();
    let msg = message(1_000);
    for i in &mut instances {
        // Warm-up: the first calls grow the instance.
        for _ in 0..20 {
            i.call(&msg);
        }
    }
    let calls = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let cpu = cpu_time();
    let started = Instant::now();
    std::thread::scope(|s| {
        for mut instance in instances {
            let (calls, stop, msg) = (&calls, &stop, &msg);
            s.spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    std::hint::black_box(instance.call(msg));
                    n += 1;
                }
                calls.fetch_add(n, Ordering::Relaxed);
            });
        }
        std::thread::sleep(run);
        stop.store(true, Ordering::Relaxed);
    });
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = (cpu_time() - cpu).as_secs_f64();
    let calls = calls.load(Ordering::Relaxed) as f64;
    (calls / elapsed, cpu * 1e6 / calls.max(1.0))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let seconds: f64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(1.5);
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let run = Duration::from_secs_f64(seconds);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "lane scaling, 1 KB valid orders, {cores} cores, {rounds} rounds of {seconds} s, medians"
    );
    println!(
        "{:<20} {:>5} {:>12} {:>8} {:>12}",
        "plugin", "lanes", "calls/s", "vs 1", "CPU µs/call"
    );
    let runtime = Runtime::new().expect("engine");
    for subject in subjects() {
        let plugin = runtime
            .load(&subject.path)
            .unwrap_or_else(|e| panic!("{}: {e}", subject.label));
        let mut rates = vec![Vec::new(); LANES.len()];
        let mut cpus = vec![Vec::new(); LANES.len()];
        for _ in 0..rounds {
            for (i, &lanes) in LANES.iter().enumerate() {
                let (rate, cpu) = measure(&plugin, &subject, lanes, run);
                rates[i].push(rate);
                cpus[i].push(cpu);
            }
        }
        let one = median(rates[0].clone());
        for (i, &lanes) in LANES.iter().enumerate() {
            let rate = median(rates[i].clone());
            println!(
                "{:<20} {:>5} {:>12.0} {:>7.2}x {:>12.1}",
                subject.label,
                lanes,
                rate,
                rate / one,
                median(cpus[i].clone())
            );
        }
    }
}
