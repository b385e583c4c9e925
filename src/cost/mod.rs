//! Cost decisions that do not need the cloud: what each pool's unit costs ([`prices`]),
//! right-sizing instance types for a demand ([`rightsize`]) and replica profiles from one's
//! own benchmark ([`calibrate`]). (Prices come from the replica profiles — built in, or
//! `[[profiles]]` in the policy file — unless a pool sets its own.)

pub mod calibrate;
pub mod prices;
pub mod rightsize;

use crate::config::Config;
use crate::sim::perf::Profile;

/// What the replica profiles could not give a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// A pool with a budget has no price.
    #[error(transparent)]
    Price(#[from] prices::PriceError),
    /// A fleet that uses the capacity model has no profile for its reference type.
    #[error(transparent)]
    Capacity(#[from] crate::policy::capacity::CapacityError),
}

/// Why a policy could not be loaded with its profiles applied.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file: unreadable or invalid (every problem located).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A `[[profiles]]` entry that neither is complete nor names a built-in type.
    #[error(transparent)]
    Profile(#[from] crate::sim::perf::IncompleteProfile),
    /// What the profiles could not give the policy.
    #[error(transparent)]
    Apply(#[from] ProfileError),
}

/// Loads a policy file and applies the replica profiles (built in, overridden by its
/// `[[profiles]]`) — the policy as `run`, `simulate` and `decide` use it. `config::load` alone
/// leaves `"auto"` targets and the capacity model unresolved.
pub fn load_policy(path: &std::path::Path) -> Result<Config, PolicyError> {
    let mut cfg = crate::config::load(path)?;
    let profiles = crate::sim::perf::resolve(&cfg.profiles, cfg.global.aws.region.as_deref())?;
    apply_profiles(&mut cfg, &profiles)?;
    Ok(cfg)
}

/// Fills in what a policy takes from the replica profiles: each pool's unit price and each
/// fleet's capacity model (with its `"auto"` targets). `run`, `simulate` and `decide` call it
/// on every policy they load.
pub fn apply_profiles(cfg: &mut Config, profiles: &[Profile]) -> Result<(), ProfileError> {
    prices::fill_unit_prices(cfg, profiles)?;
    crate::policy::capacity::resolve(cfg, profiles)?;
    Ok(())
}
