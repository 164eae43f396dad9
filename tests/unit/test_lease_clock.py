"""The engine's clock as Docker prints it (nanoseconds, `Z`) parses to an aware UTC time: a
naive one made the janitor crash (naive minus aware) whenever another run's lease was still in
`created`, failing unrelated runs as harness errors."""

import datetime as dt

from harness.stack.lease import LeaseView, _parse_rfc3339, owner_state


def test_nanoseconds_and_zone_parse_to_an_aware_time():
    t = _parse_rfc3339("2026-12-02T07:25:56.174959811Z")
    assert t == dt.datetime(2026, 12, 2, 7, 25, 56, 174959, tzinfo=dt.timezone.utc)
    assert _parse_rfc3339("2026-12-02T08:25:56.5+01:00") == dt.datetime(2026, 12, 2, 7, 25, 56, 500000,
                                                                           tzinfo=dt.timezone.utc)
    assert _parse_rfc3339("2026-12-02T07:25:56Z").tzinfo is not None


def test_a_created_lease_is_aged_on_the_engine_clock():
    now = _parse_rfc3339("2026-12-02T07:25:56.174959811Z")
    young = LeaseView("created", (now - dt.timedelta(seconds=5)).isoformat())
    stale = LeaseView("created", (now - dt.timedelta(seconds=600)).isoformat())
    assert owner_state("r", young, now) == "starting"
    assert owner_state("r", stale, now) == "gone"


def test_acquire_retries_runcs_stopped_process_race_and_leaks_nothing():
    """runc's "cannot start a stopped process" (the lease's `cat` read EOF while starting, seen
    once under load): the failed container is removed and the lease made again; any other
    engine error is raised at once."""
    import docker

    from harness.errors import HarnessError
    from harness.stack.lease import Lease

    class API:
        def __init__(self, fail_starts: int, message: str = "cannot start a stopped process: unknown"):
            self.fail_starts, self.message = fail_starts, message
            self.made: list[str] = []
            self.removed: list[str] = []

        def create_host_config(self, **kw):
            return kw

        def create_container(self, *a, **kw):
            self.made.append(f"c{len(self.made)}")
            return {"Id": self.made[-1]}

        def attach_socket(self, *a, **kw):
            return None

        def start(self, cid):
            if self.fail_starts:
                self.fail_starts -= 1
                raise docker.errors.APIError(self.message)

        def remove_container(self, cid, force):
            self.removed.append(cid)

    class Client:
        def __init__(self, api):
            self.api = api

    api = API(fail_starts=1)
    lease = Lease(Client(api), "rtest", owner="me").acquire()
    assert lease._id == "c1" and api.made == ["c0", "c1"] and api.removed == ["c0"]
    other = API(fail_starts=1, message="no such image")
    try:
        Lease(Client(other), "rtest", owner="me").acquire()
        raise AssertionError("an unrelated engine error was retried")
    except HarnessError as exc:
        assert "no such image" in str(exc) and other.made == ["c0"]
