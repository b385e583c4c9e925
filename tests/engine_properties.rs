//! Properties of the engine over random fleets, snapshots and histories: the result is always
//! within [min, max]; no scale-down while any metric is stale or invalid; same input, same
//! decision; the predictive floor only ever raises capacity, and `forecast_only` never acts.

mod common;

use std::collections::BTreeMap;

use common::*;
use llm_autoscaler::config::Fleet;
use llm_autoscaler::engine::{decide, ConditionType, EngineState};
use llm_autoscaler::model::{DemandForecast, Instance, LifecycleState, Sample, Snapshot};
use llm_autoscaler::policy::hpa::MetricStatus;
use proptest::prelude::*;

fn policy(min: u32, span: u32, down_window: u64, panic: bool) -> Fleet {
    policy_with(min, span, down_window, panic, "")
}

fn policy_with(min: u32, span: u32, down_window: u64, panic: bool, extra: &str) -> Fleet {
    fleet(&format!(
        "min_units = {min}\nmax_units = {}\non_demand_base_units = 1\n{extra}\n\
         [[fleets.pools]]\nname = \"spot\"\nmarket = \"spot\"\ninstance_types = [{{ type = \"g6.xlarge\" }}]\n\
         [[fleets.metrics]]\nname = \"m\"\nsignal = \"queue_depth\"\ntarget = {{ type = \"AverageValue\", average_value = 5 }}\n\
         [[fleets.metrics]]\nname = \"kv\"\nsignal = \"kv_cache_usage\"\ntarget = {{ type = \"Utilization\", average_utilization = 80 }}\n\
         [[fleets.metrics]]\nname = \"sqs\"\nsignal = \"external_queue_depth\"\ntarget = {{ type = \"AverageValue\", average_value = 10 }}\n\
         [fleets.behavior.scale_down]\nstabilization_window_secs = {down_window}\n[fleets.panic]\nenabled = {panic}\n",
        min + span
    ))
}

fn arb_state() -> impl Strategy<Value = LifecycleState> {
    prop_oneof![
        6 => Just(LifecycleState::InService),
        2 => Just(LifecycleState::Pending),
        1 => Just(LifecycleState::Draining),
        1 => Just(LifecycleState::Interrupted),
    ]
}

/// A sample: fresh, stale (age > 60 s), absent, or garbage.
fn arb_sample() -> impl Strategy<Value = Option<(f64, i64)>> {
    prop_oneof![
        6 => (0.0..200.0f64, 0i64..30).prop_map(Some),
        1 => (0.0..200.0f64, 61i64..1000).prop_map(Some),
        1 => Just(None),
        1 => Just(Some((f64::NAN, 0))),
    ]
}

fn arb_snapshot() -> impl Strategy<Value = Snapshot> {
    (
        0u32..80,
        prop::collection::vec(
            (
                arb_state(),
                1u32..3,
                arb_sample(),
                arb_sample(),
                any::<bool>(),
            ),
            0..40,
        ),
        arb_sample(),
        0u64..50,
    )
        .prop_map(|(desired, insts, sqs, spot_failures)| {
            let now = t(0);
            let at = |age: i64| now.plus_secs(-(age as f64));
            let instances = insts
                .into_iter()
                .enumerate()
                .map(|(i, (state, w, q, kv, on_spot))| {
                    let mut samples = BTreeMap::new();
                    if let Some((v, age)) = q {
                        samples.insert(
                            "m".into(),
                            Sample {
                                value: v,
                                at: at(age),
                            },
                        );
                    }
                    if let Some((v, age)) = kv {
                        samples.insert(
                            "kv".into(),
                            Sample {
                                value: v.min(100.0),
                                at: at(age),
                            },
                        );
                    }
                    Instance {
                        id: format!("i-{i}"),
                        pool: if on_spot { "spot" } else { "od" }.into(),
                        weight_units: w,
                        state,
                        samples,
                        load: None,
                    }
                })
                .collect();
            let mut fleet_metrics = BTreeMap::new();
            if let Some((v, age)) = sqs {
                fleet_metrics.insert(
                    "sqs".into(),
                    Sample {
                        value: v * 10.0,
                        at: at(age),
                    },
                );
            }
            Snapshot {
                desired_units: desired,
                instances,
                fleet_metrics,
                pool_desired_units: BTreeMap::new(),
                pool_failed_launches: BTreeMap::from([("spot".to_string(), spot_failures)]),
                ..Snapshot::default()
            }
        })
}

/// A history produced by the engine itself over random earlier snapshots, 45 s apart, so that
/// it often reaches past the fresh-start hold and the stabilization windows.
fn history(f: &Fleet, earlier: &[Snapshot]) -> EngineState {
    let mut state = EngineState::default();
    for (i, s) in earlier.iter().enumerate() {
        let when = t(-45 * (earlier.len() - i) as i64);
        let (_, st) = decide(f, s, &state, when);
        state = st;
    }
    state
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn decisions_stay_within_bounds_and_never_scale_down_on_bad_data(
        min in 0u32..10, span in 1u32..60, down_window in prop_oneof![3 => Just(0u64), 1 => Just(60), 1 => Just(300)],
        panic in any::<bool>(),
        earlier in prop::collection::vec(arb_snapshot(), 0..10),
        snap in arb_snapshot(),
    ) {
        let f = policy(min, span, down_window, panic);
        let state = history(&f, &earlier);
        let (d, next) = decide(&f, &snap, &state, t(0));
        prop_assert!(d.desired_units >= f.min_units && d.desired_units <= f.max_units,
            "{} outside [{}, {}]: {}", d.desired_units, f.min_units, f.max_units, d.summary);
        // The pools may exceed the decided capacity only by on-demand's cover for spot that is
        // not in service, and never past max_units.
        let pools_total: u32 = d.pools.iter().map(|p| p.desired_units).sum();
        prop_assert!(pools_total >= d.desired_units.min(f.max_units) || d.condition(ConditionType::MarketFallback).is_some(),
            "pools {:?} below the decision {}", d.pools, d.desired_units);
        prop_assert!(pools_total <= f.max_units, "pools {:?} past max {}", d.pools, f.max_units);
        if d.condition(ConditionType::MarketFallback).is_none() {
            prop_assert_eq!(pools_total, d.desired_units);
        }

        let any_invalid = d.metrics.iter().any(|m| matches!(m.status, MetricStatus::Invalid(_)));
        let current_in_bounds = d.current_units >= f.min_units && d.current_units <= f.max_units;
        if any_invalid && current_in_bounds {
            prop_assert!(d.desired_units >= d.current_units,
                "scaled down {} → {} with an invalid metric: {}", d.current_units, d.desired_units, d.summary);
        }
        // The engine's capacity is the observation, unless placement applied something to the
        // pools itself (a cover), which it takes back out.
        if d.current_units != snap.desired_units {
            prop_assert!(!state.market.applied.is_empty(), "{}", d.summary);
        }

        // Same input, same output — decision and state.
        let (d2, next2) = decide(&f, &snap, &state, t(0));
        prop_assert_eq!(&d, &d2);
        prop_assert_eq!(&next, &next2);
        // The state is a plain value: it survives a JSON round trip and decides the same.
        let restored: EngineState = serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
        prop_assert_eq!(decide(&f, &snap, &restored, t(0)).0, d);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn the_forecast_floor_only_raises_and_forecast_only_never_acts(
        min in 0u32..10, span in 1u32..60, panic in any::<bool>(),
        earlier in prop::collection::vec(arb_snapshot(), 0..8),
        snap in arb_snapshot(),
        upper in prop::collection::vec(0.0..2000.0f64, 1..20),
        start_mins in -10i64..5,
    ) {
        let predictive = |mode: &str| format!(
            "[fleets.predictive]\nmode = \"{mode}\"\ndemand_per_unit = 50\nlead_secs = 240\n"
        );
        let reactive = policy(min, span, 300, panic);
        let scale = policy_with(min, span, 300, panic, &predictive("forecast_and_scale"));
        let only = policy_with(min, span, 300, panic, &predictive("forecast_only"));
        let state = history(&reactive, &earlier);
        let mut snap = snap;
        snap.forecast = Some(DemandForecast { start: t(start_mins * 60), point: upper.clone(), upper });
        let (r, _) = decide(&reactive, &snap, &state, t(0));
        let (s, _) = decide(&scale, &snap, &state, t(0));
        let (o, _) = decide(&only, &snap, &state, t(0));
        prop_assert!(s.desired_units >= r.desired_units,
            "the floor lowered capacity: {} < {}: {}", s.desired_units, r.desired_units, s.summary);
        prop_assert!(s.desired_units <= scale.max_units);
        let step = s.predictive.clone().expect("predictive step");
        match step.floor_units {
            Some(floor) if step.applied => {
                prop_assert!(s.desired_units >= floor.min(scale.max_units), "{}", s.summary);
            }
            // No forecast reaches the lead, or no rise ahead: reactive only.
            _ => prop_assert_eq!(s.desired_units, r.desired_units, "{}", s.summary),
        }
        prop_assert_eq!(o.desired_units, r.desired_units, "forecast_only acted: {}", o.summary);
        prop_assert_eq!(&o.pools, &r.pools);
        prop_assert!(!o.predictive.as_ref().unwrap().applied);
    }
}
