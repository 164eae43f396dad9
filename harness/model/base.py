"""What every model parsed from a file shares: frozen, strict scalars, unknown keys refused.

Why Pydantic v2: one class per shape gives validation, defaults, the JSON Schema (`continuum
schema`) and the docs tables from the same source, and a discriminated union gives one class per
fault action with the schema for free. Errors carry a location path (`("faults", 1, "for")`),
which `harness.loader` maps back onto the YAML marks, so `file:line:column` stays exact.

Conventions:
* scalars are strict (`"5"` is not an integer, `true` is not a number); collections accept
  YAML lists for tuples;
* an unknown key is refused by `Model._known_keys` with the list of allowed keys (Pydantic's own
  "extra inputs are not permitted" does not say what *is* allowed);
* a validator that needs to point at a sub-field raises `At(message, *subpath)`;
* fields that are not read from the file (a service's name comes from its key) are marked
  `internal()` and left out of the schema and of the allowed keys.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationInfo, model_validator
from pydantic.json_schema import SkipJsonSchema

Int = Annotated[int, Strict()]
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]


def Number(**kw: Any) -> Any:  # noqa: N802 - a type factory reads like a type
    """A strict float (ints accepted, booleans and strings not) with optional bounds."""
    return Annotated[float, Strict(), Field(**kw)] if kw else Annotated[float, Strict()]


class At(ValueError):
    """A validation problem at `path` below the value being validated (optionally its key)."""

    def __init__(self, message: str, *path: str | int, key: bool = False):
        super().__init__(message)
        self.message = message
        self.path = tuple(path)
        self.key = key


def internal(default: Any = None, **kw: Any) -> Any:
    """A field the harness fills in, not the user: not in the schema, not an accepted key."""
    return Field(default=default, json_schema_extra={"internal": True}, **kw)


Internal = SkipJsonSchema
_INPUT_KEYS: dict[type, tuple[str, ...]] = {}
# Validation context key set by the loader: input comes from a file, so only the documented
# spellings (aliases) are keys; Python callers may also use the field names.
FROM_FILE = "from_file"


class Model(BaseModel):
    """Base of every model read from a file."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True,
                              arbitrary_types_allowed=True, validate_default=False)

    @classmethod
    def input_keys(cls) -> tuple[str, ...]:
        """The keys a file may write here (aliases where a field has one)."""
        keys = _INPUT_KEYS.get(cls)
        if keys is None:
            keys = _INPUT_KEYS[cls] = tuple(
                (f.alias or name) for name, f in cls.model_fields.items()
                if not (isinstance(f.json_schema_extra, dict) and f.json_schema_extra.get("internal")))
        return keys

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any, info: ValidationInfo) -> Any:
        data = cls._input_filter(data)
        if isinstance(data, dict):
            allowed = cls.input_keys()
            if not (info.context or {}).get(FROM_FILE):      # Python callers may use field names
                allowed = allowed + tuple(cls.model_fields)
            extra = [k for k in data if k not in allowed]
            if extra:
                what = f"unknown field {extra[0]!r}" if len(extra) == 1 else \
                    "unknown fields " + ", ".join(repr(k) for k in extra)
                hint = f"; allowed here: {', '.join(sorted(allowed))}" if allowed else ""
                raise At(f"{what}{hint}", extra[0], key=True)
        return data

    @classmethod
    def _input_filter(cls, data: Any) -> Any:
        """Drop input the model ignores on purpose (Compose extensions); default: nothing."""
        return data
