"""`manage.py import_patients`: the same report as the console, and exit codes a script can act on."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from patients.models import Patient, PatientImport
from tests.patients.imports_files import csv_bytes, good_rows, xlsx_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _file(tmp_path, content: bytes, name: str = "patients.csv"):
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _run(*args) -> str:
    out = io.StringIO()
    call_command("import_patients", *[str(arg) for arg in args], stdout=out)
    return out.getvalue()


def _bad_file(tmp_path):
    return _file(tmp_path, csv_bytes([*good_rows(), ["", "男", "", "", "", "", "", ""]]))


def test_a_clean_file_is_imported_and_exits_zero(tmp_path, staff, internal_medicine):
    output = _run(_file(tmp_path, csv_bytes(good_rows())), "--user", "administrator", "--department", "NK")

    assert output.splitlines()[-1] == (
        "Imported patients.csv: 3 created, 0 updated, 0 unchanged, 0 skipped, 0 queued for review."
    )
    assert Patient.objects.count() == 3
    assert PatientImport.objects.get().imported_by == staff["administrator"]
    assert all(list(patient.departments.all()) == [internal_medicine] for patient in Patient.objects.all())


def test_bad_rows_without_good_rows_only_import_nothing_and_exit_one(tmp_path, capsys):
    with pytest.raises(CommandError) as error:
        _run(_bad_file(tmp_path))

    assert error.value.returncode == 1
    assert str(error.value) == (
        "1 bad rows; nothing imported. Correct the file, or run again with --good-rows-only to skip them."
    )
    assert Patient.objects.count() == 0


def test_the_report_lists_each_bad_row(tmp_path):
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_patients", str(_bad_file(tmp_path)), stdout=out)

    assert out.getvalue().splitlines() == [
        "patients.csv: 4 rows, 1 bad, columns: 姓名→name, 性别→sex, 出生日期→birth_date, 身份证号→national_id, "
        "手机→mobile, 就诊卡号→visit_card, 标签→tags, 科室→departments",
        "row 5\tname\trequired\tThe name is missing.",
    ]


def test_good_rows_only_imports_the_rest_and_exits_zero(tmp_path):
    output = _run(_bad_file(tmp_path), "--good-rows-only")

    assert output.splitlines()[-1] == (
        "Imported patients.csv: 3 created, 0 updated, 0 unchanged, 1 skipped, 0 queued for review."
    )
    assert Patient.objects.count() == 3


def test_dry_run_of_a_clean_file_imports_nothing_and_exits_zero(tmp_path):
    output = _run(_file(tmp_path, xlsx_bytes(good_rows()), "patients.xlsx"), "--dry-run")

    assert output.splitlines()[-1] == "All 3 rows are good; nothing imported (dry run)."
    assert Patient.objects.count() == 0
    assert PatientImport.objects.get().status == "dry_run"


def test_dry_run_with_bad_rows_exits_one(tmp_path):
    with pytest.raises(CommandError) as error:
        _run(_bad_file(tmp_path), "--dry-run", "--good-rows-only")

    assert (error.value.returncode, str(error.value)) == (1, "1 bad rows; nothing imported (dry run).")
    assert Patient.objects.count() == 0


def test_reimport_reports_every_row_unchanged(tmp_path):
    path = _file(tmp_path, csv_bytes(good_rows()))
    _run(path)

    output = _run(path)

    assert output.splitlines()[-1] == (
        "Imported patients.csv: 0 created, 0 updated, 3 unchanged, 0 skipped, 0 queued for review."
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\x01", "patients.csv: The file is neither CSV text nor an Excel workbook (.xlsx)."),
        ("姓名\n".encode(), "patients.csv: The file has a header row but no patients below it."),
    ],
)
def test_an_unreadable_file_exits_two(tmp_path, content, message):
    with pytest.raises(CommandError) as error:
        _run(_file(tmp_path, content))

    assert (error.value.returncode, str(error.value)) == (2, message)


def test_a_missing_file_or_unknown_user_or_department_exits_two(tmp_path):
    path = _file(tmp_path, csv_bytes(good_rows()))
    with pytest.raises(CommandError) as missing:
        _run(tmp_path / "nope.csv")
    with pytest.raises(CommandError) as user:
        _run(path, "--user", "nobody")
    with pytest.raises(CommandError) as department:
        _run(path, "--department", "XX")

    assert [missing.value.returncode, user.value.returncode, department.value.returncode] == [2, 2, 2]
    assert str(department.value) == "Unknown department code: XX."
    assert Patient.objects.count() == 0
