"""Importing patients from spreadsheets: dry run, all-or-nothing or good rows only, identity matching, re-import."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.core.exceptions import ValidationError

from hcrm.models import AuditEntry
from patients.models import (
    MatchCandidate,
    Patient,
    PatientDepartment,
    PatientIdentifier,
    PatientImport,
)
from patients.services.imports import patient_import_create, patient_import_run
from tests.factories import IdentifierFactory, PatientFactory, TagFactory, national_id
from tests.patients.imports_files import LI_ID, WANG_ID, ZHAO_ID, csv_bytes, good_rows, upload, xlsx_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def hypertension(db):
    return TagFactory(name="高血压")


def _checked(content: bytes, name: str = "patients.csv", actor=None, **kwargs) -> PatientImport:
    return patient_import_create(actor=actor, upload=upload(content, name), original_name=name, **kwargs)


def _codes(patient_import: PatientImport) -> list[tuple[int, str, str]]:
    return [(entry["row"], entry["field"], entry["code"]) for entry in patient_import.report]


def _bad_file(internal_medicine, hypertension) -> bytes:
    wrong_check = WANG_ID[:17] + ("0" if WANG_ID[17] != "0" else "1")
    rows = [
        ["王建国", "男", "1980-01-02", WANG_ID, "13812345678", "C0001", "高血压", "NK"],  # 2 good
        ["", "女", "1975-06-30", "", "", "", "", ""],  # 3 missing name
        ["钱一", "男", "", wrong_check, "", "", "", ""],  # 4 check digit
        ["孙二", "男", "2999-01-01", "", "", "", "", ""],  # 5 future birth date
        ["周三", "男", "1980-13-45", "", "", "", "", ""],  # 6 unparseable birth date
        ["李秀英", "女", "1975-07-01", LI_ID, "", "", "", ""],  # 7 birth date vs national ID
        ["赵敏", "男", "", ZHAO_ID, "", "", "", ""],  # 8 sex vs national ID
        ["吴四", "男", "", "", "12345", "", "", ""],  # 9 invalid mobile
        ["郑五", "X", "", "", "", "", "", ""],  # 10 unknown sex code
        ["冯六", "男", "", "", "", "", "糖尿病", ""],  # 11 unknown tag
        ["陈七", "男", "", "", "", "", "", "骨科"],  # 12 unknown department
        ["王建国", "男", "1980-01-02", WANG_ID, "", "", "", ""],  # 13 same national ID as row 2
        ["褚八", "男", "", "", "", "C0001", "", ""],  # 14 same visit card as row 2
        ["卫九", "女", "1960-3-4", "", "13700001111", "C0099", "", "内科"],  # 15 good
    ]
    return csv_bytes(rows)


def test_dry_run_reports_every_bad_row_with_row_field_and_reason_and_writes_no_patient(internal_medicine, hypertension):
    patient_import = _checked(_bad_file(internal_medicine, hypertension))

    assert Patient.objects.count() == 0
    assert (patient_import.status, patient_import.total_rows, patient_import.bad_rows) == ("dry_run", 14, 12)
    assert _codes(patient_import) == [
        (3, "name", "required"),
        (4, "national_id", "check_digit"),
        (5, "birth_date", "future"),
        (6, "birth_date", "invalid"),
        (7, "birth_date", "mismatch"),
        (8, "sex", "mismatch"),
        (9, "mobile", "phone"),
        (10, "sex", "unknown_code"),
        (11, "tags", "unknown_tag"),
        (12, "departments", "unknown_department"),
        (13, "national_id", "duplicate"),
        (14, "visit_card", "duplicate"),
    ]
    assert patient_import.report[0] == {
        "row": 3,
        "field": "name",
        "code": "required",
        "message": "The name is missing.",
    }
    assert patient_import.report[5]["message"] == "The sex does not match the national ID number."
    assert patient_import.columns == {
        "name": "姓名",
        "sex": "性别",
        "birth_date": "出生日期",
        "national_id": "身份证号",
        "mobile": "手机",
        "visit_card": "就诊卡号",
        "tags": "标签",
        "departments": "科室",
    }


def test_upload_keeps_the_file_its_hash_and_an_audit_entry(staff):
    content = csv_bytes(good_rows())

    patient_import = _checked(content, actor=staff["administrator"])

    with patient_import.file.open("rb") as stored:
        assert stored.read() == content
    assert patient_import.size == len(content)
    assert len(patient_import.sha256) == 64
    assert (patient_import.uploaded_by, patient_import.file_format) == (staff["administrator"], "csv")
    entry = AuditEntry.objects.get(object_pk=str(patient_import.pk), event="create")
    assert entry.actor == staff["administrator"]
    assert entry.additional_data == {"file": "patients.csv", "sha256": patient_import.sha256, "rows": 3}


def test_all_or_nothing_refuses_a_file_with_bad_rows_and_changes_nothing(internal_medicine, hypertension):
    patient_import = _checked(_bad_file(internal_medicine, hypertension))

    with pytest.raises(ValidationError) as error:
        patient_import_run(patient_import=patient_import, actor=None, mode="all_or_nothing")

    assert error.value.message_dict == {
        "mode": ["The file has 12 bad rows: correct them, or import only the good rows."]
    }
    assert Patient.objects.count() == 0
    patient_import.refresh_from_db()
    assert patient_import.status == "dry_run"


def test_good_rows_only_imports_the_good_rows_and_reports_the_skipped(internal_medicine, hypertension, staff):
    patient_import = _checked(_bad_file(internal_medicine, hypertension), actor=staff["administrator"])

    patient_import = patient_import_run(
        patient_import=patient_import, actor=staff["administrator"], mode="good_rows_only"
    )

    assert (patient_import.status, patient_import.mode) == ("imported", "good_rows_only")
    assert (patient_import.created_count, patient_import.updated_count, patient_import.unchanged_count) == (2, 0, 0)
    assert (patient_import.skipped_count, patient_import.bad_rows) == (12, 12)
    assert len(patient_import.report) == 12
    assert sorted(Patient.objects.values_list("name", flat=True)) == ["卫九", "王建国"]
    wang = Patient.objects.get(name="王建国")
    assert (wang.national_id, wang.mobile, wang.sex, wang.source) == (WANG_ID, "+8613812345678", "male", "spreadsheet")
    assert list(wang.tags.values_list("name", flat=True)) == ["高血压"]
    assert list(wang.departments.values_list("code", flat=True)) == ["NK"]
    assert list(wang.identifiers.values_list("kind", "assigner", "value")) == [("visit_card", "", "C0001")]
    assert patient_import.imported_by == staff["administrator"]
    assert patient_import.finished_at is not None
    entry = AuditEntry.objects.get(object_pk=str(wang.pk), content_type__model="patient", action=0)
    assert entry.actor == staff["administrator"]


def test_all_or_nothing_imports_a_clean_file_in_one_go(staff, internal_medicine):
    patient_import = _checked(csv_bytes(good_rows()))

    patient_import = patient_import_run(
        patient_import=patient_import,
        actor=staff["agent"],
        mode="all_or_nothing",
        default_departments=[internal_medicine],
    )

    assert (patient_import.status, patient_import.created_count, patient_import.report) == ("imported", 3, [])
    zhao = Patient.objects.get(national_id=ZHAO_ID)
    assert (zhao.name, zhao.sex, zhao.birth_date) == ("赵敏", "female", dt.date(1990, 12, 5))
    assert list(zhao.departments.all()) == [internal_medicine]


def test_all_or_nothing_rolls_back_every_row_when_one_fails_during_the_import(internal_medicine, hypertension):
    rows = [*good_rows(), ["钱一", "男", "", "", "", "", "高血压", ""]]
    patient_import = _checked(csv_bytes(rows))
    hypertension.delete()  # the tag disappears between the dry run and the import

    patient_import = patient_import_run(patient_import=patient_import, actor=None, mode="all_or_nothing")

    assert Patient.objects.count() == 0
    assert PatientIdentifier.objects.count() == 0
    assert (patient_import.status, patient_import.error) == ("failed", "Nothing was imported: 1 rows failed.")
    assert _codes(patient_import) == [(5, "tags", "unknown_tag")]
    assert (patient_import.created_count, patient_import.skipped_count) == (0, 4)


def test_an_imported_file_cannot_be_imported_twice(db):
    patient_import = _checked(csv_bytes(good_rows()))
    patient_import_run(patient_import=patient_import, actor=None, mode="all_or_nothing")

    with pytest.raises(ValidationError) as error:
        patient_import_run(patient_import=patient_import, actor=None, mode="all_or_nothing")

    assert error.value.messages == ["This file has already been imported."]
    assert Patient.objects.count() == 3


def test_reimporting_the_same_file_changes_nothing(internal_medicine, hypertension):
    rows = [[*row[:6], "高血压", "NK"] for row in good_rows()]
    first = _checked(csv_bytes(rows))
    patient_import_run(patient_import=first, actor=None, mode="all_or_nothing")
    before = {patient.pk: (patient.updated_at, patient.mrn) for patient in Patient.objects.all()}
    audit_before = AuditEntry.objects.count()
    links_before = PatientDepartment.objects.count()

    again = patient_import_run(patient_import=_checked(csv_bytes(rows)), actor=None, mode="all_or_nothing")

    assert (again.created_count, again.updated_count, again.unchanged_count) == (0, 0, 3)
    assert {patient.pk: (patient.updated_at, patient.mrn) for patient in Patient.objects.all()} == before
    assert PatientIdentifier.objects.count() == 3
    assert PatientDepartment.objects.count() == links_before
    # Only the second import's own upload and import entries: no patient, identifier, tag or link was written.
    assert AuditEntry.objects.count() - audit_before == 2
    assert MatchCandidate.objects.count() == 0


def test_a_row_matching_an_existing_patient_by_national_id_updates_it(internal_medicine):
    existing = PatientFactory(
        name="王建国", national_id=WANG_ID, birth_date=dt.date(1980, 1, 2), sex="male", mobile="+8613000000000"
    )

    patient_import = patient_import_run(
        patient_import=_checked(csv_bytes(good_rows()[:1])), actor=None, mode="all_or_nothing"
    )

    existing.refresh_from_db()
    assert (patient_import.created_count, patient_import.updated_count) == (0, 1)
    assert existing.mobile == "+8613812345678"
    assert list(existing.identifiers.values_list("value", flat=True)) == ["C0001"]
    assert Patient.objects.count() == 1


def test_a_row_matching_an_existing_patient_by_identifier_and_assigner_updates_it(db):
    existing = PatientFactory(name="王建国", national_id="", birth_date=dt.date(1980, 1, 2), sex="male")
    IdentifierFactory(patient=existing, kind="visit_card", assigner="HIS", value="C0001")
    other_assigner = PatientFactory(name="李秀英", national_id="")
    IdentifierFactory(patient=other_assigner, kind="visit_card", assigner="", value="C0002")
    rows = [["王建国", "男", "", "", "13812345678", "C0001", "", ""], ["李秀英", "女", "", "", "", "C0002", "", ""]]

    patient_import = patient_import_run(
        patient_import=_checked(csv_bytes(rows), assigner="HIS"), actor=None, mode="all_or_nothing"
    )

    existing.refresh_from_db()
    assert existing.mobile == "+8613812345678"
    assert (patient_import.created_count, patient_import.updated_count) == (1, 1)
    # Same number, other assigning authority: another card, so another patient.
    assert Patient.objects.filter(name="李秀英").count() == 2


def test_a_likely_duplicate_is_created_and_queued_for_review_not_merged(db):
    existing = PatientFactory(name="王建国", national_id="", birth_date=dt.date(1980, 1, 2), mobile="+8613812345678")
    rows = [["王建国", "男", "1980-01-02", "", "13812345678", "", "", ""]]

    patient_import = patient_import_run(patient_import=_checked(csv_bytes(rows)), actor=None, mode="all_or_nothing")

    assert (patient_import.created_count, patient_import.review_count) == (1, 1)
    created = Patient.objects.exclude(pk=existing.pk).get()
    candidate = MatchCandidate.objects.get()
    assert {candidate.patient_a, candidate.patient_b} == {existing, created}
    assert candidate.status == "open"
    assert created.merged_into is None and existing.merged_into is None


def test_the_sheets_source_column_sets_the_source_of_created_patients_only(db):
    existing = PatientFactory(name="王建国", national_id=WANG_ID, birth_date=dt.date(1980, 1, 2), sex="male")
    header = ["姓名", "身份证号", "来源"]
    rows = [["王建国", WANG_ID, "referral"], ["李秀英", LI_ID, "referral"]]

    patient_import_run(patient_import=_checked(csv_bytes(rows, header)), actor=None, mode="all_or_nothing")

    existing.refresh_from_db()
    assert existing.source == "walk_in"
    assert Patient.objects.get(national_id=LI_ID).source == "referral"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_in_each_encoding_imports_the_same_patients(encoding):
    patient_import = _checked(csv_bytes(good_rows(), encoding=encoding))

    patient_import_run(patient_import=patient_import, actor=None, mode="all_or_nothing")

    assert sorted(Patient.objects.values_list("name", flat=True)) == ["李秀英", "王建国", "赵敏"]


def test_xlsx_with_date_cells_imports(db):
    rows = [
        ["王建国", "男", dt.datetime(1980, 1, 2), WANG_ID, 13812345678, "C0001", None, None],
        [None, None, None, None, None, None, None, None],
        ["李秀英", "女", dt.datetime(1975, 6, 30), LI_ID, None, "C0002", None, None],
    ]

    patient_import = _checked(xlsx_bytes(rows), "patients.xlsx")
    patient_import = patient_import_run(patient_import=patient_import, actor=None, mode="all_or_nothing")

    assert (patient_import.file_format, patient_import.total_rows, patient_import.created_count) == ("xlsx", 2, 2)
    assert Patient.objects.get(national_id=LI_ID).birth_date == dt.date(1975, 6, 30)


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(settings):
    settings.PATIENT_IMPORT_MAX_MB = 1
    content = csv_bytes([["王建国" + "x" * 1000, "", "", "", "", "", "", ""]] * 1100)

    with pytest.raises(ValidationError) as error:
        _checked(content)

    assert error.value.message_dict == {
        "file": ["The file is 1.1 MB; files up to 1 MB can be imported. Split it into smaller files."]
    }
    assert PatientImport.objects.count() == 0


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"", "empty.csv", "The file is empty."),
        ("备注,电话\nx,y\n".encode(), "notes.csv", "The first row must hold the column headers, with at least a name column (姓名 or name)."),
        ("姓名,电话\n".encode(), "header.csv", "The file has a header row but no patients below it."),
        (b"\xd0\xcf\x11\xe0" + b"\x00" * 64, "old.xls", "Old Excel files (.xls) cannot be read; save the sheet as .xlsx or CSV."),
    ],
)  # fmt: skip
def test_files_that_cannot_be_imported_are_refused_with_the_reason_and_not_kept(content, name, message, media):
    with pytest.raises(ValidationError) as error:
        _checked(content, name)

    assert error.value.message_dict == {"file": [message]}
    assert PatientImport.objects.count() == 0
    assert not any(path.is_file() for path in media.rglob("*")) if media.exists() else True


def _many_rows(count: int) -> list[list[object]]:
    return [
        [f"患者{index:05d}", "男" if index % 2 else "女", "", national_id("110105", dt.date(1950 + index % 50, 1 + index % 12, 1 + index % 28), (index % 499) * 2 + (1 if index % 2 else 2)), f"139{index:08d}", f"V{index:06d}", "", ""]
        for index in range(count)
    ]  # fmt: skip


def test_a_ten_thousand_row_file_is_checked_in_seconds(db):
    content = csv_bytes(_many_rows(10_000))

    started = time.perf_counter()
    patient_import = _checked(content)
    elapsed = time.perf_counter() - started

    assert (patient_import.total_rows, patient_import.bad_rows) == (10_000, 0)
    assert elapsed < 15, f"dry run of 10,000 rows took {elapsed:.1f}s"


def test_rows_import_through_identity_matching_at_a_steady_rate(db):
    patient_import = _checked(csv_bytes(_many_rows(300)))

    started = time.perf_counter()
    patient_import = patient_import_run(patient_import=patient_import, actor=None, mode="all_or_nothing")
    elapsed = time.perf_counter() - started

    assert (patient_import.created_count, Patient.objects.count()) == (300, 300)
    # The identity service writes each new patient, its identifier, MRN counter and audit entries: ~14 queries a row.
    assert elapsed < 60, f"300 rows took {elapsed:.1f}s"


def _refusing(monkeypatch, name: str, error: Exception) -> None:
    """The identity service writes the row named `name`, then fails on it."""
    from patients.services import imports

    real = imports.patient_match_or_create

    def match_or_create(**kwargs):
        outcome = real(**kwargs)
        if kwargs["demographics"].name == name:
            raise error
        return outcome

    monkeypatch.setattr(imports, "patient_match_or_create", match_or_create)


def test_good_rows_only_rolls_back_a_row_the_identity_service_refuses_and_keeps_the_rest(monkeypatch):
    _refusing(monkeypatch, "李秀英", ValidationError({"mobile": ValidationError("refused", code="conflict")}))

    patient_import = patient_import_run(
        patient_import=_checked(csv_bytes(good_rows())), actor=None, mode="good_rows_only"
    )

    assert sorted(Patient.objects.values_list("name", flat=True)) == ["王建国", "赵敏"]
    assert not PatientIdentifier.objects.filter(value="C0002").exists()
    assert (patient_import.status, patient_import.created_count, patient_import.skipped_count) == ("imported", 2, 1)
    assert patient_import.report == [{"row": 3, "field": "mobile", "code": "conflict", "message": "refused"}]


def test_all_or_nothing_rolls_back_everything_when_the_identity_service_refuses_a_row(monkeypatch):
    _refusing(monkeypatch, "李秀英", ValidationError("refused", code="conflict"))

    patient_import = patient_import_run(
        patient_import=_checked(csv_bytes(good_rows())), actor=None, mode="all_or_nothing"
    )

    assert Patient.objects.count() == 0
    assert (patient_import.status, patient_import.error) == ("failed", "Nothing was imported: 1 rows failed.")
    assert patient_import.report == [{"row": 3, "field": "", "code": "conflict", "message": "refused"}]


def test_an_unexpected_error_rolls_back_marks_the_import_failed_and_is_raised(monkeypatch):
    _refusing(monkeypatch, "赵敏", RuntimeError("disk full"))
    patient_import = _checked(csv_bytes(good_rows()))

    with pytest.raises(RuntimeError):
        patient_import_run(patient_import=patient_import, actor=None, mode="all_or_nothing")

    patient_import.refresh_from_db()
    assert Patient.objects.count() == 0
    assert (patient_import.status, patient_import.error) == (
        "failed",
        "The import stopped on an unexpected error; nothing was imported.",
    )


def test_a_failed_import_can_be_run_again_once_the_cause_is_fixed(hypertension):
    rows = [[*good_rows()[0][:6], "高血压", ""]]
    patient_import = _checked(csv_bytes(rows))
    hypertension.delete()
    patient_import = patient_import_run(patient_import=patient_import, actor=None, mode="all_or_nothing")
    assert patient_import.status == "failed"
    TagFactory(name="高血压")

    patient_import = patient_import_run(patient_import=patient_import, actor=None, mode="all_or_nothing")

    assert (patient_import.status, patient_import.created_count, patient_import.error) == ("imported", 1, "")
    assert list(Patient.objects.get().tags.values_list("name", flat=True)) == ["高血压"]


def test_the_task_imports_a_claimed_file_once_and_ignores_a_redelivery(staff, django_capture_on_commit_callbacks):
    from patients.services.imports import patient_import_start
    from patients.tasks.imports import patient_import_task

    patient_import = _checked(csv_bytes(good_rows()))
    with django_capture_on_commit_callbacks() as callbacks:
        patient_import_start(patient_import=patient_import, actor=staff["agent"], mode="all_or_nothing")
    assert PatientImport.objects.get().status == "importing"
    arguments = {
        "import_id": patient_import.pk,
        "actor_id": staff["agent"].pk,
        "mode": "all_or_nothing",
        "department_ids": [],
    }

    first = patient_import_task(**arguments)
    again = patient_import_task(**arguments)

    assert len(callbacks) == 1
    assert (first, again) == ("imported", "imported")
    assert Patient.objects.count() == 3
    assert PatientImport.objects.get().imported_by == staff["agent"]
