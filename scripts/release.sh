#!/usr/bin/env bash
# Builds the release artifacts:
#   dist/llm-autoscaler-<version>-<arch>-linux.tar.gz — the binary (AWS provider included), the
#     hardened systemd unit, the annotated example policy, the operations pack and
#     deploy/install.sh (installs under /usr/local; what the control-vm module's user data runs);
#   dist/llm-autoscaler_<version>_<debian arch>.deb — the same as a Debian package (binary in
#     /usr/bin, unit in /usr/lib/systemd/system, policy example and operations pack in
#     /usr/share/llm-autoscaler (the example: /usr/share/doc may be stripped, as on minimal
#     images) and /usr/share/doc/llm-autoscaler; a first install writes
#     /etc/llm-autoscaler/policy.toml from the example, which is yours from then on: upgrades and
#     removal keep it, purge deletes it);
# each with a .sha256 beside it. Upload them where the control VM can read them (the control-vm
# Terraform module takes an S3 bucket and key); docs/deploy.md walks through it.
#
# Usage: scripts/release.sh [--binary PATH] [--out DIR]
#   --binary PATH  package this binary instead of building one in release (CI packages its
#                  debug build to test the packaging; a release takes ~20 min from scratch)
#   --out DIR      where the artifacts go; default dist/
# The .deb needs dpkg-deb (Debian, Ubuntu); without it only the tarball is built.
set -euo pipefail
binary="" out=""
while [ $# -gt 0 ]; do
  case "$1" in
    # Relative to where the script was run from.
    --binary) binary=$(realpath "$2"); shift 2 ;;
    --out) mkdir -p "$2"; out=$(realpath "$2"); shift 2 ;;
    *) echo "usage: scripts/release.sh [--binary PATH] [--out DIR]" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
out=${out:-dist}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
arch=$(uname -m)
name="llm-autoscaler-$version-$arch-linux"
if [ -z "$binary" ]; then
  cargo build --release --locked
  binary="${CARGO_TARGET_DIR:-target}/release/llm-autoscaler"
fi
[ -x "$binary" ] || { echo "not an executable: $binary" >&2; exit 1; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$out"

# --- the tarball ---
mkdir -p "$stage/$name"
install -m 0755 "$binary" "$stage/$name/llm-autoscaler"
# Debug info stays in the build; the artifacts ship the stripped binary.
strip --strip-debug "$stage/$name/llm-autoscaler" 2>/dev/null || true
install -m 0644 systemd/llm-autoscaler.service "$stage/$name/"
install -m 0644 config/example.toml "$stage/$name/policy.example.toml"
install -m 0755 deploy/install.sh "$stage/$name/"
cp -r deploy/grafana deploy/prometheus "$stage/$name/"
install -m 0644 README.md "$stage/$name/"
tar -C "$stage" -czf "$out/$name.tar.gz" "$name"
(cd "$out" && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256")
echo "$out/$name.tar.gz ($(du -h "$out/$name.tar.gz" | cut -f1)); sha256 in $out/$name.tar.gz.sha256"

# --- the Debian package ---
if ! command -v dpkg-deb >/dev/null; then
  echo "dpkg-deb not found: no .deb"
  exit 0
fi
debarch=$(dpkg --print-architecture)
deb="llm-autoscaler_${version}_$debarch.deb"
root="$stage/deb"
doc="$root/usr/share/doc/llm-autoscaler"
share="$root/usr/share/llm-autoscaler"
install -d "$root/DEBIAN" "$root/usr/bin" "$root/usr/lib/systemd/system" "$doc" "$share"
install -m 0755 "$stage/$name/llm-autoscaler" "$root/usr/bin/llm-autoscaler"
# The unit names the binary's and the README's place; the package puts them under /usr.
sed -e 's|/usr/local/bin/llm-autoscaler|/usr/bin/llm-autoscaler|' \
    -e 's|/usr/local/share/doc/llm-autoscaler|/usr/share/doc/llm-autoscaler|' \
    systemd/llm-autoscaler.service > "$root/usr/lib/systemd/system/llm-autoscaler.service"
chmod 0644 "$root/usr/lib/systemd/system/llm-autoscaler.service"
# The example the first install copies lives outside /usr/share/doc, which minimal images
# (Ubuntu's Docker and minimal cloud images) do not install.
install -m 0644 config/example.toml "$share/policy.example.toml"
install -m 0644 README.md "$doc/README.md"
cp -r deploy/grafana deploy/prometheus "$doc/"
find "$doc" -type d -exec chmod 0755 {} + && find "$doc" -type f -exec chmod 0644 {} +
# Depends: the newest glibc symbol version the binary links against, and libgcc_s (unwinding).
glibc=$(objdump -T "$root/usr/bin/llm-autoscaler" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n 1 || true)
depends="libc6${glibc:+ (>= $glibc)}, libgcc-s1"
cat > "$root/DEBIAN/control" <<EOF
Package: llm-autoscaler
Version: $version
Architecture: $debarch
Maintainer: llm-autoscaler maintainers <llm-autoscaler@users.noreply.github.com>
Installed-Size: $(du -sk "$root/usr" | cut -f1)
Depends: $depends
Section: admin
Priority: optional
Homepage: https://github.com/llm-autoscaler/llm-autoscaler
Description: SLO-driven autoscaler for LLM inference fleets on AWS GPU Auto Scaling Groups
 A daemon that reads the inference servers' metrics (vLLM, TGI), SQS and CloudWatch, forecasts
 the next hour, and sets desired capacity on spot and on-demand Auto Scaling Groups, under one
 TOML policy (/etc/llm-autoscaler/policy.toml), as the hardened systemd unit llm-autoscaler.
EOF
# Maintainer scripts honour DPKG_ROOT, so the package installs chrootless into a test root too.
cat > "$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
# The policy is the operator's file, not a conffile: written from the example on the first
# install only; the unit is never started here (the example names groups that are not yours).
set -e
if [ "$1" = configure ]; then
  install -d -m 0755 "$DPKG_ROOT/etc/llm-autoscaler"
  if [ ! -e "$DPKG_ROOT/etc/llm-autoscaler/policy.toml" ]; then
    install -m 0644 "$DPKG_ROOT/usr/share/llm-autoscaler/policy.example.toml" \
      "$DPKG_ROOT/etc/llm-autoscaler/policy.toml"
    echo "llm-autoscaler: wrote /etc/llm-autoscaler/policy.toml from the example: edit it, run" \
      "'llm-autoscaler check --aws --config /etc/llm-autoscaler/policy.toml'," \
      "then 'systemctl enable --now llm-autoscaler'"
  fi
  if [ -z "$DPKG_ROOT" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
    # An upgrade restarts a running daemon only onto a policy the new binary accepts.
    if [ -n "$2" ] && systemctl is-active --quiet llm-autoscaler; then
      if /usr/bin/llm-autoscaler check --config /etc/llm-autoscaler/policy.toml >/dev/null; then
        systemctl try-restart llm-autoscaler || true
      else
        echo "llm-autoscaler: the new version rejects /etc/llm-autoscaler/policy.toml" \
          "(llm-autoscaler check says why); the running daemon was not restarted" >&2
      fi
    fi
  fi
fi
exit 0
EOF
cat > "$root/DEBIAN/prerm" <<'EOF'
#!/bin/sh
# Removal stops and disables the daemon; an upgrade leaves it running (postinst restarts it).
set -e
if [ "$1" = remove ] && [ -z "$DPKG_ROOT" ] && [ -d /run/systemd/system ]; then
  systemctl disable --now llm-autoscaler || true
fi
exit 0
EOF
cat > "$root/DEBIAN/postrm" <<'EOF'
#!/bin/sh
# Purge deletes the policy and the state (decision log, engine state); remove keeps both.
set -e
if [ "$1" = purge ]; then
  rm -rf "$DPKG_ROOT/etc/llm-autoscaler" "$DPKG_ROOT/var/lib/llm-autoscaler" \
    "$DPKG_ROOT/var/lib/private/llm-autoscaler"
fi
if [ -z "$DPKG_ROOT" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
fi
exit 0
EOF
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"
# Root-owned files without needing root to build.
dpkg-deb --root-owner-group -Zgzip --build "$root" "$out/$deb" >/dev/null
(cd "$out" && sha256sum "$deb" > "$deb.sha256")
echo "$out/$deb ($(du -h "$out/$deb" | cut -f1)); sha256 in $out/$deb.sha256"
