//! The validated policy: what the rest of the program sees once a file has passed every check.
//!
//! Each field's doc comment is the user documentation of its TOML key (same name), with its
//! unit and default; `config/example.toml` shows them all.

use std::path::PathBuf;

use chrono_tz::Tz;
use croner::Cron;
use serde::Serialize;

use crate::model::{Market, Units};

/// The whole policy file.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    /// `[global]`: process-wide settings.
    pub global: Global,
    /// `[[fleets]]`: one or more independently scaled fleets.
    pub fleets: Vec<Fleet>,
    /// `[[profiles]]`: replica performance and price profiles that override or add to the
    /// simulator's built-in ones (`sim::perf`).
    pub profiles: Vec<ProfileOverride>,
}

/// `[[profiles]]`: figures for one instance type serving one model class. Absent figures keep
/// the built-in profile's; a type/model with no built-in profile needs them all.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ProfileOverride {
    /// `instance_type`: EC2 instance type. Required.
    pub instance_type: String,
    /// `model`: model class, e.g. `8b` or `70b`. Default `8b`.
    pub model: String,
    /// `prefill_tokens_per_sec`: prefill throughput, tokens per second.
    pub prefill_tokens_per_sec: Option<f64>,
    /// `decode_base_ms`: decode step time with an empty batch, milliseconds.
    pub decode_base_ms: Option<f64>,
    /// `decode_per_seq_ms`: extra decode step time per running sequence, milliseconds.
    pub decode_per_seq_ms: Option<f64>,
    /// `max_seqs`: concurrent sequences cap.
    pub max_seqs: Option<u32>,
    /// `kv_cache_tokens`: KV-cache capacity, tokens.
    pub kv_cache_tokens: Option<u64>,
    /// `cold_start_secs`: median launch → in service, seconds.
    pub cold_start_secs: Option<f64>,
    /// `warm_start_secs`: median warm-pool start → in service, seconds.
    pub warm_start_secs: Option<f64>,
    /// `on_demand_usd_per_hour`: on-demand price.
    pub on_demand_usd_per_hour: Option<f64>,
    /// `spot_usd_per_hour`: spot price.
    pub spot_usd_per_hour: Option<f64>,
    /// `region`: the AWS region these figures (prices, usually) hold in; the table applies only
    /// when `[global.aws] region` is this one, and then over a table without a region. Absent:
    /// every region.
    pub region: Option<String>,
    /// Where the table is written (`FILE:LINE:COL`), for later messages.
    pub defined_at: String,
}

/// Which cloud the daemon drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// Real AWS Auto Scaling Groups through the AWS SDK.
    Aws,
    /// The built-in simulated cloud (no AWS account needed).
    Sim,
}

/// `[global]` settings.
#[derive(Clone, Debug, Serialize)]
pub struct Global {
    /// `tick_secs`: seconds between two decisions. Default 15 (HPA's sync period).
    pub tick_secs: u64,
    /// `dry_run`: log what would be done and change nothing. Default false.
    pub dry_run: bool,
    /// `http_listen`: address of the HTTP endpoint (`/metrics`, `/healthz`, `/api/state`).
    /// Default `127.0.0.1:9464`.
    pub http_listen: String,
    /// `state_dir`: where engine state and the decision log are kept.
    /// Default `/var/lib/llm-autoscaler`.
    pub state_dir: PathBuf,
    /// `provider`: `"aws"` or `"sim"`. Default `"sim"`.
    pub provider: ProviderKind,
    /// `unhealthy_after_ticks`: `/healthz` answers 503 once no fleet's plan has gone through
    /// (every change applied) for this many ticks — the control loop may be alive (`/livez`)
    /// while AWS refuses every call. Default 20 (5 minutes at 15 s ticks).
    pub unhealthy_after_ticks: u64,
    /// `[global.aws]`: how the AWS provider reaches AWS.
    pub aws: AwsSettings,
    /// `[global.scrape]`: how the inference servers' Prometheus endpoints are scraped.
    pub scrape: ScrapeSettings,
    /// `[global.cloudwatch_export]`: publish each fleet's signals to CloudWatch. Absent: off.
    pub cloudwatch_export: Option<CloudWatchExport>,
    /// `[global.ha]`: run as one of an HA pair, actuating only while holding the leader lease.
    /// Absent: a single daemon (a second one on the same state directory is refused).
    pub ha: Option<HaSettings>,
}

/// `[global.ha]`: two daemons (on two control VMs) share one lease; only its holder actuates
/// (sets desired capacities and warm pools, completes lifecycle actions, consumes events),
/// the other observes, decides and publishes, ready to take over. See [`crate::lease`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HaSettings {
    /// `table`: the DynamoDB table holding the lease (partition key `lease`, a string; the
    /// Terraform module's `ha_lease_table` output). Required. With `provider = "sim"` the
    /// lease lives in the process's memory.
    pub table: String,
    /// `lease_name`: the lease's item key — one per pair of daemons. Default `llm-autoscaler`.
    pub lease_name: String,
    /// `lease_secs`: a follower takes over once the lease has not been renewed for this long
    /// (failover within `lease_secs` + one tick); the leader stops actuating
    /// `lease::MARGIN_SECS` (12 s) before that. At least `tick_secs` + 12. Default 30 (or
    /// `tick_secs` + 12 when that is more).
    pub lease_secs: u64,
    /// `holder`: this daemon's name in the lease. Default: the host name and process id.
    pub holder: Option<String>,
}

impl Default for HaSettings {
    /// What an absent `[global.ha]` key means (`table` has no default).
    fn default() -> Self {
        HaSettings {
            table: String::new(),
            lease_name: "llm-autoscaler".into(),
            lease_secs: 30,
            holder: None,
        }
    }
}

/// `[global.aws]`: AWS access for `provider = "aws"`. Credentials always come from the SDK's
/// default chain (environment, profile, IMDSv2 instance role).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AwsSettings {
    /// `region`: e.g. `us-east-1`. Default: the SDK chain (`AWS_REGION`, profile, IMDS).
    pub region: Option<String>,
    /// `endpoint_url`: one endpoint for every AWS service (a test endpoint or a VPC proxy).
    /// Default: AWS's own; the `AWS_ENDPOINT_URL` environment variable also works.
    pub endpoint_url: Option<String>,
    /// `events_queue_url`: the SQS queue EventBridge fills with spot interruption warnings,
    /// rebalance recommendations, terminate lifecycle actions and instance state changes (the
    /// Terraform module's `events_queue_url` output). Absent: no event handling.
    pub events_queue_url: Option<String>,
    /// `drain_timeout_secs`: a terminating instance whose requests have not reached zero is
    /// released (its lifecycle action completed) after this long. Default 300; keep it below
    /// the lifecycle hook's heartbeat timeout.
    pub drain_timeout_secs: u64,
}

/// Name → value pairs (kept in file order) serialized as the table the policy file writes them
/// as, so `check --json` reads back as TOML.
fn pairs_as_table<S: serde::Serializer>(
    pairs: &[(String, String)],
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(pairs.len()))?;
    for (k, v) in pairs {
        m.serialize_entry(k, v)?;
    }
    m.end()
}

/// `[global.cloudwatch_export]`: publish each fleet's signals to CloudWatch (`PutMetricData`)
/// for teams that alarm and dashboard there, or feed EC2's own policies — desired, in-service
/// (by market) and pending units, each metric's current value (`Metric.<name>`), the
/// forecast's peak and floor, P95 TTFT, the spend rate. Absent: nothing is published. Needs
/// `provider = "aws"` to reach CloudWatch (the simulated cloud drops the values).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CloudWatchExport {
    /// `namespace`: required, e.g. `"LLMAutoscaler"`. CloudWatch's rules: 1–255 printable
    /// ASCII characters, not beginning with `AWS/` (reserved for AWS's own services). The
    /// Terraform module's `metrics_namespace` variable grants `PutMetricData` in this one
    /// namespace.
    pub namespace: String,
    /// `dimensions`: extra dimensions on every value besides `Fleet`, e.g.
    /// `{ Environment = "prod" }`. At most 29 (CloudWatch allows 30 per metric); names 1–255,
    /// values 1–1024 printable ASCII characters, a name not beginning with `:`. Default none.
    #[serde(serialize_with = "pairs_as_table")]
    pub dimensions: Vec<(String, String)>,
    /// `period_secs`: publish once per window of this many seconds, aligned to the epoch (the
    /// first tick in each publishes its latest values; two publishes may be less than a
    /// period apart across a window's edge, never two in one window). 1–3600; below
    /// 60 needs `high_resolution`. Default 60 (CloudWatch's standard resolution: a value a
    /// minute, all a standard-resolution alarm can read).
    pub period_secs: u64,
    /// `high_resolution`: store values at one-second resolution (`StorageResolution = 1`) so
    /// alarms can use 10- and 30-second periods; CloudWatch charges high-resolution alarms
    /// more. Default false.
    pub high_resolution: bool,
}

impl CloudWatchExport {
    /// Default `period_secs` (the one source of it: the parser and the docs read it here).
    pub const DEFAULT_PERIOD_SECS: u64 = 60;
    /// At most this many `dimensions` besides `Fleet` (CloudWatch allows 30 per metric).
    pub const MAX_EXTRA_DIMENSIONS: usize = 29;
}

/// `[global.scrape]`: every in-service instance's inference server is scraped at
/// `http://PRIVATE_IP:port/path` once per tick.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScrapeSettings {
    /// `port`: the inference server's metrics port. Default 8000 (vLLM's OpenAI server; TGI
    /// serves on 80 by default).
    pub port: u16,
    /// `path`: default `/metrics`.
    pub path: String,
    /// `timeout_ms`: per target; a target that does not answer in time counts as a failed
    /// scrape and its samples as missing. Default 2000.
    pub timeout_ms: u64,
}

impl Default for AwsSettings {
    /// What an absent `[global.aws]` key means (the parser reads its defaults from here).
    fn default() -> Self {
        AwsSettings {
            region: None,
            endpoint_url: None,
            events_queue_url: None,
            drain_timeout_secs: 300,
        }
    }
}

impl Default for ScrapeSettings {
    fn default() -> Self {
        ScrapeSettings {
            port: 8000,
            path: "/metrics".into(),
            timeout_ms: 2000,
        }
    }
}

/// `source` of a metric: where the AWS provider reads its samples. The simulated cloud
/// ignores it (it measures every signal itself).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MetricSource {
    /// `{ type = "scrape", metric = "vllm:num_requests_waiting", port = 9400, scale = 1 }`:
    /// a gauge on each instance's Prometheus endpoint, summed over its label sets and multiplied
    /// by `scale`. The default for per-instance signals (and, as a histogram, for
    /// `ttft_p95_secs`), with the metric name chosen from the signal (vLLM, then TGI names).
    Scrape {
        /// `metric`: the metric name; default from the signal.
        metric: Option<String>,
        /// `port`: overrides `global.scrape.port` (e.g. 9400 for dcgm-exporter).
        port: Option<u16>,
        /// `scale`: multiplier, e.g. 100 for a 0–1 fraction. Default 1, or 100 for the vLLM
        /// KV-cache fraction chosen by default.
        scale: Option<f64>,
    },
    /// `{ type = "cloudwatch", namespace = "AWS/ApplicationELB", metric_name = "RequestCount",
    /// dimensions = { LoadBalancer = "app/x/1" }, statistic = "Sum", period_secs = 60 }` or
    /// `{ type = "cloudwatch", expression = "m1/60", … }`: the newest datapoint of a
    /// `GetMetricData` query (one batched call per fleet), with its own timestamp.
    Cloudwatch {
        /// `namespace`.
        namespace: String,
        /// `metric_name`.
        metric_name: String,
        /// `dimensions`: name → value.
        #[serde(serialize_with = "pairs_as_table")]
        dimensions: Vec<(String, String)>,
        /// `statistic`: `Sum`, `Average`, `Maximum`, `Minimum`, `SampleCount` or `pNN`.
        /// Default `Average`.
        statistic: String,
        /// `period_secs`: a multiple of 60. Default 60.
        period_secs: u64,
        /// `expression`: metric math over the metric as `m1` (e.g. `m1/60` for a per-second
        /// rate from a per-minute Sum). Default: the metric itself.
        expression: Option<String>,
    },
    /// `{ type = "sqs", queue_url = "https://sqs…" }`: visible + in-flight messages.
    Sqs {
        /// `queue_url`.
        queue_url: String,
    },
    /// `{ type = "promql", url = "http://prometheus:9090", query = "sum(…)" }`: an instant
    /// query against an existing Prometheus server; the result must be one scalar or one series.
    Promql {
        /// `url`: the server's base URL.
        url: String,
        /// `query`: PromQL.
        query: String,
    },
}

/// `[[fleets]]`: one model served by one or more pools.
#[derive(Clone, Debug, Serialize)]
pub struct Fleet {
    /// `name`: unique name of the fleet (used in logs, metrics and the API).
    pub name: String,
    /// `model`: the model class the fleet serves, which picks its replica profiles (`8b`,
    /// `70b`, or a class of your `[[profiles]]`). Default `8b`.
    pub model: String,
    /// `min_units`: capacity floor in units. Required.
    pub min_units: Units,
    /// `max_units`: capacity ceiling in units. Required, ≥ `min_units`.
    pub max_units: Units,
    /// `tolerance`: HPA's tolerance band; a metric ratio within 1 ± tolerance causes no change.
    /// Any number ≥ 0, as Kubernetes accepts (1 or more: never a scale-down). Default 0.1.
    pub tolerance: f64,
    /// `stale_after_secs`: a sample older than this is stale (treated as missing). Default 60.
    /// A sample stamped more than `FUTURE_SKEW_ALLOWANCE_SECS` (10 s) ahead of now is treated
    /// as missing too, whatever this says.
    pub stale_after_secs: u64,
    /// `silence_hold_mins`: when no request reaches the fleet's servers — an outage upstream,
    /// by its look, after which the traffic comes back all at once — the capacity is held for
    /// up to this many minutes, as on missing data: with `[fleets.predictive]` and a forecast
    /// that expects traffic, the forecast's, through its floor (and the forecaster takes those
    /// minutes for a gap, not for demand); otherwise the capacity running — unless a
    /// fleet-level demand metric (an external queue, the load balancer's count) reads, which
    /// then says what the demand is, both ways (and a fleet with one has its silent minutes
    /// forecast as demand). 0: a silence is demand like any other (released after the
    /// scale-down window). Default 60.
    pub silence_hold_mins: u64,
    /// `on_demand_base_units`: units always bought on-demand (EC2 MixedInstancesPolicy
    /// `OnDemandBaseCapacity`). Default 0.
    pub on_demand_base_units: Units,
    /// `on_demand_percentage_above_base`: percent (0–100) of units above the base bought
    /// on-demand (`OnDemandPercentageAboveBaseCapacity`). Default 0 when the fleet has a spot
    /// pool, 100 otherwise.
    pub on_demand_percentage_above_base: u32,
    /// `spot_fallback_hold_secs`: after a spot launch fails, on-demand covers the spot capacity
    /// not in service for at least this long, and until spot has delivered. Default 300.
    pub spot_fallback_hold_secs: u64,
    /// `burst_on_demand`: when demand bursts past the panic threshold, on-demand (and its warm
    /// pool) covers spot units still booting: at most what spot owed at the burst and the warm
    /// pools' size; growth after the burst never raises the cover. Default false.
    pub burst_on_demand: bool,
    /// `spot_headroom_max_fraction`: spot capacity kept beyond need to absorb interruptions,
    /// sized from the fleet's own interruption rate (`placement::headroom`), at most this fraction
    /// of the spot target (0–1). Default 0: off.
    pub spot_headroom_max_fraction: f64,
    /// `[[fleets.pools]]`: the Auto Scaling Groups that make up the fleet.
    pub pools: Vec<Pool>,
    /// `[[fleets.metrics]]`: the signals that drive scaling; the highest recommendation wins.
    pub metrics: Vec<MetricSpec>,
    /// `[fleets.behavior]`: HPA scaling behavior.
    pub behavior: Behavior,
    /// `[fleets.panic]`: Knative-style burst mode.
    pub panic: Panic,
    /// `[[fleets.schedules]]`: time-based floors and ceilings.
    pub schedules: Vec<ScheduleRule>,
    /// `[fleets.slo]`: service-level objectives of the fleet.
    pub slo: Slo,
    /// `[fleets.predictive]`: forecast-driven capacity floor; absent means off.
    pub predictive: Option<Predictive>,
    /// `[fleets.budget]`: spend caps; absent means none.
    pub budget: Option<Budget>,
    /// `[fleets.capacity]`: what one unit can do — the model behind `token_work` and the
    /// `"auto"` targets.
    pub capacity: CapacitySettings,
}

/// `[fleets.capacity]`: the work one unit sustains, from the reference type's replica profile
/// (built in, or `[[profiles]]` with your own measurements: `llm-autoscaler calibrate`), and how
/// busy to keep it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CapacitySettings {
    /// `target_utilization`: the share of a unit's sustainable work to aim at, 0.3–0.95. It
    /// trades cost against TTFT headroom for bursts and long prefills. Default 0.7.
    pub target_utilization: f64,
    /// `scale_down_utilization`: a scale-down on the capacity-model signals releases capacity
    /// only down to the size at which the work would keep each unit this busy — below
    /// `target_utilization`, so the fleet does not scale straight back up on the next minute's
    /// noise (a deadband between this and the target plus the scale-up tolerance).
    /// 0.2–`target_utilization`. Default 0.6.
    pub scale_down_utilization: f64,
    /// `ramp_ahead`: while the work has risen steadily over the last five minutes (or a surge
    /// has broken out of its range in the last 90 s), size on where it will be one cold start
    /// ahead (the fleet's observed p95 launch → in service), at most half again the demand
    /// (double on a surge; `policy::ramp`). Only raises. Default true.
    pub ramp_ahead: bool,
    /// `learn`: correct the profile from what the fleet shows — lower the capacity counted per
    /// unit while TTFT is over the SLO because requests queue (AIMD: a tenth per latency sample, down
    /// to half), and give it back only while the fleet runs busy at its corrected target with
    /// its P95 queue wait under an eighth of the SLO, whatever the TTFT (a hundredth per sample,
    /// never above the profile); and count no more than the servers' speed as their token rates
    /// and batch sizes measure it (`policy::capacity::speed_reading`). Default true.
    pub learn: bool,
    /// The reference type's work model, filled in from its profile when the policy is loaded
    /// for `run`, `simulate` or `decide`; `None` before (or with no profile for the type).
    pub model: Option<WorkModel>,
}

impl Default for CapacitySettings {
    fn default() -> Self {
        CapacitySettings {
            target_utilization: 0.7,
            scale_down_utilization: 0.6,
            ramp_ahead: true,
            learn: true,
            model: None,
        }
    }
}

/// One unit of the reference type, as the capacity model sees it (from `sim::perf::Profile`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct WorkModel {
    /// Prefill tokens per second of one unit.
    pub prefill_tokens_per_sec: f64,
    /// Decode step of one reference instance with an empty batch, seconds.
    pub decode_base_secs: f64,
    /// Extra decode step per running sequence, seconds.
    pub decode_per_seq_secs: f64,
    /// Concurrent sequences one reference instance runs at most.
    pub max_seqs: u32,
    /// KV-cache tokens of one reference instance.
    pub kv_cache_tokens: u64,
    /// Units one reference instance counts for.
    pub reference_weight_units: Units,
}

/// `[fleets.budget]`: when the capacity a decision wants would cost more than a cap allows,
/// the engine degrades in a stated order — it sheds the spot headroom, caps the scale-up at
/// what fits (never below the capacity already running or the fleet's floor) and raises an
/// alert (condition `Budget`,
/// `/metrics` `budget_alert`). Never silently, never a scale-down for money.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Budget {
    /// `max_usd_per_hour`: the fleet's spend rate cap.
    pub max_usd_per_hour: Option<f64>,
    /// `max_usd_per_month`: the calendar month's (UTC) cap: the rate allowed is what is left
    /// of it spread over the hours left in the month.
    pub max_usd_per_month: Option<f64>,
}

/// Whether the predictive floor acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictiveMode {
    /// Compute and report the floor in every decision; never act on it.
    ForecastOnly,
    /// Raise capacity to the floor (never lower it: as EC2's `ForecastAndScale`).
    ForecastAndScale,
}

/// `[fleets.predictive]`: have capacity in service before a forecast rise arrives. The fleet's
/// demand history (per minute) is forecast with prediction intervals; the floor is the upper
/// quantile of the demand over the next lead time, divided by what one unit serves. It only
/// ever raises capacity; the reactive policy still decides everything else.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Predictive {
    /// `mode`: `"forecast_and_scale"` (default) or `"forecast_only"`.
    pub mode: PredictiveMode,
    /// `demand_per_unit`: demand one unit serves at its target utilisation, in the history's
    /// unit (e.g. requests per minute), or `"auto"`: learned from the fleet itself — the
    /// requests it finishes per unit of work the capacity model counts, at `[fleets.capacity]
    /// target_utilization` (so a mix of long prompts serves fewer requests per unit without a
    /// re-tune). Default: learned (`"auto"`; needs the capacity model: no floor until learned).
    pub demand_per_unit: Option<f64>,
    /// `quantile`: the forecast quantile capacity is sized on, 0.5–0.99. Default 0.9.
    pub quantile: f64,
    /// `lead_secs`: how far ahead capacity must be there. Default: the p95 of the fleet's own
    /// observed launch → in-service times, `default_lead_secs` until three have been seen.
    pub lead_secs: Option<u64>,
    /// `default_lead_secs`: the lead before three cold starts have been observed — the
    /// predictive floor's, and ramp-ahead's and the spot headroom's as well (they size on the
    /// same lead). Default 300 ([`Predictive::DEFAULT_LEAD_SECS`]).
    pub default_lead_secs: u64,
    /// `history_days`: demand history kept and fitted, days (1–15; CloudWatch keeps 1-minute
    /// data 15 days). Default 14.
    pub history_days: u64,
    /// `refit_mins`: minutes between refits (each fit of the six candidates costs ~70 ms of CPU on
    /// 14 days; a fresher origin narrows the interval the floor is sized on). Default 15.
    pub refit_mins: u64,
    /// `warm_pool_from_forecast`: size warm pools from the forecast peak of the next hour
    /// (at least the peak's units above current capacity, within the pool's
    /// `max_prepared_units`; never below the pool's `min_size`). Default false.
    pub warm_pool_from_forecast: bool,
    /// `source`: where the AWS provider reads the per-minute demand history (a CloudWatch
    /// metric with `period_secs = 60`, e.g. the load balancer's `RequestCount` `Sum`). The
    /// simulated cloud counts arrivals itself.
    pub source: Option<MetricSource>,
}

impl Predictive {
    /// Default `default_lead_secs`, seconds (the one source of it: the parser, and the engine
    /// for a fleet without the table, read it here).
    pub const DEFAULT_LEAD_SECS: u64 = 300;
}

/// `[[fleets.pools]]`: one Auto Scaling Group.
#[derive(Clone, Debug, Serialize)]
pub struct Pool {
    /// `name`: unique name of the pool within the fleet.
    pub name: String,
    /// `asg_name`: the Auto Scaling Group's name in AWS. Default: the pool name.
    pub asg_name: String,
    /// `market`: `"spot"` or `"on-demand"`.
    pub market: Market,
    /// `instance_types`: `[{ type = "g6.xlarge", weight_units = 1 }, …]`: types the group may
    /// launch and how many units each counts for (ASG `WeightedCapacity`).
    pub instance_types: Vec<InstanceTypeWeight>,
    /// `[fleets.pools.warm_pool]`: pre-initialised stopped instances that start faster.
    pub warm_pool: Option<WarmPool>,
    /// `unit_usd_per_hour`: what one unit of this pool costs per hour, for the spend ledger and
    /// the budget. Default: the price of its first instance type on its market (the replica
    /// profiles: built in, or `[[profiles]]`) ÷ that type's `weight_units`, filled in when the
    /// policy is loaded for `run` or `simulate`.
    pub unit_usd_per_hour: Option<f64>,
}

/// One instance type a pool may launch.
#[derive(Clone, Debug, Serialize)]
pub struct InstanceTypeWeight {
    /// `type`: EC2 instance type, e.g. `g6.xlarge`.
    #[serde(rename = "type")]
    pub instance_type: String,
    /// `weight_units`: capacity units one instance of this type provides. Default 1.
    pub weight_units: Units,
}

/// Warm-pool settings (EC2 `PutWarmPool`).
#[derive(Clone, Debug, Serialize)]
pub struct WarmPool {
    /// `min_size`: instances kept stopped and ready. Default 0.
    pub min_size: u32,
    /// `max_prepared_units`: cap on in-service + warm units (`MaxGroupPreparedCapacity`);
    /// absent means the group's max size.
    pub max_prepared_units: Option<Units>,
    /// `volume_usd_per_hour`: what one stopped warm instance costs, USD per hour — its EBS
    /// volumes (a stopped instance is not billed for compute). Default
    /// [`WARM_VOLUME_USD_PER_HOUR`].
    pub volume_usd_per_hour: f64,
}

/// A stopped warm-pool instance's default cost, USD per hour: a 200 GB gp3 root volume (model
/// weights and container image) at $0.08 per GB-month (us-east-1), over 730 hours.
pub const WARM_VOLUME_USD_PER_HOUR: f64 = 200.0 * 0.08 / 730.0;

/// What a metric measures, and so where its samples live (per instance or per fleet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// GPU utilisation of an instance, percent (DCGM `DCGM_FI_DEV_GPU_UTIL`).
    GpuUtilization,
    /// CPU utilisation of an instance, percent.
    CpuUtilization,
    /// Memory utilisation of an instance, percent.
    MemoryUtilization,
    /// KV-cache usage of an inference server, percent (`vllm:gpu_cache_usage_perc` × 100).
    KvCacheUsage,
    /// Requests waiting in an instance's queue (`vllm:num_requests_waiting`, `tgi_queue_size`).
    QueueDepth,
    /// Requests running + waiting on an instance (Knative's concurrency).
    Concurrency,
    /// Requests per second an instance finishes (vLLM `request_success_total`'s rate).
    RequestRate,
    /// Prompt tokens per second an instance prefills (vLLM `prompt_tokens_total`'s rate).
    PromptTokensRate,
    /// Tokens per second an instance generates (vLLM `generation_tokens_total`'s rate).
    GenerationTokensRate,
    /// The work an instance does, in units kept busy: prefill and decode time from its token
    /// rates through the capacity model of `[fleets.capacity]`, plus its waiting requests'
    /// work spread over the TTFT SLO (see `policy::capacity`). Needs no hand target (`"auto"`).
    TokenWork,
    /// Any other per-instance gauge.
    CustomInstance,
    /// Messages in an external request queue (SQS visible + in flight).
    ExternalQueueDepth,
    /// Requests per second arriving at the whole fleet (e.g. at the load balancer).
    FleetRequestRate,
    /// Prompt tokens per second the whole fleet prefills (e.g. a PromQL sum of rates).
    FleetPromptTokensRate,
    /// Tokens per second the whole fleet generates.
    FleetGenerationTokensRate,
    /// P95 time to first token of the fleet, seconds. Scale-up only (see `policy::hpa`).
    TtftP95Secs,
    /// Any other fleet-level gauge.
    CustomFleet,
}

impl Signal {
    /// All signals with their TOML names, for parsing and for error messages.
    pub const ALL: [(&'static str, Signal); 17] = [
        ("gpu_utilization", Signal::GpuUtilization),
        ("cpu_utilization", Signal::CpuUtilization),
        ("memory_utilization", Signal::MemoryUtilization),
        ("kv_cache_usage", Signal::KvCacheUsage),
        ("queue_depth", Signal::QueueDepth),
        ("concurrency", Signal::Concurrency),
        ("request_rate", Signal::RequestRate),
        ("prompt_tokens_rate", Signal::PromptTokensRate),
        ("generation_tokens_rate", Signal::GenerationTokensRate),
        ("token_work", Signal::TokenWork),
        ("custom_instance", Signal::CustomInstance),
        ("external_queue_depth", Signal::ExternalQueueDepth),
        ("fleet_request_rate", Signal::FleetRequestRate),
        ("fleet_prompt_tokens_rate", Signal::FleetPromptTokensRate),
        (
            "fleet_generation_tokens_rate",
            Signal::FleetGenerationTokensRate,
        ),
        ("ttft_p95_secs", Signal::TtftP95Secs),
        ("custom_fleet", Signal::CustomFleet),
    ];

    /// The signal's TOML name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, s)| *s == self)
            .map(|(n, _)| *n)
            .unwrap_or("custom_fleet")
    }

    /// Whether samples come from each instance (HPA Resource/Pods metrics) rather than from
    /// one fleet-level series (HPA Object/External metrics).
    pub fn per_instance(self) -> bool {
        matches!(
            self,
            Signal::GpuUtilization
                | Signal::CpuUtilization
                | Signal::MemoryUtilization
                | Signal::KvCacheUsage
                | Signal::QueueDepth
                | Signal::Concurrency
                | Signal::RequestRate
                | Signal::PromptTokensRate
                | Signal::GenerationTokensRate
                | Signal::TokenWork
                | Signal::CustomInstance
        )
    }

    /// Whether it reads the fleet's demand upstream of its servers — an external queue, the load
    /// balancer's count, a PromQL or CloudWatch sum — rather than from each server or as the
    /// servers' latency: while such a signal reads, no request at the servers is no demand,
    /// not an outage to wait out (`silence_hold_mins`).
    pub fn reads_demand_upstream(self) -> bool {
        !self.per_instance() && self != Signal::TtftP95Secs
    }

    /// Whether its target may be `"auto"`: derived from the capacity model (the instance
    /// profile × `[fleets.capacity] target_utilization`, corrected by what the fleet has
    /// shown), so no hand number fitted to one mix is needed.
    pub fn has_auto_target(self) -> bool {
        matches!(
            self,
            Signal::TokenWork
                | Signal::PromptTokensRate
                | Signal::GenerationTokensRate
                | Signal::FleetPromptTokensRate
                | Signal::FleetGenerationTokensRate
                | Signal::KvCacheUsage
        )
    }

    /// Whether the signal is a percentage, so a `Utilization` target makes sense for it.
    pub fn is_percent(self) -> bool {
        matches!(
            self,
            Signal::GpuUtilization
                | Signal::CpuUtilization
                | Signal::MemoryUtilization
                | Signal::KvCacheUsage
                | Signal::CustomInstance
        )
    }

    /// Whether the signal may only push capacity up. Latency says "too few replicas" when it is
    /// high, but a low latency says nothing about how many replicas would still be enough.
    pub fn scale_up_only(self) -> bool {
        matches!(self, Signal::TtftP95Secs)
    }
}

/// HPA autoscaling/v2 `MetricTarget`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum Target {
    /// `{ type = "Utilization", average_utilization = 70 }`: average percent across instances.
    Utilization {
        /// Target average utilisation, percent.
        average_utilization: f64,
    },
    /// `{ type = "AverageValue", average_value = 5 }`: the metric's total divided by the units.
    AverageValue {
        /// Target value per unit.
        average_value: f64,
    },
    /// `{ type = "Value", value = 2.0 }`: the fleet-level value itself (Object/External).
    Value {
        /// Target value.
        value: f64,
    },
}

impl Target {
    /// The target figure, whatever its type.
    pub fn figure(self) -> f64 {
        match self {
            Target::Utilization {
                average_utilization,
            } => average_utilization,
            Target::AverageValue { average_value } => average_value,
            Target::Value { value } => value,
        }
    }

    /// The same type of target with another figure.
    pub fn with_figure(self, figure: f64) -> Target {
        match self {
            Target::Utilization { .. } => Target::Utilization {
                average_utilization: figure,
            },
            Target::AverageValue { .. } => Target::AverageValue {
                average_value: figure,
            },
            Target::Value { .. } => Target::Value { value: figure },
        }
    }
}

/// `[[fleets.metrics]]`: one signal and its target.
#[derive(Clone, Debug, Serialize)]
pub struct MetricSpec {
    /// `name`: the key samples are stored under in a snapshot. Default: the signal's name.
    pub name: String,
    /// `signal`: what is measured (see [`Signal`]).
    pub signal: Signal,
    /// `target`: the HPA target. `average_value = "auto"` (or `average_utilization = "auto"`
    /// for `kv_cache_usage`) derives it from `[fleets.capacity]`: `token_work` →
    /// `target_utilization` units busy per unit; `prompt_tokens_rate` / `generation_tokens_rate`
    /// (and the fleet's) → the profile's prefill / decode tokens per second per unit ×
    /// `target_utilization`; `kv_cache_usage` → `target_utilization` × 100 %.
    pub target: Target,
    /// Whether `target` was `"auto"` (resolved from the profile when the policy is loaded for
    /// `run`, `simulate` or `decide`).
    pub auto_target: bool,
    /// `stale_after_secs`: overrides the fleet's staleness limit for this metric (CloudWatch
    /// data arrives 1–3 minutes late).
    pub stale_after_secs: u64,
    /// `source`: where the AWS provider reads the metric. Default: a scrape of each instance
    /// for per-instance signals and `ttft_p95_secs`; required for the other fleet-level
    /// signals when `provider = "aws"`.
    pub source: Option<MetricSource>,
}

/// HPA `behavior`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Behavior {
    /// `[fleets.behavior.scale_up]`.
    pub scale_up: ScalingRules,
    /// `[fleets.behavior.scale_down]`.
    pub scale_down: ScalingRules,
}

/// HPA `HPAScalingRules`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScalingRules {
    /// `stabilization_window_secs`: how far back recommendations are considered. HPA defaults:
    /// 0 for scale-up, 300 for scale-down.
    pub stabilization_window_secs: u64,
    /// `select_policy`: `"Max"` (default), `"Min"` or `"Disabled"`.
    pub select_policy: SelectPolicy,
    /// `tolerance`: no change in this direction while the metric ÷ target ratio is within
    /// this of 1 (Kubernetes 1.33's per-direction `behavior.scaleUp/scaleDown.tolerance`): a
    /// larger scale-down tolerance is a down threshold below the target — work must fall that
    /// far under it before capacity is released. Any number ≥ 0. Default: the fleet's
    /// `tolerance`.
    pub tolerance: Option<f64>,
    /// `policies`: rate limits. HPA defaults: scale-up `[{pods 4 / 15 s}, {percent 100 / 15 s}]`,
    /// scale-down `[{percent 100 / 15 s}]`.
    pub policies: Vec<ScalingPolicy>,
}

impl ScalingRules {
    /// HPA's default scale-up rules.
    pub fn default_scale_up() -> Self {
        ScalingRules {
            stabilization_window_secs: 0,
            select_policy: SelectPolicy::Max,
            tolerance: None,
            policies: vec![
                ScalingPolicy {
                    kind: PolicyKind::Pods,
                    value: 4,
                    period_secs: 15,
                },
                ScalingPolicy {
                    kind: PolicyKind::Percent,
                    value: 100,
                    period_secs: 15,
                },
            ],
        }
    }

    /// HPA's default scale-down rules.
    pub fn default_scale_down() -> Self {
        ScalingRules {
            stabilization_window_secs: 300,
            select_policy: SelectPolicy::Max,
            tolerance: None,
            policies: vec![ScalingPolicy {
                kind: PolicyKind::Percent,
                value: 100,
                period_secs: 15,
            }],
        }
    }

    /// The longest policy period, seconds: how long scale events must be remembered.
    pub fn longest_period_secs(&self) -> u64 {
        self.policies
            .iter()
            .map(|p| p.period_secs)
            .max()
            .unwrap_or(0)
    }
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            scale_up: ScalingRules::default_scale_up(),
            scale_down: ScalingRules::default_scale_down(),
        }
    }
}

/// HPA `selectPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum SelectPolicy {
    /// The policy allowing the largest change.
    Max,
    /// The policy allowing the smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// HPA `HPAScalingPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ScalingPolicy {
    /// `type`: `"pods"` (units) or `"percent"`.
    #[serde(rename = "type")]
    pub kind: PolicyKind,
    /// `value`: units or percent allowed per period; > 0.
    pub value: u32,
    /// `period_secs`: the window the change is measured over; 1–1800 (as HPA).
    pub period_secs: u64,
}

/// HPA scaling policy type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    /// A number of units.
    Pods,
    /// A percentage of the capacity at the start of the period.
    Percent,
}

/// `[fleets.panic]`: Knative KPA's panic mode.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Panic {
    /// `enabled`: default true.
    pub enabled: bool,
    /// `threshold`: enter panic when demand ≥ threshold × in-service capacity. Default 2.0
    /// (Knative's 200 %).
    pub threshold: f64,
    /// `stable_window_secs`: panic ends once demand has stayed below the threshold this long.
    /// Default 60 (Knative's stable window).
    pub stable_window_secs: u64,
    /// `max_scale_up_rate`: how far panic itself may raise capacity in one decision, × the
    /// in-service units (rounded up); HPA's rate policies may allow more, and then win. Default
    /// 1000 (Knative's default).
    pub max_scale_up_rate: f64,
}

impl Default for Panic {
    fn default() -> Self {
        Panic {
            enabled: true,
            threshold: 2.0,
            stable_window_secs: 60,
            max_scale_up_rate: 1000.0,
        }
    }
}

/// `[[fleets.schedules]]`: a time window, given by two cron expressions in a time zone, in
/// which the fleet's bounds change.
#[derive(Clone, Debug, Serialize)]
pub struct ScheduleRule {
    /// `name`: shown in decisions.
    pub name: String,
    /// `start`: cron expression (5 fields, minute resolution) at which the window opens.
    #[serde(serialize_with = "ser_cron")]
    pub start: Cron,
    /// `end`: cron expression at which it closes.
    #[serde(serialize_with = "ser_cron")]
    pub end: Cron,
    /// `timezone`: IANA zone the crons are read in, e.g. `Europe/Berlin`. Default `UTC`.
    pub timezone: Tz,
    /// `min_units`: floor while the window is open.
    pub min_units: Option<Units>,
    /// `max_units`: ceiling while the window is open.
    pub max_units: Option<Units>,
    /// `min_factor`: floor as a fraction (0–1) of the fleet's `max_units`, rounded up.
    pub min_factor: Option<f64>,
    /// `max_factor`: ceiling as a fraction (0–1) of the fleet's `max_units`, rounded up.
    pub max_factor: Option<f64>,
}

fn ser_cron<S: serde::Serializer>(c: &Cron, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(c.pattern.as_str())
}

/// `[fleets.slo]`: what the fleet must hold.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Slo {
    /// `ttft_p95_secs`: P95 time to first token, seconds. Default 2.0. It is also the default
    /// target of a `ttft_p95_secs` metric.
    pub ttft_p95_secs: f64,
    /// `availability`: fraction of minutes that must be good. Default 0.999.
    pub availability: f64,
    /// `error_rate`: highest acceptable fraction of failed requests. Default 0.001.
    pub error_rate: f64,
}

impl Default for Slo {
    fn default() -> Self {
        Slo {
            ttft_p95_secs: 2.0,
            availability: 0.999,
            error_rate: 0.001,
        }
    }
}

impl Fleet {
    /// The pool named `name`.
    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| p.name == name)
    }

    /// The silent minutes in a row the forecaster takes for a gap rather than for demand:
    /// `silence_hold_mins`, but none for a fleet with a metric that reads its demand upstream
    /// ([`Signal::reads_demand_upstream`]) — there a silence at the servers is mostly no work
    /// (a drained queue), which the forecast should learn.
    pub fn forecast_silence_gap_mins(&self) -> u64 {
        if self
            .metrics
            .iter()
            .any(|m| m.signal.reads_demand_upstream())
        {
            0
        } else {
            self.silence_hold_mins
        }
    }
}
