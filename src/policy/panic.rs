//! Knative KPA's panic mode (upstream `pkg/autoscaler/scaling/autoscaler.go`), on capacity
//! units.
//!
//! When demand reaches `threshold` × in-service capacity (default 2×), the fleet *panics*:
//! capacity follows demand at once (scale-up stabilization and rate policies are bypassed, up
//! to `max_scale_up_rate` × in-service units) and never goes down until demand has stayed below
//! the threshold for `stable_window_secs`. A freshly started engine begins in panic, so that a
//! restart, which loses the in-memory history, can never cause a scale-down.

use serde::{Deserialize, Serialize};

use crate::config::Panic;
use crate::model::{Timestamp, Units};

/// What panic mode remembers between decisions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanicState {
    /// Last time demand was over the threshold (KPA's `panicTime`); `None` when not panicking.
    pub last_over: Option<Timestamp>,
    /// The highest capacity decided during this panic (KPA's `maxPanicPods`), units.
    pub max_units: Units,
}

impl PanicState {
    /// The state of a freshly started engine: panicking since `now`, holding `current`.
    pub fn fresh_start(now: Timestamp, current: Units) -> Self {
        PanicState {
            last_over: Some(now),
            max_units: current,
        }
    }

    /// Whether the fleet is panicking.
    pub fn active(&self) -> bool {
        self.last_over.is_some()
    }
}

/// What one panic step saw, for the decision's explanation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PanicStep {
    /// Demand ÷ max(1, in-service units).
    pub demand_ratio: f64,
    /// Whether demand is over the threshold now.
    pub over_threshold: bool,
    /// Whether the fleet panics after this step.
    pub active: bool,
}

/// Updates the panic state from the demand (units the metrics ask for) and the in-service
/// units, as KPA does each tick.
pub fn observe(
    state: &mut PanicState,
    cfg: &Panic,
    now: Timestamp,
    demand: Units,
    ready: Units,
) -> PanicStep {
    let ready = ready.max(1) as f64;
    let demand_ratio = demand as f64 / ready;
    let over = cfg.enabled && demand_ratio >= cfg.threshold;
    if over {
        state.last_over = Some(now);
    } else if let Some(t) = state.last_over {
        if t.plus_secs(cfg.stable_window_secs as f64) < now {
            *state = PanicState::default();
        }
    }
    PanicStep {
        demand_ratio,
        over_threshold: over,
        active: state.active(),
    }
}

/// While panicking: at least the demand (capped by `max_scale_up_rate`) and never below the
/// highest capacity of this panic. Outside panic: `desired` unchanged.
pub fn apply(
    state: &mut PanicState,
    cfg: &Panic,
    desired: Units,
    demand: Units,
    ready: Units,
) -> Units {
    if !state.active() {
        return desired;
    }
    let cap = (cfg.max_scale_up_rate * ready.max(1) as f64).ceil() as Units;
    let wanted = desired.max(demand.min(cap));
    if wanted > state.max_units {
        state.max_units = wanted;
        wanted
    } else {
        state.max_units
    }
}
