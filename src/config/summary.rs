//! A policy's fleets in a few human lines: what `llm-autoscaler check` prints.

use std::fmt::Write as _;

use super::{Fleet, Target};

/// One fleet: bounds, pools, metrics, behavior, panic, schedules, prediction — a line each.
pub fn fleet_summary(f: &Fleet) -> String {
    let mut out = String::new();
    let _ =
        writeln!(out,
        "fleet {}: {} to {} units, tolerance {}, stale after {} s, a silence held {} min, on-demand base {} + {} % above",
        f.name,
        f.min_units,
        f.max_units,
        f.tolerance,
        f.stale_after_secs,
        f.silence_hold_mins,
        f.on_demand_base_units,
        f.on_demand_percentage_above_base
    );
    for p in &f.pools {
        let types: Vec<String> = p
            .instance_types
            .iter()
            .map(|t| format!("{}×{}", t.instance_type, t.weight_units))
            .collect();
        let warm = p
            .warm_pool
            .as_ref()
            .map_or(String::new(), |w| format!(", warm pool min {}", w.min_size));
        let _ = writeln!(
            out,
            "  pool {} ({}): asg {}, types {}{warm}",
            p.name,
            p.market,
            p.asg_name,
            types.join(" ")
        );
    }
    for m in &f.metrics {
        let target = match m.target {
            Target::Utilization {
                average_utilization,
            } => format!("Utilization {average_utilization} %"),
            Target::AverageValue { average_value } => format!("AverageValue {average_value}"),
            Target::Value { value } => format!("Value {value}"),
        };
        let _ = writeln!(
            out,
            "  metric {} ({}): target {target}, stale after {} s",
            m.name,
            m.signal.name(),
            m.stale_after_secs
        );
    }
    for (dir, r) in [
        ("up", &f.behavior.scale_up),
        ("down", &f.behavior.scale_down),
    ] {
        let pols: Vec<String> = r
            .policies
            .iter()
            .map(|p| format!("{:?} {} / {} s", p.kind, p.value, p.period_secs))
            .collect();
        let _ = writeln!(
            out,
            "  scale {dir}: window {} s, select {:?}, policies [{}]",
            r.stabilization_window_secs,
            r.select_policy,
            pols.join(", ")
        );
    }
    if let Some(m) = &f.capacity.model {
        let c = &f.capacity;
        let decode = crate::policy::capacity::decode_tokens_per_sec(m);
        let _ = writeln!(
            out,
            "  capacity ({} model): per unit prefill {:.0} tokens/s, decode {:.0} tokens/s at {} seqs, KV {} tokens per instance; target {:.0} % busy, release down to {:.0} %, ramp ahead {}, learn {}",
            f.model,
            m.prefill_tokens_per_sec,
            decode,
            m.max_seqs,
            m.kv_cache_tokens,
            c.target_utilization * 100.0,
            c.scale_down_utilization * 100.0,
            c.ramp_ahead,
            c.learn
        );
    }
    if f.panic.enabled {
        let _ = writeln!(
            out,
            "  panic: at {}× in-service capacity, stable window {} s — scale-ups then skip the rate policies and nothing scales down until it ends (enabled = false scales as an HPA would)",
            f.panic.threshold, f.panic.stable_window_secs
        );
    }
    for s in &f.schedules {
        let _ = writeln!(
            out,
            "  schedule {}: {} → {} ({}), floor {:?}/{:?}, ceiling {:?}/{:?}",
            s.name,
            s.start.pattern,
            s.end.pattern,
            s.timezone,
            s.min_units,
            s.min_factor,
            s.max_units,
            s.max_factor
        );
    }
    if let Some(p) = &f.predictive {
        let lead = p.lead_secs.map_or_else(
            || {
                format!(
                    "observed p95 cold start (default {} s)",
                    p.default_lead_secs
                )
            },
            |l| format!("{l} s"),
        );
        let _ = writeln!(out,
            "  predictive ({:?}): p{:.0} of the forecast ÷ {} per unit, lead {lead}, {} days of history, refit every {} min",
            p.mode,
            p.quantile * 100.0,
            p.demand_per_unit
                .map_or_else(|| "the learned demand".to_string(), |d| d.to_string()),
            p.history_days,
            p.refit_mins
        );
    }
    out
}

/// The `[global]` keys read once at start-up: a reload (SIGHUP) that changes them has no
/// effect until a restart, so the daemon says which.
pub fn startup_only_changes(
    running: &super::Global,
    reloaded: &super::Global,
) -> Vec<&'static str> {
    let mut out = Vec::new();
    if running.tick_secs != reloaded.tick_secs {
        out.push("tick_secs");
    }
    if running.http_listen != reloaded.http_listen {
        out.push("http_listen");
    }
    if running.state_dir != reloaded.state_dir {
        out.push("state_dir");
    }
    if running.provider != reloaded.provider {
        out.push("provider");
    }
    out
}

/// The `[global]` settings in a line, and CloudWatch publishing in another when it is on.
pub fn global_summary(g: &super::Global) -> String {
    let provider = match g.provider {
        super::ProviderKind::Aws => "aws",
        super::ProviderKind::Sim => "sim (the simulated cloud)",
    };
    let mut out = format!(
        "provider {provider}, tick {} s, dry-run {}, http {}, state in {}",
        g.tick_secs,
        if g.dry_run { "on" } else { "off" },
        g.http_listen,
        g.state_dir.display()
    );
    if let Some(e) = &g.cloudwatch_export {
        let dims: String = e
            .dimensions
            .iter()
            .map(|(k, v)| format!(", {k}={v}"))
            .collect();
        let _ = write!(
            out,
            "\ncloudwatch export: namespace \"{}\", dimensions Fleet{dims}, once per {} s, {} resolution",
            e.namespace,
            e.period_secs,
            if e.high_resolution { "1-s" } else { "standard (60-s)" }
        );
        if g.provider == super::ProviderKind::Sim {
            out.push_str(" — provider sim publishes nothing");
        }
    }
    out
}

/// Warnings about metrics that can never have a sample where the policy runs — each would
/// block every scale-down (HPA's rule: no scale-down while a metric is invalid). On AWS the
/// parser already refuses those it can tell; on the simulated cloud, custom signals have no
/// model.
pub fn sample_warnings(cfg: &super::Config) -> Vec<String> {
    use super::{ProviderKind, Signal};
    if cfg.global.provider != ProviderKind::Sim {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, f) in cfg.fleets.iter().enumerate() {
        for (j, m) in f.metrics.iter().enumerate() {
            if matches!(m.signal, Signal::CustomInstance | Signal::CustomFleet) {
                out.push(format!(
                    "fleets[{i}].metrics[{j}] ({}): the simulated cloud has no samples for custom signals, so this metric stays invalid and the fleet never scales down there (on AWS it reads its source)",
                    m.name
                ));
            }
        }
    }
    out
}

/// A warning when `http_listen` binds beyond loopback: `/api/state` and the dashboard show
/// fleet names, decisions and spend to whoever reaches the port, without authentication.
pub fn exposure_warning(g: &super::Global) -> Option<String> {
    let host = g
        .http_listen
        .rsplit_once(':')
        .map_or(g.http_listen.as_str(), |(h, _)| h)
        .trim_matches(|c| c == '[' || c == ']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!loopback).then(|| {
        format!(
            "global.http_listen = \"{}\" is reachable beyond this host: /api/state and the dashboard show fleet names, decisions and spend without authentication — bind 127.0.0.1 and let a local Prometheus or an SSH tunnel reach it, or restrict the port (security group, firewall)",
            g.http_listen
        )
    })
}

#[cfg(test)]
mod startup_tests {
    use super::*;
    use crate::config::Global;

    #[test]
    fn reloads_name_the_keys_that_need_a_restart() {
        let a = Global::default();
        let mut b = a.clone();
        assert!(startup_only_changes(&a, &b).is_empty());
        b.tick_secs = a.tick_secs + 5;
        b.http_listen = "127.0.0.1:9999".into();
        b.dry_run = !a.dry_run;
        assert_eq!(
            startup_only_changes(&a, &b),
            vec!["tick_secs", "http_listen"]
        );
    }

    #[test]
    fn the_global_line_speaks_the_policy_files_words() {
        let mut g = Global::default();
        assert_eq!(
            global_summary(&g),
            "provider sim (the simulated cloud), tick 15 s, dry-run off, http 127.0.0.1:9464, state in /var/lib/llm-autoscaler"
        );
        g.provider = crate::config::ProviderKind::Aws;
        g.cloudwatch_export = Some(crate::config::CloudWatchExport {
            namespace: "LLM".into(),
            dimensions: vec![("Env".into(), "prod".into())],
            period_secs: 60,
            high_resolution: false,
        });
        assert!(global_summary(&g).ends_with(
            "\ncloudwatch export: namespace \"LLM\", dimensions Fleet, Env=prod, once per 60 s, standard (60-s) resolution"
        ));
    }

    #[test]
    fn custom_signals_are_warned_about_on_the_simulated_cloud_only() {
        let text = "[[fleets]]\nname = \"f\"\nmin_units = 1\nmax_units = 4\n\
            [[fleets.pools]]\nname = \"od\"\nmarket = \"on-demand\"\ninstance_types = [{ type = \"g6.xlarge\" }]\n\
            [[fleets.metrics]]\nsignal = \"queue_depth\"\ntarget = { type = \"AverageValue\", average_value = 4 }\n\
            [[fleets.metrics]]\nname = \"lag\"\nsignal = \"custom_fleet\"\ntarget = { type = \"Value\", value = 4 }\n\
            source = { type = \"promql\", url = \"http://p:9090\", query = \"lag\" }\n";
        let cfg = crate::config::parse_str("p.toml", text).unwrap();
        let w = sample_warnings(&cfg);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("fleets[0].metrics[1] (lag): the simulated cloud has no samples"));
        let on_aws = format!("[global]\nprovider = \"aws\"\n{text}")
            .replace("signal = \"queue_depth\"", "signal = \"kv_cache_usage\"")
            .replace("average_value = 4 }\n\n", "average_value = 4 }\n");
        let cfg = crate::config::parse_str("p.toml", &on_aws).unwrap_or_else(|e| panic!("{e}"));
        assert!(sample_warnings(&cfg).is_empty());
    }

    #[test]
    fn only_a_non_loopback_listener_is_warned_about() {
        let mut g = Global::default();
        for (listen, warned) in [
            ("127.0.0.1:9464", false),
            ("[::1]:9464", false),
            ("localhost:9464", false),
            ("0.0.0.0:9464", true),
            ("10.0.1.5:9464", true),
            ("[::]:9464", true),
        ] {
            g.http_listen = listen.into();
            assert_eq!(exposure_warning(&g).is_some(), warned, "{listen}");
        }
    }
}
