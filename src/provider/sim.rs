//! The built-in simulated cloud as a [`Provider`]: one simulated world per fleet, fed by a
//! built-in traffic scenario that repeats, advanced to the daemon's (virtual) clock at every
//! observation. This is what `provider = "sim"` runs: the whole daemon on a laptop.
//!
//! A tick of the daemon makes the world's calls in the order `simulate` makes them
//! ([`World::run`]): advance to now and [`World::tick_start`] (in `snapshot`), set the pools
//! that change, size warm pools, then [`World::tick_end`] (in `end_tick`) — so the daemon on
//! the simulated cloud and `simulate` on the same traffic set the same pool targets, tick by
//! tick (`tests/daemon.rs`).

use std::collections::BTreeMap;
use std::iter::Peekable;

use super::{Provider, ProviderError};
use crate::config::{Fleet, Pool};
use crate::model::{Snapshot, Timestamp, Units};
use crate::placement::split;
use crate::sim::perf::Profile;
use crate::sim::traffic::{Request, Traffic};
use crate::sim::world::{SpotModel, World};
use crate::sim::{controllers, pool_specs, reference, start_units};

/// How long one simulated world keeps per-minute records, seconds (a week).
const WORLD_HORIZON_SECS: f64 = 7.0 * 86_400.0;

/// A scenario's requests, repeated end to end forever.
struct Repeating {
    traffic: Traffic,
    inner: crate::sim::traffic::Requests,
    offset: f64,
}

impl Iterator for Repeating {
    type Item = Request;

    fn next(&mut self) -> Option<Request> {
        loop {
            if let Some(mut r) = self.inner.next() {
                r.arrival_secs += self.offset;
                return Some(r);
            }
            self.offset += self.traffic.duration_secs;
            self.inner = self.traffic.requests();
        }
    }
}

struct SimFleet {
    world: World,
    requests: Peekable<Repeating>,
    /// Observed in this tick, not yet ended.
    in_tick: bool,
}

/// The simulated cloud.
pub struct SimProvider {
    traffic: Traffic,
    spot: SpotModel,
    profiles: Vec<Profile>,
    model: String,
    /// Virtual time zero.
    epoch: Timestamp,
    tick_secs: f64,
    fleets: BTreeMap<String, SimFleet>,
    /// `set_desired` calls made, for tests and the dry-run guarantee.
    pub set_desired_calls: u64,
    /// Demand of the minutes before time zero (requests per minute), for the forecaster.
    history: Vec<Option<f64>>,
    /// How long each world keeps per-minute records, seconds.
    horizon_secs: f64,
    /// The HA lease (`[global.ha]`): this cloud's own, or one shared with another daemon's.
    lease: super::SharedLease,
    /// Whether the lease can be reached (false: a network partition, for tests).
    pub lease_reachable: bool,
}

impl SimProvider {
    /// A simulated cloud whose time zero is `epoch`, serving `traffic` to every fleet.
    pub fn new(
        traffic: Traffic,
        spot: SpotModel,
        profiles: Vec<Profile>,
        model: &str,
        epoch: Timestamp,
        tick_secs: f64,
    ) -> Self {
        SimProvider {
            traffic,
            spot,
            profiles,
            model: model.to_string(),
            epoch,
            tick_secs,
            fleets: BTreeMap::new(),
            set_desired_calls: 0,
            lease: super::SharedLease::default(),
            lease_reachable: true,
            history: Vec::new(),
            horizon_secs: WORLD_HORIZON_SECS,
        }
    }

    /// Worlds that keep per-minute records for `secs` (default a week).
    pub fn with_horizon_secs(mut self, secs: f64) -> Self {
        self.horizon_secs = secs;
        self
    }

    /// The demand of the minutes before time zero (the scenario's history), served by
    /// `demand` as a CloudWatch backfill would be.
    pub fn with_history(mut self, history: Vec<Option<f64>>) -> Self {
        self.history = history;
        self
    }

    /// Shares `lease` with other simulated clouds (an HA pair of daemons in one process).
    pub fn with_lease(mut self, lease: super::SharedLease) -> Self {
        self.lease = lease;
        self
    }

    fn lease(&self) -> Result<&super::SharedLease, ProviderError> {
        if self.lease_reachable {
            Ok(&self.lease)
        } else {
            Err(ProviderError::Transient(
                "the lease is unreachable (partitioned)".into(),
            ))
        }
    }

    fn fleet(&mut self, fleet: &Fleet) -> Result<&mut SimFleet, ProviderError> {
        if !self.fleets.contains_key(&fleet.name) {
            let specs = pool_specs(fleet, &self.profiles, &self.model)
                .map_err(|e| ProviderError::Config(e.to_string()))?;
            let reference = reference(fleet, &self.profiles, &self.model)
                .map_err(|e| ProviderError::Config(e.to_string()))?;
            let start = start_units(&self.traffic, fleet, &reference, 0.8);
            let initial: Vec<Units> = split::split(fleet, start)
                .iter()
                .map(|t| t.desired_units)
                .collect();
            let world = World::new(
                specs,
                &initial,
                self.spot.clone(),
                self.traffic.seed,
                self.horizon_secs,
                self.tick_secs,
                30.0,
            );
            let requests = Repeating {
                inner: self.traffic.requests(),
                traffic: self.traffic.clone(),
                offset: 0.0,
            }
            .peekable();
            self.fleets.insert(
                fleet.name.clone(),
                SimFleet {
                    world,
                    requests,
                    in_tick: false,
                },
            );
        }
        Ok(self.fleets.get_mut(&fleet.name).expect("inserted above"))
    }

    /// The simulated world of a fleet, if it exists yet.
    pub fn world(&self, fleet: &str) -> Option<&World> {
        self.fleets.get(fleet).map(|f| &f.world)
    }
}

impl Provider for SimProvider {
    async fn demand(
        &mut self,
        fleet: &Fleet,
        from_minute: i64,
        to_minute: i64,
    ) -> Result<Vec<(i64, f64)>, ProviderError> {
        let zero = crate::forecast::predictor::minute_of(self.epoch);
        let past = self.history.len() as i64;
        let history = std::mem::take(&mut self.history);
        let f = self.fleet(fleet);
        let out = f.map(|f| {
            // Complete minutes only.
            let done = (f.world.now() / 60.0).floor() as i64;
            (from_minute..=to_minute)
                .filter_map(|m| {
                    let rel = m - zero;
                    let value = if rel < 0 {
                        history
                            .get((past + rel).max(-1) as usize)
                            .copied()
                            .flatten()
                    } else if rel < done {
                        f.world.loads.get(rel as usize).map(|l| l.requests as f64)
                    } else {
                        None
                    };
                    value.map(|v| (m, v))
                })
                .collect()
        });
        self.history = history;
        out
    }

    async fn snapshot(&mut self, fleet: &Fleet, now: Timestamp) -> Result<Snapshot, ProviderError> {
        let until = now.secs_since(self.epoch).max(0.0);
        let f = self.fleet(fleet)?;
        f.world.advance(until, &mut f.requests, &mut |_| {});
        if !f.in_tick {
            f.world.tick_start();
            f.in_tick = true;
        }
        Ok(controllers::observe(fleet, &f.world, now))
    }

    fn warm_pool_target(&mut self, fleet: &Fleet, pool: &Pool, min_size: u32) {
        if let Some(f) = self.fleets.get_mut(&fleet.name) {
            if let Some(i) = f.world.pools.iter().position(|p| p.spec.name == pool.name) {
                f.world.set_warm_pool_min(i, min_size);
            }
        }
    }

    async fn end_tick(
        &mut self,
        _fleets: &[Fleet],
        _dry_run: bool,
        _acted: &std::collections::BTreeSet<String>,
    ) -> Result<(), ProviderError> {
        for f in self.fleets.values_mut().filter(|f| f.in_tick) {
            f.world.tick_end();
            f.in_tick = false;
        }
        Ok(())
    }

    async fn lease_read(
        &mut self,
        _ha: &crate::config::HaSettings,
    ) -> Result<Option<crate::lease::LeaseRecord>, ProviderError> {
        Ok(self.lease()?.get())
    }

    async fn lease_write(
        &mut self,
        _ha: &crate::config::HaSettings,
        new: &crate::lease::LeaseRecord,
        expected: Option<&crate::lease::LeaseRecord>,
    ) -> Result<bool, ProviderError> {
        Ok(self.lease()?.swap(new, expected))
    }

    async fn set_desired(
        &mut self,
        fleet: &Fleet,
        pool: &Pool,
        units: Units,
    ) -> Result<(), ProviderError> {
        let f = self.fleet(fleet)?;
        let idx = f
            .world
            .pools
            .iter()
            .position(|p| p.spec.name == pool.name)
            .ok_or_else(|| {
                ProviderError::NotFound(format!("pool {} of fleet {}", pool.name, fleet.name))
            })?;
        f.world.set_desired(idx, units);
        self.set_desired_calls += 1;
        Ok(())
    }

    async fn holds_desired(
        &mut self,
        fleet: &Fleet,
        pool: &Pool,
        units: Units,
    ) -> Result<bool, ProviderError> {
        let f = self.fleet(fleet)?;
        Ok(f.world
            .pools
            .iter()
            .any(|p| p.spec.name == pool.name && p.desired_units == units))
    }
}
