//! weir: runs Kafka pipelines through sandboxed WebAssembly plugins.
//!
//! A folder per concern, each opening with what it owns:
//! - [`config`] reads and checks the file;
//! - [`plugin`] loads components and calls them within hard limits;
//! - [`kafka`] holds the lazy Kafka clients and topic set-up;
//! - [`delivery`] moves each message from the input through the plugin to
//!   the output or the dead-letter topic, at least once or exactly once;
//! - [`supervisor`] keeps the running pipelines in line with the config and
//!   swaps in changed plugins;
//! - [`ops`] counts what the pipelines do and serves it with `/health`;
//! - [`cli`] is the `weir` command, its offline test runner and scaffolding;
//! - [`client`] is the library API, the Python origin's producer and consumer.

// Data from outside (config, records, plugins, brokers) never meets an
// `unwrap` or `expect`: `tests/run.sh` runs clippy with this on.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod cli;
pub mod client;
pub mod config;
pub mod delivery;
pub mod kafka;
pub mod ops;
pub mod plugin;
pub mod supervisor;
