//! weir's integration tests, one binary: the plugin runtime against every
//! fixture, the `weir` command, and end-to-end runs on a real broker.

mod broker;
mod cli;
mod compose;
mod conformance;
mod dlq;
mod exactly_once;
mod fixtures;
mod hostile;
mod kafka;
mod lanes;
mod languages;
mod library;
mod logs;
mod metrics;
mod plugins;
mod policy;
mod reload;
mod scaffold;
mod scaling;
mod security;
mod soak;
mod stalls;
mod support;
mod topics;
