"""Load profile for targets/patroni: SQL writes with client-generated ids, and reads, over pg8000.

Self-contained (no harness imports). The harness sets:
  CONTINUUM_ENDPOINTS        comma-separated entry points, e.g. http://127.0.0.1:41234 (both
                             HAProxies); only host and port are used, the scheme is ignored
  CONTINUUM_REQUEST_TIMEOUT  seconds for each connect and each round trip (default 2)

`writes` (class `Writes`): 3 writes to 1 read.
  write  BEGIN; INSERT INTO writes (id, client) VALUES (<uuid4>, <user>); COMMIT. Fired with
         context={"write_id": id}; it succeeds only when COMMIT is acknowledged, so the harness
         records it as acknowledged then and as unknown on any error (the COMMIT may or may not
         have happened). The id is the primary key: a write can exist at most once.
  read   SELECT of one of this user's own acknowledged ids, on the leader (through HAProxy).
         A row that is missing is a failed read ("AcknowledgedWriteMissing"): the database lost
         a write it acknowledged to this very client.

Connections. Each user holds one connection (pg8000 is pure Python over sockets, so it yields
to gevent like any Locust client) and prefers one HAProxy (users are spread round-robin). On any
connection error the connection is dropped; the next request reconnects, trying each entry point
once, the current one first, so users follow the leader through HAProxy after a failover and
move to the other HAProxy if theirs is gone. After a failed connect a user backs off (50 ms
doubling to 400 ms) so a failover does not turn into a busy loop of refused connections; every
attempt is still reported. We never send a cancel request: PostgreSQL answers a cancelled
COMMIT that waits for its synchronous standby with success ("canceling wait for synchronous
replication ... committed locally"), which would turn an unreplicated write into an
acknowledged one. A timeout closes the socket instead (outcome unknown).

The SQL, the connection and the read-back are in pgwrites.py beside this file (no Locust there,
so other processes can use them without gevent's monkey-patching); `readback` is re-exported
here for a harness that looks for it in the load module.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import random
import time
import uuid
from pathlib import Path

from locust import User, between, task

KEEP_IDS = 1000          # acknowledged ids a user remembers for its reads
BACKOFF_S = (0.05, 0.4)  # first and largest pause after a failed connect


def _load_sibling(name: str):
    """pgwrites.py from this file's folder (the harness imports a locustfile by path, without
    touching sys.path)."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"continuum_patroni_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pgwrites = _load_sibling("pgwrites")
readback = pgwrites.readback        # the read-back, for whoever imports the load module
_spread = itertools.count()


class AcknowledgedWriteMissing(Exception):
    """A read on the leader did not find a write the database had acknowledged."""


class Writes(User):
    wait_time = between(0.01, 0.05)

    def on_start(self) -> None:
        self.eps = pgwrites.endpoints() or pgwrites.endpoints(self.host or "")
        if not self.eps:
            raise RuntimeError("no entry points: set CONTINUUM_ENDPOINTS or the Locust host")
        self.current = next(_spread) % len(self.eps)
        self.client_name = f"{os.getpid()}-{id(self):x}"
        self.conn = None
        self.acked: list[str] = []
        self.backoff = 0.0

    def on_stop(self) -> None:
        self._drop()

    # ─── connection handling ───

    def _drop(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - a broken socket cannot say goodbye
                pass

    def _connection(self):
        """The open connection, or a new one: each entry point once, the current one first."""
        if self.conn is not None:
            return self.conn
        if self.backoff:
            time.sleep(self.backoff)        # gevent-patched: yields to the other users
        last: Exception | None = None
        for step in range(len(self.eps)):
            i = (self.current + step) % len(self.eps)
            host, port = self.eps[i]
            try:
                self.conn = pgwrites.connect(host, port)
            except Exception as e:  # noqa: BLE001 - refused, reset, timeout, auth...
                last = e
                continue
            self.current = i
            self.backoff = 0.0
            return self.conn
        self.backoff = min(max(self.backoff * 2, BACKOFF_S[0]), BACKOFF_S[1])
        raise last if last is not None else ConnectionError("no entry point")

    def _fire(self, name: str, t0: float, exc: Exception | None, context: dict | None = None) -> None:
        self.environment.events.request.fire(
            request_type="sql", name=name, response_time=(time.perf_counter() - t0) * 1000.0,
            response_length=0, response=None, context=context or {}, exception=exc,
        )

    # ─── tasks ───

    @task(3)
    def write(self) -> None:
        wid = str(uuid.uuid4())
        t0 = time.perf_counter()
        try:
            conn = self._connection()
            try:
                pgwrites.write(conn, wid, self.client_name)
            except pgwrites.DatabaseError:
                # The server answered with an error (read-only after a demotion, a conflict):
                # the session is still usable only if we end the failed transaction.
                self._rollback_or_drop()
                raise
            except Exception:
                self._drop()            # transport error or timeout: outcome unknown
                raise
        except Exception as e:  # noqa: BLE001 - every failure is reported, none raised
            self._fire("write", t0, e, {"write_id": wid})
            return
        self._fire("write", t0, None, {"write_id": wid})
        self.acked.append(wid)
        if len(self.acked) > KEEP_IDS:
            del self.acked[: len(self.acked) - KEEP_IDS]

    @task(1)
    def read(self) -> None:
        t0 = time.perf_counter()
        wid = random.choice(self.acked) if self.acked else None
        try:
            conn = self._connection()
            try:
                if wid is None:
                    conn.run("SELECT 1")
                else:
                    rows = conn.run(pgwrites.SELECT_ONE, id=wid)
                    if not rows:
                        raise AcknowledgedWriteMissing(f"acknowledged write {wid} is not on the leader")
            except AcknowledgedWriteMissing:
                raise
            except pgwrites.DatabaseError:
                self._rollback_or_drop()
                raise
            except Exception:
                self._drop()
                raise
        except Exception as e:  # noqa: BLE001
            self._fire("read", t0, e)
            return
        self._fire("read", t0, None)

    def _rollback_or_drop(self) -> None:
        if self.conn is None:
            return
        try:
            self.conn.run("ROLLBACK")
        except Exception:  # noqa: BLE001
            self._drop()


# The target's compose.yaml offers the profile as `writes`; both spellings name this class.
writes = Writes
