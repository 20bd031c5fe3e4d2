"""Follow-ups by SMS or email link: sending links and reminders, and the patient answering through one.

A token is 24 random bytes (`secrets.token_urlsafe`) signed with an HMAC of the project's secret key;
a token whose signature does not match is turned away before the database is asked, so guessing costs
nothing but the guesser's time. Only a SHA-256 hash of a token is stored, so the database cannot give a
working link away. A link expires after FOLLOWUP_LINK_DAYS and stops working once the answers are
submitted.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _

from followups.models import FollowUpChannel, FollowUpLink, FollowUpTask, TaskStatus
from followups.services.responses import response_save
from followups.services.tasks import task_complete, task_precheck
from patients.services.messages import message_send

LINK_CHANNELS = (FollowUpChannel.SMS, FollowUpChannel.EMAIL)
SEND_BATCH = 500

logger = logging.getLogger(__name__)


class LinkGone(Exception):
    """The token opens nothing: unknown (`status` 404), or expired or already submitted (410)."""

    def __init__(self, status: int, link: FollowUpLink | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.link = link


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _signature(nonce: str) -> str:
    digest = salted_hmac("followups.link", nonce, algorithm="sha256").digest()[:15]
    return base64.urlsafe_b64encode(digest).decode("ascii")


def token_new() -> str:
    """A new link token: a random part and its signature, 53 URL-safe characters."""
    nonce = secrets.token_urlsafe(24)
    return f"{nonce}.{_signature(nonce)}"


def token_signed(token: str) -> bool:
    """Whether `token` carries a valid signature (made by `token_new` with this project's secret key)."""
    nonce, _dot, signature = token.partition(".")
    return bool(nonce) and constant_time_compare(signature, _signature(nonce))


def link_create(
    task: FollowUpTask, *, attempt: int, response=None, days: int | None = None
) -> tuple[FollowUpLink, str]:
    """A new link to `task`'s questionnaire and its URL (the only place the token is ever seen)."""
    token = token_new()
    link = FollowUpLink.objects.create(
        task=task,
        token_hash=token_hash(token),
        attempt=attempt,
        expires_at=timezone.now() + dt.timedelta(days=days or settings.FOLLOWUP_LINK_DAYS),
        response=response,
    )
    return link, settings.PUBLIC_BASE_URL + reverse("followup-link:form", args=[token])


def followup_link_send(*, task: FollowUpTask) -> FollowUpLink:
    """Send `task`'s patient a new link to its questionnaire through the outbox (which applies consent)."""
    if task.channel not in LINK_CHANNELS:
        raise ValidationError({"channel": _("Only SMS and email follow-ups are sent as links.")})
    with transaction.atomic():
        task = FollowUpTask.objects.select_for_update().select_related("patient").get(pk=task.pk)
        if not task.is_open:
            raise ValidationError({"status": _("This task is already finished.")})
        attempt = task.attempts + 1
        link, url = link_create(task, attempt=attempt)
        message_send(
            patient=task.patient,
            channel=task.channel,
            purpose="follow_up",
            template="follow_up_link",
            context={"link": url},
            idempotency_key=f"followup:{task.uuid}:link:{attempt}",
            source="followups",
        )
        task.attempts = attempt
        task.status = TaskStatus.IN_PROGRESS
        task.next_attempt_at = None
        task.save(update_fields=["attempts", "status", "next_attempt_at", "updated_at"])
    return link


def followup_links_send_due(*, now: dt.datetime | None = None) -> int:
    """Send the links of SMS and email tasks that are due; each task is taken by one worker only."""
    now = now or timezone.now()
    due = FollowUpTask.objects.filter(
        channel__in=LINK_CHANNELS,
        status__in=(TaskStatus.PENDING, TaskStatus.UNREACHED),
        claimed_by__isnull=True,
        due_at__lte=now,
    ).order_by("due_at", "pk")
    sent = 0
    for pk, status in due.values_list("pk", "status")[:SEND_BATCH]:
        # The conditional update is the claim: a second worker finds the status changed and updates nothing.
        taken = FollowUpTask.objects.filter(pk=pk, status=status, claimed_by__isnull=True).update(
            status=TaskStatus.IN_PROGRESS, updated_at=now
        )
        if not taken:
            continue
        task = FollowUpTask.objects.select_related("patient", "plan").get(pk=pk)
        if task_precheck(task=task):
            continue  # closed with the reason: the patient died, is back in hospital or withdrew consent
        try:
            followup_link_send(task=task)
        except ValidationError:
            # No template for the patient's channel, or the like: back to the queue for the next run.
            logger.exception("follow-up link for task %s not sent", task.uuid)
            FollowUpTask.objects.filter(pk=pk, status=TaskStatus.IN_PROGRESS).update(status=status, updated_at=now)
            continue
        sent += 1
    return sent


def followup_link_reminders_send(*, now: dt.datetime | None = None) -> int:
    """Remind once, with a fresh link to the same answers, patients who have not submitted after N days."""
    now = now or timezone.now()
    before = now - dt.timedelta(days=settings.FOLLOWUP_REMINDER_DAYS)
    waiting = FollowUpLink.objects.filter(
        used_at__isnull=True,
        reminder_sent_at__isnull=True,
        created_at__lte=before,
        expires_at__gt=now,
        task__status=TaskStatus.IN_PROGRESS,
        # Links printed on letters are not reminded by message: the patient chose the post.
        task__channel__in=LINK_CHANNELS,
    ).order_by("pk")
    reminded = 0
    for pk in waiting.values_list("pk", flat=True)[:SEND_BATCH]:
        with transaction.atomic():
            if not FollowUpLink.objects.filter(pk=pk, reminder_sent_at__isnull=True).update(reminder_sent_at=now):
                continue
            link = FollowUpLink.objects.select_related("task__patient").get(pk=pk)
            # The first link keeps working; the reminder carries its own, as only hashes are kept.
            reminder, url = link_create(link.task, attempt=link.attempt, response=link.response)
            reminder.reminder_sent_at = now
            reminder.save(update_fields=["reminder_sent_at"])
            message_send(
                patient=link.task.patient,
                channel=link.task.channel,
                purpose="follow_up",
                template="follow_up_reminder",
                context={"link": url},
                idempotency_key=f"followup:{link.task.uuid}:reminder:{link.attempt}",
                source="followups",
            )
        reminded += 1
    return reminded


def followup_link_open(*, token: str) -> FollowUpLink:
    """The link of `token`, its first opening noted; LinkGone when it is unknown, expired or submitted."""
    if not token_signed(token):
        raise LinkGone(404)
    link = (
        FollowUpLink.objects.select_related(
            "task__patient", "task__questionnaire__current_version", "response__version"
        )
        .filter(token_hash=token_hash(token))
        .first()
    )
    if link is None:
        raise LinkGone(404)
    if link.used_at is not None or link.task.status == TaskStatus.COMPLETED:
        raise LinkGone(410, link)
    if link.is_expired or not link.task.is_open:
        raise LinkGone(410, link)
    if link.opened_at is None:
        FollowUpLink.objects.filter(pk=link.pk, opened_at__isnull=True).update(opened_at=timezone.now())
    return link


def followup_link_answer(*, link: FollowUpLink, answers: dict, complete: bool) -> FollowUpLink:
    """Save the patient's answers (to continue later), or submit them: the task completes, the link closes."""
    with transaction.atomic():
        link = FollowUpLink.objects.select_for_update().select_related("task__patient").get(pk=link.pk)
        task = link.task
        if link.used_at is not None or link.is_expired or not task.is_open:
            raise LinkGone(410, link)
        version = link.response.version if link.response_id else task.questionnaire.current_version
        response = response_save(
            version=version,
            patient=task.patient,
            answers=answers,
            source=task.channel,
            complete=complete,
            response=link.response,
            task=task,
        )
        now = timezone.now()
        siblings = FollowUpLink.objects.filter(task=task).filter(Q(used_at__isnull=True))
        siblings.update(response=response)
        if complete:
            siblings.update(used_at=now)
            task_complete(task=task, response=response, actor=None)
        link.refresh_from_db()
    return link
