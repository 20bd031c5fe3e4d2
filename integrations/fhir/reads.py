"""FHIR reads: who may see what, read by id, search with paging, and Patient/$everything.

Systems holding the fhir.read scope see every active patient; members of staff see the patients
their role and departments allow (the same rule as the rest of the archive), with sensitive
fields masked unless their role may see them. Every read is audited.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.utils.translation import gettext as _

from hcrm.audit import Event, audit_read
from hcrm.models import AuditEntry, User
from integrations.fhir import outbound_map
from integrations.fhir.outcome import FhirError
from integrations.fhir.registry import EVERYTHING_TYPES, RESOURCES, SYSTEM_PERMISSION_READ, ResourceSpec
from integrations.fhir.search import RESULT_PARAMS
from patients.models import Patient, PatientIdentifier
from patients.selectors import can_view_sensitive, patients_visible_to

DEFAULT_COUNT = 20
MAX_COUNT = 100
MAX_OFFSET = 10_000
EVERYTHING_DEFAULT_COUNT = 200
EVERYTHING_MAX_COUNT = 1000


def is_system_reader(principal) -> bool:
    """Another system (API key with fhir.read, or HCRM itself): reads every active patient."""
    return not isinstance(principal, User) and principal.has_perm(SYSTEM_PERMISSION_READ)


def may_read(principal, spec: ResourceSpec) -> bool:
    return is_system_reader(principal) or principal.has_perm(spec.read_permission)


def patients_readable(principal, *, include_merged: bool = False) -> QuerySet[Patient]:
    if is_system_reader(principal):
        patients = Patient.objects.all()
        return patients if include_merged else patients.filter(merged_into__isnull=True)
    if not principal.has_perm("patients.view_patient"):
        return Patient.objects.none()
    visible = patients_visible_to(principal)
    if include_merged:
        # A merged record is readable (as a pointer to its survivor) by whoever may read the survivor.
        return Patient.objects.filter(pk__in=visible.values("pk")) | Patient.objects.filter(
            merged_into__in=visible.values("pk")
        )
    return visible


def revealed(principal, patient: Patient) -> bool:
    if is_system_reader(principal):
        return principal.has_perm("patients.view_sensitive")
    return can_view_sensitive(principal, patient)


def records_readable(principal, spec: ResourceSpec) -> QuerySet:
    records = spec.model.objects.select_related(*spec.related).prefetch_related(*spec.prefetch)
    if not spec.of_patient:
        return records
    if is_system_reader(principal):
        return records.filter(patient__merged_into__isnull=True)
    visible = patients_visible_to(principal).filter(pk=OuterRef("patient_id"))
    return records.filter(Exists(visible))


def _patient_rows(patients: QuerySet) -> QuerySet:
    return patients.select_related("merged_into").prefetch_related(
        Prefetch("identifiers", queryset=PatientIdentifier.objects.order_by("pk"))
    )


def render(principal, spec: ResourceSpec, row) -> dict:
    if spec.type == "Patient":
        return outbound_map.patient_resource(
            row,
            identifiers=row.identifiers.all(),
            revealed=revealed(principal, row),
            survivor=row.merged_into if row.merged_into_id else None,
        )
    return spec.to_fhir(row)


def _resource_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise FhirError.single(404, "not-found", _("No resource with this id.")) from None


def read_resource(*, principal, spec: ResourceSpec, resource_id: str) -> dict:
    """One resource by its public id; a deleted patient answers 410, a merged one points to its survivor."""
    key = _resource_id(resource_id)
    if spec.type == "Patient":
        row = _patient_rows(patients_readable(principal, include_merged=True)).filter(uuid=key).first()
    else:
        row = records_readable(principal, spec).filter(uuid=key).first()
    if row is None:
        deleted = AuditEntry.objects.filter(
            patient_uuid=key, action=AuditEntry.Action.DELETE, content_type__model=spec.model_name
        ).exists()
        if deleted:
            raise FhirError.single(410, "deleted", _("%(type)s/%(id)s was deleted.") % {"type": spec.type, "id": key})
        raise FhirError.single(404, "not-found", _("No %(type)s/%(id)s.") % {"type": spec.type, "id": key})
    audit_read(event=Event.VIEW, instance=row, details={"fhir": spec.type})
    return render(principal, spec, row)


@dataclass(frozen=True)
class Page:
    count: int
    offset: int
    descending: bool


def _page(params: dict[str, list[str]], *, default: int = DEFAULT_COUNT, maximum: int = MAX_COUNT) -> Page:
    def number(name: str, fallback: int) -> int:
        values = params.get(name)
        if not values:
            return fallback
        try:
            value = int(values[-1])
        except ValueError:
            raise FhirError.single(400, "value", _("%(name)s must be a whole number.") % {"name": name}, name) from None
        if value < 0:
            raise FhirError.single(400, "value", _("%(name)s must not be negative.") % {"name": name}, name)
        return value

    count = min(number("_count", default), maximum)
    offset = number("_offset", 0)
    if offset > MAX_OFFSET:
        raise FhirError.single(
            400, "too-costly", _("Narrow the search (or use _lastUpdated) to see results this far down."), "_offset"
        )
    sort = (params.get("_sort") or ["-_lastUpdated"])[-1]
    if sort not in ("_lastUpdated", "-_lastUpdated"):
        raise FhirError.single(
            400, "not-supported", _("Only _sort=_lastUpdated or -_lastUpdated is supported."), "_sort"
        )
    return Page(count=count, offset=offset, descending=sort.startswith("-"))


def _links(url: str, params: dict[str, list[str]], page: Page, has_next: bool) -> list[dict]:
    def link(relation: str, offset: int) -> dict:
        query = [(name, value) for name, values in params.items() if name != "_offset" for value in values]
        if offset:
            query.append(("_offset", str(offset)))
        return {"relation": relation, "url": f"{url}?{urlencode(query)}" if query else url}

    links = [link("self", page.offset)]
    if has_next:
        links.append(link("next", page.offset + page.count))
    if page.offset:
        links.append(link("previous", max(page.offset - page.count, 0)))
    return links


def search_resources(*, principal, spec: ResourceSpec, params: dict[str, list[str]], url: str, base: str) -> dict:
    """A searchset Bundle of one page, in a stable order, with self/next/previous links."""
    unknown = sorted(set(params) - set(spec.search_params) - set(RESULT_PARAMS))
    if unknown:
        raise FhirError.single(
            400, "not-supported", _("Unknown search parameter: %(names)s.") % {"names": ", ".join(unknown)}, *unknown
        )
    page = _page(params)
    rows = _patient_rows(patients_readable(principal)) if spec.type == "Patient" else records_readable(principal, spec)
    for name, values in params.items():
        if name in spec.search_params:
            for value in values:
                rows = spec.search_params[name].apply(rows, value)
    order = ("-updated_at", "-pk") if page.descending else ("updated_at", "pk")
    found = list(rows.order_by(*order)[page.offset : page.offset + page.count + 1])
    has_next = len(found) > page.count
    found = found[: page.count]
    audit_read(
        event=Event.SEARCH,
        details={
            "fhir": spec.type,
            "query": params,
            "patients": sorted(
                {str(row.uuid if spec.type == "Patient" else row.patient.uuid) for row in found if spec.of_patient}
            ),
        },
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": _links(url, params, page, has_next),
        "entry": [
            {
                "fullUrl": f"{base}{spec.type}/{row.uuid}",
                "resource": render(principal, spec, row),
                "search": {"mode": "match"},
            }
            for row in found
        ],
    }
    if page.offset == 0 and not has_next:
        bundle["total"] = len(found)
    if not bundle["entry"]:
        del bundle["entry"]
    return bundle


def patient_everything(*, principal, resource_id: str, params: dict[str, list[str]], url: str, base: str) -> dict:
    """The patient and every record of theirs that the caller may read, paged over all types in a fixed order."""
    unknown = sorted(set(params) - {"_count", "_offset", "_format"})
    if unknown:
        raise FhirError.single(400, "not-supported", _("Unknown parameter: %(names)s.") % {"names": ", ".join(unknown)})
    page = _page(params, default=EVERYTHING_DEFAULT_COUNT, maximum=EVERYTHING_MAX_COUNT)
    key = _resource_id(resource_id)
    patient = _patient_rows(patients_readable(principal)).filter(uuid=key).first()
    if patient is None:
        raise FhirError.single(404, "not-found", _("No Patient/%(id)s.") % {"id": key})
    sources: list[tuple[ResourceSpec, Callable[[], QuerySet]]] = []
    for name in EVERYTHING_TYPES:
        spec = RESOURCES[name]
        if may_read(principal, spec):
            sources.append((spec, spec.model.objects.filter(patient=patient).select_related(*spec.related)))
    counts = [1] + [rows.count() for _spec, rows in sources]
    total = sum(counts)
    rendered: list[tuple[str, dict]] = []
    position = 0
    wanted_end = page.offset + page.count
    for index, count in enumerate(counts):
        start, end = position, position + count
        position = end
        if end <= page.offset or start >= wanted_end:
            continue
        low, high = max(page.offset - start, 0), min(wanted_end - start, count)
        if index == 0:
            rendered.append(("Patient", render(principal, RESOURCES["Patient"], patient)))
            continue
        spec, rows = sources[index - 1]
        for row in rows.order_by(*spec.model._meta.ordering, "pk")[low:high]:
            row.patient = patient
            rendered.append((spec.type, spec.to_fhir(row)))
    audit_read(event=Event.VIEW, instance=patient, details={"fhir": "Patient/$everything", "offset": page.offset})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": _links(url, params, page, wanted_end < total),
        "entry": [
            {"fullUrl": f"{base}{kind}/{resource['id']}", "resource": resource, "search": {"mode": "match"}}
            for kind, resource in rendered
        ],
    }
