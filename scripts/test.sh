#!/usr/bin/env bash
# Runs every check and test of llm-autoscaler. Installs what the tests need first (idempotent).
# Usage: scripts/test.sh            (from anywhere; CI calls it through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# Installs a Debian package when root with apt (CI); otherwise says what to install and stops.
apt_install() {
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get install -y -q --no-install-recommends "$1" >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "$1" >/dev/null; }
  else
    echo "$2 not found: install Debian's $1 package and re-run" >&2
    exit 1
  fi
}

step "toolchain"
if ! command -v cargo >/dev/null; then
  echo "cargo not found: install Rust (https://rustup.rs) and re-run" >&2
  exit 1
fi
cargo --version
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy

step "moto_server (AWS wire protocol on loopback, for tests/aws)"
# A venv of the repo's own: moto 5.2.5 is the version the AWS tests were written against (its
# CloudWatch speaks awsQuery, which aws-sdk-cloudwatch 1.99.0 uses).
if [ ! -x .venv/bin/moto_server ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check 'moto[server]==5.2.5'
fi
moto_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
.venv/bin/moto_server -H 127.0.0.1 -p "$moto_port" >/dev/null 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$moto_port") 2>/dev/null && break
  sleep 0.1
done
export LLM_AUTOSCALER_MOTO="http://127.0.0.1:$moto_port"
echo "moto_server on $LLM_AUTOSCALER_MOTO"

step "Chromium (headless, for the dashboard test in tests/http.rs)"
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  apt_install chromium chromium
fi
LLM_AUTOSCALER_CHROMIUM=$(command -v chromium || command -v chromium-browser)
export LLM_AUTOSCALER_CHROMIUM
echo "chromium: $LLM_AUTOSCALER_CHROMIUM"

# tests/http.rs opens ~2,600 loopback descriptors in one process (1,100 idle and 200 half-sent
# connections, both ends).
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --all-targets --locked -- -D warnings

step "supply chain (cargo deny: licences, duplicate versions, sources — deny.toml)"
# Installed once per machine (~3.5 min from crates.io on 2 cores). Advisories are not checked:
# the RustSec database lives on GitHub, out of this machine's reach (docs/reliability.md).
if ! cargo deny --version >/dev/null 2>&1; then
  cargo install --locked --quiet cargo-deny@0.20.2
fi
cargo deny --log-level error check licenses bans sources

step "tests (all targets: unit, integration, property, CLI; benchmarks run once in test mode)"
test_log=$(mktemp)
# The real traces live beside the clone (shared/traces), not in it; without them the three
# tests that replay one skip (tests/common/traces.rs), unless LLM_AUTOSCALER_REQUIRE_TRACES is set.
traces_dir="${LLM_AUTOSCALER_TRACES:-../shared/traces}"
traces_note=""
if [ ! -d "$traces_dir" ] && [ -z "${LLM_AUTOSCALER_REQUIRE_TRACES:-}" ]; then
  traces_note=" (3 real-trace tests skipped: no traces at $traces_dir)"
  echo "no traces at $traces_dir: the 3 tests that replay a real trace will skip"
fi
cargo test --all-targets --locked 2>&1 | tee "$test_log"

step "release artifacts (scripts/release.sh on the debug build: tarball + .deb, installed into a throwaway root)"
release_dir=$(mktemp -d)
scripts/release.sh --binary "${CARGO_TARGET_DIR:-target}/debug/llm-autoscaler" --out "$release_dir"
scripts/release-check.sh "$release_dir"
rm -rf "$release_dir"

step "the demo's build (no AWS feature: the simulated cloud alone, as scripts/demo.sh builds it)"
cargo build --locked --no-default-features --bin llm-autoscaler

step "fault suite (the daemon binary, faults injected from outside: docs/reliability.md)"
scripts/faults.sh "${CARGO_TARGET_DIR:-target}/debug/llm-autoscaler"

step "operations pack (promtool: alert rules, their unit tests, a live /metrics; the dashboard's series)"
if ! command -v promtool >/dev/null; then
  # Debian's prometheus package carries promtool.
  apt_install prometheus promtool
fi
scripts/ops-pack-check.sh "${CARGO_TARGET_DIR:-target}/debug/llm-autoscaler"

step "systemd unit (verify + exposure)"
if command -v systemd-analyze >/dev/null; then
  bin="$(pwd)/${CARGO_TARGET_DIR:-target}/debug/llm-autoscaler"
  case "${CARGO_TARGET_DIR:-}" in /*) bin="$CARGO_TARGET_DIR/debug/llm-autoscaler" ;; esac
  unit="$(mktemp -d)/llm-autoscaler.service"
  sed "s|/usr/local/bin/llm-autoscaler|$bin|" systemd/llm-autoscaler.service > "$unit"
  out=$(systemd-analyze verify --man=no --recursive-errors=no "$unit" 2>&1)
  if [ -n "$out" ]; then echo "$out"; echo "systemd-analyze verify reported problems" >&2; exit 1; fi
  score=$(systemd-analyze security --offline=yes "$unit" 2>&1 | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
  echo "exposure score: $score"
  awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.0) }' || { echo "exposure above 2.0" >&2; exit 1; }
else
  echo "systemd-analyze not installed: skipped"
fi

step "terraform module (fmt + validate, offline)"
mirror=$(find /opt /usr/local/share /usr/share -maxdepth 3 -type d -name registry.terraform.io 2>/dev/null | head -n 1 || true)
if command -v terraform >/dev/null && [ -n "$mirror" ]; then
  tfrc=$(mktemp)
  printf 'provider_installation {\n  filesystem_mirror {\n    path = "%s"\n    include = ["registry.terraform.io/*/*"]\n  }\n}\ndisable_checkpoint = true\n' "$(dirname "$mirror")" > "$tfrc"
  export TF_CLI_CONFIG_FILE="$tfrc" CHECKPOINT_DISABLE=1
  terraform fmt -check -diff -recursive terraform
  terraform -chdir=terraform init -backend=false -input=false -no-color >/dev/null
  terraform -chdir=terraform validate -no-color
  python3 scripts/terraform-docs.py --check
  step "checkov (the module, its submodule and examples: 0 failed; each skip carries its reason in the code)"
  [ -x .venv/bin/checkov ] || .venv/bin/pip install --quiet --disable-pip-version-check 'checkov==3.*'
  .venv/bin/checkov -d terraform --framework terraform --quiet --compact --skip-download -o cli
  step "terraform apply + destroy of terraform/examples/* against moto"
  scripts/terraform-moto.sh "$LLM_AUTOSCALER_MOTO"
else
  echo "terraform or its offline provider mirror not found: skipped"
fi

# The closing line: every test binary's counts, summed.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed%s\n", p, f, note }' note="$traces_note" "$test_log"

