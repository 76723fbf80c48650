"""The four kinds of step, and how a module exports one.

componentize-py builds a component from a module that defines a class
named ``WitWorld`` implementing the world's exports. The ``export_*``
functions make that class from a step class, turning exceptions into the
world's errors::

    class SyncHelloWorldServiceInstance(SyncStep[HelloWorldServiceInstance]):
        model = HelloWorldServiceInstance

        def sync_record(self, o: HelloWorldServiceInstance) -> None:
            ...

    WitWorld = export_sync_step(SyncHelloWorldServiceInstance)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Generic, Optional

from . import log
from .errors import Deferred, StepError
from .models import M, Model, field_specs


class SyncStep(Generic[M]):
    """A sync step over one model: brings a backend in line with objects.

    Raise :class:`~syncplane.Deferred` to be retried later without an
    error, :class:`~syncplane.Failed` (or any exception) to fail.
    """

    #: The model the step observes (its dataclass).
    model: ClassVar[type[Model]]

    def sync_record(self, o: M) -> None:
        """Brings the backend in line with ``o``; must be idempotent."""
        raise NotImplementedError

    def delete_record(self, o: M) -> None:
        """Tears down what the backend holds for the deleted ``o``."""


class ModelPolicy(Generic[M]):
    """Reacts to objects of a model being created, changed or deleted by
    changing declarative state (:mod:`syncplane.declarative`). Any
    exception is the handler's error."""

    #: The model the policy handles.
    model: ClassVar[type[Model]]

    def handle_create(self, o: M) -> None:
        """The object was created."""

    def handle_update(self, o: M) -> None:
        """The object changed since it was last policed."""

    def handle_delete(self, o: M) -> None:
        """The object was deleted; its teardown waits for this."""


class PullStep:
    """Imports what a backend has into models, every interval the manifest
    gives. Any exception is logged and counted by the host."""

    def pull_records(self) -> None:
        """One pull."""
        raise NotImplementedError


@dataclass(frozen=True)
class Event:
    """One event as the bus delivered it."""

    topic: str
    """The topic it was published on."""
    key: Optional[str]
    """The event's key, if it has one."""
    value: str
    """The payload, as text (often JSON)."""
    timestamp: float
    """When it was published, seconds since the epoch."""

    def json(self) -> Any:
        """The payload parsed as JSON.

        :raises ValueError: it is not JSON.
        """
        return json.loads(self.value)


class EventStep:
    """Turns events of subscribed topics into model changes. Any exception
    is logged and counted; the event is not redelivered."""

    def process_event(self, event: Event) -> None:
        """Handles one event."""
        raise NotImplementedError


def message(e: BaseException) -> str:
    """The text the host records for an exception: the message of a
    :class:`StepError`, else the exception type and message."""
    if isinstance(e, StepError):
        return str(e)
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _err(value: Any) -> Exception:
    from componentize_py_types import Err  # only inside a component build

    return Err(value)


def _as_string_error(call: Callable[[], None]) -> None:
    try:
        call()
    except Exception as e:  # every failure becomes the world's error text
        log.debug("step raised", error=message(e))
        raise _err(message(e)) from None


def export_sync_step(step: type[SyncStep[Any]]) -> type:
    """The ``WitWorld`` class of the ``sync-step`` world for ``step``."""
    import wit_world

    instance = step()
    # Worked out now, at import time, so the component's snapshot holds it.
    field_specs(step.model)

    def run(handler: Callable[[Any], None], raw: Any) -> None:
        try:
            handler(step.model.from_object(raw))
        except Deferred as e:
            raise _err(wit_world.StepError_Deferred(str(e))) from None
        except Exception as e:
            raise _err(wit_world.StepError_Failed(message(e))) from None

    class WitWorld:
        def sync_record(self, obj: Any) -> None:
            run(instance.sync_record, obj)

        def delete_record(self, obj: Any) -> None:
            run(instance.delete_record, obj)

    return WitWorld


def export_model_policy(policy: type[ModelPolicy[Any]]) -> type:
    """The ``WitWorld`` class of the ``model-policy`` world for ``policy``."""
    instance = policy()
    field_specs(policy.model)

    def run(handler: Callable[[Any], None], raw: Any) -> None:
        _as_string_error(lambda: handler(policy.model.from_object(raw)))

    class WitWorld:
        def handle_create(self, obj: Any) -> None:
            run(instance.handle_create, obj)

        def handle_update(self, obj: Any) -> None:
            run(instance.handle_update, obj)

        def handle_delete(self, obj: Any) -> None:
            run(instance.handle_delete, obj)

    return WitWorld


def export_pull_step(step: type[PullStep]) -> type:
    """The ``WitWorld`` class of the ``pull-step`` world for ``step``."""
    instance = step()

    class WitWorld:
        def pull_records(self) -> None:
            _as_string_error(instance.pull_records)

    return WitWorld


def export_event_step(step: type[EventStep]) -> type:
    """The ``WitWorld`` class of the ``event-step`` world for ``step``."""
    instance = step()

    class WitWorld:
        def process_event(self, event: Any) -> None:
            sdk_event = Event(topic=event.topic, key=event.key, value=event.value, timestamp=event.timestamp)
            _as_string_error(lambda: instance.process_event(sdk_event))

    return WitWorld
