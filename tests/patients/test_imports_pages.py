"""Console pages of the spreadsheet import: permission matrix, upload and dry run, import, report, template."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from hcrm.celery import app as celery_app
from patients.imports.columns import TEMPLATE_HEADERS
from patients.models import Patient, PatientImport
from patients.services.imports import patient_import_create
from tests.patients.imports_files import WANG_ID, csv_bytes, good_rows, upload

pytestmark = pytest.mark.django_db


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


def _with_bad_row() -> bytes:
    return csv_bytes([*good_rows(), ["", "男", "", "", "", "", "", ""]])


def _signed_in(client, user):
    client.force_login(user)
    return client


def _post_file(client, content: bytes, name: str = "patients.csv", **extra):
    return client.post("/patients/imports/", {"file": upload(content, name), "assigner": ""}, **extra)


def test_anonymous_is_sent_to_sign_in_and_uploads_nothing(client):
    assert client.get("/patients/imports/").status_code == 302
    response = _post_file(client, csv_bytes(good_rows()))

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert PatientImport.objects.count() == 0


@pytest.mark.parametrize("role", ["doctor", "nurse", "analyst"])
def test_roles_without_the_import_permission_are_refused_and_change_nothing(client, staff, role):
    _signed_in(client, staff[role])

    assert client.get("/patients/imports/").status_code == 403
    assert _post_file(client, csv_bytes(good_rows())).status_code == 403
    assert client.get("/patients/imports/template.csv").status_code == 403
    assert PatientImport.objects.count() == 0


def test_a_refused_role_cannot_start_someone_elses_import(client, staff):
    patient_import = patient_import_create(
        actor=staff["administrator"], upload=upload(csv_bytes(good_rows())), original_name="p.csv"
    )

    response = _signed_in(client, staff["doctor"]).post(
        f"/patients/imports/{patient_import.uuid}/import/", {"mode": "all_or_nothing"}
    )

    assert response.status_code == 403
    patient_import.refresh_from_db()
    assert patient_import.status == "dry_run"
    assert Patient.objects.count() == 0


@pytest.mark.parametrize("role", ["administrator", "agent", "department_head"])
def test_roles_that_may_import_see_the_page_and_the_navigation_link(client, staff, role):
    response = _signed_in(client, staff[role]).get("/patients/imports/")

    assert response.status_code == 200
    assert 'href="/patients/imports/"' in response.content.decode()


def test_the_navigation_link_is_hidden_from_roles_that_may_not_import(client, staff):
    response = _signed_in(client, staff["doctor"]).get("/patients/")

    assert 'href="/patients/imports/"' not in response.content.decode()


def test_upload_runs_the_dry_run_and_shows_the_report(client, staff):
    response = _post_file(_signed_in(client, staff["agent"]), _with_bad_row())

    patient_import = PatientImport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/patients/imports/{patient_import.uuid}/"
    page = client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    assert page.context["report"] == [
        {"row": 5, "field": "name", "code": "required", "message": "The name is missing.", "label": "姓名"}
    ]
    assert '<tr data-row="5" data-field="name" data-code="required">' in html
    assert (
        '<input type="radio" name="mode" value="good_rows_only" class="choices" required id="id_mode_1" checked>'
        in html
    )
    assert Patient.objects.count() == 0


def test_only_the_first_rows_of_a_long_report_are_shown_and_the_csv_holds_all(client, staff):
    rows = [["", "男", "", "", "", "", "", ""] for _ in range(250)]
    _post_file(_signed_in(client, staff["agent"]), csv_bytes([*good_rows(), *rows]))
    patient_import = PatientImport.objects.get()

    page = client.get(f"/patients/imports/{patient_import.uuid}/")
    report = client.get(f"/patients/imports/{patient_import.uuid}/report.csv")

    assert len(page.context["report"]) == 200
    assert page.context["report_total"] == 250
    assert "The first 200 of 250 problems are listed; the CSV holds them all." in page.content.decode()
    lines = report.content.decode("utf-8-sig").splitlines()
    assert report["Content-Type"] == "text/csv; charset=utf-8"
    assert len(lines) == 251
    assert lines[:2] == ["Row,Field,Code,Reason", "5,姓名,required,The name is missing."]


def test_import_good_rows_only_from_the_page(
    client, staff, internal_medicine, eager_tasks, django_capture_on_commit_callbacks
):
    _post_file(_signed_in(client, staff["department_head"]), _with_bad_row())
    patient_import = PatientImport.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/patients/imports/{patient_import.uuid}/import/", {"mode": "good_rows_only"})

    assert response.status_code == 302
    patient_import.refresh_from_db()
    assert (patient_import.status, patient_import.created_count, patient_import.skipped_count) == ("imported", 3, 1)
    assert patient_import.imported_by == staff["department_head"]
    # Created patients without a department column belong to the importer's departments, so they can see them.
    assert set(Patient.objects.get(national_id=WANG_ID).departments.all()) == {internal_medicine}
    page = client.get(f"/patients/imports/{patient_import.uuid}/")
    html = page.content.decode()
    assert '<dd class="created">3</dd>' in html
    assert '<dd class="skipped">1</dd>' in html
    assert 'class="card import-run"' not in html


def test_all_or_nothing_on_a_file_with_bad_rows_is_refused_on_the_page(client, staff):
    _post_file(_signed_in(client, staff["agent"]), _with_bad_row())
    patient_import = PatientImport.objects.get()

    response = client.post(f"/patients/imports/{patient_import.uuid}/import/", {"mode": "all_or_nothing"})

    assert response.status_code == 400
    assert response.context["form"].errors == {
        "mode": ["The file has 1 bad rows: correct them, or import only the good rows."]
    }
    patient_import.refresh_from_db()
    assert patient_import.status == "dry_run"
    assert Patient.objects.count() == 0


def test_starting_an_import_twice_is_refused(client, staff, django_capture_on_commit_callbacks):
    _post_file(_signed_in(client, staff["agent"]), csv_bytes(good_rows()))
    patient_import = PatientImport.objects.get()

    with django_capture_on_commit_callbacks() as callbacks:
        client.post(f"/patients/imports/{patient_import.uuid}/import/", {"mode": "all_or_nothing"})
        second = client.post(f"/patients/imports/{patient_import.uuid}/import/", {"mode": "all_or_nothing"})

    assert len(callbacks) == 1
    assert second.status_code == 400
    assert second.context["form"].non_field_errors() == ["This file is being imported or has been imported already."]


def test_a_running_import_shows_progress_and_reloads_when_done(client, staff, django_capture_on_commit_callbacks):
    _post_file(_signed_in(client, staff["agent"]), csv_bytes(good_rows()))
    patient_import = PatientImport.objects.get()
    with django_capture_on_commit_callbacks():
        client.post(f"/patients/imports/{patient_import.uuid}/import/", {"mode": "all_or_nothing"})

    running = client.get(f"/patients/imports/{patient_import.uuid}/progress/")
    PatientImport.objects.filter(pk=patient_import.pk).update(status="failed")
    finished = client.get(f"/patients/imports/{patient_import.uuid}/progress/")

    assert running.status_code == 200
    assert "0 of 3 rows" in running.content.decode()
    assert (finished.status_code, finished["HX-Refresh"]) == (204, "true")


def test_an_importer_without_access_to_all_patients_sees_only_their_own_imports(client, staff):
    others = patient_import_create(
        actor=staff["administrator"], upload=upload(csv_bytes(good_rows())), original_name="admin.csv"
    )
    _signed_in(client, staff["department_head"])

    assert client.get(f"/patients/imports/{others.uuid}/").status_code == 404
    assert client.post(f"/patients/imports/{others.uuid}/import/", {"mode": "all_or_nothing"}).status_code == 404
    assert list(client.get("/patients/imports/").context["imports"]) == []


def test_an_oversized_upload_is_refused_by_its_length_with_a_clear_error(client, staff, settings):
    settings.PATIENT_IMPORT_MAX_MB = 1
    content = csv_bytes([["王建国" + "x" * 1000, "", "", "", "", "", "", ""]] * 1200)

    response = _post_file(_signed_in(client, staff["agent"]), content)

    assert response.status_code == 413
    assert response.context["form"].errors == {
        "file": ["Files up to 1 MB can be imported. Split the file into smaller files."]
    }
    assert PatientImport.objects.count() == 0


def test_an_unreadable_file_is_refused_on_the_form(client, staff):
    response = _post_file(_signed_in(client, staff["agent"]), b"\x00\x01binary", "photo.jpg")

    assert response.status_code == 400
    assert response.context["form"].errors == {"file": ["The file is neither CSV text nor an Excel workbook (.xlsx)."]}


def test_templates_download_in_csv_and_xlsx(client, staff):
    _signed_in(client, staff["agent"])

    csv_response = client.get("/patients/imports/template.csv")
    xlsx_response = client.get("/patients/imports/template.xlsx")

    assert csv_response["Content-Disposition"] == 'attachment; filename="patients-template.csv"'
    assert csv_response.content.decode("utf-8-sig").strip() == ",".join(TEMPLATE_HEADERS)
    sheet = load_workbook(io.BytesIO(xlsx_response.content)).active
    assert tuple(cell.value for cell in sheet[1]) == TEMPLATE_HEADERS
    assert client.get("/patients/imports/template.xls").status_code == 404


def test_a_second_upload_of_an_imported_file_says_so(client, staff, eager_tasks, django_capture_on_commit_callbacks):
    _signed_in(client, staff["agent"])
    _post_file(client, csv_bytes(good_rows()))
    first = PatientImport.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/patients/imports/{first.uuid}/import/", {"mode": "all_or_nothing"})

    _post_file(client, csv_bytes(good_rows()))
    second = PatientImport.objects.exclude(pk=first.pk).get()
    page = client.get(f"/patients/imports/{second.uuid}/")

    assert page.context["earlier"] == first
    assert 'class="alert info earlier-import"' in page.content.decode()


def test_the_result_links_to_the_review_queue_when_rows_were_queued(
    client, staff, eager_tasks, django_capture_on_commit_callbacks
):
    from tests.factories import PatientFactory

    PatientFactory(name="王建国", national_id="", birth_date="1980-01-02", mobile="+8613812345678")
    _post_file(
        _signed_in(client, staff["administrator"]),
        csv_bytes([["王建国", "男", "1980-01-02", "", "13812345678", "", "", ""]]),
    )
    patient_import = PatientImport.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/patients/imports/{patient_import.uuid}/import/", {"mode": "all_or_nothing"})

    html = client.get(f"/patients/imports/{patient_import.uuid}/").content.decode()

    assert '<dd class="review">1</dd>' in html
    assert '<a class="review-queue" href="/patients/identity/">' in html
