//! `check --aws`: the policy against the live account, through the daemon's own credential
//! chain and calls — what `check` cannot see from the file alone. Each finding names the
//! policy key it concerns (`fleets[0].pools[1].asg_name`), so the caller can locate it in the
//! file like a config error.
//!
//! What is checked, per fleet: every pool's group exists; the policy and the group agree on
//! bounds (AWS rejects a desired capacity outside MinSize/MaxSize: the daemon then clamps, and
//! the fleet runs at a size the policy did not choose); a warm pool the policy sizes exists and
//! caps its prepared capacity; no group has `Launch` or `Terminate` suspended (a warning: the
//! daemon holds such a pool where it is); the events queue and every SQS metric source exist,
//! and the events queue's policy lets EventBridge send to it, and enabled rules send it what the daemon
//! reads (spot interruption warnings and rebalance recommendations for a spot fleet, each
//! group's terminate lifecycle actions); every PromQL source answers one number;
//! every
//! CloudWatch metric source answers — the daemon's `GetMetricData` query, for one metric at a
//! time so a refusal names its metric (and so over that metric's own lookback), and a warning when it holds no datapoint in its lookback
//! (the metric would count as missing, which blocks scale-down); with `[global.ha]`, the lease
//! table can be read; and the credentials may make every call the policy will have the daemon
//! make, each on its resource — asked of IAM (`permissions`: `sts:GetCallerIdentity`, then
//! `iam:SimulatePrincipalPolicy` on the role itself), since the writes cannot be tried without
//! acting. Read-only, and only calls the daemon's role already has (`DescribeAutoScalingGroups`,
//! `GetQueueAttributes`, `GetMetricData`, `GetItem`, `SimulatePrincipalPolicy`); a denied call is
//! reported at the policy key it concerns.

use aws_config::SdkConfig;
use aws_sdk_sqs::types::QueueAttributeName;

use crate::config::{Config, Fleet, MetricSource, Pool};
use crate::model::{Market, Timestamp};
use crate::provider::ProviderStats;

use super::units::{group_weights, GroupUnits};
use super::{event_rules, permissions, sdk_call};

/// How much a finding matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The policy cannot work as written against this account.
    Error,
    /// It works, but not as the policy says (capacity capped, warm instances launched, …).
    Warning,
}

/// One disagreement between the policy and the account.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// How much it matters.
    pub severity: Severity,
    /// The policy key it concerns, as a path (`fleets[0].pools[1].asg_name`).
    pub key: String,
    /// What is wrong.
    pub problem: String,
    /// What would fix it.
    pub remedy: String,
}

/// Every finding for `cfg` in the account `sdk` reaches.
pub async fn doctor(cfg: &Config, sdk: &SdkConfig, now: Timestamp) -> Vec<Finding> {
    let asg = aws_sdk_autoscaling::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let cw = aws_sdk_cloudwatch::Client::new(sdk);
    let scraper = crate::scrape::Scraper::new(std::time::Duration::from_millis(
        cfg.global.scrape.timeout_ms,
    ));
    let mut stats = ProviderStats::default();
    let mut out = Vec::new();
    if let Some(url) = &cfg.global.aws.events_queue_url {
        let finding = |severity, problem, remedy: &str| Finding {
            severity,
            key: "global.aws.events_queue_url".into(),
            problem,
            remedy: remedy.into(),
        };
        match events_queue_attributes(&sqs, &mut stats, url).await {
            Err(why) => out.push(finding(
                Severity::Error,
                format!("the events queue cannot be read: {why}"),
                "the Terraform module's events_queue_url output",
            )),
            Ok((policy, arn)) => {
                if !policy.as_deref().is_some_and(policy_allows_events) {
                    out.push(finding(
                    Severity::Warning,
                    "the events queue's policy does not let EventBridge (events.amazonaws.com) send to it: spot interruption warnings and lifecycle events would never arrive, and terminating instances would wait out their hooks".into(),
                    "a queue policy allowing sqs:SendMessage to the service principal events.amazonaws.com (the Terraform module writes one on the queue it creates)",
                ));
                }
                if let Some(arn) = arn {
                    let events = aws_sdk_eventbridge::Client::new(sdk);
                    out.extend(rule_findings(cfg, &events, &mut stats, &arn).await);
                }
            }
        }
    }
    if let Some(ha) = &cfg.global.ha {
        let ddb = aws_sdk_dynamodb::Client::new(sdk);
        if let Err(e) = super::lease::read(&ddb, &mut stats, ha).await {
            out.push(Finding {
                severity: Severity::Error,
                key: "global.ha.table".into(),
                problem: format!("the lease cannot be read: {e} — both daemons would only follow"),
                remedy: "the Terraform module's ha_lease_table output (ha_lease = true)".into(),
            });
        }
    }
    let mut group_arns = Vec::new();
    for (f, fleet) in cfg.fleets.iter().enumerate() {
        let mut arns = Vec::new();
        for (p, pool) in fleet.pools.iter().enumerate() {
            let (findings, arn) = check_pool(&asg, &mut stats, fleet, f, pool, p).await;
            out.extend(findings);
            arns.push(arn);
        }
        group_arns.push(arns);
        for (m, metric) in fleet.metrics.iter().enumerate() {
            if let Some(MetricSource::Sqs { queue_url }) = &metric.source {
                if let Some(why) = queue_missing(&sqs, &mut stats, queue_url).await {
                    out.push(Finding {
                        severity: Severity::Error,
                        key: format!("fleets[{f}].metrics[{m}].source.queue_url"),
                        problem: format!("the request queue cannot be read: {why}"),
                        remedy: "an existing queue's URL, readable by the daemon's role (metric_queue_arns in the Terraform module)".into(),
                    });
                }
            }
            if let Some(MetricSource::Promql { url, query }) = &metric.source {
                if let Err(e) = scraper.promql(url, query).await {
                    out.push(Finding {
                        severity: Severity::Error,
                        key: format!("fleets[{f}].metrics[{m}].source.query"),
                        problem: format!("the PromQL source does not answer one number for metric {}: {e}", metric.name),
                        remedy: "a query that returns one scalar or one series (sum(…) or max(…) over the fleet), at a Prometheus the control VM can reach".into(),
                    });
                }
            }
            if let Some(source @ MetricSource::Cloudwatch { .. }) = &metric.source {
                let key = format!("fleets[{f}].metrics[{m}].source.metric_name");
                out.extend(
                    cloudwatch_finding(&cw, &metric.name, source, now)
                        .await
                        .map(|(severity, problem, remedy)| Finding {
                            severity,
                            key,
                            problem,
                            remedy,
                        }),
                );
            }
        }
    }
    out.extend(permission_findings(cfg, sdk, &mut stats, &group_arns).await);
    out
}

/// The calls the daemon will make that its credentials may not (`permissions`), each at the
/// policy key it concerns; one warning when IAM cannot be asked.
async fn permission_findings(
    cfg: &Config,
    sdk: &SdkConfig,
    stats: &mut ProviderStats,
    group_arns: &[Vec<Option<String>>],
) -> Vec<Finding> {
    let not_simulated = |why: String| {
        vec![Finding {
            severity: Severity::Warning,
            key: "global.provider".into(),
            problem: format!("the credentials' permissions for the calls that change the fleet were not checked: {why}"),
            remedy: "let the daemon's role call iam:SimulatePrincipalPolicy on itself (the Terraform module does)".into(),
        }]
    };
    let me = match permissions::whoami(sdk, stats).await {
        Ok(me) => me,
        Err(e) => return not_simulated(e),
    };
    let Some(principal) = me.principal else {
        return not_simulated(format!("{} is neither a role nor a user", me.arn));
    };
    let region = sdk.region().map_or("us-east-1", |r| r.as_ref());
    let needed = permissions::needed(cfg, group_arns, &me.partition, region, &me.account);
    let verdicts = match permissions::simulate(sdk, stats, &principal, &needed).await {
        Ok(v) => v,
        Err(e) => return not_simulated(e),
    };
    needed
        .into_iter()
        .zip(verdicts)
        .filter_map(|(n, v)| {
            let (severity, problem) = match v {
                permissions::Verdict::Allowed => return None,
                permissions::Verdict::Denied(why) => (
                    Severity::Error,
                    format!("{principal} may not call {} on {} ({why})", n.action, n.resource),
                ),
                permissions::Verdict::Undecided(why) => (
                    Severity::Warning,
                    format!(
                        "whether {principal} may call {} on {} is not known: {why}",
                        n.action, n.resource
                    ),
                ),
            };
            Some(Finding {
                severity,
                key: n.key,
                problem,
                remedy: "grant it to the daemon's role (the Terraform module's policy grants every call the daemon makes: docs/daemon.md)".into(),
            })
        })
        .collect()
}

/// What is wrong with a CloudWatch metric source, if anything: the daemon's own query for it
/// alone, at `now`.
async fn cloudwatch_finding(
    cw: &aws_sdk_cloudwatch::Client,
    name: &str,
    source: &MetricSource,
    now: Timestamp,
) -> Option<(Severity, String, String)> {
    let query = [super::cloudwatch::Query { name, source }];
    match super::cloudwatch::latest(cw, &query, now).await {
        Err(e) => Some((
            Severity::Error,
            format!("CloudWatch does not answer for metric {name}: {e}"),
            "a metric of this account and region, readable by the daemon's role (cloudwatch:GetMetricData)".into(),
        )),
        Ok(samples) if samples.is_empty() => Some((
            Severity::Warning,
            format!(
                "metric {name} has no datapoint in the last {} periods: it would count as missing, and a missing metric blocks scale-down",
                super::cloudwatch::LOOKBACK_PERIODS
            ),
            "compare namespace, metric_name, dimensions and statistic with the console's metric browser (names and dimension values are case-sensitive); a metric published less often than period_secs needs a longer period".into(),
        )),
        Ok(_) => None,
    }
}

/// The events queue's policy and ARN (`None` each where it has none), in one read — its
/// failure says the queue cannot be read at all.
async fn events_queue_attributes(
    sqs: &aws_sdk_sqs::Client,
    stats: &mut ProviderStats,
    url: &str,
) -> Result<(Option<String>, Option<String>), String> {
    let call = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::Policy)
        .attribute_names(QueueAttributeName::QueueArn)
        .send();
    let out = sdk_call(stats, "GetQueueAttributes", url, call)
        .await
        .map_err(|e| e.to_string())?;
    let get = |k: &QueueAttributeName| out.attributes().and_then(|a| a.get(k)).cloned();
    Ok((
        get(&QueueAttributeName::Policy),
        get(&QueueAttributeName::QueueArn),
    ))
}

/// The events the daemon reads that no enabled EventBridge rule sends to the events queue
/// (`event_rules`): a spot fleet's interruption warnings and rebalance recommendations and any
/// fleet's state changes (at the queue), each group's terminate lifecycle actions (at the
/// group's name).
async fn rule_findings(
    cfg: &Config,
    events: &aws_sdk_eventbridge::Client,
    stats: &mut ProviderStats,
    arn: &str,
) -> Vec<Finding> {
    use event_rules::{delivers, Wanted};
    let patterns = match event_rules::patterns_to(events, stats, arn).await {
        Ok(p) => p,
        Err(e) => {
            return vec![Finding {
                severity: Severity::Warning,
                key: "global.aws.events_queue_url".into(),
                problem: format!("the EventBridge rules feeding the events queue could not be read: {e}"),
                remedy: "let the daemon's role call events:ListRuleNamesByTarget and events:DescribeRule (the Terraform module does)".into(),
            }]
        }
    };
    let missing = |w: Wanted<'_>| !patterns.iter().any(|p| delivers(p, w));
    let mut out = Vec::new();
    let spot = cfg
        .fleets
        .iter()
        .any(|f| f.pools.iter().any(|p| p.market == Market::Spot));
    // (detail-type, read for spot fleets only)
    let ec2: Vec<&str> = [
        ("EC2 Spot Instance Interruption Warning", true),
        ("EC2 Instance Rebalance Recommendation", true),
        ("EC2 Instance State-change Notification", false),
    ]
    .into_iter()
    .filter(|(t, spot_only)| {
        (spot || !spot_only)
            && missing(Wanted {
                source: "aws.ec2",
                detail_type: t,
                group: None,
            })
    })
    .map(|(t, _)| t)
    .collect();
    if !ec2.is_empty() {
        out.push(Finding {
            severity: Severity::Warning,
            key: "global.aws.events_queue_url".into(),
            problem: format!(
                "no enabled EventBridge rule sends {} to the events queue: the daemon would see an interrupted or stopped instance only once it is gone",
                ec2.join(" or ")
            ),
            remedy: "a rule on source aws.ec2 with these detail-types, targeting the queue (the Terraform module's)".into(),
        });
    }
    for (f, fleet) in cfg.fleets.iter().enumerate() {
        for (p, pool) in fleet.pools.iter().enumerate() {
            let wanted = Wanted {
                source: "aws.autoscaling",
                detail_type: "EC2 Instance-terminate Lifecycle Action",
                group: Some(&pool.asg_name),
            };
            if missing(wanted) {
                out.push(Finding {
                    severity: Severity::Warning,
                    key: format!("fleets[{f}].pools[{p}].asg_name"),
                    problem: "no enabled EventBridge rule sends this group's terminate lifecycle actions to the events queue: its terminating instances would wait out their hook's timeout, requests in flight unknown to the daemon".into(),
                    remedy: "a rule on source aws.autoscaling, detail-type EC2 Instance-terminate Lifecycle Action, naming the group in detail.AutoScalingGroupName (the Terraform module's)".into(),
                });
            }
        }
    }
    out
}

/// Whether a queue policy (JSON text) lets EventBridge deliver to the queue: a statement
/// allowing `sqs:SendMessage` (or `sqs:*`, `*`) to the service `events.amazonaws.com` (or to
/// `*`). Its conditions (the rules' ARNs) are not evaluated.
pub fn policy_allows_events(policy: &str) -> bool {
    use serde_json::Value;
    let Ok(doc) = serde_json::from_str::<Value>(policy) else {
        return false;
    };
    // A field that may be one string or a list of them.
    fn any_of(v: Option<&Value>, pred: impl Fn(&str) -> bool) -> bool {
        match v {
            Some(Value::String(s)) => pred(s),
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).any(pred),
            _ => false,
        }
    }
    let statements = match doc.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => return false,
    };
    // `sqs:SendMessage`, `sqs:Send*`, `sqs:*`, `*`: a trailing wildcard, without regard to case.
    let sends = |a: &str| {
        let a = a.to_ascii_lowercase();
        match a.strip_suffix('*') {
            Some(prefix) => "sqs:sendmessage".starts_with(prefix),
            None => a == "sqs:sendmessage",
        }
    };
    let to_events = |st: &Value| match st.get("Principal") {
        Some(Value::String(s)) => s == "*",
        Some(p) => {
            any_of(p.get("Service"), |s| s == "events.amazonaws.com")
                || any_of(p.get("AWS"), |s| s == "*")
        }
        None => false,
    };
    let applies = |effect: &str| {
        statements.iter().any(|st| {
            st.get("Effect").and_then(Value::as_str) == Some(effect)
                && any_of(st.get("Action"), sends)
                && to_events(st)
        })
    };
    applies("Allow") && !applies("Deny")
}

async fn queue_missing(
    sqs: &aws_sdk_sqs::Client,
    stats: &mut ProviderStats,
    url: &str,
) -> Option<String> {
    let call = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send();
    sdk_call(stats, "GetQueueAttributes", url, call)
        .await
        .err()
        .map(|e| e.to_string())
}

/// The fewest and the most units the policy may ever place on `pool`.
fn policy_range(fleet: &Fleet, pool: &Pool) -> (u32, u32) {
    let on_demand_pools = fleet
        .pools
        .iter()
        .filter(|p| p.market == Market::OnDemand)
        .count();
    match pool.market {
        // The base is always on-demand; with one on-demand pool it is all there. The spot
        // fallback may put the whole fleet on on-demand.
        Market::OnDemand if on_demand_pools == 1 => (
            fleet.on_demand_base_units.min(fleet.max_units),
            fleet.max_units,
        ),
        Market::OnDemand => (0, fleet.max_units),
        Market::Spot => (
            0,
            fleet.max_units.saturating_sub(fleet.on_demand_base_units),
        ),
    }
}

async fn check_pool(
    asg: &aws_sdk_autoscaling::Client,
    stats: &mut ProviderStats,
    fleet: &Fleet,
    f: usize,
    pool: &Pool,
    p: usize,
) -> (Vec<Finding>, Option<String>) {
    let key = format!("fleets[{f}].pools[{p}].asg_name");
    let finding = |severity, problem: String, remedy: String| Finding {
        severity,
        key: key.clone(),
        problem,
        remedy,
    };
    let call = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&pool.asg_name)
        .send();
    let group = match sdk_call(stats, "DescribeAutoScalingGroups", &pool.asg_name, call).await {
        Err(e) => {
            let why = format!("the group cannot be read: {e}");
            let remedy = "check the region and the daemon's credentials".into();
            return (vec![finding(Severity::Error, why, remedy)], None);
        }
        Ok(out) => match out.auto_scaling_groups().first() {
            Some(g) => g.clone(),
            None => {
                let why = format!(
                    "no Auto Scaling Group named \"{}\" in this region",
                    pool.asg_name
                );
                let remedy =
                    "the Terraform module's on_demand_asg_name / spot_asg_name outputs".into();
                return (vec![finding(Severity::Error, why, remedy)], None);
            }
        },
    };
    let arn = group.auto_scaling_group_arn().map(str::to_string);
    let mut out = Vec::new();
    // The group's bounds in the policy's units (a group without weights counts instances).
    let units = match GroupUnits::of(pool, group_weights(&group, None).0) {
        Ok(u) => u,
        Err(why) => {
            let remedy = "the Terraform module gives the spot group's overrides the policy's weight_units and the on-demand group one type".into();
            out.push(finding(Severity::Error, why, remedy));
            return (out, arn);
        }
    };
    let (min_raw, max_raw) = (group.min_size().unwrap_or(0), group.max_size().unwrap_or(0));
    let (min, max) = (units.to_units(min_raw), units.to_units(max_raw));
    // "2", or "2 instances (8 units)" where the group counts instances of several units.
    let shown = |raw: i32| match units {
        GroupUnits::Instances { weight_units } if weight_units > 1 => {
            format!("{raw} instances ({} units)", units.to_units(raw))
        }
        _ => raw.to_string(),
    };
    let (lowest, highest) = policy_range(fleet, pool);
    if min > lowest {
        out.push(finding(
            Severity::Error,
            format!(
                "the group's MinSize is {} but the policy may set pool \"{}\" as low as {lowest} units: AWS rejects SetDesiredCapacity below MinSize, so the daemon holds {min} units and the fleet runs above the policy's own floor",
                shown(min_raw),
                pool.name
            ),
            format!(
                "lower the group's MinSize to {} (module: on_demand_min_units) or raise the policy's on_demand_base_units to {min}",
                // The most whole instances that stay within the policy's floor.
                match units {
                    GroupUnits::Instances { weight_units } => lowest / weight_units.max(1),
                    GroupUnits::Weighted => lowest,
                }
            ),
        ));
    }
    if max < highest {
        out.push(finding(
            Severity::Warning,
            format!(
                "the group's MaxSize is {} but the policy may ask pool \"{}\" for {highest} units (max_units{}): the group caps it",
                shown(max_raw),
                pool.name,
                if pool.market == Market::OnDemand { ", all of it when spot runs dry" } else { " less the on-demand base" }
            ),
            format!(
                "raise the group's MaxSize to {} (module: max_units) or lower the policy's max_units",
                units.to_group(highest)
            ),
        ));
    }
    if let Some(warm) = &pool.warm_pool {
        match group.warm_pool_configuration() {
            None => out.push(finding(
                Severity::Warning,
                format!("the policy keeps a warm pool of {} on pool \"{}\", but the group has none", warm.min_size, pool.name),
                "create it (the Terraform module does, on the on-demand group) or drop [fleets.pools.warm_pool]".into(),
            )),
            Some(w) if w.max_group_prepared_capacity().is_none_or(|c| c < 0) => out.push(finding(
                Severity::Warning,
                format!(
                    "the group's warm pool has no MaxGroupPreparedCapacity: AWS keeps MaxSize − desired ({} at the base) instances warm — each a stopped GPU instance with its volume",
                    max_raw.max(0).saturating_sub(units.to_group(lowest))
                ),
                "set it (module: warm_pool_max_prepared_units) and the policy's max_prepared_units to the same figure".into(),
            )),
            Some(_) => {}
        }
    }
    // Suspended Launch or Terminate: the daemon holds the pool there (`Snapshot::pool_bounds`),
    // which an operator who suspended them for a maintenance may have forgotten.
    let suspended = super::suspended_processes(&group);
    let held = crate::model::holding_processes(&suspended);
    let what = match (held.contains(&"Launch"), held.contains(&"Terminate")) {
        (true, true) => "neither raises nor lowers",
        (true, false) => "does not raise",
        _ => "does not lower",
    };
    if !held.is_empty() {
        out.push(finding(
            Severity::Warning,
            format!(
                "{} suspended on the group: the daemon {what} pool \"{}\", and the other pools take the difference",
                held.join(" and "),
                pool.name,
            ),
            format!(
                "when the work it was suspended for is done: aws autoscaling resume-processes --auto-scaling-group-name {} --scaling-processes {}",
                pool.asg_name,
                held.join(" ")
            ),
        ));
    }
    (out, arn)
}

#[cfg(test)]
mod tests {
    use super::policy_allows_events;

    #[test]
    fn a_queue_policy_lets_eventbridge_send_or_not() {
        let events = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sqs:SendMessage","Resource":"arn:aws:sqs:us-east-1:1:q","Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:events:*:1:rule/llm-autoscaler-*"}}}]}"#;
        let cases = [
            ("the Terraform module's policy", events.to_string(), true),
            (
                "lists and wildcards",
                r#"{"Statement":{"Effect":"Allow","Principal":{"Service":["sns.amazonaws.com","events.amazonaws.com"]},"Action":["sqs:*"]}}"#.into(),
                true,
            ),
            ("anyone", r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*"}]}"#.into(), true),
            ("a denial", events.replace("Allow", "Deny"), false),
            ("another service", events.replace("events.amazonaws", "sns.amazonaws"), false),
            ("receive only", events.replace("sqs:SendMessage", "sqs:ReceiveMessage"), false),
            ("a wildcard", events.replace("sqs:SendMessage", "sqs:Send*"), true),
            (
                "allowed, then denied",
                events.replace("}]}", r#"},{"Effect":"Deny","Principal":"*","Action":"sqs:*"}]}"#),
                false,
            ),
            ("not JSON", "{".into(), false),
            ("no statement", "{}".into(), false),
        ];
        for (what, policy, want) in cases {
            assert_eq!(policy_allows_events(&policy), want, "{what}");
        }
    }
}
