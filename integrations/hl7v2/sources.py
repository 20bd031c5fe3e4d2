"""The source profile of each sender, read once and kept for a few seconds (`integrations.profile_cache`)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction

from integrations.models import Protocol, SourceProfile
from integrations.profile_cache import profile_cache_clear, profile_cached, profile_keep, profile_key

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
    return profile_keep(profile_key(Protocol.HL7V2, application, facility), ProfileView.of(profile))


def source_profile_for(*, application: str, facility: str) -> ProfileView:
    """The cached profile for a sender (see `integrations.profile_cache` for how fresh it is)."""
    return profile_cached(
        profile_key(Protocol.HL7V2, application, facility),
        lambda: source_profile_load(application=application, facility=facility),
    )


def source_profile_cache_clear() -> None:
    profile_cache_clear()
