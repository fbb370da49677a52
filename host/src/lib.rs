//! weir: runs Kafka pipelines through sandboxed WebAssembly plugins.
//!
//! [`config`] reads the file, [`plugin`] loads and calls components,
//! [`proxy`] holds lazy Kafka connections, [`pipeline`] runs them,
//! [`supervisor`] keeps the running pipelines in line with the config,
//! [`reload`] swaps in changed plugins, [`client`] is the library API,
//! [`cli`] is the `weir` command, [`testrun`] its offline test runner,
//! [`scaffold`] writes new plugin projects, [`metrics`] counts what the
//! pipelines do and [`admin`] serves it with `/health`.

pub mod admin;
pub mod cli;
pub mod client;
pub mod config;
pub mod embedded;
pub mod jsonl;
pub mod metrics;
pub mod pipeline;
pub mod plugin;
pub mod producers;
pub mod proxy;
pub mod reload;
pub mod scaffold;
pub mod supervisor;
pub mod testrun;
pub mod topics;
pub mod transactional;
