"""Console pages of the platform: sign-in, lockout, home, staff activity, language."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

from hcrm.audit import Event, audit_acting_as, audit_read

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
TRANSLATIONS_COMPILED = (Path(settings.BASE_DIR) / "locale/zh_Hans/LC_MESSAGES/django.mo").exists()


def _h1(response) -> str:
    return re.search(r"<h1>(.*?)</h1>", response.content.decode(), re.S).group(1).strip()


def test_login_page_shows_the_form(client):
    response = client.get("/login/")

    assert response.status_code == 200
    assert _h1(response) == "Sign in"
    assert 'name="username"' in response.content.decode()
    assert 'name="password"' in response.content.decode()


def test_signing_in_leads_home(client, staff):
    response = client.post("/login/", {"username": "doctor", "password": PASSWORD}, follow=True)

    assert response.redirect_chain == [("/", 302)]
    assert _h1(response) == f"Welcome, {staff['doctor']}"


def test_wrong_password_shows_the_form_again(client, staff):
    response = client.post("/login/", {"username": "doctor", "password": "wrong"})

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert "Please enter a correct username and password." in response.content.decode()


def test_repeated_failures_show_the_lockout_page(client, staff):
    # given five failed sign-ins
    for _attempt in range(5):
        client.post("/login/", {"username": "doctor", "password": "wrong"})

    # when the right password comes too late
    response = client.post("/login/", {"username": "doctor", "password": PASSWORD})

    # then
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert "Too many failed sign-ins: this account is locked for a while." in response.content.decode()
    assert _h1(response) == "Sign in"


def test_home_needs_signing_in(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


def test_home_offers_what_the_role_may_do(client, staff):
    client.force_login(staff["doctor"])
    doctor_home = client.get("/").content.decode()
    client.force_login(staff["analyst"])
    analyst_home = client.get("/").content.decode()

    assert 'href="/patients/"' in doctor_home
    assert 'href="/audit/"' not in doctor_home
    assert 'href="/patients/"' not in analyst_home
    assert "Statistics" in analyst_home


@pytest.mark.parametrize(("role", "status"), [("administrator", 200), ("department_head", 200), ("doctor", 403)])
def test_staff_activity_page_permissions(client, staff, role, status):
    client.force_login(staff[role])

    response = client.get("/audit/")

    assert response.status_code == status


def _acted(actor, event):
    with audit_acting_as(actor):
        audit_read(event=event)


def test_staff_activity_page_filters_by_staff_member(client, staff):
    # given
    _acted(staff["nurse"], Event.SEARCH)
    _acted(staff["doctor"], Event.EXPORT)
    client.force_login(staff["department_head"])

    # when
    response = client.get("/audit/", {"actor": "nurse"})

    # then
    page = response.context["page"]
    assert [(entry.event, entry.actor.username) for entry in page] == [("search", "nurse")]


def test_department_head_does_not_see_other_departments_activity(client, staff):
    _acted(staff["other_doctor"], Event.SEARCH)
    client.force_login(staff["department_head"])

    response = client.get("/audit/")

    actors = {entry.actor.username for entry in response.context["page"]}
    assert actors == {"department_head"}  # only the head's own sign-in


def test_language_switch_to_english_and_back(client, staff):
    # when
    to_english = client.post("/i18n/setlang/", {"language": "en", "next": "/login/"}, follow=True)
    to_chinese = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/login/"}, follow=True)
    empty_form = client.post("/login/", {"username": "", "password": ""})

    # then
    assert '<html lang="en">' in to_english.content.decode()
    assert '<html lang="zh-hans">' in to_chinese.content.decode()
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    # Django's own catalogue is always compiled: a required-field error reads in Chinese.
    assert "该字段是必填项。" in empty_form.content.decode()


@pytest.mark.skipif(not TRANSLATIONS_COMPILED, reason="the project's translations are not compiled yet")
def test_console_strings_are_translated_to_chinese(client):
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/login/"})

    response = client.get("/login/")

    assert _h1(response) != "Sign in"
    assert re.search(r"[\u4e00-\u9fff]", _h1(response))
