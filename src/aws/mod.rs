//! The AWS provider: observes a fleet through Auto Scaling, EC2, CloudWatch, SQS and the
//! inference servers' Prometheus endpoints, and sets desired capacity on its Auto Scaling
//! Groups. Edge code; only the SDK calls listed in [`CALLS`] are made (the Terraform module's
//! IAM policy grants exactly those).
//!
//! One observation (`snapshot`) of a fleet:
//! 1. once per tick, drain the event queue (spot interruption warnings, rebalance
//!    recommendations, terminate lifecycle actions, state changes) into the [`EventTracker`];
//! 2. `DescribeAutoScalingGroups` for all the fleet's groups in one call: desired capacity,
//!    instances with lifecycle state and capacity weight; warned instances become
//!    `Interrupted` (their capacity counts as gone at once), instances held by a terminate
//!    lifecycle action `Draining`;
//! 3. `DescribeScalingActivities` of spot groups: failed launches, cumulative;
//! 4. `DescribeInstances` for private IPs, then a scrape of every in-service and draining
//!    instance in parallel, each bounded by `global.scrape.timeout_ms`;
//! 5. fleet metrics: one batched `GetMetricData`, `GetQueueAttributes` per queue, PromQL.
//!
//! Every call is bounded by the SDK's operation timeout and retried by the SDK (standard mode:
//! exponential backoff with jitter, throttling-aware, 3 attempts); what still fails is
//! classified by [`error::classify`] for the daemon's own backoff.

pub mod cloudwatch;
pub mod doctor;
pub mod error;
pub mod event_rules;
pub mod events;
mod lease;
pub mod permissions;
pub mod units;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_autoscaling::types::{LifecycleState as AsgLifecycle, ScalingActivityStatusCode};
use aws_sdk_sqs::types::QueueAttributeName;
use tracing::{debug, error, info, warn};

use self::error::classify;
use self::events::{parse_event, EventTracker};
use self::units::{group_weights, GroupUnits};
use crate::config::{AwsSettings, Fleet, MetricSource, Pool, ScrapeSettings, Signal};
use crate::model::{
    Instance, LifecycleState, Market, Sample, ServerLoad, Snapshot, Timestamp, Units,
};
use crate::provider::{Provider, ProviderError, ProviderStats};
use crate::scrape::{self, Exposition, Histogram, Scraper};

/// Every AWS API call this provider makes (for the IAM policy and for `/metrics`).
pub const CALLS: &[&str] = &[
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeScalingActivities",
    "autoscaling:SetDesiredCapacity",
    "autoscaling:PutWarmPool",
    "autoscaling:CompleteLifecycleAction",
    "ec2:DescribeInstances",
    "ec2:DescribeSpotPriceHistory",
    "cloudwatch:GetMetricData",
    "cloudwatch:PutMetricData",
    "sqs:GetQueueAttributes",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    // `check --aws` only: the rules feeding the events queue, and what the role may call,
    // asked of IAM about itself.
    "events:ListRuleNamesByTarget",
    "events:DescribeRule",
    "iam:SimulatePrincipalPolicy",
];

/// How long a spot price is used before it is asked again, seconds.
pub const SPOT_PRICE_TTL_SECS: f64 = 3600.0;

/// Messages read from the event queue per tick at most (10 per call).
const MAX_EVENT_BATCHES: usize = 10;

/// Seconds a received event message stays invisible to other readers; one not deleted by then
/// (not yet handled) comes back and is folded in again, harmlessly.
const EVENT_VISIBILITY_SECS: i32 = 60;

/// Maps an instance to the address its metrics are scraped at: `(instance id, private IP,
/// configured port) → (host, port)`. The default is the private IP and the configured port;
/// tests point every instance at a loopback server.
pub type TargetResolver = Arc<dyn Fn(&str, &str, u16) -> (String, u16) + Send + Sync>;

/// Awaits one call, timing and counting it (and its failure) under `api`. The call is counted
/// when it starts and its seconds when it ends — or when the daemon's own timeout drops it
/// unfinished, which counts as a failure: a `SetDesiredCapacity` cut off that way was sent all
/// the same, and left out it was neither a call nor an error in `/metrics`.
async fn timed<T, E>(
    stats: &mut ProviderStats,
    api: &'static str,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let mut timer = CallTimer::start(stats, api);
    let r = call.await;
    timer.failed = r.is_err();
    r
}

/// One call's accounting in [`ProviderStats`], completed when it is dropped: by [`timed`] when
/// the call ends, or with the call's future when a timeout drops it (then as a failure).
struct CallTimer<'s> {
    stats: &'s mut ProviderStats,
    api: &'static str,
    /// Tokio's clock: real time, paused in tests.
    started: tokio::time::Instant,
    /// Whether the call failed; a call dropped before it ended has failed.
    failed: bool,
}

impl<'s> CallTimer<'s> {
    fn start(stats: &'s mut ProviderStats, api: &'static str) -> Self {
        *stats.calls_total.entry(api).or_default() += 1;
        CallTimer {
            stats,
            api,
            started: tokio::time::Instant::now(),
            failed: true,
        }
    }
}

impl Drop for CallTimer<'_> {
    fn drop(&mut self) {
        *self.stats.call_seconds_total.entry(self.api).or_default() +=
            self.started.elapsed().as_secs_f64();
        if self.failed {
            *self.stats.errors_total.entry(self.api).or_default() += 1;
        }
    }
}

/// The processes suspended on a group (`SuspendProcesses`), sorted: what the snapshot reports
/// and `check --aws` warns about.
pub(crate) fn suspended_processes(
    group: &aws_sdk_autoscaling::types::AutoScalingGroup,
) -> Vec<String> {
    let mut names: Vec<String> = group
        .suspended_processes()
        .iter()
        .filter_map(|p| p.process_name())
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

/// One SDK call: timed and counted under `api` (as [`timed`]), a failure classified with
/// `api` and `target` (the group, queue or instance it concerns) in its message.
async fn sdk_call<T, E>(
    stats: &mut ProviderStats,
    api: &'static str,
    target: &str,
    call: impl std::future::Future<Output = Result<T, aws_sdk_autoscaling::error::SdkError<E>>>,
) -> Result<T, ProviderError>
where
    E: aws_sdk_autoscaling::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    timed(stats, api, call).await.map_err(|e| {
        let what = if target.is_empty() {
            api.to_string()
        } else {
            format!("{api} {target}")
        };
        classify(&what, e)
    })
}

/// The AWS provider.
pub struct AwsProvider {
    autoscaling: aws_sdk_autoscaling::Client,
    ec2: aws_sdk_ec2::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    sqs: aws_sdk_sqs::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    /// Whether this daemon reads the event queue (an HA follower does not).
    consume_events: bool,
    scraper: Scraper,
    resolver: TargetResolver,
    settings: AwsSettings,
    scrape: ScrapeSettings,
    events: EventTracker,
    /// The tick whose events were already read (events are read once per tick).
    events_read_at: Option<Timestamp>,
    /// Each instance's TTFT and queue-time histograms at its previous scrape.
    previous_latency: HashMap<String, scrape::LatencyReading>,
    /// Per fleet: each recent tick's TTFT and queue-time histogram deltas, merged over the
    /// last minute as the simulator measures its fleet's latency.
    recent_latency: HashMap<String, std::collections::VecDeque<(Timestamp, Histogram, Histogram)>>,
    /// Each instance's work-counter readings over the last minute, for its rates.
    rate_windows: HashMap<String, scrape::RateWindow>,
    /// Per group: failed launch activities seen (bounded to the latest page) and their count.
    failed_launches: BTreeMap<String, (BTreeSet<String>, u64)>,
    /// Instances drained (or past the drain timeout) whose lifecycle action awaits completion.
    drained: BTreeSet<String>,
    /// Spot price per instance type (USD per instance-hour, the highest across zones) and when
    /// it was read.
    spot_prices: HashMap<String, (f64, Timestamp)>,
    /// Private IP per instance (described once).
    ips: HashMap<String, String>,
    /// Warm-pool settings last applied per group.
    warm_pools_applied: BTreeMap<String, (u32, Option<Units>)>,
    /// Warm-pool sizes the forecast asks for, per group (override the policy's `min_size`).
    warm_pool_targets: BTreeMap<String, u32>,
    /// How each group counts its capacity, as last described.
    group_units: HashMap<String, GroupUnits>,
    /// The fleet each instance was last seen in, and when: an event message about it is
    /// deleted once that fleet has acted, whatever the others did. Kept for
    /// [`events::NOTICE_TTL_SECS`] after the instance is last seen, for the messages that
    /// come after it has gone (`terminated`).
    instance_fleets: HashMap<String, (String, Timestamp)>,
    /// Each group's warm pool as last described: `PutWarmPool` replaces the whole
    /// configuration, so what the daemon does not own (the pool state, the reuse policy) is
    /// sent back as it was.
    warm_pools_described: HashMap<String, aws_sdk_autoscaling::types::WarmPoolConfiguration>,
    /// Each group's suspended processes as last described (logged when they change).
    suspended_processes: HashMap<String, Vec<String>>,
    /// Per group: the units last set and the group figure that was sent for them. A group
    /// counting 4-unit instances, asked for 5 units, holds 2 instances: read back while it
    /// still holds 2, its desired capacity is the 5 units asked (as a weighted group's
    /// `DesiredCapacity` keeps 5), so the next tick does not ask again.
    unit_requests: HashMap<String, (Units, i32)>,
    /// Counters.
    pub stats: ProviderStats,
}

/// Loads the SDK configuration: the default credential chain (environment, profile, IMDSv2),
/// the region and endpoint from the policy when given, the SDK's standard retries and
/// `call_timeout` per operation.
pub async fn sdk_config(settings: &AwsSettings, call_timeout: Duration) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(call_timeout)
                .operation_attempt_timeout(call_timeout / 2)
                .build(),
        );
    if let Some(r) = &settings.region {
        loader = loader.region(Region::new(r.clone()));
    }
    if let Some(e) = &settings.endpoint_url {
        loader = loader.endpoint_url(e);
    }
    loader.load().await
}

impl AwsProvider {
    /// A provider over clients built from `sdk`.
    pub fn new(sdk: &SdkConfig, settings: AwsSettings, scrape: ScrapeSettings) -> Self {
        AwsProvider {
            autoscaling: aws_sdk_autoscaling::Client::new(sdk),
            ec2: aws_sdk_ec2::Client::new(sdk),
            cloudwatch: aws_sdk_cloudwatch::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            consume_events: true,
            scraper: Scraper::new(Duration::from_millis(scrape.timeout_ms)),
            resolver: Arc::new(|_, ip, port| (ip.to_string(), port)),
            settings,
            scrape,
            events: EventTracker::default(),
            events_read_at: None,
            previous_latency: HashMap::new(),
            recent_latency: HashMap::new(),
            rate_windows: HashMap::new(),
            failed_launches: BTreeMap::new(),
            drained: BTreeSet::new(),
            ips: HashMap::new(),
            spot_prices: HashMap::new(),
            warm_pools_applied: BTreeMap::new(),
            warm_pool_targets: BTreeMap::new(),
            group_units: HashMap::new(),
            warm_pools_described: HashMap::new(),
            suspended_processes: HashMap::new(),
            instance_fleets: HashMap::new(),
            unit_requests: HashMap::new(),
            stats: ProviderStats::default(),
        }
    }

    /// Scrape instances at other addresses than their private IPs (tests: loopback).
    pub fn with_resolver(mut self, resolver: TargetResolver) -> Self {
        self.resolver = resolver;
        self
    }

    /// What the event queue has told so far.
    pub fn events(&self) -> &EventTracker {
        &self.events
    }

    /// Drains the event queue into the tracker, once per tick.
    async fn read_events(&mut self, now: Timestamp) -> Result<(), ProviderError> {
        let Some(url) = self.settings.events_queue_url.clone() else {
            return Ok(());
        };
        if !self.consume_events {
            return Ok(());
        }
        if self.events_read_at == Some(now) {
            return Ok(());
        }
        self.events.expire(now);
        for _ in 0..MAX_EVENT_BATCHES {
            let out = sdk_call(
                &mut self.stats,
                "ReceiveMessage",
                "",
                self.sqs
                    .receive_message()
                    .queue_url(&url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(0)
                    .visibility_timeout(EVENT_VISIBILITY_SECS)
                    .send(),
            )
            .await?;
            let messages = out.messages();
            for m in messages {
                let (Some(body), Some(receipt)) = (m.body(), m.receipt_handle()) else {
                    continue;
                };
                match parse_event(body) {
                    Ok(ev) => {
                        let kind = self.events.record(ev, receipt.to_string(), now);
                        *self.stats.events_total.entry(kind).or_default() += 1;
                    }
                    Err(e) => {
                        // Left in the queue: after maxReceiveCount it moves to the dead-letter
                        // queue, where a human can read it. Nothing is lost.
                        self.stats.unreadable_events_total += 1;
                        error!(message_id = m.message_id().unwrap_or_default(), error = %e, "event message left in the queue");
                    }
                }
            }
            if messages.len() < 10 {
                break;
            }
        }
        self.events_read_at = Some(now);
        Ok(())
    }

    /// Failed launches of a group so far (cumulative in this process).
    async fn failed_launches(&mut self, asg: &str) -> Result<u64, ProviderError> {
        let out = sdk_call(
            &mut self.stats,
            "DescribeScalingActivities",
            asg,
            self.autoscaling
                .describe_scaling_activities()
                .auto_scaling_group_name(asg)
                .max_records(50)
                .send(),
        )
        .await?;
        let failed: BTreeSet<String> = out
            .activities()
            .iter()
            .filter(|a| a.status_code() == Some(&ScalingActivityStatusCode::Failed))
            .filter_map(|a| a.activity_id().map(str::to_string))
            .collect();
        let (seen, total) = self.failed_launches.entry(asg.to_string()).or_default();
        *total += failed.difference(seen).count() as u64;
        *seen = failed;
        Ok(*total)
    }

    /// Private IPs of instances: cached (an instance keeps its IP for life), so only new
    /// instances are described; the cache keeps only the instances asked about.
    async fn private_ips(&mut self, ids: &[String]) -> Result<(), ProviderError> {
        self.ips.retain(|id, _| ids.contains(id));
        let unknown: Vec<String> = ids
            .iter()
            .filter(|id| !self.ips.contains_key(*id))
            .cloned()
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let out = sdk_call(
            &mut self.stats,
            "DescribeInstances",
            "",
            self.ec2
                .describe_instances()
                .set_instance_ids(Some(unknown))
                .send(),
        )
        .await?;
        for i in out.reservations().iter().flat_map(|r| r.instances()) {
            if let (Some(id), Some(ip)) = (i.instance_id(), i.private_ip_address()) {
                self.ips.insert(id.to_string(), ip.to_string());
            }
        }
        Ok(())
    }

    /// Scrapes the instances in parallel; a failed target is logged and counted, and simply
    /// has no samples (the engine treats it as HPA treats a pod without metrics).
    async fn scrape_all(
        &mut self,
        targets: Vec<(String, String, u16)>,
    ) -> HashMap<(String, u16), Exposition> {
        let mut set = tokio::task::JoinSet::new();
        for (id, ip, port) in targets {
            let (host, p) = (self.resolver)(&id, &ip, port);
            let scraper = self.scraper.clone();
            let path = self.scrape.path.clone();
            set.spawn(async move { (id, port, scraper.scrape(&host, p, &path).await) });
        }
        let mut out = HashMap::new();
        while let Some(joined) = set.join_next().await {
            let Ok((id, port, result)) = joined else {
                continue;
            };
            self.stats.scrapes_total += 1;
            match result {
                Ok(e) => {
                    self.stats.scrape_bad_lines_total += e.bad_lines as u64;
                    out.insert((id, port), e);
                }
                Err(e) => {
                    self.stats.scrape_failures_total += 1;
                    warn!(instance = %id, error = %e, "scrape failed; the instance counts as unmeasured");
                }
            }
        }
        out
    }

    /// Fleet-level metrics from CloudWatch, SQS and Prometheus servers. A source that fails
    /// costs only its own metrics: their error goes into `errors` (the engine reports them
    /// invalid with it, which blocks a scale-down) and the fleet scales on the others.
    async fn fleet_metrics(
        &mut self,
        fleet: &Fleet,
        now: Timestamp,
    ) -> (BTreeMap<String, Sample>, BTreeMap<String, String>) {
        let mut out = BTreeMap::new();
        let mut errors = BTreeMap::new();
        let queries: Vec<cloudwatch::Query<'_>> = fleet
            .metrics
            .iter()
            .filter_map(|m| {
                let s = m.source.as_ref()?;
                matches!(s, MetricSource::Cloudwatch { .. }).then_some(cloudwatch::Query {
                    name: &m.name,
                    source: s,
                })
            })
            .collect();
        if !queries.is_empty() {
            let r = timed(
                &mut self.stats,
                "GetMetricData",
                cloudwatch::latest(&self.cloudwatch, &queries, now),
            )
            .await;
            match r {
                Ok(samples) => out.extend(samples),
                Err(e) => {
                    warn!(error = %e, "CloudWatch query failed; its metrics count as missing");
                    for q in &queries {
                        errors.insert(q.name.to_string(), e.to_string());
                    }
                }
            }
        }
        for m in &fleet.metrics {
            let result = match &m.source {
                Some(MetricSource::Sqs { queue_url }) => self.queue_depth(queue_url, now).await,
                Some(MetricSource::Promql { url, query }) => self
                    .scraper
                    .promql(url, query)
                    .await
                    .map(|(value, ts)| {
                        Some(Sample {
                            value,
                            at: Timestamp::from_secs_f64(ts),
                        })
                    })
                    .map_err(|e| ProviderError::Transient(format!("PromQL {url}: {e}"))),
                _ => continue,
            };
            match result {
                Ok(Some(sample)) => {
                    out.insert(m.name.clone(), sample);
                }
                Ok(None) => {}
                Err(e) => {
                    // A missing sample blocks scale-down and never causes one.
                    warn!(metric = %m.name, error = %e, "metric source failed; the metric counts as missing");
                    errors.insert(m.name.clone(), e.to_string());
                }
            }
        }
        (out, errors)
    }

    /// An SQS queue's visible + in-flight messages.
    async fn queue_depth(
        &mut self,
        queue_url: &str,
        now: Timestamp,
    ) -> Result<Option<Sample>, ProviderError> {
        let r = sdk_call(
            &mut self.stats,
            "GetQueueAttributes",
            queue_url,
            self.sqs
                .get_queue_attributes()
                .queue_url(queue_url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .send(),
        )
        .await?;
        let attrs = r.attributes();
        let get = |k: QueueAttributeName| {
            attrs
                .and_then(|a| a.get(&k))
                .and_then(|v| v.parse::<f64>().ok())
        };
        Ok(get(QueueAttributeName::ApproximateNumberOfMessages)
            .zip(get(
                QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            ))
            .map(|(visible, in_flight)| Sample {
                value: visible + in_flight,
                at: now,
            }))
    }

    /// Completes one terminate lifecycle action (CONTINUE) and deletes its message.
    async fn complete_lifecycle(&mut self, instance_id: &str) -> Result<(), ProviderError> {
        let Some(p) = self.events.lifecycle.get(instance_id).cloned() else {
            return Ok(());
        };
        let r = sdk_call(
            &mut self.stats,
            "CompleteLifecycleAction",
            instance_id,
            self.autoscaling
                .complete_lifecycle_action()
                .auto_scaling_group_name(&p.asg_name)
                .lifecycle_hook_name(&p.hook_name)
                .lifecycle_action_token(&p.token)
                .instance_id(instance_id)
                .lifecycle_action_result("CONTINUE")
                .send(),
        )
        .await;
        match r {
            Ok(_) => {}
            // The action expired or was completed already (a duplicate): nothing left to do.
            Err(ProviderError::Config(m)) if m.contains("No active Lifecycle Action") => {}
            Err(e) => return Err(e),
        }
        info!(instance = instance_id, asg = %p.asg_name, "drained; lifecycle action completed");
        self.stats.lifecycle_completed_total += 1;
        self.events.lifecycle.remove(instance_id);
        self.drained.remove(instance_id);
        if let (Some(url), Some(receipt)) = (self.settings.events_queue_url.clone(), p.receipt) {
            self.delete_message(&url, &receipt).await?;
        }
        Ok(())
    }

    async fn delete_message(&mut self, url: &str, receipt: &str) -> Result<(), ProviderError> {
        let r = sdk_call(
            &mut self.stats,
            "DeleteMessage",
            "",
            self.sqs
                .delete_message()
                .queue_url(url)
                .receipt_handle(receipt)
                .send(),
        )
        .await;
        r.map(|_| ())
    }

    /// An in-service instance's work from its server's exposition: the counters' rates over
    /// the last minute (kept per instance) and, when the server exposes its token counters,
    /// its `load` (rates and gauges now, what token_work reads). `None` on its first reading
    /// (a counter's first scrape gives no rate) or without any work counter.
    fn server_work(
        &mut self,
        id: &str,
        e: &scrape::Exposition,
        now: Timestamp,
    ) -> Option<(scrape::Rates, Option<ServerLoad>)> {
        let reading = scrape::counter_reading(e, now)?;
        let tokens = reading.tokens;
        let window = self.rate_windows.entry(id.to_string()).or_default();
        let rates = window.observe(reading)?;
        let (waiting, running, kv_cache_fraction) = scrape::server_gauges(e);
        let load = tokens.then_some(ServerLoad {
            prompt_tokens_per_sec: rates.prompt_tokens_per_sec,
            generation_tokens_per_sec: rates.generation_tokens_per_sec,
            requests_per_sec: rates.requests_per_sec,
            waiting,
            running,
            kv_cache_fraction,
            window_secs: rates.window_secs,
            at: now,
        });
        Some((rates, load))
    }

    /// Logs a change to the processes suspended on a pool's group: with `Launch` or
    /// `Terminate` suspended the pool is held where it is in that direction
    /// (`Snapshot::pool_bounds`), which the operator should hear once, not every tick.
    fn note_suspended(&mut self, pool: &Pool, now: &[String]) {
        let before = self
            .suspended_processes
            .get(&pool.asg_name)
            .map_or(&[][..], Vec::as_slice);
        if before == now {
            return;
        }
        if now.is_empty() {
            info!(pool = %pool.name, asg = %pool.asg_name, "the group's processes are resumed: the pool is scaled again");
        } else {
            warn!(pool = %pool.name, asg = %pool.asg_name, suspended = ?now,
                "processes suspended on the group: with Launch suspended the pool is not raised, with Terminate not lowered; the other pools take the difference");
        }
        self.suspended_processes
            .insert(pool.asg_name.clone(), now.to_vec());
    }

    /// Applies a pool's warm-pool settings when they differ from what was last applied.
    async fn reconcile_warm_pool(&mut self, pool: &Pool) -> Result<(), ProviderError> {
        let Some(w) = &pool.warm_pool else {
            return Ok(());
        };
        let min_size = self
            .warm_pool_targets
            .get(&pool.asg_name)
            .copied()
            .unwrap_or(w.min_size);
        let wanted = (min_size, w.max_prepared_units);
        if self.warm_pools_applied.get(&pool.asg_name) == Some(&wanted) {
            return Ok(());
        }
        // `max_prepared_units` is in units; the group counts instances (a warm pool's group
        // has no mixed instances policy). Not yet described: wait for the next tick.
        let Some(group_units) = self.group_units.get(&pool.asg_name).copied() else {
            return Ok(());
        };
        // PutWarmPool replaces the configuration: an omitted PoolState is Stopped and an
        // omitted InstanceReusePolicy terminates on scale-in (PutWarmPool, EC2 Auto Scaling
        // API Reference). The daemon owns the sizes; the rest is kept as the group has it, and
        // a warm pool the daemon creates gets the Terraform module's (stopped, reused).
        let (pool_state, reuse) = match self.warm_pools_described.get(&pool.asg_name) {
            Some(d) => (d.pool_state().cloned(), d.instance_reuse_policy().cloned()),
            None => (
                None,
                Some(
                    aws_sdk_autoscaling::types::InstanceReusePolicy::builder()
                        .reuse_on_scale_in(true)
                        .build(),
                ),
            ),
        };
        let r = sdk_call(
            &mut self.stats,
            "PutWarmPool",
            &pool.asg_name,
            self.autoscaling
                .put_warm_pool()
                .auto_scaling_group_name(&pool.asg_name)
                .min_size(min_size as i32)
                .set_max_group_prepared_capacity(
                    w.max_prepared_units.map(|u| group_units.to_group(u)),
                )
                .pool_state(
                    pool_state.unwrap_or(aws_sdk_autoscaling::types::WarmPoolState::Stopped),
                )
                .set_instance_reuse_policy(reuse)
                .send(),
        )
        .await;
        r?;
        info!(asg = %pool.asg_name, min_size, "warm pool set");
        self.warm_pools_applied
            .insert(pool.asg_name.clone(), wanted);
        Ok(())
    }
}

/// An Auto Scaling lifecycle state as the engine sees it; `None` for instances outside the
/// group's capacity (standby, detaching, warm pool).
pub fn lifecycle(state: &AsgLifecycle) -> Option<LifecycleState> {
    match state.as_str() {
        "Pending" | "Pending:Wait" | "Pending:Proceed" => Some(LifecycleState::Pending),
        "InService" => Some(LifecycleState::InService),
        "Terminating:Wait" => Some(LifecycleState::Draining),
        s if s.starts_with("Terminating") || s == "Terminated" => Some(LifecycleState::Terminating),
        _ => None,
    }
}

impl Provider for AwsProvider {
    fn stats(&self) -> ProviderStats {
        self.stats.clone()
    }

    async fn demand(
        &mut self,
        fleet: &Fleet,
        from_minute: i64,
        to_minute: i64,
    ) -> Result<Vec<(i64, f64)>, ProviderError> {
        let Some(source) = fleet.predictive.as_ref().and_then(|p| p.source.as_ref()) else {
            return Ok(Vec::new());
        };
        let started = Instant::now();
        let r = cloudwatch::history(&self.cloudwatch, source, from_minute, to_minute).await;
        let (calls, ok) = match &r {
            Ok((_, calls)) => (*calls, true),
            Err(_) => (1, false),
        };
        *self.stats.calls_total.entry("GetMetricData").or_default() += calls;
        *self
            .stats
            .call_seconds_total
            .entry("GetMetricData")
            .or_default() += started.elapsed().as_secs_f64();
        if !ok {
            *self.stats.errors_total.entry("GetMetricData").or_default() += 1;
        }
        r.map(|(points, _)| points)
    }

    async fn export(
        &mut self,
        settings: &crate::config::CloudWatchExport,
        points: &[crate::provider::ExportPoint],
    ) -> Result<(), ProviderError> {
        let started = Instant::now();
        let r = cloudwatch::put(&self.cloudwatch, settings, points).await;
        *self.stats.calls_total.entry("PutMetricData").or_default() += r.as_ref().map_or(1, |c| *c);
        *self
            .stats
            .call_seconds_total
            .entry("PutMetricData")
            .or_default() += started.elapsed().as_secs_f64();
        if r.is_err() {
            *self.stats.errors_total.entry("PutMetricData").or_default() += 1;
        }
        r.map(|_| ())
    }

    async fn unit_prices(
        &mut self,
        fleet: &Fleet,
        now: Timestamp,
    ) -> Result<BTreeMap<String, f64>, ProviderError> {
        let mut out = BTreeMap::new();
        for pool in fleet.pools.iter().filter(|p| p.market == Market::Spot) {
            let Some(t) = pool.instance_types.first() else {
                continue;
            };
            let fresh = self
                .spot_prices
                .get(&t.instance_type)
                .filter(|(_, at)| now.secs_since(*at) < SPOT_PRICE_TTL_SECS)
                .map(|(p, _)| *p);
            let price = match fresh {
                Some(p) => Some(p),
                None => {
                    let r = sdk_call(
                        &mut self.stats,
                        "DescribeSpotPriceHistory",
                        &t.instance_type,
                        self.ec2
                            .describe_spot_price_history()
                            .instance_types(t.instance_type.as_str().into())
                            .product_descriptions("Linux/UNIX")
                            .start_time(aws_sdk_ec2::primitives::DateTime::from_millis(
                                now.millis(),
                            ))
                            .send(),
                    )
                    .await?;
                    // The current price in each zone; the group may launch in any: the highest.
                    let price = r
                        .spot_price_history()
                        .iter()
                        .filter_map(|p| p.spot_price().and_then(|v| v.parse::<f64>().ok()))
                        .filter(|v| v.is_finite() && *v > 0.0)
                        .reduce(f64::max);
                    if let Some(p) = price {
                        self.spot_prices.insert(t.instance_type.clone(), (p, now));
                    }
                    price
                }
            };
            if let Some(p) = price {
                out.insert(pool.name.clone(), p / t.weight_units.max(1) as f64);
            }
        }
        Ok(out)
    }

    fn warm_pool_target(&mut self, _fleet: &Fleet, pool: &Pool, min_size: u32) {
        self.warm_pool_targets
            .insert(pool.asg_name.clone(), min_size);
    }

    async fn snapshot(&mut self, fleet: &Fleet, now: Timestamp) -> Result<Snapshot, ProviderError> {
        if let Err(e) = self.read_events(now).await {
            // The event queue is auxiliary: scaling goes on without it, and its messages wait
            // in the queue for the next tick.
            self.events_read_at = Some(now);
            warn!(error = %e, "reading the event queue failed; deciding without new events");
        }

        let names: Vec<String> = fleet.pools.iter().map(|p| p.asg_name.clone()).collect();
        let out = sdk_call(
            &mut self.stats,
            "DescribeAutoScalingGroups",
            "",
            self.autoscaling
                .describe_auto_scaling_groups()
                .set_auto_scaling_group_names(Some(names))
                .send(),
        )
        .await?;

        let mut snap = Snapshot::default();
        for pool in &fleet.pools {
            let group = out
                .auto_scaling_groups()
                .iter()
                .find(|g| g.auto_scaling_group_name() == Some(pool.asg_name.as_str()))
                .ok_or_else(|| {
                    ProviderError::NotFound(format!(
                        "Auto Scaling Group {} (pool {} of fleet {})",
                        pool.asg_name, pool.name, fleet.name
                    ))
                })?;
            let units = GroupUnits::of(pool, group_weights(group, None).0)
                .map_err(ProviderError::Config)?;
            self.group_units.insert(pool.asg_name.clone(), units);
            match group.warm_pool_configuration() {
                Some(w) => {
                    self.warm_pools_described
                        .insert(pool.asg_name.clone(), w.clone());
                }
                None => {
                    self.warm_pools_described.remove(&pool.asg_name);
                }
            }
            let sent = group.desired_capacity().unwrap_or(0);
            let desired = match self.unit_requests.get(&pool.asg_name) {
                Some(&(asked, s)) if s == sent => asked,
                _ => units.to_units(sent),
            };
            snap.pool_desired_units.insert(pool.name.clone(), desired);
            if let (Some(min), Some(max)) = (group.min_size(), group.max_size()) {
                // AWS rejects a desired capacity outside these: placement keeps inside them.
                snap.pool_group_bounds.insert(
                    pool.name.clone(),
                    crate::model::GroupBounds {
                        min_units: units.to_units(min),
                        max_units: units.to_units(max),
                    },
                );
            }
            let suspended = suspended_processes(group);
            self.note_suspended(pool, &suspended);
            if !suspended.is_empty() {
                snap.pool_suspended_processes
                    .insert(pool.name.clone(), suspended);
            }
            snap.desired_units += desired;
            for i in group.instances() {
                let (Some(id), Some(state)) =
                    (i.instance_id(), i.lifecycle_state().and_then(lifecycle))
                else {
                    continue;
                };
                let state = if self.events.lifecycle.contains_key(id)
                    && state != LifecycleState::Terminating
                {
                    LifecycleState::Draining
                } else if self.events.is_doomed(id)
                    && matches!(state, LifecycleState::InService | LifecycleState::Pending)
                {
                    LifecycleState::Interrupted
                } else {
                    state
                };
                snap.instances.push(Instance {
                    id: id.to_string(),
                    pool: pool.name.clone(),
                    weight_units: units.instance_weight(
                        pool,
                        i.instance_type(),
                        i.weighted_capacity(),
                        group_weights(group, i.instance_type()).1,
                    ),
                    state,
                    samples: BTreeMap::new(),
                    load: None,
                });
            }
            if pool.market == Market::Spot {
                // Auxiliary: on failure the count stays where it was (no new failures seen).
                let failed = match self.failed_launches(&pool.asg_name).await {
                    Ok(n) => n,
                    Err(e) => {
                        warn!(asg = %pool.asg_name, error = %e, "reading scaling activities failed; no new failed launches seen this tick");
                        self.failed_launches
                            .get(&pool.asg_name)
                            .map_or(0, |(_, n)| *n)
                    }
                };
                snap.pool_failed_launches.insert(pool.name.clone(), failed);
            }
        }

        // Which fleet each instance is in, for routing the event messages about it.
        for (id, fleet_name) in out
            .auto_scaling_groups()
            .iter()
            .filter(|g| {
                fleet
                    .pools
                    .iter()
                    .any(|p| g.auto_scaling_group_name() == Some(p.asg_name.as_str()))
            })
            .flat_map(|g| g.instances())
            .filter_map(|i| i.instance_id())
            .map(|id| (id.to_string(), fleet.name.clone()))
        {
            self.instance_fleets.insert(id, (fleet_name, now));
        }
        self.instance_fleets
            .retain(|_, (_, seen)| now.secs_since(*seen) < events::NOTICE_TTL_SECS);

        // Scrape targets: in-service instances for the per-instance signals and TTFT, draining
        // ones to see them finish.
        let mut ports: BTreeSet<u16> = BTreeSet::new();
        for m in &fleet.metrics {
            if m.signal.per_instance() || m.signal == Signal::TtftP95Secs {
                let port = match &m.source {
                    Some(MetricSource::Scrape { port: Some(p), .. }) => *p,
                    _ => self.scrape.port,
                };
                ports.insert(port);
            }
        }
        let draining: Vec<String> = snap
            .instances
            .iter()
            .filter(|i| i.state == LifecycleState::Draining)
            .map(|i| i.id.clone())
            .collect();
        if !draining.is_empty() {
            ports.insert(self.scrape.port);
        }
        let wanted: Vec<String> = snap
            .instances
            .iter()
            .filter(|i| {
                matches!(
                    i.state,
                    LifecycleState::InService | LifecycleState::Draining
                )
            })
            .map(|i| i.id.clone())
            .collect();
        if !ports.is_empty() {
            if let Err(e) = self.private_ips(&wanted).await {
                // New instances go unmeasured this tick (as HPA's pods without metrics).
                warn!(error = %e, "describing instances failed; new instances are not scraped this tick");
            }
        }
        let targets = wanted
            .iter()
            .filter_map(|id| self.ips.get(id).map(|ip| (id, ip)))
            .flat_map(|(id, ip)| ports.iter().map(move |p| (id.clone(), ip.clone(), *p)))
            .collect();
        let scraped = self.scrape_all(targets).await;

        let (mut ttft, mut queue_time) = (Histogram::default(), Histogram::default());
        for inst in snap
            .instances
            .iter_mut()
            .filter(|i| i.state == LifecycleState::InService)
        {
            // The inference server's own exposition (the default port): its work counters and
            // gauges (→ `load`, what token_work reads) and its latency histograms, read once.
            let server = scraped.get(&(inst.id.clone(), self.scrape.port));
            let work = server.and_then(|e| self.server_work(&inst.id, e, now));
            inst.load = work.and_then(|(_, load)| load);
            let rates = work.map(|(r, _)| r);
            for m in fleet.metrics.iter().filter(|m| m.signal.per_instance()) {
                let (metric, port, scale) = match &m.source {
                    Some(MetricSource::Scrape {
                        metric,
                        port,
                        scale,
                    }) => (metric.as_deref(), port.unwrap_or(self.scrape.port), *scale),
                    _ => (None, self.scrape.port, None),
                };
                let tokens = inst.load.is_some();
                let rate = |f: fn(&scrape::Rates) -> f64| {
                    rates.as_ref().map(|r| f(r) * scale.unwrap_or(1.0))
                };
                let value = match (m.signal, metric) {
                    // token_work is computed from `load` by the engine.
                    (Signal::TokenWork, _) => continue,
                    // Rates need two readings: none on an instance's first scrape.
                    (Signal::RequestRate, None) => rate(|r| r.requests_per_sec),
                    (Signal::PromptTokensRate, None) if tokens => rate(|r| r.prompt_tokens_per_sec),
                    (Signal::GenerationTokensRate, None) if tokens => {
                        rate(|r| r.generation_tokens_per_sec)
                    }
                    (Signal::PromptTokensRate | Signal::GenerationTokensRate, None) => None,
                    _ => scraped
                        .get(&(inst.id.clone(), port))
                        .and_then(|e| scrape::instance_value(e, m.signal, metric, scale)),
                };
                if let Some(value) = value {
                    inst.samples
                        .insert(m.name.clone(), Sample { value, at: now });
                }
            }
            if let Some(e) = server {
                let mut reading = scrape::LatencyReading {
                    at: now,
                    ttft: e.histograms(scrape::TTFT_HISTOGRAM),
                    queue_time: e
                        .histograms(scrape::QUEUE_TIME_HISTOGRAM)
                        .or_else(|| e.histograms(scrape::TGI_QUEUE_TIME_HISTOGRAM)),
                };
                if let Some(before) = self.previous_latency.get(&inst.id) {
                    let (t, q) = reading.since(before);
                    ttft.merge(&t);
                    queue_time.merge(&q);
                    reading.carry_over(before);
                }
                self.previous_latency.insert(inst.id.clone(), reading);
            }
        }
        let live: BTreeSet<&str> = snap.instances.iter().map(|i| i.id.as_str()).collect();
        self.previous_latency
            .retain(|id, _| live.contains(id.as_str()));
        self.rate_windows.retain(|id, _| live.contains(id.as_str()));
        // The fleet's latency over the last minute (the requests that got their first token,
        // and left the queue, in it), for the capacity model's correction and ttft_p95_secs.
        let recent = self.recent_latency.entry(fleet.name.clone()).or_default();
        recent.push_back((now, ttft, queue_time));
        recent.retain(|(t, _, _)| now.secs_since(*t) < crate::model::RATE_WINDOW_SECS);
        let (mut ttft, mut queue_time) = (Histogram::default(), Histogram::default());
        for (_, t, q) in recent.iter() {
            ttft.merge(t);
            queue_time.merge(q);
        }
        snap.latency = scrape::fleet_latency(&ttft, &queue_time, now);

        // Drain: a terminating instance is released once it runs nothing, or at the timeout.
        for id in draining {
            let Some(p) = self.events.lifecycle.get(&id) else {
                continue;
            };
            let running = scraped
                .get(&(id.clone(), self.scrape.port))
                .and_then(scrape::running_requests);
            let waited = now.secs_since(p.since);
            if running == Some(0.0) || waited >= self.settings.drain_timeout_secs as f64 {
                debug!(instance = %id, ?running, waited, "drained");
                self.drained.insert(id);
            }
        }

        let (mut fleet_metrics, metric_errors) = self.fleet_metrics(fleet, now).await;
        snap.metric_errors = metric_errors;
        for m in fleet
            .metrics
            .iter()
            .filter(|m| m.signal == Signal::TtftP95Secs && m.source.is_none())
        {
            // Only requests that got their first token within the last minute.
            if let Some(p95) = ttft.quantile(0.95) {
                fleet_metrics.insert(
                    m.name.clone(),
                    Sample {
                        value: p95,
                        at: now,
                    },
                );
            }
        }
        snap.fleet_metrics = fleet_metrics;
        Ok(snap)
    }

    async fn set_desired(
        &mut self,
        fleet: &Fleet,
        pool: &Pool,
        units: Units,
    ) -> Result<(), ProviderError> {
        // The group is always described in the same tick before it is set.
        let Some(group_units) = self.group_units.get(&pool.asg_name).copied() else {
            return Err(ProviderError::Config(format!(
                "group {} (fleet {}) was set before it was described: how it counts capacity is unknown",
                pool.asg_name, fleet.name
            )));
        };
        let sent = group_units.to_group(units);
        let r = sdk_call(
            &mut self.stats,
            "SetDesiredCapacity",
            &format!("{} (fleet {})", pool.asg_name, fleet.name),
            self.autoscaling
                .set_desired_capacity()
                .auto_scaling_group_name(&pool.asg_name)
                .desired_capacity(sent)
                .honor_cooldown(false)
                .send(),
        )
        .await;
        r?;
        self.unit_requests
            .insert(pool.asg_name.clone(), (units, sent));
        Ok(())
    }

    async fn holds_desired(
        &mut self,
        fleet: &Fleet,
        pool: &Pool,
        units: Units,
    ) -> Result<bool, ProviderError> {
        let Some(group_units) = self.group_units.get(&pool.asg_name).copied() else {
            return Ok(false);
        };
        let sent = group_units.to_group(units);
        let out = sdk_call(
            &mut self.stats,
            "DescribeAutoScalingGroups",
            &format!("{} (fleet {})", pool.asg_name, fleet.name),
            self.autoscaling
                .describe_auto_scaling_groups()
                .auto_scaling_group_names(&pool.asg_name)
                .send(),
        )
        .await?;
        let desired = out
            .auto_scaling_groups()
            .first()
            .and_then(|g| g.desired_capacity());
        let landed = desired == Some(sent);
        if landed {
            // As a set that answered: the group's count is what `units` asked for.
            self.unit_requests
                .insert(pool.asg_name.clone(), (units, sent));
        }
        Ok(landed)
    }

    async fn lease_read(
        &mut self,
        ha: &crate::config::HaSettings,
    ) -> Result<Option<crate::lease::LeaseRecord>, ProviderError> {
        lease::read(&self.dynamodb, &mut self.stats, ha).await
    }

    async fn lease_write(
        &mut self,
        ha: &crate::config::HaSettings,
        new: &crate::lease::LeaseRecord,
        expected: Option<&crate::lease::LeaseRecord>,
    ) -> Result<bool, ProviderError> {
        lease::write(&self.dynamodb, &mut self.stats, ha, new, expected).await
    }

    fn consume_events(&mut self, on: bool) {
        // Losing the lead: what this daemon applied or drained may be changed by the other
        // daemon meanwhile — forget it, so that leading again re-applies rather than trusts it.
        if self.consume_events && !on {
            self.warm_pools_applied.clear();
            self.drained.clear();
        }
        self.consume_events = on;
    }

    async fn end_tick(
        &mut self,
        fleets: &[Fleet],
        dry_run: bool,
        acted: &BTreeSet<String>,
    ) -> Result<(), ProviderError> {
        if dry_run {
            // Nothing is acted on, so nothing is handled: the messages come back after their
            // visibility timeout and are read again.
            self.events.to_delete.clear();
            return Ok(());
        }
        // A message whose fleet did not act (its tick failed) is kept for the next tick that
        // acts; one about no known instance waits for every fleet to act.
        let every_fleet_acted = fleets.iter().all(|f| acted.contains(&f.name));
        let (to_delete, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.events.to_delete)
            .into_iter()
            .partition(|(_, instance)| {
                match instance
                    .as_ref()
                    .and_then(|id| self.instance_fleets.get(id))
                {
                    Some((fleet, _)) => acted.contains(fleet),
                    None => every_fleet_acted,
                }
            });
        self.events.to_delete = kept;
        let mut first_error = None;
        // Lifecycle actions of instances that are gone from every fleet are released at the
        // drain timeout: nothing of ours can drain them, and holding them only delays AWS.
        // Those of instances that serve nothing (leaving the warm pool) are released at once.
        let now = self.events_read_at.unwrap_or_default();
        let timeout = self.settings.drain_timeout_secs as f64;
        let overdue: Vec<String> = self
            .events
            .lifecycle
            .iter()
            .filter(|(_, p)| !p.serving || now.secs_since(p.since) >= timeout)
            .map(|(id, _)| id.clone())
            .collect();
        let release: BTreeSet<String> = self.drained.iter().cloned().chain(overdue).collect();
        for id in release {
            if let Err(e) = self.complete_lifecycle(&id).await {
                warn!(instance = %id, error = %e, "completing the lifecycle action failed; retrying next tick");
                first_error.get_or_insert(e);
            }
        }
        if let Some(url) = self.settings.events_queue_url.clone() {
            for (receipt, _) in to_delete {
                if let Err(e) = self.delete_message(&url, &receipt).await {
                    // It comes back after its visibility timeout and is folded in again.
                    warn!(error = %e, "deleting a handled event message failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        for pool in fleets
            .iter()
            .flat_map(|f| &f.pools)
            .filter(|p| p.market == Market::OnDemand)
        {
            if let Err(e) = self.reconcile_warm_pool(pool).await {
                warn!(asg = %pool.asg_name, error = %e, "setting the warm pool failed; retrying next tick");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call is counted as it starts and timed as it ends; one the daemon's timeout drops
    /// unfinished is a failure, its seconds those it ran.
    #[tokio::test(start_paused = true)]
    async fn calls_are_counted_whether_they_end_or_are_cut_off() {
        let mut stats = ProviderStats::default();
        let ok = timed(&mut stats, "A", async { Ok::<_, ()>(()) }).await;
        assert_eq!(ok, Ok(()));
        let err = timed(&mut stats, "A", async { Err::<(), _>(()) }).await;
        assert_eq!(err, Err(()));
        let cut = tokio::time::timeout(
            Duration::from_secs(10),
            timed(&mut stats, "B", std::future::pending::<Result<(), ()>>()),
        )
        .await;
        assert!(cut.is_err(), "the timeout ends it");
        assert_eq!(stats.calls_total.get("A"), Some(&2));
        assert_eq!(stats.errors_total.get("A"), Some(&1));
        assert_eq!(
            stats.calls_total.get("B"),
            Some(&1),
            "cut off: still a call"
        );
        assert_eq!(stats.errors_total.get("B"), Some(&1), "cut off: a failure");
        let secs = stats.call_seconds_total.get("B").copied().unwrap_or(0.0);
        assert!(
            (secs - 10.0).abs() < 0.5,
            "its seconds are those it ran: {secs}"
        );
    }

    #[test]
    fn lifecycle_states_map_like_hpa_pod_groups() {
        let table = [
            ("Pending", Some(LifecycleState::Pending)),
            ("Pending:Wait", Some(LifecycleState::Pending)),
            ("InService", Some(LifecycleState::InService)),
            ("Terminating:Wait", Some(LifecycleState::Draining)),
            ("Terminating:Proceed", Some(LifecycleState::Terminating)),
            ("Terminating", Some(LifecycleState::Terminating)),
            ("Standby", None),
            ("Warmed:Stopped", None),
            ("Detaching", None),
        ];
        for (s, want) in table {
            assert_eq!(lifecycle(&AsgLifecycle::from(s)), want, "{s}");
        }
    }
}
