"""The source profile of each sender, read once and kept for a few seconds, so a message costs no lookup.

Saving a profile drops it here at once in this process; other processes (the MLLP listener, workers)
see the change within `PROFILE_TTL_SECONDS`. Reprocessing always reads the profile afresh.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models.signals import post_delete, post_save

from integrations.models import Protocol, SourceProfile

PROFILE_TTL_SECONDS = 5.0
IDENTIFIER_KINDS = {
    "mrn": "his",
    "visit_card": "visit_card",
    "insurance": "insurance",
    "passport": "passport",
    "national_id": "national_id",
}


@dataclass(frozen=True)
class ProfileView:
    """What mapping needs of a profile, as plain data (pure functions take this, not the model)."""

    pk: int
    sender: str
    is_active: bool
    default_charset: str
    identifier_meanings: dict[str, str]  # PID-3 type code (upper case) → meaning
    sex_codes: dict[str, str]
    department_codes: dict[str, str]
    diagnosis_systems: dict[str, str]
    mrn_assigner: str

    @classmethod
    def of(cls, profile: SourceProfile) -> ProfileView:
        meanings = {}
        for meaning, codes in (profile.identifier_types or {}).items():
            for code in codes if isinstance(codes, list) else ():
                meanings.setdefault(str(code).strip().upper(), meaning)
        return cls(
            pk=profile.pk,
            sender=f"{profile.sending_application}^{profile.sending_facility}",
            is_active=profile.is_active,
            default_charset=profile.default_charset,
            identifier_meanings=meanings,
            sex_codes={str(key).strip().upper(): value for key, value in (profile.sex_codes or {}).items()},
            department_codes={str(key).strip(): value for key, value in (profile.department_codes or {}).items()},
            diagnosis_systems={
                str(key).strip().upper(): value for key, value in (profile.diagnosis_systems or {}).items()
            },
            mrn_assigner=profile.mrn_assigner,
        )


_cache: dict[tuple[str, str], tuple[float, ProfileView]] = {}
_lock = threading.Lock()


def source_profile_load(*, application: str, facility: str) -> ProfileView:
    """The profile for a sender, from the database; a sender nobody configured gets a default profile."""
    application, facility = application[:100], facility[:100]
    lookup = {"protocol": Protocol.HL7V2, "sending_application": application, "sending_facility": facility}
    profile = SourceProfile.objects.filter(**lookup).first()
    if profile is None:
        try:
            with transaction.atomic():
                profile = SourceProfile.objects.create(**lookup, name=f"{application}^{facility}"[:100])
        except IntegrityError:  # another connection created it first
            profile = SourceProfile.objects.get(**lookup)
    view = ProfileView.of(profile)
    with _lock:
        _cache[(application, facility)] = (time.monotonic(), view)
    return view


def source_profile_for(*, application: str, facility: str) -> ProfileView:
    """The cached profile for a sender (see the module docstring for how fresh it is)."""
    key = (application[:100], facility[:100])
    entry = _cache.get(key)
    if entry is not None and time.monotonic() - entry[0] < PROFILE_TTL_SECONDS:
        return entry[1]
    return source_profile_load(application=application, facility=facility)


def source_profile_cache_clear() -> None:
    with _lock:
        _cache.clear()


def _forget(sender, instance: SourceProfile, **kwargs) -> None:
    with _lock:
        _cache.pop((instance.sending_application, instance.sending_facility), None)


post_save.connect(_forget, sender=SourceProfile, dispatch_uid="hl7v2_source_profile_saved")
post_delete.connect(_forget, sender=SourceProfile, dispatch_uid="hl7v2_source_profile_deleted")
