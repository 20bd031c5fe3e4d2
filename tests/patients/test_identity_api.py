"""The duplicate review API: who may list, resolve and undo, what they see, and what a refusal leaves."""

from __future__ import annotations

import datetime as dt

import pytest

from hcrm.models import AuditEntry
from patients.models import MatchCandidate, Patient, PatientMerge
from patients.services.identity import patients_merge
from tests.factories import EncounterFactory, PatientFactory, UserFactory

pytestmark = pytest.mark.django_db

BORN = dt.date(1975, 6, 1)


@pytest.fixture
def pair(internal_medicine):
    first = PatientFactory(name="张伟", birth_date=BORN, departments=[internal_medicine])
    second = PatientFactory(name="张伟", birth_date=BORN, departments=[internal_medicine])
    EncounterFactory(patient=first, department=internal_medicine)
    candidate = MatchCandidate.objects.create(patient_a=first, patient_b=second, reason="name_birth", score=85)
    return first, second, candidate


@pytest.fixture
def other_head(acupuncture):
    return UserFactory(username="head_zj", roles=["department_head"], departments=[acupuncture])


def _resolve(api, candidate, **body):
    return api.post(f"/api/v1/match-candidates/{candidate.uuid}/resolve/", body, format="json")


def test_anonymous_callers_are_refused_and_nothing_changes(api, pair):
    first, second, candidate = pair

    assert api.get("/api/v1/match-candidates/").status_code == 401
    assert _resolve(api, candidate, decision="merge", survivor=str(second.uuid)).status_code == 401

    candidate.refresh_from_db()
    assert (candidate.status, Patient.objects.get(pk=first.pk).merged_into) == ("open", None)


@pytest.mark.parametrize("role", ["doctor", "nurse", "agent", "analyst"])
def test_roles_without_the_permission_are_refused_and_nothing_changes(api, staff, pair, role):
    first, second, candidate = pair
    api.as_user(staff[role])

    assert api.get("/api/v1/match-candidates/").status_code == 403
    assert _resolve(api, candidate, decision="merge", survivor=str(second.uuid)).status_code == 403
    assert api.get("/api/v1/patient-merges/").status_code == 403

    candidate.refresh_from_db()
    assert (candidate.status, PatientMerge.objects.count()) == ("open", 0)
    assert Patient.objects.get(pk=first.pk).merged_into is None


def test_a_head_of_another_department_neither_sees_nor_resolves_the_pair(api, pair, other_head):
    first, second, candidate = pair
    api.as_user(other_head)

    assert api.get("/api/v1/match-candidates/").json()["results"] == []
    response = _resolve(api, candidate, decision="different")

    assert response.status_code == 404
    candidate.refresh_from_db()
    assert candidate.status == "open"


def test_a_department_head_lists_open_pairs_with_sensitive_fields_masked(api, staff, pair):
    first, second, candidate = pair

    response = api.as_user(staff["department_head"]).get("/api/v1/match-candidates/")

    assert response.status_code == 200
    [row] = response.json()["results"]
    assert (row["id"], row["reason"], row["score"], row["status"]) == (str(candidate.uuid), "name_birth", 85, "open")
    assert row["patient_a"]["id"] == str(first.uuid)
    assert row["patient_a"]["national_id"] == first.national_id[:6] + "********" + first.national_id[-4:]
    entry = AuditEntry.objects.filter(event="list").latest("timestamp")
    assert entry.actor == staff["department_head"]
    assert entry.additional_data["patients"] == [str(first.uuid), str(second.uuid)]


def test_an_administrator_sees_national_ids_in_full(api, staff, pair):
    first, _second, _candidate = pair

    row = api.as_user(staff["administrator"]).get("/api/v1/match-candidates/").json()["results"][0]

    assert row["patient_a"]["national_id"] == first.national_id


# token and user, user and group permissions, the user's departments, their reveals, the page, the audit entry
CANDIDATE_LIST_QUERIES = 7


@pytest.mark.parametrize("pairs", [1, 9])
def test_listing_pins_its_query_count(api, staff, internal_medicine, django_assert_num_queries, pairs):
    from django.contrib.contenttypes.models import ContentType

    ContentType.objects.get_for_model(AuditEntry)
    for _index in range(pairs):
        a, b = PatientFactory(departments=[internal_medicine]), PatientFactory(departments=[internal_medicine])
        MatchCandidate.objects.create(patient_a=a, patient_b=b, reason="name_birth", score=85)
    api.as_user(staff["department_head"])

    with django_assert_num_queries(CANDIDATE_LIST_QUERIES):
        response = api.get("/api/v1/match-candidates/")

    assert len(response.json()["results"]) == pairs


def test_merging_a_pair_moves_the_records_and_settles_the_candidate(api, staff, pair):
    first, second, candidate = pair

    response = api.as_user(staff["department_head"]).post(
        f"/api/v1/match-candidates/{candidate.uuid}/resolve/",
        {"decision": "merge", "survivor": str(second.uuid), "reason": "同一人"},
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["decided_by"]) == ("merged", "department_head")
    merge = PatientMerge.objects.get()
    assert body["merge"] == str(merge.uuid)
    assert (merge.survivor, merge.prior, merge.reason) == (second, first, "同一人")
    assert second.encounters.count() == 1


def test_a_merge_needs_a_survivor_of_the_pair(api, staff, pair):
    _first, _second, candidate = pair
    outsider = PatientFactory()
    api.as_user(staff["administrator"])

    missing = _resolve(api, candidate, decision="merge")
    wrong = _resolve(api, candidate, decision="merge", survivor=str(outsider.uuid))

    assert (missing.status_code, missing.json()["errors"][0]["field"]) == (400, "survivor")
    assert (wrong.status_code, wrong.json()["errors"][0]["field"]) == (400, "survivor")
    assert PatientMerge.objects.count() == 0


def test_marking_different_people_twice_is_refused(api, staff, pair):
    _first, _second, candidate = pair
    api.as_user(staff["administrator"])

    assert _resolve(api, candidate, decision="different").status_code == 200
    again = _resolve(api, candidate, decision="different")

    assert again.status_code == 400
    assert again.json()["errors"] == [
        {"field": None, "code": "decided", "message": "This pair has already been decided."}
    ]


def test_decided_pairs_are_listed_on_request(api, staff, pair):
    first, second, candidate = pair
    api.as_user(staff["department_head"])
    _resolve(api, candidate, decision="merge", survivor=str(second.uuid))

    assert api.get("/api/v1/match-candidates/").json()["results"] == []
    merged = api.get("/api/v1/match-candidates/?status=merged").json()["results"]
    assert [row["id"] for row in merged] == [str(candidate.uuid)]
    assert api.get("/api/v1/match-candidates/?status=bogus").status_code == 400


def test_the_merge_history_lists_and_undoes(api, staff, pair):
    first, second, candidate = pair
    merge = patients_merge(survivor=second, prior=first, reason="A40")
    api.as_user(staff["department_head"])

    rows = api.get("/api/v1/patient-merges/").json()["results"]
    response = api.post(f"/api/v1/patient-merges/{merge.uuid}/undo/")

    # the shared department link stays with the merged record; the encounter moves
    assert [(row["id"], row["moved"], row["reason"]) for row in rows] == [
        (str(merge.uuid), {"patients.encounter": 1}, "A40")
    ]
    assert response.status_code == 200
    assert response.json()["undone_by"] == "department_head"
    assert Patient.objects.get(pk=first.pk).merged_into is None
    assert first.encounters.count() == 1


def test_undo_is_refused_to_roles_without_the_permission_and_changes_nothing(api, staff, pair):
    first, second, _candidate = pair
    merge = patients_merge(survivor=second, prior=first)

    response = api.as_user(staff["doctor"]).post(f"/api/v1/patient-merges/{merge.uuid}/undo/")

    assert response.status_code == 403
    merge.refresh_from_db()
    assert (merge.undone_at, Patient.objects.get(pk=first.pk).merged_into) == (None, second)


def test_an_undone_merge_cannot_be_undone_again(api, staff, pair):
    first, second, _candidate = pair
    merge = patients_merge(survivor=second, prior=first)
    api.as_user(staff["administrator"])
    api.post(f"/api/v1/patient-merges/{merge.uuid}/undo/")

    again = api.post(f"/api/v1/patient-merges/{merge.uuid}/undo/")

    assert (again.status_code, again.json()["errors"][0]["code"]) == (400, "undone")
