"""POST and PUT Patient, content types, and the permission matrix of every FHIR endpoint."""

from __future__ import annotations

import pytest

from hcrm.models import AuditEntry
from integrations.models import InboundMessage
from patients.models import LabResult, Patient
from tests.factories import PatientFactory
from tests.integrations.fhir.conftest import (
    FhirClient,
    key_client,
    observation,
    patient_resource,
    post_entry,
    transaction,
)

pytestmark = pytest.mark.django_db


def test_post_patient_creates_and_answers_with_location(emr):
    response = emr.post_fhir("/fhir/R4/Patient", patient_resource())

    assert response.status_code == 201, response.content
    patient = Patient.objects.get()
    assert response["Location"] == f"http://testserver/fhir/R4/Patient/{patient.uuid}"
    assert response.json()["id"] == str(patient.uuid)
    assert (patient.source, patient.name) == ("fhir_import", "王小明")
    message = InboundMessage.objects.get()
    assert (message.message_type, message.status, message.patient, message.sender) == (
        "Patient/create",
        "applied",
        patient,
        "EMR",
    )
    assert message.patient_identifiers == "MR0001 110105199001011232"


def test_post_patient_with_if_none_exist_returns_the_existing_one(emr):
    emr.post_fhir("/fhir/R4/Patient", patient_resource())

    response = emr.post_fhir(
        "/fhir/R4/Patient",
        patient_resource(name=[{"text": "王小明"}]),
        HTTP_IF_NONE_EXIST="identifier=urn:oid:1.2.156.112604.1.2.1|MR0001",
    )

    assert response.status_code == 200
    assert Patient.objects.count() == 1


def test_put_patient_updates_that_patient_and_replaces_contact_details(emr):
    emr.post_fhir("/fhir/R4/Patient", patient_resource())
    patient = Patient.objects.get()
    body = patient_resource(id=str(patient.uuid), telecom=[{"system": "phone", "value": "13900001111"}], address=[])

    response = emr.put_fhir(f"/fhir/R4/Patient/{patient.uuid}", body)

    assert response.status_code == 200, response.content
    patient.refresh_from_db()
    assert (patient.mobile, patient.city, patient.address_detail) == ("+8613900001111", "", "")


def test_put_with_identifiers_of_another_patient_is_a_conflict(emr):
    other = PatientFactory(name="李四")
    emr.post_fhir("/fhir/R4/Patient", patient_resource())
    before = list(Patient.objects.order_by("pk").values())
    body = patient_resource(id=str(other.uuid), name=[{"text": "李四"}])

    response = emr.put_fhir(f"/fhir/R4/Patient/{other.uuid}", body)

    assert response.status_code == 409
    assert response.json()["issue"][0]["expression"] == ["Patient.identifier"]
    assert list(Patient.objects.order_by("pk").values()) == before


def test_put_needs_a_known_id_matching_the_body(emr):
    unknown = emr.put_fhir("/fhir/R4/Patient/123", patient_resource(id="123"))
    mismatch = emr.put_fhir(
        "/fhir/R4/Patient/00000000-0000-4000-8000-000000000000",
        patient_resource(id="00000000-0000-4000-8000-000000000001"),
    )

    assert (unknown.status_code, unknown.json()["issue"][0]["code"]) == (404, "not-found")
    assert (mismatch.status_code, mismatch.json()["issue"][0]["expression"]) == (400, ["Patient.id"])
    assert Patient.objects.count() == 0


def test_conditional_put_creates_when_nothing_matches(emr):
    response = emr.put_fhir("/fhir/R4/Patient?identifier=urn:oid:1.2.156.112604.1.2.1|MR0001", patient_resource())

    assert response.status_code == 201
    assert Patient.objects.get().name == "王小明"


def test_a_patient_body_failing_validation_names_the_path(emr):
    response = emr.post_fhir("/fhir/R4/Patient", patient_resource(birthDate="1990-02-30x", colour="blue"))

    assert response.status_code == 400
    assert [issue["expression"] for issue in response.json()["issue"]] == [["Patient.birthDate"], ["Patient.colour"]]
    assert InboundMessage.objects.get().status == "rejected"


def test_a_contained_resource_of_an_unknown_type_is_refused_naming_it(emr):
    body = patient_resource(contained=[{"resourceType": "Organization", "id": "o"}, {"resourceType": "Nonsense"}])

    response = emr.post_fhir("/fhir/R4/Patient", body)

    assert response.status_code == 400
    assert [issue["expression"] for issue in response.json()["issue"]] == [["Patient.contained[1].resourceType"]]
    assert response.json()["issue"][0]["diagnostics"] == "Unknown resource type Nonsense."
    assert InboundMessage.objects.get().status == "rejected"
    assert not Patient.objects.exists()


def test_wrong_content_type_is_415_and_nothing_is_stored(emr):
    response = emr.post("/fhir/R4/Patient", data="<Patient/>", content_type="application/fhir+xml")

    assert response.status_code == 415
    assert response.json()["resourceType"] == "OperationOutcome"
    assert InboundMessage.objects.count() == 0


def test_unsupported_types_and_interactions(emr):
    unknown_type = emr.get_fhir("/fhir/R4/Claim")
    no_create = emr.post_fhir("/fhir/R4/Observation", observation("Patient/x"))

    assert (unknown_type.status_code, unknown_type.json()["issue"][0]["code"]) == (404, "not-supported")
    assert no_create.status_code == 405
    assert InboundMessage.objects.count() == 0


# --- Permission matrix -----------------------------------------------------------------------------------


def _write_bundle():
    return transaction(post_entry(patient_resource(), "urn:uuid:11111111-1111-4111-8111-111111111111"))


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("anonymous", 401),
        ("reader", 403),
        ("hl7", 403),
        ("analyst", 403),
        ("agent", 403),
        ("nurse", 200),
        ("doctor", 200),
        ("writer", 200),
    ],
)
def test_who_may_post_a_bundle(who, status, staff):
    client = {
        "anonymous": lambda: FhirClient(),
        "reader": lambda: key_client("fhir.read"),
        "hl7": lambda: key_client("hl7.submit"),
        "writer": lambda: key_client("fhir.write"),
    }.get(who, lambda: FhirClient().as_user(staff[who]))()
    bundle = _write_bundle()
    bundle["entry"].append(post_entry(observation("urn:uuid:11111111-1111-4111-8111-111111111111")))

    response = client.post_fhir("/fhir/R4/", bundle)

    assert response.status_code == status, response.content
    assert response.json()["resourceType"] == ("Bundle" if status == 200 else "OperationOutcome")
    assert Patient.objects.count() == (1 if status == 200 else 0)
    assert InboundMessage.objects.count() == (1 if status == 200 else 0)


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("anonymous", 401),
        ("writer_only", 403),
        ("analyst", 403),
        ("other_doctor", 404),
        ("doctor", 200),
        ("reader", 200),
    ],
)
def test_who_may_read_a_patient(who, status, staff, patient):
    client = {
        "anonymous": lambda: FhirClient(),
        "reader": lambda: key_client("fhir.read"),
        "writer_only": lambda: key_client("fhir.write"),
    }.get(who, lambda: FhirClient().as_user(staff[who]))()

    response = client.get_fhir(f"/fhir/R4/Patient/{patient.uuid}")

    assert response.status_code == status


def test_staff_search_sees_only_their_departments_and_is_audited_as_them(staff, patient):
    PatientFactory(name="王五")  # no department: invisible to a doctor of internal medicine
    doctor = FhirClient().as_user(staff["doctor"])

    response = doctor.get_fhir("/fhir/R4/Patient?_sort=_lastUpdated")

    assert [entry["resource"]["id"] for entry in response.json()["entry"]] == [str(patient.uuid)]
    entry = AuditEntry.objects.get(event="search")
    assert entry.actor == staff["doctor"]


def test_staff_reads_are_masked_unless_the_role_may_see_sensitive_fields(staff, patient):
    import datetime as dt

    from tests.factories import national_id

    patient.national_id = national_id("110105", patient.birth_date or dt.date(1980, 1, 1), 5)
    patient.save()
    values = {}
    for role in ("doctor", "administrator"):
        body = FhirClient().as_user(staff[role]).get_fhir(f"/fhir/R4/Patient/{patient.uuid}").json()
        values[role] = next(i["value"] for i in body["identifier"] if i["system"] == "urn:oid:2.16.156.10011.1.3")

    assert values["administrator"] == patient.national_id
    assert values["doctor"] == patient.national_id[:6] + "********" + patient.national_id[-4:]


def test_a_nurse_may_add_lab_results_but_not_encounters(staff, patient):
    from tests.integrations.fhir.conftest import encounter

    nurse = FhirClient().as_user(staff["nurse"])

    allowed = nurse.post_fhir("/fhir/R4/", transaction(post_entry(observation(f"Patient/{patient.uuid}"))))
    refused = nurse.post_fhir("/fhir/R4/", transaction(post_entry(encounter(f"Patient/{patient.uuid}"))))

    assert allowed.status_code == 200, allowed.content
    assert LabResult.objects.get().source_system == "fhir"
    assert refused.status_code == 403
