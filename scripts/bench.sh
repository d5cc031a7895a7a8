#!/usr/bin/env bash
# Reproduces every figure in docs/BENCHMARKS.md: hub fan-out, scanner DSP throughput,
# aggregator append → WS latency, ESP32 command round trip, and CPU/RSS of each daemon
# idle and loaded. Installs prerequisites like the other scripts, builds the release
# binaries once, and keeps each run's output in target/bench/<name>.txt.
#
#   bash scripts/bench.sh            # everything (about 8 minutes on 2 cores)
#   bash scripts/bench.sh dsp rtt    # only these: fanout dsp latency rtt footprint
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_debian_packages
ensure_rust

out="${BENCH_OUT:-target/bench}"
mkdir -p "$out"
cargo build --release --locked -p ndefender-devkit -p ndefender-aggregator \
    -p ndefender-system-controller -p ndefender-antsdr-scan

want() { [ "${#only[@]}" -eq 0 ] || [[ " ${only[*]} " == *" $1 "* ]]; }
run() {
    local name=$1; shift
    want "$name" || return 0
    echo "== $name: $*" | tee "$out/$name.txt"
    "$@" 2>&1 | tee -a "$out/$name.txt"
}
only=("$@")
bin=target/release
run fanout cargo bench --locked -p ndefender-hub --bench fanout
run dsp "$bin/ndefender-antsdr-scan" --bench-dsp --seconds 5
run latency "$bin/ndefender-loadgen" latency --rates 100,1000,10000 --seconds 10
run rtt "$bin/ndefender-loadgen" esp32-rtt --commands 1000
run footprint "$bin/ndefender-loadgen" footprint --seconds 60
echo "== done: outputs in $out/ ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg))"
