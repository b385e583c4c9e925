//! The spot fallback: on-demand covers spot capacity not in service from the decision in which
//! failed spot launches become visible, never pushes the pools past max, keeps covering until
//! spot has delivered and the hold has passed, and the engine's own capacity ignores the cover.

mod common;

use std::collections::BTreeMap;

use common::*;
use llm_autoscaler::config::{self, Fleet};
use llm_autoscaler::controller::{FleetController, PoolOutcome};
use llm_autoscaler::engine::{decide, ConditionType, Decision, EngineState, Reason};
use llm_autoscaler::model::{Instance, LifecycleState, Sample, Snapshot, Timestamp};

fn fleet_od_spot(max: u32) -> Fleet {
    fleet_od_spot_with(max, "", false, 0)
}

/// 2 on-demand base units + spot, queue depth 10 per unit, a 300 s fallback hold; `keys` are
/// more fleet keys, `panic` turns Knative's panic mode on, `warm` instances are kept in the
/// on-demand pool's warm pool.
fn fleet_od_spot_with(max: u32, keys: &str, panic: bool, warm: u32) -> Fleet {
    let text = format!(
        "[[fleets]]\nname = \"f\"\nmin_units = 2\nmax_units = {max}\non_demand_base_units = 2\nspot_fallback_hold_secs = 300\n{keys}\n\
         [[fleets.pools]]\nname = \"od\"\nmarket = \"on-demand\"\ninstance_types = [{{ type = \"g6.xlarge\" }}]\n\
         warm_pool = {{ min_size = {warm} }}\n\
         [[fleets.pools]]\nname = \"spot\"\nmarket = \"spot\"\ninstance_types = [{{ type = \"g6.xlarge\" }}]\n\
         [[fleets.metrics]]\nname = \"m\"\nsignal = \"queue_depth\"\ntarget = {{ type = \"AverageValue\", average_value = 10 }}\n\
         [fleets.panic]\nenabled = {panic}\n"
    );
    config::parse_str("f.toml", &text).unwrap().fleets.remove(0)
}

/// `od` + `spot` instances in service sharing `waiting` queued requests (10 per unit is the
/// target, so `waiting / 10` units are wanted); pools' desired as given.
fn snap(
    od: u32,
    spot: u32,
    waiting: f64,
    pool_desired: (u32, u32),
    spot_failures: u64,
    now: Timestamp,
) -> Snapshot {
    let load = waiting / (od + spot) as f64;
    let inst = |i: u32, pool: &str| Instance {
        id: format!("{pool}-{i}"),
        pool: pool.into(),
        weight_units: 1,
        state: LifecycleState::InService,
        samples: BTreeMap::from([(
            "m".to_string(),
            Sample {
                value: load,
                at: now,
            },
        )]),
        load: None,
    };
    Snapshot {
        desired_units: pool_desired.0 + pool_desired.1,
        instances: (0..od)
            .map(|i| inst(i, "od"))
            .chain((0..spot).map(|i| inst(i, "spot")))
            .collect(),
        fleet_metrics: BTreeMap::new(),
        pool_desired_units: BTreeMap::from([
            ("od".to_string(), pool_desired.0),
            ("spot".to_string(), pool_desired.1),
        ]),
        pool_failed_launches: BTreeMap::from([("spot".to_string(), spot_failures)]),
        ..Snapshot::default()
    }
}

/// Ten minutes of decisions at 10 units — 2 on-demand + 8 spot, all in service, load at
/// target: the state a running engine has before each test's event.
fn settled(f: &Fleet) -> EngineState {
    let mut state = EngineState::default();
    for secs in (-600..=0).step_by(15) {
        state = decide(f, &snap(2, 8, 100.0, (2, 8), 0, t(secs)), &state, t(secs)).1;
    }
    state
}

fn pools(d: &Decision) -> (u32, u32) {
    let get = |n: &str| d.pools.iter().find(|p| p.pool == n).unwrap().desired_units;
    (get("od"), get("spot"))
}

#[test]
fn fallback_covers_at_once_caps_at_max_and_returns_only_after_delivery_and_hold() {
    let f = fleet_od_spot(40);
    let state = settled(&f);
    // Load doubles: the engine asks for 20 units, 18 on spot.
    let (d, st) = decide(&f, &snap(2, 8, 200.0, (2, 8), 0, t(15)), &state, t(15));
    assert_eq!((d.desired_units, pools(&d)), (20, (2, 18)));
    assert!(d.condition(ConditionType::MarketFallback).is_none());
    // Next tick the spot group reports 3 failed launches: on-demand covers the 10 spot units
    // not in service in this very decision; spot keeps its target.
    let (d, st) = decide(&f, &snap(2, 8, 200.0, (2, 18), 3, t(30)), &st, t(30));
    assert_eq!(
        d.condition(ConditionType::MarketFallback).map(|c| c.reason),
        Some(Reason::SpotLaunchesFailing),
        "{}",
        d.summary
    );
    assert_eq!(
        d.desired_units, 20,
        "the fleet's own capacity ignores the cover: {}",
        d.summary
    );
    assert_eq!(pools(&d), (12, 18));
    // Still failing, on-demand partly in: the cover tracks spot in service, not booting.
    let (d, st) = decide(&f, &snap(6, 8, 200.0, (12, 18), 5, t(45)), &st, t(45));
    assert_eq!(
        d.current_units, 20,
        "the pools hold 30, of which 10 are the cover: {}",
        d.summary
    );
    assert_eq!(
        (d.desired_units, pools(&d)),
        (20, (12, 18)),
        "{}",
        d.summary
    );
    // A pool changed by anyone else is taken as observed; each pool is judged on its own: the
    // on-demand pool still holds the 12 the engine set (10 of them cover), the spot pool was
    // set to 20 by someone else.
    let (d_ext, _) = decide(&f, &snap(6, 8, 200.0, (12, 20), 5, t(45)), &st, t(45));
    assert_eq!(d_ext.current_units, 2 + 20);
    // Spot recovers and delivers, but the hold (300 s since the last failure) has not passed.
    let (d, st) = decide(&f, &snap(12, 18, 200.0, (12, 18), 5, t(200)), &st, t(200));
    assert!(
        d.condition(ConditionType::MarketFallback).is_some(),
        "{}",
        d.summary
    );
    assert_eq!(pools(&d).0, 2, "spot is in service: nothing left to cover");
    // After the hold, with spot delivered, the fallback ends.
    let (d, _) = decide(&f, &snap(2, 18, 200.0, (2, 18), 5, t(400)), &st, t(400));
    assert!(
        d.condition(ConditionType::MarketFallback).is_none(),
        "{}",
        d.summary
    );
    assert_eq!(pools(&d), (2, 18));
}

#[test]
fn at_max_the_cover_comes_out_of_the_spot_target() {
    let f = fleet_od_spot(20);
    let mut state = EngineState::default();
    for secs in (-600..=0).step_by(15) {
        state = decide(
            &f,
            &snap(2, 18, 200.0, (2, 18), 0, t(secs)),
            &state,
            t(secs),
        )
        .1;
    }
    // 10 spot instances were interrupted and cannot be replaced; load wants more than max.
    let (d, _) = decide(&f, &snap(2, 8, 300.0, (2, 18), 4, t(15)), &state, t(15));
    assert_eq!(d.desired_units, 20);
    let (od, spot) = pools(&d);
    assert_eq!(od + spot, 20, "never past max_units: {:?}", d.pools);
    assert_eq!(
        (od, spot),
        (12, 8),
        "spot keeps what it has in service, on-demand the rest"
    );
}

#[test]
fn a_fresh_engine_takes_existing_failures_as_its_baseline() {
    let f = fleet_od_spot(40);
    let (d, st) = decide(
        &f,
        &snap(2, 8, 100.0, (2, 8), 57, t(0)),
        &EngineState::default(),
        t(0),
    );
    assert!(d.condition(ConditionType::MarketFallback).is_none());
    let (d, _) = decide(&f, &snap(2, 8, 100.0, (2, 8), 58, t(15)), &st, t(15));
    assert!(
        d.condition(ConditionType::MarketFallback).is_some(),
        "a new failure after the baseline counts"
    );
}

#[test]
fn an_interruption_notice_raises_on_demand_in_the_same_decision() {
    let f = fleet_od_spot(40);
    let state = settled(&f);
    // Two spot instances get the two-minute notice: their capacity is gone at once, and
    // on-demand covers it in this very decision while the spot group replaces them.
    let mut s = snap(2, 8, 100.0, (2, 8), 0, t(15));
    for i in s.instances.iter_mut().filter(|i| i.pool == "spot").take(2) {
        i.state = LifecycleState::Interrupted;
    }
    let (d, st) = decide(&f, &s, &state, t(15));
    assert_eq!(
        d.condition(ConditionType::MarketFallback).map(|c| c.reason),
        Some(Reason::SpotInterrupted),
        "{}",
        d.summary
    );
    assert_eq!(pools(&d), (4, 8), "{}", d.summary);
    assert_eq!(d.cover.as_ref().map(|c| c.warned_units), Some(2));
    // Still warned, replacements booting: the cover stays, exactly the warned units.
    let mut s = snap(4, 6, 100.0, (4, 8), 0, t(60));
    for i in 0..2 {
        s.instances.push(Instance {
            id: format!("spot-{}", 6 + i),
            pool: "spot".into(),
            weight_units: 1,
            state: LifecycleState::Interrupted,
            samples: BTreeMap::new(),
            load: None,
        });
        s.instances.push(Instance {
            id: format!("spot-new-{i}"),
            pool: "spot".into(),
            weight_units: 1,
            state: LifecycleState::Pending,
            samples: BTreeMap::new(),
            load: None,
        });
    }
    let (d, st) = decide(&f, &s, &st, t(60));
    assert_eq!((d.desired_units, pools(&d)), (10, (4, 8)), "{}", d.summary);
    // Reclaimed, and their replacements in service: the cover ends at once, no hold to sit
    // out, and the fleet is back to its size.
    let (d, _) = decide(&f, &snap(4, 8, 100.0, (4, 8), 0, t(200)), &st, t(200));
    assert_eq!((d.desired_units, pools(&d)), (10, (2, 8)), "{}", d.summary);
    assert!(
        d.condition(ConditionType::MarketFallback).is_none(),
        "{}",
        d.summary
    );
}

#[test]
fn spot_headroom_follows_seen_interruptions_and_stays_out_of_the_fleets_capacity() {
    let f = fleet_od_spot_with(40, "spot_headroom_max_fraction = 0.25", false, 0);
    // Two quiet hours at 10 units (2 on-demand + 8 spot): no headroom without a notice.
    let mut st = EngineState::default();
    for secs in (-7200..=0).step_by(15) {
        let (d, next) = decide(&f, &snap(2, 8, 100.0, (2, 8), 0, t(secs)), &st, t(secs));
        assert_eq!(d.spot_headroom_units, 0);
        st = next;
    }
    // A spot instance is warned: 1 notice in 16 spot unit-hours; over a 300 s cold start,
    // 8 × 1/16 × 1/12 = 0.04 units expected lost: one spare spot unit.
    let mut s = snap(2, 8, 100.0, (2, 8), 0, t(15));
    s.instances
        .iter_mut()
        .find(|i| i.pool == "spot")
        .unwrap()
        .state = LifecycleState::Interrupted;
    let (d, st) = decide(&f, &s, &st, t(15));
    assert_eq!(d.spot_headroom_units, 1, "{}", d.summary);
    assert_eq!(
        d.condition(ConditionType::SpotHeadroom).map(|c| c.reason),
        Some(Reason::InterruptionRisk)
    );
    let spot = d
        .pools
        .iter()
        .find(|p| p.pool == "spot")
        .unwrap()
        .desired_units;
    assert_eq!(spot, 9, "{:?}", d.pools);
    // The next decision sees the pools at what it set: its own capacity is still 10.
    let od = d
        .pools
        .iter()
        .find(|p| p.pool == "od")
        .unwrap()
        .desired_units;
    let (d, _) = decide(&f, &snap(od, 9, 100.0, (od, 9), 0, t(30)), &st, t(30));
    assert_eq!(
        d.current_units, 10,
        "cover and headroom excluded: {}",
        d.summary
    );
    assert_eq!(
        d.spot_headroom_units, 1,
        "the risk is remembered: {}",
        d.summary
    );
}

#[test]
fn a_burst_lands_on_the_warm_on_demand_instances_while_spot_boots() {
    // 6 warm on-demand instances: a burst is covered up to 6 units — more would be cold
    // on-demand launches, no faster than the spot launches they cover.
    let f = fleet_od_spot_with(40, "burst_on_demand = true", true, 6);
    let state = settled(&f);
    // Demand triples (3× in-service ≥ the 2× threshold): panic takes capacity to 30 at once;
    // a burst that may drain by the next decision is not covered yet.
    let (d, st) = decide(&f, &snap(2, 8, 300.0, (2, 8), 0, t(15)), &state, t(15));
    assert_eq!(d.desired_units, 30, "{}", d.summary);
    assert!(
        d.condition(ConditionType::MarketFallback).is_none(),
        "{}",
        d.summary
    );
    assert_eq!(pools(&d), (2, 28), "{}", d.summary);
    // Still bursting a decision later: on-demand covers 6 of the 20 spot units that take a
    // cold start; the fleet's own capacity is 30, the cover excluded.
    let (d, st) = decide(&f, &snap(2, 8, 300.0, (2, 28), 0, t(30)), &st, t(30));
    assert_eq!(d.current_units, 30, "{}", d.summary);
    assert_eq!(
        d.condition(ConditionType::MarketFallback).map(|c| c.reason),
        Some(Reason::BurstOnOnDemand),
        "{}",
        d.summary
    );
    assert_eq!(pools(&d), (8, 28), "{}", d.summary);
    // Spot delivers 24 of its 28 units (demand steady at 10 per instance): the cover shrinks
    // to the 4 spot still lacks.
    let (d, st) = decide(&f, &snap(2, 24, 260.0, (8, 28), 0, t(200)), &st, t(200));
    assert_eq!(pools(&d), (6, 28), "{}", d.summary);
    // Spot has delivered and the hold (300 s) has passed since the burst: the cover ends.
    let (d, _) = decide(&f, &snap(2, 28, 300.0, (6, 28), 0, t(400)), &st, t(400));
    assert!(
        d.condition(ConditionType::MarketFallback).is_none(),
        "{}",
        d.summary
    );
    assert_eq!(pools(&d), (2, 28));
}

#[test]
fn growth_after_a_burst_is_bought_on_spot_alone() {
    let f = fleet_od_spot_with(60, "burst_on_demand = true", true, 6);
    let state = settled(&f);
    // The burst of the test above: panic takes capacity to 30, the second decision covers 6
    // of the 20 spot units booting.
    let (_, st) = decide(&f, &snap(2, 8, 300.0, (2, 8), 0, t(15)), &state, t(15));
    let (d, st) = decide(&f, &snap(2, 8, 300.0, (2, 28), 0, t(30)), &st, t(30));
    assert_eq!(pools(&d), (8, 28), "{}", d.summary);
    // Spot delivers 24 of its 28: the cover falls to the 4 spot still owes.
    let (d, st) = decide(&f, &snap(2, 24, 260.0, (8, 28), 0, t(200)), &st, t(200));
    assert_eq!(pools(&d), (6, 28), "{}", d.summary);
    // Within the hold, the load keeps rising under the panic threshold: the fleet grows, and
    // more spot is not in service than the warm pool could cover. That growth came after the
    // burst, at the rise's own pace: spot buys it, and the cover stays at the 4 the burst
    // still owes (it covered all 6 the warm pool holds before).
    let (d, st) = decide(&f, &snap(2, 24, 360.0, (6, 28), 0, t(215)), &st, t(215));
    let grown = d.desired_units;
    assert!(grown >= 36, "{}", d.summary);
    assert_eq!(
        d.condition(ConditionType::MarketFallback).map(|c| c.reason),
        Some(Reason::SpotNotDelivered),
        "{}",
        d.summary
    );
    assert_eq!(pools(&d), (6, grown - 2), "{}", d.summary);
    // Spot delivers it all: the cover ends once the hold has passed since the burst.
    let spot = grown - 2;
    let (d, _) = decide(
        &f,
        &snap(2, spot, 10.0 * grown as f64, (6, spot), 0, t(400)),
        &st,
        t(400),
    );
    assert!(
        d.condition(ConditionType::MarketFallback).is_none(),
        "{}",
        d.summary
    );
    assert_eq!(pools(&d), (2, spot), "{}", d.summary);
}

/// A spot group whose MaxSize is below spot's share: the group bounds send the rest to
/// on-demand, and that part is no spot shortfall — a failed launch covers only the spot the
/// group could hold and did not, and the episode ends once the hold has passed.
#[test]
fn spot_held_back_by_its_groups_max_size_is_not_covered_again() {
    let f = fleet_od_spot(20);
    let bounded = |mut s: Snapshot| {
        s.pool_group_bounds = BTreeMap::from([(
            "spot".to_string(),
            llm_autoscaler::model::GroupBounds {
                min_units: 0,
                max_units: 4,
            },
        )]);
        s
    };
    // 10 units wanted, 8 on spot by the split, of which the group holds 4: on-demand runs 6.
    let mut state = EngineState::default();
    for secs in (-600..=0).step_by(15) {
        let snap = bounded(snap(6, 4, 100.0, (6, 4), 0, t(secs)));
        state = decide(&f, &snap, &state, t(secs)).1;
    }
    // From here the spot group has reported 3 failed launches.
    let failing = |od: u32, spot: u32, desired: (u32, u32), secs: i64, st: &EngineState| {
        let now = t(secs);
        decide(
            &f,
            &bounded(snap(od, spot, 100.0, desired, 3, now)),
            st,
            now,
        )
    };
    // Spot holds what its group can: nothing is owed, nothing covered.
    let (d, st) = failing(6, 4, (6, 4), 15, &state);
    assert_eq!(d.desired_units, 10, "{}", d.summary);
    assert_eq!(pools(&d), (6, 4), "{}", d.summary);
    // One spot instance is lost: on-demand covers that one, and ends once it is back and the
    // hold has passed.
    let (d, st) = failing(6, 3, (6, 4), 30, &st);
    assert_eq!(pools(&d), (7, 4), "{}", d.summary);
    let (d, _) = failing(6, 4, (7, 4), 400, &st);
    let cover = d.condition(ConditionType::MarketFallback);
    assert!(cover.is_none(), "{}", d.summary);
    assert_eq!(pools(&d), (6, 4), "{}", d.summary);
}

#[test]
fn failed_launches_during_a_burst_take_the_whole_shortfall() {
    let f = fleet_od_spot_with(60, "burst_on_demand = true", true, 6);
    let state = settled(&f);
    // The same burst while spot launches fail: warm or cold, on-demand is the only way in.
    let (d, _) = decide(&f, &snap(2, 8, 300.0, (2, 8), 3, t(15)), &state, t(15));
    assert_eq!(d.desired_units, 30, "{}", d.summary);
    assert_eq!(pools(&d), (22, 28), "{}", d.summary);
}

#[test]
fn a_burst_gone_by_the_next_decision_is_not_covered() {
    let f = fleet_od_spot_with(40, "burst_on_demand = true", true, 6);
    let state = settled(&f);
    // A one-decision spike, then demand is back under the threshold (50 waiting: 5 units'
    // worth against 10 in service): panic holds capacity, but no on-demand is started for it.
    let (_, st) = decide(&f, &snap(2, 8, 300.0, (2, 8), 0, t(15)), &state, t(15));
    let (d, _) = decide(&f, &snap(2, 8, 50.0, (2, 28), 0, t(30)), &st, t(30));
    assert!(
        d.condition(ConditionType::MarketFallback).is_none(),
        "{}",
        d.summary
    );
    assert_eq!(pools(&d).0, 2, "{}", d.summary);
}

/// A plan that moves capacity from one pool to another raises first when the raise fits under
/// `max_units`, and a failed raise leaves the capacity it was to replace in place: the lower
/// is skipped. At `max_units` it lowers first, as it must, and a failed lower skips the raise.
/// (2 on-demand base units, spot the rest; the pools hold 5 + 10, 15 units wanted → 2 + 13.)
#[test]
fn a_swap_between_pools_raises_first_and_a_failed_raise_keeps_what_it_replaces() {
    type Row = (
        &'static str,
        u32,
        [Result<(), &'static str>; 2],
        [&'static str; 2],
        [Option<PoolOutcome>; 2],
    );
    let failed = |w: &str| Some(PoolOutcome::Failed(w.to_string()));
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("room: both applied", 40, [Ok(()), Ok(())], ["spot", "od"], [Some(PoolOutcome::Applied), Some(PoolOutcome::Applied)]),
        ("room: the raise fails, the lower waits", 40, [Err("spot: capacity"), Ok(())], ["spot", "od"], [failed("spot: capacity"), Some(PoolOutcome::SkippedUnderPlan)]),
        ("at max: lowers first", 15, [Ok(()), Ok(())], ["od", "spot"], [Some(PoolOutcome::Applied), Some(PoolOutcome::Applied)]),
        ("at max: the lower fails, the raise waits", 15, [Err("od: throttled"), Ok(())], ["od", "spot"], [failed("od: throttled"), Some(PoolOutcome::SkippedOverMax)]),
    ];
    let mut failures = Vec::new();
    for (name, max, results, order, want) in rows {
        let f = fleet_od_spot(max);
        let s = snap(5, 10, 150.0, (5, 10), 0, t(0));
        let plan = FleetController::new(EngineState::default()).plan(&f, &s, t(0), false);
        assert_eq!(
            pools(&plan.decision),
            (2, 13),
            "{name}: {}",
            plan.decision.summary
        );
        let got_order: Vec<&str> = plan.changes.iter().map(|c| c.pool.as_str()).collect();
        let mut applier = plan.applier(&s.pool_desired_units);
        let mut results = results.into_iter();
        while applier.next_change().is_some() {
            applier.report(results.next().unwrap().map_err(str::to_string));
        }
        let outcome = applier.finish();
        let got: Vec<Option<PoolOutcome>> = order
            .iter()
            .map(|p| {
                outcome
                    .changes
                    .iter()
                    .find(|(c, _)| c.pool == *p)
                    .map(|(_, o)| o.clone())
            })
            .collect();
        if got_order != order || got != want {
            failures.push(format!("{name}: order {got_order:?}, outcomes {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A swap that also shrinks the fleet — the pools hold 6 on-demand + 4 spot, 8 units are
/// wanted, 2 + 6 by the split — raises spot first. When that raise fails, the on-demand lower
/// goes only to the plan's total (6 → 4): the 2 units the plan shed go, the 2 the spot raise
/// was to replace stay. The state kept counts the pool at 4, all its own; the next plan
/// swaps the rest (4 + 4 → 2 + 6) and, with every call answered, holds 8.
#[test]
fn a_shrinking_swap_whose_raise_fails_still_sheds_the_plans_excess() {
    let f = fleet_od_spot(40);
    let mut state = EngineState::default();
    for secs in (-600..=0).step_by(15) {
        state = decide(&f, &snap(6, 4, 80.0, (6, 4), 0, t(secs)), &state, t(secs)).1;
    }
    let mut ctl = FleetController::new(state);
    let s = snap(6, 4, 80.0, (6, 4), 0, t(15));
    let plan = ctl.plan(&f, &s, t(15), false);
    assert_eq!(pools(&plan.decision), (2, 6), "{}", plan.decision.summary);
    let mut applier = plan.applier(&s.pool_desired_units);
    let mut sent = Vec::new();
    while let Some(c) = applier.next_change() {
        sent.push((c.pool.clone(), c.from_units, c.to_units));
        applier.report(if c.pool == "spot" {
            Err("spot: throttled".into())
        } else {
            Ok(())
        });
    }
    assert_eq!(
        sent,
        [("spot".to_string(), 4, 6), ("od".to_string(), 6, 4)],
        "raised first; the lower stops at the plan's total"
    );
    let outcome = applier.finish();
    let od = outcome
        .changes
        .iter()
        .find(|(c, _)| c.pool == "od")
        .unwrap();
    assert_eq!(od.1, PoolOutcome::LoweredInPart { planned_units: 2 });
    assert_eq!(od.0.to_units, 4, "the change reported is the one set");
    ctl.commit(&f, &plan, &outcome);

    let s = snap(4, 4, 80.0, (4, 4), 0, t(30));
    let plan = ctl.plan(&f, &s, t(30), false);
    assert_eq!(
        (plan.decision.current_units, pools(&plan.decision)),
        (8, (2, 6)),
        "{}",
        plan.decision.summary
    );
    let mut applier = plan.applier(&s.pool_desired_units);
    while applier.next_change().is_some() {
        applier.report(Ok(()));
    }
    assert!(applier.finish().all_applied());
}

/// With `Launch` suspended on the spot group (an operator's `SuspendProcesses`), spot is held
/// at the 8 units it has and on-demand takes the rise: 20 units wanted, 2 + 18 by the split,
/// become 12 + 8, and the condition says why. No cover is started: spot owes nothing it was
/// asked for.
#[test]
fn a_spot_group_with_launch_suspended_is_held_and_on_demand_takes_the_rise() {
    let f = fleet_od_spot(40);
    let state = settled(&f);
    let mut s = snap(2, 8, 200.0, (2, 8), 0, t(15));
    s.pool_suspended_processes
        .insert("spot".into(), vec!["Launch".into()]);
    let (d, _) = decide(&f, &s, &state, t(15));
    assert_eq!((d.desired_units, pools(&d)), (20, (12, 8)), "{}", d.summary);
    let held = d
        .condition(ConditionType::GroupBounds)
        .expect("a GroupBounds condition");
    assert_eq!(held.reason, Reason::ClampedToGroupMax);
    assert!(
        held.message.contains("Launch suspended"),
        "{}",
        held.message
    );
    assert!(
        d.condition(ConditionType::MarketFallback).is_none(),
        "{}",
        d.summary
    );
}

#[test]
fn spot_headroom_sizes_on_the_fleets_default_lead_until_cold_starts_are_seen() {
    // (fleet keys after spot_headroom_max_fraction, spare spot units). Three of 8 spot units
    // warned after two quiet hours: 3 notices in 16 spot unit-hours. Over the lead, 8 × 3/16
    // × lead/3600 units are expected lost: 0.125 at 300 s (one spare unit), 1.5 at 3,600 s
    // (two). No cold start has been seen, so the lead is `default_lead_secs` — the one
    // ramp-ahead and the predictive floor size on too — or 300 s without the table.
    let table = [
        ("", 1),
        ("[fleets.predictive]\ndemand_per_unit = 100\n", 1),
        (
            "[fleets.predictive]\ndemand_per_unit = 100\ndefault_lead_secs = 3600\n",
            2,
        ),
    ];
    for (keys, want) in table {
        let f = fleet_od_spot_with(
            40,
            &format!("spot_headroom_max_fraction = 0.5\n{keys}"),
            false,
            0,
        );
        let mut st = EngineState::default();
        for secs in (-7200..=0).step_by(15) {
            let (_, next) = decide(&f, &snap(2, 8, 100.0, (2, 8), 0, t(secs)), &st, t(secs));
            st = next;
        }
        let mut s = snap(2, 8, 100.0, (2, 8), 0, t(15));
        for i in s.instances.iter_mut().filter(|i| i.pool == "spot").take(3) {
            i.state = LifecycleState::Interrupted;
        }
        let (d, _) = decide(&f, &s, &st, t(15));
        assert_eq!(d.spot_headroom_units, want, "{keys:?}: {}", d.summary);
    }
}
