"""FHIR Bulk Data NDJSON import: identity rules, idempotent re-import, bad lines, resume, gzip."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from hcrm.models import AuditEntry
from integrations.fhir.bulk import (
    MappingProfile,
    assigner_for,
    bulk_import_file,
    patient_row_from_resource,
)
from integrations.models import BulkImport
from patients.models import MatchCandidate, Patient, PatientIdentifier
from tests.factories import PatientFactory, national_id

SAMPLES = Path("/work/shared/samples/fhir/examples")
HOSPITAL = "urn:oid:2.16.156.99.1"  # the assigner of the test sender's MRNs
pytestmark = pytest.mark.django_db


def patient_resource(index: int, **changes) -> dict:
    born = dt.date(1960 + index % 40, 1 + index % 12, 1 + index % 28)
    resource = {
        "resourceType": "Patient",
        "id": f"p{index}",
        "identifier": [
            {"type": {"coding": [{"code": "MR"}]}, "system": HOSPITAL, "value": f"MRN{index:05d}"},
            {"type": {"coding": [{"code": "NNCHN"}]}, "value": national_id("310101", born, index * 2 + 1)},
        ],
        "name": [{"use": "official", "family": "王", "given": ["小" + "明红刚丽"[index % 4]]}],
        "gender": "male",
        "birthDate": born.isoformat(),
        "telecom": [{"system": "phone", "value": f"1391234{index:04d}", "use": "mobile"}],
        "address": [
            {"use": "home", "state": "上海市", "city": "上海市", "district": "黄浦区", "line": [f"马当路{index}号"]}
        ],
    }
    resource.update(changes)
    return resource


def write_ndjson(path: Path, lines: list) -> Path:
    text = "".join((line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + "\n" for line in lines)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def snapshot() -> dict:
    return {
        "patients": sorted(Patient.objects.values_list("id", "updated_at", "name", "mobile", "national_id")),
        "identifiers": sorted(PatientIdentifier.objects.values_list("id", "patient_id", "kind", "assigner", "value")),
        "audit": AuditEntry.objects.count(),
        "candidates": MatchCandidate.objects.count(),
    }


def test_import_creates_each_patient_with_identifiers_pinyin_and_an_audit_entry(tmp_path):
    path = write_ndjson(tmp_path / "Patient.ndjson", [patient_resource(i) for i in range(3)])

    job = bulk_import_file(path=path)

    assert (job.status, job.created_count, job.updated_count, job.error_count) == ("completed", 3, 0, 0)
    assert (job.lines_done, job.bytes_done, job.resource_counts) == (3, path.stat().st_size, {"Patient": 3})
    patient = Patient.objects.get(identifiers__value="MRN00001")
    assert (patient.name, patient.name_pinyin, patient.name_pinyin_initials) == ("王小红", "wangxiaohong", "wxh")
    assert (patient.sex, patient.birth_date, patient.mobile) == ("male", dt.date(1961, 2, 2), "+8613912340001")
    assert patient.national_id == national_id("310101", dt.date(1961, 2, 2), 3)
    assert (patient.province, patient.city, patient.district, patient.address_detail) == (
        "上海市",
        "上海市",
        "黄浦区",
        "马当路1号",
    )
    assert (patient.source, patient.mrn[:1]) == ("fhir_import", "M")
    assert sorted(patient.identifiers.values_list("kind", "assigner", "value")) == [
        ("his", HOSPITAL, "MRN00001"),
        ("other", "fhir-bulk", "p1"),
    ]
    entries = AuditEntry.objects.filter(patient_uuid=patient.uuid)
    assert [(e.event, e.client, e.additional_data) for e in entries] == [
        ("create", "fhir_import", {"bulk_import": str(job.uuid), "line": 2})
    ]


def test_reimporting_the_same_file_writes_nothing(tmp_path):
    path = write_ndjson(tmp_path / "Patient.ndjson", [patient_resource(i) for i in range(5)])
    bulk_import_file(path=path)
    before = snapshot()

    again = bulk_import_file(path=path)

    assert snapshot() == before
    assert (again.created_count, again.updated_count, again.unchanged_count, again.error_count) == (0, 0, 5, 0)
    assert BulkImport.objects.filter(status="completed").count() == 2


def test_a_changed_field_updates_only_that_patient_and_audits_the_change(tmp_path):
    bulk_import_file(path=write_ndjson(tmp_path / "a.ndjson", [patient_resource(i) for i in range(3)]))
    before = dict(Patient.objects.values_list("identifiers__value", "updated_at").filter(identifiers__kind="his"))
    changed = patient_resource(2, telecom=[{"system": "phone", "value": "13700001111"}])

    job = bulk_import_file(path=write_ndjson(tmp_path / "b.ndjson", [patient_resource(0), changed]))

    assert (job.created_count, job.updated_count, job.unchanged_count) == (0, 1, 1)
    after = dict(Patient.objects.values_list("identifiers__value", "updated_at").filter(identifiers__kind="his"))
    assert after["MRN00000"] == before["MRN00000"]
    assert after["MRN00001"] == before["MRN00001"]
    assert after["MRN00002"] > before["MRN00002"]
    patient = Patient.objects.get(identifiers__value="MRN00002")
    assert patient.mobile == "+8613700001111"
    update = AuditEntry.objects.get(patient_uuid=patient.uuid, event="update")
    assert update.changes == {"mobile": ["+8613912340002", "+8613700001111"]}
    assert update.additional_data == {"bulk_import": str(job.uuid), "line": 2}


def test_an_identifier_with_the_same_assigner_finds_the_existing_patient(tmp_path):
    existing = PatientFactory(name="王小明", national_id="", mobile="")
    PatientIdentifier.objects.create(patient=existing, kind="his", assigner=HOSPITAL, value="MRN00000")
    resource = patient_resource(0)
    resource["identifier"] = resource["identifier"][:1]

    job = bulk_import_file(path=write_ndjson(tmp_path / "p.ndjson", [resource]))

    assert (job.created_count, job.updated_count) == (0, 1)
    existing.refresh_from_db()
    assert (existing.mobile, existing.address_detail) == ("+8613912340000", "马当路0号")
    assert Patient.objects.count() == 1
    assert sorted(existing.identifiers.values_list("assigner", "value")) == [
        ("fhir-bulk", "p0"),
        (HOSPITAL, "MRN00000"),
    ]


def test_the_same_value_from_another_assigner_is_another_patient(tmp_path):
    existing = PatientFactory(name="王小明")
    PatientIdentifier.objects.create(patient=existing, kind="his", assigner="urn:oid:other", value="MRN00000")
    resource = patient_resource(0)
    resource["identifier"] = resource["identifier"][:1]

    job = bulk_import_file(path=write_ndjson(tmp_path / "p.ndjson", [resource]))

    assert job.created_count == 1
    assert Patient.objects.count() == 2


def test_the_same_valid_national_id_finds_the_existing_patient(tmp_path):
    born = dt.date(1960, 1, 1)
    existing = PatientFactory(name="王小明", birth_date=born, sex="male", national_id=national_id("310101", born, 1))

    job = bulk_import_file(path=write_ndjson(tmp_path / "p.ndjson", [patient_resource(0)]))

    assert (job.created_count, job.updated_count) == (0, 1)
    assert Patient.objects.count() == 1
    assert sorted(existing.identifiers.values_list("assigner", "value")) == [
        ("fhir-bulk", "p0"),
        (HOSPITAL, "MRN00000"),
    ]


def test_a_likely_duplicate_is_raised_for_review_and_not_merged(tmp_path):
    born = dt.date(1960, 1, 1)
    existing = PatientFactory(name="王小明", birth_date=born, sex="male", national_id="", mobile="+8613912340000")
    resource = patient_resource(0)
    resource["identifier"] = resource["identifier"][:1]

    job = bulk_import_file(path=write_ndjson(tmp_path / "p.ndjson", [resource]))

    assert (job.created_count, job.candidate_count) == (1, 1)
    new = Patient.objects.exclude(pk=existing.pk).get()
    candidate = MatchCandidate.objects.get()
    assert (candidate.patient_a_id, candidate.patient_b_id) == (existing.pk, new.pk)
    assert (candidate.reason, candidate.status, candidate.source) == ("name_birth_phone", "open", "fhir_import")
    assert Patient.objects.filter(merged_into__isnull=False).count() == 0
    bulk_import_file(path=write_ndjson(tmp_path / "p.ndjson", [resource]))
    assert MatchCandidate.objects.count() == 1


def test_bad_lines_are_reported_by_line_and_element_and_the_rest_is_imported(tmp_path):
    lines = [
        patient_resource(0),
        "{not json",
        patient_resource(1, gender="m"),
        patient_resource(2, identifier=[{"type": {"coding": [{"code": "NNCHN"}]}, "value": "310101196003030001"}]),
        {"resourceType": "Observation", "id": "o1"},
        "",
        patient_resource(3, name=[]),
        patient_resource(4, birthDate="1990-02-30"),
        patient_resource(5),
        patient_resource(6, name=[{"family": "王\x00", "given": ["一"]}]),
    ]

    job = bulk_import_file(path=write_ndjson(tmp_path / "p.ndjson", lines))

    assert (job.created_count, job.error_count, job.lines_done) == (3, 6, 10)
    assert [(e["line"], e["location"]) for e in job.errors] == [
        (2, "(line)"),
        (3, "Patient.gender"),
        (5, "resourceType"),
        (7, "Patient.name"),
        (8, "Patient.birthDate"),
        (10, "Patient.name[0].family"),
    ]
    assert job.errors[1]["message"] == "Use one of male, female, other, unknown."
    assert job.errors[2]["message"] == "Observation resources are not imported; this import takes Patient resources."
    assert job.resource_counts == {"Patient": 7, "Observation": 1}
    # A national ID with a wrong check digit is not a national ID: kept as another identifier.
    kept = Patient.objects.get(identifiers__value="p2")
    assert (kept.national_id, kept.identifiers.filter(kind="other", value="310101196003030001").count()) == ("", 1)
    assert sorted(PatientIdentifier.objects.filter(kind="his").values_list("value", flat=True)) == [
        "MRN00000",
        "MRN00005",
    ]


def test_identifiers_that_name_two_different_patients_refuse_the_line(tmp_path):
    first, second = PatientFactory(), PatientFactory()
    PatientIdentifier.objects.create(patient=first, kind="his", assigner=HOSPITAL, value="MRN00000")
    PatientIdentifier.objects.create(patient=second, kind="other", assigner="fhir-bulk", value="p0")
    resource = patient_resource(0)
    resource["identifier"] = resource["identifier"][:1]
    before = snapshot()

    job = bulk_import_file(path=write_ndjson(tmp_path / "p.ndjson", [resource]))

    assert [(e["line"], e["location"]) for e in job.errors] == [(1, "Patient.identifier")]
    assert snapshot() == before


def test_lines_about_one_patient_in_one_file_make_one_patient_and_the_later_line_wins(tmp_path):
    lines = [patient_resource(0), patient_resource(0, telecom=[{"system": "phone", "value": "13600000000"}])]

    job = bulk_import_file(path=write_ndjson(tmp_path / "p.ndjson", lines), batch_size=10)

    assert job.created_count == 1
    assert Patient.objects.get().mobile == "+8613600000000"


def test_a_duplicate_is_found_by_a_number_kept_as_the_other_patients_phone_and_never_by_empty_numbers(tmp_path):
    born = dt.date(1960, 1, 1)
    by_phone = PatientFactory(name="王小明", birth_date=born, national_id="", mobile="", phone="+8613912340000")
    PatientFactory(name="王小明", birth_date=born, national_id="", mobile="", phone="")
    merged = PatientFactory(name="王小明", birth_date=born, national_id="", mobile="+8613912340000", phone="")
    merged.merged_into = by_phone
    merged.save(update_fields=["merged_into"])
    resource = patient_resource(0)
    resource["identifier"] = resource["identifier"][:1]

    job = bulk_import_file(path=write_ndjson(tmp_path / "p.ndjson", [resource]))

    new = Patient.objects.get(mobile="+8613912340000", merged_into__isnull=True)
    assert job.candidate_count == 1
    assert list(MatchCandidate.objects.values_list("patient_a_id", "patient_b_id")) == [(by_phone.pk, new.pk)]


def test_an_interrupted_import_resumes_after_its_last_committed_batch(tmp_path):
    path = write_ndjson(tmp_path / "p.ndjson.gz", [patient_resource(i) for i in range(7)])

    class Interrupted(Exception):
        pass

    def stop(job):
        raise Interrupted

    with pytest.raises(Interrupted):
        bulk_import_file(path=path, batch_size=3, after_batch=stop)
    job = BulkImport.objects.get()
    assert (job.status, job.lines_done, job.created_count, Patient.objects.count()) == ("running", 3, 3, 3)

    resumed = bulk_import_file(path=path, batch_size=3)

    assert resumed.pk == job.pk
    assert (resumed.status, resumed.lines_done, resumed.created_count) == ("completed", 7, 7)
    assert Patient.objects.count() == 7
    assert PatientIdentifier.objects.filter(kind="his").count() == 7


def test_the_first_batch_is_smaller_and_an_interrupted_import_resumes_after_it(tmp_path, monkeypatch):
    from integrations.fhir.bulk import jobs

    monkeypatch.setattr(jobs, "FIRST_BATCH_SIZE", 2)
    path = write_ndjson(tmp_path / "p.ndjson", [patient_resource(i) for i in range(9)])
    committed = []

    def stop_after_two(job):
        committed.append(job.lines_done)
        if len(committed) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bulk_import_file(path=path, batch_size=4, after_batch=stop_after_two)
    resumed = bulk_import_file(path=path, batch_size=4, after_batch=lambda job: committed.append(job.lines_done))

    # Batches of 2 then 4 lines; the resumed run starts with a small batch again.
    assert committed == [2, 6, 8, 9]
    assert (resumed.status, resumed.created_count, Patient.objects.count()) == ("completed", 9, 9)


def test_a_changed_file_starts_over(tmp_path):
    path = write_ndjson(tmp_path / "p.ndjson", [patient_resource(i) for i in range(4)])

    def stop(job):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bulk_import_file(path=path, batch_size=2, after_batch=stop)
    write_ndjson(path, [patient_resource(i) for i in range(5)])

    job = bulk_import_file(path=path, batch_size=2)

    assert (job.lines_done, job.created_count, job.unchanged_count) == (5, 3, 2)
    assert sorted(BulkImport.objects.values_list("status", flat=True)) == ["completed", "failed"]


def test_official_fhir_patient_examples(tmp_path):
    lines = [
        json.dumps(json.loads((SAMPLES / f"Patient-{name}.json").read_text()), ensure_ascii=False)
        for name in ("ch-example", "dicom", "example", "f001", "glossy", "infant-twin-1", "pat1")
    ]
    path = write_ndjson(tmp_path / "examples.ndjson", lines)

    job = bulk_import_file(path=path, validate=True)

    assert (job.created_count, job.error_count) == (7, 0)
    chinese = Patient.objects.get(identifiers__value="ch-example")
    assert (chinese.name, chinese.name_pinyin, chinese.sex, chinese.birth_date) == (
        "张无忌",
        "zhangwuji",
        "male",
        dt.date(1974, 12, 25),
    )
    assert (chinese.mobile, chinese.city, chinese.district, chinese.address_detail, chinese.postal_code) == (
        "+8618337177888",
        "上海市",
        "黄埔区",
        "马当路190号",
        "200000",
    )
    assert sorted(chinese.identifiers.values_list("kind", "assigner", "value")) == [
        ("his", "urn:oid:1.2.36.146.595.217.0.1", "3112219680806371X"),
        ("other", "fhir-bulk", "ch-example"),
    ]
    assert Patient.objects.get(identifiers__value="example").name == "Peter James Chalmers"
    dutch = Patient.objects.get(identifiers__value="f001")
    assert (dutch.name, dutch.email, dutch.postal_code) == ("Pieter van de Heuvel", "p.heuvel@gmail.com", "")
    assert Patient.objects.get(identifiers__value="dicom").birth_date is None
    assert bulk_import_file(path=path).unchanged_count == 7


def test_full_validation_reports_what_only_the_fhir_models_catch(tmp_path):
    path = write_ndjson(tmp_path / "p.ndjson", [patient_resource(0, active="maybe"), patient_resource(1)])

    job = bulk_import_file(path=path, validate=True)

    assert job.created_count == 1
    assert [(e["line"], e["location"]) for e in job.errors] == [(1, "Patient.active")]
    assert job.errors[0]["message"] == "Input should be a valid boolean, unable to interpret input"


def test_full_validation_refuses_a_contained_resource_of_an_unknown_type(tmp_path):
    unknown = patient_resource(0, contained=[{"resourceType": "Nonsense"}])
    path = write_ndjson(tmp_path / "p.ndjson", [unknown, patient_resource(1)])

    job = bulk_import_file(path=path, validate=True)

    assert job.created_count == 1
    assert [(e["line"], e["location"]) for e in job.errors] == [(1, "Patient.contained[0].resourceType")]


def test_mapping_a_long_identifier_system_keeps_it_distinct():
    long_a, long_b = "urn:example:" + "a" * 80, "urn:example:" + "a" * 79 + "b"

    assert len(assigner_for(long_a)) <= 64
    assert assigner_for(long_a) != assigner_for(long_b)
    assert assigner_for("urn:oid:1.2") == "urn:oid:1.2"


def test_mapping_takes_the_national_id_from_its_type_code_and_fills_sex_and_birth_date():
    born = dt.date(1985, 6, 30)
    resource = {
        "resourceType": "Patient",
        "identifier": [{"type": {"coding": [{"code": "NNCHN"}]}, "value": national_id("110105", born, 2).lower()}],
        "name": [{"text": "李娜"}],
    }

    row = patient_row_from_resource(resource, profile=MappingProfile.from_source(None, "s"), line=1)

    assert (row.values["national_id"], row.values["sex"], row.values["birth_date"]) == (
        national_id("110105", born, 2),
        "female",
        born,
    )
    assert row.identifiers == []


def test_the_command_imports_gzip_files_and_prints_the_outcome(tmp_path):
    path = write_ndjson(tmp_path / "Patient.ndjson.gz", [patient_resource(0), "{oops"])
    out = StringIO()

    call_command("fhir_import", str(path), "--no-progress", stdout=out, stderr=StringIO())

    assert out.getvalue().splitlines() == [
        f"{path}: 2 lines; patients created 1, updated 0, unchanged 0; possible duplicates for review 0; "
        "lines refused 1",
        "  line 2: (line): Not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
    ]
