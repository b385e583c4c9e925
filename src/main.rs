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

use llm_autoscaler::config::{self, Config, ConfigError, ProviderKind};
use llm_autoscaler::daemon;
use llm_autoscaler::engine::{self, Decision, EngineState};
use llm_autoscaler::model::{Snapshot, Timestamp};
use llm_autoscaler::provider::sim::SimProvider;
use llm_autoscaler::sim::{
    self, scenario,
    traffic::{self, TokenMix, Trace, Traffic},
    world::SpotModel,
    SimSetup,
};
use llm_autoscaler::store::StateStore;
use std::io::{IsTerminal as _, Write as _};

/// `println!` that ends the program quietly (exit 0) when the reader has gone — `llm-autoscaler
/// simulate … | head` — where `println!` would panic on the closed pipe.
macro_rules! out {
    ($($arg:tt)*) => {
        stdout_or_exit(writeln!(std::io::stdout().lock(), $($arg)*))
    };
}

/// `print!`, likewise.
macro_rules! out_part {
    ($($arg:tt)*) => {
        stdout_or_exit(write!(std::io::stdout().lock(), $($arg)*))
    };
}

/// A write to standard output: a closed pipe ends the program with success (the reader took
/// what it wanted); any other failure is reported.
fn stdout_or_exit(result: std::io::Result<()>) {
    if let Err(e) = result {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to standard output: {e}");
        std::process::exit(1);
    }
}

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
        /// The TOML policy file. Default: $LLM_AUTOSCALER_CONFIG, else
        /// /etc/llm-autoscaler/policy.toml when it exists, else the example in a checkout.
        #[arg(long, short, default_value_os_t = default_policy("config/example.toml"))]
        config: PathBuf,
        /// Also check the policy against the live AWS account (the daemon's credential chain):
        /// groups exist and agree with the policy's bounds, warm pools, queues. Read-only.
        #[arg(long)]
        aws: bool,
        /// Print the resolved policy (every default filled in, profiles applied) as JSON instead
        /// of the summary.
        #[arg(long)]
        json: bool,
    },
    /// What-if: run the engine once on a JSON snapshot and print the decision with its reasons.
    ///
    /// The snapshot file holds `now`, optionally `fleet` (needed when the policy has several),
    /// the observed `snapshot` and optionally the engine `state` (recommendation history, scale
    /// events, panic state). See docs/snapshot.md. Prints `{decision, state}` as JSON; feed the
    /// printed state into the next snapshot to step the engine.
    Decide {
        /// The TOML policy file. Default: $LLM_AUTOSCALER_CONFIG, else
        /// /etc/llm-autoscaler/policy.toml when it exists, else the example in a checkout.
        #[arg(long, short, default_value_os_t = default_policy("config/example.toml"))]
        config: PathBuf,
        /// The JSON snapshot file (`-` for standard input).
        #[arg(long, short)]
        snapshot: PathBuf,
        /// Print only the one-line summary instead of JSON.
        #[arg(long, conflicts_with = "describe")]
        summary: bool,
        /// Print the decision as `kubectl describe hpa` shows an autoscaler (fields, metrics,
        /// stages, pools, conditions; figures rounded) instead of JSON.
        #[arg(long)]
        describe: bool,
    },
    /// Replay traffic against a simulated GPU fleet driven by the real engine, and compare the
    /// policy with the baselines (static-peak, hpa-cpu, seed-queue, target-tracking), the
    /// oracle and the reactive oracle (the oracle without its foresight) on the same traffic
    /// and seed.
    ///
    /// Traffic: one of the built-in scenarios (traffic-spike, gradual-growth, periodic,
    /// sudden-drop, mixed-workload, spot-shortage) or a trace file, either `t_s,prompt_tokens,output_tokens`
    /// (one row per request), `minute,requests` (one row per minute), `timestamp,value` (a
    /// Prometheus, Grafana or CloudWatch export; or their JSON answer as saved: a range query,
    /// `get-metric-data`, `get-metric-statistics`), or a published LLM trace as published
    /// (Azure's `TIMESTAMP,ContextTokens,GeneratedTokens`, BurstGPT's CSV, Mooncake's JSON
    /// lines). Commas, tabs or semicolons. See docs/simulator.md.
    Simulate(Box<SimArgs>),
    /// Run the autoscaler: every tick, observe each fleet, decide, apply, and serve the state
    /// over HTTP (`/`, `/healthz`, `/metrics`, `/api/state`).
    ///
    /// With `provider = "sim"` in the policy, it drives the built-in simulated cloud with a
    /// built-in traffic scenario at accelerated time — the whole daemon on a laptop. SIGTERM or
    /// Ctrl-C stops it gracefully; SIGHUP re-reads the policy file (an invalid file keeps the
    /// running policy and logs every problem).
    Run(Box<RunArgs>),
    /// Right-size: rank instance types by cost for a demand, rejecting those whose TTFT floor
    /// (prefill of a P95 prompt) cannot meet the fleet's TTFT SLO, with ASG weights relative
    /// to the fleet's reference type.
    ///
    /// Give the demand directly (--rps, --prompt-tokens, --output-tokens) or measure it from
    /// a per-request trace (--trace: its busiest minute, mean lengths and P95 prompt).
    Plan(Box<PlanArgs>),
    /// Rolling-origin evaluation of next-hour demand forecasts on a `minute,requests` or
    /// `timestamp,value` history, or Prometheus's or CloudWatch's JSON answer (missing minutes
    /// are gaps): MAE of our forecaster (a
    /// self-weighting ensemble) against the seasonal-naive forecast (same minute one day
    /// earlier), the brief's rule and each candidate alone, and the coverage of its adaptive
    /// 90 % interval, per 7-day window.
    Backtest(Box<BacktestArgs>),
    /// Forecast the next hour of a `minute,requests` or `timestamp,value` history, or of
    /// Prometheus's or CloudWatch's JSON answer (missing minutes are gaps), or of a fleet's demand read from CloudWatch (--from-cloudwatch
    /// --config POLICY): the ensemble's point forecast and 90 % interval per minute (--json adds
    /// its weights).
    Forecast(Box<ForecastArgs>),
    /// A `[[profiles]]` table from your own measured vLLM throughput: reads the JSON files
    /// `vllm bench serve --save-result` writes (one server of the type, several
    /// --max-concurrency levels) and fits the decode step line and the prefill rate, which
    /// `token_work`, the "auto" targets and the simulator then use. See docs/tuning.md.
    Calibrate(Box<CalibrateArgs>),
    /// A policy from a Kubernetes HorizontalPodAutoscaler (autoscaling/v2, v2beta2, v1) or a
    /// KEDA ScaledObject YAML: every field mapped, every unmappable one listed as a comment
    /// (what it was, why, what was done instead); pools to fill in. Panic off, so it scales as
    /// the HPA did. See docs/interop.md.
    Import(ImportArgs),
    /// The nearest HPA (autoscaling/v2) or KEDA ScaledObject for a fleet of a policy, with
    /// what cannot be expressed listed as comments.
    Export(ExportArgs),
    /// What llm-autoscaler would read from one inference server's /metrics: each signal, the
    /// series it came from and its value; with --interval-secs, token rates and TTFT p50/p95
    /// between two scrapes; with --config, whether each per-instance metric of the policy is
    /// there.
    Probe(ProbeArgs),
    /// Replay a built-in scenario or a trace against a real OpenAI-compatible completions
    /// endpoint (vLLM, SGLang, TGI), open loop, streaming: TTFT per request and its
    /// p50/p95/p99, failures, and requests shed at --max-in-flight. Compare with what
    /// `simulate` predicts for the same traffic.
    Loadgen(Box<LoadgenArgs>),
}

/// Arguments of `loadgen`.
#[derive(clap::Args)]
struct LoadgenArgs {
    /// The endpoint: `…/v1/completions` or `…/v1/chat/completions`. Loopback by default: a
    /// server elsewhere is load-tested only when named here explicitly.
    #[arg(long, default_value = "http://127.0.0.1:8000/v1/completions")]
    target: String,
    /// The P95 TTFT objective the SLO block is judged against, seconds.
    #[arg(long, default_value_t = 2.0)]
    slo_ttft_secs: f64,
    /// Write the per-minute figures here (CSV: minute,requests,ok,failed,ttft_p95_s).
    #[arg(long)]
    minutes_csv: Option<PathBuf>,
    /// A built-in scenario.
    #[arg(long, conflicts_with = "trace", required_unless_present = "trace")]
    scenario: Option<String>,
    /// A trace: `t_s,prompt_tokens,output_tokens`, `minute,requests`, `timestamp,value`, Azure's
    /// `TIMESTAMP,ContextTokens,GeneratedTokens` (LLM or multimodal), BurstGPT's CSV, Mooncake's JSON lines, or
    /// Prometheus's (range query) or CloudWatch's (`get-metric-data`, `get-metric-statistics`)
    /// JSON answer as saved.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// For a per-minute trace: token counts drawn from this per-request trace.
    #[arg(long, requires = "trace")]
    tokens_from: Option<PathBuf>,
    /// Multiply the traffic rate (the shape stays).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Seed of every random draw (the same requests as `simulate --seed`).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Replay only this many seconds.
    #[arg(long)]
    duration_secs: Option<f64>,
    /// The served model's name.
    #[arg(long, default_value = "default")]
    model: String,
    /// Requests in flight at most; a request beyond is shed (counted, not sent).
    #[arg(long, default_value_t = 256)]
    max_in_flight: usize,
    /// Per-request timeout, seconds.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
    /// Refuse a run bringing more requests than this.
    #[arg(long, default_value_t = 100_000.0)]
    max_requests: f64,
    /// Write every request's outcome here (CSV).
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write an HTML report here (per-minute load, failures and P95 TTFT, the TTFT curve; with
    /// --compare-sim, the prediction beside each).
    #[arg(long)]
    html: Option<PathBuf>,
    /// Also run the simulator on the same arrivals (--servers replicas of --profile, no
    /// autoscaling) and print predicted beside measured: how well the profile fits the servers.
    #[arg(long, requires = "profile")]
    compare_sim: bool,
    /// The instance type whose performance profile the simulator uses (built in, or a
    /// [[profiles]] entry of --config).
    #[arg(long, requires = "compare_sim")]
    profile: Option<String>,
    /// The model class of the profile (8b, 70b).
    #[arg(long, default_value = "8b")]
    profile_model: String,
    /// Servers behind --target (replicas the simulator runs).
    #[arg(long, default_value_t = 1)]
    servers: u32,
    /// A policy file whose [[profiles]] override the built-in profiles.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The simulator's queue timeout: a request waiting longer for a replica is predicted to
    /// fail, seconds.
    #[arg(long, default_value_t = sim::QUEUE_TIMEOUT_SECS)]
    queue_timeout_secs: f64,
}

/// Arguments of `probe`.
#[derive(clap::Args)]
struct ProbeArgs {
    /// The server's metrics URL, e.g. http://10.0.1.7:8000/metrics.
    url: String,
    /// Scrape again this many seconds later, for rates and TTFT quantiles (0: once).
    #[arg(long, default_value_t = 10)]
    interval_secs: u64,
    /// Check this policy's per-instance metrics (its first fleet, or --fleet).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The fleet whose metrics to check.
    #[arg(long, requires = "config")]
    fleet: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `import`.
#[derive(clap::Args)]
struct ImportArgs {
    /// The HPA or ScaledObject YAML (`-` for standard input).
    file: PathBuf,
    /// Write the policy here instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

/// Arguments of `export`.
#[derive(clap::Args)]
struct ExportArgs {
    /// The TOML policy file. Default: $LLM_AUTOSCALER_CONFIG, else
    /// /etc/llm-autoscaler/policy.toml when it exists, else the example in a checkout.
    #[arg(long, short, default_value_os_t = default_policy("config/example.toml"))]
    config: PathBuf,
    /// The fleet (default: the first).
    #[arg(long)]
    fleet: Option<String>,
    /// `hpa` (autoscaling/v2) or `keda` (keda.sh/v1alpha1).
    #[arg(long, value_parser = ["hpa", "keda"])]
    format: String,
}

/// Arguments of `calibrate`.
#[derive(clap::Args)]
struct CalibrateArgs {
    /// The instance type the benchmark ran on.
    #[arg(long)]
    instance_type: String,
    /// Model class the table is for (8b, 70b, or your own name).
    #[arg(long, default_value = "8b")]
    model: String,
    /// A policy file whose `[[profiles]]` give the base figures (default: the built-in ones).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The server's `--max-num-seqs` (default: the base profile's).
    #[arg(long)]
    max_seqs: Option<u32>,
    /// The server's KV cache size, tokens, as vLLM logs it at start ("GPU KV cache size: N
    /// tokens"; default: the base profile's).
    #[arg(long)]
    kv_cache_tokens: Option<u64>,
    /// The benchmark result files (two or more concurrency levels).
    #[arg(required = true)]
    results: Vec<PathBuf>,
}

/// Arguments of `forecast`.
#[derive(clap::Args)]
struct ForecastArgs {
    /// The history: `minute,requests` or `timestamp,value` CSV, or Prometheus's or CloudWatch's
    /// JSON answer; the forecast starts at the minute after its last row.
    #[arg(
        long,
        required_unless_present = "from_cloudwatch",
        conflicts_with = "from_cloudwatch"
    )]
    history: Option<PathBuf>,
    /// Read the history from CloudWatch instead: the fleet's `[fleets.predictive]` source over
    /// its `history_days`, up to two minutes ago (AWS access as the daemon's: `[global.aws]`
    /// and the default credential chain).
    #[arg(long, requires = "config")]
    from_cloudwatch: bool,
    /// The policy file, with --from-cloudwatch.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The fleet, with --from-cloudwatch (default: the first with a predictive source).
    #[arg(long)]
    fleet: Option<String>,
    /// Minutes to forecast.
    #[arg(long, default_value_t = 60)]
    horizon_mins: usize,
    /// The demand one unit serves (requests a minute, as the history counts): the summary then
    /// says how many units the forecast peak and its 90 % upper bound need.
    #[arg(long)]
    demand_per_unit: Option<f64>,
    /// Write `{start_minute, point, lower, upper}` as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Arguments of `backtest`.
#[derive(clap::Args)]
struct BacktestArgs {
    /// The history: `minute,requests` or `timestamp,value` CSV, or Prometheus's or CloudWatch's
    /// JSON answer.
    #[arg(long)]
    history: PathBuf,
    /// Minutes between forecast origins.
    #[arg(long, default_value_t = 360)]
    step_mins: usize,
    /// Minutes forecast at each origin.
    #[arg(long, default_value_t = 60)]
    horizon_mins: usize,
    /// Threads fitting the candidates (the figures do not depend on it).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Arguments of `plan`.
#[derive(clap::Args)]
struct PlanArgs {
    /// The TOML policy file (its first fleet's reference type and TTFT SLO; `[[profiles]]`).
    #[arg(long, short, default_value_os_t = default_policy("config/example.toml"))]
    config: PathBuf,
    /// Peak requests per second.
    #[arg(long, required_unless_present = "trace")]
    rps: Option<f64>,
    /// Mean prompt length, tokens.
    #[arg(long, default_value_t = 500.0)]
    prompt_tokens: f64,
    /// Mean output length, tokens.
    #[arg(long, default_value_t = 150.0)]
    output_tokens: f64,
    /// P95 prompt length, tokens (default 2.6 × the mean, a log-normal with σ 0.6).
    #[arg(long)]
    p95_prompt_tokens: Option<f64>,
    /// Measure the demand from a per-request trace instead.
    #[arg(long, conflicts_with = "rps")]
    trace: Option<PathBuf>,
    /// Model class: 8b or 70b.
    #[arg(long, default_value = "8b")]
    model: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Arguments of `run`.
#[derive(clap::Args)]
struct RunArgs {
    /// The TOML policy file. Default: $LLM_AUTOSCALER_CONFIG, else
    /// /etc/llm-autoscaler/policy.toml when it exists, else the example in a checkout.
    #[arg(long, short, default_value_os_t = default_policy("config/demo.toml"))]
    config: PathBuf,
    /// Listen address of the HTTP endpoint (overrides `global.http_listen`).
    #[arg(long)]
    http: Option<std::net::SocketAddr>,
    /// Log what would be done and change nothing (also `global.dry_run`).
    #[arg(long)]
    dry_run: bool,
    /// Simulated cloud: virtual seconds per wall-clock second.
    #[arg(long, default_value_t = 60.0)]
    speed: f64,
    /// Simulated cloud: the traffic scenario, repeated.
    #[arg(long, default_value = "periodic")]
    scenario: String,
    /// Simulated cloud: seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Log JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
}

/// The `decide` input document.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideInput {
    now: Timestamp,
    #[serde(default)]
    fleet: Option<String>,
    snapshot: Snapshot,
    /// A stored state of any schema version (migrated on the way in).
    #[serde(default)]
    state: Option<serde_json::Value>,
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
        Command::Check { config, aws, json } => check(&config, aws, json),
        Command::Decide {
            config,
            snapshot,
            summary,
            describe,
        } => decide(&config, &snapshot, summary, describe),
        Command::Simulate(args) => simulate(*args),
        Command::Run(args) => run(*args),
        Command::Plan(args) => plan(*args),
        Command::Calibrate(args) => calibrate(*args),
        Command::Backtest(args) => backtest(*args),
        Command::Forecast(args) => forecast_cmd(*args),
        Command::Import(args) => import_cmd(args),
        Command::Export(args) => export_cmd(args),
        Command::Probe(args) => probe_cmd(args),
        Command::Loadgen(args) => loadgen_cmd(*args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A policy that cannot be used, printed as its own message (exit 2).
            let config_error =
                e.downcast_ref::<ConfigError>().or_else(|| match e
                    .downcast_ref::<llm_autoscaler::cost::PolicyError>()
                {
                    Some(llm_autoscaler::cost::PolicyError::Config(c)) => Some(c),
                    _ => None,
                });
            let policy = config_error
                .map(|c| match c {
                    ConfigError::Read { .. } => format!(
                        "{c}\n(name the policy with --config PATH or LLM_AUTOSCALER_CONFIG; the installed one is {INSTALLED_POLICY})"
                    ),
                    _ => c.to_string(),
                })
                .or_else(|| {
                    e.downcast_ref::<sim::perf::IncompleteProfile>()
                        .map(ToString::to_string)
                })
                .or_else(|| {
                    e.downcast_ref::<llm_autoscaler::cost::ProfileError>()
                        .map(ToString::to_string)
                })
                .or_else(|| {
                    e.downcast_ref::<llm_autoscaler::cost::PolicyError>()
                        .map(ToString::to_string)
                })
                .or_else(|| e.downcast_ref::<AccountMismatch>().map(ToString::to_string));
            if let Some(message) = policy {
                eprintln!("{message}");
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

fn import_cmd(a: ImportArgs) -> anyhow::Result<()> {
    use llm_autoscaler::interop;
    let (name, text) = if a.file.as_os_str() == "-" {
        let mut t = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)?;
        ("<stdin>".to_string(), t)
    } else {
        let t = std::fs::read_to_string(&a.file)
            .map_err(|e| InputError(format!("{}: cannot read: {e}", a.file.display())))?;
        (a.file.display().to_string(), t)
    };
    let draft = interop::import(&name, &text).map_err(|e| InputError(e.to_string()))?;
    let policy = interop::toml_out::policy_toml(&draft, &name);
    // What we write must be a valid policy: parse it before handing it over.
    config::parse_str("<imported>", &policy)?;
    match &a.output {
        Some(p) => {
            std::fs::write(p, &policy).with_context(|| format!("writing {}", p.display()))?;
            eprintln!(
                "wrote {} ({} metric(s), {} note(s)); next: fill in the pools, then llm-autoscaler check --config {}",
                p.display(),
                draft.metrics.len(),
                draft.notes.len(),
                p.display()
            );
        }
        None => out_part!("{policy}"),
    }
    Ok(())
}

fn export_cmd(a: ExportArgs) -> anyhow::Result<()> {
    use llm_autoscaler::interop::{export, Format};
    let cfg = load(&a.config)?;
    let fleet = match &a.fleet {
        Some(name) => cfg.fleets.iter().find(|f| &f.name == name).ok_or_else(|| {
            let names: Vec<&str> = cfg.fleets.iter().map(|f| f.name.as_str()).collect();
            InputError(format!(
                "--fleet {name}: no such fleet; the policy has {}",
                names.join(", ")
            ))
        })?,
        None => &cfg.fleets[0],
    };
    let format = if a.format == "keda" {
        Format::Keda
    } else {
        Format::Hpa
    };
    out_part!("{}", export(fleet, cfg.global.tick_secs, format));
    Ok(())
}

#[cfg(not(feature = "aws"))]
fn loadgen_cmd(_a: LoadgenArgs) -> anyhow::Result<()> {
    Err(InputError(format!("{NO_AWS}: loadgen sends HTTP with the same client")).into())
}

#[cfg(feature = "aws")]
fn loadgen_cmd(a: LoadgenArgs) -> anyhow::Result<()> {
    use llm_autoscaler::loadgen;
    let (name, source, duration, ..) = traffic_from(
        a.scenario.as_deref(),
        a.trace.as_deref(),
        a.tokens_from.as_deref(),
        a.seed,
        a.scale,
    )?;
    let traffic = Traffic {
        source,
        scale: a.scale,
        seed: a.seed,
        duration_secs: a.duration_secs.unwrap_or(duration).min(duration),
    };
    traffic
        .check_size(a.max_requests)
        .map_err(|e| InputError(format!("{e} (loadgen --max-requests)")))?;
    let spec = loadgen::LoadSpec {
        url: a.target.clone(),
        model: a.model.clone(),
        max_in_flight: a.max_in_flight,
        timeout: std::time::Duration::from_secs(a.timeout_secs.max(1)),
        ttft_slo_secs: a.slo_ttft_secs,
    };
    eprintln!(
        "replaying {name} ({:.0} s, ~{:.0} requests) against {} …",
        traffic.duration_secs,
        traffic.expected_requests(),
        a.target
    );
    // Resolve the profile before sending anything: a typo should not cost a load test.
    let profile = match (&a.profile, a.compare_sim) {
        (Some(t), true) => {
            let profiles = match &a.config {
                Some(path) => {
                    let cfg = load_with_profiles(path)?;
                    sim::perf::resolve(&cfg.profiles, cfg.global.aws.region.as_deref())?
                }
                None => sim::perf::builtin(),
            };
            let found = sim::perf::lookup(&profiles, t, &a.profile_model).cloned();
            Some(found.ok_or_else(|| {
                InputError(format!(
                    "--profile {t} --profile-model {}: no such profile; known: {}",
                    a.profile_model,
                    profiles
                        .iter()
                        .map(|p| format!("{} ({})", p.instance_type, p.model))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?)
        }
        _ => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // Arrivals keep their schedule, so the run's progress is the time elapsed.
    let mut bar = ProgressBar::new();
    let length = traffic.duration_secs.max(1.0);
    let mut report = runtime.block_on(loadgen::run(&traffic, spec, &mut |done, due| {
        let f = (bar.started.elapsed().as_secs_f64() / length).min(0.999);
        bar.show(f, &format!("of the replay · {due} sent · {done} answered"));
    }));
    bar.done();
    let q = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.3} s"));
    let mut summary = format!(
        "{name}: {} requests · {} ok · {} failed · {} shed at {} in flight\nTTFT p50 {} · p95 {} · p99 {} · inter-token p50 {}\nSLO: availability {:.4} · error rate {:.5} · violating minutes {:.4} · met {}",
        report.requests,
        report.ok,
        report.failed,
        report.shed,
        a.max_in_flight,
        q(report.ttft_p50_s),
        q(report.ttft_p95_s),
        q(report.ttft_p99_s),
        q(report.itl_p50_s),
        report.slo.availability,
        report.slo.error_rate,
        report.slo.ttft_violation_minutes,
        report.slo.met
    );
    if let Some(profile) = &profile {
        let predicted = sim::predict::fixed_fleet(
            // What the servers saw: shed requests never left the generator.
            report
                .outcomes
                .iter()
                .filter(|o| o.result != "shed")
                .map(|o| sim::traffic::Request {
                    arrival_secs: o.t_s,
                    prompt_tokens: o.prompt_tokens,
                    output_tokens: o.output_tokens,
                }),
            profile,
            a.servers.max(1),
            traffic.duration_secs,
            a.slo_ttft_secs,
            a.queue_timeout_secs,
        );
        summary = format!(
            "{summary}\n\n{}",
            loadgen::comparison(&report, &predicted, profile)
        );
        report.predicted = Some(predicted);
    }
    out!("{}", summary.trim_end());
    if let Some(p) = &a.html {
        let page = loadgen::html(
            &format!("llm-autoscaler loadgen · {name} → {}", a.target),
            &summary,
            &report,
            a.slo_ttft_secs,
        );
        std::fs::write(p, page).with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &a.minutes_csv {
        std::fs::write(p, loadgen::minutes_csv(&report))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &a.csv {
        std::fs::write(p, loadgen::csv(&report))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

#[cfg(not(feature = "aws"))]
fn probe_cmd(_a: ProbeArgs) -> anyhow::Result<()> {
    Err(InputError(format!(
        "{NO_AWS}: probe scrapes over HTTP with the same client"
    ))
    .into())
}

#[cfg(feature = "aws")]
fn probe_cmd(a: ProbeArgs) -> anyhow::Result<()> {
    use llm_autoscaler::probe;
    let metrics = match &a.config {
        Some(path) => {
            let cfg = load(path)?;
            let fleet = match &a.fleet {
                Some(name) => cfg
                    .fleets
                    .iter()
                    .find(|f| &f.name == name)
                    .cloned()
                    .ok_or_else(|| {
                        InputError(format!(
                            "--fleet {name}: no such fleet in {}",
                            path.display()
                        ))
                    })?,
                None => cfg.fleets[0].clone(),
            };
            fleet.metrics
        }
        None => Vec::new(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let scraper = llm_autoscaler::scrape::Scraper::new(std::time::Duration::from_secs(5));
    let first = runtime
        .block_on(scraper.scrape_url(&a.url))
        .map_err(|e| InputError(e.to_string()))?;
    let later = if a.interval_secs > 0 {
        eprintln!("scraped {}; again in {} s…", a.url, a.interval_secs);
        std::thread::sleep(std::time::Duration::from_secs(a.interval_secs));
        Some(
            runtime
                .block_on(scraper.scrape_url(&a.url))
                .map_err(|e| InputError(e.to_string()))?,
        )
    } else {
        None
    };
    let secs = a.interval_secs as f64;
    let report = probe::report(&first, later.as_ref().map(|l| (l, secs)), &metrics);
    if a.json {
        out!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        out_part!("{}", probe::render(&report, later.as_ref().map(|_| secs)));
    }
    Ok(())
}

/// What a run replays, from `--scenario` or `--trace` (with `--tokens-from`): its name, the
/// source, its length, the spot model, the epoch and the demand history before it.
type Chosen = (
    String,
    sim::traffic::Source,
    f64,
    SpotModel,
    Timestamp,
    Vec<Option<f64>>,
);

fn traffic_from(
    scenario_name: Option<&str>,
    trace: Option<&Path>,
    tokens_from: Option<&Path>,
    seed: u64,
    scale: f64,
) -> anyhow::Result<Chosen> {
    if !(scale > 0.0 && scale.is_finite()) {
        return Err(InputError(format!("--scale {scale} must be a number above 0")).into());
    }
    Ok(match (scenario_name, trace) {
        (Some(name), _) => {
            let s = scenario::builtin(name, seed).ok_or_else(|| {
                InputError(format!(
                    "unknown scenario \"{name}\"; valid: {}",
                    scenario::NAMES.join(", ")
                ))
            })?;
            let history = s.history.iter().map(|v| v.map(|r| r * scale)).collect();
            (
                s.name.to_string(),
                s.source,
                s.duration_secs,
                s.spot,
                s.epoch,
                history,
            )
        }
        (None, Some(path)) => {
            let trace = read_trace(path)?;
            let mix = match &tokens_from {
                None => TokenMix::Chat { doc_share: 0.0 },
                Some(p) => match read_trace(p)? {
                    Trace::PerRequest(reqs) => TokenMix::Empirical(std::sync::Arc::new(
                        reqs.iter().map(|r| (r.prompt_tokens, r.output_tokens)).collect(),
                    )),
                    Trace::PerMinute(_) => {
                        return Err(InputError(format!(
                            "{}: --tokens-from needs a per-request trace (t_s,prompt_tokens,output_tokens)",
                            p.display()
                        ))
                        .into())
                    }
                },
            };
            let duration = trace.duration_secs();
            let name = path
                .file_stem()
                .map_or("trace".into(), |s| s.to_string_lossy().to_string());
            let epoch = Timestamp::parse_rfc3339("2026-11-30T00:00:00Z")?;
            (
                name,
                trace.into_source(mix),
                duration,
                SpotModel::default(),
                epoch,
                Vec::new(),
            )
        }
        (None, None) => unreachable!("clap requires --scenario or --trace"),
    })
}

fn load(path: &Path) -> anyhow::Result<Config> {
    Ok(config::load(path)?)
}

/// A policy with what it takes from the replica profiles filled in: prices, capacity models,
/// `"auto"` targets.
fn load_with_profiles(path: &Path) -> anyhow::Result<Config> {
    Ok(llm_autoscaler::cost::load_policy(path)?)
}

/// `check --aws` found the policy and the account disagreeing (exit 2, like a policy error).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct AccountMismatch(String);

fn check(path: &Path, aws: bool, json: bool) -> anyhow::Result<()> {
    let cfg = load_with_profiles(path)?;
    if json {
        out!("{}", serde_json::to_string_pretty(&cfg)?);
    } else {
        check_summary(path, &cfg);
    }
    if aws {
        check_account(path, &cfg)?;
    }
    Ok(())
}

/// `check --aws`: each finding located at the policy value it concerns.
#[cfg(feature = "aws")]
fn check_account(path: &Path, cfg: &Config) -> anyhow::Result<()> {
    use llm_autoscaler::aws::doctor::{doctor, Severity};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let findings = runtime.block_on(async {
        let sdk = llm_autoscaler::aws::sdk_config(&cfg.global.aws, daemon::CALL_TIMEOUT).await;
        doctor(
            cfg,
            &sdk,
            llm_autoscaler::model::Timestamp::from_datetime(&chrono::Utc::now()),
        )
        .await
    });
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut errors = Vec::new();
    for f in &findings {
        // Where the finding's key is written: where the reader will fix it.
        let (line, column) = llm_autoscaler::config::locate(&text, &f.key).unwrap_or((1, 1));
        let located = format!(
            "{}:{line}:{column}: {}: {}; {}",
            path.display(),
            f.key,
            f.problem,
            f.remedy
        );
        match f.severity {
            Severity::Error => errors.push(located),
            Severity::Warning => eprintln!("warning: {located}"),
        }
    }
    if errors.is_empty() {
        out!(
            "{}: the account agrees with the policy ({} warning(s))",
            path.display(),
            findings.len()
        );
        Ok(())
    } else {
        Err(AccountMismatch(errors.join("\n")).into())
    }
}

#[cfg(not(feature = "aws"))]
fn check_account(_: &Path, _: &Config) -> anyhow::Result<()> {
    Err(InputError(NO_AWS.into()).into())
}

fn check_summary(path: &Path, cfg: &Config) {
    let g = &cfg.global;
    out!(
        "{}: ok — {}",
        path.display(),
        config::summary::global_summary(g)
    );
    for f in &cfg.fleets {
        out_part!("{}", config::summary::fleet_summary(f));
    }
    if let Some(w) = config::summary::exposure_warning(g) {
        eprintln!("warning: {}: {w}", path.display());
    }
    for w in config::summary::sample_warnings(cfg) {
        eprintln!("warning: {}: {w}", path.display());
    }
}

/// Where the installed policy lives (the systemd unit's `--config`).
const INSTALLED_POLICY: &str = "/etc/llm-autoscaler/policy.toml";

/// `--config` when none is given: `$LLM_AUTOSCALER_CONFIG`, else the installed policy when it
/// exists, else `in_checkout` (a path relative to a source checkout, for the examples).
fn default_policy(in_checkout: &str) -> PathBuf {
    if let Some(p) = std::env::var_os("LLM_AUTOSCALER_CONFIG").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if Path::new(INSTALLED_POLICY).exists() {
        return PathBuf::from(INSTALLED_POLICY);
    }
    PathBuf::from(in_checkout)
}

/// A progress bar on standard error (only on a terminal): `[#####   ]  45 % what · 12 s left`.
/// The time left is extrapolated from the time so far; 100 % is printed once, then a newline.
struct ProgressBar {
    tty: bool,
    started: std::time::Instant,
    finished: bool,
}

impl ProgressBar {
    fn new() -> Self {
        ProgressBar {
            tty: std::io::stderr().is_terminal(),
            started: std::time::Instant::now(),
            finished: false,
        }
    }

    /// Shows `fraction` (0–1) done, described by `what`.
    fn show(&mut self, fraction: f64, what: &str) {
        if !self.tty || self.finished {
            return;
        }
        let f = fraction.clamp(0.0, 1.0);
        let n = (f * 30.0) as usize;
        let elapsed = self.started.elapsed().as_secs_f64();
        let left = if f >= 1.0 {
            String::new()
        } else if f > 0.01 && elapsed > 1.0 {
            format!(" · {:.0} s left", elapsed * (1.0 - f) / f)
        } else {
            " · …".into()
        };
        eprint!(
            "\r\x1b[2K[{}{}] {:>3.0} % {what}{left}",
            "#".repeat(n),
            " ".repeat(30 - n),
            f * 100.0
        );
        if f >= 1.0 {
            eprintln!();
            self.finished = true;
        }
    }

    /// Ends the bar's line if it was left unfinished.
    fn done(&mut self) {
        if self.tty && !self.finished {
            eprintln!();
            self.finished = true;
        }
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

fn decide(
    config_path: &Path,
    snapshot_path: &Path,
    summary: bool,
    describe: bool,
) -> anyhow::Result<()> {
    let cfg = load_with_profiles(config_path)?;
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
    let problems = engine::input::snapshot_problems(fleet, &input.snapshot);
    if !problems.is_empty() {
        return Err(InputError(format!(
            "{}: the snapshot does not match the policy {}:\n  {}",
            snapshot_path.display(),
            config_path.display(),
            problems.join("\n  ")
        ))
        .into());
    }
    let state = match &input.state {
        None => EngineState::default(),
        Some(v) => EngineState::from_json(&v.to_string()).map_err(|e| {
            InputError(format!(
                "{}: state: {e} (see docs/snapshot.md)",
                snapshot_path.display()
            ))
        })?,
    };
    let (decision, state) = engine::decide(fleet, &input.snapshot, &state, input.now);
    if summary {
        out!("{}", decision.summary);
    } else if describe {
        out_part!("{}", engine::describe::describe(&decision));
    } else {
        let out = DecideOutput {
            decision: &decision,
            state: &state,
        };
        out!("{}", serde_json::to_string_pretty(&out)?);
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

/// Arguments of `simulate`.
#[derive(clap::Args)]
struct SimArgs {
    /// The TOML policy file; its first fleet is simulated.
    #[arg(long, short, default_value_os_t = default_policy("config/example.toml"))]
    config: PathBuf,
    /// A built-in scenario.
    #[arg(long, conflicts_with_all = ["trace", "suite"], required_unless_present_any = ["trace", "suite"])]
    scenario: Option<String>,
    /// A trace file to replay instead of a scenario.
    #[arg(long, conflicts_with = "suite")]
    trace: Option<PathBuf>,
    /// A matrix of cells instead of one run: `robustness` — traffic shapes × token mixes ×
    /// cold starts × seeds, each against the oracle, the reactive oracle and static-peak
    /// (docs/simulator.md).
    #[arg(long, value_parser = ["robustness"])]
    suite: Option<String>,
    /// With --suite: the shared traces (World Cup 98 per minute, Mooncake and Azure code
    /// lengths).
    #[arg(long, default_value = "../shared/traces", requires = "suite")]
    traces: PathBuf,
    /// With --suite: seeds, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,2,3",
        requires = "suite"
    )]
    seeds: Vec<u64>,
    /// With --suite: median cold starts, seconds, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "60,150,300,600",
        requires = "suite"
    )]
    cold_starts: Vec<f64>,
    /// With --suite: only the cells whose name (`shape/mix/coldN/seedN`) contains this; with
    /// exactly one cell, --csv and --decisions write that cell's minutes and decisions.
    #[arg(long, requires = "suite")]
    cells: Option<String>,
    /// With --suite: also run each cell after 14 days in which its shape recurred daily, and
    /// report what the policy's forecast ([fleets.predictive]) bought (about twice the time).
    #[arg(long, requires = "suite")]
    forecast_effect: bool,
    /// For a per-minute trace: draw token counts from this per-request trace instead of
    /// the built-in chat mix.
    #[arg(long, requires = "trace")]
    tokens_from: Option<PathBuf>,
    /// Multiply the traffic rate by this factor (the shape stays).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// The simulated servers' speed as a share of their profile's: prefill tokens/s × it,
    /// decode step times ÷ it (0.7: the profile overstates them by 43 %). The policy's capacity
    /// model reads the profile as written; the oracle and `required_units` know the servers.
    #[arg(long, default_value_t = 1.0)]
    server_speed: f64,
    /// Refuse a run whose traffic brings more requests than this (a guard against a typo
    /// that would run for hours).
    #[arg(long, default_value_t = traffic::DEFAULT_MAX_REQUESTS)]
    max_requests: f64,
    /// Seed of every random draw; the same seed gives the same report, byte for byte.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Length of the run, seconds (default: the scenario's or the trace's).
    #[arg(long)]
    duration_secs: Option<f64>,
    /// Model class served (overrides the fleet's `model`): 8b, or 70b on g5.12xlarge /
    /// p4d.24xlarge.
    #[arg(long)]
    model: Option<String>,
    /// Requests waiting longer than this fail, seconds.
    #[arg(long, default_value_t = sim::QUEUE_TIMEOUT_SECS)]
    queue_timeout_secs: f64,
    /// Skip the baselines and the oracle (only the policy runs).
    #[arg(long)]
    no_baselines: bool,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the per-minute CSV here.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Write the HTML report here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Write every decision of the policy, with its explanation, here (JSON lines).
    #[arg(long)]
    decisions: Option<PathBuf>,
}

fn read_trace(path: &Path) -> anyhow::Result<Trace> {
    let text = read_input(path)?;
    Ok(traffic::parse_trace(&path.display().to_string(), &text)
        .map_err(|e| InputError(e.to_string()))?)
}

fn simulate(a: SimArgs) -> anyhow::Result<()> {
    let mut cfg = load(&a.config)?;
    let price_profiles = sim::perf::resolve(&cfg.profiles, cfg.global.aws.region.as_deref())?;
    if let Some(m) = &a.model {
        for f in &mut cfg.fleets {
            f.model = m.clone();
        }
    }
    llm_autoscaler::cost::apply_profiles(&mut cfg, &price_profiles)?;
    if !(a.server_speed > 0.0 && a.server_speed.is_finite()) {
        return Err(InputError(format!(
            "--server-speed {} must be a number above 0 (the servers' speed as a share of their profile's: 1 exact, 0.7 slower)",
            a.server_speed
        ))
        .into());
    }
    if a.suite.is_some() {
        return robustness(&a, &cfg, &price_profiles);
    }
    let (name, source, duration, spot, epoch, history) = traffic_from(
        a.scenario.as_deref(),
        a.trace.as_deref(),
        a.tokens_from.as_deref(),
        a.seed,
        a.scale,
    )?;
    let duration_secs = a.duration_secs.unwrap_or(duration).min(duration);
    if duration_secs < 60.0 {
        return Err(InputError(format!(
            "the run lasts {duration_secs} s; at least 60 s are needed"
        ))
        .into());
    }
    let fleet = cfg.fleets[0].clone();
    let traffic = Traffic {
        source,
        scale: a.scale,
        seed: a.seed,
        duration_secs,
    };
    traffic
        .check_size(a.max_requests)
        .map_err(|e| InputError(e.to_string()))?;
    let setup = SimSetup {
        scenario: name,
        traffic,
        spot,
        epoch,
        policy_name: format!("{}#{}", a.config.display(), fleet.name),
        model: fleet.model.clone(),
        fleet,
        profiles: sim::perf::resolve(&cfg.profiles, cfg.global.aws.region.as_deref())?,
        server_speed: a.server_speed,
        tick_secs: cfg.global.tick_secs as f64,
        queue_timeout_secs: a.queue_timeout_secs,
        target_utilization: 0.8,
        baselines: !a.no_baselines,
        only_baselines: None,
        record_decisions: a.decisions.is_some(),
        history,
    };
    let runs = if setup.baselines {
        let spot = setup
            .fleet
            .pools
            .iter()
            .any(|p| p.market == llm_autoscaler::model::Market::Spot);
        6.0 + f64::from(u8::from(setup.fleet.predictive.is_some())) + f64::from(u8::from(spot))
    } else {
        1.0
    };
    let mut bar = ProgressBar::new();
    let what = if runs > 1.0 {
        format!("of the policy's run (then {} baselines)", runs as u32 - 1)
    } else {
        "of the policy's run".into()
    };
    let outcome = sim::simulate(setup, &mut |f| bar.show(f, &what))?;
    bar.done();
    // A closed stdout (`| head`) is not an error: the files below still get written.
    let mut out = std::io::stdout();
    let _ = write!(out, "{}", outcome.table());
    let mut write = |p: &Option<PathBuf>, text: String| -> anyhow::Result<()> {
        if let Some(p) = p {
            std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?;
            let _ = writeln!(out, "wrote {}", p.display());
        }
        Ok(())
    };
    write(
        &a.json,
        serde_json::to_string_pretty(&outcome.report())? + "\n",
    )?;
    write(&a.csv, outcome.csv())?;
    write(&a.html, outcome.html())?;
    write(
        &a.decisions,
        outcome.decisions.iter().map(|l| format!("{l}\n")).collect(),
    )?;
    Ok(())
}

/// `simulate --suite robustness`.
fn robustness(a: &SimArgs, cfg: &Config, profiles: &[sim::perf::Profile]) -> anyhow::Result<()> {
    use sim::suite;
    let traces = suite_traces(&a.traces)?;
    let fleet = &cfg.fleets[0];
    let mut spec = suite::SuiteSpec::robustness(fleet);
    spec.seeds = a.seeds.clone();
    spec.cold_starts_secs = a.cold_starts.clone();
    spec.duration_secs = a.duration_secs;
    spec.forecast_effect = a.forecast_effect;
    spec.server_speed = a.server_speed;
    if a.forecast_effect && fleet.predictive.is_none() {
        return Err(InputError(format!(
            "--forecast-effect: fleet {} has no [fleets.predictive]: there is no forecast to measure",
            fleet.name
        ))
        .into());
    }
    let cells: Vec<suite::Cell> = spec
        .cells()
        .into_iter()
        .filter(|c| {
            a.cells
                .as_ref()
                .is_none_or(|f| suite::cell_name(c).contains(f.as_str()))
        })
        .collect();
    if cells.is_empty() {
        return Err(InputError(format!(
            "--cells {}: no cell of the matrix matches (names look like step-x10/chat/cold150/seed1)",
            a.cells.as_deref().unwrap_or_default()
        ))
        .into());
    }
    if let ([cell], true) = (cells.as_slice(), a.csv.is_some() || a.decisions.is_some()) {
        let mut setup = suite::cell_setup(fleet, profiles, &fleet.model, &traces, &spec, cell)?;
        setup.record_decisions = a.decisions.is_some();
        let outcome = sim::simulate(setup, &mut |_| {})?;
        if let Some(p) = &a.csv {
            std::fs::write(p, outcome.csv()).with_context(|| format!("writing {}", p.display()))?;
        }
        if let Some(p) = &a.decisions {
            let lines: String = outcome.decisions.iter().map(|l| format!("{l}\n")).collect();
            std::fs::write(p, lines).with_context(|| format!("writing {}", p.display()))?;
        }
    }
    let started = std::time::Instant::now();
    // On a terminal the bar (with time left); in a log, a line per cell.
    let mut bar = ProgressBar::new();
    let mut results = Vec::with_capacity(cells.len());
    for (i, cell) in cells.iter().enumerate() {
        let r = suite::run_cell(fleet, profiles, &fleet.model, &traces, &spec, cell)?;
        let line = format!(
            "[{}/{}] {} {} · {:.0} s elapsed",
            i + 1,
            cells.len(),
            suite::cell_name(cell),
            if r.held {
                "held"
            } else if r.oracle_held {
                "MISSED"
            } else {
                "not held (nor by the oracle)"
            },
            started.elapsed().as_secs_f64()
        );
        if bar.tty {
            bar.show((i + 1) as f64 / cells.len() as f64, &line);
        } else {
            eprintln!("{line}");
        }
        results.push(r);
    }
    bar.done();
    let summary = suite::summarize(&results);
    let mut out = std::io::stdout();
    let _ = write!(out, "{}", suite::table(&results, &summary));
    let policy = format!("{}#{}", a.config.display(), fleet.name);
    if let Some(p) = &a.json {
        let v = serde_json::json!({
            "policy": policy,
            "server_speed": a.server_speed,
            "summary": summary,
            "cells": results,
        });
        std::fs::write(p, serde_json::to_string_pretty(&v)? + "\n")
            .with_context(|| format!("writing {}", p.display()))?;
        let _ = writeln!(out, "wrote {}", p.display());
    }
    if let Some(p) = &a.html {
        std::fs::write(p, suite::html(&results, &summary, &policy))
            .with_context(|| format!("writing {}", p.display()))?;
        let _ = writeln!(out, "wrote {}", p.display());
    }
    Ok(())
}

/// The traces the robustness matrix reads, from `dir`.
fn suite_traces(dir: &Path) -> anyhow::Result<sim::suite::SuiteTraces> {
    let pairs = |name: &str| -> anyhow::Result<std::sync::Arc<Vec<(u32, u32)>>> {
        match read_trace(&dir.join(name))? {
            Trace::PerRequest(r) => Ok(std::sync::Arc::new(
                r.iter()
                    .map(|r| (r.prompt_tokens, r.output_tokens))
                    .collect(),
            )),
            Trace::PerMinute(_) => Err(InputError(format!(
                "{}: expected a per-request trace",
                dir.join(name).display()
            ))
            .into()),
        }
    };
    let web = match read_trace(&dir.join("worldcup98_per_minute.csv"))? {
        Trace::PerMinute(m) => m,
        Trace::PerRequest(_) => {
            return Err(InputError(format!(
                "{}: expected a per-minute trace",
                dir.join("worldcup98_per_minute.csv").display()
            ))
            .into())
        }
    };
    Ok(sim::suite::SuiteTraces {
        web_per_minute: web,
        long_context: pairs("mooncake_conversation.csv")?,
        code: pairs("azure_llm_2023_code.csv")?,
    })
}

fn run(a: RunArgs) -> anyhow::Result<()> {
    let cfg = load(&a.config)?;
    llm_autoscaler::telemetry::init_tracing(a.log_json);
    if !(a.speed > 0.0 && a.speed.is_finite()) {
        return Err(InputError(format!("--speed {} must be a number above 0", a.speed)).into());
    }
    let tick_secs = cfg.global.tick_secs as f64;
    let addr = a.http.unwrap_or(
        cfg.global
            .http_listen
            .parse()
            .context("global.http_listen")?,
    );
    let store = StateStore::open(&cfg.global.state_dir)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match cfg.global.provider {
        ProviderKind::Sim => {
            let s = scenario::builtin(&a.scenario, a.seed).ok_or_else(|| {
                InputError(format!(
                    "unknown scenario \"{}\"; valid: {}",
                    a.scenario,
                    scenario::NAMES.join(", ")
                ))
            })?;
            let traffic = Traffic {
                source: s.source,
                scale: 1.0,
                seed: a.seed,
                duration_secs: s.duration_secs,
            };
            let profiles = sim::perf::resolve(&cfg.profiles, cfg.global.aws.region.as_deref())?;
            let provider =
                SimProvider::new(traffic, s.spot, profiles.clone(), "8b", s.epoch, tick_secs)
                    .with_history(s.history);
            let opts = daemon::Options {
                config_path: a.config.clone(),
                interval: std::time::Duration::from_secs_f64(tick_secs / a.speed),
                clock: daemon::Clock::Virtual {
                    epoch: s.epoch,
                    tick_secs,
                },
                call_timeout: daemon::CALL_TIMEOUT,
                dry_run: a.dry_run,
                price_profiles: profiles,
            };
            tracing::info!(
                scenario = s.name,
                speed = a.speed,
                "provider: built-in simulated cloud"
            );
            runtime.block_on(serve_daemon(cfg, provider, store, opts, addr))
        }
        ProviderKind::Aws => run_aws(cfg, &a, store, addr, runtime),
    }
}

/// `run` with `provider = "aws"`.
#[cfg(feature = "aws")]
fn run_aws(
    cfg: Config,
    a: &RunArgs,
    store: StateStore,
    addr: std::net::SocketAddr,
    runtime: tokio::runtime::Runtime,
) -> anyhow::Result<()> {
    let call_timeout = daemon::CALL_TIMEOUT;
    let opts = daemon::Options {
        config_path: a.config.clone(),
        interval: std::time::Duration::from_secs(cfg.global.tick_secs),
        clock: daemon::Clock::Wall,
        call_timeout,
        dry_run: a.dry_run,
        price_profiles: sim::perf::resolve(&cfg.profiles, cfg.global.aws.region.as_deref())?,
    };
    runtime.block_on(async {
        let sdk = llm_autoscaler::aws::sdk_config(&cfg.global.aws, call_timeout).await;
        tracing::info!(
            region = sdk.region().map(|r| r.to_string()).unwrap_or_default(),
            endpoint = cfg.global.aws.endpoint_url.as_deref().unwrap_or("AWS"),
            events_queue = cfg.global.aws.events_queue_url.as_deref().unwrap_or("none"),
            "provider: AWS"
        );
        let provider = llm_autoscaler::aws::AwsProvider::new(
            &sdk,
            cfg.global.aws.clone(),
            cfg.global.scrape.clone(),
        );
        serve_daemon(cfg, provider, store, opts, addr).await
    })
}

/// `run` with `provider = "aws"` in a build without the AWS provider.
#[cfg(not(feature = "aws"))]
fn run_aws(
    _: Config,
    _: &RunArgs,
    _: StateStore,
    _: std::net::SocketAddr,
    _: tokio::runtime::Runtime,
) -> anyhow::Result<()> {
    Err(InputError(NO_AWS.into()).into())
}

/// What a build without the `aws` feature says when AWS is asked of it.
#[cfg(not(feature = "aws"))]
const NO_AWS: &str = "this build has no AWS provider (built without the `aws` feature, as scripts/demo.sh does): build with `cargo build --release` (the feature is on by default)";

async fn serve_daemon<P: llm_autoscaler::provider::Provider>(
    cfg: Config,
    provider: P,
    store: StateStore,
    opts: daemon::Options,
    addr: std::net::SocketAddr,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, rx) = tokio::sync::watch::channel(std::sync::Arc::new(daemon::Published::default()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(4);
    let mut d = daemon::Daemon::new(cfg, provider, store, opts, tx)?;
    let (bound, server) =
        llm_autoscaler::http::serve_on_own_thread(addr, rx.clone(), stop_rx.clone())
            .with_context(|| format!("binding the HTTP endpoint on {addr}"))?;
    tracing::info!(http = %bound, "serving /, /healthz, /metrics, /api/state");
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let signals = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => { let _ = reload_tx.send(()).await; }
            }
        }
        let _ = stop_tx.send(true);
    });
    // systemd: ready once serving; the watchdog is fed only while the loop makes progress.
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    if let Some(every) = sd_notify::watchdog_enabled() {
        let rx = rx.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut t = tokio::time::interval(every / 2);
            loop {
                tokio::select! {
                    _ = t.tick() => if llm_autoscaler::http::healthy(&rx.borrow()) || rx.borrow().ticks == 0 {
                        let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
                    },
                    _ = stop.changed() => break,
                }
            }
        });
    }
    d.run(stop_rx, reload_rx).await;
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    signals.abort();
    // The HTTP thread ends within its shutdown grace, whatever its clients do.
    tokio::task::spawn_blocking(move || server.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the HTTP thread panicked"))??;
    Ok(())
}

fn calibrate(a: CalibrateArgs) -> anyhow::Result<()> {
    use llm_autoscaler::cost::calibrate::{calibrate, parse_run, render};
    let profiles = match &a.config {
        Some(path) => {
            let cfg = load(path)?;
            sim::perf::resolve(&cfg.profiles, cfg.global.aws.region.as_deref())?
        }
        None => sim::perf::builtin(),
    };
    let base = sim::perf::lookup(&profiles, &a.instance_type, &a.model).ok_or_else(|| {
        InputError(format!(
            "no profile for {} serving {}: give a [[profiles]] table for it in --config (instance_type, model and its max_seqs, kv_cache_tokens, prices)",
            a.instance_type, a.model
        ))
    })?;
    let mut runs = Vec::new();
    for path in &a.results {
        let text = std::fs::read_to_string(path)
            .map_err(|e| InputError(format!("{}: cannot read: {e}", path.display())))?;
        runs.push(
            parse_run(&path.display().to_string(), &text).map_err(|e| InputError(e.to_string()))?,
        );
    }
    let c = calibrate(base, &runs, a.max_seqs, a.kv_cache_tokens)
        .map_err(|e| InputError(e.to_string()))?;
    out_part!("{}", render(&c, base));
    Ok(())
}

fn plan(a: PlanArgs) -> anyhow::Result<()> {
    use llm_autoscaler::cost::rightsize::{rank, Demand};
    let cfg = load(&a.config)?;
    let fleet = &cfg.fleets[0];
    let demand = match &a.trace {
        None => Demand {
            requests_per_sec: a.rps.unwrap_or(0.0),
            mean_prompt_tokens: a.prompt_tokens,
            mean_output_tokens: a.output_tokens,
            p95_prompt_tokens: a.p95_prompt_tokens.unwrap_or(a.prompt_tokens * 2.6),
        },
        Some(path) => match read_trace(path)? {
            Trace::PerRequest(reqs) => Demand::from_requests(&reqs),
            Trace::PerMinute(_) => {
                return Err(InputError(format!("{}: plan needs a per-request trace (t_s,prompt_tokens,output_tokens) for token lengths", path.display())).into())
            }
        },
    };
    if !(demand.requests_per_sec > 0.0
        && demand.mean_prompt_tokens > 0.0
        && demand.mean_output_tokens > 0.0)
    {
        return Err(InputError(
            "the demand needs positive --rps, --prompt-tokens and --output-tokens".into(),
        )
        .into());
    }
    let profiles = sim::perf::resolve(&cfg.profiles, cfg.global.aws.region.as_deref())?;
    let reference = sim::reference(fleet, &profiles, &a.model)?.profile;
    let ranked = rank(
        &profiles,
        &a.model,
        &reference.instance_type,
        demand,
        0.8,
        fleet.slo.ttft_p95_secs,
    );
    if a.json {
        out!("{}", serde_json::to_string_pretty(&ranked)?);
        return Ok(());
    }
    out_part!(
        "{}",
        llm_autoscaler::cost::rightsize::report(
            &demand,
            &a.model,
            fleet.slo.ttft_p95_secs,
            &reference.instance_type,
            &ranked
        )
    );
    Ok(())
}

fn backtest(a: BacktestArgs) -> anyhow::Result<()> {
    use llm_autoscaler::forecast::{self, Backtest};
    let series = match read_trace(&a.history)? {
        Trace::PerMinute(m) => m,
        Trace::PerRequest(_) => {
            return Err(InputError(format!(
                "{}: backtest needs a per-minute history (minute,requests, timestamp,value or a JSON answer)",
                a.history.display()
            ))
            .into())
        }
    };
    if a.step_mins == 0 || a.horizon_mins == 0 || a.horizon_mins > 1440 {
        return Err(InputError(
            "--step-mins must be above 0 and --horizon-mins from 1 to 1440".into(),
        )
        .into());
    }
    let cfg = Backtest {
        horizon: a.horizon_mins,
        step: a.step_mins,
        jobs: a.jobs.max(1),
        ..Backtest::default()
    };
    let started = std::time::Instant::now();
    let mut bar = ProgressBar::new();
    let report = forecast::backtest(&series, cfg, &mut |f| bar.show(f, "of origins"));
    bar.done();
    let gaps = series.iter().filter(|v| v.is_none()).count();
    out!(
        "{}: {} minutes ({} gaps), {} origins every {} min, {} points, {:.1} s",
        a.history.display(),
        series.len(),
        gaps,
        report.origins,
        a.step_mins,
        report.points,
        started.elapsed().as_secs_f64()
    );
    let (lo, hi) = report.coverage_window_range;
    // Windows with too few scored points for a coverage of their own are left out of the
    // range; a short or coarse backtest may have none.
    let per_window = if lo.is_finite() && hi.is_finite() {
        format!("per {}-day window {lo:.3}–{hi:.3}", cfg.window_days)
    } else {
        format!(
            "no {}-day window with {} points scored",
            cfg.window_days,
            llm_autoscaler::forecast::backtest::MIN_WINDOW_POINTS
        )
    };
    // A ratio without a finite value: a candidate that never answered (the week-ago forecast
    // under a week of history), or no point scored, or a series the naive forecast matched
    // exactly (a constant one: MAE 0 over 0).
    let mase = |x: f64| {
        if x.is_finite() {
            format!("{x:.3}")
        } else {
            "n/a".to_string()
        }
    };
    out!(
        "MAE ours {:.2} · seasonal-naive {:.2} · brief rule {:.2}\nMASE vs seasonal-naive {} (brief rule {}) · 90 % interval coverage {:.3} ({per_window}) · mean width {:.1}",
        report.mae,
        report.mae_seasonal_naive,
        report.mae_brief_rule,
        mase(report.mase_vs_seasonal_naive),
        mase(report.brief_rule_vs_seasonal_naive),
        report.coverage_90,
        report.mean_interval_width
    );
    let alone: Vec<String> = report
        .members
        .iter()
        .map(|m| format!("{} {}", m.model, mase(m.mase_vs_seasonal_naive)))
        .collect();
    out!("each candidate alone (MASE): {}", alone.join(" · "));
    let last: Vec<String> = report
        .weights
        .iter()
        .map(|w| format!("{} {:.2}/{:.2}", w.model, w.by_bucket[0], w.by_bucket[3]))
        .collect();
    out!(
        "weights at the end (first 5 min / 30+ min ahead): {}",
        last.join(" · ")
    );
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", p.display()))?;
        out!("wrote {}", p.display());
    }
    Ok(())
}

/// A fleet's per-minute demand from CloudWatch (its predictive source), gaps as `None`, and the
/// time of the minute after the last.
#[cfg(not(feature = "aws"))]
fn cloudwatch_history(
    _config: &Path,
    _fleet: Option<&str>,
) -> anyhow::Result<(Vec<Option<f64>>, Timestamp)> {
    Err(InputError(format!(
        "{NO_AWS}; or give the history as a file (--history)"
    ))
    .into())
}

/// A fleet's per-minute demand from CloudWatch (its predictive source), gaps as `None`, and the
/// time of the minute after the last.
#[cfg(feature = "aws")]
fn cloudwatch_history(
    config: &Path,
    fleet: Option<&str>,
) -> anyhow::Result<(Vec<Option<f64>>, Timestamp)> {
    let cfg = load(config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let now = Timestamp::from_datetime(&chrono::Utc::now());
    let h = runtime
        .block_on(llm_autoscaler::aws::cloudwatch::fleet_history(
            &cfg, fleet, now,
        ))
        .map_err(|e| match e {
            llm_autoscaler::aws::cloudwatch::HistoryError::NoSource(why) => {
                anyhow::Error::from(InputError(format!("{}: {why}", config.display())))
            }
            other => other.into(),
        })?;
    eprintln!(
        "fleet {}: {} minutes from CloudWatch, {} with data",
        h.fleet,
        h.series.len(),
        h.series.iter().flatten().count()
    );
    Ok((h.series, h.next_minute_at))
}

/// What the forecast says, in a line or two: its peak and when, the 90 % upper bound there,
/// against the last hour's; with the demand a unit serves, the units each needs.
fn forecast_summary(
    history: &[Option<f64>],
    point: &[f64],
    upper: &[f64],
    demand_per_unit: Option<f64>,
) -> String {
    let Some((at, peak)) = point
        .iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
    else {
        return "no forecast".into();
    };
    let last_hour = history
        .iter()
        .rev()
        .take(60)
        .flatten()
        .copied()
        .fold(f64::NAN, f64::max);
    let mut s = format!(
        "next {} min: peak {peak:.1} at +{} min (90 % upper bound {:.1}); the last hour's peak {}",
        point.len(),
        at + 1,
        upper[at],
        if last_hour.is_nan() {
            "unknown (no data)".to_string()
        } else {
            format!("{last_hour:.1}")
        }
    );
    if let Some(d) = demand_per_unit.filter(|d| *d > 0.0) {
        let top = upper.iter().copied().fold(0.0, f64::max);
        s.push_str(&format!(
            "\nunits at {d} a unit: {} for the peak, {} for the 90 % upper bound",
            (peak / d).ceil(),
            (top / d).ceil()
        ));
    }
    s
}

fn forecast_cmd(a: ForecastArgs) -> anyhow::Result<()> {
    use llm_autoscaler::forecast::ensemble::forecast_once;
    let (series, start_at, what) = match &a.history {
        Some(path) => match read_trace(path)? {
            Trace::PerMinute(m) => (m, None, path.display().to_string()),
            Trace::PerRequest(_) => {
                return Err(InputError(format!(
                    "{}: forecast needs a per-minute history (minute,requests, timestamp,value or a JSON answer)",
                    path.display()
                ))
                .into())
            }
        },
        None => {
            let config = a
                .config
                .as_deref()
                .expect("clap: --from-cloudwatch requires --config");
            let (series, at) = cloudwatch_history(config, a.fleet.as_deref())?;
            (series, Some(at), "CloudWatch".to_string())
        }
    };
    if a.horizon_mins == 0 || a.horizon_mins > 1440 {
        return Err(InputError("--horizon-mins must be from 1 to 1440".into()).into());
    }
    let (f, weights) = forecast_once(&series, a.horizon_mins, 0.9)
        .map_err(|e| InputError(format!("{what}: {e}")))?;
    let start = series.len();
    eprintln!(
        "{}",
        forecast_summary(&series, &f.point, &f.upper, a.demand_per_unit)
    );
    out!("minute,point,lower_90,upper_90");
    for h in 0..a.horizon_mins {
        out!(
            "{},{:.2},{:.2},{:.2}",
            start + h,
            f.point[h],
            f.lower[h],
            f.upper[h]
        );
    }
    if let Some(p) = &a.json {
        let v = serde_json::json!({ "start_minute": start, "start_at": start_at, "point": f.point, "lower": f.lower, "upper": f.upper, "level": 0.9, "weights": weights, "weight_buckets_end_minute": llm_autoscaler::forecast::ensemble::BUCKET_ENDS.map(|e| (e != usize::MAX).then_some(e)) });
        std::fs::write(p, serde_json::to_string_pretty(&v)? + "\n")
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}
