#!/usr/bin/env bash
# The fault suite's process-level cases: the daemon binary on the simulated cloud, each fault
# injected from outside, each with its assertion and the figure docs/reliability.md quotes.
# (The cases that need AWS's wire protocol or paused time are Rust tests; the table in
# docs/reliability.md names them.)
#
# Usage: scripts/faults.sh [path/to/llm-autoscaler]   (default: the debug build)
# Needs: curl; for the filesystem cases, `unshare -m` (root or user namespaces) — skipped,
# and said so, where the machine does not allow it.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-"${CARGO_TARGET_DIR:-target}/debug/llm-autoscaler"}
[ -x "$bin" ] || { echo "no binary at $bin: cargo build first" >&2; exit 1; }
bin=$(readlink -f "$bin")
work=$(mktemp -d)
pids=()
# However the script ends, no daemon it started outlives it.
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
failures=0
rows=()

port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
metric() { { curl -s -m 2 "http://127.0.0.1:$1/metrics" || true; } | awk -v m="llm_autoscaler_$2" '$1 == m { print $2 }'; }
policy() { # policy <state dir> → path of a demo policy using it
  sed "s|state_dir = \"./state\"|state_dir = \"$1\"|" config/demo.toml > "$work/policy-$(basename "$1").toml"
  echo "$work/policy-$(basename "$1").toml"
}
wait_ticks() { # wait_ticks <port> <n>: until the daemon has done n ticks (≤ 15 s)
  for _ in $(seq 1 150); do
    t=$(metric "$1" ticks_total || true)
    [ -n "$t" ] && awk -v t="$t" -v n="$2" 'BEGIN { exit !(t >= n) }' && return 0
    sleep 0.1
  done
  return 1
}
check() { # check <fault> <assertion holds? 0/1> <figure>
  if [ "$2" = 1 ]; then rows+=("| $1 | pass | $3 |"); else rows+=("| $1 | **FAIL** | $3 |"); failures=$((failures + 1)); fi
}
can_unshare() { unshare -m true 2>/dev/null; }
start() { # start <case>: a daemon on the demo policy with its own state dir; sets dir, p, pid
  dir="$work/$1"; mkdir -p "$dir"
  p=$(port)
  "$bin" run --config "$(policy "$dir")" --http "127.0.0.1:$p" --speed 600 >/dev/null 2>"$work/$1.log" &
  pid=$!
  pids+=("$pid")
}

# 1. A damaged state database at start: moved aside, a fresh one started, the daemon scales.
mkdir -p "$work/corrupt"; head -c 16384 /dev/urandom > "$work/corrupt/state.db"
start corrupt
ok=0; wait_ticks "$p" 20 && [ "$(metric "$p" state_recoveries_total)" = 1 ] && ls "$dir"/state.db.corrupt-* >/dev/null 2>&1 && ok=1
ticks=$(metric "$p" ticks_total || echo 0); kill -TERM $pid; wait $pid || true
check "damaged state.db at start" $ok "moved aside, recoveries 1, scaling on ($ticks ticks)"

# 2. A second daemon on the same state directory: refused, the first untouched.
start twice
wait_ticks "$p" 5 || true
set +e; "$bin" run --config "$(policy "$dir")" --http "127.0.0.1:$(port)" --speed 600 >/dev/null 2>"$work/twice-2.log"; rc=$?; set -e
ok=0; [ $rc -ne 0 ] && grep -q "another process holds this state directory" "$work/twice-2.log" && kill -0 $pid && ok=1
kill -TERM $pid; wait $pid || true
check "second daemon on the same state" $ok "refused, exit $rc, first still running"

# 3. A SIGHUP storm: 200 reloads in ~2 s; the loop keeps ticking.
start hup
wait_ticks "$p" 5 || true
before=$(metric "$p" ticks_total)
for _ in $(seq 1 200); do kill -HUP $pid; sleep 0.01; done
sleep 1
after=$(metric "$p" ticks_total); reloads=$({ curl -s -m 2 "http://127.0.0.1:$p/metrics" || true; } | awk '$1 ~ /reloads_total\{result="ok"\}/ { print $2 }')
ok=0; kill -0 $pid && awk -v a="$after" -v b="$before" 'BEGIN { exit !(a > b) }' && ok=1
kill -TERM $pid; wait $pid || true
check "SIGHUP storm (200 in ~2 s)" $ok "ticks $before → $after, $reloads reloads applied"

# 4. SIGTERM with 200 half-sent requests: exits within the HTTP grace.
start term
wait_ticks "$p" 5 || true
python3 - "$p" <<'EOF' &
import socket, sys, time
conns = []
for _ in range(200):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    conns.append(s)
time.sleep(20)
EOF
holder=$!
sleep 1
start=$(date +%s.%N); kill -TERM $pid; wait $pid || true; end=$(date +%s.%N)
kill $holder 2>/dev/null || true
secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
ok=0; awk -v s="$secs" 'BEGIN { exit !(s < 5) }' && ok=1
check "SIGTERM with 200 half-sent requests" $ok "exited in $secs s"

if can_unshare; then
  # 5. A read-only state directory (with a database in it): no SIGBUS; the daemon runs on memory.
  dir="$work/ro"; mkdir -p "$dir"
  p=$(port); timeout -s TERM 4 "$bin" run --config "$(policy "$dir")" --http "127.0.0.1:$p" --speed 600 >/dev/null 2>&1 || true
  p=$(port)
  set +e
  unshare -m sh -c "mount --bind '$dir' '$dir' && mount -o remount,ro,bind '$dir' && exec '$bin' run --config '$(policy "$dir")' --http 127.0.0.1:$p --speed 600" >/dev/null 2>"$work/ro.log" &
  pid=$!; pids+=("$pid")
  set -e
  wait_ticks "$p" 30 || true
  mem=$(metric "$p" state_in_memory || echo "?"); ticks=$(metric "$p" ticks_total || echo 0)
  code=$(curl -s -o /dev/null -w '%{http_code}' -m 2 "http://127.0.0.1:$p/healthz" || true)
  kill -TERM $pid; set +e; wait $pid; rc=$?; set -e
  ok=0; [ "$mem" = 1 ] && [ $rc -eq 0 ] && ok=1
  check "read-only state directory" $ok "no SIGBUS (exit $rc), in memory, $ticks ticks, /healthz $code"

  # 6. A full filesystem mid-run (a 512 KiB tmpfs): saves fail, are counted, the loop goes on.
  dir="$work/full"; mkdir -p "$dir"
  p=$(port)
  set +e
  unshare -m sh -c "mount -t tmpfs -o size=512k tmpfs '$dir' && exec '$bin' run --config '$(policy "$dir")' --http 127.0.0.1:$p --speed 600" >/dev/null 2>"$work/full.log" &
  pid=$!; pids+=("$pid")
  set -e
  wait_ticks "$p" 400 || true
  errs=$(metric "$p" state_persist_errors_total || echo 0); ticks=$(metric "$p" ticks_total || echo 0)
  code=$(curl -s -o /dev/null -w '%{http_code}' -m 2 "http://127.0.0.1:$p/healthz" || true)
  kill -TERM $pid; set +e; wait $pid; rc=$?; set -e
  ok=0; awk -v e="$errs" 'BEGIN { exit !(e > 0) }' && [ $rc -eq 0 ] && ok=1
  check "full state filesystem (512 KiB)" $ok "$errs failed saves counted in $ticks ticks, exit $rc, /healthz $code"
else
  rows+=("| read-only state directory | skipped | unshare -m not permitted here |")
  rows+=("| full state filesystem | skipped | unshare -m not permitted here |")
fi

printf '\n| fault | result | figure |\n| --- | --- | --- |\n'
printf '%s\n' "${rows[@]}"
[ "$failures" -eq 0 ] || { echo "$failures fault case(s) failed" >&2; exit 1; }
