#!/usr/bin/env bash
# The operations pack against the daemon it watches: the alert rules valid and their unit
# tests passing (promtool), the daemon's live /metrics valid exposition (promtool check
# metrics), the Grafana dashboard valid JSON, and every llm_autoscaler_* series the rules and
# the dashboard name one the daemon exports (src/telemetry.rs, src/http.rs).
# Usage: scripts/ops-pack-check.sh [binary]   (needs promtool: Debian's prometheus package)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-"${CARGO_TARGET_DIR:-target}/debug/llm-autoscaler"}
command -v promtool >/dev/null || { echo "promtool not found (apt-get install prometheus)" >&2; exit 1; }
promtool check rules deploy/prometheus/alerts.yml
(cd deploy/prometheus && promtool test rules alerts_test.yml)
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(sys.argv[1] + ":", len(d["panels"]), "panels")' deploy/grafana/llm-autoscaler.json

# A live daemon (simulated cloud, an HA lease in memory so its series show too).
work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
{ sed "s|state_dir = \"./state\"|state_dir = \"$work/state\"|" config/demo.toml
  printf '\n[global.ha]\ntable = "in-memory"\n'; } > "$work/policy.toml"
"$bin" run --config "$work/policy.toml" --http "127.0.0.1:$port" --speed 600 >/dev/null 2>"$work/log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/metrics" -o "$work/metrics" && grep -q 'llm_autoscaler_ha_leader' "$work/metrics" && break
  sleep 0.2
done
promtool check metrics < "$work/metrics"
echo "live /metrics: $(grep -c '^llm_autoscaler_' "$work/metrics") samples, promtool-clean"

# Every series the pack names is one the daemon exports: on the live /metrics, or declared
# (HELP) in the exposition code for series this daemon has no data for (the AWS provider's).
exported=$( (sed -n 's/^# HELP \(llm_autoscaler_[a-z0-9_]*\) .*/\1/p' "$work/metrics"
  python3 -c 'import re, sys; [print("llm_autoscaler_" + n) for n in re.findall(r"help\(\s*\"([a-z0-9_]+)\"", open(sys.argv[1]).read())]' src/telemetry.rs
  grep -ho 'HELP llm_autoscaler_[a-z0-9_]*' src/http.rs | sed 's/^HELP //') | sort -u)
missing=0
for name in $(grep -ho 'llm_autoscaler_[a-z0-9_]*' deploy/prometheus/alerts.yml deploy/grafana/llm-autoscaler.json | sort -u); do
  if ! grep -qx "$name" <<<"$exported"; then echo "not exported by the daemon: $name" >&2; missing=1; fi
done
[ $missing -eq 0 ] && echo "every series the rules and the dashboard name is exported"
exit $missing
