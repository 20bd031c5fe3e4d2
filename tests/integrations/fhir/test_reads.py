"""Read, search, paging, $everything and the CapabilityStatement."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from hcrm.models import AuditEntry
from integrations.fhir.registry import RESOURCES
from tests.factories import EncounterFactory, LabResultFactory, PatientFactory, national_id

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(internal_medicine):
    wang = PatientFactory(
        name="王小明",
        sex="male",
        birth_date=dt.date(1990, 1, 1),
        national_id=national_id("110105", dt.date(1990, 1, 1), 123),
        mobile="+8613812345678",
        address_detail="朝阳路 1 号",
        departments=[internal_medicine],
    )
    li = PatientFactory(
        name="李四", sex="female", birth_date=dt.date(1975, 6, 15), mobile="", departments=[internal_medicine]
    )
    peter = PatientFactory(name="Peter James Chalmers", sex="male", birth_date=dt.date(1974, 12, 25), mobile="")
    return {"wang": wang, "li": li, "peter": peter}


def ids(response) -> list[str]:
    return [entry["resource"]["id"] for entry in response.json().get("entry", [])]


def test_read_a_patient_by_public_id(reader, people):
    wang = people["wang"]

    response = reader.get_fhir(f"/fhir/R4/Patient/{wang.uuid}")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json; charset=utf-8"
    body = response.json()
    assert (body["id"], body["name"][0]["text"], body["gender"], body["birthDate"]) == (
        str(wang.uuid),
        "王小明",
        "male",
        "1990-01-01",
    )
    national = next(i for i in body["identifier"] if i["system"] == "urn:oid:2.16.156.10011.1.3")
    assert national["value"] == "110105********1232"
    assert body["address"][0]["line"] == ["朝******"]


def test_a_system_with_the_sensitive_scope_sees_the_national_id(people):
    from tests.integrations.fhir.conftest import key_client

    client = key_client("fhir.read", "patients.sensitive")

    body = client.get_fhir(f"/fhir/R4/Patient/{people['wang'].uuid}").json()

    assert "110105199001011232" in [i["value"] for i in body["identifier"]]


def test_unknown_deleted_and_merged_patients(reader, people, staff):
    from patients.services import patient_delete

    gone = PatientFactory(name="赵六")
    gone_id = gone.uuid
    patient_delete(actor=staff["administrator"], patient=gone)
    li = people["li"]
    li.merged_into = people["wang"]
    li.save()

    missing = reader.get_fhir("/fhir/R4/Patient/00000000-0000-4000-8000-000000000000")
    deleted = reader.get_fhir(f"/fhir/R4/Patient/{gone_id}")
    merged = reader.get_fhir(f"/fhir/R4/Patient/{li.uuid}")

    assert (missing.status_code, missing.json()["issue"][0]["code"]) == (404, "not-found")
    assert (deleted.status_code, deleted.json()["issue"][0]["code"]) == (410, "deleted")
    assert merged.status_code == 200
    assert merged.json()["active"] is False
    assert merged.json()["link"] == [{"other": {"reference": f"Patient/{people['wang'].uuid}"}, "type": "replaced-by"}]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("name=王", ["wang"]),
        ("name=wxm", ["wang"]),
        ("name=Peter", ["peter"]),
        ("family=Chalmers", ["peter"]),
        ("given=James", ["peter"]),
        ("family=李", ["li"]),
        ("given=小明", ["wang"]),
        ("gender=female", ["li"]),
        ("gender=male,female&_sort=_lastUpdated", ["wang", "li", "peter"]),
        ("birthdate=1990-01-01", ["wang"]),
        ("birthdate=1975", ["li"]),
        ("birthdate=ge1975-06-15&birthdate=lt1990&_sort=_lastUpdated", ["li"]),
        ("birthdate=gt1975&_sort=_lastUpdated", ["wang"]),
        ("birthdate=le1975-06&_sort=_lastUpdated", ["li", "peter"]),
        ("phone=13812345678", ["wang"]),
        ("identifier=110105199001011232", ["wang"]),
        ("identifier=urn:oid:2.16.156.10011.1.3|110105199001011232", ["wang"]),
    ],
)
def test_patient_search_parameters(reader, people, query, expected):
    response = reader.get_fhir(f"/fhir/R4/Patient?{query}")

    assert response.status_code == 200, response.content
    assert ids(response) == [str(people[name].uuid) for name in expected]


def test_search_by_mrn_and_other_identifiers(reader, people):
    from patients.models import PatientIdentifier

    PatientIdentifier.objects.create(patient=people["li"], kind="his", assigner="HOSP", value="H-77")

    by_assigner = reader.get_fhir("/fhir/R4/Patient?identifier=urn:hcrm:assigner:HOSP|H-77")
    by_mrn = reader.get_fhir(f"/fhir/R4/Patient?identifier=urn:hcrm:mrn|{people['peter'].mrn}")

    assert ids(by_assigner) == [str(people["li"].uuid)]
    assert ids(by_mrn) == [str(people["peter"].uuid)]


def test_last_updated_search(reader, people):
    from patients.models import Patient

    Patient.objects.filter(pk=people["li"].pk).update(updated_at=timezone.now() - dt.timedelta(days=3))

    response = reader.get_fhir(f"/fhir/R4/Patient?_lastUpdated=lt{(timezone.now() - dt.timedelta(days=1)).date()}")

    assert ids(response) == [str(people["li"].uuid)]


def test_paging_has_stable_next_and_previous_links(reader, people):
    first = reader.get_fhir("/fhir/R4/Patient?_count=2&_sort=_lastUpdated").json()
    links = {link["relation"]: link["url"] for link in first["link"]}
    second = reader.get_fhir(links["next"]).json()
    back = {link["relation"]: link["url"] for link in second["link"]}

    assert [e["resource"]["id"] for e in first["entry"] + second["entry"]] == [
        str(people[name].uuid) for name in ("wang", "li", "peter")
    ]
    assert "total" not in first
    assert links["self"] == "http://testserver/fhir/R4/Patient?_count=2&_sort=_lastUpdated"
    assert links["next"] == "http://testserver/fhir/R4/Patient?_count=2&_sort=_lastUpdated&_offset=2"
    assert set(back) == {"self", "previous"}
    assert back["previous"] == "http://testserver/fhir/R4/Patient?_count=2&_sort=_lastUpdated"


def test_search_errors_are_operation_outcomes(reader, people):
    unknown = reader.get_fhir("/fhir/R4/Patient?colour=blue")
    bad_date = reader.get_fhir("/fhir/R4/Patient?birthdate=sa1990")
    too_far = reader.get_fhir("/fhir/R4/Patient?_offset=20000")

    assert (unknown.status_code, unknown.json()["issue"][0]["expression"]) == (400, ["colour"])
    assert (bad_date.status_code, bad_date.json()["issue"][0]["expression"]) == (400, ["birthdate"])
    assert (too_far.status_code, too_far.json()["issue"][0]["code"]) == (400, "too-costly")


def test_patient_search_query_count_does_not_grow_with_the_page(reader, people, django_assert_num_queries):
    for _index in range(10):
        PatientFactory()
    reader.get_fhir("/fhir/R4/Patient?_count=2")  # warms the content type cache

    with django_assert_num_queries(4):
        small = reader.get_fhir("/fhir/R4/Patient?_count=2")
    with django_assert_num_queries(4):
        large = reader.get_fhir("/fhir/R4/Patient?_count=12")

    assert (len(ids(small)), len(ids(large))) == (2, 12)


def test_records_by_patient_with_a_pinned_query_count(reader, people, django_assert_num_queries):
    wang = people["wang"]
    visits = [EncounterFactory(patient=wang) for _index in range(3)]
    for visit in visits:
        LabResultFactory(patient=wang, encounter=visit)
    LabResultFactory(patient=people["li"])
    reader.get_fhir(f"/fhir/R4/Observation?patient={wang.uuid}")

    with django_assert_num_queries(4):
        observations = reader.get_fhir(f"/fhir/R4/Observation?patient={wang.uuid}")
    encounters = reader.get_fhir(f"/fhir/R4/Encounter?subject=Patient/{wang.uuid}&_sort=_lastUpdated")

    assert len(ids(observations)) == 3
    assert ids(encounters) == [str(visit.uuid) for visit in visits]
    resource = observations.json()["entry"][0]["resource"]
    assert resource["subject"] == {"reference": f"Patient/{wang.uuid}"}
    assert resource["encounter"]["reference"].startswith("Encounter/")


def test_everything_returns_the_patient_and_records_in_pages(reader, people):
    wang = people["wang"]
    visit = EncounterFactory(patient=wang)
    results = [LabResultFactory(patient=wang, encounter=visit) for _index in range(3)]

    whole = reader.get_fhir(f"/fhir/R4/Patient/{wang.uuid}/$everything").json()
    page = reader.get_fhir(f"/fhir/R4/Patient/{wang.uuid}/$everything?_count=2&_offset=1").json()

    assert whole["total"] == 5
    assert [entry["resource"]["resourceType"] for entry in whole["entry"]] == [
        "Patient",
        "Encounter",
        "Observation",
        "Observation",
        "Observation",
    ]
    assert {entry["resource"]["id"] for entry in whole["entry"][2:]} == {str(r.uuid) for r in results}
    assert [entry["resource"]["resourceType"] for entry in page["entry"]] == ["Encounter", "Observation"]
    assert {link["relation"] for link in page["link"]} == {"self", "next", "previous"}


def test_reads_are_audited(reader, people):
    reader.get_fhir(f"/fhir/R4/Patient/{people['wang'].uuid}")
    reader.get_fhir("/fhir/R4/Patient?name=王")

    view, search = AuditEntry.objects.filter(event__in=["view", "search"]).order_by("pk")
    assert (view.event, view.patient_uuid, view.client) == ("view", people["wang"].uuid, "integration:key-fhir.read")
    assert search.additional_data["patients"] == [str(people["wang"].uuid)]


def test_metadata_lists_exactly_what_the_views_support(fhir):
    response = fhir.get_fhir("/fhir/R4/metadata")

    body = response.json()
    assert response.status_code == 200
    assert (body["resourceType"], body["fhirVersion"], body["kind"]) == ("CapabilityStatement", "4.0.1", "instance")
    rest = body["rest"][0]
    assert [i["code"] for i in rest["interaction"]] == ["transaction", "batch"]
    listed = {r["type"]: r for r in rest["resource"]}
    assert list(listed) == list(RESOURCES)
    assert [i["code"] for i in listed["Patient"]["interaction"]] == ["read", "search-type", "create", "update"]
    assert [p["name"] for p in listed["Patient"]["searchParam"]] == [
        "identifier",
        "name",
        "family",
        "given",
        "birthdate",
        "phone",
        "gender",
        "_lastUpdated",
    ]
    assert [p["name"] for p in listed["Observation"]["searchParam"]] == [
        "patient",
        "subject",
        "code",
        "date",
        "_lastUpdated",
    ]
    assert listed["Patient"]["operation"][0]["name"] == "everything"
    assert [i["code"] for i in listed["Procedure"]["interaction"]] == ["read"]
    assert {
        kind: (
            [i["code"] for i in listed[kind]["interaction"]],
            [p["name"] for p in listed[kind]["searchParam"]],
            "documentation" in listed[kind],
        )
        for kind in ("Schedule", "Slot", "Appointment")
    } == {
        "Schedule": (["read", "search-type"], ["actor", "date", "active", "_lastUpdated"], False),
        "Slot": (["read", "search-type"], ["schedule", "start", "status", "_lastUpdated"], False),
        "Appointment": (
            ["read", "search-type"],
            ["patient", "practitioner", "date", "status", "slot", "_lastUpdated"],
            False,
        ),
    }
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    CapabilityStatement.model_validate(body)


def test_every_search_parameter_in_the_statement_is_accepted(reader, people):
    body = reader.get_fhir("/fhir/R4/metadata").json()
    samples = {
        "token": "x",
        "string": "x",
        "date": "2020",
        "reference": str(people["wang"].uuid),
        "uri": "urn:hcrm:Questionnaire:x",
    }
    # Tokens with a fixed value set take one of their values.
    valid = {
        "gender": "male",
        "phone": "13812345678",
        "active": "true",
        ("Encounter", "status"): "finished",
        ("Slot", "status"): "free",
        ("Appointment", "status"): "booked",
        ("Questionnaire", "status"): "active",
        ("QuestionnaireResponse", "status"): "completed",
    }
    for resource in body["rest"][0]["resource"]:
        for param in resource.get("searchParam", []):
            value = valid.get((resource["type"], param["name"]), valid.get(param["name"], samples[param["type"]]))
            response = reader.get_fhir(f"/fhir/R4/{resource['type']}?{param['name']}={value}")
            assert response.status_code == 200, (resource["type"], param["name"], response.content)


def test_format_and_accept_negotiation(reader, people):
    as_json = reader.get_fhir("/fhir/R4/metadata", HTTP_ACCEPT="application/json")
    xml = reader.get_fhir("/fhir/R4/metadata", HTTP_ACCEPT="application/fhir+xml")
    format_xml = reader.get_fhir("/fhir/R4/metadata?_format=xml", HTTP_ACCEPT="*/*")
    format_json = reader.get_fhir("/fhir/R4/metadata?_format=json", HTTP_ACCEPT="application/fhir+xml")

    assert as_json["Content-Type"] == "application/json; charset=utf-8"
    assert (xml.status_code, xml.json()["resourceType"]) == (406, "OperationOutcome")
    assert format_xml.status_code == 406
    assert (format_json.status_code, format_json["Content-Type"]) == (200, "application/fhir+json; charset=utf-8")


def test_resource_outputs_validate_as_fhir_r4(reader, people):
    from fhir.resources.R4B import get_fhir_model_class

    wang = people["wang"]
    visit = EncounterFactory(patient=wang)
    LabResultFactory(patient=wang, encounter=visit)
    from tests.factories import AllergyFactory, DiagnosisFactory, MedicationOrderFactory, ProcedureFactory

    DiagnosisFactory(patient=wang, encounter=visit)
    ProcedureFactory(patient=wang, encounter=visit)
    MedicationOrderFactory(patient=wang, encounter=visit)
    AllergyFactory(patient=wang)

    body = reader.get_fhir(f"/fhir/R4/Patient/{wang.uuid}/$everything").json()

    assert len(body["entry"]) == 7
    for entry in body["entry"]:
        get_fhir_model_class(entry["resource"]["resourceType"]).model_validate(entry["resource"])
    get_fhir_model_class("Bundle").model_validate(body)
