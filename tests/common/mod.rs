//! Builders shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use llm_autoscaler::config::{self, Fleet};
use llm_autoscaler::model::{Instance, LifecycleState, Sample, Snapshot, Timestamp};

/// 2026-11-28T12:00:00Z plus `secs`.
pub fn t(secs: i64) -> Timestamp {
    Timestamp::from_secs(1_795_867_200 + secs)
}

/// A fleet from a TOML fragment placed after `[[fleets]]` (name, pools given unless overridden).
pub fn fleet(body: &str) -> Fleet {
    let text = format!(
        "[[fleets]]\nname = \"f\"\n{body}\n[[fleets.pools]]\nname = \"od\"\nmarket = \"on-demand\"\ninstance_types = [{{ type = \"g6.xlarge\" }}]\n"
    );
    let cfg = config::parse_str("test.toml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    cfg.fleets.into_iter().next().unwrap()
}

/// A fleet with one metric `m` of the given signal and target, and bounds 1..=1000.
pub fn fleet_with_metric(signal: &str, target: &str, extra: &str) -> Fleet {
    fleet(&format!(
        "min_units = 1\nmax_units = 1000\n{extra}\n[[fleets.metrics]]\nname = \"m\"\nsignal = \"{signal}\"\ntarget = {target}\n"
    ))
}

/// An instance with an optional sample of metric `m` taken at `at`.
pub fn inst(i: usize, state: LifecycleState, value: Option<f64>, at: Timestamp) -> Instance {
    let mut samples = BTreeMap::new();
    if let Some(v) = value {
        samples.insert("m".to_string(), Sample { value: v, at });
    }
    Instance {
        id: format!("i-{i}"),
        pool: "od".into(),
        weight_units: 1,
        state,
        samples,
        load: None,
    }
}

/// A snapshot with `desired` units and one in-service instance per value (`None` = no sample).
pub fn snap(desired: u32, values: &[Option<f64>], now: Timestamp) -> Snapshot {
    Snapshot {
        desired_units: desired,
        instances: values
            .iter()
            .enumerate()
            .map(|(i, v)| inst(i, LifecycleState::InService, *v, now))
            .collect(),
        fleet_metrics: BTreeMap::new(),
        pool_desired_units: BTreeMap::new(),
        pool_failed_launches: BTreeMap::new(),
        ..Snapshot::default()
    }
}

/// Sets fleet metric `m`.
pub fn with_fleet_metric(mut s: Snapshot, value: f64, at: Timestamp) -> Snapshot {
    s.fleet_metrics.insert("m".into(), Sample { value, at });
    s
}
