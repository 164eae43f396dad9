#!/bin/sh
# continuum-patroni: write this node's Patroni configuration and exec Patroni.
#
# The node's name is the container's hostname (the harness sets it to the instance name: pg-1,
# pg-2, pg-3); other nodes, HAProxy and the replication connections reach it by that name.
# Everything under `bootstrap.dcs` is written into etcd by the first node that initialises the
# cluster and is ignored afterwards (change it then with `patronictl edit-config`). Every knob and
# why it has this value: targets/patroni/README.md.
#
# Environment (defaults in brackets):
#   PATRONI_SCOPE                cluster name in etcd [continuum]
#   PATRONI_ETCD3_HOSTS          etcd client endpoints [etcd-1:2379,etcd-2:2379,etcd-3:2379]
#   PATRONI_TTL                  leader lease, seconds [8]
#   PATRONI_LOOP_WAIT            seconds between HA cycles [1]
#   PATRONI_RETRY_TIMEOUT        seconds DCS/PostgreSQL operations are retried [3]
#   PATRONI_SYNCHRONOUS_MODE     true: commits wait for a synchronous standby [true]
#   PATRONI_SYNCHRONOUS_MODE_STRICT  true: no writes at all without a standby [false]
#   PATRONI_MAXIMUM_LAG_ON_FAILOVER  bytes a replica may lag and still be promoted [1048576]
#   PATRONI_SUPERUSER_PASSWORD, PATRONI_REPLICATION_PASSWORD, CONTINUUM_APP_PASSWORD
#                                test-only passwords [continuum-*]
set -eu

name="$(hostname)"
scope="${PATRONI_SCOPE:-continuum}"
hosts="${PATRONI_ETCD3_HOSTS:-etcd-1:2379,etcd-2:2379,etcd-3:2379}"
ttl="${PATRONI_TTL:-8}"
loop_wait="${PATRONI_LOOP_WAIT:-1}"
retry_timeout="${PATRONI_RETRY_TIMEOUT:-3}"
sync="${PATRONI_SYNCHRONOUS_MODE:-true}"
strict="${PATRONI_SYNCHRONOUS_MODE_STRICT:-false}"
max_lag="${PATRONI_MAXIMUM_LAG_ON_FAILOVER:-1048576}"
su_pw="${PATRONI_SUPERUSER_PASSWORD:-continuum-superuser}"
repl_pw="${PATRONI_REPLICATION_PASSWORD:-continuum-replication}"
# Patroni reads PATRONI_* variables as configuration too; the ones it knows are written into
# the file below instead, so remove them to keep one source of truth.
unset PATRONI_SCOPE PATRONI_ETCD3_HOSTS PATRONI_TTL PATRONI_LOOP_WAIT PATRONI_RETRY_TIMEOUT \
      PATRONI_SYNCHRONOUS_MODE PATRONI_SYNCHRONOUS_MODE_STRICT PATRONI_MAXIMUM_LAG_ON_FAILOVER \
      PATRONI_SUPERUSER_PASSWORD PATRONI_REPLICATION_PASSWORD

# Patroni's documented rule (3.0.2 does not check it): a leader cut off from etcd retries for
# retry_timeout, so loop_wait + 2*retry_timeout must fit in ttl, or its lease could expire and
# another node be promoted while it still believes it leads.
if [ $((loop_wait + 2 * retry_timeout)) -gt "$ttl" ]; then
  echo "continuum-patroni: need loop_wait + 2*retry_timeout <= ttl (got $loop_wait + 2*$retry_timeout > $ttl)" >&2
  exit 64
fi

conf=/var/lib/postgresql/patroni.yml
etcd_hosts=""
for h in $(echo "$hosts" | tr ',' ' '); do etcd_hosts="${etcd_hosts:+$etcd_hosts, }$h"; done

cat >"$conf.tmp" <<YAML
scope: $scope
name: $name

restapi:
  listen: 0.0.0.0:8008
  connect_address: $name:8008

etcd3:
  hosts: [$etcd_hosts]
  protocol: http

bootstrap:
  dcs:
    ttl: $ttl
    loop_wait: $loop_wait
    retry_timeout: $retry_timeout
    maximum_lag_on_failover: $max_lag
    synchronous_mode: $sync
    synchronous_mode_strict: $strict
    synchronous_node_count: 1
    failsafe_mode: false
    postgresql:
      use_pg_rewind: true
      use_slots: true
      remove_data_directory_on_rewind_failure: true
      remove_data_directory_on_diverged_timelines: true
      parameters:
        max_connections: 200
        shared_buffers: 64MB
        wal_level: replica
        hot_standby: "on"
        max_wal_senders: 10
        max_replication_slots: 10
        wal_keep_size: 256MB
        # After a failover a replica's walreceiver first fails (old leader gone, then its slot
        # not yet created on the new leader) and retries only every 5 s by default; in
        # synchronous mode the new leader has no sync standby until it is back.
        wal_retrieve_retry_interval: 500ms
        wal_log_hints: "on"
        synchronous_commit: "on"
        fsync: "on"
        full_page_writes: "on"
        password_encryption: scram-sha-256
  initdb:
    - encoding: UTF8
    - locale: C
    - data-checksums
  post_bootstrap: /usr/local/bin/continuum-post-bootstrap

postgresql:
  listen: 0.0.0.0:5432
  connect_address: $name:5432
  data_dir: /var/lib/postgresql/data
  bin_dir: /usr/lib/postgresql/15/bin
  pgpass: /var/lib/postgresql/.pgpass-patroni
  # A new replica clones the leader with pg_basebackup, which by default waits for a *spread*
  # checkpoint (up to checkpoint_timeout * 0.9 = 4.5 min on an idle primary). Fast: seconds.
  basebackup:
    checkpoint: fast
  parameters:
    unix_socket_directories: /var/run/postgresql
  authentication:
    superuser:
      username: postgres
      password: "$su_pw"
    replication:
      username: replicator
      password: "$repl_pw"
  pg_hba:
    - local all all peer
    - host replication replicator 0.0.0.0/0 scram-sha-256
    - host all all 0.0.0.0/0 scram-sha-256

tags:
  nofailover: false
  noloadbalance: false
  clonefrom: false
  nosync: false
YAML
mv "$conf.tmp" "$conf"
chmod 0600 "$conf"
exec patroni "$conf"
