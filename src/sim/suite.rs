//! The robustness matrix (`simulate --suite robustness`): the user's policy on traffic nobody
//! tuned it for — traffic shapes × token mixes × cold starts × seeds — each cell against the
//! clairvoyant oracle and a static fleet sized for the cell's peak, on the same traffic.
//!
//! Shapes are sized to the policy, not to a scenario: each peaks at [`SuiteSpec::peak_units`]
//! (80 % of `max_units`, at most 10) of the policy's reference type for *that cell's mix* (at
//! the evaluation's 80 % utilisation),
//! so a mix of long prompts gets fewer requests, not a bigger fleet. Cold starts change every
//! profile's median launch → in-service time (warm-pool starts take half), from a cached AMI
//! (60 s) to a 16 GB model pulled without cache (600 s). A cell *holds* the SLO when
//! availability > 0.999, error rate < 0.001, P95 TTFT under the fleet's SLO and at most 0.5 %
//! of minutes over it. Pure: the caller reads the traces and writes the reports.

use std::sync::Arc;

use serde::Serialize;

use super::perf::{MinuteLoad, Profile};
use super::traffic::{RateProfile, Request, Source, TokenMix, Traffic};
use super::world::SpotModel;
use super::{SimError, SimSetup};
use crate::config::Fleet;
use crate::model::Timestamp;

/// The traffic shapes of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// ×10 within a minute, held 20 minutes, back.
    Step10,
    /// The same step twice, 20 minutes apart.
    Step10Twice,
    /// 10 % → 100 % of peak linearly over 40 minutes, then back at once; twice.
    Sawtooth,
    /// A day: night at 30 % of peak, a morning ramp, a business-hours peak, an evening decline.
    Daily,
    /// Peak for 30 minutes, then 10 % within a minute, for 30 minutes.
    SuddenDrop,
    /// The largest sustained surge of the World Cup 98 web trace (a match drawing its crowd:
    /// ×3 over the hour before, per minute), rescaled.
    FlashCrowd,
}

impl Shape {
    /// Every shape, in table order.
    pub const ALL: [Shape; 6] = [
        Shape::Step10,
        Shape::Step10Twice,
        Shape::Sawtooth,
        Shape::Daily,
        Shape::SuddenDrop,
        Shape::FlashCrowd,
    ];

    /// The shape's name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Step10 => "step-x10",
            Shape::Step10Twice => "step-x10-twice",
            Shape::Sawtooth => "sawtooth",
            Shape::Daily => "daily",
            Shape::SuddenDrop => "sudden-drop",
            Shape::FlashCrowd => "flash-crowd",
        }
    }
}

/// The token mixes of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MixKind {
    /// Short chat: ~500 prompt / ~150 output tokens (median).
    Chat,
    /// A quarter of requests long documents (~6,000 / ~400).
    Docs25,
    /// Long-context conversations: the Mooncake trace's lengths.
    LongContext,
    /// Code completion: the Azure code trace's lengths.
    Code,
}

impl MixKind {
    /// Every mix, in table order.
    pub const ALL: [MixKind; 4] = [
        MixKind::Chat,
        MixKind::Docs25,
        MixKind::LongContext,
        MixKind::Code,
    ];

    /// The mix's name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            MixKind::Chat => "chat",
            MixKind::Docs25 => "docs-25%",
            MixKind::LongContext => "long-context",
            MixKind::Code => "code",
        }
    }
}

/// What the matrix reads from the shared traces.
#[derive(Clone, Debug)]
pub struct SuiteTraces {
    /// Requests per minute of the World Cup 98 site.
    pub web_per_minute: Vec<Option<f64>>,
    /// (prompt, output) token pairs of the Mooncake conversation trace.
    pub long_context: Arc<Vec<(u32, u32)>>,
    /// (prompt, output) token pairs of the Azure code trace.
    pub code: Arc<Vec<(u32, u32)>>,
}

/// Which cells to run.
#[derive(Clone, Debug)]
pub struct SuiteSpec {
    /// Shapes.
    pub shapes: Vec<Shape>,
    /// Token mixes.
    pub mixes: Vec<MixKind>,
    /// Median cold starts, seconds.
    pub cold_starts_secs: Vec<f64>,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Units of the reference type each shape peaks at.
    pub peak_units: f64,
    /// Cap on each cell's length, seconds (`None`: each shape's own).
    pub duration_secs: Option<f64>,
    /// Also run each cell after [`RECURRING_DAYS`] days in which its shape recurred daily, to
    /// measure what the forecast (the policy's `[fleets.predictive]`) buys.
    pub forecast_effect: bool,
    /// The simulated servers' speed as a share of their profile's ([`SimSetup::server_speed`]);
    /// each shape still peaks at `peak_units` of the servers as they run.
    pub server_speed: f64,
}

/// Days of history in which a cell's shape recurred, for [`SuiteSpec::forecast_effect`].
pub const RECURRING_DAYS: usize = 14;

impl SuiteSpec {
    /// The full matrix: 6 shapes × 4 mixes × 4 cold starts × 3 seeds, peaking at 10 units or
    /// 80 % of the policy's `max_units` (at 80 % utilisation), whichever is less.
    pub fn robustness(fleet: &Fleet) -> Self {
        SuiteSpec {
            shapes: Shape::ALL.to_vec(),
            mixes: MixKind::ALL.to_vec(),
            cold_starts_secs: vec![60.0, 150.0, 300.0, 600.0],
            seeds: vec![1, 2, 3],
            peak_units: (0.8 * fleet.max_units as f64).clamp(1.0, 10.0),
            duration_secs: None,
            forecast_effect: false,
            server_speed: 1.0,
        }
    }

    /// Cells in run order.
    pub fn cells(&self) -> Vec<Cell> {
        let mut out = Vec::new();
        for &shape in &self.shapes {
            for &mix in &self.mixes {
                for &cold_start_secs in &self.cold_starts_secs {
                    for &seed in &self.seeds {
                        out.push(Cell {
                            shape,
                            mix,
                            cold_start_secs,
                            seed,
                        });
                    }
                }
            }
        }
        out
    }
}

/// One cell of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Cell {
    /// Traffic shape.
    pub shape: Shape,
    /// Token mix.
    pub mix: MixKind,
    /// Median cold start, seconds.
    pub cold_start_secs: f64,
    /// Seed.
    pub seed: u64,
}

/// A cell's verdict, one table row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CellResult {
    /// The cell.
    #[serde(flatten)]
    pub cell: Cell,
    /// Ours holds the SLO (availability, error rate, P95 TTFT, violating minutes ≤ 0.5 %).
    pub held: bool,
    /// The oracle holds it.
    pub oracle_held: bool,
    /// The reactive oracle holds it: the present known from each minute's first second,
    /// nothing before. Where it misses, reacting at once to exactly what the present needs is
    /// not enough: the cell takes foresight, or capacity beyond the present need.
    pub reactive_oracle_held: bool,
    /// Ours: P95 TTFT, seconds.
    pub p95_ttft_s: f64,
    /// Ours: fraction of minutes over the TTFT SLO.
    pub ttft_violation_minutes: f64,
    /// Ours: availability.
    pub availability: f64,
    /// Ours: error rate.
    pub error_rate: f64,
    /// Cost ÷ the oracle's.
    pub cost_vs_oracle: f64,
    /// Cost ÷ static-peak's.
    pub cost_vs_static: f64,
    /// Over-provisioning (EVALUATION.md).
    pub over_provisioning: f64,
    /// Scale-downs followed by a scale-up within the flap window.
    pub flaps: u64,
    /// Those of them on a steady stretch of the offered load: the shape's rate constant
    /// (within [`STEADY_TOLERANCE`]) from a minute before the scale-down to the buy-back.
    /// A scale-down before a step and the step's scale-up are not a flap of the policy.
    pub plateau_flaps: u64,
    /// Goodput per dollar, ours and the oracle's.
    pub goodput_tokens_per_usd: f64,
    /// The oracle's goodput per dollar.
    pub oracle_goodput_tokens_per_usd: f64,
    /// With `forecast_effect`: the same cell after days in which its shape recurred.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recurring: Option<Recurring>,
    /// The full report of the cell (`simulate --json`'s keys).
    pub report: serde_json::Value,
}

/// A cell run again after [`RECURRING_DAYS`] days in which its shape recurred at the same
/// hour: what the forecast buys when the traffic has been seen before. The cell as run has no
/// history — no forecast — so it is the "without".
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recurring {
    /// Ours holds the SLO with the forecast.
    pub held: bool,
    /// Fraction of minutes over the TTFT SLO, with the forecast.
    pub ttft_violation_minutes: f64,
    /// P95 TTFT with the forecast, seconds.
    pub p95_ttft_s: f64,
    /// Cost with the forecast ÷ cost without.
    pub cost_vs_without: f64,
}

/// `days` days of per-minute demand (requests per minute) in which `shape` (per second, at
/// `peak_rps`) ran from midnight each day and the rest of the day stayed at its first
/// minute's level.
pub fn recurring_history(shape: &[f64], peak_rps: f64, days: usize) -> Vec<Option<f64>> {
    let per_minute: Vec<f64> = shape
        .chunks(60)
        .map(|c| c.iter().sum::<f64>() / c.len() as f64 * 60.0 * peak_rps)
        .collect();
    let base = per_minute.first().copied().unwrap_or(0.0);
    (0..days * 1440)
        .map(|m| Some(per_minute.get(m % 1440).copied().unwrap_or(base)))
        .collect()
}

/// How far the offered rate may move over a stretch that counts as steady.
pub const STEADY_TOLERANCE: f64 = 0.01;

/// Flaps whose span (scale-down − 60 s … buy-back, seconds) the rate `units` (per second of
/// the run) holds steady over.
fn plateau_flaps(spans: &[(f64, f64)], units: &[f64]) -> u64 {
    spans
        .iter()
        .filter(|(down, up)| {
            let from = ((down - 60.0).max(0.0) as usize).min(units.len());
            let to = ((up.max(0.0) as usize) + 1).min(units.len());
            let span = &units[from..to.max(from)];
            let (lo, hi) = span.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
                (lo.min(*v), hi.max(*v))
            });
            !span.is_empty() && hi - lo <= STEADY_TOLERANCE * hi
        })
        .count() as u64
}

/// The most violating minutes a cell may have and still hold the SLO.
pub const MAX_VIOLATION_MINUTES: f64 = 0.005;

/// The matrix's summary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Cells run.
    pub cells: usize,
    /// Cells ours holds.
    pub held: usize,
    /// Cells the oracle holds.
    pub oracle_held: usize,
    /// Cells the oracle holds and ours does not, by name.
    pub missed: Vec<String>,
    /// Cells the reactive oracle holds.
    pub reactive_oracle_held: usize,
    /// Cells the reactive oracle holds and ours does not, by name: misses that reacting
    /// better would mend. The rest of `missed` take foresight, or capacity beyond the need.
    pub missed_where_reactive_holds: Vec<String>,
    /// Median cost ÷ oracle.
    pub median_cost_vs_oracle: f64,
    /// Highest cost ÷ oracle.
    pub max_cost_vs_oracle: f64,
    /// Median cost ÷ oracle over the cells the oracle holds: there the oracle's cost is the
    /// floor of meeting the SLO. Where it does not hold, a cost above it may buy SLO the oracle
    /// went without (long-context's long prefills), and the ratio is no waste.
    pub oracle_held_median_cost_vs_oracle: f64,
    /// Highest cost ÷ oracle over the cells the oracle holds.
    pub oracle_held_max_cost_vs_oracle: f64,
    /// Flaps on steady stretches of the offered load, over every cell.
    pub plateau_flaps: u64,
    /// With `forecast_effect`: per shape, the cells without and with a recurring history.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub forecast_effect: Vec<ShapeEffect>,
}

/// What the forecast bought on one shape's cells (with a recurring history vs without).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShapeEffect {
    /// The shape.
    pub shape: Shape,
    /// Cells compared.
    pub cells: usize,
    /// Cells held without history (no forecast), and with.
    pub held_without: usize,
    /// Cells held with the recurring history.
    pub held_with: usize,
    /// Mean fraction of minutes over the TTFT SLO, without and with.
    pub violation_minutes_without: f64,
    /// With the recurring history.
    pub violation_minutes_with: f64,
    /// Median cost with ÷ cost without.
    pub median_cost_with_vs_without: f64,
}

/// Per shape, the cells run both ways.
fn forecast_effect(results: &[CellResult]) -> Vec<ShapeEffect> {
    Shape::ALL
        .iter()
        .filter_map(|&shape| {
            let both: Vec<(&CellResult, &Recurring)> = results
                .iter()
                .filter(|r| r.cell.shape == shape)
                .filter_map(|r| r.recurring.as_ref().map(|w| (r, w)))
                .collect();
            if both.is_empty() {
                return None;
            }
            let n = both.len() as f64;
            let mut costs: Vec<f64> = both.iter().map(|(_, w)| w.cost_vs_without).collect();
            costs.sort_by(f64::total_cmp);
            Some(ShapeEffect {
                shape,
                cells: both.len(),
                held_without: both.iter().filter(|(r, _)| r.held).count(),
                held_with: both.iter().filter(|(_, w)| w.held).count(),
                violation_minutes_without: both
                    .iter()
                    .map(|(r, _)| r.ttft_violation_minutes)
                    .sum::<f64>()
                    / n,
                violation_minutes_with: both
                    .iter()
                    .map(|(_, w)| w.ttft_violation_minutes)
                    .sum::<f64>()
                    / n,
                median_cost_with_vs_without: costs[costs.len() / 2],
            })
        })
        .collect()
}

/// A cell's name: `shape/mix/cold-start/seed`.
pub fn cell_name(c: &Cell) -> String {
    format!(
        "{}/{}/cold{:.0}/seed{}",
        c.shape.name(),
        c.mix.name(),
        c.cold_start_secs,
        c.seed
    )
}

/// Requests per second of `rate_units` (a fraction of the peak) for every second of a shape.
fn shape_units(shape: Shape, traces: &SuiteTraces) -> Vec<f64> {
    let minutes = |n: usize, f: &dyn Fn(f64) -> f64| -> Vec<f64> {
        (0..n * 60).map(|s| f(s as f64 / 60.0)).collect()
    };
    let lerp = |m: f64, m0: f64, m1: f64, a: f64, b: f64| {
        if m <= m0 {
            a
        } else if m >= m1 {
            b
        } else {
            a + (b - a) * (m - m0) / (m1 - m0)
        }
    };
    match shape {
        Shape::Step10 => minutes(70, &|m| if (20.0..40.0).contains(&m) { 1.0 } else { 0.1 }),
        Shape::Step10Twice => minutes(110, &|m| {
            if (20.0..40.0).contains(&m) || (60.0..80.0).contains(&m) {
                1.0
            } else {
                0.1
            }
        }),
        Shape::Sawtooth => minutes(100, &|m| {
            let phase = (m - 10.0).rem_euclid(45.0);
            if !(10.0..100.0).contains(&m) {
                0.1
            } else if phase < 40.0 {
                lerp(phase, 0.0, 40.0, 0.1, 1.0)
            } else {
                0.1
            }
        }),
        Shape::Daily => minutes(24 * 60, &|m| {
            let h = m / 60.0;
            if !(6.0..22.0).contains(&h) {
                0.3
            } else if h < 9.0 {
                lerp(h, 6.0, 9.0, 0.3, 1.0)
            } else if h < 17.0 {
                1.0
            } else {
                lerp(h, 17.0, 22.0, 1.0, 0.3)
            }
        }),
        Shape::SuddenDrop => minutes(70, &|m| if m < 35.0 { 1.0 } else { 0.1 }),
        Shape::FlashCrowd => flash_crowd(&traces.web_per_minute),
    }
}

/// The largest sustained surge of a per-minute web trace (a World Cup match drawing its
/// crowd): the minute whose next 20 minutes most exceed the hour before, with every minute from
/// the third on at least 60 % of those 20 minutes' mean (a one-minute spike in the logs is not
/// a crowd), where the hour before carries at least half the trace's median — an hour before it
/// to two after, scaled so its peak is 1. Per second (each minute's rate held).
fn flash_crowd(per_minute: &[Option<f64>]) -> Vec<f64> {
    let v: Vec<f64> = per_minute.iter().map(|x| x.unwrap_or(0.0)).collect();
    let median = {
        let mut s = v.clone();
        s.sort_by(f64::total_cmp);
        s.get(s.len() / 2).copied().unwrap_or(0.0)
    };
    let mut best = (0.0, 60usize.min(v.len()));
    for m in 60..v.len().saturating_sub(20) {
        let before = v[m - 60..m].iter().sum::<f64>() / 60.0;
        let after = &v[m..m + 20];
        let mean = after.iter().sum::<f64>() / 20.0;
        let sustained = after[3..].iter().all(|x| *x >= 0.6 * mean);
        if before >= 0.5 * median && before > 0.0 && sustained && mean / before > best.0 {
            best = (mean / before, m);
        }
    }
    let from = best.1.saturating_sub(60);
    let to = (best.1 + 120).min(v.len());
    let slice = &v[from..to];
    let peak = slice.iter().copied().fold(0.0, f64::max).max(1e-9);
    slice
        .iter()
        .flat_map(|x| std::iter::repeat_n(x / peak, 60))
        .collect()
}

/// The token mix of a cell.
fn token_mix(mix: MixKind, traces: &SuiteTraces) -> TokenMix {
    match mix {
        MixKind::Chat => TokenMix::Chat { doc_share: 0.0 },
        MixKind::Docs25 => TokenMix::Chat { doc_share: 0.25 },
        MixKind::LongContext => TokenMix::Empirical(traces.long_context.clone()),
        MixKind::Code => TokenMix::Empirical(traces.code.clone()),
    }
}

/// Requests per second one reference unit sustains at 80 % for a mix (its mean lengths).
fn unit_rps(mix: &TokenMix, reference: &Profile, weight_units: u32, seed: u64) -> f64 {
    // The mix's mean lengths, from a sample of its own draws.
    let sample = Traffic {
        source: Source::Rate(
            RateProfile {
                step_secs: 1.0,
                rates: vec![200.0; 100],
                doc_share: Vec::new(),
            },
            mix.clone(),
        ),
        scale: 1.0,
        seed,
        duration_secs: 100.0,
    };
    let mut load = MinuteLoad::default();
    sample.requests().for_each(|r: Request| load.add(&r));
    let n = load.requests.max(1) as f64;
    0.8 * reference.sustainable_rps(load.prompt_tokens as f64 / n, load.output_tokens as f64 / n)
        / weight_units.max(1) as f64
}

/// The setup of one cell for `fleet` (its profiles with the cell's cold start).
pub fn cell_setup(
    fleet: &Fleet,
    profiles: &[Profile],
    model: &str,
    traces: &SuiteTraces,
    spec: &SuiteSpec,
    cell: &Cell,
) -> Result<SimSetup, SimError> {
    let profiles: Vec<Profile> = profiles
        .iter()
        .cloned()
        .map(|mut p| {
            p.cold_start_median_secs = cell.cold_start_secs;
            p.warm_start_median_secs = cell.cold_start_secs / 2.0;
            p
        })
        .collect();
    let servers = super::perf::at_speed(&profiles, spec.server_speed);
    let reference = super::reference(fleet, &servers, model)?;
    let mix = token_mix(cell.mix, traces);
    let peak_rps =
        spec.peak_units * unit_rps(&mix, &reference.profile, reference.weight_units, cell.seed);
    let shape = shape_units(cell.shape, traces);
    let full = shape.len() as f64;
    let duration = spec.duration_secs.map_or(full, |d| d.min(full));
    let traffic = Traffic {
        source: Source::Rate(
            RateProfile {
                step_secs: 1.0,
                rates: shape.iter().map(|u| u * peak_rps).collect(),
                doc_share: Vec::new(),
            },
            mix,
        ),
        scale: 1.0,
        seed: cell.seed,
        duration_secs: duration,
    };
    let mut setup = SimSetup::new(
        cell_name(cell),
        traffic,
        SpotModel::default(),
        Timestamp::parse_rfc3339("2026-12-01T00:00:00Z").unwrap_or_default(),
        fleet.clone(),
        fleet.name.clone(),
    );
    setup.profiles = profiles;
    setup.server_speed = spec.server_speed;
    setup.model = model.to_string();
    setup.only_baselines = Some(vec![
        "static-peak".into(),
        "reactive-oracle".into(),
        "oracle".into(),
    ]);
    Ok(setup)
}

/// Whether a run's SLO block holds the SLO as the matrix judges it.
pub fn holds(slo: &super::stats::Slo) -> bool {
    slo.met && slo.ttft_violation_minutes <= MAX_VIOLATION_MINUTES
}

/// Runs one cell.
pub fn run_cell(
    fleet: &Fleet,
    profiles: &[Profile],
    model: &str,
    traces: &SuiteTraces,
    spec: &SuiteSpec,
    cell: &Cell,
) -> Result<CellResult, SimError> {
    let setup = cell_setup(fleet, profiles, model, traces, spec, cell)?;
    let recurring_setup = (spec.forecast_effect && fleet.predictive.is_some()).then(|| {
        let mut s = setup.clone();
        let Source::Rate(profile, _) = &s.traffic.source else {
            unreachable!("cells are rate profiles")
        };
        // The rates are the shape × the cell's peak, per second: the same minutes again.
        s.history = recurring_history(&profile.rates, 1.0, RECURRING_DAYS);
        s.baselines = false;
        s
    });
    let outcome = super::simulate(setup, &mut |_| {})?;
    let ours = outcome.figures(&outcome.ours);
    let recurring = match recurring_setup {
        Some(s) => {
            let with = super::simulate(s, &mut |_| {})?;
            let f = with.figures(&with.ours);
            Some(Recurring {
                held: holds(&f.slo),
                ttft_violation_minutes: f.slo.ttft_violation_minutes,
                p95_ttft_s: f.slo.p95_ttft_s,
                cost_vs_without: f.cost.total_usd / ours.cost.total_usd.max(1e-9),
            })
        }
        None => None,
    };
    let oracle = outcome.baselines.get("oracle").map(|r| outcome.figures(r));
    let reactive = outcome
        .baselines
        .get("reactive-oracle")
        .map(|r| outcome.figures(r));
    let report = serde_json::to_value(outcome.report()).unwrap_or_default();
    Ok(CellResult {
        cell: *cell,
        held: holds(&ours.slo),
        oracle_held: oracle.as_ref().is_some_and(|o| holds(&o.slo)),
        reactive_oracle_held: reactive.as_ref().is_some_and(|o| holds(&o.slo)),
        p95_ttft_s: ours.slo.p95_ttft_s,
        ttft_violation_minutes: ours.slo.ttft_violation_minutes,
        availability: ours.slo.availability,
        error_rate: ours.slo.error_rate,
        cost_vs_oracle: ours.cost.vs_oracle.unwrap_or(f64::NAN),
        cost_vs_static: ours.cost.savings_vs_static.map_or(f64::NAN, |s| 1.0 - s),
        over_provisioning: ours.capacity.over_provisioning,
        flaps: outcome.ours.flaps,
        plateau_flaps: plateau_flaps(&outcome.ours.flap_spans, &shape_units(cell.shape, traces)),
        goodput_tokens_per_usd: ours.cost.goodput_tokens_per_usd,
        oracle_goodput_tokens_per_usd: oracle.map_or(0.0, |o| o.cost.goodput_tokens_per_usd),
        recurring,
        report,
    })
}

/// The summary of a matrix's results.
pub fn summarize(results: &[CellResult]) -> Summary {
    let ratios = sorted_cost_ratios(results.iter());
    let held_ratios = sorted_cost_ratios(results.iter().filter(|r| r.oracle_held));
    Summary {
        cells: results.len(),
        held: results.iter().filter(|r| r.held).count(),
        oracle_held: results.iter().filter(|r| r.oracle_held).count(),
        missed: missed_where(results, |r| r.oracle_held),
        reactive_oracle_held: results.iter().filter(|r| r.reactive_oracle_held).count(),
        missed_where_reactive_holds: missed_where(results, |r| r.reactive_oracle_held),
        median_cost_vs_oracle: median(&ratios),
        max_cost_vs_oracle: ratios.last().copied().unwrap_or(f64::NAN),
        oracle_held_median_cost_vs_oracle: median(&held_ratios),
        oracle_held_max_cost_vs_oracle: held_ratios.last().copied().unwrap_or(f64::NAN),
        plateau_flaps: results.iter().map(|r| r.plateau_flaps).sum(),
        forecast_effect: forecast_effect(results),
    }
}

/// The names of the cells ours does not hold where `reference` (an oracle) holds it.
fn missed_where(results: &[CellResult], reference: impl Fn(&CellResult) -> bool) -> Vec<String> {
    results
        .iter()
        .filter(|r| reference(r) && !r.held)
        .map(|r| cell_name(&r.cell))
        .collect()
}

/// The cells' finite costs ÷ oracle, in ascending order.
fn sorted_cost_ratios<'a>(cells: impl Iterator<Item = &'a CellResult>) -> Vec<f64> {
    let mut ratios: Vec<f64> = cells
        .map(|r| r.cost_vs_oracle)
        .filter(|r| r.is_finite())
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios
}

/// The upper median of sorted values (NaN for none).
fn median(sorted: &[f64]) -> f64 {
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The matrix as a terminal table: a row per cell, then the summary.
pub fn table(results: &[CellResult], summary: &Summary) -> String {
    use std::fmt::Write as _;
    let mut s = format!(
        "{:<15} {:<13} {:>6} {:>4} {:>5} {:>6} {:>6} {:>8} {:>7} {:>8} {:>8} {:>7} {:>6} {:>10}\n",
        "shape",
        "mix",
        "cold s",
        "seed",
        "held",
        "oracle",
        "react.",
        "p95 ttft",
        "viol.m",
        "÷oracle",
        "÷static",
        "overprv",
        "flaps",
        "goodput/$"
    );
    for r in results {
        let _ = writeln!(
            s,
            "{:<15} {:<13} {:>6.0} {:>4} {:>5} {:>6} {:>6} {:>8.2} {:>6.1}% {:>8.2} {:>8.2} {:>6.1}% {:>6} {:>10.0}",
            r.cell.shape.name(),
            r.cell.mix.name(),
            r.cell.cold_start_secs,
            r.cell.seed,
            if r.held { "yes" } else { "NO" },
            if r.oracle_held { "yes" } else { "no" },
            if r.reactive_oracle_held { "yes" } else { "no" },
            r.p95_ttft_s,
            100.0 * r.ttft_violation_minutes,
            r.cost_vs_oracle,
            r.cost_vs_static,
            100.0 * r.over_provisioning,
            r.flaps,
            r.goodput_tokens_per_usd
        );
    }
    let _ = writeln!(
        s,
        "\n{} cells: ours holds the SLO in {}, the oracle in {}; missed where the oracle holds: {}",
        summary.cells,
        summary.held,
        summary.oracle_held,
        summary.missed.len()
    );
    for m in &summary.missed {
        let _ = writeln!(s, "  missed {m}");
    }
    let _ = writeln!(
        s,
        "the reactive oracle (the present known, no foresight) holds {}; missed where it holds: {}",
        summary.reactive_oracle_held,
        summary.missed_where_reactive_holds.len(),
    );
    for m in &summary.missed_where_reactive_holds {
        let _ = writeln!(s, "  missed where the reactive oracle holds {m}");
    }
    let _ = writeln!(
        s,
        "cost ÷ oracle: median {:.2}, max {:.2} (where the oracle holds the SLO: median {:.2}, max {:.2}); flaps on steady plateaus: {}",
        summary.median_cost_vs_oracle,
        summary.max_cost_vs_oracle,
        summary.oracle_held_median_cost_vs_oracle,
        summary.oracle_held_max_cost_vs_oracle,
        summary.plateau_flaps
    );
    if !summary.forecast_effect.is_empty() {
        let _ = writeln!(
            s,
            "\nthe forecast's effect — each cell again after {RECURRING_DAYS} days in which its shape recurred daily:\n{:<15} {:>5} {:>14} {:>18} {:>12}",
            "shape", "cells", "held w/o → w/", "viol.m w/o → w/", "cost w/÷w/o"
        );
        for e in &summary.forecast_effect {
            let _ = writeln!(
                s,
                "{:<15} {:>5} {:>6} → {:<5} {:>8} → {:<7} {:>12.2}",
                e.shape.name(),
                e.cells,
                e.held_without,
                e.held_with,
                format!("{:.2}%", 100.0 * e.violation_minutes_without),
                format!("{:.2}%", 100.0 * e.violation_minutes_with),
                e.median_cost_with_vs_without
            );
        }
    }
    s
}

/// The matrix as a self-contained HTML page: the summary and the table, cells that miss the
/// SLO where the oracle holds it marked.
pub fn html(results: &[CellResult], summary: &Summary, policy: &str) -> String {
    use std::fmt::Write as _;
    let esc = |t: &str| t.replace('&', "&amp;").replace('<', "&lt;");
    let mut s = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>robustness matrix — {p}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:13px}}\
         td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}td:nth-child(-n+2){{text-align:left}}\
         tr.miss{{background:#fdd}}tr.react{{background:#f99}}tr.both{{background:#eee}}</style></head><body>\
         <h1>Robustness matrix</h1><p>policy {p}</p><p>{} cells · ours holds the SLO in {} · the oracle in {} · \
         missed where the oracle holds: {} · the reactive oracle (no foresight) holds {} · missed where it holds: {} · cost ÷ oracle median {:.2}, max {:.2} (where the oracle holds the SLO: \
         median {:.2}, max {:.2}) · flaps on steady plateaus {}</p>\
         <p>Rows: <span style=\"background:#f99\">missed where the reactive oracle holds</span> (reacting better \
         would hold them) · <span style=\"background:#fdd\">missed where only the oracle holds</span> (they take \
         foresight or headroom) · <span style=\"background:#eee\">held by neither</span></p>\
         <table><tr><th>shape</th><th>mix</th><th>cold start s</th><th>seed</th><th>held</th><th>oracle held</th>\
         <th>reactive oracle held</th><th>P95 TTFT s</th><th>violating min</th><th>cost ÷ oracle</th><th>cost ÷ static</th><th>over-prov.</th>\
         <th>flaps</th><th>goodput tokens/$</th></tr>\n",
        summary.cells,
        summary.held,
        summary.oracle_held,
        summary.missed.len(),
        summary.reactive_oracle_held,
        summary.missed_where_reactive_holds.len(),
        summary.median_cost_vs_oracle,
        summary.max_cost_vs_oracle,
        summary.oracle_held_median_cost_vs_oracle,
        summary.oracle_held_max_cost_vs_oracle,
        summary.plateau_flaps,
        p = esc(policy)
    );
    for r in results {
        let class = match (r.held, r.reactive_oracle_held, r.oracle_held) {
            (true, _, _) => "",
            (false, true, _) => " class=\"react\"",
            (false, false, true) => " class=\"miss\"",
            (false, false, false) => " class=\"both\"",
        };
        let _ = writeln!(
            s,
            "<tr{class}><td>{}</td><td>{}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td>\
             <td>{:.1} %</td><td>{:.2}</td><td>{:.2}</td><td>{:.1} %</td><td>{}</td><td>{:.0}</td></tr>",
            r.cell.shape.name(),
            r.cell.mix.name(),
            r.cell.cold_start_secs,
            r.cell.seed,
            if r.held { "yes" } else { "no" },
            if r.oracle_held { "yes" } else { "no" },
            if r.reactive_oracle_held { "yes" } else { "no" },
            r.p95_ttft_s,
            100.0 * r.ttft_violation_minutes,
            r.cost_vs_oracle,
            r.cost_vs_static,
            100.0 * r.over_provisioning,
            r.flaps,
            r.goodput_tokens_per_usd
        );
    }
    s.push_str("</table></body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_misses_and_the_cost_ratios_over_all_cells_and_those_the_oracle_holds() {
        // (held, oracle held, reactive oracle held, cost ÷ oracle)
        let rows = [
            (true, true, true, 1.1),
            (false, true, false, 1.5),
            (true, true, false, 1.2),
            (false, false, false, 2.0),
            (true, false, false, 1.9),
            (false, false, true, f64::INFINITY),
        ];
        let results: Vec<CellResult> = rows
            .iter()
            .enumerate()
            .map(
                |(i, &(held, oracle_held, reactive_oracle_held, cost_vs_oracle))| CellResult {
                    cell: Cell {
                        shape: Shape::Daily,
                        mix: MixKind::Chat,
                        cold_start_secs: 60.0,
                        seed: i as u64 + 1,
                    },
                    held,
                    oracle_held,
                    reactive_oracle_held,
                    p95_ttft_s: 0.5,
                    ttft_violation_minutes: 0.0,
                    availability: 1.0,
                    error_rate: 0.0,
                    cost_vs_oracle,
                    cost_vs_static: 0.5,
                    over_provisioning: 0.1,
                    flaps: 0,
                    plateau_flaps: 0,
                    goodput_tokens_per_usd: 1.0,
                    oracle_goodput_tokens_per_usd: 1.0,
                    recurring: None,
                    report: serde_json::Value::Null,
                },
            )
            .collect();
        let s = summarize(&results);
        assert_eq!((s.cells, s.held, s.oracle_held), (6, 3, 3));
        assert_eq!(s.missed, vec!["daily/chat/cold60/seed2".to_string()]);
        // Seed 2 is missed where only foresight holds; seed 6 where reacting would have.
        assert_eq!(s.reactive_oracle_held, 2);
        assert_eq!(
            s.missed_where_reactive_holds,
            vec!["daily/chat/cold60/seed6".to_string()]
        );
        // Over the five finite ratios 1.1, 1.2, 1.5, 1.9, 2.0; over the oracle's 1.1, 1.2, 1.5.
        assert_eq!((s.median_cost_vs_oracle, s.max_cost_vs_oracle), (1.5, 2.0));
        assert_eq!(
            (
                s.oracle_held_median_cost_vs_oracle,
                s.oracle_held_max_cost_vs_oracle
            ),
            (1.2, 1.5)
        );
        let table = table(&results, &s);
        assert!(
            table.contains(
                "median 1.50, max 2.00 (where the oracle holds the SLO: median 1.20, max 1.50)"
            ),
            "{table}"
        );
        assert!(
            table.contains("the reactive oracle (the present known, no foresight) holds 2; missed where it holds: 1\n  missed where the reactive oracle holds daily/chat/cold60/seed6"),
            "{table}"
        );
        // The page marks each miss by what would have held it: seed 6 reacting better, seed 2
        // foresight; seed 4 neither oracle held.
        let page = html(&results, &s, "p.toml");
        let row = |seed: u64| {
            page.lines()
                .find(|l| l.contains(&format!("<td>60</td><td>{seed}</td>")))
                .unwrap_or_default()
                .to_string()
        };
        assert!(row(6).starts_with("<tr class=\"react\">"), "{page}");
        assert!(row(2).starts_with("<tr class=\"miss\">"), "{page}");
        assert!(row(4).starts_with("<tr class=\"both\">"), "{page}");
        assert!(row(1).starts_with("<tr><td>"), "{page}");
    }

    #[test]
    fn a_recurring_history_repeats_the_shape_from_each_midnight() {
        // Two hours per second: an hour at 1 request/s, an hour at 10.
        let shape: Vec<f64> = (0..7200)
            .map(|s| if s < 3600 { 1.0 } else { 10.0 })
            .collect();
        let h = recurring_history(&shape, 2.0, 3);
        assert_eq!(h.len(), 3 * 1440);
        for day in 0..3 {
            let at = |m: usize| h[day * 1440 + m].unwrap();
            assert_eq!(at(0), 120.0, "1/s × 2 × 60 s");
            assert_eq!(at(60), 1200.0, "the step, at the same minute every day");
            assert_eq!(at(119), 1200.0);
            assert_eq!(
                at(120),
                120.0,
                "the rest of the day at the first minute's level"
            );
        }
    }

    #[test]
    fn shapes_peak_at_one_and_steps_are_ten_fold() {
        // A one-minute spike at 200 (a log artefact, not a crowd) and a sustained ×4 from 300.
        let traces = SuiteTraces {
            web_per_minute: (0..600)
                .map(|m| {
                    Some(match m {
                        200 => 5000.0,
                        300..=400 => 400.0,
                        _ => 100.0,
                    })
                })
                .collect(),
            long_context: Arc::new(vec![(8000, 300)]),
            code: Arc::new(vec![(2000, 20)]),
        };
        for shape in Shape::ALL {
            let s = shape_units(shape, &traces);
            let max = s.iter().copied().fold(0.0, f64::max);
            assert!((max - 1.0).abs() < 1e-3, "{shape:?}: {max}");
        }
        let step = shape_units(Shape::Step10, &traces);
        assert_eq!(
            (step[19 * 60], step[20 * 60], step[40 * 60]),
            (0.1, 1.0, 0.1)
        );
        // The flash crowd is the sustained surge, not the spike.
        let fc = shape_units(Shape::FlashCrowd, &traces);
        assert_eq!(fc.len(), 180 * 60);
        assert!(
            (fc[60 * 60] - 1.0).abs() < 1e-9 && fc[59 * 60] == 0.25,
            "{}",
            fc[59 * 60]
        );
    }

    /// A flap counts against the policy only on a steady stretch of the offered load: a
    /// scale-down in the quiet before a step and the step's scale-up are not one.
    #[test]
    fn only_flaps_on_steady_load_count_as_plateau_flaps() {
        let traces = SuiteTraces {
            web_per_minute: vec![Some(100.0); 600],
            long_context: Arc::new(vec![(8000, 300)]),
            code: Arc::new(vec![(2000, 20)]),
        };
        let step = shape_units(Shape::Step10, &traces); // 0.1, then 1.0 from minute 20 to 40
        let m = |x: f64| x * 60.0;
        let cases = [
            ((m(15.0), m(20.25)), 0), // down in the quiet, up at the step
            ((m(25.0), m(30.0)), 1),  // both on the plateau
            ((m(21.5), m(24.0)), 1),  // a minute and more after the step's start: on the plateau
            ((m(20.2), m(24.0)), 0),  // the minute before the scale-down holds the step
            ((m(38.0), m(41.0)), 0),  // across the step's end
        ];
        for (span, want) in cases {
            assert_eq!(plateau_flaps(&[span], &step), want, "{span:?}");
        }
        assert_eq!(plateau_flaps(&[], &step), 0);
    }
}
