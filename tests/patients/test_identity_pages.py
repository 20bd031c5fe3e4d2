"""Console pages of the duplicate review: queue, comparison, decisions, merge history and undo."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from patients.models import MatchCandidate, Patient, PatientMerge
from patients.services.identity import patients_merge
from tests.factories import EncounterFactory, PatientFactory

pytestmark = pytest.mark.django_db

BORN = dt.date(1975, 6, 1)


@pytest.fixture
def pair(internal_medicine):
    first = PatientFactory(name="张伟", birth_date=BORN, departments=[internal_medicine])
    second = PatientFactory(name="张伟", birth_date=BORN, mobile="+8613911112222", departments=[internal_medicine])
    EncounterFactory(patient=first, department=internal_medicine)
    candidate = MatchCandidate.objects.create(patient_a=first, patient_b=second, reason="name_birth", score=85)
    return first, second, candidate


def test_the_queue_is_in_the_navigation_only_for_reviewers(client, staff):
    client.force_login(staff["department_head"])
    assert "/patients/identity/" in client.get("/").content.decode()
    client.force_login(staff["doctor"])
    assert "/patients/identity/" not in client.get("/").content.decode()


def test_the_queue_lists_open_pairs_with_national_ids_masked(client, staff, pair):
    first, second, candidate = pair
    client.force_login(staff["department_head"])

    page = client.get("/patients/identity/").content.decode()

    assert f"/patients/identity/{candidate.uuid}/" in page
    assert first.national_id not in page
    assert first.national_id[:6] + "********" + first.national_id[-4:] in page
    assert "Same name and birth date" in page


@pytest.mark.parametrize("url", ["/patients/identity/", "/patients/identity/merges/"])
def test_roles_without_the_permission_get_403(client, staff, pair, url):
    client.force_login(staff["doctor"])

    assert client.get(url).status_code == 403


def test_the_comparison_shows_both_records_side_by_side(client, staff, pair):
    first, second, candidate = pair
    client.force_login(staff["administrator"])

    page = client.get(f"/patients/identity/{candidate.uuid}/").content.decode()

    assert first.mrn in page and second.mrn in page
    assert first.national_id in page  # administrators see it in full
    assert "138 0000" not in page
    assert 'name="decision" value="merge"' in page
    assert f'value="{first.uuid}" checked' in page  # the first registered survives by default


def test_merging_from_the_console_needs_the_csrf_token(staff, pair):
    first, second, candidate = pair
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff["administrator"])

    response = client.post(
        f"/patients/identity/{candidate.uuid}/resolve/", {"decision": "merge", "survivor": str(first.uuid)}
    )

    assert response.status_code == 403
    assert PatientMerge.objects.count() == 0


def test_merging_from_the_console(client, staff, pair):
    first, second, candidate = pair
    client.force_login(staff["department_head"])

    response = client.post(
        f"/patients/identity/{candidate.uuid}/resolve/",
        {"decision": "merge", "survivor": str(second.uuid), "reason": "同一人"},
        follow=True,
    )

    assert response.redirect_chain == [("/patients/identity/", 302)]
    assert f"{first.mrn} was merged into {second.mrn}" in response.content.decode()
    merge = PatientMerge.objects.get()
    assert (merge.survivor, merge.prior, merge.actor, merge.reason) == (
        second,
        first,
        staff["department_head"],
        "同一人",
    )
    assert second.encounters.count() == 1


def test_marking_different_people_from_the_console(client, staff, pair):
    _first, _second, candidate = pair
    client.force_login(staff["administrator"])

    client.post(f"/patients/identity/{candidate.uuid}/resolve/", {"decision": "different"})

    candidate.refresh_from_db()
    assert (candidate.status, candidate.decided_by) == ("different", staff["administrator"])
    assert f"/patients/identity/{candidate.uuid}/" not in client.get("/patients/identity/").content.decode()


def test_a_doctor_cannot_post_a_decision(client, staff, pair):
    first, _second, candidate = pair
    client.force_login(staff["doctor"])

    response = client.post(
        f"/patients/identity/{candidate.uuid}/resolve/", {"decision": "merge", "survivor": str(first.uuid)}
    )

    assert response.status_code == 403
    candidate.refresh_from_db()
    assert candidate.status == "open"


def test_the_merge_history_undoes_a_merge(client, staff, pair):
    first, second, _candidate = pair
    merge = patients_merge(survivor=second, prior=first, reason="A40")
    client.force_login(staff["administrator"])

    history = client.get("/patients/identity/merges/").content.decode()
    response = client.post(f"/patients/identity/merges/{merge.uuid}/undo/", follow=True)

    assert f"/patients/identity/merges/{merge.uuid}/undo/" in history
    assert "The merge was undone" in response.content.decode()
    assert Patient.objects.get(pk=first.pk).merged_into is None
    assert first.encounters.count() == 1
    assert f"/patients/identity/merges/{merge.uuid}/undo/" not in response.content.decode()
