//! The plugin runtime: the one `bindgen!`, the process-wide engine, loading
//! and checking components, and calling them within hard limits.
//!
//! Lifetimes: one [`Runtime`] (engine, linker, epoch ticker) per process; one
//! [`Plugin`] (compiled component + pre-instantiation) per `.wasm`, built and
//! type-checked before the first message; one [`Instance`] (a `Store` and
//! its exports) per pipeline, reused across calls. A call that traps or hits
//! a limit poisons the instance: [`Instance::call`] then drops it and builds
//! a fresh one from the pre-instantiation, re-running `init`.
//!
//! Plugins get WASI with nothing behind it: no preopened directories, no
//! environment, no arguments, no sockets, an empty stdin. Their stdout,
//! stderr and `log` calls become host log lines tagged with pipeline and plugin.

pub mod limits;
pub mod producers;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, InstancePre, Linker, ResourceTable};
use wasmtime::{Cache, CacheConfig, Config as EngineConfig, Engine, ResourceLimiter, Store, Trap};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::config::Limits;
use crate::plugin::limits::{EPOCH_TICK, GUEST_LINE_BYTES, StoreLimiter, epoch_ticks};
pub use crate::plugin::limits::{MemoryLimitExceeded, OutputLimitExceeded};
use crate::plugin::producers::Producers;

mod bindings;

use bindings::exports::weir::plugin::{transformer, validator};
pub use bindings::weir::plugin::log::Level;
pub use bindings::weir::plugin::types::{Error as PluginReject, Header, Message, Output};

/// Which of the two worlds a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    Validator,
    Transformer,
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            World::Validator => "validator",
            World::Transformer => "transformer",
        })
    }
}

/// Why a plugin could not be loaded, instantiated or initialised.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot read the plugin: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a WebAssembly component: {message}")]
    Compile { path: PathBuf, message: String },
    #[error(
        "{path}: the component implements neither weir world: it must export \
         `weir:plugin/validator@0.1.0` (init, validate) or `weir:plugin/transformer@0.1.0` \
         (init, transform); it exports {exports}"
    )]
    WrongWorld { path: PathBuf, exports: String },
    #[error("{path}: the component needs an import the host does not provide: {message}")]
    Link { path: PathBuf, message: String },
    #[error("{plugin}: init rejected its config: {reason}")]
    InitRejected { plugin: String, reason: String },
    #[error("{plugin}: init failed: {reason}")]
    InitTrapped { plugin: String, reason: String },
    #[error(
        "{plugin}: `limits.fuel` is set, but this engine meters no fuel: weir turns metering on \
         only when a pipeline sets `limits.fuel` at start, so a fuel limit added while running \
         needs a restart of weir (a library user builds the runtime with `Runtime::with_fuel`)"
    )]
    FuelNotMetered { plugin: String },
}

/// What one call of a plugin came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A validator accepted the message: produce it unchanged.
    Accepted,
    /// A transformer's outputs; empty drops the message.
    Outputs(Vec<Output>),
    /// The message breaks the contract: dead-letter, never retry.
    Invalid(String),
    /// The plugin could not process it.
    Failed(String),
    /// The call did not finish: trap, deadline or memory limit.
    Aborted(Abort),
}

/// A call that did not return; the instance was replaced.
#[derive(Debug, Clone, PartialEq)]
pub struct Abort {
    pub kind: AbortKind,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbortKind {
    Trap,
    Timeout,
    Memory,
    Fuel,
    OutputLimit,
}

impl AbortKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AbortKind::Trap => "trap",
            AbortKind::Timeout => "timeout",
            AbortKind::Memory => "memory",
            AbortKind::Fuel => "fuel",
            AbortKind::OutputLimit => "output-limit",
        }
    }
}

/// One line a plugin wrote, through `log` or stdout/stderr.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GuestLine {
    /// "stdout", "stderr" or the log level.
    pub source: &'static str,
    pub line: String,
}

/// Who a plugin's lines belong to, and whether to keep them for the caller.
#[derive(Debug, Clone, Default)]
pub struct LogTags {
    pub pipeline: String,
    pub plugin: String,
    /// When set, lines are also kept here (for `weir test`).
    pub capture: Option<Arc<Mutex<Vec<GuestLine>>>>,
}

/// The message a plugin call on this thread is handling, so that what the
/// guest logs names it (topic, partition, offset) at any log level. A
/// thread-local because the guest's log and stdout reach the host through
/// callbacks that only see the store; the call runs on the caller's thread.
struct CallPlace {
    active: bool,
    topic: String,
    partition: i32,
    offset: i64,
}

thread_local! {
    static PLACE: std::cell::RefCell<CallPlace> = const {
        std::cell::RefCell::new(CallPlace { active: false, topic: String::new(), partition: 0, offset: 0 })
    };
}

/// Clears the place when the call ends, a panic included.
struct PlaceGuard;

impl Drop for PlaceGuard {
    fn drop(&mut self) {
        PLACE.with_borrow_mut(|p| p.active = false);
    }
}

/// Marks `msg` as the one being handled until the guard drops. The topic
/// is copied only when it changes (one per pipeline): no allocation per call.
fn enter_place(msg: &Message) -> PlaceGuard {
    PLACE.with_borrow_mut(|p| {
        if p.topic != msg.topic {
            p.topic.clear();
            p.topic.push_str(&msg.topic);
        }
        p.partition = msg.partition;
        p.offset = msg.offset;
        p.active = true;
    });
    PlaceGuard
}

/// Runs `f` with the current message's topic, partition and offset (all
/// none outside a call, e.g. in `init`).
fn with_place<R>(f: impl FnOnce(Option<&str>, Option<i32>, Option<i64>) -> R) -> R {
    PLACE.with_borrow(|p| {
        if p.active {
            f(Some(&p.topic), Some(p.partition), Some(p.offset))
        } else {
            f(None, None, None)
        }
    })
}

impl LogTags {
    fn emit(&self, source: &'static str, line: &str) {
        let (pipeline, plugin) = (&self.pipeline, &self.plugin);
        with_place(|topic, partition, offset| match source {
            "trace" => {
                tracing::trace!(target: "weir::guest", pipeline, plugin, topic, partition, offset, "{line}")
            }
            "debug" => {
                tracing::debug!(target: "weir::guest", pipeline, plugin, topic, partition, offset, "{line}")
            }
            "warn" | "stderr" => {
                tracing::warn!(target: "weir::guest", pipeline, plugin, topic, partition, offset, source, "{line}")
            }
            "error" => {
                tracing::error!(target: "weir::guest", pipeline, plugin, topic, partition, offset, "{line}")
            }
            _ => {
                tracing::info!(target: "weir::guest", pipeline, plugin, topic, partition, offset, source, "{line}")
            }
        });
        if let Some(capture) = &self.capture
            && let Ok(mut lines) = capture.lock()
        {
            lines.push(GuestLine {
                source,
                line: line.to_string(),
            });
        }
    }
}

/// The process-wide engine and linker.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    fuel: bool,
}

impl Runtime {
    /// Builds the engine (component model, epoch interruption) and starts
    /// its ticker, which stops when the last clone of the engine is dropped.
    pub fn new() -> anyhow::Result<Runtime> {
        Runtime::build(false)
    }

    /// As [`Runtime::new`], metering fuel: needed when any pipeline sets
    /// `limits.fuel` (metering slows every call a little, so only then).
    pub fn with_fuel() -> anyhow::Result<Runtime> {
        Runtime::build(true)
    }

    /// As [`Runtime::new`], compiling every component afresh: what a first
    /// start costs (the benchmarks measure it).
    pub fn without_cache() -> anyhow::Result<Runtime> {
        Runtime::build_with(false, false)
    }

    fn build(fuel: bool) -> anyhow::Result<Runtime> {
        Runtime::build_with(fuel, true)
    }

    fn build_with(fuel: bool, cached: bool) -> anyhow::Result<Runtime> {
        let mut config = EngineConfig::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .consume_fuel(fuel);
        if cached {
            match compile_cache() {
                Ok(cache) => {
                    config.cache(Some(cache));
                }
                Err(e) => tracing::warn!("compiling without a cache: {e:#}"),
            }
        }
        let engine = Engine::new(&config).map_err(anyhow::Error::from)?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("weir-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        bindings::weir::plugin::log::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |s| s)?;
        Ok(Runtime {
            engine,
            linker: Arc::new(linker),
            fuel,
        })
    }

    /// Compiles the component at `path` and checks which world it implements.
    pub fn load(&self, path: &Path) -> Result<Arc<Plugin>, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        self.load_bytes(path, &bytes)
    }

    /// As [`Runtime::load`], from bytes already read; `path` names them.
    pub fn load_bytes(&self, path: &Path, bytes: &[u8]) -> Result<Arc<Plugin>, LoadError> {
        let started = Instant::now();
        let component = Component::new(&self.engine, bytes).map_err(|e| LoadError::Compile {
            path: path.to_path_buf(),
            message: format!("{e:#}"),
        })?;
        let compiled_in = started.elapsed();
        let exports = describe_exports(&component, &self.engine);
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link {
                path: path.to_path_buf(),
                message: format!("{e:#}"),
            })?;
        let exports_of = if let Ok(indices) = validator::GuestIndices::new(&pre) {
            Exports::Validator(indices)
        } else if let Ok(indices) = transformer::GuestIndices::new(&pre) {
            Exports::Transformer(indices)
        } else {
            return Err(LoadError::WrongWorld {
                path: path.to_path_buf(),
                exports,
            });
        };
        Ok(Arc::new(Plugin {
            path: path.to_path_buf(),
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            size: bytes.len(),
            producers: Producers::read(bytes),
            compiled_in,
            pre,
            exports: exports_of,
            fuel: self.fuel,
        }))
    }
}

/// Compiled components keyed by the wasm's hash and the engine's settings,
/// so a restart does not compile again: `$WEIR_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/weir/compiled`, else `~/.cache/weir/compiled`.
fn compile_cache() -> anyhow::Result<Cache> {
    let dir = match (
        std::env::var_os("WEIR_CACHE_DIR"),
        std::env::var_os("XDG_CACHE_HOME"),
        std::env::var_os("HOME"),
    ) {
        (Some(d), _, _) => PathBuf::from(d),
        (None, Some(x), _) => PathBuf::from(x).join("weir/compiled"),
        (None, None, Some(h)) => PathBuf::from(h).join(".cache/weir/compiled"),
        (None, None, None) => {
            anyhow::bail!("neither WEIR_CACHE_DIR, XDG_CACHE_HOME nor HOME is set")
        }
    };
    std::fs::create_dir_all(&dir)?;
    let mut config = CacheConfig::new();
    config.with_directory(dir);
    Ok(Cache::new(config)?)
}

fn describe_exports(component: &Component, engine: &Engine) -> String {
    let names: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| format!("`{name}`"))
        .collect();
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}

#[derive(Clone)]
enum Exports {
    Validator(validator::GuestIndices),
    Transformer(transformer::GuestIndices),
}

/// A compiled, linked and type-checked plugin, ready to instantiate.
pub struct Plugin {
    pub path: PathBuf,
    /// The file name, as logs and dead letters name the plugin.
    pub name: String,
    /// The component's size in bytes.
    pub size: usize,
    /// Its language and toolchain, as its producers sections say.
    pub producers: Producers,
    /// How long compiling took.
    pub compiled_in: Duration,
    pre: InstancePre<HostState>,
    exports: Exports,
    /// Whether the engine meters fuel.
    fuel: bool,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("path", &self.path)
            .field("world", &self.world())
            .finish()
    }
}

impl Plugin {
    pub fn world(&self) -> World {
        match self.exports {
            Exports::Validator(_) => World::Validator,
            Exports::Transformer(_) => World::Transformer,
        }
    }

    /// A fresh instance with `init(config)` done.
    pub fn instantiate(
        self: &Arc<Self>,
        config: &[(String, String)],
        limits: &Limits,
        tags: LogTags,
    ) -> Result<Instance, LoadError> {
        // A limit nothing enforces is worse than none: refuse it.
        if limits.fuel.is_some() && !self.fuel {
            return Err(LoadError::FuelNotMetered {
                plugin: self.name.clone(),
            });
        }
        let mut instance = Instance {
            store: self.new_store(limits, tags.clone()),
            guest: None,
            plugin: Arc::clone(self),
            config: config.to_vec(),
            limits: limits.clone(),
            tags,
            replaced: 0,
            started_with: 0,
        };
        instance.start()?;
        instance.started_with = instance.memory();
        Ok(instance)
    }

    fn new_store(&self, limits: &Limits, tags: LogTags) -> Store<HostState> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(GuestOutput {
            tags: tags.clone(),
            source: "stdout",
        })
        .stderr(GuestOutput {
            tags: tags.clone(),
            source: "stderr",
        })
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
        let state = HostState {
            wasi: wasi.build(),
            table: limits::resource_table(),
            limiter: StoreLimiter::new(limits.memory),
            tags,
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.limiter as &mut dyn ResourceLimiter);
        store
    }
}

enum Guest {
    Validator(validator::Guest),
    Transformer(transformer::Guest),
}

/// A live plugin instance with its own store; not shared between threads.
pub struct Instance {
    store: Store<HostState>,
    guest: Option<Guest>,
    plugin: Arc<Plugin>,
    config: Vec<(String, String)>,
    limits: Limits,
    tags: LogTags,
    replaced: u64,
    /// Memory right after the last start (instantiation and `init`).
    started_with: usize,
}

impl fmt::Debug for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instance")
            .field("plugin", &self.plugin)
            .field("replaced", &self.replaced)
            .finish()
    }
}

impl Instance {
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// How many times a trap or limit made this instance start afresh.
    pub fn replacements(&self) -> u64 {
        self.replaced
    }

    /// Bytes of linear memory the instance holds now (every module's inside
    /// the component), counted since it last started.
    pub fn memory(&self) -> usize {
        self.store.data().limiter.memory_granted()
    }

    /// Instantiates into the current store and runs `init`.
    fn start(&mut self) -> Result<(), LoadError> {
        let trapped = |e: wasmtime::Error| LoadError::InitTrapped {
            plugin: self.plugin.name.clone(),
            reason: format!("{e:#}"),
        };
        // Start functions run during instantiation: they fall under init's deadline.
        self.store
            .set_epoch_deadline(epoch_ticks(self.limits.init_timeout));
        if self.plugin.fuel {
            let _ = self.store.set_fuel(limits::INIT_FUEL);
        }
        let instance = self
            .plugin
            .pre
            .instantiate(&mut self.store)
            .map_err(trapped)?;
        let guest = match &self.plugin.exports {
            Exports::Validator(i) => {
                Guest::Validator(i.load(&mut self.store, &instance).map_err(trapped)?)
            }
            Exports::Transformer(i) => {
                Guest::Transformer(i.load(&mut self.store, &instance).map_err(trapped)?)
            }
        };
        let result = match &guest {
            Guest::Validator(g) => g.call_init(&mut self.store, &self.config),
            Guest::Transformer(g) => g.call_init(&mut self.store, &self.config),
        };
        match result {
            Ok(Ok(())) => {
                self.guest = Some(guest);
                Ok(())
            }
            Ok(Err(reason)) => Err(LoadError::InitRejected {
                plugin: self.plugin.name.clone(),
                reason,
            }),
            Err(e) => {
                let abort = classify(&e, &self.limits);
                Err(LoadError::InitTrapped {
                    plugin: self.plugin.name.clone(),
                    reason: format!("{}: {}", abort.kind.as_str(), abort.reason),
                })
            }
        }
    }

    /// Replaces a poisoned instance with a fresh one from the same component.
    fn replace(&mut self) -> Result<(), LoadError> {
        self.replaced += 1;
        self.guest = None;
        self.store = self.plugin.new_store(&self.limits, self.tags.clone());
        self.start()?;
        self.started_with = self.memory();
        Ok(())
    }

    /// A guest that leaks (a toolchain's per-call garbage: componentize-js
    /// and componentize-py both have some) would reach the memory limit and
    /// fail a valid message. Past half-way from its start to the limit, the
    /// instance is replaced between two calls instead, counted as a
    /// replacement (wasmtime `serve` recycles instances for the same reason).
    fn recycle_if_leaking(&mut self) {
        let limit = usize::try_from(self.limits.memory).unwrap_or(usize::MAX);
        let now = self.memory();
        let threshold = self.started_with + limit.saturating_sub(self.started_with) / 2;
        if now <= threshold {
            return;
        }
        tracing::info!(
            pipeline = %self.tags.pipeline,
            plugin = %self.plugin.name,
            "instance memory {} KiB (limit {} KiB, {} KiB after start): replacing the instance between calls",
            now >> 10,
            limit >> 10,
            self.started_with >> 10
        );
        if let Err(e) = self.replace() {
            tracing::error!(pipeline = %self.tags.pipeline, "cannot restart the plugin: {e}");
        }
    }

    /// Hands `msg` to the plugin within the call deadline and memory limit.
    pub fn call(&mut self, msg: &Message) -> Outcome {
        let _place = enter_place(msg);
        if self.guest.is_none()
            && let Err(e) = self.replace()
        {
            return Outcome::Failed(format!("the plugin could not be restarted: {e}"));
        }
        self.store
            .set_epoch_deadline(epoch_ticks(self.limits.timeout));
        self.refuel(self.limits.fuel);
        let result = match self.guest.as_ref() {
            Some(Guest::Validator(g)) => g
                .call_validate(&mut self.store, msg)
                .map(|r| r.map(|()| Outcome::Accepted)),
            Some(Guest::Transformer(g)) => g
                .call_transform(&mut self.store, msg)
                .map(|r| r.map(Outcome::Outputs)),
            None => unreachable!("replaced above"),
        };
        let result = result.and_then(|r| match r {
            Ok(Outcome::Outputs(outputs)) => check_outputs(outputs, &self.limits).map(Ok),
            other => Ok(other),
        });
        let outcome = match result {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(PluginReject::Invalid(reason))) => Outcome::Invalid(reason),
            Ok(Err(PluginReject::Failed(reason))) => Outcome::Failed(reason),
            Err(e) => {
                let abort = classify(&e, &self.limits);
                tracing::warn!(
                    pipeline = %self.tags.pipeline,
                    plugin = %self.plugin.name,
                    topic = %msg.topic,
                    partition = msg.partition,
                    offset = msg.offset,
                    kind = abort.kind.as_str(),
                    "the plugin call was aborted ({}); replacing the instance",
                    abort.reason
                );
                if let Err(e) = self.replace() {
                    tracing::error!(pipeline = %self.tags.pipeline, "cannot restart the plugin: {e}");
                }
                return Outcome::Aborted(abort);
            }
        };
        self.recycle_if_leaking();
        outcome
    }
}

impl Instance {
    /// Fuel for the next call, when the engine meters it.
    fn refuel(&mut self, limit: Option<u64>) {
        if self.plugin.fuel {
            // Only fails when the engine does not meter fuel.
            let _ = self.store.set_fuel(limits::call_fuel(limit));
        }
    }
}

/// A transformer's outputs, or the limit they break as an error.
fn check_outputs(outputs: Vec<Output>, limits: &Limits) -> wasmtime::Result<Outcome> {
    limits::check_outputs(&outputs, limits.max_outputs, limits.max_output_bytes)?;
    Ok(Outcome::Outputs(outputs))
}

fn classify(e: &wasmtime::Error, limits: &Limits) -> Abort {
    if let Some(m) = e.downcast_ref::<MemoryLimitExceeded>() {
        return Abort {
            kind: AbortKind::Memory,
            reason: m.to_string(),
        };
    }
    if let Some(o) = e.downcast_ref::<OutputLimitExceeded>() {
        return Abort {
            kind: AbortKind::OutputLimit,
            reason: o.to_string(),
        };
    }
    if let Some(Trap::OutOfFuel) = e.downcast_ref::<Trap>() {
        return Abort {
            kind: AbortKind::Fuel,
            reason: format!(
                "the call burned all of its {} fuel",
                limits::call_fuel(limits.fuel)
            ),
        };
    }
    if let Some(Trap::Interrupt) = e.downcast_ref::<Trap>() {
        return Abort {
            kind: AbortKind::Timeout,
            reason: format!("the call ran longer than its {:?} deadline", limits.timeout),
        };
    }
    Abort {
        kind: AbortKind::Trap,
        reason: format!("{e:#}").replace('\n', " "),
    }
}

struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: StoreLimiter,
    tags: LogTags,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl bindings::weir::plugin::log::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        let source = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.tags.emit(source, &message);
    }
}

impl bindings::weir::plugin::types::Host for HostState {}

/// A guest's stdout or stderr, turned into log lines.
struct GuestOutput {
    tags: LogTags,
    source: &'static str,
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineWriter {
            tags: self.tags.clone(),
            source: self.source,
            pending: Vec::new(),
        })
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(tokio::io::sink())
    }
}

struct LineWriter {
    tags: LogTags,
    source: &'static str,
    pending: Vec<u8>,
}

impl LineWriter {
    fn emit_pending(&mut self) {
        if !self.pending.is_empty() {
            let line = String::from_utf8_lossy(&self.pending).into_owned();
            self.tags.emit(self.source, line.trim_end_matches('\r'));
            self.pending.clear();
        }
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.emit_pending();
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for LineWriter {
    fn write(&mut self, bytes: bytes::Bytes) -> Result<(), StreamError> {
        for &b in bytes.iter() {
            if b == b'\n' {
                self.emit_pending();
            } else {
                self.pending.push(b);
                if self.pending.len() >= GUEST_LINE_BYTES {
                    self.emit_pending();
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(limits::GUEST_WRITE_BYTES)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}
