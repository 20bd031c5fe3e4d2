"""Integration console pages: who may open them, what they show, what is audited, how many queries they take."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from hcrm.models import AuditEntry
from integrations.models import InboundMessage, SourceProfile
from tests.factories import PatientFactory, UserFactory
from tests.integrations.console_fixtures import adt, inbound, source

pytestmark = pytest.mark.django_db


@pytest.fixture
def his():
    return source("HIS", "ZYY", name="HIS 中医院")


@pytest.fixture
def failed(his):
    return inbound(
        profile=his,
        raw=adt("C7", "M0007"),
        control_id="C7",
        status="failed",
        error_code="103",
        error_location="PID^1^8",
        error="Unknown sex code X",
        patient_identifiers="M0007 110105194912310021",
    )


def _pages(failed, his) -> list[str]:
    return [
        "/integrations/",
        "/integrations/errors/",
        "/integrations/search/?control_id=C7",
        f"/integrations/messages/{failed.uuid}/",
        "/integrations/sources/",
        "/integrations/sources/new/",
        f"/integrations/sources/{his.uuid}/",
    ]


def test_anonymous_visitors_are_sent_to_sign_in(client, failed, his):
    for url in _pages(failed, his):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login/?next="), url


@pytest.mark.parametrize("role", ["doctor", "nurse", "agent", "department_head", "analyst"])
def test_roles_other_than_the_administrator_get_403_everywhere(client, staff, failed, his, role):
    client.force_login(staff[role])

    for url in _pages(failed, his):
        assert client.get(url).status_code == 403, url


def test_the_administrator_opens_every_page(client, staff, failed, his):
    client.force_login(staff["administrator"])

    for url in _pages(failed, his):
        assert client.get(url).status_code == 200, url


def test_denied_posts_change_nothing(client, staff, failed, his):
    client.force_login(staff["doctor"])
    before = (failed.status, failed.attempts)

    assert client.post(f"/integrations/messages/{failed.uuid}/reprocess/").status_code == 403
    assert client.post(f"/integrations/sources/{his.uuid}/reprocess/").status_code == 403
    assert client.post("/integrations/sources/new/", {"name": "X", "protocol": "hl7v2"}).status_code == 403
    assert client.post(f"/integrations/sources/{his.uuid}/", {"name": "Renamed"}).status_code == 403

    failed.refresh_from_db()
    his.refresh_from_db()
    assert (failed.status, failed.attempts) == before
    assert his.name == "HIS 中医院"
    assert SourceProfile.objects.count() == 1
    assert not AuditEntry.objects.filter(event__in=["create", "update"]).exists()


def test_anonymous_posts_change_nothing(client, failed, his):
    response = client.post(f"/integrations/messages/{failed.uuid}/reprocess/")

    assert response.status_code == 302
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == ("failed", 0)


def test_reprocess_is_post_only(client, staff, failed):
    client.force_login(staff["administrator"])

    assert client.get(f"/integrations/messages/{failed.uuid}/reprocess/").status_code == 405


def test_the_overview_shows_each_source_and_refreshes_itself_with_htmx(client, staff, his, failed):
    inbound(profile=his, control_id="C8")
    inbound(sender="OLDHIS^BRANCH", control_id="C9", status="rejected")
    client.force_login(staff["administrator"])

    page = client.get("/integrations/")
    fragment = client.get("/integrations/", headers={"HX-Request": "true"})

    html = page.content.decode()
    assert 'hx-trigger="every 30s"' in html
    assert "<svg" in html
    rows = {stats.sender: stats for stats, _bars in page.context["rows"]}
    assert (rows["HIS^ZYY"].received, rows["HIS^ZYY"].applied, rows["HIS^ZYY"].failed) == (2, 1, 1)
    assert (rows["OLDHIS^BRANCH"].received, rows["OLDHIS^BRANCH"].rejected) == (1, 1)
    assert "/integrations/sources/new/?sender=OLDHIS%5EBRANCH" in html
    assert fragment.templates[0].name == "integrations/_overview_table.html"
    assert fragment.content.decode().startswith('<div id="overview"')


def test_the_overview_takes_a_fixed_number_of_queries(client, staff, his, django_assert_num_queries):
    for number in range(5):
        extra = source(f"APP{number}", "ZYY")
        inbound(profile=extra, control_id=f"E{number}", status="failed")
        inbound(sender=f"STRAY{number}^X", control_id=f"S{number}")
    client.force_login(staff["administrator"])
    client.get("/integrations/")  # session and permission caches

    # session, user, permissions (2), role names for the header,
    # then the profiles with their last message, the window, the error count
    with django_assert_num_queries(8):
        response = client.get("/integrations/", headers={"HX-Request": "true"})
    assert len(response.context["rows"]) == 11


def test_the_error_queue_lists_failed_and_rejected_messages_with_filters(client, staff, his, failed):
    lis = source("LIS", "ZYY")
    inbound(profile=his, control_id="OK1")
    rejected = inbound(profile=lis, control_id="R1", status="rejected", message_type="ORU^R01")
    old = inbound(profile=his, control_id="OLD", status="failed", received_at=timezone.now() - dt.timedelta(days=10))
    client.force_login(staff["administrator"])

    everything = client.get("/integrations/errors/")
    of_his = client.get("/integrations/errors/", {"source": his.uuid})
    lab_results = client.get("/integrations/errors/", {"message_type": "oru^r01"})
    recent = client.get("/integrations/errors/", {"received_from": (timezone.localdate() - dt.timedelta(days=1))})

    def ids(response):
        return [message.control_id for message in response.context["page"].object_list]

    assert ids(everything) == ["R1", "C7", "OLD"] or ids(everything) == ["C7", "R1", "OLD"]
    assert ids(of_his) == ["C7", "OLD"]
    assert ids(lab_results) == ["R1"]
    assert sorted(ids(recent)) == ["C7", "R1"]
    assert "Reprocess all for HIS 中医院" in of_his.content.decode()
    assert str(rejected.uuid) in everything.content.decode()
    assert str(old.uuid) not in recent.content.decode()


def test_the_error_queue_is_paginated_and_takes_a_fixed_number_of_queries(
    client, staff, his, django_assert_num_queries
):
    now = timezone.now()
    for number in range(30):
        inbound(
            profile=his, control_id=f"F{number:02d}", status="failed", received_at=now - dt.timedelta(minutes=number)
        )
    client.force_login(staff["administrator"])
    client.get("/integrations/errors/")

    # session, user, permissions (2), role names for the header, the chosen source,
    # one page of messages with their source, the source choices of the filter
    with django_assert_num_queries(8):
        first = client.get("/integrations/errors/", {"source": his.uuid})
    second = client.get("/integrations/errors/", {"source": his.uuid, "page": 2})

    assert [m.control_id for m in first.context["page"].object_list] == [f"F{n:02d}" for n in range(25)]
    assert first.context["page"].has_next is True
    assert [m.control_id for m in second.context["page"].object_list] == [f"F{n:02d}" for n in range(25, 30)]
    assert second.context["page"].has_next is False


def test_a_message_page_shows_the_raw_message_a_segment_per_line_and_the_parsed_fields(client, staff, failed):
    client.force_login(staff["administrator"])

    response = client.get(f"/integrations/messages/{failed.uuid}/")

    html = response.content.decode()
    assert response.context["segments"][:2] == [
        "MSH|^~\\&amp;|HIS|ZYY|HCRM|ZYY|20250301083000||ADT^A01|C7|P|2.5|||||CHN|UNICODE UTF-8".replace("&amp;", "&"),
        "EVN|A01|20250301083000",
    ]
    assert (
        '<pre class="raw">MSH|^~\\&amp;|HIS|ZYY|HCRM|ZYY|20250301083000||ADT^A01|C7|P|2.5|||||CHN|UNICODE UTF-8\nEVN|'
        in html
    )
    assert "<code>PID-3</code>" in html
    assert "Patient identifier list" in html
    assert "Unknown sex code X" in html
    assert "PID^1^8" in html
    assert f'action="/integrations/messages/{failed.uuid}/reprocess/"' in html


def test_raw_content_is_escaped(client, staff, his):
    hostile = inbound(profile=his, raw=adt("<script>alert(1)</script>"), status="failed", control_id="X1")
    client.force_login(staff["administrator"])

    html = client.get(f"/integrations/messages/{hostile.uuid}/").content.decode()

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_fhir_payload_is_shown_as_indented_json(client, staff):
    payload = inbound(
        protocol="fhir",
        transport="http",
        raw=b'{"resourceType":"Patient","name":[{"text":"\xe7\x8e\x8b\xe8\x8a\xb3"}]}',
        status="failed",
        message_type="Patient",
        control_id="",
    )
    client.force_login(staff["administrator"])

    response = client.get(f"/integrations/messages/{payload.uuid}/")

    assert (
        response.context["json"]
        == '{\n  "resourceType": "Patient",\n  "name": [\n    {\n      "text": "王芳"\n    }\n  ]\n}'
    )
    assert response.context["can_reprocess"] is False


def test_without_the_raw_permission_the_message_page_hides_the_content(client, failed):
    watcher = UserFactory(username="watcher")
    watcher.user_permissions.add(Permission.objects.get(codename="view_inboundmessage"))
    client.force_login(watcher)

    response = client.get(f"/integrations/messages/{failed.uuid}/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "segments" not in response.context
    assert "张^三" not in html
    assert "M0007" not in html
    assert "Unknown sex code X" in html
    assert "reprocess/" not in html


def test_every_view_of_a_message_is_audited_with_whether_raw_content_was_shown(client, staff, failed):
    patient = PatientFactory()
    InboundMessage.objects.filter(pk=failed.pk).update(patient=patient)
    client.force_login(staff["administrator"])

    client.get(f"/integrations/messages/{failed.uuid}/")

    entry = AuditEntry.objects.get(event="view")
    assert entry.actor == staff["administrator"]
    assert entry.object_pk == str(failed.pk)
    assert entry.patient_uuid == patient.uuid
    assert entry.additional_data == {"record": "inbound_message", "control_id": "C7", "raw": True}


def test_search_finds_a_message_by_exact_control_id_or_identifier_and_is_audited(client, staff, his, failed):
    patient = PatientFactory()
    other = inbound(profile=his, control_id="C70", patient_identifiers="M00070 X1", patient=patient)
    client.force_login(staff["administrator"])

    by_control_id = client.get("/integrations/search/", {"control_id": "C7"})
    by_identifier = client.get("/integrations/search/", {"identifier": "M00070"})
    by_national_id = client.get("/integrations/search/", {"identifier": "110105194912310021"})
    by_prefix = client.get("/integrations/search/", {"identifier": "M000"})

    def ids(response):
        return [message.control_id for message in response.context["page"].object_list]

    assert ids(by_control_id) == ["C7"]
    assert ids(by_identifier) == ["C70"]
    assert ids(by_national_id) == ["C7"]
    assert ids(by_prefix) == []
    searches = list(AuditEntry.objects.filter(event="search").order_by("pk"))
    assert [entry.additional_data["identifier"] for entry in searches] == ["", "M00070", "110105194912310021", "M000"]
    assert searches[0].additional_data["control_id"] == "C7"
    assert searches[0].additional_data["messages"] == [str(failed.uuid)]
    assert searches[1].additional_data["patients"] == [str(patient.uuid)]
    assert all(entry.actor == staff["administrator"] for entry in searches)
    assert str(other.uuid) in by_identifier.content.decode()


def test_an_empty_search_asks_for_a_value_and_audits_nothing(client, staff):
    client.force_login(staff["administrator"])

    response = client.get("/integrations/search/", {"control_id": " ", "identifier": ""})

    assert response.context["page"] is None
    assert "Enter a control id or a patient identifier." in response.content.decode()
    assert not AuditEntry.objects.filter(event="search").exists()


def test_the_navigation_shows_integrations_only_to_those_who_may_see_them(client, staff):
    client.force_login(staff["administrator"])
    assert 'href="/integrations/"' in client.get("/").content.decode()

    client.force_login(staff["doctor"])
    assert 'href="/integrations/"' not in client.get("/").content.decode()
