//! What an operator reads while weir runs: the counters ([`metrics`]) and
//! the HTTP endpoint that serves them with `/health` ([`admin`]).

pub mod admin;
pub mod metrics;
