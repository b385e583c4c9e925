//! `token_work` — the units of work each server's token rates keep busy, through the instance
//! profile's capacity model — as the engine sees it: what it reads does not depend on how the
//! same tokens are cut into requests, and a steady plateau of work does not scale down
//! whatever the request count says.

mod common;

use common::{fleet, t};
use llm_autoscaler::config::Fleet;
use llm_autoscaler::engine::{decide, Decision, EngineState};
use llm_autoscaler::model::{
    DemandForecast, Instance, LifecycleState, ServerLoad, Snapshot, Timestamp,
};
use llm_autoscaler::policy::capacity;
use llm_autoscaler::sim::perf;
use proptest::prelude::*;

/// A g6.xlarge fleet (8B) scaling on `token_work` alone, its target "auto".
fn token_fleet() -> Fleet {
    let mut f = fleet(
        "min_units = 1\nmax_units = 200\n[[fleets.metrics]]\nsignal = \"token_work\"\n\
         target = { type = \"AverageValue\", average_value = \"auto\" }\n",
    );
    capacity::resolve_fleet(&mut f, &perf::builtin()).unwrap();
    f
}

/// One server's load: (prompt tokens/s, generated tokens/s, requests/s, waiting, running, KV).
type Load = (f64, f64, f64, f64, f64, f64);

fn snapshot(loads: &[Load], at: Timestamp) -> Snapshot {
    let instances: Vec<Instance> = loads
        .iter()
        .enumerate()
        .map(|(i, &(p, g, r, waiting, running, kv))| Instance {
            id: format!("i-{i}"),
            pool: "od".into(),
            weight_units: 1,
            state: LifecycleState::InService,
            samples: Default::default(),
            load: Some(ServerLoad {
                prompt_tokens_per_sec: p,
                generation_tokens_per_sec: g,
                requests_per_sec: r,
                waiting,
                running,
                kv_cache_fraction: kv,
                window_secs: 60.0,
                at,
            }),
        })
        .collect();
    Snapshot {
        desired_units: instances.len() as u32,
        instances,
        ..Snapshot::default()
    }
}

fn work(d: &Decision) -> (f64, Option<u32>) {
    let m = &d.metrics[0];
    (m.current.expect("token_work valid"), m.recommendation)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    /// The same prompt and generated tokens, finished as `k` times as many requests (with `k`
    /// times as many waiting, each `1/k` as long): the work per unit is the same, and so is
    /// the recommendation unless it is a scale-down. A scale-down is sized on the work's upper
    /// bound given the requests seen (`capacity::NOISE_Z`: fewer requests are a noisier
    /// estimate), so there the one with more requests releases at least as much, never less.
    #[test]
    fn the_work_does_not_depend_on_how_tokens_are_cut_into_requests(
        loads in prop::collection::vec(
            (0.0..12_000.0f64, 0.0..3_000.0f64, 0.05..40.0f64, 0.0..30.0f64, 1.0..256.0f64, 0.0..1.0f64),
            1..16,
        ),
        k in 0.1..10.0f64,
    ) {
        let f = token_fleet();
        let split: Vec<Load> = loads
            .iter()
            .map(|&(p, g, r, w, run, kv)| (p, g, r * k, w * k, run, kv))
            .collect();
        let now = t(0);
        let (a, _) = decide(&f, &snapshot(&loads, now), &EngineState::default(), now);
        let (b, _) = decide(&f, &snapshot(&split, now), &EngineState::default(), now);
        let ((wa, ra), (wb, rb)) = (work(&a), work(&b));
        prop_assert!((wa - wb).abs() <= 1e-9 * wa.abs().max(1.0), "{wa} vs {wb}");
        let current = loads.len() as u32;
        // Away from a rounding boundary of the ratio, the recommendations agree.
        let ratio = wa / f.metrics[0].target.figure() * current as f64;
        let on_boundary = (ratio - ratio.round()).abs() < 1e-6;
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        if !on_boundary && ra.max(rb) >= current {
            prop_assert_eq!(ra, rb, "work {} per unit", wa);
        }
        if ra < current && rb < current {
            let (fewer, more) = if k >= 1.0 { (ra, rb) } else { (rb, ra) };
            prop_assert!(more <= fewer, "more requests kept more: {more} > {fewer}");
        }
    }
}

/// A plateau of long documents: the fleet's servers stay 0.65 busy (above the 0.6 release
/// utilisation, under the 0.7 target), the queue drained, while the request count swings ten
/// to one as the mix moves between chat and documents. Half an hour of 15 s ticks: never a
/// scale-down — the request count is not the work. Then the work halves, with the same
/// swings: the same fleet does release capacity.
#[test]
fn a_steady_plateau_of_token_work_with_a_drained_queue_never_scales_down() {
    let f = token_fleet();
    let units = 10usize;
    let m = &f.metrics[0];
    assert!((m.target.figure() - f.capacity.target_utilization).abs() < 1e-9);
    let model = f.capacity.model.expect("the capacity model");
    let mut state = EngineState::default();
    let mut desired = units as u32;
    for tick in 0..160 {
        let busy_per_unit = if tick < 120 { 0.65 } else { 0.3 };
        let now = t(15 * tick);
        // Requests per second per unit: 1.2 (chat) to 0.12 (documents), a cycle every 5 minutes;
        // the same 0.65 of the unit's prefill time in prompt tokens, no decode (the split is
        // the prompt's): the work is flat.
        let phase = (tick % 20) as f64 / 20.0;
        let requests = 0.12 + 1.08 * (0.5 + 0.5 * (phase * std::f64::consts::TAU).cos());
        let prompt = busy_per_unit * model.prefill_tokens_per_sec;
        let serving = desired as usize;
        let prompt = prompt * units as f64 / serving as f64;
        let loads: Vec<Load> = (0..serving)
            .map(|_| (prompt, 0.0, requests, 0.0, 4.0, 0.2))
            .collect();
        let mut snap = snapshot(&loads, now);
        snap.desired_units = desired;
        let (d, next) = decide(&f, &snap, &state, now);
        let (w, _) = work(&d);
        let want = busy_per_unit * units as f64 / serving as f64;
        assert!((w - want).abs() < 1e-6, "tick {tick}: work {w}");
        if tick == 120 {
            assert_eq!(
                desired, units as u32,
                "nor up: 0.65 is under the 0.7 target"
            );
        }
        assert!(
            tick >= 120 || d.desired_units >= desired,
            "tick {tick}: scaled down {desired} → {} at {w:.3} busy per unit: {}",
            d.desired_units,
            d.summary
        );
        desired = d.desired_units;
        state = next;
    }
    // 3 units of work: released within ten minutes to 3 ÷ 0.6 = 5 units, widened by the
    // noise margin when as few as ~50 requests a minute carry the work (3 ÷ (0.6 ÷ 1.28) → 7),
    // and to 8 by the prefill queue in the documents' phase: 1.2 requests a second of 2.5 s
    // prefills each (×1.28 for the noise) wait over 0.5 s at their P95 on 7 units
    // (`capacity::queueing_floor_units`).
    assert!(desired <= 8, "{desired} units after the work halved");
}

/// The same work, once as long prompts and once as short ones: three units serving 0.6
/// requests a second of a second's prefill each keep them 20 % busy, and their utilisation
/// alone would release two. Two servers would make 14 % of the requests wait behind a long
/// prefill (P95 wait over a quarter of the SLO), so the fleet keeps the three its prefill
/// queue needs (`capacity::queueing_floor_units`); twenty times as many requests a twentieth
/// as long queue next to nothing and are released to the utilisation's answer. And while the latency
/// shows the P95 wait over its budget (a quarter of the SLO) at this size, nothing is released
/// at all, whether TTFT is over the SLO yet or not.
#[test]
fn a_scale_down_keeps_the_units_the_prefill_queue_needs() {
    let f = token_fleet();
    let prefill = f
        .capacity
        .model
        .expect("the capacity model")
        .prefill_tokens_per_sec;
    // (requests a second per server, the latency's P95 TTFT and wait ÷ the SLO, units wanted
    // after 15 minutes)
    let cases = [
        (0.2, None, Some(3)),
        (4.0, None, None),
        (4.0, Some((2.0, 1.0)), Some(3)), // TTFT over the SLO because requests queue
        (4.0, Some((0.9, 0.3)), Some(3)), // TTFT within it, the wait over its budget
        (4.0, Some((0.9, 0.2)), None),    // the wait within its budget
    ];
    for (requests, latency, want) in cases {
        let mut state = EngineState::default();
        let mut desired = 3u32;
        let mut floor = None;
        for tick in 0..60 {
            let now = t(15 * tick);
            let loads: Vec<Load> = (0..desired)
                .map(|_| {
                    (
                        0.6 * prefill / f64::from(desired),
                        0.0,
                        requests * 3.0 / f64::from(desired),
                        0.0,
                        1.0,
                        0.05,
                    )
                })
                .collect();
            let mut snap = snapshot(&loads, now);
            snap.desired_units = desired;
            if let Some((ttft, wait)) = latency {
                snap.latency = Some(llm_autoscaler::model::FleetLatency {
                    ttft_p95_secs: ttft * f.slo.ttft_p95_secs,
                    queue_wait_p95_secs: wait * f.slo.ttft_p95_secs,
                    at: now,
                });
            }
            let (d, next) = decide(&f, &snap, &state, now);
            floor = d.capacity.and_then(|c| c.queue_floor_units);
            desired = d.desired_units;
            state = next;
        }
        match want {
            Some(units) => assert_eq!(desired, units, "{requests}/s, latency {latency:?}"),
            None => assert!(
                desired < 3,
                "{requests}/s, latency {latency:?}: {desired} units, floor {floor:?}"
            ),
        }
        if latency.is_none() {
            let expected = if requests < 1.0 { 3 } else { 1 };
            assert_eq!(floor, Some(expected), "{requests}/s");
        }
    }
}

/// A silence at the servers — six units, not a request for twelve minutes — is held while the
/// servers' own counts are all that reads the demand (`silence_hold_mins`, default an hour): as
/// missing data with no forecast, at the forecast floor with one (a flat forecast of six
/// units' demand, no rise ahead: the floor holds for the silence alone). An outage upstream
/// looks the same, and its traffic comes back at once. Switched off, or with a fleet-level
/// demand signal that reads (an SQS queue, drained), the fleet releases capacity once the
/// scale-down window lets it — with a forecast too: the queue says there is no work.
#[test]
fn a_silence_at_the_servers_is_held_unless_a_signal_upstream_reads_the_demand() {
    let sqs = "[[fleets.metrics]]\nname = \"m\"\nsignal = \"external_queue_depth\"\n\
               target = { type = \"AverageValue\", average_value = 5 }\n";
    let predictive = "[fleets.predictive]\ndemand_per_unit = 100\n";
    // (case, top-level keys, extra metric, fleet-level queue sample, a forecast, held)
    let cases = [
        ("servers only", "", "", None, false, true),
        (
            "hold off",
            "silence_hold_mins = 0\n",
            "",
            None,
            false,
            false,
        ),
        ("a drained SQS queue", "", sqs, Some(0.0), false, false),
        ("servers only, a forecast", "", "", None, true, true),
        (
            "hold off, a forecast",
            "silence_hold_mins = 0\n",
            "",
            None,
            true,
            false,
        ),
        (
            "a drained SQS queue, a forecast",
            "",
            sqs,
            Some(0.0),
            true,
            false,
        ),
    ];
    for (name, top, metric, queue, forecast, held) in cases {
        let tail = if forecast { predictive } else { "" };
        let mut f = fleet(&format!(
            "min_units = 1\nmax_units = 200\n{top}[[fleets.metrics]]\nsignal = \"token_work\"\n\
             target = {{ type = \"AverageValue\", average_value = \"auto\" }}\n{metric}{tail}"
        ));
        capacity::resolve_fleet(&mut f, &perf::builtin()).unwrap();
        let silent: Vec<Load> = vec![(0.0, 0.0, 0.0, 0.0, 0.0, 0.0); 6];
        let mut state = EngineState::default();
        let mut last = None;
        for tick in 0..48 {
            let now = t(tick * 15);
            let mut snap = snapshot(&silent, now);
            if let Some(v) = queue {
                snap = common::with_fleet_metric(snap, v, now);
            }
            if forecast {
                // 600 requests a minute, flat, from an hour before the first tick on.
                snap.forecast = Some(DemandForecast {
                    start: t(0).plus_secs(-3600.0),
                    point: vec![600.0; 300],
                    upper: vec![600.0; 300],
                });
            }
            let (d, st) = decide(&f, &snap, &state, now);
            state = st;
            last = Some(d);
        }
        let d = last.unwrap();
        assert_eq!(d.desired_units == 6, held, "{name}: {}", d.summary);
        assert_eq!(
            d.has(llm_autoscaler::engine::Reason::SilenceHeld),
            held,
            "{name}: {}",
            d.summary
        );
        // With a forecast, the floor is what holds (a flat forecast has no rise ahead).
        let floor_applied = d.predictive.as_ref().is_some_and(|p| p.applied);
        assert_eq!(floor_applied, forecast && held, "{name}: {}", d.summary);
    }
}

/// The forecaster takes a silence for a gap where the hold would hold it — a fleet whose
/// demand only its servers read — and learns it as demand where a metric reads the demand
/// upstream: the servers' latency is no such metric.
#[test]
fn the_forecaster_learns_a_silence_as_demand_where_a_metric_reads_it_upstream() {
    let metric = |signal: &str| {
        format!(
            "[[fleets.metrics]]\nname = \"m\"\nsignal = \"{signal}\"\n\
             target = {{ type = \"Value\", value = 5 }}\n"
        )
    };
    // (case, top-level keys, extra metric, gap minutes)
    let cases = [
        ("servers only", String::new(), String::new(), 60),
        (
            "hold off",
            "silence_hold_mins = 0\n".into(),
            String::new(),
            0,
        ),
        (
            "an SQS queue",
            String::new(),
            metric("external_queue_depth"),
            0,
        ),
        (
            "the servers' TTFT",
            String::new(),
            metric("ttft_p95_secs"),
            60,
        ),
    ];
    for (name, top, extra, gap) in cases {
        let f = fleet(&format!(
            "min_units = 1\nmax_units = 200\n{top}[[fleets.metrics]]\nsignal = \"token_work\"\n\
             target = {{ type = \"AverageValue\", average_value = \"auto\" }}\n{extra}"
        ));
        assert_eq!(f.forecast_silence_gap_mins(), gap, "{name}");
    }
}

/// A server load the engine may not use — stale, from the future, a figure not a number — is
/// no load at all, in every figure the capacity model reads from the loads and not only in
/// `token_work`'s average: three servers fall silent while a fourth's last load, ten minutes
/// old, still shows two requests a second. Read as current, it kept the silence hold off
/// while the three fresh loads scaled the fleet down.
#[test]
fn an_unusable_server_load_is_no_load() {
    let f = token_fleet();
    type Spoil = fn(&mut ServerLoad, Timestamp);
    let cases: [(&str, Spoil); 3] = [
        ("ten minutes old", |l, now| l.at = now.plus_secs(-600.0)),
        ("ten minutes ahead", |l, now| l.at = now.plus_secs(600.0)),
        ("requests not a number", |l, _| {
            l.requests_per_sec = f64::NAN
        }),
    ];
    let silent = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let busy = (1500.0, 450.0, 2.0, 0.0, 8.0, 0.05);
    for (name, spoil) in cases {
        let (mut spoiled, mut unmeasured) = (EngineState::default(), EngineState::default());
        let mut last = None;
        for tick in 0..48 {
            let now = t(tick * 15);
            let mut with_bad = snapshot(&[silent, silent, silent, busy], now);
            spoil(with_bad.instances[3].load.as_mut().unwrap(), now);
            let mut without = with_bad.clone();
            without.instances[3].load = None;
            let (a, st) = decide(&f, &with_bad, &spoiled, now);
            spoiled = st;
            let (b, st) = decide(&f, &without, &unmeasured, now);
            unmeasured = st;
            assert_eq!(
                a.desired_units, b.desired_units,
                "{name}, tick {tick}: {}",
                a.summary
            );
            assert_eq!(a.summary, b.summary, "{name}, tick {tick}");
            last = Some(a);
        }
        let d = last.unwrap();
        assert_eq!(d.desired_units, 4, "{name}: {}", d.summary);
        assert!(
            d.has(llm_autoscaler::engine::Reason::SilenceHeld),
            "{name}: {}",
            d.summary
        );
    }
}

/// Ramp-ahead's demand counts the servers in service that did not report at the reporting
/// ones' average — they serve their share all the same — so one server's failed scrape is
/// not a drop in the demand its five-minute fit keeps.
#[test]
fn a_server_that_does_not_report_is_no_drop_in_the_ramps_demand() {
    let f = token_fleet();
    let (mut all, mut one_silent) = (EngineState::default(), EngineState::default());
    for tick in 0..40 {
        let now = t(tick * 15);
        // Four servers, their prompt tokens rising 1 % a tick.
        let p = 2000.0 * (1.0 + 0.01 * tick as f64);
        let load = (p, 0.3 * p, p / 1000.0, 0.0, 8.0, 0.05);
        let snap = snapshot(&[load; 4], now);
        let mut missing = snap.clone();
        if tick >= 36 {
            missing.instances[3].load = None;
        }
        let (a, st) = decide(&f, &snap, &all, now);
        all = st;
        let (b, st) = decide(&f, &missing, &one_silent, now);
        one_silent = st;
        if let (Some(ra), Some(rb)) = (&a.ramp, &b.ramp) {
            let (da, db) = (ra.demand_units, rb.demand_units);
            assert!(
                (da - db).abs() < 1e-9 * da.max(1.0),
                "tick {tick}: {da} against {db}"
            );
        } else {
            assert_eq!(a.ramp.is_some(), b.ramp.is_some(), "tick {tick}");
        }
    }
    assert!(
        all.ramp.points.len() >= 8,
        "the ramp observed: {:?}",
        all.ramp.points
    );
}
