#!/bin/sh
# continuum-etcd: start one etcd member named after the container's hostname (the harness sets
# it to the instance name: etcd-1, etcd-2, etcd-3).
#
# Environment:
#   ETCD_CLUSTER_MEMBERS  the initial members, comma-separated (default etcd-1,etcd-2,etcd-3)
#   ETCD_CLUSTER_TOKEN    initial cluster token (default continuum-patroni)
#   ETCD_HEARTBEAT_MS     raft heartbeat interval (default 100, etcd's default)
#   ETCD_ELECTION_MS      raft election timeout (default 1000, etcd's default)
# These four are ours and are removed from the environment before etcd starts: etcd reads every
# ETCD_* variable as a flag and warns about the ones it does not know. Other ETCD_* variables
# (ETCD_LOG_LEVEL, ...) pass through to etcd.
set -eu

name="$(hostname)"
members="${ETCD_CLUSTER_MEMBERS:-etcd-1,etcd-2,etcd-3}"
token="${ETCD_CLUSTER_TOKEN:-continuum-patroni}"
heartbeat="${ETCD_HEARTBEAT_MS:-100}"
election="${ETCD_ELECTION_MS:-1000}"
unset ETCD_CLUSTER_MEMBERS ETCD_CLUSTER_TOKEN ETCD_HEARTBEAT_MS ETCD_ELECTION_MS

initial=""
for m in $(echo "$members" | tr ',' ' '); do
  initial="${initial:+$initial,}$m=http://$m:2380"
done

data=/var/lib/etcd/member-data
# A restarted member (after a kill) keeps its data directory and rejoins with it; the
# initial-cluster flags are then ignored by etcd.
state=new
if [ -d "$data/member" ]; then
  state=existing
fi

exec etcd \
  --name "$name" \
  --data-dir "$data" \
  --listen-client-urls http://0.0.0.0:2379 \
  --advertise-client-urls "http://$name:2379" \
  --listen-peer-urls http://0.0.0.0:2380 \
  --initial-advertise-peer-urls "http://$name:2380" \
  --initial-cluster "$initial" \
  --initial-cluster-token "$token" \
  --initial-cluster-state "$state" \
  --heartbeat-interval "$heartbeat" \
  --election-timeout "$election" \
  --logger zap --log-outputs stderr
