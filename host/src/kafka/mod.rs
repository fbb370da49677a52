//! Everything that talks to Kafka outside the delivery loops: the lazy
//! client proxies and their logging context ([`proxy`]), topic set-up
//! ([`topics`]), records as bytes both ways ([`record`]), reading a topic
//! outside any pipeline ([`scan`])
//! and the embedded mock broker of the quickstart ([`embedded`]).

pub mod embedded;
pub mod proxy;
pub mod record;
pub mod scan;
pub mod topics;
