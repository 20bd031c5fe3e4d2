"""Console pages of the contact log, through Django's test client."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from hcrm.models import AuditEntry
from patients.models import ContactEntry, ContactReview
from patients.services.contacts import contact_record
from tests.factories import (
    ContactEntryFactory,
    ContactReviewFactory,
    PatientFactory,
    UserFactory,
    wav_bytes,
    wav_recording,
)

pytestmark = pytest.mark.django_db

CALL = {"channel": "phone", "direction": "out", "purpose": "follow_up", "outcome": "reached"}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _signed_in(client, user):
    client.force_login(user)
    return client


def _snapshot(media):
    files = sorted(str(path) for path in media.rglob("*") if path.is_file()) if media.exists() else []
    return list(ContactEntry.objects.values()), list(ContactReview.objects.values()), files


@pytest.fixture
def call(staff, patient):
    """The internal-medicine nurse's recorded call."""
    return contact_record(
        actor=staff["nurse"],
        patient=patient,
        **CALL,
        occurred_at=timezone.now() - dt.timedelta(hours=3),
        duration_seconds=125,
        summary="提醒按时服药",
        recording=wav_recording(),
    )


# --- Logging from the patient page -----------------------------------------------------------------------


def test_the_patient_page_offers_to_log_a_contact(client, staff, patient):
    html = _signed_in(client, staff["nurse"]).get(f"/patients/{patient.uuid}/").content.decode()

    assert 'id="log-contact"' in html
    assert f'hx-get="/patients/contacts/log/{patient.uuid}/"' in html


def test_the_form_comes_with_the_usual_call_preselected(client, staff, patient):
    response = _signed_in(client, staff["nurse"]).get(f"/patients/contacts/log/{patient.uuid}/", HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html  # a fragment for the patient page
    assert '<option value="phone" selected>' in html
    assert '<option value="follow_up" selected>' in html
    assert '<option value="reached" selected>' in html
    assert 'value="out" required id="id_direction_0" checked' in html
    assert 'value="verification"' not in html
    assert 'enctype="multipart/form-data"' in html


def test_the_form_as_a_page_of_its_own_names_the_patient_and_is_audited(client, staff, patient):
    response = _signed_in(client, staff["nurse"]).get(f"/patients/contacts/log/{patient.uuid}/")

    assert "Log a contact with 张三" in response.content.decode()
    viewed = AuditEntry.objects.get(event="view")
    assert (viewed.patient_uuid, viewed.additional_data) == (patient.uuid, {"part": "contact form"})


def test_a_nurse_logs_a_call_and_sees_it_in_the_timeline(client, staff, patient, internal_medicine):
    nurse = staff["nurse"]
    client = _signed_in(client, nurse)

    response = client.post(
        f"/patients/contacts/log/{patient.uuid}/",
        {**CALL, "occurred_at": "", "duration": "4:30", "summary": " 术后第3天，无发热 "},
    )

    assert response.status_code == 302
    assert response["Location"] == f"/patients/{patient.uuid}/"
    contact = ContactEntry.objects.get()
    assert (contact.staff, contact.department, contact.duration_seconds, contact.summary) == (
        nurse,
        internal_medicine,
        270,
        "术后第3天，无发热",
    )
    page = client.get(response["Location"])
    entries = [entry for entry in page.context["timeline"] if entry.kind == "contact"]
    assert [(entry.title, entry.lines) for entry in entries] == [
        ("Phone call · Outbound · Follow-up", ["术后第3天，无发热"])
    ]
    assert "Contact logged." in page.content.decode()


def test_a_time_can_be_given_in_the_hospitals_time_zone(client, staff, patient):
    _signed_in(client, staff["nurse"]).post(
        f"/patients/contacts/log/{patient.uuid}/", {**CALL, "occurred_at": "2026-03-02T09:15", "duration": "12"}
    )

    contact = ContactEntry.objects.get()
    assert timezone.localtime(contact.occurred_at).strftime("%Y-%m-%d %H:%M %Z") == "2026-03-02 09:15 CST"
    assert contact.duration_seconds == 720


def test_a_call_is_logged_with_its_recording(client, staff, patient, media):
    _signed_in(client, staff["nurse"]).post(
        f"/patients/contacts/log/{patient.uuid}/", {**CALL, "recording": wav_recording("录音.wav")}
    )

    contact = ContactEntry.objects.get()
    assert (media / contact.recording.name).read_bytes() == wav_bytes()


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"duration": "-3"}, "duration", "Enter minutes (5) or minutes:seconds (5:30)."),
        ({"duration": "4:75"}, "duration", "Enter minutes (5) or minutes:seconds (5:30)."),
        ({"outcome": "vanished"}, "outcome", "Select a valid choice. vanished is not one of the available choices."),
        ({"occurred_at": "2099-01-01T08:00"}, "occurred_at", "A contact cannot be logged in the future."),
        (
            {"recording": SimpleUploadedFile("call.mp3", b"%PDF-1.7\n" + b"0" * 200)},
            "recording",
            "This file is not MP3 audio: its content does not match its name.",
        ),
    ],
)
def test_invalid_input_is_shown_on_the_field_and_nothing_is_saved(
    client, staff, patient, media, change, field, message
):
    before = _snapshot(media)

    response = _signed_in(client, staff["nurse"]).post(f"/patients/contacts/log/{patient.uuid}/", {**CALL, **change})

    assert response.status_code == 400
    assert response.context["form"].errors == {field: [message]}
    assert _snapshot(media) == before


def test_a_patient_of_another_department_cannot_be_logged(client, staff, patient, media):
    before = _snapshot(media)

    response = _signed_in(client, staff["other_doctor"]).post(f"/patients/contacts/log/{patient.uuid}/", CALL)

    assert response.status_code == 404
    assert _snapshot(media) == before


def test_analysts_cannot_log_contacts(client, staff, patient, media):
    response = _signed_in(client, staff["analyst"]).post(f"/patients/contacts/log/{patient.uuid}/", CALL)

    assert response.status_code == 403
    assert ContactEntry.objects.count() == 0


def test_anonymous_visitors_are_sent_to_sign_in(client, patient, call):
    urls = [
        f"/patients/contacts/log/{patient.uuid}/",
        "/patients/contacts/",
        "/patients/contacts/review/",
        f"/patients/contacts/{call.uuid}/",
        f"/patients/contacts/{call.uuid}/recording/",
    ]

    assert [client.get(url).status_code for url in urls] == [302] * 5
    assert all(client.get(url)["Location"].startswith("/login/") for url in urls)


# --- My contacts ------------------------------------------------------------------------------------------


def test_my_contacts_lists_only_mine_and_is_audited(client, staff, patient, internal_medicine):
    mine = ContactEntryFactory(patient=patient, staff=staff["nurse"], department=internal_medicine, duration_seconds=75)
    ContactEntryFactory(patient=patient, staff=staff["agent"], department=internal_medicine)

    response = _signed_in(client, staff["nurse"]).get("/patients/contacts/")

    assert list(response.context["page"].object_list) == [mine]
    assert "1 min 15 s" in response.content.decode()
    listed = AuditEntry.objects.get(event="list")
    assert listed.additional_data == {"record": "contactentry", "part": "my contacts", "patients": [str(patient.uuid)]}


def test_my_contacts_filters_by_channel_outcome_and_dates(client, staff, patient):
    now = timezone.now()
    nurse = staff["nurse"]
    recent_sms = ContactEntryFactory(patient=patient, staff=nurse, channel="sms", outcome="sent", occurred_at=now)
    ContactEntryFactory(patient=patient, staff=nurse, occurred_at=now - dt.timedelta(days=10))
    client = _signed_in(client, nurse)
    today = timezone.localdate(now).isoformat()

    assert list(client.get("/patients/contacts/", {"channel": "sms"}).context["page"].object_list) == [recent_sms]
    assert list(client.get("/patients/contacts/", {"outcome": "sent"}).context["page"].object_list) == [recent_sms]
    assert list(client.get("/patients/contacts/", {"since": today}).context["page"].object_list) == [recent_sms]
    assert len(client.get("/patients/contacts/", {"until": today}).context["page"].object_list) == 2


def test_my_contacts_pages_through_many(client, staff, patient):
    ContactEntryFactory.create_batch(30, patient=patient, staff=staff["nurse"])
    client = _signed_in(client, staff["nurse"])

    first, second = client.get("/patients/contacts/").context["page"], client.get("/patients/contacts/", {"page": 2})
    assert (len(first.object_list), first.has_next) == (25, True)
    assert (len(second.context["page"].object_list), second.context["page"].has_next) == (5, False)


# --- The department review ----------------------------------------------------------------------------------


@pytest.fixture
def department_log(staff, patient, internal_medicine, acupuncture):
    now = timezone.now()
    nurse_call = ContactEntryFactory(
        patient=patient, staff=staff["nurse"], department=internal_medicine, occurred_at=now - dt.timedelta(hours=1)
    )
    agent_call = ContactEntryFactory(
        patient=patient,
        staff=staff["agent"],
        department=internal_medicine,
        outcome="no_answer",
        occurred_at=now - dt.timedelta(days=2),
    )
    other = ContactEntryFactory(
        patient=PatientFactory(departments=[acupuncture]), staff=staff["other_doctor"], department=acupuncture
    )
    return nurse_call, agent_call, other


def test_the_review_page_lists_the_departments_staffs_contacts(client, staff, department_log):
    nurse_call, agent_call, _other = department_log

    response = _signed_in(client, staff["department_head"]).get("/patients/contacts/review/")

    assert list(response.context["page"].object_list) == [nurse_call, agent_call]
    assert AuditEntry.objects.get(event="list").additional_data["part"] == "review"
    html = response.content.decode()
    assert f'href="/patients/contacts/{nurse_call.uuid}/"' in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"staff": "agent"}, [1]),
        ({"outcome": "no_answer"}, [1]),
        ({"channel": "sms"}, []),
        ({"reviewed": "yes"}, [0]),
        ({"reviewed": "no"}, [1]),
        ({"since": "today"}, [0]),
        ({"until": "yesterday"}, [1]),
        ({"department": "NK"}, [0, 1]),
    ],
)
def test_the_review_page_filters(client, staff, department_log, internal_medicine, query, expected):
    ContactReviewFactory(contact=department_log[0], reviewer=staff["administrator"])
    today = timezone.localdate()
    values = {
        "agent": str(staff["agent"].pk),
        "today": today.isoformat(),
        "yesterday": (today - dt.timedelta(days=1)).isoformat(),
        "NK": str(internal_medicine.pk),
    }
    query = {key: values.get(value, value) for key, value in query.items()}

    response = _signed_in(client, staff["department_head"]).get("/patients/contacts/review/", query)

    assert response.context["form"].errors == {}
    assert list(response.context["page"].object_list) == [department_log[index] for index in expected]


def test_the_review_page_offers_only_the_reviewers_staff_and_departments(client, staff, department_log):
    form = _signed_in(client, staff["department_head"]).get("/patients/contacts/review/").context["form"]

    assert staff["other_doctor"] not in form.fields["staff"].queryset
    assert staff["nurse"] in form.fields["staff"].queryset
    assert [department.code for department in form.fields["department"].queryset] == ["NK"]


def test_an_administrator_reviews_every_department(client, staff, department_log):
    response = _signed_in(client, staff["administrator"]).get("/patients/contacts/review/")

    assert len(response.context["page"].object_list) == 3


@pytest.mark.parametrize("user", ["nurse", "doctor", "agent", "analyst"])
def test_the_review_page_is_for_reviewers(client, staff, user):
    assert _signed_in(client, staff[user]).get("/patients/contacts/review/").status_code == 403


def test_the_review_page_shows_my_score(client, staff, department_log):
    ContactReviewFactory(contact=department_log[1], reviewer=staff["department_head"], score=2)

    html = _signed_in(client, staff["department_head"]).get("/patients/contacts/review/").content.decode()

    assert '<span class="score">2/5</span>' in html


# --- A contact, its recording and its review -------------------------------------------------------------


def test_a_reviewer_sees_the_player_and_the_review_form(client, staff, call):
    response = _signed_in(client, staff["department_head"]).get(f"/patients/contacts/{call.uuid}/")

    html = response.content.decode()
    assert (
        f'<audio class="recording" controls preload="metadata" src="/patients/contacts/{call.uuid}/recording/">' in html
    )
    assert "/media/" not in html
    assert 'class="review-form"' in html
    assert "提醒按时服药" in html and "2 min 5 s" in html
    viewed = AuditEntry.objects.get(event="view")
    assert (viewed.object_pk, viewed.patient_uuid) == (str(call.pk), call.patient.uuid)


def test_a_doctor_who_sees_the_patient_reads_the_contact_without_player_or_reviews(client, staff, call):
    ContactReviewFactory(contact=call, reviewer=staff["department_head"], comment="很好")

    html = _signed_in(client, staff["doctor"]).get(f"/patients/contacts/{call.uuid}/").content.decode()

    assert "提醒按时服药" in html
    assert "<audio" not in html
    assert "Only the staff member who logged the contact" in html
    assert "很好" not in html and 'class="review-form"' not in html


def test_the_staff_member_sees_their_reviews_but_cannot_review(client, staff, call):
    ContactReviewFactory(contact=call, reviewer=staff["department_head"], score=5, comment="很好")

    html = _signed_in(client, staff["nurse"]).get(f"/patients/contacts/{call.uuid}/").content.decode()

    assert "<audio" in html and "很好" in html
    assert 'class="review-form"' not in html


def test_a_contact_of_another_department_is_not_found(client, staff, call):
    head = UserFactory(roles=["department_head"], departments=[staff["other_doctor"].departments.get()])

    client = _signed_in(client, head)

    assert client.get(f"/patients/contacts/{call.uuid}/").status_code == 404
    assert client.get(f"/patients/contacts/{call.uuid}/recording/").status_code == 404
    assert client.post(f"/patients/contacts/{call.uuid}/", {"score": 1}).status_code == 404
    assert not AuditEntry.objects.filter(event="view").exists()
    assert ContactReview.objects.count() == 0


def test_a_reviewer_scores_a_contact_and_revises_the_score(client, staff, call):
    client = _signed_in(client, staff["department_head"])
    url = f"/patients/contacts/{call.uuid}/"

    saved = client.post(url, {"score": "4", "comment": "开场白规范"})
    revised_form = client.get(url).context["review_form"]
    client.post(url, {"score": "5", "comment": "开场白规范，已改进"})

    assert (saved.status_code, saved["Location"]) == (302, url)
    assert (revised_form.initial["score"], revised_form.initial["comment"]) == (4, "开场白规范")
    assert list(ContactReview.objects.values_list("reviewer", "score", "comment")) == [
        (staff["department_head"].pk, 5, "开场白规范，已改进")
    ]


def test_a_review_without_score_is_refused(client, staff, call):
    response = _signed_in(client, staff["department_head"]).post(f"/patients/contacts/{call.uuid}/", {"comment": "?"})

    assert response.status_code == 400
    assert response.context["review_form"].errors == {"score": ["This field is required."]}
    assert ContactReview.objects.count() == 0


@pytest.mark.parametrize("user", ["nurse", "doctor", "agent"])
def test_only_reviewers_may_post_a_review(client, staff, call, user):
    response = _signed_in(client, staff[user]).post(f"/patients/contacts/{call.uuid}/", {"score": "5"})

    assert response.status_code == 403
    assert ContactReview.objects.count() == 0


def test_the_recording_plays_for_the_reviewer_and_each_playback_is_audited(client, staff, call):
    client = _signed_in(client, staff["department_head"])
    url = f"/patients/contacts/{call.uuid}/recording/"

    first = client.get(url, HTTP_RANGE="bytes=0-")
    seek = client.get(url, HTTP_RANGE="bytes=1000-1999")

    assert (first.status_code, first["Content-Type"], b"".join(first.streaming_content)) == (
        200,
        "audio/wav",
        wav_bytes(),
    )
    assert (seek.status_code, b"".join(seek.streaming_content)) == (206, wav_bytes()[1000:2000])
    played = list(AuditEntry.objects.filter(event="view").order_by("id"))
    assert [(entry.actor, entry.patient_uuid, entry.client, entry.additional_data) for entry in played] == [
        (staff["department_head"], call.patient.uuid, "console", {"part": "recording"}),
        (staff["department_head"], call.patient.uuid, "console", {"part": "recording", "range": "1000-1999"}),
    ]


@pytest.mark.parametrize("user", ["doctor", "agent"])
def test_the_recording_is_refused_to_staff_who_only_see_the_patient(client, staff, call, user):
    response = _signed_in(client, staff[user]).get(f"/patients/contacts/{call.uuid}/recording/")

    assert response.status_code == 403
    assert not AuditEntry.objects.filter(event="view").exists()


def test_the_recording_is_not_served_from_a_public_media_url(client, staff, call):
    client = _signed_in(client, staff["department_head"])

    assert client.get(f"/media/{call.recording.name}").status_code == 404
    assert client.get(f"/patients/contacts/{call.uuid}/recording/").status_code == 200


def test_the_recording_answers_get_only(client, staff, call):
    response = _signed_in(client, staff["nurse"]).post(f"/patients/contacts/{call.uuid}/recording/")

    assert response.status_code == 405


def test_the_navigation_links_follow_the_role(client, staff):
    nurse_html = _signed_in(client, staff["nurse"]).get("/").content.decode()
    head_html = _signed_in(client, staff["department_head"]).get("/").content.decode()
    analyst_html = _signed_in(client, staff["analyst"]).get("/").content.decode()

    assert 'href="/patients/contacts/"' in nurse_html and 'href="/patients/contacts/review/"' not in nurse_html
    assert 'href="/patients/contacts/review/"' in head_html
    assert "/patients/contacts/" not in analyst_html


# --- Query counts ------------------------------------------------------------------------------------------


@pytest.fixture
def warm_caches():
    from django.contrib.contenttypes.models import ContentType

    ContentType.objects.get_for_model(AuditEntry)


# session, user, user permissions, group permissions, the page, the audit entry, the roles in the header
MY_CONTACTS_QUERIES = 7
# ... and the reviewer's departments, and the staff and departments to filter by
REVIEW_QUERIES = 10


@pytest.mark.parametrize("rows", [3, 30])
def test_my_contacts_query_count_does_not_grow_with_rows(
    client, staff, patient, internal_medicine, warm_caches, django_assert_num_queries, rows
):
    ContactEntryFactory.create_batch(rows, patient=patient, staff=staff["nurse"], department=internal_medicine)
    client = _signed_in(client, staff["nurse"])

    with django_assert_num_queries(MY_CONTACTS_QUERIES):
        response = client.get("/patients/contacts/")

    assert len(response.context["page"].object_list) == min(rows, 25)


@pytest.mark.parametrize("rows", [3, 30])
def test_the_review_page_query_count_does_not_grow_with_rows(
    client, staff, patient, internal_medicine, warm_caches, django_assert_num_queries, rows
):
    for contact in ContactEntryFactory.create_batch(
        rows, patient=patient, staff=staff["nurse"], department=internal_medicine
    ):
        ContactReviewFactory(contact=contact, reviewer=staff["administrator"])
    client = _signed_in(client, staff["department_head"])

    with django_assert_num_queries(REVIEW_QUERIES):
        response = client.get("/patients/contacts/review/")

    assert len(response.context["page"].object_list) == min(rows, 25)
