//! `iam:SimulatePrincipalPolicy`, which moto 5.2.5 does not serve, answered by the test proxy
//! from the role's policies as moto holds them (inline and attached), by
//! AWS's documented evaluation logic for identity policies
//! (docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html): an
//! explicit `Deny` wins, else an `Allow` that matches, else `implicitDeny`. A statement matches
//! when its `Action` (or `NotAction`) and `Resource` (or `NotResource`) match — `*` and `?`
//! wildcards, actions case-insensitive — and each of its conditions holds on the request's
//! context entries: `StringEquals`, `StringLike`, `ArnEquals`, `ArnLike` (keys without regard
//! to case; a key the request does not carry fails the condition, as in the simulator). A
//! statement with another operator is taken to apply when it denies and not when it allows: a
//! stricter answer than AWS's, never a laxer one. Permission boundaries and SCPs, which AWS's
//! simulator applies, are not modelled (moto holds neither for these tests).

use std::collections::BTreeMap;

use serde_json::Value;

/// `*` and `?` wildcard match.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A field that may be one string or a list of them.
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn matches_any(patterns: &[String], text: &str, case_insensitive: bool) -> bool {
    patterns.iter().any(|p| {
        if case_insensitive {
            glob(&p.to_ascii_lowercase(), &text.to_ascii_lowercase())
        } else {
            glob(p, text)
        }
    })
}

/// Whether a statement's conditions hold. An operator this evaluator does not know is taken to
/// hold for a `Deny` and not for an `Allow`: the answer errs towards denial, never towards
/// access. Condition keys are matched without regard to case, as AWS does.
fn conditions_hold(st: &Value, context: &BTreeMap<String, Vec<String>>, deny: bool) -> bool {
    let Some(Value::Object(ops)) = st.get("Condition") else {
        return true;
    };
    ops.iter().all(|(op, keys)| {
        let Value::Object(keys) = keys else {
            return deny;
        };
        if !matches!(
            op.as_str(),
            "StringEquals" | "ArnEquals" | "StringLike" | "ArnLike"
        ) {
            return deny;
        }
        keys.iter().all(|(key, wanted)| {
            let wanted = strings(Some(wanted));
            let Some((_, have)) = context.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)) else {
                return false;
            };
            have.iter().any(|h| match op.as_str() {
                "StringEquals" | "ArnEquals" => wanted.contains(h),
                _ => matches_any(&wanted, h, false),
            })
        })
    })
}

fn statement_matches(
    st: &Value,
    action: &str,
    resource: &str,
    context: &BTreeMap<String, Vec<String>>,
) -> bool {
    let action_ok = match st.get("Action") {
        Some(a) => matches_any(&strings(Some(a)), action, true),
        None => !matches_any(&strings(st.get("NotAction")), action, true),
    };
    let resource_ok = match st.get("Resource") {
        Some(r) => matches_any(&strings(Some(r)), resource, false),
        None => !matches_any(&strings(st.get("NotResource")), resource, false),
    };
    let deny = st.get("Effect").and_then(Value::as_str) == Some("Deny");
    action_ok && resource_ok && conditions_hold(st, context, deny)
}

/// `allowed`, `explicitDeny` or `implicitDeny` for `action` on `resource` under `policies`
/// (JSON documents).
pub fn evaluate(
    policies: &[String],
    action: &str,
    resource: &str,
    context: &BTreeMap<String, Vec<String>>,
) -> &'static str {
    let statements: Vec<Value> = policies
        .iter()
        .filter_map(|p| serde_json::from_str::<Value>(p).ok())
        .flat_map(|doc| match doc.get("Statement") {
            Some(Value::Array(a)) => a.clone(),
            Some(one @ Value::Object(_)) => vec![one.clone()],
            _ => Vec::new(),
        })
        .collect();
    let effect = |e: &str| {
        statements.iter().any(|st| {
            st.get("Effect").and_then(Value::as_str) == Some(e)
                && statement_matches(st, action, resource, context)
        })
    };
    if effect("Deny") {
        "explicitDeny"
    } else if effect("Allow") {
        "allowed"
    } else {
        "implicitDeny"
    }
}

/// IAM returns policy documents URL-encoded; moto returns them as they were put.
fn document(text: &str) -> String {
    if text.trim_start().starts_with('{') {
        text.to_string()
    } else {
        super::decode(text)
    }
}

/// The policy documents of the role `arn` names, as moto holds them (inline and attached);
/// `None` when there is no such role (a user included: `check --aws` under a role is what the
/// tests exercise).
pub async fn policies_of(iam: &aws_sdk_iam::Client, arn: &str) -> Option<Vec<String>> {
    let name = arn.split_once(":role/")?.1.rsplit('/').next()?;
    let mut docs = Vec::new();
    let names = iam.list_role_policies().role_name(name).send().await.ok()?;
    for p in names.policy_names() {
        let d = iam
            .get_role_policy()
            .role_name(name)
            .policy_name(p)
            .send()
            .await
            .ok()?;
        docs.push(document(d.policy_document()));
    }
    let attached = iam
        .list_attached_role_policies()
        .role_name(name)
        .send()
        .await
        .ok()?;
    for policy in attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
    {
        let p = iam.get_policy().policy_arn(policy).send().await.ok()?;
        let version = p.policy()?.default_version_id()?.to_string();
        let v = iam
            .get_policy_version()
            .policy_arn(policy)
            .version_id(version)
            .send()
            .await
            .ok()?;
        docs.push(document(v.policy_version()?.document()?));
    }
    Some(docs)
}

/// The response to a `SimulatePrincipalPolicy` form: `(status, XML body)`.
pub async fn answer(iam: &aws_sdk_iam::Client, params: &BTreeMap<String, String>) -> (u16, String) {
    let source = params.get("PolicySourceArn").cloned().unwrap_or_default();
    let list = |prefix: &str| -> Vec<String> {
        (1..)
            .map_while(|i| params.get(&format!("{prefix}.member.{i}")).cloned())
            .collect()
    };
    let actions = list("ActionNames");
    let mut resources = list("ResourceArns");
    if resources.is_empty() {
        resources.push("*".into());
    }
    let mut context: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for i in 1.. {
        let Some(key) = params.get(&format!("ContextEntries.member.{i}.ContextKeyName")) else {
            break;
        };
        let values = (1..)
            .map_while(|j| {
                params
                    .get(&format!(
                        "ContextEntries.member.{i}.ContextKeyValues.member.{j}"
                    ))
                    .cloned()
            })
            .collect();
        context.insert(key.clone(), values);
    }
    let Some(policies) = policies_of(iam, &source).await else {
        return (
            404,
            format!("<ErrorResponse><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>No principal {source}</Message></Error><RequestId>n</RequestId></ErrorResponse>"),
        );
    };
    let mut members = String::new();
    for action in &actions {
        for resource in &resources {
            let decision = evaluate(&policies, action, resource, &context);
            members.push_str(&format!(
                "<member><EvalActionName>{action}</EvalActionName><EvalResourceName>{resource}</EvalResourceName><EvalDecision>{decision}</EvalDecision><MatchedStatements/><MissingContextValues/></member>"
            ));
        }
    }
    (
        200,
        format!(
            "<SimulatePrincipalPolicyResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated><EvaluationResults>{members}</EvaluationResults></SimulatePrincipalPolicyResult><ResponseMetadata><RequestId>s</RequestId></ResponseMetadata></SimulatePrincipalPolicyResponse>"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_policies_evaluate_as_aws_documents() {
        let grant = r#"{"Statement":[
            {"Effect":"Allow","Action":["autoscaling:SetDesiredCapacity"],"Resource":"arn:aws:autoscaling:*:1:autoScalingGroup:*:autoScalingGroupName/fleet-*"},
            {"Effect":"Allow","Action":"cloudwatch:PutMetricData","Resource":"*","Condition":{"StringEquals":{"cloudwatch:namespace":"LLMAutoscaler"}}},
            {"Effect":"Deny","Action":"autoscaling:*","Resource":"arn:aws:autoscaling:*:1:autoScalingGroup:*:autoScalingGroupName/fleet-frozen"}
        ]}"#;
        let ns =
            |v: &str| BTreeMap::from([("cloudwatch:namespace".to_string(), vec![v.to_string()])]);
        let none = BTreeMap::new();
        let group = |n: &str| {
            format!("arn:aws:autoscaling:us-east-1:1:autoScalingGroup:u-1:autoScalingGroupName/{n}")
        };
        let cases = [
            (
                "autoscaling:SetDesiredCapacity",
                group("fleet-od"),
                none.clone(),
                "allowed",
            ),
            (
                "AutoScaling:setdesiredcapacity",
                group("fleet-od"),
                none.clone(),
                "allowed",
            ),
            (
                "autoscaling:SetDesiredCapacity",
                group("other"),
                none.clone(),
                "implicitDeny",
            ),
            (
                "autoscaling:SetDesiredCapacity",
                group("fleet-frozen"),
                none.clone(),
                "explicitDeny",
            ),
            (
                "autoscaling:PutWarmPool",
                group("fleet-od"),
                none.clone(),
                "implicitDeny",
            ),
            (
                "cloudwatch:PutMetricData",
                "*".into(),
                ns("LLMAutoscaler"),
                "allowed",
            ),
            (
                "cloudwatch:PutMetricData",
                "*".into(),
                ns("Other"),
                "implicitDeny",
            ),
            (
                "cloudwatch:PutMetricData",
                "*".into(),
                none.clone(),
                "implicitDeny",
            ),
        ];
        for (action, resource, context, want) in cases {
            assert_eq!(
                evaluate(&[grant.to_string()], action, &resource, &context),
                want,
                "{action} on {resource}"
            );
        }
        assert!(glob("a*b?d", "axxbcd") && !glob("a*b?d", "axxbd") && glob("*", ""));
        assert!(glob("*x", "*ax"), "a literal * in the text");
        // A deny this evaluator cannot read still denies; an allow it cannot read does not allow.
        let region_fence = r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringNotEquals":{"aws:RequestedRegion":"us-east-1"}}}]}"#;
        let any = "sqs:DeleteMessage";
        assert_eq!(
            evaluate(&[region_fence.to_string()], any, "*", &none),
            "explicitDeny"
        );
        let tls_only = r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}"#;
        assert_eq!(
            evaluate(&[tls_only.to_string()], any, "*", &none),
            "implicitDeny"
        );
        // Condition keys in any case.
        let upper = BTreeMap::from([(
            "CloudWatch:Namespace".to_string(),
            vec!["LLMAutoscaler".to_string()],
        )]);
        assert_eq!(
            evaluate(
                &[grant.to_string()],
                "cloudwatch:PutMetricData",
                "*",
                &upper
            ),
            "allowed"
        );
    }
}
