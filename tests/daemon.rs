//! The control loop against the simulated cloud, with tokio's time paused: it decides and
//! applies, applies only changes, persists and resumes state without a scale-down, keeps the
//! running policy on a broken reload, changes nothing in dry-run, and backs off on provider
//! failures without acting twice.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use llm_autoscaler::config::{self, Config, Fleet, Pool};
use llm_autoscaler::daemon::{Clock, Daemon, Options, Published};
use llm_autoscaler::engine::{Action, ConditionType, Reason};
use llm_autoscaler::model::{Snapshot, Timestamp, Units};
use llm_autoscaler::provider::sim::SimProvider;
use llm_autoscaler::provider::{Provider, ProviderError};
use llm_autoscaler::sim::{perf, scenario, traffic::Traffic};
use llm_autoscaler::store::StateStore;
use tokio::sync::{mpsc, watch};

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "llm-autoscaler-daemon-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn demo(dir: &Path) -> (Config, PathBuf) {
    let text = std::fs::read_to_string("config/demo.toml")
        .unwrap()
        .replace(
            "state_dir = \"./state\"",
            &format!("state_dir = \"{}\"", dir.display()),
        );
    let path = dir.join("policy.toml");
    std::fs::write(&path, &text).unwrap();
    (config::load(&path).unwrap(), path)
}

fn provider(name: &str) -> (SimProvider, Timestamp) {
    let s = scenario::builtin(name, 1).unwrap();
    let traffic = Traffic {
        source: s.source,
        scale: 1.0,
        seed: 1,
        duration_secs: s.duration_secs,
    };
    (
        SimProvider::new(traffic, s.spot, perf::builtin(), "8b", s.epoch, 15.0),
        s.epoch,
    )
}

fn opts(path: &Path, epoch: Timestamp, dry_run: bool) -> Options {
    Options {
        config_path: path.to_path_buf(),
        interval: Duration::from_secs(15),
        clock: Clock::Virtual {
            epoch,
            tick_secs: 15.0,
        },
        call_timeout: Duration::from_secs(10),
        dry_run,
        price_profiles: perf::builtin(),
    }
}

fn daemon<P: Provider>(
    cfg: Config,
    p: P,
    path: &Path,
    epoch: Timestamp,
    dry_run: bool,
) -> (Daemon<P>, watch::Receiver<Arc<Published>>) {
    let (tx, rx) = watch::channel(Arc::new(Published::default()));
    let store = StateStore::open(&cfg.global.state_dir).unwrap();
    (
        Daemon::new(cfg, p, store, opts(path, epoch, dry_run), tx).unwrap(),
        rx,
    )
}

/// The daemon started again as a new process: the same cloud and state directory, its clock
/// `after_secs` past `epoch`.
fn restart(
    cfg: Config,
    provider: SimProvider,
    dir: &Path,
    path: &Path,
    epoch: Timestamp,
    after_secs: f64,
) -> (Daemon<SimProvider>, watch::Receiver<Arc<Published>>) {
    let (tx, rx) = watch::channel(Arc::new(Published::default()));
    let store = StateStore::open(dir).unwrap();
    let mut o = opts(path, epoch, false);
    o.clock = Clock::Virtual {
        epoch: epoch.plus_secs(after_secs),
        tick_secs: 15.0,
    };
    (Daemon::new(cfg, provider, store, o, tx).unwrap(), rx)
}

#[tokio::test(start_paused = true)]
async fn the_loop_follows_a_spike_applies_only_changes_and_stops_on_request() {
    let dir = tmpdir("spike");
    let (cfg, path) = demo(&dir);
    let (p, epoch) = provider("traffic-spike");
    let (mut d, rx) = daemon(cfg, p, &path, epoch, false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (_reload_tx, reload_rx) = mpsc::channel(1);
    // 30 virtual minutes at 15 s ticks: the spike starts at minute 20.
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(30 * 60)).await;
        stop_tx.send(true).unwrap();
    });
    d.run(stop_rx, reload_rx).await;
    stopper.await.unwrap();
    let published = rx.borrow().clone();
    assert!(
        (119..=121).contains(&published.ticks),
        "{}",
        published.ticks
    );
    let f = &published.fleets["demo-llama-8b"];
    let d_last = f.decision.as_ref().unwrap();
    assert!(
        d_last.desired_units >= 15,
        "followed the spike: {}",
        d_last.summary
    );
    let ups = f.decisions_total.get("scale_up").copied().unwrap_or(0);
    let downs = f.decisions_total.get("scale_down").copied().unwrap_or(0);
    assert!(ups >= 1);
    // One call per pool whose desired capacity changed — never for unchanged pools.
    assert!(
        f.set_desired_total <= 2 * (ups + downs),
        "{} calls for {} changes",
        f.set_desired_total,
        ups + downs
    );
    assert_eq!(d.provider().set_desired_calls, f.set_desired_total);
    // A second daemon on the same state directory is refused while this one runs …
    let second = StateStore::open(&dir)
        .err()
        .expect("a second store on a held directory");
    assert!(
        matches!(second, llm_autoscaler::store::StoreError::Locked { .. }),
        "{second}"
    );
    assert!(second.to_string().contains("state_dir"), "{second}");
    drop(d);
    // … and once it has stopped, its state and decisions are there.
    let store = StateStore::open(&dir).unwrap();
    assert!(store.load("demo-llama-8b").unwrap().is_some());
    assert_eq!(store.recent("demo-llama-8b", 5).unwrap().len(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_restart_mid_surge_resumes_state_and_does_not_scale_down() {
    let dir = tmpdir("restart");
    let (cfg, path) = demo(&dir);
    let (p, epoch) = provider("sudden-drop");
    let (mut d, _rx) = daemon(cfg.clone(), p, &path, epoch, false);
    // Up to just after the drop (minute 31): capacity is high, load has just fallen.
    for _ in 0..(31 * 4) {
        d.tick().await;
    }
    let before = d.published().fleets["demo-llama-8b"]
        .decision
        .clone()
        .unwrap();
    let started = d.state("demo-llama-8b").unwrap().started_at;
    let view = |d: &Daemon<SimProvider>| {
        d.published().history.read().unwrap()["demo-llama-8b"].view("demo-llama-8b", Timestamp(0))
    };
    let history_before = view(&d);
    assert_eq!(history_before.points.len(), 31, "a point a minute");
    let provider = d.into_provider();
    // A new process: same cloud, same state directory.
    let (mut d2, _rx) = restart(cfg, provider, &dir, &path, epoch, 31.0 * 60.0);
    assert_eq!(
        d2.state("demo-llama-8b").unwrap().started_at,
        started,
        "resumed, not fresh"
    );
    // The dashboard's history is read back from the decision log: the same minutes, TTFT
    // included (each decision carries the latency it saw).
    let history_after = view(&d2);
    assert_eq!(history_after.points.len(), history_before.points.len());
    assert_eq!(history_after.changes, history_before.changes);
    for (a, b) in history_after.points.iter().zip(&history_before.points) {
        assert_eq!(
            (a.at, a.desired_units, a.spot_units, a.ttft_p95_secs),
            (b.at, b.desired_units, b.spot_units, b.ttft_p95_secs)
        );
    }
    assert!(
        history_after
            .points
            .iter()
            .filter(|p| p.ttft_p95_secs.is_some())
            .count()
            >= 25,
        "TTFT measured in most minutes and read back"
    );
    d2.tick().await;
    let after = d2.published().fleets["demo-llama-8b"]
        .decision
        .clone()
        .unwrap();
    assert_ne!(after.action, Action::ScaleDown, "{}", after.summary);
    assert!(after.desired_units >= before.desired_units.min(after.current_units));
    assert!(
        !after.has(Reason::NoHistory),
        "the engine did not start over: {}",
        after.summary
    );
}

#[tokio::test(start_paused = true)]
async fn reload_keeps_the_running_policy_when_the_file_is_broken() {
    let dir = tmpdir("reload");
    let (cfg, path) = demo(&dir);
    let (p, epoch) = provider("gradual-growth");
    let (mut d, _rx) = daemon(cfg, p, &path, epoch, false);
    std::fs::write(
        &path,
        "[[fleets]]\nname = \"x\"\nmin_units = 9\nmax_units = 3\n",
    )
    .unwrap();
    d.reload();
    assert_eq!(d.config().fleets[0].name, "demo-llama-8b");
    assert_eq!(d.published().reload_failures_total, 1);
    let fixed = std::fs::read_to_string("config/demo.toml")
        .unwrap()
        .replace("max_units = 30", "max_units = 12")
        .replace(
            "state_dir = \"./state\"",
            &format!("state_dir = \"{}\"", dir.display()),
        );
    std::fs::write(&path, fixed).unwrap();
    d.reload();
    assert_eq!(d.config().fleets[0].max_units, 12);
    assert_eq!(d.published().reloads_total, 1);
    d.tick().await;
    assert!(
        d.published().fleets["demo-llama-8b"]
            .decision
            .as_ref()
            .unwrap()
            .desired_units
            <= 12
    );
}

#[tokio::test(start_paused = true)]
async fn dry_run_changes_nothing() {
    let dir = tmpdir("dry");
    let (cfg, path) = demo(&dir);
    let (p, epoch) = provider("traffic-spike");
    let (mut d, _rx) = daemon(cfg, p, &path, epoch, true);
    for _ in 0..(30 * 4) {
        d.tick().await;
    }
    let f = &d.published().fleets["demo-llama-8b"];
    assert_eq!(d.provider().set_desired_calls, 0);
    assert_eq!(f.set_desired_total, 0);
    assert!(!f.applied);
    let dec = f.decision.as_ref().unwrap();
    assert!(
        dec.desired_units > dec.current_units,
        "it would scale up: {}",
        dec.summary
    );
    assert!(
        d.state("demo-llama-8b").unwrap().scale_up_events.is_empty(),
        "no scale event recorded for changes not made"
    );
}

/// Fails calls on demand: `snapshot` for the first `fail_snapshots` calls (throttled),
/// `set_desired` once after a success, and the next `slow_sets` sets answer an hour late —
/// applied by the cloud all the same — or, with `late_error`, answer a transient error (the
/// SDK's own operation timeout) after the cloud applied them.
struct Faulty {
    inner: SimProvider,
    fail_snapshots: u32,
    snapshot_calls: u32,
    fail_next_set: bool,
    set_calls_ok: u32,
    slow_sets: u32,
    late_error: bool,
}

impl Faulty {
    /// `inner` with no fault yet.
    fn over(inner: SimProvider) -> Self {
        Faulty {
            inner,
            fail_snapshots: 0,
            snapshot_calls: 0,
            fail_next_set: false,
            set_calls_ok: 0,
            slow_sets: 0,
            late_error: false,
        }
    }
}

/// A daemon over `p` on `dir`'s state, its virtual clock starting 20 minutes into
/// traffic-spike (`epoch` its start): into the spike, whose first change is a scale-up.
fn into_the_spike<P: Provider>(
    cfg: Config,
    p: P,
    dir: &Path,
    path: &Path,
    epoch: Timestamp,
) -> Daemon<P> {
    let (tx, _rx) = watch::channel(Arc::new(Published::default()));
    let mut o = opts(path, epoch, false);
    o.clock = Clock::Virtual {
        epoch: epoch.plus_secs(20.0 * 60.0),
        tick_secs: 15.0,
    };
    Daemon::new(cfg, p, StateStore::open(dir).unwrap(), o, tx).unwrap()
}

impl Provider for Faulty {
    async fn snapshot(&mut self, fleet: &Fleet, now: Timestamp) -> Result<Snapshot, ProviderError> {
        self.snapshot_calls += 1;
        if self.snapshot_calls <= self.fail_snapshots {
            return Err(ProviderError::Throttled("Rate exceeded".into()));
        }
        self.inner.snapshot(fleet, now).await
    }

    async fn set_desired(
        &mut self,
        fleet: &Fleet,
        pool: &Pool,
        units: Units,
    ) -> Result<(), ProviderError> {
        if self.fail_next_set {
            self.fail_next_set = false;
            return Err(ProviderError::Transient("HTTP 503".into()));
        }
        self.set_calls_ok += 1;
        let r = self.inner.set_desired(fleet, pool, units).await;
        if self.slow_sets > 0 {
            self.slow_sets -= 1;
            if self.late_error {
                return Err(ProviderError::Transient("operation timeout (10 s)".into()));
            }
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        r
    }

    async fn holds_desired(
        &mut self,
        fleet: &Fleet,
        pool: &Pool,
        units: Units,
    ) -> Result<bool, ProviderError> {
        self.inner.holds_desired(fleet, pool, units).await
    }
}

/// A set that ends without an answer may have landed: the daemon reads the group back, and one
/// that holds what was asked is applied — counted once, its scale event recorded (the rate
/// limits count the step), no error — rather than a failure whose step the next ticks would
/// not know was taken. Without an answer: past the daemon's own timeout, or a transient error
/// at the SDK's (the same limit).
#[tokio::test(start_paused = true)]
async fn a_set_that_times_out_but_landed_is_read_back_and_counted_as_applied() {
    for (case, late_error) in [("the daemon's timeout", false), ("the SDK's timeout", true)] {
        let dir = tmpdir(if late_error { "late-error" } else { "slow-set" });
        let (cfg, path) = demo(&dir);
        let (p, epoch) = provider("traffic-spike");
        let faulty = Faulty {
            slow_sets: 1,
            late_error,
            ..Faulty::over(p)
        };
        let mut d = into_the_spike(cfg, faulty, &dir, &path, epoch);
        for _ in 0..40 {
            d.tick().await;
            if d.provider().slow_sets == 0 {
                break;
            }
        }
        assert_eq!(d.provider().slow_sets, 0, "{case}: a set was made");
        let f = &d.published().fleets["demo-llama-8b"];
        assert_eq!(
            f.provider_errors_total.get("transient"),
            None,
            "{case}: {f:?}"
        );
        assert!(f.applied, "{case}: the tick's plan went through");
        assert_eq!(
            d.provider().inner.set_desired_calls,
            f.set_desired_total,
            "{case}"
        );
        let st = d.state("demo-llama-8b").unwrap();
        assert!(
            !st.scale_up_events.is_empty(),
            "{case}: the landed step is a scale event"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn throttling_backs_off_and_a_failed_apply_is_retried_once_not_doubled() {
    let dir = tmpdir("faults");
    let (cfg, path) = demo(&dir);
    let (p, epoch) = provider("traffic-spike");
    let faulty = Faulty {
        fail_snapshots: 4,
        ..Faulty::over(p)
    };
    let (mut d, _rx) = daemon(cfg, faulty, &path, epoch, false);
    for _ in 0..20 {
        d.tick().await;
    }
    let f = d.published().fleets["demo-llama-8b"].clone();
    assert_eq!(f.provider_errors_total.get("throttled"), Some(&4));
    assert!(f.backoff_skips_total >= 4, "backed off: {f:?}");
    assert!(
        d.provider().snapshot_calls < 20,
        "skipped ticks made no calls"
    );

    // Into the spike; the first apply fails with a 5xx.
    let mut faulty = d.into_provider();
    faulty.fail_next_set = true;
    let (cfg, path) = demo(&dir);
    let mut d = into_the_spike(cfg, faulty, &dir, &path, epoch);
    let mut failed_once = false;
    for _ in 0..40 {
        d.tick().await;
        let f = &d.published().fleets["demo-llama-8b"];
        failed_once |= f.provider_errors_total.get("transient") == Some(&1);
    }
    assert!(failed_once);
    let f = &d.published().fleets["demo-llama-8b"];
    // Every successful call changed a pool; none repeated a value already set.
    assert_eq!(d.provider().set_calls_ok as u64, f.set_desired_total);
    assert_eq!(d.provider().inner.set_desired_calls, f.set_desired_total);
    let world = d.provider().inner.world("demo-llama-8b").unwrap();
    let total: u32 = world.pools.iter().map(|p| p.desired_units).sum();
    assert_eq!(
        total,
        f.decision.as_ref().unwrap().desired_units,
        "the cloud has what was decided"
    );
}

#[tokio::test(start_paused = true)]
async fn on_the_simulated_cloud_the_daemon_forecasts_from_backfilled_history() {
    let dir = tmpdir("predictive");
    let (cfg, path) = demo(&dir);
    assert!(
        cfg.fleets[0].predictive.is_some(),
        "the demo policy forecasts"
    );
    let s = scenario::builtin("periodic", 1).unwrap();
    let history = s.history.clone();
    let (p, epoch) = provider("periodic");
    let (mut d, _rx) = daemon(cfg, p.with_history(history.clone()), &path, epoch, false);
    // The demand one unit serves is learned once the servers' rates have settled (two
    // minutes), then a few minutes more.
    for _ in 0..24 {
        d.tick().await;
    }
    let p = d.predictor("demo-llama-8b").expect("a predictor");
    // 14 days backfilled (the demo keeps 14) plus the run's settled minutes.
    assert!(p.len() >= 14 * 1440, "{} minutes", p.len());
    let f = &d.published().fleets["demo-llama-8b"];
    assert_eq!(f.forecast_fits, 1, "one fit, then every refit_mins");
    let decision = f.decision.as_ref().unwrap();
    let step = decision.predictive.as_ref().expect("a predictive step");
    let floor = step.floor_units.expect("a floor");
    // Midnight, 30 % of a 30 req/s peak: ~540 requests a minute; at the demand per unit
    // learned from the fleet's own servers, 5–10 g6.xlarge.
    assert!(step.demand_per_unit.is_some(), "learned: {step:?}");
    assert!(
        (5..=10).contains(&floor),
        "floor {floor}: {}",
        decision.summary
    );
    assert!(
        !step.applied || decision.desired_units >= floor.min(30),
        "{}",
        decision.summary
    );
    assert!(decision.condition(ConditionType::Predictive).is_some());
    // Pools are priced from the profiles: the ledger runs and /metrics shows it.
    let spend = decision.spend.as_ref().expect("a ledger");
    assert!(
        spend.rate_usd_per_hour > 0.0 && spend.month_usd > 0.0,
        "{spend:?}"
    );
    let metrics = llm_autoscaler::telemetry::render_metrics(d.published());
    let line = metrics
        .lines()
        .find(|l| l.starts_with("llm_autoscaler_spend_month_by_pool_usd{fleet=\"demo-llama-8b\",pool=\"spot\",market=\"spot\"}"))
        .expect("per-pool spend");
    assert!(
        line.rsplit(' ').next().unwrap().parse::<f64>().unwrap() > 0.0,
        "{line}"
    );
    // The capacity model's learned values are published for the dashboard, within their
    // bounds: the correction in 0.5..=1, the queue's tail factor in 1..=4.
    let gauge = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("llm_autoscaler_{name}{{fleet=\"demo-llama-8b\"}}")))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} is not published:\n{metrics}"))
    };
    let correction = gauge("capacity_correction_ratio");
    assert!((0.5..=1.0).contains(&correction), "correction {correction}");
    let queue_factor = gauge("capacity_queue_factor_ratio");
    assert!(
        (1.0..=4.0).contains(&queue_factor),
        "queue factor {queue_factor}"
    );
    assert!(gauge("capacity_served_busy_units") >= 0.0);
    // The simulated servers run at their profile's speed, and are read so.
    let speed = gauge("capacity_measured_speed_ratio");
    assert!((0.9..=1.1).contains(&speed), "measured speed {speed}");
    // The ensemble warmed up on the backfilled history: weights per model and horizon sum to
    // one, and the interval's realised coverage is published.
    let weights: Vec<f64> = metrics
        .lines()
        .filter(|l| {
            l.starts_with("llm_autoscaler_forecast_model_weight{fleet=\"demo-llama-8b\"")
                && l.contains("horizon=\"30+\"")
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .collect();
    assert_eq!(weights.len(), 6, "{metrics}");
    assert!(
        (weights.iter().sum::<f64>() - 1.0).abs() < 1e-6,
        "{weights:?}"
    );
    let coverage = metrics
        .lines()
        .find(|l| l.starts_with("llm_autoscaler_forecast_interval_coverage_ratio{"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .expect("coverage published");
    assert!((0.5..=1.0).contains(&coverage), "{coverage}");
}

/// One truth: the daemon on the simulated cloud and `simulate` run the same fleet controller
/// on the same traffic, so they set the same pool targets at every tick — spot fallback, burst
/// cover and warm pools included (the example policy on traffic-spike and spot-shortage).
#[tokio::test(start_paused = true)]
async fn the_daemon_and_simulate_set_the_same_pool_targets_tick_by_tick() {
    for name in ["traffic-spike", "spot-shortage"] {
        let dir = tmpdir(&format!("same-{name}"));
        let text = std::fs::read_to_string("config/example.toml")
            .unwrap()
            .replace("provider = \"aws\"", "provider = \"sim\"")
            .replace(
                "state_dir = \"/var/lib/llm-autoscaler\"",
                &format!("state_dir = \"{}\"", dir.display()),
            );
        let path = dir.join("policy.toml");
        std::fs::write(&path, &text).unwrap();
        let mut cfg = config::load(&path).unwrap();
        llm_autoscaler::cost::prices::fill_unit_prices(&mut cfg, &perf::builtin()).unwrap();
        let fleet = cfg.fleets[0].clone();
        let minutes = 60.0;

        let s = scenario::builtin(name, 1).unwrap();
        let traffic = Traffic {
            source: s.source.clone(),
            scale: 1.0,
            seed: 1,
            duration_secs: minutes * 60.0,
        };
        let mut setup = llm_autoscaler::sim::SimSetup::new(
            name,
            traffic.clone(),
            s.spot.clone(),
            s.epoch,
            fleet.clone(),
            "example",
        );
        setup.baselines = false;
        setup.record_decisions = true;
        let outcome = llm_autoscaler::sim::simulate(setup, &mut |_| {}).unwrap();
        let targets = |d: &serde_json::Value| -> Vec<(String, u64)> {
            d["pools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p["pool"].as_str().unwrap().to_string(),
                        p["desired_units"].as_u64().unwrap(),
                    )
                })
                .collect()
        };
        let simulated: Vec<Vec<(String, u64)>> = outcome
            .decisions
            .iter()
            .map(|l| targets(&serde_json::from_str(l).unwrap()))
            .collect();

        let p = SimProvider::new(traffic, s.spot, perf::builtin(), "8b", s.epoch, 15.0);
        let (mut d, _rx) = daemon(cfg, p, &path, s.epoch, false);
        let mut daemon_targets = Vec::new();
        let mut daemon_decisions = Vec::new();
        for _ in 0..simulated.len() {
            d.tick().await;
            let decision = d.published().fleets[&fleet.name].decision.clone().unwrap();
            let v = serde_json::to_value(&decision).unwrap();
            daemon_targets.push(targets(&v));
            daemon_decisions.push(v);
        }
        assert_eq!(simulated.len(), (minutes * 4.0) as usize);
        let changes = simulated.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(
            changes >= 5,
            "{name}: the run should move the pools ({changes} changes)"
        );
        for (tick, (sim, dae)) in simulated.iter().zip(&daemon_targets).enumerate() {
            assert_eq!(
                sim, dae,
                "{name}: tick {tick} differs\nsimulate: {}\ndaemon:   {}",
                outcome.decisions[tick], daemon_decisions[tick]
            );
        }
    }
}

/// Every pool change is logged at INFO with its fleet (the tick's span), pool, from → to and
/// reason — one line per `SetDesiredCapacity`, fallback covers and their return included.
#[tokio::test(start_paused = true)]
async fn every_pool_change_is_logged_with_its_reason() {
    use std::sync::Mutex;
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // The other tests of this binary run the same `info!` sites on other threads with no
    // subscriber; a site they registered while this one was being set is cached as never
    // enabled (tracing's per-site interest): recompute it with this subscriber in place.
    tracing::callsite::rebuild_interest_cache();

    let dir = tmpdir("logged");
    let (cfg, path) = demo(&dir);
    let (p, epoch) = provider("traffic-spike");
    let (mut d, _rx) = daemon(cfg, p, &path, epoch, false);
    for _ in 0..(40 * 4) {
        d.tick().await;
    }
    let calls = d.published().fleets["demo-llama-8b"].set_desired_total;
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let changes: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" INFO ") && l.contains(" units (") && l.contains(": pool "))
        .collect();
    assert!(calls >= 4, "the spike should move the pools: {calls}");
    assert_eq!(
        changes.len() as u64,
        calls,
        "one line per change:\n{}",
        changes.join("\n")
    );
    for line in &changes {
        assert!(line.contains("fleet=demo-llama-8b"), "{line}");
        assert!(line.contains(" → "), "{line}");
        let reason = line
            .rsplit_once(" units (")
            .unwrap()
            .1
            .trim_end_matches(')');
        assert!(
            Reason::ALL
                .iter()
                .any(|r| r.as_str() == reason.split(')').next().unwrap()),
            "not a reason: {reason} in {line}"
        );
    }
}

/// A database that cannot be opened for writing (here a directory where the file should be,
/// which fails for root too): the daemon runs on memory, and `/healthz` says so after
/// `unhealthy_after_ticks` ticks.
#[tokio::test(start_paused = true)]
async fn an_unwritable_database_keeps_scaling_in_memory_and_turns_healthz_red() {
    let dir = tmpdir("unwritable");
    std::fs::create_dir_all(dir.join("state.db")).unwrap();
    let (cfg, path) = demo(&dir);
    let (p, epoch) = provider("traffic-spike");
    let limit = cfg.global.unhealthy_after_ticks;
    let (mut d, _rx) = daemon(cfg, p, &path, epoch, false);
    let mut desired = Vec::new();
    for _ in 0..(limit + 40) {
        d.tick().await;
        let f = &d.published().fleets["demo-llama-8b"];
        desired.push(f.decision.as_ref().unwrap().desired_units);
    }
    // It scales (the spike takes the fleet up) though nothing is persisted.
    assert!(desired.iter().max() > desired.first(), "{desired:?}");
    let p = d.published();
    assert!(p.persistence.in_memory);
    assert!(p.persistence.failing_ticks >= limit);
    let why = llm_autoscaler::http::unhealthy_reason(p).expect("unhealthy");
    assert!(why.contains("not persisted"), "{why}");
    let metrics = llm_autoscaler::telemetry::render_metrics(p);
    assert!(
        metrics.contains("llm_autoscaler_state_in_memory 1"),
        "{metrics}"
    );
}

/// An HA pair on the simulated cloud, one shared lease, time paused: each round both daemons
/// tick and the clock moves one tick. Returns, per round, how many `SetDesiredCapacity` calls
/// each daemon made.
struct Pair {
    a: Daemon<SimProvider>,
    b: Daemon<SimProvider>,
}

impl Pair {
    fn new(tag: &str) -> Self {
        let lease = llm_autoscaler::provider::SharedLease::default();
        let one = |holder: &str| {
            let dir = tmpdir(&format!("ha-{tag}-{holder}"));
            let (_, path) = demo(&dir);
            let text = std::fs::read_to_string(&path).unwrap()
                + &format!(
                    "\n[global.ha]\ntable = \"t\"\nholder = \"{holder}\"\nlease_secs = 30\n"
                );
            std::fs::write(&path, &text).unwrap();
            let cfg = config::load(&path).unwrap();
            let (p, epoch) = provider("traffic-spike");
            daemon(cfg, p.with_lease(lease.clone()), &path, epoch, false).0
        };
        Pair {
            a: one("a"),
            b: one("b"),
        }
    }

    /// One round; `(a's calls, b's calls)` in it. `a_alive`: whether a ticks at all.
    async fn round(&mut self, a_alive: bool) -> (u64, u64) {
        let (a0, b0) = (
            self.a.provider().set_desired_calls,
            self.b.provider().set_desired_calls,
        );
        if a_alive {
            self.a.tick().await;
        }
        self.b.tick().await;
        tokio::time::advance(Duration::from_secs(15)).await;
        (
            self.a.provider().set_desired_calls - a0,
            self.b.provider().set_desired_calls - b0,
        )
    }

    fn leads(d: &Daemon<SimProvider>) -> bool {
        d.published().ha.as_ref().unwrap().role == llm_autoscaler::lease::Role::Leader
    }
}

#[tokio::test(start_paused = true)]
async fn an_ha_pair_has_one_actuating_leader_and_hands_over_within_a_lease_and_a_tick() {
    let mut pair = Pair::new("kill");
    let mut a_calls = 0;
    for round in 0..60 {
        let (a, b) = pair.round(true).await;
        assert_eq!(b, 0, "round {round}: the follower actuated");
        a_calls += a;
        assert!(
            Pair::leads(&pair.a) && !Pair::leads(&pair.b),
            "round {round}"
        );
    }
    assert!(a_calls > 0, "the leader never actuated");
    let ha = pair.a.published().ha.clone().unwrap();
    assert_eq!((ha.token, ha.holder.as_str()), (Some(1), "a"));
    // a dies. b takes over within lease_secs + one tick of a's last renewal.
    let (mut rounds, mut b_calls) = (0, 0);
    while !Pair::leads(&pair.b) {
        let (_, b) = pair.round(false).await;
        // b acts from the tick it takes the lease in, never before.
        assert!(b == 0 || Pair::leads(&pair.b));
        b_calls += b;
        rounds += 1;
        assert!(rounds * 15 <= 30 + 15, "no takeover after {rounds} ticks");
    }
    eprintln!("takeover after {} s (lease 30 s, tick 15 s)", rounds * 15);
    let ha = pair.b.published().ha.clone().unwrap();
    assert_eq!(ha.token, Some(2));
    // b now actuates: its simulated fleet, never steered so far, is brought to its decision.
    for _ in 0..10 {
        b_calls += pair.round(false).await.1;
    }
    assert!(b_calls > 0);
    let metrics = llm_autoscaler::telemetry::render_metrics(pair.b.published());
    let b = "lease=\"llm-autoscaler\",holder=\"b\"";
    assert!(
        metrics.contains(&format!("llm_autoscaler_ha_leader{{{b}}} 1")),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("llm_autoscaler_ha_lease_token{{{b}}} 2")),
        "{metrics}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_partitioned_leader_stops_actuating_before_the_follower_starts() {
    let mut pair = Pair::new("partition");
    for _ in 0..20 {
        pair.round(true).await;
    }
    assert!(Pair::leads(&pair.a));
    // a can no longer reach the lease, but still reaches its fleet and keeps ticking.
    pair.a.provider_mut().lease_reachable = false;
    let (mut both, mut a_after, mut handed_over) = (0, 0, None);
    for round in 0..40 {
        let (a, b) = pair.round(true).await;
        both += u64::from(a > 0 && b > 0);
        if Pair::leads(&pair.a) && Pair::leads(&pair.b) {
            panic!("round {round}: two leaders");
        }
        if !Pair::leads(&pair.a) {
            a_after += a;
        }
        if Pair::leads(&pair.b) && handed_over.is_none() {
            handed_over = Some(round);
        }
    }
    assert_eq!(both, 0, "ticks in which both actuated");
    assert_eq!(a_after, 0, "a actuated after losing its right");
    let round = handed_over.expect("b takes over");
    assert!(
        (round + 1) * 15 <= 30 + 15,
        "takeover after {} ticks",
        round + 1
    );
    assert!(pair.a.published().ha.as_ref().unwrap().lease_errors_total > 0);
}

/// The demo run twice (the same state directory, the virtual clock restarting at the
/// scenario's start): the second run holds the same capacity at the same virtual time — the
/// first run's state is from its future, so it is not resumed.
#[tokio::test(start_paused = true)]
async fn a_simulated_run_restarted_at_its_start_decides_as_the_first_did() {
    let dir = tmpdir("demo-twice");
    let (cfg, path) = demo(&dir);
    let run = |cfg: Config| {
        let path = path.clone();
        async move {
            let (p, epoch) = provider("periodic");
            let (mut d, _rx) = daemon(cfg, p, &path, epoch, false);
            let mut desired = Vec::new();
            for _ in 0..120 {
                d.tick().await;
                let f = &d.published().fleets["demo-llama-8b"];
                desired.push(f.decision.as_ref().unwrap().desired_units);
            }
            desired
        }
    };
    let first = run(cfg.clone()).await;
    let second = run(cfg).await;
    assert_eq!(first, second);
}

/// The demo run twice on the same state directory: the simulated clock starts over, and the
/// second run holds the same capacity at the same virtual time as the first — a state saved
/// later than the clock (the first run's) is not resumed as if it were the past.
#[tokio::test(start_paused = true)]
async fn the_demo_run_twice_holds_the_same_capacity_at_the_same_virtual_time() {
    let dir = tmpdir("twice");
    let (cfg, path) = demo(&dir);
    let mut runs = Vec::new();
    for _ in 0..2 {
        let (p, epoch) = provider("periodic");
        let (mut d, _rx) = daemon(cfg.clone(), p, &path, epoch, false);
        let mut desired = Vec::new();
        // An hour of virtual time.
        for _ in 0..240 {
            d.tick().await;
            desired.push(
                d.published().fleets["demo-llama-8b"]
                    .decision
                    .as_ref()
                    .map(|x| x.desired_units),
            );
        }
        runs.push(desired);
    }
    assert!(runs[0].iter().flatten().any(|&u| u > 0));
    assert_eq!(runs[0], runs[1]);
}

/// A saved state this build will not resume — written by a newer build — is kept aside, not
/// overwritten by the fresh fleet's first save: rolling back to the build that wrote it finds
/// it in `engine_state_set_aside`.
#[tokio::test(start_paused = true)]
async fn a_state_from_a_newer_build_is_set_aside_not_overwritten() {
    let dir = tmpdir("newer-state");
    let (cfg, path) = demo(&dir);
    let (p, epoch) = provider("traffic-spike");
    let (mut d, _rx) = daemon(cfg.clone(), p, &path, epoch, false);
    for _ in 0..4 {
        d.tick().await;
    }
    let provider = d.into_provider();
    // A newer build wrote its state over ours.
    let newer = r#"{"version": 99, "from": "a newer build"}"#;
    let db = rusqlite::Connection::open(dir.join("state.db")).unwrap();
    db.execute(
        "UPDATE engine_state SET state = ?1 WHERE fleet = 'demo-llama-8b'",
        [newer],
    )
    .unwrap();
    drop(db);
    let (mut d2, _rx) = restart(cfg, provider, &dir, &path, epoch, 60.0);
    d2.tick().await;
    let fresh = d2.state("demo-llama-8b").unwrap().version;
    drop(d2);
    let db = rusqlite::Connection::open(dir.join("state.db")).unwrap();
    let saved: String = db
        .query_row(
            "SELECT state FROM engine_state WHERE fleet = 'demo-llama-8b'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(saved.contains(&format!("\"version\":{fresh}")), "{saved}");
    let (kept, reason): (String, String) = db
        .query_row(
            "SELECT state, reason FROM engine_state_set_aside WHERE fleet = 'demo-llama-8b'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(kept, newer);
    assert!(reason.contains("version 99"), "{reason}");
}

/// The hourly integrity check moves a damaged database aside and the daemon goes on with a
/// fresh one: what it holds in memory is saved again — the engine state at its next save, and
/// the fleet's demand history at once (only new minutes are appended after that, so a restart
/// would otherwise find days of backfilled history gone and not fetch them again).
#[tokio::test(start_paused = true)]
async fn a_database_damaged_while_running_is_rebuilt_with_the_demand_history() {
    let dir = tmpdir("damaged-running");
    let (cfg, path) = demo(&dir);
    let s = scenario::builtin("periodic", 1).unwrap();
    let (p, epoch) = provider("periodic");
    let (mut d, _rx) = daemon(
        cfg.clone(),
        p.with_history(s.history.clone()),
        &path,
        epoch,
        false,
    );
    for _ in 0..4 {
        d.tick().await;
    }
    // Restarted (the history now in the database file, not its write-ahead log), it loads
    // the history back.
    let provider = d.into_provider();
    let (mut d, _rx) = restart(cfg, provider, &dir, &path, epoch, 60.0);
    d.tick().await;
    let held = d.predictor("demo-llama-8b").expect("a predictor").len();
    assert!(held > 13 * 1440, "{held} minutes");
    // Damage written under the running daemon (a failing disk, another process).
    let db = dir.join("state.db");
    let mut bytes = std::fs::read(&db).unwrap();
    let len = bytes.len();
    for b in bytes.iter_mut().skip(4096 + 8).take(len / 2) {
        *b = 0xFF;
    }
    std::fs::write(&db, bytes).unwrap();
    let mut ticks = 0;
    while d.published().persistence.recoveries_total == 0 && ticks < 300 {
        d.tick().await;
        ticks += 1;
    }
    assert_eq!(
        d.published().persistence.recoveries_total,
        1,
        "after {ticks} ticks"
    );
    d.tick().await;
    drop(d);
    let store = StateStore::open(&dir).unwrap();
    let saved = store.load_demand("demo-llama-8b", 0).unwrap().len();
    assert!(saved >= held, "{saved} minutes saved of {held} held");
    assert!(store.load("demo-llama-8b").unwrap().is_some());
}
