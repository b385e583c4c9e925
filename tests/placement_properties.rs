//! Market placement under random interruption and reclaim sequences (issue 11's done-when),
//! through the fleet controller as the daemon runs it, against a small model of two Auto
//! Scaling Groups with AWS's semantics: a warned spot instance stays in its group (and counts
//! toward its desired capacity) until EC2 reclaims it two minutes later; a group above its
//! desired capacity terminates instances of *its* choosing — here a random one, warned or not,
//! since AWS's termination policy does not prefer the warned one; a group below it launches,
//! and a launch serves after a cold start.
//!
//! Properties, at every tick: the pools' total never exceeds `max_units`, not even between two
//! pool changes; a spot target never falls below the healthy spot units in service; the cover
//! never exceeds the warned units; the fleet's own capacity stays the size its metrics want.
//! After the last reclaim the pools come back to the fleet's own markets — within a hold
//! period, plus one cold start per unit the cover had to take out of spot to fit under
//! `max_units` (at the ceiling a unit can only move back to spot once its replacement serves:
//! there is no room to overlap more, and swapping faster would open a gap). At `max_units`
//! itself on-demand keeps a warned unit's place while the fleet stays there.

use std::collections::BTreeMap;

use llm_autoscaler::config::{self, Fleet};
use llm_autoscaler::controller::FleetController;
use llm_autoscaler::engine::EngineState;
use llm_autoscaler::model::{Instance, LifecycleState, Sample, Snapshot, Timestamp};
use proptest::prelude::*;

const TICK_SECS: f64 = 15.0;
/// Ticks from a launch to in service (a 75 s start).
const BOOT_TICKS: u32 = 5;
/// Ticks from a warning to the reclaim (two minutes).
const RECLAIM_TICKS: u32 = 8;
const HOLD_SECS: u64 = 120;

fn fleet(max: u32, base: u32) -> Fleet {
    let text = format!(
        "[[fleets]]\nname = \"f\"\nmin_units = 2\nmax_units = {max}\non_demand_base_units = {base}\n\
         spot_fallback_hold_secs = {HOLD_SECS}\n\
         [[fleets.pools]]\nname = \"od\"\nmarket = \"on-demand\"\ninstance_types = [{{ type = \"g6e.xlarge\" }}]\n\
         [[fleets.pools]]\nname = \"spot\"\nmarket = \"spot\"\ninstance_types = [{{ type = \"g6e.xlarge\" }}]\n\
         [[fleets.metrics]]\nname = \"q\"\nsignal = \"external_queue_depth\"\ntarget = {{ type = \"AverageValue\", average_value = 5 }}\n\
         [fleets.panic]\nenabled = false\n"
    );
    config::parse_str("p.toml", &text).unwrap().fleets.remove(0)
}

#[derive(Clone, Debug)]
struct Vm {
    id: String,
    pool: &'static str,
    /// Ticks until in service (0: in service).
    booting: u32,
    /// Ticks until reclaimed, once warned.
    warned: Option<u32>,
}

/// Two groups with AWS's semantics.
struct Cloud {
    desired: BTreeMap<&'static str, u32>,
    vms: Vec<Vm>,
    next_id: u32,
    rng: u64,
}

impl Cloud {
    fn new(od: u32, spot: u32, seed: u64) -> Cloud {
        let mut c = Cloud {
            desired: BTreeMap::from([("od", od), ("spot", spot)]),
            vms: Vec::new(),
            next_id: 0,
            rng: seed | 1,
        };
        for (pool, n) in [("od", od), ("spot", spot)] {
            for _ in 0..n {
                c.launch(pool, 0);
            }
        }
        c
    }

    fn random(&mut self, n: usize) -> usize {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % n as u64) as usize
    }

    fn launch(&mut self, pool: &'static str, booting: u32) {
        self.next_id += 1;
        self.vms.push(Vm {
            id: format!("i-{}", self.next_id),
            pool,
            booting,
            warned: None,
        });
    }

    /// `SetDesiredCapacity`, and the group acting on it at once.
    fn set(&mut self, pool: &'static str, units: u32) {
        self.desired.insert(pool, units);
        self.reconcile(pool);
    }

    fn reconcile(&mut self, pool: &'static str) {
        let want = self.desired[pool] as usize;
        while self.vms.iter().filter(|v| v.pool == pool).count() < want {
            self.launch(pool, BOOT_TICKS);
        }
        while self.vms.iter().filter(|v| v.pool == pool).count() > want {
            let members: Vec<usize> = (0..self.vms.len())
                .filter(|i| self.vms[*i].pool == pool)
                .collect();
            let victim = members[self.random(members.len())];
            self.vms.remove(victim);
        }
    }

    /// Time passes one tick: boots progress, warned instances are reclaimed when due (and the
    /// group replaces them).
    fn step(&mut self) {
        for v in &mut self.vms {
            v.booting = v.booting.saturating_sub(1);
            if let Some(t) = &mut v.warned {
                *t = t.saturating_sub(1);
            }
        }
        self.vms.retain(|v| v.warned != Some(0));
        self.reconcile("od");
        self.reconcile("spot");
    }

    /// Warns a random healthy spot instance in service; its id.
    fn warn_one(&mut self) -> Option<String> {
        let healthy: Vec<usize> = (0..self.vms.len())
            .filter(|i| {
                self.vms[*i].pool == "spot"
                    && self.vms[*i].booting == 0
                    && self.vms[*i].warned.is_none()
            })
            .collect();
        if healthy.is_empty() {
            return None;
        }
        let i = healthy[self.random(healthy.len())];
        self.vms[i].warned = Some(RECLAIM_TICKS);
        Some(self.vms[i].id.clone())
    }

    fn healthy_spot(&self) -> u32 {
        self.vms
            .iter()
            .filter(|v| v.pool == "spot" && v.booting == 0 && v.warned.is_none())
            .count() as u32
    }

    fn snapshot(&self, queue: f64, now: Timestamp) -> Snapshot {
        Snapshot {
            desired_units: self.desired.values().sum(),
            instances: self
                .vms
                .iter()
                .map(|v| Instance {
                    id: v.id.clone(),
                    pool: v.pool.into(),
                    weight_units: 1,
                    state: match (v.warned, v.booting) {
                        (Some(_), _) => LifecycleState::Interrupted,
                        (None, 0) => LifecycleState::InService,
                        (None, _) => LifecycleState::Pending,
                    },
                    samples: BTreeMap::new(),
                    load: None,
                })
                .collect(),
            fleet_metrics: BTreeMap::from([(
                "q".to_string(),
                Sample {
                    value: queue,
                    at: now,
                },
            )]),
            pool_desired_units: self
                .desired
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            ..Snapshot::default()
        }
    }
}

fn at(tick: u32) -> Timestamp {
    Timestamp::from_secs(1_800_000_000).plus_secs(tick as f64 * TICK_SECS)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn covers_stay_bounded_and_the_fleet_returns_to_its_size(
        max in 8u32..24,
        base in 0u32..4,
        wanted_frac in 0.3f64..1.3,
        warnings in prop::collection::vec((0u32..60, 1u32..3), 0..6),
        seed in any::<u64>(),
    ) {
        let f = fleet(max, base);
        // Demand in units, up to beyond max_units (then the fleet sits at max).
        let wanted = ((wanted_frac * max as f64).round() as u32).clamp(2, 60);
        let size = wanted.min(max);
        let od0 = base.min(size);
        let mut cloud = Cloud::new(od0, size - od0, seed);
        let mut ctl = FleetController::new(EngineState::default());
        let mut warned_at: BTreeMap<String, u32> = BTreeMap::new();
        let last_warning = warnings.iter().map(|w| w.0).max().unwrap_or(0);
        let warned_units: u32 = warnings.iter().map(|w| w.1).sum();
        let end = last_warning
            + RECLAIM_TICKS
            + (HOLD_SECS as f64 / TICK_SECS) as u32
            + (warned_units + 1) * (BOOT_TICKS + 1);
        for tick in 0..end {
            for (when, n) in &warnings {
                if *when == tick {
                    for _ in 0..*n {
                        if let Some(id) = cloud.warn_one() {
                            warned_at.insert(id, tick);
                        }
                    }
                }
            }
            let snap = cloud.snapshot(5.0 * wanted as f64, at(tick));
            let healthy = cloud.healthy_spot();
            let plan = ctl.plan(&f, &snap, at(tick), false);
            prop_assert!(plan.refusal.is_none(), "{:?}", plan.refusal);
            prop_assert_eq!(plan.decision.desired_units, size, "tick {}: {}", tick, plan.decision.summary);
            let spot = plan.decision.pools.iter().find(|p| p.pool == "spot").unwrap();
            // Placement never takes spot below its healthy units (a scale-down of the fleet's
            // own share may, as any scale-down).
            prop_assert!(spot.desired_units >= healthy.min(spot.own_units),
                "tick {tick}: spot target {} below {healthy} healthy spot units: {}", spot.desired_units, plan.decision.summary);
            if let Some(c) = &plan.decision.cover {
                let issued = warned_at.len() as u32;
                prop_assert!(c.covering_units <= c.warned_units && c.warned_units <= issued,
                    "tick {tick}: cover {} of {} warned, {issued} warnings issued: {}", c.covering_units, c.warned_units, plan.decision.summary);
            }
            let mut applier = plan.applier(&snap.pool_desired_units);
            while let Some(change) = applier.next_change() {
                let pool = if change.pool == "od" { "od" } else { "spot" };
                cloud.set(pool, change.to_units);
                let sum: u32 = cloud.desired.values().sum();
                prop_assert!(sum <= max, "tick {tick}: pools {:?} past max {max} mid-tick", cloud.desired);
                applier.report(Ok(()));
            }
            let outcome = applier.finish();
            ctl.commit(&f, &plan, &outcome);
            cloud.step();
        }
        // Back to the size the metrics want, each market at its share — or at max_units, whole.
        let (od, spot) = (cloud.desired["od"], cloud.desired["spot"]);
        prop_assert!(od + spot == size, "ended at {od}/{spot}, wanted {size}");
        if wanted < max {
            prop_assert_eq!((od, spot), (base.min(size), size - base.min(size)), "cover left over");
        }
    }
}

/// The forecast's warm pool (`warm_pool_from_forecast`) counts instances, as AWS's warm pool
/// does: the units the next hour's peak needs beyond the capacity decided, in instances of the
/// pool's weight — not one instance per unit.
#[test]
fn a_forecast_warm_pool_counts_instances_of_the_pools_weight() {
    let text = "[[fleets]]\nname = \"f\"\nmin_units = 4\nmax_units = 40\n\
        [[fleets.pools]]\nname = \"od\"\nmarket = \"on-demand\"\n\
        instance_types = [{ type = \"g6e.12xlarge\", weight_units = 4 }]\n\
        warm_pool = { min_size = 0 }\n\
        [[fleets.metrics]]\nname = \"m\"\nsignal = \"queue_depth\"\n\
        target = { type = \"AverageValue\", average_value = 10 }\n\
        [fleets.predictive]\ndemand_per_unit = 100\nwarm_pool_from_forecast = true\n";
    let f = config::parse_str("f.toml", text).unwrap().fleets.remove(0);
    let now = Timestamp(3_600_000);
    let snap = Snapshot {
        desired_units: 4,
        instances: vec![Instance {
            id: "i-0".into(),
            pool: "od".into(),
            weight_units: 4,
            state: LifecycleState::InService,
            samples: BTreeMap::from([(
                "m".to_string(),
                Sample {
                    value: 10.0,
                    at: now,
                },
            )]),
            load: None,
        }],
        pool_desired_units: BTreeMap::from([("od".to_string(), 4)]),
        // 2,000 requests a minute for the next hours: 20 units at 100 a unit.
        forecast: Some(llm_autoscaler::model::DemandForecast {
            start: Timestamp(0),
            point: vec![2000.0; 300],
            upper: vec![2000.0; 300],
        }),
        ..Snapshot::default()
    };
    let plan = FleetController::new(EngineState::default()).plan(&f, &snap, now, false);
    let d = &plan.decision;
    let peak = d.predictive.as_ref().and_then(|p| p.next_hour_units);
    let gap = peak
        .expect("a forecast peak")
        .min(40)
        .saturating_sub(d.desired_units);
    assert!(gap >= 8, "{peak:?} over {}: {}", d.desired_units, d.summary);
    let warm: Vec<u32> = plan.warm_pools.iter().map(|w| w.min_size).collect();
    assert_eq!(
        warm,
        vec![gap.div_ceil(4)],
        "{peak:?} over {}: {}",
        d.desired_units,
        d.summary
    );
}
