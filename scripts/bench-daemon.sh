#!/usr/bin/env bash
# Daemon footprint: peak RSS and tick CPU managing 1 fleet (the baseline, same run) and 10
# fleets on the simulated cloud, each for the same wall time at the same speed.
# Usage: scripts/bench-daemon.sh [SECONDS]      (default 30; loopback only)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
cargo build --release --locked --quiet
bin=target/release/llm-autoscaler
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

policy() { # N → a policy with N copies of the demo fleet
  sed -n '1,/^\[\[fleets\]\]/p' config/demo.toml | sed '$d' | sed "s|state_dir = \"./state\"|state_dir = \"$work/state-$1\"|"
  for i in $(seq 1 "$1"); do
    sed -n '/^\[\[fleets\]\]/,$p' config/demo.toml | sed "s/name = \"demo-llama-8b\"/name = \"fleet-$i\"/"
  done
}

measure() { # N PORT → "rss_kb hwm_kb ticks cpu_s"
  policy "$1" > "$work/p$1.toml"
  $bin run --config "$work/p$1.toml" --http "127.0.0.1:$2" --speed 120 >/dev/null 2>&1 &
  local pid=$!
  sleep "$secs"
  local rss hwm m
  rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  m=$(curl -s "http://127.0.0.1:$2/metrics" || true)
  kill -TERM $pid; wait $pid || true
  echo "$rss $hwm $(echo "$m" | awk '/^llm_autoscaler_ticks_total/ {print $2}') $(echo "$m" | awk '/^llm_autoscaler_tick_cpu_seconds_total/ {print $2}')"
}

port=$(( 20000 + RANDOM % 20000 ))
read -r r1 h1 t1 c1 <<<"$(measure 1 $port)"
read -r r10 h10 t10 c10 <<<"$(measure 10 $((port + 1)))"
awk -v r1="$r1" -v h1="$h1" -v t1="$t1" -v c1="$c1" -v r10="$r10" -v h10="$h10" -v t10="$t10" -v c10="$c10" 'BEGIN {
  printf "fleets  rss_MB  peak_rss_MB  ticks  tick_cpu_ms_per_tick\n";
  printf "1       %6.1f  %11.1f  %5d  %8.3f\n", r1/1024, h1/1024, t1, 1000*c1/t1;
  printf "10      %6.1f  %11.1f  %5d  %8.3f\n", r10/1024, h10/1024, t10, 1000*c10/t10;
  printf "peak RSS ratio 10 fleets / 1 fleet: %.2f (target: 10 fleets under 50 MB)\n", h10/h1;
}'
