"""The satisfaction and follow-up KPI pages: who may see them, their filters, exports, comments, languages."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.conf import settings
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from hcrm.models import AuditEntry
from tests.analytics.factories import local, outpatient_survey, respond
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.django_db

SATISFACTION = reverse("analytics:satisfaction")
KPIS = reverse("analytics:followup-kpis")
PERIOD = {"from": "2025-01-01", "to": "2025-03-31"}


@pytest.fixture(autouse=True)
def no_cached_figures(settings):
    settings.ANALYTICS_CACHE_SECONDS = 0
    yield
    cache.clear()


@pytest.fixture
def responses(staff, internal_medicine, acupuncture, patient):
    survey = outpatient_survey()
    elsewhere = PatientFactory(name="李四", departments=[acupuncture])
    return [
        respond(survey, patient, at=local(dt.date(2025, 1, 10)), department=internal_medicine, score=5, recommend=10,
                comment="医生很耐心"),
        respond(survey, elsewhere, at=local(dt.date(2025, 2, 10)), department=acupuncture, score=2, recommend=2,
                comment="候诊太久"),
    ]  # fmt: skip


def _get(client, user, url, **params):
    client.force_login(user)
    return client.get(url, params)


@pytest.mark.parametrize("url", [SATISFACTION, KPIS])
def test_anonymous_readers_are_sent_to_sign_in_and_doctors_nurses_agents_are_refused(client, staff, url):
    assert client.get(url).status_code == 302
    for role in ("doctor", "nurse", "agent"):
        assert _get(client, staff[role], url).status_code == 403, role


@pytest.mark.parametrize("url", [SATISFACTION, KPIS])
def test_analysts_administrators_and_department_heads_see_the_pages(client, staff, url, responses):
    for role in ("analyst", "administrator", "department_head"):
        assert _get(client, staff[role], url, **PERIOD).status_code == 200, role


def test_a_department_head_sees_only_the_figures_of_own_departments(client, staff, responses, internal_medicine):
    page = _get(client, staff["department_head"], SATISFACTION, **PERIOD)

    assert page.context["total"].responses == 1
    assert [row["name"] for row in page.context["by_department"]] == [internal_medicine.display_name]
    assert [comment["comment"] for comment in page.context["comments"]] == ["医生很耐心"]
    assert "候诊太久" not in page.content.decode()


def test_a_department_head_asking_for_another_department_gets_a_400_naming_the_field(
    client, staff, responses, acupuncture
):
    page = _get(client, staff["department_head"], SATISFACTION, department=acupuncture.pk, **PERIOD)

    assert page.status_code == 400
    assert "department" in page.context["form"].errors
    assert "total" not in page.context


def test_an_analyst_sees_every_department_and_may_filter_one(client, staff, responses, acupuncture):
    every = _get(client, staff["analyst"], SATISFACTION, **PERIOD)
    one = _get(client, staff["analyst"], SATISFACTION, department=acupuncture.pk, **PERIOD)

    assert (every.context["total"].responses, one.context["total"].responses) == (2, 1)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2025-13-01"}, "from"),
        ({"from": "2025-03-01", "to": "2025-01-01"}, "to"),
        ({"from": "2020-01-01", "to": "2025-01-01"}, "from"),
        ({"department": "x"}, "department"),
        ({"questionnaire": "999999"}, "questionnaire"),
        ({"page": "0"}, "page"),
        ({"export": "pdf", "table": "months"}, "export"),
        ({"export": "csv", "table": "patients"}, "table"),
    ],
)
def test_bad_filters_get_a_400_naming_the_field(client, staff, params, field):
    page = _get(client, staff["analyst"], SATISFACTION, **params)

    assert page.status_code == 400
    assert field in page.context["form"].errors


def test_without_filters_the_period_is_the_last_three_months(client, staff):
    page = _get(client, staff["analyst"], SATISFACTION)

    filters = page.context["filters"]
    assert filters.end == timezone.localdate()
    assert (filters.start.day, len(page.context["by_month"])) == (1, 3)
    assert filters.start.month == (timezone.localdate().month - 3) % 12 + 1


def test_comments_link_to_the_patient_only_for_readers_who_may_see_the_patient(client, staff, responses, patient):
    analyst = _get(client, staff["analyst"], SATISFACTION, **PERIOD)
    administrator = _get(client, staff["administrator"], SATISFACTION, **PERIOD)

    patient_url = reverse("patients:detail", args=[patient.uuid])
    assert patient_url not in analyst.content.decode()
    assert patient.name not in analyst.content.decode()
    assert patient_url in administrator.content.decode()
    shown = AuditEntry.objects.filter(event="list", actor=staff["administrator"]).latest("pk").additional_data
    assert str(patient.uuid) in shown["patients"]
    assert shown["responses"] == [str(response.uuid) for response in reversed(responses)]
    not_shown = AuditEntry.objects.filter(event="list", actor=staff["analyst"]).latest("pk").additional_data
    assert not_shown["patients"] == []


def test_comments_are_paged_newest_first(client, staff, patient, internal_medicine):
    survey = outpatient_survey()
    for day in range(1, 23):
        respond(survey, patient, at=local(dt.date(2025, 1, day)), department=internal_medicine, comment=f"第{day}条")

    first = _get(client, staff["analyst"], SATISFACTION, **PERIOD)
    second = _get(client, staff["analyst"], SATISFACTION, page=2, **PERIOD)

    assert [c["comment"] for c in first.context["comments"]][:2] == ["第22条", "第21条"]
    assert (len(first.context["comments"]), first.context["has_next"]) == (20, True)
    assert [c["comment"] for c in second.context["comments"]] == ["第2条", "第1条"]
    assert second.context["has_next"] is False


def test_the_tables_export_as_csv_and_xlsx_without_patient_identifiers(client, staff, responses, patient):
    csv_file = _get(client, staff["analyst"], SATISFACTION, export="csv", table="departments", **PERIOD)
    xlsx_file = _get(client, staff["analyst"], SATISFACTION, export="xlsx", table="months", **PERIOD)

    rows = list(csv.reader(io.StringIO(csv_file.content.decode("utf-8-sig"))))
    assert rows[0][:2] == ["Department", "Responses"]
    assert sorted(row[:2] for row in rows[1:]) == [["Acupuncture", "1"], ["Internal medicine", "1"]]
    assert patient.name not in csv_file.content.decode("utf-8-sig")
    sheet = load_workbook(io.BytesIO(xlsx_file.content)).active
    assert [row[:2] for row in sheet.iter_rows(min_row=2, values_only=True)] == [
        ("2025-01", 1),
        ("2025-02", 1),
        ("2025-03", 0),
    ]
    assert AuditEntry.objects.filter(event="export", actor=staff["analyst"]).count() == 2


def test_the_kpi_table_exports_too(client, staff):
    page = _get(client, staff["administrator"], KPIS, export="csv", table="departments", **PERIOD)

    assert page.status_code == 200
    assert page["Content-Disposition"] == 'attachment; filename="departments-2025-01-01-2025-03-31.csv"'


@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize("url", [SATISFACTION, KPIS])
def test_the_pages_render_in_english_and_chinese(client, staff, responses, language, url):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language

    page = _get(client, staff["administrator"], url, **PERIOD)

    assert page.status_code == 200
    assert f'<html lang="{language}">' in page.content.decode()


def test_the_satisfaction_page_needs_a_bounded_number_of_queries(
    client, staff, responses, django_assert_max_num_queries
):
    client.force_login(staff["administrator"])
    client.get(SATISFACTION, PERIOD)  # the session and permissions warmed up

    # session, user, permissions (3); versions, groups, surveys, invitations, items, comments, their audit
    # entry (with its content type), names of departments and doctors, the filter form's two lists
    with django_assert_max_num_queries(16):
        client.get(SATISFACTION, PERIOD)
    # session, user, permissions (3); discharges, tasks, department names, the filter form's list
    with django_assert_max_num_queries(9):
        client.get(KPIS, PERIOD)


def test_figures_are_reused_for_the_same_filters_and_the_page_says_when_they_were_computed(
    client, staff, responses, settings, patient, internal_medicine
):
    settings.ANALYTICS_CACHE_SECONDS = 300
    first = _get(client, staff["analyst"], SATISFACTION, **PERIOD)
    respond(outpatient_survey(), patient, at=local(dt.date(2025, 1, 11)), department=internal_medicine)

    again = _get(client, staff["analyst"], SATISFACTION, **PERIOD)
    other_filters = _get(client, staff["analyst"], SATISFACTION, **{**PERIOD, "to": "2025-03-30"})

    assert (first.context["total"].responses, again.context["total"].responses) == (2, 2)
    assert other_filters.context["total"].responses == 3
    assert "Computed at" in again.content.decode()


def test_the_nav_links_to_the_pages_for_those_who_may_see_them(client, staff):
    assert SATISFACTION in _get(client, staff["analyst"], reverse("home")).content.decode()
    assert SATISFACTION not in _get(client, staff["doctor"], reverse("home")).content.decode()


def test_a_user_without_a_role_but_the_permission_given_sees_only_own_departments(client, internal_medicine):
    from django.contrib.auth.models import Permission

    user = UserFactory(username="reader", roles=[], departments=[internal_medicine])
    user.user_permissions.add(Permission.objects.get(codename="view_statistics"))

    page = _get(client, user, SATISFACTION, **PERIOD)

    assert page.status_code == 200
    assert list(page.context["form"].fields["department"].queryset) == [internal_medicine]
