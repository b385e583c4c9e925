#!/usr/bin/env bash
# A bounded soak: the daemon on the simulated cloud at high speed for a while, its resident
# memory, open descriptors and ticks sampled every 10 s; prints the samples and the growth.
# Usage: scripts/soak.sh [minutes=30] [speed=600] [binary]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
speed=${2:-600}
bin=${3:-"${CARGO_TARGET_DIR:-target}/debug/llm-autoscaler"}
[ -x "$bin" ] || { echo "no binary at $bin: cargo build first" >&2; exit 1; }
work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed "s|state_dir = \"./state\"|state_dir = \"$work/state\"|" config/demo.toml > "$work/policy.toml"
"$bin" run --config "$work/policy.toml" --http "127.0.0.1:$port" --speed "$speed" >/dev/null 2>"$work/log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
sleep 5
printf 'elapsed_s\tticks\trss_kib\tfds\tstate_db_kib\n'
end=$((SECONDS + minutes * 60))
first_rss=""; last_rss=""; first_fds=""; last_fds=""
while [ $SECONDS -lt $end ]; do
  kill -0 $pid || { echo "the daemon died" >&2; tail -20 "$work/log" >&2; exit 1; }
  rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
  fds=$(ls "/proc/$pid/fd" | wc -l)
  ticks=$({ curl -s -m 2 "http://127.0.0.1:$port/metrics" || true; } | awk '$1 == "llm_autoscaler_ticks_total" { print $2 }')
  db=$(du -k "$work/state/state.db" | cut -f1)
  printf '%s\t%s\t%s\t%s\t%s\n' "$SECONDS" "$ticks" "$rss" "$fds" "$db"
  [ -z "$first_rss" ] && first_rss=$rss && first_fds=$fds
  last_rss=$rss; last_fds=$fds
  sleep 10
done
echo "RSS ${first_rss} → ${last_rss} KiB, descriptors ${first_fds} → ${last_fds}, ${ticks} ticks (${speed}× speed, ${minutes} min)"
