//! Reports of a simulation: JSON with EVALUATION.md's stable keys (documented in
//! `docs/simulator.md`), a per-minute CSV, a self-contained HTML page with SVG plots, and a
//! summary table for the terminal. All are strings; the CLI writes them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::chart::{line_chart, page, Series, PALETTE};
use super::{Accounting, FleetEvents, Outcome, PolicyFigures, BASELINES};

/// The JSON report.
#[derive(Serialize)]
pub struct Report {
    /// Scenario or trace name.
    pub scenario: String,
    /// The policy under test (its file and fleet).
    pub policy: String,
    /// Seed.
    pub seed: u64,
    /// The simulated servers' speed as a share of their profile's (`--server-speed`; 1: the
    /// profile is exact).
    pub server_speed: f64,
    /// Length of the run, seconds.
    pub duration_s: f64,
    /// Requests that arrived.
    pub requests: u64,
    /// SLO block.
    pub slo: super::stats::Slo,
    /// Cost block.
    pub cost: super::Cost,
    /// Capacity block.
    pub capacity: super::stats::Capacity,
    /// Requests by outcome.
    pub accounting: Accounting,
    /// What happened to the fleet.
    pub events: FleetEvents,
    /// Peak required units.
    pub peak_required_units: u32,
    /// The smallest static on-demand fleet, in units, at least static-peak's, that met the SLO
    /// (the `static-slo` baseline); `null` when none up to 4× static-peak's did, or the search
    /// did not run (without the static baselines; in the robustness matrix's cells).
    pub static_slo_units: Option<u32>,
    /// Each baseline's figures.
    pub baselines: BTreeMap<String, PolicyFigures>,
}

impl Outcome {
    /// The JSON report.
    pub fn report(&self) -> Report {
        let f = self.figures(&self.ours);
        Report {
            scenario: self.setup.scenario.clone(),
            policy: self.setup.policy_name.clone(),
            seed: self.setup.traffic.seed,
            server_speed: self.setup.server_speed,
            duration_s: self.setup.traffic.duration_secs,
            requests: self.ours.accounting().arrived,
            slo: f.slo,
            cost: f.cost,
            capacity: f.capacity,
            accounting: self.ours.accounting(),
            events: self.ours.events(),
            peak_required_units: self.required.iter().copied().max().unwrap_or(0),
            static_slo_units: self.static_slo_units,
            baselines: self
                .baselines
                .iter()
                .map(|(k, r)| (k.clone(), self.figures(r)))
                .collect(),
        }
    }

    /// The per-minute CSV of the policy under test.
    pub fn csv(&self) -> String {
        let mut s = String::from(
            "minute,requests,succeeded,failed,ttft_p50_s,ttft_p95_s,ttft_p99_s,required_units,desired_units,in_service_spot_units,in_service_on_demand_units,pending_units,cost_usd\n",
        );
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.3}"));
        for (i, m) in self.ours.minutes.iter().enumerate() {
            let _ = writeln!(
                s,
                "{i},{},{},{},{},{},{},{},{:.3},{:.3},{:.3},{:.3},{:.4}",
                m.arrived,
                m.succeeded,
                m.failed,
                opt(m.ttft_p50_s),
                opt(m.ttft_p95_s),
                opt(m.ttft_p99_s),
                m.required_units,
                m.desired_units,
                m.in_service_spot_units,
                m.in_service_on_demand_units,
                m.pending_units,
                m.cost_usd
            );
        }
        s
    }

    /// A summary table for the terminal.
    pub fn table(&self) -> String {
        let mut rows = vec![("ours".to_string(), self.figures(&self.ours))];
        for name in BASELINES {
            if let Some(r) = self.baselines.get(name) {
                rows.push((name.to_string(), self.figures(r)));
            }
        }
        let acc = self.ours.accounting();
        // A run whose servers are not as their profile says says so on its first line.
        let speed = if self.setup.server_speed == 1.0 {
            String::new()
        } else {
            format!(" · servers at {} of their profile", self.setup.server_speed)
        };
        let mut s = format!(
            "scenario {} · policy {} · seed {}{speed} · {:.1} h · {} requests ({} failed)\n\n",
            self.setup.scenario,
            self.setup.policy_name,
            self.setup.traffic.seed,
            self.setup.traffic.duration_secs / 3600.0,
            acc.arrived,
            acc.failed
        );
        let _ = writeln!(
            s,
            "{:<16} {:>8} {:>9} {:>8} {:>7} {:>10} {:>8} {:>6} {:>7} {:>8} {:>8}",
            "policy",
            "avail",
            "err rate",
            "p95 ttft",
            "viol.m",
            "cost $",
            "savings",
            "spot",
            "over",
            "up lag",
            "down lag"
        );
        for (name, f) in rows {
            let _ = writeln!(
                s,
                "{:<16} {:>8.4} {:>9.5} {:>7.2}s {:>7.4} {:>10.2} {:>8} {:>5.0}% {:>6.1}% {:>7.0}s {:>7.0}s",
                name,
                f.slo.availability,
                f.slo.error_rate,
                f.slo.p95_ttft_s,
                f.slo.ttft_violation_minutes,
                f.cost.total_usd,
                f.cost.savings_vs_static.map_or("-".into(), |v| format!("{:.1}%", v * 100.0)),
                f.cost.spot_share * 100.0,
                f.capacity.over_provisioning * 100.0,
                f.capacity.scale_up_latency_s.max,
                f.capacity.scale_down_latency_s.max
            );
        }
        if let Some(line) = self.static_slo_line() {
            let _ = writeln!(s, "\n{line}");
        }
        let t = self.targets();
        let _ = writeln!(
            s,
            "\ntargets (ours): {}",
            t.iter()
                .map(|(k, ok)| format!(
                    "{k} {}",
                    match ok {
                        Some(true) => "✓",
                        Some(false) => "✗",
                        None => "not measured (no static-peak run)",
                    }
                ))
                .collect::<Vec<_>>()
                .join(" · ")
        );
        s
    }

    /// What the static baselines say about the SLO, when the search for `static-slo` ran:
    /// whether static-peak met the SLO, and otherwise the smallest static fleet that did and
    /// what ours saves on it.
    fn static_slo_line(&self) -> Option<String> {
        if !self.static_slo_searched {
            return None;
        }
        let peak = super::units_of(self.baselines.get("static-peak")?);
        let saving = self.figures(&self.ours).cost.savings_vs_static_slo;
        let units = |n: u32| match n {
            1 => "1 unit".to_string(),
            n => format!("{n} units"),
        };
        Some(match self.static_slo_units {
            Some(n) if n == peak => format!("static-peak ({}) meets the SLO", units(peak)),
            Some(n) => format!(
                "static-peak ({}) misses the SLO; the smallest static fleet that meets it has {} (static-slo){}",
                units(peak),
                units(n),
                saving.map_or(String::new(), |v| format!(": ours costs {:.1}% less", v * 100.0))
            ),
            None => format!(
                "static-peak ({}) misses the SLO, and so does a static fleet of {}",
                units(peak),
                units(peak * super::STATIC_SLO_MAX_FACTOR)
            ),
        })
    }

    /// EVALUATION.md's targets for the policy under test, each met or not — `None` when the run
    /// did not measure it (savings need the static-peak baseline).
    pub fn targets(&self) -> Vec<(&'static str, Option<bool>)> {
        let f = self.figures(&self.ours);
        vec![
            ("availability>0.999", Some(f.slo.availability > 0.999)),
            ("error<0.001", Some(f.slo.error_rate < 0.001)),
            (
                "p95ttft<2s",
                Some(f.slo.p95_ttft_s < self.setup.fleet.slo.ttft_p95_secs),
            ),
            ("savings>30%", f.cost.savings_vs_static.map(|s| s > 0.30)),
            ("overprov<20%", Some(f.capacity.over_provisioning < 0.20)),
            (
                "scale-up<120s",
                Some(f.capacity.scale_up_latency_s.max < 120.0),
            ),
            (
                "scale-down<300s",
                Some(f.capacity.scale_down_latency_s.max < 300.0),
            ),
        ]
    }

    /// One self-contained HTML page with SVG plots.
    pub fn html(&self) -> String {
        let mins = &self.ours.minutes;
        let x: Vec<f64> = (0..mins.len()).map(|i| i as f64).collect();
        let load: Vec<f64> = mins.iter().map(|m| m.arrived as f64 / 60.0).collect();
        let required: Vec<f64> = mins.iter().map(|m| m.required_units as f64).collect();
        let desired: Vec<f64> = mins.iter().map(|m| m.desired_units).collect();
        let spot: Vec<f64> = mins.iter().map(|m| m.in_service_spot_units).collect();
        let od: Vec<f64> = mins.iter().map(|m| m.in_service_on_demand_units).collect();
        // A minute that admitted nothing has no TTFT: a gap in the line, not a zero.
        let p = |f: fn(&super::stats::Minute) -> Option<f64>| -> Vec<f64> {
            mins.iter().map(|m| f(m).unwrap_or(f64::NAN)).collect()
        };
        let mut costs = vec![(
            "ours".to_string(),
            mins.iter().map(|m| m.cost_usd).collect::<Vec<_>>(),
        )];
        for name in BASELINES {
            if let Some(r) = self.baselines.get(name) {
                costs.push((
                    name.to_string(),
                    r.minutes.iter().map(|m| m.cost_usd).collect(),
                ));
            }
        }
        let band_at = |m: usize, upper: bool| {
            self.ours
                .forecast_band
                .get(m)
                .copied()
                .flatten()
                .map_or(f64::NAN, |(p, u)| (if upper { u } else { p }) / 60.0)
        };
        let band_point: Vec<f64> = (0..mins.len()).map(|m| band_at(m, false)).collect();
        let band_upper: Vec<f64> = (0..mins.len()).map(|m| band_at(m, true)).collect();
        let mut load_series: Vec<Series<'_>> = vec![("requests/s", PALETTE[0], &load)];
        if band_point.iter().any(|v| v.is_finite()) {
            load_series.push(("forecast", PALETTE[4], &band_point));
            load_series.push(("forecast, 90 % upper bound", PALETTE[6], &band_upper));
        }
        let slo = self.setup.fleet.slo.ttft_p95_secs;
        let series: Vec<Series<'_>> = costs
            .iter()
            .zip(PALETTE.iter())
            .map(|((n, v), c)| (n.as_str(), *c, v.as_slice()))
            .collect();
        let charts = [
            line_chart(
                if band_point.iter().any(|v| v.is_finite()) {
                    "Load, and the forecast of each minute made 5 minutes before it"
                } else {
                    "Load"
                },
                &x,
                &load_series,
                "minute",
                "requests/s",
                None,
            ),
            line_chart(
                "Units: required vs desired vs in service by market",
                &x,
                &[
                    ("required", PALETTE[1], &required),
                    ("desired", PALETTE[0], &desired),
                    ("in service, spot", PALETTE[3], &spot),
                    ("in service, on-demand", PALETTE[2], &od),
                ],
                "minute",
                "units",
                None,
            ),
            line_chart(
                "TTFT percentiles per minute; dashed: the P95 SLO",
                &x,
                &[
                    ("p50", PALETTE[3], &p(|m| m.ttft_p50_s)),
                    ("p95", PALETTE[2], &p(|m| m.ttft_p95_s)),
                    ("p99", PALETTE[1], &p(|m| m.ttft_p99_s)),
                ],
                "minute",
                "seconds",
                Some(slo),
            ),
            line_chart(
                "Cumulative cost of each policy",
                &x,
                &series,
                "minute",
                "USD",
                None,
            ),
        ];
        page(
            &format!("llm-autoscaler simulation · {}", self.setup.scenario),
            &self.table(),
            &charts,
        )
    }
}
