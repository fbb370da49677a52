//! weir's end-to-end benchmark: Kafka → contender → Kafka on one Apache
//! Kafka node on 127.0.0.1 (the tests' broker, `tests/all/broker.rs`, with
//! the benchmark JVM), printing throughput, added latency, CPU and peak
//! memory of each contender and their ratios to a plain rdkafka program
//! written for speed (`passthrough-fast`) measured in the same run.
//! `bash bench/run.sh` installs what it needs and runs it.
//!
//! How one measurement goes: the input of each partition count and size is
//! produced once; then, round after round, every contender runs on it (each
//! round starts one contender later in the list, so none always runs first
//! or after the same one), as a child process with a fresh group and its
//! own output topic, and a reader counts its output records (never
//! watermarks). Throughput is timed from the first output record to the
//! last; then probes (records whose key carries the time they were
//! produced) are sent at a low rate and their end-to-end latency, minus the
//! direct produce → read latency of the same broker taken at the start of
//! the round, is the added latency. Finally the child's peak RSS is read,
//! SIGTERM, and `wait4` gives its CPU time. The tables give each figure's
//! median over the rounds, and ratios taken round by round. The broker's own
//! CPU and peak memory over the run close the report.
//!
//! `weir-bench fast-passthrough …` and `weir-bench passthrough …` are the
//! two passthrough contenders themselves (the benchmark runs them as
//! children like the others).

/// The tests' Kafka harness, shared so both run the same broker; the
/// benchmark uses only its start, pid and drop.
#[allow(dead_code)]
#[path = "../../tests/all/broker.rs"]
mod broker;
mod child;
mod cluster;
mod fast_passthrough;
mod passthrough;
mod reader;
mod report;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};

use child::Contender;
use cluster::{Cluster, now_micros, order_value};
use reader::Reader;
use report::{BASELINE, Row, quantile, size_label};

/// weir's end-to-end benchmark against Apache Kafka on 127.0.0.1.
#[derive(Parser)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Sub {
    /// The fast passthrough contender (the baseline): consume `input`,
    /// produce to `output` as a speed-minded rdkafka user would.
    FastPassthrough {
        #[arg(long)]
        bootstrap: String,
        #[arg(long)]
        input: String,
        #[arg(long)]
        output: String,
        #[arg(long)]
        group: String,
        #[arg(long, default_value_t = 10_000)]
        max_in_flight: usize,
        /// Key and value bytes awaiting acknowledgement at most.
        #[arg(long, default_value_t = 64 << 20)]
        max_in_flight_bytes: usize,
    },
    /// The weir-shaped passthrough contender: consume `input`, produce to `output`.
    Passthrough {
        #[arg(long)]
        bootstrap: String,
        #[arg(long)]
        input: String,
        #[arg(long)]
        output: String,
        #[arg(long)]
        group: String,
        #[arg(long, default_value_t = 1000)]
        max_in_flight: usize,
    },
}

#[derive(Args)]
struct Bench {
    /// A smoke run: small inputs, short phases (numbers not worth quoting).
    #[arg(long)]
    quick: bool,
    /// The weir binary (default: `weir` beside this one).
    #[arg(long)]
    weir: Option<PathBuf>,
    /// The Python with aiokafka and pydantic, for the origin's design.
    #[arg(long, env = "WEIR_PYTHON")]
    python: Option<PathBuf>,
    /// Run only the contenders whose name contains one of these (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Rounds: every contender runs once per round on each input, in an
    /// order that moves by one each round; the tables give medians
    /// (default 3, 2 with --quick).
    #[arg(long)]
    rounds: Option<usize>,
    /// `lanes` values for the contenders that scale with lanes
    /// (comma-separated). The default, 1, runs them as they are; other
    /// values add a row `<name>-lanes<N>` with `lanes = N` in its pipeline
    /// table, each when `weir check` accepts that key.
    #[arg(long, env = "WEIR_BENCH_LANES", value_delimiter = ',', default_values_t = [1])]
    lanes: Vec<usize>,
    /// The Kafka Streams contender's jar (bench/streams, built by bench/run.sh).
    #[arg(long)]
    streams_jar: Option<PathBuf>,
    /// Partition counts of the input (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4])]
    partitions: Vec<i32>,
    /// Message sizes in bytes (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [100, 1_000, 10_000])]
    sizes: Vec<usize>,
    /// Skip the scaling runs (partitions, pipelines, start-up).
    #[arg(long)]
    no_scaling: bool,
    /// Skip the main table (with --scaling runs only those).
    #[arg(long)]
    no_table: bool,
    /// Also write the results as Markdown to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let tokio = match tokio::runtime::Runtime::new() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Some(Sub::FastPassthrough {
            bootstrap,
            input,
            output,
            group,
            max_in_flight,
            max_in_flight_bytes,
        }) => fast_passthrough::run(fast_passthrough::Args {
            bootstrap,
            input,
            output,
            group,
            max_in_flight,
            max_in_flight_bytes,
        }),
        Some(Sub::Passthrough {
            bootstrap,
            input,
            output,
            group,
            max_in_flight,
        }) => tokio.block_on(passthrough::run(passthrough::Args {
            bootstrap,
            input,
            output,
            group,
            max_in_flight,
        })),
        None => tokio.block_on(cli.bench.run()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The repository, as this binary was built from it.
fn root() -> PathBuf {
    PathBuf::from(env!("WEIR_BENCH_ROOT"))
}

const MIB: f64 = (1 << 20) as f64;

/// How much of everything one run does.
#[derive(Debug, Clone, Copy)]
struct Scale {
    /// Input records for a message size: enough for the passthrough to run
    /// two seconds or more, so that start-up and the first fetch are a
    /// small part of the phase.
    records: fn(usize) -> u64,
    /// Records the slow contenders (the Python design, interpreted plugins)
    /// get instead: their own, shorter input.
    slow_records: fn(usize) -> u64,
    /// The longest a throughput phase may run before it is cut (and its
    /// latency is not measured, as probes would queue behind the rest).
    phase_limit: Duration,
    probes: usize,
    probe_every: Duration,
}

const FULL: Scale = Scale {
    records: |size| match size {
        0..=200 => 600_000,
        201..=2_000 => 400_000,
        _ => 60_000,
    },
    slow_records: |size| match size {
        ..=2_000 => 10_000,
        _ => 4_000,
    },
    phase_limit: Duration::from_secs(30),
    probes: 400,
    probe_every: Duration::from_millis(5),
};

const QUICK: Scale = Scale {
    records: |size| match size {
        0..=200 => 20_000,
        201..=2_000 => 10_000,
        _ => 2_000,
    },
    slow_records: |_| 1_000,
    phase_limit: Duration::from_secs(5),
    probes: 60,
    probe_every: Duration::from_millis(10),
};

/// How a contender is started.
#[derive(Debug, Clone)]
enum Kind {
    /// `weir-bench fast-passthrough`, the baseline.
    FastPassthrough,
    /// `weir-bench passthrough`: weir's shape and window of 1,000.
    Passthrough,
    Weir {
        plugin: PathBuf,
        /// The plugin's `[pipeline.config]`.
        config: Vec<(String, String)>,
        /// Keys of the `[[pipeline]]` table, values as TOML (`"exactly-once"`, `2`).
        pipeline: Vec<(String, String)>,
    },
    Origin,
    /// The Kafka Streams application (`bench/streams`) with this
    /// `processing.guarantee`.
    Streams {
        jar: PathBuf,
        guarantee: &'static str,
    },
}

#[derive(Debug, Clone)]
struct Spec {
    name: String,
    kind: Kind,
    /// Gets the shorter input (see [`Scale::slow_records`]).
    slow: bool,
    /// Gets a row per `--lanes` value.
    lanes: bool,
}

/// Everything a contender's run needs to know.
struct Setup<'a> {
    kafka: &'a Cluster,
    weir: &'a Path,
    python: &'a Path,
    work: &'a Path,
    scale: Scale,
    /// The direct produce → read latency (p50, µs) that probes are measured against.
    direct_p50: u64,
}

impl Bench {
    async fn run(self) -> anyhow::Result<()> {
        let scale = if self.quick { QUICK } else { FULL };
        let cache = broker::cache_dir();
        let python = self
            .python
            .clone()
            .unwrap_or_else(|| cache.join("venv/bin/python"));
        let weir = match &self.weir {
            Some(w) => w.clone(),
            None => std::env::current_exe()?
                .parent()
                .context("this binary has no folder")?
                .join("weir"),
        };
        for (what, path) in [("weir", &weir), ("python", &python)] {
            if !path.is_file() {
                bail!(
                    "{what} not found at {}: run `bash bench/run.sh`, which installs and builds it",
                    path.display()
                );
            }
        }
        let work = std::env::temp_dir().join(format!("weir-bench-{}", std::process::id()));
        std::fs::create_dir_all(&work)?;
        let rounds = self.rounds.unwrap_or(if self.quick { 2 } else { 3 }).max(1);
        let streams_jar = self
            .streams_jar
            .clone()
            .unwrap_or_else(|| root().join("bench/streams/target/weir-bench-streams.jar"));
        let mut lineup = Lineup {
            streams_jar: streams_jar.is_file().then_some(streams_jar.clone()),
            lanes: Vec::new(),
        };
        if lineup.streams_jar.is_none() {
            println!(
                "(no {}: no Kafka Streams rows; bash bench/run.sh builds it)",
                streams_jar.display()
            );
        }
        if self.lanes != [1] {
            if weir_knows_lanes(&weir, &work) {
                lineup.lanes = self.lanes.clone();
            } else {
                println!(
                    "(`weir check` refuses `lanes` in a pipeline table: no rows for lanes {:?})",
                    self.lanes
                );
            }
        }
        let specs: Vec<Spec> = contenders(&lineup)
            .into_iter()
            .filter(|s| {
                self.only.is_empty() || self.only.iter().any(|o| s.name.contains(o.as_str()))
            })
            .collect();

        let started = Instant::now();
        let kafka = Cluster::start().await?;
        println!(
            "# weir end-to-end benchmark{}",
            if self.quick { " (--quick)" } else { "" }
        );
        println!("{}", machine());
        println!(
            "broker: {} (one KRaft node as docker-compose.yml configures it, the benchmark JVM) at {}, ready after {:.1} s",
            kafka.version,
            kafka.bootstrap,
            kafka.start_up().as_secs_f64()
        );
        println!("rounds: {rounds}, contenders alternating (each round starts one later)");
        println!(
            "contenders: {}",
            specs
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );

        // Taken again at the start of every round (the machine's load moves);
        // the scaling runs measure no latency.
        let mut direct_p50 = 0;
        let mut rows = Vec::new();
        if !self.no_table {
            for &partitions in &self.partitions {
                for &size in &self.sizes {
                    let full = format!("in-{partitions}p-{size}");
                    let slow = format!("slow-in-{partitions}p-{size}");
                    kafka
                        .create_topics(partitions, &[full.clone(), slow.clone()])
                        .await?;
                    let t = Instant::now();
                    kafka.fill(&full, (scale.records)(size), size).await?;
                    if specs.iter().any(|s| s.slow) {
                        kafka.fill(&slow, (scale.slow_records)(size), size).await?;
                    }
                    println!(
                        "\n## {partitions} partition(s), {}: {} records (slow contenders: {}), produced in {:.1} s",
                        size_label(size),
                        kafka.count(&full),
                        kafka.count(&slow),
                        t.elapsed().as_secs_f64()
                    );
                    for round in 0..rounds {
                        let direct = direct_latency(
                            &kafka,
                            scale,
                            &format!("direct-{partitions}p-{size}-r{round}"),
                        )
                        .await?;
                        direct_p50 = quantile(&direct, 0.5).unwrap_or(0);
                        println!(
                            "  round {}: direct produce → read latency (subtracted from its probes): p50 {:.2} ms, p99 {:.2} ms",
                            round + 1,
                            direct_p50 as f64 / 1e3,
                            quantile(&direct, 0.99).unwrap_or(0) as f64 / 1e3
                        );
                        let shift = round % specs.len().max(1);
                        for spec in specs[shift..].iter().chain(&specs[..shift]) {
                            let input = if spec.slow { &slow } else { &full };
                            let mut setup = Setup {
                                kafka: &kafka,
                                weir: &weir,
                                python: &python,
                                work: &work,
                                scale,
                                direct_p50,
                            };
                            let (row, probes_sent) =
                                match measure(&mut setup, spec, input, partitions, size, round)
                                    .await
                                {
                                    Ok(r) => r,
                                    Err(e) => (
                                        Row {
                                            contender: spec.name.clone(),
                                            partitions,
                                            size,
                                            round,
                                            note: Some(format!("failed: {e:#}").replace('\n', " ")),
                                            ..Row::default()
                                        },
                                        0,
                                    ),
                                };
                            kafka.add_count(input, probes_sent);
                            let row = Row { round, ..row };
                            println!(
                                "  round {}  {:<26} {:>8.0} msg/s  added p50 {} ms  CPU {:.1} s  peak {:.0} MiB  {}",
                                round + 1,
                                row.contender,
                                row.msgs_per_sec(),
                                row.added_p50_ms.map_or("-".into(), |v| format!("{v:.1}")),
                                row.cpu,
                                row.peak_rss as f64 / (1 << 20) as f64,
                                row.note.as_deref().unwrap_or("")
                            );
                            rows.push(row);
                        }
                    }
                }
            }
            println!(
                "\n## Results\n\n{}\n{}",
                report::LEGEND,
                report::text_table(&report::summarize(&rows))
            );
        }

        let mut scaling = String::new();
        if !self.no_scaling {
            let setup = Setup {
                kafka: &kafka,
                weir: &weir,
                python: &python,
                work: &work,
                scale,
                direct_p50,
            };
            scaling = scaling_runs(setup).await?;
            println!("\n## Scaling\n\n{scaling}");
        }
        let (broker_cpu, broker_peak) = kafka.usage();
        let broker_line = format!(
            "broker over the whole run: CPU {} s, peak RSS {} MiB",
            broker_cpu.map_or("-".into(), |c| format!("{c:.1}")),
            broker_peak.map_or("-".into(), |b| format!("{:.0}", b as f64 / MIB))
        );
        println!("\n{broker_line}");
        println!("total time: {:.0} s", started.elapsed().as_secs_f64());

        if let Some(path) = &self.markdown {
            let mut md = format!("{}\n\n", machine());
            if !rows.is_empty() {
                md.push_str(&format!(
                    "{}\n\n{}",
                    report::LEGEND,
                    report::markdown_table(&report::summarize(&rows))
                ));
            }
            md.push_str(&format!("\n{scaling}\n{broker_line}\n"));
            std::fs::write(path, md).with_context(|| format!("{}", path.display()))?;
        }
        let _ = std::fs::remove_dir_all(&work);
        Ok(())
    }
}

/// What decides the line-up beyond the files that exist.
#[derive(Debug, Clone, Default)]
struct Lineup {
    /// The Kafka Streams jar, when it was built.
    streams_jar: Option<PathBuf>,
    /// `lanes` values that get a row of their own (none: the plain rows only).
    lanes: Vec<usize>,
}

/// Every contender whose pieces exist, in the order of the table. To add a
/// contender, add it here; its `Kind` says how it is started.
///
/// - `passthrough-fast`, the baseline: a plain rdkafka program written for
///   speed (`src/fast_passthrough.rs`);
/// - `passthrough-1k`: the same job in weir's shape and window of 1,000
///   (`src/passthrough.rs`);
/// - weir with the no-op validator and with each JSON-schema validator built
///   in `plugins/dist`, at its defaults; the Rust one also exactly-once;
/// - the origin's design in Python;
/// - the Kafka Streams application at-least-once and `exactly_once_v2`;
/// - for each of [`Lineup::lanes`], the contenders marked `lanes` again with
///   `lanes = N` in their pipeline table.
fn contenders(lineup: &Lineup) -> Vec<Spec> {
    let schema = root().join("quickstart/schemas/order.json");
    let schema_config = vec![("schema".to_string(), format!("@{}", schema.display()))];
    let spec = |name: &str, kind: Kind, slow: bool| Spec {
        name: name.into(),
        kind,
        slow,
        lanes: false,
    };
    // The no-op plugin gets lanes rows too: what a lane costs in CPU.
    let mut noop = spec(
        "weir-noop",
        Kind::Weir {
            plugin: PathBuf::from(env!("WEIR_BENCH_NOOP")),
            config: Vec::new(),
            pipeline: Vec::new(),
        },
        false,
    );
    noop.lanes = true;
    let mut specs = vec![
        spec(BASELINE, Kind::FastPassthrough, false),
        spec("passthrough-1k", Kind::Passthrough, false),
        noop,
    ];
    // (language, file, slow, gets lanes rows)
    for (lang, file, slow, lanes) in [
        ("rust", "json_schema.wasm", false, false),
        ("c", "c_json_schema.wasm", false, false),
        ("js", "js_json_schema.wasm", true, true),
        ("python", "python_json_schema.wasm", false, true),
    ] {
        let plugin = root().join("plugins/dist").join(file);
        if plugin.is_file() {
            let kind = |pipeline: Vec<(String, String)>| Kind::Weir {
                plugin: plugin.clone(),
                config: schema_config.clone(),
                pipeline,
            };
            let mut json = spec(&format!("weir-json-{lang}"), kind(Vec::new()), slow);
            json.lanes = lanes;
            specs.push(json);
            if lang == "rust" {
                specs.push(spec(
                    "weir-json-rust-eos",
                    kind(vec![("delivery".into(), "\"exactly-once\"".into())]),
                    false,
                ));
            }
        }
    }
    specs.push(spec("python-origin", Kind::Origin, true));
    if let Some(jar) = &lineup.streams_jar {
        for (name, guarantee) in [
            ("streams-alos", "at_least_once"),
            ("streams-eos", "exactly_once_v2"),
        ] {
            let kind = Kind::Streams {
                jar: jar.clone(),
                guarantee,
            };
            specs.push(spec(name, kind, false));
        }
    }
    let with_lanes: Vec<Spec> = specs.iter().filter(|s| s.lanes).cloned().collect();
    for n in &lineup.lanes {
        for base in &with_lanes {
            let mut s = base.clone();
            s.name = format!("{}-lanes{n}", base.name);
            if let Kind::Weir { pipeline, .. } = &mut s.kind {
                pipeline.push(("lanes".into(), n.to_string()));
            }
            specs.push(s);
        }
    }
    specs
}

/// Whether `weir check` accepts `lanes = N` in a pipeline table (with the
/// no-op plugin, so it takes a moment; it needs no broker).
fn weir_knows_lanes(weir: &Path, work: &Path) -> bool {
    let config = work.join("lanes-probe.toml");
    let toml = format!(
        "[kafka]\nbrokers = \"127.0.0.1:9\"\n\n[[pipeline]]\nname = \"probe\"\ninput = \"in\"\n\
         output = \"out\"\ndead_letter = \"dlq\"\nplugin = {:?}\nlanes = 2\n",
        env!("WEIR_BENCH_NOOP")
    );
    std::fs::write(&config, toml).is_ok()
        && Command::new(weir)
            .args(["check", "--config"])
            .arg(&config)
            .env("WEIR_LOG", "error")
            .output()
            .is_ok_and(|o| o.status.success())
}

/// One contender on one input: the row, and how many probes it added to the input.
///
/// Its output and dead-letter topics are deleted afterwards, whatever the
/// outcome: kept, a full run's outputs took 37 GB of the broker's folder
/// and filled the disk.
async fn measure(
    setup: &mut Setup<'_>,
    spec: &Spec,
    input: &str,
    partitions: i32,
    size: usize,
    round: usize,
) -> anyhow::Result<(Row, u64)> {
    let tag = format!("{}-{partitions}p-{size}-r{round}", spec.name);
    let output = format!("out-{tag}");
    let dead_letter = format!("dlq-{tag}");
    setup
        .kafka
        .create_topics(partitions, std::slice::from_ref(&output))
        .await?;
    setup
        .kafka
        .create_topics(1, std::slice::from_ref(&dead_letter))
        .await?;
    let measured = measure_into(
        setup,
        spec,
        input,
        partitions,
        size,
        &tag,
        &output,
        &dead_letter,
    )
    .await;
    if let Err(e) = setup.kafka.delete_topics(&[output, dead_letter]).await {
        println!("  (deleting {tag}'s topics: {e})");
    }
    measured
}

#[allow(clippy::too_many_arguments)]
async fn measure_into(
    setup: &mut Setup<'_>,
    spec: &Spec,
    input: &str,
    partitions: i32,
    size: usize,
    tag: &str,
    output: &str,
    dead_letter: &str,
) -> anyhow::Result<(Row, u64)> {
    let group = format!("bench-{tag}");
    let expected = setup.kafka.count(input);
    let prefix = format!("probe:{tag}:");
    let read = [
        (output.to_string(), partitions),
        (dead_letter.to_string(), 1),
    ];
    let reader = Reader::start(&setup.kafka.bootstrap, &read, &prefix)?;
    reader.wait_live(&setup.kafka.bootstrap, &read).await?;
    let command = contender_command(
        setup,
        spec,
        &[(input, output)],
        dead_letter,
        &group,
        tag,
        None,
    )?;
    let mut contender = Contender::spawn(command, &setup.work.join(format!("{tag}.log")))?;

    // Throughput: from the first output record to the last.
    let spawned = Instant::now();
    let mut cpu_at_first = None;
    let (count, first, last) = loop {
        let (count, first, last, _) = reader.progress();
        if first.is_some() && cpu_at_first.is_none() {
            cpu_at_first = contender.cpu_so_far();
        }
        if count >= expected {
            break (count, first, last);
        }
        if let Some(u) = contender.try_exited() {
            bail!(
                "{} exited ({}) after {count} of {expected} records:\n{}",
                spec.name,
                u.status,
                contender.log_tail(15)
            );
        }
        let cut = first.is_some_and(|f| f.elapsed() > setup.scale.phase_limit);
        if cut || (first.is_none() && spawned.elapsed() > Duration::from_secs(60)) {
            break (count, first, last);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let cpu_at_last = contender.cpu_so_far();
    let Some(first) = first else {
        bail!(
            "{} produced nothing in 60 s:\n{}",
            spec.name,
            contender.log_tail(15)
        );
    };
    let drained = count >= expected;
    let mut row = Row {
        contender: spec.name.clone(),
        partitions,
        size,
        messages: count,
        seconds: last.map_or(0.0, |l| (l - first).as_secs_f64()),
        phase_cpu: cpu_at_first.zip(cpu_at_last).map(|(a, b)| b - a),
        ..Row::default()
    };
    if !drained {
        row.note = Some(format!(
            "cut after {} s: {count} of {expected}",
            setup.scale.phase_limit.as_secs()
        ));
    }

    // Latency: probes at a low rate, once the backlog is gone.
    let mut sent = 0;
    if drained {
        sent = probe(setup, input, &prefix, size).await?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while reader.progress().3 < sent as usize && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let seen = reader.seen();
        if std::env::var_os("WEIR_BENCH_DEBUG").is_some() {
            eprintln!(
                "debug {tag}: spawned→first {:?}, first→last {:?}, count {count}, probes raw p50 {:?} p99 {:?} µs",
                first - spawned,
                last.map(|l| l - first),
                quantile(&seen.probes, 0.5),
                quantile(&seen.probes, 0.99)
            );
        }
        let added: Vec<u64> = seen
            .probes
            .iter()
            .map(|l| l.saturating_sub(setup.direct_p50))
            .collect();
        row.added_p50_ms = quantile(&added, 0.5).map(|v| v as f64 / 1e3);
        row.added_p99_ms = quantile(&added, 0.99).map(|v| v as f64 / 1e3);
        if seen.probes.len() < sent as usize {
            row.note = Some(format!("{} of {sent} probes came back", seen.probes.len()));
        }
        if seen.count > expected + sent {
            row.note = Some(format!("{} duplicates", seen.count - expected - sent));
        }
    }
    let peak = contender.peak_rss_now();
    let usage = contender.stop(Duration::from_secs(30));
    row.cpu = usage.cpu;
    row.peak_rss = peak.unwrap_or(usage.max_rss);
    if usage.status != 0 && row.note.is_none() {
        row.note = Some(format!("exit status {}", usage.status));
    }
    Ok((row, sent))
}

/// The command that starts `spec` on `pipelines` (input, output) pairs.
fn contender_command(
    setup: &Setup<'_>,
    spec: &Spec,
    pipelines: &[(&str, &str)],
    dead_letter: &str,
    group: &str,
    tag: &str,
    compile_cache: Option<&Path>,
) -> anyhow::Result<Command> {
    let bootstrap = &setup.kafka.bootstrap;
    let (input, output) = pipelines[0];
    let command = match &spec.kind {
        Kind::FastPassthrough => {
            let mut c = Command::new(std::env::current_exe()?);
            c.args([
                "fast-passthrough",
                "--bootstrap",
                bootstrap,
                "--input",
                input,
            ])
            .args(["--output", output, "--group", group]);
            c
        }
        Kind::Streams { jar, guarantee } => {
            let schema = root().join("quickstart/schemas/order.json");
            let mut c = Command::new("java");
            c.arg("-jar")
                .arg(jar)
                .args([
                    "--bootstrap",
                    bootstrap,
                    "--input",
                    input,
                    "--output",
                    output,
                ])
                .args(["--dead-letter", dead_letter, "--group", group])
                .arg("--schema")
                .arg(schema)
                .args(["--guarantee", guarantee]);
            c
        }
        Kind::Passthrough => {
            let mut c = Command::new(std::env::current_exe()?);
            c.args(["passthrough", "--bootstrap", bootstrap, "--input", input])
                .args(["--output", output, "--group", group]);
            c
        }
        Kind::Origin => {
            let mut c = Command::new(setup.python);
            c.arg(root().join("bench/origin.py"))
                .args([
                    "--bootstrap",
                    bootstrap,
                    "--input",
                    input,
                    "--output",
                    output,
                ])
                .args(["--dead-letter", dead_letter, "--group", group]);
            c
        }
        Kind::Weir {
            plugin,
            config,
            pipeline,
        } => {
            let mut toml = format!("[kafka]\nbrokers = {bootstrap:?}\n");
            for (i, (input, output)) in pipelines.iter().enumerate() {
                toml.push_str(&format!(
                    "\n[[pipeline]]\nname = \"bench-{i}\"\ninput = {input:?}\ngroup = \"{group}-{i}\"\n\
                     output = {output:?}\ndead_letter = {dead_letter:?}\nplugin = {:?}\n",
                    plugin.display().to_string()
                ));
                for (k, v) in pipeline {
                    toml.push_str(&format!("{k} = {v}\n"));
                }
                toml.push_str("[pipeline.config]\n");
                for (k, v) in config {
                    toml.push_str(&format!("{k} = {v:?}\n"));
                }
            }
            let path = setup.work.join(format!("{tag}.toml"));
            std::fs::write(&path, toml)?;
            let mut c = Command::new(setup.weir);
            c.args(["run", "--no-reload", "--config"]).arg(&path);
            c.env("WEIR_LOG", "warn");
            if let Some(dir) = compile_cache {
                c.env("WEIR_CACHE_DIR", dir);
            }
            c
        }
    };
    // WEIR_BENCH_PERF=DIR records a profile of each contender into DIR (the
    // numbers of that run then include perf's own cost).
    Ok(match std::env::var_os("WEIR_BENCH_PERF") {
        Some(dir) => {
            let mut c = Command::new("perf");
            c.args(["record", "-F", "2000", "--call-graph", "dwarf,16384", "-o"])
                .arg(PathBuf::from(dir).join(format!("{tag}.perf.data")))
                .arg("--")
                .arg(command.get_program())
                .args(command.get_args());
            for (k, v) in command.get_envs() {
                if let Some(v) = v {
                    c.env(k, v);
                }
            }
            c
        }
        None => command,
    })
}

/// Sends probes to `topic` at the scale's rate; returns how many were acknowledged.
async fn probe(setup: &Setup<'_>, topic: &str, prefix: &str, size: usize) -> anyhow::Result<u64> {
    let producer = cluster::producer(&setup.kafka.bootstrap, "0")?;
    let mut pending = Vec::new();
    let mut tick = tokio::time::interval(setup.scale.probe_every);
    for i in 0..setup.scale.probes {
        tick.tick().await;
        let key = format!("{prefix}{}", now_micros());
        pending.push(
            cluster::send(
                &producer,
                topic,
                Some(key.as_bytes()),
                &order_value(i as u64, size),
            )
            .await,
        );
    }
    let mut acked = 0;
    for p in pending {
        if let Ok(Ok(_)) = p.await {
            acked += 1;
        }
    }
    Ok(acked)
}

/// Probes straight into a topic and read back: what the broker and clients
/// alone cost, subtracted from each contender's probes.
async fn direct_latency(kafka: &Cluster, scale: Scale, topic: &str) -> anyhow::Result<Vec<u64>> {
    let topic = topic.to_string();
    kafka.create_topics(1, std::slice::from_ref(&topic)).await?;
    let reader = Reader::start(&kafka.bootstrap, &[(topic.clone(), 1)], "probe:direct:")?;
    reader
        .wait_live(&kafka.bootstrap, &[(topic.clone(), 1)])
        .await?;
    let work = std::env::temp_dir();
    let setup = Setup {
        kafka,
        weir: Path::new(""),
        python: Path::new(""),
        work: &work,
        scale,
        direct_p50: 0,
    };
    let sent = probe(&setup, &topic, "probe:direct:", 100).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while reader.progress().3 < sent as usize && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(reader.seen().probes)
}

/// Scaling: partitions 1, 2, 4 and pipelines 1, 2, 4 in one process (weir
/// with the Rust JSON-schema validator, 1 KB), memory per pipeline, and the
/// start-up time to the first message with and without the compile cache.
async fn scaling_runs(setup: Setup<'_>) -> anyhow::Result<String> {
    let Some(json) = contenders(&Lineup::default())
        .into_iter()
        .find(|s| s.name == "weir-json-rust")
    else {
        return Ok("(no plugins/dist/json_schema.wasm: no scaling runs)\n".into());
    };
    let size = 1_000;
    let n = (setup.scale.records)(size);
    let mut out = String::from(
        "| what | msg/s | MB/s | CPU µs/msg | peak MiB | note |\n|---|---:|---:|---:|---:|---|\n",
    );
    // A throughput measurement over any number of (input, output) pipelines.
    let run = |pipelines: Vec<(String, String)>,
               partitions: i32,
               tag: String,
               spec: Spec,
               cache: Option<PathBuf>| {
        let setup = &setup;
        async move {
            let dead_letter = format!("dlq-{tag}");
            setup
                .kafka
                .create_topics(1, std::slice::from_ref(&dead_letter))
                .await?;
            let outputs: Vec<String> = pipelines.iter().map(|(_, o)| o.clone()).collect();
            setup.kafka.create_topics(partitions, &outputs).await?;
            let expected: u64 = pipelines.iter().map(|(i, _)| setup.kafka.count(i)).sum();
            let topics: Vec<(String, i32)> =
                outputs.iter().map(|o| (o.clone(), partitions)).collect();
            let reader = Reader::start(&setup.kafka.bootstrap, &topics, "probe:none:")?;
            reader.wait_live(&setup.kafka.bootstrap, &topics).await?;
            let pairs: Vec<(&str, &str)> = pipelines
                .iter()
                .map(|(i, o)| (i.as_str(), o.as_str()))
                .collect();
            let command = contender_command(
                setup,
                &spec,
                &pairs,
                &dead_letter,
                &tag,
                &tag,
                cache.as_deref(),
            )?;
            let mut contender = Contender::spawn(command, &setup.work.join(format!("{tag}.log")))?;
            let spawned = Instant::now();
            let mut cpu_at_first = None;
            let mut first_after = None;
            loop {
                let (count, first, _, _) = reader.progress();
                if first.is_some() && cpu_at_first.is_none() {
                    cpu_at_first = contender.cpu_so_far();
                    first_after = Some(spawned.elapsed());
                }
                if count >= expected {
                    break;
                }
                if let Some(u) = contender.try_exited() {
                    bail!("{tag} exited ({}):\n{}", u.status, contender.log_tail(15));
                }
                if spawned.elapsed() > Duration::from_secs(120) {
                    bail!("{tag}: {count} of {expected} records in 120 s");
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let cpu_at_last = contender.cpu_so_far();
            let rss_drained = contender.rss_now().unwrap_or(0);
            let seen = reader.seen();
            let peak = contender.peak_rss_now();
            let usage = contender.stop(Duration::from_secs(30));
            let row = Row {
                contender: tag.clone(),
                partitions,
                size,
                messages: seen.count,
                seconds: match (seen.first, seen.last) {
                    (Some(f), Some(l)) => (l - f).as_secs_f64(),
                    _ => 0.0,
                },
                phase_cpu: cpu_at_first.zip(cpu_at_last).map(|(a, b)| b - a),
                cpu: usage.cpu,
                peak_rss: peak.unwrap_or(usage.max_rss),
                ..Row::default()
            };
            anyhow::Ok((row, first_after.unwrap_or_default(), rss_drained))
        }
    };
    let line = |what: &str, row: &Row, note: &str| {
        format!(
            "| {what} | {:.0} | {:.1} | {} | {:.0} | {note} |\n",
            row.msgs_per_sec(),
            row.mb_per_sec(),
            row.cpu_us_per_msg()
                .map_or("-".into(), |c| format!("{c:.1}")),
            row.peak_rss as f64 / (1 << 20) as f64,
        )
    };

    for partitions in [1, 2, 4] {
        let input = format!("scale-in-{partitions}p");
        setup
            .kafka
            .create_topics(partitions, std::slice::from_ref(&input))
            .await?;
        setup.kafka.fill(&input, n, size).await?;
        let tag = format!("scale-{partitions}p");
        let (row, _, _) = run(
            vec![(input, format!("out-{tag}"))],
            partitions,
            tag,
            json.clone(),
            None,
        )
        .await?;
        out.push_str(&line(
            &format!("1 pipeline, {partitions} partition(s)"),
            &row,
            "",
        ));
        println!("{}", out.lines().last().unwrap_or(""));
    }

    let per_pipeline = n / 2;
    let mut inputs = Vec::new();
    for j in 0..4 {
        let input = format!("pipe-in-{j}");
        setup
            .kafka
            .create_topics(1, std::slice::from_ref(&input))
            .await?;
        setup.kafka.fill(&input, per_pipeline, size).await?;
        inputs.push(input);
    }
    let mut rss = Vec::new();
    for k in [1usize, 2, 4] {
        let tag = format!("pipelines-{k}");
        let pipelines = inputs[..k]
            .iter()
            .map(|i| (i.clone(), format!("out-{tag}-{i}")))
            .collect();
        let (row, _, drained) = run(pipelines, 1, tag, json.clone(), None).await?;
        rss.push((k, row.peak_rss, drained));
        out.push_str(&line(
            &format!("{k} pipeline(s) in one process, 1 partition each"),
            &row,
            &format!(
                "RSS once drained {:.0} MiB",
                drained as f64 / (1 << 20) as f64
            ),
        ));
        println!("{}", out.lines().last().unwrap_or(""));
    }
    if let (Some(one), Some(four)) = (rss.first(), rss.last()) {
        let per = |a: u64, b: u64| (b as f64 - a as f64) / 3.0 / (1 << 20) as f64;
        out.push_str(&format!(
            "\nmemory per added pipeline (4 pipelines vs 1, 1 KB messages): peak {:.1} MiB, once drained {:.1} MiB\n",
            per(one.1, four.1),
            per(one.2, four.2)
        ));
    }

    // Start-up: spawn to the first output record, on an input already full.
    let input = "scale-in-1p".to_string();
    let empty_cache = setup.work.join("compile-cache");
    let mut startup =
        String::from("\n| start-up to the first output record | seconds |\n|---|---:|\n");
    let passthrough = contenders(&Lineup::default())
        .into_iter()
        .find(|s| s.name == BASELINE)
        .expect("always there");
    for (what, spec, cache) in [
        (
            "passthrough-fast (no plugin: the group join alone)",
            passthrough,
            None,
        ),
        (
            "weir, empty compile cache (compiles the plugin)",
            json.clone(),
            Some(empty_cache.clone()),
        ),
        (
            "weir, compile cache filled by the run above",
            json.clone(),
            Some(empty_cache.clone()),
        ),
    ] {
        let tag = format!("startup-{}", startup.lines().count());
        let (_, first_after, _) = run(
            vec![(input.clone(), format!("out-{tag}"))],
            1,
            tag,
            spec,
            cache,
        )
        .await?;
        startup.push_str(&format!("| {what} | {:.2} |\n", first_after.as_secs_f64()));
        println!("{}", startup.lines().last().unwrap_or(""));
    }
    out.push_str(&startup);
    Ok(out)
}

/// The machine the numbers come from.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|kib| kib.parse::<u64>().ok())
        .map_or("unknown".into(), |kib| {
            format!("{:.1} GiB", kib as f64 / (1 << 20) as f64)
        });
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "machine: {cores} CPUs ({cpu}), {mem} memory, {}",
        std::env::consts::ARCH
    )
}
