"""How a transaction is written: one audit entry per patient for a system, per-row audit for staff, set-based
statements whose number does not grow with the records, and the guards that replace per-row full_clean."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hcrm.models import AuditEntry
from integrations.models import InboundMessage
from patients.models import Diagnosis, Encounter, LabResult, Patient
from tests.integrations.fhir.conftest import (
    FhirClient,
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


def visit_bundle(observations: int, *, prefix: str = "obs") -> dict:
    return transaction(
        post_entry(patient_resource(), PATIENT_URL),
        post_entry(encounter(PATIENT_URL, id=f"{prefix}-visit"), ENCOUNTER_URL),
        post_entry(condition(PATIENT_URL, id=f"{prefix}-diagnosis", encounter=ENCOUNTER_URL)),
        *[
            post_entry(observation(PATIENT_URL, id=f"{prefix}-{number}", encounter=ENCOUNTER_URL))
            for number in range(observations)
        ],
    )


def test_a_systems_transaction_is_audited_once_per_patient(emr):
    response = emr.post_fhir("/fhir/R4/", visit_bundle(3))

    assert response.status_code == 200, response.content
    patient = Patient.objects.get()
    message = InboundMessage.objects.get()
    entry = AuditEntry.objects.get()
    assert (entry.event, entry.patient_uuid, entry.object_pk, entry.actor) == (
        "create",
        patient.uuid,
        str(patient.pk),
        None,
    )
    assert entry.content_type == ContentType.objects.get_for_model(Patient)
    assert entry.additional_data == {
        "inbound_message": str(message.uuid),
        "bundle_type": "transaction",
        "created": {"Condition": 1, "Encounter": 1, "Observation": 3, "Patient": 1},
    }


def test_reposting_a_systems_transaction_audits_the_payload_and_counts_nothing_changed(emr):
    emr.post_fhir("/fhir/R4/", visit_bundle(2))

    emr.post_fhir("/fhir/R4/", visit_bundle(2))

    second = AuditEntry.objects.order_by("pk").last()
    assert AuditEntry.objects.count() == 2
    assert second.event == "update"
    assert second.additional_data["matched"] == {"Patient": 1}
    assert second.additional_data["unchanged"] == {"Condition": 1, "Encounter": 1, "Observation": 2}
    assert "created" not in second.additional_data and "updated" not in second.additional_data


def test_a_changed_record_is_counted_as_updated(emr):
    emr.post_fhir("/fhir/R4/", visit_bundle(2))
    bundle = visit_bundle(2)
    bundle["entry"][3]["resource"]["valueQuantity"]["value"] = 7.2

    response = emr.post_fhir("/fhir/R4/", bundle)

    assert [entry["response"]["status"] for entry in response.json()["entry"]] == ["200 OK"] * 5
    assert sorted(LabResult.objects.values_list("external_id", "value")) == [("obs-0", "7.2"), ("obs-1", "6.1")]
    assert AuditEntry.objects.order_by("pk").last().additional_data["updated"] == {"Observation": 1}


def test_a_staff_members_transaction_keeps_per_row_audit(staff):
    doctor = FhirClient().as_user(staff["doctor"])

    response = doctor.post_fhir("/fhir/R4/", visit_bundle(2))

    assert response.status_code == 200, response.content
    rows = AuditEntry.objects.filter(actor=staff["doctor"], event="create")
    kinds = sorted(ContentType.objects.get_for_id(entry.content_type_id).model for entry in rows)
    assert kinds.count("labresult") == 2
    assert {"patient", "encounter", "diagnosis"} <= set(kinds)
    assert not AuditEntry.objects.filter(additional_data__has_key="inbound_message").exists()


def test_statements_per_transaction_do_not_grow_with_its_records(emr):
    emr.post_fhir("/fhir/R4/", transaction(post_entry(patient_resource(), PATIENT_URL)))  # profile, key, patient
    counts = []
    for observations, prefix in ((2, "a"), (12, "b")):
        with CaptureQueriesContext(connection) as queries:
            response = emr.post_fhir("/fhir/R4/", visit_bundle(observations, prefix=prefix))
        assert response.status_code == 200, response.content
        counts.append(len(queries.captured_queries))

    assert counts[0] == counts[1]
    assert LabResult.objects.count() == 14


def test_a_future_date_is_refused_without_full_clean(emr):
    bundle = visit_bundle(1)
    bundle["entry"][3]["resource"]["effectiveDateTime"] = "2999-01-01T08:00:00+08:00"

    response = emr.post_fhir("/fhir/R4/", bundle)

    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["Bundle.entry[3].resource"]
    assert issue["diagnostics"].startswith("observed_at: ")
    assert (Patient.objects.count(), Encounter.objects.count(), Diagnosis.objects.count()) == (0, 0, 0)


def test_an_encounter_ending_before_it_starts_is_refused(emr):
    bundle = visit_bundle(0)
    bundle["entry"][1]["resource"]["period"] = {
        "start": "2024-03-03T10:00:00+08:00",
        "end": "2024-02-28T09:00:00+08:00",
    }

    response = emr.post_fhir("/fhir/R4/", bundle)

    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[1].resource"]
    assert response.json()["issue"][0]["diagnostics"].startswith("ended_at: ")
    assert Patient.objects.count() == 0


def test_a_code_outside_the_value_set_is_refused(emr):
    emr_profile = emr.post_fhir("/fhir/R4/", transaction(post_entry(patient_resource(), PATIENT_URL)))
    assert emr_profile.status_code == 200
    from integrations.models import SourceProfile

    # Saved as the console saves it, so this process's cached profile is dropped at once.
    profile = SourceProfile.objects.get(protocol="fhir", sending_application="EMR")
    profile.diagnosis_systems = {"http://example.org/problems": "problem-list"}
    profile.save()
    bundle = visit_bundle(0)
    bundle["entry"][2]["resource"]["code"]["coding"][0]["system"] = "http://example.org/problems"

    response = emr.post_fhir("/fhir/R4/", bundle)

    assert response.status_code == 400
    assert response.json()["issue"][0]["diagnostics"].startswith("system: ")
    assert Diagnosis.objects.count() == 0


def test_the_same_id_twice_in_one_transaction_is_one_record(emr):
    first = observation(PATIENT_URL, id="obs-same", value=5.0)
    second = observation(PATIENT_URL, id="obs-same", value=5.5)

    response = emr.post_fhir(
        "/fhir/R4/", transaction(post_entry(patient_resource(), PATIENT_URL), post_entry(first), post_entry(second))
    )

    assert [entry["response"]["status"] for entry in response.json()["entry"]] == [
        "201 Created",
        "201 Created",
        "200 OK",
    ]
    assert list(LabResult.objects.values_list("external_id", "value")) == [("obs-same", "5.5")]


def test_an_entry_of_a_type_unknown_to_fhir_is_skipped_not_validated(emr):
    unknown = {"resourceType": "NotAResource", "anything": 1}

    response = emr.post_fhir("/fhir/R4/", transaction(post_entry(patient_resource(), PATIENT_URL), post_entry(unknown)))

    assert response.status_code == 200, response.content
    skipped = response.json()["entry"][1]["response"]
    assert (skipped["status"], skipped["outcome"]["issue"][0]["code"]) == ("200 OK", "not-supported")


def test_a_batch_from_a_system_is_audited_once_per_patient(emr):
    bundle = visit_bundle(1)
    bundle["type"] = "batch"
    bundle["entry"].append(post_entry(observation("Patient/00000000-0000-4000-8000-000000000000", id="lost")))

    response = emr.post_fhir("/fhir/R4/", bundle)

    statuses = [entry["response"]["status"] for entry in response.json()["entry"]]
    assert statuses == ["201 Created"] * 4 + ["404 Not Found"]
    entry = AuditEntry.objects.get()
    assert entry.additional_data["bundle_type"] == "batch"
    assert entry.additional_data["created"] == {"Condition": 1, "Encounter": 1, "Observation": 1, "Patient": 1}


def test_the_bundle_and_each_resource_are_validated_with_r4b_once(emr, monkeypatch):
    from integrations.fhir.services import plan

    validated = []
    original = plan.get_fhir_model_class

    def counting(resource_type):
        validated.append(resource_type)
        return original(resource_type)

    monkeypatch.setattr(plan, "get_fhir_model_class", counting)
    bundle = visit_bundle(3)

    response = emr.post_fhir("/fhir/R4/", bundle)

    assert response.status_code == 200, response.content
    assert validated == ["Bundle"] + [entry["resource"]["resourceType"] for entry in bundle["entry"]]


def test_a_systems_visit_bundle_takes_a_pinned_number_of_statements(django_assert_num_queries):
    import json

    from integrations.fhir.services import FhirCaller, SystemPrincipal, fhir_receive

    caller = FhirCaller(SystemPrincipal("EMR"), "EMR")
    warm = visit_bundle(1, prefix="warm")
    assert fhir_receive(raw=json.dumps(warm).encode(), caller=caller).status == 200  # profile, counters, types
    bundle = visit_bundle(5, prefix="next")
    bundle["entry"][0]["resource"] = patient_resource(
        identifier=[{"system": "urn:oid:1.2.156.112604.1.2.1", "value": "MR0002"}],
        name=[{"use": "official", "family": "李", "given": ["四"]}],
    )

    # Store the payload raw; find the new patient (nobody), register it with its MRN and identifier
    # and read its likely duplicates' candidates in the same statement; upsert the encounter, the
    # condition and the five observations (one statement per type); one audit entry; record the
    # outcome on the stored payload. Storing and applying are two transactions (two savepoints here);
    # SQLite registers the patient in several and looks for likely duplicates on its own.
    with django_assert_num_queries(12 if connection.vendor == "postgresql" else 17):
        received = fhir_receive(raw=json.dumps(bundle).encode(), caller=caller)

    assert received.status == 200, received.body
    assert LabResult.objects.filter(external_id__startswith="next-").count() == 5
    assert Patient.objects.count() == 2
