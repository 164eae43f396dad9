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
