//! The long-running loop: every tick, for each fleet, observe it through the [`Provider`], run
//! the engine, apply the decision (guarded), persist the engine state, and publish what
//! happened for `/metrics`, `/api/state` and `/healthz`.
//!
//! Edge code: async, tokio. Shutdown is a parameter (a watch channel), so tests stop it; time
//! goes through [`Clock`], so the simulated cloud runs on virtual time at any speed and tests
//! run with tokio's time paused.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tracing::{error, info, info_span, warn, Instrument};

use crate::config::{self, Config, Fleet, Predictive};
use crate::controller::{FleetController, PoolChange, PoolOutcome};
use crate::engine::{Action, Decision, EngineState};
use crate::forecast::predictor::{minute_of, settled_minute, Predictor};
use crate::model::{Timestamp, Units};
use crate::provider::{Provider, ProviderError};
use crate::store::StateStore;

/// Where "now" comes from.
#[derive(Clone, Copy, Debug)]
pub enum Clock {
    /// The wall clock (a real cloud).
    Wall,
    /// Virtual time: `epoch + ticks × tick_secs` (the simulated cloud, at any speed).
    Virtual {
        /// Time of tick 0.
        epoch: Timestamp,
        /// Virtual seconds per tick.
        tick_secs: f64,
    },
}

impl Clock {
    fn now(&self, tick: u64) -> Timestamp {
        match self {
            Clock::Wall => Timestamp::from_datetime(&chrono::Utc::now()),
            Clock::Virtual { epoch, tick_secs } => epoch.plus_secs(tick as f64 * tick_secs),
        }
    }
}

/// How the loop runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// The policy file, re-read on reload.
    pub config_path: PathBuf,
    /// Wall time between ticks.
    pub interval: Duration,
    /// Time source.
    pub clock: Clock,
    /// Limit on every provider call.
    pub call_timeout: Duration,
    /// Log what would be done; change nothing.
    pub dry_run: bool,
    /// Replica profiles whose prices fill pools without `unit_usd_per_hour` and whose figures
    /// give each fleet its capacity model (at start and on every reload).
    pub price_profiles: Vec<crate::sim::perf::Profile>,
}

/// Counters and the latest decision of one fleet.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FleetStatus {
    /// The latest decision (with its explanation).
    pub decision: Option<Decision>,
    /// Whether it was applied (false in dry-run, or when a call failed).
    pub applied: bool,
    /// The last tick whose plan went through (every change applied, or dry-run without a
    /// failure).
    pub last_ok_tick: Option<u64>,
    /// The last pool changes and what became of them.
    pub last_changes: Vec<(
        crate::controller::PoolChange,
        crate::controller::PoolOutcome,
    )>,
    /// Decisions by action (`scale_up`, `scale_down`, `hold`).
    pub decisions_total: BTreeMap<String, u64>,
    /// Conditions that held, by reason (`ScaleUpLimit`, `InvalidMetrics`, …).
    pub reasons_total: BTreeMap<String, u64>,
    /// Provider failures by kind.
    pub provider_errors_total: BTreeMap<String, u64>,
    /// `set_desired` calls made.
    pub set_desired_total: u64,
    /// Wall seconds the last tick of this fleet took.
    pub last_tick_seconds: f64,
    /// Ticks skipped by backoff after failures.
    pub backoff_skips_total: u64,
    /// Consecutive failed ticks.
    pub consecutive_failures: u32,
    /// Each pool as last observed.
    pub pools: BTreeMap<String, PoolStatus>,
    /// With predictive scaling: minutes of demand history held, and forecaster fits.
    pub forecast_history_minutes: usize,
    /// Forecaster fits made.
    pub forecast_fits: u64,
    /// Whether a forecast is in use, or why not (`short_history`, `off_track`, `fit_failed`).
    pub forecast_status: Option<crate::forecast::predictor::PredictorStatus>,
    /// The forecast ensemble's weights per candidate and horizon bucket.
    pub forecast_weights: Vec<crate::forecast::ensemble::Weight>,
    /// Share of the forecast's scored minutes that fell inside its interval (`None` before any).
    pub forecast_interval_coverage: Option<f64>,
    /// When each pool's desired capacity was last set successfully.
    pub last_applied_at: BTreeMap<String, Timestamp>,
    /// The fleet's latency as last observed (P95 TTFT and queue wait), when its servers report
    /// it.
    pub latency: Option<crate::model::FleetLatency>,
    /// The policy's P95 TTFT objective, seconds.
    pub slo_ttft_p95_secs: f64,
}

/// What the loop publishes after every tick.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Published {
    /// Ticks completed.
    pub ticks: u64,
    /// Each fleet's last three days, a point a minute, for the dashboard (`/api/history`):
    /// shared with the HTTP thread, not copied per tick.
    #[serde(skip)]
    pub history: crate::history::Shared,
    /// Values published to CloudWatch (`[global.cloudwatch_export]`).
    pub exported_points_total: u64,
    /// Ticks whose CloudWatch publication failed.
    pub export_errors_total: u64,
    /// Time (the clock's) of the last completed tick.
    pub last_tick_at: Option<Timestamp>,
    /// Wall time of the last completed tick, for health.
    #[serde(skip)]
    pub last_tick_instant: Option<Instant>,
    /// Wall seconds between ticks, for health.
    pub interval_secs: f64,
    /// `/healthz` turns unhealthy when no fleet's plan has gone through for this many ticks.
    pub unhealthy_after_ticks: u64,
    /// Whether the loop is in dry-run.
    pub dry_run: bool,
    /// CPU seconds the loop's thread spent in ticks (Linux `/proc/thread-self/schedstat`).
    pub tick_cpu_seconds_total: f64,
    /// Config reloads that succeeded / were rejected.
    pub reloads_total: u64,
    /// Rejected reloads.
    pub reload_failures_total: u64,
    /// Per fleet.
    pub fleets: BTreeMap<String, FleetStatus>,
    /// The provider's own counters (AWS calls, scrapes, events).
    pub provider: crate::provider::ProviderStats,
    /// The state database's health.
    pub persistence: Persistence,
    /// The HA lease, with `[global.ha]`.
    pub ha: Option<HaStatus>,
}

/// This daemon's place in an HA pair, as `/metrics` and `/api/state` report it.
#[derive(Clone, Debug, Serialize)]
pub struct HaStatus {
    /// Leader (actuating) or follower.
    pub role: crate::lease::Role,
    /// The lease (`[global.ha] lease_name`): one per pair.
    pub lease: String,
    /// This daemon's name in the lease.
    pub holder: String,
    /// The holder last read from the lease.
    pub holder_seen: Option<String>,
    /// The fencing token held, while leading.
    pub token: Option<u64>,
    /// Seconds since the lease record last changed, as seen here.
    pub lease_age_secs: Option<f64>,
    /// Changes of role so far.
    pub transitions_total: u64,
    /// Lease reads and writes that failed.
    pub lease_errors_total: u64,
}

/// The state database's health, as `/metrics` and `/healthz` report it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Persistence {
    /// Saves that failed (engine state, decisions, demand history).
    pub errors_total: u64,
    /// Ticks in a row whose engine state was not persisted (0 when the last one was).
    pub failing_ticks: u64,
    /// The last failure, for `/healthz`.
    pub last_error: Option<String>,
    /// Damaged databases moved aside (at start or by the periodic integrity check).
    pub recoveries_total: u64,
    /// Running on an in-memory database: the state directory could not be written.
    pub in_memory: bool,
}

/// The limit on every provider call of `run` (the AWS SDK retries inside it). The HA lease's
/// margin ([`crate::lease::MARGIN_SECS`]) covers one such call in flight.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the running daemon runs SQLite's `quick_check` on its database, seconds.
pub const INTEGRITY_CHECK_EVERY_SECS: f64 = 3600.0;

/// This daemon's default name in the HA lease: the host name and the process id (a restart
/// is a new holder, and waits a lease like any follower).
fn default_holder() -> String {
    // The hardened unit hides /proc/sys (ProcSubset=pid) and sets no HOSTNAME: /etc/hostname
    // first.
    let host = ["/etc/hostname", "/proc/sys/kernel/hostname"]
        .iter()
        .find_map(|p| {
            std::fs::read_to_string(p)
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}-{}", std::process::id())
}

/// The persistence status a store starts with, logged as loudly as it deserves.
fn opened_persistence(store: &StateStore) -> Persistence {
    use crate::store::Opened;
    let path = store.path().display().to_string();
    match store.opened() {
        Opened::Resumed => Persistence::default(),
        Opened::Fresh => {
            warn!(
                path,
                "no saved state: every fleet starts fresh (no scale-down until it has history)"
            );
            Persistence::default()
        }
        Opened::Recovered { moved_to, why } => {
            error!(path, moved_to = %moved_to.display(), why, "state database damaged: moved aside; every fleet starts fresh");
            Persistence {
                recoveries_total: 1,
                errors_total: 1,
                last_error: Some(why.clone()),
                ..Persistence::default()
            }
        }
        Opened::InMemory { why } => {
            error!(path, why, "state directory not writable: running on an in-memory database, persisting nothing; every fleet starts fresh — fix the directory and restart");
            Persistence {
                in_memory: true,
                errors_total: 1,
                last_error: Some(format!("state not persisted (in memory): {why}")),
                ..Persistence::default()
            }
        }
    }
}

/// One pool as last observed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PoolStatus {
    /// `spot` or `on-demand`.
    pub market: String,
    /// Desired capacity set on the group, units.
    pub desired_units: Units,
    /// Units in service.
    pub in_service_units: Units,
    /// Units booting.
    pub pending_units: Units,
}

/// Why the loop could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The state database failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A pool with a budget has no price, or a fleet using the capacity model has no profile.
    #[error(transparent)]
    Profile(#[from] crate::cost::ProfileError),
}

/// CPU time of the calling thread, seconds (0 where the kernel does not say).
fn thread_cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|n| n.parse::<f64>().ok())
        })
        .map_or(0.0, |ns| ns / 1e9)
}

/// The dashboard's history as the state database remembers it (a restarted daemon shows its
/// past). A fleet whose log runs later than `now` (another timeline: a simulated run restarted)
/// starts empty, as its engine state does; an unreadable log is logged and skipped.
fn seed_history(store: &StateStore, config: &Config, now: Timestamp) -> crate::history::Shared {
    use crate::history::{change_of, point_of, FleetHistory, CHANGES_KEPT, MINUTES_KEPT};
    let mut all = BTreeMap::new();
    for f in &config.fleets {
        let (points, changes) = match store.history(&f.name, MINUTES_KEPT, CHANGES_KEPT) {
            Ok(rows) => rows,
            Err(e) => {
                warn!(fleet = %f.name, error = %e, "the decision log could not be read: the dashboard's history starts empty");
                continue;
            }
        };
        let parse = |rows: &[String]| -> Vec<serde_json::Value> {
            rows.iter()
                .filter_map(|r| serde_json::from_str(r).ok())
                .collect()
        };
        let mut h = FleetHistory::default();
        h.ttft_slo_secs = Some(f.slo.ttft_p95_secs);
        let mut changes = parse(&changes)
            .into_iter()
            .filter_map(|d| change_of(&d))
            .peekable();
        for d in parse(&points) {
            let Some(p) = point_of(&d) else {
                continue;
            };
            // Changes up to this point's time go in before it, in order.
            let mut these = Vec::new();
            while let Some(c) = changes.next_if(|c| c.at <= p.at) {
                these.push(c);
            }
            h.record(p, None);
            for c in these {
                h.record_change(c);
            }
        }
        for c in changes {
            h.record_change(c);
        }
        if h.last_at()
            .is_some_and(|t| t.secs_since(now) > crate::model::FUTURE_SKEW_ALLOWANCE_SECS)
        {
            continue;
        }
        all.insert(f.name.clone(), h);
    }
    std::sync::Arc::new(std::sync::RwLock::new(all))
}

/// Keeps a saved state the fleet will not resume in the store's `engine_state_set_aside`, so
/// the fleet's first save does not destroy it (a rollback to the build that wrote it finds it
/// there); a failure to keep it is logged and counted, and the fleet starts fresh all the same.
fn set_aside(
    store: &mut StateStore,
    persistence: &mut Persistence,
    fleet: &str,
    why: &str,
    now: Timestamp,
) {
    match store.set_aside(fleet, why, now) {
        Ok(kept) if kept > 0 => {
            warn!(
                fleet,
                reason = why,
                "the saved engine state is kept in the table engine_state_set_aside"
            );
        }
        Ok(_) => {}
        Err(e) => {
            error!(fleet, error = %e, "the saved engine state could not be set aside; the fleet's first save replaces it");
            persistence.errors_total += 1;
            persistence.last_error = Some(e.to_string());
        }
    }
}

/// Whether a publish is due: `now` falls in another `period_secs` window (aligned to the
/// epoch, so a 60-s period gives one value per CloudWatch minute) than the last publish — a
/// later one, or an earlier one after the clock stepped back.
fn export_due(last: Option<Timestamp>, now: Timestamp, period_secs: u64) -> bool {
    let window = |t: Timestamp| t.millis().div_euclid(period_secs as i64 * 1000);
    last.is_none_or(|l| window(now) != window(l))
}

/// Ticks to skip after `failures` consecutive failures: 1, 2, 4, … capped at 32, with ±25 %
/// jitter (seeded by the tick, so runs stay reproducible) so fleets and replicas spread out.
fn backoff_ticks(failures: u32, tick: u64, throttled: bool) -> u64 {
    if failures == 0 {
        return 0;
    }
    let base = (1u64 << (failures - 1).min(5)) * if throttled { 2 } else { 1 };
    let base = base.min(32);
    let jitter = (tick.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as i64 - 8; // −8 … 7
    (base as i64 + base as i64 * jitter / 32).max(1) as u64
}

/// The loop.
pub struct Daemon<P: Provider> {
    config: Arc<Config>,
    provider: P,
    store: StateStore,
    opts: Options,
    /// Per fleet: its controller (engine state between iterations).
    controllers: BTreeMap<String, FleetController>,
    skip_until: BTreeMap<String, u64>,
    /// Per fleet with `[fleets.predictive]`: its demand history and forecast.
    predictors: BTreeMap<String, Predictor>,
    published: Published,
    tx: watch::Sender<Arc<Published>>,
    /// With `[global.ha]` (as at start: a reload cannot join or leave a pair): its settings
    /// and this daemon's view of the leader lease.
    elector: Option<(crate::config::HaSettings, crate::lease::Elector)>,
    /// Zero of the monotonic clock the lease is timed on (tokio's: paused in tests).
    started: tokio::time::Instant,
    /// Whether a fleet's save failed in the tick under way.
    tick_save_failed: bool,
    /// When values were last published to CloudWatch (`[global.cloudwatch_export]`).
    last_export_at: Option<Timestamp>,
}

/// What one fleet's iteration came to.
struct Iteration {
    /// The decision, when one was made.
    decision: Option<Decision>,
    /// Every change applied (or, in dry-run, none failed).
    ok: bool,
    /// The first failure, for the backoff.
    error: Option<ProviderError>,
    /// Each pool change and its outcome.
    changes: Vec<(PoolChange, PoolOutcome)>,
}

impl Iteration {
    fn failed(error: ProviderError) -> Self {
        Iteration {
            decision: None,
            ok: false,
            error: Some(error),
            changes: Vec::new(),
        }
    }
}

impl<P: Provider> Daemon<P> {
    /// A loop over `config`'s fleets, resuming each fleet's saved engine state.
    pub fn new(
        mut config: Config,
        provider: P,
        mut store: StateStore,
        opts: Options,
        tx: watch::Sender<Arc<Published>>,
    ) -> Result<Self, DaemonError> {
        crate::cost::apply_profiles(&mut config, &opts.price_profiles)?;
        let mut persistence = opened_persistence(&store);
        let mut controllers = BTreeMap::new();
        for f in &config.fleets {
            match store.load(&f.name) {
                // A state decided later than now belongs to another timeline: the wall clock
                // jumped back, or a simulated run restarted at its scenario's start. Resuming
                // it would read its history as the future; the fleet starts fresh instead.
                Ok(Some(s))
                    if s.last_decided_at().is_some_and(|t| {
                        t.secs_since(opts.clock.now(0)) > crate::model::FUTURE_SKEW_ALLOWANCE_SECS
                    }) =>
                {
                    warn!(fleet = %f.name, decided_at = %s.last_decided_at().unwrap_or_default(), now = %opts.clock.now(0),
                        "saved engine state is from later than the clock (a clock jump, or a simulated run restarted): this fleet starts fresh");
                    let why = "decided later than the clock";
                    set_aside(
                        &mut store,
                        &mut persistence,
                        &f.name,
                        why,
                        opts.clock.now(0),
                    );
                }
                Ok(Some(s)) => {
                    info!(fleet = %f.name, version = s.version, "resuming saved engine state");
                    controllers.insert(f.name.clone(), FleetController::new(s));
                }
                Ok(None) => {}
                // One fleet's unreadable state must not stop every fleet: it starts fresh (a
                // fresh engine holds scale-down until it has history), and it is counted.
                Err(e) => {
                    error!(fleet = %f.name, error = %e, "saved engine state unreadable; this fleet starts fresh");
                    persistence.errors_total += 1;
                    persistence.last_error = Some(e.to_string());
                    let why = e.to_string();
                    set_aside(
                        &mut store,
                        &mut persistence,
                        &f.name,
                        &why,
                        opts.clock.now(0),
                    );
                }
            }
        }
        let history = seed_history(&store, &config, opts.clock.now(0));
        let published = Published {
            history,
            interval_secs: opts.interval.as_secs_f64(),
            unhealthy_after_ticks: config.global.unhealthy_after_ticks,
            dry_run: opts.dry_run || config.global.dry_run,
            persistence,
            ..Published::default()
        };
        let elector = config.global.ha.as_ref().map(|ha| {
            let me = ha.holder.clone().unwrap_or_else(default_holder);
            info!(holder = %me, table = %ha.table, lease = %ha.lease_name, lease_secs = ha.lease_secs,
                "HA: a follower until this daemon holds the lease");
            let e = crate::lease::Elector::new(me, ha.lease_secs as f64, crate::lease::MARGIN_SECS);
            (ha.clone(), e)
        });
        Ok(Daemon {
            config: Arc::new(config),
            provider,
            store,
            opts,
            controllers,
            skip_until: BTreeMap::new(),
            predictors: BTreeMap::new(),
            published,
            tx,
            elector,
            started: tokio::time::Instant::now(),
            tick_save_failed: false,
            last_export_at: None,
        })
    }

    /// The provider, for tests.
    pub fn provider(&self) -> &P {
        &self.provider
    }

    /// The provider, mutably, for tests that observe through it between ticks.
    pub fn provider_mut(&mut self) -> &mut P {
        &mut self.provider
    }

    /// Stops the loop and hands the provider back (a restart keeps the same cloud).
    pub fn into_provider(self) -> P {
        self.provider
    }

    /// The engine state of a fleet, as it would be persisted.
    pub fn state(&self, fleet: &str) -> Option<&EngineState> {
        self.controllers.get(fleet).map(FleetController::state)
    }

    /// The running policy.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What has been published so far.
    pub fn published(&self) -> &Published {
        &self.published
    }

    /// Whether nothing may be changed now: dry-run, or a follower of an HA pair (or a leader
    /// whose right to act has run out mid-tick).
    fn dry_run(&self) -> bool {
        self.opts.dry_run || self.config.global.dry_run || !self.may_actuate()
    }

    /// Seconds on the lease's monotonic clock.
    fn mono_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Without `[global.ha]`, always; with it, while this daemon holds the lease.
    fn may_actuate(&self) -> bool {
        self.elector
            .as_ref()
            .is_none_or(|(_, e)| e.is_leader(self.mono_secs()))
    }

    /// One read of the lease and, when the elector asks, one conditional write — each bounded
    /// by the call timeout.
    async fn renew_lease(
        &mut self,
        ha: &crate::config::HaSettings,
        elector: &mut crate::lease::Elector,
    ) -> Result<(), String> {
        let timeout = self.opts.call_timeout;
        let late = |what: &str| format!("{what} took longer than {timeout:?}");
        let record = tokio::time::timeout(timeout, self.provider.lease_read(ha))
            .await
            .map_err(|_| late("reading the lease"))?
            .map_err(|e| e.to_string())?;
        let crate::lease::Step::Write { new, expected } = elector.step(self.mono_secs(), record)
        else {
            return Ok(());
        };
        let sent_at = self.mono_secs();
        let write = self.provider.lease_write(ha, &new, expected.as_ref());
        let mut won = tokio::time::timeout(timeout, write)
            .await
            .map_err(|_| late("writing the lease"))?
            .map_err(|e| e.to_string())?;
        if !won {
            // A write that landed but whose answer was lost is retried by the SDK and then
            // fails its own condition: the record tells.
            let now = tokio::time::timeout(timeout, self.provider.lease_read(ha)).await;
            won = matches!(now, Ok(Ok(Some(r))) if r == new);
        }
        elector.written(&new, won, sent_at);
        Ok(())
    }

    /// Once per tick, before anything is actuated: read the lease, renew or take it when due,
    /// and publish the role. A failed read or write leaves the right to act to run out.
    async fn lease_step(&mut self) {
        let Some((ha, mut elector)) = self.elector.take() else {
            return;
        };
        let mut errors = self
            .published
            .ha
            .as_ref()
            .map_or(0, |h| h.lease_errors_total);
        if let Err(why) = self.renew_lease(&ha, &mut elector).await {
            errors += 1;
            warn!(error = %why, "the lease could not be read or written; the right to act runs out");
        }
        let now = self.mono_secs();
        let was = elector.transitions();
        let role = elector.role(now);
        if elector.transitions() != was {
            match role {
                crate::lease::Role::Leader => {
                    warn!(
                        holder = elector.me(),
                        token = elector.token(now),
                        "HA: this daemon now leads and actuates"
                    )
                }
                crate::lease::Role::Follower => {
                    warn!(
                        holder = elector.me(),
                        leader = elector.holder_seen().unwrap_or("none"),
                        "HA: this daemon now follows; it actuates nothing"
                    )
                }
            }
        }
        self.provider
            .consume_events(role == crate::lease::Role::Leader);
        self.published.ha = Some(HaStatus {
            lease: ha.lease_name.clone(),
            role,
            holder: elector.me().to_string(),
            holder_seen: elector.holder_seen().map(str::to_string),
            token: elector.token(now),
            lease_age_secs: elector.record_age_secs(now),
            transitions_total: elector.transitions(),
            lease_errors_total: errors,
        });
        self.elector = Some((ha, elector));
    }

    /// Runs until `shutdown` turns true; `reload` asks to re-read the policy file.
    pub async fn run(
        &mut self,
        mut shutdown: watch::Receiver<bool>,
        mut reload: mpsc::Receiver<()>,
    ) {
        let mut interval = tokio::time::interval(self.opts.interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => self.tick().await,
                Some(()) = reload.recv() => self.reload(),
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        info!(ticks = self.published.ticks, "shutting down");
                        break;
                    }
                }
            }
        }
    }

    /// Re-reads the policy file; an invalid file keeps the running policy and logs every problem.
    pub fn reload(&mut self) {
        let loaded = config::load(&self.opts.config_path).and_then(|mut cfg| {
            crate::cost::apply_profiles(&mut cfg, &self.opts.price_profiles)
                .map(|()| cfg)
                .map_err(|e| config::ConfigError::Prices(e.to_string()))
        });
        match loaded {
            Ok(cfg) => {
                info!(path = %self.opts.config_path.display(), fleets = cfg.fleets.len(), "policy reloaded");
                for key in config::summary::startup_only_changes(&self.config.global, &cfg.global) {
                    warn!(key, "global.{key} changed: it is read at start-up only; the running value stays until a restart");
                }
                if cfg.global.ha.as_ref() != self.elector.as_ref().map(|(ha, _)| ha) {
                    warn!("global.ha changed: joining or leaving an HA pair takes a restart; the running lease settings stay");
                }
                self.published.unhealthy_after_ticks = cfg.global.unhealthy_after_ticks;
                self.config = Arc::new(cfg);
                self.published.reloads_total += 1;
            }
            Err(e) => {
                for p in e.problems() {
                    error!(problem = %p, "policy reload rejected; keeping the running policy");
                }
                if e.problems().is_empty() {
                    error!(error = %e, "policy reload rejected; keeping the running policy");
                }
                self.published.reload_failures_total += 1;
            }
        }
        self.publish();
    }

    /// One tick over every fleet.
    pub async fn tick(&mut self) {
        self.lease_step().await;
        let tick = self.published.ticks;
        let now = self.opts.clock.now(tick);
        let cpu0 = thread_cpu_secs();
        let config = self.config.clone();
        let mut acted = std::collections::BTreeSet::new();
        for fleet in &config.fleets {
            let span = info_span!("tick", fleet = %fleet.name, tick, at = %now);
            if self.tick_fleet(fleet, tick, now).instrument(span).await {
                acted.insert(fleet.name.clone());
            }
        }
        let dry_run = self.dry_run();
        if dry_run {
            acted.clear();
        }
        let end = tokio::time::timeout(
            self.opts.call_timeout,
            self.provider.end_tick(&config.fleets, dry_run, &acted),
        )
        .await;
        match end {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                warn!(tick, error = %e, "end-of-tick work failed; it is retried next tick")
            }
            Err(_) => warn!(tick, "end-of-tick work timed out; it is retried next tick"),
        }
        self.export_metrics(&config, tick, now).await;
        self.persisted_tick();
        self.integrity_check(tick);
        self.published.ticks += 1;
        self.published.last_tick_at = Some(now);
        self.published.last_tick_instant = Some(Instant::now());
        self.published.tick_cpu_seconds_total += (thread_cpu_secs() - cpu0).max(0.0);
        self.published.provider = self.provider.stats();
        self.publish();
    }

    fn publish(&self) {
        let _ = self.tx.send(Arc::new(self.published.clone()));
    }

    /// Every [`INTEGRITY_CHECK_EVERY_SECS`] of ticks, SQLite's `quick_check`; damage found is
    /// moved aside and the next tick's saves start a fresh database from what is in memory.
    fn integrity_check(&mut self, tick: u64) {
        let every = (INTEGRITY_CHECK_EVERY_SECS / self.config.global.tick_secs.max(1) as f64)
            .ceil()
            .max(1.0) as u64;
        if tick == 0 || !tick.is_multiple_of(every) || self.published.persistence.in_memory {
            return;
        }
        let Err(e) = self.store.check() else {
            return;
        };
        error!(error = %e, "state database damaged while running; moving it aside");
        let p = &mut self.published.persistence;
        p.errors_total += 1;
        p.last_error = Some(e.to_string());
        match self.store.recover() {
            Ok(moved_to) => {
                p.recoveries_total += 1;
                error!(moved_to = %moved_to.display(), "damaged state database moved aside; continuing on a fresh one");
                self.resave_demand_history();
            }
            Err(e) => {
                p.in_memory = true;
                p.last_error = Some(format!("state not persisted (in memory): {e}"));
                error!(error = %e, "could not recover the damaged state database: running on memory, persisting nothing");
            }
        }
    }

    /// After a recovery: the demand history held in memory, saved again to the fresh
    /// database. The engine state is saved whole every tick, but the history only gains its
    /// new minutes, so without this a restart would find the backfilled days gone (and, its
    /// newest minute recent, not fetch them again).
    fn resave_demand_history(&mut self) {
        for (fleet, predictor) in &self.predictors {
            let minutes: Vec<(i64, Option<f64>)> = predictor.since(i64::MIN).collect();
            let keep_from = minutes.first().map_or(i64::MIN, |(m, _)| *m);
            match self.store.save_demand(fleet, &minutes, keep_from) {
                Ok(()) => {
                    info!(fleet = %fleet, minutes = minutes.len(), "demand history saved again to the fresh database")
                }
                Err(e) => {
                    warn!(fleet = %fleet, error = %e, "could not save the demand history again");
                    let p = &mut self.published.persistence;
                    p.errors_total += 1;
                    p.last_error = Some(e.to_string());
                }
            }
        }
    }

    /// Counts one fleet's save; the tick's outcome is taken by [`Self::persisted_tick`].
    fn persisted(&mut self, result: Result<(), crate::store::StoreError>) {
        if let Err(e) = result {
            // The decision stands; a restart would resume from the previous saved state.
            error!(error = %e, "could not persist engine state");
            let p = &mut self.published.persistence;
            p.errors_total += 1;
            p.last_error = Some(e.to_string());
            self.tick_save_failed = true;
        }
    }

    /// One tick's persistence: failing when any fleet's save failed or nothing is persisted
    /// (in memory); `failing_ticks` counts such ticks in a row, whatever the number of fleets.
    fn persisted_tick(&mut self) {
        let p = &mut self.published.persistence;
        if std::mem::take(&mut self.tick_save_failed) || p.in_memory {
            p.failing_ticks += 1;
        } else {
            p.failing_ticks = 0;
        }
    }

    /// One fleet's tick; true when its plan went through.
    async fn tick_fleet(&mut self, fleet: &Fleet, tick: u64, now: Timestamp) -> bool {
        if self.skip_until.get(&fleet.name).is_some_and(|t| tick < *t) {
            self.status(fleet).backoff_skips_total += 1;
            return false;
        }
        let started = Instant::now();
        let it = self.iterate(fleet, now).await;
        let dry_run = self.dry_run();
        let history = self.published.history.clone();
        let st = self.status(fleet);
        st.last_tick_seconds = started.elapsed().as_secs_f64();
        st.applied = it.ok && !dry_run;
        st.last_changes = it.changes;
        if it.ok {
            st.last_ok_tick = Some(tick);
        }
        if let Some(decision) = it.decision {
            *st.decisions_total
                .entry(decision.action.as_str().into())
                .or_default() += 1;
            for c in decision.conditions.iter().filter(|c| c.is_notable()) {
                *st.reasons_total.entry(c.reason.to_string()).or_default() += 1;
            }
            if decision.action != Action::Hold || tick.is_multiple_of(20) {
                info!(
                    current = decision.current_units,
                    desired = decision.desired_units,
                    in_service = decision.in_service_units,
                    dry_run,
                    applied = it.ok,
                    "{}",
                    decision.summary
                );
            }
            if let Ok(v) = serde_json::to_value(&decision) {
                if let (Some(point), Ok(mut h)) = (crate::history::point_of(&v), history.write()) {
                    // A refused plan changed nothing; a dry run's change is shown (once).
                    let change = (it.ok || dry_run)
                        .then(|| crate::history::change_of(&v))
                        .flatten();
                    let fh = h.entry(fleet.name.clone()).or_default();
                    fh.ttft_slo_secs = Some(fleet.slo.ttft_p95_secs);
                    fh.record(point, change);
                }
            }
            st.decision = Some(decision);
        }
        match it.error {
            None => {
                st.consecutive_failures = 0;
                self.skip_until.remove(&fleet.name);
            }
            Some(e) => {
                st.consecutive_failures += 1;
                let kind = match &e {
                    ProviderError::Transient(_) => "transient",
                    ProviderError::Throttled(_) => "throttled",
                    ProviderError::NotFound(_) => "not_found",
                    ProviderError::Config(_) => "config",
                };
                *st.provider_errors_total.entry(kind.into()).or_default() += 1;
                let skip = backoff_ticks(
                    st.consecutive_failures,
                    tick,
                    matches!(e, ProviderError::Throttled(_)),
                );
                let failures = st.consecutive_failures;
                if e.retryable() {
                    warn!(error = %e, failures, skip_ticks = skip - 1, "provider call failed; backing off");
                } else {
                    error!(error = %e, failures, skip_ticks = skip - 1, "provider call failed; a human must look");
                }
                self.skip_until.insert(fleet.name.clone(), tick + skip);
            }
        }
        it.ok
    }

    fn status(&mut self, fleet: &Fleet) -> &mut FleetStatus {
        self.published.fleets.entry(fleet.name.clone()).or_default()
    }

    /// One iteration: observe, plan (the fleet controller), apply each pool change in the
    /// plan's order, commit what happened, persist.
    async fn iterate(&mut self, fleet: &Fleet, now: Timestamp) -> Iteration {
        let snap = tokio::time::timeout(self.opts.call_timeout, self.provider.snapshot(fleet, now))
            .await
            .unwrap_or_else(|_| {
                Err(ProviderError::Transient(format!(
                    "observing the fleet took longer than {:?}",
                    self.opts.call_timeout
                )))
            });
        let mut snap = match snap {
            Ok(s) => s,
            Err(e) => return Iteration::failed(e),
        };
        // Spot pools are priced at the market when the cloud tells it (the ledger and budget).
        let priced;
        let fleet = match self.provider.unit_prices(fleet, now).await {
            Ok(prices) if !prices.is_empty() => {
                priced = with_unit_prices(fleet, &prices);
                &priced
            }
            Ok(_) => fleet,
            Err(e) => {
                warn!(error = %e, "reading market prices failed; pricing from the profiles");
                fleet
            }
        };
        if let Some(cfg) = &fleet.predictive {
            snap.forecast = self.forecast(fleet, cfg, now).await;
        }
        let st = self.status(fleet);
        st.pools = observed_pools(fleet, &snap);
        st.latency = snap.latency;
        st.slo_ttft_p95_secs = fleet.slo.ttft_p95_secs;
        let dry_run = self.dry_run();
        let plan = self
            .controllers
            .entry(fleet.name.clone())
            .or_default()
            .plan(fleet, &snap, now, dry_run);
        if let Some(r) = &plan.refusal {
            return Iteration {
                decision: Some(plan.decision.clone()),
                ok: false,
                error: Some(ProviderError::Config(r.to_string())),
                changes: Vec::new(),
            };
        }
        let (outcome, error) = self.apply(fleet, &plan, &snap).await;
        // Warm pools after the pool changes, as the simulator applies them (`apply_plan`) and
        // AWS reconciles them (at the tick's end): a scale-up this tick does not draw on warm
        // instances sized in the same tick.
        for w in plan.warm_pool_targets() {
            if let Some(pool) = fleet.pool(&w.pool) {
                self.provider.warm_pool_target(fleet, pool, w.min_size);
            }
        }
        let ctl = self.controllers.entry(fleet.name.clone()).or_default();
        let state = ctl.commit(fleet, &plan, &outcome).clone();
        let saved = self.store.save(&fleet.name, &state, &plan.decision);
        self.persisted(saved);
        Iteration {
            ok: error.is_none()
                && outcome
                    .changes
                    .iter()
                    .all(|(_, o)| matches!(o, PoolOutcome::Applied | PoolOutcome::DryRun)),
            decision: Some(plan.decision),
            error,
            changes: outcome.changes,
        }
    }

    /// Applies the plan's changes in order, each bounded by the call timeout; one pool's
    /// failure does not stop the others. Every change is logged with its reason.
    async fn apply(
        &mut self,
        fleet: &Fleet,
        plan: &crate::controller::Plan,
        snap: &crate::model::Snapshot,
    ) -> (crate::controller::Outcome, Option<ProviderError>) {
        let mut applier = plan.applier(&snap.pool_desired_units);
        let mut first_error = None;
        while let Some(c) = applier.next_change() {
            let Some(pool) = fleet.pool(&c.pool) else {
                applier.report(Err(format!("no pool {} in the policy", c.pool)));
                continue;
            };
            // The right to act may run out mid-tick (a slow tick after a renewal): a follower
            // could take over from then on, so nothing more is sent.
            if !self.may_actuate() {
                warn!(fleet = %fleet.name, pool = %c.pool, "the lease's right to act ran out; not setting {} → {} units", c.from_units, c.to_units);
                applier.report(Err("not the leader any more".into()));
                continue;
            }
            // The lease term the call is sent under: a slow call may outlast it, and read
            // after the call the log would say no term authorised a change that landed.
            let token = self
                .elector
                .as_ref()
                .and_then(|(_, e)| e.token(self.mono_secs()));
            let r = match tokio::time::timeout(
                self.opts.call_timeout,
                self.provider.set_desired(fleet, pool, c.to_units),
            )
            .await
            {
                // A timeout (ours, or the SDK's own, which ends the call with a transient
                // error at the same limit) or a 5xx may come after AWS applied the change.
                Ok(Err(e @ ProviderError::Transient(_))) => {
                    self.read_back(fleet, pool, &c, e).await
                }
                Ok(r) => r,
                Err(_) => {
                    let timed_out = ProviderError::Transient(format!(
                        "setting {} took longer than {:?}",
                        c.asg_name, self.opts.call_timeout
                    ));
                    self.read_back(fleet, pool, &c, timed_out).await
                }
            };
            match &r {
                Ok(()) => {
                    let st = self.status(fleet);
                    st.set_desired_total += 1;
                    st.last_applied_at.insert(c.pool.clone(), plan.decision.at);
                    info!(fleet = %fleet.name, pool = %c.pool, asg = %c.asg_name, from = c.from_units, to = c.to_units, reason = %c.reason, lease_token = ?token,
                        "pool {}: {} → {} units ({})", c.pool, c.from_units, c.to_units, c.reason);
                }
                Err(e) => {
                    warn!(fleet = %fleet.name, pool = %c.pool, asg = %c.asg_name, from = c.from_units, to = c.to_units, reason = %c.reason, error = %e,
                        "pool {}: setting {} → {} units failed; the other pools go on", c.pool, c.from_units, c.to_units);
                }
            }
            applier.report(r.as_ref().map(|_| ()).map_err(|e| e.to_string()));
            if let Err(e) = r {
                first_error.get_or_insert(e);
            }
        }
        let outcome = applier.finish();
        for (c, o) in &outcome.changes {
            match o {
                PoolOutcome::DryRun => {
                    info!(pool = %c.pool, asg = %c.asg_name, from = c.from_units, to = c.to_units, reason = %c.reason,
                    "dry-run: would set pool {}: {} → {} units ({})", c.pool, c.from_units, c.to_units, c.reason)
                }
                PoolOutcome::SkippedOverMax => {
                    warn!(pool = %c.pool, from = c.from_units, to = c.to_units, reason = %c.reason,
                    "pool {}: raise to {} skipped: a lowering failed and the pools would pass max_units", c.pool, c.to_units)
                }
                PoolOutcome::SkippedUnderPlan => {
                    warn!(pool = %c.pool, from = c.from_units, to = c.to_units, reason = %c.reason,
                    "pool {}: lower to {} skipped: a raise it made room for failed, and the pools would fall below the plan's total", c.pool, c.to_units)
                }
                PoolOutcome::LoweredInPart { planned_units } => {
                    warn!(pool = %c.pool, from = c.from_units, to = c.to_units, planned = planned_units, reason = %c.reason,
                    "pool {}: lowered to {} of the plan's {}: a raise it made room for failed, and the pools stop at the plan's total", c.pool, c.to_units, planned_units)
                }
                _ => {}
            }
        }
        (outcome, first_error)
    }

    /// A set that failed without an answer — it timed out, or the service failed (5xx) — may
    /// have landed all the same: the group is read back (bounded by the call timeout), and a
    /// group that holds what was asked counts as applied — so its scale event is recorded (the
    /// rate limits count the step) and its placement record kept (a cover it raised stays a
    /// cover). Anything else is the set's own failure, `failed`.
    async fn read_back(
        &mut self,
        fleet: &Fleet,
        pool: &crate::config::Pool,
        c: &PoolChange,
        failed: ProviderError,
    ) -> Result<(), ProviderError> {
        let held = tokio::time::timeout(
            self.opts.call_timeout,
            self.provider.holds_desired(fleet, pool, c.to_units),
        )
        .await;
        match held {
            Ok(Ok(true)) => {
                warn!(fleet = %fleet.name, pool = %c.pool, asg = %c.asg_name, to = c.to_units, error = %failed,
                    "pool {}: setting {} units failed without an answer, but the group holds them: applied", c.pool, c.to_units);
                Ok(())
            }
            Ok(Ok(false)) => Err(failed),
            Ok(Err(e)) => {
                warn!(fleet = %fleet.name, pool = %c.pool, asg = %c.asg_name, error = %e,
                    "pool {}: reading the group back after a failed set failed too", c.pool);
                Err(failed)
            }
            Err(_) => {
                warn!(fleet = %fleet.name, pool = %c.pool, asg = %c.asg_name,
                    "pool {}: reading the group back after a failed set took longer than {:?}", c.pool, self.opts.call_timeout);
                Err(failed)
            }
        }
    }

    /// With `[global.cloudwatch_export]`: publishes the tick's values once per period (one
    /// batched call, bounded by the call timeout). A failure is logged and counted, and the
    /// next tick in the same period tries again; CloudWatch keeps no gap-filling promise, and
    /// neither do we.
    async fn export_metrics(&mut self, config: &Config, tick: u64, now: Timestamp) {
        let Some(settings) = &config.global.cloudwatch_export else {
            return;
        };
        if !export_due(self.last_export_at, now, settings.period_secs) {
            return;
        }
        let points = crate::telemetry::cloudwatch_points(&self.published);
        if points.is_empty() {
            return;
        }
        match tokio::time::timeout(
            self.opts.call_timeout,
            self.provider.export(settings, &points),
        )
        .await
        {
            Ok(Ok(())) => {
                self.published.exported_points_total += points.len() as u64;
                self.last_export_at = Some(now);
            }
            Ok(Err(e)) => {
                self.published.export_errors_total += 1;
                warn!(tick, error = %e, "publishing to CloudWatch failed; the next tick tries again")
            }
            Err(_) => {
                self.published.export_errors_total += 1;
                warn!(
                    tick,
                    "publishing to CloudWatch timed out; the next tick tries again"
                )
            }
        }
    }

    /// The fleet's forecast at `now`: its history is loaded from the state database on first
    /// use, backfilled from the provider (`history_days`), extended with every newly settled
    /// minute (two minutes old: CloudWatch publishes late) and persisted; the forecaster refits
    /// on its schedule. A failing source is logged and the history simply stops growing.
    async fn forecast(
        &mut self,
        fleet: &Fleet,
        cfg: &Predictive,
        now: Timestamp,
    ) -> Option<crate::model::DemandForecast> {
        let oldest = minute_of(now) - cfg.history_days as i64 * 1440;
        let settled = settled_minute(now);
        if !self.predictors.contains_key(&fleet.name) {
            let mut p = Predictor::new(cfg, fleet.forecast_silence_gap_mins());
            match self.store.load_demand(&fleet.name, oldest) {
                Ok(rows) => rows.into_iter().for_each(|(m, v)| p.record(m, v)),
                Err(e) => warn!(error = %e, "could not read the stored demand history"),
            }
            info!(
                minutes = p.len(),
                "demand history loaded from the state database"
            );
            self.predictors.insert(fleet.name.clone(), p);
        }
        let from = self.predictors[&fleet.name]
            .last_minute()
            .map_or(oldest, |l| (l + 1).max(oldest));
        if from <= settled {
            let fetched = tokio::time::timeout(
                self.opts.call_timeout * 6,
                self.provider.demand(fleet, from, settled),
            )
            .await;
            match fetched {
                Ok(Ok(points)) => {
                    let p = self
                        .predictors
                        .get_mut(&fleet.name)
                        .expect("inserted above");
                    for (m, v) in points
                        .into_iter()
                        .filter(|(m, _)| (from..=settled).contains(m))
                    {
                        p.record(m, Some(v));
                    }
                    // The settled minute is known now, data or not: a missing one is a gap.
                    if p.last_minute() != Some(settled) {
                        p.record(settled, None);
                    }
                    let new: Vec<(i64, Option<f64>)> = p.since(from).collect();
                    if from < settled - 10 {
                        info!(minutes = new.len(), "demand history backfilled");
                    }
                    if let Err(e) = self.store.save_demand(&fleet.name, &new, oldest) {
                        warn!(error = %e, "could not persist the demand history");
                        self.published.persistence.errors_total += 1;
                        self.published.persistence.last_error = Some(e.to_string());
                    }
                }
                Ok(Err(e)) => {
                    warn!(error = %e, "reading the demand history failed; forecasting from what is held")
                }
                Err(_) => {
                    warn!("reading the demand history timed out; forecasting from what is held")
                }
            }
        }
        let p = self
            .predictors
            .get_mut(&fleet.name)
            .expect("inserted above");
        let forecast = p.forecast(now).cloned();
        let (held, fits, status) = (p.len(), p.fits, p.status());
        // Weights before the first fit would be the equal prior, not anything learnt.
        let weights = if p.fits > 0 { p.weights() } else { Vec::new() };
        let coverage = p.interval_coverage();
        let st = self.status(fleet);
        st.forecast_history_minutes = held;
        st.forecast_fits = fits;
        st.forecast_status = Some(status);
        st.forecast_weights = weights;
        st.forecast_interval_coverage = coverage;
        forecast
    }

    /// Where the fleet's demand history stands, for tests and `/api/state`.
    pub fn predictor(&self, fleet: &str) -> Option<&Predictor> {
        self.predictors.get(fleet)
    }
}
/// The fleet with these pools' `unit_usd_per_hour` replaced.
fn with_unit_prices(fleet: &Fleet, prices: &BTreeMap<String, f64>) -> Fleet {
    let mut f = fleet.clone();
    for p in &mut f.pools {
        if let Some(price) = prices.get(&p.name) {
            p.unit_usd_per_hour = Some(*price);
        }
    }
    f
}

/// Per pool: market, desired, in-service and pending units.
fn observed_pools(fleet: &Fleet, snap: &crate::model::Snapshot) -> BTreeMap<String, PoolStatus> {
    use crate::model::LifecycleState;
    fleet
        .pools
        .iter()
        .map(|p| {
            let units = |state| {
                snap.instances
                    .iter()
                    .filter(|i| i.pool == p.name && i.state == state)
                    .map(|i| i.weight_units)
                    .sum()
            };
            let status = PoolStatus {
                market: p.market.to_string(),
                desired_units: snap.pool_desired_units.get(&p.name).copied().unwrap_or(0),
                in_service_units: units(LifecycleState::InService),
                pending_units: units(LifecycleState::Pending),
            };
            (p.name.clone(), status)
        })
        .collect()
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_lease_margin_covers_an_actuation_in_flight() {
        assert!(crate::lease::MARGIN_SECS >= CALL_TIMEOUT.as_secs_f64() + 2.0);
    }
    use super::*;

    #[test]
    fn exports_once_per_aligned_period() {
        let t = Timestamp::from_secs;
        // (last publish, now, period, due)
        let cases = [
            (None, 0, 60, true),
            (Some(0), 15, 60, false),
            (Some(0), 59, 60, false),
            (Some(0), 60, 60, true),
            (Some(45), 61, 60, true), // a new minute, though only 16 s later
            (Some(61), 119, 60, false), // same minute as the last
            (Some(0), 10, 10, true),
            (Some(100), 100, 10, false), // never twice in one tick
            (Some(600), 60, 60, true),   // the clock stepped back: publish, do not wait
        ];
        for (last, now, period, due) in cases {
            assert_eq!(
                export_due(last.map(t), t(now), period),
                due,
                "last {last:?}, now {now}, period {period}"
            );
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        assert_eq!(backoff_ticks(0, 5, false), 0);
        for tick in 0..50 {
            let b1 = backoff_ticks(1, tick, false);
            let b4 = backoff_ticks(4, tick, false);
            let b9 = backoff_ticks(9, tick, false);
            assert!((1..=1).contains(&b1), "{b1}");
            assert!((6..=10).contains(&b4), "{b4}");
            assert!((24..=40).contains(&b9), "{b9}");
            assert!(backoff_ticks(3, tick, true) >= backoff_ticks(3, tick, false));
        }
    }
}
