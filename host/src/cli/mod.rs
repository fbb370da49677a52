//! The `weir` command: `run`, `check`, `test` (in [`crate::cli::test_runner`]),
//! `dlq` (in [`crate::cli::dlq`]) and `new` (in [`crate::cli::scaffold`]).

pub mod dlq;
pub mod jsonl;
pub mod scaffold;
pub mod test_runner;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

use crate::client::{header_text, read_all, seed};
use crate::config::Config;
use crate::delivery::StopAt;
use crate::kafka::embedded::EmbeddedBroker;
use crate::plugin::{LogTags, Plugin, Runtime};
use crate::supervisor::Supervisor;

/// Runs Kafka pipelines through sandboxed WebAssembly plugins.
#[derive(Parser)]
#[command(name = "weir", version)]
pub struct Cli {
    /// How log lines look on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

#[derive(Subcommand)]
enum Command {
    Run(Run),
    Check(Check),
    Test(crate::cli::test_runner::Test),
    Dlq(crate::cli::dlq::Dlq),
    New(crate::cli::scaffold::New),
}

/// Runs every pipeline of the config until SIGINT or SIGTERM.
#[derive(Parser)]
pub struct Run {
    /// The config file.
    #[arg(long, short, default_value = "weir.toml")]
    config: PathBuf,
    /// Produce these JSON-lines records first (to a line's `topic`, else the
    /// first pipeline's input).
    #[arg(long)]
    seed: Option<PathBuf>,
    /// With --seed: stop once every seeded record is through, then print
    /// what each pipeline wrote to its output, routes and dead-letter topics.
    #[arg(long, requires = "seed")]
    drain: bool,
    /// Don't watch the config and plugin files for changes.
    #[arg(long)]
    no_reload: bool,
}

/// Parses the config and loads, initialises and type-checks every plugin;
/// needs no Kafka.
#[derive(Parser)]
pub struct Check {
    /// The config file.
    #[arg(long, short, default_value = "weir.toml")]
    config: PathBuf,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // `weir test` shows a plugin's lines beside each message instead.
    let guest_lines = !matches!(cli.command, Command::Test(_));
    init_tracing(cli.log_format, guest_lines);
    let result = match cli.command {
        Command::Run(c) => c.execute(),
        Command::Check(c) => c.execute(),
        Command::Test(c) => c.execute(),
        Command::Dlq(c) => c.execute(),
        Command::New(c) => c.execute(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat, guest_lines: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if guest_lines {
        "info"
    } else {
        "info,weir::guest=off"
    };
    let filter = EnvFilter::try_from_env("WEIR_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Meters fuel only when some pipeline limits it.
fn runtime_for(config: &Config) -> anyhow::Result<Runtime> {
    if config.pipelines.iter().any(|p| p.limits.fuel.is_some()) {
        Runtime::with_fuel()
    } else {
        Runtime::new()
    }
}

fn load_plugins(runtime: &Runtime, config: &Config) -> anyhow::Result<Vec<Arc<Plugin>>> {
    let mut cache: HashMap<PathBuf, Arc<Plugin>> = HashMap::new();
    let mut plugins = Vec::new();
    for p in &config.pipelines {
        let plugin = match cache.get(&p.plugin) {
            Some(plugin) => Arc::clone(plugin),
            None => {
                let plugin = runtime
                    .load(&p.plugin)
                    .with_context(|| format!("pipeline {:?}", p.name))?;
                tracing::info!(
                    plugin = %plugin.name,
                    world = %plugin.world(),
                    bytes = plugin.size,
                    compile_ms = plugin.compiled_in.as_millis() as u64,
                    producers = %plugin.producers,
                    "plugin loaded"
                );
                cache.insert(p.plugin.clone(), Arc::clone(&plugin));
                plugin
            }
        };
        plugins.push(plugin);
    }
    Ok(plugins)
}

impl Run {
    fn execute(self) -> anyhow::Result<ExitCode> {
        let config = Config::load(&self.config)?;
        let runtime = runtime_for(&config)?;
        let plugins = load_plugins(&runtime, &config)?;
        let tokio = tokio::runtime::Runtime::new()?;
        tokio.block_on(self.run(runtime, config, plugins))
    }

    async fn run(
        self,
        runtime: Runtime,
        config: Config,
        plugins: Vec<Arc<Plugin>>,
    ) -> anyhow::Result<ExitCode> {
        let embedded = if config.kafka.is_embedded() {
            let mut topics: Vec<&str> = Vec::new();
            for p in &config.pipelines {
                topics.push(&p.input);
                topics.extend(p.output_topics());
            }
            topics.sort();
            topics.dedup();
            let broker = EmbeddedBroker::start(&topics, 1)?;
            tracing::info!(bootstrap = %broker.bootstrap(), "embedded broker started (it keeps nothing)");
            Some(broker)
        } else {
            None
        };
        let bootstrap = match &embedded {
            Some(b) => b.bootstrap(),
            None => config.kafka.brokers.clone(),
        };

        // Served before anything waits on Kafka, so /health says what it waits for.
        if let Some(http) = &config.http {
            crate::ops::admin::serve(http.listen, &config.path.display().to_string()).await?;
        }
        crate::ops::metrics::registry().expect(config.pipelines.iter().map(|p| p.name.as_str()));
        if embedded.is_none() {
            crate::kafka::topics::ensure(
                &config.path,
                &config.kafka,
                &bootstrap,
                &config.pipelines,
                wait_for_signal(),
            )
            .await?;
        }

        let mut stop_at: HashMap<String, StopAt> = HashMap::new();
        if let Some(path) = &self.seed {
            let records = read_jsonl(path)?;
            let first_input = &config.pipelines[0].input;
            let last = seed(&config.kafka, &bootstrap, first_input, &records).await?;
            println!("seeded {} records from {}", records.len(), path.display());
            if self.drain {
                for p in &config.pipelines {
                    let mine = last
                        .iter()
                        .filter(|((topic, _), _)| *topic == p.input)
                        .map(|((_, partition), offset)| (*partition, *offset))
                        .collect();
                    stop_at.insert(p.name.clone(), mine);
                }
            }
        }

        let (tx, rx) = tokio::sync::watch::channel(false);
        let signals = tx.clone();
        let grace = config.shutdown_timeout;
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("signal received: stopping (a second signal exits at once)");
            signals.send_replace(true);
            tokio::select! {
                () = wait_for_signal() => {
                    tracing::warn!("second signal: exiting without committing what is in flight");
                    std::process::exit(130);
                }
                () = tokio::time::sleep(grace) => {
                    tracing::error!(
                        "in-flight messages not acknowledged within shutdown_timeout ({grace:?}): \
                         exiting without committing them; they are processed again on the next start"
                    );
                    std::process::exit(75);
                }
            }
        });

        let mut supervisor = Supervisor::new(
            runtime,
            config.kafka.clone(),
            bootstrap.clone(),
            !self.no_reload,
        );
        let pipelines = config.pipelines.iter().cloned().zip(plugins).collect();
        supervisor.start_all(pipelines, stop_at)?;
        // Drained runs end by themselves; others follow the config's edits.
        let watch_config = !(self.drain || self.no_reload);
        let stats = supervisor
            .run(rx, watch_config.then_some(self.config.as_path()))
            .await?;
        for (name, s) in &stats {
            tracing::info!(pipeline = %name, consumed = s.consumed, produced = s.produced, dropped = s.dropped, dead_lettered = ?s.dead_lettered, "pipeline summary");
        }
        if self.drain {
            let kafka = config.kafka.clone();
            let report =
                tokio::task::spawn_blocking(move || print_report(&config, &kafka, &bootstrap));
            report.await??;
        }
        drop(embedded);
        Ok(ExitCode::SUCCESS)
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => std::future::pending::<()>().await,
    }
}

/// What each pipeline wrote, as a person reads it.
fn print_report(
    config: &Config,
    kafka: &crate::config::Kafka,
    bootstrap: &str,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for p in &config.pipelines {
        let topics: Vec<&str> = p.output_topics().collect();
        let written = read_all(kafka, bootstrap, &topics)?;
        writeln!(
            out,
            "\npipeline {}: {} → {}",
            p.name,
            p.input,
            p.plugin.display()
        )?;
        for topic in &topics {
            let records = &written[*topic];
            let role = if *topic == p.dead_letter {
                "dead letters"
            } else {
                "output"
            };
            writeln!(out, "  {role} in {topic}: {} records", records.len())?;
            for m in records {
                let value = jsonl::encode_bytes(m.value.as_deref());
                if *topic == p.dead_letter {
                    writeln!(
                        out,
                        "    {value}  [{}: {}]",
                        header_text(m, "weir.error.kind").unwrap_or_default(),
                        header_text(m, "weir.error.reason").unwrap_or_default()
                    )?;
                } else {
                    writeln!(out, "    {value}")?;
                }
            }
        }
    }
    Ok(())
}

fn read_jsonl(path: &Path) -> anyhow::Result<Vec<jsonl::Record>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            jsonl::parse_line(l).map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}

impl Check {
    fn execute(self) -> anyhow::Result<ExitCode> {
        let config = Config::load(&self.config)?;
        let runtime = runtime_for(&config)?;
        let plugins = load_plugins(&runtime, &config)?;
        let brokers = if config.kafka.is_embedded() {
            "embedded (in-process, keeps nothing)".to_string()
        } else {
            config.kafka.brokers.clone()
        };
        println!("{}: kafka {brokers}", config.path.display());
        for (k, v) in config.kafka.shown_properties() {
            println!("  {k} = {v}");
        }
        for (k, v) in config.kafka.shown_consumer_properties() {
            println!("  consumer: {k} = {v}");
        }
        for (k, v) in config.kafka.shown_producer_properties() {
            println!("  producer: {k} = {v}");
        }
        for (p, plugin) in config.pipelines.iter().zip(plugins) {
            let tags = LogTags {
                pipeline: p.name.clone(),
                plugin: plugin.name.clone(),
                capture: None,
            };
            let started = std::time::Instant::now();
            plugin
                .instantiate(&p.plugin_config, &p.limits, tags)
                .with_context(|| format!("pipeline {:?}", p.name))?;
            println!(
                "pipeline {}: {} (group {}) → {} [{}, {} bytes, compiled in {} ms, instantiated in {} ms] → {}; routes {:?}; dead letters → {}; limits: {:?} per call, {} MiB",
                p.name,
                p.input,
                p.group,
                plugin.name,
                plugin.world(),
                plugin.size,
                plugin.compiled_in.as_millis(),
                started.elapsed().as_millis(),
                p.output,
                p.routes,
                p.dead_letter,
                p.limits.timeout,
                p.limits.memory >> 20,
            );
            println!("  {} made with {}", plugin.name, plugin.producers);
        }
        println!("ok");
        Ok(ExitCode::SUCCESS)
    }
}
