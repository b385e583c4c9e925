//! Reports of a simulation: JSON with EVALUATION.md's stable keys (documented in
//! `docs/simulator.md`), a per-minute CSV, a self-contained HTML page with SVG plots, and a
//! summary table for the terminal. All are strings; the CLI writes them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

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
            duration_s: self.setup.traffic.duration_secs,
            requests: self.ours.accounting().arrived,
            slo: f.slo,
            cost: f.cost,
            capacity: f.capacity,
            accounting: self.ours.accounting(),
            events: self.ours.events(),
            peak_required_units: self.required.iter().copied().max().unwrap_or(0),
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
        let mut s = format!(
            "scenario {} · policy {} · seed {} · {:.1} h · {} requests ({} failed)\n\n",
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
        let t = self.targets();
        let _ = writeln!(
            s,
            "\ntargets (ours): {}",
            t.iter()
                .map(|(k, ok)| format!("{k} {}", if *ok { "✓" } else { "✗" }))
                .collect::<Vec<_>>()
                .join(" · ")
        );
        s
    }

    /// EVALUATION.md's targets for the policy under test, each met or not.
    pub fn targets(&self) -> Vec<(&'static str, bool)> {
        let f = self.figures(&self.ours);
        vec![
            ("availability>0.999", f.slo.availability > 0.999),
            ("error<0.001", f.slo.error_rate < 0.001),
            (
                "p95ttft<2s",
                f.slo.p95_ttft_s < self.setup.fleet.slo.ttft_p95_secs,
            ),
            (
                "savings>30%",
                f.cost.savings_vs_static.is_some_and(|s| s > 0.30),
            ),
            ("overprov<20%", f.capacity.over_provisioning < 0.20),
            ("scale-up<120s", f.capacity.scale_up_latency_s.max < 120.0),
            (
                "scale-down<300s",
                f.capacity.scale_down_latency_s.max < 300.0,
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
        let p = |f: fn(&super::stats::Minute) -> Option<f64>| -> Vec<f64> {
            mins.iter().map(|m| f(m).unwrap_or(0.0)).collect()
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
        let mut html = String::new();
        let _ = write!(
            html,
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>llm-autoscaler · {}</title>\
             <style>body{{font:14px system-ui,sans-serif;margin:24px;color:#222}}h2{{font-size:16px;margin:24px 0 4px}}\
             pre{{background:#f6f6f6;padding:12px;overflow:auto;white-space:pre-wrap}}svg{{background:#fff;border:1px solid #ddd}}\
             .legend span{{margin-right:14px}}</style></head><body><h1>llm-autoscaler simulation · {}</h1><pre>{}</pre>",
            esc(&self.setup.scenario),
            esc(&self.setup.scenario),
            esc(&self.table())
        );
        html += &chart(
            "Load (requests/s)",
            &x,
            &[("requests/s", "#555", &load)],
            "minute",
            None,
        );
        html += &chart(
            "Units: required vs desired vs in service by market",
            &x,
            &[
                ("required", "#d62728", &required),
                ("desired", "#1f77b4", &desired),
                ("in service, spot", "#2ca02c", &spot),
                ("in service, on-demand", "#ff7f0e", &od),
            ],
            "minute",
            None,
        );
        let slo = self.setup.fleet.slo.ttft_p95_secs;
        html += &chart(
            "TTFT percentiles per minute (s); dashed: the P95 SLO",
            &x,
            &[
                ("p50", "#2ca02c", &p(|m| m.ttft_p50_s)),
                ("p95", "#ff7f0e", &p(|m| m.ttft_p95_s)),
                ("p99", "#d62728", &p(|m| m.ttft_p99_s)),
            ],
            "minute",
            Some(slo),
        );
        let palette = [
            "#1f77b4", "#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#2ca02c",
        ];
        let series: Vec<(&str, &str, &[f64])> = costs
            .iter()
            .zip(palette.iter().cycle())
            .map(|((n, v), c)| (n.as_str(), *c, v.as_slice()))
            .collect();
        html += &chart(
            "Cumulative cost of each policy (USD)",
            &x,
            &series,
            "minute",
            None,
        );
        html += "</body></html>\n";
        html
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A line chart as inline SVG, with an optional dashed reference line. Long series are thinned
/// to ≤ 2,000 points per line (max of each bucket, so peaks stay visible).
fn chart(
    title: &str,
    x: &[f64],
    series: &[(&str, &str, &[f64])],
    xlabel: &str,
    reference: Option<f64>,
) -> String {
    let (w, h, pad) = (960.0, 260.0, 44.0);
    let xmax = x.last().copied().unwrap_or(1.0).max(1.0);
    let ymax = series
        .iter()
        .flat_map(|(_, _, ys)| ys.iter().copied())
        .fold(reference.unwrap_or(0.0), f64::max)
        .max(1e-9)
        * 1.05;
    let mut s = format!("<h2>{}</h2><div class=\"legend\">", esc(title));
    for (name, color, _) in series {
        let _ = write!(s, "<span style=\"color:{color}\">■ {}</span>", esc(name));
    }
    let _ = write!(s, "</div><svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" xmlns=\"http://www.w3.org/2000/svg\">");
    let _ = write!(
        s,
        "<line x1=\"{pad}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#999\"/><line x1=\"{pad}\" y1=\"10\" x2=\"{pad}\" y2=\"{0}\" stroke=\"#999\"/>",
        h - pad,
        w - 10.0
    );
    let _ = write!(
        s,
        "<text x=\"4\" y=\"16\" font-size=\"11\">{ymax:.1}</text><text x=\"4\" y=\"{}\" font-size=\"11\">0</text><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{xlabel} {xmax:.0}</text>",
        h - pad,
        w - 10.0,
        h - pad + 16.0
    );
    let sx = |v: f64| pad + v / xmax * (w - pad - 10.0);
    let sy = |v: f64| h - pad - v / ymax * (h - pad - 10.0);
    if let Some(r) = reference {
        let _ = write!(
            s,
            "<line x1=\"{pad}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#888\" stroke-dasharray=\"5,4\"/><text x=\"{2}\" y=\"{3:.1}\" font-size=\"11\" text-anchor=\"end\">{r}</text>",
            sy(r),
            w - 10.0,
            pad - 4.0,
            sy(r) + 4.0
        );
    }
    for (_, color, ys) in series {
        let step = (ys.len() / 2000).max(1);
        let mut pts = String::new();
        for (i, chunk) in ys.chunks(step).enumerate() {
            let y = chunk.iter().copied().fold(f64::MIN, f64::max);
            let xi = x.get(i * step).copied().unwrap_or(0.0);
            let _ = write!(pts, "{:.1},{:.1} ", sx(xi), sy(y));
        }
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.3\" points=\"{}\"/>",
            pts.trim_end()
        );
    }
    s + "</svg>"
}
