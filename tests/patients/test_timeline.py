"""One timeline of a patient's record, newest first, showing only what the viewer's role may see."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from patients.models import Charge
from patients.timeline import patient_timeline
from tests.factories import (
    AllergyFactory,
    ClinicalHistoryFactory,
    DiagnosisFactory,
    EncounterFactory,
    LabResultFactory,
    MedicationOrderFactory,
    ProcedureFactory,
)

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


def _days_ago(days: int) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


@pytest.fixture
def record(patient, internal_medicine):
    """One record of each kind, a day apart: the newest is the lab panel."""
    encounter = EncounterFactory(
        patient=patient, department=internal_medicine, started_at=_days_ago(6), ended_at=_days_ago(4),
        chief_complaint="头痛3天", doctor_name="李时珍",
    )  # fmt: skip
    DiagnosisFactory(patient=patient, encounter=encounter, code="I10", name="原发性高血压", diagnosed_at=_days_ago(6))
    DiagnosisFactory(
        patient=patient, encounter=encounter, system="tcm_syndrome", code="BNV010", name="肝阳上亢证",
        is_primary=False, diagnosed_at=_days_ago(6),
    )  # fmt: skip
    Charge.objects.create(
        patient=patient, encounter=encounter, category="herbal", amount=Decimal("120.50"), charged_at=_days_ago(6)
    )
    DiagnosisFactory(patient=patient, code="E11.9", name="2型糖尿病", diagnosed_at=_days_ago(5))
    ProcedureFactory(patient=patient, name="针刺", code="ZJ01", body_site="百会", performed_at=_days_ago(3))
    MedicationOrderFactory(patient=patient, name="天麻钩藤饮", days=7, ordered_at=_days_ago(2))
    LabResultFactory(
        patient=patient, panel_name="血糖", name="葡萄糖", value="7.8", abnormal_flag="H", observed_at=_days_ago(1)
    )
    LabResultFactory(
        patient=patient, panel_name="血糖", code="4548-4", name="糖化血红蛋白", value="5.6", unit="%",
        reference_range="4-6", abnormal_flag="N", observed_at=_days_ago(1),
    )  # fmt: skip
    AllergyFactory(patient=patient, substance="青霉素", reaction="皮疹", severity="moderate", recorded_at=_days_ago(30))
    ClinicalHistoryFactory(patient=patient, kind="family", content="父亲高血压", recorded_at=_days_ago(40))
    return patient


def test_every_kind_of_record_newest_first(staff, record):
    entries = patient_timeline(record, staff["doctor"])

    assert [(entry.kind, entry.at) for entry in entries] == [
        ("lab", _days_ago(1)),
        ("medication", _days_ago(2)),
        ("procedure", _days_ago(3)),
        ("diagnosis", _days_ago(5)),
        ("encounter", _days_ago(6)),
        ("allergy", _days_ago(30)),
        ("history", _days_ago(40)),
    ]


def test_encounter_lists_its_diagnoses_department_and_charges(staff, record):
    encounter = next(entry for entry in patient_timeline(record, staff["doctor"]) if entry.kind == "encounter")

    assert encounter.title == "Outpatient · 头痛3天"
    until = timezone.localdate(_days_ago(4)).isoformat()
    assert encounter.detail == f"Internal medicine · 李时珍 · until {until} · charges ¥120.50"
    assert encounter.lines == ["ICD-10 (GB/T 14396): I10 原发性高血压", "TCM syndrome (GB/T 15657): BNV010 肝阳上亢证"]


def test_discharge_date_is_the_hospitals_calendar_day(staff, patient):
    # bug: the UTC date was shown, a day early for discharges before 08:00 in Shanghai
    local_morning = timezone.localtime(_days_ago(2)).replace(hour=7, minute=30, second=0)
    EncounterFactory(patient=patient, department=None, started_at=_days_ago(3), ended_at=local_morning)

    entry = patient_timeline(patient, staff["doctor"])[0]

    assert entry.detail == f"李时珍 · until {local_morning.date().isoformat()}"


def test_a_lab_panel_with_an_abnormal_result_is_flagged(staff, record):
    lab = patient_timeline(record, staff["doctor"])[0]

    assert (lab.title, lab.detail, lab.flag) == ("血糖", "2 results, 1 abnormal", "warning")
    assert lab.lines == ["葡萄糖: 7.8 mmol/L (3.9-6.1) [H]", "糖化血红蛋白: 5.6 % (4-6)"]


def test_a_normal_lab_panel_is_not_flagged(staff, patient):
    LabResultFactory(patient=patient, panel_name="血脂", abnormal_flag="N", observed_at=_days_ago(1))
    LabResultFactory(patient=patient, panel_name="血脂", code="2093-3", abnormal_flag="", observed_at=_days_ago(1))

    lab = patient_timeline(patient, staff["doctor"])[0]

    assert (lab.detail, lab.flag) == ("2 results, 0 abnormal", "")


def test_other_entries_read_as_a_person_expects(staff, record):
    by_kind = {entry.kind: entry for entry in patient_timeline(record, staff["doctor"])}

    assert (by_kind["diagnosis"].title, by_kind["diagnosis"].detail) == ("E11.9 2型糖尿病", "ICD-10 (GB/T 14396)")
    assert (by_kind["procedure"].title, by_kind["procedure"].detail) == ("针刺", "ZJ01 · 百会")
    assert (by_kind["medication"].title, by_kind["medication"].detail) == ("天麻钩藤饮", "Herbal decoction · 7 days")
    assert by_kind["medication"].lines == ["天麻 9g", "钩藤 12g 后下", "每日1剂，水煎400ml，分早晚两次温服"]
    assert (by_kind["allergy"].title, by_kind["allergy"].detail, by_kind["allergy"].flag) == (
        "Allergy: 青霉素",
        "皮疹 · Moderate",
        "warning",
    )
    assert (by_kind["history"].title, by_kind["history"].detail) == ("Family history", "父亲高血压")


def test_an_agent_sees_no_lab_results_procedures_medication_or_history(staff, record):
    kinds = [entry.kind for entry in patient_timeline(record, staff["agent"])]

    assert kinds == ["diagnosis", "encounter", "allergy"]


def test_an_analyst_sees_nothing(staff, record):
    assert patient_timeline(record, staff["analyst"]) == []


def test_encounter_diagnoses_are_hidden_without_the_diagnosis_permission(staff, record):
    from django.contrib.auth.models import Permission

    # given a role that may see encounters but not diagnoses
    staff["analyst"].user_permissions.add(Permission.objects.get(codename="view_encounter"))
    analyst = type(staff["analyst"]).objects.get(pk=staff["analyst"].pk)

    # then
    entries = patient_timeline(record, analyst)
    assert [entry.kind for entry in entries] == ["encounter"]
    assert entries[0].lines == []


def test_the_limit_keeps_the_newest(staff, patient):
    for days in range(1, 6):
        ProcedureFactory(patient=patient, name=f"针刺{days}", performed_at=_days_ago(days))

    entries = patient_timeline(patient, staff["doctor"], limit=2)

    assert [entry.title for entry in entries] == ["针刺1", "针刺2"]
