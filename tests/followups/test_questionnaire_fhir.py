"""Questionnaires and responses as FHIR: mapping, round trip, the facade's reads, search and import."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from followups.fhir import questionnaire_from_fhir, questionnaire_resource, response_resource
from followups.models import Questionnaire, QuestionnaireVersion
from followups.services import questionnaire_save, questionnaire_version_save, response_save
from hcrm.models import AuditEntry
from tests.factories import PatientFactory, UserFactory
from tests.followups import samples
from tests.integrations.fhir.conftest import FhirClient

pytestmark = pytest.mark.django_db

URL = "urn:hcrm:Questionnaire:post-discharge"


@pytest.fixture
def questionnaire(internal_medicine):
    return questionnaire_save(
        actor=None,
        data={
            "code": "post-discharge",
            "title": "出院随访",
            "title_en": "Post-discharge follow-up",
            "purpose": "clinical",
            "status": "active",
            "departments": [internal_medicine],
            "disease_codes": ["I10"],
        },
    )


@pytest.fixture
def version(questionnaire):
    return questionnaire_version_save(
        actor=None, questionnaire=questionnaire, items=samples.items(), scoring=samples.scoring()
    )


@pytest.fixture
def answered(version, patient, staff):
    return response_save(
        version=version,
        patient=patient,
        answers={"pain": True, "pain_level": 8, "sleep": "poor", "symptoms": ["cough", "fever"], "notes": "夜咳"},
        source="phone",
        actor=staff["nurse"],
        complete=True,
    )


def ids(response) -> list[str]:
    return [entry["resource"]["id"] for entry in response.json().get("entry", [])]


# --- Mapping --------------------------------------------------------------------------------------------


def test_a_version_maps_to_a_questionnaire(version):
    resource = questionnaire_resource(version)

    assert {key: resource[key] for key in ("id", "url", "identifier", "version", "name", "title", "status")} == {
        "id": str(version.uuid),
        "url": URL,
        "identifier": [{"system": "urn:hcrm:CodeSystem:questionnaire", "value": "post-discharge"}],
        "version": "1",
        "name": "PostDischarge",
        "title": "出院随访",
        "status": "active",
    }
    assert resource["useContext"] == [
        {
            "code": {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type", "code": "focus"},
            "valueCodeableConcept": {
                "coding": [
                    {
                        "system": "urn:hcrm:CodeSystem:questionnaire-purpose",
                        "code": "clinical",
                        "display": "Clinical follow-up",
                    }
                ]
            },
        },
        {
            "code": {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type", "code": "venue"},
            "valueCodeableConcept": {
                "coding": [{"system": "urn:hcrm:CodeSystem:department", "code": "NK", "display": "内科"}]
            },
        },
    ]
    assert resource["item"] == samples.ITEMS
    assert resource["extension"] == [
        {
            "url": "urn:hcrm:StructureDefinition:questionnaire-scoring",
            "valueString": json.dumps(samples.SCORING, ensure_ascii=False),
        },
        {"url": "urn:hcrm:StructureDefinition:questionnaire-disease-codes", "valueString": "I10"},
    ]
    from fhir.resources.R4B.questionnaire import Questionnaire as R4BQuestionnaire

    R4BQuestionnaire.model_validate(resource)


def test_a_response_maps_to_a_questionnaire_response(answered, patient, staff):
    resource = response_resource(answered)

    assert resource["questionnaire"] == f"{URL}|1"
    assert (resource["status"], resource["subject"]) == ("completed", {"reference": f"Patient/{patient.uuid}"})
    assert resource["authored"] == timezone.localtime(answered.completed_at).isoformat()
    assert resource["author"] == {
        "reference": f"Practitioner/{staff['nurse'].uuid}",
        "display": staff["nurse"].full_name,
    }
    assert resource["item"] == [
        {
            "linkId": "general",
            "text": "一般情况",
            "item": [
                {"linkId": "pain", "text": "是否疼痛?", "answer": [{"valueBoolean": True}]},
                {"linkId": "pain_level", "text": "疼痛程度", "answer": [{"valueInteger": 8}]},
            ],
        },
        {"linkId": "sleep", "text": "睡眠", "answer": [{"valueCoding": {"code": "poor", "display": "差"}}]},
        {
            "linkId": "symptoms",
            "text": "症状",
            "answer": [
                {"valueCoding": {"code": "cough", "display": "咳嗽"}},
                {"valueCoding": {"code": "fever", "display": "发热"}},
            ],
        },
        {"linkId": "notes", "text": "其他", "answer": [{"valueString": "夜咳"}]},
    ]
    assert resource["extension"] == [
        {
            "url": "urn:hcrm:StructureDefinition:questionnaire-score",
            "extension": [
                {"url": "code", "valueCode": "burden"},
                {"url": "value", "valueDecimal": 11.0},
                {"url": "band", "valueString": "重"},
                {"url": "flag", "valueCode": "alert"},
            ],
        }
    ]
    from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse as R4BResponse

    R4BResponse.model_validate(resource)


def test_an_exported_questionnaire_imports_back_as_it_was(version, internal_medicine):
    exported = questionnaire_resource(version)
    exported["identifier"][0]["value"] = "copy"

    parsed = questionnaire_from_fhir(exported)

    assert parsed == {
        "metadata": {
            "code": "copy",
            "title": "出院随访",
            "title_en": "Post-discharge follow-up",
            "description": "",
            "purpose": "clinical",
            "status": "active",
            "departments": ["NK"],
            "disease_codes": ["I10"],
        },
        "items": samples.ITEMS,
        "scoring": samples.SCORING,
    }


# --- Facade reads ---------------------------------------------------------------------------------------


def test_read_a_questionnaire_and_a_response(reader, version, answered):
    questionnaire = reader.get_fhir(f"/fhir/R4/Questionnaire/{version.uuid}")
    response = reader.get_fhir(f"/fhir/R4/QuestionnaireResponse/{answered.uuid}")

    version.refresh_from_db()
    answered.refresh_from_db()
    assert (questionnaire.status_code, response.status_code) == (200, 200)
    assert questionnaire.json() == questionnaire_resource(version)
    assert response.json() == response_resource(answered)


def test_reading_a_response_is_audited_under_the_patient(staff, answered, patient):
    client = FhirClient().as_user(staff["doctor"])

    response = client.get_fhir(f"/fhir/R4/QuestionnaireResponse/{answered.uuid}")

    assert response.status_code == 200
    entry = AuditEntry.objects.get(action=AuditEntry.Action.ACCESS, event="view")
    assert (entry.actor, entry.patient_uuid, entry.additional_data) == (
        staff["doctor"],
        patient.uuid,
        {"fhir": "QuestionnaireResponse"},
    )


def test_responses_of_patients_in_other_departments_are_not_found_by_staff(staff, answered):
    client = FhirClient().as_user(staff["other_doctor"])

    read = client.get_fhir(f"/fhir/R4/QuestionnaireResponse/{answered.uuid}")
    search = client.get_fhir("/fhir/R4/QuestionnaireResponse")

    assert read.status_code == 404
    assert ids(search) == []


def test_anonymous_and_roles_without_questionnaires_are_refused(fhir, staff, answered):
    anonymous = fhir.get_fhir(f"/fhir/R4/QuestionnaireResponse/{answered.uuid}")
    analyst = FhirClient().as_user(staff["analyst"]).get_fhir(f"/fhir/R4/QuestionnaireResponse/{answered.uuid}")

    assert (anonymous.status_code, analyst.status_code) == (401, 403)
    assert analyst.json()["issue"][0]["code"] == "forbidden"


def test_search_questionnaires_by_url_name_title_and_status(reader, questionnaire, version, patient):
    response_save(version=version, patient=patient, answers={"pain": False}, source="phone", complete=True)
    second = questionnaire_version_save(actor=None, questionnaire=questionnaire, items=samples.items(), scoring={})
    other = questionnaire_save(
        actor=None, data={"code": "satisfaction", "title": "门诊满意度", "purpose": "satisfaction"}
    )
    other_version = questionnaire_version_save(actor=None, questionnaire=other, items=samples.items(), scoring={})

    def found(query: str) -> list[str]:
        return sorted(ids(reader.get_fhir(f"/fhir/R4/Questionnaire?{query}")))

    assert found(f"url={URL}") == sorted([str(version.uuid), str(second.uuid)])
    assert found(f"url={URL}|2") == [str(second.uuid)]
    assert found("name=postdis") == sorted([str(version.uuid), str(second.uuid)])
    assert found("title=满意") == [str(other_version.uuid)]
    assert found("status=active") == [str(second.uuid)]
    assert found("status=retired") == [str(version.uuid)]
    assert found("status=draft") == [str(other_version.uuid)]
    assert reader.get_fhir("/fhir/R4/Questionnaire?status=gone").status_code == 400


def test_search_responses_by_patient_questionnaire_status_and_authored_with_paging(reader, version, patient):
    other = PatientFactory()
    done = [
        response_save(version=version, patient=patient, answers={"pain": False}, source="phone", complete=True)
        for _index in range(3)
    ]
    draft = response_save(version=version, patient=patient, answers={"pain": True}, source="sms", complete=False)
    response_save(version=version, patient=other, answers={"pain": False}, source="phone", complete=True)
    today = timezone.localdate().isoformat()

    def found(query: str) -> list[str]:
        return sorted(ids(reader.get_fhir(f"/fhir/R4/QuestionnaireResponse?{query}")))

    mine = sorted(str(row.uuid) for row in [*done, draft])
    assert found(f"patient=Patient/{patient.uuid}") == mine
    assert found(f"subject={patient.uuid}&status=in-progress") == [str(draft.uuid)]
    assert found(f"patient={patient.uuid}&questionnaire={URL}|1&status=completed") == sorted(str(r.uuid) for r in done)
    assert found(f"patient={patient.uuid}&questionnaire=Questionnaire/{version.uuid}&authored={today}") == sorted(
        str(r.uuid) for r in done
    )
    assert found(f"patient={patient.uuid}&authored=lt{today}") == []
    first = reader.get_fhir(f"/fhir/R4/QuestionnaireResponse?patient={patient.uuid}&_count=3").json()
    assert len(first["entry"]) == 3
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = reader.get_fhir(next_url.replace("http://testserver", "")).json()
    assert sorted([entry["resource"]["id"] for entry in first["entry"] + second["entry"]]) == mine


def test_the_capability_statement_lists_questionnaires(fhir):
    body = fhir.get_fhir("/fhir/R4/metadata").json()

    listed = {r["type"]: r for r in body["rest"][0]["resource"]}
    assert {
        kind: ([i["code"] for i in listed[kind]["interaction"]], [p["name"] for p in listed[kind]["searchParam"]])
        for kind in ("Questionnaire", "QuestionnaireResponse")
    } == {
        "Questionnaire": (["read", "search-type", "create"], ["url", "name", "title", "status", "_lastUpdated"]),
        "QuestionnaireResponse": (
            ["read", "search-type"],
            ["patient", "subject", "questionnaire", "status", "authored", "_lastUpdated"],
        ),
    }
    assert "conditionalCreate" not in listed["Questionnaire"]
    assert listed["Patient"]["conditionalCreate"] is True


# --- Import ---------------------------------------------------------------------------------------------


def fhir_questionnaire(**overrides) -> dict:
    resource = {
        "resourceType": "Questionnaire",
        "url": "http://example.org/Questionnaire/phq-2",
        "name": "PHQ2",
        "title": "PHQ-2",
        "status": "active",
        "item": [
            {
                "linkId": "1",
                "text": "Little interest or pleasure in doing things",
                "type": "choice",
                "required": True,
                "answerOption": [samples.option(str(score), str(score), score) for score in range(4)],
            },
            {
                "linkId": "2",
                "text": "Feeling down",
                "type": "choice",
                "required": True,
                "answerOption": [samples.option(str(score), str(score), score) for score in range(4)],
            },
        ],
    }
    resource.update(overrides)
    return resource


@pytest.fixture
def editor(staff):
    return FhirClient().as_user(staff["department_head"])


def test_posting_a_questionnaire_imports_it(editor, staff):
    response = editor.post_fhir("/fhir/R4/Questionnaire", fhir_questionnaire())

    version = QuestionnaireVersion.objects.get()
    assert response.status_code == 201
    assert response["Location"] == f"http://testserver/fhir/R4/Questionnaire/{version.uuid}"
    assert (version.questionnaire.code, version.questionnaire.title, version.questionnaire.status) == (
        "phq2",
        "PHQ-2",
        "active",
    )
    assert version.items == fhir_questionnaire()["item"]
    assert response.json()["url"] == "urn:hcrm:Questionnaire:phq2"
    entries = AuditEntry.objects.filter(action=AuditEntry.Action.CREATE).order_by("pk")
    assert [(entry.content_type.model, entry.actor) for entry in entries] == [
        ("questionnaire", staff["department_head"]),
        ("questionnaireversion", staff["department_head"]),
    ]


def test_importing_a_questionnaire_already_answered_makes_its_next_version(editor, version, patient):
    response_save(version=version, patient=patient, answers={"pain": False}, source="phone", complete=True)
    resource = questionnaire_resource(version)
    resource["item"][0]["text"] = "新版说明"

    response = editor.post_fhir("/fhir/R4/Questionnaire", resource)

    version.questionnaire.refresh_from_db()
    assert response.status_code == 201
    assert (response.json()["version"], version.questionnaire.current_version.number) == ("2", 2)
    assert version.questionnaire.current_version.items[0]["text"] == "新版说明"


def test_an_invalid_questionnaire_is_refused_naming_the_element(editor):
    bad_model = fhir_questionnaire(status="published")
    bad_items = fhir_questionnaire()
    bad_items["item"][1]["enableWhen"] = [{"question": "9", "operator": "=", "answerCoding": {"code": "1"}}]

    model = editor.post_fhir("/fhir/R4/Questionnaire", bad_model)
    items = editor.post_fhir("/fhir/R4/Questionnaire", bad_items)

    assert model.status_code == 400
    assert model.json()["issue"][0]["expression"] == ["Questionnaire.status"]
    assert items.status_code == 400
    assert items.json()["issue"] == [
        {
            "severity": "error",
            "code": "invalid",
            "diagnostics": "The condition refers to 9, which is not an earlier item.",
            "expression": ["Questionnaire.item[1].enableWhen[0].question"],
        }
    ]
    assert Questionnaire.objects.count() == 0


def test_importing_needs_the_right_to_edit_questionnaires(staff, fhir, reader):
    doctor = FhirClient().as_user(staff["doctor"]).post_fhir("/fhir/R4/Questionnaire", fhir_questionnaire())
    anonymous = fhir.post_fhir("/fhir/R4/Questionnaire", fhir_questionnaire())
    read_only_system = reader.post_fhir("/fhir/R4/Questionnaire", fhir_questionnaire())

    assert (doctor.status_code, anonymous.status_code, read_only_system.status_code) == (403, 401, 403)
    assert Questionnaire.objects.count() == 0


def test_a_system_with_the_write_scope_imports(emr):
    response = emr.post_fhir("/fhir/R4/Questionnaire", fhir_questionnaire())

    assert response.status_code == 201
    assert QuestionnaireVersion.objects.get().created_by is None


def test_a_member_of_staff_given_the_permissions_imports(db, internal_medicine):
    user = UserFactory(departments=[internal_medicine])
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="followups",
            codename__in=["add_questionnaireversion", "change_questionnaireversion"],
        )
    )

    response = FhirClient().as_user(user).post_fhir("/fhir/R4/Questionnaire", copy.deepcopy(fhir_questionnaire()))

    assert response.status_code == 201
    assert timezone.now() - QuestionnaireVersion.objects.get().created_at < dt.timedelta(minutes=1)


# --- A real client --------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_fhirclient_imports_searches_and_reads_questionnaires_and_responses(live_server, internal_medicine):
    from fhirclient import client
    from fhirclient.models.questionnaire import Questionnaire as FhirQuestionnaire
    from fhirclient.models.questionnaireresponse import QuestionnaireResponse as FhirResponse

    from hcrm.models import IntegrationKey

    _key, secret = IntegrationKey.objects.create_key(
        name="EMR", scopes=["fhir.read", "fhir.write"], source_system="EMR"
    )
    smart = client.FHIRClient(settings={"app_id": "hcrm-tests", "api_base": f"{live_server.url}/fhir/R4/"})
    smart.server.session.headers["Authorization"] = f"Api-Key {secret}"
    try:
        created = FhirQuestionnaire(fhir_questionnaire()).create(smart.server)
        version = QuestionnaireVersion.objects.get()
        patient = PatientFactory(departments=[internal_medicine])
        answered = response_save(
            version=version, patient=patient, answers={"1": "2", "2": "3"}, source="phone", complete=True
        )

        found = list(
            FhirQuestionnaire.where(struct={"url": "urn:hcrm:Questionnaire:phq2"}).perform_resources_iter(smart.server)
        )
        read = FhirQuestionnaire.read(str(version.uuid), smart.server)
        responses = list(FhirResponse.where(struct={"patient": str(patient.uuid)}).perform_resources_iter(smart.server))
    finally:
        smart.server.session.close()

    assert created["id"] == str(version.uuid)
    assert [resource.id for resource in found] == [str(version.uuid)]
    assert (read.title, read.version, [item.linkId for item in read.item]) == ("PHQ-2", "1", ["1", "2"])
    assert [resource.id for resource in responses] == [str(answered.uuid)]
    assert responses[0].questionnaire == "urn:hcrm:Questionnaire:phq2|1"
    assert [item.answer[0].valueCoding.code for item in responses[0].item] == ["2", "3"]
    assert (responses[0].status, responses[0].subject.reference) == ("completed", f"Patient/{patient.uuid}")


def test_a_contained_answer_list_becomes_options_keeping_its_weights():
    resource = fhir_questionnaire(
        contained=[
            {
                "resourceType": "ValueSet",
                "id": "frequency",
                "status": "active",
                "compose": {
                    "include": [
                        {
                            "system": "http://loinc.org",
                            "concept": [
                                {
                                    "code": "LA6568-5",
                                    "display": "Not at all",
                                    "extension": [
                                        {"url": "http://hl7.org/fhir/StructureDefinition/itemWeight", "valueDecimal": 0}
                                    ],
                                },
                                {"code": "LA6569-3", "display": "Several days"},
                            ],
                        }
                    ]
                },
            }
        ]
    )
    resource["item"][0] = {"linkId": "1.1", "text": "Interest", "type": "choice", "answerValueSet": "#frequency"}

    items = questionnaire_from_fhir(resource)["items"]

    assert items[0] == {
        "linkId": "1.1",
        "text": "Interest",
        "type": "choice",
        "answerOption": [
            {
                "valueCoding": {"system": "http://loinc.org", "code": "LA6568-5", "display": "Not at all"},
                "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/ordinalValue", "valueDecimal": 0}],
            },
            {"valueCoding": {"system": "http://loinc.org", "code": "LA6569-3", "display": "Several days"}},
        ],
    }


def test_problems_with_dotted_link_ids_are_placed_on_the_right_item(editor):
    resource = fhir_questionnaire()
    resource["item"] = [
        {"linkId": "1", "type": "group", "text": "G", "item": [{"linkId": "1.1", "type": "choice", "text": "Q"}]}
    ]

    response = editor.post_fhir("/fhir/R4/Questionnaire", resource)

    assert [issue["expression"] for issue in response.json()["issue"]] == [
        ["Questionnaire.item[0].item[0].answerOption"]
    ]


def test_everything_includes_the_patients_responses(reader, answered, patient):
    body = reader.get_fhir(f"/fhir/R4/Patient/{patient.uuid}/$everything").json()

    assert body["total"] == 2
    assert body["entry"][1]["fullUrl"] == f"http://testserver/fhir/R4/QuestionnaireResponse/{answered.uuid}"
    assert body["entry"][1]["resource"]["questionnaire"] == f"{URL}|1"


def test_a_posted_questionnaire_is_stored_raw_with_its_outcome_and_can_be_reprocessed(emr):
    from integrations.fhir.services import fhir_reprocess
    from integrations.models import InboundMessage

    refused = emr.post_fhir("/fhir/R4/Questionnaire", fhir_questionnaire(item=[{"linkId": "a", "type": "boolean"}]))
    taken = emr.post_fhir("/fhir/R4/Questionnaire", fhir_questionnaire())

    rejected, applied = InboundMessage.objects.order_by("pk")
    assert (refused.status_code, taken.status_code) == (400, 201)
    assert (rejected.status, rejected.message_type, rejected.error_location) == (
        "rejected",
        "Questionnaire/create",
        "Questionnaire.item[0].text",
    )
    assert (applied.status, json.loads(bytes(applied.raw))) == ("applied", fhir_questionnaire())

    again = fhir_reprocess(message=applied)

    assert again.status == 201
    assert QuestionnaireVersion.objects.count() == 1


def test_a_department_head_cannot_import_over_another_departments_questionnaire(editor, acupuncture):
    theirs = questionnaire_save(
        actor=None, data={"code": "phq2", "title": "PHQ-2", "purpose": "clinical", "departments": [acupuncture]}
    )

    response = editor.post_fhir("/fhir/R4/Questionnaire", fhir_questionnaire())

    assert response.status_code == 403
    assert response.json()["issue"][0]["code"] == "forbidden"
    assert theirs.versions.count() == 0


def test_a_department_heads_new_questionnaire_is_meant_for_their_departments(editor):
    editor.post_fhir("/fhir/R4/Questionnaire", fhir_questionnaire())

    assert list(Questionnaire.objects.get().departments.values_list("code", flat=True)) == ["NK"]
