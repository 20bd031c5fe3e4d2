"""Transaction and batch bundles: all-or-nothing, per-entry results, references, idempotency."""

from __future__ import annotations

import pytest

from integrations.models import InboundMessage
from patients.models import Diagnosis, Encounter, LabResult, Patient, PatientIdentifier
from tests.integrations.fhir.conftest import (
    condition,
    encounter,
    observation,
    patient_resource,
    post_entry,
    transaction,
)

pytestmark = pytest.mark.django_db

PATIENT_URL = "urn:uuid:11111111-1111-4111-8111-111111111111"
ENCOUNTER_URL = "urn:uuid:22222222-2222-4222-8222-222222222222"


def record_bundle():
    return transaction(
        post_entry(patient_resource(), PATIENT_URL),
        post_entry(observation(PATIENT_URL, encounter=ENCOUNTER_URL), "urn:uuid:33333333-3333-4333-8333-333333333333"),
        post_entry(encounter(PATIENT_URL), ENCOUNTER_URL),
        post_entry(condition(PATIENT_URL, encounter=ENCOUNTER_URL)),
    )


def test_transaction_creates_the_patient_and_records_with_references_resolved(emr):
    response = emr.post_fhir("/fhir/R4/", record_bundle())

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["type"] == "transaction-response"
    assert [entry["response"]["status"] for entry in body["entry"]] == ["201 Created"] * 4
    patient = Patient.objects.get()
    assert (patient.name, patient.national_id, patient.mobile) == ("王小明", "110105199001011232", "+8613812345678")
    assert body["entry"][0]["response"]["location"] == f"Patient/{patient.uuid}"
    visit = Encounter.objects.get()
    assert (visit.patient, visit.kind, visit.doctor_name, visit.source_system, visit.external_id) == (
        patient,
        "inpatient",
        "李医生",
        "EMR",
        "enc-1",
    )
    result = LabResult.objects.get()
    assert (result.encounter, result.code_system, result.code, result.value, result.value_numeric, result.unit) == (
        visit,
        "loinc",
        "2345-7",
        "6.1",
        6.1,
        "mmol/L",
    )
    assert (result.reference_range, result.abnormal_flag) == ("3.9 mmol/L - 6.1 mmol/L", "H")
    diagnosis = Diagnosis.objects.get()
    assert (diagnosis.system, diagnosis.code, diagnosis.encounter) == ("icd10", "I10", visit)
    assert PatientIdentifier.objects.get().value == "MR0001"
    message = InboundMessage.objects.get()
    assert (message.protocol, message.transport, message.status, message.message_type, message.patient) == (
        "fhir",
        "http",
        "applied",
        "Bundle/transaction",
        patient,
    )


def test_reposting_the_same_transaction_changes_nothing(emr):
    emr.post_fhir("/fhir/R4/", record_bundle())
    before = {model: list(model.objects.values()) for model in (Patient, Encounter, LabResult, Diagnosis)}

    response = emr.post_fhir("/fhir/R4/", record_bundle())

    assert response.status_code == 200
    assert [entry["response"]["status"] for entry in response.json()["entry"]] == ["200 OK"] * 4
    assert {model: list(model.objects.values()) for model in before} == before


def test_a_failing_entry_rolls_back_the_whole_transaction(emr):
    bundle = record_bundle()
    bundle["entry"][3]["resource"]["subject"]["reference"] = "urn:uuid:99999999-9999-4999-8999-999999999999"

    response = emr.post_fhir("/fhir/R4/", bundle)

    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["Bundle.entry[3].resource.subject"]
    assert issue["code"] == "not-found"
    assert (Patient.objects.count(), Encounter.objects.count(), LabResult.objects.count()) == (0, 0, 0)
    message = InboundMessage.objects.get()
    assert (message.status, message.error_location) == ("failed", "Bundle.entry[3].resource.subject")


def test_validation_errors_name_the_element_path(emr):
    bundle = record_bundle()
    bundle["entry"][1]["resource"]["status"] = 17
    bundle["entry"][0]["resource"]["birthDate"] = "1990-13-45"

    response = emr.post_fhir("/fhir/R4/", bundle)

    assert response.status_code == 400
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    paths = [issue["expression"][0] for issue in body["issue"]]
    assert paths == ["Bundle.entry[0].resource.birthDate", "Bundle.entry[1].resource.status"]
    assert Patient.objects.count() == 0
    assert InboundMessage.objects.get().status == "rejected"


def test_batch_applies_each_entry_on_its_own(emr):
    bundle = transaction(
        post_entry(patient_resource(), PATIENT_URL),
        post_entry(observation("Patient/00000000-0000-4000-8000-000000000000")),
        post_entry(encounter(PATIENT_URL), ENCOUNTER_URL),
        {"request": {"method": "DELETE", "url": "Patient/123"}},
        kind="batch",
    )

    response = emr.post_fhir("/fhir/R4/", bundle)

    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "batch-response"
    statuses = [entry["response"]["status"] for entry in body["entry"]]
    assert statuses == ["201 Created", "404 Not Found", "201 Created", "400 Bad Request"]
    assert body["entry"][1]["response"]["outcome"]["issue"][0]["expression"] == ["Bundle.entry[1].resource.subject"]
    assert body["entry"][3]["response"]["outcome"]["issue"][0]["code"] == "not-supported"
    assert (Patient.objects.count(), Encounter.objects.count(), LabResult.objects.count()) == (1, 1, 0)


def test_conditional_create_finds_the_existing_patient(emr):
    first = emr.post_fhir("/fhir/R4/", transaction(post_entry(patient_resource(), PATIENT_URL)))
    created = first.json()["entry"][0]["response"]["location"]
    again = patient_resource(name=[{"text": "王小明"}], telecom=[])
    bundle = transaction(
        post_entry(again, PATIENT_URL, ifNoneExist="identifier=urn:oid:1.2.156.112604.1.2.1|MR0001"),
        post_entry(observation(PATIENT_URL)),
    )

    response = emr.post_fhir("/fhir/R4/", bundle)

    assert response.status_code == 200
    entries = response.json()["entry"]
    assert [entry["response"]["status"] for entry in entries] == ["200 OK", "201 Created"]
    assert entries[0]["response"]["location"] == created
    assert Patient.objects.count() == 1
    assert LabResult.objects.get().patient.uuid.hex == created.split("/")[1].replace("-", "")


def test_conditional_update_by_identifier(emr):
    emr.post_fhir("/fhir/R4/", transaction(post_entry(patient_resource(), PATIENT_URL)))
    changed = patient_resource(telecom=[{"system": "phone", "value": "13900001111"}], address=[])
    bundle = transaction(
        {
            "resource": changed,
            "request": {"method": "PUT", "url": "Patient?identifier=urn:oid:1.2.156.112604.1.2.1|MR0001"},
        }
    )

    response = emr.post_fhir("/fhir/R4/", bundle)

    assert response.status_code == 200, response.content
    patient = Patient.objects.get()
    assert (patient.mobile, patient.address_detail, patient.city) == ("+8613900001111", "", "")


def test_unsupported_types_are_reported_and_skipped(emr):
    organization = {"resourceType": "Organization", "id": "org-1", "name": "Hospital"}
    uncoded = condition(PATIENT_URL)
    uncoded["code"] = {"coding": [{"system": "http://example.org/local-problems", "code": "P1", "display": "Back"}]}
    snomed = condition(PATIENT_URL)
    snomed["code"] = {"coding": [{"system": "http://snomed.info/sct", "code": "38341003", "display": "Hypertension"}]}
    bundle = transaction(
        post_entry(patient_resource(), PATIENT_URL), post_entry(organization), post_entry(uncoded), post_entry(snomed)
    )

    response = emr.post_fhir("/fhir/R4/", bundle)

    assert response.status_code == 200
    entries = response.json()["entry"]
    assert [entry["response"]["status"] for entry in entries] == ["201 Created", "200 OK", "200 OK", "201 Created"]
    skipped = entries[1]["response"]["outcome"]["issue"][0]
    assert (skipped["severity"], skipped["code"], skipped["expression"]) == (
        "warning",
        "not-supported",
        ["Bundle.entry[1]"],
    )
    not_stored = entries[2]["response"]["outcome"]["issue"][0]
    assert not_stored["expression"] == ["Bundle.entry[2].resource.code"]
    assert "http://example.org/local-problems" in not_stored["diagnostics"]
    assert "location" not in entries[1]["response"]
    assert list(Diagnosis.objects.values_list("system", "code", "name")) == [("snomed", "38341003", "Hypertension")]


def test_delete_and_get_entries_refuse_the_transaction(emr):
    bundle = transaction(
        post_entry(patient_resource(), PATIENT_URL),
        {"request": {"method": "DELETE", "url": "Patient/234"}},
        {"request": {"method": "GET", "url": "Patient?name=peter"}},
    )

    response = emr.post_fhir("/fhir/R4/", bundle)

    assert response.status_code == 400
    assert [issue["expression"] for issue in response.json()["issue"]] == [
        ["Bundle.entry[1].request"],
        ["Bundle.entry[2].request"],
    ]
    assert Patient.objects.count() == 0


def test_a_collection_bundle_is_refused(emr):
    response = emr.post_fhir("/fhir/R4/", transaction(kind="collection"))

    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Bundle.type"]


def test_invalid_json_is_stored_and_rejected(emr):
    response = emr.post_fhir("/fhir/R4/", b"{not json")

    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == "structure"
    message = InboundMessage.objects.get()
    assert (bytes(message.raw), message.status) == (b"{not json", "rejected")


def test_a_nul_character_in_a_string_is_refused_naming_the_element(emr):
    bundle = transaction(post_entry(patient_resource(name=[{"family": "王", "given": ["小\x00明"]}]), PATIENT_URL))

    response = emr.post_fhir("/fhir/R4/", bundle)

    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[0].resource.name[0].given[0]"]
    assert Patient.objects.count() == 0
    assert InboundMessage.objects.get().status == "rejected"
