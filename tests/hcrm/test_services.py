"""Platform writes: counters, staff, integration keys."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from hcrm import services
from hcrm.models import Counter, IntegrationKey, StaffDepartment, User
from hcrm.roles import Role

pytestmark = pytest.mark.django_db


def test_counter_hands_out_consecutive_numbers():
    assert services.counter_next(name="mrn") == 1
    assert services.counter_next(name="mrn") == 2
    assert services.counter_next(name="mrn", count=10) == 12
    assert services.counter_next(name="other") == 1


def test_counter_raise_to_never_lowers():
    services.counter_raise_to(name="mrn", value=500)
    services.counter_raise_to(name="mrn", value=20)

    assert Counter.objects.get(name="mrn").value == 500
    assert services.counter_next(name="mrn") == 501


def test_staff_create_sets_roles_departments_and_heads(staff, internal_medicine, acupuncture):
    # when
    user = services.staff_create(
        actor=staff["administrator"],
        username="wangyi",
        password="Ginseng-Root-42",
        full_name="王医",
        roles=[Role.DOCTOR, Role.DEPARTMENT_HEAD],
        departments=[internal_medicine],
        head_of=[acupuncture],
        title="chief_physician",
    )

    # then
    assert sorted(user.role_codes) == ["department_head", "doctor"]
    assert set(StaffDepartment.objects.filter(user=user).values_list("department__code", "is_head")) == {
        ("NK", False),
        ("ZJ", True),
    }
    assert user.check_password("Ginseng-Root-42")
    assert user.title == "chief_physician"


def test_staff_create_refuses_unknown_roles_and_taken_usernames(staff):
    users_before = User.objects.count()

    with pytest.raises(ValidationError) as unknown:
        services.staff_create(actor=None, username="x1", password=None, full_name="X", roles=["surgeon"])
    with pytest.raises(ValidationError) as taken:
        services.staff_create(actor=None, username="doctor", password=None, full_name="X", roles=[Role.NURSE])

    assert unknown.value.message_dict == {"roles": ["Unknown role: surgeon"]}
    assert taken.value.message_dict == {"username": ["This username is taken."]}
    assert User.objects.count() == users_before


def test_staff_without_password_cannot_sign_in(staff):
    user = services.staff_create(actor=None, username="sso1", password=None, full_name="单点", roles=[Role.NURSE])

    assert user.has_usable_password() is False


def test_integration_key_is_shown_once_and_stored_hashed():
    key, plain = services.integration_key_create(
        actor=None, name="HIS", scopes=["patients.read", "patients.read"], source_system="his"
    )

    assert key.scopes == ["patients.read"]
    assert plain.startswith(key.prefix + ".")
    assert plain not in IntegrationKey.objects.values_list("hashed_key", flat=True)
    assert IntegrationKey.objects.get_from_key(plain) == key


def test_integration_key_refuses_unknown_scopes():
    with pytest.raises(ValidationError) as error:
        services.integration_key_create(actor=None, name="x", scopes=["patients.read", "root"])

    assert error.value.message_dict == {"scopes": ["Unknown scope: root"]}
    assert IntegrationKey.objects.count() == 0


def test_revoked_key_stays_listed_but_is_unusable():
    key, plain = services.integration_key_create(actor=None, name="HIS", scopes=["patients.read"])

    services.integration_key_revoke(actor=None, key=key)

    assert IntegrationKey.objects.filter(pk=key.pk, revoked=True).exists()
    assert IntegrationKey.objects.is_valid(plain) is False
