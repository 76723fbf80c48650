"""Structured logging into the host's log, tagged with the service, step
and object::

    from syncplane import log

    log.info("HelloWorldService has been updated!", object=o, hello_from=o.hello_from)
    log.info(f"{owner.hello_from} is saying hello to {o.hello_to}")

Field values are turned into text with ``str()``.

The host caps what one invocation may log (1 MiB in all, 4 KiB per record;
a longer record is truncated). Logging past the total stops the invocation.
"""

from __future__ import annotations

from enum import Enum

from . import _host


class Level(Enum):
    """Severity of a log record."""

    TRACE = "trace"
    DEBUG = "debug"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"


def emit(level: Level, message: str, **fields: object) -> None:
    """Sends one record to the host."""
    log = _host.need(_host.log, "log", "syncplane.log")
    wit_level = getattr(log.Level, level.name)
    log.log(wit_level, message, [(key, str(value)) for key, value in fields.items()])


def trace(message: str, **fields: object) -> None:
    """Logs at ``trace``."""
    emit(Level.TRACE, message, **fields)


def debug(message: str, **fields: object) -> None:
    """Logs at ``debug``."""
    emit(Level.DEBUG, message, **fields)


def info(message: str, **fields: object) -> None:
    """Logs at ``info``."""
    emit(Level.INFO, message, **fields)


def warn(message: str, **fields: object) -> None:
    """Logs at ``warn``."""
    emit(Level.WARN, message, **fields)


def error(message: str, **fields: object) -> None:
    """Logs at ``error``."""
    emit(Level.ERROR, message, **fields)
