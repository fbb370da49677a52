//! What a config edit does to the running pipelines, decided before anything
//! is touched: a pure function of where each running pipeline is headed and
//! of the new config's pipelines, tested without a broker.
//!
//! A pipeline is compared with what it will run once the changes already
//! under way are done (its pending restart's settings, if one waits), not
//! with what runs now: an edit reverted before its restart happened must
//! restart with the reverted settings, never start the intermediate ones.
//! A pipeline already told to stop cannot be told to keep going (its loop
//! is draining), so any new settings for it, its current ones included,
//! become its pending restart.

use std::collections::{BTreeMap, HashMap};

use crate::config::Pipeline;

/// Where a running pipeline is headed.
#[derive(Debug, Clone, Copy)]
pub enum Course<'a> {
    /// Running, not asked to stop.
    Running(&'a Pipeline),
    /// Stopping; starts again with these settings once it has.
    Restarting(&'a Pipeline),
    /// Stopping for good (removed by an earlier edit).
    Stopping,
}

impl Course<'_> {
    /// The settings it runs once what is under way is done; none: gone.
    fn target(&self) -> Option<&Pipeline> {
        match self {
            Course::Running(spec) | Course::Restarting(spec) => Some(spec),
            Course::Stopping => None,
        }
    }
}

/// What happens to one pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Not running: start it with these settings.
    Start(Pipeline),
    /// Stop it (and forget any restart it waits for).
    Stop,
    /// Stop it if it runs, then start it with these settings; replaces a
    /// pending restart's settings.
    Restart(Pipeline),
    /// Leave it as it is, running or on its way.
    Stay,
}

/// A step for every pipeline that runs or is wanted, by name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub steps: BTreeMap<String, Step>,
}

impl Plan {
    /// Compares `running` (by name) with `wanted`, the new config's pipelines.
    pub fn new(running: &HashMap<&str, Course<'_>>, wanted: &[Pipeline]) -> Plan {
        let mut steps = BTreeMap::new();
        for spec in wanted {
            let step = match running.get(spec.name.as_str()) {
                None => Step::Start(spec.clone()),
                Some(course) if course.target() == Some(spec) => Step::Stay,
                Some(_) => Step::Restart(spec.clone()),
            };
            steps.insert(spec.name.clone(), step);
        }
        for (name, course) in running {
            if steps.contains_key(*name) {
                continue;
            }
            let step = match course {
                Course::Stopping => Step::Stay,
                Course::Running(_) | Course::Restarting(_) => Step::Stop,
            };
            steps.insert(name.to_string(), step);
        }
        Plan { steps }
    }

    /// The settings to load and instantiate before the plan is applied.
    pub fn to_start(&self) -> impl Iterator<Item = &Pipeline> {
        self.steps.values().filter_map(|step| match step {
            Step::Start(spec) | Step::Restart(spec) => Some(spec),
            Step::Stop | Step::Stay => None,
        })
    }

    /// The step for `name`; pipelines neither running nor wanted stay.
    pub fn step(&self, name: &str) -> &Step {
        self.steps.get(name).unwrap_or(&Step::Stay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, output: &str) -> Pipeline {
        Pipeline {
            name: name.into(),
            input: format!("{name}.in"),
            group: format!("weir-{name}"),
            output: output.into(),
            dead_letter: format!("{name}.dlq"),
            routes: Vec::new(),
            plugin: "p.wasm".into(),
            plugin_config: Vec::new(),
            limits: Default::default(),
            on_failure: Default::default(),
            breaker: Default::default(),
            max_in_flight: 1000,
            max_in_flight_bytes: 1 << 20,
            lanes: 1,
            order: Default::default(),
            topics: Default::default(),
            delivery: Default::default(),
            transaction: Default::default(),
        }
    }

    fn plan(running: &[(&str, Course<'_>)], wanted: &[Pipeline]) -> Plan {
        let running: HashMap<&str, Course<'_>> = running.iter().copied().collect();
        Plan::new(&running, wanted)
    }

    #[test]
    fn an_added_pipeline_starts() {
        let a = spec("a", "v1");
        let p = plan(&[], std::slice::from_ref(&a));
        assert_eq!(p.step("a"), &Step::Start(a.clone()));
        assert_eq!(p.to_start().collect::<Vec<_>>(), vec![&a]);
    }

    #[test]
    fn a_removed_pipeline_stops() {
        let a = spec("a", "v1");
        let p = plan(&[("a", Course::Running(&a))], &[]);
        assert_eq!(p.step("a"), &Step::Stop);
        assert_eq!(p.to_start().count(), 0);
    }

    #[test]
    fn a_changed_pipeline_restarts_with_the_new_settings() {
        let (a1, a2) = (spec("a", "v1"), spec("a", "v2"));
        let p = plan(&[("a", Course::Running(&a1))], std::slice::from_ref(&a2));
        assert_eq!(p.step("a"), &Step::Restart(a2));
    }

    #[test]
    fn an_unchanged_pipeline_stays_and_loads_nothing() {
        let (a, b) = (spec("a", "v1"), spec("b", "v1"));
        let b2 = spec("b", "v2");
        let p = plan(
            &[("a", Course::Running(&a)), ("b", Course::Running(&b))],
            &[a.clone(), b2.clone()],
        );
        assert_eq!(p.step("a"), &Step::Stay);
        assert_eq!(p.to_start().collect::<Vec<_>>(), vec![&b2]);
    }

    #[test]
    fn an_edit_reverted_while_its_restart_is_pending_restarts_with_the_reverted_settings() {
        // v1 runs and is stopping; v2 waits to start. The file says v1 again:
        // v2 must never start. v1's stop cannot be taken back, so v1 is
        // what starts once it has stopped.
        let (a1, a2) = (spec("a", "v1"), spec("a", "v2"));
        let p = plan(&[("a", Course::Restarting(&a2))], std::slice::from_ref(&a1));
        assert_eq!(p.step("a"), &Step::Restart(a1.clone()));
        assert_eq!(p.to_start().collect::<Vec<_>>(), vec![&a1]);
    }

    #[test]
    fn an_edit_changed_again_while_its_restart_is_pending_restarts_with_the_latest() {
        let (a2, a3) = (spec("a", "v2"), spec("a", "v3"));
        let p = plan(&[("a", Course::Restarting(&a2))], std::slice::from_ref(&a3));
        assert_eq!(p.step("a"), &Step::Restart(a3));
        // The same pending settings again: nothing to do.
        let p = plan(&[("a", Course::Restarting(&a2))], std::slice::from_ref(&a2));
        assert_eq!(p.step("a"), &Step::Stay);
        assert_eq!(p.to_start().count(), 0);
    }

    #[test]
    fn a_pipeline_removed_while_its_restart_is_pending_stops_for_good() {
        let a2 = spec("a", "v2");
        let p = plan(&[("a", Course::Restarting(&a2))], &[]);
        assert_eq!(p.step("a"), &Step::Stop);
    }

    #[test]
    fn a_pipeline_added_back_while_it_is_still_stopping_restarts() {
        let a = spec("a", "v1");
        let p = plan(&[("a", Course::Stopping)], std::slice::from_ref(&a));
        assert_eq!(p.step("a"), &Step::Restart(a));
        let p = plan(&[("a", Course::Stopping)], &[]);
        assert_eq!(p.step("a"), &Step::Stay, "already stopping");
    }
}
