#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, idempotently:
# apt-get runs only when something is missing, with sudo when not root.
set -euo pipefail

NDEFENDER_DEBS=(
  pkg-config
  libasound2-dev   # cpal/alsa (system controller audio)
  libudev-dev      # serial port enumeration
  libiio-dev       # AntSDR AD9361 through libiio (feature `iio`)
  dbus             # private dbus-daemon for the system-controller tests
  python3-dbusmock # D-Bus service mocks (belongs to /usr/bin/python3)
  gpsd gpsd-clients
  libpcap-dev      # RemoteID engine: live Wi-Fi monitor capture (pcap crate)
  logrotate lintian curl file   # the Debian package tests (scripts/package-test.sh); pi.sh installs its own
  chromium chromium-driver  # the dashboard's browser tests (issue 14): headless chromium over WebDriver
  mosquitto mosquitto-clients # MQTT broker for the uplink and fleet tests (issue 15)
)

# Prints the packages among "$@" that are not installed, one a line.
missing_debian_packages() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

# Installs "$@" with apt-get (through sudo when not root). Another apt run on the machine
# holds the lock for a while: wait for it, do not fail.
apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "installing Debian packages: $*" >&2
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "$@"
}

ensure_debian_packages() {
  local missing
  mapfile -t missing < <(missing_debian_packages "${NDEFENDER_DEBS[@]}")
  if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
  fi
}

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust (https://rustup.rs) and re-run" >&2
    exit 1
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  ensure_debian_packages
  ensure_rust
fi
