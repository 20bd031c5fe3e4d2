"""Platform API: token sign-in and lockout, the caller's profile, departments, staff, audit, integration keys."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token

from hcrm.models import AuditEntry, Department, IntegrationKey, User
from hcrm.services import integration_key_create
from patients.models import Patient
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"


# --- Tokens ------------------------------------------------------------------------------


def test_token_for_the_right_password(api, staff):
    response = api.post("/api/v1/auth/token/", {"username": "doctor", "password": PASSWORD}, format="json")

    assert response.status_code == 200
    assert response.json() == {"token": Token.objects.get(user=staff["doctor"]).key}


def test_wrong_password_is_a_401_naming_the_reason(api, staff):
    response = api.post("/api/v1/auth/token/", {"username": "doctor", "password": "wrong"}, format="json")

    assert response.status_code == 401
    assert response.json() == {
        "errors": [{"field": None, "code": "invalid_credentials", "message": "Wrong username or password."}]
    }
    assert Token.objects.count() == 0
    assert AuditEntry.objects.get(event="login_failed").additional_data == {"username": "doctor"}


def test_token_request_needs_both_fields(api, staff):
    response = api.post("/api/v1/auth/token/", {"username": "doctor"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "errors": [{"field": "password", "code": "required", "message": "This field is required."}]
    }


def test_repeated_failures_lock_the_account_even_for_the_right_password(api, staff):
    # given five failed sign-ins (LOGIN_FAILURE_LIMIT)
    for _attempt in range(5):
        api.post("/api/v1/auth/token/", {"username": "doctor", "password": "wrong"}, format="json")

    # when
    response = api.post("/api/v1/auth/token/", {"username": "doctor", "password": PASSWORD}, format="json")

    # then
    assert response.status_code == 429
    assert response.json() == {
        "errors": [
            {
                "field": None,
                "code": "locked_out",
                "message": "Too many failed sign-ins: this account is locked for a while. "
                "Try again later or ask an administrator.",
            }
        ]
    }
    assert Token.objects.count() == 0


def test_lockout_is_per_account(api, staff):
    for _attempt in range(5):
        api.post("/api/v1/auth/token/", {"username": "doctor", "password": "wrong"}, format="json")

    response = api.post("/api/v1/auth/token/", {"username": "nurse", "password": PASSWORD}, format="json")

    assert response.status_code == 200


def test_deleting_the_token_signs_the_client_out(api, staff):
    client = api.as_user(staff["doctor"])

    response = client.delete("/api/v1/auth/token/")

    assert response.status_code == 204
    assert Token.objects.filter(user=staff["doctor"]).exists() is False
    assert client.get("/api/v1/me/").status_code == 401


def test_token_keyword_is_also_accepted(api, staff):
    token = Token.objects.create(user=staff["nurse"])
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    assert api.get("/api/v1/me/").json()["username"] == "nurse"


# --- Me -------------------------------------------------------------------------------------


def test_me_describes_the_caller(api, staff):
    response = api.as_user(staff["department_head"]).get("/api/v1/me/")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(staff["department_head"].uuid)
    assert (body["username"], body["roles"], body["departments"]) == ("department_head", ["department_head"], ["NK"])
    assert body["is_active"] is True


def test_me_needs_a_signed_in_caller(api):
    assert api.get("/api/v1/me/").status_code == 401


# --- Departments ------------------------------------------------------------------------------


def test_any_signed_in_caller_lists_departments(api, staff):
    response = api.as_user(staff["analyst"]).get("/api/v1/departments/")

    assert response.status_code == 200
    assert [row["code"] for row in response.json()] == ["NK", "ZJ"]
    assert response.json()[0]["name_en"] == "Internal medicine"


def test_administrator_adds_and_renames_a_department(api, staff):
    client = api.as_user(staff["administrator"])

    created = client.post("/api/v1/departments/", {"code": "TN", "name": "推拿科", "kind": "clinical"}, format="json")
    renamed = client.patch("/api/v1/departments/TN/", {"name_en": "Tuina"}, format="json")

    assert created.status_code == 201
    assert renamed.status_code == 200
    assert Department.objects.filter(code="TN", name="推拿科", name_en="Tuina").count() == 1


def test_doctor_cannot_add_or_change_departments(api, staff):
    client = api.as_user(staff["doctor"])

    created = client.post("/api/v1/departments/", {"code": "TN", "name": "推拿科"}, format="json")
    changed = client.patch("/api/v1/departments/NK/", {"name": "改名"}, format="json")

    assert (created.status_code, changed.status_code) == (403, 403)
    assert list(Department.objects.values_list("code", "name")) == [("NK", "内科"), ("ZJ", "针灸科")]


# --- Staff -------------------------------------------------------------------------------------


def test_administrator_sees_all_staff(api, staff):
    response = api.as_user(staff["administrator"]).get("/api/v1/staff/")

    assert response.status_code == 200
    assert [row["username"] for row in response.json()["results"]] == sorted(staff)


def test_department_head_sees_only_own_departments_staff(api, staff):
    response = api.as_user(staff["department_head"]).get("/api/v1/staff/")

    usernames = [row["username"] for row in response.json()["results"]]
    assert usernames == sorted(name for name in staff if name != "other_doctor")


@pytest.mark.parametrize("role", ["doctor", "nurse", "agent", "analyst"])
def test_other_roles_cannot_list_staff(api, staff, role):
    assert api.as_user(staff[role]).get("/api/v1/staff/").status_code == 403


def test_administrator_creates_staff(api, staff):
    payload = {
        "username": "zhaoliu",
        "full_name": "赵六",
        "password": "Astragalus-Root-77",
        "roles": ["nurse"],
        "departments": ["ZJ"],
        "title": "senior_nurse",
    }

    response = api.as_user(staff["administrator"]).post("/api/v1/staff/", payload, format="json")

    assert response.status_code == 201
    body = response.json()
    assert (body["username"], body["roles"], body["departments"], body["title"]) == (
        "zhaoliu",
        ["nurse"],
        ["ZJ"],
        "senior_nurse",
    )
    assert "password" not in body
    assert User.objects.get(username="zhaoliu").check_password("Astragalus-Root-77")


def test_weak_password_and_taken_username_are_refused_by_field(api, staff):
    client = api.as_user(staff["administrator"])
    base = {"full_name": "赵六", "roles": ["nurse"], "departments": ["NK"]}

    weak = client.post("/api/v1/staff/", {**base, "username": "zhaoliu", "password": "1234567890"}, format="json")
    taken = client.post("/api/v1/staff/", {**base, "username": "doctor", "password": "Astragalus-77"}, format="json")

    assert weak.status_code == 400
    assert {error["field"] for error in weak.json()["errors"]} == {"password"}
    assert taken.json() == {"errors": [{"field": "username", "code": "invalid", "message": "This username is taken."}]}
    assert User.objects.count() == len(staff)


def test_department_head_cannot_create_staff(api, staff):
    payload = {"username": "x12", "full_name": "X", "password": "Astragalus-77", "roles": ["nurse"], "departments": []}

    response = api.as_user(staff["department_head"]).post("/api/v1/staff/", payload, format="json")

    assert response.status_code == 403
    assert User.objects.count() == len(staff)


# --- Audit ---------------------------------------------------------------------------------------


def test_administrator_reads_the_whole_audit_trail(api, staff, patient):
    api.as_user(staff["other_doctor"]).get("/api/v1/patients/")
    api.as_user(staff["doctor"]).get(f"/api/v1/patients/{patient.uuid}/")

    response = api.as_user(staff["administrator"]).get("/api/v1/audit/")

    rows = response.json()["results"]
    assert [(row["event"], row["actor"]) for row in rows] == [
        ("view", "doctor"),
        ("list", "other_doctor"),
        ("create", None),
        ("create", None),
    ]
    assert rows[0]["patient_uuid"] == str(patient.uuid)
    assert rows[0]["remote_addr"] == "127.0.0.1"


def test_department_head_reads_only_own_staff_activity(api, staff, patient):
    api.as_user(staff["other_doctor"]).get("/api/v1/patients/")
    api.as_user(staff["doctor"]).get(f"/api/v1/patients/{patient.uuid}/")

    response = api.as_user(staff["department_head"]).get("/api/v1/audit/")

    assert [(row["event"], row["actor"]) for row in response.json()["results"]] == [("view", "doctor")]


def test_audit_trail_filters_by_patient_event_and_actor(api, staff, patient):
    api.as_user(staff["doctor"]).get(f"/api/v1/patients/{patient.uuid}/")
    api.as_user(staff["nurse"]).get(f"/api/v1/patients/{patient.uuid}/")
    client = api.as_user(staff["administrator"])

    by_patient = client.get("/api/v1/audit/", {"patient": str(patient.uuid), "event": "view"}).json()["results"]
    by_actor = client.get("/api/v1/audit/", {"actor": str(staff["nurse"].uuid)}).json()["results"]

    assert [row["actor"] for row in by_patient] == ["nurse", "doctor"]
    assert [row["actor"] for row in by_actor] == ["nurse"]


@pytest.mark.parametrize("role", ["doctor", "nurse", "agent", "analyst"])
def test_other_roles_cannot_read_the_audit_trail(api, staff, role):
    assert api.as_user(staff[role]).get("/api/v1/audit/").status_code == 403


# --- Integration keys ------------------------------------------------------------------------------


def test_administrator_issues_a_key_shown_once(api, staff):
    client = api.as_user(staff["administrator"])

    created = client.post(
        "/api/v1/integration-keys/", {"name": "HIS", "scopes": ["patients.read"], "source_system": "his"}, format="json"
    )
    listed = client.get("/api/v1/integration-keys/")

    assert created.status_code == 201
    key = IntegrationKey.objects.get()
    assert created.json()["key"].startswith(key.prefix + ".")
    assert (created.json()["scopes"], created.json()["revoked"]) == (["patients.read"], False)
    assert "key" not in listed.json()["results"][0]
    assert listed.json()["results"][0]["prefix"] == key.prefix


def test_doctor_cannot_issue_keys(api, staff):
    response = api.as_user(staff["doctor"]).post(
        "/api/v1/integration-keys/", {"name": "HIS", "scopes": ["patients.read"]}, format="json"
    )

    assert response.status_code == 403
    assert IntegrationKey.objects.count() == 0


def test_key_with_read_scope_lists_patients_of_every_department(api, staff, patient, acupuncture):
    # given
    other = PatientFactory(name="针灸病人", departments=[acupuncture])
    _key, plain = integration_key_create(actor=None, name="HIS", scopes=["patients.read"])
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")

    # when
    response = api.get("/api/v1/patients/", {"ordering": "mrn"})

    # then
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [str(patient.uuid), str(other.uuid)]
    assert response.json()["results"][0]["national_id"].count("*") == 8
    assert api.get("/api/v1/me/").json() == {"integration": "integration:HIS", "scopes": ["patients.read"]}
    entry = AuditEntry.objects.get(event="search")
    assert (entry.actor, entry.client) == (None, "integration:HIS")


def test_key_without_the_scope_is_refused(api, staff, patient):
    _key, plain = integration_key_create(actor=None, name="lab", scopes=["hl7.submit"])
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")

    listed = api.get("/api/v1/patients/")
    created = api.post("/api/v1/patients/", {"name": "李四"}, format="json")

    assert (listed.status_code, created.status_code) == (403, 403)
    assert list(Patient.objects.values_list("name", flat=True)) == ["张三"]


def test_key_with_the_sensitive_scope_sees_national_ids(api, staff, patient):
    _key, plain = integration_key_create(actor=None, name="EMR", scopes=["patients.read", "patients.sensitive"])
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")

    response = api.get(f"/api/v1/patients/{patient.uuid}/")

    assert response.json()["national_id"] == patient.national_id
    assert response.json()["sensitive_revealed"] is True


def test_key_with_write_scope_registers_a_patient(api, staff):
    _key, plain = integration_key_create(actor=None, name="HIS", scopes=["patients.write"])
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")

    response = api.post("/api/v1/patients/", {"name": "李四", "mobile": "13812345678"}, format="json")

    assert response.status_code == 201
    entry = AuditEntry.objects.get(event="create", content_type__model="patient")
    assert (entry.actor, entry.client, str(entry.patient_uuid)) == (None, "integration:HIS", response.json()["id"])


def test_revoked_and_malformed_keys_are_401(api, staff):
    client = api.as_user(staff["administrator"])
    created = client.post(
        "/api/v1/integration-keys/", {"name": "HIS", "scopes": ["patients.read"]}, format="json"
    ).json()
    plain = created["key"]
    revoked = client.delete(f"/api/v1/integration-keys/{created['prefix']}/")
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    after_revoke = api.get("/api/v1/patients/")
    api.credentials(HTTP_AUTHORIZATION="Api-Key")
    malformed = api.get("/api/v1/patients/")
    api.credentials(HTTP_AUTHORIZATION="Api-Key not.a-key")
    unknown = api.get("/api/v1/patients/")

    assert revoked.status_code == 204
    assert IntegrationKey.objects.get().revoked is True
    assert (after_revoke.status_code, malformed.status_code, unknown.status_code) == (401, 401, 401)
    assert after_revoke.json()["errors"][0]["message"] == "Invalid API key."
    assert malformed.json()["errors"][0]["message"] == "Invalid API key header."
