"""The syncplane SDK for Python service authors (built with componentize-py).

A sync step is a :class:`SyncStep` subclass exported with
:func:`export_sync_step`; models are frozen dataclasses subclassing
:class:`Model` (``syncplane gen python MODELS.xproto`` writes them)::

    from syncplane import Deferred, SyncStep, export_sync_step, log
    from models import HelloWorldServiceInstance

    class SyncHelloWorldServiceInstance(SyncStep[HelloWorldServiceInstance]):
        model = HelloWorldServiceInstance

        def sync_record(self, o: HelloWorldServiceInstance) -> None:
            if o.hello_to == "Tyrion Lannister":
                raise Deferred("Maybe later")
            log.info(f"saying hello to {o.hello_to}")

    WitWorld = export_sync_step(SyncHelloWorldServiceInstance)

The host checks every access against the service's manifest: models
(:meth:`Model.follow`, :func:`get`, :func:`find`, :meth:`Model.set_feedback`,
:mod:`syncplane.declarative`), configuration and secrets (:func:`config`,
:func:`require_config`, :func:`secret`) and outbound HTTP
(:mod:`syncplane.http`, to the origins the manifest grants). Every refusal
is an exception (:class:`AccessError`, :class:`SettingError`,
:class:`syncplane.http.HttpError`) that fails the step unless caught.
"""

from . import declarative, http, log
from ._values import Value
from .errors import (
    AccessError,
    Deferred,
    Denied,
    Failed,
    FieldError,
    Invalid,
    NotFound,
    StepError,
    WrongWorld,
)
from .models import Model, find, get
from .settings import Setting, SettingError, SettingErrorKind, config, require_config, secret
from .steps import (
    Event,
    EventStep,
    ModelPolicy,
    PullStep,
    SyncStep,
    export_event_step,
    export_model_policy,
    export_pull_step,
    export_sync_step,
)

__version__ = "0.2.0"

__all__ = [
    "AccessError",
    "Deferred",
    "Denied",
    "Event",
    "EventStep",
    "Failed",
    "FieldError",
    "Invalid",
    "Model",
    "ModelPolicy",
    "NotFound",
    "PullStep",
    "Setting",
    "SettingError",
    "SettingErrorKind",
    "StepError",
    "SyncStep",
    "Value",
    "WrongWorld",
    "config",
    "declarative",
    "export_event_step",
    "export_model_policy",
    "export_pull_step",
    "export_sync_step",
    "find",
    "get",
    "http",
    "log",
    "require_config",
    "secret",
]
