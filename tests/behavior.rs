//! HPA behavior: stabilization windows and rate policies with their periods, defaults and
//! select_policy — the functions and the engine that chains them.

mod common;

use common::*;
use llm_autoscaler::config::{Behavior, PolicyKind, ScalingPolicy, ScalingRules, SelectPolicy};
use llm_autoscaler::engine::{decide, EngineState, Reason};
use llm_autoscaler::policy::behavior::{
    rate_limit, stabilize, RateOutcome, ScaleEvent, TimedRecommendation,
};

fn pol(kind: PolicyKind, value: u32, period_secs: u64) -> ScalingPolicy {
    ScalingPolicy {
        kind,
        value,
        period_secs,
    }
}
fn rules(window: u64, select: SelectPolicy, policies: Vec<ScalingPolicy>) -> ScalingRules {
    ScalingRules {
        stabilization_window_secs: window,
        select_policy: select,
        tolerance: None,
        policies,
    }
}
fn ev(at: i64, change: u32) -> ScaleEvent {
    ScaleEvent { at: t(at), change }
}
use PolicyKind::{Percent, Pods};

#[test]
fn rate_policies_table() {
    struct Case {
        name: &'static str,
        up: ScalingRules,
        down: ScalingRules,
        current: u32,
        desired: u32,
        up_events: Vec<ScaleEvent>,
        down_events: Vec<ScaleEvent>,
        want: (u32, RateOutcome),
    }
    let d = Behavior::default();
    let cases = vec![
        Case {
            name: "default up from 1: max(1+4, 2) = 5",
            up: d.scale_up.clone(),
            down: d.scale_down.clone(),
            current: 1,
            desired: 10,
            up_events: vec![],
            down_events: vec![],
            want: (5, RateOutcome::ScaleUpLimit),
        },
        Case {
            name: "default up from 10: max(14, 20) = 20",
            up: d.scale_up.clone(),
            down: d.scale_down.clone(),
            current: 10,
            desired: 100,
            up_events: vec![],
            down_events: vec![],
            want: (20, RateOutcome::ScaleUpLimit),
        },
        Case {
            name: "select Min up from 10: min(14, 20) = 14",
            up: rules(0, SelectPolicy::Min, d.scale_up.policies.clone()),
            down: d.scale_down.clone(),
            current: 10,
            desired: 100,
            up_events: vec![],
            down_events: vec![],
            want: (14, RateOutcome::ScaleUpLimit),
        },
        Case {
            name: "Disabled up holds",
            up: rules(0, SelectPolicy::Disabled, d.scale_up.policies.clone()),
            down: d.scale_down.clone(),
            current: 10,
            desired: 100,
            up_events: vec![],
            down_events: vec![],
            want: (10, RateOutcome::ScaleUpLimit),
        },
        Case {
            name: "up events in the period count against it",
            up: d.scale_up.clone(),
            down: d.scale_down.clone(),
            current: 10,
            desired: 30,
            up_events: vec![ev(-10, 4)],
            down_events: vec![],
            want: (12, RateOutcome::ScaleUpLimit),
        },
        Case {
            name: "events exactly one period old no longer count",
            up: d.scale_up.clone(),
            down: d.scale_down.clone(),
            current: 10,
            desired: 30,
            up_events: vec![ev(-15, 4)],
            down_events: vec![],
            want: (20, RateOutcome::ScaleUpLimit),
        },
        Case {
            name: "max bound wins over a looser rate",
            up: d.scale_up.clone(),
            down: d.scale_down.clone(),
            current: 900,
            desired: 5000,
            up_events: vec![],
            down_events: vec![],
            want: (1000, RateOutcome::TooManyReplicas),
        },
        Case {
            name: "percent up rounds up (1 × 1.1 → 2)",
            up: rules(0, SelectPolicy::Max, vec![pol(Percent, 10, 60)]),
            down: d.scale_down.clone(),
            current: 1,
            desired: 9,
            up_events: vec![],
            down_events: vec![],
            want: (2, RateOutcome::ScaleUpLimit),
        },
        Case {
            name: "default down 100 %: straight to desired",
            up: d.scale_up.clone(),
            down: d.scale_down.clone(),
            current: 10,
            desired: 3,
            up_events: vec![],
            down_events: vec![],
            want: (3, RateOutcome::DesiredWithinRange),
        },
        Case {
            name: "down 50 % / 60 s after removing 2: start 10 → 5",
            up: d.scale_up.clone(),
            down: rules(0, SelectPolicy::Max, vec![pol(Percent, 50, 60)]),
            current: 8,
            desired: 1,
            up_events: vec![],
            down_events: vec![ev(-30, 2)],
            want: (5, RateOutcome::ScaleDownLimit),
        },
        Case {
            name: "down percent truncates (5 × 0.5 → 2)",
            up: d.scale_up.clone(),
            down: rules(0, SelectPolicy::Max, vec![pol(Percent, 50, 60)]),
            current: 5,
            desired: 1,
            up_events: vec![],
            down_events: vec![],
            want: (2, RateOutcome::ScaleDownLimit),
        },
        Case {
            name: "down Max picks the larger change",
            up: d.scale_up.clone(),
            down: rules(
                0,
                SelectPolicy::Max,
                vec![pol(Pods, 1, 60), pol(Percent, 50, 60)],
            ),
            current: 10,
            desired: 1,
            up_events: vec![],
            down_events: vec![],
            want: (5, RateOutcome::ScaleDownLimit),
        },
        Case {
            name: "down Min picks the smaller change",
            up: d.scale_up.clone(),
            down: rules(
                0,
                SelectPolicy::Min,
                vec![pol(Pods, 1, 60), pol(Percent, 50, 60)],
            ),
            current: 10,
            desired: 1,
            up_events: vec![],
            down_events: vec![],
            want: (9, RateOutcome::ScaleDownLimit),
        },
        Case {
            name: "Disabled down holds",
            up: d.scale_up.clone(),
            down: rules(0, SelectPolicy::Disabled, vec![pol(Pods, 1, 60)]),
            current: 10,
            desired: 1,
            up_events: vec![],
            down_events: vec![],
            want: (10, RateOutcome::ScaleDownLimit),
        },
        Case {
            name: "min bound floors a free scale-down",
            up: d.scale_up.clone(),
            down: d.scale_down.clone(),
            current: 10,
            desired: 0,
            up_events: vec![],
            down_events: vec![],
            want: (1, RateOutcome::TooFewReplicas),
        },
    ];
    let mut failures = Vec::new();
    for c in cases {
        let b = Behavior {
            scale_up: c.up,
            scale_down: c.down,
        };
        let got = rate_limit(
            c.current,
            c.desired,
            (1, 1000),
            &c.up_events,
            &c.down_events,
            &b,
            t(0),
        );
        if got != c.want {
            failures.push(format!("{}: want {:?}, got {:?}", c.name, c.want, got));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn stabilization_windows_table() {
    let rec = |at: i64, units: u32| TimedRecommendation { at: t(at), units };
    let b = |up: u64, down: u64| Behavior {
        scale_up: rules(up, SelectPolicy::Max, vec![pol(Pods, 100, 15)]),
        scale_down: rules(down, SelectPolicy::Max, vec![pol(Percent, 100, 15)]),
    };
    // (name, behavior, history, current, desired, want)
    let cases = [
        (
            "down uses the highest in its window",
            b(0, 300),
            vec![rec(-200, 10), rec(-100, 5)],
            10,
            3,
            10,
        ),
        (
            "older than the window is forgotten",
            b(0, 300),
            vec![rec(-301, 10), rec(-100, 5)],
            10,
            3,
            5,
        ),
        (
            "exactly at the window edge is out (strictly after cutoff)",
            b(0, 300),
            vec![rec(-300, 10)],
            10,
            3,
            3,
        ),
        (
            "up uses the lowest in its window",
            b(60, 300),
            vec![rec(-30, 3)],
            3,
            8,
            3,
        ),
        ("up window passed", b(60, 300), vec![rec(-61, 3)], 3, 8, 8),
        (
            "no window: desired as is",
            b(0, 0),
            vec![rec(-10, 50)],
            10,
            3,
            3,
        ),
        (
            "between the limits the current size stays",
            b(60, 300),
            vec![rec(-20, 4), rec(-10, 12)],
            8,
            6,
            8,
        ),
    ];
    for (name, beh, hist, current, desired, want) in cases {
        assert_eq!(
            stabilize(&hist, t(0), current, desired, &beh),
            want,
            "{name}"
        );
    }
}

#[test]
fn engine_stabilizes_scale_down_over_its_window_and_records_events() {
    let f = fleet_with_metric(
        "queue_depth",
        "{ type = \"AverageValue\", average_value = 10 }",
        "[fleets.panic]\nenabled = false\n[fleets.behavior.scale_down]\nstabilization_window_secs = 60",
    );
    // Settle: 10 units, load wants 10, long enough for the fresh-start hold to pass.
    let mut state = EngineState::default();
    for secs in (-300..=0).step_by(15) {
        let (d, st) = decide(&f, &snap(10, &[Some(10.0); 10], t(secs)), &state, t(secs));
        assert_eq!(d.desired_units, 10);
        state = st;
    }
    // Load falls to a fifth: held by the window.
    for secs in [15, 30, 45] {
        let (d, st) = decide(&f, &snap(10, &[Some(2.0); 10], t(secs)), &state, t(secs));
        assert_eq!(d.desired_units, 10, "at {secs} s: {}", d.summary);
        assert!(d.has(Reason::ScaleDownStabilized), "{:?}", d.conditions);
        state = st;
    }
    // The last recommendation of 10 (at 0 s) leaves the 60 s window at exactly 60 s.
    let (d, st) = decide(&f, &snap(10, &[Some(2.0); 10], t(60)), &state, t(60));
    assert_eq!(d.desired_units, 2, "{}", d.summary);
    assert_eq!(st.scale_down_events.len(), 1);
    assert_eq!(st.scale_down_events[0].change, 8);
}

#[test]
fn rule_fields_default_independently_like_hpa() {
    // Setting only the window keeps HPA's default policies, and vice versa.
    let f = fleet_with_metric(
        "queue_depth",
        "{ type = \"AverageValue\", average_value = 10 }",
        "[fleets.behavior.scale_up]\nstabilization_window_secs = 30\n[fleets.behavior.scale_down]\npolicies = [{ type = \"pods\", value = 1, period_secs = 60 }]",
    );
    assert_eq!(f.behavior.scale_up.stabilization_window_secs, 30);
    assert_eq!(
        f.behavior.scale_up.policies,
        ScalingRules::default_scale_up().policies
    );
    assert_eq!(f.behavior.scale_up.select_policy, SelectPolicy::Max);
    assert_eq!(f.behavior.scale_down.stabilization_window_secs, 300);
    assert_eq!(f.behavior.scale_down.policies, vec![pol(Pods, 1, 60)]);
}
