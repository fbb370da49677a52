//! Paths of the guest components built by `tests/build.rs`: one constant per
//! fixture in `tests/fixtures` and per example plugin in `plugins/rust`, plus
//! `ALL` as (crate name, path) pairs.

// Each test picks the few components it needs.
#![allow(dead_code)]

include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));
