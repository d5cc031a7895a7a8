#!/usr/bin/env bash
# The Debian package on this machine (needs root; CI runs as root):
#  1. install: dpkg -i of the amd64 package; files, users, groups, ownership, units enabled and
#     not started, `systemd-analyze verify` and `security --offline` on the installed units, the
#     logrotate config doing a copytruncate rotation, ndefender-diag on the installed configs;
#     then purge, and only what Debian policy keeps is left (the system users).
#  2. upgrade: two package versions built here (the second ships a changed config); the old one
#     installed, state written (a changed config with an api key, tail checkpoints of the
#     installed aggregator run as its own user), the new one installed over it: configs, key and
#     checkpoints kept, and the new aggregator resumes its feed exactly where the old one stopped.
#
#   bash scripts/package-test.sh            # builds the package first (scripts/package.sh amd64)
#   NDEFENDER_DEB_NOBUILD=1 bash scripts/package-test.sh   # with the release binaries as built
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

if [ "$(id -u)" -ne 0 ]; then
  if [ -n "${CI:-}" ]; then echo "package-test.sh must run as root in CI" >&2; exit 1; fi
  echo "SKIPPED: the package install test needs root (dpkg -i); CI runs it as root"
  exit 0
fi

PASS=0
FAIL=0
check() {
  local what=$1
  shift
  if "$@"; then
    PASS=$((PASS + 1))
    echo "ok   $what"
  else
    FAIL=$((FAIL + 1))
    echo "FAIL $what"
  fi
}

WORK=$(mktemp -d)
AGG_PID=""
cleanup() {
  if [ -n "$AGG_PID" ]; then kill "$AGG_PID" 2>/dev/null || true; wait "$AGG_PID" 2>/dev/null || true; fi
  if dpkg-query -W -f='${Status}' ndefender 2>/dev/null | grep -q "ok installed"; then
    dpkg_locked --purge ndefender >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# dpkg refuses at once when another apt/dpkg run holds its lock: wait for it (at most 10 min).
dpkg_locked() {
  local i
  for i in $(seq 1 120); do
    if out=$(dpkg "$@" 2>&1); then
      echo "$out"
      return 0
    fi
    if ! grep -q "dpkg frontend lock\|dpkg status database is locked" <<<"$out"; then
      echo "$out" >&2
      return 1
    fi
    sleep 5
  done
  echo "dpkg lock still held after 10 minutes" >&2
  return 1
}

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
OLD="$VERSION~old1"
echo "== building ndefender $OLD (amd64)"
DEB_OLD=$(NDEFENDER_DEB_VERSION=$OLD bash scripts/package.sh amd64 | tail -1)
# The newer version: the same tree with a higher version and a changed shipped config (dpkg then
# has to choose between the admin's file and the package's).
rm -rf "$WORK/new" && dpkg-deb -R "$DEB_OLD" "$WORK/new"
sed -i "s/^Version: .*/Version: $VERSION/" "$WORK/new/DEBIAN/control"
echo "# shipped by $VERSION" >> "$WORK/new/etc/ndefender/aggregator.toml"
DEB_NEW="$WORK/ndefender_${VERSION}_amd64.deb"
dpkg-deb --root-owner-group -Zgzip --build "$WORK/new" "$DEB_NEW" >/dev/null

# lintian as an unprivileged user (as root it refuses to pass); the tags that remain are
# overridden in the package with their reason (packaging/lintian-overrides).
cp "$DEB_OLD" "$WORK/lintian.deb" && chmod 0755 "$WORK" && chmod 0644 "$WORK/lintian.deb"
check "lintian --pedantic: no error, no warning" env HOME=/tmp setpriv --reuid=nobody --regid=nogroup \
  --clear-groups lintian -I --pedantic --fail-on error,warning "$WORK/lintian.deb"

if dpkg-query -W -f='${Status}' ndefender 2>/dev/null | grep -q "ok installed"; then
  echo "a previous ndefender is installed: purging it first"
  dpkg_locked --purge ndefender >/dev/null
fi

owner() { stat -c '%U:%G %a' "$1"; }
in_group() { id -nG "$1" | tr ' ' '\n' | grep -qx "$2"; }

echo "== 1. install"
check "dpkg -i $(basename "$DEB_OLD")" dpkg_locked -i "$DEB_OLD"
for b in ndefender-aggregator ndefender-system-controller ndefender-antsdr-scan ndefender-diag; do
  check "/usr/bin/$b installed, executable" test -x "/usr/bin/$b"
done
UNITS=(ndefender-aggregator ndefender-system-controller ndefender-antsdr-scan)
for u in "${UNITS[@]}"; do
  check "$u.service installed" test -f "/lib/systemd/system/$u.service"
  check "$u.service enabled (multi-user.target.wants)" test -L "/etc/systemd/system/multi-user.target.wants/$u.service"
done
check "no daemon started by the install" bash -c '! pgrep -f "^/usr/bin/ndefender-" >/dev/null'
check "udev rule" test -f /lib/udev/rules.d/99-ndefender-esp32.rules
check "polkit rule" test -f /usr/share/polkit-1/rules.d/50-ndefender.rules
check "logrotate config (conffile)" test -f /etc/logrotate.d/ndefender
check "journald caps" test -f /usr/lib/systemd/journald.conf.d/60-ndefender.conf
for c in aggregator system-controller antsdr-scan; do
  check "/etc/ndefender/$c.toml root:ndefender 640" test "$(owner /etc/ndefender/$c.toml)" = "root:ndefender 640"
  check "/etc/ndefender/$c.toml is a conffile" grep -qx "/etc/ndefender/$c.toml" /var/lib/dpkg/info/ndefender.conffiles
done
check "group ndefender" getent group ndefender
for u in ndefender-aggregator ndefender-controller ndefender-scanner ndefender-remoteid; do
  check "system user $u (nologin, group ndefender)" bash -c \
    "getent passwd $u | grep -q ':/usr/sbin/nologin\$' && [ \$(id -gn $u) = ndefender ] && [ \$(id -u $u) -lt 1000 ]"
done
check "aggregator user in dialout" in_group ndefender-aggregator dialout
check "controller user in audio" in_group ndefender-controller audio
check "scanner user in plugdev" in_group ndefender-scanner plugdev
check "the aggregator's user is not in the controller's groups" bash -c '! id -nG ndefender-aggregator | grep -qw audio'
check "/opt/ndefender/logs root:ndefender 2775" test "$(owner /opt/ndefender/logs)" = "root:ndefender 2775"
check "/var/lib/ndefender exists" test -d /var/lib/ndefender

# The installed units: verify (binaries, users, directives) and their exposure scores.
UNIT_FILES=()
for u in "${UNITS[@]}"; do UNIT_FILES+=("/lib/systemd/system/$u.service"); done
VERIFY=$(systemd-analyze verify "${UNIT_FILES[@]}" 2>&1 || echo "exit status $?")
check "systemd-analyze verify of the installed units: clean" test -z "$VERIFY"
if [ -n "$VERIFY" ]; then echo "$VERIFY" | sed 's/^/     /'; fi
score() { systemd-analyze security --offline=yes --no-pager "/lib/systemd/system/$1.service" 2>/dev/null | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p'; }
for pair in ndefender-aggregator:3.0 ndefender-antsdr-scan:3.0 ndefender-system-controller:4.5; do
  u=${pair%%:*} max=${pair#*:} s=$(score "$u")
  check "$u exposure $s <= $max" python3 -c "import sys; sys.exit(0 if 0 < float('${s:-99}') <= $max else 1)"
done

# logrotate: a forced rotation of a feed copies and truncates it, under a distinct name.
if command -v logrotate >/dev/null; then
  printf '{"line":1}\n{"line":2}\n' > /opt/ndefender/logs/pkgtest.jsonl
  chgrp ndefender /opt/ndefender/logs/pkgtest.jsonl
  check "logrotate -f rotates with copytruncate" bash -c \
    "logrotate -f -s $WORK/logrotate.state /etc/logrotate.d/ndefender && [ ! -s /opt/ndefender/logs/pkgtest.jsonl ] && ls /opt/ndefender/logs/ | grep -q '^pkgtest.jsonl-logrotate-'"
  rm -f /opt/ndefender/logs/pkgtest.jsonl*
else
  check "logrotate installed (scripts/deps.sh)" false
fi

# ndefender-diag on the installed configs with nothing running: a bundle naming what failed.
check "ndefender-diag writes a bundle on the installed configs" bash -c \
  "cd $WORK && /usr/bin/ndefender-diag --out $WORK/diag.tar.gz --timeout-s 2 >/dev/null 2>&1 && tar -xzOf $WORK/diag.tar.gz --wildcards '*/failures.txt' | grep -q 'daemons/aggregator/health.json'"

echo "== purge"
check "dpkg --purge ndefender" dpkg_locked --purge ndefender
LEFT=$(ls -d /usr/bin/ndefender-* /lib/systemd/system/ndefender-* /etc/ndefender /var/lib/ndefender \
  /opt/ndefender /lib/udev/rules.d/99-ndefender-esp32.rules /usr/share/polkit-1/rules.d/50-ndefender.rules \
  /etc/logrotate.d/ndefender /usr/lib/systemd/journald.conf.d/60-ndefender.conf \
  /etc/systemd/system/multi-user.target.wants/ndefender-* /var/lib/systemd/deb-systemd-helper-enabled/ndefender-* \
  2>/dev/null || true)
check "nothing left but the system users${LEFT:+ (left: $LEFT)}" test -z "$LEFT"
check "no statoverride left" bash -c '! dpkg-statoverride --list | grep -q /etc/ndefender'
check "system users kept (Debian policy)" getent passwd ndefender-aggregator

echo "== 2. upgrade $OLD -> $VERSION"
check "dpkg -i $OLD" dpkg_locked -i "$DEB_OLD"
UID_BEFORE=$(id -u ndefender-aggregator)
KEY="upgrade-key-$RANDOM$RANDOM"
sed -i "0,/^api_key = .*/s//api_key = \"$KEY\"/" /etc/ndefender/aggregator.toml
FEED=/opt/ndefender/logs/remoteid_engine.jsonl
install -o root -g ndefender -m 0664 /dev/null "$FEED"
# What StateDirectory= does under systemd (no systemd runs here).
install -d -o ndefender-aggregator -g ndefender -m 0750 /var/lib/ndefender/aggregator
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

rid_line() {
  local t
  t=$(date +%s%3N)
  printf '{"type":"CONTACT_NEW","timestamp_ms":%s,"source":"remoteid","data":{"id":"rid:up%s","type":"REMOTE_ID","last_seen_ts":%s,"lat":48.1,"lon":11.5}}\n' "$t" "$1" "$t"
}
# The installed aggregator as its own user with the installed config; only the feed under test.
start_aggregator() {
  setpriv --reuid=ndefender-aggregator --regid=ndefender --init-groups --inh-caps=-all \
    env NDEFENDER_SERVER__BIND="127.0.0.1:$PORT" NDEFENDER_ESP32__ENABLED=false \
    NDEFENDER_ANTSDR__ENABLED=false NDEFENDER_SYSTEM_CONTROLLER__ENABLED=false RUST_LOG=warn \
    /usr/bin/ndefender-aggregator --config /etc/ndefender/aggregator.toml 2>>"$WORK/aggregator.log" &
  AGG_PID=$!
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/api/v1/health" >/dev/null && return 0
    sleep 0.1
  done
  cat "$WORK/aggregator.log" >&2
  return 1
}
stop_aggregator() {
  kill -TERM "$AGG_PID"
  wait "$AGG_PID"
  local rc=$?
  AGG_PID=""
  return $rc
}
metric() {
  curl -sf -H "X-API-Key: $KEY" "http://127.0.0.1:$PORT/metrics" | awk -v s="$1" 'index($0, s" ") == 1 { print $2 }'
}
lines_seen() {
  curl -sf -H "X-API-Key: $KEY" "http://127.0.0.1:$PORT/metrics" \
    | awk '/^aggregator_feed_lines_total\{feed="remoteid"/ { n += $2 } END { print n + 0 }'
}
wait_offset() {
  local want
  want=$(stat -c %s "$FEED")
  for _ in $(seq 1 100); do
    [ "$(metric 'aggregator_feed_offset_bytes{feed="remoteid"}')" = "$want" ] && return 0
    sleep 0.1
  done
  return 1
}

check "old aggregator starts as ndefender-aggregator with the installed config" start_aggregator
for i in 1 2 3 4 5; do rid_line "$i" >> "$FEED"; done
check "old aggregator read the 5 lines" wait_offset
check "old aggregator stops cleanly on SIGTERM" stop_aggregator
CP=/var/lib/ndefender/aggregator/tail-remoteid.json
check "checkpoint written, owned by the aggregator's user" test "$(stat -c %U "$CP" 2>/dev/null)" = ndefender-aggregator
CP_BEFORE=$(cat "$CP" 2>/dev/null || true)
# Written while the aggregator is stopped (and being upgraded): must be read after the upgrade.
for i in 6 7 8; do rid_line "$i" >> "$FEED"; done

check "dpkg -i --force-confold $VERSION over $OLD" dpkg_locked --force-confold -i "$DEB_NEW"
check "installed version is $VERSION" test "$(dpkg-query -W -f='${Version}' ndefender)" = "$VERSION"
check "the admin's config kept (api key)" grep -q "^api_key = \"$KEY\"" /etc/ndefender/aggregator.toml
check "the package's new config beside it (.dpkg-dist)" grep -q "shipped by $VERSION" /etc/ndefender/aggregator.toml.dpkg-dist
check "config still root:ndefender 640" test "$(owner /etc/ndefender/aggregator.toml)" = "root:ndefender 640"
check "checkpoint kept unchanged" test "$(cat "$CP" 2>/dev/null)" = "$CP_BEFORE"
check "feed kept" test "$(wc -l < "$FEED")" = 8
check "same uid for the aggregator's user" test "$(id -u ndefender-aggregator)" = "$UID_BEFORE"
check "new aggregator starts" start_aggregator
check "new aggregator caught up to the end of the feed" wait_offset
check "new aggregator read exactly the 3 lines written while stopped (resumed, not re-read, not skipped)" \
  test "$(lines_seen)" = 3
check "the drones of those lines are contacts" bash -c \
  "curl -sf -H 'X-API-Key: $KEY' http://127.0.0.1:$PORT/api/v1/contacts | grep -q 'rid:up8'"
check "new aggregator stops cleanly" stop_aggregator
check "dpkg --purge after the upgrade" dpkg_locked --purge ndefender
check "purge removed the state and the configs" bash -c '! ls -d /var/lib/ndefender /etc/ndefender /opt/ndefender 2>/dev/null'

echo "package: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
