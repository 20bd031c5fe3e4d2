"""Foundation figures: seeding rate, patient search per kind (ORM vs raw SQL), patient page, API list."""

from __future__ import annotations

import random
import time

from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bench.harness import Report, Timing, ms, table, time_each

SAMPLES = 200
_rng = random.Random(20261125)


def seed(report: Report, *, patients: int, migrate_seconds: float) -> None:
    from patients.models import Patient

    existing = Patient.objects.count()
    started = time.perf_counter()
    call_command("seed_demo", patients=patients, no_progress=True, verbosity=0)
    seconds = time.perf_counter() - started
    # What autovacuum does on a production server (it is off on the benchmark machine): visibility
    # maps for index-only scans, and planner statistics.
    started_vacuum = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    vacuum_seconds = time.perf_counter() - started_vacuum
    counts = _row_counts()
    created = counts["patients_patient"] - existing
    rows = [[name, f"{count:,}"] for name, count in counts.items()]
    lines = [
        f"`seed_demo --patients {patients:,}` on PostgreSQL: {created:,} new patients in {seconds:,.1f} s "
        f"= **{created / seconds:,.0f} patients/s** ({sum(counts.values()) / seconds:,.0f} rows/s over all tables)"
        if created
        else f"Database reused: {existing:,} patients already seeded (no seeding measured in this run).",
        f"Migrations took {migrate_seconds:.1f} s; `VACUUM ANALYZE` after the load {vacuum_seconds:.0f} s.",
        "",
        *table(["table", "rows"], rows),
    ]
    report.section("Seeding", lines)


def _row_counts() -> dict[str, int]:
    tables = [
        "patients_patient",
        "patients_patientidentifier",
        "patients_contactperson",
        "patients_patientdepartment",
        "patients_encounter",
        "patients_diagnosis",
        "patients_procedure",
        "patients_labresult",
        "patients_medicationorder",
        "patients_charge",
        "patients_allergy",
        "patients_clinicalhistory",
    ]
    counts = {}
    with connection.cursor() as cursor:
        for name in tables:
            cursor.execute(f"SELECT count(*) FROM {name}")  # noqa: S608 (fixed table names)
            counts[name] = cursor.fetchone()[0]
    return counts


def _sample_patients(count: int):
    from patients.models import Patient, PatientIdentifier

    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM patients_patient")
        low, high = cursor.fetchone()
    ids = [_rng.randint(low, high) for _ in range(count * 2)]
    patients = list(Patient.objects.filter(pk__in=ids).order_by("pk")[:count])
    cards = dict(
        PatientIdentifier.objects.filter(patient__in=patients, kind="visit_card").values_list("patient_id", "value")
    )
    return patients, cards


_COLUMNS = None


def _columns() -> str:
    global _COLUMNS
    if _COLUMNS is None:
        from patients.models import Patient

        _COLUMNS = ", ".join(f'"{field.column}"' for field in Patient._meta.concrete_fields)
    return _COLUMNS


def _raw(sql: str, params: list) -> list:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _raw_search(kind: str, query: str) -> list:
    """The same lookup the ORM makes, written by hand."""
    base = f"SELECT {_columns()} FROM patients_patient WHERE merged_into_id IS NULL AND "  # noqa: S608
    if kind == "name":
        return _raw(base + "name LIKE %s ORDER BY updated_at DESC, id DESC LIMIT 25", [query + "%"])
    if kind in ("pinyin", "initials", "consonants"):
        key = query + "%"
        return _raw(
            base + "(name_pinyin LIKE %s OR name_pinyin_initials LIKE %s OR name_pinyin_consonants LIKE %s) "
            "ORDER BY updated_at DESC, id DESC LIMIT 25",
            [key, key, key],
        )
    if kind == "phone":
        number = "+86" + query.replace(" ", "")
        return _raw(base + "(mobile = %s OR phone = %s) ORDER BY updated_at DESC, id DESC LIMIT 25", [number, number])
    if kind == "national_id":
        return _raw(base + "national_id = %s ORDER BY updated_at DESC, id DESC LIMIT 25", [query])
    if kind in ("mrn", "card"):
        holders = [
            row[0]
            for row in _raw("SELECT patient_id FROM patients_patientidentifier WHERE value = %s LIMIT 50", [query])
        ]
        return _raw(
            base + "(mrn = ANY(%s) OR id = ANY(%s)) ORDER BY updated_at DESC, id DESC LIMIT 25",
            [[query, query.upper()], holders or [0]],
        )
    raise ValueError(kind)


def search(report: Report) -> None:
    from hcrm.models import User
    from patients.selectors import patients_matching, patients_visible_to

    admin = User.objects.get(username="admin")
    doctor = User.objects.get(username="doctor")
    patients, cards = _sample_patients(SAMPLES)
    # label → (the hand-written statement to compare with, typed queries)
    queries = {
        "name": ("name", [p.name for p in patients]),
        "surname only (widest name prefix)": ("name", [p.name[0] for p in patients]),
        "full pinyin": ("pinyin", [p.name_pinyin for p in patients]),
        "pinyin initials": ("initials", [p.name_pinyin_initials for p in patients]),
        "two pinyin initials (widest)": ("initials", [p.name_pinyin_initials[:2] for p in patients]),
        "initial consonants (zhs)": ("consonants", [p.name_pinyin_consonants for p in patients]),
        "mobile": ("phone", [f"{p.mobile[3:6]} {p.mobile[6:10]} {p.mobile[10:]}" for p in patients if p.mobile]),
        "MRN": ("mrn", [p.mrn for p in patients]),
        "visit card": ("card", [cards[p.pk] for p in patients if p.pk in cards]),
        "national ID": ("national_id", [p.national_id for p in patients if p.national_id]),
    }
    rows = []
    hits = []
    for label, (kind, values) in queries.items():
        orm = time_each(label, values, lambda q: list(patients_matching(patients_visible_to(admin), q)[:25]))
        raw = time_each(label, values, lambda q, kind=kind: _raw_search(kind, q))
        found = sum(1 for q in values[:50] if patients_matching(patients_visible_to(admin), q).exists())
        hits.append(f"{label} {found}/50")
        rows.append(_search_row(label, orm, raw))
    scoped = time_each(
        "name", queries["name"][1], lambda q: list(patients_matching(patients_visible_to(doctor), q)[:25])
    )
    rows.append(
        [
            "name, doctor scoped to one department",
            ms(scoped.p50),
            ms(scoped.p95),
            "",
            "",
            "",
        ]
    )
    report.section(
        "Patient search at scale",
        [
            f"{SAMPLES} sampled patients per kind; each lookup returns the first page (25 rows) through "
            "`patients_matching(patients_visible_to(user), query)`, the selector the console and API use, "
            "and the same statement written by hand as raw SQL through the same connection.",
            "",
            *table(["kind", "ORM p50", "ORM p95", "raw SQL p50", "raw SQL p95", "ORM / raw (p50)"], rows),
            "",
            "Sampled queries that found their patient (first 50 each): " + ", ".join(hits) + ".",
        ],
    )


def _search_row(kind: str, orm: Timing, raw: Timing) -> list[str]:
    return [kind, ms(orm.p50), ms(orm.p95), ms(raw.p50), ms(raw.p95), f"{orm.p50 / raw.p50:.2f}×"]


def patient_page(report: Report) -> None:
    from hcrm.models import User

    patients, _cards = _sample_patients(SAMPLES)
    client = Client()
    client.force_login(User.objects.get(username="admin"))
    counts = []

    def render(patient):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"/patients/{patient.uuid}/")
        assert response.status_code == 200, response.status_code
        counts.append(len(queries))

    timing = time_each("page", patients, render)
    counts = counts[5:]
    report.section(
        "Patient page",
        [
            f"`GET /patients/<id>/` (header, details, consents, full timeline, audit entry) rendered by Django's "
            f"test client as an administrator, {len(patients)} sampled patients.",
            "",
            *table(
                ["p50", "p95", "p99", "queries per page (min–max)"],
                [[ms(timing.p50), ms(timing.p95), ms(timing.p99), f"{min(counts)}–{max(counts)}"]],
            ),
        ],
    )


def api_list(report: Report) -> None:
    from rest_framework.authtoken.models import Token

    from hcrm.models import User

    rows = []
    for username, label in (("agent", "agent (all patients)"), ("doctor", "doctor (own department)")):
        token, _created = Token.objects.get_or_create(user=User.objects.get(username=username))
        client = Client(HTTP_AUTHORIZATION=f"Bearer {token.key}")
        for query in ("", "?department=NK", "?diagnosis=I10", "?q=zhs", "?updated_since=2026-10-01T00:00:00%2B08:00"):
            timing = time_each(
                query, range(100), lambda _i, query=query, client=client: _get_ok(client, f"/api/v1/patients/{query}")
            )
            rows.append([label, f"`/api/v1/patients/{query}`", ms(timing.p50), ms(timing.p95)])
    report.section(
        "API list",
        [
            "First page (25 patients) of `GET /api/v1/patients/`, bearer token, 100 requests each, "
            "Django's test client in process (no network).",
            "",
            *table(["caller", "request", "p50", "p95"], rows),
        ],
    )


def _get_ok(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code, response.content[:300])
