#!/usr/bin/env bash
# Installs the given Debian packages when any is missing. Idempotent and quiet when all are present.
set -euo pipefail
missing=()
for p in "$@"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -ne 0 ]]; then
  echo "vigil: missing Debian packages: ${missing[*]}" >&2
  echo "vigil: run as root (or: sudo apt-get install -y ${missing[*]})" >&2
  exit 1
fi
echo "vigil: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/vigil-apt.log 2>&1; then
  # Package lists may be stale or absent on a fresh machine: refresh once and retry.
  apt-get update >>/tmp/vigil-apt.log 2>&1 || true
  if ! apt-get install -y --no-install-recommends "${missing[@]}" >>/tmp/vigil-apt.log 2>&1; then
    tail -20 /tmp/vigil-apt.log >&2
    echo "vigil: apt-get install ${missing[*]} failed (full log: /tmp/vigil-apt.log)" >&2
    exit 1
  fi
fi
