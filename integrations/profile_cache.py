"""Source profiles kept in process for a few seconds, so a message or payload costs no profile lookup.

Saving or deleting a profile drops it here at once in this process; other processes (the MLLP
listener, workers) see the change within `PROFILE_TTL_SECONDS`. Reprocessing reads profiles afresh.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models.signals import post_delete, post_save

from hcrm.process_cache import ProcessCache
from integrations.models import SourceProfile

PROFILE_TTL_SECONDS = 5.0

Key = tuple[str, str, str]  # (protocol, sending application, sending facility)
_profiles = ProcessCache()


def profile_key(protocol: str, application: str, facility: str = "") -> Key:
    return (protocol, application[:100], facility[:100])


def profile_cached(key: Key, load: Callable[[], Any]) -> Any:
    """What `load` returned for `key` less than `PROFILE_TTL_SECONDS` ago, else `load()` (and keep it)."""
    return _profiles.cached(key, load, ttl_seconds=PROFILE_TTL_SECONDS)


def profile_keep(key: Key, value: Any) -> Any:
    return _profiles.keep(key, value)


def profile_cache_clear() -> None:
    _profiles.clear()


def _forget(sender, instance: SourceProfile, **kwargs) -> None:
    _profiles.forget(profile_key(instance.protocol, instance.sending_application, instance.sending_facility))


post_save.connect(_forget, sender=SourceProfile, dispatch_uid="source_profile_cache_saved")
post_delete.connect(_forget, sender=SourceProfile, dispatch_uid="source_profile_cache_deleted")
