#!/bin/bash
# bench/pipeline workload: what a busy build or CI host does, as the recorder's sensors see it. Each round runs
# short-lived tools (fork, exec, exit), reads many files the way a compiler reads headers (opens), creates,
# renames, chmods and removes files, talks HTTP to a local server (connect, accept, bind, listen, TCP state
# changes) and runs git and an archiver. Only standard tools; nothing leaves the machine.
#
# usage: workload.sh WORK_DIR ROUNDS REPO
set -eu
work=$1
rounds=$2
repo=$3

mkdir -p "$work/www"
echo '<html>vigil bench</html>' > "$work/www/index.html"
# A free port: the kernel picks one for a throwaway listener (bash's /dev/tcp cannot listen, so ask Python-free:
# try a few until busybox httpd binds).
httpd=
for port in $(shuf -i 20000-60000 -n 20); do
  busybox httpd -f -p "127.0.0.1:$port" -h "$work/www" &
  httpd=$!
  sleep 0.05
  if kill -0 "$httpd" 2>/dev/null; then break; fi
  httpd=
done
[ -n "$httpd" ] || { echo "workload: busybox httpd could not bind a port" >&2; exit 1; }
trap 'kill "$httpd" 2>/dev/null || true' EXIT

for ((i = 0; i < rounds; i++)); do
  # A compiler-like read of headers: one open per file.
  grep -l -r -s 'define' /usr/include/linux/netfilter /usr/include/linux/can /usr/include/linux/usb > /dev/null || true
  cat /etc/os-release /etc/hostname /etc/passwd > /dev/null
  ls -l /usr/bin > /dev/null
  # Files: create, chmod, rename, link, remove.
  d="$work/w$i"
  mkdir -p "$d/sub"
  cp /etc/services "$d/sub/services"
  chmod 600 "$d/sub/services"
  mv "$d/sub/services" "$d/sub/services.old"
  ln -s services.old "$d/sub/link"
  rm -rf "$d"
  # Network: two HTTP clients against the local server (busybox httpd forks a handler per connection).
  curl -s -o /dev/null "http://127.0.0.1:$port/index.html"
  wget -q -O /dev/null "http://127.0.0.1:$port/index.html"
  # Tools a build runs.
  tar -cf - -C /usr/include linux/netfilter 2>/dev/null | gzip -1 > /dev/null
  git -C "$repo" --no-optional-locks log -1 --format=%H > /dev/null
  sed -n 1p /etc/passwd > /dev/null
  awk -F: '{ n++ } END { print n }' /etc/passwd > /dev/null
  sh -c 'id -u; uname -r; date +%s' > /dev/null
done
