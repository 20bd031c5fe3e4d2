"""Record endpoints (encounters, diagnoses, procedures, lab results, medication orders, allergies, histories)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from hcrm.models import AuditEntry
from tests.factories import (
    AllergyFactory,
    ClinicalHistoryFactory,
    DiagnosisFactory,
    EncounterFactory,
    LabResultFactory,
    MedicationOrderFactory,
    PatientFactory,
    ProcedureFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

YESTERDAY = (timezone.now() - dt.timedelta(days=1)).isoformat()

# endpoint, factory, fields to create one, a change
KINDS = {
    "encounters": (
        EncounterFactory,
        {"kind": "outpatient", "started_at": YESTERDAY, "department": "NK", "chief_complaint": "失眠"},
        {"chief_complaint": "失眠多梦"},
    ),
    "diagnoses": (
        DiagnosisFactory,
        {"system": "icd10", "code": "E11.9", "name": "2型糖尿病", "diagnosed_at": YESTERDAY},
        {"is_primary": False},
    ),
    "procedures": (ProcedureFactory, {"name": "艾灸", "performed_at": YESTERDAY}, {"body_site": "足三里"}),
    "lab-results": (
        LabResultFactory,
        {"code": "2345-7", "name": "葡萄糖", "value": "5.2", "observed_at": YESTERDAY},
        {"abnormal_flag": "N"},
    ),
    "medication-orders": (
        MedicationOrderFactory,
        {"kind": "decoction", "name": "六味地黄汤", "ordered_at": YESTERDAY, "herbs": [{"name": "熟地黄", "dose": 24}]},
        {"status": "completed"},
    ),
    "allergies": (AllergyFactory, {"substance": "花粉", "recorded_at": YESTERDAY}, {"is_active": False}),
    "histories": (
        ClinicalHistoryFactory,
        {"kind": "family", "content": "父亲高血压", "recorded_at": YESTERDAY},
        {"content": "母亲糖尿病"},
    ),
}


@pytest.fixture(params=list(KINDS))
def endpoint(request):
    return request.param


@pytest.fixture
def record(endpoint, patient):
    """One record of the endpoint's kind, of the internal-medicine patient."""
    return KINDS[endpoint][0](patient=patient)


def _snapshot(record):
    model = type(record)
    return list(model.objects.order_by("pk").values()), AuditEntry.objects.count()


def _calls(endpoint, record, patient):
    """Every action of a record endpoint: (method, url, payload)."""
    create = {**KINDS[endpoint][1], "patient": str(patient.uuid)}
    detail = f"/api/v1/{endpoint}/{record.uuid}/"
    return [
        ("get", f"/api/v1/{endpoint}/", None),
        ("get", detail, None),
        ("post", f"/api/v1/{endpoint}/", create),
        ("patch", detail, KINDS[endpoint][2]),
        ("put", detail, create),
        ("delete", detail, None),
    ]


def test_anonymous_callers_get_401_and_change_nothing(api, staff, patient, endpoint, record):
    before = _snapshot(record)

    statuses = [
        getattr(api, m)(url, data, format="json").status_code for m, url, data in _calls(endpoint, record, patient)
    ]

    assert statuses == [401] * 6
    assert _snapshot(record) == before


def test_analysts_get_403_and_change_nothing(api, staff, patient, endpoint, record):
    client = api.as_user(staff["analyst"])
    before = _snapshot(record)

    statuses = [
        getattr(client, m)(url, data, format="json").status_code for m, url, data in _calls(endpoint, record, patient)
    ]

    assert statuses == [403] * 6
    assert _snapshot(record) == before


def test_other_departments_records_are_hidden_and_unchanged(api, staff, patient, acupuncture, endpoint, record):
    # given a department head of acupuncture (may do everything, but not to internal medicine's patients)
    head = UserFactory(roles=["department_head"], departments=[acupuncture])
    client = api.as_user(head)
    before = _snapshot(record)
    listed, retrieved, created, patched, put, deleted = (
        getattr(client, m)(url, data, format="json") for m, url, data in _calls(endpoint, record, patient)
    )

    # then
    assert listed.json()["results"] == []
    assert (retrieved.status_code, patched.status_code, put.status_code, deleted.status_code) == (404, 404, 404, 404)
    assert created.status_code == 400
    # the same answer as for a patient that does not exist: nothing to learn from it
    assert created.json()["errors"] == [
        {"field": "patient", "code": "does_not_exist", "message": f"Object with uuid={patient.uuid} does not exist."}
    ]
    assert _snapshot(record)[0] == before[0]


def test_department_head_may_do_everything(api, staff, patient, endpoint, record):
    client = api.as_user(staff["department_head"])
    listed, retrieved, created, patched, put, deleted = (
        getattr(client, m)(url, data, format="json") for m, url, data in _calls(endpoint, record, patient)
    )

    assert [row["id"] for row in listed.json()["results"]] == [str(record.uuid)]
    assert retrieved.json()["patient"] == str(patient.uuid)
    assert (created.status_code, patched.status_code, put.status_code, deleted.status_code) == (201, 200, 200, 204)
    field, value = next(iter(KINDS[endpoint][2].items()))
    assert patched.json()[field] == value
    assert type(record).objects.filter(uuid=created.json()["id"], patient=patient).exists()
    assert type(record).objects.filter(pk=record.pk).exists() is False


def test_doctor_writes_but_does_not_delete(api, staff, patient, endpoint, record):
    client = api.as_user(staff["doctor"])
    before = _snapshot(record)

    deleted = client.delete(f"/api/v1/{endpoint}/{record.uuid}/")
    created = client.post(f"/api/v1/{endpoint}/", {**KINDS[endpoint][1], "patient": str(patient.uuid)}, format="json")

    assert (deleted.status_code, created.status_code) == (403, 201)
    assert list(type(record).objects.filter(pk=record.pk).values()) == [
        row for row in before[0] if row["id"] == record.pk
    ]


@pytest.mark.parametrize(
    ("endpoint", "status"),
    [
        ("encounters", 200),
        ("diagnoses", 200),
        ("allergies", 200),
        ("procedures", 403),
        ("lab-results", 403),
        ("medication-orders", 403),
        ("histories", 403),
    ],
)
def test_agents_read_only_encounters_diagnoses_and_allergies(api, staff, patient, endpoint, status):
    KINDS[endpoint][0](patient=patient)

    assert api.as_user(staff["agent"]).get(f"/api/v1/{endpoint}/").status_code == status


@pytest.mark.parametrize(
    ("endpoint", "status"),
    [("allergies", 201), ("histories", 201), ("lab-results", 201), ("encounters", 403), ("diagnoses", 403)],
)
def test_nurses_record_allergies_histories_and_lab_results_only(api, staff, patient, endpoint, status):
    payload = {**KINDS[endpoint][1], "patient": str(patient.uuid)}
    model = KINDS[endpoint][0]._meta.model

    response = api.as_user(staff["nurse"]).post(f"/api/v1/{endpoint}/", payload, format="json")

    assert response.status_code == status
    assert model.objects.filter(patient=patient).count() == (1 if status == 201 else 0)


def test_list_filters_by_patient(api, staff, patient, internal_medicine):
    other = PatientFactory(departments=[internal_medicine])
    mine = LabResultFactory(patient=patient)
    LabResultFactory(patient=other)

    response = api.as_user(staff["doctor"]).get("/api/v1/lab-results/", {"patient": str(patient.uuid)})
    bad = api.get("/api/v1/lab-results/", {"patient": "nope"})

    assert [row["id"] for row in response.json()["results"]] == [str(mine.uuid)]
    assert bad.json()["errors"] == [{"field": "patient", "code": "invalid", "message": "Not a valid patient id."}]


def test_a_record_cannot_move_to_another_patient(api, staff, patient, internal_medicine):
    result = LabResultFactory(patient=patient)
    other = PatientFactory(departments=[internal_medicine])

    response = api.as_user(staff["doctor"]).patch(
        f"/api/v1/lab-results/{result.uuid}/", {"patient": str(other.uuid)}, format="json"
    )

    assert response.json()["errors"][0]["field"] == "patient"
    result.refresh_from_db()
    assert result.patient == patient


def test_future_dates_are_refused_by_field(api, staff, patient):
    tomorrow = (timezone.now() + dt.timedelta(days=2)).isoformat()
    payload = {**KINDS["lab-results"][1], "observed_at": tomorrow, "patient": str(patient.uuid)}

    response = api.as_user(staff["doctor"]).post("/api/v1/lab-results/", payload, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "observed_at", "code": "future", "message": "This date is in the future."}
    ]


def test_reads_and_writes_of_records_are_audited(api, staff, patient):
    result = LabResultFactory(patient=patient)
    client = api.as_user(staff["doctor"])

    client.get("/api/v1/lab-results/")
    client.get(f"/api/v1/lab-results/{result.uuid}/", REMOTE_ADDR="10.0.0.7")
    client.patch(f"/api/v1/lab-results/{result.uuid}/", {"value": "6.0"}, format="json")

    entries = AuditEntry.objects.filter(actor=staff["doctor"]).order_by("id")
    assert [(e.event, e.patient_uuid) for e in entries] == [
        ("list", None),
        ("view", patient.uuid),
        ("update", patient.uuid),
    ]
    assert entries[0].additional_data == {"record": "labresult", "patients": [str(patient.uuid)]}
    assert entries[1].remote_addr == "10.0.0.7"
    assert entries[2].changes == {"value": ["7.8", "6.0"]}
