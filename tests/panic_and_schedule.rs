//! Knative-style panic mode in and out, the fresh-start guarantee, schedules across DST
//! changes, and the final clamp.

mod common;

use common::*;
use llm_autoscaler::engine::{decide, Action, EngineState, Reason};
use llm_autoscaler::model::{LifecycleState, Timestamp};
use llm_autoscaler::policy::schedule::{bounds, is_open};

const Q10: &str = "{ type = \"AverageValue\", average_value = 10 }";

/// A fleet whose ordinary rules are slow (1 unit per minute up), to show panic bypassing them.
fn slow_fleet() -> llm_autoscaler::config::Fleet {
    fleet_with_metric(
        "queue_depth",
        Q10,
        "[fleets.behavior.scale_up]\npolicies = [{ type = \"pods\", value = 1, period_secs = 60 }]\n[fleets.behavior.scale_down]\nstabilization_window_secs = 0",
    )
}

/// Engine state that has been running for a while without panic, at 10 per instance.
fn settled(f: &llm_autoscaler::config::Fleet, units: u32) -> EngineState {
    settled_at(f, units, 10.0)
}

/// Engine state that has been running for ten minutes without panic, at `value` per instance.
fn settled_at(f: &llm_autoscaler::config::Fleet, units: u32, value: f64) -> EngineState {
    let mut state = EngineState::default();
    for secs in (-600..=-15).step_by(15) {
        let s = snap(units, &vec![Some(value); units as usize], t(secs));
        state = decide(f, &s, &state, t(secs)).1;
    }
    assert!(!state.panic.active());
    state
}

#[test]
fn panic_scales_on_demand_at_once_and_never_down_until_stable() {
    let f = slow_fleet();
    let state = settled(&f, 4);
    // Demand 2.5× the in-service capacity: 4 instances with 25 waiting each → 10 units.
    let (d, st) = decide(&f, &snap(4, &[Some(25.0); 4], t(0)), &state, t(0));
    assert_eq!(d.desired_units, 10, "{}", d.summary);
    assert_eq!(
        d.stages.rate_limited,
        Some(5),
        "the ordinary rules would allow only 5"
    );
    assert!(d.panic.unwrap().active && d.has(Reason::DemandOverThreshold));
    // Demand falls below the threshold: no scale-down while the panic lasts.
    let mut state = st;
    for secs in [15, 30, 45, 60] {
        let (d, st) = decide(&f, &snap(10, &[Some(3.0); 4], t(secs)), &state, t(secs));
        assert_eq!(d.desired_units, 10, "at {secs} s: {}", d.summary);
        assert!(d.has(Reason::PanicWindow));
        state = st;
    }
    // 61 s after the last over-threshold observation the panic ends and capacity may fall.
    let (d, st) = decide(&f, &snap(10, &[Some(3.0); 4], t(75)), &state, t(75));
    assert!(!d.panic.unwrap().active, "{}", d.summary);
    assert_eq!(d.action, Action::ScaleDown);
    assert!(!st.panic.active());
}

#[test]
fn below_threshold_demand_does_not_panic() {
    let f = slow_fleet();
    let state = settled(&f, 4);
    // 17 waiting on each of 4 → 7 units wanted, 1.75× capacity: ordinary, rate-limited scale-up.
    let (d, _) = decide(&f, &snap(4, &[Some(17.0); 4], t(0)), &state, t(0));
    assert!(!d.panic.unwrap().active);
    assert_eq!(d.desired_units, 5);
    assert!(d.has(Reason::ScaleUpLimit));
}

#[test]
fn disabled_panic_never_engages() {
    let f = fleet_with_metric("queue_depth", Q10, "[fleets.panic]\nenabled = false");
    let (d, st) = decide(
        &f,
        &snap(4, &[Some(100.0); 4], t(0)),
        &EngineState::default(),
        t(0),
    );
    // A fresh engine still holds (fresh-start panic state) but demand never triggers it.
    assert!(!d.panic.unwrap().over_threshold);
    let (d, _) = decide(
        &f,
        &snap(d.desired_units, &[Some(100.0); 4], t(120)),
        &st,
        t(120),
    );
    assert!(!d.panic.unwrap().active);
}

#[test]
fn fresh_engine_never_scales_down_on_lost_history() {
    let f = fleet_with_metric(
        "queue_depth",
        Q10,
        "[fleets.behavior.scale_down]\nstabilization_window_secs = 0",
    );
    // A restart mid-surge: 20 units set, metrics momentarily say 2 are enough.
    let mut state = EngineState::default();
    for secs in [0, 15, 30, 45, 60] {
        let (d, st) = decide(&f, &snap(20, &[Some(1.0); 20], t(secs)), &state, t(secs));
        assert_eq!(d.desired_units, 20, "at {secs} s: {}", d.summary);
        state = st;
    }
    assert!(decide(
        &f,
        &snap(20, &[Some(1.0); 20], t(0)),
        &EngineState::default(),
        t(0)
    )
    .0
    .has(Reason::NoHistory));
}

#[test]
fn held_for_stale_data_no_scale_down_but_scale_up_allowed() {
    let two = "[[fleets.metrics]]\nname = \"sqs\"\nsignal = \"external_queue_depth\"\ntarget = { type = \"AverageValue\", average_value = 5 }\n[fleets.behavior.scale_down]\nstabilization_window_secs = 0";
    let f = fleet_with_metric("queue_depth", Q10, two);
    let state = {
        // Settle with both metrics valid.
        let mut s = snap(10, &[Some(10.0); 10], t(-100));
        s.fleet_metrics.insert(
            "sqs".into(),
            llm_autoscaler::model::Sample {
                value: 50.0,
                at: t(-100),
            },
        );
        let mut state = EngineState::default();
        for secs in (-600..=-100).step_by(15) {
            let (_, st) = decide(&f, &s, &state, t(secs));
            state = st;
        }
        state
    };
    // sqs is missing; queue_depth says 2 units: hold.
    let (d, _) = decide(&f, &snap(10, &[Some(2.0); 10], t(0)), &state, t(0));
    assert_eq!(d.action, Action::Hold, "{}", d.summary);
    assert!(d
        .conditions
        .iter()
        .any(|c| c.reason == Reason::InvalidMetrics && !c.status));
    // sqs still missing but queue_depth says 15 units: scale-up goes ahead.
    let (d, _) = decide(&f, &snap(10, &[Some(15.0); 10], t(0)), &state, t(0));
    assert_eq!(d.desired_units, 15, "{}", d.summary);
}

#[test]
fn clamps_to_fleet_bounds() {
    let f = fleet(&format!("min_units = 2\nmax_units = 8\n[[fleets.metrics]]\nname = \"m\"\nsignal = \"queue_depth\"\ntarget = {Q10}\n"));
    let (d, _) = decide(
        &f,
        &snap(4, &[Some(1000.0); 4], t(0)),
        &EngineState::default(),
        t(0),
    );
    assert_eq!(d.desired_units, 8);
    let (d, _) = decide(
        &f,
        &snap(12, &[Some(10.0); 12], t(0)),
        &EngineState::default(),
        t(0),
    );
    assert_eq!(
        d.desired_units, 8,
        "above max is brought down even on a fresh engine"
    );
    assert!(d.has(Reason::TooManyReplicas));
    let (d, _) = decide(
        &f,
        &snap(1, &[Some(0.0)], t(0)),
        &EngineState::default(),
        t(0),
    );
    assert_eq!(d.desired_units, 2);
}

fn at(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap()
}

fn berlin_nine_to_five() -> llm_autoscaler::config::Fleet {
    fleet(&format!(
        "min_units = 1\nmax_units = 20\n[[fleets.metrics]]\nname = \"m\"\nsignal = \"queue_depth\"\ntarget = {Q10}\n\
         [[fleets.schedules]]\nname = \"office\"\nstart = \"0 9 * * *\"\nend = \"0 17 * * *\"\ntimezone = \"Europe/Berlin\"\nmin_units = 6\n\
         [[fleets.schedules]]\nname = \"night\"\nstart = \"0 22 * * *\"\nend = \"0 6 * * *\"\ntimezone = \"Europe/Berlin\"\nmax_factor = 0.25\n"
    ))
}

#[test]
fn schedules_follow_local_time_across_dst() {
    let f = berlin_nine_to_five();
    let office = &f.schedules[0];
    // 2026-03-29 02:00 CET → 03:00 CEST. 09:00 local is 08:00 UTC before, 07:00 UTC after.
    let cases = [
        ("2026-03-28T07:30:00Z", false), // 08:30 CET
        ("2026-03-28T08:00:00Z", true),  // 09:00 CET
        ("2026-03-28T15:59:00Z", true),  // 16:59 CET
        ("2026-03-28T16:00:00Z", false), // 17:00 CET
        ("2026-03-30T07:00:00Z", true),  // 09:00 CEST
        ("2026-03-30T06:59:00Z", false), // 08:59 CEST
        ("2026-03-30T15:00:00Z", false), // 17:00 CEST
        // 2026-10-25 03:00 CEST → 02:00 CET: back to UTC+1.
        ("2026-10-26T08:00:00Z", true),  // 09:00 CET
        ("2026-10-24T07:00:00Z", true),  // 09:00 CEST
        ("2026-10-26T07:30:00Z", false), // 08:30 CET
    ];
    for (when, open) in cases {
        assert_eq!(is_open(office, at(when)), open, "office at {when}");
    }
    // Overnight window: open across midnight, in local time.
    let night = &f.schedules[1];
    assert!(is_open(night, at("2026-03-28T23:30:00Z"))); // 00:30 CET
    assert!(is_open(night, at("2026-03-29T03:30:00Z"))); // 05:30 CEST, the short night
    assert!(!is_open(night, at("2026-03-29T04:00:00Z"))); // 06:00 CEST
}

#[test]
fn schedule_bounds_combine_and_move_capacity() {
    let f = berlin_nine_to_five();
    let b = bounds(&f, at("2026-03-30T08:00:00Z"));
    assert_eq!((b.min_units, b.max_units), (6, 20));
    assert_eq!(b.active_schedules, vec!["office".to_string()]);
    let b = bounds(&f, at("2026-03-30T23:00:00Z"));
    assert_eq!((b.min_units, b.max_units), (1, 5));
    // Floor raises capacity at once when the window opens, whatever the metrics say.
    let now = at("2026-03-30T07:00:00Z");
    let (d, _) = decide(
        &f,
        &snap(2, &[Some(0.0); 2], now),
        &EngineState::default(),
        now,
    );
    assert_eq!(d.desired_units, 6, "{}", d.summary);
    assert!(d.has(Reason::ScheduleActive));
    // A night ceiling brings capacity down when data is fresh.
    let now = at("2026-03-30T23:00:00Z");
    let (d, _) = decide(
        &f,
        &snap(9, &[Some(10.0); 9], now),
        &EngineState::default(),
        now,
    );
    assert_eq!(d.desired_units, 5, "{}", d.summary);
    // …but not while a metric is stale.
    let (d, _) = decide(&f, &snap(9, &[None; 9], now), &EngineState::default(), now);
    assert_eq!(d.desired_units, 9, "{}", d.summary);
}

#[test]
fn latency_alone_never_triggers_panic_but_still_scales_up_within_the_rate_limits() {
    let f = fleet(&format!(
        "min_units = 1\nmax_units = 100\n[[fleets.metrics]]\nname = \"m\"\nsignal = \"queue_depth\"\ntarget = {Q10}\n\
         [[fleets.metrics]]\nname = \"ttft\"\nsignal = \"ttft_p95_secs\"\ntarget = {{ type = \"Value\", value = 1.0 }}\n\
         [fleets.behavior.scale_up]\npolicies = [{{ type = \"pods\", value = 2, period_secs = 60 }}]\n"
    ));
    let state = {
        let mut state = EngineState::default();
        for secs in (-600..=-15).step_by(15) {
            let mut s = snap(4, &[Some(10.0); 4], t(secs));
            s.fleet_metrics.insert(
                "ttft".into(),
                llm_autoscaler::model::Sample {
                    value: 0.5,
                    at: t(secs),
                },
            );
            state = decide(&f, &s, &state, t(secs)).1;
        }
        state
    };
    // A backlog has drained (queue at target) but TTFT still reads 10× its target.
    let mut s = snap(4, &[Some(10.0); 4], t(0));
    s.fleet_metrics.insert(
        "ttft".into(),
        llm_autoscaler::model::Sample {
            value: 10.0,
            at: t(0),
        },
    );
    let (d, _) = decide(&f, &s, &state, t(0));
    assert_eq!(d.winning_metric.as_deref(), Some("ttft"));
    assert_eq!(d.stages.metrics, Some(40));
    assert!(!d.panic.unwrap().active, "{}", d.summary);
    assert_eq!(
        d.desired_units, 6,
        "rate-limited to +2 per minute: {}",
        d.summary
    );
}

/// Upstream HPA's `TestUpscaleCap` (`horizontal_test.go`): 3 pods at 100, 200 and 300 % of a
/// 10 % target want 60; a 700 %-per-60 s scale-up policy caps it at 24 (`ScaleUpLimit`). With
/// panic disabled a freshly started engine must give exactly that — it used to start in panic
/// whatever the policy said and answer 60. With panic enabled a fresh engine starts in panic as
/// Knative's KPA does when more than one unit is ready, and not with one.
#[test]
fn upstream_upscale_cap_holds_for_a_fresh_engine_without_panic() {
    let policy = |panic: bool| {
        fleet(&format!(
            "min_units = 1\nmax_units = 100\n\
             [[fleets.metrics]]\nname = \"m\"\nsignal = \"gpu_utilization\"\n\
             target = {{ type = \"Utilization\", average_utilization = 10 }}\n\
             [fleets.behavior.scale_up]\nstabilization_window_secs = 0\n\
             policies = [{{ type = \"percent\", value = 700, period_secs = 60 }}]\n\
             [fleets.panic]\nenabled = {panic}\n"
        ))
    };
    let levels = [Some(100.0), Some(200.0), Some(300.0)];
    // (panic enabled, want, reason)
    for (panic, want, reason) in [
        (false, 24, Reason::ScaleUpLimit),
        (true, 60, Reason::DemandOverThreshold),
    ] {
        let (d, _) = decide(
            &policy(panic),
            &snap(3, &levels, t(0)),
            &EngineState::default(),
            t(0),
        );
        assert_eq!(d.desired_units, want, "panic {panic}: {}", d.summary);
        assert!(d.has(reason), "panic {panic}: {}", d.summary);
    }
    // Demand at the target (no threshold to cross): a fresh engine panics with 3 ready units, not
    // with 1, and never with panic disabled.
    for (panic, ready, fresh_panic) in [(true, 3, true), (true, 1, false), (false, 3, false)] {
        let s = snap(ready, &vec![Some(10.5); ready as usize], t(0));
        let (_, st) = decide(&policy(panic), &s, &EngineState::default(), t(0));
        assert_eq!(
            st.panic.active(),
            fresh_panic,
            "panic {panic}, {ready} ready"
        );
    }
}

/// The reliability issue's case: metrics frozen at a low value and stamped an hour ahead took
/// a fleet from 10 units to 2 in 10 minutes. Future-stamped data holds, like stale data.
#[test]
fn frozen_data_stamped_in_the_future_never_scales_down() {
    let f = fleet_with_metric(
        "queue_depth",
        Q10,
        "[fleets.behavior.scale_down]\nstabilization_window_secs = 0",
    );
    let mut state = EngineState::default();
    for secs in (-600..=0).step_by(15) {
        let (_, st) = decide(&f, &snap(10, &[Some(10.0); 10], t(secs)), &state, t(secs));
        state = st;
    }
    for secs in (15..=900).step_by(15) {
        let frozen = snap(10, &[Some(1.0); 10], t(3600));
        let (d, st) = decide(&f, &frozen, &state, t(secs));
        assert_eq!(d.desired_units, 10, "at {secs} s: {}", d.summary);
        state = st;
    }
    // The same values stamped now do scale down: the hold came from the stamps.
    let (d, _) = decide(&f, &snap(10, &[Some(1.0); 10], t(915)), &state, t(915));
    assert!(d.desired_units < 10, "{}", d.summary);
}

// Knative Serving's `pkg/autoscaler/scaling/autoscaler_test.go`, restated in units (the cases
// about panic and the scale-up rate; docs/engine.md lists what is not ported).

/// KPA's test spec: target 1 per unit, threshold 2, max scale-up rate 10, window 60 s.
/// `rules` is an optional `[fleets.behavior…]` fragment.
fn kpa_fleet(rules: &str) -> llm_autoscaler::config::Fleet {
    fleet(&format!(
        "min_units = 1\nmax_units = 2000\n[[fleets.metrics]]\nname = \"m\"\nsignal = \"queue_depth\"\n\
         target = {{ type = \"AverageValue\", average_value = 1 }}\n\
         [fleets.panic]\nmax_scale_up_rate = 10\n{rules}\n"
    ))
}

/// Upstream `TestAutoscalerPanicModeExponentialTrackAndStabilize`: each decision follows a
/// 6× rise at once (within 10 × ready), and holds when the load stops rising.
#[test]
fn upstream_panic_tracks_an_exponential_rise_and_stabilizes() {
    let f = kpa_fleet("");
    let mut state = EngineState::default();
    // (units set and in service, load per instance, at, want)
    for (units, load, secs, want) in [
        (1u32, 6.0, 0, 6u32),
        (6, 6.0, 1, 36),
        (36, 6.0, 2, 216),
        (216, 6.0, 3, 1296),
        (1296, 1.0, 4, 1296),
    ] {
        let s = snap(units, &vec![Some(load); units as usize], t(secs));
        let (d, st) = decide(&f, &s, &state, t(secs));
        assert_eq!(d.desired_units, want, "at {secs} s: {}", d.summary);
        assert!(d.panic.unwrap().active, "at {secs} s");
        state = st;
    }
    assert_eq!(
        state.panic.last_over,
        Some(t(3)),
        "1296 on 1296 is not over the threshold"
    );
}

/// Upstream `TestAutoscalerRateLimitScaleUp`: 101 units wanted from 1 ready — panic goes to
/// ceil(10 × 1) = 10, then from 10 ready to ceil(10 × 10) = 100.
#[test]
fn upstream_panic_scale_up_is_capped_at_max_scale_up_rate_times_ready() {
    let f = fleet_with_metric("queue_depth", Q10, "[fleets.panic]\nmax_scale_up_rate = 10");
    let (d, st) = decide(
        &f,
        &snap(1, &[Some(1001.0)], t(0)),
        &EngineState::default(),
        t(0),
    );
    assert!(d.has(Reason::DemandOverThreshold), "{}", d.summary);
    assert_eq!(d.desired_units, 10, "{}", d.summary);
    let (d, _) = decide(&f, &snap(10, &[Some(101.0); 10], t(15)), &st, t(15));
    assert_eq!(d.desired_units, 100, "{}", d.summary);
}

/// Upstream `TestAutoscalerUseOnePodAsMinimumIfEndpointsNotFound`: nothing in service counts
/// as one unit for the threshold and the rate (1000 / 10 wanted, at most 10 × 1).
#[test]
fn upstream_zero_in_service_counts_as_one_for_panic() {
    let f = fleet_with_metric(
        "external_queue_depth",
        Q10,
        "[fleets.panic]\nmax_scale_up_rate = 10",
    );
    let s = with_fleet_metric(snap(0, &[], t(0)), 1000.0, t(0));
    let (d, _) = decide(&f, &s, &EngineState::default(), t(0));
    assert!(d.panic.unwrap().active, "{}", d.summary);
    assert_eq!(d.desired_units, 10, "{}", d.summary);
}

/// Upstream `TestAutoscalerExtendPanicWindow`: demand exactly at the threshold re-arms the
/// window.
#[test]
fn upstream_demand_at_the_threshold_extends_the_panic() {
    let f = kpa_fleet("");
    let state = settled_at(&f, 10, 1.0);
    let (d, st) = decide(&f, &snap(10, &[Some(2.5); 10], t(0)), &state, t(0));
    assert_eq!(d.desired_units, 25, "{}", d.summary);
    // 80 wanted on 40 in service: exactly 2×.
    let (d, st) = decide(&f, &snap(40, &[Some(2.0); 40], t(30)), &st, t(30));
    assert_eq!(d.desired_units, 80, "{}", d.summary);
    assert!(d.panic.unwrap().over_threshold);
    assert_eq!(st.panic.last_over, Some(t(30)));
    // 75 s after the first crossing, 45 s after the last: still panicking.
    let (d, st) = decide(&f, &snap(80, &[Some(1.0); 80], t(75)), &st, t(75));
    assert!(
        d.panic.unwrap().active && d.has(Reason::PanicWindow),
        "{}",
        d.summary
    );
    let (d, _) = decide(&f, &snap(80, &[Some(1.0); 80], t(91)), &st, t(91));
    assert!(!d.panic.unwrap().active, "{}", d.summary);
}

/// Upstream `TestAutoscalerUnpanicAfterSlowIncrease`, with loads outside HPA's 10 % tolerance
/// (upstream's 41 wanted on 40 is within it, and panic reads HPA's answer, 40): a rise below the
/// threshold is followed but does not extend the panic, which ends a window after the last
/// crossing.
#[test]
fn upstream_a_slow_rise_does_not_extend_the_panic() {
    let f = kpa_fleet("");
    let state = settled_at(&f, 10, 1.0);
    let (d, st) = decide(&f, &snap(10, &[Some(2.5); 10], t(0)), &state, t(0));
    assert_eq!(d.desired_units, 25, "{}", d.summary);
    // 50 wanted on 40: 1.25×, under the threshold; capacity still follows.
    let (d, st) = decide(&f, &snap(40, &[Some(1.25); 40], t(30)), &st, t(30));
    assert_eq!(d.desired_units, 50, "{}", d.summary);
    assert!(d.panic.unwrap().active && !d.panic.unwrap().over_threshold);
    assert_eq!(
        st.panic.last_over,
        Some(t(0)),
        "the panic time must not move"
    );
    // One tick past the window: panic over, HPA's answer (83 = ceil(1.5 × 55)).
    let (d, st) = decide(&f, &snap(55, &[Some(1.5); 55], t(62)), &st, t(62));
    assert!(!d.panic.unwrap().active, "{}", d.summary);
    assert_eq!(st.panic, Default::default());
    assert_eq!(d.desired_units, 83, "{}", d.summary);
}

/// Upstream `TestAutoscalerScale/StableModeIncreaseWithSmallScaleUpRate`: 4 wanted on 2 (2×,
/// a panic), capped at ceil(1.1 × 2) = 3.
/// With HPA's default rules ours gives 4: `max_scale_up_rate` bounds panic's own jump, and HPA's
/// rate policies, which allow more, win (docs/engine.md, deviations).
#[test]
fn upstream_small_max_scale_up_rate_still_grows_by_one() {
    let slow = "[fleets.behavior.scale_up]\npolicies = [{ type = \"pods\", value = 1, period_secs = 60 }]\n[fleets.behavior.scale_down]\nstabilization_window_secs = 0";
    for (rules, want) in [(slow, 3u32), ("", 4u32 /* upstream: 3 */)] {
        let f = fleet(&format!(
            "min_units = 1\nmax_units = 100\n{rules}\n[[fleets.metrics]]\nname = \"m\"\nsignal = \"queue_depth\"\n\
             target = {{ type = \"AverageValue\", average_value = 1 }}\n[fleets.panic]\nmax_scale_up_rate = 1.1\n"
        ));
        let state = settled_at(&f, 2, 1.0);
        let (d, _) = decide(&f, &snap(2, &[Some(1.5), Some(1.6)], t(0)), &state, t(0));
        assert!(d.panic.unwrap().over_threshold, "{}", d.summary);
        assert_eq!(d.desired_units, want, "rules {rules:?}: {}", d.summary);
    }
}

/// Upstream `TestAutoscalerUpdateTarget`: a policy change between decisions takes effect at
/// once, the panic cap with it (101 wanted on 10, capped at 100).
#[test]
fn upstream_a_new_target_applies_at_the_next_decision() {
    let before = fleet_with_metric("queue_depth", Q10, "[fleets.panic]\nmax_scale_up_rate = 10");
    let after = fleet_with_metric(
        "queue_depth",
        "{ type = \"AverageValue\", average_value = 1 }",
        "[fleets.panic]\nmax_scale_up_rate = 10",
    );
    let (d, st) = decide(
        &before,
        &snap(1, &[Some(101.0)], t(0)),
        &EngineState::default(),
        t(0),
    );
    assert_eq!(d.desired_units, 10, "{}", d.summary);
    let mut loads = vec![Some(10.0); 9];
    loads.push(Some(11.0));
    let (d, _) = decide(&after, &snap(10, &loads, t(15)), &st, t(15));
    assert_eq!(d.desired_units, 100, "{}", d.summary);
}

/// Upstream `TestAutoscalerPanicThenUnPanicScaleDown`, exactly: 10 → 100 on a 10× burst, held
/// through a drop, 1 once 61 s have passed.
#[test]
fn upstream_panic_then_unpanic_scale_down() {
    let f = slow_fleet();
    let (d, st) = decide(
        &f,
        &snap(1, &[Some(100.0)], t(0)),
        &EngineState::default(),
        t(0),
    );
    assert_eq!(d.desired_units, 10, "{}", d.summary);
    let (d, st) = decide(&f, &snap(10, &[Some(100.0); 10], t(1)), &st, t(1));
    assert_eq!(d.desired_units, 100, "{}", d.summary);
    // 100 set, 10 in service, demand 1 unit: held.
    let (d, st) = decide(&f, &snap(100, &[Some(0.1); 10], t(31)), &st, t(31));
    assert_eq!(d.desired_units, 100, "{}", d.summary);
    let (d, _) = decide(&f, &snap(100, &[Some(0.1); 10], t(62)), &st, t(62));
    assert!(!d.panic.unwrap().active, "{}", d.summary);
    assert_eq!(d.desired_units, 1, "{}", d.summary);
}

/// Upstream `TestStartInPanicMode`: 0 or 1 ready → no panic, 2 → panic. The seed: upstream
/// holds the ready count (2 here either way); ours holds the desired capacity (docs/engine.md).
#[test]
fn upstream_start_in_panic_only_above_one_ready() {
    let f = kpa_fleet("");
    for ready in [0u32, 1, 2] {
        let s = snap(ready, &vec![Some(1.0); ready as usize], t(0));
        let (_, st) = decide(&f, &s, &EngineState::default(), t(0));
        assert_eq!(st.panic.active(), ready > 1, "{ready} ready");
    }
    // 20 set, 3 in service, 17 booting: ours holds 20 (upstream's maxPanicPods would be 3).
    let mut s = snap(20, &[Some(1.0); 3], t(0));
    s.instances
        .extend((3..20).map(|i| inst(i, LifecycleState::Pending, None, t(0))));
    let (_, st) = decide(&f, &s, &EngineState::default(), t(0));
    assert!(st.panic.active());
    assert_eq!(st.panic.max_units, 20);
}
