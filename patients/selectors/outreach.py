"""The hospital's outreach settings (quiet hours, daily cap, RFM boundaries)."""

from __future__ import annotations

from patients.models import OutreachSettings


def outreach_settings() -> OutreachSettings:
    """The single settings row, created with the defaults on first use."""
    settings_row, _created = OutreachSettings.objects.get_or_create(pk=1)
    return settings_row
