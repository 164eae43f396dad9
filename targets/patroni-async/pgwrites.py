"""The SQL side of targets/patroni's load profile and its durability read-back, without Locust.

Importing locust monkey-patches the whole process with gevent, so what other processes need
(the read-back after a run, benchmarks/patroni_failover.py, the smoke test) lives here, and
locustfile.py loads this file from its own folder. Only pg8000 (pure Python over sockets) and
the standard library.

    python targets/patroni/pgwrites.py readback http://127.0.0.1:PORT [http://127.0.0.1:PORT2 ...]

prints every write id the database holds, one per line (exit 0), or an error (exit 1).

The writes table (created by the pg image's post-bootstrap script, database `app`):
    writes(id uuid PRIMARY KEY, client text NOT NULL, created timestamptz DEFAULT clock_timestamp())
"""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

import pg8000.native

TIMEOUT = float(os.environ.get("CONTINUUM_REQUEST_TIMEOUT", "2") or 2)
DATABASE = os.environ.get("PATRONI_APP_DATABASE", "app")
USER = os.environ.get("PATRONI_APP_USER", "app")
PASSWORD = os.environ.get("CONTINUUM_APP_PASSWORD", "continuum-app")      # test-only credentials
INSERT = "INSERT INTO writes (id, client) VALUES (CAST(:id AS uuid), :client)"
SELECT_ONE = "SELECT id::text FROM writes WHERE id = CAST(:id AS uuid)"
DatabaseError = pg8000.native.DatabaseError      # the server answered with an error


def endpoints(raw: str | None = None) -> list[tuple[str, int]]:
    """(host, port) of each URL in `raw` (default: env CONTINUUM_ENDPOINTS); scheme ignored."""
    raw = os.environ.get("CONTINUUM_ENDPOINTS", "") if raw is None else raw
    out = []
    for url in (u.strip() for u in raw.split(",")):
        if not url:
            continue
        parts = urlsplit(url if "//" in url else "//" + url)
        if not parts.hostname or not parts.port:
            raise ValueError(f"entry point {url!r} has no host:port")
        out.append((parts.hostname, parts.port))
    return out


def connect(host: str, port: int, timeout: float = TIMEOUT,
            application_name: str = "continuum-load") -> pg8000.native.Connection:
    """A session as the load's role. pg8000 applies `timeout` to the TCP connect and to every
    socket read afterwards; a statement outside BEGIN commits on its own.

    ssl_context=False: the cluster speaks no TLS (a private test network). pg8000's default
    (None) asks for TLS first and builds a fresh SSL context for every connection, loading the
    system's CA certificates: ~90 ms of CPU per connect, measured here, which under gevent stalls
    every Locust user at once, and during a failover (one reconnect after another) dominated
    the time clients took to notice the new leader."""
    return pg8000.native.Connection(USER, host=host, port=port, database=DATABASE, password=PASSWORD,
                                    timeout=timeout, application_name=application_name,
                                    ssl_context=False)


def write(conn: pg8000.native.Connection, write_id: str, client: str) -> None:
    """One write: BEGIN; INSERT; COMMIT. Returns only once COMMIT was acknowledged; raises
    otherwise (then the outcome is unknown: the COMMIT may have happened)."""
    conn.run("BEGIN")
    conn.run(INSERT, id=write_id, client=client)
    conn.run("COMMIT")


def readback(eps: list[tuple[str, int]] | None = None, timeout: float = 30.0) -> list[str]:
    """Every write id the database holds, read on the leader through an entry point.

    Raises when no entry point gives a complete answer from a primary: the audit must then be
    unknown, never a pass. One REPEATABLE READ transaction with the primary check inside it (a
    node changes role only by restarting PostgreSQL, which ends this session).
    """
    errors = []
    for host, port in eps if eps is not None else endpoints():
        try:
            conn = connect(host, port, timeout, application_name="continuum-readback")
        except Exception as e:  # noqa: BLE001 - try the next entry point, report all
            errors.append(f"{host}:{port}: {type(e).__name__}: {e}")
            continue
        try:
            conn.run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            ((standby,),) = conn.run("SELECT pg_is_in_recovery()")
            if standby:
                raise RuntimeError("answered by a replica, not the leader")
            ids = [row[0] for row in conn.run("SELECT id::text FROM writes ORDER BY id")]
            conn.run("COMMIT")
            return ids
        except Exception as e:  # noqa: BLE001
            errors.append(f"{host}:{port}: {type(e).__name__}: {e}")
        finally:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - the session may already be gone
                pass
    raise RuntimeError("read-back failed on every entry point: " + "; ".join(errors or ["no entry points"]))


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "readback":
        print("usage: pgwrites.py readback URL [URL ...]", file=sys.stderr)
        return 2
    try:
        ids = readback(endpoints(",".join(argv[1:])))
    except Exception as e:  # noqa: BLE001
        print(f"pgwrites: {e}", file=sys.stderr)
        return 1
    sys.stdout.write("".join(i + "\n" for i in ids))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
