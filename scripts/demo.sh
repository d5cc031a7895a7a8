#!/usr/bin/env bash
# The README's first command: installs prerequisites, builds, and runs the whole
# stack on simulated inputs (no hardware). Ctrl-C stops everything cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_debian_packages
ensure_rust
cargo build --release --workspace --locked
exec target/release/ndefender-demo "$@"
