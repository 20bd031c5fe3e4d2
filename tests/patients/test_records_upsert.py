"""Upserting a system's records on (external id, source system): one statement, created/changed/unchanged told apart."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from patients.models import Diagnosis, Encounter, PatientDepartment
from patients.services.records import external_records_upsert
from tests.factories import DepartmentFactory, PatientFactory

pytestmark = pytest.mark.django_db

DIAGNOSED = dt.datetime(2025, 3, 1, 8, 30, tzinfo=dt.UTC)


def _diagnosis(patient, external_id: str, code: str = "I10", **values) -> dict:
    return {
        "patient_id": patient.pk,
        "source_system": "HIS^TCMH",
        "external_id": external_id,
        "system": "icd10",
        "code": code,
        "name": "原发性高血压",
        "diagnosed_at": DIAGNOSED,
        **values,
    }


def test_new_rows_are_created_in_one_statement():
    patient = PatientFactory()

    with CaptureQueriesContext(connection) as queries:
        results = external_records_upsert(
            model=Diagnosis, rows=[_diagnosis(patient, "D1"), _diagnosis(patient, "D2", code="E11.9")]
        )

    assert len(queries.captured_queries) == 1
    assert [(result.created, result.changed) for result in results] == [(True, False), (True, False)]
    assert sorted(Diagnosis.objects.values_list("external_id", "code", "patient_id")) == [
        ("D1", "I10", patient.pk),
        ("D2", "E11.9", patient.pk),
    ]
    assert results[0].instance.pk == Diagnosis.objects.get(external_id="D1").pk


def test_an_unchanged_row_keeps_its_updated_at_and_a_changed_one_moves():
    patient = PatientFactory()
    external_records_upsert(model=Diagnosis, rows=[_diagnosis(patient, "D1"), _diagnosis(patient, "D2")])
    before = dict(Diagnosis.objects.values_list("external_id", "updated_at"))

    results = external_records_upsert(
        model=Diagnosis, rows=[_diagnosis(patient, "D1"), _diagnosis(patient, "D2", name="高血压病")]
    )

    assert [(result.created, result.changed) for result in results] == [(False, False), (False, True)]
    after = dict(Diagnosis.objects.values_list("external_id", "updated_at"))
    assert after["D1"] == before["D1"]
    assert after["D2"] > before["D2"]
    assert Diagnosis.objects.get(external_id="D2").name == "高血压病"


def test_a_row_of_another_patient_is_left_alone_and_comes_back_as_none():
    owner, other = PatientFactory(), PatientFactory()
    external_records_upsert(model=Diagnosis, rows=[_diagnosis(owner, "D1")])

    results = external_records_upsert(
        model=Diagnosis, rows=[_diagnosis(other, "D1", code="E11.9"), _diagnosis(other, "D2")]
    )

    assert results[0] is None
    assert results[1].created
    assert Diagnosis.objects.get(external_id="D1").code == "I10"
    assert Diagnosis.objects.get(external_id="D1").patient_id == owner.pk


def test_rows_naming_one_key_are_merged_the_later_winning():
    patient = PatientFactory()

    results = external_records_upsert(
        model=Diagnosis, rows=[_diagnosis(patient, "D1"), _diagnosis(patient, "D1", code="E11.9")]
    )

    assert results[0] is results[1]
    assert list(Diagnosis.objects.values_list("external_id", "code")) == [("D1", "E11.9")]


def test_kept_columns_stay_and_on_existing_values_replace_the_sent_ones():
    patient = PatientFactory()
    started = timezone.now() - dt.timedelta(days=2)
    visit = {
        "patient_id": patient.pk,
        "source_system": "HIS^TCMH",
        "external_id": "V1",
        "kind": "inpatient",
        "status": "in_progress",
        "started_at": started,
        "bed": "1",
    }
    external_records_upsert(model=Encounter, rows=[visit])

    (result,) = external_records_upsert(
        model=Encounter,
        rows=[{**visit, "started_at": started + dt.timedelta(hours=5), "bed": "2", "status": "planned"}],
        keep={"started_at"},
        on_existing={"status": "finished"},
    )

    encounter = Encounter.objects.get()
    assert (encounter.started_at, encounter.bed, encounter.status) == (started, "2", "finished")
    assert (result.instance.pk, result.changed) == (encounter.pk, True)


def test_department_links_are_made_once():
    patient, department = PatientFactory(), DepartmentFactory()
    PatientDepartment.objects.filter(patient=patient).delete()
    visit = {
        "patient_id": patient.pk,
        "source_system": "HIS^TCMH",
        "external_id": "V1",
        "kind": "outpatient",
        "started_at": timezone.now(),
        "department_id": department.pk,
    }

    for _ in range(2):
        external_records_upsert(model=Encounter, rows=[visit], department_links=[(patient.pk, department.pk)])

    assert list(PatientDepartment.objects.filter(patient=patient).values_list("department_id", flat=True)) == [
        department.pk
    ]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="tuple ids (ctid) are PostgreSQL's")
def test_an_unchanged_row_is_not_written_at_all():
    patient = PatientFactory()
    (first,) = external_records_upsert(model=Diagnosis, rows=[_diagnosis(patient, "D1")])

    def tuple_id():  # any UPDATE, even of equal values, puts a new row version elsewhere
        with connection.cursor() as cursor:
            cursor.execute("SELECT ctid::text FROM patients_diagnosis WHERE id = %s", [first.instance.pk])
            return cursor.fetchone()[0]

    stored = tuple_id()
    (again,) = external_records_upsert(model=Diagnosis, rows=[_diagnosis(patient, "D1")])
    unchanged = tuple_id()
    external_records_upsert(model=Diagnosis, rows=[_diagnosis(patient, "D1", name="高血压病")])

    assert (again.created, again.changed, again.instance.pk) == (False, False, first.instance.pk)
    assert unchanged == stored
    assert tuple_id() != stored


def test_a_row_naming_no_field_of_the_model_is_refused_and_nothing_is_written():
    patient = PatientFactory()

    with pytest.raises(TypeError, match="no field named colour"):
        external_records_upsert(
            model=Diagnosis, rows=[_diagnosis(patient, "D1"), _diagnosis(patient, "D2", colour="red")]
        )

    assert not Diagnosis.objects.exists()


def test_a_relation_given_by_name_as_an_instance_is_stored_by_its_key():
    patient = PatientFactory()
    row = _diagnosis(patient, "D1")
    del row["patient_id"]

    (result,) = external_records_upsert(model=Diagnosis, rows=[{**row, "patient": patient}])

    assert result.created
    assert Diagnosis.objects.get(external_id="D1").patient_id == patient.pk
