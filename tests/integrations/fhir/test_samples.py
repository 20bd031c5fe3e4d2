"""Every FHIR file in shared/samples/fhir goes through the facade with the outcome it should have."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from followups.models import QuestionnaireVersion
from integrations.models import InboundMessage
from patients.models import Diagnosis, Encounter, LabResult, MedicationOrder, Patient, Procedure
from tests.integrations.fhir.conftest import SAMPLES

pytestmark = pytest.mark.django_db

NOT_SERVED_YET = ["Appointment", "Communication", "QuestionnaireResponse", "Schedule", "Slot"]
# Served for read and search, written only through the booking services.
READ_ONLY = ["Appointment", "QuestionnaireResponse", "Schedule", "Slot"]
# Questionnaires are imported one by one: answer lists in contained value sets become answer options;
# an external value set (LOINC's answer lists) cannot be expanded without a terminology server.
QUESTIONNAIRES = {
    "Questionnaire-f201.json": (201, []),
    "Questionnaire-gcs.json": (201, []),
    "Questionnaire-phq-9-questionnaire.json": (
        400,
        [f"Questionnaire.item[{index}].answerValueSet" for index in (0, 1, 2, 3, 4, 5, 6, 7, 9)],
    ),
}
PATIENTS = [
    "Patient-ch-example.json",
    "Patient-dicom.json",
    "Patient-example.json",
    "Patient-f001.json",
    "Patient-glossy.json",
    "Patient-infant-twin-1.json",
    "Patient-pat1.json",
]
# Clinical examples posted as batch entries: (status, the reason's first words).
CLINICAL = {
    "Condition-example.json": ("404 Not Found", "No patient Patient/example."),
    "Condition-f201.json": ("404 Not Found", "No patient Patient/f201."),
    "Condition-stroke.json": ("404 Not Found", "No patient Patient/example."),
    "Encounter-example.json": ("400 Bad Request", "A date and time is required here."),
    "Encounter-f001.json": ("400 Bad Request", "A date and time is required here."),
    "Encounter-home.json": ("404 Not Found", "No patient Patient/example."),
    "Observation-blood-pressure.json": ("404 Not Found", "No patient Patient/example."),
    "Observation-bmi.json": ("404 Not Found", "No patient Patient/example."),
    "Observation-f001.json": ("404 Not Found", "No patient Patient/f001."),
    "Observation-vitals-panel.json": ("400 Bad Request", "An observation needs a value or a data-absent reason."),
    "Procedure-example.json": ("404 Not Found", "No patient Patient/example."),
    "Procedure-f201.json": ("404 Not Found", "No patient Patient/f201."),
}
BUNDLE_TYPES_REFUSED = [
    "Bundle-101.json",
    "Bundle-10bb101f-a121-4264-a920-67be9cb82c74.json",
    "Bundle-bundle-references.json",
    "Bundle-bundle-response.json",
]
SYNTHEA = {
    # file: (patients, encounters, lab results, diagnoses, procedures, medication orders, statuses)
    "Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json": (
        1,
        3,
        48,
        1,
        1,
        0,
        {"201 Created": 54, "200 OK": 16},
    ),
    "Elsy_Bechtelar_c84557ab-5b92-4be3-b78f-1fe3d4c49ccd.json": (
        1,
        15,
        108,
        5,
        3,
        2,
        {"201 Created": 134, "200 OK": 54},
    ),
    "Liz_Conn_27c911c6-f045-4ffa-af5d-6eba57ac94b2.json": (1, 7, 36, 1, 3, 1, {"201 Created": 49, "200 OK": 24}),
}


def load(folder: str, name: str) -> dict:
    return json.loads((SAMPLES / folder / name).read_text(encoding="utf-8"))


def test_every_sample_file_has_an_expected_outcome():
    listed = (
        set(PATIENTS)
        | set(CLINICAL)
        | set(BUNDLE_TYPES_REFUSED)
        | set(QUESTIONNAIRES)
        | {"Bundle-bundle-transaction.json"}
    )
    examples = {path.name for path in (SAMPLES / "examples").glob("*.json")}
    not_served = {name for name in examples if name.split("-")[0] in NOT_SERVED_YET}
    assert examples - not_served == listed
    assert {path.name for path in (SAMPLES / "synthea").glob("*.json")} == set(SYNTHEA)


@pytest.mark.parametrize("name", PATIENTS)
def test_patient_examples_are_created(emr, name):
    response = emr.post_fhir("/fhir/R4/Patient", load("examples", name))

    assert response.status_code == 201, response.content
    assert Patient.objects.count() == 1
    assert InboundMessage.objects.get().status == "applied"


def test_the_chinese_patient_example_keeps_its_chinese_name_and_address(emr):
    emr.post_fhir("/fhir/R4/Patient", load("examples", "Patient-ch-example.json"))

    patient = Patient.objects.get()
    assert (patient.name, patient.city, patient.district, patient.address_detail, patient.postal_code) == (
        "张无忌",
        "上海市",
        "黄埔区",
        "马当路190号",
        "200000",
    )


@pytest.mark.parametrize(("name", "expected"), sorted(CLINICAL.items()))
def test_clinical_examples_in_a_batch(emr, name, expected):
    resource = load("examples", name)
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}],
    }

    response = emr.post_fhir("/fhir/R4/", bundle)

    entry = response.json()["entry"][0]["response"]
    assert (response.status_code, entry["status"]) == (200, expected[0])
    assert entry["outcome"]["issue"][0]["diagnostics"].startswith(expected[1])
    assert (Encounter.objects.count(), LabResult.objects.count(), Procedure.objects.count()) == (0, 0, 0)


@pytest.mark.parametrize("name", BUNDLE_TYPES_REFUSED)
def test_bundles_that_are_not_transactions_or_batches_are_refused(emr, name):
    response = emr.post_fhir("/fhir/R4/", load("examples", name))

    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Bundle.type"]


def test_the_transaction_example_is_refused_for_its_delete_get_and_operation_entries(emr):
    response = emr.post_fhir("/fhir/R4/", load("examples", "Bundle-bundle-transaction.json"))

    assert response.status_code == 400
    assert [issue["expression"][0] for issue in response.json()["issue"]] == [
        f"Bundle.entry[{index}].request" for index in (5, 6, 7, 8, 9)
    ]
    assert Patient.objects.count() == 0


@pytest.mark.parametrize("name", sorted(set(NOT_SERVED_YET) - set(READ_ONLY)))
def test_resource_types_not_served_yet_answer_404(emr, name):
    path = next((SAMPLES / "examples").glob(f"{name}-*.json"))

    response = emr.post_fhir(f"/fhir/R4/{name}", json.loads(path.read_text()))

    assert (response.status_code, response.json()["issue"][0]["code"]) == (404, "not-supported")


@pytest.mark.parametrize("name", sorted(QUESTIONNAIRES))
def test_questionnaire_examples_are_imported_or_refused_naming_the_element(emr, name):
    status, expressions = QUESTIONNAIRES[name]

    response = emr.post_fhir("/fhir/R4/Questionnaire", load("examples", name))

    assert response.status_code == status
    if status == 201:
        assert QuestionnaireVersion.objects.get().items == response.json()["item"]
    else:
        assert [issue["expression"][0] for issue in response.json()["issue"]] == expressions
        assert QuestionnaireVersion.objects.count() == 0


@pytest.mark.parametrize("name", READ_ONLY)
def test_read_only_resource_types_refuse_writes_with_405(emr, name):
    path = next((SAMPLES / "examples").glob(f"{name}-*.json"))

    response = emr.post_fhir(f"/fhir/R4/{name}", json.loads(path.read_text()))

    assert (response.status_code, response.json()["issue"][0]["code"]) == (405, "not-supported")


@pytest.mark.parametrize("name", sorted(SYNTHEA))
def test_synthea_bundles_are_taken_for_the_supported_entries(emr, name):
    expected = SYNTHEA[name]

    response = emr.post_fhir("/fhir/R4/", load("synthea", name))

    assert response.status_code == 200
    statuses = Counter(entry["response"]["status"] for entry in response.json()["entry"])
    assert dict(statuses) == expected[6]
    counts = tuple(
        model.objects.count() for model in (Patient, Encounter, LabResult, Diagnosis, Procedure, MedicationOrder)
    )
    assert counts == expected[:6]


def test_reposting_a_synthea_bundle_changes_nothing(emr):
    name = "Liz_Conn_27c911c6-f045-4ffa-af5d-6eba57ac94b2.json"
    emr.post_fhir("/fhir/R4/", load("synthea", name))
    models = (Patient, Encounter, LabResult, Diagnosis, Procedure, MedicationOrder)
    before = {model: list(model.objects.order_by("pk").values()) for model in models}

    response = emr.post_fhir("/fhir/R4/", load("synthea", name))

    assert Counter(entry["response"]["status"] for entry in response.json()["entry"]) == {"200 OK": 73}
    assert {model: list(model.objects.order_by("pk").values()) for model in models} == before
    patient = Patient.objects.get()
    # Numbers without a country code are read as Chinese ones (0555 is Ma'anshan's area code).
    assert (patient.name, patient.sex, patient.phone, patient.mobile) == ("Liz Conn", "female", "+865551753568", "")


def test_the_two_synthea_patients_with_hypertension_are_found_by_their_diagnosis(emr):
    for name in sorted(SYNTHEA):
        emr.post_fhir("/fhir/R4/", load("synthea", name))

    hypertensive = Patient.objects.filter(diagnoses__system="snomed", diagnoses__code="38341003").distinct()

    assert hypertensive.count() == 2
