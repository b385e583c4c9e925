//! A [`Draft`] → an annotated policy TOML: every mapped field where the policy keeps it, with
//! where it came from; every note as a comment; what the input cannot say (pools, instance
//! types) as placeholders to fill in.

use std::fmt::Write as _;

use super::import::toml_string;
use super::Draft;

/// The instance type the pools get until the user names theirs: the example policy's (one
/// L40S, whose profile is built in), so `check` and `simulate` work at once.
pub const PLACEHOLDER_TYPE: &str = "g6e.xlarge";

fn fmt_figure(f: f64) -> String {
    if f.is_nan() {
        "\"auto\"".into()
    } else if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.0}")
    } else {
        // Rust's shortest round-trip form: `0.5`, `1e19` — both valid TOML floats.
        format!("{f:?}")
    }
}

/// The policy text for `draft`, read from `input` (a file name, for the header).
pub fn policy_toml(draft: &Draft, input: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Imported by `llm-autoscaler import` from {input} ({}).\n\
         # Check it: llm-autoscaler check --config <this file>; try it: llm-autoscaler simulate --config <this file>.\n\
         # Fill in what an HPA cannot say: the Auto Scaling Groups and their instance types (TODO below).",
        draft.target_ref
    );
    if !draft.notes.is_empty() {
        s.push_str("#\n# Not mapped, and what was done instead:\n");
        for n in &draft.notes {
            let _ = writeln!(s, "# - {}: {} — {}", n.path, n.what, n.why);
        }
    }
    s.push_str("\n[global]\nprovider = \"aws\"                          # \"sim\" runs it on the built-in simulated cloud\n");
    if let Some(t) = draft.tick_secs {
        let _ = writeln!(
            s,
            "tick_secs = {}                            # KEDA pollingInterval",
            t.max(1)
        );
    }
    let _ = writeln!(
        s,
        "\n[[fleets]]\nname = {}\nmin_units = {}                             # minReplicas\nmax_units = {}                             # maxReplicas",
        toml_string(&draft.name),
        draft.min_units,
        draft.max_units
    );
    let _ = writeln!(
        s,
        "\n# TODO: the Auto Scaling Group behind {} and its GPU instance type (one replica = one unit).\n\
         # A spot pool beside it saves most of the cost: see config/example.toml.\n\
         [[fleets.pools]]\nname = \"on-demand\"\nasg_name = {}\nmarket = \"on-demand\"\ninstance_types = [{{ type = \"{PLACEHOLDER_TYPE}\", weight_units = 1 }}]",
        draft.target_ref,
        toml_string(&format!("{}-on-demand", draft.name))
    );
    for m in &draft.metrics {
        let key = match m.target_type {
            "Utilization" => "average_utilization",
            "AverageValue" => "average_value",
            _ => "value",
        };
        let _ = writeln!(
            s,
            "\n# {}\n[[fleets.metrics]]\nsignal = \"{}\"\nname = {}\ntarget = {{ type = \"{}\", {key} = {} }}",
            m.origin,
            m.signal,
            toml_string(&m.name),
            m.target_type,
            fmt_figure(m.figure)
        );
        if let Some(src) = &m.source {
            let _ = writeln!(s, "source = {src}");
        }
        if !m.signal.starts_with("custom") && m.signal != "token_work" && m.source.is_none() {
            s.push_str("# read from each server's /metrics under its vLLM (or TGI) name\n");
        }
    }
    for (dir, rules) in [
        ("scale_up", &draft.scale_up),
        ("scale_down", &draft.scale_down),
    ] {
        let Some(r) = rules else { continue };
        let _ = writeln!(s, "\n[fleets.behavior.{dir}]");
        if let Some(w) = r.window_secs {
            let _ = writeln!(s, "stabilization_window_secs = {w}");
        }
        if let Some(p) = &r.select {
            let _ = writeln!(s, "select_policy = \"{p}\"");
        }
        if let Some(t) = r.tolerance {
            let _ = writeln!(s, "tolerance = {}", fmt_figure(t));
        }
        if !r.policies.is_empty() {
            let list: Vec<String> = r
                .policies
                .iter()
                .map(|(k, v, p)| format!("{{ type = \"{k}\", value = {v}, period_secs = {p} }}"))
                .collect();
            let _ = writeln!(s, "policies = [{}]", list.join(", "));
        }
    }
    s.push_str(
        "\n# HPA has no panic mode: off, so the fleet scales as the HPA did. Turn it on for bursts\n\
         # (Knative's: scale on a surge at once, never down until it passes).\n\
         [fleets.panic]\nenabled = false\n",
    );
    s
}
