//! The simulator: replays traffic against a simulated GPU fleet driven by the real engine, and
//! measures the policy against baselines and an oracle on the same traffic and seed.
//!
//! Deterministic (virtual clock, seeded), single-threaded per run, no I/O: the CLI reads trace
//! files and writes reports. `../shared/design/EVALUATION.md` (and `docs/simulator.md`) fix the
//! model and the metric definitions.
//!
//! - [`traffic`]: requests from scenarios and traces (`json_export`: Prometheus's and
//!   CloudWatch's JSON answers as a series); [`scenario`]: the five built-ins.
//! - [`perf`]: replica performance and prices per instance type; `required_units`.
//! - [`world`]: the simulated cloud and replicas, and the event loop.
//! - [`controllers`]: our policy (through the fleet controller), the baselines, the oracle.
//! - [`stats`]: histograms, per-minute records, SLO and capacity metrics.
//! - [`report`]: JSON, CSV, HTML and the summary table.

pub mod chart;
pub mod controllers;
mod json_export;
pub mod perf;
pub mod predict;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod stats;
pub mod suite;
pub mod traffic;
pub mod world;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::{self, Fleet};
use crate::model::{Market, Timestamp};
use crate::placement::split;
use controllers::{Fixed, Oracle, PolicyController, SeedQueue, Sight, TargetTracking};
use perf::{MinuteLoad, Profile};
use stats::{Capacity, Histogram, Minute, Slo};
use traffic::Traffic;
use world::{Controller, PoolSpec, SpotModel, World};

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A pool launches a type with no performance profile.
    #[error("pool \"{pool}\" launches {instance_type} serving a {model} model, which has no performance profile; known: {known}")]
    UnknownInstanceType {
        /// Pool name.
        pool: String,
        /// Its instance type.
        instance_type: String,
        /// The model class.
        model: String,
        /// Known (type, model) pairs.
        known: String,
    },
    /// The policy needs a capacity model its reference type has no profile for.
    #[error(transparent)]
    Capacity(#[from] crate::policy::capacity::CapacityError),
    /// A generated baseline policy failed validation (a bug).
    #[error("baseline policy: {0}")]
    Baseline(#[from] config::ConfigError),
}

/// Everything that fixes a run.
#[derive(Clone, Debug)]
pub struct SimSetup {
    /// Scenario or trace name, for the report.
    pub scenario: String,
    /// The requests.
    pub traffic: Traffic,
    /// Spot weather.
    pub spot: SpotModel,
    /// Wall-clock time of t = 0.
    pub epoch: Timestamp,
    /// The policy under test.
    pub fleet: Fleet,
    /// Name of the policy (file) for the report.
    pub policy_name: String,
    /// Model class served (`8b` or `70b`).
    pub model: String,
    /// Replica profiles: [`perf::builtin`], or [`perf::resolve`] of the policy's overrides.
    /// The policy's capacity model reads them as written.
    pub profiles: Vec<Profile>,
    /// The simulated servers' speed as a share of their profile's ([`Profile::at_speed`]); 1:
    /// the profile is exact. Every run, the oracle and `required_units` measure the servers as
    /// they run; the policy's capacity model still reads the profile — a mis-set profile, which
    /// its correction (`[fleets.capacity] learn`) is there to find.
    pub server_speed: f64,
    /// Seconds between decisions.
    pub tick_secs: f64,
    /// Queue timeout, seconds.
    pub queue_timeout_secs: f64,
    /// Target utilisation for `required_units`.
    pub target_utilization: f64,
    /// Also run the baselines and the oracle.
    pub baselines: bool,
    /// With `baselines`, run only these (e.g. `static-peak` and `oracle` for the robustness
    /// matrix); `None`: all.
    pub only_baselines: Option<Vec<String>>,
    /// Keep every decision of the policy under test (JSON lines in [`Outcome::decisions`]).
    pub record_decisions: bool,
    /// Demand of the minutes before the run (requests per minute, at `traffic.scale`), for
    /// the predictive policy's forecaster: the scenario's history, empty for traces.
    pub history: Vec<Option<f64>>,
}

/// Seconds a request may wait for a replica before it fails (a client's or a load balancer's
/// patience): `simulate`'s and `loadgen --compare-sim`'s default.
pub const QUEUE_TIMEOUT_SECS: f64 = 30.0;

impl SimSetup {
    /// A setup with `simulate`'s defaults: an 8B model, the built-in profiles, 15 s ticks, a
    /// 30 s queue timeout, `required_units` at 80 % utilisation, baselines on, no decision log.
    pub fn new(
        scenario: impl Into<String>,
        traffic: Traffic,
        spot: SpotModel,
        epoch: Timestamp,
        fleet: Fleet,
        policy_name: impl Into<String>,
    ) -> Self {
        SimSetup {
            scenario: scenario.into(),
            traffic,
            spot,
            epoch,
            fleet,
            policy_name: policy_name.into(),
            model: "8b".into(),
            profiles: perf::builtin(),
            server_speed: 1.0,
            tick_secs: 15.0,
            queue_timeout_secs: QUEUE_TIMEOUT_SECS,
            target_utilization: 0.8,
            baselines: true,
            only_baselines: None,
            record_decisions: false,
            history: Vec::new(),
        }
    }
}

/// Cost figures of one policy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cost {
    /// Everything billed, USD.
    pub total_usd: f64,
    /// Spot's share of it.
    pub spot_share: f64,
    /// 1 − cost ÷ cost(static-peak); `None` without baselines.
    pub savings_vs_static: Option<f64>,
    /// 1 − cost ÷ cost(static-slo): the saving against the smallest static on-demand fleet that
    /// met the SLO (static-peak's when it did); `None` without baselines or when no static fleet
    /// up to [`STATIC_SLO_MAX_FACTOR`] × static-peak's met it.
    pub savings_vs_static_slo: Option<f64>,
    /// cost ÷ cost(oracle); `None` without baselines.
    pub vs_oracle: Option<f64>,
    /// Goodput per dollar: output tokens of requests that succeeded with their first token
    /// within the TTFT SLO, per USD billed (NVIDIA Dynamo reports goodput per GPU; per dollar
    /// also counts what spot saves).
    pub goodput_tokens_per_usd: f64,
}

/// One policy's figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolicyFigures {
    /// SLOs.
    pub slo: Slo,
    /// Cost.
    pub cost: Cost,
    /// Capacity.
    pub capacity: Capacity,
}

/// Requests by outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Accounting {
    /// Arrived.
    pub arrived: u64,
    /// Succeeded.
    pub succeeded: u64,
    /// Failed (queue timeout, or lost to an interruption twice).
    pub failed: u64,
}

/// What happened to the fleet in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct FleetEvents {
    /// Instances launched.
    pub launches: u64,
    /// Spot launches that failed (shortage).
    pub failed_launches: u64,
    /// Spot instances that received an interruption notice.
    pub spot_interruptions: u64,
    /// Decisions that changed desired capacity.
    pub capacity_changes: u64,
    /// Sequences preempted because a replica's KV cache was full (vLLM recomputes them): a
    /// fleet run too close to its KV capacity for its outputs' length.
    pub preemptions: u64,
}

/// A finished run of one policy.
pub struct Run {
    /// Policy name.
    pub name: String,
    /// Per-minute record.
    pub minutes: Vec<Minute>,
    /// TTFT over the run.
    pub ttft: Histogram,
    /// Total cost, USD.
    pub cost_usd: f64,
    /// Spot cost, USD.
    pub spot_cost_usd: f64,
    /// The policy's capacity floor (for scale-down lag).
    pub min_units: u32,
    /// The world at the end (instances, billing records).
    pub world: World,
    /// Decisions that changed capacity.
    pub changes: u64,
    /// Scale-downs bought back within the flap window (policies through the fleet controller).
    pub flaps: u64,
    /// Each flap's scale-down and buy-back, seconds of the run.
    pub flap_spans: Vec<(f64, f64)>,
    /// With prediction: each minute's forecast (requests, point and 90 % upper bound) made
    /// [`controllers::BAND_AHEAD_MINUTES`] before it.
    pub forecast_band: Vec<Option<(f64, f64)>>,
}

impl Run {
    /// Its SLO figures against a TTFT SLO of `ttft_slo_secs`.
    pub fn slo(&self, ttft_slo_secs: f64) -> stats::Slo {
        stats::slo(&self.minutes, &self.ttft, ttft_slo_secs)
    }

    /// Requests by outcome.
    pub fn accounting(&self) -> Accounting {
        let sum = |f: fn(&Minute) -> u32| self.minutes.iter().map(|m| f(m) as u64).sum();
        Accounting {
            arrived: sum(|m| m.arrived),
            succeeded: sum(|m| m.succeeded),
            failed: sum(|m| m.failed),
        }
    }

    /// Fleet events.
    pub fn events(&self) -> FleetEvents {
        FleetEvents {
            launches: self.world.instances.len() as u64,
            failed_launches: self.world.pools.iter().map(|p| p.failed_launches).sum(),
            spot_interruptions: self.world.spot_interruptions,
            capacity_changes: self.changes,
            preemptions: self.world.preemptions,
        }
    }
}

/// The full result of `simulate`.
pub struct Outcome {
    /// The setup.
    pub setup: SimSetup,
    /// Load per minute.
    pub loads: Vec<MinuteLoad>,
    /// Required units per minute.
    pub required: Vec<u32>,
    /// The policy under test.
    pub ours: Run,
    /// Baselines by name (empty without them).
    pub baselines: BTreeMap<String, Run>,
    /// The policy's decisions as JSON lines, when recorded.
    pub decisions: Vec<String>,
    /// The fewest units of a static on-demand fleet, at least static-peak's, that met the SLO
    /// ([`static_slo_units`]); `None` when none up to [`STATIC_SLO_MAX_FACTOR`] × static-peak's
    /// did, or the search did not run.
    pub static_slo_units: Option<u32>,
    /// Whether the search for `static_slo_units` ran (with the static-peak and static-slo
    /// baselines; the robustness matrix does not run it).
    pub static_slo_searched: bool,
}

/// How far above static-peak's size `static-slo` looks for a static fleet that meets the SLO.
pub const STATIC_SLO_MAX_FACTOR: u32 = 4;

/// The fewest units in `peak..=peak × STATIC_SLO_MAX_FACTOR` for which `meets` holds, given
/// that more units never serve worse (`meets` is monotone): `peak` first, then doubling, then
/// halving the interval between the largest size that missed and the smallest that met — a
/// handful of runs however large the fleet. `None` when even the largest misses.
pub fn static_slo_units(peak: u32, mut meets: impl FnMut(u32) -> bool) -> Option<u32> {
    let peak = peak.max(1);
    let cap = peak * STATIC_SLO_MAX_FACTOR;
    if meets(peak) {
        return Some(peak);
    }
    let (mut missed, mut met) = (peak, None);
    while met.is_none() && missed < cap {
        let n = (missed * 2).min(cap);
        if meets(n) {
            met = Some(n);
        } else {
            missed = n;
        }
    }
    let mut met = met?;
    while met - missed > 1 {
        let mid = missed + (met - missed) / 2;
        if meets(mid) {
            met = mid;
        } else {
            missed = mid;
        }
    }
    Some(met)
}

/// Names of the baselines, in report order. `no-prediction` is the policy under test without
/// its `[fleets.predictive]` table, run only when the policy has one; `on-demand-only` is the
/// policy under test with every pool on on-demand (what the same autoscaling costs without
/// spot), run only when the policy has a spot pool.
pub const BASELINES: [&str; 9] = [
    "no-prediction",
    "on-demand-only",
    "static-peak",
    "static-slo",
    "hpa-cpu",
    "seed-queue",
    "target-tracking",
    "reactive-oracle",
    "oracle",
];

/// What one unit is: the reference type (the first on-demand pool's first type, else the first
/// pool's) and the units one of its instances counts for.
#[derive(Clone, Debug, PartialEq)]
pub struct Reference {
    /// The reference type's profile.
    pub profile: Profile,
    /// Units one reference instance counts for (its `weight_units`).
    pub weight_units: u32,
}

impl Reference {
    /// Required units of one minute's load (see [`MinuteLoad::required_units`]).
    pub fn required_units(&self, load: &MinuteLoad, target_utilization: f64) -> u32 {
        load.required_units(&self.profile, self.weight_units, target_utilization)
    }
}

/// The fleet's [`Reference`].
pub fn reference(fleet: &Fleet, profiles: &[Profile], model: &str) -> Result<Reference, SimError> {
    let pool = fleet
        .pools
        .iter()
        .find(|p| p.market == Market::OnDemand)
        .or(fleet.pools.first())
        .expect("a validated fleet has a pool");
    let t = &pool.instance_types[0];
    Ok(Reference {
        profile: profile_for(profiles, &pool.name, &t.instance_type, model)?,
        weight_units: t.weight_units,
    })
}

/// A fleet that has been running is sized for the load it serves: the most required units of
/// the traffic's first five minutes, within the fleet's bounds. Every run starts there.
pub fn start_units(
    traffic: &Traffic,
    fleet: &Fleet,
    reference: &Reference,
    target_utilization: f64,
) -> u32 {
    let mut head = [MinuteLoad::default(); 5];
    for r in traffic.requests().take_while(|r| r.arrival_secs < 300.0) {
        if let Some(l) = head.get_mut((r.arrival_secs / 60.0) as usize) {
            l.add(&r);
        }
    }
    head.iter()
        .map(|l| reference.required_units(l, target_utilization))
        .max()
        .unwrap_or(0)
        .clamp(fleet.min_units, fleet.max_units)
}

/// The simulated pools of a fleet: each launches its first instance type.
pub fn pool_specs(
    fleet: &Fleet,
    profiles: &[Profile],
    model: &str,
) -> Result<Vec<PoolSpec>, SimError> {
    fleet
        .pools
        .iter()
        .map(|p| {
            let t = &p.instance_types[0];
            let mut profile = profile_for(profiles, &p.name, &t.instance_type, model)?;
            if let Some(w) = &p.warm_pool {
                profile.stopped_usd_per_hour = w.volume_usd_per_hour;
            }
            Ok(PoolSpec {
                name: p.name.clone(),
                market: p.market,
                profile,
                weight_units: t.weight_units,
                warm_pool_min: p.warm_pool.as_ref().map_or(0, |w| w.min_size),
                exposed_to_spot_events: true,
            })
        })
        .collect()
}

fn profile_for(
    profiles: &[Profile],
    pool: &str,
    instance_type: &str,
    model: &str,
) -> Result<Profile, SimError> {
    perf::lookup(profiles, instance_type, model)
        .cloned()
        .ok_or_else(|| SimError::UnknownInstanceType {
            pool: pool.to_string(),
            instance_type: instance_type.to_string(),
            model: model.to_string(),
            known: profiles
                .iter()
                .map(|p| format!("{} ({})", p.instance_type, p.model))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Runs the policy (and the baselines) on the setup's traffic.
pub fn simulate(mut setup: SimSetup, progress: &mut dyn FnMut(f64)) -> Result<Outcome, SimError> {
    // The capacity model and "auto" targets come from the profiles this run simulates, so a
    // setup built from an unresolved policy runs the policy the daemon would.
    setup.fleet.model = setup.model.clone();
    crate::policy::capacity::resolve_fleet(&mut setup.fleet, &setup.profiles)?;
    // The servers as they run, which may not be as their profile says.
    let servers = perf::at_speed(&setup.profiles, setup.server_speed);
    let written_profile = reference(&setup.fleet, &setup.profiles, &setup.model)?.profile;
    let reference = reference(&setup.fleet, &servers, &setup.model)?;
    let ref_profile = reference.profile.clone();
    let fleet = &setup.fleet;
    let required_of = |loads: &[MinuteLoad]| -> Vec<u32> {
        loads
            .iter()
            .map(|l| reference.required_units(l, setup.target_utilization))
            .collect()
    };
    let start_units = start_units(&setup.traffic, fleet, &reference, setup.target_utilization);

    // Our policy.
    let specs = pool_specs(fleet, &servers, &setup.model)?;
    let initial: Vec<u32> = split::split(fleet, start_units)
        .iter()
        .map(|t| t.desired_units)
        .collect();
    let mut ctl = PolicyController::new(fleet.clone(), setup.epoch).with_history(&setup.history);
    if setup.record_decisions {
        ctl.log = Some(Vec::new());
    }
    let mut ours = run_one(
        &setup,
        "ours",
        specs,
        &initial,
        &mut ctl,
        fleet.min_units,
        progress,
    );
    ours.changes = ctl.changes;
    ours.flaps = ctl.flaps;
    ours.flap_spans = std::mem::take(&mut ctl.flap_spans);
    ours.forecast_band = std::mem::take(&mut ctl.band);
    let decisions = ctl.log.take().unwrap_or_default();
    // The policy's run measured the offered load; the baselines and the report use it.
    let loads = ours.world.loads.clone();
    let required = required_of(&loads);

    let mut baselines = BTreeMap::new();
    let mut static_slo = None;
    let mut static_slo_searched = false;
    let wants = |name: &str| {
        setup
            .only_baselines
            .as_ref()
            .is_none_or(|only| only.iter().any(|n| n == name))
    };
    if setup.baselines {
        let od_pool = |name: &str, market, exposed| PoolSpec {
            name: name.to_string(),
            market,
            profile: ref_profile.clone(),
            weight_units: reference.weight_units,
            warm_pool_min: 0,
            exposed_to_spot_events: exposed,
        };
        let peak = required.iter().copied().max().unwrap_or(0).max(1);
        let (min, max) = (fleet.min_units, fleet.max_units);
        let start = start_units;
        let quiet = &mut |_: f64| {};

        // The policy under test without one of its features, on the same traffic.
        let mut variant = |f: Fleet, name: &str| -> Result<(), SimError> {
            let specs = pool_specs(&f, &servers, &setup.model)?;
            let initial: Vec<u32> = split::split(&f, start_units)
                .iter()
                .map(|t| t.desired_units)
                .collect();
            let mut c = PolicyController::new(f, setup.epoch).with_history(&setup.history);
            let mut run = run_one(
                &setup,
                name,
                specs,
                &initial,
                &mut c,
                fleet.min_units,
                quiet,
            );
            run.changes = c.changes;
            run.flaps = c.flaps;
            run.flap_spans = std::mem::take(&mut c.flap_spans);
            baselines.insert(name.into(), run);
            Ok(())
        };
        if fleet.predictive.is_some() && wants("no-prediction") {
            let mut reactive = fleet.clone();
            reactive.predictive = None;
            variant(reactive, "no-prediction")?;
        }
        if fleet.pools.iter().any(|p| p.market == Market::Spot) && wants("on-demand-only") {
            let mut od_only = fleet.clone();
            for p in &mut od_only.pools {
                p.market = Market::OnDemand;
                p.unit_usd_per_hour = None;
            }
            od_only.on_demand_percentage_above_base = 100;
            variant(od_only, "on-demand-only")?;
        }

        let static_run = |name: &str, units: u32| {
            let mut c = Fixed(units);
            let od = vec![od_pool("on-demand", Market::OnDemand, false)];
            run_one(&setup, name, od, &[units], &mut c, units, &mut |_: f64| {})
        };
        let meets = |r: &Run| r.slo(fleet.slo.ttft_p95_secs).met;
        if wants("static-peak") {
            let run = static_run("static-peak", peak);
            if wants("static-slo") {
                // static-peak is sized on each minute's average work; traffic that bursts
                // within the minute can need more (its own row only then).
                let mut smallest: Option<Run> = None;
                static_slo_searched = true;
                static_slo = static_slo_units(peak, |n| {
                    if n == peak {
                        return meets(&run);
                    }
                    let r = static_run("static-slo", n);
                    let ok = meets(&r);
                    // The search only narrows: each size that meets is below the last.
                    if ok {
                        smallest = Some(r);
                    }
                    ok
                });
                if let Some(r) = smallest.filter(|r| Some(units_of(r)) == static_slo) {
                    baselines.insert("static-slo".into(), r);
                }
            }
            baselines.insert("static-peak".into(), run);
        }
        if wants("hpa-cpu") {
            let hpa_fleet = hpa_policy(&ref_profile, min, max)?;
            let mut c = PolicyController::new(hpa_fleet, setup.epoch);
            let od = vec![od_pool("on-demand", Market::OnDemand, false)];
            let mut run = run_one(&setup, "hpa-cpu", od, &[start], &mut c, min, quiet);
            run.changes = c.changes;
            baselines.insert("hpa-cpu".into(), run);
        }
        if wants("seed-queue") {
            let seed_start = start.clamp(2, 50);
            let mut c = SeedQueue::new(seed_start);
            let od = vec![od_pool("on-demand", Market::OnDemand, false)];
            let run = run_one(&setup, "seed-queue", od, &[seed_start], &mut c, 2, quiet);
            baselines.insert("seed-queue".into(), run);
        }
        let total = loads.iter().fold(MinuteLoad::default(), |mut a, l| {
            a.requests += l.requests;
            a.prompt_tokens += l.prompt_tokens;
            a.output_tokens += l.output_tokens;
            a
        });
        let n = total.requests.max(1) as f64;
        // Its target is what an operator would set from the profile as written, as ours reads it.
        let per_min = 60.0
            * setup.target_utilization
            * written_profile.sustainable_rps(
                total.prompt_tokens as f64 / n,
                total.output_tokens as f64 / n,
            );
        if wants("target-tracking") {
            let mut c = TargetTracking::new(per_min, min, max, start);
            let od = vec![od_pool("on-demand", Market::OnDemand, false)];
            let run = run_one(&setup, "target-tracking", od, &[start], &mut c, min, quiet);
            baselines.insert("target-tracking".into(), run);
        }
        // One cold start at its 99th percentile ahead (or, without foresight, kept).
        let lead = ref_profile.cold_start_median_secs * (2.33 * ref_profile.start_sigma).exp();
        for (name, sight) in [
            ("reactive-oracle", Sight::Present),
            ("oracle", Sight::Foresight),
        ] {
            if !wants(name) {
                continue;
            }
            let mut c = Oracle {
                required: required.clone(),
                lead_secs: lead,
                sight,
            };
            let o_start = c.desired_at(0.0);
            let spot = vec![od_pool("spot", Market::Spot, false)];
            let run = run_one(&setup, name, spot, &[o_start], &mut c, 0, quiet);
            baselines.insert(name.into(), run);
        }
    }
    for run in std::iter::once(&mut ours).chain(baselines.values_mut()) {
        for (m, r) in run.minutes.iter_mut().zip(&required) {
            m.required_units = *r;
        }
    }
    Ok(Outcome {
        setup,
        loads,
        required,
        ours,
        baselines,
        decisions,
        static_slo_units: static_slo,
        static_slo_searched,
    })
}

/// A static run's size: the units its controller held (its `min_units`).
fn units_of(r: &Run) -> u32 {
    r.min_units
}

/// HPA defaults on GPU utilisation, target 70 %, on-demand: a policy file like a user's, with
/// what HPA does not have switched off (Knative's panic mode, the silence hold).
fn hpa_policy(reference: &Profile, min: u32, max: u32) -> Result<Fleet, SimError> {
    let text = format!(
        "[[fleets]]\nname = \"hpa-cpu\"\nmin_units = {min}\nmax_units = {max}\nsilence_hold_mins = 0\n\
         [[fleets.pools]]\nname = \"on-demand\"\nmarket = \"on-demand\"\ninstance_types = [{{ type = \"{}\" }}]\n\
         [[fleets.metrics]]\nsignal = \"gpu_utilization\"\ntarget = {{ type = \"Utilization\", average_utilization = 70 }}\n\
         [fleets.panic]\nenabled = false\n",
        reference.instance_type
    );
    Ok(config::parse_str("hpa-cpu (generated)", &text)?
        .fleets
        .remove(0))
}

fn run_one(
    setup: &SimSetup,
    name: &str,
    pools: Vec<PoolSpec>,
    initial: &[u32],
    ctl: &mut dyn Controller,
    min_units: u32,
    progress: &mut dyn FnMut(f64),
) -> Run {
    let mut world = World::new(
        pools,
        initial,
        setup.spot.clone(),
        setup.traffic.seed,
        setup.traffic.duration_secs,
        setup.tick_secs,
        setup.queue_timeout_secs,
    );
    world.ttft_slo_secs = setup.fleet.slo.ttft_p95_secs;
    world.run(setup.traffic.requests(), ctl, 600.0, progress);
    Run {
        name: name.to_string(),
        minutes: world.minutes.clone(),
        ttft: world.ttft_all.clone(),
        cost_usd: world.cost_usd(),
        spot_cost_usd: world.cost_by_market[1],
        min_units,
        world,
        changes: 0,
        flaps: 0,
        flap_spans: Vec::new(),
        forecast_band: Vec::new(),
    }
}

impl Outcome {
    /// Figures of one run, with cost ratios against the baselines when they ran.
    pub fn figures(&self, run: &Run) -> PolicyFigures {
        let static_cost = self.baselines.get("static-peak").map(|r| r.cost_usd);
        // The static fleet that met the SLO: static-peak itself when it did.
        let static_slo_cost = self
            .baselines
            .get("static-slo")
            .or_else(|| {
                let peak = self.baselines.get("static-peak")?;
                (self.static_slo_units == Some(units_of(peak))).then_some(peak)
            })
            .map(|r| r.cost_usd);
        let oracle_cost = self.baselines.get("oracle").map(|r| r.cost_usd);
        let cost = run.cost_usd;
        PolicyFigures {
            slo: run.slo(self.setup.fleet.slo.ttft_p95_secs),
            cost: Cost {
                total_usd: cost,
                spot_share: if cost > 0.0 {
                    run.spot_cost_usd / cost
                } else {
                    0.0
                },
                savings_vs_static: static_cost.filter(|c| *c > 0.0).map(|s| 1.0 - cost / s),
                savings_vs_static_slo: static_slo_cost.filter(|c| *c > 0.0).map(|s| 1.0 - cost / s),
                vs_oracle: oracle_cost.filter(|c| *c > 0.0).map(|o| cost / o),
                goodput_tokens_per_usd: if cost > 0.0 {
                    run.minutes
                        .iter()
                        .map(|m| m.good_output_tokens as f64)
                        .sum::<f64>()
                        / cost
                } else {
                    0.0
                },
            },
            capacity: stats::capacity(&run.minutes, run.min_units),
        }
    }
}
