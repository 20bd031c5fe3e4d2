"""Integration state: inbound sources and their mapping profiles, the raw inbound message log, FHIR sync."""

from integrations.models.bulk import BulkImport, BulkImportStatus
from integrations.models.fhir import FhirAuthKind, FhirRemote, FhirSyncCursor, FhirSyncStatus
from integrations.models.inbound import (
    InboundMessage,
    InboundStatus,
    Protocol,
    SourceProfile,
    Transport,
)
from integrations.models.permissions import IntegrationPermissions

__all__ = [
    "BulkImport",
    "BulkImportStatus",
    "FhirAuthKind",
    "FhirRemote",
    "FhirSyncCursor",
    "FhirSyncStatus",
    "InboundMessage",
    "InboundStatus",
    "IntegrationPermissions",
    "Protocol",
    "SourceProfile",
    "Transport",
]
