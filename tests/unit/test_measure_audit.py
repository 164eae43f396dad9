from harness.measure.audit import durability
from harness.model import AuditSnapshot, WriteRecord


def W(i, outcome, t=0.0):
    return WriteRecord(i, outcome, t)


def test_lost_unexpected_recovered_counts():
    writes = [W("a", "acked"), W("b", "acked"), W("c", "acked"), W("d", "unknown"), W("e", "unknown"),
              W("f", "unknown"), W("f", "acked")]      # f retried with the same key and acked
    audit = AuditSnapshot(frozenset({"a", "c", "d", "f", "x", "y"}), 100, 100)
    d = durability(writes, audit)
    assert (d.attempted, d.acked, d.unknown) == (6, 4, 2)
    assert d.lost == 1 and d.lost_ids == ("b",)
    assert d.unexpected == 2 and d.unexpected_ids == ("x", "y")
    assert d.recovered == 1                              # d: unknown to the client, present
    assert d.money_conserved is True and d.audited


def test_money_not_conserved():
    d = durability([], AuditSnapshot(frozenset(), 99, 100))
    assert d.money_conserved is False
    assert (d.lost, d.unexpected, d.recovered) == (0, 0, 0)


def test_no_audit_is_unknown_never_zero():
    d = durability([W("a", "acked"), W("b", "unknown")], None)
    assert not d.audited
    assert (d.acked, d.unknown) == (1, 1)
    assert d.lost is None and d.unexpected is None and d.recovered is None and d.money_conserved is None
