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

/// One `rate_limit` case: rules, the fleet's (min, max), the change asked and the scale events
/// of the last periods.
struct RateCase {
    name: &'static str,
    up: ScalingRules,
    down: ScalingRules,
    bounds: (u32, u32),
    current: u32,
    desired: u32,
    up_events: Vec<ScaleEvent>,
    down_events: Vec<ScaleEvent>,
    want: (u32, RateOutcome),
}

/// Runs every case, and fails naming each that gave another answer.
fn assert_rates(cases: Vec<RateCase>) {
    let mut failures = Vec::new();
    for c in cases {
        let b = Behavior {
            scale_up: c.up,
            scale_down: c.down,
        };
        let got = rate_limit(
            c.current,
            c.desired,
            c.bounds,
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
fn rate_policies_table() {
    let d = Behavior::default();
    let cases = vec![
        RateCase {
            name: "default up from 1: max(1+4, 2) = 5",
            up: d.scale_up.clone(),
            down: d.scale_down.clone(),
            bounds: (1, 1000),
            current: 1,
            desired: 10,
            up_events: vec![],
            down_events: vec![],
            want: (5, RateOutcome::ScaleUpLimit),
        },
        RateCase {
            name: "default up from 10: max(14, 20) = 20",
            up: d.scale_up.clone(),
            down: d.scale_down.clone(),
            bounds: (1, 1000),
            current: 10,
            desired: 100,
            up_events: vec![],
            down_events: vec![],
            want: (20, RateOutcome::ScaleUpLimit),
        },
        RateCase {
            name: "select Min up from 10: min(14, 20) = 14",
            up: rules(0, SelectPolicy::Min, d.scale_up.policies.clone()),
            down: d.scale_down.clone(),
            bounds: (1, 1000),
            current: 10,
            desired: 100,
            up_events: vec![],
            down_events: vec![],
            want: (14, RateOutcome::ScaleUpLimit),
        },
        RateCase {
            name: "Disabled up holds",
            up: rules(0, SelectPolicy::Disabled, d.scale_up.policies.clone()),
            down: d.scale_down.clone(),
            bounds: (1, 1000),
            current: 10,
            desired: 100,
            up_events: vec![],
            down_events: vec![],
            want: (10, RateOutcome::ScaleUpLimit),
        },
        RateCase {
            name: "up events in the period count against it",
            up: d.scale_up.clone(),
            down: d.scale_down.clone(),
            bounds: (1, 1000),
            current: 10,
            desired: 30,
            up_events: vec![ev(-10, 4)],
            down_events: vec![],
            want: (12, RateOutcome::ScaleUpLimit),
        },
        RateCase {
            name: "events exactly one period old no longer count",
            up: d.scale_up.clone(),
            down: d.scale_down.clone(),
            bounds: (1, 1000),
            current: 10,
            desired: 30,
            up_events: vec![ev(-15, 4)],
            down_events: vec![],
            want: (20, RateOutcome::ScaleUpLimit),
        },
        RateCase {
            name: "max bound wins over a looser rate",
            up: d.scale_up.clone(),
            down: d.scale_down.clone(),
            bounds: (1, 1000),
            current: 900,
            desired: 5000,
            up_events: vec![],
            down_events: vec![],
            want: (1000, RateOutcome::TooManyReplicas),
        },
        RateCase {
            name: "percent up rounds up (1 × 1.1 → 2)",
            up: rules(0, SelectPolicy::Max, vec![pol(Percent, 10, 60)]),
            down: d.scale_down.clone(),
            bounds: (1, 1000),
            current: 1,
            desired: 9,
            up_events: vec![],
            down_events: vec![],
            want: (2, RateOutcome::ScaleUpLimit),
        },
        RateCase {
            name: "default down 100 %: straight to desired",
            up: d.scale_up.clone(),
            down: d.scale_down.clone(),
            bounds: (1, 1000),
            current: 10,
            desired: 3,
            up_events: vec![],
            down_events: vec![],
            want: (3, RateOutcome::DesiredWithinRange),
        },
        RateCase {
            name: "down 50 % / 60 s after removing 2: start 10 → 5",
            up: d.scale_up.clone(),
            down: rules(0, SelectPolicy::Max, vec![pol(Percent, 50, 60)]),
            bounds: (1, 1000),
            current: 8,
            desired: 1,
            up_events: vec![],
            down_events: vec![ev(-30, 2)],
            want: (5, RateOutcome::ScaleDownLimit),
        },
        RateCase {
            name: "down percent truncates (5 × 0.5 → 2)",
            up: d.scale_up.clone(),
            down: rules(0, SelectPolicy::Max, vec![pol(Percent, 50, 60)]),
            bounds: (1, 1000),
            current: 5,
            desired: 1,
            up_events: vec![],
            down_events: vec![],
            want: (2, RateOutcome::ScaleDownLimit),
        },
        RateCase {
            name: "down Max picks the larger change",
            up: d.scale_up.clone(),
            down: rules(
                0,
                SelectPolicy::Max,
                vec![pol(Pods, 1, 60), pol(Percent, 50, 60)],
            ),
            bounds: (1, 1000),
            current: 10,
            desired: 1,
            up_events: vec![],
            down_events: vec![],
            want: (5, RateOutcome::ScaleDownLimit),
        },
        RateCase {
            name: "down Min picks the smaller change",
            up: d.scale_up.clone(),
            down: rules(
                0,
                SelectPolicy::Min,
                vec![pol(Pods, 1, 60), pol(Percent, 50, 60)],
            ),
            bounds: (1, 1000),
            current: 10,
            desired: 1,
            up_events: vec![],
            down_events: vec![],
            want: (9, RateOutcome::ScaleDownLimit),
        },
        RateCase {
            name: "Disabled down holds",
            up: d.scale_up.clone(),
            down: rules(0, SelectPolicy::Disabled, vec![pol(Pods, 1, 60)]),
            bounds: (1, 1000),
            current: 10,
            desired: 1,
            up_events: vec![],
            down_events: vec![],
            want: (10, RateOutcome::ScaleDownLimit),
        },
        RateCase {
            name: "min bound floors a free scale-down",
            up: d.scale_up.clone(),
            down: d.scale_down.clone(),
            bounds: (1, 1000),
            current: 10,
            desired: 0,
            up_events: vec![],
            down_events: vec![],
            want: (1, RateOutcome::TooFewReplicas),
        },
    ];
    assert_rates(cases);
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
        ), // Upstream's TestNormalizeDesiredReplicasWithBehavior (a window it does not name is 0).
        (
            "WithBehavior: empty history, no windows",
            b(0, 0),
            vec![],
            100,
            5,
            5,
        ),
        (
            "WithBehavior: up window only, desired down",
            b(300, 0),
            vec![rec(-120, 1), rec(-60, 2)],
            100,
            3,
            3,
        ),
        (
            "WithBehavior: down window only, desired up",
            b(0, 300),
            vec![rec(-120, 4), rec(-60, 5)],
            1,
            3,
            3,
        ),
        (
            "WithBehavior: no windows, old history ignored on the way up",
            b(0, 0),
            vec![rec(-600, 10), rec(-540, 9)],
            1,
            100,
            100,
        ),
        (
            "WithBehavior: down 180 s skips the obsolete entries",
            b(0, 180),
            vec![rec(-600, 10), rec(-60, 4), rec(-120, 5), rec(-540, 9)],
            100,
            3,
            5,
        ),
        (
            "WithBehavior: up 300 s takes the lowest recent",
            b(300, 0),
            vec![rec(-6000, 10), rec(-60, 6), rec(-120, 5), rec(-180, 9)],
            1,
            100,
            5,
        ),
        (
            "WithBehavior: both windows, desired falls: current kept",
            b(300, 300),
            vec![rec(-6000, 2), rec(-180, 3)],
            2,
            1,
            2,
        ),
        (
            "WithBehavior: both windows, desired rises: current kept",
            b(300, 300),
            vec![rec(-6000, 2), rec(-180, 1)],
            2,
            3,
            2,
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

/// Upstream `TestScalingWithRules`, `TestCalculateScaleUpLimitWithScalingRules`,
/// `TestCalculateScaleDownLimitWithBehaviors`, `TestUpscaleCapGreaterThanMaxReplicas` and
/// `TestZeroMinReplicasDesiredZero` (horizontal_test.go), through `rate_limit`
/// (`convertDesiredReplicasWithBehaviorRate`). Events sit where
/// `generateEventsUniformDistribution(raw, 120)` puts them: n events over the last 120 s, each in the
/// middle of its 120/n-second slot, truncated to whole seconds.
#[test]
fn upstream_scaling_with_rules_table() {
    // generateScalingRules(pods, pods_period, percent, percent_period, _window): select Max.
    fn generate(pods: u32, pp: u64, pct: u32, pcp: u64) -> ScalingRules {
        let mut p = Vec::new();
        if pods != 0 {
            p.push(pol(Pods, pods, pp));
        }
        if pct != 0 {
            p.push(pol(Percent, pct, pcp));
        }
        rules(0, SelectPolicy::Max, p)
    }
    fn uni(raw: &[u32]) -> Vec<ScaleEvent> {
        let seg = 120.0 / raw.len() as f64;
        raw.iter()
            .enumerate()
            .map(|(i, &c)| ev(-((120.0 - seg * (i as f64 + 1.0) + seg / 2.0) as i64), c))
            .collect()
    }
    use RateOutcome::*;
    let d = Behavior::default();
    let (du, dd) = (d.scale_up.clone(), d.scale_down.clone());
    let c = |name,
             up: &ScalingRules,
             down: &ScalingRules,
             bounds,
             current,
             desired,
             up_events,
             down_events,
             want| RateCase {
        name,
        up: up.clone(),
        down: down.clone(),
        bounds,
        current,
        desired,
        up_events,
        down_events,
        want,
    };
    // One upstream subtest a row: (name, up, down, (min, max), current, desired, up events,
    // down events, (want, why)).
    #[rustfmt::skip]
    let cases = vec![
        c("within range", &du, &dd, (3, 8), 5, 7, vec![], vec![], (7, DesiredWithinRange)),
        c("< minReplicas", &du, &dd, (2, 8), 3, 1, vec![], vec![], (2, TooFewReplicas)),
        c("within range when min is 0", &du, &dd, (0, 10), 1, 0, vec![], vec![], (0, DesiredWithinRange)),
        c("max < scale-up limit", &du, &dd, (1, 10), 20, 1000, vec![], vec![], (10, TooManyReplicas)),
        c("desired above max", &du, &dd, (100, 150), 100, 1000, vec![], vec![], (150, TooManyReplicas)),
        c("1 % user policy rounds up", &generate(0, 0, 1, 60), &dd, (1, 2000), 3, 1000, vec![], vec![], (4, ScaleUpLimit)),
        c("pods 100 > percent 100", &generate(100, 60, 100, 60), &dd, (1, 1000), 10, 500, vec![], vec![], (110, ScaleUpLimit)),
        c("percent 100 > pods 2", &generate(2, 60, 100, 60), &dd, (1, 1000), 10, 500, vec![], vec![], (20, ScaleUpLimit)),
        c("large pods policy: desired", &generate(100, 60, 0, 0), &dd, (1, 1000), 10, 50, vec![], vec![], (50, DesiredWithinRange)),
        c("huge pods policy: desired", &generate(10000, 60, 0, 0), &dd, (1, 1000), 10, 50, vec![], vec![], (50, DesiredWithinRange)),
        c("pods 30 limit", &generate(30, 60, 0, 0), &dd, (1, 1000), 10, 50, vec![], vec![], (40, ScaleUpLimit)),
        c("percent 200 limit", &generate(0, 0, 200, 60), &dd, (1, 1000), 10, 50, vec![], vec![], (30, ScaleUpLimit)),
        c("down: pods 20 beats percent 1", &du, &generate(20, 60, 1, 60), (1, 1000), 100, 2, vec![], vec![], (80, ScaleDownLimit)),
        c("down: pods 2 vs percent 1", &du, &generate(2, 60, 1, 60), (1, 1000), 100, 2, vec![], vec![], (98, ScaleDownLimit)),
        c("down: large pods policy hits min", &du, &generate(100, 60, 0, 0), (1, 1000), 10, 0, vec![], vec![], (1, TooFewReplicas)),
        c("down: percent 100 hits min 5", &du, &generate(0, 0, 100, 60), (5, 1000), 10, 2, vec![], vec![], (5, TooFewReplicas)),
        c("down: pods 5 limit", &du, &generate(5, 60, 0, 0), (1, 1000), 10, 2, vec![], vec![], (5, ScaleDownLimit)),
        c("down: percent 50 reaches desired", &du, &generate(0, 0, 50, 60), (1, 1000), 10, 5, vec![], vec![], (5, DesiredWithinRange)),
        c("up events, pods 300 → max", &generate(300, 60, 0, 0), &dd, (1, 200), 100, 500, uni(&[1, 5, 9]), vec![], (200, TooManyReplicas)),
        c("up events, percent 10000 → max", &generate(0, 0, 10000, 60), &dd, (1, 200), 100, 500, uni(&[1, 5, 9]), vec![], (200, TooManyReplicas)),
        c("up events exhaust pods 5/120 s: hold current", &generate(5, 120, 0, 0), &dd, (1, 1000), 100, 500, uni(&[1, 5, 9]), vec![], (100, ScaleUpLimit)),
        c("up events, pods 150/120 s: 85 + 150", &generate(150, 120, 0, 0), &dd, (1, 1000), 100, 500, uni(&[1, 5, 9]), vec![], (235, ScaleUpLimit)),
        c("up events, percent 200/120 s: 85 × 3", &generate(0, 0, 200, 120), &dd, (1, 1000), 100, 500, uni(&[1, 5, 9]), vec![], (255, ScaleUpLimit)),
        c("up with up and down events: (6 - 4 + 2) × 4", &generate(0, 0, 300, 300), &dd, (1, 1000), 6, 24, uni(&[4]), uni(&[2]), (16, ScaleUpLimit)),
        c("down default, old down events don't bind", &du, &dd, (1, 1000), 10, 5, vec![], uni(&[1, 5, 9]), (5, DesiredWithinRange)),
        c("down events, pods 115 → min 1", &du, &generate(115, 120, 0, 0), (1, 1000), 100, 0, vec![], uni(&[1, 5, 9]), (1, TooFewReplicas)),
        c("down events, pods 130 → min 5", &du, &generate(130, 120, 0, 0), (5, 1000), 100, 0, vec![], uni(&[1, 5, 9]), (5, TooFewReplicas)),
        c("down events, percent 100 → min 5", &du, &generate(0, 0, 100, 120), (5, 1000), 100, 2, vec![], uni(&[1, 5, 9]), (5, TooFewReplicas)),
        c("down events exhaust pods 5/120 s: hold current", &du, &generate(5, 120, 0, 0), (1, 1000), 100, 2, vec![], uni(&[1, 5, 9]), (100, ScaleDownLimit)),
        c("down events, percent 50/120 s: 112 × 0.5", &du, &generate(0, 0, 50, 120), (1, 1000), 100, 0, vec![], uni(&[2, 4, 6]), (56, ScaleDownLimit)),
        c("down with up and down events: (10 - 2 + 4) × 0.5", &du, &generate(0, 0, 50, 180), (1, 1000), 10, 1, uni(&[2]), uni(&[4]), (6, ScaleDownLimit)),
        c("down events prevent further scale-down (117 > 100)", &du, &generate(0, 0, 10, 120), (1, 1000), 100, 0, vec![], uni(&[10, 10, 10]), (100, ScaleDownLimit)),
        c("down events, percent 1000 goes negative: desired", &du, &generate(0, 0, 1000, 120), (1, 1000), 10, 5, vec![], uni(&[10, 10, 10]), (5, DesiredWithinRange)),
        c("outdated up events, one policy", &generate(1000, 60, 0, 0), &dd, (1, 1000), 100, 200, uni(&[8, 12, 9, 11]), vec![], (200, DesiredWithinRange)),
        c("outdated up events, two policies 120/60", &generate(1000, 120, 100, 60), &dd, (1, 1000), 100, 200, uni(&[8, 12, 9, 11]), vec![], (200, DesiredWithinRange)),
        c("outdated up events, two policies 30/60", &generate(1000, 30, 100, 60), &dd, (1, 1000), 100, 200, uni(&[8, 12, 9, 11]), vec![], (200, DesiredWithinRange)),
        c("outdated down events, one policy", &du, &generate(1000, 60, 0, 0), (1, 1000), 100, 5, vec![], uni(&[8, 12, 9, 11]), (5, DesiredWithinRange)),
        c("outdated down events, two policies 120/60", &du, &generate(1000, 120, 100, 60), (1, 1000), 100, 5, vec![], uni(&[8, 12, 9, 11]), (5, DesiredWithinRange)),
        c("outdated down events, two policies 30/60", &du, &generate(1000, 30, 100, 60), (1, 1000), 100, 5, vec![], uni(&[8, 12, 9, 11]), (5, DesiredWithinRange)),
        // TestCalculateScaleUpLimitWithScalingRules / ...DownLimitWithBehaviors: select Min.
        c("Min up: min(1 + 2, ceil(1.5))", &rules(300, SelectPolicy::Min, vec![pol(Pods, 2, 60), pol(Percent, 50, 60)]), &dd, (1, 1000), 1, 1000, vec![], vec![], (2, ScaleUpLimit)),
        c("Min down: max(5 - 2, trunc(2.5))", &du, &rules(300, SelectPolicy::Min, vec![pol(Pods, 2, 60), pol(Percent, 50, 60)]), (0, 1000), 5, 0, vec![], vec![], (3, ScaleDownLimit)),
        // TestUpscaleCapGreaterThanMaxReplicas, TestZeroMinReplicasDesiredZero.
        c("700 %/60 s allows 24, max 20", &generate(0, 0, 700, 60), &dd, (1, 20), 3, 60, vec![], vec![], (20, TooManyReplicas)),
        c("min 0: down to 0", &du, &dd, (0, 5), 3, 0, vec![], vec![], (0, DesiredWithinRange)),
    ];
    assert_rates(cases);
}

/// Upstream `reconcileKey` seeds the recommendations with the current size only when it has
/// none (`if _, init := a.recommendations[key]; !init`); a history it holds is the window's, as
/// `TestNormalizeDesiredReplicasWithBehavior` hands one in. A first decision handed a history
/// of 4 at 5 units, with the metric wanting 3, lands on the window's 4 — not on a seeded 5.
#[test]
fn a_first_decision_keeps_a_recommendation_history_it_was_handed() {
    let f = fleet_with_metric(
        "queue_depth",
        "{ type = \"AverageValue\", average_value = 10 }",
        "[fleets.panic]\nenabled = false",
    );
    let handed = EngineState {
        recommendations: vec![TimedRecommendation {
            at: t(-60),
            units: 4,
        }],
        ..EngineState::default()
    };
    let s = snap(5, &[Some(6.0); 5], t(0)); // 30 waiting over a target of 10 each → 3
    let (d, st) = decide(&f, &s, &handed, t(0));
    assert_eq!(d.desired_units, 4, "{}", d.summary);
    assert!(d.has(Reason::ScaleDownStabilized), "{}", d.summary);
    assert!(st.started_at.is_some());
    // With no history, the seed is the current size: nothing goes down.
    let (d, _) = decide(&f, &s, &EngineState::default(), t(0));
    assert_eq!(d.desired_units, 5, "{}", d.summary);
}

/// Upstream `TestNoBackoffUpscaleCMNoBackoffCpu`: CPU wants 600 (2000 % avg vs a 10 % target),
/// qps wants 4; the higher valid metric wins (`computeReplicasForMetrics`), and max 5 caps it.
#[test]
fn upstream_two_valid_metrics_highest_wins_then_max_caps() {
    let f = fleet(
        "min_units = 1\nmax_units = 5\n[fleets.panic]\nenabled = false\n\
         [[fleets.metrics]]\nname = \"m\"\nsignal = \"gpu_utilization\"\n\
         target = { type = \"Utilization\", average_utilization = 10 }\n\
         [[fleets.metrics]]\nname = \"q\"\nsignal = \"queue_depth\"\n\
         target = { type = \"AverageValue\", average_value = 15 }\n",
    );
    let mut s = snap(3, &[Some(2000.0), Some(1000.0), Some(3000.0)], t(0));
    for (inst, q) in s.instances.iter_mut().zip([20.0, 10.0, 30.0]) {
        inst.samples.insert(
            "q".into(),
            llm_autoscaler::model::Sample { value: q, at: t(0) },
        );
    }
    let (d, _) = decide(&f, &s, &EngineState::default(), t(0));
    assert_eq!(d.desired_units, 5, "{}", d.summary); // metrics 600 → rate allows 7 → max 5
    assert!(d.has(Reason::TooManyReplicas), "{}", d.summary);
}

/// Upstream `TestScaleUpFromZeroOneMetricInvalid`: min 0, desired 0, three instances at 30/40/50 %
/// of a 30 % target → 4. The invalid second metric does not block a scale-up.
#[test]
fn upstream_scale_up_from_zero_with_one_metric_invalid() {
    let f = fleet(
        "min_units = 0\nmax_units = 6\n[fleets.panic]\nenabled = false\n\
         [[fleets.metrics]]\nname = \"m\"\nsignal = \"gpu_utilization\"\n\
         target = { type = \"Utilization\", average_utilization = 30 }\n\
         [[fleets.metrics]]\nname = \"sqs\"\nsignal = \"external_queue_depth\"\n\
         target = { type = \"AverageValue\", average_value = 5 }\n",
    );
    let s = snap(0, &[Some(30.0), Some(40.0), Some(50.0)], t(0));
    let (d, _) = decide(&f, &s, &EngineState::default(), t(0));
    assert_eq!(d.desired_units, 4, "{}", d.summary); // rate from 0: max(0 + 4, 0 × 2) = 4
    assert!(d.has(Reason::InvalidMetrics), "{}", d.summary);
}

/// Upstream `TestScaleDownToZeroCMExternal` / `TestScaleDownToZeroCMObject`: min 0 and a zero
/// fleet-level Value scale to 0. Upstream passes an empty, non-nil recommendation history; here a
/// 0 s scale-down window does the same: a fresh engine's seed (its current size) is then outside
/// the window, which counts a recommendation only while strictly inside it.
#[test]
fn upstream_scale_down_to_zero_on_a_fleet_value_metric() {
    let f = fleet(
        "min_units = 0\nmax_units = 6\n[fleets.panic]\nenabled = false\n\
         [fleets.behavior.scale_down]\nstabilization_window_secs = 0\n\
         [[fleets.metrics]]\nname = \"m\"\nsignal = \"custom_fleet\"\n\
         target = { type = \"Value\", value = 14.4 }\n",
    );
    let s = with_fleet_metric(snap(5, &[Some(0.0); 5], t(0)), 0.0, t(0));
    let (d, _) = decide(&f, &s, &EngineState::default(), t(0));
    assert_eq!(d.desired_units, 0, "{}", d.summary);
}

/// Upstream's tolerance is applied inside each metric's calculation, before the max is taken:
/// one metric within tolerance keeps the current size even when another wants fewer.
/// (This follows computeReplicasForMetrics; it is not a single upstream test.)
#[test]
fn per_metric_tolerance_blocks_scale_down_by_another_metric() {
    let f = fleet(
        "min_units = 1\nmax_units = 10\n[fleets.panic]\nenabled = false\n\
         [fleets.behavior.scale_down]\nstabilization_window_secs = 0\n\
         [[fleets.metrics]]\nname = \"m\"\nsignal = \"gpu_utilization\"\n\
         target = { type = \"Utilization\", average_utilization = 50 }\n\
         [[fleets.metrics]]\nname = \"q\"\nsignal = \"queue_depth\"\n\
         target = { type = \"AverageValue\", average_value = 10 }\n",
    );
    let mut s = snap(4, &[Some(52.0); 4], t(0)); // 1.04: within → 4
    for inst in &mut s.instances {
        inst.samples.insert(
            "q".into(),
            llm_autoscaler::model::Sample {
                value: 2.0,
                at: t(0),
            },
        ); // wants 1
    }
    let (d, _) = decide(&f, &s, &EngineState::default(), t(0));
    assert_eq!(d.desired_units, 4, "{}", d.summary);
}

/// Upstream `TestScaleUpBothMetricsEmpty` / `TestEmptyMetrics`: no metric valid → hold.
#[test]
fn upstream_all_metrics_invalid_hold() {
    let f = fleet_with_metric(
        "queue_depth",
        "{ type = \"AverageValue\", average_value = 10 }",
        "[fleets.panic]\nenabled = false",
    );
    let (d, _) = decide(
        &f,
        &snap(3, &[None; 3], t(0)),
        &EngineState::default(),
        t(0),
    );
    assert_eq!(d.desired_units, 3, "{}", d.summary);
    assert!(d.has(Reason::InvalidMetrics), "{}", d.summary);
}
