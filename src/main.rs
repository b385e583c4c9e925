//! The `llm-autoscaler` command line: wires the library to files and maps errors to exit codes.
//! `anyhow` lives only here.
//!
//! Exit codes: 0 success; 1 runtime failure; 2 invalid policy file; 3 invalid input file
//! (snapshot, trace).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};

use llm_autoscaler::config::{self, Config, ConfigError, Fleet, Target};
use llm_autoscaler::engine::{self, Decision, EngineState};
use llm_autoscaler::model::{Snapshot, Timestamp};

/// SLO-driven autoscaler for LLM inference fleets on AWS GPU Auto Scaling Groups.
#[derive(Parser)]
#[command(version, about, long_about = None, after_help = "Exit codes: 0 ok, 1 runtime failure, 2 invalid policy file, 3 invalid input file.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a policy file and print a summary of each fleet.
    ///
    /// Every problem is printed as FILE:LINE:COL: key.path: what is wrong; what would be valid.
    Check {
        /// The TOML policy file.
        #[arg(long, short, default_value = "config/example.toml")]
        config: PathBuf,
    },
    /// What-if: run the engine once on a JSON snapshot and print the decision with its reasons.
    ///
    /// The snapshot file holds `now`, optionally `fleet` (needed when the policy has several),
    /// the observed `snapshot` and optionally the engine `state` (recommendation history, scale
    /// events, panic state). See docs/snapshot.md. Prints `{decision, state}` as JSON; feed the
    /// printed state into the next snapshot to step the engine.
    Decide {
        /// The TOML policy file.
        #[arg(long, short, default_value = "config/example.toml")]
        config: PathBuf,
        /// The JSON snapshot file (`-` for standard input).
        #[arg(long, short)]
        snapshot: PathBuf,
        /// Print only the one-line summary instead of JSON.
        #[arg(long)]
        summary: bool,
    },
}

/// The `decide` input document.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideInput {
    now: Timestamp,
    #[serde(default)]
    fleet: Option<String>,
    snapshot: Snapshot,
    #[serde(default)]
    state: EngineState,
}

#[derive(Serialize)]
struct DecideOutput<'a> {
    decision: &'a Decision,
    state: &'a EngineState,
}

/// An error of an input file other than the policy (exit code 3).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct InputError(String);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { config } => check(&config),
        Command::Decide {
            config,
            snapshot,
            summary,
        } => decide(&config, &snapshot, summary),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(ce) = e.downcast_ref::<ConfigError>() {
                eprintln!("{ce}");
                return ExitCode::from(2);
            }
            eprintln!("error: {e:#}");
            if e.downcast_ref::<InputError>().is_some() {
                ExitCode::from(3)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn load(path: &Path) -> anyhow::Result<Config> {
    Ok(config::load(path)?)
}

fn check(path: &Path) -> anyhow::Result<()> {
    let cfg = load(path)?;
    let g = &cfg.global;
    println!(
        "{}: ok — provider {:?}, tick {} s, dry-run {}, http {}, state in {}",
        path.display(),
        g.provider,
        g.tick_secs,
        g.dry_run,
        g.http_listen,
        g.state_dir.display()
    );
    for f in &cfg.fleets {
        print_fleet(f);
    }
    Ok(())
}

fn print_fleet(f: &Fleet) {
    println!(
        "fleet {}: {}..={} units, tolerance {}, stale after {} s, on-demand base {} + {} % above",
        f.name,
        f.min_units,
        f.max_units,
        f.tolerance,
        f.stale_after_secs,
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
        println!(
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
        println!(
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
        println!(
            "  scale {dir}: window {} s, select {:?}, policies [{}]",
            r.stabilization_window_secs,
            r.select_policy,
            pols.join(", ")
        );
    }
    if f.panic.enabled {
        println!(
            "  panic: at {}× in-service capacity, stable window {} s",
            f.panic.threshold, f.panic.stable_window_secs
        );
    }
    for s in &f.schedules {
        println!(
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
}

fn read_input(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .context("reading standard input")?;
        Ok(s)
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| InputError(format!("{}: cannot read: {e}", path.display())).into())
    }
}

fn decide(config_path: &Path, snapshot_path: &Path, summary: bool) -> anyhow::Result<()> {
    let cfg = load(config_path)?;
    let text = read_input(snapshot_path)?;
    let input: DecideInput = serde_json::from_str(&text).map_err(|e| {
        InputError(format!(
            "{}:{}:{}: invalid snapshot: {e} (see docs/snapshot.md)",
            snapshot_path.display(),
            e.line(),
            e.column()
        ))
    })?;
    let fleet = match (&input.fleet, cfg.fleets.as_slice()) {
        (None, [only]) => only,
        (None, _) => {
            return Err(InputError(format!(
                "{}: the policy has {} fleets: set \"fleet\" to one of {}",
                snapshot_path.display(),
                cfg.fleets.len(),
                fleet_names(&cfg)
            ))
            .into())
        }
        (Some(name), fleets) => fleets.iter().find(|f| &f.name == name).ok_or_else(|| {
            InputError(format!(
                "{}: no fleet \"{name}\" in {}; valid: {}",
                snapshot_path.display(),
                config_path.display(),
                fleet_names(&cfg)
            ))
        })?,
    };
    let (decision, state) = engine::decide(fleet, &input.snapshot, &input.state, input.now);
    if summary {
        println!("{}", decision.summary);
    } else {
        let out = DecideOutput {
            decision: &decision,
            state: &state,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

fn fleet_names(cfg: &Config) -> String {
    cfg.fleets
        .iter()
        .map(|f| format!("\"{}\"", f.name))
        .collect::<Vec<_>>()
        .join(", ")
}
