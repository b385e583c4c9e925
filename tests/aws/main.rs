//! The daemon against AWS's wire protocol: `moto_server` on loopback holds a launch template,
//! an on-demand and a spot Auto Scaling Group (capacity rebalance on), SQS queues and CloudWatch
//! metrics; a fault-injecting proxy in front of it covers what moto lacks (see `harness`).
//!
//! Ticks are driven one at a time (no paused time: the calls are real network I/O).

#![cfg(feature = "aws")]

mod harness;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_autoscaling::types::{
    InstancesDistribution, LaunchTemplate, LaunchTemplateOverrides, LaunchTemplateSpecification,
    MixedInstancesPolicy,
};
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use aws_sdk_ec2::types::RequestLaunchTemplateData;
use aws_sdk_sqs::types::QueueAttributeName;
use harness::{FakeVllm, Fault, Proxy};
use llm_autoscaler::aws::AwsProvider;
use llm_autoscaler::config::{self, Config, Fleet};
use llm_autoscaler::controller::PoolOutcome;
use llm_autoscaler::daemon::{Clock, Daemon, Options, Published};
use llm_autoscaler::engine::{ConditionType, Reason};
use llm_autoscaler::model::{LifecycleState, Timestamp};
use llm_autoscaler::policy::hpa::MetricStatus;
use llm_autoscaler::provider::Provider;
use llm_autoscaler::store::StateStore;
use tokio::sync::watch;

/// One test's world: its own groups and queues in the shared moto, its own proxy and fake vLLM.
struct Bench {
    name: String,
    dir: PathBuf,
    proxy: Proxy,
    vllm: FakeVllm,
    asg: aws_sdk_autoscaling::Client,
    sqs: aws_sdk_sqs::Client,
    cw: aws_sdk_cloudwatch::Client,
    requests_url: String,
    events_url: String,
}

impl Bench {
    async fn new(name: &str) -> Bench {
        let moto = harness::moto();
        let direct = harness::sdk(&moto).await;
        let asg = aws_sdk_autoscaling::Client::new(&direct);
        let ec2 = aws_sdk_ec2::Client::new(&direct);
        let sqs = aws_sdk_sqs::Client::new(&direct);
        let cw = aws_sdk_cloudwatch::Client::new(&direct);
        let lt = format!("{name}-lt");
        ec2.create_launch_template()
            .launch_template_name(&lt)
            .launch_template_data(
                RequestLaunchTemplateData::builder()
                    .image_id("ami-12c6146b")
                    .instance_type("g6.xlarge".into())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let spec = || {
            LaunchTemplateSpecification::builder()
                .launch_template_name(&lt)
                .version("$Latest")
                .build()
        };
        asg.create_auto_scaling_group()
            .auto_scaling_group_name(format!("{name}-od"))
            .launch_template(spec())
            .min_size(0)
            .max_size(40)
            .desired_capacity(2)
            .availability_zones("us-east-1a")
            .send()
            .await
            .unwrap();
        asg.create_auto_scaling_group()
            .auto_scaling_group_name(format!("{name}-spot"))
            .mixed_instances_policy(
                MixedInstancesPolicy::builder()
                    .launch_template(
                        LaunchTemplate::builder()
                            .launch_template_specification(spec())
                            .overrides(
                                LaunchTemplateOverrides::builder()
                                    .instance_type("g6.xlarge")
                                    .weighted_capacity("1")
                                    .build(),
                            )
                            .build(),
                    )
                    .instances_distribution(
                        InstancesDistribution::builder()
                            .on_demand_base_capacity(0)
                            .on_demand_percentage_above_base_capacity(0)
                            .spot_allocation_strategy("price-capacity-optimized")
                            .build(),
                    )
                    .build(),
            )
            .capacity_rebalance(true)
            .min_size(0)
            .max_size(40)
            .desired_capacity(2)
            .availability_zones("us-east-1a")
            .send()
            .await
            .unwrap();
        let queue = |q: String| {
            let sqs = sqs.clone();
            async move {
                sqs.create_queue()
                    .queue_name(q)
                    .send()
                    .await
                    .unwrap()
                    .queue_url()
                    .unwrap()
                    .to_string()
            }
        };
        let requests_url = queue(format!("{name}-requests")).await;
        let events_url = queue(format!("{name}-events")).await;
        let dir =
            std::env::temp_dir().join(format!("llm-autoscaler-aws-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Bench {
            name: name.into(),
            dir,
            proxy: Proxy::start(moto).await,
            vllm: FakeVllm::start().await,
            asg,
            sqs,
            cw,
            requests_url,
            events_url,
        }
    }

    /// The policy: 2 on-demand units always, the rest spot; SQS depth 5 per unit, vLLM queue
    /// 10 per unit; an optional extra metric table.
    fn policy(&self, extra: &str) -> PathBuf {
        self.policy_sized(
            "min_units = 2\nmax_units = 30\non_demand_base_units = 2",
            extra,
        )
    }

    /// [`Bench::policy`] with other fleet size keys (`min_units`, `max_units`,
    /// `on_demand_base_units`).
    fn policy_sized(&self, sizes: &str, extra: &str) -> PathBuf {
        let text = format!(
            r#"[global]
tick_secs = 15
state_dir = "{dir}"
provider = "aws"
[global.aws]
region = "us-east-1"
endpoint_url = "{proxy}"
events_queue_url = "{events}"
drain_timeout_secs = 300

[[fleets]]
name = "{name}"
{sizes}
[[fleets.pools]]
name = "od"
asg_name = "{name}-od"
market = "on-demand"
instance_types = [{{ type = "g6.xlarge" }}]
[fleets.pools.warm_pool]
min_size = 1
[[fleets.pools]]
name = "spot"
asg_name = "{name}-spot"
market = "spot"
instance_types = [{{ type = "g6.xlarge" }}]
[[fleets.metrics]]
signal = "external_queue_depth"
target = {{ type = "AverageValue", average_value = 5 }}
source = {{ type = "sqs", queue_url = "{requests}" }}
[[fleets.metrics]]
signal = "queue_depth"
target = {{ type = "AverageValue", average_value = 10 }}
{extra}
[fleets.panic]
enabled = false
"#,
            dir = self.dir.display(),
            proxy = self.proxy.url,
            events = self.events_url,
            requests = self.requests_url,
            name = self.name,
        );
        let path = self.dir.join("policy.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A provider through the proxy; every instance is scraped at the fake vLLM.
    async fn provider(&self, cfg: &Config) -> AwsProvider {
        let sdk = harness::sdk(&self.proxy.url).await;
        let addr = self.vllm.addr;
        AwsProvider::new(&sdk, cfg.global.aws.clone(), cfg.global.scrape.clone()).with_resolver(
            Arc::new(move |_, _, _| (addr.ip().to_string(), addr.port())),
        )
    }

    /// The policy with `extra`, its fleet, and a provider for it: to observe without a daemon.
    async fn observer(&self, extra: &str) -> (PathBuf, Fleet, AwsProvider) {
        let path = self.policy(extra);
        let cfg = config::load(&path).unwrap();
        let provider = self.provider(&cfg).await;
        (path, cfg.fleets[0].clone(), provider)
    }

    async fn daemon(&self, path: &Path, dry_run: bool) -> Daemon<AwsProvider> {
        self.daemon_through(path, dry_run, &self.proxy.url).await
    }

    /// [`Bench::daemon`] reaching AWS through `endpoint` (another proxy).
    async fn daemon_through(
        &self,
        path: &Path,
        dry_run: bool,
        endpoint: &str,
    ) -> Daemon<AwsProvider> {
        let cfg = config::load(path).unwrap();
        let addr = self.vllm.addr;
        let provider = AwsProvider::new(
            &harness::sdk(endpoint).await,
            cfg.global.aws.clone(),
            cfg.global.scrape.clone(),
        )
        .with_resolver(Arc::new(move |_, _, _| {
            (addr.ip().to_string(), addr.port())
        }));
        let store = StateStore::open(&cfg.global.state_dir).unwrap();
        let (tx, _rx) = watch::channel(Arc::new(Published::default()));
        let opts = Options {
            config_path: path.to_path_buf(),
            interval: Duration::from_secs(15),
            // Each tick is 15 s later, as a real daemon's: HPA's rate policies (per 15 s) see
            // the ticks a real fleet would, however fast the test runs them.
            clock: Clock::Virtual {
                epoch: now(),
                tick_secs: 15.0,
            },
            call_timeout: Duration::from_secs(20),
            dry_run,
            price_profiles: llm_autoscaler::sim::perf::builtin(),
        };
        Daemon::new(cfg, provider, store, opts, tx).unwrap()
    }

    async fn desired(&self) -> (u32, u32) {
        let out = self
            .asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(format!("{}-od", self.name))
            .auto_scaling_group_names(format!("{}-spot", self.name))
            .send()
            .await
            .unwrap();
        let get = |suffix: &str| {
            out.auto_scaling_groups()
                .iter()
                .find(|g| g.auto_scaling_group_name() == Some(&format!("{}-{suffix}", self.name)))
                .and_then(|g| g.desired_capacity())
                .unwrap() as u32
        };
        (get("od"), get("spot"))
    }

    /// The on-demand group's warm pool, as AWS describes it.
    async fn warm_pool(&self) -> Option<aws_sdk_autoscaling::types::WarmPoolConfiguration> {
        self.asg
            .describe_warm_pool()
            .auto_scaling_group_name(format!("{}-od", self.name))
            .send()
            .await
            .unwrap()
            .warm_pool_configuration()
            .cloned()
    }

    async fn spot_instance(&self) -> String {
        let out = self
            .asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(format!("{}-spot", self.name))
            .send()
            .await
            .unwrap();
        out.auto_scaling_groups()[0].instances()[0]
            .instance_id()
            .unwrap()
            .to_string()
    }

    /// Ids of the spot group's instances.
    async fn spot_instances(&self) -> Vec<String> {
        let out = self
            .asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(format!("{}-spot", self.name))
            .send()
            .await
            .unwrap();
        out.auto_scaling_groups()[0]
            .instances()
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect()
    }

    /// EC2 reclaims a spot instance: it leaves the group, which replaces it (moto's
    /// replacement is in service at once).
    async fn reclaim(&self, instance: &str) {
        self.asg
            .terminate_instance_in_auto_scaling_group()
            .instance_id(instance)
            .should_decrement_desired_capacity(false)
            .send()
            .await
            .unwrap();
    }

    /// A spot interruption warning for `instance`.
    async fn warn_spot(&self, instance: &str) {
        self.send_event(
            "EC2 Spot Instance Interruption Warning",
            &format!(r#"{{"instance-id":"{instance}","instance-action":"terminate"}}"#),
        )
        .await;
    }

    /// Every `SetDesiredCapacity` that went through, as (group suffix, units).
    fn sets(&self) -> Vec<(String, u32)> {
        let prefix = format!("{}-", self.name);
        self.proxy.with(|s| {
            s.set_desired
                .iter()
                .map(|(g, u)| (g.trim_start_matches(&prefix).to_string(), *u))
                .collect()
        })
    }

    /// One `RequestCount` datapoint per minute (minutes since the epoch), 500 per call.
    async fn put_per_minute(
        &self,
        namespace: &str,
        dimension: Option<(&str, &str)>,
        minutes: &[i64],
        value: impl Fn(i64) -> f64,
    ) {
        for chunk in minutes.chunks(500) {
            let mut put = self.cw.put_metric_data().namespace(namespace);
            for m in chunk {
                put = put.metric_data(
                    MetricDatum::builder()
                        .metric_name("RequestCount")
                        .set_dimensions(
                            dimension
                                .map(|(n, v)| vec![Dimension::builder().name(n).value(v).build()]),
                        )
                        .timestamp(DateTime::from_millis(m * 60_000))
                        .value(value(*m))
                        .build(),
                );
            }
            put.send().await.unwrap();
        }
    }

    async fn fill_requests(&self, n: usize) {
        for chunk in (0..n).collect::<Vec<_>>().chunks(10) {
            let mut batch = self.sqs.send_message_batch().queue_url(&self.requests_url);
            for i in chunk {
                batch = batch.entries(
                    aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                        .id(format!("m{i}"))
                        .message_body("{\"prompt\":\"hi\"}")
                        .build()
                        .unwrap(),
                );
            }
            batch.send().await.unwrap();
        }
    }

    async fn send_event(&self, detail_type: &str, detail: &str) {
        let body = format!(
            r#"{{"version":"0","id":"x","detail-type":"{detail_type}","source":"aws.ec2","time":"2026-11-30T07:00:00Z","region":"us-east-1","resources":[],"detail":{detail}}}"#
        );
        self.sqs
            .send_message()
            .queue_url(&self.events_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    /// Messages in the event queue, visible + in flight.
    /// Puts a terminate lifecycle hook (`drain`) on the spot group, through the proxy, which
    /// then holds each instance a scale-in removes in `Terminating:Wait`, as AWS does.
    async fn put_terminate_hook(&self) {
        let asg = aws_sdk_autoscaling::Client::new(&harness::sdk(&self.proxy.url).await);
        asg.put_lifecycle_hook()
            .auto_scaling_group_name(format!("{}-spot", self.name))
            .lifecycle_hook_name("drain")
            .lifecycle_transition("autoscaling:EC2_INSTANCE_TERMINATING")
            .default_result("CONTINUE")
            .heartbeat_timeout(300)
            .send()
            .await
            .unwrap();
    }

    /// Scales the spot group in by one behind the daemon's back (as a rebalance does) and
    /// returns the instance removed with the terminate lifecycle event AWS would send for it
    /// (its token the one the proxy accepts).
    async fn scale_in_one_spot(&self) -> (String, String) {
        let group = format!("{}-spot", self.name);
        let before = self.spot_instances().await;
        self.asg
            .set_desired_capacity()
            .auto_scaling_group_name(&group)
            .desired_capacity(before.len() as i32 - 1)
            .send()
            .await
            .unwrap();
        let after = self.spot_instances().await;
        let gone = before.iter().find(|i| !after.contains(i)).unwrap().clone();
        let token = harness::lifecycle_token(&group, &gone);
        let detail = format!(
            r#"{{"LifecycleActionToken":"{token}","AutoScalingGroupName":"{group}","LifecycleHookName":"drain","EC2InstanceId":"{gone}","LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING"}}"#
        );
        (gone, detail)
    }

    async fn events_left(&self) -> u64 {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.events_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        let a = out.attributes().unwrap();
        a[&QueueAttributeName::ApproximateNumberOfMessages]
            .parse::<u64>()
            .unwrap()
            + a[&QueueAttributeName::ApproximateNumberOfMessagesNotVisible]
                .parse::<u64>()
                .unwrap()
    }
}

fn now() -> Timestamp {
    Timestamp::from_datetime(&chrono::Utc::now())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desired_capacity_follows_the_queue_split_by_market_and_warm_pool_is_set() {
    let b = Bench::new("follow").await;
    let path = b.policy("");
    let mut d = b.daemon(&path, false).await;
    b.fill_requests(40).await;
    d.tick().await;
    let st = &d.published().fleets["follow"];
    let decision = st.decision.as_ref().expect("a decision");
    // 40 messages at 5 per unit: 8 units, 2 of them the on-demand base.
    assert_eq!(decision.desired_units, 8, "{}", decision.summary);
    assert!(st.applied);
    assert_eq!(b.desired().await, (2, 6));
    // Every in-service instance was scraped at the fake vLLM (4 before the change).
    let in_service = decision.in_service_units;
    assert_eq!(in_service, 4, "{}", decision.summary);
    let m = decision
        .metrics
        .iter()
        .find(|m| m.name == "queue_depth")
        .unwrap();
    assert_eq!(m.status, MetricStatus::Valid, "{m:?}");
    assert_eq!((m.ready_units, m.missing_units), (4, 0), "{m:?}");
    let metrics = llm_autoscaler::telemetry::render_metrics(d.published());
    for line in [
        "llm_autoscaler_aws_calls_total{api=\"SetDesiredCapacity\"} 1",
        "llm_autoscaler_aws_calls_total{api=\"GetQueueAttributes\"} 1",
        "llm_autoscaler_pool_in_service_units{fleet=\"follow\",pool=\"spot\",market=\"spot\"} 2",
        "llm_autoscaler_scrapes_total 4",
        "llm_autoscaler_scrape_failures_total 0",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    // Unchanged pools are not set again.
    let sets = b.proxy.with(|s| s.set_desired.len());
    d.tick().await;
    assert_eq!(b.proxy.with(|s| s.set_desired.len()), sets);
    assert_eq!(b.desired().await, (2, 6));
    let warm = b.warm_pool().await;
    assert_eq!(warm.as_ref().and_then(|w| w.min_size()), Some(1));
    // Created by the daemon, it is the Terraform module's: instances return to it on scale-in.
    assert_eq!(
        warm.as_ref()
            .and_then(|w| w.instance_reuse_policy())
            .and_then(|r| r.reuse_on_scale_in()),
        Some(true)
    );
    // The inference servers' own queues now ask for more: 25 waiting on each of 8 instances
    // at 10 per unit wants 20 units. HPA's rate limit (4 units or 100 % per 15 s) allows 16
    // from the 8 of this period's start; panic is off in this policy, so a fresh engine does
    // not bypass the user's rate policies (HPA's TestUpscaleCap) — 20 comes a tick later.
    b.vllm
        .waiting
        .store(25, std::sync::atomic::Ordering::SeqCst);
    d.tick().await;
    let decision = d.published().fleets["follow"].decision.clone().unwrap();
    let m = decision
        .metrics
        .iter()
        .find(|m| m.name == "queue_depth")
        .unwrap();
    assert_eq!(
        (m.current, m.recommendation),
        (Some(25.0), Some(20)),
        "{m:?}"
    );
    assert_eq!(
        (decision.stages.rate_limited, decision.desired_units),
        (Some(16), 16),
        "{}",
        decision.summary
    );
    assert!(decision.has(Reason::ScaleUpLimit), "{}", decision.summary);
    assert_eq!(b.desired().await, (2, 14));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_changes_nothing() {
    let b = Bench::new("dryrun").await;
    let path = b.policy("");
    let mut d = b.daemon(&path, true).await;
    b.fill_requests(40).await;
    let spot = b.spot_instance().await;
    b.send_event(
        "EC2 Spot Instance Interruption Warning",
        &format!(r#"{{"instance-id":"{spot}","instance-action":"terminate"}}"#),
    )
    .await;
    for _ in 0..3 {
        d.tick().await;
    }
    let st = &d.published().fleets["dryrun"];
    assert_eq!(st.decision.as_ref().unwrap().desired_units, 8);
    assert!(!st.applied);
    assert_eq!(b.desired().await, (2, 2), "dry-run set a desired capacity");
    b.proxy.with(|s| {
        assert!(!s.passed.contains_key("SetDesiredCapacity"));
        assert!(!s.passed.contains_key("PutWarmPool"));
        assert!(!s.passed.contains_key("DeleteMessage"));
    });
    assert_eq!(b.events_left().await, 1, "dry-run deleted an event message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interruption_raises_on_demand_in_the_same_tick_and_its_message_goes_only_after() {
    let b = Bench::new("interrupt").await;
    let path = b.policy("");
    let mut d = b.daemon(&path, false).await;
    b.fill_requests(40).await;
    d.tick().await;
    assert_eq!(b.desired().await, (2, 6));
    let spot = b.spot_instance().await;
    b.send_event(
        "EC2 Spot Instance Interruption Warning",
        &format!(r#"{{"instance-id":"{spot}","instance-action":"terminate"}}"#),
    )
    .await;
    // The tick that reads the warning fails to apply (three 500s outlast the SDK's retries):
    // the message must stay.
    b.proxy.inject(
        "SetDesiredCapacity",
        &[Fault::ServerError, Fault::ServerError, Fault::ServerError],
    );
    d.tick().await;
    assert_eq!(b.desired().await, (2, 6));
    assert_eq!(b.events_left().await, 1, "deleted before it was acted on");
    assert_eq!(
        d.published().fleets["interrupt"]
            .provider_errors_total
            .get("transient"),
        Some(&1)
    );
    // The backoff skips one tick; the next acts: on-demand covers the doomed spot unit at once.
    d.tick().await;
    d.tick().await;
    let st = &d.published().fleets["interrupt"];
    let decision = st.decision.as_ref().unwrap();
    assert!(st.applied, "{}", decision.summary);
    assert_eq!(
        decision
            .condition(ConditionType::MarketFallback)
            .map(|c| c.reason),
        Some(Reason::SpotInterrupted),
        "{}",
        decision.summary
    );
    assert_eq!(b.desired().await, (3, 6), "{}", decision.summary);
    assert_eq!(b.events_left().await, 0, "a handled message stayed");
    assert_eq!(
        d.provider().stats.events_total.get("spot_interruption"),
        Some(&1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_actions_are_completed_once_the_instance_has_drained() {
    let b = Bench::new("drain").await;
    b.put_terminate_hook().await;
    let path = b.policy("");
    let mut d = b.daemon(&path, false).await;
    d.tick().await;
    let (spot, detail) = b.scale_in_one_spot().await;
    b.vllm.running.store(3, std::sync::atomic::Ordering::SeqCst);
    b.send_event("EC2 Instance-terminate Lifecycle Action", &detail)
        .await;
    // A duplicate delivery must change nothing.
    b.send_event("EC2 Instance-terminate Lifecycle Action", &detail)
        .await;
    d.tick().await;
    assert!(
        b.proxy.with(|s| s.lifecycle_calls.is_empty()),
        "completed while requests ran"
    );
    assert_eq!(b.events_left().await, 2);
    let fleet = d.config().fleets[0].clone();
    let snap = d.provider_mut().snapshot(&fleet, now()).await.unwrap();
    let state = snap.instances.iter().find(|i| i.id == spot).unwrap().state;
    assert_eq!(state, LifecycleState::Draining);

    b.vllm.running.store(0, std::sync::atomic::Ordering::SeqCst);
    d.tick().await;
    let done = b.proxy.with(|s| s.completed_lifecycle.clone());
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(
        done[0]["LifecycleActionToken"],
        harness::lifecycle_token("drain-spot", &spot)
    );
    assert_eq!(done[0]["InstanceId"], spot);
    assert_eq!(done[0]["LifecycleActionResult"], "CONTINUE");
    assert_eq!(done[0]["AutoScalingGroupName"], "drain-spot");
    // Both deliveries are gone once the action is completed (one refreshed the other's handle,
    // the duplicate's own message was deleted as handled).
    d.tick().await;
    assert!(
        b.events_left().await <= 1,
        "left: {}",
        b.events_left().await
    );
    assert_eq!(
        b.proxy.with(|s| s.lifecycle_calls.len()),
        1,
        "completed twice"
    );
    // A stopped instance leaving the warm pool serves nothing: released in the tick that reads
    // its action, not held for the drain timeout. The proxy knows no such action (it does not
    // model warm pools) and refuses it as AWS refuses one that is no longer active — an action
    // that timed out, or a redelivered message: the daemon takes it as done, deletes the
    // message, and does not call again.
    let warm = r#"{"LifecycleActionToken":"tok-warm","AutoScalingGroupName":"drain-od","LifecycleHookName":"drain","EC2InstanceId":"i-0feedfacefeedface","LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING","Origin":"WarmPool","Destination":"EC2"}"#;
    b.send_event("EC2 Instance-terminate Lifecycle Action", warm)
        .await;
    let left = b.events_left().await;
    d.tick().await;
    let calls = b.proxy.with(|s| s.lifecycle_calls.clone());
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[1]["LifecycleActionToken"], "tok-warm");
    assert_eq!(
        b.proxy.with(|s| s.rejected_lifecycle.clone()),
        ["No active Lifecycle Action found with token tok-warm"]
    );
    d.tick().await;
    assert_eq!(b.proxy.with(|s| s.lifecycle_calls.len()), 2, "called again");
    assert_eq!(b.events_left().await, left - 1, "its message stayed");
}

/// An operator suspends `Launch` on the spot group (`SuspendProcesses`, e.g. for maintenance):
/// a raise there would launch nothing, so the daemon holds the spot pool where it is and puts
/// the surge on on-demand, saying why; once `Launch` is resumed, spot is raised again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_with_launch_suspended_is_not_raised_and_the_other_pool_takes_the_rise() {
    let b = Bench::new("suspend").await;
    b.asg
        .suspend_processes()
        .auto_scaling_group_name("suspend-spot")
        .scaling_processes("Launch")
        .send()
        .await
        .unwrap();
    let path = b.policy("");
    let mut d = b.daemon(&path, false).await;
    b.fill_requests(40).await;
    d.tick().await;
    let decision = d.published().fleets["suspend"].decision.clone().unwrap();
    // 8 units wanted (2 on-demand + 6 spot unsuspended); spot stays at its 2.
    assert_eq!(b.desired().await, (6, 2), "{}", decision.summary);
    let held = decision
        .conditions
        .iter()
        .find(|c| c.reason == Reason::ClampedToGroupMax)
        .unwrap_or_else(|| panic!("no GroupBounds condition: {}", decision.summary));
    assert!(
        held.message.contains("Launch suspended"),
        "{}",
        held.message
    );
    // `check --aws` warns at the group's name (a warning: it still passes).
    let err = check_aws_passes(&path);
    assert!(
        err.contains("Launch suspended on the group: the daemon does not raise pool \"spot\""),
        "{err}"
    );
    b.asg
        .resume_processes()
        .auto_scaling_group_name("suspend-spot")
        .send()
        .await
        .unwrap();
    d.tick().await;
    let (_, spot) = b.desired().await;
    assert!(spot > 2, "spot not raised once Launch resumed: {spot}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_surge_does_not_scale_down() {
    let b = Bench::new("restart").await;
    let path = b.policy("");
    let mut d = b.daemon(&path, false).await;
    b.fill_requests(60).await;
    // 60 messages at 5 per unit: 12 units, reached in two 15 s ticks (HPA's 100 % per 15 s).
    d.tick().await;
    assert_eq!(b.desired().await, (2, 6));
    d.tick().await;
    assert_eq!(b.desired().await, (2, 10));
    drop(d);
    // The surge's queue drains while the daemon is down.
    b.sqs
        .purge_queue()
        .queue_url(&b.requests_url)
        .send()
        .await
        .unwrap();
    let mut d = b.daemon(&path, false).await;
    for _ in 0..3 {
        d.tick().await;
    }
    let decision = d.published().fleets["restart"].decision.clone().unwrap();
    assert_eq!(decision.desired_units, 12, "{}", decision.summary);
    assert!(
        decision.has(Reason::ScaleDownStabilized),
        "{}",
        decision.summary
    );
    assert_eq!(b.desired().await, (2, 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_policy_on_reload_keeps_the_running_one() {
    let b = Bench::new("reload").await;
    let path = b.policy("");
    let mut d = b.daemon(&path, false).await;
    d.tick().await;
    std::fs::write(
        &path,
        "[[fleets]]\nname = \"reload\"\nmin_units = 9\nmax_units = 1\n",
    )
    .unwrap();
    d.reload();
    assert_eq!(d.published().reload_failures_total, 1);
    assert_eq!(d.config().fleets[0].max_units, 30);
    b.fill_requests(20).await;
    d.tick().await;
    assert_eq!(
        b.desired().await,
        (2, 2),
        "20 messages at 5 per unit: 4 units"
    );
    assert!(d.published().fleets["reload"].applied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_5xx_are_retried_without_acting_twice() {
    let b = Bench::new("faults").await;
    let path = b.policy("");
    let mut d = b.daemon(&path, false).await;
    b.fill_requests(40).await;
    // The SDK retries within the call: a throttle and a 500, then the change passes once.
    // (40 messages at 5 per unit: 8 units, within the first tick's 100 % rate limit.)
    b.proxy
        .inject("SetDesiredCapacity", &[Fault::Throttle, Fault::ServerError]);
    b.proxy
        .inject("DescribeAutoScalingGroups", &[Fault::Throttle]);
    d.tick().await;
    assert_eq!(b.desired().await, (2, 6));
    b.proxy.with(|s| {
        assert_eq!(s.attempts["SetDesiredCapacity"], 3);
        assert_eq!(s.set_desired, vec![("faults-spot".to_string(), 6)]);
        assert_eq!(
            s.attempts["DescribeAutoScalingGroups"],
            s.passed["DescribeAutoScalingGroups"] + 1
        );
    });
    // Throttled beyond the SDK's retries: the tick fails, the daemon backs off (doubled for
    // throttling), and the change is made once it passes.
    b.fill_requests(20).await;
    b.proxy.inject(
        "DescribeAutoScalingGroups",
        &[Fault::Throttle, Fault::Throttle, Fault::Throttle],
    );
    d.tick().await;
    let st = d.published().fleets["faults"].clone();
    assert_eq!(st.provider_errors_total.get("throttled"), Some(&1));
    assert_eq!(b.desired().await, (2, 6));
    let mut ticks = 0;
    while d.published().fleets["faults"]
        .decision
        .as_ref()
        .unwrap()
        .desired_units
        != 12
    {
        ticks += 1;
        assert!(ticks < 10, "never recovered");
        d.tick().await;
    }
    assert!(d.published().fleets["faults"].backoff_skips_total >= 1);
    assert_eq!(b.desired().await, (2, 10));
    b.proxy.with(|s| {
        assert_eq!(
            s.set_desired,
            vec![
                ("faults-spot".to_string(), 6),
                ("faults-spot".to_string(), 10)
            ],
            "each change made exactly once"
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_spot_launches_are_counted_once_each() {
    let b = Bench::new("failed").await;
    let (_, fleet, mut p) = b.observer("").await;
    let failed = |s: &llm_autoscaler::model::Snapshot| s.pool_failed_launches["spot"];
    assert_eq!(failed(&p.snapshot(&fleet, now()).await.unwrap()), 0);
    b.proxy
        .state
        .lock()
        .unwrap()
        .failed_activities
        .insert("failed-spot".into(), 2);
    assert_eq!(failed(&p.snapshot(&fleet, now()).await.unwrap()), 2);
    assert_eq!(
        failed(&p.snapshot(&fleet, now()).await.unwrap()),
        2,
        "the same activities again"
    );
    b.proxy
        .state
        .lock()
        .unwrap()
        .failed_activities
        .insert("failed-spot".into(), 5);
    let s = p.snapshot(&fleet, now()).await.unwrap();
    assert_eq!(failed(&s), 5);
    assert!(
        !s.pool_failed_launches.contains_key("od"),
        "only spot groups are asked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_and_token_rates_are_the_servers_counters_over_a_minute_across_resets() {
    let b = Bench::new("rate").await;
    let (_, fleet, mut p) = b
        .observer(
            "[[fleets.metrics]]\nsignal = \"request_rate\"\ntarget = { type = \"AverageValue\", average_value = 5 }\n\
             [[fleets.metrics]]\nsignal = \"prompt_tokens_rate\"\ntarget = { type = \"AverageValue\", average_value = 4000 }\n",
        )
        .await;
    let in_service = |s: &llm_autoscaler::model::Snapshot| -> Vec<llm_autoscaler::model::Instance> {
        s.instances
            .iter()
            .filter(|i| i.state == llm_autoscaler::model::LifecycleState::InService)
            .cloned()
            .collect()
    };
    let t0 = now();
    // (seconds after t0, the finished counter then, the request rate every instance reports;
    // they share one server): one reading is no rate; 45 more in 15 s is 3/s; a restarted
    // server's 30 since, over the 30 s seen, is 75 / 30 = 2.5/s; a minute on, the readings
    // before 30 s have left the window: 60 in 60 s.
    let steps = [
        (0.0, 1_000, None),
        (15.0, 1_045, Some(3.0)),
        (30.0, 30, Some(2.5)),
        (90.0, 90, Some(1.0)),
    ];
    for (secs, counter, want) in steps {
        b.vllm
            .finished
            .store(counter, std::sync::atomic::Ordering::SeqCst);
        let snap = p.snapshot(&fleet, t0.plus_secs(secs)).await.unwrap();
        let insts = in_service(&snap);
        assert!(!insts.is_empty(), "instances in service");
        for i in &insts {
            let sample = |name: &str| i.samples.get(name).map(|x| x.value);
            assert_eq!(sample("request_rate"), want, "at +{secs} s: {i:?}");
            let prompt = want.map(|r| r * harness::PROMPT_TOKENS_PER_REQUEST as f64);
            assert_eq!(sample("prompt_tokens_rate"), prompt, "at +{secs} s: {i:?}");
            // The server's own account of its work, for token_work.
            let load = i.load.map(|l| {
                (
                    l.requests_per_sec,
                    l.generation_tokens_per_sec,
                    l.waiting,
                    l.kv_cache_fraction,
                )
            });
            let generated = |r: f64| r * harness::GENERATED_TOKENS_PER_REQUEST as f64;
            assert_eq!(
                load,
                want.map(|r| (r, generated(r), 0.0, 0.5)),
                "at +{secs} s"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudwatch_samples_carry_their_period_end_and_skip_unsettled_sums() {
    let b = Bench::new("cw").await;
    let extra = r#"[[fleets.metrics]]
name = "lb_rps"
signal = "fleet_request_rate"
target = { type = "Value", value = 100 }
stale_after_secs = 300
source = { type = "cloudwatch", namespace = "Test/LB", metric_name = "RequestCount", dimensions = { LoadBalancer = "app/cw/1" }, statistic = "Sum", period_secs = 60 }"#;
    let (_, fleet, mut p) = b.observer(extra).await;
    let t = now();
    let minute = Timestamp::from_secs(t.millis() / 60_000 * 60);
    let put = |at: Timestamp, v: f64| {
        MetricDatum::builder()
            .metric_name("RequestCount")
            .dimensions(
                Dimension::builder()
                    .name("LoadBalancer")
                    .value("app/cw/1")
                    .build(),
            )
            .timestamp(DateTime::from_millis(at.millis()))
            .value(v)
            .build()
    };
    b.cw.put_metric_data()
        .namespace("Test/LB")
        .metric_data(put(minute.plus_secs(-180.0), 10.0))
        .metric_data(put(minute.plus_secs(-120.0), 20.0))
        .metric_data(put(minute.plus_secs(-120.0), 5.0))
        // The current minute is still filling up: a Sum of it would under-count.
        .metric_data(put(minute.plus_secs(1.0), 1.0))
        .send()
        .await
        .unwrap();
    let s = p.snapshot(&fleet, t).await.unwrap();
    let sample = s.fleet_metrics["lb_rps"];
    assert_eq!(sample.value, 25.0, "{sample:?}");
    assert_eq!(
        sample.at,
        minute.plus_secs(-60.0),
        "stamped with its period's end"
    );
    assert_eq!(s.fleet_metrics["external_queue_depth"].value, 0.0);
    assert_eq!(p.stats.calls_total["GetMetricData"], 1, "one batched call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demand_history_is_backfilled_with_gaps_kept_and_a_restart_does_not_refetch_it() {
    let b = Bench::new("history").await;
    let extra = r#"[fleets.predictive]
demand_per_unit = 80
lead_secs = 240
history_days = 3
warm_pool_from_forecast = true
source = { type = "cloudwatch", namespace = "Test/History", metric_name = "RequestCount", dimensions = { LoadBalancer = "app/h/1" }, statistic = "Sum", period_secs = 60 }"#;
    let path = b.policy(extra);
    let now_minute = llm_autoscaler::forecast::predictor::minute_of(now());
    // Three days of a per-minute count, but for a 200-minute outage in the middle.
    let first = now_minute - 3 * 1440 + 10;
    let outage = (now_minute - 2000)..(now_minute - 1800);
    // Through the current minute: whatever the daemon's clock says, its last settled minute
    // (two minutes back) has data.
    let minutes: Vec<i64> = (first..=now_minute)
        .filter(|m| !outage.contains(m))
        .collect();
    b.put_per_minute(
        "Test/History",
        Some(("LoadBalancer", "app/h/1")),
        &minutes,
        |m| 600.0 + (m % 1440) as f64 / 4.0,
    )
    .await;
    let mut d = b.daemon(&path, false).await;
    d.tick().await;
    let p = d.predictor("history").expect("a predictor");
    let held: Vec<(i64, Option<f64>)> = p.since(0).collect();
    let last = held.last().map(|h| h.0).unwrap();
    assert!(
        (now_minute - 2..=now_minute - 1).contains(&last),
        "up to the last settled minute"
    );
    let known = held.iter().filter(|(_, v)| v.is_some()).count();
    let expected = minutes.iter().filter(|m| **m <= last).count();
    assert_eq!(known, expected, "every datapoint, once");
    let gap: Vec<i64> = held
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(m, _)| *m)
        .collect();
    assert_eq!(
        gap,
        outage.clone().collect::<Vec<_>>(),
        "the outage is a gap, not zeros"
    );
    let calls = d.provider().stats.calls_total["GetMetricData"];
    assert!(calls >= 3, "read a day at a time: {calls} calls");
    let decision = d.published().fleets["history"].decision.clone().unwrap();
    let step = decision.predictive.clone().expect("predictive step");
    assert_eq!(step.lead_secs, 240.0);
    assert!(step.floor_units.is_some(), "{}", decision.summary);
    assert!(d.published().fleets["history"].forecast_fits >= 1);
    // The warm pool holds what the next hour's forecast peak needs beyond capacity now, and
    // never less than the policy's min_size of 1.
    let peak = step.next_hour_units.expect("a next-hour peak");
    let warm = b.warm_pool().await;
    assert_eq!(
        warm.as_ref().and_then(|w| w.min_size()).unwrap_or(0),
        peak.saturating_sub(decision.desired_units).max(1) as i32,
        "peak {peak}, desired {}",
        decision.desired_units
    );
    drop(d);

    // A restart reads the history back from the state database: only the new minutes are
    // asked of CloudWatch.
    let mut d = b.daemon(&path, false).await;
    d.tick().await;
    let again: Vec<(i64, Option<f64>)> = d.predictor("history").unwrap().since(0).collect();
    assert!(
        again.len() >= held.len(),
        "{} < {}",
        again.len(),
        held.len()
    );
    assert_eq!(&again[..held.len()], &held[..]);
    let calls = d
        .provider()
        .stats
        .calls_total
        .get("GetMetricData")
        .copied()
        .unwrap_or(0);
    assert!(calls <= 1, "refetched the history: {calls} calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forecast_command_reads_its_history_from_cloudwatch() {
    let b = Bench::new("fccli").await;
    let extra = r#"[fleets.predictive]
demand_per_unit = 80
history_days = 2
source = { type = "cloudwatch", namespace = "Test/Cli", metric_name = "RequestCount", statistic = "Sum", period_secs = 60 }"#;
    let path = b.policy(extra);
    let now_minute = llm_autoscaler::forecast::predictor::minute_of(now());
    // Two days of a daily cycle between 500 and 1,500 requests a minute.
    let minutes: Vec<i64> = (now_minute - 2 * 1440..=now_minute).collect();
    b.put_per_minute("Test/Cli", None, &minutes, |m| {
        let phase = (m % 1440) as f64 / 1440.0 * std::f64::consts::TAU;
        1000.0 + 500.0 * phase.sin()
    })
    .await;
    let json = b.dir.join("fc.json");
    let bin = env!("CARGO_BIN_EXE_llm-autoscaler");
    let (cfg_path, json_path) = (path.clone(), json.clone());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args(["forecast", "--from-cloudwatch", "--config"])
            .arg(&cfg_path)
            .args(["--horizon-mins", "30", "--json"])
            .arg(&json_path)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("fleet fccli: 2880 minutes from CloudWatch"),
        "{stderr}"
    );
    eprintln!("{stderr}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let point = v["point"].as_array().unwrap();
    assert_eq!(point.len(), 30);
    // The cycle continues: a day ago at the same minutes, within a tenth.
    for (h, p) in point.iter().enumerate() {
        let m = now_minute - 1 + h as i64;
        let phase = (m % 1440) as f64 / 1440.0 * std::f64::consts::TAU;
        let want = 1000.0 + 500.0 * phase.sin();
        let got = p.as_f64().unwrap();
        assert!((got - want).abs() < 100.0, "minute +{h}: {got} vs {want}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_queue_outage_does_not_stop_scaling() {
    let b = Bench::new("evdown").await;
    let path = b.policy("");
    let mut d = b.daemon(&path, false).await;
    b.fill_requests(40).await;
    // Every attempt at the event queue fails (more 500s than the SDK retries).
    b.proxy.inject("ReceiveMessage", &[Fault::ServerError; 6]);
    d.tick().await;
    let st = &d.published().fleets["evdown"];
    assert!(st.applied, "{:?}", st.decision.as_ref().map(|d| &d.summary));
    assert_eq!(b.desired().await, (2, 6));
    assert_eq!(
        d.provider().stats.errors_total.get("ReceiveMessage"),
        Some(&1)
    );
    // Instance IPs are described once, not every tick.
    d.tick().await;
    d.tick().await;
    assert_eq!(
        d.provider().stats.calls_total["DescribeInstances"],
        2,
        "once before, once for the 4 new instances"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_pools_are_priced_at_the_market_cached_for_an_hour() {
    let b = Bench::new("prices").await;
    let (path, fleet, mut p) = b.observer("").await;
    let t0 = now();
    // moto's spot price is a flat $0.00001 in every zone.
    let prices = p.unit_prices(&fleet, t0).await.unwrap();
    assert_eq!(
        prices,
        std::collections::BTreeMap::from([("spot".to_string(), 0.00001)])
    );
    p.unit_prices(&fleet, t0.plus_secs(600.0)).await.unwrap();
    assert_eq!(p.stats.calls_total["DescribeSpotPriceHistory"], 1, "cached");
    p.unit_prices(&fleet, t0.plus_secs(3700.0)).await.unwrap();
    assert_eq!(
        p.stats.calls_total["DescribeSpotPriceHistory"], 2,
        "refreshed after an hour"
    );

    // The daemon bills spot at that price, on-demand at the profile's, and the on-demand
    // pool's one stopped warm instance at its volumes' default price.
    let mut d = b.daemon(&path, false).await;
    d.tick().await;
    let spend = d.published().fleets["prices"]
        .decision
        .clone()
        .unwrap()
        .spend
        .expect("a ledger");
    let od = llm_autoscaler::sim::perf::builtin()
        .into_iter()
        .find(|p| p.instance_type == "g6.xlarge")
        .unwrap()
        .on_demand_usd_per_hour;
    assert!(
        (spend.rate_usd_per_hour
            - (2.0 * od + 2.0 * 0.00001 + llm_autoscaler::config::WARM_VOLUME_USD_PER_HOUR))
            .abs()
            < 1e-9,
        "{spend:?}"
    );
}

/// Issue 11, bug 1, against the wire protocol: at steady load (12 units, 4 on-demand / 8 spot)
/// a warned spot instance is covered by on-demand at once; once EC2 has reclaimed it and the
/// group has replaced it, the fleet is back to 4 / 8 and stays there — the cover did not turn
/// into a thirteenth unit through HPA's "within tolerance → keep the running pods".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interruption_at_steady_load_leaves_the_fleet_at_its_size_after_the_reclaim() {
    let b = Bench::new("reclaim").await;
    let path = b.policy_sized(
        "min_units = 2\nmax_units = 30\non_demand_base_units = 4",
        "",
    );
    let mut d = b.daemon(&path, false).await;
    b.fill_requests(60).await;
    for _ in 0..4 {
        d.tick().await;
    }
    assert_eq!(b.desired().await, (4, 8), "60 messages at 5 per unit");
    let warned = b.spot_instance().await;
    b.warn_spot(&warned).await;
    d.tick().await;
    let decision = d.published().fleets["reclaim"].decision.clone().unwrap();
    assert_eq!(
        decision
            .condition(ConditionType::MarketFallback)
            .map(|c| c.reason),
        Some(Reason::SpotInterrupted),
        "{}",
        decision.summary
    );
    assert_eq!(b.desired().await, (5, 8), "{}", decision.summary);
    b.reclaim(&warned).await;
    for tick in 0..8 {
        d.tick().await;
        let decision = d.published().fleets["reclaim"].decision.clone().unwrap();
        assert_eq!(
            decision.desired_units, 12,
            "tick {tick}: {}",
            decision.summary
        );
    }
    assert_eq!(b.desired().await, (4, 8));
    assert_eq!(
        b.sets(),
        vec![
            ("od".to_string(), 4),
            ("spot".to_string(), 4),
            ("spot".to_string(), 8),
            ("od".to_string(), 5),
            ("od".to_string(), 4),
        ],
        "every change, once"
    );
}

/// Issue 11, bug 2: at max_units (16: 5 on-demand + 11 spot) one warning moves one unit to
/// on-demand and stops there. It used to cascade 5/11 → 6/10 → 7/9 → 8/8 → 9/7: the shortfall
/// was recomputed from spot in service, the excess over max came out of spot, and the group
/// terminated a healthy instance each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warning_at_max_units_moves_one_unit_and_does_not_cascade() {
    let b = Bench::new("atmax").await;
    let path = b.policy_sized(
        "min_units = 2\nmax_units = 16\non_demand_base_units = 5",
        "",
    );
    let mut d = b.daemon(&path, false).await;
    b.fill_requests(100).await;
    for _ in 0..4 {
        d.tick().await;
    }
    assert_eq!(b.desired().await, (5, 11), "100 messages want 20, max 16");
    let warned = b.spot_instance().await;
    b.warn_spot(&warned).await;
    for tick in 0..6 {
        d.tick().await;
        let decision = d.published().fleets["atmax"].decision.clone().unwrap();
        let spot_healthy = decision
            .cover
            .as_ref()
            .map_or(11, |c| c.spot_in_service_units);
        let (od, spot) = b.desired().await;
        assert_eq!((od, spot), (6, 10), "tick {tick}: {}", decision.summary);
        assert!(
            spot >= spot_healthy,
            "tick {tick}: spot target below healthy spot"
        );
    }
    // The warned instance is reclaimed and replaced: still at max, the cover stays rather than
    // swap back through a gap (spot's replacement would need a cold start with on-demand gone).
    if b.spot_instances().await.contains(&warned) {
        b.reclaim(&warned).await;
    }
    for _ in 0..3 {
        d.tick().await;
        assert_eq!(b.desired().await, (6, 10));
    }
    let sets = b.sets();
    assert_eq!(
        sets.iter().filter(|(g, _)| g == "spot").count(),
        3,
        "spot set twice to grow, once for the cover, never again: {sets:?}"
    );
    assert!(
        b.proxy.with(|s| s.rejected.is_empty()),
        "nothing outside a group's bounds"
    );
}

/// Issue 11, bug 4: a pool whose group rejects `SetDesiredCapacity` (AWS's ValidationError)
/// does not stop the other pool; the failure is counted and published per pool. And the
/// groups' own MinSize/MaxSize — which real AWS enforces and moto does not (the proxy does) —
/// are read and respected: a target past a group's MaxSize is clamped and the rest placed on
/// the other pool, with a condition saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_pool_does_not_stop_the_others_and_group_bounds_are_respected() {
    let b = Bench::new("isolate").await;
    let path = b.policy_sized(
        "min_units = 2\nmax_units = 30\non_demand_base_units = 4",
        "",
    );
    let mut d = b.daemon(&path, false).await;
    b.fill_requests(40).await;
    b.proxy
        .inject_for_group("SetDesiredCapacity", "isolate-od", &[Fault::Validation]);
    d.tick().await;
    let st = d.published().fleets["isolate"].clone();
    assert_eq!(b.desired().await, (2, 4), "on-demand refused, spot set");
    let outcome = |pool: &str| {
        st.last_changes
            .iter()
            .find(|(c, _)| c.pool == pool)
            .map(|(_, o)| o.clone())
    };
    assert_eq!(outcome("spot"), Some(PoolOutcome::Applied));
    assert!(
        matches!(outcome("od"), Some(PoolOutcome::Failed(why)) if why.contains("ValidationError (HTTP 400): ")),
        "{:?}",
        st.last_changes
    );
    // One line an operator reads, not the SDK's nested Debug dump.
    let Some(PoolOutcome::Failed(why)) = outcome("od") else {
        unreachable!()
    };
    assert!(
        why.len() < 200 && !why.contains('\n') && !why.contains("Some("),
        "{why}"
    );
    assert!(!st.applied);
    assert_eq!(st.provider_errors_total.get("config"), Some(&1));

    // The real rule, enforced by the proxy as AWS does: outside the group's bounds, rejected.
    let direct = aws_sdk_autoscaling::Client::new(&harness::sdk(&b.proxy.url).await);
    let e = direct
        .set_desired_capacity()
        .auto_scaling_group_name("isolate-od")
        .desired_capacity(41)
        .send()
        .await
        .unwrap_err();
    let text = format!("{}", aws_sdk_autoscaling::error::DisplayErrorContext(&e));
    assert!(
        text.contains(
            "New SetDesiredCapacity value 41 is above max value 40 for the AutoScalingGroup."
        ),
        "{text}"
    );
    // The on-demand group now allows at most 3: the daemon never asks it for more, and puts the
    // fourth unit on spot.
    b.asg
        .update_auto_scaling_group()
        .auto_scaling_group_name("isolate-od")
        .max_size(3)
        .send()
        .await
        .unwrap();
    let mut ticks = 0;
    loop {
        d.tick().await;
        ticks += 1;
        if d.published().fleets["isolate"].applied || ticks > 40 {
            break;
        }
    }
    let decision = d.published().fleets["isolate"].decision.clone().unwrap();
    assert_eq!(b.desired().await, (3, 5), "{}", decision.summary);
    assert_eq!(
        decision
            .condition(ConditionType::GroupBounds)
            .map(|c| c.reason),
        Some(Reason::ClampedToGroupMax),
        "{}",
        decision.summary
    );
    assert_eq!(
        b.proxy.with(|s| s.rejected.clone()),
        vec![("isolate-od".to_string(), 41)],
        "only the direct call was out of bounds"
    );
}

/// A group without weights counts instances (AWS: a warm pool's group can have no mixed
/// instances policy, so no `WeightedCapacity`), while the policy counts units: a pool of
/// 4-unit instances behind it is asked for whole instances, its bounds and desired capacity
/// are read as units, and its warm pool's prepared capacity is sent in instances. Checked
/// against moto, which launches one instance per unit of an unweighted group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_counting_instances_is_asked_for_instances_of_the_pools_weight() {
    let b = Bench::new("weighed").await;
    let path = b.policy_sized(
        "min_units = 10\nmax_units = 30\non_demand_base_units = 10",
        "",
    );
    let text = std::fs::read_to_string(&path).unwrap().replacen(
        "instance_types = [{ type = \"g6.xlarge\" }]\n[fleets.pools.warm_pool]\nmin_size = 1\n",
        "instance_types = [{ type = \"g6.12xlarge\", weight_units = 4 }]\n[fleets.pools.warm_pool]\nmin_size = 1\nmax_prepared_units = 16\n",
        1,
    );
    assert!(text.contains("max_prepared_units = 16"), "{text}");
    std::fs::write(&path, text).unwrap();
    let mut d = b.daemon(&path, false).await;
    let od_instances = || async {
        b.asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names("weighed-od")
            .send()
            .await
            .unwrap()
            .auto_scaling_groups()[0]
            .instances()
            .len()
    };
    // 2 instances of 4 units: 8 units. The base of 10 needs 3 of them (12 units), not 10.
    d.tick().await;
    let decision = d.published().fleets["weighed"].decision.clone().unwrap();
    assert_eq!(b.desired().await.0, 3, "{}", decision.summary);
    assert_eq!(od_instances().await, 3);
    assert_eq!(b.sets().iter().filter(|(g, _)| g == "od").count(), 1);
    // Read back as the 10 units asked: not asked again.
    for _ in 0..3 {
        d.tick().await;
    }
    assert_eq!(
        b.sets().iter().filter(|(g, _)| g == "od").count(),
        1,
        "{:?}",
        b.sets()
    );
    assert_eq!(b.desired().await.0, 3);
    let warm = b.warm_pool().await;
    assert_eq!(
        warm.as_ref().and_then(|w| w.max_group_prepared_capacity()),
        Some(4),
        "16 units are 4 instances"
    );
    // The group now allows 2 instances (8 units): the daemon keeps inside it, and puts the
    // rest on spot; AWS is never asked for more than the group allows.
    b.asg
        .update_auto_scaling_group()
        .auto_scaling_group_name("weighed-od")
        .max_size(2)
        .desired_capacity(2)
        .send()
        .await
        .unwrap();
    let mut ticks = 0;
    loop {
        d.tick().await;
        ticks += 1;
        if b.desired().await == (2, 2) || ticks > 20 {
            break;
        }
    }
    let decision = d.published().fleets["weighed"].decision.clone().unwrap();
    assert_eq!(b.desired().await, (2, 2), "{}", decision.summary);
    assert_eq!(b.proxy.with(|s| s.rejected.clone()), vec![]);
    // Read back after a set that outlasted its timeout (`holds_desired`): in the units asked,
    // so 7 and 8 units are both the 2 instances of 4 the group holds, 9 are not.
    let cfg = config::load(&path).unwrap();
    let fleet = &cfg.fleets[0];
    let (od, spot) = (fleet.pool("od").unwrap(), fleet.pool("spot").unwrap());
    let mut p = d.into_provider();
    let mut held = Vec::new();
    for (pool, units) in [(od, 7), (od, 8), (od, 9), (spot, 2), (spot, 3)] {
        held.push(p.holds_desired(fleet, pool, units).await.unwrap());
    }
    assert_eq!(held, [true, true, false, true, false]);
}

/// `PutWarmPool` replaces a warm pool's whole configuration (an omitted `PoolState` is
/// `Stopped`, an omitted `InstanceReusePolicy` terminates on scale-in; moto replaces it the
/// same way): the daemon sets the sizes it owns and sends back the rest as the group has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setting_a_warm_pools_size_keeps_its_state_and_reuse_policy() {
    use aws_sdk_autoscaling::types::{InstanceReusePolicy, WarmPoolState};
    let b = Bench::new("reuse").await;
    b.asg
        .put_warm_pool()
        .auto_scaling_group_name("reuse-od")
        .min_size(0)
        .pool_state(WarmPoolState::Hibernated)
        .instance_reuse_policy(
            InstanceReusePolicy::builder()
                .reuse_on_scale_in(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let path = b.policy("");
    let mut d = b.daemon(&path, false).await;
    d.tick().await;
    let warm = b.warm_pool().await;
    let w = warm.expect("a warm pool");
    assert_eq!(w.min_size(), Some(1), "the policy's size was set");
    assert_eq!(w.pool_state(), Some(&WarmPoolState::Hibernated));
    assert_eq!(
        w.instance_reuse_policy()
            .and_then(|r| r.reuse_on_scale_in()),
        Some(true)
    );
}

/// Issue 11, bug 5: a typo in one metric's SQS queue URL marks that metric invalid with the
/// cloud's reason; the fleet keeps scaling (up) on its other metrics, and the tick succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_metric_source_leaves_the_fleet_scaling_on_the_others() {
    let b = Bench::new("typo").await;
    let path = b.policy(&format!(
        "[[fleets.metrics]]\nname = \"typo\"\nsignal = \"external_queue_depth\"\n\
         target = {{ type = \"AverageValue\", average_value = 5 }}\n\
         source = {{ type = \"sqs\", queue_url = \"{}-does-not-exist\" }}\n",
        b.requests_url
    ));
    let mut d = b.daemon(&path, false).await;
    // 30 waiting on each of 4 instances at 10 per unit: 12 units.
    b.vllm
        .waiting
        .store(30, std::sync::atomic::Ordering::SeqCst);
    d.tick().await;
    let st = d.published().fleets["typo"].clone();
    let decision = st.decision.clone().unwrap();
    let typo = decision.metrics.iter().find(|m| m.name == "typo").unwrap();
    match &typo.status {
        MetricStatus::Invalid(why) => assert!(
            why.contains("its source failed") && why.contains("does-not-exist"),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(decision.winning_metric.as_deref(), Some("queue_depth"));
    assert!(decision.desired_units > 4, "{}", decision.summary);
    assert!(st.applied, "the tick went through: {}", decision.summary);
    assert!(
        st.provider_errors_total.is_empty(),
        "{:?}",
        st.provider_errors_total
    );
}

/// The reliability issue's HA pair on moto's DynamoDB: daemons a and b on the same groups,
/// each through its own proxy (its calls counted apart, its DynamoDB calls cut apart), one
/// lease. Work grows by a unit every round, read by both before either acts, so a follower
/// that acted would show in its proxy's count. Exactly one leader acts; a leader cut off from
/// DynamoDB stops before b takes over; a dead leader is replaced within a lease and a tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ha_pair_on_dynamodb_has_one_acting_leader_through_partition_and_death() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    use llm_autoscaler::lease::Role;
    let bench = Bench::new("ha").await;
    let ddb = aws_sdk_dynamodb::Client::new(&harness::sdk(&harness::moto()).await);
    ddb.create_table()
        .table_name("ha-lease")
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("lease")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("lease")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    // 1 s ticks and a 14 s lease (the floor: tick + 12 s of margin) keep the test short.
    let base = std::fs::read_to_string(bench.policy(""))
        .unwrap()
        .replace("tick_secs = 15", "tick_secs = 1");
    let proxy_b = Proxy::start(harness::moto()).await;
    let dir_b = bench.dir.join("b");
    let write = |holder: &str, text: String| {
        let path = bench.dir.join(format!("policy-{holder}.toml"));
        let ha = format!("\n[global.ha]\ntable = \"ha-lease\"\nlease_name = \"ha\"\nlease_secs = 14\nholder = \"{holder}\"\n");
        std::fs::write(&path, text + &ha).unwrap();
        path
    };
    let path_a = write("a", base.clone());
    let path_b = write(
        "b",
        base.replace(&bench.proxy.url, &proxy_b.url).replace(
            &bench.dir.display().to_string(),
            &dir_b.display().to_string(),
        ),
    );
    let mut a = bench.daemon(&path_a, false).await;
    let mut b = bench.daemon_through(&path_b, false, &proxy_b.url).await;
    let calls = |p: &Proxy| p.with(|s| s.set_desired.len());
    let role = |d: &Daemon<AwsProvider>| d.published().ha.as_ref().unwrap().role;
    bench.fill_requests(10).await;
    // One round: a unit more work, then each live daemon ticks; what each sent.
    let mut both_acted = 0;
    let mut two_leaders = 0;
    macro_rules! round {
        ($a_alive:expr, $b_alive:expr) => {{
            bench.fill_requests(5).await;
            let (a0, b0) = (calls(&bench.proxy), calls(&proxy_b));
            if $a_alive {
                a.tick().await;
            }
            if $b_alive {
                b.tick().await;
            }
            let (da, db) = (calls(&bench.proxy) - a0, calls(&proxy_b) - b0);
            both_acted += usize::from(da > 0 && db > 0);
            // (A daemon that stopped ticking keeps its last published role: only live ones count.)
            two_leaders += usize::from(
                $a_alive && $b_alive && role(&a) == Role::Leader && role(&b) == Role::Leader,
            );
            tokio::time::sleep(Duration::from_millis(700)).await;
            (da, db)
        }};
    }
    // a starts first and leads; b follows and sends nothing.
    let mut a_sent = 0;
    for _ in 0..3 {
        let (da, db) = round!(true, true);
        a_sent += da;
        assert_eq!(db, 0, "the follower acted");
    }
    assert!(a_sent > 0 && role(&a) == Role::Leader && role(&b) == Role::Follower);
    // a is cut off from DynamoDB (every lease call answers 500) but still reaches its groups.
    bench.proxy.inject("GetItem", &[Fault::ServerError; 1000]);
    bench.proxy.inject("PutItem", &[Fault::ServerError; 1000]);
    let cut = std::time::Instant::now();
    let mut rounds = 0;
    while role(&b) != Role::Leader {
        round!(true, true);
        rounds += 1;
        assert!(cut.elapsed() < Duration::from_secs(40), "b never took over");
    }
    eprintln!(
        "partition: b leads {:?} after a was cut off ({rounds} rounds)",
        cut.elapsed()
    );
    // The new leader acts within three rounds. Not necessarily in the first: the tick in which
    // b took the lease may already have set what the work asks, and one more unit of work
    // does not always move the recommendation (here once: 140 messages queued, "hold at 26
    // units; external_queue_depth wants 26"): b then holds, as a leader should. A CI run
    // failed on that one round.
    let before = calls(&proxy_b);
    let mut held = Vec::new();
    for _ in 0..3 {
        round!(true, true);
        if calls(&proxy_b) > before {
            break;
        }
        held.extend(
            b.published()
                .fleets
                .values()
                .filter_map(|f| f.decision.as_ref().map(|d| d.summary.clone())),
        );
    }
    assert!(
        calls(&proxy_b) > before,
        "the new leader never acted: {held:?}"
    );
    // b dies; a's DynamoDB comes back: a takes over within the lease and a tick.
    bench.proxy.state.lock().unwrap().faults.clear();
    let died = std::time::Instant::now();
    while role(&a) != Role::Leader {
        round!(true, false);
        assert!(
            died.elapsed() < Duration::from_secs(30),
            "a never took over"
        );
    }
    let took = died.elapsed();
    eprintln!("death: a leads {took:?} after b's last tick (lease 14 s, tick ~1 s)");
    assert!(took <= Duration::from_secs(14 + 3), "{took:?}");
    assert_eq!(
        both_acted, 0,
        "rounds in which both sent SetDesiredCapacity"
    );
    assert_eq!(two_leaders, 0, "rounds with two leaders");
    let ha = a.published().ha.clone().unwrap();
    assert_eq!(ha.token, Some(3), "a (1), b (2), a again (3)");
}

/// The 1-based line of the policy file at `path` that first contains `needle`.
fn line_of(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .position(|l| l.contains(needle))
        .unwrap()
        + 1
}

/// `llm-autoscaler check --aws --config path`, with the test credentials.
fn check_aws(path: &Path) -> std::process::Output {
    check_aws_as(
        path,
        &[
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ],
    )
}

/// `check_aws`, which must pass (warnings allowed): its stderr.
fn check_aws_passes(path: &Path) -> String {
    let out = check_aws(path);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{err}");
    err
}

/// `llm-autoscaler check --aws --config path` with these credentials in the environment.
fn check_aws_as(path: &Path, credentials: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_llm-autoscaler"))
        .args(["check", "--aws", "--config"])
        .arg(path)
        .envs(credentials.iter().copied())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap()
}

/// The deployment issue's point 2: the module's on-demand group has MinSize 2 while the policy
/// may put 0 units there. `check --aws` says so at the group's name in the policy, with both
/// remedies, and exits 2; once the group agrees, it passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_aws_reports_a_group_min_the_policy_would_go_below() {
    let b = Bench::new("doctor").await;
    let path = b.policy_sized(
        "min_units = 0\nmax_units = 30\non_demand_base_units = 0",
        "",
    );
    let set_min = |min: i32| {
        b.asg
            .update_auto_scaling_group()
            .auto_scaling_group_name("doctor-od")
            .min_size(min)
            .send()
    };
    set_min(2).await.unwrap();
    let run = || check_aws(&path);
    let out = run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let line = line_of(&path, "\"doctor-od\"");
    let want = format!(
        "policy.toml:{line}:12: fleets[0].pools[0].asg_name: the group's MinSize is 2 but the policy may set pool \"od\" as low as 0 units"
    );
    assert!(err.contains(&want), "want {want}\nin {err}");
    assert!(
        err.contains("raise the policy's on_demand_base_units to 2"),
        "{err}"
    );
    // The policy's warm pool against a group without one: a warning, not a failure.
    assert!(
        err.contains("warning:") && err.contains("the group has none"),
        "{err}"
    );
    set_min(0).await.unwrap();
    let out = run();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("the account agrees with the policy"));
    // An HA lease table that does not exist: both daemons would only ever follow.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text + "\n[global.ha]\ntable = \"no-such-table\"\n").unwrap();
    let out = run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("global.ha.table: the lease cannot be read"),
        "{err}"
    );
}

/// `check --aws` queries each CloudWatch metric source as the daemon would: one with recent
/// datapoints passes, one with none is a warning at its `metric_name` (it would count as
/// missing and block scale-down), one the role may not read is an error there, exit 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_aws_queries_every_cloudwatch_source() {
    let b = Bench::new("cwdoctor").await;
    let metric = |name: &str, metric_name: &str| {
        format!(
            "[[fleets.metrics]]\nname = \"{name}\"\nsignal = \"fleet_request_rate\"\n\
             target = {{ type = \"Value\", value = 100 }}\nstale_after_secs = 300\n\
             source = {{ type = \"cloudwatch\", namespace = \"Test/Doctor\", metric_name = \"{metric_name}\", statistic = \"Sum\", period_secs = 60 }}\n"
        )
    };
    let path = b.policy_sized(
        "min_units = 0\nmax_units = 30\non_demand_base_units = 0",
        &(metric("published", "RequestCount") + &metric("silent", "RequestCountTypo")),
    );
    let minute = now().millis() / 60_000;
    b.put_per_minute("Test/Doctor", None, &[minute - 3, minute - 2], |_| 50.0)
        .await;
    let run = || check_aws(&path);
    let out = run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "only warnings: {err}");
    let silent = line_of(&path, "\"RequestCountTypo\"");
    assert!(
        err.contains(&format!("warning: {}:{silent}:", path.display()))
            && err.contains("fleets[0].metrics[3].source.metric_name: metric silent has no datapoint in the last 5 periods"),
        "{err}"
    );
    assert!(!err.contains("metrics[2]"), "it has data: {err}");
    // The role may not read CloudWatch: each source is an error at its own line.
    b.proxy
        .inject("GetMetricData", &[Fault::AccessDenied, Fault::AccessDenied]);
    let out = run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for (i, name, metric_name) in [
        (2, "published", "RequestCount"),
        (3, "silent", "RequestCountTypo"),
    ] {
        let want = format!(
            "policy.toml:{}:",
            line_of(&path, &format!("\"{metric_name}\""))
        );
        let at = err
            .lines()
            .find(|l| l.contains(&format!("fleets[0].metrics[{i}].source.metric_name: CloudWatch does not answer for metric {name}")))
            .unwrap_or_else(|| panic!("{name}: {err}"));
        assert!(at.contains(&want) && at.contains("AccessDenied"), "{at}");
    }
}

/// `check --aws` reads the events queue's policy: without a statement letting EventBridge send
/// to it, no interruption warning or lifecycle event would ever arrive — a warning at
/// `events_queue_url`; with the Terraform module's statement, none. Then the rules that feed
/// it: without one for the spot events, a warning at the queue; without one naming a group's
/// lifecycle actions, a warning at that group's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_aws_warns_when_eventbridge_cannot_deliver_events() {
    let b = Bench::new("evpolicy").await;
    let path = b.policy_sized(
        "min_units = 0\nmax_units = 30\non_demand_base_units = 0",
        "",
    );
    let warning = "global.aws.events_queue_url: the events queue's policy does not let EventBridge";
    let err = check_aws_passes(&path);
    let line = line_of(&path, &b.events_url);
    assert!(
        err.contains(&format!("{}:{line}:", path.display())) && err.contains(warning),
        "{err}"
    );
    let arn = b
        .sqs
        .get_queue_attributes()
        .queue_url(&b.events_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"events.amazonaws.com"}},"Action":"sqs:SendMessage","Resource":"{arn}"}}]}}"#
    );
    b.sqs
        .set_queue_attributes()
        .queue_url(&b.events_url)
        .attributes(QueueAttributeName::Policy, policy)
        .send()
        .await
        .unwrap();
    let err = check_aws_passes(&path);
    assert!(!err.contains(warning), "{err}");
    // No rule feeds the queue yet: the spot warnings, and each group's lifecycle actions.
    let ec2 = "global.aws.events_queue_url: no enabled EventBridge rule sends EC2 Spot Instance Interruption Warning or EC2 Instance Rebalance Recommendation or EC2 Instance State-change Notification to the events queue";
    let hooks = "no enabled EventBridge rule sends this group's terminate lifecycle actions";
    let at = |group: &str| {
        format!(
            "{}:{}:12: {}.asg_name: {hooks}",
            path.display(),
            line_of(&path, &format!("\"{group}\"")),
            if group.ends_with("od") {
                "fleets[0].pools[0]"
            } else {
                "fleets[0].pools[1]"
            }
        )
    };
    assert!(err.contains(ec2), "{err}");
    assert!(
        err.contains(&at("evpolicy-od")) && err.contains(&at("evpolicy-spot")),
        "{err}"
    );
    // The module's EC2 rules, and a lifecycle rule that names the on-demand group only.
    let events = aws_sdk_eventbridge::Client::new(&harness::sdk(&harness::moto()).await);
    let rules = [
        (
            "ec2",
            r#"{"source":["aws.ec2"],"detail-type":["EC2 Spot Instance Interruption Warning","EC2 Instance Rebalance Recommendation","EC2 Instance State-change Notification"]}"#,
        ),
        (
            "hooks",
            r#"{"source":["aws.autoscaling"],"detail-type":["EC2 Instance-terminate Lifecycle Action"],"detail":{"AutoScalingGroupName":["evpolicy-od"]}}"#,
        ),
    ];
    for (name, pattern) in rules {
        events
            .put_rule()
            .name(name)
            .event_pattern(pattern)
            .send()
            .await
            .unwrap();
        events
            .put_targets()
            .rule(name)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("q")
                    .arn(&arn)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
    let err = check_aws_passes(&path);
    assert!(!err.contains(ec2), "{err}");
    assert!(
        !err.contains(&at("evpolicy-od")) && err.contains(&at("evpolicy-spot")),
        "{err}"
    );
}

/// `check --aws` asks IAM what the daemon's role may call — through the test endpoint's
/// `SimulatePrincipalPolicy` (moto has none; tests/aws/iam_sim.rs evaluates the role's policies
/// in moto as AWS documents). A role that may steer only the on-demand group is refused at the
/// spot pool's `asg_name`, for each write the daemon would make there, exit 2; granted both
/// groups, it passes. Credentials that are no role or user cannot be simulated: a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_aws_asks_iam_what_the_role_may_call() {
    let b = Bench::new("perm").await;
    let path = b.policy_sized(
        "min_units = 0\nmax_units = 30\non_demand_base_units = 0",
        "",
    );
    let direct = harness::sdk(&harness::moto()).await;
    let iam = aws_sdk_iam::Client::new(&direct);
    let arn_of = |group: String| {
        let asg = b.asg.clone();
        async move {
            asg.describe_auto_scaling_groups()
                .auto_scaling_group_names(group)
                .send()
                .await
                .unwrap()
                .auto_scaling_groups()[0]
                .auto_scaling_group_arn()
                .unwrap()
                .to_string()
        }
    };
    let (od, spot) = (
        arn_of("perm-od".into()).await,
        arn_of("perm-spot".into()).await,
    );
    let grant = |groups: &[&str]| {
        serde_json::json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["autoscaling:Describe*", "ec2:Describe*", "cloudwatch:GetMetricData", "sqs:*", "iam:SimulatePrincipalPolicy"], "Resource": "*"},
            {"Effect": "Allow", "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:PutWarmPool", "autoscaling:CompleteLifecycleAction"], "Resource": groups},
        ]})
        .to_string()
    };
    iam.create_role()
        .role_name("perm-daemon")
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)
        .send()
        .await
        .unwrap();
    let put = |doc: String| {
        iam.put_role_policy()
            .role_name("perm-daemon")
            .policy_name("llm-autoscaler")
            .policy_document(doc)
            .send()
    };
    put(grant(&[&od])).await.unwrap();
    let creds = aws_sdk_sts::Client::new(&direct)
        .assume_role()
        .role_arn("arn:aws:iam::123456789012:role/perm-daemon")
        .role_session_name("i-0control")
        .send()
        .await
        .unwrap()
        .credentials()
        .unwrap()
        .clone();
    let run = || {
        check_aws_as(
            &path,
            &[
                ("AWS_ACCESS_KEY_ID", creds.access_key_id()),
                ("AWS_SECRET_ACCESS_KEY", creds.secret_access_key()),
                ("AWS_SESSION_TOKEN", creds.session_token()),
            ],
        )
    };
    let out = run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let line = line_of(&path, "\"perm-spot\"");
    for action in ["SetDesiredCapacity", "CompleteLifecycleAction"] {
        let want = format!(
            "policy.toml:{line}:12: fleets[0].pools[1].asg_name: arn:aws:iam::123456789012:role/perm-daemon may not call autoscaling:{action} on {spot} (implicitDeny)"
        );
        assert!(err.contains(&want), "want {want}\nin {err}");
    }
    assert!(
        !err.contains("pools[0].asg_name: arn:aws:iam"),
        "the on-demand group is granted: {err}"
    );
    assert_eq!(
        b.proxy
            .with(|s| s.passed.get("SimulatePrincipalPolicy").copied()),
        Some(4),
        "one question per resource: the reads on *, the two groups, the events queue"
    );
    put(grant(&[&od, &spot])).await.unwrap();
    let out = run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("may not call"), "{err}");
    // The test's own static credentials are moto's default user, whom IAM does not know.
    let err = check_aws_passes(&path);
    assert!(
        err.contains("global.provider: the credentials' permissions for the calls that change the fleet were not checked"),
        "{err}"
    );
}

/// `check --aws` asks each PromQL source as the daemon would: a query answering one number
/// passes; one the server refuses is an error at its `query`, exit 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_aws_asks_each_promql_source() {
    let b = Bench::new("promdoctor").await;
    // A loopback Prometheus: `sum(up)` is one series; anything else a parse error.
    let app = axum::Router::new().route(
        "/api/v1/query",
        axum::routing::get(
            |q: axum::extract::Query<std::collections::BTreeMap<String, String>>| async move {
                if q.get("query").map(String::as_str) == Some("sum(up)") {
                    (
                        axum::http::StatusCode::OK,
                        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"3"]}]}}"#,
                    )
                } else {
                    (
                        axum::http::StatusCode::BAD_REQUEST,
                        r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected end of input"}"#,
                    )
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let prom = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let metric = |name: &str, query: &str| {
        format!(
            "[[fleets.metrics]]\nname = \"{name}\"\nsignal = \"fleet_request_rate\"\n\
             target = {{ type = \"Value\", value = 100 }}\n\
             source = {{ type = \"promql\", url = \"{prom}\", query = \"{query}\" }}\n"
        )
    };
    let path = b.policy_sized(
        "min_units = 0\nmax_units = 30\non_demand_base_units = 0",
        // As TOML holds it: a label matcher's quotes escaped.
        &(metric("up", "sum(up)") + &metric("typo", r#"sum(rate(x{fleet=\"a\"}"#)),
    );
    let out = check_aws(&path);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let want = format!(
        "policy.toml:{}:",
        line_of(&path, r#""sum(rate(x{fleet=\"a\"}""#)
    );
    let at = err
        .lines()
        .find(|l| l.contains("fleets[0].metrics[3].source.query: the PromQL source does not answer one number for metric typo"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(at.contains(&want) && at.contains("parse error"), "{at}");
    assert!(
        !err.contains("metrics[2].source.query"),
        "sum(up) answers: {err}"
    );
}

/// Two fleets, one daemon, one shared events queue (the Terraform module's two-fleet layout):
/// an interruption warning for the second fleet's instance reaches only that fleet, in the
/// tick that reads it, and its message is deleted once handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_fleets_share_one_events_queue_and_each_event_reaches_its_own_fleet() {
    let a = Bench::new("sharea").await;
    let b = Bench::new("shareb").await;
    let text_a = std::fs::read_to_string(a.policy("")).unwrap();
    let text_b = std::fs::read_to_string(b.policy("")).unwrap();
    let fleet_b = &text_b[text_b.find("[[fleets]]").unwrap()..];
    let path = a.dir.join("two-fleets.toml");
    std::fs::write(&path, format!("{text_a}\n{fleet_b}")).unwrap();
    let mut d = a.daemon(&path, false).await;
    a.fill_requests(40).await;
    b.fill_requests(40).await;
    d.tick().await;
    assert_eq!((a.desired().await, b.desired().await), ((2, 6), (2, 6)));
    let spot = b.spot_instance().await;
    a.send_event(
        "EC2 Spot Instance Interruption Warning",
        &format!(r#"{{"instance-id":"{spot}","instance-action":"terminate"}}"#),
    )
    .await;
    d.tick().await;
    let reason = |d: &Daemon<AwsProvider>, fleet: &str| {
        d.published().fleets[fleet]
            .decision
            .as_ref()
            .and_then(|d| d.condition(ConditionType::MarketFallback).map(|c| c.reason))
    };
    assert_eq!(reason(&d, "shareb"), Some(Reason::SpotInterrupted));
    assert_ne!(reason(&d, "sharea"), Some(Reason::SpotInterrupted));
    assert_eq!((a.desired().await, b.desired().await), ((2, 6), (3, 6)));
    assert_eq!(a.events_left().await, 0, "the handled message stayed");

    // The second fleet now fails every tick (its spot group is gone). A warning about the
    // first fleet's instance is acted on and its message deleted; one about the failing
    // fleet's instance is kept until that fleet acts.
    b.asg
        .delete_auto_scaling_group()
        .auto_scaling_group_name("shareb-spot")
        .force_delete(true)
        .send()
        .await
        .unwrap();
    let spot_a = a.spot_instance().await;
    for id in [&spot_a, &spot] {
        a.send_event(
            "EC2 Instance Rebalance Recommendation",
            &format!(r#"{{"instance-id":"{id}"}}"#),
        )
        .await;
    }
    d.tick().await;
    assert!(!d.published().fleets["shareb"].applied);
    assert_eq!(reason(&d, "sharea"), Some(Reason::SpotInterrupted));
    assert_eq!(
        a.events_left().await,
        1,
        "only the failing fleet's message is kept"
    );
}

/// The test endpoint refuses the warm pools AWS refuses (moto takes them all): one on a group
/// with a mixed instances policy (the spot group), a negative MinSize, an unknown pool state;
/// a valid one on the on-demand group passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_endpoint_refuses_warm_pools_aws_refuses() {
    let b = Bench::new("warmrules").await;
    let asg = aws_sdk_autoscaling::Client::new(&harness::sdk(&b.proxy.url).await);
    let put = |group: &str| asg.put_warm_pool().auto_scaling_group_name(group);
    // (case, the call, refused?)
    let spot = put("warmrules-spot").min_size(1).send().await;
    let negative = put("warmrules-od").min_size(-1).send().await;
    let frozen = put("warmrules-od")
        .pool_state(aws_sdk_autoscaling::types::WarmPoolState::from("Frozen"))
        .send()
        .await;
    let fine = put("warmrules-od")
        .min_size(1)
        .max_group_prepared_capacity(4)
        .send()
        .await;
    let code = |r: &Result<_, aws_sdk_autoscaling::error::SdkError<_>>| match r {
        Ok(_) => "ok".to_string(),
        Err(e) => aws_sdk_autoscaling::error::ProvideErrorMetadata::code(e)
            .unwrap_or("?")
            .to_string(),
    };
    assert_eq!(code(&spot), "ValidationError");
    assert_eq!(code(&negative), "ValidationError");
    assert_eq!(code(&frozen), "ValidationError");
    assert_eq!(code(&fine), "ok", "{fine:?}");
    b.proxy.with(|s| {
        assert_eq!(
            s.rejected_warm_pools.len(),
            3,
            "{:?}",
            s.rejected_warm_pools
        );
        assert!(s.rejected_warm_pools[0]
            .1
            .contains("mixed instances policy"));
    });
}

/// With a launch lifecycle hook on the spot group (the Terraform module's `ready` hook), the
/// instances a scale-up launches wait in `Pending:Wait` — as AWS holds them, where moto puts
/// them in service at once — and the daemon counts them booting, not serving, until their
/// action is completed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_held_by_a_launch_hook_count_as_booting_until_completed() {
    let b = Bench::new("hookwait").await;
    let asg = aws_sdk_autoscaling::Client::new(&harness::sdk(&b.proxy.url).await);
    asg.put_lifecycle_hook()
        .auto_scaling_group_name("hookwait-spot")
        .lifecycle_hook_name("ready")
        .lifecycle_transition("autoscaling:EC2_INSTANCE_LAUNCHING")
        .default_result("ABANDON")
        .heartbeat_timeout(900)
        .send()
        .await
        .unwrap();
    let path = b.policy("");
    let mut d = b.daemon(&path, false).await;
    b.fill_requests(40).await;
    d.tick().await;
    assert_eq!(b.desired().await, (2, 6));
    d.tick().await;
    let decision = d.published().fleets["hookwait"].decision.clone().unwrap();
    // 2 on-demand + the 2 spot instances from before the hook serve; 4 launched wait.
    assert_eq!(
        (decision.in_service_units, decision.pending_units),
        (4, 4),
        "{}",
        decision.summary
    );
    // The instances say they are ready: in service from the next observation.
    let waiting: Vec<String> = b
        .spot_instances()
        .await
        .into_iter()
        .filter(|i| {
            b.proxy
                .with(|s| !s.launch_hooks["hookwait-spot"].contains(i))
        })
        .collect();
    assert_eq!(waiting.len(), 4);
    for id in &waiting {
        asg.complete_lifecycle_action()
            .auto_scaling_group_name("hookwait-spot")
            .lifecycle_hook_name("ready")
            .instance_id(id)
            .lifecycle_action_result("CONTINUE")
            .send()
            .await
            .unwrap();
    }
    d.tick().await;
    let decision = d.published().fleets["hookwait"].decision.clone().unwrap();
    assert_eq!(
        (decision.in_service_units, decision.pending_units),
        (8, 0),
        "{}",
        decision.summary
    );
}

/// With a terminate lifecycle hook, an instance a scale-in removes stays in the group in
/// `Terminating:Wait` — as AWS holds it, where moto drops it at once — until the daemon, having
/// drained it, completes its action; meanwhile the daemon counts it draining, not serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_in_held_by_a_terminate_hook_drains_before_it_goes() {
    let b = Bench::new("termwait").await;
    b.put_terminate_hook().await;
    let path = b.policy("");
    let mut d = b.daemon(&path, false).await;
    d.tick().await;
    let fleet = d.config().fleets[0].clone();
    // AWS scales the spot group in by one (e.g. a rebalance): moto drops the instance.
    let (gone, detail) = b.scale_in_one_spot().await;
    b.vllm.running.store(3, std::sync::atomic::Ordering::SeqCst);
    b.send_event("EC2 Instance-terminate Lifecycle Action", &detail)
        .await;
    d.tick().await;
    let snap = d.provider_mut().snapshot(&fleet, now()).await.unwrap();
    let state = |snap: &llm_autoscaler::model::Snapshot| {
        snap.instances
            .iter()
            .find(|i| i.id == gone)
            .map(|i| i.state)
    };
    assert_eq!(
        state(&snap),
        Some(LifecycleState::Draining),
        "held while requests run"
    );
    assert!(b.proxy.with(|s| s.lifecycle_calls.is_empty()));
    // Its requests finish: the daemon completes the action and the instance goes.
    b.vllm.running.store(0, std::sync::atomic::Ordering::SeqCst);
    d.tick().await;
    assert_eq!(b.proxy.with(|s| s.completed_lifecycle.len()), 1);
    let snap = d.provider_mut().snapshot(&fleet, now()).await.unwrap();
    assert_eq!(
        state(&snap),
        None,
        "still held after its action was completed"
    );
}

/// With `[global.cloudwatch_export]`, the fleet's signals go to CloudWatch in one batched call
/// per period (aligned windows), under the dimension `Fleet` and the configured ones: what the
/// daemon decided and measured, nothing it did not. A refused call is counted and retried on
/// the next tick, not skipped until the next period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleets_signals_are_published_to_cloudwatch_once_per_period() {
    let b = Bench::new("cwexport").await;
    let path = b.policy("");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "[global.aws]",
        "[global.cloudwatch_export]\nnamespace = \"LLMAutoscaler/Test\"\n\
         dimensions = { Environment = \"test\" }\nperiod_secs = 30\nhigh_resolution = true\n\n\
         [global.aws]",
    );
    std::fs::write(&path, text).unwrap();
    let mut d = b.daemon(&path, false).await;
    b.fill_requests(40).await;
    b.proxy.inject("PutMetricData", &[Fault::Validation]);
    // Five 15-s ticks. The first call is refused; from the second tick on, the first tick of
    // each 30-s window (aligned to the epoch) publishes — the second tick always does, be it
    // in the refused one's window (a retry) or the next.
    let mut windows = Vec::new();
    for _ in 0..5 {
        d.tick().await;
        let at = d.published().last_tick_at.unwrap();
        windows.push(at.millis().div_euclid(30_000));
    }
    let mut publishing = windows[1..].to_vec();
    publishing.dedup();
    let desired = d.published().fleets["cwexport"]
        .decision
        .as_ref()
        .unwrap()
        .desired_units;
    b.proxy.with(|s| {
        let passed = *s.passed.get("PutMetricData").unwrap_or(&0) as usize;
        assert_eq!(
            passed,
            publishing.len(),
            "one call a window, the refused one retried: windows {windows:?}, {:?}",
            s.attempts
        );
        assert!(
            (2..=3).contains(&passed),
            "five ticks span two or three windows"
        );
        assert_eq!(
            s.attempts.get("PutMetricData").map(|a| *a as usize),
            Some(passed + 1),
            "{:?}",
            s.attempts
        );
    });
    let listed =
        b.cw.list_metrics()
            .namespace("LLMAutoscaler/Test")
            .send()
            .await
            .unwrap();
    let mut names: Vec<&str> = listed
        .metrics()
        .iter()
        .filter(|m| {
            let has = |n, v| {
                m.dimensions()
                    .iter()
                    .any(|dim| dim.name() == Some(n) && dim.value() == Some(v))
            };
            has("Fleet", "cwexport") && has("Environment", "test") && m.dimensions().len() == 2
        })
        .filter_map(|m| m.metric_name())
        .collect();
    names.sort_unstable();
    names.dedup();
    for want in [
        "DesiredUnits",
        "InServiceUnits",
        "InServiceUnitsSpot",
        "InServiceUnitsOnDemand",
        "PendingUnits",
        "Metric.external_queue_depth",
    ] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    // Read back as a user's dashboard would: GetMetricData.
    let query = aws_sdk_cloudwatch::types::MetricDataQuery::builder()
        .id("d")
        .metric_stat(
            aws_sdk_cloudwatch::types::MetricStat::builder()
                .metric(
                    aws_sdk_cloudwatch::types::Metric::builder()
                        .namespace("LLMAutoscaler/Test")
                        .metric_name("DesiredUnits")
                        .dimensions(Dimension::builder().name("Fleet").value("cwexport").build())
                        .dimensions(
                            Dimension::builder()
                                .name("Environment")
                                .value("test")
                                .build(),
                        )
                        .build(),
                )
                .period(60)
                .stat("Maximum")
                .build(),
        )
        .build();
    let got =
        b.cw.get_metric_data()
            .metric_data_queries(query)
            .start_time(DateTime::from_millis(now().plus_secs(-600.0).millis()))
            .end_time(DateTime::from_millis(now().plus_secs(600.0).millis()))
            .send()
            .await
            .unwrap();
    let max = got
        .metric_data_results()
        .iter()
        .flat_map(|r| r.values())
        .fold(0.0, |a: f64, v| a.max(*v));
    assert_eq!(max, f64::from(desired), "{got:?}");
    let metrics = llm_autoscaler::telemetry::render_metrics(d.published());
    assert!(
        metrics.contains("llm_autoscaler_cloudwatch_export_errors_total 1"),
        "{metrics}"
    );
}
