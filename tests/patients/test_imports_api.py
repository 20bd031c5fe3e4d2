"""REST API of the spreadsheet import: permission matrix, upload with dry run, import, errors."""

from __future__ import annotations

import pytest

from hcrm.celery import app as celery_app
from hcrm.models import IntegrationKey
from patients.models import Patient, PatientImport
from tests.patients.imports_files import csv_bytes, good_rows, upload, xlsx_bytes

pytestmark = pytest.mark.django_db

URL = "/api/v1/patient-imports/"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def eager_tasks():
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def _upload(api, content: bytes, name: str = "patients.csv"):
    return api.post(URL, {"file": upload(content, name)}, format="multipart")


def _with_bad_row() -> bytes:
    return csv_bytes([*good_rows(), ["", "男", "", "", "", "", "", ""]])


def test_anonymous_gets_401_and_uploads_nothing(api):
    response = _upload(api, csv_bytes(good_rows()))

    assert response.status_code == 401
    assert PatientImport.objects.count() == 0


@pytest.mark.parametrize("role", ["doctor", "nurse", "analyst"])
def test_wrong_role_gets_403_and_uploads_nothing(api, staff, role):
    response = _upload(api.as_user(staff[role]), csv_bytes(good_rows()))

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
    assert PatientImport.objects.count() == 0


def test_an_integration_key_has_no_import_scope(api):
    _key, secret = IntegrationKey.objects.create_key(name="his", scopes=["patients.write"])
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")

    response = _upload(api, csv_bytes(good_rows()))

    assert response.status_code == 403
    assert PatientImport.objects.count() == 0


def test_upload_returns_the_dry_run_report(api, staff):
    response = _upload(api.as_user(staff["agent"]), _with_bad_row())

    body = response.json()
    assert response.status_code == 201
    assert (body["status"], body["total_rows"], body["good_rows"], body["bad_rows"]) == ("dry_run", 4, 3, 1)
    assert body["report"] == [{"row": 5, "field": "name", "code": "required", "message": "The name is missing."}]
    assert body["uploaded_by"] == "agent"
    assert body["file_format"] == "csv"
    assert Patient.objects.count() == 0


def test_an_xlsx_upload_is_read_as_a_workbook(api, staff):
    response = _upload(api.as_user(staff["agent"]), xlsx_bytes(good_rows()), "patients.xlsx")

    assert response.status_code == 201
    assert (response.json()["file_format"], response.json()["total_rows"]) == ("xlsx", 3)


def test_import_starts_in_the_background_and_finishes(api, staff, eager_tasks, django_capture_on_commit_callbacks):
    created = _upload(api.as_user(staff["administrator"]), _with_bad_row()).json()

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"{URL}{created['id']}/import/", {"mode": "good_rows_only"}, format="json")

    assert response.status_code == 202
    assert response.json()["status"] == "importing"
    finished = api.get(f"{URL}{created['id']}/").json()
    assert (finished["status"], finished["mode"], finished["created_count"], finished["skipped_count"]) == (
        "imported",
        "good_rows_only",
        3,
        1,
    )
    assert Patient.objects.count() == 3


def test_all_or_nothing_with_bad_rows_is_a_400_naming_mode(api, staff):
    created = _upload(api.as_user(staff["agent"]), _with_bad_row()).json()

    response = api.post(f"{URL}{created['id']}/import/", {"mode": "all_or_nothing"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "field": "mode",
                "code": "bad_rows",
                "message": "The file has 1 bad rows: correct them, or import only the good rows.",
            }
        ]
    }
    assert PatientImport.objects.get().status == "dry_run"


def test_wrong_role_cannot_start_an_import(api, staff):
    created = _upload(api.as_user(staff["agent"]), csv_bytes(good_rows())).json()

    response = api.as_user(staff["doctor"]).post(f"{URL}{created['id']}/import/", {"mode": "all_or_nothing"})

    assert response.status_code == 403
    assert PatientImport.objects.get().status == "dry_run"


def test_an_unreadable_file_is_a_400_naming_file(api, staff):
    response = _upload(api.as_user(staff["agent"]), "备注\nx\n".encode(), "notes.csv")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "file",
            "code": "unreadable",
            "message": "The first row must hold the column headers, with at least a name column (姓名 or name).",
        }
    ]


def test_an_oversized_upload_is_a_400_naming_file(api, staff, settings):
    settings.PATIENT_IMPORT_MAX_MB = 1

    response = _upload(api.as_user(staff["agent"]), csv_bytes([["王" * 1000]] * 400))

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "file", "code": "too_large", "message": "Files up to 1 MB can be imported."}
    ]
    assert PatientImport.objects.count() == 0


def test_the_list_shows_own_imports_without_reports(api, staff):
    _upload(api.as_user(staff["department_head"]), csv_bytes(good_rows()))
    _upload(api.as_user(staff["administrator"]), csv_bytes(good_rows()))

    mine = api.as_user(staff["department_head"]).get(URL).json()
    everyone = api.as_user(staff["administrator"]).get(URL).json()

    assert [row["uploaded_by"] for row in mine["results"]] == ["department_head"]
    assert "report" not in mine["results"][0]
    assert sorted(row["uploaded_by"] for row in everyone["results"]) == ["administrator", "department_head"]
