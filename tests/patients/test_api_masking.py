"""What the API shows of sensitive fields, what it records in the audit trail, and how many queries lists cost."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from openpyxl import load_workbook

from hcrm.models import AuditEntry
from tests.factories import (
    AllergyFactory,
    ClinicalHistoryFactory,
    ContactPersonFactory,
    DiagnosisFactory,
    EncounterFactory,
    LabResultFactory,
    MedicationOrderFactory,
    PatientFactory,
    ProcedureFactory,
    TagFactory,
)

pytestmark = pytest.mark.django_db

SENSITIVE = {
    "national_id": "11010519491231002X",
    "address_detail": "建国路88号",
    "employer": "北京中医药大学",
    "income_band": "8000_20000",
    "family_notes": "独居，子女在外地",
}
MASKED = {
    "national_id": "110105********002X",
    "address_detail": "建*****",
    "employer": "北******",
    "income_band": "***",
    "family_notes": "***",
}


@pytest.fixture
def zhang(internal_medicine):
    patient = PatientFactory(
        name="张三",
        birth_date=dt.date(1949, 12, 31),
        sex="female",
        mobile="+8613812345678",
        departments=[internal_medicine],
        **SENSITIVE,
    )
    ContactPersonFactory(patient=patient, name="李四", phone="+8613700001111")
    return patient


def _export_rows(response, file_format):
    if file_format == "csv":
        return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    sheet = load_workbook(io.BytesIO(response.content)).active
    return [[cell if cell is not None else "" for cell in row] for row in sheet.iter_rows(values_only=True)]


def test_list_masks_sensitive_fields(api, staff, zhang):
    row = api.as_user(staff["doctor"]).get("/api/v1/patients/").json()["results"][0]

    assert (row["national_id"], row["sensitive_revealed"]) == (MASKED["national_id"], False)
    assert row["mobile"] == "+8613812345678"


def test_detail_masks_sensitive_fields_and_contact_persons(api, staff, zhang):
    body = api.as_user(staff["doctor"]).get(f"/api/v1/patients/{zhang.uuid}/").json()

    assert {field: body[field] for field in SENSITIVE} == MASKED
    assert [(c["name"], c["phone"]) for c in body["contact_persons"]] == [("李***", "+86137****1111")]


def test_administrators_see_everything(api, staff, zhang):
    body = api.as_user(staff["administrator"]).get(f"/api/v1/patients/{zhang.uuid}/").json()

    assert {field: body[field] for field in SENSITIVE} == SENSITIVE
    assert [(c["name"], c["phone"]) for c in body["contact_persons"]] == [("李四", "+8613700001111")]
    assert body["sensitive_revealed"] is True


def test_breaking_the_glass_unmasks_that_patient_only(api, staff, zhang, internal_medicine):
    other = PatientFactory(departments=[internal_medicine], national_id="110105194912310037")
    client = api.as_user(staff["doctor"])

    client.post(f"/api/v1/patients/{zhang.uuid}/reveal/", {"reason": "核对身份证"}, format="json")
    detail = client.get(f"/api/v1/patients/{zhang.uuid}/").json()
    listed = {row["id"]: row["national_id"] for row in client.get("/api/v1/patients/").json()["results"]}

    assert {field: detail[field] for field in SENSITIVE} == SENSITIVE
    assert detail["contact_persons"][0]["name"] == "李四"
    assert listed == {str(zhang.uuid): SENSITIVE["national_id"], str(other.uuid): "110105********0037"}


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_export_is_masked(api, staff, zhang, file_format):
    response = api.as_user(staff["doctor"]).get("/api/v1/patients/export/", {"format": file_format})

    rows = _export_rows(response, file_format)
    assert rows[0] == [
        "MRN", "Name", "Sex", "Birth date", "Mobile", "National ID number", "Province", "City", "District",
        "Street address", "Employer", "Source",
    ]  # fmt: skip
    assert rows[1] == [
        zhang.mrn, "张三", "Female", "1949-12-31", "138 1234 5678",
        MASKED["national_id"], "北京市", "北京市", "朝阳区", MASKED["address_detail"], MASKED["employer"], "Walk-in",
    ]  # fmt: skip
    assert len(rows) == 2


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_export_for_administrators_is_complete(api, staff, zhang, file_format):
    response = api.as_user(staff["administrator"]).get("/api/v1/patients/export/", {"format": file_format})

    row = _export_rows(response, file_format)[1]
    assert (row[5], row[9], row[10]) == (SENSITIVE["national_id"], SENSITIVE["address_detail"], SENSITIVE["employer"])


# --- Audit ------------------------------------------------------------------------------------------


def _entry(event):
    entry = AuditEntry.objects.get(event=event)
    return entry.actor.username, entry.remote_addr, entry.patient_uuid, entry.reason, entry.client


def test_viewing_a_patient_is_audited(api, staff, zhang):
    api.as_user(staff["doctor"]).get(f"/api/v1/patients/{zhang.uuid}/", REMOTE_ADDR="10.1.1.1")

    assert _entry("view") == ("doctor", "10.1.1.1", zhang.uuid, "", "api")


def test_listing_and_searching_are_audited_with_the_patients_shown(api, staff, zhang):
    client = api.as_user(staff["nurse"])

    client.get("/api/v1/patients/", REMOTE_ADDR="10.1.1.2")
    client.get("/api/v1/patients/", {"q": "zhs"}, REMOTE_ADDR="10.1.1.2")

    assert _entry("list") == ("nurse", "10.1.1.2", None, "", "api")
    assert AuditEntry.objects.get(event="list").additional_data == {"query": {}, "patients": [str(zhang.uuid)]}
    assert AuditEntry.objects.get(event="search").additional_data == {
        "query": {"q": ["zhs"]},
        "patients": [str(zhang.uuid)],
    }


def test_exports_are_audited_with_the_row_count(api, staff, zhang):
    api.as_user(staff["agent"]).get("/api/v1/patients/export/", {"format": "xlsx"}, REMOTE_ADDR="10.1.1.3")

    assert _entry("export") == ("agent", "10.1.1.3", None, "", "api")
    assert AuditEntry.objects.get(event="export").additional_data == {
        "query": {"format": ["xlsx"]},
        "format": "xlsx",
        "rows": 1,
    }


def test_reveals_are_audited_with_the_reason(api, staff, zhang):
    api.as_user(staff["other_doctor"]).post(
        f"/api/v1/patients/{zhang.uuid}/reveal/", {"reason": "急诊抢救"}, format="json", REMOTE_ADDR="10.1.1.4"
    )

    assert _entry("reveal") == ("other_doctor", "10.1.1.4", zhang.uuid, "急诊抢救", "api")


def test_writes_are_audited_with_masked_sensitive_changes(api, staff, zhang):
    api.as_user(staff["administrator"]).patch(
        f"/api/v1/patients/{zhang.uuid}/",
        {"employer": "同仁堂", "occupation": "药师"},
        format="json",
        REMOTE_ADDR="10.1.1.5",
    )

    assert _entry("update") == ("administrator", "10.1.1.5", zhang.uuid, "", "api")
    assert AuditEntry.objects.get(event="update").changes == {
        "employer": ["[masked]", "[masked]"],
        "occupation": ["", "药师"],
    }


def test_a_masked_field_is_not_changed_by_someone_who_cannot_see_it(api, staff, zhang):
    employer = zhang.employer

    response = api.as_user(staff["doctor"]).patch(
        f"/api/v1/patients/{zhang.uuid}/", {"employer": "同仁堂", "occupation": "药师"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "employer",
            "code": "masked",
            "message": "This field is masked for you; reveal the record before changing it.",
        }
    ]
    zhang.refresh_from_db()
    assert (zhang.employer, zhang.occupation) == (employer, "")
    assert not AuditEntry.objects.filter(event="update").exists()


def test_refused_reads_are_not_recorded_as_views(api, staff, zhang):
    api.as_user(staff["other_doctor"]).get(f"/api/v1/patients/{zhang.uuid}/")

    assert AuditEntry.objects.filter(event="view").count() == 0


# --- Query counts ---------------------------------------------------------------------------------------


@pytest.fixture
def warm_caches():
    """Content types are cached per process; count a list as a running server does, with them warm."""
    from django.contrib.contenttypes.models import ContentType

    ContentType.objects.get_for_model(AuditEntry)


def _patients(count, department):
    tag = TagFactory(name="慢病")
    for patient in PatientFactory.create_batch(count, departments=[department]):
        patient.tags.add(tag)


# token and user, user permissions, group permissions, departments, break-the-glass grants, the page,
# (tags prefetch,) the audit entry
PATIENT_LIST_QUERIES = 8
RECORD_LIST_QUERIES = 7


@pytest.mark.parametrize("rows", [3, 30])
def test_patient_list_query_count_does_not_grow_with_rows(
    api, staff, internal_medicine, warm_caches, django_assert_num_queries, rows
):
    _patients(rows, internal_medicine)
    client = api.as_user(staff["doctor"])

    with django_assert_num_queries(PATIENT_LIST_QUERIES):
        response = client.get("/api/v1/patients/", {"page_size": 50})

    assert len(response.json()["results"]) == rows


RECORD_FACTORIES = {
    "encounters": EncounterFactory,
    "diagnoses": DiagnosisFactory,
    "procedures": ProcedureFactory,
    "lab-results": LabResultFactory,
    "medication-orders": MedicationOrderFactory,
    "allergies": AllergyFactory,
    "histories": ClinicalHistoryFactory,
}


@pytest.mark.parametrize("rows", [3, 30])
@pytest.mark.parametrize("endpoint", list(RECORD_FACTORIES))
def test_record_list_query_count_does_not_grow_with_rows(
    api, staff, patient, warm_caches, django_assert_num_queries, endpoint, rows
):
    RECORD_FACTORIES[endpoint].create_batch(rows, patient=patient)
    client = api.as_user(staff["department_head"])

    with django_assert_num_queries(RECORD_LIST_QUERIES):
        response = client.get(f"/api/v1/{endpoint}/", {"page_size": 50})

    assert len(response.json()["results"]) == rows
