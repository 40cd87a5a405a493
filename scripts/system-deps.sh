#!/usr/bin/env bash
# Debian packages the tests use: Mosquitto (a real MQTT broker), Chromium
# (the report and dashboard are checked in a real browser), PostgreSQL (the
# shared studio store; the tests start their own throw-away server, so the
# package must not create and start a cluster of its own) and systemd (only
# for `systemd-analyze verify` on the unit in deploy/; nothing is started),
# and gcc (the C suit firmware is built and tested with ASan/UBSan; `size`
# from binutils measures it). Installed when missing and when this machine
# can (root with apt-get); otherwise the tests that need them say they were
# skipped, and why.
set -euo pipefail
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
{ command -v cc >/dev/null 2>&1 && command -v size >/dev/null 2>&1; } || need+=(gcc libc6-dev binutils)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: missing ${need[*]} (install them with apt-get as root)" >&2
  exit 0
fi
echo "system-deps: installing ${need[*]}" >&2
if [[ " ${need[*]} " == *" postgresql "* ]]; then
  # no default cluster: it would start a server on port 5432 that nothing uses
  # (set before the package is installed; the existing file is kept: --force-confold)
  mkdir -p /etc/postgresql-common
  conf=/etc/postgresql-common/createcluster.conf
  if ! grep -qs '^create_main_cluster *= *false' "$conf"; then
    echo "create_main_cluster = false" >> "$conf"
  fi
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confold "${need[@]}" >/dev/null
