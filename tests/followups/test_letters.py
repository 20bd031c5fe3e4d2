"""Letter follow-ups: the PDF (valid, Chinese embedded, one letter per sheet), printing a batch (one attempt
per letter, audited, nothing for a denied call), printing it again, and typing in a returned letter."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import uuid

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from followups.letter_pdf import FALLBACK_FONT, letter_font
from followups.models import FollowUpLink, FollowUpTask, LetterBatch, LetterPrint, QuestionnaireResponse
from followups.services import (
    letters_print,
    letters_reprint,
    task_record_attempt,
)
from followups.services.letters import letter_content, letter_reference
from hcrm.models import AuditEntry
from patients.models import ContactEntry
from tests.factories import PatientFactory
from tests.followups.factories import task

pytestmark = pytest.mark.django_db

WQY = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
PRINT_URL = "/followups/letters/print/"
TODAY = dt.date(2026, 1, 5)


@pytest.fixture
def letter_task(patient, internal_medicine, questionnaire):
    return task(patient=patient, department=internal_medicine, questionnaire=questionnaire, channel="letter")


def letter_tasks(count: int, internal_medicine, questionnaire) -> list[FollowUpTask]:
    return [
        task(
            patient=PatientFactory(departments=[internal_medicine]),
            department=internal_medicine,
            questionnaire=questionnaire,
            channel="letter",
        )
        for _ in range(count)
    ]


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page_count(pdf: bytes) -> int:
    """Pages counted from the page tree: `/Type /Page` objects, not `/Pages`."""
    return len(re.findall(rb"/Type /Page\b(?!s)", pdf))


def snapshot(target: FollowUpTask) -> tuple:
    target.refresh_from_db()
    return (
        target.status,
        target.attempts,
        LetterBatch.objects.count(),
        FollowUpLink.objects.count(),
        ContactEntry.objects.count(),
        AuditEntry.objects.filter(event="export").count(),
    )


# --- The PDF ------------------------------------------------------------------------------------------


@pytest.mark.skipif(not os.path.exists(WQY), reason="fonts-wqy-microhei is not installed")
def test_a_letter_is_a_pdf_with_the_chinese_font_embedded(settings, staff, letter_task):
    settings.LETTER_FONT_PATH = WQY

    printed = letters_print(actor=staff["nurse"], tasks=[letter_task])

    assert printed.pdf.startswith(b"%PDF-")
    assert printed.pdf.rstrip().endswith(b"%%EOF")
    assert re.search(rb"/BaseFont /[A-Z]{6}\+WenQuanYiMicroHei", printed.pdf)
    assert b"/FontFile2" in printed.pdf  # the TrueType subset travels inside the file


def test_without_a_font_file_the_readers_chinese_font_is_used(settings, staff, letter_task):
    settings.LETTER_FONT_PATH = "/nonexistent/font.ttc"

    printed = letters_print(actor=staff["nurse"], tasks=[letter_task])

    assert letter_font() == FALLBACK_FONT
    assert printed.pdf.startswith(b"%PDF-")
    assert b"/BaseFont /STSong-Light" in printed.pdf
    assert b"/FontFile2" not in printed.pdf


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils is not installed")
@pytest.mark.skipif(not os.path.exists(WQY), reason="fonts-wqy-microhei is not installed")
def test_the_letter_reads_as_chinese_with_the_reference_on_every_page(settings, staff, letter_task, tmp_path):
    settings.LETTER_FONT_PATH = WQY
    path = tmp_path / "letter.pdf"
    path.write_bytes(letters_print(actor=staff["nurse"], tasks=[letter_task]).pdf)

    pages = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, text=True)

    text = pages.stdout.split("\f")[:-1]
    reference = letter_reference(letter_task)
    assert all(f"信函编号: {reference}" in page for page in text)
    assert letter_task.patient.address_detail in text[0]
    assert "出院随访" in text[0]
    assert "一般情况" in "".join(text)  # a group's heading
    assert "仅当第 1 题为“是”时作答。" in "".join(text)  # the enableWhen hint, the answer in Chinese


def test_the_letter_speaks_the_patients_language(staff, internal_medicine, questionnaire):
    english = PatientFactory(
        name="Li Ming", sex="male", preferred_language="en", departments=[internal_medicine], postal_code="100020"
    )
    target = task(patient=english, department=internal_medicine, questionnaire=questionnaire, channel="letter")

    content = letter_content(target, link_url="https://h.example/f/t/", link_expires=timezone.now(), today=TODAY)

    assert content.language == "en"
    assert content.greeting == "Dear Mr Li Ming,"
    assert content.address_lines == ["Li Ming", english.address_detail, "朝阳区, 北京市", "北京市 100020"]
    assert content.reference == letter_reference(target)
    assert content.link_url == "https://h.example/f/t/"
    assert content.date == "Jan. 5, 2026"


def test_a_chinese_letter_writes_the_address_the_chinese_way(staff, letter_task):
    patient = letter_task.patient
    patient.postal_code = "100020"
    patient.save()

    content = letter_content(letter_task, link_url="", link_expires=None, today=TODAY)

    assert content.language == "zh-hans"
    assert content.address_lines == ["100020", "北京市北京市朝阳区", patient.address_detail, f"{patient.name} 收"]
    assert content.link_url == ""


def test_a_batch_starts_each_letter_on_the_front_of_a_sheet(staff, internal_medicine, questionnaire):
    tasks = letter_tasks(3, internal_medicine, questionnaire)
    one = page_count(letters_print(actor=staff["nurse"], tasks=[tasks[0]]).pdf)

    batch = letters_print(actor=staff["nurse"], tasks=tasks[1:])

    # Each letter of an odd page count gets a blank back, except the last.
    assert page_count(batch.pdf) == (one + one % 2) + one


# --- Printing a batch -------------------------------------------------------------------------------


def test_printing_records_one_attempt_by_post_per_letter(staff, internal_medicine, questionnaire):
    nurse = staff["nurse"]
    tasks = letter_tasks(2, internal_medicine, questionnaire)

    printed = letters_print(actor=nurse, tasks=tasks)

    batch = LetterBatch.objects.get()
    assert printed.batch == batch
    assert (batch.printed_by, batch.letter_count, batch.reprint_count) == (nurse, 2, 0)
    assert sorted(LetterPrint.objects.values_list("task_id", "attempt")) == sorted((t.pk, 1) for t in tasks)
    for target in tasks:
        target.refresh_from_db()
        assert (target.status, target.attempts) == ("in_progress", 1)
    contacts = ContactEntry.objects.order_by("patient_id")
    assert [(c.patient_id, c.channel, c.direction, c.purpose, c.outcome, c.staff_id) for c in contacts] == sorted(
        (t.patient_id, "letter", "out", "follow_up", "sent", nurse.pk) for t in tasks
    )
    links = FollowUpLink.objects.order_by("task_id")
    assert [(link.task_id, link.attempt) for link in links] == sorted((t.pk, 1) for t in tasks)
    assert all((link.expires_at - timezone.now()).days >= 29 for link in links)


def test_every_printed_letter_is_an_audited_export_of_the_patients_address(staff, letter_task):
    printed = letters_print(actor=staff["nurse"], tasks=[letter_task])

    exports = AuditEntry.objects.filter(event="export")
    assert [(e.actor, e.patient_uuid, e.additional_data) for e in exports] == [
        (
            staff["nurse"],
            letter_task.patient.uuid,
            {
                "part": "follow-up letter",
                "fields": ["name", "address"],
                "task": str(letter_task.uuid),
                "batch": str(printed.batch.uuid),
                "reprint": False,
            },
        )
    ]


def test_letters_that_cannot_go_are_skipped_with_the_reason(staff, internal_medicine, questionnaire, letter_task):
    homeless = task(
        patient=PatientFactory(departments=[internal_medicine], address_detail="", city="", province=""),
        department=internal_medicine,
        questionnaire=questionnaire,
        channel="letter",
    )
    deceased = task(
        patient=PatientFactory(departments=[internal_medicine], is_deceased=True),
        department=internal_medicine,
        questionnaire=questionnaire,
        channel="letter",
    )

    printed = letters_print(actor=staff["nurse"], tasks=[letter_task, homeless, deceased])

    assert {(item.task.pk, item.reason) for item in printed.skipped} == {
        (homeless.pk, "no postal address"),
        (deceased.pk, "Patient deceased"),
    }
    deceased.refresh_from_db()
    homeless.refresh_from_db()
    assert (deceased.status, deceased.closed_reason, deceased.attempts) == ("closed", "deceased", 0)
    assert (homeless.status, homeless.attempts) == ("pending", 0)
    assert list(LetterPrint.objects.values_list("task_id", flat=True)) == [letter_task.pk]


def test_nothing_is_written_when_no_letter_can_go(staff, patient, internal_medicine, questionnaire):
    phone = task(patient=patient, department=internal_medicine, questionnaire=questionnaire, channel="phone")
    before = snapshot(phone)

    with pytest.raises(Exception, match="None of the chosen follow-ups"):
        letters_print(actor=staff["nurse"], tasks=[phone])

    assert snapshot(phone) == before


def test_a_failed_rendering_records_nothing(monkeypatch, staff, letter_task):
    before = snapshot(letter_task)

    def broken(*args, **kwargs):
        raise RuntimeError("printer font broken")

    monkeypatch.setattr("followups.services.letters.letters_pdf", broken)
    with pytest.raises(RuntimeError):
        letters_print(actor=staff["nurse"], tasks=[letter_task])

    assert snapshot(letter_task) == before
    assert LetterPrint.objects.count() == 0


def test_printing_again_makes_no_new_attempt_but_is_audited(staff, internal_medicine, questionnaire):
    nurse = staff["nurse"]
    first, answered = letter_tasks(2, internal_medicine, questionnaire)
    printed = letters_print(actor=nurse, tasks=[first, answered])
    answered.status, answered.completed_at = "completed", timezone.now()
    answered.save()

    again = letters_reprint(actor=nurse, batch=printed.batch)

    first.refresh_from_db()
    printed.batch.refresh_from_db()
    assert again.startswith(b"%PDF-")
    assert (first.status, first.attempts) == ("in_progress", 1)
    assert ContactEntry.objects.count() == 2
    assert (printed.batch.reprint_count, LetterPrint.objects.count()) == (1, 2)
    reprints = AuditEntry.objects.filter(event="export", additional_data__reprint=True)
    assert [(e.patient_uuid, e.additional_data["task"]) for e in reprints] == [(first.patient.uuid, str(first.uuid))]
    # A fresh link for the letter still out (the first one keeps working): tokens are never stored.
    assert FollowUpLink.objects.filter(task=first).count() == 2


def test_a_new_batch_for_a_letter_already_out_is_the_next_attempt(staff, letter_task):
    letters_print(actor=staff["nurse"], tasks=[letter_task])
    letters_print(actor=staff["nurse"], tasks=[letter_task])

    letter_task.refresh_from_db()
    assert letter_task.attempts == 2
    assert sorted(LetterPrint.objects.values_list("attempt", flat=True)) == [1, 2]


def test_only_a_letter_follow_up_is_sent_by_post(staff, patient, internal_medicine, questionnaire):
    phone = task(patient=patient, department=internal_medicine, questionnaire=questionnaire, channel="phone")

    with pytest.raises(Exception, match="Only a letter"):
        task_record_attempt(task=phone, outcome="sent", actor=staff["nurse"])


def test_letter_links_are_not_reminded_by_message(staff, letter_task):
    from followups.services import followup_link_reminders_send

    letters_print(actor=staff["nurse"], tasks=[letter_task])
    FollowUpLink.objects.update(created_at=timezone.now() - timezone.timedelta(days=10))

    assert followup_link_reminders_send() == 0


# --- The console ------------------------------------------------------------------------------------


def test_the_letter_tab_offers_printing_and_per_task_letters(staff, letter_task):
    response = signed_in(staff["nurse"]).get("/followups/?when=today&channel=letter")

    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="letters-selected"' in page
    assert 'name="all_due"' in page
    assert f'value="{letter_task.uuid}"' in page
    assert "Letter (PDF)" in page


def test_the_letter_tab_takes_as_many_queries_for_many_letters_as_for_one(staff, internal_medicine, questionnaire):
    client = signed_in(staff["nurse"])
    first = letter_tasks(1, internal_medicine, questionnaire)
    letters_print(actor=staff["nurse"], tasks=first)
    client.get("/followups/?when=today&channel=letter")  # the first request fills per-process caches
    with CaptureQueriesContext(connection) as one:
        client.get("/followups/?when=today&channel=letter")
    letters_print(actor=staff["nurse"], tasks=letter_tasks(3, internal_medicine, questionnaire))

    with CaptureQueriesContext(connection) as many:
        response = client.get("/followups/?when=today&channel=letter")

    assert response.content.decode().count("data-letter-posted") == 4
    assert len(many) == len(one)


def test_the_print_view_returns_the_pdf_as_a_download(staff, letter_task):
    response = signed_in(staff["nurse"]).post(PRINT_URL, {"task": [str(letter_task.uuid)]})

    batch = LetterBatch.objects.get()
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == (
        f'attachment; filename="letters-{timezone.localdate():%Y%m%d}-{batch.uuid.hex[:8]}.pdf"'
    )
    assert response.content.startswith(b"%PDF-")


def test_printing_every_letter_due_takes_the_worklists_due_letters(staff, internal_medicine, questionnaire):
    due = letter_tasks(2, internal_medicine, questionnaire)
    later = task(
        patient=PatientFactory(departments=[internal_medicine]),
        department=internal_medicine,
        questionnaire=questionnaire,
        channel="letter",
        due_date=timezone.localdate() + timezone.timedelta(days=5),
    )

    response = signed_in(staff["nurse"]).post(PRINT_URL, {"all_due": "1"})

    assert response.status_code == 200
    assert sorted(LetterPrint.objects.values_list("task_id", flat=True)) == sorted(t.pk for t in due)
    later.refresh_from_db()
    assert later.attempts == 0


def test_the_department_worklist_prints_its_own_department_only(staff, acupuncture, letter_task):
    head = staff["department_head"]

    other = signed_in(head).post(PRINT_URL, {"all_due": "1", "department": acupuncture.code})
    own = signed_in(head).post(PRINT_URL, {"all_due": "1", "department": "NK"})

    assert other.status_code == 404
    assert own.status_code == 200
    assert LetterBatch.objects.get().department.code == "NK"


def test_print_is_refused_to_anonymous_wrong_role_and_other_department(client, staff, letter_task):
    before = snapshot(letter_task)
    data = {"task": [str(letter_task.uuid)]}

    anonymous = client.post(PRINT_URL, data)
    analyst = signed_in(staff["analyst"]).post(PRINT_URL, data)
    doctor = signed_in(staff["doctor"]).post(PRINT_URL, data)  # doctors work follow-ups but do not post
    other = signed_in(staff["other_doctor"]).post(PRINT_URL, data)
    other_nurse_role = signed_in(staff["agent"])  # an agent of NK sees the pool of its role only
    not_theirs = other_nurse_role.post(PRINT_URL, data)

    assert (anonymous.status_code, anonymous["Location"]) == (302, f"/login/?next={PRINT_URL}")
    assert analyst.status_code == 403
    assert doctor.status_code == 403
    assert other.status_code == 403
    assert not_theirs.status_code == 400
    assert snapshot(letter_task) == before


def test_print_is_a_post_only(staff, letter_task):
    response = signed_in(staff["nurse"]).get(PRINT_URL, {"task": str(letter_task.uuid)})

    assert response.status_code == 405


@pytest.mark.parametrize(
    ("data", "field"),
    [({}, "task"), ({"task": ["not-a-uuid"]}, "task"), ({"task": [str(uuid.uuid4())]}, "task")],
)
def test_bad_print_input_is_a_400_naming_the_field(staff, letter_task, data, field):
    before = snapshot(letter_task)

    response = signed_in(staff["nurse"]).post(PRINT_URL, data)

    assert response.status_code == 400
    assert f'data-field="{field}"' in response.content.decode()
    assert snapshot(letter_task) == before


def test_reprint_is_refused_to_someone_else_and_to_a_get(staff, letter_task):
    printed = letters_print(actor=staff["nurse"], tasks=[letter_task])
    url = f"/followups/letters/batches/{printed.batch.uuid}/reprint/"

    agent = signed_in(staff["agent"]).post(url)
    get = signed_in(staff["nurse"]).get(url)
    own = signed_in(staff["nurse"]).post(url)
    head = signed_in(staff["department_head"]).post(url)

    assert agent.status_code == 404  # printed by another, from no department worklist the agent leads
    assert get.status_code == 405
    assert (own.status_code, own["Content-Type"]) == (200, "application/pdf")
    assert head.status_code == 404  # not printed from the department worklist
    printed.batch.refresh_from_db()
    assert printed.batch.reprint_count == 1


# --- Returned letters -------------------------------------------------------------------------------


def test_the_reference_on_the_letter_opens_the_answer_entry(staff, letter_task):
    reference = letter_reference(letter_task)

    found = signed_in(staff["nurse"]).get("/followups/letters/returned/", {"reference": reference.lower()})
    unknown = signed_in(staff["nurse"]).get("/followups/letters/returned/", {"reference": "0" * 10})
    malformed = signed_in(staff["nurse"]).get("/followups/letters/returned/", {"reference": "xyz"})
    other = signed_in(staff["other_doctor"]).get("/followups/letters/returned/", {"reference": reference})

    assert (found.status_code, found["Location"]) == (302, f"/followups/tasks/{letter_task.uuid}/call/")
    assert unknown.status_code == 404
    assert malformed.status_code == 400
    assert 'data-field="reference"' in malformed.content.decode()
    assert other.status_code == 404


def test_typing_in_a_returned_letter_completes_the_task_from_paper(staff, letter_task):
    nurse = staff["nurse"]
    letters_print(actor=nurse, tasks=[letter_task])
    url = f"/followups/tasks/{letter_task.uuid}/call/"

    page = signed_in(nurse).get(url)
    response = signed_in(nurse).post(url, {"q-pain": "false", "q-sleep": "good", "notes": "信件寄回"})

    assert page.status_code == 200
    assert 'name="outcome"' not in page.content.decode()
    assert page.context["reference"] == letter_reference(letter_task)
    assert response.status_code == 302
    letter_task.refresh_from_db()
    answer = QuestionnaireResponse.objects.get()
    assert (letter_task.status, letter_task.attempts, letter_task.response_id) == ("completed", 1, answer.pk)
    assert (answer.source, answer.answered_by_id, answer.answers) == (
        "letter",
        nurse.pk,
        {"pain": False, "sleep": "good"},
    )
    returned = ContactEntry.objects.get(direction="in")
    assert (returned.channel, returned.outcome, returned.summary) == ("letter", "received", "信件寄回")


def test_incomplete_paper_answers_are_a_400_and_nothing_is_saved(staff, letter_task):
    url = f"/followups/tasks/{letter_task.uuid}/call/"
    before = snapshot(letter_task)

    response = signed_in(staff["nurse"]).post(url, {"q-sleep": "good"})

    assert response.status_code == 400
    assert snapshot(letter_task) == before
    assert QuestionnaireResponse.objects.count() == 0
