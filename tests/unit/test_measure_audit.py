"""harness.measure.audit: Jepsen-style set checking, with known answers."""

from harness.measure.audit import durability
from harness.measure.synthetic import ledger_snapshot
from harness.model import AuditSnapshot, InvariantReading, ReadRecord, WriteRecord


def W(i, outcome, t=0.0):
    return WriteRecord(i, outcome, t)


def R(i, t=0.0):
    return ReadRecord(i, t)


def test_lost_unexpected_recovered_counts():
    writes = [W("a", "acked"), W("b", "acked"), W("c", "acked"), W("d", "unknown"), W("e", "unknown"),
              W("f", "unknown"), W("f", "acked")]      # f retried with the same key and acked
    d = durability(writes, ledger_snapshot({"a", "c", "d", "f", "x", "y"}, 100, 100))
    assert (d.attempted, d.acked, d.unknown) == (6, 4, 2)
    assert d.lost == 1 and d.lost_ids == ("b",)
    assert d.unexpected == 2 and d.unexpected_ids == ("x", "y")
    assert d.recovered == 1                              # d: unknown to the client, present
    assert d.duplicates == 0
    assert d.money_conserved is True and d.audited


def test_money_not_conserved_is_a_failed_invariant():
    d = durability([], ledger_snapshot(set(), 99, 100))
    assert d.money_conserved is False
    inv = d.invariant("money_conserved")
    assert inv.holds is False and (inv.value, inv.expected) == (99, 100)
    assert (d.lost, d.unexpected, d.recovered) == (0, 0, 0)


def test_no_audit_is_unknown_never_zero():
    d = durability([W("a", "acked"), W("b", "unknown")], None)
    assert not d.audited
    assert (d.acked, d.unknown) == (1, 1)
    assert d.lost is None and d.unexpected is None and d.recovered is None and d.money_conserved is None
    assert d.duplicates is None


def test_failed_read_back_is_unknown_and_says_why():
    snap = AuditSnapshot(ids=None, error="no answer within 30 s",
                         invariants=(InvariantReading("money_conserved", error="the read-back failed"),))
    d = durability([W("a", "acked")], snap)
    assert not d.audited and d.lost is None and d.error == "no answer within 30 s"
    assert d.invariant("money_conserved").holds is None


def test_duplicates_in_a_set_read_back():
    # The system committed "a" twice: a known double write must be counted.
    d = durability([W("a", "acked"), W("b", "acked")], AuditSnapshot(ids=("a", "b", "a")))
    assert d.duplicates == 1 and d.duplicate_ids == ("a",) and d.lost == 0


def test_queue_every_acked_publish_read_during_the_run_or_in_the_drain():
    writes = [W(i, "acked") for i in "abcde"] + [W("u", "unknown")]
    reads = [R("a"), R("b"), R("b"), R("c")]              # b delivered twice while running
    drained = AuditSnapshot(ids=("c", "d", "u"))          # c again in the drain: redelivered
    d = durability(writes, drained, reads, consumes=True)
    assert d.lost == 1 and d.lost_ids == ("e",)           # e was confirmed and never consumed
    assert d.duplicates == 2 and d.duplicate_ids == ("b", "c")
    assert d.recovered == 1 and d.read_during_run == 3 and d.unexpected == 0


def test_set_read_back_listing_what_was_read_is_not_a_duplicate():
    # A set read-back lists again what a reader saw during the run: that is no duplicate.
    d = durability([W("a", "acked")], AuditSnapshot(ids=("a",)), [R("a")], consumes=False)
    assert d.duplicates == 0 and d.lost == 0


def test_a_read_of_an_id_never_written_is_unexpected():
    d = durability([W("a", "acked")], AuditSnapshot(ids=("a",)), [R("zz")])
    assert d.unexpected == 1 and d.unexpected_ids == ("zz",)


def test_invariant_compares_numbers_as_numbers_and_refuses_nonsense():
    snap = AuditSnapshot(ids=(), invariants=(
        InvariantReading("eq", "==", 100, 100.0), InvariantReading("ge", ">=", "7", 5),
        InvariantReading("str", "==", "green", "green"), InvariantReading("bad", ">=", "x", 1)))
    d = durability([], snap)
    assert [d.invariant(n).holds for n in ("eq", "ge", "str", "bad")] == [True, True, True, None]
    assert "cannot compare" in d.invariant("bad").error
