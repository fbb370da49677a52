//! Delivery: a consumed message goes through the plugin and every record it
//! causes reaches Kafka before its offset counts as done.
//!
//! [`at_least_once`] and [`exactly_once`] are the two loops.

pub mod at_least_once;
pub mod exactly_once;
