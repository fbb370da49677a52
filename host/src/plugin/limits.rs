//! Every bound the sandbox puts on a plugin, in one place: the defaults of
//! `[pipeline.limits]`, the per-call deadline in epoch ticks, the fuel a
//! call gets, the memory and table limiter, the resource table's cap, the
//! output caps and how much of a guest's stdout the host buffers.
//!
//! Invariants: a bound is enforced, not metered; breaking one is a typed
//! error naming what was asked and what the limit is; arithmetic on a bound
//! saturates, so a huge configured value means "as long as it takes", never
//! a wrapped-around short one. This file depends on nothing of the host but
//! the plugin's output type, so the config takes its defaults from here.

use std::time::Duration;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;

use crate::plugin::bindings::weir::plugin::types::Output;

/// Defaults of `[pipeline.limits]` (`config::Limits::default`).
pub mod defaults {
    use std::time::Duration;

    /// `timeout`: one `validate`/`transform` call.
    pub const TIMEOUT: Duration = Duration::from_millis(100);
    /// `init_timeout`: `init`, which may compile a schema.
    pub const INIT_TIMEOUT: Duration = Duration::from_secs(5);
    /// `memory`: the linear memory one instance may grow to.
    pub const MEMORY: u64 = 64 << 20;
    /// `fuel`: none, not metered.
    pub const FUEL: Option<u64> = None;
    /// `max_outputs`: outputs one `transform` call may return.
    pub const MAX_OUTPUTS: usize = 1000;
    /// `max_output_bytes`: key, value and header bytes of one call's outputs.
    pub const MAX_OUTPUT_BYTES: u64 = 16 << 20;
}

/// How often the epoch advances; a deadline is rounded up to it.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The longest deadline, in ticks. wasmtime adds the deadline to the
/// current epoch unchecked, and the epoch counts up from zero every
/// [`EPOCH_TICK`]: half the range is over a billion years of ticks, and
/// leaves the other half for the counter.
pub const MAX_TICKS: u64 = u64::MAX / 2;

/// Elements a wasm table (function references) may grow to.
pub const TABLE_ELEMENTS: usize = 1 << 20;

/// Entries (WASI streams, pollables, …) one instance's resource table may
/// hold at once; wasmtime's own default, made explicit.
pub const RESOURCE_TABLE_ENTRIES: usize = 1_000_000;

/// Fuel for `init` when the engine meters it: all there is, since `init`
/// may compile a schema; its deadline (`init_timeout`) bounds it instead.
pub const INIT_FUEL: u64 = u64::MAX;

/// Fuel for one call: `limits.fuel`; without one, all there is (the engine
/// meters fuel because another pipeline asked) and only the call's
/// deadline bounds it.
pub fn call_fuel(limit: Option<u64>) -> u64 {
    limit.unwrap_or(u64::MAX)
}

/// How many bytes a guest may hand to one stdout or stderr write.
pub const GUEST_WRITE_BYTES: usize = 64 << 10;

/// What a guest writes to stdout or stderr is cut into lines; a line longer
/// than this is cut too, so a guest that never writes a newline cannot make
/// the host buffer without end.
pub const GUEST_LINE_BYTES: usize = 8 << 10;

/// The epoch deadline for a call of at most `d`: rounded up to whole ticks,
/// plus one because the ticker may advance right after the deadline is set;
/// saturating at [`MAX_TICKS`], so a huge timeout never wraps to a short one.
pub fn epoch_ticks(d: Duration) -> u64 {
    let ticks = d.as_micros().div_ceil(EPOCH_TICK.as_micros());
    u64::try_from(ticks)
        .unwrap_or(u64::MAX)
        .max(1)
        .saturating_add(1)
        .min(MAX_TICKS)
}

/// An empty resource table with its cap.
pub fn resource_table() -> ResourceTable {
    let mut table = ResourceTable::new();
    table.set_max_capacity(RESOURCE_TABLE_ENTRIES);
    table
}

/// A memory grow the limiter refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "memory limit: the plugin asked to grow its memory from {current} to {requested} bytes; the limit is {max}"
)]
pub struct MemoryLimitExceeded {
    pub current: usize,
    pub requested: usize,
    pub max: usize,
}

/// A store's memory and table limiter. It also adds up the linear memory
/// it grants, which no wasmtime API reports for a component's inner modules.
pub struct StoreLimiter {
    memory_max: usize,
    /// Bytes granted to every memory of the store (each memory's creation is
    /// a grant from 0; memories never shrink). A grant that then fails (a
    /// module's declared maximum) still counts: weir's guests declare none.
    memory_granted: usize,
}

impl StoreLimiter {
    /// Linear memory may grow to `memory` bytes (`limits.memory`).
    pub fn new(memory: u64) -> Self {
        StoreLimiter {
            memory_max: usize::try_from(memory).unwrap_or(usize::MAX),
            memory_granted: 0,
        }
    }

    /// The linear memory of the store's instances, in bytes.
    pub fn memory_granted(&self) -> usize {
        self.memory_granted
    }
}

impl ResourceLimiter for StoreLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_max {
            return Err(MemoryLimitExceeded {
                current,
                requested: desired,
                max: self.memory_max,
            }
            .into());
        }
        self.memory_granted = self
            .memory_granted
            .saturating_add(desired.saturating_sub(current));
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENTS)
    }
}

/// Outputs past `max_outputs` or `max_output_bytes`.
#[derive(Debug, thiserror::Error)]
#[error("output limit: {0}")]
pub struct OutputLimitExceeded(String);

/// Checks a transformer's outputs against `max_outputs` and
/// `max_output_bytes`.
pub fn check_outputs(
    outputs: &[Output],
    max_outputs: usize,
    max_output_bytes: u64,
) -> Result<(), OutputLimitExceeded> {
    if outputs.len() > max_outputs {
        return Err(OutputLimitExceeded(format!(
            "the plugin returned {} outputs; the limit is {max_outputs}",
            outputs.len(),
        )));
    }
    let bytes: u64 = outputs
        .iter()
        .map(|o| {
            let len = |b: &Option<Vec<u8>>| b.as_ref().map_or(0, Vec::len) as u64;
            len(&o.key)
                + len(&o.value)
                + o.headers
                    .iter()
                    .map(|h| h.key.len() as u64 + len(&h.value))
                    .sum::<u64>()
        })
        .sum();
    if bytes > max_output_bytes {
        return Err(OutputLimitExceeded(format!(
            "the plugin's outputs hold {bytes} bytes; the limit is {max_output_bytes}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(value: &[u8]) -> Output {
        Output {
            topic: None,
            key: None,
            value: Some(value.to_vec()),
            headers: Vec::new(),
        }
    }

    #[test]
    fn the_memory_limiter_names_current_requested_and_max() {
        let mut limiter = StoreLimiter::new(1 << 20);
        assert!(limiter.memory_growing(0, 1 << 20, None).unwrap());
        let e = limiter.memory_growing(1 << 20, 2 << 20, None).unwrap_err();
        let m = e.downcast_ref::<MemoryLimitExceeded>().unwrap();
        assert_eq!((m.current, m.requested, m.max), (1 << 20, 2 << 20, 1 << 20));
        assert!(!limiter.table_growing(0, TABLE_ELEMENTS + 1, None).unwrap());
    }

    #[test]
    fn the_limiter_adds_up_what_it_grants_to_every_memory() {
        let mut limiter = StoreLimiter::new(1 << 20);
        limiter.memory_growing(0, 64 << 10, None).unwrap();
        limiter.memory_growing(0, 128 << 10, None).unwrap();
        limiter.memory_growing(64 << 10, 256 << 10, None).unwrap();
        limiter
            .memory_growing(256 << 10, 2 << 20, None)
            .unwrap_err();
        assert_eq!(limiter.memory_granted(), (128 + 256) << 10);
    }

    #[test]
    fn ticks_round_up_and_saturate_on_a_huge_timeout() {
        assert_eq!(epoch_ticks(Duration::ZERO), 2);
        assert_eq!(epoch_ticks(Duration::from_millis(100)), 21);
        assert_eq!(epoch_ticks(Duration::from_micros(5_001)), 3);
        assert_eq!(epoch_ticks(Duration::MAX), MAX_TICKS);
        // The longest timeout the config accepts: its ticks overflow a u64.
        let huge = crate::config::parse_duration("18000000000000000000s").unwrap();
        assert_eq!(epoch_ticks(huge), MAX_TICKS);
        let just_below = EPOCH_TICK * u32::MAX;
        assert!(epoch_ticks(just_below) < MAX_TICKS);
        assert!(epoch_ticks(just_below) > u64::from(u32::MAX));
    }

    #[test]
    fn output_caps_count_outputs_and_bytes() {
        let two = [output(b"abc"), output(b"de")];
        assert!(check_outputs(&two, 2, 5).is_ok());
        let e = check_outputs(&two, 1, 5).unwrap_err();
        assert!(e.to_string().contains("2 outputs; the limit is 1"), "{e}");
        let e = check_outputs(&two, 2, 4).unwrap_err();
        assert!(e.to_string().contains("5 bytes; the limit is 4"), "{e}");
    }
}
