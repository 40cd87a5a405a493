#!/usr/bin/env bash
# Debian packages the tests use: Mosquitto (a real MQTT broker) and Chromium
# (the report and dashboard are checked in a real browser), and a C compiler
# (gcc: the suit firmware in firmware/ is built and tested with ASan/UBSan,
# and `size` from binutils measures it). Installed when
# missing and when this machine can (root with apt-get); otherwise the tests
# that need them say they were skipped, and why.
set -euo pipefail
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
{ command -v cc >/dev/null 2>&1 && command -v size >/dev/null 2>&1; } || need+=(gcc libc6-dev binutils)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: missing ${need[*]} (install them with apt-get as root)" >&2
  exit 0
fi
echo "system-deps: installing ${need[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
