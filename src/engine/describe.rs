//! A decision as `kubectl describe hpa` shows an autoscaler: aligned fields, a metrics table
//! (value / target, what each wants), the stages from the metrics' answer to the final one, the
//! pools, and the conditions — for `decide --describe`. Figures are rounded for reading (the
//! JSON keeps them whole).

use std::fmt::Write as _;

use super::Decision;
use crate::policy::hpa::MetricStatus;

/// A figure with at most `places` decimals and no trailing zeros: 0.7, 30.75, 12.
fn num(v: f64, places: usize) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let s = format!("{v:.places$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn units(u: Option<crate::model::Units>) -> String {
    u.map_or("-".into(), |u| u.to_string())
}

/// Rows as columns padded to their widest cell, two spaces apart, indented by two.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::from("  ");
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                let pad = widths[c] - cell.chars().count();
                let _ = write!(line, "{cell}{}  ", " ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The decision, described.
pub fn describe(d: &Decision) -> String {
    let mut out = fields(d);
    out.push_str("Metrics:\n");
    out.push_str(&metrics_table(d));
    out.push_str("Pools:\n");
    out.push_str(&pools_table(d));
    if !d.warm_pools.is_empty() {
        let warm: Vec<String> = d
            .warm_pools
            .iter()
            .map(|w| format!("{} {}", w.pool, w.min_size))
            .collect();
        let _ = writeln!(out, "{:<20}{}", "Warm pools:", warm.join(", "));
    }
    out.push_str("Conditions:\n");
    out.push_str(&conditions_table(d));
    out
}

/// The `Name: value` lines.
fn fields(d: &Decision) -> String {
    let mut out = String::new();
    let mut field = |name: &str, value: String| {
        let _ = writeln!(out, "{:<20}{value}", format!("{name}:"));
    };
    field("Fleet", d.fleet.clone());
    field("At", d.at.to_string());
    field("Decision", d.summary.clone());
    field(
        "Units",
        format!(
            "current {} → desired {} (in service {}, booting {})",
            d.current_units, d.desired_units, d.in_service_units, d.pending_units
        ),
    );
    let schedules = if d.bounds.active_schedules.is_empty() {
        String::new()
    } else {
        format!(" (schedules: {})", d.bounds.active_schedules.join(", "))
    };
    field(
        "Bounds",
        format!(
            "{} to {} units{schedules}",
            d.bounds.min_units, d.bounds.max_units
        ),
    );
    field(
        "Stages",
        format!(
            "metrics {} → stabilized {} → rate-limited {} → panic {} → budget {}",
            units(d.stages.metrics),
            units(d.stages.stabilized),
            units(d.stages.rate_limited),
            units(d.stages.panic),
            units(d.stages.budget)
        ),
    );
    field(
        "Winning metric",
        d.winning_metric.clone().unwrap_or_else(|| "-".into()),
    );
    if let Some(p) = &d.panic {
        field(
            "Panic",
            format!(
                "{} (demand {}× what is ready{})",
                if p.active { "on" } else { "off" },
                num(p.demand_ratio, 2),
                if p.over_threshold {
                    ", over the threshold"
                } else {
                    ""
                }
            ),
        );
    }
    if let Some(c) = &d.capacity {
        field(
            "Capacity model",
            format!(
                "target {} of a unit, correction {}, a unit prefills {} and decodes {} tokens/s",
                num(c.target_utilization, 2),
                num(c.correction, 2),
                num(c.prefill_tokens_per_sec_per_unit, 0),
                num(c.decode_tokens_per_sec_per_unit, 0)
            ),
        );
    }
    if let Some(p) = &d.predictive {
        let floor = p.floor_units.map_or("-".into(), |f| f.to_string());
        field(
            "Forecast floor",
            format!(
                "{floor} units ({}, lead {} s)",
                if p.applied { "applied" } else { "not applied" },
                num(p.lead_secs, 0)
            ),
        );
    }
    if let Some(s) = &d.spend {
        field(
            "Spend",
            format!(
                "${}/h, ${} this month",
                num(s.rate_usd_per_hour, 2),
                num(s.month_usd, 2)
            ),
        );
    }
    out
}

fn metrics_table(d: &Decision) -> String {
    let mut rows = vec![vec![
        "Name".to_string(),
        "Signal".into(),
        "Value / target".into(),
        "Wants".into(),
        "Status".into(),
    ]];
    for m in &d.metrics {
        let status = match &m.status {
            MetricStatus::Valid => "valid".to_string(),
            MetricStatus::Invalid(why) => format!("invalid: {why}"),
            MetricStatus::Abstain(why) => format!("abstains: {why}"),
        };
        rows.push(vec![
            m.name.clone(),
            m.signal.to_string(),
            format!(
                "{} / {}",
                m.current.map_or("-".into(), |v| num(v, 2)),
                num(m.target, 2)
            ),
            units(m.recommendation),
            status,
        ]);
    }
    table(&rows)
}

fn pools_table(d: &Decision) -> String {
    let mut rows = vec![vec![
        "Pool".to_string(),
        "Market".into(),
        "Group".into(),
        "Desired units".into(),
        "Of which its share".into(),
    ]];
    for p in &d.pools {
        rows.push(vec![
            p.pool.clone(),
            p.market.to_string(),
            p.asg_name.clone(),
            p.desired_units.to_string(),
            p.own_units.to_string(),
        ]);
    }
    table(&rows)
}

fn conditions_table(d: &Decision) -> String {
    let mut rows = vec![vec![
        "Type".to_string(),
        "Status".into(),
        "Reason".into(),
        "Message".into(),
    ]];
    for c in &d.conditions {
        rows.push(vec![
            c.kind.to_string(),
            if c.status { "True" } else { "False" }.into(),
            c.reason.to_string(),
            c.message.clone(),
        ]);
    }
    table(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_rounded_for_reading() {
        // (value, places, shown)
        for (v, places, want) in [
            (65.899_999_999_999_99, 2, "65.9"),
            (0.7, 2, "0.7"),
            (12.0, 2, "12"),
            (2942.528, 0, "2943"),
            (0.005, 2, "0.01"),
        ] {
            assert_eq!(num(v, places), want, "{v}");
        }
    }

    #[test]
    fn columns_line_up() {
        let t = table(&[
            vec!["a".into(), "long value".into(), "x".into()],
            vec!["longer".into(), "b".into(), "y".into()],
        ]);
        assert_eq!(t, "  a       long value  x\n  longer  b           y\n");
    }
}
