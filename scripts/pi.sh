#!/usr/bin/env bash
# The stack for the Raspberry Pi, built and run here: Debian's own Rust (rustc-web/cargo-web,
# 1.96, with the target's standard library from libstd-rust-web-dev:<arch>) and Debian's cross
# gcc build every daemon of the workspace for aarch64-unknown-linux-gnu (the scanner with its
# libiio source), then the binaries run as arm64 processes under qemu-user on the Pi 4's core
# (cortex-a72): each daemon's --check-config, then the stack test (tests/tests/pi.rs: the
# aggregator, the scanner on its synthetic scene and the controller, a WebSocket client
# receiving the greeting and live RF contacts, clean SIGTERM exits).
#
#   bash scripts/pi.sh            # install what is missing, build, run under qemu
#   bash scripts/pi.sh build      # only the cross build (scripts/package.sh uses it)
#   bash scripts/pi.sh package    # the target's .deb from that build, its daemons run under qemu
#   PI_ARCH=armhf bash scripts/pi.sh   # 32-bit Raspberry Pi OS (armv7, cortex-a7 under qemu)
#
# The rustup toolchain stays the default for everything else: Debian's cargo is called by its
# path with RUSTC=/usr/bin/rustc, into its own target directory (target/debian-cross), so the
# host build in target/ is never invalidated.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# missing_debian_packages, apt_install
source scripts/deps.sh

PI_ARCH=${PI_ARCH:-arm64}
case "$PI_ARCH" in
  arm64)
    TRIPLE=aarch64-unknown-linux-gnu GNU=aarch64-linux-gnu QEMU=qemu-aarch64-static CPU=cortex-a72
    ELF_MACHINE=183 LIBC_CROSS=libc6-dev-arm64-cross ;;
  armhf)
    TRIPLE=armv7-unknown-linux-gnueabihf GNU=arm-linux-gnueabihf QEMU=qemu-arm-static CPU=cortex-a7
    ELF_MACHINE=40 LIBC_CROSS=libc6-dev-armhf-cross ;;
  *) echo "PI_ARCH must be arm64 or armhf" >&2; exit 2 ;;
esac

# Every binary crate of the workspace is built, so daemons added later (ndefender-remoteid,
# ndefender-fleet, ...) come along without editing this script; only the development tools
# (demo, simulators, load generator) and the test harness are left out.
PI_EXCLUDE=(ndefender-devkit ndefender-tests)
PI_FEATURES=(ndefender-antsdr-scan/iio)
# The daemons whose --check-config runs under qemu (those not in the workspace are reported).
PI_DAEMONS=(ndefender-aggregator ndefender-system-controller ndefender-antsdr-scan ndefender-remoteid ndefender-fleet)

PI_DEBS=(
  rustc-web cargo-web "libstd-rust-web-dev:$PI_ARCH"   # Debian's Rust 1.96 and the target's std
  "gcc-$GNU" "$LIBC_CROSS"                            # linker and C compiler (rusqlite bundled, ...)
  pkg-config
  "libasound2-dev:$PI_ARCH" "libudev-dev:$PI_ARCH" "libiio-dev:$PI_ARCH" "libpcap-dev:$PI_ARCH"
  qemu-user-static                                    # runs the result here
)

pi_ensure_packages() {
  local missing
  mapfile -t missing < <(missing_debian_packages "${PI_DEBS[@]}")
  if [ "${#missing[@]}" -eq 0 ]; then
    return 0
  fi
  if ! dpkg --print-foreign-architectures | grep -qx "$PI_ARCH"; then
    echo "adding the $PI_ARCH architecture to dpkg" >&2
    if [ "$(id -u)" -ne 0 ]; then sudo dpkg --add-architecture "$PI_ARCH"; else dpkg --add-architecture "$PI_ARCH"; fi
  fi
  apt_install "${missing[@]}"
}

# The environment of Debian's cargo for the cross build.
pi_env() {
  local up=${TRIPLE^^}
  up=${up//-/_}
  local low=${TRIPLE//-/_}
  export RUSTC=/usr/bin/rustc
  export CARGO_TARGET_DIR="$ROOT/target/debian-cross"
  export "CARGO_TARGET_${up}_LINKER=$GNU-gcc"
  # C code built by build scripts (e.g. rusqlite's bundled SQLite) uses the cross gcc.
  export "CC_${low}=$GNU-gcc" "AR_${low}=$GNU-ar"
  # -sys crates find the target's libraries (libasound, libudev, libiio, libpcap) in the
  # multiarch directory the :<arch> dev packages install, never the host's .pc files.
  export PKG_CONFIG_ALLOW_CROSS=1
  export "PKG_CONFIG_LIBDIR_${low}=/usr/lib/$GNU/pkgconfig:/usr/share/pkgconfig"
}

PI_BIN_DIR="$ROOT/target/debian-cross/$TRIPLE/release"

# A subshell: the cross environment (RUSTC, CARGO_TARGET_DIR, ...) must not reach the host
# cargo that runs the stack test afterwards.
pi_build() (
  pi_env
  local ex=()
  for e in "${PI_EXCLUDE[@]}"; do ex+=(--exclude "$e"); done
  echo "== $PI_ARCH: Debian's $(/usr/bin/cargo --version) builds the workspace's daemons for $TRIPLE"
  local t0=$SECONDS
  /usr/bin/cargo build --release --locked --target "$TRIPLE" --workspace "${ex[@]}" --bins \
    --features "$(IFS=,; echo "${PI_FEATURES[*]}")"
  echo "== $PI_ARCH build: $((SECONDS - t0)) s"
)

pi_qemu() {
  echo "$QEMU -cpu $CPU -L /"
}

pi_run() {
  local t0=$SECONDS
  echo "== $PI_ARCH binaries under $(pi_qemu)"
  local n=0
  for d in "${PI_DAEMONS[@]}"; do
    if [ ! -x "$PI_BIN_DIR/$d" ]; then
      echo "   $d: not in this workspace"
      continue
    fi
    file -b "$PI_BIN_DIR/$d" | cut -d, -f1-2 | sed "s/^/   $d: /"
    # The shipped config file, as the package installs it, must load on the target too.
    local cfg=()
    local name=${d#ndefender-}
    if [ -f "config/$name.toml" ]; then cfg=(--config "config/$name.toml"); fi
    $(pi_qemu) "$PI_BIN_DIR/$d" "${cfg[@]}" --check-config >/dev/null
    echo "   $d --check-config ${cfg[*]}: ok"
    n=$((n + 1))
  done
  [ "$n" -ge 3 ] || { echo "only $n daemons ran --check-config" >&2; exit 1; }
  # The stack test with the host's cargo (its harness, the ESP32 emulator and the WebSocket
  # clients are host code; only the daemons are the target's).
  NDEFENDER_BIN_DIR="$PI_BIN_DIR" NDEFENDER_BIN_LAUNCHER="$(pi_qemu)" NDEFENDER_ELF_MACHINE=$ELF_MACHINE \
    cargo test -p ndefender-tests --test pi --locked -- --ignored --nocapture
  echo "== $PI_ARCH under qemu: $((SECONDS - t0)) s"
}

# The target's package (scripts/package.sh) as installed on a Pi: its daemons, from the .deb's
# own tree, load their shipped configs under qemu.
pi_package() {
  local deb
  deb=$(NDEFENDER_DEB_NOBUILD=1 bash scripts/package.sh "$PI_ARCH" | tail -1)
  local tree
  tree=$(mktemp -d)
  # lintian as an unprivileged user (as root it refuses to pass), as package-test.sh does.
  cp "$deb" "$tree.deb" && chmod 0644 "$tree.deb"
  env HOME=/tmp setpriv --reuid=nobody --regid=nogroup --clear-groups \
    lintian -I --pedantic --fail-on error,warning "$tree.deb"
  echo "   $(basename "$deb"): lintian clean"
  rm -f "$tree.deb"
  dpkg-deb -x "$deb" "$tree"
  for d in "${PI_DAEMONS[@]}"; do
    local name=${d#ndefender-}
    [ -x "$tree/usr/bin/$d" ] || continue
    $(pi_qemu) "$tree/usr/bin/$d" --config "$tree/etc/ndefender/$name.toml" --check-config >/dev/null
    echo "   $(basename "$deb"): $d --check-config with its shipped config: ok"
  done
  $(pi_qemu) "$tree/usr/bin/ndefender-diag" --version
  rm -rf "$tree"
}

main() {
  local t0=$SECONDS
  pi_ensure_packages
  case "${1:-all}" in
    build) pi_build ;;
    run) pi_run ;;
    package) pi_package ;;
    all) pi_build; pi_run ;;
    *) echo "usage: pi.sh [build|run|package|all]" >&2; exit 2 ;;
  esac
  echo "== pi.sh $PI_ARCH ${1:-all}: $((SECONDS - t0)) s"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
