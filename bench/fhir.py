"""FHIR figures: NDJSON bulk import of Patient resources (and its re-import) beside bare `fhir.resources`
(R4B) validation; with `main`, the transaction bundles of `bench.fhir_bundles` after it.

    python -m bench.fhir [--patients 1000000] [--bundles 1500]   # both FHIR sections alone, on BENCH_DATABASE_URL
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import random
import tempfile
import time
from pathlib import Path

from django.db import connection

from bench.harness import Report, table

ASSIGNER = "urn:oid:2.16.156.99.7"  # the benchmark sender's MRNs: distinct from the demo hospital's
SOURCE = "bench-bulk"
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志文玉兰红梅晓春雪凤海燕飞鹏辉"
REGIONS = ("110105", "310101", "440106", "510104", "330106", "420102", "610113", "210102")
CITIES = (("北京市", "北京市", "朝阳区"), ("上海市", "上海市", "黄浦区"), ("广东省", "广州市", "天河区"))


def _national_id(region: str, born: dt.date, sequence: int) -> str:
    from patients.validators import national_id_check_digit

    first17 = f"{region}{born:%Y%m%d}{sequence:03d}"
    return first17 + national_id_check_digit(first17)


def patient_resource(index: int) -> dict:
    """Patient number `index` of the benchmark, the same on every run."""
    rng = random.Random(index)
    # Region, sequence and birth date all follow from the index, so national IDs never repeat (< 116 million).
    # Neighbouring patients are born on different days (steps of 97 visit all 29,200 days), as in an archive,
    # where a birthday is shared by a few dozen patients, not by thousands numbered in a row.
    rest = index // len(REGIONS)
    born = dt.date(1930, 1, 1) + dt.timedelta(days=rest * 97 % 29_200)
    male = rng.random() < 0.5
    name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
    province, city, district = rng.choice(CITIES)
    identifiers = [
        {"type": {"coding": [{"code": "MR"}]}, "system": ASSIGNER, "value": f"B{index:09d}"},
        {
            "type": {"coding": [{"code": "NNCHN"}]},
            "system": "urn:oid:2.16.156.10011.1.3",
            "value": _national_id(REGIONS[index % len(REGIONS)], born, rest // 29_200 % 500 * 2 + (1 if male else 0)),
        },
    ]
    return {
        "resourceType": "Patient",
        "id": f"bench-{index}",
        "identifier": identifiers,
        "name": [{"use": "official", "text": name}],
        "gender": "male" if male else "female",
        "birthDate": born.isoformat(),
        "telecom": [{"system": "phone", "value": f"1{rng.choice('3589')}{index % 10**9:09d}", "use": "mobile"}],
        "address": [
            {"use": "home", "state": province, "city": city, "district": district, "line": [f"健康路{index % 999}号"]}
        ],
    }


def write_ndjson(path: Path, count: int) -> None:
    with (
        gzip.open(path, "wt", encoding="utf-8", compresslevel=1)
        if path.name.endswith(".gz")
        else open(path, "w", encoding="utf-8") as handle
    ):
        for index in range(count):
            handle.write(json.dumps(patient_resource(index), ensure_ascii=False, separators=(",", ":")) + "\n")


def _table_rows() -> dict[str, int]:
    counts = {}
    with connection.cursor() as cursor:
        for name in ("patients_patient", "patients_patientidentifier", "hcrm_auditentry", "patients_matchcandidate"):
            cursor.execute(f"SELECT count(*) FROM {name}")  # noqa: S608 (fixed table names)
            counts[name] = cursor.fetchone()[0]
    return counts


def _written_rows() -> int:
    """Rows inserted, updated or deleted in the archive tables since statistics were reset."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables "
            "WHERE relname IN ('patients_patient', 'patients_patientidentifier', 'hcrm_auditentry', "
            "'patients_matchcandidate')"
        )
        return int(cursor.fetchone()[0])


def bulk(report: Report, *, patients: int = 1_000_000, validate_sample: int = 20_000) -> None:
    from fhir.resources.R4B.patient import Patient as FhirPatient

    from integrations.fhir.bulk import bulk_import_file

    with tempfile.TemporaryDirectory(prefix="hcrm-bench-fhir-") as folder:
        path = Path(folder) / "Patient.ndjson"
        started = time.perf_counter()
        write_ndjson(path, patients)
        generate_seconds = time.perf_counter() - started
        before = _table_rows()
        started = time.perf_counter()
        first = bulk_import_file(path=path, source=SOURCE)
        first_seconds = time.perf_counter() - started
        after_first = _table_rows()
        # The statistics collector reports a transaction's writes when it ends; a short wait lets it settle.
        time.sleep(1)
        written_before = _written_rows()
        started = time.perf_counter()
        again = bulk_import_file(path=path, source=SOURCE)
        again_seconds = time.perf_counter() - started
        time.sleep(1)
        written = _written_rows() - written_before
        after_again = _table_rows()
        sample = path.read_text(encoding="utf-8").splitlines()[:validate_sample]
    started = time.perf_counter()
    for line in sample:
        FhirPatient.model_validate(json.loads(line))
    validate_rate = len(sample) / (time.perf_counter() - started)
    started = time.perf_counter()
    for line in sample:
        json.loads(line)
    parse_rate = len(sample) / (time.perf_counter() - started)
    rate = patients / first_seconds
    unchanged = after_again == after_first
    report.section(
        "FHIR bulk import (NDJSON)",
        [
            f"`manage.py fhir_import` path (`bulk_import_file`) on PostgreSQL: {patients:,} generated Patient "
            f"resources (Chinese names, GB 11643 national IDs, mobiles, an MRN of a benchmark assigner, address) "
            f"in one NDJSON file ({generate_seconds:.0f} s to write). Lines are mapped in Python by a reader thread, "
            f"COPied in batches of 50,000 (the first of 5,000) into staging tables and applied with set-based SQL (identity by "
            f"identifier, then national ID; updates only where a field differs; one audit entry per patient "
            f"written; review candidates for same name + birth date + phone).",
            "",
            *table(
                ["figure", "value"],
                [
                    ["first import", f"{first_seconds:,.1f} s = **{rate:,.0f} resources/s** (goal ≥ 3,000/s)"],
                    [
                        "patients created",
                        f"{first.created_count:,} ({after_first['patients_patient'] - before['patients_patient']:,} rows)",
                    ],
                    [
                        "identifiers written",
                        f"{after_first['patients_patientidentifier'] - before['patients_patientidentifier']:,}",
                    ],
                    ["audit entries written", f"{after_first['hcrm_auditentry'] - before['hcrm_auditentry']:,}"],
                    ["review candidates raised", f"{first.candidate_count:,}"],
                    ["lines refused", f"{first.error_count:,}"],
                    [
                        "re-import of the same file",
                        f"{again_seconds:,.1f} s = {patients / again_seconds:,.0f} resources/s",
                    ],
                    [
                        "re-import: patients unchanged / created / updated",
                        f"{again.unchanged_count:,} / {again.created_count:,} / {again.updated_count:,}",
                    ],
                    [
                        "re-import: archive rows written (pg_stat_user_tables)",
                        f"**{written:,}**" + ("" if unchanged else " (row counts changed!)"),
                    ],
                    ["bare `json.loads` of the same lines (1 core)", f"{parse_rate:,.0f} lines/s"],
                    [
                        "bare `fhir.resources` R4B `Patient.model_validate` (1 core)",
                        f"{validate_rate:,.0f} resources/s",
                    ],
                ],
            ),  # fmt: skip
            "",
            f"Full R4B validation of every line (`fhir_import --validate`) would add about "
            f"{patients / validate_rate:,.0f} s of one core to this import; by default the import checks the "
            f"elements it maps (types, dates, codes, national ID check digit, lengths) and leaves the rest unread.",
        ],
    )


def fhir(report: Report, *, patients: int = 1_000_000, **bundle_options) -> None:
    from bench.fhir_bundles import bundles

    bulk(report, patients=patients)
    bundles(report, **bundle_options)


def main() -> int:
    import argparse
    import sys

    from bench import fhir_bundles
    from bench.run import DEFAULT_URL, _prepare_environment

    parser = argparse.ArgumentParser(description="FHIR benchmark section alone (database must be migrated).")
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--bundles", type=int, default=fhir_bundles.BUNDLES)
    parser.add_argument("--workers", type=int, default=fhir_bundles.SERVER_WORKERS)
    parser.add_argument("--threads", type=int, default=fhir_bundles.SERVER_THREADS)
    parser.add_argument("--clients", type=int, default=fhir_bundles.CLIENTS)
    args = parser.parse_args()
    _prepare_environment(os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)
    report = Report(title="HCRM FHIR benchmark", command=" ".join(sys.argv))
    fhir(
        report,
        patients=args.patients,
        count=args.bundles,
        workers=args.workers,
        threads=args.threads,
        clients=args.clients,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
