//! EventBridge events from the fleet's SQS event queue (the Terraform module routes them
//! there): spot interruption warnings, rebalance recommendations, terminate lifecycle actions and
//! instance state changes; and what the daemon remembers of them between ticks.
//!
//! Events arrive at least once and in any order, so the [`EventTracker`] is keyed by instance:
//! a duplicate changes nothing, a later message only refreshes the receipt handle.

use std::collections::BTreeMap;

use crate::model::Timestamp;

/// One event, as the daemon needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FleetEvent {
    /// `EC2 Spot Instance Interruption Warning`: the instance goes in two minutes.
    SpotInterruption {
        /// The doomed instance.
        instance_id: String,
    },
    /// `EC2 Instance Rebalance Recommendation`: elevated risk of interruption.
    Rebalance {
        /// The instance at risk.
        instance_id: String,
    },
    /// `EC2 Instance-terminate Lifecycle Action`: the group holds the instance in
    /// `Terminating:Wait` until the daemon completes the action (after draining).
    TerminateLifecycle {
        /// The instance being terminated.
        instance_id: String,
        /// Its Auto Scaling Group.
        asg_name: String,
        /// The hook holding it.
        hook_name: String,
        /// The token that completes the action.
        token: String,
        /// Whether the instance may be serving: false when it leaves the warm pool
        /// (`Origin: WarmPool`), stopped or hibernated, where nothing runs to drain.
        serving: bool,
    },
    /// `EC2 Instance State-change Notification`.
    StateChange {
        /// The instance.
        instance_id: String,
        /// `pending`, `running`, `shutting-down`, `terminated`, `stopping`, `stopped`.
        state: String,
    },
    /// Anything else (e.g. the ASG's `TEST_NOTIFICATION`): deleted, otherwise ignored.
    Other(String),
}

/// Why a message body is not an event we can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable event message: {0}")]
pub struct EventParseError(pub String);

/// Reads an EventBridge event (the body of an SQS message).
pub fn parse_event(body: &str) -> Result<FleetEvent, EventParseError> {
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| EventParseError(format!("not JSON: {e}")))?;
    let d = &v["detail"];
    let field = |key: &str| -> Result<String, EventParseError> {
        d[key]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| EventParseError(format!("detail.{key} is missing")))
    };
    let kind = v["detail-type"].as_str().unwrap_or_default();
    Ok(match kind {
        "EC2 Spot Instance Interruption Warning" => FleetEvent::SpotInterruption {
            instance_id: field("instance-id")?,
        },
        "EC2 Instance Rebalance Recommendation" => FleetEvent::Rebalance {
            instance_id: field("instance-id")?,
        },
        "EC2 Instance-terminate Lifecycle Action" => FleetEvent::TerminateLifecycle {
            instance_id: field("EC2InstanceId")?,
            asg_name: field("AutoScalingGroupName")?,
            hook_name: field("LifecycleHookName")?,
            token: field("LifecycleActionToken")?,
            serving: d["Origin"].as_str() != Some("WarmPool"),
        },
        "EC2 Instance State-change Notification" => FleetEvent::StateChange {
            instance_id: field("instance-id")?,
            state: field("state")?,
        },
        "" => FleetEvent::Other(
            v["Event"]
                .as_str()
                .unwrap_or("a message without detail-type")
                .to_string(),
        ),
        other => FleetEvent::Other(other.to_string()),
    })
}

/// A terminate lifecycle action waiting for its instance to drain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingLifecycle {
    /// The group.
    pub asg_name: String,
    /// The hook.
    pub hook_name: String,
    /// The token.
    pub token: String,
    /// When the daemon first saw it (the drain timeout counts from here).
    pub since: Timestamp,
    /// The latest receipt handle of its message (deleted once the action is completed).
    pub receipt: Option<String>,
    /// Whether it may be serving (see [`FleetEvent::TerminateLifecycle`]); one that is not is
    /// released at once rather than at the drain timeout.
    pub serving: bool,
}

/// How long an interruption or rebalance notice is remembered when no state change says the
/// instance is gone, seconds: the two-minute notice plus a margin for the group to notice.
pub const NOTICE_TTL_SECS: f64 = 600.0;

/// What the daemon knows from events, between ticks.
#[derive(Clone, Debug, Default)]
pub struct EventTracker {
    /// Instances with an interruption warning or rebalance recommendation, and when it came.
    pub doomed: BTreeMap<String, Timestamp>,
    /// Terminate lifecycle actions not yet completed, by instance.
    pub lifecycle: BTreeMap<String, PendingLifecycle>,
    /// Messages handled this tick, to delete once the decision of the fleet they concern is
    /// applied: each receipt handle with the instance it is about (none for a message about
    /// no instance).
    pub to_delete: Vec<(String, Option<String>)>,
    /// Messages read, by kind, for `/metrics`.
    pub received_total: BTreeMap<&'static str, u64>,
}

impl EventTracker {
    /// Takes one message in. Returns the event's kind name.
    pub fn record(&mut self, event: FleetEvent, receipt: String, now: Timestamp) -> &'static str {
        let kind = match event {
            FleetEvent::SpotInterruption { instance_id } => {
                self.doomed.entry(instance_id.clone()).or_insert(now);
                self.to_delete.push((receipt, Some(instance_id)));
                "spot_interruption"
            }
            FleetEvent::Rebalance { instance_id } => {
                self.doomed.entry(instance_id.clone()).or_insert(now);
                self.to_delete.push((receipt, Some(instance_id)));
                "rebalance"
            }
            FleetEvent::TerminateLifecycle {
                instance_id,
                asg_name,
                hook_name,
                token,
                serving,
            } => {
                // Deleted only once the action is completed; a redelivery refreshes the handle.
                let p = self
                    .lifecycle
                    .entry(instance_id)
                    .or_insert_with(|| PendingLifecycle {
                        asg_name,
                        hook_name,
                        token,
                        since: now,
                        receipt: None,
                        serving,
                    });
                p.receipt = Some(receipt);
                "terminate_lifecycle"
            }
            FleetEvent::StateChange { instance_id, state } => {
                if state == "terminated" {
                    self.doomed.remove(&instance_id);
                }
                self.to_delete.push((receipt, Some(instance_id)));
                "state_change"
            }
            FleetEvent::Other(_) => {
                self.to_delete.push((receipt, None));
                "other"
            }
        };
        *self.received_total.entry(kind).or_default() += 1;
        kind
    }

    /// Forgets notices older than [`NOTICE_TTL_SECS`].
    pub fn expire(&mut self, now: Timestamp) {
        self.doomed
            .retain(|_, at| now.secs_since(*at) < NOTICE_TTL_SECS);
    }

    /// Whether the instance has been warned about.
    pub fn is_doomed(&self, instance_id: &str) -> bool {
        self.doomed.contains_key(instance_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, detail: &str) -> String {
        format!(
            r#"{{"version":"0","id":"e1","detail-type":"{kind}","source":"aws.ec2","time":"2026-11-30T07:00:00Z","region":"us-east-1","resources":[],"detail":{detail}}}"#
        )
    }

    #[test]
    fn reads_the_four_event_kinds_the_terraform_module_routes() {
        let table = [
            (
                ev(
                    "EC2 Spot Instance Interruption Warning",
                    r#"{"instance-id":"i-1","instance-action":"terminate"}"#,
                ),
                FleetEvent::SpotInterruption {
                    instance_id: "i-1".into(),
                },
            ),
            (
                ev(
                    "EC2 Instance Rebalance Recommendation",
                    r#"{"instance-id":"i-2"}"#,
                ),
                FleetEvent::Rebalance {
                    instance_id: "i-2".into(),
                },
            ),
            (
                ev(
                    "EC2 Instance-terminate Lifecycle Action",
                    r#"{"LifecycleActionToken":"tok","AutoScalingGroupName":"g","LifecycleHookName":"drain","EC2InstanceId":"i-3","LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING"}"#,
                ),
                FleetEvent::TerminateLifecycle {
                    instance_id: "i-3".into(),
                    asg_name: "g".into(),
                    hook_name: "drain".into(),
                    token: "tok".into(),
                    serving: true,
                },
            ),
            (
                // A warm pool's instance being terminated: stopped, nothing to drain.
                ev(
                    "EC2 Instance-terminate Lifecycle Action",
                    r#"{"LifecycleActionToken":"tok","AutoScalingGroupName":"g","LifecycleHookName":"drain","EC2InstanceId":"i-5","LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING","Origin":"WarmPool","Destination":"EC2"}"#,
                ),
                FleetEvent::TerminateLifecycle {
                    instance_id: "i-5".into(),
                    asg_name: "g".into(),
                    hook_name: "drain".into(),
                    token: "tok".into(),
                    serving: false,
                },
            ),
            (
                // Scaled in to the warm pool (reuse on scale-in): it was serving.
                ev(
                    "EC2 Instance-terminate Lifecycle Action",
                    r#"{"LifecycleActionToken":"tok","AutoScalingGroupName":"g","LifecycleHookName":"drain","EC2InstanceId":"i-6","LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING","Origin":"AutoScalingGroup","Destination":"WarmPool"}"#,
                ),
                FleetEvent::TerminateLifecycle {
                    instance_id: "i-6".into(),
                    asg_name: "g".into(),
                    hook_name: "drain".into(),
                    token: "tok".into(),
                    serving: true,
                },
            ),
            (
                ev(
                    "EC2 Instance State-change Notification",
                    r#"{"instance-id":"i-4","state":"terminated"}"#,
                ),
                FleetEvent::StateChange {
                    instance_id: "i-4".into(),
                    state: "terminated".into(),
                },
            ),
            (
                r#"{"Event":"autoscaling:TEST_NOTIFICATION"}"#.to_string(),
                FleetEvent::Other("autoscaling:TEST_NOTIFICATION".into()),
            ),
        ];
        for (body, want) in table {
            assert_eq!(parse_event(&body).unwrap(), want, "{body}");
        }
    }

    #[test]
    fn bad_messages_say_what_is_wrong() {
        assert!(parse_event("not json").unwrap_err().0.contains("not JSON"));
        let e = parse_event(&ev("EC2 Spot Instance Interruption Warning", "{}")).unwrap_err();
        assert!(e.0.contains("detail.instance-id"), "{e}");
    }

    #[test]
    fn duplicates_change_nothing_and_lifecycle_messages_wait_for_completion() {
        let t0 = Timestamp::from_secs(1_000);
        let mut tr = EventTracker::default();
        let warn = FleetEvent::SpotInterruption {
            instance_id: "i-1".into(),
        };
        tr.record(warn.clone(), "r1".into(), t0);
        tr.record(warn, "r2".into(), t0.plus_secs(30.0));
        assert_eq!(tr.doomed.len(), 1);
        assert_eq!(tr.doomed["i-1"], t0, "the first notice's time is kept");
        let i1 = Some("i-1".to_string());
        assert_eq!(
            tr.to_delete,
            vec![("r1".to_string(), i1.clone()), ("r2".to_string(), i1)]
        );

        let life = |tok: &str| FleetEvent::TerminateLifecycle {
            instance_id: "i-9".into(),
            asg_name: "g".into(),
            hook_name: "h".into(),
            token: tok.into(),
            serving: true,
        };
        tr.record(life("tok"), "r3".into(), t0);
        tr.record(life("tok"), "r4".into(), t0.plus_secs(60.0));
        let p = &tr.lifecycle["i-9"];
        assert_eq!((p.since, p.receipt.as_deref()), (t0, Some("r4")));
        assert!(tr.to_delete.iter().all(|(r, _)| r != "r3"));

        tr.record(
            FleetEvent::StateChange {
                instance_id: "i-1".into(),
                state: "terminated".into(),
            },
            "r5".into(),
            t0,
        );
        assert!(!tr.is_doomed("i-1"));
        tr.record(
            FleetEvent::Rebalance {
                instance_id: "i-2".into(),
            },
            "r6".into(),
            t0,
        );
        tr.expire(t0.plus_secs(NOTICE_TTL_SECS + 1.0));
        assert!(!tr.is_doomed("i-2"));
        assert_eq!(tr.received_total["spot_interruption"], 2);
    }
}
