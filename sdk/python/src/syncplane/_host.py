"""The WIT bindings componentize-py generates for the world being built.

Each world imports a different set of interfaces (sync steps get ``models``,
the other kinds ``declarative``), so every import is optional here; the
SDK's functions say which world they need when called from another.
Outside a component (unit tests, type checking) every interface is absent.
Everything is imported when this module is: componentize-py generates the
modules for the build only, so an import at call time would not find them.
"""

from __future__ import annotations

from types import ModuleType
from typing import Optional

from .errors import WrongWorld


def _optional(name: str) -> Optional[ModuleType]:
    try:
        module = __import__(f"wit_world.imports.{name}", fromlist=[name])
    except ImportError:
        return None
    return module


types = _optional("types")
models = _optional("models")
declarative = _optional("declarative")
log = _optional("log")
config = _optional("config")
secrets = _optional("secrets")
# wasi:http, in components built for a manifest granting outbound HTTP.
# Imported here, while componentize-py snapshots the component: the
# generated modules are not there to import later.
outgoing_handler = _optional("outgoing_handler")
wasi_http_types = _optional("wasi_http_types")
streams = _optional("streams")


def need(module: Optional[ModuleType], interface: str, who: str) -> ModuleType:
    """``module``, or :class:`WrongWorld` naming ``who`` needs ``interface``."""
    if module is None:
        raise WrongWorld(f"{who} needs the `{interface}` interface, which this component's world does not import")
    return module
