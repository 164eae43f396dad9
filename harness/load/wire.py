"""The framing between the load worker (stdout) and the orchestrator (a reader thread).

Imported by both sides; imports nothing from locust or gevent.

A frame is a 5-byte header and a payload::

    >I  payload length in bytes (not counting the header)
    B   kind: one ASCII letter (see Kind)
    ... payload: compact UTF-8 JSON

Length-prefixing means a truncated stream (the worker killed mid-write) is detected as such
instead of being half-parsed. JSON because the C encoder/decoder serialises a whole batch of
lists faster than per-record struct packing in Python, and it keeps float `repr` exact.

Kinds and payloads:

``R`` ready  {"pid", "t_start" (monotonic s, when users started), "users", "spawn_rate",
             "user_class", "mode", "rate", "locust"}
``B`` batch  {"n": [new strings], "s": [[t, latency_s, ok, name_i, error_i(, due_t)], ...],
             "w": [[write_id, ok, t, t_end], ...], "r": [[read_id, t], ...],
             "v": [[t, version_i, ok], ...], "u": users running}
             Sent every flush interval even when empty (a heartbeat carrying "u").
             Strings (request names and error classes) are interned per stream: each batch
             lists only the strings not sent before, appended in order to the table that
             starts as [""]; records refer to them by index. ok is 0/1. due_t (open-loop
             load only): monotonic time the request was due, <= t. "v" (only when the
             profile puts `version` in a request's context): the release that answered it,
             an interned string, with the request's start t and its ok.
``E`` end    {"reason", "requests", "failures", "writes", "user_errors" (tasks that raised),
             "t_stop" (monotonic, users stopped),
             "grace_exceeded" (users still in a task after stop_grace_s were killed)}
``X`` error  {"type", "message", "stage"} (the worker exits non-zero after it)

Distributed mode (harness.load.distributed: this process is a Locust master, the requests are
sent by its workers) adds, without changing the kinds above:

``J`` joined {"src" (worker number, 0..N-1), "name", "pid", "host", "offset_s", "rtt_s",
             "same_clock", "applied_s"}  one per worker, all before ``R``
``B`` batch  as above plus "src" and "q" (the worker's batch number, 0, 1, 2, ...); its
             strings and times are that worker's (times: its clock; subtract "applied_s")
``W`` worker end {"src", "batches", "requests", "failures", "writes", "reads", "user_errors",
             "t_stop", "grace_exceeded"}  one per worker, before ``E``
Readers ignore keys they do not know, so a field added to a record or a body is not a break.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any, Iterator

HEADER = struct.Struct(">IB")
MAX_PAYLOAD = 64 * 1024 * 1024      # a frame larger than this is a corrupt stream, not data

READY = ord("R")
BATCH = ord("B")
END = ord("E")
ERROR = ord("X")
JOINED = ord("J")
WORKER_END = ord("W")
KINDS = frozenset({READY, BATCH, END, ERROR, JOINED, WORKER_END})

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_loads = json.loads


class FrameError(ValueError):
    """The byte stream is not a valid sequence of frames."""


@dataclass(frozen=True, slots=True)
class Frame:
    kind: int
    body: Any

    @property
    def letter(self) -> str:
        return chr(self.kind)


def encode(kind: int, body: Any) -> bytes:
    if kind not in KINDS:
        raise ValueError(f"unknown frame kind {kind!r}")
    payload = _dumps(body).encode("utf-8")
    return HEADER.pack(len(payload), kind) + payload


class Decoder:
    """Incremental decoder: feed() arbitrary chunks, get complete frames back.

    A stream that ends in the middle of a frame is reported by `close()`.
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[Frame]:
        buf = self._buf
        buf += chunk
        out: list[Frame] = []
        pos = 0
        n = len(buf)
        while n - pos >= HEADER.size:
            length, kind = HEADER.unpack_from(buf, pos)
            if kind not in KINDS:
                raise FrameError(f"unknown frame kind {kind:#x} at stream offset {pos}")
            if length > MAX_PAYLOAD:
                raise FrameError(f"frame length {length} exceeds {MAX_PAYLOAD}")
            end = pos + HEADER.size + length
            if end > n:
                break
            try:
                body = _loads(bytes(buf[pos + HEADER.size:end]))
            except ValueError as e:
                raise FrameError(f"frame {chr(kind)!r} payload is not JSON: {e}") from None
            out.append(Frame(kind, body))
            pos = end
        if pos:
            del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        """Bytes held that do not yet form a complete frame."""
        return len(self._buf)

    def close(self) -> None:
        if self._buf:
            raise FrameError(f"stream ended inside a frame ({len(self._buf)} bytes left over)")


def iter_frames(data: bytes) -> Iterator[Frame]:
    """Decode a complete byte string (tests, tools)."""
    d = Decoder()
    yield from d.feed(data)
    d.close()


class StringTable:
    """Interning on the encoding side: index 0 is always ""."""

    __slots__ = ("_index", "_new")

    def __init__(self) -> None:
        self._index: dict[str, int] = {"": 0}
        self._new: list[str] = []

    def __call__(self, s: str) -> int:
        i = self._index.get(s)
        if i is None:
            i = self._index[s] = len(self._index)
            self._new.append(s)
        return i

    def take_new(self) -> list[str]:
        new, self._new = self._new, []
        return new


class StringLookup:
    """The decoding side of StringTable."""

    __slots__ = ("strings",)

    def __init__(self) -> None:
        self.strings: list[str] = [""]

    def extend(self, new: list[str]) -> None:
        if not isinstance(new, list) or not all(isinstance(s, str) for s in new):
            raise FrameError("batch string table is not a list of strings")
        self.strings.extend(new)
