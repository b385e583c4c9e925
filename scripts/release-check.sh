#!/usr/bin/env bash
# Checks the release artifacts that scripts/release.sh wrote to DIR, as a user would meet them:
# the tarball's checksum and contents, its binary runs and has the AWS provider, install.sh
# parses; the .deb's fields and
# contents, then a real `dpkg -i` into a throwaway root (chrootless: the maintainer scripts honour
# DPKG_ROOT), an upgrade over it that keeps an edited policy, `dpkg --remove` that keeps it and
# `--purge` that deletes it. Nothing outside a temp dir is touched, and no root is needed.
# Usage: scripts/release-check.sh DIR
set -euo pipefail
dir="$1"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$(dirname "$0")/../Cargo.toml" | head -n 1)
fail() { echo "release-check: $*" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tarball=$(ls "$dir"/llm-autoscaler-"$version"-*-linux.tar.gz)
(cd "$dir" && sha256sum --quiet -c "$(basename "$tarball").sha256") || fail "tarball checksum"
tar -C "$work" -xzf "$tarball"
t="$work/$(basename "$tarball" .tar.gz)"
for f in llm-autoscaler llm-autoscaler.service policy.example.toml install.sh README.md \
  grafana/llm-autoscaler.json prometheus/alerts.yml; do
  [ -e "$t/$f" ] || fail "tarball lacks $f"
done
[ "$("$t/llm-autoscaler" --version)" = "llm-autoscaler $version" ] || fail "tarball binary --version"
# The artifact is the daemon for AWS: a build without the provider says so on any AWS command.
if "$t/llm-autoscaler" probe --interval-secs 0 http://127.0.0.1:9/metrics 2>&1 | grep -q "no AWS provider"; then
  fail "the binary was built without the aws feature"
fi
bash -n "$t/install.sh" || fail "install.sh does not parse"
echo "tarball: checksum, contents, binary $version, install.sh: ok"

command -v dpkg-deb >/dev/null || { echo "dpkg-deb not found: .deb not checked"; exit 0; }
deb=$(ls "$dir"/llm-autoscaler_"$version"_*.deb)
(cd "$dir" && sha256sum --quiet -c "$(basename "$deb").sha256") || fail ".deb checksum"
field() { dpkg-deb --field "$deb" "$1"; }
[ "$(field Package)" = llm-autoscaler ] || fail "Package"
[ "$(field Version)" = "$version" ] || fail "Version"
[ "$(field Architecture)" = "$(dpkg --print-architecture)" ] || fail "Architecture"
field Depends | grep -q '^libc6 (>= [0-9.]*), libgcc-s1$' || fail "Depends: $(field Depends)"
contents=$(dpkg-deb --contents "$deb" | awk '{ print $6 }')
for f in ./usr/bin/llm-autoscaler ./usr/lib/systemd/system/llm-autoscaler.service \
  ./usr/share/llm-autoscaler/policy.example.toml ./usr/share/doc/llm-autoscaler/README.md; do
  grep -qx "$f" <<<"$contents" || fail ".deb lacks $f"
done
# No file of the package is owned by anyone but root.
dpkg-deb --contents "$deb" | awk '$2 != "root/root" { bad = 1 } END { exit bad }' || fail "owners"

# Install into a throwaway root. --force-depends: the test root's database knows no libc6.
r="$work/root"
mkdir -p "$r/var/lib/dpkg/info" "$r/var/lib/dpkg/updates" "$r/var/lib/dpkg/triggers"
touch "$r/var/lib/dpkg/status"
dpkg_root() { # dpkg looks for ldconfig and start-stop-daemon, in sbin, before installing
  PATH="$PATH:/usr/sbin:/sbin" dpkg --root="$r" --force-not-root --force-script-chrootless --force-depends \
    --log=/dev/null "$@" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg $*"; }
}
dpkg_root -i "$deb"
unit="$r/usr/lib/systemd/system/llm-autoscaler.service"
exec_start=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")
[ "$exec_start" = /usr/bin/llm-autoscaler ] || fail "the unit starts $exec_start"
[ -x "$r$exec_start" ] || fail "the unit's binary is not installed"
[ "$("$r/usr/bin/llm-autoscaler" --version)" = "llm-autoscaler $version" ] || fail "--version"
cmp -s "$r/etc/llm-autoscaler/policy.toml" "$r/usr/share/llm-autoscaler/policy.example.toml" \
  || fail "the first install writes the policy from the example"
"$r/usr/bin/llm-autoscaler" check --config "$r/etc/llm-autoscaler/policy.toml" >/dev/null \
  || fail "the installed binary rejects the installed policy"
# The operator edits the policy; an upgrade (the same package again) keeps it.
echo "# edited by the operator" >> "$r/etc/llm-autoscaler/policy.toml"
dpkg_root -i "$deb"
tail -n 1 "$r/etc/llm-autoscaler/policy.toml" | grep -q "edited by the operator" \
  || fail "an upgrade replaced the operator's policy"
dpkg_root --remove llm-autoscaler
[ ! -e "$r/usr/bin/llm-autoscaler" ] || fail "remove left the binary"
[ -e "$r/etc/llm-autoscaler/policy.toml" ] || fail "remove deleted the policy"
mkdir -p "$r/var/lib/llm-autoscaler" && touch "$r/var/lib/llm-autoscaler/state.db"
dpkg_root --purge llm-autoscaler
[ ! -e "$r/etc/llm-autoscaler" ] || fail "purge left the policy"
[ ! -e "$r/var/lib/llm-autoscaler" ] || fail "purge left the state"
echo ".deb: checksum, fields (Depends: $(field Depends)), contents; installed, upgraded (policy kept), removed (policy kept), purged: ok"
