#!/usr/bin/env bash
# Installs what the build needs, if missing (idempotent): Debian's C libraries and pkg-config.
# The Swift toolchain itself must be on the machine (swift 6.x); this script says so if it is not.
set -euo pipefail

need=()
for pkg in pkg-config libzstd-dev libopenblas-dev libsndfile1-dev libjson-c-dev libsoxr-dev libkissfft-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
  if [ -x /opt/swift/usr/bin/swift ]; then
    echo "setup: add /opt/swift/usr/bin to PATH" >&2
  fi
  echo "setup: swift not found; install a Swift 6 toolchain (https://www.swift.org/install/linux/)" >&2
  exit 1
fi
