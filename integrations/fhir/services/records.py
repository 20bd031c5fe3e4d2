"""Writing the clinical records of one FHIR payload: the set-based writer and the row-by-row one.

Both take planned records whose fields the inbound mappers produced (lengths cut, codes from named
value sets) and whose references are already resolved. Systems' payloads are written set-based:
one lookup per record type of (source system, external id), one INSERT per type, an UPDATE only for
rows that differ, and the (source_system, external_id) unique constraint as the guard. A member of
staff's writes go row by row through the archive's services, which audit each row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models
from django.utils.translation import gettext as _

from integrations.fhir.outcome import Issue
from integrations.fhir.services.plan import Entry
from patients.models import Encounter, Patient
from patients.services import record_create, record_update
from patients.services.records import external_records_upsert
from patients.validators import validate_not_future

_FUTURE_CHECKED_FIELDS = ("started_at", "diagnosed_at", "performed_at", "observed_at", "ordered_at", "recorded_at")


class EntryFailed(Exception):
    def __init__(self, status: int, issue: Issue) -> None:
        super().__init__(issue.diagnostics)
        self.status = status
        self.issue = issue


@dataclass
class RecordPlan:
    """One clinical record an entry asks for, mapped and with its references resolved."""

    entry: Entry
    model: type[models.Model]
    patient: Patient
    fields: dict[str, Any]
    create_defaults: dict[str, Any]
    external_id: str | None
    subject_path: str
    warnings: list[Issue] = field(default_factory=list)
    instance: models.Model | None = None
    created: bool = False
    changed: dict[str, Any] = field(default_factory=dict)  # written set-based: every sent field when any differed

    @property
    def status(self) -> str:
        return "201 Created" if self.created else "200 OK"


# (model, field name, value type, value) found clean before: codes, units and statuses recur payload after payload.
_CLEAN_VALUES: set[tuple] = set()
CLEAN_VALUES_KEPT = 20_000
_REMEMBERED_TYPES = (str, int, float, bool, type(None))


def _field_errors(model: type[models.Model], values: dict[str, Any]) -> dict[str, list[str]]:
    """What `full_clean` would refuse in mapped values, without its queries (the database guards the keys)."""
    errors: dict[str, list[str]] = {}
    for name, value in values.items():
        kind = type(value)
        key = (model, name, kind, value) if kind in _REMEMBERED_TYPES else None
        if key is not None and key in _CLEAN_VALUES:
            continue
        model_field = model._meta.get_field(name)
        if model_field.is_relation:
            continue
        try:
            model_field.clean(value, None)
        except ValidationError as error:
            errors.setdefault(name, []).extend(error.messages)
            continue
        if key is not None and len(_CLEAN_VALUES) < CLEAN_VALUES_KEPT:
            _CLEAN_VALUES.add(key)
    for name in _FUTURE_CHECKED_FIELDS:
        if values.get(name) is not None:
            try:
                validate_not_future(values[name])
            except ValidationError as error:
                errors.setdefault(name, []).extend(error.messages)
    if model is Encounter and values.get("ended_at") and values["ended_at"] < values["started_at"]:
        errors.setdefault("ended_at", []).append(_("The end is before the start."))
    return errors


def _invalid(plan: RecordPlan, errors: dict[str, list[str]]) -> EntryFailed:
    messages = "; ".join(f"{name}: {' '.join(texts)}" for name, texts in errors.items())
    return EntryFailed(400, Issue("error", "invalid", messages, (plan.entry.resource_path,)))


def _conflict(plan: RecordPlan) -> EntryFailed:
    return EntryFailed(
        409,
        Issue(
            "error",
            "conflict",
            _("%(type)s/%(id)s from this source belongs to another patient.")
            % {"type": plan.entry.resource_type, "id": plan.external_id},
            (f"{plan.entry.resource_path}.{plan.subject_path}",),
        ),
    )


def records_existing(plans: list[RecordPlan], source: str) -> dict[tuple[type, str], models.Model]:
    """The stored records these plans name, by (model, external id): one query per record type."""
    wanted: dict[type, set[str]] = {}
    for plan in plans:
        if plan.external_id:
            wanted.setdefault(plan.model, set()).add(plan.external_id)
    found: dict[tuple[type, str], models.Model] = {}
    for model, external_ids in wanted.items():
        for record in model.objects.filter(source_system=source, external_id__in=external_ids):
            found[(model, record.external_id)] = record
    return found


def records_write_set(plans: list[RecordPlan], *, source: str) -> list[models.Model]:
    """Validate every plan, then upsert them with one statement per record type (inside the caller's transaction).

    Returns the records created or changed, for the caller to announce (`clinical_records_written`)
    once for all it writes together.
    """
    groups: dict[type, list[RecordPlan]] = {}
    for plan in plans:
        # The values a new record would get; an existing one gets the same minus `create_defaults`.
        errors = _field_errors(plan.model, {**plan.create_defaults, **plan.fields})
        if errors:
            raise _invalid(plan, errors)
        groups.setdefault(plan.model, []).append(plan)
    for model, group in groups.items():
        rows = [
            {
                "patient": plan.patient,
                "source_system": source,
                "external_id": plan.external_id,
                **plan.create_defaults,
                **plan.fields,
            }
            for plan in group
        ]
        links = {(plan.patient.pk, department.pk) for plan in group if (department := plan.fields.get("department"))}
        try:
            results = external_records_upsert(
                model=model,
                rows=rows,
                keep={name for plan in group for name in plan.create_defaults},
                department_links=links,
            )
        except IntegrityError:
            # A unique value other than the external id was taken meanwhile; the caller's transaction
            # is rolled back, and sending the payload again updates what the other request stored.
            raise EntryFailed(
                409, Issue("error", "conflict", _stored_meanwhile(), (group[0].entry.resource_path,))
            ) from None
        seen: set[int] = set()
        for plan, result in zip(group, results, strict=True):
            if result is None:
                raise _conflict(plan)
            plan.instance = result.instance
            # A later entry with the same id updates the earlier one's record, as it would row by row.
            repeated = id(result) in seen
            seen.add(id(result))
            plan.created = result.created and not repeated
            plan.changed = dict(plan.fields) if result.changed or repeated else {}
    return [plan.instance for plan in plans if plan.created or plan.changed]


def _stored_meanwhile() -> str:
    return _("A record of this payload was stored by another request at the same time; send it again.")


def records_write_rows(plans: list[RecordPlan], *, source: str, actor) -> None:
    """Write each plan through the archive's record services (validated and audited row by row)."""
    existing = records_existing(plans, source)
    for plan in plans:
        record = existing.get((plan.model, plan.external_id)) if plan.external_id else None
        try:
            if record is None:
                data = {**plan.create_defaults, **plan.fields, "source_system": source, "external_id": plan.external_id}
                plan.instance = record_create(actor=actor, model=plan.model, patient=plan.patient, data=data)
                plan.created = True
                if plan.external_id:
                    existing[(plan.model, plan.external_id)] = plan.instance
                continue
            if record.patient_id != plan.patient.pk:
                raise _conflict(plan)
            plan.changed = {name: value for name, value in plan.fields.items() if getattr(record, name) != value}
            plan.instance = record_update(actor=actor, record=record, data=plan.changed) if plan.changed else record
        except ValidationError as error:
            items = error.error_dict.items() if hasattr(error, "error_dict") else [("", error.error_list)]
            raise _invalid(plan, {name: ValidationError(errors).messages for name, errors in items}) from None
