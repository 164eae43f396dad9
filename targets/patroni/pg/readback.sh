#!/bin/sh
# continuum-readback: print every write id the cluster holds, one per line, sorted; exit 0 only
# when the list is complete and came from the leader.
#
#   docker exec <leader container> continuum-readback
#
# Run it on the current leader (ask each node: `curl -fsS http://127.0.0.1:8008/primary`
# answers 200 only there). On a replica it refuses (exit 3): a replica may be behind, and a
# list that is silently short would count as lost writes that were not lost. The check and the
# read are one transaction, so the node cannot change role between them (a promotion or a
# demotion restarts or ends every session).
# Exit codes: 0 complete list on stdout; 3 not the leader / any SQL error; 2 cannot connect.
set -eu
exec psql -X -q -At -v ON_ERROR_STOP=1 -d app <<'SQL'
BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
DO $$ BEGIN
  IF pg_is_in_recovery() THEN
    RAISE EXCEPTION 'continuum-readback: this node is a replica (in recovery); run it on the leader';
  END IF;
END $$;
COPY (SELECT id FROM writes ORDER BY id) TO STDOUT;
COMMIT;
SQL
