"""Declarative model access for model policies, pull steps and event steps:
find, create, change and delete objects of the service's own models, read
models granted for reading, write models granted for writing
(``[capabilities.models]``). Every write is a user-like change: it makes
the object pending for its sync steps::

    from syncplane import declarative

    zone_id = declarative.create("DnsZone", {"name": "example.org."})
    for record in declarative.find("DnsRecord", "zone_id", zone_id):
        declarative.update(record.id, {"ttl": 300})
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, TypeVar

from . import _host
from ._values import Value, fields_from_wit, fields_to_wit, to_wit
from .models import M, Model, _access

T = TypeVar("T", bound=Model)


@dataclass(frozen=True)
class Found:
    """An object as the host returned it, untyped; :meth:`as_model` reads
    it as a typed model."""

    id: int
    """The object id."""
    model: str
    """The object's most specialised (leaf) model."""
    fields: dict[str, Value]
    """Its fields."""

    def as_model(self, model: type[M]) -> M:
        """The object as ``model``.

        :raises FieldError: a field is missing or of another type.
        """
        return model.from_fields(self.id, self.model, self.fields)


def _found(raw: Any) -> Found:
    return Found(id=raw.id, model=raw.model, fields=fields_from_wit(raw.fields))


def _host_declarative(who: str) -> Any:
    return _host.need(_host.declarative, "declarative", f"syncplane.declarative.{who}")


def get(object_id: int) -> Found:
    """Reads an object of the service's models (or of a model granted for
    reading).

    :raises AccessError: refused or not found.
    """
    host = _host_declarative("get")
    try:
        return _found(host.get(object_id))
    except Exception as e:
        raise _access(e) from None


def find(model: str, field: str, value: Value) -> list[Found]:
    """The objects of ``model`` (and the models inheriting it) whose
    ``field`` equals ``value``.

    :raises AccessError: the model is not the service's nor granted, or
        the field is unknown.
    """
    host = _host_declarative("find")
    try:
        return [_found(raw) for raw in host.find(model, field, to_wit(value))]
    except Exception as e:
        raise _access(e) from None


def create(model: str, fields: Mapping[str, Value]) -> int:
    """Creates an object; returns its id. ``no_sync`` and ``write_protect``
    may be set to true among the fields.

    :raises AccessError: refused or invalid.
    """
    host = _host_declarative("create")
    try:
        return host.create(model, fields_to_wit(fields))  # type: ignore[no-any-return]
    except Exception as e:
        raise _access(e) from None


def update(object_id: int, fields: Mapping[str, Value], always_update_timestamp: bool = False) -> None:
    """Changes declarative fields of an object. With
    ``always_update_timestamp`` the object counts as changed (and is synced
    again) even when no value differs.

    :raises AccessError: refused, not found or invalid.
    """
    host = _host_declarative("update")
    try:
        host.update(object_id, fields_to_wit(fields), always_update_timestamp)
    except Exception as e:
        raise _access(e) from None


def delete(object_id: int) -> None:
    """Marks an object deleted; its sync steps tear it down.

    :raises AccessError: refused or not found.
    """
    host = _host_declarative("delete")
    try:
        host.delete(object_id)
    except Exception as e:
        raise _access(e) from None
