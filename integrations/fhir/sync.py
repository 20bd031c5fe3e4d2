"""Pull sync: read what changed on a remote FHIR server since the last run, page by page, without skipping data.

For each resource type the remote is asked for `_lastUpdated=ge<high water>&_sort=_lastUpdated`, and
`next` links are followed. Each page is stored raw, applied, and only then is the cursor moved, in
the same database transaction as the records. Asking with `ge` re-reads resources updated at the
high-water instant itself, so two resources sharing a timestamp across a page boundary are never
lost; re-reading them changes nothing because records are upserted on (source, resource id).
A page that cannot be fetched is retried with a bounded backoff; if it still fails the cursor stays
where it was and the next run starts from it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from integrations.fhir import inbound_map
from integrations.fhir.client import FhirClientError, FhirRemoteClient, Page
from integrations.fhir.outbound_map import instant
from integrations.inbound import inbound_finish, inbound_store
from integrations.models import FhirRemote, FhirSyncCursor, InboundMessage

logger = logging.getLogger(__name__)

PAGE_ATTEMPTS = 4
BACKOFF_SECONDS = (1, 4, 15)
MAX_PAGES_PER_RUN = 200
# A claim older than this belongs to a worker that died; another may take the remote over.
CLAIM_LEASE = dt.timedelta(minutes=15)


def remote_system(name: str) -> str:
    """The identifier system under which a remote's own Patient ids are kept on the matched patients."""
    return f"urn:hcrm:fhir-remote:{name}"


@dataclass
class SyncResult:
    pages: int = 0
    resources: int = 0
    failed_entries: int = 0
    errors: list[str] = field(default_factory=list)


def _fetch(client: FhirRemoteClient, url: str, sleep: Callable[[float], None]) -> Page:
    for attempt in range(PAGE_ATTEMPTS):
        try:
            return client.get_page(url)
        except FhirClientError as error:
            if not error.retryable or attempt == PAGE_ATTEMPTS - 1:
                raise
            delay = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)]
            logger.warning("FHIR pull: %s; retrying in %ss", error, delay)
            sleep(delay)
    raise AssertionError("unreachable")


def _last_updated(resource: dict) -> dt.datetime | None:
    value = (resource.get("meta") or {}).get("lastUpdated")
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


def page_apply(*, message: InboundMessage, bundle: dict, source: str) -> tuple[int, list[str]]:
    """Apply one searchset page entry by entry; returns (resources applied, entry errors).

    The page is validated once with the R4B models; its own elements (links, totals) are the remote's
    paging metadata and are not judged, only the resources that are stored.
    """
    from hcrm.audit import audit_system_writes
    from integrations.fhir.services import Applier, EntryFailed, FhirCaller, SystemPrincipal, entry_plan
    from integrations.fhir.services.apply import entries_ordered
    from integrations.fhir.services.plan import bundle_validate

    caller = FhirCaller(SystemPrincipal(source), source)
    profile = message.source
    applier = Applier(caller, inbound_map.rules_from_profile(profile), remote_system=remote_system(source))
    applied, errors = 0, []
    entries = {}
    raw_entries = bundle.get("entry") if isinstance(bundle.get("entry"), list) else []
    for index, raw in enumerate(raw_entries):
        if not isinstance(raw, dict) or (raw.get("search") or {}).get("mode") == "outcome":
            continue
        resource = raw.get("resource") or {}
        request = {"method": "POST", "url": resource.get("resourceType", "")}
        entries[index] = entry_plan(index, {**raw, "request": request})
    bundle_validate(bundle, entries)
    with audit_system_writes():
        for entry in entries_ordered(list(entries.values())):
            if entry.skipped:
                continue
            if entry.issues:
                errors += [f"{', '.join(issue.expression)}: {issue.diagnostics}" for issue in entry.issues]
                continue
            try:
                with transaction.atomic():
                    applier.apply(entry)
                applied += 1
            except EntryFailed as failure:
                errors.append(f"{', '.join(failure.issue.expression)}: {failure.issue.diagnostics}")
        applier.audit_payload(message=message, details={"bundle_type": "searchset"})
    return applied, errors


def _sync_type(
    *,
    remote: FhirRemote,
    client: FhirRemoteClient,
    cursor: FhirSyncCursor,
    sleep,
    result: SyncResult,
    budget: list[int],
) -> None:
    from integrations.fhir.services import source_profile_for

    profile = source_profile_for(remote.name)
    url = cursor.next_url or client.search_url(cursor.resource_type, instant(cursor.high_water))
    while url and budget[0] > 0:
        budget[0] -= 1
        try:
            page = _fetch(client, url, sleep)
        except FhirClientError as error:
            if cursor.next_url and error.status in (404, 410):
                # The remote forgot its paging state: start again from the high-water mark.
                cursor.next_url = ""
                cursor.save(update_fields=["next_url", "updated_at"])
                url = client.search_url(cursor.resource_type, instant(cursor.high_water))
                continue
            raise
        message = inbound_store(
            protocol="fhir",
            transport="pull",
            raw=page.raw,
            sender=remote.name,
            source=profile,
            message_type=f"Bundle/searchset {cursor.resource_type}"[:40],
        )
        resources = [
            (entry.get("resource") or {}) for entry in page.bundle.get("entry") or () if isinstance(entry, dict)
        ]
        stamps = [stamp for stamp in map(_last_updated, resources) if stamp is not None]
        with transaction.atomic():
            applied, errors = page_apply(message=message, bundle=page.bundle, source=remote.name)
            if stamps and (cursor.high_water is None or max(stamps) > cursor.high_water):
                cursor.high_water = max(stamps)
            cursor.next_url = page.next_url
            cursor.pages += 1
            cursor.resources += applied
            cursor.save()
            inbound_finish(
                message=message,
                status=InboundMessage.Status.FAILED if errors else InboundMessage.Status.APPLIED,
                error_code="entries" if errors else "",
                error="\n".join(errors),
            )
        result.pages += 1
        result.resources += applied
        result.failed_entries += len(errors)
        url = page.next_url


def fhir_remote_sync(
    *, remote: FhirRemote, sleep: Callable[[float], None] = time.sleep, client=None
) -> SyncResult | None:
    """Pull every configured resource type of `remote`; None if another worker holds it."""
    now = timezone.now()
    claimed = (
        FhirRemote.objects.filter(pk=remote.pk, enabled=True)
        .filter(Q(running_since__isnull=True) | Q(running_since__lt=now - CLAIM_LEASE))
        .update(running_since=now, last_status=FhirRemote.SyncStatus.RUNNING)
    )
    if not claimed:
        return None
    remote.refresh_from_db()
    client = client or FhirRemoteClient(remote)
    result = SyncResult()
    budget = [MAX_PAGES_PER_RUN]
    status, error_text = FhirRemote.SyncStatus.OK, ""
    try:
        for resource_type in remote.resource_types:
            cursor, _created = FhirSyncCursor.objects.get_or_create(remote=remote, resource_type=resource_type)
            _sync_type(remote=remote, client=client, cursor=cursor, sleep=sleep, result=result, budget=budget)
    except FhirClientError as error:
        status, error_text = FhirRemote.SyncStatus.FAILED, str(error)
        result.errors.append(error_text)
    except Exception as error:
        status, error_text = FhirRemote.SyncStatus.FAILED, repr(error)
        raise
    finally:
        FhirRemote.objects.filter(pk=remote.pk).update(
            running_since=None, last_run_at=timezone.now(), last_status=status, last_error=error_text
        )
    return result
