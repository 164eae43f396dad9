"""JSON Schemas (Draft 2020-12) for experiment files and the Compose subset of targets,
and the mapping of schema errors back to ``file:line:column``.

The schemas check shape only (types, required fields, unknown fields, formats); what needs the
target or arithmetic (does that link exist, does the fault fit in the duration) is checked by
`harness.loader` and `harness.target` afterwards. Every object has ``additionalProperties: false``
(or a schema for its values) so a typo is an error, never silently ignored.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

from harness.errors import InputError
from harness.model import ACTIONS, METRICS, NAME_MAX, NAME_RE
from harness.yamlsafe import YamlDoc, field_name

DIALECT = "https://json-schema.org/draft/2020-12/schema"

# ─────────────────────────────────────── shared pieces ───────────────────────────────────────

DURATION_PATTERN = r"^(?:[0-9]+(?:\.[0-9]+)?(?:ns|us|µs|ms|s|m|h))+$"
SIZE_PATTERN = r"^[0-9]+(?:\.[0-9]+)?\s*(?:B|b|k|K|KiB|KB|m|M|MiB|MB|g|G|GiB|GB)?$"
PERCENT_PATTERN = r"^[0-9]+(?:\.[0-9]+)?\s*%$"
THRESHOLD_PATTERN = r"^\s*(?:>=|<=|==|>|<)\s*[0-9]+(?:\.[0-9]+)?\s*(?:%|ms|s|m|/s)?\s*$"
LINK_PATTERN = r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*->[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$"
IDENT_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE_UNITS = {"": 1, "B": 1, "b": 1, "k": 1024, "K": 1024, "KiB": 1024, "KB": 1000,
               "m": 1024**2, "M": 1024**2, "MiB": 1024**2, "MB": 1000**2,
               "g": 1024**3, "G": 1024**3, "GiB": 1024**3, "GB": 1000**3}


def parse_duration(text: str) -> float:
    """Compose/Go-style duration → seconds: "500ms" → 0.5, "1m30s" → 90.0. ValueError if bad."""
    if not isinstance(text, str) or not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration such as 500ms, 10s or 1m30s")
    return sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))


def parse_size(value: int | str) -> int:
    """Bytes: 1024, "512KiB", "64MiB", "64m" (k/m/g are binary, as Docker reads them)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size")
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)", str(value).strip())
    if not m or m.group(2) not in _SIZE_UNITS:
        raise ValueError(f"{value!r} is not a size such as 1024, 512KiB or 64MiB")
    return int(round(float(m.group(1)) * _SIZE_UNITS[m.group(2)]))


def parse_percent(value: int | float | str) -> float:
    """Percent number: "99.9%" → 99.9, 50 → 50.0."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a percentage")
    if isinstance(value, (int, float)):
        return float(value)
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*%", value.strip())
    if not m:
        raise ValueError(f"{value!r} is not a percentage such as 50%")
    return float(m.group(1))


_DEFS: dict[str, Any] = {
    "name": {
        "type": "string", "pattern": NAME_RE.pattern, "maxLength": NAME_MAX,
        "description": "a name of lowercase letters and digits, words joined by single '-' or '_' "
                       f"(e.g. redis-1), at most {NAME_MAX} characters",
    },
    "duration": {
        "type": "string", "pattern": DURATION_PATTERN,
        "description": "a duration with a unit, such as 500ms, 10s or 1m30s",
    },
    "percent": {
        "type": "string", "pattern": PERCENT_PATTERN,
        "description": "a percentage such as 50% or 99.9%",
    },
    "percent_or_number": {
        "anyOf": [{"type": "number"}, {"type": "string", "pattern": PERCENT_PATTERN}],
        "description": "a percentage such as 50% (or the number 50)",
    },
    "size": {
        "anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": SIZE_PATTERN}],
        "description": "a size in bytes (an integer) or with a unit: 512KiB, 64MiB, 1GiB",
    },
    "port": {"type": "integer", "minimum": 1, "maximum": 65535,
             "description": "a TCP port number (1-65535)"},
    "threshold": {
        "type": "string", "pattern": THRESHOLD_PATTERN,
        "description": "a comparison such as \">= 99.9%\", \"<= 800ms\" or \"== 0\"",
    },
    "link": {
        "type": "string", "pattern": LINK_PATTERN,
        "description": "a link as CLIENT->UPSTREAM, e.g. app->redis-1 or lb->app",
    },
    "string_list": {"type": "array", "items": {"type": "string"}},
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/$defs/{name}"}


def _obj(properties: dict[str, Any], required: list[str] | tuple[str, ...] = (),
         **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": properties,
                           "additionalProperties": False}
    if required:
        out["required"] = list(required)
    out.update(extra)
    return out


# ─────────────────────────────────────── experiment ───────────────────────────────────────

_SELECT = _obj({
    "service": {"type": "string", "pattern": NAME_RE.pattern,
                "description": "a service or instance name of the target"},
    "role": {"type": "string", "pattern": NAME_RE.pattern,
             "description": "a role declared in the target's x-continuum.roles"},
    "pick": {"enum": ["one", "all", "count", "percent"]},
    "count": {"type": "integer", "minimum": 1, "maximum": 1000},
    "percent": _ref("percent_or_number"),
    "seed": {"type": "integer", "minimum": 0},
})

# Every field a fault may carry, and which of them each action accepts / requires.
_FAULT_FIELDS: dict[str, Any] = {
    "name": _ref("name"),
    "action": {"enum": sorted(ACTIONS)},
    "at": _ref("duration"),
    "for": _ref("duration"),
    "select": _SELECT,
    "link": {"anyOf": [_ref("link"), {"type": "array", "items": _ref("link"), "minItems": 1}],
             "description": "a link CLIENT->UPSTREAM (e.g. app->redis-1) or a list of them"},
    "stream": {"enum": ["upstream", "downstream", "both"]},
    "toxicity": {"type": "number", "minimum": 0, "maximum": 1},
    "latency": _ref("duration"),
    "jitter": _ref("duration"),
    "rate": {"anyOf": [{"type": "integer", "minimum": 0},
                       {"type": "string", "pattern": r"^[0-9]+\s*(?:KB/s|MB/s)$"}],
             "description": "a bandwidth such as 64KB/s or 1MB/s (an integer means KB/s)"},
    "timeout": _ref("duration"),
    "delay": _ref("duration"),
    "average_size": _ref("size"),
    "size_variation": _ref("size"),
    "bytes": _ref("size"),
    "groups": {"type": "array", "minItems": 2, "maxItems": 2,
               "items": {"type": "array", "minItems": 1, "items": _ref("name")},
               "description": "two lists of service, instance or role names"},
    "direction": {"enum": ["both", "one-way"]},
    "cpus": {"type": "number", "exclusiveMinimum": 0, "maximum": 64},
    "limit": _ref("size"),
    "percent": _ref("percent_or_number"),
}

_NET = ("link", "for", "stream", "toxicity")
# action → (allowed fields besides name/action/at, required fields besides action/at)
FAULT_ACTION_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "container.kill": (("select", "for"), ("select",)),
    "container.stop": (("select", "for"), ("select",)),
    "container.pause": (("select", "for"), ("select", "for")),
    "container.restart": (("select",), ("select",)),
    "container.rolling_restart": (("select", "for"), ("select", "for")),
    "network.latency": (_NET + ("latency", "jitter"), ("link", "for", "latency")),
    "network.bandwidth": (_NET + ("rate",), ("link", "for", "rate")),
    "network.timeout": (_NET + ("timeout",), ("link", "for", "timeout")),
    "network.reset_peer": (_NET + ("timeout",), ("link", "for")),
    "network.slow_close": (_NET + ("delay",), ("link", "for", "delay")),
    "network.slicer": (_NET + ("average_size", "size_variation", "delay"),
                       ("link", "for", "average_size")),
    "network.limit_data": (_NET + ("bytes",), ("link", "for", "bytes")),
    "network.down": (("link", "for"), ("link", "for")),
    "network.loss": (("select", "for", "percent"), ("select", "for", "percent")),
    "partition": (("groups", "direction", "for"), ("groups", "for")),
    "resource.cpu": (("select", "for", "cpus"), ("select", "for", "cpus")),
    "resource.memory": (("select", "for", "limit"), ("select", "for", "limit")),
}
assert set(FAULT_ACTION_FIELDS) == set(ACTIONS), "every action needs a field list"  # import-time


def _fault_schema() -> dict[str, Any]:
    branches = []
    for action, (allowed, required) in sorted(FAULT_ACTION_FIELDS.items()):
        props = {k: _FAULT_FIELDS[k] for k in ("name", "action", "at", *allowed)}
        branches.append({
            "if": {"properties": {"action": {"const": action}}, "required": ["action"]},
            "then": _obj(props, ["action", "at", *required]),
        })
    return _obj(_FAULT_FIELDS, ["action", "at"], allOf=branches)


_LOAD = _obj({
    "profile": {"type": "string", "pattern": IDENT_PATTERN,
                "description": "a load profile offered by the target (x-continuum.load.profiles)"},
    "users": {"type": "integer", "minimum": 1, "maximum": 5000},
    "spawn_rate": {"type": "number", "exclusiveMinimum": 0, "maximum": 5000},
    "request_timeout": _ref("duration"),
    "host": _ref("name"),
}, ["profile"])

_ASSERTIONS = {
    "type": "object",
    "propertyNames": {"enum": sorted(METRICS)},
    "additionalProperties": {
        "anyOf": [_ref("threshold"),
                  {"type": "array", "minItems": 1, "maxItems": 2, "items": _ref("threshold")}],
        "description": "a comparison such as \">= 99.9%\" or \"<= 800ms\", or a list of two "
                       "(a range: [\">= 1500ms\", \"<= 2500ms\"])",
    },
}

_EXPERIMENT: dict[str, Any] = {
    "$schema": DIALECT,
    "$id": "https://continuum.invalid/schemas/experiment-v1.json",
    "title": "Continuum experiment",
    "type": "object",
    "required": ["apiVersion", "kind", "name", "description", "target", "duration", "load", "slo"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "continuum/v1"},
        "kind": {"const": "Experiment"},
        "name": _ref("name"),
        "description": {"type": "string", "minLength": 1, "maxLength": 2000},
        "target": {"type": "string", "minLength": 1, "maxLength": 4096,
                   "description": "a path to a target directory, relative to this file"},
        "duration": _ref("duration"),
        "load": _LOAD,
        "faults": {"type": "array", "maxItems": 100, "items": _fault_schema()},
        "steady_state": _ASSERTIONS,
        "slo": {**_ASSERTIONS, "minProperties": 1},
        "abort_if": _obj({"availability_below": _ref("percent"), "over": _ref("duration")},
                         ["availability_below", "over"]),
        "recovery_window": _ref("duration"),
        "min_samples": {"type": "integer", "minimum": 0, "maximum": 10_000_000},
    },
    "$defs": _DEFS,
}


def experiment_schema() -> dict[str, Any]:
    """The JSON Schema of experiment files (a fresh copy; `continuum schema` prints it)."""
    return copy.deepcopy(_EXPERIMENT)


# ─────────────────────────────────────── target (Compose subset) ───────────────────────────────────────

_IMAGE_PATTERN = r"^[a-z0-9][a-z0-9._/:@-]*$"
_ENV_KEY = r"^[A-Za-z_][A-Za-z0-9_]*$"

_SERVICE = _obj({
    "image": {"type": "string", "pattern": _IMAGE_PATTERN, "maxLength": 255,
              "description": "an image reference such as redis:7.2-alpine"},
    "build": {"anyOf": [{"type": "string", "minLength": 1},
                        _obj({"context": {"type": "string", "minLength": 1},
                              "dockerfile": {"type": "string", "minLength": 1}}, ["context"])],
              "description": "a build context path, or {context, dockerfile}"},
    "command": {"anyOf": [{"type": "string"}, _ref("string_list")],
                "description": "a list of strings (or one string, split like a shell word list)"},
    "entrypoint": {"anyOf": [{"type": "string"}, _ref("string_list")],
                   "description": "a list of strings (or one string, split like a shell word list)"},
    "environment": {
        "anyOf": [
            {"type": "object", "propertyNames": {"pattern": _ENV_KEY},
             "additionalProperties": {"type": ["string", "number"]}},
            {"type": "array", "items": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*="}},
        ],
        "description": "a map of NAME: value (strings or numbers) or a list of NAME=value",
    },
    "healthcheck": _obj({
        "test": {"anyOf": [{"type": "string", "minLength": 1},
                           {"type": "array", "minItems": 1, "items": {"type": "string"}}],
                 "description": "a command list [CMD, ...] / [CMD-SHELL, ...] or a shell string"},
        "interval": _ref("duration"),
        "timeout": _ref("duration"),
        "start_period": _ref("duration"),
        "retries": {"type": "integer", "minimum": 1, "maximum": 1000},
    }, ["test"]),
    "networks": {
        "anyOf": [{"type": "array", "items": _ref("name"), "uniqueItems": True},
                  {"type": "object", "propertyNames": _ref("name"),
                   "additionalProperties": {"anyOf": [{"type": "null"}, _obj({})]}}],
        "description": "a list of network names",
    },
    "depends_on": {
        "anyOf": [{"type": "array", "items": _ref("name"), "uniqueItems": True},
                  {"type": "object", "propertyNames": _ref("name"),
                   "additionalProperties": _obj({"condition": {"enum": [
                       "service_started", "service_healthy"]}})}],
        "description": "a list of service names, or a map of name: {condition: ...}",
    },
    "deploy": _obj({"replicas": {"type": "integer", "minimum": 1, "maximum": 20}}),
    "ports": {"type": "array", "items": {
        "anyOf": [{"type": "integer", "minimum": 1, "maximum": 65535},
                  {"type": "string", "minLength": 1, "maxLength": 64}],
        "description": "a port: \"CONTAINER\" or \"HOST:CONTAINER\""}},
    "cap_add": {"type": "array", "items": {"type": "string", "pattern": r"^[A-Z_]+$"},
                "uniqueItems": True},
    "stop_grace_period": _ref("duration"),
}, ["image"])

_CONTINUUM = _obj({
    "links": {"type": "array", "items": _obj({
        "from": _ref("name"), "to": _ref("name"), "port": _ref("port")}, ["from", "to", "port"])},
    "roles": {"type": "object", "propertyNames": _ref("name"), "additionalProperties": _obj({
        "sentinel": _ref("name"),
        "master": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", "maxLength": 64},
        "port": _ref("port"),
        "replicas": {"type": "boolean"},
        "members": {"type": "array", "minItems": 1, "items": _ref("name"), "uniqueItems": True},
    })},
    "entrypoints": {"type": "array", "items": _obj({"service": _ref("name"), "port": _ref("port")},
                                                   ["service", "port"])},
    "audit": _obj({"path": {"type": "string", "pattern": r"^/[A-Za-z0-9._~/-]*$",
                            "description": "a URL path such as /audit"}}),
    "load": _obj({
        "locustfile": {"type": "string", "minLength": 1},
        "profiles": {"type": "array", "minItems": 1, "uniqueItems": True,
                     "items": {"type": "string", "pattern": IDENT_PATTERN,
                               "description": "a Python class name"}},
    }, ["locustfile", "profiles"]),
})

_TARGET: dict[str, Any] = {
    "$schema": DIALECT,
    "title": "Continuum target (Compose subset)",
    "type": "object",
    "required": ["services"],
    "additionalProperties": False,
    "patternProperties": {"^x-(?!continuum$)": {}},     # extensions are ignored, as Compose does
    "properties": {
        "version": {"type": ["string", "number"]},
        "name": _ref("name"),
        "services": {"type": "object", "minProperties": 1, "propertyNames": _ref("name"),
                     "additionalProperties": _SERVICE},
        "networks": {"type": "object", "propertyNames": _ref("name"),
                     "additionalProperties": {"anyOf": [
                         {"type": "null"}, _obj({"internal": {"type": "boolean"}})]}},
        "x-continuum": _CONTINUUM,
    },
    "$defs": _DEFS,
}


def target_schema() -> dict[str, Any]:
    return copy.deepcopy(_TARGET)


# ─────────────────────────────────────── validation ───────────────────────────────────────

_VALIDATORS: dict[int, Any] = {}


def validate(doc: YamlDoc, schema: dict[str, Any]) -> None:
    """Validate `doc.data` against `schema`; raise the most specific error as an InputError."""
    v = _VALIDATORS.get(id(schema))
    if v is None:
        v = _VALIDATORS[id(schema)] = jsonschema.Draft202012Validator(schema)
    errors = list(v.iter_errors(doc.data))
    if not errors:
        return
    leaves = [_leaf(e) for e in errors]
    leaves.sort(key=lambda e: (-len(e.absolute_path), doc.mark(tuple(e.absolute_path))))
    best = leaves[0]
    err = _to_input_error(doc, best)
    others = len({(tuple(e.absolute_path), e.message) for e in leaves}) - 1
    if others > 0:
        err.args = (f"{err.args[0]} [and {others} more problem{'s' if others > 1 else ''}]",)
    raise err


def _leaf(error: ValidationError) -> ValidationError:
    """For anyOf/oneOf, descend into the one branch whose type matched, if exactly one did."""
    while error.validator in ("anyOf", "oneOf") and error.context:
        here = len(error.absolute_path)
        branches: dict[Any, list[ValidationError]] = {}
        for c in error.context:
            branches.setdefault(c.relative_schema_path[0], []).append(c)
        viable = [errs for errs in branches.values()
                  if not any(c.validator == "type" and len(c.absolute_path) == here for c in errs)]
        if len(viable) != 1:
            return error
        error = max(viable[0], key=lambda c: len(c.absolute_path))
    return error


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
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
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _to_input_error(doc: YamlDoc, e: ValidationError) -> InputError:
    path = tuple(e.absolute_path)
    schema = e.schema if isinstance(e.schema, dict) else {}
    expected = schema.get("description")
    v = e.validator
    inst = e.instance
    in_property_names = "propertyNames" in e.relative_schema_path or \
        "propertyNames" in e.absolute_schema_path
    if in_property_names:
        key = inst
        msg = f"{key!r} is not an accepted key here"
        if expected:
            msg += f"; expected {expected}"
        elif v == "enum":
            msg += f"; expected one of: {', '.join(map(str, e.validator_value))}"
        return doc.error(msg, path + (key,), key=True)
    if v == "required":
        missing = next((r for r in e.validator_value if isinstance(inst, dict) and r not in inst),
                       None)
        if missing is None:
            return doc.error(e.message, path)
        return InputError(f"missing required field {missing!r}", where=doc.where(path),
                          field=field_name(path + (missing,)))
    if v == "additionalProperties" and isinstance(inst, dict):
        allowed = sorted(schema.get("properties", {}))
        extra = [k for k in inst if k not in schema.get("properties", {})
                 and not any(re.search(p, k)
                             for p in schema.get("patternProperties", {}))]
        key = extra[0] if extra else "?"
        hint = f"; allowed here: {', '.join(allowed)}" if allowed else ""
        what = f"unknown field {key!r}" if len(extra) <= 1 else \
            "unknown fields " + ", ".join(repr(k) for k in extra)
        return doc.error(f"{what}{hint}", path + (key,), key=True)
    if v == "type":
        want = expected or " or ".join(
            [e.validator_value] if isinstance(e.validator_value, str) else e.validator_value)
        return doc.error(f"expected {want}, got {_type_name(inst)} {_short(inst)}", path)
    if v in ("anyOf", "oneOf"):
        want = expected or "a different value"
        return doc.error(f"expected {want}, got {_type_name(inst)} {_short(inst)}", path)
    if v == "enum":
        return doc.error(f"{_short(inst)} is not one of: "
                         f"{', '.join(str(x) for x in e.validator_value)}", path)
    if v == "const":
        return doc.error(f"expected {e.validator_value!r}, got {_short(inst)}", path)
    if v == "pattern" and isinstance(inst, str) and inst.lstrip().startswith("-") \
            and e.validator_value == DURATION_PATTERN:
        return doc.error(f"{_short(inst)}: a duration cannot be negative", path)
    if v == "pattern":
        want = expected or f"a string matching {e.validator_value}"
        return doc.error(f"{_short(inst)} is not valid; expected {want}", path)
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        words = {"minimum": "at least", "exclusiveMinimum": "more than",
                 "maximum": "at most", "exclusiveMaximum": "less than"}[v]
        return doc.error(f"{_short(inst)} is out of range; must be {words} {e.validator_value}",
                         path)
    if v in ("minItems", "maxItems", "minProperties", "maxProperties", "minLength", "maxLength"):
        what = {"minItems": "at least {} item(s)", "maxItems": "at most {} item(s)",
                "minProperties": "at least {} entr(ies)", "maxProperties": "at most {} entr(ies)",
                "minLength": "at least {} character(s)", "maxLength": "at most {} character(s)"}[v]
        return doc.error(f"must have {what.format(e.validator_value)}", path)
    if v == "uniqueItems":
        return doc.error("list items must be unique", path)
    return doc.error(e.message, path)


__all__ = ["experiment_schema", "target_schema", "validate", "FAULT_ACTION_FIELDS", "parse_duration",
           "parse_size", "parse_percent"]
