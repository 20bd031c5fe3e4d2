"""Reads for the outbox: template variables and rendering, addresses, quiet hours and the sending rules."""

from __future__ import annotations

import datetime as dt
import string
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from hcrm.process_cache import ProcessCache
from patients.models import (
    ContactEntry,
    MessageChannel,
    MessagePriority,
    MessagePurpose,
    MessageStatus,
    MessageTemplate,
    OutboundMessage,
    OutreachSettings,
    Patient,
)
from patients.selectors.archive import consent_granted, patients_visible_to
from patients.validators import normalize_mobile

# --- Template variables --------------------------------------------------------------------------

# Variables a template may use; modules add theirs with `message_variable_register`.
MESSAGE_VARIABLES: dict[str, str] = {
    "patient_name": _("The patient's name"),
    "patient_salutation": _("先生 or 女士 (Mr or Ms) after the family name"),
    "hospital_name": _("The hospital's name"),
    "hospital_phone": _("The hospital's service telephone"),
    "department_name": _("A department's name"),
    "doctor_name": _("A doctor's name"),
    "appointment_time": _("Date and time of an appointment"),
    "appointment_place": _("Where an appointment takes place"),
    "visit_number": _("The visit number of an appointment"),
    "link": _("A link for the patient (questionnaire, booking)"),
    "code": _("A verification code"),
    "expires_minutes": _("Minutes until a code or link expires"),
    "medication_name": _("A medication or herbal formula"),
    "festival_name": _("A festival or solar term"),
    "content": _("Free text written by staff"),
}


def message_variable_register(name: str, description) -> None:
    """Let a module's templates use `{name}`."""
    MESSAGE_VARIABLES[name] = description


def template_variables(text: str) -> list[str]:
    """The `{variables}` a template text uses, in order; ValueError for anything but plain names."""
    names: list[str] = []
    for _literal, field, spec, conversion in string.Formatter().parse(text):
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise ValueError(field)
        if field not in names:
            names.append(field)
    return names


def template_errors(text: str) -> list[str]:
    """Human-readable problems with a template text: malformed braces or unknown variables."""
    try:
        names = template_variables(text)
    except ValueError as error:
        return [str(_("“{%(field)s}” is not a variable name.") % {"field": error})]
    return [str(_("Unknown variable {%(name)s}.") % {"name": name}) for name in names if name not in MESSAGE_VARIABLES]


class _KeepUnknown(dict):
    def __missing__(self, key: str) -> str:
        return ""


def template_render(text: str, context: dict) -> str:
    return text.format_map(_KeepUnknown({key: "" if value is None else str(value) for key, value in context.items()}))


def standard_context(patient: Patient) -> dict[str, str]:
    """Variables every message may use without the caller passing them."""
    family = patient.name[:2] if patient.name[:2] in _COMPOUND_SURNAMES else patient.name[:1]
    if patient.preferred_language == "en":
        salutation = {"male": "Mr", "female": "Ms"}.get(patient.sex, "")
        salutation = f"{salutation} {patient.name}".strip()
    else:
        salutation = family + {"male": "先生", "female": "女士"}.get(patient.sex, "")
    return {
        "patient_name": patient.name,
        "patient_salutation": salutation,
        "hospital_name": settings.HOSPITAL_NAME,
        "hospital_phone": settings.HOSPITAL_PHONE,
    }


def template_preview_context(patient: Patient | None, extra: dict | None) -> dict[str, str]:
    """Variables for a preview: the sample patient's, or a made-up patient's, plus sample values for the rest."""
    sample = patient or Patient(name="张三", sex="male", preferred_language="zh-hans")
    samples = {name: f"[{name}]" for name in MESSAGE_VARIABLES}
    return {**samples, **standard_context(sample), **(extra or {})}


_COMPOUND_SURNAMES = {"欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "司徒", "夏侯"}


# --- Active templates ----------------------------------------------------------------------------

# Every message queued reads its template; a process keeps the active ones this long. A template saved or
# deleted in this process is seen at once (see `templates_forget`), in other processes within this time.
TEMPLATES_TTL_SECONDS = 10.0
_templates = ProcessCache()


def active_templates(code: str, channel: str) -> dict[str, MessageTemplate]:
    """The active templates `code` for `channel`, by language (kept in process, see TEMPLATES_TTL_SECONDS)."""

    def load() -> dict[str, MessageTemplate]:
        found = MessageTemplate.objects.filter(code=code, channel=channel, is_active=True)
        return {template.language: template for template in found}

    return _templates.cached((code, channel), load, ttl_seconds=TEMPLATES_TTL_SECONDS)


def templates_forget(**kwargs) -> None:
    """Drop the kept templates (connected to MessageTemplate's post_save and post_delete)."""
    _templates.clear()


# --- Addresses -----------------------------------------------------------------------------------


def patient_address(patient: Patient, channel: str) -> str | None:
    """Where a message on `channel` goes, or None when the patient has no valid address for it."""
    if channel == MessageChannel.SMS:
        if not patient.mobile:
            return None
        try:
            return normalize_mobile(patient.mobile)
        except ValidationError:
            return None
    if channel == MessageChannel.EMAIL:
        if not patient.email:
            return None
        try:
            validate_email(patient.email)
        except ValidationError:
            return None
        return patient.email
    return None


# --- Quiet hours ---------------------------------------------------------------------------------


def quiet_hours_end(when: dt.datetime, start: dt.time, end: dt.time) -> dt.datetime | None:
    """The first allowed minute after `when` if it falls in quiet hours (local time), else None.

    Quiet hours may cross midnight (21:00–08:00); equal start and end mean none.
    """
    if start == end:
        return None
    local = timezone.localtime(when)
    now = local.time()
    quiet = (start <= now < end) if start < end else (now >= start or now < end)
    if not quiet:
        return None
    day = local.date() if now < end else local.date() + dt.timedelta(days=1)
    return timezone.make_aware(dt.datetime.combine(day, end), local.tzinfo)


def next_day_start(when: dt.datetime, end_of_quiet: dt.time) -> dt.datetime:
    """The first allowed minute of the next local day: where a message over the daily cap goes."""
    local = timezone.localtime(when)
    return timezone.make_aware(dt.datetime.combine(local.date() + dt.timedelta(days=1), end_of_quiet), local.tzinfo)


# --- Sending rules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What the rules say about a message now: send, suppress (with reason) or defer (until)."""

    suppress_reason: str = ""
    defer_until: dt.datetime | None = None
    defer_reason: str = ""

    @property
    def send(self) -> bool:
        return not self.suppress_reason and self.defer_until is None


def sending_rules(
    message: OutboundMessage, *, now: dt.datetime, policy: OutreachSettings, at_send_time: bool
) -> Verdict:
    """Consent, death, address, quiet hours and the daily cap, in that order; the same rules at queue and send time.

    The daily cap needs messages already sent today, so it is only counted when sending.
    """
    patient = message.patient
    if patient.is_deceased:
        return Verdict(suppress_reason=str(_("The patient is deceased.")))
    if message.purpose != MessagePurpose.VERIFICATION and not consent_granted(
        patient, purpose=message.purpose, channel=message.channel
    ):
        return Verdict(
            suppress_reason=str(
                _("No consent to %(purpose)s messages by %(channel)s.")
                % {"purpose": message.get_purpose_display(), "channel": message.get_channel_display()}
            )
        )
    address = patient_address(patient, message.channel)
    if address is None:
        return Verdict(
            suppress_reason=str(_("No valid %(channel)s address.") % {"channel": message.get_channel_display()})
        )
    if address != message.to_address:
        message.to_address = address  # the patient's number changed since queueing: use the current one
    if message.priority == MessagePriority.URGENT:
        return Verdict()
    quiet_until = quiet_hours_end(now, policy.quiet_hours_start, policy.quiet_hours_end)
    if quiet_until is not None:
        return Verdict(defer_until=quiet_until, defer_reason=str(_("Quiet hours.")))
    if at_send_time and _sent_today(message, now) >= policy.daily_message_cap:
        return Verdict(
            defer_until=next_day_start(now, policy.quiet_hours_end),
            defer_reason=str(_("Daily limit of %(cap)d messages reached.") % {"cap": policy.daily_message_cap}),
        )
    return Verdict()


def _sent_today(message: OutboundMessage, now: dt.datetime) -> int:
    local = timezone.localtime(now)
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return (
        OutboundMessage.objects.filter(
            patient_id=message.patient_id,
            sent_at__gte=day_start,
            status__in=[MessageStatus.SENT, MessageStatus.DELIVERED],
            priority=MessagePriority.NORMAL,
        )
        .exclude(pk=message.pk)
        .exclude(purpose=MessagePurpose.VERIFICATION)
        .count()
    )


# --- Lists ----------------------------------------------------------------------------------------


def messages_visible_to(user) -> QuerySet[OutboundMessage]:
    """Messages to patients the user may see."""
    visible = patients_visible_to(user).filter(pk=OuterRef("patient_id"))
    return OutboundMessage.objects.filter(Exists(visible)).select_related("patient", "template")


def message_contact(message: OutboundMessage) -> ContactEntry | None:
    return ContactEntry.objects.filter(message=message).first()
