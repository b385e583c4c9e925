//! The provider seam: what the daemon needs from a cloud, implemented by the built-in
//! simulated cloud ([`sim::SimProvider`]) and by AWS (`crate::aws::AwsProvider`: Auto Scaling,
//! EC2, CloudWatch, SQS and the inference servers' Prometheus endpoints).
//!
//! Two calls per fleet: observe it as a [`Snapshot`] (instances with lifecycle and samples,
//! fleet metrics, desired capacity) and set a pool's desired capacity; and one per tick,
//! [`Provider::end_tick`], for work that must wait until every decision is applied. The daemon
//! times out, retries and backs off around them; implementations classify their failures.

pub mod sim;

use std::collections::BTreeSet;
use std::future::Future;

use crate::config::{Fleet, HaSettings, Pool};
use crate::lease::LeaseRecord;
use crate::model::{Snapshot, Timestamp, Units};

/// Why a provider call failed, classified for the daemon's retry policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Network trouble, a 5xx, a timeout: try again next tick.
    #[error("transient: {0}")]
    Transient(String),
    /// The API asked us to slow down: back off.
    #[error("throttled: {0}")]
    Throttled(String),
    /// A group, queue or metric does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The policy asks for something the cloud cannot do (a human must act).
    #[error("configuration: {0}")]
    Config(String),
}

impl ProviderError {
    /// Whether trying again later can help.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::Transient(_) | ProviderError::Throttled(_)
        )
    }
}

/// What a provider counts about its own work, for `/metrics`. Keys are API or event names.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ProviderStats {
    /// Cloud API calls made, by API name (`SetDesiredCapacity`, …).
    pub calls_total: std::collections::BTreeMap<&'static str, u64>,
    /// Calls that failed after the SDK's own retries, by API name.
    pub errors_total: std::collections::BTreeMap<&'static str, u64>,
    /// Wall seconds spent in calls, by API name (with `calls_total`: the mean latency).
    pub call_seconds_total: std::collections::BTreeMap<&'static str, f64>,
    /// Inference-server scrapes attempted.
    pub scrapes_total: u64,
    /// Scrapes that failed (timeout, refused, HTTP error).
    pub scrape_failures_total: u64,
    /// Exposition lines that could not be read.
    pub scrape_bad_lines_total: u64,
    /// Event messages read, by kind (`spot_interruption`, `rebalance`, …).
    pub events_total: std::collections::BTreeMap<&'static str, u64>,
    /// Event messages that could not be read (left for the queue's dead-letter queue).
    pub unreadable_events_total: u64,
    /// Terminate lifecycle actions completed after a drain.
    pub lifecycle_completed_total: u64,
}

/// One value a tick publishes to the cloud's metric store (CloudWatch), per fleet.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportPoint {
    /// The fleet (the `Fleet` dimension).
    pub fleet: String,
    /// The metric's name, e.g. `DesiredUnits`, `Metric.token_work`.
    pub name: String,
    /// Its value.
    pub value: f64,
    /// CloudWatch's unit name: `Count`, `Seconds` or `None`.
    pub unit: &'static str,
    /// When it was measured.
    pub at: Timestamp,
}

/// A cloud the daemon can observe and steer.
pub trait Provider {
    /// The fleet as observed at `now` (for the simulated cloud: after advancing it to `now`).
    fn snapshot(
        &mut self,
        fleet: &Fleet,
        now: Timestamp,
    ) -> impl Future<Output = Result<Snapshot, ProviderError>> + Send;

    /// Sets the desired capacity of one pool, in units.
    fn set_desired(
        &mut self,
        fleet: &Fleet,
        pool: &Pool,
        units: Units,
    ) -> impl Future<Output = Result<(), ProviderError>> + Send;

    /// Whether one pool's group now holds the desired capacity `units` ask: read back after a
    /// [`Provider::set_desired`] that outlasted its timeout, whose fate the caller does not
    /// know (the cloud may have applied it). Default: `false` — not known to have landed.
    fn holds_desired(
        &mut self,
        fleet: &Fleet,
        pool: &Pool,
        units: Units,
    ) -> impl Future<Output = Result<bool, ProviderError>> + Send {
        let _ = (fleet, pool, units);
        async { Ok(false) }
    }

    /// The fleet's demand per minute over minutes `from_minute..=to_minute` (minutes since the
    /// epoch), from its `[fleets.predictive]` source: `(minute, value)` for the minutes that
    /// have data, oldest first; the others are gaps. Used to backfill the forecaster's history
    /// and to extend it every minute. Default: no data.
    fn demand(
        &mut self,
        fleet: &Fleet,
        from_minute: i64,
        to_minute: i64,
    ) -> impl Future<Output = Result<Vec<(i64, f64)>, ProviderError>> + Send {
        let _ = (fleet, from_minute, to_minute);
        async { Ok(Vec::new()) }
    }

    /// The warm-pool size the fleet controller asks of a pool (e.g. from the forecast),
    /// applied by the end of the tick. Default: ignored.
    fn warm_pool_target(&mut self, fleet: &Fleet, pool: &Pool, min_size: u32) {
        let _ = (fleet, pool, min_size);
    }

    /// Market prices per unit-hour for the fleet's pools, where the cloud tells them (spot),
    /// by pool name; they replace the profile prices in the ledger and the budget. Default:
    /// none.
    fn unit_prices(
        &mut self,
        fleet: &Fleet,
        now: Timestamp,
    ) -> impl Future<Output = Result<std::collections::BTreeMap<String, f64>, ProviderError>> + Send
    {
        let _ = (fleet, now);
        async { Ok(std::collections::BTreeMap::new()) }
    }

    /// Publishes a tick's values to the cloud's metric store as `settings` say (the AWS
    /// provider: CloudWatch `PutMetricData`). Default: nothing (the simulated cloud).
    fn export(
        &mut self,
        settings: &crate::config::CloudWatchExport,
        points: &[ExportPoint],
    ) -> impl Future<Output = Result<(), ProviderError>> + Send {
        let _ = (settings, points);
        async { Ok(()) }
    }

    /// Counters about the provider's own work (none for the simulated cloud).
    fn stats(&self) -> ProviderStats {
        ProviderStats::default()
    }

    /// After every fleet of a tick has been decided. `acted` names the fleets whose decision
    /// was applied (none in dry-run; not a fleet whose tick failed). Deferred work happens
    /// here: the AWS provider deletes the event messages the tick's snapshots folded in (each
    /// only when the fleet it concerns acted, or every fleet did for a message about no known
    /// instance: an unhandled message must come back) and completes the lifecycle actions of
    /// drained instances (never in dry-run).
    fn end_tick(
        &mut self,
        fleets: &[Fleet],
        dry_run: bool,
        acted: &BTreeSet<String>,
    ) -> impl Future<Output = Result<(), ProviderError>> + Send {
        let _ = (fleets, dry_run, acted);
        async { Ok(()) }
    }

    /// Reads the HA lease named by `ha` (`[global.ha]`, see [`crate::lease`]). Default: a
    /// cloud without a lease service — never a record, and every write wins (a lone daemon
    /// leads).
    fn lease_read(
        &mut self,
        ha: &HaSettings,
    ) -> impl Future<Output = Result<Option<LeaseRecord>, ProviderError>> + Send {
        let _ = ha;
        async { Ok(None) }
    }

    /// Writes `new` if and only if the stored lease is still `expected` (`None`: absent);
    /// `Ok(false)` when it is not. Default: always written.
    fn lease_write(
        &mut self,
        ha: &HaSettings,
        new: &LeaseRecord,
        expected: Option<&LeaseRecord>,
    ) -> impl Future<Output = Result<bool, ProviderError>> + Send {
        let _ = (ha, new, expected);
        async { Ok(true) }
    }

    /// Whether this daemon consumes the cloud's event queue: only the leader of an HA pair
    /// may (a message a follower received would be hidden from the leader for its visibility
    /// timeout). Default: ignored.
    fn consume_events(&mut self, on: bool) {
        let _ = on;
    }
}

/// A lease record several simulated clouds share (two daemons in one process, in tests and
/// with `provider = "sim"`): a compare-and-swap cell, and whether it is reachable.
#[derive(Clone, Debug, Default)]
pub struct SharedLease(std::sync::Arc<std::sync::Mutex<Option<LeaseRecord>>>);

impl SharedLease {
    /// The record now.
    pub fn get(&self) -> Option<LeaseRecord> {
        self.0.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// Compare-and-swap.
    pub fn swap(&self, new: &LeaseRecord, expected: Option<&LeaseRecord>) -> bool {
        let Ok(mut cell) = self.0.lock() else {
            return false;
        };
        if cell.as_ref() == expected {
            *cell = Some(new.clone());
            true
        } else {
            false
        }
    }
}
