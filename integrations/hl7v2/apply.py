"""Writes of a mapped message to the archive. Runs inside the pipeline's one transaction per message."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from auditlog.context import auditlog_disabled
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Model, Q
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from hcrm.models import Department
from hcrm.rows import row_insert, row_update, rows_load, statement_run
from integrations.hl7v2.errors import ErrorCode, Hl7Error, Location, Warning_, rejected
from integrations.hl7v2.mapping import (
    Context,
    MappedEncounter,
    MappedPatient,
    identifiers_of,
    map_allergies,
    map_contacts,
    map_diagnoses,
    map_encounter,
    map_patient,
    map_procedures,
)
from integrations.hl7v2.message import Hl7Message, Segment
from integrations.hl7v2.observations import map_results
from integrations.hl7v2.scheduling import MappedAppointment, map_appointment
from integrations.hl7v2.sources import ProfileView
from patients.events import clinical_records_written
from patients.models import (
    Allergy,
    ContactPerson,
    Diagnosis,
    Encounter,
    LabResult,
    Patient,
    PatientDepartment,
    PatientIdentifier,
    PatientSource,
    Procedure,
)
from patients.services.identity import PatientDemographics, patient_match_or_create, patients_merge
from patients.services.records import external_records_upsert

PATIENT_EVENTS = frozenset({"A01", "A04", "A05", "A08", "A28", "A31"})
# Where each demographic field comes from, to name it when the identity service refuses a value.
FIELD_LOCATIONS = {
    "name": 5,
    "birth_date": 7,
    "sex": 8,
    "national_id": 3,
    "mrn": 3,
    "identifiers": 3,
    "mobile": 13,
    "phone": 13,
    "email": 13,
    "province": 11,
    "city": 11,
    "district": 11,
    "address_detail": 11,
    "postal_code": 11,
    "marital_status": 16,
    "deceased_date": 29,
    "is_deceased": 30,
}


@dataclass
class Applied:
    patient: Patient | None
    warnings: list[Warning_] = field(default_factory=list)
    created: bool = False  # the message registered the patient


Handler = Callable[[Context], Patient | None]
Statement = tuple[str, list]  # SQL and its parameters


def route(message_code: str, trigger_event: str) -> Handler:
    """The handler for MSH-9.1/9.2 (MSH-9.3 is not read: senders fill it wrongly); AR when there is none."""
    if message_code == "ADT":
        if trigger_event in PATIENT_EVENTS:
            return _adt_patient
        handler = ADT_HANDLERS.get(trigger_event)
        if handler is not None:
            return handler
        raise rejected(
            _("Unsupported message type ADT^%(event)s.") % {"event": trigger_event},
            code=ErrorCode.UNSUPPORTED_EVENT,
            location=Location("MSH", 1, 9, 2),
        )
    if message_code == "ORU" and trigger_event == "R01":
        return _oru
    if message_code == "SIU" and trigger_event in ("S12", "S13", "S14", "S15"):
        return _siu
    raise rejected(
        _("Unsupported message type %(type)s.") % {"type": f"{message_code}^{trigger_event}"},
        code=ErrorCode.UNSUPPORTED_MESSAGE_TYPE,
        location=Location("MSH", 1, 9),
    )


def apply_message(message: Hl7Message, profile: ProfileView, handler: Handler) -> Applied:
    """Map and write one routed message; raises Hl7Error (AE) for wrong content. The caller holds the transaction."""
    ctx = Context(message=message, profile=profile)
    patient = handler(ctx)
    return Applied(patient=patient, warnings=ctx.warnings, created=ctx.patient_created)


def patient_key(message: Hl7Message) -> str:
    """Sender + first PID-3 identifier: messages about one patient are applied one at a time, in order."""
    pid = message.first("PID")
    first = pid.value(3) if pid is not None else ""
    return f"{message.header.sender}|{first}" if first else ""


# --- Patients ----------------------------------------------------------------------------------------


def _identity_error(error: ValidationError, pid: Segment) -> Hl7Error:
    errors = error.message_dict if hasattr(error, "error_dict") else {"": error.messages}
    name, messages = next(iter(errors.items()))
    number = FIELD_LOCATIONS.get(name)
    return Hl7Error(
        f"PID-{number or 3}: {' '.join(messages)}" if number else " ".join(messages),
        code=ErrorCode.DATA_TYPE,
        location=pid.location(number) if number else pid.location(),
    )


def _match(mapped: MappedPatient, pid: Segment, ctx: Context, *, pending: list[Statement] | None = None) -> Patient:
    """The patient PID names, matched or registered. When a `pending` list is given, a plain change to the
    patient may be left in it, for the caller to send with its next write (see `patient_match_or_create`)."""
    try:
        outcome = patient_match_or_create(
            demographics=mapped.demographics,
            source=PatientSource.HIS_IMPORT,
            actor=None,
            system=ctx.sender,
            deferred=pending is not None,
        )
    except ValidationError as error:
        raise _identity_error(error, pid) from None
    ctx.patient_created = outcome.created
    if pending is not None:
        pending += outcome.pending
    for name, reason in outcome.skipped.items():
        number = FIELD_LOCATIONS.get(name.split(".")[0], 3)
        ctx.warn(f"PID-{number}: {reason}", pid.location(number))
    return outcome.patient


def _survivor(patient: Patient) -> Patient:
    seen = set()
    while patient.merged_into_id is not None and patient.pk not in seen:
        seen.add(patient.pk)
        patient = patient.merged_into
    return patient


def _find(mapped: MappedPatient) -> Patient | None:
    """The patient these identifiers name exactly (after any merge); None when nobody holds them."""
    condition = Q()
    for identifier in mapped.lookup:
        condition |= Q(kind=identifier.kind, assigner=identifier.assigner, value=identifier.value)
    if condition:
        found = PatientIdentifier.objects.filter(condition).select_related("patient").order_by("id").first()
        if found is not None:
            return _survivor(found.patient)
    if mapped.demographics.national_id:
        return Patient.objects.filter(national_id=mapped.demographics.national_id, merged_into__isnull=True).first()
    return None


def _existing_patient(ctx: Context) -> tuple[Patient, Segment]:
    pid = ctx.message.require("PID")
    mapped = map_patient(pid, ctx)
    patient = _find(mapped)
    if patient is None:
        raise Hl7Error(
            _("No patient holds the identifiers in PID-3 (%(values)s).")
            % {"values": ", ".join(identifier.value for identifier in mapped.lookup)},
            code=ErrorCode.UNKNOWN_KEY,
            location=pid.location(3),
        )
    return patient, pid


# --- Departments (a small in-process index, refreshed every minute) ------------------------------------

_departments: dict[str, int] = {}
_departments_loaded = 0.0
_departments_lock = threading.Lock()
DEPARTMENT_TTL_SECONDS = 60.0


def _department_id(codes: list[str], ctx: Context) -> int | None:
    global _departments, _departments_loaded
    if time.monotonic() - _departments_loaded > DEPARTMENT_TTL_SECONDS:
        index: dict[str, int] = {}
        for pk, code, name, name_en in Department.objects.values_list("pk", "code", "name", "name_en"):
            for key in (name_en, name, code):
                if key:
                    index[key.strip().upper()] = pk
        with _departments_lock:
            _departments, _departments_loaded = index, time.monotonic()
    for code in codes:
        mapped = ctx.profile.department_codes.get(code.strip(), code)
        found = _departments.get(mapped.strip().upper())
        if found is not None:
            return found
    return None


def departments_forget(**kwargs) -> None:
    """Read the departments again at the next message (connected to Department's post_save and post_delete)."""
    global _departments_loaded
    _departments_loaded = 0.0


post_save.connect(departments_forget, sender=Department, dispatch_uid="hl7_departments_saved")
post_delete.connect(departments_forget, sender=Department, dispatch_uid="hl7_departments_deleted")


# --- Records with external ids -----------------------------------------------------------------------


def _per_row_audit() -> bool:
    """Whether django-auditlog records each row written (a person's writes); bulk inserts would bypass it."""
    return not auditlog_disabled.get()


def _upsert(
    model: type[Model],
    patient: Patient,
    ctx: Context,
    rows: list[tuple[str, dict]],
    what: str,
    *,
    keep: frozenset[str] = frozenset(),
    on_existing: dict | None = None,
    department_links: tuple[tuple[int, int], ...] = (),
    linked: list[Statement] = (),
    encounter: Encounter | None = None,
) -> list:
    """Create or update `model` rows by (sender, external id); a row of another patient is an error.

    Values name columns (`encounter_id`, not `encounter`), so comparing them loads no related row.
    A system's rows go in with one upsert (unchanged rows keep their `updated_at`), `linked` writes
    with it; a person's reprocessing writes row by row, so that each row is audited. `keep` and
    `on_existing` say what an existing row keeps or gets instead of the sent value. `encounter`,
    the visit the rows belong to, goes with them to the listeners of clinical records.
    """
    if not rows:
        return []
    source_system = ctx.sender[:64]
    keys = [key[:128] for key, _values in rows]
    if _per_row_audit():
        _statements_run(list(linked))
        saved = _upsert_audited(model, patient, source_system, keys, rows, what, keep, on_existing, department_links)
        if encounter is not None:
            _with_encounter(saved, encounter)
        return saved
    results = external_records_upsert(
        model=model,
        rows=[
            {"patient_id": patient.pk, "source_system": source_system, "external_id": key, **values}
            for key, (_unused, values) in zip(keys, rows, strict=True)
        ],
        keep=keep,
        on_existing=on_existing,
        department_links=department_links,
        linked=linked,
    )
    for key, result in zip(keys, results, strict=True):
        if result is None:
            raise _held_by_another(what, key)
    instances = [result.instance for result in results]
    if encounter is not None:
        _with_encounter(instances, encounter)
    if model in (Encounter, Diagnosis, Procedure):
        clinical_records_written([result.instance for result in results if result.created or result.changed])
    return instances


def _with_encounter(records: list, encounter: Encounter) -> None:
    """Attach the visit the records were written for, so that whoever reads `record.encounter` needs no query."""
    for record in records:
        if record.encounter_id == encounter.pk:
            type(record).encounter.field.set_cached_value(record, encounter)


def _held_by_another(what: str, key: str) -> Hl7Error:
    return Hl7Error(
        _("%(what)s %(id)s already belongs to another patient.") % {"what": what, "id": key},
        code=ErrorCode.DUPLICATE_KEY,
    )


def _upsert_audited(model, patient, source_system, keys, rows, what, keep, on_existing, department_links) -> list:
    """`_upsert` row by row through `save()`, for writes django-auditlog records one by one."""
    where = f"t.external_id IN ({', '.join(['%s'] * len(keys))}) AND t.source_system = %s"
    existing = {row.external_id: row for row in rows_load(model, where, [*keys, source_system])}
    saved = []
    written = []  # new rows, changed diagnoses and procedures, visits whose end changed
    for key, (_unused, values) in zip(keys, rows, strict=True):
        row = existing.get(key)
        if row is None:
            row = model(patient=patient, source_system=source_system, external_id=key, **values)
            row_insert(row)
            existing[key] = row
            written.append(row)
        else:
            if row.patient_id != patient.pk:
                raise _held_by_another(what, key)
            wanted = {name: value for name, value in values.items() if name not in keep}
            wanted.update(on_existing or {})
            changed = [name for name, value in wanted.items() if getattr(row, name) != value]
            if changed:
                for name in changed:
                    setattr(row, name, wanted[name])
                row_update(row, changed)
                if model is not Encounter or "ended_at" in changed:
                    written.append(row)
        saved.append(row)
    if department_links:
        PatientDepartment.objects.bulk_create(
            [PatientDepartment(patient_id=patient_id, department_id=dept) for patient_id, dept in department_links],
            ignore_conflicts=True,
        )
    if model in (Encounter, Diagnosis, Procedure):
        clinical_records_written(written)
    return saved


def _encounter_key(patient: Patient, data: MappedEncounter) -> str:
    return data.visit_number or f"{patient.uuid}@{data.started_at:%Y%m%d%H%M%S}"


def _encounter_upsert(
    patient: Patient, data: MappedEncounter, ctx: Context, *, status: str | None, linked: list[Statement] = ()
) -> Encounter:
    """The visit in PV1; `status` forces a status (admit, discharge, cancel), None keeps what is stored.

    `linked` are writes sent with it (see `_contacts_apply`)."""
    department_id = _department_id(data.department_codes, ctx)
    values = {
        "kind": data.kind,
        "encounter_number": data.visit_number,
        "department_id": department_id,
        "doctor_name": data.doctor_name,
        "ward": data.ward,
        "bed": data.bed,
        "started_at": data.started_at,
        "status": status or data.status,
        "ended_at": data.ended_at,
    }
    keep = set()
    on_existing = {}
    if data.ended_at is not None:
        on_existing["status"] = "finished"
    elif status is not None:
        on_existing["status"] = status
    else:
        keep.add("status")
    if data.ended_at is None:
        keep.add("ended_at")
    # An update without an admit time must not move the visit to the update's own time.
    if not data.admit_time_sent:
        keep.add("started_at")
    (encounter,) = _upsert(
        Encounter,
        patient,
        ctx,
        [(_encounter_key(patient, data), values)],
        gettext_lazy("Visit"),
        keep=frozenset(keep),
        on_existing=on_existing,
        department_links=((patient.pk, department_id),) if department_id is not None else (),
        linked=linked,
    )
    return encounter


def _contacts_apply(patient: Patient, ctx: Context) -> list[Statement]:
    """Write the NK1 contacts, matched to the stored ones by name; the last NK1 of a name wins.

    A system's writes on PostgreSQL are not made here: the statements that make them come back, to
    be sent with the visit's upsert (or on their own by `_statements_run`), with no contacts read.
    """
    contacts = {contact.name: contact for contact in map_contacts(ctx.message.all("NK1"))}
    if not contacts:
        return []
    if connection.vendor == "postgresql" and not _per_row_audit():
        return _contacts_statements(patient, list(contacts.values()), created=ctx.patient_created)
    # A patient created by this message has no contacts yet: no need to look.
    stored = () if ctx.patient_created else rows_load(ContactPerson, "t.patient_id = %s ORDER BY t.id", [patient.pk])
    existing = {contact.name: contact for contact in stored}
    new = []
    for data in contacts.values():
        values = {
            "relationship": data.relationship,
            "phone": data.phone,
            "is_emergency_contact": data.is_emergency_contact,
        }
        contact = existing.get(data.name)
        if contact is None:
            new.append(ContactPerson(patient=patient, name=data.name, **values))
            continue
        changed = [name for name, value in values.items() if getattr(contact, name) != value]
        if changed:
            for name in changed:
                setattr(contact, name, values[name])
            row_update(contact, changed)
    if len(new) == 1 or (new and _per_row_audit()):
        for contact in new:
            row_insert(contact)
    elif new:
        ContactPerson.objects.bulk_create(new)
    return []


_CONTACTS_TABLE = ContactPerson._meta.db_table
# The latest stored contact of each sent name takes the sent values where they differ.
_CONTACTS_UPDATE = (
    f"UPDATE {_CONTACTS_TABLE} c SET relationship = v.relationship, phone = v.phone, "  # noqa: S608 (model metadata)
    "is_emergency_contact = v.is_emergency_contact, updated_at = %s::timestamptz "
    "FROM (SELECT DISTINCT ON (s.name) s.id, v.relationship, v.phone, v.is_emergency_contact "
    f"FROM {_CONTACTS_TABLE} s JOIN (VALUES {{rows}}) AS v (name, relationship, phone, is_emergency_contact) "
    "ON s.name = v.name WHERE s.patient_id = %s ORDER BY s.name, s.id DESC) v "
    "WHERE c.id = v.id AND (c.relationship, c.phone, c.is_emergency_contact) "
    "IS DISTINCT FROM (v.relationship, v.phone, v.is_emergency_contact)"
)
# A sent name nobody of the patient's contacts has is added.
_CONTACTS_INSERT = (
    f"INSERT INTO {_CONTACTS_TABLE} "  # noqa: S608 (model metadata)
    "(uuid, created_at, updated_at, patient_id, name, relationship, phone, is_emergency_contact) "
    "SELECT v.uuid, %s::timestamptz, %s::timestamptz, %s, v.name, v.relationship, v.phone, v.is_emergency_contact "
    "FROM (VALUES {rows}) AS v (uuid, name, relationship, phone, is_emergency_contact)"
)
_CONTACTS_ABSENT = f" WHERE NOT EXISTS (SELECT 1 FROM {_CONTACTS_TABLE} c WHERE c.patient_id = %s AND c.name = v.name)"  # noqa: S608


def _contacts_statements(patient: Patient, contacts: list, *, created: bool) -> list[Statement]:
    """The UPDATE and INSERT that bring the patient's contacts in line with `contacts` (names distinct)."""
    now = timezone.now()
    rows = ", ".join(["(%s::uuid, %s, %s, %s, %s::boolean)"] * len(contacts))
    insert_params = [now, now, patient.pk]
    for contact in contacts:
        insert_params += [uuid.uuid4(), contact.name, contact.relationship, contact.phone, contact.is_emergency_contact]
    if created:  # a patient created by this message has no contacts yet
        return [(_CONTACTS_INSERT.format(rows=rows), insert_params)]
    values = ", ".join(["(%s, %s, %s, %s::boolean)"] * len(contacts))
    update_params: list = [now]
    for contact in contacts:
        update_params += [contact.name, contact.relationship, contact.phone, contact.is_emergency_contact]
    update_params.append(patient.pk)
    return [
        (_CONTACTS_UPDATE.format(rows=values), update_params),
        (_CONTACTS_INSERT.format(rows=rows) + _CONTACTS_ABSENT, [*insert_params, patient.pk]),
    ]


def _statements_run(statements: list[Statement]) -> None:
    """Send writes that have no statement to go with, all in one round trip."""
    if not statements:
        return
    parts = ", ".join(f"write{index} AS ({sql})" for index, (sql, _params) in enumerate(statements))
    with connection.cursor() as cursor:
        statement_run(cursor, f"WITH {parts} SELECT 1", [value for _sql, params in statements for value in params])


def _clinical_apply(patient: Patient, encounter: Encounter | None, ctx: Context) -> None:
    scope = encounter.external_id if encounter is not None else str(patient.uuid)
    encounter_id = encounter.pk if encounter is not None else None
    diagnoses = [
        (
            data.identifier or f"{scope}:{data.system}:{data.code}",
            {
                "encounter_id": encounter_id,
                "system": data.system,
                "code": data.code,
                "name": data.name,
                "is_primary": data.is_primary,
                "diagnosed_at": data.diagnosed_at,
            },
        )
        for data in map_diagnoses(ctx.message.all("DG1"), ctx)
    ]
    _upsert(Diagnosis, patient, ctx, diagnoses, gettext_lazy("Diagnosis"), encounter=encounter)
    allergies = [
        (
            f"{patient.uuid}:{data.code or data.substance}",
            {
                "substance": data.substance,
                "code": data.code,
                "reaction": data.reaction,
                "severity": data.severity,
                "recorded_at": data.recorded_at,
            },
        )
        for data in map_allergies(ctx.message.all("AL1"), ctx)
    ]
    _upsert(Allergy, patient, ctx, allergies, gettext_lazy("Allergy"))
    procedures = [
        (
            data.identifier or f"{scope}:{data.code or data.name}:{data.performed_at:%Y%m%d%H%M}",
            {
                "encounter_id": encounter_id,
                "system": data.system,
                "code": data.code,
                "name": data.name,
                "performed_at": data.performed_at,
                "performer_name": data.performer_name,
            },
        )
        for data in map_procedures(ctx.message.all("PR1"), ctx)
    ]
    _upsert(Procedure, patient, ctx, procedures, gettext_lazy("Procedure"), encounter=encounter)


# --- Handlers ----------------------------------------------------------------------------------------


def _adt_patient(ctx: Context) -> Patient:
    """A01/A04/A05/A08/A28/A31: create or update the patient, the visit and what comes with them."""
    pid = ctx.message.require("PID")
    mapped = map_patient(pid, ctx, insurance=ctx.message.all("IN1"))
    pv1 = ctx.message.first("PV1")
    visit = map_encounter(pv1, ctx) if pv1 is not None else None
    # The patient's own change and its contacts go with the visit's upsert: one round trip for the three.
    pending: list[Statement] = []
    patient = _match(mapped, pid, ctx, pending=pending)
    pending += _contacts_apply(patient, ctx)
    encounter = None
    if visit is not None:
        event = ctx.message.header.trigger_event
        status = {"A01": "in_progress", "A04": "in_progress", "A05": "planned"}.get(event)
        encounter = _encounter_upsert(patient, visit, ctx, status=None if visit.ended_at else status, linked=pending)
    else:
        _statements_run(pending)
    _clinical_apply(patient, encounter, ctx)
    return patient


def _visit_of(patient: Patient, ctx: Context) -> tuple[MappedEncounter, Segment]:
    pv1 = ctx.message.require("PV1")
    visit = map_encounter(pv1, ctx)
    if visit is None:
        raise Hl7Error(
            _("PV1-2 says there is no visit (class N or empty)."),
            code=ErrorCode.REQUIRED_FIELD_MISSING,
            location=pv1.location(2),
        )
    return visit, pv1


def _stored_visit(patient: Patient, visit: MappedEncounter, pv1: Segment, ctx: Context) -> Encounter:
    encounter = Encounter.objects.filter(
        source_system=ctx.sender[:64], external_id=_encounter_key(patient, visit), patient=patient
    ).first()
    if encounter is None:
        raise Hl7Error(
            _("No visit %(number)s of this patient is known.") % {"number": visit.visit_number or "?"},
            code=ErrorCode.UNKNOWN_KEY,
            location=pv1.location(19),
        )
    return encounter


def _adt_transfer(ctx: Context) -> Patient:
    """A02: the visit moves to another department, ward or bed."""
    patient, _pid = _existing_patient(ctx)
    visit, _pv1 = _visit_of(patient, ctx)
    _encounter_upsert(patient, visit, ctx, status="in_progress")
    return patient


def _adt_discharge(ctx: Context) -> Patient:
    """A03: the visit ends at PV1-45 (or the event time)."""
    patient, _pid = _existing_patient(ctx)
    visit, pv1 = _visit_of(patient, ctx)
    if visit.ended_at is None:
        visit.ended_at = ctx.event_time
    encounter = Encounter.objects.filter(
        source_system=ctx.sender[:64], external_id=_encounter_key(patient, visit)
    ).first()
    started = encounter.started_at if encounter is not None else visit.started_at
    if visit.ended_at < started:
        raise Hl7Error(
            _("The discharge time is before the admit time."), code=ErrorCode.DATA_TYPE, location=pv1.location(45)
        )
    _encounter_upsert(patient, visit, ctx, status="finished")
    return patient


def _set_visit(ctx: Context, **values) -> Patient:
    patient, _pid = _existing_patient(ctx)
    visit, pv1 = _visit_of(patient, ctx)
    encounter = _stored_visit(patient, visit, pv1, ctx)
    changed = [name for name, value in values.items() if getattr(encounter, name) != value]
    for name in changed:
        setattr(encounter, name, values[name])
    if changed:
        encounter.save(update_fields=[*changed, "updated_at"])
    return patient


def _adt_cancel_admit(ctx: Context) -> Patient:
    """A11: the admission did not happen."""
    return _set_visit(ctx, status="cancelled")


def _adt_cancel_discharge(ctx: Context) -> Patient:
    """A13: the patient was not discharged after all."""
    return _set_visit(ctx, status="in_progress", ended_at=None)


def _adt_merge(ctx: Context) -> Patient | None:
    """A40: for each PID/MRG pair the prior patient's records move to the survivor (undoable)."""
    survivor = None
    pid: Segment | None = None
    for segment in ctx.message.segments:
        if segment.name == "PID":
            pid = segment
        elif segment.name == "MRG":
            if pid is None:
                raise Hl7Error(
                    _("MRG comes before any PID."), code=ErrorCode.SEGMENT_SEQUENCE, location=segment.location()
                )
            survivor = _merge_pair(pid, segment, ctx)
            pid = None
    if survivor is None:
        raise Hl7Error(
            _("The required MRG segment is missing."), code=ErrorCode.SEGMENT_SEQUENCE, location=Location("MRG")
        )
    return survivor


def _merge_pair(pid: Segment, mrg: Segment, ctx: Context) -> Patient:
    mapped = map_patient(pid, ctx)
    survivor = _find(mapped)
    if survivor is None:
        raise Hl7Error(
            _("The surviving patient (PID-3 %(values)s) is not known.")
            % {"values": ", ".join(identifier.value for identifier in mapped.lookup)},
            code=ErrorCode.UNKNOWN_KEY,
            location=pid.location(3),
        )
    prior_identifiers, national_id, _mrn = identifiers_of(mrg, 1, ctx)
    prior = _find(
        MappedPatient(demographics=PatientDemographics(national_id=national_id), lookup=prior_identifiers, key="")
    )
    if prior is None:
        raise Hl7Error(
            _("The prior patient (MRG-1 %(values)s) is not known.")
            % {"values": ", ".join(identifier.value for identifier in prior_identifiers) or national_id},
            code=ErrorCode.UNKNOWN_KEY,
            location=mrg.location(1),
        )
    if prior.pk != survivor.pk:
        patients_merge(
            survivor=survivor,
            prior=prior,
            actor=None,
            reason=_("HL7 A40 %(control_id)s") % {"control_id": ctx.message.header.control_id},
            source=ctx.sender,
        )
    return survivor


def _oru(ctx: Context) -> Patient:
    """ORU^R01: lab results, their units, ranges, flags and notes."""
    pid = ctx.message.require("PID")
    mapped = map_patient(pid, ctx)
    results = map_results(ctx.message.segments, ctx)
    patient = _match(mapped, pid, ctx)
    pv1 = ctx.message.first("PV1")
    encounter = None
    if pv1 is not None and pv1.value(19):
        encounter = Encounter.objects.filter(
            source_system=ctx.sender[:64], external_id=pv1.value(19)[:40], patient=patient
        ).first()
    rows = []
    for data in results:
        order = data.order_key or f"{patient.uuid}@{data.observed_at:%Y%m%d%H%M%S}"
        rows.append(
            (
                f"{order}|{data.result_key}",
                {
                    "encounter_id": encounter.pk if encounter is not None else None,
                    "panel_code": data.panel_code,
                    "panel_name": data.panel_name,
                    "code_system": data.code_system,
                    "code": data.code,
                    "name": data.name,
                    "value": data.value,
                    "value_numeric": data.value_numeric,
                    "unit": data.unit,
                    "reference_range": data.reference_range,
                    "abnormal_flag": data.abnormal_flag,
                    "observed_at": data.observed_at,
                    "note": data.note,
                },
            )
        )
    _upsert(LabResult, patient, ctx, rows, gettext_lazy("Lab result"))
    return patient


def _siu(ctx: Context) -> Patient:
    """SIU^S12–S15: the HIS booked, rescheduled, modified or cancelled an appointment."""
    from appointments.models import HisAppointment

    pid = ctx.message.require("PID")
    mapped = map_patient(pid, ctx)
    appointment = map_appointment(ctx.message, ctx)
    patient = _match(mapped, pid, ctx)
    values = {
        "start": appointment.start,
        "duration_minutes": appointment.duration_minutes,
        "department_id": _department_id(appointment.department_codes, ctx),
        "department_code": (appointment.department_codes[0] if appointment.department_codes else "")[:64],
        "doctor_name": appointment.doctor_name,
        "status": appointment.status,
        "reason": appointment.reason,
    }
    (mirrored,) = _upsert(
        HisAppointment, patient, ctx, [(appointment.appointment_id, values)], gettext_lazy("Appointment")
    )
    _siu_place(mirrored, appointment, ctx)
    return patient


def _siu_place(mirrored, appointment: MappedAppointment, ctx: Context) -> None:
    """Book, move or cancel the place the HIS appointment takes in our clinic slots; AA with a warning if none."""
    from appointments.services.his import his_appointment_sync

    warnings = his_appointment_sync(
        his_appointment=mirrored, doctor_number=appointment.doctor_number, doctor_name=appointment.doctor_name
    )
    sch = ctx.message.require("SCH")
    for warning in warnings:
        location = appointment.doctor_location if warning.about == "doctor" else sch.location(2)
        ctx.warnings.append(Warning_(warning.message, location))


ADT_HANDLERS: dict[str, Handler] = {
    "A02": _adt_transfer,
    "A03": _adt_discharge,
    "A11": _adt_cancel_admit,
    "A13": _adt_cancel_discharge,
    "A40": _adt_merge,
}
