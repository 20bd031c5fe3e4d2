"""Archive rows → FHIR R4 resources (JSON dicts). Pure functions; masking decided by the caller."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from hcrm.masking import mask_national_id, mask_text
from integrations.fhir import codes


def instant(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def local_datetime(value: dt.datetime | None) -> str | None:
    return timezone.localtime(value).isoformat() if value is not None else None


def _meta(row) -> dict[str, Any]:
    return {"lastUpdated": instant(row.updated_at)}


def _clean(resource: dict[str, Any]) -> dict[str, Any]:
    """Drop empty elements: FHIR forbids empty strings, lists and objects."""
    cleaned = {}
    for key, value in resource.items():
        if isinstance(value, dict):
            value = _clean(value)
        elif isinstance(value, list):
            value = [_clean(item) if isinstance(item, dict) else item for item in value]
            value = [item for item in value if item not in ("", None, {}, [])]
        if value not in ("", None, {}, []):
            cleaned[key] = value
    return cleaned


def patient_reference(patient) -> dict[str, str]:
    return {"reference": f"Patient/{patient.uuid}"}


def patient_resource(patient, *, identifiers, revealed: bool, survivor=None) -> dict[str, Any]:
    """A Patient; with `revealed` False the national ID and street address are masked."""
    identifier = [
        {
            "use": "usual",
            "type": {"coding": [{"system": codes.V2_0203, "code": "MR", "display": "Medical record number"}]},
            "system": codes.MRN_SYSTEM,
            "value": patient.mrn,
        }
    ]
    if patient.national_id:
        identifier.append(
            {
                "use": "official",
                "type": {
                    "coding": [
                        {"system": codes.V2_0203, "code": "NI", "display": "National unique individual identifier"}
                    ]
                },
                "system": codes.NATIONAL_ID_SYSTEM,
                "value": patient.national_id if revealed else mask_national_id(patient.national_id),
            }
        )
    for row in identifiers:
        code = codes.KIND_TYPE_CODE.get(row.kind)
        identifier.append(
            {
                "type": {"coding": [{"system": codes.V2_0203, "code": code[0], "display": code[1]}]} if code else None,
                "system": codes.system_for_assigner(row.assigner),
                "value": row.value,
            }
        )
    telecom = []
    if patient.mobile:
        telecom.append({"system": "phone", "value": patient.mobile, "use": "mobile"})
    if patient.phone:
        telecom.append({"system": "phone", "value": patient.phone, "use": "home"})
    if patient.email:
        telecom.append({"system": "email", "value": patient.email})
    address = {
        "use": "home",
        "line": [patient.address_detail if revealed else mask_text(patient.address_detail)],
        "city": patient.city,
        "district": patient.district,
        "state": patient.province,
        "postalCode": patient.postal_code,
        "country": "CN" if patient.province else "",
    }
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(patient.uuid),
        "meta": _meta(patient),
        "identifier": identifier,
        "active": patient.merged_into_id is None,
        "name": [{"use": "official", "text": patient.name}],
        "telecom": telecom,
        "gender": codes.SEX_TO_GENDER.get(patient.sex, "unknown"),
        "birthDate": patient.birth_date.isoformat() if patient.birth_date else None,
        "address": [address],
        "communication": [
            {
                "language": {
                    "coding": [
                        {
                            "system": "urn:ietf:bcp:47",
                            "code": "zh-CN" if patient.preferred_language == "zh-hans" else "en",
                        }
                    ]
                },
                "preferred": True,
            }
        ],
    }
    if patient.marital_status:
        code = codes.MARITAL_STATUS_OUT.get(patient.marital_status, "UNK")
        resource["maritalStatus"] = {"coding": [{"system": codes.MARITAL_STATUS_SYSTEM, "code": code}]}
    if patient.is_deceased:
        if patient.deceased_date:
            resource["deceasedDateTime"] = patient.deceased_date.isoformat()
        else:
            resource["deceasedBoolean"] = True
    if survivor is not None:
        resource["link"] = [{"other": patient_reference(survivor), "type": "replaced-by"}]
    return _clean(resource)


def encounter_resource(encounter) -> dict[str, Any]:
    klass = codes.KIND_TO_ENCOUNTER_CLASS[encounter.kind]
    department = encounter.department
    return _clean(
        {
            "resourceType": "Encounter",
            "id": str(encounter.uuid),
            "meta": _meta(encounter),
            "identifier": [{"value": encounter.encounter_number}] if encounter.encounter_number else [],
            "status": codes.ENCOUNTER_STATUS_OUT[encounter.status],
            "class": {"system": codes.ACT_CODE_SYSTEM, "code": klass[0], "display": klass[1]},
            "serviceType": {"coding": [{"code": department.code, "display": department.name}]} if department else None,
            "subject": patient_reference(encounter.patient),
            "participant": [{"individual": {"display": encounter.doctor_display}}] if encounter.doctor_display else [],
            "period": {"start": local_datetime(encounter.started_at), "end": local_datetime(encounter.ended_at)},
            "reasonCode": [{"text": encounter.chief_complaint}] if encounter.chief_complaint else [],
        }
    )


def _encounter_reference(record) -> dict[str, str] | None:
    return {"reference": f"Encounter/{record.encounter.uuid}"} if record.encounter_id else None


def condition_resource(diagnosis) -> dict[str, Any]:
    return _clean(
        {
            "resourceType": "Condition",
            "id": str(diagnosis.uuid),
            "meta": _meta(diagnosis),
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                            "code": "encounter-diagnosis",
                        }
                    ]
                }
            ],
            "code": {
                "coding": [
                    {
                        "system": codes.CONDITION_SYSTEMS_OUT[diagnosis.system],
                        "code": diagnosis.code,
                        "display": diagnosis.name,
                    }
                ],
                "text": diagnosis.name,
            },
            "subject": patient_reference(diagnosis.patient),
            "encounter": _encounter_reference(diagnosis),
            "recordedDate": local_datetime(diagnosis.diagnosed_at),
        }
    )


def observation_resource(result) -> dict[str, Any]:
    system = codes.LOINC_SYSTEM if result.code_system == "loinc" else codes.LOCAL_CODE_SYSTEM
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": str(result.uuid),
        "meta": _meta(result),
        "status": "final",
        "category": [{"text": result.panel_name}] if result.panel_name else [],
        "code": {"coding": [{"system": system, "code": result.code, "display": result.name}], "text": result.name},
        "subject": patient_reference(result.patient),
        "encounter": _encounter_reference(result),
        "effectiveDateTime": local_datetime(result.observed_at),
        "referenceRange": [{"text": result.reference_range}] if result.reference_range else [],
        "note": [{"text": result.note}] if result.note else [],
    }
    if result.value_numeric is not None:
        resource["valueQuantity"] = {"value": result.value_numeric, "unit": result.unit}
    else:
        resource["valueString"] = result.value
    if result.abnormal_flag:
        resource["interpretation"] = [
            {"coding": [{"system": codes.INTERPRETATION_SYSTEM, "code": result.abnormal_flag}]}
        ]
    return _clean(resource)


def procedure_resource(procedure) -> dict[str, Any]:
    system = codes.PROCEDURE_SYSTEMS_OUT.get(procedure.system, codes.LOCAL_CODE_SYSTEM)
    return _clean(
        {
            "resourceType": "Procedure",
            "id": str(procedure.uuid),
            "meta": _meta(procedure),
            "status": "completed",
            "code": {
                "coding": [{"system": system, "code": procedure.code, "display": procedure.name}]
                if procedure.code
                else [],
                "text": procedure.name,
            },
            "subject": patient_reference(procedure.patient),
            "encounter": _encounter_reference(procedure),
            "performedDateTime": local_datetime(procedure.performed_at),
            "performer": [{"actor": {"display": procedure.performer_name}}] if procedure.performer_name else [],
            "bodySite": [{"text": procedure.body_site}] if procedure.body_site else [],
            "note": [{"text": procedure.note}] if procedure.note else [],
        }
    )


def medication_request_resource(order) -> dict[str, Any]:
    dosage = {
        "text": " ".join(part for part in (order.dose, order.route, order.frequency) if part),
        "route": {"text": order.route} if order.route else None,
    }
    return _clean(
        {
            "resourceType": "MedicationRequest",
            "id": str(order.uuid),
            "meta": _meta(order),
            "status": codes.MEDICATION_STATUS_OUT[order.status],
            "intent": "order",
            "medicationCodeableConcept": {
                "coding": [{"code": order.code, "display": order.name}] if order.code else [],
                "text": order.name,
            },
            "subject": patient_reference(order.patient),
            "encounter": _encounter_reference(order),
            "authoredOn": local_datetime(order.ordered_at),
            "dosageInstruction": [dosage],
        }
    )


def allergy_resource(allergy) -> dict[str, Any]:
    status = "active" if allergy.is_active else "inactive"
    return _clean(
        {
            "resourceType": "AllergyIntolerance",
            "id": str(allergy.uuid),
            "meta": _meta(allergy),
            "clinicalStatus": {"coding": [{"system": codes.ALLERGY_CLINICAL_STATUS, "code": status}]},
            "code": {"coding": [{"code": allergy.code}] if allergy.code else [], "text": allergy.substance},
            "patient": patient_reference(allergy.patient),
            "recordedDate": local_datetime(allergy.recorded_at),
            "reaction": [
                {
                    "manifestation": [{"text": allergy.reaction or allergy.substance}],
                    "severity": allergy.severity or None,
                }
            ]
            if allergy.reaction or allergy.severity
            else [],
        }
    )


# --- Schedules, slots and appointments --------------------------------------------------------------


def practitioner_reference(doctor) -> dict[str, str]:
    """The doctor by public id (search Schedule?actor= and Appointment?practitioner= with it) and name."""
    return {
        "reference": f"Practitioner/{doctor.uuid}",
        "type": "Practitioner",
        "display": doctor.full_name or doctor.get_username(),
    }


def _clinic_level(schedule) -> list[dict[str, Any]]:
    return [
        {
            "coding": [
                {
                    "system": codes.CLINIC_LEVEL_SYSTEM,
                    "code": schedule.clinic_level,
                    "display": str(schedule.get_clinic_level_display()),
                }
            ]
        }
    ]


def _specialty(department) -> list[dict[str, Any]]:
    return [{"coding": [{"system": codes.DEPARTMENT_SYSTEM, "code": department.code, "display": department.name}]}]


def schedule_resource(schedule) -> dict[str, Any]:
    """One clinic session (出诊): the doctor, the department and the room as actors; active unless stopped."""
    department = schedule.department
    actors = [
        practitioner_reference(schedule.doctor),
        {
            "type": "HealthcareService",
            "identifier": {"system": codes.DEPARTMENT_SYSTEM, "value": department.code},
            "display": department.name,
        },
    ]
    if schedule.location:
        actors.append({"type": "Location", "display": schedule.location})
    return _clean(
        {
            "resourceType": "Schedule",
            "id": str(schedule.uuid),
            "meta": _meta(schedule),
            "active": schedule.status == "open",
            "serviceType": _clinic_level(schedule),
            "specialty": _specialty(department),
            "actor": actors,
            "planningHorizon": {"start": local_datetime(schedule.starts_at), "end": local_datetime(schedule.ends_at)},
            "comment": schedule.stopped_reason if schedule.status != "open" else "",
        }
    )


def slot_status(slot) -> str:
    """busy-unavailable in a stopped session; busy once every place of every channel is held or booked."""
    if slot.schedule.status != "open":
        return "busy-unavailable"
    return "busy" if slot.taken_total >= slot.capacity_total else "free"


def slot_resource(slot) -> dict[str, Any]:
    return _clean(
        {
            "resourceType": "Slot",
            "id": str(slot.uuid),
            "meta": _meta(slot),
            "schedule": {"reference": f"Schedule/{slot.schedule.uuid}"},
            "status": slot_status(slot),
            "start": local_datetime(slot.starts_at),
            "end": local_datetime(slot.ends_at),
            "overbooked": False,
        }
    )


def appointment_resource(appointment) -> dict[str, Any]:
    """A booking: the visit number as identifier, the slot it takes, the patient and the doctor."""
    status = codes.APPOINTMENT_STATUS_OUT[appointment.status]
    attending = "tentative" if status == "pending" else "accepted"
    schedule = appointment.schedule
    return _clean(
        {
            "resourceType": "Appointment",
            "id": str(appointment.uuid),
            "meta": _meta(appointment),
            "identifier": [
                {
                    "type": {"text": "visit number"},
                    "system": codes.VISIT_NUMBER_SYSTEM,
                    "value": str(appointment.visit_number),
                }
            ]
            if appointment.visit_number
            else [],
            "status": status,
            "cancelationReason": {"text": appointment.cancel_reason} if appointment.cancel_reason else None,
            "serviceType": _clinic_level(schedule),
            "specialty": _specialty(schedule.department),
            "start": local_datetime(appointment.slot.starts_at),
            "end": local_datetime(appointment.slot.ends_at),
            "created": local_datetime(appointment.created_at),
            "slot": [{"reference": f"Slot/{appointment.slot.uuid}"}],
            "participant": [
                {"actor": patient_reference(appointment.patient), "required": "required", "status": attending},
                {"actor": practitioner_reference(appointment.doctor), "required": "required", "status": attending},
            ],
        }
    )
