"""Alert pages and API: who sees which alerts, acknowledging, rules, the worklist panel, languages, errors."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from followups.builtin import post_discharge
from followups.models import Alert, AlertRule, Questionnaire
from followups.services import builtin_questionnaires_load, response_save
from hcrm.models import AuditEntry, StaffDepartment
from tests.factories import EncounterFactory, PatientFactory

pytestmark = pytest.mark.django_db

RED_FLAGS = {
    "recovery": "worse",
    "has_symptoms": True,
    "symptoms": ["fever"],
    "medication": "as_prescribed",
    "wants_visit": False,
}


def _raise_alert(patient, department, doctor) -> Alert:
    EncounterFactory(
        patient=patient,
        kind="inpatient",
        department=department,
        doctor=doctor,
        ended_at=timezone.now() - dt.timedelta(days=2),
    )
    version = Questionnaire.objects.get(code=post_discharge.CODE).current_version
    response = response_save(version=version, patient=patient, answers=RED_FLAGS, source="phone", complete=True)
    return Alert.objects.get(response=response)


@pytest.fixture
def alert(db, staff, patient, internal_medicine):
    builtin_questionnaires_load()
    StaffDepartment.objects.filter(user=staff["department_head"]).update(is_head=True)
    return _raise_alert(patient, internal_medicine, staff["doctor"])


@pytest.fixture
def elsewhere(alert, staff, acupuncture):
    """An alert of acupuncture, for its doctor."""
    return _raise_alert(PatientFactory(departments=[acupuncture]), acupuncture, staff["other_doctor"])


def _as(client, user):
    client.force_login(user)
    return client


# --- Pages -----------------------------------------------------------------------------------------------


def test_the_alert_list_needs_a_signed_in_user_whose_role_has_alerts(client, staff, alert):
    anonymous = client.get("/followups/alerts/")
    agent = _as(client, staff["agent"]).get("/followups/alerts/")

    assert (anonymous.status_code, anonymous["Location"]) == (302, "/login/?next=/followups/alerts/")
    assert agent.status_code == 403


@pytest.mark.parametrize(
    ("user", "seen"),
    [("doctor", ["alert"]), ("other_doctor", ["elsewhere"]), ("nurse", []), ("department_head", ["alert"])],
)
def test_each_sees_their_own_alerts_and_heads_their_department_s(client, staff, alert, elsewhere, user, seen):
    alerts = {"alert": alert, "elsewhere": elsewhere}

    response = _as(client, staff[user]).get("/followups/alerts/")

    assert response.status_code == 200
    assert [row.pk for row in response.context["page"].object_list] == [alerts[name].pk for name in seen]


def test_administrators_see_every_alert_and_filter_by_department_severity_and_status(client, staff, alert, elsewhere):
    client = _as(client, staff["administrator"])

    every = client.get("/followups/alerts/")
    acupuncture = client.get("/followups/alerts/", {"department": "ZJ"})
    info = client.get("/followups/alerts/", {"severity": "info"})
    acknowledged = client.get("/followups/alerts/", {"status": "acknowledged"})
    bad = client.get("/followups/alerts/", {"severity": "dire"})

    assert [row.pk for row in every.context["page"].object_list] == [elsewhere.pk, alert.pk]
    assert [row.pk for row in acupuncture.context["page"].object_list] == [elsewhere.pk]
    assert list(info.context["page"].object_list) == list(acknowledged.context["page"].object_list) == []
    assert bad.status_code == 400


def test_the_list_pages_through_alerts(client, staff, alert, internal_medicine):
    for _index in range(25):
        _raise_alert(PatientFactory(departments=[internal_medicine]), internal_medicine, staff["doctor"])
    client = _as(client, staff["doctor"])

    first = client.get("/followups/alerts/")
    second = client.get("/followups/alerts/", {"page": 2})

    assert (len(first.context["page"].object_list), first.context["page"].has_next) == (25, True)
    assert [row.pk for row in second.context["page"].object_list] == [alert.pk]
    assert 'href="?page=2"' in first.content.decode()


@pytest.mark.parametrize(
    ("language", "texts"),
    [
        ("en", ["What raised it", "Fever (38.5 °C or above)", "Acknowledge", "Critical"]),
        ("zh-hans", ["发热（体温 ≥ 38.5℃）", "出院后危险症状", 'lang="zh-hans"']),
    ],
)
def test_the_alert_page_shows_what_raised_it_and_the_answers_in_the_user_s_language(
    client, staff, alert, language, texts
):
    client = _as(client, staff["doctor"])
    client.post("/i18n/setlang/", {"language": language, "next": "/"})

    response = client.get(f"/followups/alerts/{alert.uuid}/")

    page = response.content.decode()
    assert response.status_code == 200
    assert all(text in page for text in texts), [text for text in texts if text not in page]
    assert (
        AuditEntry.objects.filter(
            event="view", content_type__model="alert", object_pk=str(alert.pk), actor=staff["doctor"]
        ).count()
        == 1
    )


def test_another_department_s_alert_is_not_found(client, staff, alert):
    response = _as(client, staff["other_doctor"]).get(f"/followups/alerts/{alert.uuid}/")
    posted = client.post(f"/followups/alerts/{alert.uuid}/", {"note": "mine"})

    alert.refresh_from_db()
    assert (response.status_code, posted.status_code, alert.status) == (404, 404, "open")


def test_acknowledging_from_the_page_needs_a_note(client, staff, alert):
    client = _as(client, staff["doctor"])

    empty = client.post(f"/followups/alerts/{alert.uuid}/", {"note": ""})
    alert.refresh_from_db()
    status_after_empty = alert.status
    done = client.post(f"/followups/alerts/{alert.uuid}/", {"note": "已电话随访"})

    alert.refresh_from_db()
    assert (empty.status_code, status_after_empty) == (400, "open")
    assert (done.status_code, done["Location"]) == (302, f"/followups/alerts/{alert.uuid}/")
    assert (alert.status, alert.acknowledged_by, alert.acknowledgement_note) == (
        "acknowledged",
        staff["doctor"],
        "已电话随访",
    )


def test_the_department_head_may_acknowledge_a_doctor_s_alert(client, staff, alert):
    response = _as(client, staff["department_head"]).post(f"/followups/alerts/{alert.uuid}/", {"note": "handled"})

    alert.refresh_from_db()
    assert (response.status_code, alert.acknowledged_by) == (302, staff["department_head"])


def test_the_worklist_shows_how_many_alerts_wait(client, staff, alert):
    doctor = _as(client, staff["doctor"]).get("/followups/")
    agent = _as(client, staff["agent"]).get("/followups/")

    assert doctor.context["alerts_waiting"] == 1
    assert "1 alert waiting for acknowledgement" in doctor.content.decode()
    assert agent.context["alerts_waiting"] is None


def test_the_patient_s_timeline_lists_the_alert(client, staff, alert, patient):
    response = _as(client, staff["doctor"]).get(f"/patients/{patient.uuid}/")

    assert "Follow-up alert (Critical): 出院后危险症状" in response.content.decode()


# --- Rule pages ------------------------------------------------------------------------------------------


def test_rules_are_for_heads_and_administrators(client, staff, alert):
    doctor = _as(client, staff["doctor"]).get("/followups/alert-rules/")
    head = _as(client, staff["department_head"]).get("/followups/alert-rules/")

    assert doctor.status_code == 403
    assert head.status_code == 200
    assert [rule.name for rule, editable in head.context["rows"] if editable] == []
    assert len(head.context["rows"]) == 5


def test_a_head_writes_a_rule_for_their_department_but_not_a_hospital_wide_one(client, staff, alert):
    client = _as(client, staff["department_head"])
    builtin = AlertRule.objects.get(name="出院后危险症状")
    data = {
        "name": "内科：希望复诊",
        "active": "on",
        "questionnaire": str(builtin.questionnaire.uuid),
        "department": "NK",
        "condition": "answer",
        "link_id": "wants_visit",
        "operator": "=",
        "value": "true",
        "severity": "warning",
        "recipient": "doctor",
        "escalate_after_minutes": "",
        "escalate_to": "department_head",
    }

    missing = client.post("/followups/alert-rules/new/", {**data, "link_id": ""})
    made = client.post("/followups/alert-rules/new/", data)
    other = client.post("/followups/alert-rules/new/", {**data, "name": "针灸", "department": "ZJ"})
    hospital_wide = client.get(f"/followups/alert-rules/{builtin.uuid}/")

    assert (missing.status_code, list(missing.context["form"].errors)) == (400, ["link_id"])
    assert made.status_code == 302
    rule = AlertRule.objects.get(name="内科：希望复诊")
    assert (rule.department.code, rule.escalate_after_minutes) == ("NK", 120)
    assert (other.status_code, list(other.context["form"].errors)) == (400, ["department"])
    assert hospital_wide.status_code == 404


def test_an_administrator_changes_a_built_in_rule(client, staff, alert):
    rule = AlertRule.objects.get(name="出院后危险症状")
    client = _as(client, staff["administrator"])
    page = client.get(f"/followups/alert-rules/{rule.uuid}/")
    data = {key: value for key, value in page.context["form"].initial.items() if value is not None}
    data.update(questionnaire=str(rule.questionnaire.uuid), escalate_after_minutes="30", active="on")

    response = client.post(f"/followups/alert-rules/{rule.uuid}/", data)

    rule.refresh_from_db()
    assert (response.status_code, rule.escalate_after_minutes) == (302, 30)


# --- API -------------------------------------------------------------------------------------------------


def test_the_api_lists_a_doctor_s_alerts_with_what_raised_them(api, staff, alert, elsewhere):
    response = api.as_user(staff["doctor"]).get("/api/v1/alerts/", {"status": "open"})

    [row] = response.json()["results"]
    assert (row["id"], row["severity"], row["rule_name"], row["recipient"]["id"]) == (
        str(alert.uuid),
        "critical",
        "出院后危险症状",
        str(staff["doctor"].uuid),
    )
    assert [finding["link_id"] for finding in row["findings"]] == ["symptoms"]
    entry = AuditEntry.objects.filter(event="list", actor=staff["doctor"]).latest("timestamp")
    assert entry.additional_data["patients"] == [str(alert.patient.uuid)]


@pytest.mark.parametrize("rows", [1, 6])
def test_the_alert_list_query_count_does_not_grow_with_rows(
    api, staff, alert, internal_medicine, django_assert_num_queries, rows
):
    for _index in range(rows - 1):
        _raise_alert(PatientFactory(departments=[internal_medicine]), internal_medicine, staff["doctor"])
    client = api.as_user(staff["doctor"])
    ContentType.objects.get_for_model(AuditEntry)

    # Token and user, permissions (2), roles, departments; the page, the audit entry.
    with django_assert_num_queries(7):
        response = client.get("/api/v1/alerts/")

    assert len(response.json()["results"]) == rows


def test_the_api_permission_matrix_for_an_alert(api, staff, alert):
    anonymous = api.get(f"/api/v1/alerts/{alert.uuid}/")
    agent = api.as_user(staff["agent"]).get(f"/api/v1/alerts/{alert.uuid}/")
    other = api.as_user(staff["other_doctor"]).post(f"/api/v1/alerts/{alert.uuid}/acknowledge/", {"note": "x"})
    mine = api.as_user(staff["doctor"]).get(f"/api/v1/alerts/{alert.uuid}/")

    alert.refresh_from_db()
    assert (anonymous.status_code, agent.status_code, other.status_code, mine.status_code) == (401, 403, 404, 200)
    assert alert.status == "open"


def test_acknowledging_through_the_api(api, staff, alert):
    client = api.as_user(staff["doctor"])

    missing = client.post(f"/api/v1/alerts/{alert.uuid}/acknowledge/", {}, format="json")
    done = client.post(f"/api/v1/alerts/{alert.uuid}/acknowledge/", {"note": "called back"}, format="json")
    again = client.post(f"/api/v1/alerts/{alert.uuid}/acknowledge/", {"note": "again"}, format="json")

    assert (missing.status_code, [error["field"] for error in missing.json()["errors"]]) == (400, ["note"])
    assert (done.status_code, done.json()["status"], done.json()["acknowledgement_note"]) == (
        200,
        "acknowledged",
        "called back",
    )
    assert (again.status_code, [error["field"] for error in again.json()["errors"]]) == (400, ["status"])


def test_rules_through_the_api(api, staff, alert):
    body = {
        "name": "Wants a visit",
        "questionnaire": post_discharge.CODE,
        "condition": "answer",
        "link_id": "wants_visit",
        "operator": "=",
        "value": "true",
    }

    denied = api.as_user(staff["doctor"]).post("/api/v1/alert-rules/", body, format="json")
    admin = api.as_user(staff["administrator"])
    bad = admin.post("/api/v1/alert-rules/", {**body, "link_id": "nope"}, format="json")
    made = admin.post("/api/v1/alert-rules/", body, format="json")
    changed = admin.patch(f"/api/v1/alert-rules/{made.json()['id']}/", {"severity": "critical"}, format="json")
    builtin = AlertRule.objects.get(name="出院后危险症状")
    kept = admin.delete(f"/api/v1/alert-rules/{builtin.uuid}/")
    deleted = admin.delete(f"/api/v1/alert-rules/{made.json()['id']}/")

    assert denied.status_code == 403
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (400, "link_id")
    assert (made.status_code, made.json()["escalate_after_minutes"]) == (201, 120)
    assert (changed.status_code, changed.json()["severity"]) == (200, "critical")
    assert (kept.status_code, deleted.status_code) == (400, 204)
    assert AlertRule.objects.filter(name="Wants a visit").count() == 0


def test_a_head_writes_rules_of_their_department_only_through_the_api(api, staff, alert):
    head = api.as_user(staff["department_head"])
    body = {"name": "Low", "condition": "score_band", "score_code": "recommend", "score_max": 3, "department": "ZJ"}

    other = head.post("/api/v1/alert-rules/", body, format="json")
    hospital_wide = head.post("/api/v1/alert-rules/", {**body, "department": None}, format="json")
    mine = head.post("/api/v1/alert-rules/", {**body, "department": "NK"}, format="json")

    assert [(response.status_code, response.json()["errors"][0]["field"]) for response in (other, hospital_wide)] == [
        (400, "department"),
        (400, "department"),
    ]
    assert (mine.status_code, mine.json()["department"]) == (201, "NK")
