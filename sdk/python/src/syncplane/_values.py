"""Conversions between Python values and the WIT ``value`` variant."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Union

from . import _host
from .errors import FieldError

#: A field value: what the host stores.
Value = Union[None, bool, int, float, str]


def from_wit(value: Any) -> Value:
    """The Python value of a WIT ``value``."""
    if type(value).__name__ == "Value_Null":
        return None
    return value.value  # type: ignore[no-any-return]


def to_wit(value: Value) -> Any:
    """The WIT ``value`` of a Python value."""
    t = _host.need(_host.types, "types", "writing a field")
    if value is None:
        return t.Value_Null()
    # bool first: it is an int in Python.
    if isinstance(value, bool):
        return t.Value_Boolean(value)
    if isinstance(value, int):
        return t.Value_Integer(value)
    if isinstance(value, float):
        return t.Value_Float(value)
    if isinstance(value, str):
        return t.Value_Text(value)
    raise FieldError(f"a field value must be None, bool, int, float or str, not {type(value).__name__}")


def fields_from_wit(fields: Iterable[tuple[str, Any]]) -> dict[str, Value]:
    """A ``dict`` of the WIT field list."""
    return {name: from_wit(value) for name, value in fields}


def fields_to_wit(fields: Mapping[str, Value]) -> list[tuple[str, Any]]:
    """The WIT field list of a mapping."""
    return [(name, to_wit(value)) for name, value in fields.items()]
