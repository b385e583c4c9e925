#!/usr/bin/env bash
# Runs the six built-in scenarios (and, with --traces, replays of the shared real traces) with
# the example policy and every baseline, and prints a Markdown table of the results.
# Usage: [BIN=path] scripts/evaluate.sh [--seed N] [--traces] [--config FILE]    (reports land in target/eval/)
set -euo pipefail
cd "$(dirname "$0")/.."
seed=1; traces=0; config=config/example.toml
while [ $# -gt 0 ]; do
  case "$1" in
    --seed) seed=$2; shift 2 ;;
    --traces) traces=1; shift ;;
    --config) config=$2; shift 2 ;;
    *) echo "usage: $0 [--seed N] [--traces] [--config FILE]" >&2; exit 2 ;;
  esac
done
# BIN=path measures that binary instead of building this checkout (a before/after pair).
if [ -z "${BIN:-}" ]; then cargo build --release --locked --quiet; fi
bin="${BIN:-${CARGO_TARGET_DIR:-target}/release/llm-autoscaler}"
out=target/eval; mkdir -p "$out"
runs=()
for s in traffic-spike gradual-growth periodic sudden-drop mixed-workload spot-shortage; do
  $bin simulate --config "$config" --scenario "$s" --seed "$seed" --json "$out/$s.json" >/dev/null
  runs+=("$out/$s.json")
done
if [ "$traces" = 1 ]; then
  t=../shared/traces
  $bin simulate --config "$config" --trace "$t/azure_llm_2023_conv.csv" --seed "$seed" --json "$out/azure-conv.json" >/dev/null
  $bin simulate --config "$config" --trace "$t/azure_llm_2023_code.csv" --seed "$seed" --json "$out/azure-code.json" >/dev/null
  # ServeGen's 14-day shape at ~20 requests/s needs more than the example's 12 units at peak.
  sed -E 's/^max_units = [0-9]+ /max_units = 40 /' "$config" > "$out/policy-40.toml"
  grep -q '^max_units = 40 ' "$out/policy-40.toml" || { echo "evaluate.sh: no max_units line to raise in $config" >&2; exit 1; }
  $bin simulate --config "$out/policy-40.toml" --trace "$t/servegen_m-small_per_minute.csv" \
    --tokens-from "$t/azure_llm_2023_conv.csv" --scale 0.0167 --seed "$seed" --json "$out/servegen-14d.json" >/dev/null
  runs+=("$out/azure-conv.json" "$out/azure-code.json" "$out/servegen-14d.json")
fi
python3 - "${runs[@]}" <<'PY'
import json, sys
print("| run | policy | availability | error rate | P95 TTFT s | TTFT-violating min | cost $ | savings vs static | vs static at SLO | spot share | over-prov | scale-up lag s | scale-down lag s |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for path in sys.argv[1:]:
    r = json.load(open(path))
    rows = [("ours", r)] + [(k, v) for k, v in r["baselines"].items()]
    for name, f in rows:
        s, c, k = f["slo"], f["cost"], f["capacity"]
        pct = lambda v: "-" if v is None else f'{v*100:.1f} %'
        sav, sav_slo = pct(c["savings_vs_static"]), pct(c["savings_vs_static_slo"])
        print(f'| {r["scenario"]} | {name} | {s["availability"]:.4f} | {s["error_rate"]:.4f} | {s["p95_ttft_s"]:.2f} | {s["ttft_violation_minutes"]:.3f} | {c["total_usd"]:.2f} | {sav} | {sav_slo} | {c["spot_share"]*100:.0f} % | {k["over_provisioning"]*100:.1f} % | {k["scale_up_latency_s"]["max"]:.0f} | {k["scale_down_latency_s"]["max"]:.0f} |')
PY
