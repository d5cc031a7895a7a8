#!/usr/bin/env bash
# Builds the Debian package of the stack: one .deb per architecture (amd64, arm64), with
# dpkg-deb from a staged tree (no extra packaging tool to build in CI).
#
#   bash scripts/package.sh amd64            # target/debian/ndefender_<version>_amd64.deb
#   bash scripts/package.sh arm64            # cross build through scripts/pi.sh, then the .deb
#   NDEFENDER_DEB_VERSION=0.1.1 bash scripts/package.sh amd64   # another version (upgrade test)
#   NDEFENDER_DEB_NOBUILD=1 ...              # package the binaries already built
#
# What it holds: every daemon and tool of the workspace except the development ones (/usr/bin),
# the units (/lib/systemd/system; enabled on install, never started: the operator starts them),
# the ESP32 udev rule, the polkit rule for the controller's user, /etc/ndefender/*.toml and the
# logrotate config as conffiles, the journald size caps, the docs. The maintainer scripts
# create one system user per daemon (the User= of its unit) and the shared group ndefender,
# the state directory and the log directory, and remove the state, the logs and the unit
# state on purge (the system users stay, as Debian policy advises).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ARCH=${1:-$(dpkg --print-architecture)}
PKG=ndefender
VERSION=${NDEFENDER_DEB_VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)}
OUT="$ROOT/target/debian"

# Supplementary groups of each daemon's user (issue 13 item 6), added when the group exists
# on the machine (i2c, bluetooth and netdev are created by i2c-tools, bluez and the OS).
declare -A USER_GROUPS=(
  [ndefender-aggregator]="dialout"
  [ndefender-controller]="i2c audio bluetooth netdev"
  [ndefender-scanner]="plugdev"
  [ndefender-remoteid]=""
)

case "$ARCH" in
  amd64) BIN_DIR="$ROOT/target/release" STRIP=strip ;;
  arm64) BIN_DIR="$ROOT/target/debian-cross/aarch64-unknown-linux-gnu/release" STRIP=aarch64-linux-gnu-strip ;;
  armhf) BIN_DIR="$ROOT/target/debian-cross/armv7-unknown-linux-gnueabihf/release" STRIP=arm-linux-gnueabihf-strip ;;
  *) echo "unsupported architecture $ARCH" >&2; exit 2 ;;
esac
# Another build's binaries (e.g. a debug build while trying the packaging).
BIN_DIR=${NDEFENDER_DEB_BIN_DIR:-$BIN_DIR}

# The binaries: every bin target of the workspace's packages but the development tools and the
# test harness (the same exclusions as scripts/pi.sh), so daemons added later are packaged too.
EXCLUDE=(ndefender-devkit ndefender-tests)
bins() {
  cargo metadata --no-deps --format-version 1 --locked | python3 -c '
import json, sys
excl = set(sys.argv[1:])
for p in json.load(sys.stdin)["packages"]:
    if p["name"] in excl:
        continue
    for t in p["targets"]:
        if "bin" in t["kind"]:
            print(t["name"])
' "${EXCLUDE[@]}"
}
mapfile -t BINS < <(bins)

if [ -z "${NDEFENDER_DEB_NOBUILD:-}" ]; then
  case "$ARCH" in
    amd64)
      ex=()
      for e in "${EXCLUDE[@]}"; do ex+=(--exclude "$e"); done
      cargo build --release --locked --workspace "${ex[@]}" --bins --features ndefender-antsdr-scan/iio ;;
    arm64) bash scripts/pi.sh build ;;
    armhf) PI_ARCH=armhf bash scripts/pi.sh build ;;
  esac
fi

STAGE="$OUT/stage-$ARCH"
rm -rf "$STAGE"
mkdir -p "$STAGE/DEBIAN" "$STAGE/usr/bin" "$STAGE/lib/systemd/system" "$STAGE/lib/udev/rules.d" \
  "$STAGE/usr/share/polkit-1/rules.d" "$STAGE/etc/ndefender" "$STAGE/etc/logrotate.d" \
  "$STAGE/usr/lib/systemd/journald.conf.d" "$STAGE/usr/share/doc/$PKG" "$STAGE/usr/share/lintian/overrides"

for b in "${BINS[@]}"; do
  install -m 0755 "$BIN_DIR/$b" "$STAGE/usr/bin/$b"
  $STRIP --strip-unneeded --remove-section=.comment --remove-section=.note "$STAGE/usr/bin/$b"
done
UNITS=()
for u in systemd/*.service; do
  # The units name the package's path of the binaries.
  install -m 0644 "$u" "$STAGE/lib/systemd/system/"
  UNITS+=("$(basename "$u")")
done
install -m 0644 systemd/99-ndefender-esp32.rules "$STAGE/lib/udev/rules.d/"
install -m 0644 systemd/50-ndefender.rules "$STAGE/usr/share/polkit-1/rules.d/"
install -m 0644 systemd/ndefender.logrotate "$STAGE/etc/logrotate.d/ndefender"
install -m 0644 systemd/journald-ndefender.conf "$STAGE/usr/lib/systemd/journald.conf.d/60-ndefender.conf"
install -m 0644 packaging/lintian-overrides "$STAGE/usr/share/lintian/overrides/$PKG"
install -D -m 0644 systemd/ndefender-modules.conf "$STAGE/usr/lib/modules-load.d/ndefender.conf"
for c in config/*.toml; do install -m 0644 "$c" "$STAGE/etc/ndefender/"; done
install -m 0644 README.md ARCHITECTURE.md "$STAGE/usr/share/doc/$PKG/"
[ -f docs/DEPLOYMENT.md ] && install -m 0644 docs/DEPLOYMENT.md "$STAGE/usr/share/doc/$PKG/"
gzip -9n "$STAGE/usr/share/doc/$PKG/README.md" "$STAGE/usr/share/doc/$PKG/ARCHITECTURE.md"
[ -f "$STAGE/usr/share/doc/$PKG/DEPLOYMENT.md" ] && gzip -9n "$STAGE/usr/share/doc/$PKG/DEPLOYMENT.md"

cat > "$STAGE/usr/share/doc/$PKG/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: ndefender
Source: https://example.invalid/ndefender

Files: *
Copyright: 2026 the ndefender authors
License: MIT
 Permission is hereby granted, free of charge, to any person obtaining a copy of this software
 and associated documentation files (the "Software"), to deal in the Software without
 restriction, including without limitation the rights to use, copy, modify, merge, publish,
 distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
 Software is furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in all copies or
 substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
 BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
 NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
 DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
EOF
DATE=$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}")
printf '%s (%s) stable; urgency=medium\n\n  * Built from commit %s.\n\n -- ndefender maintainers <ndefender@example.invalid>  %s\n' \
  "$PKG" "$VERSION" "$(git rev-parse --short HEAD)" "$DATE" | gzip -9n > "$STAGE/usr/share/doc/$PKG/changelog.gz"

# Users: the User= of each unit; their supplementary groups from USER_GROUPS.
USERS=""
for u in systemd/*.service; do
  n=$(sed -n 's/^User=//p' "$u")
  if [ -n "$n" ]; then
    g=${USER_GROUPS[$n]:-}
    USERS+="$n:${g// /,} "
  fi
done
# ndefender-remoteid owns the RemoteID daemon's state even before its unit lands here.
case " $USERS " in *" ndefender-remoteid:"*) ;; *) USERS+="ndefender-remoteid: " ;; esac

CONFFILES=$(cd "$STAGE" && find etc -type f | sort | sed 's|^|/|')
printf '%s\n' "$CONFFILES" > "$STAGE/DEBIAN/conffiles"

sed -e "s|@UNITS@|${UNITS[*]}|" -e "s|@USERS@|${USERS% }|" \
  -e "s|@CONFIGS@|$(cd "$STAGE" && ls etc/ndefender/*.toml | sed 's|^|/|' | tr '\n' ' ' | sed 's/ $//')|" \
  packaging/postinst > "$STAGE/DEBIAN/postinst"
sed -e "s|@UNITS@|${UNITS[*]}|" packaging/prerm > "$STAGE/DEBIAN/prerm"
sed -e "s|@UNITS@|${UNITS[*]}|" \
  -e "s|@CONFIGS@|$(cd "$STAGE" && ls etc/ndefender/*.toml | sed 's|^|/|' | tr '\n' ' ' | sed 's/ $//')|" \
  packaging/postrm > "$STAGE/DEBIAN/postrm"
chmod 0755 "$STAGE/DEBIAN/postinst" "$STAGE/DEBIAN/prerm" "$STAGE/DEBIAN/postrm"

# Shared-library dependencies of the binaries, the way debhelper computes them.
SHLIBS=$(cd "$STAGE" && mkdir -p debian && printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$PKG" "$PKG" > debian/control \
  && DEB_HOST_ARCH=$ARCH dpkg-shlibdeps -O -e usr/bin/* 2>/dev/null | sed -n 's/^shlibs:Depends=//p'; rm -rf debian)
[ -n "$SHLIBS" ] || { echo "dpkg-shlibdeps found no dependencies" >&2; exit 1; }

# md5sums of everything but the conffiles (as dh_md5sums).
(cd "$STAGE" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -print | sed 's|^\./||' | sort \
  | xargs md5sum) > "$STAGE/DEBIAN/md5sums"

SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
cat > "$STAGE/DEBIAN/control" <<EOF
Package: $PKG
Version: $VERSION
Architecture: $ARCH
Maintainer: ndefender maintainers <ndefender@example.invalid>
Installed-Size: $SIZE
Depends: adduser, $SHLIBS
Recommends: logrotate, polkitd
Suggests: gpsd, network-manager, bluez
Section: net
Priority: optional
Homepage: https://example.invalid/ndefender
Description: field telemetry stack of the N-Defender drone-detection kit
 The daemons of a Raspberry Pi drone-detection kit: the aggregator (RemoteID and
 RF feeds, ESP32 front panel and board state merged into one snapshot and one
 contact list, REST and WebSocket on :8001), the system controller (systemd,
 NetworkManager, BlueZ, UPS, GPS and audio on :8002) and the AntSDR RF scanner
 (:8890), each with its own system user, a hardened systemd unit and its
 configuration in /etc/ndefender.
EOF

mkdir -p "$OUT"
DEB="$OUT/${PKG}_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zgzip --build "$STAGE" "$DEB" >/dev/null
echo "$DEB"
