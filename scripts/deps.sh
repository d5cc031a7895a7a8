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

ensure_debian_packages() {
  local missing=()
  for p in "${NDEFENDER_DEBS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    return 0
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "installing Debian packages: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
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
