"""/api/v1/questionnaires/, questionnaire-versions/ and questionnaire-responses/: permissions, filters, scoping."""

from __future__ import annotations

import pytest

from followups.models import QuestionnaireResponse
from followups.services import questionnaire_save, questionnaire_version_save, response_save
from hcrm.models import AuditEntry
from tests.factories import PatientFactory
from tests.followups import samples

pytestmark = pytest.mark.django_db


@pytest.fixture
def questionnaire(internal_medicine):
    questionnaire = questionnaire_save(
        actor=None,
        data={
            "code": "post-discharge",
            "title": "出院随访",
            "purpose": "clinical",
            "status": "active",
            "departments": [internal_medicine],
        },
    )
    questionnaire_version_save(
        actor=None, questionnaire=questionnaire, items=samples.items(), scoring=samples.scoring()
    )
    return questionnaire


@pytest.fixture
def catalogue(questionnaire, acupuncture):
    """Besides post-discharge (internal medicine): satisfaction for every department, acupuncture's draft."""
    everyone = questionnaire_save(
        actor=None, data={"code": "satisfaction", "title": "满意度", "purpose": "satisfaction", "status": "active"}
    )
    acupuncture_only = questionnaire_save(
        actor=None,
        data={"code": "needling", "title": "针刺反应", "purpose": "clinical", "departments": [acupuncture]},
    )
    return {"post-discharge": questionnaire, "satisfaction": everyone, "needling": acupuncture_only}


@pytest.fixture
def answered(questionnaire, patient):
    return response_save(
        version=questionnaire.current_version, patient=patient, answers={"pain": False}, source="phone", complete=True
    )


def codes(response) -> list[str]:
    return [row["code"] for row in response.json()["results"]]


# --- Questionnaires -------------------------------------------------------------------------------------


def test_questionnaires_are_listed_with_filters(api, staff, catalogue):
    client = api.as_user(staff["doctor"])

    everything = client.get("/api/v1/questionnaires/")
    clinical = client.get("/api/v1/questionnaires/?purpose=clinical")
    internal = client.get("/api/v1/questionnaires/?department=NK")
    active = client.get("/api/v1/questionnaires/?status=active&department=ZJ")

    assert everything.status_code == 200
    assert codes(everything) == ["post-discharge", "satisfaction", "needling"]
    assert codes(clinical) == ["post-discharge", "needling"]
    assert codes(internal) == ["post-discharge", "satisfaction"]
    assert codes(active) == ["satisfaction"]


def test_a_questionnaire_is_retrieved_with_its_current_version(api, staff, questionnaire):
    response = api.as_user(staff["nurse"]).get(f"/api/v1/questionnaires/{questionnaire.uuid}/")

    body = response.json()
    assert response.status_code == 200
    assert {key: body[key] for key in ("code", "title", "purpose", "status", "departments", "current_version")} == {
        "code": "post-discharge",
        "title": "出院随访",
        "purpose": "clinical",
        "status": "active",
        "departments": ["NK"],
        "current_version": {"id": str(questionnaire.current_version.uuid), "number": 1},
    }


def test_questionnaires_need_a_role_that_reads_them(api, staff, questionnaire):
    anonymous = api.get("/api/v1/questionnaires/")
    analyst = api.as_user(staff["analyst"]).get("/api/v1/questionnaires/")

    assert (anonymous.status_code, analyst.status_code) == (401, 403)


def test_listing_questionnaires_takes_a_fixed_number_of_queries(api, staff, catalogue, django_assert_num_queries):
    client = api.as_user(staff["doctor"])
    client.get("/api/v1/questionnaires/")

    with django_assert_num_queries(5):
        response = client.get("/api/v1/questionnaires/")

    assert len(response.json()["results"]) == 3


def test_versions_are_listed_per_questionnaire(api, staff, questionnaire, answered):
    second = questionnaire_version_save(actor=None, questionnaire=questionnaire, items=samples.items(), scoring={})

    response = api.as_user(staff["doctor"]).get(f"/api/v1/questionnaire-versions/?questionnaire={questionnaire.uuid}")

    assert [(row["number"], row["is_current"]) for row in response.json()["results"]] == [(2, True), (1, False)]
    assert response.json()["results"][0]["id"] == str(second.uuid)
    assert response.json()["results"][1]["items"] == samples.ITEMS


# --- Responses ------------------------------------------------------------------------------------------


def test_responses_are_listed_for_the_patients_the_caller_may_see(api, staff, answered, questionnaire, acupuncture):
    stranger = PatientFactory(departments=[acupuncture])
    response_save(
        version=questionnaire.current_version, patient=stranger, answers={"pain": False}, source="sms", complete=True
    )

    mine = api.as_user(staff["doctor"]).get("/api/v1/questionnaire-responses/")
    theirs = api.as_user(staff["other_doctor"]).get("/api/v1/questionnaire-responses/")

    assert [row["id"] for row in mine.json()["results"]] == [str(answered.uuid)]
    assert [row["patient"] for row in theirs.json()["results"]] == [str(stranger.uuid)]


def test_a_response_is_retrieved_and_the_read_is_audited(api, staff, answered, patient):
    response = api.as_user(staff["nurse"]).get(f"/api/v1/questionnaire-responses/{answered.uuid}/")

    body = response.json()
    assert response.status_code == 200
    assert {key: body[key] for key in ("questionnaire", "version_number", "patient", "status", "answers")} == {
        "questionnaire": "post-discharge",
        "version_number": 1,
        "patient": str(patient.uuid),
        "status": "completed",
        "answers": {"pain": False},
    }
    entry = AuditEntry.objects.get(event="view")
    assert (entry.actor, entry.patient_uuid) == (staff["nurse"], patient.uuid)


def test_a_response_of_another_department_is_not_found(api, staff, answered):
    response = api.as_user(staff["other_doctor"]).get(f"/api/v1/questionnaire-responses/{answered.uuid}/")

    assert response.status_code == 404


def test_listing_responses_takes_a_fixed_number_of_queries(
    api, staff, questionnaire, patient, django_assert_num_queries
):
    for _index in range(3):
        response_save(
            version=questionnaire.current_version,
            patient=patient,
            answers={"pain": False},
            source="phone",
            complete=True,
        )
    client = api.as_user(staff["doctor"])
    client.get("/api/v1/questionnaire-responses/")

    with django_assert_num_queries(7):
        response = client.get("/api/v1/questionnaire-responses/")

    assert len(response.json()["results"]) == 3


def test_recording_a_response_scores_it(api, staff, questionnaire, patient):
    response = api.as_user(staff["nurse"]).post(
        "/api/v1/questionnaire-responses/",
        {
            "version": str(questionnaire.current_version.uuid),
            "patient": str(patient.uuid),
            "answers": {"pain": True, "pain_level": 6, "sleep": "fair"},
            "source": "phone",
        },
        format="json",
    )

    body = response.json()
    saved = QuestionnaireResponse.objects.get()
    assert response.status_code == 201
    assert body["id"] == str(saved.uuid)
    assert body["scores"]["burden"] == {
        "value": 8.0,
        "raw": 8.0,
        "answered": 2,
        "band": "重",
        "band_en": "",
        "flag": "alert",
    }
    assert (saved.answered_by, saved.status) == (staff["nurse"], "completed")


def test_refused_answers_are_named_by_linkid(api, staff, questionnaire, patient):
    response = api.as_user(staff["nurse"]).post(
        "/api/v1/questionnaire-responses/",
        {"version": str(questionnaire.current_version.uuid), "patient": str(patient.uuid), "answers": {"pain": True}},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {
        "errors": [{"field": "pain_level", "code": "required", "message": "This question needs an answer."}]
    }
    assert QuestionnaireResponse.objects.count() == 0


@pytest.mark.parametrize(
    ("who", "expected"),
    [("anonymous", 401), ("analyst", 403), ("other_doctor", 400), ("doctor", 201)],
)
def test_recording_a_response_permission_matrix(api, staff, questionnaire, patient, who, expected):
    client = api if who == "anonymous" else api.as_user(staff[who])

    response = client.post(
        "/api/v1/questionnaire-responses/",
        {
            "version": str(questionnaire.current_version.uuid),
            "patient": str(patient.uuid),
            "answers": {"pain": False},
        },
        format="json",
    )

    assert response.status_code == expected
    assert QuestionnaireResponse.objects.count() == (1 if expected == 201 else 0)
    if who == "other_doctor":
        assert response.json()["errors"][0]["field"] == "patient"


@pytest.mark.parametrize(
    ("who", "listed", "retrieved"),
    [("anonymous", 401, 401), ("analyst", 403, 403), ("other_doctor", 200, 404), ("nurse", 200, 200)],
)
def test_reading_responses_permission_matrix(api, staff, answered, who, listed, retrieved):
    client = api if who == "anonymous" else api.as_user(staff[who])

    listing = client.get("/api/v1/questionnaire-responses/")
    one = client.get(f"/api/v1/questionnaire-responses/{answered.uuid}/")

    assert (listing.status_code, one.status_code) == (listed, retrieved)
    if listed == 200:
        expected = [str(answered.uuid)] if retrieved == 200 else []
        assert [row["id"] for row in listing.json()["results"]] == expected


@pytest.mark.parametrize(("who", "expected"), [("anonymous", 401), ("analyst", 403), ("agent", 200), ("doctor", 200)])
def test_reading_versions_permission_matrix(api, staff, questionnaire, who, expected):
    client = api if who == "anonymous" else api.as_user(staff[who])

    response = client.get(f"/api/v1/questionnaire-versions/{questionnaire.current_version.uuid}/")

    assert response.status_code == expected


def test_listing_versions_takes_a_fixed_number_of_queries(api, staff, catalogue, django_assert_num_queries):
    for code in ("satisfaction", "needling"):
        questionnaire_version_save(actor=None, questionnaire=catalogue[code], items=samples.items(), scoring={})
    client = api.as_user(staff["doctor"])
    client.get("/api/v1/questionnaire-versions/")

    with django_assert_num_queries(4):
        response = client.get("/api/v1/questionnaire-versions/")

    assert len(response.json()["results"]) == 3
