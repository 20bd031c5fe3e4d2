"""Roles are groups with default permissions; integration scopes stand in for permissions."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission

from hcrm.models import IntegrationKey
from hcrm.rest import IntegrationPrincipal, RolePermission
from hcrm.roles import INTEGRATION_SCOPES, ROLE_CODES, ROLE_PERMISSIONS, Role, roles_sync
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _group_permissions(name: str) -> set[str]:
    return {
        f"{app}.{codename}"
        for app, codename in Group.objects.get(name=name).permissions.values_list("content_type__app_label", "codename")
    }


def test_every_role_is_a_group_with_exactly_its_default_permissions():
    # given the post-migrate sync that ran when the test database was created

    # then
    assert set(Group.objects.values_list("name", flat=True)) >= ROLE_CODES
    for role, permissions in ROLE_PERMISSIONS.items():
        assert _group_permissions(role) == set(permissions), role


def test_analyst_holds_only_aggregates_and_pseudonymous_research_data():
    # statistics, counting segments, research answers under pseudonyms; never a patient's identity
    assert _group_permissions(Role.ANALYST) == {
        "analytics.view_statistics",
        "patients.view_segment",
        "followups.view_researchcohort",
        "followups.export_research",
    }


def test_only_administrators_export_research_free_text():
    holders = {
        role for role, permissions in ROLE_PERMISSIONS.items() if "followups.export_research_free_text" in permissions
    }

    assert holders == {Role.ADMINISTRATOR}


def test_only_administrators_see_sensitive_fields_and_every_department():
    holders = {role for role, permissions in ROLE_PERMISSIONS.items() if "patients.view_sensitive" in permissions}
    all_departments = {
        role for role, permissions in ROLE_PERMISSIONS.items() if "patients.view_all_patients" in permissions
    }

    assert holders == {Role.ADMINISTRATOR}
    assert all_departments == {Role.ADMINISTRATOR, Role.AGENT}


def test_nurse_records_allergies_histories_and_lab_results_but_not_diagnoses():
    nurse = set(ROLE_PERMISSIONS[Role.NURSE])

    assert {"patients.add_allergy", "patients.add_clinicalhistory", "patients.add_labresult"} <= nurse
    assert "patients.add_diagnosis" not in nurse
    assert "patients.add_encounter" not in nurse
    assert "patients.view_diagnosis" in nurse


def test_sync_is_idempotent_and_keeps_what_an_administrator_granted():
    # given an extra permission granted to doctors and one default taken away
    doctors = Group.objects.get(name=Role.DOCTOR)
    extra = Permission.objects.get(content_type__app_label="patients", codename="delete_allergy")
    removed = Permission.objects.get(content_type__app_label="patients", codename="view_encounter")
    doctors.permissions.add(extra)
    doctors.permissions.remove(removed)
    groups_before = Group.objects.count()

    # when
    roles_sync()
    roles_sync()

    # then the default is back, the extra stays, no group is duplicated
    assert _group_permissions(Role.DOCTOR) == {*ROLE_PERMISSIONS[Role.DOCTOR], "patients.delete_allergy"}
    assert Group.objects.count() == groups_before


def test_sync_waits_while_permissions_are_missing():
    # given a permission that a later migration would create
    Group.objects.filter(name__in=ROLE_CODES).delete()
    Permission.objects.filter(content_type__app_label="analytics", codename="view_statistics").delete()

    # when
    roles_sync()

    # then nothing is half-created
    assert Group.objects.filter(name__in=ROLE_CODES).count() == 0


def test_role_codes_ignore_groups_that_are_not_roles(internal_medicine):
    # given
    user = UserFactory(roles=[Role.DOCTOR, Role.NURSE], departments=[internal_medicine])
    user.groups.add(Group.objects.create(name="night shift"))

    # then
    assert sorted(user.role_codes) == ["doctor", "nurse"]
    assert user.department_ids == {internal_medicine.pk}


def test_integration_principal_holds_the_permissions_of_its_scopes():
    # given
    key, _plain = IntegrationKey.objects.create_key(name="HIS", scopes=["patients.read", "hl7.submit"])

    # when
    principal = IntegrationPrincipal(key)

    # then
    assert principal.permissions == {*INTEGRATION_SCOPES["patients.read"], "integrations.submit_hl7"}
    assert principal.has_perm("patients.view_labresult") is True
    assert principal.has_perm("patients.add_patient") is False
    assert principal.has_perms(["patients.view_patient", "patients.view_all_patients"]) is True
    assert principal.has_perm("patients.view_sensitive") is False
    assert str(principal) == "integration:HIS"


def test_unknown_scopes_grant_nothing():
    key, _plain = IntegrationKey.objects.create_key(name="legacy", scopes=["everything"])

    assert IntegrationPrincipal(key).permissions == set()


class _View:
    def __init__(self, queryset=None, required_permissions=None, action=None):
        self.queryset = queryset
        if required_permissions is not None:
            self.required_permissions = required_permissions
        self.action = action


class _Request:
    def __init__(self, method):
        self.method = method


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("GET", ["patients.view_allergy"]),
        ("HEAD", ["patients.view_allergy"]),
        ("POST", ["patients.add_allergy"]),
        ("PUT", ["patients.change_allergy"]),
        ("PATCH", ["patients.change_allergy"]),
        ("DELETE", ["patients.delete_allergy"]),
        ("TRACE", ["__method_not_allowed__"]),
    ],
)
def test_role_permission_maps_methods_to_model_permissions(method, expected):
    from patients.models import Allergy

    view = _View(queryset=Allergy.objects.none())

    assert RolePermission().permissions_for(_Request(method), view) == expected


def test_declared_permissions_by_action_win_over_the_method():
    view = _View(required_permissions={"export": ["patients.view_patient"], "POST": ["x.add"]}, action="export")

    assert RolePermission().permissions_for(_Request("GET"), view) == ["patients.view_patient"]
    assert RolePermission().permissions_for(_Request("POST"), _View(required_permissions={"POST": ["x.add"]})) == [
        "x.add"
    ]
