"""Every write to the patient archive goes through a function here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from hcrm.audit import Event, audit_acting_as, audit_read
from hcrm.models import Department
from hcrm.services import counter_next
from patients.events import clinical_records_written
from patients.models import BreakGlassGrant, Consent, Encounter, Patient, PatientDepartment, Tag
from patients.pinyin import name_search_keys
from patients.selectors import can_view_sensitive
from patients.services.identity import candidates_for_patient
from patients.validators import (
    national_id_birth_date,
    national_id_sex,
    normalize_mobile,
    normalize_national_id,
    normalize_phone,
    validate_national_id,
    validate_national_id_matches,
    validate_not_future,
)

PATIENT_FIELDS = (
    "mrn",
    "name",
    "sex",
    "birth_date",
    "national_id",
    "mobile",
    "phone",
    "email",
    "province",
    "city",
    "district",
    "region_code",
    "address_detail",
    "postal_code",
    "employer",
    "occupation",
    "income_band",
    "marital_status",
    "ethnicity",
    "family_notes",
    "source",
    "preferred_language",
    "is_deceased",
    "deceased_date",
)


def _apply_fields(patient: Patient, data: dict[str, Any]) -> list[str]:
    unknown = sorted(set(data) - set(PATIENT_FIELDS))
    if unknown:
        raise ValidationError({field: _("This field cannot be set here.") for field in unknown})
    changed = []
    for field, value in data.items():
        if value is None and field not in ("birth_date", "deceased_date"):
            value = ""
        if getattr(patient, field) != value:
            setattr(patient, field, value)
            changed.append(field)
    return changed


def _normalize_and_validate(patient: Patient, *, changed: Iterable[str]) -> None:
    """Normalise identity fields, fill what the national ID implies, and raise every error at once."""
    changed = set(changed)
    errors: dict[str, list[ValidationError]] = {}

    def add(field: str, error: ValidationError) -> None:
        errors.setdefault(field, []).append(error)

    patient.name = (patient.name or "").strip()
    if not patient.name:
        add("name", ValidationError(_("Enter the patient's name."), code="required"))
    if "national_id" in changed and patient.national_id:
        patient.national_id = normalize_national_id(patient.national_id)
        try:
            validate_national_id(patient.national_id)
        except ValidationError as error:
            add("national_id", error)
        else:
            if not patient.birth_date:
                patient.birth_date = national_id_birth_date(patient.national_id)
            if patient.sex in ("", "unknown"):
                patient.sex = national_id_sex(patient.national_id)
    for field, normalize in (("mobile", normalize_mobile), ("phone", normalize_phone)):
        if field in changed and getattr(patient, field):
            try:
                setattr(patient, field, normalize(getattr(patient, field)))
            except ValidationError as error:
                add(field, error)
    for field in ("birth_date", "deceased_date"):
        value = getattr(patient, field)
        if value:
            if isinstance(value, str):
                try:
                    value = dt.date.fromisoformat(value)
                    setattr(patient, field, value)
                except ValueError:
                    add(field, ValidationError(_("Enter a date as YYYY-MM-DD."), code="invalid"))
                    continue
            try:
                validate_not_future(value)
            except ValidationError as error:
                add(field, error)
    if changed & {"national_id", "birth_date", "sex"} and "national_id" not in errors and patient.national_id:
        # Also when only the birth date or sex changes: they must keep agreeing with the stored ID.
        try:
            validate_national_id(patient.national_id)
        except ValidationError:
            pass  # an ID imported before validation existed is not this change's fault
        else:
            for field, error in validate_national_id_matches(
                patient.national_id, birth_date=patient.birth_date, sex=patient.sex
            ).items():
                if field not in errors:
                    add(field, error)
    if patient.deceased_date and not patient.is_deceased:
        patient.is_deceased = True
    if patient.deceased_date and patient.birth_date and patient.deceased_date < patient.birth_date:
        add("deceased_date", ValidationError(_("The date of death is before the birth date."), code="invalid"))
    if patient.name != getattr(patient, "_indexed_name", None):
        patient.name_pinyin, patient.name_pinyin_initials, patient.name_pinyin_consonants = name_search_keys(
            patient.name
        )
    try:
        patient.full_clean(exclude=["mrn", "merged_into", *errors], validate_unique=False, validate_constraints=False)
    except ValidationError as error:
        for field, messages in error.error_dict.items():
            errors.setdefault(field, []).extend(messages)
    if not errors and patient.national_id:
        duplicate = Patient.objects.filter(national_id=patient.national_id, merged_into__isnull=True)
        if patient.pk:
            duplicate = duplicate.exclude(pk=patient.pk)
        holder = duplicate.only("mrn").first()
        if holder is not None:
            add(
                "national_id",
                ValidationError(
                    _("Patient %(mrn)s already has this national ID number.") % {"mrn": holder.mrn}, code="duplicate"
                ),
            )
    if errors:
        raise ValidationError(errors)


def mrn_next() -> str:
    return f"{settings.MRN_PREFIX}{counter_next(name='mrn'):08d}"


def _department_link(patient: Patient, departments: Iterable[Department]) -> None:
    existing = set(patient.department_links.values_list("department_id", flat=True))
    PatientDepartment.objects.bulk_create(
        [PatientDepartment(patient=patient, department=dept) for dept in departments if dept.pk not in existing],
        ignore_conflicts=True,
    )


def patient_create(
    *,
    actor,
    data: dict[str, Any],
    departments: Iterable[Department] = (),
    tags: Iterable[Tag] = (),
) -> Patient:
    """Register a patient after validating identity fields; links the patient to `departments`."""
    patient = Patient()
    changed = _apply_fields(patient, data)
    _normalize_and_validate(patient, changed=changed)
    try:
        with transaction.atomic(), audit_acting_as(actor):
            if not patient.mrn:
                patient.mrn = mrn_next()
            patient.save()
            if departments:
                _department_link(patient, departments)
            if tags:
                patient.tags.set(tags)
            # Registered by hand: a likely duplicate is still created, and queued for a person to review.
            candidates_for_patient(patient=patient, source="manual")
    except IntegrityError as error:
        raise _integrity_error(error) from None
    return patient


def patient_update(*, actor, patient: Patient, data: dict[str, Any]) -> Patient:
    """Change a patient's demographic fields; only changed fields are written and audited."""
    changed = _apply_fields(patient, data)
    if not changed:
        return patient
    hidden = [field for field in changed if field in Patient.SENSITIVE_FIELDS]
    if hidden and not can_view_sensitive(actor, patient):
        raise ValidationError(
            {
                field: ValidationError(
                    _("This field is masked for you; reveal the record before changing it."), code="masked"
                )
                for field in hidden
            }
        )
    patient._indexed_name = Patient.objects.values_list("name", flat=True).get(pk=patient.pk)
    _normalize_and_validate(patient, changed=changed)
    try:
        with transaction.atomic(), audit_acting_as(actor):
            patient.save()
            if {"name", "birth_date"} & set(changed):
                candidates_for_patient(patient=patient, source="manual")
    except IntegrityError as error:
        raise _integrity_error(error) from None
    return patient


def patient_tags_set(*, actor, patient: Patient, tags: Iterable[Tag]) -> None:
    with transaction.atomic(), audit_acting_as(actor):
        patient.tags.set(tags)


def patient_delete(*, actor, patient: Patient) -> None:
    """Delete a patient registered in error; a patient with a clinical record must be merged instead."""
    clinical = ("encounters", "diagnoses", "procedures", "lab_results", "medication_orders", "allergies", "histories")
    if any(getattr(patient, related).exists() for related in clinical) or patient.merged_from.exists():
        raise ValidationError(
            _(
                "This patient has a clinical record and cannot be deleted; merge the record into the right patient instead."
            )
        )
    with transaction.atomic(), audit_acting_as(actor):
        patient.delete()


def _integrity_error(error: IntegrityError) -> ValidationError:
    message = str(error)
    if "national_id" in message:
        return ValidationError(
            {
                "national_id": ValidationError(
                    _("Another patient already has this national ID number."), code="duplicate"
                )
            }
        )
    if "mrn" in message:
        return ValidationError({"mrn": ValidationError(_("Another patient already has this MRN."), code="duplicate")})
    return ValidationError(_("The record conflicts with an existing one."), code="duplicate")


def patient_reveal(*, actor, patient: Patient, reason: str) -> BreakGlassGrant:
    """Break the glass: show one patient's full record to `actor` for a limited time, with a reason."""
    reason = (reason or "").strip()
    if len(reason) < 4:
        raise ValidationError({"reason": _("Give the reason for revealing this patient's record.")})
    if not getattr(actor, "pk", None):
        raise PermissionDenied(_("Only a signed-in member of staff can break the glass."))
    with transaction.atomic(), audit_acting_as(actor):
        grant = BreakGlassGrant.objects.create(
            user=actor,
            patient=patient,
            reason=reason,
            expires_at=timezone.now() + dt.timedelta(minutes=settings.BREAK_GLASS_MINUTES),
        )
        audit_read(event=Event.REVEAL, instance=patient, reason=reason)
    return grant


def consent_set(*, actor, patient: Patient, purpose: str, channel: str, granted: bool, note: str = "") -> Consent:
    """Record the patient's decision for one purpose and channel (replaces an earlier one)."""
    with transaction.atomic(), audit_acting_as(actor):
        consent = Consent.objects.filter(patient=patient, purpose=purpose, channel=channel).first()
        if consent is None:
            consent = Consent(patient=patient, purpose=purpose, channel=channel, granted=granted, note=note)
            consent.full_clean()
            consent.save()
        elif consent.granted != granted or consent.note != note:
            consent.granted, consent.note = granted, note
            consent.save(update_fields=["granted", "note", "updated_at"])
    return consent


# --- Records that belong to a patient ----------------------------------------------------------

_FUTURE_CHECKED_FIELDS = ("started_at", "diagnosed_at", "performed_at", "observed_at", "ordered_at", "recorded_at")


def _validate_record(record: models.Model) -> None:
    errors: dict[str, list[ValidationError]] = {}
    for field in _FUTURE_CHECKED_FIELDS:
        value = getattr(record, field, None)
        if value is not None:
            try:
                validate_not_future(value)
            except ValidationError as error:
                errors.setdefault(field, []).append(error)
    if isinstance(record, Encounter) and record.ended_at and record.ended_at < record.started_at:
        errors.setdefault("ended_at", []).append(ValidationError(_("The end is before the start."), code="invalid"))
    encounter = getattr(record, "encounter", None)
    if encounter is not None and encounter.patient_id != record.patient_id:
        errors.setdefault("encounter", []).append(
            ValidationError(_("This encounter belongs to another patient."), code="invalid")
        )
    try:
        record.full_clean(exclude=["patient", *errors], validate_constraints=False)
    except ValidationError as error:
        for field, messages in error.error_dict.items():
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)


def record_create(*, actor, model: type[models.Model], patient: Patient, data: dict[str, Any]) -> models.Model:
    """Add an identifier, contact, history entry or clinical record to a patient."""
    record = model(patient=patient, **data)
    _validate_record(record)
    try:
        with transaction.atomic(), audit_acting_as(actor):
            record.save()
            if isinstance(record, Encounter) and record.department_id:
                _department_link(patient, [record.department])
            clinical_records_written([record])
    except IntegrityError:
        raise ValidationError(_("This record already exists.")) from None
    return record


def record_update(*, actor, record: models.Model, data: dict[str, Any]) -> models.Model:
    """Change fields of a record that belongs to a patient."""
    for field, value in data.items():
        if field in ("patient", "patient_id", "id", "uuid"):
            raise ValidationError({field: _("This field cannot be changed.")})
        setattr(record, field, value)
    _validate_record(record)
    try:
        with transaction.atomic(), audit_acting_as(actor):
            record.save()
            if isinstance(record, Encounter) and record.department_id:
                _department_link(record.patient, [record.department])
            if not isinstance(record, Encounter) or "ended_at" in data:
                clinical_records_written([record])
    except IntegrityError:
        raise ValidationError(_("This record conflicts with an existing one.")) from None
    return record


def record_delete(*, actor, record: models.Model) -> None:
    with transaction.atomic(), audit_acting_as(actor):
        record.delete()
