"""The hospital's outreach settings (quiet hours, daily cap, RFM boundaries)."""

from __future__ import annotations

from hcrm.process_cache import ProcessCache
from patients.models import OutreachSettings

# The outbox reads the settings for every message it queues or sends; a process keeps them this long.
# A change saved in this process is seen at once (see `outreach_settings_forget`), in others within it.
OUTREACH_SETTINGS_TTL_SECONDS = 10.0
_kept = ProcessCache()


def outreach_settings() -> OutreachSettings:
    """The single settings row, created with the defaults on first use."""
    settings_row, _created = OutreachSettings.objects.get_or_create(pk=1)
    return settings_row


def outreach_settings_kept() -> OutreachSettings:
    """The settings row as the outbox's rules read it: kept in process (see OUTREACH_SETTINGS_TTL_SECONDS).
    Pages and changes read the row itself (`outreach_settings`)."""
    return _kept.cached("settings", outreach_settings, ttl_seconds=OUTREACH_SETTINGS_TTL_SECONDS)


def outreach_settings_forget(**kwargs) -> None:
    """Drop the kept settings (connected to OutreachSettings' post_save and post_delete)."""
    _kept.clear()
