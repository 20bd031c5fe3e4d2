"""Letter follow-ups: printing a batch of letters (each one an attempt on its task), and printing it again.

Each letter carries the patient's full postal address: printing it is a legitimate use of the address by
staff who hold the letter permission, and every letter printed is an audited export of the patient's data.
The PDF is made inside the transaction that records the attempts, so a failed rendering records nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from followups.letter_pdf import Letter, labels, letters_pdf
from followups.models import (
    FollowUpChannel,
    FollowUpTask,
    LetterBatch,
    LetterPrint,
)
from followups.services.links import link_create
from followups.services.responses import response_save
from followups.services.tasks import SENT, task_complete, task_precheck, task_record_attempt
from hcrm.audit import Event, audit_acting_as, audit_read
from hcrm.models import Department
from patients.models import ContactChannel, ContactDirection, ContactOutcome, ContactPurpose, Patient
from patients.selectors.archive import can_view_sensitive
from patients.selectors.messages import standard_context
from patients.services.contacts import contact_record

LETTER_PERMISSION = "followups.print_followup_letters"
MAX_LETTERS = 300


@dataclass(frozen=True)
class Skipped:
    """A chosen task whose letter was not printed, and why."""

    task: FollowUpTask
    reason: str


@dataclass(frozen=True)
class PrintedBatch:
    batch: LetterBatch
    pdf: bytes
    skipped: list[Skipped]


def letter_address_allowed(user, patient: Patient) -> bool:
    """The full postal address goes on paper for staff who print letters (or who may see it anyway)."""
    return user.has_perm(LETTER_PERMISSION) or can_view_sensitive(user, patient)


def letter_reference(task: FollowUpTask) -> str:
    """The short code printed on a letter, by which staff find the task when the answers come back."""
    return task.uuid.hex[:10].upper()


def has_postal_address(patient: Patient) -> bool:
    return bool(patient.address_detail.strip() and (patient.city.strip() or patient.province.strip()))


def _address_lines(patient: Patient) -> list[str]:
    """The address block in the order the patient's language writes it, in the active language."""
    # Translators: the addressee's line of an envelope; Chinese adds 收 after the name.
    addressee = pgettext("envelope addressee", "%(name)s") % {"name": patient.name}
    region = "".join(part for part in (patient.province, patient.city, patient.district) if part)
    if patient.preferred_language == "zh-hans":
        # Chinese envelopes: postal code, region, street, then the addressee.
        lines = [patient.postal_code, region, patient.address_detail, addressee]
        return [line.strip() for line in lines if line.strip()]
    lines = [
        addressee,
        patient.address_detail,
        ", ".join(part for part in (patient.district, patient.city) if part),
        " ".join(part for part in (patient.province, patient.postal_code) if part),
    ]
    return [line.strip() for line in lines if line.strip()]


def letter_content(task: FollowUpTask, *, link_url: str, link_expires: dt.datetime | None, today: dt.date) -> Letter:
    """What `task`'s letter says, in its patient's language."""
    patient = task.patient
    language = patient.preferred_language or settings.LANGUAGE_CODE
    with translation.override(language):
        context = standard_context(patient)
        hospital = settings.HOSPITAL_NAME
        questionnaire = task.questionnaire
        title = questionnaire.title_en if language == "en" and questionnaire.title_en else questionnaire.title
        instructions = [
            _("Please tick one box for each question, or write your answer on the line.")
            + " "
            + (
                _("Then post the pages back to us at: %(address)s.") % {"address": settings.HOSPITAL_ADDRESS}
                if settings.HOSPITAL_ADDRESS
                else _("Then post the pages back to us in the reply envelope.")
            )
        ]
        if settings.HOSPITAL_PHONE:
            instructions.append(
                _("Questions about this letter? Call us on %(phone)s and give the reference %(reference)s.")
                % {"phone": settings.HOSPITAL_PHONE, "reference": letter_reference(task)}
            )
        online = ""
        if link_url and link_expires is not None:
            online = _(
                "You may answer online instead: scan the code or type the address below into a browser. "
                "It works until %(date)s."
            ) % {"date": date_format(timezone.localtime(link_expires), "DATE_FORMAT")}
        return Letter(
            reference=letter_reference(task),
            language=language,
            hospital_name=hospital,
            hospital_phone=_("Tel. %(phone)s") % {"phone": settings.HOSPITAL_PHONE} if settings.HOSPITAL_PHONE else "",
            date=date_format(today, "DATE_FORMAT"),
            return_line=" · ".join(part for part in (hospital, settings.HOSPITAL_ADDRESS) if part),
            address_lines=_address_lines(patient),
            greeting=_("Dear %(salutation)s,") % {"salutation": context["patient_salutation"]},
            intro=_(
                "Thank you for choosing %(hospital)s. We would like to know how you are and what you thought of "
                "your care. Please answer the questions on the following pages."
            )
            % {"hospital": hospital},
            online=online,
            title=title,
            description=questionnaire.description,
            items=task.questionnaire.current_version.items,
            link_url=link_url if online else "",
            instructions=instructions,
            closing=_("With our best wishes for your health,") + "\n" + hospital,
            labels=labels(),
        )


def _skip_reason(task: FollowUpTask, actor) -> str:
    if task.channel != FollowUpChannel.LETTER:
        return _("not a letter follow-up")
    if not task.is_open:
        return _("already finished")
    if task.claimed_by_id not in (None, actor.pk):
        return _("someone else is working on it")
    if task.questionnaire.current_version_id is None:
        return _("the questionnaire has no version")
    if not has_postal_address(task.patient):
        return _("no postal address")
    return ""


def _export_audited(task: FollowUpTask, batch: LetterBatch, *, reprint: bool) -> None:
    audit_read(
        event=Event.EXPORT,
        instance=task.patient,
        details={
            "part": "follow-up letter",
            "fields": ["name", "address"],
            "task": str(task.uuid),
            "batch": str(batch.uuid),
            "reprint": reprint,
        },
    )


def letters_print(*, actor, tasks: list[FollowUpTask], department: Department | None = None) -> PrintedBatch:
    """Print the letters of `tasks` as one batch: each printed letter is one attempt on its task, sent by post."""
    if not actor.has_perm(LETTER_PERMISSION):
        raise PermissionDenied(_("You may not print follow-up letters."))
    if len(tasks) > MAX_LETTERS:
        raise ValidationError({"tasks": _("Print at most %(count)s letters at once.") % {"count": MAX_LETTERS}})
    now = timezone.now()
    today = timezone.localdate()
    skipped: list[Skipped] = []
    with transaction.atomic(), audit_acting_as(actor):
        # Locked in one order (by pk), so two people printing overlapping batches wait rather than deadlock.
        locked = list(
            FollowUpTask.objects.select_for_update(of=("self",))
            .select_related("patient", "questionnaire__current_version")
            .filter(pk__in=[task.pk for task in tasks])
            .order_by("pk")
        )
        printable: list[FollowUpTask] = []
        for task in locked:
            reason = _skip_reason(task, actor)
            if not reason and not letter_address_allowed(actor, task.patient):
                reason = _("you may not see this patient's address")
            if not reason and task_precheck(task=task):
                reason = task.get_closed_reason_display()
            if reason:
                skipped.append(Skipped(task, reason))
            else:
                printable.append(task)
        if not printable:
            raise ValidationError({"tasks": _("None of the chosen follow-ups can be printed as a letter.")})
        batch = LetterBatch.objects.create(
            printed_by=actor, department=department, letter_count=len(printable), last_printed_at=now
        )
        letters = []
        for task in sorted(printable, key=lambda item: (item.due_at, item.pk)):
            posted = task_record_attempt(task=task, outcome=SENT, notes=_("Follow-up letter printed."), actor=actor)
            LetterPrint.objects.create(batch=batch, task=task, attempt=posted.attempts)
            letters.append(_letter(task, attempt=posted.attempts, today=today))
            _export_audited(task, batch, reprint=False)
        pdf = letters_pdf(letters, title=_("Follow-up letters"))
    return PrintedBatch(batch=batch, pdf=pdf, skipped=skipped)


def _letter(task: FollowUpTask, *, attempt: int, today: dt.date) -> Letter:
    link, url = link_create(task, attempt=attempt, days=settings.FOLLOWUP_LETTER_LINK_DAYS)
    return letter_content(task, link_url=url, link_expires=link.expires_at, today=today)


def letters_reprint(*, actor, batch: LetterBatch) -> bytes:
    """Print a batch again, the letters still awaiting answers only: no new attempts, fresh links, audited."""
    if not actor.has_perm(LETTER_PERMISSION):
        raise PermissionDenied(_("You may not print follow-up letters."))
    today = timezone.localdate()
    with transaction.atomic(), audit_acting_as(actor):
        prints = list(
            LetterPrint.objects.filter(batch=batch)
            .select_related("task__patient", "task__questionnaire__current_version")
            .order_by("task__due_at", "task_id")
        )
        waiting = [
            item
            for item in prints
            if item.task.is_open
            and letter_address_allowed(actor, item.task.patient)
            and has_postal_address(item.task.patient)
        ]
        if not waiting:
            raise ValidationError({"batch": _("No letter of this batch is still awaiting answers.")})
        letters = []
        for item in waiting:
            letters.append(_letter(item.task, attempt=item.attempt, today=today))
            _export_audited(item.task, batch, reprint=True)
        LetterBatch.objects.filter(pk=batch.pk).update(
            reprint_count=F("reprint_count") + 1, last_printed_at=timezone.now()
        )
        pdf = letters_pdf(letters, title=_("Follow-up letters"))
    batch.refresh_from_db()
    return pdf


def letter_answers_record(*, task: FollowUpTask, answers: dict, notes: str = "", actor) -> FollowUpTask:
    """Enter the answers of a letter that came back: the response (from paper), a contact-log entry, the task done."""
    if task.channel != FollowUpChannel.LETTER:
        raise ValidationError({"channel": _("This is not a letter follow-up.")})
    with transaction.atomic(), audit_acting_as(actor):
        task = (
            FollowUpTask.objects.select_for_update(of=("self",))
            .select_related("patient", "questionnaire__current_version")
            .get(pk=task.pk)
        )
        if not task.is_open:
            raise ValidationError({"status": _("This task is already finished.")})
        if task.claimed_by_id not in (None, actor.pk):
            raise PermissionDenied(_("Someone else is working on this task."))
        response = response_save(
            version=task.questionnaire.current_version,
            patient=task.patient,
            answers=answers,
            source="letter",
            actor=actor,
            complete=True,
        )
        contact_record(
            actor=actor,
            patient=task.patient,
            channel=ContactChannel.LETTER,
            direction=ContactDirection.INBOUND,
            purpose=ContactPurpose.FOLLOW_UP,
            outcome=ContactOutcome.RECEIVED,
            summary=notes.strip(),
        )
        return task_complete(task=task, response=response, actor=actor)
