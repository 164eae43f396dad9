#!/bin/sh
# continuum-post-bootstrap CONNSTRING: run once, by Patroni, on the node that initialised the
# cluster, before it opens for clients. Creates the load profile's role, database and table.
#
# writes(id): one row per acknowledged write; the id is the client's UUID, so a retried or
# duplicated write cannot create a second row (PRIMARY KEY), and the read-back lists exactly
# the ids the database holds.
set -eu
app_pw="${CONTINUUM_APP_PASSWORD:-continuum-app}"
psql -X -v ON_ERROR_STOP=1 -v app_pw="$app_pw" -d "$1" <<'SQL'
CREATE ROLE app LOGIN PASSWORD :'app_pw';
CREATE DATABASE app OWNER app;
\connect app
SET ROLE app;
CREATE TABLE writes (
    id      uuid PRIMARY KEY,
    client  text NOT NULL,
    created timestamptz NOT NULL DEFAULT clock_timestamp()
);
SQL
