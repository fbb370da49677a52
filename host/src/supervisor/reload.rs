//! Hot reload of plugins: a watcher on every plugin's folder; when a plugin
//! file changes, its new bytes are compiled, type-checked and initialised
//! for each pipeline using it on the watcher's own thread, off the hot
//! path, and the ready instance is handed to the pipeline, which swaps it in
//! between two messages. A file that does not load (broken, wrong world,
//! init refuses its config) is logged and the running plugin keeps running.
//!
//! Folders are watched rather than files, so a plugin replaced by a rename
//! (what `cp` to a temporary name and `mv`, or a build tool, does) is seen.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc::UnboundedSender;

use crate::config::Pipeline;
use crate::plugin::{Instance, LogTags, Runtime};

/// Changes closer together than this are one change (a copy in progress).
const SETTLE: Duration = Duration::from_millis(200);
/// A file that keeps changing is reloaded after this long anyway.
const SETTLE_AT_MOST: Duration = Duration::from_secs(2);

/// A pipeline that wants a fresh instance when its plugin file changes.
pub struct Target {
    pub pipeline: Pipeline,
    pub swap: UnboundedSender<Instance>,
}

/// Watches while it lives.
pub struct Reloader {
    _watcher: notify::RecommendedWatcher,
}

/// Starts watching the plugins of `targets`.
pub fn watch(runtime: Runtime, targets: Vec<Target>) -> anyhow::Result<Reloader> {
    let (tx, rx) = mpsc::channel();
    let mut watcher =
        notify::recommended_watcher(tx).context("cannot start the plugin file watcher")?;
    let mut by_path: HashMap<PathBuf, Vec<Target>> = HashMap::new();
    for t in targets {
        by_path
            .entry(t.pipeline.plugin.clone())
            .or_default()
            .push(t);
    }
    // The bytes running now, read before watching starts: a file rewritten
    // with the same bytes (a build tool refreshing its output) reloads nothing.
    let last: HashMap<PathBuf, Vec<u8>> = by_path
        .keys()
        .filter_map(|p| Some((p.clone(), std::fs::read(p).ok()?)))
        .collect();
    let mut dirs: Vec<&Path> = by_path.keys().filter_map(|p| p.parent()).collect();
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .with_context(|| format!("cannot watch {}", dir.display()))?;
    }
    std::thread::Builder::new()
        .name("weir-reload".into())
        .spawn(move || run(runtime, by_path, last, rx))?;
    Ok(Reloader { _watcher: watcher })
}

fn run(
    runtime: Runtime,
    by_path: HashMap<PathBuf, Vec<Target>>,
    mut last: HashMap<PathBuf, Vec<u8>>,
    rx: mpsc::Receiver<notify::Result<notify::Event>>,
) {
    while let Ok(event) = rx.recv() {
        // The plugin files an event touches.
        let ours = |event: notify::Result<notify::Event>| -> Vec<PathBuf> {
            match event {
                Ok(e) => e
                    .paths
                    .into_iter()
                    .filter(|p| by_path.contains_key(p))
                    .collect(),
                Err(e) => {
                    tracing::warn!("plugin file watcher: {e}");
                    Vec::new()
                }
            }
        };
        let mut changed = ours(event);
        if changed.is_empty() {
            continue;
        }
        settle(&rx, |e| {
            let more = ours(e);
            let hit = !more.is_empty();
            changed.extend(more);
            hit
        });
        changed.sort();
        changed.dedup();
        for path in changed {
            reload(&runtime, &path, &by_path[&path], &mut last);
        }
    }
}

/// Waits until the watched file has been quiet for [`SETTLE`] (a write or
/// a rename in progress), at most [`SETTLE_AT_MOST`]; `relevant` sees each
/// event and says whether it touched the file. Other files of the folder
/// (a log being written) neither extend nor end the wait.
pub(crate) fn settle(
    rx: &mpsc::Receiver<notify::Result<notify::Event>>,
    mut relevant: impl FnMut(notify::Result<notify::Event>) -> bool,
) {
    let give_up = Instant::now() + SETTLE_AT_MOST;
    let mut quiet_from = Instant::now();
    loop {
        let now = Instant::now();
        let quiet_until = (quiet_from + SETTLE).min(give_up);
        if now >= quiet_until {
            return;
        }
        match rx.recv_timeout(quiet_until - now) {
            Ok(event) => {
                if relevant(event) {
                    quiet_from = Instant::now();
                }
            }
            Err(_) => return,
        }
    }
}

fn reload(
    runtime: &Runtime,
    path: &Path,
    targets: &[Target],
    last: &mut HashMap<PathBuf, Vec<u8>>,
) {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(plugin = %path.display(), "reload: cannot read the new plugin ({e}); the running one stays");
            return;
        }
    };
    if last.get(path).is_some_and(|b| *b == bytes) {
        return;
    }
    let plugin = match runtime.load_bytes(path, &bytes) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("reload rejected: {e}; the running plugin stays");
            return;
        }
    };
    // Every pipeline's instance first, so a config one refuses swaps none.
    let mut ready = Vec::new();
    for t in targets {
        let tags = LogTags {
            pipeline: t.pipeline.name.clone(),
            plugin: plugin.name.clone(),
            capture: None,
        };
        match plugin.instantiate(&t.pipeline.plugin_config, &t.pipeline.limits, tags) {
            Ok(instance) => ready.push((t, instance)),
            Err(e) => {
                tracing::error!(pipeline = %t.pipeline.name, "reload rejected: {e}; the running plugin stays");
                return;
            }
        }
    }
    for (t, instance) in ready {
        if t.swap.send(instance).is_ok() {
            tracing::info!(pipeline = %t.pipeline.name, plugin = %plugin.name, world = %plugin.world(), "plugin reloaded");
        }
    }
    last.insert(path.to_path_buf(), bytes);
}
