"""The worker ↔ orchestrator framing and config: round trips, truncation, corruption."""

from __future__ import annotations

import json
import random
import struct

import pytest

from harness.load import wire
from harness.load.config import WorkerConfig
from harness.load.worker import Recorder, short_error


def test_round_trip_each_kind():
    bodies = [
        (wire.READY, {"pid": 1, "t_start": 12.5, "users": 3}),
        (wire.BATCH, {"n": ["transfer", "HTTP 500"], "s": [[1.25, 0.001234567890123, 1, 1, 0]], "w": []}),
        (wire.END, {"reason": "stop", "requests": 1, "failures": 0, "writes": 0, "t_stop": 13.0}),
        (wire.ERROR, {"type": "X", "message": "naïve ✓ unicode", "stage": "locustfile"}),
    ]
    data = b"".join(wire.encode(k, b) for k, b in bodies)
    frames = list(wire.iter_frames(data))
    assert [(f.kind, f.body) for f in frames] == bodies
    assert [f.letter for f in frames] == ["R", "B", "E", "X"]


def test_floats_are_exact():
    xs = [random.random() * 1e5 for _ in range(1000)] + [5381.712751546, 1e-9, 0.1 + 0.2]
    (frame,) = wire.iter_frames(wire.encode(wire.BATCH, {"n": [], "s": [[x, x, 1, 0, 0] for x in xs], "w": []}))
    assert [s[0] for s in frame.body["s"]] == xs


def test_any_chunking_decodes_the_same():
    data = b"".join(wire.encode(wire.BATCH, {"n": [str(i)], "s": [[i, i / 7, i % 2, i, 0]], "w": []})
                    for i in range(50))
    whole = [f.body for f in wire.iter_frames(data)]
    rng = random.Random(7)
    for _ in range(20):
        d = wire.Decoder()
        got, pos = [], 0
        while pos < len(data):
            step = rng.randint(1, 40)
            got += [f.body for f in d.feed(data[pos:pos + step])]
            pos += step
        d.close()
        assert got == whole


@pytest.mark.parametrize("cut", [1, 4, 5, 6, -1])
def test_truncated_stream_is_detected(cut):
    data = wire.encode(wire.END, {"reason": "stop"}) + wire.encode(wire.BATCH, {"n": [], "s": [], "w": []})
    truncated = data[:cut] if cut > 0 else data[:cut]
    d = wire.Decoder()
    frames = d.feed(truncated)
    assert len(frames) == (1 if cut == -1 else 0)
    assert d.pending > 0
    with pytest.raises(wire.FrameError, match="ended inside a frame"):
        d.close()


def test_unknown_kind_is_an_error():
    bad = struct.pack(">IB", 2, ord("Q")) + b"{}"
    with pytest.raises(wire.FrameError, match="unknown frame kind"):
        wire.Decoder().feed(bad)
    with pytest.raises(ValueError):
        wire.encode(ord("Q"), {})


def test_garbage_payload_and_absurd_length_are_errors():
    with pytest.raises(wire.FrameError, match="not JSON"):
        wire.Decoder().feed(struct.pack(">IB", 3, wire.BATCH) + b"{x}")
    with pytest.raises(wire.FrameError, match="exceeds"):
        wire.Decoder().feed(struct.pack(">IB", wire.MAX_PAYLOAD + 1, wire.BATCH))


def test_nan_is_refused_at_encoding():
    with pytest.raises(ValueError):
        wire.encode(wire.BATCH, {"s": [[float("nan")]]})


def test_string_table_sends_each_string_once():
    enc, dec = wire.StringTable(), wire.StringLookup()
    assert enc("") == 0
    ids = [enc(s) for s in ["a", "b", "a", "c", "b"]]
    new = enc.take_new()
    assert new == ["a", "b", "c"] and enc.take_new() == []
    dec.extend(new)
    assert [dec.strings[i] for i in ids] == ["a", "b", "a", "c", "b"]
    with pytest.raises(wire.FrameError):
        dec.extend([1])


class _BadStatus(Exception):
    code = 503


def test_recorder_batches_samples_writes_and_converts_units():
    rec = Recorder()
    rec.on_request(response_time=250.0, name="transfer", exception=None, context={"write_id": "w1"},
                   request_type="POST", response_length=2, start_time=1.0)
    rec.on_request(response_time=12.3456789, name="transfer", exception=_BadStatus(), context={"write_id": "w2"})
    rec.on_request(response_time=3.0, name="read", exception=TimeoutError(), context={})
    batch = rec.take_batch()
    assert rec.take_batch() is None
    assert batch["n"] == ["transfer", "HTTP 503", "read", "TimeoutError"]
    (t1, l1, ok1, n1, e1), (t2, l2, ok2, n2, e2), (_, l3, ok3, n3, e3) = batch["s"]
    assert (l1, ok1, n1, e1) == (0.25, 1, 1, 0)
    assert (l2, ok2, n2, e2) == (12.3456789 / 1000, 0, 1, 2)
    assert (l3, ok3, n3, e3) == (0.003, 0, 3, 4)
    (w1, w2) = batch["w"]
    assert w1[:3] == ("w1", 1, t1) and w2[:3] == ("w2", 0, t2)
    assert abs(w1[3] - (t1 + l1)) < 1e-6 and abs(w2[3] - (t2 + l2)) < 1e-6    # when it answered
    assert (rec.requests, rec.failures, rec.writes) == (3, 2, 2)
    json.dumps(batch)       # encodable as is


def test_recorder_keeps_the_ids_successful_reads_returned():
    rec = Recorder()
    rec.on_request(response_time=5.0, name="consume", exception=None, context={"read_id": "m1"})
    rec.on_request(response_time=5.0, name="consume", exception=None,
                   context={"read_id": ["m2", "m3"]})                 # a batch delivery
    rec.on_request(response_time=5.0, name="consume", exception=TimeoutError(),
                   context={"read_id": "m4"})                         # failed: it read nothing
    batch = rec.take_batch()
    assert [r[0] for r in batch["r"]] == ["m1", "m2", "m3"] and "w" in batch
    assert rec.reads == 3
    assert "r" not in (rec.on_request(response_time=1.0, name="x") or rec.take_batch())


def test_short_error():
    assert short_error(_BadStatus()) == "HTTP 503"
    assert short_error(ConnectionRefusedError()) == "ConnectionRefusedError"


def _cfg(**kw) -> WorkerConfig:
    d = dict(locustfile="/x/locustfile.py", user_class="Ledger", host="http://127.0.0.1:1", users=2,
             spawn_rate=2.0, request_timeout_s=1.0, max_duration_s=5.0, stop_grace_s=3.0,
             env={"CONTINUUM_ENDPOINTS": "a"})
    d.update(kw)
    return WorkerConfig(**d)


def test_config_round_trip():
    cfg = _cfg()
    line = cfg.to_line()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert WorkerConfig.from_line(line.strip()) == cfg


@pytest.mark.parametrize("kw, msg", [
    ({"users": 0}, "users"),
    ({"users": True}, "users"),
    ({"spawn_rate": 0}, "spawn_rate"),
    ({"request_timeout_s": float("inf")}, "request_timeout_s"),
    ({"max_duration_s": -1}, "max_duration_s"),
    ({"user_class": "a b"}, "identifier"),
    ({"env": {"A": 1}}, "env"),
])
def test_config_rejects_bad_values(kw, msg):
    with pytest.raises(ValueError, match=msg):
        _cfg(**kw).validate()


def test_config_rejects_unknown_keys_and_non_json():
    d = json.loads(_cfg().to_line())
    d["shell"] = "rm -rf"
    with pytest.raises(ValueError, match="unknown config keys"):
        WorkerConfig.from_line(json.dumps(d).encode())
    with pytest.raises(ValueError, match="not JSON"):
        WorkerConfig.from_line(b"{")
