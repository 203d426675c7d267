#!/usr/bin/env bash
# Mounts bpffs and tracefs where they are missing. Never fatal: without root, say what is missing and go on.
set -uo pipefail
need() { ! grep -q " $1 $2 " /proc/self/mounts; }
if [[ $(id -u) -ne 0 ]]; then
  need /sys/fs/bpf bpf && echo "vigil: bpffs is not mounted (as root: mount -t bpf bpf /sys/fs/bpf)" >&2
  exit 0
fi
if ! grep -q ' bpf ' /proc/self/mounts; then
  mkdir -p /sys/fs/bpf && mount -t bpf bpf /sys/fs/bpf || echo "vigil: could not mount bpffs" >&2
fi
if ! grep -q ' tracefs ' /proc/self/mounts; then
  mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || echo "vigil: could not mount tracefs" >&2
fi
exit 0
