"""Worklist, plan and scheduling pages: buckets and counts, claim, reassign, permissions, query counts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from followups.models import FollowUpPlan, FollowUpTask
from hcrm.models import AuditEntry
from hcrm.roles import Role
from tests.factories import PatientFactory, SegmentFactory, UserFactory
from tests.followups.factories import plan, questionnaire, task

pytestmark = pytest.mark.django_db

# Sessions are read from the database on every request unless they are cached (with Redis).
SESSION_QUERIES = 0 if settings.SESSION_ENGINE.endswith("cached_db") else 1


def _signed_in(client, user):
    client.force_login(user)
    return client


def _day(offset: int) -> dt.date:
    return timezone.localdate() + dt.timedelta(days=offset)


@pytest.fixture
def tasks(patient, internal_medicine, acupuncture, staff):
    """Nurses' pool of internal medicine: one overdue, two due today (phone, SMS), one upcoming; plus others'."""
    return {
        "overdue": task(patient=patient, department=internal_medicine, due_date=_day(-2)),
        "today": task(patient=patient, department=internal_medicine, due_date=_day(0), offset_days=1),
        "today_sms": task(
            patient=patient, department=internal_medicine, due_date=_day(0), channel="sms", offset_days=2
        ),
        "upcoming": task(patient=patient, department=internal_medicine, due_date=_day(5), offset_days=3),
        "doctors": task(
            patient=patient, department=internal_medicine, due_date=_day(0), assignee_role="doctor", offset_days=4
        ),
        "elsewhere": task(patient=PatientFactory(), department=acupuncture, due_date=_day(0), offset_days=5),
        "done": task(
            patient=patient, department=internal_medicine, due_date=_day(0), status="completed", offset_days=6
        ),
    }


# --- My worklist ------------------------------------------------------------------------------------


def test_the_worklist_needs_a_signed_in_user_with_access_to_follow_ups(client, staff):
    anonymous = client.get("/followups/")
    analyst = _signed_in(client, staff["analyst"]).get("/followups/")

    assert (anonymous.status_code, anonymous["Location"]) == (302, "/login/?next=/followups/")
    assert analyst.status_code == 403


def test_a_nurse_sees_her_pool_due_today_with_counts_by_bucket_and_channel(client, staff, tasks):
    response = _signed_in(client, staff["nurse"]).get("/followups/")

    assert response.status_code == 200
    assert [row.pk for row in response.context["tasks"]] == [tasks["today"].pk, tasks["today_sms"].pk]
    assert [(key, count) for key, _label, count in response.context["buckets"]] == [
        ("overdue", 1),
        ("today", 2),
        ("upcoming", 1),
    ]
    assert [(value, count) for value, _label, count in response.context["channels"]] == [
        ("phone", 1),
        ("sms", 1),
        ("email", 0),
        ("letter", 0),
    ]
    assert f'action="/followups/tasks/{tasks["today"].uuid}/claim/"' in response.content.decode()


def test_the_worklist_filters_by_bucket_and_channel(client, staff, tasks):
    client = _signed_in(client, staff["nurse"])

    overdue = client.get("/followups/", {"when": "overdue"})
    sms_today = client.get("/followups/", {"when": "today", "channel": "sms"})
    bad = client.get("/followups/", {"when": "someday"})

    assert [row.pk for row in overdue.context["tasks"]] == [tasks["overdue"].pk]
    assert [row.pk for row in sms_today.context["tasks"]] == [tasks["today_sms"].pk]
    assert bad.status_code == 400


def test_a_doctor_sees_the_tasks_given_to_him_and_his_role_s(client, staff, tasks, patient):
    mine = task(patient=patient, assignee=staff["doctor"], assignee_role="", due_date=_day(0), offset_days=9)

    response = _signed_in(client, staff["doctor"]).get("/followups/")

    assert [row.pk for row in response.context["tasks"]] == [tasks["doctors"].pk, mine.pk]


def test_a_task_of_her_pool_she_claimed_is_listed_and_counted_once_beside_one_claimed_elsewhere(client, staff, tasks):
    nurse = staff["nurse"]
    FollowUpTask.objects.filter(pk__in=[tasks["today"].pk, tasks["elsewhere"].pk]).update(
        status="claimed", claimed_by=nurse
    )

    response = _signed_in(client, nurse).get("/followups/")

    assert [row.pk for row in response.context["tasks"]] == [
        tasks["today"].pk,
        tasks["today_sms"].pk,
        tasks["elsewhere"].pk,
    ]
    assert [(key, count) for key, _label, count in response.context["buckets"]] == [
        ("overdue", 1),
        ("today", 3),
        ("upcoming", 1),
    ]


def test_the_worklist_pages_through_a_bucket_merging_the_pool_and_her_own_tasks(
    client, staff, patient, internal_medicine, monkeypatch
):
    monkeypatch.setattr("followups.views.worklists.WORKLIST_LIMIT", 2)
    monkeypatch.setattr("followups.selectors.WORKLIST_LIMIT", 2)
    nurse = staff["nurse"]
    pooled = [
        task(patient=patient, department=internal_medicine, due_date=_day(0), offset_days=offset) for offset in range(3)
    ]
    own = task(patient=patient, assignee=nurse, assignee_role="", due_date=_day(0), offset_days=9)
    client = _signed_in(client, nurse)

    first = client.get("/followups/", {"when": "today"})
    second = client.get("/followups/", {"when": "today", "page": 2})
    too_far = client.get("/followups/", {"when": "today", "page": 51})

    assert [row.pk for row in first.context["tasks"]] == [pooled[0].pk, pooled[1].pk]
    assert [row.pk for row in second.context["tasks"]] == [pooled[2].pk, own.pk]
    assert (first.context["page"].has_next, second.context["page"].has_next) == (True, False)
    assert 'href="?when=today&amp;page=2"' in first.content.decode()
    assert too_far.status_code == 400


@pytest.mark.parametrize("rows", [2, 12])
def test_the_worklist_query_count_does_not_grow_with_rows(
    client, staff, patient, internal_medicine, django_assert_num_queries, rows
):
    for offset in range(rows):
        task(patient=PatientFactory(), department=internal_medicine, due_date=_day(0), offset_days=offset)
    client = _signed_in(client, staff["nurse"])
    ContentType.objects.get_for_model(AuditEntry)  # cached per process; the first page of a run would load it

    # The session (unless Redis holds it), user, permissions (2), roles, departments; alerts waiting; counts and
    # keys of the pool and of the tasks given to or claimed by the nurse (2 each), the page's rows, audit entry.
    with django_assert_num_queries(12 + SESSION_QUERIES):
        response = client.get("/followups/")

    assert len(response.context["tasks"]) == rows


# --- The department's worklist ----------------------------------------------------------------------


def test_the_department_worklist_is_for_department_heads_of_their_own_departments(client, staff, tasks):
    nurse = _signed_in(client, staff["nurse"]).get("/followups/department/")
    head = _signed_in(client, staff["department_head"])
    own = head.get("/followups/department/", {"when": "today"})
    other = head.get("/followups/department/", {"department": "ZJ"})

    assert (nurse.status_code, own.status_code, other.status_code) == (403, 200, 404)
    assert [row.pk for row in own.context["tasks"]] == [tasks["today"].pk, tasks["today_sms"].pk, tasks["doctors"].pk]
    assert [(key, count) for key, _label, count in own.context["buckets"]] == [
        ("overdue", 1),
        ("today", 3),
        ("upcoming", 1),
    ]


def test_an_administrator_reads_any_department(client, staff, tasks):
    response = _signed_in(client, staff["administrator"]).get("/followups/department/", {"department": "ZJ"})

    assert [row.pk for row in response.context["tasks"]] == [tasks["elsewhere"].pk]


# --- Claim ------------------------------------------------------------------------------------------


def test_a_nurse_claims_a_task_and_a_second_claim_changes_nothing(client, staff, tasks, internal_medicine):
    target = tasks["today"]
    colleague = UserFactory(roles=[Role.NURSE], departments=[internal_medicine])

    first = _signed_in(client, staff["nurse"]).post(f"/followups/tasks/{target.uuid}/claim/", {"next": "/followups/"})
    second = _signed_in(client, colleague).post(f"/followups/tasks/{target.uuid}/claim/")

    target.refresh_from_db()
    assert (first.status_code, first["Location"], second.status_code) == (302, "/followups/", 302)
    assert (target.status, target.claimed_by) == ("claimed", staff["nurse"])


def test_claiming_the_task_of_a_patient_who_died_closes_it_with_the_reason(client, staff, tasks, patient):
    target = tasks["today"]
    patient.is_deceased = True
    patient.save()

    response = _signed_in(client, staff["nurse"]).post(f"/followups/tasks/{target.uuid}/claim/", follow=True)

    target.refresh_from_db()
    assert (target.status, target.closed_reason) == ("closed", "deceased")
    assert [str(message) for message in response.context["messages"]] == [
        "The task was closed instead: Patient deceased."
    ]


def test_claims_by_anonymous_wrong_role_and_other_department_change_nothing(client, staff, tasks):
    target = tasks["today"]
    url = f"/followups/tasks/{target.uuid}/claim/"

    anonymous = client.post(url)
    analyst = _signed_in(client, staff["analyst"]).post(url)
    other = _signed_in(client, staff["other_doctor"]).post(url)

    target.refresh_from_db()
    assert (anonymous.status_code, analyst.status_code, other.status_code) == (302, 403, 404)
    assert (target.status, target.claimed_by) == ("pending", None)


def test_a_claim_may_not_send_the_browser_elsewhere(client, staff, tasks):
    response = _signed_in(client, staff["nurse"]).post(
        f"/followups/tasks/{tasks['today'].uuid}/claim/", {"next": "https://evil.example/"}
    )

    assert response["Location"] == "/followups/"


# --- Reassign ---------------------------------------------------------------------------------------


def test_a_department_head_reassigns_to_a_colleague(client, staff, tasks):
    target = tasks["today"]

    response = _signed_in(client, staff["department_head"]).post(
        f"/followups/tasks/{target.uuid}/reassign/", {"assignee": str(staff["doctor"].uuid)}
    )

    target.refresh_from_db()
    assert (response.status_code, response["Location"]) == (302, "/followups/department/?department=NK")
    assert target.assignee == staff["doctor"]


def test_reassigning_outside_the_department_or_without_the_right_changes_nothing(client, staff, tasks):
    target = tasks["today"]
    url = f"/followups/tasks/{target.uuid}/reassign/"

    anonymous = client.post(url, {"assignee": str(staff["doctor"].uuid)})
    nurse = _signed_in(client, staff["nurse"]).post(url, {"assignee": str(staff["doctor"].uuid)})
    to_stranger = _signed_in(client, staff["department_head"]).post(url, {"assignee": str(staff["other_doctor"].uuid)})
    other_head = UserFactory(roles=[Role.DEPARTMENT_HEAD], departments=[staff["other_doctor"].departments.get()])
    foreign = _signed_in(client, other_head).post(url, {"assignee": str(staff["doctor"].uuid)})

    target.refresh_from_db()
    assert (anonymous.status_code, nurse.status_code, to_stranger.status_code, foreign.status_code) == (
        302,
        403,
        400,
        404,
    )
    assert target.assignee is None


@pytest.mark.parametrize("rows", [2, 12])
def test_the_department_worklist_query_count_does_not_grow_with_rows(
    client, staff, internal_medicine, django_assert_num_queries, rows
):
    for offset in range(rows):
        task(patient=PatientFactory(), department=internal_medicine, due_date=_day(0), offset_days=offset)
    client = _signed_in(client, staff["department_head"])
    ContentType.objects.get_for_model(AuditEntry)

    # As my worklist (alerts waiting included), and the departments the head leads.
    with django_assert_num_queries(10 + SESSION_QUERIES):
        response = client.get("/followups/department/")

    assert len(response.context["tasks"]) == rows


def test_the_reassign_page_offers_the_colleagues_of_the_task_s_department(client, staff, tasks):
    response = _signed_in(client, staff["department_head"]).get(f"/followups/tasks/{tasks['today'].uuid}/reassign/")

    assert response.status_code == 200
    assert list(response.context["form"].fields["assignee"].queryset) == sorted(
        [staff[role] for role in Role.values], key=lambda user: (user.full_name, user.username)
    )


# --- Plans ------------------------------------------------------------------------------------------


def _plan_post(questionnaire, department=None, **fields) -> dict:
    return {
        "name": "出院随访",
        "active": "on",
        "trigger": "discharge",
        "department": department.code if department else "",
        "offsets": "7, 3，30",
        "questionnaire": str(questionnaire.uuid),
        "channel": "phone",
        "assignee_kind": "role",
        "assignee_role": "nurse",
        "retry_attempts": 3,
        "retry_spacing_hours": 24,
        **fields,
    }


def test_plans_are_listed_for_staff_who_work_follow_ups(client, staff, internal_medicine):
    plan(department=internal_medicine)

    analyst = _signed_in(client, staff["analyst"]).get("/followups/plans/")
    nurse = _signed_in(client, staff["nurse"]).get("/followups/plans/")

    assert (analyst.status_code, nurse.status_code) == (403, 200)
    assert [(row.name, editable) for row, editable in nurse.context["rows"]] == [("出院随访", False)]


@pytest.mark.parametrize("rows", [2, 12])
def test_the_plan_list_query_count_does_not_grow_with_rows(
    client, staff, internal_medicine, django_assert_num_queries, rows
):
    form = questionnaire()
    segment = SegmentFactory()
    for index in range(rows):
        plan(name=f"计划{index}", department=internal_medicine, questionnaire=form, trigger="segment", segment=segment)
    client = _signed_in(client, staff["department_head"])

    # User, permissions (2), roles, departments, the plans with their departments, questionnaires, segments.
    with django_assert_num_queries(6 + SESSION_QUERIES):
        response = client.get("/followups/plans/")

    assert [editable for _plan, editable in response.context["rows"]] == [True] * rows


def test_a_department_head_creates_a_plan_for_the_department(client, staff, internal_medicine):
    form = questionnaire()

    response = _signed_in(client, staff["department_head"]).post(
        "/followups/plans/new/", _plan_post(form, internal_medicine)
    )

    created = FollowUpPlan.objects.get()
    assert response.status_code == 302
    assert (created.offsets, created.department, created.created_by) == (
        [3, 7, 30],
        internal_medicine,
        staff["department_head"],
    )


def test_a_plan_form_names_the_fields_the_service_refuses(client, staff, internal_medicine):
    form = questionnaire()

    response = _signed_in(client, staff["department_head"]).post(
        "/followups/plans/new/", _plan_post(form, internal_medicine, trigger="diagnosis", offsets="3, 3")
    )

    assert response.status_code == 400
    assert sorted(response.context["form"].errors) == ["diagnosis_code_prefix", "diagnosis_system", "offsets"]
    assert FollowUpPlan.objects.count() == 0


def test_plans_of_another_department_or_without_the_right_cannot_be_written(
    client, staff, internal_medicine, acupuncture
):
    form = questionnaire()
    theirs = plan(department=acupuncture, name="针灸随访")

    nurse = _signed_in(client, staff["nurse"]).post("/followups/plans/new/", _plan_post(form, internal_medicine))
    head = _signed_in(client, staff["department_head"])
    foreign_department = head.post("/followups/plans/new/", _plan_post(form, acupuncture))
    foreign_plan = head.post(f"/followups/plans/{theirs.uuid}/", _plan_post(form, internal_medicine))

    theirs.refresh_from_db()
    assert (nurse.status_code, foreign_department.status_code, foreign_plan.status_code) == (403, 400, 404)
    assert list(FollowUpPlan.objects.values_list("name", "department")) == [("针灸随访", acupuncture.pk)]


def test_an_administrator_edits_any_plan(client, staff, acupuncture):
    existing = plan(department=acupuncture)

    response = _signed_in(client, staff["administrator"]).post(
        f"/followups/plans/{existing.uuid}/", _plan_post(existing.questionnaire, acupuncture, offsets="1")
    )

    existing.refresh_from_db()
    assert (response.status_code, existing.offsets) == (302, [1])


# --- A one-off follow-up from the patient's page ----------------------------------------------------


def test_the_patient_page_offers_scheduling_to_staff_who_may(client, staff, patient):
    doctor = _signed_in(client, staff["doctor"]).get(f"/patients/{patient.uuid}/")

    assert f'href="/followups/patients/{patient.uuid}/schedule/"' in doctor.content.decode()


def test_a_doctor_schedules_a_phone_follow_up_in_two_weeks(client, staff, patient, internal_medicine):
    form = questionnaire()

    response = _signed_in(client, staff["doctor"]).post(
        f"/followups/patients/{patient.uuid}/schedule/",
        {"questionnaire": str(form.uuid), "channel": "phone", "in_days": 14, "note": "复查血压"},
    )

    scheduled = FollowUpTask.objects.get()
    assert (response.status_code, response["Location"]) == (302, f"/patients/{patient.uuid}/")
    assert (scheduled.due_date, scheduled.assignee, scheduled.department, scheduled.note, scheduled.plan) == (
        _day(14),
        staff["doctor"],
        internal_medicine,
        "复查血压",
        None,
    )


def test_scheduling_is_refused_to_anonymous_wrong_role_and_other_department(client, staff, patient):
    form = questionnaire()
    url = f"/followups/patients/{patient.uuid}/schedule/"
    data = {"questionnaire": str(form.uuid), "channel": "phone", "in_days": 14}

    anonymous = client.post(url, data)
    analyst = _signed_in(client, staff["analyst"]).post(url, data)
    other = _signed_in(client, staff["other_doctor"]).post(url, data)
    past = _signed_in(client, staff["doctor"]).post(url, {**data, "in_days": "", "due_date": _day(-1).isoformat()})

    assert (anonymous.status_code, analyst.status_code, other.status_code, past.status_code) == (302, 403, 404, 400)
    assert past.context["form"].errors == {"due_date": ["The follow-up cannot be due in the past."]}
    assert FollowUpTask.objects.count() == 0
