"""Patient endpoints: the permission matrix of every action, and the list filters."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from hcrm.models import AuditEntry
from patients.models import BreakGlassGrant, Patient, PatientDepartment
from tests.factories import DiagnosisFactory, IdentifierFactory, PatientFactory, TagFactory

pytestmark = pytest.mark.django_db

DETAIL_ACTIONS = [
    ("get", "/api/v1/patients/{id}/", None),
    ("patch", "/api/v1/patients/{id}/", {"occupation": "教师"}),
    ("delete", "/api/v1/patients/{id}/", None),
    ("post", "/api/v1/patients/{id}/reveal/", {"reason": "急诊抢救"}),
    ("get", "/api/v1/patients/{id}/timeline/", None),
]
ALL_ACTIONS = [
    ("get", "/api/v1/patients/", None),
    ("post", "/api/v1/patients/", {"name": "李四"}),
    ("get", "/api/v1/patients/export/?format=csv", None),
    *DETAIL_ACTIONS,
]


def _database():
    """Everything a refused call must leave as it was."""
    return (
        list(Patient.objects.order_by("pk").values()),
        list(PatientDepartment.objects.order_by("pk").values()),
        BreakGlassGrant.objects.count(),
        AuditEntry.objects.count(),
    )


def _call(client, method, url, payload, patient):
    return getattr(client, method)(url.format(id=patient.uuid), payload, format="json")


@pytest.mark.parametrize(("method", "url", "payload"), ALL_ACTIONS)
def test_anonymous_callers_get_401_and_change_nothing(api, staff, patient, method, url, payload):
    before = _database()

    response = _call(api, method, url, payload, patient)

    assert response.status_code == 401
    assert _database() == before


@pytest.mark.parametrize(("method", "url", "payload"), ALL_ACTIONS)
def test_analysts_get_403_and_change_nothing(api, staff, patient, method, url, payload):
    before = _database()

    response = _call(api.as_user(staff["analyst"]), method, url, payload, patient)

    assert response.status_code == 403
    assert _database() == before


@pytest.mark.parametrize(("method", "url", "payload"), [a for a in DETAIL_ACTIONS if "reveal" not in a[1]])
def test_other_departments_patient_is_404_and_unchanged(api, staff, patient, method, url, payload):
    staff["other_doctor"].user_permissions.add(Permission.objects.get(codename="delete_patient"))
    before = _database()

    response = _call(api.as_user(staff["other_doctor"]), method, url, payload, patient)

    assert response.status_code == 404
    assert _database() == before


@pytest.mark.parametrize(
    ("role", "method", "url", "payload"),
    [
        ("doctor", "delete", "/api/v1/patients/{id}/", None),
        ("nurse", "delete", "/api/v1/patients/{id}/", None),
        ("department_head", "delete", "/api/v1/patients/{id}/", None),
        ("agent", "delete", "/api/v1/patients/{id}/", None),
    ],
)
def test_only_administrators_delete_patients(api, staff, patient, role, method, url, payload):
    before = _database()

    response = _call(api.as_user(staff[role]), method, url, payload, patient)

    assert response.status_code == 403
    assert _database() == before


def test_list_shows_only_the_callers_departments(api, staff, patient, acupuncture):
    other = PatientFactory(name="针灸病人", departments=[acupuncture])

    own = api.as_user(staff["doctor"]).get("/api/v1/patients/").json()["results"]
    theirs = api.as_user(staff["other_doctor"]).get("/api/v1/patients/").json()["results"]
    everyone = api.as_user(staff["agent"]).get("/api/v1/patients/", {"ordering": "mrn"}).json()["results"]

    assert [row["id"] for row in own] == [str(patient.uuid)]
    assert [row["id"] for row in theirs] == [str(other.uuid)]
    assert [row["id"] for row in everyone] == [str(patient.uuid), str(other.uuid)]


@pytest.mark.parametrize("role", ["doctor", "nurse", "agent", "department_head", "administrator"])
def test_staff_with_patient_access_retrieve(api, staff, patient, role):
    response = api.as_user(staff[role]).get(f"/api/v1/patients/{patient.uuid}/")

    assert response.status_code == 200
    assert (response.json()["id"], response.json()["name"], response.json()["mrn"]) == (
        str(patient.uuid),
        "张三",
        patient.mrn,
    )
    assert response.json()["departments"] == ["NK"]


def test_create_links_the_creators_departments(api, staff):
    response = api.as_user(staff["doctor"]).post(
        "/api/v1/patients/", {"name": "李四", "mobile": "13812345678", "tags": []}, format="json"
    )

    assert response.status_code == 201
    created = Patient.objects.get(uuid=response.json()["id"])
    assert (created.name, created.mobile, created.mrn) == ("李四", "+8613812345678", "M00000001")
    assert response.json()["departments"] == ["NK"]


def test_create_for_another_department_answers_with_the_record(api, staff, acupuncture):
    # bug: the response was read back through the caller's departments and failed with a 500
    response = api.as_user(staff["doctor"]).post(
        "/api/v1/patients/", {"name": "李四", "departments": ["ZJ"]}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["departments"] == ["ZJ"]
    assert api.get(f"/api/v1/patients/{response.json()['id']}/").status_code == 404


def test_update_and_partial_update(api, staff, patient):
    client = api.as_user(staff["nurse"])

    put = client.put(f"/api/v1/patients/{patient.uuid}/", {"name": "张叁"}, format="json")
    unknown_tag = client.patch(f"/api/v1/patients/{patient.uuid}/", {"name": "张叁", "tags": ["高血压"]}, format="json")
    TagFactory(name="高血压")
    with_tag = client.patch(f"/api/v1/patients/{patient.uuid}/", {"name": "张叁", "tags": ["高血压"]}, format="json")
    patch = client.patch(f"/api/v1/patients/{patient.uuid}/", {"occupation": "教师"}, format="json")

    assert put.status_code == 405  # PATCH only: a PUT would have to erase the fields it leaves out
    assert unknown_tag.status_code == 400
    assert unknown_tag.json()["errors"][0]["field"] == "tags"
    assert (with_tag.status_code, patch.status_code) == (200, 200)
    assert patch.json()["tags"] == ["高血压"]
    patient.refresh_from_db()
    assert (patient.name, patient.name_pinyin, patient.occupation) == ("张叁", "zhangsan", "教师")


def test_administrator_deletes_a_patient(api, staff, patient):
    response = api.as_user(staff["administrator"]).delete(f"/api/v1/patients/{patient.uuid}/")

    assert response.status_code == 204
    assert Patient.objects.count() == 0


def test_reveal_opens_a_patient_of_another_department(api, staff, patient):
    client = api.as_user(staff["other_doctor"])

    response = client.post(f"/api/v1/patients/{patient.uuid}/reveal/", {"reason": "急诊抢救"}, format="json")

    assert response.status_code == 200
    assert (response.json()["national_id"], response.json()["sensitive_revealed"]) == (patient.national_id, True)
    assert client.get(f"/api/v1/patients/{patient.uuid}/").status_code == 200
    assert BreakGlassGrant.objects.get().user == staff["other_doctor"]


def test_reveal_without_a_reason_is_refused(api, staff, patient):
    response = api.as_user(staff["doctor"]).post(f"/api/v1/patients/{patient.uuid}/reveal/", {"reason": "看"})

    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == ["reason"]
    assert BreakGlassGrant.objects.count() == 0


def test_timeline_endpoint(api, staff, patient):
    DiagnosisFactory(patient=patient, code="I10", name="原发性高血压")

    response = api.as_user(staff["doctor"]).get(f"/api/v1/patients/{patient.uuid}/timeline/")

    assert response.status_code == 200
    assert [(entry["kind"], entry["title"]) for entry in response.json()] == [("diagnosis", "I10 原发性高血压")]


def test_export_only_the_callers_departments(api, staff, patient, acupuncture):
    PatientFactory(name="针灸病人", departments=[acupuncture])

    response = api.as_user(staff["doctor"]).get("/api/v1/patients/export/", {"format": "csv"})

    lines = response.content.decode("utf-8-sig").splitlines()
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="patients.csv"'
    assert len(lines) == 2
    assert lines[1].startswith(f"{patient.mrn},张三,")


def test_export_refuses_unknown_formats(api, staff):
    response = api.as_user(staff["doctor"]).get("/api/v1/patients/export/", {"format": "pdf"})

    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "format", "code": "invalid", "message": "Choose csv or xlsx."}]


# --- Filters -----------------------------------------------------------------------------------------


@pytest.fixture
def ward(internal_medicine, acupuncture):
    """Three patients of internal medicine (one also of acupuncture) and their records."""
    zhang = PatientFactory(name="张三", mobile="+8613812345678", departments=[internal_medicine])
    li = PatientFactory(name="李四", mobile="+8613900000002", departments=[internal_medicine, acupuncture])
    wang = PatientFactory(name="王五", mobile="+8613900000003", departments=[internal_medicine])
    IdentifierFactory(patient=li, kind="visit_card", value="C0000000001")
    DiagnosisFactory(patient=zhang, system="icd10", code="I10", name="原发性高血压")
    DiagnosisFactory(patient=wang, system="icd10", code="I11.9", name="高血压性心脏病")
    DiagnosisFactory(patient=li, system="tcm_disease", code="BNV010", name="眩晕病")
    return {"zhang": zhang, "li": li, "wang": wang}


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"name": "张三"}, ["张三"]),
        ({"name": "zs"}, ["张三"]),
        ({"name": "wangwu"}, ["王五"]),
        ({"phone": "139 0000 0002"}, ["李四"]),
        ({"identifier": "C0000000001"}, ["李四"]),
        ({"department": "ZJ"}, ["李四"]),
        ({"diagnosis": "i1"}, ["张三", "王五"]),
        ({"diagnosis": "I11"}, ["王五"]),
        ({"diagnosis": "B", "diagnosis_system": "tcm_disease"}, ["李四"]),
        ({"diagnosis": "I", "diagnosis_system": "tcm_disease"}, []),
        ({"q": "13812345678"}, ["张三"]),
    ],
)
def test_list_filters(api, staff, ward, params, names):
    response = api.as_user(staff["doctor"]).get("/api/v1/patients/", {**params, "ordering": "mrn"})

    assert response.status_code == 200
    assert [row["name"] for row in response.json()["results"]] == names


def test_identifier_filter_also_takes_the_mrn(api, staff, ward):
    response = api.as_user(staff["doctor"]).get("/api/v1/patients/", {"identifier": ward["wang"].mrn})

    assert [row["name"] for row in response.json()["results"]] == ["王五"]


def test_updated_since_filter(api, staff, ward):
    an_hour_ago = timezone.now() - dt.timedelta(hours=1)
    Patient.objects.exclude(pk=ward["li"].pk).update(updated_at=an_hour_ago - dt.timedelta(days=1))

    response = api.as_user(staff["doctor"]).get("/api/v1/patients/", {"updated_since": an_hour_ago.isoformat()})

    assert [row["name"] for row in response.json()["results"]] == ["李四"]


def test_filters_never_reach_outside_the_departments(api, staff, ward):
    response = api.as_user(staff["other_doctor"]).get("/api/v1/patients/", {"diagnosis": "I"})

    assert response.json()["results"] == []


def test_pages_of_the_list(api, staff, internal_medicine):
    PatientFactory.create_batch(3, departments=[internal_medicine])

    first = api.as_user(staff["doctor"]).get("/api/v1/patients/", {"page_size": 2}).json()
    second = api.get("/api/v1/patients/", {"page_size": 2, "page": 2}).json()

    assert (first["count"], first["count_is_exact"], len(first["results"])) == (3, True, 2)
    assert first["next"] == "http://testserver/api/v1/patients/?page=2&page_size=2"
    assert (second["previous"], len(second["results"])) == ("http://testserver/api/v1/patients/?page=1&page_size=2", 1)
