"""The contact log's services and selectors: logging, recordings, reviews, who sees and plays what, the timeline."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models.signals import post_save
from django.utils import timezone

from hcrm.http import RangeNotSatisfiable, byte_range
from hcrm.models import AuditEntry
from patients.models import ContactEntry, ContactReview
from patients.selectors.contacts import (
    contact_reviewable,
    contacts_accessible_to,
    contacts_of_patient,
    contacts_reviewable_by,
    contacts_visible_to,
    duration_text,
    recording_playable,
)
from patients.services import contacts as contact_services
from patients.services.contacts import contact_record, contact_review_record, recording_format
from patients.timeline import patient_timeline
from tests.factories import (
    ContactEntryFactory,
    EncounterFactory,
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


def _files(media) -> list[str]:
    return sorted(str(path.relative_to(media)) for path in media.rglob("*") if path.is_file())


# --- Logging a contact ---------------------------------------------------------------------------------


def test_a_logged_call_belongs_to_the_staff_member_and_their_department(staff, patient, internal_medicine):
    nurse = staff["nurse"]
    at = timezone.now() - dt.timedelta(minutes=30)

    contact = contact_record(
        actor=nurse, patient=patient, **CALL, occurred_at=at, duration_seconds=270, summary="血压平稳"
    )

    contact.refresh_from_db()
    assert (contact.staff, contact.department, contact.occurred_at, contact.duration_seconds, contact.summary) == (
        nurse,
        internal_medicine,
        at,
        270,
        "血压平稳",
    )
    assert contact.recording.name == ""
    created = AuditEntry.objects.get(event="create", content_type__model="contactentry")
    assert (created.actor, created.patient_uuid, created.object_pk) == (nurse, patient.uuid, str(contact.pk))


def test_the_outbox_logs_messages_without_a_staff_member(patient):
    contact = contact_record(
        actor=None, patient=patient, channel="sms", direction="out", purpose="care", outcome="sent"
    )

    assert (contact.staff_id, contact.department_id, contact.channel, contact.outcome) == (None, None, "sms", "sent")
    assert abs(contact.occurred_at - timezone.now()) < dt.timedelta(seconds=5)


def test_a_recording_is_stored_under_media_root_named_by_the_contact(staff, patient, media):
    contact = contact_record(actor=staff["nurse"], patient=patient, **CALL, recording=wav_recording("通话.WAV"))

    expected = f"recordings/{contact.occurred_at:%Y/%m}/{contact.uuid}.wav"
    assert contact.recording.name == expected
    assert _files(media) == [expected]
    assert (media / expected).read_bytes() == wav_bytes()


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", "mp3"),
        (b"\xff\xfb\x90\x64\x00", "mp3"),  # an MPEG-1 layer III frame without ID3 tag
        (b"\xff\xf1\x50\x80", None),  # AAC in ADTS: layer bits 00, not MP3
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "wav"),
        (b"RIFF\x24\x00\x00\x00AVI LIST", None),
        (b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00", "m4a"),
        (b"OggS\x00\x02\x00\x00", "ogg"),
        (b"#!AMR\n\x3c", "amr"),
        (b"#!AMR-WB\n\x04", "amr"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "webm"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska", None),
        (b"%PDF-1.7\n", None),
        (b"MZ\x90\x00", None),
        (b"", None),
    ],
)
def test_recording_format_is_read_from_the_first_bytes(head, expected):
    assert recording_format(head) == expected


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("call.pdf", b"%PDF-1.7\n" + b"0" * 100, "file_type"),
        ("call", wav_bytes(0.1), "file_type"),
        ("call.mp3", b"%PDF-1.7\n" + b"0" * 100, "file_content"),
        ("call.mp3", wav_bytes(0.1), "file_content"),  # a WAV named .mp3 would be served as the wrong type
        ("call.wav", b"", "empty"),
    ],
)
def test_a_recording_that_is_not_audio_of_its_type_is_refused_and_nothing_is_written(
    staff, patient, media, name, content, code
):
    with pytest.raises(ValidationError) as raised:
        contact_record(actor=staff["nurse"], patient=patient, **CALL, recording=SimpleUploadedFile(name, content))

    assert [error.code for error in raised.value.error_dict["recording"]] == [code]
    assert ContactEntry.objects.count() == 0
    assert _files(media) == []


def test_a_recording_over_the_size_limit_is_refused(staff, patient, media, monkeypatch):
    monkeypatch.setattr(contact_services, "RECORDING_MAX_BYTES", 1024)

    with pytest.raises(ValidationError) as raised:
        contact_record(actor=staff["nurse"], patient=patient, **CALL, recording=wav_recording(seconds=0.5))

    assert [error.code for error in raised.value.error_dict["recording"]] == ["file_size"]
    assert (ContactEntry.objects.count(), _files(media)) == (0, [])


def test_every_invalid_field_is_named_at_once_and_nothing_is_saved(staff, patient):
    audited = AuditEntry.objects.count()

    with pytest.raises(ValidationError) as raised:
        contact_record(
            actor=staff["nurse"],
            patient=patient,
            channel="pigeon",
            direction="out",
            purpose="follow_up",
            outcome="vanished",
            occurred_at=timezone.now() + dt.timedelta(hours=1),
            duration_seconds=-5,
        )

    errors = raised.value.error_dict
    assert sorted(errors) == ["channel", "duration_seconds", "occurred_at", "outcome"]
    assert [error.code for error in errors["occurred_at"]] == ["future"]
    assert [error.code for error in errors["outcome"]] == ["invalid_choice"]
    assert [error.code for error in errors["duration_seconds"]] == ["min_value"]
    assert (ContactEntry.objects.count(), AuditEntry.objects.count()) == (0, audited)


def test_a_clock_a_minute_fast_is_not_the_future(staff, patient):
    at = timezone.now() + dt.timedelta(minutes=1)

    assert contact_record(actor=staff["nurse"], patient=patient, **CALL, occurred_at=at).occurred_at == at


def test_a_failed_save_leaves_no_orphaned_recording(staff, patient, media):
    def fail(sender, instance, **kwargs):
        raise RuntimeError("database went away")

    post_save.connect(fail, sender=ContactEntry, dispatch_uid="test-fail")
    try:
        with pytest.raises(RuntimeError):
            contact_record(actor=staff["nurse"], patient=patient, **CALL, recording=wav_recording())
    finally:
        post_save.disconnect(dispatch_uid="test-fail", sender=ContactEntry)

    assert (ContactEntry.objects.count(), _files(media)) == (0, [])


# --- Reviews ---------------------------------------------------------------------------------------------


@pytest.fixture
def call(staff, patient):
    """A call by the internal-medicine nurse to the internal-medicine patient."""
    return contact_record(actor=staff["nurse"], patient=patient, **CALL, duration_seconds=200)


def test_a_department_head_reviews_a_contact_of_their_staff(staff, call, patient):
    head = staff["department_head"]

    review = contact_review_record(actor=head, contact=call, score=4, comment=" 语气亲切 ")

    assert (review.contact, review.reviewer, review.score, review.comment) == (call, head, 4, "语气亲切")
    created = AuditEntry.objects.get(event="create", content_type__model="contactreview")
    assert (created.actor, created.patient_uuid) == (head, patient.uuid)


def test_a_second_review_by_the_same_reviewer_replaces_the_first(staff, call):
    head = staff["department_head"]
    first = contact_review_record(actor=head, contact=call, score=2, comment="未核对身份")

    second = contact_review_record(actor=head, contact=call, score=5, comment="已改进")

    assert second.pk == first.pk
    assert list(ContactReview.objects.values_list("score", "comment")) == [(5, "已改进")]
    updated = AuditEntry.objects.get(event="update", content_type__model="contactreview")
    assert updated.changes_dict["score"] == [2, 5]


def test_two_reviewers_each_keep_their_own_review(staff, call):
    contact_review_record(actor=staff["department_head"], contact=call, score=3)
    contact_review_record(actor=staff["administrator"], contact=call, score=5)

    assert sorted(ContactReview.objects.values_list("reviewer__username", "score")) == [
        ("administrator", 5),
        ("department_head", 3),
    ]


@pytest.mark.parametrize("who", ["nurse_peer", "other_head", "agent"])
def test_only_reviewers_of_the_contacts_department_may_review(staff, call, acupuncture, internal_medicine, who):
    users = {
        "nurse_peer": UserFactory(roles=["nurse"], departments=[internal_medicine]),
        "other_head": UserFactory(roles=["department_head"], departments=[acupuncture]),
        "agent": staff["agent"],
    }
    before = AuditEntry.objects.count()

    with pytest.raises(PermissionDenied):
        contact_review_record(actor=users[who], contact=call, score=5)

    assert (ContactReview.objects.count(), AuditEntry.objects.count()) == (0, before)


def test_an_administrator_reviews_any_department(call, acupuncture):
    admin = UserFactory(roles=["administrator"], departments=[acupuncture])

    assert contact_review_record(actor=admin, contact=call, score=3).score == 3


def test_nobody_reviews_their_own_contact(staff, patient):
    head = staff["department_head"]
    own = contact_record(actor=head, patient=patient, **CALL)

    with pytest.raises(PermissionDenied):
        contact_review_record(actor=head, contact=own, score=5)

    assert ContactReview.objects.count() == 0


@pytest.mark.parametrize("score", [0, 6])
def test_a_score_is_one_to_five(staff, call, score):
    with pytest.raises(ValidationError) as raised:
        contact_review_record(actor=staff["department_head"], contact=call, score=score)

    assert list(raised.value.error_dict) == ["score"]
    assert ContactReview.objects.count() == 0


# --- Who sees, plays and reviews what ----------------------------------------------------------------------


@pytest.fixture
def log(staff, patient, internal_medicine, acupuncture):
    """Contacts of several staff members; the acupuncture doctor's is with an acupuncture patient."""
    acupuncture_patient = PatientFactory(departments=[acupuncture])
    return {
        "nurse": ContactEntryFactory(
            patient=patient, staff=staff["nurse"], department=internal_medicine, recording="recordings/a.wav"
        ),
        "agent": ContactEntryFactory(patient=patient, staff=staff["agent"], department=internal_medicine),
        "system": ContactEntryFactory(patient=patient, staff=None, department=None, channel="sms", outcome="sent"),
        "other": ContactEntryFactory(patient=acupuncture_patient, staff=staff["other_doctor"], department=acupuncture),
    }


def _names(log, contacts) -> list[str]:
    by_pk = {contact.pk: name for name, contact in log.items()}
    return sorted(by_pk[contact.pk] for contact in contacts)


@pytest.mark.parametrize(
    ("user", "listed"),
    [
        ("nurse", ["nurse"]),
        ("agent", ["agent"]),
        ("doctor", []),
        ("department_head", ["agent", "nurse"]),
        ("administrator", ["agent", "nurse", "other", "system"]),
        ("analyst", []),
    ],
)
def test_lists_show_own_contacts_and_reviewers_their_departments(staff, log, user, listed):
    assert _names(log, contacts_visible_to(staff[user])) == listed


@pytest.mark.parametrize(
    ("user", "reviewable"),
    [("nurse", []), ("department_head", ["agent", "nurse"]), ("administrator", ["agent", "nurse", "other", "system"])],
)
def test_reviewers_review_their_departments_staff(staff, log, user, reviewable):
    assert _names(log, contacts_reviewable_by(staff[user])) == reviewable
    assert [name for name, contact in sorted(log.items()) if contact_reviewable(staff[user], contact)] == reviewable


def test_a_patients_contacts_are_all_shown_to_whoever_may_see_the_patient(staff, log, patient):
    shown_patient, contacts = contacts_of_patient(staff["doctor"], patient.uuid)

    assert shown_patient == patient
    assert _names(log, contacts) == ["agent", "nurse", "system"]


def test_a_patient_outside_the_users_departments_shows_only_their_own_contacts(staff, log, patient):
    ContactEntryFactory(patient=patient, staff=staff["other_doctor"])

    shown_patient, contacts = contacts_of_patient(staff["other_doctor"], patient.uuid)

    assert shown_patient is None
    assert [contact.staff for contact in contacts] == [staff["other_doctor"]]


def test_contacts_open_to_a_user_are_the_listed_ones_and_those_of_visible_patients(staff, log):
    assert _names(log, contacts_accessible_to(staff["doctor"])) == ["agent", "nurse", "system"]
    assert _names(log, contacts_accessible_to(staff["other_doctor"])) == ["other"]
    assert _names(log, contacts_accessible_to(staff["analyst"])) == []


@pytest.mark.parametrize(
    ("user", "may_play"),
    [
        ("nurse", True),  # logged it
        ("department_head", True),  # reviews internal medicine
        ("administrator", True),
        ("doctor", False),  # sees the patient and the summary, not the voices
        ("agent", False),
        ("other_doctor", False),
        ("analyst", False),
    ],
)
def test_a_recording_is_played_by_its_staff_member_and_reviewers_only(staff, log, user, may_play):
    assert recording_playable(staff[user], log["nurse"]) is may_play


def test_a_contact_without_recording_has_nothing_to_play(staff, log):
    assert recording_playable(staff["department_head"], log["agent"]) is False


# --- The timeline --------------------------------------------------------------------------------------------


def test_contacts_appear_in_the_patients_timeline(staff, patient):
    nurse = staff["nurse"]
    nurse.full_name = "王护士"
    nurse.save()
    at = timezone.now() - dt.timedelta(hours=2)
    contact_record(
        actor=nurse, patient=patient, **CALL, occurred_at=at, duration_seconds=330, summary="术后第7天，伤口愈合良好"
    )
    contact_record(actor=None, patient=patient, channel="sms", direction="out", purpose="appointment", outcome="sent")

    entries = [entry for entry in patient_timeline(patient, staff["doctor"]) if entry.kind == "contact"]

    assert [(entry.title, entry.detail, entry.lines) for entry in entries] == [
        ("SMS · Outbound · Appointment", "Sent · System", []),
        ("Phone call · Outbound · Follow-up", "Reached · 王护士 · 5 min 30 s", ["术后第7天，伤口愈合良好"]),
    ]
    assert entries[1].at == at


def test_the_timeline_mentions_a_recording(staff, patient):
    contact_record(actor=staff["nurse"], patient=patient, **CALL, recording=wav_recording())

    (entry,) = [entry for entry in patient_timeline(patient, staff["doctor"]) if entry.kind == "contact"]

    assert entry.lines == ["Recording attached"]


def test_the_timeline_shows_contacts_only_to_those_who_may_view_contacts(patient, internal_medicine):
    from django.contrib.auth.models import Permission

    reader = UserFactory(departments=[internal_medicine])
    reader.user_permissions.add(Permission.objects.get(codename="view_encounter"))
    EncounterFactory(patient=patient)
    ContactEntryFactory(patient=patient)

    assert [entry.kind for entry in patient_timeline(patient, reader)] == ["encounter"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, ""), (0, "0 s"), (45, "45 s"), (60, "1 min"), (330, "5 min 30 s"), (3725, "62 min 5 s")],
)
def test_durations_read_as_people_say_them(seconds, text):
    assert duration_text(seconds) == text


# --- Byte ranges ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("bytes=0-", (0, 999)),
        ("bytes=0-99", (0, 99)),
        ("bytes=100-199", (100, 199)),
        ("bytes=900-5000", (900, 999)),  # past the end: up to the end
        ("bytes=-100", (900, 999)),  # the last 100 bytes
        ("bytes=-5000", (0, 999)),
        ("bytes=999-", (999, 999)),
        (" Bytes = 10 - 19 ", (10, 19)),
        ("bytes=0-9,20-29", None),  # several ranges: the whole file is a valid answer
        ("bytes=20-10", None),  # invalid: ignored
        ("bytes=-", None),
        ("items=0-9", None),
        ("bytes=abc-", None),
    ],
)
def test_byte_ranges_are_read_as_rfc_9110_says(header, expected):
    assert byte_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_a_range_past_the_end_cannot_be_satisfied(header):
    with pytest.raises(RangeNotSatisfiable):
        byte_range(header, 1000)


def test_a_partial_answer_closes_its_file_even_when_never_streamed():
    import io

    from hcrm.http import FileSlice as _FileSlice

    streamed, abandoned = io.BytesIO(b"0123456789"), io.BytesIO(b"0123456789")
    part = _FileSlice(streamed, 2, 5)

    assert b"".join(part) == b"23456"
    part.close()
    _FileSlice(abandoned, 0, 10).close()
    assert (streamed.closed, abandoned.closed) == (True, True)
