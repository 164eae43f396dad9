#!/bin/sh
# dockerd in a loop: a test stops it on purpose (an "engine restart") and it comes back.
# The API socket is in /run/engine2, a directory the host bind-mounts, so the host reaches it.
# Address pools away from the outer engine's, so nothing overlaps even in routing tables.
set -u

# Not `--privileged` (the machines' own bounding set lacks a capability, which privileged
# asks for): the cgroup file systems Docker mounts read-only are mounted again, writable, in
# this container's own cgroup namespace (started with --cgroupns private), so the inner
# runc can make cgroups below this container's and nowhere else.
if [ ! -f /sys/fs/cgroup/cgroup.controllers ]; then
  awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i+1) == "cgroup" || $(i+1) == "cgroup2") print $5, $(i+1), $(i+3) } }' \
    /proc/self/mountinfo > /tmp/cgroups
  mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
  while read -r path fstype opts; do
    mkdir -p "$path"
    opts=$(echo "$opts" | sed -e 's/^r[ow],\{0,1\}//')
    if [ "$fstype" = cgroup2 ]; then
      mount -t cgroup2 cgroup2 "$path"
    else
      mount -t cgroup -o "$opts" cgroup "$path"
    fi
  done < /tmp/cgroups
fi

mkdir -p /run/engine2
n=0
while [ ! -e /run/engine2/stop ]; do
  n=$((n + 1))
  echo "$(date +%T) dockerd start $n" >> /run/engine2/dockerd.log
  # TLS on TCP too once the test wrote certificates (SecondEngine.enable_tls): a remote engine.
  tls=""
  if [ -f /run/engine2/tls/server-cert.pem ]; then
    tls="--host=tcp://0.0.0.0:2376 --tlsverify --tlscacert=/run/engine2/tls/ca.pem"
    tls="$tls --tlscert=/run/engine2/tls/server-cert.pem --tlskey=/run/engine2/tls/server-key.pem"
  fi
  # shellcheck disable=SC2086 # $tls is a list of flags
  dockerd --host=unix:///run/engine2/docker.sock $tls --data-root=/var/lib/docker \
    --pidfile=/run/engine2/dockerd.pid --bip=10.214.0.1/24 \
    --default-address-pool base=10.215.0.0/16,size=24 \
    --shutdown-timeout=2 --log-level=warn >> /run/engine2/dockerd.log 2>&1
  echo "$(date +%T) dockerd exited $?" >> /run/engine2/dockerd.log
  sleep 0.3
done
