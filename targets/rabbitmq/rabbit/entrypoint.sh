#!/bin/bash
# Start one RabbitMQ node of the cluster, configured from the environment:
#
#   RABBIT_PEERS               comma-separated hostnames of every node (required), e.g.
#                              rabbit-1,rabbit-2,rabbit-3; node names are rabbit@<hostname>
#   RABBIT_ERLANG_COOKIE       the shared Erlang cookie (required): nodes and CLI tools with
#                              different cookies cannot talk to each other
#   RABBIT_PARTITION_HANDLING  pause_minority (default) | autoheal | ignore
#   RABBIT_NET_TICKTIME        seconds before a silent peer is declared down (default 60)
#   RABBIT_USER, RABBIT_PASS   the one user, created on the first node's first boot
#                              (default continuum / continuum)
#
# Runs again, idempotently, on every container start (a killed node restarted keeps its data
# in the container's filesystem and rejoins the cluster it knew).
set -euo pipefail

die() { echo "continuum-rabbit: $*" >&2; exit 64; }

: "${RABBIT_PEERS:?set RABBIT_PEERS to the comma-separated hostnames of every node}"
: "${RABBIT_ERLANG_COOKIE:?set RABBIT_ERLANG_COOKIE (shared by every node)}"
partition=${RABBIT_PARTITION_HANDLING:-pause_minority}
ticktime=${RABBIT_NET_TICKTIME:-60}
user=${RABBIT_USER:-continuum}
pass=${RABBIT_PASS:-continuum}

case "$partition" in
  pause_minority|autoheal|ignore) ;;
  *) die "RABBIT_PARTITION_HANDLING must be pause_minority, autoheal or ignore, got '$partition'" ;;
esac
[[ "$ticktime" =~ ^[0-9]+$ ]] && (( ticktime >= 1 )) || die "RABBIT_NET_TICKTIME must be whole seconds >= 1"
[[ "$RABBIT_ERLANG_COOKIE" =~ ^[A-Za-z0-9_-]{16,255}$ ]] \
  || die "RABBIT_ERLANG_COOKIE must be 16-255 characters of [A-Za-z0-9_-]"

me=$(hostname -s)
IFS=, read -r -a peers <<< "$RABBIT_PEERS"
found=0
for p in "${peers[@]}"; do [[ "$p" == "$me" ]] && found=1; done
(( found )) || die "this node's hostname '$me' is not in RABBIT_PEERS ($RABBIT_PEERS)"

# The cookie: the server's copy (HOME of the rabbitmq user) and root's, for CLI tools run as
# root by `docker exec` (Debian's wrappers switch to rabbitmq, but be safe either way).
for home in /var/lib/rabbitmq /root; do
  rm -f "$home/.erlang.cookie"
  printf '%s' "$RABBIT_ERLANG_COOKIE" > "$home/.erlang.cookie"
  chmod 0400 "$home/.erlang.cookie"
done
chown rabbitmq:rabbitmq /var/lib/rabbitmq/.erlang.cookie

conf=/etc/rabbitmq/rabbitmq.conf
{
  echo "# written by continuum-rabbit-entrypoint from the container's environment"
  echo "cluster_formation.peer_discovery_backend = classic_config"
  i=0
  for p in "${peers[@]}"; do
    i=$((i + 1))
    echo "cluster_formation.classic_config.nodes.$i = rabbit@$p"
  done
  echo "cluster_partition_handling = $partition"
  echo "net_ticktime = $ticktime"
  echo "default_user = $user"
  echo "default_pass = $pass"
  echo "default_user_tags.administrator = true"
  echo "default_permissions.configure = .*"
  echo "default_permissions.read = .*"
  echo "default_permissions.write = .*"
  # Clients come in through Docker's published ports, never from loopback.
  echo "loopback_users = none"
  echo "listeners.tcp.default = 5672"
  echo "management.tcp.port = 15672"
  echo "log.console = true"
  echo "log.console.level = info"
  echo "log.file = false"
} > "$conf"
chown rabbitmq:rabbitmq "$conf"

# Keep the probe's view of the cluster in step with the config it was started with.
printf '%s\n' "$RABBIT_PEERS" > /etc/rabbitmq/continuum-peers
printf '%s:%s\n' "$user" "$pass" > /etc/rabbitmq/continuum-credentials
chmod 0600 /etc/rabbitmq/continuum-credentials

chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
# The server script traps SIGTERM and stops the node cleanly (docker stop); no shell stays
# in between: setpriv execs it as the rabbitmq user.
exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups \
  env HOME=/var/lib/rabbitmq /usr/lib/rabbitmq/bin/rabbitmq-server
