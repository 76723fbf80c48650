"""Operator-set configuration values and secrets.

A service declares the names it reads in its manifest; the operator sets
the values after install::

    [capabilities]
    config = ["api_url"]
    secrets = ["api_key"]

    syncplane service config powerdns api_url=http://127.0.0.1:8081
    syncplane service secret powerdns api_key < key.txt
"""

from __future__ import annotations

from enum import Enum
from typing import Optional

from . import _host
from .errors import Failed


class Setting(Enum):
    """Which kind of operator-set value a :class:`SettingError` is about."""

    CONFIG = "config value"
    SECRET = "secret"


class SettingErrorKind(Enum):
    """What went wrong reading a setting."""

    DENIED = "denied"
    """The manifest does not declare the name."""
    NOT_SET = "not-set"
    """The name is declared but the operator has not set a value."""
    INVALID = "invalid"
    """The host found the request malformed (for example an empty name)."""


class SettingError(Failed):
    """A configuration value or a secret could not be read. The message
    names the value but never contains a secret's content."""

    def __init__(self, setting: Setting, name: str, kind: SettingErrorKind, message: str = "") -> None:
        self.setting = setting
        self.name = name
        self.kind = kind
        self.detail = message
        super().__init__(self._render())

    def _render(self) -> str:
        what = self.setting.value
        if self.kind is SettingErrorKind.DENIED:
            text = f"{what} `{self.name}`: access denied"
        elif self.kind is SettingErrorKind.NOT_SET:
            command = (
                f"syncplane service config SERVICE {self.name}=VALUE"
                if self.setting is Setting.CONFIG
                else f"syncplane service secret SERVICE {self.name}"
            )
            text = f"{what} `{self.name}` is not set (the operator sets it with `{command}`)"
        else:
            text = f"{what} `{self.name}`: invalid request"
        return f"{text}: {self.detail}" if self.detail else text


def _error(setting: Setting, name: str, e: Exception) -> Exception:
    value = getattr(e, "value", None)
    kind_name = type(value).__name__
    if not kind_name.startswith("AccessError_"):
        return e
    kind = {
        "AccessError_Denied": SettingErrorKind.DENIED,
        "AccessError_NotFound": SettingErrorKind.NOT_SET,
    }.get(kind_name, SettingErrorKind.INVALID)
    return SettingError(setting, name, kind, str(getattr(value, "value", "")))


def config(name: str) -> Optional[str]:
    """The configuration value ``name``, or ``None`` when the operator has
    not set it.

    :raises SettingError: (``DENIED``) the manifest's ``[capabilities]
        config`` does not list ``name``.
    """
    host = _host.need(_host.config, "config", "syncplane.config")
    try:
        return host.get(name)  # type: ignore[no-any-return]
    except Exception as e:
        raise _error(Setting.CONFIG, name, e) from None


def require_config(name: str) -> str:
    """The configuration value ``name``, which the service cannot work
    without.

    :raises SettingError: as :func:`config`, and ``NOT_SET`` when the
        operator has not set it.
    """
    value = config(name)
    if value is None:
        raise SettingError(Setting.CONFIG, name, SettingErrorKind.NOT_SET)
    return value


def secret(name: str) -> str:
    """The secret ``name``.

    The host redacts secret values from logs, statuses and errors, but
    only as exact matches: do not log a secret, or anything derived from it.

    :raises SettingError: ``DENIED`` when the manifest's ``[capabilities]
        secrets`` does not list ``name``, ``NOT_SET`` when the operator has
        not set it.
    """
    host = _host.need(_host.secrets, "secrets", "syncplane.secret")
    try:
        return host.get(name)  # type: ignore[no-any-return]
    except Exception as e:
        raise _error(Setting.SECRET, name, e) from None
