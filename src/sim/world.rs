//! The simulated world: an EC2-like cloud of Auto Scaling Groups and the inference replicas on
//! its instances, advanced by a discrete-event loop with a virtual clock.
//!
//! Cloud: desired capacity per pool → launches that take a cold start (or a shorter warm-pool
//! start), scale-in that drains in-flight requests (bounded), spot interruptions with the
//! 2-minute notice, earlier rebalance recommendations, storms and capacity shortages, and
//! per-second billing. Pools replace doomed spot capacity at once (capacity rebalancing).
//!
//! Replicas: continuous batching as in [`super::perf`]. Decode progress is kept as a virtual
//! clock per replica — tokens produced per running sequence — that advances at
//! 1 ÷ step time and stands still while a prefill runs, so each admission or completion costs
//! O(log batch) and no per-token events exist. The KV cache is paged as vLLM's: a sequence
//! holds its prompt and what it has generated (their sum over the replica is one linear
//! function of the clock), the replica admits while a prompt fits beside two more steps of
//! every sequence, and when the next step no longer fits, the latest admitted sequence is
//! preempted and recomputed later (an event at the clock the cache fills, like a completion). Routing: least outstanding requests over
//! accepting replicas, one admission queue; a request that waits longer than the queue timeout
//! fails; requests on a terminated replica are retried once.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use super::perf::{MinuteLoad, Profile};
use super::rng::Rng;
use super::stats::{Histogram, Minute};
use super::traffic::Request;
use crate::model::{LifecycleState, Market};

/// One Auto Scaling Group of the simulated cloud.
#[derive(Clone, Debug)]
pub struct PoolSpec {
    /// Pool name (as in the policy).
    pub name: String,
    /// Market.
    pub market: Market,
    /// The instance type it launches, with its performance and prices.
    pub profile: Profile,
    /// Units one instance counts for.
    pub weight_units: u32,
    /// Stopped warm-pool instances kept ready.
    pub warm_pool_min: u32,
    /// Whether spot interruptions and shortages reach this pool (the oracle's pool: never).
    pub exposed_to_spot_events: bool,
}

/// Spot behaviour of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct SpotModel {
    /// Interruptions per instance-hour, outside storms.
    pub interruptions_per_hour: f64,
    /// Share of interruptions announced earlier by a rebalance recommendation.
    pub rebalance_share: f64,
    /// How much earlier the recommendation comes, seconds (uniform range).
    pub rebalance_lead_secs: (f64, f64),
    /// Storms: at `at_secs`, each running spot instance is interrupted with probability
    /// `fraction`, at a uniform time within `duration_secs`.
    pub storms: Vec<Window>,
    /// Shortages: spot launches fail from `at_secs` for `duration_secs`.
    pub shortages: Vec<Window>,
}

/// A time window of a run with a strength.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    /// Start, seconds since the run's start.
    pub at_secs: f64,
    /// Length, seconds.
    pub duration_secs: f64,
    /// Strength (storms: the share of spot instances hit).
    pub fraction: f64,
}

impl Default for SpotModel {
    fn default() -> Self {
        SpotModel {
            // ~1 interruption per instance every 8 days: the "5–10 %/month" to "> 20 %/month"
            // frequency bands AWS's Spot Instance Advisor shows for GPU types, rounded up.
            interruptions_per_hour: 0.005,
            rebalance_share: 0.5,
            rebalance_lead_secs: (180.0, 600.0),
            storms: Vec::new(),
            shortages: Vec::new(),
        }
    }
}

/// CPU of an idle inference server, percent of the instance ([`World::cpu_utilization_pct`]).
pub const CPU_IDLE_PCT: f64 = 5.0;
/// CPU percent per percent of GPU busy time (one of four vCPUs).
pub const CPU_PER_GPU_BUSY: f64 = 0.25;
/// Host memory an inference server holds, percent ([`World::memory_utilization_pct`]).
pub const HOST_MEMORY_PCT: f64 = 35.0;

/// Seconds a scale-in drain may last before the instance is terminated anyway.
pub const DRAIN_TIMEOUT_SECS: f64 = 120.0;
/// The spot interruption notice, seconds.
pub const SPOT_NOTICE_SECS: f64 = 120.0;
use crate::model::RATE_WINDOW_SECS;

/// Where an instance is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstState {
    /// Launched; not serving yet.
    Booting,
    /// Serving.
    InService,
    /// Scale-in: finishing its requests, taking no new ones.
    Draining,
    /// Spot interruption notice received: taking no new requests, terminated at the deadline.
    Noticed,
    /// Gone; billing stopped.
    Terminated,
}

#[derive(Clone, Copy, Debug)]
struct Req {
    arrival: f64,
    prompt: u32,
    output: u32,
    retried: bool,
    ttft_recorded: bool,
    /// Its first token came within the TTFT SLO (goodput counts its output tokens).
    on_time: bool,
    /// Preempted after its first token (vLLM's recompute): back in the queue with what it had
    /// generated added to its prompt. Its stream stalls from `queued_at`, and the queue
    /// timeout counts from then.
    preempted: bool,
    /// When it went back into the queue, if preempted.
    queued_at: f64,
    /// Output tokens it had generated before its preemptions (goodput counts them).
    resumed_tokens: u32,
    /// The decode clock of its replica when it was admitted: it holds its prompt plus
    /// `v − v_start` generated tokens of KV cache.
    v_start: f64,
    /// Which admission this is (unique over the run): entries of the replica's finish heap and
    /// admission stack left by a preempted sequence are told apart by it.
    stamp: u64,
}

/// The stamp of a freed slot: no admission's.
const FREED: u64 = u64::MAX;

/// Total order on non-negative finite f64 through its bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key(u64);

fn key(x: f64) -> Key {
    Key(x.max(0.0).to_bits())
}

/// The replica figures the hot path needs, copied into each instance.
#[derive(Clone, Copy, Debug, PartialEq)]
struct ReplicaPerf {
    prefill_tokens_per_sec: f64,
    decode_base_secs: f64,
    decode_per_seq_secs: f64,
    max_seqs: u32,
    kv_cache_tokens: u64,
}

impl ReplicaPerf {
    fn of(p: &Profile) -> Self {
        ReplicaPerf {
            prefill_tokens_per_sec: p.prefill_tokens_per_sec,
            decode_base_secs: p.decode_base_secs,
            decode_per_seq_secs: p.decode_per_seq_secs,
            max_seqs: p.max_seqs,
            kv_cache_tokens: p.kv_cache_tokens,
        }
    }

    fn step_secs(&self, batch: u32) -> f64 {
        self.decode_base_secs + self.decode_per_seq_secs * batch as f64
    }
}

/// An instance and its replica.
#[derive(Clone, Debug)]
pub struct Instance {
    /// Index in the world's instance list.
    pub id: u32,
    /// Pool index.
    pub pool: usize,
    /// Lifecycle.
    pub state: InstState,
    /// Received a rebalance recommendation: still serving, counted as doomed.
    pub at_risk: bool,
    /// Billing start, seconds.
    pub launched_at: f64,
    /// Billing end, seconds.
    pub terminated_at: Option<f64>,
    /// Price, USD per second.
    pub usd_per_sec: f64,
    /// Running sequences.
    pub running: u32,
    /// Σ (prompt − v_start) over the running sequences: they hold `kv_base + running × v`
    /// tokens of KV cache at decode clock `v` (a sequence's cache grows a token per step, as
    /// vLLM allocates its blocks; none is reserved for the output at admission).
    kv_base: f64,
    /// Running sequences' slots and stamps in admission order: vLLM preempts the latest
    /// admitted when the KV cache is full. Entries of finished sequences are skipped when met.
    admitted: Vec<(u32, u64)>,
    perf: ReplicaPerf,
    /// Time of the pending valid completion event, if any.
    scheduled_at: Option<f64>,
    /// Start times of admitted requests' prefills, ascending; those after now are waiting.
    prefill_starts: VecDeque<f64>,
    v: f64,
    last: f64,
    prefill_free_at: f64,
    finish: BinaryHeap<Reverse<(Key, u32, u64)>>,
    gen: u32,
    busy_since: Option<f64>,
    busy_acc: f64,
    routed: u32,
    /// Since the last tick: prompt tokens admitted (prefilled), tokens generated, requests
    /// finished — the counters vLLM exposes, read as the daemon reads their rates.
    tick_prompt_tokens: u64,
    tick_generated_tokens: f64,
    tick_finished: u32,
    /// The same counts of the ticks before, newest last, up to a minute's worth.
    rate_history: VecDeque<(u64, f64, u32)>,
    /// When it came into service (rates count from then).
    in_service_at: f64,
}

impl Instance {
    /// As the engine sees it.
    pub fn lifecycle(&self) -> LifecycleState {
        match self.state {
            InstState::Booting if self.at_risk => LifecycleState::Interrupted,
            InstState::Booting => LifecycleState::Pending,
            InstState::InService if self.at_risk => LifecycleState::Interrupted,
            InstState::InService => LifecycleState::InService,
            InstState::Draining => LifecycleState::Draining,
            InstState::Noticed => LifecycleState::Interrupted,
            InstState::Terminated => LifecycleState::Terminating,
        }
    }
}

/// A billed interval that is not an instance's own life (a warm-pool instance initialising).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BilledInterval {
    /// Start, seconds.
    pub from: f64,
    /// End, seconds.
    pub to: f64,
    /// USD per second.
    pub usd_per_sec: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Finish { inst: u32, gen: u32 },
    Ready { inst: u32 },
    Rebalance { inst: u32 },
    Notice { inst: u32 },
    Terminate { inst: u32 },
    WarmReady { pool: u32 },
    Storm { idx: u32 },
    Minute,
}

/// Per-pool state of the simulated ASG.
#[derive(Clone, Debug)]
pub struct PoolState {
    /// The spec.
    pub spec: PoolSpec,
    /// Desired capacity, units.
    pub desired_units: u32,
    /// Stopped warm-pool instances ready to start.
    pub warm_available: u32,
    /// Warm-pool instances kept (the group's warm pool `MinSize`; the fleet controller may
    /// size it).
    pub warm_target: u32,
    /// Warm-pool instances initialising (billed as running until stopped).
    pub warm_initialising: u32,
    /// Launch attempts that failed (spot shortage).
    pub failed_launches: u64,
    /// When a launch first failed, seconds.
    pub first_failed_launch_at: Option<f64>,
}

/// The world.
pub struct World {
    /// Pools.
    pub pools: Vec<PoolState>,
    /// Every instance ever launched.
    pub instances: Vec<Instance>,
    /// Warm-pool initialisation intervals billed.
    pub extra_billing: Vec<BilledInterval>,
    spot: SpotModel,
    rng: Rng,
    now: f64,
    /// Billing and metrics stop here; the loop runs a little longer to finish requests.
    end: f64,
    queue_timeout: f64,
    tick_secs: f64,
    events: BinaryHeap<Reverse<(Key, u64, Ev)>>,
    ev_seq: u64,
    queue: VecDeque<Req>,
    seqs: Vec<Req>,
    free_slots: Vec<u32>,
    /// Admissions so far: the next one's stamp.
    admissions: u64,
    serving: Vec<u32>,
    /// Per-minute results so far.
    pub minutes: Vec<Minute>,
    /// Offered load per minute (arrivals and their tokens).
    pub loads: Vec<MinuteLoad>,
    ttft_by_minute: [Histogram; 3],
    /// TTFT of every admitted request.
    pub ttft_all: Histogram,
    ttft_recent: [Histogram; 4],
    /// Waits from arrival to prefill start of requests admitted in the last ticks.
    queue_wait_recent: [Histogram; 4],
    recent_idx: usize,
    // Integrals for the current minute.
    acc_last: f64,
    acc: [f64; 4],
    cost_usd: f64,
    burn_usd_per_sec: f64,
    /// Cost by market: [on-demand, spot], USD.
    pub cost_by_market: [f64; 2],
    burn_by_market: [f64; 2],
    routed_since_tick: u64,
    /// Ids of instances not terminated.
    alive: Vec<u32>,
    /// Units per pool that count toward its desired capacity (booting or in service, not
    /// doomed).
    pool_live_units: Vec<u32>,
    /// Units now: [unused, in-service spot, in-service on-demand, booting].
    units_now: [u32; 4],
    /// Spot instances that received an interruption notice.
    pub spot_interruptions: u64,
    /// Sequences preempted because a replica's KV cache was full (vLLM's recompute).
    pub preemptions: u64,
    /// The next minute to close.
    minute_idx: usize,
    /// TTFT SLO for goodput, seconds (requests whose first token came later add no goodput).
    pub ttft_slo_secs: f64,
    /// When the progress callback is called next, seconds.
    next_progress: f64,
}

const ACC_DESIRED: usize = 0;
const ACC_SPOT: usize = 1;
const ACC_OD: usize = 2;
const ACC_PENDING: usize = 3;

fn market_idx(m: Market) -> usize {
    match m {
        Market::OnDemand => 0,
        Market::Spot => 1,
    }
}

/// A controller: called every tick with the world as the daemon would observe it; it sets the
/// pools' desired capacity itself ([`World::set_desired`]), in the order it chooses.
pub trait Controller {
    /// One decision at `now_secs`.
    fn tick(&mut self, now_secs: f64, world: &mut World);
}

/// Sets each pool's desired units to `desired[i]` where it differs (pool order).
pub fn set_changed(world: &mut World, desired: &[u32]) {
    for (p, &units) in desired.iter().enumerate() {
        if world.pools[p].desired_units != units {
            world.set_desired(p, units);
        }
    }
}

impl World {
    /// A world with `pools` (desired capacity `initial[i]` units, already in service at t = 0,
    /// as a fleet that has been running), a spot model, a seed and a run length.
    pub fn new(
        pools: Vec<PoolSpec>,
        initial: &[u32],
        spot: SpotModel,
        seed: u64,
        duration_secs: f64,
        tick_secs: f64,
        queue_timeout_secs: f64,
    ) -> World {
        let minutes = (duration_secs / 60.0).ceil() as usize;
        let mut w = World {
            pools: pools
                .into_iter()
                .map(|spec| PoolState {
                    warm_available: spec.warm_pool_min,
                    warm_target: spec.warm_pool_min,
                    warm_initialising: 0,
                    spec,
                    desired_units: 0,
                    failed_launches: 0,
                    first_failed_launch_at: None,
                })
                .collect(),
            instances: Vec::new(),
            extra_billing: Vec::new(),
            spot,
            rng: Rng::new(seed, 2),
            now: 0.0,
            end: duration_secs,
            queue_timeout: queue_timeout_secs,
            tick_secs,
            events: BinaryHeap::new(),
            ev_seq: 0,
            queue: VecDeque::new(),
            seqs: Vec::new(),
            free_slots: Vec::new(),
            admissions: 0,
            serving: Vec::new(),
            minutes: vec![Minute::default(); minutes],
            loads: vec![MinuteLoad::default(); minutes],
            ttft_by_minute: Default::default(),
            ttft_all: Histogram::default(),
            ttft_recent: Default::default(),
            queue_wait_recent: Default::default(),
            recent_idx: 0,
            acc_last: 0.0,
            acc: [0.0; 4],
            cost_usd: 0.0,
            burn_usd_per_sec: 0.0,
            cost_by_market: [0.0; 2],
            burn_by_market: [0.0; 2],
            routed_since_tick: 0,
            alive: Vec::new(),
            pool_live_units: Vec::new(),
            units_now: [0; 4],
            spot_interruptions: 0,
            preemptions: 0,
            minute_idx: 0,
            next_progress: 0.0,
            ttft_slo_secs: 2.0,
        };
        w.pool_live_units = vec![0; w.pools.len()];
        for p in 0..w.pools.len() {
            let ebs = w.pools[p].spec.profile.stopped_usd_per_hour / 3600.0;
            w.add_burn(
                w.pools[p].spec.market,
                ebs * w.pools[p].warm_available as f64,
            );
            let units = initial.get(p).copied().unwrap_or(0);
            w.pools[p].desired_units = units;
            let n = units.div_ceil(w.pools[p].spec.weight_units);
            for _ in 0..n {
                let id = w.start_instance(p, 0.0);
                w.make_ready(id);
            }
        }
        for (i, s) in w.spot.storms.clone().iter().enumerate() {
            w.push(s.at_secs, Ev::Storm { idx: i as u32 });
        }
        w.push(60.0, Ev::Minute);
        w
    }

    /// Now, seconds since the start.
    pub fn now(&self) -> f64 {
        self.now
    }

    fn push(&mut self, at: f64, ev: Ev) {
        self.ev_seq += 1;
        self.events.push(Reverse((key(at), self.ev_seq, ev)));
    }

    // ---- integrals and billing -------------------------------------------------------------

    fn accrue(&mut self, now: f64) {
        let t = now.min(self.end);
        let dt = t - self.acc_last;
        if dt > 0.0 {
            let desired: u32 = self.pools.iter().map(|p| p.desired_units).sum();
            let [_, spot, od, pending] = self.units_now;
            self.acc[ACC_DESIRED] += desired as f64 * dt;
            self.acc[ACC_SPOT] += spot as f64 * dt;
            self.acc[ACC_OD] += od as f64 * dt;
            self.acc[ACC_PENDING] += pending as f64 * dt;
            self.cost_usd += self.burn_usd_per_sec * dt;
            for m in 0..2 {
                self.cost_by_market[m] += self.burn_by_market[m] * dt;
            }
            self.acc_last = t;
        }
    }

    fn add_burn(&mut self, market: Market, usd_per_sec: f64) {
        self.accrue(self.now);
        self.burn_usd_per_sec += usd_per_sec;
        self.burn_by_market[market_idx(market)] += usd_per_sec;
    }

    /// Total billed so far, USD.
    pub fn cost_usd(&self) -> f64 {
        self.cost_usd
    }

    // ---- cloud ------------------------------------------------------------------------------

    /// Sets a pool's desired capacity and lets the ASG act on it.
    pub fn set_desired(&mut self, pool: usize, units: u32) {
        self.accrue(self.now);
        self.pools[pool].desired_units = units;
        self.reconcile(pool);
    }

    fn live_units(&self, pool: usize) -> u32 {
        self.pool_live_units[pool]
    }

    /// Adds (`sign` = 1) or removes (−1) an instance's contribution to the unit counters.
    fn count(&mut self, id: u32, sign: i64) {
        let inst = &self.instances[id as usize];
        let w = self.pools[inst.pool].spec.weight_units as i64;
        let slot = match (inst.state, self.pools[inst.pool].spec.market) {
            (InstState::InService, Market::Spot) => Some(ACC_SPOT),
            (InstState::InService, Market::OnDemand) => Some(ACC_OD),
            (InstState::Booting, _) => Some(ACC_PENDING),
            _ => None,
        };
        if let Some(k) = slot {
            self.units_now[k] = (self.units_now[k] as i64 + sign * w) as u32;
        }
        if !inst.at_risk && matches!(inst.state, InstState::Booting | InstState::InService) {
            let p = inst.pool;
            self.pool_live_units[p] = (self.pool_live_units[p] as i64 + sign * w) as u32;
        }
    }

    /// Moves an instance to `state` (and sets `at_risk`), keeping the counters true.
    fn transition(&mut self, id: u32, state: InstState, at_risk: bool) {
        self.accrue(self.now);
        self.count(id, -1);
        let inst = &mut self.instances[id as usize];
        inst.state = state;
        inst.at_risk = at_risk;
        self.count(id, 1);
        if state == InstState::Terminated {
            self.alive.retain(|a| *a != id);
        }
    }

    fn shortage(&self, pool: usize) -> bool {
        let p = &self.pools[pool].spec;
        p.market == Market::Spot
            && p.exposed_to_spot_events
            && self
                .spot
                .shortages
                .iter()
                .any(|s| self.now >= s.at_secs && self.now < s.at_secs + s.duration_secs)
    }

    /// What an ASG does when live capacity differs from desired: launch while below it (a
    /// weighted group may overshoot by less than one instance's weight), remove instances
    /// while one can go without falling below it. The live count is re-read every step:
    /// terminating an instance may itself reconcile the pool.
    fn reconcile(&mut self, pool: usize) {
        let weight = self.pools[pool].spec.weight_units;
        while self.live_units(pool) < self.pools[pool].desired_units {
            if self.shortage(pool) {
                let now = self.now;
                let p = &mut self.pools[pool];
                p.failed_launches += 1;
                p.first_failed_launch_at.get_or_insert(now);
                return;
            }
            self.launch(pool);
        }
        while self.live_units(pool) >= self.pools[pool].desired_units + weight {
            // Booting first (newest first), then in service: least busy first.
            let candidates = || {
                self.alive
                    .iter()
                    .map(|&a| &self.instances[a as usize])
                    .filter(|i| i.pool == pool && !i.at_risk)
            };
            let victim = candidates()
                .filter(|i| i.state == InstState::Booting)
                .map(|i| i.id)
                .max()
                .or_else(|| {
                    candidates()
                        .filter(|i| i.state == InstState::InService)
                        .min_by_key(|i| (i.running, Reverse(i.id)))
                        .map(|i| i.id)
                });
            let Some(id) = victim else { break };
            self.scale_in(id);
        }
    }

    fn start_instance(&mut self, pool: usize, now: f64) -> u32 {
        let usd_per_sec = self.instances_price(pool);
        let market = self.pools[pool].spec.market;
        let id = self.instances.len() as u32;
        self.instances.push(Instance {
            id,
            pool,
            state: InstState::Booting,
            at_risk: false,
            launched_at: now,
            terminated_at: None,
            usd_per_sec,
            running: 0,
            kv_base: 0.0,
            admitted: Vec::new(),
            perf: ReplicaPerf::of(&self.pools[pool].spec.profile),
            scheduled_at: None,
            prefill_starts: VecDeque::new(),
            v: 0.0,
            last: now,
            prefill_free_at: now,
            finish: BinaryHeap::new(),
            gen: 0,
            busy_since: None,
            busy_acc: 0.0,
            routed: 0,
            tick_prompt_tokens: 0,
            tick_generated_tokens: 0.0,
            tick_finished: 0,
            rate_history: VecDeque::new(),
            in_service_at: f64::INFINITY,
        });
        self.accrue(now);
        self.alive.push(id);
        self.count(id, 1);
        self.add_burn(market, usd_per_sec);
        if market == Market::Spot && self.pools[pool].spec.exposed_to_spot_events {
            let rate = self.spot.interruptions_per_hour / 3600.0;
            if rate > 0.0 {
                // Every draw is made whether or not the interruption falls inside the run, so
                // two worlds of different lengths (the simulator's run, the daemon's week)
                // draw the same stream.
                let at = now + self.rng.exp(rate);
                let rebalance = self.rng.chance(self.spot.rebalance_share);
                let (lo, hi) = self.spot.rebalance_lead_secs;
                let early = at - self.rng.uniform(lo, hi);
                if at < self.end {
                    if rebalance {
                        self.push(early.max(now), Ev::Rebalance { inst: id });
                    }
                    self.push(at, Ev::Notice { inst: id });
                }
            }
        }
        id
    }

    fn launch(&mut self, pool: usize) {
        let now = self.now;
        let prof = self.pools[pool].spec.profile.clone();
        let from_warm = self.pools[pool].warm_available > 0;
        let median = if from_warm {
            prof.warm_start_median_secs
        } else {
            prof.cold_start_median_secs
        };
        let start = self.rng.lognormal(median, prof.start_sigma);
        if from_warm {
            // A stopped instance starts: its volume is now part of a running instance.
            self.pools[pool].warm_available -= 1;
            let market = self.pools[pool].spec.market;
            self.add_burn(market, -prof.stopped_usd_per_hour / 3600.0);
            self.refill_warm_pool(pool);
        }
        let id = self.start_instance(pool, now);
        self.push(now + start, Ev::Ready { inst: id });
    }

    /// Starts initialising warm-pool instances until the pool has its target: each one runs
    /// (billed as running) for a cold start, then waits stopped (billed for its volume only).
    fn refill_warm_pool(&mut self, pool: usize) {
        while self.pools[pool].warm_available + self.pools[pool].warm_initialising
            < self.pools[pool].warm_target
        {
            let now = self.now;
            let prof = &self.pools[pool].spec.profile;
            let (median, sigma) = (prof.cold_start_median_secs, prof.start_sigma);
            let init = self.rng.lognormal(median, sigma);
            let market = self.pools[pool].spec.market;
            let running = self.instances_price(pool);
            self.add_burn(market, running);
            self.extra_billing.push(BilledInterval {
                from: now,
                to: (now + init).min(self.end),
                usd_per_sec: running,
            });
            self.pools[pool].warm_initialising += 1;
            self.push(now + init, Ev::WarmReady { pool: pool as u32 });
        }
    }

    /// Sets how many warm-pool instances `pool` keeps (as `PutWarmPool`'s `MinSize`): more
    /// start initialising; stopped ones beyond it are released.
    pub fn set_warm_pool_min(&mut self, pool: usize, min_size: u32) {
        self.pools[pool].warm_target = min_size;
        let surplus = self.pools[pool].warm_available.saturating_sub(min_size);
        if surplus > 0 {
            self.pools[pool].warm_available -= surplus;
            let market = self.pools[pool].spec.market;
            let ebs = self.pools[pool].spec.profile.stopped_usd_per_hour / 3600.0;
            self.add_burn(market, -ebs * surplus as f64);
        }
        self.refill_warm_pool(pool);
    }

    fn instances_price(&self, pool: usize) -> f64 {
        let s = &self.pools[pool].spec;
        let per_hour = match s.market {
            Market::OnDemand => s.profile.on_demand_usd_per_hour,
            Market::Spot => s.profile.spot_usd_per_hour,
        };
        per_hour / 3600.0
    }

    fn make_ready(&mut self, id: u32) {
        if self.instances[id as usize].state != InstState::Booting {
            return;
        }
        let at_risk = self.instances[id as usize].at_risk;
        self.transition(id, InstState::InService, at_risk);
        let inst = &mut self.instances[id as usize];
        inst.last = self.now;
        inst.prefill_free_at = self.now;
        inst.in_service_at = self.now;
        self.serving.push(id);
        self.dispatch_to(id);
    }

    fn scale_in(&mut self, id: u32) {
        match self.instances[id as usize].state {
            InstState::Booting => self.terminate(id),
            InstState::InService => {
                let at_risk = self.instances[id as usize].at_risk;
                self.transition(id, InstState::Draining, at_risk);
                self.serving.retain(|s| *s != id);
                if self.instances[id as usize].running == 0 {
                    self.terminate(id);
                } else {
                    self.push(self.now + DRAIN_TIMEOUT_SECS, Ev::Terminate { inst: id });
                }
            }
            _ => {}
        }
    }

    fn terminate(&mut self, id: u32) {
        self.accrue(self.now);
        let now = self.now;
        let market;
        let price;
        if self.instances[id as usize].state == InstState::Terminated {
            return;
        }
        let at_risk = self.instances[id as usize].at_risk;
        self.transition(id, InstState::Terminated, at_risk);
        {
            let inst = &mut self.instances[id as usize];
            inst.terminated_at = Some(now.min(self.end));
            inst.gen += 1;
            inst.scheduled_at = None;
            price = inst.usd_per_sec;
            market = self.pools[inst.pool].spec.market;
        }
        self.serving.retain(|s| *s != id);
        self.add_burn(market, -price);
        // Requests still running are retried once elsewhere.
        let heap = std::mem::take(&mut self.instances[id as usize].finish);
        for Reverse((_, slot, stamp)) in heap.into_vec() {
            let mut r = self.seqs[slot as usize];
            if r.stamp != stamp {
                continue; // preempted earlier: it is in the queue already
            }
            self.free_slot(slot);
            if r.retried {
                self.fail(r.arrival);
            } else {
                r.retried = true;
                self.queue.push_front(r);
            }
        }
        let inst = &mut self.instances[id as usize];
        inst.running = 0;
        inst.kv_base = 0.0;
        inst.admitted.clear();
        inst.prefill_starts.clear();
        if let Some(since) = inst.busy_since.take() {
            inst.busy_acc += now - since;
        }
        let pool = inst.pool;
        self.reconcile(pool);
        self.dispatch_queue();
    }

    fn notice(&mut self, id: u32) {
        if matches!(
            self.instances[id as usize].state,
            InstState::Booting | InstState::InService | InstState::Draining
        ) {
            self.spot_interruptions += 1;
        }
        match self.instances[id as usize].state {
            InstState::Booting => self.terminate(id),
            InstState::InService | InstState::Draining => {
                let at_risk = self.instances[id as usize].at_risk;
                self.transition(id, InstState::Noticed, at_risk);
                let pool = self.instances[id as usize].pool;
                self.serving.retain(|s| *s != id);
                self.push(self.now + SPOT_NOTICE_SECS, Ev::Terminate { inst: id });
                self.reconcile(pool);
            }
            _ => {}
        }
    }

    // ---- replicas -----------------------------------------------------------------------------

    /// Tokens each running sequence of a replica has decoded since its clock was last brought
    /// up to date, at `now`; decoding stands still while a prefill runs.
    fn decode_progress(inst: &Instance, now: f64) -> f64 {
        if inst.running == 0 {
            return 0.0;
        }
        let from = if inst.prefill_free_at > inst.last {
            inst.prefill_free_at.min(now)
        } else {
            inst.last
        };
        if now > from {
            (now - from) / inst.perf.step_secs(inst.running)
        } else {
            0.0
        }
    }

    /// Brings a replica's decode clock to `now`.
    fn advance_decode(inst: &mut Instance, now: f64) {
        let dv = Self::decode_progress(inst, now);
        inst.v += dv;
        inst.tick_generated_tokens += dv * inst.running as f64;
        inst.last = now;
    }

    /// The replica's decode clock at `now`, leaving it as it is.
    fn decode_clock(inst: &Instance, now: f64) -> f64 {
        inst.v + Self::decode_progress(inst, now)
    }

    /// KV-cache tokens the replica's running sequences hold at `now`.
    fn kv_tokens(inst: &Instance, now: f64) -> f64 {
        (inst.kv_base + inst.running as f64 * Self::decode_clock(inst, now)).max(0.0)
    }

    /// The decode clock at which the running sequences' next step no longer fits the KV cache
    /// (each needs one more token): a sequence is preempted there. Half a token early, so that
    /// the event finds the cache full despite rounding; a lone sequence is never preempted.
    fn kv_full_clock(inst: &Instance) -> Option<f64> {
        (inst.running > 1).then(|| {
            let n = inst.running as f64;
            (inst.perf.kv_cache_tokens as f64 - 0.5 - inst.kv_base - n) / n
        })
    }

    /// Schedules the replica's next completion. A pending event that is not later than the
    /// new time is kept: it fires early, finds nothing finished and reschedules, which is
    /// cheaper than a heap push on every admission.
    fn reschedule(&mut self, id: u32) {
        let now = self.now;
        let inst = &mut self.instances[id as usize];
        let Some(Reverse((k, _, _))) = inst.finish.peek() else {
            inst.gen += 1;
            inst.scheduled_at = None;
            return;
        };
        // The next completion, or the step the KV cache runs out at if sooner.
        let vmin = Self::kv_full_clock(inst)
            .map_or(f64::from_bits(k.0), |full| f64::from_bits(k.0).min(full));
        let at = now.max(inst.prefill_free_at)
            + (vmin - inst.v).max(0.0) * inst.perf.step_secs(inst.running);
        if inst.scheduled_at.is_some_and(|t| t >= now && t <= at) {
            return;
        }
        inst.gen += 1;
        inst.scheduled_at = Some(at);
        let gen = inst.gen;
        self.push(at, Ev::Finish { inst: id, gen });
    }

    fn can_admit(&self, id: u32, r: &Req) -> bool {
        let inst = &self.instances[id as usize];
        // vLLM allocates a sequence's prompt blocks at admission and its output's as it
        // decodes; it admits while the prompt fits beside two more steps of every sequence (a
        // watermark: an admission never preempts at once).
        let n = (inst.running + 1) as f64;
        inst.running < inst.perf.max_seqs
            && Self::kv_tokens(inst, self.now) + r.prompt as f64 + 2.0 * n
                <= inst.perf.kv_cache_tokens as f64
    }

    fn record_ttft(&mut self, arrival: f64, ttft: f64) {
        let m = (arrival / 60.0) as usize;
        let b = Histogram::bucket(ttft);
        self.ttft_by_minute[m % 3].record_bucket(b);
        self.ttft_all.record_bucket(b);
        self.ttft_recent[self.recent_idx].record_bucket(b);
    }

    fn admit(&mut self, id: u32, mut r: Req) {
        let now = self.now;
        let first_token;
        {
            let inst = &mut self.instances[id as usize];
            Self::advance_decode(inst, now);
            let prefill_start = now.max(inst.prefill_free_at);
            first_token = prefill_start + r.prompt as f64 / inst.perf.prefill_tokens_per_sec;
            inst.prefill_free_at = first_token;
            // Forget prefills that have started; keep the ones still waiting (sorted).
            while inst.prefill_starts.front().is_some_and(|s| *s <= now) {
                inst.prefill_starts.pop_front();
            }
            inst.prefill_starts.push_back(prefill_start);
            if inst.running == 0 {
                inst.busy_since = Some(now);
            }
            inst.running += 1;
            r.v_start = inst.v;
            r.stamp = self.admissions;
            inst.kv_base += r.prompt as f64 - inst.v;
            if !r.preempted {
                // vLLM counts a request and its prompt once: a recompute is neither.
                inst.routed += 1;
                inst.tick_prompt_tokens += r.prompt as u64;
            }
        }
        self.admissions += 1;
        if !r.ttft_recorded && r.arrival < self.end {
            self.record_ttft(r.arrival, first_token - r.arrival);
            let wait = (first_token
                - r.prompt as f64 / self.instances[id as usize].perf.prefill_tokens_per_sec)
                - r.arrival;
            self.queue_wait_recent[self.recent_idx].record(wait.max(0.0));
            r.on_time = first_token - r.arrival <= self.ttft_slo_secs;
        }
        r.ttft_recorded = true;
        let slot = match self.free_slots.pop() {
            Some(s) => {
                self.seqs[s as usize] = r;
                s
            }
            None => {
                self.seqs.push(r);
                (self.seqs.len() - 1) as u32
            }
        };
        let inst = &mut self.instances[id as usize];
        let vfinish = inst.v + r.output as f64;
        inst.finish.push(Reverse((key(vfinish), slot, r.stamp)));
        inst.admitted.push((slot, r.stamp));
        if inst.admitted.len() > 2 * inst.perf.max_seqs as usize + 16 {
            // Forget the finished sequences' entries (a busy replica never empties).
            let seqs = &self.seqs;
            inst.admitted
                .retain(|&(slot, stamp)| seqs[slot as usize].stamp == stamp);
        }
        self.reschedule(id);
    }

    fn fail(&mut self, arrival: f64) {
        if let Some(m) = self.minutes.get_mut((arrival / 60.0) as usize) {
            m.failed += 1;
        }
    }

    fn succeed(&mut self, r: &Req) {
        if let Some(m) = self.minutes.get_mut((r.arrival / 60.0) as usize) {
            m.succeeded += 1;
            if r.on_time {
                m.good_output_tokens += (r.output + r.resumed_tokens) as u64;
            }
        }
    }

    fn expired(&self, r: &Req) -> bool {
        let since = if r.preempted { r.queued_at } else { r.arrival };
        self.now - since > self.queue_timeout
    }

    /// Fills replica `id` from the head of the queue.
    fn dispatch_to(&mut self, id: u32) {
        while let Some(r) = self.queue.front().copied() {
            if self.expired(&r) {
                self.queue.pop_front();
                self.fail(r.arrival);
                continue;
            }
            if self.instances[id as usize].state != InstState::InService || !self.can_admit(id, &r)
            {
                break;
            }
            self.queue.pop_front();
            self.admit(id, r);
        }
    }

    /// Fills every accepting replica from the queue.
    fn dispatch_queue(&mut self) {
        while let Some(r) = self.queue.front().copied() {
            if self.expired(&r) {
                self.queue.pop_front();
                self.fail(r.arrival);
                continue;
            }
            match self.pick(&r) {
                Some(id) => {
                    self.queue.pop_front();
                    self.admit(id, r);
                }
                None => break,
            }
        }
    }

    /// Least outstanding requests among replicas that can take `r`.
    fn pick(&self, r: &Req) -> Option<u32> {
        let mut best: Option<(u32, u32)> = None;
        for &id in &self.serving {
            let running = self.instances[id as usize].running;
            if best.is_none_or(|(_, b)| running < b) && self.can_admit(id, r) {
                best = Some((id, running));
            }
        }
        best.map(|(id, _)| id)
    }

    fn arrive(&mut self, req: &Request) {
        let minute = (req.arrival_secs / 60.0) as usize;
        if let (Some(m), Some(l)) = (self.minutes.get_mut(minute), self.loads.get_mut(minute)) {
            m.arrived += 1;
            l.add(req);
        }
        self.routed_since_tick += 1;
        let r = Req {
            arrival: req.arrival_secs,
            prompt: req.prompt_tokens,
            output: req.output_tokens,
            retried: false,
            ttft_recorded: false,
            on_time: false,
            preempted: false,
            queued_at: 0.0,
            resumed_tokens: 0,
            v_start: 0.0,
            stamp: 0,
        };
        // FIFO: nobody jumps a non-empty queue.
        if self.queue.is_empty() {
            if let Some(id) = self.pick(&r) {
                self.admit(id, r);
                return;
            }
        }
        self.queue.push_back(r);
    }

    fn finish(&mut self, id: u32) {
        let now = self.now;
        Self::advance_decode(&mut self.instances[id as usize], now);
        loop {
            let inst = &mut self.instances[id as usize];
            let Some(&Reverse((k, slot, stamp))) = inst.finish.peek() else {
                break;
            };
            if f64::from_bits(k.0) > inst.v + 1e-6 {
                break;
            }
            inst.finish.pop();
            let r = self.seqs[slot as usize];
            if r.stamp != stamp {
                continue; // preempted: it left the replica then
            }
            Self::release(inst, &r, now);
            inst.tick_finished += 1;
            self.free_slot(slot);
            self.succeed(&r);
        }
        if self.preempt_while_full(id) {
            // The preempted go to whichever replica has room first.
            self.dispatch_queue();
        }
        match self.instances[id as usize].state {
            InstState::InService => self.dispatch_to(id),
            InstState::Draining if self.instances[id as usize].running == 0 => {
                self.terminate(id);
                return;
            }
            _ => {}
        }
        self.reschedule(id);
    }

    /// Frees a sequence's slot; the entries its replica still keeps of it no longer match it.
    fn free_slot(&mut self, slot: u32) {
        self.seqs[slot as usize].stamp = FREED;
        self.free_slots.push(slot);
    }

    /// A running sequence leaves replica `inst` (finished or preempted): its KV cache is freed.
    fn release(inst: &mut Instance, r: &Req, now: f64) {
        inst.running -= 1;
        inst.kv_base -= r.prompt as f64 - r.v_start;
        if inst.running == 0 {
            // Exact again (the sum drifts by rounding over a long run).
            inst.kv_base = 0.0;
            inst.admitted.clear();
            if let Some(since) = inst.busy_since.take() {
                inst.busy_acc += now - since;
            }
        }
    }

    /// While the running sequences' next step does not fit replica `id`'s KV cache, preempts
    /// the latest admitted (vLLM's recompute): it frees its cache and goes back to the head of
    /// the queue with the tokens it generated added to its prompt, to be prefilled again.
    fn preempt_while_full(&mut self, id: u32) -> bool {
        let now = self.now;
        let mut any = false;
        loop {
            let inst = &mut self.instances[id as usize];
            let cap = inst.perf.kv_cache_tokens as f64;
            if inst.running <= 1 || Self::kv_tokens(inst, now) + inst.running as f64 <= cap - 1.0 {
                return any;
            }
            let Some((slot, stamp)) = inst.admitted.pop() else {
                return any;
            };
            let r = self.seqs[slot as usize];
            if r.stamp != stamp {
                continue; // finished already
            }
            Self::release(inst, &r, now);
            let generated = ((inst.v - r.v_start).max(0.0) as u32).min(r.output.saturating_sub(1));
            self.preemptions += 1;
            any = true;
            self.free_slot(slot);
            self.queue.push_front(Req {
                prompt: r.prompt + generated,
                output: r.output - generated,
                preempted: true,
                queued_at: now,
                resumed_tokens: r.resumed_tokens + generated,
                ..r
            });
        }
    }

    // ---- the loop -----------------------------------------------------------------------------

    fn close_minute(&mut self, m: usize) {
        self.accrue(self.now);
        if let Some(min) = self.minutes.get_mut(m) {
            min.desired_units = self.acc[ACC_DESIRED] / 60.0;
            min.in_service_spot_units = self.acc[ACC_SPOT] / 60.0;
            min.in_service_on_demand_units = self.acc[ACC_OD] / 60.0;
            min.pending_units = self.acc[ACC_PENDING] / 60.0;
            min.cost_usd = self.cost_usd;
        }
        self.acc = [0.0; 4];
        // Requests of minute m − 1 have all been admitted or failed by now (queue timeout <
        // 60 s): its TTFT histogram is final.
        if m >= 1 {
            let h = &mut self.ttft_by_minute[(m - 1) % 3];
            if let Some(min) = self.minutes.get_mut(m - 1) {
                min.ttft_p50_s = h.quantile(0.5);
                min.ttft_p95_s = h.quantile(0.95);
                min.ttft_p99_s = h.quantile(0.99);
            }
            h.clear();
        }
    }

    /// Runs the whole simulation: `requests` in arrival order, `controller` every tick from
    /// t = 0, exactly as the daemon drives the simulated cloud (see [`World::tick_start`]). The
    /// loop goes on for `tail_secs` after the end, without decisions, so in-flight requests
    /// finish.
    pub fn run(
        &mut self,
        requests: impl Iterator<Item = Request>,
        controller: &mut dyn Controller,
        tail_secs: f64,
        progress: &mut dyn FnMut(f64),
    ) {
        let mut requests = requests.peekable();
        let mut tick = 0u64;
        loop {
            let t = tick as f64 * self.tick_secs;
            if t >= self.end {
                break;
            }
            self.advance(t, &mut requests, progress);
            self.tick_start();
            controller.tick(t, self);
            self.tick_end();
            tick += 1;
        }
        self.advance(self.end + tail_secs, &mut requests, progress);
        // Everything still queued has waited past its timeout by now.
        while let Some(r) = self.queue.pop_front() {
            self.fail(r.arrival);
        }
        for inst in self.instances.iter_mut() {
            if let Some(since) = inst.busy_since.take() {
                inst.busy_acc += self.now - since;
            }
        }
        self.now = self.now.max(self.end);
        self.accrue(self.end);
        progress(1.0);
    }

    /// The start of a decision at the current time (after [`World::advance`] to it): queued
    /// requests past their timeout fail, even when nothing dispatches. Then the controller
    /// observes and sets desired capacity, then [`World::tick_end`]. The simulator's run loop
    /// and the simulated-cloud provider under the daemon make these calls in this order.
    pub fn tick_start(&mut self) {
        self.dispatch_queue();
    }

    /// The end of a decision: pools whose launches failed retry (as an ASG does every few
    /// seconds), and the per-tick gauge windows (request rates, GPU busy time, recent TTFT)
    /// start over.
    pub fn tick_end(&mut self) {
        if self.now < self.end {
            for p in 0..self.pools.len() {
                self.reconcile(p);
            }
        }
        self.end_tick();
    }

    /// Processes arrivals and events up to `until` (seconds since the start), then stands at
    /// `until`.
    pub fn advance<I: Iterator<Item = Request>>(
        &mut self,
        until: f64,
        requests: &mut std::iter::Peekable<I>,
        progress: &mut dyn FnMut(f64),
    ) {
        loop {
            let next_ev = self
                .events
                .peek()
                .map(|Reverse((k, _, _))| f64::from_bits(k.0))
                .filter(|t| *t <= until);
            let next_arrival = requests
                .peek()
                .map(|r| r.arrival_secs)
                .filter(|t| *t <= until);
            let arrival_first = match (next_arrival, next_ev) {
                (Some(a), Some(e)) => a < e,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if arrival_first {
                let Some(r) = requests.next() else { break };
                self.now = r.arrival_secs;
                self.arrive(&r);
                continue;
            }
            let Some(Reverse((k, _, ev))) = self.events.pop() else {
                break;
            };
            self.now = f64::from_bits(k.0);
            if self.now >= self.next_progress {
                progress((self.now / self.end).min(1.0));
                self.next_progress += self.end / 200.0;
            }
            match ev {
                Ev::Finish { inst, gen } => {
                    if self.instances[inst as usize].gen == gen {
                        self.instances[inst as usize].scheduled_at = None;
                        self.finish(inst);
                    }
                }
                Ev::Ready { inst } => self.make_ready(inst),
                Ev::Rebalance { inst } => {
                    let i = &mut self.instances[inst as usize];
                    if matches!(i.state, InstState::Booting | InstState::InService) && !i.at_risk {
                        let state = i.state;
                        self.transition(inst, state, true);
                        let pool = self.instances[inst as usize].pool;
                        self.reconcile(pool);
                    }
                }
                Ev::Notice { inst } => self.notice(inst),
                Ev::Terminate { inst } => {
                    if matches!(
                        self.instances[inst as usize].state,
                        InstState::Draining | InstState::Noticed
                    ) {
                        self.terminate(inst);
                    }
                }
                Ev::WarmReady { pool } => {
                    let p = pool as usize;
                    let market = self.pools[p].spec.market;
                    let ebs = self.pools[p].spec.profile.stopped_usd_per_hour / 3600.0;
                    let running = self.instances_price(p);
                    self.add_burn(market, ebs - running);
                    self.pools[p].warm_initialising -= 1;
                    self.pools[p].warm_available += 1;
                }
                Ev::Storm { idx } => {
                    let s = self.spot.storms[idx as usize];
                    let hit: Vec<u32> = self
                        .alive
                        .iter()
                        .map(|&a| &self.instances[a as usize])
                        .filter(|i| {
                            self.pools[i.pool].spec.market == Market::Spot
                                && self.pools[i.pool].spec.exposed_to_spot_events
                                && matches!(i.state, InstState::Booting | InstState::InService)
                        })
                        .map(|i| i.id)
                        .collect();
                    for id in hit {
                        if self.rng.chance(s.fraction) {
                            let at = self.now + self.rng.uniform(0.0, s.duration_secs);
                            self.push(at, Ev::Notice { inst: id });
                        }
                    }
                }
                Ev::Minute => {
                    self.close_minute(self.minute_idx);
                    self.minute_idx += 1;
                    self.push(self.now + 60.0, Ev::Minute);
                }
            }
        }
        if until.is_finite() && until > self.now {
            self.now = until;
        }
    }

    fn end_tick(&mut self) {
        self.recent_idx = (self.recent_idx + 1) % self.ttft_recent.len();
        self.ttft_recent[self.recent_idx].clear();
        self.routed_since_tick = 0;
        let now = self.now;
        let keep = self.rate_window_ticks().saturating_sub(1);
        for &id in &self.alive {
            let inst = &mut self.instances[id as usize];
            if inst.state != InstState::InService {
                // A rate counts from the scrape it first answered in service.
                inst.rate_history.clear();
                continue;
            }
            inst.rate_history.push_back((
                inst.tick_prompt_tokens,
                inst.tick_generated_tokens,
                inst.tick_finished,
            ));
            while inst.rate_history.len() > keep {
                inst.rate_history.pop_front();
            }
            inst.tick_prompt_tokens = 0;
            inst.tick_generated_tokens = 0.0;
            inst.tick_finished = 0;
        }
        self.queue_wait_recent[self.recent_idx].clear();
        for &id in &self.serving {
            let inst = &mut self.instances[id as usize];
            inst.busy_acc = 0.0;
            inst.routed = 0;
            if inst.busy_since.is_some() {
                inst.busy_since = Some(now);
            }
        }
    }

    // ---- what a controller observes -----------------------------------------------------------

    /// Requests waiting in the admission queue.
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// Instances that are not terminated.
    pub fn live_instances(&self) -> impl Iterator<Item = &Instance> {
        self.alive.iter().map(|&a| &self.instances[a as usize])
    }

    /// Fraction of the last tick an instance had at least one sequence running (DCGM's
    /// GPU utilisation is time-busy), percent.
    pub fn gpu_utilization_pct(&self, inst: &Instance) -> f64 {
        let busy = inst.busy_acc + inst.busy_since.map_or(0.0, |s| self.now - s);
        (100.0 * busy / self.tick_secs).min(100.0)
    }

    /// CPU utilisation of an instance, percent — a model: an inference server's engine loop
    /// (scheduling, tokenisation, streaming) keeps about one of a GPU instance's four vCPUs
    /// busy while the GPU is ([`CPU_PER_GPU_BUSY`]), and polls at [`CPU_IDLE_PCT`] when idle.
    /// It follows the GPU's busy time, never its throughput: why it makes a poor LLM signal.
    pub fn cpu_utilization_pct(&self, inst: &Instance) -> f64 {
        CPU_IDLE_PCT + CPU_PER_GPU_BUSY * self.gpu_utilization_pct(inst)
    }

    /// Host memory utilisation of an instance, percent — a model: the server holds the model's
    /// weights while loading and its CUDA context, a flat [`HOST_MEMORY_PCT`] whatever the load
    /// (the KV cache lives on the GPU).
    pub fn memory_utilization_pct(&self, _inst: &Instance) -> f64 {
        HOST_MEMORY_PCT
    }

    /// Requests admitted to an instance whose prefill has not started (with vLLM's scheduler
    /// these are still in its waiting queue).
    pub fn waiting_on(&self, inst: &Instance) -> usize {
        if inst.state == InstState::Terminated {
            return 0;
        }
        inst.prefill_starts
            .iter()
            .rev()
            .take_while(|s| **s > self.now)
            .count()
    }

    /// KV-cache use, percent.
    pub fn kv_cache_pct(&self, inst: &Instance) -> f64 {
        if inst.state == InstState::Terminated {
            return 0.0;
        }
        100.0 * Self::kv_tokens(inst, self.now)
            / self.pools[inst.pool].spec.profile.kv_cache_tokens as f64
    }

    /// Requests routed to an instance per second over the last tick.
    pub fn request_rate(&self, inst: &Instance) -> f64 {
        inst.routed as f64 / self.tick_secs
    }

    /// Requests arriving at the fleet per second over the last tick.
    pub fn fleet_request_rate(&self) -> f64 {
        self.routed_since_tick as f64 / self.tick_secs
    }

    /// P95 TTFT of requests admitted in the last minute, seconds (0 when none).
    pub fn recent_ttft_p95(&self) -> f64 {
        let mut h = Histogram::default();
        for r in &self.ttft_recent {
            h.merge(r);
        }
        h.quantile(0.95).unwrap_or(0.0)
    }

    /// Ticks a counter's rate is taken over: a minute's worth (Prometheus' `rate(…[1m])`),
    /// rounded up as the daemon's `scrape::RateWindow` covers at least the minute.
    fn rate_window_ticks(&self) -> usize {
        ((RATE_WINDOW_SECS / self.tick_secs - 1e-9).ceil() as usize).clamp(1, 60)
    }

    /// What an instance's server reports about its work: prompt tokens and tokens generated
    /// per second and requests finished per second over the last minute (or since it came into
    /// service), requests waiting for their prefill (with its share of the gateway queue) and
    /// running now, KV cache in use. `None` before a rate can be taken (as a counter's first
    /// scrape gives none): at the run's start and in an instance's first seconds in service.
    pub fn server_load(
        &self,
        inst: &Instance,
        queue_share: f64,
    ) -> Option<crate::model::ServerLoad> {
        let (mut prompt, mut generated, mut finished) = (
            inst.tick_prompt_tokens,
            inst.tick_generated_tokens,
            inst.tick_finished,
        );
        for (p, g, f) in &inst.rate_history {
            prompt += p;
            generated += g;
            finished += f;
        }
        let window = (1 + inst.rate_history.len()) as f64 * self.tick_secs;
        let secs = window.min(self.now - inst.in_service_at);
        if secs < 1.0 {
            return None;
        }
        Some(crate::model::ServerLoad {
            prompt_tokens_per_sec: prompt as f64 / secs,
            generation_tokens_per_sec: generated / secs,
            requests_per_sec: finished as f64 / secs,
            waiting: self.waiting_on(inst) as f64 + queue_share,
            running: inst.running as f64,
            kv_cache_fraction: self.kv_cache_pct(inst) / 100.0,
            window_secs: secs,
            at: crate::model::Timestamp::default(),
        })
    }

    /// P95 TTFT and P95 queue wait of the requests admitted in the last minute, seconds
    /// (`None` when none was).
    pub fn recent_latency(&self) -> Option<(f64, f64)> {
        let mut ttft = Histogram::default();
        let mut wait = Histogram::default();
        for (t, w) in self.ttft_recent.iter().zip(&self.queue_wait_recent) {
            ttft.merge(t);
            wait.merge(w);
        }
        Some((ttft.quantile(0.95)?, wait.quantile(0.95)?))
    }

    /// Requests that arrived in a completed minute, as CloudWatch would report it.
    pub fn arrivals_in_minute(&self, minute: usize) -> Option<u32> {
        let complete = (self.now / 60.0) as usize;
        (minute < complete).then(|| self.minutes.get(minute).map_or(0, |m| m.arrived))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Market;
    use crate::sim::traffic::evenly;

    /// One on-demand replica in service from the start, with a KV cache of `kv` tokens, and no
    /// spot events.
    fn one_replica(kv: u64) -> World {
        let mut profile = super::super::perf::builtin()
            .into_iter()
            .find(|p| p.instance_type == "g6e.xlarge" && p.model == "8b")
            .unwrap();
        profile.kv_cache_tokens = kv;
        let pool = PoolSpec {
            name: "p".into(),
            market: Market::OnDemand,
            profile,
            weight_units: 1,
            warm_pool_min: 0,
            exposed_to_spot_events: false,
        };
        let mut w = World::new(
            vec![pool],
            &[1],
            SpotModel::default(),
            1,
            3600.0,
            15.0,
            30.0,
        );
        w.queue_timeout = 3600.0;
        w
    }

    /// Runs `reqs` on `w` to `until` in 15 s ticks, looking every quarter second: the highest
    /// KV use seen and the most sequences running.
    fn replay(w: &mut World, reqs: Vec<Request>, until: f64) -> (f64, u32) {
        let mut it = reqs.into_iter().peekable();
        let (mut kv_high, mut running_high) = (0.0f64, 0u32);
        for step in 0..=(until * 4.0) as u32 {
            let t = step as f64 / 4.0;
            w.advance(t, &mut it, &mut |_| {});
            let inst = &w.instances[0];
            kv_high = kv_high.max(w.kv_cache_pct(inst));
            running_high = running_high.max(inst.running);
            if step % 60 == 0 {
                w.tick_start();
                w.tick_end();
            }
        }
        (kv_high, running_high)
    }

    /// vLLM's KV cache, as the replica models it: a sequence's output takes cache as it is
    /// generated, not at admission, so more sequences run than whole-output reservations would
    /// allow; when the cache fills, the latest admitted is preempted and recomputed later — and
    /// every request still finishes, with every output token it generated counted once.
    #[test]
    fn the_kv_cache_fills_as_tokens_are_generated_and_preempts_the_latest_when_full() {
        // (why, requests, prompt, output, KV tokens, preemptions expected, most running at
        // least, most running at most)
        let cases = [
            (
                "short outputs never fill it",
                40,
                100,
                10,
                20_000,
                false,
                40,
                40,
            ),
            // Whole outputs reserved, 20,000 tokens hold 18 sequences of 1,100; as generated,
            // 40 start at once (their prompts and two steps fit) and the cache fills later.
            (
                "long outputs fill it later",
                40,
                100,
                1_000,
                20_000,
                true,
                40,
                40,
            ),
        ];
        for (why, n, prompt, output, kv, preempts, low, high) in cases {
            let mut w = one_replica(kv);
            let (kv_high, running_high) =
                replay(&mut w, evenly(n as usize, 0.0, prompt, output), 1_800.0);
            let done: u32 = w.minutes.iter().map(|m| m.succeeded).sum();
            let failed: u32 = w.minutes.iter().map(|m| m.failed).sum();
            assert_eq!((done, failed), (n, 0), "{why}: every request finishes");
            assert_eq!(
                w.preemptions > 0,
                preempts,
                "{why}: {} preemptions",
                w.preemptions
            );
            assert!(
                (low..=high).contains(&running_high),
                "{why}: {running_high} running at most"
            );
            assert!(kv_high <= 100.0, "{why}: KV use {kv_high} % over the cache");
            let good: u64 = w.minutes.iter().map(|m| m.good_output_tokens).sum();
            let on_time: u64 = w
                .minutes
                .iter()
                .map(|m| m.good_output_tokens / output as u64)
                .sum();
            assert_eq!(
                good,
                on_time * output as u64,
                "{why}: whole outputs counted"
            );
            assert_eq!(w.queue_len(), 0, "{why}");
            assert_eq!(w.instances[0].running, 0, "{why}");
            assert!(w.instances[0].kv_base.abs() < 1e-9, "{why}: all KV freed");
        }
    }

    /// A preempted request's stream stalls while it waits to be recomputed; the queue timeout
    /// counts from its preemption, not from its arrival (its first token came long ago).
    #[test]
    fn a_preempted_request_times_out_from_its_preemption() {
        let mut w = one_replica(20_000);
        w.queue_timeout = 30.0;
        let r = Req {
            arrival: 0.0,
            prompt: 100,
            output: 10,
            retried: false,
            ttft_recorded: true,
            on_time: true,
            preempted: true,
            queued_at: 100.0,
            resumed_tokens: 5,
            v_start: 0.0,
            stamp: 0,
        };
        w.now = 120.0;
        assert!(!w.expired(&r), "20 s after its preemption");
        w.now = 131.0;
        assert!(w.expired(&r), "31 s after it");
        let fresh = Req {
            preempted: false,
            ..r
        };
        w.now = 31.0;
        assert!(
            w.expired(&fresh),
            "a request not yet served counts from its arrival"
        );
    }
}
