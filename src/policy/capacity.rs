//! The capacity model: what one unit of the reference type sustains, in *work* rather than in
//! requests — prefill tokens set TTFT, decode tokens set throughput — so the policy needs no
//! target fitted to one request mix.
//!
//! An inference server's work is the share of its time it spends prefilling and decoding
//! (prefill stalls decoding in the replica model, as in vLLM without chunked prefill, so they
//! add up):
//!
//! ```text
//! busy = P / prefill_tokens_per_sec  +  G × decode_secs_per_token(b)  +  waiting × w / drain
//! ```
//!
//! where `P` and `G` are its prompt and generated tokens per second, `b` the batch its KV cache
//! allows at the context its running sequences hold (KV in use ÷ running: long contexts shrink
//! the batch and make each generated token dearer), `w` the work of one of its requests
//! (its busy time ÷ the requests it finished) and `drain` the queue's age — its P95 wait, at
//! least the TTFT SLO ([`backlog_horizon_secs`]): the waiting requests' work over the time it
//! took to build up is the demand the servers do not take in — less what the server's idle
//! time clears in that time (a few requests that arrive together on a half-idle server are no
//! shortage). Counted in units
//! (an instance of weight 2 is two units), `token_work`'s recommendation is
//! `⌈Σ busy ÷ (target_utilization × correction)⌉` — what the work needs, however it is split
//! into requests. The sum is over one common window: a server that came into service within
//! the others' minute adds its served work for the share of it its rates cover
//! ([`window_busy_units`]).
//!
//! The **correction** (`[fleets.capacity] learn`) is the SLO's feedback, relative to the model
//! and with its own stabilisation: while TTFT is over the SLO *because requests queue* (their
//! P95 wait is a material part of it) with the decided capacity in service, for
//! [`CONFIRM_SAMPLES`] samples in a row (a cold start's backlog draining is not evidence), the
//! capacity counted per unit falls by a tenth per sample, to half the profile's at most; it is
//! given back a hundredth per sample only while the fleet runs at its corrected target with next
//! to no queueing (P95 wait under [`CALM_SHARE`] of the SLO) — evidence that the unit does that
//! much — and never above the profile. A low TTFT alone never lowers capacity, and TTFT that
//! more replicas cannot lower (a long prefill, nothing queued) never raises it. Nor does the
//! correction count more than the servers' **measured speed** ([`Correction::effective`]): the
//! speed each server's token rates and batch imply through the profile's step time
//! ([`speed_reading`]), averaged — read at any load, so a profile that overstates the servers
//! is found before their queues show it.
//!
//! A capacity-model scale-down also keeps the units its **prefill queue** needs
//! ([`queueing_floor_units`]: Erlang's C, its wait's tail stretched by the factor the fleet's
//! observed P95 waits showed over Erlang's prediction), and waits altogether while the latest
//! P95 wait is already over the queue's budget at this size ([`queue_over_budget`]).

use serde::{Deserialize, Serialize};

use crate::config::{Config, Fleet, MetricSpec, Signal, Target, WorkModel};
use crate::model::{FleetLatency, LifecycleState, ServerLoad, Snapshot, Timestamp, Units};
use crate::sim::perf::Profile;

/// The correction's floor: the profile may overstate a unit by 2× at most.
pub const MIN_CORRECTION: f64 = 0.5;
/// Multiplicative decrease per decision with queueing TTFT over the SLO.
pub const DECREASE: f64 = 0.1;
/// Additive increase per decision with the fleet busy and next to no queueing.
pub const INCREASE: f64 = 0.01;
/// Queue wait above this share of the SLO makes TTFT over the SLO a capacity problem.
pub const QUEUE_SHARE: f64 = 0.25;
/// Queue wait under this share of the SLO, with the fleet busy at its corrected target, gives
/// capacity back: half the wait that counts as queueing ([`QUEUE_SHARE`]), so a wait between
/// the two moves the correction neither way.
pub const CALM_SHARE: f64 = 0.5 * QUEUE_SHARE;
/// The queue's budget: a P95 wait over [`QUEUE_SHARE`] of the SLO counts as queueing — for the
/// correction, the queue floor, the tail factor and the wait before a scale-down alike.
fn over_queue_budget(wait_secs: f64, slo_secs: f64) -> bool {
    wait_secs > QUEUE_SHARE * slo_secs
}

/// Consecutive latency samples over the SLO before the correction moves.
pub const CONFIRM_SAMPLES: u32 = 3;

/// The prefill queue's tail factor is at most this: Allen–Cunneen's `(1 + Cs²) ÷ 2` for
/// prefill times whose squared coefficient of variation is 7 — long documents among chat.
pub const MAX_QUEUE_FACTOR: f64 = 4.0;
/// The weight of one latency sample in the queue's tail factor: about the last ten samples.
pub const QUEUE_FACTOR_WEIGHT: f64 = 0.1;

/// The weight of one speed reading in [`Correction::measured_speed`]: about the last 30, eight
/// minutes of 15 s ticks. At 0.1 (the last ten; measured before the reading skipped the
/// servers [`SPEED_MIN_BUSY`] and the decode test leave out) exact servers' noisier readings
/// cost the Azure code trace 7.5 points of savings against static-peak.
pub const SPEED_WEIGHT: f64 = 0.03;
/// A measured speed within this share under the profile's counts as the profile's: the
/// readings' own error (their medians on exact simulated servers were 0.97–1.0).
pub const SPEED_TOLERANCE: f64 = 0.05;
/// A server is read only while it is this busy by the profile's count (its served work, a
/// share of its units), and so at least this busy in fact (a slower server is busier): a
/// server idle for part of its minute reads its idle share as slowness. At three chat
/// requests a minute the reading sank to 0.15 of the profile's speed within three hours.
pub const SPEED_MIN_BUSY: f64 = 0.4;

/// What the correction remembers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Correction {
    /// Capacity counted per unit ÷ the profile's, `MIN_CORRECTION..=1`.
    pub factor: f64,
    /// The latency sample last taken in (each is taken once).
    pub last_latency_at: Option<Timestamp>,
    /// Consecutive samples with queueing TTFT over the SLO.
    pub over_streak: u32,
    /// The prefill queue's observed P95 wait ÷ Erlang's C's at the fleet's size — its tail
    /// factor, `1..=MAX_QUEUE_FACTOR`, averaged over samples ([`learn_queue_factor`]).
    pub queue_factor: f64,
    /// When the fleet's P95 wait went over the queue's budget and has stayed over it since
    /// (the sample's time); `None` while it is within it, or no usable sample says
    /// ([`observe_queue`]). Its age is how long the backlog has been building.
    pub queueing_since: Option<Timestamp>,
    /// The servers' speed ÷ the profile's, measured from their own counters
    /// ([`speed_reading`]), averaged over readings ([`SPEED_WEIGHT`]); 1 until one is taken.
    pub measured_speed: f64,
    /// The newest server load a speed reading was taken from (each is taken once).
    pub last_speed_at: Option<Timestamp>,
}

impl Correction {
    /// The capacity counted per unit ÷ the profile's: the SLO's feedback (`factor`), and no
    /// more than the servers' measured speed (within [`SPEED_TOLERANCE`]), `MIN_CORRECTION..=1`.
    /// The feedback learns only from queueing — late, and on a rise not at all while capacity
    /// is on its way; the speed is read at any load, so a profile that overstates the servers
    /// is found before their queues show it (`simulate --server-speed`, docs/simulator.md).
    pub fn effective(&self) -> f64 {
        let measured = (self.measured_speed / (1.0 - SPEED_TOLERANCE)).min(1.0);
        self.factor.min(measured).max(MIN_CORRECTION)
    }
}

impl Default for Correction {
    fn default() -> Self {
        Correction {
            factor: 1.0,
            last_latency_at: None,
            over_streak: 0,
            queue_factor: 1.0,
            queueing_since: None,
            measured_speed: 1.0,
            last_speed_at: None,
        }
    }
}

/// The model of one unit of a profile of `weight_units` units.
pub fn model_of(p: &Profile, weight_units: Units) -> WorkModel {
    WorkModel {
        prefill_tokens_per_sec: p.prefill_tokens_per_sec / weight_units.max(1) as f64,
        decode_base_secs: p.decode_base_secs,
        decode_per_seq_secs: p.decode_per_seq_secs,
        max_seqs: p.max_seqs,
        kv_cache_tokens: p.kv_cache_tokens,
        reference_weight_units: weight_units.max(1),
    }
}

/// Decode seconds of one reference instance per generated token, at the batch its KV cache
/// allows when each sequence holds `kv_per_seq` tokens (`None`: the full batch).
pub fn decode_secs_per_token(m: &WorkModel, kv_per_seq: Option<f64>) -> f64 {
    let by_kv = kv_per_seq
        .filter(|k| *k >= 1.0)
        .map_or(f64::INFINITY, |k| m.kv_cache_tokens as f64 / k);
    let batch = by_kv.floor().clamp(1.0, m.max_seqs.max(1) as f64);
    (m.decode_base_secs + m.decode_per_seq_secs * batch) / batch
}

/// Generated tokens per second one unit sustains at the full batch.
pub fn decode_tokens_per_sec(m: &WorkModel) -> f64 {
    1.0 / decode_secs_per_token(m, None) / m.reference_weight_units as f64
}

/// Units an instance of `weight` keeps busy with `load`, its waiting requests' work spread
/// over `drain_secs`.
pub fn busy_units(m: &WorkModel, load: &ServerLoad, weight: Units, drain_secs: f64) -> f64 {
    let b = busy_parts(m, load, weight, drain_secs);
    (b.served + b.backlog) * b.units
}

/// An instance's work in the capacity model: per reference replica, the share of its time its
/// served tokens take and the backlog its idle time cannot clear; `units`, the replicas'
/// units (its busy units are `(served + backlog) × units`).
struct BusyParts {
    served: f64,
    backlog: f64,
    units: f64,
}

/// An instance of `weight` units as `weight / reference` reference replicas sharing its load
/// evenly.
fn replicas_of(m: &WorkModel, weight: Units) -> f64 {
    weight.max(1) as f64 / m.reference_weight_units as f64
}

/// Prefill tokens per second of one reference replica (the model's rate is per unit).
fn prefill_per_replica(m: &WorkModel) -> f64 {
    m.prefill_tokens_per_sec * m.reference_weight_units as f64
}

fn busy_parts(m: &WorkModel, load: &ServerLoad, weight: Units, drain_secs: f64) -> BusyParts {
    let replicas = replicas_of(m, weight);
    let per = |x: f64| x / replicas;
    let kv_tokens = load.kv_cache_fraction * m.kv_cache_tokens as f64 * replicas;
    let kv_per_seq = (load.running >= 1.0).then(|| kv_tokens / load.running);
    let prefill_per_replica = prefill_per_replica(m);
    let served = per(load.prompt_tokens_per_sec) / prefill_per_replica
        + per(load.generation_tokens_per_sec) * decode_secs_per_token(m, kv_per_seq);
    let per_request = if load.requests_per_sec > 1e-9 {
        served / per(load.requests_per_sec)
    } else {
        // Nothing finished in the interval: at least the prefill of a request as long as the
        // running ones (or of a thousand tokens).
        // (TGI reports no KV use: a zero per sequence is no length.)
        kv_per_seq.filter(|k| *k >= 1.0).unwrap_or(1000.0) / prefill_per_replica
    };
    // What the replica's idle time cannot clear within the drain time.
    let drain = drain_secs.max(0.1);
    let spare = (1.0 - served).max(0.0) * drain;
    let backlog = (per(load.waiting) * per_request - spare).max(0.0) / drain;
    BusyParts {
        served,
        backlog,
        units: replicas * m.reference_weight_units as f64,
    }
}

/// What `token_work` reads an instance's load through: the capacity model, the time its
/// waiting requests' work is spread over ([`backlog_horizon_secs`]) and the fleet's common
/// rate window ([`fleet_window_secs`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WorkInput {
    /// The capacity model.
    pub model: WorkModel,
    /// Seconds the waiting requests' work is spread over.
    pub backlog_horizon_secs: f64,
    /// The window the fleet's rates cover, seconds.
    pub fleet_window_secs: f64,
}

/// The window the fleet's rates cover in common: the longest an in-service server's rates
/// cover, at most the rate window (a window stretched by a missed scrape is still a minute's
/// rate). Every server's is short just after the engine (or the simulation) starts, and then
/// the fleet's window is as short.
pub fn fleet_window_secs(snap: &Snapshot) -> f64 {
    in_service_loads(snap)
        .map(|(l, _)| l.window_secs)
        .fold(0.0, f64::max)
        .min(crate::model::RATE_WINDOW_SECS)
}

/// An instance's share of the fleet's work over the fleet's common window: its busy units
/// ([`busy_units`]) with the served part counted for the share of that window its own rates
/// cover. The fleet's work is the sum of its servers' over one common window: a server in
/// service for fifteen seconds of the others' minute did a quarter of a minute's work in it.
/// Counted at its full rate beside the others' minute averages, the same demand is counted
/// twice for a minute — the older servers' windows still hold what the newcomer now serves,
/// and a least-busy router fills an empty server first — and a fleet growing 3 → 4 units read
/// 5.2 units of work for 3.5 and bought two more. Its backlog (requests waiting now) is counted
/// whole.
pub fn window_busy_units(load: &ServerLoad, weight: Units, w: &WorkInput) -> f64 {
    let cover = if w.fleet_window_secs > 0.0 {
        (load.window_secs / w.fleet_window_secs).clamp(0.0, 1.0)
    } else {
        1.0
    };
    let b = busy_parts(&w.model, load, weight, w.backlog_horizon_secs);
    (cover * b.served + b.backlog) * b.units
}

/// The time over which `token_work` counts the waiting requests' work: the age of the queue
/// (the fleet's P95 wait before a prefill starts, from a usable latency sample), and at least
/// the TTFT SLO. By Little's law a queue of `N` requests that have waited `W` grows by about
/// `N ÷ W` requests a second beyond what the servers take in, so its work over its age is the
/// demand they do not serve — the capacity a backlog adds. Spread over the SLO alone, a queue
/// thirty seconds old counted fifteen times its inflow, and the fleet ordered capacity that
/// booted after the queue had gone (a three-minute burst that four units serve bought forty).
///
/// The P95 wait is that of the requests the servers *took in* over the sample's window: while a
/// queue grows it trails the queue's true age, which is at least the time since the waits went
/// over the queue's budget and stayed there (`queueing_since`). Over the wait alone, a queue that
/// had built for two minutes was spread over the 25 s its served requests had waited, and a
/// three-minute ×3 burst that four units serve bought 23 on top of two.
pub fn backlog_horizon_secs(
    fleet: &Fleet,
    snap: &Snapshot,
    queueing_since: Option<Timestamp>,
    now: Timestamp,
) -> f64 {
    let slo = fleet.slo.ttft_p95_secs;
    usable_wait_sample(fleet, snap, now).map_or(slo, |l| {
        // From sample to sample: a sample's own delay is no age of the queue.
        let age = queueing_since.map_or(0.0, |s| l.at.secs_since(s).max(0.0));
        slo.max(l.queue_wait_p95_secs).max(age)
    })
}

/// The fleet's latency sample when its P95 wait is usable at `now` (neither stale, nor from
/// the future, nor missing).
fn usable_wait_sample(fleet: &Fleet, snap: &Snapshot, now: Timestamp) -> Option<FleetLatency> {
    snap.latency.filter(|l| {
        crate::model::usable(now, l.at, fleet.stale_after_secs, l.queue_wait_p95_secs).is_ok()
    })
}

/// Keeps [`Correction::queueing_since`]: set at the first usable sample whose P95 wait is over
/// the queue's budget, kept while the samples stay over it, cleared by one within it — or by
/// none usable (a missing or stale sample is no evidence of an old queue; a young one counts
/// more of the backlog, which errs towards capacity).
pub fn observe_queue(c: &mut Correction, fleet: &Fleet, snap: &Snapshot, now: Timestamp) {
    let slo = fleet.slo.ttft_p95_secs;
    c.queueing_since = match usable_wait_sample(fleet, snap, now) {
        Some(l) if over_queue_budget(l.queue_wait_p95_secs, slo) => {
            Some(c.queueing_since.unwrap_or(l.at))
        }
        _ => None,
    };
}

/// The requests' work is measured over a minute (the servers' counter rates); with few
/// requests in it, it is a noisy estimate. A scale-down lands where the work's upper bound —
/// `1 + Z ÷ √n` times the estimate, `n` the requests the fleet finished in the window — would
/// use `scale_down_utilization` of each unit: busy chat traffic scales down nearly as far as
/// the deadband allows, a few long prompts a minute keep a wider margin (they flap otherwise).
pub const NOISE_Z: f64 = 2.0;

/// The snapshot the engine decides on: each server's load only where it may be used at `now`
/// — measured within the `token_work` metric's staleness limit (the strictest of them; the
/// fleet's without one), not from the future, every figure a number ≥ 0 — and otherwise none,
/// as from a server that was not measured. `token_work` judged each load's age, but the figures
/// the capacity model reads from all of them did not: the silence test, the fleet's common
/// rate window, the work's noise, the correction's evidence, the prefill queue and the learned
/// demand per unit. A stale load of requests that have since stopped kept the silence hold
/// off while the fresh loads scaled the fleet down; a stale load's long rate window counted
/// the fresh servers' work at a third. Borrowed unchanged when every load is usable.
pub fn with_usable_loads<'s>(
    fleet: &Fleet,
    snap: &'s Snapshot,
    now: Timestamp,
) -> std::borrow::Cow<'s, Snapshot> {
    let limit_secs = fleet
        .metrics
        .iter()
        .filter(|m| m.signal == Signal::TokenWork)
        .map(|m| m.stale_after_secs)
        .min()
        .unwrap_or(fleet.stale_after_secs);
    let usable = |l: &ServerLoad| {
        let figures = [
            l.prompt_tokens_per_sec,
            l.generation_tokens_per_sec,
            l.requests_per_sec,
            l.waiting,
            l.running,
            l.kv_cache_fraction,
            l.window_secs,
        ];
        let numbers = figures.iter().all(|v| v.is_finite() && *v >= 0.0);
        numbers && crate::model::usable(now, l.at, limit_secs, 0.0).is_ok()
    };
    if snap
        .instances
        .iter()
        .all(|i| i.load.as_ref().is_none_or(usable))
    {
        return std::borrow::Cow::Borrowed(snap);
    }
    let mut owned = snap.clone();
    for inst in &mut owned.instances {
        if inst.load.as_ref().is_some_and(|l| !usable(l)) {
            inst.load = None;
        }
    }
    std::borrow::Cow::Owned(owned)
}

/// Each in-service instance's server load, with its weight.
fn in_service_loads(snap: &Snapshot) -> impl Iterator<Item = (ServerLoad, Units)> + '_ {
    snap.instances
        .iter()
        .filter(|i| i.state == LifecycleState::InService)
        .filter_map(|i| i.load.map(|l| (l, i.weight_units)))
}

/// The units an instance's served work keeps busy (its backlog left out).
fn served_of(m: &WorkModel, load: ServerLoad, weight: Units) -> f64 {
    busy_units(
        m,
        &ServerLoad {
            waiting: 0.0,
            ..load
        },
        weight,
        1.0,
    )
}

/// The work estimate's relative noise, `Z ÷ √n` with `n` the requests the fleet's in-service
/// servers finished over their rate windows (see [`NOISE_Z`]).
pub fn work_noise(snap: &Snapshot) -> f64 {
    let finished: f64 = in_service_loads(snap)
        .map(|(l, _)| l.requests_per_sec * l.window_secs)
        .sum();
    NOISE_Z / finished.max(1.0).sqrt()
}

/// The requests the fleet's in-service servers had in a minute: those they finished (their
/// rate over the last minute — a window stretched by a missed scrape or cut short by a new
/// server still counts per minute), plus those waiting now (a backlog is requests that came
/// and were not served); `None` when no server reports its load.
pub fn request_activity(snap: &Snapshot) -> Option<f64> {
    in_service_loads(snap)
        .map(|(l, _)| l.requests_per_sec * crate::model::RATE_WINDOW_SECS + l.waiting)
        .reduce(|a, b| a + b)
}

/// The work estimate's relative noise a scale-down sizes on: `max(count_noise, observed)` —
/// what the request count implies ([`work_noise`]), or one standard deviation of what the work
/// has shown around its trend over the last minutes (`observed_noise`, relative; bursty mixes
/// show it where a count does not).
pub fn upper_noise(count_noise: f64, observed_noise: Option<f64>) -> f64 {
    count_noise.max(observed_noise.unwrap_or(0.0).max(0.0))
}

/// The share of the target a capacity-model scale-down lands at (see [`NOISE_Z`]): the work's
/// upper bound is `1 + noise` times the estimate ([`upper_noise`]). Measured on the robustness
/// matrix against the count alone: 119 cells held instead of 116, plateau flaps 116 instead of
/// 121, the same median cost; two deviations (Z) bought the same cells and cost 37 % more on
/// mixed-workload.
pub fn scale_down_share(fleet: &Fleet, noise: f64) -> f64 {
    let base = fleet.capacity.scale_down_utilization / fleet.capacity.target_utilization;
    base / (1.0 + noise)
}

/// The P95 (the SLO's quantile) of the prefill queue's wait a scale-down may leave: the wait
/// above which [`learn`] counts TTFT over the SLO as a capacity problem ([`QUEUE_SHARE`]).
pub const QUEUE_QUANTILE: f64 = 0.95;

/// The fewest units whose prefill queue keeps its P95 wait within [`QUEUE_SHARE`] of the SLO,
/// for the requests the in-service servers finish — times `1 + noise` ([`upper_noise`]), as a
/// scale-down sizes on the work's upper bound ([`scale_down_share`]) — and their
/// mean prompt at the corrected prefill speed, the wait's tail stretched by the factor the
/// fleet's own waits showed (`Correction::queue_factor`; [`crate::policy::queueing`]): a
/// scale-down goes no lower. `None` without a request finished or a prompt token counted.
pub fn queueing_floor_units(
    m: &WorkModel,
    snap: &Snapshot,
    slo_secs: f64,
    correction: &Correction,
    noise: f64,
    max_units: Units,
) -> Option<Units> {
    let (requests, service_secs) = prefill_queue(m, snap, correction.effective())?;
    Some(crate::policy::queueing::servers_for_wait(
        requests * (1.0 + noise.max(0.0)),
        service_secs,
        QUEUE_SHARE * slo_secs,
        QUEUE_QUANTILE,
        correction.queue_factor,
        max_units,
    ))
}

/// The served part only (no backlog): units the fleet's in-service instances keep busy.
pub fn served_units(m: &WorkModel, snap: &Snapshot) -> f64 {
    in_service_loads(snap)
        .map(|(l, w)| served_of(m, l, w))
        .sum()
}

/// Requests per minute and the units of work they kept busy, over the in-service instances
/// whose rates cover a full window: an instance's first minute in service reads requests
/// *finished* against work *begun* (its first prefills finish later), which understates what a
/// unit serves several-fold.
pub fn settled_demand(m: &WorkModel, snap: &Snapshot) -> (f64, f64) {
    in_service_loads(snap)
        .filter(|(l, _)| l.window_secs >= crate::model::RATE_WINDOW_SECS - 1e-6)
        .fold((0.0, 0.0), |(r, b), (l, w)| {
            (r + l.requests_per_sec * 60.0, b + served_of(m, l, w))
        })
}

/// The target an `"auto"` metric resolves to, for `target_utilization` `u`.
pub fn auto_target(signal: Signal, target: Target, m: &WorkModel, u: f64) -> Target {
    let figure = match signal {
        Signal::TokenWork => u,
        Signal::PromptTokensRate | Signal::FleetPromptTokensRate => m.prefill_tokens_per_sec * u,
        Signal::GenerationTokensRate | Signal::FleetGenerationTokensRate => {
            decode_tokens_per_sec(m) * u
        }
        _ => 100.0 * u,
    };
    target.with_figure(figure)
}

/// Whether a metric's target scales with the correction (capacity-model targets do).
pub fn corrected(spec: &MetricSpec) -> bool {
    spec.auto_target && spec.signal != Signal::KvCacheUsage
}

/// A fleet that needs a capacity model and has no profile for its reference type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fleet {fleet}: {why}; add a [[profiles]] table for {instance_type} (llm-autoscaler calibrate writes one from a benchmark)")]
pub struct CapacityError {
    /// The fleet.
    pub fleet: String,
    /// Its reference type.
    pub instance_type: String,
    /// What needs the model.
    pub why: String,
}

/// Fills each fleet's work model from its reference type's profile (the first on-demand pool's
/// first type, else the first pool's, serving the fleet's `model`) and resolves its `"auto"`
/// targets. A fleet with `token_work`, an `"auto"` target or a learned predictive
/// `demand_per_unit` and no profile is an error.
pub fn resolve(cfg: &mut Config, profiles: &[Profile]) -> Result<(), CapacityError> {
    cfg.fleets
        .iter_mut()
        .try_for_each(|fleet| resolve_fleet(fleet, profiles))
}

/// [`resolve`] for one fleet. Idempotent: a resolved `"auto"` target resolves to itself.
pub fn resolve_fleet(fleet: &mut Fleet, profiles: &[Profile]) -> Result<(), CapacityError> {
    let model = fleet.model.clone();
    let pool = fleet
        .pools
        .iter()
        .find(|p| p.market == crate::model::Market::OnDemand)
        .or(fleet.pools.first());
    let Some(t) = pool.and_then(|p| p.instance_types.first()) else {
        return Ok(());
    };
    let profile = crate::sim::perf::lookup(profiles, &t.instance_type, &model);
    fleet.capacity.model = profile.map(|p| model_of(p, t.weight_units));
    let needs = fleet
        .metrics
        .iter()
        .find(|m| m.auto_target || m.signal == Signal::TokenWork);
    match (fleet.capacity.model, needs) {
        (Some(m), _) => {
            let u = fleet.capacity.target_utilization;
            for spec in fleet.metrics.iter_mut().filter(|s| s.auto_target) {
                spec.target = auto_target(spec.signal, spec.target, &m, u);
            }
        }
        (None, Some(spec)) => {
            return Err(CapacityError {
                fleet: fleet.name.clone(),
                instance_type: t.instance_type.clone(),
                why: format!(
                    "metric {} needs the capacity model of {} serving a {model} model, which has no profile",
                    spec.name, t.instance_type
                ),
            })
        }
        (None, None) => {
            // The learned demand per unit counts requests per busy unit of the model.
            if fleet.predictive.as_ref().is_some_and(|p| p.demand_per_unit.is_none()) {
                return Err(CapacityError {
                    fleet: fleet.name.clone(),
                    instance_type: t.instance_type.clone(),
                    why: format!(
                        "[fleets.predictive] demand_per_unit = \"auto\" is learned through the capacity model of {} serving a {model} model, which has no profile (or give demand_per_unit as a number)",
                        t.instance_type
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Takes in the fleet's latest latency and updates the correction; returns it. Does nothing
/// without `learn`, a model, or a new latency sample that is usable at `now` (neither stale nor
/// stamped in the future).
pub fn learn(
    c: &mut Correction,
    fleet: &Fleet,
    snap: &Snapshot,
    current_units: Units,
    now: Timestamp,
) -> f64 {
    let (Some(m), true) = (fleet.capacity.model, fleet.capacity.learn) else {
        return c.factor;
    };
    observe_speed(c, &m, snap);
    let Some(lat) = snap.latency.filter(|l| {
        Some(l.at) != c.last_latency_at
            && crate::model::usable(now, l.at, fleet.stale_after_secs, l.ttft_p95_secs).is_ok()
    }) else {
        return c.effective();
    };
    c.last_latency_at = Some(lat.at);
    let ready: Units = snap.in_service_units();
    let slo = fleet.slo.ttft_p95_secs;
    learn_queue_factor(c, &m, snap, &lat, ready, slo);
    // Queueing with the decided capacity in service, below the ceiling: the model overstates a
    // unit. (At max_units the policy caps capacity, whatever a unit does.)
    let below_ceiling = current_units < fleet.max_units;
    if queueing_over_slo(&lat, slo) && ready >= current_units && ready > 0 && below_ceiling {
        c.over_streak += 1;
        if c.over_streak >= CONFIRM_SAMPLES {
            c.factor = (c.effective() * (1.0 - DECREASE)).max(MIN_CORRECTION);
        }
        return c.effective();
    }
    c.over_streak = 0;
    // Busy at the corrected target with next to no queueing: the unit does that much. Judged on
    // the wait, as the decrease is: a long prompt's prefill sets a TTFT floor that capacity does
    // not move, and on one above half the SLO a TTFT test never gave a unit back.
    let busy = served_units(&m, snap) / ready.max(1) as f64;
    let aim = fleet.capacity.target_utilization * c.effective();
    if lat.queue_wait_p95_secs < CALM_SHARE * slo && busy >= 0.9 * aim {
        c.factor = (c.factor + INCREASE).min(1.0);
    }
    c.effective()
}

/// Takes the servers' newest speed reading into [`Correction::measured_speed`], once per
/// scrape (the newest server load's time).
fn observe_speed(c: &mut Correction, m: &WorkModel, snap: &Snapshot) {
    let newest = in_service_loads(snap).map(|(l, _)| l.at).max();
    if newest.is_none() || newest == c.last_speed_at {
        return;
    }
    if let Some(r) = speed_reading(m, snap) {
        c.measured_speed += SPEED_WEIGHT * (r - c.measured_speed);
        c.last_speed_at = newest;
    }
}

/// The in-service servers' speed ÷ the profile's, from their own counters. A server with a
/// batch of `b` running sequences is never idle: it prefills (the profile's prefill rate ×
/// its speed `s`, stalling the batch) or takes a decode step, `b` tokens in the profile's
/// `base + per_seq × b` ÷ `s`. Its generated tokens/s are then
/// `G = s × b × (1 − P ÷ (prefill × s)) ÷ step(b)`, and so `s = G × step(b) ÷ b + P ÷ prefill`
/// (`P` its prompt tokens/s). Over the settled servers with a batch of one or more, at least
/// [`SPEED_MIN_BUSY`] busy, and decoding at least as long as they prefill (the two terms),
/// each counted by its batch. The batch is the scrape's and the rates the minute's, so one
/// reading errs either way — high after a quiet moment, low after a burst — and their average
/// does not: on the simulated servers, every server with a batch read, medians 0.97–1.0 on
/// exact servers (chat, code completion, long context) and 0.68–0.70 on servers at 0.7. A real
/// server's step has costs the profile's line leaves out (sampling, chunked prefill sharing a
/// step); they read as a slower unit, which for the profile's figures it is.
fn speed_reading(m: &WorkModel, snap: &Snapshot) -> Option<f64> {
    let prefill_per_replica = prefill_per_replica(m);
    let (made, batch) = in_service_loads(snap)
        .filter(|(l, _)| l.window_secs >= crate::model::RATE_WINDOW_SECS - 1e-6)
        .filter(|(l, w)| served_of(m, *l, *w) >= SPEED_MIN_BUSY * f64::from((*w).max(1)))
        .fold((0.0, 0.0), |(made, batch), (l, w)| {
            let replicas = replicas_of(m, w);
            let b = l.running / replicas;
            if b < 1.0 {
                return (made, batch);
            }
            let step = m.decode_base_secs + m.decode_per_seq_secs * b;
            let decoding = l.generation_tokens_per_sec / replicas * step / b;
            let prefilling = l.prompt_tokens_per_sec / replicas / prefill_per_replica;
            // A batch that mostly waits on prefills (short answers, a prompt's one token) is
            // there only while they run: the server idles between them, and reads slow.
            if decoding < prefilling {
                return (made, batch);
            }
            (
                made + (decoding + prefilling) * b * replicas,
                batch + b * replicas,
            )
        });
    (batch > 0.0).then(|| made / batch)
}

/// The prefill queue as Erlang's C sees it from the in-service servers' counts: (requests a
/// second, mean prefill seconds at the corrected speed). `None` without a request finished or
/// a prompt token counted.
fn prefill_queue(m: &WorkModel, snap: &Snapshot, correction: f64) -> Option<(f64, f64)> {
    let (requests, prompt) = in_service_loads(snap).fold((0.0, 0.0), |(r, p), (l, _)| {
        (r + l.requests_per_sec, p + l.prompt_tokens_per_sec)
    });
    let speed = m.prefill_tokens_per_sec * correction;
    (requests > 0.0 && prompt > 0.0 && speed > 0.0).then(|| (requests, prompt / requests / speed))
}

/// Takes one latency sample into the queue's tail factor: the P95 wait observed ÷ the one
/// Erlang's C predicts with the servers in service, `1..=MAX_QUEUE_FACTOR`. Where Erlang's C
/// predicts no P95 wait at all, a wait that counts as queueing ([`QUEUE_SHARE`] of the SLO)
/// is a sample of the most, and a smaller one of none (1): the model held. Prompts spread
/// wider than exponentially (a long document ahead of short questions) wait longer than
/// M/M/c says, and a scale-down sized on M/M/c alone was bought back when the waits showed.
fn learn_queue_factor(
    c: &mut Correction,
    m: &WorkModel,
    snap: &Snapshot,
    lat: &FleetLatency,
    ready: Units,
    slo: f64,
) {
    let Some((rate, service)) = prefill_queue(m, snap, c.effective()) else {
        return;
    };
    if ready == 0 || !lat.queue_wait_p95_secs.is_finite() {
        return;
    }
    let load = rate * service;
    let predicted =
        crate::policy::queueing::wait_quantile_secs(ready, load, service, QUEUE_QUANTILE, 1.0);
    if !predicted.is_finite() {
        return;
    }
    let observed = lat.queue_wait_p95_secs.max(0.0);
    let sample = if predicted > 0.0 {
        observed / predicted
    } else if over_queue_budget(observed, slo) {
        MAX_QUEUE_FACTOR
    } else {
        1.0
    };
    let sample = sample.clamp(1.0, MAX_QUEUE_FACTOR);
    c.queue_factor = (c.queue_factor + QUEUE_FACTOR_WEIGHT * (sample - c.queue_factor))
        .clamp(1.0, MAX_QUEUE_FACTOR);
}

/// Whether the fleet's latest usable latency sample shows its P95 prefill wait over the
/// queue's budget, [`QUEUE_SHARE`] of the SLO: the wait at this size is already longer than a
/// scale-down may leave, and fewer servers only queue longer — whatever a model of the queue
/// predicts (the waits of long-context fleets ran past the budget at sizes Erlang's C, even
/// stretched, found enough, and a scale-down was bought back minutes later).
pub fn queue_over_budget(fleet: &Fleet, snap: &Snapshot, now: Timestamp) -> bool {
    snap.latency.is_some_and(|l| {
        crate::model::usable(now, l.at, fleet.stale_after_secs, l.ttft_p95_secs).is_ok()
            && over_queue_budget(l.queue_wait_p95_secs, fleet.slo.ttft_p95_secs)
    })
}

fn queueing_over_slo(lat: &FleetLatency, slo: f64) -> bool {
    lat.ttft_p95_secs > slo && over_queue_budget(lat.queue_wait_p95_secs, slo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::perf::{builtin, lookup};

    fn g6e() -> WorkModel {
        model_of(lookup(&builtin(), "g6e.xlarge", "8b").unwrap(), 1)
    }

    #[test]
    fn busy_units_count_prefill_decode_and_backlog() {
        let m = g6e();
        let load = |p: f64, g: f64, r: f64, waiting: f64, running: f64, kv: f64| ServerLoad {
            prompt_tokens_per_sec: p,
            generation_tokens_per_sec: g,
            requests_per_sec: r,
            waiting,
            running,
            kv_cache_fraction: kv,
            window_secs: 60.0,
            at: Timestamp::default(),
        };
        // 5,000 prompt tokens/s on a 10,000 tokens/s prefill: half busy; nothing else.
        assert!(
            (busy_units(&m, &load(5000.0, 0.0, 1.0, 0.0, 0.0, 0.0), 1, 2.0) - 0.5).abs() < 1e-9
        );
        // Decode at the full batch (256): 2,943 tokens/s per replica.
        let full = decode_tokens_per_sec(&m);
        assert!(
            (full - 256.0 / (0.023 + 0.00025 * 256.0)).abs() < 1e-6,
            "{full}"
        );
        // Long contexts shrink the batch: 30 sequences of 6,200 tokens fill 98 % of the KV
        // cache, and each token costs (23 + 0.25 × 30) ms / 30.
        let long = load(0.0, 600.0, 1.0, 0.0, 30.0, 30.0 * 6200.0 / 190_000.0);
        let want = 600.0 * (0.023 + 0.00025 * 30.0) / 30.0;
        assert!((busy_units(&m, &long, 1, 2.0) - want).abs() < 1e-6);
        // Waiting requests add their work over the drain time, less what the idle half clears
        // in it: 2 req/s served at 0.5 busy is 0.25 s a request; 8 waiting is 2 s of work, the
        // idle half clears 1 s of it within 2 s: half a unit more.
        let queued = load(5000.0, 0.0, 2.0, 8.0, 1.0, 0.0);
        assert!((busy_units(&m, &queued, 1, 2.0) - 1.0).abs() < 1e-9);
        // Two waiting on the same half-idle server: cleared by its idle time, nothing more.
        let blip = load(5000.0, 0.0, 2.0, 2.0, 1.0, 0.0);
        assert!((busy_units(&m, &blip, 1, 2.0) - 0.5).abs() < 1e-9);
        // A weight-2 instance with twice the load is the same per unit: twice the units.
        let one = busy_units(&m, &load(3000.0, 900.0, 3.0, 2.0, 40.0, 0.2), 1, 2.0);
        let two = busy_units(&m, &load(6000.0, 1800.0, 6.0, 4.0, 80.0, 0.2), 2, 2.0);
        assert!((two - 2.0 * one).abs() < 1e-9, "{one} {two}");
    }

    #[test]
    fn a_new_server_counts_for_the_share_of_the_minute_its_rates_cover() {
        let m = g6e();
        let load = |prompt: f64, waiting: f64, window_secs: f64| ServerLoad {
            prompt_tokens_per_sec: prompt,
            requests_per_sec: prompt / 1000.0,
            waiting,
            running: 1.0,
            window_secs,
            ..ServerLoad::default()
        };
        // (prompt tokens/s, waiting, window, want): the served part times the window's share
        // of the minute; a window stretched by a missed scrape is a whole minute; a backlog is
        // counted whole (what the server's spare time cannot clear in 2 s: 5 waiting of
        // 1,000 tokens at 0.5 busy is 0.5 s of work less 1 s of idle time, none; 40 is 4 s
        // less 1 s, 1.5 units).
        let table = [
            (5000.0, 0.0, 60.0, 0.5),
            (5000.0, 0.0, 75.0, 0.5),
            (5000.0, 0.0, 15.0, 0.125),
            (5000.0, 5.0, 15.0, 0.125),
            (5000.0, 40.0, 15.0, 0.125 + 1.5),
            (5000.0, 40.0, 60.0, 0.5 + 1.5),
        ];
        let w = WorkInput {
            model: m,
            backlog_horizon_secs: 2.0,
            fleet_window_secs: 60.0,
        };
        for (prompt, waiting, window, want) in table {
            let got = window_busy_units(&load(prompt, waiting, window), 1, &w);
            assert!(
                (got - want).abs() < 1e-9,
                "{prompt} {waiting} {window}: {got}"
            );
        }
        // A fleet of 3 carrying 22,500 prompt tokens/s grows to 4 fifteen seconds ago: the
        // old servers' minutes hold 45 s at 7,500 and 15 s at 5,625 tokens/s, the newcomer
        // 15 s at 5,625. Together they are the fleet's minute — 2.25 units — not 2.67.
        let old = load(0.75 * 7500.0 + 0.25 * 5625.0, 0.0, 60.0);
        let new = load(5625.0, 0.0, 15.0);
        let fleet = 3.0 * window_busy_units(&old, 1, &w) + window_busy_units(&new, 1, &w);
        assert!((fleet - 2.25).abs() < 1e-9, "{fleet}");
        // Just after the engine starts every server's rates cover 15 s: so does the fleet's
        // window, and each counts whole.
        let started = WorkInput {
            fleet_window_secs: 15.0,
            ..w
        };
        assert!((window_busy_units(&new, 1, &started) - 0.5625).abs() < 1e-9);
        let naive = 3.0 * busy_units(&m, &old, 1, 2.0) + busy_units(&m, &new, 1, 2.0);
        assert!(naive > 2.6, "{naive}");
    }

    #[test]
    fn auto_targets_are_the_profiles_capacity_times_utilisation() {
        // (type, signal, want per unit at u = 0.7)
        let profiles = builtin();
        for t in ["g6.xlarge", "g6e.xlarge", "g5.xlarge", "p4d.24xlarge"] {
            let p = lookup(&profiles, t, "8b").unwrap();
            let m = model_of(p, 1);
            let avg = |s| {
                auto_target(
                    s,
                    Target::AverageValue {
                        average_value: f64::NAN,
                    },
                    &m,
                    0.7,
                )
                .figure()
            };
            assert!(
                (avg(Signal::PromptTokensRate) - 0.7 * p.prefill_tokens_per_sec).abs() < 1e-9,
                "{t}"
            );
            let decode = p.max_seqs as f64 / p.decode_step_secs(p.max_seqs);
            assert!(
                (avg(Signal::GenerationTokensRate) - 0.7 * decode).abs() < 1e-6,
                "{t}"
            );
            assert_eq!(avg(Signal::TokenWork), 0.7);
            let kv = auto_target(
                Signal::KvCacheUsage,
                Target::Utilization {
                    average_utilization: f64::NAN,
                },
                &m,
                0.7,
            );
            assert!((kv.figure() - 70.0).abs() < 1e-9);
        }
        // Weighted: a 4-unit reference instance's capacity is a quarter per unit.
        let p = lookup(&profiles, "g5.12xlarge", "8b").unwrap();
        let m = model_of(p, 4);
        let avg = auto_target(
            Signal::PromptTokensRate,
            Target::AverageValue {
                average_value: f64::NAN,
            },
            &m,
            0.5,
        );
        assert!((avg.figure() - 0.5 * p.prefill_tokens_per_sec / 4.0).abs() < 1e-9);
    }

    /// Without a profile for the reference type, what needs the model is refused with the
    /// remedy; a fleet that needs nothing of it loads.
    #[test]
    fn what_needs_the_model_without_a_profile_is_refused() {
        let fleet = |extra: &str, signal: &str, target: &str| {
            let text = format!(
                "[[fleets]]\nname = \"f\"\nmin_units = 1\nmax_units = 4\n\
                 [[fleets.pools]]\nname = \"p\"\nmarket = \"on-demand\"\ninstance_types = [{{ type = \"x9.mystery\" }}]\n\
                 [[fleets.metrics]]\nsignal = \"{signal}\"\ntarget = {target}\n{extra}"
            );
            crate::config::parse_str("p.toml", &text)
                .unwrap()
                .fleets
                .remove(0)
        };
        let queue = "{ type = \"AverageValue\", average_value = 5 }";
        let auto = "{ type = \"AverageValue\", average_value = \"auto\" }";
        let predictive = "[fleets.predictive]\n";
        let cases = [
            ("", "queue_depth", queue, None),
            (
                predictive,
                "queue_depth",
                queue,
                Some("demand_per_unit = \"auto\""),
            ),
            (
                "[fleets.predictive]\ndemand_per_unit = 90\n",
                "queue_depth",
                queue,
                None,
            ),
            (
                "",
                "token_work",
                auto,
                Some("metric token_work needs the capacity model"),
            ),
        ];
        for (extra, signal, target, want) in cases {
            let mut f = fleet(extra, signal, target);
            let got = resolve_fleet(&mut f, &builtin())
                .err()
                .map(|e| e.to_string());
            match (want, &got) {
                (None, None) => {}
                (Some(w), Some(e)) if e.contains(w) && e.contains("x9.mystery") => {}
                _ => panic!("{extra}{signal}: {got:?}, want {want:?}"),
            }
        }
    }

    /// A fleet of `g6e.xlarge` on `token_work` with the correction on, 1–`max` units.
    fn learning_fleet(max: u32) -> Fleet {
        let text = format!(
            "[[fleets]]\nname = \"f\"\nmin_units = 1\nmax_units = {max}\n\
             [[fleets.pools]]\nname = \"p\"\nmarket = \"on-demand\"\ninstance_types = [{{ type = \"g6e.xlarge\" }}]\n\
             [[fleets.metrics]]\nsignal = \"token_work\"\n\
             target = {{ type = \"AverageValue\", average_value = \"auto\" }}\n"
        );
        let mut f = crate::config::parse_str("p.toml", &text)
            .unwrap()
            .fleets
            .remove(0);
        resolve_fleet(&mut f, &builtin()).unwrap();
        assert!(f.capacity.learn, "learn is on by default");
        f
    }

    /// `in_service` servers each prefilling `busy` of a unit's prompt capacity, and the fleet's
    /// P95 TTFT and queue wait measured at `at`.
    fn latency_snapshot(in_service: u32, busy: f64, ttft: f64, wait: f64, at: i64) -> Snapshot {
        let m = g6e();
        let load = ServerLoad {
            prompt_tokens_per_sec: busy * m.prefill_tokens_per_sec,
            requests_per_sec: 1.0,
            window_secs: 60.0,
            at: Timestamp(at * 1000),
            ..ServerLoad::default()
        };
        Snapshot {
            desired_units: in_service,
            latency: Some(FleetLatency {
                ttft_p95_secs: ttft,
                queue_wait_p95_secs: wait,
                at: Timestamp(at * 1000),
            }),
            ..snapshot_of(&vec![(load, 1); in_service as usize])
        }
    }

    /// A backlog's work is spread over the queue's age — the P95 wait of a usable sample, at
    /// least the SLO — so a saturated server's queue reads as the inflow it did not take in
    /// (Little's law), not as its size over the SLO.
    #[test]
    fn a_backlog_counts_over_the_queues_age() {
        let fleet = learning_fleet(12);
        let slo = fleet.slo.ttft_p95_secs;
        let now = Timestamp(1_000_000);
        let stale = 1000 - fleet.stale_after_secs as i64 - 1;
        // (why, P95 wait, sample taken at, want)
        let cases = [
            ("nothing waits", 0.0, 1000, slo),
            ("a wait under the SLO", 0.5, 1000, slo),
            ("a queue 30 s old", 30.0, 1000, 30.0),
            ("a stale sample", 30.0, stale, slo),
            ("a sample from the future", 30.0, 1600, slo),
            ("a NaN wait", f64::NAN, 1000, slo),
        ];
        for (why, wait, at, want) in cases {
            let snap = latency_snapshot(2, 1.0, 31.0, wait, at);
            assert_eq!(
                backlog_horizon_secs(&fleet, &snap, None, now),
                want,
                "{why}"
            );
        }
        let mut snap = latency_snapshot(2, 1.0, 31.0, 30.0, 1000);
        snap.latency = None;
        assert_eq!(
            backlog_horizon_secs(&fleet, &snap, None, now),
            slo,
            "no latency"
        );
        // A saturated server (one request a second, a second of work each) with 30 requests
        // that waited 30 s: one request a second more came than it took in — one more unit.
        let m = g6e();
        let load = ServerLoad {
            waiting: 30.0,
            ..latency_snapshot(1, 1.0, 31.0, 30.0, 1000).instances[0]
                .load
                .unwrap()
        };
        assert!((busy_units(&m, &load, 1, 30.0) - 2.0).abs() < 1e-9);
        // Over the SLO the same queue read as fifteen more units.
        assert!((busy_units(&m, &load, 1, slo) - (1.0 + 30.0 / slo)).abs() < 1e-9);
    }

    /// The queue's age: from the first sample over the queue's budget to the latest, while the
    /// samples stay over it; a sample within it, or none usable, starts over. A queue that has
    /// built for two minutes counts its backlog over two minutes, though its served requests
    /// waited 25 s.
    #[test]
    fn the_queue_is_as_old_as_its_waits_have_been_over_budget() {
        let fleet = learning_fleet(12);
        let slo = fleet.slo.ttft_p95_secs;
        let stale = fleet.stale_after_secs as i64 + 1;
        /// (why, P95 wait, the sample's age at the decision, the decision's time, the queue
        /// since, the backlog's horizon), seconds.
        type Case = (&'static str, f64, i64, i64, Option<i64>, f64);
        let cases: [Case; 7] = [
            ("within the budget", 0.4, 0, 1000, None, slo),
            (
                "over it: starts at the sample",
                3.0,
                5,
                1000,
                Some(995),
                3.0,
            ),
            ("still over: the age grows", 25.0, 0, 1120, Some(995), 125.0),
            ("a stale sample: starts over", 25.0, stale, 1135, None, slo),
            ("over again", 25.0, 0, 1150, Some(1150), 25.0),
            (
                "a wait older than the episode",
                40.0,
                0,
                1165,
                Some(1150),
                40.0,
            ),
            ("back within the budget", 0.2, 0, 1180, None, slo),
        ];
        let mut c = Correction::default();
        for (why, wait, age, now, since, horizon) in cases {
            let snap = latency_snapshot(2, 1.0, wait + 0.5, wait, now - age);
            let now = Timestamp(now * 1000);
            observe_queue(&mut c, &fleet, &snap, now);
            assert_eq!(
                c.queueing_since,
                since.map(|s| Timestamp(s * 1000)),
                "{why}"
            );
            let got = backlog_horizon_secs(&fleet, &snap, c.queueing_since, now);
            assert_eq!(got, horizon, "{why}");
        }
    }

    /// The requests the fleet had over the last minute: each in-service server's finished
    /// requests over its rate window plus those waiting now; none without a load.
    #[test]
    fn request_activity_counts_finished_and_waiting_requests() {
        let mut snap = latency_snapshot(3, 0.5, 0.5, 0.0, 100);
        // 1 request/s over 60 s on each of three servers.
        assert_eq!(request_activity(&snap), Some(180.0));
        snap.instances[0].load.as_mut().unwrap().waiting = 25.0;
        assert_eq!(request_activity(&snap), Some(205.0));
        // A rate taken over 75 s (a missed scrape) still counts per minute.
        snap.instances[2].load.as_mut().unwrap().window_secs = 75.0;
        assert_eq!(request_activity(&snap), Some(205.0));
        snap.instances[1].state = LifecycleState::Pending;
        assert_eq!(
            request_activity(&snap),
            Some(145.0),
            "pending servers are not counted"
        );
        for i in &mut snap.instances {
            i.load = None;
        }
        assert_eq!(request_activity(&snap), None);
    }

    /// The queue's tail factor is the fleet's P95 prefill wait over Erlang's C's at its size,
    /// from 1 to [`MAX_QUEUE_FACTOR`], a tenth of the way per sample.
    #[test]
    fn the_queue_factor_is_the_observed_wait_over_erlangs() {
        let fleet = learning_fleet(12);
        // Two servers, each finishing a request a second of 0.3 s prefill: Erlang's C says
        // 14 % wait and a P95 wait of about 0.2 s.
        let predicted = crate::policy::queueing::wait_quantile_secs(2, 0.6, 0.3, 0.95, 1.0);
        assert!(predicted > 0.1 && predicted < 0.3, "{predicted}");
        let settled = |k: f64| 1.0 + (k - 1.0) * (1.0 - (1.0 - QUEUE_FACTOR_WEIGHT).powi(60));
        // (why, servers, busy each, observed P95 wait, samples, want)
        let cases = [
            (
                "twice the predicted wait",
                2,
                0.3,
                2.0 * predicted,
                60,
                settled(2.0),
            ),
            ("the predicted wait", 2, 0.3, predicted, 60, 1.0),
            (
                "shorter than predicted: never below 1",
                2,
                0.3,
                0.0,
                60,
                1.0,
            ),
            (
                "one sample moves it a tenth of the way",
                2,
                0.3,
                3.0 * predicted,
                1,
                1.2,
            ),
            (
                "far beyond: at most the cap",
                2,
                0.3,
                100.0 * predicted,
                60,
                settled(MAX_QUEUE_FACTOR),
            ),
            (
                "none predicted, queueing seen: the cap",
                4,
                0.1,
                1.0,
                60,
                settled(MAX_QUEUE_FACTOR),
            ),
            ("none predicted, a short wait seen: 1", 4, 0.1, 0.2, 60, 1.0),
        ];
        for (why, servers, busy, wait, samples, want) in cases {
            let mut k = Correction::default();
            for i in 0..samples {
                let snap = latency_snapshot(servers, busy, 1.0, wait, 15 * i);
                learn(&mut k, &fleet, &snap, servers, Timestamp(15_000 * i));
            }
            assert!(
                (k.queue_factor - want).abs() < 1e-9,
                "{why}: {}, want {want}",
                k.queue_factor
            );
        }
    }

    /// The queue floor stretches its wait by the learned factor: three servers finishing three
    /// requests a second of 0.2 s prefill need two by Erlang's C, three when waits run four
    /// times as long.
    #[test]
    fn the_queue_floor_stretches_the_wait_by_the_learned_factor() {
        let fleet = learning_fleet(12);
        let m = g6e();
        let snap = latency_snapshot(3, 0.2, 1.0, 0.0, 0);
        let slo = fleet.slo.ttft_p95_secs;
        let floor = |queue_factor: f64| {
            let c = Correction {
                queue_factor,
                ..Correction::default()
            };
            queueing_floor_units(&m, &snap, slo, &c, 0.0, 12)
        };
        assert_eq!(floor(1.0), Some(2));
        assert_eq!(floor(MAX_QUEUE_FACTOR), Some(3));
    }

    /// The correction moves only on evidence: queueing TTFT over the SLO with the decided
    /// capacity in service, below the ceiling, confirmed; given back only while busy at the
    /// corrected target with TTFT well under the SLO; bounded to `MIN_CORRECTION..=1`.
    #[test]
    fn the_correction_learns_from_queueing_only() {
        /// Identical latency samples, and the factor they must leave.
        struct Case {
            what: &'static str,
            decided: u32,
            in_service: u32,
            busy: f64,
            ttft: f64,
            wait: f64,
            samples: i64,
            want: f64,
        }
        let confirmed = (1.0 - DECREASE) * (1.0 - DECREASE);
        #[rustfmt::skip]
        let cases = [
            Case { what: "queueing over the SLO: lowered at the third sample in a row, again at the fourth", decided: 4, in_service: 4, busy: 0.7, ttft: 3.0, wait: 1.5, samples: 4, want: confirmed },
            Case { what: "two samples are not evidence", decided: 4, in_service: 4, busy: 0.7, ttft: 3.0, wait: 1.5, samples: 2, want: 1.0 },
            Case { what: "a long prefill with nothing queued: more replicas would not help", decided: 4, in_service: 4, busy: 0.7, ttft: 3.0, wait: 0.1, samples: 6, want: 1.0 },
            Case { what: "capacity still booting: its backlog is not evidence", decided: 6, in_service: 4, busy: 0.7, ttft: 3.0, wait: 1.5, samples: 6, want: 1.0 },
            Case { what: "at max_units the policy caps capacity, whatever a unit does", decided: 4, in_service: 4, busy: 0.7, ttft: 3.0, wait: 1.5, samples: 6, want: 1.0 },
            Case { what: "fast and busy from the start: nothing to give back above 1", decided: 4, in_service: 4, busy: 0.7, ttft: 0.3, wait: 0.0, samples: 6, want: 1.0 },
            Case { what: "a low TTFT alone never lowers capacity", decided: 4, in_service: 4, busy: 0.1, ttft: 0.3, wait: 0.0, samples: 6, want: 1.0 },
            Case { what: "the floor: the profile overstates a unit by 2x at most", decided: 4, in_service: 4, busy: 0.7, ttft: 3.0, wait: 1.5, samples: 40, want: MIN_CORRECTION },
        ];
        for c in cases {
            let max = if c.what.starts_with("at max_units") {
                4
            } else {
                12
            };
            let fleet = learning_fleet(max);
            let mut k = Correction::default();
            let mut got = k.factor;
            for i in 0..c.samples {
                let snap = latency_snapshot(c.in_service, c.busy, c.ttft, c.wait, 15 * i);
                got = learn(&mut k, &fleet, &snap, c.decided, Timestamp(15_000 * i));
            }
            assert!(
                (got - c.want).abs() < 1e-9,
                "{}: {got}, want {}",
                c.what,
                c.want
            );
        }
    }

    /// Lowered, the correction is given back a hundredth a sample while the fleet runs at its
    /// corrected target with next to no queueing, whatever its TTFT (a long prefill's floor is
    /// not capacity) — never for a sample taken twice, a stale one or one from the future.
    #[test]
    fn the_correction_is_given_back_on_evidence_and_each_sample_counts_once() {
        let fleet = learning_fleet(12);
        let lowered = Correction {
            factor: 0.8,
            ..Correction::default()
        };
        let aim = fleet.capacity.target_utilization * 0.8;
        let slo = fleet.slo.ttft_p95_secs;
        let back = 0.8 + INCREASE;
        // (what, busy per unit, ttft, queue wait, sample at, now, want)
        let cases: &[(&str, f64, f64, f64, i64, i64, f64)] = &[
            ("busy at the corrected aim, fast", aim, 0.5, 0.0, 0, 0, back),
            ("idle units prove nothing", 0.3 * aim, 0.5, 0.0, 0, 0, 0.8),
            (
                "a long prefill's TTFT, nothing queued",
                aim,
                1.5,
                0.0,
                0,
                0,
                back,
            ),
            ("over the SLO on prefills alone", aim, 2.5, 0.1, 0, 0, back),
            (
                "some queueing, short of the decrease",
                aim,
                1.5,
                0.2 * slo,
                0,
                0,
                0.8,
            ),
            ("stale", aim, 0.5, 0.0, 0, 600, 0.8),
            ("from the future", aim, 0.5, 0.0, 600, 0, 0.8),
        ];
        for &(what, busy, ttft, wait, at, now, want) in cases {
            let mut c = lowered.clone();
            let snap = latency_snapshot(4, busy, ttft, wait, at);
            let got = learn(&mut c, &fleet, &snap, 4, Timestamp(now * 1000));
            assert!((got - want).abs() < 1e-9, "{what}: {got}, want {want}");
            // The same sample again moves nothing.
            let again = learn(&mut c, &fleet, &snap, 4, Timestamp(now * 1000));
            assert_eq!(again, got, "{what}: a sample counts once");
        }
        // Given back up to the profile, never above it.
        let mut c = lowered;
        for i in 0..100 {
            let snap = latency_snapshot(4, 0.7, 0.5, 0.0, 15 * i);
            learn(&mut c, &fleet, &snap, 4, Timestamp(15_000 * i));
        }
        assert_eq!(c.factor, 1.0);
    }

    /// What a server at `speed` of the profile, with `batch` sequences running and `prompt`
    /// tokens/s prefilled, reports: the generated tokens/s its never-idle time leaves.
    fn server_at(speed: f64, batch: f64, prompt: f64, window_secs: f64, at: i64) -> ServerLoad {
        let m = g6e();
        let step = (m.decode_base_secs + m.decode_per_seq_secs * batch) / speed;
        let prefill_share = prompt / (m.prefill_tokens_per_sec * speed);
        ServerLoad {
            prompt_tokens_per_sec: prompt,
            generation_tokens_per_sec: batch * (1.0 - prefill_share) / step,
            requests_per_sec: 1.0,
            running: batch,
            window_secs,
            at: Timestamp(at * 1000),
            ..ServerLoad::default()
        }
    }

    /// In-service instances `i-0`, `i-1`, … of pool `p` with these loads and weights.
    fn snapshot_of(loads: &[(ServerLoad, Units)]) -> Snapshot {
        Snapshot {
            instances: loads
                .iter()
                .enumerate()
                .map(|(i, (l, w))| crate::model::Instance {
                    id: format!("i-{i}"),
                    pool: "p".into(),
                    weight_units: *w,
                    state: LifecycleState::InService,
                    samples: Default::default(),
                    load: Some(*l),
                })
                .collect(),
            ..Snapshot::default()
        }
    }

    /// A server's speed is read from its token rates and batch, whatever the mix: decode-bound
    /// chat, long prompts; servers counted by their batch; an instance of two units as two;
    /// none from a server without a batch, idle for much of its minute, prefilling longer than
    /// it decodes, or whose rates do not cover a minute.
    #[test]
    fn the_servers_speed_is_read_from_their_counters() {
        let m = g6e();
        let two_units = {
            let one = server_at(0.8, 40.0, 3_000.0, 60.0, 0);
            ServerLoad {
                running: 80.0,
                prompt_tokens_per_sec: 6_000.0,
                generation_tokens_per_sec: 2.0 * one.generation_tokens_per_sec,
                ..one
            }
        };
        /// (what, each server's load and weight, the reading wanted)
        type Case<'a> = (&'a str, &'a [(ServerLoad, Units)], Option<f64>);
        #[rustfmt::skip]
        let cases: &[Case] = &[
            ("exact, chat", &[(server_at(1.0, 40.0, 2_000.0, 60.0, 0), 1)], Some(1.0)),
            ("slower, chat", &[(server_at(0.7, 80.0, 1_000.0, 60.0, 0), 1)], Some(0.7)),
            ("slower, long prompts", &[(server_at(0.7, 30.0, 3_000.0, 60.0, 0), 1)], Some(0.7)),
            ("faster", &[(server_at(1.3, 60.0, 500.0, 60.0, 0), 1)], Some(1.3)),
            ("counted by batch", &[(server_at(1.0, 30.0, 2_000.0, 60.0, 0), 1), (server_at(0.5, 100.0, 2_500.0, 60.0, 0), 1)], Some((30.0 + 0.5 * 100.0) / 130.0)),
            ("two units: two servers' batch and rates", &[(two_units, 2)], Some(0.8)),
            ("no batch", &[(server_at(1.0, 0.5, 100.0, 60.0, 0), 1)], None),
            ("a batch that waits on prefills: idle between them", &[(server_at(1.0, 1.0, 6_000.0, 60.0, 0), 1)], None),
            ("idle for much of its minute: under SPEED_MIN_BUSY by the profile", &[(server_at(1.0, 2.0, 500.0, 60.0, 0), 1)], None),
            ("only the busy server of two", &[(server_at(1.0, 2.0, 500.0, 60.0, 0), 1), (server_at(0.7, 80.0, 1_000.0, 60.0, 0), 1)], Some(0.7)),
            ("a new server's part-minute", &[(server_at(0.7, 40.0, 1_000.0, 20.0, 0), 1)], None),
        ];
        for (what, loads, want) in cases {
            let got = speed_reading(&m, &snapshot_of(loads));
            match (got, want) {
                (Some(g), Some(w)) => assert!((g - w).abs() < 1e-9, "{what}: {g}, want {w}"),
                _ => assert_eq!(got, *want, "{what}"),
            }
        }
    }

    /// The readings are averaged, one per scrape; the correction counts no more than their
    /// average, and within the tolerance the profile's own figure.
    #[test]
    fn the_measured_speed_caps_the_correction_once_read() {
        let fleet = learning_fleet(12);
        let m = fleet.capacity.model.unwrap();
        let mut c = Correction::default();
        for i in 0..400 {
            let snap = snapshot_of(&[(server_at(0.7, 60.0, 1_000.0, 60.0, 15 * i), 1)]);
            observe_speed(&mut c, &m, &snap);
            // The same scrape again is not a second reading.
            let before = c.measured_speed;
            observe_speed(&mut c, &m, &snap);
            assert_eq!(c.measured_speed, before);
        }
        assert!(
            (c.measured_speed - 0.7).abs() < 1e-3,
            "{}",
            c.measured_speed
        );
        assert!((c.effective() - 0.7 / (1.0 - SPEED_TOLERANCE)).abs() < 1e-3);
        // (measured, the feedback's factor, effective)
        #[rustfmt::skip]
        let cases = [
            (0.97, 1.0, 1.0),              // within the tolerance: the profile's
            (1.2, 1.0, 1.0),               // never above the profile
            (0.76, 1.0, 0.8),              // 0.76 / 0.95
            (0.9, 0.6, 0.6),               // the feedback lower: its figure
            (0.3, 1.0, MIN_CORRECTION),    // never under the floor
        ];
        for (measured, factor, want) in cases {
            let c = Correction {
                measured_speed: measured,
                factor,
                ..Correction::default()
            };
            assert!(
                (c.effective() - want).abs() < 1e-9,
                "{measured} {factor}: {}",
                c.effective()
            );
        }
        // Learned by `learn` itself, and returned as the correction, with no latency sample.
        let mut c = Correction::default();
        let mut got = 1.0;
        for i in 0..400 {
            let snap = snapshot_of(&[(server_at(0.6, 60.0, 2_000.0, 60.0, 15 * i), 1)]);
            got = learn(&mut c, &fleet, &snap, 1, Timestamp(15_000 * i));
        }
        assert!((got - 0.6 / (1.0 - SPEED_TOLERANCE)).abs() < 1e-3, "{got}");
    }
}
