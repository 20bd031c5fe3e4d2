"""Platform writes: counters, staff, integration keys."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _

from hcrm.audit import audit_acting_as
from hcrm.models import Counter, Department, IntegrationKey, StaffDepartment, User
from hcrm.roles import INTEGRATION_SCOPES, ROLE_CODES


def counter_next(*, name: str, count: int = 1) -> int:
    """Reserve `count` consecutive numbers of counter `name`; returns the last one."""
    with transaction.atomic():
        Counter.objects.get_or_create(name=name)
        updated = Counter.objects.filter(name=name).update(value=F("value") + count)
        assert updated == 1
        return Counter.objects.get(name=name).value


def counter_raise_to(*, name: str, value: int) -> None:
    """Make sure counter `name` will never hand out `value` or anything below it."""
    with transaction.atomic():
        counter, _created = Counter.objects.select_for_update().get_or_create(name=name)
        if counter.value < value:
            counter.value = value
            counter.save(update_fields=["value"])


def staff_create(
    *,
    actor: User | None,
    username: str,
    password: str | None,
    full_name: str,
    roles: Iterable[str],
    departments: Iterable[Department] = (),
    head_of: Iterable[Department] = (),
    **fields,
) -> User:
    """Create a staff member with roles and department memberships."""
    roles = list(roles)
    unknown = [role for role in roles if role not in ROLE_CODES]
    if unknown:
        raise ValidationError({"roles": _("Unknown role: %(role)s") % {"role": ", ".join(unknown)}})
    if User.objects.filter(username=username).exists():
        raise ValidationError({"username": _("This username is taken.")})
    with transaction.atomic(), audit_acting_as(actor):
        user = User(username=username, full_name=full_name, **fields)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save()
        user.groups.set(Group.objects.filter(name__in=roles))
        head_ids = {department.pk for department in head_of}
        StaffDepartment.objects.bulk_create(
            StaffDepartment(user=user, department=department, is_head=department.pk in head_ids)
            for department in {*departments, *head_of}
        )
    return user


def integration_key_create(
    *, actor: User | None, name: str, scopes: list[str], source_system: str = ""
) -> tuple[IntegrationKey, str]:
    """Issue an API key for another system; the plain key is returned once and never stored."""
    unknown = sorted(set(scopes) - set(INTEGRATION_SCOPES))
    if unknown:
        raise ValidationError({"scopes": _("Unknown scope: %(scope)s") % {"scope": ", ".join(unknown)}})
    with transaction.atomic(), audit_acting_as(actor):
        key, plain = IntegrationKey.objects.create_key(
            name=name, scopes=sorted(set(scopes)), source_system=source_system
        )
    return key, plain


def integration_key_revoke(*, actor: User | None, key: IntegrationKey) -> None:
    """Revoke a key; revoked keys stay listed so their past use can be traced."""
    with transaction.atomic(), audit_acting_as(actor):
        key.revoked = True
        key.save(update_fields=["revoked"])
