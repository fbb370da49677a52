//! Everything that talks to Kafka outside the delivery loops: the lazy
//! client proxies and their logging context ([`proxy`]), topic set-up
//! ([`topics`])
//! and the embedded mock broker of the quickstart ([`embedded`]).

pub mod embedded;
pub mod proxy;
pub mod topics;
