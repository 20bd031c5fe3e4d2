"""Shared fixtures: one department pair and one member of staff per role."""

from __future__ import annotations

import factory.random
import pytest
from django.utils import translation
from rest_framework.test import APIClient

from hcrm.roles import Role
from tests.factories import DepartmentFactory, PatientFactory, UserFactory

factory.random.reseed_random("hcrm-tests")


@pytest.fixture(autouse=True)
def english_between_tests():
    """A request in Chinese leaves Chinese active in this thread; each test starts in English."""
    translation.activate("en")
    yield
    translation.activate("en")


@pytest.fixture(autouse=True)
def process_caches_cleared():
    """Booking rules, source profiles, message templates, outreach settings and the HL7 department index are
    kept per process; what a rolled-back test stored must not outlive it."""
    import integrations.profile_cache  # noqa: F401  (its cache exists before the first test)
    from hcrm.process_cache import process_caches_clear
    from integrations.hl7v2.apply import departments_forget

    def clear() -> None:
        process_caches_clear()
        departments_forget()

    clear()
    yield
    clear()


@pytest.fixture
def internal_medicine(db):
    return DepartmentFactory(code="NK", name="内科", name_en="Internal medicine")


@pytest.fixture
def acupuncture(db):
    return DepartmentFactory(code="ZJ", name="针灸科", name_en="Acupuncture")


@pytest.fixture
def staff(db, internal_medicine, acupuncture):
    """One user per role, all in internal medicine, plus a doctor of acupuncture (the "other department")."""
    users = {role: UserFactory(username=role, roles=[role], departments=[internal_medicine]) for role in Role.values}
    users["other_doctor"] = UserFactory(username="other_doctor", roles=[Role.DOCTOR], departments=[acupuncture])
    return users


@pytest.fixture
def patient(db, internal_medicine):
    """A patient of internal medicine."""
    return PatientFactory(name="张三", departments=[internal_medicine])


@pytest.fixture
def api():
    """An API client; `api.as_user(user)` signs it in with a bearer token."""

    class Client(APIClient):
        def as_user(self, user):
            from rest_framework.authtoken.models import Token

            token, _ = Token.objects.get_or_create(user=user)
            self.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
            return self

    return Client()


@pytest.fixture(autouse=True)
def _fresh_audit_context():
    """django-auditlog keeps the last request's context in a context variable; each test starts without one."""
    from auditlog.context import auditlog_value

    token = auditlog_value.set({})
    yield
    auditlog_value.reset(token)
