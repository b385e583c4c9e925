//! llm-autoscaler: an SLO-driven autoscaler for LLM inference fleets on AWS GPU Auto Scaling
//! Groups.
//!
//! # Layout
//!
//! The *core* is pure: std, serde, thiserror, chrono and tracing macros only — never tokio,
//! an AWS SDK or an HTTP crate (a test in `tests/architecture.rs` enforces it). Time is passed
//! in; nothing in the core reads a clock or does I/O, so the daemon and the simulator run the
//! same code and a simulated result is a statement about the real daemon.
//!
//! - [`model`]: shared vocabulary — [`model::Timestamp`], capacity [`model::Units`], the
//!   observed [`model::Snapshot`] of a fleet.
//! - [`config`]: the TOML policy file → validated [`config::Config`]; every problem reported
//!   with file, line, column and key path.
//! - [`policy`]: one module per rule family — [`policy::hpa`] (HPA's replica calculation per
//!   metric), [`policy::behavior`] (stabilization windows and rate policies),
//!   [`policy::panic`] (Knative-style burst mode), [`policy::schedule`] (cron windows),
//!   [`policy::predictive`] (the forecast floor), [`policy::budget`] (spend and caps),
//!   [`policy::capacity`] (the work model behind `token_work` and `"auto"` targets),
//!   [`policy::ramp`] (ramp-ahead), [`policy::flaps`] (flap counting).
//! - [`engine`]: [`engine::decide`] — the ladder of named stages, each with a typed
//!   [`engine::Condition`]; [`engine::EngineState`] is what must survive a restart (a versioned,
//!   stored schema).
//! - [`placement`]: the fleet's units → a target per pool — the spot/on-demand split, the spot
//!   fallback's cover (failed launches, each warned instance, bursts), headroom, each group's
//!   own bounds — with one state, [`placement::MarketState`].
//! - [`controller`]: [`controller::FleetController`] — one iteration of a fleet: `plan`
//!   (decide, place, guard, order the pool changes, warm pools) and `commit` (what happened →
//!   the state to keep). The daemon and the simulator both run it.
//! - [`forecast`]: next-hour demand forecasts — a self-weighting ensemble (augurs MSTL, a
//!   robust profile, naive, the brief's rule, the recent level) with adaptive conformal
//!   intervals — and their rolling-origin backtest.
//! - [`interop`]: a Kubernetes HPA or KEDA ScaledObject → a policy, and back.
//! - [`cost`]: prices, right-sizing instance types for a demand ([`cost::rightsize`]),
//!   profiles from a benchmark ([`cost::calibrate`]), and [`cost::load_policy`].
//! - [`sim`]: the simulator — traffic, replica performance model, simulated cloud, baselines,
//!   oracle and reports — driving the same fleet controller with a virtual clock.
//! - [`provider`]: the seam between the daemon and a cloud — [`provider::Provider`], and the
//!   simulated cloud behind it ([`provider::sim::SimProvider`]).
//! - [`lease`]: leader election for an HA pair ([`lease::Elector`]): who may actuate, from one
//!   compare-and-swap lease record, without comparing clocks between hosts.
//!
//! The *edge* (async, tokio; depends on the core, never the reverse):
//! - [`daemon`]: the control loop — observe, plan, apply each pool change, commit, persist,
//!   publish.
//! - [`store`]: engine state and the decision log in SQLite.
//! - [`http`]: `/livez`, `/healthz`, `/metrics`, `/api/state`, and a live dashboard.
//! - [`telemetry`]: logging setup and the Prometheus exposition.
//! - [`aws`]: the AWS provider — Auto Scaling, EC2, CloudWatch and SQS through the AWS SDK,
//!   spot interruption and lifecycle events, drain before termination; the HA lease on
//!   DynamoDB.
//! - [`scrape`]: the inference servers' Prometheus metrics (vLLM, TGI) and PromQL queries;
//!   [`series`] (pure): which server series each signal reads.
//!
//! [`aws`] and [`scrape`] are the `aws` cargo feature (on by default): a build without it runs
//! the daemon on the simulated cloud only, and compiles no AWS SDK.
//!
//! `main.rs` wires the CLI and is the only place `anyhow` is used.

#[cfg(feature = "aws")]
pub mod aws;
pub mod config;
pub mod controller;
pub mod cost;
pub mod daemon;
pub mod engine;
pub mod forecast;
pub mod history;
pub mod http;
pub mod interop;
pub mod lease;
#[cfg(feature = "aws")]
pub mod loadgen;
pub mod model;
pub mod placement;
pub mod policy;
#[cfg(feature = "aws")]
pub mod probe;
pub mod provider;
#[cfg(feature = "aws")]
pub mod scrape;
pub mod series;
pub mod sim;
pub mod store;
pub mod telemetry;
