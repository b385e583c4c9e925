//! Logging setup and the Prometheus exposition of what the daemon publishes. Every metric name
//! starts with `llm_autoscaler_`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::daemon::Published;
use crate::policy::hpa::MetricStatus;

/// Installs the tracing subscriber: `RUST_LOG` filters (default `info`); JSON lines when
/// `json`, human-readable otherwise — coloured only on a terminal (and not with `NO_COLOR`), so
/// a log redirected to a file or the journal carries no escape codes.
pub fn init_tracing(json: bool) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// A label value, escaped for the exposition format.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn help(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(
            self.0,
            "# HELP llm_autoscaler_{name} {help}\n# TYPE llm_autoscaler_{name} {kind}"
        );
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", esc(v)))
            .collect();
        if labels.is_empty() {
            let _ = writeln!(self.0, "llm_autoscaler_{name} {value}");
        } else {
            let _ = writeln!(
                self.0,
                "llm_autoscaler_{name}{{{}}} {value}",
                labels.join(",")
            );
        }
    }
}

/// The state database's health.
fn persistence(o: &mut Out, p: &crate::daemon::Persistence) {
    o.help(
        "state_persist_errors_total",
        "counter",
        "Saves to the state database that failed.",
    );
    o.sample("state_persist_errors_total", &[], p.errors_total as f64);
    o.help(
        "state_persist_failing_ticks",
        "gauge",
        "Ticks in a row whose engine state was not persisted (0 when the last one was).",
    );
    o.sample("state_persist_failing_ticks", &[], p.failing_ticks as f64);
    o.help(
        "state_recoveries_total",
        "counter",
        "Damaged state databases moved aside and started afresh.",
    );
    o.sample("state_recoveries_total", &[], p.recoveries_total as f64);
    o.help(
        "state_in_memory",
        "gauge",
        "1 when the state directory could not be written and nothing is persisted.",
    );
    o.sample("state_in_memory", &[], f64::from(u8::from(p.in_memory)));
}

/// Per fleet: the forecast and its floor, latency against the SLO, and when each pool was last
/// set.
fn fleet_objectives(o: &mut Out, p: &Published) {
    o.help(
        "forecast_peak_demand",
        "gauge",
        "Upper-quantile demand forecast within a minute of now + lead (the predictive floor's input), in the demand's unit.",
    );
    o.help(
        "forecast_level_demand",
        "gauge",
        "Upper-quantile demand forecast for now.",
    );
    o.help(
        "forecast_floor_units",
        "gauge",
        "The floor the forecast implies, units (applied only ahead of a rise).",
    );
    o.help(
        "forecast_model_weight",
        "gauge",
        "The forecast ensemble's weight of a candidate model, per horizon bucket (minutes ahead), learnt from its recent errors on this fleet's demand.",
    );
    o.help(
        "forecast_interval_coverage_ratio",
        "gauge",
        "Share of scored forecast minutes that fell inside the forecast's interval (aims at 2 × quantile − 1).",
    );
    o.help(
        "ttft_p95_seconds",
        "gauge",
        "The fleet's P95 time to first token over the last minute, from its servers' histograms.",
    );
    o.help(
        "slo_ttft_p95_seconds",
        "gauge",
        "The policy's P95 TTFT objective.",
    );
    o.help(
        "pool_last_applied_timestamp_seconds",
        "gauge",
        "When the pool's desired capacity was last set successfully (the clock's time).",
    );
    capacity_help(o);
    for (name, f) in &p.fleets {
        let l = [("fleet", name.as_str())];
        if let Some(c) = f.decision.as_ref().and_then(|d| d.capacity.as_ref()) {
            capacity_samples(o, &l, c);
        }
        if let Some(step) = f.decision.as_ref().and_then(|d| d.predictive.as_ref()) {
            if let Some(v) = step.peak_demand {
                o.sample("forecast_peak_demand", &l, v);
            }
            if let Some(v) = step.level_now {
                o.sample("forecast_level_demand", &l, v);
            }
            if let Some(v) = step.floor_units {
                o.sample("forecast_floor_units", &l, v as f64);
            }
        }
        for w in &f.forecast_weights {
            let mut from = 0;
            for (b, end) in crate::forecast::ensemble::BUCKET_ENDS.iter().enumerate() {
                let horizon = if *end == usize::MAX {
                    format!("{from}+")
                } else {
                    format!("{from}-{end}")
                };
                o.sample(
                    "forecast_model_weight",
                    &[
                        ("fleet", name.as_str()),
                        ("model", w.model),
                        ("horizon", horizon.as_str()),
                    ],
                    w.by_bucket[b],
                );
                from = *end;
            }
        }
        if let Some(c) = f.forecast_interval_coverage {
            o.sample("forecast_interval_coverage_ratio", &l, c);
        }
        if let Some(lat) = f.latency {
            o.sample("ttft_p95_seconds", &l, lat.ttft_p95_secs);
        }
        o.sample("slo_ttft_p95_seconds", &l, f.slo_ttft_p95_secs);
        for (pool, at) in &f.last_applied_at {
            o.sample(
                "pool_last_applied_timestamp_seconds",
                &[("fleet", name.as_str()), ("pool", pool.as_str())],
                at.secs_f64(),
            );
        }
    }
}

/// What the capacity model learned and sizes on, per fleet with one: the SLO feedback an
/// operator watches to see whether the profile holds for their servers.
fn capacity_help(o: &mut Out) {
    o.help(
        "capacity_correction_ratio",
        "gauge",
        "Capacity counted per unit / the profile's, learned from queueing over the TTFT SLO (1: the profile as is; 0.5 at least).",
    );
    o.help(
        "capacity_measured_speed_ratio",
        "gauge",
        "The servers' speed / the profile's, from their token counters and batch sizes, averaged (1 until read); the correction counts no more than it.",
    );
    o.help(
        "capacity_queue_factor_ratio",
        "gauge",
        "The fleet's P95 prefill wait / Erlang's C prediction, learned (1 to 4); the queue floor stretches its wait by it.",
    );
    o.help(
        "capacity_queue_floor_units",
        "gauge",
        "The fewest units whose prefill queue keeps its P95 wait within a quarter of the SLO; a capacity-model scale-down goes no lower.",
    );
    o.help(
        "capacity_served_busy_units",
        "gauge",
        "Units the in-service servers' served work keeps busy (no backlog), through the capacity model.",
    );
}

fn capacity_samples(o: &mut Out, l: &[(&str, &str)], c: &crate::engine::CapacityStep) {
    o.sample("capacity_correction_ratio", l, c.correction);
    o.sample("capacity_queue_factor_ratio", l, c.queue_factor);
    o.sample("capacity_measured_speed_ratio", l, c.measured_speed);
    if let Some(u) = c.queue_floor_units {
        o.sample("capacity_queue_floor_units", l, f64::from(u));
    }
    o.sample("capacity_served_busy_units", l, c.served_busy_units);
}

/// The HA lease, with `[global.ha]`.
fn lease(o: &mut Out, ha: &crate::daemon::HaStatus) {
    let me = [("lease", ha.lease.as_str()), ("holder", ha.holder.as_str())];
    o.help(
        "ha_leader",
        "gauge",
        "1 while this daemon holds the lease and actuates; 0 while it follows.",
    );
    o.sample(
        "ha_leader",
        &me,
        f64::from(u8::from(ha.role == crate::lease::Role::Leader)),
    );
    o.help(
        "ha_lease_token",
        "gauge",
        "The fencing token this daemon holds (0 while following).",
    );
    o.sample("ha_lease_token", &me, ha.token.unwrap_or(0) as f64);
    o.help(
        "ha_lease_age_seconds",
        "gauge",
        "Seconds since the lease record last changed, as seen by this daemon.",
    );
    o.sample(
        "ha_lease_age_seconds",
        &me,
        ha.lease_age_secs.unwrap_or(0.0),
    );
    o.help(
        "ha_transitions_total",
        "counter",
        "Changes between leader and follower.",
    );
    o.sample("ha_transitions_total", &me, ha.transitions_total as f64);
    o.help(
        "ha_lease_errors_total",
        "counter",
        "Lease reads and writes that failed.",
    );
    o.sample("ha_lease_errors_total", &me, ha.lease_errors_total as f64);
}

/// `/metrics`.
pub fn render_metrics(p: &Published) -> String {
    let mut o = Out(String::new());
    o.help(
        "ticks_total",
        "counter",
        "Ticks completed by the control loop.",
    );
    o.sample("ticks_total", &[], p.ticks as f64);
    o.help(
        "tick_cpu_seconds_total",
        "counter",
        "CPU seconds the control loop's thread spent in ticks.",
    );
    o.sample("tick_cpu_seconds_total", &[], p.tick_cpu_seconds_total);
    o.help(
        "last_tick_timestamp_seconds",
        "gauge",
        "Time of the last completed tick (virtual time with the simulated cloud).",
    );
    o.sample(
        "last_tick_timestamp_seconds",
        &[],
        p.last_tick_at.map_or(0.0, |t| t.secs_f64()),
    );
    o.help("dry_run", "gauge", "1 when no change is applied.");
    o.sample("dry_run", &[], f64::from(u8::from(p.dry_run)));
    o.help("reloads_total", "counter", "Policy reloads by result.");
    o.sample("reloads_total", &[("result", "ok")], p.reloads_total as f64);
    o.sample(
        "reloads_total",
        &[("result", "rejected")],
        p.reload_failures_total as f64,
    );
    o.help(
        "cloudwatch_export_points_total",
        "counter",
        "Values published to CloudWatch ([global.cloudwatch_export]).",
    );
    o.sample(
        "cloudwatch_export_points_total",
        &[],
        p.exported_points_total as f64,
    );
    o.help(
        "cloudwatch_export_errors_total",
        "counter",
        "Ticks whose CloudWatch publication failed or timed out.",
    );
    o.sample(
        "cloudwatch_export_errors_total",
        &[],
        p.export_errors_total as f64,
    );
    o.help(
        "build_info",
        "gauge",
        "1, labelled with the running build's version.",
    );
    o.sample("build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1.0);
    persistence(&mut o, &p.persistence);
    if let Some(ha) = &p.ha {
        lease(&mut o, ha);
    }

    let fleets = || p.fleets.iter();
    o.help(
        "desired_units",
        "gauge",
        "Desired capacity decided, units, per pool and market.",
    );
    for (name, f) in fleets() {
        if let Some(d) = &f.decision {
            for t in &d.pools {
                o.sample(
                    "desired_units",
                    &[
                        ("fleet", name),
                        ("pool", &t.pool),
                        ("market", &t.market.to_string()),
                    ],
                    t.desired_units as f64,
                );
            }
        }
    }
    o.help(
        "in_service_units",
        "gauge",
        "Units in service when the fleet was last observed.",
    );
    o.help(
        "pending_units",
        "gauge",
        "Units booting when the fleet was last observed.",
    );
    o.help(
        "bounds_units",
        "gauge",
        "Capacity bounds in force (schedules applied), units.",
    );
    o.help(
        "panic",
        "gauge",
        "1 while the fleet is in panic (burst) mode.",
    );
    o.help(
        "signal_value",
        "gauge",
        "Each metric's observed figure (average per unit, or the fleet value).",
    );
    o.help("signal_target", "gauge", "Each metric's target.");
    o.help(
        "signal_recommendation_units",
        "gauge",
        "Each metric's recommended capacity, units (absent when invalid or abstaining).",
    );
    o.help(
        "signal_valid",
        "gauge",
        "1 when the metric could be computed from fresh samples.",
    );
    for (name, f) in fleets() {
        let Some(d) = &f.decision else { continue };
        o.sample(
            "in_service_units",
            &[("fleet", name)],
            d.in_service_units as f64,
        );
        o.sample("pending_units", &[("fleet", name)], d.pending_units as f64);
        o.sample(
            "bounds_units",
            &[("fleet", name), ("bound", "min")],
            d.bounds.min_units as f64,
        );
        o.sample(
            "bounds_units",
            &[("fleet", name), ("bound", "max")],
            d.bounds.max_units as f64,
        );
        o.sample(
            "panic",
            &[("fleet", name)],
            f64::from(u8::from(d.panic.is_some_and(|p| p.active))),
        );
        for m in &d.metrics {
            let l = [
                ("fleet", name.as_str()),
                ("metric", m.name.as_str()),
                ("signal", m.signal),
            ];
            if let Some(v) = m.current {
                o.sample("signal_value", &l, v);
            }
            o.sample("signal_target", &l, m.target);
            if let Some(r) = m.recommendation {
                o.sample("signal_recommendation_units", &l, r as f64);
            }
            o.sample(
                "signal_valid",
                &l,
                f64::from(u8::from(!matches!(m.status, MetricStatus::Invalid(_)))),
            );
        }
    }
    fleet_objectives(&mut o, p);
    o.help("decisions_total", "counter", "Decisions by action.");
    for (name, f) in fleets() {
        for (action, n) in &f.decisions_total {
            o.sample(
                "decisions_total",
                &[("fleet", name), ("action", action)],
                *n as f64,
            );
        }
    }
    o.help("decision_reasons_total", "counter", "Decisions by the conditions that held (HPA reasons: ScaleUpLimit, ScaleDownStabilized, InvalidMetrics, DemandOverThreshold, …).");
    for (name, f) in fleets() {
        for (reason, n) in &f.reasons_total {
            o.sample(
                "decision_reasons_total",
                &[("fleet", name), ("reason", reason)],
                *n as f64,
            );
        }
    }
    o.help(
        "provider_errors_total",
        "counter",
        "Failed provider calls by kind (transient, throttled, not_found, config).",
    );
    o.help(
        "set_desired_total",
        "counter",
        "Desired-capacity changes sent to the cloud.",
    );
    o.help(
        "backoff_skipped_ticks_total",
        "counter",
        "Ticks skipped while backing off after failures.",
    );
    o.help(
        "tick_duration_seconds",
        "gauge",
        "Wall seconds the fleet's last tick took (observe, decide, apply).",
    );
    for (name, f) in fleets() {
        for (kind, n) in &f.provider_errors_total {
            o.sample(
                "provider_errors_total",
                &[("fleet", name), ("kind", kind)],
                *n as f64,
            );
        }
        o.sample(
            "set_desired_total",
            &[("fleet", name)],
            f.set_desired_total as f64,
        );
        o.sample(
            "backoff_skipped_ticks_total",
            &[("fleet", name)],
            f.backoff_skips_total as f64,
        );
        o.sample(
            "tick_duration_seconds",
            &[("fleet", name)],
            f.last_tick_seconds,
        );
    }
    render_pools(&mut o, p);
    render_spend(&mut o, p);
    render_provider(&mut o, &p.provider);
    o.0
}

/// The spend ledger and the budget, per fleet (and per pool and market).
fn render_spend(o: &mut Out, p: &Published) {
    let decisions = || {
        p.fleets
            .iter()
            .filter_map(|(name, f)| f.decision.as_ref().map(|d| (name.as_str(), f, d)))
    };
    o.help(
        "spend_rate_usd_per_hour",
        "gauge",
        "What the fleet's instances cost per hour now, as observed.",
    );
    o.help(
        "spend_month_usd",
        "gauge",
        "Spend this calendar month (UTC), as observed by the engine.",
    );
    o.help(
        "spend_month_by_pool_usd",
        "gauge",
        "Spend this month per pool and market.",
    );
    for (name, f, d) in decisions() {
        let Some(s) = &d.spend else { continue };
        o.sample(
            "spend_rate_usd_per_hour",
            &[("fleet", name)],
            s.rate_usd_per_hour,
        );
        o.sample("spend_month_usd", &[("fleet", name)], s.month_usd);
        for (pool, usd) in &s.by_pool_usd {
            let market = f.pools.get(pool).map_or("", |p| p.market.as_str());
            o.sample(
                "spend_month_by_pool_usd",
                &[("fleet", name), ("pool", pool), ("market", market)],
                *usd,
            );
        }
    }
    o.help(
        "budget_cap_usd_per_hour",
        "gauge",
        "The spend rate the budget allows now (hourly cap, or the month's rest per hour left).",
    );
    o.help(
        "budget_alert",
        "gauge",
        "1 when the budget capped a scale-up or the fleet is over it.",
    );
    for (name, _, d) in decisions() {
        let Some(b) = &d.budget else { continue };
        if b.cap_usd_per_hour.is_finite() {
            o.sample(
                "budget_cap_usd_per_hour",
                &[("fleet", name)],
                b.cap_usd_per_hour,
            );
        }
        o.sample(
            "budget_alert",
            &[("fleet", name)],
            if b.alert { 1.0 } else { 0.0 },
        );
    }
}

/// Per pool, by market: desired, in-service and pending units as observed.
fn render_pools(o: &mut Out, p: &Published) {
    type Field = fn(&crate::daemon::PoolStatus) -> u32;
    let fields: [(&str, &str, Field); 3] = [
        (
            "pool_desired_units",
            "Desired capacity set on the pool's group, units.",
            |s| s.desired_units,
        ),
        (
            "pool_in_service_units",
            "Units in service in the pool.",
            |s| s.in_service_units,
        ),
        ("pool_pending_units", "Units booting in the pool.", |s| {
            s.pending_units
        }),
    ];
    for (name, help, get) in fields {
        o.help(name, "gauge", help);
        for (fleet, f) in &p.fleets {
            for (pool, s) in &f.pools {
                o.sample(
                    name,
                    &[("fleet", fleet), ("pool", pool), ("market", &s.market)],
                    get(s) as f64,
                );
            }
        }
    }
}

/// The provider's own counters: cloud API calls (count, failures, seconds), scrapes, events.
fn render_provider(o: &mut Out, s: &crate::provider::ProviderStats) {
    let by_api: [(&str, &str, &std::collections::BTreeMap<&str, f64>); 1] = [(
        "aws_call_seconds_total",
        "Wall seconds spent in AWS API calls, by API (÷ aws_calls_total: mean latency).",
        &s.call_seconds_total,
    )];
    let counts: [(&str, &str, &std::collections::BTreeMap<&str, u64>); 2] = [
        ("aws_calls_total", "AWS API calls, by API.", &s.calls_total),
        (
            "aws_call_errors_total",
            "AWS API calls that failed after the SDK's retries, by API.",
            &s.errors_total,
        ),
    ];
    for (name, help, map) in counts {
        o.help(name, "counter", help);
        for (api, n) in map {
            o.sample(name, &[("api", api)], *n as f64);
        }
    }
    for (name, help, map) in by_api {
        o.help(name, "counter", help);
        for (api, secs) in map {
            o.sample(name, &[("api", api)], *secs);
        }
    }
    o.help(
        "events_total",
        "counter",
        "Event-queue messages read, by kind.",
    );
    for (kind, n) in &s.events_total {
        o.sample("events_total", &[("kind", kind)], *n as f64);
    }
    let totals: [(&str, &str, u64); 5] = [
        (
            "scrapes_total",
            "Inference-server scrapes attempted.",
            s.scrapes_total,
        ),
        (
            "scrape_failures_total",
            "Scrapes that failed (timeout, refused, HTTP error).",
            s.scrape_failures_total,
        ),
        (
            "scrape_bad_lines_total",
            "Exposition lines that could not be read.",
            s.scrape_bad_lines_total,
        ),
        (
            "unreadable_events_total",
            "Event messages that could not be read (left for the dead-letter queue).",
            s.unreadable_events_total,
        ),
        (
            "lifecycle_actions_completed_total",
            "Terminate lifecycle actions completed after a drain.",
            s.lifecycle_completed_total,
        ),
    ];
    for (name, help, n) in totals {
        o.help(name, "counter", help);
        o.sample(name, &[], n as f64);
    }
}

/// What a tick publishes to CloudWatch (`[global.cloudwatch_export]`), per fleet with a
/// decision: desired, in-service and pending units, each metric's current value
/// (`Metric.<name>`), the forecast's peak at now + lead and its floor, P95 TTFT. What a fleet
/// did not measure this tick is left out, never sent as zero.
pub fn cloudwatch_points(p: &Published) -> Vec<crate::provider::ExportPoint> {
    let mut out = Vec::new();
    for (fleet, f) in &p.fleets {
        let Some(d) = &f.decision else { continue };
        let mut put = |name: String, value: f64, unit: &'static str| {
            if value.is_finite() {
                out.push(crate::provider::ExportPoint {
                    fleet: fleet.clone(),
                    name,
                    value,
                    unit,
                    at: d.at,
                });
            }
        };
        put("DesiredUnits".into(), f64::from(d.desired_units), "Count");
        put(
            "InServiceUnits".into(),
            f64::from(d.in_service_units),
            "Count",
        );
        put("PendingUnits".into(), f64::from(d.pending_units), "Count");
        for m in &d.metrics {
            if let Some(v) = m.current {
                put(format!("Metric.{}", m.name), v, "None");
            }
        }
        if let Some(step) = &d.predictive {
            if let Some(v) = step.peak_demand {
                put("ForecastPeakDemand".into(), v, "None");
            }
            if let Some(v) = step.floor_units {
                put("ForecastFloorUnits".into(), f64::from(v), "Count");
            }
        }
        if let Some(lat) = f.latency {
            put("TtftP95".into(), lat.ttft_p95_secs, "Seconds");
        }
        // Capacity by market, summed over the fleet's pools of each.
        let mut by_market: BTreeMap<&str, f64> = BTreeMap::new();
        for pool in f.pools.values() {
            *by_market.entry(pool.market.as_str()).or_default() += f64::from(pool.in_service_units);
        }
        for (market, units) in by_market {
            let name = if market == "spot" {
                "InServiceUnitsSpot"
            } else {
                "InServiceUnitsOnDemand"
            };
            put(name.into(), units, "Count");
        }
        if let Some(spend) = &d.spend {
            put(
                "SpendRateUsdPerHour".into(),
                spend.rate_usd_per_hour,
                "None",
            );
        }
    }
    out
}
