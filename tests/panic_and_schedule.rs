//! Knative-style panic mode in and out, the fresh-start guarantee, schedules across DST
//! changes, and the final clamp.

mod common;

use common::*;
use llm_autoscaler::engine::{decide, Action, EngineState, Reason};
use llm_autoscaler::model::Timestamp;
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

/// Engine state that has been running for a while without panic.
fn settled(f: &llm_autoscaler::config::Fleet, units: u32) -> EngineState {
    let mut state = EngineState::default();
    for secs in (-600..=-15).step_by(15) {
        let (_, st) = decide(
            f,
            &snap(units, &vec![Some(10.0); units as usize], t(secs)),
            &state,
            t(secs),
        );
        state = st;
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
