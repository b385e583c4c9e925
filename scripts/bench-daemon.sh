#!/usr/bin/env bash
# Daemon footprint: peak RSS and tick CPU managing 1 fleet (the baseline, same run) and 10
# fleets, each for the same wall time: on the simulated cloud at the same speed, or with --aws
# through the AWS provider against moto_server on loopback (1 s ticks; SQS-driven fleets, so
# nothing is scraped).
# Usage: scripts/bench-daemon.sh [--aws] [SECONDS]      (default 30; loopback only)
set -euo pipefail
cd "$(dirname "$0")/.."
aws=0
if [ "${1:-}" = "--aws" ]; then aws=1; shift; fi
secs=${1:-30}
cargo build --release --locked --quiet
bin="${CARGO_TARGET_DIR:-target}/release/llm-autoscaler"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

policy() { # N → a policy with N copies of the demo fleet
  if [ "$aws" = 1 ]; then aws_policy "$1"; return; fi
  sed -n '1,/^\[\[fleets\]\]/p' config/demo.toml | sed '$d' | sed "s|state_dir = \"./state\"|state_dir = \"$work/state-$1\"|"
  for i in $(seq 1 "$1"); do
    sed -n '/^\[\[fleets\]\]/,$p' config/demo.toml | sed "s/name = \"demo-llama-8b\"/name = \"fleet-$i\"/"
  done
}

aws_policy() { # N → N fleets of an on-demand and a spot group each, scaled on their SQS queue
  printf '[global]\nprovider = "aws"\ntick_secs = 1\nstate_dir = "%s"\n[global.aws]\nregion = "us-east-1"\nendpoint_url = "%s"\nevents_queue_url = "%s/123456789012/bench-events"\n' \
    "$work/state-$1" "$moto" "$moto"
  for i in $(seq 1 "$1"); do
    printf '[[fleets]]\nname = "fleet-%s"\nmin_units = 2\nmax_units = 30\non_demand_base_units = 2\n' "$i"
    printf '[[fleets.pools]]\nname = "od"\nasg_name = "bench-%s-od"\nmarket = "on-demand"\ninstance_types = [{ type = "g6.xlarge" }]\n' "$i"
    printf '[[fleets.pools]]\nname = "spot"\nasg_name = "bench-%s-spot"\nmarket = "spot"\ninstance_types = [{ type = "g6.xlarge" }]\n' "$i"
    printf '[[fleets.metrics]]\nsignal = "external_queue_depth"\ntarget = { type = "AverageValue", average_value = 5 }\n' 
    printf 'source = { type = "sqs", queue_url = "%s/123456789012/bench-%s" }\n' "$moto" "$i"
  done
}

if [ "$aws" = 1 ]; then
  [ -x .venv/bin/moto_server ] || { python3 -m venv .venv && .venv/bin/pip install --quiet 'moto[server]==5.2.5'; }
  moto_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  .venv/bin/moto_server -H 127.0.0.1 -p "$moto_port" >/dev/null 2>&1 &
  moto_pid=$!
  trap 'kill $moto_pid 2>/dev/null; rm -rf "$work"' EXIT
  moto="http://127.0.0.1:$moto_port"
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true
  sleep 2
  # boto3 comes with moto: 10 fleets of groups and request queues, and the event queue.
  .venv/bin/python - "$moto" <<'PY'
import sys, boto3
url = sys.argv[1]
kw = dict(endpoint_url=url, region_name="us-east-1")
ec2, asg, sqs = (boto3.client(s, **kw) for s in ("ec2", "autoscaling", "sqs"))
ec2.create_launch_template(LaunchTemplateName="bench", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "g6.xlarge"})
sqs.create_queue(QueueName="bench-events")
for i in range(1, 11):
    for pool in ("od", "spot"):
        asg.create_auto_scaling_group(AutoScalingGroupName=f"bench-{i}-{pool}", MinSize=0, MaxSize=40, DesiredCapacity=2,
            LaunchTemplate={"LaunchTemplateName": "bench", "Version": "$Latest"}, AvailabilityZones=["us-east-1a"])
    q = sqs.create_queue(QueueName=f"bench-{i}")["QueueUrl"]
    for b in range(4):
        sqs.send_message_batch(QueueUrl=q, Entries=[{"Id": str(k), "MessageBody": "x"} for k in range(10)])
PY
fi

measure() { # N PORT → "rss_kb hwm_kb ticks cpu_s"
  policy "$1" > "$work/p$1.toml"
  $bin run --config "$work/p$1.toml" --http "127.0.0.1:$2" --speed 120 >"$work/log$1" 2>&1 &
  local pid=$!
  sleep "$secs"
  local rss hwm m
  rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  m=$(curl -s "http://127.0.0.1:$2/metrics" || true)
  kill -TERM $pid; wait $pid || true
  echo "$rss $hwm $(echo "$m" | awk '/^llm_autoscaler_ticks_total/ {print $2}') $(echo "$m" | awk '/^llm_autoscaler_tick_cpu_seconds_total/ {print $2}')"
  # What was done: changes applied and failed provider calls, summed over fleets.
  echo "$m" | awk '/^llm_autoscaler_set_desired_total/ {s += $2} /^llm_autoscaler_provider_errors_total/ {e += $2}
    END {printf "  %s fleet(s): %d set_desired calls, %d provider errors\n", n, s, e}' n="$1" >&2
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
