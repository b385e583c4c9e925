//! Shared vocabulary of the core: time, capacity units, and the observed [`Snapshot`] of a fleet.
//!
//! Everything here is plain data (serde-serialisable) so that a snapshot can be written to a
//! file, replayed by `llm-autoscaler decide`, produced by the simulator or by the AWS collectors.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time: milliseconds since the Unix epoch, UTC.
///
/// The engine never reads a clock; callers pass a `Timestamp` in. In JSON it is an RFC 3339
/// string (`"2026-11-28T09:00:00Z"`), so snapshots stay readable by humans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// From whole seconds since the Unix epoch.
    pub fn from_secs(secs: i64) -> Self {
        Timestamp(secs * 1000)
    }

    /// From fractional seconds since the Unix epoch (rounded to the millisecond).
    pub fn from_secs_f64(secs: f64) -> Self {
        Timestamp((secs * 1000.0).round() as i64)
    }

    /// Milliseconds since the Unix epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// Seconds since the Unix epoch, fractional.
    pub fn secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// This time plus `secs` seconds (may be negative or fractional).
    pub fn plus_secs(self, secs: f64) -> Self {
        Timestamp(self.0 + (secs * 1000.0).round() as i64)
    }

    /// Seconds from `earlier` to `self` (negative when `earlier` is later).
    pub fn secs_since(self, earlier: Timestamp) -> f64 {
        (self.0 - earlier.0) as f64 / 1000.0
    }

    /// As a chrono UTC date-time.
    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.0)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// From a chrono date-time in any zone.
    pub fn from_datetime<Tz: TimeZone>(t: &DateTime<Tz>) -> Self {
        Timestamp(t.timestamp_millis())
    }

    /// Parse an RFC 3339 string such as `2026-11-28T09:00:00Z`.
    pub fn parse_rfc3339(s: &str) -> Result<Self, chrono::ParseError> {
        DateTime::parse_from_rfc3339(s).map(|t| Self::from_datetime(&t))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.to_datetime();
        if self.0 % 1000 == 0 {
            write!(f, "{}", t.format("%Y-%m-%dT%H:%M:%SZ"))
        } else {
            write!(f, "{}", t.format("%Y-%m-%dT%H:%M:%S%.3fZ"))
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&s).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid timestamp {s:?}: {e}; expected RFC 3339 like \"2026-11-28T09:00:00Z\""
            ))
        })
    }
}

/// Capacity in *units*: one unit is one replica of the fleet's reference instance type.
/// An instance type with capacity weight 4 (e.g. a 4-GPU box) counts as 4 units.
pub type Units = u32;

/// The market an Auto Scaling Group buys from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Market {
    /// EC2 spot: cheaper, can be interrupted with a 2-minute notice.
    Spot,
    /// EC2 on-demand: the reliability floor.
    OnDemand,
}

impl fmt::Display for Market {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Market::Spot => "spot",
            Market::OnDemand => "on-demand",
        })
    }
}

/// Where an instance is in its life, as the engine needs to know it.
///
/// The mapping to HPA's pod grouping: `Pending` is HPA's *unready* pod (left out of a scale-down,
/// counted at 0 % in a scale-up); `InService` is ready (or *missing* when it has no fresh
/// sample); `Draining`, `Terminating` and `Interrupted` are HPA's *ignored* pods (being deleted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleState {
    /// Launched, booting or loading the model; not serving yet.
    Pending,
    /// Serving traffic.
    InService,
    /// Finishing in-flight requests before termination.
    Draining,
    /// Being terminated.
    Terminating,
    /// A spot instance that received an interruption notice or a rebalance recommendation:
    /// its capacity is counted as gone already.
    Interrupted,
}

/// How far ahead of the caller's clock a sample may be stamped and still count: clocks of the
/// hosts that measure (Prometheus, the inference servers) drift by milliseconds under NTP, so
/// anything further ahead is a broken clock or a replayed file — never evidence of load now.
/// (CloudWatch drops future points itself; scrapes, PromQL answers and `decide` input do not.)
pub const FUTURE_SKEW_ALLOWANCE_SECS: f64 = 10.0;

/// Why a sample cannot be used now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unusable {
    /// Not a finite number ≥ 0.
    NotANumber(f64),
    /// Measured longer ago than the limit, seconds.
    Stale {
        /// Its age, seconds.
        age_secs: f64,
        /// The limit, seconds.
        limit_secs: u64,
    },
    /// Stamped later than now plus [`FUTURE_SKEW_ALLOWANCE_SECS`].
    Future {
        /// How far ahead, seconds.
        ahead_secs: f64,
    },
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Unusable::NotANumber(v) => write!(f, "not a usable number: {v}"),
            Unusable::Stale {
                age_secs,
                limit_secs,
            } => write!(f, "stale: measured {age_secs:.0} s ago, limit {limit_secs} s"),
            Unusable::Future { ahead_secs } => write!(
                f,
                "stamped {ahead_secs:.0} s in the future (allowance {FUTURE_SKEW_ALLOWANCE_SECS:.0} s): a clock is wrong"
            ),
        }
    }
}

/// Whether `value` measured `at` may be used at `now`: the one judgement of freshness, both
/// ways — a sample from the future is as unusable as a stale one (frozen data stamped an hour
/// ahead would otherwise read as fresh for that hour).
pub fn usable(
    now: Timestamp,
    at: Timestamp,
    stale_after_secs: u64,
    value: f64,
) -> Result<(), Unusable> {
    if !(value.is_finite() && value >= 0.0) {
        return Err(Unusable::NotANumber(value));
    }
    let age_secs = now.secs_since(at);
    if age_secs < -FUTURE_SKEW_ALLOWANCE_SECS {
        return Err(Unusable::Future {
            ahead_secs: -age_secs,
        });
    }
    if age_secs > stale_after_secs as f64 {
        return Err(Unusable::Stale {
            age_secs,
            limit_secs: stale_after_secs,
        });
    }
    Ok(())
}

/// One measured value and when it was measured.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// The value, in the unit of its metric (percent for utilisations, requests, seconds, …).
    pub value: f64,
    /// When the value was measured (not when it was fetched): staleness is judged from it.
    pub at: Timestamp,
}

/// One instance of the fleet as observed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    /// EC2 instance id (or the simulator's id).
    pub id: String,
    /// Name of the pool (Auto Scaling Group) the instance belongs to.
    pub pool: String,
    /// Capacity weight in units (1 for the reference instance type).
    #[serde(default = "one_unit")]
    pub weight_units: Units,
    /// Lifecycle state.
    pub state: LifecycleState,
    /// Latest sample of each per-instance metric, keyed by the metric's `name` in the policy.
    #[serde(default)]
    pub samples: BTreeMap<String, Sample>,
    /// What its inference server reports about its own work, when scraped (the capacity model
    /// turns it into `token_work`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<ServerLoad>,
}

/// An inference server's own account of its work at one scrape: counter rates over the last
/// minute ([`RATE_WINDOW_SECS`]) and gauges now (vLLM: `prompt_tokens_total`, `generation_tokens_total`,
/// `request_success_total`, `num_requests_waiting`, `num_requests_running`,
/// `kv_cache_usage_perc`; TGI's equivalents).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerLoad {
    /// Prompt tokens prefilled per second.
    pub prompt_tokens_per_sec: f64,
    /// Tokens generated per second.
    pub generation_tokens_per_sec: f64,
    /// Requests finished per second.
    pub requests_per_sec: f64,
    /// Requests waiting for their prefill.
    pub waiting: f64,
    /// Requests running (in the batch).
    pub running: f64,
    /// KV cache in use, 0–1.
    pub kv_cache_fraction: f64,
    /// The seconds the rates were taken over (how much evidence they carry).
    #[serde(default = "rate_window_secs")]
    pub window_secs: f64,
    /// When measured.
    pub at: Timestamp,
}

/// The window servers' counter rates are taken over, seconds — a minute, as Prometheus'
/// `rate(…[1m])`; the simulator and the AWS scraper both use it.
pub const RATE_WINDOW_SECS: f64 = 60.0;

fn rate_window_secs() -> f64 {
    RATE_WINDOW_SECS
}

fn one_unit() -> Units {
    1
}

/// What the collectors observed about one fleet at one moment: the engine's whole input
/// besides the policy, the time and the engine's own state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// Desired capacity currently set on the fleet's pools, in units (HPA's `spec.replicas`).
    pub desired_units: Units,
    /// Every instance of every pool of the fleet.
    #[serde(default)]
    pub instances: Vec<Instance>,
    /// Fleet-level metrics (SQS depth, fleet request rate, P95 TTFT, …) keyed by metric name.
    #[serde(default)]
    pub fleet_metrics: BTreeMap<String, Sample>,
    /// Desired capacity currently set on each pool, units (the actuator changes only those
    /// that differ from the decision). Empty when unknown.
    #[serde(default)]
    pub pool_desired_units: BTreeMap<String, Units>,
    /// Launch attempts that failed so far in each pool (e.g. spot `InsufficientInstanceCapacity`
    /// in the group's scaling activities), cumulative; the engine reacts to increases.
    #[serde(default)]
    pub pool_failed_launches: BTreeMap<String, u64>,
    /// The fleet's demand forecast, when predictive scaling is on (computed by the caller from
    /// the demand history: the engine only reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast: Option<DemandForecast>,
    /// Each pool's Auto Scaling Group bounds (`MinSize`, `MaxSize`), where the cloud has them:
    /// AWS rejects a desired capacity outside them, so placement keeps every target inside.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pool_group_bounds: BTreeMap<String, GroupBounds>,
    /// Each pool's Auto Scaling Group processes an operator (or AWS) suspended
    /// (`SuspendProcesses`: `Launch`, `Terminate`, …), where any are: see
    /// [`Snapshot::pool_bounds`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pool_suspended_processes: BTreeMap<String, Vec<String>>,
    /// Metrics whose source failed in this observation, with why (a queue that does not exist,
    /// a CloudWatch error): the engine reports the metric invalid with this reason.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metric_errors: BTreeMap<String, String>,
    /// The fleet's latency over the last interval, when the servers report it (TTFT and queue
    /// wait histograms): what the capacity model's correction learns from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<FleetLatency>,
}

/// P95 time to first token and P95 queue wait of the requests the fleet started since the
/// previous observation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetLatency {
    /// P95 TTFT, seconds.
    pub ttft_p95_secs: f64,
    /// P95 wait before the prefill started, seconds.
    pub queue_wait_p95_secs: f64,
    /// When measured.
    pub at: Timestamp,
}

/// An Auto Scaling Group's own size limits, units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupBounds {
    /// `MinSize`.
    pub min_units: Units,
    /// `MaxSize`.
    pub max_units: Units,
}

/// A per-minute demand forecast, in the demand history's unit (e.g. requests per minute).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemandForecast {
    /// The first minute the forecast covers.
    pub start: Timestamp,
    /// Point forecast per minute.
    pub point: Vec<f64>,
    /// The upper quantile per minute (`predictive.quantile`): what capacity is sized on.
    pub upper: Vec<f64>,
}

impl DemandForecast {
    /// The highest upper quantile over the minutes overlapping `[from, from + secs]`; `None`
    /// when the forecast does not reach that far (a stale forecast must not be trusted).
    pub fn peak_upper(&self, from: Timestamp, secs: f64) -> Option<f64> {
        self.upper_over(from, secs)?
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .reduce(f64::max)
    }

    /// The lowest upper quantile over the same minutes (a window reaching before the
    /// forecast's start uses what it has).
    pub fn low_upper(&self, from: Timestamp, secs: f64) -> Option<f64> {
        self.upper_over(from, secs)?
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .reduce(f64::min)
    }

    /// The upper quantiles of the minutes overlapping `[from, from + secs]`, from the
    /// forecast's start at the earliest; `None` when it does not reach `from + secs`.
    fn upper_over(&self, from: Timestamp, secs: f64) -> Option<&[f64]> {
        let first = (from.secs_since(self.start) / 60.0).floor().max(0.0) as usize;
        let last = ((from.secs_since(self.start) + secs) / 60.0)
            .floor()
            .max(0.0) as usize;
        (last < self.upper.len()).then(|| &self.upper[first..=last])
    }
}

/// The Auto Scaling processes that, suspended, hold a pool where it is
/// ([`Snapshot::pool_bounds`]); the others (`AZRebalance`, `HealthCheck`, …) change nothing here.
pub const HOLDING_PROCESSES: [&str; 2] = ["Launch", "Terminate"];

/// Those of `suspended` (a group's suspended processes) that hold a pool where it is
/// ([`HOLDING_PROCESSES`]), in their order.
pub fn holding_processes(suspended: &[String]) -> Vec<&str> {
    suspended
        .iter()
        .map(String::as_str)
        .filter(|p| HOLDING_PROCESSES.contains(p))
        .collect()
}

impl Snapshot {
    /// The units `pool` may be set to, where anything bounds it: its group's `MinSize` and
    /// `MaxSize`, narrowed by the group's suspended processes around the desired capacity it
    /// holds. With `Launch` suspended, a raise launches nothing — AWS keeps the desired
    /// capacity and the group stays short of it until `Launch` resumes, then launches all at
    /// once — so the pool goes no higher than it is; with `Terminate` suspended, a lower
    /// terminates nothing (the instances stay and are billed), so it goes no lower. An
    /// operator suspends them for maintenance or an incident; the autoscaler works around the
    /// pool, as around a group's bounds, rather than against the operator.
    pub fn pool_bounds(&self, pool: &str) -> Option<GroupBounds> {
        let suspended = self.pool_suspended_processes.get(pool);
        let has = |p: &str| suspended.is_some_and(|s| s.iter().any(|x| x == p));
        let group = self.pool_group_bounds.get(pool).copied();
        let held = self.pool_desired_units.get(pool).copied();
        let (launch, terminate) = (has("Launch"), has("Terminate"));
        if group.is_none() && !((launch || terminate) && held.is_some()) {
            return None;
        }
        let mut b = group.unwrap_or(GroupBounds {
            min_units: 0,
            max_units: Units::MAX,
        });
        if let Some(held) = held {
            if launch {
                b.max_units = b.max_units.min(held).max(b.min_units);
            }
            if terminate {
                b.min_units = b.min_units.max(held).min(b.max_units);
            }
        }
        Some(b)
    }

    /// The processes suspended on `pool`'s group that hold it where it is
    /// ([`HOLDING_PROCESSES`]), for the condition that says why a target moved.
    pub fn pool_held_by(&self, pool: &str) -> Vec<&str> {
        self.pool_suspended_processes
            .get(pool)
            .map_or_else(Vec::new, |s| holding_processes(s))
    }

    /// Units of instances in service (HPA's ready pod count, weighted).
    pub fn in_service_units(&self) -> Units {
        self.units_in(|s| s == LifecycleState::InService)
    }

    /// Units of instances still booting.
    pub fn pending_units(&self) -> Units {
        self.units_in(|s| s == LifecycleState::Pending)
    }

    /// Units their Auto Scaling Groups count toward desired capacity and do not let go of by
    /// our choice — pending, in service and interrupted (a warned spot instance stays in its
    /// group until EC2 reclaims it, and the group replaces it only then): HPA's
    /// `status.replicas`. Without the interrupted units, a warning at `max_units` (the cover
    /// takes the warned unit's place, the group terminates a healthy instance of its choosing)
    /// read as one unit fewer running, and HPA's "within tolerance → keep the running pods" gave
    /// that unit up for good (`tests/placement_properties.rs`).
    pub fn status_units(&self) -> Units {
        self.units_in(|s| {
            matches!(
                s,
                LifecycleState::Pending | LifecycleState::InService | LifecycleState::Interrupted
            )
        })
    }

    fn units_in(&self, pred: impl Fn(LifecycleState) -> bool) -> Units {
        self.instances
            .iter()
            .filter(|i| pred(i.state))
            .map(|i| i.weight_units)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool's bounds: its group's MinSize/MaxSize, narrowed by a suspended `Launch` (no
    /// higher than the desired capacity it holds) or `Terminate` (no lower); other processes
    /// change nothing. Rows: (group bounds, suspended, desired held) → bounds.
    #[test]
    fn suspended_launch_and_terminate_hold_a_pool_where_it_is() {
        type Row = (
            Option<(Units, Units)>,
            &'static [&'static str],
            Option<Units>,
            Option<(Units, Units)>,
        );
        #[rustfmt::skip]
        let rows: [Row; 9] = [
            (Some((0, 20)), &[], Some(5), Some((0, 20))),
            (Some((0, 20)), &["Launch"], Some(5), Some((0, 5))),
            (Some((0, 20)), &["Terminate"], Some(5), Some((5, 20))),
            (Some((0, 20)), &["Launch", "Terminate"], Some(5), Some((5, 5))),
            (Some((2, 20)), &["AZRebalance", "HealthCheck"], Some(5), Some((2, 20))),
            (None, &["Launch"], Some(5), Some((0, 5))),
            (None, &["Launch"], None, None),
            (None, &[], Some(5), None),
            // Held below its MinSize (the group not yet described as raised): the MinSize wins.
            (Some((6, 20)), &["Launch"], Some(3), Some((6, 6))),
        ];
        for (group, suspended, held, want) in rows {
            let mut snap = Snapshot::default();
            if let Some((min_units, max_units)) = group {
                snap.pool_group_bounds.insert(
                    "p".into(),
                    GroupBounds {
                        min_units,
                        max_units,
                    },
                );
            }
            if !suspended.is_empty() {
                snap.pool_suspended_processes.insert(
                    "p".into(),
                    suspended.iter().map(|s| s.to_string()).collect(),
                );
            }
            if let Some(h) = held {
                snap.pool_desired_units.insert("p".into(), h);
            }
            let got = snap.pool_bounds("p").map(|b| (b.min_units, b.max_units));
            assert_eq!(got, want, "{group:?} {suspended:?} {held:?}");
        }
    }

    #[test]
    fn timestamp_round_trips_through_rfc3339() {
        for s in ["2026-11-28T09:00:00Z", "2026-03-29T01:59:59.250Z"] {
            let t = Timestamp::parse_rfc3339(s).unwrap();
            assert_eq!(t.to_string(), s);
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
        }
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }

    #[test]
    fn forecast_peaks_cover_the_window_or_refuse() {
        let t0 = Timestamp::from_secs(1_800_000_000);
        let f = DemandForecast {
            start: t0,
            point: vec![0.0; 5],
            upper: vec![1.0, 5.0, 3.0, 9.0, 2.0],
        };
        assert_eq!(f.peak_upper(t0, 0.0), Some(1.0));
        assert_eq!(f.peak_upper(t0.plus_secs(30.0), 60.0), Some(5.0));
        assert_eq!(f.peak_upper(t0.plus_secs(120.0), 119.0), Some(9.0));
        assert_eq!(
            f.peak_upper(t0.plus_secs(120.0), 180.0),
            None,
            "beyond the horizon"
        );
        assert_eq!(f.peak_upper(t0.plus_secs(-600.0), 60.0), Some(1.0));
    }

    #[test]
    fn unit_counts_follow_lifecycle_and_weights() {
        let inst = |state, w| Instance {
            id: "i".into(),
            pool: "p".into(),
            weight_units: w,
            state,
            samples: BTreeMap::new(),
            load: None,
        };
        let s = Snapshot {
            desired_units: 9,
            instances: vec![
                inst(LifecycleState::InService, 4),
                inst(LifecycleState::InService, 1),
                inst(LifecycleState::Pending, 2),
                inst(LifecycleState::Interrupted, 1),
                inst(LifecycleState::Draining, 1),
            ],
            ..Snapshot::default()
        };
        assert_eq!(s.in_service_units(), 5);
        assert_eq!(s.pending_units(), 2);
        assert_eq!(s.status_units(), 8);
    }
}
