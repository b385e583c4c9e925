//! `check --aws`: do EventBridge rules deliver what the daemon needs to the events queue? The
//! rules that target the queue (`ListRuleNamesByTarget`), each enabled one's pattern
//! (`DescribeRule`), matched against the events the daemon reads: a spot fleet's interruption
//! warnings and rebalance recommendations, every fleet's instance state changes, and each
//! group's terminate lifecycle actions. The
//! match follows EventBridge's pattern rules for the fields those events are told apart by
//! (`source`, `detail-type`, `detail.AutoScalingGroupName`): a listed field must list the
//! event's value (exactly, or by a `prefix` filter); an unlisted one matches anything. Other
//! content filters (`anything-but`, numeric) are taken to match — the check looks for a rule
//! that is missing, not one that is too wide.

use serde_json::Value;

use crate::provider::ProviderStats;

use super::sdk_call;

/// An event the daemon reads from the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wanted<'a> {
    /// `source`: `aws.ec2`, `aws.autoscaling`.
    pub source: &'a str,
    /// `detail-type`.
    pub detail_type: &'a str,
    /// `detail.AutoScalingGroupName`, for the events that carry one.
    pub group: Option<&'a str>,
}

/// Whether a pattern's field (an array of values and filters) admits `value`; `None`: the
/// event lacks the field, which only an absent field admits.
fn admits(field: Option<&Value>, value: Option<&str>) -> bool {
    let Some(field) = field else { return true };
    let (Some(list), Some(value)) = (field.as_array(), value) else {
        return false;
    };
    list.iter().any(|f| match f {
        Value::String(s) => s == value,
        Value::Object(o) => o
            .get("prefix")
            .and_then(Value::as_str)
            .is_none_or(|p| value.starts_with(p)),
        _ => false,
    })
}

/// Whether an event pattern (JSON text) matches the event `w`.
pub fn delivers(pattern: &str, w: Wanted<'_>) -> bool {
    let Ok(p) = serde_json::from_str::<Value>(pattern) else {
        return false;
    };
    let group = p.get("detail").and_then(|d| d.get("AutoScalingGroupName"));
    admits(p.get("source"), Some(w.source))
        && admits(p.get("detail-type"), Some(w.detail_type))
        && admits(group, w.group)
}

/// The enabled rules' patterns that target `queue_arn`.
pub async fn patterns_to(
    events: &aws_sdk_eventbridge::Client,
    stats: &mut ProviderStats,
    queue_arn: &str,
) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut token = None;
    // A handful of rules target one queue; the bound keeps a misbehaving endpoint from
    // looping us.
    for _ in 0..10 {
        let call = events
            .list_rule_names_by_target()
            .target_arn(queue_arn)
            .set_next_token(token)
            .send();
        let out = sdk_call(stats, "ListRuleNamesByTarget", queue_arn, call)
            .await
            .map_err(|e| e.to_string())?;
        names.extend(out.rule_names().iter().cloned());
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let mut patterns = Vec::new();
    for name in names {
        let call = events.describe_rule().name(&name).send();
        let rule = sdk_call(stats, "DescribeRule", &name, call)
            .await
            .map_err(|e| e.to_string())?;
        // ENABLED, or ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS.
        let enabled = rule
            .state()
            .is_none_or(|s| s.as_str().starts_with("ENABLED"));
        if let (true, Some(p)) = (enabled, rule.event_pattern()) {
            patterns.push(p.to_string());
        }
    }
    Ok(patterns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_the_events_the_daemon_reads() {
        let warning = Wanted {
            source: "aws.ec2",
            detail_type: "EC2 Spot Instance Interruption Warning",
            group: None,
        };
        let hook = |g| Wanted {
            source: "aws.autoscaling",
            detail_type: "EC2 Instance-terminate Lifecycle Action",
            group: Some(g),
        };
        let module_lifecycle = r#"{"source":["aws.autoscaling"],"detail-type":["EC2 Instance-terminate Lifecycle Action"],"detail":{"AutoScalingGroupName":["llama-od","llama-spot"]}}"#;
        let cases = [
            (
                r#"{"source":["aws.ec2"],"detail-type":["EC2 Spot Instance Interruption Warning"]}"#,
                warning,
                true,
            ),
            (r#"{"source":["aws.ec2"]}"#, warning, true),
            (
                r#"{"source":["aws.ec2"],"detail-type":[{"prefix":"EC2 Spot"}]}"#,
                warning,
                true,
            ),
            (
                r#"{"source":["aws.ec2"],"detail-type":["EC2 Instance Rebalance Recommendation"]}"#,
                warning,
                false,
            ),
            (module_lifecycle, hook("llama-spot"), true),
            (module_lifecycle, hook("other-od"), false),
            (module_lifecycle, warning, false),
            (r#"{"source":["aws.autoscaling"]}"#, hook("other-od"), true),
            // EC2's events carry no group: a group filter excludes them.
            (
                r#"{"source":["aws.ec2"],"detail":{"AutoScalingGroupName":["llama-od"]}}"#,
                warning,
                false,
            ),
            ("not json", warning, false),
        ];
        for (pattern, wanted, want) in cases {
            assert_eq!(delivers(pattern, wanted), want, "{pattern} / {wanted:?}");
        }
    }
}
