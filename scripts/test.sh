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
echo "== arm64: Debian's Rust cross-builds the daemons, qemu runs them (scripts/pi.sh)"
bash scripts/pi.sh
echo "== the Debian package: install, files, users, units, purge, upgrade (scripts/package-test.sh)"
bash scripts/package-test.sh
echo "== the arm64 package from the binaries pi.sh built, its daemons under qemu"
bash scripts/pi.sh package
