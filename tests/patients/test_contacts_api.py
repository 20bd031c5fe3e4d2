"""/api/v1/contacts/: list, log, read, play the recording, review; permissions, filters, audit, query counts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from hcrm.models import AuditEntry
from patients.models import ContactEntry, ContactReview
from patients.services.contacts import contact_record
from tests.factories import ContactEntryFactory, PatientFactory, UserFactory, wav_bytes, wav_recording

pytestmark = pytest.mark.django_db

CALL = {"channel": "phone", "direction": "out", "purpose": "follow_up", "outcome": "reached"}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def call(staff, patient):
    """The internal-medicine nurse's recorded call to the internal-medicine patient."""
    return contact_record(
        actor=staff["nurse"],
        patient=patient,
        **CALL,
        occurred_at=timezone.now() - dt.timedelta(hours=1),
        duration_seconds=95,
        summary="提醒复诊",
        recording=wav_recording(),
    )


def _snapshot(media):
    files = sorted(str(path) for path in media.rglob("*") if path.is_file()) if media.exists() else []
    return (
        list(ContactEntry.objects.order_by("pk").values()),
        list(ContactReview.objects.order_by("pk").values()),
        AuditEntry.objects.count(),
        files,
    )


def _calls(call, patient):
    """Every action of the contacts API: (method, url, payload, format)."""
    upload = {**CALL, "patient": str(patient.uuid), "recording": wav_recording()}
    return [
        ("get", "/api/v1/contacts/", None, None),
        ("get", f"/api/v1/contacts/{call.uuid}/", None, None),
        ("get", f"/api/v1/contacts/{call.uuid}/recording/", None, None),
        ("post", "/api/v1/contacts/", {**CALL, "patient": str(patient.uuid)}, "json"),
        ("post", "/api/v1/contacts/", upload, "multipart"),
        ("post", f"/api/v1/contacts/{call.uuid}/reviews/", {"score": 5}, "json"),
    ]


def _run(client, call, patient):
    return [
        getattr(client, method)(url, data, format=data_format) if data is not None else getattr(client, method)(url)
        for method, url, data, data_format in _calls(call, patient)
    ]


# --- Permission matrix ---------------------------------------------------------------------------------


def test_anonymous_callers_get_401_and_change_nothing(api, call, patient, media):
    before = _snapshot(media)

    assert [response.status_code for response in _run(api, call, patient)] == [401] * 6
    assert _snapshot(media) == before


def test_analysts_get_403_and_change_nothing(api, staff, call, patient, media):
    client = api.as_user(staff["analyst"])
    before = _snapshot(media)

    assert [response.status_code for response in _run(client, call, patient)] == [403] * 6
    assert _snapshot(media) == before


def test_integration_keys_have_no_access_to_the_contact_log(api, call, patient, media):
    from hcrm.models import IntegrationKey

    _key, secret = IntegrationKey.objects.create_key(name="HIS", scopes=["patients.read", "patients.write"])
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")
    before = _snapshot(media)

    assert [response.status_code for response in _run(api, call, patient)] == [403] * 6
    assert _snapshot(media) == before


def test_another_departments_reviewer_can_neither_see_nor_play_nor_review(api, call, patient, acupuncture, media):
    head = UserFactory(roles=["department_head"], departments=[acupuncture])
    before = _snapshot(media)

    listed, retrieved, played, created, uploaded, reviewed = _run(api.as_user(head), call, patient)

    assert listed.json()["results"] == []
    assert (retrieved.status_code, played.status_code, reviewed.status_code) == (404, 404, 404)
    # a patient of another department is answered like one that does not exist
    assert created.json()["errors"] == [
        {"field": "patient", "code": "does_not_exist", "message": f"Object with uuid={patient.uuid} does not exist."}
    ]
    assert uploaded.status_code == 400
    after = _snapshot(media)
    assert after[:2] == before[:2] and after[3] == before[3]


def test_a_reviewer_who_sees_the_patient_still_cannot_play_or_review_another_departments_call(
    api, call, patient, acupuncture, media
):
    # given the patient is cared for by acupuncture too, so its head sees the patient and the call
    patient.departments.add(acupuncture)
    head = UserFactory(roles=["department_head"], departments=[acupuncture])
    client = api.as_user(head)
    before = _snapshot(media)

    retrieved = client.get(f"/api/v1/contacts/{call.uuid}/")
    played = client.get(f"/api/v1/contacts/{call.uuid}/recording/")
    reviewed = client.post(f"/api/v1/contacts/{call.uuid}/reviews/", {"score": 1}, format="json")

    assert retrieved.status_code == 200
    assert (retrieved.json()["recording_url"], retrieved.json()["reviews"]) == (None, None)
    assert (played.status_code, reviewed.status_code) == (403, 403)
    assert ContactReview.objects.count() == 0
    assert not AuditEntry.objects.filter(additional_data__part="recording").exists()
    assert _snapshot(media)[:2] == before[:2]


def test_the_department_head_may_do_everything(api, staff, call, patient, media):
    client = api.as_user(staff["department_head"])

    listed, retrieved, played, created, uploaded, reviewed = _run(client, call, patient)

    assert [row["id"] for row in listed.json()["results"]] == [str(call.uuid)]
    assert retrieved.json()["recording_url"] == f"http://testserver/api/v1/contacts/{call.uuid}/recording/"
    assert played.status_code == 200
    assert (created.status_code, uploaded.status_code, reviewed.status_code) == (201, 201, 201)


def test_the_api_does_not_change_or_delete_contacts(api, staff, call, media):
    client = api.as_user(staff["administrator"])
    before = _snapshot(media)
    url = f"/api/v1/contacts/{call.uuid}/"

    statuses = [
        client.patch(url, {"summary": "改"}, format="json").status_code,
        client.put(url, {**CALL}, format="json").status_code,
        client.delete(url).status_code,
    ]

    assert statuses == [405, 405, 405]
    assert _snapshot(media)[:2] == before[:2]


# --- Logging ---------------------------------------------------------------------------------------------


def test_a_nurse_logs_a_call_as_json(api, staff, patient, internal_medicine):
    nurse = staff["nurse"]
    at = (timezone.now() - dt.timedelta(minutes=10)).replace(microsecond=0)

    response = api.as_user(nurse).post(
        "/api/v1/contacts/",
        {
            **CALL,
            "patient": str(patient.uuid),
            "occurred_at": at.isoformat(),
            "duration_seconds": 240,
            "summary": "已预约",
        },
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    contact = ContactEntry.objects.get()
    assert body["id"] == str(contact.uuid)
    assert {key: body[key] for key in ("patient", "patient_name", "staff", "department", "duration_seconds")} == {
        "patient": str(patient.uuid),
        "patient_name": "张三",
        "staff": {"id": str(nurse.uuid), "name": str(nurse)},
        "department": "NK",
        "duration_seconds": 240,
    }
    assert (body["has_recording"], body["recording_url"], body["reviews"], body["message"]) == (False, None, [], None)
    assert (contact.staff, contact.department, contact.occurred_at, contact.summary) == (
        nurse,
        internal_medicine,
        at,
        "已预约",
    )
    created = AuditEntry.objects.get(event="create", content_type__model="contactentry")
    assert (created.actor, created.patient_uuid, created.client) == (nurse, patient.uuid, "api")


def test_a_call_with_its_recording_is_logged_as_multipart(api, staff, patient, media):
    response = api.as_user(staff["nurse"]).post(
        "/api/v1/contacts/",
        {**CALL, "patient": str(patient.uuid), "duration_seconds": "60", "recording": wav_recording("rec.wav")},
        format="multipart",
    )

    assert response.status_code == 201
    contact = ContactEntry.objects.get()
    assert response.json()["has_recording"] is True
    assert response.json()["recording_url"].endswith(f"/api/v1/contacts/{contact.uuid}/recording/")
    assert (media / contact.recording.name).read_bytes() == wav_bytes()


def test_occurred_at_defaults_to_now(api, staff, patient):
    response = api.as_user(staff["agent"]).post(
        "/api/v1/contacts/", {**CALL, "patient": str(patient.uuid)}, format="json"
    )

    assert abs(ContactEntry.objects.get().occurred_at - timezone.now()) < dt.timedelta(seconds=5)
    assert response.json()["staff"]["id"] == str(staff["agent"].uuid)


@pytest.mark.parametrize(
    ("change", "data_format", "error"),
    [
        ({"duration_seconds": -1}, "json", ("duration_seconds", "min_value")),
        ({"outcome": "vanished"}, "json", ("outcome", "invalid_choice")),
        ({"channel": "pigeon"}, "json", ("channel", "invalid_choice")),
        ({"direction": "sideways"}, "json", ("direction", "invalid_choice")),
        ({"purpose": None}, "json", ("purpose", "null")),
        ({"occurred_at": "yesterday"}, "json", ("occurred_at", "invalid")),
        ({"patient": "not-a-uuid"}, "json", ("patient", "invalid")),
        (
            {"recording": SimpleUploadedFile("call.mp3", b"%PDF-1.7\n" + b"0" * 200)},
            "multipart",
            ("recording", "file_content"),
        ),
        ({"recording": SimpleUploadedFile("call.exe", b"MZ" + b"0" * 200)}, "multipart", ("recording", "file_type")),
        ({"recording": SimpleUploadedFile("call.wav", b"")}, "multipart", ("recording", "empty")),
    ],
)
def test_invalid_input_is_refused_naming_the_field_and_nothing_is_saved(
    api, staff, patient, media, change, data_format, error
):
    before = _snapshot(media)

    response = api.as_user(staff["nurse"]).post(
        "/api/v1/contacts/", {**CALL, "patient": str(patient.uuid), **change}, format=data_format
    )

    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [error]
    assert _snapshot(media) == before


def test_a_contact_in_the_future_is_refused(api, staff, patient, media):
    future = (timezone.now() + dt.timedelta(hours=2)).isoformat()

    response = api.as_user(staff["nurse"]).post(
        "/api/v1/contacts/", {**CALL, "patient": str(patient.uuid), "occurred_at": future}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "occurred_at", "code": "future", "message": "A contact cannot be logged in the future."}
    ]
    assert ContactEntry.objects.count() == 0


# --- Listing, filters and what each caller sees -------------------------------------------------------------


@pytest.fixture
def log(staff, patient, internal_medicine):
    now = timezone.now()
    return {
        "nurse_call": ContactEntryFactory(
            patient=patient,
            staff=staff["nurse"],
            department=internal_medicine,
            occurred_at=now - dt.timedelta(days=1),
        ),
        "nurse_sms": ContactEntryFactory(
            patient=PatientFactory(departments=[internal_medicine]),
            staff=staff["nurse"],
            department=internal_medicine,
            channel="sms",
            outcome="sent",
            purpose="appointment",
            occurred_at=now - dt.timedelta(days=3),
        ),
        "agent_call": ContactEntryFactory(
            patient=patient,
            staff=staff["agent"],
            department=internal_medicine,
            direction="in",
            purpose="inquiry",
            outcome="reached",
            occurred_at=now - dt.timedelta(days=5),
        ),
        "system_sms": ContactEntryFactory(
            patient=patient, staff=None, department=None, channel="sms", outcome="delivered", occurred_at=now
        ),
    }


def _listed(response, log) -> list[str]:
    names = {str(contact.uuid): name for name, contact in log.items()}
    return [names[row["id"]] for row in response.json()["results"]]


def test_staff_list_their_own_contacts_newest_first(api, staff, log):
    response = api.as_user(staff["nurse"]).get("/api/v1/contacts/")

    assert _listed(response, log) == ["nurse_call", "nurse_sms"]
    listed = AuditEntry.objects.get(event="list")
    assert listed.additional_data == {
        "record": "contactentry",
        "patients": sorted({str(log["nurse_call"].patient.uuid), str(log["nurse_sms"].patient.uuid)}),
    }
    assert listed.patient_uuid is None


def test_reviewers_list_their_departments_staff_contacts(api, staff, log):
    response = api.as_user(staff["department_head"]).get("/api/v1/contacts/")

    assert _listed(response, log) == ["nurse_call", "nurse_sms", "agent_call"]


def test_a_patients_contacts_are_listed_to_whoever_sees_the_patient_and_the_read_is_audited(api, staff, log, patient):
    response = api.as_user(staff["doctor"]).get("/api/v1/contacts/", {"patient": str(patient.uuid)})

    assert _listed(response, log) == ["system_sms", "nurse_call", "agent_call"]
    listed = AuditEntry.objects.get(event="list")
    assert (listed.actor, listed.patient_uuid, listed.additional_data["patients"]) == (
        staff["doctor"],
        patient.uuid,
        [str(patient.uuid)],
    )
    # the same doctor without naming a patient: only their own, which is none
    assert api.get("/api/v1/contacts/").json()["results"] == []


def test_a_patient_of_another_department_lists_nothing(api, staff, log, patient):
    response = api.as_user(staff["other_doctor"]).get("/api/v1/contacts/", {"patient": str(patient.uuid)})

    assert (response.status_code, response.json()["results"]) == (200, [])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"channel": "sms"}, ["system_sms", "nurse_sms"]),
        ({"purpose": "inquiry"}, ["agent_call"]),
        ({"outcome": "sent"}, ["nurse_sms"]),
        ({"direction": "in"}, ["agent_call"]),
        ({"department": "NK"}, ["nurse_call", "nurse_sms", "agent_call"]),
        ({"reviewed": "true"}, ["nurse_sms"]),
        ({"reviewed": "false"}, ["system_sms", "nurse_call", "agent_call"]),
        ({"ordering": "occurred_at"}, ["agent_call", "nurse_sms", "nurse_call", "system_sms"]),
    ],
)
def test_filters(api, staff, log, query, expected):
    from tests.factories import ContactReviewFactory

    ContactReviewFactory(contact=log["nurse_sms"], reviewer=staff["department_head"])

    response = api.as_user(staff["administrator"]).get("/api/v1/contacts/", query)

    assert _listed(response, log) == expected


def test_filter_by_staff_member_and_time(api, staff, log):
    now = timezone.now()
    client = api.as_user(staff["administrator"])

    by_staff = client.get("/api/v1/contacts/", {"staff": str(staff["agent"].uuid)})
    window = client.get(
        "/api/v1/contacts/",
        {
            "occurred_at__gte": (now - dt.timedelta(days=4)).isoformat(),
            "occurred_at__lte": (now - dt.timedelta(hours=12)).isoformat(),
        },
    )

    assert _listed(by_staff, log) == ["agent_call"]
    assert _listed(window, log) == ["nurse_call", "nurse_sms"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"outcome": "vanished"}, "outcome"),
        ({"channel": "pigeon"}, "channel"),
        ({"occurred_at__gte": "last week"}, "occurred_at__gte"),
        ({"staff": "nobody"}, "staff"),
        ({"patient": "nobody"}, "patient"),
        ({"page": "0"}, "page"),
    ],
)
def test_invalid_filters_name_the_parameter(api, staff, log, query, field):
    response = api.as_user(staff["administrator"]).get("/api/v1/contacts/", query)

    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == [field]


def test_lists_are_paginated(api, staff, log):
    client = api.as_user(staff["administrator"])

    first = client.get("/api/v1/contacts/", {"page_size": 3}).json()
    second = client.get(first["next"]).json()

    assert (first["count"], first["count_is_exact"], len(first["results"])) == (4, True, 3)
    assert (len(second["results"]), second["next"]) == (1, None)
    assert second["previous"] is not None


def test_a_retrieved_contact_is_audited_as_a_view_of_the_patient(api, staff, log, patient):
    contact = log["agent_call"]

    response = api.as_user(staff["doctor"]).get(f"/api/v1/contacts/{contact.uuid}/")

    assert response.json()["summary"] == contact.summary
    viewed = AuditEntry.objects.get(event="view")
    assert (viewed.actor, viewed.patient_uuid, viewed.object_pk) == (staff["doctor"], patient.uuid, str(contact.pk))


def test_reviews_are_shown_to_the_staff_member_and_reviewers_not_to_everyone(api, staff, log):
    from tests.factories import ContactReviewFactory

    contact = log["nurse_call"]
    ContactReviewFactory(contact=contact, reviewer=staff["department_head"], score=3, comment="语速偏快")
    url = f"/api/v1/contacts/{contact.uuid}/"

    seen = {user: api.as_user(staff[user]).get(url).json()["reviews"] for user in ("nurse", "doctor", "agent")}

    assert [(r["reviewer"]["id"], r["score"], r["comment"]) for r in seen["nurse"]] == [
        (str(staff["department_head"].uuid), 3, "语速偏快")
    ]
    assert (seen["doctor"], seen["agent"]) == (None, None)


# --- Query counts ------------------------------------------------------------------------------------------


@pytest.fixture
def warm_caches():
    from django.contrib.contenttypes.models import ContentType

    ContentType.objects.get_for_model(AuditEntry)


# token and user, user permissions, group permissions, departments, the page, reviews, the audit entry
CONTACT_LIST_QUERIES = 7
# ... and, naming a patient, the caller's break-the-glass grants and the patient
PATIENT_CONTACT_LIST_QUERIES = 9


@pytest.mark.parametrize("rows", [3, 30])
def test_contact_list_query_count_does_not_grow_with_rows(
    api, staff, patient, internal_medicine, warm_caches, django_assert_num_queries, rows
):
    from tests.factories import ContactReviewFactory

    for contact in ContactEntryFactory.create_batch(rows, patient=patient, department=internal_medicine):
        ContactReviewFactory(contact=contact, reviewer=staff["administrator"])
    client = api.as_user(staff["department_head"])

    with django_assert_num_queries(CONTACT_LIST_QUERIES):
        response = client.get("/api/v1/contacts/", {"page_size": 50})

    assert len(response.json()["results"]) == rows
    assert all(len(row["reviews"]) == 1 for row in response.json()["results"])


@pytest.mark.parametrize("rows", [3, 30])
def test_patient_contact_list_query_count_does_not_grow_with_rows(
    api, staff, patient, warm_caches, django_assert_num_queries, rows
):
    ContactEntryFactory.create_batch(rows, patient=patient)
    client = api.as_user(staff["doctor"])

    with django_assert_num_queries(PATIENT_CONTACT_LIST_QUERIES):
        response = client.get("/api/v1/contacts/", {"patient": str(patient.uuid), "page_size": 50})

    assert len(response.json()["results"]) == rows


# --- Recordings --------------------------------------------------------------------------------------------


def _content(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_the_recording_streams_to_the_staff_member_who_logged_it_and_is_audited(api, staff, call, patient):
    response = api.as_user(staff["nurse"]).get(f"/api/v1/contacts/{call.uuid}/recording/", HTTP_ACCEPT="audio/*")

    assert response.status_code == 200
    assert (response["Content-Type"], response["Accept-Ranges"], response["Cache-Control"]) == (
        "audio/wav",
        "bytes",
        "private, no-store",
    )
    assert response["Content-Length"] == str(len(wav_bytes()))
    assert _content(response) == wav_bytes()
    played = AuditEntry.objects.get(event="view")
    assert (played.actor, played.patient_uuid, played.additional_data, played.client) == (
        staff["nurse"],
        patient.uuid,
        {"part": "recording"},
        "api",
    )


@pytest.mark.parametrize("user", ["department_head", "administrator"])
def test_reviewers_and_administrators_play_recordings(api, staff, call, user):
    response = api.as_user(staff[user]).get(f"/api/v1/contacts/{call.uuid}/recording/")

    assert (response.status_code, _content(response)) == (200, wav_bytes())


@pytest.mark.parametrize("user", ["doctor", "agent"])
def test_staff_who_see_the_patient_read_the_summary_but_cannot_play_the_recording(api, staff, call, user, media):
    client = api.as_user(staff[user])

    contact = client.get(f"/api/v1/contacts/{call.uuid}/").json()
    played = client.get(f"/api/v1/contacts/{call.uuid}/recording/")

    assert (contact["summary"], contact["has_recording"], contact["recording_url"]) == ("提醒复诊", True, None)
    assert played.status_code == 403
    assert not AuditEntry.objects.filter(additional_data__part="recording").exists()


def test_a_range_is_answered_with_that_part_and_audited_with_it(api, staff, call):
    size = len(wav_bytes())

    response = api.as_user(staff["nurse"]).get(f"/api/v1/contacts/{call.uuid}/recording/", HTTP_RANGE="bytes=100-199")

    assert response.status_code == 206
    assert (response["Content-Range"], response["Content-Length"]) == (f"bytes 100-199/{size}", "100")
    assert _content(response) == wav_bytes()[100:200]
    assert AuditEntry.objects.get(event="view").additional_data == {"part": "recording", "range": "100-199"}


def test_a_suffix_range_is_the_end_of_the_file(api, staff, call):
    size = len(wav_bytes())

    response = api.as_user(staff["nurse"]).get(f"/api/v1/contacts/{call.uuid}/recording/", HTTP_RANGE="bytes=-10")

    assert (response.status_code, response["Content-Range"]) == (206, f"bytes {size - 10}-{size - 1}/{size}")
    assert _content(response) == wav_bytes()[-10:]


def test_a_range_of_the_whole_file_is_answered_200_as_browsers_start_with(api, staff, call):
    response = api.as_user(staff["nurse"]).get(f"/api/v1/contacts/{call.uuid}/recording/", HTTP_RANGE="bytes=0-")

    assert (response.status_code, response["Accept-Ranges"]) == (200, "bytes")
    assert _content(response) == wav_bytes()


def test_a_range_past_the_end_is_416_and_not_audited(api, staff, call):
    size = len(wav_bytes())

    response = api.as_user(staff["nurse"]).get(f"/api/v1/contacts/{call.uuid}/recording/", HTTP_RANGE=f"bytes={size}-")

    assert (response.status_code, response["Content-Range"]) == (416, f"bytes */{size}")
    assert not AuditEntry.objects.filter(event="view").exists()


def test_a_range_for_another_version_gets_the_whole_file(api, staff, call):
    client = api.as_user(staff["nurse"])
    etag = client.get(f"/api/v1/contacts/{call.uuid}/recording/")["ETag"]
    url = f"/api/v1/contacts/{call.uuid}/recording/"

    same = client.get(url, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=etag)
    other = client.get(url, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"something-else"')

    assert (same.status_code, len(_content(same))) == (206, 10)
    assert (other.status_code, len(_content(other))) == (200, len(wav_bytes()))


def test_a_contact_without_recording_has_none_to_play(api, staff, patient):
    contact = contact_record(actor=staff["nurse"], patient=patient, **CALL)

    response = api.as_user(staff["nurse"]).get(f"/api/v1/contacts/{contact.uuid}/recording/")

    assert (response.status_code, response.json()["errors"][0]["code"]) == (404, "not_found")


def test_a_recording_missing_from_disk_is_404(api, staff, call, media):
    (media / call.recording.name).unlink()

    assert api.as_user(staff["nurse"]).get(f"/api/v1/contacts/{call.uuid}/recording/").status_code == 404


# --- Reviews -----------------------------------------------------------------------------------------------


def test_a_department_head_reviews_and_then_revises(api, staff, call, patient):
    client = api.as_user(staff["department_head"])
    url = f"/api/v1/contacts/{call.uuid}/reviews/"

    created = client.post(url, {"score": 3, "comment": "未确认身份"}, format="json")
    revised = client.post(url, {"score": 4, "comment": "已确认"}, format="json")

    assert (created.status_code, revised.status_code) == (201, 200)
    assert created.json()["id"] == revised.json()["id"]
    assert {key: revised.json()[key] for key in ("score", "comment")} == {"score": 4, "comment": "已确认"}
    assert revised.json()["reviewer"] == {
        "id": str(staff["department_head"].uuid),
        "name": str(staff["department_head"]),
    }
    assert list(ContactReview.objects.values_list("score", flat=True)) == [4]
    events = list(
        AuditEntry.objects.filter(content_type__model="contactreview").order_by("id").values_list("event", "actor")
    )
    assert events == [("create", staff["department_head"].pk), ("update", staff["department_head"].pk)]
    assert AuditEntry.objects.filter(content_type__model="contactreview", patient_uuid=patient.uuid).count() == 2


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"score": 0}, ("score", "min_value")),
        ({"score": 6}, ("score", "max_value")),
        ({"score": "good"}, ("score", "invalid")),
        ({"comment": "好"}, ("score", "required")),
    ],
)
def test_invalid_reviews_name_the_field_and_save_nothing(api, staff, call, media, payload, error):
    before = _snapshot(media)

    response = api.as_user(staff["department_head"]).post(
        f"/api/v1/contacts/{call.uuid}/reviews/", payload, format="json"
    )

    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [error]
    assert _snapshot(media) == before


@pytest.mark.parametrize("user", ["nurse", "doctor", "agent"])
def test_staff_without_the_review_permission_cannot_review(api, staff, call, media, user):
    before = _snapshot(media)

    response = api.as_user(staff[user]).post(f"/api/v1/contacts/{call.uuid}/reviews/", {"score": 5}, format="json")

    assert response.status_code == 403
    assert _snapshot(media) == before


def test_a_reviewer_cannot_review_their_own_call(api, staff, patient, media):
    own = contact_record(actor=staff["department_head"], patient=patient, **CALL)
    before = _snapshot(media)

    response = api.as_user(staff["department_head"]).post(
        f"/api/v1/contacts/{own.uuid}/reviews/", {"score": 5}, format="json"
    )

    assert response.status_code == 403
    assert _snapshot(media) == before
