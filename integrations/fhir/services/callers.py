"""Who writes through the FHIR facade, and the source profile their payloads are mapped with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hcrm.models import User
from integrations.fhir.registry import RESOURCES, SYSTEM_PERMISSION_READ, SYSTEM_PERMISSION_WRITE
from integrations.models import Protocol, SourceProfile
from integrations.profile_cache import profile_cached, profile_key


@dataclass(frozen=True)
class FhirCaller:
    """Who is writing: a member of staff or another system; `source` is recorded as the records' source system."""

    principal: Any
    source: str

    @property
    def actor(self):
        return self.principal if isinstance(self.principal, User) else None

    @property
    def is_system(self) -> bool:
        return not isinstance(self.principal, User)

    def may_write(self, resource_type: str) -> bool:
        if self.principal.has_perm(SYSTEM_PERMISSION_WRITE):
            return True
        return self.is_system is False and self.principal.has_perms(RESOURCES[resource_type].write_permissions)


def caller_for(principal) -> FhirCaller:
    key = getattr(principal, "key", None)
    if key is not None:
        return FhirCaller(principal, (key.source_system or f"fhir:{key.name}")[:64])
    return FhirCaller(principal, "fhir")


class SystemPrincipal:
    """HCRM itself acting for a source (reprocessing, pull sync): may read and write every FHIR resource."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, label: str) -> None:
        self.label = label

    def __str__(self) -> str:
        return self.label

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return perm in (SYSTEM_PERMISSION_READ, SYSTEM_PERMISSION_WRITE)

    def has_perms(self, perms, obj: Any = None) -> bool:
        return all(self.has_perm(perm) for perm in perms)


def source_profile_for(source: str) -> SourceProfile:
    """The FHIR profile of `source`, created on first use; cached (see `integrations.profile_cache`)."""

    def load() -> SourceProfile:
        profile, _created = SourceProfile.objects.get_or_create(
            protocol=Protocol.FHIR,
            sending_application=source[:100],
            sending_facility="",
            defaults={"name": source[:100]},
        )
        return profile

    return profile_cached(profile_key(Protocol.FHIR, source), load)
