"""Every API error has one body: `{"errors": [{"field", "code", "message"}]}`."""

from __future__ import annotations

import pytest

from hcrm.models import Department, IntegrationKey
from patients.models import Patient

pytestmark = pytest.mark.django_db


def test_400_names_each_field_and_its_code(api, staff):
    response = api.as_user(staff["doctor"]).post(
        "/api/v1/patients/", {"name": "", "sex": "robot", "postal_code": "1000"}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {"field": "name", "code": "blank", "message": "This field may not be blank."},
            {"field": "sex", "code": "invalid_choice", "message": '"robot" is not a valid choice.'},
            {"field": "postal_code", "code": "invalid", "message": "This value does not match the required pattern."},
        ]
    }
    assert Patient.objects.count() == 0


def test_400_from_a_service_keeps_the_field_and_code(api, staff):
    response = api.as_user(staff["doctor"]).post(
        "/api/v1/patients/", {"name": "李四", "mobile": "12345"}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "errors": [{"field": "mobile", "code": "phone", "message": "Enter a valid phone number."}]
    }


def test_400_without_a_field_has_field_null(api, staff, patient):
    from tests.factories import EncounterFactory

    EncounterFactory(patient=patient)

    response = api.as_user(staff["administrator"]).delete(f"/api/v1/patients/{patient.uuid}/")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": None,
            "code": "invalid",
            "message": "This patient has a clinical record and cannot be deleted; "
            "merge the record into the right patient instead.",
        }
    ]


def test_400_inside_a_list_names_the_item_from_the_first(api, staff):
    # bug: the first item (index 0) was reported as the whole list
    client = api.as_user(staff["administrator"])

    first = client.post("/api/v1/integration-keys/", {"name": "x", "scopes": ["root", "patients.read"]}, format="json")
    second = client.post("/api/v1/integration-keys/", {"name": "x", "scopes": ["patients.read", "root"]}, format="json")

    assert first.json() == {
        "errors": [{"field": "scopes.0", "code": "invalid_choice", "message": '"root" is not a valid choice.'}]
    }
    assert second.json()["errors"][0]["field"] == "scopes.1"
    assert IntegrationKey.objects.count() == 0


def test_400_for_a_bad_page_number(api, staff):
    response = api.as_user(staff["doctor"]).get("/api/v1/patients/", {"page": "0"})

    assert response.status_code == 400
    assert response.json() == {"errors": [{"field": "page", "code": "invalid", "message": "Pages start at 1."}]}


def test_401_without_credentials(api):
    response = api.get("/api/v1/patients/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json() == {
        "errors": [
            {"field": None, "code": "not_authenticated", "message": "Authentication credentials were not provided."}
        ]
    }


def test_401_for_an_unknown_token(api, staff):
    api.credentials(HTTP_AUTHORIZATION="Bearer 0000000000000000000000000000000000000000")

    response = api.get("/api/v1/patients/")

    assert response.status_code == 401
    assert response.json() == {
        "errors": [{"field": None, "code": "authentication_failed", "message": "Invalid token."}]
    }


def test_403_for_a_role_without_the_permission(api, staff):
    response = api.as_user(staff["analyst"]).get("/api/v1/patients/")

    assert response.status_code == 403
    assert response.json() == {
        "errors": [
            {
                "field": None,
                "code": "permission_denied",
                "message": "You do not have permission to perform this action.",
            }
        ]
    }


def test_404_for_an_unknown_record(api, staff):
    response = api.as_user(staff["doctor"]).get("/api/v1/patients/6f1c1a0e-0000-4000-8000-000000000000/")

    assert response.status_code == 404
    assert response.json() == {"errors": [{"field": None, "code": "not_found", "message": "Not found."}]}


def test_405_for_a_method_the_endpoint_does_not_have(api, staff):
    response = api.as_user(staff["administrator"]).delete("/api/v1/departments/NK/")

    assert response.status_code == 405
    assert response.json() == {
        "errors": [{"field": None, "code": "method_not_allowed", "message": 'Method "DELETE" not allowed.'}]
    }
    assert Department.objects.filter(code="NK").exists()


@pytest.mark.parametrize("path", ["/api/v1/no-such-thing/", "/api/nothing", "/api/v1/patients/not-a-uuid/x/"])
def test_404_outside_drf_under_api_is_json_too(api, staff, path):
    response = api.as_user(staff["doctor"]).get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "errors": [{"field": None, "code": "not_found", "message": "There is nothing at this address."}]
    }


def test_404_outside_the_api_is_a_page(client, staff):
    client.force_login(staff["doctor"])

    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert "There is nothing at this address." in response.content.decode()
