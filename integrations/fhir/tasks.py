"""Celery tasks of the FHIR pull sync: thin wrappers around integrations.fhir.sync."""

from __future__ import annotations

import logging

from celery import shared_task

from integrations.fhir.sync import fhir_remote_sync
from integrations.models import FhirRemote

logger = logging.getLogger(__name__)


@shared_task(name="integrations.fhir.tasks.fhir_pull_due", ignore_result=True)
def fhir_pull_due() -> int:
    """Start a pull for every enabled remote FHIR server."""
    remote_ids = list(FhirRemote.objects.filter(enabled=True).values_list("pk", flat=True))
    for remote_id in remote_ids:
        fhir_pull_remote.delay(remote_id)
    return len(remote_ids)


@shared_task(name="integrations.fhir.tasks.fhir_pull_remote", ignore_result=True, acks_late=True)
def fhir_pull_remote(remote_id: int) -> str:
    """Pull one remote; a second worker finds it claimed and does nothing."""
    remote = FhirRemote.objects.filter(pk=remote_id, enabled=True).first()
    if remote is None:
        return "disabled"
    result = fhir_remote_sync(remote=remote)
    if result is None:
        return "busy"
    logger.info(
        "FHIR pull %s: %d pages, %d resources, %d failed entries%s",
        remote.name,
        result.pages,
        result.resources,
        result.failed_entries,
        f", error: {result.errors[-1]}" if result.errors else "",
    )
    return "failed" if result.errors else "ok"
