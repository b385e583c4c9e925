#!/usr/bin/env bash
# The main job as it stands: validate the demo policy and let the engine decide on the example
# snapshot, printing the decision with its reasons. (The long-running daemon on the simulated
# cloud, `llm-autoscaler run --config config/demo.toml`, lands with the daemon issue.)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
bin=target/release/llm-autoscaler
$bin check --config config/example.toml
echo
$bin decide --config config/example.toml --snapshot docs/examples/snapshot.json --summary
echo
$bin decide --config config/example.toml --snapshot docs/examples/snapshot.json
