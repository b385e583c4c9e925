//! Who sets desired capacity in a run: our policy (through the very
//! [`FleetController`] the daemon runs: plan → apply in order → commit), the baselines of
//! EVALUATION.md, and the oracle.

use std::collections::BTreeMap;

use super::world::{set_changed, Controller, World};
use crate::config::{Fleet, Signal};
use crate::controller::{FleetController, Plan};
use crate::engine::EngineState;
use crate::forecast::predictor::{minute_of, settled_minute, Predictor};
use crate::model::{Instance, LifecycleState, Sample, Snapshot, Timestamp};

/// The world as the daemon's collectors would see it at `at`: lifecycle per instance,
/// Prometheus-style gauges scraped now (vLLM's names in the comments), fleet-level gauges.
///
/// Signals the simulator does not model (CPU, memory, custom gauges) get no samples, so a
/// policy using them holds on scale-down exactly as it would with a broken collector. Rates
/// (requests and tokens) are counted over the last minute, as the daemon takes a counter's
/// rate over its readings of the last minute (`scrape::RateWindow`): requests *finished*
/// (vLLM's `request_success_total`), prompt tokens admitted, tokens generated.
pub fn observe(fleet: &Fleet, world: &World, at: Timestamp) -> Snapshot {
    let serving = world
        .live_instances()
        .filter(|i| i.lifecycle() == LifecycleState::InService)
        .count()
        .max(1);
    let queue_share = world.queue_len() as f64 / serving as f64;
    let mut fleet_tokens = (0.0, 0.0);
    let instances = world
        .live_instances()
        .map(|i| {
            let lifecycle = i.lifecycle();
            let mut samples = BTreeMap::new();
            let mut load = None;
            if lifecycle == LifecycleState::InService {
                load = world
                    .server_load(i, queue_share)
                    .map(|l| crate::model::ServerLoad { at, ..l });
                if let Some(l) = &load {
                    fleet_tokens.0 += l.prompt_tokens_per_sec;
                    fleet_tokens.1 += l.generation_tokens_per_sec;
                }
                for m in fleet.metrics.iter().filter(|m| m.signal.per_instance()) {
                    let value = match (m.signal, &load) {
                        (Signal::GpuUtilization, _) => world.gpu_utilization_pct(i),
                        (Signal::CpuUtilization, _) => world.cpu_utilization_pct(i),
                        (Signal::MemoryUtilization, _) => world.memory_utilization_pct(i),
                        (Signal::KvCacheUsage, _) => world.kv_cache_pct(i),
                        // vLLM's num_requests_waiting: not yet prefilled on this replica,
                        // plus this replica's share of the gateway queue.
                        (Signal::QueueDepth, _) => world.waiting_on(i) as f64 + queue_share,
                        (Signal::Concurrency, _) => i.running as f64 + queue_share,
                        (Signal::RequestRate, Some(l)) => l.requests_per_sec,
                        (Signal::PromptTokensRate, Some(l)) => l.prompt_tokens_per_sec,
                        (Signal::GenerationTokensRate, Some(l)) => l.generation_tokens_per_sec,
                        _ => continue,
                    };
                    samples.insert(m.name.clone(), Sample { value, at });
                }
            }
            Instance {
                id: format!("sim-{:06}", i.id),
                pool: world.pools[i.pool].spec.name.clone(),
                weight_units: world.pools[i.pool].spec.weight_units,
                state: lifecycle,
                samples,
                load,
            }
        })
        .collect::<Vec<_>>();
    let mut fleet_metrics = BTreeMap::new();
    for m in fleet.metrics.iter().filter(|m| !m.signal.per_instance()) {
        let value = match m.signal {
            Signal::ExternalQueueDepth => world.queue_len() as f64,
            Signal::FleetRequestRate => world.fleet_request_rate(),
            Signal::FleetPromptTokensRate => fleet_tokens.0,
            Signal::FleetGenerationTokensRate => fleet_tokens.1,
            Signal::TtftP95Secs => world.recent_ttft_p95(),
            _ => continue,
        };
        fleet_metrics.insert(m.name.clone(), Sample { value, at });
    }
    Snapshot {
        desired_units: world.pools.iter().map(|p| p.desired_units).sum(),
        instances,
        fleet_metrics,
        pool_desired_units: world
            .pools
            .iter()
            .map(|p| (p.spec.name.clone(), p.desired_units))
            .collect(),
        pool_failed_launches: world
            .pools
            .iter()
            .map(|p| (p.spec.name.clone(), p.failed_launches))
            .collect(),
        latency: world
            .recent_latency()
            .map(|(ttft, wait)| crate::model::FleetLatency {
                ttft_p95_secs: ttft,
                queue_wait_p95_secs: wait,
                at,
            }),
        ..Snapshot::default()
    }
}

/// Applies a plan's pool changes to the world in the plan's order, its warm-pool sizes after
/// them, and returns what happened — what the daemon does through a provider.
pub fn apply_plan(plan: &Plan, snap: &Snapshot, world: &mut World) -> crate::controller::Outcome {
    let mut applier = plan.applier(&snap.pool_desired_units);
    while let Some(change) = applier.next_change() {
        let result = world
            .pools
            .iter()
            .position(|p| p.spec.name == change.pool)
            .map(|i| world.set_desired(i, change.to_units))
            .ok_or_else(|| format!("no pool {} in the simulated cloud", change.pool));
        applier.report(result);
    }
    for w in plan.warm_pool_targets() {
        if let Some(i) = world.pools.iter().position(|p| p.spec.name == w.pool) {
            world.set_warm_pool_min(i, w.min_size);
        }
    }
    applier.finish()
}

/// Our policy, or HPA (the same engine with an HPA-only policy): one [`FleetController`]
/// iteration per tick, as the daemon runs it.
pub struct PolicyController {
    fleet: Fleet,
    controller: FleetController,
    epoch: Timestamp,
    /// With `[fleets.predictive]`: the demand history (arrivals per minute) and its forecast,
    /// as the daemon keeps them.
    predictor: Option<Predictor>,
    /// The next minute of the run to record into the predictor.
    next_minute: usize,
    /// Decisions that changed capacity.
    pub changes: u64,
    /// Scale-downs bought back within the flap window.
    pub flaps: u64,
    /// Each flap's scale-down and buy-back, seconds of the run.
    pub flap_spans: Vec<(f64, f64)>,
    /// Every decision as a JSON line, when recording.
    pub log: Option<Vec<String>>,
    /// Per minute of the run: the forecast of its requests made [`BAND_AHEAD_MINUTES`] before
    /// it (point and 90 % upper bound), for the report's load plot.
    pub band: Vec<Option<(f64, f64)>>,
}

/// How far ahead of a minute the report's forecast band was made, minutes.
pub const BAND_AHEAD_MINUTES: i64 = 5;

impl PolicyController {
    /// A controller for `fleet`; run time 0 is `epoch`.
    pub fn new(fleet: Fleet, epoch: Timestamp) -> Self {
        PolicyController {
            predictor: fleet
                .predictive
                .as_ref()
                .map(|p| Predictor::new(p, fleet.forecast_silence_gap_mins())),
            next_minute: 0,
            fleet,
            controller: FleetController::new(EngineState::default()),
            epoch,
            changes: 0,
            flaps: 0,
            flap_spans: Vec::new(),
            log: None,
            band: Vec::new(),
        }
    }

    /// Seeds the predictor with the demand of the minutes just before the run (requests per
    /// minute, the last entry being the minute before t = 0).
    pub fn with_history(mut self, history: &[Option<f64>]) -> Self {
        if let Some(p) = &mut self.predictor {
            let first = minute_of(self.epoch) - history.len() as i64;
            for (i, v) in history.iter().enumerate() {
                p.record(first + i as i64, *v);
            }
        }
        self
    }

    /// The predictor, when predictive scaling is on.
    pub fn predictor(&self) -> Option<&Predictor> {
        self.predictor.as_ref()
    }

    /// The engine state, as the daemon would persist it.
    pub fn state(&self) -> &EngineState {
        self.controller.state()
    }

    /// Records the run's settled minutes (arrivals per minute, with the daemon's CloudWatch
    /// lag) and returns the forecast at `at`.
    fn forecast(&mut self, at: Timestamp, world: &World) -> Option<crate::model::DemandForecast> {
        let p = self.predictor.as_mut()?;
        let zero = minute_of(self.epoch);
        let settled = (settled_minute(at) - zero + 1).clamp(0, world.loads.len() as i64) as usize;
        for m in self.next_minute..settled {
            p.record(zero + m as i64, Some(world.loads[m].requests as f64));
        }
        self.next_minute = self.next_minute.max(settled);
        p.forecast(at).cloned()
    }
}

impl PolicyController {
    /// Keeps, for the run minute [`BAND_AHEAD_MINUTES`] after `at`'s, the first forecast of it.
    fn record_band(&mut self, f: &crate::model::DemandForecast, at: Timestamp) {
        let zero = minute_of(self.epoch);
        let target = minute_of(at) + BAND_AHEAD_MINUTES;
        let (Ok(run_minute), Ok(idx)) = (
            usize::try_from(target - zero),
            usize::try_from(target - minute_of(f.start)),
        ) else {
            return;
        };
        let (Some(&point), Some(&upper)) = (f.point.get(idx), f.upper.get(idx)) else {
            return;
        };
        if self.band.len() <= run_minute {
            self.band.resize(run_minute + 1, None);
        }
        self.band[run_minute].get_or_insert((point, upper));
    }
}

impl Controller for PolicyController {
    fn tick(&mut self, now_secs: f64, world: &mut World) {
        let at = self.epoch.plus_secs(now_secs);
        let mut snap = observe(&self.fleet, world, at);
        snap.forecast = self.forecast(at, world);
        if let Some(f) = &snap.forecast {
            self.record_band(f, at);
        }
        let down_before = self.controller.state().flaps.last_scale_down;
        let plan = self.controller.plan(&self.fleet, &snap, at, false);
        let outcome = apply_plan(&plan, &snap, world);
        self.controller.commit(&self.fleet, &plan, &outcome);
        let decision = &plan.decision;
        if decision.desired_units != decision.current_units {
            self.changes += 1;
        }
        let flaps = self.controller.state().flaps.total;
        if flaps > self.flaps {
            if let Some(down) = down_before {
                self.flap_spans
                    .push((down.secs_since(self.epoch), now_secs));
            }
        }
        self.flaps = flaps;
        if let Some(log) = &mut self.log {
            log.push(serde_json::to_string(decision).unwrap_or_default());
        }
    }
}

/// A fixed capacity: `static-peak`.
pub struct Fixed(pub u32);

impl Controller for Fixed {
    fn tick(&mut self, _: f64, world: &mut World) {
        set_changed(world, &[self.0]);
    }
}

/// The brief's QueueBasedScaler: target = clamp(queue_depth // 50, 2, 50), stepping +2 up and
/// −1 down per 15 s.
pub struct SeedQueue {
    current: u32,
    last_step: f64,
}

impl SeedQueue {
    /// Starting at `current` units.
    pub fn new(current: u32) -> Self {
        SeedQueue {
            current,
            last_step: f64::NEG_INFINITY,
        }
    }

    /// The brief's formula.
    pub fn target(queue_depth: usize) -> u32 {
        ((queue_depth / 50) as u32).clamp(2, 50)
    }

    /// One 15-second step from `current` toward the target for `queue_depth`.
    pub fn step(current: u32, queue_depth: usize) -> u32 {
        let target = Self::target(queue_depth);
        if target > current {
            (current + 2).min(target)
        } else if target < current {
            (current - 1).max(target)
        } else {
            current
        }
    }
}

impl Controller for SeedQueue {
    fn tick(&mut self, now: f64, world: &mut World) {
        if now - self.last_step >= 15.0 - 1e-9 {
            self.current = Self::step(self.current, world.queue_len());
            self.last_step = now;
        }
        set_changed(world, &[self.current]);
    }
}

/// EC2 target tracking on requests per instance (ALBRequestCountPerTarget), from 1-minute
/// CloudWatch datapoints that arrive a minute late: scale out after 3 datapoints above target,
/// scale in after 15 below 90 % of it; no scale-in while instances warm up.
pub struct TargetTracking {
    /// Requests per in-service instance per minute to hold.
    pub target_per_instance_per_min: f64,
    /// Bounds.
    pub min_units: u32,
    /// Bounds.
    pub max_units: u32,
    desired: u32,
    evaluated_minute: Option<usize>,
    datapoints: Vec<f64>,
}

impl TargetTracking {
    /// Starting at `desired` units.
    pub fn new(
        target_per_instance_per_min: f64,
        min_units: u32,
        max_units: u32,
        desired: u32,
    ) -> Self {
        TargetTracking {
            target_per_instance_per_min,
            min_units,
            max_units,
            desired,
            evaluated_minute: None,
            datapoints: Vec::new(),
        }
    }
}

impl Controller for TargetTracking {
    fn tick(&mut self, now: f64, world: &mut World) {
        // Minute m's datapoint is published at the end of minute m + 1.
        let latest = (now / 60.0) as usize;
        if latest >= 2 && self.evaluated_minute != Some(latest - 2) {
            let m = latest - 2;
            self.evaluated_minute = Some(m);
            let in_service = world
                .live_instances()
                .filter(|i| i.lifecycle() == LifecycleState::InService)
                .count()
                .max(1) as f64;
            let value = world.arrivals_in_minute(m).unwrap_or(0) as f64 / in_service;
            self.datapoints.push(value);
            let t = self.target_per_instance_per_min;
            let recent = |n: usize| self.datapoints.iter().rev().take(n);
            let proposal = (in_service * value / t).ceil() as u32;
            let warming = world
                .live_instances()
                .any(|i| i.lifecycle() == LifecycleState::Pending);
            if self.datapoints.len() >= 3 && recent(3).all(|v| *v > t) {
                self.desired = self.desired.max(proposal);
            } else if self.datapoints.len() >= 15 && recent(15).all(|v| *v < 0.9 * t) && !warming {
                self.desired = self.desired.min(proposal.max(1));
            }
            self.desired = self.desired.clamp(self.min_units, self.max_units);
        }
        set_changed(world, &[self.desired]);
    }
}

/// Knows the future: desired = the most required units over the next `lead_secs` (one cold
/// start), so exactly the required capacity is in service each minute and released at once.
/// Without foresight ([`Sight::Present`]) it is a policy that reacts perfectly, with no headroom.
pub struct Oracle {
    /// Required units per minute.
    pub required: Vec<u32>,
    /// Launch lead, seconds: how far ahead it sees, or how long it keeps what it needed.
    pub lead_secs: f64,
    /// What it knows.
    pub sight: Sight,
}

/// What an [`Oracle`] knows of the required units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sight {
    /// The next `lead_secs` (`oracle`): the capacity is in service when its minute comes.
    Foresight,
    /// The present only (`reactive-oracle`): each minute's need from the minute's first
    /// second, none before, kept for `lead_secs` after (the window the foresight oracle looks
    /// ahead, looking back) — an autoscaler with perfect, instant measurement, no prediction
    /// and no headroom. A rise faster than a cold start still waits the cold start: what it
    /// misses takes foresight (a forecast, a trend) or capacity beyond the present need.
    Present,
}

impl Oracle {
    /// Units to have desired at `now`.
    pub fn desired_at(&self, now: f64) -> u32 {
        let (from, to) = match self.sight {
            Sight::Foresight => (now, now + self.lead_secs),
            Sight::Present => ((now - self.lead_secs).max(0.0), now),
        };
        ((from / 60.0) as usize..=(to / 60.0) as usize)
            .filter_map(|m| self.required.get(m))
            .copied()
            .max()
            .unwrap_or(0)
    }
}

impl Controller for Oracle {
    fn tick(&mut self, now: f64, world: &mut World) {
        let units = self.desired_at(now);
        set_changed(world, &[units]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_queue_follows_the_brief() {
        // target = clamp(queue // 50, 2, 50)
        assert_eq!(SeedQueue::target(0), 2);
        assert_eq!(SeedQueue::target(149), 2);
        assert_eq!(SeedQueue::target(500), 10);
        assert_eq!(SeedQueue::target(100_000), 50);
        // +2 up, −1 down per step, never past the target.
        assert_eq!(SeedQueue::step(2, 500), 4);
        assert_eq!(SeedQueue::step(9, 500), 10);
        assert_eq!(SeedQueue::step(10, 0), 9);
        assert_eq!(SeedQueue::step(3, 0), 2);
        assert_eq!(SeedQueue::step(10, 500), 10);
    }

    #[test]
    fn the_oracle_looks_one_lead_ahead_and_the_reactive_one_as_far_back() {
        let required = vec![1, 1, 5, 2, 0, 0];
        // (sight, now s, desired): minutes seen ahead for 90 s, or kept for 90 s.
        let cases = [
            (Sight::Foresight, 0.0, 1),  // minutes 0..=1
            (Sight::Foresight, 60.0, 5), // minutes 1..=2
            (Sight::Foresight, 180.0, 2),
            (Sight::Foresight, 400.0, 0),
            (Sight::Present, 0.0, 1),
            (Sight::Present, 119.0, 1), // the step of minute 2 unknown before it
            (Sight::Present, 120.0, 5), // known from its first second
            (Sight::Present, 200.0, 5), // minutes 1..=3: kept for the lead
            (Sight::Present, 210.0, 5), // minutes 2..=3
            (Sight::Present, 270.0, 2), // minutes 3..=4
            (Sight::Present, 400.0, 0),
        ];
        for (sight, now, want) in cases {
            let o = Oracle {
                required: required.clone(),
                lead_secs: 90.0,
                sight,
            };
            assert_eq!(o.desired_at(now), want, "{sight:?} at {now} s");
        }
    }
}
