"""Writes to the patient archive: validated, numbered, audited, and never half-done."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from hcrm.models import AuditEntry, Counter
from patients import services
from patients.models import (
    BreakGlassGrant,
    Consent,
    Encounter,
    LabResult,
    Patient,
    PatientDepartment,
    PatientIdentifier,
)
from tests.factories import EncounterFactory, LabResultFactory, PatientFactory, national_id

pytestmark = pytest.mark.django_db

ZHANG_ID = national_id("110105", dt.date(1980, 5, 6), 13)  # a man


def _rows() -> dict[str, int]:
    """What a failed write must leave exactly as it was."""
    return {
        "patients": Patient.objects.count(),
        "links": PatientDepartment.objects.count(),
        "audit": AuditEntry.objects.count(),
        "mrn": Counter.objects.filter(name="mrn").values_list("value", flat=True).first() or 0,
        "encounters": Encounter.objects.count(),
        "labs": LabResult.objects.count(),
        "identifiers": PatientIdentifier.objects.count(),
    }


def _errors(call, **kwargs) -> dict[str, list[str]]:
    """The codes of a ValidationError, by field; nothing may have been written."""
    before = _rows()
    with pytest.raises(ValidationError) as error:
        call(**kwargs)
    assert _rows() == before
    return {field: [item.code for item in items] for field, items in error.value.error_dict.items()}


# --- Create -----------------------------------------------------------------------------------


def test_create_fills_birth_date_and_sex_from_the_national_id(staff, internal_medicine):
    patient = services.patient_create(
        actor=staff["doctor"],
        data={"name": " 张三 ", "national_id": ZHANG_ID.lower(), "mobile": "138 1234 5678"},
        departments=[internal_medicine],
    )

    patient.refresh_from_db()
    assert (patient.name, patient.national_id, patient.mobile) == ("张三", ZHANG_ID, "+8613812345678")
    assert (patient.birth_date, patient.sex) == (dt.date(1980, 5, 6), "male")
    assert (patient.name_pinyin, patient.name_pinyin_initials, patient.name_pinyin_consonants) == (
        "zhangsan",
        "zs",
        "zhs",
    )
    assert list(patient.departments.values_list("code", flat=True)) == ["NK"]


def test_mrns_are_numbered_in_order_and_failures_use_no_number(staff):
    first = services.patient_create(actor=staff["doctor"], data={"name": "甲"})
    _errors(services.patient_create, actor=staff["doctor"], data={"name": "乙", "mobile": "12"})
    second = services.patient_create(actor=staff["doctor"], data={"name": "丙"})

    assert (first.mrn, second.mrn) == ("M00000001", "M00000002")


def test_a_given_mrn_is_kept_and_a_taken_one_refused(staff):
    services.patient_create(actor=staff["doctor"], data={"name": "甲", "mrn": "HIS0001"})

    with pytest.raises(ValidationError) as error:
        services.patient_create(actor=staff["doctor"], data={"name": "乙", "mrn": "HIS0001"})

    assert error.value.message_dict == {"mrn": ["Another patient already has this MRN."]}
    assert list(Patient.objects.values_list("name", flat=True)) == ["甲"]


def test_duplicate_national_id_names_the_holder(staff):
    holder = services.patient_create(actor=staff["doctor"], data={"name": "张三", "national_id": ZHANG_ID})

    with pytest.raises(ValidationError) as error:
        services.patient_create(actor=staff["doctor"], data={"name": "张三", "national_id": ZHANG_ID})

    assert error.value.message_dict == {"national_id": [f"Patient {holder.mrn} already has this national ID number."]}
    assert Patient.objects.count() == 1


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({"name": "  "}, {"name": ["required"]}),
        ({"name": "张三", "national_id": "1101051980"}, {"national_id": ["format"]}),
        ({"name": "张三", "national_id": ZHANG_ID[:17] + "0"}, {"national_id": ["check_digit"]}),
        ({"name": "张三", "national_id": ZHANG_ID, "birth_date": dt.date(1980, 5, 7)}, {"birth_date": ["mismatch"]}),
        ({"name": "张三", "national_id": ZHANG_ID, "sex": "female"}, {"sex": ["mismatch"]}),
        ({"name": "张三", "mobile": "010-65123456"}, {"mobile": ["mobile"]}),
        ({"name": "张三", "phone": "12"}, {"phone": ["phone"]}),
        ({"name": "张三", "email": "not-an-email"}, {"email": ["invalid"]}),
        ({"name": "张三", "birth_date": "1980-13-01"}, {"birth_date": ["invalid"]}),
        ({"name": "张三", "sex": "robot"}, {"sex": ["invalid_choice"]}),
        (
            {"name": "张三", "birth_date": dt.date(1980, 1, 1), "deceased_date": dt.date(1979, 1, 1)},
            {"deceased_date": ["invalid"]},
        ),
    ],
)
def test_each_validation_error_names_its_field(staff, data, errors):
    assert _errors(services.patient_create, actor=staff["doctor"], data=data) == errors


def test_future_dates_are_refused(staff):
    tomorrow = timezone.localdate() + dt.timedelta(days=1)

    errors = _errors(
        services.patient_create,
        actor=staff["doctor"],
        data={"name": "张三", "birth_date": tomorrow, "is_deceased": True, "deceased_date": tomorrow},
    )

    assert errors == {"birth_date": ["future"], "deceased_date": ["future"]}


def test_all_errors_are_reported_at_once(staff):
    errors = _errors(
        services.patient_create, actor=staff["doctor"], data={"name": "", "mobile": "1", "phone": "2", "email": "x"}
    )

    assert errors == {"name": ["required"], "mobile": ["phone"], "phone": ["phone"], "email": ["invalid"]}


def test_a_date_of_death_marks_the_patient_deceased(staff):
    patient = services.patient_create(
        actor=staff["doctor"], data={"name": "张三", "deceased_date": dt.date(2020, 1, 1)}
    )

    assert patient.is_deceased is True


# --- Update -----------------------------------------------------------------------------------


def test_update_writes_and_audits_only_changed_fields(staff, patient):
    services.patient_update(actor=staff["doctor"], patient=patient, data={"name": "张三", "occupation": "教师"})
    services.patient_update(actor=staff["doctor"], patient=patient, data={"occupation": "教师"})

    entries = AuditEntry.objects.filter(event="update")
    assert [entry.changes for entry in entries] == [{"occupation": ["", "教师"]}]
    assert entries.get().actor == staff["doctor"]


def test_renaming_updates_the_pinyin_keys(staff, patient):
    services.patient_update(actor=staff["doctor"], patient=patient, data={"name": "曾小明"})

    patient.refresh_from_db()
    assert (patient.name_pinyin, patient.name_pinyin_initials) == ("zengxiaoming", "zxm")


def test_changing_the_birth_date_is_checked_against_the_national_id(staff):
    # bug: the national ID was only compared when the ID itself changed
    patient = services.patient_create(actor=staff["doctor"], data={"name": "张三", "national_id": ZHANG_ID})

    errors = _errors(
        services.patient_update,
        actor=staff["doctor"],
        patient=patient,
        data={"birth_date": dt.date(1990, 1, 1), "sex": "female"},
    )

    assert errors == {"birth_date": ["mismatch"], "sex": ["mismatch"]}
    patient.refresh_from_db()
    assert (patient.birth_date, patient.sex) == (dt.date(1980, 5, 6), "male")


def test_update_to_a_taken_national_id_is_refused(staff):
    services.patient_create(actor=staff["doctor"], data={"name": "张三", "national_id": ZHANG_ID})
    other = services.patient_create(actor=staff["doctor"], data={"name": "李四"})

    assert _errors(
        services.patient_update, actor=staff["administrator"], patient=other, data={"national_id": ZHANG_ID}
    ) == {"national_id": ["duplicate"]}


def test_masked_fields_cannot_be_changed_without_seeing_them(staff, patient):
    # given a doctor, who sees the national ID and employer masked
    before = (patient.national_id, patient.employer)

    errors = _errors(
        services.patient_update,
        actor=staff["doctor"],
        patient=patient,
        data={"national_id": ZHANG_ID, "employer": "同仁堂", "occupation": "药师"},
    )

    assert errors == {"national_id": ["masked"], "employer": ["masked"]}
    patient.refresh_from_db()
    assert (patient.national_id, patient.employer, patient.occupation) == (*before, "")


def test_breaking_the_glass_allows_changing_masked_fields(staff, patient):
    services.patient_reveal(actor=staff["doctor"], patient=patient, reason="证件号码录入错误，核对身份证")

    services.patient_update(actor=staff["doctor"], patient=patient, data={"employer": "同仁堂"})

    patient.refresh_from_db()
    assert patient.employer == "同仁堂"


def test_fields_outside_the_archive_cannot_be_set(staff, patient):
    assert _errors(
        services.patient_update, actor=staff["doctor"], patient=patient, data={"name_pinyin": "x", "uuid": "y"}
    ) == {"name_pinyin": [None], "uuid": [None]}


# --- Delete -----------------------------------------------------------------------------------


def test_delete_a_patient_registered_in_error(staff, patient):
    services.patient_delete(actor=staff["administrator"], patient=patient)

    assert Patient.objects.count() == 0
    assert AuditEntry.objects.get(event="delete", content_type__model="patient").patient_uuid == patient.uuid


@pytest.mark.parametrize("factory", [EncounterFactory, LabResultFactory])
def test_a_patient_with_a_clinical_record_cannot_be_deleted(staff, patient, factory):
    # bug: only encounters and diagnoses counted; lab results were deleted with the patient
    factory(patient=patient)

    with pytest.raises(ValidationError):
        services.patient_delete(actor=staff["administrator"], patient=patient)

    assert Patient.objects.filter(pk=patient.pk).exists()


# --- Break the glass and consent -------------------------------------------------------------------


def test_reveal_grants_time_limited_access_and_records_the_reason(staff, patient):
    before = timezone.now()

    grant = services.patient_reveal(actor=staff["other_doctor"], patient=patient, reason="  急诊抢救，患者昏迷  ")

    assert grant.reason == "急诊抢救，患者昏迷"
    assert before + dt.timedelta(minutes=30) <= grant.expires_at <= timezone.now() + dt.timedelta(minutes=30)
    entry = AuditEntry.objects.get(event="reveal")
    assert (entry.actor, entry.patient_uuid, entry.reason) == (
        staff["other_doctor"],
        patient.uuid,
        "急诊抢救，患者昏迷",
    )


def test_reveal_needs_a_reason_and_a_person(staff, patient):
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(ValidationError) as no_reason:
        services.patient_reveal(actor=staff["doctor"], patient=patient, reason=" 看看 ")
    with pytest.raises(PermissionDenied):
        services.patient_reveal(actor=AnonymousUser(), patient=patient, reason="急诊抢救")

    assert list(no_reason.value.message_dict) == ["reason"]
    assert BreakGlassGrant.objects.count() == 0
    assert AuditEntry.objects.filter(event="reveal").count() == 0


def test_consent_is_recorded_and_replaced(staff, patient):
    services.consent_set(actor=staff["agent"], patient=patient, purpose="marketing", channel="sms", granted=True)
    services.consent_set(actor=staff["agent"], patient=patient, purpose="marketing", channel="sms", granted=False)
    services.consent_set(actor=staff["agent"], patient=patient, purpose="marketing", channel="sms", granted=False)

    assert list(Consent.objects.values_list("purpose", "channel", "granted")) == [("marketing", "sms", False)]
    assert AuditEntry.objects.filter(content_type__model="consent").count() == 2


def test_consent_for_an_unknown_purpose_is_refused(staff, patient):
    with pytest.raises(ValidationError) as error:
        services.consent_set(actor=staff["agent"], patient=patient, purpose="lottery", channel="sms", granted=True)

    assert list(error.value.message_dict) == ["purpose"]
    assert Consent.objects.count() == 0


# --- Records ----------------------------------------------------------------------------------------


def _encounter_data(**overrides):
    return {"kind": "outpatient", "started_at": timezone.now() - dt.timedelta(days=1), **overrides}


def test_record_create_links_the_patient_to_the_encounter_department(staff, patient, acupuncture):
    encounter = services.record_create(
        actor=staff["doctor"], model=Encounter, patient=patient, data=_encounter_data(department=acupuncture)
    )

    assert encounter.patient == patient
    assert sorted(patient.departments.values_list("code", flat=True)) == ["NK", "ZJ"]
    assert AuditEntry.objects.get(content_type__model="encounter").actor == staff["doctor"]


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        (_encounter_data(started_at=timezone.now() + dt.timedelta(days=2)), {"started_at": ["future"]}),
        (
            _encounter_data(ended_at=timezone.now() - dt.timedelta(days=3)),
            {"ended_at": ["invalid"]},
        ),
        (_encounter_data(kind="teleport"), {"kind": ["invalid_choice"]}),
        ({"kind": "outpatient"}, {"started_at": ["null"]}),
    ],
)
def test_record_errors_name_their_field(staff, patient, data, errors):
    assert _errors(services.record_create, actor=staff["doctor"], model=Encounter, patient=patient, data=data) == errors


def test_a_record_cannot_point_at_another_patients_encounter(staff, patient):
    elsewhere = EncounterFactory()

    errors = _errors(
        services.record_create,
        actor=staff["doctor"],
        model=LabResult,
        patient=patient,
        data={"encounter": elsewhere, "code": "1", "name": "x", "value": "1", "observed_at": timezone.now()},
    )

    assert errors == {"encounter": ["invalid"]}


def test_a_repeated_external_record_is_refused(staff, patient):
    data = _encounter_data(source_system="his", external_id="E1")
    services.record_create(actor=staff["doctor"], model=Encounter, patient=patient, data=data)

    with pytest.raises(ValidationError) as error:
        services.record_create(actor=staff["doctor"], model=Encounter, patient=patient, data=dict(data))

    assert error.value.messages == ["This record already exists."]
    assert Encounter.objects.count() == 1


def test_record_update_and_delete(staff, patient):
    result = LabResultFactory(patient=patient, value="7.8", abnormal_flag="H")

    services.record_update(actor=staff["nurse"], record=result, data={"value": "5.0", "abnormal_flag": "N"})
    assert LabResult.objects.values_list("value", "abnormal_flag").get() == ("5.0", "N")

    services.record_delete(actor=staff["department_head"], record=result)
    assert LabResult.objects.count() == 0
    entries = AuditEntry.objects.filter(content_type__model="labresult").order_by("id")
    events = list(entries.values_list("event", "actor__username"))
    assert events == [("create", None), ("update", "nurse"), ("delete", "department_head")]


def test_record_update_cannot_move_a_record(staff, patient):
    result = LabResultFactory(patient=patient)

    assert _errors(services.record_update, actor=staff["nurse"], record=result, data={"patient": PatientFactory()}) == {
        "patient": [None]
    }
    assert LabResult.objects.get().patient == patient
