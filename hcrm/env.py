"""Strict readers for settings taken from the environment.

A malformed value stops start-up with an error that names the variable, so a
typo in a deployment never turns into a silently wrong default.
"""

from __future__ import annotations

import os
import re
import zoneinfo
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_DOTTED_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+$")
_MISSING = object()


class Env:
    """Reads variables from `os.environ`, after loading an optional `.env` file."""

    def __init__(self, env_file: Path | None = None) -> None:
        if env_file is not None and env_file.is_file():
            environ.Env.read_env(str(env_file), overwrite=False)

    def _raw(self, name: str, default: Any) -> Any:
        value = os.environ.get(name)
        if value is None or value == "":
            if default is _MISSING:
                raise ImproperlyConfigured(f"{name}: this setting is required.")
            return default
        return value

    def str(self, name: str, default: Any = _MISSING) -> Any:
        return self._raw(name, default)

    def bool(self, name: str, default: Any = _MISSING) -> bool:
        value = self._raw(name, default)
        if isinstance(value, bool):
            return value
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ImproperlyConfigured(f"{name}: expected true or false, got {value!r}.")

    def int(self, name: str, default: Any = _MISSING, minimum: int | None = None) -> int:
        value = self._raw(name, default)
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ImproperlyConfigured(f"{name}: expected a whole number, got {value!r}.") from None
        if minimum is not None and number < minimum:
            raise ImproperlyConfigured(f"{name}: must be at least {minimum}, got {number}.")
        return number

    def list(self, name: str, default: Any = _MISSING) -> list[str]:
        value = self._raw(name, default)
        if isinstance(value, list):
            return value
        return [item.strip() for item in value.split(",") if item.strip()]

    def choice(self, name: str, choices: list[str], default: Any = _MISSING) -> str:
        value = self._raw(name, default)
        if value not in choices:
            raise ImproperlyConfigured(f"{name}: expected one of {', '.join(choices)}, got {value!r}.")
        return value

    def timezone(self, name: str, default: str) -> str:
        value = self._raw(name, default)
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ImproperlyConfigured(f"{name}: unknown time zone {value!r}.") from None
        return value

    def dotted_path(self, name: str, default: Any = _MISSING) -> str:
        value = self._raw(name, default)
        if not _DOTTED_PATH.match(value):
            raise ImproperlyConfigured(f"{name}: expected a dotted Python path, got {value!r}.")
        return value

    def database(self, name: str, default: str) -> dict[str, Any]:
        value = self._raw(name, default)
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in {"sqlite", "postgres", "postgresql", "pgsql"}:
            raise ImproperlyConfigured(f"{name}: expected a sqlite:// or postgres:// URL, got {_redact(value)!r}.")
        try:
            config = environ.Env.db_url_config(value)
        except Exception as error:  # environ raises several types for a bad URL
            raise ImproperlyConfigured(f"{name}: cannot parse {_redact(value)!r} ({error}).") from None
        if scheme != "sqlite" and not config.get("NAME"):
            raise ImproperlyConfigured(f"{name}: the URL names no database.")
        return config

    def redis_url(self, name: str) -> str | None:
        value = self._raw(name, None)
        if value is None:
            return None
        if not re.match(r"^rediss?://[^/\s]+(/\d+)?/?$", value):
            raise ImproperlyConfigured(f"{name}: expected redis://host:port/db, got {_redact(value)!r}.")
        return value

    def email_url(self, name: str, default: str) -> dict[str, Any]:
        value = self._raw(name, default)
        try:
            return environ.Env.email_url_config(value)
        except Exception as error:
            raise ImproperlyConfigured(f"{name}: cannot parse {_redact(value)!r} ({error}).") from None


def _redact(url: str) -> str:
    """Hide a password inside a URL before it is printed in an error."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
