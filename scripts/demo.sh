#!/usr/bin/env bash
# The main job: the daemon on the built-in simulated cloud (no AWS account needed), serving its
# state on http://127.0.0.1:9464/ (dashboard), /metrics, /api/state and /healthz.
# Ctrl-C stops it. Extra arguments go to `llm-autoscaler run` (e.g. --speed 240, --scenario
# traffic-spike, --http 127.0.0.1:8080, --dry-run).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
exec "${CARGO_TARGET_DIR:-target}/release/llm-autoscaler" run --config config/demo.toml "$@"
