//! The decision engine: `(fleet policy, snapshot, engine state, now) → decision + new state`.
//!
//! Pure: no I/O, no clock, no async. The fleet controller ([`crate::controller`]) calls
//! [`decide`] for the daemon and the simulator alike; tests and benches call it directly. The
//! returned [`EngineState`] is the state to keep once every pool target has been applied (the
//! controller keeps less when an apply fails or in dry-run).
//!
//! One decision is a ladder of named stages (HPA's reconcile order, with Knative's panic mode,
//! schedules, the forecast floor and the budget added), each a function in [`ladder`] that
//! returns its units and a typed [`Condition`]:
//! 1. **bounds**: `min_units`/`max_units`, moved by open schedule windows and the forecast
//!    floor ([`crate::policy::schedule`], [`crate::policy::predictive`]);
//! 2. **metrics**: each metric's HPA recommendation ([`crate::policy::hpa`]); the highest
//!    valid one wins;
//! 3. **hold**: current capacity outside the bounds goes straight to the bound (HPA's min/max
//!    check); an invalid or stale metric blocks any scale-down (and all invalid → hold);
//! 4. **stabilize**: the stabilization windows ([`crate::policy::behavior`]);
//! 5. **rate limit**: the rate policies and the bounds;
//! 6. **panic**: may raise the result at once and forbids lowering it
//!    ([`crate::policy::panic`]); it follows the demand signals only;
//! 7. **floor**: never below the floor in force;
//! 8. **budget**: caps a scale-up at what the spend caps allow ([`crate::policy::budget`]);
//! 9. **placement**: the result over the pools, with the spot fallback's cover, the spot
//!    headroom and the groups' own bounds ([`crate::placement`]).
//!
//! The engine's capacity is the fleet's *own*: what placement added beyond it (cover,
//! headroom) is taken out of the observed pools and out of the counts HPA's arithmetic uses.

mod condition;
pub mod describe;
pub mod input;
pub mod ladder;
mod state;

use serde::Serialize;

use crate::config::Fleet;
use crate::model::{Snapshot, Timestamp, Units};
use crate::placement::{Cover, PoolTarget};
use crate::policy::budget::{BudgetStep, Spend};
use crate::policy::hpa::MetricRecommendation;
use crate::policy::panic::PanicStep;
use crate::policy::predictive::PredictiveStep;
use crate::policy::schedule::Bounds;
pub use condition::{Condition, ConditionType, Reason};
pub use state::{migrate, EngineState, StateError, SCHEMA_VERSION};

/// The direction of a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// More capacity.
    ScaleUp,
    /// Less capacity.
    ScaleDown,
    /// No change.
    Hold,
}

impl Action {
    /// `scale_up`, `scale_down` or `hold`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ScaleUp => "scale_up",
            Action::ScaleDown => "scale_down",
            Action::Hold => "hold",
        }
    }
}

/// The capacity after each stage, units; `None` where a stage did not run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stages {
    /// Highest valid metric recommendation.
    pub metrics: Option<Units>,
    /// After the stabilization windows.
    pub stabilized: Option<Units>,
    /// After rate policies and bounds.
    pub rate_limited: Option<Units>,
    /// After panic mode.
    pub panic: Option<Units>,
    /// After the budget.
    pub budget: Option<Units>,
}

/// The capacity model as one decision used it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CapacityStep {
    /// `[fleets.capacity] target_utilization`.
    pub target_utilization: f64,
    /// Capacity counted per unit ÷ the profile's, learned from the fleet's latency (1: the
    /// profile as is).
    pub correction: f64,
    /// Prefill tokens per second one unit sustains, corrected.
    pub prefill_tokens_per_sec_per_unit: f64,
    /// Generated tokens per second one unit sustains at the full batch, corrected.
    pub decode_tokens_per_sec_per_unit: f64,
    /// Units the in-service instances' served work keeps busy (no backlog).
    pub served_busy_units: f64,
    /// The fewest units whose prefill queue keeps its P95 wait within a quarter of the SLO: a
    /// scale-down goes no lower (`None`: nothing finished to size it on).
    pub queue_floor_units: Option<Units>,
    /// How much longer the fleet's P95 prefill wait has been than Erlang's C predicts (1: as
    /// predicted); the queue floor stretches its wait by it.
    pub queue_factor: f64,
    /// The servers' speed ÷ the profile's, as their counters measure it (averaged; 1 until
    /// read); the correction counts no more than it (within 5 %).
    pub measured_speed: f64,
}

/// A decision for one fleet, with everything that explains it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    /// Fleet name.
    pub fleet: String,
    /// When the decision was made.
    pub at: Timestamp,
    /// The fleet's own desired units before the decision (the pools' desired capacity less
    /// what placement added beyond it).
    pub current_units: Units,
    /// The fleet's own desired units decided.
    pub desired_units: Units,
    /// Direction.
    pub action: Action,
    /// Units in service when deciding.
    pub in_service_units: Units,
    /// Units booting when deciding.
    pub pending_units: Units,
    /// The fleet's P95 TTFT and queue wait as measured, when its servers report them (what
    /// the capacity correction learns from; the decision log keeps them for the dashboard).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<crate::model::FleetLatency>,
    /// Each metric's calculation.
    pub metrics: Vec<MetricRecommendation>,
    /// The metric whose recommendation won, if any.
    pub winning_metric: Option<String>,
    /// The bounds in force.
    pub bounds: Bounds,
    /// The capacity after each stage.
    pub stages: Stages,
    /// Panic mode after this decision.
    pub panic: Option<PanicStep>,
    /// The predictive floor, when `[fleets.predictive]` is on.
    pub predictive: Option<PredictiveStep>,
    /// The spend ledger, when every pool has a price.
    pub spend: Option<Spend>,
    /// The budget's verdict, with `[fleets.budget]`.
    pub budget: Option<BudgetStep>,
    /// Spot units added beyond need to absorb interruptions (`spot_headroom_max_fraction`).
    pub spot_headroom_units: Units,
    /// The spot fallback's cover, when on.
    pub cover: Option<Cover>,
    /// The scale-down stabilization window in force, seconds: the policy's, lengthened after
    /// recent flaps or by a work that swings from minute to minute (`policy::flaps`).
    pub scale_down_window_secs: u64,
    /// Flaps since the engine started (a scale-down bought back within ten minutes).
    pub flaps_total: u64,
    /// The capacity model in use, when the fleet has one.
    pub capacity: Option<CapacityStep>,
    /// Ramp-ahead's view, with `[fleets.capacity] ramp_ahead`.
    pub ramp: Option<crate::policy::ramp::RampStep>,
    /// Why: HPA-style conditions.
    pub conditions: Vec<Condition>,
    /// Desired units per pool.
    pub pools: Vec<PoolTarget>,
    /// The on-demand warm pools' sizes (their `min_size`, raised to the largest step lately).
    pub warm_pools: Vec<crate::placement::WarmPoolTarget>,
    /// One line for logs and humans.
    pub summary: String,
}

impl Decision {
    /// The condition of type `kind`, if present.
    pub fn condition(&self, kind: ConditionType) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.kind == kind)
    }

    /// Whether a condition with this reason is present.
    pub fn has(&self, reason: Reason) -> bool {
        self.conditions.iter().any(|c| c.reason == reason)
    }

    /// The pools' total: the fleet's own units plus what placement added.
    pub fn pools_total_units(&self) -> Units {
        self.pools.iter().map(|p| p.desired_units).sum()
    }
}

/// Decides the desired capacity of `fleet` at `now`. Returns the decision and the state to
/// keep once it is applied.
pub fn decide(
    fleet: &Fleet,
    snap: &Snapshot,
    state: &EngineState,
    now: Timestamp,
) -> (Decision, EngineState) {
    let snap = crate::policy::capacity::with_usable_loads(fleet, snap, now);
    let mut l = ladder::Ladder::start(fleet, &snap, state, now);
    let bounds = l.bounds();
    let metrics = l.metrics();
    let desired = match l.hold(&metrics, &bounds) {
        Some(held) => held,
        None => {
            let proposal = metrics.units.unwrap_or(l.current);
            let stabilized = l.stabilize(proposal);
            let rated = l.rate_limit(stabilized, &bounds);
            let panicked = l.panic(rated, &metrics);
            l.floor(panicked, &bounds)
        }
    };
    let desired = l.budget(desired, &bounds);
    l.finish(desired, metrics, bounds)
}
