#!/usr/bin/env bash
# Builds the release artifact: dist/llm-autoscaler-<version>-<arch>-linux.tar.gz with the binary
# (AWS provider included), the hardened systemd unit, the annotated example policy, the
# operations pack and deploy/install.sh. Upload it where the control VM can read it (the
# control-vm Terraform module takes an S3 bucket and key); docs/deploy.md walks through it.
# Usage: scripts/release.sh            (a release build: ~20 min from scratch on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
arch=$(uname -m)
name="llm-autoscaler-$version-$arch-linux"
cargo build --release --locked
target="${CARGO_TARGET_DIR:-target}"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$name" dist
install -m 0755 "$target/release/llm-autoscaler" "$stage/$name/llm-autoscaler"
# Debug info stays in the build; the artifact ships the stripped binary.
strip --strip-debug "$stage/$name/llm-autoscaler" 2>/dev/null || true
install -m 0644 systemd/llm-autoscaler.service "$stage/$name/"
install -m 0644 config/example.toml "$stage/$name/policy.example.toml"
install -m 0755 deploy/install.sh "$stage/$name/"
cp -r deploy/grafana deploy/prometheus "$stage/$name/"
install -m 0644 README.md "$stage/$name/"
tar -C "$stage" -czf "dist/$name.tar.gz" "$name"
(cd dist && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256")
echo "dist/$name.tar.gz ($(du -h "dist/$name.tar.gz" | cut -f1)); sha256 in dist/$name.tar.gz.sha256"
