//! `check --aws`, the permissions half: may the daemon's credentials make every call the policy
//! will have it make? The read calls are tried by `doctor` itself; the writes
//! (`SetDesiredCapacity`, `PutWarmPool`, `CompleteLifecycleAction`, `DeleteMessage`,
//! `PutMetricData`, `PutItem`) cannot be tried without acting, so IAM is asked instead:
//! `sts:GetCallerIdentity` names the principal, `iam:SimulatePrincipalPolicy` evaluates its
//! policies for each call on the resource it will concern (the group, the queue, the table),
//! with the context keys the Terraform module's grant conditions on (`cloudwatch:namespace`).
//!
//! Limits: the simulator applies the principal's identity policies, its permissions boundary
//! and the organization's SCPs, but no resource policy (none is passed); an assumed role's ARN
//! carries no path (a role under a path is not found, and the check says so); a grant that
//! tests a condition key the check cannot supply (a resource tag) is reported as undecided — a
//! warning — not as denied.

use aws_config::SdkConfig;
use aws_sdk_iam::types::{ContextEntry, ContextKeyTypeEnum, PolicyEvaluationDecisionType};

use crate::config::Config;
use crate::provider::ProviderStats;

use super::sdk_call;

/// One call the daemon will make: the action, the resource it concerns, and where in the
/// policy that resource is named.
#[derive(Clone, Debug, PartialEq)]
pub struct Needed {
    /// IAM action, `service:Operation`.
    pub action: &'static str,
    /// The resource's ARN, or `*` for actions without resource-level permissions.
    pub resource: String,
    /// The policy key naming it (`fleets[0].pools[1].asg_name`).
    pub key: String,
    /// Condition keys the grant may test: (key, value).
    pub context: Vec<(&'static str, String)>,
}

/// The IAM principal whose policies govern `caller` (an `sts:GetCallerIdentity` ARN): an
/// assumed role's role (its path is not in the ARN: `/` is assumed), or the user itself;
/// `None` for anything else (the root user, a federated session).
pub fn principal_arn(caller: &str) -> Option<String> {
    let mut parts = caller.splitn(6, ':');
    let (arn, partition, service, _region, account, rest) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if arn != "arn" {
        return None;
    }
    match service {
        "sts" => {
            let role = rest.strip_prefix("assumed-role/")?.split('/').next()?;
            (!role.is_empty()).then(|| format!("arn:{partition}:iam::{account}:role/{role}"))
        }
        "iam" if rest.starts_with("user/") || rest.starts_with("role/") => Some(caller.into()),
        _ => None,
    }
}

/// An SQS queue's ARN from its URL (`https://sqs.<region>.amazonaws.com/<account>/<name>`;
/// `region` where the host does not name one, as on a test endpoint).
pub fn queue_arn(url: &str, partition: &str, region: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let mut parts = rest.split('/');
    let host = parts.next()?;
    let (account, name) = (parts.next()?, parts.next()?);
    if account.is_empty() || name.is_empty() || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let region = host
        .strip_prefix("sqs.")
        .and_then(|h| h.split('.').next())
        .filter(|r| !r.is_empty())
        .unwrap_or(region);
    Some(format!("arn:{partition}:sqs:{region}:{account}:{name}"))
}

/// The calls `cfg` will have the daemon make, each on its resource. `group_arns[f][p]`: pool
/// `p` of fleet `f`'s group ARN, where `doctor` found the group (a missing one is reported
/// there). Reads without resource-level permissions are asked on `*`.
pub fn needed(
    cfg: &Config,
    group_arns: &[Vec<Option<String>>],
    partition: &str,
    region: &str,
    account: &str,
) -> Vec<Needed> {
    let need = |action, resource: &str, key: &str| Needed {
        action,
        resource: resource.into(),
        key: key.into(),
        context: Vec::new(),
    };
    let mut out = Vec::new();
    for action in [
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:DescribeScalingActivities",
        "ec2:DescribeInstances",
        "ec2:DescribeSpotPriceHistory",
        "cloudwatch:GetMetricData",
    ] {
        out.push(need(action, "*", "global.provider"));
    }
    for (f, fleet) in cfg.fleets.iter().enumerate() {
        for (p, pool) in fleet.pools.iter().enumerate() {
            let Some(Some(arn)) = group_arns.get(f).and_then(|g| g.get(p)) else {
                continue;
            };
            let key = format!("fleets[{f}].pools[{p}].asg_name");
            let mut actions = vec!["autoscaling:SetDesiredCapacity"];
            if pool.warm_pool.is_some() {
                actions.push("autoscaling:PutWarmPool");
            }
            if cfg.global.aws.events_queue_url.is_some() {
                actions.push("autoscaling:CompleteLifecycleAction");
            }
            for action in actions {
                out.push(need(action, arn, &key));
            }
        }
    }
    if let Some(url) = &cfg.global.aws.events_queue_url {
        if let Some(arn) = queue_arn(url, partition, region) {
            for action in ["sqs:ReceiveMessage", "sqs:DeleteMessage"] {
                out.push(need(action, &arn, "global.aws.events_queue_url"));
            }
        }
    }
    if let Some(export) = &cfg.global.cloudwatch_export {
        out.push(Needed {
            context: vec![("cloudwatch:namespace", export.namespace.clone())],
            ..need(
                "cloudwatch:PutMetricData",
                "*",
                "global.cloudwatch_export.namespace",
            )
        });
    }
    if let Some(ha) = &cfg.global.ha {
        let arn = format!(
            "arn:{partition}:dynamodb:{region}:{account}:table/{}",
            ha.table
        );
        for action in ["dynamodb:GetItem", "dynamodb:PutItem"] {
            out.push(need(action, &arn, "global.ha.table"));
        }
    }
    out
}

/// What IAM says of one needed call.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Allowed.
    Allowed,
    /// Denied: `explicitDeny` or `implicitDeny`.
    Denied(String),
    /// Not decided: the grant tests context keys the check did not supply (named), or IAM
    /// returned no result for the call.
    Undecided(String),
}

/// Who the credentials are.
#[derive(Clone, Debug, PartialEq)]
pub struct Caller {
    /// `sts:GetCallerIdentity`'s ARN.
    pub arn: String,
    /// The role or user whose policies govern it ([`principal_arn`]).
    pub principal: Option<String>,
    /// `aws`, `aws-cn`, `aws-us-gov`.
    pub partition: String,
    /// The account id.
    pub account: String,
}

/// The principal behind `sdk`'s credentials.
pub async fn whoami(sdk: &SdkConfig, stats: &mut ProviderStats) -> Result<Caller, String> {
    let sts = aws_sdk_sts::Client::new(sdk);
    let call = sts.get_caller_identity().send();
    let me = sdk_call(stats, "GetCallerIdentity", "", call)
        .await
        .map_err(|e| e.to_string())?;
    let arn = me.arn().unwrap_or_default().to_string();
    Ok(Caller {
        principal: principal_arn(&arn),
        partition: arn.split(':').nth(1).unwrap_or("aws").to_string(),
        account: me.account().unwrap_or_default().to_string(),
        arn,
    })
}

/// Asks IAM about each needed call of `principal`: one `SimulatePrincipalPolicy` per resource
/// (and context), so each verdict is that resource's.
pub async fn simulate(
    sdk: &SdkConfig,
    stats: &mut ProviderStats,
    principal: &str,
    needed: &[Needed],
) -> Result<Vec<Verdict>, String> {
    let iam = aws_sdk_iam::Client::new(sdk);
    let mut verdicts =
        vec![Verdict::Undecided("IAM returned no result for it".into()); needed.len()];
    /// Calls sharing a resource and a context: one request.
    struct Question<'a> {
        resource: &'a str,
        context: &'a [(&'static str, String)],
        members: Vec<usize>,
    }
    let mut questions: Vec<Question<'_>> = Vec::new();
    for (i, n) in needed.iter().enumerate() {
        let same = |q: &&mut Question<'_>| q.resource == n.resource && q.context == n.context;
        match questions.iter_mut().find(same) {
            Some(q) => q.members.push(i),
            None => questions.push(Question {
                resource: &n.resource,
                context: &n.context,
                members: vec![i],
            }),
        }
    }
    for Question {
        resource,
        context,
        members,
    } in questions
    {
        let mut req = iam
            .simulate_principal_policy()
            .policy_source_arn(principal)
            .resource_arns(resource);
        for &i in &members {
            req = req.action_names(needed[i].action);
        }
        for (key, value) in context {
            req = req.context_entries(
                ContextEntry::builder()
                    .context_key_name(*key)
                    .context_key_type(ContextKeyTypeEnum::String)
                    .context_key_values(value)
                    .build(),
            );
        }
        let out = sdk_call(stats, "SimulatePrincipalPolicy", principal, req.send())
            .await
            .map_err(|e| e.to_string())?;
        for r in out.evaluation_results() {
            let decision = r.eval_decision();
            let missing = r.missing_context_values();
            let verdict = match decision {
                PolicyEvaluationDecisionType::Allowed => Verdict::Allowed,
                // Denied only for want of keys a real call would carry: not evidence.
                PolicyEvaluationDecisionType::ImplicitDeny if !missing.is_empty() => {
                    Verdict::Undecided(format!("the grant tests {}", missing.join(", ")))
                }
                other => Verdict::Denied(other.as_str().to_string()),
            };
            for &i in members
                .iter()
                .filter(|&&i| needed[i].action.eq_ignore_ascii_case(r.eval_action_name()))
            {
                verdicts[i] = verdict.clone();
            }
        }
    }
    Ok(verdicts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_principal_of_a_caller() {
        let cases = [
            (
                "arn:aws:sts::123456789012:assumed-role/llm-autoscaler-control/i-0abc",
                Some("arn:aws:iam::123456789012:role/llm-autoscaler-control"),
            ),
            (
                "arn:aws-cn:sts::123456789012:assumed-role/r/s",
                Some("arn:aws-cn:iam::123456789012:role/r"),
            ),
            (
                "arn:aws:iam::123456789012:user/ops/alice",
                Some("arn:aws:iam::123456789012:user/ops/alice"),
            ),
            ("arn:aws:iam::123456789012:root", None),
            ("arn:aws:sts::123456789012:federated-user/bob", None),
            ("not an arn", None),
        ];
        for (caller, want) in cases {
            assert_eq!(principal_arn(caller).as_deref(), want, "{caller}");
        }
    }

    #[test]
    fn the_arn_of_a_queue_url() {
        let cases = [
            (
                "https://sqs.eu-west-1.amazonaws.com/123456789012/events",
                Some("arn:aws:sqs:eu-west-1:123456789012:events"),
            ),
            (
                "http://127.0.0.1:5000/123456789012/events",
                Some("arn:aws:sqs:us-east-1:123456789012:events"),
            ),
            ("http://127.0.0.1:5000/queue/events", None),
            ("events", None),
        ];
        for (url, want) in cases {
            assert_eq!(queue_arn(url, "aws", "us-east-1").as_deref(), want, "{url}");
        }
    }
}
