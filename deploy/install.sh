#!/usr/bin/env bash
# Installs llm-autoscaler from an unpacked release artifact (run from inside it, as root): the
# binary, the hardened unit, and — only if none is there — the example policy, which must be
# edited before the daemon is started. Re-running upgrades the binary and the unit in place.
# Usage: ./install.sh [--start]
set -euo pipefail
cd "$(dirname "$0")"
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
install -m 0755 llm-autoscaler /usr/local/bin/llm-autoscaler
install -m 0644 llm-autoscaler.service /etc/systemd/system/llm-autoscaler.service
install -d -m 0755 /etc/llm-autoscaler
if [ ! -e /etc/llm-autoscaler/policy.toml ]; then
  install -m 0644 policy.example.toml /etc/llm-autoscaler/policy.toml
  echo "wrote /etc/llm-autoscaler/policy.toml from the example: edit it, then llm-autoscaler check --aws"
fi
systemctl daemon-reload
if [ "${1:-}" = "--start" ]; then
  /usr/local/bin/llm-autoscaler check --config /etc/llm-autoscaler/policy.toml
  systemctl enable --now llm-autoscaler
  systemctl restart llm-autoscaler
  echo "started: journalctl -u llm-autoscaler -f; curl -s 127.0.0.1:9464/healthz"
fi
