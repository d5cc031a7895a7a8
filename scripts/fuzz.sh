#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a fixed number of executions each.
#
#   bash scripts/fuzz.sh            # 1,000,000 runs per target
#   bash scripts/fuzz.sh 50000      # quicker
#   bash scripts/fuzz.sh 1000000 feed_lines config_toml   # only these targets
#
# The toolchain is stable; RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass -Zsanitizer. Set
# FUZZ_SANITIZER=none to build without AddressSanitizer. Seeds are read from
# fuzz/corpus/<target>/ (committed, never written) and tokens from fuzz/dict/<target>.dict;
# what libFuzzer learns goes to fuzz/target/corpus/<target>/, crashes to
# fuzz/artifacts/<target>/.
#
# All targets are built once, up front (`cargo fuzz build`), and each binary is then run
# directly: `cargo fuzz run` would rebuild before every target, so a tree edited during a
# long campaign would have its targets fuzzed against different code.
set -euo pipefail

runs="${1:-1000000}"
shift || true
cd "$(dirname "$0")/../fuzz"

export RUSTC_BOOTSTRAP=1
sanitizer="${FUZZ_SANITIZER:-address}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

echo "== building every target (sanitizer: $sanitizer)"
cargo fuzz build -s "$sanitizer"
bin="target/$(rustc -vV | sed -n 's/^host: //p')/release"

status=0
for t in "${targets[@]}"; do
    mkdir -p "target/corpus/$t" "corpus/$t" "artifacts/$t"
    echo "== $t: $runs runs (sanitizer: $sanitizer)"
    start=$(date +%s)
    dict=()
    [ -f "dict/$t.dict" ] && dict=("-dict=dict/$t.dict")
    if "$bin/$t" -artifact_prefix="artifacts/$t/" -runs="$runs" -max_len=8192 -timeout=10 \
        -print_final_stats=1 "${dict[@]}" "target/corpus/$t" "corpus/$t"; then
        echo "== $t: ok in $(($(date +%s) - start)) s"
    else
        echo "== $t: FAILED after $(($(date +%s) - start)) s (see fuzz/artifacts/$t/)"
        status=1
    fi
done
exit "$status"
