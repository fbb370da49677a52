//! Delivery: a consumed message goes through the plugin, and every record
//! it causes reaches Kafka before its offset counts as done.
//!
//! The way of a message: [`intake`] receives it from the consumer as bytes
//! ([`records::Input`]); [`step`] swaps in a reloaded plugin, calls it under
//! the failure [`policy`] and turns the verdict into [`records::Record`]s;
//! the loop ([`at_least_once`] or [`exactly_once`]) keeps it in the ordered
//! [`window`] until its records are acknowledged (or its transaction
//! commits: delivery reports find their record by [`tickets`]), then
//! stores its offset and has the step count it. The loops
//! share everything but how progress is committed, and never call each other.

pub mod at_least_once;
pub mod exactly_once;
pub mod intake;
pub mod lanes;
pub mod policy;
pub mod records;
pub mod step;
pub mod tickets;
pub mod window;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;

use crate::config::{self, Kafka, Pipeline};
use crate::ops::metrics::Stats;
use crate::plugin::Instance;

pub use intake::StopAt;

/// Runs one pipeline in its delivery mode until `shutdown` turns true (or
/// `stop_at` is reached), then finishes what is in flight and disconnects.
pub async fn run(
    spec: Pipeline,
    kafka: Kafka,
    bootstrap: String,
    instance: Instance,
    shutdown: watch::Receiver<bool>,
    stop_at: Option<StopAt>,
    swaps: Option<UnboundedReceiver<Instance>>,
) -> anyhow::Result<Stats> {
    match spec.delivery {
        config::Delivery::ExactlyOnce => {
            exactly_once::run(spec, kafka, bootstrap, instance, shutdown, stop_at, swaps).await
        }
        config::Delivery::AtLeastOnce => {
            at_least_once::run(spec, kafka, bootstrap, instance, shutdown, stop_at, swaps).await
        }
    }
}
