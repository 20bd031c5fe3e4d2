"""Research cohort pages and API: permissions by role, creating and editing, completion by wave, exports,
withdrawal, and the audit of each export."""

from __future__ import annotations

import csv
import io

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from followups.models import CohortMember, FollowUpTask, ResearchCohort
from followups.services import cohort_save, research_sweep, response_save, task_complete
from hcrm.models import AuditEntry
from tests.factories import PatientFactory
from tests.followups.factories import cohort_data, research_questionnaire

pytestmark = pytest.mark.django_db


@pytest.fixture
def questionnaire(db):
    return research_questionnaire()


@pytest.fixture
def cohort(staff, women, questionnaire, internal_medicine) -> ResearchCohort:
    data = cohort_data(
        investigator=staff["doctor"],
        segment=women,
        questionnaire=questionnaire,
        department=internal_medicine,
        offsets=[0, 30],
        start_date=timezone.localdate(),
    )
    return cohort_save(actor=staff["administrator"], data=data)


@pytest.fixture
def answered(cohort):
    """Two members; the first answered wave 1."""
    first = PatientFactory(sex="female", name="赵敏")
    PatientFactory(sex="female")
    research_sweep()
    task = FollowUpTask.objects.get(patient=first, offset_days=0)
    response = response_save(
        version=cohort.plan.questionnaire.current_version,
        patient=first,
        answers={"pain": False, "sleep": "good", "name": "王五"},
        source="phone",
        complete=True,
    )
    task_complete(task=task, response=response, actor=None)
    return first


def _signed_in(client, user):
    client.force_login(user)
    return client


def _form(staff, women, questionnaire, department, **changes) -> dict:
    return {
        "name": "糖尿病队列",
        "description": "",
        "principal_investigator": str(staff["doctor"].uuid),
        "ethics_approval": "伦审 2026-020",
        "segment": str(women.uuid),
        "questionnaire": str(questionnaire.uuid),
        "channel": "sms",
        "schedule_kind": "interval",
        "offsets": "",
        "interval_days": "90",
        "start_date": "2026-01-01",
        "end_date": "2027-12-31",
        "assignee_role": "nurse",
        "assignee_department": department.code,
        "retry_attempts": "3",
        "retry_spacing_hours": "24",
        "active": "on",
        **changes,
    }


# --- Permissions ---------------------------------------------------------------------------------------


def test_the_cohort_list_needs_a_role_that_reads_cohorts(client, staff, cohort):
    anonymous = client.get("/followups/research/")
    nurse = _signed_in(client, staff["nurse"]).get("/followups/research/")
    analyst = _signed_in(client, staff["analyst"]).get("/followups/research/")

    assert (anonymous.status_code, anonymous["Location"]) == (302, "/login/?next=/followups/research/")
    assert nurse.status_code == 403
    assert analyst.status_code == 200
    assert [row.name for row in analyst.context["page"].object_list] == ["类风湿队列"]
    assert 'href="/followups/research/new/"' not in analyst.content.decode()


def test_the_cohort_list_takes_a_fixed_number_of_queries(client, staff, cohort, django_assert_num_queries):
    from tests.followups.test_worklist_pages import SESSION_QUERIES

    _signed_in(client, staff["analyst"])
    # session (unless cached), user, user and group permissions, roles of the header, count, page
    with django_assert_num_queries(SESSION_QUERIES + 6):
        response = client.get("/followups/research/")
    assert response.status_code == 200


def test_an_analyst_exports_but_a_department_head_does_not(client, staff, cohort, answered):
    head = _signed_in(client, staff["department_head"]).get(f"/followups/research/{cohort.uuid}/export.csv")
    assert head.status_code == 403
    assert not AuditEntry.objects.filter(event="export").exists()

    analyst = _signed_in(client, staff["analyst"]).get(f"/followups/research/{cohort.uuid}/export.csv")
    rows = list(csv.reader(io.StringIO(b"".join(analyst.streaming_content).decode("utf-8-sig"))))

    assert analyst["Content-Disposition"] == f'attachment; filename="cohort-{cohort.uuid}-answers.csv"'
    assert [row[0] for row in rows[1:]] == [CohortMember.objects.get(patient=answered).pseudonym]
    assert "name" not in rows[0]
    entry = AuditEntry.objects.get(event="export")
    assert (entry.actor, entry.additional_data["rows"], entry.client) == (staff["analyst"], 1, "console")


def test_free_text_is_exported_only_to_whom_may(client, staff, cohort, answered):
    analyst = _signed_in(client, staff["analyst"]).get(f"/followups/research/{cohort.uuid}/export.csv?free_text=1")
    administrator = _signed_in(client, staff["administrator"]).get(
        f"/followups/research/{cohort.uuid}/export.xlsx?free_text=1"
    )

    assert analyst.status_code == 403
    sheet = load_workbook(io.BytesIO(b"".join(administrator.streaming_content)))["Answers"]
    header, row = list(sheet.iter_rows(values_only=True))
    assert row[header.index("name")] == "王五"
    assert AuditEntry.objects.get(event="export").additional_data == {
        "cohort": str(cohort.uuid),
        "format": "xlsx",
        "rows": 1,
        "free_text": True,
    }


def test_an_unknown_export_format_is_404(client, staff, cohort):
    assert _signed_in(client, staff["analyst"]).get(f"/followups/research/{cohort.uuid}/export.pdf").status_code == 404


def test_the_dictionary_is_a_csv_download(client, staff, cohort):
    response = _signed_in(client, staff["analyst"]).get(f"/followups/research/{cohort.uuid}/dictionary.csv")

    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert response["Content-Disposition"] == f'attachment; filename="cohort-{cohort.uuid}-dictionary.csv"'
    assert ["sleep", "", "poor", "差", ""] in rows


# --- Detail --------------------------------------------------------------------------------------------


def test_the_detail_shows_members_and_completion_by_wave_and_no_patient(client, staff, cohort, answered):
    response = _signed_in(client, staff["analyst"]).get(f"/followups/research/{cohort.uuid}/")

    page = response.content.decode()
    assert response.context["cohort"].member_count == 2
    assert [(w.number, w.offset_days, w.tasks, w.completed, w.completion) for w in response.context["waves"]] == [
        (1, 0, 2, 1, 50.0),
        (2, 30, 2, 0, 0.0),
    ]
    assert "赵敏" not in page and answered.mrn not in page
    assert f'href="/followups/research/{cohort.uuid}/export.xlsx"' in page
    assert "free_text=1" not in page
    assert "cohort-withdraw" not in page and "/withdraw/" not in page


def test_a_department_head_withdraws_a_member_by_mrn(client, staff, cohort, answered, internal_medicine):
    answered.departments.add(internal_medicine)
    url = f"/followups/research/{cohort.uuid}/withdraw/"

    unknown = _signed_in(client, staff["department_head"]).post(url, {"mrn": "NOPE", "reason": "退出"})
    done = client.post(url, {"mrn": answered.mrn, "reason": "本人要求"})

    assert unknown.status_code == 400
    assert unknown.context["withdraw_form"].errors == {"mrn": ["No patient of yours with this MRN is in the cohort."]}
    assert done.status_code == 302
    member = CohortMember.objects.get(patient=answered)
    assert (member.withdrawal_reason, FollowUpTask.objects.get(patient=answered, offset_days=30).closed_reason) == (
        "本人要求",
        "consent_withdrawn",
    )
    assert AuditEntry.objects.filter(event="view", patient_uuid=answered.uuid).exists()


def test_an_analyst_cannot_withdraw_a_member(client, staff, cohort, answered):
    response = _signed_in(client, staff["analyst"]).post(
        f"/followups/research/{cohort.uuid}/withdraw/", {"mrn": answered.mrn, "reason": "x"}
    )

    assert response.status_code == 403
    assert CohortMember.objects.get(patient=answered).withdrawn_at is None


# --- Create and edit -----------------------------------------------------------------------------------


def test_a_department_head_creates_an_interval_cohort(client, staff, women, questionnaire, internal_medicine):
    response = _signed_in(client, staff["department_head"]).post(
        "/followups/research/new/", _form(staff, women, questionnaire, internal_medicine)
    )

    cohort = ResearchCohort.objects.get(name="糖尿病队列")
    assert (response.status_code, response["Location"]) == (302, f"/followups/research/{cohort.uuid}/")
    assert (cohort.plan.offsets[:3], cohort.plan.channel, cohort.created_by) == (
        [0, 90, 180],
        "sms",
        staff["department_head"],
    )


def test_bad_input_names_the_field_and_saves_nothing(client, staff, women, questionnaire, internal_medicine):
    response = _signed_in(client, staff["department_head"]).post(
        "/followups/research/new/", _form(staff, women, questionnaire, internal_medicine, end_date="")
    )

    assert response.status_code == 400
    assert response.context["form"].errors == {"end_date": ["A repeating schedule needs an end date."]}
    assert not ResearchCohort.objects.exists()


def test_a_department_head_cannot_pick_or_edit_another_departments_cohort(
    client, staff, women, questionnaire, acupuncture, cohort
):
    signed_in = _signed_in(client, staff["department_head"])
    other = signed_in.post("/followups/research/new/", _form(staff, women, questionnaire, acupuncture))
    cohort.plan.assignee_department = acupuncture
    cohort.plan.save()
    edit = signed_in.get(f"/followups/research/{cohort.uuid}/edit/")

    assert other.status_code == 400
    assert list(other.context["form"].errors) == ["assignee_department"]
    assert edit.status_code == 404


def test_an_administrator_edits_a_cohort_and_enrols_now(client, staff, cohort, women, questionnaire, internal_medicine):
    PatientFactory(sex="female")
    signed_in = _signed_in(client, staff["administrator"])
    form = signed_in.get(f"/followups/research/{cohort.uuid}/edit/")
    data = {
        **_form(staff, women, questionnaire, internal_medicine, name="类风湿队列"),
        "schedule_kind": "offsets",
        "offsets": "0, 30, 60",
        "start_date": timezone.localdate().isoformat(),
        "end_date": "",
    }

    saved = signed_in.post(f"/followups/research/{cohort.uuid}/edit/", data)
    enrolled = signed_in.post(f"/followups/research/{cohort.uuid}/enrol/", follow=True)

    assert form.context["form"].initial["offsets"] == [0, 30]
    assert saved.status_code == 302
    cohort.plan.refresh_from_db()
    assert (cohort.plan.offsets, cohort.plan.channel) == ([0, 30, 60], "sms")
    assert "1 patients enrolled, 3 tasks made." in enrolled.content.decode()


# --- API -----------------------------------------------------------------------------------------------


def test_the_api_lists_cohorts_to_analysts_only(api, staff, cohort, answered):
    assert api.get("/api/v1/research-cohorts/").status_code == 401
    assert api.as_user(staff["nurse"]).get("/api/v1/research-cohorts/").status_code == 403

    response = api.as_user(staff["analyst"]).get("/api/v1/research-cohorts/")

    assert response.status_code == 200
    (row,) = response.json()["results"]
    assert (row["id"], row["questionnaire"], row["offsets"], row["member_count"], row["assignee_department"]) == (
        str(cohort.uuid),
        "ra-followup",
        [0, 30],
        2,
        "NK",
    )
    assert "pseudonym_salt" not in row


def test_the_api_creates_a_cohort_and_names_bad_fields(api, staff, women, questionnaire):
    body = {
        "name": "高血压队列",
        "principal_investigator": str(staff["doctor"].uuid),
        "ethics_approval": "伦审 2026-030",
        "segment": str(women.uuid),
        "questionnaire": "ra-followup",
        "channel": "phone",
        "offsets": [0, 180],
        "start_date": "2026-03-01",
        "assignee_role": "nurse",
        "assignee_department": "NK",
    }
    analyst = api.as_user(staff["analyst"]).post("/api/v1/research-cohorts/", body, format="json")
    bad = api.as_user(staff["administrator"]).post(
        "/api/v1/research-cohorts/", {**body, "offsets": [0, 0]}, format="json"
    )
    bad_role = api.post("/api/v1/research-cohorts/", {**body, "assignee_role": "janitor"}, format="json")
    created = api.post("/api/v1/research-cohorts/", body, format="json")

    assert analyst.status_code == 403
    assert bad.status_code == 400
    assert [error["field"] for error in bad.json()["errors"]] == ["offsets"]
    assert (bad_role.status_code, [error["field"] for error in bad_role.json()["errors"]]) == (400, ["assignee_role"])
    assert created.status_code == 201
    assert (created.json()["offsets"], created.json()["schedule_kind"]) == ([0, 180], "offsets")
    assert ResearchCohort.objects.count() == 1


def test_the_api_exports_csv_under_pseudonyms_with_an_audit_entry(api, staff, cohort, answered):
    head = api.as_user(staff["department_head"]).get(f"/api/v1/research-cohorts/{cohort.uuid}/export/")
    free_text = api.as_user(staff["analyst"]).get(f"/api/v1/research-cohorts/{cohort.uuid}/export/?free_text=true")
    response = api.as_user(staff["analyst"]).get(
        f"/api/v1/research-cohorts/{cohort.uuid}/export/", HTTP_ACCEPT="text/csv"
    )

    assert (head.status_code, free_text.status_code) == (403, 403)
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert [row[0] for row in rows[1:]] == [CohortMember.objects.get(patient=answered).pseudonym]
    entry = AuditEntry.objects.get(event="export")
    assert (entry.actor, entry.client, entry.additional_data["rows"]) == (staff["analyst"], "api", 1)


def test_a_plan_list_shows_a_research_plan_but_not_for_editing(client, staff, cohort):
    response = _signed_in(client, staff["administrator"]).get("/followups/plans/")

    assert [(plan.name, editable) for plan, editable in response.context["rows"]] == [("Research: 类风湿队列", False)]
    trigger_choices = [
        value for value, _label in client.get("/followups/plans/new/").context["form"]["trigger"].field.choices
    ]
    assert "research" not in trigger_choices
