"""Typed models and objects.

A model is a dataclass subclassing :class:`Model`, usually generated with
``syncplane gen python MODELS.xproto``::

    @dataclass(frozen=True)
    class HelloWorldServiceInstance(Model):
        NAME: ClassVar[str] = "HelloWorldServiceInstance"
        hello_to: str
        name: Optional[str] = None

Steps receive instances: typed fields as attributes, and :attr:`Model.id`,
:attr:`Model.model` (the leaf model) and :attr:`Model.fields` (every field
the host sent) beside them.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, ClassVar, Mapping, TypeVar, Union

from . import _host
from ._values import Value, fields_from_wit, fields_to_wit, to_wit
from .errors import Failed, FieldError, from_access

M = TypeVar("M", bound="Model")


def _accepts(hint: Any, value: Value) -> bool:
    """Whether ``value`` fits the type hint (``str``, ``Optional[int]``,
    ``Literal[...]``, ``list[str]``)."""
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(_accepts(arg, value) for arg in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if origin is list:
        return isinstance(value, list)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


#: Each model's init fields: name, type hint and whether it is required.
_SPECS: dict[type, tuple[tuple[str, Any, bool], ...]] = {}


def field_specs(cls: type) -> tuple[tuple[str, Any, bool], ...]:
    """The init fields of the dataclass ``cls``: name, type hint and whether
    it is required, worked out once per class.

    Steps run in a fresh instance for every call, so what this caches must
    be worked out before the component is snapshotted: the ``export_*``
    functions call it at import time (``typing.get_type_hints`` took about
    as long as the rest of a call).
    """
    specs = _SPECS.get(cls)
    if specs is None:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls.__name__} must be a dataclass")
        hints = typing.get_type_hints(cls)
        specs = tuple(
            (
                f.name,
                hints.get(f.name, Any),
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
            )
            for f in dataclasses.fields(cls)
            if f.init
        )
        _SPECS[cls] = specs
    return specs


class Model:
    """Base of typed models: a frozen dataclass per xproto model.

    Subclasses set :attr:`NAME` (the model's name in xproto) and may list
    :attr:`FEEDBACK` fields (``feedback_state``: what a sync step may write
    back with :meth:`set_feedback`; read-only everywhere else).
    """

    #: The model's name in xproto.
    NAME: ClassVar[str]
    #: The feedback fields, the only ones a sync step may write.
    FEEDBACK: ClassVar[frozenset[str]] = frozenset()

    # Set by from_object, beside the dataclass fields.
    id: int
    """The object id."""
    model: str
    """The object's most specialised (leaf) model."""
    fields: dict[str, Value]
    """All fields as the host sent them (links as ``<name>_id``)."""

    @classmethod
    def from_fields(cls: type[M], object_id: int, leaf: str, fields: Mapping[str, Value]) -> M:
        """Reads the typed fields out of ``fields``.

        :raises FieldError: a field is missing or of another type.
        """
        values: dict[str, Any] = {}
        for name, hint, required in field_specs(cls):
            if name in fields:
                value = fields[name]
                if not _accepts(hint, value):
                    raise FieldError(f"field `{name}` of {leaf} {object_id} is {value!r}, not {hint}")
                values[name] = value
            elif required:
                raise FieldError(f"field `{name}` of {leaf} {object_id} is missing")
        instance = cls(**values)
        object.__setattr__(instance, "id", object_id)
        object.__setattr__(instance, "model", leaf)
        object.__setattr__(instance, "fields", dict(fields))
        return instance

    @classmethod
    def from_object(cls: type[M], raw: Any) -> M:
        """Reads a WIT ``model-object``."""
        return cls.from_fields(raw.id, raw.model, fields_from_wit(raw.fields))

    def __str__(self) -> str:
        """Like XOS's ``str(o)``: the ``name`` field when there is one, else
        ``Model id``."""
        name = getattr(self, "fields", {}).get("name")
        if isinstance(name, str) and name:
            return name
        return f"{getattr(self, 'model', self.NAME)} {getattr(self, 'id', '?')}"

    def follow(self, field: str, model: type[M]) -> M:
        """Follows the link ``field`` (e.g. ``"owner"``) and reads the linked
        object, in its leaf model, as ``model``: XOS's
        ``o.owner.leaf_model``. Sync steps only.

        :raises Failed: the link is empty.
        :raises AccessError: the host refused.
        :raises FieldError: the linked object is not a ``model``.
        """
        models = _host.need(_host.models, "models", "Model.follow")
        try:
            raw = models.get_link(self.id, field)
        except Exception as e:  # componentize_py_types.Err
            raise _access(e) from None
        if raw is None:
            raise Failed(f"link `{field}` of {self.model} {self.id} is empty")
        return model.from_object(raw)

    def set_feedback(self, **fields: Value) -> None:
        """Writes feedback fields of this object (``feedback_state`` in
        xproto). Sync steps only, on the object they observe.

        :raises AccessError: the host refused, e.g. for a declarative field.
        """
        models = _host.need(_host.models, "models", "Model.set_feedback")
        try:
            models.set_feedback(self.id, fields_to_wit(fields))
        except Exception as e:
            raise _access(e) from None


def _access(e: Exception) -> Exception:
    """An ``Err(access-error)`` from a host call as an :class:`AccessError`."""
    value = getattr(e, "value", None)
    if value is not None and type(value).__name__.startswith("AccessError_"):
        return from_access(value)
    return e


def get(model: type[M], object_id: int) -> M:
    """Reads any object by id as ``model``, in a sync step. The host allows
    the observed object, objects reached through links, and objects of
    models the manifest grants for reading (``[capabilities.models]
    read``).

    :raises AccessError: access denied, or no such object.
    :raises FieldError: the object is not a ``model``.
    """
    models = _host.need(_host.models, "models", "syncplane.get")
    try:
        raw = models.get(object_id)
    except Exception as e:
        raise _access(e) from None
    return model.from_object(raw)


def find(model: type[M], field: str, value: Value) -> list[M]:
    """The objects of ``model`` (and the models inheriting it) whose
    ``field`` equals ``value``, in a sync step; ``model.NAME`` must be
    granted for reading in the manifest.

    :raises AccessError: the model is not granted, or the field unknown.
    """
    models = _host.need(_host.models, "models", "syncplane.find")
    try:
        found = models.find(model.NAME, field, to_wit(value))
    except Exception as e:
        raise _access(e) from None
    return [model.from_object(raw) for raw in found]


__all__ = ["Model", "get", "find"]
