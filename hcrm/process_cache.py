"""Rows read on every message or request, kept in process memory for a few seconds.

A kept value is dropped at once in this process when its model is saved or deleted (the caller
connects `forget`/`clear` to the model's signals); other processes see the change when their copy is
older than the time to live, which each cache documents. Nothing written is kept: only reads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

_caches: list[ProcessCache] = []


class ProcessCache:
    """Values by key, each kept for as long as the `ttl_seconds` given when it is read."""

    def __init__(self) -> None:
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        _caches.append(self)

    def cached(self, key: Hashable, load: Callable[[], Any], *, ttl_seconds: float) -> Any:
        """What `load` returned for `key` less than `ttl_seconds` ago, else `load()` (and keep it)."""
        entry = self._entries.get(key)
        if entry is not None and time.monotonic() - entry[0] < ttl_seconds:
            return entry[1]
        return self.keep(key, load())

    def keep(self, key: Hashable, value: Any) -> Any:
        with self._lock:
            self._entries[key] = (time.monotonic(), value)
        return value

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self, **signal_arguments) -> None:
        """Drop every kept value (also a signal receiver: the arguments a signal sends are ignored)."""
        with self._lock:
            self._entries.clear()


def process_caches_clear() -> None:
    """Drop what every process cache keeps (tests: a rolled-back row must not outlive its test)."""
    for cache in _caches:
        cache.clear()
