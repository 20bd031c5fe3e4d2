"""Alerts on answers: rules checked when a response is completed, acknowledgement, escalation, staff messages.

Alerts are raised inside the transaction that completes the response, so a saved response never
lacks its alerts; (rule, response) is unique, so evaluating twice raises nothing new. Escalation
claims each alert with a conditional UPDATE on its level, so concurrent runs escalate it once.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from followups.models import (
    UNACKNOWLEDGED,
    Alert,
    AlertMessage,
    AlertMessageStatus,
    AlertRule,
    AlertStatus,
    ConditionKind,
    EscalationTarget,
    FollowUpTask,
    QuestionnaireResponse,
    RecipientKind,
    ResponseStatus,
    SourceKind,
)
from followups.scoring import answer_row, answer_values, condition_holds, item_score, walk
from hcrm.audit import Event, audit_acting_as, audit_write
from hcrm.channels import ChannelError, OutgoingMessage, channel_backend
from hcrm.models import StaffDepartment, User
from hcrm.roles import Role
from patients.models import Encounter

logger = logging.getLogger(__name__)

# Level 1 goes to the rule's escalation target; level 2 to the administrators.
MAX_ESCALATION_LEVEL = 2
ESCALATE_BATCH = 500
SEND_BATCH = 500
# A pool (a role of a department) is told person by person, up to this many.
POOL_MESSAGE_LIMIT = 20
# Queued messages younger than this are still with the worker the commit handed them to.
SEND_RETRY_AFTER = dt.timedelta(minutes=1)

# An answer rule on this "item" compares the answer of every scored item.
ANY_ITEM = "*"

RULE_FIELDS = (
    "name",
    "active",
    "questionnaire",
    "department",
    "condition",
    "link_id",
    "operator",
    "value",
    "score_code",
    "band",
    "score_min",
    "score_max",
    "severity",
    "recipient",
    "recipient_role",
    "escalate_after_minutes",
    "escalate_to",
)


# --- Rules ------------------------------------------------------------------------------------------------


def _rule_errors(rule: AlertRule) -> dict[str, list[ValidationError]]:
    errors: dict[str, list[ValidationError]] = {}

    def add(field: str, message: str, code: str = "required") -> None:
        errors.setdefault(field, []).append(ValidationError(message, code=code))

    rule.link_id, rule.value = rule.link_id.strip(), rule.value.strip()
    rule.score_code, rule.band = rule.score_code.strip(), rule.band.strip()
    if rule.condition == ConditionKind.ANSWER:
        if not rule.link_id:
            add("link_id", _("Name the item (its linkId) whose answer is compared."))
        if not rule.operator:
            add("operator", _("Choose how the answer is compared."))
        if not rule.value:
            add("value", _("Give the value the answer is compared with."))
    if rule.condition == ConditionKind.SCORE_BAND:
        if not rule.score_code:
            add("score_code", _("Name the score (its code)."))
        if not rule.band and rule.score_min is None and rule.score_max is None:
            add("band", _("Give a band, or a range of the score."))
        if rule.score_min is not None and rule.score_max is not None and rule.score_min > rule.score_max:
            add("score_max", _("The end of the range is below its start."), "invalid")
    if rule.questionnaire_id is not None and rule.questionnaire.current_version is not None:
        version = rule.questionnaire.current_version
        known = {item["linkId"] for item in walk(version.items)} | {ANY_ITEM}
        if rule.link_id and rule.link_id not in known:
            add("link_id", _("%(link)s is not an item of this questionnaire.") % {"link": rule.link_id}, "invalid")
        codes = {score["code"] for score in (version.scoring or {}).get("scores") or ()}
        if rule.score_code and rule.score_code not in codes:
            add(
                "score_code", _("%(code)s is not a score of this questionnaire.") % {"code": rule.score_code}, "invalid"
            )
    if rule.recipient == RecipientKind.ROLE and not rule.recipient_role:
        add("recipient_role", _("Choose the role the alert goes to."))
    if rule.escalate_after_minutes is None:
        rule.escalate_after_minutes = settings.ALERT_ESCALATE_AFTER_MINUTES
    try:
        rule.full_clean(exclude=["created_by", *errors], validate_constraints=False)
    except ValidationError as error:
        for field, messages in error.error_dict.items():
            errors.setdefault(field, []).extend(messages)
    return errors


def alert_rule_save(*, actor, data: dict[str, Any], rule: AlertRule | None = None) -> AlertRule:
    """Create a rule, or change `rule`, from `data` (model fields); errors name the fields."""
    unknown = set(data) - set(RULE_FIELDS)
    if unknown:
        raise ValidationError({name: _("This field cannot be set.") for name in sorted(unknown)})
    rule = rule or AlertRule(created_by=actor if getattr(actor, "pk", None) else None)
    for field, value in data.items():
        setattr(rule, field, value)
    errors = _rule_errors(rule)
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic(), audit_acting_as(actor):
            rule.save()
    except IntegrityError:
        raise ValidationError({"name": _("A rule with this name exists.")}) from None
    return rule


def alert_rule_delete(*, actor, rule: AlertRule) -> None:
    """Delete a rule that never fired; one with alerts is kept for them, and can be made inactive instead."""
    if rule.alerts.exists():
        raise ValidationError({"active": _("This rule has raised alerts; make it inactive instead.")})
    with transaction.atomic(), audit_acting_as(actor):
        rule.delete()


# --- Conditions -------------------------------------------------------------------------------------------


def _is_number(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except (InvalidOperation, ValueError):
        return False


def _answer_fires(rule: AlertRule, item: dict, values: list, *, scored_only: bool) -> bool:
    compared = values
    if item.get("type") in ("choice", "open-choice") and _is_number(rule.value):
        # A choice compared with a number is compared by its options' scores (a 1–5 satisfaction item ≤ 2).
        scores = [item_score(item, value) for value in values]
        if all(score is not None for score in scores):
            compared = [str(score) for score in scores]
        elif scored_only:
            return False
    elif scored_only and item.get("type") not in ("integer", "decimal"):
        return False
    condition = {"question": item["linkId"], "operator": rule.operator, "answerString": rule.value}
    return condition_holds(condition, {item["linkId"]: compared})


def _answer_findings(rule: AlertRule, by_link: dict[str, dict], answers: dict[str, Any]) -> list[dict]:
    """The item's answer compared with the rule's value; `*` compares every scored item's answer."""
    if rule.link_id == ANY_ITEM:
        candidates = [item for link_id, item in by_link.items() if link_id in answers]
    else:
        candidates = [by_link[rule.link_id]] if rule.link_id in by_link else []
    findings = []
    for item in candidates:
        values = answer_values(answers.get(item["linkId"]))
        if values and _answer_fires(rule, item, values, scored_only=rule.link_id == ANY_ITEM):
            findings.append(answer_row(item, values))
    return findings


def _scoreanswer_row(code: str, score: dict, labels: dict[str, dict]) -> dict:
    rule = labels.get(code, {})
    label = rule.get("label") or code
    return {
        "score": code,
        "question": label,
        "question_en": rule.get("label_en") or label,
        "answer": f"{score['value']:g} {score.get('band', '')}".strip(),
        "answer_en": f"{score['value']:g} {score.get('band_en') or score.get('band', '')}".strip(),
    }


def _score_band_findings(rule: AlertRule, scores: dict[str, dict], labels: dict[str, dict]) -> list[dict]:
    score = scores.get(rule.score_code)
    if not score:
        return []
    value = Decimal(str(score["value"]))
    if rule.band and rule.band not in (score.get("band"), score.get("band_en")):
        return []
    if rule.score_min is not None and value < rule.score_min:
        return []
    if rule.score_max is not None and value > rule.score_max:
        return []
    return [_scoreanswer_row(rule.score_code, score, labels)]


def _red_flag_findings(
    rule: AlertRule, by_link: dict[str, dict], answers: dict[str, Any], scores: dict[str, dict], labels: dict
) -> list[dict]:
    """Red flags as the built-in questionnaires mark them: a score in a band flagged "alert"; the findings are
    the answers that scored in it (the red-flag symptoms chosen), else the score itself."""
    findings = []
    for code, score in scores.items():
        if score.get("flag") != "alert" or (rule.score_code and code != rule.score_code):
            continue
        found = []
        for link_id in labels.get(code, {}).get("items") or ():
            item = by_link.get(link_id)
            if item is None:
                continue
            flagged = [value for value in answer_values(answers.get(link_id)) if (item_score(item, value) or 0) > 0]
            if flagged:
                found.append(answer_row(item, flagged))
        findings += found or [_scoreanswer_row(code, score, labels)]
    return findings


def rule_findings(rule: AlertRule, response: QuestionnaireResponse) -> list[dict]:
    """What in `response` fires `rule` (empty: it does not fire)."""
    version = response.version
    by_link = {item["linkId"]: item for item in walk(version.items)}
    labels = {score["code"]: score for score in (version.scoring or {}).get("scores") or ()}
    if rule.condition == ConditionKind.ANSWER:
        return _answer_findings(rule, by_link, response.answers)
    if rule.condition == ConditionKind.SCORE_BAND:
        return _score_band_findings(rule, response.scores, labels)
    return _red_flag_findings(rule, by_link, response.answers, response.scores, labels)


def findings_text(findings: list[dict], *, english: bool) -> str:
    suffix = "_en" if english else ""
    return "; ".join(f"{item['question' + suffix]}: {item['answer' + suffix]}" for item in findings)


# --- Who hears of it ---------------------------------------------------------------------------------------


def _encounter_of(task: FollowUpTask | None, patient_id: int, department_id: int | None) -> Encounter | None:
    if task is not None and task.source_kind == SourceKind.ENCOUNTER:
        encounter = Encounter.objects.filter(pk=task.source_id).first()
        if encounter is not None:
            return encounter
    encounters = Encounter.objects.filter(patient_id=patient_id).order_by("-started_at", "-pk")
    if department_id is not None:
        encounters = encounters.filter(department_id=department_id)
    return encounters.first()


def department_head(department_id: int | None) -> User | None:
    """The head of a department (the first by username when it has several), if it has one with an account."""
    if department_id is None:
        return None
    membership = (
        StaffDepartment.objects.filter(department_id=department_id, is_head=True, user__is_active=True)
        .select_related("user")
        .order_by("user__username")
        .first()
    )
    return membership.user if membership else None


def _recipient(rule: AlertRule, *, task: FollowUpTask | None, encounter: Encounter | None, department_id):
    """(user, role): a named member of staff, or a role of the department when nobody can be named."""
    if rule.recipient == RecipientKind.RESPONSIBLE_DOCTOR:
        if encounter is not None and encounter.doctor_id is not None and encounter.doctor.is_active:
            return encounter.doctor, ""
        if task is not None and task.assignee_id and Role.DOCTOR in task.assignee.role_codes:
            return task.assignee, ""
        return None, Role.DOCTOR
    if rule.recipient == RecipientKind.DEPARTMENT_HEAD:
        head = department_head(department_id)
        return (head, "") if head is not None else (None, Role.DEPARTMENT_HEAD)
    return None, rule.recipient_role


def _pool(role: str, department_id: int | None):
    """The active staff of a role in a department (administrators: in any department)."""
    staff = User.objects.filter(is_active=True, groups__name=role)
    if role != Role.ADMINISTRATOR:
        staff = staff.filter(staff_departments__department_id=department_id)
    return staff.distinct().order_by("username")[:POOL_MESSAGE_LIMIT]


# --- Raising alerts ----------------------------------------------------------------------------------------


def _rules_for(response: QuestionnaireResponse, department_id: int | None) -> list[AlertRule]:
    rules = AlertRule.objects.filter(active=True).filter(
        Q(questionnaire__isnull=True) | Q(questionnaire_id=response.version.questionnaire_id)
    )
    rules = rules.filter(Q(department__isnull=True) | Q(department_id=department_id))
    return list(rules.order_by("pk"))


def alerts_evaluate(*, response: QuestionnaireResponse, task: FollowUpTask | None = None) -> list[Alert]:
    """Raise the alerts a completed response calls for (none twice) and message their recipients."""
    if response.status != ResponseStatus.COMPLETED:
        return []
    if task is None:
        task = response.tasks.select_related("assignee", "department").first()
    department_id = task.department_id if task is not None else None
    rules = _rules_for(response, department_id)
    if not rules:
        return []
    encounter = _encounter_of(task, response.patient_id, department_id)
    if department_id is None and encounter is not None:
        department_id = encounter.department_id
    raised = []
    now = timezone.now()
    with transaction.atomic():
        for rule in rules:
            if rule.department_id is not None and rule.department_id != department_id:
                continue
            findings = rule_findings(rule, response)
            if not findings:
                continue
            user, role = _recipient(rule, task=task, encounter=encounter, department_id=department_id)
            with translation.override(settings.LANGUAGE_CODE):
                summary = f"{rule.name}: {findings_text(findings, english=translation.get_language() == 'en')}"
            alert = Alert(
                rule=rule,
                response=response,
                patient=response.patient,
                task=task,
                department_id=department_id,
                recipient=user,
                recipient_role=role,
                severity=rule.severity,
                summary=summary[:2000],
                findings=findings,
                escalation_due_at=now + dt.timedelta(minutes=rule.escalate_after_minutes),
            )
            try:
                with transaction.atomic():
                    alert.save()
            except IntegrityError:
                continue  # raised already for this response
            _notify(alert, user=user, role=role, level=0)
            raised.append(alert)
    return raised


# --- Messages to staff -------------------------------------------------------------------------------------


def _message_text(alert: Alert, level: int) -> tuple[str, str]:
    with translation.override(settings.LANGUAGE_CODE):
        if level:
            subject = _("Escalated follow-up alert (%(severity)s): %(rule)s") % {
                "severity": alert.get_severity_display(),
                "rule": alert.rule.name,
            }
        else:
            subject = _("Follow-up alert (%(severity)s): %(rule)s") % {
                "severity": alert.get_severity_display(),
                "rule": alert.rule.name,
            }
        # No patient name or answers: an SMS is not a safe place for them; the link opens the alert.
        body = _("%(subject)s. Please acknowledge it: %(link)s") % {
            "subject": subject,
            "link": settings.PUBLIC_BASE_URL + reverse("followups:alert-detail", args=[alert.uuid]),
        }
    return subject, body


def _notify(alert: Alert, *, user: User | None, role: str, level: int) -> list[AlertMessage]:
    """Queue a message to each person the alert (or its escalation) goes to; once per alert, level and person."""
    people = [user] if user is not None else list(_pool(role, alert.department_id))
    subject, body = _message_text(alert, level)
    queued = []
    for person in people:
        key = f"alert:{alert.uuid}:level:{level}:to:{person.uuid}"
        if person.phone:
            channel, address = "sms", person.phone
        elif person.email:
            channel, address = "email", person.email
        else:
            channel, address = "", ""
        message, created = AlertMessage.objects.get_or_create(
            idempotency_key=key,
            defaults={
                "alert": alert,
                "recipient": person,
                "channel": channel,
                "to_address": address,
                "subject": subject,
                "body": body,
                "status": AlertMessageStatus.QUEUED if channel else AlertMessageStatus.NO_ADDRESS,
            },
        )
        if created and channel:
            _deliver_on_commit(message.pk)
        queued.append(message)
    return queued


def _deliver_on_commit(message_id: int) -> None:
    from followups.tasks import alert_message_deliver_task

    def enqueue() -> None:
        try:
            alert_message_deliver_task.delay(message_id)
        except Exception:  # the broker is down: the periodic run sends it
            logger.exception("could not hand alert message %s to a worker; the periodic run will", message_id)

    transaction.on_commit(enqueue)


def alert_message_deliver(*, message_id: int) -> str:
    """Claim and send one queued staff message; what happened, for logs and tests."""
    now = timezone.now()
    claimed = AlertMessage.objects.filter(pk=message_id, status=AlertMessageStatus.QUEUED).update(
        status=AlertMessageStatus.SENDING, attempts=F("attempts") + 1, updated_at=now
    )
    if not claimed:
        return "not claimed"
    message = AlertMessage.objects.get(pk=message_id)
    outgoing = OutgoingMessage(
        to=message.to_address, body=message.body, subject=message.subject, reference=message.idempotency_key
    )
    try:
        receipt = channel_backend(message.channel).send(outgoing)
    except ChannelError as error:
        retry = error.retryable and message.attempts < settings.MESSAGE_MAX_ATTEMPTS
        status = AlertMessageStatus.QUEUED if retry else AlertMessageStatus.FAILED
        AlertMessage.objects.filter(pk=message_id).update(
            status=status, status_reason=str(error)[:300], updated_at=timezone.now()
        )
        return "retry" if retry else "failed"
    AlertMessage.objects.filter(pk=message_id).update(
        status=AlertMessageStatus.SENT,
        status_reason="",
        provider_id=receipt.provider_id[:120],
        sent_at=timezone.now(),
        updated_at=timezone.now(),
    )
    return "sent"


def alert_messages_send_due(*, now: dt.datetime | None = None) -> int:
    """Send staff messages still queued (the broker was down, or a retry): each is claimed by one worker."""
    now = now or timezone.now()
    due = AlertMessage.objects.filter(status=AlertMessageStatus.QUEUED, updated_at__lte=now - SEND_RETRY_AFTER)
    ids = list(due.order_by("created_at", "pk").values_list("pk", flat=True)[:SEND_BATCH])
    return sum(alert_message_deliver(message_id=message_id) == "sent" for message_id in ids)


# --- Acknowledgement and escalation ------------------------------------------------------------------------


def alert_acknowledge(*, alert: Alert, actor, note: str) -> Alert:
    """Record that `actor` has seen the alert and what was done; the caller checks that they may."""
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": ValidationError(_("Say what was done."), code="required")})
    with transaction.atomic(), audit_acting_as(actor):
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        if alert.status not in UNACKNOWLEDGED:
            raise ValidationError({"status": ValidationError(_("This alert is already acknowledged."), code="done")})
        alert.status = AlertStatus.ACKNOWLEDGED
        alert.acknowledged_by = actor
        alert.acknowledged_at = timezone.now()
        alert.acknowledgement_note = note[:2000]
        alert.escalation_due_at = None
        alert.save(
            update_fields=[
                "status",
                "acknowledged_by",
                "acknowledged_at",
                "acknowledgement_note",
                "escalation_due_at",
                "updated_at",
            ]
        )
    return alert


def _escalation_target(alert: Alert, level: int) -> tuple[User | None, str]:
    """Who the alert goes to at `level`: the rule's target first, then the administrators."""
    if level == 1 and alert.rule.escalate_to == EscalationTarget.DEPARTMENT_HEAD:
        head = department_head(alert.department_id)
        if head is not None and head.pk != alert.recipient_id:
            return head, ""
    return None, Role.ADMINISTRATOR


def _escalate_one(alert: Alert, now: dt.datetime) -> bool:
    level = alert.escalation_level + 1
    user, role = _escalation_target(alert, level)
    # Administrators are the last level: an alert already with them is not escalated again.
    last = level >= MAX_ESCALATION_LEVEL or role == Role.ADMINISTRATOR
    next_due = None if last else now + dt.timedelta(minutes=alert.rule.escalate_after_minutes)
    with transaction.atomic():
        claimed = Alert.objects.filter(
            pk=alert.pk, status__in=UNACKNOWLEDGED, escalation_level=alert.escalation_level, escalation_due_at__lte=now
        ).update(
            status=AlertStatus.ESCALATED,
            escalation_level=level,
            escalated_at=now,
            escalation_due_at=next_due,
            escalated_to=user,
            escalated_to_role=role,
            updated_at=now,
        )
        if not claimed:
            return False
        alert.refresh_from_db()
        audit_write(event=Event.UPDATE, instance=alert, details={"escalated": level, "to": role or str(user.uuid)})
        _notify(alert, user=user, role=role, level=level)
    return True


def alerts_escalate(*, now: dt.datetime | None = None) -> int:
    """Escalate the alerts nobody acknowledged in time; safe to run twice at once (each level is claimed)."""
    now = now or timezone.now()
    due = (
        Alert.objects.filter(status__in=UNACKNOWLEDGED, escalation_due_at__lte=now)
        .select_related("rule")
        .order_by("escalation_due_at", "pk")[:ESCALATE_BATCH]
    )
    return sum(_escalate_one(alert, now) for alert in due)
