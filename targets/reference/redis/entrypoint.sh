#!/bin/sh
# continuum-redis redis|sentinel — start one ledger data-tier node.
#
# The instance name comes from the container's hostname (the harness sets it to the instance
# name: redis-1, sentinel-2, ...). The config is written from the template only on the first
# start: on a restart the file Redis/Sentinel rewrote (current primary, epochs, known
# sentinels) is kept, so a restarted node rejoins the group with what it already knew.
#
# Environment:
#   LEDGER_PRIMARY              initial primary's instance name (default redis-1)
#   LEDGER_MASTER_NAME          Sentinel master group name (default ledger)
#   REDIS_MIN_REPLICAS_TO_WRITE refuse writes with fewer healthy replicas (default 1; 0 = off)
#   REDIS_MIN_REPLICAS_MAX_LAG  seconds since a replica's last ack to count it (default 3)
#   SENTINEL_QUORUM             (default 2)
#   SENTINEL_DOWN_AFTER_MS      (default 2000)
#   SENTINEL_FAILOVER_TIMEOUT_MS (default 6000)
#   REDIS_PASSWORD              required of every client, replica and Sentinel (requirepass,
#                               masterauth, auth-pass, sentinel-pass). Refused when empty:
#                               the ledger never runs without authentication.
#   REDISCLI_AUTH               the same password for redis-cli (healthchecks, the harness's
#                               role queries, operators): read from the environment, never argv
#
# It runs as the `redis` user (the image's USER), not root.
set -eu

password="${REDIS_PASSWORD:-}"
if [ -z "$password" ]; then
  echo "continuum-redis: REDIS_PASSWORD is empty; refusing to start without authentication" >&2
  exit 64
fi

role="${1:-redis}"
name="$(hostname)"
primary="${LEDGER_PRIMARY:-redis-1}"
master_name="${LEDGER_MASTER_NAME:-ledger}"
mkdir -p /data
cd /data

# Bound DNS stalls. Looking up a stopped container's name makes Docker's embedded DNS forward
# the query to the host's resolvers; an unanswered query would freeze Redis/Sentinel's single
# event loop for glibc's default 5 s (Sentinel then enters TILT and never fails over). One
# second, one attempt keeps every stall under Sentinel's 2 s TILT trigger. As a non-root user
# we cannot edit /etc/resolv.conf: glibc reads the same options from RES_OPTIONS (set in the
# image); the file is still amended when it is writable.
export RES_OPTIONS="${RES_OPTIONS:-timeout:1 attempts:1}"
if [ -w /etc/resolv.conf ] && ! grep -q 'timeout:1' /etc/resolv.conf; then
  echo 'options timeout:1 attempts:1' >>/etc/resolv.conf || true
fi

# A restore (x-continuum.restore in compose.yaml) copies an RDB snapshot to /data/restore.rdb
# of a fresh container before it first starts. With `appendonly yes` Redis 7.0 loads only the
# AOF and ignores dump.rdb (measured: it starts empty), so the snapshot becomes the base of a
# new multi-part AOF, exactly as Redis itself lays one out (a base in RDB format, no increments
# yet). Only when there is no AOF: a node that has its own data never has it replaced.
seed_restored_dump() {
  if [ -f /data/restore.rdb ] && [ ! -e /data/appendonlydir ]; then
    mkdir /data/appendonlydir.tmp
    mv /data/restore.rdb /data/appendonlydir.tmp/appendonly.aof.1.base.rdb
    : >/data/appendonlydir.tmp/appendonly.aof.1.incr.aof
    printf 'file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n' \
      >/data/appendonlydir.tmp/appendonly.aof.manifest
    mv /data/appendonlydir.tmp /data/appendonlydir
    echo "continuum-redis: seeded the AOF from the restored snapshot /data/restore.rdb" >&2
  fi
}

case "$role" in
  redis)
    conf=/data/redis.conf
    if [ ! -f "$conf" ]; then
      cp /etc/continuum/redis.conf.tmpl "$conf.tmp"
      {
        echo "requirepass $password"
        echo "masterauth $password"
        echo "replica-announce-ip $name"
        echo "min-replicas-to-write ${REDIS_MIN_REPLICAS_TO_WRITE:-1}"
        echo "min-replicas-max-lag ${REDIS_MIN_REPLICAS_MAX_LAG:-3}"
        if [ "$name" != "$primary" ]; then
          echo "replicaof $primary 6379"
        fi
      } >>"$conf.tmp"
      mv "$conf.tmp" "$conf"
    fi
    seed_restored_dump
    exec redis-server "$conf"
    ;;
  sentinel)
    conf=/data/sentinel.conf
    if [ ! -f "$conf" ]; then
      cp /etc/continuum/sentinel.conf.tmpl "$conf.tmp"
      {
        echo "requirepass $password"
        echo "sentinel sentinel-pass $password"
        echo "sentinel announce-ip $name"
        echo "sentinel monitor $master_name $primary 6379 ${SENTINEL_QUORUM:-2}"
        echo "sentinel auth-pass $master_name $password"
        echo "sentinel down-after-milliseconds $master_name ${SENTINEL_DOWN_AFTER_MS:-2000}"
        echo "sentinel failover-timeout $master_name ${SENTINEL_FAILOVER_TIMEOUT_MS:-6000}"
        echo "sentinel parallel-syncs $master_name 1"
      } >>"$conf.tmp"
      mv "$conf.tmp" "$conf"
    fi
    # Sentinel refuses to start when the monitored host name does not resolve yet; wait a
    # little for DNS instead of crash-looping (bounded: 30 s).
    i=0
    while [ $i -lt 60 ] && ! getent hosts "$(awk '$1=="sentinel" && $2=="monitor" {print $4; exit}' "$conf")" >/dev/null 2>&1; do
      i=$((i + 1)); sleep 0.5
    done
    exec redis-server "$conf" --sentinel
    ;;
  *)
    echo "usage: continuum-redis redis|sentinel" >&2
    exit 64
    ;;
esac
