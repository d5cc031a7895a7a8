#!/usr/bin/env bash
# The README's second command: installs prerequisites, then runs every check CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_debian_packages
ensure_rust

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== the AntSDR libiio source (feature iio) builds against Debian's libiio"
cargo clippy -p ndefender-antsdr-scan --features iio --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked --no-fail-fast
