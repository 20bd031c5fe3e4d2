"""Portal accounts: sign-in codes (expiry, attempts, single use, rate limits, hashes), registration, family members."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from appointments.models import FamilyMember, LoginCode, PortalAccount
from appointments.services import (
    family_member_add,
    family_member_remove,
    login_code_request,
    login_code_verify,
    portal_register,
)
from hcrm.models import AuditEntry
from patients.models import OutboundMessage, Patient
from tests.factories import PatientFactory, national_id

pytestmark = pytest.mark.django_db

MOBILE = "+8613812345678"
ADDRESS = "203.0.113.7"
NEW_ID = national_id("110105", dt.date(1990, 5, 17), 123)  # male, born 1990-05-17


@pytest.fixture
def holder():
    return PatientFactory(name="李明", mobile=MOBILE)


def _sent_code(mobile: str = MOBILE) -> str:
    message = OutboundMessage.objects.filter(purpose="verification", patient__mobile=mobile).latest("created_at")
    return re.search(r"\d{6}", message.body).group()


def _errors(error: ValidationError) -> dict[str, list[str]]:
    return {field: [item.code for item in items] for field, items in error.error_dict.items()}


def test_a_code_goes_to_the_patient_holding_the_number_and_only_its_hash_is_kept(holder):
    requested = login_code_request(mobile="138 1234 5678", client_address=ADDRESS)

    assert (requested.mobile, requested.sent, requested.expires_minutes) == (MOBILE, True, 5)
    message = OutboundMessage.objects.get(purpose="verification")
    code = _sent_code()
    row = LoginCode.objects.get()
    assert (message.patient, message.priority, message.idempotency_key) == (holder, "urgent", f"portal-login:{row.pk}")
    assert message.context == {"code": code, "expires_minutes": "5"}
    assert (row.mobile, row.client_address, row.attempts, row.used_at) == (MOBILE, ADDRESS, 0, None)
    assert code not in row.code_hash
    assert len(row.code_hash) == 64


def test_an_unknown_number_gets_the_same_answer_and_no_message(db):
    requested = login_code_request(mobile="13700001111", client_address=ADDRESS)

    assert (requested.mobile, requested.sent) == ("+8613700001111", False)
    assert LoginCode.objects.filter(mobile="+8613700001111").count() == 1
    assert OutboundMessage.objects.count() == 0


def test_a_code_row_for_an_unknown_number_never_signs_in(db, monkeypatch):
    monkeypatch.setattr("appointments.services.portal.secrets.randbelow", lambda _limit: 123456)
    login_code_request(mobile="13700001111", client_address=ADDRESS)

    with pytest.raises(ValidationError) as error:
        login_code_verify(mobile="13700001111", code="123456")

    assert error.value.messages == ["The code is wrong; 4 attempts left."]
    assert LoginCode.objects.get().code_hash == ""
    assert PortalAccount.objects.count() == 0


def test_an_invalid_number_is_refused_naming_the_field(db):
    with pytest.raises(ValidationError) as error:
        login_code_request(mobile="12345", client_address=ADDRESS)

    assert list(error.value.error_dict) == ["mobile"]
    assert LoginCode.objects.count() == 0


def test_the_right_code_signs_in_once_creating_the_account_and_linking_the_holder(holder):
    login_code_request(mobile=MOBILE, client_address=ADDRESS)
    code = _sent_code()

    account = login_code_verify(mobile=MOBILE, code=code)

    assert account.mobile == MOBILE
    assert account.last_login_at is not None
    assert list(account.members.values_list("patient", "relationship")) == [(holder.pk, "self")]
    assert LoginCode.objects.get().used_at is not None
    with pytest.raises(ValidationError) as again:
        login_code_verify(mobile=MOBILE, code=code)
    assert _errors(again.value) == {"code": ["code"]}
    assert PortalAccount.objects.count() == 1


def test_an_expired_code_is_refused(holder):
    login_code_request(mobile=MOBILE, client_address=ADDRESS)
    code = _sent_code()

    with pytest.raises(ValidationError) as error:
        login_code_verify(mobile=MOBILE, code=code, now=timezone.now() + dt.timedelta(minutes=6))

    assert "expired" in error.value.messages[0]
    assert PortalAccount.objects.count() == 0
    assert LoginCode.objects.get().used_at is None


def test_five_wrong_codes_spend_the_code_even_the_right_one_after(holder):
    login_code_request(mobile=MOBILE, client_address=ADDRESS)
    code = _sent_code()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"

    answers = []
    for _attempt in range(5):
        with pytest.raises(ValidationError) as error:
            login_code_verify(mobile=MOBILE, code=wrong)
        answers.append(error.value.messages[0])
    with pytest.raises(ValidationError) as last:
        login_code_verify(mobile=MOBILE, code=code)

    assert answers[0] == "The code is wrong; 4 attempts left."
    assert answers[3] == "The code is wrong; 1 attempts left."
    assert answers[4] == "Too many wrong codes; request a new one."
    assert last.value.messages == ["Too many wrong codes; request a new one."]
    assert LoginCode.objects.get().attempts == 5
    assert PortalAccount.objects.count() == 0


def test_only_the_latest_code_is_checked(holder):
    login_code_request(mobile=MOBILE, client_address=ADDRESS)
    first = _sent_code()
    LoginCode.objects.update(created_at=timezone.now() - dt.timedelta(minutes=2))
    login_code_request(mobile=MOBILE, client_address=ADDRESS)
    second = _sent_code()

    account = login_code_verify(mobile=MOBILE, code=second)

    assert account.mobile == MOBILE
    older, latest = LoginCode.objects.order_by("pk")
    assert (older.used_at, latest.used_at is not None) == (None, True)
    if first != second:
        with pytest.raises(ValidationError):
            login_code_verify(mobile=MOBILE, code=first)


def test_one_code_per_minute_per_number(holder):
    login_code_request(mobile=MOBILE, client_address=ADDRESS)

    with pytest.raises(ValidationError) as error:
        login_code_request(mobile=MOBILE, client_address="198.51.100.1")

    assert _errors(error.value) == {"mobile": ["rate_limited"]}
    assert error.value.messages == ["At most 1 codes per minute may be sent to one number; please wait."]
    assert LoginCode.objects.count() == 1
    assert OutboundMessage.objects.count() == 1


def test_five_codes_per_hour_per_number(holder):
    for minutes in (50, 40, 30, 20, 10):
        login_code_request(mobile=MOBILE, client_address=ADDRESS)
        LoginCode.objects.filter(created_at__gt=timezone.now() - dt.timedelta(seconds=30)).update(
            created_at=timezone.now() - dt.timedelta(minutes=minutes)
        )

    with pytest.raises(ValidationError) as error:
        login_code_request(mobile=MOBILE, client_address=ADDRESS)

    assert error.value.messages == ["At most 5 codes per hour may be sent to one number; please wait."]
    assert LoginCode.objects.count() == 5


def test_twenty_codes_per_hour_per_address(db):
    LoginCode.objects.bulk_create(
        LoginCode(mobile=f"+86137000011{index:02d}", code_hash="x", client_address=ADDRESS, expires_at=timezone.now())
        for index in range(20)
    )

    with pytest.raises(ValidationError) as error:
        login_code_request(mobile=MOBILE, client_address=ADDRESS)

    assert error.value.messages == ["At most 20 codes per hour may be requested from one device; please wait."]
    assert LoginCode.objects.count() == 20
    assert login_code_request(mobile=MOBILE, client_address="198.51.100.1").mobile == MOBILE


def test_several_patients_on_one_number_are_linked_one_as_self(db):
    first = PatientFactory(mobile=MOBILE)
    second = PatientFactory(mobile=MOBILE)
    PatientFactory(mobile=MOBILE, is_deceased=True)
    login_code_request(mobile=MOBILE, client_address=ADDRESS)

    account = login_code_verify(mobile=MOBILE, code=_sent_code())

    assert list(account.members.order_by("patient_id").values_list("patient", "relationship")) == [
        (first.pk, "self"),
        (second.pk, "other"),
    ]


def test_registration_creates_the_patient_and_sends_the_code(db):
    requested = portal_register(mobile=MOBILE, name="王小明", national_id=NEW_ID, client_address=ADDRESS)

    patient = Patient.objects.get(national_id=NEW_ID)
    assert (patient.name, patient.mobile, patient.sex, patient.birth_date, patient.source) == (
        "王小明",
        MOBILE,
        "male",
        dt.date(1990, 5, 17),
        "online",
    )
    assert requested.sent is True
    account = login_code_verify(mobile=MOBILE, code=_sent_code())
    assert list(account.members.values_list("patient", "relationship")) == [(patient.pk, "self")]
    assert (
        AuditEntry.objects.filter(patient_uuid=patient.uuid, event="create").first().client == "portal:+86138****5678"
    )


def test_registration_matches_the_archive_but_never_takes_over_another_number(db):
    known = PatientFactory(name="王小明", national_id=NEW_ID, mobile="+8613900009999")

    with pytest.raises(ValidationError) as other_number:
        portal_register(mobile=MOBILE, name="王小明", national_id=NEW_ID, client_address=ADDRESS)
    with pytest.raises(ValidationError) as wrong_name:
        portal_register(mobile=MOBILE, name="王大明", national_id=NEW_ID, client_address=ADDRESS)

    assert _errors(other_number.value) == {"mobile": ["other_mobile"]}
    assert _errors(wrong_name.value) == {"name": ["mismatch"]}
    known.refresh_from_db()
    assert (known.name, known.mobile) == ("王小明", "+8613900009999")
    assert (LoginCode.objects.count(), OutboundMessage.objects.count()) == (0, 0)


def test_registration_of_a_known_patient_without_a_mobile_fills_it_in(db):
    known = PatientFactory(name="王小明", national_id=NEW_ID, mobile="")

    portal_register(mobile=MOBILE, name="王小明", national_id=NEW_ID, client_address=ADDRESS)

    known.refresh_from_db()
    assert known.mobile == MOBILE
    assert Patient.objects.filter(national_id=NEW_ID).count() == 1


def test_registration_refuses_a_bad_national_id(db):
    wrong_check_digit = NEW_ID[:-1] + ("0" if NEW_ID[-1] != "0" else "1")

    with pytest.raises(ValidationError) as error:
        portal_register(mobile=MOBILE, name="王小明", national_id=wrong_check_digit, client_address=ADDRESS)

    assert _errors(error.value) == {"national_id": ["check_digit"]}
    assert Patient.objects.count() == 0


@pytest.fixture
def account(holder):
    account = PortalAccount.objects.create(mobile=MOBILE)
    FamilyMember.objects.create(account=account, patient=holder, relationship="self")
    return account


def test_a_family_member_is_added_by_real_name_and_national_id(account):
    member = family_member_add(account=account, name="李小宝", national_id=NEW_ID, relationship="child")

    patient = member.patient
    assert (patient.name, patient.national_id, patient.mobile, member.relationship) == (
        "李小宝",
        NEW_ID,
        MOBILE,
        "child",
    )
    assert list(account.members.values_list("relationship", flat=True)) == ["self", "child"]


def test_a_family_member_in_the_archive_is_linked_unchanged_only_under_the_right_name(account):
    mother = PatientFactory(name="张秀英", national_id=NEW_ID, mobile="+8613900008888")

    with pytest.raises(ValidationError) as wrong_name:
        family_member_add(account=account, name="张秀", national_id=NEW_ID, relationship="parent")
    member = family_member_add(account=account, name="张秀英", national_id=NEW_ID, relationship="parent")
    with pytest.raises(ValidationError) as twice:
        family_member_add(account=account, name="张秀英", national_id=NEW_ID, relationship="parent")

    assert _errors(wrong_name.value) == {"name": ["mismatch"]}
    assert _errors(twice.value) == {"national_id": ["duplicate"]}
    assert member.patient == mother
    mother.refresh_from_db()
    assert mother.mobile == "+8613900008888"
    assert account.members.count() == 2


def test_a_second_self_and_an_unknown_relationship_are_refused(account):
    with pytest.raises(ValidationError) as second_self:
        family_member_add(account=account, name="李小宝", national_id=NEW_ID, relationship="self")
    with pytest.raises(ValidationError) as unknown:
        family_member_add(account=account, name="李小宝", national_id=NEW_ID, relationship="cousin")

    assert _errors(second_self.value) == {"relationship": ["self_taken"]}
    assert _errors(unknown.value) == {"relationship": ["invalid"]}
    assert account.members.count() == 1


def test_family_members_are_removed_but_the_holder_stays(account):
    child = family_member_add(account=account, name="李小宝", national_id=NEW_ID, relationship="child")
    holder_member = account.members.get(relationship="self")

    family_member_remove(member=child)
    with pytest.raises(ValidationError):
        family_member_remove(member=holder_member)

    assert list(account.members.values_list("relationship", flat=True)) == ["self"]
    assert Patient.objects.filter(national_id=NEW_ID).exists()
