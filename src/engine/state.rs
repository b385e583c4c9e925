//! What the engine remembers between decisions of one fleet — a *stored schema*: the daemon
//! persists it in SQLite and resumes from it after a restart or an upgrade.
//!
//! Rules for changing it:
//! - every field has `#[serde(default)]` (the struct has it), so a field can be added and an
//!   older state still loads;
//! - a field that is renamed, moved or whose meaning changes bumps [`SCHEMA_VERSION`] and gets
//!   a step in [`migrate`], which rewrites the stored JSON of the version before;
//! - `tests/fixtures/engine_state_v*.json` are states written by earlier versions; a test loads
//!   each and checks what it must carry over.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::Timestamp;
use crate::placement::MarketState;
use crate::policy::behavior::{ScaleEvent, TimedRecommendation};
use crate::policy::budget::Ledger;
use crate::policy::capacity::Correction;
use crate::policy::flaps::FlapState;
use crate::policy::panic::PanicState;
use crate::policy::predictive::ColdStarts;
use crate::policy::ramp::RampState;

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = 2;

/// What the engine remembers between decisions of one fleet; all of it must survive a restart
/// (the daemon persists it). `Default` is a freshly started engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineState {
    /// The schema version ([`SCHEMA_VERSION`] when written by this build).
    pub version: u32,
    /// When this engine made its first decision; `None` before it.
    pub started_at: Option<Timestamp>,
    /// Recent unstabilized recommendations (for the stabilization windows).
    pub recommendations: Vec<TimedRecommendation>,
    /// Recent scale-ups (for the rate policies).
    pub scale_up_events: Vec<ScaleEvent>,
    /// Recent scale-downs (for the rate policies).
    pub scale_down_events: Vec<ScaleEvent>,
    /// Panic mode.
    pub panic: PanicState,
    /// Market placement: the spot fallback's covers, burst episodes, the interruption record,
    /// and what was applied to each pool.
    pub market: MarketState,
    /// Launch → in-service times seen (the lead of the predictive floor and of the spot
    /// headroom), when either is on.
    pub cold_starts: ColdStarts,
    /// What the fleet has cost this month, when every pool has a price.
    pub ledger: Ledger,
    /// Scale-downs bought back within minutes (added in version 2 without a bump: defaults).
    pub flaps: FlapState,
    /// The capacity model's correction, learned from the fleet's latency (likewise).
    pub correction: Correction,
    /// Recent capacity-model demand, for ramp-ahead (likewise).
    pub ramp: RampState,
    /// The predictive floor's demand per unit, learned (`demand_per_unit = "auto"`).
    pub demand_per_unit: Option<f64>,
    /// The latest silence at the fleet's servers (the predictive floor holds the forecast's
    /// capacity through one, `silence_hold_mins`).
    pub silence: Option<crate::policy::predictive::Silence>,
}

impl Default for EngineState {
    fn default() -> Self {
        EngineState {
            version: SCHEMA_VERSION,
            started_at: None,
            recommendations: Vec::new(),
            scale_up_events: Vec::new(),
            scale_down_events: Vec::new(),
            panic: PanicState::default(),
            market: MarketState::default(),
            cold_starts: ColdStarts::default(),
            ledger: Ledger::default(),
            flaps: FlapState::default(),
            correction: Correction::default(),
            ramp: RampState::default(),
            demand_per_unit: None,
            silence: None,
        }
    }
}

/// A stored state that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Not JSON, or not a state of any known version.
    #[error("not an engine state: {0}")]
    Unreadable(#[from] serde_json::Error),
    /// Written by a newer build.
    #[error("engine state version {found} is newer than this build's {SCHEMA_VERSION}: run the newer build, or move the state database aside to start fresh")]
    TooNew {
        /// The version found.
        found: u32,
    },
}

impl EngineState {
    /// The time of the latest decision this state remembers (its newest recommendation).
    pub fn last_decided_at(&self) -> Option<Timestamp> {
        self.recommendations.iter().map(|r| r.at).max()
    }

    /// Reads a stored state of any version up to [`SCHEMA_VERSION`], migrating it.
    pub fn from_json(text: &str) -> Result<Self, StateError> {
        let value: Value = serde_json::from_str(text)?;
        Ok(serde_json::from_value(migrate(value)?)?)
    }
}

/// Rewrites a stored state to the current schema, one version at a time. A state without a
/// `version` is version 1 (before the field existed).
pub fn migrate(mut value: Value) -> Result<Value, StateError> {
    let version = value.get("version").and_then(Value::as_u64).unwrap_or(1) as u32;
    if version > SCHEMA_VERSION {
        return Err(StateError::TooNew { found: version });
    }
    if version < 2 {
        if let Some(obj) = value.as_object_mut() {
            v1_to_v2(obj);
        }
    }
    if let Some(obj) = value.as_object_mut() {
        obj.insert("version".into(), Value::from(SCHEMA_VERSION));
    }
    Ok(value)
}

/// Version 1 kept the spot fallback in `fallback` (one shortfall for every cause, and the
/// pools' total it had set) and the interruption record in `spot_risk`; version 2 keeps both in
/// `market`, with a cover per warned instance and what was applied per pool. Carried over: the
/// failed-launch baseline (so old failures are not new ones), a running failure episode and
/// its time, the burst streak and episode, the interruption record. Not carried: the cover's
/// unit count (version 1 did not know per pool where it was) — the first decision after the
/// upgrade reads the pools as observed, as after any outside change.
fn v1_to_v2(obj: &mut Map<String, Value>) {
    let fallback = obj.remove("fallback").unwrap_or(Value::Null);
    let risk = obj.remove("spot_risk").unwrap_or(Value::Null);
    let get = |k: &str| fallback.get(k).cloned().unwrap_or(Value::Null);
    let active = get("active").as_bool().unwrap_or(false);
    let mut market = Map::new();
    market.insert("seen_failed_launches".into(), get("seen_failed_launches"));
    market.insert("last_launch_failure".into(), get("last_spot_failure"));
    market.insert("failure_episode".into(), Value::from(active));
    market.insert("last_burst".into(), get("last_burst"));
    market.insert("burst_streak".into(), get("burst_streak"));
    market.insert(
        "burst_episode".into(),
        Value::from(active && !get("last_burst").is_null()),
    );
    market.insert("risk".into(), risk);
    market.retain(|_, v| !v.is_null());
    obj.insert("market".into(), Value::Object(market));
}
