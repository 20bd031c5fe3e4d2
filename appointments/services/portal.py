"""The patient portal's accounts: sign-in codes by SMS, self-registration, and the family members an account books for.

Codes are counted from their rows in the database, so the rate limits hold across processes; only a
keyed hash of each code is kept, and a code is spent with a conditional update so it works once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from appointments.models import FamilyMember, LoginCode, PortalAccount, Relationship
from appointments.selectors import booking_policy
from hcrm.audit import audit_acting_as
from hcrm.masking import mask_phone
from patients.models import Language, MessageChannel, MessagePriority, MessagePurpose, Patient, PatientSource
from patients.services.identity import PatientDemographics, patient_match_or_create
from patients.services.messages import message_send
from patients.validators import normalize_mobile, normalize_national_id, validate_national_id

CODE_ATTEMPTS = 5
# (rows allowed, over how many seconds) per mobile number and per client address.
MOBILE_LIMITS = ((1, 60), (5, 3600))
ADDRESS_LIMITS = ((20, 3600),)


@dataclass(frozen=True)
class CodeRequested:
    """What a code request did; the page says the same whether or not a code went out."""

    mobile: str
    sent: bool
    expires_minutes: int


def portal_label(mobile: str) -> str:
    """How the audit trail names a portal user: never the whole number."""
    return f"portal:{mask_phone(mobile)}"


def _mobile_clean(mobile: str) -> str:
    try:
        return normalize_mobile(mobile)
    except ValidationError as error:
        raise ValidationError({"mobile": error.messages[0]}, code="mobile") from None


def _code_hash(mobile: str, code: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), f"portal-login:{mobile}:{code}".encode(), hashlib.sha256).hexdigest()


def _lock_requests(*, mobile: str, client_address: str | None) -> None:
    """Requests for one number, and from one address, are counted one at a time (PostgreSQL; SQLite
    writes one at a time anyway). The number's lock is always taken first, so two requests never wait
    on each other in a circle."""
    if connection.vendor != "postgresql":
        return
    keys = [f"portal-login:mobile:{mobile}"] + ([f"portal-login:address:{client_address}"] if client_address else [])
    with connection.cursor() as cursor:
        for key in keys:
            number = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [number])


def _limits_check(*, mobile: str, client_address: str | None, now: dt.datetime) -> None:
    _lock_requests(mobile=mobile, client_address=client_address)
    for allowed, seconds in MOBILE_LIMITS:
        since = now - dt.timedelta(seconds=seconds)
        if LoginCode.objects.filter(mobile=mobile, created_at__gt=since).count() >= allowed:
            raise ValidationError(
                {
                    "mobile": ValidationError(
                        _("At most %(count)d codes per %(period)s may be sent to one number; please wait.")
                        % {"count": allowed, "period": _period(seconds)},
                        code="rate_limited",
                    )
                }
            )
    if not client_address:
        return
    for allowed, seconds in ADDRESS_LIMITS:
        since = now - dt.timedelta(seconds=seconds)
        if LoginCode.objects.filter(client_address=client_address, created_at__gt=since).count() >= allowed:
            raise ValidationError(
                {
                    "mobile": ValidationError(
                        _("At most %(count)d codes per %(period)s may be requested from one device; please wait.")
                        % {"count": allowed, "period": _period(seconds)},
                        code="rate_limited",
                    )
                }
            )


def _period(seconds: int):
    return _("minute") if seconds == 60 else _("hour")


def _patients_with_mobile(mobile: str):
    return Patient.objects.filter(mobile=mobile, merged_into__isnull=True, is_deceased=False).order_by("pk")


def login_code_request(*, mobile: str, client_address: str | None, now: dt.datetime | None = None) -> CodeRequested:
    """Send a sign-in code to a mobile number known to the archive; refuse beyond the rate limits.

    A number no patient holds gets a code row too, so the limits and the answer are the same whether
    or not the number is known; its row stores no hash, so no code ever matches it. The code goes
    to a patient whose own mobile is this number (the outbox sends to the patient's number).
    """
    mobile = _mobile_clean(mobile)
    now = now or timezone.now()
    policy = booking_policy()
    with transaction.atomic():
        _limits_check(mobile=mobile, client_address=client_address, now=now)
        recipient = _patients_with_mobile(mobile).first()
        code = f"{secrets.randbelow(1_000_000):06d}"
        row = LoginCode.objects.create(
            mobile=mobile,
            code_hash=_code_hash(mobile, code) if recipient is not None else "",
            client_address=client_address or None,
            expires_at=now + dt.timedelta(minutes=policy.login_code_minutes),
        )
        if recipient is not None:
            with audit_acting_as(portal_label(mobile)):
                message_send(
                    patient=recipient,
                    channel=MessageChannel.SMS,
                    purpose=MessagePurpose.VERIFICATION,
                    template="verification_code",
                    context={"code": code, "expires_minutes": str(policy.login_code_minutes)},
                    idempotency_key=f"portal-login:{row.pk}",
                    priority=MessagePriority.URGENT,
                    source="portal",
                )
    return CodeRequested(mobile=mobile, sent=recipient is not None, expires_minutes=policy.login_code_minutes)


def _wrong_code(message) -> ValidationError:
    return ValidationError({"code": ValidationError(message, code="code")})


def login_code_verify(*, mobile: str, code: str, now: dt.datetime | None = None) -> PortalAccount:
    """Check the latest code sent to `mobile` and sign in: the account is created on first sign-in."""
    mobile = _mobile_clean(mobile)
    now = now or timezone.now()
    latest = LoginCode.objects.filter(mobile=mobile).order_by("-created_at", "-pk").first()
    if latest is None or latest.used_at is not None or latest.expires_at <= now:
        raise _wrong_code(_("This code has expired or was already used; request a new one."))
    # Counting the attempt first, conditionally, keeps concurrent guesses within the limit.
    if not LoginCode.objects.filter(pk=latest.pk, attempts__lt=CODE_ATTEMPTS).update(attempts=F("attempts") + 1):
        raise _wrong_code(_("Too many wrong codes; request a new one."))
    if not hmac.compare_digest(latest.code_hash, _code_hash(mobile, (code or "").strip())):
        left = CODE_ATTEMPTS - latest.attempts - 1
        if left <= 0:
            raise _wrong_code(_("Too many wrong codes; request a new one."))
        raise _wrong_code(_("The code is wrong; %(count)d attempts left.") % {"count": left})
    with transaction.atomic():
        if not LoginCode.objects.filter(pk=latest.pk, used_at__isnull=True).update(used_at=now):
            raise _wrong_code(_("This code has expired or was already used; request a new one."))
        with audit_acting_as(portal_label(mobile)):
            account, created = PortalAccount.objects.get_or_create(mobile=mobile)
            if not account.is_active:
                raise _wrong_code(_("This account is closed; please call the hospital."))
            account.last_login_at = now
            account.save(update_fields=["last_login_at", "updated_at"])
            if created or not account.members.exists():
                _members_link_own_patients(account)
    return account


def _members_link_own_patients(account: PortalAccount) -> None:
    """Link the patients holding the account's number: one as the account holder, the rest as relatives."""
    has_self = account.members.filter(relationship=Relationship.SELF).exists()
    linked = set(account.members.values_list("patient_id", flat=True))
    for patient in _patients_with_mobile(account.mobile):
        if patient.pk in linked:
            continue
        relationship = Relationship.OTHER if has_self else Relationship.SELF
        FamilyMember.objects.create(account=account, patient=patient, relationship=relationship)
        has_self = True


def _identity_checked(*, name: str, national_id: str) -> tuple[str, str]:
    name = (name or "").strip()
    national_id = normalize_national_id(national_id)
    errors = {}
    if not name:
        errors["name"] = ValidationError(_("Enter the real name on the ID card."), code="required")
    elif len(name) > Patient._meta.get_field("name").max_length:
        errors["name"] = ValidationError(_("The name is too long."), code="max_length")
    try:
        validate_national_id(national_id)
    except ValidationError as error:
        errors["national_id"] = error
    if errors:
        raise ValidationError(errors)
    return name, national_id


def _patient_for_identity(*, name: str, national_id: str, mobile: str, label: str) -> Patient:
    """The archive's patient with this ID number, or a new one; a holder under another name is refused.

    An existing record is only linked, never changed: the portal proves who holds a phone, not who
    may edit someone's record.
    """
    holder = Patient.objects.filter(national_id=national_id, merged_into__isnull=True).first()
    if holder is not None:
        if holder.name != name:
            raise ValidationError(
                {"name": ValidationError(_("The name does not match this national ID number."), code="mismatch")}
            )
        return holder
    language = _current_language()
    outcome = patient_match_or_create(
        demographics=PatientDemographics(
            name=name, national_id=national_id, mobile=mobile, preferred_language=language
        ),
        source=PatientSource.ONLINE,
        actor=label,
        system="portal",
    )
    return outcome.patient


def _current_language() -> str:
    from django.utils.translation import get_language

    language = (get_language() or "").lower()
    return language if language in Language.values else Language.ZH_HANS


def portal_register(
    *, mobile: str, name: str, national_id: str, client_address: str | None, now: dt.datetime | None = None
) -> CodeRequested:
    """Register a new patient from the portal with real name and national ID, then send the sign-in code.

    A person already in the archive under this ID number is matched (same name required); their
    record keeps its own mobile, so a number already on file there cannot be taken over.
    """
    mobile = _mobile_clean(mobile)
    name, national_id = _identity_checked(name=name, national_id=national_id)
    label = portal_label(mobile)
    with transaction.atomic():
        _limits_check(mobile=mobile, client_address=client_address, now=now or timezone.now())
        patient = _patient_for_identity(name=name, national_id=national_id, mobile=mobile, label=label)
        if patient.mobile and patient.mobile != mobile:
            raise ValidationError(
                {
                    "mobile": ValidationError(
                        _("This person is registered with another mobile number; sign in with that number."),
                        code="other_mobile",
                    )
                }
            )
        if not patient.mobile:
            patient_match_or_create(
                demographics=PatientDemographics(name=name, national_id=national_id, mobile=mobile),
                source=PatientSource.ONLINE,
                actor=label,
                system="portal",
            )
        account = PortalAccount.objects.filter(mobile=mobile).first()
        if account is not None:
            with audit_acting_as(label):
                _members_link_own_patients(account)
        return login_code_request(mobile=mobile, client_address=client_address, now=now)


def family_member_add(*, account: PortalAccount, name: str, national_id: str, relationship: str) -> FamilyMember:
    """Add a relative the account may book for, by real name and national ID (实名)."""
    if relationship not in Relationship.values:
        raise ValidationError({"relationship": ValidationError(_("Choose a relationship."), code="invalid")})
    if relationship == Relationship.SELF and account.members.filter(relationship=Relationship.SELF).exists():
        raise ValidationError(
            {"relationship": ValidationError(_("You are already on the list as yourself."), code="self_taken")}
        )
    name, national_id = _identity_checked(name=name, national_id=national_id)
    label = portal_label(account.mobile)
    with transaction.atomic():
        patient = _patient_for_identity(name=name, national_id=national_id, mobile=account.mobile, label=label)
        if patient.is_deceased:
            raise ValidationError(
                {"national_id": ValidationError(_("This person cannot be added; please call the hospital."))}
            )
        try:
            with transaction.atomic(), audit_acting_as(label):
                return FamilyMember.objects.create(account=account, patient=patient, relationship=relationship)
        except IntegrityError:
            raise ValidationError(
                {"national_id": ValidationError(_("This person is already on your list."), code="duplicate")}
            ) from None


def family_member_remove(*, member: FamilyMember) -> None:
    """Take a relative off the account's list; the account holder stays, and bookings already made stay."""
    if member.relationship == Relationship.SELF:
        raise ValidationError({"member": ValidationError(_("You cannot remove yourself."), code="self")})
    with transaction.atomic(), audit_acting_as(portal_label(member.account.mobile)):
        FamilyMember.objects.filter(pk=member.pk).delete()
