#!/usr/bin/env bash
# The main job: the daemon on the built-in simulated cloud (no AWS account needed), serving its
# state on http://127.0.0.1:9464/ (dashboard), /metrics, /api/state and /healthz.
# Ctrl-C stops it. Extra arguments go to `llm-autoscaler run` (e.g. --speed 240, --scenario
# traffic-spike, --http 127.0.0.1:8080, --dry-run).
#
# The simulated cloud needs neither the AWS SDK nor release speed: a debug build without the
# `aws` feature — a few minutes from a fresh clone on 2 cores, and it shares its dependencies
# with the test build (scripts/test.sh). Re-running resumes ./state; the virtual clock restarts
# at the scenario's start, so a state from a previous run (its "future") is not resumed.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --no-default-features --bin llm-autoscaler
exec "${CARGO_TARGET_DIR:-target}/debug/llm-autoscaler" run --config config/demo.toml "$@"
