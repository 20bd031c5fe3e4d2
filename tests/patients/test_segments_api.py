"""Segment, outreach-settings and statistics endpoints: permission matrix, scoping, masking, errors, query counts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from hcrm.models import AuditEntry
from patients.models import OutreachSettings, PatientStats, Segment
from tests.factories import EncounterFactory, PatientFactory, SegmentFactory, TagFactory

pytestmark = pytest.mark.django_db

SETTINGS_PATCH = {"daily_message_cap": 5, "rfm_recency_days": [15, 60, 120, 300]}
# action → (method, url, payload, status when allowed)
ACTIONS = {
    "list": ("get", "/api/v1/segments/", None, 200),
    "create": ("post", "/api/v1/segments/", {"name": "新分群", "filters": {"sexes": ["female"]}}, 201),
    "retrieve": ("get", "/api/v1/segments/{id}/", None, 200),
    "update": ("patch", "/api/v1/segments/{id}/", {"name": "改名"}, 200),
    "delete": ("delete", "/api/v1/segments/{id}/", None, 204),
    "count": ("get", "/api/v1/segments/{id}/count/", None, 200),
    "preview": ("post", "/api/v1/segments/preview/", {"provinces": ["北京市"]}, 200),
    "members": ("get", "/api/v1/segments/{id}/members/", None, 200),
    "export": ("get", "/api/v1/segments/{id}/export/?format=csv", None, 200),
    "settings": ("get", "/api/v1/outreach-settings/", None, 200),
    "settings_update": ("patch", "/api/v1/outreach-settings/", SETTINGS_PATCH, 200),
    "recompute": ("post", "/api/v1/patient-stats/recompute/", {}, 202),
}
READ_SEGMENTS = {"list", "retrieve", "count", "preview"}
USE_SEGMENTS = READ_SEGMENTS | {"members", "export"}
ALLOWED = {
    "doctor": USE_SEGMENTS | {"create"},
    "nurse": USE_SEGMENTS,
    "agent": USE_SEGMENTS | {"create"},
    "department_head": USE_SEGMENTS | {"create", "update", "delete"},
    "administrator": set(ACTIONS),
    "analyst": READ_SEGMENTS,
}


@pytest.fixture
def segment(db, patient):
    return SegmentFactory(name="北京", filters={"provinces": ["北京市"]})


def _database():
    """Everything a refused call must leave as it was."""
    return (
        list(Segment.objects.order_by("pk").values()),
        list(OutreachSettings.objects.values()),
        PatientStats.objects.count(),
        AuditEntry.objects.count(),
    )


def _call(client, action, segment):
    method, url, payload, _status = ACTIONS[action]
    return getattr(client, method)(url.format(id=segment.uuid), payload, format="json")


@pytest.mark.parametrize("action", list(ACTIONS))
def test_anonymous_callers_get_401_and_change_nothing(api, staff, segment, action):
    before = _database()

    response = _call(api, action, segment)

    assert response.status_code == 401
    assert _database() == before


@pytest.mark.parametrize(
    ("role", "action"),
    [(role, action) for role, allowed in ALLOWED.items() for action in ACTIONS if action not in allowed],
)
def test_roles_without_the_permission_get_403_and_change_nothing(api, staff, segment, role, action):
    before = _database()

    response = _call(api.as_user(staff[role]), action, segment)

    assert response.status_code == 403, response.content
    assert response.json()["errors"][0]["code"] == "permission_denied"
    assert _database() == before


@pytest.mark.parametrize(
    ("role", "action"), [(role, action) for role, allowed in ALLOWED.items() for action in sorted(allowed)]
)
def test_roles_with_the_permission_are_served(api, staff, segment, role, action):
    response = _call(api.as_user(staff[role]), action, segment)

    assert response.status_code == ACTIONS[action][3], response.content


def test_other_department_sees_none_of_the_segments_patients(api, staff, patient, acupuncture):
    PatientFactory(name="针灸病人", province="北京市", departments=[acupuncture])
    segment = SegmentFactory(filters={"provinces": ["北京市"]})

    own = api.as_user(staff["doctor"]).get(f"/api/v1/segments/{segment.uuid}/members/").json()
    other = api.as_user(staff["other_doctor"]).get(f"/api/v1/segments/{segment.uuid}/members/").json()
    count = api.as_user(staff["other_doctor"]).get(f"/api/v1/segments/{segment.uuid}/count/").json()
    export = api.as_user(staff["other_doctor"]).get(f"/api/v1/segments/{segment.uuid}/export/?format=csv")

    assert [row["name"] for row in own["results"]] == ["张三"]
    assert [row["name"] for row in other["results"]] == ["针灸病人"]
    assert count["count"] == 2  # counting is over the whole hospital; names are not
    assert "张三" not in export.content.decode("utf-8-sig")


def test_members_are_masked_for_a_doctor_and_complete_for_an_administrator(api, staff, patient, segment):
    doctor = api.as_user(staff["doctor"]).get(f"/api/v1/segments/{segment.uuid}/members/").json()["results"][0]
    admin = api.as_user(staff["administrator"]).get(f"/api/v1/segments/{segment.uuid}/members/").json()["results"][0]

    assert doctor["national_id"] != patient.national_id
    assert doctor["national_id"].startswith(patient.national_id[:1]) and "*" in doctor["national_id"]
    assert doctor["sensitive_revealed"] is False
    assert admin["national_id"] == patient.national_id
    assert admin["sensitive_revealed"] is True


def test_export_is_masked_per_role_and_audited(api, staff, patient, segment):
    masked = api.as_user(staff["doctor"]).get(f"/api/v1/segments/{segment.uuid}/export/?format=csv")
    full = api.as_user(staff["administrator"]).get(f"/api/v1/segments/{segment.uuid}/export/?format=xlsx")

    assert masked["Content-Type"] == "text/csv; charset=utf-8"
    assert patient.national_id not in masked.content.decode("utf-8-sig")
    assert "张三" in masked.content.decode("utf-8-sig")
    assert full["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    entries = list(
        AuditEntry.objects.filter(event="export").order_by("pk").values_list("actor__username", "additional_data")
    )
    assert entries == [
        ("doctor", {"segment": str(segment.uuid), "format": "csv", "rows": 1}),
        ("administrator", {"segment": str(segment.uuid), "format": "xlsx", "rows": 1}),
    ]


def test_export_refuses_an_unknown_format(api, staff, segment):
    response = api.as_user(staff["doctor"]).get(f"/api/v1/segments/{segment.uuid}/export/?format=pdf")

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "format"


def test_members_are_audited_with_the_patients_on_the_page(api, staff, patient, segment):
    api.as_user(staff["nurse"]).get(f"/api/v1/segments/{segment.uuid}/members/")

    entry = AuditEntry.objects.get(event="list")
    assert (entry.actor, entry.additional_data) == (
        staff["nurse"],
        {"segment": str(segment.uuid), "patients": [str(patient.uuid)]},
    )


def test_create_returns_the_canonical_spec(api, staff, internal_medicine):
    TagFactory(name="高血压")

    response = api.as_user(staff["doctor"]).post(
        "/api/v1/segments/",
        {
            "name": "高血压",
            "description": "随访对象",
            "filters": {"tags": ["高血压"], "diagnosis_prefixes": ["i10"], "departments": ["NK"], "age_min": 50},
        },
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert body["filters"] == {"departments": ["NK"], "diagnosis_prefixes": ["I10"], "age_min": 50, "tags": ["高血压"]}
    assert (body["name"], body["owner"], body["last_count"]) == ("高血压", "doctor", None)
    assert Segment.objects.get(uuid=body["id"]).owner == staff["doctor"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "x", "filters": {"age_min": 70, "age_max": 60}}, "filters.age_max"),
        ({"name": "x", "filters": {"sexes": ["robot"]}}, "filters.sexes.0"),
        ({"name": "x", "filters": {"departments": ["NOPE"]}}, "filters.departments"),
        ({"name": "x", "filters": {"age": 3}}, "filters.age"),
        ({"name": "x", "filters": {"consent": {"purpose": "marketing", "channel": "sms"}}}, "filters.consent.granted"),
        ({"filters": {}}, "name"),
    ],
)
def test_create_errors_name_the_field_and_write_nothing(api, staff, payload, field):
    before = _database()

    response = api.as_user(staff["doctor"]).post("/api/v1/segments/", payload, format="json")

    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert _database() == before


def test_an_error_keeps_its_code(api, staff):
    response = api.as_user(staff["doctor"]).post(
        "/api/v1/segments/", {"name": "x", "filters": {"sexes": ["robot"]}}, format="json"
    )

    assert response.json()["errors"] == [
        {"field": "filters.sexes.0", "code": "invalid_choice", "message": '"robot" is not a valid choice.'}
    ]


def test_a_taken_name_is_refused(api, staff, segment):
    response = api.as_user(staff["doctor"]).post("/api/v1/segments/", {"name": "北京"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "name", "code": "duplicate", "message": "Another segment already has this name."}
    ]


def test_update_changes_filters_and_forgets_the_count(api, staff, segment):
    Segment.objects.filter(pk=segment.pk).update(last_count=7, last_counted_at=timezone.now())

    response = api.as_user(staff["department_head"]).patch(
        f"/api/v1/segments/{segment.uuid}/", {"filters": {"sexes": ["male"]}}, format="json"
    )

    assert response.status_code == 200
    assert (response.json()["filters"], response.json()["last_count"], response.json()["name"]) == (
        {"sexes": ["male"]},
        None,
        "北京",
    )


def test_count_and_preview(api, staff, patient, segment):
    PatientFactory(name="北京老人", province="北京市", birth_date=dt.date(1940, 1, 1))

    count = api.as_user(staff["analyst"]).get(f"/api/v1/segments/{segment.uuid}/count/").json()
    preview = api.as_user(staff["analyst"]).post(
        "/api/v1/segments/preview/", {"provinces": ["北京市"], "age_min": 80}, format="json"
    )
    bad = api.as_user(staff["analyst"]).post("/api/v1/segments/preview/", {"recency_scores": [0]}, format="json")

    assert count["count"] == 2
    segment.refresh_from_db()
    assert segment.last_count == 2
    assert preview.json() == {"count": 1}
    assert bad.status_code == 400
    assert [error["field"] for error in bad.json()["errors"]] == ["recency_scores.0"]


def test_settings_read_and_update(api, staff):
    client = api.as_user(staff["administrator"])

    before = client.get("/api/v1/outreach-settings/").json()
    after = client.patch("/api/v1/outreach-settings/", SETTINGS_PATCH, format="json").json()

    assert (before["daily_message_cap"], before["rfm_recency_days"], before["quiet_hours_start"]) == (
        3,
        [30, 90, 180, 365],
        "21:00:00",
    )
    assert (after["daily_message_cap"], after["rfm_recency_days"], after["updated_by"]) == (
        5,
        [15, 60, 120, 300],
        "administrator",
    )


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"rfm_recency_days": [30, 20, 100, 200]}, "rfm_recency_days"),
        ({"rfm_frequency_visits": [1, 2, 3]}, "rfm_frequency_visits"),
        ({"rfm_monetary_yuan": [0, 100, 200, 300]}, "rfm_monetary_yuan"),
        ({"daily_message_cap": 0}, "daily_message_cap"),
        ({"quiet_hours_end": "8 o'clock"}, "quiet_hours_end"),
    ],
)
def test_settings_errors_name_the_field_and_change_nothing(api, staff, payload, field):
    client = api.as_user(staff["administrator"])
    client.get("/api/v1/outreach-settings/")
    before = _database()

    response = client.patch("/api/v1/outreach-settings/", payload, format="json")

    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert _database() == before


def test_recompute_named_patients_now(api, staff, patient):
    EncounterFactory(patient=patient, started_at=timezone.now() - dt.timedelta(days=3))

    response = api.as_user(staff["administrator"]).post(
        "/api/v1/patient-stats/recompute/", {"patients": [str(patient.uuid)]}, format="json"
    )

    assert response.json() == {"recomputed": 1}
    assert PatientStats.objects.get(patient=patient).rfm_group == "new"


def test_recompute_everyone_is_queued(api, staff, django_capture_on_commit_callbacks):
    from django.core.cache import cache

    from patients.tasks.segments import RUN_KEY

    cache.delete(RUN_KEY)
    with django_capture_on_commit_callbacks() as callbacks:
        response = api.as_user(staff["administrator"]).post("/api/v1/patient-stats/recompute/", {}, format="json")

    assert (response.status_code, response.json(), len(callbacks)) == (202, {"queued": True}, 1)


# --- Query counts -----------------------------------------------------------------------------------


@pytest.fixture
def warm_caches():
    from django.contrib.contenttypes.models import ContentType

    ContentType.objects.get_for_model(AuditEntry)
    ContentType.objects.get_for_model(Segment)


# token and user, user permissions, group permissions, the page (with owners)
SEGMENT_LIST_QUERIES = 4
# token and user, user permissions, group permissions, the segment, departments, break-the-glass grants,
# the page, its tags, the audit entry
MEMBER_LIST_QUERIES = 9


@pytest.mark.parametrize("rows", [3, 30])
def test_segment_list_query_count_does_not_grow_with_rows(api, staff, warm_caches, django_assert_num_queries, rows):
    for _ in range(rows):
        SegmentFactory(owner=staff["doctor"])
    client = api.as_user(staff["doctor"])

    with django_assert_num_queries(SEGMENT_LIST_QUERIES):
        response = client.get("/api/v1/segments/", {"page_size": 50})

    assert len(response.json()["results"]) == rows


@pytest.mark.parametrize("rows", [3, 30])
def test_member_list_query_count_does_not_grow_with_rows(
    api, staff, internal_medicine, warm_caches, django_assert_num_queries, rows
):
    tag = TagFactory(name="慢病")
    for member in PatientFactory.create_batch(rows, province="北京市", departments=[internal_medicine]):
        member.tags.add(tag)
    segment = SegmentFactory(filters={"provinces": ["北京市"]})
    client = api.as_user(staff["doctor"])

    with django_assert_num_queries(MEMBER_LIST_QUERIES):
        response = client.get(f"/api/v1/segments/{segment.uuid}/members/", {"page_size": 50})

    assert len(response.json()["results"]) == rows


def test_a_granted_permission_opens_members_to_an_analyst(api, staff, patient, segment):
    staff["analyst"].user_permissions.add(Permission.objects.get(codename="view_segment_members"))

    response = api.as_user(staff["analyst"]).get(f"/api/v1/segments/{segment.uuid}/members/")

    # Analysts belong to internal medicine in these fixtures, so the member is theirs to see.
    assert [row["name"] for row in response.json()["results"]] == ["张三"]
