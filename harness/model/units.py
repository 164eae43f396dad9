"""Field types with their units: durations, sizes, percentages, names, ports, image references.

Each type parses what a file may write (``"500ms"``, ``"64MiB"``, ``"99.9%"``) into the base unit
the rest of the harness uses (float seconds, int bytes, float percent) and describes its input
in the JSON Schema. Every parser is linear in its input (no backtracking regex on user text:
the string is bounded in length first and matched by patterns with one way to match), so a
hostile 100 KB threshold cannot stall validation.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo, WithJsonSchema

NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
NAME_MAX = 48
NAME_HELP = ("a name of lowercase letters and digits, words joined by single '-' or '_' "
             f"(e.g. redis-1), at most {NAME_MAX} characters")
MAX_TEXT = 256          # longest unit string (duration, size, percent) we even look at
INT64_MAX = 2**63 - 1
MAX_ANY_DURATION_S = 24 * 3600.0    # no duration anywhere is longer than a day (fields may say less)
MAX_ANY_SIZE = 2**40                # nor any size larger than 1 TiB

DURATION_PATTERN = r"^(?:[0-9]+(?:\.[0-9]+)?(?:ns|us|µs|ms|s|m|h))+$"
SIZE_PATTERN = r"^[0-9]+(?:\.[0-9]+)?\s?(?:B|b|k|K|KiB|KB|m|M|MiB|MB|g|G|GiB|GB)?$"
PERCENT_PATTERN = r"^[0-9]+(?:\.[0-9]+)?\s?%$"

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE_UNITS = {"": 1, "B": 1, "b": 1, "k": 1024, "K": 1024, "KiB": 1024, "KB": 1000,
               "m": 1024**2, "M": 1024**2, "MiB": 1024**2, "MB": 1000**2,
               "g": 1024**3, "G": 1024**3, "GiB": 1024**3, "GB": 1000**3}
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")


# ─────────────────────────────────────── messages ───────────────────────────────────────


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def got(value: Any) -> str:
    return f"got {type_name(value)} {short(value)}" if value is not None else "got null"


# ─────────────────────────────────────── parsers ───────────────────────────────────────


def parse_duration(text: Any) -> float:
    """Compose/Go-style duration → seconds: "500ms" → 0.5, "1m30s" → 90.0. ValueError if bad."""
    if not isinstance(text, str) or len(text) > MAX_TEXT or not re.fullmatch(DURATION_PATTERN, text):
        if isinstance(text, str) and text.lstrip().startswith("-"):
            raise ValueError(f"{short(text)}: a duration cannot be negative")
        raise ValueError(f"expected a duration such as 500ms, 10s or 1m30s, {got(text)}")
    seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
    if not math.isfinite(seconds):
        raise ValueError(f"{short(text)} is too long a duration")
    return seconds


def parse_size(value: Any) -> int:
    """Bytes: 1024, "512KiB", "64MiB", "64m" (k/m/g are binary, as Docker reads them)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"expected a size in bytes (an integer) or with a unit: 512KiB, 64MiB, "
                         f"1GiB, {got(value)}")
    if isinstance(value, int):
        if not 0 <= value <= INT64_MAX:
            raise ValueError(f"{short(value)} is out of range for a size")
        return value
    text = value.strip()
    m = _NUMBER.match(text) if len(text) <= MAX_TEXT else None
    unit = text[m.end():].strip() if m else None
    if m is None or unit not in _SIZE_UNITS:
        raise ValueError(f"{short(value)} is not a size such as 1024, 512KiB or 64MiB")
    size = int(round(float(m.group(0)) * _SIZE_UNITS[unit]))
    if size > INT64_MAX:
        raise ValueError(f"{short(value)} is out of range for a size")
    return size


def parse_percent(value: Any, *, numbers: bool = True) -> float:
    """Percent number: "99.9%" → 99.9; the number 50 → 50.0 where `numbers` allows it."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) or \
            (not numbers and not isinstance(value, str)):
        raise ValueError(f"expected a percentage such as 50%, {got(value)}")
    if isinstance(value, (int, float)):
        pct = float(value)
    else:
        text = value.strip()
        m = _NUMBER.match(text) if len(text) <= MAX_TEXT else None
        if m is None or text[m.end():].strip() != "%":
            raise ValueError(f"{short(value)} is not a percentage such as 50%")
        pct = float(m.group(0))
    if not math.isfinite(pct):
        raise ValueError(f"{short(value)} is not a finite percentage")
    return pct


def check_name(value: Any) -> str:
    if not isinstance(value, str) or len(value) > NAME_MAX or not NAME_RE.match(value):
        raise ValueError(f"expected {NAME_HELP}, {got(value)}")
    return value


# ─────────────────────────────────────── field types ───────────────────────────────────────


def _fmt_s(s: float) -> str:
    if s >= 3600 and s % 3600 == 0:
        return f"{int(s // 3600)}h"
    if s >= 120 and s % 60 == 0:
        return f"{int(s // 60)}m"
    return f"{s:g}s"


def from_python(info: ValidationInfo | None) -> bool:
    """Validation of values built in Python (tests, fixtures), not read from a file: these may
    already be in the base unit (seconds as a float)."""
    return not ((info.context or {}).get("from_file") if info is not None else False)


def Duration(*, positive: bool = True, max_s: float | None = None, min_s: float | None = None,  # noqa: N802
             what: str = "",
             description: str = "a duration with a unit, such as 500ms, 10s or 1m30s") -> Any:
    """A duration field → float seconds, with its bounds checked where it is parsed (at most
    `max_s`, by default a day; when given, zero or at least `min_s`). Python callers may give
    seconds as a number; a file must write the unit."""
    max_s = MAX_ANY_DURATION_S if max_s is None else max_s

    def parse(value: Any, info: ValidationInfo) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and from_python(info):
            return float(value)
        s = parse_duration(value)
        if positive and s <= 0:
            raise ValueError(f"{short(value)} must be longer than zero")
        if min_s is not None and 0 < s < min_s:
            raise ValueError(f"{short(value)} is shorter than the minimum {min_s * 1000:g}ms")
        if s > max_s:
            raise ValueError(f"{short(value)} is longer than the maximum {_fmt_s(max_s)}{what}")
        return s

    return Annotated[float, BeforeValidator(parse), WithJsonSchema(
        {"type": "string", "pattern": DURATION_PATTERN, "description": description})]


def WholeDuration(per_s: int, unit: str, *, max_s: float) -> Any:  # noqa: N802
    """A duration that must be a whole number of `unit` (ms, µs) → int in that unit."""

    def parse(value: Any, info: ValidationInfo) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and from_python(info):
            return value
        s = parse_duration(value)
        if s > max_s:
            raise ValueError(f"{short(value)} is longer than the maximum {_fmt_s(max_s)}")
        n = round(s * per_s)
        if abs(n - s * per_s) > 1e-6:
            raise ValueError(f"{short(value)} is not a whole number of {unit}")
        return n

    return Annotated[int, BeforeValidator(parse), WithJsonSchema(
        {"type": "string", "pattern": DURATION_PATTERN,
         "description": f"a duration in whole {unit}, such as 300ms"})]


def Size(*, minimum: int = 0, maximum: int = MAX_ANY_SIZE, what: str = "") -> Any:  # noqa: N802
    def parse(value: Any) -> int:
        n = parse_size(value)
        if n < minimum:
            raise ValueError(f"{short(value)} is below {what or f'the minimum of {minimum} bytes'}")
        if n > maximum:
            raise ValueError(f"{short(value)} is above the maximum of {maximum} bytes "
                             f"({maximum / 2**30:g} GiB)")
        return n

    return Annotated[int, BeforeValidator(parse), WithJsonSchema(
        {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": SIZE_PATTERN}],
         "description": "a size in bytes (an integer) or with a unit: 512KiB, 64MiB, 1GiB"})]


def Percent(*, numbers: bool = True, low_exclusive: float = 0.0, high: float = 100.0) -> Any:  # noqa: N802
    """A percentage → float percent in (low_exclusive, high]."""

    def parse(value: Any) -> float:
        pct = parse_percent(value, numbers=numbers)
        if not low_exclusive < pct <= high:
            raise ValueError(f"{short(value)} must be more than {low_exclusive:g}% and at most "
                             f"{high:g}%")
        return pct

    schema: dict[str, Any] = {"type": "string", "pattern": PERCENT_PATTERN,
                              "description": "a percentage such as 50% or 99.9%"}
    if numbers:
        schema = {"anyOf": [{"type": "number"}, schema],
                  "description": "a percentage such as 50% (or the number 50)"}
    return Annotated[float, BeforeValidator(parse), WithJsonSchema(schema)]


Name = Annotated[str, BeforeValidator(check_name), WithJsonSchema(
    {"type": "string", "pattern": NAME_RE.pattern, "maxLength": NAME_MAX, "description": NAME_HELP})]


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError(f"expected a TCP port number (1-65535), {got(value)}")
    return value


Port = Annotated[int, BeforeValidator(_port), WithJsonSchema(
    {"type": "integer", "minimum": 1, "maximum": 65535, "description": "a TCP port number (1-65535)"})]


def Text(*, max_length: int, min_length: int = 0, description: str = "") -> Any:  # noqa: N802
    """A bounded string; control characters other than newline and tab are refused."""

    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected a string, {got(value)}")
        if len(value) < min_length:
            raise ValueError(f"must have at least {min_length} character(s)")
        if len(value) > max_length:
            raise ValueError(f"must have at most {max_length} character(s)")
        return value

    schema: dict[str, Any] = {"type": "string", "minLength": min_length, "maxLength": max_length}
    if description:
        schema["description"] = description
    return Annotated[str, BeforeValidator(parse), WithJsonSchema(schema)]


def Bounded(kind: type, *, ge: float | None = None, le: float | None = None, gt: float | None = None,  # noqa: N802
            description: str = "") -> Any:
    """A strict int or number with bounds, with messages that say the bound."""
    name = "integer" if kind is int else "number"

    def parse(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int,) if kind is int else (int, float)):
            raise ValueError(f"expected {name}, {got(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{short(value)}: infinite and NaN numbers are not accepted")
        if ge is not None and value < ge:
            raise ValueError(f"{short(value)} is out of range; must be at least {ge:g}")
        if gt is not None and value <= gt:
            raise ValueError(f"{short(value)} is out of range; must be more than {gt:g}")
        if le is not None and value > le:
            raise ValueError(f"{short(value)} is out of range; must be at most {le:g}")
        return kind(value)

    schema: dict[str, Any] = {"type": name}
    if ge is not None:
        schema["minimum"] = ge
    if gt is not None:
        schema["exclusiveMinimum"] = gt
    if le is not None:
        schema["maximum"] = le
    if description:
        schema["description"] = description
    return Annotated[kind, BeforeValidator(parse), WithJsonSchema(schema)]  # type: ignore[valid-type]
