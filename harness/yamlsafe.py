"""Strict, bounded YAML loading that never constructs Python objects.

`load_yaml(path)` returns a `YamlDoc`: the data as plain dict/list/str/int/float/bool/None plus a
map from path tuples such as ``("faults", 1, "latency")`` to 1-based ``(line, column)``, so every
later check can say ``file:line:column``.

How it stays safe:

* Only regular files are read (`read_regular_file`): a FIFO, a device, a socket or a directory
  is refused after a `stat`, before it is opened, so nothing can block or have a side effect;
  a symlink loop is a clear error. The file is refused before parsing when it is larger than
  `MAX_BYTES` (1 MiB).
* The work is bounded, not only the result: parsing stops after `MAX_NODES` events, so 1 MiB of
  the worst input validates in well under two seconds (benchmarks/validate_worst_case.py).
* Only the YAML *event* stream is used (libyaml when available). Our own small composer builds
  the tree: no PyYAML constructor ever runs, so ``!!python/...`` cannot execute anything, and any
  tag other than the standard scalar/collection ones is an error.
* Scalars are resolved with the YAML 1.2 core schema (what Compose uses): ``yes``/``no``/``on``
  are strings, ``1:30`` is a string, dates are strings. ``.inf``/``.nan`` are refused.
* Aliases are expanded while converting, with a cap on the total number of produced nodes
  (`MAX_NODES`, "billion laughs") and on nesting depth (`MAX_DEPTH`). An alias can only refer to
  an anchor that is already complete, so recursive structures are impossible.
* Duplicate mapping keys are an error. Merge keys (``<<: *anchor``) are supported: explicit keys
  win over merged ones, earlier merge sources win over later ones.
* One document per file.

Every failure is an `InputError` whose message starts with ``file:line:column``.
"""

from __future__ import annotations

import errno
import math
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import InputError

MAX_BYTES = 1024 * 1024
MAX_NODES = 20_000      # values (after alias expansion) and parser events; real files use < 1,000
MAX_DEPTH = 64
MAX_NUMBER_CHARS = 64   # a plain scalar longer than this is never read as a number
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

try:  # libyaml's parser is much faster; the pure-Python one is equivalent for our purposes
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml.parser import Parser as _PyParser
    from yaml.reader import Reader as _Reader
    from yaml.scanner import Scanner as _Scanner

    class _Parser(_Reader, _Scanner, _PyParser):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            _Reader.__init__(self, stream)
            _Scanner.__init__(self)
            _PyParser.__init__(self)


Path_ = tuple[str | int, ...]
Mark = tuple[int, int]

_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_TAG + t for t in ("str", "int", "float", "bool", "null"))
_SEQ, _MAP, _MERGE = _TAG + "seq", _TAG + "map", _TAG + "merge"

# YAML 1.2 core schema
_NULL_RE = re.compile(r"^(?:~|null|Null|NULL|)$")
_TRUE_RE = re.compile(r"^(?:true|True|TRUE)$")
_FALSE_RE = re.compile(r"^(?:false|False|FALSE)$")
_INT_RE = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT_RE = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_SPECIAL_FLOAT_RE = re.compile(r"^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$")


def field_name(path: Path_) -> str:
    """("faults", 1, "latency") → "faults[1].latency"; () → "(document)"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


@dataclass(frozen=True)
class YamlDoc:
    """A parsed file: plain data plus where every value (and every mapping key) came from."""

    file: str                                   # the path as the user gave it, for messages
    data: Any
    marks: Mapping[Path_, Mark] = field(default_factory=dict)       # value positions
    key_marks: Mapping[Path_, Mark] = field(default_factory=dict)   # positions of mapping keys

    def mark(self, path: Path_, *, key: bool = False) -> Mark:
        """Position of `path` (its key when `key`), else of the nearest ancestor that has one."""
        p = tuple(path)
        if key and p in self.key_marks:
            return self.key_marks[p]
        while p:
            if p in self.marks:
                return self.marks[p]
            p = p[:-1]
        return self.marks.get((), (1, 1))

    def where(self, path: Path_ = (), *, key: bool = False) -> str:
        line, col = self.mark(path, key=key)
        return f"{self.file}:{line}:{col}"

    def error(self, message: str, path: Path_ = (), *, key: bool = False) -> InputError:
        return InputError(message, where=self.where(path, key=key),
                          field=field_name(path) if path else None)


# ───────────────────────────────────────── loading ─────────────────────────────────────────


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _os_problem(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop (too many levels of symbolic links)"
    if exc.errno == errno.ENOENT:
        return "no such file"
    if exc.errno == errno.ENAMETOOLONG:
        return "file name too long"
    if exc.errno == errno.ENOTDIR:
        return "not a directory: a part of the path is a file"
    if exc.errno == errno.EACCES:
        return "permission denied"
    return f"cannot read it: {exc.strerror or exc}"


def path_problem(path: Path | str) -> str:
    """Why `path` cannot be used: "no such file or directory", "symlink loop (...)", ..."""
    try:
        os.stat(path)
    except OSError as exc:
        return "no such file or directory" if exc.errno == errno.ENOENT else _os_problem(exc)
    except ValueError:
        return "the path contains a NUL byte"
    return "not usable here"


def read_regular_file(path: Path | str, *, max_bytes: int = MAX_BYTES, what: str = "file") -> bytes:
    """The bytes of a regular file, at most `max_bytes`; anything else is an InputError at
    ``path:1:1``. It never blocks and never has a side effect on what it opens: the kind is
    checked with stat *before* opening (a FIFO with no writer, a terminal, a tape device are
    refused, not opened), then opened non-blocking and checked again on the open descriptor (a
    file swapped for a FIFO in between is refused too)."""
    name = str(path)
    where = f"{name}:1:1"
    if "\x00" in name:
        raise InputError(f"{what} name contains a NUL byte", where=where)
    try:
        st = os.stat(name)
    except OSError as exc:
        raise InputError(_os_problem(exc), where=where) from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"is {_kind(st.st_mode)}, expected a regular {what}", where=where)
    if st.st_size > max_bytes:
        raise InputError(f"{what} is {st.st_size} bytes; the limit is {max_bytes} bytes "
                         f"({_human(max_bytes)}), refusing to parse it", where=where)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(_os_problem(exc), where=where) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"is {_kind(st.st_mode)}, expected a regular {what}", where=where)
        chunks, size = [], 0
        while size <= max_bytes:            # bounded even if the file grows while we read
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise InputError(_os_problem(exc), where=where) from None
    finally:
        os.close(fd)
    raw = b"".join(chunks)
    if len(raw) > max_bytes:
        raise InputError(f"{what} is larger than {max_bytes} bytes ({_human(max_bytes)}), "
                         "refusing to parse it", where=where)
    return raw


def _human(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 and n % (1024 * 1024) == 0 else f"{n} bytes"


def load_yaml(path: Path | str, *, max_bytes: int = MAX_BYTES) -> YamlDoc:
    """Read and parse one YAML file strictly. Raises InputError, never anything else."""
    name = str(path)
    raw = read_regular_file(path, max_bytes=max_bytes)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = _offset_to_mark(raw[: exc.start].decode("utf-8", "replace"), exc.start)
        raise InputError("file is not valid UTF-8", where=f"{name}:{line}:{col}") from None
    return loads_yaml(text, name)


def loads_yaml(text: str, file: str = "<string>") -> YamlDoc:
    """Parse YAML text (already size-checked by the caller when it came from a file)."""
    if len(text) > MAX_BYTES:
        raise InputError("document is larger than 1 MiB, refusing to parse it", where=f"{file}:1:1")
    root = _Composer(text, file).compose()
    conv = _Converter(file)
    if root is None:
        return YamlDoc(file=file, data=None, marks={(): (1, 1)}, key_marks={})
    data = conv.convert(root, (), 0)
    return YamlDoc(file=file, data=data, marks=conv.marks, key_marks=conv.key_marks)


def locate(text: str, path: Path_, *, max_nodes: int = 5_000_000) -> Mark | None:
    """Where `path` is in a JSON or YAML text, without converting any value (so a number out of
    our bounds can still be pointed at): (line, column) of the deepest part of the path that
    exists, or None when the text cannot even be parsed. For error messages about files we do
    not otherwise parse as YAML (results.json)."""
    try:
        node = _Composer(text, "<locate>", max_nodes=max_nodes).compose()
    except InputError:
        return None
    if node is None:
        return None
    mark = (node.line, node.col)
    for part in path:
        nxt = None
        if node.kind == "map" and isinstance(part, str):
            nxt = next((v for k, v in node.value if k.kind == "scalar" and k.value == part), None)
        elif node.kind == "seq" and isinstance(part, int) and 0 <= part < len(node.value):
            nxt = node.value[part]
        if nxt is None:
            break
        node = nxt
        mark = (node.line, node.col)
    return mark


def _offset_to_mark(prefix: str, _offset: int) -> Mark:
    line = prefix.count("\n") + 1
    col = len(prefix) - (prefix.rfind("\n") + 1) + 1
    return line, col


# ───────────────────────────────────── event composer ─────────────────────────────────────


class _Node:
    __slots__ = ("kind", "tag", "value", "line", "col", "plain")

    def __init__(self, kind: str, tag: str | None, value: Any, line: int, col: int,
                 plain: bool = False) -> None:
        self.kind = kind            # "scalar" | "seq" | "map"
        self.tag = tag              # explicit tag, or None
        self.value = value          # str | list[_Node] | list[tuple[_Node, _Node]]
        self.line = line            # 1-based
        self.col = col
        self.plain = plain          # scalar written without quotes and without a tag


class _Composer:
    """Builds a small node tree from parser events, iteratively (no recursion on input depth)."""

    def __init__(self, text: str, file: str, max_nodes: int = MAX_NODES) -> None:
        self.text = text
        self.file = file
        self.max_nodes = max_nodes

    def _err(self, message: str, line: int, col: int) -> InputError:
        return InputError(message, where=f"{self.file}:{line}:{col}")

    def compose(self) -> _Node | None:
        parser = None
        try:
            parser = _Parser(self.text)
            return self._compose(parser)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            problem = exc.problem or exc.context or "invalid YAML"
            context = f" ({exc.context})" if exc.context and exc.problem else ""
            raise self._err(f"YAML syntax error: {problem}{context}", line, col) from None
        except yaml.reader.ReaderError as exc:
            pos = exc.position if isinstance(exc.position, int) else 0
            line, col = _offset_to_mark(self.text[:pos], pos)
            raise self._err(f"YAML syntax error: {exc.reason}", line, col) from None
        except yaml.YAMLError as exc:
            raise self._err(f"YAML syntax error: {exc}", 1, 1) from None
        finally:
            dispose = getattr(parser, "dispose", None)
            if dispose:
                dispose()

    def _compose(self, parser: Any) -> _Node | None:
        anchors: dict[str, _Node] = {}
        # stack entries: [node, pending_key_or_None, anchor]
        stack: list[list[Any]] = []
        root: _Node | None = None
        documents = 0

        def attach(node: _Node) -> None:
            nonlocal root
            if not stack:
                root = node
                return
            top = stack[-1]
            parent: _Node = top[0]
            if parent.kind == "seq":
                parent.value.append(node)
            elif top[1] is None:
                top[1] = node
            else:
                parent.value.append((top[1], node))
                top[1] = None

        events = 0
        while True:
            event = parser.get_event()
            if event is None or isinstance(event, yaml.StreamEndEvent):
                break
            m = event.start_mark
            line, col = (m.line + 1, m.column + 1) if m else (1, 1)
            events += 1
            if events > self.max_nodes:     # stop early: the work is bounded, not just the result
                raise self._err(f"more than {self.max_nodes} YAML nodes; far more than any experiment "
                                "or target needs, refusing to go on", line, col)
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise self._err("more than one YAML document in the file; expected exactly one",
                                    line, col)
            elif isinstance(event, yaml.AliasEvent):
                target = anchors.get(event.anchor)
                if target is None:
                    raise self._err(f"alias *{event.anchor} refers to an undefined anchor "
                                    "(or to the collection it is inside of)", line, col)
                attach(target)
            elif isinstance(event, yaml.ScalarEvent):
                tag = None if event.tag in (None, "!") else event.tag
                plain = tag is None and bool(event.implicit[0])
                node = _Node("scalar", tag, event.value, line, col, plain)
                if event.anchor:
                    anchors[event.anchor] = node
                attach(node)
            elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                if len(stack) >= MAX_DEPTH:
                    raise self._err(f"nesting deeper than {MAX_DEPTH} levels", line, col)
                kind = "seq" if isinstance(event, yaml.SequenceStartEvent) else "map"
                tag = None if event.tag in (None, "!") else event.tag
                stack.append([_Node(kind, tag, [], line, col), None, event.anchor])
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                node, _pending, anchor = stack.pop()
                if anchor:
                    anchors[anchor] = node      # complete only now: no self-reference possible
                attach(node)
        return root


# ───────────────────────────────────── node → plain data ─────────────────────────────────────


class _Converter:
    def __init__(self, file: str) -> None:
        self.file = file
        self.count = 0
        self.marks: dict[Path_, Mark] = {}
        self.key_marks: dict[Path_, Mark] = {}
        self._pairs_cache: dict[int, dict[str, tuple[_Node, _Node]]] = {}

    def _err(self, message: str, node: _Node, path: Path_) -> InputError:
        return InputError(message, where=f"{self.file}:{node.line}:{node.col}",
                          field=field_name(path) if path else None)

    def convert(self, node: _Node, path: Path_, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self._err(f"document expands to more than {MAX_NODES} values "
                            "(alias expansion bomb?)", node, path)
        if depth > MAX_DEPTH:
            raise self._err(f"nesting deeper than {MAX_DEPTH} levels (through aliases)", node, path)
        self.marks[path] = (node.line, node.col)
        if node.kind == "scalar":
            return self._scalar(node, path)
        if node.kind == "seq":
            if node.tag not in (None, _SEQ):
                raise self._err(f"tag {node.tag!r} is not allowed; only plain YAML data is accepted",
                                node, path)
            return [self.convert(child, path + (i,), depth + 1) for i, child in enumerate(node.value)]
        if node.tag not in (None, _MAP):
            raise self._err(f"tag {node.tag!r} is not allowed; only plain YAML data is accepted",
                            node, path)
        return self._mapping(node, path, depth)

    def _mapping(self, node: _Node, path: Path_, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, (knode, vnode) in self._pairs(node, path, 0).items():
            self.key_marks[path + (key,)] = (knode.line, knode.col)
            out[key] = self.convert(vnode, path + (key,), depth + 1)
        return out

    def _pairs(self, node: _Node, path: Path_, chain: int) -> dict[str, tuple[_Node, _Node]]:
        """The effective key → (key node, value node) of a mapping, merge keys resolved.

        Works on nodes (before expansion) and is memoised per node, so merge chains cost
        linear time and cannot be used to amplify.
        """
        cached = self._pairs_cache.get(id(node))
        if cached is not None:
            return cached
        if chain > MAX_DEPTH:
            raise self._err(f"merge keys chained deeper than {MAX_DEPTH} levels", node, path)
        out: dict[str, tuple[_Node, _Node]] = {}
        merges: list[_Node] = []
        for knode, vnode in node.value:
            if knode.kind != "scalar":
                raise self._err("mapping keys must be plain scalars", knode, path)
            if (knode.plain and knode.value == "<<") or knode.tag == _MERGE:
                merges.append(vnode)
                continue
            if knode.tag not in (None, _STR, _INT, _BOOL, _NULL, _FLOAT):
                raise self._err(f"tag {knode.tag!r} is not allowed on a key", knode, path)
            key = knode.value
            if key in out:
                first = out[key][0]
                raise InputError(f"duplicate key {key!r} (first defined at line {first.line})",
                                 where=f"{self.file}:{knode.line}:{knode.col}",
                                 field=field_name(path + (key,)))
            out[key] = (knode, vnode)
        for merge in merges:
            sources = merge.value if merge.kind == "seq" else [merge]
            for src in sources:
                if src.kind != "map":
                    raise self._err("a merge key '<<' needs a mapping or a list of mappings",
                                    src, path)
                for key, pair in self._pairs(src, path, chain + 1).items():
                    out.setdefault(key, pair)       # explicit keys and earlier sources win
        self._pairs_cache[id(node)] = out
        return out

    def _scalar(self, node: _Node, path: Path_) -> Any:
        v: str = node.value
        tag = node.tag
        if tag is None:
            if not node.plain:
                return v                                # quoted, literal or folded: a string
            if _NULL_RE.match(v):
                return None
            if _TRUE_RE.match(v):
                return True
            if _FALSE_RE.match(v):
                return False
            if len(v) > MAX_NUMBER_CHARS and (_INT_RE.match(v) or _FLOAT_RE.match(v)):
                raise self._err(f"a number written with {len(v)} characters; numbers are at most "
                                f"{MAX_NUMBER_CHARS} characters (and integers fit in 64 bits)",
                                node, path)
            if _INT_RE.match(v):
                return self._int64(v, node, path)
            if _FLOAT_RE.match(v):
                return self._finite(float(v), node, path)
            if _SPECIAL_FLOAT_RE.match(v):
                raise self._err(f"{v!r}: infinite and NaN numbers are not accepted", node, path)
            return v
        if tag == _STR:
            return v
        if tag in (_INT, _FLOAT) and len(v) > MAX_NUMBER_CHARS:
            raise self._err(f"a number written with {len(v)} characters; numbers are at most "
                            f"{MAX_NUMBER_CHARS} characters", node, path)
        if tag == _INT and _INT_RE.match(v):
            return self._int64(v, node, path)
        if tag == _FLOAT and (_FLOAT_RE.match(v) or _INT_RE.match(v)):
            return self._finite(float(v) if _FLOAT_RE.match(v) else float(_to_int(v)), node, path)
        if tag == _BOOL and (_TRUE_RE.match(v) or _FALSE_RE.match(v)):
            return bool(_TRUE_RE.match(v))
        if tag == _NULL and _NULL_RE.match(v):
            return None
        if tag in (_INT, _FLOAT, _BOOL, _NULL):
            raise self._err(f"{v!r} is not a valid {tag[len(_TAG):]}", node, path)
        raise self._err(f"tag {tag!r} is not allowed; only plain YAML data is accepted", node, path)

    def _int64(self, v: str, node: _Node, path: Path_) -> int:
        n = _to_int(v)
        if not INT64_MIN <= n <= INT64_MAX:
            raise self._err(f"{short_text(v)}: integer out of range (must fit in 64 bits: at most "
                            f"{INT64_MAX})", node, path)
        return n

    def _finite(self, value: float, node: _Node, path: Path_) -> float:
        if not math.isfinite(value):
            raise self._err(f"{node.value!r}: number out of range", node, path)
        return value


def short_text(v: str) -> str:
    return v if len(v) <= 40 else v[:37] + "..."


def _to_int(v: str) -> int:
    if v.startswith("0o"):
        return int(v[2:], 8)
    if v.startswith("0x"):
        return int(v[2:], 16)
    return int(v, 10)
