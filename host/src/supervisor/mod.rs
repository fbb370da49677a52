//! Runs the pipelines of a config and keeps them matching it: on a signal
//! it stops them all; when the config file changes it stops the pipelines
//! that were removed, starts the new ones and restarts the ones whose
//! settings changed, leaving the others alone ([`plan`] decides which). A
//! pipeline that fails stops the rest.
//!
//! Invariants: a pipeline's plugin is instantiated (and `init` has accepted
//! its config) before anything of it is started or stopped, so a bad edit
//! changes nothing. A restarted pipeline's new consumer starts only once the
//! old one has committed and left its group, so a restart neither loses nor
//! repeats a message. Changes to `[kafka]` are not applied while running.

pub mod plan;
pub mod reload;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument as _;

use crate::config::{Config, Kafka, Pipeline};
use crate::delivery::{StopAt, run};
use crate::ops::metrics::Stats;
use crate::plugin::{Instance, LogTags, Plugin, Runtime};
use crate::supervisor::plan::{Course, Plan, Step};

struct Running {
    spec: Pipeline,
    generation: u64,
    stop: watch::Sender<bool>,
    swap: UnboundedSender<Instance>,
    /// What takes over once this one has stopped (a changed pipeline).
    next: Option<(Pipeline, Instance)>,
}

impl Running {
    fn course(&self) -> Course<'_> {
        match &self.next {
            Some((spec, _)) => Course::Restarting(spec),
            None if *self.stop.borrow() => Course::Stopping,
            None => Course::Running(&self.spec),
        }
    }
}

pub struct Supervisor {
    runtime: Runtime,
    kafka: Kafka,
    bootstrap: String,
    running: HashMap<String, Running>,
    tasks: JoinSet<(String, u64, anyhow::Result<Stats>)>,
    generation: u64,
    stats: BTreeMap<String, Stats>,
    watch_plugins: bool,
    reloader: Option<reload::Reloader>,
}

impl Supervisor {
    pub fn new(runtime: Runtime, kafka: Kafka, bootstrap: String, watch_plugins: bool) -> Self {
        Supervisor {
            runtime,
            kafka,
            bootstrap,
            running: HashMap::new(),
            tasks: JoinSet::new(),
            generation: 0,
            stats: BTreeMap::new(),
            watch_plugins,
            reloader: None,
        }
    }

    /// Instantiates every pipeline's plugin (so a bad one fails before
    /// anything is consumed), then starts them all.
    pub fn start_all(
        &mut self,
        pipelines: Vec<(Pipeline, Arc<Plugin>)>,
        mut stop_at: HashMap<String, StopAt>,
    ) -> anyhow::Result<()> {
        let mut ready = Vec::new();
        for (spec, plugin) in pipelines {
            let instance = instantiate(&spec, &plugin)?;
            ready.push((spec, instance));
        }
        for (spec, instance) in ready {
            let stop = stop_at.remove(&spec.name);
            self.spawn(spec, instance, stop);
        }
        self.rewatch_plugins();
        Ok(())
    }

    fn spawn(&mut self, spec: Pipeline, instance: Instance, stop_at: Option<StopAt>) {
        self.generation += 1;
        let generation = self.generation;
        let (stop, stop_rx) = watch::channel(false);
        let (swap, swap_rx) = unbounded_channel();
        let name = spec.name.clone();
        let span = tracing::info_span!("pipeline", pipeline = %name);
        let task = run(
            spec.clone(),
            self.kafka.clone(),
            self.bootstrap.clone(),
            instance,
            stop_rx,
            stop_at,
            Some(swap_rx),
        );
        let task_name = name.clone();
        // A thread of its own per pipeline, driving the loop with
        // `block_on`: there the plugin call's `block_in_place` only marks the
        // thread as outside the runtime, where on a worker thread it would
        // hand the worker's core to another thread on every message.
        let handle = tokio::runtime::Handle::current();
        self.tasks.spawn_blocking(move || {
            let result = handle.block_on(task.instrument(span));
            (task_name, generation, result)
        });
        self.running.insert(
            name,
            Running {
                spec,
                generation,
                stop,
                swap,
                next: None,
            },
        );
    }

    /// Points the plugin watcher at the plugins of the running pipelines.
    fn rewatch_plugins(&mut self) {
        if !self.watch_plugins {
            return;
        }
        let targets = self
            .running
            .values()
            .map(|r| reload::Target {
                pipeline: r.spec.clone(),
                swap: r.swap.clone(),
            })
            .collect();
        self.reloader = None;
        match reload::watch(self.runtime.clone(), targets) {
            Ok(r) => self.reloader = Some(r),
            Err(e) => tracing::error!("plugin hot reload is off: {e:#}"),
        }
    }

    /// Runs until `shutdown` turns true, or until every pipeline has ended
    /// by itself; with `config`, applies its edits as they happen.
    pub async fn run(
        mut self,
        mut shutdown: watch::Receiver<bool>,
        config: Option<&Path>,
    ) -> anyhow::Result<BTreeMap<String, Stats>> {
        let (_config_watcher, mut edits) = match config {
            Some(path) => {
                let (w, rx) = watch_config(path)?;
                (Some(w), Some(rx))
            }
            None => (None, None),
        };
        let mut failure: Option<anyhow::Error> = None;
        let mut stopping = false;
        loop {
            if self.tasks.is_empty() && (stopping || edits.is_none()) {
                break;
            }
            tokio::select! {
                changed = shutdown.changed(), if !stopping => {
                    if changed.is_err() || *shutdown.borrow() {
                        stopping = true;
                        self.stop_all();
                    }
                }
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    let (name, generation, result) = match joined {
                        Ok(done) => done,
                        Err(e) => {
                            failure.get_or_insert(anyhow::anyhow!("a pipeline panicked: {e}"));
                            stopping = true;
                            self.stop_all();
                            continue;
                        }
                    };
                    match result {
                        Ok(stats) => {
                            self.stats.insert(name.clone(), stats);
                        }
                        Err(e) => {
                            tracing::error!(pipeline = %name, "{e:#}");
                            failure.get_or_insert(e);
                            stopping = true;
                            self.stop_all();
                        }
                    }
                    self.ended(&name, generation, stopping);
                }
                Some(path) = async { edits.as_mut()?.recv().await }, if !stopping => {
                    self.apply(&path);
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(self.stats),
        }
    }

    fn stop_all(&mut self) {
        for r in self.running.values_mut() {
            r.next = None;
            r.stop.send_replace(true);
        }
    }

    /// A pipeline's task ended: start what waits for it, or forget it.
    fn ended(&mut self, name: &str, generation: u64, stopping: bool) {
        let Some(r) = self.running.get_mut(name) else {
            return;
        };
        if r.generation != generation {
            return;
        }
        let next = r.next.take();
        self.running.remove(name);
        if let (Some((spec, instance)), false) = (next, stopping) {
            tracing::info!(
                pipeline = %spec.name,
                plugin = %instance.plugin().name,
                "pipeline restarted with its new settings"
            );
            self.spawn(spec, instance, None);
            self.rewatch_plugins();
        }
    }

    /// Brings the running pipelines in line with the config at `path`.
    fn apply(&mut self, path: &Path) {
        let config = match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(
                    "config reload rejected: {e}; the running pipelines stay as they are"
                );
                count_reload(false);
                return;
            }
        };
        if config.kafka != self.kafka && !self.kafka.is_embedded() {
            tracing::warn!("the [kafka] settings changed: restart weir to apply them");
        }
        let courses: HashMap<&str, Course<'_>> = self
            .running
            .iter()
            .map(|(name, r)| (name.as_str(), r.course()))
            .collect();
        let plan = Plan::new(&courses, &config.pipelines);
        // Check everything new before touching anything.
        let mut ready = HashMap::new();
        for spec in plan.to_start() {
            let instance = self
                .runtime
                .load(&spec.plugin)
                .map_err(anyhow::Error::from)
                .and_then(|plugin| instantiate(spec, &plugin));
            match instance {
                Ok(instance) => {
                    ready.insert(spec.name.clone(), instance);
                }
                Err(e) => {
                    tracing::error!(
                        "config reload rejected: pipeline {:?}: {e:#}; the running pipelines stay as they are",
                        spec.name
                    );
                    count_reload(false);
                    return;
                }
            }
        }
        for (name, step) in plan.steps {
            let spec = match step {
                Step::Stay => continue,
                Step::Stop => {
                    if let Some(r) = self.running.get_mut(&name) {
                        tracing::info!(pipeline = %name, "pipeline removed from the config: stopping it");
                        r.next = None;
                        r.stop.send_replace(true);
                    }
                    continue;
                }
                Step::Start(spec) | Step::Restart(spec) => spec,
            };
            let Some(instance) = ready.remove(&name) else {
                continue;
            };
            match self.running.get_mut(&name) {
                Some(r) => {
                    if matches!(r.course(), Course::Running(_)) {
                        tracing::info!(pipeline = %name, "pipeline settings changed: restarting it");
                    } else {
                        tracing::info!(
                            pipeline = %name,
                            "pipeline settings changed while it was stopping: it starts with the latest once it has stopped"
                        );
                    }
                    r.stop.send_replace(true);
                    r.next = Some((spec, instance));
                }
                None => {
                    tracing::info!(pipeline = %name, "pipeline added to the config: starting it");
                    self.spawn(spec, instance, None);
                }
            }
        }
        self.rewatch_plugins();
        count_reload(true);
    }
}

/// A config edit applied or refused, for `/metrics`.
fn count_reload(applied: bool) {
    let registry = crate::ops::metrics::registry();
    let counter = if applied {
        &registry.config_reloads
    } else {
        &registry.config_reloads_rejected
    };
    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

fn instantiate(spec: &Pipeline, plugin: &Arc<Plugin>) -> anyhow::Result<Instance> {
    let tags = LogTags {
        pipeline: spec.name.clone(),
        plugin: plugin.name.clone(),
        capture: None,
    };
    let started = std::time::Instant::now();
    // `init` may write to stdout, a WASI call that blocks on tokio: leave
    // the async context for it (outside a runtime this just calls).
    let instance =
        tokio::task::block_in_place(|| plugin.instantiate(&spec.plugin_config, &spec.limits, tags))
            .with_context(|| format!("pipeline {:?}", spec.name))?;
    tracing::info!(
        pipeline = %spec.name,
        plugin = %plugin.name,
        world = %plugin.world(),
        bytes = plugin.size,
        compile_ms = plugin.compiled_in.as_millis() as u64,
        instantiate_ms = started.elapsed().as_millis() as u64,
        producers = %plugin.producers,
        "plugin instantiated"
    );
    Ok(instance)
}

/// Watches the config file's folder; yields the file's path after each edit.
fn watch_config(
    path: &Path,
) -> anyhow::Result<(notify::RecommendedWatcher, UnboundedReceiver<PathBuf>)> {
    let path = std::path::absolute(path)?;
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let (raw_tx, raw_rx) = std::sync::mpsc::channel();
    let mut watcher =
        notify::recommended_watcher(raw_tx).context("cannot start the config file watcher")?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .with_context(|| format!("cannot watch {}", dir.display()))?;
    let (tx, rx) = unbounded_channel();
    std::thread::Builder::new()
        .name("weir-config".into())
        .spawn(move || {
            let touches =
                |e: notify::Result<notify::Event>| e.is_ok_and(|e| e.paths.contains(&path));
            while let Ok(event) = raw_rx.recv() {
                if !touches(event) {
                    continue;
                }
                reload::settle(&raw_rx, &touches);
                if tx.send(path.clone()).is_err() {
                    return;
                }
            }
        })?;
    Ok((watcher, rx))
}
